//! The QBR as an A4 PDF, laid out like the executive report (the shared
//! `crate::report::pdf_layout`: same page, faces and footer): the same
//! sections as the HTML page, the trend charts drawn as vector lines from
//! the same [`Chart`] points (a gap in a line where a value is missing).
//! Every string is measured and cut to its box, tables repeat their header
//! on each page and rows never split, so nothing leaves the page.

use super::qbr::Qbr;
use super::svg::{Chart, COLOURS};
use super::trim_number;
use crate::error::Result;
use crate::history::kpis::party_label;
use crate::report::pdf_layout::{
    clean, document, Face, Fonts, Layout, Rgb3, BOTTOM, BRAND, CONTENT_W, INK, MARGIN, MUTED, RULE,
    SOFT,
};

/// Rows of a long list shown before "and N more".
const ROW_CAP: usize = 40;

const GOOD: Rgb3 = (0.18, 0.49, 0.31);
const BAD: Rgb3 = (0.75, 0.22, 0.17);

fn hex(s: &str) -> Rgb3 {
    let v = |i: usize| {
        s.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, |b| f32::from(b) / 255.0)
    };
    (v(1), v(3), v(5))
}

/// `s` wrapped at spaces to `max` points, each line then cut to fit: a word
/// longer than a line is cut, not broken.
fn wrap_cut(p: &Layout<'_>, s: &str, size: f32, face: Face, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in clean(s).split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if p.width(&candidate, size, face) <= max || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::take(&mut line));
            line = word.to_owned();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
        .into_iter()
        .map(|l| p.fit(&l, size, face, max))
        .collect()
}

fn heading(p: &mut Layout<'_>, s: &str) {
    p.ensure(70.0);
    p.y -= 22.0;
    p.text_fit(MARGIN, p.y, 15.0, Face::Bold, BRAND, s, CONTENT_W);
    p.y -= 6.0;
    p.rule(p.y, BRAND, 1.2);
    p.y -= 12.0;
}

fn paragraph(p: &mut Layout<'_>, s: &str, size: f32, face: Face, color: Rgb3) {
    for line in wrap_cut(p, s, size, face, CONTENT_W) {
        p.ensure(size * 1.5);
        p.y -= size * 1.4;
        p.text_fit(MARGIN, p.y, size, face, color, &line, CONTENT_W);
    }
    p.y -= size * 0.5;
}

/// A table of one-line cells (cut to fit), header repeated per page.
fn table(p: &mut Layout<'_>, cols: &[(&str, f32)], rows: &[Vec<(String, Rgb3)>]) {
    let size = 8.5;
    let row_h = 15.0;
    let total: f32 = cols.iter().map(|c| c.1).sum();
    let widths: Vec<f32> = cols.iter().map(|c| c.1 / total * CONTENT_W).collect();
    let header = |p: &mut Layout<'_>| {
        p.rect(MARGIN, p.y - row_h, CONTENT_W, row_h, SOFT);
        let mut x = MARGIN;
        for ((title, _), w) in cols.iter().zip(&widths) {
            p.text_fit(x + 3.0, p.y - 10.5, size, Face::Bold, MUTED, title, w - 6.0);
            x += w;
        }
        p.y -= row_h;
    };
    p.ensure(row_h * 2.0);
    header(p);
    for row in rows {
        if p.y - row_h < BOTTOM {
            p.new_page();
            header(p);
        }
        let mut x = MARGIN;
        for ((text, color), w) in row.iter().zip(&widths) {
            p.text_fit(
                x + 3.0,
                p.y - 10.5,
                size,
                Face::Regular,
                *color,
                text,
                w - 6.0,
            );
            x += w;
        }
        p.y -= row_h;
        p.rule(p.y, RULE, 0.4);
    }
    p.y -= 8.0;
}

