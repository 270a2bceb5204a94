//! Drift: what changed from one run of an organisation to the next, computed
//! from two [`RunSummary`]s. The pipeline writes it into each run folder as
//! `results/drift.json` (compared with the previous complete run in the
//! store), and `auditpack diff` computes it with the same [`drift`] function
//! from the two runs it is given, so the two never disagree.
//!
//! Classification of a control whose status changed:
//! - **regression**: failing now, not failing before (pass, attested,
//!   inconclusive or absent before);
//! - **fix**: failing before, passing or attested now;
//! - **lost evidence**: judged before (pass, fail or attested), inconclusive
//!   or no longer evaluated now: never counted as a fix, since missing
//!   evidence is never a pass;
//! - **other**: every other change (e.g. manual_pending to absent).
//!
//! A source complete before and partial or failed now (or no longer
//! collected) is lost evidence too. Per check: subjects failing now and not
//! before (newly failing), failing before and judged not failing now
//! (fixed), and failing before but not judged now, because the check is
//! inconclusive or the subject is unproven (unjudged: lost, not fixed).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::summary::{AcceptedSummary, ChangeCounts, RunSummary, SubjectRef};
use crate::config::Owner;
use crate::error::{Error, Result};
use crate::evaluate::Status;
use crate::evidence::SourceStatus;

/// The `schema_version` of `results/drift.json` this build writes and reads.
pub const DRIFT_SCHEMA_VERSION: u32 = 1;

/// The run a drift compares with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousRun {
    /// Its run id.
    pub run_id: String,
    /// When its collection finished.
    pub finished_at: String,
    /// The instant it was judged at.
    pub as_of: String,
}

/// A control whose status changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlChange {
    /// `"<framework>:<control id>"`.
    pub control: String,
    /// Title.
    pub title: String,
    /// Accountable owner (now, or before when no longer evaluated).
    pub owner: Owner,
    /// Status before (`None`: not evaluated then).
    pub before: Option<Status>,
    /// Status now (`None`: not evaluated now).
    pub after: Option<Status>,
    /// Set when the failure now is accepted by an exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<AcceptedSummary>,
}

/// A source whose completeness got worse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceChange {
    /// Source name (its evidence folder).
    pub source: String,
    /// Collector type.
    #[serde(rename = "type")]
    pub source_type: String,
    /// Status before (`None`: not collected then).
    pub before: Option<SourceStatus>,
    /// Status now (`None`: no longer collected).
    pub after: Option<SourceStatus>,
    /// Why, as the run recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A check whose failing subjects changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckChange {
    /// Check id.
    pub check: String,
    /// Title.
    pub title: String,
    /// The party responsible for it.
    pub responsible: Owner,
    /// Failing subjects before.
    pub failing_before: usize,
    /// Failing subjects now.
    pub failing_after: usize,
    /// Whether this run judged the check at all.
    pub judged_after: bool,
    /// Failing now, not before.
    pub newly_failing: Vec<SubjectRef>,
    /// Failing before, judged and not failing now.
    pub fixed: Vec<SubjectRef>,
    /// Failing before and not judged now (check inconclusive or subject
    /// unproven): evidence lost, not fixed.
    pub unjudged: Vec<SubjectRef>,
}

/// What changed since the previous run: `results/drift.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// Format version ([`DRIFT_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Organisation.
    pub organisation: String,
    /// This run.
    pub run_id: String,
    /// The run compared with; `None` for an organisation's first run
    /// (every list is then empty).
    pub previous: Option<PreviousRun>,
    /// Controls failing now that did not fail before.
    pub regressions: Vec<ControlChange>,
    /// Controls failing before that pass or are attested now.
    pub fixes: Vec<ControlChange>,
    /// Controls judged before that are inconclusive or not evaluated now.
    pub lost_evidence: Vec<ControlChange>,
    /// Every other status change.
    pub other_changes: Vec<ControlChange>,
    /// Sources complete (or partial) before and worse now.
    pub sources_lost: Vec<SourceChange>,
    /// Checks whose failing subjects changed.
    pub subjects: Vec<CheckChange>,
}

