//! Microsoft 365 evidence to facts: users with sign-in, MFA registration and
//! directory roles; MFA enforcement (Conditional Access, security defaults,
//! group members); access reviews; Secure Score. Devices are read by
//! [`super::intune`] and [`super::defender`].
//!
//! Each kind of fact is provided only from the datasets that carry it, so a
//! dataset that failed makes only the checks needing it inconclusive.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::dataset;
use super::graph::{segment_after, value_array};
use crate::facts::{
    parse_time, str_field, AccessPolicy, AccessReview, FactKind, Facts, MfaEnforcement, MfaState,
    PolicyConditions, PolicyState, ReviewDecision, ReviewInstance, ReviewItem, RoleHeld,
    SecureScore, SignInBasis, SourceEvidence, User, UserType,
};

/// Directory role templates that grant administrative power (Microsoft marks
/// these "privileged"), with their names.
pub const PRIVILEGED_ROLES: &[(&str, &str)] = &[
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
    ),
    (
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
    ),
    (
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
    (
        "966707d0-3269-4727-9be2-8c3a10f19b9d",
        "Password Administrator",
    ),
    (
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "Intune Administrator",
    ),
    (
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
        "Hybrid Identity Administrator",
    ),
    (
        "8329153b-31d0-4727-b945-745eb3bc5f31",
        "Domain Name Administrator",
    ),
    (
        "be2f45a1-457d-42af-a067-6ec1fa63bc45",
        "External Identity Provider Administrator",
    ),
    (
        "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8",
        "Partner Tier2 Support",
    ),
    (
        "4ba39ca4-527c-499a-b93d-d9b492c50246",
        "Partner Tier1 Support",
    ),
    (
        "d29b2b05-8046-44ba-8758-1e26182fcf32",
        "Directory Synchronization Accounts",
    ),
    (
        "9f06204d-73c1-4d4c-880a-6edb90606fd8",
        "Azure AD Joined Device Local Administrator",
    ),
    (
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        "Groups Administrator",
    ),
    (
        "17315797-102d-40b4-93e0-432062caca18",
        "Compliance Administrator",
    ),
    (
        "69091246-20e8-4a56-aa4d-066075b2a7a8",
        "Teams Administrator",
    ),
    (
        "b0f54661-2d74-4c50-afa3-1ec803f12efe",
        "Billing Administrator",
    ),
];

/// Whether `template` is a privileged directory role, and its name.
pub fn privileged_role(template: &str) -> Option<&'static str> {
    PRIVILEGED_ROLES
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(template))
        .map(|(_, name)| *name)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let roles = roles(src, facts);
    users(src, facts, &roles);
    mfa_enforcement(src, facts);
    access_reviews(src, facts);
    secure_score(src, facts);
    super::intune::normalise(src, facts);
    super::defender::normalise(src, facts);
    super::incidents::normalise(src, facts);
}

