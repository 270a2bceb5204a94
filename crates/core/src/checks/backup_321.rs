//! `backup_321`: every protected system has a recent offsite copy and a recent
//! immutable or offline copy.
//!
//! **What it tests.** The 3-2-1 rule as evidence can show it: for every
//! protected system, at least one copy of its backups is offsite (another
//! site or a cloud) and at least one copy is immutable or offline
//! (air-gapped), and each of those copies holds a restore point no older than
//! `backup_max_age_hours` (one copy may be both, e.g. an object-locked cloud
//! copy). A system whose product reports copies without either kind fails;
//! so does one whose offsite or immutable copy is too old. Unproven, listed
//! apart: a system whose product does not report where its copies are or
//! whether they are immutable, a copy time in the future, and every backup
//! source that was partial, failed or listed no protected system.
//!
//! **Why it matters.** Ransomware deletes or encrypts the backups it can
//! reach first; a fire or flood takes the on-site copy with the server.
//! HIPAA 164.308(a)(7)(ii)(A) and (B) ask for copies that survive the
//! disaster the plan recovers from; SOC 2 A1.2 for backup storage that
//! supports recovery; PCI DSS 9.4.1.1 for offline media backups in a secure
//! location.
//!
//! **Evidence.** Per protected system, the copies its backup source reports:
//! Veeam primary and backup copy job repositories with their immutability
//! settings, Datto BCDR local and offsite (Datto cloud) snapshots, Cove's
//! cloud storage and local speed vault.
//!
//! **How to fix.** Add a backup copy job to an offsite or cloud repository
//! with immutability (object lock, hardened repository) for the listed
//! systems, or rotate offline media; fix copy jobs that have fallen behind.

use super::backups::{day, hours_between, in_future, judge_systems};
use super::{Check, CheckInput, Outcome, Threshold};
use crate::facts::{BackupCopy, FactKind, ProtectedSystem};

pub(super) const CHECK: Check = Check {
    id: "backup_321",
    source: include_str!("backup_321.rs"),
    title: "Backups have a recent offsite copy and a recent immutable or offline copy (3-2-1)",
    thresholds: &[Threshold::BackupMaxAgeHours],
    remediation: "Add an offsite or cloud copy with immutability (object lock, hardened repository) or offline media for the listed systems; fix lagging copy jobs.",
    needs: &[FactKind::Backups],
    per_subject: &[FactKind::Backups],
    run,
};

/// The judgement of one requirement over the copies that meet it: `Ok(None)`
/// met, `Ok(Some)` a failure, `Err` unproven.
fn requirement(
    what: &str,
    copies: &[BackupCopy],
    meets: impl Fn(&BackupCopy) -> Option<bool>,
    input: &CheckInput<'_>,
) -> Result<Option<String>, String> {
    let limit = i64::from(input.limits.backup_max_age_hours);
    let candidates: Vec<&BackupCopy> = copies.iter().filter(|c| meets(c) == Some(true)).collect();
    if candidates.is_empty() {
        return if copies.iter().any(|c| meets(c).is_none()) {
            Err(format!(
                "the product does not say whether any copy is {what}"
            ))
        } else {
            Ok(Some(format!("no {what} copy")))
        };
    }
    let times: Vec<_> = candidates.iter().filter_map(|c| c.latest).collect();
    if let Some(t) = times.iter().copied().find(|t| in_future(*t, input.as_of)) {
        return Err(format!("a {what} copy is dated in the future ({})", day(t)));
    }
    match times.iter().max() {
        None => Err(format!("the product does not date its {what} copy")),
        Some(&t) if hours_between(t, input.as_of) > limit => Ok(Some(format!(
            "newest {what} copy {} is {} h old (limit {limit} h)",
            day(t),
            hours_between(t, input.as_of)
        ))),
        Some(_) => Ok(None),
    }
}

