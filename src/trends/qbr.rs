//! `auditpack qbr`: the quarterly business review of one organisation, as
//! `qbr-<period>.html` and `qbr-<period>.pdf` (A4) in the output folder.
//!
//! From the runs judged within the period ([`super::load_runs`]): trend
//! charts of the KPIs and of the share of controls passing per framework
//! (a framework out of scope in a run leaves a gap in its line); what
//! improved and what regressed between the period's first and last run;
//! SLA adherence by party over the gaps closed within the period; the
//! gaps still open at its end by owner with their age; the exceptions in
//! force at its end and those expiring within 30 days after it; and a
//! short roadmap: the open gaps that weigh most (subject-days open: each
//! failing subject times the days it has failed), with the party owning
//! each.
//!
//! A period without runs is an error (nothing is written): a review
//! with no evidence behind it would mislead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::svg::{self, Chart, Line};
use super::{html_escape, show_value, trim_number, Organisation, Period};
use crate::config::Owner;
use crate::error::{Error, Result, ResultExt};
use crate::evaluate::Status;
use crate::evidence::write_atomic;
use crate::history::kpis::{self, party_label, Better, ClosedGap, Kpi, KpiStatus};
use crate::history::{LocalStore, RunSummary, SummaryStore};

/// Days after the period within which an exception counts as expiring.
pub const EXPIRING_DAYS: i64 = 30;
/// Roadmap items listed.
pub const ROADMAP_ITEMS: usize = 6;

/// A KPI's start, end and direction over the period.
#[derive(Clone, Debug, PartialEq)]
pub struct Movement {
    /// KPI id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Value in the first run (as shown).
    pub first: String,
    /// Value in the last run (as shown).
    pub last: String,
    /// `improved`, `regressed`, `unchanged` or `not comparable`.
    pub trend: &'static str,
    /// The last run's numerator / denominator, as text.
    pub basis: String,
    /// The evidence it comes from.
    pub evidence: String,
}

/// A control whose status changed over the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlChange {
    /// `framework:control`.
    pub control: String,
    /// Title.
    pub title: String,
    /// Owner.
    pub owner: Owner,
    /// Status in the first run.
    pub from: Status,
    /// Status in the last run.
    pub to: Status,
}

/// SLA adherence of one party over the period.
#[derive(Clone, Debug, PartialEq)]
pub struct SlaRow {
    /// The party.
    pub owner: Owner,
    /// Gaps closed in the period.
    pub closed: usize,
    /// Of them, with a target.
    pub with_target: usize,
    /// Of those, within it.
    pub within: usize,
    /// Open at the end and past their target.
    pub overdue: usize,
    /// Mean days to remediate (closed in the period).
    pub mean_days: Option<f64>,
    /// `within / (with_target + overdue)` as text, or why not.
    pub adherence: String,
}

/// Open gaps of one check at the period's end.
#[derive(Clone, Debug, PartialEq)]
pub struct GapRow {
    /// Check id.
    pub check: String,
    /// Check title.
    pub title: String,
    /// Owning party.
    pub owner: Owner,
    /// Failing subjects.
    pub subjects: usize,
    /// Oldest gap, days.
    pub oldest_days: f64,
    /// Mean age, days.
    pub mean_days: f64,
    /// Subject-days open (the roadmap's weight).
    pub weight: f64,
    /// The `[sla]` target, if any.
    pub sla_days: Option<u32>,
}

/// An exception in force at the end of the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExceptionRow {
    /// `framework:control`.
    pub control: String,
    /// Title.
    pub title: String,
    /// Owner.
    pub owner: Owner,
    /// Expiry date.
    pub expires: String,
    /// Approver.
    pub approved_by: String,
    /// Expires within [`EXPIRING_DAYS`] after the period.
    pub expiring: bool,
}

