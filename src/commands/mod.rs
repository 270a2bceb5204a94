//! The reading commands: `controls` (what the catalogs require and who owns
//! it), `gaps` (what fails in a run, per responsible party, with the exact
//! users and devices) and `diff` (what changed between two runs). Each builds
//! plain data from the catalog or a run's `results/controls.json` and renders
//! it as text; the binary prints it.

pub mod controls;
pub mod diff;
pub mod gaps;

use std::path::{Path, PathBuf};

use crate::config::Owner;
use crate::error::{Error, Result};
use crate::evaluate::ControlResult;

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

/// Read the results of a run folder, or of a package (its `data/` payload).
///
/// # Errors
/// When neither holds a readable `results/controls.json`.
pub fn read_results(path: &Path) -> Result<Vec<ControlResult>> {
    let run_dir: PathBuf = if !path.join("results/controls.json").exists()
        && path.join("data/results/controls.json").exists()
    {
        path.join("data")
    } else {
        path.to_owned()
    };
    crate::report::json::read(&run_dir)
}

/// Text from an API or a file, made safe for a terminal (control characters
/// such as escape sequences become `?`).
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
