//! `backup_recency`: every protected system has a recent successful backup.
//!
//! **What it tests.** Every machine or workload a backup product protects
//! (one subject per product record, so one product's failure is never hidden
//! by another product's success; a Microsoft 365 tenant's backup is judged
//! here as a workload, apart from the device population of
//! `backup_coverage`) has a successful backup (a usable restore
//! point) no older than `backup_max_age_hours`, its newest run did not fail
//! after that success, and its backups are not paused. A system with no
//! successful backup at all fails. Unproven, listed apart: a system whose
//! newest result is outside the vendor's documented values (even with an
//! earlier success: that run may have failed), one still running with no
//! earlier success, a time in the future (a wrong clock, never
//! "recent"), and every backup source that was partial, failed or lists no
//! protected system at all (0 jobs is unproven, never a pass).
//!
//! **Why it matters.** HIPAA 164.308(a)(7)(ii)(A) asks for retrievable exact
//! copies of ePHI; SOC 2 A1.2 for backups that support recovery objectives. A
//! job that has quietly failed for a week is the backup nobody has when
//! ransomware hits.
//!
//! **Evidence.** The protected systems of every backup source (Veeam job
//! states and restore points, Datto BCDR assets, Cove device statistics, spec
//! products), their newest successful backup, newest run and its result.
//!
//! **How to fix.** Fix the failing jobs (credentials, storage space, agent
//! connectivity), resume paused ones, and run a backup of the listed
//! systems; then check that the job's schedule keeps them within the limit.

use super::backups::{day, hours_between, in_future, judge_systems};
use super::{Check, CheckInput, Outcome, Threshold};
use crate::facts::{BackupResult, FactKind, ProtectedSystem};

pub(super) const CHECK: Check = Check {
    id: "backup_recency",
    source: include_str!("backup_recency.rs"),
    title: "Every protected system has a recent successful backup",
    thresholds: &[Threshold::BackupMaxAgeHours],
    remediation: "Fix the failing or paused backup jobs of the listed systems and run a backup; keep the schedule within the limit.",
    needs: &[FactKind::Backups],
    per_subject: &[FactKind::Backups],
    run,
};

/// The judgement of one system: `Ok(None)` passes, `Ok(Some)` fails with a
/// detail, `Err` is unproven with a reason.
fn judge(b: &ProtectedSystem, input: &CheckInput<'_>) -> Result<Option<String>, String> {
    let limit = i64::from(input.limits.backup_max_age_hours);
    let as_of = input.as_of;
    for t in [b.last_success, b.last_run, b.last_failure]
        .into_iter()
        .flatten()
    {
        if in_future(t, as_of) {
            return Err(format!(
                "{} reports a backup time in the future ({}): its clock or data is wrong",
                b.product,
                day(t)
            ));
        }
    }
    if b.paused == Some(true) {
        return Ok(Some(format!(
            "backups are paused or the job is disabled ({})",
            b.product
        )));
    }
    let Some(success) = b.last_success else {
        return match &b.last_result {
            BackupResult::Unknown(raw) => Err(format!(
                "no successful backup recorded and the newest result {raw:?} is not a documented value"
            )),
            BackupResult::Running => {
                Err("no successful backup recorded yet; the first backup is running".to_owned())
            }
            other => Ok(Some(format!(
                "no successful backup recorded (newest result: {})",
                other.describe()
            ))),
        };
    };
    let age = hours_between(success, as_of);
    let mut problems = Vec::new();
    if age > limit {
        problems.push(format!(
            "newest successful backup {} is {age} h old (limit {limit} h)",
            day(success)
        ));
    }
    let failed_after = match (&b.last_result, b.last_run) {
        (BackupResult::Failed, Some(run)) if run > success => Some(run),
        (BackupResult::Failed, None) => None,
        _ => None,
    };
    let failed_after = failed_after.or(b.last_failure.filter(|f| *f > success));
    if let Some(f) = failed_after {
        problems.push(format!("the newest run failed ({})", day(f)));
    }
    if !problems.is_empty() {
        return Ok(Some(problems.join("; ")));
    }
    // A newest run whose result is not a documented value, not older than
    // the success: it may have failed, so the success alone proves nothing.
    if let BackupResult::Unknown(raw) = &b.last_result {
        if b.last_run.is_none_or(|run| run >= success) {
            return Err(format!(
                "the newest run's result {raw:?} is not a documented value; the successful backup of {} may not be the newest state",
                day(success)
            ));
        }
    }
    Ok(None)
}