/// Roles per principal object id, from role assignments (names from role definitions).
fn roles(src: &SourceEvidence<'_>, facts: &mut Facts) -> Option<HashMap<String, Vec<RoleHeld>>> {
    if !src.report.datasets.contains_key(dataset::ROLE_ASSIGNMENTS) {
        return None;
    }
    let mut problems = Vec::new();
    let mut definitions: HashMap<&str, (Option<&str>, &str)> = HashMap::new();
    for (_, d) in src.records(dataset::ROLE_DEFINITIONS, value_array, &mut problems) {
        if let Some(id) = str_field(d, "id") {
            let template = str_field(d, "templateId").unwrap_or(id);
            definitions.insert(id, (str_field(d, "displayName"), template));
        }
    }
    problems.clear();
    let mut held: HashMap<String, Vec<RoleHeld>> = HashMap::new();
    // Roles assigned to groups (role-assignable groups), by group id, with the
    // group's label for the users who hold them through it.
    let mut group_roles: BTreeMap<String, (String, Vec<RoleHeld>)> = BTreeMap::new();
    for (path, a) in src.records(dataset::ROLE_ASSIGNMENTS, value_array, &mut problems) {
        let (Some(principal), Some(role)) = (
            str_field(a, "principalId"),
            str_field(a, "roleDefinitionId"),
        ) else {
            problems.push(format!(
                "{path}: role assignment without principalId or roleDefinitionId"
            ));
            continue;
        };
        let (name, template) = definitions.get(role).copied().unwrap_or((None, role));
        let known = privileged_role(template);
        let role = RoleHeld {
            role_id: template.to_owned(),
            name: name.or(known).map(str::to_owned),
            privileged: known.is_some(),
            via_group: None,
        };
        let expanded = a.get("principal");
        let is_group =
            expanded.and_then(|p| str_field(p, "@odata.type")) == Some("#microsoft.graph.group");
        if is_group {
            let label = match expanded.and_then(|p| str_field(p, "displayName")) {
                Some(group_name) => format!("{group_name} ({principal})"),
                None => principal.to_owned(),
            };
            let entry = group_roles
                .entry(principal.to_owned())
                .or_insert_with(|| (label, Vec::new()));
            entry.1.push(role);
        } else {
            held.entry(principal.to_owned()).or_default().push(role);
        }
    }
    let group_members = src
        .report
        .datasets
        .contains_key(dataset::ROLE_GROUP_MEMBERS);
    if !group_roles.is_empty() && !group_members {
        problems.push(format!(
            "{} group(s) hold directory roles but their members were not collected",
            group_roles.len()
        ));
    }
    facts.provide(
        FactKind::AdminRoles,
        src.provenance(dataset::ROLE_ASSIGNMENTS, &problems),
    );
    if group_members {
        let mut problems = Vec::new();
        for (path, page) in src
            .pages
            .get(dataset::ROLE_GROUP_MEMBERS)
            .into_iter()
            .flatten()
        {
            let Some(group) = src.url_of(path).and_then(|u| segment_after(u, "groups")) else {
                problems.push(format!("{path}: the custody log does not name its group"));
                continue;
            };
            let Some((label, roles)) = group_roles.get(group) else {
                problems.push(format!("{path}: group {group} holds no role assignment"));
                continue;
            };
            let Some(members) = value_array(page) else {
                problems.push(format!("{path}: no record array"));
                continue;
            };
            for member in members {
                let Some(user) = str_field(member, "id") else {
                    problems.push(format!("{path}: group member without id"));
                    continue;
                };
                held.entry(user.to_owned())
                    .or_default()
                    .extend(roles.iter().map(|r| RoleHeld {
                        via_group: Some(label.clone()),
                        ..r.clone()
                    }));
            }
        }
        facts.provide(
            FactKind::AdminRoles,
            src.provenance(dataset::ROLE_GROUP_MEMBERS, &problems),
        );
    }
    Some(held)
}

