//! Endpoint reports: the schema (see [`schema`]), the Linux producer
//! (`auditpack probe`, [`probe`]), and the drop-folder source that reads
//! reports pushed by an RMM or a script.
//!
//! Config: `type = "endpoint-reports"`, `path = "<folder>"` (relative to the
//! config file), optional `max_report_bytes` (default 1 MiB), `max_depth`
//! (folder levels, default 3), `max_age_days` (older reports are refused as
//! `stale`; default 0 = no limit).
//!
//! Each `*.json` file is checked on its own; a bad one is refused with a
//! reason code in `run.json` (`rejected`), never stopping the run:
//! `symlink`, `not-regular-file`, `non-utf8-name`, `hostile-name`,
//! `too-deep`, `unexpected-file`, `oversized`, `too-many-files`, `over-budget`, `unreadable`,
//! `empty`, `malformed`, `wrong-schema`, `wrong-schema-version`, `invalid`,
//! `future-dated`, `stale`, `duplicate-host` (the newest report per host wins).
//! Accepted reports are copied byte for byte to
//! `evidence/<source>/reports/report-NNNNN.json`, numbered in name order;
//! their original names appear only in the custody log, escaped.

mod normalise;
pub mod probe;
pub mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::Source;
use crate::collect::files::{reject, walk, WalkLimits};
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::SourceDecl;
use crate::error::Result;
use crate::evidence::{DatasetReport, DatasetStatus, Rejection, SourceReport};
use schema::{Schema, SCHEMA_ID, SCHEMA_VERSION};

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "endpoint-reports",
    summary: "endpoint reports (auditpack probe, Windows/macOS scripts) from a drop folder",
    build,
    normalise: normalise::normalise,
};

/// Dataset of accepted reports.
pub const REPORTS: &str = "reports";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DropConfig {
    #[serde(rename = "type")]
    _type: String,
    path: PathBuf,
    #[serde(default = "default_max_bytes")]
    max_report_bytes: u64,
    #[serde(default = "default_depth")]
    max_depth: usize,
    #[serde(default)]
    max_age_days: u32,
}

fn default_max_bytes() -> u64 {
    1024 * 1024
}
fn default_depth() -> usize {
    3
}

/// The drop-folder collector.
pub struct EndpointReports {
    name: String,
    folder: PathBuf,
    limits: WalkLimits,
    max_age_days: u32,
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: DropConfig = decl.parse()?;
    Ok(Box::new(EndpointReports {
        name: decl.name.clone(),
        folder: decl.base_dir().join(c.path),
        limits: WalkLimits {
            max_depth: c.max_depth.min(16),
            max_bytes: c.max_report_bytes.clamp(1024, 64 * 1024 * 1024),
            max_files: 100_000,
            max_total_bytes: 512 * 1024 * 1024,
        },
        max_age_days: c.max_age_days,
    }))
}

/// A report that passed validation, waiting for the duplicate check.
struct Candidate {
    rel: String,
    bytes: Vec<u8>,
    host_key: String,
    generated: DateTime<Utc>,
}

/// The identity a report is de-duplicated on: its serial number when real,
/// else its lower-case host name (`serial:<SERIAL>` or `host:<name>`). Unique
/// among a run's accepted reports, so it also makes the device id.
pub fn host_key(doc: &Value) -> String {
    let serial = doc
        .pointer("/host/serial_number")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty() && !s.chars().all(|c| c == '0'));
    match serial {
        Some(s) => format!("serial:{s}"),
        None => format!(
            "host:{}",
            doc.pointer("/host/hostname")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase()
        ),
    }
}

/// Check one report's bytes: `Ok(candidate)` or the refusal.
fn check(
    schema: &Schema,
    rel: &str,
    bytes: Vec<u8>,
    now: DateTime<Utc>,
    max_age_days: u32,
) -> std::result::Result<Candidate, Rejection> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(reject(rel, "empty", "the file is empty"));
    }
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| reject(rel, "malformed", format!("not valid JSON: {e}")))?;
    if doc.get("schema").and_then(Value::as_str) != Some(SCHEMA_ID) {
        return Err(reject(
            rel,
            "wrong-schema",
            format!("`schema` is not \"{SCHEMA_ID}\""),
        ));
    }
    if doc.get("schema_version").and_then(Value::as_u64) != Some(SCHEMA_VERSION) {
        let found = doc
            .get("schema_version")
            .map(Value::to_string)
            .unwrap_or_else(|| "none".into());
        return Err(reject(
            rel,
            "wrong-schema-version",
            format!(
                "schema_version {} is not supported (this build reads {SCHEMA_VERSION})",
                found.chars().take(40).collect::<String>()
            ),
        ));
    }
    let errors = schema.validate(&doc);
    if !errors.is_empty() {
        let shown: Vec<String> = errors.iter().take(5).cloned().collect();
        return Err(reject(
            rel,
            "invalid",
            format!("{} schema violation(s): {}", errors.len(), shown.join("; ")),
        ));
    }
    let generated = doc
        .get("generated_at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| reject(rel, "invalid", "generated_at is not a time"))?;
    if generated > now + chrono::Duration::days(1) {
        return Err(reject(
            rel,
            "future-dated",
            format!("generated_at {generated} is in the future"),
        ));
    }
    if max_age_days > 0 && generated < now - chrono::Duration::days(i64::from(max_age_days)) {
        return Err(reject(
            rel,
            "stale",
            format!("generated_at {generated} is older than {max_age_days} days"),
        ));
    }
    Ok(Candidate {
        rel: rel.to_owned(),
        bytes,
        host_key: host_key(&doc),
        generated,
    })
}

