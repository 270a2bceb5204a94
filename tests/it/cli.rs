//! The binary: `demo` end to end, exit codes, and deterministic re-evaluation.

use std::path::Path;
use std::process::Command;

fn auditpack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditpack"))
}

#[test]
fn demo_runs_end_to_end_and_its_package_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let result = auditpack()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    for needle in [
        "controls by status",
        "hipaa",
        "pci-dss",
        "soc2",
        "verify: VALID",
        "ssh-keygen -Y verify",
        "Jenny Lee",
        "CD-SRV-PMS",
        "[internal]",
        "[msp]",
        // A few current policy documents, and one expired.
        "manual_attested",
        "manual_pending",
        "documents --config",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
    let packages: Vec<_> = std::fs::read_dir(out.join("packages"))
        .expect("packages")
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(packages.len(), 1);
    let package = packages[0].path();
    assert!(
        auditpack::package::zip_path(&package).is_file(),
        "the zip beside the folder"
    );

    let verify = auditpack()
        .arg("verify")
        .arg(&package)
        .arg("--allowed-signers")
        .arg(out.join("allowed_signers"))
        .output()
        .expect("runs");
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    std::fs::write(package.join("data/run.json"), "{}").expect("tamper");
    let verify = auditpack()
        .arg("verify")
        .arg(&package)
        .arg("--allowed-signers")
        .arg(out.join("allowed_signers"))
        .output()
        .expect("runs");
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("data/run.json"));
}

#[test]
fn evaluating_a_run_twice_gives_identical_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    assert!(auditpack()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .status()
        .expect("runs")
        .success());
    let run = std::fs::read_dir(out.join("runs"))
        .expect("runs")
        .flatten()
        .next()
        .expect("one run")
        .path();
    let first = std::fs::read(run.join("results/controls.json")).expect("results");
    let oscal = std::fs::read(run.join("results/assessment-results.oscal.json")).expect("oscal");
    // Re-evaluation renders the reports again, so none is left stale.
    std::fs::remove_file(run.join("reports/report.html")).expect("remove");
    let status = auditpack()
        .arg("evaluate")
        .arg(&run)
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(1), "the demo has failing controls");
    assert!(run.join("reports/report.html").is_file());
    assert_eq!(
        oscal,
        std::fs::read(run.join("results/assessment-results.oscal.json")).expect("oscal")
    );
    let second = std::fs::read(run.join("results/controls.json")).expect("results");
    assert_eq!(first, second);
    let facts = std::fs::read(run.join("facts/facts.json")).expect("facts");
    assert!(
        auditpack()
            .arg("evaluate")
            .arg(&run)
            .status()
            .expect("runs")
            .code()
            == Some(1)
    );
    assert_eq!(
        facts,
        std::fs::read(run.join("facts/facts.json")).expect("facts")
    );
}

#[test]
fn controls_json_follows_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    assert!(auditpack()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .status()
        .expect("runs")
        .success());
    let run = std::fs::read_dir(out.join("runs"))
        .expect("runs")
        .flatten()
        .next()
        .expect("one run")
        .path();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("results/controls.json")).expect("read"))
            .expect("json");
    assert_eq!(json["format"], 3);
    let entries = json["controls"]
        .as_array()
        .expect("an array of control entries");
    let section = json["checks"].as_object().expect("a `checks` section");
    assert!(!entries.is_empty());
    let statuses = [
        "pass",
        "fail",
        "inconclusive",
        "manual_pending",
        "manual_attested",
        "not_applicable",
    ];
    let owners = ["internal", "msp", "shared", "unassigned"];
    let mut referenced = std::collections::BTreeSet::new();
    for e in entries {
        for key in [
            "framework",
            "control_id",
            "title",
            "status",
            "owner",
            "checks",
            "reason",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert!(statuses.contains(&e["status"].as_str().unwrap_or_default()));
        assert!(owners.contains(&e["owner"].as_str().unwrap_or_default()));
        for c in e["checks"].as_array().expect("checks") {
            for key in [
                "check",
                "outcome",
                "evaluated",
                "failing_count",
                "unproven_count",
                "result",
            ] {
                assert!(c.get(key).is_some(), "{key} missing in {c}");
            }
            // Subjects and evidence are written once, under the result.
            assert!(c.get("failing").is_none(), "{c}");
            let key = c["result"].as_str().expect("a result key");
            let found = &section[key];
            assert_eq!(found["check"], c["check"], "{key}");
            let count = c["failing_count"].as_u64().expect("a count");
            let listed = found["failing"].as_array().expect("failing").len() as u64;
            assert!(count == 0 || count == listed, "{key}: {count} vs {listed}");
            referenced.insert(key.to_owned());
        }
    }
    // Every entry of the section is some control's result.
    let keys: std::collections::BTreeSet<String> = section.keys().cloned().collect();
    assert_eq!(keys, referenced);
    // A subject is a row whose values the entry's `subject_fields` name.
    for (key, found) in section {
        assert_eq!(
            found["subject_fields"],
            serde_json::json!(["id", "name", "detail"]),
            "{key}"
        );
    }
    let failing = section
        .values()
        .flat_map(|c| c["failing"].as_array().into_iter().flatten())
        .find(|s| s[1].as_str().is_some_and(|n| n.contains("Jenny Lee")))
        .expect("Jenny Lee fails the MFA check");
    assert!(failing[0]
        .as_str()
        .is_some_and(|id| id.starts_with("m365:")));
    assert!(failing[2].as_str().is_some_and(|d| !d.is_empty()));
    // Every evidence set names a folder of the run whose files the custody
    // log lists: as many as the set counts, with the same list digest.
    let custody = auditpack::evidence::read_custody(&run.join("custody.jsonl")).expect("custody");
    let mut sets = 0;
    for set in section
        .values()
        .flat_map(|c| c["evidence"].as_array().into_iter().flatten())
    {
        let folder = set["folder"].as_str().expect("folder");
        assert!(run.join(folder).is_dir(), "{folder} exists");
        let mut files: Vec<&str> = custody
            .iter()
            .filter(|e| e.source == set["source"] && e.dataset == set["dataset"])
            .map(|e| e.path.as_str())
            .collect();
        files.sort_unstable();
        assert_eq!(set["files"].as_u64(), Some(files.len() as u64), "{set}");
        assert_eq!(
            set["list_sha256"].as_str(),
            Some(auditpack::evaluate::EvidenceSet::list_digest(files).as_str()),
            "{set}"
        );
        sets += 1;
    }
    assert!(sets > 0, "the demo's checks read evidence");
}

