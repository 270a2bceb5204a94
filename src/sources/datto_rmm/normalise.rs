//! Datto RMM pages to devices with patch reporting and antivirus state.
//!
//! - `patchManagement.patchStatus`: `NoPolicy` and `NoData` (or a missing
//!   block) mean the device does not report patch state; any other value
//!   (`FullyPatched`, `ApprovedPending`, `RebootRequired`, `InstallError`)
//!   means it does, and is kept as the status.
//! - `antivirus.antivirusStatus`: `RunningAndUpToDate` is running with current
//!   signatures, `RunningAndNotUpToDate` running with stale ones, `NotRunning`
//!   installed but stopped, `NotDetected` (or no product) no antivirus.
//!
//! The device list carries patch counts, not individual patches, so Datto
//! provides patch *state* but no pending-patch records.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::dataset;
use crate::facts::{
    parse_time, str_field, Antimalware, Device, FactKind, Facts, PatchReport, SourceEvidence,
};

fn devices_array(page: &Value) -> Option<&Vec<Value>> {
    page.get("devices")?.as_array()
}

/// Datto times: epoch milliseconds, epoch seconds or RFC 3339.
fn datto_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    match v? {
        Value::Number(n) => {
            let n = n.as_f64()?;
            if !n.is_finite() || n <= 0.0 {
                return None;
            }
            let secs = if n > 1e11 { n / 1000.0 } else { n };
            Utc.timestamp_opt(secs.trunc() as i64, 0).single()
        }
        other => parse_time(Some(other)),
    }
}

/// Patch reporting from a `patchManagement` block.
pub(crate) fn patch_report(block: Option<&Value>) -> PatchReport {
    let status = block.and_then(|b| str_field(b, "patchStatus"));
    let reporting = status.is_some_and(|s| !matches!(s, "NoPolicy" | "NoData"));
    PatchReport {
        reporting,
        status: status.map(str::to_owned),
        last_install: None,
    }
}

/// Antivirus state from an `antivirus` block.
pub(crate) fn antivirus(block: Option<&Value>) -> Option<Antimalware> {
    let block = block?;
    let status = str_field(block, "antivirusStatus");
    let product = str_field(block, "antivirusProduct")
        .filter(|p| !p.trim().is_empty())
        .map(str::to_owned);
    if product.is_none() && matches!(status, None | Some("NotDetected")) {
        return None;
    }
    let (running, current) = match status {
        Some("RunningAndUpToDate") => (Some(true), Some(true)),
        Some("RunningAndNotUpToDate") => (Some(true), Some(false)),
        Some("NotRunning") => (Some(false), None),
        Some("NotDetected") => (Some(false), None),
        _ => (None, None),
    };
    Some(Antimalware {
        product,
        running,
        real_time: None,
        signatures_current: current,
        signatures_updated: None,
        edr_onboarded: None,
        edr_health: status.map(str::to_owned),
    })
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut problems = Vec::new();
    for (path, r) in src.records(dataset::DEVICES, devices_array, &mut problems) {
        let Some(uid) = str_field(r, "uid").filter(|u| !u.is_empty()) else {
            problems.push(format!("{path}: device without `uid`"));
            continue;
        };
        facts.devices.push(Device {
            id: format!("{}:{uid}", src.name),
            name: str_field(r, "hostname").unwrap_or("(unnamed)").to_owned(),
            os: str_field(r, "operatingSystem").map(str::to_owned),
            last_seen: datto_time(r.get("lastSeen")),
            source: src.name.to_owned(),
            serial: str_field(r, "serialNumber").map(str::to_owned),
            antimalware: antivirus(r.get("antivirus")),
            patch: Some(patch_report(r.get("patchManagement"))),
            ..Device::default()
        });
    }
    for kind in [
        FactKind::Devices,
        FactKind::PatchState,
        FactKind::Antimalware,
    ] {
        facts.provide(kind, src.provenance(dataset::DEVICES, &problems));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn no_policy_and_no_data_are_not_reporting() {
        for (status, reporting) in [
            ("NoPolicy", false),
            ("NoData", false),
            ("FullyPatched", true),
            ("InstallError", true),
        ] {
            let r = patch_report(Some(&json!({"patchStatus": status})));
            assert_eq!(r.reporting, reporting, "{status}");
        }
        assert!(!patch_report(None).reporting);
    }

    #[test]
    fn antivirus_states() {
        let a = antivirus(Some(
            &json!({"antivirusProduct": "Sophos", "antivirusStatus": "RunningAndNotUpToDate"}),
        ))
        .expect("product");
        assert_eq!((a.running, a.signatures_current), (Some(true), Some(false)));
        assert!(antivirus(Some(
            &json!({"antivirusProduct": "", "antivirusStatus": "NotDetected"})
        ))
        .is_none());
        assert_eq!(
            datto_time(Some(&json!(1_700_000_000_000_i64))),
            datto_time(Some(&json!(1_700_000_000)))
        );
    }
}
