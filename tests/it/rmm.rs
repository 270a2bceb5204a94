//! RMM collectors against the simulator: NinjaOne's installed patches and
//! antivirus status, Datto RMM (paging by next-page URL, 429s and the IP
//! block), and declarative specs (Tactical RMM built in, and a user spec
//! file), with the stored evidence compared to what the simulator served.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use auditpack::config::Config;
use auditpack::evidence::{DatasetStatus, SourceStatus};
use auditpack::facts::{Facts, Severity};
use auditpack::pipeline::RunOutcome;
use auditpack::simulate::{DattoThrottle, Fault, FaultKind, SimOptions, Tenant};
use common::{stored_records, Harness};
use serde_json::{json, Value};

fn harness(tenant: Tenant, page: usize) -> Harness {
    Harness::new(
        tenant,
        SimOptions {
            max_page_size: page,
            ..SimOptions::default()
        },
    )
}

/// Write `sources` (TOML tables) into a config with secrets in files, and run it.
fn run_sources(h: &Harness, sources: &str) -> RunOutcome {
    let t = h.sim.tenant();
    let creds = SimOptions::default().credentials;
    for (file, value) in [
        ("ninja.secret", creds.ninja_secret.as_str()),
        ("datto.key", t.datto.api_key.as_str()),
        ("datto.secret", t.datto.api_secret.as_str()),
        ("tactical.key", t.tactical.api_key.as_str()),
    ] {
        std::fs::write(h.path().join(file), value).expect("write secret");
    }
    let text = format!(
        "[organisation]\nname = \"RMM Test\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n{}",
        sources.replace("{base}", &h.sim.base_url())
    );
    let path = h.path().join("auditpack.toml");
    std::fs::write(&path, text).expect("write config");
    h.run(&Config::load(&path).expect("config loads"))
}

fn facts(outcome: &RunOutcome) -> Facts {
    let bytes = std::fs::read(outcome.run_dir.join("facts/facts.json")).expect("facts");
    serde_json::from_slice(&bytes).expect("facts parse")
}

fn results(v: &Value) -> Option<&Vec<Value>> {
    v.get("results")?.as_array()
}

fn bare(v: &Value) -> Option<&Vec<Value>> {
    v.as_array()
}

const NINJA: &str = r#"
[sources.ninja]
type = "ninjaone"
base_url = "{base}"
client_id = "simulator-ninja-client"
client_secret_file = "ninja.secret"
"#;

#[test]
fn ninjaone_installs_and_antivirus_are_stored_exactly_and_become_device_facts() {
    let h = harness(Tenant::demo(chrono::Utc::now()).expect("demo"), 4);
    h.sim.add_fault(Fault {
        path: "/v2/queries/os-patch-installs".into(),
        from_request: 2,
        times: 2,
        kind: FaultKind::TooManyRequests(Some(0)),
    });
    h.sim.add_fault(Fault {
        path: "/v2/queries/antivirus-status".into(),
        from_request: 3,
        times: 1,
        kind: FaultKind::TruncatedBody,
    });
    let outcome = run_sources(&h, NINJA);
    let ninja = &outcome.manifest.sources["ninja"];
    assert_eq!(ninja.status, SourceStatus::Complete, "{ninja:?}");
    let served = &h.sim.tenant().ninja;
    assert_eq!(
        stored_records(&outcome.run_dir, "ninja", "os-patch-installs", results),
        served.os_patch_installs
    );
    assert_eq!(
        stored_records(&outcome.run_dir, "ninja", "antivirus-status", results),
        served.antivirus_status
    );
    // 4 per page: the installs take ceil(n/4) full pages plus the empty last one.
    let n = served.os_patch_installs.len();
    assert_eq!(ninja.datasets["os-patch-installs"].pages, n.div_ceil(4) + 1);

    let f = facts(&outcome);
    let devices: BTreeMap<&str, _> = f.devices.iter().map(|d| (d.id.as_str(), d)).collect();
    for install in &served.os_patch_installs {
        let id = format!("ninja:{}", install["deviceId"]);
        let d = devices.get(id.as_str()).expect("device of the install");
        let patch = d.patch.as_ref().expect("patch report");
        assert!(patch.reporting, "{id}");
        if install["status"] == "INSTALLED" {
            let at = patch.last_install.expect("last install").timestamp();
            assert!(
                at >= install["installedAt"].as_i64().expect("epoch"),
                "{id}"
            );
        }
    }
    let failed = served
        .os_patch_installs
        .iter()
        .find(|i| i["status"] == "FAILED")
        .expect("demo has a failed install");
    let d = devices[format!("ninja:{}", failed["deviceId"]).as_str()];
    assert_eq!(
        d.patch.as_ref().and_then(|p| p.status.as_deref()),
        Some("InstallError")
    );
    let without_av = f.devices.iter().filter(|d| d.antimalware.is_none()).count();
    assert_eq!(
        without_av,
        served.devices.len() - served.antivirus_status.len()
    );
    let off = served
        .antivirus_status
        .iter()
        .find(|a| a["productState"] == "OFF")
        .expect("demo has a device with AV off");
    let d = devices[format!("ninja:{}", off["deviceId"]).as_str()];
    assert_eq!(d.antimalware.as_ref().and_then(|a| a.running), Some(false));
}

