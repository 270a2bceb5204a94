//! Defender for Endpoint evidence to device facts: onboarding and sensor
//! health (EDR), antivirus mode and signature currency. Machines are joined
//! to the source's Intune devices by Entra device id, then by host name; a
//! machine Intune does not know becomes a device of its own, and an Intune
//! device of a supported platform that a complete machine list does not name
//! is marked not onboarded. Defender provides
//! only anti-malware facts: the device inventory's completeness is Intune's.

use std::collections::HashMap;

use serde_json::Value;

use super::dataset;
use super::graph::value_array;
use crate::evidence::DatasetStatus;
use crate::facts::{
    normalise_hostname, parse_time, str_field, Antimalware, Device, FactKind, Facts, SourceEvidence,
};

fn tri(v: Option<&str>) -> Option<bool> {
    match v? {
        s if s.eq_ignore_ascii_case("true") => Some(true),
        s if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Sensor health: `Active` is active; `Inactive`, `ImpairedCommunication`,
/// `NoSensorData` and `NoSensorDataImpairedCommunication` are not; anything
/// else (`Unknown`) says nothing.
fn sensor_active(health: Option<&str>) -> Option<bool> {
    match health? {
        h if h.eq_ignore_ascii_case("active") => Some(true),
        h if [
            "inactive",
            "impairedcommunication",
            "nosensordata",
            "nosensordataimpairedcommunication",
        ]
        .iter()
        .any(|x| h.eq_ignore_ascii_case(x)) =>
        {
            Some(false)
        }
        _ => None,
    }
}

/// Fold one machine (and its AV record) into anti-malware facts. Where
/// Intune already said something, a problem from either source stays.
fn apply(am: &mut Antimalware, machine: &Value, av: Option<&Value>) {
    am.edr_onboarded = Some(
        str_field(machine, "onboardingStatus").is_some_and(|s| s.eq_ignore_ascii_case("onboarded")),
    );
    am.edr_health = str_field(machine, "healthStatus").map(str::to_owned);
    am.edr_active = sensor_active(str_field(machine, "healthStatus"));
    if am.reported.is_none() {
        am.reported = parse_time(machine.get("lastSeen"));
    }
    if let Some(av) = av {
        if am.product.is_none() {
            am.product = Some(super::intune::DEFENDER_ANTIVIRUS.to_owned());
        }
        match str_field(av, "avMode") {
            Some("0") => am.running = Some(am.running.unwrap_or(true)),
            Some("2") => am.running = Some(false),
            _ => {}
        }
        if let Some(current) = tri(str_field(av, "avIsSignatureUpToDate")) {
            // Both sources must agree the signatures are current.
            am.signatures_current = Some(am.signatures_current.unwrap_or(true) && current);
        }
        let engine = [
            tri(str_field(av, "avIsEngineUpToDate")),
            tri(str_field(av, "avIsPlatformUpToDate")),
        ];
        if engine.iter().any(Option::is_some) {
            let current = engine.iter().all(|e| *e != Some(false));
            am.engine_current = Some(am.engine_current.unwrap_or(true) && current);
        }
    }
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    if !src.report.datasets.contains_key(dataset::DEFENDER_MACHINES) {
        return;
    }
    let mut problems = Vec::new();
    let mut av: HashMap<&str, &Value> = HashMap::new();
    for (path, r) in src.records(dataset::DEFENDER_AV, value_array, &mut problems) {
        match str_field(r, "machineId") {
            Some(id) => {
                av.insert(id, r);
            }
            None => problems.push(format!("{path}: AV record without machineId")),
        }
    }
    let av_provenance = src.provenance(dataset::DEFENDER_AV, &problems);

    let mine = format!("{}:", src.name);
    let mut by_aad: HashMap<String, usize> = HashMap::new();
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for (i, d) in facts.devices.iter().enumerate() {
        if d.source != src.name || !d.id.starts_with(&mine) {
            continue;
        }
        if let Some(aad) = &d.aad_device_id {
            by_aad.insert(aad.to_ascii_lowercase(), i);
        }
        if let Some(host) = normalise_hostname(&d.name) {
            by_host.insert(host, i);
        }
    }
    let mut seen = vec![false; facts.devices.len()];
    let mut problems = Vec::new();
    let mut extra = Vec::new();
    for (path, m) in src.records(dataset::DEFENDER_MACHINES, value_array, &mut problems) {
        let Some(id) = str_field(m, "id") else {
            problems.push(format!("{path}: machine without id"));
            continue;
        };
        let host = str_field(m, "computerDnsName").and_then(normalise_hostname);
        let aad = str_field(m, "aadDeviceId").map(str::to_ascii_lowercase);
        let matched = aad
            .as_ref()
            .and_then(|a| by_aad.get(a))
            .or_else(|| host.as_ref().and_then(|h| by_host.get(h)))
            .copied();
        match matched {
            Some(i) => {
                seen[i] = true;
                let am = facts.devices[i]
                    .antimalware
                    .get_or_insert_with(Antimalware::default);
                apply(am, m, av.get(id).copied());
            }
            None => {
                let mut am = Antimalware::default();
                apply(&mut am, m, av.get(id).copied());
                extra.push(Device {
                    id: format!("{}:mde:{id}", src.name),
                    name: str_field(m, "computerDnsName").unwrap_or(id).to_owned(),
                    os: str_field(m, "osPlatform").map(str::to_owned),
                    last_seen: parse_time(m.get("lastSeen")),
                    source: src.name.to_owned(),
                    aad_device_id: aad.filter(|a| !a.is_empty()),
                    antimalware: Some(am),
                    ..Device::default()
                });
            }
        }
    }
    let machines_provenance = src.provenance(dataset::DEFENDER_MACHINES, &problems);
    // Only a complete machine list proves a device is missing from Defender:
    // every Intune device of a platform Defender for Endpoint supports
    // (Windows, macOS, Linux, iOS, Android) that it does not list is not
    // onboarded.
    if machines_provenance.status == DatasetStatus::Complete {
        for (i, d) in facts.devices.iter_mut().enumerate() {
            let supported = d.os.as_deref().is_some_and(|o| {
                matches!(
                    crate::facts::DeviceClass::of_os(o),
                    crate::facts::DeviceClass::Workstation
                        | crate::facts::DeviceClass::Server
                        | crate::facts::DeviceClass::Mobile
                )
            });
            if supported
                && d.source == src.name
                && d.id.starts_with(&mine)
                && !seen.get(i).copied().unwrap_or(true)
            {
                let am = d.antimalware.get_or_insert_with(Antimalware::default);
                am.edr_onboarded = Some(false);
            }
        }
    }
    facts.devices.extend(extra);
    facts.provide(FactKind::Edr, machines_provenance.clone());
    facts.provide(FactKind::Antimalware, machines_provenance);
    facts.provide(FactKind::Antimalware, av_provenance);
}
