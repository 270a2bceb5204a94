//! Trends over an organisation's run history: the KPI series
//! ([`export`], `auditpack kpis`), the quarterly business review
//! ([`qbr`], `auditpack qbr`) and the fleet dashboard ([`dashboard`],
//! `auditpack dashboard`). Charts are SVG drawn here ([`svg`]) and, in the
//! QBR's PDF, drawn with the same points ([`qbr_pdf`]).
//!
//! Everything here reads the run summaries (and their `kpis`, see
//! [`crate::history::kpis`]); summaries written before KPIs existed get
//! theirs computed on read, from the summary and the one before it.

pub mod dashboard;
pub mod export;
pub mod qbr;
pub mod qbr_pdf;
pub mod svg;

use std::path::PathBuf;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};

use crate::error::{Error, Result};
use crate::history::kpis::{self, KpiSettings};
use crate::history::{RunSummary, SummaryStore};

/// One organisation whose history is read.
#[derive(Clone, Debug)]
pub struct Organisation {
    /// Display name (`[organisation] name`).
    pub name: String,
    /// Its folder in a fleet store (its file-name-safe name), or a slug of
    /// its name for a single organisation.
    pub slug: String,
    /// Its store (the folder holding `summaries/` and `runs/`).
    pub store: PathBuf,
    /// What the KPIs need from its config.
    pub settings: KpiSettings,
}

/// A closed range of days, UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub from: NaiveDate,
    /// Last day (included).
    pub to: NaiveDate,
    /// `2026Q4`, or `2026-10-01 to 2026-12-31`.
    pub label: String,
}

impl Period {
    /// `--quarter 2026Q4` (also `2026-Q4`, `q4-2026` is refused).
    ///
    /// # Errors
    /// When it is not a year and a quarter 1 to 4.
    pub fn quarter(s: &str) -> Result<Period> {
        let bad = || {
            Error::invalid(format!(
                "--quarter {s:?} is not a quarter; write the year and the quarter, e.g. 2026Q4"
            ))
        };
        let upper = s.trim().to_ascii_uppercase();
        let (year, q) = upper.split_once('Q').ok_or_else(bad)?;
        let year: i32 = year.trim_end_matches('-').parse().map_err(|_| bad())?;
        let q: u32 = q.parse().map_err(|_| bad())?;
        if !(1..=4).contains(&q) || !(1970..=9999).contains(&year) {
            return Err(bad());
        }
        let from = NaiveDate::from_ymd_opt(year, (q - 1) * 3 + 1, 1).ok_or_else(bad)?;
        let next = if q == 4 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, q * 3 + 1, 1)
        }
        .ok_or_else(bad)?;
        let to = next.pred_opt().ok_or_else(bad)?;
        Ok(Period {
            from,
            to,
            label: format!("{year}Q{q}"),
        })
    }

    /// `--from DATE --to DATE` (both included).
    ///
    /// # Errors
    /// When a date is not `YYYY-MM-DD` or `to` is before `from`.
    pub fn dates(from: &str, to: &str) -> Result<Period> {
        let parse = |flag: &str, s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| Error::invalid(format!("{flag} {s:?} is not a date (YYYY-MM-DD)")))
        };
        let (f, t) = (parse("--from", from)?, parse("--to", to)?);
        if t < f {
            return Err(Error::invalid(format!(
                "--to {t} is before --from {f}: the period is empty"
            )));
        }
        Ok(Period {
            from: f,
            to: t,
            label: format!("{f} to {t}"),
        })
    }

    /// The first instant of the period.
    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The first instant after the period.
    pub fn end(&self) -> DateTime<Utc> {
        self.to
            .succ_opt()
            .unwrap_or(self.to)
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
    }

    /// Whether an instant is in the period.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start() && t < self.end()
    }

    /// The quarter a day falls in.
    pub fn quarter_of(day: NaiveDate) -> Period {
        let q = (day.month() - 1) / 3 + 1;
        // A valid date always has a valid quarter.
        Period::quarter(&format!("{}Q{q}", day.year())).unwrap_or(Period {
            from: day,
            to: day,
            label: day.to_string(),
        })
    }
}

