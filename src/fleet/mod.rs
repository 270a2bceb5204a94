//! `auditpack fleet run`: every organisation of a fleet file, concurrently,
//! in one process, each exactly as `auditpack run` would do it.
//!
//! Every organisation's config is loaded and checked before anything is
//! collected ([`FleetFile::load`]). Then up to `[fleet] concurrency`
//! organisations run at once on one runtime with one HTTP client, so the
//! in-flight cap and every rate-limit bucket that is keyed by app, tenant or
//! RMM account is shared by all of them. Each organisation:
//!
//! 1. takes its lock in the store ([`lock`]); if another run holds it, the
//!    organisation is skipped with a note;
//! 2. puts right what a killed run left ([`recover`]); with `--resume`, it
//!    is skipped when it already has a complete package from today (UTC);
//! 3. reads its secrets and signing key, collects, judges, reports and
//!    packages into `<store>/<slug>/` (the stages of [`crate::pipeline`]).
//!
//! A failure of one organisation (a secret it cannot read, an API that is
//! down, a panic anywhere in its run) is recorded as that organisation's
//! result and the others go on. After its package is sealed (or when it
//! could not run), each organisation alerts its own `[alerts]` channels; when
//! every organisation is done, the new items of all of them go as one fleet
//! summary to the fleet file's `[alerts]`. Each organisation runs inside a `tracing`
//! span `run` with field `organisation = <name>`, as `auditpack run` does,
//! so the progress layer shows one live line per organisation.

mod file;
pub mod lock;
mod merge;
mod recover;
pub mod shard;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::alert::AlertReport;
use crate::collect::http::HttpClient;
use crate::config::did_you_mean;
use crate::error::{Error, Result};
use crate::evaluate::{ControlResult, Status};
use crate::evidence::SourceStatus;
use crate::pipeline::{self, Prepared, RunOptions};
pub use file::{FleetFile, Member, DEFAULT_CONCURRENCY};
use lock::{Acquired, OrgLock};
pub use shard::Shard;

/// Which organisations to run, and how.
#[derive(Clone, Debug, Default)]
pub struct FleetOptions {
    /// Only these organisations (by name, or by store folder name); all when empty.
    pub organisations: Vec<String>,
    /// Only the organisations of this shard.
    pub shard: Option<Shard>,
    /// Skip organisations that already have a complete package from today (UTC).
    pub resume: bool,
    /// The options of each organisation's run.
    pub run: RunOptions,
}

/// How one organisation's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrgResult {
    /// Every source complete, packaged.
    Complete,
    /// Packaged, but some source was partial or failed (the reasons).
    Partial(String),
    /// The organisation could not run at all, or no source gave evidence
    /// (the reason).
    Failed(String),
    /// Not run: another run of it holds its lock (who).
    Running(String),
    /// Not run (`--resume`): it already has today's package.
    DoneToday,
}

impl OrgResult {
    /// The word for the end table: complete, partial, failed or skipped.
    pub fn word(&self) -> &'static str {
        match self {
            OrgResult::Complete => "complete",
            OrgResult::Partial(_) => "partial",
            OrgResult::Failed(_) => "failed",
            OrgResult::Running(_) | OrgResult::DoneToday => "skipped",
        }
    }

    /// The reason or note, if any.
    pub fn reason(&self) -> Option<String> {
        match self {
            OrgResult::Complete => None,
            OrgResult::Partial(r) | OrgResult::Failed(r) => Some(r.clone()),
            OrgResult::Running(who) if who.is_empty() => {
                Some("already running in another process".into())
            }
            OrgResult::Running(who) => Some(format!("already running ({who})")),
            OrgResult::DoneToday => Some("already packaged today (--resume)".into()),
        }
    }
}

