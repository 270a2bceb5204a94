//! Spec-driven backup pages to protected systems: the spec stored with the
//! evidence (dataset `spec`) says how records map (see
//! [`crate::sources::rmm_spec::backup_map`]).
//!
//! One [`ProtectedSystem`] per `[systems]` record (the spec's `name` is the
//! product). `[runs]` give each system its newest success (a `success` or
//! `warning` run), its newest failure and its newest run with that run's
//! result, combined with whatever the system record itself says (the newer
//! wins). A run naming a system the list does not hold is not judged: the
//! systems list decides what is protected. When the run list was not
//! collected in full, a system with no run seen gets an unknown result
//! (unproven: its runs may be on the missing pages), never "no backup". `[copies]` and `[tests]`, when mapped, give every system a
//! list (empty when no record names it: the product reports none); when not
//! mapped, a system's copies and tests are `None` (the product does not
//! say), which leaves 3-2-1 and restore testing unproven.
//!
//! Enum values outside the spec's maps are kept raw as unknown (a run result
//! as [`BackupResult::Unknown`], a location as [`CopyLocation::Unknown`], a
//! test result as [`TestResult::Unknown`]) and noted on the system; a test of
//! a kind outside the map is noted and not counted. Records without an id,
//! time or result are problems that make the facts partial.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::evidence::DatasetStatus;
use crate::facts::{
    BackupCopy, BackupResult, CopyLocation, FactKind, Facts, ProtectedKind, ProtectedSystem,
    RestoreTest, RestoreTestKind, SourceEvidence, TestResult,
};
use crate::sources::rmm_spec::normalise::{flag, load_spec, records_with_device, text};
use crate::sources::rmm_spec::spec::{self, EnumValue, Fields, Spec};

/// What a run, system or test result field gives.
fn backup_result(v: EnumValue) -> Option<BackupResult> {
    match v {
        EnumValue::Absent => None,
        EnumValue::Raw(raw) => Some(BackupResult::Unknown(raw)),
        EnumValue::Mapped(t) => Some(match t.as_str() {
            "success" => BackupResult::Success,
            "warning" => BackupResult::Warning,
            "failed" => BackupResult::Failed,
            "running" => BackupResult::Running,
            "none" => BackupResult::None,
            _ => BackupResult::Unknown(t),
        }),
    }
}

fn newer(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    a.max(b)
}

fn time(f: Option<&Fields>, r: &Value) -> Option<DateTime<Utc>> {
    f.and_then(|f| spec::resolve_time(f, r))
}

/// What the runs say about one system.
#[derive(Default)]
struct Runs {
    success: Option<DateTime<Utc>>,
    failure: Option<DateTime<Utc>>,
    newest: Option<(DateTime<Utc>, BackupResult)>,
    jobs: BTreeSet<String>,
}

