//! Run history: summaries written by every run, drift between runs (in the
//! signed package, and the same as `auditpack diff`), the SQLite index
//! (rebuilt from the store when missing or corrupt), summaries from a newer
//! version, and exceptions (accepted risk) with their bad-input errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use auditpack::catalog::Catalog;
use auditpack::commands::{diff, read_run};
use auditpack::evaluate::Status;
use auditpack::history::index::{HistoryScope, Index, RunFilter};
use auditpack::history::{read_drift, LocalStore, RunSummary, SummaryStore};
use auditpack::package::{verify_with, PayloadCheck, Reevaluation, VerifyOptions};
use auditpack::pipeline::RunOutcome;

use crate::common::{fast_options, Harness, IDENTITY};

fn auditpack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(args)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run_at(h: &Harness, config: &auditpack::config::Config, days: i64) -> RunOutcome {
    let mut options = fast_options();
    options.as_of = Some(chrono::Utc::now() + chrono::Duration::days(days));
    auditpack::pipeline::run(config, &options, &h.runtime).expect("run completes")
}

fn verify_reevaluated(h: &Harness, package: &Path) {
    let report = verify_with(
        package,
        &VerifyOptions {
            allowed_signers: h.allowed_signers(),
            identity: Some(IDENTITY.into()),
            tsa_certificates: None,
        },
        Some(&Reevaluation as &dyn PayloadCheck),
    )
    .expect("verify runs");
    assert!(report.is_valid(), "{:?}", report.problems);
    assert!(report.reevaluated.is_some());
}

/// A failing control whose failure does not depend on time (MFA), so it
/// still fails when judged months later.
fn steady_failure(results: &[auditpack::evaluate::ControlResult]) -> String {
    results
        .iter()
        .find(|r| {
            r.status == Status::Fail
                && r.checks
                    .iter()
                    .filter(|c| c.outcome == auditpack::checks::Verdict::Fail)
                    .all(|c| c.check.starts_with("mfa_"))
        })
        .map(|r| format!("{}:{}", r.framework, r.control_id))
        .expect("the demo organisation fails an MFA control")
}