fn datto_devices(n: usize) -> Vec<Value> {
    let statuses = [
        "FullyPatched",
        "ApprovedPending",
        "NoPolicy",
        "RebootRequired",
        "NoData",
        "InstallError",
    ];
    let av = [
        ("Datto AV", "RunningAndUpToDate"),
        ("Datto AV", "RunningAndNotUpToDate"),
        ("Windows Defender", "NotRunning"),
        ("", "NotDetected"),
    ];
    let now = chrono::Utc::now().timestamp_millis();
    (0..n)
        .map(|i| {
            let (product, state) = av[i % av.len()];
            json!({
                "uid": format!("{:08x}-d4b1-4c1e-9a7e-{i:012}", i * 7919),
                "hostname": format!("DT-{i:03}"),
                "siteName": "Main office",
                "lastSeen": now - (i as i64) * 3_600_000,
                "operatingSystem": "Microsoft Windows 11 Pro 23H2",
                "patchManagement": {
                    "patchStatus": statuses[i % statuses.len()],
                    "patchesApprovedPending": i % 3,
                    "patchesNotApproved": 0,
                    "patchesInstalled": 40 + i
                },
                "antivirus": {"antivirusProduct": product, "antivirusStatus": state}
            })
        })
        .collect()
}

const DATTO: &str = r#"
[sources.datto]
type = "datto-rmm"
base_url = "{base}"
api_key_file = "datto.key"
api_secret_file = "datto.secret"
page_size = 250
ip_block_wait_seconds = 1
"#;

fn datto_tenant(n: usize, throttle: Option<DattoThrottle>) -> Tenant {
    let mut t = Tenant::default();
    t.datto.devices = datto_devices(n);
    t.datto.throttle = throttle;
    t
}

#[test]
fn datto_pages_by_next_url_and_evidence_equals_the_served_devices() {
    let h = harness(datto_tenant(23, None), 5);
    let outcome = run_sources(&h, DATTO);
    let datto = &outcome.manifest.sources["datto"];
    assert_eq!(datto.status, SourceStatus::Complete, "{datto:?}");
    assert_eq!(datto.datasets["devices"].pages, 5);
    assert_eq!(datto.datasets["devices"].records, 23);
    assert_eq!(
        stored_records(&outcome.run_dir, "datto", "devices", |v| v
            .get("devices")?
            .as_array()),
        h.sim.tenant().datto.devices
    );
    let f = facts(&outcome);
    assert_eq!(f.devices.len(), 23);
    let reporting = f
        .devices
        .iter()
        .filter(|d| d.patch.as_ref().is_some_and(|p| p.reporting))
        .count();
    // NoPolicy and NoData (2 of every 6) do not report.
    assert_eq!(
        reporting,
        23 - (23 / 6) * 2 - usize::from(23 % 6 > 2) - usize::from(23 % 6 > 4)
    );
    // NotDetected is a report of absence: no product, nothing running.
    let no_av = f
        .devices
        .iter()
        .filter(|d| {
            d.antimalware
                .as_ref()
                .is_some_and(|a| a.product.is_none() && a.running == Some(false))
        })
        .count();
    assert_eq!(no_av, 23 / 4 + usize::from(23 % 4 > 3));
}

