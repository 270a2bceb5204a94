//! NinjaOne pages to devices (with patch reporting and antivirus state) and
//! pending patches.
//!
//! - `devices` gives the device records.
//! - `os-patches` (pending) gives [`PendingPatch`]es.
//! - `os-patch-installs` gives each device's last successful install
//!   (`status` INSTALLED, newest `installedAt`) into [`PatchReport`]; a device
//!   with any pending or installed patch record reports patch state.
//!   A failed install newer than the last successful one means installs are
//!   failing on that device; with the install list collected, a device with
//!   no such failure reports none.
//! - `antivirus-status` gives [`Antimalware`]: `productState` ON/ENABLED means
//!   running with real-time protection (Windows Security Center's scanner
//!   state) and OFF/DISABLED/EXPIRED/SNOOZED stopped; `definitionStatus`
//!   UP_TO_DATE/CURRENT means current signatures and OUT_OF_DATE/OUTDATED/
//!   EXPIRED stale ones; any other value says nothing. `timestamp` is the
//!   report time. A device may have a row per product (a third-party
//!   antivirus beside Windows Defender): every row is kept and the device is
//!   judged by the products that protect it, in whatever order the rows come
//!   (see [`combine`]). Windows turns Defender off, or to passive mode, while
//!   another antivirus is installed and kept up to date, and back on when
//!   it goes (Microsoft, "Microsoft Defender Antivirus compatibility with
//!   other security products"), so a product reported off beside one that
//!   is on is that design, not a gap; with none on, the device is
//!   unprotected, and an active product with stale signatures is a problem
//!   whatever the others say.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::dataset;
use crate::facts::{
    parse_epoch, parse_time, str_field, Antimalware, Device, FactKind, Facts, PatchReport,
    PendingPatch, Severity, SourceEvidence,
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

/// Epoch seconds (NinjaOne's format) or RFC 3339.
fn when(v: Option<&Value>) -> Option<DateTime<Utc>> {
    parse_epoch(v).or_else(|| parse_time(v))
}

/// One `antivirus-status` row: one product on one device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ProductRow {
    name: Option<String>,
    /// Running with real-time protection (Security Center's product state).
    on: Option<bool>,
    /// Signatures current.
    current: Option<bool>,
    at: Option<DateTime<Utc>>,
}

impl ProductRow {
    fn read(r: &Value) -> ProductRow {
        let state = str_field(r, "productState").map(str::to_ascii_uppercase);
        let definitions = str_field(r, "definitionStatus").map(str::to_ascii_uppercase);
        ProductRow {
            name: str_field(r, "productName").map(str::to_owned),
            // Windows Security Center's product state is the on-access
            // scanner: on means running with real-time protection.
            on: match state.as_deref() {
                Some("ON" | "ENABLED") => Some(true),
                Some("OFF" | "DISABLED" | "EXPIRED" | "SNOOZED") => Some(false),
                _ => None,
            },
            current: match definitions.as_deref() {
                Some("UP_TO_DATE" | "CURRENT") => Some(true),
                Some("OUT_OF_DATE" | "OUTDATED" | "EXPIRED") => Some(false),
                _ => None,
            },
            at: when(r.get("timestamp")),
        }
    }

    fn active(&self) -> bool {
        self.on == Some(true)
    }

    /// What is wrong with this product for a device where `protected` says
    /// whether some product is on: a product that is off matters only when
    /// none is on, and stale signatures only on a product that runs (or
    /// when none does).
    fn problems(&self, protected: bool) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if self.on == Some(false) && !protected {
            problems.push("off");
        }
        if self.current == Some(false) && (self.active() || !protected) {
            problems.push("definitions out of date");
        }
        problems
    }

    /// The product's name, with what it reports when the device has several
    /// products (so a finding says which one to fix, and which stand by).
    fn label(&self, several: bool, protected: bool) -> String {
        let name = self.name.as_deref().unwrap_or("(unnamed product)");
        let mut notes = self.problems(protected);
        if protected && self.on == Some(false) {
            notes.push("off, standing by");
        }
        if several && !notes.is_empty() {
            format!("{name} [{}]", notes.join(", "))
        } else {
            name.to_owned()
        }
    }
}

