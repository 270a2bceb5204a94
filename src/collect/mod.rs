//! What every source's collector shares: the [`Collector`] trait, the HTTP
//! transport, authentication, retries, paging, rate limits, storing
//! evidence, and the run of every configured source at once.
//!
//! Collectors never judge. They describe datasets, the shared layer fetches and
//! stores them page by page, and each returns a [`SourceReport`] saying how
//! complete its evidence is. A failing source never aborts the run. Each
//! source's own collector lives in its folder under [`crate::sources`].
//!
//! Every collector runs inside a `source` span (its name and type), so each
//! event of the shared layer says which source it belongs to; [`collect_all`]
//! logs `source_started`, then one `dataset_finished` per dataset and
//! `source_finished` with the source's status (see [`crate::progress`]).

pub mod auth;
pub mod dataset;
pub mod files;
pub mod http;
pub mod paging;
pub mod ratelimit;
pub mod retry;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tracing::Instrument as _;

use crate::evidence::{DatasetReport, DatasetStatus, EvidenceWriter, SourceReport, SourceStatus};
use crate::secret::SecretRef;
use http::HttpClient;

/// A boxed, sendable future (collectors are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What every collector gets to work with.
pub struct CollectContext {
    /// The shared HTTP layer.
    pub http: HttpClient,
    /// Where evidence goes.
    pub evidence: Arc<EvidenceWriter>,
}

/// A configured source that can collect its evidence.
///
/// Contract: `collect` stores raw evidence only through [`dataset::fetch_dataset`]
/// (or the evidence writer), never panics on outside data, and returns a report
/// in which every dataset it was meant to fetch appears with its status. A
/// credential problem makes the whole source `failed` with the reason.
pub trait Collector: Send + Sync {
    /// The source's name from the config.
    fn name(&self) -> &str;
    /// The collector type (`m365`, `ninjaone`, ...).
    fn source_type(&self) -> &'static str;
    /// Collect every dataset.
    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> BoxFuture<'a, SourceReport>;
    /// The secrets this source reads, each with the stem of the config key
    /// that names it (`client_secret` for `client_secret_env` or
    /// `client_secret_file`), so that a run can check every one before its
    /// first request ([`check_secrets`]). None by default.
    fn secrets(&self) -> Vec<(&'static str, SecretRef)> {
        Vec::new()
    }
}

/// Check that every secret the sources name can be read (a variable that is
/// set and not empty, a file that exists, is readable and not empty), so that
/// a run never collects with a credential it does not have. Each problem is
/// one line naming the source, the config key and the variable or file, never
/// a value.
pub fn check_secrets(collectors: &[Box<dyn Collector>]) -> Vec<String> {
    let mut problems = Vec::new();
    for c in collectors {
        for (what, secret) in c.secrets() {
            if let Err(e) = secret.resolve() {
                problems.push(format!(
                    "[sources.{}] `{}`: {e}",
                    c.name(),
                    secret.key(what)
                ));
            }
        }
    }
    problems
}

/// Run every collector concurrently; one report per source name.
pub async fn collect_all(
    collectors: &[Box<dyn Collector>],
    ctx: &CollectContext,
) -> BTreeMap<String, SourceReport> {
    let tasks = collectors.iter().map(|c| {
        // At `error` level so the source's name survives any level filter.
        let span = tracing::error_span!("source", source = c.name(), source_type = c.source_type());
        async move {
            tracing::info!(event = "source_started", "source started");
            let report = c.collect(ctx).await;
            log_finished(&report);
            (c.name().to_owned(), report)
        }
        .instrument(span)
    });
    join_all(tasks).await.into_iter().collect()
}

/// Log each dataset's final status, then the source's, with their counts and
/// reasons (the reasons `run.json` records: no secret, no URL query).
fn log_finished(report: &SourceReport) {
    for (name, d) in &report.datasets {
        let status = dataset::status_name(d.status);
        let reason = d.reason.as_deref();
        if d.status == DatasetStatus::Complete {
            tracing::info!(
                event = "dataset_finished",
                dataset = name.as_str(),
                status,
                pages = d.pages,
                records = d.records,
                "dataset finished"
            );
        } else {
            tracing::warn!(
                event = "dataset_finished",
                dataset = name.as_str(),
                status,
                pages = d.pages,
                records = d.records,
                reason,
                "dataset finished incomplete"
            );
        }
    }
    let status = match report.status {
        SourceStatus::Complete => "complete",
        SourceStatus::Partial => "partial",
        SourceStatus::Failed => "failed",
    };
    let pages: usize = report.datasets.values().map(|d| d.pages).sum();
    let records: usize = report.datasets.values().map(|d| d.records).sum();
    let datasets = report.datasets.len();
    let reason = report.reason.as_deref();
    if report.status == SourceStatus::Complete {
        tracing::info!(
            event = "source_finished",
            status,
            datasets,
            pages,
            records,
            "source finished"
        );
    } else {
        tracing::warn!(
            event = "source_finished",
            status,
            datasets,
            pages,
            records,
            reason,
            "source finished incomplete"
        );
    }
}

/// A source's report from its datasets' results. A credential failure marks
/// that dataset failed and names the cause as the source's reason.
pub(crate) fn finish(
    source_type: &str,
    results: Vec<(&str, std::result::Result<DatasetReport, auth::AuthError>)>,
) -> SourceReport {
    let mut auth_failure = None;
    let mut datasets = BTreeMap::new();
    for (name, result) in results {
        let report = result.unwrap_or_else(|e| {
            let reason = format!("authentication failed: {e}");
            auth_failure.get_or_insert(reason.clone());
            DatasetReport {
                status: DatasetStatus::Failed,
                pages: 0,
                records: 0,
                reason: Some(reason),
            }
        });
        datasets.insert(name.to_owned(), report);
    }
    let mut report = SourceReport::from_datasets(source_type, datasets);
    if auth_failure.is_some() {
        report.reason = auth_failure;
    }
    report
}

/// Await many futures concurrently on the current task, keeping their order.
pub(crate) async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in set.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
