//! Endpoint reports: `auditpack probe` on this machine produces a report that
//! validates against the published schema, and the drop-folder source keeps
//! good reports byte for byte while refusing each bad one with a named reason.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use auditpack::config::Config;
use auditpack::evidence::{read_custody, DatasetStatus, RunManifest};
use auditpack::facts::Facts;
use auditpack::sources::endpoint_reports::schema::Schema;
use serde_json::{json, Value};

fn schema() -> Schema {
    Schema::v1().expect("the shipped schema loads")
}

#[test]
fn probe_on_this_machine_writes_a_report_that_validates_against_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("me.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(["probe", "--out"])
        .arg(&out)
        .status()
        .expect("auditpack runs");
    assert!(status.success());
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).expect("report written"))
        .expect("report is JSON");
    assert_eq!(schema().validate(&doc), Vec::<String>::new());
    assert_eq!(doc["os"]["family"], "linux");
    assert!(!doc["host"]["hostname"]
        .as_str()
        .unwrap_or_default()
        .is_empty());
    // The schema file itself is valid JSON Schema metadata and names version 1.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("collectors/endpoint/schema/endpoint-report-v1.schema.json"),
    )
    .expect("schema file");
    let s: Value = serde_json::from_str(&text).expect("schema json");
    assert_eq!(s["properties"]["schema_version"]["const"], 1);

    // Without --out the report goes to standard output, equally valid.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .arg("probe")
        .output()
        .expect("auditpack runs");
    let doc: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert!(schema().validate(&doc).is_empty());
}

fn report(host: &str, serial: Option<&str>, generated: &str) -> Value {
    json!({
        "schema": "auditpack.endpoint-report",
        "schema_version": 1,
        "generated_at": generated,
        "generator": {"name": "auditpack-endpoint.ps1", "version": "1.0.0"},
        "host": {"hostname": host, "serial_number": serial, "machine_id": null},
        "os": {"family": "windows", "name": "Windows 11 Pro", "version": "23H2", "build": "22631.4317"},
        "patching": {
            "last_install": "2026-10-20T09:00:00Z",
            "checked": true,
            "check_method": "Microsoft.Update.Session",
            "pending_security_updates": [
                {"id": "KB5044284", "title": "2026-10 Cumulative Update", "severity": "critical", "released": null, "age_days": 33}
            ]
        },
        "security_products": [
            {"name": "Microsoft Defender Antivirus", "kind": "antivirus", "running": true, "up_to_date": true, "detected_by": "wmi"},
            {"name": "SentinelOne", "kind": "edr", "running": true, "detected_by": "service"}
        ],
        "disk_encryption": {"status": "encrypted", "method": "BitLocker", "volumes": [{"name": "C:", "mount": "C:\\", "encrypted": true}]},
        "firewall": {"status": "enabled", "products": ["Windows Firewall"]},
        "screen_lock": {"status": "enabled", "timeout_seconds": 600}
    })
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("json")
}

