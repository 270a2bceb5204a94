//! Microsoft Graph and the Entra token endpoint, as the simulator serves them.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Form;
use serde_json::{json, Value};

use crate::simulate::{graph_error, json_response, Audience, Shared, SimRouter, SimState};

/// The Graph records of a simulated tenant.
#[derive(Clone, Debug, Default)]
pub struct GraphTenant {
    /// `/v1.0/users` records.
    pub users: Vec<Value>,
    /// `userRegistrationDetails` records.
    pub registrations: Vec<Value>,
    /// The tenant lacks Entra ID P1/P2: asking for `signInActivity` is refused (403).
    pub sign_in_activity_unlicensed: bool,
    /// Conditional Access policies.
    pub conditional_access: Vec<Value>,
    /// `identitySecurityDefaultsEnforcementPolicy` (an object; `null` serves the default, off).
    pub security_defaults: Value,
    /// Directory role definitions.
    pub role_definitions: Vec<Value>,
    /// Role assignments (without `principal`; `$expand=principal` adds it).
    pub role_assignments: Vec<Value>,
    /// Groups: id -> (display name, member object ids; a member may be a group).
    pub groups: BTreeMap<String, (String, Vec<String>)>,
    /// Intune managed devices.
    pub managed_devices: Vec<Value>,
    /// Windows protection state per managed device id.
    pub protection_states: HashMap<String, Value>,
    /// Status polls an export job answers `inProgress` before it completes.
    pub export_polls: usize,
    /// Bytes served as every export download instead of the archive built
    /// from the records (to test corrupt or hostile downloads).
    pub export_download: Option<Vec<u8>>,
    /// Access review definitions.
    pub review_definitions: Vec<Value>,
    /// Instances per definition id.
    pub review_instances: HashMap<String, Vec<Value>>,
    /// Decisions per instance id.
    pub review_decisions: HashMap<String, Vec<Value>>,
    /// Secure Scores, newest first.
    pub secure_scores: Vec<Value>,
    /// Security incidents, newest first, each with its `alerts` (served on `$expand=alerts`).
    pub security_incidents: Vec<Value>,
}

/// Paths of the endpoints (with `{id}` for the nested ones), as
/// [`crate::simulate::Fault::path`] names them.
pub mod paths {
    /// Users.
    pub const USERS: &str = "/v1.0/users";
    /// Registration report.
    pub const REGISTRATION: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
    /// Conditional Access policies.
    pub const CONDITIONAL_ACCESS: &str = "/v1.0/identity/conditionalAccess/policies";
    /// Security defaults.
    pub const SECURITY_DEFAULTS: &str = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy";
    /// Role definitions.
    pub const ROLE_DEFINITIONS: &str = "/v1.0/roleManagement/directory/roleDefinitions";
    /// Role assignments.
    pub const ROLE_ASSIGNMENTS: &str = "/v1.0/roleManagement/directory/roleAssignments";
    /// Transitive user members of a group.
    pub const GROUP_MEMBERS: &str = "/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user";
    /// Managed devices.
    pub const MANAGED_DEVICES: &str = "/v1.0/deviceManagement/managedDevices";
    /// Protection state of one device.
    pub const PROTECTION_STATE: &str =
        "/v1.0/deviceManagement/managedDevices/{id}/windowsProtectionState";
    /// Creating an export job.
    pub const EXPORT_JOBS: &str = "/v1.0/deviceManagement/reports/exportJobs";
    /// Polling an export job.
    pub const EXPORT_JOB: &str = "/v1.0/deviceManagement/reports/exportJobs('{id}')";
    /// Downloading an export (pre-signed, no token).
    pub const EXPORT_DOWNLOAD: &str = "/sim-blob/reports/{id}";
    /// Review definitions.
    pub const REVIEW_DEFINITIONS: &str = "/v1.0/identityGovernance/accessReviews/definitions";
    /// Instances of a definition.
    pub const REVIEW_INSTANCES: &str =
        "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances";
    /// Decisions of an instance.
    pub const REVIEW_DECISIONS: &str =
        "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{id}/decisions";
    /// Secure Scores.
    pub const SECURE_SCORES: &str = "/v1.0/security/secureScores";
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router
        .route("/{tenant}/oauth2/v2.0/token", post(graph_token))
        .route("/v1.0/users", get(graph_users))
        .route(
            "/v1.0/reports/authenticationMethods/userRegistrationDetails",
            get(graph_registrations),
        )
        .route(paths::CONDITIONAL_ACCESS, get(ca_policies))
        .route(paths::SECURITY_DEFAULTS, get(security_defaults))
        .route(paths::ROLE_DEFINITIONS, get(role_definitions))
        .route(paths::ROLE_ASSIGNMENTS, get(role_assignments))
        .route(
            "/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user",
            get(group_members),
        )
        .route(paths::MANAGED_DEVICES, get(managed_devices))
        .route(
            "/v1.0/deviceManagement/managedDevices/{device}/windowsProtectionState",
            get(protection_state),
        )
        .route(paths::EXPORT_JOBS, post(create_export_job))
        .route(
            "/v1.0/deviceManagement/reports/{job}",
            get(export_job_status),
        )
        .route("/sim-blob/reports/{job}", get(export_download))
        .route(paths::REVIEW_DEFINITIONS, get(review_definitions))
        .route(
            "/v1.0/identityGovernance/accessReviews/definitions/{def}/instances",
            get(review_instances),
        )
        .route(
            "/v1.0/identityGovernance/accessReviews/definitions/{def}/instances/{inst}/decisions",
            get(review_decisions),
        )
        .route(paths::SECURE_SCORES, get(secure_scores))
}

