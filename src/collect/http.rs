//! The transport every collector uses: one connection pool, a global cap on
//! requests in flight, authentication headers, rate limits, and retries
//! honouring `Retry-After` with jittered backoff ([`super::retry`]). Paging
//! is in [`super::paging`], storing pages as evidence in [`super::dataset`].
//!
//! Events (see [`crate::progress`]): `retry` before each new attempt,
//! `rate_limit_wait` after a wait of the rate limits, `throttle_block_wait`
//! while a server's block is waited out, `token_refresh` after a 401. None
//! carries a header, a token or a URL's query string.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::auth::{without_url, Auth, AuthError};
use super::ratelimit::AccountKey;
use super::ratelimit::RateLimiter;
use super::retry::{
    endpoint, is_retryable, millis, parse_retry_after, pause, wait_refused, Attempt, RetryPolicy,
};

/// The shared client: one connection pool, one retry policy and a global cap on
/// requests in flight across all sources.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    retry: RetryPolicy,
    in_flight: Arc<Semaphore>,
}

/// A page that could not be fetched, even after retries.
#[derive(Debug)]
pub enum PageError {
    /// Credentials failed: fatal for the source.
    Auth(AuthError),
    /// The server refused or kept failing; the dataset stops here.
    Failed {
        /// HTTP status of the last answer, if any.
        status: Option<u16>,
        /// What went wrong, for `run.json`.
        reason: String,
    },
}

