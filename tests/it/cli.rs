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
    let entries = json.as_array().expect("an array of entries");
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
            for key in ["check", "outcome", "evaluated", "failing", "evidence"] {
                assert!(c.get(key).is_some(), "{key} missing in {c}");
            }
        }
    }
    let failing = entries
        .iter()
        .flat_map(|e| e["checks"].as_array().into_iter().flatten())
        .flat_map(|c| c["failing"].as_array().into_iter().flatten())
        .find(|s| s["name"].as_str().is_some_and(|n| n.contains("Jenny Lee")))
        .expect("Jenny Lee fails the MFA check");
    assert!(failing["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("m365:")));
    let evidence = entries[0]["checks"]
        .as_array()
        .and_then(|c| c.first())
        .map(|c| c["evidence"].clone());
    if let Some(serde_json::Value::Array(files)) = evidence {
        for f in files {
            assert!(
                run.join(f.as_str().unwrap_or_default()).exists(),
                "{f} exists"
            );
        }
    }
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