fn run(input: &CheckInput<'_>) -> Outcome {
    judge_systems(input, |b| judge(b, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::backups::fixtures::{from_veeam, run_on_systems, system};
    use crate::checks::fixtures::{as_of, days_ago, ids, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Facts, ProtectedSystem};
    use crate::run::DatasetStatus;

    #[test]
    fn table() {
        let failed_after = {
            let mut b = system("FS01", Some(2), BackupResult::Failed);
            b.last_success = Some(days_ago(3));
            b
        };
        let paused = {
            let mut b = system("FS02", Some(1), BackupResult::Success);
            b.paused = Some(true);
            b
        };
        let m365_failed = {
            let mut b = system("M365", Some(3), BackupResult::Failed);
            b.kind = crate::facts::ProtectedKind::Workload;
            b.last_run = Some(days_ago(1));
            b
        };
        let future = {
            let mut b = system("FS03", Some(1), BackupResult::Success);
            b.last_success = Some(as_of() + chrono::Duration::days(3));
            b
        };
        type Case = (
            &'static str,
            Vec<ProtectedSystem>,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "recent success",
                vec![system("A", Some(1), BackupResult::Success)],
                Verdict::Pass,
                &[],
            ),
            (
                "warning still leaves a point",
                vec![system("A", Some(1), BackupResult::Warning)],
                Verdict::Pass,
                &[],
            ),
            (
                "too old",
                vec![system("A", Some(8), BackupResult::Success)],
                Verdict::Fail,
                &["veeam:A"],
            ),
            (
                "never succeeded",
                vec![system("A", None, BackupResult::Failed)],
                Verdict::Fail,
                &["veeam:A"],
            ),
            (
                "newest run failed after a success",
                vec![failed_after],
                Verdict::Fail,
                &["veeam:FS01"],
            ),
            ("paused", vec![paused], Verdict::Fail, &["veeam:FS02"]),
            (
                "a failing workload (Microsoft 365) fails beside a healthy machine",
                vec![system("A", Some(1), BackupResult::Success), m365_failed],
                Verdict::Fail,
                &["veeam:M365"],
            ),
            (
                "future time is unproven",
                vec![future],
                Verdict::Inconclusive,
                &[],
            ),
            (
                "unknown newest result after a recent success is unproven",
                vec![system("A", Some(1), BackupResult::Unknown("Weird".into()))],
                Verdict::Inconclusive,
                &[],
            ),
            (
                "unknown result without success is unproven",
                vec![system("A", None, BackupResult::Unknown("Weird".into()))],
                Verdict::Inconclusive,
                &[],
            ),
            (
                "0 jobs is unproven, not pass",
                vec![],
                Verdict::Inconclusive,
                &[],
            ),
        ];
        for (name, backups, verdict, failing) in cases {
            let out = run_on_systems(&CHECK, backups);
            assert_eq!(out.verdict, verdict, "{name}: {out:?}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn a_partial_source_never_passes() {
        let mut facts = from_veeam(Facts::default(), &[FactKind::Backups]);
        for p in facts.coverage.values_mut().flatten() {
            p.status = DatasetStatus::Partial;
            p.reason = Some("page 3 truncated".into());
        }
        facts.backups = vec![system("A", Some(1), BackupResult::Success)];
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert_eq!(out.unproven[0].id, "source:veeam");
        // Without any backup source the check cannot be judged at all.
        let none = run_with(&CHECK, &Facts::default(), &Limits::DEFAULT);
        assert_eq!(none.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(run_on_systems(
            &CHECK,
            vec![
                system("ok", Some(1), BackupResult::Success),
                system("old", Some(10), BackupResult::Success),
                system("never", None, BackupResult::None),
                system("odd", None, BackupResult::Unknown("Exotic".into())),
            ]
        ));
    }
}
