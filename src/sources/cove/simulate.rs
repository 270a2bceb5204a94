//! The Cove JSON-RPC API as the simulator serves it: `Login` (checking the
//! partner, user name and password, answering with a visa) and
//! `EnumerateAccountStatistics` (checking the visa, filtering by
//! `PartnerId`, paging by `StartRecordNumber` / `RecordsCount`, returning
//! only the asked columns). Every answer renews the visa.
//!
//! Devices carry the account type column `I59` as the API gives it (`"1"`
//! Backup Manager, `"2"` Microsoft 365); [`CoveTenant::account`] builds one.
//! A device built without it answers without the column, as an account whose
//! type the API does not report would.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

use crate::simulate::{json_response, Shared, SimRouter};

/// Path of the endpoint (faults are keyed on it).
pub const PATH: &str = "/jsonapi";

/// The Cove records of a simulated partner.
#[derive(Clone, Debug, Default)]
pub struct CoveTenant {
    /// Accepted partner name.
    pub partner: String,
    /// Accepted user name.
    pub username: String,
    /// Accepted password.
    pub password: String,
    /// Devices as `{AccountId, PartnerId, Settings: [{code: value}]}`, with
    /// the account type in column `I59`.
    pub devices: Vec<Value>,
    visas: Arc<Mutex<BTreeSet<String>>>,
}

impl CoveTenant {
    /// A device record of customer partner `partner`: account type `I59`
    /// (`None` leaves the column out) and the other columns, each as
    /// `{code: value}` in `Settings`, values as strings as the API gives them.
    pub fn account(
        id: u64,
        partner: u64,
        account_type: Option<&str>,
        columns: &[(&str, String)],
    ) -> Value {
        let mut settings: Vec<Value> = columns.iter().map(|(c, v)| json!({ *c: v })).collect();
        if let Some(t) = account_type {
            settings.push(json!({"I59": t}));
        }
        json!({"AccountId": id, "PartnerId": partner, "Settings": settings})
    }
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router.route(PATH, post(jsonapi))
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    )
}

fn new_visa(t: &CoveTenant) -> String {
    let visa = format!("visa-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    if let Ok(mut visas) = t.visas.lock() {
        visas.insert(visa.clone());
    }
    visa
}

async fn jsonapi(State(s): Shared, Json(body): Json<Value>) -> Response {
    if let Some(fault) = s.before(PATH).await {
        return fault;
    }
    let t = &s.tenant.cove;
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let params = body.get("params").cloned().unwrap_or(Value::Null);
    match body.get("method").and_then(Value::as_str) {
        Some("Login") => {
            let field = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or_default();
            if t.username.is_empty()
                || field("partner") != t.partner
                || field("username") != t.username
                || field("password") != t.password
            {
                return rpc_error(&id, 2, "Login failed: invalid user name or password");
            }
            let visa = new_visa(t);
            json_response(
                StatusCode::OK,
                &json!({"jsonrpc": "2.0", "id": id, "visa": visa,
                        "result": {"result": {"PartnerId": 1, "Name": t.username}}}),
            )
        }
        Some("EnumerateAccountStatistics") => {
            let visa = body.get("visa").and_then(Value::as_str).unwrap_or_default();
            let known = t.visas.lock().map(|v| v.contains(visa)).unwrap_or(false);
            if !known {
                return rpc_error(&id, 13501, "Invalid visa");
            }
            let q = params.get("query").cloned().unwrap_or(Value::Null);
            let partner = q.get("PartnerId").and_then(Value::as_u64);
            let start = q
                .get("StartRecordNumber")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            let count = (q.get("RecordsCount").and_then(Value::as_u64).unwrap_or(100) as usize)
                .clamp(1, 1000)
                .min(s.options.max_page_size.max(1));
            let columns: Vec<&str> = q
                .get("Columns")
                .and_then(Value::as_array)
                .map(|c| c.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let page: Vec<Value> = t
                .devices
                .iter()
                .filter(|d| d.get("PartnerId").and_then(Value::as_u64) == partner)
                .skip(start)
                .take(count)
                .map(|d| {
                    let settings: Vec<&Value> = d
                        .get("Settings")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter(|s| {
                            s.as_object()
                                .is_some_and(|o| o.keys().any(|k| columns.contains(&k.as_str())))
                        })
                        .collect();
                    json!({"AccountId": d.get("AccountId"), "PartnerId": d.get("PartnerId"), "Flags": null, "Settings": settings})
                })
                .collect();
            let visa = new_visa(t);
            json_response(
                StatusCode::OK,
                &json!({"jsonrpc": "2.0", "id": id, "visa": visa,
                        "result": {"result": page, "totalStatistics": null}}),
            )
        }
        _ => rpc_error(&id, -32601, "Method not found"),
    }
}
