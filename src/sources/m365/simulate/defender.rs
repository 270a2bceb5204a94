//! Microsoft Defender for Endpoint API (`/api/machines`, `/api/deviceavinfo`)
//! as the simulator serves it: its own token audience. The machine list pages
//! as documented (List machines API): `$top` up to 10,000 honoured as asked,
//! `$skip`, and no `@odata.nextLink`, so a client must ask for the page after
//! a full one itself; a page with no machine on it is answered 404, as
//! documented for no recent machines. The AV report pages by `@odata.nextLink` (Export device
//! antivirus health report, JSON response), at most the simulator's page size.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{json, Value};

use crate::simulate::{graph_error, json_response, Audience, Shared, SimRouter, SimState};

/// The Defender for Endpoint records of a simulated tenant.
#[derive(Clone, Debug, Default)]
pub struct DefenderTenant {
    /// `/api/machines` records.
    pub machines: Vec<Value>,
    /// `/api/deviceavinfo` records.
    pub av_info: Vec<Value>,
}

/// Paths, as [`crate::simulate::Fault::path`] names them.
pub mod paths {
    /// Machines.
    pub const MACHINES: &str = "/api/machines";
    /// Antivirus health.
    pub const AV_INFO: &str = "/api/deviceavinfo";
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router
        .route(paths::MACHINES, get(machines))
        .route(paths::AV_INFO, get(av_info))
}

/// The documented largest `$top` of the machine list.
const MAX_TOP: usize = 10_000;

/// How a list announces its next page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NextPage {
    /// `@odata.nextLink`, pages capped at the simulator's page size.
    Link,
    /// None: `$top` (up to [`MAX_TOP`]) and `$skip` are the client's to drive.
    Skip,
}

fn page(
    s: &SimState,
    path: &str,
    context: &str,
    records: &[Value],
    q: &HashMap<String, String>,
    paging: NextPage,
) -> Response {
    let top = match q.get("$top").map(|t| t.parse::<usize>()) {
        None => MAX_TOP,
        Some(Ok(n)) if (1..=MAX_TOP).contains(&n) => n,
        Some(_) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid $top"),
    };
    let top = match paging {
        NextPage::Link => top.min(s.options.max_page_size.max(1)),
        NextPage::Skip => top,
    };
    let skip = match q.get("$skip").map(|v| v.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid $skip"),
    };
    let items: Vec<&Value> = records.iter().skip(skip).take(top).collect();
    // List machines: "If no recent machines - 404 Not Found", past the end of
    // the list too.
    if paging == NextPage::Skip && items.is_empty() {
        return graph_error(StatusCode::NOT_FOUND, "NotFound", "No recent machines");
    }
    let mut body = json!({"@odata.context": format!("https://api.security.microsoft.com/api/$metadata#{context}"), "value": items});
    if paging == NextPage::Link && skip + top < records.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}{path}?$top={top}&$skip={}",
            s.base_url,
            skip + top
        ));
    }
    json_response(StatusCode::OK, &body)
}

/// Fault, token check, then the tenant's Defender limits.
async fn gate(s: &SimState, path: &str, headers: &HeaderMap) -> Option<Response> {
    if let Some(fault) = s.before_scoped(path, s.m365_scope(headers)).await {
        return Some(fault);
    }
    if let Some(denied) = s.denied(headers, Audience::Defender) {
        return Some(denied);
    }
    let tenant = s
        .bearer_tenant(headers)
        .unwrap_or_else(|| s.options.credentials.tenant_id.clone());
    let l = &s.options.rate_limits;
    s.throttle(
        &[
            (format!("defender:{tenant}:minute"), l.defender_per_minute),
            (format!("defender:{tenant}:hour"), l.defender_per_hour),
        ],
        true,
    )
}

async fn machines(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&s, paths::MACHINES, &headers).await {
        return r;
    }
    page(
        &s,
        paths::MACHINES,
        "Machines",
        &s.m365_tenant(&headers).defender.machines,
        &q,
        NextPage::Skip,
    )
}

async fn av_info(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&s, paths::AV_INFO, &headers).await {
        return r;
    }
    page(
        &s,
        paths::AV_INFO,
        "DeviceAvInfo",
        &s.m365_tenant(&headers).defender.av_info,
        &q,
        NextPage::Link,
    )
}
