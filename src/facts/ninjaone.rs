//! NinjaOne pages to devices and pending patches.

use serde_json::Value;

use super::{
    parse_epoch, str_field, Device, FactKind, Facts, NormaliserKind, PendingPatch, Severity,
    SourceEvidence,
};
use crate::collect::ninjaone::dataset;

pub(super) const NORMALISER: NormaliserKind = NormaliserKind {
    source_type: "ninjaone",
    normalise,
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

fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut problems = Vec::new();
    for (path, r) in src.records(dataset::DEVICES, bare_array, &mut problems) {
        let Some(id) = r.get("id").and_then(Value::as_i64) else {
            problems.push(format!("{path}: device without numeric id"));
            continue;
        };
        let name = str_field(r, "systemName")
            .or_else(|| str_field(r, "dnsName"))
            .unwrap_or("(unnamed)");
        facts.devices.push(Device {
            id: format!("{}:{id}", src.name),
            name: name.to_owned(),
            os: str_field(r, "nodeClass").map(str::to_owned),
            last_seen: parse_epoch(r.get("lastContact")),
            source: src.name.to_owned(),
            ..Device::default()
        });
    }
    facts.provide(
        FactKind::Devices,
        src.provenance(dataset::DEVICES, &problems),
    );

    let mut problems = Vec::new();
    for (path, r) in src.records(dataset::OS_PATCHES, results_array, &mut problems) {
        let Some(device) = r.get("deviceId").and_then(Value::as_i64) else {
            problems.push(format!("{path}: patch without numeric deviceId"));
            continue;
        };
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
}
