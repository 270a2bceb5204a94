//! The KPIs of one run, kept in its summary (`kpis`): the shares a vCIO
//! shows a client (MFA, patching, EDR, encryption, backups...), the gaps
//! each party still has open and how old they are, how long each party
//! takes to close a gap, whether it keeps to its `[sla]` targets, and the
//! cost per endpoint.
//!
//! Every KPI states its numerator, its denominator (absent for a plain
//! count) and the evidence it comes from (`check:<id>`, `history`,
//! `config:<key>`). A KPI whose denominator is 0 is `not_applicable` and has
//! no value (never 100%); one whose checks could not judge every subject is
//! `inconclusive` (its value, when there is one, counts only what was
//! proven); one whose check did not run or whose setting is absent is
//! `not_measured`.
//!
//! Remediation comes from the history: each failing (check, subject) is an
//! open gap from the first run it failed in; it closes at the first later
//! run whose check judged it and no longer found it failing (a subject that
//! became unproven, or a check that could not run, keeps its gap open: the
//! evidence shows no fix). The summary keeps the open gaps and the gaps
//! closed by its run, so the next run needs only this one to carry them on.
//! Mean time to remediate and SLA adherence cover the gaps closed within the
//! last [`WINDOW_DAYS`] days (and, for the SLA, the open gaps already past
//! their target).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::summary::{CheckSummary, RunSummary};
use crate::checks::Verdict;
use crate::config::{Config, Owner, Sla};

/// The trailing window of mean time to remediate and SLA adherence.
pub const WINDOW_DAYS: i64 = 90;

/// Whether a KPI could be measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiStatus {
    /// Measured on complete evidence.
    Measured,
    /// Some of its evidence could not be judged: the value (if any) counts
    /// only what was proven.
    Inconclusive,
    /// Its denominator is 0: nothing to measure (no value, never 100%).
    NotApplicable,
    /// Its check did not run, or the setting it needs is absent.
    NotMeasured,
}

impl KpiStatus {
    /// The contract spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KpiStatus::Measured => "measured",
            KpiStatus::Inconclusive => "inconclusive",
            KpiStatus::NotApplicable => "not_applicable",
            KpiStatus::NotMeasured => "not_measured",
        }
    }
}

/// Which way is an improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// A higher value is better (coverage).
    Higher,
    /// A lower value is better (inactive accounts, time to remediate).
    Lower,
}

/// One KPI of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kpi {
    /// Stable id (`mfa_registered`, `mttr.owner.msp`, `sla.internal`).
    pub id: String,
    /// Display name.
    pub title: String,
    /// Whether it could be measured.
    pub status: KpiStatus,
    /// The value (`numerator / denominator`, as a percentage when the unit
    /// is `%`); absent when not applicable or not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `%`, `days`, `gaps`, or `<currency>/endpoint/month`.
    pub unit: String,
    /// Which way is an improvement.
    pub better: Better,
    /// The numerator.
    pub numerator: f64,
    /// The denominator (absent for a count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<f64>,
    /// What the numerator counts.
    pub numerator_is: String,
    /// What the denominator counts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub denominator_is: String,
    /// Where it comes from: `check:<id>`, `history`, `config:<key>`.
    pub evidence: Vec<String>,
    /// Why it is inconclusive or not measured, or a detail such as the
    /// oldest gap's age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

// Values are always finite (never NaN), so equality is total.
impl Eq for Kpi {}

/// A failing (check, subject) not yet fixed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenGap {
    /// Check id.
    pub check: String,
    /// Subject id.
    pub subject: String,
    /// The party responsible for the check.
    pub owner: Owner,
    /// The judged instant of the first run it failed in (RFC 3339).
    pub since: String,
}

/// A gap this run found fixed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedGap {
    /// Check id.
    pub check: String,
    /// Subject id.
    pub subject: String,
    /// Display name.
    pub name: String,
    /// The party responsible for the check.
    pub owner: Owner,
    /// First run it failed in (RFC 3339).
    pub since: String,
    /// The run that found it fixed (RFC 3339).
    pub closed: String,
    /// Days from `since` to `closed`.
    pub days: f64,
    /// The `[sla]` target in force when it closed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_days: Option<u32>,
}

