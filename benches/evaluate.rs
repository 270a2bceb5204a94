//! Benchmark: evaluate every shipped framework over a synthetic organisation of
//! 100,000 users and 30,000 devices (three sources per device), and print the
//! time of reconciling, evaluating and encoding against the 1 s target (and
//! reconciliation alone against its 0.1 s share), with the peak memory of
//! each stage against the 1 GiB target of evaluation and reports. Run with
//! `cargo bench --bench evaluate`; `AUDITPACK_BENCH_CHECKS=1` also times each
//! check alone, `AUDITPACK_BENCH_SCALE=0.1` runs a tenth of the organisation
//! (time targets scaled alike).
#![allow(clippy::print_stdout)]

mod common;

use common::{figure, report_peak, reset_peak, Target};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use auditpack::catalog::{Catalog, Ownership};
use auditpack::config::Thresholds;
use auditpack::evaluate::{count_by_status, evaluate, Scope};
use auditpack::evidence::DatasetStatus;
use auditpack::facts::{
    AccessPolicy, AccessReview, Antimalware, Compliance, Device, FactKind, Facts, MfaEnforcement,
    MfaState, PatchReport, PendingPatch, PolicyState, Provenance, ReviewDecision, ReviewInstance,
    ReviewItem, RoleHeld, Severity, User, UserType,
};
use chrono::{DateTime, TimeZone, Utc};

const USERS: usize = 100_000;
const DEVICES: usize = 30_000;
/// Reconcile + evaluate + encode, for the full organisation.
const TARGET: Duration = Duration::from_secs(1);
/// `Facts::finish`'s share of it: sorting users, devices and patches, and
/// matching the devices.
const RECONCILE_TARGET: Duration = Duration::from_millis(100);
/// The matching alone: a union-find over hash maps takes tens of ms.
const MATCH_TARGET: Duration = Duration::from_millis(50);
/// Peak memory of evaluation and reports (everything after collection).
const MEMORY_TARGET: f64 = 1024.0 * common::MIB;

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn ago(days: i64) -> DateTime<Utc> {
    as_of() - chrono::Duration::days(days)
}

