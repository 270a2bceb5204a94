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

/// Graph's `windowsDefenderProductStatus` flags enum: member names and their
/// documented values (Graph v1.0 reference; the bits of Windows'
/// `MPSTATUS_FLAG`). The per-device API answers with names
/// (`"serviceNotRunning,platformOutOfDate"`); the `DefenderAgents` export's
/// enum value may be the number (`"524288"`, `noStatusFlagsSet`).
pub(crate) const PRODUCT_STATUS: &[(&str, u64)] = &[
    ("noStatus", 0),
    ("serviceNotRunning", 1),
    ("serviceStartedWithoutMalwareProtection", 1 << 1),
    ("pendingFullScanDueToThreatAction", 1 << 2),
    ("pendingRebootDueToThreatAction", 1 << 3),
    ("pendingManualStepsDueToThreatAction", 1 << 4),
    ("avSignaturesOutOfDate", 1 << 5),
    ("asSignaturesOutOfDate", 1 << 6),
    ("noQuickScanHappenedForSpecifiedPeriod", 1 << 7),
    ("noFullScanHappenedForSpecifiedPeriod", 1 << 8),
    ("systemInitiatedScanInProgress", 1 << 9),
    ("systemInitiatedCleanInProgress", 1 << 10),
    ("samplesPendingSubmission", 1 << 11),
    ("productRunningInEvaluationMode", 1 << 12),
    ("productRunningInNonGenuineMode", 1 << 13),
    ("productExpired", 1 << 14),
    ("offlineScanRequired", 1 << 15),
    ("serviceShutdownAsPartOfSystemShutdown", 1 << 16),
    ("threatRemediationFailedCritically", 1 << 17),
    ("threatRemediationFailedNonCritically", 1 << 18),
    ("noStatusFlagsSet", 1 << 19),
    ("platformOutOfDate", 1 << 20),
    ("platformUpdateInProgress", 1 << 21),
    ("platformAboutToBeOutdated", 1 << 22),
    ("signatureOrPlatformEndOfLifeIsPastOrIsImpending", 1 << 23),
    ("windowsSModeSignaturesInUseOnNonWin10SInstall", 1 << 24),
];

/// Graph's `windowsDeviceHealthState` flags enum, as [`PRODUCT_STATUS`].
pub(crate) const DEVICE_STATE: &[(&str, u64)] = &[
    ("clean", 0),
    ("fullScanPending", 1),
    ("rebootPending", 1 << 1),
    ("manualStepsPending", 1 << 2),
    ("offlineScanPending", 1 << 3),
    ("critical", 1 << 4),
];

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

