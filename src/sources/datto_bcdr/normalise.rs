//! Datto BCDR pages to protected systems.
//!
//! One [`ProtectedSystem`] per asset of every appliance (`isArchived`
//! assets are left out: an archived agent keeps its points but is no longer
//! backed up, so a machine still in use shows up as unprotected):
//! - kind: `type` `agent` (or no type) is a machine, `share` a workload; any
//!   other value is a workload with the raw value noted;
//! - `lastSnapshot` (epoch seconds) is the newest successful backup and the
//!   local copy's newest point; `latestOffsite` the Datto Cloud copy's newest
//!   point (no offsite copy when 0 or absent);
//! - the newest entry of `backups` (by `timestamp`) gives the last run and
//!   its `backup.status`: `success` is success, `failure` or `failed` is a
//!   failure, anything else is kept as unknown with its raw value; the newest
//!   failing entry is the last failure, its `errorMessage` a note;
//! - `isPaused` is paused;
//! - screenshot verification (`lastScreenshotAttempt` with
//!   `lastScreenshotAttemptStatus`, and each backup's
//!   `advancedVerification.screenshotVerification.status`) is a boot test;
//!   `localVerification.status` an integrity check;
//! - immutability: the API does not say whether the appliance's or the
//!   cloud's points can be deleted, so neither copy claims it.
//!
//! The appliance's name (from `devices`) names the job; the asset's serial
//! comes from its request URL (`/v1/bcdr/device/{serial}/asset`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::dataset;
use crate::facts::{
    parse_epoch, parse_time, str_field, BackupCopy, BackupResult, CopyLocation, FactKind, Facts,
    ProtectedKind, ProtectedSystem, RestoreTest, RestoreTestKind, SourceEvidence, TestResult,
};

const PRODUCT: &str = "Datto BCDR";

fn items(page: &Value) -> Option<&Vec<Value>> {
    match page {
        Value::Array(items) => Some(items),
        Value::Object(_) => page.get("items")?.as_array(),
        _ => None,
    }
}

/// Epoch seconds or RFC 3339; 0 and negative mean "never".
fn when(v: Option<&Value>) -> Option<DateTime<Utc>> {
    parse_epoch(v).or_else(|| parse_time(v))
}

fn status(raw: Option<&str>) -> Option<BackupResult> {
    let raw = raw?;
    Some(match raw.to_ascii_lowercase().as_str() {
        "success" => BackupResult::Success,
        "failure" | "failed" => BackupResult::Failed,
        _ => BackupResult::Unknown(raw.to_owned()),
    })
}

fn test_result(v: Option<&Value>) -> Option<TestResult> {
    Some(match v? {
        Value::Bool(true) => TestResult::Passed,
        Value::Bool(false) => TestResult::Failed,
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "success" | "passed" => TestResult::Passed,
            "failure" | "failed" => TestResult::Failed,
            _ => TestResult::Unknown(s.clone()),
        },
        Value::Null => return None,
        other => TestResult::Unknown(other.to_string()),
    })
}

/// The appliance serial of an asset page, from its request URL.
fn serial_of(url: &str) -> Option<&str> {
    let path = url.split('?').next()?;
    let rest = path.split("/v1/bcdr/device/").nth(1)?;
    rest.strip_suffix("/asset")
}