fn users(
    src: &SourceEvidence<'_>,
    facts: &mut Facts,
    roles: &Option<HashMap<String, Vec<RoleHeld>>>,
) {
    let mut problems = Vec::new();
    let mut registration: HashMap<&str, MfaState> = HashMap::new();
    let mut admins: HashMap<&str, bool> = HashMap::new();
    for (path, r) in src.records(dataset::REGISTRATION, value_array, &mut problems) {
        let Some(id) = str_field(r, "id") else {
            problems.push(format!("{path}: registration record without id"));
            continue;
        };
        let flag = |k| r.get(k).and_then(Value::as_bool).unwrap_or(false);
        // A record that does not say (absent or null) is no evidence either
        // way: the user is unproven, not unregistered.
        registration.insert(
            id,
            MfaState {
                registered: r.get("isMfaRegistered").and_then(Value::as_bool),
                capable: r.get("isMfaCapable").and_then(Value::as_bool),
                methods: strings(r.get("methodsRegistered")),
            },
        );
        admins.insert(id, flag("isAdmin"));
    }
    let reg_provenance = src.provenance(dataset::REGISTRATION, &problems);

    let mut problems = Vec::new();
    let mut users = Vec::new();
    for (path, r) in src.records(dataset::USERS, value_array, &mut problems) {
        let (Some(id), Some(upn)) = (str_field(r, "id"), str_field(r, "userPrincipalName")) else {
            problems.push(format!("{path}: user without id or userPrincipalName"));
            continue;
        };
        let Some(enabled) = r.get("accountEnabled").and_then(Value::as_bool) else {
            problems.push(format!("{path}: user {id} without accountEnabled"));
            continue;
        };
        let user_type = match str_field(r, "userType") {
            Some(t) if t.eq_ignore_ascii_case("guest") => UserType::Guest,
            _ => UserType::Member,
        };
        let (last_sign_in, sign_in_basis) = sign_in(r.get("signInActivity"));
        let held = roles
            .as_ref()
            .and_then(|r| r.get(id))
            .cloned()
            .unwrap_or_default();
        // Role assignments are the authority when collected; the registration
        // report's `isAdmin` fills in when they are not.
        let is_admin = match roles {
            Some(_) => held.iter().any(|r| r.privileged),
            None => admins.get(id).copied().unwrap_or(false),
        };
        users.push(User {
            id: format!("{}:{id}", src.name),
            upn: upn.to_owned(),
            display_name: str_field(r, "displayName").unwrap_or(upn).to_owned(),
            enabled,
            user_type,
            last_sign_in,
            sign_in_basis,
            created: parse_time(r.get("createdDateTime")),
            mfa: registration.get(id).cloned(),
            is_admin,
            roles: held,
        });
    }
    let users_provenance = src.provenance(dataset::USERS, &problems);
    let sign_in = if src.report.datasets.contains_key(dataset::SIGN_IN_ACTIVITY) {
        src.provenance(dataset::SIGN_IN_ACTIVITY, &[])
    } else {
        users_provenance.clone()
    };
    facts.users.extend(users);
    facts.provide(FactKind::Users, users_provenance);
    facts.provide(FactKind::SignInActivity, sign_in);
    facts.provide(FactKind::MfaRegistration, reg_provenance);
}

/// The last sign-in a user's `signInActivity` shows, and what it rests on.
/// `lastSignInDateTime` and `lastNonInteractiveSignInDateTime` record
/// attempts, failed ones too; `lastSuccessfulSignInDateTime` the last
/// success, and where that field exists it alone decides. A missing
/// `signInActivity` says nothing; a `null` one means never signed in. Graph's
/// `0001-01-01T00:00:00Z` reads as no date.
pub(super) fn sign_in(activity: Option<&Value>) -> (Option<DateTime<Utc>>, SignInBasis) {
    match activity {
        None => (None, SignInBasis::NotReported),
        Some(Value::Null) => (None, SignInBasis::Success),
        Some(a) => match a.get("lastSuccessfulSignInDateTime") {
            Some(success) => (parse_time(Some(success)), SignInBasis::Success),
            None => (
                ["lastSignInDateTime", "lastNonInteractiveSignInDateTime"]
                    .iter()
                    .filter_map(|k| parse_time(a.get(*k)))
                    .max(),
                SignInBasis::AttemptsOnly,
            ),
        },
    }
}

