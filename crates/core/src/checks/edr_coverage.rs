//! `edr_coverage`: every device has anti-malware / EDR present.
//!
//! **What it tests.** Each reconciled workstation, server or device of
//! unknown kind has a source record showing an anti-malware or EDR product:
//! a named product, protection running, or an onboarded EDR sensor. A source
//! that looked and found none (Datto `NotDetected`, an endpoint report listing
//! no product, a product reported stopped with no name) reports a problem,
//! and like every problem it is not cancelled by another source's good news
//! unless every report carries a time and the newest one shows a product. A
//! device no source reports on is unproven (listed apart, with the partial or
//! failed sources that might have reported it), never a pass. Phones and
//! tablets are out of scope unless `mobile_endpoint_protection` is on; network
//! gear and other agentless devices are out of scope. Whether the product is
//! healthy is judged by `edr_health`, EDR onboarding by `edr_onboarded`.
//!
//! **Why it matters.** PCI DSS 5.2.1 wants anti-malware on every system not
//! formally judged not at risk; HIPAA 164.308(a)(5)(ii)(B) wants protection
//! from malicious software. An unprotected machine is where ransomware starts.
//!
//! **Evidence.** The device inventory of every source, each record's
//! anti-malware / EDR state, reconciled per machine (so a laptop Intune sees
//! without Defender but the RMM sees with SentinelOne passes).
//!
//! **How to fix.** Deploy the EDR agent (or onboard to Defender for Endpoint)
//! on the listed devices; if a device is legitimately exempt, document the
//! risk judgement and retire or isolate it. For devices that cannot be seen,
//! make the RMM or Intune report their anti-malware state.

use super::{endpoint_protection_scope, judge_devices, Check, CheckInput, Outcome, Reading, State};
use crate::facts::{Antimalware, Device, FactKind};

pub(super) const CHECK: Check = Check {
    id: "edr_coverage",
    source: include_str!("edr_coverage.rs"),
    title: "Anti-malware / EDR present on every device",
    thresholds: &[super::Threshold::MobileEndpointProtection],
    remediation: "Deploy the EDR agent or onboard the listed devices to Defender for Endpoint; document any device judged not at risk.",
    needs: &[FactKind::Devices, FactKind::Antimalware],
    per_subject: &[FactKind::Antimalware],
    run,
};

/// Whether a source record shows a product present.
pub(super) fn present(a: &Antimalware) -> bool {
    a.product.is_some() || a.running == Some(true) || a.edr_onboarded == Some(true)
}

/// One record's word on whether any product is present.
fn presence(d: &Device) -> (Reading, Option<chrono::DateTime<chrono::Utc>>) {
    let Some(a) = &d.antimalware else {
        return (Reading::Silent, None);
    };
    let reading = if present(a) {
        Reading::Good
    } else if a.running == Some(false) {
        Reading::Bad("no anti-malware product found".to_owned())
    } else {
        Reading::Silent
    };
    (reading, a.reported.or(d.last_seen))
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let mobile = input.limits.mobile_endpoint_protection;
    judge_devices(
        input,
        FactKind::Antimalware,
        &|_, records: &[&Device]| endpoint_protection_scope(mobile, records),
        &[State {
            what: "anti-malware or EDR",
            required: true,
            read: &presence,
        }],
        "devices",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{
        complete, device, ids, reconciled, run as run_with, run_on_devices,
    };
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Device, Facts};

    fn with_av(mut d: Device, av: Option<Antimalware>) -> Device {
        d.antimalware = av;
        d
    }

    fn defender() -> Antimalware {
        Antimalware {
            product: Some("Microsoft Defender Antivirus".into()),
            running: Some(true),
            ..Antimalware::default()
        }
    }

    fn judge(devices: Vec<Device>) -> Outcome {
        run_on_devices(&CHECK, devices, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        let off = Antimalware {
            running: Some(false),
            edr_onboarded: Some(false),
            ..Antimalware::default()
        };
        let sensor = Antimalware {
            edr_onboarded: Some(true),
            ..Antimalware::default()
        };
        type Case = (&'static str, Vec<Device>, Verdict, &'static [&'static str]);
        let cases: Vec<Case> = vec![
            (
                "protected",
                vec![with_av(device("ninja", "1", "PC1"), Some(defender()))],
                Verdict::Pass,
                &[],
            ),
            (
                "onboarded sensor",
                vec![with_av(device("defender", "1", "PC1"), Some(sensor))],
                Verdict::Pass,
                &[],
            ),
            (
                "explicitly absent",
                vec![with_av(device("ninja", "1", "PC1"), Some(off.clone()))],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "nothing said: unproven",
                vec![device("intune", "1", "PC1")],
                Verdict::Inconclusive,
                &[],
            ),
            (
                "absence reported by one source is not cancelled by another",
                vec![
                    with_av(device("intune", "1", "PC1"), Some(off.clone())),
                    with_av(device("ninja", "2", "PC1"), Some(defender())),
                ],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "a newer report of a product decides over an older absence",
                vec![
                    Device {
                        last_seen: Some(crate::checks::fixtures::days_ago(9)),
                        ..with_av(device("intune", "1", "PC1"), Some(off))
                    },
                    with_av(device("ninja", "2", "PC1"), Some(defender())),
                ],
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
    fn missing_antimalware_source_is_inconclusive() {
        let facts = complete(
            reconciled(Facts {
                devices: vec![device("ninja", "1", "PC1")],
                ..Facts::default()
            }),
            &[FactKind::Devices],
        );
        assert_eq!(
            run_with(&CHECK, &facts, &Limits::DEFAULT).verdict,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(vec![
            with_av(device("ninja", "1", "PC1"), Some(defender())),
            with_av(
                device("ninja", "2", "PC2"),
                Some(Antimalware {
                    running: Some(false),
                    ..Antimalware::default()
                })
            ),
            device("intune", "3", "PC3"),
        ]));
    }
}
