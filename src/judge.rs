//! Judging a run folder: normalise its evidence with each source's
//! normaliser, then evaluate every control in scope against the catalog and
//! the ownership and thresholds `run.json` recorded, and mark the failures
//! the run's `inputs/exceptions.toml` accepts. Reads the run folder and
//! nothing else, writes nothing: the same folder always gives the same
//! [`Judgement`], which is what `verify --reevaluate` relies on.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Ownership};
use crate::error::{Error, Result};
use crate::evaluate::{evaluate, ControlResult, Scope};
use crate::evidence::RunManifest;
use crate::exceptions::Exceptions;
use crate::facts::Facts;

/// The organisation's exceptions as the run took them (run-relative): judged
/// with the run, so re-evaluation applies exactly the same accepted risks.
pub const EXCEPTIONS_INPUT: &str = "inputs/exceptions.toml";

/// What a run folder's evidence says: its facts and every control's result.
#[derive(Debug)]
pub struct Judgement {
    /// The facts derived from the raw evidence.
    pub facts: Facts,
    /// One result per (framework, control) in scope.
    pub results: Vec<ControlResult>,
}

/// Normalise and evaluate the run folder at `run_dir`.
///
/// # Errors
/// When the run folder is incomplete or altered, or names a framework or
/// template the catalog lacks.
pub fn judge_run(run_dir: &Path, catalog: &Catalog) -> Result<Judgement> {
    let manifest = RunManifest::read(run_dir)?;
    let as_of = DateTime::parse_from_rfc3339(&manifest.as_of)
        .map_err(|_| {
            Error::invalid(format!(
                "{}: as_of is not an RFC 3339 time",
                run_dir.join("run.json").display()
            ))
        })?
        .with_timezone(&Utc);
    let template = catalog.template(&manifest.ownership).ok_or_else(|| {
        Error::invalid(format!(
            "run.json names unknown ownership template {}",
            manifest.ownership
        ))
    })?;
    let ownership = Ownership::new(catalog, template, &manifest.ownership_overrides)?;
    let mut facts = crate::sources::normalise(run_dir)?;
    facts.critical_devices = manifest.critical_devices.clone();
    let scope = Scope {
        catalog,
        ownership: &ownership,
        frameworks: &manifest.frameworks,
        thresholds: &manifest.thresholds,
        service_provider: manifest.service_provider,
    };
    let mut results = evaluate(&scope, &facts, as_of)?;
    let exceptions_file = run_dir.join(EXCEPTIONS_INPUT);
    if exceptions_file.is_file() {
        // Only the copy the run logged counts; normalising above checked
        // its custody hash.
        let custody = crate::evidence::read_custody(&run_dir.join("custody.jsonl"))?;
        if !custody.iter().any(|e| e.path == EXCEPTIONS_INPUT) {
            return Err(Error::invalid(format!(
                "{} is not in the run's custody log; exceptions are taken only from the copy a run made",
                exceptions_file.display()
            )));
        }
        let text = std::fs::read_to_string(&exceptions_file).map_err(|e| {
            Error::invalid(format!("cannot read {}: {e}", exceptions_file.display()))
        })?;
        let exceptions = Exceptions::parse(
            &text,
            &exceptions_file.display().to_string(),
            catalog,
            &manifest.frameworks,
            as_of,
        )?;
        exceptions.apply(&mut results, as_of);
    }
    Ok(Judgement { facts, results })
}
