//! `auditpack kpis`: an organisation's KPI series over its runs, as CSV
//! (one row per run and KPI, for spreadsheets and BI tools) or JSON (one
//! series per KPI, each point a run).
//!
//! CSV columns: `organisation, run_id, as_of, frameworks, kpi, title,
//! status, value, unit, numerator, denominator, evidence, note`. `value` is
//! empty when the KPI is not applicable (denominator 0) or not measured;
//! `denominator` is empty for a plain count. Cells are guarded against
//! formula injection as `findings.csv` is.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::history::kpis::{Better, KpiStatus};
use crate::history::RunSummary;
use crate::report::csv::cell_text;

/// The CSV header.
pub const CSV_HEADER: &str = "organisation,run_id,as_of,frameworks,kpi,title,status,value,unit,numerator,denominator,evidence,note";

fn number(v: f64) -> String {
    // Finite values only; whole numbers without a fraction.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The series as CSV (CRLF line ends, as `findings.csv`).
pub fn csv(runs: &[RunSummary]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for run in runs {
        let Some(k) = &run.kpis else { continue };
        let frameworks = run.frameworks.join(" ");
        for kpi in &k.kpis {
            let cells = [
                run.organisation.clone(),
                run.run_id.clone(),
                run.as_of.clone(),
                frameworks.clone(),
                kpi.id.clone(),
                kpi.title.clone(),
                kpi.status.as_str().to_owned(),
                kpi.value.map(number).unwrap_or_default(),
                kpi.unit.clone(),
                number(kpi.numerator),
                kpi.denominator.map(number).unwrap_or_default(),
                kpi.evidence.join(" "),
                kpi.note.clone().unwrap_or_default(),
            ];
            let row: Vec<String> = cells.iter().map(|c| cell_text(c)).collect();
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

/// One point of a series.
#[derive(Debug, Serialize)]
pub struct Point<'a> {
    /// Run id.
    pub run_id: &'a str,
    /// The instant the run judged at.
    pub as_of: &'a str,
    /// Frameworks in scope in that run.
    pub frameworks: &'a [String],
    /// Whether it could be measured.
    pub status: KpiStatus,
    /// The value (absent when not applicable or not measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Numerator.
    pub numerator: f64,
    /// Denominator (absent for a count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<f64>,
    /// Where it comes from.
    pub evidence: &'a [String],
    /// Why inconclusive, not applicable or not measured, or a detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
}

/// One KPI over the runs.
#[derive(Debug, Serialize)]
pub struct Series<'a> {
    /// KPI id.
    pub id: &'a str,
    /// Display name.
    pub title: &'a str,
    /// Unit.
    pub unit: &'a str,
    /// Which way is an improvement.
    pub better: Better,
    /// What the numerator counts.
    pub numerator_is: &'a str,
    /// What the denominator counts.
    pub denominator_is: &'a str,
    /// One point per run that has the KPI, oldest first.
    pub points: Vec<Point<'a>>,
}

/// Every KPI's series, in the order they first appear.
pub fn series(runs: &[RunSummary]) -> Vec<Series<'_>> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_id: BTreeMap<&str, Series<'_>> = BTreeMap::new();
    for run in runs {
        let Some(k) = &run.kpis else { continue };
        for kpi in &k.kpis {
            let s = by_id.entry(kpi.id.as_str()).or_insert_with(|| {
                order.push(kpi.id.as_str());
                Series {
                    id: &kpi.id,
                    title: &kpi.title,
                    unit: &kpi.unit,
                    better: kpi.better,
                    numerator_is: &kpi.numerator_is,
                    denominator_is: &kpi.denominator_is,
                    points: Vec::new(),
                }
            });
            s.points.push(Point {
                run_id: &run.run_id,
                as_of: &run.as_of,
                frameworks: &run.frameworks,
                status: kpi.status,
                value: kpi.value,
                numerator: kpi.numerator,
                denominator: kpi.denominator,
                evidence: &kpi.evidence,
                note: kpi.note.as_deref(),
            });
        }
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(id))
        .collect()
}

/// The series as JSON: `{"organisation", "runs", "kpis": [series...]}`.
///
/// # Errors
/// Never for series built here.
pub fn json(organisation: &str, runs: &[RunSummary]) -> Result<String> {
    #[derive(Serialize)]
    struct Doc<'a> {
        organisation: &'a str,
        runs: usize,
        kpis: Vec<Series<'a>>,
    }
    let doc = Doc {
        organisation,
        runs: runs.len(),
        kpis: series(runs),
    };
    let mut s = serde_json::to_string_pretty(&doc)
        .map_err(|e| Error::invalid(format!("cannot encode the KPI series: {e}")))?;
    s.push('\n');
    Ok(s)
}
