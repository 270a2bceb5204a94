//! Credentials on the wire: OAuth2 client-credentials tokens (fetched once,
//! cached until shortly before expiry, refreshed after a 401) and static API keys.
//! The token cache ([`TokenCache`]) and the token request with retries
//! ([`TokenEndpoint`]) also serve the sources' own grants (Veeam's and Datto
//! RMM's password grants).

use std::future::Future;
use std::time::Duration;

use reqwest::header::{HeaderName, AUTHORIZATION};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::http::{error_detail, ThrottleBlock};
use super::retry::{is_retryable, parse_retry_after, wait_refused, RetryPolicy};
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
    /// HTTP Basic client authentication (RFC 6749 section 2.3.1): the client
    /// id and secret, each form-urlencoded, as user name and password of an
    /// `Authorization: Basic` header; the form then carries neither.
    Basic {
        /// The client id.
        client_id: String,
        /// The client secret.
        secret: Secret,
    },
    /// A signed JWT assertion, built fresh for each token request.
    Assertion(std::sync::Arc<AssertionBuilder>),
}

/// Builds a client assertion for a token URL.
pub type AssertionBuilder = dyn Fn(&str) -> Result<Secret, AuthError> + Send + Sync;

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("Secret([redacted])"),
            ClientCredential::Basic { client_id, .. } => {
                write!(
                    f,
                    "Basic {{ client_id: {client_id:?}, secret: [redacted] }}"
                )
            }
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
    cache: TokenCache,
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
            cache: TokenCache::new(EXPIRY_SKEW),
            failed: Mutex::new(None),
        }
    }

    /// A new token, unless asking failed before in this run (then the same
    /// error again).
    async fn fetch_once(&self) -> Result<(Secret, Instant), AuthError> {
        let mut failed = self.failed.lock().await;
        if let Some(e) = failed.as_ref() {
            return Err(e.clone());
        }
        let token = self.fetch().await;
        if let Err(e) = &token {
            *failed = Some(e.clone());
        }
        token
    }

    async fn fetch(&self) -> Result<(Secret, Instant), AuthError> {
        let endpoint = TokenEndpoint {
            url: &self.token_url,
            retry: &self.retry,
            default_ttl: 3599,
            block: None,
        };
        endpoint
            .request(
                || {
                    let mut form = self.form.clone();
                    let mut basic = None;
                    let secret = match &self.credential {
                        ClientCredential::Secret(s) => {
                            form.push(("client_secret".into(), s.expose().to_owned()));
                            s.clone()
                        }
                        ClientCredential::Basic { client_id, secret } => {
                            form.retain(|(k, _)| k != "client_id" && k != "client_secret");
                            basic = Some(basic_client_header(client_id, secret));
                            secret.clone()
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
                    let mut request = self.http.post(&self.token_url).form(&form);
                    if let Some(header) = basic {
                        request = request.header(AUTHORIZATION, header.expose());
                    }
                    Ok((request, secret))
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
/// transport failures and retryable statuses are tried again with backoff
/// (after the server's `Retry-After`; one longer than the policy waits fails
/// the token request saying so), a rejection is final (retrying a rejected
/// secret only locks accounts). With `block`, a 403 soon after a 429 on the
/// same API host is the server's temporary block: waited out within the
/// block's bounds, and reported as a block if it persists, never as rejected
/// credentials.
pub(crate) struct TokenEndpoint<'a> {
    /// Where tokens come from.
    pub url: &'a str,
    /// Attempts and delays.
    pub retry: &'a RetryPolicy,
    /// Lifetime assumed when the answer gives none, in seconds.
    pub default_ttl: u64,
    /// The API host's throttling memory, for a server that blocks clients
    /// after 429s (see [`ThrottleBlock`]).
    pub block: Option<&'a ThrottleBlock>,
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
        let mut block_waits = 0;
        loop {
            attempt += 1;
            let (request, secret) = build()?;
            let sent = Instant::now();
            let (retryable, status, retry_after) = match request
                .timeout(self.retry.timeout)
                .send()
                .await
            {
                Err(e) => (
                    format!("token request failed: {}", without_url(&e)),
                    None,
                    None,
                ),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after =
                        parse_retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
                    let body = resp.bytes().await.unwrap_or_default();
                    if status.is_success() {
                        let parsed: TokenResponse =
                                serde_json::from_slice(&body).map_err(|_| {
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
                    let blocked = status == reqwest::StatusCode::FORBIDDEN
                        && self.block.is_some_and(ThrottleBlock::recently_throttled);
                    if let (true, Some(block)) = (blocked, self.block) {
                        let detail = error_detail(&body).replace(secret.expose(), "[redacted]");
                        if let Err(reason) =
                            block.wait_out(self.url, &detail, &mut block_waits).await
                        {
                            return Err(AuthError(format!(
                                "the token endpoint {}: {reason}",
                                self.url
                            )));
                        }
                        // A block wait is not an attempt: the server never judged the credentials.
                        attempt -= 1;
                        continue;
                    }
                    if !is_retryable(status) {
                        return Err(AuthError(rejected(status, &body, &secret)));
                    }
                    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                        if let Some(block) = self.block {
                            block.saw_throttle();
                        }
                    }
                    (
                        format!("token endpoint answered HTTP {status}"),
                        Some(status.as_u16()),
                        retry_after,
                    )
                }
            };
            if let Some(why) = wait_refused(self.retry, retry_after) {
                return Err(AuthError(format!("{retryable} at {}; {why}", self.url)));
            }
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
                    status,
                    retry_after,
                    url: self.url,
                },
            )
            .await;
        }
    }
}

impl Auth for ClientCredentials {
    fn header(&self) -> BoxFuture<'_, Result<(HeaderName, Secret), AuthError>> {
        Box::pin(self.cache.bearer(|| self.fetch_once()))
    }

    fn invalidate(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.cache.clear())
    }
}

