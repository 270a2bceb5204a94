//! The Microsoft 365 collector against the simulator: every dataset paged
//! across many pages, faults on every path, 403 degradation, certificate and
//! secret credentials, hostile device names, throttling, and the facts the
//! demo organisation yields.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use auditpack::evidence::{DatasetStatus, SourceStatus};
use auditpack::facts::{Availability, FactKind, PolicyState, ReviewDecision};
use auditpack::simulate::{
    defender_paths, graph_paths, Fault, FaultKind, SimCredentials, SimOptions, Tenant,
};
use auditpack::sources::normalise;
use common::{graph_value, stored_records, Harness, FAST_M365_LIMITS};
use serde_json::Value;

fn synthetic(users: usize, devices: usize) -> Tenant {
    Tenant::synthetic(users, devices, chrono::Utc::now())
}

/// Have the simulator answer every request to `path` with 403 from its
/// `from_request`th on, as for a permission the app lacks.
fn refuse(h: &Harness, path: &str, from_request: usize) {
    h.sim.add_fault(Fault {
        path: path.into(),
        from_request,
        times: 1000,
        kind: FaultKind::Forbidden,
    });
}

fn harness(tenant: Tenant, page: usize) -> Harness {
    Harness::new(
        tenant,
        SimOptions {
            max_page_size: page,
            ..SimOptions::default()
        },
    )
}

fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            r.get("id")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

const DEVICE_FIELDS: &[&str] = &[
    "id",
    "deviceName",
    "operatingSystem",
    "osVersion",
    "complianceState",
    "lastSyncDateTime",
    "isEncrypted",
    "managementAgent",
    "managedDeviceOwnerType",
    "azureADDeviceId",
    "userPrincipalName",
    "serialNumber",
    "enrolledDateTime",
];

/// Records as `$select=fields` returns them (fields in the record's order).
fn selected(records: &[Value], fields: &[&str]) -> Vec<Value> {
    records
        .iter()
        .map(|r| match r {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| fields.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => r.clone(),
        })
        .collect()
}

