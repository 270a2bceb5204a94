//! `auditpack diff RUN_A RUN_B`: what changed from one run to the next: new
//! failures, fixed controls, evidence lost, other status changes, and checks
//! whose failing users or devices changed.
//!
//! A control or subject that failed before and cannot be judged now
//! (inconclusive, or no longer evaluated) is lost evidence, never a fix:
//! missing evidence is never a pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::terminal_safe;
use crate::checks::{Subject, Verdict};
use crate::evaluate::{ControlResult, Status};

/// A control whose status changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    /// `"<framework>:<control id>"`.
    pub control: String,
    /// Title.
    pub title: String,
    /// Status in the first run (`None`: not evaluated there).
    pub before: Option<Status>,
    /// Status in the second run (`None`: not evaluated there).
    pub after: Option<Status>,
}

/// A check whose failing subjects changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectChange {
    /// Check id.
    pub check: String,
    /// Title.
    pub title: String,
    /// Failing subjects in the first run.
    pub before: usize,
    /// Failing subjects in the second run.
    pub after: usize,
    /// Failing now, not before.
    pub new: Vec<Subject>,
    /// Failing before, judged and not failing now.
    pub resolved: Vec<Subject>,
    /// Failing before, and not judged now: the check is inconclusive (or not
    /// run) in the second run, so nobody knows whether they were fixed.
    pub unjudged: Vec<Subject>,
    /// Whether the second run judged the check at all.
    pub judged_after: bool,
}

/// The differences between two runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Controls failing in the second run that did not fail in the first.
    pub new_failures: Vec<StatusChange>,
    /// Controls failing in the first run that pass or are attested now.
    pub fixed: Vec<StatusChange>,
    /// Controls judged in the first run (pass, fail, attested) that are
    /// inconclusive or not evaluated in the second: evidence lost, not fixed.
    pub lost_evidence: Vec<StatusChange>,
    /// Every other status change.
    pub changed: Vec<StatusChange>,
    /// Checks whose failing subjects changed.
    pub subjects: Vec<SubjectChange>,
}

impl Diff {
    /// Whether the second run is worse: new failures, new failing subjects,
    /// or evidence lost for what the first run judged.
    pub fn regressed(&self) -> bool {
        !self.new_failures.is_empty()
            || !self.lost_evidence.is_empty()
            || self
                .subjects
                .iter()
                .any(|s| !s.new.is_empty() || !s.unjudged.is_empty())
    }
}

/// Compare two runs of one organisation.
///
/// # Errors
/// When both runs name their organisation and the names differ: a diff of
/// two organisations would report one's gaps as the other's fixes.
pub fn compare(a: &super::RunView, b: &super::RunView) -> crate::error::Result<Diff> {
    if let (Some(ma), Some(mb)) = (&a.manifest, &b.manifest) {
        if ma.organisation != mb.organisation {
            return Err(crate::error::Error::invalid(format!(
                "the runs are of different organisations ({:?} and {:?}); diff compares two runs of one organisation",
                terminal_safe(&ma.organisation),
                terminal_safe(&mb.organisation)
            )));
        }
    }
    Ok(diff(&a.results, &b.results))
}

type Failing<'a> = BTreeMap<&'a str, (&'a str, BTreeMap<&'a str, &'a Subject>)>;

/// Checks that reached a verdict (pass or fail) under some control.
fn judged_checks(results: &[ControlResult]) -> BTreeSet<&str> {
    results
        .iter()
        .flat_map(|r| &r.checks)
        .filter(|c| matches!(c.outcome, Verdict::Pass | Verdict::Fail))
        .map(|c| c.check.as_str())
        .collect()
}

fn failing_by_check(results: &[ControlResult]) -> Failing<'_> {
    let mut map: Failing<'_> = BTreeMap::new();
    for r in results {
        for c in &r.checks {
            let entry = map
                .entry(c.check.as_str())
                .or_insert((c.title.as_str(), BTreeMap::new()));
            for s in c.failing.iter() {
                entry.1.entry(s.id.as_str()).or_insert(s);
            }
        }
    }
    map
}

