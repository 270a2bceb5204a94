//! The one HTTP layer every collector uses: authentication, rate limits,
//! retries honouring `Retry-After` with jittered backoff, timeouts, paging, and
//! storing every page as evidence. Collectors describe what to fetch; they never
//! retry or page by themselves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::auth::{without_url, Auth, AuthError};
use super::ratelimit::RateLimiter;
use crate::evidence::{DatasetReport, DatasetStatus, EvidenceWriter, PageMeta};

/// Bounds on retrying one request.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff delay when the server gives no `Retry-After`.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; longer waits are cut to this.
    pub max_retry_after: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            timeout: Duration::from_secs(60),
        }
    }
}

/// The delay before attempt `attempt + 1`: the server's `Retry-After` if given
/// (capped), else exponential backoff with jitter in [½, 1] of the step.
pub(crate) fn backoff_delay(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(policy.max_retry_after);
    }
    let step = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(policy.max_delay);
    step.mul_f64(0.5 + fastrand::f64() * 0.5)
}

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
    /// retried; a 401 refreshes the token once; other statuses fail at once.
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
    /// request sharing `block`) is a temporary block, waited out and retried up
    /// to the block's bounds instead of failing as a missing permission.
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
    async fn send(
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
            for limiter in limiters {
                limiter.acquire().await;
            }
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
                            if let Some(auth) = auth {
                                auth.invalidate().await;
                            }
                            continue;
                        }
                        (StatusCode::FORBIDDEN, Ok(body))
                            if block.is_some_and(ThrottleBlock::recently_throttled) =>
                        {
                            let Some(block) = block else { continue };
                            if block_waits >= block.max_waits {
                                return Err(PageError::Failed {
                                    status: Some(403),
                                    reason: format!(
                                        "HTTP 403{}: the server blocked this client (IP block after HTTP 429 throttling) and the block persisted through {block_waits} wait(s) of {} s; lower requests_per_minute or run later",
                                        error_detail(&body),
                                        block.wait.as_secs()
                                    ),
                                });
                            }
                            block_waits += 1;
                            // A block wait is not an attempt: the request never reached the API.
                            attempt -= 1;
                            tokio::time::sleep(block.wait).await;
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
            if attempt >= self.retry.max_attempts {
                return Err(PageError::Failed {
                    status,
                    reason: format!("{failure}; gave up after {attempt} attempts"),
                });
            }
            tokio::time::sleep(backoff_delay(&self.retry, attempt, retry_after)).await;
        }
    }
}

/// Shared memory of throttling for an API that blocks clients after 429s
/// (Datto RMM answers 403 to an IP address that kept going after 429).
#[derive(Debug)]
pub struct ThrottleBlock {
    last_throttled: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// How long a 429 keeps a later 403 counted as a block.
    pub window: Duration,
    /// How long to wait before retrying a blocked request.
    pub wait: Duration,
    /// Waits per request before giving up and recording the block.
    pub max_waits: u32,
}

impl ThrottleBlock {
    /// A block memory: wait `wait` at most `max_waits` times per request; a 429
    /// makes 403s count as blocks for the next `window`.
    pub fn new(wait: Duration, max_waits: u32, window: Duration) -> ThrottleBlock {
        ThrottleBlock {
            last_throttled: std::sync::Mutex::new(None),
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
}

/// Options of [`fetch_dataset_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FetchOptions<'a> {
    /// Treat a 403 after a 429 as a temporary block (see [`ThrottleBlock`]).
    pub block: Option<&'a ThrottleBlock>,
    /// Pages already stored in this dataset by earlier calls (page files
    /// continue from here, for datasets fetched from many URLs).
    pub pages_before: usize,
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
enum Expect {
    /// Complete JSON (anything else is retried as a cut-off body).
    Json,
    /// Any bytes, kept as they are.
    Bytes,
}

fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs.unsigned_abs()))
}

