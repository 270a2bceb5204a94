//! Trends: KPIs kept in each run's summary (numerator, denominator,
//! evidence; not applicable at a zero denominator; remediation times from
//! the history), `auditpack kpis`, the QBR (HTML and an A4 PDF checked page
//! by page as images) and the fleet dashboard in headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use auditpack::checks::Verdict;
use auditpack::config::{Owner, PartySla, Sla};
use auditpack::history::kpis::{self, KpiSettings, KpiStatus};
use auditpack::history::summary::{CheckSummary, RunSummary, SubjectRef};
use auditpack::history::{LocalStore, SummaryStore};
use auditpack::simulate::history::{write_history, HistorySpec};
use chrono::{TimeZone, Utc};

use crate::common::Harness;

fn auditpack(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(args)
        .output()
        .expect("run auditpack")
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn tool(program: &str, args: &[&str]) -> Output {
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
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sla() -> Sla {
    Sla {
        internal: Some(PartySla {
            days: Some(7),
            checks: [("inactive_accounts".to_owned(), 1)].into_iter().collect(),
        }),
        msp: Some(PartySla {
            days: Some(30),
            checks: [("patch_latency_critical".to_owned(), 14)]
                .into_iter()
                .collect(),
        }),
    }
}

/// An organisation config with a store, `[sla]` and a fee.
fn org_config(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join("auditpack.toml");
    std::fs::write(
        &path,
        format!(
            r#"[organisation]
name = "{name}"
frameworks = ["hipaa", "pci-dss", "soc2"]
store = "store"
monthly_fee = 2400.0
currency = "EUR"

[sla.internal]
days = 7
checks = {{ inactive_accounts = 1 }}

[sla.msp]
days = 30
checks = {{ patch_latency_critical = 14 }}
"#
        ),
    )
    .expect("write config");
    path
}

fn spec(name: &str, days: u32) -> HistorySpec {
    HistorySpec {
        organisation: name.to_owned(),
        start: Utc
            .with_ymd_and_hms(2026, 7, 1, 2, 0, 0)
            .single()
            .expect("time"),
        days,
        seed: 7,
        pci_out_of_scope: Some((40, 60)),
        controls_per_framework: 20,
    }
}

fn settings() -> KpiSettings {
    KpiSettings {
        sla: sla(),
        monthly_fee: Some(2400.0),
        currency: Some("EUR".to_owned()),
    }
}

fn check(
    id: &str,
    owner: Owner,
    evaluated: usize,
    failing: &[&str],
    unproven: &[&str],
) -> CheckSummary {
    let refs = |ids: &[&str]| -> Vec<SubjectRef> {
        ids.iter()
            .map(|i| SubjectRef {
                id: (*i).to_owned(),
                name: format!("name of {i}"),
            })
            .collect()
    };
    CheckSummary {
        check: id.to_owned(),
        title: id.to_owned(),
        outcome: if !failing.is_empty() {
            Verdict::Fail
        } else if !unproven.is_empty() {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        },
        judged: !failing.is_empty() || unproven.is_empty(),
        responsible: owner,
        evaluated,
        failing_count: failing.len(),
        unproven_count: unproven.len(),
        failing: refs(failing),
        unproven: refs(unproven),
    }
}

fn summary(day: u32, checks: Vec<CheckSummary>) -> RunSummary {
    let t = format!("2026-03-{:02}T02:00:00Z", day);
    let mut s = RunSummary::build(None, &[]);
    s.organisation = "Clinic".into();
    s.run_id = format!("202603{:02}T020000Z-0000000{day}", day);
    s.started_at = t.clone();
    s.finished_at = t.clone();
    s.as_of = t;
    s.checks = checks;
    s
}

#[test]
fn a_zero_denominator_is_not_applicable_and_unproven_subjects_say_inconclusive() {
    let s = summary(
        1,
        vec![
            check("mfa_admins", Owner::Internal, 0, &[], &[]),
            check("mfa_registered", Owner::Internal, 10, &["u1"], &["u2"]),
            check("edr_coverage", Owner::Msp, 4, &["d1"], &[]),
            check("device_coverage", Owner::Msp, 0, &[], &[]),
        ],
    );
    let k = kpis::compute(&s, None, &[], &settings());
    let admins = k.get("mfa_admins").expect("mfa_admins");
    assert_eq!(admins.status, KpiStatus::NotApplicable);
    assert_eq!(admins.value, None, "never 100% of nothing");
    assert_eq!(admins.denominator, Some(0.0));
    let reg = k.get("mfa_registered").expect("mfa_registered");
    assert_eq!(reg.status, KpiStatus::Inconclusive);
    assert_eq!((reg.numerator, reg.denominator), (8.0, Some(10.0)));
    assert_eq!(reg.value, Some(80.0));
    assert!(reg
        .note
        .as_deref()
        .unwrap_or("")
        .contains("could not be judged"));
    assert_eq!(reg.evidence, vec!["check:mfa_registered".to_owned()]);
    let edr = k.get("edr_coverage").expect("edr");
    assert_eq!((edr.status, edr.value), (KpiStatus::Measured, Some(75.0)));
    // A check that did not run is not measured.
    let backups = k.get("backup_recency").expect("backup_recency");
    assert_eq!(
        (backups.status, backups.value),
        (KpiStatus::NotMeasured, None)
    );
    // No endpoints: no cost per endpoint.
    let cost = k.get("cost_per_endpoint").expect("cost");
    assert_eq!((cost.status, cost.value), (KpiStatus::NotApplicable, None));
    assert_eq!(cost.numerator, 2400.0);
}

#[test]
fn mean_time_to_remediate_and_sla_follow_the_history() {
    let s = settings();
    let runs = [
        summary(
            1,
            vec![check(
                "patch_latency_critical",
                Owner::Msp,
                5,
                &["d1", "d2"],
                &[],
            )],
        ),
        summary(
            2,
            vec![check(
                "patch_latency_critical",
                Owner::Msp,
                5,
                &["d1", "d2"],
                &[],
            )],
        ),
        // d2 is fixed after 3 days; d1 becomes unproven: not a fix.
        summary(
            4,
            vec![check("patch_latency_critical", Owner::Msp, 5, &[], &["d1"])],
        ),
        // The check could not run at all: d1 stays open.
        summary(10, vec![]),
        // d1 is fixed after 19 days: past the 14-day target.
        summary(
            20,
            vec![check("patch_latency_critical", Owner::Msp, 5, &[], &[])],
        ),
    ];
    let mut done: Vec<RunSummary> = Vec::new();
    let mut closed = Vec::new();
    for mut r in runs {
        let k = kpis::compute(&r, done.last(), &closed, &s);
        closed.extend(k.closed.clone());
        r.kpis = Some(k);
        done.push(r);
    }
    let k3 = done[2].kpis.as_ref().expect("kpis");
    assert_eq!(k3.closed.len(), 1);
    assert_eq!(k3.closed[0].subject, "d2");
    assert_eq!(k3.closed[0].days, 3.0);
    assert_eq!(k3.closed[0].within_sla(), Some(true));
    assert_eq!(k3.open.len(), 1, "unproven is not fixed");
    assert_eq!(k3.open[0].since, "2026-03-01T02:00:00Z");
    let k4 = done[3].kpis.as_ref().expect("kpis");
    assert_eq!(k4.open.len(), 1, "a check that did not run fixes nothing");
    let age = k4.get("open_gap_age.msp").expect("age");
    assert_eq!(age.value, Some(9.0));
    let sla4 = k4.get("sla.msp").expect("sla");
    assert_eq!((sla4.numerator, sla4.denominator), (1.0, Some(1.0)));
    let k5 = done[4].kpis.as_ref().expect("kpis");
    assert_eq!(k5.closed[0].days, 19.0);
    let mttr = k5.get("mttr.owner.msp").expect("mttr");
    assert_eq!(
        (mttr.numerator, mttr.denominator, mttr.value),
        (22.0, Some(2.0), Some(11.0))
    );
    assert_eq!(
        k5.get("mttr.check.patch_latency_critical")
            .and_then(|k| k.value),
        Some(11.0)
    );
    let sla5 = k5.get("sla.msp").expect("sla");
    assert_eq!(
        (sla5.numerator, sla5.denominator, sla5.value),
        (1.0, Some(2.0), Some(50.0))
    );
    // Internal IT closed nothing: not applicable, not 100%.
    let internal = k5.get("sla.internal").expect("sla internal");
    assert_eq!(
        (internal.status, internal.value),
        (KpiStatus::NotApplicable, None)
    );
    let none = kpis::compute(&done[4], None, &[], &KpiSettings::default());
    assert_eq!(
        none.get("sla.msp").map(|k| k.status),
        Some(KpiStatus::NotMeasured)
    );
}

#[test]
fn a_run_keeps_its_kpis_and_summaries_without_them_still_read() {
    let h = Harness::demo();
    let mut config = h.config(None);
    config.organisation.monthly_fee = Some(1200.0);
    config.sla = sla();
    let outcome = h.run(&config);
    let store = LocalStore::new(&config.organisation.store);
    let summary = store.read(&outcome.manifest.run_id).expect("summary");
    assert_eq!(summary.schema_version, 2);
    let k = summary.kpis.as_ref().expect("kpis in the summary");
    for id in [
        "mfa_registered",
        "patch_compliance",
        "edr_coverage",
        "open_gaps.msp",
        "sla.msp",
        "cost_per_endpoint",
    ] {
        assert!(k.get(id).is_some(), "{id} missing");
    }
    let reg = k.get("mfa_registered").expect("mfa");
    let check = summary
        .checks
        .iter()
        .find(|c| c.check == "mfa_registered")
        .expect("mfa check");
    assert_eq!(reg.denominator, Some(check.evaluated as f64));
    let failing: usize = summary.checks.iter().map(|c| c.failing.len()).sum();
    assert_eq!(
        k.open.len(),
        failing,
        "every failing subject is an open gap"
    );
    let cost = k.get("cost_per_endpoint").expect("cost");
    let devices = summary
        .checks
        .iter()
        .find(|c| c.check == "device_coverage")
        .expect("device_coverage")
        .evaluated;
    assert_eq!(cost.denominator, Some(devices as f64));

    // A version 1 summary (no kpis) reads, and gets KPIs computed.
    let mut v = serde_json::to_value(&summary).expect("json");
    v["schema_version"] = 1.into();
    v.as_object_mut().expect("object").remove("kpis");
    let old =
        RunSummary::decode(&serde_json::to_vec(&v).expect("bytes"), "old.json").expect("v1 reads");
    assert!(old.kpis.is_none());
    let dir = tempfile::tempdir().expect("tempdir");
    let old_store = LocalStore::new(dir.path());
    old_store.write(&old).expect("write");
    let runs =
        auditpack::trends::load_runs(&old_store, &old.organisation, None, &KpiSettings::default())
            .expect("load");
    assert_eq!(
        runs[0]
            .kpis
            .as_ref()
            .and_then(|k| k.get("mfa_registered"))
            .map(|k| k.numerator),
        Some(reg.numerator)
    );
}

#[test]
fn kpis_command_exports_csv_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = org_config(dir.path(), "=CMD Clinic");
    write_history(
        &dir.path().join("store"),
        &spec("=CMD Clinic", 30),
        &settings(),
    )
    .expect("history");
    let out = auditpack(&[
        os("kpis"),
        os("--config"),
        config.as_os_str(),
        os("--format"),
        os("csv"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = csv.split("\r\n");
    assert_eq!(lines.next(), Some(auditpack::trends::export::CSV_HEADER));
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let per_run = rows
        .iter()
        .filter(|r| r.contains(",mfa_registered,"))
        .count();
    assert_eq!(per_run, 30);
    assert!(
        rows.iter().all(|r| r.starts_with("'=CMD Clinic,")),
        "names are guarded: {}",
        rows[0]
    );
    let reader = rows
        .iter()
        .find(|r| r.contains(",cost_per_endpoint,"))
        .expect("cost row");
    assert!(
        reader.contains(",measured,60,EUR/endpoint/month,2400,40,"),
        "{reader}"
    );

    let out = auditpack(&[
        os("kpis"),
        os("--config"),
        config.as_os_str(),
        os("--format"),
        os("json"),
        os("--from"),
        os("2026-07-11"),
        os("--to"),
        os("2026-07-20"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["runs"], 10);
    let series = v["kpis"].as_array().expect("series");
    let patch = series
        .iter()
        .find(|s| s["id"] == "patch_compliance")
        .expect("patch series");
    let points = patch["points"].as_array().expect("points");
    assert_eq!(points.len(), 10);
    for p in points {
        let (n, d) = (
            p["numerator"].as_f64().expect("n"),
            p["denominator"].as_f64().expect("d"),
        );
        let v = p["value"].as_f64().expect("value");
        assert!((v - 100.0 * n / d).abs() < 0.01);
    }
    // Another organisation's name is refused, with the right one named.
    let out = auditpack(&[
        os("kpis"),
        os("--config"),
        config.as_os_str(),
        os("--org"),
        os("Other"),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

fn assert_a4_pages(pdf: &Path, dir: &Path) -> usize {
    let info =
        String::from_utf8(tool("pdfinfo", &[pdf.to_str().expect("utf-8")]).stdout).expect("utf-8");
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("page count");
    assert!(
        info.contains("595.2") && info.contains("841.8"),
        "not A4: {info}"
    );
    let prefix = dir.join("page");
    tool(
        "pdftoppm",
        &[
            "-r",
            "40",
            "-png",
            pdf.to_str().expect("utf-8"),
            prefix.to_str().expect("utf-8"),
        ],
    );
    let mut images: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    images.sort();
    assert_eq!(images.len(), pages);
    for (i, img) in images.iter().enumerate() {
        let png = std::fs::read(img).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes(png[16..20].try_into().expect("w"));
        let h = u32::from_be_bytes(png[20..24].try_into().expect("h"));
        assert!(
            (f64::from(h) / f64::from(w) - 297.0 / 210.0).abs() < 0.01,
            "page {} is {w}x{h}",
            i + 1
        );
        // Something is drawn on every page: not all white.
        let text = String::from_utf8(
            tool(
                "pdftotext",
                &[
                    "-f",
                    &(i + 1).to_string(),
                    "-l",
                    &(i + 1).to_string(),
                    "-layout",
                    pdf.to_str().expect("utf-8"),
                    "-",
                ],
            )
            .stdout,
        )
        .expect("utf-8");
        assert!(
            text.contains(&format!("Page {} of {pages}", i + 1)),
            "page {} footer",
            i + 1
        );
    }
    pages
}

#[test]
fn qbr_writes_html_and_an_a4_pdf_with_charts_and_gaps_for_a_framework_out_of_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = org_config(dir.path(), "Clinic <b>");
    write_history(
        &dir.path().join("store"),
        &spec("Clinic <b>", 100),
        &settings(),
    )
    .expect("history");
    let out_dir = dir.path().join("qbr");
    let out = auditpack(&[
        os("qbr"),
        os("--config"),
        config.as_os_str(),
        os("--quarter"),
        os("2026Q3"),
        os("--out"),
        out_dir.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(out_dir.join("qbr-2026q3.html")).expect("html");
    assert!(html.contains("Clinic &lt;b&gt;") && !html.contains("Clinic <b>"));
    let lower = html.to_lowercase();
    for bad in [
        "<script",
        "<link",
        "@import",
        "url(",
        "src=",
        "href=\"http",
        "<img",
    ] {
        assert!(!lower.contains(bad), "qbr html contains {bad}");
    }
    for heading in [
        "Trends",
        "What improved and what regressed",
        "SLA adherence by party",
        "Open gaps by owner, with their age",
        "Exceptions in force",
        "Roadmap",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 7);
    // pci-dss was out of scope on days 40 to 60: its line has a gap (two
    // polylines) while hipaa's is one.
    let chart = &html[..html.find("Identity and access").expect("second chart")];
    let framework_chart = &chart[chart.find("Controls passing, by framework").expect("chart")..];
    let polylines = framework_chart.matches("<polyline").count();
    assert_eq!(polylines, 4, "hipaa 1 + pci-dss 2 + soc2 1");
    assert!(html.contains("data-kpi=\"patch_compliance\""));

    let pdf = out_dir.join("qbr-2026q3.pdf");
    let pages_dir = dir.path().join("pages");
    std::fs::create_dir_all(&pages_dir).expect("mkdir");
    let pages = assert_a4_pages(&pdf, &pages_dir);
    assert!(pages >= 3, "{pages} pages");
    let text = String::from_utf8(tool("pdftotext", &[pdf.to_str().expect("utf-8"), "-"]).stdout)
        .expect("utf-8");
    for needle in [
        "Quarterly business review",
        "Clinic <b>",
        "SLA adherence by party",
        "Roadmap",
        "Patch compliance",
    ] {
        assert!(text.contains(needle), "PDF lacks {needle}");
    }
}

#[test]
fn a_quarter_without_runs_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = org_config(dir.path(), "Clinic");
    write_history(&dir.path().join("store"), &spec("Clinic", 10), &settings()).expect("history");
    let out_dir = dir.path().join("qbr");
    let out = auditpack(&[
        os("qbr"),
        os("--config"),
        config.as_os_str(),
        os("--quarter"),
        os("2026Q4"),
        os("--out"),
        out_dir.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no runs of Clinic in 2026Q4"), "{err}");
    assert!(
        err.contains("the latest run before it is 20260710T020000Z"),
        "{err}"
    );
    assert!(!out_dir.exists());
    let out = auditpack(&[
        os("qbr"),
        os("--config"),
        config.as_os_str(),
        os("--quarter"),
        os("2026Q7"),
        os("--out"),
        out_dir.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn dashboard_renders_in_headless_chromium_without_network_and_opens_an_organisation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = dir.path().join("fleet.toml");
    let names = ["Alpha Dental", "Beta Vets", "Gamma Clinic"];
    let mut text = String::from(
        "[fleet]\nname = \"Test MSP\"\nstore = \"store\"\nframeworks = [\"hipaa\", \"soc2\"]\n\n[sla.msp]\ndays = 10\n",
    );
    for n in names {
        text.push_str(&format!("\n[[organisations]]\nname = \"{n}\"\n"));
    }
    std::fs::write(&fleet, text).expect("fleet");
    let loaded = auditpack::fleet::FleetFile::load(&fleet).expect("fleet loads");
    for (i, m) in loaded.members.iter().enumerate() {
        // Gamma stops running 5 days before the dashboard: overdue.
        let days = if i == 2 { 55 } else { 60 };
        let mut s = spec(&m.name, days);
        s.seed = 11 + i as u64;
        write_history(&m.config.organisation.store, &s, &settings()).expect("history");
    }
    let site = dir.path().join("site");
    let out = auditpack(&[
        os("dashboard"),
        os("--config"),
        fleet.as_os_str(),
        os("--out"),
        site.as_os_str(),
        os("--as-of"),
        os("2026-08-30T06:00:00Z"),
        os("--with-qbr"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(site.join("index.html")).expect("index");
    for n in names {
        assert!(index.contains(n));
    }
    assert!(index.contains("Last run failed or overdue"));
    let attention = &index[index.find("id=\"attention\"").expect("attention table")..];
    let attention = &attention[..attention.find("</table>").expect("end")];
    assert!(attention.contains("Gamma Clinic") && !attention.contains("Alpha Dental"));
    // Each organisation's page holds its own data only.
    for (i, m) in loaded.members.iter().enumerate() {
        let page =
            std::fs::read_to_string(site.join(format!("orgs/{}.html", m.slug))).expect("org page");
        assert!(page.contains(&m.name));
        for (j, other) in names.iter().enumerate() {
            if j != i {
                assert!(!page.contains(other), "{} page names {other}", m.name);
            }
        }
        assert!(page.contains("id=\"qbr\""), "{} links its QBR", m.name);
        assert!(site
            .join(format!("orgs/{}/qbr-2026q3.pdf", m.slug))
            .is_file());
        let lower = page.to_lowercase();
        assert!(!lower.contains("src=") && !lower.contains("href=\"http"));
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tools/cdp_check.py");
    let url = format!("file://{}", site.join("index.html").display());
    let profile = dir.path().join("chromium");
    let out = tool(
        "python3",
        &[
            script.to_str().expect("utf-8"),
            "chromium",
            profile.to_str().expect("utf-8"),
            &url,
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["rows"], 3);
    assert_eq!(report["errors"], serde_json::json!([]), "console errors");
    let site_url = format!("file://{}", site.display());
    for r in report["requests"].as_array().expect("requests") {
        let r = r.as_str().expect("url");
        assert!(r.starts_with(&site_url), "request outside the site: {r}");
    }
    assert_eq!(report["visible_after_filter"], 1, "filter keeps one row");
    assert_eq!(
        report["first_after_sort"], "Gamma Clinic",
        "descending sort by name"
    );
    let clicked = report["clicked"].as_str().expect("clicked");
    assert_eq!(report["org_name"], clicked);
    assert!(report["location"]
        .as_str()
        .expect("location")
        .contains("/orgs/"));
}