#[test]
fn datto_throttling_then_ip_block_is_waited_out_and_nothing_is_lost() {
    let throttle = DattoThrottle {
        limit: 3,
        window: Duration::from_secs(1),
        grace: 1,
        block: Duration::from_millis(1500),
    };
    let h = harness(datto_tenant(30, Some(throttle)), 5);
    let outcome = run_sources(&h, DATTO);
    let datto = &outcome.manifest.sources["datto"];
    assert_eq!(datto.status, SourceStatus::Complete, "{datto:?}");
    assert!(h.sim.tenant().datto.blocks() >= 1, "the IP block happened");
    assert_eq!(
        stored_records(&outcome.run_dir, "datto", "devices", |v| v
            .get("devices")?
            .as_array()),
        h.sim.tenant().datto.devices
    );
}

#[test]
fn a_persisting_datto_ip_block_is_recorded_as_a_block() {
    let throttle = DattoThrottle {
        limit: 2,
        window: Duration::from_secs(60),
        grace: 1,
        block: Duration::from_secs(3600),
    };
    let h = harness(datto_tenant(30, Some(throttle)), 5);
    let outcome = run_sources(
        &h,
        &DATTO.replace("page_size = 250", "page_size = 250\nip_block_max_waits = 1"),
    );
    let devices = &outcome.manifest.sources["datto"].datasets["devices"];
    assert_eq!(devices.status, DatasetStatus::Partial, "{devices:?}");
    assert_eq!(devices.pages, 2);
    let reason = devices.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("403") && reason.contains("IP block") && reason.contains("persisted"),
        "{reason}"
    );
    // Controls on device facts are not judged on partial evidence.
    let f = facts(&outcome);
    assert!(matches!(
        f.availability(auditpack::facts::FactKind::Devices),
        auditpack::facts::Availability::Incomplete(_)
    ));
}

#[test]
fn a_datto_403_without_throttling_is_a_permission_failure_not_retried() {
    let h = harness(datto_tenant(8, None), 5);
    h.sim.add_fault(Fault {
        path: "/api/v2/account/devices".into(),
        from_request: 1,
        times: 100,
        kind: FaultKind::Forbidden,
    });
    let outcome = run_sources(&h, DATTO);
    let devices = &outcome.manifest.sources["datto"].datasets["devices"];
    assert_eq!(devices.status, DatasetStatus::Failed);
    assert!(
        devices
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("API access")),
        "{devices:?}"
    );
    assert_eq!(h.sim.requests("/api/v2/account/devices"), 1);
}

#[test]
fn rejected_datto_credentials_fail_the_source_without_leaking_them() {
    let h = harness(datto_tenant(3, None), 5);
    std::fs::write(h.path().join("wrong.secret"), "not-the-secret-canary").expect("write");
    let outcome = run_sources(&h, &DATTO.replace("datto.secret", "wrong.secret"));
    let datto = &outcome.manifest.sources["datto"];
    assert_eq!(datto.status, SourceStatus::Failed);
    let reason = datto.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("rejected the API key"), "{reason}");
    let run_json = std::fs::read_to_string(outcome.run_dir.join("run.json")).expect("run.json");
    assert!(!run_json.contains("canary"));
}

