//! A whole run: collect (async) into a new run folder, then normalise,
//! evaluate, report and package (sync, deterministic).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

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
    /// With an S3 store: where the run was stored and under which retention.
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
/// first (catalog, ownership, sources, signing key), so a bad config fails
/// before any request. A failing source does not fail the run: it is recorded
/// and its controls become inconclusive.
///
/// # Errors
/// On invalid configuration or catalog, an unusable signing key, or I/O failure
/// writing the run folder or package.
pub fn run(
    config: &Config,
    options: &RunOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<RunOutcome> {
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
    let collectors = build_collectors(&config.sources)?;
    check_secrets(config, &collectors)?;
    let signer = config
        .signing
        .as_ref()
        .map(load_signer)
        .transpose()
        .map_err(|e| Error::config(format!("{}: [signing]: {e}", config.path.display())))?;
    let http = HttpClient::new(options.retry, options.max_in_flight).map_err(Error::config)?;
    // Evidence that cannot be kept is not worth collecting: the bucket is
    // checked first, and what earlier runs left unfinished is finished.
    let s3 = match &config.store_s3 {
        Some(settings) => Some(prepare_s3(config, settings, runtime)?),
        None => None,
    };

    let started = Utc::now();
    let run_id = format!(
        "{}-{:04x}",
        started.format("%Y%m%dT%H%M%SZ"),
        fastrand::u16(..)
    );
    let store = &config.organisation.store;
    let run_dir = store.join("runs").join(&run_id);
    if run_dir.exists() {
        return Err(Error::invalid(format!(
            "run folder {} already exists",
            run_dir.display()
        )));
    }
    let evidence = Arc::new(EvidenceWriter::open(&run_dir)?);
    let ctx = CollectContext {
        http,
        evidence: evidence.clone(),
    };
    let sources = runtime.block_on(collect_all(&collectors, &ctx));
    evidence.sync()?;
    let finished = Utc::now();

    let manifest = RunManifest {
        schema_version: RunManifest::SCHEMA_VERSION,
        run_id: run_id.clone(),
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
    let results = evaluate_run(&run_dir, &catalog)?;
    // evaluate_run has written controls.json and findings.csv; render the rest.
    let reports = report::ReportOptions {
        formats: report::Format::RENDERED.to_vec(),
    };
    report::write_reports(&run_dir, &reports)?;

    let (package, archive) = package_with(
        &run_dir,
        &manifest,
        config,
        signer.as_ref(),
        &options.algorithms,
    )
    .map_err(|e| unpackaged(&e, &run_dir, &manifest, &results, config))?;
    let stored = match s3 {
        Some((store, resumed, aborted)) => {
            let pending = pending_upload(config, &manifest, &results, &archive)?;
            crate::store::queue(&config.organisation.store, &pending)?;
            let record = runtime.block_on(crate::store::publish(
                &store,
                &config.organisation.store,
                &pending,
            ))?;
            Some(StoredRun {
                location: store.location().clone(),
                record,
                resumed,
                aborted,
            })
        }
        None => None,
    };
    Ok(RunOutcome {
        run_dir,
        manifest,
        results,
        package,
        archive,
        signed: signer.is_some(),
        stored,
    })
}

/// Connect to the S3 store, check its bucket, abort the organisation's
/// unfinished multipart uploads and upload the runs its outbox still holds.
fn prepare_s3(
    config: &Config,
    settings: &crate::config::StoreS3,
    runtime: &tokio::runtime::Runtime,
) -> Result<(crate::store::S3Store, Vec<String>, usize)> {
    let store = runtime.block_on(crate::store::S3Store::connect(settings))?;
    runtime.block_on(store.check_bucket())?;
    let org = slug(&config.organisation.name);
    let aborted = runtime.block_on(store.abort_stale_uploads(&format!("{org}/")))?;
    let mut resumed = Vec::new();
    for pending in crate::store::queued(&config.organisation.store, &org)? {
        runtime.block_on(crate::store::publish(
            &store,
            &config.organisation.store,
            &pending,
        ))?;
        resumed.push(pending.summary.run_id);
    }
    Ok((store, resumed, aborted))
}

/// The outbox entry of a packaged run.
fn pending_upload(
    config: &Config,
    manifest: &RunManifest,
    results: &[ControlResult],
    archive: &Path,
) -> Result<crate::store::Pending> {
    let org = slug(&config.organisation.name);
    let (sha256, bytes) = crate::store::sha256_file(archive)?;
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}.zip", manifest.run_id));
    Ok(crate::store::Pending {
        org: org.clone(),
        zip: archive.to_owned(),
        summary: crate::store::RunSummary::new(
            manifest,
            results,
            crate::store::package_key(&org, &name),
            sha256,
            bytes,
        ),
    })
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
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "organisation".to_owned()
    } else {
        out.chars().take(48).collect()
    }
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
