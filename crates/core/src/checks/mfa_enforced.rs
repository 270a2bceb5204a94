//! `mfa_enforced`: a policy forces MFA on every sign-in of every enabled
//! member account, and every account or sign-in left out is listed.
//!
//! **What it tests.** For each enabled member user: security defaults are on
//! in the user's tenant, or the *enabled* Conditional Access policies that
//! include the user (directly, as `All`, through a group or a directory role)
//! and do not exclude them together cover every kind of sign-in with a grant
//! that requires MFA or blocks access. Report-only and disabled policies
//! enforce nothing.
//!
//! A grant requires MFA only when it cannot be satisfied without it: `mfa`
//! or an authentication strength alone or under `AND`. Under `OR` with
//! another control (`mfa` or `compliantDevice`, say) a compliant device alone
//! satisfies the grant, so the policy does not enforce MFA and the finding
//! says so.
//!
//! Coverage is judged per user over every client app type (browser, mobile
//! apps and desktop clients, Exchange ActiveSync, other clients) on every
//! device platform (Android, iOS, Windows, Windows Phone, macOS, Linux, and
//! platforms not listed): a policy limited by `clientAppTypes` or `platforms`
//! covers only its share, and a block policy (e.g. for legacy clients) covers
//! its share too. A policy whose other conditions narrow it (locations, so
//! "MFA except from trusted locations"; excluded or selected applications;
//! sign-in or user risk levels; a device filter; authentication flows) does
//! not cover a sign-in on its own, and each account left uncovered fails with
//! what escapes named: the client types and platforms no policy covers, the
//! policy and condition that narrowed it, the exclusion (user, group, role,
//! guest type) that took the account out. A location exemption is called out
//! because frameworks differ: PCI DSS 8.4.2 requires MFA for all access into
//! the cardholder data environment whatever the location, while HIPAA leaves
//! it to the risk analysis, which must then justify it.
//!
//! **Why it matters.** A registered second factor protects nothing unless
//! sign-in demands it. Exclusions and narrowed conditions are where attackers
//! look first; each one needs a documented, compensating reason.
//!
//! **Evidence.** `users`, Conditional Access policies (state, users,
//! applications, client app types, platforms, locations, risk levels, grant
//! controls and operator), security defaults and the members of groups the
//! policies include or exclude; directory roles when a policy targets roles.
//! Policies and security defaults are needed for any judgement; group
//! members are judged account by account: when some were not collected
//! (GroupMember.Read.All refused, paging cut short), an account whose
//! coverage depends on such a group, or on role assignments that were not
//! collected, is unproven, listed apart with the policy and group named,
//! while an account no policy can cover whatever groups it is in still
//! fails, with the sign-ins left open even in the best case.
//!
//! **How to fix.** Create or enable a Conditional Access policy requiring MFA
//! for all users, all cloud apps and all client apps (or turn on security
//! defaults), with `mfa` or an authentication strength as the only way to
//! satisfy it; block legacy authentication; move report-only policies to on;
//! keep exclusions to documented emergency accounts and review them; document
//! any location exemption in the risk analysis, and remove it for access into
//! a PCI cardholder data environment.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Check, CheckInput, Outcome, Subject};
use crate::facts::{
    AccessPolicy, Availability, FactKind, MfaEnforcement, PolicyState, User, UserType,
};

pub(super) const CHECK: Check = Check {
    id: "mfa_enforced",
    source: include_str!("mfa_enforced.rs"),
    title: "MFA enforced by policy for every enabled member account",
    thresholds: &[],
    remediation: "Enable a Conditional Access policy requiring MFA for all users and all cloud apps (or security defaults); switch report-only policies on; limit exclusions to documented emergency accounts.",
    needs: &[
        FactKind::Users,
        FactKind::MfaEnforcement,
        FactKind::GroupMembers,
    ],
    per_subject: &[FactKind::GroupMembers],
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

/// Client app types a sign-in can use.
const CLIENTS: [&str; 4] = [
    "browser",
    "mobileAppsAndDesktopClients",
    "exchangeActiveSync",
    "other",
];
/// Device platforms a sign-in can come from (`unknown`: any platform a
/// policy's list does not name).
const PLATFORMS: [&str; 7] = [
    "android",
    "iOS",
    "windows",
    "windowsPhone",
    "macOS",
    "linux",
    "unknown",
];

fn eq_any(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v.eq_ignore_ascii_case(value))
}