/// One organisation's line of the end table.
#[derive(Clone, Debug)]
pub struct OrgOutcome {
    /// Display name.
    pub name: String,
    /// Store folder name.
    pub slug: String,
    /// How it ended.
    pub result: OrgResult,
    /// Controls that fail.
    pub failing: usize,
    /// Controls that are inconclusive.
    pub inconclusive: usize,
    /// Whether every in-scope control passes or is attested; `None` when
    /// the organisation was not judged in this run and no package says.
    pub satisfied: Option<bool>,
    /// Its package (this run's, or today's for `--resume`).
    pub package: Option<PathBuf>,
    /// What was put right before it ran (leftovers of a killed run).
    pub notes: Vec<String>,
    /// What its `[alerts]` did (`None`: not run, or no `[alerts]`).
    pub alerts: Option<AlertReport>,
    /// What it left in the object store (`None`: no S3 store, or not stored).
    pub stored: Option<Arc<pipeline::StoredRun>>,
}

/// What a fleet run did.
#[derive(Debug)]
pub struct FleetOutcome {
    /// `[fleet] name`.
    pub name: String,
    /// One outcome per selected organisation, in fleet order.
    pub organisations: Vec<OrgOutcome>,
    /// What the fleet file's `[alerts]` did with the fleet summary.
    pub alerts: Option<AlertReport>,
}

impl FleetOutcome {
    /// The exit code, with `auditpack run`'s meanings: 2 when any
    /// organisation could not run at all, else 1 when any has failing or
    /// inconclusive controls, else 0. Organisations skipped because another
    /// run holds them count by nothing (that run reports them).
    pub fn exit_code(&self) -> u8 {
        if self
            .organisations
            .iter()
            .any(|o| matches!(o.result, OrgResult::Failed(_)))
        {
            2
        } else if self
            .organisations
            .iter()
            .any(|o| o.satisfied == Some(false))
        {
            1
        } else {
            0
        }
    }
}

/// The organisations `options` select, in fleet order.
///
/// # Errors
/// When `--org` names an organisation the fleet does not have.
pub fn select<'a>(fleet: &'a FleetFile, options: &FleetOptions) -> Result<Vec<&'a Member>> {
    for wanted in &options.organisations {
        if !fleet
            .members
            .iter()
            .any(|m| &m.name == wanted || &m.slug == wanted)
        {
            let names: Vec<&str> = fleet.members.iter().map(|m| m.name.as_str()).collect();
            let hint = did_you_mean(wanted, &names)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            return Err(Error::config(format!(
                "{}: no organisation named `{}`{hint}",
                fleet.path.display(),
                crate::sanitize::terminal_safe(wanted)
            )));
        }
    }
    Ok(fleet
        .members
        .iter()
        .filter(|m| {
            options.organisations.is_empty()
                || options
                    .organisations
                    .iter()
                    .any(|w| w == &m.name || w == &m.slug)
        })
        .filter(|m| options.shard.is_none_or(|s| s.contains(&m.name)))
        .collect())
}