/// What a grant demands: `(requires MFA, blocks, description)`. Under `OR`
/// any one listed control satisfies the grant, so MFA is required only when
/// every alternative is MFA (built-in `mfa` or an authentication strength);
/// under `AND` (or with a single control) when `mfa` or a strength is among
/// them.
fn grant_of(g: Option<&Value>) -> (bool, bool, String) {
    let Some(g) = g.filter(|g| g.is_object()) else {
        return (false, false, "no grant controls".to_owned());
    };
    let built_in = strings(g.get("builtInControls"));
    let strength = g
        .get("authenticationStrength")
        .filter(|s| s.is_object())
        .map(|s| {
            format!(
                "authenticationStrength {}",
                str_field(s, "displayName")
                    .or_else(|| str_field(s, "id"))
                    .unwrap_or("(unnamed)")
            )
        });
    let mut alternatives: Vec<String> = built_in.clone();
    alternatives.extend(strength.clone());
    alternatives.extend(
        strings(g.get("customAuthenticationFactors"))
            .into_iter()
            .map(|c| format!("custom factor {c}")),
    );
    alternatives.extend(
        strings(g.get("termsOfUse"))
            .into_iter()
            .map(|t| format!("terms of use {t}")),
    );
    let operator = str_field(g, "operator").unwrap_or("OR");
    let is_mfa = |c: &str| c == "mfa" || c.starts_with("authenticationStrength");
    let blocks = built_in.iter().any(|c| c == "block");
    let requires_mfa = !blocks
        && if operator.eq_ignore_ascii_case("AND") || alternatives.len() <= 1 {
            alternatives.iter().any(|c| is_mfa(c))
        } else {
            !alternatives.is_empty() && alternatives.iter().all(|c| is_mfa(c))
        };
    (
        requires_mfa,
        blocks,
        format!("{operator}: {}", alternatives.join(", ")),
    )
}

/// The conditions of a policy that narrow what it covers.
fn conditions(p: &Value) -> PolicyConditions {
    let c = p.get("conditions");
    let at = |ptr: &str| strings(c.and_then(|c| c.pointer(ptr)));
    let guests = |key: &str| {
        c.and_then(|c| c.pointer(&format!("/users/{key}")))
            .filter(|g| g.is_object())
            .map(|g| {
                str_field(g, "guestOrExternalUserTypes")
                    .unwrap_or("guests or external users")
                    .to_owned()
            })
    };
    let mut other = Vec::new();
    if let Some(filter) = c
        .and_then(|c| c.pointer("/devices/deviceFilter"))
        .filter(|f| f.is_object())
    {
        other.push(format!(
            "device filter ({} `{}`)",
            str_field(filter, "mode").unwrap_or("include"),
            str_field(filter, "rule").unwrap_or("")
        ));
    }
    for (key, what) in [
        ("insiderRiskLevels", "insider risk"),
        ("servicePrincipalRiskLevels", "service principal risk"),
    ] {
        if let Some(v) = c.and_then(|c| c.get(key)).filter(|v| !v.is_null()) {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            if !text.is_empty() && text != "[]" {
                other.push(format!("{what} {text}"));
            }
        }
    }
    if let Some(flows) = c
        .and_then(|c| c.pointer("/authenticationFlows/transferMethods"))
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty() && *f != "none")
    {
        other.push(format!("authentication flows {flows}"));
    }
    PolicyConditions {
        client_app_types: at("/clientAppTypes"),
        include_platforms: at("/platforms/includePlatforms"),
        exclude_platforms: at("/platforms/excludePlatforms"),
        include_locations: at("/locations/includeLocations"),
        exclude_locations: at("/locations/excludeLocations"),
        exclude_applications: at("/applications/excludeApplications"),
        sign_in_risk_levels: at("/signInRiskLevels"),
        user_risk_levels: at("/userRiskLevels"),
        exclude_guest_types: guests("excludeGuestsOrExternalUsers"),
        include_guest_types: guests("includeGuestsOrExternalUsers"),
        other,
    }
}

/// A Conditional Access policy as the MFA checks need it.
pub(super) fn access_policy(p: &Value) -> Option<AccessPolicy> {
    let id = str_field(p, "id")?;
    let state = match str_field(p, "state")? {
        "enabled" => PolicyState::Enabled,
        "enabledForReportingButNotEnforced" => PolicyState::ReportOnly,
        _ => PolicyState::Disabled,
    };
    let (requires_mfa, blocks, grant) = grant_of(p.get("grantControls"));
    let users = p.pointer("/conditions/users");
    let list = |k: &str| strings(users.and_then(|u| u.get(k)));
    Some(AccessPolicy {
        id: id.to_owned(),
        name: str_field(p, "displayName").unwrap_or(id).to_owned(),
        state,
        requires_mfa,
        blocks,
        grant,
        conditions: conditions(p),
        all_applications: strings(p.pointer("/conditions/applications/includeApplications"))
            .iter()
            .any(|a| a == "All"),
        include_users: list("includeUsers"),
        exclude_users: list("excludeUsers"),
        include_groups: list("includeGroups"),
        exclude_groups: list("excludeGroups"),
        include_roles: list("includeRoles"),
        exclude_roles: list("excludeRoles"),
    })
}

