//! The history parts of the human reports: "Changes since DATE" (the run's
//! `results/drift.json`: regressions, fixes, lost evidence, sources lost,
//! subjects newly failing and fixed per check) and "Accepted risks" (every
//! failing control an exception accepts, with its approver, reason and
//! expiry), and the status label of an accepted failure,
//! `Fail (accepted until DATE)`.
//!
//! Both are laid out once here as [`Section`]s of paragraphs and tables; the
//! HTML page ([`html`]) and the PDF draw the same sections. Every value is
//! HTML-escaped here for the page.

use std::fmt::Write as _;

use serde::Serialize;

use super::model::{framework_label, owner_label, status_label as plain_label, RunData};
use crate::evaluate::{ControlResult, Status};
use crate::history::drift::{ControlChange, Drift};
use crate::history::summary::SubjectRef;

/// Subjects named per check and list before "and N more".
const LISTED: usize = 10;

/// What the reports show of the run's history.
#[derive(Clone, Debug, Default, Serialize)]
pub struct History {
    /// The run's drift, when its folder has `results/drift.json`.
    pub drift: Option<Drift>,
    /// Failing controls accepted by an exception, in report order.
    pub accepted: Vec<AcceptedRow>,
}

/// One accepted failure, for the auditor.
#[derive(Clone, Debug, Serialize)]
pub struct AcceptedRow {
    /// `PCI DSS 8.4.2`.
    pub control: String,
    /// Title.
    pub title: String,
    /// Accepted until (`YYYY-MM-DD`): the earliest expiry of its exceptions.
    pub expires: String,
    /// Approver(s), one per exception.
    pub approved_by: String,
    /// Reason(s).
    pub reason: String,
    /// What the exceptions cover.
    pub covers: String,
}

/// The status of a control as people read it: the plain label, or for an
/// accepted failure `Fail (accepted until DATE)`; an accepted failure is
/// never shown as a pass.
pub fn status_label(r: &ControlResult) -> String {
    match (&r.accepted, r.status) {
        (Some(a), Status::Fail) => {
            format!("{} (accepted until {})", plain_label(r.status), a.expires)
        }
        _ => plain_label(r.status).to_owned(),
    }
}

fn label(framework: &str, id: &str) -> String {
    format!("{} {id}", framework_label(framework))
}

impl History {
    /// From the run's inputs.
    pub fn build(data: &RunData) -> History {
        let accepted = data
            .results
            .iter()
            .filter(|r| r.status == Status::Fail)
            .filter_map(|r| {
                let a = r.accepted.as_ref()?;
                let join = |f: &dyn Fn(&crate::exceptions::Exception) -> String| {
                    let mut seen: Vec<String> = Vec::new();
                    for e in &a.exceptions {
                        let v = f(e);
                        if !seen.contains(&v) {
                            seen.push(v);
                        }
                    }
                    seen.join("; ")
                };
                Some(AcceptedRow {
                    control: label(&r.framework, &r.control_id),
                    title: r.title.clone(),
                    expires: a.expires.to_string(),
                    approved_by: join(&|e| e.approved_by.clone()),
                    reason: join(&|e| e.reason.clone()),
                    covers: join(&|e| match (&e.check, &e.subject) {
                        (None, _) => "the whole control".to_owned(),
                        (Some(c), None) => format!("check {c}"),
                        (Some(c), Some(s)) => format!("check {c}, subject {s}"),
                    }),
                })
            })
            .collect();
        History {
            drift: data.drift.clone(),
            accepted,
        }
    }
}

/// One table cell: text, and the status it shows (for its colour).
#[derive(Clone, Debug)]
pub struct Cell {
    /// The text.
    pub text: String,
    /// A status spelling (`fail`, `pass`...) when the cell shows one.
    pub status: Option<&'static str>,
}

impl Cell {
    fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            status: None,
        }
    }
}

