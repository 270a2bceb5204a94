//! Spec-driven backup products against the simulator: the built-in Acronis
//! Cyber Protect Cloud spec (client credentials with HTTP Basic, cursor paged
//! resources and tasks) with faults, a user spec mapping copies and tests,
//! and the backup checks they feed: partial or failed collection, or a
//! product with nothing protected, is never a pass. Malformed specs are
//! refused naming the file, line and key.

use crate::common;

use auditpack::checks::Verdict;
use auditpack::config::Config;
use auditpack::evidence::{DatasetStatus, SourceStatus};
use auditpack::facts::{BackupResult, CopyLocation, Facts, RestoreTestKind, TestResult};
use auditpack::pipeline::RunOutcome;
use auditpack::simulate::{AcronisTenant, Fault, FaultKind, SimOptions, Tenant};
use common::{stored_records, Harness};
use serde_json::{json, Value};

const SECRET: &str = "acronis-secret-CANARY-5d1e8";
const CLIENT_ID: &str = "3f2a7c1e-acronis-client";

fn at(hours_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc3339()
}

fn resource(id: &str, name: &str) -> Value {
    json!({
        "id": id, "external_id": format!("{id}@17"), "name": name, "user_defined_name": name,
        "type": "resource.machine", "tenant_id": "17",
        "created_at": at(2000), "updated_at": at(1)
    })
}

fn task(n: u64, resource: &str, code: Option<&str>, hours_ago: i64) -> Value {
    let mut t = json!({
        "id": n, "uuid": format!("00000000-0000-0000-0000-{n:012}"), "type": "backup",
        "state": "completed", "resource": {"id": resource, "type": "resource.machine"},
        "policy": {"id": "plan-daily", "type": "policy.backup.machine"},
        "enqueuedAt": at(hours_ago + 1), "startedAt": at(hours_ago + 1), "completedAt": at(hours_ago),
    });
    if let Some(code) = code {
        t["result"] = json!({"code": code});
    }
    t
}

fn acronis() -> AcronisTenant {
    let mut t = AcronisTenant::default();
    t.client_id = CLIENT_ID.into();
    t.client_secret = SECRET.into();
    t.resources = vec![
        resource("r-fs01", "FS01"),
        resource("r-sql01", "SQL01"),
        resource("r-hostile", "<script>alert(1)</script>"),
        resource("r-app01", "APP01"),
        resource("r-future", "FUTURE01"),
        json!({"id": "g-1", "name": "All machines", "type": "resource.group.computers"}),
    ];
    let mut future = task(9, "r-future", Some("ok"), -96);
    future["startedAt"] = json!(at(-95));
    let mut running = task(10, "r-fs01", None, 0);
    running["state"] = json!("started");
    running.as_object_mut().map(|o| o.remove("completedAt"));
    running["startedAt"] = json!(at(0));
    // A task of another policy (not a backup run), whatever its own type.
    let mut other = task(11, "r-sql01", Some("ok"), 0);
    other["policy"] = json!({"id": "plan-va", "type": "policy.security.vulnerability_assessment"});
    // A backup run whose task type is Acronis's own, not `backup`.
    let mut fs_ok = task(1, "r-fs01", Some("ok"), 3);
    fs_ok["type"] = json!("A59E8BF2-39C3-42C4-B667-CB672381A214");
    t.tasks = vec![
        fs_ok,
        task(2, "r-sql01", Some("ok"), 30),
        task(3, "r-sql01", Some("error"), 5),
        task(4, "r-hostile", Some("ok"), 300),
        task(5, "r-app01", Some("exotic-code"), 2),
        future,
        running,
        other,
        task(12, "r-unlisted", Some("error"), 1),
    ];
    t
}

fn harness(acronis: AcronisTenant, page: usize) -> Harness {
    Harness::new(
        Tenant {
            acronis,
            ..Tenant::default()
        },
        SimOptions {
            max_page_size: page,
            ..SimOptions::default()
        },
    )
}

const ACRONIS: &str = r#"
[sources.acronis]
type = "acronis-cyber-protect"
base_url = "{base}"
client_id = "3f2a7c1e-acronis-client"
client_secret_file = "acronis.secret"
"#;

