//! Intune evidence to device facts: inventory, OS, last sync, compliance,
//! encryption, serial and Entra device id, and Windows protection state
//! (per device, or from the `DefenderAgents` export) as anti-malware state.

use std::collections::HashMap;

use serde_json::Value;

use super::graph::{segment_after, value_array};
use super::{dataset, export};
use crate::evidence::DatasetStatus;
use crate::facts::{
    parse_time, str_field, Antimalware, Compliance, Device, FactKind, Facts, SourceEvidence,
};

/// Product name for Intune's protection state.
pub const DEFENDER_ANTIVIRUS: &str = "Microsoft Defender Antivirus";

fn compliance(state: Option<&str>) -> Option<Compliance> {
    Some(match state? {
        "compliant" => Compliance::Compliant,
        "noncompliant" => Compliance::Noncompliant,
        "inGracePeriod" => Compliance::InGracePeriod,
        _ => Compliance::Unknown,
    })
}

/// Serials Intune reports for machines without a real one.
fn real_serial(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty()
        && !t.eq_ignore_ascii_case("default string")
        && !t.eq_ignore_ascii_case("to be filled by o.e.m.")
        && !t.eq_ignore_ascii_case("system serial number")
        && !t.chars().all(|c| c == '0')
}

fn real_guid(s: &str) -> bool {
    !s.is_empty() && s.chars().any(|c| c.is_ascii_hexdigit() && c != '0')
}

/// `productStatus` flags meaning the antivirus service is not protecting.
const NOT_RUNNING: &[&str] = &[
    "serviceNotRunning",
    "serviceStartedWithoutMalwareProtection",
    "productExpired",
];
/// `productStatus` flags meaning signatures are out of date.
const SIGNATURES_OUT_OF_DATE: &[&str] = &["avSignaturesOutOfDate", "asSignaturesOutOfDate"];
/// `productStatus` flags meaning the engine or platform is out of date.
const PLATFORM_OUT_OF_DATE: &[&str] = &["platformOutOfDate"];
/// `productStatus` flags meaning a detected threat still needs action.
const THREAT_ACTION: &[&str] = &[
    "pendingFullScanDueToThreatAction",
    "pendingRebootDueToThreatAction",
    "pendingManualStepsDueToThreatAction",
    "threatRemediationFailedCritically",
    "threatRemediationFailedNonCritically",
    "offlineScanRequired",
];
/// `deviceState` flags meaning the device needs action after a detection.
const DEVICE_STATE_ACTION: &[&str] = &[
    "fullScanPending",
    "rebootPending",
    "manualStepsPending",
    "offlineScanPending",
    "critical",
];