/// A piece of a section.
#[derive(Clone, Debug)]
pub enum Block {
    /// A paragraph.
    Paragraph(String),
    /// A small heading.
    Heading(String),
    /// A table: column titles with relative widths, and rows.
    Table {
        /// Titles and relative widths.
        columns: Vec<(&'static str, f32)>,
        /// Rows of cells.
        rows: Vec<Vec<Cell>>,
    },
}

/// A titled section of a report.
#[derive(Clone, Debug)]
pub struct Section {
    /// HTML anchor.
    pub id: &'static str,
    /// Title.
    pub title: String,
    /// Content.
    pub blocks: Vec<Block>,
}

fn status_text(s: Option<Status>) -> &'static str {
    s.map_or("not evaluated", plain_label)
}

fn change_table(list: &[ControlChange]) -> Block {
    Block::Table {
        columns: vec![
            ("Control", 90.0),
            ("Title", 200.0),
            ("Owner", 60.0),
            ("Before", 70.0),
            ("Now", 110.0),
        ],
        rows: list
            .iter()
            .map(|c| {
                let (framework, id) = c.control.split_once(':').unwrap_or(("", &c.control));
                let now = match (&c.accepted, c.after) {
                    (Some(a), Some(Status::Fail)) => {
                        format!(
                            "{} (accepted until {})",
                            plain_label(Status::Fail),
                            a.expires
                        )
                    }
                    _ => status_text(c.after).to_owned(),
                };
                vec![
                    Cell::plain(label(framework, id)),
                    Cell::plain(c.title.clone()),
                    Cell::plain(owner_label(c.owner)),
                    Cell {
                        text: status_text(c.before).to_owned(),
                        status: c.before.map(Status::as_str),
                    },
                    Cell {
                        text: now,
                        status: c.after.map(Status::as_str),
                    },
                ]
            })
            .collect(),
    }
}

fn names(list: &[SubjectRef]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut shown: Vec<&str> = list.iter().take(LISTED).map(|s| s.name.as_str()).collect();
    let more = list.len().saturating_sub(LISTED);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    shown.dedup();
    format!("{}{tail}", shown.join("; "))
}

/// The date part of an RFC 3339 time, for titles.
fn day(t: &str) -> &str {
    t.get(..10).unwrap_or(t)
}

/// The sections to draw: "Changes since DATE" when the run has a drift,
/// "Accepted risks" when a failure is accepted.
pub fn sections(h: &History) -> Vec<Section> {
    let mut out = Vec::new();
    if let Some(d) = &h.drift {
        out.push(changes(d));
    }
    if !h.accepted.is_empty() {
        out.push(Section {
            id: "accepted",
            title: "Accepted risks".to_owned(),
            blocks: vec![
                Block::Paragraph(format!(
                    "{} failing control(s) are accepted by the organisation's exceptions \
                     (exceptions.toml, kept with the run's evidence). They still fail and are \
                     counted as failures; each is accepted only until the date shown, by the \
                     approver named.",
                    h.accepted.len()
                )),
                Block::Table {
                    columns: vec![
                        ("Control", 80.0),
                        ("Title", 150.0),
                        ("Accepted until", 70.0),
                        ("Approved by", 90.0),
                        ("Reason", 150.0),
                        ("Covers", 90.0),
                    ],
                    rows: h
                        .accepted
                        .iter()
                        .map(|a| {
                            vec![
                                Cell::plain(a.control.clone()),
                                Cell::plain(a.title.clone()),
                                Cell {
                                    text: a.expires.clone(),
                                    status: Some("fail"),
                                },
                                Cell::plain(a.approved_by.clone()),
                                Cell::plain(a.reason.clone()),
                                Cell::plain(a.covers.clone()),
                            ]
                        })
                        .collect(),
                },
            ],
        });
    }
    out
}

