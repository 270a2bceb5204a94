//! The run summary: `<store>/summaries/<run_id>.json`, a small JSON written
//! beside the run folder by every run: what the run concluded (each
//! control's status and owner, each check's failing and unproven subjects by
//! id and display name, each source's status) and the figures history and
//! trends chart. Summaries in the store are the truth of an organisation's
//! history; the SQLite index is a cache over them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::checks::Verdict;
use crate::config::Owner;
use crate::error::{Error, Result};
use crate::evaluate::{ControlResult, Status};
use crate::evidence::{RunManifest, SourceStatus};

/// The `schema_version` this build writes, and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A subject by stable id and display name (no detail: summaries stay small
/// and never carry evidence text).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRef {
    /// Stable id (`<source>:<id>`).
    pub id: String,
    /// Display name.
    pub name: String,
}

/// One source's status in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSummary {
    /// Collector type.
    #[serde(rename = "type")]
    pub source_type: String,
    /// complete | partial | failed.
    pub status: SourceStatus,
    /// Why it is not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An accepted failure, as the summary keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedSummary {
    /// Accepted until (`YYYY-MM-DD`).
    pub expires: String,
    /// Who approved it.
    pub approved_by: String,
}

/// One control's conclusion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSummary {
    /// Catalog id.
    pub framework: String,
    /// Control id.
    pub control_id: String,
    /// Title.
    pub title: String,
    /// Status.
    pub status: Status,
    /// Accountable owner.
    pub owner: Owner,
    /// Set when the failure is accepted by an exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<AcceptedSummary>,
}

impl ControlSummary {
    /// `"<framework>:<control id>"`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.framework, self.control_id)
    }
}

/// One check's conclusion, merged over every control it serves (a check may
/// run with different thresholds per framework: its failing and unproven
/// subjects are the union, and it counts as judged when any run of it
/// reached pass or fail).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSummary {
    /// Check id.
    pub check: String,
    /// Title.
    pub title: String,
    /// The worst verdict: fail, else inconclusive, else pass.
    pub outcome: Verdict,
    /// Whether some run of the check reached pass or fail.
    pub judged: bool,
    /// The party responsible for it (the first control's).
    pub responsible: Owner,
    /// Subjects judged (the most over its runs).
    pub evaluated: usize,
    /// Failing subjects (length of `failing`, or the largest count reported
    /// when a result lists none).
    pub failing_count: usize,
    /// Unproven subjects, likewise.
    pub unproven_count: usize,
    /// Failing subjects, by id.
    pub failing: Vec<SubjectRef>,
    /// Unproven subjects, by id.
    pub unproven: Vec<SubjectRef>,
}

/// The counts the history and trends chart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Controls per status (every status present, zeros included).
    pub by_status: BTreeMap<Status, usize>,
    /// Controls per owner, then per status.
    pub by_owner: BTreeMap<Owner, BTreeMap<Status, usize>>,
    /// Failing controls whose failure is accepted by an exception.
    pub accepted: usize,
}

/// What changed since the previous run, in numbers (the lists are in the
/// run's `results/drift.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeCounts {
    /// The run compared with.
    pub previous_run_id: String,
    /// Controls newly failing.
    pub regressions: usize,
    /// Controls fixed.
    pub fixes: usize,
    /// Controls whose evidence was lost.
    pub lost_evidence: usize,
    /// Sources that failed or became partial.
    pub sources_lost: usize,
    /// Subjects newly failing, over every check.
    pub subjects_newly_failing: usize,
    /// Subjects fixed, over every check.
    pub subjects_fixed: usize,
}

/// `<store>/summaries/<run_id>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    /// Format version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Organisation name.
    pub organisation: String,
    /// Run id.
    pub run_id: String,
    /// Collection start (RFC 3339, UTC).
    pub started_at: String,
    /// Collection end (RFC 3339, UTC).
    pub finished_at: String,
    /// The instant judged at.
    pub as_of: String,
    /// Frameworks in scope.
    pub frameworks: Vec<String>,
    /// Per source, by name.
    pub sources: BTreeMap<String, SourceSummary>,
    /// Every control, in `controls.json` order.
    pub controls: Vec<ControlSummary>,
    /// Every check that ran, by id.
    pub checks: Vec<CheckSummary>,
    /// The figures.
    pub counts: Counts,
    /// What changed since the previous run (absent for the first run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeCounts>,
}

fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::Inconclusive => 1,
        Verdict::Fail => 2,
    }
}

