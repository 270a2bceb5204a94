//! Microsoft 365 security incidents against the simulator: paging with
//! `$expand=alerts`, faults, a 403 for the missing permission, a rejected
//! secret, partial data, hostile names, future times and values outside the
//! documented enumerations, and the `security_incidents_handled` check on
//! the demo organisation's queue.

use crate::common;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

use auditpack::checks::Verdict;
use auditpack::evaluate::CheckResult;
use auditpack::evidence::{DatasetStatus, SourceStatus};
use auditpack::facts::{Availability, FactKind, IncidentSeverity, IncidentStatus};
use auditpack::pipeline::RunOutcome;
use auditpack::simulate::{incident_paths, Fault, FaultKind, SimOptions, Tenant};
use auditpack::sources::normalise;
use common::{all_files, graph_value, stored_records, Harness, FAST_M365_LIMITS};

const CHECK: &str = "security_incidents_handled";
const DATASET: &str = "securityIncidents";

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An incident in Graph's shape, created `age` days ago, with one alert
/// (resolved `resolved_after` days after creation, when given).
fn incident(
    id: usize,
    severity: &str,
    status: &str,
    age: i64,
    resolved_after: Option<i64>,
) -> Value {
    let now = Utc::now();
    let created = now - Duration::days(age);
    let resolved = resolved_after.map(|d| created + Duration::days(d));
    json!({
        "@odata.type": "#microsoft.graph.security.incident",
        "id": id.to_string(),
        "displayName": format!("Incident {id}"),
        "createdDateTime": at(created),
        "lastUpdateDateTime": at(resolved.unwrap_or(created)),
        "assignedTo": null,
        "classification": "truePositive",
        "determination": "malware",
        "status": status,
        "severity": severity,
        "redirectIncidentId": null,
        "alerts": [{
            "@odata.type": "#microsoft.graph.security.alert",
            "id": format!("alert-{id}"),
            "incidentId": id.to_string(),
            "status": if resolved.is_some() { "resolved" } else { "new" },
            "severity": severity,
            "createdDateTime": at(created),
            "resolvedDateTime": resolved.map(at),
        }]
    })
}

fn tenant(incidents: Vec<Value>) -> Tenant {
    let mut t = Tenant::synthetic(4, 2, Utc::now());
    t.graph.security_incidents = incidents;
    t
}

fn harness(t: Tenant, page: usize) -> Harness {
    Harness::new(
        t,
        SimOptions {
            max_page_size: page,
            ..SimOptions::default()
        },
    )
}

/// The check's result under SOC 2 CC7.4.
fn check_result(outcome: &RunOutcome) -> CheckResult {
    outcome
        .results
        .iter()
        .filter(|c| c.framework == "soc2" && c.control_id == "CC7.4")
        .flat_map(|c| c.checks.iter())
        .find(|c| c.check == CHECK)
        .cloned()
        .expect("CC7.4 runs the incident check")
}

fn figure(result: &CheckResult, name: &str) -> Option<f64> {
    result
        .figures
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value)
}

#[test]
fn incidents_page_to_the_end_with_their_alerts_and_match_the_simulator() {
    let records: Vec<Value> = (1..=23)
        .map(|i| incident(i, "medium", "resolved", 40, Some(2)))
        .collect();
    let h = harness(tenant(records.clone()), 5);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let d = &outcome.manifest.sources["m365"].datasets[DATASET];
    assert_eq!(d.status, DatasetStatus::Complete, "{:?}", d.reason);
    assert_eq!((d.pages, d.records), (5, 23));
    let stored = stored_records(&outcome.run_dir, "m365", DATASET, graph_value);
    assert_eq!(stored, records, "every incident with its alerts, in order");
    let facts = normalise(&outcome.run_dir).expect("facts");
    assert_eq!(facts.incidents.len(), 23);
    assert!(facts.incidents.iter().all(|i| i.alerts == Some(1)
        && i.resolved.is_some()
        && i.id.starts_with("m365:incident:")));
    let result = check_result(&outcome);
    assert_eq!(result.outcome, Verdict::Pass, "{}", result.summary);
    assert_eq!(figure(&result, "mean_time_to_resolve.medium"), Some(48.0));
    assert_eq!(figure(&result, "resolved.medium"), Some(23.0));
}

