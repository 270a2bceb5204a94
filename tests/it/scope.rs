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
    assert_eq!(h.sim.requests_in(&scope), 2);

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

/// Write the shared secrets next to a config for `org`'s sources and run it.
fn run_org(h: &Harness, name: &str, sources: &str) -> auditpack::pipeline::RunOutcome {
    let a = h.sim.fleet_accounts();
    for (file, value) in [
        ("graph.secret", a.graph_secret.as_str()),
        ("ninja.secret", a.ninja_secret.as_str()),
        ("datto.key", a.datto_api_key.as_str()),
        ("datto.secret", a.datto_api_secret.as_str()),
        ("tactical.key", a.tactical_api_key.as_str()),
    ] {
        std::fs::write(h.path().join(file), value).expect("write secret");
    }
    let text = format!(
        "[organisation]\nname = \"{name}\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n{sources}"
    );
    let path = h.path().join("auditpack.toml");
    std::fs::write(&path, text).expect("write config");
    h.run(&auditpack::config::Config::load(&path).expect("config loads"))
}

/// Every file of the run folder, as text.
fn run_texts(run_dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    common::all_files(run_dir)
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "zip" && e != "pdf"))
        .map(|p| {
            let text = String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned();
            (p, text)
        })
        .collect()
}

#[test]
fn a_scoped_run_holds_only_its_own_organisation_from_every_shared_account() {
    let h = fleet_harness(FleetSpec {
        rate_limits: SimRateLimits::default(),
        ..small_fleet()
    });
    let orgs = h.sim.fleet().to_vec();
    let me = &orgs[1];
    let sources = me
        .sources_toml(&h.sim.base_url(), &h.sim.fleet_accounts())
        .replace(
            "defender_url",
            &format!("{}\ndefender_url", common::FAST_M365_LIMITS),
        );
    let outcome = run_org(&h, me.name(), &sources);
    for (name, report) in &outcome.manifest.sources {
        assert_eq!(
            report.status,
            auditpack::evidence::SourceStatus::Complete,
            "{name}: {report:?}"
        );
    }
    let tenant = h.sim.fleet_tenant(1).expect("org 2");
    let ninja = &outcome.manifest.sources["ninja"];
    assert_eq!(
        ninja.datasets["devices"].records,
        tenant.ninja.devices.len()
    );
    assert_eq!(ninja.datasets["organization"].records, 1);
    assert_eq!(
        outcome.manifest.sources["datto"].datasets["devices"].records,
        6
    );
    assert_eq!(
        outcome.manifest.sources["tactical"].datasets["agents"].records,
        6
    );

    let texts = run_texts(&outcome.run_dir);
    assert!(texts.iter().any(|(_, t)| t.contains("ORG002-WS-006")));
    assert!(texts
        .iter()
        .any(|(_, t)| t.contains("user11@org002.example")));
    let demo = auditpack::simulate::Tenant::demo(chrono::Utc::now()).expect("demo");
    let mut foreign: Vec<String> = demo
        .ninja
        .devices
        .iter()
        .filter_map(|d| d["systemName"].as_str().map(str::to_owned))
        .collect();
    for other in [&orgs[0], &orgs[2]] {
        let label = other.names.label.clone();
        foreign.extend([
            label.to_uppercase(),
            format!("@{label}.example"),
            other.name().to_owned(),
            other.tenant_id().to_owned(),
            other.datto_site_uid().to_owned(),
        ]);
    }
    // Nor does any credential of the shared accounts.
    let a = h.sim.fleet_accounts();
    foreign.extend([
        a.graph_secret,
        a.ninja_secret,
        a.datto_api_key,
        a.datto_api_secret,
        a.tactical_api_key,
    ]);
    for (path, text) in &texts {
        for f in &foreign {
            assert!(
                !text.contains(f.as_str()),
                "{} holds another organisation's `{f}`",
                path.display()
            );
        }
    }
}

