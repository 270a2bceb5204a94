//! `results/findings.csv`: one row per failing subject per control, then one
//! per unproven subject per control (column `finding`: `failing`, "fix
//! these", or `unproven`, "cannot see these"), for spreadsheets: UTF-8 BOM, RFC 4180 quoting, and cells that a spreadsheet
//! would run as formulas prefixed with `'`.

use std::path::Path;

use crate::error::{Result, ResultExt};
use crate::evaluate::ControlResult;
use crate::evidence::write_atomic;

const HEADER: [&str; 10] = [
    "framework",
    "control",
    "owner",
    "responsible",
    "check",
    "subject_id",
    "subject_name",
    "detail",
    "evidence",
    "finding",
];

/// Render the findings.
pub fn render(results: &[ControlResult]) -> String {
    let mut out = String::from("\u{feff}");
    push_row(&mut out, HEADER);
    for r in results {
        for c in &r.checks {
            let evidence = c.evidence.join(" ");
            let rows = c
                .failing
                .iter()
                .map(|s| (s, "failing"))
                .chain(c.unproven.iter().map(|s| (s, "unproven")));
            for (s, finding) in rows {
                push_row(
                    &mut out,
                    [
                        &r.framework,
                        &r.control_id,
                        r.owner.as_str(),
                        c.responsible.as_str(),
                        &c.check,
                        &s.id,
                        &s.name,
                        &s.detail,
                        &evidence,
                        finding,
                    ],
                );
            }
        }
    }
    out
}

/// Write `results/findings.csv` under `run_dir`.
///
/// # Errors
/// On I/O failure.
pub fn write(run_dir: &Path, results: &[ControlResult]) -> Result<()> {
    let path = run_dir.join("results/findings.csv");
    write_atomic(&path, render(results).as_bytes())
        .context(|| format!("cannot write {}", path.display()))
}

fn push_row<'a>(out: &mut String, cells: impl IntoIterator<Item = &'a str>) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if is_plain(cell) {
            out.push_str(cell);
        } else {
            out.push_str(&cell_text(cell));
        }
    }
    out.push_str("\r\n");
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
