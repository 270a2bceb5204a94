//! Benchmark: evaluate every shipped framework over a synthetic organisation of
//! 100,000 users and 30,000 devices (three sources per device), and print the
//! time against the 2 s target. Run with `cargo bench --bench evaluate`;
//! `AUDITPACK_BENCH_CHECKS=1` also times each check alone.
#![allow(clippy::print_stdout)]

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
const TARGET: Duration = Duration::from_secs(2);

fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn ago(days: i64) -> DateTime<Utc> {
    as_of() - chrono::Duration::days(days)
}

fn synthetic() -> Facts {
    let mut facts = Facts::default();
    for i in 0..USERS {
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
                registered: i % 41 != 0,
                capable: true,
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
    let excluded: Vec<String> = (0..USERS)
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
        scope: "guests".into(),
        status: "InProgress".into(),
        instances: vec![ReviewInstance {
            id: "i1".into(),
            status: "Completed".into(),
            start: Some(ago(60)),
            end: Some(ago(45)),
            decisions: (0..USERS)
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
    for i in 0..DEVICES {
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
    let started = Instant::now();
    let mut facts = synthetic();
    let built = started.elapsed();
    let t = Instant::now();
    facts.finish();
    let finished = t.elapsed();

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
        "synthetic organisation: {USERS} users, {DEVICES} devices x 3 sources, {} pending patches",
        facts.patches.len()
    );
    println!("  build facts (not timed against the target): {built:?}");
    println!(
        "  sort and reconcile devices (Facts::finish): {finished:?} -> {} inventory items",
        facts.inventory.len()
    );
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
    let total = finished + best + encoded;
    println!(
        "reconcile + evaluate + encode: {total:?} = {:.2} of the {TARGET:?} target ({})",
        total.as_secs_f64() / TARGET.as_secs_f64(),
        if total < TARGET { "met" } else { "MISSED" }
    );
    Ok(())
}
