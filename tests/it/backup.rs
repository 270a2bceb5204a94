//! Backup sources against the simulator: Datto BCDR (paged device list,
//! assets per appliance, HTTP Basic) and N-able Cove (JSON-RPC Login and
//! visa, paged statistics), with faults, and the backup checks they feed:
//! partial or failed collection, or a product with nothing protected, is
//! never a pass.

use crate::common;

use auditpack::checks::Verdict;
use auditpack::config::Config;
use auditpack::evidence::{DatasetStatus, SourceStatus};
use auditpack::facts::{
    BackupResult, Facts, ProtectedKind, ProtectedSystem, RestoreTestKind, TestResult,
};
use auditpack::pipeline::RunOutcome;
use auditpack::simulate::{CoveTenant, DattoBcdrTenant, Fault, FaultKind, SimOptions, Tenant};
use common::{stored_records, Harness};
use serde_json::{json, Value};

const BCDR_SECRET: &str = "bcdr-secret-CANARY-7f3a9";
const COVE_PASSWORD: &str = "cove-password-CANARY-41b2";

fn epoch_ago(hours: i64) -> i64 {
    (chrono::Utc::now() - chrono::Duration::hours(hours)).timestamp()
}

fn asset(name: &str, snapshot_h: i64, offsite_h: Option<i64>, status: &str) -> Value {
    // A failed run is newer than the last snapshot it failed to replace.
    let run_h = if status == "success" {
        snapshot_h
    } else {
        snapshot_h - 1
    };
    json!({
        "name": name, "fqdn": format!("{}.contoso.local", name.to_lowercase()), "volume": format!("vol-{name}"),
        "os": "Windows Server 2022", "type": "agent", "isPaused": false, "isArchived": false,
        "lastSnapshot": epoch_ago(snapshot_h), "latestOffsite": offsite_h.map_or(0, epoch_ago),
        "lastScreenshotAttempt": epoch_ago(snapshot_h + 1), "lastScreenshotAttemptStatus": true,
        "backups": [{
            "timestamp": chrono::DateTime::from_timestamp(epoch_ago(run_h), 0).map(|t| t.to_rfc3339()),
            "backup": {"status": status, "errorMessage": if status == "success" { "" } else { "VSS writer failed" }},
            "localVerification": {"status": "success", "errors": []},
            "advancedVerification": {"screenshotVerification": {"status": "success"}}
        }]
    })
}

fn bcdr_tenant() -> DattoBcdrTenant {
    let mut t = DattoBcdrTenant {
        public_key: "bcdr-public".into(),
        secret_key: BCDR_SECRET.into(),
        ..DattoBcdrTenant::default()
    };
    for (serial, name) in [("AA01", "SIRIS-1"), ("BB02", "SIRIS-2"), ("CC03", "ALTO-3")] {
        t.devices
            .push(json!({"serialNumber": serial, "name": name, "model": "S5-8", "hidden": false}));
    }
    t.assets.insert(
        "AA01".into(),
        vec![
            asset("FS01", 2, Some(5), "success"),
            asset("SQL01", 2, Some(5), "failure"),
        ],
    );
    t.assets.insert(
        "BB02".into(),
        vec![
            asset("<script>alert(1)</script>", 300, None, "success"),
            asset("ODD01", 1, Some(2), "exotic-status"),
        ],
    );
    let mut future = asset("FUTURE01", 1, Some(2), "success");
    future["lastSnapshot"] = json!(epoch_ago(-96));
    let mut archived = asset("OLD01", 9000, None, "failure");
    archived["isArchived"] = json!(true);
    t.assets.insert("CC03".into(), vec![future, archived]);
    t
}

fn harness(tenant: Tenant, page: usize) -> Harness {
    Harness::new(
        tenant,
        SimOptions {
            max_page_size: page,
            ..SimOptions::default()
        },
    )
}