async fn graph_token(
    State(s): Shared,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.count_token_request();
    let c = &s.options.credentials;
    if !s.knows_tenant(&tenant) {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": format!("AADSTS90002: Tenant '{tenant}' not found.")}),
        );
    }
    let basics = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id") == Some(&c.graph_client_id);
    let verdict = match (form.get("client_secret"), form.get("client_assertion")) {
        (Some(secret), None) if *secret == c.graph_secret => Ok(()),
        (Some(_), None) => Err("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.".to_owned()),
        (None, Some(jwt)) => {
            let token_url = format!("{}/{tenant}/oauth2/v2.0/token", s.base_url);
            if form.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                Err("AADSTS700023: client_assertion_type is invalid.".to_owned())
            } else {
                super::assertion::verify(jwt, c.graph_certificate.as_deref(), &c.graph_client_id, &token_url)
            }
        }
        _ => Err("AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required.".to_owned()),
    };
    if !basics {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found in the directory."}),
        );
    }
    if let Err(why) = verdict {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": why}),
        );
    }
    let scope = form.get("scope").map(String::as_str).unwrap_or_default();
    let audience = if scope.contains("securitycenter") {
        Audience::Defender
    } else {
        Audience::Graph
    };
    s.issue_token_for(audience, Some(tenant))
}

/// Serve a Graph collection with `$top`, `$select` and an opaque `$skiptoken`.
fn graph_page(
    s: &SimState,
    path: &str,
    context: &str,
    records: &[Value],
    q: &HashMap<String, String>,
) -> Response {
    graph_page_max(s, path, context, records, q, 999)
}

