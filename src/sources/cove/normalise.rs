//! Cove `EnumerateAccountStatistics` pages to protected systems.
//!
//! One [`ProtectedSystem`] per device (`AccountId`). What it is comes from
//! the account type (`I59`): 1 (Backup Manager, an agent on a server or
//! workstation) is a machine named by its computer name (`I18`, else the
//! device name `I1`); 2 (Microsoft 365) is a workload named by its device
//! name, never linked to the device inventory; no type, or any other value,
//! is of unknown kind (noted, never linked: it proves no device backed up).
//! For the total of all data sources (`D9`):
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

/// What an account type (`I59`) says the account is, with a note when the
/// value is absent or not documented.
fn account_kind(code: Option<&str>) -> (ProtectedKind, Option<String>) {
    match code {
        Some("1") => (ProtectedKind::Machine, None),
        Some("2") => (ProtectedKind::Workload, None),
        None => (
            ProtectedKind::Unknown,
            Some("account type (I59) not reported: not taken for a machine".into()),
        ),
        Some(other) => (
            ProtectedKind::Unknown,
            Some(format!(
                "account type (I59) {other:?} is not a documented value: not taken for a machine"
            )),
        ),
    }
}

fn device(src: &SourceEvidence<'_>, d: &Value) -> Result<ProtectedSystem, String> {
    let id = match d.get("AccountId") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("a device without `AccountId`".into()),
    };
    let (kind, kind_note) = account_kind(column(d, "I59"));
    // A Microsoft 365 account has no computer: its device name names it.
    let name = match kind {
        ProtectedKind::Workload => column(d, "I1").or_else(|| column(d, "I18")),
        _ => column(d, "I18").or_else(|| column(d, "I1")),
    }
    .ok_or("a device with neither computer name (I18) nor device name (I1)")?;
    let mut b = ProtectedSystem::new(src.name, &id, PRODUCT, name, kind);
    let what = if kind == ProtectedKind::Workload {
        "Cove Microsoft 365 backup"
    } else {
        "Cove device"
    };
    b.jobs = vec![column(d, "I1").map_or_else(|| what.to_owned(), |n| format!("{what} {n}"))];
    b.notes.extend(kind_note);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_types_are_read_as_documented_and_nothing_else_is_a_machine() {
        assert_eq!(account_kind(Some("1")).0, ProtectedKind::Machine);
        assert_eq!(account_kind(Some("2")).0, ProtectedKind::Workload);
        for odd in [None, Some("0"), Some("3"), Some("M365")] {
            let (kind, note) = account_kind(odd);
            assert_eq!(kind, ProtectedKind::Unknown, "{odd:?}");
            assert!(note.is_some_and(|n| n.contains("not taken for a machine")));
        }
    }
}