fn run_with(h: &Harness, sources: &str) -> RunOutcome {
    std::fs::write(h.path().join("bcdr.secret"), BCDR_SECRET).expect("write secret");
    std::fs::write(h.path().join("cove.password"), COVE_PASSWORD).expect("write secret");
    let text = format!(
        "[organisation]\nname = \"Backup Test\"\nframeworks = [\"hipaa\", \"soc2\"]\nstore = \"store\"\n\n{}",
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

/// The protected system named `name` in `f`.
fn backup<'f>(f: &'f Facts, name: &str) -> &'f ProtectedSystem {
    f.backups
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("{name} listed: {:?}", f.backups))
}

/// The verdict of `check` (the same in every control that uses it).
fn verdict(outcome: &RunOutcome, check: &str) -> Verdict {
    let verdicts: Vec<Verdict> = outcome
        .results
        .iter()
        .flat_map(|c| &c.checks)
        .filter(|c| c.check == check)
        .map(|c| c.outcome)
        .collect();
    assert!(!verdicts.is_empty(), "{check} ran");
    assert!(
        verdicts.iter().all(|v| *v == verdicts[0]),
        "{check}: {verdicts:?}"
    );
    verdicts[0]
}

/// Every byte of the run folder, for canary searches.
fn run_bytes(outcome: &RunOutcome) -> Vec<u8> {
    let mut all = Vec::new();
    for dir in [&outcome.run_dir, &outcome.package] {
        for f in common::all_files(dir) {
            all.extend(std::fs::read(f).unwrap_or_default());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

const BCDR: &str = r#"
[sources.bcdr]
type = "datto-bcdr"
base_url = "{base}"
public_key = "bcdr-public"
secret_key_file = "bcdr.secret"
"#;

fn items(v: &Value) -> Option<&Vec<Value>> {
    v.get("items")?.as_array()
}

fn bare(v: &Value) -> Option<&Vec<Value>> {
    v.as_array()
}

#[test]
fn datto_bcdr_pages_devices_reads_assets_and_judges_them() {
    let tenant = Tenant {
        datto_bcdr: bcdr_tenant(),
        ..Tenant::default()
    };
    let h = harness(tenant, 1);
    h.sim.add_fault(Fault {
        path: "/v1/bcdr/device".into(),
        from_request: 2,
        times: 1,
        kind: FaultKind::TooManyRequests(Some(0)),
    });
    h.sim.add_fault(Fault {
        path: "/v1/bcdr/device/{serial}/asset".into(),
        from_request: 1,
        times: 1,
        kind: FaultKind::Unavailable,
    });
    let out = run_with(&h, BCDR);
    let report = &out.manifest.sources["bcdr"];
    assert_eq!(report.status, SourceStatus::Complete, "{report:?}");
    // Three pages of one appliance each, stored exactly as served.
    let devices = stored_records(&out.run_dir, "bcdr", "devices", items);
    assert_eq!(devices.len(), 3);
    assert_eq!(report.datasets["devices"].pages, 3);
    let assets = stored_records(&out.run_dir, "bcdr", "assets", bare);
    assert_eq!(assets.len(), 6);

    let f = facts(&out);
    // The archived agent is not a protected system.
    let names: Vec<&str> = f.backups.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(!names.contains(&"OLD01"));
    let sql = backup(&f, "SQL01");
    assert_eq!(sql.last_result, BackupResult::Failed);
    assert!(sql.notes.iter().any(|n| n.contains("VSS writer failed")));
    assert_eq!(sql.jobs, ["appliance SIRIS-1"]);
    let odd = backup(&f, "ODD01");
    assert_eq!(
        odd.last_result,
        BackupResult::Unknown("exotic-status".into())
    );
    let fs = backup(&f, "FS01");
    let tests = fs.tests.as_ref().expect("tests reported");
    assert!(tests
        .iter()
        .any(|t| t.kind == RestoreTestKind::Boot && t.result == TestResult::Passed));
    assert!(tests.iter().any(|t| t.kind == RestoreTestKind::Integrity));
    assert_eq!(fs.hostname.as_deref(), Some("fs01.contoso.local"));

    // SQL01's newest run failed, the hostile-named agent is 300 h old.
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Fail);
    // The hostile-named agent has no offsite copy.
    assert_eq!(verdict(&out, "backup_321"), Verdict::Fail);
    // Every agent passed screenshot verification recently.
    assert_eq!(verdict(&out, "restore_tested"), Verdict::Pass);
    let recency = out
        .results
        .iter()
        .flat_map(|c| &c.checks)
        .find(|c| c.check == "backup_recency")
        .expect("recency");
    let failing: Vec<&str> = recency.failing.iter().map(|s| s.name.as_str()).collect();
    assert!(failing.contains(&"SQL01") && failing.contains(&"<script>alert(1)</script>"));
    let unproven: Vec<&str> = recency.unproven.iter().map(|s| s.name.as_str()).collect();
    assert!(
        unproven.contains(&"FUTURE01"),
        "a time in the future is unproven: {unproven:?}"
    );
    let html = std::fs::read_to_string(out.run_dir.join("reports/report.html")).expect("html");
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(!contains(&run_bytes(&out), BCDR_SECRET), "secret leaked");
}

#[test]
fn datto_bcdr_with_a_wrong_secret_or_a_cut_page_never_passes() {
    let tenant = Tenant {
        datto_bcdr: DattoBcdrTenant {
            secret_key: "another-secret".into(),
            ..bcdr_tenant()
        },
        ..Tenant::default()
    };
    let h = harness(tenant, 100);
    let out = run_with(&h, BCDR);
    assert_eq!(out.manifest.sources["bcdr"].status, SourceStatus::Failed);
    for check in ["backup_recency", "backup_321", "restore_tested"] {
        assert_eq!(verdict(&out, check), Verdict::Inconclusive, "{check}");
    }

    // Only healthy agents, but one appliance's asset page is cut off.
    let mut healthy = bcdr_tenant();
    healthy
        .assets
        .insert("AA01".into(), vec![asset("FS01", 1, Some(1), "success")]);
    healthy
        .assets
        .insert("BB02".into(), vec![asset("FS02", 1, Some(1), "success")]);
    healthy
        .assets
        .insert("CC03".into(), vec![asset("FS03", 1, Some(1), "success")]);
    let h = harness(
        Tenant {
            datto_bcdr: healthy,
            ..Tenant::default()
        },
        100,
    );
    h.sim.add_fault(Fault {
        path: "/v1/bcdr/device/{serial}/asset".into(),
        from_request: 2,
        times: 10,
        kind: FaultKind::TruncatedBody,
    });
    let out = run_with(&h, BCDR);
    let assets = &out.manifest.sources["bcdr"].datasets["assets"];
    assert_eq!(assets.status, DatasetStatus::Partial, "{assets:?}");
    let recency = verdict(&out, "backup_recency");
    assert_eq!(recency, Verdict::Inconclusive);
}

const COVE: &str = r#"
[sources.cove]
type = "cove"
base_url = "{base}"
partner = "Contoso MSP"
username = "api-reader"
password_file = "cove.password"
customer_partner_id = 4242
"#;

fn cove_device(id: u64, partner: u64, name: &str, status: &str, success_h: i64) -> Value {
    cove_account(id, partner, Some("1"), name, status, success_h)
}

/// A Cove account of type `account_type` (`I59`: "1" Backup Manager, "2"
/// Microsoft 365; `None` leaves the column out).
fn cove_account(
    id: u64,
    partner: u64,
    account_type: Option<&str>,
    name: &str,
    status: &str,
    success_h: i64,
) -> Value {
    let mut columns = vec![
        ("I1", format!("{name}-dev")),
        ("I78", "D01D02".to_owned()),
        ("D9F00", status.to_owned()),
        ("D9F06", if status == "5" { "0" } else { "3" }.to_owned()),
        ("D9F09", epoch_ago(success_h).to_string()),
        ("D9F15", epoch_ago(1).to_string()),
        ("I99", "a column nobody asked for".to_owned()),
    ];
    if account_type != Some("2") {
        columns.insert(1, ("I18", name.to_owned()));
    }
    CoveTenant::account(id, partner, account_type, &columns)
}

fn cove_tenant() -> CoveTenant {
    let mut t = CoveTenant::default();
    t.partner = "Contoso MSP".into();
    t.username = "api-reader".into();
    t.password = COVE_PASSWORD.into();
    t.devices = vec![
        cove_device(1, 4242, "FS01", "5", 2),
        cove_device(2, 4242, "SQL01", "2", 50),
        cove_device(3, 4242, "APP01", "42", 3),
        cove_device(4, 9999, "OTHER-CLIENT-PC", "5", 1),
    ];
    t
}

fn cove_with(change: impl FnOnce(&mut CoveTenant)) -> Tenant {
    let mut cove = cove_tenant();
    change(&mut cove);
    Tenant {
        cove,
        ..Tenant::default()
    }
}

#[test]
fn cove_logs_in_pages_statistics_and_renews_an_expired_visa() {
    let h = harness(
        Tenant {
            cove: cove_tenant(),
            ..Tenant::default()
        },
        2,
    );
    // The second statistics call finds its visa expired.
    h.sim.add_fault(Fault {
        path: "/jsonapi".into(),
        from_request: 3,
        times: 1,
        kind: FaultKind::TokenExpired,
    });
    let out = run_with(&h, COVE);
    let report = &out.manifest.sources["cove"];
    assert_eq!(report.status, SourceStatus::Complete, "{report:?}");
    let f = facts(&out);
    let names: Vec<&str> = f.backups.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        ["FS01", "SQL01", "APP01"],
        "only the customer's devices"
    );
    let sql = &f.backups[1];
    assert_eq!(sql.last_result, BackupResult::Failed);
    assert!(sql.notes.iter().any(|n| n.contains("3 error(s)")));
    assert_eq!(f.backups[2].last_result, BackupResult::Unknown("42".into()));
    assert!(f.backups.iter().all(|b| b.tests.is_none()));
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Fail);
    // Cove reports no restore tests: unproven, not passed.
    assert_eq!(verdict(&out, "restore_tested"), Verdict::Inconclusive);
    let bytes = run_bytes(&out);
    assert!(!contains(&bytes, COVE_PASSWORD), "password leaked");
    assert!(!contains(&bytes, "visa-"), "a live visa was stored");
    assert!(!contains(&bytes, "OTHER-CLIENT-PC"));
    assert!(!contains(&bytes, "a column nobody asked for"));
}

