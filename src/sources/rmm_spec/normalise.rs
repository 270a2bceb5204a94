//! Spec-driven RMM pages to facts: the spec stored with the evidence
//! (dataset `spec`) says how records map into devices, pending patches and
//! last installs. A per-device record belongs to the device its request was
//! made for (read back from the custody log's request URL). Patch statuses
//! the spec maps into Datto's words mean the same here: `InstallError`
//! installs failing, `ApprovedPending`, `RebootRequired` and `InstallError`
//! patches pending without ages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::spec::{self, Fields, Spec};
use super::SPEC_DATASET;
use crate::evidence::DatasetStatus;
use crate::facts::{
    Antimalware, Device, FactKind, Facts, PatchReport, PendingPatch, SourceEvidence,
};

/// The spec stored with the source's evidence (dataset `spec`).
///
/// # Errors
/// When the run holds no spec, or it does not parse (naming its file).
pub(crate) fn load_spec(src: &SourceEvidence<'_>) -> Result<Spec, String> {
    let (path, page) = src
        .pages
        .get(SPEC_DATASET)
        .and_then(|p| p.first())
        .ok_or("the run holds no spec for this source")?;
    let text = page
        .get("toml")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{path}: no `toml` text"))?;
    let origin = page
        .get("spec_file")
        .and_then(Value::as_str)
        .unwrap_or(path.as_str());
    Spec::parse(text, origin)
}

/// The device id a per-device request was made for, from its URL path.
fn device_of_request(request: &str, template: &str) -> Option<String> {
    let (pre, _, post) = spec::placeholder(template)?;
    let url = request.split_whitespace().nth(1)?;
    let path = reqwest::Url::parse(url).ok()?.path().to_owned();
    let rest = path.strip_suffix(post)?;
    let at = rest.rfind(pre)?;
    let raw = &rest[at + pre.len()..];
    (!raw.is_empty() && !raw.contains('/')).then(|| percent_decode(raw))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Records of `dataset` with the device each belongs to (from `device` or the request).
pub(crate) fn records_with_device<'p>(
    src: &'p SourceEvidence<'_>,
    spec: &Spec,
    dataset: &str,
    device: Option<&Fields>,
    problems: &mut Vec<String>,
) -> Vec<(String, &'p Value)> {
    let Some(endpoint) = spec.endpoint(dataset) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, page) in src.pages.get(dataset).into_iter().flatten() {
        let Some(items) = page.pointer(&endpoint.records).and_then(Value::as_array) else {
            problems.push(format!("{path}: no record array at `{}`", endpoint.records));
            continue;
        };
        let from_request = src
            .requests
            .get(path)
            .and_then(|r| device_of_request(r, &endpoint.path));
        for r in items {
            let id = match device {
                Some(f) => spec::resolve(f, r).ok().flatten(),
                None => from_request.clone(),
            };
            match id {
                Some(id) => out.push((id, r)),
                None => problems.push(format!("{path}: a record with no device id")),
            }
        }
    }
    out
}

/// `f` resolved on `r`; an unmapped value is recorded in `problems`.
pub(crate) fn text(
    f: Option<&Fields>,
    r: &Value,
    path: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    match spec::resolve(f?, r) {
        Ok(v) => v,
        Err(spec::Unmapped(why)) => {
            problems.push(format!("{path}: {why}"));
            None
        }
    }
}

