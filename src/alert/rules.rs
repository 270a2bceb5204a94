//! The rules: what in a run is worth telling someone, and whether it is new.
//!
//! A run is turned into *conditions*, each with a stable key: a control that
//! started failing (a regression, which lasts while it fails and no
//! exception accepts it), a control that went from pass or fail to
//! inconclusive or a source that failed or was partial (lost evidence), an organisation that could not run, an exception that
//! expires soon or has expired, and a schedule that was missed (the previous
//! run is older than `max_age_hours`). The alert state kept in the store
//! (`<store>/alerts/state.json`) remembers, per condition, how many runs in a
//! row it has held and whether it was alerted. A condition is alerted once,
//! when it has held `persist_runs` runs (events, such as a missed schedule,
//! at once); an alerted condition that no longer holds is reported resolved.
//! Nothing new and nothing resolved: no message.
//!
//! Where a control started failing or lost its evidence comes from the run's
//! [`Drift`] (`results/drift.json`, the same comparison the reports show),
//! and from the statuses the state remembers when there is no drift.
//!
//! Everything here is pure: state in, state and items out.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Owner;
use crate::evaluate::{ControlResult, Status};
use crate::history::Drift;

/// What kind of change an item reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A control went from pass to fail.
    Regression,
    /// A control went from pass or fail to inconclusive, or a source failed.
    LostEvidence,
    /// The organisation could not run at all.
    CouldNotRun,
    /// The previous run is older than the schedule allows.
    RunMissed,
    /// An accepted exception expires within the warning window.
    ExceptionExpiring,
    /// An accepted exception has expired.
    ExceptionExpired,
    /// An alerted condition no longer holds.
    Resolved,
}

impl ItemKind {
    /// Words for a heading.
    pub fn label(self) -> &'static str {
        match self {
            ItemKind::Regression => "Regression",
            ItemKind::LostEvidence => "Lost evidence",
            ItemKind::CouldNotRun => "Could not run",
            ItemKind::RunMissed => "Runs missed",
            ItemKind::ExceptionExpiring => "Exception expiring",
            ItemKind::ExceptionExpired => "Exception expired",
            ItemKind::Resolved => "Resolved",
        }
    }
}

/// One line of an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What changed.
    pub kind: ItemKind,
    /// The condition's stable key (`regression:pci-dss:8.2.6`).
    pub key: String,
    /// One line: the control or source and what happened.
    pub title: String,
    /// More: failing subjects, reasons, dates.
    pub detail: String,
    /// Who must act, when there is an owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// An accepted exception and its expiry, as the rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExceptionDue {
    /// `<framework>:<control id>`.
    pub control: String,
    /// The check it narrows to, if any.
    pub check: Option<String>,
    /// The subject it narrows to, if any.
    pub subject: Option<String>,
    /// Who approved it.
    pub approved_by: String,
    /// The last day it holds.
    pub expires: NaiveDate,
    /// Who owns the control.
    pub owner: Option<Owner>,
}

/// How a run of one organisation went, as the rules need it.
#[derive(Clone, Debug)]
pub struct RunView<'a> {
    /// The organisation's display name.
    pub organisation: &'a str,
    /// The run id (for a run that could not start, an id made for the attempt).
    pub run_id: &'a str,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// What it produced.
    pub outcome: RunState<'a>,
    /// Accepted exceptions in force for the organisation.
    pub exceptions: &'a [ExceptionDue],
    /// What changed since the previous run, when the history has it.
    pub drift: Option<&'a Drift>,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub enum RunState<'a> {
    /// It ran: control results, and the sources that failed or were partial.
    Ran {
        /// `results/controls.json`.
        results: &'a [ControlResult],
        /// Sources that failed or were partial: name, `failed` or `partial`,
        /// and the reason recorded in `run.json`.
        failed_sources: Vec<(String, String, String)>,
    },
    /// It could not run (bad config, a secret it lacks, a crash).
    CouldNotRun {
        /// Why, without secrets.
        reason: String,
    },
}

/// Settings the rules take from `[alerts]`.
#[derive(Clone, Copy, Debug)]
pub struct RuleSettings {
    /// Runs a change must last before it alerts.
    pub persist_runs: u32,
    /// The schedule's bound in hours.
    pub max_age_hours: Option<u32>,
    /// Days before expiry an exception alerts.
    pub exception_warn_days: u32,
}

