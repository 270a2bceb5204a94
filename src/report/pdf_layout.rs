//! A4 page layout shared by the PDFs: the executive report ([`super::pdf`])
//! and the quarterly business review (`trends::qbr_pdf`).
//!
//! [`Layout`] writes page by page in the embedded DejaVu Sans faces,
//! measuring every string with the font's advance widths so that text can be
//! wrapped or cut to its box, breaks to a new page when a block no longer
//! fits, and at the end puts a footer on each page and saves the document.
//! What goes on the pages (headings, paragraphs, tables, charts) and how it
//! is spaced is each document's own.

use printpdf::{
    Color, FontId, Line, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle,
    PdfPage, PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem, WindingOrder,
};

use crate::error::{Error, Result};

/// DejaVu Sans (Bitstream Vera licence, see `reports/fonts/LICENSE-DejaVu.txt`).
pub const FONT_REGULAR: &[u8] = include_bytes!("../../reports/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold.
pub const FONT_BOLD: &[u8] = include_bytes!("../../reports/fonts/DejaVuSans-Bold.ttf");

/// A4 width in points.
pub const PAGE_W: f32 = 595.28;
/// A4 height in points.
pub const PAGE_H: f32 = 841.89;
/// Left and right margin.
pub const MARGIN: f32 = 48.0;
/// Where the content of a new page starts (y grows upwards).
pub const TOP: f32 = PAGE_H - 54.0;
/// The lowest y content may reach; the footer sits below it.
pub const BOTTOM: f32 = 58.0;
/// Width between the margins.
pub const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;

/// A colour as red, green and blue from 0 to 1.
pub type Rgb3 = (f32, f32, f32);

/// Body text.
pub const INK: Rgb3 = (0.11, 0.14, 0.20);
/// Secondary text: notes, column titles, footers.
pub const MUTED: Rgb3 = (0.36, 0.39, 0.46);
/// Titles and heading rules.
pub const BRAND: Rgb3 = (0.12, 0.23, 0.37);
/// Thin rules between table rows and above the footer.
pub const RULE: Rgb3 = (0.85, 0.87, 0.91);
/// Table header background.
pub const SOFT: Rgb3 = (0.96, 0.965, 0.976);

fn rgb(c: Rgb3) -> Color {
    Color::Rgb(Rgb {
        r: c.0,
        g: c.1,
        b: c.2,
        icc_profile: None,
    })
}

/// One of the two embedded faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// DejaVu Sans.
    Regular,
    /// DejaVu Sans Bold.
    Bold,
}

/// `s` with every control character (a newline among them) as a space.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The embedded faces, parsed once per document.
pub struct Fonts {
    regular: ParsedFont,
    bold: ParsedFont,
}

impl Fonts {
    /// Parse [`FONT_REGULAR`] and [`FONT_BOLD`].
    ///
    /// # Errors
    /// When a shipped font cannot be parsed (a packaging defect).
    pub fn load() -> Result<Fonts> {
        let mut warnings = Vec::new();
        let regular = ParsedFont::from_bytes(FONT_REGULAR, 0, &mut warnings)
            .ok_or_else(|| Error::invalid("cannot parse reports/fonts/DejaVuSans.ttf"))?;
        let bold = ParsedFont::from_bytes(FONT_BOLD, 0, &mut warnings)
            .ok_or_else(|| Error::invalid("cannot parse reports/fonts/DejaVuSans-Bold.ttf"))?;
        Ok(Fonts { regular, bold })
    }
}

/// An empty document titled `title`, with `tool` as its author and creator,
/// dated `at` (RFC 3339) when it parses: dated by the data, so the same
/// input gives the same document.
pub fn document(title: &str, tool: &str, at: &str) -> PdfDocument {
    let mut doc = PdfDocument::new(title);
    doc.metadata.info.author = tool.to_owned();
    doc.metadata.info.creator = tool.to_owned();
    if let Some(t) = chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .and_then(|t| printpdf::OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
    {
        doc.metadata.info.creation_date = t;
        doc.metadata.info.modification_date = t;
        doc.metadata.info.metadata_date = t;
    }
    doc
}

/// A page-by-page writer that measures every string. `y` is the current
/// baseline, moving down the page as content is placed.
pub struct Layout<'a> {
    doc: PdfDocument,
    regular: &'a ParsedFont,
    bold: &'a ParsedFont,
    regular_id: FontId,
    bold_id: FontId,
    pages: Vec<Vec<Op>>,
    ops: Vec<Op>,
    /// The current baseline; starts at [`TOP`] on every page.
    pub y: f32,
}

