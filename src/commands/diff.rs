//! `auditpack diff RUN_A RUN_B`: what changed from one run to the next: new
//! failures, fixed controls, evidence lost, other status changes, sources
//! that failed, and checks whose failing users or devices changed.
//!
//! It summarises both runs and compares them with [`crate::history::drift`],
//! the very function that writes each run's `results/drift.json`, so `diff`
//! of a run and the run before it says exactly what the drift in the later
//! run's package says. A control or subject that failed before and cannot be
//! judged now (inconclusive, or no longer evaluated) is lost evidence, never
//! a fix: missing evidence is never a pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::terminal_safe;
use crate::evaluate::Status;
use crate::history::drift::{ControlChange, Drift};
use crate::history::summary::SubjectRef;
use crate::history::{drift, RunSummary};

/// Compare two runs of one organisation: run `a` before, run `b` after.
///
/// # Errors
/// When both runs name their organisation and the names differ: a diff of
/// two organisations would report one's gaps as the other's fixes.
pub fn compare(a: &super::RunView, b: &super::RunView) -> crate::error::Result<Drift> {
    if let (Some(ma), Some(mb)) = (&a.manifest, &b.manifest) {
        if ma.organisation != mb.organisation {
            return Err(crate::error::Error::invalid(format!(
                "the runs are of different organisations ({:?} and {:?}); diff compares two runs of one organisation",
                terminal_safe(&ma.organisation),
                terminal_safe(&mb.organisation)
            )));
        }
    }
    let before = RunSummary::build(a.manifest.as_ref(), &a.results);
    let after = RunSummary::build(b.manifest.as_ref(), &b.results);
    Ok(drift(&before, &after))
}

fn status(s: Option<Status>) -> &'static str {
    s.map_or("absent", Status::as_str)
}

/// Controls listed by name in a group of the same change; the rest are counted.
const LISTED_CONTROLS: usize = 8;

/// Subjects listed by name when they are not new failures; the rest are counted.
const LISTED_SUBJECTS: usize = 20;

/// The text printed by `auditpack diff`: new failures and fixes one by one,
/// lost evidence and other changes grouped by (before, after), a few control
/// ids each.
pub fn render(d: &Drift) -> String {
    let mut out = String::new();
    let each = |out: &mut String, name: &str, list: &[ControlChange]| {
        let _ = writeln!(out, "{name}: {}", list.len());
        for c in list {
            let accepted = c.accepted.as_ref().map_or(String::new(), |a| {
                format!(
                    " (accepted until {} by {})",
                    a.expires,
                    terminal_safe(&a.approved_by)
                )
            });
            let _ = writeln!(
                out,
                "  {} {} -> {}{accepted}  {}",
                c.control,
                status(c.before),
                status(c.after),
                c.title
            );
        }
    };
    let grouped = |out: &mut String, name: &str, list: &[ControlChange]| {
        let _ = writeln!(out, "{name}: {}", list.len());
        let mut groups: BTreeMap<(&str, &str), Vec<&ControlChange>> = BTreeMap::new();
        for c in list {
            groups
                .entry((status(c.before), status(c.after)))
                .or_default()
                .push(c);
        }
        for ((before, after), changes) in groups {
            let mut frameworks: BTreeMap<&str, usize> = BTreeMap::new();
            for c in &changes {
                let f = c.control.split_once(':').map_or("", |(f, _)| f);
                *frameworks.entry(f).or_default() += 1;
            }
            let per: Vec<String> = frameworks.iter().map(|(f, n)| format!("{f} {n}")).collect();
            let _ = writeln!(
                out,
                "  {before} -> {after}: {} control(s) ({})",
                changes.len(),
                per.join(", ")
            );
            let shown: Vec<&str> = changes
                .iter()
                .take(LISTED_CONTROLS)
                .map(|c| c.control.as_str())
                .collect();
            let more = changes.len().saturating_sub(LISTED_CONTROLS);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(out, "    {}{tail}", shown.join(", "));
        }
    };
    each(&mut out, "new failures", &d.regressions);
    each(&mut out, "fixed", &d.fixes);
    grouped(
        &mut out,
        "evidence lost (judged before, not now; not fixes)",
        &d.lost_evidence,
    );
    if !d.sources_lost.is_empty() {
        let _ = writeln!(out, "sources lost: {}", d.sources_lost.len());
        for c in &d.sources_lost {
            let word = |s: Option<crate::evidence::SourceStatus>| match s {
                Some(crate::evidence::SourceStatus::Complete) => "complete",
                Some(crate::evidence::SourceStatus::Partial) => "partial",
                Some(crate::evidence::SourceStatus::Failed) => "failed",
                None => "absent",
            };
            let _ = writeln!(
                out,
                "  {} ({}) {} -> {}{}",
                terminal_safe(&c.source),
                terminal_safe(&c.source_type),
                word(c.before),
                word(c.after),
                c.reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(": {}", terminal_safe(r)))
            );
        }
    }
    grouped(&mut out, "other status changes", &d.other_changes);
    let _ = writeln!(out, "failing subjects changed: {}", d.subjects.len());
    let listed = |out: &mut String, mark: char, list: &[SubjectRef]| {
        for s in list.iter().take(LISTED_SUBJECTS) {
            let _ = writeln!(
                out,
                "    {mark} {} [{}]",
                terminal_safe(&s.name),
                terminal_safe(&s.id)
            );
        }
        if list.len() > LISTED_SUBJECTS {
            let _ = writeln!(out, "    {mark} and {} more", list.len() - LISTED_SUBJECTS);
        }
    };
    for s in &d.subjects {
        let change = if s.judged_after {
            format!("{} -> {} failing", s.failing_before, s.failing_after)
        } else {
            format!("{} failing -> not judged", s.failing_before)
        };
        let _ = writeln!(out, "  {} ({}): {change}", s.title, s.check);
        for n in &s.newly_failing {
            let _ = writeln!(
                out,
                "    + {} [{}]",
                terminal_safe(&n.name),
                terminal_safe(&n.id)
            );
        }
        listed(&mut out, '-', &s.fixed);
        if !s.unjudged.is_empty() {
            let _ = writeln!(
                out,
                "    ? {} failing before and not judged now (evidence lost, not fixed):",
                s.unjudged.len()
            );
            listed(&mut out, '?', &s.unjudged);
        }
    }
    out
}
