//! `edr_onboarded`: every workstation and server is onboarded to the EDR the
//! organisation runs, and its sensor is active.
//!
//! **What it tests.** For each reconciled workstation, server or device of
//! unknown kind: some EDR source (Microsoft Defender for Endpoint's machine
//! list; an endpoint report's `edr` product; any source that reports EDR
//! sensors) shows it onboarded, and the sensor active (Defender
//! `healthStatus` `Active`; `Inactive`, `ImpairedCommunication`,
//! `NoSensorData` and `NoSensorDataImpairedCommunication` are problems;
//! `Unknown` says nothing). An Intune device of a platform Defender for
//! Endpoint supports that a complete machine list does not name is not
//! onboarded, whatever antivirus it runs: Defender Antivirus alone is not
//! EDR. As everywhere, a problem reported by any source fails the device
//! unless every report carries a time and the newest is healthy. A device no
//! EDR source reports on (say a server only the RMM knows, which Defender
//! lists under no matching name) is unproven, listed apart with the reason.
//! Phones and tablets are out of scope unless `mobile_endpoint_protection` is
//! on; network gear and other agentless devices are out of scope.
//!
//! **Why it matters.** Anti-malware stops known files; EDR records what
//! happens on the machine and lets the MSP see and contain an intrusion.
//! HIPAA 164.308(a)(5)(ii)(B) and 164.308(a)(6)(ii) expect protection from
//! malicious software and incidents identified, PCI DSS 5.2.2, 10.7.2 and
//! 11.5 detection of malicious activity and of failing security controls,
//! SOC 2 CC7.2 anomalies monitored. An MSP that sells EDR must show every
//! machine is in it.
//!
//! **Evidence.** Defender for Endpoint machines (`onboardingStatus`,
//! `healthStatus`, `lastSeen`) joined to Intune devices, and EDR products in
//! endpoint reports, reconciled per machine.
//!
//! **How to fix.** Onboard the listed devices to Defender for Endpoint (Intune
//! EDR policy, the onboarding package, or Defender for Servers), or install
//! the EDR agent the organisation runs; for inactive sensors, check the
//! Sense service, proxy access to the Defender endpoints, and whether the
//! machine is still in use.

use super::{endpoint_protection_scope, judge_devices, Check, CheckInput, Outcome, Reading, State};
use crate::facts::{Device, FactKind};

pub(super) const CHECK: Check = Check {
    id: "edr_onboarded",
    source: include_str!("edr_onboarded.rs"),
    title: "Every workstation and server onboarded and active in EDR",
    thresholds: &[super::Threshold::MobileEndpointProtection],
    remediation: "Onboard the listed devices to Defender for Endpoint (or the EDR the organisation runs); repair inactive sensors (Sense service, proxy access) or retire the machine.",
    needs: &[FactKind::Devices, FactKind::Edr],
    per_subject: &[FactKind::Edr],
    run,
};

fn onboarded(d: &Device) -> (Reading, Option<chrono::DateTime<chrono::Utc>>) {
    let Some(a) = &d.antimalware else {
        return (Reading::Silent, None);
    };
    let reading = match a.edr_onboarded {
        Some(true) => Reading::Good,
        Some(false) => Reading::Bad("not onboarded to EDR".to_owned()),
        None => Reading::Silent,
    };
    (reading, a.reported.or(d.last_seen))
}

fn active(d: &Device) -> (Reading, Option<chrono::DateTime<chrono::Utc>>) {
    let Some(a) = d
        .antimalware
        .as_ref()
        .filter(|a| a.edr_onboarded == Some(true))
    else {
        return (Reading::Silent, None);
    };
    let reading = match a.edr_active {
        Some(true) => Reading::Good,
        Some(false) => Reading::Bad(format!(
            "sensor {}",
            a.edr_health.as_deref().unwrap_or("not active")
        )),
        None => match &a.edr_health {
            Some(h) => Reading::Unknown(format!("sensor health {h}")),
            None => Reading::Silent,
        },
    };
    (reading, a.reported.or(d.last_seen))
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let mobile = input.limits.mobile_endpoint_protection;
    judge_devices(
        input,
        FactKind::Edr,
        &|_, records: &[&Device]| endpoint_protection_scope(mobile, records),
        &[
            State {
                what: "EDR onboarding",
                required: true,
                read: &onboarded,
            },
            State {
                what: "EDR sensor active",
                required: true,
                read: &active,
            },
        ],
        "workstations and servers",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{days_ago, device, ids, run_on_devices};
    use crate::checks::{Limits, Verdict};
    use crate::facts::Antimalware;

    fn edr(name: &str, source: &str, os: &str, onboarded: Option<bool>, health: &str) -> Device {
        Device {
            os: Some(os.into()),
            antimalware: Some(Antimalware {
                product: Some("Microsoft Defender Antivirus".into()),
                running: Some(true),
                edr_onboarded: onboarded,
                edr_health: Some(health.into()),
                edr_active: match health {
                    "Active" => Some(true),
                    "Inactive" => Some(false),
                    _ => None,
                },
                reported: Some(days_ago(1)),
                ..Antimalware::default()
            }),
            ..device(source, name, name)
        }
    }

    fn judge(devices: Vec<Device>, limits: &Limits) -> Outcome {
        run_on_devices(&CHECK, devices, limits)
    }

    #[test]
    fn table() {
        let out = judge(
            vec![
                edr("PC1", "m365", "Windows", Some(true), "Active"),
                edr("PC2", "m365", "Windows", Some(false), ""),
                edr("PC3", "m365", "Windows", Some(true), "Inactive"),
                edr("PC4", "m365", "Windows", Some(true), "Unknown"),
                edr("IPHONE", "m365", "iOS", Some(false), ""),
                Device {
                    os: Some("WINDOWS_SERVER".into()),
                    ..device("ninja", "9", "SRV")
                },
            ],
            &Limits::DEFAULT,
        );
        assert_eq!(out.verdict, Verdict::Fail);
        assert_eq!(ids(&out), ["device:serial:SN-PC2", "device:serial:SN-PC3"]);
        let unproven: Vec<&str> = out.unproven.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(unproven, ["device:serial:SN-PC4", "device:serial:SN-SRV"]);
        assert_eq!(out.evaluated, 5, "the phone is out of scope");
        // Opting in brings phones into scope.
        let out = judge(
            vec![edr("IPHONE", "m365", "iOS", Some(false), "")],
            &Limits {
                mobile_endpoint_protection: true,
                ..Limits::DEFAULT
            },
        );
        assert_eq!(ids(&out), ["device:serial:SN-IPHONE"]);
    }
}