/// Whether a policy's client app condition includes `client`.
fn covers_client(p: &AccessPolicy, client: &str) -> bool {
    let c = &p.conditions.client_app_types;
    c.is_empty()
        || eq_any(c, "all")
        || eq_any(c, client)
        || (client == "exchangeActiveSync" && eq_any(c, "easSupported"))
}

/// Whether a policy's platform condition includes `platform`.
fn covers_platform(p: &AccessPolicy, platform: &str) -> bool {
    let c = &p.conditions;
    if c.include_platforms.is_empty() {
        return true;
    }
    let included = eq_any(&c.include_platforms, "all")
        || (platform != "unknown" && eq_any(&c.include_platforms, platform));
    let excluded = eq_any(&c.exclude_platforms, platform)
        || (platform == "unknown" && eq_any(&c.exclude_platforms, "unknownFutureValue"));
    included && !excluded
}

/// Conditions beyond users, client apps and platforms that narrow a policy,
/// described; empty when it applies to every such sign-in.
fn narrowing(p: &AccessPolicy) -> Vec<String> {
    let c = &p.conditions;
    let mut out = Vec::new();
    if !p.all_applications {
        out.push("applies to selected applications only".to_owned());
    }
    if !c.exclude_applications.is_empty() {
        out.push(format!(
            "excludes application(s) {}",
            c.exclude_applications.join(", ")
        ));
    }
    let all_locations = c.include_locations.is_empty()
        || (c.include_locations.len() == 1 && eq_any(&c.include_locations, "All"));
    if !all_locations {
        out.push(format!(
            "applies only from location(s) {}",
            c.include_locations.join(", ")
        ));
    }
    if !c.exclude_locations.is_empty() {
        let names: Vec<String> = c
            .exclude_locations
            .iter()
            .map(|l| {
                if l.eq_ignore_ascii_case("AllTrusted") {
                    "all trusted locations".to_owned()
                } else {
                    l.clone()
                }
            })
            .collect();
        out.push(format!("exempts sign-ins from {}", names.join(", ")));
    }
    if !c.sign_in_risk_levels.is_empty() {
        out.push(format!(
            "applies only at sign-in risk {}",
            c.sign_in_risk_levels.join(", ")
        ));
    }
    if !c.user_risk_levels.is_empty() {
        out.push(format!(
            "applies only at user risk {}",
            c.user_risk_levels.join(", ")
        ));
    }
    out.extend(c.other.iter().map(|o| format!("limited by {o}")));
    out
}

/// Whether a policy's location condition exempts some locations.
fn location_exempt(p: &AccessPolicy) -> bool {
    let c = &p.conditions;
    !c.exclude_locations.is_empty()
        || !(c.include_locations.is_empty()
            || (c.include_locations.len() == 1 && eq_any(&c.include_locations, "All")))
}

/// The uncovered (client, platform) cells, grouped for a sentence.
fn describe_gaps(covered: &[[bool; 7]; 4]) -> String {
    let mut parts = Vec::new();
    for (ci, client) in CLIENTS.iter().enumerate() {
        let open: Vec<&str> = PLATFORMS
            .iter()
            .enumerate()
            .filter(|(pi, _)| !covered[ci][*pi])
            .map(|(_, p)| *p)
            .collect();
        if open.is_empty() {
            continue;
        }
        if open.len() == PLATFORMS.len() {
            parts.push(format!("{client} on every platform"));
        } else {
            parts.push(format!("{client} on {}", open.join(", ")));
        }
    }
    parts.join("; ")
}

/// A policy's client and platform conditions, when it has any.
fn scope_of(p: &AccessPolicy) -> Option<String> {
    let c = &p.conditions;
    let clients = !(c.client_app_types.is_empty() || eq_any(&c.client_app_types, "all"));
    let every_platform = c.include_platforms.is_empty()
        || (eq_any(&c.include_platforms, "all") && c.exclude_platforms.is_empty());
    let platforms = !every_platform;
    let mut out = Vec::new();
    if clients {
        out.push(format!("client apps {}", c.client_app_types.join(", ")));
    }
    if platforms {
        let mut text = format!("platforms {}", c.include_platforms.join(", "));
        if !c.exclude_platforms.is_empty() {
            text.push_str(&format!(" except {}", c.exclude_platforms.join(", ")));
        }
        out.push(text);
    }
    (!out.is_empty()).then(|| out.join(" and "))
}

const LOCATION_NOTE: &str = "PCI DSS 8.4.2 requires MFA for all access into the cardholder data environment whatever the location; under HIPAA a location exemption must be justified in the risk analysis";

