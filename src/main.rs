//! The `auditpack` binary: parse arguments, call the library, print once, and
//! map the outcome to an exit code (0 all satisfied or valid, 1 findings or
//! invalid, 2 could not do the job).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use auditpack::commands::terminal_safe as sanitize;
use auditpack::config::Config;
use auditpack::evaluate::{all_satisfied, count_by_status, ControlResult};
use auditpack::package::{
    generate_key, verify_with, PayloadCheck, Reevaluation, VerifyOptions, VerifyReport, NAMESPACE,
    SIGNATURE_FILE,
};
use auditpack::pipeline::{self, RunOptions};
use auditpack::progress;
use auditpack::secret::SecretRef;
use cli::{
    AlertsAction, Cli, Command, ControlsAction, DocumentsAction, FleetAction, HistoryAction,
    StoreAction,
};

/// Output gathered while a command runs and written once at the end, so a
/// closed pipe (`| head`) cannot interrupt the work.
#[derive(Default)]
struct Out(String);

macro_rules! say {
    ($out:expr) => {
        $out.0.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out.0, $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = match logging(cli.log_format.as_deref()) {
        Ok(logging) => logging,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mut out = Out::default();
    let result = dispatch(cli.command, &mut out);
    logging.finish();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            emit(&out);
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    emit(&out);
    code
}

/// Progress lines when stderr is a terminal, log lines otherwise (or as
/// `--log-format` / `AUDITPACK_LOG_FORMAT` say), never both.
fn logging(flag: Option<&str>) -> Result<progress::Logging> {
    use std::io::IsTerminal as _;
    let flag = flag.map(str::parse).transpose()?;
    let format = progress::format_from_env(flag)?;
    let term = std::env::var("TERM").ok();
    let output = progress::Output::choose(format, std::io::stderr().is_terminal(), term.as_deref());
    let (filter, origin) = progress::filter_from_env();
    Ok(progress::install(output, &filter, origin)?)
}

/// Write the gathered output; a reader that went away is not an error.
fn emit(out: &Out) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(out.0.as_bytes());
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn dispatch(command: Command, out: &mut Out) -> Result<ExitCode> {
    match command {
        Command::Run {
            config,
            as_of,
            algorithm,
        } => {
            let config = Config::load(&config)?;
            let as_of = as_of.as_deref().map(parse_as_of).transpose()?;
            let options = RunOptions {
                as_of,
                algorithms: algorithms(&algorithm),
                ..RunOptions::default()
            };
            let runtime = runtime()?;
            let outcome = match pipeline::run(&config, &options, &runtime) {
                Ok(outcome) => outcome,
                Err(e) => {
                    if let Some(alerts) = runtime.block_on(pipeline::alert_could_not_run(
                        &config,
                        &e.to_string(),
                        &options,
                    )) {
                        print_alerts(out, &alerts);
                    }
                    return Err(e.into());
                }
            };
            print_sources(out, &outcome.manifest.sources);
            print_summary(out, &outcome.results);
            let d = &outcome.drift;
            match &d.previous {
                Some(p) => say!(
                    out,
                    "\nchanges since {} ({}): {} regression(s), {} fix(es), {} lost evidence, {} source(s) lost (results/drift.json)",
                    sanitize(&p.run_id),
                    p.finished_at,
                    d.regressions.len(),
                    d.fixes.len(),
                    d.lost_evidence.len(),
                    d.sources_lost.len()
                ),
                None => say!(
                    out,
                    "\nfirst run of this organisation in the store: nothing to compare with"
                ),
            }
            say!(out, "\nrun folder: {}", outcome.run_dir.display());
            say!(out, "package:    {}", outcome.package.display());
            say!(out, "zip:        {}", outcome.archive.display());
            if let Some(stored) = &outcome.stored {
                for run in &stored.resumed {
                    say!(out, "stored an earlier run left unfinished: {run}");
                }
                if stored.aborted > 0 {
                    say!(
                        out,
                        "aborted {} unfinished upload(s) of earlier runs",
                        stored.aborted
                    );
                }
                for object in &stored.record.objects {
                    say!(
                        out,
                        "stored:     {}/{}",
                        stored.location,
                        sanitize(&object.key)
                    );
                }
                say!(
                    out,
                    "retention:  {} until {}{}",
                    stored.record.mode,
                    stored.record.retain_until,
                    if stored.record.legal_hold {
                        ", legal hold on"
                    } else {
                        ""
                    }
                );
            }
            if !outcome.signed {
                say!(
                    out,
                    "warning: no [signing] in the config, so the package is not signed"
                );
            }
            print_alerts(out, &outcome.alerts);
            Ok(exit_for(&outcome.results))
        }
        Command::Fleet {
            action:
                FleetAction::Run {
                    config,
                    organisations,
                    shard,
                    resume,
                    as_of,
                },
        } => {
            let fleet = auditpack::fleet::FleetFile::load(&config)?;
            let as_of = as_of.as_deref().map(parse_as_of).transpose()?;
            let options = auditpack::fleet::FleetOptions {
                organisations,
                shard,
                resume,
                run: RunOptions {
                    as_of,
                    ..RunOptions::default()
                },
            };
            let outcome = auditpack::fleet::run(&fleet, &options, &runtime()?)?;
            print_fleet(out, &outcome, shard);
            Ok(ExitCode::from(outcome.exit_code()))
        }
        Command::Package {
            run,
            config,
            algorithm,
        } => {
            let config = Config::load(&config)?;
            let (package, archive) = pipeline::package_run(&run, &config, &algorithms(&algorithm))?;
            say!(out, "package: {}", package.display());
            say!(out, "zip:     {}", archive.display());
            if config.signing.is_none() {
                say!(
                    out,
                    "warning: no [signing] in the config, so the package is not signed"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            out: out_dir,
            fleet: true,
        } => {
            let demo = auditpack::demo::demo_fleet(&out_dir, &runtime()?)?;
            say!(
                out,
                "auditpack demo --fleet: {} client organisations, each its own simulated Microsoft 365 tenant\n",
                demo.fleet.organisations.len()
            );
            print_fleet(out, &demo.fleet, None);
            let me = self_command();
            say!(
                out,
                "\nfleet file:      {}",
                absolute(&demo.config).display()
            );
            say!(
                out,
                "signing key:     {} ({})",
                demo.fingerprint,
                auditpack::demo::DEMO_IDENTITY
            );
            say!(out, "allowed_signers: {}", demo.allowed_signers.display());
            if let Some(package) = demo
                .fleet
                .organisations
                .iter()
                .find_map(|o| o.package.as_ref())
            {
                say!(out, "\nVerify any organisation's package, e.g.:");
                say!(
                    out,
                    "  {me} verify {} --allowed-signers {} --identity {}",
                    absolute(package).display(),
                    absolute(&demo.allowed_signers).display(),
                    auditpack::demo::DEMO_IDENTITY
                );
            }
            Ok(ExitCode::from(demo.fleet.exit_code()))
        }
        Command::Demo {
            out: out_dir,
            fleet: false,
        } => {
            let demo = auditpack::demo::demo(&out_dir, &runtime()?)?;
            say!(out, "auditpack demo: Contoso Dental (simulated Microsoft 365 tenant and NinjaOne RMM)\n");
            print_sources(out, &demo.run.manifest.sources);
            print_summary(out, &demo.run.results);
            say!(out, "\nconfig:          {}", demo.config.display());
            say!(out, "run folder:      {}", demo.run.run_dir.display());
            say!(out, "package:         {}", demo.run.package.display());
            say!(out, "zip:             {}", demo.run.archive.display());
            say!(
                out,
                "signing key:     {} ({})",
                demo.fingerprint,
                auditpack::demo::DEMO_IDENTITY
            );
            say!(out, "allowed_signers: {}", demo.allowed_signers.display());
            say!(out);
            print_verify(out, &demo.verify);
            let signers = absolute(&demo.allowed_signers);
            let package = absolute(&demo.run.package);
            say!(
                out,
                "\nAn auditor verifies the package with stock tools, from the package folder:"
            );
            say!(out, "  cd {}", package.display());
            say!(out,
                "  ssh-keygen -Y verify -f {} -I {} -n {NAMESPACE} -s {SIGNATURE_FILE} < tagmanifest-sha256.txt",
                signers.display(),
                auditpack::demo::DEMO_IDENTITY
            );
            say!(
                out,
                "  sha256sum -c tagmanifest-sha256.txt && sha256sum --quiet -c manifest-sha256.txt"
            );
            let me = self_command();
            say!(out, "or with auditpack:");
            say!(
                out,
                "  {me} verify {} --allowed-signers {} --identity {}",
                package.display(),
                signers.display(),
                auditpack::demo::DEMO_IDENTITY
            );
            say!(
                out,
                "\nThe gaps by the party that must act, and the reports:"
            );
            say!(out, "  {me} gaps {}", absolute(&demo.run.run_dir).display());
            say!(
                out,
                "  {}",
                absolute(&demo.run.run_dir.join("reports/report.html")).display()
            );
            say!(
                out,
                "\nThe documents the manual controls still need, and the sidecar for each:"
            );
            say!(
                out,
                "  {me} documents --config {}",
                absolute(&demo.config).display()
            );
            Ok(if demo.verify.is_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Evaluate { run } => {
            let catalog = auditpack::catalog::Catalog::builtin()?;
            let results = pipeline::evaluate_run(&run, &catalog)?;
            // Keep the rendered reports in step with the new results.
            let reports = auditpack::report::ReportOptions {
                formats: auditpack::report::Format::RENDERED.to_vec(),
            };
            auditpack::report::write_reports(&run, &reports)?;
            print_summary(out, &results);
            Ok(exit_for(&results))
        }
        Command::Report { run, format } => {
            let formats = format
                .iter()
                .map(|f| f.parse::<auditpack::report::Format>())
                .collect::<Result<Vec<_>, _>>()?;
            let options = auditpack::report::ReportOptions { formats };
            for path in auditpack::report::write_reports(&run, &options)? {
                say!(out, "wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            package,
            config,
            allowed_signers,
            identity,
            tsa_ca,
            reevaluate,
        } => {
            let text = package.to_string_lossy().into_owned();
            if text.starts_with("s3://") {
                let Some((bucket, key)) = auditpack::store::parse_object_url(&text) else {
                    anyhow::bail!("{} is not s3://bucket/key", sanitize(&text));
                };
                let store = s3_store(config.as_deref(), Some(&bucket))?;
                let runtime = runtime()?;
                let store = runtime.block_on(auditpack::store::S3Store::connect(&store))?;
                let (object, info) =
                    auditpack::store::RemoteObject::open(&store, &key, runtime.handle().clone())?;
                let report = auditpack::package::verify_remote(
                    &object,
                    &VerifyOptions {
                        allowed_signers,
                        identity,
                        tsa_certificates: tsa_ca,
                    },
                    reevaluate.then_some(&Reevaluation as &dyn PayloadCheck),
                )?;
                print_verify(out, &report);
                print_lock(out, &info.lock);
                return Ok(if report.is_valid() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let report = verify_with(
                &package,
                &VerifyOptions {
                    allowed_signers,
                    identity,
                    tsa_certificates: tsa_ca,
                },
                reevaluate.then_some(&Reevaluation as &dyn PayloadCheck),
            )?;
            print_verify(out, &report);
            Ok(if report.is_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Probe { out: out_file } => {
            let report = auditpack::sources::endpoint_reports::probe::probe();
            let mut json =
                serde_json::to_vec_pretty(&report).context("cannot encode the report")?;
            json.push(b'\n');
            let schema = auditpack::sources::endpoint_reports::schema::Schema::v1()
                .map_err(|e| anyhow::anyhow!("endpoint schema: {e}"))?;
            let value: serde_json::Value = serde_json::from_slice(&json)?;
            let errors = schema.validate(&value);
            if !errors.is_empty() {
                anyhow::bail!(
                    "the probe produced an invalid report: {}",
                    errors.join("; ")
                );
            }
            match out_file {
                Some(path) => {
                    auditpack::evidence::write_atomic(&path, &json)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    say!(out, "endpoint report: {}", path.display());
                }
                None => out.0.push_str(&String::from_utf8_lossy(&json)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Controls {
            action,
            framework,
            owner,
            ownership,
            config,
        } => {
            use auditpack::commands::{controls, parse_owner};
            let catalog = auditpack::catalog::Catalog::builtin()?;
            let config = config.map(|p| Config::load(&p)).transpose()?;
            let view = controls::View::new(&catalog, config.as_ref(), ownership.as_deref())?;
            match action {
                None => {
                    let owner = owner.as_deref().map(parse_owner).transpose()?;
                    let rows = view.list(framework.as_deref(), owner)?;
                    out.0.push_str(&controls::render_list(&rows));
                }
                Some(ControlsAction::Show { id }) => {
                    let details = view.show(&id, framework.as_deref())?;
                    out.0.push_str(&controls::render_show(&details));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Documents {
            action,
            config,
            framework,
            owner,
        } => {
            use auditpack::commands::{controls, documents, parse_owner};
            let catalog = auditpack::catalog::Catalog::builtin()?;
            let config = Config::load(&config)?;
            let view = controls::View::new(&catalog, Some(&config), None)?;
            let now = chrono::Utc::now();
            match action {
                None => {
                    let owner = owner.as_deref().map(parse_owner).transpose()?;
                    let found = documents::documents(
                        &catalog,
                        &view,
                        &config,
                        framework.as_deref(),
                        owner,
                        now,
                    )?;
                    out.0.push_str(&documents::render(&found));
                    Ok(if found.complete() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                Some(DocumentsAction::Template {
                    file,
                    controls,
                    title,
                    owner,
                }) => {
                    let owner = owner.as_deref().map(parse_owner).transpose()?;
                    let path = documents::write_template(
                        &view,
                        &documents::TemplateRequest {
                            document: &file,
                            controls: &controls,
                            title: title.as_deref(),
                            owner,
                        },
                        now,
                    )?;
                    say!(
                        out,
                        "wrote {}; check it against the document, then run `auditpack run`",
                        sanitize(&path.display().to_string())
                    );
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Gaps { run, owner } => {
            use auditpack::commands::{gaps, parse_owner, read_results};
            let owner = owner.as_deref().map(parse_owner).transpose()?;
            let results = read_results(&run)?;
            let found = gaps::gaps(&results, owner);
            out.0.push_str(&gaps::render(&found));
            Ok(if found.gaps.is_empty() && found.unseen.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Schedule {
            scheduler,
            config,
            at,
            time_zone,
            randomized_delay,
            binary,
            user,
            shards,
            image,
            namespace,
            storage,
            out: out_dir,
        } => {
            use auditpack::commands::schedule;
            let scheduler: schedule::Scheduler = scheduler.parse()?;
            let plan = schedule::plan(&config)?;
            let defaults = schedule::Options::default();
            let options = schedule::Options {
                at: schedule::parse_at(&at)?,
                time_zone,
                randomized_delay_minutes: randomized_delay,
                binary,
                user,
                shards,
                image: image.unwrap_or(defaults.image),
                namespace,
                storage,
            };
            let units = schedule::units(&plan, scheduler, &options)?;
            for s in &plan.secrets {
                if !s.path.is_file() {
                    eprintln!(
                        "warning: secret file {} ({}) does not exist yet",
                        sanitize(&s.path.display().to_string()),
                        sanitize(&s.key)
                    );
                }
            }
            match out_dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    for unit in &units {
                        let path = dir.join(&unit.name);
                        auditpack::evidence::write_atomic(&path, unit.text.as_bytes())
                            .with_context(|| format!("cannot write {}", path.display()))?;
                        say!(out, "wrote {}", path.display());
                    }
                }
                None => {
                    for (i, unit) in units.iter().enumerate() {
                        if units.len() > 1 {
                            if i > 0 {
                                say!(out);
                            }
                            say!(out, "# ==> {} <==", unit.name);
                        }
                        out.0.push_str(&unit.text);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History {
            action,
            config,
            org,
            since,
            json,
        } => {
            use auditpack::history::index::{Index, RunFilter};
            let runtime = runtime()?;
            let scope = history_scope(&config, &runtime)?;
            let index = match action {
                Some(HistoryAction::Rebuild) => {
                    let index = Index::rebuild(&scope)?;
                    let runs = index.runs(&RunFilter::default())?;
                    say!(
                        out,
                        "rebuilt {} from the store: {} run(s)",
                        scope.index_path().display(),
                        runs.len()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                None => Index::open(&scope)?,
            };
            let filter = RunFilter {
                organisation: org,
                since: since
                    .as_deref()
                    .map(auditpack::commands::history::parse_since)
                    .transpose()?,
            };
            let rows = index.runs(&filter)?;
            if json {
                out.0
                    .push_str(&auditpack::commands::history::render_json(&rows)?);
            } else {
                if let Some(why) = index.rebuilt() {
                    say!(out, "(history index rebuilt from the store: {why})");
                }
                out.0.push_str(&auditpack::commands::history::render(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Kpis {
            config,
            org,
            format,
            from,
            to,
        } => {
            use auditpack::trends;
            let org = auditpack::commands::trends::organisation(&config, org.as_deref())?;
            let range = match (from.as_deref(), to.as_deref()) {
                (None, None) => None,
                (f, t) => {
                    let p = trends::Period::dates(
                        f.unwrap_or("1970-01-01"),
                        t.unwrap_or("9999-12-31"),
                    )?;
                    Some((p.start(), p.end()))
                }
            };
            let store = auditpack::history::LocalStore::new(&org.store);
            let runs = trends::load_runs(&store, &org.name, range, &org.settings)?;
            if format == "json" {
                out.0.push_str(&trends::export::json(&org.name, &runs)?);
            } else {
                out.0.push_str(&trends::export::csv(&runs));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Qbr {
            config,
            org,
            quarter,
            from,
            to,
            out: out_dir,
        } => {
            use auditpack::trends;
            let org = auditpack::commands::trends::organisation(&config, org.as_deref())?;
            let period = match (quarter, from, to) {
                (Some(q), _, _) => trends::Period::quarter(&q)?,
                (None, Some(f), Some(t)) => trends::Period::dates(&f, &t)?,
                _ => anyhow::bail!("give --quarter (e.g. 2026Q4), or --from and --to"),
            };
            let review = trends::qbr::build(&org, &period)?;
            for path in trends::qbr::write(&review, &out_dir)? {
                say!(out, "wrote {}", sanitize(&path.display().to_string()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dashboard {
            config,
            out: out_dir,
            overdue_hours,
            with_qbr,
            as_of,
        } => {
            use auditpack::trends;
            let now = match as_of {
                Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                    .with_context(|| format!("--as-of {t:?} is not an RFC 3339 time"))?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let (fleet, store, orgs) = auditpack::commands::trends::fleet(&config)?;
            let written = trends::dashboard::write(
                &orgs,
                &trends::dashboard::Options {
                    fleet,
                    store,
                    now,
                    overdue_hours,
                    with_qbr,
                },
                &out_dir,
            )?;
            say!(
                out,
                "wrote {} ({} organisation(s), {} without runs, {} file(s))",
                sanitize(&out_dir.join("index.html").display().to_string()),
                written.organisations,
                written.never_run,
                written.files
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Store { action, config } => {
            let settings = s3_store(Some(&config), None)?;
            let runtime = runtime()?;
            let store = runtime.block_on(auditpack::store::S3Store::connect(&settings))?;
            match action {
                StoreAction::List { org } => {
                    let org = org.map(|o| pipeline::slug(&o));
                    let packages = runtime.block_on(store.list_packages(org.as_deref()))?;
                    say!(out, "{} package(s) in {}", packages.len(), store.location());
                    for p in &packages {
                        let key = store.relative(&p.key).unwrap_or(&p.key);
                        say!(
                            out,
                            "{}  {} bytes  {} until {}{}",
                            sanitize(key),
                            p.bytes,
                            p.lock.mode.as_deref().unwrap_or("NOT LOCKED"),
                            p.lock.retain_until.as_deref().unwrap_or("-"),
                            if p.lock.legal_hold {
                                "  legal hold"
                            } else {
                                ""
                            }
                        );
                    }
                }
                StoreAction::Get { key, out: dest } => {
                    let full = match auditpack::store::parse_object_url(&key) {
                        Some((bucket, k)) if bucket == store.location().bucket => k,
                        Some((bucket, _)) => anyhow::bail!(
                            "{} is in bucket {}, not the config's {}",
                            sanitize(&key),
                            sanitize(&bucket),
                            store.location().bucket
                        ),
                        None => store.key(key.trim_start_matches('/')),
                    };
                    let name = full.rsplit('/').next().unwrap_or("object");
                    if name.is_empty() || name == ".." || name == "." {
                        anyhow::bail!("{} does not name an object", sanitize(&key));
                    }
                    let dest = dest.unwrap_or_else(|| std::path::PathBuf::from(name));
                    let sha = runtime.block_on(store.download(&full, &dest))?;
                    say!(out, "wrote {} (SHA-256 {sha})", dest.display());
                }
                StoreAction::Summaries => {
                    let summaries = runtime.block_on(store.list_summaries())?;
                    say!(
                        out,
                        "{} run summary(ies) in {}",
                        summaries.len(),
                        store.location()
                    );
                    for s in &summaries {
                        let counts: Vec<String> = s
                            .counts
                            .by_status
                            .iter()
                            .map(|(k, v)| format!("{} {v}", k.as_str()))
                            .collect();
                        say!(
                            out,
                            "{}  {}  {}  {}",
                            s.run_id,
                            sanitize(&s.organisation),
                            s.finished_at,
                            counts.join(", ")
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts {
            action,
            config,
            org,
        } => {
            use auditpack::commands::alerts;
            let target = alerts::target(&config, org.as_deref())?;
            let Some(AlertsAction::Resend { ids }) = action else {
                let found = auditpack::alert::undelivered(&target.store);
                out.0.push_str(&alerts::render(&target, &found));
                return Ok(ExitCode::SUCCESS);
            };
            let Some(channels) = &target.config else {
                anyhow::bail!(
                    "{} has no [alerts]: there is no channel to send to",
                    target.file.display()
                );
            };
            let runtime = runtime()?;
            let report = runtime.block_on(auditpack::alert::resend(
                channels,
                &target.store,
                &ids,
                &auditpack::collect::retry::RetryPolicy::default(),
            ))?;
            if report.deliveries.is_empty() {
                say!(out, "alerts:     nothing failed or queued to send");
            }
            print_alerts(out, &report);
            Ok(if report.undelivered() > 0 || !report.problems.is_empty() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Diff { run_a, run_b } => {
            use auditpack::commands::{diff, read_run};
            let (a, b) = (read_run(&run_a)?, read_run(&run_b)?);
            let changes = diff::compare(&a, &b)?;
            out.0.push_str(&diff::render(&changes));
            Ok(if changes.regressed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Keygen {
            out: key_path,
            identity,
            passphrase_env,
        } => {
            let passphrase = passphrase_env
                .map(|v| SecretRef::Env(v).resolve())
                .transpose()?;
            let pair = generate_key(
                &key_path,
                &identity,
                passphrase.as_ref().map(|p| p.expose()),
            )?;
            say!(out, "private key: {}", key_path.display());
            say!(out, "fingerprint: {}", pair.signer.fingerprint());
            say!(
                out,
                "allowed_signers line (give it to your auditors out of band):"
            );
            say!(out, "{}", pair.signer.allowed_signers_line()?.trim_end());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit_for(results: &[ControlResult]) -> ExitCode {
    if all_satisfied(results) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_fleet(
    out: &mut Out,
    outcome: &auditpack::fleet::FleetOutcome,
    shard: Option<auditpack::fleet::Shard>,
) {
    let shard = shard.map(|s| format!(", shard {s}")).unwrap_or_default();
    say!(
        out,
        "fleet {}: {} organisation(s){shard}\n",
        sanitize(&outcome.name),
        outcome.organisations.len()
    );
    let names: Vec<String> = outcome
        .organisations
        .iter()
        .map(|o| sanitize(&o.name))
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    say!(
        out,
        "{:<width$}  {:<8}  {:<28}  package",
        "organisation",
        "result",
        "controls failing"
    );
    for (o, name) in outcome.organisations.iter().zip(&names) {
        let controls = match o.satisfied {
            None => "-".to_owned(),
            Some(_) => format!("{} failing, {} inconclusive", o.failing, o.inconclusive),
        };
        let package = o
            .package
            .as_ref()
            .map_or_else(|| "-".to_owned(), |p| p.display().to_string());
        say!(
            out,
            "{name:<width$}  {:<8}  {controls:<28}  {}",
            o.result.word(),
            sanitize(&package)
        );
        if let Some(reason) = o.result.reason() {
            say!(out, "{:<width$}  {}", "", sanitize(&reason));
        }
        for note in &o.notes {
            say!(out, "{:<width$}  note: {}", "", sanitize(note));
        }
        if let Some(stored) = &o.stored {
            for run in &stored.resumed {
                say!(
                    out,
                    "{:<width$}  stored an earlier run left unfinished: {}",
                    "",
                    sanitize(run)
                );
            }
            say!(
                out,
                "{:<width$}  stored in {}: {} until {}{}",
                "",
                stored.location,
                stored.record.mode,
                stored.record.retain_until,
                if stored.record.legal_hold {
                    ", legal hold on"
                } else {
                    ""
                }
            );
        }
        if let Some(alerts) = &o.alerts {
            let undelivered = alerts.undelivered();
            if !alerts.items.is_empty() || undelivered > 0 || !alerts.problems.is_empty() {
                say!(
                    out,
                    "{:<width$}  alerts: {} new item(s), {} not delivered, {} problem(s)",
                    "",
                    alerts.items.len(),
                    undelivered,
                    alerts.problems.len()
                );
            }
        }
    }
    if let Some(alerts) = &outcome.alerts {
        say!(out, "\nfleet summary");
        print_alerts(out, alerts);
    }
}

fn print_sources(out: &mut Out, sources: &BTreeMap<String, auditpack::evidence::SourceReport>) {
    say!(out, "sources:");
    for (name, s) in sources {
        let status = serde_json::to_value(s.status).ok();
        let status = status.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
        let records: usize = s.datasets.values().map(|d| d.records).sum();
        let pages: usize = s.datasets.values().map(|d| d.pages).sum();
        say!(
            out,
            "  {name:<10} {:<9} {status:<9} {records} records in {pages} pages",
            s.source_type
        );
        if let Some(reason) = &s.reason {
            say!(out, "             {}", sanitize(reason));
        }
    }
}

fn print_summary(out: &mut Out, results: &[ControlResult]) {
    let mut frameworks: Vec<&str> = results.iter().map(|r| r.framework.as_str()).collect();
    frameworks.dedup();
    say!(out, "\ncontrols by status:");
    for f in frameworks {
        let of: Vec<ControlResult> = results
            .iter()
            .filter(|r| r.framework == f)
            .cloned()
            .collect();
        let counts: Vec<String> = count_by_status(&of)
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        say!(
            out,
            "  {f:<8} {:>3} controls: {}",
            of.len(),
            counts.join(", ")
        );
    }
    say!(out, "\ncontrols by owner:");
    let mut by_owner: BTreeMap<&str, BTreeMap<auditpack::evaluate::Status, usize>> =
        BTreeMap::new();
    for r in results {
        *by_owner
            .entry(r.owner.as_str())
            .or_default()
            .entry(r.status)
            .or_insert(0) += 1;
    }
    for (owner, counts) in by_owner {
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        say!(out, "  {owner:<10} {}", counts.join(", "));
    }
    let found = auditpack::commands::gaps::gaps(results, None);
    if !found.gaps.is_empty() {
        say!(
            out,
            "\ngaps to fix (each failing user or device once, under the party that must act):"
        );
        for g in &found.gaps {
            let names: Vec<&str> = g.failing.iter().take(5).map(|s| s.name.as_str()).collect();
            let more = g.failing.len().saturating_sub(names.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let what = if names.is_empty() {
                "fails as a whole".to_owned()
            } else {
                sanitize(&names.join("; "))
            };
            say!(
                out,
                "  [{}] {}: {what}{more} ({} control(s))",
                g.responsible,
                g.title,
                g.controls.len()
            );
        }
    }
    if !found.unseen.is_empty() {
        say!(
            out,
            "\ncannot see (no usable evidence; each once, under the party that must make it visible):"
        );
        for g in &found.unseen {
            let names: Vec<&str> = g.unproven.iter().take(5).map(|s| s.name.as_str()).collect();
            let more = g.unproven.len().saturating_sub(names.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            say!(
                out,
                "  [{}] {}: {}{more}",
                g.responsible,
                g.title,
                sanitize(&names.join("; "))
            );
        }
    }
}

/// The object store a config names, when it names one: an organisation's
/// `auditpack.toml` or a fleet file (`[fleet] store = "s3://..."` with its
/// `[store_s3]`). With it, the local folder its history is indexed in and,
/// for an organisation, its slug.
struct NamedStore {
    settings: auditpack::config::StoreS3,
    root: std::path::PathBuf,
    org: Option<String>,
}

fn named_store(path: &Path) -> Result<Option<NamedStore>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table = toml::from_str::<toml::Table>(&text).ok();
    if let Some(fleet) = table.as_ref().and_then(|t| t.get("fleet")) {
        // Only `[fleet] store` and `[store_s3]` are read: the organisations
        // need not be loadable to read or list the store.
        let Some(location) = fleet
            .get("store")
            .and_then(toml::Value::as_str)
            .and_then(auditpack::config::S3Location::parse)
            .transpose()
            .with_context(|| format!("{}: [fleet] store", path.display()))?
        else {
            return Ok(None);
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let settings = auditpack::config::store_s3_from_toml(
            table.as_ref().and_then(|t| t.get("store_s3")).cloned(),
            location.clone(),
            base,
        )
        .with_context(|| format!("{}: [store_s3]", path.display()))?;
        Ok(Some(NamedStore {
            settings,
            root: auditpack::config::default_staging(&location),
            org: None,
        }))
    } else {
        let config = Config::load(path)?;
        let org = pipeline::slug(&config.organisation.name);
        Ok(config.store_s3.map(|settings| NamedStore {
            settings,
            root: config.organisation.store.clone(),
            org: Some(org),
        }))
    }
}

/// The `[store_s3]` settings of a config (organisation's or fleet's; or,
/// without one, the standard AWS environment alone), for `bucket` when given.
fn s3_store(config: Option<&Path>, bucket: Option<&str>) -> Result<auditpack::config::StoreS3> {
    let mut settings = match config {
        Some(path) => {
            named_store(path)?
                .with_context(|| format!("{}: the store is not an s3:// URL", path.display()))?
                .settings
        }
        None => auditpack::config::store_s3_from_toml(
            None,
            auditpack::config::S3Location {
                bucket: bucket.unwrap_or_default().to_owned(),
                prefix: String::new(),
            },
            Path::new("."),
        )?,
    };
    if let Some(bucket) = bucket {
        settings.location = auditpack::config::S3Location {
            bucket: bucket.to_owned(),
            prefix: String::new(),
        };
    }
    Ok(settings)
}

/// The history a config names: read from the object store when it names
/// one (the index kept in the local staging folder), else from the local store.
fn history_scope(
    config: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<auditpack::history::index::HistoryScope> {
    match named_store(config)? {
        Some(named) => {
            let store = runtime.block_on(auditpack::store::S3Store::connect(&named.settings))?;
            Ok(auditpack::store::history_scope(
                &store,
                &named.root,
                named.org.as_deref(),
                runtime,
            )?)
        }
        None => Ok(auditpack::history::index::HistoryScope::from_config_file(
            config,
        )?),
    }
}

fn print_lock(out: &mut Out, lock: &auditpack::store::LockInfo) {
    match (&lock.mode, &lock.retain_until) {
        (Some(mode), Some(until)) => say!(
            out,
            "object lock: {mode} until {until}{}",
            if lock.legal_hold {
                ", legal hold on"
            } else {
                ""
            }
        ),
        _ if lock.legal_hold => say!(out, "object lock: legal hold only"),
        _ => say!(
            out,
            "object lock: NONE (this object can be deleted or overwritten)"
        ),
    }
}

fn print_verify(out: &mut Out, report: &VerifyReport) {
    if report.is_valid() {
        say!(
            out,
            "verify: VALID ({} files, {} bytes, signed by {})",
            report.files,
            report.bytes,
            report.signer.as_deref().unwrap_or("?")
        );
        if let Some(t) = &report.timestamp {
            let trust = if t.trusted {
                "chains to a TSA certificate you gave"
            } else {
                "TSA not checked against a trusted certificate; pass --tsa-ca"
            };
            say!(
                out,
                "timestamp: {} by {} ({trust})",
                t.time,
                sanitize(&t.authority)
            );
        }
        if let Some(n) = report.reevaluated {
            say!(
                out,
                "reevaluate: {n} controls re-derived from the evidence, all identical"
            );
        }
    } else {
        say!(
            out,
            "verify: INVALID, {} problem(s):",
            report.problems.len()
        );
        for p in &report.problems {
            say!(out, "  - {}", sanitize(p));
        }
    }
}

/// `--as-of`: an RFC 3339 time, or a date (its first instant, UTC).
fn parse_as_of(t: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(time.with_timezone(&chrono::Utc));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    anyhow::bail!(
        "--as-of {t:?} is neither a date (2026-01-01) nor an RFC 3339 time with a zone (2026-01-01T09:30:00Z)"
    )
}

/// The manifest algorithms named by `--algorithm`, besides SHA-256.
fn algorithms(names: &[String]) -> Vec<auditpack::package::Algorithm> {
    names
        .iter()
        .filter(|a| a.as_str() == "sha512")
        .map(|_| auditpack::package::Algorithm::Sha512)
        .collect()
}

/// How to run this binary again: `auditpack` when that name on the PATH is
/// this very program, else its absolute path (a fresh `cargo run` build).
fn self_command() -> String {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "auditpack".to_owned();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("auditpack"))
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|p| p == me)
    });
    if on_path {
        "auditpack".to_owned()
    } else {
        me.display().to_string()
    }
}

fn absolute(p: &Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// One line on what alerting did, and each problem it met (never a secret).
fn print_alerts(out: &mut Out, alerts: &auditpack::alert::AlertReport) {
    use auditpack::alert::DeliveryOutcome;
    use auditpack::sanitize::terminal_safe;
    if alerts.items.is_empty() && alerts.deliveries.is_empty() && alerts.problems.is_empty() {
        return;
    }
    let count = |o: DeliveryOutcome| alerts.deliveries.iter().filter(|d| d.outcome == o).count();
    say!(
        out,
        "alerts:     {} new item(s); {} delivered, {} queued for the next run, {} refused",
        alerts.items.len(),
        count(DeliveryOutcome::Delivered),
        count(DeliveryOutcome::Queued),
        count(DeliveryOutcome::Refused) + count(DeliveryOutcome::GaveUp)
    );
    for d in alerts
        .deliveries
        .iter()
        .filter(|d| d.outcome != DeliveryOutcome::Delivered)
    {
        say!(
            out,
            "  {} ({}): {}",
            d.channel,
            d.id,
            terminal_safe(d.error.as_deref().unwrap_or("not delivered"))
        );
    }
    for p in &alerts.problems {
        say!(out, "  problem: {}", terminal_safe(p));
    }
    if let Some(record) = &alerts.record {
        say!(out, "  record:  {}", record.display());
    }
}
