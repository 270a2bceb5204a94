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
//! A row holds only what differs between findings: what is the same for
//! every subject of a check (its title, the owners of its controls, the
//! evidence it read) is in `results/controls.json` (under `checks`, by
//! check) and in the HTML report, not repeated on each of 100,000 rows.
//! Column `controls` names each framework once, then its control ids:
//! `hipaa 164.308(a)(3)(i) 164.312(a)(1); pci-dss 8.2.5`.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Result, ResultExt};
use crate::evaluate::ControlResult;
use crate::evidence::AtomicFile;

const HEADER: [&str; 7] = [
    "responsible",
    "check",
    "subject_id",
    "subject_name",
    "detail",
    "controls",
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
        let controls = controls_cell(&g.controls);
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
                    finding,
                ],
            )?;
        }
    }
    Ok(())
}

/// The `controls` cell: each framework once, then the ids of its controls,
/// frameworks apart by `; ` (`hipaa 164.312(a)(1) 164.312(d); soc2 CC6.1`),
/// in the order of the gap's controls. Control ids hold no spaces.
pub fn controls_cell(controls: &[super::gaps::GapControl]) -> String {
    let mut frameworks: Vec<(&str, Vec<&str>)> = Vec::new();
    for c in controls {
        match frameworks.iter_mut().find(|(f, _)| *f == c.framework) {
            Some((_, ids)) => ids.push(c.control_id.as_str()),
            None => frameworks.push((c.framework.as_str(), vec![c.control_id.as_str()])),
        }
    }
    frameworks
        .iter()
        .map(|(f, ids)| format!("{f} {}", ids.join(" ")))
        .collect::<Vec<_>>()
        .join("; ")
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
    use crate::config::Owner;
    use crate::report::gaps::GapControl;

    #[test]
    fn controls_name_each_framework_once() {
        let control = |framework: &str, control_id: &str| GapControl {
            framework: framework.into(),
            control_id: control_id.into(),
            owner: Owner::Internal,
            label: String::new(),
            anchor: String::new(),
        };
        let cell = super::controls_cell(&[
            control("hipaa", "164.312(a)(1)"),
            control("pci-dss", "8.2.5"),
            control("hipaa", "164.312(d)"),
            control("soc2", "CC6.1"),
        ]);
        assert_eq!(
            cell,
            "hipaa 164.312(a)(1) 164.312(d); pci-dss 8.2.5; soc2 CC6.1"
        );
        assert!(super::is_plain(&cell), "no quoting needed");
        assert_eq!(super::controls_cell(&[]), "");
    }

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