fn config_text(h: &Harness, sources: &str, secret: &str) -> std::path::PathBuf {
    std::fs::write(h.path().join("acronis.secret"), secret).expect("write secret");
    let text = format!(
        "[organisation]\nname = \"Backup Spec Test\"\nframeworks = [\"hipaa\", \"soc2\"]\nstore = \"store\"\n\n{}",
        sources.replace("{base}", &h.sim.base_url())
    );
    let path = h.path().join("auditpack.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn run_with(h: &Harness, sources: &str, secret: &str) -> RunOutcome {
    let path = config_text(h, sources, secret);
    h.run(&Config::load(&path).expect("config loads"))
}

fn facts(outcome: &RunOutcome) -> Facts {
    let bytes = std::fs::read(outcome.run_dir.join("facts/facts.json")).expect("facts");
    serde_json::from_slice(&bytes).expect("facts parse")
}

fn check<'a>(outcome: &'a RunOutcome, id: &str) -> &'a auditpack::evaluate::CheckResult {
    outcome
        .results
        .iter()
        .flat_map(|c| &c.checks)
        .find(|c| c.check == id)
        .unwrap_or_else(|| panic!("{id} ran"))
}

fn verdict(outcome: &RunOutcome, id: &str) -> Verdict {
    check(outcome, id).outcome
}

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

fn items(v: &Value) -> Option<&Vec<Value>> {
    v.get("items")?.as_array()
}

#[test]
fn acronis_pages_resources_and_tasks_through_faults_and_judges_them() {
    let h = harness(acronis(), 2);
    for (path, from, kind) in [
        (
            "/api/resource_management/v4/resources",
            2,
            FaultKind::TooManyRequests(Some(0)),
        ),
        ("/api/task_manager/v2/tasks", 1, FaultKind::Unavailable),
        ("/api/task_manager/v2/tasks", 3, FaultKind::TokenExpired),
    ] {
        h.sim.add_fault(Fault {
            path: path.into(),
            from_request: from,
            times: 1,
            kind,
        });
    }
    let out = run_with(&h, ACRONIS, SECRET);
    let report = &out.manifest.sources["acronis"];
    assert_eq!(report.status, SourceStatus::Complete, "{report:?}");
    // Five machines on three pages (the group is filtered out by `type`),
    // nine tasks on five pages, stored exactly as served.
    let resources = stored_records(&out.run_dir, "acronis", "resources", items);
    assert_eq!(resources.len(), 5);
    assert_eq!(report.datasets["resources"].pages, 3);
    let tasks = stored_records(&out.run_dir, "acronis", "tasks", items);
    assert_eq!(tasks.len(), 9);
    // The expired token was replaced by a new one.
    assert_eq!(h.sim.token_requests(), 2);

    let f = facts(&out);
    assert_eq!(f.backups.len(), 5);
    let by = |name: &str| {
        f.backups
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let fs = by("FS01");
    assert_eq!(fs.product, "Acronis Cyber Protect Cloud");
    assert_eq!(fs.id, "acronis:r-fs01");
    assert_eq!(
        fs.last_result,
        BackupResult::Running,
        "the newest task runs"
    );
    assert!(fs.last_success.is_some());
    assert_eq!(fs.jobs, ["plan-daily"]);
    assert_eq!(fs.copies, None, "Acronis copies are not claimed");
    assert_eq!(fs.tests, None, "Acronis recovery tests are not claimed");
    let sql = by("SQL01");
    assert_eq!(sql.last_result, BackupResult::Failed);
    assert!(sql.last_failure > sql.last_success);
    let app = by("APP01");
    assert_eq!(app.last_result, BackupResult::Unknown("exotic-code".into()));
    assert!(app.notes.iter().any(|n| n.contains("exotic-code")));

    assert_eq!(verdict(&out, "backup_recency"), Verdict::Fail);
    let recency = check(&out, "backup_recency");
    let failing: Vec<&str> = recency.failing.iter().map(|s| s.name.as_str()).collect();
    assert!(
        failing.contains(&"SQL01") && failing.contains(&"<script>alert(1)</script>"),
        "{failing:?}"
    );
    assert!(!failing.contains(&"FS01"));
    let unproven: Vec<&str> = recency.unproven.iter().map(|s| s.name.as_str()).collect();
    assert!(unproven.contains(&"FUTURE01"), "{unproven:?}");
    // An undocumented result code leaves the machine unproven, never passed.
    assert!(unproven.contains(&"APP01"), "{unproven:?}");
    assert!(!failing.contains(&"FUTURE01") && !failing.contains(&"APP01"));
    // Nothing says where copies are or whether recoveries were tested.
    assert_ne!(verdict(&out, "backup_321"), Verdict::Pass);
    assert_ne!(verdict(&out, "restore_tested"), Verdict::Pass);

    let html = std::fs::read_to_string(out.run_dir.join("reports/report.html")).expect("html");
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(!contains(&run_bytes(&out), SECRET), "secret leaked");
}

#[test]
fn a_wrong_secret_fails_the_source_by_name_and_never_leaks() {
    let h = harness(acronis(), 100);
    let wrong = "wrong-secret-CANARY-0a9b";
    let out = run_with(&h, ACRONIS, wrong);
    let report = &out.manifest.sources["acronis"];
    assert_eq!(report.status, SourceStatus::Failed);
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("/api/2/idp/token") && reason.contains("rejected the credentials"),
        "{reason}"
    );
    assert_eq!(out.manifest.sources.keys().collect::<Vec<_>>(), ["acronis"]);
    for id in ["backup_recency", "backup_321", "restore_tested"] {
        assert_eq!(verdict(&out, id), Verdict::Inconclusive, "{id}");
    }
    let bytes = run_bytes(&out);
    assert!(!contains(&bytes, wrong), "secret leaked");
    // One token request: a rejected secret is not retried.
    assert_eq!(h.sim.token_requests(), 1);
}

