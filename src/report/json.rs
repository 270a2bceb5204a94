//! `results/controls.json`: one entry per (framework, control).

use std::path::Path;

use crate::error::{Result, ResultExt};
use crate::evaluate::ControlResult;
use crate::evidence::write_atomic;

/// Serialize results exactly as written (pretty, trailing newline).
///
/// # Errors
/// Only if serialization fails (it does not for these types).
pub fn to_bytes(results: &[ControlResult]) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(results).context(|| "cannot encode controls.json")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Write `results/controls.json` under `run_dir`.
///
/// # Errors
/// On I/O failure.
pub fn write(run_dir: &Path, results: &[ControlResult]) -> Result<()> {
    let path = run_dir.join("results/controls.json");
    write_atomic(&path, &to_bytes(results)?).context(|| format!("cannot write {}", path.display()))
}

/// Read `results/controls.json`.
///
/// # Errors
/// When missing or malformed.
pub fn read(run_dir: &Path) -> Result<Vec<ControlResult>> {
    let path = run_dir.join("results/controls.json");
    let bytes = std::fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).context(|| format!("{} is not valid", path.display()))
}
