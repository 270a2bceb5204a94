//! What the backup checks share: judging every protected system, the
//! sources that cannot vouch for their list of protected systems, and times a
//! source reports in the future.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{CheckInput, Outcome, Subject};
use crate::facts::{FactKind, ProtectedSystem};
use crate::run::DatasetStatus;

/// How far past `as_of` a reported time may lie (clock skew) before it is
/// treated as wrong rather than recent.
const FUTURE_SKEW: i64 = 1;

/// Whether `t` lies in the future of `as_of` (beyond an hour of skew).
pub(super) fn in_future(t: DateTime<Utc>, as_of: DateTime<Utc>) -> bool {
    t > as_of + Duration::hours(FUTURE_SKEW)
}

/// One date for details.
pub(super) fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The sources of `kind` that cannot vouch for their list: each partial or
/// failed dataset, and each source that provides backups but lists no
/// protected system (a product reporting 0 jobs is unproven, never a pass:
/// an empty product and a key without permission look the same). One
/// unproven subject per source, with id `source:<name>`.
pub(super) fn source_gaps(input: &CheckInput<'_>, kind: FactKind) -> Vec<Subject> {
    let mut gaps: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for p in input.facts.coverage.get(&kind).into_iter().flatten() {
        if p.status != DatasetStatus::Complete {
            gaps.entry(p.source.as_str()).or_default().push(format!(
                "{}/{} is {}{}",
                p.source,
                p.dataset,
                p.status,
                p.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
    }
    if kind == FactKind::Backups {
        for p in input.facts.coverage.get(&kind).into_iter().flatten() {
            let listed = input.facts.backups.iter().any(|b| b.source == p.source);
            if !listed && p.status == DatasetStatus::Complete {
                gaps.entry(p.source.as_str()).or_default().push(
                    "the product reports no protected system (0 jobs): an empty product and missing permissions look the same".to_owned(),
                );
            }
        }
    }
    gaps.into_iter()
        .map(|(source, mut why)| {
            why.sort();
            why.dedup();
            Subject {
                id: format!("source:{source}"),
                name: source.to_owned(),
                detail: why.join("; "),
            }
        })
        .collect()
}

/// Judge every protected system with `judge`, which gives `Ok(None)` for a
/// pass, `Ok(Some(detail))` for a failure and `Err(reason)` for a system it
/// cannot judge (unproven, listed apart). Every backup source that cannot
/// vouch for its list (see [`source_gaps`]) is unproven too.
pub(super) fn judge_systems(
    input: &CheckInput<'_>,
    judge: impl Fn(&ProtectedSystem) -> Result<Option<String>, String>,
) -> Outcome {
    let mut failing = Vec::new();
    let mut unproven = source_gaps(input, FactKind::Backups);
    for b in &input.facts.backups {
        match judge(b) {
            Ok(None) => {}
            Ok(Some(why)) => failing.push(subject(b, why)),
            Err(why) => unproven.push(subject(b, why)),
        }
    }
    Outcome::judge_all(
        input.facts.backups.len(),
        failing,
        unproven,
        "protected systems",
    )
}

/// A protected system as a subject.
fn subject(b: &ProtectedSystem, detail: String) -> Subject {
    Subject {
        id: b.id.clone(),
        name: b.name.clone(),
        detail,
    }
}

/// Whole hours from `then` to `now` (0 when `then` is later).
pub(super) fn hours_between(then: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - then).num_hours().max(0)
}

#[cfg(test)]
pub(super) mod fixtures {
    //! Backup fact builders for the backup checks' tests.
    use crate::checks::fixtures::{complete, days_ago, run};
    use crate::checks::{Check, Limits, Outcome};
    use crate::facts::{BackupResult, FactKind, Facts, ProtectedKind, ProtectedSystem};

    /// A Veeam-protected machine whose newest run (`success_days` ago) gave `result`.
    pub fn system(id: &str, success_days: Option<i64>, result: BackupResult) -> ProtectedSystem {
        let mut b = ProtectedSystem::new("veeam", id, "Veeam", id, ProtectedKind::Machine);
        b.last_success = success_days.map(days_ago);
        b.last_run = success_days.map(days_ago);
        b.last_result = result;
        b
    }

    /// Facts where source `veeam` completely provides `kinds`.
    pub fn from_veeam(mut facts: Facts, kinds: &[FactKind]) -> Facts {
        facts = complete(facts, kinds);
        for p in facts.coverage.values_mut().flatten() {
            if p.source == "test" {
                p.source = "veeam".into();
            }
        }
        facts
    }

    /// Run `check` with the default limits over `backups`, listed by a
    /// source `veeam` that completely provides the backups.
    pub fn run_on_systems(check: &Check, backups: Vec<ProtectedSystem>) -> Outcome {
        let mut facts = from_veeam(Facts::default(), &[FactKind::Backups]);
        facts.backups = backups;
        run(check, &facts, &Limits::DEFAULT)
    }
}
