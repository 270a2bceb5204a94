//! Benchmark: `auditpack fleet run` over a generated fleet (default 200
//! organisations of 300 users and 150 devices, each its own Microsoft 365
//! tenant behind one multi-tenant app, its NinjaOne organization on one
//! shared NinjaOne account and its Datto RMM site on one shared Datto
//! account, 50 ms latency per request, the documented rate limits enforced
//! by the simulator and Datto's kept by the collector), the whole pipeline
//! per organisation: collect, judge, report, package (signed).
//!
//! Printed: the wall time; beside it the bound that the rate limits and the
//! longest organisation's critical path impose (computed from the pages each
//! dataset of each organisation really took: sequential pages at the latency,
//! or the per-tenant bucket's rate when that is slower; and the app's
//! bucket shared by every tenant over all organisations' Graph requests, and
//! the Datto account's bucket shared by every site over all organisations'
//! Datto requests, and the NinjaOne account's pace (NinjaOne publishes no
//! limit; the collector keeps to `requests_per_minute`, default 300, which
//! `--ninja-rpm` sets) over all
//! organisations' NinjaOne requests, and the CPU time the run used spread over the cores:
//! judging, reporting and packaging cannot go faster), their ratio (target <= 1.5), requests per organisation,
//! and peak RSS of this process (target < 512 MiB). The simulator runs in a
//! child process so the RSS is the runner's alone.
//!
//! `cargo bench --bench fleet -- [--orgs N] [--users N] [--devices N]
//! [--latency-ms N] [--concurrency N] [--ninja-rpm N]` (default concurrency: the
//! organisations, at most 64); `AUDITPACK_BENCH_SCALE` scales the
//! organisation count (`scripts/bench.sh --quick`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auditpack::evidence::RunManifest;
use auditpack::fleet::{FleetFile, FleetOptions, OrgResult};
use auditpack::simulate::{FleetSpec, SimOptions, SimRateLimits, Simulator};
use auditpack::sources::m365::limits::{Limit, Limits};

/// The child: serve the fleet, print the base URL, the shared accounts'
/// credentials (one line, tab-separated) and one line per organisation
/// (`tenant id<TAB>NinjaOne organization id<TAB>Datto site uid<TAB>name`),
/// then an empty line; serve until stdin closes.
fn serve(orgs: usize, users: usize, devices: usize, latency: Duration) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let sim = Simulator::start_fleet(FleetSpec {
            organisations: orgs,
            users,
            devices,
            latency,
            rate_limits: SimRateLimits::documented(),
            include_demo: false,
            max_page_size: 999,
            // Every organisation kept once generated: the simulator stands
            // in for remote APIs and should not spend the shared cores
            // generating organisations again.
            cache: orgs,
            ..FleetSpec::default()
        })
        .await
        .expect("simulator starts");
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", sim.base_url()).expect("write");
        let a = sim.fleet_accounts();
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            a.ninja_client_id, a.ninja_secret, a.datto_api_key, a.datto_api_secret
        )
        .expect("write");
        for org in sim.fleet() {
            writeln!(
                out,
                "{}\t{}\t{}\t{}",
                org.tenant_id(),
                org.ninja_organization_id(),
                org.datto_site_uid(),
                org.name()
            )
            .expect("write");
        }
        writeln!(out).expect("write");
        out.flush().expect("flush");
        drop(out);
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

/// The export job's poll interval (`export_poll_interval` in the config).
const EXPORT_POLL: Duration = Duration::from_secs(1);

/// Shortest time `pages` sequential requests can take under a bucket of
/// `limit` with `latency` each.
fn chain(pages: usize, latency: Duration, limit: Limit) -> Duration {
    let by_latency = latency * pages as u32;
    let over = pages.saturating_sub(limit.requests as usize) as u32;
    let by_limit = limit
        .period
        .mul_f64(f64::from(over) / f64::from(limit.requests))
        + latency;
    by_latency.max(by_limit)
}