#[test]
fn cove_refusals_and_empty_products_are_unproven() {
    // Wrong password: Login fails, the source fails, nothing passes.
    let h = harness(cove_with(|c| c.password = "not-the-password".into()), 100);
    let out = run_with(&h, COVE);
    assert_eq!(out.manifest.sources["cove"].status, SourceStatus::Failed);
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Inconclusive);

    // A missing permission: 403 on the statistics call.
    let h = harness(
        Tenant {
            cove: cove_tenant(),
            ..Tenant::default()
        },
        100,
    );
    h.sim.add_fault(Fault {
        path: "/jsonapi".into(),
        from_request: 2,
        times: 10,
        kind: FaultKind::Forbidden,
    });
    let out = run_with(&h, COVE);
    assert_ne!(out.manifest.sources["cove"].status, SourceStatus::Complete);
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Inconclusive);

    // A customer with no devices at all: 0 jobs is unproven, not a pass.
    let h = harness(cove_with(|c| c.devices.clear()), 100);
    let out = run_with(&h, COVE);
    assert_eq!(out.manifest.sources["cove"].status, SourceStatus::Complete);
    for check in ["backup_recency", "backup_321", "restore_tested"] {
        assert_eq!(verdict(&out, check), Verdict::Inconclusive, "{check}");
    }
}

