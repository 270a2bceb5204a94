//! Cove `EnumerateAccountStatistics` pages to protected systems.
//!
//! One [`ProtectedSystem`] per device (`AccountId`), a machine named by its
//! computer name (`I18`, else the device name `I1`). For the total of all
//! data sources (`D9`):
//! - `D9F00`, the last session status: 5 Completed is success, 8
//!   CompletedWithErrors a warning, 2 Failed, 3 Aborted, 6 Interrupted, 10
//!   OverQuota and 11 NoSelection (nothing selected to back up) failures, 1
//!   InProcess, 9 InProgressWithFaults and 12 Restarted running, 7 NotStarted
//!   no result; any other value is kept as unknown with its raw value;
//! - `D9F09` (Unix seconds) is the last successful session, `D9F15` the last
//!   session (its time is the last failure when the status is one);
//! - `D9F06`, the last session's error count, is noted when above zero.
//!
//! Cove keeps backups in N-able's cloud storage: one cloud copy whose newest
//! point is the last successful session; whether it is immutable is not
//! among these columns, so it is not claimed. Recovery tests are not among
//! these columns either: Cove provides backups, not restore tests.

use serde_json::Value;

use super::dataset;
use crate::facts::{
    parse_epoch, BackupCopy, BackupResult, CopyLocation, FactKind, Facts, ProtectedKind,
    ProtectedSystem, SourceEvidence,
};

const PRODUCT: &str = "N-able Cove Data Protection";

fn devices(page: &Value) -> Option<&Vec<Value>> {
    page.pointer("/result/result")?.as_array()
}

/// The value of column `code` in a device's `Settings`.
fn column<'v>(device: &'v Value, code: &str) -> Option<&'v str> {
    device
        .get("Settings")?
        .as_array()?
        .iter()
        .find_map(|s| s.get(code))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn epoch(device: &Value, code: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs: f64 = column(device, code)?.parse().ok()?;
    parse_epoch(Some(&Value::from(secs)))
}

/// A last session status code as a result; `None` when none is given.
fn result(code: Option<&str>) -> BackupResult {
    match code {
        None | Some("0") => BackupResult::None,
        Some("5") => BackupResult::Success,
        Some("8") => BackupResult::Warning,
        Some("2" | "3" | "6" | "10" | "11") => BackupResult::Failed,
        Some("1" | "9" | "12") => BackupResult::Running,
        Some("7") => BackupResult::None,
        Some(other) => BackupResult::Unknown(other.to_owned()),
    }
}

fn device(src: &SourceEvidence<'_>, d: &Value) -> Result<ProtectedSystem, String> {
    let id = match d.get("AccountId") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("a device without `AccountId`".into()),
    };
    let name = column(d, "I18")
        .or_else(|| column(d, "I1"))
        .ok_or("a device with neither computer name (I18) nor device name (I1)")?;
    let mut b = ProtectedSystem::new(src.name, &id, PRODUCT, name, ProtectedKind::Machine);
    b.jobs =
        vec![column(d, "I1")
            .map_or_else(|| "Cove device".to_owned(), |n| format!("Cove device {n}"))];
    b.last_success = epoch(d, "D9F09");
    b.last_run = epoch(d, "D9F15");
    b.last_result = result(column(d, "D9F00"));
    match &b.last_result {
        BackupResult::Failed => {
            b.last_failure = b.last_run;
            if column(d, "D9F00") == Some("11") {
                b.notes
                    .push("no data is selected for backup (NoSelection)".into());
            }
        }
        BackupResult::Unknown(raw) => b.notes.push(format!(
            "last session status {raw:?} is not a documented value"
        )),
        _ => {}
    }
    if let Some(n) = column(d, "D9F06")
        .and_then(|e| e.parse::<u64>().ok())
        .filter(|n| *n > 0)
    {
        b.notes.push(format!("{n} error(s) in the last session"));
    }
    if let Some(sources) = column(d, "I78") {
        b.notes.push(format!("data sources: {sources}"));
    }
    b.copies = Some(vec![BackupCopy {
        location: CopyLocation::Cloud,
        target: Some("Cove cloud storage".into()),
        latest: b.last_success,
        immutable: None,
        offline: None,
    }]);
    Ok(b)
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut problems = Vec::new();
    for (path, d) in src.records(dataset::DEVICE_STATISTICS, devices, &mut problems) {
        match device(src, d) {
            Ok(b) => facts.backups.push(b),
            Err(why) => problems.push(format!("{path}: {why}")),
        }
    }
    facts.provide(
        FactKind::Backups,
        src.provenance(dataset::DEVICE_STATISTICS, &problems),
    );
}
