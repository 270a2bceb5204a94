//! `patch_latency_critical`: no critical OS patch pending longer than
//! `critical_patch_days` (PCI DSS 6.3.3: one month; proposed HIPAA: 15 days).
//!
//! **What it tests.** Every pending OS patch rated critical by the RMM, per
//! device, against the time the RMM first reported it pending.
//!
//! **Why it matters.** Critical patches close flaws that are exploited in the
//! wild within days; an old pending critical patch is an open door the MSP's
//! patch policy was meant to close.
//!
//! **Evidence.** The RMM's device inventory and pending OS patches. A critical
//! patch with no detection time cannot be shown to be within policy, nor
//! overdue: its device is unproven, listed apart. So is a device whose RMM
//! says patches are pending without listing them with ages (Datto
//! `ApprovedPending`, `RebootRequired`, `InstallError`; the same statuses
//! through RMM specs) unless another complete source lists its pending
//! patches with ages, and a device whose only pending-patch list was partial
//! or failed. Patches failing to install are judged by
//! `patch_install_failures`.
//!
//! **How to fix.** Approve and install the listed patches (check the RMM's
//! patch policy and failed installs), then reboot the device if required.

use super::{Check, CheckInput, Outcome, Threshold};
use crate::facts::{FactKind, Severity};

pub(super) const CHECK: Check = Check {
    id: "patch_latency_critical",
    source: include_str!("patch_latency_critical.rs"),
    title: "No critical OS patch pending longer than the allowed days",
    remediation: "Approve and install the listed critical patches in the RMM and reboot where required; fix failing patch installs.",
    thresholds: &[Threshold::CriticalPatchDays],
    needs: &[FactKind::Devices, FactKind::PendingPatches],
    per_subject: &[FactKind::PendingPatches],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    super::overdue_patches(
        input,
        Severity::Critical,
        input.limits.critical_patch_days,
        "critical",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, days_ago, ids, run as run_with, run_on_patches};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Device, Facts, PendingPatch};

    fn patch(device: &str, severity: Severity, age: Option<i64>) -> PendingPatch {
        PendingPatch {
            device_id: format!("ninja:{device}"),
            name: format!("Update {device} {age:?}"),
            kb: None,
            severity,
            status: Some("MANUAL".into()),
            detected: age.map(days_ago),
        }
    }

    fn judge(patches: Vec<PendingPatch>, limit: u32) -> Outcome {
        let limits = Limits {
            critical_patch_days: limit,
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
        let cases: &[Case] = &[
            ("nothing pending", vec![], 30, Verdict::Pass, &[]),
            (
                "young critical",
                vec![patch("1", Severity::Critical, Some(10))],
                30,
                Verdict::Pass,
                &[],
            ),
            (
                "exactly at limit passes",
                vec![patch("1", Severity::Critical, Some(30))],
                30,
                Verdict::Pass,
                &[],
            ),
            (
                "old critical",
                vec![patch("1", Severity::Critical, Some(31))],
                30,
                Verdict::Fail,
                &["ninja:1"],
            ),
            (
                "old important ignored",
                vec![patch("1", Severity::Important, Some(300))],
                30,
                Verdict::Pass,
                &[],
            ),
            (
                "stricter limit",
                vec![patch("2", Severity::Critical, Some(20))],
                15,
                Verdict::Fail,
                &["ninja:2"],
            ),
            (
                "unknown age is unproven",
                vec![patch("2", Severity::Critical, None)],
                30,
                Verdict::Inconclusive,
                &[],
            ),
        ];
        for (name, patches, limit, verdict, failing) in cases {
            let out = judge(patches.clone(), *limit);
            assert_eq!(out.verdict, *verdict, "{name}");
            assert_eq!(ids(&out), *failing, "{name}");
        }
    }

    #[test]
    fn groups_patches_per_device() {
        let out = judge(
            vec![
                patch("1", Severity::Critical, Some(40)),
                patch("1", Severity::Critical, Some(90)),
            ],
            30,
        );
        assert_eq!(out.failing.len(), 1);
        assert!(
            out.failing[0].detail.starts_with("2 critical patch(es)"),
            "{}",
            out.failing[0].detail
        );
        assert!(out.failing[0].detail.contains("oldest 90 days"));
        assert_eq!(out.failing[0].name, "PC-1");
    }

    #[test]
    fn rmm_statuses_without_ages_are_unproven_unless_another_source_lists_ages() {
        use crate::facts::PatchReport;
        let rmm = |source: &str, id: &str, name: &str, status: &str| Device {
            id: format!("{source}:{id}"),
            name: name.into(),
            source: source.into(),
            serial: Some(format!("SN-{name}")),
            patch: Some(PatchReport {
                reporting: true,
                status: Some(status.into()),
                last_install: None,
                install_failing: Some(status == "InstallError"),
                pending_without_age: matches!(
                    status,
                    "ApprovedPending" | "RebootRequired" | "InstallError"
                ),
            }),
            ..Device::default()
        };
        let mut facts = complete(
            Facts {
                devices: vec![
                    rmm("datto", "a", "PC-A", "RebootRequired"),
                    rmm("datto", "b", "PC-B", "ApprovedPending"),
                    rmm("datto", "c", "PC-C", "FullyPatched"),
                    // Ages elsewhere: NinjaOne lists PC-D's pending patches.
                    rmm("datto", "d", "PC-D", "InstallError"),
                    rmm("ninja", "d", "PC-D", "NoPendingPatches"),
                ],
                ..Facts::default()
            },
            &[FactKind::Devices, FactKind::PendingPatches],
        );
        facts.coverage.insert(
            FactKind::PendingPatches,
            vec![crate::facts::Provenance {
                source: "ninja".into(),
                dataset: "os-patches".into(),
                status: crate::run::DatasetStatus::Complete,
                reason: None,
                evidence: vec![],
            }],
        );
        facts.inventory = crate::facts::reconcile(&facts.devices);
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Inconclusive, "{}", out.summary);
        let unproven: Vec<&str> = out.unproven.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(unproven, ["datto:a", "datto:b"]);
        assert!(out.unproven[0].detail.contains("RebootRequired"));
    }
}