/// The alert state of one organisation, kept between runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// The format version.
    pub schema_version: u32,
    /// The last run that ran (id and start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// The last known status of each control, by `<framework>:<control id>`.
    #[serde(default)]
    pub statuses: BTreeMap<String, Status>,
    /// Conditions that held at the last run, by key.
    #[serde(default)]
    pub conditions: BTreeMap<String, Condition>,
}

impl AlertState {
    /// The version this build writes and reads.
    pub const SCHEMA_VERSION: u32 = 1;
}

/// A run, as the state remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// Its id.
    pub run_id: String,
    /// When it started.
    pub started: DateTime<Utc>,
}

/// A condition that holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Runs in a row it has held.
    pub streak: u32,
    /// Whether it was alerted.
    pub alerted: bool,
    /// Its item as last seen.
    pub item: Item,
}

/// Apply the rules to a run: the items to alert (empty: send nothing) and
/// the state to keep.
pub fn evaluate(
    previous: &AlertState,
    run: &RunView<'_>,
    settings: &RuleSettings,
) -> (Vec<Item>, AlertState) {
    let mut now: Vec<(Item, bool)> = Vec::new(); // (item, is an event)
    let mut statuses = previous.statuses.clone();
    let ran = matches!(run.outcome, RunState::Ran { .. });
    match &run.outcome {
        RunState::Ran {
            results,
            failed_sources,
        } => {
            statuses.clear();
            for r in results.iter() {
                let key = format!("{}:{}", r.framework, r.control_id);
                let before = previous.statuses.get(&key).copied();
                let regression = format!("regression:{key}");
                let lost = format!("lost:{key}");
                let held = |k: &str| previous.conditions.contains_key(k);
                let (started_failing, lost_now) = match run.drift {
                    Some(d) => (
                        d.regressions
                            .iter()
                            .find(|c| c.control == key)
                            .map(|c| c.before),
                        d.lost_evidence
                            .iter()
                            .find(|c| c.control == key)
                            .map(|c| c.before),
                    ),
                    None => (
                        (before == Some(Status::Pass)).then_some(before),
                        matches!(before, Some(Status::Pass | Status::Fail)).then_some(before),
                    ),
                };
                match r.status {
                    // An accepted failure does not alert until its exception ends.
                    Status::Fail if r.accepted.is_some() => {}
                    Status::Fail if started_failing.is_some() || held(&regression) => {
                        let was = started_failing.flatten().or(before);
                        now.push((regression_item(regression, r, was, run.drift), false));
                    }
                    Status::Inconclusive if lost_now.is_some() || held(&lost) => {
                        let was = lost_now.flatten().or(before);
                        now.push((
                            Item {
                                kind: ItemKind::LostEvidence,
                                key: lost,
                                title: format!(
                                    "{} {} {}: {} -> inconclusive",
                                    r.framework,
                                    r.control_id,
                                    r.title,
                                    status_word(was)
                                ),
                                detail: r.reason.clone(),
                                owner: Some(r.owner),
                            },
                            false,
                        ));
                    }
                    _ => {}
                }
                statuses.insert(key, r.status);
            }
            for (name, how, reason) in failed_sources {
                now.push((
                    Item {
                        kind: ItemKind::LostEvidence,
                        key: format!("source:{name}"),
                        title: format!("source {name} {how}"),
                        detail: reason.clone(),
                        owner: None,
                    },
                    false,
                ));
            }
        }
        RunState::CouldNotRun { reason } => now.push((
            Item {
                kind: ItemKind::CouldNotRun,
                key: "could-not-run".to_owned(),
                title: format!("{} could not run", run.organisation),
                detail: reason.clone(),
                owner: None,
            },
            false,
        )),
    }
    if let (Some(hours), Some(last)) = (settings.max_age_hours, &previous.last_run) {
        let gap = run.started - last.started;
        if gap > chrono::Duration::hours(i64::from(hours)) {
            now.push((
                Item {
                    kind: ItemKind::RunMissed,
                    key: format!("run-missed:{}", last.run_id),
                    title: format!(
                        "no run for {} hours (the schedule allows {hours})",
                        gap.num_hours()
                    ),
                    detail: format!(
                        "the previous run {} started {}",
                        last.run_id,
                        last.started.format("%Y-%m-%d %H:%M UTC")
                    ),
                    owner: None,
                },
                true,
            ));
        }
    }
    let today = run.started.date_naive();
    for e in run.exceptions {
        let what = exception_name(e);
        let (kind, key, title) = if e.expires < today {
            (
                ItemKind::ExceptionExpired,
                format!("exception-expired:{what}:{}", e.expires),
                format!("exception for {what} expired on {}", e.expires),
            )
        } else if (e.expires - today).num_days() <= i64::from(settings.exception_warn_days) {
            (
                ItemKind::ExceptionExpiring,
                format!("exception-expiring:{what}:{}", e.expires),
                format!("exception for {what} expires on {}", e.expires),
            )
        } else {
            continue;
        };
        now.push((
            Item {
                kind,
                key,
                title,
                detail: format!("approved by {}", e.approved_by),
                owner: e.owner,
            },
            kind == ItemKind::ExceptionExpired,
        ));
    }

    let mut items = Vec::new();
    let mut conditions = BTreeMap::new();
    for (item, event) in now {
        let before = previous.conditions.get(&item.key);
        let streak = before.map_or(1, |c| c.streak.saturating_add(1));
        let mut alerted = before.is_some_and(|c| c.alerted);
        if !alerted && (event || streak >= settings.persist_runs) {
            alerted = true;
            items.push(item.clone());
        }
        conditions.insert(
            item.key.clone(),
            Condition {
                streak,
                alerted,
                item,
            },
        );
    }
    for (key, old) in &previous.conditions {
        if conditions.contains_key(key) {
            continue;
        }
        // A run that could not run says nothing about the controls: what
        // held before still holds.
        let unknown = !ran && !matches!(old.item.kind, ItemKind::CouldNotRun);
        if unknown {
            conditions.insert(key.clone(), old.clone());
        } else if old.alerted && old.item.kind != ItemKind::RunMissed {
            items.push(Item {
                kind: ItemKind::Resolved,
                key: key.clone(),
                title: format!("resolved: {}", old.item.title),
                detail: String::new(),
                owner: old.item.owner,
            });
        }
    }
    items.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    let last_run = if ran {
        Some(LastRun {
            run_id: run.run_id.to_owned(),
            started: run.started,
        })
    } else {
        previous.last_run.clone()
    };
    // A missed schedule is an event: once alerted, it is not kept.
    conditions.retain(|_, c| c.item.kind != ItemKind::RunMissed);
    let state = AlertState {
        schema_version: AlertState::SCHEMA_VERSION,
        last_run,
        statuses,
        conditions,
    };
    (items, state)
}

