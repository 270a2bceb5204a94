//! `mfa_admins`: every enabled account holding a privileged directory role has
//! registered MFA.
//!
//! **What it tests.** Each enabled account (member or guest) that holds a
//! privileged directory role, from role assignments (directly or through a
//! role-assignable group) or the registration report's admin flag, has a
//! registered MFA method.
//!
//! **Why it matters.** Admin accounts can switch off every other control; one
//! phished admin password is a tenant takeover. PCI DSS 8.4.1 asks for MFA on
//! all administrative access, HIPAA 164.312(d) for verified identities.
//!
//! **Evidence.** `users`, directory role assignments and
//! `userRegistrationDetails`. An admin with no registration record fails; one
//! whose record does not say whether MFA is registered (`isMfaRegistered`
//! absent or null) is unproven.
//! Disabled admins are skipped (they cannot sign in).
//!
//! **How to fix.** Have each listed admin register a phishing-resistant
//! method (FIDO2 key or Windows Hello) or the Authenticator app; remove admin
//! roles that are not needed, and use separate admin accounts.

use super::mfa_registered::{registration_gap, Gap};
use super::{Check, CheckInput, Outcome, Subject};
use crate::facts::FactKind;

pub(super) const CHECK: Check = Check {
    id: "mfa_admins",
    source: include_str!("mfa_admins.rs"),
    title: "MFA registered for every admin account",
    thresholds: &[],
    remediation: "Have each listed admin register a phishing-resistant MFA method (FIDO2 key, Windows Hello, Authenticator); remove admin roles that are not needed.",
    needs: &[FactKind::Users, FactKind::AdminRoles, FactKind::MfaRegistration],
    per_subject: &[],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let mut evaluated = 0;
    let (mut failing, mut unproven) = (Vec::new(), Vec::new());
    for user in &input.facts.users {
        let privileged: Vec<String> = user
            .roles
            .iter()
            .filter(|r| r.privileged)
            .map(|r| {
                let name = r.name.as_deref().unwrap_or(r.role_id.as_str());
                match &r.via_group {
                    Some(group) => format!("{name} through group {group}"),
                    None => name.to_owned(),
                }
            })
            .collect();
        let admin = user.is_admin || !privileged.is_empty();
        if !user.enabled || !admin {
            continue;
        }
        evaluated += 1;
        let (list, detail) = match registration_gap(user.mfa.as_ref()) {
            None => continue,
            Some((Gap::Failing, detail)) => (&mut failing, detail),
            Some((Gap::Unproven, detail)) => (&mut unproven, detail),
        };
        let roles = if privileged.is_empty() {
            "flagged as admin".to_owned()
        } else {
            format!("holds {}", privileged.join(", "))
        };
        list.push(Subject {
            id: user.id.clone(),
            name: format!("{} <{}>", user.display_name, user.upn),
            detail: format!("{detail}; {roles}"),
        });
    }
    Outcome::judge_all(evaluated, failing, unproven, "enabled admin accounts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, ids, run as run_with, user};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Facts, MfaState, RoleHeld, User, UserType};

    const KINDS: &[FactKind] = &[
        FactKind::Users,
        FactKind::AdminRoles,
        FactKind::MfaRegistration,
    ];

    fn admin(id: &str, enabled: bool, user_type: UserType, mfa: Option<bool>) -> User {
        User {
            roles: vec![RoleHeld {
                role_id: "62e90394-69f5-4237-9190-012177145e10".into(),
                name: Some("Global Administrator".into()),
                privileged: true,
                via_group: None,
            }],
            mfa: mfa.map(|registered| MfaState {
                registered: Some(registered),
                capable: Some(registered),
                methods: vec![],
            }),
            ..user(id, enabled, user_type)
        }
    }

    fn judge(users: Vec<User>) -> Outcome {
        let facts = complete(
            Facts {
                users,
                ..Facts::default()
            },
            KINDS,
        );
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        let mut flagged = user("f", true, UserType::Member);
        flagged.is_admin = true;
        let mut reader = user("r", true, UserType::Member);
        reader.roles = vec![RoleHeld {
            role_id: "88d8e3e3".into(),
            name: Some("Directory Readers".into()),
            privileged: false,
            via_group: None,
        }];
        type Case = (&'static str, Vec<User>, Verdict, &'static [&'static str]);
        let cases: Vec<Case> = vec![
            (
                "admin with MFA",
                vec![admin("a", true, UserType::Member, Some(true))],
                Verdict::Pass,
                &[],
            ),
            (
                "admin without MFA",
                vec![admin("a", true, UserType::Member, Some(false))],
                Verdict::Fail,
                &["m365:a"],
            ),
            (
                "admin flag without roles, no record",
                vec![flagged],
                Verdict::Fail,
                &["m365:f"],
            ),
            (
                "disabled admin skipped",
                vec![admin("d", false, UserType::Member, None)],
                Verdict::Pass,
                &[],
            ),
            (
                "guest admin judged",
                vec![admin("g", true, UserType::Guest, None)],
                Verdict::Fail,
                &["m365:g"],
            ),
            (
                "non-privileged role ignored",
                vec![reader],
                Verdict::Pass,
                &[],
            ),
            ("no admins passes", vec![], Verdict::Pass, &[]),
        ];
        for (name, users, verdict, failing) in cases {
            let out = judge(users);
            assert_eq!(out.verdict, verdict, "{name}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn a_record_that_does_not_say_is_unproven_not_failing() {
        let mut silent = admin("s", true, UserType::Member, Some(true));
        if let Some(m) = &mut silent.mfa {
            m.registered = None;
        }
        let out = judge(vec![
            admin("a", true, UserType::Member, Some(true)),
            silent.clone(),
        ]);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(out.failing.is_empty());
        let unproven: Vec<_> = out.unproven.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(unproven, ["m365:s"]);
        // A failing admin still fails the check beside it.
        let out = judge(vec![
            admin("b", true, UserType::Member, Some(false)),
            silent,
        ]);
        assert_eq!((out.verdict, ids(&out)), (Verdict::Fail, vec!["m365:b"]));
    }

    #[test]
    fn missing_role_assignments_is_inconclusive() {
        let facts = complete(
            Facts {
                users: vec![admin("a", true, UserType::Member, Some(true))],
                ..Facts::default()
            },
            &[FactKind::Users, FactKind::MfaRegistration],
        );
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(out.summary.contains("admin role"), "{}", out.summary);
    }

    #[test]
    fn findings_snapshot() {
        insta::assert_json_snapshot!(judge(vec![
            admin("a", true, UserType::Member, Some(true)),
            admin("b", true, UserType::Member, Some(false)),
            admin("c", true, UserType::Guest, None),
            admin("d", false, UserType::Member, None),
        ]));
    }
}