impl Drift {
    /// The drift of a first run: nothing to compare with.
    pub fn first(current: &RunSummary) -> Drift {
        Drift {
            schema_version: DRIFT_SCHEMA_VERSION,
            organisation: current.organisation.clone(),
            run_id: current.run_id.clone(),
            previous: None,
            regressions: Vec::new(),
            fixes: Vec::new(),
            lost_evidence: Vec::new(),
            other_changes: Vec::new(),
            sources_lost: Vec::new(),
            subjects: Vec::new(),
        }
    }

    /// Whether this run is worse: a regression, lost evidence (a control or
    /// a source), a newly failing subject or one no longer judged.
    pub fn regressed(&self) -> bool {
        !self.regressions.is_empty()
            || !self.lost_evidence.is_empty()
            || !self.sources_lost.is_empty()
            || self
                .subjects
                .iter()
                .any(|s| !s.newly_failing.is_empty() || !s.unjudged.is_empty())
    }

    /// Whether nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.regressions.is_empty()
            && self.fixes.is_empty()
            && self.lost_evidence.is_empty()
            && self.other_changes.is_empty()
            && self.sources_lost.is_empty()
            && self.subjects.is_empty()
    }

    /// The numbers of this drift, for the run summary and the index.
    pub fn counts(&self) -> Option<ChangeCounts> {
        let previous = self.previous.as_ref()?;
        Some(ChangeCounts {
            previous_run_id: previous.run_id.clone(),
            regressions: self.regressions.len(),
            fixes: self.fixes.len(),
            lost_evidence: self.lost_evidence.len(),
            sources_lost: self.sources_lost.len(),
            subjects_newly_failing: self.subjects.iter().map(|s| s.newly_failing.len()).sum(),
            subjects_fixed: self.subjects.iter().map(|s| s.fixed.len()).sum(),
        })
    }

    /// `results/drift.json` as written: pretty JSON and a final newline.
    ///
    /// # Errors
    /// Never for a drift built in code.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid(format!("cannot encode drift.json: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parse `results/drift.json`; `name` is named in every error.
    ///
    /// # Errors
    /// When the bytes are not a drift, or one from a newer auditpack.
    pub fn decode(bytes: &[u8], name: &str) -> Result<Drift> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("{name}: not valid JSON: {e}")))?;
        let version = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version > u64::from(DRIFT_SCHEMA_VERSION) {
            return Err(Error::invalid(format!(
                "{name}: written by a newer auditpack (drift schema_version {version}; this \
                 version reads up to {DRIFT_SCHEMA_VERSION})"
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::invalid(format!("{name}: not a valid drift.json: {e}")))
    }
}

fn failing_of(c: Option<&super::summary::CheckSummary>) -> BTreeMap<&str, &SubjectRef> {
    c.map(|c| c.failing.iter().map(|s| (s.id.as_str(), s)).collect())
        .unwrap_or_default()
}

fn judged(s: Status) -> bool {
    matches!(s, Status::Pass | Status::Fail | Status::ManualAttested)
}

fn source_rank(s: Option<SourceStatus>) -> u8 {
    match s {
        Some(SourceStatus::Complete) => 0,
        Some(SourceStatus::Partial) => 1,
        Some(SourceStatus::Failed) | None => 2,
    }
}

/// Compare `previous` (before) with `current` (now). Pure: the same two
/// summaries always give the same drift, in a stable order (controls in the
/// order of the runs' `controls.json`, checks and subjects by id).
pub fn drift(previous: &RunSummary, current: &RunSummary) -> Drift {
    let mut out = Drift::first(current);
    out.previous = Some(PreviousRun {
        run_id: previous.run_id.clone(),
        finished_at: previous.finished_at.clone(),
        as_of: previous.as_of.clone(),
    });

    // Controls, in the current run's order, then those only the previous had.
    let before: BTreeMap<String, &super::summary::ControlSummary> =
        previous.controls.iter().map(|c| (c.key(), c)).collect();
    let now: BTreeMap<String, &super::summary::ControlSummary> =
        current.controls.iter().map(|c| (c.key(), c)).collect();
    let mut order: Vec<String> = current.controls.iter().map(|c| c.key()).collect();
    order.extend(
        previous
            .controls
            .iter()
            .map(|c| c.key())
            .filter(|k| !now.contains_key(k)),
    );
    for key in order {
        let (was, is) = (before.get(&key), now.get(&key));
        let (b, a) = (was.map(|c| c.status), is.map(|c| c.status));
        if b == a {
            continue;
        }
        let Some(shown) = is.or(was) else { continue };
        let change = ControlChange {
            control: key,
            title: shown.title.clone(),
            owner: shown.owner,
            before: b,
            after: a,
            accepted: is.and_then(|c| c.accepted.clone()),
        };
        if a == Some(Status::Fail) {
            out.regressions.push(change);
        } else if b == Some(Status::Fail)
            && matches!(a, Some(Status::Pass | Status::ManualAttested))
        {
            out.fixes.push(change);
        } else if b.is_some_and(judged) && matches!(a, None | Some(Status::Inconclusive)) {
            out.lost_evidence.push(change);
        } else {
            out.other_changes.push(change);
        }
    }

    // Sources that got worse.
    let names: BTreeSet<&String> = previous.sources.keys().collect();
    for name in names {
        let Some(was) = previous.sources.get(name) else {
            continue;
        };
        let is = current.sources.get(name);
        let (b, a) = (Some(was.status), is.map(|s| s.status));
        if source_rank(a) > source_rank(b) {
            out.sources_lost.push(SourceChange {
                source: name.clone(),
                source_type: is.map_or(&was.source_type, |s| &s.source_type).clone(),
                before: b,
                after: a,
                reason: match is {
                    Some(s) => s.reason.clone(),
                    None => Some("no longer collected".to_owned()),
                },
            });
        }
    }

    // Subjects per check.
    let checks_before: BTreeMap<&str, &super::summary::CheckSummary> = previous
        .checks
        .iter()
        .map(|c| (c.check.as_str(), c))
        .collect();
    let checks_now: BTreeMap<&str, &super::summary::CheckSummary> = current
        .checks
        .iter()
        .map(|c| (c.check.as_str(), c))
        .collect();
    let ids: BTreeSet<&str> = checks_before
        .keys()
        .chain(checks_now.keys())
        .copied()
        .collect();
    for id in ids {
        let (was, is) = (checks_before.get(id), checks_now.get(id));
        let (fb, fa) = (failing_of(was.copied()), failing_of(is.copied()));
        let unproven_now: BTreeSet<&str> = is
            .map(|c| c.unproven.iter().map(|s| s.id.as_str()).collect())
            .unwrap_or_default();
        let judged_after = is.is_some_and(|c| c.judged);
        let newly_failing: Vec<SubjectRef> = fa
            .iter()
            .filter(|(k, _)| !fb.contains_key(*k))
            .map(|(_, s)| (*s).clone())
            .collect();
        let (mut fixed, mut unjudged) = (Vec::new(), Vec::new());
        for (k, s) in fb.iter().filter(|(k, _)| !fa.contains_key(*k)) {
            if judged_after && !unproven_now.contains(k) {
                fixed.push((*s).clone());
            } else {
                unjudged.push((*s).clone());
            }
        }
        if newly_failing.is_empty() && fixed.is_empty() && unjudged.is_empty() {
            continue;
        }
        let Some(shown) = is.or(was) else { continue };
        out.subjects.push(CheckChange {
            check: id.to_owned(),
            title: shown.title.clone(),
            responsible: shown.responsible,
            failing_before: fb.len(),
            failing_after: fa.len(),
            judged_after,
            newly_failing,
            fixed,
            unjudged,
        });
    }
    out
}