impl HttpClient {
    /// A client with `max_in_flight` concurrent requests at most.
    ///
    /// # Panics
    /// Never on a supported platform: building a rustls client only fails when
    /// the TLS backend cannot initialise.
    pub fn new(retry: RetryPolicy, max_in_flight: usize) -> Result<HttpClient, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("auditpack/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpClient {
            client,
            retry,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
        })
    }

    /// The underlying client, for token endpoints.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// GET `url` until it yields a JSON body or the retries run out.
    /// 429, 500, 502, 503 and 504, timeouts, truncated and non-JSON bodies are
    /// retried (after the server's `Retry-After`; one longer than the policy's
    /// `max_retry_after` is not retried early but fails the request saying
    /// how long the server asked to wait); a 401 refreshes the token once;
    /// other statuses fail at once.
    ///
    /// # Errors
    /// [`PageError::Auth`] when credentials fail, [`PageError::Failed`] otherwise.
    pub async fn get_json(
        &self,
        url: &str,
        auth: &dyn Auth,
        limiters: &[&RateLimiter],
    ) -> Result<(u16, Vec<u8>, Value), PageError> {
        self.send_json(Method::Get, url, Some(auth), limiters).await
    }

    /// Send one request (with the same retry rules as [`HttpClient::get_json`]).
    /// `auth` is `None` for pre-signed URLs (e.g. a report download), which
    /// must never see the bearer token.
    ///
    /// # Errors
    /// [`PageError::Auth`] when credentials fail, [`PageError::Failed`] otherwise.
    pub async fn send_json(
        &self,
        method: Method<'_>,
        url: &str,
        auth: Option<&dyn Auth>,
        limiters: &[&RateLimiter],
    ) -> Result<(u16, Vec<u8>, Value), PageError> {
        self.send(method, url, auth, limiters, None, Expect::Json)
            .await
    }

    /// GET `url` and keep its body as bytes, whatever they are (a ZIP
    /// download), with the same retry rules as [`HttpClient::get_json`] except
    /// that any complete successful body is accepted. `auth` is `None` for
    /// pre-signed URLs.
    ///
    /// # Errors
    /// [`PageError::Auth`] when credentials fail, [`PageError::Failed`] otherwise.
    pub async fn get_bytes(
        &self,
        url: &str,
        auth: Option<&dyn Auth>,
        limiters: &[&RateLimiter],
    ) -> Result<(u16, Vec<u8>), PageError> {
        let (status, body, _) = self
            .send(Method::Get, url, auth, limiters, None, Expect::Bytes)
            .await?;
        Ok((status, body))
    }

    /// [`HttpClient::get_json`] for a server that blocks clients after
    /// throttling them: with `block` given, a 403 that follows a 429 (on any
    /// request sharing `block`'s memory, see [`ThrottleBlock::shared`]) is a
    /// temporary block, waited out and retried up to the block's bounds
    /// instead of failing as a missing permission.
    ///
    /// # Errors
    /// As [`HttpClient::get_json`]; a block that outlasts its bounds fails the
    /// request with a reason saying so.
    pub async fn get_json_with(
        &self,
        url: &str,
        auth: &dyn Auth,
        limiters: &[&RateLimiter],
        block: Option<&ThrottleBlock>,
    ) -> Result<(u16, Vec<u8>, Value), PageError> {
        self.send(Method::Get, url, Some(auth), limiters, block, Expect::Json)
            .await
    }

    /// The one request loop behind every call: limits, auth, retries, blocks.
    pub(crate) async fn send(
        &self,
        method: Method<'_>,
        url: &str,
        auth: Option<&dyn Auth>,
        limiters: &[&RateLimiter],
        block: Option<&ThrottleBlock>,
        expect: Expect,
    ) -> Result<(u16, Vec<u8>, Value), PageError> {
        let mut block_waits = 0;
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let asked = tokio::time::Instant::now();
            for limiter in limiters {
                limiter.acquire().await;
            }
            rate_limit_waited(asked.elapsed());
            let header = match auth {
                Some(auth) => Some(auth.header().await.map_err(PageError::Auth)?),
                None => None,
            };
            let permit = self.in_flight.acquire().await;
            let mut request = match method {
                Method::Get => self.client.get(url),
                Method::Post(body) => self
                    .client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string()),
            };
            if let Some((name, value)) = header {
                request = request.header(name, value.expose());
            }
            for (name, value) in auth.map(|a| a.extra_headers()).unwrap_or_default() {
                request = request.header(name, value);
            }
            let sent = request
                .header(
                    reqwest::header::ACCEPT,
                    match expect {
                        Expect::Json => "application/json",
                        Expect::Bytes => "*/*",
                    },
                )
                .timeout(self.retry.timeout)
                .send()
                .await;
            let (failure, status, retry_after) = match sent {
                Err(e) => (without_url(&e), None, None),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = parse_retry_after(resp.headers().get(RETRY_AFTER));
                    let body = resp.bytes().await;
                    drop(permit);
                    match (status, body) {
                        (s, Ok(body)) if s.is_success() && expect == Expect::Bytes => {
                            return Ok((s.as_u16(), body.to_vec(), Value::Null))
                        }
                        (s, Ok(body)) if s.is_success() => {
                            match serde_json::from_slice::<Value>(&body) {
                                Ok(json) => return Ok((s.as_u16(), body.to_vec(), json)),
                                Err(e) => (
                                    format!("HTTP {s} with a body that is not complete JSON ({e})"),
                                    Some(s.as_u16()),
                                    None,
                                ),
                            }
                        }
                        (s, Err(e)) => (
                            format!("HTTP {s} but the body was cut off ({})", without_url(&e)),
                            Some(s.as_u16()),
                            None,
                        ),
                        (StatusCode::UNAUTHORIZED, Ok(_)) if !refreshed && auth.is_some() => {
                            refreshed = true;
                            tracing::debug!(
                                event = "token_refresh",
                                endpoint = %endpoint(url),
                                "HTTP 401: fetching a new token and trying again"
                            );
                            if let Some(auth) = auth {
                                auth.invalidate().await;
                            }
                            continue;
                        }
                        (StatusCode::FORBIDDEN, Ok(body))
                            if block.is_some_and(ThrottleBlock::recently_throttled) =>
                        {
                            let Some(block) = block else { continue };
                            let detail = error_detail(&body);
                            if let Err(reason) =
                                block.wait_out(url, &detail, &mut block_waits).await
                            {
                                return Err(PageError::Failed {
                                    status: Some(403),
                                    reason,
                                });
                            }
                            // A block wait is not an attempt: the request never reached the API.
                            attempt -= 1;
                            continue;
                        }
                        (s, Ok(body)) if !is_retryable(s) => {
                            return Err(PageError::Failed {
                                status: Some(s.as_u16()),
                                reason: format!("HTTP {s}{}", error_detail(&body)),
                            })
                        }
                        (s, Ok(body)) => {
                            if s == StatusCode::TOO_MANY_REQUESTS {
                                if let Some(block) = block {
                                    block.saw_throttle();
                                }
                            }
                            (
                                format!("HTTP {s}{}", error_detail(&body)),
                                Some(s.as_u16()),
                                retry_after,
                            )
                        }
                    }
                }
            };
            if let Some(why) = wait_refused(&self.retry, retry_after) {
                return Err(PageError::Failed {
                    status,
                    reason: format!("{failure}; {why}"),
                });
            }
            if attempt >= self.retry.max_attempts {
                return Err(PageError::Failed {
                    status,
                    reason: format!("{failure}; gave up after {attempt} attempts"),
                });
            }
            pause(
                &self.retry,
                Attempt {
                    number: attempt,
                    reason: &failure,
                    status,
                    retry_after,
                    url,
                },
            )
            .await;
        }
    }
}

/// Shortest rate-limit wait logged at all, and shortest logged at `info`.
const RATE_WAIT_DEBUG: Duration = Duration::from_millis(10);
const RATE_WAIT_INFO: Duration = Duration::from_secs(1);

