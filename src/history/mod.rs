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
pub mod kpis;
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
/// `current` (another run id): the run a new run is compared with. Times
/// are kept to the second, so a run that finished in the same second counts
/// as before when it also started before (its run id sorts first). Runs of
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
        let before = match summary
            .finished_at
            .as_str()
            .cmp(current.finished_at.as_str())
        {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => summary.run_id < current.run_id,
            std::cmp::Ordering::Greater => false,
        };
        if before || current.finished_at.is_empty() {
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
    record_with(
        store,
        run_dir,
        manifest,
        results,
        &kpis::KpiSettings::default(),
    )
}

/// [`record`], with the KPIs computed with the organisation's `[sla]` and
/// fee.
///
/// # Errors
/// As [`record`]; also when an earlier summary in the KPI window cannot be
/// read.
pub fn record_with(
    store: &dyn SummaryStore,
    run_dir: &Path,
    manifest: &RunManifest,
    results: &[ControlResult],
    settings: &kpis::KpiSettings,
) -> Result<Drift> {
    let mut summary = RunSummary::build(Some(manifest), results);
    let previous = previous_run(store, &summary)?;
    let earlier = closed_in_window(store, &summary)?;
    summary.kpis = Some(kpis::compute(
        &summary,
        previous.as_ref(),
        &earlier,
        settings,
    ));
    let drift = match previous {
        Some(previous) => drift(&previous, &summary),
        None => Drift::first(&summary),
    };
    let path = run_dir.join(DRIFT_FILE);
    write_atomic(&path, &drift.encode()?).context(|| format!("cannot write {}", path.display()))?;
    summary.changes = drift.counts();
    store.write(&summary)?;
    Ok(drift)
}

/// The gaps closed by the organisation's earlier runs within the KPI
/// window before `current` (newest runs first, stopping at the first run
/// older than the window).
///
/// # Errors
/// When the store cannot be listed or a summary in the window read.
pub fn closed_in_window(
    store: &dyn SummaryStore,
    current: &RunSummary,
) -> Result<Vec<kpis::ClosedGap>> {
    let Some(now) = kpis::run_time(current) else {
        return Ok(Vec::new());
    };
    let start = now - chrono::Duration::days(kpis::WINDOW_DAYS);
    let mut out = Vec::new();
    for id in store
        .list()?
        .iter()
        .rev()
        .filter(|id| **id != current.run_id)
    {
        let summary = store.read(id)?;
        if summary.organisation != current.organisation {
            continue;
        }
        let Some(at) = kpis::run_time(&summary) else {
            continue;
        };
        if at >= now {
            continue;
        }
        if at <= start {
            break;
        }
        if let Some(k) = summary.kpis {
            out.extend(k.closed);
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(organisation: &str, run_id: &str, finished_at: &str) -> RunSummary {
        let mut s = RunSummary::build(None, &[]);
        s.organisation = organisation.into();
        s.run_id = run_id.into();
        s.started_at = format!(
            "2026-12-04T{}:{}:{}Z",
            &run_id[9..11],
            &run_id[11..13],
            &run_id[13..15]
        );
        s.finished_at = finished_at.into();
        s.as_of = finished_at.into();
        s
    }

    #[test]
    fn the_previous_run_is_the_latest_that_finished_before_even_in_the_same_second() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::new(dir.path());
        let earlier = summary("Clinic", "20261204T120000Z-aaaa", "2026-12-04T12:00:05Z");
        let same_second = summary("Clinic", "20261204T120002Z-bbbb", "2026-12-04T12:00:07Z");
        let current = summary("Clinic", "20261204T120004Z-cccc", "2026-12-04T12:00:07Z");
        // Started after the current run and finished with it: not before it.
        let later = summary("Clinic", "20261204T120006Z-dddd", "2026-12-04T12:00:07Z");
        let other = summary("Dental", "20261204T120003Z-eeee", "2026-12-04T12:00:06Z");
        for s in [&earlier, &same_second, &current, &later, &other] {
            store.write(s).expect("write");
        }
        let previous = previous_run(&store, &current).expect("read");
        assert_eq!(previous.map(|p| p.run_id), Some(same_second.run_id.clone()));
        let previous = previous_run(&store, &same_second).expect("read");
        assert_eq!(previous.map(|p| p.run_id), Some(earlier.run_id.clone()));
        assert_eq!(previous_run(&store, &earlier).expect("read"), None);
    }
}
