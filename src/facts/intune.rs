//! Intune evidence to device facts: inventory, OS, last sync, compliance,
//! encryption, serial and Entra device id, and Windows protection state
//! (per device, or from the `DefenderAgents` export) as anti-malware state.

use std::collections::HashMap;

use serde_json::Value;

use super::m365::{segment_after, value_array};
use super::{
    parse_time, str_field, Antimalware, Compliance, Device, FactKind, Facts, SourceEvidence,
};
use crate::collect::m365::dataset;

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

/// Protection state fields (Graph names) to anti-malware facts.
fn antimalware(get: &dyn Fn(&str) -> Option<Value>) -> Antimalware {
    let flag = |k: &str| {
        get(k).and_then(|v| match v {
            Value::Bool(b) => Some(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        })
    };
    Antimalware {
        product: Some(DEFENDER_ANTIVIRUS.to_owned()),
        running: flag("malwareProtectionEnabled"),
        real_time: flag("realTimeProtectionEnabled"),
        signatures_current: flag("signatureUpdateOverdue").map(|overdue| !overdue),
        ..Antimalware::default()
    }
}

/// Export column names to the Graph property names of the per-device answer.
fn export_column(column: &str) -> Option<&'static str> {
    Some(match column {
        "MalwareProtectionEnabled" => "malwareProtectionEnabled",
        "RealTimeProtectionEnabled" => "realTimeProtectionEnabled",
        "SignatureUpdateOverdue" => "signatureUpdateOverdue",
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
        for (path, report) in src
            .pages
            .get(dataset::PROTECTION_EXPORT)
            .into_iter()
            .flatten()
        {
            let columns: Vec<&str> = report
                .get("Schema")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| str_field(c, "Column").unwrap_or_default())
                .collect();
            let Some(device_col) = columns.iter().position(|c| *c == "DeviceId") else {
                problems.push(format!("{path}: the report has no DeviceId column"));
                continue;
            };
            let Some(rows) = report.get("Values").and_then(Value::as_array) else {
                problems.push(format!("{path}: the report has no Values"));
                continue;
            };
            for row in rows {
                let Some(cells) = row.as_array() else {
                    problems.push(format!("{path}: a row is not an array"));
                    continue;
                };
                let Some(device) = cells.get(device_col).and_then(Value::as_str) else {
                    problems.push(format!("{path}: a row without DeviceId"));
                    continue;
                };
                let get = |graph_name: &str| {
                    columns
                        .iter()
                        .position(|c| export_column(c) == Some(graph_name))
                        .and_then(|i| cells.get(i).cloned())
                };
                out.insert(device.to_owned(), antimalware(&get));
            }
        }
        facts.provide(
            FactKind::Antimalware,
            src.provenance(dataset::PROTECTION_EXPORT, &problems),
        );
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