/// Compare run `a` (before) with run `b` (after).
pub fn diff(a: &[ControlResult], b: &[ControlResult]) -> Diff {
    let index = |rs: &'_ [ControlResult]| -> BTreeMap<(String, String), (Status, String)> {
        rs.iter()
            .map(|r| {
                (
                    (r.framework.clone(), r.control_id.clone()),
                    (r.status, r.title.clone()),
                )
            })
            .collect()
    };
    let (before, after) = (index(a), index(b));
    let keys: BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
    let mut out = Diff::default();
    for key in keys {
        let was = before.get(key).map(|v| v.0);
        let now = after.get(key).map(|v| v.0);
        if was == now {
            continue;
        }
        let title = after
            .get(key)
            .or_else(|| before.get(key))
            .map(|v| v.1.clone())
            .unwrap_or_default();
        let change = StatusChange {
            control: format!("{}:{}", key.0, key.1),
            title,
            before: was,
            after: now,
        };
        if now == Some(Status::Fail) {
            out.new_failures.push(change);
        } else if was == Some(Status::Fail)
            && matches!(now, Some(Status::Pass | Status::ManualAttested))
        {
            out.fixed.push(change);
        } else if matches!(
            was,
            Some(Status::Pass | Status::Fail | Status::ManualAttested)
        ) && matches!(now, None | Some(Status::Inconclusive))
        {
            out.lost_evidence.push(change);
        } else {
            out.changed.push(change);
        }
    }
    let (fa, fb) = (failing_by_check(a), failing_by_check(b));
    let judged = judged_checks(b);
    let checks: BTreeSet<&str> = fa.keys().chain(fb.keys()).copied().collect();
    let empty = BTreeMap::new();
    for check in checks {
        let (ta, sa) = fa.get(check).map_or(("", &empty), |(t, s)| (*t, s));
        let (tb, sb) = fb.get(check).map_or(("", &empty), |(t, s)| (*t, s));
        let new: Vec<Subject> = sb
            .iter()
            .filter(|(id, _)| !sa.contains_key(*id))
            .map(|(_, s)| (*s).clone())
            .collect();
        let gone: Vec<Subject> = sa
            .iter()
            .filter(|(id, _)| !sb.contains_key(*id))
            .map(|(_, s)| (*s).clone())
            .collect();
        let judged_after = judged.contains(check);
        let (resolved, unjudged) = if judged_after {
            (gone, Vec::new())
        } else {
            (Vec::new(), gone)
        };
        if new.is_empty() && resolved.is_empty() && unjudged.is_empty() {
            continue;
        }
        out.subjects.push(SubjectChange {
            check: check.to_owned(),
            title: if tb.is_empty() { ta } else { tb }.to_owned(),
            before: sa.len(),
            after: sb.len(),
            new,
            resolved,
            unjudged,
            judged_after,
        });
    }
    out
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
pub fn render(d: &Diff) -> String {
    let mut out = String::new();
    let each = |out: &mut String, name: &str, list: &[StatusChange]| {
        let _ = writeln!(out, "{name}: {}", list.len());
        for c in list {
            let _ = writeln!(
                out,
                "  {} {} -> {}  {}",
                c.control,
                status(c.before),
                status(c.after),
                c.title
            );
        }
    };
    let grouped = |out: &mut String, name: &str, list: &[StatusChange]| {
        let _ = writeln!(out, "{name}: {}", list.len());
        let mut groups: BTreeMap<(&str, &str), Vec<&StatusChange>> = BTreeMap::new();
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
    each(&mut out, "new failures", &d.new_failures);
    each(&mut out, "fixed", &d.fixed);
    grouped(
        &mut out,
        "evidence lost (judged before, not now; not fixes)",
        &d.lost_evidence,
    );
    grouped(&mut out, "other status changes", &d.changed);
    let _ = writeln!(out, "failing subjects changed: {}", d.subjects.len());
    let listed = |out: &mut String, mark: char, list: &[Subject]| {
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
            format!("{} -> {} failing", s.before, s.after)
        } else {
            format!("{} failing -> not judged", s.before)
        };
        let _ = writeln!(out, "  {} ({}): {change}", s.title, s.check);
        for n in &s.new {
            let _ = writeln!(
                out,
                "    + {} [{}]: {}",
                terminal_safe(&n.name),
                terminal_safe(&n.id),
                terminal_safe(&n.detail)
            );
        }
        listed(&mut out, '-', &s.resolved);
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