fn exception_name(e: &ExceptionDue) -> String {
    let mut s = e.control.clone();
    if let Some(check) = &e.check {
        s.push('/');
        s.push_str(check);
    }
    if let Some(subject) = &e.subject {
        s.push('/');
        s.push_str(subject);
    }
    s
}

/// How many failing subject names an item lists before "and N more".
const NAMES: usize = 5;

fn status_word(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Pass) => "pass",
        Some(Status::Fail) => "fail",
        Some(Status::Inconclusive) => "inconclusive",
        Some(Status::ManualPending) => "manual_pending",
        Some(Status::ManualAttested) => "manual_attested",
        Some(Status::NotApplicable) => "not_applicable",
        None => "not evaluated",
    }
}

fn regression_item(
    key: String,
    r: &ControlResult,
    was: Option<Status>,
    drift: Option<&Drift>,
) -> Item {
    let mut lines = Vec::new();
    for c in r.checks.iter().filter(|c| c.failing_count > 0) {
        let names: Vec<&str> = c
            .failing
            .iter()
            .take(NAMES)
            .map(|s| s.name.as_str())
            .collect();
        let more = c.failing_count.saturating_sub(names.len());
        let mut line = format!(
            "{} ({} failing, {} acts): {}",
            c.title,
            c.failing_count,
            c.responsible.as_str(),
            names.join(", ")
        );
        if more > 0 {
            line.push_str(&format!(" and {more} more"));
        }
        let newly = drift
            .and_then(|d| d.subjects.iter().find(|s| s.check == c.check))
            .map(|s| &s.newly_failing)
            .filter(|n| !n.is_empty());
        if let Some(newly) = newly {
            let names: Vec<&str> = newly.iter().take(NAMES).map(|s| s.name.as_str()).collect();
            line.push_str(&format!("; newly failing: {}", names.join(", ")));
            if newly.len() > names.len() {
                line.push_str(&format!(" and {} more", newly.len() - names.len()));
            }
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(r.reason.clone());
    }
    Item {
        kind: ItemKind::Regression,
        key,
        title: format!(
            "{} {} {}: {} -> fail",
            r.framework,
            r.control_id,
            r.title,
            status_word(was)
        ),
        detail: lines.join("\n"),
        owner: Some(r.owner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::ControlResult;

    /// Controls from `results/controls.json` text of the inline layout.
    fn controls(value: serde_json::Value) -> Vec<ControlResult> {
        crate::report::json::decode(&serde_json::to_vec(&value).unwrap()).unwrap()
    }

    fn control(id: &str, status: Status) -> ControlResult {
        controls(serde_json::json!([{
            "framework": "hipaa", "control_id": id, "title": format!("Control {id}"),
            "status": status, "owner": "internal", "kind": "automated",
            "checks": [], "manual_evidence": [], "reason": "because",
        }]))
        .remove(0)
    }

    fn run<'a>(id: &'a str, hour: i64, results: &'a [ControlResult]) -> RunView<'a> {
        RunView {
            organisation: "Org",
            run_id: id,
            started: DateTime::<Utc>::from_timestamp(1_700_000_000 + hour * 3600, 0).unwrap(),
            outcome: RunState::Ran {
                results,
                failed_sources: Vec::new(),
            },
            exceptions: &[],
            drift: None,
        }
    }

    const ONCE: RuleSettings = RuleSettings {
        persist_runs: 1,
        max_age_hours: Some(30),
        exception_warn_days: 14,
    };

    fn kinds(items: &[Item]) -> Vec<(ItemKind, &str)> {
        items.iter().map(|i| (i.kind, i.key.as_str())).collect()
    }

    #[test]
    fn regression_alerts_once_then_resolves() {
        let pass = [control("a", Status::Pass), control("b", Status::Fail)];
        let (items, s1) = evaluate(&AlertState::default(), &run("r1", 0, &pass), &ONCE);
        assert!(items.is_empty(), "a first run is the baseline: {items:?}");
        let fail = [control("a", Status::Fail), control("b", Status::Fail)];
        let (items, s2) = evaluate(&s1, &run("r2", 24, &fail), &ONCE);
        assert_eq!(
            kinds(&items),
            [(ItemKind::Regression, "regression:hipaa:a")]
        );
        assert_eq!(items[0].owner, Some(Owner::Internal));
        let (items, s3) = evaluate(&s2, &run("r3", 48, &fail), &ONCE);
        assert!(items.is_empty(), "no change, no message: {items:?}");
        let (items, _) = evaluate(&s3, &run("r4", 72, &pass), &ONCE);
        assert_eq!(kinds(&items), [(ItemKind::Resolved, "regression:hipaa:a")]);
    }

    #[test]
    fn persist_runs_waits_and_flapping_never_alerts() {
        let twice = RuleSettings {
            persist_runs: 2,
            ..ONCE
        };
        let pass = [control("a", Status::Pass)];
        let fail = [control("a", Status::Fail)];
        let (_, s) = evaluate(&AlertState::default(), &run("r1", 0, &pass), &twice);
        let (items, s) = evaluate(&s, &run("r2", 1, &fail), &twice);
        assert!(items.is_empty());
        let (items, s) = evaluate(&s, &run("r3", 2, &pass), &twice);
        assert!(items.is_empty(), "unalerted flap resolves silently");
        let (_, s) = evaluate(&s, &run("r4", 3, &fail), &twice);
        let (items, _) = evaluate(&s, &run("r5", 4, &fail), &twice);
        assert_eq!(
            kinds(&items),
            [(ItemKind::Regression, "regression:hipaa:a")]
        );
    }

    #[test]
    fn lost_evidence_missed_runs_and_could_not_run() {
        let pass = [control("a", Status::Pass)];
        let (_, s) = evaluate(&AlertState::default(), &run("r1", 0, &pass), &ONCE);
        let lost = [control("a", Status::Inconclusive)];
        let mut view = run("r2", 100, &lost);
        view.outcome = RunState::Ran {
            results: &lost,
            failed_sources: vec![(
                "m365".into(),
                "failed".into(),
                "401 from the token endpoint".into(),
            )],
        };
        let (items, s) = evaluate(&s, &view, &ONCE);
        assert_eq!(
            kinds(&items),
            [
                (ItemKind::LostEvidence, "lost:hipaa:a"),
                (ItemKind::LostEvidence, "source:m365"),
                (ItemKind::RunMissed, "run-missed:r1"),
            ]
        );
        let mut failed = run("r3", 101, &lost);
        failed.outcome = RunState::CouldNotRun {
            reason: "config".into(),
        };
        let (items, s) = evaluate(&s, &failed, &ONCE);
        assert_eq!(kinds(&items), [(ItemKind::CouldNotRun, "could-not-run")]);
        assert!(
            s.conditions.contains_key("lost:hipaa:a"),
            "kept while unknown"
        );
        assert_eq!(s.last_run.as_ref().unwrap().run_id, "r2");
        let (items, _) = evaluate(&s, &run("r4", 102, &pass), &ONCE);
        assert_eq!(
            kinds(&items),
            [
                (ItemKind::Resolved, "could-not-run"),
                (ItemKind::Resolved, "lost:hipaa:a"),
                (ItemKind::Resolved, "source:m365"),
            ]
        );
    }

    #[test]
    fn exceptions_alert_when_expiring_and_when_expired() {
        let results = [control("a", Status::Fail)];
        let start = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let today = start.date_naive();
        let exc = |days: i64| ExceptionDue {
            control: "hipaa:a".into(),
            check: None,
            subject: Some("u1".into()),
            approved_by: "CFO".into(),
            expires: today + chrono::Duration::days(days),
            owner: Some(Owner::Msp),
        };
        let list = [exc(10), exc(-1), exc(60)];
        let mut view = run("r1", 0, &results);
        view.exceptions = &list;
        let (items, s) = evaluate(&AlertState::default(), &view, &ONCE);
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].kind, ItemKind::ExceptionExpiring);
        assert_eq!(items[0].detail, "approved by CFO");
        assert_eq!(items[1].kind, ItemKind::ExceptionExpired);
        let (items, _) = evaluate(&s, &view, &ONCE);
        assert!(items.is_empty(), "each alerted once: {items:?}");
    }

    #[test]
    fn drift_decides_onsets_and_accepted_failures_stay_quiet() {
        let drift: Drift = serde_json::from_value(serde_json::json!({
            "schema_version": 1, "organisation": "Org", "run_id": "r2", "previous": null,
            "regressions": [{"control": "hipaa:a", "title": "Control a", "owner": "internal",
                             "before": "inconclusive", "after": "fail"},
                            {"control": "hipaa:b", "title": "Control b", "owner": "internal",
                             "before": "pass", "after": "fail"}],
            "fixes": [], "lost_evidence": [], "other_changes": [], "sources_lost": [],
            "subjects": [{"check": "mfa", "title": "MFA", "responsible": "internal",
                          "failing_before": 0, "failing_after": 1, "judged_after": true,
                          "newly_failing": [{"id": "u1", "name": "alice"}],
                          "fixed": [], "unjudged": []}]
        }))
        .unwrap();
        let a = controls(serde_json::json!([{
            "framework": "hipaa", "control_id": "a", "title": "Control a",
            "status": "fail", "owner": "internal", "kind": "automated",
            "checks": [{
                "check": "mfa", "title": "MFA", "outcome": "fail", "responsible": "msp",
                "evaluated": 2, "failing_count": 1,
                "failing": [{"id": "u1", "name": "alice", "detail": "no MFA"}],
                "evidence": [], "summary": "s", "remediation": "r"
            }],
            "manual_evidence": [], "reason": "because",
        }]))
        .remove(0);
        let mut b = control("b", Status::Fail);
        b.accepted = serde_json::from_value(serde_json::json!({
            "approved_by": "CFO", "reason": "legacy", "expires": "2030-01-01", "exceptions": []
        }))
        .unwrap();
        let results = [a, b];
        let mut view = run("r2", 0, &results);
        view.drift = Some(&drift);
        // No remembered statuses (a new state): the drift alone says what started.
        let (items, _) = evaluate(&AlertState::default(), &view, &ONCE);
        assert_eq!(
            kinds(&items),
            [(ItemKind::Regression, "regression:hipaa:a")]
        );
        assert_eq!(items[0].title, "hipaa a Control a: inconclusive -> fail");
        assert_eq!(
            items[0].detail,
            "MFA (1 failing, msp acts): alice; newly failing: alice"
        );
    }
}