/// Everything the review shows, computed once for the HTML and the PDF.
#[derive(Clone, Debug, PartialEq)]
pub struct Qbr {
    /// Organisation.
    pub organisation: String,
    /// The period.
    pub period: Period,
    /// Runs in the period.
    pub runs: usize,
    /// First and last run ids.
    pub first_run: String,
    /// Last run id.
    pub last_run: String,
    /// The last run's judged instant.
    pub last_as_of: String,
    /// Frameworks in scope in any run.
    pub frameworks: Vec<String>,
    /// Controls passing (or attested) in the last run, of those in scope.
    pub posture: (usize, usize),
    /// The KPI charts.
    pub charts: Vec<Chart>,
    /// The KPI table.
    pub movements: Vec<Movement>,
    /// Controls that improved.
    pub improved: Vec<ControlChange>,
    /// Controls that regressed.
    pub regressed: Vec<ControlChange>,
    /// SLA by party.
    pub sla: Vec<SlaRow>,
    /// Whether any party has `[sla]` targets.
    pub sla_configured: bool,
    /// Open gaps by owner (then by weight).
    pub gaps: Vec<GapRow>,
    /// Exceptions in force at the end.
    pub exceptions: Vec<ExceptionRow>,
    /// The roadmap: the heaviest gaps.
    pub roadmap: Vec<GapRow>,
    /// The tool version.
    pub tool: String,
}

fn position(period: &Period, t: Option<DateTime<Utc>>) -> f64 {
    let Some(t) = t else { return 0.0 };
    let span = (period.end() - period.start()).num_seconds().max(1) as f64;
    ((t - period.start()).num_seconds() as f64 / span).clamp(0.0, 1.0)
}

fn is_good(s: Status) -> bool {
    matches!(s, Status::Pass | Status::ManualAttested)
}

fn kpi_chart(
    period: &Period,
    runs: &[RunSummary],
    title: &str,
    ids: &[(&str, &str)],
    unit: &str,
) -> Chart {
    let lines: Vec<Line> = ids
        .iter()
        .map(|(id, label)| Line {
            label: (*label).to_owned(),
            points: runs
                .iter()
                .map(|r| {
                    let v = r
                        .kpis
                        .as_ref()
                        .and_then(|k| k.get(id))
                        .and_then(|k| k.value);
                    (position(period, kpis::run_time(r)), v)
                })
                .collect(),
        })
        .collect();
    Chart {
        title: title.to_owned(),
        unit: unit.to_owned(),
        y_max: Chart::scale(unit, &lines),
        lines,
        x_labels: (period.from.to_string(), period.to.to_string()),
    }
}

fn framework_chart(period: &Period, runs: &[RunSummary], frameworks: &[String]) -> Chart {
    let lines: Vec<Line> = frameworks
        .iter()
        .map(|f| Line {
            label: f.clone(),
            points: runs
                .iter()
                .map(|r| {
                    let scoped: Vec<&crate::history::summary::ControlSummary> = r
                        .controls
                        .iter()
                        .filter(|c| c.framework == *f && c.status != Status::NotApplicable)
                        .collect();
                    let v = if !r.frameworks.contains(f) || scoped.is_empty() {
                        None
                    } else {
                        let good = scoped.iter().filter(|c| is_good(c.status)).count();
                        Some(100.0 * good as f64 / scoped.len() as f64)
                    };
                    (position(period, kpis::run_time(r)), v)
                })
                .collect(),
        })
        .collect();
    Chart {
        title: "Controls passing, by framework".to_owned(),
        unit: "%".to_owned(),
        y_max: 100.0,
        lines,
        x_labels: (period.from.to_string(), period.to.to_string()),
    }
}

fn movement(first: Option<&Kpi>, last: &Kpi) -> Movement {
    let trend = match (first.and_then(|f| f.value), last.value) {
        (Some(a), Some(b)) if (a - b).abs() < 0.05 => "unchanged",
        (Some(a), Some(b)) => {
            let up = b > a;
            if up == (last.better == Better::Higher) {
                "improved"
            } else {
                "regressed"
            }
        }
        _ => "not comparable",
    };
    let basis = match last.denominator {
        Some(d) => format!("{} / {}", trim_number(last.numerator), trim_number(d)),
        None => trim_number(last.numerator),
    };
    Movement {
        id: last.id.clone(),
        title: last.title.clone(),
        first: first.map_or_else(|| "not measured".to_owned(), show_value),
        last: show_value(last),
        trend,
        basis,
        evidence: last.evidence.join(", "),
    }
}

