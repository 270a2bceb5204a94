//! `device_coverage`: every device is known to the sources that should
//! manage it.
//!
//! **What it tests.** Each reconciled device, by what it is: a workstation,
//! server or device of unknown kind must be known to at least one
//! patch-management source (a source whose records report patch state: an
//! RMM, endpoint reports), when any is configured; a workstation, phone or
//! tablet must be enrolled in at least one device-management source (a record
//! carrying a compliance state: Intune), when any is configured. Servers are
//! not expected in Intune, phones not in the RMM, network gear in neither.
//! EDR onboarding is judged by `edr_onboarded`. Each missing source family is
//! named in the finding. This is the one place a device's absence from a
//! source is judged; the compliance and patch checks judge only the devices
//! their sources know.
//!
//! **Why it matters.** A machine the RMM does not know gets no patches; one
//! Intune does not know escapes compliance policies and the Conditional
//! Access rules built on them. PCI DSS 12.5.1 wants an inventory of system
//! components kept current, HIPAA 164.310(d)(1) and SOC 2 CC6.1 an accounted
//! inventory of devices: gaps between the management tools are where
//! unmanaged machines hide.
//!
//! **Evidence.** The device inventory of every source, reconciled per machine
//! (serial, Entra device id, host name), with each record's operating system.
//!
//! **How to fix.** Install the RMM agent on the listed devices, or enrol them
//! in Intune (Autopilot, Company Portal, MDM enrolment); retire records of
//! machines that are gone.

use super::{inventory_subject, Check, CheckInput, Outcome};
use crate::facts::{DeviceClass, FactKind};

pub(super) const CHECK: Check = Check {
    id: "device_coverage",
    source: include_str!("device_coverage.rs"),
    title: "Every device known to the sources that should manage it",
    thresholds: &[],
    remediation: "Install the RMM agent on the listed devices or enrol them in Intune, as named; retire records of machines that are gone.",
    needs: &[FactKind::Devices],
    per_subject: &[],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let index = input.device_index();
    let patch_sources: Vec<&str> = {
        let mut v: Vec<&str> = input
            .facts
            .devices
            .iter()
            .filter(|d| d.patch.is_some())
            .map(|d| d.source.as_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let managers: Vec<&str> = {
        let mut v: Vec<&str> = input
            .facts
            .devices
            .iter()
            .filter(|d| d.compliance.is_some())
            .map(|d| d.source.as_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut evaluated = 0;
    let mut failing = Vec::new();
    for (item, records) in index.items() {
        let class = DeviceClass::of_records(records.iter().copied());
        if class == DeviceClass::Other {
            continue;
        }
        evaluated += 1;
        let mut missing = Vec::new();
        let wants_patching = matches!(
            class,
            DeviceClass::Workstation | DeviceClass::Server | DeviceClass::Unknown
        );
        if wants_patching && !patch_sources.is_empty() && !records.iter().any(|d| d.patch.is_some())
        {
            missing.push(format!(
                "{} not known to any patch-management source ({})",
                class.describe(),
                patch_sources.join(", ")
            ));
        }
        let wants_management = matches!(class, DeviceClass::Workstation | DeviceClass::Mobile);
        if wants_management
            && !managers.is_empty()
            && !records.iter().any(|d| d.compliance.is_some())
        {
            missing.push(format!(
                "{} not enrolled in device management ({})",
                class.describe(),
                managers.join(", ")
            ));
        }
        if !missing.is_empty() {
            missing.push(format!("known to {}", item.sources.join(", ")));
            failing.push(inventory_subject(item, missing.join("; ")));
        }
    }
    Outcome::judge(evaluated, failing, "devices")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, device, ids, reconciled, run as run_with};
    use crate::checks::Limits;
    use crate::facts::{Compliance, Device, Facts, PatchReport};

    fn with(os: &str, d: Device, patch: bool, compliance: bool) -> Device {
        Device {
            os: Some(os.into()),
            patch: patch.then_some(PatchReport {
                reporting: true,
                status: None,
                last_install: None,
                install_failing: None,
                pending_without_age: false,
            }),
            compliance: compliance.then_some(Compliance::Compliant),
            ..d
        }
    }

    #[test]
    fn each_class_is_expected_where_it_belongs() {
        let facts = complete(
            reconciled(Facts {
                devices: vec![
                    with("Windows", device("m365", "1", "PC1"), false, true),
                    with(
                        "WINDOWS_WORKSTATION",
                        device("ninja", "1", "PC1"),
                        true,
                        false,
                    ),
                    with("Windows", device("m365", "2", "PC2"), false, true),
                    with("WINDOWS_SERVER", device("ninja", "3", "SRV"), true, false),
                    with("iOS", device("m365", "4", "PHONE"), false, true),
                    with(
                        "WINDOWS_WORKSTATION",
                        device("ninja", "5", "KIOSK"),
                        true,
                        false,
                    ),
                    with("NMS_SWITCH", device("ninja", "6", "SW1"), false, false),
                ],
                ..Facts::default()
            }),
            &[FactKind::Devices],
        );
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(
            ids(&out),
            ["device:serial:SN-KIOSK", "device:serial:SN-PC2"]
        );
        assert_eq!(out.evaluated, 5);
        assert!(out.failing[1].detail.contains("patch-management"));
        assert!(out.failing[0].detail.contains("device management"));
    }
}