fn mfa_enforcement(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let collected = [
        dataset::CONDITIONAL_ACCESS,
        dataset::SECURITY_DEFAULTS,
        dataset::GROUP_MEMBERS,
    ]
    .into_iter()
    .filter(|d| src.report.datasets.contains_key(*d))
    .count();
    if collected == 0 {
        return;
    }
    let mut enforcement = MfaEnforcement::default();
    let mut problems = Vec::new();
    for (path, p) in src.records(dataset::CONDITIONAL_ACCESS, value_array, &mut problems) {
        match access_policy(p) {
            Some(policy) => enforcement.policies.push(policy),
            None => problems.push(format!("{path}: policy without id or state")),
        }
    }
    facts.provide(
        FactKind::MfaEnforcement,
        src.provenance(dataset::CONDITIONAL_ACCESS, &problems),
    );

    let mut problems = Vec::new();
    for (path, page) in src
        .pages
        .get(dataset::SECURITY_DEFAULTS)
        .into_iter()
        .flatten()
    {
        match page.get("isEnabled").and_then(Value::as_bool) {
            Some(on) => enforcement.security_defaults = Some(on),
            None => problems.push(format!("{path}: no isEnabled")),
        }
    }
    facts.provide(
        FactKind::MfaEnforcement,
        src.provenance(dataset::SECURITY_DEFAULTS, &problems),
    );

    let (members, problems) = group_members(src);
    enforcement.group_members = members;
    facts.provide(
        FactKind::GroupMembers,
        src.provenance(dataset::GROUP_MEMBERS, &problems),
    );
    facts
        .mfa_enforcement
        .insert(src.name.to_owned(), enforcement);
}

/// The members of every policy group whose member list was read to its end
/// (its last stored page has no `@odata.nextLink`), and the problems met. A
/// group whose paging stopped early (the dataset is then partial) or whose
/// pages are unreadable is left out, so that its membership reads as unknown
/// rather than as a shorter list: a user missing from half a list is not
/// proven outside the group.
fn group_members(src: &SourceEvidence<'_>) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut problems = Vec::new();
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Per group: whether its last page read so far announced another one
    // (or could not be read).
    let mut open: BTreeMap<String, bool> = BTreeMap::new();
    for (path, page) in src.pages.get(dataset::GROUP_MEMBERS).into_iter().flatten() {
        let Some(group) = src.url_of(path).and_then(|u| segment_after(u, "groups")) else {
            problems.push(format!("{path}: the custody log does not name its group"));
            continue;
        };
        let list = members.entry(group.to_owned()).or_default();
        let more = page.get("@odata.nextLink").is_some_and(|l| !l.is_null());
        match value_array(page) {
            Some(items) => {
                list.extend(
                    items
                        .iter()
                        .filter_map(|m| str_field(m, "id"))
                        .map(str::to_owned),
                );
                open.insert(group.to_owned(), more);
            }
            None => {
                problems.push(format!("{path}: no record array"));
                open.insert(group.to_owned(), true);
            }
        }
    }
    let unfinished: Vec<String> = open
        .into_iter()
        .filter_map(|(group, open)| open.then_some(group))
        .collect();
    let complete = src
        .report
        .datasets
        .get(dataset::GROUP_MEMBERS)
        .is_some_and(|d| d.status == crate::evidence::DatasetStatus::Complete);
    for group in &unfinished {
        members.remove(group);
        // A complete dataset whose group still announced a page (a paging
        // bound hit): not complete after all.
        if complete {
            problems.push(format!(
                "the members of group {group} were not read to their last page"
            ));
        }
    }
    (members, problems)
}

