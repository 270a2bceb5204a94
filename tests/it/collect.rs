//! Collection against the simulator: paging, retries, partial data and
//! failed credentials, with the stored evidence compared to what was served.

use crate::common;

use auditpack::evaluate::Status;
use auditpack::evidence::{DatasetStatus, SourceStatus};
use auditpack::simulate::{Fault, FaultKind, SimOptions, Tenant};
use common::{graph_value, stored_records, Harness};

const USERS: &str = "/v1.0/users";
const REGISTRATION: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";

fn tenant(users: usize, devices: usize) -> Tenant {
    Tenant::synthetic(users, devices, chrono::Utc::now())
}

fn paged(users: usize, devices: usize, page: usize) -> Harness {
    Harness::new(
        tenant(users, devices),
        SimOptions {
            max_page_size: page,
            ..SimOptions::default()
        },
    )
}

#[test]
fn every_page_is_stored_exactly_once() {
    // The registration report is limited to 5 requests per 10 s, so it gets
    // five pages here while users (3,500 per 10 s) get 24.
    let mut t = tenant(237, 45);
    t.graph.registrations.truncate(45);
    let h = Harness::new(
        t,
        SimOptions {
            max_page_size: 10,
            ..SimOptions::default()
        },
    );
    let outcome = h.run(&h.config(None));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(m365.status, SourceStatus::Complete, "{:?}", m365.reason);
    assert_eq!(m365.datasets["users"].pages, 24);
    assert_eq!(
        stored_records(&outcome.run_dir, "m365", "users", graph_value),
        h.sim.tenant().graph.users
    );
    assert_eq!(
        stored_records(
            &outcome.run_dir,
            "m365",
            "userRegistrationDetails",
            graph_value
        ),
        h.sim.tenant().graph.registrations
    );
    let devices = stored_records(&outcome.run_dir, "ninja", "devices", |v| v.as_array());
    assert_eq!(devices, h.sim.tenant().ninja.devices);
    let patches = stored_records(&outcome.run_dir, "ninja", "os-patches", |v| {
        v.get("results")?.as_array()
    });
    assert_eq!(patches, h.sim.tenant().ninja.os_patches);
}

#[test]
fn a_429_with_retry_after_mid_paging_is_retried_and_nothing_is_lost() {
    let h = paged(60, 3, 10);
    h.sim.add_fault(Fault {
        path: USERS.into(),
        from_request: 3,
        times: 2,
        kind: FaultKind::TooManyRequests(Some(1)),
    });
    let started = std::time::Instant::now();
    let outcome = h.run(&h.config(None));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After was honoured"
    );
    assert_eq!(
        outcome.manifest.sources["m365"].datasets["users"].status,
        DatasetStatus::Complete
    );
    assert_eq!(h.sim.requests(USERS), 6 + 2);
    assert_eq!(
        stored_records(&outcome.run_dir, "m365", "users", graph_value),
        h.sim.tenant().graph.users
    );
}

#[test]
fn a_retry_after_longer_than_the_policy_stops_the_dataset_instead_of_retrying_early() {
    // The tests' policy waits at most 2 s for a Retry-After.
    let h = paged(60, 3, 10);
    h.sim.add_fault(Fault {
        path: USERS.into(),
        from_request: 3,
        times: 100,
        kind: FaultKind::TooManyRequests(Some(3600)),
    });
    let started = std::time::Instant::now();
    let outcome = h.run(&h.config(None));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "no hour-long wait"
    );
    let m365 = &outcome.manifest.sources["m365"];
    let users = &m365.datasets["users"];
    assert_eq!(users.status, DatasetStatus::Partial, "{users:?}");
    assert_eq!(users.pages, 2);
    let reason = users.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("page 3")
            && reason.contains("HTTP 429")
            && reason.contains("asked to wait 3600 s")
            && reason.contains("not retried"),
        "{reason}"
    );
    assert_eq!(m365.status, SourceStatus::Partial);
    // The throttled page was asked once, not hammered.
    assert_eq!(h.sim.requests(USERS), 3);
}

#[test]
fn bursts_of_503_and_429_without_retry_after_and_truncated_bodies_are_retried() {
    let h = paged(30, 12, 10);
    for (path, kind) in [
        (REGISTRATION, FaultKind::Unavailable),
        (USERS, FaultKind::TooManyRequests(None)),
        ("/v2/devices", FaultKind::TruncatedBody),
        ("/v2/queries/os-patches", FaultKind::GatewayTimeout),
    ] {
        h.sim.add_fault(Fault {
            path: path.into(),
            from_request: 2,
            times: 3,
            kind,
        });
    }
    let outcome = h.run(&h.config(None));
    for source in ["m365", "ninja"] {
        assert_eq!(
            outcome.manifest.sources[source].status,
            SourceStatus::Complete,
            "{source}"
        );
    }
    assert_eq!(
        stored_records(&outcome.run_dir, "m365", "users", graph_value),
        h.sim.tenant().graph.users
    );
    assert_eq!(
        stored_records(&outcome.run_dir, "ninja", "devices", |v| v.as_array()),
        h.sim.tenant().ninja.devices
    );
}