fn failed_provenance(src: &SourceEvidence<'_>, why: &str, facts: &mut Facts) {
    // A source that failed before storing its spec keeps its own reason.
    let stored = src
        .report
        .datasets
        .contains_key(crate::sources::rmm_spec::SPEC_DATASET);
    for kind in [FactKind::Backups, FactKind::RestoreTests] {
        let mut p = src.provenance(crate::sources::rmm_spec::SPEC_DATASET, &[]);
        p.status = DatasetStatus::Failed;
        if stored {
            p.reason = Some(format!("cannot read the backup spec: {why}"));
        }
        facts.provide(kind, p);
    }
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let spec = match load_spec(src) {
        Ok(s) => s,
        Err(e) => return failed_provenance(src, &e, facts),
    };
    let Some(map) = &spec.systems else {
        return failed_provenance(src, "the spec has no [systems] table", facts);
    };

    let mut problems = Vec::new();
    let mut systems: Vec<ProtectedSystem> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let records = spec
        .endpoint(&map.dataset)
        .map(|e| e.records.clone())
        .unwrap_or_default();
    for (path, page) in src.pages.get(&map.dataset).into_iter().flatten() {
        let Some(items) = page.pointer(&records).and_then(Value::as_array) else {
            problems.push(format!("{path}: no record array at `{records}`"));
            continue;
        };
        for r in items {
            if !spec::keep(&map.only_when, r) {
                continue;
            }
            let Some(id) = text(Some(&map.id), r, path, &mut problems) else {
                problems.push(format!("{path}: a protected system without an id"));
                continue;
            };
            if index.contains_key(&id) {
                problems.push(format!("{path}: system {} listed twice", id.escape_debug()));
                continue;
            }
            let name =
                text(Some(&map.name), r, path, &mut problems).unwrap_or_else(|| "(unnamed)".into());
            // Without a `kind` mapping every system is a machine; with one, a
            // record it does not place (no value, or one outside the map
            // without a default) is of unknown kind: never taken for a
            // machine, so it proves no device backed up.
            let (kind, kind_note) = match &map.kind {
                None => (ProtectedKind::Machine, None),
                Some(f) => match text(Some(f), r, path, &mut problems).as_deref() {
                    Some("machine") => (ProtectedKind::Machine, None),
                    Some("workload") => (ProtectedKind::Workload, None),
                    _ => (
                        ProtectedKind::Unknown,
                        Some(
                            "the spec's `kind` does not place this record: not taken for a machine",
                        ),
                    ),
                },
            };
            let mut b = ProtectedSystem::new(src.name, &id, &spec.name, &name, kind);
            b.notes.extend(kind_note.map(str::to_owned));
            b.hostname = text(map.hostname.as_ref(), r, path, &mut problems);
            b.serial = text(map.serial.as_ref(), r, path, &mut problems);
            b.os = text(map.os.as_ref(), r, path, &mut problems);
            if let Some(job) = text(map.job.as_ref(), r, path, &mut problems) {
                b.jobs.push(job);
            }
            b.last_success = time(map.last_success.as_ref(), r);
            b.last_run = time(map.last_run.as_ref(), r);
            b.last_failure = time(map.last_failure.as_ref(), r);
            if let Some(f) = &map.last_result {
                if let Some(result) = backup_result(spec::resolve_enum(f, r)) {
                    if let BackupResult::Unknown(raw) = &result {
                        b.notes.push(format!(
                            "last result {raw:?} is not among the values the spec maps"
                        ));
                    }
                    if result == BackupResult::Failed && b.last_failure.is_none() {
                        b.last_failure = b.last_run;
                    }
                    b.last_result = result;
                }
            }
            b.paused = flag(map.paused.as_ref(), r, path, &mut problems);
            index.insert(id, systems.len());
            systems.push(b);
        }
    }

    let run_problems = apply_runs(src, &spec, &index, &mut systems);
    let copy_problems = apply_copies(src, &spec, &index, &mut systems);
    let test_problems = apply_tests(src, &spec, &index, &mut systems);
    for b in &mut systems {
        b.jobs.sort();
        b.jobs.dedup();
    }
    facts.backups.extend(systems);

    facts.provide(FactKind::Backups, src.provenance(&map.dataset, &problems));
    if let (Some(runs), Some(p)) = (&spec.runs, run_problems) {
        facts.provide(FactKind::Backups, src.provenance(&runs.dataset, &p));
    }
    if let (Some(copies), Some(p)) = (&spec.copies, copy_problems) {
        facts.provide(FactKind::Backups, src.provenance(&copies.dataset, &p));
    }
    if let (Some(tests), Some(p)) = (&spec.tests, test_problems) {
        facts.provide(FactKind::RestoreTests, src.provenance(&tests.dataset, &p));
    }
}

/// The records of a per-system table with the system each belongs to: its
/// `system` field, else the per-device request's system, else (a table over
/// the systems' own list) the record's own id.
fn owned<'p>(
    src: &'p SourceEvidence<'_>,
    spec: &Spec,
    dataset: &str,
    system: Option<&Fields>,
    problems: &mut Vec<String>,
) -> Vec<(String, &'p Value)> {
    let own = spec
        .systems
        .as_ref()
        .filter(|s| system.is_none() && s.dataset == dataset)
        .map(|s| &s.id);
    records_with_device(src, spec, dataset, system.or(own), problems)
}

