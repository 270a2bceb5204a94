//! `reports/report.pdf`: the executive report, drawn with printpdf.
//!
//! A4 pages: a cover (organisation, frameworks, collection window, run id and,
//! when known, the package signer), an executive summary with a stacked bar
//! chart, the source status, one control table per framework (rows never
//! split; the header repeats on every page), the gaps by owner with subject
//! lists capped at [`SUBJECT_CAP`] (the rest is in `results/findings.csv`),
//! and an evidence appendix with every file's SHA-256.
//!
//! The pages are laid out with `super::pdf_layout`: the DejaVu Sans faces
//! under `reports/fonts/` are embedded (subset), so text is selectable and
//! non-ASCII names print. Every string is measured with the font's advance
//! widths and wrapped or cut to its box: no text leaves the page.

use std::path::Path;

use super::model::{owner_label, Counts, Report, SummaryRow};
use super::pdf_layout::{
    document, Face, Fonts, Layout, Rgb3, BOTTOM, BRAND, CONTENT_W, INK, MARGIN, MUTED, PAGE_H,
    PAGE_W, RULE, SOFT,
};
use crate::checks::Subject;
use crate::error::{Result, ResultExt};
use crate::evaluate::Status;
use crate::evidence::write_atomic;

/// Failing subjects listed per gap in the PDF; the CSV has all of them.
pub const SUBJECT_CAP: usize = 25;

/// Lines of one table cell before it is cut with an ellipsis.
const MAX_CELL_LINES: usize = 10;

const WHITE: Rgb3 = (1.0, 1.0, 1.0);

fn status_color(status: &str) -> Rgb3 {
    match status {
        "pass" | "complete" => (0.18, 0.49, 0.31),
        "fail" | "failed" => (0.75, 0.22, 0.17),
        "inconclusive" | "partial" => (0.84, 0.54, 0.06),
        "manual_pending" => (0.36, 0.43, 0.49),
        "manual_attested" => (0.07, 0.55, 0.56),
        _ => (0.67, 0.70, 0.74),
    }
}

/// One styled table cell.
struct Cell {
    text: String,
    face: Face,
    color: Rgb3,
}

impl Cell {
    fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            face: Face::Regular,
            color: INK,
        }
    }
    fn bold(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            face: Face::Bold,
            color: INK,
        }
    }
    fn status(text: impl Into<String>, status: &str) -> Cell {
        Cell {
            text: text.into(),
            face: Face::Bold,
            color: status_color(status),
        }
    }
}

fn heading(l: &mut Layout<'_>, s: &str) {
    l.ensure(60.0);
    l.y -= 20.0;
    l.text_fit(MARGIN, l.y, 16.0, Face::Bold, BRAND, s, CONTENT_W);
    l.y -= 6.0;
    l.rule(l.y, BRAND, 1.2);
    l.y -= 14.0;
}

fn subheading(l: &mut Layout<'_>, s: &str) {
    l.ensure(44.0);
    l.y -= 8.0;
    l.text_fit(MARGIN, l.y, 12.0, Face::Bold, INK, s, CONTENT_W);
    l.y -= 10.0;
}

fn paragraph(l: &mut Layout<'_>, s: &str, size: f32, face: Face, color: Rgb3, indent: f32) {
    let lines = l.wrap(s, size, face, CONTENT_W - indent);
    for line in lines {
        l.ensure(size * 1.4);
        l.y -= size * 1.35;
        l.text(MARGIN + indent, l.y, size, face, color, &line);
    }
    l.y -= size * 0.4;
}