/// The member of `members` that `word` names: the member name in any case,
/// spaces ignored (`"rebootPending"`, `"RebootPending"`, `"Reboot pending"`).
fn member(word: &str, members: &[(&'static str, u64)]) -> Option<&'static str> {
    let squeezed: String = word.chars().filter(|c| !c.is_whitespace()).collect();
    members
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&squeezed))
        .map(|(name, _)| *name)
}

/// The members a flags value sets, by name: a number is decoded bit by bit
/// (0 is the enum's zero member); text is a list of member names separated by
/// `,`, `|` or `;` (or spaces between names). `None` when the value is empty,
/// names anything that is not a member, or sets a bit no member defines: a
/// value that cannot be read in full is no evidence, never a clean bill.
fn decode_flags(text: &str, members: &[(&'static str, u64)]) -> Option<Vec<&'static str>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = text.parse().ok()?;
        if n == 0 {
            return members.iter().find(|(_, v)| *v == 0).map(|(m, _)| vec![*m]);
        }
        let known = members.iter().fold(0, |all, (_, v)| all | v);
        if n & !known != 0 {
            return None;
        }
        return Some(
            members
                .iter()
                .filter(|(_, v)| *v != 0 && n & v == *v)
                .map(|(m, _)| *m)
                .collect(),
        );
    }
    let mut out = Vec::new();
    for part in text.split([',', '|', ';']).map(str::trim) {
        if part.is_empty() {
            continue;
        }
        match member(part, members) {
            Some(m) => out.push(m),
            None => {
                for word in part.split_whitespace() {
                    out.push(member(word, members)?);
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn has_any(flags: &[&str], wanted: &[&str]) -> bool {
    flags.iter().any(|f| wanted.contains(f))
}

/// What a source said about one flags field.
enum Said {
    /// Nothing (no field, or an empty one).
    Nothing,
    /// A value that cannot be read in full: no evidence either way.
    Unreadable,
    /// These members.
    Flags(Vec<&'static str>),
}

/// Protection state fields (Graph names) to anti-malware facts: running from
/// `malwareProtectionEnabled` unless `productStatus` says the service is not
/// running, started without protection or expired; signatures from
/// `signatureUpdateOverdue` and the signature flags of `productStatus`;
/// engine and platform from `productStatus`; threats needing action from
/// `productStatus` and `deviceState`; the report time from
/// `lastReportedDateTime`.
///
/// A flags field is read from its value, and from `<field>_loc` (the
/// export's localized text) when the value cannot be read. A `productStatus`
/// that cannot be read leaves unproven what it could have contradicted
/// (running, signatures, engine) and a problem another field shows stands;
/// threats needing action are proven absent only when every flags field
/// present was read.
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
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let said = |k: &str, members: &[(&'static str, u64)]| {
        let value = text(k).filter(|t| !t.trim().is_empty());
        let localized = text(&format!("{k}_loc")).filter(|t| !t.trim().is_empty());
        if value.is_none() && localized.is_none() {
            return Said::Nothing;
        }
        value
            .and_then(|t| decode_flags(&t, members))
            .or_else(|| localized.and_then(|t| decode_flags(&t, members)))
            .map_or(Said::Unreadable, Said::Flags)
    };
    let product = said("productStatus", PRODUCT_STATUS);
    let device = said("deviceState", DEVICE_STATE);
    let unreadable: Vec<String> = [("productStatus", &product), ("deviceState", &device)]
        .into_iter()
        .filter(|(_, said)| matches!(said, Said::Unreadable))
        .map(|(field, _)| {
            let value = text(field)
                .or_else(|| text(&format!("{field}_loc")))
                .unwrap_or_default();
            let value: String = value.chars().take(64).collect();
            format!("{field} {value:?} not understood")
        })
        .collect();
    let mut running = flag("malwareProtectionEnabled");
    let mut signatures_current = flag("signatureUpdateOverdue").map(|overdue| !overdue);
    let mut engine_current = None;
    match &product {
        Said::Nothing => {}
        Said::Unreadable => {
            running = running.filter(|r| !r);
            signatures_current = signatures_current.filter(|c| !c);
        }
        Said::Flags(p) => {
            if has_any(p, NOT_RUNNING) {
                running = Some(false);
            }
            if has_any(p, SIGNATURES_OUT_OF_DATE) {
                signatures_current = Some(false);
            }
            engine_current = Some(!has_any(p, PLATFORM_OUT_OF_DATE));
        }
    }
    let mut list: Vec<String> = Vec::new();
    let mut complete = true;
    let mut any = false;
    for (name, said, wanted) in [
        ("productStatus", &product, THREAT_ACTION),
        ("deviceState", &device, DEVICE_STATE_ACTION),
    ] {
        match said {
            Said::Nothing => {}
            Said::Unreadable => {
                any = true;
                complete = false;
            }
            Said::Flags(flags) => {
                any = true;
                list.extend(
                    flags
                        .iter()
                        .filter(|f| wanted.contains(*f))
                        .map(|f| format!("{name} {f}")),
                );
            }
        }
    }
    let attention = (any && (complete || !list.is_empty())).then_some(list);
    Antimalware {
        product: Some(DEFENDER_ANTIVIRUS.to_owned()),
        running,
        real_time: flag("realTimeProtectionEnabled"),
        signatures_current,
        engine_current,
        attention,
        reported: text("lastReportedDateTime").and_then(|t| crate::facts::parse_rfc3339(&t)),
        unreadable,
        ..Antimalware::default()
    }
}

/// Export column names to the Graph property names of the per-device answer
/// (a localized `<Column>_loc` column to `<property>_loc`).
fn export_column(column: &str) -> Option<String> {
    let (base, localized) = match column.strip_suffix("_loc") {
        Some(base) => (base, "_loc"),
        None => (column, ""),
    };
    let name = match base {
        "MalwareProtectionEnabled" => "malwareProtectionEnabled",
        "RealTimeProtectionEnabled" => "realTimeProtectionEnabled",
        "SignatureUpdateOverdue" => "signatureUpdateOverdue",
        "ProductStatus" => "productStatus",
        "DeviceState" => "deviceState",
        "LastReportedDateTime" => "lastReportedDateTime",
        _ => return None,
    };
    Some(format!("{name}{localized}"))
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
            let graph_columns: Vec<Option<String>> =
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
                        .position(|c| c.as_deref() == Some(graph_name))
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

    #[test]
    fn export_numbers_are_decoded_by_the_documented_values() {
        // 524288 = noStatusFlagsSet; 32 = avSignaturesOutOfDate,
        // 1048576 = platformOutOfDate, 8 = pendingRebootDueToThreatAction.
        let a = state(
            json!({"malwareProtectionEnabled": "True", "signatureUpdateOverdue": "False",
            "productStatus": "524288", "deviceState": "0"}),
        );
        assert_eq!(
            (a.running, a.signatures_current, a.engine_current),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(a.attention, Some(vec![]));
        let flags = (32 + 1_048_576 + 8).to_string();
        let a = state(
            json!({"malwareProtectionEnabled": "True", "signatureUpdateOverdue": "False",
            "productStatus": flags, "deviceState": "2"}),
        );
        assert_eq!(
            (a.signatures_current, a.engine_current),
            (Some(false), Some(false))
        );
        assert_eq!(
            a.attention,
            Some(vec![
                "productStatus pendingRebootDueToThreatAction".to_owned(),
                "deviceState rebootPending".to_owned()
            ])
        );
        assert_eq!(
            decode_flags("1", PRODUCT_STATUS),
            Some(vec!["serviceNotRunning"])
        );
        assert_eq!(decode_flags("0", DEVICE_STATE), Some(vec!["clean"]));
        assert_eq!(
            decode_flags("Reboot pending, Full scan pending", DEVICE_STATE),
            Some(vec!["rebootPending", "fullScanPending"])
        );
    }

    #[test]
    fn unrecognised_flags_are_no_evidence_never_healthy() {
        for (product, device) in [
            ("33554432", "0"),         // a bit no member defines
            ("someFutureStatus", "0"), // a name no member has
            ("noStatus", "64"),
            ("noStatus", "Sauber"),
            ("-1", "clean"),
        ] {
            let a = state(
                json!({"malwareProtectionEnabled": "True", "signatureUpdateOverdue": "False",
                "productStatus": product, "deviceState": device}),
            );
            assert_eq!(a.attention, None, "{product} / {device}");
            assert!(!a.unreadable.is_empty(), "{product} / {device}: named");
            if product != "noStatus" {
                assert_eq!(
                    (a.running, a.signatures_current, a.engine_current),
                    (None, None, None),
                    "an unreadable productStatus may hide any problem: {product}"
                );
            } else {
                assert_eq!(a.engine_current, Some(true));
            }
        }
        // A problem read elsewhere stands beside an unreadable field.
        let a = state(
            json!({"malwareProtectionEnabled": "False", "signatureUpdateOverdue": "True",
            "productStatus": "33554432", "deviceState": "rebootPending"}),
        );
        assert_eq!(
            (a.running, a.signatures_current),
            (Some(false), Some(false))
        );
        assert_eq!(
            a.attention,
            Some(vec!["deviceState rebootPending".to_owned()])
        );
    }

    #[test]
    fn the_localized_column_is_read_when_the_value_cannot_be() {
        let a = state(json!({"deviceState": "unknownCode", "deviceState_loc": "Reboot pending"}));
        assert_eq!(
            a.attention,
            Some(vec!["deviceState rebootPending".to_owned()])
        );
        let a = state(json!({"deviceState_loc": "Clean"}));
        assert_eq!(a.attention, Some(vec![]));
        // Localized text in a language the names do not match is no evidence.
        let a = state(json!({"deviceState": "99", "deviceState_loc": "Neustart ausstehend"}));
        assert_eq!(a.attention, None);
        assert_eq!(
            export_column("DeviceState_loc").as_deref(),
            Some("deviceState_loc")
        );
        assert_eq!(export_column("Other_loc"), None);
    }
}