#[test]
fn partial_or_forbidden_tasks_and_an_empty_tenant_are_never_a_pass() {
    // Every machine healthy, but the second task page is cut off.
    let mut healthy = acronis();
    healthy.resources.truncate(2);
    healthy.tasks = vec![
        task(1, "r-fs01", Some("ok"), 2),
        task(2, "r-sql01", Some("ok"), 2),
        task(3, "r-fs01", Some("ok"), 1),
        task(4, "r-sql01", Some("ok"), 1),
    ];
    let h = harness(healthy.clone(), 2);
    h.sim.add_fault(Fault {
        path: "/api/task_manager/v2/tasks".into(),
        from_request: 2,
        times: 10,
        kind: FaultKind::TruncatedBody,
    });
    let out = run_with(&h, ACRONIS, SECRET);
    let tasks = &out.manifest.sources["acronis"].datasets["tasks"];
    assert_eq!(tasks.status, DatasetStatus::Partial, "{tasks:?}");
    let recency = check(&out, "backup_recency");
    assert_eq!(recency.outcome, Verdict::Inconclusive, "{recency:?}");

    // The same tenant collected whole passes recency: the test can fail.
    let h = harness(healthy.clone(), 2);
    let out = run_with(&h, ACRONIS, SECRET);
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Pass);

    // The API client's role may not read tasks: 403, named, inconclusive.
    let mut forbidden = healthy.clone();
    forbidden
        .forbidden
        .insert("/api/task_manager/v2/tasks".into());
    let h = harness(forbidden, 2);
    let out = run_with(&h, ACRONIS, SECRET);
    let report = &out.manifest.sources["acronis"];
    assert_ne!(report.status, SourceStatus::Complete);
    let tasks = &report.datasets["tasks"];
    assert_eq!(tasks.status, DatasetStatus::Failed, "{tasks:?}");
    assert!(
        tasks
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("permission"),
        "{tasks:?}"
    );
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Inconclusive);

    // A tenant protecting nothing: 0 systems is unproven, not a pass.
    let mut empty = healthy;
    empty.resources.clear();
    empty.tasks.clear();
    let h = harness(empty, 2);
    let out = run_with(&h, ACRONIS, SECRET);
    assert_eq!(
        out.manifest.sources["acronis"].status,
        SourceStatus::Complete
    );
    assert!(facts(&out).backups.is_empty());
    let recency = check(&out, "backup_recency");
    assert_eq!(recency.outcome, Verdict::Inconclusive);
    assert!(!recency.unproven.is_empty(), "{recency:?}");
}

/// A user spec for another product, over the same simulated API: copies and
/// tests from fields of the records, with values outside the maps.
const USER_SPEC: &str = r#"
spec_version = 1
kind = "backup"
id = "other-backup"
name = "Other Backup"