/// A table whose rows never split across pages; the header repeats.
fn table(l: &mut Layout<'_>, cols: &[(&str, f32)], rows: Vec<Vec<Cell>>, size: f32) {
    let pad = 3.5;
    let line_h = size * 1.3;
    let total: f32 = cols.iter().map(|c| c.1).sum();
    let scale = CONTENT_W / total;
    let widths: Vec<f32> = cols.iter().map(|c| c.1 * scale).collect();
    // Column titles wrap onto more lines rather than being cut.
    let titles: Vec<Vec<String>> = cols
        .iter()
        .zip(&widths)
        .map(|((title, _), w)| l.wrap(title, size * 0.92, Face::Bold, w - 2.0 * pad))
        .collect();
    let title_lines = titles.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let header_h = title_lines as f32 * line_h + 2.0 * pad;
    let draw_header = |l: &mut Layout<'_>| {
        l.rect(MARGIN, l.y - header_h, CONTENT_W, header_h, SOFT);
        let mut x = MARGIN;
        for (lines, w) in titles.iter().zip(&widths) {
            let mut y = l.y - pad - size;
            for line in lines {
                l.text(x + pad, y, size * 0.92, Face::Bold, MUTED, line);
                y -= line_h;
            }
            x += w;
        }
        l.y -= header_h;
        l.rule(l.y, RULE, 0.6);
    };
    let wrap_row = |l: &Layout<'_>, row: &[Cell]| -> Vec<Vec<String>> {
        row.iter()
            .zip(&widths)
            .map(|(cell, w)| {
                let mut lines = l.wrap(&cell.text, size, cell.face, w - 2.0 * pad);
                if lines.len() > MAX_CELL_LINES {
                    lines.truncate(MAX_CELL_LINES);
                    let last = lines.pop().unwrap_or_default();
                    lines.push(l.fit(&format!("{last} …"), size, cell.face, w - 2.0 * pad));
                }
                lines
            })
            .collect()
    };
    let height = |wrapped: &[Vec<String>]| {
        let n = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
        n as f32 * line_h + 2.0 * pad
    };
    // The header never stands alone at the foot of a page: it goes where
    // its first row fits under it.
    let first = rows
        .first()
        .map_or(line_h + 2.0 * pad, |r| height(&wrap_row(l, r)));
    l.ensure(header_h + first);
    draw_header(l);
    for row in rows {
        let wrapped = wrap_row(l, &row);
        let row_h = height(&wrapped);
        if l.y - row_h < BOTTOM {
            l.new_page();
            draw_header(l);
        }
        let mut x = MARGIN;
        for ((cell, lines), w) in row.iter().zip(&wrapped).zip(&widths) {
            let mut y = l.y - pad - size;
            for line in lines {
                l.text(x + pad, y, size, cell.face, cell.color, line);
                y -= line_h;
            }
            x += w;
        }
        l.y -= row_h;
        l.rule(l.y, RULE, 0.5);
    }
    l.y -= 10.0;
}