#[test]
fn ids_the_account_does_not_know_fail_their_source_naming_the_id() {
    let h = fleet_harness(FleetSpec {
        organisations: 1,
        rate_limits: SimRateLimits::default(),
        ..small_fleet()
    });
    let base = h.sim.base_url();
    let a = h.sim.fleet_accounts();
    let sources = format!(
        r#"[sources.ninja]
type = "ninjaone"
base_url = "{base}"
client_id = "{}"
client_secret_file = "ninja.secret"
organization_id = 987654

[sources.datto]
type = "datto-rmm"
base_url = "{base}"
api_key_file = "datto.key"
api_secret_file = "datto.secret"
site_uid = "0badc0de-0000-4000-8000-000000000000"

[sources.tactical]
type = "tactical-rmm"
base_url = "{base}"
api_key_file = "tactical.key"
scope = 424242
"#,
        a.ninja_client_id
    );
    let outcome = run_org(&h, "Unknown ids", &sources);
    for (source, id, key) in [
        ("ninja", "987654", "organization_id"),
        ("datto", "0badc0de-0000-4000-8000-000000000000", "site_uid"),
        ("tactical", "424242", "scope"),
    ] {
        let r = &outcome.manifest.sources[source];
        assert_eq!(r.status, auditpack::evidence::SourceStatus::Failed, "{r:?}");
        let reason = r.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains(id) && reason.contains("does not exist") && reason.contains(key),
            "{source}: {reason}"
        );
    }
    // Nothing of the account was stored for them.
    let texts = run_texts(&outcome.run_dir.join("evidence"));
    assert!(texts.iter().all(|(_, t)| !t.contains("ORG001")));
}

#[test]
fn a_site_of_the_default_account_keeps_its_own_devices_and_an_empty_one_fails() {
    use auditpack::simulate::{SimOptions, Tenant};
    use serde_json::json;
    let mut t = Tenant::default();
    for (uid, name) in [
        ("site-a", "Alpha Dental"),
        ("site-b", "Beta Clinic"),
        ("site-c", "Empty Office"),
    ] {
        t.datto.sites.push(json!({"uid": uid, "name": name}));
    }
    for i in 0..7 {
        let (uid, name) = if i % 2 == 0 {
            ("site-a", "Alpha Dental")
        } else {
            ("site-b", "Beta Clinic")
        };
        t.datto.devices.push(json!({
            "uid": format!("dev-{i}"), "hostname": format!("{}-PC-{i}", &name[..4].to_uppercase()),
            "siteUid": uid, "siteName": name, "lastSeen": 0, "operatingSystem": "Windows 11",
            "patchManagement": {"patchStatus": "FullyPatched"},
            "antivirus": {"antivirusProduct": "Defender", "antivirusStatus": "RunningAndUpToDate"}
        }));
    }
    let h = Harness::new(
        t,
        SimOptions {
            max_page_size: 2,
            ..SimOptions::default()
        },
    );
    let datto = |site: &str| {
        format!(
            "[sources.datto]\ntype = \"datto-rmm\"\nbase_url = \"{}\"\napi_key_file = \"datto.key\"\napi_secret_file = \"datto.secret\"\nsite_uid = \"{site}\"\n",
            h.sim.base_url()
        )
    };
    let outcome = run_org(&h, "Alpha Dental", &datto("site-a"));
    let r = &outcome.manifest.sources["datto"];
    assert_eq!(
        r.status,
        auditpack::evidence::SourceStatus::Complete,
        "{r:?}"
    );
    assert_eq!(r.datasets["devices"].records, 4);
    let stored = common::stored_records(&outcome.run_dir, "datto", "devices", |v| {
        v.get("devices")?.as_array()
    });
    assert!(
        stored.iter().all(|d| d["siteUid"] == "site-a"),
        "{stored:?}"
    );
    assert_eq!(stored.len(), 4);
    assert!(run_texts(&outcome.run_dir)
        .iter()
        .all(|(_, t)| !t.contains("BETA-PC")));

    let outcome = run_org(&h, "Empty Office", &datto("site-c"));
    let r = &outcome.manifest.sources["datto"];
    assert_eq!(r.status, auditpack::evidence::SourceStatus::Failed, "{r:?}");
    let reason = r.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("site-c")
            && reason.contains("Empty Office")
            && reason.contains("no devices"),
        "{reason}"
    );
}
