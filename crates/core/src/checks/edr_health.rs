//! `edr_health`: anti-malware / EDR is running, protecting in real time, and
//! its signatures are current (updated within `edr_signature_days`), with no
//! detected threat left waiting for action.
//!
//! **What it tests.** For each reconciled workstation, server or device of
//! unknown kind with an anti-malware or EDR product reported by some source,
//! each state below, judged across every source that reports it:
//! protection running (Intune `malwareProtectionEnabled`, overruled by
//! `productStatus` `serviceNotRunning`, `serviceStartedWithoutMalwareProtection`
//! or `productExpired`; Defender `avMode`; NinjaOne `productState`; Datto
//! `antivirusStatus`); real-time protection (Intune
//! `realTimeProtectionEnabled`; NinjaOne's Security Center `productState`);
//! signatures current (a source's up-to-date flag, Intune
//! `signatureUpdateOverdue` and `productStatus` `avSignaturesOutOfDate`, or a
//! last update within the limit); and, where a source reports them, engine
//! and platform current (`productStatus` `platformOutOfDate`, Defender
//! `avIsEngineUpToDate` / `avIsPlatformUpToDate`) and no threat waiting for
//! action (`productStatus` pending full scan, reboot or manual steps after a
//! threat, failed remediation, offline scan required; `deviceState`
//! `fullScanPending`, `rebootPending`, `manualStepsPending`,
//! `offlineScanPending`, `critical`).
//!
//! A problem reported by any source fails the device, naming the source and
//! the product: a healthy report from one tool never cancels a problem
//! reported by another (one may be stale, or watching a different product),
//! and within one source a healthy product never cancels another product
//! that is stopped or out of date (NinjaOne reports a row per product; every
//! product with a problem is named). Only where every source reporting a
//! state carries a report time does the newest report decide (a tie goes to
//! the problem), and the summary names each device so decided. A state one
//! source does not report (Datto has no real-time flag)
//! is judged from the sources that do; a required state (running, real-time,
//! signatures) that no source reports leaves the device unproven, listed
//! apart from the failing ones, with the partial or failed sources that might
//! have reported it. A source value that cannot be read in full (an Intune
//! `productStatus` or `deviceState` with a flag the enum does not define) is
//! no evidence: every state it bears on that no other source speaks to,
//! engine and threats included, leaves the device unproven, naming the value. Phones and tablets are out of scope unless
//! `mobile_endpoint_protection` is on; devices with no product at all are
//! judged by `edr_coverage`, EDR onboarding by `edr_onboarded`.
//!
//! **Why it matters.** A disabled or out-of-date agent looks like protection on
//! an inventory but stops nothing. PCI DSS 5.3.1 wants anti-malware kept
//! current, 5.3.2 real-time or continuous scanning, 10.7.2 failures detected.
//!
//! **Evidence.** Each source record's anti-malware state: Intune Windows
//! protection state (per device or the `DefenderAgents` export), Defender for
//! Endpoint AV info, NinjaOne antivirus status, Datto antivirus, RMM specs and
//! endpoint reports, each with its report time where the source gives one.
//!
//! **How to fix.** Restart or repair the agent on the listed devices, turn
//! real-time protection back on (and find out who turned it off: tamper
//! protection), fix signature and platform updates (proxy, WSUS, disk space),
//! and finish the scan, reboot or manual steps a detected threat is waiting
//! for. For devices that cannot be seen, fix the source that should report
//! them (agent offline, dataset failed).

use super::edr_coverage::present;
use super::{
    days_between, endpoint_protection_scope, judge_devices, Check, CheckInput, Outcome, Reading,
    State, Threshold,
};
use crate::facts::{Antimalware, Device, FactKind};

pub(super) const CHECK: Check = Check {
    id: "edr_health",
    source: include_str!("edr_health.rs"),
    title: "Anti-malware / EDR running with current signatures",
    thresholds: &[Threshold::EdrSignatureDays, Threshold::MobileEndpointProtection],
    remediation: "Repair or restart the agent on the listed devices, re-enable real-time protection (and tamper protection), fix signature updates, and finish the scan or reboot a detected threat is waiting for.",
    needs: &[FactKind::Devices, FactKind::Antimalware],
    per_subject: &[FactKind::Antimalware],
    run,
};

/// What a record that does not speak to a state says of it: nothing, or,
/// when the source reported fields auditpack cannot read that bear on the
/// state (`bears`), those words: no evidence either way, but named.
fn unspoken(a: &Antimalware, bears: bool) -> Reading {
    if bears && !a.unreadable.is_empty() {
        Reading::Unknown(a.unreadable.join("; "))
    } else {
        Reading::Silent
    }
}

/// A yes/no field of one record's anti-malware state as a reading.
fn flag(
    d: &Device,
    get: impl Fn(&Antimalware) -> Option<bool>,
    bad: &str,
    bears: bool,
) -> (Reading, Option<chrono::DateTime<chrono::Utc>>) {
    let Some(a) = &d.antimalware else {
        return (Reading::Silent, None);
    };
    let reading = match get(a) {
        Some(true) => Reading::Good,
        Some(false) => Reading::Bad(named(bad.to_owned(), a)),
        None => unspoken(a, bears),
    };
    (reading, a.reported.or(d.last_seen))
}