fn prepare(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

const CHART_ORDER: [Status; 6] = [
    Status::Pass,
    Status::ManualAttested,
    Status::Fail,
    Status::Inconclusive,
    Status::ManualPending,
    Status::NotApplicable,
];

fn chart(l: &mut Layout<'_>, title: &str, rows: &[SummaryRow]) {
    let label_w = 120.0;
    let bar_w = CONTENT_W - label_w - 40.0;
    let bar_h = 16.0;
    l.ensure(24.0 + rows.len() as f32 * 24.0);
    l.y -= 14.0;
    l.text_fit(MARGIN, l.y, 10.0, Face::Bold, BRAND, title, CONTENT_W);
    l.y -= 8.0;
    for row in rows {
        let y = l.y - bar_h;
        l.text_fit(
            MARGIN,
            y + 4.5,
            9.0,
            Face::Regular,
            INK,
            &prepare(&row.label),
            label_w - 6.0,
        );
        let mut x = MARGIN + label_w;
        for status in CHART_ORDER {
            let n = row.counts.get(status);
            if n == 0 || row.counts.total == 0 {
                continue;
            }
            let w = bar_w * n as f32 / row.counts.total as f32;
            l.rect(x, y, w, bar_h, status_color(status.as_str()));
            let label = n.to_string();
            if l.width(&label, 8.0, Face::Bold) + 6.0 <= w {
                l.text(x + 3.0, y + 4.5, 8.0, Face::Bold, WHITE, &label);
            }
            x += w;
        }
        l.text_fit(
            MARGIN + label_w + bar_w + 6.0,
            y + 4.5,
            9.0,
            Face::Regular,
            MUTED,
            &row.counts.total.to_string(),
            34.0,
        );
        l.y -= bar_h + 8.0;
    }
}

fn legend(l: &mut Layout<'_>) {
    l.ensure(18.0);
    l.y -= 12.0;
    let mut x = MARGIN;
    for status in CHART_ORDER {
        let label = super::model::status_label(status);
        let w = l.width(label, 8.0, Face::Regular) + 24.0;
        if x + w > MARGIN + CONTENT_W {
            l.y -= 12.0;
            x = MARGIN;
        }
        l.rect(x, l.y - 1.0, 8.0, 8.0, status_color(status.as_str()));
        l.text(x + 11.0, l.y, 8.0, Face::Regular, MUTED, label);
        x += w;
    }
    l.y -= 6.0;
}

fn counts_row(label: &str, c: &Counts) -> Vec<Cell> {
    vec![
        Cell::bold(prepare(label)),
        Cell::status(c.pass.to_string(), "pass"),
        Cell::status(c.fail.to_string(), "fail"),
        Cell::status(c.inconclusive.to_string(), "inconclusive"),
        Cell::status(c.manual_pending.to_string(), "manual_pending"),
        Cell::status(c.manual_attested.to_string(), "manual_attested"),
        Cell::plain(c.not_applicable.to_string()),
        Cell::bold(c.total.to_string()),
    ]
}

const COUNT_COLS: [(&str, f32); 8] = [
    ("", 120.0),
    ("Pass", 50.0),
    ("Fail", 50.0),
    ("Inconclusive", 70.0),
    ("Docs pending", 70.0),
    ("Attested", 55.0),
    ("N/A", 40.0),
    ("Total", 40.0),
];

fn cover(l: &mut Layout<'_>, r: &Report) {
    let band = 250.0;
    l.rect(0.0, PAGE_H - band, PAGE_W, band, BRAND);
    let mut y = PAGE_H - 110.0;
    for line in l.wrap("Compliance evidence report", 26.0, Face::Bold, CONTENT_W) {
        l.text(MARGIN, y, 26.0, Face::Bold, WHITE, &line);
        y -= 32.0;
    }
    for line in l
        .wrap(&prepare(&r.organisation), 18.0, Face::Regular, CONTENT_W)
        .into_iter()
        .take(3)
    {
        l.text(MARGIN, y, 18.0, Face::Regular, WHITE, &line);
        y -= 24.0;
    }
    l.y = PAGE_H - band - 40.0;
    let mut facts: Vec<(&str, String)> = vec![
        ("Organisation", prepare(&r.organisation)),
        ("Frameworks", r.frameworks.join(", ")),
        (
            "Collection window",
            format!("{} to {}", r.started_at, r.finished_at),
        ),
        ("Judged as of", r.as_of.clone()),
        ("Run id", prepare(&r.run_id)),
        ("Ownership template", prepare(&r.ownership)),
    ];
    if let Some(s) = &r.signer {
        facts.push(("Package signer", prepare(&s.identity)));
        facts.push(("Signer key", prepare(&s.fingerprint)));
    }
    facts.push((
        "Collected by",
        prepare(&format!("{} on {}", r.tool, r.host)),
    ));
    let key_w = 130.0;
    for (k, v) in facts {
        let lines = l.wrap(&v, 11.0, Face::Regular, CONTENT_W - key_w);
        l.y -= 18.0;
        l.text(MARGIN, l.y, 10.0, Face::Bold, MUTED, k);
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                l.y -= 14.0;
            }
            l.text(MARGIN + key_w, l.y, 11.0, Face::Regular, INK, line);
        }
    }
    l.y -= 30.0;
    let c = &r.totals;
    let summary = format!(
        "{} controls: {} pass, {} fail, {} inconclusive, {} documents pending, {} attested, {} not applicable.",
        c.total, c.pass, c.fail, c.inconclusive, c.manual_pending, c.manual_attested, c.not_applicable
    );
    paragraph(l, &summary, 11.0, Face::Bold, INK, 0.0);
    paragraph(
        l,
        "Every conclusion in this report is taken from results/controls.json, run.json and \
         custody.jsonl of the run; the evidence appendix lists each evidence file with its SHA-256.",
        9.0,
        Face::Regular,
        MUTED,
        0.0,
    );
    l.new_page();
}

