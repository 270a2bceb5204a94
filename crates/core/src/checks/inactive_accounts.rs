//! `inactive_accounts`: no enabled account has gone without a sign-in for more
//! than `inactive_account_days` (PCI DSS 8.2.6: 90 days).
//!
//! **What it tests.** Every enabled account, members and guests alike, has
//! signed in successfully within the limit. Graph's `lastSignInDateTime` and
//! `lastNonInteractiveSignInDateTime` record attempts, failed ones included,
//! so the last *successful* sign-in (`lastSuccessfulSignInDateTime`) decides
//! wherever the field exists: an account whose last success was 200 days ago
//! is inactive even if someone failed to sign in to it yesterday. Where only
//! attempts are reported, the last attempt is used and the detail says so.
//! Graph's `0001-01-01T00:00:00Z` means never. An account with no recorded
//! success counts as inactive once it is older than the limit; one with no
//! creation time either, or whose sign-in activity the source does not report
//! at all, is unproven, listed apart. Disabled accounts are skipped: they are
//! already what the fix would make them.
//!
//! **Why it matters.** Dormant accounts (leavers nobody switched off, test
//! accounts, old guests) keep working passwords nobody watches, and their
//! misuse goes unnoticed.
//!
//! **Evidence.** `users` and their sign-in activity (last successful sign-in;
//! last interactive and non-interactive attempts where no success field
//! exists).
//!
//! **How to fix.** Disable or delete the listed accounts (confirm with their
//! managers first); for service accounts, move to managed identities or
//! document why the account must stay enabled.

use super::{days_between, Check, CheckInput, Outcome, Subject, Threshold};
use crate::facts::{FactKind, SignInBasis, UserType};

pub(super) const CHECK: Check = Check {
    id: "inactive_accounts",
    source: include_str!("inactive_accounts.rs"),
    title: "No enabled account inactive longer than the allowed days",
    thresholds: &[Threshold::InactiveAccountDays],
    remediation: "Disable or delete the listed accounts after confirming with their managers; document any account that must stay enabled.",
    needs: &[FactKind::Users, FactKind::SignInActivity],
    per_subject: &[],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let limit = i64::from(input.limits.inactive_account_days);
    let mut evaluated = 0;
    let mut failing = Vec::new();
    let mut unproven = Vec::new();
    for user in input.facts.users.iter().filter(|u| u.enabled) {
        evaluated += 1;
        let kind = match user.user_type {
            UserType::Member => "",
            UserType::Guest => " [guest]",
        };
        let subject = |detail: String| Subject {
            id: user.id.clone(),
            name: format!("{} <{}>", user.display_name, user.upn),
            detail: format!("{detail}{kind}"),
        };
        let (what, never, basis) = match user.sign_in_basis {
            SignInBasis::Success => (
                "last successful sign-in",
                "no successful sign-in recorded",
                "",
            ),
            SignInBasis::AttemptsOnly => (
                "last sign-in attempt",
                "no sign-in recorded",
                " (only sign-in attempts were available, which count failed ones)",
            ),
            SignInBasis::NotReported => {
                unproven.push(subject("the source reports no sign-in activity".to_owned()));
                continue;
            }
        };
        let detail = match (user.last_sign_in, user.created) {
            (Some(last), _) => {
                let days = days_between(last, input.as_of);
                if days <= limit {
                    continue;
                }
                format!("{what} {days} days ago (limit {limit}){basis}")
            }
            (None, Some(created)) => {
                let days = days_between(created, input.as_of);
                if days <= limit {
                    continue;
                }
                format!("{never}; created {days} days ago (limit {limit}){basis}")
            }
            (None, None) => {
                unproven.push(subject(format!("{never}; creation time unknown{basis}")));
                continue;
            }
        };
        failing.push(subject(detail));
    }
    Outcome::judge_all(evaluated, failing, unproven, "enabled accounts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, days_ago, ids, run as run_with, user};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Facts, User};

    fn account(
        id: &str,
        enabled: bool,
        kind: UserType,
        last: Option<i64>,
        created: Option<i64>,
    ) -> User {
        User {
            last_sign_in: last.map(days_ago),
            created: created.map(days_ago),
            ..user(id, enabled, kind)
        }
    }

    fn judge(users: Vec<User>, days: u32) -> Outcome {
        let facts = complete(
            Facts {
                users,
                ..Facts::default()
            },
            &[FactKind::Users, FactKind::SignInActivity],
        );
        let limits = Limits {
            inactive_account_days: days,
            ..Limits::DEFAULT
        };
        run_with(&CHECK, &facts, &limits)
    }

    #[test]
    fn table() {
        use UserType::{Guest, Member};
        type Case = (
            &'static str,
            Vec<User>,
            u32,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "recent",
                vec![account("a", true, Member, Some(5), Some(400))],
                90,
                Verdict::Pass,
                &[],
            ),
            (
                "at the limit",
                vec![account("a", true, Member, Some(90), Some(400))],
                90,
                Verdict::Pass,
                &[],
            ),
            (
                "over the limit",
                vec![account("a", true, Member, Some(91), Some(400))],
                90,
                Verdict::Fail,
                &["m365:a"],
            ),
            (
                "disabled skipped",
                vec![account("d", false, Member, Some(500), Some(900))],
                90,
                Verdict::Pass,
                &[],
            ),
            (
                "inactive guest fails",
                vec![account("g", true, Guest, Some(200), Some(400))],
                90,
                Verdict::Fail,
                &["m365:g"],
            ),
            (
                "never signed in, new",
                vec![account("n", true, Member, None, Some(10))],
                90,
                Verdict::Pass,
                &[],
            ),
            (
                "never signed in, old",
                vec![account("n", true, Member, None, Some(100))],
                90,
                Verdict::Fail,
                &["m365:n"],
            ),
            (
                "never signed in, age unknown: unproven",
                vec![account("u", true, Member, None, None)],
                90,
                Verdict::Inconclusive,
                &[],
            ),
            (
                "stricter limit",
                vec![account("a", true, Member, Some(40), Some(400))],
                30,
                Verdict::Fail,
                &["m365:a"],
            ),
        ];
        for (name, users, days, verdict, failing) in cases {
            let out = judge(users, days);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn missing_sign_in_activity_is_inconclusive() {
        let facts = complete(
            Facts {
                users: vec![account("a", true, UserType::Member, None, None)],
                ..Facts::default()
            },
            &[FactKind::Users],
        );
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(out.summary.contains("sign-in activity"));
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(
            vec![
                account("active", true, UserType::Member, Some(3), Some(400)),
                account("dormant", true, UserType::Member, Some(120), Some(400)),
                account("guest", true, UserType::Guest, Some(365), Some(500)),
                account("never", true, UserType::Member, None, Some(200)),
                account("unknown", true, UserType::Member, None, None),
                account("left", false, UserType::Member, Some(300), Some(900)),
            ],
            90
        ));
    }
}
