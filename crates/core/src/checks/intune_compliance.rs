//! `intune_compliance`: every device managed by a compliance source is
//! compliant.
//!
//! **What it tests.** Each reconciled device that a compliance source
//! (Intune) manages, that is, that has a record carrying a compliance state,
//! is compliant, or in the grace period an admin configured. `noncompliant`
//! fails. `unknown`, `conflict`, `error` and `configManager` (compliance
//! judged elsewhere) are no evidence either way: the device is unproven,
//! listed apart with the state. Only what applies is judged: a server or any
//! device Intune does not manage is not a compliance failure here (a
//! Defender-only machine is not an Intune device); whether a device is
//! missing from the sources that should know it is judged once, by
//! `device_coverage`.
//!
//! **Why it matters.** Compliance policies encode the baseline (encryption,
//! screen lock, OS version, threat level) and Conditional Access can block
//! non-compliant devices; a non-compliant device is a known deviation.
//!
//! **Evidence.** Intune managed devices and their compliance state.
//!
//! **How to fix.** Open each listed device in Intune, read which setting
//! fails (per-setting status), and fix it; for unknown states, sync the device
//! or check its compliance policy assignment.

use super::{judge_devices, Check, CheckInput, Outcome, Reading, State};
use crate::facts::{Compliance, Device, FactKind};

pub(super) const CHECK: Check = Check {
    id: "intune_compliance",
    source: include_str!("intune_compliance.rs"),
    title: "Managed devices compliant with their compliance policies",
    thresholds: &[],
    remediation: "Fix the failing compliance settings on each listed device in Intune (per-setting status); sync devices in an unknown state.",
    needs: &[FactKind::Devices, FactKind::Compliance],
    per_subject: &[],
    run,
};

fn compliance(d: &Device) -> (Reading, Option<chrono::DateTime<chrono::Utc>>) {
    let reading = match d.compliance {
        Some(Compliance::Compliant | Compliance::InGracePeriod) => Reading::Good,
        Some(Compliance::Noncompliant) => Reading::Bad("noncompliant".to_owned()),
        Some(Compliance::Unknown) => Reading::Unknown("compliance state unknown".to_owned()),
        None => Reading::Silent,
    };
    (reading, d.last_seen)
}

fn run(input: &CheckInput<'_>) -> Outcome {
    judge_devices(
        input,
        FactKind::Compliance,
        &|_, records: &[&Device]| records.iter().any(|d| d.compliance.is_some()),
        &[State {
            what: "compliance",
            required: true,
            read: &compliance,
        }],
        "managed devices",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, device, ids, reconciled, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Device, Facts, Provenance};
    use crate::run::DatasetStatus;

    fn dev(source: &str, name: &str, compliance: Option<Compliance>) -> Device {
        Device {
            compliance,
            ..device(source, name, name)
        }
    }

    fn judge(devices: Vec<Device>) -> Outcome {
        let mut facts = complete(
            reconciled(Facts {
                devices,
                ..Facts::default()
            }),
            &[FactKind::Devices],
        );
        facts.provide(
            FactKind::Compliance,
            Provenance {
                source: "intune".into(),
                dataset: "managedDevices".into(),
                status: DatasetStatus::Complete,
                reason: None,
                evidence: vec![],
            },
        );
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        use Compliance::*;
        type Case = (&'static str, Vec<Device>, Verdict, &'static [&'static str]);
        let cases: Vec<Case> = vec![
            (
                "compliant",
                vec![dev("intune", "PC1", Some(Compliant))],
                Verdict::Pass,
                &[],
            ),
            (
                "grace period",
                vec![dev("intune", "PC1", Some(InGracePeriod))],
                Verdict::Pass,
                &[],
            ),
            (
                "noncompliant",
                vec![dev("intune", "PC1", Some(Noncompliant))],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "unknown is unproven",
                vec![dev("intune", "PC1", Some(Unknown))],
                Verdict::Inconclusive,
                &[],
            ),
            (
                "no compliance state: not managed here (a Defender-only record)",
                vec![dev("intune", "PC1", None)],
                Verdict::Pass,
                &[],
            ),
            (
                "unmanaged device not judged",
                vec![dev("ninja", "SRV1", None)],
                Verdict::Pass,
                &[],
            ),
        ];
        for (name, devices, verdict, failing) in cases {
            let out = judge(devices);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn findings_snapshot() {
        use Compliance::*;
        insta::assert_json_snapshot!(judge(vec![
            dev("intune", "PC1", Some(Compliant)),
            dev("intune", "PC2", Some(Noncompliant)),
            dev("intune", "PC3", Some(Unknown)),
            dev("ninja", "PC3", None),
            dev("ninja", "SRV1", None),
        ]));
    }
}
