//! Fetching a dataset: every page of it, through the shared transport, each
//! page stored as evidence (with its custody line) as it arrives. A page that
//! fails after retries ends the dataset as partial, never silently.
//!
//! Events (see [`crate::progress`]), inside a `dataset` span naming the
//! dataset: `dataset_started` on the first request of a dataset (of its
//! [`PageCounter`]), `page_stored` with the page number and its records for
//! every page stored, and `request_incomplete` with the status and reason
//! when a request ends before its last page. The dataset's final status is
//! logged by [`super::collect_all`] (`dataset_finished`), once per dataset
//! however many requests fed it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;
use tracing::Instrument as _;

use super::auth::{Auth, AuthError};
use super::http::{Expect, HttpClient, Method, PageError, ThrottleBlock};
use super::paging::Pager;
use super::ratelimit::RateLimiter;
use crate::evidence::{DatasetReport, DatasetStatus, EvidenceWriter, PageMeta};

/// Options of [`fetch_dataset_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FetchOptions<'a> {
    /// Treat a 403 after a 429 as a temporary block (see [`ThrottleBlock`]).
    pub block: Option<&'a ThrottleBlock>,
    /// Pages already stored in this dataset by earlier calls (page files
    /// continue from here, for datasets fetched from many URLs).
    pub pages_before: usize,
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
pub struct PageCounter {
    pages: AtomicUsize,
    started: AtomicBool,
}

impl PageCounter {
    /// A counter whose next page is `pages + 1` (pages already stored; a
    /// dataset with stored pages has started already).
    pub fn starting_after(pages: usize) -> PageCounter {
        PageCounter {
            pages: AtomicUsize::new(pages),
            started: AtomicBool::new(pages > 0),
        }
    }

    fn next(&self) -> usize {
        self.pages.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Pages numbered so far.
    pub fn pages(&self) -> usize {
        self.pages.load(Ordering::SeqCst)
    }

    /// Log `dataset_started` if this is the dataset's first request.
    fn start(&self) {
        if !self.started.swap(true, Ordering::SeqCst) {
            tracing::info!(event = "dataset_started", "dataset started");
        }
    }
}

/// The span every event of one dataset's requests happens in. At `error`
/// level so that its name survives any level filter (an `error` span is
/// enabled whenever events are).
fn dataset_span(dataset: &str) -> tracing::Span {
    tracing::error_span!("dataset", dataset)
}

/// Log a stored page.
fn page_stored(page: usize, records: usize) {
    tracing::info!(event = "page_stored", page, records, "page stored");
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
    fetch_one_with(
        http,
        evidence,
        meta,
        (method, url),
        auth,
        limiters,
        counter,
        None,
    )
    .await
}

/// [`fetch_one`] for a server that blocks clients after throttling them:
/// with `block`, a 403 after a 429 is waited out (see [`ThrottleBlock`]).
///
/// # Errors
/// Only when credentials fail.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch_one_with(
    http: &HttpClient,
    evidence: &EvidenceWriter,
    meta: (&str, &str, &str),
    (method, url): (Method<'_>, &str),
    auth: Option<&dyn Auth>,
    limiters: &[&RateLimiter],
    counter: &PageCounter,
    block: Option<&ThrottleBlock>,
) -> Result<Result<Value, (Option<u16>, String)>, AuthError> {
    async {
        counter.start();
        let sent = http
            .send(method, url, auth, limiters, block, Expect::Json)
            .await;
        let (status, body, json) = match sent {
            Ok(ok) => ok,
            Err(PageError::Auth(e)) => return Err(e),
            Err(PageError::Failed { status, reason }) => {
                request_incomplete(DatasetStatus::Failed, status, &reason);
                return Ok(Err((status, reason)));
            }
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
    .instrument(dataset_span(meta.2))
    .await
}

/// Log a request that ended before its last page.
fn request_incomplete(status: DatasetStatus, http_status: Option<u16>, reason: &str) {
    tracing::warn!(
        event = "request_incomplete",
        status = status_name(status),
        http_status,
        reason,
        "request ended early"
    );
}

/// A dataset status as `run.json` spells it.
pub(crate) fn status_name(status: DatasetStatus) -> &'static str {
    match status {
        DatasetStatus::Complete => "complete",
        DatasetStatus::Partial => "partial",
        DatasetStatus::Failed => "failed",
    }
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
    let stored = evidence
        .write_page_as(&page, extension, body)
        .map_err(|e| (None, format!("could not be stored: {e}")));
    match &stored {
        // A job status or a file: no list, so no records to count.
        Ok(_) => page_stored(page.page, 0),
        Err((_, reason)) => request_incomplete(DatasetStatus::Failed, None, reason),
    }
    stored
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
    async {
        counter.start();
        let (status, body) = match http.get_bytes(url, auth, limiters).await {
            Ok(ok) => ok,
            Err(PageError::Auth(e)) => return Err(e),
            Err(PageError::Failed { status, reason }) => {
                request_incomplete(DatasetStatus::Failed, status, &reason);
                return Ok(Err((status, reason)));
            }
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
    .instrument(dataset_span(meta.2))
    .await
}

async fn fetch_with(
    http: &HttpClient,
    evidence: &EvidenceWriter,
    req: DatasetRequest<'_>,
    counter: &PageCounter,
    method: Method<'_>,
    block: Option<&ThrottleBlock>,
) -> Result<Fetched, AuthError> {
    let span = dataset_span(req.dataset);
    async {
        counter.start();
        let fetched = fetch_pages_of(http, evidence, req, counter, method, block).await;
        if let Ok(Fetched { report, .. }) = &fetched {
            if report.status != DatasetStatus::Complete {
                request_incomplete(
                    report.status,
                    fetched.as_ref().ok().and_then(|f| f.failed_status),
                    report.reason.as_deref().unwrap_or(""),
                );
            }
        }
        fetched
    }
    .instrument(span)
    .await
}

async fn fetch_pages_of(
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
            Err(PageError::Failed {
                status: Some(code), ..
            }) if pages > 0 && req.pager.ends_list(&url, code) => {
                return Ok(Fetched {
                    report: DatasetReport {
                        status: DatasetStatus::Complete,
                        pages,
                        records,
                        reason: Some(format!(
                            "page {} was answered {code}, which this API documents for an empty list: the list ends at page {pages}",
                            pages + 1
                        )),
                    },
                    failed_status: None,
                });
            }
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
        let number = counter.next();
        let meta = PageMeta {
            source: req.source,
            source_type: req.source_type,
            dataset: req.dataset,
            page: number,
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
        page_stored(number, info.records);
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