/// Organisations of an MSP on one Datto platform, run one after the other as
/// a fleet runs them: once one has met Datto's 429s, a 403 that the next one
/// meets (at the token endpoint or on a device page) is the IP block, waited
/// out, and a block that persists is reported as the block, never as a
/// rejected key or a missing API permission.
#[test]
fn a_datto_403_after_another_sources_429s_is_the_ip_block_even_at_the_token_endpoint() {
    let h = harness(datto_tenant(8, None), 5);
    h.sim.add_fault(Fault {
        path: "/api/v2/account/devices".into(),
        from_request: 1,
        times: 1,
        kind: FaultKind::TooManyRequests(Some(0)),
    });
    let first = run_sources(&h, DATTO);
    let datto = &first.manifest.sources["datto"];
    assert_eq!(datto.status, SourceStatus::Complete, "{datto:?}");

    // The block follows the first organisation's 429s: the next one's token
    // request meets it, and after it one of its device pages.
    h.sim
        .tenant()
        .datto
        .impose_block(Duration::from_millis(1500));
    h.sim.add_fault(Fault {
        path: "/api/v2/account/devices".into(),
        from_request: h.sim.requests("/api/v2/account/devices") + 2,
        times: 1,
        kind: FaultKind::Forbidden,
    });
    let second = run_sources(&h, DATTO);
    let datto = &second.manifest.sources["datto"];
    assert_eq!(datto.status, SourceStatus::Complete, "{datto:?}");
    assert_eq!(
        stored_records(&second.run_dir, "datto", "devices", |v| v
            .get("devices")?
            .as_array()),
        h.sim.tenant().datto.devices
    );

    // A block that outlasts the waits at the token endpoint.
    h.sim.tenant().datto.impose_block(Duration::from_secs(3600));
    let third = run_sources(
        &h,
        &DATTO.replace("page_size = 250", "page_size = 250\nip_block_max_waits = 1"),
    );
    let datto = &third.manifest.sources["datto"];
    assert_eq!(datto.status, SourceStatus::Failed, "{datto:?}");
    let reason = datto.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("IP block") && reason.contains("persisted"),
        "{reason}"
    );
    assert!(!reason.contains("rejected the API key"), "{reason}");
}

/// NinjaOne reports one antivirus row per product: a stopped, stale product
/// fails the device beside a healthy one, whichever row comes first, and the
/// finding names it.
#[test]
fn antivirus_rows_of_one_device_are_judged_together_in_either_row_order() {
    // Device 0 runs Sophos with stale signatures beside a Defender standing
    // by; device 1 runs Defender, current, beside a Sophos that is off.
    for sophos_first in [true, false] {
        let now = chrono::Utc::now();
        let mut t = Tenant::synthetic(3, 2, now);
        let ids: Vec<Value> = t.ninja.devices.iter().map(|d| d["id"].clone()).collect();
        assert_eq!(t.ninja.devices[0]["systemName"], "HOST-00001");
        let row = |device: &Value, product: &str, state: &str, definitions: &str| {
            json!({
                "productName": product, "productState": state,
                "definitionStatus": definitions, "version": "1.0",
                "deviceId": device, "timestamp": now.timestamp()
            })
        };
        let mut defender: Vec<Value> = ids
            .iter()
            .map(|id| row(id, "Windows Defender", "ON", "UP_TO_DATE"))
            .collect();
        defender[0] = row(&ids[0], "Windows Defender", "OFF", "UP_TO_DATE");
        let sophos = vec![
            row(&ids[0], "Sophos Endpoint", "ON", "OUT_OF_DATE"),
            row(&ids[1], "Sophos Endpoint", "OFF", "OUT_OF_DATE"),
        ];
        t.ninja.antivirus_status = if sophos_first {
            sophos.into_iter().chain(defender).collect()
        } else {
            defender.into_iter().chain(sophos).collect()
        };
        // One row per page: the rows of a device come on different pages.
        let h = harness(t, 1);
        let outcome = run_sources(&h, NINJA);
        let ninja = &outcome.manifest.sources["ninja"];
        assert_eq!(ninja.status, SourceStatus::Complete, "{ninja:?}");
        let health = outcome
            .results
            .iter()
            .flat_map(|c| c.checks.iter())
            .find(|c| c.check == "edr_health")
            .expect("edr_health is judged");
        let failing: Vec<(&str, &str)> = health
            .failing
            .iter()
            .map(|s| (s.id.as_str(), s.detail.as_str()))
            .collect();
        assert_eq!(
            failing.len(),
            1,
            "sophos first: {sophos_first}: {failing:?}"
        );
        assert_eq!(failing[0].0, "device:host:host-00001", "the first device");
        assert!(
            failing[0].1.starts_with(
                "Sophos Endpoint [definitions out of date], Windows Defender [off, standing by]: "
            ),
            "sophos first: {sophos_first}: {}",
            failing[0].1
        );
    }
}

