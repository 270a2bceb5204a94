//! Tactical RMM's REST API as the simulator serves it: `X-API-KEY` auth,
//! `GET /agents/` (a bare array, unpaged; `?client=<id>` keeps one client's
//! agents), `GET /clients/{id}/` and `GET /winupdate/{agent_id}/`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{json, Value};

use crate::simulate::{json_response, FaultScope, Shared, SimRouter, SimState, Tenant};

/// Fault path of the agent list.
pub const AGENTS_PATH: &str = "/agents/";
/// Fault path shared by every agent's Windows update list.
pub const WINUPDATE_PATH: &str = "/winupdate/";
/// Fault path of one client.
pub const CLIENT_PATH: &str = "/clients/{id}/";

/// The Tactical RMM records of a simulated organisation.
#[derive(Clone, Debug)]
pub struct TacticalTenant {
    /// `/clients/{id}/` records (`id`, `name`, `sites`); an agent belongs to
    /// the client its `client_name` names.
    pub clients: Vec<Value>,
    /// `/agents/` records.
    pub agents: Vec<Value>,
    /// `/winupdate/{agent_id}/` records per agent id.
    pub updates: BTreeMap<String, Vec<Value>>,
    /// Accepted `X-API-KEY`.
    pub api_key: String,
}

impl Default for TacticalTenant {
    fn default() -> Self {
        TacticalTenant {
            clients: Vec::new(),
            agents: Vec::new(),
            updates: BTreeMap::new(),
            api_key: "simulator-tactical-key".into(),
        }
    }
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router
        .route(AGENTS_PATH, get(agents))
        .route("/clients/{id}/", get(client))
        .route("/winupdate/{agent_id}/", get(winupdates))
}

fn unauthorized(s: &SimState, headers: &HeaderMap) -> Option<Response> {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    (key != Some(s.tenant.tactical.api_key.as_str())).then(|| {
        json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"detail": "Invalid API key."}),
        )
    })
}

/// Latency, faults (of the client, if any), key, the account's limit.
async fn gate(
    s: &SimState,
    headers: &HeaderMap,
    path: &str,
    client: Option<i64>,
) -> Option<Response> {
    if let Some(fault) = s
        .before_scoped(path, client.map(FaultScope::TacticalClient))
        .await
    {
        return Some(fault);
    }
    if let Some(denied) = unauthorized(s, headers) {
        return Some(denied);
    }
    s.throttle(
        &[(
            "tactical".to_owned(),
            s.options.rate_limits.tactical_per_account,
        )],
        true,
    )
}

fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"detail": "Not found."}))
}

/// The organisation holding client `id` and that client's record.
fn client_owner(s: &SimState, id: i64) -> Option<(Arc<Tenant>, Value)> {
    let t = match s.fleet.by_tactical_client(id) {
        Some(i) => s.fleet.org(i)?,
        None => s.tenant.clone(),
    };
    let record = t
        .tactical
        .clients
        .iter()
        .find(|c| c.get("id").and_then(Value::as_i64) == Some(id))?
        .clone();
    Some((t, record))
}

async fn agents(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let client = match q.get("client").map(|c| c.parse::<i64>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return not_found(),
    };
    if let Some(r) = gate(&s, &headers, AGENTS_PATH, client).await {
        return r;
    }
    let Some(id) = client else {
        let mut all = s.tenant.tactical.agents.clone();
        for i in 0..s.fleet.len() {
            if let Some(t) = s.fleet.org(i) {
                all.extend(t.tactical.agents.iter().cloned());
            }
        }
        return json_response(StatusCode::OK, &json!(all));
    };
    // Tactical filters by the client's primary key: an unknown one gives an empty list.
    let owner = client_owner(&s, id);
    let agents: Vec<&Value> = match &owner {
        None => Vec::new(),
        Some((t, record)) => t
            .tactical
            .agents
            .iter()
            .filter(|a| a.get("client_name") == record.get("name"))
            .collect(),
    };
    json_response(StatusCode::OK, &json!(agents))
}

async fn client(State(s): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let id = id.parse::<i64>().ok();
    if let Some(r) = gate(&s, &headers, CLIENT_PATH, id).await {
        return r;
    }
    match id.and_then(|id| client_owner(&s, id)) {
        Some((_, record)) => json_response(StatusCode::OK, &record),
        None => not_found(),
    }
}

async fn winupdates(
    State(s): Shared,
    headers: HeaderMap,
    Path(agent_id): Path<String>,
) -> Response {
    let t = match s.fleet.by_tactical_agent(&agent_id) {
        Some(i) => s.fleet.org(i),
        None => Some(s.tenant.clone()),
    };
    let Some(t) = t else {
        return not_found();
    };
    let client = t
        .tactical
        .agents
        .iter()
        .find(|a| a.get("agent_id").and_then(Value::as_str) == Some(agent_id.as_str()))
        .and_then(|a| {
            t.tactical
                .clients
                .iter()
                .find(|c| c.get("name") == a.get("client_name"))
        })
        .and_then(|c| c.get("id").and_then(Value::as_i64));
    if let Some(r) = gate(&s, &headers, WINUPDATE_PATH, client).await {
        return r;
    }
    match t.tactical.updates.get(&agent_id) {
        Some(list) => json_response(StatusCode::OK, &json!(list)),
        None if t
            .tactical
            .agents
            .iter()
            .any(|a| a.get("agent_id").and_then(Value::as_str) == Some(agent_id.as_str())) =>
        {
            json_response(StatusCode::OK, &json!([]))
        }
        None => not_found(),
    }
}
