//! `patch_latency_high`: no high-severity (important) OS patch pending longer
//! than `high_patch_days` (default 90; proposed HIPAA: 30).
//!
//! **What it tests.** Every pending OS patch rated important/high by the
//! source, per device, against the time the source first reported it pending.
//! Critical patches are judged by `patch_latency_critical` with its own limit.
//!
//! **Why it matters.** PCI DSS 6.3.3 lets non-critical patches wait only for a
//! risk-based period; high-severity flaws are the next wave of exploits after
//! the critical ones, and a patch pipeline that stalls shows here first.
//!
//! **Evidence.** The device inventory and pending OS patches. A high patch with
//! no detection time cannot be shown to be within policy, nor overdue: its
//! device is unproven, listed apart. So is a device whose RMM says patches
//! are pending without listing them with ages (Datto `ApprovedPending`,
//! `RebootRequired`, `InstallError`; the same statuses through RMM specs)
//! unless another complete source lists its pending patches with ages, and a
//! device whose only pending-patch list was partial or failed.
//!
//! **How to fix.** Approve and install the listed patches (check the patch
//! policy's approval rules and failed installs), then reboot where required.

use super::{Check, CheckInput, Outcome, Threshold};
use crate::facts::{FactKind, Severity};

pub(super) const CHECK: Check = Check {
    id: "patch_latency_high",
    source: include_str!("patch_latency_high.rs"),
    title: "No high-severity OS patch pending longer than the allowed days",
    remediation: "Approve and install the listed high-severity patches in the RMM and reboot where required; fix failing patch installs.",
    thresholds: &[Threshold::HighPatchDays],
    needs: &[FactKind::Devices, FactKind::PendingPatches],
    per_subject: &[FactKind::PendingPatches],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    super::overdue_patches(
        input,
        Severity::Important,
        input.limits.high_patch_days,
        "high-severity",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{days_ago, ids, run_on_patches};
    use crate::checks::{Limits, Verdict};
    use crate::facts::PendingPatch;

    fn patch(device: &str, severity: Severity, age: Option<i64>) -> PendingPatch {
        PendingPatch {
            device_id: format!("ninja:{device}"),
            name: format!("Update {device} {age:?}"),
            kb: Some(format!("KB{}", age.unwrap_or(0))),
            severity,
            status: Some("APPROVED".into()),
            detected: age.map(days_ago),
        }
    }

    fn judge(patches: Vec<PendingPatch>, limit: u32) -> Outcome {
        let limits = Limits {
            high_patch_days: limit,
            ..Limits::DEFAULT
        };
        run_on_patches(&CHECK, patches, &limits)
    }

    #[test]
    fn table() {
        type Case = (
            &'static str,
            Vec<PendingPatch>,
            u32,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            ("nothing pending", vec![], 90, Verdict::Pass, &[]),
            (
                "young important",
                vec![patch("1", Severity::Important, Some(30))],
                90,
                Verdict::Pass,
                &[],
            ),
            (
                "at the limit",
                vec![patch("1", Severity::Important, Some(90))],
                90,
                Verdict::Pass,
                &[],
            ),
            (
                "old important",
                vec![patch("1", Severity::Important, Some(91))],
                90,
                Verdict::Fail,
                &["ninja:1"],
            ),
            (
                "critical left to the critical check",
                vec![patch("1", Severity::Critical, Some(300))],
                90,
                Verdict::Pass,
                &[],
            ),
            (
                "moderate ignored",
                vec![patch("1", Severity::Moderate, Some(300))],
                90,
                Verdict::Pass,
                &[],
            ),
            (
                "proposed HIPAA limit",
                vec![patch("2", Severity::Important, Some(40))],
                30,
                Verdict::Fail,
                &["ninja:2"],
            ),
            (
                "unknown age is unproven",
                vec![patch("2", Severity::Important, None)],
                90,
                Verdict::Inconclusive,
                &[],
            ),
        ];
        for (name, patches, limit, verdict, failing) in cases {
            let out = judge(patches, limit);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(
            vec![
                patch("1", Severity::Important, Some(120)),
                patch("1", Severity::Important, Some(95)),
                patch("2", Severity::Important, None),
                patch("2", Severity::Important, Some(10)),
            ],
            90
        ));
    }
}
