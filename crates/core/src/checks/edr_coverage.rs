//! `edr_coverage`: every device has anti-malware / EDR present.
//!
//! **What it tests.** Each reconciled device has at least one source record
//! showing an anti-malware or EDR product: a named product, protection
//! running, or an onboarded EDR sensor. Whether that product is healthy is
//! judged by `edr_health`.
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
//! risk judgement and retire or isolate it.

use super::{Check, CheckInput, Outcome};
use crate::facts::{Antimalware, FactKind};

pub(super) const CHECK: Check = Check {
    id: "edr_coverage",
    source: include_str!("edr_coverage.rs"),
    title: "Anti-malware / EDR present on every device",
    thresholds: &[],
    remediation: "Deploy the EDR agent or onboard the listed devices to Defender for Endpoint; document any device judged not at risk.",
    needs: &[FactKind::Devices, FactKind::Antimalware],
    run,
};

/// Whether a source record shows a product present.
pub(super) fn present(a: &Antimalware) -> bool {
    a.product.is_some() || a.running == Some(true) || a.edr_onboarded == Some(true)
}

fn run(input: &CheckInput<'_>) -> Outcome {
    super::every_device(
        input,
        |d| d.antimalware.as_ref().map(present),
        "anti-malware or EDR",
        "no product running per",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, device, ids, reconciled, run as run_with};
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
        let facts = complete(
            reconciled(Facts {
                devices,
                ..Facts::default()
            }),
            &[FactKind::Devices, FactKind::Antimalware],
        );
        run_with(&CHECK, &facts, &Limits::DEFAULT)
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
                "nothing said",
                vec![device("intune", "1", "PC1")],
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "covered through another source",
                vec![
                    with_av(device("intune", "1", "PC1"), Some(off)),
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
