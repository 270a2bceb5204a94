//! The QBR as an A4 PDF, drawn with printpdf and the DejaVu Sans faces the
//! executive report embeds: the same sections as the HTML page, the trend
//! charts drawn as vector lines from the same [`Chart`] points (a gap in a
//! line where a value is missing). Every string is measured and cut to its
//! box, tables repeat their header on each page and rows never split, so
//! nothing leaves the page.

use printpdf::{
    Color, FontId, Line as PdfLine, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument,
    PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem, WindingOrder,
};

use super::qbr::Qbr;
use super::svg::{Chart, COLOURS};
use super::trim_number;
use crate::error::{Error, Result};
use crate::history::kpis::party_label;
use crate::report::pdf::{FONT_BOLD, FONT_REGULAR};

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 48.0;
const TOP: f32 = PAGE_H - 54.0;
const BOTTOM: f32 = 58.0;
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;
/// Rows of a long list shown before "and N more".
const ROW_CAP: usize = 40;

type Rgb3 = (f32, f32, f32);
const INK: Rgb3 = (0.11, 0.14, 0.20);
const MUTED: Rgb3 = (0.36, 0.39, 0.46);
const BRAND: Rgb3 = (0.12, 0.23, 0.37);
const RULE: Rgb3 = (0.85, 0.87, 0.91);
const SOFT: Rgb3 = (0.96, 0.965, 0.976);
const GOOD: Rgb3 = (0.18, 0.49, 0.31);
const BAD: Rgb3 = (0.75, 0.22, 0.17);

fn rgb(c: Rgb3) -> Color {
    Color::Rgb(Rgb {
        r: c.0,
        g: c.1,
        b: c.2,
        icc_profile: None,
    })
}

fn hex(s: &str) -> Rgb3 {
    let v = |i: usize| {
        s.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, |b| f32::from(b) / 255.0)
    };
    (v(1), v(3), v(5))
}

#[derive(Clone, Copy)]
enum Face {
    Regular,
    Bold,
}

