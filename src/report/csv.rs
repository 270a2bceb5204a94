//! `results/findings.csv`: one row per failing subject of a check, under the
//! party that must act, then one per unproven subject, under the party that
//! must make it visible (column `finding`: `failing`, "fix these", or
//! `unproven`, "cannot see these"), with every control it touches in one
//! column (the gaps of [`super::gaps`], as in every report), for
//! spreadsheets: UTF-8 BOM, RFC 4180 quoting, and cells that a spreadsheet
//! would run as formulas prefixed with `'`.
//!
//! A subject is on one row per check, however many controls the check maps
//! to, so the file grows with the findings, not with findings x controls.
//! Column `evidence` names the folders of the datasets the check read (their
//! files, with SHA-256, are the custody log's entries for that source and
//! dataset; `results/controls.json` has each set's file count and list
//! digest).

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Result, ResultExt};
use crate::evaluate::ControlResult;
use crate::evidence::AtomicFile;

const HEADER: [&str; 10] = [
    "responsible",
    "check",
    "subject_id",
    "subject_name",
    "detail",
    "controls",
    "control_owners",
    "check_title",
    "evidence",
    "finding",
];

/// Write the findings to `out`, a row at a time.
///
/// # Errors
/// On a write failure.
pub fn render(results: &[ControlResult], out: &mut impl Write) -> std::io::Result<()> {
    out.write_all("\u{feff}".as_bytes())?;
    push_row(out, HEADER)?;
    let found = super::gaps::gaps(results, None);
    let rows = found
        .gaps
        .iter()
        .map(|g| (g, "failing"))
        .chain(found.unseen.iter().map(|g| (g, "unproven")));
    for (g, finding) in rows {
        let controls: Vec<String> = g.controls.iter().map(|c| c.key()).collect();
        let controls = controls.join(" ");
        let mut owners: Vec<&str> = g.controls.iter().map(|c| c.owner.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        let owners = owners.join(" ");
        let evidence: Vec<String> = g
            .evidence
            .iter()
            .map(|e| format!("{}/", e.folder))
            .collect();
        let evidence = evidence.join(" ");
        let whole = [crate::checks::Subject {
            id: String::new(),
            name: String::new(),
            detail: "the check fails as a whole".to_owned(),
        }];
        let subjects = match finding {
            "unproven" => &g.unproven[..],
            _ if g.failing.is_empty() => &whole[..],
            _ => &g.failing[..],
        };
        for s in subjects {
            push_row(
                out,
                [
                    g.responsible.as_str(),
                    &g.check,
                    &s.id,
                    &s.name,
                    &s.detail,
                    &controls,
                    &owners,
                    &g.title,
                    &evidence,
                    finding,
                ],
            )?;
        }
    }
    Ok(())
}

/// Write `results/findings.csv` under `run_dir` (atomically, streamed).
///
/// # Errors
/// On I/O failure.
pub fn write(run_dir: &Path, results: &[ControlResult]) -> Result<()> {
    let path = run_dir.join("results/findings.csv");
    let written = AtomicFile::create(&path).and_then(|file| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        render(results, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.commit()
    });
    written.context(|| format!("cannot write {}", path.display()))
}

fn push_row<'a>(
    out: &mut impl Write,
    cells: impl IntoIterator<Item = &'a str>,
) -> std::io::Result<()> {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if is_plain(cell) {
            out.write_all(cell.as_bytes())?;
        } else {
            out.write_all(cell_text(cell).as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

/// A cell that needs neither guarding nor quoting (the common case, checked
/// without allocating).
fn is_plain(cell: &str) -> bool {
    !cell.starts_with(['=', '+', '-', '@', '|', '%', ' '])
        && !cell.ends_with(' ')
        && !cell.chars().any(|c| c.is_control() || c == ',' || c == '"')
}

/// One cell: neutralise formulas, then quote when needed.
pub fn cell_text(cell: &str) -> String {
    let clean: String = cell
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    let guarded = if clean.starts_with(['=', '+', '-', '@', '\t', '\r', '|', '%']) {
        format!("'{clean}")
    } else {
        clean
    };
    if guarded.contains([',', '"', '\n', '\r'])
        || guarded.starts_with(' ')
        || guarded.ends_with(' ')
    {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::cell_text;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(cell_text("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell_text("+1"), "'+1");
        assert_eq!(cell_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell_text("a,b"), "\"a,b\"");
        assert_eq!(cell_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell_text("PC-01"), "PC-01");
        for cell in [
            "=1", "+1", "-1", "@a", "|a", "%a", " a", "a ", "a,b", "a\"b", "a\nb", "a\tb",
        ] {
            assert!(!super::is_plain(cell), "{cell:?}");
        }
        assert!(super::is_plain("User 1 <user1@example.com>"));
    }
}