/// Pages `source` stored for `dataset` in `run`.
fn pages_of(run: &RunManifest, source: &str, dataset: &str) -> usize {
    run.sources
        .get(source)
        .and_then(|s| s.datasets.get(dataset))
        .map_or(0, |r| r.pages)
}

/// One organisation's critical path: its slowest chain of sequential
/// requests (sources and datasets are fetched concurrently, pages of one in
/// order), plus its token request.
///
/// `export` says the protection states came by the Intune export job
/// rather than one request per device (`PER_DEVICE_WORKERS` at a time).
fn critical_path(run: &RunManifest, latency: Duration, export: bool) -> Duration {
    let limits = Limits::default();
    let pages = |d: &str| pages_of(run, "m365", d);
    // NinjaOne: its slowest dataset; Datto: the site check, then the
    // site's device pages.
    let ninja = run.sources.get("ninja").map_or(0, |s| {
        s.datasets.values().map(|d| d.pages).max().unwrap_or(0)
    });
    let datto = pages_of(run, "datto", "site") + pages_of(run, "datto", "devices");
    let chains = [
        chain(pages("users"), latency, limits.users),
        chain(
            pages("userRegistrationDetails"),
            latency,
            limits.identity_reports,
        ),
        chain(pages("managedDevices"), latency, limits.intune),
        if export {
            // The Intune export job, every request a stored page: create,
            // then each poll after a wait of EXPORT_POLL, then the download.
            (latency + EXPORT_POLL) * pages("windowsProtectionState").saturating_sub(2) as u32
                + latency * 2
        } else {
            // One request per device after the device list, eight at a time.
            latency * (pages("managedDevices") + pages("windowsProtectionState").div_ceil(8)) as u32
        },
        chain(
            pages("conditionalAccessPolicies"),
            latency,
            limits.conditional_access,
        ),
        chain(
            pages("defenderMachines") + pages("defenderAvInfo"),
            latency,
            limits.defender_per_minute,
        ),
        latency
            * (pages("accessReviewDefinitions")
                + pages("accessReviewInstances")
                + pages("accessReviewDecisions")) as u32,
        latency * ninja as u32,
        latency * datto as u32,
    ];
    chains.into_iter().max().unwrap_or_default() + latency
}

/// CPU time (user and system) process `pid` (`self` for this one) has used
/// so far, from `/proc/<pid>/stat` (all threads); `None` where there is no
/// such file.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports in USER_HZ, 100 a second on every architecture it runs on.
    Some(Duration::from_secs_f64(ticks / 100.0))
}

