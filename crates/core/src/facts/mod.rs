//! Facts: typed, source-independent statements derived from raw evidence
//! (users, devices, pending patches), with the provenance and completeness of
//! every kind of fact. Normalising is pure: it reads the run folder and nothing else.

pub mod backup;
mod incidents;
mod model;
pub mod patch_status;
mod reconcile;

pub use backup::{
    link_backups, BackupCopy, BackupResult, CopyLocation, ProtectedKind, ProtectedSystem,
    RestoreTest, RestoreTestKind, TestResult,
};
pub use incidents::*;
pub use model::*;
pub use reconcile::{normalise_hostname, reconcile, single_source_devices};

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::custody::{is_binary_evidence, read_custody};
use crate::error::{Error, Result, ResultExt};
use crate::run::{DatasetStatus, RunManifest, SourceReport};

/// Pages per dataset name: (run-relative path, parsed JSON) in page order.
pub type Pages = BTreeMap<String, Vec<(String, Value)>>;

/// One source's evidence, ready for its normaliser.
pub struct SourceEvidence<'a> {
    /// Source name.
    pub name: &'a str,
    /// Its collection report.
    pub report: &'a SourceReport,
    /// Pages per dataset, in page order. A binary evidence file (see
    /// [`crate::custody::BINARY_EXTENSIONS`]) is listed with a `null` page;
    /// its bytes are in `binary`.
    pub pages: Pages,
    /// The bytes of each binary evidence file, by run-relative path.
    pub binary: BTreeMap<String, Vec<u8>>,
    /// The request behind each page (run-relative path to the custody log's
    /// `request`, credentials removed).
    pub requests: BTreeMap<String, String>,
}

impl SourceEvidence<'_> {
    /// Provenance for `dataset`, with its pages as evidence; a dataset the source
    /// never reported counts as failed.
    pub fn provenance(&self, dataset: &str, problems: &[String]) -> Provenance {
        let (mut status, mut reason) = match self.report.datasets.get(dataset) {
            Some(d) => (d.status, d.reason.clone()),
            None => (
                DatasetStatus::Failed,
                Some(
                    self.report
                        .reason
                        .clone()
                        .unwrap_or_else(|| "not collected".into()),
                ),
            ),
        };
        if !problems.is_empty() {
            if status == DatasetStatus::Complete {
                status = DatasetStatus::Partial;
            }
            let detail = format!(
                "{} unreadable record(s), first: {}",
                problems.len(),
                problems[0]
            );
            reason = Some(match reason {
                Some(r) => format!("{r}; {detail}"),
                None => detail,
            });
        }
        Provenance {
            source: self.name.to_owned(),
            dataset: dataset.to_owned(),
            status,
            reason,
            evidence: self
                .pages
                .get(dataset)
                .into_iter()
                .flatten()
                .map(|(p, _)| p.clone())
                .collect(),
        }
    }

    /// The URL a page was fetched from, if the custody log names it.
    pub fn url_of(&self, path: &str) -> Option<&str> {
        let request = self.requests.get(path)?;
        Some(
            request
                .split_once(' ')
                .map_or(request.as_str(), |(_, url)| url),
        )
    }

    /// The records of every page of `dataset`, located by `records` (which picks
    /// the array out of a page), with the page path for messages.
    pub fn records<'p>(
        &'p self,
        dataset: &str,
        records: fn(&Value) -> Option<&Vec<Value>>,
        problems: &mut Vec<String>,
    ) -> Vec<(&'p str, &'p Value)> {
        let mut out = Vec::new();
        for (path, page) in self.pages.get(dataset).into_iter().flatten() {
            match records(page) {
                Some(items) => out.extend(items.iter().map(|r| (path.as_str(), r))),
                None => problems.push(format!("{path}: no record array")),
            }
        }
        out
    }
}