/// Every `query` string in an access review scope (nested scopes included).
fn scope_queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("query", Value::String(q)) => out.push(q.clone()),
                    _ => scope_queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| scope_queries(i, out)),
        _ => {}
    }
}

/// Whether a scope query limits the review to guests.
pub(super) fn is_guest_scope(query: &str) -> bool {
    let compact: String = query
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    compact.contains("usertypeeq'guest'")
}

fn decision(text: Option<&str>) -> Option<ReviewDecision> {
    Some(match text? {
        "Approve" => ReviewDecision::Approve,
        "Deny" => ReviewDecision::Deny,
        "NotReviewed" => ReviewDecision::NotReviewed,
        "DontKnow" => ReviewDecision::DontKnow,
        _ => return None,
    })
}

fn access_reviews(src: &SourceEvidence<'_>, facts: &mut Facts) {
    if !src
        .report
        .datasets
        .contains_key(dataset::REVIEW_DEFINITIONS)
    {
        return;
    }
    let mut problems = Vec::new();
    let mut decisions: HashMap<String, Vec<ReviewItem>> = HashMap::new();
    for (path, page) in src
        .pages
        .get(dataset::REVIEW_DECISIONS)
        .into_iter()
        .flatten()
    {
        let from_url = src.url_of(path).and_then(|u| segment_after(u, "instances"));
        for d in value_array(page).into_iter().flatten() {
            let Some(instance) = from_url.or_else(|| str_field(d, "accessReviewId")) else {
                problems.push(format!("{path}: decision without its instance"));
                continue;
            };
            let principal = d.get("principal");
            let (Some(pid), Some(kind)) = (
                principal.and_then(|p| str_field(p, "id")),
                decision(str_field(d, "decision")),
            ) else {
                problems.push(format!(
                    "{path}: decision without principal or a known decision"
                ));
                continue;
            };
            let name = principal
                .and_then(|p| str_field(p, "displayName").filter(|n| !n.is_empty()))
                .or_else(|| principal.and_then(|p| str_field(p, "userPrincipalName")))
                .unwrap_or(pid);
            decisions
                .entry(instance.to_owned())
                .or_default()
                .push(ReviewItem {
                    principal_id: format!("{}:{pid}", src.name),
                    principal_name: name.to_owned(),
                    decision: kind,
                    reviewed: parse_time(d.get("reviewedDateTime")),
                    apply_result: str_field(d, "applyResult").map(str::to_owned),
                    applied: parse_time(d.get("appliedDateTime")),
                });
        }
    }
    let decisions_provenance = src.provenance(dataset::REVIEW_DECISIONS, &problems);

    let mut problems = Vec::new();
    let mut instances: HashMap<String, Vec<ReviewInstance>> = HashMap::new();
    for (path, page) in src
        .pages
        .get(dataset::REVIEW_INSTANCES)
        .into_iter()
        .flatten()
    {
        let Some(def) = src
            .url_of(path)
            .and_then(|u| segment_after(u, "definitions"))
        else {
            problems.push(format!("{path}: the custody log does not name its review"));
            continue;
        };
        for i in value_array(page).into_iter().flatten() {
            let Some(id) = str_field(i, "id") else {
                problems.push(format!("{path}: instance without id"));
                continue;
            };
            let mut items = decisions.remove(id).unwrap_or_default();
            items.sort_by(|a, b| a.principal_id.cmp(&b.principal_id));
            instances
                .entry(def.to_owned())
                .or_default()
                .push(ReviewInstance {
                    id: id.to_owned(),
                    status: str_field(i, "status").unwrap_or("Unknown").to_owned(),
                    start: parse_time(i.get("startDateTime")),
                    end: parse_time(i.get("endDateTime")),
                    decisions: items,
                });
        }
    }
    let instances_provenance = src.provenance(dataset::REVIEW_INSTANCES, &problems);

    let mut problems = Vec::new();
    for (path, d) in src.records(dataset::REVIEW_DEFINITIONS, value_array, &mut problems) {
        let Some(id) = str_field(d, "id") else {
            problems.push(format!("{path}: review definition without id"));
            continue;
        };
        let mut queries = Vec::new();
        for key in ["scope", "instanceEnumerationScope"] {
            if let Some(scope) = d.get(key) {
                scope_queries(scope, &mut queries);
            }
        }
        let mut list = instances.remove(id).unwrap_or_default();
        list.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        facts.access_reviews.push(AccessReview {
            id: format!("{}:{id}", src.name),
            name: str_field(d, "displayName").unwrap_or(id).to_owned(),
            guests: queries.iter().any(|q| is_guest_scope(q)),
            scope: queries.join("; "),
            status: str_field(d, "status").unwrap_or("Unknown").to_owned(),
            instances: list,
        });
    }
    facts.provide(
        FactKind::AccessReviews,
        src.provenance(dataset::REVIEW_DEFINITIONS, &problems),
    );
    facts.provide(FactKind::AccessReviews, instances_provenance);
    facts.provide(FactKind::AccessReviews, decisions_provenance);
}