/// One problem outweighs any number of good reports: `Some(false)` if any
/// value is false, else `Some(true)` if any is true, else `None`.
fn worst(values: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    values.fold(None, |acc, v| match (acc, v) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), _) | (_, Some(true)) => Some(true),
        _ => None,
    })
}

/// A device's anti-malware state from all its product rows, the same in any
/// row order. With a product on, the device runs protection and its
/// signatures are current only if every product that is on has current
/// ones; the others are standing by (Windows keeps Defender off beside
/// another antivirus). With none on, protection is off if any product says
/// so and signatures are stale if any product's are. The product names every
/// product, problems first, each noted. The report time is the newest time
/// of a row with a problem (the problem as last reported) or, without one,
/// the oldest time of the rows judged (good news only as fresh as its
/// oldest part).
fn combine(mut rows: Vec<ProductRow>) -> Antimalware {
    let protected = rows.iter().any(ProductRow::active);
    let has_problem = |r: &ProductRow| !r.problems(protected).is_empty();
    rows.sort_by(|a, b| (!has_problem(a), a).cmp(&(!has_problem(b), b)));
    rows.dedup();
    let several = rows.len() > 1;
    let mut names: Vec<String> = rows.iter().map(|r| r.label(several, protected)).collect();
    names.dedup();
    let judged: Vec<&ProductRow> = rows.iter().filter(|r| !protected || r.active()).collect();
    let reported = if rows.iter().any(has_problem) {
        rows.iter()
            .filter(|r| has_problem(r))
            .filter_map(|r| r.at)
            .max()
    } else {
        judged.iter().filter_map(|r| r.at).min()
    };
    let on = if protected {
        Some(true)
    } else {
        worst(rows.iter().map(|r| r.on))
    };
    Antimalware {
        product: rows
            .iter()
            .any(|r| r.name.is_some())
            .then(|| names.join(", ")),
        running: on,
        real_time: on,
        signatures_current: worst(judged.iter().map(|r| r.current)),
        reported,
        ..Antimalware::default()
    }
}

#[derive(Default)]
struct PatchSummary {
    pending: usize,
    installed: usize,
    failed_after_last_install: bool,
    last_install: Option<DateTime<Utc>>,
    last_failure: Option<DateTime<Utc>>,
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut summaries: BTreeMap<i64, PatchSummary> = BTreeMap::new();

    let mut problems = Vec::new();
    for (path, r) in src.records(dataset::OS_PATCHES, results_array, &mut problems) {
        let Some(device) = r.get("deviceId").and_then(Value::as_i64) else {
            problems.push(format!("{path}: patch without numeric deviceId"));
            continue;
        };
        summaries.entry(device).or_default().pending += 1;
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

    let installs_collected = src.report.datasets.contains_key(dataset::OS_PATCH_INSTALLS);
    let mut install_problems = Vec::new();
    for (path, r) in src.records(
        dataset::OS_PATCH_INSTALLS,
        results_array,
        &mut install_problems,
    ) {
        let Some(device) = r.get("deviceId").and_then(Value::as_i64) else {
            install_problems.push(format!("{path}: install without numeric deviceId"));
            continue;
        };
        let at = when(r.get("installedAt")).or_else(|| when(r.get("timestamp")));
        let s = summaries.entry(device).or_default();
        match str_field(r, "status")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("INSTALLED") => {
                s.installed += 1;
                s.last_install = s.last_install.max(at);
            }
            Some("FAILED") => s.last_failure = s.last_failure.max(at),
            _ => install_problems.push(format!("{path}: install with unknown status")),
        }
    }
    for s in summaries.values_mut() {
        s.failed_after_last_install = match (s.last_failure, s.last_install) {
            (Some(f), Some(i)) => f > i,
            (Some(_), None) => true,
            _ => false,
        };
    }

