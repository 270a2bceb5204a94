//! Tactical RMM's REST API as the simulator serves it: `X-API-KEY` auth,
//! `GET /agents/` (a bare array, unpaged) and `GET /winupdate/{agent_id}/`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{json, Value};

use crate::simulate::{json_response, Shared, SimRouter, SimState};

/// Fault path of the agent list.
pub const AGENTS_PATH: &str = "/agents/";
/// Fault path shared by every agent's Windows update list.
pub const WINUPDATE_PATH: &str = "/winupdate/";

/// The Tactical RMM records of a simulated organisation.
#[derive(Clone, Debug)]
pub struct TacticalTenant {
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
            agents: Vec::new(),
            updates: BTreeMap::new(),
            api_key: "simulator-tactical-key".into(),
        }
    }
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router
        .route(AGENTS_PATH, get(agents))
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

async fn agents(State(s): Shared, headers: HeaderMap) -> Response {
    if let Some(fault) = s.before(AGENTS_PATH).await {
        return fault;
    }
    if let Some(denied) = unauthorized(&s, &headers) {
        return denied;
    }
    json_response(StatusCode::OK, &json!(s.tenant.tactical.agents))
}

async fn winupdates(
    State(s): Shared,
    headers: HeaderMap,
    Path(agent_id): Path<String>,
) -> Response {
    if let Some(fault) = s.before(WINUPDATE_PATH).await {
        return fault;
    }
    if let Some(denied) = unauthorized(&s, &headers) {
        return denied;
    }
    match s.tenant.tactical.updates.get(&agent_id) {
        Some(list) => json_response(StatusCode::OK, &json!(list)),
        None if s
            .tenant
            .tactical
            .agents
            .iter()
            .any(|a| a.get("agent_id").and_then(Value::as_str) == Some(agent_id.as_str())) =>
        {
            json_response(StatusCode::OK, &json!([]))
        }
        None => json_response(StatusCode::NOT_FOUND, &json!({"detail": "Not found."})),
    }
}