/// Every dataset's stored records equal what the simulator holds, in order,
/// with no loss and no duplicate.
fn assert_evidence_matches(h: &Harness, run: &std::path::Path) {
    let t = h.sim.tenant();
    let stored = |d: &str| stored_records(run, "m365", d, graph_value);
    assert_eq!(stored("users"), t.graph.users, "users");
    assert_eq!(
        stored("userRegistrationDetails"),
        t.graph.registrations,
        "registrations"
    );
    assert_eq!(
        ids(&stored("conditionalAccessPolicies")),
        ids(&t.graph.conditional_access)
    );
    assert_eq!(
        stored("conditionalAccessPolicies"),
        t.graph
            .conditional_access
            .iter()
            .map(|p| {
                let keep = ["id", "displayName", "state", "conditions", "grantControls"];
                let Value::Object(m) = p else {
                    return p.clone();
                };
                Value::Object(
                    m.iter()
                        .filter(|(k, _)| keep.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            })
            .collect::<Vec<_>>(),
        "CA policies, as selected"
    );
    assert_eq!(
        ids(&stored("roleAssignments")),
        ids(&t.graph.role_assignments)
    );
    assert!(stored("roleAssignments")
        .iter()
        .all(|a| a.get("principal").is_some_and(Value::is_object)));
    assert_eq!(
        ids(&stored("roleDefinitions")),
        ids(&t.graph.role_definitions)
    );
    assert_eq!(
        stored("managedDevices"),
        selected(&t.graph.managed_devices, DEVICE_FIELDS),
        "managed devices, as selected"
    );
    assert_eq!(
        ids(&stored("accessReviewDefinitions")),
        ids(&t.graph.review_definitions)
    );
    let instances: Vec<Value> = t
        .graph
        .review_instances
        .values()
        .flatten()
        .cloned()
        .collect();
    let mut got = ids(&stored("accessReviewInstances"));
    got.sort();
    let mut want = ids(&instances);
    want.sort();
    assert_eq!(got, want, "instances");
    let mut got = ids(&stored("accessReviewDecisions"));
    got.sort();
    let mut want = ids(&t
        .graph
        .review_decisions
        .values()
        .flatten()
        .cloned()
        .collect::<Vec<_>>());
    want.sort();
    assert_eq!(got, want, "decisions");
    assert_eq!(stored("secureScores").len(), 1);
    assert_eq!(
        stored_records(run, "m365", "defenderMachines", graph_value),
        t.defender.machines
    );
    assert_eq!(
        stored_records(run, "m365", "defenderAvInfo", graph_value),
        t.defender.av_info
    );
    // One protection state per Windows device, each stored once.
    let states: Vec<Value> = common::all_files(&run.join("evidence/m365/windowsProtectionState"))
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json"))
        .collect();
    let mut got = ids(&states);
    got.sort();
    let mut want = ids(&t
        .graph
        .protection_states
        .values()
        .cloned()
        .collect::<Vec<_>>());
    want.sort();
    assert_eq!(got, want, "protection states");
}

#[test]
fn every_dataset_pages_to_the_end_and_matches_the_simulator() {
    let h = harness(synthetic(47, 26), 4);
    // The machine list pages by `$top`/`$skip`, at the page size asked.
    let outcome =
        h.run(&h.m365_config(None, &format!("{FAST_M365_LIMITS}\ndefender_page_size = 4")));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(m365.status, SourceStatus::Complete, "{:?}", m365.reason);
    assert_eq!(m365.datasets["users"].pages, 12);
    assert_eq!(m365.datasets["managedDevices"].pages, 7);
    assert!(m365.datasets["defenderMachines"].pages >= 4);
    assert!(
        m365.datasets["accessReviewDecisions"].records == 0
            || m365.datasets["accessReviewDecisions"].pages >= 1
    );
    assert_evidence_matches(&h, &outcome.run_dir);
    // Page files are numbered continuously across per-device requests.
    let dir = outcome.run_dir.join("evidence/m365/windowsProtectionState");
    let names: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = (1..=names.len())
        .map(|i| format!("page-{i:05}.json"))
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn the_demo_organisation_yields_the_findings_it_is_built_for() {
    let h = harness(Tenant::demo(chrono::Utc::now()).expect("demo"), 2);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    assert_eq!(
        outcome.manifest.sources["m365"].status,
        SourceStatus::Complete,
        "{:?}",
        outcome.manifest.sources["m365"].reason
    );
    assert_evidence_matches(&h, &outcome.run_dir);
    let mut facts = normalise(&outcome.run_dir).expect("facts");
    facts.finish();
    let admins: BTreeSet<&str> = facts
        .users
        .iter()
        .filter(|u| u.is_admin)
        .map(|u| u.upn.split('@').next().unwrap_or_default())
        .collect();
    assert_eq!(
        admins,
        BTreeSet::from(["breakglass", "maria.alvarez", "msp.admin"])
    );
    let sam = facts
        .users
        .iter()
        .find(|u| u.upn.starts_with("sam.patel"))
        .expect("sam");
    assert!(
        !sam.is_admin
            && sam
                .roles
                .iter()
                .any(|r| r.name.as_deref() == Some("Global Reader"))
    );

    let mfa = &facts.mfa_enforcement["m365"];
    assert_eq!(mfa.security_defaults, Some(false));
    let all = mfa
        .policies
        .iter()
        .find(|p| p.name.starts_with("CA001"))
        .expect("CA001");
    assert!(all.requires_mfa && all.state == PolicyState::Enabled && all.all_applications);
    assert_eq!(
        all.exclude_users.len(),
        3,
        "break-glass, and the kiosk and lab accounts the narrower policies cover"
    );
    assert!(mfa
        .policies
        .iter()
        .any(|p| p.state == PolicyState::ReportOnly && p.requires_mfa));
    assert!(
        mfa.policies
            .iter()
            .any(|p| p.name.starts_with("CA002") && p.requires_mfa),
        "authentication strength counts as MFA"
    );
    // The exclusion group resolves through its nested group.
    let excluded = &mfa.group_members[&all.exclude_groups[0]];
    assert_eq!(excluded.len(), 2);

    let review = &facts.access_reviews[0];
    assert!(review.guests);
    let done = review
        .instances
        .iter()
        .find(|i| i.status == "Completed")
        .expect("completed");
    assert!(done
        .decisions
        .iter()
        .any(|d| d.decision == ReviewDecision::Deny && d.applied.is_none()));

    let device = |name: &str| facts.devices.iter().find(|d| d.name == name).expect(name);
    let home = device("CD-HOMEOFFICE-LT");
    assert_eq!(home.encrypted, Some(false));
    assert_eq!(
        home.antimalware.as_ref().and_then(|a| a.edr_onboarded),
        Some(false)
    );
    let op2 = device("CD-OP2").antimalware.clone().expect("am");
    assert_eq!(op2.edr_health.as_deref(), Some("Inactive"));
    let hygiene = device("CD-HYGIENE-01").antimalware.clone().expect("am");
    assert_eq!(hygiene.signatures_current, Some(false));
    let lab = device("CD-LAB-01").antimalware.clone().expect("am");
    assert_eq!(lab.real_time, Some(false));
    let mac = device("CD-SAMPATEL-LT")
        .antimalware
        .clone()
        .expect("EDR state");
    assert_eq!(
        (mac.product, mac.running, mac.edr_onboarded),
        (None, None, Some(false)),
        "no Windows protection state for a Mac, and not in Defender for Endpoint"
    );
    assert!(facts
        .devices
        .iter()
        .any(|d| d.id.contains(":mde:") && d.name.starts_with("cd-srv-pms")));
    assert!(facts
        .inventory
        .iter()
        .any(|i| i.name.eq_ignore_ascii_case("CD-HOMEOFFICE-LT")));
    assert_eq!(facts.secure_score["m365"].current, 41.5);
    for kind in [
        FactKind::Users,
        FactKind::SignInActivity,
        FactKind::MfaRegistration,
        FactKind::MfaEnforcement,
        FactKind::GroupMembers,
        FactKind::AdminRoles,
        FactKind::AccessReviews,
        FactKind::Devices,
        FactKind::Antimalware,
        FactKind::Encryption,
        FactKind::Compliance,
        FactKind::SecureScore,
    ] {
        assert_eq!(facts.availability(kind), Availability::Complete, "{kind:?}");
    }
}

#[test]
fn the_export_job_collects_protection_state_for_the_whole_tenant() {
    let mut t = synthetic(10, 30);
    t.graph.export_polls = 2;
    let h = harness(t, 10);
    let outcome = h.run(&h.m365_config(
        None,
        &format!("{FAST_M365_LIMITS}\nprotection_state = \"export\""),
    ));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(m365.status, SourceStatus::Complete, "{:?}", m365.reason);
    assert!(!m365.datasets.contains_key("windowsProtectionState"));
    assert_eq!(
        m365.datasets["protectionStateExportJob"].pages,
        1 + 3,
        "create, two in progress, done"
    );
    let export = &m365.datasets["protectionStateExport"];
    assert_eq!(export.records, h.sim.tenant().graph.protection_states.len());
    assert_eq!(h.sim.requests(graph_paths::PROTECTION_STATE), 0);
    let custody = std::fs::read_to_string(outcome.run_dir.join("custody.jsonl")).expect("custody");
    assert!(
        custody.contains("\"request\":\"POST "),
        "the job creation is in custody"
    );
    assert!(
        !custody.contains("sig=")
            || custody.contains("sig=%5Bredacted%5D")
            || custody.contains("sig=[redacted]")
    );
    let facts = normalise(&outcome.run_dir).expect("facts");
    let windows = facts
        .devices
        .iter()
        .filter(|d| d.os.as_deref() == Some("Windows"))
        .count();
    let with_state = facts
        .devices
        .iter()
        .filter(|d| d.antimalware.as_ref().is_some_and(|a| a.running.is_some()))
        .count();
    assert_eq!(with_state, windows);
    assert_eq!(
        facts.availability(FactKind::Antimalware),
        Availability::Complete
    );
}

/// Device facts and control statuses of a run, for comparing collection paths.
fn devices_and_statuses(
    outcome: &auditpack::pipeline::RunOutcome,
) -> (
    Vec<auditpack::facts::Device>,
    Vec<(String, String, auditpack::evaluate::Status)>,
) {
    let facts = normalise(&outcome.run_dir).expect("facts");
    assert_eq!(
        facts.availability(FactKind::Antimalware),
        Availability::Complete
    );
    let statuses = outcome
        .results
        .iter()
        .map(|r| (r.framework.clone(), r.control_id.clone(), r.status))
        .collect();
    (facts.devices, statuses)
}

/// Runs `tenant` once per device and once with `mode`; both must give the same
/// device facts (anti-malware state included) and control statuses.
fn assert_export_matches_per_device(tenant: Tenant, mode: &str) -> Harness {
    let per_device = harness(tenant.clone(), 50);
    let outcome = per_device.run(&per_device.m365_config(
        None,
        &format!("{FAST_M365_LIMITS}\nprotection_state = \"per-device\""),
    ));
    assert!(outcome.manifest.sources["m365"]
        .datasets
        .contains_key("windowsProtectionState"));
    let (want_devices, want_statuses) = devices_and_statuses(&outcome);
    assert!(
        want_devices
            .iter()
            .filter(|d| d.antimalware.as_ref().is_some_and(|a| a.running.is_some()))
            .count()
            > 0
    );

    let h = harness(tenant, 50);
    let outcome = h.run(&h.m365_config(None, &format!("{FAST_M365_LIMITS}\n{mode}")));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(m365.status, SourceStatus::Complete, "{:?}", m365.reason);
    assert!(!m365.datasets.contains_key("windowsProtectionState"));
    assert_eq!(
        m365.datasets["protectionStateExport"].status,
        DatasetStatus::Complete
    );
    assert_eq!(h.sim.requests(graph_paths::PROTECTION_STATE), 0);
    let (devices, statuses) = devices_and_statuses(&outcome);
    assert_eq!(devices, want_devices, "device facts");
    assert_eq!(statuses, want_statuses, "control statuses");

    // The evidence file is the archive the simulator served, byte for byte.
    let served = h.sim.export_downloads();
    assert_eq!(served.len(), 1);
    let stored = std::fs::read(
        outcome
            .run_dir
            .join("evidence/m365/protectionStateExport/page-00001.zip"),
    )
    .expect("zip evidence");
    assert_eq!(stored, served[0]);
    assert_eq!(&stored[..4], b"PK\x03\x04");
    h
}

#[test]
fn the_forced_export_gives_the_same_device_facts_and_results_as_per_device() {
    assert_export_matches_per_device(synthetic(10, 30), "protection_state = \"export\"");
}

#[test]
fn auto_uses_the_export_above_100_windows_devices_with_the_same_results() {
    let t = synthetic(10, 160);
    let windows = t
        .graph
        .managed_devices
        .iter()
        .filter(|d| d["operatingSystem"] == "Windows")
        .count();
    assert!(windows > 100, "{windows}");
    let h = assert_export_matches_per_device(t, "");
    assert_eq!(h.sim.requests(graph_paths::EXPORT_DOWNLOAD), 1);
}

/// The Defender machine list announces no next page (List machines API:
/// `$top` up to 10,000 with `$skip`): after a full page the collector asks
/// for the next with `$skip`, so a tenant with more machines than one page is
/// read in full, and gives the same device facts and results as one page,
/// whether the list ends on a short page or on the 404 the API documents for
/// no machines.
#[test]
fn defender_machines_beyond_one_page_are_read_in_full_with_skip() {
    let tenant = synthetic(5, 40);
    let machines = tenant.defender.machines.len();
    assert!(machines > 14, "{machines}");
    let run = |page: usize| {
        let h = harness(tenant.clone(), 50);
        let outcome = h.run(&h.m365_config(
            None,
            &format!("{FAST_M365_LIMITS}\ndefender_page_size = {page}"),
        ));
        let m = &outcome.manifest.sources["m365"].datasets["defenderMachines"];
        assert_eq!(m.status, DatasetStatus::Complete, "{page}: {:?}", m.reason);
        assert_eq!(m.records, machines, "page size {page}");
        // Full pages, then the short page that ends the list; a list that
        // fills its last page ends on a 404 (documented for no machines),
        // which stores nothing and is said in the dataset's reason.
        let ends_full = machines.is_multiple_of(page);
        assert_eq!(m.pages, machines.div_ceil(page), "page size {page}");
        assert_eq!(
            h.sim.requests(defender_paths::MACHINES),
            m.pages + usize::from(ends_full)
        );
        assert_eq!(
            m.reason
                .as_deref()
                .is_some_and(|r| r.contains("answered 404")),
            ends_full,
            "{:?}",
            m.reason
        );
        assert_eq!(
            stored_records(&outcome.run_dir, "m365", "defenderMachines", graph_value),
            h.sim.tenant().defender.machines,
            "every machine once, in order"
        );
        // The custody log writes the request as sent, `$` percent-encoded.
        let custody = std::fs::read_to_string(outcome.run_dir.join("custody.jsonl"))
            .expect("custody")
            .replace("%24", "$");
        assert_eq!(
            custody.contains(&format!("/api/machines?$top={page}&$skip={page}\"")),
            page < machines,
            "the page after a full one is asked with $skip (and stored when it holds machines)"
        );
        devices_and_statuses(&outcome)
    };
    let (one_page_devices, one_page_statuses) = run(machines + 1);
    let not_onboarded = |devices: &[auditpack::facts::Device]| {
        devices
            .iter()
            .filter(|d| d.antimalware.as_ref().and_then(|a| a.edr_onboarded) == Some(false))
            .count()
    };
    let missing = tenant.graph.managed_devices.len().saturating_sub(machines);
    assert_eq!(
        not_onboarded(&one_page_devices),
        missing,
        "only the devices Defender does not list are not onboarded"
    );
    // A page size that divides the list ends on a 404; others on a short page.
    let divisor = (2..machines)
        .rev()
        .find(|d| machines.is_multiple_of(*d) && *d < machines / 2);
    for page in [7, machines].into_iter().chain(divisor) {
        let (devices, statuses) = run(page);
        assert_eq!(devices, one_page_devices, "device facts, page size {page}");
        assert_eq!(
            statuses, one_page_statuses,
            "control statuses, page size {page}"
        );
    }
}

/// A machine list that breaks off after a full page is partial, and no
/// Intune device is called not onboarded for missing from it.
#[test]
fn a_machine_list_cut_short_is_partial_and_calls_nobody_not_onboarded() {
    let h = harness(synthetic(5, 40), 50);
    refuse(&h, defender_paths::MACHINES, 2);
    let outcome =
        h.run(&h.m365_config(None, &format!("{FAST_M365_LIMITS}\ndefender_page_size = 7")));
    let m = &outcome.manifest.sources["m365"].datasets["defenderMachines"];
    assert_eq!(m.status, DatasetStatus::Partial, "{:?}", m.reason);
    assert_eq!((m.pages, m.records), (1, 7));
    let facts = normalise(&outcome.run_dir).expect("facts");
    assert!(facts
        .devices
        .iter()
        .all(|d| d.antimalware.as_ref().and_then(|a| a.edr_onboarded) != Some(false)));
    let check = outcome
        .results
        .iter()
        .flat_map(|r| &r.checks)
        .find(|c| c.check == "edr_onboarded")
        .expect("edr_onboarded is in scope");
    assert!(
        check
            .failing
            .iter()
            .all(|s| !s.detail.contains("not onboarded")),
        "{:?}",
        check.failing
    );
    assert!(
        check.unproven_count > 0,
        "the devices not read are unproven"
    );
}

/// A registration record without `isMfaRegistered` (absent or null) and a
/// Defender machine without `onboardingStatus` are no evidence: the user and
/// the device are unproven, never failing.
#[test]
fn unsaid_mfa_registration_and_onboarding_are_unproven_not_failing() {
    let mut t = synthetic(20, 12);
    let registered = |r: &Value| r["isMfaRegistered"] == Value::Bool(true);
    let mut silent_users = Vec::new();
    for (n, r) in t
        .graph
        .registrations
        .iter_mut()
        .filter(|r| registered(r) && r["userType"] == "member")
        .take(2)
        .enumerate()
    {
        silent_users.push(format!("m365:{}", r["id"].as_str().expect("id")));
        match (n, r) {
            (0, Value::Object(m)) => {
                m.remove("isMfaRegistered");
            }
            (_, r) => r["isMfaRegistered"] = Value::Null,
        }
    }
    let machine = &mut t.defender.machines[0];
    let aad = machine["aadDeviceId"].as_str().expect("aad").to_owned();
    if let Value::Object(m) = machine {
        m.remove("onboardingStatus");
    }
    let enabled: BTreeSet<String> = t
        .graph
        .users
        .iter()
        .filter(|u| u["accountEnabled"] == Value::Bool(true))
        .map(|u| format!("m365:{}", u["id"].as_str().expect("id")))
        .collect();
    assert!(silent_users.iter().all(|u| enabled.contains(u)));
    let h = harness(t, 50);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let check = |id: &str| {
        outcome
            .results
            .iter()
            .flat_map(|r| &r.checks)
            .find(|c| c.check == id)
            .cloned()
            .expect(id)
    };
    let mfa = check("mfa_registered");
    for user in &silent_users {
        assert!(
            mfa.unproven.iter().any(|s| &s.id == user),
            "{user} unproven"
        );
        assert!(
            mfa.failing.iter().all(|s| &s.id != user),
            "{user} not failing"
        );
    }
    let facts = normalise(&outcome.run_dir).expect("facts");
    let device = facts
        .devices
        .iter()
        .find(|d| d.aad_device_id.as_deref() == Some(aad.as_str()))
        .expect("the Intune device of the machine");
    let am = device.antimalware.as_ref().expect("anti-malware state");
    assert_eq!(
        am.edr_onboarded, None,
        "no onboarding status is no evidence"
    );
    let edr = check("edr_onboarded");
    let is_device = |s: &&auditpack::checks::Subject| s.name.eq_ignore_ascii_case(&device.name);
    assert!(
        !edr.failing.iter().any(|s| is_device(&s)),
        "{:?}",
        edr.failing
    );
    assert!(
        edr.unproven.iter().any(|s| is_device(&s)),
        "{:?}",
        edr.unproven
    );
}

/// Protection-state flags that cannot be read (here a `productStatus` bit the
/// enum does not define) are no evidence, per device and in the export alike:
/// the device's anti-malware state is unproven, never healthy.
#[test]
fn unreadable_protection_flags_are_unproven_per_device_and_in_the_export() {
    let mut t = synthetic(5, 12);
    let id = t
        .graph
        .managed_devices
        .iter()
        .filter_map(|d| d["id"].as_str())
        .find(|id| t.graph.protection_states.contains_key(*id))
        .expect("a Windows device")
        .to_owned();
    let state = t.graph.protection_states.get_mut(&id).expect("state");
    state["productStatus"] = Value::String((1u64 << 30).to_string());
    state["deviceState"] = Value::String("clean".into());
    for mode in ["per-device", "export"] {
        let h = harness(t.clone(), 50);
        let outcome = h.run(&h.m365_config(
            None,
            &format!("{FAST_M365_LIMITS}\nprotection_state = \"{mode}\""),
        ));
        let facts = normalise(&outcome.run_dir).expect("facts");
        let device = facts
            .devices
            .iter()
            .find(|d| d.id == format!("m365:{id}"))
            .expect("the device");
        // Defender's AV report still speaks for the engine and signatures;
        // whether a threat needs action only Intune's flags could say.
        let am = device.antimalware.as_ref().expect("anti-malware state");
        assert_eq!(
            am.attention, None,
            "{mode}: an unreadable productStatus proves nothing"
        );
        assert_eq!(
            am.unreadable,
            ["productStatus \"1073741824\" not understood"],
            "{mode}"
        );
        let health = outcome
            .results
            .iter()
            .flat_map(|r| &r.checks)
            .find(|c| c.check == "edr_health")
            .expect("edr_health is in scope");
        let named = |s: &auditpack::checks::Subject| s.name.eq_ignore_ascii_case(&device.name);
        let unproven = health.unproven.iter().find(|s| named(s));
        assert!(
            unproven.is_some_and(|s| s.detail.contains("1073741824")),
            "{mode}: {:?}",
            health.unproven
        );
        assert!(
            !health.failing.iter().any(named),
            "{mode}: {:?}",
            health.failing
        );
    }
}

fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("start");
        w.write_all(body).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

#[test]
fn a_corrupt_or_hostile_export_download_fails_the_dataset_and_edr_checks_are_inconclusive() {
    let row = b"DeviceId,MalwareProtectionEnabled,RealTimeProtectionEnabled,SignatureUpdateOverdue\r\n30000000-0000-4000-8000-000000000000,True,True,False\r\n";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"PK\x03\x04 this is not really a zip".to_vec(),
            "not a ZIP archive",
        ),
        (b"{\"Values\": []}".to_vec(), "not a ZIP archive"),
        (
            zip_with(&[("../../../etc/cron.d/report.csv", row)]),
            "not a plain file name",
        ),
        (zip_with(&[("notes.txt", b"hello")]), "no CSV report"),
    ];
    for (download, want) in cases {
        let mut t = synthetic(5, 12);
        t.graph.export_download = Some(download.clone());
        let h = harness(t, 50);
        let outcome = h.run(&h.m365_config(
            None,
            &format!("{FAST_M365_LIMITS}\nprotection_state = \"export\""),
        ));
        let m365 = &outcome.manifest.sources["m365"];
        let export = &m365.datasets["protectionStateExport"];
        assert_eq!(export.status, DatasetStatus::Failed, "{want}");
        let reason = export.reason.as_deref().unwrap_or_default();
        assert!(reason.contains(want), "{want}: {reason}");
        assert!(
            reason.contains("evidence/m365/protectionStateExport/page-00001.zip"),
            "{reason}"
        );
        assert_eq!(m365.status, SourceStatus::Partial);
        // Stored byte for byte all the same, and nothing was unpacked.
        let stored = std::fs::read(
            outcome
                .run_dir
                .join("evidence/m365/protectionStateExport/page-00001.zip"),
        )
        .expect("stored");
        assert_eq!(stored, download);
        assert!(!outcome.run_dir.join("etc").exists());

        let facts = normalise(&outcome.run_dir).expect("facts");
        assert_ne!(
            facts.availability(FactKind::Antimalware),
            Availability::Complete,
            "{want}"
        );
        assert_eq!(
            facts.availability(FactKind::Devices),
            Availability::Complete
        );
        let export = facts.coverage[&FactKind::Antimalware]
            .iter()
            .find(|p| p.dataset == "protectionStateExport")
            .expect("the export is a provider of anti-malware facts");
        assert_eq!(export.status, DatasetStatus::Failed);
        assert_eq!(
            export.evidence,
            ["evidence/m365/protectionStateExport/page-00001.zip"]
        );
        let problem = export.reason.as_deref().unwrap_or_default();
        assert!(problem.contains(want), "{want}: {problem}");
        let mut judged = 0;
        for control in &outcome.results {
            for check in &control.checks {
                if check.check == "edr_health" || check.check == "edr_coverage" {
                    judged += 1;
                    assert_eq!(
                        check.outcome,
                        auditpack::checks::Verdict::Inconclusive,
                        "{want}: {}/{}",
                        control.framework,
                        control.control_id
                    );
                    assert_ne!(control.status, auditpack::evaluate::Status::Pass);
                }
            }
        }
        assert!(judged > 0, "some control uses the anti-malware checks");
    }
}

const EVERY_PATH: &[&str] = &[
    graph_paths::USERS,
    graph_paths::REGISTRATION,
    graph_paths::CONDITIONAL_ACCESS,
    graph_paths::SECURITY_DEFAULTS,
    graph_paths::ROLE_DEFINITIONS,
    graph_paths::ROLE_ASSIGNMENTS,
    graph_paths::GROUP_MEMBERS,
    graph_paths::MANAGED_DEVICES,
    graph_paths::PROTECTION_STATE,
    graph_paths::REVIEW_DEFINITIONS,
    graph_paths::REVIEW_INSTANCES,
    graph_paths::REVIEW_DECISIONS,
    graph_paths::SECURE_SCORES,
    defender_paths::MACHINES,
    defender_paths::AV_INFO,
];

fn faulty_run(kind: FaultKind, from: usize, times: usize) {
    let h = harness(Tenant::demo(chrono::Utc::now()).expect("demo"), 3);
    for path in EVERY_PATH {
        h.sim.add_fault(Fault {
            path: (*path).into(),
            from_request: from,
            times,
            kind: kind.clone(),
        });
    }
    // Machines three a page, so that faults meet their `$skip` pages too.
    let outcome =
        h.run(&h.m365_config(None, &format!("{FAST_M365_LIMITS}\ndefender_page_size = 3")));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(
        m365.status,
        SourceStatus::Complete,
        "{kind:?}: {:?}",
        m365.reason
    );
    assert_evidence_matches(&h, &outcome.run_dir);
    for path in EVERY_PATH {
        assert!(h.sim.requests(path) >= 1, "{path} was requested");
    }
    let users_pages = m365.datasets["users"].pages;
    assert!(
        h.sim.requests(graph_paths::USERS) > users_pages,
        "the fault was served and retried"
    );
}

#[test]
fn a_429_storm_without_retry_after_on_every_path_loses_nothing() {
    faulty_run(FaultKind::TooManyRequests(None), 1, 3);
}

#[test]
fn a_429_with_retry_after_is_honoured_and_loses_nothing() {
    let started = Instant::now();
    faulty_run(FaultKind::TooManyRequests(Some(1)), 2, 1);
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[test]
fn a_503_burst_on_every_path_loses_nothing() {
    faulty_run(FaultKind::Unavailable, 2, 3);
}

#[test]
fn truncated_bodies_on_every_path_are_fetched_again() {
    faulty_run(FaultKind::TruncatedBody, 2, 1);
}

#[test]
fn a_token_expiring_mid_run_is_renewed_on_every_path() {
    faulty_run(FaultKind::TokenExpired, 2, 1);
}

#[test]
fn export_job_faults_are_retried_and_a_failed_download_is_recorded() {
    let mut t = synthetic(5, 12);
    t.graph.export_polls = 1;
    let h = harness(t, 50);
    for path in [
        graph_paths::EXPORT_JOBS,
        graph_paths::EXPORT_JOB,
        graph_paths::EXPORT_DOWNLOAD,
    ] {
        h.sim.add_fault(Fault {
            path: path.into(),
            from_request: 1,
            times: 2,
            kind: FaultKind::Unavailable,
        });
    }
    let config = h.m365_config(
        None,
        &format!("{FAST_M365_LIMITS}\nprotection_state = \"export\""),
    );
    let outcome = h.run(&config);
    let export = &outcome.manifest.sources["m365"].datasets["protectionStateExport"];
    assert_eq!(export.status, DatasetStatus::Complete, "{export:?}");

    let h = harness(synthetic(5, 12), 50);
    h.sim.add_fault(Fault {
        path: graph_paths::EXPORT_DOWNLOAD.into(),
        from_request: 1,
        times: 100,
        kind: FaultKind::Forbidden,
    });
    let outcome = h.run(&h.m365_config(
        None,
        &format!("{FAST_M365_LIMITS}\nprotection_state = \"export\""),
    ));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(
        m365.datasets["protectionStateExport"].status,
        DatasetStatus::Failed
    );
    assert_eq!(m365.status, SourceStatus::Partial);
    let facts = normalise(&outcome.run_dir).expect("facts");
    assert!(matches!(
        facts.availability(FactKind::Antimalware),
        Availability::Incomplete(_)
    ));
    assert_eq!(
        facts.availability(FactKind::Devices),
        Availability::Complete
    );
}

#[test]
fn sign_in_activity_without_a_licence_keeps_users_and_marks_only_sign_in_unavailable() {
    let mut t = synthetic(25, 3);
    t.graph.sign_in_activity_unlicensed = true;
    let h = harness(t, 10);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(m365.datasets["users"].status, DatasetStatus::Complete);
    assert_eq!(m365.datasets["users"].records, 25);
    let sign_in = &m365.datasets["signInActivity"];
    assert_eq!(sign_in.status, DatasetStatus::Failed);
    let reason = sign_in.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("403") && reason.contains("P1"), "{reason}");
    let facts = normalise(&outcome.run_dir).expect("facts");
    assert_eq!(facts.availability(FactKind::Users), Availability::Complete);
    assert!(
        matches!(facts.availability(FactKind::SignInActivity), Availability::Incomplete(r) if r.contains("P1"))
    );
    assert!(facts.users.iter().all(|u| u.last_sign_in.is_none()));
    // The evidence holds the users as served without signInActivity.
    let users = stored_records(&outcome.run_dir, "m365", "users", graph_value);
    assert_eq!(ids(&users), ids(&h.sim.tenant().graph.users));
    assert!(users.iter().all(|u| u.get("signInActivity").is_none()));
}

#[test]
fn a_403_dataset_names_its_permission_and_only_its_facts_become_incomplete() {
    for (path, dataset, permission, kinds) in [
        (
            graph_paths::MANAGED_DEVICES,
            "managedDevices",
            "DeviceManagementManagedDevices.Read.All",
            vec![
                FactKind::Devices,
                FactKind::Compliance,
                FactKind::Encryption,
            ],
        ),
        (
            graph_paths::CONDITIONAL_ACCESS,
            "conditionalAccessPolicies",
            "Policy.Read.All",
            vec![FactKind::MfaEnforcement],
        ),
        (
            graph_paths::REVIEW_DEFINITIONS,
            "accessReviewDefinitions",
            "AccessReview.Read.All",
            vec![FactKind::AccessReviews],
        ),
        (
            defender_paths::MACHINES,
            "defenderMachines",
            "Machine.Read.All",
            vec![FactKind::Antimalware],
        ),
    ] {
        let h = harness(synthetic(12, 6), 10);
        refuse(&h, path, 1);
        let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
        let d = &outcome.manifest.sources["m365"].datasets[dataset];
        assert_eq!(d.status, DatasetStatus::Failed);
        let reason = d.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("403") && reason.contains(permission),
            "{reason}"
        );
        assert_eq!(h.sim.requests(path), 1, "{path}: a 403 is not retried");
        let facts = normalise(&outcome.run_dir).expect("facts");
        for kind in &kinds {
            assert!(
                matches!(facts.availability(*kind), Availability::Incomplete(_)),
                "{kind:?}"
            );
        }
        for kind in [
            FactKind::Users,
            FactKind::MfaRegistration,
            FactKind::AdminRoles,
            FactKind::SecureScore,
        ] {
            assert_eq!(
                facts.availability(kind),
                Availability::Complete,
                "{dataset}: {kind:?}"
            );
        }
    }
}

