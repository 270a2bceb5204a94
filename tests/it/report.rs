//! Reports: the HTML page in headless Chromium, the PDF through poppler, the
//! OSCAL file through compliance-trestle's models and NIST's JSON Schema, and
//! the CSV's formula escaping, all after a full run against the simulator.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use auditpack::evaluate::{ControlResult, Status};
use auditpack::simulate::{Fault, FaultKind, SimOptions, Tenant};
use common::Harness;

const FORMULA: &str = "=cmd|' /C calc'!A0";
const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)> Tom & \"Becker\"";

/// A demo run whose tenant carries a formula in a failing device's name and
/// markup in a failing user's name.
fn hostile_run() -> (Harness, PathBuf, Vec<ControlResult>) {
    let mut tenant = Tenant::demo(chrono::Utc::now()).expect("demo tenant");
    let device = tenant
        .ninja
        .devices
        .iter_mut()
        .find(|d| d["id"] == 13)
        .expect("demo device 13 (unpatched)");
    device["displayName"] = FORMULA.into();
    device["systemName"] = FORMULA.into();
    let user = tenant
        .graph
        .users
        .iter_mut()
        .find(|u| {
            u["userPrincipalName"]
                .as_str()
                .is_some_and(|p| p.starts_with("tom.becker@"))
        })
        .expect("demo user without MFA");
    user["displayName"] = HOSTILE_NAME.into();
    let h = Harness::new(
        tenant,
        SimOptions {
            max_page_size: 5,
            ..SimOptions::default()
        },
    );
    let config = h.config(None);
    let outcome = h.run(&config);
    (h, outcome.run_dir, outcome.results)
}

fn demo_run() -> (Harness, PathBuf, Vec<ControlResult>, PathBuf) {
    let h = Harness::demo();
    let config = h.config(None);
    let outcome = h.run(&config);
    (h, outcome.run_dir, outcome.results, outcome.package)
}

/// The first failing subject's display name.
fn a_failing_subject(results: &[ControlResult]) -> String {
    results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .flat_map(|r| &r.checks)
        .flat_map(|c| c.failing.iter())
        .map(|s| s.name.clone())
        .next()
        .expect("the demo has failing subjects")
}

fn count(results: &[ControlResult], status: Status) -> usize {
    results.iter().filter(|r| r.status == status).count()
}

