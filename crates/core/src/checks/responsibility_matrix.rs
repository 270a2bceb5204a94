//! `responsibility_matrix`: every control in scope has one accountable owner,
//! and every check of a shared control names the party that acts on it.
//!
//! **What it tests.** The ownership matrix the evaluation builds from the
//! ownership template and the organisation's overrides: no in-scope control is
//! `unassigned`, and no check under a `shared` control lacks a responsible
//! party. Controls that do not apply (e.g. service-provider-only PCI
//! requirements) are not in the matrix.
//!
//! **Why it matters.** In co-managed IT, gaps hide where each side thinks the
//! other one acts ("everyone thought someone else did the backups"). PCI DSS
//! 12.8.5 asks for exactly this record; HIPAA 164.308(b) and SOC 2 CC9.2 expect
//! the split with business associates and vendors to be written down.
//!
//! **Evidence.** The catalog, the ownership template and the config's
//! `[ownership.overrides]` recorded in `run.json`: not collected from a
//! source, so it is never inconclusive for a missing source.
//!
//! **How to fix.** Assign an owner to each listed control in
//! `[ownership.overrides]` (`"<framework>:<control id>" = "internal" | "msp" |
//! "shared"`), or pick a template that covers it; for shared controls, name
//! the responsible party of each check in the template.

use super::{Check, CheckInput, Outcome, Subject};
use crate::policy::Owner;

pub(super) const CHECK: Check = Check {
    id: "responsibility_matrix",
    source: include_str!("responsibility_matrix.rs"),
    title: "Every control in scope has an accountable owner",
    thresholds: &[],
    remediation: "Assign an owner to each listed control in [ownership.overrides] of the config (internal, msp or shared), or use a template that covers it.",
    needs: &[],
    per_subject: &[],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let Some(matrix) = input.ownership else {
        return Outcome::inconclusive("no ownership matrix was given to the evaluation");
    };
    let mut failing = Vec::new();
    for entry in matrix {
        let detail = if entry.owner == Owner::Unassigned {
            "no accountable owner".to_owned()
        } else if !entry.unassigned_checks.is_empty() {
            format!(
                "shared, but no responsible party for check(s) {}",
                entry.unassigned_checks.join(", ")
            )
        } else {
            continue;
        };
        failing.push(Subject {
            id: entry.control.clone(),
            name: entry.title.clone(),
            detail,
        });
    }
    Outcome::judge(matrix.len(), failing, "controls in scope")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{as_of, ids};
    use crate::checks::{run_check, CheckInput, Limits, OwnershipEntry, Verdict};
    use crate::facts::Facts;

    fn entry(control: &str, owner: Owner, unassigned: &[&str]) -> OwnershipEntry {
        OwnershipEntry {
            control: control.into(),
            title: format!("Title of {control}"),
            owner,
            unassigned_checks: unassigned.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn judge(matrix: Option<&[OwnershipEntry]>) -> Outcome {
        let facts = Facts::default();
        let mut input = CheckInput::new(&facts, &Limits::DEFAULT, as_of());
        input.ownership = matrix;
        run_check(&CHECK, &input)
    }

    #[test]
    fn table() {
        type Case = (
            &'static str,
            Vec<OwnershipEntry>,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "all owned",
                vec![
                    entry("pci-dss:8.2.6", Owner::Internal, &[]),
                    entry("soc2:CC6.1", Owner::Msp, &[]),
                ],
                Verdict::Pass,
                &[],
            ),
            (
                "unassigned control",
                vec![entry("pci-dss:8.2.6", Owner::Unassigned, &[])],
                Verdict::Fail,
                &["pci-dss:8.2.6"],
            ),
            (
                "shared without a check party",
                vec![entry("soc2:CC8.1", Owner::Shared, &["edr_health"])],
                Verdict::Fail,
                &["soc2:CC8.1"],
            ),
            (
                "shared with parties",
                vec![entry("soc2:CC8.1", Owner::Shared, &[])],
                Verdict::Pass,
                &[],
            ),
        ];
        for (name, matrix, verdict, failing) in cases {
            let out = judge(Some(&matrix));
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn without_a_matrix_it_cannot_judge() {
        assert_eq!(judge(None).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(Some(&[
            entry("hipaa:164.308(b)(1)", Owner::Internal, &[]),
            entry("pci-dss:12.8.5", Owner::Unassigned, &[]),
            entry("soc2:CC9.2", Owner::Shared, &["stale_devices"]),
        ])));
    }
}
