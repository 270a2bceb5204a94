//! Benchmark: the fleet dashboard and a QBR over a large history: 200
//! organisations (scaled by `AUDITPACK_BENCH_SCALE`) with a year of daily
//! runs each, the summaries generated straight into a fleet store
//! (`auditpack::simulate::history`, KPIs and changes as real runs leave
//! them). The history index is built once before timing (as `auditpack
//! history` or an earlier dashboard leaves it); the dashboard is then timed
//! as it runs after a night's fleet run (index brought up to date, every
//! organisation's latest summary read, every page written), and one
//! organisation's QBR for the last full quarter (HTML and PDF).
//!
//! Targets: dashboard < 2 s, QBR < 1 s.
//!
//! `cargo bench --bench trends -- [--orgs N] [--days N]`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::time::Instant;

use auditpack::config::{PartySla, Sla};
use auditpack::history::index::{HistoryScope, Index};
use auditpack::history::kpis::KpiSettings;
use auditpack::simulate::history::{write_history, HistorySpec};
use auditpack::trends::{dashboard, qbr, Organisation, Period};
use chrono::{Duration, TimeZone, Utc};
use common::{arg, figure, scaled, Target};

fn main() {
    let orgs = arg("--orgs", scaled(200));
    let days = arg("--days", 365);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let settings = KpiSettings {
        sla: Sla {
            internal: Some(PartySla {
                days: Some(7),
                checks: Default::default(),
            }),
            msp: Some(PartySla {
                days: Some(30),
                checks: [("patch_latency_critical".to_owned(), 14)]
                    .into_iter()
                    .collect(),
            }),
        },
        monthly_fee: Some(2400.0),
        currency: Some("EUR".to_owned()),
    };
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 2, 0, 0)
        .single()
        .expect("time");
    let t = Instant::now();
    let mut members = Vec::with_capacity(orgs);
    for i in 0..orgs {
        let name = format!("Organisation {i:03}");
        let slug = format!("org{i:03}");
        let org_store = store.join(&slug);
        write_history(
            &org_store,
            &HistorySpec {
                organisation: name.clone(),
                start,
                days: days as u32,
                seed: 1 + i as u64,
                pci_out_of_scope: Some((100, 130)),
                controls_per_framework: 40,
            },
            &settings,
        )
        .expect("history");
        members.push(Organisation {
            name,
            slug,
            store: org_store,
            settings: settings.clone(),
        });
    }
    println!(
        "generated {orgs} organisations x {days} daily runs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    Index::open(&HistoryScope::fleet(&store).expect("scope")).expect("index");
    println!("history index built in {:.1} s", t.elapsed().as_secs_f64());

    let now = start + Duration::days(days as i64) + Duration::hours(4);
    let site = dir.path().join("site");
    let t = Instant::now();
    let written = dashboard::write(
        &members,
        &dashboard::Options {
            fleet: "Bench MSP".to_owned(),
            store: store.clone(),
            now,
            overdue_hours: 36,
            with_qbr: false,
        },
        &site,
    )
    .expect("dashboard");
    let dash = t.elapsed().as_secs_f64();
    println!(
        "dashboard: {} organisations, {} files in {dash:.3} s",
        written.organisations, written.files
    );

    let last_day = (start + Duration::days(days as i64 - 1)).date_naive();
    let mut quarter = Period::quarter_of(last_day);
    if quarter.to > last_day {
        quarter = Period::quarter_of(quarter.from - Duration::days(1));
    }
    let t = Instant::now();
    let review = qbr::build(&members[0], &quarter).expect("qbr");
    let files = qbr::write(&review, &dir.path().join("qbr")).expect("write qbr");
    let q = t.elapsed().as_secs_f64();
    println!(
        "qbr {}: {} runs, {} files in {q:.3} s",
        quarter.label,
        review.runs,
        files.len()
    );
    figure("trends.dashboard_seconds", dash, "s", Target::AtMost(2.0));
    figure("trends.qbr_seconds", q, "s", Target::AtMost(1.0));
    figure("trends.organisations", orgs as f64, "orgs", Target::None);
    figure(
        "trends.runs_per_organisation",
        days as f64,
        "runs",
        Target::None,
    );
}
