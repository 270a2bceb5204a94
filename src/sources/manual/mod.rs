//! Manual evidence: documents people supply (policies, training records,
//! business associate agreements, restore tests), each with a sidecar
//! `<file>.evidence.toml`:
//!
//! ```toml
//! title = "Backup restore test, March 2026"
//! controls = ["hipaa:164.308(a)(7)(ii)(D)", "soc2:A1.3"]
//! owner = "msp"                 # internal | msp | shared
//! evidence_date = 2026-03-14    # the day the evidence speaks for
//! expires = 2027-03-14          # optional: when it stops counting
//! ```
//!
//! Config: `type = "manual"`, `path = "<folder>"`, optional
//! `max_document_bytes` (default 50 MiB) and `max_depth` (default 3).
//!
//! Each accepted document is hashed and copied byte for byte to
//! `manual/<source>/doc-NNNNN.<ext>` with its sidecar beside it
//! (`doc-NNNNN.evidence.toml`), and listed in
//! `evidence/<source>/documents/page-00001.json`. Refused one by one, with the
//! reason in `run.json`: the folder-walk reasons (symlinks, hostile names...),
//! `missing-sidecar`, `orphan-sidecar`, `bad-sidecar`.

mod normalise;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Source;
use crate::collect::files::{reject, walk, Input, WalkLimits};
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::{Owner, SourceDecl};
use crate::error::Result;
use crate::evidence::{DatasetReport, DatasetStatus, PageMeta, SourceReport};

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "manual",
    summary: "documents supplied for manual controls, each with a .evidence.toml sidecar",
    build,
    normalise: normalise::normalise,
};

/// Dataset listing the accepted documents.
pub const DOCUMENTS: &str = "documents";

/// Sidecar suffix.
pub const SIDECAR: &str = ".evidence.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualConfig {
    #[serde(rename = "type")]
    _type: String,
    path: PathBuf,
    #[serde(default = "default_max_bytes")]
    max_document_bytes: u64,
    #[serde(default = "default_depth")]
    max_depth: usize,
}

fn default_max_bytes() -> u64 {
    50 * 1024 * 1024
}
fn default_depth() -> usize {
    3
}

/// A sidecar as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    title: String,
    controls: Vec<String>,
    #[serde(default)]
    owner: Option<Owner>,
    evidence_date: toml::Value,
    #[serde(default)]
    expires: Option<toml::Value>,
}

/// One accepted document, as listed in the `documents` dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentEntry {
    /// Run-relative path of the copy.
    pub path: String,
    /// Run-relative path of the sidecar's copy.
    pub sidecar: String,
    /// SHA-256 of the document.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// The supplied name, escaped (for people; never used as a path).
    pub original_name: String,
    /// From the sidecar.
    pub title: String,
    /// From the sidecar.
    pub controls: Vec<String>,
    /// From the sidecar.
    pub owner: Option<Owner>,
    /// From the sidecar (RFC 3339).
    pub evidence_date: String,
    /// From the sidecar (RFC 3339).
    pub expires: Option<String>,
}

/// The manual-evidence collector.
pub struct Manual {
    name: String,
    folder: PathBuf,
    limits: WalkLimits,
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: ManualConfig = decl.parse()?;
    Ok(Box::new(Manual {
        name: decl.name.clone(),
        folder: decl.base_dir().join(c.path),
        limits: WalkLimits {
            max_depth: c.max_depth.min(16),
            max_bytes: c.max_document_bytes.max(1),
            max_files: 10_000,
            max_total_bytes: 4 * 1024 * 1024 * 1024,
        },
    }))
}