/// Run the selected organisations of a fleet on `runtime`.
///
/// Every selected organisation is prepared (catalog, ownership, sources)
/// before the first request, so a config mistake stops the whole run with
/// nothing collected.
///
/// # Errors
/// On `--org` naming an unknown organisation, an organisation whose config
/// does not check out, or an HTTP client that cannot be built. Anything
/// that goes wrong inside one organisation's run is its result instead.
pub fn run(
    fleet: &FleetFile,
    options: &FleetOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<FleetOutcome> {
    let members = select(fleet, options)?;
    let mut prepared = Vec::new();
    for m in &members {
        let mut p = pipeline::prepare(&m.config, &options.run).map_err(|e| m.config_error(&e))?;
        // The object store's bucket, checked for every organisation before
        // any is collected: evidence that cannot be kept is not collected.
        runtime
            .block_on(p.check_store())
            .map_err(|e| Error::config(format!("organisation `{}`: {e}", m.name)))?;
        prepared.push(Arc::new(p));
    }
    let concurrency = fleet.concurrency.max(1);
    let http = HttpClient::new(
        options.run.retry,
        options.run.max_in_flight.saturating_mul(concurrency),
    )
    .map_err(Error::config)?;
    let slots = Arc::new(Semaphore::new(concurrency));
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let cpu = Arc::new(Semaphore::new(cores));
    let started = Utc::now();
    let holder = format!(
        "pid {} on {}, since {}",
        std::process::id(),
        pipeline::host_name(),
        crate::evidence::format_time(Utc::now())
    );

    let organisations = runtime.block_on(async {
        let mut tasks = Vec::new();
        for (m, p) in members.iter().zip(prepared) {
            let job = Job {
                name: m.name.clone(),
                slug: m.slug.clone(),
                org_dir: m.config.organisation.store.clone(),
                prepared: p,
                http: http.clone(),
                cpu: cpu.clone(),
                options: options.run.clone(),
                resume: options.resume,
                holder: holder.clone(),
            };
            let slots = slots.clone();
            // The span `auditpack run` uses, so progress lines and log lines
            // are keyed by organisation alike (error level: it survives any filter).
            let span = tracing::error_span!("run", organisation = m.name.as_str());
            tasks.push(tokio::spawn(
                async move {
                    let _slot = slots.acquire_owned().await;
                    job.run().await
                }
                .instrument(span),
            ));
        }
        let mut out: Vec<OrgOutcome> = Vec::new();
        for (m, task) in members.iter().zip(tasks) {
            let outcome = match task.await {
                Ok(outcome) => outcome,
                Err(e) => failed(m, format!("internal error: {}", join_error(e))),
            };
            tracing::info!(
                event = "organisation_finished",
                organisation = outcome.name.as_str(),
                result = outcome.result.word(),
                failing = outcome.failing,
                inconclusive = outcome.inconclusive,
                "organisation finished"
            );
            out.push(outcome);
        }
        out
    });
    let alerts = fleet.alerts.as_ref().map(|config| {
        let run_id = format!("{}-fleet", started.format("%Y%m%dT%H%M%SZ"));
        let reports: Vec<(&str, &AlertReport)> = organisations
            .iter()
            .filter_map(|o| o.alerts.as_ref().map(|a| (o.name.as_str(), a)))
            .collect();
        let summary = crate::alert::fleet_summary(&fleet.name, &run_id, started, &reports);
        runtime.block_on(crate::alert::notify_fleet(
            config,
            &fleet.store,
            &run_id,
            summary,
            &options.run.retry,
        ))
    });
    Ok(FleetOutcome {
        name: fleet.name.clone(),
        organisations,
        alerts,
    })
}

/// Everything one organisation's task owns.
struct Job {
    name: String,
    slug: String,
    org_dir: PathBuf,
    prepared: Arc<Prepared>,
    http: HttpClient,
    cpu: Arc<Semaphore>,
    options: RunOptions,
    resume: bool,
    holder: String,
}

impl Job {
    fn outcome(&self, result: OrgResult) -> OrgOutcome {
        OrgOutcome {
            name: self.name.clone(),
            slug: self.slug.clone(),
            result,
            failing: 0,
            inconclusive: 0,
            satisfied: None,
            package: None,
            notes: Vec::new(),
            alerts: None,
            stored: None,
        }
    }

    /// The outcome of an organisation that could not run, after telling
    /// its `[alerts]` channels.
    async fn could_not_run(&self, reason: String) -> OrgOutcome {
        let alerts =
            pipeline::alert_could_not_run(self.prepared.config(), &reason, &self.options).await;
        let mut o = self.outcome(OrgResult::Failed(reason));
        o.alerts = alerts;
        o
    }

    async fn run(self) -> OrgOutcome {
        tracing::info!(event = "organisation_started", "organisation started");
        let (dir, holder) = (self.org_dir.clone(), self.holder.clone());
        let lock = match blocking(move || OrgLock::try_acquire(&dir, &holder)).await {
            Ok(Acquired::Held(lock)) => lock,
            Ok(Acquired::Busy(who)) => return self.outcome(OrgResult::Running(who)),
            Err(e) => return self.could_not_run(e).await,
        };
        let (dir, slug, resume) = (self.org_dir.clone(), self.slug.clone(), self.resume);
        let today = Utc::now().date_naive();
        let before = blocking(move || -> Result<_> {
            let notes = recover::recover(&dir, &slug)?;
            let done = if resume {
                recover::package_of_day(&dir, &slug, today)?
            } else {
                None
            };
            Ok((notes, done))
        })
        .await;
        let (notes, done) = match before {
            Ok(found) => found,
            Err(e) => return self.could_not_run(e).await,
        };
        let mut outcome = if let Some(package) = done {
            let mut o = self.outcome(OrgResult::DoneToday);
            if let Some(results) = packaged_results(&package) {
                count(&mut o, &results);
            }
            o.package = Some(package);
            o
        } else {
            self.collect_and_finish().await
        };
        outcome.notes = notes;
        drop(lock);
        outcome
    }

    async fn collect_and_finish(&self) -> OrgOutcome {
        let prepared = self.prepared.clone();
        let signer = match blocking(move || prepared.start()).await {
            Ok(signer) => signer,
            Err(e) => return self.could_not_run(e).await,
        };
        let collected = match pipeline::collect(&self.prepared, &self.http).await {
            Ok(c) => c,
            Err(e) => return self.could_not_run(e.to_string()).await,
        };
        let _cpu = self.cpu.clone().acquire_owned().await;
        let (prepared, options) = (self.prepared.clone(), self.options.clone());
        let finished =
            blocking(move || pipeline::finish(&prepared, signer, collected, &options)).await;
        let run = match finished {
            Ok(run) => run,
            Err(e) => return self.could_not_run(e).await,
        };
        let sources = &run.manifest.sources;
        let broken: Vec<String> = sources
            .iter()
            .filter(|(_, s)| s.status != SourceStatus::Complete)
            .map(|(name, s)| {
                let status = if s.status == SourceStatus::Failed {
                    "failed"
                } else {
                    "partial"
                };
                match &s.reason {
                    Some(r) => format!("{name} {status}: {r}"),
                    None => format!("{name} {status}"),
                }
            })
            .collect();
        let result = if broken.is_empty() {
            OrgResult::Complete
        } else if !sources.is_empty() && sources.values().all(|s| s.status == SourceStatus::Failed)
        {
            OrgResult::Failed(format!("no source gave evidence: {}", broken.join("; ")))
        } else {
            OrgResult::Partial(broken.join("; "))
        };
        let mut o = self.outcome(result);
        count(&mut o, &run.results);
        // After the package is sealed: upload it to the object store. A
        // failed upload stays in the staging folder's outbox for the next
        // run, and the organisation counts as failed (not kept write-once).
        match pipeline::store(&self.prepared, &run).await {
            Ok(stored) => o.stored = stored.map(Arc::new),
            Err(e) => {
                o.result = OrgResult::Failed(format!(
                    "packaged, but not stored: {e} (the next run uploads it)"
                ));
            }
        }
        // After the package is sealed: alerting never changes or fails it.
        if self.prepared.alerts_configured() {
            o.alerts = Some(pipeline::alert(&self.prepared, &run, &self.options).await);
        }
        o.package = Some(run.package);
        o
    }
}

/// Run blocking work off the async workers; a panic in it, or an error,
/// becomes the reason text.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> std::result::Result<T, String> {
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(f)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("internal error: {}", join_error(e))),
    }
}

fn join_error(e: tokio::task::JoinError) -> String {
    if e.is_panic() {
        let payload = e.into_panic();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        format!("panicked: {text}")
    } else {
        "cancelled".to_owned()
    }
}

fn failed(m: &Member, reason: String) -> OrgOutcome {
    OrgOutcome {
        name: m.name.clone(),
        slug: m.slug.clone(),
        result: OrgResult::Failed(reason),
        failing: 0,
        inconclusive: 0,
        satisfied: None,
        package: None,
        notes: Vec::new(),
        alerts: None,
        stored: None,
    }
}

fn count(o: &mut OrgOutcome, results: &[ControlResult]) {
    o.failing = results.iter().filter(|r| r.status == Status::Fail).count();
    o.inconclusive = results
        .iter()
        .filter(|r| r.status == Status::Inconclusive)
        .count();
    o.satisfied = Some(crate::evaluate::all_satisfied(results));
}

/// The results a package holds (`data/results/controls.json`).
fn packaged_results(package: &std::path::Path) -> Option<Vec<ControlResult>> {
    crate::report::json::read(&package.join("data")).ok()
}
