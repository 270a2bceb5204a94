//! `auditpack gaps RUN`: the failing items of a run grouped by the party that
//! must act, each with its exact failing users and devices, the controls it
//! breaks and how to fix it ("fix these"); then, apart, the users and devices
//! no usable evidence covers, each with the reason and the party that must
//! make them visible ("cannot see these").

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use super::model::{anchor, framework_label, EvidenceSetLink};
use crate::checks::{Subject, Verdict};
use crate::config::Owner;
use crate::evaluate::{CheckResult, ControlResult, EvidenceSet, Status};
use crate::sanitize::terminal_safe;

/// A control that a gap makes fail, as every view names and links it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GapControl {
    /// Framework id.
    pub framework: String,
    /// Control id.
    pub control_id: String,
    /// The control's accountable owner (it may differ from the party that
    /// must act on the gap).
    pub owner: Owner,
    /// `HIPAA 164.312(d)`.
    pub label: String,
    /// HTML anchor of the control's row in the report.
    pub anchor: String,
}

impl GapControl {
    /// `"<framework>:<control id>"`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.framework, self.control_id)
    }
}

/// One thing to fix: the subjects a failing check found, under the party
/// that must act, with the controls they make fail. Every failing subject of
/// a run is in exactly one gap; subjects of one check that break different
/// sets of controls (thresholds differ per framework) are in different gaps.
/// `gaps`, `run`, the HTML and PDF reports and `findings.csv` all show these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The party that must act.
    pub responsible: Owner,
    /// Check id.
    pub check: String,
    /// Check title.
    pub title: String,
    /// How to fix it.
    pub remediation: String,
    /// Every control these subjects make fail, in results order.
    pub controls: Vec<GapControl>,
    /// Subjects the check judged (the most under any of the controls).
    pub evaluated: usize,
    /// The failing subjects, sorted by id. Empty for a check that fails as a
    /// whole (a tenant setting) rather than per subject, and in a gap of
    /// [`Gaps::unseen`].
    pub failing: Vec<Subject>,
    /// The unproven subjects (no usable evidence shows their state), sorted
    /// by id; only in a gap of [`Gaps::unseen`].
    pub unproven: Vec<Subject>,
    /// Evidence the check read, one set per dataset; the report fills in
    /// where each set's files are in the evidence index.
    pub evidence: Vec<EvidenceSetLink>,
}

/// Gaps and the other open items of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gaps {
    /// Failing subjects ("fix these"), by responsible party, then check id.
    pub gaps: Vec<Gap>,
    /// Unproven subjects ("cannot see these"), by responsible party, then
    /// check id: each once, under the party that must make it visible.
    pub unseen: Vec<Gap>,
    /// Open controls that are not failures: (owner, status) -> count.
    pub open: BTreeMap<(Owner, Status), usize>,
}

/// One failing (check, subject) pair being gathered: who is responsible
/// under each control it fails, and those controls.
struct Finding<'a> {
    check: &'a str,
    subject: Option<&'a Subject>,
    /// (control index, control owner, responsible party) per control.
    under: Vec<(usize, Owner, Owner)>,
}

/// What makes a gap: the party that must act, the check, and the controls
/// (by index) its subjects make fail.
type GapKey<'a> = (Owner, &'a str, Vec<usize>);

/// The party that must act on a finding. When the controls it fails under
/// disagree (a check under a control internal IT owns and under one the MSP
/// owns), the party the ownership template makes responsible for the check
/// itself decides (the one named on the shared controls), else the party
/// responsible under most of them; ties go to the first in
/// internal, msp, shared, unassigned order.
fn party(under: &[(usize, Owner, Owner)]) -> Owner {
    let first = under.first().map_or(Owner::Unassigned, |u| u.2);
    if under.iter().all(|u| u.2 == first) {
        return first;
    }
    let vote = |shared_only: bool| -> Option<Owner> {
        let mut counts: BTreeMap<Owner, usize> = BTreeMap::new();
        for (_, owner, responsible) in under {
            if !shared_only || *owner == Owner::Shared {
                *counts.entry(*responsible).or_default() += 1;
            }
        }
        let best = counts.values().copied().max()?;
        counts.into_iter().find(|(_, n)| *n == best).map(|(o, _)| o)
    };
    vote(true).or_else(|| vote(false)).unwrap_or(first)
}