#[test]
fn runs_leave_summaries_drift_exceptions_and_a_history() {
    let h = Harness::demo();
    let config = h.config(None);
    let store = h.path().join("store");

    // First run: a summary, and a drift with nothing to compare with.
    let first = run_at(&h, &config, 0);
    let summaries = LocalStore::new(&store);
    assert_eq!(
        summaries.list().expect("list"),
        vec![first.manifest.run_id.clone()]
    );
    let s1 = summaries.read(&first.manifest.run_id).expect("summary");
    assert_eq!(s1.organisation, "Test Clinic");
    assert_eq!(s1.controls.len(), first.results.len());
    assert!(s1.changes.is_none());
    assert_eq!(
        s1.counts.by_status.values().sum::<usize>(),
        first.results.len()
    );
    let d1 = read_drift(&first.run_dir)
        .expect("read")
        .expect("drift.json");
    assert!(d1.previous.is_none() && d1.is_empty());

    // A newer run of another organisation in the same store is never
    // compared with.
    let mut other = s1.clone();
    other.organisation = "Other Clinic".into();
    other.run_id = "20991231T000000Z-ffff".into();
    other.finished_at = "2099-12-31T00:00:00Z".into();
    summaries.write(&other).expect("write");

    // Exceptions: accept one failing control until well after the next run.
    let accepted = steady_failure(&first.results);
    let expires = (chrono::Utc::now() + chrono::Duration::days(400)).date_naive();
    std::fs::write(
        h.path().join("exceptions.toml"),
        format!(
            "# accepted risks\n[[exception]]\ncontrol = \"{accepted}\"\nreason = \"Kiosk accounts; replaced in Q3\"\napproved_by = \"Dana Whitfield, Practice Manager\"\nexpires = {expires}\n"
        ),
    )
    .expect("write exceptions");

    // Second run, judged 25 days later (within the evidence's 30 days of
    // validity): patch ages cross their limit, so devices newly fail.
    let second = run_at(&h, &config, 25);
    let d2 = read_drift(&second.run_dir)
        .expect("read")
        .expect("drift.json");
    let previous = d2.previous.as_ref().expect("compared with the first run");
    assert_eq!(previous.run_id, first.manifest.run_id);
    assert_eq!(second.drift, d2, "the run returns what it wrote");
    let patches = d2
        .subjects
        .iter()
        .find(|c| c.check == "patch_latency_critical")
        .expect("patch latency changed");
    assert!(
        patches.judged_after && !patches.newly_failing.is_empty(),
        "{d2:#?}"
    );
    assert!(d2.regressed());

    // diff of the two runs says exactly what drift.json says.
    let (a, b) = (
        read_run(&first.run_dir).expect("a"),
        read_run(&second.run_dir).expect("b"),
    );
    assert_eq!(diff::compare(&a, &b).expect("diff"), d2);
    let packaged = read_run(&second.package).expect("package");
    assert_eq!(diff::compare(&a, &packaged).expect("diff"), d2);
    let o = auditpack(&[
        "diff",
        &first.run_dir.to_string_lossy(),
        &second.package.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&format!("new failures: {}", d2.regressions.len())));

    // drift.json and the exceptions are inside the signed package.
    let manifest =
        std::fs::read_to_string(second.package.join("manifest-sha256.txt")).expect("manifest");
    assert!(manifest.contains("data/results/drift.json"));
    assert!(manifest.contains("data/inputs/exceptions.toml"));
    let custody = std::fs::read_to_string(second.run_dir.join("custody.jsonl")).expect("custody");
    assert!(custody.contains("\"inputs/exceptions.toml\""));

    // The accepted failure still fails, with its approver, in controls.json,
    // the summary and the reports.
    let r = second
        .results
        .iter()
        .find(|r| format!("{}:{}", r.framework, r.control_id) == accepted)
        .expect("control");
    assert_eq!(r.status, Status::Fail);
    let acceptance = r.accepted.as_ref().expect("accepted");
    assert_eq!(acceptance.approved_by, "Dana Whitfield, Practice Manager");
    assert_eq!(acceptance.expires, expires);
    let json = std::fs::read_to_string(second.run_dir.join("results/controls.json")).expect("json");
    assert!(json.contains("\"accepted\"") && json.contains("Dana Whitfield"));
    let s2 = summaries.read(&second.manifest.run_id).expect("summary");
    assert_eq!(s2.counts.accepted, 1);
    assert_eq!(
        s2.changes.as_ref().map(|c| c.previous_run_id.as_str()),
        Some(first.manifest.run_id.as_str())
    );
    let html = std::fs::read_to_string(second.run_dir.join("reports/report.html")).expect("html");
    let label = format!("Fail (accepted until {expires})");
    assert!(html.contains(&label), "status label missing");
    assert!(html.contains("Accepted risks") && html.contains("Dana Whitfield"));
    assert!(html.contains(&format!(
        "Changes since {}",
        &first.manifest.finished_at[..10]
    )));
    let pdf = Command::new("pdftotext")
        .args([
            second
                .run_dir
                .join("reports/report.pdf")
                .to_string_lossy()
                .as_ref(),
            "-",
        ])
        .output()
        .expect("pdftotext runs (scripts/setup-test-tools.sh installs poppler-utils)");
    let pdf = String::from_utf8_lossy(&pdf.stdout);
    assert!(
        pdf.contains("Accepted risks") && pdf.contains("Dana Whitfield"),
        "{pdf}"
    );
    assert!(pdf.contains("Changes since"), "{pdf}");

    // Re-evaluating the package reproduces the accepted failure.
    verify_reevaluated(&h, &second.package);

    // No secret reaches the history.
    let secret = std::fs::read_to_string(h.path().join("graph.secret")).expect("secret");
    for file in crate::common::all_files(&store.join("summaries"))
        .into_iter()
        .chain([second.run_dir.join("results/drift.json")])
    {
        let body = std::fs::read_to_string(&file).expect("read");
        assert!(!body.contains(secret.trim()), "{}", file.display());
    }
    std::fs::remove_file(store.join("summaries/20991231T000000Z-ffff.json")).expect("rm");

    // The index: built from the store, equal after a rebuild, rebuilt when
    // garbage or cut short, and queried by the command.
    let scope = HistoryScope::organisation(&store);
    let index = Index::open(&scope).expect("index");
    assert_eq!(index.rebuilt(), Some("missing"));
    let rows = index.runs(&RunFilter::default()).expect("rows");
    assert_eq!(
        rows.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        [
            first.manifest.run_id.as_str(),
            second.manifest.run_id.as_str()
        ]
    );
    assert_eq!(rows[1].by_status, s2.counts.by_status);
    assert_eq!(rows[1].changes, s2.changes);
    drop(index);
    let rebuilt = Index::rebuild(&scope).expect("rebuild");
    assert_eq!(rebuilt.runs(&RunFilter::default()).expect("rows"), rows);
    drop(rebuilt);
    let path = scope.index_path();
    let good = std::fs::read(&path).expect("index file");
    for (what, bytes) in [
        (
            "garbage",
            b"this is not a database at all, just bytes".repeat(200),
        ),
        ("truncated", good[..good.len() / 2].to_vec()),
    ] {
        std::fs::write(&path, &bytes).expect("spoil index");
        let index = Index::open(&scope).expect("rebuilt");
        assert!(index.rebuilt().is_some(), "{what}: used a spoiled index");
        assert_eq!(
            index.runs(&RunFilter::default()).expect("rows"),
            rows,
            "{what}"
        );
    }
    let cfg = h.path().join("auditpack.toml");
    let o = auditpack(&["history", "--config", &cfg.to_string_lossy(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["organisation"], "Test Clinic");
    assert_eq!(lines[1]["run_id"], second.manifest.run_id.as_str());
    assert_eq!(lines[1]["finished"], second.manifest.finished_at.as_str());
    assert!(lines[1]["by_status"]["fail"].as_u64().is_some());
    let since = &second.manifest.finished_at;
    let o = auditpack(&[
        "history",
        "--config",
        &cfg.to_string_lossy(),
        "--since",
        since,
    ]);
    let out = text(&o);
    let headers: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(headers.len(), 1, "{out}");
    assert!(headers[0].ends_with(&second.manifest.run_id), "{out}");
    assert!(out.contains("newly failing"), "{out}");
    let o = auditpack(&["history", "rebuild", "--config", &cfg.to_string_lossy()]);
    assert!(text(&o).contains("2 run(s)"), "{}", text(&o));

    // A fleet store: each organisation's store in a folder of its own.
    let fleet = h.path().join("fleet-store");
    copy_dir(
        &store.join("summaries"),
        &fleet.join("test-clinic/summaries"),
    );
    let fleet_file = h.path().join("fleet.toml");
    std::fs::write(
        &fleet_file,
        "[fleet]\nname = \"MSP\"\nstore = \"fleet-store\"\n",
    )
    .expect("w");
    let o = auditpack(&[
        "history",
        "--config",
        &fleet_file.to_string_lossy(),
        "--org",
        "test clinic",
        "--json",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "{}",
        text(&o)
    );
    let o = auditpack(&[
        "history",
        "--config",
        &fleet_file.to_string_lossy(),
        "--org",
        "Nobody",
        "--json",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        0,
        "{}",
        text(&o)
    );

    // A summary from a newer auditpack: a clear error naming it.
    let newer = store.join("summaries/20991231T000000Z-eeee.json");
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.join(format!("summaries/{}.json", first.manifest.run_id)))
            .expect("read"),
    )
    .expect("json");
    v["schema_version"] = 99.into();
    v["run_id"] = "20991231T000000Z-eeee".into();
    std::fs::write(&newer, serde_json::to_vec(&v).expect("json")).expect("write");
    let err = Index::open(&scope)
        .expect_err("newer summary refused")
        .to_string();
    assert!(
        err.contains("20991231T000000Z-eeee.json") && err.contains("newer auditpack"),
        "{err}"
    );
    let o = auditpack(&["history", "--config", &cfg.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("newer auditpack"), "{}", text(&o));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn a_summary_from_a_newer_version_is_refused_and_a_garbled_one_named() {
    let err = RunSummary::decode(br#"{"schema_version": 7, "new_field": 1}"#, "s/x.json")
        .expect_err("newer");
    assert!(
        err.to_string()
            .contains("s/x.json: written by a newer auditpack (summary schema_version 7"),
        "{err}"
    );
    let err = RunSummary::decode(b"{not json", "s/y.json").expect_err("garbled");
    assert!(
        err.to_string().starts_with("s/y.json: not a run summary"),
        "{err}"
    );
    let err = RunSummary::decode(br#"{"schema_version": 1}"#, "s/z.json").expect_err("partial");
    assert!(
        err.to_string()
            .starts_with("s/z.json: not a valid run summary"),
        "{err}"
    );
}

/// An organisation config without sources, beside `exceptions`.
fn bare_config(dir: &Path, exceptions: &str) -> PathBuf {
    std::fs::write(dir.join("exceptions.toml"), exceptions).expect("write");
    let path = dir.join("auditpack.toml");
    std::fs::write(
        &path,
        "[organisation]\nname = \"Clinic\"\nframeworks = [\"pci-dss\"]\nstore = \"store\"\n",
    )
    .expect("write");
    path
}

#[test]
fn bad_exceptions_stop_a_run_before_collection_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[[exception]]\ncontrol = \"pci-dss:8.4.2\"\nreason = \"r\"\napproved_by = \"a\"\nexpires = 2099-01-01\n\n[[exception]]\ncontrol = \"pci-dss:99.9.9\"\nreason = \"r\"\napproved_by = \"a\"\nexpires = 2099-01-01\n",
            ":8: exception for `pci-dss:99.9.9`: pci-dss has no control `99.9.9`",
        ),
        (
            "[[exception]]\ncontrol = \"pci-dss:8.4.2\"\nreason = \"r\"\napproved_by = \"a\"\nexpires = 2020-01-01\n",
            ":5: exception for `pci-dss:8.4.2` expired on 2020-01-01",
        ),
        (
            "[[exception]]\ncontrol = \"soc2:CC6.1\"\nreason = \"r\"\napproved_by = \"a\"\nexpires = 2099-01-01\n",
            ":2: exception for `soc2:CC6.1`: framework `soc2` is not among the organisation's frameworks",
        ),
        (
            "[[exception]]\ncontrol = \"pci-dss:8.4.2\"\nchek = \"mfa_enforced\"\nreason = \"r\"\napproved_by = \"a\"\nexpires = 2099-01-01\n",
            ":3:",
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (body, want) in cases {
        let path = bare_config(dir.path(), body);
        let config = auditpack::config::Config::load(&path).expect("config");
        let err = auditpack::pipeline::run(&config, &fast_options(), &runtime)
            .expect_err("refused")
            .to_string();
        let file = dir.path().join("exceptions.toml").display().to_string();
        assert!(
            err.starts_with(&file) && err.contains(want),
            "{want}:\n{err}"
        );
        assert!(!dir.path().join("store").exists(), "nothing is collected");
    }
    // Through the binary: exit 2, the file and line on stderr.
    let o = auditpack(&[
        "run",
        "--config",
        &dir.path().join("auditpack.toml").to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exceptions.toml:3"),
        "{}",
        text(&o)
    );
    // A configured exceptions file that does not exist.
    let path = dir.path().join("auditpack.toml");
    std::fs::write(
        &path,
        "[organisation]\nname = \"Clinic\"\nframeworks = [\"pci-dss\"]\nexceptions = \"risk/accepted.toml\"\n",
    )
    .expect("write");
    let config = auditpack::config::Config::load(&path).expect("config");
    let err = auditpack::pipeline::run(&config, &fast_options(), &runtime)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("risk/accepted.toml, which does not exist"),
        "{err}"
    );
    // The catalog used by the check is the built-in one.
    assert!(Catalog::builtin().is_ok());
}

/// Drift's classification on summaries changed by hand: every kind of change.
#[test]
fn drift_classifies_regressions_fixes_lost_evidence_and_sources() {
    use auditpack::evidence::SourceStatus;
    use auditpack::history::summary::{CheckSummary, ControlSummary, SourceSummary, SubjectRef};
    let control = |id: &str, status: Status| ControlSummary {
        framework: "pci-dss".into(),
        control_id: id.into(),
        title: format!("Control {id}"),
        status,
        owner: auditpack::config::Owner::Msp,
        accepted: None,
    };
    let subject = |id: &str| SubjectRef {
        id: id.into(),
        name: format!("name of {id}"),
    };
    let check = |id: &str, judged: bool, failing: &[&str], unproven: &[&str]| CheckSummary {
        check: id.into(),
        title: id.into(),
        outcome: auditpack::checks::Verdict::Fail,
        judged,
        responsible: auditpack::config::Owner::Msp,
        evaluated: 10,
        failing_count: failing.len(),
        unproven_count: unproven.len(),
        failing: failing.iter().map(|s| subject(s)).collect(),
        unproven: unproven.iter().map(|s| subject(s)).collect(),
    };
    let source = |status| SourceSummary {
        source_type: "ninjaone".into(),
        status,
        reason: None,
    };
    let base = RunSummary::build(None, &[]);
    let mut before = base.clone();
    before.organisation = "Clinic".into();
    before.run_id = "20260101T000000Z-0001".into();
    before.controls = vec![
        control("1.1", Status::Pass),
        control("1.2", Status::Fail),
        control("1.3", Status::Pass),
        control("1.4", Status::Fail),
        control("1.5", Status::ManualPending),
        control("1.6", Status::Inconclusive),
    ];
    before.sources = [("ninja".to_owned(), source(SourceStatus::Complete))].into();
    before.checks = vec![
        check("a", true, &["d:1", "d:2", "d:3"], &[]),
        check("b", true, &["u:1"], &[]),
    ];
    let mut after = before.clone();
    after.run_id = "20260102T000000Z-0002".into();
    after.controls = vec![
        control("1.1", Status::Fail),
        control("1.2", Status::Pass),
        control("1.3", Status::Inconclusive),
        control("1.5", Status::ManualAttested),
        control("1.6", Status::Fail),
    ];
    after.sources = [("ninja".to_owned(), source(SourceStatus::Failed))].into();
    after.checks = vec![
        check("a", true, &["d:1", "d:4"], &["d:3"]),
        check("b", false, &[], &[]),
    ];
    let d = auditpack::history::drift(&before, &after);
    let ids = |l: &[auditpack::history::drift::ControlChange]| {
        l.iter().map(|c| c.control.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&d.regressions), ["pci-dss:1.1", "pci-dss:1.6"]);
    assert_eq!(ids(&d.fixes), ["pci-dss:1.2"]);
    assert_eq!(ids(&d.lost_evidence), ["pci-dss:1.3", "pci-dss:1.4"]);
    assert_eq!(ids(&d.other_changes), ["pci-dss:1.5"]);
    assert_eq!(d.sources_lost.len(), 1);
    assert_eq!(d.sources_lost[0].after, Some(SourceStatus::Failed));
    let a = &d.subjects[0];
    let names = |l: &[SubjectRef]| l.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a.newly_failing), ["d:4"]);
    assert_eq!(names(&a.fixed), ["d:2"], "d:3 is unproven now: not fixed");
    assert_eq!(names(&a.unjudged), ["d:3"]);
    let b = &d.subjects[1];
    assert!(!b.judged_after && b.fixed.is_empty());
    assert_eq!(names(&b.unjudged), ["u:1"]);
    assert!(d.regressed());
    let counts = d.counts().expect("counts");
    assert_eq!(
        (counts.regressions, counts.fixes, counts.lost_evidence),
        (2, 1, 2)
    );
    // Reversed, the same summaries make no regression of a fix.
    let back = auditpack::history::drift(&after, &before);
    assert_eq!(ids(&back.fixes), ["pci-dss:1.1"]);
    assert!(back.sources_lost.is_empty());
}
