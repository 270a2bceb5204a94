//! Rendering benchmark: every report format for an organisation of 100,000
//! users and 30,000 devices, all of them failing (the worst case: every
//! failing subject appears in the CSV, the HTML and the OSCAL counts).
//!
//! Run with `cargo bench --bench report`. It runs the demo pipeline once to
//! get a real run folder, inflates its results and custody log to that size,
//! then times `report::write_reports` per format and for all of them.
//! Target: all formats under 10 s. For `scripts/bench.sh` it also prints
//! figure lines against the targets of the performance issue (all reports
//! under 5 s, every output together under 300 MB, peak memory of writing them
//! under 1 GiB); `AUDITPACK_BENCH_SCALE=0.1` runs a tenth of the organisation,
//! `AUDITPACK_BENCH_KEEP=1` keeps the run folder to look at.
#![allow(clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{figure, report_peak, reset_peak, Target};

use auditpack::checks::{Subject, Verdict};
use auditpack::evidence::CustodyEntry;
use auditpack::report::{write_reports, Format, ReportOptions};

const USERS: usize = 100_000;
const DEVICES: usize = 30_000;
const TARGET_SECS: f64 = 10.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let demo = auditpack::demo::demo(dir.path(), &runtime)?;
    let run_dir = demo.run.run_dir;
    if std::env::var_os("AUDITPACK_BENCH_KEEP").is_some() {
        println!("keeping {}", dir.keep().display());
    }

    let (users_n, devices_n) = (common::scaled(USERS), common::scaled(DEVICES));
    let users: Arc<Vec<Subject>> = (0..users_n)
        .map(|i| Subject {
            id: format!("m365:00000000-0000-4000-8000-{i:012x}"),
            name: format!("User {i} <user{i}@synthetic.example>"),
            detail: "no MFA method registered".to_owned(),
        })
        .collect::<Vec<_>>()
        .into();
    let devices: Arc<Vec<Subject>> = (0..devices_n)
        .map(|i| Subject {
            id: format!("ninja:{i}"),
            name: format!("WS-{i:05}"),
            detail: "1 critical patch(es) pending over 30 days, oldest 45 days: KB5044273"
                .to_owned(),
        })
        .collect::<Vec<_>>()
        .into();
    let mut results = auditpack::report::json::read(&run_dir)?;
    for r in &mut results {
        for c in &mut r.checks {
            let subjects = if c.check.contains("mfa") {
                &users
            } else {
                &devices
            };
            c.outcome = Verdict::Fail;
            c.evaluated = subjects.len();
            c.failing_count = subjects.len();
            // Every control of a check shares its one run, as evaluation
            // makes them.
            c.failing = Arc::clone(subjects);
        }
    }
    auditpack::report::json::write(&run_dir, &results)?;

    // One custody entry per page of 999 records, as Graph and NinjaOne page.
    let custody_path = run_dir.join("custody.jsonl");
    let template: CustodyEntry = auditpack::evidence::read_custody(&custody_path)?
        .into_iter()
        .next()
        .ok_or("the demo run has no custody entries")?;
    let mut lines = String::new();
    for (dataset, records) in [
        ("users", users_n),
        ("userRegistrationDetails", users_n),
        ("devices", devices_n),
        ("os-patches", devices_n),
    ] {
        for page in 1..=records.div_ceil(999) {
            let entry = CustodyEntry {
                path: format!("evidence/bench/{dataset}/page-{page:05}.json"),
                sha256: format!("{:064x}", page * 7919),
                dataset: dataset.to_owned(),
                ..template.clone()
            };
            lines.push_str(&serde_json::to_string(&entry)?);
            lines.push('\n');
        }
    }
    std::fs::write(&custody_path, lines)?;

    println!(
        "report benchmark: {users_n} users and {devices_n} devices failing, {} controls",
        results.len()
    );
    let mut outputs = 0u64;
    for format in Format::ALL {
        reset_peak();
        let start = Instant::now();
        write_reports(
            &run_dir,
            &ReportOptions {
                formats: vec![format],
            },
        )?;
        let secs = start.elapsed().as_secs_f64();
        let size = std::fs::metadata(run_dir.join(format.path()))?.len();
        let peak =
            common::peak_rss().map_or("?".to_owned(), |b| format!("{:.0} MiB", b / common::MIB));
        println!(
            "  {:<6} {secs:>7.3} s  {:>12} bytes  peak RSS {peak}",
            format.as_str(),
            size
        );
        outputs += size;
    }
    // The CSV must open in a spreadsheet: at most 1,048,576 rows.
    let rows = count_lines(&run_dir.join(Format::Csv.path()))?;
    let csv_bytes = std::fs::metadata(run_dir.join(Format::Csv.path()))?.len();
    println!(
        "  findings.csv: {rows} rows (header included), {} bytes a row",
        csv_bytes / rows.max(1) as u64
    );
    figure(
        "report.csv_rows",
        rows as f64,
        "rows",
        Target::AtMost(1_048_576.0),
    );
    // What the reports need they read from the run folder.
    drop((results, users, devices));
    reset_peak();
    let start = Instant::now();
    write_reports(&run_dir, &ReportOptions::default())?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  all    {secs:>7.3} s  (target {TARGET_SECS} s, ratio {:.2})",
        secs / TARGET_SECS
    );
    report_peak(
        "report.peak_rss_all",
        "writing every report",
        Some(1024.0 * common::MIB),
    );
    figure(
        "report.all",
        secs,
        "s",
        Target::AtMost(5.0 * common::scale()),
    );
    figure(
        "report.outputs",
        outputs as f64 / 1e6,
        "MB",
        Target::AtMost(300.0 * common::scale()),
    );
    for format in Format::ALL {
        let size = std::fs::metadata(run_dir.join(format.path()))?.len();
        figure(
            &format!("report.size_{}", format.as_str()),
            size as f64 / 1e6,
            "MB",
            Target::None,
        );
    }
    Ok(())
}

/// Lines of a file (CRLF-terminated rows count once).
fn count_lines(path: &std::path::Path) -> std::io::Result<usize> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count();
    }
}
