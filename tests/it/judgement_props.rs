//! Property tests of judgement: a generated organisation whose devices are
//! seen by several sources, each reporting every state as healthy, unhealthy
//! or not at all, with or without a report time, and some sources partial.
//! Every device check's failing and unproven sets must equal the truth the
//! generator knows, exactly: no subject missing, none extra.
//!
//! The truth follows the rules as documented, not the code: a state no
//! source reports is unproven; a problem from any source fails the device,
//! unless more than one source reports the state, every one of them carries
//! a time, and the newest healthy report is strictly newer than the newest
//! problem report; a device fails when any state fails, else is unproven when
//! a required state is unproven.

use std::collections::BTreeSet;

use auditpack::checks::{check, run_check, CheckInput, Limits, Outcome};
use auditpack::evidence::DatasetStatus;
use auditpack::facts::{Antimalware, Compliance, Device, FactKind, Facts, PatchReport, Provenance};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

const SOURCES: [&str; 3] = ["intune", "ninja", "datto"];

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// One source's word on one state: `None` not reported, else healthy or not.
type Word = Option<bool>;

/// One source's record of one device.
#[derive(Clone, Debug)]
struct Record {
    /// Report time, hours before `as_of`, when the source gives one.
    at: Option<i64>,
    encrypted: Word,
    running: Word,
    real_time: Word,
    signatures: Word,
    compliant: Word,
    installs_ok: Word,
}

/// A device: which sources know it and what each says.
#[derive(Clone, Debug)]
struct Machine {
    records: Vec<(usize, Record)>,
}

fn word() -> impl Strategy<Value = Word> {
    prop_oneof![Just(None), Just(Some(true)), Just(Some(false))]
}

fn record() -> impl Strategy<Value = Record> {
    (
        prop::option::weighted(0.8, 0i64..6),
        word(),
        word(),
        word(),
        word(),
        word(),
        word(),
    )
        .prop_map(
            |(at, encrypted, running, real_time, signatures, compliant, installs_ok)| Record {
                at,
                encrypted,
                running,
                real_time,
                signatures,
                compliant,
                installs_ok,
            },
        )
}

fn machine() -> impl Strategy<Value = Machine> {
    (
        prop::sample::subsequence(vec![0usize, 1, 2], 1..=3),
        prop::collection::vec(record(), 3),
    )
        .prop_map(|(sources, records)| Machine {
            records: sources.into_iter().zip(records).collect(),
        })
}

/// What the rules say about one state of one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Truth {
    Pass,
    Fail,
    Unproven,
}

fn truth(words: &[(Word, Option<i64>)]) -> Truth {
    let speaking: Vec<(bool, Option<i64>)> = words
        .iter()
        .filter_map(|(w, at)| w.map(|w| (w, *at)))
        .collect();
    if speaking.is_empty() {
        return Truth::Unproven;
    }
    if speaking.iter().all(|(good, _)| *good) {
        return Truth::Pass;
    }
    if speaking.len() > 1 && speaking.iter().all(|(_, at)| at.is_some()) {
        // Hours ago: smaller is newer.
        let newest = |good: bool| {
            speaking
                .iter()
                .filter(|(g, _)| *g == good)
                .filter_map(|(_, at)| *at)
                .min()
        };
        if let (Some(bad), Some(good)) = (newest(false), newest(true)) {
            if good < bad {
                return Truth::Pass;
            }
        }
    }
    Truth::Fail
}

/// The device's truth over required states (and optional ones, which count
/// only when failing).
fn device_truth(required: &[Truth], optional: &[Truth]) -> Truth {
    if required.iter().chain(optional).any(|t| *t == Truth::Fail) {
        Truth::Fail
    } else if required.contains(&Truth::Unproven) {
        Truth::Unproven
    } else {
        Truth::Pass
    }
}

fn id(i: usize) -> String {
    format!("device:serial:SN-{i:03}")
}