fn tactical_tenant() -> Tenant {
    let mut t = Tenant::default();
    let now = chrono::Utc::now();
    let at = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
    for i in 0..7 {
        let agent_id = format!("tX{i}aB{}cD", i * 31);
        t.tactical.agents.push(json!({
            "agent_id": agent_id,
            "hostname": format!("TRMM-{i:02}"),
            "site_name": "HQ", "client_name": "Contoso Dental",
            "monitoring_type": if i == 0 { "server" } else { "workstation" },
            "plat": "windows",
            "operating_system": "Windows 11 Pro, 64 bit v23H2 (build 22631.4317)",
            "needs_reboot": i == 3,
            "has_patches_pending": i % 2 == 0,
            "last_seen": at(i),
            "status": "online"
        }));
        if i == 6 {
            continue; // an agent with no update records
        }
        let updates: Vec<Value> = (0..3)
            .map(|k| {
                let installed = k == 0;
                let severity = ["Critical", "Important", ""][k as usize];
                json!({
                    "id": i * 10 + k, "agent": i + 1,
                    "kb": format!("KB50{i}{k}00"),
                    "guid": format!("00000000-0000-0000-0000-0000000{i}{k}"),
                    "title": format!("Security update {k} for agent {i}"),
                    "severity": severity,
                    "installed": installed, "downloaded": installed,
                    "action": if k == 2 && i % 3 == 0 { "ignore" } else { "approve" },
                    "date_installed": if installed { json!(at(10 + i)) } else { Value::Null },
                    "result": if installed { "success" } else { "n/a" }
                })
            })
            .collect();
        t.tactical.updates.insert(agent_id, updates);
    }
    t
}

const TACTICAL: &str = r#"
[sources.trmm]
type = "tactical-rmm"
base_url = "{base}"
api_key_file = "tactical.key"
"#;

#[test]
fn the_tactical_rmm_spec_collects_agents_and_updates_through_throttling() {
    let h = harness(tactical_tenant(), 5);
    h.sim.add_fault(Fault {
        path: "/agents/".into(),
        from_request: 1,
        times: 2,
        kind: FaultKind::TooManyRequests(Some(0)),
    });
    h.sim.add_fault(Fault {
        path: "/winupdate/".into(),
        from_request: 3,
        times: 2,
        kind: FaultKind::Unavailable,
    });
    let outcome = run_sources(&h, TACTICAL);
    let trmm = &outcome.manifest.sources["trmm"];
    assert_eq!(trmm.source_type, "rmm-spec");
    assert_eq!(trmm.status, SourceStatus::Complete, "{trmm:?}");
    let t = &h.sim.tenant().tactical;
    assert_eq!(
        stored_records(&outcome.run_dir, "trmm", "agents", bare),
        t.agents
    );
    // One page per agent, in agent id order, each exactly as served.
    let mut ids: Vec<&str> = t
        .agents
        .iter()
        .filter_map(|a| a["agent_id"].as_str())
        .collect();
    ids.sort_unstable();
    let expected: Vec<Value> = ids
        .iter()
        .flat_map(|id| t.updates.get(*id).cloned().unwrap_or_default())
        .collect();
    assert_eq!(trmm.datasets["winupdate"].pages, 7);
    assert_eq!(
        stored_records(&outcome.run_dir, "trmm", "winupdate", bare),
        expected
    );
    assert!(outcome
        .run_dir
        .join("evidence/trmm/spec/page-00001.json")
        .exists());

    let f = facts(&outcome);
    let devices: Vec<_> = f.devices.iter().filter(|d| d.source == "trmm").collect();
    assert_eq!(devices.len(), 7);
    let reboot = devices
        .iter()
        .find(|d| d.name == "TRMM-03")
        .expect("agent 3");
    assert_eq!(
        reboot.patch.as_ref().and_then(|p| p.status.as_deref()),
        Some("RebootRequired")
    );
    let agent1 = devices
        .iter()
        .find(|d| d.name == "TRMM-01")
        .expect("agent 1");
    assert!(agent1.patch.as_ref().and_then(|p| p.last_install).is_some());
    // Pending: not installed and not ignored: 2 per agent with records, minus
    // the ignored ones (agents 0 and 3).
    let pending: Vec<_> = f
        .patches
        .iter()
        .filter(|p| p.device_id.starts_with("trmm:"))
        .collect();
    assert_eq!(pending.len(), 6 * 2 - 2);
    assert!(pending
        .iter()
        .any(|p| p.severity == Severity::Important && p.device_id == "trmm:tX1aB31cD"));
    assert!(pending.iter().all(|p| p.kb.is_some()));
}

