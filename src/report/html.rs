//! `reports/report.html`: one self-contained page (inline CSS and SVG, no
//! fonts, scripts or images from anywhere) rendered with handlebars from the
//! template `reports/report.html.hbs`, which ships inside the binary.
//!
//! Every value from the run is inserted with `{{...}}`, which HTML-escapes;
//! the template uses no triple-stash, and a unit test keeps it that way.

use std::io::BufWriter;
use std::path::Path;

use handlebars::Handlebars;
use serde::Serialize;

use super::model::{Counts, Report, SummaryRow};
use crate::error::{Error, Result, ResultExt};
use crate::evaluate::Status;
use crate::evidence::AtomicFile;

/// The template, embedded so an installed binary needs no files beside it.
pub const TEMPLATE: &str = include_str!("../../reports/report.html.hbs");

/// One coloured piece of a stacked bar.
#[derive(Debug, Serialize)]
struct Segment {
    x: f64,
    width: f64,
    class: &'static str,
    label: &'static str,
    count: usize,
}

/// One bar of the chart.
#[derive(Debug, Serialize)]
struct Bar {
    label: String,
    y: f64,
    text_y: f64,
    total: usize,
    segments: Vec<Segment>,
}

/// A horizontal stacked bar chart, laid out in SVG user units.
#[derive(Debug, Serialize)]
struct Chart {
    height: f64,
    bars: Vec<Bar>,
    headings: Vec<Heading>,
}

#[derive(Debug, Serialize)]
struct Heading {
    text: &'static str,
    y: f64,
}

const CHART_STATUSES: [(Status, &str); 6] = [
    (Status::Pass, "pass"),
    (Status::ManualAttested, "manual_attested"),
    (Status::Fail, "fail"),
    (Status::Inconclusive, "inconclusive"),
    (Status::ManualPending, "manual_pending"),
    (Status::NotApplicable, "not_applicable"),
];

const BAR_X: f64 = 150.0;
const BAR_WIDTH: f64 = 520.0;

fn chart(by_framework: &[SummaryRow], by_owner: &[SummaryRow]) -> Chart {
    let mut y = 0.0;
    let mut bars = Vec::new();
    let mut headings = Vec::new();
    for (text, rows) in [("By framework", by_framework), ("By owner", by_owner)] {
        y += 18.0;
        headings.push(Heading { text, y });
        y += 8.0;
        for row in rows {
            bars.push(bar(&row.label, &row.counts, y));
            y += 30.0;
        }
        y += 6.0;
    }
    Chart {
        height: y,
        bars,
        headings,
    }
}

fn bar(label: &str, counts: &Counts, y: f64) -> Bar {
    let mut x = BAR_X;
    let mut segments = Vec::new();
    for (status, class) in CHART_STATUSES {
        let n = counts.get(status);
        if n == 0 || counts.total == 0 {
            continue;
        }
        let width = BAR_WIDTH * n as f64 / counts.total as f64;
        segments.push(Segment {
            x: (x * 10.0).round() / 10.0,
            width: (width * 10.0).round() / 10.0,
            class,
            label: super::model::status_label(status),
            count: n,
        });
        x += width;
    }
    Bar {
        label: label.to_owned(),
        y,
        text_y: y + 15.0,
        total: counts.total,
        segments,
    }
}

/// Subject lists up to this long are shown unfolded.
const OPEN_SUBJECTS: usize = 200;

handlebars::handlebars_helper!(length: |list: array| list.len());
handlebars::handlebars_helper!(short: |list: array| list.len() <= OPEN_SUBJECTS);

#[derive(Serialize)]
struct Context<'a> {
    r: &'a Report,
    chart: Chart,
}

fn registry() -> Result<Handlebars<'static>> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_helper("length", Box::new(length));
    hb.register_helper("short", Box::new(short));
    hb.register_template_string("report", TEMPLATE)
        .map_err(|e| Error::invalid(format!("report template reports/report.html.hbs: {e}")))?;
    Ok(hb)
}

/// Render the page.
///
/// # Errors
/// When the template cannot be compiled or rendered (a defect in the
/// shipped template, not in the data).
pub fn render(report: &Report) -> Result<String> {
    let ctx = Context {
        r: report,
        chart: chart(&report.by_framework, &report.by_owner),
    };
    let page = registry()?
        .render("report", &ctx)
        .map_err(|e| Error::invalid(format!("cannot render the HTML report: {e}")))?;
    Ok(super::drift::splice_html(
        page,
        &super::drift::sections(&report.history),
    ))
}

/// Write `reports/report.html` under `run_dir` (atomically, streamed: the
/// page is never held whole in memory).
///
/// # Errors
/// When rendering fails or on I/O failure.
pub fn write(run_dir: &Path, report: &Report) -> Result<()> {
    let hb = registry()?;
    let ctx = Context {
        r: report,
        chart: chart(&report.by_framework, &report.by_owner),
    };
    let path = run_dir.join("reports/report.html");
    let file = AtomicFile::create(&path).context(|| format!("cannot write {}", path.display()))?;
    let out = BufWriter::with_capacity(1 << 20, file);
    let mut out = super::drift::SpliceWriter::new(out, &super::drift::sections(&report.history));
    hb.render_to_write("report", &ctx, &mut out)
        .map_err(|e| Error::invalid(format!("cannot render the HTML report: {e}")))?;
    out.finish()
        .and_then(|out| out.into_inner().map_err(|e| e.into_error()))
        .and_then(AtomicFile::commit)
        .context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::TEMPLATE;

    #[test]
    fn template_never_inserts_raw_html() {
        assert!(
            !TEMPLATE.contains("{{{"),
            "triple-stash inserts unescaped data"
        );
        assert!(!TEMPLATE.contains("{{&"), "{{& inserts unescaped data");
    }

    #[test]
    fn template_references_nothing_on_the_network() {
        let lower = TEMPLATE.to_lowercase();
        for bad in ["http://", "https://", "<script", "@import", "url("] {
            assert!(!lower.contains(bad), "template contains {bad}");
        }
    }
}