fn cert_der(pem: &str) -> Vec<u8> {
    auditpack::sources::m365::pem_blocks(pem)
        .expect("pem")
        .into_iter()
        .find(|(l, _)| l == "CERTIFICATE")
        .expect("cert")
        .1
}

#[test]
fn a_certificate_credential_signs_an_assertion_the_token_endpoint_verifies() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let pem_a = std::fs::read_to_string(fixtures.join("m365-cert-a.pem")).expect("fixture");
    let credentials = SimCredentials {
        graph_certificate: Some(cert_der(&pem_a)),
        ..SimCredentials::demo()
    };
    let h = Harness::new(
        synthetic(8, 4),
        SimOptions {
            credentials,
            ..SimOptions::default()
        },
    );
    for (file, ok) in [("m365-cert-a.pem", true), ("m365-cert-b.pem", false)] {
        std::fs::copy(fixtures.join(file), h.path().join("app.pem")).expect("copy");
        let before = h.sim.token_requests();
        let outcome = h.run(&h.m365_config(
            None,
            &format!("{FAST_M365_LIMITS}\ncertificate_file = \"app.pem\""),
        ));
        let m365 = &outcome.manifest.sources["m365"];
        if ok {
            assert_eq!(m365.status, SourceStatus::Complete, "{:?}", m365.reason);
            assert_evidence_matches(&h, &outcome.run_dir);
        } else {
            assert_eq!(m365.status, SourceStatus::Failed);
            let reason = m365.reason.as_deref().unwrap_or_default();
            assert!(reason.contains("not registered"), "{reason}");
            assert!(h.sim.token_requests() - before <= 2, "no retry loop");
        }
        // The private key reaches no file of the run or package.
        let key_line = pem_a.lines().nth(1).expect("key line");
        for file in common::all_files(&h.path().join("store")) {
            let text = String::from_utf8_lossy(&std::fs::read(&file).expect("read")).into_owned();
            assert!(!text.contains(key_line), "{} holds the key", file.display());
            assert!(!text.contains("client_assertion="), "{}", file.display());
        }
    }
}

