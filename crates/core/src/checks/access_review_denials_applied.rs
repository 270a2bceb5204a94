//! `access_review_denials_applied`: every "deny" decision of a completed
//! access review was applied (the access was actually removed).
//!
//! **What it tests.** In the most recent completed instance of each access
//! review, every decision `Deny` has an apply result of success (or a time it
//! was applied). A denied principal whose removal is still `New`, failed, or
//! has no result is a failing subject.
//!
//! **Why it matters.** A review that decides to remove access but never
//! removes it produces paperwork, not security: auditors (PCI DSS 7.2.4,
//! HIPAA 164.308(a)(4)) test that inappropriate access was fixed.
//!
//! **Evidence.** Access review instances and their decisions, with apply
//! results.
//!
//! **How to fix.** Turn on "auto apply results to resource" in the review
//! settings, or apply the results of the listed instances by hand, and remove
//! the listed principals' access.

use std::collections::BTreeMap;

use super::guest_accounts_reviewed::completed;
use super::{Check, CheckInput, Outcome, Subject};
use crate::facts::{FactKind, ReviewDecision, ReviewItem};

pub(super) const CHECK: Check = Check {
    id: "access_review_denials_applied",
    source: include_str!("access_review_denials_applied.rs"),
    title: "Access removals decided in reviews were applied",
    thresholds: &[],
    remediation: "Apply the results of the listed reviews (or enable auto-apply) so that denied access is removed.",
    needs: &[FactKind::AccessReviews],
    per_subject: &[],
    run,
};

fn applied(item: &ReviewItem) -> bool {
    item.applied.is_some()
        || item
            .apply_result
            .as_deref()
            .is_some_and(|r| r.to_ascii_lowercase().starts_with("appliedsuccessfully"))
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let mut evaluated = 0;
    let mut failing: BTreeMap<&str, (&str, Vec<String>)> = BTreeMap::new();
    for review in &input.facts.access_reviews {
        let latest = review
            .instances
            .iter()
            .filter(|i| completed(i) && i.end.is_none_or(|e| e <= input.as_of))
            .max_by_key(|i| i.end);
        let Some(instance) = latest else { continue };
        for item in &instance.decisions {
            if item.decision != ReviewDecision::Deny {
                continue;
            }
            evaluated += 1;
            if applied(item) {
                continue;
            }
            let ended = instance
                .end
                .map(|e| format!(" ended {}", e.format("%Y-%m-%d")))
                .unwrap_or_default();
            failing
                .entry(item.principal_id.as_str())
                .or_insert((item.principal_name.as_str(), Vec::new()))
                .1
                .push(format!(
                    "denied in `{}`{ended}, apply result {}",
                    review.name,
                    item.apply_result.as_deref().unwrap_or("none")
                ));
        }
    }
    let failing = failing
        .into_iter()
        .map(|(id, (name, details))| Subject {
            id: id.to_owned(),
            name: name.to_owned(),
            detail: details.join("; "),
        })
        .collect();
    Outcome::judge(evaluated, failing, "deny decisions")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, days_ago, ids, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{AccessReview, Facts, ReviewInstance};

    fn item(p: &str, decision: ReviewDecision, result: Option<&str>) -> ReviewItem {
        ReviewItem {
            principal_id: format!("m365:{p}"),
            principal_name: p.to_uppercase(),
            decision,
            reviewed: Some(days_ago(20)),
            apply_result: result.map(str::to_owned),
            applied: None,
        }
    }

    fn review(instances: Vec<(&str, i64, Vec<ReviewItem>)>) -> AccessReview {
        AccessReview {
            id: "m365:r".into(),
            name: "Finance group".into(),
            guests: false,
            scope: "group".into(),
            status: "InProgress".into(),
            instances: instances
                .into_iter()
                .map(|(status, ended, decisions)| ReviewInstance {
                    id: format!("{status}{ended}"),
                    status: status.into(),
                    start: Some(days_ago(ended + 14)),
                    end: Some(days_ago(ended)),
                    decisions,
                })
                .collect(),
        }
    }

    fn judge(reviews: Vec<AccessReview>) -> Outcome {
        let facts = complete(
            Facts {
                access_reviews: reviews,
                ..Facts::default()
            },
            &[FactKind::AccessReviews],
        );
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        use ReviewDecision::{Approve, Deny};
        type Case = (
            &'static str,
            Vec<AccessReview>,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "deny applied",
                vec![review(vec![(
                    "Completed",
                    10,
                    vec![item("a", Deny, Some("AppliedSuccessfully"))],
                )])],
                Verdict::Pass,
                &[],
            ),
            (
                "deny pending",
                vec![review(vec![(
                    "Completed",
                    10,
                    vec![item("a", Deny, Some("New"))],
                )])],
                Verdict::Fail,
                &["m365:a"],
            ),
            (
                "deny without result",
                vec![review(vec![("Completed", 10, vec![item("a", Deny, None)])])],
                Verdict::Fail,
                &["m365:a"],
            ),
            (
                "approve ignored",
                vec![review(vec![(
                    "Completed",
                    10,
                    vec![item("a", Approve, None)],
                )])],
                Verdict::Pass,
                &[],
            ),
            (
                "running instance ignored",
                vec![review(vec![("InProgress", 1, vec![item("a", Deny, None)])])],
                Verdict::Pass,
                &[],
            ),
            (
                "older instance superseded",
                vec![review(vec![
                    ("Completed", 200, vec![item("a", Deny, None)]),
                    ("Completed", 10, vec![]),
                ])],
                Verdict::Pass,
                &[],
            ),
            ("no reviews", vec![], Verdict::Pass, &[]),
        ];
        for (name, reviews, verdict, failing) in cases {
            let out = judge(reviews);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn findings_snapshot() {
        use ReviewDecision::{Approve, Deny};
        insta::assert_json_snapshot!(judge(vec![review(vec![(
            "Completed",
            10,
            vec![
                item("kept", Approve, None),
                item("removed", Deny, Some("AppliedSuccessfully")),
                item("stuck", Deny, Some("New")),
                item("failed", Deny, Some("AppliedWithUnknownFailure")),
            ]
        )])]));
    }
}
