//! `mfa_enforced`: a policy forces MFA on every enabled member account, and
//! every account left out is listed.
//!
//! **What it tests.** For each enabled member user: security defaults are on
//! in the user's tenant, or an *enabled* Conditional Access policy that
//! requires MFA (or an authentication strength) for all cloud apps includes
//! the user (directly, as `All`, through a group or a directory role) and does
//! not exclude them. Report-only and disabled policies enforce nothing.
//! Accounts excluded from such a policy (break-glass accounts included) are
//! failing subjects, with the policy and the way they are excluded, so an
//! auditor sees every exception.
//!
//! **Why it matters.** A registered second factor protects nothing unless
//! sign-in demands it. Exclusions are where attackers look first; each one
//! needs a documented, compensating reason.
//!
//! **Evidence.** `users`, Conditional Access policies, security defaults and
//! the members of groups the policies include or exclude; directory roles when
//! a policy targets roles. A group a policy names whose members were not
//! collected cannot be resolved: accounts whose coverage depends on it make the
//! check inconclusive (when nothing else fails) and the summary names the group.
//!
//! **How to fix.** Create or enable a Conditional Access policy requiring MFA
//! for all users and all cloud apps (or turn on security defaults); move
//! report-only policies to on; keep exclusions to documented emergency
//! accounts and review them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Check, CheckInput, Outcome, Subject, Verdict};
use crate::facts::{
    AccessPolicy, Availability, FactKind, MfaEnforcement, PolicyState, User, UserType,
};

pub(super) const CHECK: Check = Check {
    id: "mfa_enforced",
    source: include_str!("mfa_enforced.rs"),
    title: "MFA enforced by policy for every enabled member account",
    thresholds: &[],
    remediation: "Enable a Conditional Access policy requiring MFA for all users and all cloud apps (or security defaults); switch report-only policies on; limit exclusions to documented emergency accounts.",
    needs: &[FactKind::Users, FactKind::MfaEnforcement],
    run,
};

/// Three-valued membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Unknown,
}

/// Why a user is in or out of a policy's include or exclude list.
fn member(
    user: &User,
    object_id: &str,
    users: &[String],
    groups: &[String],
    roles: &[String],
    ctx: &Ctx<'_>,
    unresolved: &mut BTreeSet<String>,
) -> (Tri, Option<String>) {
    if users.iter().any(|u| u == object_id) {
        return (Tri::Yes, Some("directly".into()));
    }
    if users.iter().any(|u| u.eq_ignore_ascii_case("All")) {
        return (Tri::Yes, Some("as all users".into()));
    }
    let mut unknown = false;
    for g in groups {
        match ctx.groups.get(g.as_str()) {
            Some(members) => {
                if members.contains(object_id) {
                    return (Tri::Yes, Some(format!("via group {g}")));
                }
            }
            None => {
                unresolved.insert(g.clone());
                unknown = true;
            }
        }
    }
    if !roles.is_empty() {
        if let Some(r) = user.roles.iter().find(|r| roles.contains(&r.role_id)) {
            return (
                Tri::Yes,
                Some(format!(
                    "via role {}",
                    r.name.as_deref().unwrap_or(r.role_id.as_str())
                )),
            );
        }
        if !ctx.roles_known {
            unknown = true;
        }
    }
    (if unknown { Tri::Unknown } else { Tri::No }, None)
}

struct Ctx<'a> {
    enforcement: &'a MfaEnforcement,
    /// Group members as sets, so large groups are cheap to test.
    groups: HashMap<&'a str, HashSet<&'a str>>,
    roles_known: bool,
}