#[test]
fn a_bad_config_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auditpack.toml");
    std::fs::write(
        &path,
        "[organisation]\nname = \"X\"\nframeworks = [\"hipaa\"]\nbogus = 1\n",
    )
    .expect("write");
    let out = auditpack()
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auditpack.toml:4:") && stderr.contains("bogus"),
        "{stderr}"
    );
    let missing = auditpack()
        .arg("run")
        .arg("--config")
        .arg(Path::new("/nope.toml"))
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(2));
}

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("auditpack.toml");
    std::fs::write(
        &path,
        format!(
            "[organisation]\nname = \"X\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n{body}"
        ),
    )
    .expect("write");
    path
}

#[test]
fn unreadable_secrets_stop_a_run_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        r#"
[sources.m365]
type = "m365"
tenant_id = "00000000-0000-0000-0000-000000000000"
client_id = "00000000-0000-0000-0000-000000000000"
client_secret_env = "AUDITPACK_TEST_18_UNSET"
authority_url = "http://127.0.0.1:9"
graph_url = "http://127.0.0.1:9"

[sources.ninja]
type = "ninjaone"
base_url = "http://127.0.0.1:9"
client_id = "c"
client_secret_file = "missing.secret"

[signing]
key_env = "AUDITPACK_TEST_18_KEY"
identity = "a@b.example"
"#,
    );
    let out = auditpack()
        .args(["run", "--as-of", "2026-01-01", "--config"])
        .arg(&path)
        .env("AUDITPACK_TEST_18_KEY", "")
        .env_remove("AUDITPACK_TEST_18_UNSET")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "3 secret(s) cannot be read, so nothing was collected",
        "[sources.m365] `client_secret_env`: environment variable AUDITPACK_TEST_18_UNSET is not set",
        "[sources.ninja] `client_secret_file`: cannot read secret file",
        "missing.secret",
        "[signing] `key_env`: environment variable AUDITPACK_TEST_18_KEY is empty",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }
    assert!(
        !dir.path().join("store").exists(),
        "no run folder was started"
    );

    let out = auditpack()
        .args(["run", "--as-of", "next tuesday", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a date (2026-01-01) nor an RFC 3339 time"),
        "{stderr}"
    );
}

#[test]
fn keygen_refuses_identities_that_break_allowed_signers() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, identity) in ["", "two words", "a,b@x", "tab\there", "x*"]
        .iter()
        .enumerate()
    {
        let key = dir.path().join(format!("key{i}"));
        let out = auditpack()
            .args(["keygen", "--identity", identity, "--out"])
            .arg(&key)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{identity:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("signer identity"), "{stderr}");
        assert!(!key.exists(), "no key written for {identity:?}");
    }
    let key = dir.path().join("good");
    let out = auditpack()
        .args(["keygen", "--identity", "compliance@msp.example", "--out"])
        .arg(&key)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn verify_says_once_that_a_plain_folder_is_not_a_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..20 {
        std::fs::write(dir.path().join(format!("f{i}.txt")), "x").expect("write");
    }
    let signers = dir.path().join("allowed_signers");
    std::fs::write(&signers, "").expect("write");
    let out = auditpack()
        .arg("verify")
        .arg(dir.path())
        .arg("--allowed-signers")
        .arg(&signers)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "verify: INVALID, 1 problem(s):\n  - not a BagIt package (no bagit.txt)\n"
    );
}
