//! `auditpack history`: the runs of one organisation or of a whole fleet,
//! from the history index, with their counts by status and owner and what
//! changed since the run before; `--json` prints one object per run (JSON
//! Lines).

use std::fmt::Write as _;

use super::terminal_safe;
use crate::error::{Error, Result};
use crate::evaluate::Status;
use crate::history::index::RunRow;

/// `--since`: a date (`2026-01-01`, its first instant UTC) or an RFC 3339
/// time, as the UTC text the index compares with.
///
/// # Errors
/// When it is neither.
pub fn parse_since(s: &str) -> Result<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(crate::evidence::format_time(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(crate::evidence::format_time(
            d.and_time(chrono::NaiveTime::MIN).and_utc(),
        ));
    }
    Err(Error::invalid(format!(
        "--since {s:?} is neither a date (2026-01-01) nor an RFC 3339 time (2026-01-01T09:30:00Z)"
    )))
}

fn counts(map: &std::collections::BTreeMap<Status, usize>) -> String {
    let parts: Vec<String> = Status::ALL
        .iter()
        .filter_map(|s| map.get(s).filter(|n| **n > 0).map(|n| format!("{n} {s}")))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The runs as text, oldest first.
pub fn render(rows: &[RunRow]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("no runs in the history\n");
        return out;
    }
    for r in rows {
        let _ = writeln!(
            out,
            "{}  {}  {}",
            r.finished,
            terminal_safe(&r.organisation),
            terminal_safe(&r.run_id)
        );
        let accepted = if r.accepted > 0 {
            format!(" ({} failing accepted)", r.accepted)
        } else {
            String::new()
        };
        let _ = writeln!(out, "  controls: {}{accepted}", counts(&r.by_status));
        let owners: Vec<String> = r
            .by_owner
            .iter()
            .map(|(o, m)| format!("{o}: {}", counts(m)))
            .collect();
        let _ = writeln!(out, "  by owner: {}", owners.join("; "));
        match &r.changes {
            None => {
                let _ = writeln!(out, "  changes: first run, nothing to compare with");
            }
            Some(c) => {
                let _ = writeln!(
                    out,
                    "  changes since {}: {} regression(s), {} fix(es), {} lost evidence, {} source(s) lost; subjects {} newly failing, {} fixed",
                    terminal_safe(&c.previous_run_id),
                    c.regressions,
                    c.fixes,
                    c.lost_evidence,
                    c.sources_lost,
                    c.subjects_newly_failing,
                    c.subjects_fixed
                );
            }
        }
    }
    out
}

/// The runs as JSON Lines: one object per run with `organisation`,
/// `run_id`, `started`, `finished`, `as_of`, `frameworks`, `by_status`,
/// `by_owner`, `accepted` and `changes`.
///
/// # Errors
/// Never for rows read from the index.
pub fn render_json(rows: &[RunRow]) -> Result<String> {
    let mut out = String::new();
    for r in rows {
        let line = serde_json::to_string(r)
            .map_err(|e| Error::invalid(format!("cannot encode a history row: {e}")))?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}