/// Build the review of `org` over `period` from its store.
///
/// # Errors
/// When the store cannot be read, or the period has no runs (the message
/// names the period and the organisation's latest run before it, if any).
pub fn build(org: &Organisation, period: &Period) -> Result<Qbr> {
    let store = LocalStore::new(&org.store);
    let runs = super::load_runs(
        &store,
        &org.name,
        Some((period.start(), period.end())),
        &org.settings,
    )?;
    if runs.is_empty() {
        let latest = store
            .list()?
            .into_iter()
            .rev()
            .find(|id| super::id_time(id).is_none_or(|t| t < period.start()));
        let hint = match latest {
            Some(id) => format!("; the latest run before it is {id}"),
            None => String::new(),
        };
        return Err(Error::invalid(format!(
            "no runs of {} in {} ({} to {}) in {}{hint}; no review written",
            org.name,
            period.label,
            period.from,
            period.to,
            store.location()
        )));
    }
    from_runs(org, period, &runs)
}

/// The review from the period's runs (oldest first).
///
/// # Errors
/// When there is no run.
pub fn from_runs(org: &Organisation, period: &Period, runs: &[RunSummary]) -> Result<Qbr> {
    let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
        return Err(Error::invalid(format!(
            "no runs of {} in {}; no review written",
            org.name, period.label
        )));
    };
    let mut frameworks: Vec<String> = Vec::new();
    for r in runs {
        for f in &r.frameworks {
            if !frameworks.contains(f) {
                frameworks.push(f.clone());
            }
        }
    }
    let scoped: Vec<_> = last
        .controls
        .iter()
        .filter(|c| c.status != Status::NotApplicable)
        .collect();
    let posture = (
        scoped.iter().filter(|c| is_good(c.status)).count(),
        scoped.len(),
    );
    let shares: Vec<(&str, &str)> = kpis::share_ids().collect();
    let pick = |ids: &[&str]| -> Vec<(&str, &str)> {
        shares
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .copied()
            .collect()
    };
    let parties: Vec<(String, String)> = kpis::PARTIES
        .iter()
        .map(|o| (o.as_str().to_owned(), party_label(*o).to_owned()))
        .collect();
    let with_prefix = |prefix: &str, owners: &[(String, String)]| -> Vec<(String, String)> {
        owners
            .iter()
            .map(|(o, l)| (format!("{prefix}.{o}"), l.clone()))
            .collect()
    };
    let open_ids = with_prefix("open_gaps", &parties);
    let mttr_ids = with_prefix("mttr.owner", &parties);
    let sla_ids = with_prefix("sla", &parties[..2]);
    fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }
    let charts = vec![
        framework_chart(period, runs, &frameworks),
        kpi_chart(
            period,
            runs,
            "Identity and access",
            &pick(&[
                "mfa_registered",
                "mfa_admins",
                "mfa_enforced",
                "access_reviews",
            ]),
            "%",
        ),
        kpi_chart(
            period,
            runs,
            "Devices and backups",
            &pick(&[
                "patch_compliance",
                "edr_coverage",
                "encryption",
                "backup_recency",
            ]),
            "%",
        ),
        kpi_chart(
            period,
            runs,
            "Inactive accounts and stale devices (lower is better)",
            &pick(&["inactive_accounts", "stale_devices"]),
            "%",
        ),
        kpi_chart(period, runs, "Open gaps by party", &refs(&open_ids), "gaps"),
        kpi_chart(
            period,
            runs,
            "Mean time to remediate by party (trailing 90 days)",
            &refs(&mttr_ids),
            "days",
        ),
        kpi_chart(
            period,
            runs,
            "SLA adherence by party (trailing 90 days)",
            &refs(&sla_ids),
            "%",
        ),
    ];

    let empty = kpis::Kpis::default();
    let last_k = last.kpis.as_ref().unwrap_or(&empty);
    let first_k = first.kpis.as_ref().unwrap_or(&empty);
    let movements: Vec<Movement> = last_k
        .kpis
        .iter()
        .filter(|k| !k.id.starts_with("mttr.check.") && !k.id.starts_with("open_gap_age."))
        .map(|k| movement(first_k.get(&k.id), k))
        .collect();

    let mut improved = Vec::new();
    let mut regressed = Vec::new();
    let before: BTreeMap<String, Status> =
        first.controls.iter().map(|c| (c.key(), c.status)).collect();
    for c in &last.controls {
        let Some(&from) = before.get(&c.key()) else {
            continue;
        };
        let change = ControlChange {
            control: c.key(),
            title: c.title.clone(),
            owner: c.owner,
            from,
            to: c.status,
        };
        if !is_good(from) && is_good(c.status) {
            improved.push(change);
        } else if from != Status::Fail && c.status == Status::Fail {
            regressed.push(change);
        }
    }

    // SLA over the gaps closed within the period.
    let closed: Vec<&ClosedGap> = runs
        .iter()
        .filter_map(|r| r.kpis.as_ref())
        .flat_map(|k| k.closed.iter())
        .collect();
    let now = kpis::run_time(last).unwrap_or_else(Utc::now);
    let age = |since: &str| {
        DateTime::parse_from_rfc3339(since)
            .map(|t| ((now - t.with_timezone(&Utc)).num_seconds().max(0) as f64) / 86_400.0)
            .unwrap_or(0.0)
    };
    let sla: Vec<SlaRow> = kpis::PARTIES
        .iter()
        .map(|&owner| {
            let mine: Vec<&&ClosedGap> = closed.iter().filter(|g| g.owner == owner).collect();
            let with_target = mine.iter().filter(|g| g.sla_days.is_some()).count();
            let within = mine.iter().filter(|g| g.within_sla() == Some(true)).count();
            let overdue = last_k
                .open
                .iter()
                .filter(|g| g.owner == owner)
                .filter(|g| {
                    org.settings
                        .sla
                        .target(owner, &g.check)
                        .is_some_and(|d| age(&g.since) > f64::from(d))
                })
                .count();
            let has_targets = match owner {
                Owner::Internal => org.settings.sla.internal.is_some(),
                Owner::Msp => org.settings.sla.msp.is_some(),
                _ => false,
            };
            let denominator = with_target + overdue;
            let adherence = if !has_targets {
                "no target set".to_owned()
            } else if denominator == 0 {
                "not applicable (nothing due)".to_owned()
            } else {
                format!(
                    "{}% ({within} of {denominator})",
                    trim_number(100.0 * within as f64 / denominator as f64)
                )
            };
            SlaRow {
                owner,
                closed: mine.len(),
                with_target,
                within,
                overdue,
                mean_days: (!mine.is_empty())
                    .then(|| mine.iter().map(|g| g.days).sum::<f64>() / mine.len() as f64),
                adherence,
            }
        })
        .collect();

    // Open gaps at the end, per check.
    let mut per_check: BTreeMap<(Owner, &str), Vec<f64>> = BTreeMap::new();
    for g in &last_k.open {
        per_check
            .entry((g.owner, g.check.as_str()))
            .or_default()
            .push(age(&g.since));
    }
    let titles: BTreeMap<&str, &str> = last
        .checks
        .iter()
        .map(|c| (c.check.as_str(), c.title.as_str()))
        .collect();
    let mut gaps: Vec<GapRow> = per_check
        .into_iter()
        .map(|((owner, check), ages)| {
            let total: f64 = ages.iter().sum();
            GapRow {
                check: check.to_owned(),
                title: titles.get(check).copied().unwrap_or(check).to_owned(),
                owner,
                subjects: ages.len(),
                oldest_days: ages.iter().copied().fold(0.0, f64::max),
                mean_days: total / ages.len().max(1) as f64,
                weight: total + ages.len() as f64,
                sla_days: org.settings.sla.target(owner, check),
            }
        })
        .collect();
    gaps.sort_by(|a, b| {
        a.owner
            .cmp(&b.owner)
            .then(b.weight.total_cmp(&a.weight))
            .then(a.check.cmp(&b.check))
    });
    let mut roadmap = gaps.clone();
    roadmap.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.check.cmp(&b.check)));
    roadmap.truncate(ROADMAP_ITEMS);

    let horizon = period.to + chrono::Days::new(EXPIRING_DAYS as u64);
    let exceptions: Vec<ExceptionRow> = last
        .controls
        .iter()
        .filter_map(|c| {
            let a = c.accepted.as_ref()?;
            let expiring = chrono::NaiveDate::parse_from_str(&a.expires, "%Y-%m-%d")
                .is_ok_and(|d| d <= horizon);
            Some(ExceptionRow {
                control: c.key(),
                title: c.title.clone(),
                owner: c.owner,
                expires: a.expires.clone(),
                approved_by: a.approved_by.clone(),
                expiring,
            })
        })
        .collect();
    Ok(Qbr {
        organisation: org.name.clone(),
        period: period.clone(),
        runs: runs.len(),
        first_run: first.run_id.clone(),
        last_run: last.run_id.clone(),
        last_as_of: last.as_of.clone(),
        frameworks,
        posture,
        charts,
        movements,
        improved,
        regressed,
        sla,
        sla_configured: org.settings.sla.is_set(),
        gaps,
        exceptions,
        roadmap,
        tool: format!("auditpack {}", env!("CARGO_PKG_VERSION")),
    })
}

