//! Many organisations on shared accounts: the fleet simulator keeps every
//! organisation's records apart (per tenant, per RMM organization, site and
//! client), confines faults to one organisation, and enforces rate limits.

use crate::common;

use auditpack::simulate::{
    Fault, FaultKind, FaultScope, FleetSpec, SimLimit, SimRateLimits, Simulator,
};
use common::Harness;
use serde_json::Value;

fn fleet_harness(spec: FleetSpec) -> Harness {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = runtime
        .block_on(Simulator::start_fleet(spec))
        .expect("simulator starts");
    Harness {
        dir: tempfile::tempdir().expect("tempdir"),
        runtime,
        sim,
    }
}

fn small_fleet() -> FleetSpec {
    FleetSpec {
        organisations: 3,
        users: 12,
        devices: 6,
        seed: 42,
        ..FleetSpec::default()
    }
}

/// A raw client of the simulator.
struct Client<'a> {
    h: &'a Harness,
    http: reqwest::Client,
}

impl Client<'_> {
    fn new(h: &Harness) -> Client<'_> {
        Client {
            h,
            http: reqwest::Client::new(),
        }
    }

    fn token(&self, path: &str, form: &[(&str, &str)], basic: bool) -> String {
        let url = format!("{}{path}", self.h.sim.base_url());
        let mut req = self.http.post(url).form(form);
        if basic {
            req = req.basic_auth("public-client", Some("public"));
        }
        let bytes = self
            .h
            .runtime
            .block_on(async { req.send().await?.bytes().await })
            .expect("token");
        let v: Value = serde_json::from_slice(&bytes).expect("token JSON");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    fn graph_token(&self, tenant: &str) -> String {
        let a = self.h.sim.fleet_accounts();
        self.token(
            &format!("/{tenant}/oauth2/v2.0/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.graph_client_id),
                ("client_secret", &a.graph_secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            false,
        )
    }

    fn get(&self, path_and_query: &str, header: (&str, &str)) -> (u16, Value) {
        let url = format!("{}{path_and_query}", self.h.sim.base_url());
        let req = self.http.get(url).header(header.0, header.1);
        self.h
            .runtime
            .block_on(async {
                let r = req.send().await?;
                let status = r.status().as_u16();
                let bytes = r.bytes().await?;
                Ok::<_, reqwest::Error>((
                    status,
                    serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                ))
            })
            .expect("request")
    }
}

fn texts(records: &Value, pointer: &str) -> Vec<String> {
    records
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.pointer(pointer).and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_fleet_organisation_is_served_apart_by_tenant_organization_site_and_client() {
    let h = fleet_harness(small_fleet());
    let c = Client::new(&h);
    let orgs = h.sim.fleet().to_vec();
    assert_eq!(orgs.len(), 3);
    let a = h.sim.fleet_accounts();

    for (i, org) in orgs.iter().enumerate() {
        let label = format!("org{:03}", i + 1);
        let host = label.to_uppercase();
        // Graph: the token's tenant decides whose users come back.
        let bearer = format!("Bearer {}", c.graph_token(org.tenant_id()));
        let (status, users) = c.get("/v1.0/users?$top=999", ("authorization", &bearer));
        assert_eq!(status, 200);
        let upns = texts(&users["value"], "/userPrincipalName");
        assert_eq!(upns.len(), 12);
        assert!(
            upns.iter()
                .all(|u| u.ends_with(&format!("@{label}.example"))),
            "{upns:?}"
        );
        assert!(upns.contains(&format!("user7@{label}.example")));

        // NinjaOne: the device filter keeps one organization's devices.
        let ninja = c.token(
            "/ws/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.ninja_client_id),
                ("client_secret", &a.ninja_secret),
                ("scope", "monitoring"),
            ],
            false,
        );
        let ninja = format!("Bearer {ninja}");
        let df = format!("org%20%3D%20{}", org.ninja_organization_id());
        let (_, devices) = c.get(&format!("/v2/devices?df={df}"), ("authorization", &ninja));
        let names = texts(&devices, "/systemName");
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with(&format!("{host}-WS-"))));
        let (_, patches) = c.get(
            &format!("/v2/queries/os-patch-installs?df={df}"),
            ("authorization", &ninja),
        );
        let ids: Vec<i64> = devices
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_i64())
            .collect();
        let installs = patches["results"].as_array().expect("results");
        assert!(!installs.is_empty());
        assert!(installs
            .iter()
            .all(|p| p["deviceId"].as_i64().is_some_and(|d| ids.contains(&d))));
        let (status, record) = c.get(
            &format!("/v2/organization/{}", org.ninja_organization_id()),
            ("authorization", &ninja),
        );
        assert_eq!((status, record["name"].as_str()), (200, Some(org.name())));

        // Datto RMM: the site's own device list.
        let datto = c.token(
            "/auth/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", &a.datto_api_key),
                ("password", &a.datto_api_secret),
            ],
            true,
        );
        let datto = format!("Bearer {datto}");
        let (_, page) = c.get(
            &format!("/api/v2/site/{}/devices", org.datto_site_uid()),
            ("authorization", &datto),
        );
        let hosts = texts(&page["devices"], "/hostname");
        assert_eq!(hosts.len(), 6);
        assert!(hosts.iter().all(|n| n.starts_with(&format!("{host}-WS-"))));

        // Tactical RMM: the client's agents.
        let (_, agents) = c.get(
            &format!("/agents/?client={}", org.tactical_client_id()),
            ("x-api-key", &a.tactical_api_key),
        );
        let hosts = texts(&agents, "/hostname");
        assert_eq!(hosts.len(), 6);
        assert!(hosts.iter().all(|n| n.starts_with(&format!("{host}-WS-"))));
    }

    // The demo organisation stays the default tenant; the account-wide lists
    // hold every organisation.
    let demo = auditpack::simulate::SimOptions::default()
        .credentials
        .tenant_id;
    let bearer = format!("Bearer {}", c.graph_token(&demo));
    let (_, users) = c.get("/v1.0/users?$top=999", ("authorization", &bearer));
    assert!(texts(&users["value"], "/userPrincipalName")
        .iter()
        .all(|u| !u.contains("@org0")));
    let (_, agents) = c.get("/agents/", ("x-api-key", &a.tactical_api_key));
    assert_eq!(texts(&agents, "/hostname").len(), 18);

    // Ids the account does not know.
    let (status, _) = c.get(
        "/api/v2/site/00000000-0000-0000-0000-000000000000",
        ("authorization", "Bearer x"),
    );
    assert_eq!(status, 401, "the token is checked before the site");
    let (status, _) = c.get("/clients/999999/", ("x-api-key", &a.tactical_api_key));
    assert_eq!(status, 404);
}