fn changes(d: &Drift) -> Section {
    let Some(previous) = &d.previous else {
        return Section {
            id: "changes",
            title: "Changes since the previous run".to_owned(),
            blocks: vec![Block::Paragraph(
                "This is the organisation's first recorded run: there is no earlier run to compare with."
                    .to_owned(),
            )],
        };
    };
    let mut blocks = vec![Block::Paragraph(format!(
        "Compared with run {} (finished {}): {} regression(s), {} fix(es), {} control(s) with \
         evidence lost, {} source(s) lost, {} check(s) whose failing users or devices changed. \
         Evidence lost means a control judged before cannot be judged now: never a fix.",
        previous.run_id,
        previous.finished_at,
        d.regressions.len(),
        d.fixes.len(),
        d.lost_evidence.len(),
        d.sources_lost.len(),
        d.subjects.len()
    ))];
    if d.is_empty() {
        blocks.push(Block::Paragraph("Nothing changed.".to_owned()));
    }
    for (title, list) in [
        ("Regressions (newly failing)", &d.regressions),
        ("Fixes", &d.fixes),
        ("Evidence lost", &d.lost_evidence),
        ("Other status changes", &d.other_changes),
    ] {
        if !list.is_empty() {
            blocks.push(Block::Heading(format!("{title}: {}", list.len())));
            blocks.push(change_table(list));
        }
    }
    if !d.sources_lost.is_empty() {
        let word = |s: Option<crate::evidence::SourceStatus>| match s {
            Some(crate::evidence::SourceStatus::Complete) => "complete",
            Some(crate::evidence::SourceStatus::Partial) => "partial",
            Some(crate::evidence::SourceStatus::Failed) => "failed",
            None => "not collected",
        };
        blocks.push(Block::Heading(format!(
            "Sources lost: {}",
            d.sources_lost.len()
        )));
        blocks.push(Block::Table {
            columns: vec![
                ("Source", 80.0),
                ("Type", 70.0),
                ("Before", 60.0),
                ("Now", 60.0),
                ("Why", 260.0),
            ],
            rows: d
                .sources_lost
                .iter()
                .map(|s| {
                    vec![
                        Cell::plain(s.source.clone()),
                        Cell::plain(s.source_type.clone()),
                        Cell::plain(word(s.before)),
                        Cell {
                            text: word(s.after).to_owned(),
                            status: Some("inconclusive"),
                        },
                        Cell::plain(s.reason.clone().unwrap_or_default()),
                    ]
                })
                .collect(),
        });
    }
    if !d.subjects.is_empty() {
        blocks.push(Block::Heading(format!(
            "Failing users and devices per check: {}",
            d.subjects.len()
        )));
        blocks.push(Block::Table {
            columns: vec![
                ("Check", 140.0),
                ("Responsible", 60.0),
                ("Failing", 60.0),
                ("Newly failing", 120.0),
                ("Fixed", 110.0),
                ("No longer judged", 110.0),
            ],
            rows: d
                .subjects
                .iter()
                .map(|c| {
                    vec![
                        Cell::plain(c.title.clone()),
                        Cell::plain(owner_label(c.responsible)),
                        Cell::plain(if c.judged_after {
                            format!("{} -> {}", c.failing_before, c.failing_after)
                        } else {
                            format!("{} -> not judged", c.failing_before)
                        }),
                        Cell {
                            text: names(&c.newly_failing),
                            status: (!c.newly_failing.is_empty()).then_some("fail"),
                        },
                        Cell {
                            text: names(&c.fixed),
                            status: (!c.fixed.is_empty()).then_some("pass"),
                        },
                        Cell {
                            text: names(&c.unjudged),
                            status: (!c.unjudged.is_empty()).then_some("inconclusive"),
                        },
                    ]
                })
                .collect(),
        });
    }
    Section {
        id: "changes",
        title: format!("Changes since {}", day(&previous.finished_at)),
        blocks,
    }
}

fn esc(s: &str) -> String {
    handlebars::html_escape(s)
}

/// The sections as HTML (every value escaped), using the page's own
/// styles.
pub fn html(sections: &[Section]) -> String {
    let mut out = String::new();
    for s in sections {
        let _ = writeln!(out, "<h2 id=\"{}\">{}</h2>", s.id, esc(&s.title));
        for b in &s.blocks {
            match b {
                Block::Paragraph(p) => {
                    let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(p));
                }
                Block::Heading(h) => {
                    let _ = writeln!(out, "<h3>{}</h3>", esc(h));
                }
                Block::Table { columns, rows } => {
                    out.push_str("<table>\n<thead><tr>");
                    for (title, _) in columns {
                        let _ = write!(out, "<th>{}</th>", esc(title));
                    }
                    out.push_str("</tr></thead>\n<tbody>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        for cell in row {
                            match cell.status {
                                Some(st) if !cell.text.is_empty() => {
                                    let _ = write!(
                                        out,
                                        "<td><span class=\"badge {st}\">{}</span></td>",
                                        esc(&cell.text)
                                    );
                                }
                                _ => {
                                    let _ = write!(out, "<td>{}</td>", esc(&cell.text));
                                }
                            }
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</tbody>\n</table>\n");
                }
            }
        }
    }
    out
}