fn days(v: f64) -> String {
    format!("{} d", trim_number(v))
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;color:#1c2333;margin:0;background:#fff}main{max-width:960px;margin:0 auto;padding:24px}h1{color:#1f3b5e;margin:0 0 4px}h2{color:#1f3b5e;border-bottom:2px solid #1f3b5e;padding-bottom:4px;margin-top:32px}.muted{color:#5c6475}table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}th,td{text-align:left;padding:5px 6px;border-bottom:1px solid #d9dde6;vertical-align:top}th{background:#f5f6f9;color:#5c6475}.improved{color:#2e7d4f;font-weight:bold}.regressed{color:#c0392b;font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #d9dde6;background:#fff}.big{font-size:28px;font-weight:bold;color:#1f3b5e}@media print{main{padding:0}h2{break-after:avoid}tr{break-inside:avoid}}";

/// The review as a self-contained HTML page (inline CSS and SVG only).
pub fn html(q: &Qbr) -> String {
    let e = html_escape;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Quarterly business review: {org} {p}</title><style>{STYLE}</style></head><body><main>",
        org = e(&q.organisation),
        p = e(&q.period.label)
    );
    let _ = write!(
        s,
        "<h1>Quarterly business review: {}</h1><p class=\"muted\">{} ({} to {}) · {} run(s), from {} to {} · frameworks: {}</p>",
        e(&q.organisation),
        e(&q.period.label),
        q.period.from,
        q.period.to,
        q.runs,
        e(&q.first_run),
        e(&q.last_run),
        e(&q.frameworks.join(", "))
    );
    let _ = write!(
        s,
        "<p><span class=\"big\" id=\"posture\">{} of {}</span> controls in scope pass or are attested at the end of the period (run {}, judged {}).</p>",
        q.posture.0,
        q.posture.1,
        e(&q.last_run),
        e(&q.last_as_of)
    );
    s.push_str("<h2>Trends</h2><div class=\"charts\">");
    for c in &q.charts {
        s.push_str(&svg::chart(c, 460.0, 250.0));
    }
    s.push_str("</div>");

    s.push_str("<h2>KPIs: start and end of the period</h2><table id=\"kpis\"><thead><tr><th>KPI</th><th>First run</th><th>Last run</th><th>Trend</th><th>Numerator / denominator</th><th>Evidence</th></tr></thead><tbody>");
    for m in &q.movements {
        let class = match m.trend {
            "improved" => " class=\"improved\"",
            "regressed" => " class=\"regressed\"",
            _ => "",
        };
        let _ = write!(
            s,
            "<tr data-kpi=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td{class}>{}</td><td>{}</td><td class=\"muted\">{}</td></tr>",
            e(&m.id),
            e(&m.title),
            e(&m.first),
            e(&m.last),
            m.trend,
            e(&m.basis),
            e(&m.evidence)
        );
    }
    s.push_str("</tbody></table>");

    s.push_str("<h2>What improved and what regressed</h2>");
    for (title, list, id) in [
        ("Improved", &q.improved, "improved"),
        ("Regressed", &q.regressed, "regressed"),
    ] {
        let _ = write!(s, "<h3>{title} ({})</h3>", list.len());
        if list.is_empty() {
            s.push_str("<p class=\"muted\">None.</p>");
            continue;
        }
        let _ = write!(
            s,
            "<table id=\"{id}\"><thead><tr><th>Control</th><th>Title</th><th>Owner</th><th>From</th><th>To</th></tr></thead><tbody>"
        );
        for c in list {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&c.control),
                e(&c.title),
                party_label(c.owner),
                c.from.as_str(),
                c.to.as_str()
            );
        }
        s.push_str("</tbody></table>");
    }

    s.push_str("<h2>SLA adherence by party</h2>");
    if !q.sla_configured {
        s.push_str("<p class=\"muted\">No <code>[sla]</code> targets are set in the config; adherence is not measured.</p>");
    }
    s.push_str("<table id=\"sla\"><thead><tr><th>Party</th><th>Gaps closed in the period</th><th>Mean time to remediate</th><th>With a target</th><th>Within it</th><th>Open past target</th><th>Adherence</th></tr></thead><tbody>");
    for r in &q.sla {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            party_label(r.owner),
            r.closed,
            r.mean_days.map_or_else(|| "not applicable".to_owned(), days),
            r.with_target,
            r.within,
            r.overdue,
            e(&r.adherence)
        );
    }
    s.push_str("</tbody></table>");

    s.push_str("<h2>Open gaps by owner, with their age</h2>");
    if q.gaps.is_empty() {
        s.push_str("<p>No open gaps at the end of the period.</p>");
    } else {
        s.push_str("<table id=\"gaps\"><thead><tr><th>Owner</th><th>Check</th><th>Subjects</th><th>Oldest</th><th>Mean age</th><th>Target</th></tr></thead><tbody>");
        for g in &q.gaps {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                party_label(g.owner),
                e(&g.title),
                g.subjects,
                days(g.oldest_days),
                days(g.mean_days),
                g.sla_days
                    .map_or_else(|| "none".to_owned(), |d| format!("{d} d"))
            );
        }
        s.push_str("</tbody></table>");
    }

    s.push_str("<h2>Exceptions in force</h2>");
    if q.exceptions.is_empty() {
        s.push_str("<p>No accepted risk at the end of the period.</p>");
    } else {
        s.push_str("<table id=\"exceptions\"><thead><tr><th>Control</th><th>Owner</th><th>Approved by</th><th>Expires</th></tr></thead><tbody>");
        for x in &q.exceptions {
            let _ = write!(
                s,
                "<tr><td>{} {}</td><td>{}</td><td>{}</td><td{}>{}{}</td></tr>",
                e(&x.control),
                e(&x.title),
                party_label(x.owner),
                e(&x.approved_by),
                if x.expiring {
                    " class=\"regressed\""
                } else {
                    ""
                },
                e(&x.expires),
                if x.expiring { " (expiring)" } else { "" }
            );
        }
        s.push_str("</tbody></table>");
    }

    s.push_str("<h2>Roadmap</h2>");
    if q.roadmap.is_empty() {
        s.push_str("<p>Nothing open: keep the evidence flowing.</p>");
    } else {
        s.push_str("<ol id=\"roadmap\">");
        for g in &q.roadmap {
            let _ = write!(
                s,
                "<li><strong>{}</strong>: {} (fix {} subject(s), open up to {})</li>",
                e(party_label(g.owner)),
                e(&g.title),
                g.subjects,
                days(g.oldest_days)
            );
        }
        s.push_str("</ol>");
    }
    let _ = writeln!(
        s,
        "<p class=\"muted\">Generated by {} from the run summaries in the store; every figure traces to a run listed above.</p></main></body></html>",
        e(&q.tool)
    );
    s
}