#[test]
fn an_invalid_secret_fails_clearly_once_and_the_canary_appears_nowhere() {
    let h = harness(synthetic(8, 4), 10);
    let canary = "CANARY-m365-secret-7f3a9e";
    let outcome = h.run(&h.m365_config(Some(canary), FAST_M365_LIMITS));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(m365.status, SourceStatus::Failed);
    let reason = m365.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("rejected the credentials") && reason.contains("AADSTS7000215"),
        "{reason}"
    );
    assert!(
        h.sim.token_requests() <= 2,
        "Graph and Defender asked once each: {}",
        h.sim.token_requests()
    );
    for file in common::all_files(h.path())
        .iter()
        .filter(|p| !p.ends_with("graph.secret"))
    {
        let text = String::from_utf8_lossy(&std::fs::read(file).expect("read")).into_owned();
        assert!(
            !text.contains(canary),
            "{} holds the secret",
            file.display()
        );
    }
}

#[test]
fn a_correct_canary_secret_appears_in_no_evidence_log_or_package() {
    let canary = "CANARY-good-secret-b41d07";
    let credentials = SimCredentials {
        graph_secret: canary.into(),
        ..SimCredentials::demo()
    };
    let h = Harness::new(
        synthetic(8, 4),
        SimOptions {
            credentials,
            ..SimOptions::default()
        },
    );
    let outcome = h.run(&h.m365_config(Some(canary), FAST_M365_LIMITS));
    assert_eq!(
        outcome.manifest.sources["m365"].status,
        SourceStatus::Complete
    );
    assert!(outcome.package.exists());
    for file in common::all_files(&h.path().join("store")) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).expect("read")).into_owned();
        assert!(
            !text.contains(canary),
            "{} holds the secret",
            file.display()
        );
        assert!(
            !text.contains("sim-"),
            "{} holds an access token",
            file.display()
        );
    }
}

