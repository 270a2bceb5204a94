//! NinjaOne API v2 and its token endpoint, as the simulator serves them.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use serde_json::{json, Value};

use crate::simulate::{json_response, Audience, Shared, SimRouter, SimState};

/// The NinjaOne records of a simulated organisation.
#[derive(Clone, Debug, Default)]
pub struct NinjaTenant {
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

async fn ninja_devices(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = s.before("/v2/devices").await {
        return fault;
    }
    if let Some(denied) = s.denied(&headers, Audience::Ninja) {
        return denied;
    }
    let size = ninja_page_size(&s, &q);
    let after = q
        .get("after")
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    let page: Vec<&Value> = s
        .tenant
        .ninja
        .devices
        .iter()
        .filter(|d| {
            d.get("id")
                .and_then(Value::as_i64)
                .is_some_and(|id| id > after)
        })
        .take(size)
        .collect();
    json_response(StatusCode::OK, &json!(page))
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

/// A NinjaOne query endpoint: `{cursor, results}` paged by cursor name.
async fn ninja_query(
    s: &SimState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    path: &str,
    list: fn(&NinjaTenant) -> &Vec<Value>,
) -> Response {
    if let Some(fault) = s.before(path).await {
        return fault;
    }
    if let Some(denied) = s.denied(headers, Audience::Ninja) {
        return denied;
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
    let records = list(&s.tenant.ninja);
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
