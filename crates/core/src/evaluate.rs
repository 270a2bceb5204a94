//! Evaluation: catalog x checks x ownership -> one result per (framework,
//! control). Pure and deterministic for a given `as_of`: the same facts give
//! byte-identical `results/controls.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, ControlKind, Ownership};
use crate::checks::{self, CheckInput, Limits, Outcome, OwnershipEntry, Subject, Verdict};
use crate::error::{Error, Result};
use crate::facts::{Facts, ManualDocument};
use crate::policy::{Owner, Thresholds};

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

/// The evidence files of one dataset that a check read: every page the
/// dataset's facts came from. Results name these sets instead of repeating
/// every file under every control; the files themselves are listed once, in
/// the custody log (`custody.jsonl`, the report's evidence index), under the
/// same source and dataset.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EvidenceSet {
    /// Source name from the config.
    pub source: String,
    /// Dataset name.
    pub dataset: String,
    /// The folder (run-relative) holding every file of the set: their
    /// longest common folder.
    pub folder: String,
    /// Number of files.
    pub files: usize,
    /// Lower-case hex SHA-256 of the sorted list of the files' run-relative
    /// paths, each followed by a line feed ([`EvidenceSet::list_digest`]).
    pub list_sha256: String,
}

impl EvidenceSet {
    /// The set of `files` (run-relative paths, any order, duplicates
    /// ignored) of one source's dataset.
    pub fn new<'a>(source: &str, dataset: &str, files: impl IntoIterator<Item = &'a str>) -> Self {
        let files: BTreeSet<&str> = files.into_iter().collect();
        EvidenceSet {
            source: source.to_owned(),
            dataset: dataset.to_owned(),
            folder: common_folder(files.iter().copied()),
            files: files.len(),
            list_sha256: Self::list_digest(files.iter().copied()),
        }
    }

    /// SHA-256 of a sorted file list, one path per line (each followed by
    /// `\n`), in lower-case hex: what `sort | sha256sum` prints for the
    /// list (with `LC_ALL=C`).
    pub fn list_digest<'a>(sorted: impl IntoIterator<Item = &'a str>) -> String {
        let mut hasher = Sha256::new();
        for path in sorted {
            hasher.update(path.as_bytes());
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }

    /// `"<source>/<dataset>"`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.source, self.dataset)
    }
}

/// The longest common folder of run-relative paths (empty when they share
/// none or there are none).
fn common_folder<'a>(mut paths: impl Iterator<Item = &'a str>) -> String {
    let Some(first) = paths.next() else {
        return String::new();
    };
    let mut common: Vec<&str> = first.split('/').collect();
    common.pop(); // the file name
    for p in paths {
        let parts: Vec<&str> = p.split('/').collect();
        let dirs = &parts[..parts.len().saturating_sub(1)];
        let same = common.iter().zip(dirs).take_while(|(a, b)| a == b).count();
        common.truncate(same);
    }
    common.join("/")
}

/// One check's result under one control.
///
/// The subject lists and evidence sets are what one run of the check found;
/// every control the check maps to (with the same thresholds) shares them
/// (`Arc`), and `results/controls.json` writes them once, in its top-level
/// `checks` section under [`CheckResult::result`].
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Failing subjects by stable id and display name (evidence shows a
    /// problem: "fix these").
    pub failing: Arc<Vec<Subject>>,
    /// Number of unproven subjects.
    pub unproven_count: usize,
    /// Unproven subjects by stable id and display name, each with the reason
    /// no usable evidence exists ("cannot see these").
    pub unproven: Arc<Vec<Subject>>,
    /// Evidence the check read, one set per dataset.
    pub evidence: Arc<Vec<EvidenceSet>>,
    /// The key of the check run behind this result in the `checks` section
    /// of `results/controls.json`: the check id, followed by `@` and the
    /// threshold values when frameworks with different thresholds ran the
    /// check more than once.
    pub result: String,
    /// One sentence.
    pub summary: String,
    /// How to fix a failure.
    pub remediation: String,
    /// Numbers the check measured (KPIs such as mean time to resolve).
    pub figures: Vec<crate::checks::Figure>,
}

