//! `access_review_completed`: every access review completed an instance within
//! `access_review_days` (PCI DSS 7.2.4: every six months).
//!
//! **What it tests.** Each access review definition has an instance with a
//! completed status whose end lies within the period before `as_of`. When no
//! access review exists at all the check fails: user access was not reviewed.
//!
//! **Why it matters.** Access accumulates as people change jobs; a periodic
//! review by the people who know is the control that takes it away again.
//!
//! **Evidence.** Entra ID access review definitions and their instances.
//!
//! **How to fix.** Create recurring access reviews (groups, applications,
//! privileged roles, guests) with a period shorter than the limit; make sure
//! reviewers finish them; delete retired one-off reviews.

use super::guest_accounts_reviewed::{completed, recent};
use super::{days_between, Check, CheckInput, Outcome, Subject, Threshold};
use crate::facts::FactKind;

pub(super) const CHECK: Check = Check {
    id: "access_review_completed",
    source: include_str!("access_review_completed.rs"),
    title: "Access reviews completed within the period",
    thresholds: &[Threshold::AccessReviewDays],
    remediation: "Create recurring access reviews with a period shorter than the limit and make sure reviewers complete them.",
    needs: &[FactKind::AccessReviews],
    per_subject: &[],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let days = i64::from(input.limits.access_review_days);
    let reviews = &input.facts.access_reviews;
    if reviews.is_empty() {
        return Outcome::judge(
            1,
            vec![Subject {
                id: "access-reviews:none".into(),
                name: "access reviews".into(),
                detail: "no access review is configured".into(),
            }],
            "access reviews",
        );
    }
    let mut failing = Vec::new();
    for review in reviews {
        if review
            .instances
            .iter()
            .any(|i| recent(i, days, input.as_of))
        {
            continue;
        }
        let last = review
            .instances
            .iter()
            .filter(|i| completed(i))
            .filter_map(|i| i.end)
            .filter(|end| *end <= input.as_of)
            .max();
        let detail = match last {
            Some(end) => format!(
                "last completed {} days ago (limit {days})",
                days_between(end, input.as_of)
            ),
            None => "never completed".to_owned(),
        };
        failing.push(Subject {
            id: review.id.clone(),
            name: review.name.clone(),
            detail,
        });
    }
    Outcome::judge(reviews.len(), failing, "access reviews")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, days_ago, ids, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{AccessReview, Facts, ReviewInstance};

    fn instance(status: &str, ended: Option<i64>) -> ReviewInstance {
        ReviewInstance {
            id: format!("{status}-{ended:?}"),
            status: status.into(),
            start: ended.map(|d| days_ago(d + 14)),
            end: ended.map(days_ago),
            decisions: vec![],
        }
    }

    fn review(id: &str, instances: Vec<ReviewInstance>) -> AccessReview {
        AccessReview {
            id: format!("m365:{id}"),
            name: format!("Review {id}"),
            guests: false,
            scope: "group".into(),
            status: "InProgress".into(),
            instances,
        }
    }

    fn judge(reviews: Vec<AccessReview>, days: u32) -> Outcome {
        let facts = complete(
            Facts {
                access_reviews: reviews,
                ..Facts::default()
            },
            &[FactKind::AccessReviews],
        );
        let limits = Limits {
            access_review_days: days,
            ..Limits::DEFAULT
        };
        run_with(&CHECK, &facts, &limits)
    }

    #[test]
    fn table() {
        type Case = (
            &'static str,
            Vec<AccessReview>,
            u32,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "recent completion",
                vec![review("a", vec![instance("Completed", Some(30))])],
                180,
                Verdict::Pass,
                &[],
            ),
            (
                "applied counts",
                vec![review("a", vec![instance("Applied", Some(30))])],
                180,
                Verdict::Pass,
                &[],
            ),
            (
                "too old",
                vec![review("a", vec![instance("Completed", Some(200))])],
                180,
                Verdict::Fail,
                &["m365:a"],
            ),
            (
                "in progress only",
                vec![review("a", vec![instance("InProgress", Some(2))])],
                180,
                Verdict::Fail,
                &["m365:a"],
            ),
            (
                "no end time",
                vec![review("a", vec![instance("Completed", None)])],
                180,
                Verdict::Fail,
                &["m365:a"],
            ),
            (
                "ends in the future",
                vec![review("a", vec![instance("Completed", Some(-5))])],
                180,
                Verdict::Fail,
                &["m365:a"],
            ),
            (
                "no reviews at all",
                vec![],
                180,
                Verdict::Fail,
                &["access-reviews:none"],
            ),
            (
                "stricter period",
                vec![review("a", vec![instance("Completed", Some(100))])],
                90,
                Verdict::Fail,
                &["m365:a"],
            ),
        ];
        for (name, reviews, days, verdict, failing) in cases {
            let out = judge(reviews, days);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(
            vec![
                review(
                    "current",
                    vec![
                        instance("Completed", Some(200)),
                        instance("Completed", Some(20))
                    ]
                ),
                review("stale", vec![instance("Completed", Some(250))]),
                review("never", vec![instance("InProgress", Some(1))]),
            ],
            180
        ));
    }
}
