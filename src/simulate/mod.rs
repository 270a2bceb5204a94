//! A local simulator of the real APIs (OAuth2 token endpoints, Microsoft Graph,
//! NinjaOne) on 127.0.0.1, with their field names, paging and error shapes,
//! and faults on demand (429 storms, 503 bursts, truncated bodies, 403s,
//! expiring tokens). `auditpack demo` and the tests collect from it with the
//! real collectors.

mod tenant;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use tenant::Tenant;

/// Credentials the simulator accepts.
#[derive(Clone, Debug)]
pub struct SimCredentials {
    /// Entra tenant id.
    pub tenant_id: String,
    /// Graph app client id.
    pub graph_client_id: String,
    /// Graph app client secret.
    pub graph_secret: String,
    /// NinjaOne client id.
    pub ninja_client_id: String,
    /// NinjaOne client secret.
    pub ninja_secret: String,
}

impl SimCredentials {
    /// The demo's credentials (they open nothing but the simulator).
    pub fn demo() -> SimCredentials {
        SimCredentials {
            tenant_id: "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f".into(),
            graph_client_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".into(),
            graph_secret: "simulator-graph-secret".into(),
            ninja_client_id: "simulator-ninja-client".into(),
            ninja_secret: "simulator-ninja-secret".into(),
        }
    }
}

/// How the simulator behaves.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Largest page served, whatever the client asks (real APIs page server-side too).
    pub max_page_size: usize,
    /// How long issued tokens really last (they always claim 3599 s).
    pub token_ttl: Duration,
    /// Added to every response.
    pub latency: Duration,
    /// Accepted credentials.
    pub credentials: SimCredentials,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            max_page_size: 999,
            token_ttl: Duration::from_secs(3599),
            latency: Duration::ZERO,
            credentials: SimCredentials::demo(),
        }
    }
}

/// A fault injected into the answers for one path.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Path the fault applies to, e.g. `/v1.0/users`.
    pub path: String,
    /// The 1-based request number (counting every request to `path`) at which it starts.
    pub from_request: usize,
    /// How many consecutive requests it affects.
    pub times: usize,
    /// What the client gets.
    pub kind: FaultKind,
}

/// What a faulty answer looks like.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// 429 with an optional `Retry-After` in seconds.
    TooManyRequests(Option<u64>),
    /// 503 Service Unavailable.
    Unavailable,
    /// 504 Gateway Timeout.
    GatewayTimeout,
    /// 403 with a Graph `Authorization_RequestDenied` error.
    Forbidden,
    /// 200 whose JSON body is cut off halfway.
    TruncatedBody,
    /// 401 as if the token had expired.
    TokenExpired,
}

