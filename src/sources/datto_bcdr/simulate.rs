//! The Datto BCDR part of the Datto REST API, as the simulator serves it:
//! the paged device list, one device by serial number, and each device's
//! assets, behind HTTP Basic with a public and a secret key.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use serde_json::{json, Value};

use crate::simulate::{json_response, Shared, SimRouter, SimState};

/// Path of the device list (faults are keyed on it).
pub const DEVICES_PATH: &str = "/v1/bcdr/device";

/// Path of every asset list, as faults name it.
pub const ASSETS_PATH: &str = "/v1/bcdr/device/{serial}/asset";

/// The Datto BCDR records of a simulated partner.
#[derive(Clone, Debug, Default)]
pub struct DattoBcdrTenant {
    /// Appliances as `/v1/bcdr/device` lists them.
    pub devices: Vec<Value>,
    /// Assets per appliance serial number.
    pub assets: BTreeMap<String, Vec<Value>>,
    /// Accepted public key.
    pub public_key: String,
    /// Accepted secret key.
    pub secret_key: String,
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router
        .route(DEVICES_PATH, get(devices))
        .route("/v1/bcdr/device/{serial}", get(device))
        .route(ASSETS_PATH, get(assets))
}

/// `Some(401)` unless the Basic credentials are the tenant's key pair.
fn denied(s: &SimState, headers: &HeaderMap) -> Option<Response> {
    let t = &s.tenant.datto_bcdr;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", t.public_key, t.secret_key));
    let ok = !t.public_key.is_empty()
        && headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            == Some(expected.as_str());
    (!ok).then(|| {
        json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"code": 401, "message": "Invalid API credentials"}),
        )
    })
}

async fn devices(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = s.before(DEVICES_PATH).await {
        return fault;
    }
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    let per_page = q
        .get("_perPage")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 100)
        .min(s.options.max_page_size.max(1));
    let page = q
        .get("_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let all = &s.tenant.datto_bcdr.devices;
    let total_pages = all.len().div_ceil(per_page).max(1);
    let items: Vec<&Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "pagination": {"page": page, "perPage": per_page, "totalPages": total_pages, "count": all.len()},
            "items": items
        }),
    )
}

async fn device(State(s): Shared, headers: HeaderMap, Path(serial): Path<String>) -> Response {
    if let Some(fault) = s.before("/v1/bcdr/device/{serial}").await {
        return fault;
    }
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    match s
        .tenant
        .datto_bcdr
        .devices
        .iter()
        .find(|d| d.get("serialNumber").and_then(Value::as_str) == Some(serial.as_str()))
    {
        Some(d) => json_response(StatusCode::OK, d),
        None => json_response(
            StatusCode::NOT_FOUND,
            &json!({"code": 404, "message": "Device not found"}),
        ),
    }
}

async fn assets(State(s): Shared, headers: HeaderMap, Path(serial): Path<String>) -> Response {
    if let Some(fault) = s.before(ASSETS_PATH).await {
        return fault;
    }
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    match s.tenant.datto_bcdr.assets.get(&serial) {
        Some(list) => json_response(StatusCode::OK, &json!(list)),
        None => json_response(
            StatusCode::NOT_FOUND,
            &json!({"code": 404, "message": "Device not found"}),
        ),
    }
}
