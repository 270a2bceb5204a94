//! A whole run: collect (async) into a new run folder, then normalise,
//! evaluate, report and package (sync, deterministic).
//!
//! A run happens inside a `run` span naming the organisation, so every event
//! of its collection says whose it is; it logs a `stage` event as it enters
//! each stage (collect, evaluate, report, package) and `run_finished` at the
//! end (see [`crate::progress`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::Instrument as _;

use crate::catalog::{Catalog, Ownership};
use crate::collect::http::HttpClient;
use crate::collect::retry::RetryPolicy;
use crate::collect::{collect_all, CollectContext, Collector};
use crate::config::{Config, KeySource};
use crate::error::{Error, Result};
use crate::evaluate::ControlResult;
use crate::evidence::{format_time, tool_version, write_manifest, EvidenceWriter, RunManifest};
use crate::judge::judge_run;
use crate::package::{
    load_signer, write_bag_with, write_zip, Algorithm, BagInfo, BagOptions, Signer,
};
use crate::report;
use crate::secret::SecretRef;
use crate::sources::build_collectors;

/// Knobs of a run that are not in the config.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Judge against this instant instead of the end of collection.
    pub as_of: Option<DateTime<Utc>>,
    /// Retry bounds for every request.
    pub retry: RetryPolicy,
    /// Requests in flight across all sources.
    pub max_in_flight: usize,
    /// Manifest algorithms besides SHA-256 (`run --algorithm sha512`).
    pub algorithms: Vec<Algorithm>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            as_of: None,
            retry: RetryPolicy::default(),
            max_in_flight: 32,
            algorithms: Vec::new(),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Its `run.json`.
    pub manifest: RunManifest,
    /// Its `results/controls.json`.
    pub results: Vec<ControlResult>,
    /// The package folder.
    pub package: PathBuf,
    /// The same package as a reproducible `.zip` beside the folder.
    pub archive: PathBuf,
    /// Whether the package is signed.
    pub signed: bool,
    /// When collection started.
    pub started: DateTime<Utc>,
    /// What changed since the organisation's previous run (also in the run
    /// folder as `results/drift.json`).
    pub drift: crate::history::Drift,
    /// What alerting did after packaging (empty without `[alerts]`).
    pub alerts: crate::alert::AlertReport,
    /// With an S3 store: where the run was stored and under which retention
    /// (set by [`store`]).
    pub stored: Option<StoredRun>,
}

/// What a run with an S3 store left in the bucket.
#[derive(Debug)]
pub struct StoredRun {
    /// The bucket and prefix.
    pub location: crate::config::S3Location,
    /// The run's retention record (keys relative to the prefix).
    pub record: crate::store::RetentionRecord,
    /// Earlier runs of the organisation, left in the staging folder's outbox
    /// by a failed or killed run, that were uploaded first.
    pub resumed: Vec<String>,
    /// Unfinished multipart uploads of the organisation that were aborted.
    pub aborted: usize,
}

/// Collect, evaluate, report and package one organisation.
///
/// Everything that can be checked before touching the network is checked
/// first (catalog, ownership, sources, secrets, signing key), so a bad config
/// fails before any request. A failing source does not fail the run: it is
/// recorded and its controls become inconclusive.
///
/// The same run in stages, for callers that run many organisations on one
/// runtime with one shared HTTP client (`auditpack fleet run`): [`prepare`],
/// [`Prepared::check_store`], [`Prepared::start`], [`collect`], [`finish`],
/// [`store`], [`alert`].
///
/// # Errors
/// On invalid configuration or catalog, an unusable signing key, or I/O failure
/// writing the run folder or package.
pub fn run(
    config: &Config,
    options: &RunOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<RunOutcome> {
    // At `error` level so the organisation survives any level filter.
    let span = tracing::error_span!("run", organisation = config.organisation.name.as_str());
    let _entered = span.enter();
    let mut prepared = prepare(config, options)?;
    runtime.block_on(prepared.check_store())?;
    let signer = prepared.start()?;
    let http = HttpClient::new(options.retry, options.max_in_flight).map_err(Error::config)?;
    let collected = runtime.block_on(collect(&prepared, &http).instrument(span.clone()))?;
    let mut outcome = finish(&prepared, signer, collected, options)?;
    // After the package is sealed; a failed upload stays in the outbox for
    // the next run, and the run's alerts still go.
    let stored = runtime.block_on(store(&prepared, &outcome).instrument(span.clone()));
    outcome.alerts = runtime.block_on(alert(&prepared, &outcome, options).instrument(span.clone()));
    outcome.stored = stored?;
    Ok(outcome)
}

/// An organisation's config checked against the catalog, with its collectors
/// built: everything about a run that needs neither secrets nor the network.
pub struct Prepared {
    config: Config,
    catalog: Catalog,
    collectors: Vec<Box<dyn Collector>>,
    exceptions: Option<crate::history::exceptions::ExceptionsInput>,
    alerts: Option<crate::alert::AlertsConfig>,
    /// The object store, once [`Prepared::check_store`] has checked it.
    store: Option<crate::store::S3Store>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("organisation", &self.config.organisation.name)
            .field("sources", &self.collectors.len())
            .finish()
    }
}

