//! `devices_report_patch_state`: every device reports its patch state to some
//! source.
//!
//! **What it tests.** Each reconciled device (the same machine as Intune, the
//! RMM and other sources see it) has at least one source record saying the
//! device reports patch state (an RMM patch scan, Windows Update for Business
//! reports...).
//!
//! **Why it matters.** The patch-latency checks can only judge devices that
//! report; a machine outside patch management is unpatched by default and
//! invisible to them. PCI DSS 6.3.3 and HIPAA 164.308(a)(1)(ii)(B) cover every
//! system, not just the managed ones.
//!
//! **Evidence.** The device inventory of every source and each record's patch
//! reporting flag.
//!
//! **How to fix.** Install the RMM agent or enrol the listed devices in a
//! patch policy (Windows Update rings, RMM patch policy); retire devices that
//! are gone.

use super::{Check, CheckInput, Outcome};
use crate::facts::FactKind;

pub(super) const CHECK: Check = Check {
    id: "devices_report_patch_state",
    source: include_str!("devices_report_patch_state.rs"),
    title: "Every device reports its patch state",
    thresholds: &[],
    remediation: "Install the RMM agent or enrol the listed devices in a patch policy; retire devices that no longer exist.",
    needs: &[FactKind::Devices, FactKind::PatchState],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    super::every_device(
        input,
        |d| d.patch.as_ref().map(|p| p.reporting),
        "patch state",
        "not reporting patch state to",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, device, ids, reconciled, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Device, Facts, PatchReport};

    fn with_patch(mut d: Device, reporting: Option<bool>) -> Device {
        d.patch = reporting.map(|reporting| PatchReport {
            reporting,
            status: None,
            last_install: None,
        });
        d
    }

    fn judge(devices: Vec<Device>) -> Outcome {
        let facts = complete(
            reconciled(Facts {
                devices,
                ..Facts::default()
            }),
            &[FactKind::Devices, FactKind::PatchState],
        );
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        type Case = (&'static str, Vec<Device>, Verdict, &'static [&'static str]);
        let cases: Vec<Case> = vec![
            (
                "reporting",
                vec![with_patch(device("ninja", "1", "PC1"), Some(true))],
                Verdict::Pass,
                &[],
            ),
            (
                "not reporting",
                vec![with_patch(device("ninja", "1", "PC1"), Some(false))],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "nothing said",
                vec![device("intune", "1", "PC1")],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "another source reports for the same machine",
                vec![
                    device("intune", "1", "PC1"),
                    with_patch(device("ninja", "9", "PC1"), Some(true)),
                ],
                Verdict::Pass,
                &[],
            ),
            ("no devices", vec![], Verdict::Pass, &[]),
        ];
        for (name, devices, verdict, failing) in cases {
            let out = judge(devices);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn unfinished_facts_are_reconciled() {
        let facts = complete(
            Facts {
                devices: vec![device("intune", "1", "PC1")],
                ..Facts::default()
            },
            &[FactKind::Devices, FactKind::PatchState],
        );
        assert_eq!(
            run_with(&CHECK, &facts, &Limits::DEFAULT).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(vec![
            with_patch(device("ninja", "1", "PC1"), Some(true)),
            with_patch(device("ninja", "2", "PC2"), Some(false)),
            device("intune", "3", "PC3"),
        ]));
    }
}
