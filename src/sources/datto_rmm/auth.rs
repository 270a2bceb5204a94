//! Datto RMM tokens: the OAuth2 password grant with the public client
//! (`public-client:public` in HTTP Basic), the API key as user name and the
//! API secret as password. Tokens are cached until shortly before expiry and
//! dropped after a 401.

use std::time::Duration;

use reqwest::header::{HeaderName, AUTHORIZATION};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::collect::auth::{Auth, AuthError};
use crate::collect::http::{backoff_delay, RetryPolicy};
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
    cached: Mutex<Option<(Secret, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl PasswordGrant {
    /// A token source for `token_url` (`{base}/auth/oauth/token`).
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        api_key: Secret,
        api_secret: Secret,
        retry: RetryPolicy,
    ) -> PasswordGrant {
        PasswordGrant {
            http,
            token_url,
            api_key,
            api_secret,
            retry,
            cached: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<(Secret, Instant), AuthError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let form = [
                ("grant_type", "password"),
                ("username", self.api_key.expose()),
                ("password", self.api_secret.expose()),
            ];
            let sent = Instant::now();
            let response = self
                .http
                .post(&self.token_url)
                .basic_auth("public-client", Some("public"))
                .form(&form)
                .timeout(self.retry.timeout)
                .send()
                .await;
            let retryable = match response {
                Err(e) => format!(
                    "token request failed: {}",
                    crate::collect::auth::without_url(&e)
                ),
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    if status.is_success() {
                        let parsed: TokenResponse =
                            serde_json::from_slice(&body).map_err(|_| {
                                AuthError(format!(
                                    "token endpoint {} answered {status} with a body that is not a token",
                                    self.token_url
                                ))
                            })?;
                        let ttl = parsed
                            .expires_in
                            .as_ref()
                            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                            .unwrap_or(3600);
                        return Ok((
                            Secret::new(parsed.access_token),
                            sent + Duration::from_secs(ttl),
                        ));
                    }
                    if !matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504) {
                        return Err(AuthError(format!(
                            "the token endpoint {} rejected the API key and secret (HTTP {status}); check that API access is enabled for the user and the key and secret are current",
                            self.token_url
                        )));
                    }
                    format!("token endpoint answered HTTP {status}")
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(AuthError(format!(
                    "{retryable} (gave up after {attempt} attempts)"
                )));
            }
            tokio::time::sleep(backoff_delay(&self.retry, attempt, None)).await;
        }
    }
}

impl Auth for PasswordGrant {
    fn header(&self) -> BoxFuture<'_, Result<(HeaderName, Secret), AuthError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            let fresh = cached
                .as_ref()
                .is_some_and(|(_, exp)| Instant::now() + EXPIRY_SKEW < *exp);
            if !fresh {
                *cached = Some(self.fetch().await?);
            }
            let token = cached.as_ref().map(|(t, _)| t.expose()).unwrap_or_default();
            Ok((AUTHORIZATION, Secret::new(format!("Bearer {token}"))))
        })
    }

    fn invalidate(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            *self.cached.lock().await = None;
        })
    }
}
