//! The run folder: raw evidence exactly as received, the custody log, and
//! `run.json`, each written atomically.
//!
//! Layout (the contract in DESIGN.md):
//! ```text
//! run.json  custody.jsonl  evidence/<source>/<dataset>/page-00001.json
//!                         (or page-00001.zip for a binary download)
//! facts/  results/  reports/  manual/
//! ```

mod atomic;
mod custody;
mod run;

pub use atomic::{write_atomic, AtomicFile};
pub use custody::{
    format_time, is_binary_evidence, read_custody, redact_url, CustodyEntry, EvidenceWriter,
    PageMeta, BINARY_EXTENSIONS,
};
pub use run::{
    DatasetReport, DatasetStatus, Rejection, RunManifest, SignerInfo, SourceReport, SourceStatus,
};

/// The tool name and version written into every custody line and manifest.
pub fn tool_version() -> String {
    format!("auditpack {}", env!("CARGO_PKG_VERSION"))
}
