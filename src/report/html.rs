//! `reports/report.html`: one self-contained page (inline CSS and SVG, no
//! fonts, scripts or images from anywhere) rendered with handlebars from the
//! template `reports/report.html.hbs`, which ships inside the binary.
//!
//! Every value from the run is inserted with `{{...}}`, which HTML-escapes;
//! the template uses no triple-stash, and a unit test keeps it that way.

use std::io::BufWriter;
use std::path::Path;
use std::sync::OnceLock;

use handlebars::Handlebars;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::model::{Attention, Counts, Gap, OwnerGaps, Report, SummaryRow};
use crate::checks::Subject;
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

/// Subjects of one gap shown on the page; the rest are counted, with where
/// every one of them is (`results/findings.csv` and `results/controls.json`),
/// so the page grows with the number of failing checks, not of subjects.
pub const HTML_SUBJECTS: usize = 500;

handlebars::handlebars_helper!(short: |n: u64| n <= OPEN_SUBJECTS as u64);

#[derive(Serialize)]
struct Context<'a> {
    r: &'a Report,
    /// The gaps by party, their subject lists cut ([`OwnerView`]).
    owners: Vec<OwnerView<'a>>,
    /// [`HTML_SUBJECTS`], for the page to say so.
    max_subjects: usize,
    chart: Chart,
}

impl<'a> Context<'a> {
    fn new(report: &'a Report) -> Self {
        Context {
            r: report,
            owners: report.owners.iter().map(OwnerView::new).collect(),
            max_subjects: HTML_SUBJECTS,
            chart: chart(&report.by_framework, &report.by_owner),
        }
    }
}

/// One party's gaps as the page shows them.
#[derive(Serialize)]
struct OwnerView<'a> {
    owner: &'static str,
    label: &'static str,
    gaps: Vec<GapView<'a>>,
    unseen: Vec<GapView<'a>>,
    attention: &'a [Attention],
    subject_total: usize,
    gap_count: usize,
    attention_count: usize,
    unseen_subject_total: usize,
    unseen_count: usize,
}

impl<'a> OwnerView<'a> {
    fn new(o: &'a OwnerGaps) -> Self {
        OwnerView {
            owner: o.owner,
            label: o.label,
            gaps: o.gaps.iter().map(GapView).collect(),
            unseen: o.unseen.iter().map(GapView).collect(),
            attention: &o.attention,
            subject_total: o.subject_total,
            gap_count: o.gap_count,
            attention_count: o.attention_count,
            unseen_subject_total: o.unseen_subject_total,
            unseen_count: o.unseen_count,
        }
    }
}

/// A gap as the page shows it: every field of [`Gap`], each subject list cut
/// after [`HTML_SUBJECTS`], with its full length (`failing_total`,
/// `unproven_total`) and how many are not shown (`failing_more`,
/// `unproven_more`).
struct GapView<'a>(&'a Gap);

impl Serialize for GapView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        fn shown(list: &[Subject]) -> &[Subject] {
            &list[..list.len().min(HTML_SUBJECTS)]
        }
        let g = self.0;
        let mut s = serializer.serialize_struct("Gap", 13)?;
        s.serialize_field("responsible", &g.responsible)?;
        s.serialize_field("check", &g.check)?;
        s.serialize_field("title", &g.title)?;
        s.serialize_field("remediation", &g.remediation)?;
        s.serialize_field("controls", &g.controls)?;
        s.serialize_field("evaluated", &g.evaluated)?;
        s.serialize_field("evidence", &g.evidence)?;
        s.serialize_field("failing", shown(&g.failing))?;
        s.serialize_field("failing_total", &g.failing.len())?;
        s.serialize_field(
            "failing_more",
            &g.failing.len().saturating_sub(HTML_SUBJECTS),
        )?;
        s.serialize_field("unproven", shown(&g.unproven))?;
        s.serialize_field("unproven_total", &g.unproven.len())?;
        s.serialize_field(
            "unproven_more",
            &g.unproven.len().saturating_sub(HTML_SUBJECTS),
        )?;
        s.end()
    }
}

/// The compiled template, built once per process: compiling it takes longer
/// than rendering a small organisation's page, and a fleet renders hundreds.
fn registry() -> Result<&'static Handlebars<'static>> {
    static REGISTRY: OnceLock<std::result::Result<Handlebars<'static>, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let mut hb = Handlebars::new();
            hb.set_strict_mode(true);
            hb.register_helper("short", Box::new(short));
            hb.register_template_string("report", TEMPLATE)
                .map_err(|e| format!("report template reports/report.html.hbs: {e}"))?;
            Ok(hb)
        })
        .as_ref()
        .map_err(|e| Error::invalid(e.clone()))
}

/// Render the page.
///
/// # Errors
/// When the template cannot be compiled or rendered (a defect in the
/// shipped template, not in the data).
pub fn render(report: &Report) -> Result<String> {
    let ctx = Context::new(report);
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
    let ctx = Context::new(report);
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