/// `: code: message` from a Graph-style or OAuth-style error body, if any.
fn error_detail(body: &[u8]) -> String {
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

/// How a dataset pages, and where a page's records are.
pub trait Pager: Send {
    /// The records on `page` and the URL of the next page, if any.
    ///
    /// # Errors
    /// When the page does not have the expected shape.
    fn read(&mut self, url: &str, page: &Value) -> Result<PageInfo, String>;
}

/// What a pager found on one page.
#[derive(Debug)]
pub struct PageInfo {
    /// Records on this page.
    pub records: usize,
    /// The next page's URL.
    pub next: Option<String>,
}

/// Microsoft Graph and Defender: records in `value`, next page at
/// `@odata.nextLink`, followed exactly as given.
pub struct ODataPager;

impl Pager for ODataPager {
    fn read(&mut self, _url: &str, page: &Value) -> Result<PageInfo, String> {
        let records = page
            .get("value")
            .and_then(Value::as_array)
            .ok_or("page has no `value` array")?
            .len();
        let next = match page.get("@odata.nextLink") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("`@odata.nextLink` is not a string".into()),
        };
        Ok(PageInfo { records, next })
    }
}

/// A single JSON object (e.g. a policy): one record, no paging.
pub struct SingleObject;

impl Pager for SingleObject {
    fn read(&mut self, _url: &str, page: &Value) -> Result<PageInfo, String> {
        if page.is_object() {
            Ok(PageInfo {
                records: 1,
                next: None,
            })
        } else {
            Err("expected a JSON object".into())
        }
    }
}

/// One dataset to fetch.
pub struct DatasetRequest<'a> {
    /// Source name (evidence folder).
    pub source: &'a str,
    /// Collector type.
    pub source_type: &'a str,
    /// Dataset name (evidence folder).
    pub dataset: &'a str,
    /// First page URL.
    pub url: String,
    /// Paging style.
    pub pager: Box<dyn Pager + 'a>,
    /// Credentials.
    pub auth: &'a dyn Auth,
    /// Rate limits that apply to every request of this dataset.
    pub limiters: Vec<&'a RateLimiter>,
    /// What a 403 most likely means (a missing permission or licence).
    pub on_forbidden: &'a str,
}

/// Upper bound on pages per dataset: a server that loops its `nextLink`
/// must not make a run endless.
const MAX_PAGES: usize = 1_000_000;

/// Fetch every page of a dataset, storing each as evidence as it arrives.
///
/// A page that fails after retries ends the dataset as `partial` (or `failed`
/// when it was the first page); it is never silently dropped.
///
/// # Errors
/// Only when credentials fail, which is fatal for the whole source.
pub async fn fetch_dataset(
    http: &HttpClient,
    evidence: &EvidenceWriter,
    req: DatasetRequest<'_>,
) -> Result<DatasetReport, AuthError> {
    let counter = PageCounter::default();
    Ok(fetch_pages(http, evidence, req, &counter).await?.report)
}

/// Numbers the pages of one dataset across many requests, so that a dataset
/// fed by one request per parent (instances per review, state per device) has
/// continuous page numbers `page-00001.json`, `page-00002.json`, ...
#[derive(Debug, Default)]
pub struct PageCounter(AtomicUsize);