/// The flags of a Graph flags enum (`"rebootPending,fullScanPending"`; the
/// export may separate them with `|`, `;` or spaces).
fn flags(text: &str) -> Vec<String> {
    text.split([',', '|', ';', ' '])
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

fn has_any(flags: &[String], wanted: &[&str]) -> bool {
    flags
        .iter()
        .any(|f| wanted.iter().any(|w| w.eq_ignore_ascii_case(f)))
}

/// Protection state fields (Graph names) to anti-malware facts: running from
/// `malwareProtectionEnabled` unless `productStatus` says the service is not
/// running, started without protection or expired; signatures from
/// `signatureUpdateOverdue` and the signature flags of `productStatus`;
/// engine and platform from `productStatus`; threats needing action from
/// `productStatus` and `deviceState`; the report time from
/// `lastReportedDateTime`.
fn antimalware(get: &dyn Fn(&str) -> Option<Value>) -> Antimalware {
    let flag = |k: &str| {
        get(k).and_then(|v| match v {
            Value::Bool(b) => Some(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        })
    };
    let text = |k: &str| {
        get(k).and_then(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })
    };
    let product = text("productStatus").map(|t| flags(&t));
    let device = text("deviceState").map(|t| flags(&t));
    let mut running = flag("malwareProtectionEnabled");
    let mut signatures_current = flag("signatureUpdateOverdue").map(|overdue| !overdue);
    let mut engine_current = None;
    let mut attention = None;
    if let Some(p) = &product {
        if has_any(p, NOT_RUNNING) {
            running = Some(false);
        }
        if has_any(p, SIGNATURES_OUT_OF_DATE) {
            signatures_current = Some(false);
        }
        engine_current = Some(!has_any(p, PLATFORM_OUT_OF_DATE));
    }
    if product.is_some() || device.is_some() {
        let mut list: Vec<String> = product
            .iter()
            .flatten()
            .filter(|f| has_any(std::slice::from_ref(*f), THREAT_ACTION))
            .map(|f| format!("productStatus {f}"))
            .collect();
        list.extend(
            device
                .iter()
                .flatten()
                .filter(|f| has_any(std::slice::from_ref(*f), DEVICE_STATE_ACTION))
                .map(|f| format!("deviceState {f}")),
        );
        attention = Some(list);
    }
    Antimalware {
        product: Some(DEFENDER_ANTIVIRUS.to_owned()),
        running,
        real_time: flag("realTimeProtectionEnabled"),
        signatures_current,
        engine_current,
        attention,
        reported: text("lastReportedDateTime").and_then(|t| crate::facts::parse_rfc3339(&t)),
        ..Antimalware::default()
    }
}

/// Export column names to the Graph property names of the per-device answer.
fn export_column(column: &str) -> Option<&'static str> {
    Some(match column {
        "MalwareProtectionEnabled" => "malwareProtectionEnabled",
        "RealTimeProtectionEnabled" => "realTimeProtectionEnabled",
        "SignatureUpdateOverdue" => "signatureUpdateOverdue",
        "ProductStatus" => "productStatus",
        "DeviceState" => "deviceState",
        "LastReportedDateTime" => "lastReportedDateTime",
        _ => return None,
    })
}