/// Check one report's bytes as the drop folder does (everything but the
/// duplicate-host check): `Ok` or the refusal with its reason code.
///
/// # Errors
/// The [`Rejection`] the drop folder would record for these bytes.
pub fn validate_report(bytes: &[u8], now: DateTime<Utc>) -> std::result::Result<(), Rejection> {
    let schema = Schema::v1().map_err(|e| reject("<schema>", "invalid", e))?;
    check(&schema, "<input>", bytes.to_vec(), now, 0).map(|_| ())
}

/// Validate every input, then keep the newest report per host.
fn select(
    inputs: Vec<crate::collect::files::Input>,
    now: DateTime<Utc>,
    max_age_days: u32,
    rejected: &mut Vec<Rejection>,
) -> std::result::Result<Vec<Candidate>, String> {
    let schema = Schema::v1()?;
    let mut by_host: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for input in inputs {
        match check(&schema, &input.rel, input.bytes, now, max_age_days) {
            Ok(c) => by_host.entry(c.host_key.clone()).or_default().push(c),
            Err(r) => rejected.push(r),
        }
    }
    let mut kept = Vec::new();
    for (host, mut list) in by_host {
        // Newest first; equal times keep the first name.
        list.sort_by(|a, b| b.generated.cmp(&a.generated).then(a.rel.cmp(&b.rel)));
        let mut list = list.into_iter();
        if let Some(winner) = list.next() {
            for loser in list {
                rejected.push(reject(
                    &loser.rel,
                    "duplicate-host",
                    format!(
                        "another report for the same host ({}) is newer or comes first: {}",
                        host.chars().take(80).collect::<String>(),
                        crate::collect::files::printable(&winner.rel)
                    ),
                ));
            }
            kept.push(winner);
        }
    }
    kept.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(kept)
}

impl EndpointReports {
    fn run(&self, ctx: &CollectContext) -> SourceReport {
        let wanted = |name: &str| name.to_ascii_lowercase().ends_with(".json");
        let (inputs, mut rejected) = match walk(&self.folder, self.limits, &wanted) {
            Ok(x) => x,
            Err(e) => return SourceReport::failed(SOURCE.source_type, e),
        };
        let kept = match select(inputs, Utc::now(), self.max_age_days, &mut rejected) {
            Ok(k) => k,
            Err(e) => return SourceReport::failed(SOURCE.source_type, format!("schema: {e}")),
        };
        let mut stored = 0;
        let mut store_failure = None;
        for c in &kept {
            let rel = format!(
                "evidence/{}/{REPORTS}/report-{:05}.json",
                self.name,
                stored + 1
            );
            match ctx.evidence.write_file(
                &rel,
                &self.name,
                SOURCE.source_type,
                REPORTS,
                &crate::collect::files::printable(&c.rel),
                &c.bytes,
            ) {
                Ok(_) => stored += 1,
                Err(e) => {
                    store_failure.get_or_insert(format!("cannot store a report: {e}"));
                }
            }
        }
        rejected.sort_by(|a, b| a.input.cmp(&b.input));
        let status = if store_failure.is_some() && stored == 0 {
            DatasetStatus::Failed
        } else if store_failure.is_some() || !rejected.is_empty() {
            DatasetStatus::Partial
        } else {
            DatasetStatus::Complete
        };
        let reason = store_failure.or_else(|| {
            (!rejected.is_empty()).then(|| {
                format!(
                    "{} report(s) rejected (see `rejected`); {stored} accepted",
                    rejected.len()
                )
            })
        });
        let mut datasets = BTreeMap::new();
        datasets.insert(
            REPORTS.to_owned(),
            DatasetReport {
                status,
                pages: stored,
                records: stored,
                reason,
            },
        );
        let mut report = SourceReport::from_datasets(SOURCE.source_type, datasets);
        report.rejected = rejected;
        report
    }
}

impl Collector for EndpointReports {
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
