//! The custody log of a run folder (`custody.jsonl`): one JSON line per
//! evidence file, naming where the bytes came from and their SHA-256.
//! Normalising checks every evidence file against it before reading it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ResultExt};

/// Extensions of evidence files that hold bytes other than JSON (e.g. a ZIP
/// report download). Every other file under `evidence/` is JSON.
pub const BINARY_EXTENSIONS: &[&str] = &["zip"];

/// Whether the run-relative evidence `path` is a binary (non-JSON) file.
pub fn is_binary_evidence(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| BINARY_EXTENSIONS.contains(&ext))
}

/// One line of `custody.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustodyEntry {
    /// Path relative to the run folder, `/`-separated.
    pub path: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Source name from the config.
    pub source: String,
    /// Collector type of the source (`m365`, `ninjaone`, ...).
    pub source_type: String,
    /// Dataset within the source.
    pub dataset: String,
    /// The request, with credentials removed (`GET https://...`).
    pub request: String,
    /// HTTP status of the response, when the evidence came over HTTP.
    pub http_status: Option<u16>,
    /// When the bytes were received (UTC, RFC 3339).
    pub collected_at: String,
    /// The tool and version that wrote the file.
    pub tool: String,
    /// What the file system said about the file once it was written, so
    /// that packaging can take `sha256` without reading the file again for
    /// as long as the file is unchanged. Absent from older logs and where
    /// the platform has no inode numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<FileStat>,
}

/// A file's identity and last change as the file system reports them:
/// together with the size, what tells "the same bytes as when it was
/// hashed" without reading them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStat {
    /// Device (file system) number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Modification time: seconds since the epoch.
    pub mtime: i64,
    /// Modification time: nanoseconds within the second.
    pub mtime_nsec: i64,
}

impl FileStat {
    /// The stamp of `metadata`; `None` where the platform has no inodes.
    pub fn of(metadata: &std::fs::Metadata) -> Option<FileStat> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileStat {
                dev: metadata.dev(),
                ino: metadata.ino(),
                mtime: metadata.mtime(),
                mtime_nsec: metadata.mtime_nsec(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            None
        }
    }
}

/// Read a custody log.
///
/// # Errors
/// When the file cannot be read or a line is not a valid entry (the message
/// names the line).
pub fn read_custody(path: &Path) -> Result<Vec<CustodyEntry>> {
    let file = File::open(path).context(|| format!("cannot open {}", path.display()))?;
    let mut entries = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.context(|| format!("cannot read {}", path.display()))?;
        if line.is_empty() {
            continue;
        }
        let entry: CustodyEntry = serde_json::from_str(&line)
            .context(|| format!("{}:{}: not a custody entry", path.display(), n + 1))?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Format a UTC time as RFC 3339 with whole seconds and `Z`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