#[test]
fn hostile_device_names_are_stored_byte_for_byte_under_safe_file_names() {
    let mut t = synthetic(3, 3);
    let hostile = [
        "../../../etc/passwd".to_owned(),
        "Ωmega-💻-ПК\u{202e}exe.txt\u{0}".to_owned(),
        "A".repeat(300),
    ];
    for (d, name) in t.graph.managed_devices.iter_mut().zip(&hostile) {
        d["deviceName"] = Value::String(name.clone());
    }
    for (m, name) in t.defender.machines.iter_mut().zip(&hostile) {
        m["computerDnsName"] = Value::String(format!("{name}.evil"));
    }
    let h = harness(t, 10);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    assert_eq!(
        outcome.manifest.sources["m365"].status,
        SourceStatus::Complete
    );
    assert_eq!(
        stored_records(&outcome.run_dir, "m365", "managedDevices", graph_value),
        selected(&h.sim.tenant().graph.managed_devices, DEVICE_FIELDS)
    );
    let page_name = |n: &str| n.len() == 15 && n.starts_with("page-") && n.ends_with(".json");
    for file in common::all_files(&outcome.run_dir.join("evidence")) {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(page_name(name), "{}", file.display());
        assert!(file.starts_with(outcome.run_dir.join("evidence/m365")));
    }
    assert!(!h.path().join("etc").exists());
    let facts = normalise(&outcome.run_dir).expect("facts");
    for name in &hostile {
        assert!(
            facts.devices.iter().any(|d| &d.name == name),
            "{name:?} kept as data"
        );
    }
}