fn run(input: &CheckInput<'_>) -> Outcome {
    let empty = MfaEnforcement::default();
    let roles_known = input.facts.availability(FactKind::AdminRoles) == Availability::Complete;
    let mut evaluated = 0;
    let mut failing = Vec::new();
    let mut unproven = Vec::new();
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
        let mut covered = [[false; 7]; 4];
        let mut maybe = [[false; 7]; 4];
        let mut notes: Vec<String> = Vec::new();
        let mut report_only = Vec::new();
        let mut unresolved: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut location = false;
        for p in &enforcement.policies {
            let mfa_named = p.grant.split([':', ',']).any(|c| {
                let c = c.trim();
                c == "mfa" || c.starts_with("authenticationStrength")
            });
            if p.state == PolicyState::Disabled || !(p.requires_mfa || p.blocks || mfa_named) {
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
            if applies == Tri::No {
                if inc != Tri::No && exc == Tri::Yes && p.state == PolicyState::Enabled {
                    notes.push(format!(
                        "excluded from `{}` {}",
                        p.name,
                        how.unwrap_or_default()
                    ));
                }
                continue;
            }
            if p.state == PolicyState::ReportOnly {
                report_only.push(p.name.as_str());
                continue;
            }
            if !(p.requires_mfa || p.blocks) {
                notes.push(format!(
                    "`{}` does not enforce MFA: its grant ({}) can be satisfied without it",
                    p.name, p.grant
                ));
                continue;
            }
            let narrowed = narrowing(p);
            let cells = if narrowed.is_empty() {
                if applies == Tri::Yes {
                    &mut covered
                } else {
                    unresolved.entry(p.name.clone()).or_default().extend(groups);
                    &mut maybe
                }
            } else {
                if location_exempt(p) {
                    location = true;
                }
                notes.push(format!("`{}` {}", p.name, narrowed.join(", ")));
                continue;
            };
            for (ci, client) in CLIENTS.iter().enumerate() {
                for (pi, platform) in PLATFORMS.iter().enumerate() {
                    if covers_client(p, client) && covers_platform(p, platform) {
                        cells[ci][pi] = true;
                    }
                }
            }
            if let Some(scope) = scope_of(p) {
                notes.push(format!("`{}` covers only {scope}", p.name));
            }
        }
        let all = |c: &[[bool; 7]; 4]| c.iter().all(|row| row.iter().all(|x| *x));
        if all(&covered) {
            continue;
        }
        let mut either = covered;
        for (row, m) in either.iter_mut().zip(maybe.iter()) {
            for (x, y) in row.iter_mut().zip(m.iter()) {
                *x |= *y;
            }
        }
        let name = format!("{} <{}>", user.display_name, user.upn);
        let depends: Vec<String> = unresolved
            .iter()
            .map(|(policy, groups)| {
                let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
                if groups.is_empty() {
                    format!("`{policy}` targets directory roles that were not collected")
                } else {
                    format!("`{policy}` names group(s) {}", groups.join(", "))
                }
            })
            .collect();
        if all(&either) {
            unproven.push(Subject {
                id: user.id.clone(),
                name,
                detail: format!(
                    "coverage depends on memberships that were not collected: {}",
                    depends.join("; ")
                ),
            });
            continue;
        }
        // Uncovered even if every unknown membership went the account's way.
        let nothing = either.iter().all(|row| row.iter().all(|x| !*x));
        let mut detail = if nothing {
            "no enabled policy requiring MFA covers this account".to_owned()
        } else {
            format!("sign-ins not covered: {}", describe_gaps(&either))
        };
        if either != covered {
            notes.push(format!(
                "coverage of other sign-ins depends on memberships that were not collected: {}",
                depends.join("; ")
            ));
        }
        notes.dedup();
        if !notes.is_empty() {
            detail.push_str(&format!(" ({})", notes.join("; ")));
        }
        if !report_only.is_empty() {
            detail.push_str(&format!(
                " (report-only, so not enforced: {})",
                report_only.join(", ")
            ));
        }
        if location {
            detail.push_str(&format!(". {LOCATION_NOTE}"));
        }
        if user.is_admin {
            detail.push_str(" [admin]");
        }
        failing.push(Subject {
            id: user.id.clone(),
            name,
            detail,
        });
    }
    let note = match input.facts.availability(FactKind::GroupMembers) {
        Availability::Incomplete(why) if !unproven.is_empty() => {
            format!("group members incomplete: {why}")
        }
        _ => String::new(),
    };
    Outcome::judge_all(evaluated, failing, unproven, "enabled member accounts").note(&note)
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
            grant: "OR: mfa".into(),
            all_applications: true,
            include_users: vec!["All".into()],
            ..AccessPolicy::default()
        }
    }

    fn judge(users: Vec<User>, enforcement: MfaEnforcement) -> Outcome {
        let facts = complete(
            Facts {
                users,
                mfa_enforcement: [("m365".to_owned(), enforcement)].into(),
                ..Facts::default()
            },
            CHECK.needs,
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
    fn grant_operator_and_narrowing_conditions_are_judged_per_user() {
        use crate::facts::PolicyConditions;
        let ids_of = |e: MfaEnforcement| {
            let out = judge(users(), e);
            (
                out.failing.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
                out.failing
                    .first()
                    .map(|s| s.detail.clone())
                    .unwrap_or_default(),
            )
        };
        let everyone = ["m365:a", "m365:b", "m365:breakglass"];
        // OR with compliantDevice: a compliant device alone satisfies it.
        let mut or = policy("MFA or compliant", PolicyState::Enabled);
        or.requires_mfa = false;
        or.grant = "OR: mfa, compliantDevice".into();
        let (failing, detail) = ids_of(policies(vec![or]));
        assert_eq!(failing, everyone);
        assert!(detail.contains("can be satisfied without it"), "{detail}");
        // One client type on one platform leaves the rest uncovered.
        let mut narrow = policy("Browser on Android", PolicyState::Enabled);
        narrow.conditions = PolicyConditions {
            client_app_types: vec!["browser".into()],
            include_platforms: vec!["android".into()],
            ..PolicyConditions::default()
        };
        let (failing, detail) = ids_of(policies(vec![narrow]));
        assert_eq!(failing, everyone);
        assert!(
            detail.contains("mobileAppsAndDesktopClients on every platform"),
            "{detail}"
        );
        assert!(detail.contains("browser on iOS"), "{detail}");
        // Modern clients require MFA and legacy clients are blocked: covered.
        let mut modern = policy("MFA modern", PolicyState::Enabled);
        modern.conditions.client_app_types =
            vec!["browser".into(), "mobileAppsAndDesktopClients".into()];
        let mut legacy = policy("Block legacy", PolicyState::Enabled);
        legacy.requires_mfa = false;
        legacy.blocks = true;
        legacy.conditions.client_app_types = vec!["exchangeActiveSync".into(), "other".into()];
        assert!(ids_of(policies(vec![modern, legacy])).0.is_empty());
        // MFA except from trusted locations: named, with the PCI note.
        let mut trusted = policy("MFA off-site", PolicyState::Enabled);
        trusted.conditions.include_locations = vec!["All".into()];
        trusted.conditions.exclude_locations = vec!["AllTrusted".into()];
        let (failing, detail) = ids_of(policies(vec![trusted]));
        assert_eq!(failing, everyone);
        assert!(
            detail.contains("exempts sign-ins from all trusted locations"),
            "{detail}"
        );
        assert!(detail.contains("PCI DSS 8.4.2"), "{detail}");
        // Excluded applications and risk-only policies do not cover.
        let mut apps = policy("All but one app", PolicyState::Enabled);
        apps.conditions.exclude_applications = vec!["app-1".into()];
        let mut risky = policy("Risky only", PolicyState::Enabled);
        risky.conditions.sign_in_risk_levels = vec!["high".into()];
        let (failing, detail) = ids_of(policies(vec![apps, risky]));
        assert_eq!(failing, everyone);
        assert!(detail.contains("excludes application(s) app-1"), "{detail}");
        assert!(detail.contains("sign-in risk high"), "{detail}");
        // A second, unnarrowed policy covers what a narrowed one leaves.
        let mut trusted = policy("MFA off-site", PolicyState::Enabled);
        trusted.conditions.exclude_locations = vec!["AllTrusted".into()];
        let all = policy("Require MFA", PolicyState::Enabled);
        assert!(ids_of(policies(vec![trusted, all])).0.is_empty());
    }

    #[test]
    fn unresolvable_group_exclusion_is_inconclusive_and_named() {
        let mut p = policy("Require MFA", PolicyState::Enabled);
        p.exclude_groups = vec!["g-unknown".into()];
        let out = judge(users(), policies(vec![p]));
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(out.summary.contains("g-unknown"), "{}", out.summary);
        let unproven: Vec<&str> = out.unproven.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(unproven, ["m365:a", "m365:b", "m365:breakglass"]);
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
                FactKind::GroupMembers,
                FactKind::AdminRoles,
            ],
        );
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(ids(&out), ["m365:a"]);
    }

    /// Facts with group members refused (HTTP 403) and everything else
    /// complete.
    fn without_group_members(users: Vec<User>, enforcement: MfaEnforcement) -> Facts {
        let mut facts = complete(
            Facts {
                users,
                mfa_enforcement: [("m365".to_owned(), enforcement)].into(),
                ..Facts::default()
            },
            &[FactKind::Users, FactKind::MfaEnforcement],
        );
        facts.provide(
            FactKind::GroupMembers,
            crate::facts::Provenance {
                source: "m365".into(),
                dataset: "groupMembers".into(),
                status: crate::run::DatasetStatus::Failed,
                reason: Some("page 1 failed: HTTP 403; the app needs GroupMember.Read.All".into()),
                evidence: Vec::new(),
            },
        );
        facts
    }

    #[test]
    fn unreadable_group_members_leave_only_the_accounts_that_depend_on_them_unproven() {
        // `Pilot` covers its group's members, whoever they are, except `c`
        // and `d`; `Admins` covers `a` by name; `Browser` covers browsers of
        // group g-web except `d`: no policy can cover `d` whatever its groups.
        let mut pilot = policy("Pilot", PolicyState::Enabled);
        pilot.include_users = vec![];
        pilot.include_groups = vec!["g-pilot".into()];
        pilot.exclude_users = vec!["c".into(), "d".into()];
        let mut admins = policy("Admins", PolicyState::Enabled);
        admins.include_users = vec!["a".into()];
        let mut browser = policy("Browser", PolicyState::Enabled);
        browser.include_users = vec![];
        browser.include_groups = vec!["g-web".into()];
        browser.conditions.client_app_types = vec!["browser".into()];
        browser.exclude_users = vec!["d".into()];
        let users = vec![
            user("a", true, UserType::Member),
            user("b", true, UserType::Member),
            user("c", true, UserType::Member),
            user("d", true, UserType::Member),
            user("guest", true, UserType::Guest),
        ];
        let facts = without_group_members(users, policies(vec![pilot, admins, browser]));
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Fail, "{}", out.summary);
        assert_eq!(ids(&out), ["m365:c", "m365:d"]);
        let unproven: Vec<&str> = out.unproven.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(unproven, ["m365:b"], "a is covered by name, c and d fail");
        assert!(
            out.unproven[0]
                .detail
                .contains("`Pilot` names group(s) g-pilot"),
            "{}",
            out.unproven[0].detail
        );
        // `c` could be in g-web, whose policy covers browsers only: the rest
        // stays open whatever the membership, and the finding says both.
        let c = &out.failing[0].detail;
        assert!(
            c.contains("sign-ins not covered: mobileAppsAndDesktopClients on every platform"),
            "{c}"
        );
        assert!(!c.contains("browser on"), "{c}");
        assert!(
            c.contains("depends on memberships that were not collected"),
            "{c}"
        );
        let d = &out.failing[1].detail;
        assert!(
            d.starts_with("no enabled policy requiring MFA covers this account"),
            "{d}"
        );
        assert!(!d.contains("depends on memberships"), "{d}");
        assert!(
            out.summary.contains("GroupMember.Read.All"),
            "{}",
            out.summary
        );
        // With the members read, the same policies judge everyone.
        let mut known = policies(facts.mfa_enforcement["m365"].policies.clone());
        known
            .group_members
            .insert("g-pilot".into(), vec!["b".into()]);
        known.group_members.insert("g-web".into(), vec![]);
        let out = judge(facts.users.clone(), known);
        assert_eq!(ids(&out), ["m365:c", "m365:d"]);
        assert!(out.unproven.is_empty());
    }

    #[test]
    fn incomplete_policies_leave_the_whole_check_inconclusive() {
        let mut facts = without_group_members(
            users(),
            policies(vec![policy("Require MFA", PolicyState::Enabled)]),
        );
        facts.provide(
            FactKind::MfaEnforcement,
            crate::facts::Provenance {
                source: "m365".into(),
                dataset: "conditionalAccessPolicies".into(),
                status: crate::run::DatasetStatus::Partial,
                reason: Some("page 2 failed".into()),
                evidence: Vec::new(),
            },
        );
        let out = run_with(&CHECK, &facts, &Limits::DEFAULT);
        assert_eq!(out.verdict, Verdict::Inconclusive);
        assert!(out.failing.is_empty() && out.unproven.is_empty());
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
