//! Security incidents of Microsoft Defender XDR through Microsoft Graph:
//! collection (`GET /v1.0/security/incidents?$expand=alerts`, paged by
//! `@odata.nextLink`) and normalising into [`Incident`] facts.
//!
//! What was relied on (Microsoft Graph v1.0 reference, "incident resource
//! type", "List incidents", "alert resource type"; "Microsoft Graph
//! service-specific throttling limits"):
//! - permission SecurityIncident.Read.All (application); a 403 fails this
//!   dataset alone, so only the incident check becomes inconclusive;
//! - the list holds the incidents within the tenant's retention, newest
//!   first; it supports `$expand=alerts` and pages by `@odata.nextLink`;
//! - fields `id`, `displayName`, `severity` (`unknown`, `informational`,
//!   `low`, `medium`, `high`, `unknownFutureValue`), `status` (`active`,
//!   `resolved`, `inProgress`, `redirected`, `unknownFutureValue`,
//!   `awaitingAction`; the last only with `Prefer:
//!   include-unknown-enum-members`, so without it that status arrives as
//!   `unknownFutureValue` and is recorded as unknown), `createdDateTime`,
//!   `lastUpdateDateTime`, `assignedTo`, `classification`, `determination`,
//!   `redirectIncidentId`; alerts carry `status` (`new`, `inProgress`,
//!   `resolved`) and `resolvedDateTime`;
//! - Graph's own examples spell enumeration members both `medium` and
//!   `Medium`, so members are matched without regard to case;
//! - `/security` requests are limited to 150 per minute per app and tenant.

use std::time::Duration;

use serde_json::Value;

use super::dataset;
use super::fetch::{Ctx, Outcome};
use super::graph::value_array;
use crate::collect::paging::ODataPager;
use crate::collect::ratelimit::RateLimiter;
use crate::facts::{
    parse_time, str_field, Documented, FactKind, Facts, Incident, IncidentSeverity, IncidentStatus,
    SourceEvidence,
};

/// What a 403 on the incidents most likely means.
const FORBIDDEN: &str = "the app needs SecurityIncident.Read.All, and the tenant Microsoft Defender XDR (a Microsoft 365 Defender, Defender for Endpoint, Office 365 or Identity licence)";

/// Documented `alertClassification` members.
const CLASSIFICATIONS: &[&str] = &[
    "unknown",
    "falsePositive",
    "truePositive",
    "informationalExpectedActivity",
    "unknownFutureValue",
];

/// Documented `alertDetermination` members (the incident and alert pages
/// list slightly different sets; this is their union).
const DETERMINATIONS: &[&str] = &[
    "unknown",
    "apt",
    "malware",
    "securityPersonnel",
    "securityTesting",
    "unwantedSoftware",
    "other",
    "multiStagedAttack",
    "compromisedUser",
    "compromisedAccount",
    "phishing",
    "maliciousUserActivity",
    "clean",
    "notMalicious",
    "insufficientData",
    "notEnoughDataToValidate",
    "confirmedUserActivity",
    "confirmedActivity",
    "lineOfBusinessApplication",
    "unknownFutureValue",
];

impl Ctx<'_> {
    /// The incidents with their alerts, at the `/security` limit.
    pub(super) async fn incidents(&self) -> Vec<Outcome> {
        let g = &self.me.graph;
        let security = RateLimiter::new(150, Duration::from_secs(60));
        vec![
            self.simple(
                dataset::SECURITY_INCIDENTS,
                format!("{g}/v1.0/security/incidents?$expand=alerts"),
                Box::new(ODataPager),
                &security,
                FORBIDDEN,
            )
            .await,
        ]
    }
}

fn severity(raw: Option<&str>) -> IncidentSeverity {
    let Some(raw) = raw else {
        return IncidentSeverity::Unknown;
    };
    IncidentSeverity::KNOWN
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(raw))
        .map_or(IncidentSeverity::Unknown, |(s, _)| *s)
}

fn status(raw: Option<&str>) -> IncidentStatus {
    let Some(raw) = raw else {
        return IncidentStatus::Unknown;
    };
    [
        ("active", IncidentStatus::Active),
        ("inProgress", IncidentStatus::InProgress),
        ("awaitingAction", IncidentStatus::AwaitingAction),
        ("resolved", IncidentStatus::Resolved),
        ("redirected", IncidentStatus::Redirected),
    ]
    .iter()
    .find(|(name, _)| name.eq_ignore_ascii_case(raw))
    .map_or(IncidentStatus::Unknown, |(_, s)| *s)
}