fn veeam_config(h: &Harness) -> String {
    let t = &h.sim.tenant().veeam;
    std::fs::write(h.path().join("veeam.password"), &t.password).expect("write secret");
    format!(
        "[sources.veeam]\ntype = \"veeam\"\nbase_url = \"{{base}}\"\nusername = \"{}\"\npassword_file = \"veeam.password\"\n",
        t.username.replace('\\', "\\\\")
    )
}

fn data(v: &Value) -> Option<&Vec<Value>> {
    v.get("data")?.as_array()
}

#[test]
fn veeam_pages_every_list_refreshes_its_token_and_links_copies_and_surebackup() {
    let now = chrono::Utc::now();
    let h = harness(
        Tenant {
            veeam: auditpack::simulate::VeeamTenant::clone(&Tenant::demo(now).expect("demo").veeam),
            ..Tenant::default()
        },
        1,
    );
    h.sim.add_fault(Fault {
        path: "/api/v1/restorePoints".into(),
        from_request: 2,
        times: 1,
        kind: FaultKind::TooManyRequests(Some(0)),
    });
    h.sim.add_fault(Fault {
        path: "/api/v1/backups".into(),
        from_request: 2,
        times: 1,
        kind: FaultKind::TokenExpired,
    });
    let config = veeam_config(&h);
    let out = run_with(&h, &config);
    let report = &out.manifest.sources["veeam"];
    assert_eq!(report.status, SourceStatus::Complete, "{report:?}");
    // SureBackup sessions are asked for by the documented session type; the
    // server answers 400 to any other `typeFilter`.
    assert_eq!(
        report.datasets["surebackup-sessions"].status,
        DatasetStatus::Complete
    );
    assert_eq!(
        report.datasets["restore-points"].pages, 4,
        "one point per page, up to the total"
    );
    assert_eq!(
        stored_records(&out.run_dir, "veeam", "restore-points", data).len(),
        4
    );
    assert!(h.sim.token_requests() >= 2, "the expired token was renewed");

    let f = facts(&out);
    let pms = backup(&f, "CD-SRV-PMS");
    assert_eq!(pms.jobs, ["PMS Offsite Copy", "PMS Server Backup"]);
    let copies = pms.copies.as_ref().expect("copies");
    assert!(copies
        .iter()
        .any(|c| c.location == auditpack::facts::CopyLocation::Cloud && c.immutable == Some(true)));
    assert!(copies
        .iter()
        .any(|c| c.location == auditpack::facts::CopyLocation::Local && c.immutable == Some(true)));
    let tests = pms.tests.as_ref().expect("SureBackup reported");
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0].kind, RestoreTestKind::Boot);
    let billing = backup(&f, "CD-BILLING-01");
    assert_eq!(billing.last_result, BackupResult::Failed);

    // Billing's job fails; the laptop has neither an offsite nor an
    // immutable copy; PMS's only SureBackup run is 100 days old.
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Fail);
    assert_eq!(verdict(&out, "backup_321"), Verdict::Fail);
    assert_eq!(verdict(&out, "restore_tested"), Verdict::Fail);
    let bytes = run_bytes(&out);
    assert!(
        !contains(&bytes, &h.sim.tenant().veeam.password),
        "password leaked"
    );
    assert!(!contains(&bytes, "vbr-"), "a bearer token was stored");
}