/// A TOML date or date-time (or such text) as a UTC instant.
fn date(v: &toml::Value) -> Option<DateTime<Utc>> {
    let text = match v {
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::String(s) => s.clone(),
        _ => return None,
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
}

/// A control reference: `<framework>:<control id>`.
fn valid_control(c: &str) -> bool {
    let Some((framework, id)) = c.split_once(':') else {
        return false;
    };
    !framework.is_empty()
        && framework
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.trim().is_empty()
        && id.len() <= 100
        && !id.chars().any(char::is_control)
}

/// A sidecar with its dates read: (sidecar, evidence date, expiry).
type CheckedSidecar = (Sidecar, DateTime<Utc>, Option<DateTime<Utc>>);

/// Parse and check a sidecar.
fn read_sidecar(bytes: &[u8], now: DateTime<Utc>) -> std::result::Result<CheckedSidecar, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let s: Sidecar = toml::from_str(text).map_err(|e| e.message().trim().to_owned())?;
    if s.title.trim().is_empty() || s.title.chars().count() > 300 {
        return Err("`title` must be 1-300 characters".into());
    }
    if s.controls.is_empty() {
        return Err("`controls` is empty; name at least one \"<framework>:<control id>\"".into());
    }
    if let Some(bad) = s.controls.iter().find(|c| !valid_control(c)) {
        return Err(format!(
            "control `{}` is not \"<framework>:<control id>\"",
            crate::collect::files::printable(bad)
        ));
    }
    let evidence_date =
        date(&s.evidence_date).ok_or("`evidence_date` is not a date (YYYY-MM-DD or RFC 3339)")?;
    if evidence_date > now + chrono::Duration::days(1) {
        return Err("`evidence_date` is in the future".into());
    }
    let expires = match &s.expires {
        None => None,
        Some(v) => Some(date(v).ok_or("`expires` is not a date (YYYY-MM-DD or RFC 3339)")?),
    };
    if expires.is_some_and(|e| e < evidence_date) {
        return Err("`expires` is before `evidence_date`".into());
    }
    Ok((s, evidence_date, expires))
}

/// A short, safe extension from the supplied name (`pdf`, `docx`...), else `bin`.
fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "bin".into())
}

/// A sidecar as the `documents` command reads it, before any run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarSummary {
    /// Its title.
    pub title: String,
    /// The controls it names (`<framework>:<control id>`).
    pub controls: Vec<String>,
    /// Its owner, when given.
    pub owner: Option<Owner>,
    /// The day the evidence speaks for.
    pub evidence_date: DateTime<Utc>,
    /// When it stops counting, if ever.
    pub expires: Option<DateTime<Utc>>,
}

/// One file of a manual folder as the `documents` command sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderEntry {
    /// Path relative to the folder, escaped for display.
    pub name: String,
    /// Its sidecar, or why it would be refused at collection.
    pub sidecar: std::result::Result<SidecarSummary, String>,
}

/// The folder a `manual` source reads, resolved against its config file.
///
/// # Errors
/// When the source's table is not a valid `manual` source.
pub fn folder(decl: &SourceDecl) -> Result<PathBuf> {
    let c: ManualConfig = decl.parse()?;
    Ok(decl.base_dir().join(c.path))
}