/// A problem with the product it concerns, as the source names it (a source
/// reporting several products names the ones with problems).
fn named(why: String, a: &Antimalware) -> String {
    match &a.product {
        Some(product) => format!("{product}: {why}"),
        None => why,
    }
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let limit = i64::from(input.limits.edr_signature_days);
    let as_of = input.as_of;
    let running = |d: &Device| flag(d, |a| a.running, "protection not running", true);
    let real_time = |d: &Device| flag(d, |a| a.real_time, "real-time protection off", false);
    let engine = |d: &Device| {
        flag(
            d,
            |a| a.engine_current,
            "engine or platform out of date",
            true,
        )
    };
    let signatures = |d: &Device| {
        let Some(a) = &d.antimalware else {
            return (Reading::Silent, None);
        };
        let age = a.signatures_updated.map(|t| days_between(t, as_of));
        let reading = if a.signatures_current == Some(true) || age.is_some_and(|d| d <= limit) {
            Reading::Good
        } else if let Some(days) = age {
            Reading::Bad(named(
                format!("signatures {days} days old (limit {limit})"),
                a,
            ))
        } else if a.signatures_current == Some(false) {
            Reading::Bad(named("signatures out of date".to_owned(), a))
        } else {
            unspoken(a, true)
        };
        (reading, a.reported.or(d.last_seen))
    };
    let threats = |d: &Device| {
        let Some(a) = &d.antimalware else {
            return (Reading::Silent, None);
        };
        let reading = match &a.attention {
            None => unspoken(a, true),
            Some(list) if list.is_empty() => Reading::Good,
            Some(list) => Reading::Bad(named(format!("needs action: {}", list.join(", ")), a)),
        };
        (reading, a.reported.or(d.last_seen))
    };
    let states = [
        State {
            what: "protection running",
            required: true,
            read: &running,
        },
        State {
            what: "real-time protection",
            required: true,
            read: &real_time,
        },
        State {
            what: "signatures current",
            required: true,
            read: &signatures,
        },
        State {
            what: "engine and platform current",
            required: false,
            read: &engine,
        },
        State {
            what: "detected threats handled",
            required: false,
            read: &threats,
        },
    ];
    let mobile = input.limits.mobile_endpoint_protection;
    judge_devices(
        input,
        FactKind::Antimalware,
        &|_, records: &[&Device]| {
            endpoint_protection_scope(mobile, records)
                && records
                    .iter()
                    .any(|d| d.antimalware.as_ref().is_some_and(present))
        },
        &states,
        "protected devices",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{days_ago, device, ids, run_on_devices};
    use crate::checks::{Limits, Verdict};
    use crate::facts::Device;

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
            ..Antimalware::default()
        }
    }

    fn on(name: &str, source: &str, a: Option<Antimalware>) -> Device {
        Device {
            antimalware: a,
            ..device(source, name, name)
        }
    }

    fn judge(devices: Vec<Device>, days: u32) -> Outcome {
        let limits = Limits {
            edr_signature_days: days,
            ..Limits::DEFAULT
        };
        run_on_devices(&CHECK, devices, &limits)
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
                "unreported state is unproven",
                vec![on("PC1", "ninja", Some(av(None, None, None, None)))],
                7,
                Verdict::Inconclusive,
                &[],
            ),
            (
                "no product left to coverage",
                vec![on("PC1", "ninja", None)],
                7,
                Verdict::Pass,
                &[],
            ),
            (
                "an alarm from any source surfaces",
                vec![
                    on("PC1", "intune", Some(av(t, t, None, Some(30)))),
                    on("PC1", "ninja", Some(av(t, t, None, Some(1)))),
                ],
                7,
                Verdict::Fail,
                &["device:serial:SN-PC1"],
            ),
            (
                "a state one source does not report is judged from the others",
                vec![
                    on("PC1", "datto", Some(av(t, None, t, None))),
                    on("PC1", "intune", Some(av(t, t, t, None))),
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
    fn the_finding_names_the_product_with_the_problem() {
        // NinjaOne's rows for one device, combined: Sophos stopped and stale,
        // Windows Defender stopped too.
        let both = Antimalware {
            product: Some(
                "Sophos Endpoint [off, definitions out of date], Windows Defender [off]".into(),
            ),
            ..av(Some(false), Some(false), Some(false), None)
        };
        let out = judge(vec![on("PC1", "ninja", Some(both))], 7);
        assert_eq!(ids(&out), ["device:serial:SN-PC1"]);
        assert!(
            out.failing[0].detail.starts_with(
                "Sophos Endpoint [off, definitions out of date], Windows Defender [off]: protection not running per ninja"
            ),
            "{}",
            out.failing[0].detail
        );
    }

    #[test]
    fn a_value_that_cannot_be_read_is_unproven_never_healthy() {
        let t = Some(true);
        // Intune's productStatus could not be read: running and the optional
        // engine and threat states say nothing, and the device is unproven
        // with the value named, where before it looked healthy.
        let unread = Antimalware {
            running: None,
            unreadable: vec!["productStatus \"1073741824\" not understood".into()],
            ..av(t, t, t, None)
        };
        let out = judge(vec![on("PC1", "intune", Some(unread.clone()))], 7);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(
            out.unproven[0].detail.contains("1073741824"),
            "{:?}",
            out.unproven
        );
        // Another source's word on every state it bore on decides.
        let other = Antimalware {
            engine_current: t,
            attention: Some(vec![]),
            ..av(t, t, t, None)
        };
        let out = judge(
            vec![
                on("PC1", "intune", Some(unread.clone())),
                on("PC1", "defender", Some(other.clone())),
            ],
            7,
        );
        assert_eq!(out.verdict, Verdict::Pass, "{:?}", out.unproven);
        // A problem read beside the unreadable value still fails the device.
        let broken = Antimalware {
            real_time: Some(false),
            ..unread
        };
        let out = judge(vec![on("PC1", "intune", Some(broken))], 7);
        assert_eq!(
            (out.verdict, ids(&out)),
            (Verdict::Fail, vec!["device:serial:SN-PC1"])
        );
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