/// The facts of the generated organisation; `partial` marks sources whose
/// state datasets were partial (their records that did arrive still count).
fn facts(machines: &[Machine], partial: &[bool; 3]) -> Facts {
    let mut facts = Facts::default();
    for (i, m) in machines.iter().enumerate() {
        for (s, r) in &m.records {
            let source = SOURCES[*s];
            let at = r.at.map(|h| as_of() - Duration::hours(h));
            facts.devices.push(Device {
                id: format!("{source}:{i}"),
                name: format!("PC-{i:03}"),
                os: Some("Windows".into()),
                last_seen: at,
                source: source.into(),
                serial: Some(format!("SN-{i:03}")),
                encrypted: r.encrypted,
                compliance: (*s == 0).then_some(match r.compliant {
                    Some(true) => Compliance::Compliant,
                    Some(false) => Compliance::Noncompliant,
                    None => Compliance::Unknown,
                }),
                antimalware: Some(Antimalware {
                    product: Some("Anti-malware".into()),
                    running: r.running,
                    real_time: r.real_time,
                    signatures_current: r.signatures,
                    reported: at,
                    ..Antimalware::default()
                }),
                patch: (*s != 0).then(|| PatchReport {
                    reporting: true,
                    status: None,
                    last_install: None,
                    install_failing: r.installs_ok.map(|ok| !ok),
                    pending_without_age: false,
                }),
                ..Device::default()
            });
        }
    }
    for (s, source) in SOURCES.iter().enumerate() {
        let state = |kind: FactKind| Provenance {
            source: (*source).into(),
            dataset: format!("{kind:?}"),
            status: if partial[s] {
                DatasetStatus::Partial
            } else {
                DatasetStatus::Complete
            },
            reason: partial[s].then(|| "throttled".to_owned()),
            evidence: vec![],
        };
        let complete = |kind: FactKind| Provenance {
            status: DatasetStatus::Complete,
            reason: None,
            ..state(kind)
        };
        facts.provide(FactKind::Devices, complete(FactKind::Devices));
        facts.provide(FactKind::Encryption, state(FactKind::Encryption));
        facts.provide(FactKind::Antimalware, state(FactKind::Antimalware));
        facts.provide(FactKind::PatchState, state(FactKind::PatchState));
        if s == 0 {
            facts.provide(FactKind::Compliance, complete(FactKind::Compliance));
        }
    }
    facts.finish();
    facts
}

fn run(facts: &Facts, id: &str) -> Outcome {
    let check = check(id).expect("check exists");
    run_check(check, &CheckInput::new(facts, &Limits::DEFAULT, as_of()))
}

fn sets(out: &Outcome) -> (BTreeSet<String>, BTreeSet<String>) {
    (
        out.failing.iter().map(|s| s.id.clone()).collect(),
        out.unproven.iter().map(|s| s.id.clone()).collect(),
    )
}

fn expected(
    machines: &[Machine],
    judge: impl Fn(&Machine) -> Option<Truth>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut failing = BTreeSet::new();
    let mut unproven = BTreeSet::new();
    for (i, m) in machines.iter().enumerate() {
        match judge(m) {
            Some(Truth::Fail) => {
                failing.insert(id(i));
            }
            Some(Truth::Unproven) => {
                unproven.insert(id(i));
            }
            _ => {}
        }
    }
    (failing, unproven)
}

fn words(m: &Machine, get: impl Fn(&Record) -> Word) -> Vec<(Word, Option<i64>)> {
    m.records.iter().map(|(_, r)| (get(r), r.at)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_device_check_finds_exactly_the_true_sets(
        machines in prop::collection::vec(machine(), 1..12),
        partial in prop::array::uniform3(prop::bool::weighted(0.2)),
    ) {
        let facts = facts(&machines, &partial);

        let out = run(&facts, "disk_encryption");
        prop_assert_eq!(
            sets(&out),
            expected(&machines, |m| Some(truth(&words(m, |r| r.encrypted))))
        );

        let out = run(&facts, "edr_health");
        prop_assert_eq!(
            sets(&out),
            expected(&machines, |m| Some(device_truth(
                &[
                    truth(&words(m, |r| r.running)),
                    truth(&words(m, |r| r.real_time)),
                    truth(&words(m, |r| r.signatures)),
                ],
                &[],
            )))
        );

        // Compliance is Intune's alone; an unknown state is unproven.
        let out = run(&facts, "intune_compliance");
        prop_assert_eq!(
            sets(&out),
            expected(&machines, |m| {
                let intune: Vec<(Word, Option<i64>)> = m
                    .records
                    .iter()
                    .filter(|(s, _)| *s == 0)
                    .map(|(_, r)| (r.compliant, r.at))
                    .collect();
                (!intune.is_empty()).then(|| truth(&intune))
            })
        );

        // Install results from the RMMs; devices none of them reports
        // install results for are not judged.
        let out = run(&facts, "patch_install_failures");
        let rmm = |m: &Machine| -> Vec<(Word, Option<i64>)> {
            m.records
                .iter()
                .filter(|(s, _)| *s != 0)
                .map(|(_, r)| (r.installs_ok, r.at))
                .collect()
        };
        let judged = machines.iter().any(|m| rmm(m).iter().any(|(w, _)| w.is_some()));
        if judged {
            prop_assert_eq!(
                sets(&out),
                expected(&machines, |m| {
                    let w = rmm(m);
                    w.iter().any(|(w, _)| w.is_some()).then(|| truth(&w))
                })
            );
        } else {
            prop_assert_eq!(out.verdict, auditpack::checks::Verdict::Inconclusive);
        }

        // The verdict follows from the sets.
        let (failing, unproven) = sets(&run(&facts, "edr_health"));
        let verdict = run(&facts, "edr_health").verdict;
        let want = if !failing.is_empty() {
            auditpack::checks::Verdict::Fail
        } else if !unproven.is_empty() {
            auditpack::checks::Verdict::Inconclusive
        } else {
            auditpack::checks::Verdict::Pass
        };
        prop_assert_eq!(verdict, want);
    }
}