fn body(l: &mut Layout<'_>, r: &Report) {
    heading(l, "Executive summary");
    let c = &r.totals;
    paragraph(
        l,
        &format!(
            "{} controls across {}. {} pass and {} are attested; {} fail, {} are inconclusive \
             (evidence missing, partial or failed: never a pass) and {} wait for documents.",
            c.total,
            r.frameworks.join(", "),
            c.pass,
            c.manual_attested,
            c.fail,
            c.inconclusive,
            c.manual_pending
        ),
        10.0,
        Face::Regular,
        INK,
        0.0,
    );
    legend(l);
    chart(l, "Status by framework", &r.by_framework);
    chart(l, "Status by owner", &r.by_owner);
    l.y -= 6.0;
    let mut cols = COUNT_COLS;
    cols[0].0 = "Framework";
    table(
        l,
        &cols,
        r.by_framework
            .iter()
            .map(|s| counts_row(&s.label, &s.counts))
            .collect(),
        8.5,
    );
    cols[0].0 = "Owner";
    table(
        l,
        &cols,
        r.by_owner
            .iter()
            .map(|s| counts_row(&s.label, &s.counts))
            .collect(),
        8.5,
    );

    history(l, &super::drift::sections(&r.history));

    subheading(l, "Source status");
    let mut rows = Vec::new();
    for s in &r.sources {
        if s.datasets.is_empty() {
            rows.push(vec![
                Cell::bold(prepare(&s.name)),
                Cell::status(s.status, s.status),
                Cell::plain("-"),
                Cell::plain(""),
                Cell::plain(prepare(&s.reason)),
            ]);
        }
        for d in &s.datasets {
            rows.push(vec![
                Cell::bold(prepare(&format!("{} ({})", s.name, s.source_type))),
                Cell::status(s.status, s.status),
                Cell::plain(prepare(&d.name)),
                Cell::status(d.status.clone(), &d.status),
                Cell::plain(prepare(&format!(
                    "{} pages, {} records{}{}",
                    d.pages,
                    d.records,
                    if d.reason.is_empty() { "" } else { "; " },
                    d.reason
                ))),
            ]);
        }
    }
    table(
        l,
        &[
            ("Source", 110.0),
            ("Status", 55.0),
            ("Dataset", 110.0),
            ("Dataset status", 65.0),
            ("Detail", 160.0),
        ],
        rows,
        8.0,
    );

    for t in &r.tables {
        // A new page only when too little of this one is left.
        l.ensure(PAGE_H / 3.0);
        heading(l, &format!("{} controls", t.label));
        paragraph(
        l,
            &format!(
                "{} controls: {} pass, {} fail, {} inconclusive, {} documents pending, {} attested, {} not applicable.",
                t.counts.total,
                t.counts.pass,
                t.counts.fail,
                t.counts.inconclusive,
                t.counts.manual_pending,
                t.counts.manual_attested,
                t.counts.not_applicable
            ),
            9.0,
            Face::Regular,
            MUTED,
            0.0,
        );
        let rows = t
            .controls
            .iter()
            .map(|c| {
                let checks = c
                    .checks
                    .iter()
                    .map(|k| {
                        format!(
                            "{}: {} ({} of {} failing)",
                            k.title, k.outcome, k.failing_count, k.evaluated
                        )
                    })
                    .chain(
                        (!c.manual_evidence.is_empty())
                            .then(|| format!("Documents: {}", c.manual_evidence.join("; "))),
                    )
                    .collect::<Vec<_>>()
                    .join("\n");
                vec![
                    Cell::bold(prepare(&c.control_id)),
                    Cell::plain(prepare(&c.title)),
                    Cell::status(c.status_label.clone(), c.status),
                    Cell::plain(c.owner_label),
                    Cell::plain(prepare(&checks)),
                    Cell::plain(prepare(&readable_reason(c))),
                ]
            })
            .collect();
        // The id column is as wide as the longest id, so no id breaks.
        let pad = 7.0;
        let id_w = t
            .controls
            .iter()
            .map(|c| l.width(&prepare(&c.control_id), 7.5, Face::Bold))
            .fold(40.0_f32, f32::max)
            + pad
            + 1.0;
        let rest = (CONTENT_W - id_w) / 415.0;
        table(
            l,
            &[
                ("Control", id_w),
                ("Title", 105.0 * rest),
                ("Status", 56.0 * rest),
                ("Owner", 50.0 * rest),
                ("Checks", 110.0 * rest),
                ("Reason", 94.0 * rest),
            ],
            rows,
            7.5,
        );
    }

    l.ensure(PAGE_H / 3.0);
    heading(l, "Gaps by owner");
    paragraph(
        l,
        &format!(
            "What each party has to fix: each failing subject once, under the party that must \
             act. Subject lists are cut after {SUBJECT_CAP}; results/findings.csv has every one."
        ),
        9.0,
        Face::Regular,
        MUTED,
        0.0,
    );
    if r.owners.is_empty() {
        paragraph(
            l,
            "No gaps: every control in scope passes or is attested.",
            10.0,
            Face::Regular,
            INK,
            0.0,
        );
    }
    for o in &r.owners {
        l.y -= 6.0;
        subheading(l, o.label);
        paragraph(
            l,
            &format!(
                "Failing checks: {}. Failing subjects: {}. Subjects that cannot be seen: {}. \
                 Other controls needing attention: {}.",
                o.gap_count, o.subject_total, o.unseen_subject_total, o.attention_count
            ),
            9.0,
            Face::Regular,
            MUTED,
            0.0,
        );
        for g in &o.gaps {
            l.ensure(80.0);
            let count = if g.failing.is_empty() {
                "fails as a whole".to_owned()
            } else {
                format!("{} of {} failing", g.failing.len(), g.evaluated)
            };
            paragraph(
                l,
                &prepare(&format!("{} ({count})", g.title)),
                10.0,
                Face::Bold,
                status_color("fail"),
                0.0,
            );
            let controls: Vec<String> = g
                .controls
                .iter()
                .map(|c| {
                    if c.owner == g.responsible || c.owner == crate::config::Owner::Shared {
                        c.label.clone()
                    } else {
                        format!("{} (owned by {})", c.label, owner_label(c.owner))
                    }
                })
                .collect();
            paragraph(
                l,
                &prepare(&format!("Makes fail: {}", controls.join(", "))),
                8.5,
                Face::Regular,
                MUTED,
                8.0,
            );
            paragraph(
                l,
                &prepare(&format!("Fix: {}", g.remediation)),
                8.5,
                Face::Regular,
                INK,
                8.0,
            );
            subject_table(l, &g.failing, "Why");
        }
        for (i, g) in o.unseen.iter().enumerate() {
            l.ensure(80.0);
            if i == 0 {
                paragraph(
                    l,
                    "Cannot see these (no usable evidence: neither failures nor passes)",
                    9.5,
                    Face::Bold,
                    INK,
                    0.0,
                );
            }
            paragraph(
                l,
                &prepare(&format!(
                    "{} ({} of {} cannot be seen)",
                    g.title,
                    g.unproven.len(),
                    g.evaluated
                )),
                10.0,
                Face::Bold,
                status_color("inconclusive"),
                0.0,
            );
            let controls: Vec<&str> = g.controls.iter().map(|c| c.label.as_str()).collect();
            paragraph(
                l,
                &prepare(&format!("Leaves inconclusive: {}", controls.join(", "))),
                8.5,
                Face::Regular,
                MUTED,
                8.0,
            );
            subject_table(l, &g.unproven, "Why it cannot be judged");
        }
        if !o.attention.is_empty() {
            l.ensure(50.0);
            paragraph(
                l,
                "Other controls needing attention",
                9.5,
                Face::Bold,
                INK,
                0.0,
            );
            let rows = o
                .attention
                .iter()
                .map(|a| {
                    vec![
                        Cell::bold(prepare(&a.control.label)),
                        Cell::plain(prepare(&a.title)),
                        Cell::status(a.status_label.clone(), a.status),
                        Cell::plain(prepare(&a.reason)),
                    ]
                })
                .collect();
            table(
                l,
                &[
                    ("Control", 90.0),
                    ("Title", 140.0),
                    ("Status", 70.0),
                    ("Reason", 195.0),
                ],
                rows,
                7.5,
            );
        }
    }

    l.new_page();
    heading(l, "Evidence appendix");
    paragraph(
        l,
        "Every evidence file of the run with the SHA-256 recorded in custody.jsonl when it \
         was received; sha256sum -c manifest-sha256.txt in the package checks them.",
        9.0,
        Face::Regular,
        MUTED,
        0.0,
    );
    let rows = r
        .evidence
        .iter()
        .map(|e| {
            vec![
                Cell::plain(e.index.to_string()),
                Cell::plain(prepare(&format!(
                    "{}\n{} / {}, {} bytes, {}",
                    e.path, e.source, e.dataset, e.bytes, e.collected_at
                ))),
                Cell::plain(prepare(&format!(
                    "{} {}",
                    &e.sha256.get(..32).unwrap_or(&e.sha256),
                    e.sha256.get(32..).unwrap_or("")
                ))),
                Cell::plain(prepare(&e.used_by.join(", "))),
            ]
        })
        .collect();
    table(
        l,
        &[
            ("#", 22.0),
            ("File", 210.0),
            ("SHA-256", 160.0),
            ("Read by", 103.0),
        ],
        rows,
        7.0,
    );
}

