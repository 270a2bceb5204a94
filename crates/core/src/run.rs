//! `run.json`: what a run was, when, and how complete each source's evidence is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, ResultExt};
use crate::policy::{Owner, Thresholds};

/// Completeness of a whole source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Every dataset was collected in full.
    Complete,
    /// Some datasets are missing or incomplete.
    Partial,
    /// Nothing usable was collected.
    Failed,
}

/// Completeness of one dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetStatus {
    /// Every page was received.
    Complete,
    /// Some pages were received, then a page failed for good.
    Partial,
    /// No page was received.
    Failed,
}

impl fmt::Display for DatasetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatasetStatus::Complete => "complete",
            DatasetStatus::Partial => "partial",
            DatasetStatus::Failed => "failed",
        })
    }
}

/// How one dataset's collection went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetReport {
    /// Completeness.
    pub status: DatasetStatus,
    /// Pages stored.
    pub pages: usize,
    /// Records across stored pages.
    pub records: usize,
    /// Why it is not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How one source's collection went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceReport {
    /// Collector type.
    #[serde(rename = "type")]
    pub source_type: String,
    /// Overall completeness.
    pub status: SourceStatus,
    /// Why it is not complete (e.g. rejected credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Per dataset, by name.
    pub datasets: BTreeMap<String, DatasetReport>,
    /// Inputs refused one by one (drop-folder reports, manual documents),
    /// each with the reason; the rest of the source was still collected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
}

/// One input a source refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    /// The input's path relative to the source folder, with anything that is
    /// not printable escaped.
    pub input: String,
    /// A stable reason code (`malformed`, `oversized`, `symlink`, ...).
    pub reason: String,
    /// Details for a person.
    pub detail: String,
}

impl SourceReport {
    /// A source that failed before any dataset could be fetched.
    pub fn failed(source_type: &str, reason: impl Into<String>) -> SourceReport {
        SourceReport {
            source_type: source_type.to_owned(),
            status: SourceStatus::Failed,
            reason: Some(reason.into()),
            datasets: BTreeMap::new(),
            rejected: Vec::new(),
        }
    }

    /// A source's report from its datasets: complete only if every one is.
    pub fn from_datasets(source_type: &str, datasets: BTreeMap<String, DatasetReport>) -> Self {
        let all = |s| datasets.values().all(|d| d.status == s);
        let status = if all(DatasetStatus::Complete) {
            SourceStatus::Complete
        } else if all(DatasetStatus::Failed) {
            SourceStatus::Failed
        } else {
            SourceStatus::Partial
        };
        let reason = (status != SourceStatus::Complete).then(|| {
            datasets
                .iter()
                .filter(|(_, d)| d.status != DatasetStatus::Complete)
                .map(|(name, d)| {
                    format!(
                        "{name}: {} ({})",
                        d.status,
                        d.reason.as_deref().unwrap_or("no reason")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
        SourceReport {
            source_type: source_type.to_owned(),
            status,
            reason,
            datasets,
            rejected: Vec::new(),
        }
    }
}

/// The content of `run.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunManifest {
    /// Format version of this file.
    pub schema_version: u32,
    /// Unique id: `YYYYMMDDTHHMMSSZ-<hex>`.
    pub run_id: String,
    /// Organisation name.
    pub organisation: String,
    /// Catalog ids evaluated.
    pub frameworks: Vec<String>,
    /// Ownership template id.
    pub ownership: String,
    /// Tool and version.
    pub tool: String,
    /// Host that ran the collection.
    pub host: String,
    /// Collection start (UTC).
    pub started_at: String,
    /// Collection end (UTC).
    pub finished_at: String,
    /// The instant the evaluation judges against (ages, inactivity).
    pub as_of: String,
    /// Threshold overrides from the config (framework defaults fill the rest).
    pub thresholds: Thresholds,
    /// Ownership overrides from the config.
    pub ownership_overrides: BTreeMap<String, Owner>,
    /// Whether PCI DSS service-provider requirements apply.
    pub service_provider: bool,
    /// Per source, by name.
    pub sources: BTreeMap<String, SourceReport>,
    /// Devices the organisation marks critical (`[organisation]
    /// critical_devices`: host names or serial numbers), held to the backup
    /// coverage rule like servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_devices: Vec<String>,
    /// Who signs the run's package, when the config has `[signing]`: recorded
    /// here so that reports rendered again from the run folder name the same
    /// signer as those inside the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerInfo>,
}

/// The signer of a run's package, as the reports show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerInfo {
    /// Signer identity (as in `allowed_signers`).
    pub identity: String,
    /// Key fingerprint (`SHA256:...`).
    pub fingerprint: String,
}

impl RunManifest {
    /// Current `schema_version`.
    pub const SCHEMA_VERSION: u32 = 1;

    /// Read `run.json` from a run folder.
    ///
    /// # Errors
    /// When the file is missing or malformed.
    pub fn read(run_dir: &Path) -> Result<RunManifest> {
        let path = run_dir.join("run.json");
        let bytes = std::fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .context(|| format!("{} is not a valid run.json", path.display()))
    }

    /// `run.json` as written: pretty JSON and a final newline.
    ///
    /// # Errors
    /// Never for a manifest built in code; the error names the file.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self).context(|| "cannot encode run.json")?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
