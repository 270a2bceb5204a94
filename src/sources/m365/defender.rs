//! Defender for Endpoint evidence to device facts: onboarding and sensor
//! health (EDR), antivirus mode and signature currency. Machines are joined
//! to the source's Intune devices by Entra device id, then by host name; a
//! machine Intune does not know becomes a device of its own, and an Intune
//! device of a supported platform that a complete machine list does not name
//! is marked not onboarded. Defender provides
//! only anti-malware facts: the device inventory's completeness is Intune's.
//!
//! One device can have several machine records (a re-imaged or re-onboarded
//! PC keeps its old record until retention drops it): the record Defender saw
//! last (`lastSeen`) speaks for the device, whatever the list's order.

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

/// Onboarding: `Onboarded` is onboarded; the other documented values,
/// `CanBeOnboarded`, `Unsupported` and `InsufficientInfo` (a device Defender
/// discovered but that does not report to it), are not; a missing, null or
/// unknown status says nothing.
fn onboarded(status: Option<&str>) -> Option<bool> {
    match status? {
        s if s.eq_ignore_ascii_case("onboarded") => Some(true),
        s if ["canbeonboarded", "unsupported", "insufficientinfo"]
            .iter()
            .any(|x| s.eq_ignore_ascii_case(x)) =>
        {
            Some(false)
        }
        _ => None,
    }
}

/// How a machine record ranks among the records of one device: the newest
/// `lastSeen` first (a record without one ranks below any with one); between
/// equally recent records the one with the worse reading (a problem before
/// no word, no word before a good one), then the greater machine id, so that
/// the choice never depends on the list's order.
fn rank(machine: &Value) -> (Option<chrono::DateTime<chrono::Utc>>, u8, &str) {
    let onboarding = onboarded(str_field(machine, "onboardingStatus"));
    let sensor = sensor_active(str_field(machine, "healthStatus"));
    let worse = if onboarding == Some(false) || sensor == Some(false) {
        2
    } else if onboarding.is_none() || sensor.is_none() {
        1
    } else {
        0
    };
    (
        parse_time(machine.get("lastSeen")),
        worse,
        str_field(machine, "id").unwrap_or_default(),
    )
}

/// Keep `machine` for `key` in `chosen` if it ranks above the one kept so far.
fn keep<'v, K: std::hash::Hash + Eq>(
    chosen: &mut HashMap<K, &'v Value>,
    key: K,
    machine: &'v Value,
) {
    match chosen.get(&key) {
        Some(kept) if rank(kept) >= rank(machine) => {}
        _ => {
            chosen.insert(key, machine);
        }
    }
}