/// A bearer token kept for every request of a source until shortly before
/// it expires, for the token sources of OAuth2 grants.
pub(crate) struct TokenCache {
    /// Tokens are renewed this long before they expire.
    skew: Duration,
    cached: Mutex<Option<(Secret, Instant)>>,
}

impl TokenCache {
    /// An empty cache renewing tokens `skew` before they expire.
    pub(crate) fn new(skew: Duration) -> TokenCache {
        TokenCache {
            skew,
            cached: Mutex::new(None),
        }
    }

    /// `Authorization: Bearer <token>` with the cached token, or with a new
    /// one from `fetch` (a token and when it expires) when there is none or
    /// it is about to expire. The cache stays locked while `fetch` runs, so
    /// requests at the same time wait for one token request.
    ///
    /// # Errors
    /// `fetch`'s; the cache is then left as it was.
    pub(crate) async fn bearer<F, Fut>(&self, fetch: F) -> Result<(HeaderName, Secret), AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Instant), AuthError>>,
    {
        let mut cached = self.cached.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(_, exp)| Instant::now() + self.skew < *exp);
        if !fresh {
            *cached = Some(fetch().await?);
        }
        let token = cached.as_ref().map(|(t, _)| t.expose()).unwrap_or_default();
        Ok((AUTHORIZATION, Secret::new(format!("Bearer {token}"))))
    }

    /// Forget the token (after the server answered 401).
    pub(crate) async fn clear(&self) {
        *self.cached.lock().await = None;
    }
}

