//! The run folder: raw evidence exactly as received, the custody log, and
//! `run.json`, each written atomically.
//!
//! Layout (the contract in DESIGN.md):
//! ```text
//! run.json  custody.jsonl  evidence/<source>/<dataset>/page-00001.json
//!                         (or page-00001.zip for a binary download)
//! facts/  results/  reports/  manual/
//! ```

mod custody;

use std::path::Path;

pub use auditpack_bag::atomic::{write_atomic, AtomicFile};
pub use auditpack_bag::tool_version;
pub use auditpack_core::run::{
    DatasetReport, DatasetStatus, Rejection, RunManifest, SignerInfo, SourceReport, SourceStatus,
};
pub use custody::{
    format_time, is_binary_evidence, read_custody, redact_url, CustodyEntry, EvidenceWriter,
    FileStat, PageMeta, BINARY_EXTENSIONS,
};

use crate::error::{Result, ResultExt};

/// Write `run.json` into `run_dir` atomically.
///
/// # Errors
/// On I/O failure (the message names the file).
pub fn write_manifest(run_dir: &Path, manifest: &RunManifest) -> Result<()> {
    let path = run_dir.join("run.json");
    write_atomic(&path, &manifest.encode()?).context(|| format!("cannot write {}", path.display()))
}