fn main() {
    let orgs = ((common::arg("--orgs", 200.0) * common::scale()).round() as usize).max(1);
    let users = common::arg("--users", 300_usize);
    let devices = common::arg("--devices", 150_usize);
    let latency = Duration::from_millis(common::arg("--latency-ms", 50));
    // The pace the NinjaOne collector keeps to (`requests_per_minute`;
    // NinjaOne publishes no limit, 300 is the collector's default).
    let ninja_rpm = common::arg("--ninja-rpm", 300).max(1);
    if std::env::args().any(|a| a == "--serve") {
        serve(orgs, users, devices, latency);
        return;
    }
    // As many organisations at once as it takes for the APIs' limits and
    // the CPU, not the concurrency cap, to bound the run.
    let concurrency = common::arg("--concurrency", orgs.min(64) as u64);
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args(["--serve", "--orgs", &orgs.to_string()])
        .args(["--users", &users.to_string()])
        .args(["--devices", &devices.to_string()])
        .args(["--latency-ms", &latency.as_millis().to_string()])
        .env("AUDITPACK_BENCH_SCALE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("simulator process starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = lines.next().expect("a URL").expect("read");
    let accounts: Vec<String> = lines
        .next()
        .expect("the accounts")
        .expect("read")
        .split('\t')
        .map(str::to_owned)
        .collect();
    let [ninja_id, ninja_secret, datto_key, datto_secret] = &accounts[..] else {
        panic!("four account fields");
    };
    let mut orgs_of_fleet = Vec::new();
    for line in lines {
        let line = line.expect("read");
        if line.is_empty() {
            break;
        }
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        let [tenant, ninja_org, site, name] = fields[..] else {
            panic!("tenant, NinjaOne organization, Datto site and name");
        };
        orgs_of_fleet.push([tenant, ninja_org, site, name].map(str::to_owned));
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let creds = SimOptions::default().credentials;
    for (file, secret) in [
        ("graph.secret", creds.graph_secret.as_str()),
        ("ninja.secret", ninja_secret),
        ("datto.key", datto_key),
        ("datto.secret", datto_secret),
    ] {
        std::fs::write(dir.path().join(file), secret).expect("write");
    }
    auditpack::package::generate_key(&dir.path().join("key"), "bench@auditpack.example", None)
        .expect("key");
    let mut text = format!(
        "[fleet]\nname = \"Bench\"\nstore = \"store\"\nconcurrency = {concurrency}\n\
         frameworks = [\"hipaa\", \"soc2\"]\n\n\
         [signing]\nkey_file = \"key\"\nidentity = \"bench@auditpack.example\"\n\n\
         [sources.m365]\ntype = \"m365\"\nclient_id = \"{}\"\nclient_secret_file = \"graph.secret\"\n\
         authority_url = \"{base}\"\ngraph_url = \"{base}\"\ndefender_url = \"{base}\"\n\
         export_poll_interval = \"{}s\"\n\n\
         [sources.ninja]\ntype = \"ninjaone\"\nbase_url = \"{base}\"\nclient_id = \"{ninja_id}\"\n\
         client_secret_file = \"ninja.secret\"\nrequests_per_minute = {ninja_rpm}\n\n\
         [sources.datto]\ntype = \"datto-rmm\"\nbase_url = \"{base}\"\napi_key_file = \"datto.key\"\n\
         api_secret_file = \"datto.secret\"\n",
        creds.graph_client_id,
        EXPORT_POLL.as_secs()
    );
    for [tenant, ninja_org, site, name] in &orgs_of_fleet {
        text.push_str(&format!(
            "\n[[organisations]]\nname = \"{name}\"\n\
             [organisations.sources.m365]\ntenant_id = \"{tenant}\"\n\
             [organisations.sources.ninja]\norganization_id = {ninja_org}\n\
             [organisations.sources.datto]\nsite_uid = \"{site}\"\n"
        ));
    }
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, text).expect("write");
    let fleet = FleetFile::load(&path).expect("the fleet file loads");
    // `AUDITPACK_BENCH_LOG=<filter>`: the run's JSON log lines on stderr,
    // to see where an organisation's time goes.
    let _logging = std::env::var("AUDITPACK_BENCH_LOG").ok().map(|filter| {
        auditpack::progress::install(
            auditpack::progress::Output::Json,
            &filter,
            "AUDITPACK_BENCH_LOG",
        )
        .expect("log filter")
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    common::reset_peak();
    let child_pid = child.id().to_string();
    let cpu_before = cpu_time("self");
    let sim_before = cpu_time(&child_pid);
    let started = Instant::now();
    let outcome =
        auditpack::fleet::run(&fleet, &FleetOptions::default(), &runtime).expect("the fleet runs");
    let wall = started.elapsed();
    let rss = common::peak_rss().unwrap_or(0.0);
    // Judging, reporting and packaging need the CPU: the run cannot be
    // shorter than the CPU time it used spread over every core.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let used = |before: Option<Duration>, pid: &str| match (before, cpu_time(pid)) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    let runner_cpu = used(cpu_before, "self");
    // The simulator stands in for remote APIs but runs on the same cores:
    // its CPU time is printed apart, and not counted in the bound.
    let simulator_cpu = used(sim_before, &child_pid);
    let cpu = runner_cpu / cores as u32;
    drop(child.stdin.take());
    let _ = child.wait();

    let mut longest = Duration::ZERO;
    let mut requests = 0usize;
    let mut datto_requests = 0usize;
    let mut ninja_requests = 0usize;
    let mut incomplete = 0usize;
    for o in &outcome.organisations {
        if o.result != OrgResult::Complete {
            incomplete += 1;
            eprintln!("{}: {:?}", o.name, o.result);
        }
        let Some(package) = &o.package else { continue };
        let run = RunManifest::read(&package.join("data")).expect("run.json");
        let custody =
            std::fs::read_to_string(package.join("data/custody.jsonl")).expect("custody.jsonl");
        let export = custody.contains("/exportJobs");
        longest = longest.max(critical_path(&run, latency, export));
        datto_requests += pages_of(&run, "datto", "site") + pages_of(&run, "datto", "devices");
        ninja_requests += run
            .sources
            .get("ninja")
            .map_or(0, |s| s.datasets.values().map(|d| d.pages).sum());
        requests += run
            .sources
            .values()
            .flat_map(|s| s.datasets.values())
            .map(|d| d.pages)
            .sum::<usize>()
            + run.sources.len(); // a token per source
    }
    // The app's bucket, shared by every tenant: 130,000 per 10 s.
    let shared = Duration::from_secs(10).mul_f64(requests as f64 / 130_000.0);
    // The Datto account's bucket, shared by every site: the collector's
    // default 500 a minute, full at the start.
    let datto = Duration::from_secs(60).mul_f64(datto_requests.saturating_sub(500) as f64 / 500.0);
    // The NinjaOne account's pace, shared by every organization, full at
    // the start.
    let ninja = Duration::from_secs(60)
        .mul_f64(ninja_requests.saturating_sub(ninja_rpm as usize) as f64 / ninja_rpm as f64);
    let bound = longest.max(shared).max(datto).max(ninja).max(cpu);
    let ratio = wall.as_secs_f64() / bound.as_secs_f64();
    let per_org = requests as f64 / orgs as f64;
    println!(
        "fleet: {orgs} organisations of {users} users and {devices} devices (Microsoft 365, \
         a shared NinjaOne and a shared Datto RMM account), {} ms latency, documented rate \
         limits, NinjaOne paced at {ninja_rpm} a minute, concurrency {concurrency}",
        latency.as_millis()
    );
    println!("wall time:          {:.1} s", wall.as_secs_f64());
    println!(
        "bound:              {:.1} s (longest organisation's critical path {:.1} s; the app's shared bucket {:.1} s; the Datto account's bucket {:.1} s; the NinjaOne account's pace {:.1} s; CPU time over {cores} cores {:.1} s)",
        bound.as_secs_f64(),
        longest.as_secs_f64(),
        shared.as_secs_f64(),
        datto.as_secs_f64(),
        ninja.as_secs_f64(),
        cpu.as_secs_f64()
    );
    println!("ratio:              {ratio:.2} (target <= 1.5)");
    println!(
        "CPU time:           {:.1} s the runner, {:.1} s the simulator (same cores)",
        runner_cpu.as_secs_f64(),
        simulator_cpu.as_secs_f64()
    );
    println!("requests per org:   {per_org:.0} (pages and the token)");
    println!(
        "peak RSS:           {:.0} MiB (target < 512 MiB)",
        rss / common::MIB
    );
    println!("not complete:       {incomplete}");
    common::figure("fleet.wall", wall.as_secs_f64(), "s", common::Target::None);
    common::figure(
        "fleet.bound",
        bound.as_secs_f64(),
        "s",
        common::Target::None,
    );
    common::figure(
        "fleet.wall_vs_bound",
        ratio,
        "x",
        common::Target::AtMost(1.5),
    );
    common::figure(
        "fleet.requests_per_org",
        per_org,
        "req",
        common::Target::None,
    );
    common::figure(
        "fleet.peak_rss",
        rss / common::MIB,
        "MiB",
        common::Target::AtMost(512.0),
    );
    if incomplete > 0 {
        std::process::exit(1);
    }
}
