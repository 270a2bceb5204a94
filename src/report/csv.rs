//! `results/findings.csv`: one row per failing subject, under the party that
//! must act, then one per unproven subject, under the party that must make
//! it visible (column `finding`: `failing`, "fix these", or `unproven`,
//! "cannot see these"), with the controls it touches beside it (the gaps of
//! [`super::gaps`], as in every report), for spreadsheets: UTF-8 BOM, RFC 4180
//! quoting, and cells that a spreadsheet would run as formulas prefixed with
//! `'`.

use std::path::Path;

use crate::error::{Result, ResultExt};
use crate::evaluate::ControlResult;
use crate::evidence::write_atomic;

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

/// Render the findings.
pub fn render(results: &[ControlResult]) -> String {
    let mut out = String::from("\u{feff}");
    push_row(&mut out, HEADER);
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
        let evidence: Vec<&str> = g.evidence.iter().map(|e| e.path.as_str()).collect();
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
                &mut out,
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
            );
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