fn asset(
    src: &SourceEvidence<'_>,
    serial: &str,
    appliance: &str,
    a: &Value,
) -> Result<Option<ProtectedSystem>, String> {
    let name = str_field(a, "name").ok_or("an asset without `name`")?;
    if a.get("isArchived").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let key = str_field(a, "volume")
        .or_else(|| str_field(a, "uuid"))
        .unwrap_or(name);
    let mut notes = Vec::new();
    let kind = match str_field(a, "type") {
        None | Some("agent") => ProtectedKind::Machine,
        Some("share") => ProtectedKind::Workload,
        Some(other) => {
            notes.push(format!("asset type {other:?} is not a documented value"));
            ProtectedKind::Unknown
        }
    };
    let mut b = ProtectedSystem::new(src.name, &format!("{serial}/{key}"), PRODUCT, name, kind);
    b.hostname = str_field(a, "fqdn")
        .filter(|f| !f.trim().is_empty())
        .map(str::to_owned);
    b.os = str_field(a, "os").map(str::to_owned);
    b.jobs = vec![format!("appliance {appliance}")];
    b.paused = a.get("isPaused").and_then(Value::as_bool);
    let snapshot = when(a.get("lastSnapshot"));
    let offsite = when(a.get("latestOffsite"));
    b.last_success = snapshot;
    let mut tests = Vec::new();
    let mut runs: Vec<(DateTime<Utc>, BackupResult, Option<String>)> = Vec::new();
    for run in a
        .get("backups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(at) = when(run.get("timestamp")) else {
            continue;
        };
        let backup = run.get("backup");
        if let Some(result) = status(backup.and_then(|x| str_field(x, "status"))) {
            let error = backup
                .and_then(|x| str_field(x, "errorMessage"))
                .filter(|e| !e.trim().is_empty())
                .map(str::to_owned);
            runs.push((at, result, error));
        }
        if let Some(r) = test_result(run.pointer("/localVerification/status")) {
            tests.push(RestoreTest {
                kind: RestoreTestKind::Integrity,
                at: Some(at),
                result: r,
                detail: Some("local verification".into()),
            });
        }
        if let Some(r) =
            test_result(run.pointer("/advancedVerification/screenshotVerification/status"))
        {
            tests.push(RestoreTest {
                kind: RestoreTestKind::Boot,
                at: Some(at),
                result: r,
                detail: Some("screenshot verification".into()),
            });
        }
    }
    if let (Some(at), Some(r)) = (
        when(a.get("lastScreenshotAttempt")),
        test_result(a.get("lastScreenshotAttemptStatus")),
    ) {
        tests.push(RestoreTest {
            kind: RestoreTestKind::Boot,
            at: Some(at),
            result: r,
            detail: Some("screenshot verification".into()),
        });
    }
    runs.sort_by_key(|r| r.0);
    if let Some((at, result, _)) = runs.last() {
        b.last_run = Some(*at);
        b.last_result = result.clone();
    }
    if let Some((at, _, error)) = runs.iter().rev().find(|r| r.1 == BackupResult::Failed) {
        b.last_failure = Some(*at);
        if let Some(e) = error {
            notes.push(format!("last failure: {e}"));
        }
    }
    if let BackupResult::Unknown(raw) = &b.last_result {
        notes.push(format!("backup status {raw:?} is not a documented value"));
    }
    let mut copies = vec![BackupCopy {
        location: CopyLocation::Local,
        target: Some(appliance.to_owned()),
        latest: snapshot,
        immutable: None,
        offline: Some(false),
    }];
    if offsite.is_some() {
        copies.push(BackupCopy {
            location: CopyLocation::Cloud,
            target: Some("Datto Cloud".into()),
            latest: offsite,
            immutable: None,
            offline: None,
        });
    }
    b.copies = Some(copies);
    tests.sort_by_key(|x| x.at);
    tests.dedup();
    b.tests = Some(tests);
    b.notes = notes;
    Ok(Some(b))
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut problems = Vec::new();
    let mut appliances: BTreeMap<String, String> = BTreeMap::new();
    for (path, page) in src.pages.get(dataset::DEVICES).into_iter().flatten() {
        // The list shape, or one device asked for by serial number.
        let one = std::slice::from_ref(page);
        let devices = match page.get("items") {
            Some(items) => items.as_array().map(Vec::as_slice),
            None if page.get("serialNumber").is_some() => Some(one),
            None => None,
        };
        let Some(devices) = devices else {
            problems.push(format!("{path}: neither a device list nor a device"));
            continue;
        };
        for d in devices {
            if let Some(serial) = str_field(d, "serialNumber") {
                let name = str_field(d, "name").unwrap_or(serial);
                appliances.insert(serial.to_owned(), name.to_owned());
            }
        }
    }
    facts.provide(
        FactKind::Backups,
        src.provenance(dataset::DEVICES, &problems),
    );
    let mut problems = Vec::new();
    for (path, a) in src.records(dataset::ASSETS, items, &mut problems) {
        let Some(serial) = src.url_of(path).and_then(serial_of) else {
            problems.push(format!("{path}: the request URL names no appliance"));
            continue;
        };
        let appliance = appliances.get(serial).map_or(serial, String::as_str);
        match asset(src, serial, appliance, a) {
            Ok(Some(b)) => facts.backups.push(b),
            Ok(None) => {}
            Err(why) => problems.push(format!("{path}: {why}")),
        }
    }
    let provenance = src.provenance(dataset::ASSETS, &problems);
    facts.provide(FactKind::Backups, provenance.clone());
    facts.provide(FactKind::RestoreTests, provenance);
}
