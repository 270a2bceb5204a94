//! Endpoint reports to device facts and pending security updates.
//!
//! One device per accepted report (`<source>:serial:<SERIAL>`, or
//! `<source>:host:<hostname>` without a serial): serial number,
//! OS, last install, disk encryption (`encrypted` only when the system volume
//! is), the first running EDR product (else the first running antivirus,
//! else the first found) as anti-malware state. A report whose pending check
//! did not run does not report patch state.

use super::schema::EndpointReport;
use super::REPORTS;
use crate::facts::{
    Antimalware, Device, FactKind, Facts, PatchReport, PendingPatch, Severity, SourceEvidence,
};
use chrono::{DateTime, Duration, Utc};

fn time(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
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
        let antimalware = pick.map(|s| Antimalware {
            product: Some(s.name.clone()),
            running: Some(s.running),
            signatures_current: s.up_to_date,
            edr_onboarded: (s.kind == "edr").then_some(s.running),
            edr_health: Some(if s.running { "running" } else { "stopped" }.into()),
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
        FactKind::Encryption,
    ] {
        facts.provide(kind, src.provenance(REPORTS, &problems));
    }
}
