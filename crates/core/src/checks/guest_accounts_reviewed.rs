//! `guest_accounts_reviewed`: every enabled guest account was decided on in an
//! access review completed within `access_review_days`.
//!
//! **What it tests.** Each enabled guest (B2B) account appears, with a real
//! decision (approve or deny), in an instance of an access review that
//! completed within the period. Guests invited more recently than the period
//! pass: no review could have included them yet. A guest listed without a
//! decision ("not reviewed", "don't know") fails.
//!
//! **Why it matters.** Guests are vendors, contractors and partners whose
//! need for access ends without anyone telling IT; PCI DSS 7.2.4 and 8.2.7
//! name third-party accounts explicitly.
//!
//! **Evidence.** `users` (guests) and access review definitions, instances and
//! decisions.
//!
//! **How to fix.** Create a recurring Entra ID access review of guest users
//! (scope: guests in all Microsoft 365 groups, or all guests), make sure
//! reviewers decide on every guest, and remove guests nobody vouches for.

use std::collections::HashMap;

use super::{days_between, Check, CheckInput, Outcome, Subject, Threshold};
use crate::facts::{FactKind, ReviewDecision, ReviewInstance, UserType};

pub(super) const CHECK: Check = Check {
    id: "guest_accounts_reviewed",
    source: include_str!("guest_accounts_reviewed.rs"),
    title: "Every enabled guest account reviewed within the period",
    thresholds: &[Threshold::AccessReviewDays],
    remediation: "Run a recurring access review of guest accounts, have reviewers decide on every guest, and remove guests nobody vouches for.",
    needs: &[FactKind::Users, FactKind::AccessReviews],
    per_subject: &[],
    run,
};

/// Whether an instance counts as completed.
pub(super) fn completed(instance: &ReviewInstance) -> bool {
    matches!(
        instance.status.to_ascii_lowercase().as_str(),
        "completed" | "applied" | "applying" | "autoreviewed"
    )
}

/// Whether a completed instance ended within `days` before `as_of`.
pub(super) fn recent(
    instance: &ReviewInstance,
    days: i64,
    as_of: chrono::DateTime<chrono::Utc>,
) -> bool {
    completed(instance)
        && instance
            .end
            .is_some_and(|end| end <= as_of && days_between(end, as_of) <= days)
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let days = i64::from(input.limits.access_review_days);
    // Best decision per principal across recent completed instances.
    let mut seen: HashMap<&str, bool> = HashMap::new();
    for review in &input.facts.access_reviews {
        for instance in review
            .instances
            .iter()
            .filter(|i| recent(i, days, input.as_of))
        {
            for item in &instance.decisions {
                let decided = matches!(
                    item.decision,
                    ReviewDecision::Approve | ReviewDecision::Deny
                );
                let entry = seen.entry(item.principal_id.as_str()).or_insert(false);
                *entry |= decided;
            }
        }
    }
    let mut evaluated = 0;
    let mut failing = Vec::new();
    for user in &input.facts.users {
        if !user.enabled || user.user_type != UserType::Guest {
            continue;
        }
        evaluated += 1;
        let detail = match seen.get(user.id.as_str()) {
            Some(true) => continue,
            Some(false) => format!("listed in a review of the last {days} days but not decided"),
            None => {
                if user
                    .created
                    .is_some_and(|c| days_between(c, input.as_of) <= days)
                {
                    continue;
                }
                format!("in no access review completed in the last {days} days")
            }
        };
        failing.push(Subject {
            id: user.id.clone(),
            name: format!("{} <{}>", user.display_name, user.upn),
            detail,
        });
    }
    Outcome::judge(evaluated, failing, "enabled guest accounts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, days_ago, ids, run as run_with, user};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{AccessReview, Facts, ReviewItem, User};

    fn item(principal: &str, decision: ReviewDecision) -> ReviewItem {
        ReviewItem {
            principal_id: format!("m365:{principal}"),
            principal_name: principal.to_uppercase(),
            decision,
            reviewed: Some(days_ago(20)),
            apply_result: None,
            applied: None,
        }
    }

    fn review(status: &str, ended: i64, decisions: Vec<ReviewItem>) -> AccessReview {
        AccessReview {
            id: "r1".into(),
            name: "Guest review".into(),
            guests: true,
            scope: "guests".into(),
            status: "InProgress".into(),
            instances: vec![ReviewInstance {
                id: "i1".into(),
                status: status.into(),
                start: Some(days_ago(ended + 14)),
                end: Some(days_ago(ended)),
                decisions,
            }],
        }
    }

    fn guest(id: &str, created: i64) -> User {
        User {
            created: Some(days_ago(created)),
            ..user(id, true, UserType::Guest)
        }
    }

    fn judge(users: Vec<User>, reviews: Vec<AccessReview>) -> Outcome {
        let facts = complete(
            Facts {
                users,
                access_reviews: reviews,
                ..Facts::default()
            },
            &[FactKind::Users, FactKind::AccessReviews],
        );
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        let mut disabled = guest("off", 400);
        disabled.enabled = false;
        type Case = (
            &'static str,
            Vec<User>,
            Vec<AccessReview>,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "approved recently",
                vec![guest("g", 400)],
                vec![review(
                    "Completed",
                    30,
                    vec![item("g", ReviewDecision::Approve)],
                )],
                Verdict::Pass,
                &[],
            ),
            (
                "no review",
                vec![guest("g", 400)],
                vec![],
                Verdict::Fail,
                &["m365:g"],
            ),
            (
                "review too old",
                vec![guest("g", 400)],
                vec![review(
                    "Completed",
                    200,
                    vec![item("g", ReviewDecision::Approve)],
                )],
                Verdict::Fail,
                &["m365:g"],
            ),
            (
                "review still running",
                vec![guest("g", 400)],
                vec![review(
                    "InProgress",
                    1,
                    vec![item("g", ReviewDecision::Approve)],
                )],
                Verdict::Fail,
                &["m365:g"],
            ),
            (
                "not decided",
                vec![guest("g", 400)],
                vec![review(
                    "Completed",
                    30,
                    vec![item("g", ReviewDecision::NotReviewed)],
                )],
                Verdict::Fail,
                &["m365:g"],
            ),
            (
                "new guest passes",
                vec![guest("new", 10)],
                vec![],
                Verdict::Pass,
                &[],
            ),
            (
                "disabled guest skipped",
                vec![disabled],
                vec![],
                Verdict::Pass,
                &[],
            ),
            (
                "members ignored",
                vec![user("m", true, UserType::Member)],
                vec![],
                Verdict::Pass,
                &[],
            ),
        ];
        for (name, users, reviews, verdict, failing) in cases {
            let out = judge(users, reviews);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(
            vec![
                guest("approved", 400),
                guest("undecided", 400),
                guest("missing", 400),
                guest("new", 5)
            ],
            vec![review(
                "Completed",
                30,
                vec![
                    item("approved", ReviewDecision::Approve),
                    item("undecided", ReviewDecision::DontKnow)
                ]
            )]
        ));
    }
}