/// The history sections ([`super::drift`]): changes since the previous
/// run and accepted risks.
fn history(l: &mut Layout<'_>, sections: &[super::drift::Section]) {
    use super::drift::Block;
    for s in sections {
        subheading(l, &s.title);
        for b in &s.blocks {
            match b {
                Block::Paragraph(p) => paragraph(l, &prepare(p), 9.0, Face::Regular, INK, 0.0),
                Block::Heading(h) => paragraph(l, &prepare(h), 9.5, Face::Bold, INK, 0.0),
                Block::Table { columns, rows } => {
                    let rows = rows
                        .iter()
                        .map(|row| {
                            row.iter()
                                .map(|c| match c.status {
                                    Some(st) => Cell::status(prepare(&c.text), st),
                                    None => Cell::plain(prepare(&c.text)),
                                })
                                .collect()
                        })
                        .collect();
                    table(l, columns, rows, 8.0);
                }
            }
        }
    }
}

/// A control's reason as the PDF table shows it: check titles instead of
/// check ids, and the documents it waits for named once (in the Checks
/// column) instead of twice.
fn readable_reason(c: &super::model::ControlRow) -> String {
    let mut reason = c.reason.clone();
    for k in &c.checks {
        reason = reason.replace(&format!("{}: ", k.check), &format!("{}: ", k.title));
    }
    if !c.manual_evidence.is_empty() {
        reason = reason.replace(&c.manual_evidence.join("; "), "the documents listed");
    }
    reason
}