#[test]
fn conditional_access_is_never_asked_more_than_once_a_second() {
    // The published limit (1/s, no Retry-After) stays in force here.
    let h = harness(Tenant::demo(chrono::Utc::now()).expect("demo"), 1);
    let started = Instant::now();
    let outcome = h.run(&h.m365_config(None, r#"rate_limits = { identity_reports = "1000/1s" }"#));
    let ca = &outcome.manifest.sources["m365"].datasets["conditionalAccessPolicies"];
    assert_eq!(ca.status, DatasetStatus::Complete);
    let pages = ca.pages;
    assert_eq!(pages, h.sim.tenant().graph.conditional_access.len());
    assert!(
        started.elapsed() >= Duration::from_secs((pages - 1) as u64),
        "{pages} pages in {:?}",
        started.elapsed()
    );
    assert_eq!(h.sim.requests(graph_paths::CONDITIONAL_ACCESS), pages);
}

/// A tenant whose Global Administrator role is also assigned to a
/// role-assignable group holding user 3 and, through a nested group, users 4
/// and 5.
fn with_role_assignable_group() -> (Tenant, [String; 3]) {
    let mut t = synthetic(8, 3);
    let uid = |i: usize| format!("00000000-0000-4000-8000-{i:012x}");
    let outer = "60000000-0000-4000-8000-000000000001";
    let inner = "60000000-0000-4000-8000-000000000002";
    t.graph.groups.insert(
        outer.into(),
        ("Tier 0 admins".into(), vec![uid(3), inner.into()]),
    );
    t.graph.groups.insert(
        inner.into(),
        ("Helpdesk leads".into(), vec![uid(4), uid(5)]),
    );
    t.graph.role_assignments.push(serde_json::json!({
        "id": "ra-group", "principalId": outer,
        "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/"
    }));
    (t, [uid(3), uid(4), uid(5)])
}

#[test]
fn members_of_a_role_assignable_group_hold_its_role() {
    let (t, members) = with_role_assignable_group();
    // Two members per page: the group's three users take two pages.
    let h = harness(t, 2);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(m365.status, SourceStatus::Complete, "{:?}", m365.reason);
    let d = &m365.datasets["roleGroupMembers"];
    assert_eq!(d.status, DatasetStatus::Complete);
    assert_eq!((d.pages, d.records), (2, 3));

    let facts = normalise(&outcome.run_dir).expect("facts");
    assert_eq!(
        facts.availability(FactKind::AdminRoles),
        Availability::Complete
    );
    let admins: BTreeSet<String> = facts
        .users
        .iter()
        .filter(|u| u.is_admin)
        .map(|u| u.id.trim_start_matches("m365:").to_owned())
        .collect();
    for member in &members {
        assert!(
            admins.contains(member),
            "{member} holds the role via the group"
        );
        let user = facts
            .users
            .iter()
            .find(|u| u.id == format!("m365:{member}"))
            .expect("user");
        assert_eq!(
            user.roles
                .iter()
                .map(|r| (r.privileged, r.via_group.as_deref()))
                .collect::<Vec<_>>(),
            [(
                true,
                Some("Tier 0 admins (60000000-0000-4000-8000-000000000001)")
            )]
        );
    }
    assert_eq!(
        admins.len(),
        2 + members.len(),
        "two direct, three by group"
    );
    let mfa_admins = outcome
        .results
        .iter()
        .flat_map(|c| &c.checks)
        .find(|c| c.check == "mfa_admins")
        .expect("mfa_admins judged");
    assert_eq!(mfa_admins.evaluated, 5);
}

#[test]
fn a_role_group_whose_members_are_refused_makes_admin_checks_inconclusive() {
    let (t, _) = with_role_assignable_group();
    let h = harness(t, 10);
    refuse(&h, graph_paths::GROUP_MEMBERS, 1);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let d = &outcome.manifest.sources["m365"].datasets["roleGroupMembers"];
    assert_eq!(d.status, DatasetStatus::Failed);
    assert!(
        d.reason
            .as_deref()
            .unwrap_or_default()
            .contains("GroupMember.Read.All"),
        "{d:?}"
    );
    let facts = normalise(&outcome.run_dir).expect("facts");
    assert!(matches!(
        facts.availability(FactKind::AdminRoles),
        Availability::Incomplete(_)
    ));
    let mut judged = 0;
    for control in &outcome.results {
        for check in control.checks.iter().filter(|c| c.check == "mfa_admins") {
            judged += 1;
            assert_eq!(check.outcome, auditpack::checks::Verdict::Inconclusive);
            assert_ne!(control.status, auditpack::evaluate::Status::Pass);
        }
    }
    assert!(judged > 0);
}

/// Without GroupMember.Read.All, only the accounts whose MFA coverage hinges
/// on a group are unproven: an account the policy excludes by name still
/// fails, and the policies themselves are still judged.
#[test]
fn refused_group_members_leave_only_group_dependent_accounts_unproven() {
    let h = harness(synthetic(12, 6), 10);
    refuse(&h, graph_paths::GROUP_MEMBERS, 1);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let groups = &outcome.manifest.sources["m365"].datasets["groupMembers"];
    assert_eq!(groups.status, DatasetStatus::Failed);
    let reason = groups.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("GroupMember.Read.All"), "{reason}");
    let facts = normalise(&outcome.run_dir).expect("facts");
    assert_eq!(
        facts.availability(FactKind::MfaEnforcement),
        Availability::Complete
    );
    assert!(matches!(
        facts.availability(FactKind::GroupMembers),
        Availability::Incomplete(_)
    ));

    // The synthetic policy requires MFA of all users, except the first user
    // by name and the members of the "MFA exclusions" group.
    let excluded = "m365:00000000-0000-4000-8000-000000000000";
    let members: BTreeSet<&str> = facts
        .users
        .iter()
        .filter(|u| u.enabled && u.user_type == auditpack::facts::UserType::Member)
        .map(|u| u.id.as_str())
        .collect();
    assert!(members.contains(excluded));
    let check = outcome
        .results
        .iter()
        .flat_map(|c| c.checks.iter())
        .find(|c| c.check == "mfa_enforced")
        .expect("mfa_enforced is judged");
    assert_eq!(
        check.outcome,
        auditpack::checks::Verdict::Fail,
        "{}",
        check.summary
    );
    let failing: Vec<&str> = check.failing.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(failing, [excluded]);
    assert!(check.failing[0]
        .detail
        .starts_with("no enabled policy requiring MFA covers this account"));
    let unproven: BTreeSet<&str> = check.unproven.iter().map(|s| s.id.as_str()).collect();
    let mut rest = members.clone();
    rest.remove(excluded);
    assert_eq!(unproven, rest);
    assert!(check.unproven.iter().all(|s| s
        .detail
        .contains("names group(s) 10000000-0000-4000-8000-000000000001")));
    assert!(
        check.summary.contains("GroupMember.Read.All"),
        "{}",
        check.summary
    );
}
