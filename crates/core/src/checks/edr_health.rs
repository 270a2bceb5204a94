//! `edr_health`: anti-malware / EDR is running, protecting in real time, and
//! its signatures are current (updated within `edr_signature_days`).
//!
//! **What it tests.** For each reconciled device with an anti-malware or EDR
//! product reported by some source: at least one source record shows
//! protection running, real-time protection on, and signatures either current
//! per the source or updated within the limit. A state the source does not
//! report counts against the device: missing evidence is never healthy.
//! Devices with no product at all are judged by `edr_coverage`.
//!
//! **Why it matters.** A disabled or out-of-date agent looks like protection on
//! an inventory but stops nothing. PCI DSS 5.3.1 wants anti-malware kept
//! current, 5.3.2 real-time or continuous scanning, 10.7.2 failures detected.
//!
//! **Evidence.** Each source record's anti-malware state: running, real-time
//! protection, signature status and last update.
//!
//! **How to fix.** Restart or repair the agent on the listed devices, turn
//! real-time protection back on (and find out who turned it off: tamper
//! protection), fix signature updates (proxy, WSUS, disk space).

use super::edr_coverage::present;
use super::{
    days_between, devices_by_id, inventory, inventory_subject, Check, CheckInput, Outcome,
    Threshold,
};
use crate::facts::{Antimalware, FactKind};

pub(super) const CHECK: Check = Check {
    id: "edr_health",
    source: include_str!("edr_health.rs"),
    title: "Anti-malware / EDR running with current signatures",
    thresholds: &[Threshold::EdrSignatureDays],
    remediation: "Repair or restart the agent on the listed devices, re-enable real-time protection (and tamper protection), and fix signature updates.",
    needs: &[FactKind::Devices, FactKind::Antimalware],
    run,
};

/// Problems with one source's report; empty when healthy.
fn problems(a: &Antimalware, input: &CheckInput<'_>) -> Vec<String> {
    let limit = i64::from(input.limits.edr_signature_days);
    let mut out = Vec::new();
    match a.running {
        Some(true) => {}
        Some(false) => out.push("protection not running".to_owned()),
        None => out.push("running state not reported".to_owned()),
    }
    match a.real_time {
        Some(true) => {}
        Some(false) => out.push("real-time protection off".to_owned()),
        None => out.push("real-time protection not reported".to_owned()),
    }
    let updated = a.signatures_updated.map(|t| days_between(t, input.as_of));
    let fresh = a.signatures_current == Some(true) || updated.is_some_and(|d| d <= limit);
    if !fresh {
        out.push(match updated {
            Some(days) => format!("signatures {days} days old (limit {limit})"),
            None if a.signatures_current == Some(false) => "signatures out of date".to_owned(),
            None => "signature age not reported".to_owned(),
        });
    }
    out
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let by_id = devices_by_id(input.facts);
    let items = inventory(input.facts);
    let mut evaluated = 0;
    let mut failing = Vec::new();
    for item in items.iter() {
        let reports: Vec<(&str, &Antimalware)> = item
            .members
            .iter()
            .filter_map(|m| by_id.get(m.as_str()))
            .filter_map(|d| Some((d.source.as_str(), d.antimalware.as_ref()?)))
            .filter(|(_, a)| present(a))
            .collect();
        if reports.is_empty() {
            continue;
        }
        evaluated += 1;
        let judged: Vec<(&str, Vec<String>)> = reports
            .iter()
            .map(|(s, a)| (*s, problems(a, input)))
            .collect();
        if judged.iter().any(|(_, p)| p.is_empty()) {
            continue;
        }
        let detail = judged
            .iter()
            .map(|(source, p)| format!("{source}: {}", p.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        failing.push(inventory_subject(item, detail));
    }
    Outcome::judge(evaluated, failing, "protected devices")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, days_ago, device, ids, reconciled, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Device, Facts};

    fn av(
        running: Option<bool>,
        real_time: Option<bool>,
        current: Option<bool>,
        updated: Option<i64>,
    ) -> Antimalware {
        Antimalware {
            product: Some("Microsoft Defender Antivirus".into()),
            running,
            real_time,
            signatures_current: current,
            signatures_updated: updated.map(days_ago),
            edr_onboarded: None,
            edr_health: None,
        }
    }

    fn on(name: &str, source: &str, a: Option<Antimalware>) -> Device {
        Device {
            antimalware: a,
            ..device(source, name, name)
        }
    }

    fn judge(devices: Vec<Device>, days: u32) -> Outcome {
        let facts = complete(
            reconciled(Facts {
                devices,
                ..Facts::default()
            }),
            &[FactKind::Devices, FactKind::Antimalware],
        );
        let limits = Limits {
            edr_signature_days: days,
            ..Limits::DEFAULT
        };
        run_with(&CHECK, &facts, &limits)
    }

    #[test]
    fn table() {
        let t = Some(true);
        let f = Some(false);
        type Case = (
            &'static str,
            Vec<Device>,
            u32,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "healthy by date",
                vec![on("PC1", "ninja", Some(av(t, t, None, Some(2))))],
                7,
                Verdict::Pass,
                &[],
            ),
            (
                "healthy by flag",
                vec![on("PC1", "ninja", Some(av(t, t, t, None)))],
                7,
                Verdict::Pass,
                &[],
            ),
            (
                "old signatures",
                vec![on("PC1", "ninja", Some(av(t, t, None, Some(10))))],
                7,
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "real-time off",
                vec![on("PC1", "ninja", Some(av(t, f, t, Some(1))))],
                7,
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "not running",
                vec![on("PC1", "ninja", Some(av(f, t, t, Some(1))))],
                7,
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "unreported state fails",
                vec![on("PC1", "ninja", Some(av(None, None, None, None)))],
                7,
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "no product left to coverage",
                vec![on("PC1", "ninja", None)],
                7,
                Verdict::Pass,
                &[],
            ),
            (
                "one healthy source suffices",
                vec![
                    on("PC1", "intune", Some(av(t, t, None, Some(30)))),
                    on("PC1", "ninja", Some(av(t, t, None, Some(1)))),
                ],
                7,
                Verdict::Pass,
                &[],
            ),
            (
                "looser limit",
                vec![on("PC1", "ninja", Some(av(t, t, None, Some(10))))],
                14,
                Verdict::Pass,
                &[],
            ),
        ];
        for (name, devices, days, verdict, failing) in cases {
            let out = judge(devices, days);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn findings_snapshot() {
        let t = Some(true);
        insta::assert_json_snapshot!(judge(
            vec![
                on("PC1", "ninja", Some(av(t, t, None, Some(1)))),
                on("PC2", "ninja", Some(av(t, Some(false), None, Some(12)))),
                on("PC3", "intune", Some(av(None, None, Some(false), None))),
            ],
            7
        ));
    }
}