fn tool(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("timeout")
        .arg("180")
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (scripts/setup-test-tools.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn chromium(profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    let profile = format!("--user-data-dir={}", profile.display());
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        &profile,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    tool("chromium", &args)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[test]
fn every_format_is_written_into_the_run_and_the_package() {
    let (_h, run_dir, _, package) = demo_run();
    for f in auditpack::report::Format::ALL {
        let in_run = run_dir.join(f.path());
        let in_package = package.join("data").join(f.path());
        assert!(in_run.is_file(), "{} missing", in_run.display());
        assert!(in_package.is_file(), "{} missing", in_package.display());
        assert_eq!(
            std::fs::read(&in_run).expect("read"),
            std::fs::read(&in_package).expect("read")
        );
    }
}

#[test]
fn html_report_renders_in_headless_chromium_and_loads_nothing() {
    let (h, run_dir, results, _) = demo_run();
    let html_path = run_dir.join("reports/report.html");
    let html = std::fs::read_to_string(&html_path).expect("report.html");

    // Nothing from the network: no src/href/url to any host, no scripts.
    let lower = html.to_lowercase();
    for attr in ["src=", "href=", "action=", "srcset="] {
        for (i, _) in lower.match_indices(attr) {
            let value = lower[i + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http:")
                    && !value.starts_with("https:")
                    && !value.starts_with("//")
                    && !value.starts_with("ftp:"),
                "external reference at byte {i}: {}",
                &lower[i..(i + 80).min(lower.len())]
            );
        }
    }
    for bad in ["<script", "<link", "@import", "url(", "<iframe", "<img"] {
        assert!(!lower.contains(bad), "report.html contains {bad}");
    }

    let url = format!("file://{}", html_path.display());
    let shot = h.path().join("report.png");
    let screenshot = format!("--screenshot={}", shot.display());
    chromium(
        &h.path().join("chromium-1"),
        &[&screenshot, "--window-size=1280,2000"],
        &url,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.len() > 10_000, "screenshot is {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let dom = chromium(&h.path().join("chromium-2"), &["--dump-dom"], &url);
    let dom = String::from_utf8(dom.stdout).expect("utf-8 DOM");
    let fail = count(&results, Status::Fail);
    let pending = count(&results, Status::ManualPending);
    assert!(fail > 0);
    assert!(
        dom.contains(&format!(r#"id="total-fail">{fail}<"#)),
        "DOM lacks the fail count {fail}"
    );
    assert!(dom.contains(&format!(r#"id="total-manual-pending">{pending}<"#)));
    assert!(dom.contains(&format!(r#"id="total-controls">{}<"#, results.len())));
    assert!(dom.contains("Gaps by owner"));
    let subject = a_failing_subject(&results);
    assert!(
        dom.contains(&html_escape(&subject)),
        "DOM lacks failing subject {subject}"
    );
    // The evidence index shows every custody hash.
    let custody = std::fs::read_to_string(run_dir.join("custody.jsonl")).expect("custody");
    let first: serde_json::Value =
        serde_json::from_str(custody.lines().next().expect("a line")).expect("json");
    assert!(dom.contains(first["sha256"].as_str().expect("sha256")));
}

#[test]
fn pdf_report_has_its_headings_organisation_and_subjects_on_the_page() {
    let (h, run_dir, results, _) = demo_run();
    let pdf = run_dir.join("reports/report.pdf");
    let pdf_s = pdf.to_str().expect("utf-8 path");

    let prefix = h.path().join("page");
    tool(
        "pdftoppm",
        &["-png", "-r", "40", pdf_s, prefix.to_str().expect("path")],
    );
    let pages: Vec<_> = std::fs::read_dir(h.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("page-"))
        .collect();
    assert!(pages.len() >= 4, "only {} pages rendered", pages.len());

    let text =
        String::from_utf8(tool("pdftotext", &["-layout", pdf_s, "-"]).stdout).expect("utf-8 text");
    for heading in [
        "Compliance evidence report",
        "Executive summary",
        "Source status",
        "HIPAA controls",
        "PCI DSS controls",
        "SOC 2 controls",
        "Gaps by owner",
        "Evidence appendix",
        "Test Clinic",
    ] {
        assert!(text.contains(heading), "PDF text lacks {heading:?}");
    }
    let subject = a_failing_subject(&results);
    let first_word = subject.split_whitespace().next().expect("a name");
    assert!(text.contains(first_word), "PDF lacks subject {subject}");

    // Every word lies inside its page box.
    let bbox =
        String::from_utf8(tool("pdftotext", &["-bbox", pdf_s, "-"]).stdout).expect("utf-8 bbox");
    let attr = |tag: &str, name: &str| -> f64 {
        let key = format!("{name}=\"");
        let start = tag.find(&key).expect("attribute") + key.len();
        let end = tag[start..].find('"').expect("quote") + start;
        tag[start..end].parse().expect("number")
    };
    let (mut w, mut hgt, mut words) = (0.0, 0.0, 0);
    for line in bbox.lines().map(str::trim) {
        if line.starts_with("<page ") {
            w = attr(line, "width");
            hgt = attr(line, "height");
        } else if line.starts_with("<word ") {
            words += 1;
            let (x0, y0, x1, y1) = (
                attr(line, "xMin"),
                attr(line, "yMin"),
                attr(line, "xMax"),
                attr(line, "yMax"),
            );
            assert!(
                x0 >= 0.0 && y0 >= 0.0 && x1 <= w && y1 <= hgt,
                "word off the page ({w}x{hgt}): {line}"
            );
        }
    }
    assert!(words > 200, "only {words} words found");

    // No column title is cut, and no id is broken inside a token: every
    // control id and every listed subject id stands whole on one line.
    let raw = String::from_utf8(tool("pdftotext", &[pdf_s, "-"]).stdout).expect("utf-8 text");
    let lines: std::collections::HashSet<&str> = raw.lines().map(str::trim).collect();
    for title in [
        "Dataset", "status", "Source", "Detail", "Control", "Checks", "Reason", "Why",
    ] {
        assert!(
            lines.contains(title),
            "column title {title:?} is cut or missing"
        );
    }
    assert!(!raw.contains("sta…"), "a cut column title");
    for r in &results {
        assert!(
            lines.contains(r.control_id.as_str()),
            "control id {} is broken or missing in the PDF",
            r.control_id
        );
    }
    let subject_ids: Vec<&str> = results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .flat_map(|r| &r.checks)
        .flat_map(|c| c.failing.iter().take(5))
        .map(|s| s.id.as_str())
        .collect();
    assert!(!subject_ids.is_empty());
    for id in subject_ids {
        assert!(lines.contains(id), "subject id {id} is broken in the PDF");
    }
    // Reasons name checks by title, not by id.
    assert!(
        !raw.contains("devices_report_patch_state:"),
        "a raw check id"
    );
}

#[test]
fn oscal_results_parse_with_compliance_trestle() {
    let (_h, run_dir, results, _) = demo_run();
    let path = run_dir.join("results/assessment-results.oscal.json");
    let script = r#"
import pathlib, sys
from trestle.oscal.assessment_results import AssessmentResults
ar = AssessmentResults.oscal_read(pathlib.Path(sys.argv[1]))
r = ar.results[0]
states = sorted({getattr(f.target.status.state, "value", f.target.status.state) for f in r.findings})
print(len(r.findings), len(r.observations), ",".join(states), len(ar.metadata.parties))
"#;
    let out = tool(
        "python3",
        &["-c", script, path.to_str().expect("utf-8 path")],
    );
    let line = String::from_utf8(out.stdout).expect("utf-8");
    let fields: Vec<&str> = line.split_whitespace().collect();
    let applicable = results
        .iter()
        .filter(|r| r.status != Status::NotApplicable)
        .count();
    assert_eq!(fields[0], applicable.to_string(), "findings: {line}");
    assert!(fields[1].parse::<usize>().expect("count") > 0);
    assert!(fields[2].contains("not-satisfied"));
    assert_eq!(fields[3], "2", "parties for internal IT and the MSP");

    // Every observation's evidence points at a dataset folder of the run.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let observations = doc["assessment-results"]["results"][0]["observations"]
        .as_array()
        .expect("observations");
    // Checks that read no evidence file (the responsibility matrix reads the
    // ownership template) have no `relevant-evidence`, which OSCAL allows.
    let mut linked = 0;
    for o in observations {
        for e in o["relevant-evidence"].as_array().into_iter().flatten() {
            let href = e["href"].as_str().expect("href");
            let folder = run_dir.join("results").join(href);
            assert!(folder.is_dir(), "{href} does not resolve");
            linked += 1;
        }
    }
    assert!(linked > 0, "observations link their evidence");
}

/// NIST's own JSON Schema for assessment results accepts the OSCAL file of
/// the demo, of a run with hostile names (their Markdown and HTML rendering
/// as text: see tools/oscal_schema_check.py), and of a run where a source failed
/// (inconclusive controls, datasets without files) for an organisation whose
/// name holds a line break (titles and names must be single lines).
#[test]
fn oscal_results_validate_against_nist_json_schema() {
    let (_demo, demo_dir, _, _) = demo_run();
    let (_hostile, hostile_dir, _) = hostile_run();
    // Names from a tenant reach summaries and reasons (unproven subjects are
    // named there): put Markdown and HTML in both and render again.
    let mut results = auditpack::report::json::read(&hostile_dir).expect("results");
    let hostile = format!("{HOSTILE_NAME} [link](javascript:alert(1)) ![i](x) *b* `c` <b>\n# h");
    for r in &mut results {
        r.reason = format!("{hostile}: {}", r.reason);
        for c in &mut r.checks {
            c.summary = format!("- {hostile}");
            c.title = format!("1. {hostile}");
        }
    }
    auditpack::report::json::write(&hostile_dir, &results).expect("write results");
    auditpack::report::write_reports(
        &hostile_dir,
        &auditpack::report::ReportOptions {
            formats: vec![auditpack::report::Format::Oscal],
        },
    )
    .expect("render OSCAL");
    let failed = Harness::demo();
    failed.sim.add_fault(Fault {
        path: "/v1.0/users".into(),
        from_request: 1,
        times: 1000,
        kind: FaultKind::Forbidden,
    });
    let mut config = failed.config(None);
    config.organisation.name = " Test\nClinic\t ".into();
    let outcome = failed.run(&config);
    assert!(
        outcome
            .results
            .iter()
            .any(|r| r.status == Status::Inconclusive),
        "a failed source makes controls inconclusive"
    );
    let docs: Vec<String> = [&demo_dir, &hostile_dir, &outcome.run_dir]
        .iter()
        .map(|d| {
            d.join("results/assessment-results.oscal.json")
                .to_str()
                .expect("utf-8 path")
                .to_owned()
        })
        .collect();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/tools/oscal_schema_check.py"
    );
    let mut args = vec![script];
    args.extend(docs.iter().map(String::as_str));
    // Fails with every schema or markup error on its output.
    tool("python3", &args);
}

#[test]
fn hostile_names_arrive_escaped_in_csv_and_html() {
    let (_h, run_dir, results) = hostile_run();
    let csv = std::fs::read_to_string(run_dir.join("results/findings.csv")).expect("csv");
    assert!(csv.starts_with('\u{feff}'));
    assert!(
        csv.contains(&format!("'{FORMULA}")),
        "the formula device is not in findings.csv as an escaped cell"
    );
    for line in csv.lines() {
        for cell in line.split(',') {
            assert!(
                !cell.trim_start_matches('"').starts_with("=cmd"),
                "unescaped formula cell in: {line}"
            );
        }
    }
    assert!(results.iter().any(|r| r
        .checks
        .iter()
        .any(|c| c.failing.iter().any(|s| s.name.contains(FORMULA)))));

    let html = std::fs::read_to_string(run_dir.join("reports/report.html")).expect("html");
    assert!(
        !html.contains("<img"),
        "markup from a user name reached the page"
    );
    assert!(
        html.contains("&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt; Tom &amp; &quot;Becker&quot;")
    );
    assert!(html.contains("&#x3D;cmd|&#x27; /C calc&#x27;!A0"));
}

#[test]
fn report_command_rerenders_the_same_files() {
    let (_h, run_dir, _, _) = demo_run();
    let oscal = run_dir.join("results/assessment-results.oscal.json");
    let before = std::fs::read(&oscal).expect("oscal");
    std::fs::remove_file(run_dir.join("reports/report.html")).expect("remove");
    let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(["report"])
        .arg(&run_dir)
        .args(["--format", "html,oscal"])
        .output()
        .expect("run auditpack");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run_dir.join("reports/report.html").is_file());
    assert_eq!(
        std::fs::read(&oscal).expect("oscal"),
        before,
        "OSCAL is deterministic"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(["report"])
        .arg(&run_dir)
        .args(["--format", "docx"])
        .output()
        .expect("run auditpack");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown report format"));
}

#[test]
fn a_failed_source_is_reported_with_its_reason() {
    let h = Harness::demo();
    let config = h.config(Some("wrong-secret"));
    let outcome = h.run(&config);
    let m365 = &outcome.manifest.sources["m365"];
    let reason = m365.reason.clone().expect("a failed source has a reason");
    let html = std::fs::read_to_string(outcome.run_dir.join("reports/report.html")).expect("html");
    assert!(html.contains(r#"<span class="badge failed">failed</span>"#));
    let words: Vec<&str> = reason.split_whitespace().take(3).collect();
    assert!(
        html.contains(&html_escape(&words.join(" ")).replace('\'', "&#x27;")),
        "HTML lacks the reason {reason}"
    );
    let pdf = outcome.run_dir.join("reports/report.pdf");
    let text =
        String::from_utf8(tool("pdftotext", &[pdf.to_str().expect("utf-8 path"), "-"]).stdout)
            .expect("utf-8 text");
    assert!(text.contains("failed"));
    assert!(count(&outcome.results, Status::Inconclusive) > 0);
    assert!(html.contains(&format!(
        r#"id="total-inconclusive">{}<"#,
        count(&outcome.results, Status::Inconclusive)
    )));
}

fn auditpack(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(args)
        .output()
        .expect("run auditpack")
}

#[test]
fn report_refuses_a_package_and_any_folder_inside_one() {
    let (h, _, _, package) = demo_run();
    let before = common::all_files(&package)
        .into_iter()
        .map(|p| (std::fs::read(&p).expect("read"), p))
        .collect::<Vec<_>>();
    let out = auditpack(&["report".as_ref(), package.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is a package; reports are already inside it"),
        "{stderr}"
    );
    for inside in [package.join("data"), package.join("data/results")] {
        let out = auditpack(&["report".as_ref(), inside.as_os_str()]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("lies inside the package"), "{stderr}");
        let out = auditpack(&["evaluate".as_ref(), inside.as_os_str()]);
        assert_eq!(out.status.code(), Some(2), "evaluate writes too");
    }
    let zip = auditpack::package::zip_path(&package);
    let out = auditpack(&["report".as_ref(), zip.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("zipped package"));
    for (bytes, path) in before {
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "{} changed",
            path.display()
        );
    }
    let verify = auditpack(&[
        "verify".as_ref(),
        package.as_os_str(),
        "--allowed-signers".as_ref(),
        h.allowed_signers().as_os_str(),
    ]);
    assert_eq!(verify.status.code(), Some(0));
}

#[test]
fn reports_rendered_again_name_the_same_signer_as_the_packaged_ones() {
    let (_h, run_dir, _, package) = demo_run();
    let packaged = std::fs::read(package.join("data/reports/report.html")).expect("html");
    let text = String::from_utf8_lossy(&packaged);
    assert!(
        text.contains(common::IDENTITY),
        "the package names its signer"
    );
    std::fs::remove_file(run_dir.join("reports/report.html")).expect("remove");
    std::fs::remove_file(run_dir.join("reports/report.pdf")).expect("remove");
    let out = auditpack(&[
        "report".as_ref(),
        run_dir.as_os_str(),
        "--format".as_ref(),
        "html,pdf".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(run_dir.join("reports/report.html")).expect("html"),
        packaged,
        "the same page, signer rows included"
    );
    // The PDF carries a fresh document id; its text is the same.
    let text = |pdf: &Path| {
        let out = tool("pdftotext", &[&pdf.to_string_lossy(), "-"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let again = text(&run_dir.join("reports/report.pdf"));
    assert!(again.contains(common::IDENTITY), "{again}");
    assert_eq!(again, text(&package.join("data/reports/report.pdf")));
}

/// `name <n>` subjects, `n` from 0, five digits wide.
fn numbered(prefix: &str, count: usize) -> std::sync::Arc<Vec<auditpack::checks::Subject>> {
    (0..count)
        .map(|i| auditpack::checks::Subject {
            id: format!("{prefix}:{i:05}"),
            name: format!("{prefix} subject {i:05}"),
            detail: "planted".to_owned(),
        })
        .collect::<Vec<_>>()
        .into()
}

#[test]
fn html_shows_500_subjects_a_list_and_the_csv_holds_every_one() {
    use auditpack::report::{write_reports, Format, ReportOptions};
    let (_h, run_dir, _, _) = demo_run();
    let mut results = auditpack::report::json::read(&run_dir).expect("controls.json");
    // The first failing check, with 1,234 failing and 501 unproven subjects
    // under every control that maps to it.
    let check = results
        .iter()
        .flat_map(|r| &r.checks)
        .find(|c| !c.failing.is_empty())
        .map(|c| c.check.clone())
        .expect("the demo has a failing check");
    let (failing, unproven) = (numbered("capped", 1_234), numbered("unseen", 501));
    for c in results.iter_mut().flat_map(|r| r.checks.iter_mut()) {
        if c.check == check {
            c.failing = failing.clone();
            c.failing_count = failing.len();
            c.unproven = unproven.clone();
            c.unproven_count = unproven.len();
        }
    }
    auditpack::report::json::write(&run_dir, &results).expect("write controls.json");
    write_reports(
        &run_dir,
        &ReportOptions {
            formats: vec![Format::Html, Format::Csv],
        },
    )
    .expect("reports");

    let html = std::fs::read_to_string(run_dir.join("reports/report.html")).expect("html");
    let shown = |prefix: &str, count: usize| {
        (0..count)
            .filter(|i| html.contains(&format!("{prefix} subject {i:05}")))
            .count()
    };
    assert_eq!(shown("capped", 1_234), 500, "failing subjects on the page");
    assert_eq!(shown("unseen", 501), 500, "unproven subjects on the page");
    assert!(
        html.contains("… and 734 more, not shown here"),
        "the page says how many failing subjects it leaves out"
    );
    assert!(
        html.contains("… and 1 more, not shown here"),
        "the page says how many unproven subjects it leaves out"
    );

    let csv = std::fs::read_to_string(run_dir.join("results/findings.csv")).expect("csv");
    let rows = |prefix: &str, finding: &str| {
        csv.lines()
            .filter(|l| l.contains(&format!(",{prefix}:")) && l.ends_with(finding))
            .count()
    };
    assert_eq!(
        rows("capped", ",failing"),
        1_234,
        "every failing subject in the CSV"
    );
    assert_eq!(
        rows("unseen", ",unproven"),
        501,
        "every unproven subject in the CSV"
    );
}