struct Pen<'a> {
    regular: &'a ParsedFont,
    bold: &'a ParsedFont,
    regular_id: FontId,
    bold_id: FontId,
    pages: Vec<Vec<Op>>,
    ops: Vec<Op>,
    y: f32,
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Pen<'_> {
    fn char_width(font: &ParsedFont, c: char) -> f32 {
        let gid = font.lookup_glyph_index(c as u32).unwrap_or(0);
        let w = font.get_glyph_width(gid).unwrap_or(0);
        f32::from(w) / f32::from(font.units_per_em.max(1))
    }

    fn font(&self, face: Face) -> &ParsedFont {
        match face {
            Face::Regular => self.regular,
            Face::Bold => self.bold,
        }
    }

    fn width(&self, s: &str, size: f32, face: Face) -> f32 {
        let f = self.font(face);
        s.chars().map(|c| Self::char_width(f, c)).sum::<f32>() * size
    }

    fn fit(&self, s: &str, size: f32, face: Face, max: f32) -> String {
        let s = clean(s);
        if self.width(&s, size, face) <= max {
            return s;
        }
        let f = self.font(face);
        let budget = max - Self::char_width(f, '…') * size;
        let mut used = 0.0;
        let mut out = String::new();
        for c in s.chars() {
            let w = Self::char_width(f, c) * size;
            if used + w > budget {
                break;
            }
            used += w;
            out.push(c);
        }
        out.push('…');
        out
    }

    fn wrap(&self, s: &str, size: f32, face: Face, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in clean(s).split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if self.width(&candidate, size, face) <= max || line.is_empty() {
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
            .map(|l| self.fit(&l, size, face, max))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, x: f32, y: f32, size: f32, face: Face, color: Rgb3, s: &str, max: f32) {
        let s = self.fit(s, size, face, max);
        if s.is_empty() {
            return;
        }
        let font = match face {
            Face::Regular => self.regular_id.clone(),
            Face::Bold => self.bold_id.clone(),
        };
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFillColor { col: rgb(color) },
            Op::SetFont {
                font: PdfFontHandle::External(font),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point { x: Pt(x), y: Pt(y) },
            },
            Op::ShowText {
                items: vec![TextItem::Text(s)],
            },
            Op::EndTextSection,
        ]);
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgb3) {
        self.ops.extend([
            Op::SetFillColor { col: rgb(color) },
            Op::DrawRectangle {
                rectangle: Rect {
                    x: Pt(x),
                    y: Pt(y),
                    width: Pt(w),
                    height: Pt(h),
                    mode: Some(PaintMode::Fill),
                    winding_order: Some(WindingOrder::NonZero),
                },
            },
        ]);
    }

    fn polyline(&mut self, points: &[(f32, f32)], color: Rgb3, thickness: f32) {
        self.ops.extend([
            Op::SetOutlineColor { col: rgb(color) },
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::DrawLine {
                line: PdfLine {
                    points: points
                        .iter()
                        .map(|(x, y)| LinePoint {
                            p: Point {
                                x: Pt(*x),
                                y: Pt(*y),
                            },
                            bezier: false,
                        })
                        .collect(),
                    is_closed: false,
                },
            },
        ]);
    }

    fn hline(&mut self, y: f32, color: Rgb3, thickness: f32) {
        self.polyline(&[(MARGIN, y), (MARGIN + CONTENT_W, y)], color, thickness);
    }

    fn new_page(&mut self) {
        let ops = std::mem::take(&mut self.ops);
        self.pages.push(ops);
        self.y = TOP;
    }

    fn ensure(&mut self, h: f32) {
        if self.y - h < BOTTOM {
            self.new_page();
        }
    }

    fn heading(&mut self, s: &str) {
        self.ensure(70.0);
        self.y -= 22.0;
        self.text(MARGIN, self.y, 15.0, Face::Bold, BRAND, s, CONTENT_W);
        self.y -= 6.0;
        self.hline(self.y, BRAND, 1.2);
        self.y -= 12.0;
    }

    fn paragraph(&mut self, s: &str, size: f32, face: Face, color: Rgb3) {
        for line in self.wrap(s, size, face, CONTENT_W) {
            self.ensure(size * 1.5);
            self.y -= size * 1.4;
            self.text(MARGIN, self.y, size, face, color, &line, CONTENT_W);
        }
        self.y -= size * 0.5;
    }

    /// A table of one-line cells (cut to fit), header repeated per page.
    fn table(&mut self, cols: &[(&str, f32)], rows: &[Vec<(String, Rgb3)>]) {
        let size = 8.5;
        let row_h = 15.0;
        let total: f32 = cols.iter().map(|c| c.1).sum();
        let widths: Vec<f32> = cols.iter().map(|c| c.1 / total * CONTENT_W).collect();
        let header = |p: &mut Pen<'_>| {
            p.rect(MARGIN, p.y - row_h, CONTENT_W, row_h, SOFT);
            let mut x = MARGIN;
            for ((title, _), w) in cols.iter().zip(&widths) {
                p.text(x + 3.0, p.y - 10.5, size, Face::Bold, MUTED, title, w - 6.0);
                x += w;
            }
            p.y -= row_h;
        };
        self.ensure(row_h * 2.0);
        header(self);
        for row in rows {
            if self.y - row_h < BOTTOM {
                self.new_page();
                header(self);
            }
            let mut x = MARGIN;
            for ((text, color), w) in row.iter().zip(&widths) {
                self.text(
                    x + 3.0,
                    self.y - 10.5,
                    size,
                    Face::Regular,
                    *color,
                    text,
                    w - 6.0,
                );
                x += w;
            }
            self.y -= row_h;
            self.hline(self.y, RULE, 0.4);
        }
        self.y -= 8.0;
    }

    fn chart(&mut self, c: &Chart) {
        let h = 150.0;
        let legend_rows = c.lines.len().div_ceil(3) as f32;
        let total = 20.0 + h + 18.0 + legend_rows * 11.0 + 10.0;
        self.ensure(total);
        self.y -= 14.0;
        self.text(MARGIN, self.y, 10.0, Face::Bold, BRAND, &c.title, CONTENT_W);
        self.y -= 6.0;
        let left = MARGIN + 34.0;
        let w = CONTENT_W - 34.0;
        let base = self.y - h;
        for i in 0..=4 {
            let frac = i as f32 / 4.0;
            let y = base + frac * h;
            self.polyline(&[(left, y), (left + w, y)], RULE, 0.5);
            let label = format!(
                "{}{}",
                trim_number(c.y_max * f64::from(frac)),
                if c.unit == "%" { "%" } else { "" }
            );
            let lw = self.width(&label, 7.0, Face::Regular);
            self.text(
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
                    self.rect(x - 2.0, y - 2.0, 4.0, 4.0, colour);
                } else {
                    self.polyline(&pts, colour, 1.6);
                }
            }
        }
        self.y = base - 11.0;
        self.text(
            left,
            self.y,
            7.0,
            Face::Regular,
            MUTED,
            &c.x_labels.0,
            120.0,
        );
        let rw = self.width(&c.x_labels.1, 7.0, Face::Regular);
        self.text(
            left + w - rw,
            self.y,
            7.0,
            Face::Regular,
            MUTED,
            &c.x_labels.1,
            120.0,
        );
        self.y -= 6.0;
        for (i, line) in c.lines.iter().enumerate() {
            if i % 3 == 0 {
                self.y -= 11.0;
            }
            let x = left + (i % 3) as f32 * (w / 3.0);
            self.rect(x, self.y - 1.0, 7.0, 7.0, hex(COLOURS[i % COLOURS.len()]));
            self.text(
                x + 10.0,
                self.y,
                8.0,
                Face::Regular,
                INK,
                &line.label,
                w / 3.0 - 14.0,
            );
        }
        self.y -= 10.0;
    }
}