/// The kept records of a per-system table, with the index of the listed
/// system each belongs to (records of unlisted systems are left out).
fn listed<'p>(
    src: &'p SourceEvidence<'_>,
    spec: &Spec,
    dataset: &str,
    system: Option<&Fields>,
    only_when: &[spec::Condition],
    index: &BTreeMap<String, usize>,
    problems: &mut Vec<String>,
) -> Vec<(usize, String, &'p Value)> {
    owned(src, spec, dataset, system, problems)
        .into_iter()
        .filter(|(_, r)| spec::keep(only_when, r))
        .filter_map(|(id, r)| index.get(&id).map(|&n| (n, id, r)))
        .collect()
}

fn apply_runs(
    src: &SourceEvidence<'_>,
    spec: &Spec,
    index: &BTreeMap<String, usize>,
    systems: &mut [ProtectedSystem],
) -> Option<Vec<String>> {
    let map = spec.runs.as_ref()?;
    let mut problems = Vec::new();
    let mut runs: BTreeMap<usize, Runs> = BTreeMap::new();
    let records = listed(
        src,
        spec,
        &map.dataset,
        map.system.as_ref(),
        &map.only_when,
        index,
        &mut problems,
    );
    for (n, system, r) in records {
        let Some(result) = backup_result(spec::resolve_enum(&map.result, r)) else {
            problems.push(format!(
                "{}: a run of system {} without a result",
                map.dataset,
                system.escape_debug()
            ));
            continue;
        };
        let Some(at) = spec::resolve_time(&map.at, r) else {
            problems.push(format!(
                "{}: a run of system {} without a time",
                map.dataset,
                system.escape_debug()
            ));
            continue;
        };
        let agg = runs.entry(n).or_default();
        if let Some(job) = map
            .job
            .as_ref()
            .and_then(|f| spec::resolve(f, r).ok().flatten())
        {
            agg.jobs.insert(job);
        }
        match result {
            BackupResult::Success | BackupResult::Warning => {
                agg.success = newer(agg.success, Some(at))
            }
            BackupResult::Failed => agg.failure = newer(agg.failure, Some(at)),
            _ => {}
        }
        if agg.newest.as_ref().is_none_or(|(t, _)| at > *t) {
            agg.newest = Some((at, result));
        }
    }
    // Without the whole run list, a system with no run seen is unproven (its
    // runs may be on the missing pages), never "no backup".
    let incomplete = src
        .report
        .datasets
        .get(&map.dataset)
        .is_none_or(|d| d.status != DatasetStatus::Complete);
    if incomplete {
        for (n, b) in systems.iter_mut().enumerate() {
            if runs.contains_key(&n) {
                b.notes.push(format!(
                    "the run list `{}` is incomplete: newer runs may be missing",
                    map.dataset
                ));
            } else if b.last_success.is_none() && b.last_run.is_none() {
                b.notes.push(format!(
                    "no run seen, and the run list `{}` is incomplete",
                    map.dataset
                ));
                b.last_result =
                    BackupResult::Unknown(format!("runs not collected in full ({})", map.dataset));
            }
        }
    }
    for (n, agg) in runs {
        let b = &mut systems[n];
        b.last_success = newer(b.last_success, agg.success);
        b.last_failure = newer(b.last_failure, agg.failure);
        b.jobs.extend(agg.jobs);
        if let Some((at, result)) = agg.newest {
            if b.last_run.is_none_or(|t| at >= t) {
                if let BackupResult::Unknown(raw) = &result {
                    b.notes.push(format!(
                        "newest run result {raw:?} is not among the values the spec maps"
                    ));
                }
                b.last_run = Some(at);
                b.last_result = result;
            }
        }
    }
    Some(problems)
}