#[test]
fn the_demo_queue_fails_on_the_open_high_incident_and_reports_the_time_to_resolve() {
    let h = harness(Tenant::demo(Utc::now()).expect("demo"), 3);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    assert_eq!(
        outcome.manifest.sources["m365"].status,
        SourceStatus::Complete
    );
    let result = check_result(&outcome);
    assert_eq!(result.outcome, Verdict::Fail, "{}", result.summary);
    let failing: Vec<&str> = result.failing.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(failing, ["m365:incident:4093"]);
    assert!(
        result.failing[0].detail.contains("open 12 days")
            && result.failing[0].detail.contains("unassigned"),
        "{}",
        result.failing[0].detail
    );
    assert!(result.unproven.is_empty(), "{:?}", result.unproven);
    // 3988: resolved a day after creation; 3950: three days.
    assert_eq!(figure(&result, "mean_time_to_resolve.high"), Some(24.0));
    assert_eq!(figure(&result, "mean_time_to_resolve.medium"), Some(72.0));
    assert_eq!(figure(&result, "open.high"), Some(1.0));
    assert!(
        result.summary.contains("in active handling"),
        "{}",
        result.summary
    );
    for (framework, control) in [
        ("hipaa", "164.308(a)(6)(ii)"),
        ("soc2", "CC7.3"),
        ("pci-dss", "12.10.5"),
    ] {
        let c = outcome
            .results
            .iter()
            .find(|c| c.framework == framework && c.control_id == control)
            .expect("control in scope");
        assert!(
            c.checks
                .iter()
                .any(|r| r.check == CHECK && r.outcome == Verdict::Fail),
            "{framework}:{control}"
        );
    }

    // The SLA days come from `[thresholds]`: at 20 days the open incident is
    // still within its SLA, and the medium one past 30 days is in active
    // handling (assigned, in progress, updated two days ago).
    let h = harness(Tenant::demo(Utc::now()).expect("demo"), 3);
    let config = h.m365_config(
        None,
        &format!("{FAST_M365_LIMITS}\n[thresholds]\nincident_high_sla_days = 20\n"),
    );
    let outcome = h.run(&config);
    let result = check_result(&outcome);
    assert_eq!(result.outcome, Verdict::Pass, "{}", result.summary);
}

#[test]
fn a_403_fails_only_the_incidents_and_the_check_is_inconclusive() {
    let h = harness(
        tenant(vec![incident(1, "high", "resolved", 9, Some(1))]),
        10,
    );
    h.sim.add_fault(Fault {
        path: incident_paths::INCIDENTS.into(),
        from_request: 1,
        times: 1000,
        kind: FaultKind::Forbidden,
    });
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let m365 = &outcome.manifest.sources["m365"];
    let d = &m365.datasets[DATASET];
    assert_eq!(d.status, DatasetStatus::Failed);
    let reason = d.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("403") && reason.contains("SecurityIncident.Read.All"),
        "{reason}"
    );
    assert_eq!(
        h.sim.requests(incident_paths::INCIDENTS),
        1,
        "a 403 is not retried"
    );
    let facts = normalise(&outcome.run_dir).expect("facts");
    assert!(matches!(
        facts.availability(FactKind::SecurityIncidents),
        Availability::Incomplete(_)
    ));
    for kind in [
        FactKind::Users,
        FactKind::MfaRegistration,
        FactKind::Devices,
    ] {
        assert_eq!(facts.availability(kind), Availability::Complete, "{kind:?}");
    }
    let result = check_result(&outcome);
    assert_eq!(result.outcome, Verdict::Inconclusive, "{}", result.summary);
    assert!(result.summary.contains("403"), "{}", result.summary);
}

#[test]
fn transient_faults_on_the_incidents_lose_nothing() {
    let records: Vec<Value> = (1..=12)
        .map(|i| incident(i, "high", "resolved", 30, Some(1)))
        .collect();
    // (fault, consecutive requests it hits); an expired token is renewed once.
    for (kind, times) in [
        (FaultKind::TooManyRequests(None), 2),
        (FaultKind::Unavailable, 2),
        (FaultKind::TruncatedBody, 2),
        (FaultKind::TokenExpired, 1),
    ] {
        let h = harness(tenant(records.clone()), 5);
        h.sim.add_fault(Fault {
            path: incident_paths::INCIDENTS.into(),
            from_request: 2,
            times,
            kind: kind.clone(),
        });
        let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
        let d = &outcome.manifest.sources["m365"].datasets[DATASET];
        assert_eq!(
            d.status,
            DatasetStatus::Complete,
            "{kind:?}: {:?}",
            d.reason
        );
        let stored = stored_records(&outcome.run_dir, "m365", DATASET, graph_value);
        assert_eq!(stored, records, "{kind:?}");
        assert!(
            h.sim.requests(incident_paths::INCIDENTS) > 3,
            "{kind:?}: retried"
        );
        assert_eq!(check_result(&outcome).outcome, Verdict::Pass, "{kind:?}");
    }
}