/// [`graph_page`] for an endpoint whose largest `$top` is `max`.
pub(super) fn graph_page_max(
    s: &SimState,
    path: &str,
    context: &str,
    records: &[Value],
    q: &HashMap<String, String>,
    max: usize,
) -> Response {
    let top = q
        .get("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, max)
        .min(s.options.max_page_size.max(1));
    let offset = match q.get("$skiptoken") {
        None => 0,
        Some(token) => match token
            .strip_prefix("X'")
            .and_then(|t| usize::from_str_radix(t.trim_end_matches('\''), 16).ok())
        {
            Some(n) => n,
            None => {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid $skiptoken")
            }
        },
    };
    let select: Option<Vec<&str>> = q.get("$select").map(|s| s.split(',').collect());
    let page: Vec<Value> = records
        .iter()
        .skip(offset)
        .take(top)
        .map(|r| match (&select, r) {
            (Some(fields), Value::Object(map)) => Value::Object(
                map.iter()
                    .filter(|(k, _)| {
                        *k == "id" || *k == "principal" || fields.contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => r.clone(),
        })
        .collect();
    let mut body = json!({"@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{context}"), "value": page});
    if offset + top < records.len() {
        let mut next =
            reqwest::Url::parse(&format!("{}{path}", s.base_url)).expect("base URL is valid");
        {
            let mut pairs = next.query_pairs_mut();
            for (k, v) in q.iter().filter(|(k, _)| *k != "$skiptoken") {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("$skiptoken", &format!("X'{:x}'", offset + top));
        }
        body["@odata.nextLink"] = json!(next.to_string());
    }
    json_response(StatusCode::OK, &body)
}

async fn graph_users(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    const PATH: &str = "/v1.0/users";
    if let Some(r) = gate(&s, PATH, &headers).await {
        return r;
    }
    let t = s.m365_tenant(&headers);
    let asks_sign_in = q
        .get("$select")
        .is_some_and(|sel| sel.split(',').any(|f| f == "signInActivity"));
    if t.graph.sign_in_activity_unlicensed && asks_sign_in {
        return graph_error(
            StatusCode::FORBIDDEN,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license",
        );
    }
    // Microsoft documents pages of at most 120 users when signInActivity is
    // selected, whatever `$top` asks.
    let max = if asks_sign_in { 120 } else { 999 };
    graph_page_max(&s, PATH, "users", &t.graph.users, &q, max)
}

async fn graph_registrations(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    const PATH: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
    if let Some(r) = gate(&s, PATH, &headers).await {
        return r;
    }
    graph_page(
        &s,
        PATH,
        "reports/authenticationMethods/userRegistrationDetails",
        &s.m365_tenant(&headers).graph.registrations,
        &q,
    )
}

/// Fault, token check, then the tenant's rate limits: `Some(response)` when
/// the request ends here.
pub(super) async fn gate(s: &SimState, path: &str, headers: &HeaderMap) -> Option<Response> {
    let scope = s.m365_scope(headers);
    if let Some(fault) = s.before_scoped(path, scope).await {
        return Some(fault);
    }
    if let Some(denied) = s.denied(headers, Audience::Graph) {
        return Some(denied);
    }
    let tenant = s
        .bearer_tenant(headers)
        .unwrap_or_else(|| s.options.credentials.tenant_id.clone());
    let l = &s.options.rate_limits;
    let mut draws = vec![
        ("graph".to_owned(), l.graph_global),
        (format!("graph:{tenant}"), l.graph_per_tenant),
    ];
    let mut retry_after = true;
    if path.starts_with("/v1.0/reports/authenticationMethods") {
        draws.push((format!("graph:{tenant}:reports"), l.graph_identity_reports));
    } else if path == paths::CONDITIONAL_ACCESS {
        draws.push((format!("graph:{tenant}:ca"), l.graph_conditional_access));
        retry_after = false;
    } else if path.starts_with("/v1.0/deviceManagement") {
        draws.push((format!("graph:{tenant}:intune"), l.graph_intune));
    }
    s.throttle(&draws, retry_after)
}

fn not_found(what: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Resource '{what}' does not exist or one of its queried reference-property objects are not present."),
    )
}

type Q = Query<HashMap<String, String>>;

async fn ca_policies(State(s): Shared, headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = gate(&s, paths::CONDITIONAL_ACCESS, &headers).await {
        return r;
    }
    graph_page(
        &s,
        paths::CONDITIONAL_ACCESS,
        "identity/conditionalAccess/policies",
        &s.m365_tenant(&headers).graph.conditional_access,
        &q,
    )
}

async fn security_defaults(State(s): Shared, headers: HeaderMap) -> Response {
    if let Some(r) = gate(&s, paths::SECURITY_DEFAULTS, &headers).await {
        return r;
    }
    let t = s.m365_tenant(&headers);
    let mut body = match &t.graph.security_defaults {
        Value::Object(_) => t.graph.security_defaults.clone(),
        _ => {
            json!({"id": "00000000-0000-0000-0000-000000000005", "displayName": "Security Defaults", "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft.", "isEnabled": false})
        }
    };
    body["@odata.context"] =
        json!("https://graph.microsoft.com/v1.0/$metadata#policies/identitySecurityDefaultsEnforcementPolicy/$entity");
    json_response(StatusCode::OK, &body)
}

async fn role_definitions(State(s): Shared, headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = gate(&s, paths::ROLE_DEFINITIONS, &headers).await {
        return r;
    }
    graph_page(
        &s,
        paths::ROLE_DEFINITIONS,
        "roleManagement/directory/roleDefinitions",
        &s.m365_tenant(&headers).graph.role_definitions,
        &q,
    )
}

/// The directory object `id` as `$expand=principal` shows it.
fn principal(t: &GraphTenant, id: &str) -> Value {
    if let Some(u) = t
        .users
        .iter()
        .find(|u| u.get("id").and_then(Value::as_str) == Some(id))
    {
        return json!({
            "@odata.type": "#microsoft.graph.user",
            "id": id,
            "displayName": u.get("displayName"),
            "userPrincipalName": u.get("userPrincipalName"),
            "accountEnabled": u.get("accountEnabled"),
            "userType": u.get("userType"),
        });
    }
    if let Some((name, _)) = t.groups.get(id) {
        return json!({"@odata.type": "#microsoft.graph.group", "id": id, "displayName": name});
    }
    json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": id, "displayName": null})
}

async fn role_assignments(State(s): Shared, headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = gate(&s, paths::ROLE_ASSIGNMENTS, &headers).await {
        return r;
    }
    let tenant = s.m365_tenant(&headers);
    let t = &tenant.graph;
    let expand = q.get("$expand").is_some_and(|e| e == "principal");
    let records: Vec<Value> = t
        .role_assignments
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if expand {
                let pid = a
                    .get("principalId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                a["principal"] = principal(t, &pid);
            }
            a
        })
        .collect();
    graph_page(
        &s,
        paths::ROLE_ASSIGNMENTS,
        "roleManagement/directory/roleAssignments",
        &records,
        &q,
    )
}

/// User members of `group`, through nested groups, each once.
fn transitive_users(t: &GraphTenant, group: &str) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![group.to_owned()];
    let mut ids = Vec::new();
    while let Some(g) = stack.pop() {
        if !seen.insert(g.clone()) {
            continue;
        }
        for m in t
            .groups
            .get(&g)
            .map(|(_, m)| m.as_slice())
            .unwrap_or_default()
        {
            if t.groups.contains_key(m) {
                stack.push(m.clone());
            } else if !ids.contains(m) {
                ids.push(m.clone());
            }
        }
    }
    ids.iter()
        .filter_map(|id| {
            let u = t
                .users
                .iter()
                .find(|u| u.get("id").and_then(Value::as_str) == Some(id))?;
            let mut u = u.clone();
            if let Value::Object(map) = &mut u {
                map.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            }
            Some(u)
        })
        .collect()
}

async fn group_members(
    State(s): Shared,
    Path(group): Path<String>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    if let Some(r) = gate(&s, paths::GROUP_MEMBERS, &headers).await {
        return r;
    }
    let t = s.m365_tenant(&headers);
    if !t.graph.groups.contains_key(&group) {
        return not_found(&group);
    }
    let users = transitive_users(&t.graph, &group);
    let path = format!("/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user");
    graph_page(&s, &path, "users", &users, &q)
}

async fn managed_devices(State(s): Shared, headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = gate(&s, paths::MANAGED_DEVICES, &headers).await {
        return r;
    }
    graph_page_max(
        &s,
        paths::MANAGED_DEVICES,
        "deviceManagement/managedDevices",
        &s.m365_tenant(&headers).graph.managed_devices,
        &q,
        1000,
    )
}

async fn protection_state(
    State(s): Shared,
    Path(device): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&s, paths::PROTECTION_STATE, &headers).await {
        return r;
    }
    match s.m365_tenant(&headers).graph.protection_states.get(&device) {
        None => not_found(&device),
        Some(state) => {
            let mut body = state.clone();
            body["@odata.context"] = json!(format!("https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices('{device}')/windowsProtectionState/$entity"));
            json_response(StatusCode::OK, &body)
        }
    }
}