const USER_SPEC: &str = r#"
spec_version = 1
id = "ninja-by-spec"
name = "NinjaOne, described as a spec"

[auth]
style = "oauth2-client-credentials"
token_path = "/ws/oauth/token"
scope = "monitoring"

[[endpoint]]
dataset = "devices"
path = "/v2/devices"
paging = { style = "after-id", param = "after", id = "/id", size = ["pageSize", 3] }

[[endpoint]]
dataset = "pending"
path = "/v2/queries/os-patches"
records = "/results"
paging = { style = "cursor", param = "cursor", pointer = "/cursor/name", size = ["pageSize", 3] }

[devices]
dataset = "devices"
id = "/id"
name = ["/systemName", "/dnsName"]
os = "/nodeClass"
last_seen = { pointer = "/lastContact", format = "epoch-seconds" }

[patches]
dataset = "pending"
device = "/deviceId"
name = "/name"
kb = "/kbNumber"
severity = { pointer = "/severity", map = { CRITICAL = "critical", IMPORTANT = "important", MODERATE = "moderate", OPTIONAL = "optional" }, default = "unknown" }
status = "/status"
detected = { pointer = "/timestamp", format = "epoch-seconds" }
"#;

#[test]
fn a_user_spec_file_drives_oauth2_after_id_and_cursor_paging() {
    let h = harness(Tenant::demo(chrono::Utc::now()).expect("demo"), 3);
    std::fs::create_dir_all(h.path().join("specs")).expect("mkdir");
    std::fs::write(h.path().join("specs/ninja.toml"), USER_SPEC).expect("write spec");
    h.sim.add_fault(Fault {
        path: "/v2/devices".into(),
        from_request: 2,
        times: 2,
        kind: FaultKind::GatewayTimeout,
    });
    let outcome = run_sources(
        &h,
        r#"
[sources.byspec]
type = "rmm-spec"
spec_file = "specs/ninja.toml"
base_url = "{base}"
client_id = "simulator-ninja-client"
client_secret_file = "ninja.secret"
"#,
    );
    let src = &outcome.manifest.sources["byspec"];
    assert_eq!(src.status, SourceStatus::Complete, "{src:?}");
    let served = &h.sim.tenant().ninja;
    assert_eq!(
        stored_records(&outcome.run_dir, "byspec", "devices", bare),
        served.devices
    );
    assert_eq!(
        stored_records(&outcome.run_dir, "byspec", "pending", results),
        served.os_patches
    );
    let f = facts(&outcome);
    assert_eq!(f.devices.len(), served.devices.len());
    assert_eq!(f.patches.len(), served.os_patches.len());
    let critical = served
        .os_patches
        .iter()
        .filter(|p| p["severity"] == "CRITICAL")
        .count();
    assert_eq!(
        f.patches
            .iter()
            .filter(|p| p.severity == Severity::Critical)
            .count(),
        critical
    );
}

#[test]
fn an_invalid_user_spec_is_refused_before_any_request_naming_the_file() {
    let h = harness(Tenant::default(), 3);
    std::fs::write(
        h.path().join("bad.toml"),
        USER_SPEC.replace("id = \"/id\"\nname", "id = \"id\"\nname"),
    )
    .expect("write");
    let path = h.path().join("auditpack.toml");
    std::fs::write(
        &path,
        format!(
            "[organisation]\nname = \"x\"\nframeworks = [\"hipaa\"]\n[sources.s]\ntype = \"rmm-spec\"\nspec_file = \"bad.toml\"\nbase_url = \"{}\"\nclient_id = \"c\"\nclient_secret_env = \"NOPE\"\n",
            h.sim.base_url()
        ),
    )
    .expect("write");
    let config = Config::load(&path).expect("config parses");
    let err = auditpack::pipeline::run(&config, &common::fast_options(), &h.runtime)
        .expect_err("spec refused");
    let msg = err.to_string();
    assert!(
        msg.contains("bad.toml") && msg.contains("JSON pointer"),
        "{msg}"
    );
    assert_eq!(h.sim.token_requests(), 0);
}

