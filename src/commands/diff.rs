//! `auditpack diff RUN_A RUN_B`: what changed from one run to the next: new
//! failures, fixed controls, other status changes, and checks whose failing
//! users or devices changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::terminal_safe;
use crate::checks::Subject;
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
    /// Failing before, not now.
    pub resolved: Vec<Subject>,
}

/// The differences between two runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Controls failing in the second run that did not fail in the first.
    pub new_failures: Vec<StatusChange>,
    /// Controls failing in the first run that pass or are attested now.
    pub fixed: Vec<StatusChange>,
    /// Every other status change.
    pub changed: Vec<StatusChange>,
    /// Checks whose failing subjects changed.
    pub subjects: Vec<SubjectChange>,
}

impl Diff {
    /// Whether the second run is worse: new failures or new failing subjects.
    pub fn regressed(&self) -> bool {
        !self.new_failures.is_empty() || self.subjects.iter().any(|s| !s.new.is_empty())
    }
}

type Failing<'a> = BTreeMap<&'a str, (&'a str, BTreeMap<&'a str, &'a Subject>)>;

fn failing_by_check(results: &[ControlResult]) -> Failing<'_> {
    let mut map: Failing<'_> = BTreeMap::new();
    for r in results {
        for c in &r.checks {
            let entry = map
                .entry(c.check.as_str())
                .or_insert((c.title.as_str(), BTreeMap::new()));
            for s in &c.failing {
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
        } else {
            out.changed.push(change);
        }
    }
    let (fa, fb) = (failing_by_check(a), failing_by_check(b));
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
        let resolved: Vec<Subject> = sa
            .iter()
            .filter(|(id, _)| !sb.contains_key(*id))
            .map(|(_, s)| (*s).clone())
            .collect();
        if new.is_empty() && resolved.is_empty() {
            continue;
        }
        out.subjects.push(SubjectChange {
            check: check.to_owned(),
            title: if tb.is_empty() { ta } else { tb }.to_owned(),
            before: sa.len(),
            after: sb.len(),
            new,
            resolved,
        });
    }
    out
}

fn status(s: Option<Status>) -> &'static str {
    s.map_or("absent", Status::as_str)
}

/// The text printed by `auditpack diff`.
pub fn render(d: &Diff) -> String {
    let mut out = String::new();
    let section = |out: &mut String, name: &str, list: &[StatusChange]| {
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
    section(&mut out, "new failures", &d.new_failures);
    section(&mut out, "fixed", &d.fixed);
    section(&mut out, "other status changes", &d.changed);
    let _ = writeln!(out, "failing subjects changed: {}", d.subjects.len());
    for s in &d.subjects {
        let _ = writeln!(
            out,
            "  {} ({}): {} -> {} failing",
            s.title, s.check, s.before, s.after
        );
        for n in &s.new {
            let _ = writeln!(
                out,
                "    + {} [{}]: {}",
                terminal_safe(&n.name),
                terminal_safe(&n.id),
                terminal_safe(&n.detail)
            );
        }
        for r in &s.resolved {
            let _ = writeln!(
                out,
                "    - {} [{}]",
                terminal_safe(&r.name),
                terminal_safe(&r.id)
            );
        }
    }
    out
}