fn job_body(
    t: &GraphTenant,
    id: &str,
    report: &str,
    select: &Value,
    status: &str,
    url: Option<String>,
) -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/reports/exportJobs/$entity",
        "id": id,
        "reportName": report,
        "filter": "",
        "select": select,
        "format": "csv",
        "snapshotId": null,
        "localizationType": "localizedValuesAsAdditionalColumn",
        "status": status,
        "url": url,
        "requestDateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "expirationDateTime": "0001-01-01T00:00:00Z",
        "polls": t.export_polls,
    })
}

async fn create_export_job(
    State(s): Shared,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(r) = gate(&s, paths::EXPORT_JOBS, &headers).await {
        return r;
    }
    let report = body
        .get("reportName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if report != "DefenderAgents" {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unsupported reportName",
        );
    }
    let id = format!(
        "DefenderAgents_{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0xfff),
        fastrand::u16(..0xfff),
        fastrand::u64(..0xffff_ffff_ffff)
    );
    let select = body.get("select").cloned().unwrap_or(json!([]));
    let sig = format!("{:016x}", fastrand::u64(..));
    let tenant = s.bearer_tenant(&headers);
    if let Ok(mut jobs) = s.export_jobs.lock() {
        jobs.insert(id.clone(), (0, select.clone(), sig, tenant));
    }
    let t = s.m365_tenant(&headers);
    let mut job = job_body(&t.graph, &id, report, &select, "notStarted", None);
    if let Value::Object(map) = &mut job {
        map.remove("polls");
    }
    json_response(StatusCode::CREATED, &job)
}

