//! A local simulator of the real APIs (OAuth2 token endpoints, Microsoft Graph,
//! NinjaOne) on 127.0.0.1, with their field names, paging and error shapes,
//! and faults on demand (429 storms, 503 bursts, truncated bodies, 403s,
//! expiring tokens). `auditpack demo` and the tests collect from it with the
//! real collectors.

mod fleet;
pub mod history;
mod limits;
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

pub use crate::sources::backup_spec::simulate::AcronisTenant;
pub use crate::sources::cove::simulate::CoveTenant;
pub use crate::sources::datto_bcdr::simulate::DattoBcdrTenant;
pub use crate::sources::datto_rmm::simulate::{DattoTenant, DattoThrottle};
pub use crate::sources::m365::simulate::{
    defender_paths, export_archive, graph_paths, incident_paths, DefenderTenant, GraphTenant,
};
pub use crate::sources::ninjaone::simulate::NinjaTenant;
pub use crate::sources::rmm_spec::simulate::TacticalTenant;
pub use crate::sources::veeam::simulate::VeeamTenant;
pub use fleet::{FleetAccounts, FleetOrg, FleetSpec};
pub use limits::{SimLimit, SimRateLimits};
pub use tenant::{demo_documents, OrgNames, Tenant};

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
    /// Largest page served by lists that announce their next page, whatever
    /// the client asks (real APIs page server-side too). The Defender machine
    /// list announces none and serves `$top` as asked, as documented.
    pub max_page_size: usize,
    /// How long issued tokens really last (they always claim 3599 s).
    pub token_ttl: Duration,
    /// Added to every response.
    pub latency: Duration,
    /// Accepted credentials.
    pub credentials: SimCredentials,
    /// Rate limits the simulated APIs enforce (429 with `Retry-After` beyond
    /// them); none by default.
    pub rate_limits: SimRateLimits,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            max_page_size: 999,
            token_ttl: Duration::from_secs(3599),
            latency: Duration::ZERO,
            credentials: SimCredentials::demo(),
            rate_limits: SimRateLimits::default(),
        }
    }
}

/// Which organisation a fault is confined to (see [`Simulator::add_fault_for`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FaultScope {
    /// Graph and Defender requests made with a token of this Entra tenant id.
    Tenant(String),
    /// NinjaOne requests filtered to this organization id (`df=org = <id>`),
    /// and `/v2/organization/<id>`.
    NinjaOrg(i64),
    /// Datto RMM requests under `/api/v2/site/<uid>`.
    DattoSite(String),
    /// Tactical RMM requests for this client (`/agents/?client=<id>`,
    /// `/clients/<id>/`, and the Windows updates of its agents).
    TacticalClient(i64),
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

/// A token the simulator issued: its audience, expiry and, for Microsoft
/// tokens, the tenant id it was issued for.
pub(crate) type IssuedToken = (Audience, Instant, Option<String>);

/// An Intune export job: status polls so far, selected columns, download
/// signature, tenant id.
pub(crate) type ExportJob = (usize, Value, String, Option<String>);

