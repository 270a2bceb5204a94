//! `disk_encryption`: every device's system disk is encrypted.
//!
//! **What it tests.** Each reconciled device (phones and tablets included;
//! network gear and other agentless devices excepted) has a source record
//! saying its disk is encrypted (BitLocker, FileVault, LUKS...). A source
//! saying it is not encrypted fails the device, naming the source, even when
//! another source says it is, unless every report carries a time and the
//! newest says encrypted. A device no source reports on is unproven, listed
//! apart with the partial or failed sources that might have reported it:
//! missing evidence is never a pass.
//!
//! **Why it matters.** A lost or stolen laptop with an unencrypted disk is a
//! reportable breach under HIPAA (encryption is the safe harbour,
//! 164.312(a)(2)(iv)); SOC 2 CC6.7 expects data on endpoints protected.
//!
//! **Evidence.** Each source's encryption state per device (Intune
//! `isEncrypted`, RMM BitLocker status, endpoint reports), with the record's
//! last contact as its report time.
//!
//! **How to fix.** Enable BitLocker (with the recovery key escrowed to Entra
//! ID) or FileVault on the listed devices, through an Intune disk encryption
//! policy or the RMM; replace hardware that cannot encrypt. For devices that
//! cannot be seen, enrol them or make the RMM report BitLocker state.

use super::{judge_devices, Check, CheckInput, Outcome, Reading, State};
use crate::facts::{Device, DeviceClass, FactKind};

pub(super) const CHECK: Check = Check {
    id: "disk_encryption",
    source: include_str!("disk_encryption.rs"),
    title: "Disk encryption on every device",
    thresholds: &[],
    remediation: "Enable BitLocker (recovery key escrowed) or FileVault on the listed devices through an encryption policy.",
    needs: &[FactKind::Devices, FactKind::Encryption],
    per_subject: &[FactKind::Encryption],
    run,
};

fn encrypted(d: &Device) -> (Reading, Option<chrono::DateTime<chrono::Utc>>) {
    let reading = match d.encrypted {
        Some(true) => Reading::Good,
        Some(false) => Reading::Bad("not encrypted".to_owned()),
        None => Reading::Silent,
    };
    (reading, d.last_seen)
}

fn run(input: &CheckInput<'_>) -> Outcome {
    judge_devices(
        input,
        FactKind::Encryption,
        &|_, records: &[&Device]| {
            DeviceClass::of_records(records.iter().copied()) != DeviceClass::Other
        },
        &[State {
            what: "encryption state",
            required: true,
            read: &encrypted,
        }],
        "devices",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{device, ids, run_on_devices};
    use crate::checks::{Limits, Verdict};
    use crate::facts::Device;

    fn enc(source: &str, name: &str, encrypted: Option<bool>) -> Device {
        Device {
            encrypted,
            ..device(source, name, name)
        }
    }

    fn judge(devices: Vec<Device>) -> Outcome {
        run_on_devices(&CHECK, devices, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        type Case = (&'static str, Vec<Device>, Verdict, &'static [&'static str]);
        let cases: Vec<Case> = vec![
            (
                "encrypted",
                vec![enc("intune", "PC1", Some(true))],
                Verdict::Pass,
                &[],
            ),
            (
                "not encrypted",
                vec![enc("intune", "PC1", Some(false))],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "unreported is unproven, not failing",
                vec![enc("ninja", "PC1", None)],
                Verdict::Inconclusive,
                &[],
            ),
            (
                "another source confirms",
                vec![enc("ninja", "PC1", None), enc("intune", "PC1", Some(true))],
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
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(vec![
            enc("intune", "PC1", Some(true)),
            enc("intune", "PC2", Some(false)),
            enc("ninja", "PC3", None),
        ]));
    }
}