struct SimState {
    tenant: Tenant,
    options: SimOptions,
    base_url: String,
    tokens: Mutex<HashMap<String, (Audience, Instant)>>,
    requests: Mutex<HashMap<String, usize>>,
    token_requests: Mutex<usize>,
    faults: Mutex<Vec<Fault>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Audience {
    Graph,
    Ninja,
}

/// A running simulator; stops when dropped or on [`Simulator::stop`].
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Serve `tenant` on a free loopback port. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(tenant: Tenant, options: SimOptions) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState {
            tenant,
            options,
            base_url: format!("http://{addr}"),
            tokens: Mutex::new(HashMap::new()),
            requests: Mutex::new(HashMap::new()),
            token_requests: Mutex::new(0),
            faults: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(graph_token))
            .route("/v1.0/users", get(graph_users))
            .route(
                "/v1.0/reports/authenticationMethods/userRegistrationDetails",
                get(graph_registrations),
            )
            .route("/ws/oauth/token", post(ninja_token))
            .route("/v2/devices", get(ninja_devices))
            .route("/v2/queries/os-patches", get(ninja_os_patches))
            .with_state(state.clone());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Simulator {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`: the login authority, Graph host and NinjaOne host all at once.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The records served.
    pub fn tenant(&self) -> &Tenant {
        &self.state.tenant
    }

    /// Inject a fault.
    pub fn add_fault(&self, fault: Fault) {
        if let Ok(mut faults) = self.state.faults.lock() {
            faults.push(fault);
        }
    }

    /// Requests received for `path` (every attempt counts).
    pub fn requests(&self, path: &str) -> usize {
        self.state
            .requests
            .lock()
            .map(|r| r.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Token requests received.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.lock().map(|n| *n).unwrap_or(0)
    }

    /// Stop serving and wait for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

type Shared = State<Arc<SimState>>;

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "innerError": {"date": "2026-01-01T00:00:00"}}}),
    )
}

impl SimState {
    /// Count the request, apply latency, and return the fault response if one is due.
    async fn before(&self, path: &str) -> Option<Response> {
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency).await;
        }
        let n = {
            let mut requests = self.requests.lock().ok()?;
            let n = requests.entry(path.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        let fault = self
            .faults
            .lock()
            .ok()?
            .iter()
            .find(|f| f.path == path && n >= f.from_request && n < f.from_request + f.times)?
            .kind
            .clone();
        Some(match fault {
            FaultKind::TooManyRequests(retry_after) => {
                let body =
                    json!({"error": {"code": "TooManyRequests", "message": "Too many requests"}})
                        .to_string();
                let mut resp = (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("content-type", "application/json")],
                    body,
                )
                    .into_response();
                if let Some(secs) = retry_after {
                    if let Ok(v) = secs.to_string().parse() {
                        resp.headers_mut().insert("retry-after", v);
                    }
                }
                resp
            }
            FaultKind::Unavailable => graph_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "Service unavailable",
            ),
            FaultKind::GatewayTimeout => graph_error(
                StatusCode::GATEWAY_TIMEOUT,
                "gatewayTimeout",
                "Gateway timeout",
            ),
            FaultKind::Forbidden => graph_error(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
            FaultKind::TokenExpired => graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            ),
            FaultKind::TruncatedBody => {
                let body = r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users","value":[{"id":"00000000-0000"#;
                (StatusCode::OK, [("content-type", "application/json")], body).into_response()
            }
        })
    }

    fn issue_token(&self, audience: Audience) -> Response {
        let token = format!("sim-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(
                token.clone(),
                (audience, Instant::now() + self.options.token_ttl),
            );
        }
        json_response(
            StatusCode::OK,
            &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
        )
    }

    /// `Some(401 response)` unless the bearer token is valid for `audience`.
    fn denied(&self, headers: &HeaderMap, audience: Audience) -> Option<Response> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let valid = token.is_some_and(|t| {
            self.tokens
                .lock()
                .ok()
                .and_then(|tokens| tokens.get(t).copied())
                .is_some_and(|(aud, exp)| aud == audience && Instant::now() < exp)
        });
        (!valid).then(|| {
            graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty, invalid or expired.",
            )
        })
    }

    fn count_token_request(&self) {
        if let Ok(mut n) = self.token_requests.lock() {
            *n += 1;
        }
    }
}

async fn graph_token(
    State(s): Shared,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.count_token_request();
    let c = &s.options.credentials;
    if tenant != c.tenant_id {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": format!("AADSTS90002: Tenant '{tenant}' not found.")}),
        );
    }
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id") == Some(&c.graph_client_id)
        && form.get("client_secret") == Some(&c.graph_secret);
    if !ok {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."}),
        );
    }
    s.issue_token(Audience::Graph)
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

/// Serve a Graph collection with `$top`, `$select` and an opaque `$skiptoken`.
fn graph_page(
    s: &SimState,
    path: &str,
    context: &str,
    records: &[Value],
    q: &HashMap<String, String>,
) -> Response {
    let top = q
        .get("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 999)
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
                    .filter(|(k, _)| *k == "id" || fields.contains(&k.as_str()))
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
    if let Some(fault) = s.before(PATH).await {
        return fault;
    }
    if let Some(denied) = s.denied(&headers, Audience::Graph) {
        return denied;
    }
    graph_page(&s, PATH, "users", &s.tenant.users, &q)
}

async fn graph_registrations(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    const PATH: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
    if let Some(fault) = s.before(PATH).await {
        return fault;
    }
    if let Some(denied) = s.denied(&headers, Audience::Graph) {
        return denied;
    }
    graph_page(
        &s,
        PATH,
        "reports/authenticationMethods/userRegistrationDetails",
        &s.tenant.registrations,
        &q,
    )
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
        .ninja_devices
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
    if let Some(fault) = s.before("/v2/queries/os-patches").await {
        return fault;
    }
    if let Some(denied) = s.denied(&headers, Audience::Ninja) {
        return denied;
    }
    let size = ninja_page_size(&s, &q);
    let offset = match q.get("cursor") {
        None => 0,
        Some(c) => match c.strip_prefix("cur-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return json_response(StatusCode::BAD_REQUEST, &json!({"error": "invalid cursor"}))
            }
        },
    };
    let records = &s.tenant.ninja_os_patches;
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