impl RunSummary {
    /// Summarise a run from its `run.json` (when there is one: runs read
    /// back from old packages may lack it) and its control results.
    pub fn build(manifest: Option<&RunManifest>, results: &[ControlResult]) -> RunSummary {
        let controls: Vec<ControlSummary> = results
            .iter()
            .map(|r| ControlSummary {
                framework: r.framework.clone(),
                control_id: r.control_id.clone(),
                title: r.title.clone(),
                status: r.status,
                owner: r.owner,
                accepted: r.accepted.as_ref().map(|a| AcceptedSummary {
                    expires: a.expires.to_string(),
                    approved_by: a.approved_by.clone(),
                }),
            })
            .collect();
        struct Acc<'a> {
            summary: CheckSummary,
            failing: BTreeMap<&'a str, &'a str>,
            unproven: BTreeMap<&'a str, &'a str>,
        }
        let mut checks: BTreeMap<&str, Acc<'_>> = BTreeMap::new();
        for r in results {
            for c in &r.checks {
                let acc = checks.entry(c.check.as_str()).or_insert_with(|| Acc {
                    summary: CheckSummary {
                        check: c.check.clone(),
                        title: c.title.clone(),
                        outcome: c.outcome,
                        judged: false,
                        responsible: c.responsible,
                        evaluated: 0,
                        failing_count: 0,
                        unproven_count: 0,
                        failing: Vec::new(),
                        unproven: Vec::new(),
                    },
                    failing: BTreeMap::new(),
                    unproven: BTreeMap::new(),
                });
                let s = &mut acc.summary;
                if severity(c.outcome) > severity(s.outcome) {
                    s.outcome = c.outcome;
                }
                s.judged |= matches!(c.outcome, Verdict::Pass | Verdict::Fail);
                s.evaluated = s.evaluated.max(c.evaluated);
                s.failing_count = s.failing_count.max(c.failing_count);
                s.unproven_count = s.unproven_count.max(c.unproven_count);
                for f in c.failing.iter() {
                    acc.failing.entry(f.id.as_str()).or_insert(f.name.as_str());
                }
                for u in c.unproven.iter() {
                    acc.unproven.entry(u.id.as_str()).or_insert(u.name.as_str());
                }
            }
        }
        let checks: Vec<CheckSummary> = checks
            .into_values()
            .map(|mut acc| {
                let refs = |m: &BTreeMap<&str, &str>| -> Vec<SubjectRef> {
                    m.iter()
                        .map(|(id, name)| SubjectRef {
                            id: (*id).to_owned(),
                            name: (*name).to_owned(),
                        })
                        .collect()
                };
                acc.summary.failing = refs(&acc.failing);
                acc.summary.unproven = refs(&acc.unproven);
                acc.summary.failing_count = acc.summary.failing_count.max(acc.failing.len());
                acc.summary.unproven_count = acc.summary.unproven_count.max(acc.unproven.len());
                acc.summary
            })
            .collect();
        let mut counts = Counts::default();
        for s in Status::ALL {
            counts.by_status.insert(s, 0);
        }
        for c in &controls {
            *counts.by_status.entry(c.status).or_default() += 1;
            *counts
                .by_owner
                .entry(c.owner)
                .or_default()
                .entry(c.status)
                .or_default() += 1;
            counts.accepted += usize::from(c.accepted.is_some());
        }
        let (organisation, run_id, started_at, finished_at, as_of, frameworks, sources) =
            match manifest {
                Some(m) => (
                    m.organisation.clone(),
                    m.run_id.clone(),
                    m.started_at.clone(),
                    m.finished_at.clone(),
                    m.as_of.clone(),
                    m.frameworks.clone(),
                    m.sources
                        .iter()
                        .map(|(name, s)| {
                            (
                                name.clone(),
                                SourceSummary {
                                    source_type: s.source_type.clone(),
                                    status: s.status,
                                    reason: s.reason.clone(),
                                },
                            )
                        })
                        .collect(),
                ),
                None => {
                    let mut frameworks: Vec<String> = Vec::new();
                    for r in results {
                        if !frameworks.contains(&r.framework) {
                            frameworks.push(r.framework.clone());
                        }
                    }
                    (
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        frameworks,
                        BTreeMap::new(),
                    )
                }
            };
        RunSummary {
            schema_version: SCHEMA_VERSION,
            organisation,
            run_id,
            started_at,
            finished_at,
            as_of,
            frameworks,
            sources,
            controls,
            checks,
            counts,
            changes: None,
        }
    }

    /// The summary as stored: pretty JSON and a final newline.
    ///
    /// # Errors
    /// Never for a summary built in code.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid(format!("cannot encode the run summary: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parse a stored summary; `name` (a path or object key) is named in
    /// every error.
    ///
    /// # Errors
    /// When the bytes are not a summary, or one written by a newer auditpack
    /// (a `schema_version` above [`SCHEMA_VERSION`]): its fields may mean
    /// something this build does not know, so it is refused, not guessed at.
    pub fn decode(bytes: &[u8], name: &str) -> Result<RunSummary> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::invalid(format!("{name}: not a run summary (invalid JSON: {e})"))
        })?;
        let version = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{name}: not a run summary (no numeric schema_version)"
                ))
            })?;
        if version > u64::from(SCHEMA_VERSION) {
            return Err(Error::invalid(format!(
                "{name}: written by a newer auditpack (summary schema_version {version}; this \
                 version reads up to {SCHEMA_VERSION}); upgrade auditpack to read this history"
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::invalid(format!("{name}: not a valid run summary: {e}")))
    }

    /// Whether a check id failed a subject id in this run.
    pub fn failing_ids(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        self.checks
            .iter()
            .map(|c| {
                (
                    c.check.as_str(),
                    c.failing.iter().map(|s| s.id.as_str()).collect(),
                )
            })
            .collect()
    }
}