const BEARER_SPEC: &str = r#"
spec_version = 1
id = "datto-by-spec"
name = "Datto devices with a bearer token"

[auth]
style = "bearer"

[[endpoint]]
dataset = "devices"
path = "/api/v2/account/devices"
records = "/devices"
paging = { style = "page-number", param = "page", first = 0, size = ["max", 4] }

[devices]
dataset = "devices"
id = "/uid"
name = "/hostname"
last_seen = { pointer = "/lastSeen", format = "epoch-millis" }
patch_status = "/patchManagement/patchStatus"
patch_not_reporting = ["NoPolicy", "NoData"]
antivirus_product = "/antivirus/antivirusProduct"
antivirus_running = { pointer = "/antivirus/antivirusStatus", map = { RunningAndUpToDate = "true", RunningAndNotUpToDate = "true", NotRunning = "false", NotDetected = "false" } }
"#;

#[test]
fn a_user_spec_with_a_bearer_token_pages_by_page_number_until_an_empty_page() {
    let h = harness(datto_tenant(10, None), 250);
    let t = &h.sim.tenant().datto;
    let token_url = format!("{}/auth/oauth/token", h.sim.base_url());
    let body = h.runtime.block_on(async {
        reqwest::Client::new()
            .post(&token_url)
            .basic_auth("public-client", Some("public"))
            .form(&[
                ("grant_type", "password"),
                ("username", t.api_key.as_str()),
                ("password", t.api_secret.as_str()),
            ])
            .send()
            .await
            .expect("token request")
            .bytes()
            .await
            .expect("token body")
    });
    let token: Value = serde_json::from_slice(&body).expect("token json");
    std::fs::write(
        h.path().join("bearer.token"),
        token["access_token"].as_str().expect("token"),
    )
    .expect("write token");
    std::fs::write(h.path().join("datto-spec.toml"), BEARER_SPEC).expect("write spec");
    h.sim.add_fault(Fault {
        path: "/api/v2/account/devices".into(),
        from_request: 2,
        times: 1,
        kind: FaultKind::TooManyRequests(None),
    });
    let outcome = run_sources(
        &h,
        r#"
[sources.dattospec]
type = "rmm-spec"
spec_file = "datto-spec.toml"
base_url = "{base}"
token_file = "bearer.token"
"#,
    );
    let src = &outcome.manifest.sources["dattospec"];
    assert_eq!(src.status, SourceStatus::Complete, "{src:?}");
    // 4 + 4 + 2 records, then the empty page that ends the list.
    assert_eq!(src.datasets["devices"].pages, 4);
    assert_eq!(
        stored_records(&outcome.run_dir, "dattospec", "devices", |v| v
            .get("devices")?
            .as_array()),
        t.devices
    );
    let f = facts(&outcome);
    assert_eq!(f.devices.len(), 10);
    let reporting = f
        .devices
        .iter()
        .filter(|d| d.patch.as_ref().is_some_and(|p| p.reporting))
        .count();
    assert_eq!(
        reporting,
        10 - 3,
        "NoPolicy and NoData devices do not report"
    );
    assert!(f.devices.iter().all(|d| d.last_seen.is_some()));
}

/// An RMM that pages by offset (`$skip` / `$top`, as OData-style APIs do),
/// served by a server written here: it never serves more than three records
/// a page, whatever `$top` asks, and `/ignores-skip` serves its first page
/// for any `$skip`.
const OFFSET_SPEC: &str = r#"
spec_version = 1
id = "offset-rmm"
name = "An RMM paged by offset"

[auth]
style = "api-key"
header = "X-API-KEY"