impl<'a> Ctx<'a> {
    fn new(enforcement: &'a MfaEnforcement, roles_known: bool) -> Ctx<'a> {
        let groups = enforcement
            .group_members
            .iter()
            .map(|(g, members)| (g.as_str(), members.iter().map(String::as_str).collect()))
            .collect();
        Ctx {
            enforcement,
            groups,
            roles_known,
        }
    }
}

fn enforcing(p: &AccessPolicy) -> bool {
    p.requires_mfa && p.all_applications
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let empty = MfaEnforcement::default();
    let roles_known = input.facts.availability(FactKind::AdminRoles) == Availability::Complete;
    let mut evaluated = 0;
    let mut failing = Vec::new();
    let mut uncertain = 0usize;
    let mut unresolved: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut contexts: HashMap<&str, Ctx<'_>> = HashMap::new();
    for user in &input.facts.users {
        if !user.enabled || user.user_type != UserType::Member {
            continue;
        }
        evaluated += 1;
        let (source, object_id) = user.id.split_once(':').unwrap_or(("", user.id.as_str()));
        let ctx = contexts.entry(source).or_insert_with(|| {
            Ctx::new(
                input.facts.mfa_enforcement.get(source).unwrap_or(&empty),
                roles_known,
            )
        });
        let enforcement = ctx.enforcement;
        if enforcement.security_defaults == Some(true) {
            continue;
        }
        let mut covered = Tri::No;
        let mut exclusions = Vec::new();
        let mut report_only = Vec::new();
        for p in &enforcement.policies {
            if !enforcing(p) || p.state == PolicyState::Disabled {
                continue;
            }
            let mut groups = BTreeSet::new();
            let (inc, _) = member(
                user,
                object_id,
                &p.include_users,
                &p.include_groups,
                &p.include_roles,
                ctx,
                &mut groups,
            );
            let (exc, how) = member(
                user,
                object_id,
                &p.exclude_users,
                &p.exclude_groups,
                &p.exclude_roles,
                ctx,
                &mut groups,
            );
            let applies = match (inc, exc) {
                (Tri::No, _) | (_, Tri::Yes) => Tri::No,
                (Tri::Yes, Tri::No) => Tri::Yes,
                _ => Tri::Unknown,
            };
            if p.state == PolicyState::ReportOnly {
                if applies != Tri::No {
                    report_only.push(p.name.as_str());
                }
                continue;
            }
            if inc != Tri::No && exc == Tri::Yes {
                exclusions.push(format!(
                    "excluded from `{}` {}",
                    p.name,
                    how.unwrap_or_default()
                ));
            }
            if applies == Tri::Unknown {
                unresolved.entry(p.name.clone()).or_default().extend(groups);
            }
            covered = match (covered, applies) {
                (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
                (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
                _ => Tri::No,
            };
        }
        match covered {
            Tri::Yes => continue,
            Tri::Unknown => {
                uncertain += 1;
                continue;
            }
            Tri::No => {}
        }
        let mut detail = if exclusions.is_empty() {
            "no enabled policy requiring MFA for all apps covers this account".to_owned()
        } else {
            exclusions.join("; ")
        };
        if !report_only.is_empty() {
            detail.push_str(&format!(
                " (report-only, so not enforced: {})",
                report_only.join(", ")
            ));
        }
        if user.is_admin {
            detail.push_str(" [admin]");
        }
        failing.push(Subject {
            id: user.id.clone(),
            name: format!("{} <{}>", user.display_name, user.upn),
            detail,
        });
    }
    let unresolved_note = if unresolved.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = unresolved
            .iter()
            .map(|(policy, groups)| {
                let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
                format!("`{policy}` names group(s) {}", groups.join(", "))
            })
            .collect();
        format!(
            "; coverage of {uncertain} account(s) unknown because members were not collected: {}",
            list.join("; ")
        )
    };
    let mut outcome = Outcome::judge(evaluated, failing, "enabled member accounts");
    if uncertain > 0 {
        if outcome.verdict == Verdict::Pass {
            return Outcome::inconclusive(format!(
                "{uncertain} of {evaluated} enabled member accounts cannot be judged{unresolved_note}"
            ));
        }
        outcome.summary.push_str(&unresolved_note);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{complete, ids, run as run_with, user};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{Facts, RoleHeld};

    fn policy(name: &str, state: PolicyState) -> AccessPolicy {
        AccessPolicy {
            id: name.to_lowercase(),
            name: name.into(),
            state,
            requires_mfa: true,
            all_applications: true,
            include_users: vec!["All".into()],
            exclude_users: vec![],
            include_groups: vec![],
            exclude_groups: vec![],
            include_roles: vec![],
            exclude_roles: vec![],
        }
    }

    fn judge(users: Vec<User>, enforcement: MfaEnforcement) -> Outcome {
        let facts = complete(
            Facts {
                users,
                mfa_enforcement: [("m365".to_owned(), enforcement)].into(),
                ..Facts::default()
            },
            &[FactKind::Users, FactKind::MfaEnforcement],
        );
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    fn policies(list: Vec<AccessPolicy>) -> MfaEnforcement {
        MfaEnforcement {
            security_defaults: Some(false),
            policies: list,
            group_members: BTreeMap::new(),
        }
    }

    fn users() -> Vec<User> {
        vec![
            user("a", true, UserType::Member),
            user("b", true, UserType::Member),
            user("breakglass", true, UserType::Member),
            user("off", false, UserType::Member),
            user("guest", true, UserType::Guest),
        ]
    }

    #[test]
    fn table() {
        let mut excluded = policy("Require MFA", PolicyState::Enabled);
        excluded.exclude_users = vec!["breakglass".into(), "off".into()];
        let mut group_excluded = policy("Require MFA", PolicyState::Enabled);
        group_excluded.exclude_groups = vec!["g-emergency".into()];
        let mut resolved = policies(vec![group_excluded.clone()]);
        resolved
            .group_members
            .insert("g-emergency".into(), vec!["breakglass".into()]);
        let mut not_all_apps = policy("Exchange only", PolicyState::Enabled);
        not_all_apps.all_applications = false;
        let mut group_included = policy("Pilot", PolicyState::Enabled);
        group_included.include_users = vec![];
        group_included.include_groups = vec!["g-pilot".into()];
        let mut pilot = policies(vec![group_included]);
        pilot
            .group_members
            .insert("g-pilot".into(), vec!["a".into(), "breakglass".into()]);
        type Case = (
            &'static str,
            MfaEnforcement,
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "all users policy",
                policies(vec![policy("Require MFA", PolicyState::Enabled)]),
                Verdict::Pass,
                &[],
            ),
            (
                "security defaults",
                MfaEnforcement {
                    security_defaults: Some(true),
                    ..MfaEnforcement::default()
                },
                Verdict::Pass,
                &[],
            ),
            (
                "break-glass exclusion listed, disabled user ignored",
                policies(vec![excluded]),
                Verdict::Fail,
                &["m365:breakglass"],
            ),
            (
                "report-only enforces nothing",
                policies(vec![policy("Require MFA", PolicyState::ReportOnly)]),
                Verdict::Fail,
                &["m365:a", "m365:b", "m365:breakglass"],
            ),
            (
                "disabled policy enforces nothing",
                policies(vec![policy("Require MFA", PolicyState::Disabled)]),
                Verdict::Fail,
                &["m365:a", "m365:b", "m365:breakglass"],
            ),
            (
                "policy not for all apps does not count",
                policies(vec![not_all_apps]),
                Verdict::Fail,
                &["m365:a", "m365:b", "m365:breakglass"],
            ),
            (
                "resolved group exclusion",
                resolved,
                Verdict::Fail,
                &["m365:breakglass"],
            ),
            (
                "group inclusion covers members only",
                pilot,
                Verdict::Fail,
                &["m365:b"],
            ),
            (
                "no policies",
                MfaEnforcement::default(),
                Verdict::Fail,
                &["m365:a", "m365:b", "m365:breakglass"],
            ),
        ];
        for (name, enforcement, verdict, failing) in cases {
            let out = judge(users(), enforcement);
            assert_eq!(out.verdict, verdict, "{name}: {}", out.summary);
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    #[test]
    fn unresolvable_group_exclusion_is_inconclusive_and_named() {
        let mut p = policy("Require MFA", PolicyState::Enabled);
        p.exclude_groups = vec!["g-unknown".into()];
        let out = judge(users(), policies(vec![p]));
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(out.summary.contains("g-unknown"), "{}", out.summary);
    }

    #[test]
    fn role_targeting_needs_role_facts() {
        let mut p = policy("Admins", PolicyState::Enabled);
        p.include_users = vec![];
        p.include_roles = vec!["ga".into()];
        let mut admin = user("adm", true, UserType::Member);
        admin.roles = vec![RoleHeld {
            role_id: "ga".into(),
            name: Some("Global Administrator".into()),
            privileged: true,
            via_group: None,
        }];
        let plain = user("a", true, UserType::Member);
        // Without role facts, the plain user's coverage is unknown but the admin's is proven.
        let out = judge(
            vec![admin.clone(), plain.clone()],
            policies(vec![p.clone()]),
        );
        assert_eq!(out.verdict, Verdict::Inconclusive, "{}", out.summary);
        let facts = complete(
            Facts {
                users: vec![admin, plain],
                mfa_enforcement: [("m365".to_owned(), policies(vec![p]))].into(),
                ..Facts::default()
            },
            &[
                FactKind::Users,
                FactKind::MfaEnforcement,
                FactKind::AdminRoles,
            ],
        );
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(ids(&out), ["m365:a"]);
    }

    #[test]
    fn missing_policies_is_inconclusive() {
        let facts = complete(
            Facts {
                users: users(),
                ..Facts::default()
            },
            &[FactKind::Users],
        );
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn findings_snapshot() {
        let mut p = policy("Require MFA", PolicyState::Enabled);
        p.exclude_users = vec!["breakglass".into()];
        let mut ro = policy("Block legacy", PolicyState::ReportOnly);
        ro.include_users = vec!["b".into()];
        let mut narrow = policy("Require MFA", PolicyState::Enabled);
        narrow.include_users = vec!["a".into(), "breakglass".into()];
        narrow.exclude_users = vec!["breakglass".into()];
        insta::assert_json_snapshot!(judge(users(), policies(vec![narrow, ro])));
        insta::assert_json_snapshot!("exclusion", judge(users(), policies(vec![p])));
    }
}