/// `f` resolved on `r` as `true`/`false`.
pub(crate) fn flag(
    f: Option<&Fields>,
    r: &Value,
    path: &str,
    problems: &mut Vec<String>,
) -> Option<bool> {
    text(f, r, path, problems).and_then(|t| match t.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    })
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let spec = match load_spec(src) {
        Ok(s) => s,
        Err(e) => {
            // A source that failed before storing its spec keeps its own reason.
            let stored = src.report.datasets.contains_key(SPEC_DATASET);
            for kind in [FactKind::Devices, FactKind::PatchState] {
                let mut p = src.provenance(SPEC_DATASET, &[]);
                p.status = DatasetStatus::Failed;
                if stored {
                    p.reason = Some(format!("cannot read the RMM spec: {e}"));
                }
                facts.provide(kind, p);
            }
            return;
        }
    };

    let mut installs: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut install_problems = Vec::new();
    if let Some(map) = &spec.installs {
        for (device, r) in records_with_device(
            src,
            &spec,
            &map.dataset,
            map.device.as_ref(),
            &mut install_problems,
        ) {
            if !spec::keep(&map.only_when, r) {
                continue;
            }
            if let Some(at) = spec::resolve_time(&map.installed_at, r) {
                let e = installs.entry(device).or_insert(at);
                *e = (*e).max(at);
            }
        }
    }

    if let Some(map) = &spec.patches {
        let mut problems = Vec::new();
        for (device, r) in
            records_with_device(src, &spec, &map.dataset, map.device.as_ref(), &mut problems)
        {
            if !spec::keep(&map.only_when, r) {
                continue;
            }
            let path = "patch";
            let Some(name) = text(Some(&map.name), r, path, &mut problems) else {
                problems.push(format!("{}: a patch without a name", map.dataset));
                continue;
            };
            facts.patches.push(PendingPatch {
                device_id: format!("{}:{device}", src.name),
                name,
                kb: text(map.kb.as_ref(), r, path, &mut problems),
                severity: text(map.severity.as_ref(), r, path, &mut problems)
                    .map_or(crate::facts::Severity::Unknown, |s| spec::severity(&s)),
                status: text(map.status.as_ref(), r, path, &mut problems),
                detected: map.detected.as_ref().and_then(|f| spec::resolve_time(f, r)),
            });
        }
        facts.provide(
            FactKind::PendingPatches,
            src.provenance(&map.dataset, &problems),
        );
    }

    let Some(d) = &spec.devices else {
        return;
    };
    let mut problems = Vec::new();
    let endpoint_records = spec
        .endpoint(&d.dataset)
        .map(|e| e.records.clone())
        .unwrap_or_default();
    for (path, page) in src.pages.get(&d.dataset).into_iter().flatten() {
        let Some(items) = page.pointer(&endpoint_records).and_then(Value::as_array) else {
            problems.push(format!("{path}: no record array at `{endpoint_records}`"));
            continue;
        };
        for r in items {
            let Some(id) = text(Some(&d.id), r, path, &mut problems) else {
                problems.push(format!("{path}: a device without an id"));
                continue;
            };
            let status = text(d.patch_status.as_ref(), r, path, &mut problems);
            let reporting = status
                .as_ref()
                .is_some_and(|s| !d.patch_not_reporting.contains(s));
            let product = text(d.antivirus_product.as_ref(), r, path, &mut problems);
            let running = flag(d.antivirus_running.as_ref(), r, path, &mut problems);
            let current = flag(d.antivirus_current.as_ref(), r, path, &mut problems);
            let antimalware = (product.is_some() || running.is_some()).then(|| Antimalware {
                product,
                running,
                signatures_current: current,
                ..Antimalware::default()
            });
            facts.devices.push(Device {
                id: format!("{}:{id}", src.name),
                name: text(Some(&d.name), r, path, &mut problems)
                    .unwrap_or_else(|| "(unnamed)".into()),
                os: text(d.os.as_ref(), r, path, &mut problems),
                os_version: text(d.os_version.as_ref(), r, path, &mut problems),
                serial: text(d.serial.as_ref(), r, path, &mut problems),
                aad_device_id: text(d.aad_device_id.as_ref(), r, path, &mut problems),
                last_seen: d.last_seen.as_ref().and_then(|f| spec::resolve_time(f, r)),
                source: src.name.to_owned(),
                encrypted: flag(d.encrypted.as_ref(), r, path, &mut problems),
                antimalware,
                patch: Some(PatchReport {
                    reporting,
                    install_failing: status
                        .as_deref()
                        .and_then(crate::facts::patch_status::install_failing),
                    pending_without_age: status
                        .as_deref()
                        .is_some_and(crate::facts::patch_status::pending_without_age),
                    status,
                    last_install: installs.get(&id).copied(),
                }),
                compliance: None,
            });
        }
    }
    facts.provide(FactKind::Devices, src.provenance(&d.dataset, &problems));
    let patch_dataset = spec
        .installs
        .as_ref()
        .map_or(d.dataset.as_str(), |i| i.dataset.as_str());
    facts.provide(
        FactKind::PatchState,
        src.provenance(patch_dataset, &install_problems),
    );
    if d.antivirus_product.is_some() || d.antivirus_running.is_some() {
        facts.provide(FactKind::Antimalware, src.provenance(&d.dataset, &[]));
    }
    if d.encrypted.is_some() {
        facts.provide(FactKind::Encryption, src.provenance(&d.dataset, &[]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_from_request_url() {
        assert_eq!(
            device_of_request(
                "GET http://h:1/api/winupdate/AbC%20d/",
                "/winupdate/{agent_id}/"
            )
            .as_deref(),
            Some("AbC d")
        );
        assert!(device_of_request("GET http://h/agents/", "/winupdate/{agent_id}/").is_none());
    }
}
