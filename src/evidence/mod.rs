//! The run folder: raw evidence exactly as received, the custody log, and
//! `run.json`, each written atomically.
//!
//! Layout (the contract in DESIGN.md):
//! ```text
//! run.json  custody.jsonl  evidence/<source>/<dataset>/page-00001.json
//! facts/  results/  reports/  manual/
//! ```

mod atomic;
mod custody;
mod run;

pub use atomic::{write_atomic, AtomicFile};
pub use custody::{format_time, read_custody, redact_url, CustodyEntry, EvidenceWriter, PageMeta};
pub use run::{DatasetReport, DatasetStatus, Rejection, RunManifest, SourceReport, SourceStatus};

/// The tool name and version written into every custody line and manifest.
pub fn tool_version() -> String {
    format!("auditpack {}", env!("CARGO_PKG_VERSION"))
}