#[test]
fn the_drop_folder_keeps_good_reports_and_rejects_each_bad_one_with_a_reason() {
    use std::os::unix::ffi::OsStrExt;

    let work = tempfile::tempdir().expect("tempdir");
    let drop = work.path().join("drop");
    let now = chrono::Utc::now();
    let t = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();

    // Good: three hosts, one in a subfolder (a site).
    let good_a = pretty(&report("FRONTDESK-01", Some("SN-A1"), &t(1)));
    let good_b = pretty(&report("HYGIENE-02", Some("SN-B2"), &t(2)));
    let good_c = pretty(&report("XRAY-03", None, &t(1)));
    write(&drop, "a-frontdesk.json", &good_a);
    write(&drop, "b-hygiene.json", &good_b);
    write(&drop, "site-2/xray.json", &good_c);

    // Bad, one of each kind.
    write(
        &drop,
        "c-malformed.json",
        b"{\"schema\": \"auditpack.endpoint-report\", ",
    );
    let mut big = report("BIG-01", Some("SN-BIG"), &t(1));
    big["os"]["name"] = json!("x".repeat(10));
    let mut big_bytes = pretty(&big);
    big_bytes.extend(std::iter::repeat_n(b' ', 1100 * 1024));
    write(&drop, "d-oversized.json", &big_bytes);
    let mut v2 = report("NEW-01", Some("SN-V2"), &t(1));
    v2["schema_version"] = json!(2);
    write(&drop, "e-version2.json", &pretty(&v2));
    write(
        &drop,
        "f-other-schema.json",
        &pretty(&json!({"schema": "osquery", "rows": []})),
    );
    let mut invalid = report("NOHOST-01", Some("SN-X"), &t(1));
    invalid.as_object_mut().expect("object").remove("firewall");
    invalid["disk_encryption"]["status"] = json!("mostly");
    write(&drop, "g-invalid.json", &pretty(&invalid));
    // An older report for host A (same serial, other file name).
    write(
        &drop,
        "h-frontdesk-old.json",
        &pretty(&report("frontdesk-01", Some("sn-a1"), &t(9))),
    );
    write(&drop, "i-\u{1b}[31mred.json", &good_b);
    std::os::unix::fs::symlink("/etc/passwd", drop.join("j-link.json")).expect("symlink");
    let fifo = drop.join("k-fifo.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let non_utf8 = std::ffi::OsStr::from_bytes(b"l-\xff\xfe.json");
    std::fs::write(drop.join(non_utf8), &good_b).expect("write non-UTF-8 name");
    write(&drop, "m/n/o/p/deep.json", &good_b);
    write(&drop, "q-empty.json", b"");
    write(&drop, "r-notes.txt", b"not a report");
    write(
        &drop,
        "s-future.json",
        &pretty(&report(
            "FUTURE-01",
            Some("SN-F"),
            &(now + chrono::Duration::days(30)).to_rfc3339(),
        )),
    );
    write(&drop, "-t-dash.json", &good_b);
    write(&drop, ".hidden.json", b"skipped silently");

    let config_path = work.path().join("auditpack.toml");
    std::fs::write(
        &config_path,
        "[organisation]\nname = \"Drop\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n[sources.endpoints]\ntype = \"endpoint-reports\"\npath = \"drop\"\n",
    )
    .expect("config");
    let config = Config::load(&config_path).expect("config loads");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = auditpack::pipeline::run(&config, &common::fast_options(), &runtime)
        .expect("the run completes despite bad reports");

    let manifest = RunManifest::read(&outcome.run_dir).expect("run.json");
    let src = &manifest.sources["endpoints"];
    let reasons: BTreeMap<&str, &str> = src
        .rejected
        .iter()
        .map(|r| (r.input.as_str(), r.reason.as_str()))
        .collect();
    let expected = [
        ("c-malformed.json", "malformed"),
        ("d-oversized.json", "oversized"),
        ("e-version2.json", "wrong-schema-version"),
        ("f-other-schema.json", "wrong-schema"),
        ("g-invalid.json", "invalid"),
        ("h-frontdesk-old.json", "duplicate-host"),
        ("i-\\u{1b}[31mred.json", "hostile-name"),
        ("j-link.json", "symlink"),
        ("k-fifo.json", "not-regular-file"),
        ("l-\u{fffd}\u{fffd}.json", "non-utf8-name"),
        ("m/n/o/p", "too-deep"),
        ("q-empty.json", "empty"),
        ("r-notes.txt", "unexpected-file"),
        ("s-future.json", "future-dated"),
        ("-t-dash.json", "hostile-name"),
    ];
    for (input, reason) in expected {
        assert_eq!(reasons.get(input), Some(&reason), "{input}: {reasons:#?}");
    }
    assert_eq!(src.rejected.len(), expected.len(), "{reasons:#?}");
    let invalid = src
        .rejected
        .iter()
        .find(|r| r.reason == "invalid")
        .expect("invalid");
    assert!(invalid.detail.contains("firewall") && invalid.detail.contains("disk_encryption"));

    let reports = &src.datasets["reports"];
    assert_eq!(reports.records, 3);
    assert_eq!(
        reports.status,
        DatasetStatus::Partial,
        "rejections make it partial"
    );

    // Kept reports are byte-identical, under counter names, with custody.
    let dir = outcome.run_dir.join("evidence/endpoints/reports");
    let mut stored: Vec<_> = std::fs::read_dir(&dir)
        .expect("reports dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            "report-00001.json",
            "report-00002.json",
            "report-00003.json"
        ]
    );
    let bytes: Vec<Vec<u8>> = stored
        .iter()
        .map(|n| std::fs::read(dir.join(n)).expect("read"))
        .collect();
    assert_eq!(bytes, [good_a, good_b, good_c]);
    let custody = read_custody(&outcome.run_dir.join("custody.jsonl")).expect("custody");
    let origins: Vec<&str> = custody.iter().map(|c| c.request.as_str()).collect();
    assert_eq!(
        origins,
        [
            "FILE a-frontdesk.json",
            "FILE b-hygiene.json",
            "FILE site-2/xray.json"
        ]
    );

    let facts: Facts = serde_json::from_slice(
        &std::fs::read(outcome.run_dir.join("facts/facts.json")).expect("facts"),
    )
    .expect("facts parse");
    assert_eq!(facts.devices.len(), 3);
    let a = facts
        .devices
        .iter()
        .find(|d| d.name == "FRONTDESK-01")
        .expect("host A");
    assert_eq!(a.serial.as_deref(), Some("SN-A1"));
    assert_eq!(a.encrypted, Some(true));
    assert_eq!(
        a.antimalware.as_ref().and_then(|m| m.product.as_deref()),
        Some("SentinelOne")
    );
    assert_eq!(facts.patches.len(), 3);
    assert!(facts.patches.iter().all(|p| p.detected.is_some()));
}