    let mut av: BTreeMap<i64, Vec<ProductRow>> = BTreeMap::new();
    let mut av_problems = Vec::new();
    for (path, r) in src.records(dataset::ANTIVIRUS_STATUS, results_array, &mut av_problems) {
        let Some(device) = r.get("deviceId").and_then(Value::as_i64) else {
            av_problems.push(format!("{path}: antivirus status without numeric deviceId"));
            continue;
        };
        av.entry(device).or_default().push(ProductRow::read(r));
    }
    let mut av: BTreeMap<i64, Antimalware> = av
        .into_iter()
        .map(|(device, rows)| (device, combine(rows)))
        .collect();

    let mut problems = Vec::new();
    for (path, r) in src.records(dataset::DEVICES, bare_array, &mut problems) {
        let Some(id) = r.get("id").and_then(Value::as_i64) else {
            problems.push(format!("{path}: device without numeric id"));
            continue;
        };
        let name = str_field(r, "systemName")
            .or_else(|| str_field(r, "dnsName"))
            .unwrap_or("(unnamed)");
        let patch = summaries.get(&id).map(|s| PatchReport {
            reporting: s.pending + s.installed > 0,
            status: Some(
                if s.failed_after_last_install {
                    "InstallError"
                } else if s.pending > 0 {
                    "PatchesPending"
                } else {
                    "NoPendingPatches"
                }
                .to_owned(),
            ),
            last_install: s.last_install,
            install_failing: installs_collected.then_some(s.failed_after_last_install),
            pending_without_age: false,
        });
        let patch = patch.or(Some(PatchReport {
            reporting: false,
            status: None,
            last_install: None,
            install_failing: None,
            pending_without_age: false,
        }));
        facts.devices.push(Device {
            id: format!("{}:{id}", src.name),
            name: name.to_owned(),
            os: str_field(r, "nodeClass").map(str::to_owned),
            last_seen: parse_epoch(r.get("lastContact")),
            source: src.name.to_owned(),
            serial: r
                .pointer("/system/serialNumber")
                .and_then(Value::as_str)
                .map(str::to_owned),
            antimalware: av.remove(&id),
            patch,
            ..Device::default()
        });
    }
    facts.provide(
        FactKind::Devices,
        src.provenance(dataset::DEVICES, &problems),
    );
    facts.provide(
        FactKind::PatchState,
        src.provenance(dataset::OS_PATCH_INSTALLS, &install_problems),
    );
    facts.provide(
        FactKind::Antimalware,
        src.provenance(dataset::ANTIVIRUS_STATUS, &av_problems),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::evidence::{DatasetReport, DatasetStatus, SourceReport, SourceStatus};

    fn facts_of(antivirus: Vec<Value>) -> Facts {
        let complete = DatasetReport {
            status: DatasetStatus::Complete,
            pages: 1,
            records: 1,
            reason: None,
        };
        let report = SourceReport {
            source_type: "ninjaone".into(),
            status: SourceStatus::Complete,
            reason: None,
            datasets: [dataset::DEVICES, dataset::ANTIVIRUS_STATUS]
                .into_iter()
                .map(|d| (d.to_owned(), complete.clone()))
                .collect(),
            rejected: Vec::new(),
        };
        let page = |d: &str, v: Value| {
            (
                d.to_owned(),
                vec![(format!("evidence/ninja/{d}/page-00001.json"), v)],
            )
        };
        let src = SourceEvidence {
            name: "ninja",
            report: &report,
            pages: [
                page(
                    dataset::DEVICES,
                    json!([{"id": 7, "systemName": "PC-7", "nodeClass": "WINDOWS_WORKSTATION"}]),
                ),
                page(
                    dataset::ANTIVIRUS_STATUS,
                    json!({"cursor": {"name": "c"}, "results": antivirus}),
                ),
            ]
            .into_iter()
            .collect(),
            binary: BTreeMap::new(),
            requests: BTreeMap::new(),
        };
        let mut facts = Facts::default();
        normalise(&src, &mut facts);
        facts
    }

    fn row(product: &str, state: &str, definitions: &str, at: i64) -> Value {
        json!({"deviceId": 7, "productName": product, "productState": state,
               "definitionStatus": definitions, "timestamp": at})
    }

    /// The state of device 7 from `rows`, the same in either order.
    fn state(rows: &[Value]) -> crate::facts::Antimalware {
        let forward = facts_of(rows.to_vec());
        let backward = facts_of(rows.iter().rev().cloned().collect());
        let a = forward.devices[0]
            .antimalware
            .clone()
            .expect("antivirus state");
        assert_eq!(
            backward.devices[0].antimalware.as_ref(),
            Some(&a),
            "the row order does not matter"
        );
        a
    }

    #[test]
    fn a_product_standing_by_beside_a_running_one_is_no_gap() {
        // Windows keeps Defender off while another antivirus protects.
        let a = state(&[
            row("Sophos Endpoint", "ON", "UP_TO_DATE", 1_700_000_500),
            row("Windows Defender", "OFF", "OUT_OF_DATE", 1_700_000_000),
        ]);
        assert_eq!(
            (a.running, a.real_time, a.signatures_current),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(
            a.product.as_deref(),
            Some("Sophos Endpoint, Windows Defender [off, standing by]")
        );
        assert_eq!(a.reported.map(|t| t.timestamp()), Some(1_700_000_500));
    }

    #[test]
    fn stale_signatures_of_a_running_product_are_a_problem_whatever_the_others_say() {
        let a = state(&[
            row("Sophos Endpoint", "ON", "OUT_OF_DATE", 1_700_000_000),
            row("Windows Defender", "ON", "UP_TO_DATE", 1_700_000_900),
            row("Other AV", "SNOOZED", "UP_TO_DATE", 1_700_000_100),
        ]);
        assert_eq!((a.running, a.signatures_current), (Some(true), Some(false)));
        assert_eq!(
            a.product.as_deref(),
            Some(
                "Sophos Endpoint [definitions out of date], Other AV [off, standing by], \
                 Windows Defender"
            )
        );
        // The problem as last reported, not a healthy product's newer row.
        assert_eq!(a.reported.map(|t| t.timestamp()), Some(1_700_000_000));
    }

    #[test]
    fn with_no_product_running_every_problem_counts() {
        let a = state(&[
            row("Sophos Endpoint", "EXPIRED", "OUT_OF_DATE", 1_700_000_000),
            row("Windows Defender", "OFF", "UP_TO_DATE", 1_700_000_900),
        ]);
        assert_eq!(
            (a.running, a.real_time, a.signatures_current),
            (Some(false), Some(false), Some(false))
        );
        assert_eq!(
            a.product.as_deref(),
            Some("Sophos Endpoint [off, definitions out of date], Windows Defender [off]")
        );
        assert_eq!(a.reported.map(|t| t.timestamp()), Some(1_700_000_900));
    }

    #[test]
    fn one_product_and_unknown_values_keep_their_state() {
        let a = state(&[row("Sophos Endpoint", "ON", "UP_TO_DATE", 1_700_000_000)]);
        assert_eq!(a.product.as_deref(), Some("Sophos Endpoint"));
        assert_eq!((a.running, a.signatures_current), (Some(true), Some(true)));
        let a = state(&[
            row("Windows Defender", "ON", "UP_TO_DATE", 1_700_000_900),
            row("Sophos Endpoint", "ON", "UNKNOWN", 1_700_000_000),
        ]);
        assert_eq!(
            a.product.as_deref(),
            Some("Sophos Endpoint, Windows Defender")
        );
        assert_eq!((a.running, a.signatures_current), (Some(true), Some(true)));
        // Good news is only as fresh as its oldest part.
        assert_eq!(a.reported.map(|t| t.timestamp()), Some(1_700_000_000));
        // Nothing known: no state, never a pass.
        let a = state(&[row("Odd AV", "WHATEVER", "WHATEVER", 1_700_000_000)]);
        assert_eq!((a.running, a.signatures_current), (None, None));
    }
}