/// Protection state per Intune device id, from whichever dataset was collected.
fn protection_states(src: &SourceEvidence<'_>, facts: &mut Facts) -> HashMap<String, Antimalware> {
    let mut out = HashMap::new();
    if src.report.datasets.contains_key(dataset::PROTECTION_STATE) {
        let mut problems = Vec::new();
        for (path, state) in src
            .pages
            .get(dataset::PROTECTION_STATE)
            .into_iter()
            .flatten()
        {
            let Some(device) = src
                .url_of(path)
                .and_then(|u| segment_after(u, "managedDevices"))
            else {
                problems.push(format!("{path}: the custody log does not name its device"));
                continue;
            };
            out.insert(device.to_owned(), antimalware(&|k| state.get(k).cloned()));
        }
        facts.provide(
            FactKind::Antimalware,
            src.provenance(dataset::PROTECTION_STATE, &problems),
        );
    }
    if src.report.datasets.contains_key(dataset::PROTECTION_EXPORT) {
        let mut problems = Vec::new();
        let mut unusable = false;
        for (path, _) in src
            .pages
            .get(dataset::PROTECTION_EXPORT)
            .into_iter()
            .flatten()
        {
            let Some(bytes) = src.binary.get(path) else {
                problems.push(format!("{path}: not a ZIP evidence file"));
                unusable = true;
                continue;
            };
            let report = match export::read_report(bytes) {
                Ok(report) => report,
                Err(e) => {
                    problems.push(format!("{path}: {e}"));
                    unusable = true;
                    continue;
                }
            };
            let Some(device_col) = report.column(export::DEVICE_ID) else {
                problems.push(format!("{path}: the report has no DeviceId column"));
                unusable = true;
                continue;
            };
            let graph_columns: Vec<Option<&str>> =
                report.columns.iter().map(|c| export_column(c)).collect();
            for (n, cells) in report.rows.iter().enumerate() {
                if cells.len() != report.columns.len() {
                    problems.push(format!(
                        "{path}: row {} has {} cells for {} columns",
                        n + 1,
                        cells.len(),
                        report.columns.len()
                    ));
                    continue;
                }
                let device = &cells[device_col];
                if device.is_empty() {
                    problems.push(format!("{path}: row {} has no DeviceId", n + 1));
                    continue;
                }
                let get = |graph_name: &str| {
                    graph_columns
                        .iter()
                        .position(|c| *c == Some(graph_name))
                        .and_then(|i| cells.get(i))
                        .filter(|cell| !cell.is_empty())
                        .map(|cell| Value::String(cell.clone()))
                };
                out.insert(device.clone(), antimalware(&get));
            }
        }
        let mut provenance = src.provenance(dataset::PROTECTION_EXPORT, &problems);
        if unusable {
            // A report that cannot be read is no evidence of protection at all.
            provenance.status = DatasetStatus::Failed;
        }
        facts.provide(FactKind::Antimalware, provenance);
    }
    out
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    if !src.report.datasets.contains_key(dataset::MANAGED_DEVICES) {
        return;
    }
    let mut states = protection_states(src, facts);
    let mut problems = Vec::new();
    for (path, d) in src.records(dataset::MANAGED_DEVICES, value_array, &mut problems) {
        let Some(id) = str_field(d, "id") else {
            problems.push(format!("{path}: managed device without id"));
            continue;
        };
        facts.devices.push(Device {
            id: format!("{}:{id}", src.name),
            name: str_field(d, "deviceName").unwrap_or(id).to_owned(),
            os: str_field(d, "operatingSystem").map(str::to_owned),
            last_seen: parse_time(d.get("lastSyncDateTime")),
            source: src.name.to_owned(),
            os_version: str_field(d, "osVersion").map(str::to_owned),
            serial: str_field(d, "serialNumber")
                .filter(|s| real_serial(s))
                .map(str::to_owned),
            aad_device_id: str_field(d, "azureADDeviceId")
                .filter(|s| real_guid(s))
                .map(str::to_owned),
            compliance: compliance(str_field(d, "complianceState")),
            encrypted: d.get("isEncrypted").and_then(Value::as_bool),
            antimalware: states.remove(id),
            patch: None,
        });
    }
    let provenance = src.provenance(dataset::MANAGED_DEVICES, &problems);
    for kind in [
        FactKind::Devices,
        FactKind::Compliance,
        FactKind::Encryption,
    ] {
        facts.provide(kind, provenance.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(v: Value) -> Antimalware {
        antimalware(&|k| v.get(k).cloned())
    }

    #[test]
    fn product_status_and_device_state_are_evidence() {
        let a = state(
            json!({"malwareProtectionEnabled": true, "realTimeProtectionEnabled": true,
            "signatureUpdateOverdue": false, "productStatus": "serviceNotRunning,platformOutOfDate",
            "deviceState": "rebootPending", "lastReportedDateTime": "2026-05-30T00:00:00Z"}),
        );
        assert_eq!(a.running, Some(false), "the service is not running");
        assert_eq!(a.engine_current, Some(false));
        assert_eq!(
            a.attention,
            Some(vec!["deviceState rebootPending".to_owned()])
        );
        assert!(a.reported.is_some());
        let a = state(
            json!({"malwareProtectionEnabled": true, "signatureUpdateOverdue": false,
            "productStatus": "avSignaturesOutOfDate,pendingFullScanDueToThreatAction", "deviceState": "clean"}),
        );
        assert_eq!(a.signatures_current, Some(false));
        assert_eq!(
            a.attention,
            Some(vec![
                "productStatus pendingFullScanDueToThreatAction".to_owned()
            ])
        );
        let a = state(
            json!({"malwareProtectionEnabled": true, "productStatus": "noStatus",
            "deviceState": "clean", "lastReportedDateTime": "0001-01-01T00:00:00Z"}),
        );
        assert_eq!((a.running, a.attention), (Some(true), Some(vec![])));
        assert_eq!(a.reported, None, "0001-01-01 is no date");
        assert_eq!(state(json!({})).attention, None);
    }
}
