//! NinjaOne API v2 and its token endpoint, as the simulator serves them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use serde_json::{json, Value};

use crate::simulate::{json_response, Audience, FaultScope, Shared, SimRouter, SimState, Tenant};

/// Path of one organization (faults are keyed on it).
pub const ORGANIZATION_PATH: &str = "/v2/organization/{id}";

/// The NinjaOne records of a simulated organisation.
#[derive(Clone, Debug, Default)]
pub struct NinjaTenant {
    /// `/v2/organization/{id}` records (`id`, `name`, ...).
    pub organizations: Vec<Value>,
    /// `/v2/devices` records, sorted by `id`.
    pub devices: Vec<Value>,
    /// `/v2/queries/os-patches` results.
    pub os_patches: Vec<Value>,
    /// `/v2/queries/os-patch-installs` results.
    pub os_patch_installs: Vec<Value>,
    /// `/v2/queries/antivirus-status` results.
    pub antivirus_status: Vec<Value>,
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router
        .route("/ws/oauth/token", post(ninja_token))
        .route("/v2/devices", get(ninja_devices))
        .route("/v2/queries/os-patches", get(ninja_os_patches))
        .route(
            "/v2/queries/os-patch-installs",
            get(ninja_os_patch_installs),
        )
        .route("/v2/queries/antivirus-status", get(ninja_antivirus_status))
        .route("/v2/organization/{id}", get(ninja_organization))
}

async fn ninja_token(State(s): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    s.count_token_request();
    let c = &s.options.credentials;
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id") == Some(&c.ninja_client_id)
        && form.get("client_secret") == Some(&c.ninja_secret);
    if ok {
        s.issue_token(Audience::Ninja)
    } else {
        json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client"}),
        )
    }
}

fn ninja_page_size(s: &SimState, q: &HashMap<String, String>) -> usize {
    q.get("pageSize")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1000)
        .clamp(1, 1000)
        .min(s.options.max_page_size.max(1))
}

/// The organization ids a `df` device filter selects: `org = <id>` or
/// `org in (<id>,<id>)`; `None` without a filter. Other filters are refused
/// (400), so a collector sending one the simulator does not model is caught.
fn org_filter(q: &HashMap<String, String>) -> Result<Option<Vec<i64>>, Box<Response>> {
    let Some(df) = q.get("df") else {
        return Ok(None);
    };
    let bad = || {
        Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"resultCode": "FAILURE", "errorMessage": format!("Invalid device filter: {df}")}),
        ))
    };
    let rest = df.trim().strip_prefix("org").ok_or_else(bad)?.trim_start();
    let ids: Option<Vec<i64>> = if let Some(v) = rest.strip_prefix('=') {
        v.trim().parse().ok().map(|id| vec![id])
    } else if let Some(v) = rest.strip_prefix("in") {
        v.trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .and_then(|list| list.split(',').map(|id| id.trim().parse().ok()).collect())
    } else {
        None
    };
    ids.map(Some).ok_or_else(bad)
}

/// The parts of the account a request covers: (organisation records, the
/// organization id to keep within them, or all).
fn parts(s: &SimState, orgs: Option<&[i64]>) -> Vec<(Arc<Tenant>, Option<i64>)> {
    match orgs {
        None => std::iter::once(Some((s.tenant.clone(), None)))
            .chain((0..s.fleet.len()).map(|i| s.fleet.org(i).map(|t| (t, None))))
            .flatten()
            .collect(),
        Some(ids) => ids
            .iter()
            .filter_map(|id| match s.fleet.by_ninja_org(*id) {
                Some(i) => s.fleet.org(i).map(|t| (t, None)),
                None => Some((s.tenant.clone(), Some(*id))),
            })
            .collect(),
    }
}

/// Common gate of every data endpoint: latency and faults (scoped to the
/// organization when the filter names one), token, the account's limit.
async fn gate(
    s: &SimState,
    headers: &HeaderMap,
    path: &str,
    orgs: Option<&[i64]>,
) -> Option<Response> {
    let scope = match orgs {
        Some([one]) => Some(FaultScope::NinjaOrg(*one)),
        _ => None,
    };
    if let Some(fault) = s.before_scoped(path, scope).await {
        return Some(fault);
    }
    if let Some(denied) = s.denied(headers, Audience::Ninja) {
        return Some(denied);
    }
    s.throttle(
        &[("ninja".to_owned(), s.options.rate_limits.ninja_per_account)],
        true,
    )
}

