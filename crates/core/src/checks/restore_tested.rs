//! `restore_tested`: every protected system has a recent verified restore or
//! boot test.
//!
//! **What it tests.** For every protected system, a restore or boot test
//! (Datto screenshot verification, Veeam SureBackup, a test restore) passed
//! within `restore_test_days`, and the newest such test did not fail. A
//! supplied restore-test document (the `manual` source: a document whose
//! sidecar names HIPAA 164.308(a)(7)(ii)(D) or SOC 2 A1.3, dated within
//! `restore_test_days` and not expired) also counts, for every system, since
//! it speaks for the organisation's procedure; it never silences a failed
//! test a product reports. Integrity checks alone (checksums, local
//! verification) are recorded but are not restore tests. Unproven, listed
//! apart: a system whose product does not report tests (or whose test list
//! was partial) with no current document, a test dated in the future, and
//! every backup source that was partial, failed or listed no system.
//!
//! **Why it matters.** A backup that has never been restored is a hope, not a
//! control. HIPAA 164.308(a)(7)(ii)(D) asks for periodic testing of
//! contingency plans; SOC 2 A1.3 for testing recovery plan procedures.
//!
//! **Evidence.** Restore and boot tests per protected system from every
//! backup source that reports them, and restore-test documents from the
//! `manual` source.
//!
//! **How to fix.** Turn on boot verification (screenshot verification,
//! SureBackup) for the listed systems and fix failing ones, or run a test
//! restore and supply its record with a sidecar.

use chrono::{DateTime, Utc};

use super::backups::{day, in_future, judge_systems};
use super::{days_between, Check, CheckInput, Outcome, Threshold};
use crate::facts::{
    Availability, FactKind, ManualDocument, ProtectedSystem, RestoreTestKind, TestResult,
};

pub(super) const CHECK: Check = Check {
    id: "restore_tested",
    source: include_str!("restore_tested.rs"),
    title: "Every protected system has a recent verified restore or boot test",
    thresholds: &[Threshold::RestoreTestDays],
    remediation: "Turn on boot verification or run and document a test restore of the listed systems; fix failing tests.",
    needs: &[FactKind::Backups],
    per_subject: &[FactKind::Backups],
    run,
};

/// Controls whose documents are restore-test records (any framework).
const RESTORE_CONTROLS: &[&str] = &["164.308(a)(7)(ii)(D)", "A1.3"];

/// Whether `doc` is a restore-test record.
fn is_restore_document(doc: &ManualDocument) -> bool {
    doc.controls.iter().any(|c| {
        let id = c.split_once(':').map_or(c.as_str(), |(_, id)| id);
        RESTORE_CONTROLS.contains(&id)
    })
}

/// The newest current restore-test document: its date, and its title.
fn newest_document<'a>(input: &CheckInput<'a>) -> Option<(DateTime<Utc>, &'a str)> {
    input
        .facts
        .manual
        .iter()
        .filter(|d| is_restore_document(d))
        .filter(|d| d.expires.is_none_or(|e| e > input.as_of))
        .filter_map(|d| d.evidence_date.map(|t| (t, d.title.as_str())))
        .filter(|(t, _)| !in_future(*t, input.as_of))
        .max()
}