#[test]
fn a_page_that_keeps_failing_makes_the_dataset_partial_and_its_controls_inconclusive() {
    let h = paged(40, 3, 10);
    h.sim.add_fault(Fault {
        path: REGISTRATION.into(),
        from_request: 2,
        times: 1000,
        kind: FaultKind::Unavailable,
    });
    let outcome = h.run(&h.config(None));
    let m365 = &outcome.manifest.sources["m365"];
    let reg = &m365.datasets["userRegistrationDetails"];
    assert_eq!(reg.status, DatasetStatus::Partial);
    assert_eq!(reg.pages, 1);
    assert!(
        reg.reason
            .as_deref()
            .is_some_and(|r| r.contains("page 2") && r.contains("503")),
        "{reg:?}"
    );
    assert_eq!(m365.status, SourceStatus::Partial);

    let by_id = |f: &str, c: &str| {
        outcome
            .results
            .iter()
            .find(|r| r.framework == f && r.control_id == c)
            .expect("control")
    };
    // The control is never a pass; the check that reads the partial report is
    // inconclusive, naming it (other checks under the control may still fail).
    let mfa = by_id("hipaa", "164.312(d)");
    assert_ne!(mfa.status, Status::Pass, "{}", mfa.reason);
    let registered = mfa
        .checks
        .iter()
        .find(|c| c.check == "mfa_registered")
        .expect("mfa_registered judges 164.312(d)");
    assert_eq!(registered.outcome, auditpack::checks::Verdict::Inconclusive);
    assert!(
        registered
            .summary
            .contains("userRegistrationDetails is partial"),
        "{}",
        registered.summary
    );
    assert!(
        mfa.reason.contains("userRegistrationDetails is partial"),
        "{}",
        mfa.reason
    );
    // Controls that need only the RMM are still judged.
    let patches = by_id("pci-dss", "6.3.3");
    assert_eq!(patches.status, Status::Fail, "{}", patches.reason);
}

#[test]
fn a_403_names_the_missing_permission_and_only_its_controls_are_inconclusive() {
    let h = paged(20, 3, 10);
    h.sim.add_fault(Fault {
        path: USERS.into(),
        from_request: 1,
        times: 1000,
        kind: FaultKind::Forbidden,
    });
    let outcome = h.run(&h.config(None));
    let users = &outcome.manifest.sources["m365"].datasets["users"];
    assert_eq!(users.status, DatasetStatus::Failed);
    let reason = users.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("403") && reason.contains("User.Read.All"),
        "{reason}"
    );
    // A 403 is not retried; the users dataset asks once more without
    // signInActivity (which alone needs a licence), and is refused again.
    assert_eq!(h.sim.requests(USERS), 2, "a 403 is not retried");
    let statuses: Vec<Status> = outcome
        .results
        .iter()
        .filter(|r| r.checks.iter().any(|c| c.check == "patch_latency_critical"))
        .map(|r| r.status)
        .collect();
    assert!(statuses.iter().all(|s| *s != Status::Inconclusive));
}

#[test]
fn an_expired_token_is_refreshed_once_and_collection_continues() {
    let h = paged(30, 3, 10);
    h.sim.add_fault(Fault {
        path: USERS.into(),
        from_request: 2,
        times: 1,
        kind: FaultKind::TokenExpired,
    });
    let outcome = h.run(&h.config(None));
    assert_eq!(
        outcome.manifest.sources["m365"].datasets["users"].status,
        DatasetStatus::Complete
    );
    assert_eq!(
        stored_records(&outcome.run_dir, "m365", "users", graph_value),
        h.sim.tenant().graph.users
    );
    assert!(
        h.sim.token_requests() >= 3,
        "graph token refreshed after the 401"
    );
}

#[test]
fn a_wrong_secret_fails_the_source_clearly_without_a_retry_loop() {
    let h = paged(10, 3, 10);
    let canary = "CANARY-wrong-secret-4d2c1b";
    let outcome = h.run(&h.config(Some(canary)));
    let m365 = &outcome.manifest.sources["m365"];
    assert_eq!(m365.status, SourceStatus::Failed);
    let reason = m365.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("rejected the credentials") && reason.contains("invalid_client"),
        "{reason}"
    );
    // One token request per dataset attempt at most, never a loop; NinjaOne adds one.
    assert!(
        h.sim.token_requests() <= 3,
        "token requests: {}",
        h.sim.token_requests()
    );
    assert_eq!(
        outcome.manifest.sources["ninja"].status,
        SourceStatus::Complete
    );
    for file in common::all_files(h.path())
        .iter()
        .filter(|p| !p.ends_with("graph.secret"))
    {
        let bytes = std::fs::read(file).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(canary),
            "{} holds the secret",
            file.display()
        );
    }
}

#[test]
fn secrets_reach_no_evidence_result_or_package() {
    let h = Harness::demo();
    let config = h.config(None);
    let outcome = h.run(&config);
    let secrets = [
        SimOptions::default().credentials.graph_secret,
        SimOptions::default().credentials.ninja_secret,
    ];
    let key = std::fs::read_to_string(h.path().join("key")).expect("key");
    let key_body: String = key.lines().nth(2).unwrap_or_default().to_owned();
    for file in common::all_files(h.path().join("store").as_path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).expect("read")).into_owned();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{} holds a secret",
                file.display()
            );
        }
        assert!(
            !text.contains("sim-"),
            "{} holds an access token",
            file.display()
        );
        assert!(
            !text.contains(&key_body),
            "{} holds the private key",
            file.display()
        );
    }
    assert!(outcome.package.exists());
}