// Values are always finite (never NaN), so equality is total.
impl Eq for ClosedGap {}

impl ClosedGap {
    /// Whether it closed within its target (`None` without one).
    pub fn within_sla(&self) -> Option<bool> {
        self.sla_days.map(|d| self.days <= f64::from(d))
    }
}

/// The `kpis` section of a run summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kpis {
    /// The window of time-to-remediate and SLA KPIs, in days.
    pub window_days: i64,
    /// Every KPI, in a stable order.
    pub kpis: Vec<Kpi>,
    /// Gaps still open after this run.
    pub open: Vec<OpenGap>,
    /// Gaps this run found fixed.
    pub closed: Vec<ClosedGap>,
}

impl Kpis {
    /// The KPI with this id.
    pub fn get(&self, id: &str) -> Option<&Kpi> {
        self.kpis.iter().find(|k| k.id == id)
    }
}

/// What the KPIs need from the organisation's config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KpiSettings {
    /// `[sla]`.
    pub sla: Sla,
    /// `[organisation] monthly_fee`.
    pub monthly_fee: Option<f64>,
    /// `[organisation] currency`.
    pub currency: Option<String>,
}

impl KpiSettings {
    /// The settings of an organisation config.
    pub fn from_config(config: &Config) -> KpiSettings {
        KpiSettings {
            sla: config.sla.clone(),
            monthly_fee: config.organisation.monthly_fee,
            currency: config.organisation.currency.clone(),
        }
    }
}