/// Put the sections into a rendered page, before its source status (right
/// after the executive summary).
pub fn splice_html(page: String, sections: &[Section]) -> String {
    if sections.is_empty() {
        return page;
    }
    let block = html(sections);
    match page.find(SPLICE_BEFORE) {
        Some(at) => {
            let mut out = String::with_capacity(page.len() + block.len());
            out.push_str(&page[..at]);
            out.push_str(&block);
            out.push('\n');
            out.push_str(&page[at..]);
            out
        }
        None => match page.rfind("</main>") {
            Some(at) => format!("{}{block}{}", &page[..at], &page[at..]),
            None => page + &block,
        },
    }
}

/// The heading the sections go before in the HTML page.
const SPLICE_BEFORE: &str = "<h2 id=\"sources\">";

/// A writer that passes a page through to `inner` and puts the sections'
/// HTML right before the source status heading as it streams by (or at the
/// end, [`SpliceWriter::finish`], if the heading never came), so a page
/// too large to hold in memory gets the same sections as [`splice_html`].
pub struct SpliceWriter<W: std::io::Write> {
    inner: W,
    block: Option<String>,
    /// Bytes not yet written that may start the heading.
    carry: Vec<u8>,
}

impl<W: std::io::Write> SpliceWriter<W> {
    /// Splice `sections` (nothing when empty) into what is written to `inner`.
    pub fn new(inner: W, sections: &[Section]) -> Self {
        SpliceWriter {
            inner,
            block: (!sections.is_empty()).then(|| html(sections) + "\n"),
            carry: Vec::new(),
        }
    }

    /// Write what is held back (and the sections, if the heading never
    /// came) and hand back the inner writer.
    ///
    /// # Errors
    /// On a write error.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.inner.write_all(&self.carry)?;
        if let Some(block) = self.block.take() {
            self.inner.write_all(block.as_bytes())?;
        }
        Ok(self.inner)
    }
}

impl<W: std::io::Write> std::io::Write for SpliceWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(block) = &self.block else {
            return self.inner.write(buf);
        };
        self.carry.extend_from_slice(buf);
        let marker = SPLICE_BEFORE.as_bytes();
        if let Some(at) = self.carry.windows(marker.len()).position(|w| w == marker) {
            self.inner.write_all(&self.carry[..at])?;
            self.inner.write_all(block.as_bytes())?;
            self.inner.write_all(&self.carry[at..])?;
            self.carry = Vec::new();
            self.block = None;
        } else {
            let keep = self.carry.len().min(marker.len() - 1);
            let flush = self.carry.len() - keep;
            self.inner.write_all(&self.carry[..flush])?;
            self.carry.drain(..flush);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::{splice_html, Block, Section, SpliceWriter};

    #[test]
    fn streamed_pages_get_the_sections_where_whole_pages_do() {
        let sections = vec![Section {
            id: "accepted",
            title: "Accepted risks".to_owned(),
            blocks: vec![Block::Paragraph("one <accepted> failure".to_owned())],
        }];
        let page =
            "<main><h2 id=\"summary\">S</h2><p>x</p><h2 id=\"sources\">Source status</h2></main>";
        let whole = splice_html(page.to_owned(), &sections);
        assert!(whole.contains("Accepted risks"));
        // Every chunk size, so the heading is cut at every place.
        for chunk in 1..=page.len() {
            let mut w = SpliceWriter::new(Vec::new(), &sections);
            for part in page.as_bytes().chunks(chunk) {
                w.write_all(part).expect("write");
            }
            let out = String::from_utf8(w.finish().expect("finish")).expect("utf-8");
            assert_eq!(
                out.replace('\n', ""),
                whole.replace('\n', ""),
                "chunk {chunk}"
            );
        }
        // No sections: the page as it was.
        let mut w = SpliceWriter::new(Vec::new(), &[]);
        w.write_all(page.as_bytes()).expect("write");
        assert_eq!(w.finish().expect("finish"), page.as_bytes());
    }
}
