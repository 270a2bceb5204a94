//! `intune_compliance`: every device managed by a compliance source is
//! compliant.
//!
//! **What it tests.** Each reconciled device that has a record from a source
//! providing compliance state (Intune) is compliant, or in the grace period
//! an admin configured, per at least one such record. `Noncompliant` and
//! unknown states fail. Devices no compliance source manages are not judged
//! here; `edr_coverage`, `disk_encryption` and `devices_report_patch_state`
//! still judge them.
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

use super::{devices_by_id, inventory, inventory_subject, sources_of, Check, CheckInput, Outcome};
use crate::facts::{Compliance, FactKind};

pub(super) const CHECK: Check = Check {
    id: "intune_compliance",
    source: include_str!("intune_compliance.rs"),
    title: "Managed devices compliant with their compliance policies",
    thresholds: &[],
    remediation: "Fix the failing compliance settings on each listed device in Intune (per-setting status); sync devices in an unknown state.",
    needs: &[FactKind::Devices, FactKind::Compliance],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let managed_by = sources_of(input.facts, FactKind::Compliance);
    let by_id = devices_by_id(input.facts);
    let items = inventory(input.facts);
    let mut evaluated = 0;
    let mut failing = Vec::new();
    for item in items.iter() {
        let records: Vec<_> = item
            .members
            .iter()
            .filter_map(|m| by_id.get(m.as_str()))
            .filter(|d| managed_by.contains(d.source.as_str()))
            .collect();
        if records.is_empty() {
            continue;
        }
        evaluated += 1;
        if records.iter().any(|d| {
            matches!(
                d.compliance,
                Some(Compliance::Compliant | Compliance::InGracePeriod)
            )
        }) {
            continue;
        }
        let states: Vec<String> = records
            .iter()
            .map(|d| {
                let state = match d.compliance {
                    Some(Compliance::Noncompliant) => "noncompliant",
                    Some(Compliance::Unknown) => "unknown",
                    None => "not reported",
                    Some(Compliance::Compliant | Compliance::InGracePeriod) => "compliant",
                };
                format!("{state} per {}", d.source)
            })
            .collect();
        failing.push(inventory_subject(item, states.join("; ")));
    }
    Outcome::judge(evaluated, failing, "managed devices")
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
                "unknown",
                vec![dev("intune", "PC1", Some(Unknown))],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "not reported",
                vec![dev("intune", "PC1", None)],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
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