/// The gaps of `results`: every failing subject once, under the party that
/// must act ([`party`]), with the controls it makes fail; and apart, every
/// unproven subject once, under the party that must make it visible. With
/// `owner`, only the gaps of that party; for `shared`, the gaps that touch a
/// control owned jointly.
pub fn gaps(results: &[ControlResult], owner: Option<Owner>) -> Gaps {
    let mut open = BTreeMap::new();
    for r in results {
        if matches!(r.status, Status::Inconclusive | Status::ManualPending)
            && owner.is_none_or(|o| o == r.owner)
        {
            *open.entry((r.owner, r.status)).or_insert(0) += 1;
        }
    }
    let failing = group(results, owner, |r, c| {
        (r.status == Status::Fail && c.outcome == Verdict::Fail).then(|| {
            if c.failing.is_empty() {
                Picked::Whole
            } else {
                Picked::List(&c.failing)
            }
        })
    });
    let unseen = group(results, owner, |r, c| {
        (matches!(r.status, Status::Fail | Status::Inconclusive)
            && c.outcome != Verdict::Pass
            && !c.unproven.is_empty())
        .then_some(Picked::List(&c.unproven))
    });
    let into = |groups: Vec<(Gap, Vec<Subject>)>, unproven: bool| -> Vec<Gap> {
        groups
            .into_iter()
            .map(|(mut gap, subjects)| {
                if unproven {
                    gap.unproven = subjects;
                } else {
                    gap.failing = subjects;
                }
                gap
            })
            .collect()
    };
    Gaps {
        gaps: into(failing, false),
        unseen: into(unseen, true),
        open,
    }
}

/// Where a subject was picked: (control index, control owner, responsible
/// party).
type Under = (usize, Owner, Owner);

/// The subjects of one check picked from one list, all under the same
/// controls.
type SharedFinding<'a> = (&'a str, Vec<Option<&'a Subject>>, Vec<Under>);

/// What a gap takes from one (control, check).
#[derive(Clone, Copy)]
enum Picked<'a> {
    /// The check fails as a whole (no subjects).
    Whole,
    /// These subjects.
    List(&'a Arc<Vec<Subject>>),
}

