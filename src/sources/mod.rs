//! Every evidence source auditpack knows, one folder each: its config keys,
//! the datasets it names, how it collects them, how its raw pages become
//! facts, and (in its `simulate` module, used only by the embedded simulator
//! in [`crate::simulate`]) how its API is simulated.
//!
//! [`SOURCES`] lists them, one line per source, so a source type is spelt
//! once: adding one is a folder plus a line here (see `ARCHITECTURE.md`).
//!
//! What several sources do alike sits beside them: `settings` reads the
//! config keys they share (a credential's `_env`/`_file`, `base_url`),
//! `scope` checks an organisation id of a shared account, and `per_parent`
//! fetches a dataset with one request per record of a parent list.

pub mod backup_spec;
pub mod cove;
pub mod datto_bcdr;
pub mod datto_rmm;
pub mod endpoint_reports;
pub mod m365;
pub mod manual;
pub mod ninjaone;
mod per_parent;
pub mod rmm_spec;
mod scope;
mod settings;
pub mod veeam;

use std::path::Path;

use crate::collect::Collector;
use crate::config::SourceDecl;
use crate::error::{Error, Result};
use crate::facts::{Facts, Normalise};

/// One source type: what the config's `type` names, and everything that
/// knows that type's evidence.
pub struct Source {
    /// The `type` key in `[sources.<name>]`, and in `run.json`.
    pub source_type: &'static str,
    /// One line for `--help` and docs.
    pub summary: &'static str,
    /// Parse the source's config into a collector.
    pub build: fn(&SourceDecl) -> Result<Box<dyn Collector>>,
    /// Turn the source's raw pages into facts (pure).
    pub normalise: Normalise,
}

/// Every source auditpack knows. Adding one is a folder plus a line here.
pub const SOURCES: &[Source] = &[
    m365::SOURCE,
    ninjaone::SOURCE,
    datto_rmm::SOURCE,
    rmm_spec::SOURCE,
    endpoint_reports::SOURCE,
    manual::SOURCE,
    datto_bcdr::SOURCE,
    cove::SOURCE,
    veeam::SOURCE,
    backup_spec::SOURCE,
];

/// The source of a `type`. The RMMs and backup products described by an
/// embedded spec file (`type = "tactical-rmm"`, `"acronis-cyber-protect"`,
/// ...) are the spec-driven source of their kind.
pub fn source(source_type: &str) -> Option<&'static Source> {
    let by_type = |t: &str| SOURCES.iter().find(|s| s.source_type == t);
    by_type(source_type).or_else(|| {
        rmm_spec::embedded_kind(source_type).and_then(|kind| by_type(kind.source_type()))
    })
}

/// Build the collector of every configured source.
///
/// # Errors
/// On an unknown `type` or an invalid source config (naming file, line and key).
pub fn build_collectors(sources: &[SourceDecl]) -> Result<Vec<Box<dyn Collector>>> {
    sources
        .iter()
        .map(|decl| {
            let Some(source) = source(&decl.source_type) else {
                let mut known: Vec<String> =
                    SOURCES.iter().map(|s| s.source_type.to_owned()).collect();
                known.extend(rmm_spec::spec::embedded().unwrap_or_default().into_keys());
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                let hint = crate::config::did_you_mean(&decl.source_type, &names)
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default();
                return Err(Error::config(format!(
                    "{}: [sources.{}]: unknown type `{}`; {hint}known types: {}",
                    decl.type_location(),
                    decl.name,
                    decl.source_type.escape_debug(),
                    known.join(", ")
                )));
            };
            (source.build)(decl)
        })
        .collect()
}

/// Derive facts from a run folder with each source's normaliser (see
/// [`crate::facts::normalise`]).
///
/// # Errors
/// As [`crate::facts::normalise`].
pub fn normalise(run_dir: &Path) -> Result<Facts> {
    Ok(crate::facts::normalise(run_dir, |source_type| {
        SOURCES
            .iter()
            .find(|s| s.source_type == source_type)
            .map(|s| s.normalise)
    })?)
}
