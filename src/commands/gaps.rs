//! `auditpack gaps RUN`: the failing items of a run grouped by the party that
//! must act, each with its exact failing users and devices, the controls it
//! breaks and how to fix it ("fix these"); then, apart, the users and devices
//! no usable evidence covers, each with the reason and the party that must
//! make them visible ("cannot see these").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::terminal_safe;
use crate::checks::{Subject, Verdict};
use crate::config::Owner;
use crate::evaluate::{ControlResult, Status};

/// One thing to fix: a failing check and everyone it fails for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The party that must act.
    pub responsible: Owner,
    /// Check id.
    pub check: String,
    /// Check title.
    pub title: String,
    /// How to fix it.
    pub remediation: String,
    /// `"<framework>:<control id>"` of every control it makes fail.
    pub controls: Vec<String>,
    /// Owners of those controls.
    pub control_owners: BTreeSet<Owner>,
    /// Failing subjects (union over the controls), sorted by id.
    pub failing: Vec<Subject>,
    /// Unproven subjects (union over the controls), sorted by id: no usable
    /// evidence shows their state.
    pub unproven: Vec<Subject>,
}

/// Gaps and the other open items of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gaps {
    /// Failing checks ("fix these"), by responsible party then check id;
    /// `failing` lists the subjects.
    pub gaps: Vec<Gap>,
    /// Checks with unproven subjects ("cannot see these"), by responsible
    /// party then check id; `unproven` lists the subjects.
    pub unseen: Vec<Gap>,
    /// Open controls that are not failures: (owner, status) -> count.
    pub open: BTreeMap<(Owner, Status), usize>,
}

/// A gap being gathered, with its subjects by id.
type Pending = (Gap, BTreeMap<String, Subject>);

/// Add `subjects` of check `c` under control `r` to the gap they belong to.
fn gather<'a>(
    by_key: &mut BTreeMap<(Owner, &'a str), Pending>,
    r: &ControlResult,
    c: &'a crate::evaluate::CheckResult,
    subjects: &[Subject],
) {
    let (gap, gathered) = by_key
        .entry((c.responsible, c.check.as_str()))
        .or_insert_with(|| {
            (
                Gap {
                    responsible: c.responsible,
                    check: c.check.clone(),
                    title: c.title.clone(),
                    remediation: c.remediation.clone(),
                    controls: Vec::new(),
                    control_owners: BTreeSet::new(),
                    failing: Vec::new(),
                    unproven: Vec::new(),
                },
                BTreeMap::new(),
            )
        });
    gap.controls
        .push(format!("{}:{}", r.framework, r.control_id));
    gap.control_owners.insert(r.owner);
    for s in subjects {
        gathered.entry(s.id.clone()).or_insert_with(|| s.clone());
    }
}

/// Gaps of `results`, keeping only those of `owner` when given: for
/// `internal`, `msp` and `unassigned` the party that must act; for `shared`
/// the gaps under controls owned jointly.
pub fn gaps(results: &[ControlResult], owner: Option<Owner>) -> Gaps {
    let mut by_key: BTreeMap<(Owner, &str), Pending> = BTreeMap::new();
    let mut unseen: BTreeMap<(Owner, &str), Pending> = BTreeMap::new();
    let mut open = BTreeMap::new();
    for r in results {
        if matches!(r.status, Status::Inconclusive | Status::ManualPending)
            && owner.is_none_or(|o| o == r.owner)
        {
            *open.entry((r.owner, r.status)).or_insert(0) += 1;
        }
        if !matches!(r.status, Status::Fail | Status::Inconclusive) {
            continue;
        }
        for c in &r.checks {
            let keep = match owner {
                None => true,
                Some(Owner::Shared) => r.owner == Owner::Shared,
                Some(o) => c.responsible == o,
            };
            if !keep {
                continue;
            }
            if r.status == Status::Fail && c.outcome == Verdict::Fail {
                gather(&mut by_key, r, c, &c.failing);
            }
            if c.outcome != Verdict::Pass && !c.unproven.is_empty() {
                gather(&mut unseen, r, c, &c.unproven);
            }
        }
    }
    let gaps = by_key
        .into_values()
        .map(|(mut gap, subjects)| {
            gap.failing = subjects.into_values().collect();
            gap
        })
        .collect();
    let unseen = unseen
        .into_values()
        .map(|(mut gap, subjects)| {
            gap.unproven = subjects.into_values().collect();
            gap
        })
        .collect();
    Gaps { gaps, unseen, open }
}

/// The text printed by `auditpack gaps`.
pub fn render(gaps: &Gaps) -> String {
    let mut out = String::new();
    if gaps.gaps.is_empty() {
        let _ = writeln!(out, "no failing controls");
    }
    let mut current = None;
    for g in &gaps.gaps {
        if current != Some(g.responsible) {
            let n = gaps
                .gaps
                .iter()
                .filter(|x| x.responsible == g.responsible)
                .count();
            let _ = writeln!(out, "\n[{}] {n} item(s) to fix", g.responsible);
            current = Some(g.responsible);
        }
        let _ = writeln!(
            out,
            "\n  {} ({}): {} failing",
            g.title,
            g.check,
            g.failing.len()
        );
        let _ = writeln!(out, "    controls: {}", g.controls.join(", "));
        let _ = writeln!(out, "    fix: {}", g.remediation);
        for s in &g.failing {
            let _ = writeln!(
                out,
                "    - {} [{}]: {}",
                terminal_safe(&s.name),
                terminal_safe(&s.id),
                terminal_safe(&s.detail)
            );
        }
    }
    let mut current = None;
    for g in &gaps.unseen {
        if current != Some(g.responsible) {
            let n = gaps
                .unseen
                .iter()
                .filter(|x| x.responsible == g.responsible)
                .count();
            let _ = writeln!(
                out,
                "\n[{}] {n} item(s) cannot be seen (no usable evidence; not failures, not passes)",
                g.responsible
            );
            current = Some(g.responsible);
        }
        let _ = writeln!(
            out,
            "\n  {} ({}): {} unproven",
            g.title,
            g.check,
            g.unproven.len()
        );
        let _ = writeln!(out, "    controls: {}", g.controls.join(", "));
        for s in &g.unproven {
            let _ = writeln!(
                out,
                "    ? {} [{}]: {}",
                terminal_safe(&s.name),
                terminal_safe(&s.id),
                terminal_safe(&s.detail)
            );
        }
    }
    if !gaps.open.is_empty() {
        let _ = writeln!(out, "\nalso open (not failures):");
        for ((owner, status), n) in &gaps.open {
            let _ = writeln!(out, "  [{owner}] {n} {status}");
        }
    }
    out
}