/// Log a wait for the rate limits: long ones at `info`, short ones at `debug`.
fn rate_limit_waited(waited: Duration) {
    if waited >= RATE_WAIT_INFO {
        tracing::info!(
            event = "rate_limit_wait",
            waited_ms = millis(waited),
            "waited for the API's rate limit"
        );
    } else if waited >= RATE_WAIT_DEBUG {
        tracing::debug!(
            event = "rate_limit_wait",
            waited_ms = millis(waited),
            "waited for the API's rate limit"
        );
    }
}

/// Memory of throttling for an API that blocks clients after 429s (Datto RMM
/// answers 403 to an IP address that kept going after 429), with how long to
/// wait out such a block. Cloning shares the memory.
#[derive(Clone, Debug)]
pub struct ThrottleBlock {
    last_throttled: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    /// How long a 429 keeps a later 403 counted as a block.
    pub window: Duration,
    /// How long to wait before retrying a blocked request.
    pub wait: Duration,
    /// Waits per request before giving up and recording the block.
    pub max_waits: u32,
}

impl ThrottleBlock {
    /// A block memory of its own: wait `wait` at most `max_waits` times per
    /// request; a 429 makes 403s count as blocks for the next `window`.
    pub fn new(wait: Duration, max_waits: u32, window: Duration) -> ThrottleBlock {
        ThrottleBlock {
            last_throttled: Arc::default(),
            window,
            wait,
            max_waits,
        }
    }

    /// Like [`ThrottleBlock::new`], with the memory every source of the same
    /// API host shares in this process (the registry beside the shared rate
    /// limits, [`super::ratelimit::shared_limiter`]): the server blocks the
    /// client's IP address, so a 429 met by one source (one site of an MSP's
    /// account, or another account on the same platform) makes the next 403
    /// of any of them a block to wait out, not a missing permission. Each
    /// source keeps its own `wait` and `max_waits`.
    pub fn shared(
        account: &AccountKey,
        wait: Duration,
        max_waits: u32,
        window: Duration,
    ) -> ThrottleBlock {
        ThrottleBlock {
            last_throttled: super::ratelimit::shared_throttle_memory(account),
            window,
            wait,
            max_waits,
        }
    }

    /// Record a 429.
    pub fn saw_throttle(&self) {
        if let Ok(mut last) = self.last_throttled.lock() {
            *last = Some(tokio::time::Instant::now());
        }
    }

    /// Whether a 429 was seen within the window.
    pub fn recently_throttled(&self) -> bool {
        self.last_throttled
            .lock()
            .ok()
            .and_then(|last| *last)
            .is_some_and(|t| t.elapsed() <= self.window)
    }

    /// Wait out a block met by a request to `url` that has waited `waits`
    /// times so far (counted up here): `Err` with the reason to record once
    /// the block has outlasted [`ThrottleBlock::max_waits`], the server's
    /// `detail` in it.
    pub(crate) async fn wait_out(
        &self,
        url: &str,
        detail: &str,
        waits: &mut u32,
    ) -> Result<(), String> {
        if *waits >= self.max_waits {
            return Err(self.persisted(detail, *waits));
        }
        *waits += 1;
        tracing::warn!(
            event = "throttle_block_wait",
            wait = *waits,
            max_waits = self.max_waits,
            delay_ms = millis(self.wait),
            endpoint = %endpoint(url),
            "HTTP 403 after throttling: waiting out the server's block"
        );
        tokio::time::sleep(self.wait).await;
        Ok(())
    }

    /// The reason a block that outlasted `waits` waits gives.
    fn persisted(&self, detail: &str, waits: u32) -> String {
        format!(
            "HTTP 403{detail}: the server blocked this client (IP block after HTTP 429 throttling) and the block persisted through {waits} wait(s) of {} s; lower requests_per_minute or run later",
            self.wait.as_secs()
        )
    }
}

/// The HTTP method of a request, with the JSON body of a POST.
#[derive(Clone, Copy, Debug)]
pub enum Method<'a> {
    /// GET.
    Get,
    /// POST with a JSON body.
    Post(&'a Value),
}

impl Method<'_> {
    /// The method's name, for the custody log.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post(_) => "POST",
        }
    }
}

/// What a successful answer's body must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Complete JSON (anything else is retried as a cut-off body).
    Json,
    /// Any bytes, kept as they are.
    Bytes,
}

/// `: code: message` from a Graph-style or OAuth-style error body, if any.
pub(crate) fn error_detail(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let (code, message) = match json.get("error") {
        Some(Value::Object(e)) => (
            e.get("code").and_then(Value::as_str),
            e.get("message").and_then(Value::as_str),
        ),
        Some(Value::String(code)) => (
            Some(code.as_str()),
            json.get("error_description").and_then(Value::as_str),
        ),
        _ => (None, json.get("message").and_then(Value::as_str)),
    };
    let text: String = [code, message]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    if text.is_empty() {
        text
    } else {
        format!(" ({text})")
    }
}