/// The instant a summary judged at (`as_of`, else its finish).
pub fn run_time(s: &RunSummary) -> Option<DateTime<Utc>> {
    [&s.as_of, &s.finished_at]
        .into_iter()
        .find_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn days_between(from: &str, to: DateTime<Utc>) -> f64 {
    DateTime::parse_from_rfc3339(from)
        .map(|f| {
            let secs = (to - f.with_timezone(&Utc)).num_seconds().max(0);
            round2(secs as f64 / 86_400.0)
        })
        .unwrap_or(0.0)
}

fn round2(v: f64) -> f64 {
    if v.is_finite() {
        (v * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// A share-of-subjects KPI: its id, title, checks, direction and wording.
struct Share {
    id: &'static str,
    title: &'static str,
    checks: &'static [&'static str],
    better: Better,
    numerator_is: &'static str,
    denominator_is: &'static str,
}

const SHARES: &[Share] = &[
    Share {
        id: "mfa_registered",
        title: "MFA registered",
        checks: &["mfa_registered"],
        better: Better::Higher,
        numerator_is: "enabled member accounts with an MFA method registered",
        denominator_is: "enabled member accounts",
    },
    Share {
        id: "mfa_admins",
        title: "Admins with MFA",
        checks: &["mfa_admins"],
        better: Better::Higher,
        numerator_is: "admin accounts with MFA",
        denominator_is: "admin accounts",
    },
    Share {
        id: "mfa_enforced",
        title: "MFA enforced by policy",
        checks: &["mfa_enforced"],
        better: Better::Higher,
        numerator_is: "accounts a policy requires MFA of",
        denominator_is: "accounts judged",
    },
    Share {
        id: "inactive_accounts",
        title: "Inactive accounts",
        checks: &["inactive_accounts"],
        better: Better::Lower,
        numerator_is: "enabled accounts inactive past the threshold",
        denominator_is: "enabled accounts",
    },
    Share {
        id: "access_reviews",
        title: "Access reviews on time",
        checks: &["access_review_completed"],
        better: Better::Higher,
        numerator_is: "kinds of account (members, guests, privileged roles) covered by a review completed on time",
        denominator_is: "kinds of account to review",
    },
    Share {
        id: "patch_compliance",
        title: "Patch compliance",
        checks: &["patch_latency_critical", "patch_latency_high"],
        better: Better::Higher,
        numerator_is: "devices with no critical or high patch past its limit",
        denominator_is: "devices with patch state",
    },
    Share {
        id: "edr_coverage",
        title: "EDR coverage",
        checks: &["edr_coverage"],
        better: Better::Higher,
        numerator_is: "devices protected by EDR",
        denominator_is: "devices",
    },
    Share {
        id: "encryption",
        title: "Disk encryption",
        checks: &["disk_encryption"],
        better: Better::Higher,
        numerator_is: "devices with encrypted disks",
        denominator_is: "devices judged",
    },
    Share {
        id: "stale_devices",
        title: "Stale devices",
        checks: &["stale_devices"],
        better: Better::Lower,
        numerator_is: "devices not seen within the threshold",
        denominator_is: "devices",
    },
    Share {
        id: "backup_recency",
        title: "Backup recency",
        checks: &["backup_recency"],
        better: Better::Higher,
        numerator_is: "protected machines with a recent good backup",
        denominator_is: "protected machines",
    },
];

/// The ids of every share KPI, in order (for charts and exports).
pub fn share_ids() -> impl Iterator<Item = (&'static str, &'static str)> {
    SHARES.iter().map(|s| (s.id, s.title))
}

fn share(summary: &RunSummary, def: &Share) -> Kpi {
    let found: Vec<&CheckSummary> = def
        .checks
        .iter()
        .filter_map(|id| summary.checks.iter().find(|c| c.check == *id))
        .collect();
    let evidence = def.checks.iter().map(|c| format!("check:{c}")).collect();
    let mut kpi = Kpi {
        id: def.id.to_owned(),
        title: def.title.to_owned(),
        status: KpiStatus::NotMeasured,
        value: None,
        unit: "%".to_owned(),
        better: def.better,
        numerator: 0.0,
        denominator: Some(0.0),
        numerator_is: def.numerator_is.to_owned(),
        denominator_is: def.denominator_is.to_owned(),
        evidence,
        note: None,
    };
    if found.is_empty() {
        kpi.denominator = None;
        kpi.note = Some(format!(
            "{} did not run (its evidence or framework is not in scope)",
            def.checks.join(", ")
        ));
        return kpi;
    }
    let evaluated = found.iter().map(|c| c.evaluated).max().unwrap_or(0);
    let (failing, unproven) = if let [one] = found.as_slice() {
        (one.failing_count, one.unproven_count)
    } else {
        let failing: BTreeSet<&str> = found
            .iter()
            .flat_map(|c| c.failing.iter().map(|s| s.id.as_str()))
            .collect();
        let unproven: BTreeSet<&str> = found
            .iter()
            .flat_map(|c| c.unproven.iter().map(|s| s.id.as_str()))
            .filter(|id| !failing.contains(id))
            .collect();
        (failing.len(), unproven.len())
    };
    let undecided = found.iter().any(|c| c.outcome == Verdict::Inconclusive) || unproven > 0;
    kpi.denominator = Some(evaluated as f64);
    if evaluated == 0 {
        kpi.status = if undecided {
            KpiStatus::Inconclusive
        } else {
            KpiStatus::NotApplicable
        };
        kpi.note = Some(if undecided {
            "no subject could be judged".to_owned()
        } else {
            "nothing to measure (denominator 0)".to_owned()
        });
        return kpi;
    }
    let numerator = match def.better {
        Better::Higher => evaluated.saturating_sub(failing + unproven),
        Better::Lower => failing.min(evaluated),
    };
    kpi.numerator = numerator as f64;
    kpi.value = Some(round2(100.0 * numerator as f64 / evaluated as f64));
    if undecided {
        kpi.status = KpiStatus::Inconclusive;
        kpi.note = Some(match def.better {
            Better::Higher => {
                format!(
                    "{unproven} subject(s) could not be judged and are not counted as compliant"
                )
            }
            Better::Lower => {
                format!("{unproven} subject(s) could not be judged and are not counted")
            }
        });
    } else {
        kpi.status = KpiStatus::Measured;
    }
    kpi
}

/// The parties KPIs are given per owner for.
pub const PARTIES: [Owner; 3] = [Owner::Internal, Owner::Msp, Owner::Unassigned];

/// The open gaps as the previous run left them: its `kpis.open`, or (for
/// a summary written before KPIs) its failing subjects, open since it.
fn carried(previous: Option<&RunSummary>) -> BTreeMap<(String, String), OpenGap> {
    let Some(p) = previous else {
        return BTreeMap::new();
    };
    if let Some(k) = &p.kpis {
        return k
            .open
            .iter()
            .map(|g| ((g.check.clone(), g.subject.clone()), g.clone()))
            .collect();
    }
    let since = run_time(p)
        .map(crate::evidence::format_time)
        .unwrap_or_default();
    p.checks
        .iter()
        .flat_map(|c| {
            c.failing.iter().map(|s| {
                (
                    (c.check.clone(), s.id.clone()),
                    OpenGap {
                        check: c.check.clone(),
                        subject: s.id.clone(),
                        owner: c.responsible,
                        since: since.clone(),
                    },
                )
            })
        })
        .collect()
}

/// Compute a run's KPIs.
///
/// `previous` is the organisation's run before this one (its open gaps are
/// carried on); `earlier_closed` the gaps closed by earlier runs (those
/// outside the window are ignored here).
pub fn compute(
    summary: &RunSummary,
    previous: Option<&RunSummary>,
    earlier_closed: &[ClosedGap],
    settings: &KpiSettings,
) -> Kpis {
    let now = run_time(summary).unwrap_or_else(Utc::now);
    let now_text = crate::evidence::format_time(now);
    let mut before = carried(previous);
    let mut open = Vec::new();
    let mut closed = Vec::new();
    for c in &summary.checks {
        for f in &c.failing {
            let key = (c.check.clone(), f.id.clone());
            let since = before
                .remove(&key)
                .map_or_else(|| now_text.clone(), |g| g.since);
            open.push(OpenGap {
                check: c.check.clone(),
                subject: f.id.clone(),
                owner: c.responsible,
                since,
            });
        }
    }
    for (_, gap) in before {
        let check = summary.checks.iter().find(|c| c.check == gap.check);
        // Fixed: the check judged subjects this run (fully, or all but its
        // unproven ones) and this one is neither failing nor unproven.
        let fixed = check.is_some_and(|c| {
            c.evaluated > 0
                && (c.judged || !c.unproven.is_empty())
                && !c.unproven.iter().any(|u| u.id == gap.subject)
        });
        if !fixed {
            open.push(gap);
            continue;
        }
        let name = previous
            .and_then(|p| p.checks.iter().find(|c| c.check == gap.check))
            .and_then(|c| c.failing.iter().find(|s| s.id == gap.subject))
            .map_or_else(|| gap.subject.clone(), |s| s.name.clone());
        closed.push(ClosedGap {
            days: days_between(&gap.since, now),
            sla_days: settings.sla.target(gap.owner, &gap.check),
            check: gap.check,
            subject: gap.subject,
            name,
            owner: gap.owner,
            since: gap.since,
            closed: now_text.clone(),
        });
    }
    open.sort_by(|a, b| (&a.check, &a.subject).cmp(&(&b.check, &b.subject)));
    closed.sort_by(|a, b| (&a.check, &a.subject).cmp(&(&b.check, &b.subject)));

    let mut kpis: Vec<Kpi> = SHARES.iter().map(|d| share(summary, d)).collect();
    gap_kpis(summary, &open, now, &mut kpis);
    let window_start = now - chrono::Duration::days(WINDOW_DAYS);
    let in_window: Vec<&ClosedGap> = earlier_closed
        .iter()
        .filter(|g| {
            DateTime::parse_from_rfc3339(&g.closed)
                .is_ok_and(|t| t.with_timezone(&Utc) > window_start && t.with_timezone(&Utc) < now)
        })
        .chain(closed.iter())
        .collect();
    remediation_kpis(&in_window, &mut kpis);
    sla_kpis(settings, &in_window, &open, now, &mut kpis);
    kpis.push(cost_per_endpoint(summary, settings));
    Kpis {
        window_days: WINDOW_DAYS,
        kpis,
        open,
        closed,
    }
}

fn gap_kpis(summary: &RunSummary, open: &[OpenGap], now: DateTime<Utc>, kpis: &mut Vec<Kpi>) {
    for owner in PARTIES {
        let mine: Vec<&OpenGap> = open.iter().filter(|g| g.owner == owner).collect();
        let undecided: Vec<&str> = summary
            .checks
            .iter()
            .filter(|c| c.responsible == owner && (!c.judged || c.unproven_count > 0))
            .map(|c| c.check.as_str())
            .collect();
        let status = if undecided.is_empty() {
            KpiStatus::Measured
        } else {
            KpiStatus::Inconclusive
        };
        let note = (!undecided.is_empty()).then(|| {
            format!(
                "not every subject could be judged by {}",
                undecided.join(", ")
            )
        });
        let n = mine.len() as f64;
        kpis.push(Kpi {
            id: format!("open_gaps.{owner}"),
            title: format!("Open gaps ({})", party_label(owner)),
            status,
            value: Some(n),
            unit: "gaps".to_owned(),
            better: Better::Lower,
            numerator: n,
            denominator: None,
            numerator_is: format!(
                "failing subjects of checks {} is responsible for",
                party_label(owner)
            ),
            denominator_is: String::new(),
            evidence: vec!["checks".to_owned()],
            note: note.clone(),
        });
        let ages: Vec<f64> = mine.iter().map(|g| days_between(&g.since, now)).collect();
        let total: f64 = ages.iter().sum();
        let oldest = ages.iter().copied().fold(0.0_f64, f64::max);
        kpis.push(Kpi {
            id: format!("open_gap_age.{owner}"),
            title: format!("Mean age of open gaps ({})", party_label(owner)),
            status: if ages.is_empty() {
                KpiStatus::NotApplicable
            } else {
                status
            },
            value: (!ages.is_empty()).then(|| round2(total / ages.len() as f64)),
            unit: "days".to_owned(),
            better: Better::Lower,
            numerator: round2(total),
            denominator: Some(n),
            numerator_is: "days each open gap has been failing, summed".to_owned(),
            denominator_is: "open gaps".to_owned(),
            evidence: vec!["checks".to_owned(), "history".to_owned()],
            note: if ages.is_empty() {
                Some("no open gaps".to_owned())
            } else {
                Some(format!("oldest {oldest} days"))
            },
        });
    }
}

fn mean_kpi(id: String, title: String, gaps: &[&ClosedGap], evidence: Vec<String>) -> Kpi {
    let total: f64 = gaps.iter().map(|g| g.days).sum();
    let n = gaps.len() as f64;
    Kpi {
        id,
        title,
        status: if gaps.is_empty() {
            KpiStatus::NotApplicable
        } else {
            KpiStatus::Measured
        },
        value: (!gaps.is_empty()).then(|| round2(total / n)),
        unit: "days".to_owned(),
        better: Better::Lower,
        numerator: round2(total),
        denominator: Some(n),
        numerator_is: format!(
            "days from first failing run to first run found fixed, summed over gaps closed in the last {WINDOW_DAYS} days"
        ),
        denominator_is: format!("gaps closed in the last {WINDOW_DAYS} days"),
        evidence,
        note: gaps
            .is_empty()
            .then(|| format!("no gap closed in the last {WINDOW_DAYS} days")),
    }
}

fn remediation_kpis(closed: &[&ClosedGap], kpis: &mut Vec<Kpi>) {
    for owner in PARTIES {
        let mine: Vec<&ClosedGap> = closed
            .iter()
            .copied()
            .filter(|g| g.owner == owner)
            .collect();
        kpis.push(mean_kpi(
            format!("mttr.owner.{owner}"),
            format!("Mean time to remediate ({})", party_label(owner)),
            &mine,
            vec!["history".to_owned()],
        ));
    }
    let checks: BTreeSet<&str> = closed.iter().map(|g| g.check.as_str()).collect();
    for check in checks {
        let mine: Vec<&ClosedGap> = closed
            .iter()
            .copied()
            .filter(|g| g.check == check)
            .collect();
        kpis.push(mean_kpi(
            format!("mttr.check.{check}"),
            format!("Mean time to remediate ({check})"),
            &mine,
            vec!["history".to_owned(), format!("check:{check}")],
        ));
    }
}

fn sla_kpis(
    settings: &KpiSettings,
    closed: &[&ClosedGap],
    open: &[OpenGap],
    now: DateTime<Utc>,
    kpis: &mut Vec<Kpi>,
) {
    for owner in [Owner::Internal, Owner::Msp] {
        let id = format!("sla.{owner}");
        let title = format!("SLA adherence ({})", party_label(owner));
        let mut kpi = Kpi {
            id,
            title,
            status: KpiStatus::NotMeasured,
            value: None,
            unit: "%".to_owned(),
            better: Better::Higher,
            numerator: 0.0,
            denominator: Some(0.0),
            numerator_is: format!("gaps closed within their target in the last {WINDOW_DAYS} days"),
            denominator_is: format!(
                "gaps with a target closed in the last {WINDOW_DAYS} days, and open gaps past their target"
            ),
            evidence: vec!["history".to_owned(), format!("config:[sla.{owner}]")],
            note: None,
        };
        let has_table = match owner {
            Owner::Internal => settings.sla.internal.is_some(),
            _ => settings.sla.msp.is_some(),
        };
        if !has_table {
            kpi.denominator = None;
            kpi.note = Some(format!("no [sla.{owner}] targets in the config"));
            kpis.push(kpi);
            continue;
        }
        let with_target: Vec<&&ClosedGap> = closed
            .iter()
            .filter(|g| g.owner == owner && g.sla_days.is_some())
            .collect();
        let met = with_target
            .iter()
            .filter(|g| g.within_sla() == Some(true))
            .count();
        let overdue = open
            .iter()
            .filter(|g| g.owner == owner)
            .filter(|g| {
                settings
                    .sla
                    .target(owner, &g.check)
                    .is_some_and(|d| days_between(&g.since, now) > f64::from(d))
            })
            .count();
        let denominator = with_target.len() + overdue;
        kpi.numerator = met as f64;
        kpi.denominator = Some(denominator as f64);
        if denominator == 0 {
            kpi.status = KpiStatus::NotApplicable;
            kpi.note = Some("no gap with a target closed or overdue (denominator 0)".to_owned());
        } else {
            kpi.status = KpiStatus::Measured;
            kpi.value = Some(round2(100.0 * met as f64 / denominator as f64));
            if overdue > 0 {
                kpi.note = Some(format!("{overdue} open gap(s) already past their target"));
            }
        }
        kpis.push(kpi);
    }
}

fn cost_per_endpoint(summary: &RunSummary, settings: &KpiSettings) -> Kpi {
    let currency = settings.currency.clone().unwrap_or_default();
    let unit = if currency.is_empty() {
        "per endpoint per month".to_owned()
    } else {
        format!("{currency}/endpoint/month")
    };
    let mut kpi = Kpi {
        id: "cost_per_endpoint".to_owned(),
        title: "Cost per endpoint".to_owned(),
        status: KpiStatus::NotMeasured,
        value: None,
        unit,
        better: Better::Lower,
        numerator: 0.0,
        denominator: None,
        numerator_is: "contract fee per month".to_owned(),
        denominator_is: "managed endpoints (devices in the reconciled inventory)".to_owned(),
        evidence: vec![
            "config:[organisation] monthly_fee".to_owned(),
            "check:device_coverage".to_owned(),
        ],
        note: None,
    };
    let Some(fee) = settings.monthly_fee else {
        kpi.note = Some("no [organisation] monthly_fee in the config".to_owned());
        return kpi;
    };
    kpi.numerator = fee;
    let Some(devices) = summary.checks.iter().find(|c| c.check == "device_coverage") else {
        kpi.note = Some("device_coverage did not run: no device inventory".to_owned());
        return kpi;
    };
    kpi.denominator = Some(devices.evaluated as f64);
    let partial = devices.outcome == Verdict::Inconclusive
        || summary
            .sources
            .values()
            .any(|s| s.status != crate::evidence::SourceStatus::Complete);
    if devices.evaluated == 0 {
        kpi.status = KpiStatus::NotApplicable;
        kpi.note = Some("no managed endpoints (denominator 0)".to_owned());
        return kpi;
    }
    kpi.value = Some(round2(fee / devices.evaluated as f64));
    if partial {
        kpi.status = KpiStatus::Inconclusive;
        kpi.note = Some("a source was not complete: the inventory may be short".to_owned());
    } else {
        kpi.status = KpiStatus::Measured;
    }
    kpi
}

/// A party as people say it.
pub fn party_label(owner: Owner) -> &'static str {
    match owner {
        Owner::Internal => "internal IT",
        Owner::Msp => "MSP",
        Owner::Shared => "shared",
        Owner::Unassigned => "unassigned",
    }
}
