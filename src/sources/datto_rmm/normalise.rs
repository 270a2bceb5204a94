//! Datto RMM pages to devices with patch reporting and antivirus state.
//!
//! - `patchManagement.patchStatus`: `NoPolicy` and `NoData` (or a missing
//!   block) mean the device does not report patch state; any other value
//!   (`FullyPatched`, `ApprovedPending`, `RebootRequired`, `InstallError`)
//!   means it does, and is kept as the status.
//!   `InstallError` means patches are failing to install; `ApprovedPending`,
//!   `RebootRequired` and `InstallError` say patches are pending without
//!   listing them or their ages.
//! - `antivirus.antivirusStatus`: `RunningAndUpToDate` is running with current
//!   signatures, `RunningAndNotUpToDate` running with stale ones, `NotRunning`
//!   installed but stopped, `NotDetected` no antivirus found (a report of
//!   absence, not silence). Datto has no real-time protection flag: that state
//!   is left unreported. The device's `lastSeen` is the report time.
//!
//! - `deviceClass` `printer` and `rmmnetworkdevice` are agentless devices
//!   (printers, network gear): recorded with that as their operating system,
//!   so the endpoint and patch checks leave them out.
//!
//! The device list carries patch counts, not individual patches, so Datto
//! provides patch *state* but no pending-patch records.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::dataset;
use crate::facts::{
    parse_time, patch_status, str_field, Antimalware, Device, FactKind, Facts, PatchReport,
    SourceEvidence,
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

/// What the device runs. Datto RMM lists agentless devices beside the
/// agent ones: `deviceClass` is `device` for a machine with the agent,
/// `esxihost` for a hypervisor it audits, `printer` for an SNMP printer and
/// `rmmnetworkdevice` for network gear found by its network monitor (Datto
/// RMM API v2 `Device.deviceClass`; its printer and ESXi audits are separate
/// endpoints, `/v2/audit/printer/{uid}` and `/v2/audit/esxihost/{uid}`).
/// Printers and network gear carry no `operatingSystem`, run no antivirus
/// and get no OS patches: they are named as such so that the endpoint and
/// patch checks leave them out rather than judge them as machines of
/// unknown kind.
fn operating_system(r: &Value) -> Option<String> {
    match str_field(r, "deviceClass") {
        Some(c) if c.eq_ignore_ascii_case("printer") => Some("printer".to_owned()),
        Some(c) if c.eq_ignore_ascii_case("rmmnetworkdevice") => Some("network device".to_owned()),
        _ => str_field(r, "operatingSystem").map(str::to_owned),
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
        install_failing: status.and_then(patch_status::install_failing),
        pending_without_age: status.is_some_and(patch_status::pending_without_age),
    }
}

/// Antivirus state from an `antivirus` block.
pub(crate) fn antivirus(block: Option<&Value>) -> Option<Antimalware> {
    let block = block?;
    let status = str_field(block, "antivirusStatus");
    let product = str_field(block, "antivirusProduct")
        .filter(|p| !p.trim().is_empty())
        .map(str::to_owned);
    if product.is_none() && status.is_none() {
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
        signatures_current: current,
        edr_health: status.map(str::to_owned),
        ..Antimalware::default()
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
            os: operating_system(r),
            last_seen: datto_time(r.get("lastSeen")),
            source: src.name.to_owned(),
            serial: str_field(r, "serialNumber").map(str::to_owned),
            antimalware: antivirus(r.get("antivirus")).map(|a| Antimalware {
                reported: datto_time(r.get("lastSeen")),
                ..a
            }),
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
        let error = patch_report(Some(&json!({"patchStatus": "InstallError"})));
        assert_eq!(error.install_failing, Some(true));
        assert!(error.pending_without_age);
        let reboot = patch_report(Some(&json!({"patchStatus": "RebootRequired"})));
        assert_eq!(reboot.install_failing, None);
        assert!(reboot.pending_without_age);
        let done = patch_report(Some(&json!({"patchStatus": "FullyPatched"})));
        assert_eq!(
            (done.install_failing, done.pending_without_age),
            (Some(false), false)
        );
        assert!(!patch_report(None).reporting);
    }

    #[test]
    fn printers_and_network_gear_are_agentless() {
        use crate::facts::DeviceClass;
        for (device, class) in [
            (
                json!({"deviceClass": "printer", "operatingSystem": null}),
                DeviceClass::Other,
            ),
            (
                json!({"deviceClass": "rmmnetworkdevice"}),
                DeviceClass::Other,
            ),
            (
                json!({"deviceClass": "device", "operatingSystem": "Microsoft Windows 11 Pro"}),
                DeviceClass::Workstation,
            ),
        ] {
            let os = operating_system(&device).unwrap_or_default();
            assert_eq!(DeviceClass::of_os(&os), class, "{device}");
        }
        assert_eq!(operating_system(&json!({"deviceClass": "device"})), None);
    }

    #[test]
    fn antivirus_states() {
        let a = antivirus(Some(
            &json!({"antivirusProduct": "Sophos", "antivirusStatus": "RunningAndNotUpToDate"}),
        ))
        .expect("product");
        assert_eq!((a.running, a.signatures_current), (Some(true), Some(false)));
        let none = antivirus(Some(
            &json!({"antivirusProduct": "", "antivirusStatus": "NotDetected"}),
        ))
        .expect("absence is reported");
        assert_eq!((none.product, none.running), (None, Some(false)));
        assert!(antivirus(Some(&json!({}))).is_none());
        assert_eq!(
            datto_time(Some(&json!(1_700_000_000_000_i64))),
            datto_time(Some(&json!(1_700_000_000)))
        );
    }
}