pub(crate) struct SimState {
    /// The default organisation: the tenant of `options.credentials.tenant_id`
    /// and the RMM records outside any generated organisation.
    pub(crate) tenant: Arc<Tenant>,
    /// Generated organisations (empty unless started with [`Simulator::start_fleet`]).
    pub(crate) fleet: fleet::FleetState,
    pub(crate) options: SimOptions,
    pub(crate) base_url: String,
    pub(crate) tokens: Mutex<HashMap<String, IssuedToken>>,
    pub(crate) requests: Mutex<HashMap<String, usize>>,
    pub(crate) scoped_requests: Mutex<HashMap<(FaultScope, String), usize>>,
    pub(crate) token_requests: Mutex<usize>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    pub(crate) scoped_faults: Mutex<Vec<(FaultScope, Fault)>>,
    pub(crate) buckets: limits::Buckets,
    /// Intune export jobs by id.
    pub(crate) export_jobs: Mutex<HashMap<String, ExportJob>>,
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
        Simulator::serve(tenant, fleet::FleetState::default(), options).await
    }

    async fn serve(
        tenant: Tenant,
        fleet: fleet::FleetState,
        options: SimOptions,
    ) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState {
            tenant: Arc::new(tenant),
            fleet,
            options,
            base_url: format!("http://{addr}"),
            tokens: Mutex::new(HashMap::new()),
            requests: Mutex::new(HashMap::new()),
            scoped_requests: Mutex::new(HashMap::new()),
            token_requests: Mutex::new(0),
            faults: Mutex::new(Vec::new()),
            scoped_faults: Mutex::new(Vec::new()),
            buckets: limits::Buckets::default(),
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
        let app = sources::backup_spec::simulate::routes(app);
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

    /// Inject a fault into every organisation's requests to `fault.path`
    /// (counted over all of them).
    pub fn add_fault(&self, fault: Fault) {
        if let Ok(mut faults) = self.state.faults.lock() {
            faults.push(fault);
        }
    }

    /// Inject a fault into one organisation's requests only; `fault.from_request`
    /// counts that organisation's requests to `fault.path` (see
    /// [`Simulator::requests_for`]).
    pub fn add_fault_for(&self, scope: FaultScope, fault: Fault) {
        if let Ok(mut faults) = self.state.scoped_faults.lock() {
            faults.push((scope, fault));
        }
    }

    /// Requests received for `path` within one organisation's scope.
    pub fn requests_for(&self, scope: &FaultScope, path: &str) -> usize {
        self.state
            .scoped_requests
            .lock()
            .map(|r| {
                r.get(&(scope.clone(), path.to_owned()))
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Every request received within one organisation's scope, over all paths
    /// (token requests are not scoped and not counted).
    pub fn requests_in(&self, scope: &FaultScope) -> usize {
        self.state
            .scoped_requests
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|((s, _), _)| s == scope)
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Requests answered 429 because a configured rate limit was exceeded.
    pub fn throttled_requests(&self) -> usize {
        self.state.buckets.refused()
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
        self.before_scoped(path, None).await
    }

    /// [`SimState::before`] for a request of one organisation: faults added
    /// for `scope` count and apply too.
    pub(crate) async fn before_scoped(
        &self,
        path: &str,
        scope: Option<FaultScope>,
    ) -> Option<Response> {
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency).await;
        }
        let n = {
            let mut requests = self.requests.lock().ok()?;
            let n = requests.entry(path.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        let due = |f: &Fault, n: usize| {
            f.path == path && n >= f.from_request && n < f.from_request + f.times
        };
        let mut fault = self
            .faults
            .lock()
            .ok()?
            .iter()
            .find(|f| due(f, n))
            .map(|f| f.kind.clone());
        if let Some(scope) = scope {
            let m = {
                let mut requests = self.scoped_requests.lock().ok()?;
                let m = requests
                    .entry((scope.clone(), path.to_owned()))
                    .or_insert(0);
                *m += 1;
                *m
            };
            if fault.is_none() {
                fault = self
                    .scoped_faults
                    .lock()
                    .ok()?
                    .iter()
                    .find(|(s, f)| *s == scope && due(f, m))
                    .map(|(_, f)| f.kind.clone());
            }
        }
        Some(match fault? {
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
        self.issue_token_for(audience, None)
    }

    /// Issue a token for `audience`, bound to Entra tenant `tenant` if given.
    pub(crate) fn issue_token_for(&self, audience: Audience, tenant: Option<String>) -> Response {
        let token = format!("sim-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(
                token.clone(),
                (audience, Instant::now() + self.options.token_ttl, tenant),
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
                .and_then(|tokens| tokens.get(t).map(|(a, e, _)| (*a, *e)))
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

    /// The Entra tenant id the request's bearer token was issued for (valid
    /// or not), if any.
    pub(crate) fn bearer_tenant(&self, headers: &HeaderMap) -> Option<String> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?;
        self.tokens
            .lock()
            .ok()?
            .get(token)
            .and_then(|(_, _, tenant)| tenant.clone())
    }

    /// The Microsoft 365 organisation a request is for: the generated tenant
    /// its token names, else the default one.
    pub(crate) fn m365_tenant(&self, headers: &HeaderMap) -> Arc<Tenant> {
        self.bearer_tenant(headers)
            .and_then(|id| self.fleet.by_tenant_id(&id))
            .and_then(|i| self.fleet.org(i))
            .unwrap_or_else(|| self.tenant.clone())
    }

    /// The fault scope of a Microsoft 365 request (its token's tenant).
    pub(crate) fn m365_scope(&self, headers: &HeaderMap) -> Option<FaultScope> {
        self.bearer_tenant(headers).map(FaultScope::Tenant)
    }

    /// Whether `tenant` is a tenant id this simulator serves.
    pub(crate) fn knows_tenant(&self, tenant: &str) -> bool {
        tenant == self.options.credentials.tenant_id || self.fleet.by_tenant_id(tenant).is_some()
    }

    /// `Some(429)` when the request exceeds a configured limit: each
    /// `(bucket key, limit)` is drawn from in turn. `retry_after` says
    /// whether the answer carries `Retry-After` (Conditional Access does not).
    pub(crate) fn throttle(
        &self,
        draws: &[(String, Option<SimLimit>)],
        retry_after: bool,
    ) -> Option<Response> {
        let wait = self.buckets.draw(draws)?;
        let body = json!({"error": {"code": "TooManyRequests", "message": "Rate limit is exceeded. Try again later."}}).to_string();
        let mut resp = (
            StatusCode::TOO_MANY_REQUESTS,
            [("content-type", "application/json")],
            body,
        )
            .into_response();
        if retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = secs.max(1).to_string().parse() {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        Some(resp)
    }

    pub(crate) fn count_token_request(&self) {
        if let Ok(mut n) = self.token_requests.lock() {
            *n += 1;
        }
    }
}
