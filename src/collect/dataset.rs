//! Fetching a dataset: every page of it, through the shared transport, each
//! page stored as evidence (with its custody line) as it arrives. A page that
//! fails after retries ends the dataset as partial, never silently.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

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
