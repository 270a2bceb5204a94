//! The reading commands through the binary: `controls`, `controls show`,
//! `gaps`, `diff` and `documents` (with `documents template`), with their
//! exit codes.

use std::path::Path;
use std::process::{Command, Output};

use auditpack::catalog::ControlKind;
use auditpack::checks::{Subject, Verdict};
use auditpack::config::Owner;
use auditpack::evaluate::{CheckResult, ControlResult, Status};

fn auditpack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(args)
        .output()
        .expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn controls_lists_a_framework_filtered_by_owner() {
    let o = auditpack(&["controls", "--framework", "pci-dss", "--owner", "msp"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    let rows: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("pci-dss"))
        .collect();
    assert!(rows.len() > 20, "{text}");
    assert!(rows.iter().all(|l| l.contains(" msp ")), "{text}");
    assert!(rows.iter().any(|l| l.contains("6.3.3")), "{text}");
    assert!(text
        .lines()
        .next()
        .is_some_and(|h| h.contains("kind") && h.contains("owner") && h.contains("title")));

    let all = stdout(&auditpack(&["controls"]));
    assert!(
        all.contains(&format!("{} control(s)", 60 + 60 + 280 + 61)),
        "{}",
        all.lines().last().unwrap_or("")
    );
}

#[test]
fn controls_follow_the_chosen_template_and_config_overrides() {
    let default = stdout(&auditpack(&[
        "controls",
        "--framework",
        "soc2",
        "--owner",
        "msp",
    ]));
    let managed = stdout(&auditpack(&[
        "controls",
        "--framework",
        "soc2",
        "--owner",
        "msp",
        "--ownership",
        "msp-fully-managed",
    ]));
    let count = |t: &str| t.lines().filter(|l| l.starts_with("soc2")).count();
    assert!(count(&managed) > count(&default), "{managed}");

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("auditpack.toml");
    std::fs::write(
        &config,
        "[organisation]\nname = \"Clinic\"\nframeworks = [\"pci-dss\"]\n\n[ownership.overrides]\n\"pci-dss:8.2.6\" = \"msp\"\n\n[thresholds]\ninactive_account_days = 45\n",
    )
    .expect("write");
    let c = config.to_string_lossy();
    let list = stdout(&auditpack(&["controls", "--config", &c, "--owner", "msp"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("pci-dss") && l.contains("8.2.6")),
        "{list}"
    );
    assert!(
        !list.lines().any(|l| l.starts_with("soc2")),
        "only the config's frameworks"
    );
    let show = stdout(&auditpack(&[
        "controls",
        "show",
        "pci-dss:8.2.6",
        "--config",
        &c,
    ]));
    assert!(show.contains("owner:     msp"), "{show}");
    assert!(show.contains("inactive_account_days = 45"), "{show}");
}

#[test]
fn controls_show_explains_requirement_checks_thresholds_and_owner() {
    let o = auditpack(&["controls", "show", "8.2.6", "--framework", "pci-dss"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for needle in [
        "pci-dss:8.2.6",
        "owner:     internal",
        "kind:      hybrid",
        "requires:",
        "inactive_accounts",
        "tests: Every enabled account",
        "thresholds: inactive_account_days = 90",
        "fix: Disable or delete",
        "Inactive-account reports for in-scope systems outside Entra ID",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let proposed = stdout(&auditpack(&[
        "controls",
        "show",
        "hipaa-2025-proposed:164.308(a)(1)(ii)(B)",
    ]));
    assert!(proposed.contains("critical_patch_days = 15"), "{proposed}");
    assert!(proposed.contains("(proposed)"), "{proposed}");
    let manual = stdout(&auditpack(&[
        "controls",
        "show",
        "CC1.1",
        "--framework",
        "soc2",
    ]));
    assert!(manual.contains("manual evidence"), "{manual}");
    assert!(manual.contains("\"soc2:CC1.1\""), "{manual}");
}

#[test]
fn controls_show_of_an_unknown_id_exits_2() {
    let o = auditpack(&["controls", "show", "99.99"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no control `99.99`"));
    let o = auditpack(&["controls", "--owner", "nobody"]);
    assert_eq!(o.status.code(), Some(2));
}

fn subject(id: &str, name: &str) -> Subject {
    Subject {
        id: id.into(),
        name: name.into(),
        detail: format!("{name} fails"),
    }
}

fn check(id: &str, responsible: Owner, failing: Vec<Subject>) -> CheckResult {
    CheckResult {
        check: id.into(),
        title: format!("Title of {id}"),
        outcome: if failing.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        responsible,
        evaluated: 10,
        failing_count: failing.len(),
        failing: failing.into(),
        unproven_count: 0,
        unproven: Default::default(),
        evidence: Default::default(),
        result: id.into(),
        summary: "summary".into(),
        remediation: format!("Fix {id}."),
        figures: vec![],
    }
}

fn control(framework: &str, id: &str, owner: Owner, checks: Vec<CheckResult>) -> ControlResult {
    let status = if checks.iter().any(|c| c.outcome == Verdict::Fail) {
        Status::Fail
    } else {
        Status::Pass
    };
    ControlResult {
        framework: framework.into(),
        control_id: id.into(),
        title: format!("Control {id}"),
        status,
        owner,
        kind: ControlKind::Automated,
        checks,
        manual_evidence: vec![],
        reason: String::new(),
        accepted: None,
    }
}

fn write_run(dir: &Path, results: &[ControlResult]) {
    auditpack::report::json::write(dir, results).expect("write controls.json");
}

fn before() -> Vec<ControlResult> {
    vec![
        control(
            "pci-dss",
            "8.2.6",
            Owner::Internal,
            vec![check(
                "inactive_accounts",
                Owner::Internal,
                vec![subject("m365:1", "Ann"), subject("m365:2", "Bob")],
            )],
        ),
        control(
            "soc2",
            "CC6.2",
            Owner::Shared,
            vec![check(
                "inactive_accounts",
                Owner::Internal,
                vec![subject("m365:1", "Ann"), subject("m365:2", "Bob")],
            )],
        ),
        control(
            "pci-dss",
            "6.3.3",
            Owner::Msp,
            vec![check(
                "patch_latency_critical",
                Owner::Msp,
                vec![subject("ninja:7", "CD-SRV-PMS")],
            )],
        ),
        control(
            "pci-dss",
            "8.4.2",
            Owner::Internal,
            vec![check("mfa_enforced", Owner::Internal, vec![])],
        ),
    ]
}

fn after() -> Vec<ControlResult> {
    vec![
        control(
            "pci-dss",
            "8.2.6",
            Owner::Internal,
            vec![check(
                "inactive_accounts",
                Owner::Internal,
                vec![subject("m365:2", "Bob")],
            )],
        ),
        control(
            "soc2",
            "CC6.2",
            Owner::Shared,
            vec![check(
                "inactive_accounts",
                Owner::Internal,
                vec![subject("m365:2", "Bob")],
            )],
        ),
        control(
            "pci-dss",
            "6.3.3",
            Owner::Msp,
            vec![check("patch_latency_critical", Owner::Msp, vec![])],
        ),
        control(
            "pci-dss",
            "8.4.2",
            Owner::Internal,
            vec![check(
                "mfa_enforced",
                Owner::Internal,
                vec![subject("m365:9", "Breakglass")],
            )],
        ),
    ]
}

#[test]
fn gaps_groups_failing_items_by_responsible_party_with_subjects() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(dir.path(), &before());
    let run = dir.path().to_string_lossy().into_owned();
    let o = auditpack(&["gaps", &run]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("[internal] 1 item(s) to fix"), "{text}");
    assert!(text.contains("[msp] 1 item(s) to fix"), "{text}");
    assert!(
        text.contains("controls: pci-dss:8.2.6, soc2:CC6.2"),
        "{text}"
    );
    assert!(text.contains("- Ann [m365:1]: Ann fails"), "{text}");
    assert!(text.contains("fix: Fix inactive_accounts."), "{text}");

    let msp = stdout(&auditpack(&["gaps", &run, "--owner", "msp"]));
    assert!(msp.contains("CD-SRV-PMS") && !msp.contains("Ann"), "{msp}");
    // Gaps that break a jointly owned control, with every control they break.
    let shared = stdout(&auditpack(&["gaps", &run, "--owner", "shared"]));
    assert!(
        shared.contains("controls: pci-dss:8.2.6, soc2:CC6.2") && !shared.contains("CD-SRV-PMS"),
        "{shared}"
    );

    let clean = tempfile::tempdir().expect("tempdir");
    write_run(
        clean.path(),
        &[control(
            "pci-dss",
            "8.4.2",
            Owner::Internal,
            vec![check("mfa_enforced", Owner::Internal, vec![])],
        )],
    );
    let o = auditpack(&["gaps", &clean.path().to_string_lossy()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("no failing controls"));
}

#[test]
fn gaps_name_the_owner_a_responsible_party_acts_for() {
    // An override made the inventory control internal's alone, while the
    // check also fails under a shared control the MSP is responsible for.
    let dir = tempfile::tempdir().expect("tempdir");
    let imaging = || vec![subject("ninja:3", "CD-SRV-IMAGING")];
    write_run(
        dir.path(),
        &[
            control(
                "pci-dss",
                "12.5.1",
                Owner::Internal,
                vec![check(
                    "devices_report_patch_state",
                    Owner::Internal,
                    imaging(),
                )],
            ),
            control(
                "hipaa",
                "164.308(a)(1)(ii)(A)",
                Owner::Shared,
                vec![check("devices_report_patch_state", Owner::Msp, imaging())],
            ),
        ],
    );
    let text = stdout(&auditpack(&["gaps", &dir.path().to_string_lossy()]));
    assert!(text.contains("[msp] 1 item(s) to fix"), "{text}");
    assert!(!text.contains("[internal]"), "{text}");
    assert!(
        text.contains("controls: pci-dss:12.5.1 (owned by internal), hipaa:164.308(a)(1)(ii)(A)"),
        "{text}"
    );
}

#[test]
fn gaps_of_a_missing_run_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = auditpack(&["gaps", &dir.path().join("nope").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("controls.json"));
}

#[test]
fn diff_reports_new_failures_fixes_and_subject_changes() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    write_run(a.path(), &before());
    write_run(b.path(), &after());
    let (ra, rb) = (a.path().to_string_lossy(), b.path().to_string_lossy());
    let o = auditpack(&["diff", &ra, &rb]);
    assert_eq!(o.status.code(), Some(1), "a new failure is a regression");
    let text = stdout(&o);
    for needle in [
        "new failures: 1",
        "pci-dss:8.4.2 pass -> fail",
        "fixed: 1",
        "pci-dss:6.3.3 fail -> pass",
        "Title of inactive_accounts (inactive_accounts): 2 -> 1 failing",
        "- Ann [m365:1]",
        "+ Breakglass [m365:9]",
        "Title of patch_latency_critical (patch_latency_critical): 1 -> 0 failing",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let same = auditpack(&["diff", &ra, &ra]);
    assert_eq!(same.status.code(), Some(0));
    assert!(stdout(&same).contains("new failures: 0"));
    let better = auditpack(&["diff", &rb, &ra]);
    assert_eq!(
        better.status.code(),
        Some(1),
        "Ann and the CD-SRV-PMS patch fail again"
    );
}

#[test]
fn gaps_and_diff_read_a_demo_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let demo = auditpack(&["demo", "--out", &out.to_string_lossy()]);
    assert!(demo.status.success(), "{}", stdout(&demo));
    let runs: Vec<_> = std::fs::read_dir(out.join("runs"))
        .expect("runs")
        .flatten()
        .map(|e| e.path())
        .collect();
    let run = runs[0].to_string_lossy().into_owned();
    let internal = auditpack(&["gaps", &run, "--owner", "internal"]);
    assert_eq!(internal.status.code(), Some(1));
    assert!(
        stdout(&internal).contains("Jenny Lee"),
        "{}",
        stdout(&internal)
    );
    // The package folder (its .zip lies beside it).
    let packages: Vec<_> = std::fs::read_dir(out.join("packages"))
        .expect("packages")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(packages.len(), 1);
    let msp = auditpack(&["gaps", &packages[0].to_string_lossy(), "--owner", "msp"]);
    assert!(stdout(&msp).contains("CD-SRV-PMS"), "{}", stdout(&msp));
    let same = auditpack(&["diff", &run, &packages[0].to_string_lossy()]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    // The zip beside it is read in place.
    let zip = auditpack::package::zip_path(&packages[0]);
    let zipped = auditpack(&["diff", &run, &zip.to_string_lossy()]);
    assert_eq!(zipped.status.code(), Some(0), "{}", stdout(&zipped));
    assert!(stdout(&zipped).contains("new failures: 0"));
    let gaps = auditpack(&["gaps", &zip.to_string_lossy(), "--owner", "msp"]);
    assert!(stdout(&gaps).contains("CD-SRV-PMS"), "{}", stdout(&gaps));
    // Each failing device once, under the MSP, which installs RMM agents;
    // the inventory controls it fails are shared (internal IT keeps the
    // inventory, the MSP the device checks), so none is owned by another
    // single party (that case: `gaps_name_the_owner_a_responsible_party_acts_for`).
    let all = stdout(&auditpack(&["gaps", &run]));
    let internal_part = all.split("[msp]").next().unwrap_or_default();
    assert!(
        !internal_part.contains("devices_report_patch_state"),
        "{all}"
    );
    let patch_state = all
        .split("\n\n")
        .find(|block| block.contains("(devices_report_patch_state)"))
        .expect("the patch-state gap");
    assert!(
        patch_state.contains("hipaa:164.310(d)(2)(iii)")
            && patch_state.contains("pci-dss:12.5.1")
            && !patch_state.contains("(owned by"),
        "{patch_state}"
    );
    // The same fix text where a check is listed and where it is described.
    let check = auditpack::checks::check("devices_report_patch_state").expect("check");
    let fix = format!("fix: {}", check.remediation);
    let show = stdout(&auditpack(&["controls", "show", "pci-dss:12.5.1"]));
    assert!(all.contains(&fix) && show.contains(&fix), "{fix}\n{show}");
}

fn manifest(organisation: &str) -> auditpack::evidence::RunManifest {
    auditpack::evidence::RunManifest {
        schema_version: auditpack::evidence::RunManifest::SCHEMA_VERSION,
        run_id: "20260101T000000Z-abcd".into(),
        organisation: organisation.into(),
        frameworks: vec!["pci-dss".into(), "soc2".into()],
        ownership: "co-managed-default".into(),
        tool: "auditpack test".into(),
        host: "host".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: "2026-01-01T00:01:00Z".into(),
        as_of: "2026-01-01T00:01:00Z".into(),
        thresholds: Default::default(),
        ownership_overrides: Default::default(),
        service_provider: false,
        sources: Default::default(),
        critical_devices: Vec::new(),
        signer: None,
    }
}

#[test]
fn diff_calls_a_failure_that_can_no_longer_be_judged_lost_evidence_not_a_fix() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    write_run(a.path(), &before());
    // Every source failed: the same controls are inconclusive, nothing fails.
    let blind: Vec<ControlResult> = before()
        .into_iter()
        .map(|mut r| {
            r.status = Status::Inconclusive;
            for c in &mut r.checks {
                c.outcome = Verdict::Inconclusive;
                c.failing = Default::default();
                c.failing_count = 0;
            }
            r
        })
        .collect();
    write_run(b.path(), &blind);
    let (ra, rb) = (a.path().to_string_lossy(), b.path().to_string_lossy());
    let o = auditpack(&["diff", &ra, &rb]);
    let text = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "lost evidence is a regression:\n{text}"
    );
    assert!(text.contains("fixed: 0"), "{text}");
    assert!(
        text.contains("evidence lost (judged before, not now; not fixes): 4"),
        "{text}"
    );
    assert!(
        text.contains("fail -> inconclusive: 3 control(s)"),
        "{text}"
    );
    assert!(
        text.contains("Title of inactive_accounts (inactive_accounts): 2 failing -> not judged"),
        "{text}"
    );
    assert!(text.contains("? Ann [m365:1]"), "{text}");
}

#[test]
fn diff_groups_many_status_changes_and_refuses_two_organisations() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let pending: Vec<ControlResult> = (0..300)
        .map(|i| {
            let mut r = control("pci-dss", &format!("12.{i}"), Owner::Internal, vec![]);
            r.status = Status::ManualPending;
            r
        })
        .collect();
    write_run(a.path(), &pending);
    write_run(b.path(), &[]);
    let (ra, rb) = (a.path().to_string_lossy(), b.path().to_string_lossy());
    let text = stdout(&auditpack(&["diff", &ra, &rb]));
    assert!(
        text.contains(
            "other status changes: 300\n  manual_pending -> absent: 300 control(s) (pci-dss 300)\n"
        ),
        "{text}"
    );
    assert!(text.contains("and 292 more"), "{text}");
    assert!(text.lines().count() < 12, "{text}");

    auditpack::evidence::write_manifest(a.path(), &manifest("Contoso Dental")).expect("run.json");
    auditpack::evidence::write_manifest(b.path(), &manifest("Fabrikam Clinic")).expect("run.json");
    let o = auditpack(&["diff", &ra, &rb]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("different organisations") && err.contains("Fabrikam Clinic"),
        "{err}"
    );
}

#[test]
fn controls_show_honours_the_framework_it_is_given() {
    let o = auditpack(&["controls", "show", "soc2:CC6.1", "--framework", "hipaa"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`soc2:CC6.1` names framework `soc2` but --framework is `hipaa`"),
        "{err}"
    );
    let o = auditpack(&["controls", "show", "soc2:CC6.1", "--framework", "soc2"]);
    assert_eq!(o.status.code(), Some(0));
    let o = auditpack(&["controls", "show", "iso:5.1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("framework `iso` is not in the catalog"),
        "{err}"
    );
}

#[test]
fn controls_show_snapshot() {
    insta::assert_snapshot!(stdout(&auditpack(&["controls", "show", "pci-dss:7.2.4"])));
}

#[test]
fn gaps_and_diff_snapshots() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    write_run(a.path(), &before());
    write_run(b.path(), &after());
    let (ra, rb) = (a.path().to_string_lossy(), b.path().to_string_lossy());
    insta::assert_snapshot!("gaps", stdout(&auditpack(&["gaps", &ra])));
    insta::assert_snapshot!("diff", stdout(&auditpack(&["diff", &ra, &rb])));
}

/// A config with only a `manual` source, and its folder with a current
/// document, an expired one and one without a sidecar.
fn documents_fixture(dir: &Path) -> std::path::PathBuf {
    let manual = dir.join("manual");
    std::fs::create_dir_all(&manual).expect("mkdir");
    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| today + chrono::Duration::days(d);
    std::fs::write(manual.join("officer.md"), "Sam Patel is security official.").expect("w");
    std::fs::write(
        manual.join("officer.md.evidence.toml"),
        format!(
            "title = \"Security official\"\ncontrols = [\"hipaa:164.308(a)(2)\"]\nowner = \"internal\"\nevidence_date = {}\nexpires = {}\n",
            day(-30),
            day(300)
        ),
    )
    .expect("w");
    std::fs::write(manual.join("restore.md"), "Restore test.").expect("w");
    std::fs::write(
        manual.join("restore.md.evidence.toml"),
        format!(
            "title = \"Restore test\"\ncontrols = [\"hipaa:164.308(a)(7)(ii)(D)\"]\nevidence_date = {}\nexpires = {}\n",
            day(-400),
            day(-10)
        ),
    )
    .expect("w");
    std::fs::write(manual.join("stray.pdf"), "%PDF-1.4").expect("w");
    std::fs::write(manual.join("risk-analysis.pdf"), "%PDF-1.4 risk").expect("w");
    let config = dir.join("auditpack.toml");
    std::fs::write(
        &config,
        "[organisation]\nname = \"Test Clinic\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n[sources.documents]\ntype = \"manual\"\npath = \"manual\"\n",
    )
    .expect("w");
    config
}

#[test]
fn documents_lists_what_each_control_needs_with_owner_and_sidecar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = documents_fixture(dir.path());
    let config = config.to_str().expect("utf-8");
    let o = auditpack(&["documents", "--config", config]);
    assert_eq!(o.status.code(), Some(1), "documents are still needed");
    let text = stdout(&o);
    let (needed, rest) = text.split_once("\nattested").expect("both sections");
    // The current document attests its control; it is not asked for again.
    assert!(
        rest.contains("[internal] hipaa:164.308(a)(2)  Assigned security responsibility"),
        "{rest}"
    );
    assert!(rest.contains("officer.md (until "), "{rest}");
    assert!(!needed.contains("hipaa:164.308(a)(2) "), "{needed}");
    // The expired one no longer counts, and says so under its control.
    let restore = needed
        .split("\n  [")
        .find(|block| block.contains("hipaa:164.308(a)(7)(ii)(D)"))
        .expect("the restore test's control is needed");
    assert!(restore.starts_with("shared]"), "{restore}");
    assert!(restore.contains("no longer counts:"), "{restore}");
    assert!(restore.contains("(expired "), "{restore}");
    // Each needed control names the owner, the documents and the sidecar command.
    let risk = needed
        .split("\n  [")
        .find(|block| block.contains("hipaa:164.308(a)(1)(ii)(A)"))
        .expect("risk analysis needed");
    assert!(risk.contains("needs: Written risk analysis"), "{risk}");
    assert!(
        risk.contains("documents template ")
            && risk.contains("--control 'hipaa:164.308(a)(1)(ii)(A)'"),
        "{risk}"
    );
    // A hybrid control asks for the part its checks cannot see (MFA on the
    // clinical systems outside the tenant); automated controls never appear
    // (`documents_skip_and_refuse_automated_controls`). A file without a
    // sidecar is a problem.
    let mfa = needed
        .split("\n  [")
        .find(|block| block.contains("hipaa:164.312(d) "))
        .expect("164.312(d) is hybrid and needs its document");
    assert!(
        mfa.contains("needs: Authentication settings of the clinical"),
        "{mfa}"
    );
    assert!(text.contains("stray.pdf: no `stray.pdf.evidence.toml` beside it"));

    // Filters: one owner.
    let msp = stdout(&auditpack(&[
        "documents",
        "--config",
        config,
        "--owner",
        "msp",
    ]));
    assert!(
        msp.lines()
            .filter(|l| l.starts_with("  ["))
            .all(|l| l.starts_with("  [msp]")),
        "{msp}"
    );
}

#[test]
fn documents_template_writes_a_sidecar_that_counts_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = documents_fixture(dir.path());
    let config = config.to_str().expect("utf-8");
    let doc = dir.path().join("manual/risk-analysis.pdf");
    let doc = doc.to_str().expect("utf-8");
    let o = auditpack(&[
        "documents",
        "template",
        doc,
        "--control",
        "hipaa:164.308(a)(1)(ii)(A)",
        "--config",
        config,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sidecar = dir.path().join("manual/risk-analysis.pdf.evidence.toml");
    let written = std::fs::read_to_string(&sidecar).expect("written");
    assert!(written.contains("title = \"risk analysis\""), "{written}");
    assert!(
        written.contains("controls = [\"hipaa:164.308(a)(1)(ii)(A)\"]"),
        "{written}"
    );
    assert!(
        written.contains("owner = \"shared\""),
        "the control's owner: {written}"
    );
    assert!(written.contains("expires = "), "{written}");
    // The next listing counts it.
    let text = stdout(&auditpack(&["documents", "--config", config]));
    let (_, attested) = text.split_once("\nattested").expect("attested section");
    assert!(
        attested.contains("hipaa:164.308(a)(1)(ii)(A)"),
        "{attested}"
    );

    // Never over an existing sidecar.
    std::fs::write(&sidecar, "edited by hand").expect("w");
    let again = auditpack(&[
        "documents",
        "template",
        doc,
        "--control",
        "hipaa:164.308(a)(2)",
        "--config",
        config,
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    assert_eq!(
        std::fs::read_to_string(&sidecar).expect("kept"),
        "edited by hand"
    );

    // Refused: a missing document, an unknown control, a control without its
    // framework (automated ones: `documents_skip_and_refuse_automated_controls`).
    let stray = dir.path().join("manual/stray.pdf");
    let stray = stray.to_str().expect("utf-8");
    for (file, control, why) in [
        (
            "/nonexistent/plan.pdf",
            "hipaa:164.308(a)(2)",
            "is not a file",
        ),
        (stray, "hipaa:9.9.9", "no control"),
        (stray, "164.308(a)(2)", "needs its framework"),
    ] {
        let o = auditpack(&[
            "documents",
            "template",
            file,
            "--control",
            control,
            "--config",
            config,
        ]);
        assert_eq!(o.status.code(), Some(2), "{control}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(why), "{control}: {err}");
    }
    assert!(!dir.path().join("manual/stray.pdf.evidence.toml").exists());
}

/// A catalog with an automated control beside a manual one: the shipped
/// catalogs have none left (every check sees only what its sources see).
fn catalog_with_an_automated_control() -> auditpack::catalog::Catalog {
    let checks: Vec<String> = auditpack::checks::CHECKS
        .iter()
        .map(|c| format!("\"{}\"", c.id))
        .collect();
    let framework = format!(
        "[framework]\nid = \"test\"\nname = \"Test\"\nversion = \"1\"\nstatus = \"final\"\ndescription = \"A test catalog.\"\n\n\
         [[control]]\nid = \"AUTO\"\ntitle = \"Judged by checks\"\nsummary = \"s\"\nkind = \"automated\"\nchecks = [{}]\n\n\
         [[control]]\nid = \"DOC\"\ntitle = \"Judged by documents\"\nsummary = \"s\"\nkind = \"manual\"\nmanual_evidence = [\"A policy\"]\n",
        checks.join(", ")
    );
    let template = "[template]\nid = \"co-managed-default\"\nname = \"Test\"\ndescription = \"A test split.\"\n\n\
         [controls]\n\"test:AUTO\" = \"msp\"\n\"test:DOC\" = \"internal\"\n";
    auditpack::catalog::Catalog::from_sources(
        &[("frameworks/test.toml".into(), framework.as_str())],
        &[("ownership/test.toml".into(), template)],
    )
    .expect("valid test catalog")
}

#[test]
fn documents_skip_and_refuse_automated_controls() {
    use auditpack::commands::controls::View;
    use auditpack::commands::documents::{documents, write_template, TemplateRequest};
    let catalog = catalog_with_an_automated_control();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("manual")).expect("mkdir");
    let doc = dir.path().join("manual/policy.md");
    std::fs::write(&doc, "Policy.").expect("w");
    let config = auditpack::config::Config::from_str_at(
        "[organisation]\nname = \"Test Clinic\"\nframeworks = [\"test\"]\n\n[sources.documents]\ntype = \"manual\"\npath = \"manual\"\n",
        &dir.path().join("auditpack.toml"),
    )
    .expect("config");
    let view = View::new(&catalog, Some(&config), None).expect("view");
    let now = chrono::Utc::now();
    let found = documents(&catalog, &view, &config, None, None, now).expect("documents");
    let needed: Vec<&str> = found.needed.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(needed, ["test:DOC"], "automated controls never appear");
    let controls = ["test:AUTO".to_owned()];
    let request = TemplateRequest {
        document: &doc,
        controls: &controls,
        title: None,
        owner: None,
    };
    let err = write_template(&view, &request, now).expect_err("refused");
    assert!(err.to_string().contains("automated checks only"), "{err}");
    assert!(!dir.path().join("manual/policy.md.evidence.toml").exists());
}
