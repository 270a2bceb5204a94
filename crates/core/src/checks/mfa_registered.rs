//! `mfa_registered`: every enabled member account has registered an MFA method.
//!
//! **What it tests.** Each enabled member user (guests are judged by their home
//! tenant and by access reviews) has `isMfaRegistered` in Entra ID's
//! authentication-methods registration report.
//!
//! **Why it matters.** A password alone is the most common way in. An account
//! without a registered second factor cannot be forced to use one, whatever
//! the Conditional Access policies say; and the first person to register it
//! may be the attacker.
//!
//! **Evidence.** `users` (enabled, member/guest) and `userRegistrationDetails`.
//! A user with no registration record fails: the report covers every user, so a
//! missing record means nothing was registered. A record that does not say
//! whether MFA is registered (`isMfaRegistered` absent or null) is no
//! evidence either way: that user is unproven.
//!
//! **How to fix.** Have each listed user register Microsoft Authenticator or a
//! FIDO2 key (aka.ms/mysecurityinfo), or run a registration campaign; disable
//! accounts that are no longer used.

use super::{Check, CheckInput, Outcome, Subject};
use crate::facts::{FactKind, MfaState, UserType};

pub(super) const CHECK: Check = Check {
    id: "mfa_registered",
    source: include_str!("mfa_registered.rs"),
    title: "MFA registered for every enabled member account",
    remediation: "Have each listed user register an MFA method (Authenticator app or FIDO2 key), or disable the account if unused.",
    thresholds: &[],
    needs: &[FactKind::Users, FactKind::MfaRegistration],
    per_subject: &[],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let in_scope = input
        .facts
        .users
        .iter()
        .filter(|u| u.enabled && u.user_type == UserType::Member);
    let mut evaluated = 0;
    let (mut failing, mut unproven) = (Vec::new(), Vec::new());
    for user in in_scope {
        evaluated += 1;
        let (list, detail) = match registration_gap(user.mfa.as_ref()) {
            None => continue,
            Some((Gap::Failing, detail)) => (&mut failing, detail),
            Some((Gap::Unproven, detail)) => (&mut unproven, detail),
        };
        list.push(Subject {
            id: user.id.clone(),
            name: format!("{} <{}>", user.display_name, user.upn),
            detail: if user.is_admin {
                format!("{detail} (holds an admin role)")
            } else {
                detail.to_owned()
            },
        });
    }
    Outcome::judge_all(evaluated, failing, unproven, "enabled member accounts")
}

/// Whether a registration gap is shown or only not ruled out.
pub(super) enum Gap {
    /// The evidence shows the gap.
    Failing,
    /// The evidence does not say.
    Unproven,
}

/// What is wrong with an account's MFA registration, if anything: no
/// record, or one saying no method is registered, fails; a record that does
/// not say (`isMfaRegistered` absent or null) is unproven.
pub(super) fn registration_gap(mfa: Option<&MfaState>) -> Option<(Gap, &'static str)> {
    match mfa.map(|m| m.registered) {
        None => Some((Gap::Failing, "no MFA registration record")),
        Some(Some(true)) => None,
        Some(Some(false)) => Some((Gap::Failing, "no MFA method registered")),
        Some(None) => Some((
            Gap::Unproven,
            "the registration record does not say whether MFA is registered",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{as_of, complete};
    use crate::checks::{run_check, Limits, Verdict};
    use crate::facts::{Facts, MfaState, User};

    fn user(id: &str, enabled: bool, user_type: UserType, mfa: Option<bool>) -> User {
        user_said(id, enabled, user_type, mfa.map(Some))
    }

    /// A user whose registration record says `registered` (`Some(None)`: a
    /// record that does not say).
    fn user_said(id: &str, enabled: bool, user_type: UserType, mfa: Option<Option<bool>>) -> User {
        User {
            id: format!("m365:{id}"),
            upn: format!("{id}@contoso.example"),
            display_name: id.to_uppercase(),
            enabled,
            user_type,
            last_sign_in: None,
            sign_in_basis: crate::facts::SignInBasis::Success,
            created: None,
            mfa: mfa.map(|registered| MfaState {
                registered,
                capable: registered,
                methods: vec![],
            }),
            is_admin: false,
            roles: vec![],
        }
    }

    fn judge(users: Vec<User>) -> Outcome {
        let facts = complete(
            Facts {
                users,
                ..Facts::default()
            },
            &[FactKind::Users, FactKind::MfaRegistration],
        );
        let input = CheckInput::new(&facts, &Limits::DEFAULT, as_of());
        run_check(&CHECK, &input)
    }

    #[test]
    fn table() {
        type Case = (&'static str, Vec<User>, Verdict, &'static [&'static str]);
        let cases: &[Case] = &[
            (
                "all registered",
                vec![user("a", true, UserType::Member, Some(true))],
                Verdict::Pass,
                &[],
            ),
            (
                "one missing",
                vec![
                    user("a", true, UserType::Member, Some(true)),
                    user("b", true, UserType::Member, Some(false)),
                ],
                Verdict::Fail,
                &["m365:b"],
            ),
            (
                "no record fails",
                vec![user("c", true, UserType::Member, None)],
                Verdict::Fail,
                &["m365:c"],
            ),
            (
                "disabled ignored",
                vec![user("d", false, UserType::Member, Some(false))],
                Verdict::Pass,
                &[],
            ),
            (
                "guests ignored",
                vec![user("g", true, UserType::Guest, None)],
                Verdict::Pass,
                &[],
            ),
            ("empty directory passes", vec![], Verdict::Pass, &[]),
            (
                "a record that does not say is unproven, not failing",
                vec![
                    user("a", true, UserType::Member, Some(true)),
                    user_said("u", true, UserType::Member, Some(None)),
                ],
                Verdict::Inconclusive,
                &[],
            ),
            (
                "a failure is not hidden by an unproven user",
                vec![
                    user("b", true, UserType::Member, Some(false)),
                    user_said("u", true, UserType::Member, Some(None)),
                ],
                Verdict::Fail,
                &["m365:b"],
            ),
        ];
        for (name, users, verdict, failing) in cases {
            let out = judge(users.clone());
            assert_eq!(out.verdict, *verdict, "{name}");
            let ids: Vec<_> = out.failing.iter().map(|s| s.id.as_str()).collect();
            assert_eq!(ids, *failing, "{name}");
        }
        let out = judge(vec![user_said("u", true, UserType::Member, Some(None))]);
        let unproven: Vec<_> = out.unproven.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(unproven, ["m365:u"]);
        assert!(out.unproven[0].detail.contains("does not say"));
    }

    #[test]
    fn missing_registration_report_is_inconclusive() {
        let facts = complete(
            Facts {
                users: vec![user("a", true, UserType::Member, None)],
                ..Facts::default()
            },
            &[FactKind::Users],
        );
        let input = CheckInput::new(&facts, &Limits::DEFAULT, as_of());
        let out = run_check(&CHECK, &input);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(out.summary.contains("MFA registration"));
    }
}