/// A normaliser: adds the facts one source's raw pages say.
pub type Normalise = fn(&SourceEvidence<'_>, &mut Facts);

/// The run folder's inputs that are not evidence of a source (the
/// organisation's `exceptions.toml`): hashed in the custody log, which
/// normalising checks, but given to no normaliser.
pub const INPUTS: &str = "inputs/";

/// Derive facts from a run folder: every evidence file is checked against its
/// custody hash before it is read, then each source's pages go to the
/// normaliser `normaliser_for` gives for its type.
///
/// # Errors
/// When `run.json` or `custody.jsonl` is unreadable, or an evidence file is
/// missing, altered or (unless its extension marks it as binary, like a
/// `.zip` download) not JSON (the message names the file), or a source's type
/// has no normaliser.
pub fn normalise(
    run_dir: &Path,
    normaliser_for: impl Fn(&str) -> Option<Normalise>,
) -> Result<Facts> {
    let manifest = RunManifest::read(run_dir)?;
    let custody = read_custody(&run_dir.join("custody.jsonl"))?;
    let mut by_source: BTreeMap<&str, Pages> = BTreeMap::new();
    let mut requests: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    let mut binary: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for entry in &custody {
        let path = run_dir.join(&entry.path);
        let bytes =
            std::fs::read(&path).context(|| format!("cannot read evidence {}", entry.path))?;
        if hex::encode(Sha256::digest(&bytes)) != entry.sha256 {
            return Err(Error::invalid(format!(
                "evidence {} does not match its custody hash",
                entry.path
            )));
        }
        if entry.path.starts_with(INPUTS) {
            continue; // run inputs (exceptions.toml): hashed, not evidence of a source
        }
        requests
            .entry(entry.source.as_str())
            .or_default()
            .insert(entry.path.clone(), entry.request.clone());
        // Supplied documents (manual/) are hashed and listed, not parsed;
        // binary evidence (a ZIP report) is handed to its normaliser as bytes.
        let json: Value = if !entry.path.starts_with("evidence/") {
            Value::Null
        } else if is_binary_evidence(&entry.path) {
            binary
                .entry(entry.source.as_str())
                .or_default()
                .insert(entry.path.clone(), bytes);
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .context(|| format!("evidence {} is not JSON", entry.path))?
        };
        by_source
            .entry(entry.source.as_str())
            .or_default()
            .entry(entry.dataset.clone())
            .or_default()
            .push((entry.path.clone(), json));
    }
    let mut facts = Facts::default();
    for entry in custody.iter().filter(|e| !e.path.starts_with(INPUTS)) {
        let Ok(at) = DateTime::parse_from_rfc3339(&entry.collected_at) else {
            return Err(Error::invalid(format!(
                "custody.jsonl: collected_at of {} is not an RFC 3339 time",
                entry.path
            )));
        };
        let at = at.with_timezone(&Utc);
        facts
            .collected
            .entry(format!("{}/{}", entry.source, entry.dataset))
            .and_modify(|t| *t = (*t).min(at))
            .or_insert(at);
    }
    for (name, report) in &manifest.sources {
        let Some(normalise) = normaliser_for(&report.source_type) else {
            return Err(Error::invalid(format!(
                "run.json: source {name} has type {} which this version cannot read",
                report.source_type
            )));
        };
        let mut pages = by_source.remove(name.as_str()).unwrap_or_default();
        for list in pages.values_mut() {
            list.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let evidence = SourceEvidence {
            name,
            report,
            pages,
            requests: requests.remove(name.as_str()).unwrap_or_default(),
            binary: binary.remove(name.as_str()).unwrap_or_default(),
        };
        normalise(&evidence, &mut facts);
    }
    if let Some(source) = by_source.keys().next() {
        return Err(Error::invalid(format!(
            "custody.jsonl lists evidence of source {source}, which run.json does not name"
        )));
    }
    facts.finish();
    Ok(facts)
}

/// Parse an RFC 3339 time; Graph's "no date" placeholder
/// (`0001-01-01T00:00:00Z`, e.g. for an account that never signed in or a
/// device that never synced) and any other time before 1601 (the Windows
/// epoch) read as no time at all.
pub fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    parse_rfc3339(v?.as_str()?)
}

/// Parse an RFC 3339 string, placeholders for "never" giving `None` (see
/// [`parse_time`]).
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    use chrono::Datelike;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| t.year() >= 1601)
}

/// Parse epoch seconds (integer or fractional).
pub fn parse_epoch(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let secs = v?.as_f64()?;
    // Zero (or less) is how epoch APIs say "never".
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    Utc.timestamp_opt(secs.trunc() as i64, 0).single()
}

/// A string field of a JSON record.
pub fn str_field<'v>(record: &'v Value, key: &str) -> Option<&'v str> {
    record.get(key).and_then(Value::as_str)
}