[auth]
style = "oauth2-client-credentials"
token_path = "/api/2/idp/token"
client_auth = "basic"

[[endpoint]]
dataset = "machines"
path = "/api/resource_management/v4/resources"
records = "/items"
paging = { style = "cursor", param = "after", pointer = "/paging/cursors/after" }

[[endpoint]]
dataset = "jobs"
path = "/api/task_manager/v2/tasks"
records = "/items"
paging = { style = "cursor", param = "after", pointer = "/paging/cursors/after", size = ["limit", 3] }

[systems]
dataset = "machines"
id = "/id"
name = "/name"
serial = "/serial"
kind = { pointer = "/type", map = { "resource.machine" = "machine", "resource.m365" = "workload" } }
paused = { pointer = "/paused", map = { "true" = "true", "false" = "false" } }

[runs]
dataset = "jobs"
system = "/resource/id"
at = "/completedAt"
result = { pointer = "/result/code", map = { "ok" = "success", "error" = "failed" } }
only_when = [ { pointer = "/type", equals = "backup" } ]

[copies]
dataset = "machines"
location = { pointer = "/copy/where", map = { "nas" = "local", "dc2" = "offsite", "s3" = "cloud" } }
target = "/copy/target"
latest = "/copy/latest"
immutable = { pointer = "/copy/locked", map = { "true" = "true", "false" = "false" } }

[tests]
dataset = "jobs"
system = "/resource/id"
kind = { pointer = "/type", map = { "bootcheck" = "boot", "restore-drill" = "restore" } }
at = "/completedAt"
result = { pointer = "/result/code", map = { "ok" = "passed", "error" = "failed" } }
only_when = [ { pointer = "/type", not_equals = "backup" } ]
"#;

#[test]
fn a_user_spec_maps_copies_and_tests_and_keeps_unknown_values_raw() {
    let mut t = acronis();
    let mut a = resource("m-a", "NAS-A");
    a["serial"] = json!("SN-A");
    a["paused"] = json!(false);
    a["copy"] = json!({"where": "s3", "target": "bucket-1", "latest": at(2), "locked": true});
    let mut b = resource("m-b", "NAS-B");
    b["paused"] = json!(true);
    b["copy"] = json!({"where": "tape-vault", "latest": at(2), "locked": false});
    let mut m365 = resource("m-365", "Contoso mailboxes");
    m365["type"] = json!("resource.m365");
    let mut odd_kind = resource("m-odd", "NAS-A");
    odd_kind["id"] = json!("m-odd");
    odd_kind["type"] = json!("resource.exotic");
    t.resources = vec![a, b, m365, odd_kind];
    let mut boot = task(3, "m-a", Some("ok"), 20);
    boot["type"] = json!("bootcheck");
    let mut odd = task(4, "m-a", Some("maybe"), 10);
    odd["type"] = json!("restore-drill");
    let mut exotic = task(5, "m-b", Some("ok"), 10);
    exotic["type"] = json!("checksum-scan");
    t.tasks = vec![
        task(1, "m-a", Some("ok"), 2),
        task(2, "m-b", Some("error"), 2),
        boot,
        odd,
        exotic,
    ];
    let h = harness(t, 2);
    std::fs::write(h.path().join("other.toml"), USER_SPEC).expect("write spec");
    let sources = r#"
[sources.other]
type = "backup-spec"
spec_file = "other.toml"
base_url = "{base}"
client_id = "3f2a7c1e-acronis-client"
client_secret_file = "acronis.secret"
"#;
    let out = run_with(&h, sources, SECRET);
    assert_eq!(
        out.manifest.sources["other"].status,
        SourceStatus::Complete,
        "{:?}",
        out.manifest.sources["other"]
    );
    let f = facts(&out);
    let by = |name: &str| f.backups.iter().find(|b| b.name == name).expect(name);
    let a = by("NAS-A");
    assert_eq!(a.serial.as_deref(), Some("SN-A"));
    assert_eq!(a.paused, Some(false));
    let copies = a.copies.as_ref().expect("copies reported");
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].location, CopyLocation::Cloud);
    assert_eq!(copies[0].immutable, Some(true));
    assert_eq!(copies[0].target.as_deref(), Some("bucket-1"));
    let tests = a.tests.as_ref().expect("tests reported");
    assert!(tests
        .iter()
        .any(|t| t.kind == RestoreTestKind::Boot && t.result == TestResult::Passed));
    assert!(tests
        .iter()
        .any(|t| t.kind == RestoreTestKind::Restore
            && t.result == TestResult::Unknown("maybe".into())));
    let b = by("NAS-B");
    assert_eq!(b.paused, Some(true));
    assert_eq!(
        b.copies.as_ref().expect("copies")[0].location,
        CopyLocation::Unknown("tape-vault".into())
    );
    assert_eq!(b.tests.as_deref(), Some(&[][..]), "the scan is not a test");
    assert!(b.notes.iter().any(|n| n.contains("checksum-scan")));
    let m365 = by("Contoso mailboxes");
    assert_eq!(m365.kind, auditpack::facts::ProtectedKind::Workload);
    assert_eq!(m365.copies.as_deref(), Some(&[][..]));
    // A type the spec's map does not place is not taken for a machine.
    let odd_kind = f
        .backups
        .iter()
        .find(|b| b.id == "other:m-odd")
        .expect("m-odd");
    assert_eq!(odd_kind.kind, auditpack::facts::ProtectedKind::Unknown);
    assert!(odd_kind
        .notes
        .iter()
        .any(|n| n.contains("not taken for a machine")));
    assert_eq!(verdict(&out, "backup_recency"), Verdict::Fail);
}

