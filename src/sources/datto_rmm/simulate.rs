//! Datto RMM API v2 and its token endpoint, as the simulator serves them,
//! with Datto's throttling: beyond `limit` requests per window the API answers
//! 429, and a client that keeps going gets its IP address blocked (403) for a
//! while, on every path including the token endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::simulate::{json_response, Audience, FaultScope, Shared, SimRouter, SimState, Tenant};

/// The HTTP Basic header of Datto's public client (`public-client:public`).
const PUBLIC_CLIENT: &str = "Basic cHVibGljLWNsaWVudDpwdWJsaWM=";

/// Path of the device list (faults are keyed on it).
pub const DEVICES_PATH: &str = "/api/v2/account/devices";
/// Path of one site (faults are keyed on it).
pub const SITE_PATH: &str = "/api/v2/site/{siteUid}";
/// Path of one site's device list (faults are keyed on it).
pub const SITE_DEVICES_PATH: &str = "/api/v2/site/{siteUid}/devices";

/// Datto's throttling, scaled down for tests.
#[derive(Clone, Debug)]
pub struct DattoThrottle {
    /// Requests allowed per window.
    pub limit: usize,
    /// The window.
    pub window: Duration,
    /// Requests over the limit answered 429 before the IP is blocked.
    pub grace: usize,
    /// How long a block lasts.
    pub block: Duration,
}

#[derive(Debug, Default)]
struct ThrottleState {
    window_start: Option<Instant>,
    in_window: usize,
    over: usize,
    blocked_until: Option<Instant>,
    blocks: usize,
}

/// The Datto RMM records and behaviour of a simulated account.
#[derive(Clone, Debug)]
pub struct DattoTenant {
    /// Site records as `/api/v2/site/{siteUid}` serves them (`uid`, `name`, ...).
    pub sites: Vec<Value>,
    /// Device records as `/api/v2/account/devices` serves them; a device
    /// belongs to the site its `siteUid` names.
    pub devices: Vec<Value>,
    /// Accepted API key (the password grant's user name).
    pub api_key: String,
    /// Accepted API secret (the password grant's password).
    pub api_secret: String,
    /// Throttling, when modelled.
    pub throttle: Option<DattoThrottle>,
    state: Arc<Mutex<ThrottleState>>,
}

impl Default for DattoTenant {
    fn default() -> Self {
        DattoTenant {
            sites: Vec::new(),
            devices: Vec::new(),
            api_key: "simulator-datto-key".into(),
            api_secret: "simulator-datto-secret".into(),
            throttle: None,
            state: Arc::default(),
        }
    }
}

impl DattoTenant {
    /// How many times the simulated IP block was imposed.
    pub fn blocks(&self) -> usize {
        self.state.lock().map(|s| s.blocks).unwrap_or(0)
    }

    /// Block the IP address for `how_long` from now, as Datto does once a
    /// client kept going after its 429s (here whatever the throttling model).
    pub fn impose_block(&self, how_long: Duration) {
        if let Ok(mut s) = self.state.lock() {
            s.blocked_until = Some(Instant::now() + how_long);
            s.blocks += 1;
        }
    }

    /// 403 while the IP address is blocked; the block applies to every path,
    /// the token endpoint included.
    fn blocked(&self) -> Option<Response> {
        let mut s = self.state.lock().ok()?;
        let until = s.blocked_until?;
        if Instant::now() < until {
            return Some(blocked_response());
        }
        s.blocked_until = None;
        s.window_start = None;
        None
    }

    /// 429 or 403 when the request is over the limit or the IP is blocked.
    fn throttled(&self) -> Option<Response> {
        if let Some(blocked) = self.blocked() {
            return Some(blocked);
        }
        let t = self.throttle.as_ref()?;
        let mut s = self.state.lock().ok()?;
        let now = Instant::now();
        if s.window_start
            .is_none_or(|w| now.duration_since(w) >= t.window)
        {
            s.window_start = Some(now);
            s.in_window = 0;
            s.over = 0;
        }
        s.in_window += 1;
        if s.in_window <= t.limit {
            return None;
        }
        s.over += 1;
        if s.over > t.grace {
            s.blocked_until = Some(now + t.block);
            s.blocks += 1;
            return Some(blocked_response());
        }
        let mut resp = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "rate_limit_exceeded", "message": "Request rate limit exceeded"}),
        );
        resp.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("0"));
        Some(resp)
    }
}

/// Datto's answer to a blocked IP address.
fn blocked_response() -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        &json!({"error": "access_denied", "message": "IP address temporarily blocked after exceeding the rate limit"}),
    )
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router
        .route("/auth/oauth/token", post(datto_token))
        .route(DEVICES_PATH, get(datto_devices))
        .route("/api/v2/site/{site}", get(datto_site))
        .route("/api/v2/site/{site}/devices", get(datto_site_devices))
}