/// Check a config against the catalog (ownership template and overrides,
/// frameworks) and build its collectors (each source's keys), without
/// reading a secret or making a request.
///
/// # Errors
/// On an unknown template, framework or override, or a source whose keys
/// are wrong; the message names the config file.
pub fn prepare(config: &Config, options: &RunOptions) -> Result<Prepared> {
    let catalog = Catalog::builtin()?;
    let template = catalog
        .template(&config.organisation.ownership)
        .ok_or_else(|| {
            Error::config(format!(
                "{}: ownership template `{}` does not exist; known: {}",
                config.path.display(),
                config.organisation.ownership,
                catalog
                    .templates()
                    .iter()
                    .map(|t| t.template.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    Ownership::new(&catalog, template, &config.ownership_overrides)?;
    for f in &config.organisation.frameworks {
        if catalog.framework(f).is_none() {
            return Err(Error::config(format!(
                "{}: framework `{f}` is not in the catalog; known: {}",
                config.path.display(),
                catalog
                    .frameworks()
                    .iter()
                    .map(|f| f.framework.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let exceptions =
        crate::history::exceptions::load(config, &catalog, options.as_of.unwrap_or_else(Utc::now))?;
    let collectors = build_collectors(&config.sources)?;
    let alerts = crate::alert::AlertsConfig::from_config(config)?;
    Ok(Prepared {
        config: config.clone(),
        catalog,
        collectors,
        exceptions,
        alerts,
        store: None,
    })
}

impl Prepared {
    /// The config this was prepared from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the config has `[alerts]`.
    pub fn alerts_configured(&self) -> bool {
        self.alerts.is_some()
    }

    /// Read every secret the config names and load the signing key, the
    /// last step before the first request; the signer, if `[signing]` is set.
    ///
    /// # Errors
    /// When a secret cannot be read (each named, never its value) or the
    /// signing key is unusable.
    pub fn start(&self) -> Result<Option<Signer>> {
        check_secrets(&self.config, &self.collectors)?;
        self.config
            .signing
            .as_ref()
            .map(load_signer)
            .transpose()
            .map_err(|e| Error::config(format!("{}: [signing]: {e}", self.config.path.display())))
    }
}

/// What collection left: a run folder with its evidence and custody log,
/// waiting for [`finish`].
#[derive(Debug)]
pub struct Collected {
    run_dir: PathBuf,
    run_id: String,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    sources: std::collections::BTreeMap<String, crate::evidence::SourceReport>,
}

impl Collected {
    /// The run folder being written.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
}

/// Collect every source of a prepared organisation into a new run folder
/// under its store, through `http` (which may be shared by many
/// organisations: its in-flight cap and the sources' rate-limit buckets are
/// then shared too).
///
/// # Errors
/// When the run folder cannot be created or its evidence synced; a failing
/// source is not an error (it is recorded in the result).
pub async fn collect(prepared: &Prepared, http: &HttpClient) -> Result<Collected> {
    let started = Utc::now();
    let run_id = format!(
        "{}-{:04x}",
        started.format("%Y%m%dT%H%M%SZ"),
        fastrand::u16(..)
    );
    let store = &prepared.config.organisation.store;
    let run_dir = store.join("runs").join(&run_id);
    if run_dir.exists() {
        return Err(Error::invalid(format!(
            "run folder {} already exists",
            run_dir.display()
        )));
    }
    let evidence = Arc::new(EvidenceWriter::open(&run_dir)?);
    let ctx = CollectContext {
        http: http.clone(),
        evidence: evidence.clone(),
    };
    stage("collect", &run_id);
    let sources = collect_all(&prepared.collectors, &ctx).await;
    if let Some(exceptions) = &prepared.exceptions {
        exceptions.store(&evidence)?;
    }
    evidence.sync()?;
    Ok(Collected {
        run_dir,
        run_id,
        started,
        finished: Utc::now(),
        sources,
    })
}

/// Write `run.json`, then normalise, evaluate, report and package a collected
/// run (synchronous, CPU-bound; deterministic for a given `as_of`).
///
/// # Errors
/// On I/O failure, or a packaging failure (the message then says what
/// finished and how to package the run folder later).
pub fn finish(
    prepared: &Prepared,
    signer: Option<Signer>,
    collected: Collected,
    options: &RunOptions,
) -> Result<RunOutcome> {
    let config = &prepared.config;
    let Collected {
        run_dir,
        run_id,
        started,
        finished,
        sources,
    } = collected;
    let manifest = RunManifest {
        schema_version: RunManifest::SCHEMA_VERSION,
        run_id,
        organisation: config.organisation.name.clone(),
        frameworks: config.organisation.frameworks.clone(),
        ownership: config.organisation.ownership.clone(),
        tool: tool_version(),
        host: hostname(),
        started_at: format_time(started),
        finished_at: format_time(finished),
        as_of: format_time(options.as_of.unwrap_or(finished)),
        thresholds: config.thresholds,
        ownership_overrides: config.ownership_overrides.clone(),
        service_provider: config.organisation.service_provider,
        sources,
        critical_devices: config.organisation.critical_devices.clone(),
        signer: signer.as_ref().map(signer_info),
    };
    write_manifest(&run_dir, &manifest)?;
    stage("evaluate", &manifest.run_id);
    let results = evaluate_run(&run_dir, &prepared.catalog)?;
    // Compare with the previous run (results/drift.json, shown in the
    // reports and packaged) and leave this run's summary in the store.
    let drift = crate::history::record_with(
        &crate::history::LocalStore::new(&config.organisation.store),
        &run_dir,
        &manifest,
        &results,
        &crate::history::kpis::KpiSettings::from_config(config),
    )?;
    // evaluate_run has written controls.json and findings.csv; render the rest.
    let reports = report::ReportOptions {
        formats: report::Format::RENDERED.to_vec(),
    };
    stage("report", &manifest.run_id);
    report::write_reports(&run_dir, &reports)?;
    stage("package", &manifest.run_id);

    let (package, archive) = package_with(
        &run_dir,
        &manifest,
        config,
        signer.as_ref(),
        &options.algorithms,
    )
    .map_err(|e| unpackaged(&e, &run_dir, &manifest, &results, config))?;
    let satisfied = crate::evaluate::all_satisfied(&results);
    tracing::info!(
        event = "run_finished",
        run_id = manifest.run_id.as_str(),
        controls = results.len(),
        all_satisfied = satisfied,
        signed = signer.is_some(),
        "run finished"
    );
    Ok(RunOutcome {
        run_dir,
        manifest,
        results,
        package,
        archive,
        signed: signer.is_some(),
        started,
        drift,
        alerts: crate::alert::AlertReport::default(),
        stored: None,
    })
}

impl Prepared {
    /// With `store = "s3://..."`: connect to the object store and check
    /// its bucket (it exists, versioning is on, Object Lock is enabled, the
    /// credentials can write). Call it before [`collect`]: evidence that
    /// cannot be kept is not worth collecting. Nothing without an S3 store.
    ///
    /// # Errors
    /// When the bucket is missing, unversioned, without Object Lock, not
    /// writable or unreachable; the message names the bucket, never a secret.
    pub async fn check_store(&mut self) -> Result<()> {
        let Some(settings) = &self.config.store_s3 else {
            return Ok(());
        };
        let store = crate::store::S3Store::connect(settings).await?;
        store.check_bucket().await?;
        self.store = Some(store);
        Ok(())
    }
}

/// Upload a finished run to the S3 store its bucket check opened
/// ([`Prepared::check_store`]): first abort the organisation's unfinished
/// multipart uploads and upload the runs a failed or killed run left in the
/// staging folder's outbox, then this run's package zip, summary and
/// retention record, each write-once. Call it after [`finish`] has sealed
/// the package. `None` without an S3 store.
///
/// # Errors
/// When an upload is refused or the store cannot be reached; the run stays
/// in the outbox and the organisation's next run uploads it.
pub async fn store(prepared: &Prepared, outcome: &RunOutcome) -> Result<Option<StoredRun>> {
    let Some(store) = &prepared.store else {
        return Ok(None);
    };
    let config = &prepared.config;
    let staging = &config.organisation.store;
    let org = slug(&config.organisation.name);
    let (archive, manifest) = (outcome.archive.clone(), outcome.manifest.clone());
    let (org2, staging2) = (org.clone(), staging.clone());
    let pending = tokio::task::spawn_blocking(move || {
        let pending = pending_upload(&org2, &staging2, &manifest, &archive)?;
        crate::store::queue(&staging2, &pending)?;
        Ok::<_, Error>(pending)
    })
    .await
    .map_err(|e| Error::invalid(format!("cannot queue the run for upload: {e}")))??;
    let aborted = store.abort_stale_uploads(&format!("{org}/")).await?;
    let mut resumed = Vec::new();
    for earlier in crate::store::queued(staging, &org)? {
        if earlier.run_id == pending.run_id {
            continue;
        }
        crate::store::publish(store, staging, &earlier).await?;
        resumed.push(earlier.run_id);
    }
    let record = crate::store::publish(store, staging, &pending).await?;
    Ok(Some(StoredRun {
        location: store.location().clone(),
        record,
        resumed,
        aborted,
    }))
}

/// The outbox entry of a packaged run.
fn pending_upload(
    org: &str,
    staging: &Path,
    manifest: &RunManifest,
    archive: &Path,
) -> Result<crate::store::Pending> {
    let (sha256, bytes) = crate::store::sha256_file(archive)?;
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}.zip", manifest.run_id));
    Ok(crate::store::Pending {
        org: org.to_owned(),
        organisation: manifest.organisation.clone(),
        run_id: manifest.run_id.clone(),
        zip: archive.to_owned(),
        package: crate::store::package_key(org, &name),
        package_sha256: sha256,
        package_bytes: bytes,
        summary: staging
            .join("summaries")
            .join(format!("{}.json", manifest.run_id)),
    })
}

/// Alert a finished run's changes to the organisation's `[alerts]`
/// channels (nothing without `[alerts]`). Call it after [`finish`]: the
/// package is sealed, so alerting never changes or fails it.
pub async fn alert(
    prepared: &Prepared,
    outcome: &RunOutcome,
    options: &RunOptions,
) -> crate::alert::AlertReport {
    let Some(alerts) = &prepared.alerts else {
        return crate::alert::AlertReport::default();
    };
    let run = AlertInputs {
        manifest: &outcome.manifest,
        started: outcome.started,
        results: &outcome.results,
        drift: &outcome.drift,
        exceptions: prepared.exceptions.as_ref().map(|e| &e.exceptions),
    };
    alert_run(alerts, &prepared.config, &run, options).await
}

/// Tell the organisation's `[alerts]` channels that its run failed with
/// `reason` (a secret it lacks, an unusable key, a failed write), with the
/// same rules, retries and records as a finished run's alerts. `None` when
/// the config has no usable `[alerts]`.
pub async fn alert_could_not_run(
    config: &Config,
    reason: &str,
    options: &RunOptions,
) -> Option<crate::alert::AlertReport> {
    let alerts = crate::alert::AlertsConfig::from_config(config).ok()??;
    let started = Utc::now();
    let run_id = format!(
        "{}-{:04x}-failed",
        started.format("%Y%m%dT%H%M%SZ"),
        fastrand::u16(..)
    );
    let view = crate::alert::RunView {
        organisation: &config.organisation.name,
        run_id: &run_id,
        started,
        outcome: crate::alert::RunState::CouldNotRun {
            reason: reason.to_owned(),
        },
        exceptions: &[],
        drift: None,
    };
    Some(
        crate::alert::notify_async(&alerts, &config.organisation.store, &view, &options.retry)
            .await,
    )
}

/// What a finished run hands to alerting.
struct AlertInputs<'a> {
    manifest: &'a RunManifest,
    started: DateTime<Utc>,
    results: &'a [ControlResult],
    drift: &'a crate::history::Drift,
    exceptions: Option<&'a crate::exceptions::Exceptions>,
}

/// Alert this run's changes to the organisation's channels.
async fn alert_run(
    alerts: &crate::alert::AlertsConfig,
    config: &Config,
    run: &AlertInputs<'_>,
    options: &RunOptions,
) -> crate::alert::AlertReport {
    use crate::evidence::SourceStatus;
    let failed_sources = run
        .manifest
        .sources
        .iter()
        .filter_map(|(name, s)| {
            let how = match s.status {
                SourceStatus::Complete => return None,
                SourceStatus::Partial => "partial",
                SourceStatus::Failed => "failed",
            };
            Some((
                name.clone(),
                how.to_owned(),
                s.reason.clone().unwrap_or_default(),
            ))
        })
        .collect();
    let owner_of = |control: &str| {
        run.results
            .iter()
            .find(|r| format!("{}:{}", r.framework, r.control_id) == control)
            .map(|r| r.owner)
    };
    let exceptions: Vec<crate::alert::ExceptionDue> = run
        .exceptions
        .map(|e| e.entries())
        .unwrap_or_default()
        .iter()
        .map(|e| crate::alert::ExceptionDue {
            control: e.control.clone(),
            check: e.check.clone(),
            subject: e.subject.clone(),
            approved_by: e.approved_by.clone(),
            expires: e.expires,
            owner: owner_of(&e.control),
        })
        .collect();
    let view = crate::alert::RunView {
        organisation: &run.manifest.organisation,
        run_id: &run.manifest.run_id,
        started: run.started,
        outcome: crate::alert::RunState::Ran {
            results: run.results,
            failed_sources,
        },
        exceptions: &exceptions,
        drift: Some(run.drift),
    };
    crate::alert::notify_async(alerts, &config.organisation.store, &view, &options.retry).await
}

/// Log the start of a stage of the run.
fn stage(stage: &str, run_id: &str) {
    tracing::info!(event = "stage", stage, run_id, "stage started");
}

/// A packaging failure after a finished collection: what finished, where the
/// run folder is, how each source did, and the command that packages it later.
fn unpackaged(
    e: &Error,
    run_dir: &Path,
    manifest: &RunManifest,
    results: &[ControlResult],
    config: &Config,
) -> Error {
    use std::fmt::Write as _;
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let _ = write!(cause, ": {inner}");
        source = inner.source();
    }
    let mut text = format!(
        "packaging failed: {cause}\n\
         Collection, evaluation and reports finished ({} controls judged); only the package is missing.\n\
         run folder: {}\n\
         sources:",
        results.len(),
        run_dir.display()
    );
    for (name, s) in &manifest.sources {
        let status = match s.status {
            crate::evidence::SourceStatus::Complete => "complete",
            crate::evidence::SourceStatus::Partial => "partial",
            crate::evidence::SourceStatus::Failed => "failed",
        };
        let _ = write!(text, "\n  {name} ({}): {status}", s.source_type);
        if let Some(reason) = &s.reason {
            let _ = write!(text, " ({})", crate::sanitize::terminal_safe(reason));
        }
    }
    let _ = write!(
        text,
        "\nPackage it once the cause is fixed:\n  auditpack package {} --config {}",
        run_dir.display(),
        config.path.display()
    );
    Error::new(crate::error::ErrorKind::Invalid, text)
}

/// Every secret the config names, read once before the first request: the
/// sources' credentials, the signing key and its passphrase. A run never
/// collects with a credential it lacks, so one that cannot be read stops it
/// with every such problem named (source, key, variable or file), no value.
fn check_secrets(config: &Config, collectors: &[Box<dyn Collector>]) -> Result<()> {
    let mut problems = crate::collect::check_secrets(collectors);
    if let Some(signing) = &config.signing {
        let (key, stem) = match &signing.key {
            KeySource::File(path) => (SecretRef::File(path.clone()), "key"),
            KeySource::Env(var) => (SecretRef::Env(var.clone()), "key"),
        };
        let refs = std::iter::once((stem, &key))
            .chain(signing.passphrase.as_ref().map(|p| ("passphrase", p)));
        for (stem, secret) in refs {
            if let Err(e) = secret.resolve() {
                problems.push(format!("[signing] `{}`: {e}", secret.key(stem)));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::config(format!(
        "{}: {} secret(s) cannot be read, so nothing was collected:\n  {}\n\
         Set each variable (or fix each file) and run again.",
        config.path.display(),
        problems.len(),
        problems.join("\n  ")
    )))
}

/// Package an existing run folder again, as [`run`] does at its end: a bag in
/// the store's `packages/`, signed (and timestamped) as `[signing]` says, and
/// its zip. For a run whose package was lost or could not be made (a TSA that
/// was down). Returns the package folder and the zip.
///
/// # Errors
/// When the run folder has no readable `run.json`, the signing key is
/// unusable, the package or zip already exists, or on I/O failure.
pub fn package_run(
    run_dir: &Path,
    config: &Config,
    algorithms: &[Algorithm],
) -> Result<(PathBuf, PathBuf)> {
    report::ensure_not_in_package(run_dir)?;
    let mut manifest = RunManifest::read(run_dir)?;
    let signer = config.signing.as_ref().map(load_signer).transpose()?;
    let info = signer.as_ref().map(signer_info);
    if manifest.signer != info {
        // Signed by another key than the run expected: record it and render
        // the reports that name the signer again, so the package says who
        // really signed it.
        manifest.signer = info;
        write_manifest(run_dir, &manifest)?;
        report::write_reports(
            run_dir,
            &report::ReportOptions {
                formats: vec![report::Format::Html, report::Format::Pdf],
            },
        )?;
    }
    package_with(run_dir, &manifest, config, signer.as_ref(), algorithms)
}

/// The signer as `run.json` and the reports name it.
fn signer_info(signer: &Signer) -> report::SignerInfo {
    report::SignerInfo {
        identity: signer.identity().to_owned(),
        fingerprint: signer.fingerprint(),
    }
}

fn package_with(
    run_dir: &Path,
    manifest: &RunManifest,
    config: &Config,
    signer: Option<&Signer>,
    algorithms: &[Algorithm],
) -> Result<(PathBuf, PathBuf)> {
    let info = BagInfo {
        organisation: manifest.organisation.clone(),
        contact_name: config.organisation.contact_name.clone(),
        contact_email: config.organisation.contact_email.clone(),
        run_id: manifest.run_id.clone(),
        started: manifest.started_at.clone(),
        finished: manifest.finished_at.clone(),
        host: manifest.host.clone(),
    };
    let name = format!(
        "auditpack-{}-{}",
        slug(&manifest.organisation),
        manifest.run_id
    );
    let package = write_bag_with(
        run_dir,
        &config.organisation.store.join("packages"),
        &name,
        &info,
        signer,
        &BagOptions {
            algorithms: algorithms.to_vec(),
            // Evidence hashed as it was written is not read again.
            recorded: crate::package::recorded_hashes(run_dir),
            // The zip made from the folder next is synced before its rename.
            ..BagOptions::default()
        },
    )?;
    let archive = write_zip(&package)?;
    Ok((package, archive))
}

/// Normalise and evaluate a run folder, writing `facts/facts.json`,
/// `results/controls.json` and `results/findings.csv`. Deterministic: the same
/// run folder always gives byte-identical results.
///
/// # Errors
/// When the run folder is a package or inside one, is incomplete or altered,
/// names a framework or template the catalog lacks, or on I/O failure.
pub fn evaluate_run(run_dir: &Path, catalog: &Catalog) -> Result<Vec<ControlResult>> {
    report::ensure_not_in_package(run_dir)?;
    let judgement = judge_run(run_dir, catalog)?;
    report::write_results(run_dir, &judgement)?;
    Ok(judgement.results)
}

/// A file-name-safe slug of a display name.
pub use crate::config::slug;

/// This machine's name, as `run.json` records it.
pub fn host_name() -> String {
    hostname()
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs() {
        assert_eq!(slug("Contoso Dental, LLC"), "contoso-dental-llc");
        assert_eq!(slug("../../etc"), "etc");
        assert_eq!(slug("ÄÖÜ"), "organisation");
    }
}