fn secure_score(src: &SourceEvidence<'_>, facts: &mut Facts) {
    if !src.report.datasets.contains_key(dataset::SECURE_SCORES) {
        return;
    }
    let mut problems = Vec::new();
    let latest = src
        .records(dataset::SECURE_SCORES, value_array, &mut problems)
        .into_iter()
        .filter_map(|(_, s)| {
            Some(SecureScore {
                current: s.get("currentScore")?.as_f64()?,
                max: s.get("maxScore")?.as_f64()?,
                created: parse_time(s.get("createdDateTime")),
            })
        })
        .max_by_key(|s| s.created);
    if let Some(score) = latest {
        facts.secure_score.insert(src.name.to_owned(), score);
    }
    facts.provide(
        FactKind::SecureScore,
        src.provenance(dataset::SECURE_SCORES, &problems),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_read_mfa_strength_and_report_only() {
        let p = json!({"id": "p", "displayName": "x", "state": "enabledForReportingButNotEnforced",
            "conditions": {"users": {"includeUsers": ["All"], "excludeGroups": ["g"]}, "applications": {"includeApplications": ["All"]}},
            "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "s"}}});
        let a = access_policy(&p).expect("policy");
        assert_eq!(a.state, PolicyState::ReportOnly);
        assert!(a.requires_mfa && a.all_applications);
        assert_eq!(a.exclude_groups, vec!["g".to_owned()]);
        let block = json!({"id": "b", "state": "enabled", "grantControls": {"builtInControls": ["block"], "authenticationStrength": null}});
        let b = access_policy(&block).expect("policy");
        assert!(!b.requires_mfa && b.blocks);
        // OR with a compliant device: a compliant device alone satisfies it.
        let or = json!({"id": "o", "state": "enabled", "grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}});
        assert!(!access_policy(&or).expect("policy").requires_mfa);
        let and = json!({"id": "a", "state": "enabled", "grantControls": {"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}});
        assert!(access_policy(&and).expect("policy").requires_mfa);
        let strength_or = json!({"id": "s", "state": "enabled", "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "authenticationStrength": {"id": "x", "displayName": "Phishing-resistant MFA"}}});
        assert!(access_policy(&strength_or).expect("policy").requires_mfa);
        let narrowed = json!({"id": "n", "state": "enabled",
            "conditions": {"clientAppTypes": ["browser"], "platforms": {"includePlatforms": ["android"], "excludePlatforms": []},
                "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
                "applications": {"includeApplications": ["All"], "excludeApplications": ["app-1"]},
                "signInRiskLevels": ["high"], "users": {"includeUsers": ["All"], "excludeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "internalGuest"}}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}});
        let c = access_policy(&narrowed).expect("policy").conditions;
        assert_eq!(c.client_app_types, ["browser"]);
        assert_eq!(c.include_platforms, ["android"]);
        assert_eq!(c.exclude_locations, ["AllTrusted"]);
        assert_eq!(c.exclude_applications, ["app-1"]);
        assert_eq!(c.sign_in_risk_levels, ["high"]);
        assert_eq!(c.exclude_guest_types.as_deref(), Some("internalGuest"));
    }

    #[test]
    fn sign_in_rests_on_the_last_success() {
        let t = |s: &str| parse_time(Some(&json!(s)));
        let (at, basis) = sign_in(Some(&json!({
            "lastSignInDateTime": "2026-05-30T00:00:00Z",
            "lastSuccessfulSignInDateTime": "2025-11-01T00:00:00Z"})));
        assert_eq!(
            (at, basis),
            (t("2025-11-01T00:00:00Z"), SignInBasis::Success)
        );
        let (at, basis) = sign_in(Some(&json!({"lastSignInDateTime": "2026-05-30T00:00:00Z",
            "lastNonInteractiveSignInDateTime": "0001-01-01T00:00:00Z"})));
        assert_eq!(
            (at, basis),
            (t("2026-05-30T00:00:00Z"), SignInBasis::AttemptsOnly)
        );
        let (at, _) = sign_in(Some(
            &json!({"lastSuccessfulSignInDateTime": "0001-01-01T00:00:00Z",
            "lastSignInDateTime": "2026-05-30T00:00:00Z"}),
        ));
        assert_eq!(at, None, "0001-01-01 is never");
        assert_eq!(sign_in(None), (None, SignInBasis::NotReported));
        assert_eq!(sign_in(Some(&Value::Null)), (None, SignInBasis::Success));
    }

    #[test]
    fn guest_scopes_and_url_segments() {
        assert!(is_guest_scope("/users?$filter=(userType eq 'Guest')"));
        assert!(is_guest_scope(
            "./members/microsoft.graph.user/?$filter=(userType eq 'guest')"
        ));
        assert!(!is_guest_scope("/groups/1/transitiveMembers"));
        assert_eq!(
            segment_after(
                "http://h/v1.0/groups/abc/transitiveMembers?$top=1",
                "groups"
            ),
            Some("abc")
        );
        assert_eq!(segment_after("http://h/v1.0/users", "groups"), None);
        assert_eq!(
            privileged_role("62E90394-69F5-4237-9190-012177145E10"),
            Some("Global Administrator")
        );
        assert_eq!(
            privileged_role("f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
            None
        );
    }

    #[test]
    fn a_group_whose_members_were_not_read_to_the_end_is_unknown_not_shorter() {
        use crate::evidence::{DatasetReport, DatasetStatus, SourceReport, SourceStatus};
        let report = SourceReport {
            source_type: "m365".into(),
            status: SourceStatus::Partial,
            reason: None,
            datasets: [(
                dataset::GROUP_MEMBERS.to_owned(),
                DatasetReport {
                    status: DatasetStatus::Partial,
                    pages: 2,
                    records: 3,
                    reason: Some("page 2 failed: HTTP 503".into()),
                },
            )]
            .into(),
            rejected: Vec::new(),
        };
        let page = |n: usize| format!("evidence/m365/groupMembers/page-{n:05}.json");
        let url = |g: &str| {
            format!(
                "GET https://graph.example/v1.0/groups/{g}/transitiveMembers/microsoft.graph.user"
            )
        };
        let src = SourceEvidence {
            name: "m365",
            report: &report,
            pages: [(
                dataset::GROUP_MEMBERS.to_owned(),
                vec![
                    (page(1), json!({"value": [{"id": "u1"}, {"id": "u2"}]})),
                    (
                        page(2),
                        json!({"value": [{"id": "u3"}], "@odata.nextLink": "https://graph.example/next"}),
                    ),
                ],
            )]
            .into(),
            binary: BTreeMap::new(),
            requests: [(page(1), url("g-done")), (page(2), url("g-cut"))].into(),
        };
        let (members, problems) = group_members(&src);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            members,
            BTreeMap::from([("g-done".to_owned(), vec!["u1".to_owned(), "u2".to_owned()])]),
            "g-cut's paging stopped after its first page"
        );
    }
}