/// A trend chart: the title, a grid with the y values at the left, each
/// line in its colour (a dot where a segment is one point), the first and
/// last x labels below and a legend in three columns.
fn chart(p: &mut Layout<'_>, c: &Chart) {
    let h = 150.0;
    let legend_rows = c.lines.len().div_ceil(3) as f32;
    let total = 20.0 + h + 18.0 + legend_rows * 11.0 + 10.0;
    p.ensure(total);
    p.y -= 14.0;
    p.text_fit(MARGIN, p.y, 10.0, Face::Bold, BRAND, &c.title, CONTENT_W);
    p.y -= 6.0;
    let left = MARGIN + 34.0;
    let w = CONTENT_W - 34.0;
    let base = p.y - h;
    for i in 0..=4 {
        let frac = i as f32 / 4.0;
        let y = base + frac * h;
        p.polyline(&[(left, y), (left + w, y)], RULE, 0.5);
        let label = format!(
            "{}{}",
            trim_number(c.y_max * f64::from(frac)),
            if c.unit == "%" { "%" } else { "" }
        );
        let lw = p.width(&label, 7.0, Face::Regular);
        p.text_fit(
            left - 4.0 - lw,
            y - 2.5,
            7.0,
            Face::Regular,
            MUTED,
            &label,
            30.0,
        );
    }
    for (i, line) in c.lines.iter().enumerate() {
        let colour = hex(COLOURS[i % COLOURS.len()]);
        for seg in c.segments(line) {
            let pts: Vec<(f32, f32)> = seg
                .iter()
                .map(|(x, y)| (left + *x as f32 * w, base + *y as f32 * h))
                .collect();
            if let [(x, y)] = pts.as_slice() {
                p.rect(x - 2.0, y - 2.0, 4.0, 4.0, colour);
            } else {
                p.polyline(&pts, colour, 1.6);
            }
        }
    }
    p.y = base - 11.0;
    p.text_fit(left, p.y, 7.0, Face::Regular, MUTED, &c.x_labels.0, 120.0);
    let rw = p.width(&c.x_labels.1, 7.0, Face::Regular);
    p.text_fit(
        left + w - rw,
        p.y,
        7.0,
        Face::Regular,
        MUTED,
        &c.x_labels.1,
        120.0,
    );
    p.y -= 6.0;
    for (i, line) in c.lines.iter().enumerate() {
        if i % 3 == 0 {
            p.y -= 11.0;
        }
        let x = left + (i % 3) as f32 * (w / 3.0);
        p.rect(x, p.y - 1.0, 7.0, 7.0, hex(COLOURS[i % COLOURS.len()]));
        p.text_fit(
            x + 10.0,
            p.y,
            8.0,
            Face::Regular,
            INK,
            &line.label,
            w / 3.0 - 14.0,
        );
    }
    p.y -= 10.0;
}

fn capped<T>(items: &[T]) -> (&[T], usize) {
    let shown = &items[..items.len().min(ROW_CAP)];
    (shown, items.len() - shown.len())
}

fn more(p: &mut Layout<'_>, hidden: usize, what: &str) {
    if hidden > 0 {
        paragraph(
            p,
            &format!("… and {hidden} more {what} (in the HTML review)"),
            8.5,
            Face::Regular,
            MUTED,
        );
    }
}

