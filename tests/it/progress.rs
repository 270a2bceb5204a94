//! Progress and logs of `auditpack run` when stderr is not a terminal: one
//! structured line per event (JSON on request), with the organisation,
//! source and dataset of each, and never a secret.

use std::process::{Command, Output};

use auditpack::simulate::{Fault, FaultKind, SimCredentials, SimOptions, Tenant};
use serde_json::Value;

use crate::common::Harness;

const GRAPH_CANARY: &str = "canary-graph-secret-5d1f0c2b";
const NINJA_CANARY: &str = "canary-ninja-secret-77a90e41";

fn auditpack() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auditpack"));
    for var in ["RUST_LOG", "AUDITPACK_LOG", "AUDITPACK_LOG_FORMAT"] {
        cmd.env_remove(var);
    }
    cmd
}

/// A simulator whose apps' secrets are canaries, its config (secrets in
/// files), and a 429 on the first page of users.
fn throttled_harness() -> (Harness, std::path::PathBuf) {
    let h = Harness::new(
        Tenant::demo(chrono::Utc::now()).expect("demo tenant"),
        SimOptions {
            max_page_size: 5,
            credentials: SimCredentials {
                graph_secret: GRAPH_CANARY.into(),
                ninja_secret: NINJA_CANARY.into(),
                ..SimCredentials::demo()
            },
            ..SimOptions::default()
        },
    );
    h.config(Some(GRAPH_CANARY));
    std::fs::write(h.path().join("ninja.secret"), NINJA_CANARY).expect("write");
    h.sim.add_fault(Fault {
        path: "/v1.0/users".into(),
        from_request: 1,
        times: 1,
        kind: FaultKind::TooManyRequests(Some(0)),
    });
    let config = h.path().join("auditpack.toml");
    (h, config)
}

fn run(config: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = auditpack();
    cmd.arg("run").arg("--config").arg(config).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn assert_no_secret(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        for canary in [GRAPH_CANARY, NINJA_CANARY, "Bearer "] {
            assert!(!text.contains(canary), "{canary} leaked:\n{text}");
        }
    }
}

#[test]
fn json_lines_name_organisation_source_and_dataset_of_pages_and_retries() {
    let (_h, config) = throttled_harness();
    let out = run(&config, &["--log-format", "json"], &[]);
    assert_no_secret(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("controls by status"),
        "the final result stays on stdout"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    let of = |event: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["event"] == event && l["organisation"] == "Test Clinic")
            .collect()
    };

    let pages: Vec<&Value> = of("page_stored")
        .into_iter()
        .filter(|l| l["source"] == "m365" && l["dataset"] == "users")
        .collect();
    assert!(pages.len() > 1, "users are paged by 5: {pages:?}");
    assert_eq!(pages[0]["page"], 1);
    assert!(pages.iter().all(|l| l["records"].as_u64().is_some()
        && l["level"] == "INFO"
        && l["timestamp"].as_str().is_some()));
    let users = pages
        .iter()
        .filter_map(|l| l["records"].as_u64())
        .sum::<u64>();

    let retries = of("retry");
    let retry = retries
        .iter()
        .find(|l| l["dataset"] == "users")
        .unwrap_or_else(|| panic!("a retry of users: {retries:?}"));
    assert_eq!(retry["source"], "m365");
    assert_eq!(retry["http_status"], 429);
    assert_eq!(retry["throttled"], true);
    assert_eq!(retry["retry_after_ms"], 0);
    assert_eq!(retry["attempt"], 1);
    let endpoint = retry["endpoint"].as_str().unwrap_or_default();
    assert!(
        endpoint.ends_with("/v1.0/users") && !endpoint.contains('?'),
        "{endpoint}"
    );

    let finished = of("dataset_finished");
    let users_done = finished
        .iter()
        .find(|l| l["source"] == "m365" && l["dataset"] == "users")
        .unwrap_or_else(|| panic!("users finished: {finished:?}"));
    assert_eq!(users_done["status"], "complete");
    assert_eq!(users_done["records"].as_u64(), Some(users));
    assert_eq!(users_done["pages"].as_u64(), Some(pages.len() as u64));

    let sources: Vec<&str> = of("source_finished")
        .iter()
        .filter_map(|l| l["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"m365") && sources.contains(&"ninja"),
        "{sources:?}"
    );
    let stages: Vec<&str> = of("stage")
        .iter()
        .filter_map(|l| l["stage"].as_str())
        .collect();
    assert_eq!(stages, ["collect", "evaluate", "report", "package"]);
    assert_eq!(of("run_finished").len(), 1);
}

#[test]
fn plain_lines_by_default_when_stderr_is_not_a_terminal_and_filters_apply() {
    let (_h, config) = throttled_harness();
    let out = run(&config, &[], &[]);
    assert_no_secret(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "no progress drawing off a terminal"
    );
    assert!(
        stderr.lines().all(|l| !l.starts_with('{')),
        "plain, not JSON"
    );
    let page = stderr
        .lines()
        .find(|l| l.contains("event=\"page_stored\"") && l.contains("dataset=\"users\""))
        .unwrap_or_else(|| panic!("a page line:\n{stderr}"));
    assert!(
        page.contains("INFO") && page.contains("organisation=\"Test Clinic\""),
        "{page}"
    );
    assert!(stderr.contains("event=\"retry\""), "{stderr}");

    // A filter keeps only warnings (the run is clean apart from the retry).
    let quiet = run(
        &config,
        &[],
        &[("AUDITPACK_LOG_FORMAT", "json"), ("AUDITPACK_LOG", "warn")],
    );
    assert_no_secret(&quiet);
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    for line in stderr.lines() {
        let v: Value = serde_json::from_str(line).expect("JSON line");
        assert_eq!(v["level"], "WARN", "{line}");
        assert_eq!(v["organisation"], "Test Clinic", "{line}");
    }
}

#[test]
fn bad_log_settings_are_named_and_stop_before_any_work() {
    for (var, value, needle) in [
        ("AUDITPACK_LOG_FORMAT", "yaml", "AUDITPACK_LOG_FORMAT"),
        ("AUDITPACK_LOG", "auditpack=loud", "AUDITPACK_LOG"),
    ] {
        let out = auditpack()
            .env(var, value)
            .args(["controls", "--framework", "hipaa"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}
