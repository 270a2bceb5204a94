//! Evaluation: catalog x checks x ownership -> one result per (framework,
//! control). Pure and deterministic for a given `as_of`: the same facts give
//! byte-identical `results/controls.json`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, ControlKind, Ownership};
use crate::checks::{self, CheckInput, Limits, Outcome, Subject, Verdict};
use crate::config::{Owner, Thresholds};
use crate::error::{Error, Result};
use crate::facts::Facts;

/// A control's status (the contract in DESIGN.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every check passes.
    Pass,
    /// A check fails.
    Fail,
    /// The evidence does not allow a judgement.
    Inconclusive,
    /// Waiting for documents a person must supply.
    ManualPending,
    /// Documents supplied and current.
    ManualAttested,
    /// Out of scope for this organisation.
    NotApplicable,
}

impl Status {
    /// The contract spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Inconclusive => "inconclusive",
            Status::ManualPending => "manual_pending",
            Status::ManualAttested => "manual_attested",
            Status::NotApplicable => "not_applicable",
        }
    }

    /// Every status, in report order.
    pub const ALL: [Status; 6] = [
        Status::Pass,
        Status::Fail,
        Status::Inconclusive,
        Status::ManualPending,
        Status::ManualAttested,
        Status::NotApplicable,
    ];
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's result under one control.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Check id.
    pub check: String,
    /// Check title.
    pub title: String,
    /// Verdict.
    pub outcome: Verdict,
    /// The party that must act on it.
    pub responsible: Owner,
    /// Subjects judged.
    pub evaluated: usize,
    /// Number of failing subjects.
    pub failing_count: usize,
    /// Failing subjects by stable id and display name.
    pub failing: Vec<Subject>,
    /// Evidence files (run-relative) the check read.
    pub evidence: Vec<String>,
    /// One sentence.
    pub summary: String,
    /// How to fix a failure.
    pub remediation: String,
}

/// One entry of `results/controls.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlResult {
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
    /// How it is judged.
    pub kind: ControlKind,
    /// Check results.
    pub checks: Vec<CheckResult>,
    /// Documents that would satisfy the manual part.
    pub manual_evidence: Vec<String>,
    /// Why it has this status.
    pub reason: String,
}

/// What an evaluation needs besides facts.
pub struct Scope<'a> {
    /// Catalogs.
    pub catalog: &'a Catalog,
    /// Ownership for this organisation.
    pub ownership: &'a Ownership<'a>,
    /// Framework ids in scope, in report order.
    pub frameworks: &'a [String],
    /// Threshold overrides from the config.
    pub thresholds: &'a Thresholds,
    /// Whether the organisation is a service provider (PCI DSS).
    pub service_provider: bool,
}

/// Evaluate every control of every framework in scope.
///
/// # Errors
/// When a framework in scope is not in the catalog.
pub fn evaluate(
    scope: &Scope<'_>,
    facts: &Facts,
    as_of: DateTime<Utc>,
) -> Result<Vec<ControlResult>> {
    let mut cache: HashMap<(&str, Limits), Outcome> = HashMap::new();
    let mut results = Vec::new();
    for framework_id in scope.frameworks {
        let framework = scope.catalog.framework(framework_id).ok_or_else(|| {
            let known: Vec<_> = scope
                .catalog
                .frameworks()
                .iter()
                .map(|f| f.framework.id.as_str())
                .collect();
            Error::config(format!(
                "framework `{framework_id}` is not in the catalog; known: {}",
                known.join(", ")
            ))
        })?;
        let limits = Limits::resolve(&framework.defaults, scope.thresholds);
        for control in &framework.controls {
            let owner = scope.ownership.control(framework_id, &control.id);
            let applies = match control.applies_to.as_deref() {
                None | Some("all") => true,
                Some("service-provider") => scope.service_provider,
                Some(_) => false,
            };
            let mut checks = Vec::new();
            if applies {
                for id in &control.checks {
                    let Some(check) = checks::check(id) else {
                        continue; // the catalog validated every id at load
                    };
                    let outcome = cache
                        .entry((check.id, limits))
                        .or_insert_with(|| {
                            checks::run_check(
                                check,
                                &CheckInput {
                                    facts,
                                    limits: &limits,
                                    as_of,
                                },
                            )
                        })
                        .clone();
                    let evidence: BTreeSet<&str> = check
                        .needs
                        .iter()
                        .flat_map(|k| facts.evidence(*k))
                        .collect();
                    checks.push(CheckResult {
                        check: check.id.to_owned(),
                        title: check.title.to_owned(),
                        outcome: outcome.verdict,
                        responsible: scope.ownership.check(owner, check.id),
                        evaluated: outcome.evaluated,
                        failing_count: outcome.failing.len(),
                        failing: outcome.failing,
                        evidence: evidence.into_iter().map(str::to_owned).collect(),
                        summary: outcome.summary,
                        remediation: check.remediation.to_owned(),
                    });
                }
            }
            let (status, mut reason) = if applies {
                judge(control.kind, &checks, &control.manual_evidence)
            } else {
                (
                    Status::NotApplicable,
                    format!(
                        "applies only to {} organisations",
                        control.applies_to.as_deref().unwrap_or("other")
                    ),
                )
            };
            if owner == Owner::Unassigned && status != Status::NotApplicable {
                reason.push_str("; no accountable owner is assigned");
            }
            results.push(ControlResult {
                framework: framework_id.clone(),
                control_id: control.id.clone(),
                title: control.title.clone(),
                status,
                owner,
                kind: control.kind,
                checks,
                manual_evidence: control.manual_evidence.clone(),
                reason,
            });
        }
    }
    Ok(results)
}

/// A control's status from its checks: any fail fails it, else any
/// inconclusive makes it inconclusive; passing hybrid controls still wait for
/// their documents.
fn judge(kind: ControlKind, checks: &[CheckResult], manual: &[String]) -> (Status, String) {
    let list = |v: Verdict| -> Vec<String> {
        checks
            .iter()
            .filter(|c| c.outcome == v)
            .map(|c| format!("{}: {}", c.check, c.summary))
            .collect()
    };
    let failing = list(Verdict::Fail);
    if !failing.is_empty() {
        return (Status::Fail, failing.join("; "));
    }
    let unknown = list(Verdict::Inconclusive);
    if !unknown.is_empty() {
        return (Status::Inconclusive, unknown.join("; "));
    }
    match kind {
        ControlKind::Automated => (Status::Pass, list(Verdict::Pass).join("; ")),
        ControlKind::Hybrid => (
            Status::ManualPending,
            format!(
                "automated checks pass; waiting for documents: {}",
                manual.join("; ")
            ),
        ),
        ControlKind::Manual => (
            Status::ManualPending,
            format!("waiting for documents: {}", manual.join("; ")),
        ),
    }
}

/// Counts of controls per status, for summaries and exit codes.
pub fn count_by_status(results: &[ControlResult]) -> Vec<(Status, usize)> {
    Status::ALL
        .iter()
        .map(|s| (*s, results.iter().filter(|r| r.status == *s).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Whether every in-scope control passes or is attested (exit code 0).
pub fn all_satisfied(results: &[ControlResult]) -> bool {
    results.iter().all(|r| {
        matches!(
            r.status,
            Status::Pass | Status::ManualAttested | Status::NotApplicable
        )
    })
}
