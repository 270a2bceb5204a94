//! Datto RMM tokens: the OAuth2 password grant with the public client
//! (`public-client:public` in HTTP Basic), the API key as user name and the
//! API secret as password. Tokens are cached until shortly before expiry and
//! dropped after a 401. The token endpoint shares the API host's throttling
//! memory: a 403 there soon after a 429 is Datto's IP block, waited out and
//! reported as a block, never as a rejected key and secret.

use std::time::Duration;

use reqwest::header::HeaderName;
use tokio::time::Instant;

use crate::collect::auth::{Auth, AuthError, TokenCache, TokenEndpoint};
use crate::collect::http::ThrottleBlock;
use crate::collect::retry::RetryPolicy;
use crate::collect::BoxFuture;
use crate::secret::Secret;

/// Tokens are renewed this long before they expire.
const EXPIRY_SKEW: Duration = Duration::from_secs(120);

/// Datto RMM's password-grant token source.
pub struct PasswordGrant {
    http: reqwest::Client,
    token_url: String,
    api_key: Secret,
    api_secret: Secret,
    retry: RetryPolicy,
    block: ThrottleBlock,
    cache: TokenCache,
}

impl PasswordGrant {
    /// A token source for `token_url` (`{base}/auth/oauth/token`), sharing
    /// `block` (the API host's throttling memory) with the source's requests.
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        (api_key, api_secret): (Secret, Secret),
        retry: RetryPolicy,
        block: ThrottleBlock,
    ) -> PasswordGrant {
        PasswordGrant {
            http,
            token_url,
            api_key,
            api_secret,
            retry,
            block,
            cache: TokenCache::new(EXPIRY_SKEW),
        }
    }

    async fn fetch(&self) -> Result<(Secret, Instant), AuthError> {
        let endpoint = TokenEndpoint {
            url: &self.token_url,
            retry: &self.retry,
            default_ttl: 3600,
            block: Some(&self.block),
        };
        endpoint
            .request(
                || {
                    let form = [
                        ("grant_type", "password"),
                        ("username", self.api_key.expose()),
                        ("password", self.api_secret.expose()),
                    ];
                    let request = self
                        .http
                        .post(&self.token_url)
                        .basic_auth("public-client", Some("public"))
                        .form(&form);
                    Ok((request, self.api_secret.clone()))
                },
                |status, _, _| {
                    format!(
                        "the token endpoint {} rejected the API key and secret (HTTP {status}); check that API access is enabled for the user and the key and secret are current",
                        self.token_url
                    )
                },
            )
            .await
    }
}

impl Auth for PasswordGrant {
    fn header(&self) -> BoxFuture<'_, Result<(HeaderName, Secret), AuthError>> {
        Box::pin(self.cache.bearer(|| self.fetch()))
    }

    fn invalidate(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.cache.clear())
    }
}