/// The start time a run id begins with (`20260115T020000Z-...`), if it does.
fn id_time(run_id: &str) -> Option<DateTime<Utc>> {
    let head = run_id.get(..16)?;
    NaiveDateTime::parse_from_str(head, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The organisation's runs judged within `[from, to)` (all runs when
/// `None`), oldest first, each with its KPIs (computed on read for a
/// summary written before they existed). Run ids that begin with their
/// start time let runs far outside the range be skipped unread; summaries
/// of another organisation sharing the store are left out.
///
/// # Errors
/// When the store cannot be listed or a summary in range cannot be read.
pub fn load_runs(
    store: &dyn SummaryStore,
    organisation: &str,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    settings: &KpiSettings,
) -> Result<Vec<RunSummary>> {
    let margin = chrono::Duration::days(2);
    let mut out: Vec<RunSummary> = Vec::new();
    for id in store.list()? {
        if let (Some((from, to)), Some(t)) = (range, id_time(&id)) {
            if t < from - margin || t >= to + margin {
                continue;
            }
        }
        let summary = store.read(&id)?;
        if !summary.organisation.eq_ignore_ascii_case(organisation) {
            continue;
        }
        let Some(at) = kpis::run_time(&summary) else {
            continue;
        };
        if let Some((from, to)) = range {
            if at < from || at >= to {
                continue;
            }
        }
        out.push(summary);
    }
    out.sort_by(|a, b| (kpis::run_time(a), &a.run_id).cmp(&(kpis::run_time(b), &b.run_id)));
    // Older summaries: KPIs from the summary and the one before it.
    for i in 0..out.len() {
        if out[i].kpis.is_none() {
            let (before, rest) = out.split_at_mut(i);
            let current = &mut rest[0];
            let k = kpis::compute(current, before.last(), &[], settings);
            current.kpis = Some(k);
        }
    }
    Ok(out)
}

/// A name as a file name: lower-case letters, digits and `-`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "organisation".to_owned()
    } else {
        out
    }
}

/// Escape text for HTML (element content and quoted attributes).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A KPI value as shown: `92.5%`, `3.2 days`, `not applicable`.
pub fn show_value(k: &kpis::Kpi) -> String {
    match k.value {
        None => match k.status {
            kpis::KpiStatus::NotApplicable => "not applicable".to_owned(),
            kpis::KpiStatus::Inconclusive => "inconclusive".to_owned(),
            _ => "not measured".to_owned(),
        },
        Some(v) => {
            let mut s = if k.unit == "%" {
                format!("{}%", trim_number(v))
            } else if k.unit == "gaps" {
                trim_number(v)
            } else {
                format!("{} {}", trim_number(v), k.unit)
            };
            if k.status == kpis::KpiStatus::Inconclusive {
                s.push_str(" (inconclusive)");
            }
            s
        }
    }
}

/// A number with at most one decimal, without a trailing `.0`.
pub fn trim_number(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_and_dates() {
        let q = Period::quarter("2026Q4").expect("quarter");
        assert_eq!(q.from.to_string(), "2026-10-01");
        assert_eq!(q.to.to_string(), "2026-12-31");
        let q = Period::quarter("2024q1").expect("quarter");
        assert_eq!(q.to.to_string(), "2024-03-31");
        for bad in ["2026Q5", "2026", "Q4", "2026Q0", "x"] {
            assert!(Period::quarter(bad).is_err(), "{bad}");
        }
        assert!(Period::dates("2026-02-01", "2026-01-01").is_err());
        assert!(Period::dates("2026-13-01", "2026-12-01").is_err());
        assert_eq!(slug("Contoso Dental, Inc."), "contoso-dental-inc");
    }
}