async fn export_job_status(
    State(s): Shared,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&s, paths::EXPORT_JOB, &headers).await {
        return r;
    }
    let Some(id) = key
        .strip_prefix("exportJobs('")
        .and_then(|k| k.strip_suffix("')"))
    else {
        return not_found(&key);
    };
    let entry = s.export_jobs.lock().ok().and_then(|mut jobs| {
        let job = jobs.get_mut(id)?;
        job.0 += 1;
        Some(job.clone())
    });
    let Some((polls, select, sig, _)) = entry else {
        return not_found(id);
    };
    let t = s.m365_tenant(&headers);
    let done = polls > t.graph.export_polls;
    let url = done.then(|| {
        format!(
            "{}/sim-blob/reports/{id}?sv=2020-08-04&se=2030-01-01&sig={sig}",
            s.base_url
        )
    });
    let mut job = job_body(
        &t.graph,
        id,
        "DefenderAgents",
        &select,
        if done { "completed" } else { "inProgress" },
        url,
    );
    if let Value::Object(map) = &mut job {
        map.remove("polls");
    }
    json_response(StatusCode::OK, &job)
}

/// A flags value of the per-device answer (`"rebootPending,fullScanPending"`)
/// as the export writes it: the number of its documented member values
/// (text the enum does not know is left as it is).
fn flags_number(value: &Value, members: &[(&str, u64)]) -> Value {
    let Some(text) = value.as_str() else {
        return value.clone();
    };
    let mut n = 0;
    for name in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match members.iter().find(|(m, _)| m.eq_ignore_ascii_case(name)) {
            Some((_, v)) => n |= v,
            None => return value.clone(),
        }
    }
    json!(n.to_string())
}