/// Fold one machine (and its AV record) into anti-malware facts. Where
/// Intune already said something, a problem from either source stays.
fn apply(am: &mut Antimalware, machine: &Value, av: Option<&Value>) {
    am.edr_onboarded = onboarded(str_field(machine, "onboardingStatus"));
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
    // The record that speaks for each Intune device, and for each machine
    // Intune does not know (one per Entra device id, else per machine id).
    let mut chosen: HashMap<usize, &Value> = HashMap::new();
    let mut unknown: HashMap<String, &Value> = HashMap::new();
    let mut unknown_order = Vec::new();
    for (path, m) in src.records(dataset::DEFENDER_MACHINES, value_array, &mut problems) {
        let Some(id) = str_field(m, "id") else {
            problems.push(format!("{path}: machine without id"));
            continue;
        };
        let host = str_field(m, "computerDnsName").and_then(normalise_hostname);
        let aad = str_field(m, "aadDeviceId")
            .filter(|a| !a.is_empty())
            .map(str::to_ascii_lowercase);
        let matched = aad
            .as_ref()
            .and_then(|a| by_aad.get(a))
            .or_else(|| host.as_ref().and_then(|h| by_host.get(h)))
            .copied();
        match matched {
            Some(i) => {
                seen[i] = true;
                keep(&mut chosen, i, m);
            }
            None => {
                let key = aad.map_or_else(|| format!("machine:{id}"), |a| format!("aad:{a}"));
                if !unknown.contains_key(&key) {
                    unknown_order.push(key.clone());
                }
                keep(&mut unknown, key, m);
            }
        }
    }
    let mut chosen: Vec<(usize, &Value)> = chosen.into_iter().collect();
    chosen.sort_by_key(|(i, _)| *i);
    for (i, m) in chosen {
        let av_record = str_field(m, "id").and_then(|id| av.get(id).copied());
        let am = facts.devices[i]
            .antimalware
            .get_or_insert_with(Antimalware::default);
        apply(am, m, av_record);
    }
    let mut extra = Vec::new();
    for key in unknown_order {
        let Some(m) = unknown.remove(&key) else {
            continue;
        };
        let id = str_field(m, "id").unwrap_or_default();
        let mut am = Antimalware::default();
        apply(&mut am, m, av.get(id).copied());
        extra.push(Device {
            id: format!("{}:mde:{id}", src.name),
            name: str_field(m, "computerDnsName").unwrap_or(id).to_owned(),
            os: str_field(m, "osPlatform").map(str::to_owned),
            last_seen: parse_time(m.get("lastSeen")),
            source: src.name.to_owned(),
            aad_device_id: str_field(m, "aadDeviceId")
                .filter(|a| !a.is_empty())
                .map(str::to_ascii_lowercase),
            antimalware: Some(am),
            ..Device::default()
        });
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::evidence::{DatasetReport, SourceReport, SourceStatus};

    /// The facts of one Windows Intune device (Entra id `aad-1`, name
    /// `PC-1`) joined with `machines` and `av` as one complete page each.
    fn joined(machines: Vec<Value>, av: Vec<Value>) -> Facts {
        let complete = |records: usize| DatasetReport {
            status: DatasetStatus::Complete,
            pages: 1,
            records,
            reason: None,
        };
        let report = SourceReport {
            source_type: "m365".into(),
            status: SourceStatus::Complete,
            reason: None,
            datasets: BTreeMap::from([
                (
                    dataset::DEFENDER_MACHINES.to_owned(),
                    complete(machines.len()),
                ),
                (dataset::DEFENDER_AV.to_owned(), complete(av.len())),
            ]),
            rejected: Vec::new(),
        };
        let page = |dataset: &str, records: Vec<Value>| {
            (
                dataset.to_owned(),
                vec![(
                    format!("evidence/m365/{dataset}/page-00001.json"),
                    json!({ "value": records }),
                )],
            )
        };
        let src = SourceEvidence {
            name: "m365",
            report: &report,
            pages: BTreeMap::from([
                page(dataset::DEFENDER_MACHINES, machines),
                page(dataset::DEFENDER_AV, av),
            ]),
            binary: BTreeMap::new(),
            requests: BTreeMap::new(),
        };
        let mut facts = Facts {
            devices: vec![Device {
                id: "m365:device-1".into(),
                name: "PC-1".into(),
                os: Some("Windows".into()),
                source: "m365".into(),
                aad_device_id: Some("aad-1".into()),
                ..Device::default()
            }],
            ..Facts::default()
        };
        normalise(&src, &mut facts);
        facts
    }

    fn machine(id: &str, last_seen: &str, onboarding: Value, health: &str) -> Value {
        let mut m = json!({"id": id, "computerDnsName": "pc-1.contoso.local",
            "lastSeen": last_seen, "osPlatform": "Windows11", "healthStatus": health,
            "aadDeviceId": "AAD-1"});
        if !onboarding.is_null() || id.ends_with("null") {
            m["onboardingStatus"] = onboarding;
        }
        m
    }

    fn av(machine: &str, mode: &str) -> Value {
        json!({"id": format!("{machine}_av"), "machineId": machine, "avMode": mode,
            "avIsSignatureUpToDate": "True", "avIsEngineUpToDate": "True", "avIsPlatformUpToDate": "True"})
    }

    fn antimalware(facts: &Facts) -> Antimalware {
        assert_eq!(
            facts.devices.len(),
            1,
            "the machines join the Intune device"
        );
        facts.devices[0].antimalware.clone().expect("EDR state")
    }

    #[test]
    fn the_newest_record_of_a_re_imaged_device_decides_in_any_order() {
        // The old record went inactive when the PC was re-imaged; the new one
        // reports. Its AV record (active) is used, not the old one's.
        let old = machine(
            "old",
            "2025-11-02T08:00:00.1234567Z",
            json!("Onboarded"),
            "Inactive",
        );
        let new = machine(
            "new",
            "2026-05-30T09:15:00.7654321Z",
            json!("Onboarded"),
            "Active",
        );
        let avs = vec![av("old", "2"), av("new", "0")];
        let a = antimalware(&joined(vec![old.clone(), new.clone()], avs.clone()));
        let b = antimalware(&joined(vec![new.clone(), old.clone()], avs.clone()));
        assert_eq!(a, b, "the list's order does not matter");
        assert_eq!(
            (
                a.edr_onboarded,
                a.edr_active,
                a.edr_health.as_deref(),
                a.running
            ),
            (Some(true), Some(true), Some("Active"), Some(true))
        );
        // And the other way round: the newest record is the broken one.
        let old = machine("old", "2025-11-02T08:00:00Z", json!("Onboarded"), "Active");
        let new = machine(
            "new",
            "2026-05-30T09:15:00Z",
            json!("Onboarded"),
            "NoSensorData",
        );
        let a = antimalware(&joined(vec![old.clone(), new.clone()], avs.clone()));
        let b = antimalware(&joined(vec![new, old], avs));
        assert_eq!(a, b);
        assert_eq!(
            (a.edr_active, a.edr_health.as_deref()),
            (Some(false), Some("NoSensorData"))
        );
    }

    #[test]
    fn equally_recent_records_give_the_worse_reading_in_any_order() {
        let at = "2026-05-30T09:15:00Z";
        let good = machine("a", at, json!("Onboarded"), "Active");
        let bad = machine("b", at, json!("Onboarded"), "Inactive");
        let a = antimalware(&joined(vec![good.clone(), bad.clone()], vec![]));
        let b = antimalware(&joined(vec![bad, good], vec![]));
        assert_eq!(a, b);
        assert_eq!(a.edr_active, Some(false));
        // A record with a time outranks one without.
        let timed = machine("t", at, json!("Onboarded"), "Active");
        let mut untimed = machine("u", at, json!("Onboarded"), "Inactive");
        untimed["lastSeen"] = Value::Null;
        let a = antimalware(&joined(vec![untimed.clone(), timed.clone()], vec![]));
        let b = antimalware(&joined(vec![timed, untimed], vec![]));
        assert_eq!((a.edr_active, b.edr_active), (Some(true), Some(true)));
    }

    #[test]
    fn an_absent_or_unknown_onboarding_status_is_no_evidence() {
        let at = "2026-05-30T09:15:00Z";
        for (status, want) in [
            (Value::Null, None), // absent
            (json!("Onboarded"), Some(true)),
            (json!("onboarded"), Some(true)),
            (json!("CanBeOnboarded"), Some(false)),
            (json!("Unsupported"), Some(false)),
            (json!("InsufficientInfo"), Some(false)),
            (json!("SomethingNew"), None),
            (json!(3), None),
        ] {
            let a = antimalware(&joined(
                vec![machine("m", at, status.clone(), "Active")],
                vec![],
            ));
            assert_eq!(a.edr_onboarded, want, "{status}");
        }
        // A null status, written out, is the same as none.
        let a = antimalware(&joined(
            vec![machine("m-null", at, Value::Null, "Active")],
            vec![],
        ));
        assert_eq!(a.edr_onboarded, None);
        // Listed without a status is not the same as missing from the list.
        let f = joined(vec![], vec![]);
        assert_eq!(
            f.devices[0]
                .antimalware
                .as_ref()
                .and_then(|a| a.edr_onboarded),
            Some(false),
            "a complete list that does not name the device"
        );
    }
}
