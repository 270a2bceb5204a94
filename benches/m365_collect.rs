//! Benchmark: collect a 100,000-user, 30,000-device tenant from the simulator
//! with 50 ms latency per request, and compare the wall time with the critical
//! path (the longest chain of sequential requests times the latency, given the
//! published rate limits, from the pages each dataset really took: users come
//! 120 a page with `signInActivity`, so 100,000 users are 834 pages) and
//! report peak memory.
//!
//! `cargo bench --bench m365_collect` (release). The simulator runs in a child
//! process so the peak RSS printed is the collector's alone. Options:
//! `--users N --devices N --latency-ms N`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditpack::collect::http::HttpClient;
use auditpack::collect::retry::RetryPolicy;
use auditpack::collect::{collect_all, CollectContext};
use auditpack::config::Config;
use auditpack::evidence::EvidenceWriter;
use auditpack::simulate::{SimOptions, Simulator, Tenant};
use auditpack::sources::build_collectors;
use auditpack::sources::m365::limits::Limits;

fn serve(users: usize, devices: usize, latency: Duration) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let tenant = Tenant::synthetic(users, devices, chrono::Utc::now());
        let sim = Simulator::start(
            tenant,
            SimOptions {
                latency,
                ..SimOptions::default()
            },
        )
        .await
        .expect("simulator starts");
        println!("{}", sim.base_url());
        std::io::stdout().flush().expect("flush");
        // Serve until the parent closes stdin.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                line.clear();
            }
        })
        .await
        .expect("stdin watcher");
        sim.stop().await;
    });
}

/// Shortest time `pages` sequential requests can take under a bucket of
/// `capacity` per `period` with `latency` each.
fn chain(pages: usize, latency: Duration, capacity: u32, period: Duration) -> Duration {
    let by_latency = latency * pages as u32;
    let over = pages.saturating_sub(capacity as usize) as u32;
    let by_limit = period.mul_f64(f64::from(over) / f64::from(capacity)) + latency;
    by_latency.max(by_limit)
}

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        serve(
            common::arg("--users", 100_000_usize),
            common::arg("--devices", 30_000_usize),
            Duration::from_millis(common::arg("--latency-ms", 50)),
        );
        return;
    }
    let users = common::arg("--users", 100_000);
    let devices = common::arg("--devices", 30_000);
    let latency = Duration::from_millis(common::arg("--latency-ms", 50));
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args([
            "--serve",
            "--users",
            &users.to_string(),
            "--devices",
            &devices.to_string(),
        ])
        .args(["--latency-ms", &latency.as_millis().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("simulator process starts");
    let mut base = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut base)
        .expect("simulator prints its URL");
    let base = base.trim().to_owned();

    let dir = tempfile::tempdir().expect("tempdir");
    let creds = SimOptions::default().credentials;
    std::fs::write(dir.path().join("graph.secret"), &creds.graph_secret).expect("write");
    let config = format!(
        r#"[organisation]
name = "Bench"
frameworks = ["soc2"]
store = "store"

[sources.m365]
type = "m365"
tenant_id = "{}"
client_id = "{}"
client_secret_file = "graph.secret"
authority_url = "{base}"
graph_url = "{base}"
defender_url = "{base}"
protection_state = "export"
export_poll_interval = "1s"
"#,
        creds.tenant_id, creds.graph_client_id
    );
    std::fs::write(dir.path().join("auditpack.toml"), config).expect("write");
    let config = Config::load(&dir.path().join("auditpack.toml")).expect("config");
    let collectors = build_collectors(&config.sources).expect("collectors");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let run_dir = dir.path().join("run");
    let evidence = Arc::new(EvidenceWriter::open(&run_dir).expect("evidence"));
    let ctx = CollectContext {
        http: HttpClient::new(RetryPolicy::default(), 32).expect("client"),
        evidence,
    };
    let started = Instant::now();
    let reports = runtime.block_on(collect_all(&collectors, &ctx));
    let wall = started.elapsed();
    drop(child.stdin.take());
    let _ = child.wait();

    let m365 = &reports["m365"];
    let limits = Limits::default();
    let pages = |d: &str| m365.datasets.get(d).map_or(0, |r| r.pages);
    let poll = Duration::from_secs(1);
    let l = |limit: auditpack::sources::m365::limits::Limit| (limit.requests, limit.period);
    let mut chains = [
        (
            "users",
            chain(
                pages("users"),
                latency,
                l(limits.users).0,
                l(limits.users).1,
            ),
        ),
        (
            "userRegistrationDetails",
            chain(
                pages("userRegistrationDetails"),
                latency,
                l(limits.identity_reports).0,
                l(limits.identity_reports).1,
            ),
        ),
        (
            "managedDevices + export job",
            chain(
                pages("managedDevices"),
                latency,
                l(limits.intune).0,
                l(limits.intune).1,
            ) + (latency + poll) * pages("protectionStateExportJob").saturating_sub(1) as u32
                + latency * 2,
        ),
        (
            "defenderMachines + defenderAvInfo",
            chain(
                pages("defenderMachines") + pages("defenderAvInfo"),
                latency,
                l(limits.defender_per_minute).0,
                l(limits.defender_per_minute).1,
            ),
        ),
        (
            "access reviews",
            latency
                * (pages("accessReviewDefinitions")
                    + pages("accessReviewInstances")
                    + pages("accessReviewDecisions")) as u32,
        ),
    ];
    chains.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    let critical = chains[0].1;
    let rss_mib = common::peak_rss().unwrap_or(0.0) / common::MIB;
    println!(
        "m365 collection: {users} users, {devices} devices, {} ms latency per request",
        latency.as_millis()
    );
    for (name, report) in &m365.datasets {
        println!(
            "  {name:<28} {:?} {:>5} pages {:>7} records",
            report.status, report.pages, report.records
        );
    }
    println!(
        "critical path: {:.1} s ({})",
        critical.as_secs_f64(),
        chains[0].0
    );
    println!("wall time:     {:.1} s", wall.as_secs_f64());
    println!(
        "ratio:         {:.3} (target <= 1.3)",
        wall.as_secs_f64() / critical.as_secs_f64()
    );
    println!("peak RSS:      {:.1} MiB (target < 256 MiB)", rss_mib);
    let ratio = wall.as_secs_f64() / critical.as_secs_f64();
    common::figure(
        "collect.wall_vs_critical_path",
        ratio,
        "x",
        common::Target::AtMost(1.3),
    );
    common::figure(
        "collect.peak_rss",
        rss_mib,
        "MiB",
        common::Target::AtMost(256.0),
    );
    if m365.status != auditpack::evidence::SourceStatus::Complete {
        eprintln!("collection incomplete: {:?}", m365.reason);
        std::process::exit(1);
    }
}