#[test]
fn veeam_every_documented_copy_job_type_is_a_copy_not_the_primary_backup() {
    // A legacy-mode backup copy job (`EJobType` `LegacyBackupCopy`) to a
    // plain NAS share that failed: its repository is an offsite copy, and its
    // failure is noted rather than taken for the primary job's result.
    let mut veeam = Tenant::demo(chrono::Utc::now()).expect("demo").veeam;
    let nas = "9a1c0f6e-0000-4000-8000-000000000003";
    for job in veeam
        .lists
        .get_mut("/api/v1/jobs/states")
        .into_iter()
        .flatten()
    {
        if job["id"] == "5b0e-0002" {
            job["type"] = "LegacyBackupCopy".into();
            job["lastResult"] = "Failed".into();
            job["repositoryId"] = nas.into();
        }
    }
    for backup in veeam.lists.get_mut("/api/v1/backups").into_iter().flatten() {
        if backup["id"] == "b-0002" {
            backup["repositoryId"] = nas.into();
        }
    }
    let h = harness(
        Tenant {
            veeam,
            ..Tenant::default()
        },
        100,
    );
    let config = veeam_config(&h);
    let out = run_with(&h, &config);
    let f = facts(&out);
    let pms = backup(&f, "CD-SRV-PMS");
    assert_eq!(pms.last_result, BackupResult::Success, "{pms:?}");
    let copies = pms.copies.as_ref().expect("copies");
    assert!(
        copies
            .iter()
            .any(|c| c.location == auditpack::facts::CopyLocation::Offsite
                && c.target.as_deref() == Some("Front Office NAS")),
        "{copies:?}"
    );
    assert!(
        pms.notes
            .iter()
            .any(|n| n.contains("backup copy job PMS Offsite Copy failed")),
        "{:?}",
        pms.notes
    );
}

