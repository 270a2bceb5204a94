//! `security_incidents_handled`: every high and medium severity security
//! incident was resolved, or is in active handling, within the SLA days set
//! for its severity; the mean time to resolve per severity is reported.
//!
//! **What it tests.** Each incident of the incident queue (Microsoft Defender
//! XDR through Graph `security/incidents`) with severity high or medium,
//! against `incident_high_sla_days` or `incident_medium_sla_days`:
//! a resolved incident passes when it was resolved within the SLA of its
//! creation and fails when its alerts show it was resolved later; an open
//! incident passes while younger than the SLA, and past it only when it is
//! in active handling (status in progress or awaiting action, assigned to
//! someone, and updated within the last SLA days); otherwise it fails.
//! Unproven, listed apart: an incident whose severity or status is not a
//! documented value (recorded raw, never guessed), one without a creation
//! time or created in the future, and a resolved one past the SLA whose
//! resolution time is known only as an upper bound (its last update, no
//! alert resolution times). Merged (redirected) incidents are judged through
//! the incident they were merged into; low and informational ones only count
//! toward the figures. The figures give, per severity, the mean time to
//! resolve (hours, over incidents with an exact resolution time), how many
//! were resolved and how many are open.
//!
//! **Why it matters.** An incident queue nobody works is the classic
//! co-managed gap: the MSP assumes internal IT looks at the portal, internal
//! IT assumes the MSP does. HIPAA asks that incidents be responded to and
//! mitigated, SOC 2 that they be evaluated and handled by a defined
//! programme, PCI DSS that monitoring alerts be acted on. An empty queue
//! with a complete collection passes: the queue is the one the service fills
//! from every Defender product the tenant runs, so zero incidents means none
//! were raised (a failed or refused collection is never read as zero).
//!
//! **Evidence.** The security incidents of each Microsoft 365 source, with
//! their alerts (`$expand=alerts`, for resolution times).
//!
//! **How to fix.** Open each listed incident in the Microsoft Defender
//! portal, assign it to the responsible party, and work it to resolution with
//! a classification; agree the SLA days per severity with the MSP and write
//! them into `[thresholds]`.

use std::collections::BTreeMap;

use chrono::Duration;

use super::{days_between, Check, CheckInput, Figure, Outcome, Subject, Threshold};
use crate::facts::{FactKind, Incident, IncidentSeverity, IncidentStatus};

pub(super) const CHECK: Check = Check {
    id: "security_incidents_handled",
    source: include_str!("security_incidents_handled.rs"),
    title: "High and medium security incidents handled within their SLA",
    thresholds: &[Threshold::IncidentHighSlaDays, Threshold::IncidentMediumSlaDays],
    remediation: "Assign each listed incident in the Microsoft Defender portal and work it to resolution; agree SLA days per severity with the MSP.",
    needs: &[FactKind::SecurityIncidents],
    per_subject: &[],
    run,
};

/// Clock skew tolerated before a time counts as in the future.
const SKEW_MINUTES: i64 = 60;

