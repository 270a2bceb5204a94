//! `devices_report_patch_state`: every device in patch management reports
//! its patch state.
//!
//! **What it tests.** Each reconciled device that a patch-management source
//! (an RMM, endpoint reports) knows has a record saying it reports patch
//! state (an RMM patch scan with a policy, an endpoint report whose update
//! check ran). A source saying it does not (Datto `NoPolicy` or `NoData`, a
//! NinjaOne device with no patch scan results, an endpoint report whose check
//! did not run) fails the device, naming the source, unless another source
//! shows it reporting with a newer report time where every report carries
//! one. Devices no patch-management source knows are not judged here: that
//! is a coverage finding, judged once by `device_coverage`. Printers and
//! network gear (a device class that runs no endpoint agent, such as Datto
//! RMM's `printer` and `rmmnetworkdevice` devices) get no OS patches and are
//! not judged either.
//!
//! **Why it matters.** The patch-latency checks can only judge devices that
//! report; a machine outside patch management is unpatched by default and
//! invisible to them. PCI DSS 6.3.3 and HIPAA 164.308(a)(1)(ii)(B) cover every
//! system, not just the managed ones.
//!
//! **Evidence.** The device inventory of every source and each record's patch
//! reporting flag, with the record's last contact as its report time.
//!
//! **How to fix.** Assign the listed devices a patch policy in the RMM (or
//! fix the agent's patch scan); retire devices that are gone.

use super::{judge_devices, Check, CheckInput, Outcome, Reading, State};
use crate::facts::{Device, DeviceClass, FactKind};

pub(super) const CHECK: Check = Check {
    id: "devices_report_patch_state",
    source: include_str!("devices_report_patch_state.rs"),
    title: "Every device reports its patch state",
    thresholds: &[],
    remediation: "Install the RMM agent or enrol the listed devices in a patch policy; retire devices that no longer exist.",
    needs: &[FactKind::Devices, FactKind::PatchState],
    per_subject: &[FactKind::PatchState],
    run,
};

fn reporting(d: &Device) -> (Reading, Option<chrono::DateTime<chrono::Utc>>) {
    let reading = match &d.patch {
        Some(p) if p.reporting => Reading::Good,
        Some(p) => Reading::Bad(match &p.status {
            Some(status) => format!("not reporting patch state ({status})"),
            None => "not reporting patch state".to_owned(),
        }),
        None => Reading::Silent,
    };
    (reading, d.last_seen)
}

fn run(input: &CheckInput<'_>) -> Outcome {
    judge_devices(
        input,
        FactKind::PatchState,
        // Printers and network gear run no agent and get no OS patches: a
        // patch-management source listing them (Datto RMM `deviceClass`
        // `printer` / `rmmnetworkdevice`, NinjaOne NMS nodes) says nothing
        // about patching.
        &|_, records: &[&Device]| {
            records.iter().any(|d| d.patch.is_some())
                && DeviceClass::of_records(records.iter().copied()) != DeviceClass::Other
        },
        &[State {
            what: "patch reporting",
            required: true,
            read: &reporting,
        }],
        "devices in patch management",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, device, ids, run as run_with, run_on_devices};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Device, Facts, PatchReport};

    fn with_patch(mut d: Device, reporting: Option<bool>) -> Device {
        d.patch = reporting.map(|reporting| PatchReport {
            reporting,
            status: None,
            last_install: None,
            install_failing: None,
            pending_without_age: false,
        });
        d
    }

    fn judge(devices: Vec<Device>) -> Outcome {
        run_on_devices(&CHECK, devices, &Limits::DEFAULT)
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
                "unknown to every patch source: left to device_coverage",
                vec![device("intune", "1", "PC1")],
                Verdict::Pass,
                &[],
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
                devices: vec![with_patch(device("ninja", "1", "PC1"), Some(false))],
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