#[test]
fn veeam_refusals_and_cut_pages_never_pass() {
    let demo = Tenant::demo(chrono::Utc::now()).expect("demo").veeam;
    // A wrong password.
    let mut wrong = demo.clone();
    wrong.password = "not-it".into();
    let h = harness(
        Tenant {
            veeam: wrong,
            ..Tenant::default()
        },
        100,
    );
    let mut config = veeam_config(&h);
    config = config.replace("veeam.password", "wrong.password");
    std::fs::write(h.path().join("wrong.password"), "guess").expect("write");
    let out = run_with(&h, &config);
    assert_eq!(out.manifest.sources["veeam"].status, SourceStatus::Failed);
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Inconclusive);

    // A cut restore-point page and a missing permission on sessions.
    let h = harness(
        Tenant {
            veeam: demo,
            ..Tenant::default()
        },
        2,
    );
    h.sim.add_fault(Fault {
        path: "/api/v1/restorePoints".into(),
        from_request: 2,
        times: 10,
        kind: FaultKind::TruncatedBody,
    });
    h.sim.add_fault(Fault {
        path: "/api/v1/sessions".into(),
        from_request: 1,
        times: 10,
        kind: FaultKind::Forbidden,
    });
    let config = veeam_config(&h);
    let out = run_with(&h, &config);
    let report = &out.manifest.sources["veeam"];
    assert_eq!(
        report.datasets["restore-points"].status,
        DatasetStatus::Partial
    );
    assert_eq!(
        report.datasets["surebackup-sessions"].status,
        DatasetStatus::Failed
    );
    assert_ne!(verdict(&out, "backup_recency"), Verdict::Pass);
    assert_ne!(verdict(&out, "backup_321"), Verdict::Pass);
}

#[test]
fn datto_bcdr_with_listed_serials_reads_only_those_appliances() {
    let h = harness(
        Tenant {
            datto_bcdr: bcdr_tenant(),
            ..Tenant::default()
        },
        100,
    );
    let config = format!("{BCDR}serial_numbers = [\"AA01\"]\n");
    let out = run_with(&h, &config);
    assert_eq!(out.manifest.sources["bcdr"].status, SourceStatus::Complete);
    let f = facts(&out);
    let names: Vec<&str> = f.backups.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["FS01", "SQL01"]);
    let bytes = run_bytes(&out);
    for other in ["SIRIS-2", "ALTO-3", "FUTURE01", "<script>"] {
        assert!(!contains(&bytes, other), "{other} is another appliance's");
    }
    // A serial number that is not one is refused before any request.
    std::fs::write(h.path().join("bcdr.secret"), BCDR_SECRET).expect("write secret");
    let text = format!(
        "[organisation]\nname = \"Backup Test\"\nframeworks = [\"hipaa\"]\n{}serial_numbers = [\"../../x\"]\n",
        BCDR.replace("{base}", &h.sim.base_url())
    );
    let path = h.path().join("bad.toml");
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(&path).expect("top level loads");
    let err = auditpack::sources::build_collectors(&config.sources)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("serial_numbers"), "{err}");
}