/// Subjects that `pick` takes from each (control, check) of `results`
/// (none for a check that fails as a whole), each once, grouped by the party
/// that must act, the check and the controls they touch.
///
/// Controls that share one run of a check share its subject list: a list is
/// walked once, and only the subjects of a check found by several different
/// runs (thresholds that differ per framework) are matched one by one.
fn group<'a>(
    results: &'a [ControlResult],
    owner: Option<Owner>,
    pick: impl Fn(&'a ControlResult, &'a CheckResult) -> Option<Picked<'a>>,
) -> Vec<(Gap, Vec<Subject>)> {
    let mut controls: Vec<GapControl> = Vec::new();
    // Per check: the distinct lists picked, each with where it was picked.
    let mut picked: BTreeMap<&str, Vec<(Picked<'a>, Vec<Under>)>> = BTreeMap::new();
    // Per check: title, remediation, most subjects judged, evidence sets.
    let mut about: BTreeMap<&str, (&str, &str, usize, Vec<&EvidenceSet>)> = BTreeMap::new();
    for r in results {
        let mut control = None;
        for c in &r.checks {
            let Some(subjects) = pick(r, c) else {
                continue;
            };
            let at = *control.get_or_insert_with(|| {
                controls.push(GapControl {
                    framework: r.framework.clone(),
                    control_id: r.control_id.clone(),
                    owner: r.owner,
                    label: format!("{} {}", framework_label(&r.framework), r.control_id),
                    anchor: anchor(&r.framework, &r.control_id),
                });
                controls.len() - 1
            });
            let entry = about.entry(c.check.as_str()).or_insert((
                c.title.as_str(),
                c.remediation.as_str(),
                0,
                Vec::new(),
            ));
            entry.2 = entry.2.max(c.evaluated);
            for e in c.evidence.iter() {
                if !entry.3.contains(&e) {
                    entry.3.push(e);
                }
            }
            let lists = picked.entry(c.check.as_str()).or_default();
            let same = |p: &Picked<'a>| match (p, subjects) {
                (Picked::Whole, Picked::Whole) => true,
                (Picked::List(a), Picked::List(b)) => {
                    Arc::ptr_eq(a, b) || a.as_slice() == b.as_slice()
                }
                _ => false,
            };
            match lists.iter_mut().find(|(p, _)| same(p)) {
                Some((_, under)) => under.push((at, r.owner, c.responsible)),
                None => lists.push((subjects, vec![(at, r.owner, c.responsible)])),
            }
        }
    }
    let mut findings: Vec<Finding<'_>> = Vec::new();
    // A whole list under the same controls: one finding per subject, sharing
    // `under`.
    let mut shared: Vec<SharedFinding<'a>> = Vec::new();
    for (check, lists) in picked {
        if let [(list, under)] = &lists[..] {
            let subjects = match list {
                Picked::Whole => vec![None],
                Picked::List(l) => l.iter().map(Some).collect(),
            };
            shared.push((check, subjects, under.clone()));
            continue;
        }
        // Several runs: gather each subject's controls in results order.
        let mut index: HashMap<Option<&str>, usize> = HashMap::new();
        let mut events: Vec<(Under, Option<&'a Subject>)> = Vec::new();
        for (list, under) in &lists {
            let subjects: Vec<Option<&Subject>> = match list {
                Picked::Whole => vec![None],
                Picked::List(l) => l.iter().map(Some).collect(),
            };
            for u in under {
                for s in &subjects {
                    events.push((*u, *s));
                }
            }
        }
        events.sort_by_key(|(u, _)| u.0);
        for (u, s) in events {
            let i = *index.entry(s.map(|s| s.id.as_str())).or_insert_with(|| {
                findings.push(Finding {
                    check,
                    subject: s,
                    under: Vec::new(),
                });
                findings.len() - 1
            });
            findings[i].under.push(u);
        }
    }
    // (party, check, controls) -> subjects.
    let mut grouped: BTreeMap<GapKey<'_>, Vec<Option<&Subject>>> = BTreeMap::new();
    for (check, subjects, under) in shared {
        let mut at: Vec<usize> = under.iter().map(|u| u.0).collect();
        at.dedup();
        grouped
            .entry((party(&under), check, at))
            .or_default()
            .extend(subjects);
    }
    for f in findings {
        let mut at: Vec<usize> = f.under.iter().map(|u| u.0).collect();
        at.dedup();
        grouped
            .entry((party(&f.under), f.check, at))
            .or_default()
            .push(f.subject);
    }
    grouped
        .into_iter()
        .filter_map(|((responsible, check, at), subjects)| {
            let (title, remediation, evaluated, evidence) = about.get(check)?;
            let controls: Vec<GapControl> = at.iter().map(|i| controls[*i].clone()).collect();
            let keep = match owner {
                None => true,
                Some(Owner::Shared) => controls.iter().any(|c| c.owner == Owner::Shared),
                Some(o) => responsible == o,
            };
            if !keep {
                return None;
            }
            let mut subjects: Vec<Subject> = subjects.into_iter().flatten().cloned().collect();
            subjects.sort_by(|a, b| a.id.cmp(&b.id));
            let gap = Gap {
                responsible,
                check: check.to_owned(),
                title: (*title).to_owned(),
                remediation: (*remediation).to_owned(),
                controls,
                evaluated: *evaluated,
                failing: Vec::new(),
                unproven: Vec::new(),
                evidence: evidence
                    .iter()
                    .map(|set| EvidenceSetLink::unresolved(set))
                    .collect(),
            };
            Some((gap, subjects))
        })
        .collect()
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
        // A control owned by another single party than the one acting says so.
        let controls: Vec<String> = g
            .controls
            .iter()
            .map(|c| {
                if c.owner == g.responsible || c.owner == Owner::Shared {
                    c.key()
                } else {
                    format!("{} (owned by {})", c.key(), c.owner)
                }
            })
            .collect();
        let _ = writeln!(out, "    controls: {}", controls.join(", "));
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
        let controls: Vec<String> = g.controls.iter().map(GapControl::key).collect();
        let _ = writeln!(out, "    controls: {}", controls.join(", "));
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::gaps;
    use crate::catalog::ControlKind;
    use crate::checks::{Subject, Verdict};
    use crate::config::Owner;
    use crate::evaluate::{CheckResult, ControlResult, Status};

    fn subject(id: &str) -> Subject {
        Subject {
            id: id.into(),
            name: id.to_uppercase(),
            detail: "no patch state".into(),
        }
    }

    fn control(id: &str, owner: Owner, responsible: Owner, failing: &[&str]) -> ControlResult {
        ControlResult {
            framework: "pci-dss".into(),
            control_id: id.into(),
            title: id.into(),
            status: Status::Fail,
            owner,
            kind: ControlKind::Automated,
            checks: vec![CheckResult {
                check: "devices_report_patch_state".into(),
                title: "Every device reports its patch state".into(),
                outcome: Verdict::Fail,
                responsible,
                evaluated: 10,
                failing_count: failing.len(),
                failing: Arc::new(failing.iter().map(|s| subject(s)).collect()),
                unproven_count: 0,
                unproven: Arc::default(),
                evidence: Arc::default(),
                result: "devices_report_patch_state".into(),
                summary: String::new(),
                remediation: "Install the RMM agent.".into(),
                figures: vec![],
            }],
            manual_evidence: vec![],
            reason: String::new(),
            accepted: None,
        }
    }

    #[test]
    fn each_failing_subject_is_listed_once_under_the_party_that_must_act() {
        let results = [
            // Internal IT owns this control, but the shared control below
            // says the MSP does this check's work.
            control(
                "12.5.1",
                Owner::Internal,
                Owner::Internal,
                &["pc-1", "pc-2"],
            ),
            control("6.3.3", Owner::Msp, Owner::Msp, &["pc-1", "pc-2", "pc-3"]),
            control("1.1.1", Owner::Shared, Owner::Msp, &["pc-1", "pc-2"]),
        ];
        let found = gaps(&results, None).gaps;
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().all(|g| g.responsible == Owner::Msp));
        let ids =
            |i: usize| -> Vec<String> { found[i].failing.iter().map(|s| s.id.clone()).collect() };
        let keys =
            |i: usize| -> Vec<String> { found[i].controls.iter().map(|c| c.key()).collect() };
        assert_eq!(ids(0), ["pc-1", "pc-2"]);
        assert_eq!(
            keys(0),
            ["pci-dss:12.5.1", "pci-dss:6.3.3", "pci-dss:1.1.1"]
        );
        assert_eq!(ids(1), ["pc-3"]);
        assert_eq!(keys(1), ["pci-dss:6.3.3"]);
        assert_eq!(found[0].controls[0].owner, Owner::Internal);

        assert!(gaps(&results, Some(Owner::Internal)).gaps.is_empty());
        assert_eq!(gaps(&results, Some(Owner::Shared)).gaps.len(), 1);
    }

    #[test]
    fn without_a_shared_control_the_most_controls_decide() {
        let results = [
            control("12.5.1", Owner::Internal, Owner::Internal, &["pc-1"]),
            control("6.3.3", Owner::Msp, Owner::Msp, &["pc-1"]),
            control("6.3.4", Owner::Msp, Owner::Msp, &["pc-1"]),
        ];
        let found = gaps(&results, None).gaps;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].responsible, Owner::Msp);
        assert_eq!(found[0].controls.len(), 3);
    }

    #[test]
    fn a_check_failing_as_a_whole_is_a_gap_without_subjects() {
        let found = gaps(&[control("8.4.2", Owner::Msp, Owner::Msp, &[])], None).gaps;
        assert_eq!(found.len(), 1);
        assert!(found[0].failing.is_empty());
    }

    #[test]
    fn unproven_subjects_are_listed_apart_once_under_the_party_that_must_act() {
        let mut a = control("8.3.1", Owner::Internal, Owner::Internal, &[]);
        let mut b = control("164.312(d)", Owner::Msp, Owner::Internal, &["d1"]);
        for (r, status) in [(&mut a, Status::Inconclusive), (&mut b, Status::Fail)] {
            r.status = status;
            let c = &mut r.checks[0];
            c.unproven = Arc::new(vec![subject("d2"), subject("d3")]);
            c.unproven_count = 2;
        }
        a.checks[0].outcome = Verdict::Inconclusive;
        let found = gaps(&[a, b], None);
        assert_eq!(found.gaps.len(), 1);
        assert!(found.gaps[0].unproven.is_empty());
        let ids =
            |g: &super::Gap| -> Vec<String> { g.unproven.iter().map(|s| s.id.clone()).collect() };
        assert_eq!(found.unseen.len(), 1, "{:?}", found.unseen);
        assert_eq!(ids(&found.unseen[0]), ["d2", "d3"]);
        assert_eq!(found.unseen[0].responsible, Owner::Internal);
        assert_eq!(found.unseen[0].controls.len(), 2);
        assert!(found.unseen[0].failing.is_empty());
        assert!(gaps(&found_source(), Some(Owner::Msp)).unseen.is_empty());
    }

    fn found_source() -> Vec<ControlResult> {
        let mut a = control("8.3.1", Owner::Internal, Owner::Internal, &[]);
        a.status = Status::Inconclusive;
        a.checks[0].outcome = Verdict::Inconclusive;
        a.checks[0].unproven = Arc::new(vec![subject("d9")]);
        a.checks[0].unproven_count = 1;
        vec![a]
    }
}