impl<'a> Layout<'a> {
    /// A writer at the top of the first page of `doc`, which embeds `fonts`.
    pub fn new(mut doc: PdfDocument, fonts: &'a Fonts) -> Layout<'a> {
        let regular_id = doc.add_font(&fonts.regular);
        let bold_id = doc.add_font(&fonts.bold);
        Layout {
            doc,
            regular: &fonts.regular,
            bold: &fonts.bold,
            regular_id,
            bold_id,
            pages: Vec::new(),
            ops: Vec::new(),
            y: TOP,
        }
    }

    fn font(&self, face: Face) -> &'a ParsedFont {
        match face {
            Face::Regular => self.regular,
            Face::Bold => self.bold,
        }
    }

    fn char_width(font: &ParsedFont, c: char) -> f32 {
        let gid = font.lookup_glyph_index(c as u32).unwrap_or(0);
        let w = font.get_glyph_width(gid).unwrap_or(0);
        f32::from(w) / f32::from(font.units_per_em.max(1))
    }

    /// Width of `s` in points.
    pub fn width(&self, s: &str, size: f32, face: Face) -> f32 {
        let font = self.font(face);
        s.chars().map(|c| Self::char_width(font, c)).sum::<f32>() * size
    }

    /// `s` as one line ([`clean`]) cut to `max` points, with an ellipsis
    /// when cut.
    pub fn fit(&self, s: &str, size: f32, face: Face, max: f32) -> String {
        let s = clean(s);
        if self.width(&s, size, face) <= max {
            return s;
        }
        let font = self.font(face);
        let budget = max - Self::char_width(font, '…') * size;
        let mut used = 0.0;
        let mut out = String::new();
        for c in s.chars() {
            let w = Self::char_width(font, c) * size;
            if used + w > budget {
                break;
            }
            used += w;
            out.push(c);
        }
        out.push('…');
        out
    }

    /// Greedy word wrap to `max` points, a line per `\n` at least; words
    /// longer than a line are broken.
    pub fn wrap(&self, s: &str, size: f32, face: Face, max: f32) -> Vec<String> {
        let font = self.font(face);
        let space = Self::char_width(font, ' ') * size;
        let mut lines = Vec::new();
        for para in s.split('\n') {
            let mut line = String::new();
            let mut line_w = 0.0;
            for word in para.split_whitespace() {
                let word_w = self.width(word, size, face);
                let extra = if line.is_empty() { 0.0 } else { space };
                if line_w + extra + word_w <= max {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(word);
                    line_w += extra + word_w;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_w = 0.0;
                }
                if word_w <= max {
                    line.push_str(word);
                    line_w = word_w;
                } else {
                    for c in word.chars() {
                        let w = Self::char_width(font, c) * size;
                        if line_w + w > max && !line.is_empty() {
                            lines.push(std::mem::take(&mut line));
                            line_w = 0.0;
                        }
                        line.push(c);
                        line_w += w;
                    }
                }
            }
            lines.push(line);
        }
        lines
    }

