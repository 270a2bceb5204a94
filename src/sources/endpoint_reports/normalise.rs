//! Endpoint reports to device facts and pending security updates.
//!
//! One device per accepted report (`<source>:serial:<SERIAL>`, or
//! `<source>:host:<hostname>` without a serial): serial number,
//! OS, last install, disk encryption (`encrypted` only when the system volume
//! is), the first running EDR product (else the first running antivirus,
//! else the first found) as anti-malware state (a report listing no product
//! says no product runs), and EDR onboarding from its `edr` products. A report whose pending check
//! did not run does not report patch state.

use super::schema::EndpointReport;
use super::REPORTS;
use crate::facts::{
    Antimalware, Device, FactKind, Facts, PatchReport, PendingPatch, Severity, SourceEvidence,
};
use chrono::{DateTime, Duration, Utc};

fn time(s: Option<&str>) -> Option<DateTime<Utc>> {
    crate::facts::parse_rfc3339(s?)
}

fn severity(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "important" => Severity::Important,
        "moderate" => Severity::Moderate,
        "low" => Severity::Optional,
        _ => Severity::Unknown,
    }
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut problems = Vec::new();
    for (path, page) in src.pages.get(REPORTS).into_iter().flatten() {
        let report: EndpointReport = match serde_json::from_value::<EndpointReport>(page.clone()) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{path}: {e}"));
                continue;
            }
        };
        let generated = time(Some(&report.generated_at));
        // The drop folder keeps one report per serial (else hostname), so this is unique.
        let id = format!("{}:{}", src.name, super::host_key(page));
        let p = &report.patching;
        for u in &p.pending_security_updates {
            let detected = time(u.released.as_deref())
                .or_else(|| Some(generated? - Duration::days(i64::try_from(u.age_days?).ok()?)));
            facts.patches.push(PendingPatch {
                device_id: id.clone(),
                name: u.title.clone(),
                kb: Some(u.id.clone()),
                severity: severity(&u.severity),
                status: Some("PENDING".into()),
                detected,
            });
        }
        let products = &report.security_products;
        let pick = products
            .iter()
            .find(|s| s.running && s.kind == "edr")
            .or_else(|| products.iter().find(|s| s.running))
            .or_else(|| products.first());
        // EDR: the report lists every security product it found, so no
        // `edr` product means no EDR on this device per this source.
        let edr = products
            .iter()
            .filter(|s| s.kind == "edr")
            .max_by_key(|s| s.running);
        let antimalware = Some(Antimalware {
            product: pick.map(|s| s.name.clone()),
            running: Some(pick.is_some_and(|s| s.running)),
            signatures_current: pick.and_then(|s| s.up_to_date),
            edr_onboarded: Some(edr.is_some()),
            edr_active: edr.map(|s| s.running),
            edr_health: pick.map(|s| if s.running { "running" } else { "stopped" }.into()),
            reported: generated,
            ..Antimalware::default()
        });
        let encrypted = match report.disk_encryption.status.as_str() {
            "encrypted" => Some(true),
            "partial" | "not_encrypted" => Some(false),
            _ => None,
        };
        facts.devices.push(Device {
            id,
            name: report.host.hostname.clone(),
            os: Some(report.os.name.clone()),
            os_version: Some(report.os.version.clone()).filter(|v| !v.is_empty()),
            last_seen: generated,
            source: src.name.to_owned(),
            serial: report.host.serial_number.clone(),
            aad_device_id: report.host.aad_device_id.clone(),
            compliance: None,
            encrypted,
            antimalware,
            patch: Some(PatchReport {
                install_failing: None,
                pending_without_age: false,
                reporting: p.checked,
                status: Some(
                    if !p.checked {
                        "NotChecked"
                    } else if p.pending_security_updates.is_empty() {
                        "NoPendingSecurityUpdates"
                    } else {
                        "SecurityUpdatesPending"
                    }
                    .into(),
                ),
                last_install: time(p.last_install.as_deref()),
            }),
        });
    }
    for kind in [
        FactKind::Devices,
        FactKind::PatchState,
        FactKind::PendingPatches,
        FactKind::Antimalware,
        FactKind::Edr,
        FactKind::Encryption,
    ] {
        facts.provide(kind, src.provenance(REPORTS, &problems));
    }
}