[[endpoint]]
dataset = "devices"
path = "/api/v1/assets"
records = "/Result"
paging = { style = "offset", param = "$skip", size = ["$top", 5] }

[devices]
dataset = "devices"
id = "/AgentId"
name = "/ComputerName"
last_seen = { pointer = "/LastCheckInTime", format = "rfc3339" }
"#;

const OFFSET_KEY: &str = "offset-rmm-key";

fn offset_server(h: &Harness, assets: usize) -> String {
    use axum::extract::Query;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::Json;

    let all: Vec<Value> = (0..assets)
        .map(|i| {
            json!({
                "AgentId": format!("agent-{i:03}"),
                "ComputerName": format!("WS-{i:03}"),
                "LastCheckInTime": chrono::Utc::now().to_rfc3339(),
            })
        })
        .collect();
    let all = std::sync::Arc::new(all);
    let page = move |ignore_skip: bool| {
        let all = std::sync::Arc::clone(&all);
        move |headers: HeaderMap, Query(q): Query<BTreeMap<String, String>>| {
            let all = std::sync::Arc::clone(&all);
            async move {
                if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(OFFSET_KEY) {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                let number = |k: &str| q.get(k).and_then(|v| v.parse::<usize>().ok());
                let (Some(skip), Some(top)) = (number("$skip"), number("$top")) else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                let skip = if ignore_skip { 0 } else { skip };
                let served: Vec<Value> = all.iter().skip(skip).take(top.min(3)).cloned().collect();
                Json(json!({"Result": served, "TotalRecords": all.len()})).into_response()
            }
        }
    };
    let app = axum::Router::new()
        .route("/api/v1/assets", axum::routing::get(page(false)))
        .route(
            "/ignores-skip/api/v1/assets",
            axum::routing::get(page(true)),
        );
    let listener = h
        .runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    h.runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

fn run_offset_spec(h: &Harness, base_url: &str) -> RunOutcome {
    std::fs::write(h.path().join("offset.toml"), OFFSET_SPEC).expect("write spec");
    std::fs::write(h.path().join("offset.key"), OFFSET_KEY).expect("write key");
    let text = format!(
        "[organisation]\nname = \"RMM Test\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n\
         [sources.offset]\ntype = \"rmm-spec\"\nspec_file = \"offset.toml\"\nbase_url = \"{base_url}\"\n\
         api_key_file = \"offset.key\"\n"
    );
    let path = h.path().join("auditpack.toml");
    std::fs::write(&path, text).expect("write config");
    h.run(&Config::load(&path).expect("config loads"))
}

#[test]
fn a_user_spec_pages_by_offset_through_a_server_that_serves_fewer_than_asked() {
    let h = harness(Tenant::default(), 100);
    let base = offset_server(&h, 11);
    let outcome = run_offset_spec(&h, &base);
    let src = &outcome.manifest.sources["offset"];
    assert_eq!(src.status, SourceStatus::Complete, "{src:?}");
    // Three a page although five were asked for: four full pages and an
    // empty one, every record once.
    assert_eq!(src.datasets["devices"].pages, 5);
    let names: Vec<String> = facts(&outcome)
        .devices
        .iter()
        .map(|d| d.name.clone())
        .collect();
    let expected: Vec<String> = (0..11).map(|i| format!("WS-{i:03}")).collect();
    assert_eq!(names, expected);
}

#[test]
fn a_server_that_ignores_the_offset_leaves_the_list_partial_not_looping() {
    let h = harness(Tenant::default(), 100);
    let base = offset_server(&h, 11);
    let outcome = run_offset_spec(&h, &format!("{base}/ignores-skip"));
    let src = &outcome.manifest.sources["offset"];
    assert_ne!(src.status, SourceStatus::Complete, "{src:?}");
    let devices = &src.datasets["devices"];
    assert_ne!(devices.status, DatasetStatus::Complete, "{devices:?}");
    // The first page is kept; the second, its repeat, stops the list.
    assert_eq!(devices.pages, 1);
    let why = format!("{devices:?}");
    assert!(
        why.contains("page 2") && why.contains("same record") && why.contains("$skip"),
        "{why}"
    );
}
