//! Microsoft Graph and the Entra token endpoint, as the simulator serves them.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use serde_json::{json, Value};

use super::{graph_error, json_response, Audience, Shared, SimRouter, SimState};

/// The Graph records of a simulated tenant.
#[derive(Clone, Debug, Default)]
pub struct GraphTenant {
    /// `/v1.0/users` records.
    pub users: Vec<Value>,
    /// `userRegistrationDetails` records.
    pub registrations: Vec<Value>,
}

pub(super) fn routes(router: SimRouter) -> SimRouter {
    router
        .route("/{tenant}/oauth2/v2.0/token", post(graph_token))
        .route("/v1.0/users", get(graph_users))
        .route(
            "/v1.0/reports/authenticationMethods/userRegistrationDetails",
            get(graph_registrations),
        )
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
    graph_page(&s, PATH, "users", &s.tenant.graph.users, &q)
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
        &s.tenant.graph.registrations,
        &q,
    )
}