async fn datto_token(
    State(s): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.count_token_request();
    let d = &s.tenant.datto;
    if let Some(blocked) = d.blocked() {
        return blocked;
    }
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(PUBLIC_CLIENT)
        && form.get("grant_type").map(String::as_str) == Some("password")
        && form.get("username") == Some(&d.api_key)
        && form.get("password") == Some(&d.api_secret);
    if ok {
        s.issue_token(Audience::Datto)
    } else {
        json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "unauthorized", "error_description": "Bad credentials"}),
        )
    }
}

/// Latency, faults (of the site, if any), the account's throttling, token.
async fn gate(
    s: &SimState,
    headers: &HeaderMap,
    path: &str,
    site: Option<&str>,
) -> Option<Response> {
    if let Some(fault) = s
        .before_scoped(path, site.map(|u| FaultScope::DattoSite(u.to_owned())))
        .await
    {
        return Some(fault);
    }
    if let Some(throttled) = s.tenant.datto.throttled() {
        return Some(throttled);
    }
    s.denied(headers, Audience::Datto)
}

/// The organisation holding site `uid`, and whether its devices must be
/// narrowed to the site (the default organisation may hold several).
fn site_owner(s: &SimState, uid: &str) -> Option<(Arc<Tenant>, Option<String>)> {
    if let Some(i) = s.fleet.by_datto_site(uid) {
        return s.fleet.org(i).map(|t| (t, None));
    }
    let known = s
        .tenant
        .datto
        .sites
        .iter()
        .any(|site| site_uid(site) == Some(uid));
    known.then(|| (s.tenant.clone(), Some(uid.to_owned())))
}

fn site_uid(v: &Value) -> Option<&str> {
    v.get("uid")
        .or_else(|| v.get("siteUid"))
        .and_then(Value::as_str)
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"code": 404, "message": "Site not found"}),
    )
}

/// One page of `all`, announcing the next by URL as Datto does.
fn device_page(s: &SimState, q: &HashMap<String, String>, path: &str, all: &[Value]) -> Response {
    let max = q
        .get("max")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(250)
        .clamp(1, 250)
        .min(s.options.max_page_size.max(1));
    let page = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0);
    let items: Vec<&Value> = all.iter().skip(page * max).take(max).collect();
    let link = |p: usize| format!("{}{path}?max={max}&page={p}", s.base_url);
    let next = ((page + 1) * max < all.len()).then(|| link(page + 1));
    let prev = (page > 0).then(|| link(page - 1));
    json_response(
        StatusCode::OK,
        &json!({
            "pageDetails": {"count": items.len(), "totalCount": all.len(), "prevPageUrl": prev, "nextPageUrl": next},
            "devices": items
        }),
    )
}

async fn datto_devices(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&s, &headers, DEVICES_PATH, None).await {
        return r;
    }
    if s.fleet.len() == 0 {
        return device_page(&s, &q, DEVICES_PATH, &s.tenant.datto.devices);
    }
    let mut all = s.tenant.datto.devices.clone();
    for i in 0..s.fleet.len() {
        if let Some(t) = s.fleet.org(i) {
            all.extend(t.datto.devices.iter().cloned());
        }
    }
    device_page(&s, &q, DEVICES_PATH, &all)
}

async fn datto_site(State(s): Shared, headers: HeaderMap, Path(uid): Path<String>) -> Response {
    if let Some(r) = gate(&s, &headers, SITE_PATH, Some(&uid)).await {
        return r;
    }
    let Some((t, _)) = site_owner(&s, &uid) else {
        return not_found();
    };
    match t
        .datto
        .sites
        .iter()
        .find(|site| site_uid(site) == Some(uid.as_str()))
    {
        Some(site) => json_response(StatusCode::OK, site),
        None => not_found(),
    }
}

async fn datto_site_devices(
    State(s): Shared,
    headers: HeaderMap,
    Path(uid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&s, &headers, SITE_DEVICES_PATH, Some(&uid)).await {
        return r;
    }
    let Some((t, keep)) = site_owner(&s, &uid) else {
        return not_found();
    };
    let path = format!("/api/v2/site/{uid}/devices");
    match keep {
        None => device_page(&s, &q, &path, &t.datto.devices),
        Some(site) => {
            let devices: Vec<Value> = t
                .datto
                .devices
                .iter()
                .filter(|d| d.get("siteUid").and_then(Value::as_str) == Some(site.as_str()))
                .cloned()
                .collect();
            device_page(&s, &q, &path, &devices)
        }
    }
}
