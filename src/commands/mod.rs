//! The reading commands: `controls` (what the catalogs require and who owns
//! it), `gaps` (what fails in a run, per responsible party, with the exact
//! users and devices) and `diff` (what changed between two runs). Each builds
//! plain data from the catalog or a run's `results/controls.json` and renders
//! it as text; the binary prints it.

pub mod alerts;
pub mod controls;
pub mod diff;
pub mod documents;
pub mod history;
pub mod schedule;
pub mod trends;
pub use crate::report::gaps;
pub use crate::sanitize::terminal_safe;

use std::path::{Path, PathBuf};

use crate::config::Owner;
use crate::error::{Error, Result};
use crate::evaluate::ControlResult;
use crate::evidence::RunManifest;

/// Parse an owner as written on the command line.
///
/// # Errors
/// When it is not `internal`, `msp`, `shared` or `unassigned`.
pub fn parse_owner(s: &str) -> Result<Owner> {
    match s.trim().to_ascii_lowercase().as_str() {
        "internal" => Ok(Owner::Internal),
        "msp" => Ok(Owner::Msp),
        "shared" => Ok(Owner::Shared),
        "unassigned" => Ok(Owner::Unassigned),
        other => Err(Error::invalid(format!(
            "owner `{other}` is not one of internal, msp, shared, unassigned"
        ))),
    }
}

/// What the reading commands take from a run: its results, and its
/// `run.json` when it has one.
#[derive(Clone, Debug)]
pub struct RunView {
    /// `run.json`, when present.
    pub manifest: Option<RunManifest>,
    /// `results/controls.json`.
    pub results: Vec<ControlResult>,
}

/// The largest `controls.json` or `run.json` read from a zipped package.
const MAX_ZIPPED_READ: u64 = 4 << 30;

/// Read a run folder, a package folder (its `data/` payload) or a zipped
/// package (read in place, never unpacked).
///
/// # Errors
/// When none of them holds a readable `results/controls.json`, or a
/// `run.json` beside it is malformed.
pub fn read_run(path: &Path) -> Result<RunView> {
    if path.is_file() {
        let results =
            crate::package::read_zipped_file(path, "data/results/controls.json", MAX_ZIPPED_READ)?;
        let results = crate::report::json::decode(&results).map_err(|e| {
            Error::invalid(format!(
                "{}: data/results/controls.json is not valid: {e}",
                path.display()
            ))
        })?;
        let manifest =
            match crate::package::read_zipped_file(path, "data/run.json", MAX_ZIPPED_READ) {
                Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                    Error::invalid(format!(
                        "{}: data/run.json is not valid: {e}",
                        path.display()
                    ))
                })?),
                Err(_) => None,
            };
        return Ok(RunView { manifest, results });
    }
    let run_dir: PathBuf = if !path.join("results/controls.json").exists()
        && path.join("data/results/controls.json").exists()
    {
        path.join("data")
    } else {
        path.to_owned()
    };
    let results = crate::report::json::read(&run_dir)?;
    let manifest = if run_dir.join("run.json").exists() {
        Some(RunManifest::read(&run_dir)?)
    } else {
        None
    };
    Ok(RunView { manifest, results })
}

/// Read the results of a run folder, a package folder or a zipped package.
///
/// # Errors
/// As [`read_run`].
pub fn read_results(path: &Path) -> Result<Vec<ControlResult>> {
    read_run(path).map(|run| run.results)
}
