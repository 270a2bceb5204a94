//! Run history: a summary of every run in the store, drift between
//! consecutive runs, and a SQLite index over the summaries.
//!
//! - [`summary`]: `<store>/summaries/<run_id>.json`, written by every run
//!   beside its run folder (the truth of an organisation's history).
//! - [`drift`]: what changed since the previous complete run, written into
//!   the run folder as `results/drift.json` before packaging, and used by
//!   `auditpack diff`.
//! - [`index`]: `<store>/.index/history.sqlite`, a cache over the summaries
//!   that `auditpack history` queries; rebuilt from the store whenever it is
//!   missing, corrupt or of another version.
//!
//! Summaries are read and written through [`SummaryStore`], so a store other
//! than a local folder (an object store) can hold them.

pub mod drift;
pub mod exceptions;
pub mod index;
pub mod summary;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, ResultExt};
use crate::evaluate::ControlResult;
use crate::evidence::{write_atomic, RunManifest};

pub use drift::{drift, Drift};
pub use summary::RunSummary;

/// Where a run folder's drift is written, relative to the run folder.
pub const DRIFT_FILE: &str = "results/drift.json";

/// The run summaries of one organisation.
///
/// Implementations hold one organisation's store; a summary, once written,
/// is not changed (a run is summarised once).
pub trait SummaryStore {
    /// Where the summaries live, for messages (`/srv/evidence/summaries`).
    fn location(&self) -> String;

    /// The run ids of every summary in the store, sorted (run ids begin with
    /// their start time, so this is oldest first).
    ///
    /// # Errors
    /// When the store cannot be listed (a store without summaries has none).
    fn list(&self) -> Result<Vec<String>>;

    /// Read one summary.
    ///
    /// # Errors
    /// When it is missing, malformed, or from a newer auditpack.
    fn read(&self, run_id: &str) -> Result<RunSummary>;

    /// Write one summary, atomically (it appears whole or not at all).
    ///
    /// # Errors
    /// On I/O failure.
    fn write(&self, summary: &RunSummary) -> Result<()>;
}

/// Summaries in a local folder: `<store>/summaries/<run_id>.json`.
#[derive(Clone, Debug)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    /// The summaries of the organisation store at `store` (the folder holding
    /// `runs/` and `packages/`).
    pub fn new(store: &Path) -> LocalStore {
        LocalStore {
            dir: store.join("summaries"),
        }
    }

    fn path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.json"))
    }
}

/// Whether a run id is safe as a file name (`YYYYMMDDTHHMMSSZ-<hex>` and the
/// like: letters, digits, `-`, `_`, `.`, not starting with a dot).
pub fn valid_run_id(run_id: &str) -> bool {
    !run_id.is_empty()
        && run_id.len() <= 128
        && !run_id.starts_with('.')
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl SummaryStore for LocalStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn list(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context(|| format!("cannot list {}", self.location())),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.context(|| format!("cannot list {}", self.location()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // Temporary files of an atomic write start with a dot.
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if valid_run_id(id) && entry.file_type().is_ok_and(|t| t.is_file()) {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn read(&self, run_id: &str) -> Result<RunSummary> {
        let path = self.path(run_id);
        let bytes = std::fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
        RunSummary::decode(&bytes, &path.display().to_string())
    }

    fn write(&self, summary: &RunSummary) -> Result<()> {
        if !valid_run_id(&summary.run_id) {
            return Err(Error::invalid(format!(
                "run id {:?} cannot name a summary file",
                summary.run_id
            )));
        }
        let path = self.path(&summary.run_id);
        write_atomic(&path, &summary.encode()?)
            .context(|| format!("cannot write {}", path.display()))
    }
}

/// The latest summary in `store` of `organisation` that finished before
/// `current` (another run id): the run a new run is compared with. Runs of
/// another organisation that share the store are never picked.
///
/// # Errors
/// When the store cannot be listed, or the newest candidate summary cannot
/// be read (malformed, or from a newer auditpack): drift against an older
/// run would then silently skip what that run found.
pub fn previous_run(store: &dyn SummaryStore, current: &RunSummary) -> Result<Option<RunSummary>> {
    let ids = store.list()?;
    // Newest first; run ids sort by start time.
    for id in ids.iter().rev().filter(|id| **id != current.run_id) {
        let summary = store.read(id)?;
        if summary.organisation != current.organisation {
            continue;
        }
        if summary.finished_at.as_str() < current.finished_at.as_str()
            || current.finished_at.is_empty()
        {
            return Ok(Some(summary));
        }
    }
    Ok(None)
}

/// Record a finished, judged run in the history: compare it with the
/// previous run of its organisation in `store`, write `results/drift.json`
/// into the run folder (before its reports and package, which then show and
/// hold it), and write its summary to the store. Returns the drift.
///
/// # Errors
/// When the previous summary cannot be read, or on I/O failure (the message
/// names the file).
pub fn record(
    store: &dyn SummaryStore,
    run_dir: &Path,
    manifest: &RunManifest,
    results: &[ControlResult],
) -> Result<Drift> {
    let mut summary = RunSummary::build(Some(manifest), results);
    let drift = match previous_run(store, &summary)? {
        Some(previous) => drift(&previous, &summary),
        None => Drift::first(&summary),
    };
    let path = run_dir.join(DRIFT_FILE);
    write_atomic(&path, &drift.encode()?).context(|| format!("cannot write {}", path.display()))?;
    summary.changes = drift.counts();
    store.write(&summary)?;
    Ok(drift)
}

/// Read a run folder's `results/drift.json`, when it has one.
///
/// # Errors
/// When it exists but cannot be read or parsed.
pub fn read_drift(run_dir: &Path) -> Result<Option<Drift>> {
    let path = run_dir.join(DRIFT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Drift::decode(&bytes, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(|| format!("cannot read {}", path.display())),
    }
}
