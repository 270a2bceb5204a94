//! Acronis Cyber Protect Cloud as the simulator serves it, shaped after
//! Acronis's API documentation (see `README.md` in this folder):
//! - `POST /api/2/idp/token`: `grant_type=client_credentials` in the form,
//!   the client id and secret in HTTP Basic (a secret in the form is
//!   refused, as a client that does not use Basic is); answers a bearer
//!   token with `expires_in` 7200;
//! - `GET /api/resource_management/v4/resources` (filter `type`) and
//!   `GET /api/task_manager/v2/tasks` (page size `limit`): `{items, paging:
//!   {cursors: {after}}}`, the next page asked for with `?after=<cursor>`; the
//!   last page carries no `after`;
//! - 401 for a missing, unknown or expired token, 403 for a path the API
//!   client's role may not read ([`AcronisTenant::forbidden`]).
//!
//! Faults (429, 503, truncated pages, expired tokens, 403) come from the
//! simulator's fault list, keyed on the paths above.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use base64::Engine;
use serde_json::{json, Value};

use crate::simulate::{json_response, Shared, SimRouter, SimState};

/// The token endpoint.
pub const TOKEN_PATH: &str = "/api/2/idp/token";
/// The resource (workload) list.
pub const RESOURCES_PATH: &str = "/api/resource_management/v4/resources";
/// The task list.
pub const TASKS_PATH: &str = "/api/task_manager/v2/tasks";

/// Page size when the request names none.
const DEFAULT_LIMIT: usize = 100;

/// The Acronis records of a simulated customer tenant.
#[derive(Clone, Debug, Default)]
pub struct AcronisTenant {
    /// The API client's id.
    pub client_id: String,
    /// The API client's secret.
    pub client_secret: String,
    /// `/resources` records.
    pub resources: Vec<Value>,
    /// `/tasks` records.
    pub tasks: Vec<Value>,
    /// Paths the API client's role may not read (answered 403).
    pub forbidden: BTreeSet<String>,
    tokens: Arc<Mutex<BTreeMap<String, Instant>>>,
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router
        .route(TOKEN_PATH, post(token))
        .route(
            RESOURCES_PATH,
            get(
                |s: Shared, h: HeaderMap, q: Query<HashMap<String, String>>| {
                    list(s, h, q, RESOURCES_PATH)
                },
            ),
        )
        .route(
            TASKS_PATH,
            get(
                |s: Shared, h: HeaderMap, q: Query<HashMap<String, String>>| {
                    list(s, h, q, TASKS_PATH)
                },
            ),
        )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "domain": "Simulator"}}),
    )
}

/// The HTTP Basic client id and secret, each form-urldecoded.
fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b'+', _) => {
                    out.push(b' ');
                    i += 1;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    };
    Some((decode(id)?, decode(secret)?))
}

async fn token(
    State(s): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = s.before(TOKEN_PATH).await {
        return fault;
    }
    s.count_token_request();
    let t = &s.tenant.acronis;
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}),
        );
    }
    let ok = !t.client_id.is_empty()
        && !form.contains_key("client_secret")
        && basic_client(&headers)
            .is_some_and(|(id, secret)| id == t.client_id && secret == t.client_secret);
    if !ok {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed."}),
        );
    }
    let token = format!("acr-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    if let Ok(mut tokens) = t.tokens.lock() {
        tokens.insert(token.clone(), Instant::now() + s.options.token_ttl);
    }
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "bearer", "expires_in": 7200, "scope": ""}),
    )
}

fn denied(s: &SimState, headers: &HeaderMap, path: &str) -> Option<Response> {
    let t = &s.tenant.acronis;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = token.is_some_and(|tok| {
        t.tokens
            .lock()
            .map(|tokens| tokens.get(tok).is_some_and(|exp| Instant::now() < *exp))
            .unwrap_or(false)
    });
    if !valid {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The access token is missing, invalid or expired.",
        ));
    }
    t.forbidden.contains(path).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The access token has insufficient privileges.",
        )
    })
}

/// The cursor after `offset` records (opaque to clients).
fn cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn offset(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

async fn list(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    path: &'static str,
) -> Response {
    if let Some(fault) = s.before(path).await {
        return fault;
    }
    if let Some(denied) = denied(&s, &headers, path) {
        return denied;
    }
    let t = &s.tenant.acronis;
    let all: Vec<&Value> = match path {
        RESOURCES_PATH => t
            .resources
            .iter()
            .filter(|r| {
                q.get("type")
                    .is_none_or(|ty| r.get("type").and_then(Value::as_str) == Some(ty.as_str()))
            })
            .collect(),
        _ => t.tasks.iter().collect(),
    };
    let start = match q.get("after") {
        None => 0,
        Some(c) => match offset(c) {
            Some(n) => n,
            None => return error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid cursor."),
        },
    };
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, 1000)
        .min(s.options.max_page_size.max(1));
    let items: Vec<&Value> = all.iter().skip(start).take(limit).copied().collect();
    let end = start + items.len();
    let cursors = if end < all.len() {
        json!({"after": cursor(end)})
    } else {
        json!({})
    };
    json_response(
        StatusCode::OK,
        &json!({"items": items, "paging": {"cursors": cursors}}),
    )
}