#[test]
fn datto_bcdr_asset_types_outside_agent_and_share_prove_no_machine() {
    let mut tenant = bcdr_tenant();
    let typed = |name: &str, kind: Option<&str>| {
        let mut a = asset(name, 2, Some(5), "success");
        if let Some(kind) = kind {
            a["type"] = json!(kind);
        }
        a
    };
    tenant.assets.insert(
        "AA01".into(),
        vec![
            typed("AGENT01", Some("agent")),
            typed("SHARE01", Some("share")),
            typed("NAS01", Some("nas-volume")),
            typed("PLAIN01", None),
        ],
    );
    let h = harness(
        Tenant {
            datto_bcdr: tenant,
            ..Tenant::default()
        },
        100,
    );
    let out = run_with(&h, &format!("{BCDR}serial_numbers = [\"AA01\"]\n"));
    let f = facts(&out);
    let of = |name: &str| backup(&f, name);
    assert_eq!(of("AGENT01").kind, ProtectedKind::Machine);
    assert_eq!(of("PLAIN01").kind, ProtectedKind::Machine);
    assert_eq!(of("SHARE01").kind, ProtectedKind::Workload);
    let nas = of("NAS01");
    assert_eq!(nas.kind, ProtectedKind::Unknown);
    assert!(
        nas.notes.iter().any(|n| n.contains("\"nas-volume\"")),
        "{:?}",
        nas.notes
    );
}

#[test]
fn cove_records_it_cannot_read_make_the_list_partial() {
    let h = harness(
        cove_with(|c| {
            c.devices
                .push(json!({"PartnerId": 4242, "Settings": [{"I1": "no-account-id"}]}));
        }),
        100,
    );
    let out = run_with(&h, COVE);
    let f = facts(&out);
    assert_eq!(f.backups.len(), 3);
    let status = &f.coverage[&auditpack::facts::FactKind::Backups][0];
    assert_eq!(status.status, DatasetStatus::Partial, "{status:?}");
    // SQL01 fails regardless; nothing can pass while the list is partial.
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Fail);
    let recency = out
        .results
        .iter()
        .flat_map(|c| &c.checks)
        .find(|c| c.check == "backup_recency")
        .expect("recency");
    assert!(recency.unproven.iter().any(|s| s.id == "source:cove"));
}

#[test]
fn cove_microsoft_365_accounts_are_workloads_and_untyped_accounts_prove_no_device() {
    let h = harness(
        cove_with(|c| {
            c.devices = vec![
                cove_device(1, 4242, "FS01", "5", 2),
                // A Microsoft 365 account whose newest session failed.
                cove_account(5, 4242, Some("2"), "contoso.onmicrosoft.com", "2", 60),
                // Accounts whose type is not reported, or not documented.
                cove_account(6, 4242, None, "APP02", "5", 1),
                cove_account(7, 4242, Some("9"), "APP03", "5", 1),
            ];
        }),
        100,
    );
    let out = run_with(&h, COVE);
    assert_eq!(out.manifest.sources["cove"].status, SourceStatus::Complete);
    let f = facts(&out);
    let kind = |name: &str| backup(&f, name).kind;
    assert_eq!(kind("FS01"), ProtectedKind::Machine);
    // Named by its device name: a Microsoft 365 account has no computer.
    assert_eq!(
        kind("contoso.onmicrosoft.com-dev"),
        ProtectedKind::Workload,
        "{:?}",
        f.backups
    );
    assert_eq!(kind("APP02"), ProtectedKind::Unknown);
    assert_eq!(kind("APP03"), ProtectedKind::Unknown);
    let app03 = backup(&f, "APP03");
    assert!(app03
        .notes
        .iter()
        .any(|n| n.contains("\"9\" is not a documented")));
    // The failing Microsoft 365 backup is still a failure of backup results.
    let recency = out
        .results
        .iter()
        .flat_map(|c| &c.checks)
        .find(|c| c.check == "backup_recency")
        .expect("recency");
    assert_eq!(recency.outcome, Verdict::Fail);
    assert!(
        recency.failing.iter().any(|s| s.id == "cove:5"),
        "{:?}",
        recency.failing
    );
}
