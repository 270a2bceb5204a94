//! Credentials on the wire: OAuth2 client-credentials tokens (fetched once,
//! cached until shortly before expiry, refreshed after a 401) and static API keys.

use std::time::Duration;

use reqwest::header::{HeaderName, AUTHORIZATION};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::retry::{is_retryable, RetryPolicy};
use super::BoxFuture;
use crate::secret::Secret;

/// Why credentials could not be obtained. Fatal for the whole source: retrying
/// a rejected secret only locks accounts.
#[derive(Debug, Clone)]
pub struct AuthError(pub String);

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Supplies the headers that authenticate a request.
pub trait Auth: Send + Sync {
    /// The header to send (name, secret value).
    fn header(&self) -> BoxFuture<'_, Result<(HeaderName, Secret), AuthError>>;
    /// Forget a cached token after the server answered 401.
    fn invalidate(&self) -> BoxFuture<'_, ()>;
    /// Headers every request of the API carries besides the credential (e.g.
    /// Veeam's `x-api-version`); none by default. Never secret.
    fn extra_headers(&self) -> Vec<(HeaderName, String)> {
        Vec::new()
    }
}

/// A fixed API key sent in a header (e.g. `X-API-KEY`).
pub struct ApiKey {
    /// Header name.
    pub header: HeaderName,
    /// The key.
    pub key: Secret,
}

impl Auth for ApiKey {
    fn header(&self) -> BoxFuture<'_, Result<(HeaderName, Secret), AuthError>> {
        Box::pin(async move { Ok((self.header.clone(), self.key.clone())) })
    }
    fn invalidate(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// How the client proves itself at the token endpoint.
#[derive(Clone)]
pub enum ClientCredential {
    /// `client_secret` in the form.
    Secret(Secret),
    /// A signed JWT assertion, built fresh for each token request.
    Assertion(std::sync::Arc<AssertionBuilder>),
}

/// Builds a client assertion for a token URL.
pub type AssertionBuilder = dyn Fn(&str) -> Result<Secret, AuthError> + Send + Sync;

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("Secret([redacted])"),
            ClientCredential::Assertion(_) => f.write_str("Assertion(<builder>)"),
        }
    }
}

/// OAuth2 client-credentials grant with a token cache.
pub struct ClientCredentials {
    http: reqwest::Client,
    token_url: String,
    /// Non-secret form fields (`grant_type`, `client_id`, `scope`...).
    form: Vec<(String, String)>,
    credential: ClientCredential,
    retry: RetryPolicy,
    cached: Mutex<Option<(Secret, Instant)>>,
    /// A failure to get a token is final for the run: every later request of
    /// the source gets the same error instead of asking again.
    failed: Mutex<Option<AuthError>>,
}

/// Tokens are renewed this long before they expire.
const EXPIRY_SKEW: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
    error_description: Option<String>,
}

impl ClientCredentials {
    /// A token source posting `form` plus the credential to `token_url`.
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        form: Vec<(String, String)>,
        credential: ClientCredential,
        retry: RetryPolicy,
    ) -> ClientCredentials {
        ClientCredentials {
            http,
            token_url,
            form,
            credential,
            retry,
            cached: Mutex::new(None),
            failed: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<(Secret, Instant), AuthError> {
        let endpoint = TokenEndpoint {
            url: &self.token_url,
            retry: &self.retry,
            default_ttl: 3599,
        };
        endpoint
            .request(
                || {
                    let mut form = self.form.clone();
                    let secret = match &self.credential {
                        ClientCredential::Secret(s) => {
                            form.push(("client_secret".into(), s.expose().to_owned()));
                            s.clone()
                        }
                        ClientCredential::Assertion(build) => {
                            let jwt = build(&self.token_url)?;
                            form.push((
                                "client_assertion_type".into(),
                                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                            ));
                            form.push(("client_assertion".into(), jwt.expose().to_owned()));
                            jwt
                        }
                    };
                    Ok((self.http.post(&self.token_url).form(&form), secret))
                },
                |status, body, secret| {
                    let detail = serde_json::from_slice::<TokenError>(body)
                        .ok()
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e.error.unwrap_or_default(),
                                e.error_description.unwrap_or_default()
                            )
                        })
                        .unwrap_or_else(|| "no error detail".into());
                    let detail = detail.replace(secret.expose(), "[redacted]");
                    format!(
                        "the token endpoint {} rejected the credentials (HTTP {status}, {}); check the client id, tenant and secret",
                        self.token_url,
                        first_line(&detail)
                    )
                },
            )
            .await
    }
}

/// A token endpoint, asked with the retry policy every request follows:
/// transport failures and retryable statuses are tried again with backoff, a
/// rejection is final (retrying a rejected secret only locks accounts).
pub(crate) struct TokenEndpoint<'a> {
    /// Where tokens come from.
    pub url: &'a str,
    /// Attempts and delays.
    pub retry: &'a RetryPolicy,
    /// Lifetime assumed when the answer gives none, in seconds.
    pub default_ttl: u64,
}

impl TokenEndpoint<'_> {
    /// A token and when it expires. `build` makes each attempt's request
    /// (and names the secret it carries, never to be echoed); `rejected`
    /// words a refusal from its status and body.
    pub(crate) async fn request(
        &self,
        build: impl Fn() -> Result<(reqwest::RequestBuilder, Secret), AuthError>,
        rejected: impl Fn(reqwest::StatusCode, &[u8], &Secret) -> String,
    ) -> Result<(Secret, Instant), AuthError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (request, secret) = build()?;
            let sent = Instant::now();
            let retryable = match request.timeout(self.retry.timeout).send().await {
                Err(e) => format!("token request failed: {}", without_url(&e)),
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    if status.is_success() {
                        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
                            AuthError(format!(
                                "token endpoint {} answered {status} with a body that is not a token",
                                self.url
                            ))
                        })?;
                        let ttl = parsed
                            .expires_in
                            .as_ref()
                            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                            .unwrap_or(self.default_ttl);
                        let expires = sent + Duration::from_secs(ttl);
                        return Ok((Secret::new(parsed.access_token), expires));
                    }
                    if !is_retryable(status) {
                        return Err(AuthError(rejected(status, &body, &secret)));
                    }
                    format!("token endpoint answered HTTP {status}")
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(AuthError(format!(
                    "{retryable} (gave up after {attempt} attempts)"
                )));
            }
            super::retry::pause(
                self.retry,
                super::retry::Attempt {
                    number: attempt,
                    reason: &retryable,
                    status: None,
                    retry_after: None,
                    url: self.url,
                },
            )
            .await;
        }
    }
}

impl Auth for ClientCredentials {
    fn header(&self) -> BoxFuture<'_, Result<(HeaderName, Secret), AuthError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            let fresh = cached
                .as_ref()
                .is_some_and(|(_, exp)| Instant::now() + EXPIRY_SKEW < *exp);
            if !fresh {
                let mut failed = self.failed.lock().await;
                if let Some(e) = failed.as_ref() {
                    return Err(e.clone());
                }
                match self.fetch().await {
                    Ok(token) => *cached = Some(token),
                    Err(e) => {
                        *failed = Some(e.clone());
                        return Err(e);
                    }
                }
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

/// A transport error's message without the URL (which `reqwest` appends, and
/// which the caller already names).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "body could not be read"
    } else {
        "transport error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}