/// The English display text of a flags value (`"rebootPending"` ->
/// `"Reboot pending"`), as a `_loc` column carries it.
fn localized(value: &Value) -> Value {
    let Some(text) = value.as_str() else {
        return Value::Null;
    };
    let words: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|name| {
            let mut out = String::new();
            for (i, c) in name.chars().enumerate() {
                match (i, c.is_ascii_uppercase()) {
                    (0, _) => out.push(c.to_ascii_uppercase()),
                    (_, true) => {
                        out.push(' ');
                        out.push(c.to_ascii_lowercase());
                    }
                    _ => out.push(c),
                }
            }
            out
        })
        .collect();
    json!(words.join(", "))
}

/// Columns of the `DefenderAgents` export that Intune localizes: with
/// `localizationType: localizedValuesAsAdditionalColumn` each keeps its enum
/// value and gets a `<Column>_loc` column of display text after it.
const LOCALIZED_COLUMNS: &[&str] = &["DeviceState"];

/// One `DefenderAgents` row value for `column`: flags enums as numbers (the
/// enum value, the same in every locale), their `_loc` columns as text.
fn export_cell(device: &Value, state: &Value, column: &str) -> Value {
    use crate::sources::m365::intune::{DEVICE_STATE, PRODUCT_STATUS};
    let field = |k: &str| state.get(k).cloned().unwrap_or(Value::Null);
    match column {
        "DeviceId" => device.get("id").cloned().unwrap_or(Value::Null),
        "DeviceName" => device.get("deviceName").cloned().unwrap_or(Value::Null),
        "UPN" => device
            .get("userPrincipalName")
            .cloned()
            .unwrap_or(Value::Null),
        "DeviceState" => flags_number(&field("deviceState"), DEVICE_STATE),
        "DeviceState_loc" => localized(&field("deviceState")),
        "MalwareProtectionEnabled" => field("malwareProtectionEnabled"),
        "RealTimeProtectionEnabled" => field("realTimeProtectionEnabled"),
        "SignatureUpdateOverdue" => field("signatureUpdateOverdue"),
        "QuickScanOverdue" => field("quickScanOverdue"),
        "FullScanOverdue" => field("fullScanOverdue"),
        "RebootRequired" => field("rebootRequired"),
        "SignatureVersion" => field("signatureVersion"),
        "EngineVersion" => field("engineVersion"),
        "LastReportedDateTime" => field("lastReportedDateTime"),
        "ProductStatus" => flags_number(&field("productStatus"), PRODUCT_STATUS),
        _ => Value::Null,
    }
}

async fn export_download(State(s): Shared, Path(id): Path<String>, Query(q): Q) -> Response {
    if let Some(fault) = s.before(paths::EXPORT_DOWNLOAD).await {
        return fault;
    }
    let job = s
        .export_jobs
        .lock()
        .ok()
        .and_then(|jobs| jobs.get(&id).cloned());
    let Some((_, select, sig, tenant)) = job else {
        return (StatusCode::NOT_FOUND, "BlobNotFound").into_response();
    };
    let t = tenant
        .and_then(|id| s.fleet.by_tenant_id(&id))
        .and_then(|i| s.fleet.org(i))
        .unwrap_or_else(|| s.tenant.clone());
    if q.get("sig") != Some(&sig) {
        return (StatusCode::FORBIDDEN, "AuthenticationFailed").into_response();
    }
    let columns: Vec<String> = select
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let body = match &t.graph.export_download {
        Some(bytes) => bytes.clone(),
        None => match export_archive(&t.graph, &format!("{id}.csv"), &columns) {
            Ok(bytes) => bytes,
            Err(e) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
            }
        },
    };
    if let Ok(mut served) = s.export_served.lock() {
        served.push(body.clone());
    }
    (
        StatusCode::OK,
        [("content-type", "application/octet-stream")],
        body,
    )
        .into_response()
}