async fn ninja_devices(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let orgs = match org_filter(&q) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    if let Some(r) = gate(&s, &headers, "/v2/devices", orgs.as_deref()).await {
        return r;
    }
    let size = ninja_page_size(&s, &q);
    let after = q
        .get("after")
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    let id_of = |d: &Value| d.get("id").and_then(Value::as_i64);
    let mut page: Vec<Value> = Vec::new();
    for (t, keep) in parts(&s, orgs.as_deref()) {
        page.extend(
            t.ninja
                .devices
                .iter()
                .filter(|d| {
                    keep.is_none_or(|o| d.get("organizationId").and_then(Value::as_i64) == Some(o))
                })
                .filter(|d| id_of(d).is_some_and(|id| id > after))
                .cloned(),
        );
    }
    page.sort_by_key(|d| id_of(d));
    page.truncate(size);
    json_response(StatusCode::OK, &json!(page))
}

async fn ninja_organization(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let id: Option<i64> = id.parse().ok();
    let scope = id.map(FaultScope::NinjaOrg);
    if let Some(fault) = s.before_scoped(ORGANIZATION_PATH, scope).await {
        return fault;
    }
    if let Some(denied) = s.denied(&headers, Audience::Ninja) {
        return denied;
    }
    if let Some(r) = s.throttle(
        &[("ninja".to_owned(), s.options.rate_limits.ninja_per_account)],
        true,
    ) {
        return r;
    }
    let found = id.and_then(|id| {
        parts(&s, Some(&[id])).into_iter().find_map(|(t, _)| {
            t.ninja
                .organizations
                .iter()
                .find(|o| o.get("id").and_then(Value::as_i64) == Some(id))
                .cloned()
        })
    });
    match found {
        Some(org) => json_response(StatusCode::OK, &org),
        None => json_response(
            StatusCode::NOT_FOUND,
            &json!({"resultCode": "FAILURE", "errorMessage": "Organization not found"}),
        ),
    }
}

async fn ninja_os_patches(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    ninja_query(&s, &headers, &q, "/v2/queries/os-patches", |t| {
        &t.os_patches
    })
    .await
}

async fn ninja_os_patch_installs(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    ninja_query(&s, &headers, &q, "/v2/queries/os-patch-installs", |t| {
        &t.os_patch_installs
    })
    .await
}

async fn ninja_antivirus_status(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    ninja_query(&s, &headers, &q, "/v2/queries/antivirus-status", |t| {
        &t.antivirus_status
    })
    .await
}

/// A NinjaOne query endpoint: `{cursor, results}` paged by cursor name,
/// narrowed by the `df` device filter to the organizations' devices.
async fn ninja_query(
    s: &SimState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    path: &str,
    list: fn(&NinjaTenant) -> &Vec<Value>,
) -> Response {
    let orgs = match org_filter(q) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    if let Some(r) = gate(s, headers, path, orgs.as_deref()).await {
        return r;
    }
    let size = ninja_page_size(s, q);
    let offset = match q.get("cursor") {
        None => 0,
        Some(c) => match c.strip_prefix("cur-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return json_response(StatusCode::BAD_REQUEST, &json!({"error": "invalid cursor"}))
            }
        },
    };
    let mut records: Vec<Value> = Vec::new();
    for (t, keep) in parts(s, orgs.as_deref()) {
        let devices: Option<HashSet<i64>> = keep.map(|o| {
            t.ninja
                .devices
                .iter()
                .filter(|d| d.get("organizationId").and_then(Value::as_i64) == Some(o))
                .filter_map(|d| d.get("id").and_then(Value::as_i64))
                .collect()
        });
        records.extend(
            list(&t.ninja)
                .iter()
                .filter(|r| {
                    devices.as_ref().is_none_or(|ids| {
                        r.get("deviceId")
                            .and_then(Value::as_i64)
                            .is_some_and(|id| ids.contains(&id))
                    })
                })
                .cloned(),
        );
    }
    let page: Vec<&Value> = records.iter().skip(offset).take(size).collect();
    let next = offset + page.len();
    json_response(
        StatusCode::OK,
        &json!({
            "cursor": {"name": format!("cur-{next}"), "offset": offset, "count": page.len(), "expires": 300},
            "results": page
        }),
    )
}