/// A string or number field as text (`redirectIncidentId` is a string in
/// Graph and a number in the older Defender API).
fn text(record: &Value, key: &str) -> Option<String> {
    match record.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The exact resolution time of a resolved incident: the latest
/// `resolvedDateTime` of its alerts, when it has alerts and every one is
/// resolved with a time.
fn resolved_at(alerts: &[Value]) -> Option<chrono::DateTime<chrono::Utc>> {
    if alerts.is_empty() {
        return None;
    }
    let mut latest = None;
    for a in alerts {
        let done = str_field(a, "status").is_some_and(|s| s.eq_ignore_ascii_case("resolved"));
        let at = parse_time(a.get("resolvedDateTime"));
        match (done, at) {
            (true, Some(t)) => latest = latest.max(Some(t)),
            _ => return None,
        }
    }
    latest
}

/// Incidents to facts. Runs only when the source reported the dataset (a
/// run folder from before incidents were collected has no such facts, so
/// the check says no source collects them).
pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    if !src
        .report
        .datasets
        .contains_key(dataset::SECURITY_INCIDENTS)
    {
        return;
    }
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (path, r) in src.records(dataset::SECURITY_INCIDENTS, value_array, &mut problems) {
        let Some(id) = text(r, "id") else {
            problems.push(format!("{path}: incident without id"));
            continue;
        };
        let alerts = r.get("alerts").and_then(Value::as_array);
        let state = status(str_field(r, "status"));
        out.push(Incident {
            id: format!("{}:incident:{id}", src.name),
            name: str_field(r, "displayName")
                .filter(|n| !n.is_empty())
                .unwrap_or(&id)
                .to_owned(),
            source: src.name.to_owned(),
            severity: severity(str_field(r, "severity")),
            severity_raw: str_field(r, "severity").map(str::to_owned),
            status: state,
            status_raw: str_field(r, "status").map(str::to_owned),
            created: parse_time(r.get("createdDateTime")),
            last_update: parse_time(r.get("lastUpdateDateTime")),
            resolved: match (state, alerts) {
                (IncidentStatus::Resolved, Some(a)) => resolved_at(a),
                _ => None,
            },
            assigned_to: str_field(r, "assignedTo")
                .filter(|a| !a.trim().is_empty())
                .map(str::to_owned),
            classification: str_field(r, "classification")
                .map(|c| Documented::read(c, CLASSIFICATIONS)),
            determination: str_field(r, "determination")
                .map(|d| Documented::read(d, DETERMINATIONS)),
            redirected_to: text(r, "redirectIncidentId"),
            alerts: alerts.map(Vec::len),
        });
    }
    // The same incident twice (a page repeated by a retried request) counts once.
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    facts.incidents.extend(out);
    facts.provide(
        FactKind::SecurityIncidents,
        src.provenance(dataset::SECURITY_INCIDENTS, &problems),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn enumerations_match_without_case_and_keep_unknowns() {
        assert_eq!(severity(Some("High")), IncidentSeverity::High);
        assert_eq!(severity(Some("medium")), IncidentSeverity::Medium);
        assert_eq!(severity(Some("critical")), IncidentSeverity::Unknown);
        assert_eq!(
            severity(Some("unknownFutureValue")),
            IncidentSeverity::Unknown
        );
        assert_eq!(severity(None), IncidentSeverity::Unknown);
        assert_eq!(status(Some("InProgress")), IncidentStatus::InProgress);
        assert_eq!(
            status(Some("awaitingaction")),
            IncidentStatus::AwaitingAction
        );
        assert_eq!(status(Some("closed")), IncidentStatus::Unknown);
        let c = Documented::read("TruePositive", CLASSIFICATIONS);
        assert_eq!(c.member.as_deref(), Some("truePositive"));
        assert_eq!(c.raw, "TruePositive");
        assert_eq!(Documented::read("nope", DETERMINATIONS).member, None);
    }

    #[test]
    fn resolution_time_needs_every_alert_resolved() {
        let a = |status: &str, at: Option<&str>| json!({"status": status, "resolvedDateTime": at});
        let t1 = "2026-05-01T10:00:00Z";
        let t2 = "2026-05-02T10:00:00Z";
        assert_eq!(
            resolved_at(&[a("resolved", Some(t1)), a("Resolved", Some(t2))]),
            parse_time(Some(&json!(t2)))
        );
        assert_eq!(
            resolved_at(&[a("resolved", Some(t1)), a("new", None)]),
            None
        );
        assert_eq!(resolved_at(&[a("resolved", None)]), None);
        assert_eq!(resolved_at(&[]), None);
        assert_eq!(text(&json!({"x": 12}), "x").as_deref(), Some("12"));
        assert_eq!(text(&json!({"x": null}), "x"), None);
    }
}