/// Read a manual folder as the collector would at `now`, without copying
/// anything: each document with its sidecar (or the reason it would be
/// refused), and each orphan sidecar, sorted by name.
///
/// # Errors
/// When the folder cannot be read.
pub fn scan(
    folder: &std::path::Path,
    now: DateTime<Utc>,
) -> std::result::Result<Vec<FolderEntry>, String> {
    let limits = WalkLimits {
        max_depth: default_depth(),
        max_bytes: default_max_bytes(),
        max_files: 10_000,
        // Only sidecars are held; documents are skipped unread.
        max_total_bytes: 256 * 1024 * 1024,
    };
    let (sidecars, rejected) = walk(folder, limits, &|rel| rel.ends_with(SIDECAR))?;
    let mut sidecars: BTreeMap<String, Input> = sidecars
        .into_iter()
        .map(|s| (s.rel[..s.rel.len() - SIDECAR.len()].to_owned(), s))
        .collect();
    let mut entries = Vec::new();
    for r in rejected {
        // Documents are the files the sidecar-only walk did not want; any
        // other refusal (symlink, hostile name...) is one at collection too.
        if r.reason != "unexpected-file" {
            let detail = format!("{}: {}", r.reason, r.detail);
            entries.push(FolderEntry {
                name: r.input,
                sidecar: Err(detail),
            });
            continue;
        }
        let sidecar = match sidecars.remove(&r.input) {
            Some(s) => {
                read_sidecar(&s.bytes, now).map(|(s, evidence_date, expires)| SidecarSummary {
                    title: s.title,
                    controls: s.controls,
                    owner: s.owner,
                    evidence_date,
                    expires,
                })
            }
            None => Err(format!("no `{}{SIDECAR}` beside it", r.input)),
        };
        entries.push(FolderEntry {
            name: r.input,
            sidecar,
        });
    }
    for (stem, _) in sidecars {
        entries.push(FolderEntry {
            name: format!("{}{SIDECAR}", crate::collect::files::printable(&stem)),
            sidecar: Err(format!(
                "no document `{}` beside it",
                crate::collect::files::printable(&stem)
            )),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

impl Manual {
    fn run(&self, ctx: &CollectContext) -> SourceReport {
        let (inputs, mut rejected) = match walk(&self.folder, self.limits, &|_| true) {
            Ok(x) => x,
            Err(e) => return SourceReport::failed(SOURCE.source_type, e),
        };
        let now = Utc::now();
        let (sidecars, documents): (Vec<Input>, Vec<Input>) =
            inputs.into_iter().partition(|i| i.rel.ends_with(SIDECAR));
        let mut sidecars: BTreeMap<String, Input> = sidecars
            .into_iter()
            .map(|s| (s.rel[..s.rel.len() - SIDECAR.len()].to_owned(), s))
            .collect();
        let mut entries = Vec::new();
        let mut failure = None;
        for doc in documents {
            let Some(sidecar) = sidecars.remove(&doc.rel) else {
                rejected.push(reject(
                    &doc.rel,
                    "missing-sidecar",
                    format!(
                        "no `{}{SIDECAR}` beside it",
                        crate::collect::files::printable(&doc.rel)
                    ),
                ));
                continue;
            };
            let (s, evidence_date, expires) = match read_sidecar(&sidecar.bytes, now) {
                Ok(x) => x,
                Err(e) => {
                    rejected.push(reject(&sidecar.rel, "bad-sidecar", e));
                    continue;
                }
            };
            let n = entries.len() + 1;
            let base = format!("manual/{}/doc-{n:05}", self.name);
            let path = format!("{base}.{}", extension(&doc.rel));
            let sidecar_path = format!("{base}{SIDECAR}");
            let origin = crate::collect::files::printable(&doc.rel);
            let stored = ctx
                .evidence
                .write_file(
                    &path,
                    &self.name,
                    SOURCE.source_type,
                    "files",
                    &origin,
                    &doc.bytes,
                )
                .and_then(|_| {
                    ctx.evidence.write_file(
                        &sidecar_path,
                        &self.name,
                        SOURCE.source_type,
                        "files",
                        &crate::collect::files::printable(&sidecar.rel),
                        &sidecar.bytes,
                    )
                });
            if let Err(e) = stored {
                failure.get_or_insert(format!("cannot store a document: {e}"));
                continue;
            }
            let fmt = |t: DateTime<Utc>| crate::evidence::format_time(t);
            entries.push(DocumentEntry {
                path,
                sidecar: sidecar_path,
                sha256: hex::encode(Sha256::digest(&doc.bytes)),
                bytes: doc.bytes.len() as u64,
                original_name: origin,
                title: s.title,
                controls: s
                    .controls
                    .into_iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                owner: s.owner,
                evidence_date: fmt(evidence_date),
                expires: expires.map(fmt),
            });
        }
        for (stem, orphan) in sidecars {
            rejected.push(reject(
                &orphan.rel,
                "orphan-sidecar",
                format!(
                    "no document `{}` beside it",
                    crate::collect::files::printable(&stem)
                ),
            ));
        }
        rejected.sort_by(|a, b| a.input.cmp(&b.input));
        let listed = self.store_index(ctx, &entries);
        let status = match (&failure, &listed) {
            (_, Err(_)) => DatasetStatus::Failed,
            (Some(_), _) => DatasetStatus::Partial,
            _ if !rejected.is_empty() => DatasetStatus::Partial,
            _ => DatasetStatus::Complete,
        };
        let reason = listed.err().or(failure).or_else(|| {
            (!rejected.is_empty()).then(|| {
                format!(
                    "{} input(s) rejected (see `rejected`); {} document(s) accepted",
                    rejected.len(),
                    entries.len()
                )
            })
        });
        let mut datasets = BTreeMap::new();
        datasets.insert(
            DOCUMENTS.to_owned(),
            DatasetReport {
                status,
                pages: usize::from(status != DatasetStatus::Failed),
                records: entries.len(),
                reason,
            },
        );
        let mut report = SourceReport::from_datasets(SOURCE.source_type, datasets);
        report.rejected = rejected;
        report
    }

    fn store_index(
        &self,
        ctx: &CollectContext,
        entries: &[DocumentEntry],
    ) -> std::result::Result<(), String> {
        let mut body = serde_json::to_vec_pretty(&serde_json::json!({ "documents": entries }))
            .map_err(|e| format!("cannot encode the document list: {e}"))?;
        body.push(b'\n');
        let url = "file:///manual";
        ctx.evidence
            .write_page(
                &PageMeta {
                    source: &self.name,
                    source_type: SOURCE.source_type,
                    dataset: DOCUMENTS,
                    page: 1,
                    method: "LIST",
                    url,
                    http_status: None,
                },
                &body,
            )
            .map(|_| ())
            .map_err(|e| format!("cannot store the document list: {e}"))
    }
}

impl Collector for Manual {
    fn name(&self) -> &str {
        &self.name
    }
    fn source_type(&self) -> &'static str {
        SOURCE.source_type
    }
    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> BoxFuture<'a, SourceReport> {
        Box::pin(async move { self.run(ctx) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_are_checked() {
        let now = Utc::now();
        let good = b"title = \"Risk analysis\"\ncontrols = [\"hipaa:164.308(a)(1)(ii)(A)\"]\nowner = \"internal\"\nevidence_date = 2026-01-10\nexpires = 2027-01-10\n";
        assert!(read_sidecar(good, now).is_ok());
        for (bad, want) in [
            (&b"title = \"x\"\ncontrols = []\nevidence_date = 2026-01-10\n"[..], "empty"),
            (b"title = \"x\"\ncontrols = [\"164.308\"]\nevidence_date = 2026-01-10\n", "is not"),
            (b"title = \"x\"\ncontrols = [\"hipaa:1\"]\nevidence_date = \"soon\"\n", "not a date"),
            (b"title = \"x\"\ncontrols = [\"hipaa:1\"]\nevidence_date = 2026-01-10\nexpires = 2025-01-01\n", "before"),
            (b"title = \"x\"\ncontrols = [\"hipaa:1\"]\nevidence_date = 2026-01-10\nownr = \"msp\"\n", "ownr"),
            (b"title = \"x\"\ncontrols = [\"hipaa:1\"]\nevidence_date = 2026-01-10\nowner = \"boss\"\n", "boss"),
        ] {
            let err = read_sidecar(bad, now).expect_err(want);
            assert!(err.contains(want), "{err} should mention {want}");
        }
        assert_eq!(extension("Policy.PDF"), "pdf");
        assert_eq!(extension("weird.p$f"), "bin");
    }
}