/// One entry of `results/controls.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Set on a failing control whose every failure a current exception
    /// (`exceptions.toml`) covers: the status stays `fail`, reports show
    /// `fail (accepted until DATE)`. Absent otherwise.
    pub accepted: Option<crate::policy::Acceptance>,
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
/// Each check runs once per distinct set of thresholds and shows under every
/// control it maps to. A check whose evidence was collected longer ago than
/// the control's evidence time-to-live (`evidence_ttl_days`) counts as
/// inconclusive. Manual controls (and hybrid ones whose checks pass) are
/// attested by current documents in `facts.manual` naming
/// `"<framework>:<control id>"`. A control in scope without an owner fails
/// with the `responsibility_matrix` check.
///
/// # Errors
/// When a framework in scope is not in the catalog.
pub fn evaluate(
    scope: &Scope<'_>,
    facts: &Facts,
    as_of: DateTime<Utc>,
) -> Result<Vec<ControlResult>> {
    let mut frameworks = Vec::new();
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
        frameworks.push((framework_id, framework));
    }
    let matrix = ownership_matrix(scope, &frameworks);
    let documents = manual_documents(facts);
    let cache = run_checks(scope, &frameworks, facts, as_of, &matrix);
    let mut results = Vec::new();
    for (framework_id, framework) in frameworks {
        let limits = Limits::resolve(&framework.defaults, scope.thresholds);
        for control in &framework.controls {
            let owner = scope.ownership.control(framework_id, &control.id);
            let key = format!("{framework_id}:{}", control.id);
            let applies = applies(control.applies_to.as_deref(), scope.service_provider);
            if !applies {
                results.push(ControlResult {
                    framework: framework_id.clone(),
                    control_id: control.id.clone(),
                    title: control.title.clone(),
                    status: Status::NotApplicable,
                    owner,
                    kind: control.kind,
                    checks: Vec::new(),
                    manual_evidence: control.manual_evidence.clone(),
                    reason: format!(
                        "applies only to {} organisations",
                        control.applies_to.as_deref().unwrap_or("other")
                    ),
                    accepted: None,
                });
                continue;
            }
            let ttl = control
                .evidence_ttl_days
                .unwrap_or(limits.evidence_ttl_days);
            let mut checks = Vec::new();
            for id in &control.checks {
                let Some(check) = checks::check(id) else {
                    continue; // the catalog validated every id at load
                };
                let Some(ran) = cache.get(&(check.id, threshold_key(check, &limits))) else {
                    continue; // every applicable (check, thresholds) pair ran above
                };
                checks.push(check_result(scope, owner, check, ran, ttl, as_of));
            }
            if owner == Owner::Unassigned
                && !checks.iter().any(|c| c.check == RESPONSIBILITY_MATRIX)
            {
                checks.push(unowned(&key, &control.title));
            }
            let docs: &[&ManualDocument] = documents.get(key.as_str()).map_or(&[], Vec::as_slice);
            let (status, mut reason) =
                judge(control.kind, &checks, &control.manual_evidence, docs, as_of);
            if owner == Owner::Unassigned {
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
                accepted: None,
            });
        }
    }
    Ok(results)
}

/// The id of the check that judges ownership itself.
const RESPONSIBILITY_MATRIX: &str = "responsibility_matrix";

/// Whether a control whose `applies_to` is given applies to this
/// organisation (`service-provider` controls only to service providers).
pub fn applies(applies_to: Option<&str>, service_provider: bool) -> bool {
    match applies_to {
        None | Some("all") => true,
        Some("service-provider") => service_provider,
        Some(_) => false,
    }
}

