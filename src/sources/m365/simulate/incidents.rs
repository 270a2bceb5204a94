//! Microsoft Graph `security/incidents` as the simulator serves it: pages of
//! at most 50 announced by `@odata.nextLink`, each incident's `alerts` only
//! on `$expand=alerts`, the Graph token audience, and faults like every
//! other path (a `Forbidden` fault plays the missing
//! SecurityIncident.Read.All permission).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;

use super::graph::{gate, graph_page_max};
use crate::simulate::{Shared, SimRouter};

/// Paths, as [`crate::simulate::Fault::path`] names them.
pub mod paths {
    /// Security incidents.
    pub const INCIDENTS: &str = "/v1.0/security/incidents";
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    router.route(paths::INCIDENTS, get(incidents))
}

async fn incidents(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&s, paths::INCIDENTS, &headers).await {
        return r;
    }
    let expand = q
        .get("$expand")
        .is_some_and(|e| e.split(',').any(|x| x.trim() == "alerts"));
    let records: Vec<Value> = s
        .m365_tenant(&headers)
        .graph
        .security_incidents
        .iter()
        .map(|i| {
            let mut i = i.clone();
            if !expand {
                if let Some(map) = i.as_object_mut() {
                    map.remove("alerts");
                }
            }
            i
        })
        .collect();
    graph_page_max(&s, paths::INCIDENTS, "security/incidents", &records, &q, 50)
}