fn judge(b: &ProtectedSystem, input: &CheckInput<'_>) -> Result<Option<String>, String> {
    let Some(copies) = &b.copies else {
        return Err(format!(
            "{} does not report where its copies are kept",
            b.product
        ));
    };
    let offsite = requirement(
        "offsite",
        copies,
        |c| match c.location {
            crate::facts::CopyLocation::Unknown(_) => None,
            ref l => Some(l.is_offsite()),
        },
        input,
    );
    let immutable = requirement(
        "immutable or offline",
        copies,
        |c| match (c.immutable, c.offline) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) | (Some(false), None) | (None, Some(false)) => Some(false),
            (None, None) => None,
        },
        input,
    );
    let mut fails = Vec::new();
    let mut unknown = Vec::new();
    for r in [offsite, immutable] {
        match r {
            Ok(Some(why)) => fails.push(why),
            Ok(None) => {}
            Err(why) => unknown.push(why),
        }
    }
    if !fails.is_empty() {
        fails.extend(unknown);
        Ok(Some(fails.join("; ")))
    } else if !unknown.is_empty() {
        Err(unknown.join("; "))
    } else {
        Ok(None)
    }
}

fn run(input: &CheckInput<'_>) -> Outcome {
    judge_systems(input, |b| judge(b, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::backups::fixtures::{run_on_systems, system};
    use crate::checks::fixtures::{as_of, days_ago, ids};
    use crate::checks::Verdict;
    use crate::facts::{BackupResult, CopyLocation};

    fn copy(location: CopyLocation, days: i64, immutable: Option<bool>) -> BackupCopy {
        BackupCopy {
            location,
            target: None,
            latest: Some(days_ago(days)),
            immutable,
            offline: None,
        }
    }

    fn with(copies: Option<Vec<BackupCopy>>) -> ProtectedSystem {
        let mut b = system("FS01", Some(1), BackupResult::Success);
        b.copies = copies;
        b
    }

    #[test]
    fn table() {
        use CopyLocation::*;
        let local = || copy(Local, 1, Some(false));
        let future = BackupCopy {
            latest: Some(as_of() + chrono::Duration::days(2)),
            ..copy(Cloud, 0, Some(true))
        };
        type Case = (&'static str, Option<Vec<BackupCopy>>, Verdict);
        let cases: Vec<Case> = vec![
            (
                "immutable cloud copy",
                Some(vec![local(), copy(Cloud, 1, Some(true))]),
                Verdict::Pass,
            ),
            (
                "offsite plus offline tape",
                Some(vec![
                    copy(Offsite, 1, Some(false)),
                    BackupCopy {
                        offline: Some(true),
                        ..copy(Local, 2, Some(false))
                    },
                ]),
                Verdict::Pass,
            ),
            ("local only", Some(vec![local()]), Verdict::Fail),
            (
                "offsite but mutable",
                Some(vec![local(), copy(Offsite, 1, Some(false))]),
                Verdict::Fail,
            ),
            (
                "immutable copy too old",
                Some(vec![local(), copy(Cloud, 9, Some(true))]),
                Verdict::Fail,
            ),
            ("no copies reported at all", Some(vec![]), Verdict::Fail),
            ("copies not reported", None, Verdict::Inconclusive),
            (
                "immutability not said",
                Some(vec![local(), copy(Cloud, 1, None)]),
                Verdict::Inconclusive,
            ),
            (
                "unknown location",
                Some(vec![copy(Unknown("Tape?".into()), 1, Some(true))]),
                Verdict::Inconclusive,
            ),
            (
                "future copy time",
                Some(vec![local(), future]),
                Verdict::Inconclusive,
            ),
        ];
        for (name, copies, verdict) in cases {
            let out = run_on_systems(&CHECK, vec![with(copies)]);
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
        let mut ok = with(Some(vec![copy(CopyLocation::Cloud, 1, Some(true))]));
        ok.id = "veeam:OK".into();
        ok.name = "OK".into();
        insta::assert_json_snapshot!(run_on_systems(
            &CHECK,
            vec![
                ok,
                with(Some(vec![
                    copy(CopyLocation::Local, 1, Some(true)),
                    copy(CopyLocation::Offsite, 1, Some(false))
                ])),
            ]
        ));
    }
}