#[test]
fn malformed_specs_are_refused_naming_file_line_and_key() {
    let h = harness(acronis(), 100);
    let cases = [
        (
            USER_SPEC.replace("serial = \"/serial\"", "serial = \"/serial\"\nsurprise = 1"),
            "surprise",
            Some("surprise = 1"),
        ),
        (
            USER_SPEC.replace(
                "\"error\" = \"failed\" } }\nonly_when = [ { pointer = \"/type\", equals",
                "\"error\" = \"failed\" }, default = \"success\" }\nonly_when = [ { pointer = \"/type\", equals",
            ),
            "runs.result",
            Some("result = { pointer = \"/result/code\", map = { \"ok\" = \"success\""),
        ),
        (
            USER_SPEC.replace("name = \"/name\"\nserial", "name = \"name\"\nserial"),
            "systems.name",
            Some("name = \"name\""),
        ),
        (
            USER_SPEC.replace("\"s3\" = \"cloud\"", "\"s3\" = \"sky\""),
            "copies.location",
            Some("location = "),
        ),
        (
            USER_SPEC.replace("kind = \"backup\"", "kind = \"rmm\""),
            "devices",
            None,
        ),
    ];
    for (text, key, needle) in cases {
        std::fs::write(h.path().join("bad.toml"), &text).expect("write spec");
        let sources = r#"
[sources.bad]
type = "backup-spec"
spec_file = "bad.toml"
base_url = "{base}"
client_id = "c"
client_secret_file = "acronis.secret"
"#;
        let path = config_text(&h, sources, SECRET);
        let config = Config::load(&path).expect("config parses");
        let err = auditpack::pipeline::run(&config, &common::fast_options(), &h.runtime)
            .expect_err("spec refused");
        let msg = err.to_string();
        assert!(
            msg.contains("bad.toml") && msg.contains(key),
            "{key}: {msg}"
        );
        if let Some(needle) = needle {
            let line = text
                .lines()
                .position(|l| l.starts_with(needle))
                .map(|n| n + 1)
                .expect("needle in spec");
            assert!(
                msg.contains(&format!("bad.toml:{line}:")),
                "{key} at {line}: {msg}"
            );
        }
    }
    // A backup spec is not an RMM, and the other way round.
    std::fs::write(h.path().join("bad.toml"), USER_SPEC).expect("write spec");
    let sources = r#"
[sources.bad]
type = "rmm-spec"
spec_file = "bad.toml"
base_url = "{base}"
client_id = "c"
client_secret_file = "acronis.secret"
"#;
    let path = config_text(&h, sources, SECRET);
    let config = Config::load(&path).expect("config parses");
    let err = auditpack::pipeline::run(&config, &common::fast_options(), &h.runtime)
        .expect_err("kind refused");
    assert!(err.to_string().contains("backup-spec"), "{err}");
    assert_eq!(h.sim.token_requests(), 0);
}