#[test]
fn a_fault_for_one_tenant_leaves_the_others_alone_and_limits_answer_429() {
    let mut spec = small_fleet();
    spec.rate_limits = SimRateLimits {
        graph_per_tenant: Some(SimLimit::per_secs(3, 60)),
        ..SimRateLimits::default()
    };
    let h = fleet_harness(spec);
    let c = Client::new(&h);
    let orgs = h.sim.fleet().to_vec();
    let (one, two) = (&orgs[0], &orgs[1]);
    h.sim.add_fault_for(
        FaultScope::Tenant(one.tenant_id().to_owned()),
        Fault {
            path: "/v1.0/users".into(),
            from_request: 1,
            times: 1,
            kind: FaultKind::Unavailable,
        },
    );
    let b1 = format!("Bearer {}", c.graph_token(one.tenant_id()));
    let b2 = format!("Bearer {}", c.graph_token(two.tenant_id()));
    assert_eq!(c.get("/v1.0/users", ("authorization", &b2)).0, 200);
    assert_eq!(c.get("/v1.0/users", ("authorization", &b1)).0, 503);
    assert_eq!(c.get("/v1.0/users", ("authorization", &b1)).0, 200);
    let scope = FaultScope::Tenant(one.tenant_id().to_owned());
    assert_eq!(h.sim.requests_for(&scope, "/v1.0/users"), 2);

    // Three per minute per tenant: the fourth of tenant two is refused with
    // a Retry-After, tenant one still has one left.
    assert_eq!(c.get("/v1.0/users", ("authorization", &b2)).0, 200);
    assert_eq!(c.get("/v1.0/users", ("authorization", &b2)).0, 200);
    let url = format!("{}/v1.0/users", h.sim.base_url());
    let resp = h
        .runtime
        .block_on(
            reqwest::Client::new()
                .get(url)
                .header("authorization", &b2)
                .send(),
        )
        .expect("request");
    assert_eq!(resp.status().as_u16(), 429);
    let wait: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=20).contains(&wait), "{wait}");
    assert_eq!(c.get("/v1.0/users", ("authorization", &b1)).0, 200);
    assert_eq!(h.sim.throttled_requests(), 1);
}