fn synthetic(users: usize, devices: usize) -> Facts {
    let mut facts = Facts::default();
    for i in 0..users {
        let guest = i % 20 == 0;
        facts.users.push(User {
            id: format!("m365:{i:08}"),
            upn: format!("user{i}@org.example"),
            display_name: format!("User {i}"),
            enabled: i % 50 != 0,
            user_type: if guest {
                UserType::Guest
            } else {
                UserType::Member
            },
            last_sign_in: (i % 97 != 0).then(|| ago((i % 120) as i64)),
            sign_in_basis: auditpack::facts::SignInBasis::Success,
            created: Some(ago(400)),
            mfa: (i % 33 != 0).then(|| MfaState {
                registered: Some(i % 41 != 0),
                capable: Some(true),
                methods: vec!["microsoftAuthenticatorPush".into()],
            }),
            is_admin: i % 500 == 0,
            roles: if i % 500 == 0 {
                vec![RoleHeld {
                    role_id: "ga".into(),
                    name: Some("Global Administrator".into()),
                    privileged: true,
                    via_group: None,
                }]
            } else {
                vec![]
            },
        });
    }
    let excluded: Vec<String> = (0..users)
        .step_by(1000)
        .map(|i| format!("{i:08}"))
        .collect();
    facts.mfa_enforcement.insert(
        "m365".into(),
        MfaEnforcement {
            security_defaults: Some(false),
            policies: vec![AccessPolicy {
                id: "p1".into(),
                name: "Require MFA for all users".into(),
                state: PolicyState::Enabled,
                requires_mfa: true,
                grant: "OR: mfa".into(),
                all_applications: true,
                include_users: vec!["All".into()],
                exclude_users: vec!["00000001".into()],
                exclude_groups: vec!["g-exempt".into()],
                ..AccessPolicy::default()
            }],
            group_members: [("g-exempt".to_owned(), excluded)].into(),
        },
    );
    facts.access_reviews.push(AccessReview {
        id: "m365:guests".into(),
        name: "Guests".into(),
        guests: true,
        scope: "/users?$filter=(userType eq 'Guest')".into(),
        status: "InProgress".into(),
        instances: vec![ReviewInstance {
            id: "i1".into(),
            status: "Completed".into(),
            start: Some(ago(60)),
            end: Some(ago(45)),
            decisions: (0..users)
                .step_by(40)
                .map(|i| ReviewItem {
                    principal_id: format!("m365:{i:08}"),
                    principal_name: format!("User {i}"),
                    decision: if i % 400 == 0 {
                        ReviewDecision::Deny
                    } else {
                        ReviewDecision::Approve
                    },
                    reviewed: Some(ago(50)),
                    apply_result: Some("New".into()),
                    applied: None,
                })
                .collect(),
        }],
    });
    for i in 0..devices {
        let name = format!("PC-{i:05}");
        let serial = Some(format!("SN{i:07}"));
        let base = |source: &str| Device {
            id: format!("{source}:{i}"),
            name: name.clone(),
            source: source.into(),
            serial: serial.clone(),
            last_seen: (i % 211 != 0).then(|| ago((i % 45) as i64)),
            os: Some("Windows 11".into()),
            ..Device::default()
        };
        facts.devices.push(Device {
            compliance: Some(if i % 17 == 0 {
                Compliance::Noncompliant
            } else {
                Compliance::Compliant
            }),
            encrypted: Some(i % 23 != 0),
            ..base("intune")
        });
        facts.devices.push(Device {
            patch: Some(PatchReport {
                reporting: i % 31 != 0,
                status: None,
                last_install: Some(ago(10)),
                install_failing: Some(i % 41 == 0),
                pending_without_age: false,
            }),
            ..base("ninja")
        });
        facts.devices.push(Device {
            antimalware: (i % 29 != 0).then(|| Antimalware {
                product: Some("Microsoft Defender Antivirus".into()),
                running: Some(true),
                real_time: Some(i % 37 != 0),
                signatures_current: None,
                signatures_updated: Some(ago((i % 10) as i64)),
                edr_onboarded: Some(true),
                edr_health: Some("Active".into()),
                edr_active: Some(true),
                reported: Some(ago(1)),
                ..Antimalware::default()
            }),
            ..base("defender")
        });
        for (k, severity) in [Severity::Critical, Severity::Important, Severity::Moderate]
            .into_iter()
            .enumerate()
        {
            facts.patches.push(PendingPatch {
                device_id: format!("ninja:{i}"),
                name: format!("Update {k}"),
                kb: Some(format!("KB50{k}{:04}", i % 1000)),
                severity,
                status: Some("APPROVED".into()),
                detected: Some(ago(((i + k * 7) % 100) as i64)),
            });
        }
    }
    let kinds = [
        FactKind::Users,
        FactKind::SignInActivity,
        FactKind::MfaRegistration,
        FactKind::MfaEnforcement,
        FactKind::GroupMembers,
        FactKind::AdminRoles,
        FactKind::AccessReviews,
        FactKind::Devices,
        FactKind::PendingPatches,
        FactKind::PatchState,
        FactKind::Antimalware,
        FactKind::Encryption,
        FactKind::Compliance,
    ];
    for kind in kinds {
        let source = match kind {
            FactKind::Compliance | FactKind::Encryption => "intune",
            FactKind::PendingPatches | FactKind::PatchState => "ninja",
            FactKind::Antimalware => "defender",
            _ => "m365",
        };
        let dataset = format!("{kind:?}");
        facts.provide(
            kind,
            Provenance {
                source: source.into(),
                dataset: dataset.clone(),
                status: DatasetStatus::Complete,
                reason: None,
                evidence: (0..200)
                    .map(|p| format!("evidence/{source}/{dataset}/page-{p:05}.json"))
                    .collect(),
            },
        );
        facts
            .collected
            .insert(format!("{source}/{dataset}"), ago(0));
    }
    facts
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (users, devices) = (common::scaled(USERS), common::scaled(DEVICES));
    let target = TARGET.mul_f64(common::scale());
    let reconcile_target = RECONCILE_TARGET.mul_f64(common::scale());
    let started = Instant::now();
    let mut facts = synthetic(users, devices);
    let built = started.elapsed();
    let memory_built = common::peak_rss();
    reset_peak();
    let t = Instant::now();
    facts.finish();
    let mut finished = t.elapsed();
    let memory_reconciled = common::peak_rss();
    // Two more turns on fresh facts: the best of three is the figure.
    for _ in 0..2 {
        let mut again = synthetic(users, devices);
        let t = Instant::now();
        again.finish();
        finished = finished.min(t.elapsed());
    }
    reset_peak();
    // The matching alone (union-find over the 90,000 sorted records into the
    // inventory), without the sorts of users, devices and patches.
    let mut matched = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(auditpack::facts::reconcile(&facts.devices));
        matched = matched.min(t.elapsed());
    }

    let catalog = Catalog::builtin()?;
    let template = catalog.template("co-managed-default").ok_or("template")?;
    let overrides = BTreeMap::new();
    let ownership = Ownership::new(&catalog, template, &overrides)?;
    let frameworks: Vec<String> = catalog
        .frameworks()
        .iter()
        .map(|f| f.framework.id.clone())
        .collect();
    let thresholds = Thresholds::default();
    let scope = Scope {
        catalog: &catalog,
        ownership: &ownership,
        frameworks: &frameworks,
        thresholds: &thresholds,
        service_provider: false,
    };
    if std::env::var_os("AUDITPACK_BENCH_CHECKS").is_some() {
        let limits = auditpack::checks::Limits::DEFAULT;
        for check in auditpack::checks::CHECKS {
            let t = Instant::now();
            let out = auditpack::checks::run_check(
                check,
                &auditpack::checks::CheckInput::new(&facts, &limits, as_of()),
            );
            println!(
                "  check {:<30} {:?} ({} failing)",
                check.id,
                t.elapsed(),
                out.failing.len()
            );
        }
    }
    let mut best = Duration::MAX;
    let mut results = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        results = evaluate(&scope, &facts, as_of())?;
        best = best.min(t.elapsed());
    }
    let t = Instant::now();
    let bytes = auditpack::report::json::to_bytes(&results)?;
    let encoded = t.elapsed();

    println!(
        "synthetic organisation: {users} users, {devices} devices x 3 sources, {} pending patches",
        facts.patches.len()
    );
    println!("  build facts (not timed against the target): {built:?}");
    if let Some(peak) = memory_built {
        println!(
            "  peak RSS building the facts: {:.0} MiB",
            peak / common::MIB
        );
    }
    println!(
        "  sort and reconcile devices (Facts::finish): {finished:?} (best of 3) -> {} inventory items ({:.2} of its {reconcile_target:?} target: {})",
        facts.inventory.len(),
        finished.as_secs_f64() / reconcile_target.as_secs_f64(),
        if finished < reconcile_target { "met" } else { "MISSED" }
    );
    println!(
        "    of which matching devices into the inventory: {matched:?} (best of 3; target {:?}: {})",
        MATCH_TARGET.mul_f64(common::scale()),
        if matched < MATCH_TARGET.mul_f64(common::scale()) { "met" } else { "MISSED" }
    );
    if let Some(peak) = memory_reconciled {
        println!("  peak RSS reconciling: {:.0} MiB", peak / common::MIB);
    }
    println!(
        "  evaluate {} controls in {} frameworks: {best:?} (best of 3)",
        results.len(),
        frameworks.len()
    );
    println!(
        "  encode controls.json ({} MB): {encoded:?}",
        bytes.len() / 1_000_000
    );
    let counts: Vec<String> = count_by_status(&results)
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    println!("  statuses: {}", counts.join(", "));
    // Facts, results and the encoded bytes are all alive here, as in a run.
    report_peak(
        "evaluate.peak_rss_evaluate_encode",
        "evaluating and encoding (facts held)",
        Some(MEMORY_TARGET),
    );
    let total = finished + best + encoded;
    println!(
        "reconcile + evaluate + encode: {total:?} = {:.2} of the {target:?} target ({})",
        total.as_secs_f64() / target.as_secs_f64(),
        if total < target { "met" } else { "MISSED" }
    );
    let secs = |d: Duration| d.as_secs_f64();
    figure(
        "evaluate.reconcile",
        secs(finished),
        "s",
        Target::AtMost(secs(reconcile_target)),
    );
    figure(
        "evaluate.match_devices",
        secs(matched),
        "s",
        Target::AtMost(secs(MATCH_TARGET.mul_f64(common::scale()))),
    );
    figure("evaluate.evaluate", secs(best), "s", Target::None);
    figure("evaluate.encode", secs(encoded), "s", Target::None);
    figure(
        "evaluate.total",
        secs(total),
        "s",
        Target::AtMost(secs(target)),
    );
    Ok(())
}
