//! NinjaOne pages to devices (with patch reporting and antivirus state) and
//! pending patches.
//!
//! - `devices` gives the device records.
//! - `os-patches` (pending) gives [`PendingPatch`]es.
//! - `os-patch-installs` gives each device's last successful install
//!   (`status` INSTALLED, newest `installedAt`) into [`PatchReport`]; a device
//!   with any pending or installed patch record reports patch state.
//!   A failed install newer than the last successful one means installs are
//!   failing on that device; with the install list collected, a device with
//!   no such failure reports none.
//! - `antivirus-status` gives [`Antimalware`]: `productState` ON/ENABLED means
//!   running with real-time protection (Windows Security Center's scanner
//!   state) and OFF/DISABLED/EXPIRED/SNOOZED stopped; `definitionStatus`
//!   UP_TO_DATE/CURRENT means current signatures and OUT_OF_DATE/OUTDATED/
//!   EXPIRED stale ones; any other value says nothing. `timestamp` is the
//!   report time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::dataset;
use crate::facts::{
    parse_epoch, parse_time, str_field, Antimalware, Device, FactKind, Facts, PatchReport,
    PendingPatch, Severity, SourceEvidence,
};

fn bare_array(page: &Value) -> Option<&Vec<Value>> {
    page.as_array()
}

fn results_array(page: &Value) -> Option<&Vec<Value>> {
    page.get("results")?.as_array()
}

fn severity(s: Option<&str>) -> Severity {
    match s.map(str::to_ascii_uppercase).as_deref() {
        Some("CRITICAL") => Severity::Critical,
        Some("IMPORTANT") => Severity::Important,
        Some("MODERATE") => Severity::Moderate,
        Some("OPTIONAL") => Severity::Optional,
        _ => Severity::Unknown,
    }
}

/// Epoch seconds (NinjaOne's format) or RFC 3339.
fn when(v: Option<&Value>) -> Option<DateTime<Utc>> {
    parse_epoch(v).or_else(|| parse_time(v))
}

#[derive(Default)]
struct PatchSummary {
    pending: usize,
    installed: usize,
    failed_after_last_install: bool,
    last_install: Option<DateTime<Utc>>,
    last_failure: Option<DateTime<Utc>>,
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut summaries: BTreeMap<i64, PatchSummary> = BTreeMap::new();

    let mut problems = Vec::new();
    for (path, r) in src.records(dataset::OS_PATCHES, results_array, &mut problems) {
        let Some(device) = r.get("deviceId").and_then(Value::as_i64) else {
            problems.push(format!("{path}: patch without numeric deviceId"));
            continue;
        };
        summaries.entry(device).or_default().pending += 1;
        facts.patches.push(PendingPatch {
            device_id: format!("{}:{device}", src.name),
            name: str_field(r, "name").unwrap_or("(unnamed patch)").to_owned(),
            kb: str_field(r, "kbNumber").map(str::to_owned),
            severity: severity(str_field(r, "severity")),
            status: str_field(r, "status").map(str::to_owned),
            detected: parse_epoch(r.get("timestamp")),
        });
    }
    facts.provide(
        FactKind::PendingPatches,
        src.provenance(dataset::OS_PATCHES, &problems),
    );

    let installs_collected = src.report.datasets.contains_key(dataset::OS_PATCH_INSTALLS);
    let mut install_problems = Vec::new();
    for (path, r) in src.records(
        dataset::OS_PATCH_INSTALLS,
        results_array,
        &mut install_problems,
    ) {
        let Some(device) = r.get("deviceId").and_then(Value::as_i64) else {
            install_problems.push(format!("{path}: install without numeric deviceId"));
            continue;
        };
        let at = when(r.get("installedAt")).or_else(|| when(r.get("timestamp")));
        let s = summaries.entry(device).or_default();
        match str_field(r, "status")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("INSTALLED") => {
                s.installed += 1;
                s.last_install = s.last_install.max(at);
            }
            Some("FAILED") => s.last_failure = s.last_failure.max(at),
            _ => install_problems.push(format!("{path}: install with unknown status")),
        }
    }
    for s in summaries.values_mut() {
        s.failed_after_last_install = match (s.last_failure, s.last_install) {
            (Some(f), Some(i)) => f > i,
            (Some(_), None) => true,
            _ => false,
        };
    }

    let mut av: BTreeMap<i64, Antimalware> = BTreeMap::new();
    let mut av_problems = Vec::new();
    for (path, r) in src.records(dataset::ANTIVIRUS_STATUS, results_array, &mut av_problems) {
        let Some(device) = r.get("deviceId").and_then(Value::as_i64) else {
            av_problems.push(format!("{path}: antivirus status without numeric deviceId"));
            continue;
        };
        let state = str_field(r, "productState").map(str::to_ascii_uppercase);
        let definitions = str_field(r, "definitionStatus").map(str::to_ascii_uppercase);
        // Windows Security Center's product state is the on-access scanner:
        // on means running with real-time protection.
        let on = match state.as_deref() {
            Some("ON" | "ENABLED") => Some(true),
            Some("OFF" | "DISABLED" | "EXPIRED" | "SNOOZED") => Some(false),
            _ => None,
        };
        av.insert(
            device,
            Antimalware {
                product: str_field(r, "productName").map(str::to_owned),
                running: on,
                real_time: on,
                signatures_current: match definitions.as_deref() {
                    Some("UP_TO_DATE" | "CURRENT") => Some(true),
                    Some("OUT_OF_DATE" | "OUTDATED" | "EXPIRED") => Some(false),
                    _ => None,
                },
                reported: when(r.get("timestamp")),
                ..Antimalware::default()
            },
        );
    }

    let mut problems = Vec::new();
    for (path, r) in src.records(dataset::DEVICES, bare_array, &mut problems) {
        let Some(id) = r.get("id").and_then(Value::as_i64) else {
            problems.push(format!("{path}: device without numeric id"));
            continue;
        };
        let name = str_field(r, "systemName")
            .or_else(|| str_field(r, "dnsName"))
            .unwrap_or("(unnamed)");
        let patch = summaries.get(&id).map(|s| PatchReport {
            reporting: s.pending + s.installed > 0,
            status: Some(
                if s.failed_after_last_install {
                    "InstallError"
                } else if s.pending > 0 {
                    "PatchesPending"
                } else {
                    "NoPendingPatches"
                }
                .to_owned(),
            ),
            last_install: s.last_install,
            install_failing: installs_collected.then_some(s.failed_after_last_install),
            pending_without_age: false,
        });
        let patch = patch.or(Some(PatchReport {
            reporting: false,
            status: None,
            last_install: None,
            install_failing: None,
            pending_without_age: false,
        }));
        facts.devices.push(Device {
            id: format!("{}:{id}", src.name),
            name: name.to_owned(),
            os: str_field(r, "nodeClass").map(str::to_owned),
            last_seen: parse_epoch(r.get("lastContact")),
            source: src.name.to_owned(),
            serial: r
                .pointer("/system/serialNumber")
                .and_then(Value::as_str)
                .map(str::to_owned),
            antimalware: av.remove(&id),
            patch,
            ..Device::default()
        });
    }
    facts.provide(
        FactKind::Devices,
        src.provenance(dataset::DEVICES, &problems),
    );
    facts.provide(
        FactKind::PatchState,
        src.provenance(dataset::OS_PATCH_INSTALLS, &install_problems),
    );
    facts.provide(
        FactKind::Antimalware,
        src.provenance(dataset::ANTIVIRUS_STATUS, &av_problems),
    );
}