/// Render the PDF: the cover has no footer, every other page names the
/// organisation and the run.
///
/// # Errors
/// When a shipped font cannot be parsed (a packaging defect).
pub fn render(r: &Report) -> Result<Vec<u8>> {
    let fonts = Fonts::load()?;
    // Dated by the run, so the same run gives the same document.
    let mut doc = document(
        &format!("Compliance evidence report: {}", prepare(&r.organisation)),
        &r.tool,
        &r.finished_at,
    );
    doc.metadata.info.subject = format!("Run {}", r.run_id);
    let mut l = Layout::new(doc, &fonts);
    cover(&mut l, r);
    body(&mut l, r);
    let foot = prepare(&format!(
        "{} · compliance evidence report · run {}",
        r.organisation, r.run_id
    ));
    Ok(l.finish(|l, page, pages| {
        if page > 1 {
            l.footer(&foot, page, pages);
        }
    }))
}

/// Write `reports/report.pdf` under `run_dir`.
///
/// # Errors
/// When rendering fails or on I/O failure.
pub fn write(run_dir: &Path, report: &Report) -> Result<()> {
    let bytes = render(report)?;
    let path = run_dir.join("reports/report.pdf");
    write_atomic(&path, &bytes).context(|| format!("cannot write {}", path.display()))
}

/// A gap's subjects as a table (the first [`SUBJECT_CAP`], then a line
/// saying how many more the CSV holds). The id column fits the longest id
/// shown (up to 45% of the width), so ids such as `m365:<GUID>` stay on one
/// line.
fn subject_table(l: &mut Layout<'_>, subjects: &[Subject], why: &str) {
    let shown = &subjects[..subjects.len().min(SUBJECT_CAP)];
    let rows = shown
        .iter()
        .map(|s| {
            vec![
                Cell::bold(prepare(&s.name)),
                Cell::plain(prepare(&s.id)),
                Cell::plain(prepare(&s.detail)),
            ]
        })
        .collect();
    let id_w = shown
        .iter()
        .map(|s| l.width(&prepare(&s.id), 7.5, Face::Regular))
        .fold(60.0_f32, f32::max)
        .min(CONTENT_W * 0.45)
        + 8.0;
    let rest = (CONTENT_W - id_w) / 355.0;
    table(
        l,
        &[("Subject", 195.0 * rest), ("Id", id_w), (why, 160.0 * rest)],
        rows,
        7.5,
    );
    if subjects.len() > SUBJECT_CAP {
        l.y += 6.0;
        paragraph(
            l,
            &format!(
                "… and {} more; the full list is in results/findings.csv.",
                subjects.len() - SUBJECT_CAP
            ),
            8.5,
            Face::Bold,
            MUTED,
            0.0,
        );
    }
}