fn capped<T>(items: &[T]) -> (&[T], usize) {
    let shown = &items[..items.len().min(ROW_CAP)];
    (shown, items.len() - shown.len())
}

fn more(p: &mut Pen<'_>, hidden: usize, what: &str) {
    if hidden > 0 {
        p.paragraph(
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
    let mut warnings = Vec::new();
    let regular = ParsedFont::from_bytes(FONT_REGULAR, 0, &mut warnings)
        .ok_or_else(|| Error::invalid("cannot parse reports/fonts/DejaVuSans.ttf"))?;
    let bold = ParsedFont::from_bytes(FONT_BOLD, 0, &mut warnings)
        .ok_or_else(|| Error::invalid("cannot parse reports/fonts/DejaVuSans-Bold.ttf"))?;
    let mut doc = PdfDocument::new(&format!(
        "Quarterly business review: {} {}",
        clean(&q.organisation),
        q.period.label
    ));
    doc.metadata.info.creator = q.tool.clone();
    doc.metadata.info.author = q.tool.clone();
    if let Some(t) = chrono::DateTime::parse_from_rfc3339(&q.last_as_of)
        .ok()
        .and_then(|t| printpdf::OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
    {
        doc.metadata.info.creation_date = t;
        doc.metadata.info.modification_date = t;
        doc.metadata.info.metadata_date = t;
    }
    let regular_id = doc.add_font(&regular);
    let bold_id = doc.add_font(&bold);
    let mut p = Pen {
        regular: &regular,
        bold: &bold,
        regular_id,
        bold_id,
        pages: Vec::new(),
        ops: Vec::new(),
        y: TOP,
    };

    p.y -= 10.0;
    p.text(
        MARGIN,
        p.y,
        20.0,
        Face::Bold,
        BRAND,
        "Quarterly business review",
        CONTENT_W,
    );
    p.y -= 26.0;
    p.text(
        MARGIN,
        p.y,
        15.0,
        Face::Bold,
        INK,
        &q.organisation,
        CONTENT_W,
    );
    p.y -= 8.0;
    p.paragraph(
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
    p.paragraph(
        &format!(
            "{} of {} controls in scope pass or are attested at the end of the period.",
            q.posture.0, q.posture.1
        ),
        12.0,
        Face::Bold,
        BRAND,
    );

    p.heading("Trends");
    for c in &q.charts {
        p.chart(c);
    }

    p.heading("KPIs: start and end of the period");
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
    p.table(
        &[
            ("KPI", 3.0),
            ("First run", 2.0),
            ("Last run", 2.0),
            ("Trend", 1.4),
            ("Num. / denom.", 1.4),
        ],
        &rows,
    );

    p.heading("What improved and what regressed");
    for (title, list, colour) in [
        ("Improved", &q.improved, GOOD),
        ("Regressed", &q.regressed, BAD),
    ] {
        p.paragraph(
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
            p.table(
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

    p.heading("SLA adherence by party");
    if !q.sla_configured {
        p.paragraph(
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
    p.table(
        &[
            ("Party", 1.4),
            ("Closed", 1.0),
            ("Mean time to remediate", 1.8),
            ("Open past target", 1.4),
            ("Adherence", 2.4),
        ],
        &rows,
    );

    p.heading("Open gaps by owner, with their age");
    if q.gaps.is_empty() {
        p.paragraph(
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
        p.table(
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

    p.heading("Exceptions in force");
    if q.exceptions.is_empty() {
        p.paragraph(
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
        p.table(
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

    p.heading("Roadmap");
    if q.roadmap.is_empty() {
        p.paragraph("Nothing open.", 9.5, Face::Regular, INK);
    }
    for (i, g) in q.roadmap.iter().enumerate() {
        p.paragraph(
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

    p.new_page();
    let bodies = std::mem::take(&mut p.pages);
    let total = bodies.len();
    let mut pages = Vec::with_capacity(total);
    for (i, ops) in bodies.into_iter().enumerate() {
        p.ops = ops;
        p.hline(42.0, RULE, 0.5);
        let right = format!("Page {} of {total}", i + 1);
        let rw = p.width(&right, 7.5, Face::Regular);
        p.text(
            MARGIN + CONTENT_W - rw,
            30.0,
            7.5,
            Face::Regular,
            MUTED,
            &right,
            rw + 1.0,
        );
        let left = format!(
            "{} · quarterly business review · {}",
            q.organisation, q.period.label
        );
        p.text(
            MARGIN,
            30.0,
            7.5,
            Face::Regular,
            MUTED,
            &left,
            CONTENT_W - rw - 12.0,
        );
        pages.push(PdfPage::new(
            Mm(210.0),
            Mm(297.0),
            std::mem::take(&mut p.ops),
        ));
    }
    let mut save_warnings = Vec::new();
    Ok(doc
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut save_warnings))
}
