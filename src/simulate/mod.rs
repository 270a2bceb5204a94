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

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::sources;

pub use crate::sources::cove::simulate::CoveTenant;
pub use crate::sources::datto_bcdr::simulate::DattoBcdrTenant;
pub use crate::sources::datto_rmm::simulate::{DattoTenant, DattoThrottle};
pub use crate::sources::m365::simulate::{
    defender_paths, export_archive, graph_paths, incident_paths, DefenderTenant, GraphTenant,
};
pub use crate::sources::ninjaone::simulate::NinjaTenant;
pub use crate::sources::rmm_spec::simulate::TacticalTenant;
pub use crate::sources::veeam::simulate::VeeamTenant;
pub use tenant::{demo_documents, Tenant};

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
    /// DER of the certificate registered on the Graph app, if any (enables
    /// certificate client assertions).
    pub graph_certificate: Option<Vec<u8>>,
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
            graph_certificate: None,
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

pub(crate) struct SimState {
    pub(crate) tenant: Tenant,
    pub(crate) options: SimOptions,
    pub(crate) base_url: String,
    pub(crate) tokens: Mutex<HashMap<String, (Audience, Instant)>>,
    pub(crate) requests: Mutex<HashMap<String, usize>>,
    pub(crate) token_requests: Mutex<usize>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    /// Intune export jobs: id -> (status polls so far, selected columns, download signature).
    pub(crate) export_jobs: Mutex<HashMap<String, (usize, Value, String)>>,
    /// Every export download body served, in order.
    pub(crate) export_served: Mutex<Vec<Vec<u8>>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Audience {
    Graph,
    Ninja,
    Datto,
    Defender,
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
            export_jobs: Mutex::new(HashMap::new()),
            export_served: Mutex::new(Vec::new()),
        });
        let app = Router::new();
        let app = sources::m365::simulate::routes(app);
        let app = sources::ninjaone::simulate::routes(app);
        let app = sources::datto_rmm::simulate::routes(app);
        let app = sources::rmm_spec::simulate::routes(app);
        let app = sources::datto_bcdr::simulate::routes(app);
        let app = sources::cove::simulate::routes(app);
        let app = sources::veeam::simulate::routes(app);
        let app = app.with_state(state.clone());
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

    /// Every Intune export download body served so far, in order.
    pub fn export_downloads(&self) -> Vec<Vec<u8>> {
        self.state
            .export_served
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
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

/// The handlers' state extractor.
pub(crate) type Shared = State<Arc<SimState>>;

/// The router type every API module adds its routes to.
pub(crate) type SimRouter = Router<Arc<SimState>>;

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "innerError": {"date": "2026-01-01T00:00:00"}}}),
    )
}

impl SimState {
    /// Count the request, apply latency, and return the fault response if one is due.
    pub(crate) async fn before(&self, path: &str) -> Option<Response> {
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

    pub(crate) fn issue_token(&self, audience: Audience) -> Response {
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
    pub(crate) fn denied(&self, headers: &HeaderMap, audience: Audience) -> Option<Response> {
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

    pub(crate) fn count_token_request(&self) {
        if let Ok(mut n) = self.token_requests.lock() {
            *n += 1;
        }
    }
}
