//! The run history read from an object store: [`S3Summaries`] is one
//! organisation's summaries in the bucket (`<prefix>/<org>/summaries/`), a
//! [`crate::history::SummaryStore`], so `auditpack history [rebuild]` reads
//! what every machine writing to the bucket stored (fleet shards on several
//! machines included) into the local index.
//!
//! The history's calls are synchronous; each request runs on the runtime
//! the store was connected on, driven from a thread of its own, so the
//! store can be read from any thread (an async task's included).

use std::future::Future;
use std::path::Path;

use crate::error::{Error, Result};
use crate::history::index::HistoryScope;
use crate::history::{valid_run_id, RunSummary, SummaryStore};

use super::{summary_key, S3Store};

/// One organisation's run summaries in the bucket.
pub struct S3Summaries {
    store: S3Store,
    org: String,
    runtime: tokio::runtime::Handle,
}

impl S3Summaries {
    /// The summaries of organisation `org` (its slug) in `store`, whose
    /// requests run on `runtime` (the one `store` was connected on).
    pub fn new(store: S3Store, org: &str, runtime: tokio::runtime::Handle) -> S3Summaries {
        S3Summaries {
            store,
            org: org.to_owned(),
            runtime,
        }
    }

    fn block<T: Send>(&self, work: impl Future<Output = Result<T>> + Send) -> Result<T> {
        let runtime = &self.runtime;
        std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(work))
                .join()
                .unwrap_or_else(|_| Err(Error::invalid("a request to the object store panicked")))
        })
    }
}

impl SummaryStore for S3Summaries {
    fn location(&self) -> String {
        format!("{}/{}/summaries", self.store.location(), self.org)
    }

    fn list(&self) -> Result<Vec<String>> {
        let dir = format!("{}/summaries/", self.org);
        let listed = self.block(self.store.list(&dir))?;
        let mut ids: Vec<String> = listed
            .iter()
            .filter_map(|(key, _)| self.store.relative(key))
            .filter_map(|rel| rel.strip_prefix(&dir)?.strip_suffix(".json"))
            .filter(|id| valid_run_id(id))
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn read(&self, run_id: &str) -> Result<RunSummary> {
        let key = self.store.key(&summary_key(&self.org, run_id));
        self.block(self.store.read_summary(&key))
    }

    fn write(&self, summary: &RunSummary) -> Result<()> {
        if !valid_run_id(&summary.run_id) {
            return Err(Error::invalid(format!(
                "run id {:?} cannot name a summary object",
                summary.run_id
            )));
        }
        let bytes = summary.encode()?;
        let until = self.store.retain_until(chrono::Utc::now());
        let key = summary_key(&self.org, &summary.run_id);
        self.block(self.store.upload_bytes(bytes, &key, until))
            .map(|_| ())
    }
}

/// The history of an object store, indexed under the local folder `root`:
/// organisation `org`'s summaries (its slug), or with `None` every
/// organisation's that has summaries in the bucket (a fleet's store).
///
/// # Errors
/// When the bucket cannot be listed.
pub fn history_scope(
    store: &S3Store,
    root: &Path,
    org: Option<&str>,
    runtime: &tokio::runtime::Runtime,
) -> Result<HistoryScope> {
    let orgs = match org {
        Some(org) => vec![org.to_owned()],
        None => runtime.block_on(store.organisations())?,
    };
    // Keyed as the local scopes key them: "" for one organisation's store,
    // the organisation's folder in a fleet's.
    let single = org.is_some();
    let stores = orgs
        .into_iter()
        .map(|org| {
            let summaries = S3Summaries::new(store.clone(), &org, runtime.handle().clone());
            let key = if single { String::new() } else { org };
            (key, Box::new(summaries) as Box<dyn SummaryStore>)
        })
        .collect();
    Ok(HistoryScope::with_stores(root, stores))
}