#[test]
fn a_page_that_never_arrives_makes_the_check_inconclusive_not_a_pass() {
    // Every incident on the first page is handled; the second page (which
    // could hold an open high incident) is cut off on every attempt.
    let records: Vec<Value> = (1..=8)
        .map(|i| incident(i, "high", "resolved", 30, Some(1)))
        .collect();
    let h = harness(tenant(records), 5);
    h.sim.add_fault(Fault {
        path: incident_paths::INCIDENTS.into(),
        from_request: 2,
        times: 1000,
        kind: FaultKind::TruncatedBody,
    });
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let d = &outcome.manifest.sources["m365"].datasets[DATASET];
    assert_eq!(d.status, DatasetStatus::Partial, "{:?}", d.reason);
    let result = check_result(&outcome);
    assert_eq!(result.outcome, Verdict::Inconclusive, "{}", result.summary);
}

#[test]
fn a_rejected_secret_fails_the_source_without_leaking_it() {
    const CANARY: &str = "canary-incidents-7f3a91c2";
    let h = harness(tenant(vec![]), 10);
    let outcome = h.run(&h.m365_config(Some(CANARY), FAST_M365_LIMITS));
    assert_eq!(
        outcome.manifest.sources["m365"].status,
        SourceStatus::Failed
    );
    assert_eq!(h.sim.requests(incident_paths::INCIDENTS), 0);
    let result = check_result(&outcome);
    assert_eq!(result.outcome, Verdict::Inconclusive, "{}", result.summary);
    for dir in [&outcome.run_dir, &outcome.package] {
        for file in all_files(dir) {
            let bytes = std::fs::read(&file).expect("read");
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "{} holds the secret",
                file.display()
            );
        }
    }
}

#[test]
fn hostile_names_future_times_and_undocumented_values_are_kept_raw_and_never_pass() {
    let mut hostile = incident(1, "High", "Active", 20, None);
    hostile["displayName"] = json!("<script>alert(1)</script>\u{1b}[31m\u{202e}fdp.exe");
    let mut future = incident(2, "high", "active", 0, None);
    future["createdDateTime"] = json!(at(Utc::now() + Duration::days(30)));
    let critical = incident(3, "critical", "active", 2, None);
    let closed = incident(4, "medium", "closed", 2, None);
    let mut odd = incident(5, "low", "resolved", 2, Some(1));
    odd["classification"] = json!("maybePositive");
    let h = harness(tenant(vec![hostile, future, critical, closed, odd]), 10);
    let outcome = h.run(&h.m365_config(None, FAST_M365_LIMITS));
    let facts = normalise(&outcome.run_dir).expect("facts");
    let by_id = |id: &str| {
        facts
            .incidents
            .iter()
            .find(|i| i.id == format!("m365:incident:{id}"))
            .expect("incident")
    };
    assert_eq!(by_id("1").severity, IncidentSeverity::High);
    assert_eq!(by_id("1").status, IncidentStatus::Active);
    assert_eq!(by_id("3").severity, IncidentSeverity::Unknown);
    assert_eq!(by_id("3").severity_raw.as_deref(), Some("critical"));
    assert_eq!(by_id("4").status, IncidentStatus::Unknown);
    assert_eq!(by_id("4").status_raw.as_deref(), Some("closed"));
    let c = by_id("5").classification.clone().expect("classification");
    assert_eq!((c.member, c.raw.as_str()), (None, "maybePositive"));

    let result = check_result(&outcome);
    assert_eq!(result.outcome, Verdict::Fail, "{}", result.summary);
    let failing: Vec<&str> = result.failing.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(failing, ["m365:incident:1"]);
    let mut unproven: Vec<(&str, &str)> = result
        .unproven
        .iter()
        .map(|s| (s.id.as_str(), s.detail.as_str()))
        .collect();
    unproven.sort();
    assert_eq!(unproven.len(), 3, "{unproven:?}");
    assert!(unproven[0].1.contains("in the future"), "{unproven:?}");
    assert!(unproven[1].1.contains("`critical`"), "{unproven:?}");
    assert!(unproven[2].1.contains("`closed`"), "{unproven:?}");

    let html = std::fs::read_to_string(outcome.run_dir.join("reports/report.html")).expect("html");
    assert!(
        !html.contains("<script>alert(1)"),
        "names are escaped in HTML"
    );
}