/// Write `qbr-<period>.html` and `qbr-<period>.pdf` into `out`.
///
/// # Errors
/// On I/O failure (the message names the file) or a PDF font defect.
pub fn write(q: &Qbr, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).context(|| format!("cannot create {}", out.display()))?;
    let stem = format!("qbr-{}", super::slug(&q.period.label));
    let html_path = out.join(format!("{stem}.html"));
    write_atomic(&html_path, html(q).as_bytes())
        .context(|| format!("cannot write {}", html_path.display()))?;
    let pdf_path = out.join(format!("{stem}.pdf"));
    let pdf = super::qbr_pdf::render(q)?;
    write_atomic(&pdf_path, &pdf).context(|| format!("cannot write {}", pdf_path.display()))?;
    Ok(vec![html_path, pdf_path])
}

/// The KPI statuses as readers see them (for the legend).
pub fn status_words() -> [(KpiStatus, &'static str); 4] {
    [
        (KpiStatus::Measured, "measured"),
        (
            KpiStatus::Inconclusive,
            "inconclusive: some evidence could not be judged",
        ),
        (
            KpiStatus::NotApplicable,
            "not applicable: nothing to measure",
        ),
        (
            KpiStatus::NotMeasured,
            "not measured: its check or setting is absent",
        ),
    ]
}
