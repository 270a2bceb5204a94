//! Microsoft Graph pages to users with sign-in and MFA registration facts.

use std::collections::HashMap;

use serde_json::Value;

use super::{
    parse_time, str_field, FactKind, Facts, MfaState, NormaliserKind, SourceEvidence, User,
    UserType,
};
use crate::collect::m365::dataset;

pub(super) const NORMALISER: NormaliserKind = NormaliserKind {
    source_type: "m365",
    normalise,
};

fn value_array(page: &Value) -> Option<&Vec<Value>> {
    page.get("value")?.as_array()
}

fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut problems = Vec::new();
    let mut registration: HashMap<&str, MfaState> = HashMap::new();
    let mut admins: HashMap<&str, bool> = HashMap::new();
    for (path, r) in src.records(dataset::REGISTRATION, value_array, &mut problems) {
        let Some(id) = str_field(r, "id") else {
            problems.push(format!("{path}: registration record without id"));
            continue;
        };
        let methods = r
            .get("methodsRegistered")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let flag = |k| r.get(k).and_then(Value::as_bool).unwrap_or(false);
        registration.insert(
            id,
            MfaState {
                registered: flag("isMfaRegistered"),
                capable: flag("isMfaCapable"),
                methods,
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
        let activity = r.get("signInActivity");
        let last_sign_in = [
            "lastSuccessfulSignInDateTime",
            "lastSignInDateTime",
            "lastNonInteractiveSignInDateTime",
        ]
        .iter()
        .filter_map(|k| parse_time(activity.and_then(|a| a.get(*k))))
        .max();
        users.push(User {
            id: format!("{}:{id}", src.name),
            upn: upn.to_owned(),
            display_name: str_field(r, "displayName").unwrap_or(upn).to_owned(),
            enabled,
            user_type,
            last_sign_in,
            created: parse_time(r.get("createdDateTime")),
            mfa: registration.get(id).cloned(),
            is_admin: admins.get(id).copied().unwrap_or(false),
            roles: Vec::new(),
        });
    }
    let users_provenance = src.provenance(dataset::USERS, &problems);
    facts.users.extend(users);
    facts.provide(FactKind::Users, users_provenance.clone());
    facts.provide(FactKind::SignInActivity, users_provenance);
    facts.provide(FactKind::MfaRegistration, reg_provenance);
}