fn apply_copies(
    src: &SourceEvidence<'_>,
    spec: &Spec,
    index: &BTreeMap<String, usize>,
    systems: &mut [ProtectedSystem],
) -> Option<Vec<String>> {
    let map = spec.copies.as_ref()?;
    let mut problems = Vec::new();
    for b in systems.iter_mut() {
        b.copies = Some(Vec::new());
    }
    let records = listed(
        src,
        spec,
        &map.dataset,
        map.system.as_ref(),
        &map.only_when,
        index,
        &mut problems,
    );
    for (n, system, r) in records {
        let path = map.dataset.as_str();
        let location = match spec::resolve_enum(&map.location, r) {
            EnumValue::Absent => {
                problems.push(format!(
                    "{path}: a copy of system {} without a location",
                    system.escape_debug()
                ));
                continue;
            }
            EnumValue::Mapped(t) => match t.as_str() {
                "local" => CopyLocation::Local,
                "offsite" => CopyLocation::Offsite,
                "cloud" => CopyLocation::Cloud,
                _ => CopyLocation::Unknown(t),
            },
            EnumValue::Raw(raw) => {
                systems[n].notes.push(format!(
                    "copy location {raw:?} is not among the values the spec maps"
                ));
                CopyLocation::Unknown(raw)
            }
        };
        let copy = BackupCopy {
            location,
            target: text(map.target.as_ref(), r, path, &mut problems),
            latest: time(map.latest.as_ref(), r),
            immutable: flag(map.immutable.as_ref(), r, path, &mut problems),
            offline: flag(map.offline.as_ref(), r, path, &mut problems),
        };
        if let Some(list) = systems[n].copies.as_mut() {
            list.push(copy);
        }
    }
    Some(problems)
}

fn apply_tests(
    src: &SourceEvidence<'_>,
    spec: &Spec,
    index: &BTreeMap<String, usize>,
    systems: &mut [ProtectedSystem],
) -> Option<Vec<String>> {
    let map = spec.tests.as_ref()?;
    let mut problems = Vec::new();
    for b in systems.iter_mut() {
        b.tests = Some(Vec::new());
    }
    let records = listed(
        src,
        spec,
        &map.dataset,
        map.system.as_ref(),
        &map.only_when,
        index,
        &mut problems,
    );
    for (n, system, r) in records {
        let path = map.dataset.as_str();
        let kind = match spec::resolve_enum(&map.kind, r) {
            EnumValue::Mapped(t) if t == "boot" => RestoreTestKind::Boot,
            EnumValue::Mapped(t) if t == "restore" => RestoreTestKind::Restore,
            EnumValue::Mapped(t) if t == "integrity" => RestoreTestKind::Integrity,
            EnumValue::Mapped(raw) | EnumValue::Raw(raw) => {
                systems[n].notes.push(format!(
                    "a test of kind {raw:?}, which the spec does not map, is not counted"
                ));
                continue;
            }
            EnumValue::Absent => {
                problems.push(format!(
                    "{path}: a test of system {} without a kind",
                    system.escape_debug()
                ));
                continue;
            }
        };
        let result = match spec::resolve_enum(&map.result, r) {
            EnumValue::Mapped(t) if t == "passed" => TestResult::Passed,
            EnumValue::Mapped(t) if t == "failed" => TestResult::Failed,
            EnumValue::Mapped(raw) | EnumValue::Raw(raw) => {
                systems[n].notes.push(format!(
                    "test result {raw:?} is not among the values the spec maps"
                ));
                TestResult::Unknown(raw)
            }
            EnumValue::Absent => {
                problems.push(format!(
                    "{path}: a test of system {} without a result",
                    system.escape_debug()
                ));
                continue;
            }
        };
        let test = RestoreTest {
            kind,
            at: time(map.at.as_ref(), r),
            result,
            detail: text(map.detail.as_ref(), r, path, &mut problems),
        };
        if let Some(list) = systems[n].tests.as_mut() {
            list.push(test);
        }
    }
    Some(problems)
}