impl PageCounter {
    /// A counter whose next page is `pages + 1` (pages already stored).
    pub fn starting_after(pages: usize) -> PageCounter {
        PageCounter(AtomicUsize::new(pages))
    }

    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Pages numbered so far.
    pub fn pages(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// What [`fetch_pages`] did.
#[derive(Debug)]
pub struct Fetched {
    /// Pages and records stored by this call, and whether it finished.
    pub report: DatasetReport,
    /// HTTP status of the request that failed, if one did.
    pub failed_status: Option<u16>,
}

/// Like [`fetch_dataset`], numbering stored pages with `counter` (shared by
/// every request feeding the same dataset). The report counts only the pages
/// this call stored; merge several with [`merge_reports`].
///
/// # Errors
/// Only when credentials fail, which is fatal for the whole source.
pub async fn fetch_pages(
    http: &HttpClient,
    evidence: &EvidenceWriter,
    req: DatasetRequest<'_>,
    counter: &PageCounter,
) -> Result<Fetched, AuthError> {
    fetch_with(http, evidence, req, counter, Method::Get, None).await
}

/// [`fetch_dataset`] with [`FetchOptions`]. The report counts only the pages
/// this call stored.
///
/// # Errors
/// Only when credentials fail, which is fatal for the whole source.
pub async fn fetch_dataset_with(
    http: &HttpClient,
    evidence: &EvidenceWriter,
    req: DatasetRequest<'_>,
    options: FetchOptions<'_>,
) -> Result<DatasetReport, AuthError> {
    let counter = PageCounter::starting_after(options.pages_before);
    Ok(
        fetch_with(http, evidence, req, &counter, Method::Get, options.block)
            .await?
            .report,
    )
}

/// One request whose answer is a single page (e.g. creating an export job
/// with POST, or a download from a pre-signed URL when `auth` is `None`),
/// stored under `counter`'s next page number.
///
/// # Errors
/// Only when credentials fail.
#[allow(clippy::too_many_arguments)]
pub async fn fetch_one(
    http: &HttpClient,
    evidence: &EvidenceWriter,
    meta: (&str, &str, &str),
    method: Method<'_>,
    url: &str,
    auth: Option<&dyn Auth>,
    limiters: &[&RateLimiter],
    counter: &PageCounter,
) -> Result<Result<Value, (Option<u16>, String)>, AuthError> {
    let (status, body, json) = match http.send_json(method, url, auth, limiters).await {
        Ok(ok) => ok,
        Err(PageError::Auth(e)) => return Err(e),
        Err(PageError::Failed { status, reason }) => return Ok(Err((status, reason))),
    };
    let stored = store_one(
        evidence,
        meta,
        (method, url, status),
        "json",
        &body,
        counter,
    );
    Ok(stored.map(|_| json))
}

/// Store the answer to one request (`method`, `url`, `status`) as the next
/// page of `meta`'s dataset; its run-relative path, or why it was not stored.
fn store_one(
    evidence: &EvidenceWriter,
    (source, source_type, dataset): (&str, &str, &str),
    (method, url, status): (Method<'_>, &str, u16),
    extension: &str,
    body: &[u8],
    counter: &PageCounter,
) -> Result<String, (Option<u16>, String)> {
    let page = PageMeta {
        source,
        source_type,
        dataset,
        page: counter.next(),
        method: method.name(),
        url,
        http_status: Some(status),
    };
    evidence
        .write_page_as(&page, extension, body)
        .map_err(|e| (None, format!("could not be stored: {e}")))
}

/// One GET whose answer is a file, not JSON (e.g. a ZIP report from a
/// pre-signed URL when `auth` is `None`): stored byte for byte under
/// `counter`'s next page number with the file extension `extension`.
/// Returns the run-relative evidence path and the bytes.
///
/// # Errors
/// Only when credentials fail.
#[allow(clippy::too_many_arguments)]
pub async fn fetch_file(
    http: &HttpClient,
    evidence: &EvidenceWriter,
    meta: (&str, &str, &str),
    url: &str,
    extension: &str,
    auth: Option<&dyn Auth>,
    limiters: &[&RateLimiter],
    counter: &PageCounter,
) -> Result<Result<(String, Vec<u8>), (Option<u16>, String)>, AuthError> {
    let (status, body) = match http.get_bytes(url, auth, limiters).await {
        Ok(ok) => ok,
        Err(PageError::Auth(e)) => return Err(e),
        Err(PageError::Failed { status, reason }) => return Ok(Err((status, reason))),
    };
    let stored = store_one(
        evidence,
        meta,
        (Method::Get, url, status),
        extension,
        &body,
        counter,
    );
    Ok(stored.map(|path| (path, body)))
}

async fn fetch_with(
    http: &HttpClient,
    evidence: &EvidenceWriter,
    mut req: DatasetRequest<'_>,
    counter: &PageCounter,
    method: Method<'_>,
    block: Option<&ThrottleBlock>,
) -> Result<Fetched, AuthError> {
    let mut url = req.url.clone();
    let mut pages = 0;
    let mut records = 0;
    let mut seen = std::collections::HashSet::new();
    let stop = |status, reason: String, pages, records, failed_status| Fetched {
        report: DatasetReport {
            status,
            pages,
            records,
            reason: Some(reason),
        },
        failed_status,
    };
    loop {
        if !seen.insert(url.clone()) || pages >= MAX_PAGES {
            return Ok(stop(
                DatasetStatus::Partial,
                format!("the server's paging repeated a page link after page {pages}"),
                pages,
                records,
                None,
            ));
        }
        let failed_status = if pages == 0 {
            DatasetStatus::Failed
        } else {
            DatasetStatus::Partial
        };
        let (status, body, json) = match http
            .send(
                method,
                &url,
                Some(req.auth),
                &req.limiters,
                block,
                Expect::Json,
            )
            .await
        {
            Ok(ok) => ok,
            Err(PageError::Auth(e)) => return Err(e),
            Err(PageError::Failed { status, reason }) => {
                let hint = if status == Some(403) {
                    format!("; {}", req.on_forbidden)
                } else {
                    String::new()
                };
                return Ok(stop(
                    failed_status,
                    format!("page {} failed: {reason}{hint}", pages + 1),
                    pages,
                    records,
                    status,
                ));
            }
        };
        let info = match req.pager.read(&url, &json) {
            Ok(info) => info,
            Err(e) => {
                return Ok(stop(
                    failed_status,
                    format!("page {} is malformed: {e}", pages + 1),
                    pages,
                    records,
                    None,
                ))
            }
        };
        let meta = PageMeta {
            source: req.source,
            source_type: req.source_type,
            dataset: req.dataset,
            page: counter.next(),
            method: method.name(),
            url: &url,
            http_status: Some(status),
        };
        if let Err(e) = evidence.write_page(&meta, &body) {
            return Ok(stop(
                failed_status,
                format!("page {} could not be stored: {e}", pages + 1),
                pages,
                records,
                None,
            ));
        }
        drop(json);
        drop(body);
        pages += 1;
        records += info.records;
        match info.next {
            Some(next) => url = next,
            None => {
                return Ok(Fetched {
                    report: DatasetReport {
                        status: DatasetStatus::Complete,
                        pages,
                        records,
                        reason: None,
                    },
                    failed_status: None,
                })
            }
        }
    }
}

/// One report for a dataset fed by many requests: complete when every part
/// is; failed when no page was stored and some part is not complete; partial
/// otherwise. The
/// reasons of the parts that are not complete are kept (the first few).
pub fn merge_reports(parts: &[DatasetReport]) -> DatasetReport {
    let pages = parts.iter().map(|p| p.pages).sum();
    let records = parts.iter().map(|p| p.records).sum();
    let bad: Vec<&DatasetReport> = parts
        .iter()
        .filter(|p| p.status != DatasetStatus::Complete)
        .collect();
    if bad.is_empty() {
        return DatasetReport {
            status: DatasetStatus::Complete,
            pages,
            records,
            reason: None,
        };
    }
    let status = if pages == 0 {
        DatasetStatus::Failed
    } else {
        DatasetStatus::Partial
    };
    let mut reason: Vec<String> = bad
        .iter()
        .take(3)
        .filter_map(|p| p.reason.clone())
        .collect();
    if bad.len() > 3 {
        reason.push(format!("{} more requests failed", bad.len() - 3));
    }
    DatasetReport {
        status,
        pages,
        records,
        reason: Some(format!(
            "{} of {} requests incomplete: {}",
            bad.len(),
            parts.len(),
            reason.join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for attempt in 1..20 {
            let d = backoff_delay(&p, attempt, None);
            assert!(d <= p.max_delay);
        }
        let d3 = backoff_delay(&p, 3, None);
        assert!(d3 >= Duration::from_secs(1) && d3 <= Duration::from_secs(2));
        assert_eq!(
            backoff_delay(&p, 1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff_delay(&p, 1, Some(Duration::from_secs(9999))),
            p.max_retry_after
        );
    }

    #[test]
    fn odata_pager_reads_value_and_next_link() {
        let page = serde_json::json!({"value": [1, 2], "@odata.nextLink": "https://x/next"});
        let info = ODataPager.read("u", &page).expect("valid page");
        assert_eq!(info.records, 2);
        assert_eq!(info.next.as_deref(), Some("https://x/next"));
        assert!(ODataPager.read("u", &serde_json::json!({"x": 1})).is_err());
    }
}