/// `Basic <base64(urlencoded id ":" urlencoded secret)>` (RFC 6749 2.3.1).
fn basic_client_header(client_id: &str, secret: &Secret) -> Secret {
    use base64::Engine as _;
    let pair = format!(
        "{}:{}",
        form_urlencode(client_id),
        form_urlencode(secret.expose())
    );
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

/// `application/x-www-form-urlencoded` encoding of one value (unreserved
/// characters kept, a space as `+`, every other byte `%XX`).
fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_token_cache_asks_again_only_near_expiry_or_after_a_401() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let fetch = || async {
            let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok((
                Secret::new(format!("t{n}")),
                Instant::now() + Duration::from_secs(120),
            ))
        };
        let bearer = |h: (HeaderName, Secret)| h.1.expose().to_owned();
        assert_eq!(
            bearer(cache.bearer(fetch).await.expect("token")),
            "Bearer t0"
        );
        assert_eq!(
            bearer(cache.bearer(fetch).await.expect("token")),
            "Bearer t0"
        );
        // Within the skew of its expiry, a token is renewed.
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            bearer(cache.bearer(fetch).await.expect("token")),
            "Bearer t1"
        );
        cache.clear().await;
        assert_eq!(
            bearer(cache.bearer(fetch).await.expect("token")),
            "Bearer t2"
        );
        // While the token is fresh, no request is made (not even one that would fail).
        let refused = cache
            .bearer(|| async { Err(AuthError("refused".into())) })
            .await;
        assert!(refused.is_ok(), "a fresh token needs no request");
    }

    /// A token endpoint answering `script` in turn (status, `Retry-After`),
    /// then a token; its URL and the number of requests it saw.
    async fn scripted_token_endpoint(
        script: Vec<(u16, Option<&'static str>)>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use axum::http::{HeaderValue, StatusCode};
        use axum::response::IntoResponse;
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        let script = std::sync::Arc::new(script);
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move || {
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let script = script.clone();
                async move {
                    match script.get(n) {
                        Some((status, retry_after)) => {
                            let mut resp = (
                                StatusCode::from_u16(*status).unwrap_or(StatusCode::IM_A_TEAPOT),
                                r#"{"error":"access_denied","message":"IP address temporarily blocked"}"#,
                            )
                                .into_response();
                            if let Some(v) = retry_after {
                                resp.headers_mut()
                                    .insert("retry-after", HeaderValue::from_static(v));
                            }
                            resp
                        }
                        None => r#"{"access_token":"t","expires_in":3600}"#.into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/token", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    async fn ask(
        url: &str,
        retry: &RetryPolicy,
        block: Option<&ThrottleBlock>,
    ) -> Result<(Secret, Instant), AuthError> {
        let http = reqwest::Client::new();
        TokenEndpoint {
            url,
            retry,
            default_ttl: 60,
            block,
        }
        .request(
            || Ok((http.post(url), Secret::new("s3cret"))),
            |status, _, _| format!("rejected the key and secret (HTTP {status})"),
        )
        .await
    }

    fn tiny() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn the_token_endpoint_honours_retry_after_and_refuses_to_retry_early() {
        // Within the policy: waited for, then the token.
        let (url, seen) = scripted_token_endpoint(vec![(429, Some("1"))]).await;
        let started = std::time::Instant::now();
        assert!(ask(&url, &tiny(), None).await.is_ok());
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After honoured"
        );
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Beyond it: asked once, and the reason says how long the server wanted.
        let (url, seen) = scripted_token_endpoint(vec![(503, Some("3600")); 4]).await;
        let e = ask(&url, &tiny(), None).await.expect_err("not retried");
        assert!(
            e.0.contains("HTTP 503") && e.0.contains("asked to wait 3600 s") && e.0.contains(&url),
            "{e}"
        );
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_403_after_throttling_is_the_block_not_rejected_credentials() {
        let block = || ThrottleBlock::new(Duration::from_millis(50), 3, Duration::from_secs(600));
        // 429, then the block for two answers, then a token.
        let (url, seen) =
            scripted_token_endpoint(vec![(429, Some("0")), (403, None), (403, None)]).await;
        assert!(ask(&url, &tiny(), Some(&block())).await.is_ok());
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 4);
        // A block seen by another source of the host counts too; one that
        // outlasts the waits is reported as the block.
        let shared = block();
        shared.saw_throttle();
        let (url, _) = scripted_token_endpoint(vec![(403, None); 10]).await;
        let e = ask(&url, &tiny(), Some(&shared.clone()))
            .await
            .expect_err("blocked");
        assert!(e.0.contains("IP block") && e.0.contains("persisted"), "{e}");
        assert!(!e.0.contains("rejected"), "{e}");
        // Without throttling, a 403 is a rejection, asked once.
        let (url, seen) = scripted_token_endpoint(vec![(403, None)]).await;
        let e = ask(&url, &tiny(), Some(&block()))
            .await
            .expect_err("rejected");
        assert!(e.0.contains("rejected"), "{e}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn basic_client_authentication_form_encodes_id_and_secret() {
        use base64::Engine as _;
        let header = basic_client_header("client 1", &Secret::new("s3:cr/t+"));
        let encoded = header.expose().strip_prefix("Basic ").expect("basic");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(decoded, b"client+1:s3%3Acr%2Ft%2B");
        // Plain ids and secrets are sent as they are (the usual case).
        let plain = basic_client_header("abc-123", &Secret::new("f00d"));
        assert_eq!(
            plain.expose(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("abc-123:f00d")
            )
        );
        let shown = format!(
            "{:?}",
            ClientCredential::Basic {
                client_id: "abc".into(),
                secret: Secret::new("CANARY")
            }
        );
        assert!(!shown.contains("CANARY"), "{shown}");
    }
}
