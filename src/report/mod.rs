//! Reports: renderings of `results/controls.json`, `run.json` and
//! `custody.jsonl`. Reports never recompute a result; every format reads the
//! same [`model::RunData`].
//!
//! | format | file (in the run folder) | for |
//! |---|---|---|
//! | `html` | `reports/report.html` | everyone: one self-contained page |
//! | `pdf` | `reports/report.pdf` | the executive walk-through, printed |
//! | `csv` | `results/findings.csv` | the fix lists in a spreadsheet |
//! | `json` | `results/controls.json` | tools (rewritten as read) |
//! | `oscal` | `results/assessment-results.oscal.json` | GRC tools (OSCAL 1.1.2) |

pub mod csv;
pub mod drift;
pub mod gaps;
pub mod html;
pub mod json;
pub mod model;
pub mod oscal;
pub mod pdf;
pub(crate) mod pdf_layout;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result, ResultExt};
use crate::evidence::write_atomic;
pub use model::{Report, RunData, SignerInfo};

/// One report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// `reports/report.html`.
    Html,
    /// `reports/report.pdf`.
    Pdf,
    /// `results/findings.csv`.
    Csv,
    /// `results/controls.json`.
    Json,
    /// `results/assessment-results.oscal.json`.
    Oscal,
}

impl Format {
    /// Every format, in the order they are written.
    pub const ALL: [Format; 5] = [
        Format::Json,
        Format::Csv,
        Format::Oscal,
        Format::Html,
        Format::Pdf,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Oscal => "oscal",
        }
    }

    /// The file it writes, relative to the run folder.
    pub fn path(self) -> &'static str {
        match self {
            Format::Html => "reports/report.html",
            Format::Pdf => "reports/report.pdf",
            Format::Csv => "results/findings.csv",
            Format::Json => "results/controls.json",
            Format::Oscal => "results/assessment-results.oscal.json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::config(format!(
                    "unknown report format `{s}`; known: html, pdf, csv, json, oscal"
                ))
            })
    }
}

/// What to render. The package signer shown on the cover comes from
/// `run.json`, whichever command renders.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Formats to write.
    pub formats: Vec<Format>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            formats: Format::ALL.to_vec(),
        }
    }
}

impl Format {
    /// The formats rendered from `controls.json` beside it: everything but the
    /// JSON and CSV that evaluation itself writes.
    pub const RENDERED: [Format; 3] = [Format::Html, Format::Pdf, Format::Oscal];
}

/// Refuse a run folder that is a package, or lies inside one (a `bagit.txt`
/// in it or in a folder above it): writing there would change files the
/// package's manifests and signature cover.
///
/// # Errors
/// When `run_dir` is a package or inside one; the message says where the
/// reports already are and what to do instead.
pub fn ensure_not_in_package(run_dir: &Path) -> Result<()> {
    if run_dir.is_file() {
        let zip = run_dir
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        return Err(Error::invalid(if zip {
            format!(
                "{} is a zipped package; reports are already inside it (data/reports/)",
                run_dir.display()
            )
        } else {
            format!(
                "{} is a file, not a run folder (one holding run.json)",
                run_dir.display()
            )
        }));
    }
    if run_dir.join("bagit.txt").is_file() {
        return Err(Error::invalid(format!(
            "{} is a package; reports are already inside it ({}/reports/); \
             to render them again, give the run folder in the store's runs/ instead",
            run_dir.display(),
            run_dir.join("data").display()
        )));
    }
    let full = run_dir
        .canonicalize()
        .or_else(|_| std::path::absolute(run_dir))
        .unwrap_or_else(|_| run_dir.to_owned());
    if let Some(package) = full
        .ancestors()
        .skip(1)
        .find(|a| a.join("bagit.txt").is_file())
    {
        return Err(Error::invalid(format!(
            "{} lies inside the package {}, whose manifests and signature cover every file in it; \
             nothing is written there. Its reports are already in {}/reports/; to render them \
             again, give the run folder in the store's runs/ instead",
            run_dir.display(),
            package.display(),
            package.join("data").display()
        )));
    }
    Ok(())
}

/// Write what judging a run folder found into it: `facts/facts.json`,
/// `results/controls.json` and `results/findings.csv`.
///
/// # Errors
/// On I/O failure (the message names the file).
pub fn write_results(run_dir: &Path, judgement: &crate::judge::Judgement) -> Result<()> {
    let mut facts =
        serde_json::to_vec_pretty(&judgement.facts).context(|| "cannot encode facts")?;
    facts.push(b'\n');
    let path = run_dir.join("facts/facts.json");
    write_atomic(&path, &facts).context(|| format!("cannot write {}", path.display()))?;
    json::write(run_dir, &judgement.results)?;
    csv::write(run_dir, &judgement.results)
}

/// Render the chosen formats of the run folder at `run_dir` into it, from its
/// `results/controls.json`, `run.json` and `custody.jsonl`. Returns the files
/// written.
///
/// # Errors
/// When `run_dir` is a package or inside one ([`ensure_not_in_package`]), an
/// input is missing or malformed, or a file cannot be written.
pub fn write_reports(run_dir: &Path, options: &ReportOptions) -> Result<Vec<PathBuf>> {
    ensure_not_in_package(run_dir)?;
    let data = RunData::load(run_dir)?;
    let mut formats = options.formats.clone();
    formats.sort();
    formats.dedup();
    let needs_model = formats
        .iter()
        .any(|f| matches!(f, Format::Html | Format::Pdf));
    let model = needs_model.then(|| Report::build(&data));
    // The formats are independent once the inputs are read: the two large
    // renderings (JSON and CSV) run beside the others.
    let chosen: Vec<Format> = Format::ALL
        .into_iter()
        .filter(|f| formats.contains(f))
        .collect();
    let (big, rest): (Vec<Format>, Vec<Format>) = chosen
        .iter()
        .partition(|f| matches!(f, Format::Json | Format::Csv));
    let render = |list: &[Format]| -> Result<()> {
        for format in list {
            match (format, &model) {
                (Format::Json, _) => json::write(run_dir, &data.results)?,
                (Format::Csv, _) => csv::write(run_dir, &data.results)?,
                (Format::Oscal, _) => oscal::write(run_dir, &data)?,
                (Format::Html, Some(m)) => html::write(run_dir, m)?,
                (Format::Pdf, Some(m)) => pdf::write(run_dir, m)?,
                (Format::Html | Format::Pdf, None) => {}
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let side = scope.spawn(|| render(&big));
        let here = render(&rest);
        let side = side
            .join()
            .unwrap_or_else(|_| Err(Error::invalid("report rendering thread panicked")));
        here.and(side)
    })?;
    let written = chosen.iter().map(|f| run_dir.join(f.path())).collect();
    Ok(written)
}