    /// `s` with its baseline starting at (`x`, `y`), as given: a line that
    /// has been measured already.
    pub fn text(&mut self, x: f32, y: f32, size: f32, face: Face, color: Rgb3, s: &str) {
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
                items: vec![TextItem::Text(s.to_owned())],
            },
            Op::EndTextSection,
        ]);
    }

    /// Text cut to `max` points ([`Layout::fit`]). (Position, style and box
    /// are each needed at every call; bundling them would only move the
    /// arguments.)
    #[allow(clippy::too_many_arguments)]
    pub fn text_fit(
        &mut self,
        x: f32,
        y: f32,
        size: f32,
        face: Face,
        color: Rgb3,
        s: &str,
        max: f32,
    ) {
        let s = self.fit(s, size, face, max);
        self.text(x, y, size, face, color, &s);
    }

    /// A filled rectangle with its lower left corner at (`x`, `y`).
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgb3) {
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

    /// An open line through `points`.
    pub fn polyline(&mut self, points: &[(f32, f32)], color: Rgb3, thickness: f32) {
        self.ops.extend([
            Op::SetOutlineColor { col: rgb(color) },
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::DrawLine {
                line: Line {
                    points: points
                        .iter()
                        .map(|&(x, y)| LinePoint {
                            p: Point { x: Pt(x), y: Pt(y) },
                            bezier: false,
                        })
                        .collect(),
                    is_closed: false,
                },
            },
        ]);
    }

    /// A horizontal line from margin to margin at `y`.
    pub fn rule(&mut self, y: f32, color: Rgb3, thickness: f32) {
        self.polyline(&[(MARGIN, y), (MARGIN + CONTENT_W, y)], color, thickness);
    }

    /// Close this page and continue at the top of the next.
    pub fn new_page(&mut self) {
        let ops = std::mem::take(&mut self.ops);
        self.pages.push(ops);
        self.y = TOP;
    }

    /// Start a new page unless `h` points still fit.
    pub fn ensure(&mut self, h: f32) {
        if self.y - h < BOTTOM {
            self.new_page();
        }
    }

    /// A page's foot: a rule, "Page `page` of `pages`" at the right and
    /// `left` cut to the room before it.
    pub fn footer(&mut self, left: &str, page: usize, pages: usize) {
        self.rule(42.0, RULE, 0.5);
        let right = format!("Page {page} of {pages}");
        let rw = self.width(&right, 7.5, Face::Regular);
        self.text(
            MARGIN + CONTENT_W - rw,
            30.0,
            7.5,
            Face::Regular,
            MUTED,
            &right,
        );
        self.text_fit(
            MARGIN,
            30.0,
            7.5,
            Face::Regular,
            MUTED,
            left,
            CONTENT_W - rw - 12.0,
        );
    }

    /// Close the last page, let `foot` draw on each page (numbered from 1,
    /// with the page count) and save the document as A4 pages.
    pub fn finish(mut self, mut foot: impl FnMut(&mut Layout<'a>, usize, usize)) -> Vec<u8> {
        self.new_page();
        let bodies = std::mem::take(&mut self.pages);
        let total = bodies.len();
        let mut pages = Vec::with_capacity(total);
        for (i, ops) in bodies.into_iter().enumerate() {
            self.ops = ops;
            foot(&mut self, i + 1, total);
            pages.push(PdfPage::new(
                Mm(210.0),
                Mm(297.0),
                std::mem::take(&mut self.ops),
            ));
        }
        let mut warnings = Vec::new();
        self.doc
            .with_pages(pages)
            .save(&PdfSaveOptions::default(), &mut warnings)
    }
}

#[cfg(test)]
mod tests {
    use printpdf::PdfDocument;

    use super::{Face, Fonts, Layout};

    #[test]
    fn wrapped_and_fitted_text_stays_in_its_box() {
        let fonts = Fonts::load().expect("fonts");
        let l = Layout::new(PdfDocument::new("t"), &fonts);
        let text =
            "Ünïcödé Ωμέγα Привет averyveryverylongwordwithoutanyspacesatallthatmustbebroken \
                    and some ordinary words to wrap";
        for face in [Face::Regular, Face::Bold] {
            let lines = l.wrap(text, 9.0, face, 80.0);
            assert!(lines.len() > 3);
            for line in &lines {
                assert!(l.width(line, 9.0, face) <= 80.0 + 0.01, "{line}");
            }
            assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
            let cut = l.fit(text, 9.0, face, 60.0);
            assert!(cut.ends_with('…'));
            assert!(l.width(&cut, 9.0, face) <= 60.0 + 0.01);
        }
        assert!(l.width("W", 10.0, Face::Regular) > l.width("i", 10.0, Face::Regular));
    }
}
