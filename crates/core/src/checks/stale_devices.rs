//! `stale_devices`: no device record has gone without contact for more than
//! `stale_device_days`, and every record has a last-contact time.
//!
//! **What it tests.** Each device record of each source (Intune last sync, RMM
//! last contact, Defender last seen) is younger than the limit; phones and
//! tablets included. A record without a last-contact time (Graph's
//! `0001-01-01T00:00:00Z` "never" included) is unproven, listed apart: the
//! source shows neither that the device is alive nor that it is stale.
//!
//! **Why it matters.** A device that stopped checking in keeps its last
//! "healthy" state in every report while receiving no patches, policies or
//! signatures; stale records also hide lost or stolen devices. Judged per
//! source, because a device can be alive in the RMM and dead in Intune.
//!
//! **Evidence.** The device inventory of every source with last-contact times.
//!
//! **How to fix.** Find each listed device: bring it back online and let the
//! agent sync, or retire and delete the record (and wipe it if lost); set up
//! the source's automatic clean-up rule for devices not seen in N days.

use super::{days_between, Check, CheckInput, Outcome, Subject, Threshold};
use crate::facts::FactKind;

pub(super) const CHECK: Check = Check {
    id: "stale_devices",
    source: include_str!("stale_devices.rs"),
    title: "No device stale beyond the allowed days",
    thresholds: &[Threshold::StaleDeviceDays],
    remediation: "Bring each listed device back online so it syncs, or retire and delete its record (wipe it if lost).",
    needs: &[FactKind::Devices],
    per_subject: &[],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let limit = i64::from(input.limits.stale_device_days);
    let mut failing = Vec::new();
    let mut unproven = Vec::new();
    for device in &input.facts.devices {
        let subject = |detail: String| Subject {
            id: device.id.clone(),
            name: device.name.clone(),
            detail,
        };
        match device.last_seen {
            Some(seen) => {
                let days = days_between(seen, input.as_of);
                if days <= limit {
                    continue;
                }
                failing.push(subject(format!(
                    "last contact with {} {days} days ago (limit {limit})",
                    device.source
                )));
            }
            None => unproven.push(subject(format!(
                "{} reports no last-contact time",
                device.source
            ))),
        }
    }
    Outcome::judge_all(
        input.facts.devices.len(),
        failing,
        unproven,
        "device records",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, days_ago, device, ids, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Device, Facts};

    fn seen(source: &str, name: &str, days: Option<i64>) -> Device {
        Device {
            last_seen: days.map(days_ago),
            ..device(source, name, name)
        }
    }

    fn judge(devices: Vec<Device>, limit: u32) -> Outcome {
        let facts = complete(
            Facts {
                devices,
                ..Facts::default()
            },
            &[FactKind::Devices],
        );
        let limits = Limits {
            stale_device_days: limit,
            ..Limits::DEFAULT
        };
        run_with(&CHECK, &facts, &limits)
    }

    #[test]
    fn table() {
        type Case = (
            &'static str,
            Vec<Device>,
            u32,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "fresh",
                vec![seen("intune", "PC1", Some(2))],
                30,
                Verdict::Pass,
                &[],
            ),
            (
                "at the limit",
                vec![seen("intune", "PC1", Some(30))],
                30,
                Verdict::Pass,
                &[],
            ),
            (
                "stale",
                vec![seen("intune", "PC1", Some(31))],
                30,
                Verdict::Fail,
                &["intune:PC1"],
            ),
            (
                "no last-sync time: unproven",
                vec![seen("ninja", "PC1", None)],
                30,
                Verdict::Inconclusive,
                &[],
            ),
            (
                "stale in one source only",
                vec![
                    seen("intune", "PC1", Some(60)),
                    seen("ninja", "PC1", Some(1)),
                ],
                30,
                Verdict::Fail,
                &["intune:PC1"],
            ),
            (
                "looser limit",
                vec![seen("intune", "PC1", Some(60))],
                90,
                Verdict::Pass,
                &[],
            ),
            ("no devices", vec![], 30, Verdict::Pass, &[]),
        ];
        for (name, devices, limit, verdict, failing) in cases {
            let out = judge(devices, limit);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(
            vec![
                seen("intune", "PC1", Some(1)),
                seen("intune", "PC2", Some(45)),
                seen("ninja", "PC3", None)
            ],
            30
        ));
    }
}