/// Render the review as PDF bytes.
///
/// # Errors
/// When a shipped font cannot be parsed (a packaging defect).
pub fn render(q: &Qbr) -> Result<Vec<u8>> {
    let fonts = Fonts::load()?;
    let doc = document(
        &format!(
            "Quarterly business review: {} {}",
            clean(&q.organisation),
            q.period.label
        ),
        &q.tool,
        &q.last_as_of,
    );
    let mut p = Layout::new(doc, &fonts);

    p.y -= 10.0;
    p.text_fit(
        MARGIN,
        p.y,
        20.0,
        Face::Bold,
        BRAND,
        "Quarterly business review",
        CONTENT_W,
    );
    p.y -= 26.0;
    p.text_fit(
        MARGIN,
        p.y,
        15.0,
        Face::Bold,
        INK,
        &q.organisation,
        CONTENT_W,
    );
    p.y -= 8.0;
    paragraph(
        &mut p,
        &format!(
            "{} ({} to {}): {} run(s), from {} to {}. Frameworks: {}.",
            q.period.label,
            q.period.from,
            q.period.to,
            q.runs,
            q.first_run,
            q.last_run,
            q.frameworks.join(", ")
        ),
        9.5,
        Face::Regular,
        MUTED,
    );
    paragraph(
        &mut p,
        &format!(
            "{} of {} controls in scope pass or are attested at the end of the period.",
            q.posture.0, q.posture.1
        ),
        12.0,
        Face::Bold,
        BRAND,
    );

    heading(&mut p, "Trends");
    for c in &q.charts {
        chart(&mut p, c);
    }

    heading(&mut p, "KPIs: start and end of the period");
    let rows: Vec<Vec<(String, Rgb3)>> = q
        .movements
        .iter()
        .map(|m| {
            let colour = match m.trend {
                "improved" => GOOD,
                "regressed" => BAD,
                _ => INK,
            };
            vec![
                (m.title.clone(), INK),
                (m.first.clone(), INK),
                (m.last.clone(), INK),
                (m.trend.to_owned(), colour),
                (m.basis.clone(), MUTED),
            ]
        })
        .collect();
    table(
        &mut p,
        &[
            ("KPI", 3.0),
            ("First run", 2.0),
            ("Last run", 2.0),
            ("Trend", 1.4),
            ("Num. / denom.", 1.4),
        ],
        &rows,
    );

    heading(&mut p, "What improved and what regressed");
    for (title, list, colour) in [
        ("Improved", &q.improved, GOOD),
        ("Regressed", &q.regressed, BAD),
    ] {
        paragraph(
            &mut p,
            &format!("{title}: {}", list.len()),
            10.0,
            Face::Bold,
            colour,
        );
        let (shown, hidden) = capped(list);
        if !shown.is_empty() {
            let rows: Vec<Vec<(String, Rgb3)>> = shown
                .iter()
                .map(|c| {
                    vec![
                        (c.control.clone(), INK),
                        (c.title.clone(), INK),
                        (party_label(c.owner).to_owned(), INK),
                        (format!("{} → {}", c.from.as_str(), c.to.as_str()), colour),
                    ]
                })
                .collect();
            table(
                &mut p,
                &[
                    ("Control", 1.6),
                    ("Title", 4.0),
                    ("Owner", 1.2),
                    ("Change", 1.8),
                ],
                &rows,
            );
        }
        more(&mut p, hidden, "controls");
    }

    heading(&mut p, "SLA adherence by party");
    if !q.sla_configured {
        paragraph(
            &mut p,
            "No [sla] targets are set in the config; adherence is not measured.",
            9.0,
            Face::Regular,
            MUTED,
        );
    }
    let rows: Vec<Vec<(String, Rgb3)>> = q
        .sla
        .iter()
        .map(|r| {
            vec![
                (party_label(r.owner).to_owned(), INK),
                (r.closed.to_string(), INK),
                (
                    r.mean_days
                        .map_or_else(|| "n/a".to_owned(), |d| format!("{} d", trim_number(d))),
                    INK,
                ),
                (r.overdue.to_string(), if r.overdue > 0 { BAD } else { INK }),
                (r.adherence.clone(), INK),
            ]
        })
        .collect();
    table(
        &mut p,
        &[
            ("Party", 1.4),
            ("Closed", 1.0),
            ("Mean time to remediate", 1.8),
            ("Open past target", 1.4),
            ("Adherence", 2.4),
        ],
        &rows,
    );

    heading(&mut p, "Open gaps by owner, with their age");
    if q.gaps.is_empty() {
        paragraph(
            &mut p,
            "No open gaps at the end of the period.",
            9.5,
            Face::Regular,
            INK,
        );
    }
    let (shown, hidden) = capped(&q.gaps);
    if !shown.is_empty() {
        let rows: Vec<Vec<(String, Rgb3)>> = shown
            .iter()
            .map(|g| {
                vec![
                    (party_label(g.owner).to_owned(), INK),
                    (g.title.clone(), INK),
                    (g.subjects.to_string(), INK),
                    (format!("{} d", trim_number(g.oldest_days)), INK),
                    (format!("{} d", trim_number(g.mean_days)), INK),
                ]
            })
            .collect();
        table(
            &mut p,
            &[
                ("Owner", 1.2),
                ("Check", 4.2),
                ("Subjects", 1.0),
                ("Oldest", 1.0),
                ("Mean age", 1.0),
            ],
            &rows,
        );
    }
    more(&mut p, hidden, "checks");

    heading(&mut p, "Exceptions in force");
    if q.exceptions.is_empty() {
        paragraph(
            &mut p,
            "No accepted risk at the end of the period.",
            9.5,
            Face::Regular,
            INK,
        );
    }
    let (shown, hidden) = capped(&q.exceptions);
    if !shown.is_empty() {
        let rows: Vec<Vec<(String, Rgb3)>> = shown
            .iter()
            .map(|x| {
                vec![
                    (x.control.clone(), INK),
                    (party_label(x.owner).to_owned(), INK),
                    (x.approved_by.clone(), INK),
                    (
                        if x.expiring {
                            format!("{} (expiring)", x.expires)
                        } else {
                            x.expires.clone()
                        },
                        if x.expiring { BAD } else { INK },
                    ),
                ]
            })
            .collect();
        table(
            &mut p,
            &[
                ("Control", 2.0),
                ("Owner", 1.2),
                ("Approved by", 2.4),
                ("Expires", 1.8),
            ],
            &rows,
        );
    }
    more(&mut p, hidden, "exceptions");

    heading(&mut p, "Roadmap");
    if q.roadmap.is_empty() {
        paragraph(&mut p, "Nothing open.", 9.5, Face::Regular, INK);
    }
    for (i, g) in q.roadmap.iter().enumerate() {
        paragraph(
            &mut p,
            &format!(
                "{}. {}: {} (fix {} subject(s), open up to {} d)",
                i + 1,
                party_label(g.owner),
                g.title,
                g.subjects,
                trim_number(g.oldest_days)
            ),
            9.5,
            Face::Regular,
            INK,
        );
    }

    let foot = format!(
        "{} · quarterly business review · {}",
        q.organisation, q.period.label
    );
    Ok(p.finish(|p, page, pages| p.footer(&foot, page, pages)))
}