/// The ownership matrix of every applicable control in scope, for the
/// `responsibility_matrix` check.
fn ownership_matrix(
    scope: &Scope<'_>,
    frameworks: &[(&String, &crate::catalog::Framework)],
) -> Vec<OwnershipEntry> {
    let mut matrix = Vec::new();
    for (framework_id, framework) in frameworks {
        for control in &framework.controls {
            if !applies(control.applies_to.as_deref(), scope.service_provider) {
                continue;
            }
            let owner = scope.ownership.control(framework_id, &control.id);
            let unassigned_checks = if owner == Owner::Shared {
                control
                    .checks
                    .iter()
                    .filter(|c| scope.ownership.check(owner, c) == Owner::Unassigned)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            matrix.push(OwnershipEntry {
                control: format!("{framework_id}:{}", control.id),
                title: control.title.clone(),
                owner,
                unassigned_checks,
            });
        }
    }
    matrix
}

/// Current documents per control key.
fn manual_documents(facts: &Facts) -> HashMap<&str, Vec<&ManualDocument>> {
    let mut map: HashMap<&str, Vec<&ManualDocument>> = HashMap::new();
    for doc in &facts.manual {
        for key in &doc.controls {
            map.entry(key.as_str()).or_default().push(doc);
        }
    }
    map
}

/// The values of the thresholds a check declares: frameworks whose values
/// agree share one run of the check.
fn threshold_key(check: &checks::Check, limits: &Limits) -> Vec<u32> {
    check.thresholds.iter().map(|t| t.value(limits)).collect()
}

type Runs = HashMap<(&'static str, Vec<u32>), Ran>;

/// Run every check that an applicable control needs, once per distinct set of
/// the thresholds it reads, spread over the available cores. Each run is pure,
/// so the order they finish in cannot change a result.
fn run_checks(
    scope: &Scope<'_>,
    frameworks: &[(&String, &crate::catalog::Framework)],
    facts: &Facts,
    as_of: DateTime<Utc>,
    matrix: &[OwnershipEntry],
) -> Runs {
    let mut jobs: Vec<(&'static checks::Check, Limits, Vec<u32>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, framework) in frameworks {
        let limits = Limits::resolve(&framework.defaults, scope.thresholds);
        for control in &framework.controls {
            if !applies(control.applies_to.as_deref(), scope.service_provider) {
                continue;
            }
            for id in &control.checks {
                let Some(check) = checks::check(id) else {
                    continue;
                };
                let key = threshold_key(check, &limits);
                if seen.insert((check.id, key.clone())) {
                    jobs.push((check, limits, key));
                }
            }
        }
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(jobs.len())
        .max(1);
    // The inventory's device records, looked up once for every check.
    let devices = checks::DeviceIndex::new(facts);
    let run = |job: &(&'static checks::Check, Limits, Vec<u32>)| {
        run_one(job.0, facts, &job.1, as_of, matrix, &devices)
    };
    let ran: Vec<Ran> = if workers == 1 {
        jobs.iter().map(run).collect()
    } else {
        let mut slots: Vec<Option<Ran>> = jobs.iter().map(|_| None).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let jobs = &jobs;
                    let run = &run;
                    s.spawn(move || {
                        (w..jobs.len())
                            .step_by(workers)
                            .map(|i| (i, run(&jobs[i])))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                match handle.join() {
                    Ok(done) => {
                        for (i, r) in done {
                            slots[i] = Some(r);
                        }
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        slots.into_iter().flatten().collect()
    };
    let mut runs_of: HashMap<&str, usize> = HashMap::new();
    for (check, _, _) in &jobs {
        *runs_of.entry(check.id).or_default() += 1;
    }
    jobs.into_iter()
        .zip(ran)
        .map(|((check, _, key), mut r)| {
            r.key = if runs_of.get(check.id).copied().unwrap_or(0) > 1 {
                let values: Vec<String> = key.iter().map(u32::to_string).collect();
                format!("{}@{}", check.id, values.join(","))
            } else {
                check.id.to_owned()
            };
            ((check.id, key), r)
        })
        .collect()
}

/// A check's outcome with what it read, computed once per thresholds.
struct Ran {
    /// Key in the `checks` section of `results/controls.json`.
    key: String,
    outcome: Outcome,
    failing: Arc<Vec<Subject>>,
    unproven: Arc<Vec<Subject>>,
    evidence: Arc<Vec<EvidenceSet>>,
    /// The oldest collection time of the datasets it read.
    collected: Option<(DateTime<Utc>, String)>,
}

fn run_one(
    check: &checks::Check,
    facts: &Facts,
    limits: &Limits,
    as_of: DateTime<Utc>,
    matrix: &[OwnershipEntry],
    devices: &checks::DeviceIndex<'_>,
) -> Ran {
    let input = CheckInput {
        facts,
        limits,
        as_of,
        ownership: Some(matrix),
        devices: Some(devices),
    };
    let mut outcome = checks::run_check(check, &input);
    let failing = Arc::new(std::mem::take(&mut outcome.failing));
    let unproven = Arc::new(std::mem::take(&mut outcome.unproven));
    let evidence = Arc::new(evidence_sets(check, facts));
    let collected = check
        .needs
        .iter()
        .flat_map(|k| facts.coverage.get(k).into_iter().flatten())
        .filter_map(|p| {
            let name = format!("{}/{}", p.source, p.dataset);
            Some((*facts.collected.get(&name)?, name))
        })
        .min();
    Ran {
        key: String::new(),
        outcome,
        failing,
        unproven,
        evidence,
        collected,
    }
}

/// The evidence sets a check read: one per (source, dataset) behind the kinds
/// of facts it needs, in (source, dataset) order.
fn evidence_sets(check: &checks::Check, facts: &Facts) -> Vec<EvidenceSet> {
    let mut sets: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for kind in check.needs {
        for p in facts.coverage.get(kind).into_iter().flatten() {
            sets.entry((p.source.as_str(), p.dataset.as_str()))
                .or_default()
                .extend(p.evidence.iter().map(String::as_str));
        }
    }
    sets.into_iter()
        .filter(|(_, files)| !files.is_empty())
        .map(|((source, dataset), files)| EvidenceSet::new(source, dataset, files))
        .collect()
}

fn check_result(
    scope: &Scope<'_>,
    owner: Owner,
    check: &checks::Check,
    ran: &Ran,
    ttl_days: u32,
    as_of: DateTime<Utc>,
) -> CheckResult {
    let responsible = scope.ownership.check(owner, check.id);
    let stale = ran.collected.as_ref().and_then(|(at, name)| {
        let age = (as_of - *at).num_days();
        (age > i64::from(ttl_days)).then(|| {
            format!(
                "evidence {name} was collected {age} days before as_of, older than its time-to-live of {ttl_days} days"
            )
        })
    });
    let outcome = &ran.outcome;
    let (verdict, failing, unproven, summary, figures) = match stale {
        Some(reason) => (
            Verdict::Inconclusive,
            Arc::default(),
            Arc::default(),
            reason,
            Vec::new(),
        ),
        None => (
            outcome.verdict,
            Arc::clone(&ran.failing),
            Arc::clone(&ran.unproven),
            outcome.summary.clone(),
            outcome.figures.clone(),
        ),
    };
    CheckResult {
        check: check.id.to_owned(),
        title: check.title.to_owned(),
        outcome: verdict,
        responsible,
        evaluated: outcome.evaluated,
        failing_count: failing.len(),
        failing,
        unproven_count: unproven.len(),
        unproven,
        evidence: Arc::clone(&ran.evidence),
        result: ran.key.clone(),
        summary,
        remediation: check.remediation.to_owned(),
        figures,
    }
}

/// The `responsibility_matrix` finding for a control nobody owns.
fn unowned(key: &str, title: &str) -> CheckResult {
    let check = checks::check(RESPONSIBILITY_MATRIX);
    CheckResult {
        check: RESPONSIBILITY_MATRIX.to_owned(),
        title: check
            .map_or("Every control in scope has an accountable owner", |c| {
                c.title
            })
            .to_owned(),
        outcome: Verdict::Fail,
        responsible: Owner::Unassigned,
        evaluated: 1,
        failing_count: 1,
        failing: Arc::new(vec![Subject {
            id: key.to_owned(),
            name: title.to_owned(),
            detail: "no accountable owner".to_owned(),
        }]),
        unproven_count: 0,
        unproven: Arc::default(),
        evidence: Arc::default(),
        result: format!("{RESPONSIBILITY_MATRIX}@{key}"),
        summary: "this control has no accountable owner".to_owned(),
        remediation: check.map_or("", |c| c.remediation).to_owned(),
        figures: Vec::new(),
    }
}

/// A control's status from its checks and documents: any fail fails it, else
/// any inconclusive makes it inconclusive; manual controls and passing hybrid
/// ones are attested by a current document, else pending.
fn judge(
    kind: ControlKind,
    checks: &[CheckResult],
    manual: &[String],
    docs: &[&ManualDocument],
    as_of: DateTime<Utc>,
) -> (Status, String) {
    let list = |v: Verdict| -> Vec<String> {
        checks
            .iter()
            .filter(|c| c.outcome == v)
            .map(|c| format!("{}: {}", c.check, c.summary))
            .collect()
    };
    let failing = list(Verdict::Fail);
    let unknown = list(Verdict::Inconclusive);
    if !failing.is_empty() {
        // A failure decides the status; checks that could not be judged are
        // still named, so nobody reads the failure list as complete.
        let mut reason = failing.join("; ");
        if !unknown.is_empty() {
            reason.push_str(&format!("; also not judged: {}", unknown.join("; ")));
        }
        return (Status::Fail, reason);
    }
    if !unknown.is_empty() {
        return (Status::Inconclusive, unknown.join("; "));
    }
    if kind == ControlKind::Automated {
        return (Status::Pass, list(Verdict::Pass).join("; "));
    }
    let current: Vec<&str> = docs
        .iter()
        .filter(|d| d.expires.is_none_or(|e| e > as_of))
        .filter(|d| d.evidence_date.is_none_or(|t| t <= as_of))
        .map(|d| d.path.as_str())
        .collect();
    let prefix = if kind == ControlKind::Hybrid {
        "automated checks pass; "
    } else {
        ""
    };
    if !current.is_empty() {
        return (
            Status::ManualAttested,
            format!("{prefix}attested by {}", current.join(", ")),
        );
    }
    let expired: Vec<String> = docs
        .iter()
        .filter_map(|d| {
            d.expires
                .map(|e| format!("{} expired {}", d.path, e.format("%Y-%m-%d")))
        })
        .collect();
    let expired = if expired.is_empty() {
        String::new()
    } else {
        format!(" ({})", expired.join(", "))
    };
    (
        Status::ManualPending,
        format!(
            "{prefix}waiting for documents{expired}: {}",
            manual.join("; ")
        ),
    )
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