#[test]
fn a_missing_drop_folder_fails_the_source_not_the_run() {
    let work = tempfile::tempdir().expect("tempdir");
    let config_path = work.path().join("auditpack.toml");
    std::fs::write(
        &config_path,
        "[organisation]\nname = \"Drop\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n[sources.endpoints]\ntype = \"endpoint-reports\"\npath = \"nowhere\"\n",
    )
    .expect("config");
    let config = Config::load(&config_path).expect("config loads");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome =
        auditpack::pipeline::run(&config, &common::fast_options(), &runtime).expect("run");
    let src = &outcome.manifest.sources["endpoints"];
    assert_eq!(src.status, auditpack::evidence::SourceStatus::Failed);
    assert!(src.reason.as_deref().is_some_and(|r| r.contains("nowhere")));
}

mod untrusted {
    use super::*;
    use auditpack::sources::endpoint_reports::validate_report;
    use proptest::prelude::*;

    const REASONS: &[&str] = &[
        "empty",
        "malformed",
        "wrong-schema",
        "wrong-schema-version",
        "invalid",
        "future-dated",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_bytes_are_refused_with_a_named_reason_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Err(r) = validate_report(&bytes, chrono::Utc::now()) {
                prop_assert!(REASONS.contains(&r.reason.as_str()), "{}", r.reason);
            }
        }

        #[test]
        fn a_flipped_byte_in_a_good_report_is_accepted_or_refused_by_name(at in 0usize..4096, byte in any::<u8>()) {
            let mut bytes = pretty(&report("PC-1", Some("SN-1"), "2026-01-01T00:00:00Z"));
            let i = at % bytes.len();
            bytes[i] = byte;
            match validate_report(&bytes, chrono::Utc::now()) {
                Ok(()) => {
                    let doc: Value = serde_json::from_slice(&bytes).expect("accepted means JSON");
                    prop_assert!(schema().validate(&doc).is_empty());
                }
                Err(r) => prop_assert!(REASONS.contains(&r.reason.as_str()), "{}", r.reason),
            }
        }
    }

    #[test]
    fn the_good_report_itself_is_accepted() {
        let bytes = pretty(&report("PC-1", Some("SN-1"), "2026-01-01T00:00:00Z"));
        assert_eq!(validate_report(&bytes, chrono::Utc::now()), Ok(()));
    }
}

#[test]
fn two_machines_sharing_a_hostname_keep_distinct_device_ids() {
    let work = tempfile::tempdir().expect("tempdir");
    let drop = work.path().join("drop");
    let now = chrono::Utc::now().to_rfc3339();
    write(
        &drop,
        "one.json",
        &pretty(&report("RECEPTION", Some("SN-1"), &now)),
    );
    write(
        &drop,
        "two.json",
        &pretty(&report("reception", Some("SN-2"), &now)),
    );
    let config_path = work.path().join("auditpack.toml");
    std::fs::write(
        &config_path,
        "[organisation]\nname = \"Drop\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n[sources.ep]\ntype = \"endpoint-reports\"\npath = \"drop\"\n",
    )
    .expect("config");
    let config = Config::load(&config_path).expect("config loads");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome =
        auditpack::pipeline::run(&config, &common::fast_options(), &runtime).expect("run");
    assert!(outcome.manifest.sources["ep"].rejected.is_empty());
    let facts: Facts = serde_json::from_slice(
        &std::fs::read(outcome.run_dir.join("facts/facts.json")).expect("facts"),
    )
    .expect("facts parse");
    let ids: Vec<&str> = facts.devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["ep:serial:SN-1", "ep:serial:SN-2"]);
    // Reconciliation keeps them apart and says why.
    assert_eq!(facts.inventory.len(), 2);
    assert!(facts.inventory.iter().all(|i| i
        .conflicts
        .iter()
        .any(|c| c.contains("different serial numbers"))));
}