fn judge(
    b: &ProtectedSystem,
    input: &CheckInput<'_>,
    document: Option<(DateTime<Utc>, &str)>,
    tests_incomplete: Option<&str>,
) -> Result<Option<String>, String> {
    let limit = i64::from(input.limits.restore_test_days);
    let current_doc = document.filter(|(t, _)| days_between(*t, input.as_of) <= limit);
    let tests: Vec<_> = b
        .tests
        .iter()
        .flatten()
        .filter(|t| matches!(t.kind, RestoreTestKind::Boot | RestoreTestKind::Restore))
        .collect();
    if let Some(t) = tests
        .iter()
        .filter_map(|t| t.at)
        .find(|t| in_future(*t, input.as_of))
    {
        return Err(format!(
            "a restore test is dated in the future ({})",
            day(t)
        ));
    }
    let newest = tests.iter().filter(|t| t.at.is_some()).max_by_key(|t| t.at);
    if let Some(t) = newest {
        if t.result == TestResult::Failed {
            let at = t.at.map(day).unwrap_or_default();
            let why = t
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Ok(Some(format!(
                "the newest restore or boot test ({at}) failed{why}"
            )));
        }
    }
    let passed = tests
        .iter()
        .filter(|t| t.result == TestResult::Passed)
        .filter_map(|t| t.at)
        .max();
    if passed.is_some_and(|t| days_between(t, input.as_of) <= limit) || current_doc.is_some() {
        return Ok(None);
    }
    let unknown: Vec<String> = tests
        .iter()
        .filter_map(|t| match &t.result {
            TestResult::Unknown(raw) => Some(format!("{raw:?}")),
            _ => None,
        })
        .collect();
    let old = match (passed, document) {
        (Some(p), Some((d, _))) => Some(p.max(d)),
        (p, d) => p.or(d.map(|(t, _)| t)),
    };
    if let Some(t) = old {
        return Ok(Some(format!(
            "newest passed restore test or document {} is {} days old (limit {limit} days)",
            day(t),
            days_between(t, input.as_of)
        )));
    }
    if !unknown.is_empty() {
        return Err(format!(
            "restore test results outside the documented values: {}",
            unknown.join(", ")
        ));
    }
    match (&b.tests, tests_incomplete) {
        (_, Some(why)) => Err(format!(
            "no passed restore test found, and the test list is incomplete: {why}"
        )),
        (None, None) => Err(format!(
            "{} does not report restore tests and no restore-test document is supplied",
            b.product
        )),
        (Some(_), None) => Ok(Some("no restore or boot test recorded".to_owned())),
    }
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let document = newest_document(input);
    let incomplete = match input.facts.availability(FactKind::RestoreTests) {
        Availability::Incomplete(why) => Some(why),
        _ => None,
    };
    let out = judge_systems(input, |b| judge(b, input, document, incomplete.as_deref()));
    match document {
        Some((t, title)) => out.note(&format!(
            "restore-test document \"{title}\" dated {}",
            day(t)
        )),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::backups::fixtures::{from_veeam, system};
    use crate::checks::fixtures::{days_ago, ids, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{BackupResult, Facts, RestoreTest};

    fn test(kind: RestoreTestKind, days: i64, result: TestResult) -> RestoreTest {
        RestoreTest {
            kind,
            at: Some(days_ago(days)),
            result,
            detail: None,
        }
    }

    fn doc(days: i64) -> ManualDocument {
        ManualDocument {
            path: "manual/docs/doc-00001.pdf".into(),
            sha256: "00".into(),
            title: "Restore test".into(),
            controls: vec!["hipaa:164.308(a)(7)(ii)(D)".into()],
            owner: None,
            evidence_date: Some(days_ago(days)),
            expires: None,
        }
    }

    fn judge_all(tests: Option<Vec<RestoreTest>>, manual: Vec<ManualDocument>) -> Outcome {
        let mut b = system("FS01", Some(1), BackupResult::Success);
        b.tests = tests;
        let mut facts = from_veeam(
            Facts::default(),
            &[FactKind::Backups, FactKind::RestoreTests],
        );
        facts.backups = vec![b];
        facts.manual = manual;
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        use RestoreTestKind::*;
        use TestResult::*;
        type Case = (
            &'static str,
            Option<Vec<RestoreTest>>,
            Vec<ManualDocument>,
            Verdict,
        );
        let cases: Vec<Case> = vec![
            (
                "recent boot test",
                Some(vec![test(Boot, 3, Passed)]),
                vec![],
                Verdict::Pass,
            ),
            (
                "recent restore",
                Some(vec![test(Restore, 30, Passed)]),
                vec![],
                Verdict::Pass,
            ),
            (
                "old boot test",
                Some(vec![test(Boot, 200, Passed)]),
                vec![],
                Verdict::Fail,
            ),
            (
                "integrity only",
                Some(vec![test(Integrity, 1, Passed)]),
                vec![],
                Verdict::Fail,
            ),
            (
                "newest failed after a pass",
                Some(vec![test(Boot, 10, Passed), test(Boot, 1, Failed)]),
                vec![],
                Verdict::Fail,
            ),
            (
                "document counts",
                Some(vec![]),
                vec![doc(20)],
                Verdict::Pass,
            ),
            (
                "document does not silence a failed test",
                Some(vec![test(Boot, 1, Failed)]),
                vec![doc(20)],
                Verdict::Fail,
            ),
            ("old document", None, vec![doc(400)], Verdict::Fail),
            ("tests not reported", None, vec![], Verdict::Inconclusive),
            (
                "unknown result",
                Some(vec![test(Boot, 1, Unknown("Maybe".into()))]),
                vec![],
                Verdict::Inconclusive,
            ),
            (
                "future test",
                Some(vec![test(Boot, -5, Passed)]),
                vec![],
                Verdict::Inconclusive,
            ),
        ];
        for (name, tests, manual, verdict) in cases {
            let out = judge_all(tests, manual);
            assert_eq!(out.verdict, verdict, "{name}: {out:?}");
            let expect: &[&str] = if verdict == Verdict::Fail {
                &["veeam:FS01"]
            } else {
                &[]
            };
            assert_eq!(ids(&out), expect, "{name}");
        }
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge_all(
            Some(vec![test(RestoreTestKind::Boot, 120, TestResult::Passed)]),
            vec![doc(100)],
        ));
    }
}