/// Per-severity tallies for the figures.
#[derive(Default)]
struct Tally {
    resolved: usize,
    open: usize,
    timed: usize,
    hours: f64,
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let as_of = input.as_of;
    let future = as_of + Duration::minutes(SKEW_MINUTES);
    let mut tallies: BTreeMap<IncidentSeverity, Tally> = BTreeMap::new();
    let (mut failing, mut unproven, mut handling) = (Vec::new(), Vec::new(), 0usize);
    let mut evaluated = 0;
    for inc in &input.facts.incidents {
        if inc.status == IncidentStatus::Redirected {
            continue;
        }
        let tally = tallies.entry(inc.severity).or_default();
        if inc.status == IncidentStatus::Resolved {
            tally.resolved += 1;
            if let (Some(c), Some(r)) = (inc.created, inc.resolved) {
                if c <= r && r <= future {
                    tally.timed += 1;
                    tally.hours += (r - c).num_seconds() as f64 / 3600.0;
                }
            }
        } else if inc.status.is_open() {
            tally.open += 1;
        }
        let sla = match inc.severity {
            IncidentSeverity::High => input.limits.incident_high_sla_days,
            IncidentSeverity::Medium => input.limits.incident_medium_sla_days,
            IncidentSeverity::Low | IncidentSeverity::Informational => continue,
            IncidentSeverity::Unknown => {
                evaluated += 1;
                unproven.push(subject(
                    inc,
                    format!(
                        "severity {} is not a documented value, so whether an SLA applies cannot be told",
                        raw(&inc.severity_raw)
                    ),
                ));
                continue;
            }
        };
        evaluated += 1;
        let sla_i = i64::from(sla);
        let sev = inc.severity.as_str();
        let Some(created) = inc.created else {
            unproven.push(subject(
                inc,
                format!("{sev} incident without a creation time"),
            ));
            continue;
        };
        if created > future {
            unproven.push(subject(
                inc,
                format!(
                    "{sev} incident created in the future ({}): a clock or data error",
                    created.format("%Y-%m-%d %H:%M UTC")
                ),
            ));
            continue;
        }
        let age = days_between(created, as_of);
        match inc.status {
            IncidentStatus::Resolved => {
                let exact = inc.resolved.filter(|r| *r >= created && *r <= future);
                let bound = inc.last_update.filter(|u| *u >= created && *u <= future);
                match (exact, bound) {
                    (Some(r), _) => {
                        let took = days_between(created, r);
                        if (r - created) > Duration::days(sla_i) {
                            failing.push(subject(
                                inc,
                                format!("{sev} incident resolved {took} days after it was created (SLA {sla} days)"),
                            ));
                        }
                    }
                    (None, Some(u)) if (u - created) <= Duration::days(sla_i) => {}
                    (None, Some(u)) => unproven.push(subject(
                        inc,
                        format!(
                            "{sev} incident resolved, but when is not recorded: no alert resolution time, and its last update came {} days after creation (SLA {sla} days)",
                            days_between(created, u)
                        ),
                    )),
                    (None, None) => unproven.push(subject(
                        inc,
                        format!("{sev} incident resolved with no resolution or update time"),
                    )),
                }
            }
            status if status.is_open() => {
                if (as_of - created) <= Duration::days(sla_i) {
                    continue;
                }
                let assigned = inc
                    .assigned_to
                    .as_deref()
                    .is_some_and(|a| !a.trim().is_empty());
                let updated = inc.last_update.filter(|u| *u <= future);
                let recent = updated.is_some_and(|u| (as_of - u) <= Duration::days(sla_i));
                let working = matches!(
                    status,
                    IncidentStatus::InProgress | IncidentStatus::AwaitingAction
                );
                if working && assigned && recent {
                    handling += 1;
                    continue;
                }
                let mut why = vec![format!("status {}", raw(&inc.status_raw))];
                if !assigned {
                    why.push("unassigned".into());
                }
                match updated {
                    Some(u) => why.push(format!(
                        "last updated {} days ago",
                        days_between(u, as_of)
                    )),
                    None => why.push("no update time".into()),
                }
                failing.push(subject(
                    inc,
                    format!(
                        "{sev} incident open {age} days, past its SLA of {sla} days and not in active handling ({})",
                        why.join(", ")
                    ),
                ));
            }
            _ => unproven.push(subject(
                inc,
                format!(
                    "{sev} incident with status {}, not a documented value: whether it is open cannot be told",
                    raw(&inc.status_raw)
                ),
            )),
        }
    }
    let figures = figures(&tallies);
    let total = input
        .facts
        .incidents
        .iter()
        .filter(|i| i.status != IncidentStatus::Redirected)
        .count();
    let mut out = Outcome::judge_all(evaluated, failing, unproven, "high and medium incidents");
    if evaluated == 0 {
        out.summary = format!(
            "no high or medium severity incidents among the {total} incident(s) the queue holds"
        );
    }
    if handling > 0 {
        out = out.note(&format!(
            "{handling} incident(s) past their SLA are in active handling (assigned, in progress, recently updated)"
        ));
    }
    let mttr: Vec<String> = IncidentSeverity::KNOWN
        .iter()
        .filter_map(|(sev, name)| {
            let t = tallies.get(sev)?;
            (t.timed > 0).then(|| {
                format!(
                    "{name} {:.1} h over {} incident(s)",
                    t.hours / t.timed as f64,
                    t.timed
                )
            })
        })
        .collect();
    if !mttr.is_empty() {
        out = out.note(&format!("mean time to resolve: {}", mttr.join(", ")));
    }
    out.with_figures(figures)
}