/// One CSV cell as Intune writes it: booleans as `True`/`False`, null as empty.
fn csv_cell(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    crate::sources::m365::export::csv_field(&text)
}

/// The `DefenderAgents` export of `tenant` as Intune serves it: a ZIP archive
/// holding one CSV file named `entry`, a header row of `columns` (each
/// localized one followed by its `_loc` column) and one row per managed
/// device with protection state. Deterministic (fixed entry time).
///
/// # Errors
/// Only when the archive cannot be written in memory.
pub fn export_archive(
    tenant: &GraphTenant,
    entry: &str,
    columns: &[String],
) -> zip::result::ZipResult<Vec<u8>> {
    use std::io::Write;
    let columns: Vec<String> = columns
        .iter()
        .flat_map(|c| {
            let loc = LOCALIZED_COLUMNS
                .contains(&c.as_str())
                .then(|| format!("{c}_loc"));
            std::iter::once(c.clone()).chain(loc)
        })
        .collect();
    let mut csv = columns
        .iter()
        .map(|c| crate::sources::m365::export::csv_field(c))
        .collect::<Vec<_>>()
        .join(",");
    csv.push_str("\r\n");
    for device in &tenant.managed_devices {
        let Some(state) = device
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| tenant.protection_states.get(id))
        else {
            continue;
        };
        let row: Vec<String> = columns
            .iter()
            .map(|c| csv_cell(&export_cell(device, state, c)))
            .collect();
        csv.push_str(&row.join(","));
        csv.push_str("\r\n");
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    zip.start_file(entry, options)?;
    zip.write_all(csv.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

async fn review_definitions(State(s): Shared, headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = gate(&s, paths::REVIEW_DEFINITIONS, &headers).await {
        return r;
    }
    graph_page(
        &s,
        paths::REVIEW_DEFINITIONS,
        "identityGovernance/accessReviews/definitions",
        &s.m365_tenant(&headers).graph.review_definitions,
        &q,
    )
}

async fn review_instances(
    State(s): Shared,
    Path(def): Path<String>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    if let Some(r) = gate(&s, paths::REVIEW_INSTANCES, &headers).await {
        return r;
    }
    let t = s.m365_tenant(&headers);
    let Some(records) = t.graph.review_instances.get(&def) else {
        return not_found(&def);
    };
    let path = format!("/v1.0/identityGovernance/accessReviews/definitions/{def}/instances");
    let context = format!("identityGovernance/accessReviews/definitions('{def}')/instances");
    graph_page(&s, &path, &context, records, &q)
}

async fn review_decisions(
    State(s): Shared,
    Path((def, inst)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    if let Some(r) = gate(&s, paths::REVIEW_DECISIONS, &headers).await {
        return r;
    }
    let t = s.m365_tenant(&headers);
    let known = t.graph.review_instances.get(&def).is_some_and(|i| {
        i.iter()
            .any(|i| i.get("id").and_then(Value::as_str) == Some(&inst))
    });
    let Some(records) = t.graph.review_decisions.get(&inst).filter(|_| known) else {
        return not_found(&inst);
    };
    let path = format!(
        "/v1.0/identityGovernance/accessReviews/definitions/{def}/instances/{inst}/decisions"
    );
    let context = format!(
        "identityGovernance/accessReviews/definitions('{def}')/instances('{inst}')/decisions"
    );
    graph_page(&s, &path, &context, records, &q)
}

async fn secure_scores(State(s): Shared, headers: HeaderMap, Query(q): Q) -> Response {
    if let Some(r) = gate(&s, paths::SECURE_SCORES, &headers).await {
        return r;
    }
    graph_page(
        &s,
        paths::SECURE_SCORES,
        "security/secureScores",
        &s.m365_tenant(&headers).graph.secure_scores,
        &q,
    )
}