fn figures(tallies: &BTreeMap<IncidentSeverity, Tally>) -> Vec<Figure> {
    let mut out = Vec::new();
    for (sev, name) in IncidentSeverity::KNOWN {
        let Some(t) = tallies.get(&sev) else { continue };
        if t.timed > 0 {
            let mean = t.hours / t.timed as f64;
            out.push(Figure {
                name: format!("mean_time_to_resolve.{name}"),
                value: (mean * 10.0).round() / 10.0,
                unit: "hours".into(),
            });
        }
        out.push(Figure {
            name: format!("resolved.{name}"),
            value: t.resolved as f64,
            unit: "incidents".into(),
        });
        out.push(Figure {
            name: format!("open.{name}"),
            value: t.open as f64,
            unit: "incidents".into(),
        });
    }
    out
}

fn raw(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("`{}`", s.escape_debug()),
        None => "(absent)".into(),
    }
}

fn subject(inc: &Incident, detail: String) -> Subject {
    Subject {
        id: inc.id.clone(),
        name: inc.name.clone(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{as_of, complete, days_ago, ids, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Facts, Provenance};
    use crate::run::DatasetStatus;

    fn inc(
        id: &str,
        severity: IncidentSeverity,
        status: IncidentStatus,
        created_days_ago: i64,
    ) -> Incident {
        Incident {
            id: format!("m365:{id}"),
            name: format!("Incident {id}"),
            source: "m365".into(),
            severity,
            severity_raw: Some(severity.as_str().into()),
            status,
            status_raw: Some(format!("{status:?}")),
            created: Some(days_ago(created_days_ago)),
            last_update: Some(days_ago(created_days_ago)),
            resolved: None,
            assigned_to: None,
            classification: None,
            determination: None,
            redirected_to: None,
            alerts: Some(1),
        }
    }

    fn resolved_after(mut i: Incident, days: i64) -> Incident {
        let r = i.created.map(|c| c + Duration::days(days));
        i.resolved = r;
        i.last_update = r;
        i
    }

    fn judge(incidents: Vec<Incident>) -> Outcome {
        let facts = complete(
            Facts {
                incidents,
                ..Facts::default()
            },
            &[FactKind::SecurityIncidents],
        );
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    use IncidentSeverity::{High, Informational, Low, Medium};
    use IncidentStatus::{Active, AwaitingAction, InProgress, Redirected, Resolved};

    #[test]
    fn table() {
        let assigned = |mut i: Incident| {
            i.assigned_to = Some("soc@msp.example".into());
            i
        };
        let updated = |mut i: Incident, days: i64| {
            i.last_update = Some(days_ago(days));
            i
        };
        let mut unknown_status = inc("u1", High, IncidentStatus::Unknown, 20);
        unknown_status.status_raw = Some("unknownFutureValue".into());
        let mut unknown_sev = inc("u2", IncidentSeverity::Unknown, Active, 20);
        unknown_sev.severity_raw = Some("Critical\u{1b}[31m".into());
        let mut future = inc("u3", High, Active, 0);
        future.created = Some(as_of() + Duration::days(3));
        let mut no_time = inc("u4", Medium, Active, 0);
        no_time.created = None;
        let mut bound_only = inc("u5", High, Resolved, 30);
        bound_only.last_update = Some(days_ago(5));
        let mut bound_in_sla = inc("p8", High, Resolved, 30);
        bound_in_sla.last_update = Some(days_ago(28));
        // (incident, expected: "pass" | "fail" | "unproven")
        let cases: Vec<(Incident, &str)> = vec![
            (inc("p1", High, Active, 3), "pass"),
            (inc("f1", High, Active, 8), "fail"),
            (inc("p2", Medium, Active, 29), "pass"),
            (inc("f2", Medium, Active, 31), "fail"),
            (resolved_after(inc("p3", High, Resolved, 40), 6), "pass"),
            (resolved_after(inc("f3", High, Resolved, 40), 9), "fail"),
            (resolved_after(inc("p4", Medium, Resolved, 90), 30), "pass"),
            (
                updated(assigned(inc("p5", High, InProgress, 20)), 2),
                "pass",
            ),
            (
                updated(assigned(inc("p6", High, AwaitingAction, 20)), 2),
                "pass",
            ),
            (updated(inc("f4", High, InProgress, 20), 2), "fail"),
            (
                updated(assigned(inc("f5", High, InProgress, 20)), 10),
                "fail",
            ),
            (assigned(inc("f6", High, Active, 20)), "fail"),
            (inc("x1", Low, Active, 300), "pass"),
            (inc("x2", Informational, Active, 300), "pass"),
            (inc("x3", High, Redirected, 300), "pass"),
            (unknown_status, "unproven"),
            (unknown_sev, "unproven"),
            (future, "unproven"),
            (no_time, "unproven"),
            (bound_only, "unproven"),
            (bound_in_sla, "pass"),
        ];
        for (incident, expected) in cases {
            let id = incident.id.clone();
            let out = judge(vec![incident]);
            let got = if !out.failing.is_empty() {
                "fail"
            } else if !out.unproven.is_empty() {
                "unproven"
            } else {
                "pass"
            };
            assert_eq!(got, expected, "{id}: {}", out.summary);
        }
    }

    #[test]
    fn thresholds_come_from_limits() {
        let limits = Limits {
            incident_high_sla_days: 1,
            incident_medium_sla_days: 2,
            ..Limits::DEFAULT
        };
        let facts = complete(
            Facts {
                incidents: vec![inc("a", High, Active, 2), inc("b", Medium, Active, 2)],
                ..Facts::default()
            },
            &[FactKind::SecurityIncidents],
        );
        let out = run_with(&CHECK, &facts, &limits);
        assert_eq!(ids(&out), vec!["m365:a"]);
        let limits = Limits {
            incident_medium_sla_days: 1,
            ..limits
        };
        let out = run_with(&CHECK, &facts, &limits);
        assert_eq!(ids(&out), vec!["m365:a", "m365:b"]);
    }

    #[test]
    fn an_empty_complete_queue_passes_and_says_so() {
        let out = judge(vec![inc("l", Low, Resolved, 3)]);
        assert_eq!(out.verdict, Verdict::Pass);
        assert!(
            out.summary.starts_with("no high or medium"),
            "{}",
            out.summary
        );
        assert_eq!(judge(vec![]).verdict, Verdict::Pass);
    }

    #[test]
    fn missing_or_partial_queue_is_never_a_pass() {
        let out = run_with(&CHECK, &Facts::default(), &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        let mut facts = Facts::default();
        facts.provide(
            FactKind::SecurityIncidents,
            Provenance {
                source: "m365".into(),
                dataset: "securityIncidents".into(),
                status: DatasetStatus::Failed,
                reason: Some("HTTP 403".into()),
                evidence: vec![],
            },
        );
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(out.summary.contains("HTTP 403"), "{}", out.summary);
    }

    #[test]
    fn mean_time_to_resolve_per_severity() {
        let out = judge(vec![
            resolved_after(inc("a", High, Resolved, 40), 1),
            resolved_after(inc("b", High, Resolved, 40), 2),
            resolved_after(inc("c", Medium, Resolved, 40), 10),
            inc("d", Medium, Active, 1),
        ]);
        let get = |name: &str| out.figures.iter().find(|f| f.name == name).map(|f| f.value);
        assert_eq!(get("mean_time_to_resolve.high"), Some(36.0));
        assert_eq!(get("mean_time_to_resolve.medium"), Some(240.0));
        assert_eq!(get("resolved.high"), Some(2.0));
        assert_eq!(get("open.medium"), Some(1.0));
        assert_eq!(get("mean_time_to_resolve.low"), None);
        assert!(out.summary.contains("mean time to resolve: high 36.0 h"));
    }

    #[test]
    fn findings_snapshot() {
        let mut hostile = inc("h1", High, Active, 12);
        hostile.name = "<script>alert(1)</script>\u{202e}gnp.exe".into();
        let out = judge(vec![
            hostile,
            resolved_after(inc("r1", High, Resolved, 40), 2),
            resolved_after(inc("r2", Medium, Resolved, 60), 45),
            inc("o1", Medium, Active, 5),
            inc("x1", Low, Active, 100),
        ]);
        insta::assert_json_snapshot!(out);
    }
}
