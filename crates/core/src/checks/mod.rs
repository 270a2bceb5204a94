//! Checks: pure functions from facts and thresholds to an outcome with the
//! exact failing users and devices. One check per file; each file's doc
//! comment says what it tests, why it matters, what it reads and how to fix a
//! failure. Adding a check is one file plus one line in [`CHECKS`].

mod access_review_completed;
mod access_review_denials_applied;
mod devices_report_patch_state;
mod disk_encryption;
mod edr_coverage;
mod edr_health;
mod guest_accounts_reviewed;
mod inactive_accounts;
mod intune_compliance;
mod mfa_admins;
mod mfa_enforced;
mod mfa_registered;
mod patch_latency_critical;
mod patch_latency_high;
mod responsibility_matrix;
mod stale_devices;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::facts::{FactKind, Facts, InventoryItem, Severity};
use crate::policy::{Owner, Thresholds};

/// Every check auditpack runs.
pub const CHECKS: &[Check] = &[
    mfa_registered::CHECK,
    mfa_admins::CHECK,
    mfa_enforced::CHECK,
    inactive_accounts::CHECK,
    guest_accounts_reviewed::CHECK,
    access_review_completed::CHECK,
    access_review_denials_applied::CHECK,
    patch_latency_critical::CHECK,
    patch_latency_high::CHECK,
    devices_report_patch_state::CHECK,
    edr_coverage::CHECK,
    edr_health::CHECK,
    disk_encryption::CHECK,
    intune_compliance::CHECK,
    stale_devices::CHECK,
    responsibility_matrix::CHECK,
];

/// A check by id.
pub fn check(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

/// A check's definition.
#[derive(Debug)]
pub struct Check {
    /// Stable id used by catalogs and ownership templates.
    pub id: &'static str,
    /// The check's source file, whose `//!` comment is its documentation
    /// (read it with [`Check::documentation`]).
    pub source: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// The thresholds it reads (for `auditpack controls show`).
    pub thresholds: &'static [Threshold],
    /// How to fix a failure, for gap lists.
    pub remediation: &'static str,
    /// Fact kinds it reads; any that is incomplete makes it inconclusive.
    pub needs: &'static [FactKind],
    /// The judgement, run only when every needed fact is complete.
    pub run: fn(&CheckInput<'_>) -> Outcome,
}

impl Check {
    /// The check's documentation (what it tests, why, evidence, how to fix):
    /// its module doc comment, as Markdown paragraphs.
    pub fn documentation(&self) -> String {
        let mut out = String::new();
        for line in self.source.lines() {
            let Some(text) = line.strip_prefix("//!") else {
                if out.is_empty() && line.trim().is_empty() {
                    continue;
                }
                break;
            };
            out.push_str(text.strip_prefix(' ').unwrap_or(text));
            out.push('\n');
        }
        out.trim_end().to_owned()
    }

    /// One section of the documentation (`What it tests`, `Why it matters`,
    /// `Evidence`, `How to fix`), as one line; empty when absent.
    pub fn doc_section(&self, heading: &str) -> String {
        let marker = format!("**{heading}.**");
        self.documentation()
            .split("\n\n")
            .find_map(|para| para.strip_prefix(marker.as_str()))
            .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }
}

/// What a check reads.
pub struct CheckInput<'a> {
    /// The facts.
    pub facts: &'a Facts,
    /// Thresholds in force for the framework being evaluated.
    pub limits: &'a Limits,
    /// The instant ages are measured at.
    pub as_of: DateTime<Utc>,
    /// The ownership matrix of every control in scope, computed by the
    /// evaluation from the catalog and ownership (not a fact a collector
    /// gathers); `None` when the caller has none.
    pub ownership: Option<&'a [OwnershipEntry]>,
}

impl<'a> CheckInput<'a> {
    /// Input without an ownership matrix.
    pub fn new(facts: &'a Facts, limits: &'a Limits, as_of: DateTime<Utc>) -> CheckInput<'a> {
        CheckInput {
            facts,
            limits,
            as_of,
            ownership: None,
        }
    }
}

/// One row of the ownership matrix: an in-scope control and who owns it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OwnershipEntry {
    /// `"<framework>:<control id>"`.
    pub control: String,
    /// Control title.
    pub title: String,
    /// Accountable owner.
    pub owner: Owner,
    /// For shared controls: checks of the control with no responsible party.
    pub unassigned_checks: Vec<String>,
}

/// A threshold a check reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    /// `inactive_account_days`.
    InactiveAccountDays,
    /// `critical_patch_days`.
    CriticalPatchDays,
    /// `high_patch_days`.
    HighPatchDays,
    /// `access_review_days`.
    AccessReviewDays,
    /// `edr_signature_days`.
    EdrSignatureDays,
    /// `stale_device_days`.
    StaleDeviceDays,
}

impl Threshold {
    /// The config key.
    pub fn key(self) -> &'static str {
        match self {
            Threshold::InactiveAccountDays => "inactive_account_days",
            Threshold::CriticalPatchDays => "critical_patch_days",
            Threshold::HighPatchDays => "high_patch_days",
            Threshold::AccessReviewDays => "access_review_days",
            Threshold::EdrSignatureDays => "edr_signature_days",
            Threshold::StaleDeviceDays => "stale_device_days",
        }
    }

    /// Its value in `limits`.
    pub fn value(self, limits: &Limits) -> u32 {
        match self {
            Threshold::InactiveAccountDays => limits.inactive_account_days,
            Threshold::CriticalPatchDays => limits.critical_patch_days,
            Threshold::HighPatchDays => limits.high_patch_days,
            Threshold::AccessReviewDays => limits.access_review_days,
            Threshold::EdrSignatureDays => limits.edr_signature_days,
            Threshold::StaleDeviceDays => limits.stale_device_days,
        }
    }
}

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing fails.
    Pass,
    /// At least one subject fails.
    Fail,
    /// The evidence does not allow a judgement.
    Inconclusive,
}

/// A user, device or other object that fails a check.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    /// Stable id (`<source>:<id>`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Why it fails.
    pub detail: String,
}

/// A check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Verdict.
    pub verdict: Verdict,
    /// How many subjects were judged.
    pub evaluated: usize,
    /// The failing subjects, sorted by id.
    pub failing: Vec<Subject>,
    /// One sentence for reports.
    pub summary: String,
}

impl Outcome {
    /// Pass or fail from the failing subjects; `what` names the population.
    pub fn judge(evaluated: usize, mut failing: Vec<Subject>, what: &str) -> Outcome {
        failing.sort();
        let summary = if failing.is_empty() {
            format!("all {evaluated} {what} pass")
        } else {
            format!("{} of {evaluated} {what} fail", failing.len())
        };
        Outcome {
            verdict: if failing.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            evaluated,
            failing,
            summary,
        }
    }

    /// An outcome that cannot be judged.
    pub fn inconclusive(reason: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Inconclusive,
            evaluated: 0,
            failing: Vec::new(),
            summary: reason.into(),
        }
    }
}

/// Thresholds with every value set: config overrides, else the framework's
/// defaults, else auditpack's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Limits {
    /// Days without sign-in before an enabled account is inactive.
    pub inactive_account_days: u32,
    /// Days a critical patch may stay pending.
    pub critical_patch_days: u32,
    /// Days a high/important patch may stay pending.
    pub high_patch_days: u32,
    /// Days within which access reviews must complete.
    pub access_review_days: u32,
    /// Maximum anti-malware signature age in days.
    pub edr_signature_days: u32,
    /// Days without check-in before a device is stale.
    pub stale_device_days: u32,
    /// Maximum age of the newest backup in hours.
    pub backup_max_age_hours: u32,
    /// Days collected evidence stays usable for a judgement.
    pub evidence_ttl_days: u32,
}

impl Limits {
    /// auditpack's own defaults, used where neither config nor framework sets one.
    pub const DEFAULT: Limits = Limits {
        inactive_account_days: 90,
        critical_patch_days: 30,
        high_patch_days: 90,
        access_review_days: 180,
        edr_signature_days: 7,
        stale_device_days: 30,
        backup_max_age_hours: 168,
        evidence_ttl_days: 30,
    };

    /// Resolve: `config` over `framework` over [`Limits::DEFAULT`].
    pub fn resolve(framework: &Thresholds, config: &Thresholds) -> Limits {
        let d = Limits::DEFAULT;
        let pick = |c: Option<u32>, f: Option<u32>, d: u32| c.or(f).unwrap_or(d);
        Limits {
            inactive_account_days: pick(
                config.inactive_account_days,
                framework.inactive_account_days,
                d.inactive_account_days,
            ),
            critical_patch_days: pick(
                config.critical_patch_days,
                framework.critical_patch_days,
                d.critical_patch_days,
            ),
            high_patch_days: pick(
                config.high_patch_days,
                framework.high_patch_days,
                d.high_patch_days,
            ),
            access_review_days: pick(
                config.access_review_days,
                framework.access_review_days,
                d.access_review_days,
            ),
            edr_signature_days: pick(
                config.edr_signature_days,
                framework.edr_signature_days,
                d.edr_signature_days,
            ),
            stale_device_days: pick(
                config.stale_device_days,
                framework.stale_device_days,
                d.stale_device_days,
            ),
            backup_max_age_hours: pick(
                config.backup_max_age_hours,
                framework.backup_max_age_hours,
                d.backup_max_age_hours,
            ),
            evidence_ttl_days: pick(
                config.evidence_ttl_days,
                framework.evidence_ttl_days,
                d.evidence_ttl_days,
            ),
        }
    }
}

/// Run a check: inconclusive when a needed fact is missing or incomplete.
pub fn run_check(check: &Check, input: &CheckInput<'_>) -> Outcome {
    use crate::facts::Availability;
    let mut problems = Vec::new();
    for kind in check.needs {
        match input.facts.availability(*kind) {
            Availability::Complete => {}
            Availability::Incomplete(why) => {
                problems.push(format!("{} incomplete: {why}", kind.describe()))
            }
            Availability::Absent => {
                problems.push(format!("no configured source collects {}", kind.describe()))
            }
        }
    }
    if problems.is_empty() {
        (check.run)(input)
    } else {
        Outcome::inconclusive(problems.join("; "))
    }
}

/// Devices with a pending patch of `severity` older than `limit_days` (or of
/// unknown age), one failing subject per device listing its overdue patches;
/// `label` names the severity in the detail (e.g. "critical").
pub(crate) fn overdue_patches(
    input: &CheckInput<'_>,
    severity: Severity,
    limit_days: u32,
    label: &str,
) -> Outcome {
    let limit = i64::from(limit_days);
    let mut overdue: BTreeMap<&str, Vec<(Option<i64>, &str)>> = BTreeMap::new();
    for patch in &input.facts.patches {
        if patch.severity != severity {
            continue;
        }
        let age = patch.detected.map(|t| days_between(t, input.as_of));
        if age.is_none_or(|days| days > limit) {
            let label = patch.kb.as_deref().unwrap_or(&patch.name);
            overdue
                .entry(patch.device_id.as_str())
                .or_default()
                .push((age, label));
        }
    }
    let names: BTreeMap<&str, &str> = input
        .facts
        .devices
        .iter()
        .map(|d| (d.id.as_str(), d.name.as_str()))
        .collect();
    let failing = overdue
        .into_iter()
        .map(|(device, mut patches)| {
            patches.sort_by(|a, b| b.cmp(a));
            let oldest = match patches.iter().find_map(|p| p.0) {
                Some(days) if patches.iter().all(|p| p.0.is_some()) => {
                    format!("oldest {days} days")
                }
                _ => "age unknown for some".to_owned(),
            };
            let list: Vec<&str> = patches.iter().map(|p| p.1).collect();
            Subject {
                id: device.to_owned(),
                name: names.get(device).copied().unwrap_or(device).to_owned(),
                detail: format!(
                    "{} {label} patch(es) pending over {limit} days, {oldest}: {}",
                    list.len(),
                    list.join(", ")
                ),
            }
        })
        .collect();
    Outcome::judge(input.facts.devices.len(), failing, "devices")
}

/// Whole days from `then` to `now` (0 when `then` is later).
pub(crate) fn days_between(then: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - then).num_days().max(0)
}

/// Per-source device records by stable id.
pub(crate) fn devices_by_id(
    facts: &Facts,
) -> std::collections::HashMap<&str, &crate::facts::Device> {
    facts.devices.iter().map(|d| (d.id.as_str(), d)).collect()
}

/// The reconciled inventory; reconciled here when the facts were never
/// finished (so a device can never escape an inventory check).
pub(crate) fn inventory(facts: &Facts) -> std::borrow::Cow<'_, [InventoryItem]> {
    if facts.inventory.is_empty() && !facts.devices.is_empty() {
        std::borrow::Cow::Owned(crate::facts::reconcile(&facts.devices))
    } else {
        std::borrow::Cow::Borrowed(&facts.inventory)
    }
}

/// Judge every reconciled device on a yes/no fact that each source may or
/// may not report (`says` gives `None` when a source is silent). A device
/// passes when any source says yes; otherwise its detail is "no source reports
/// `what` (seen by ...)" when every source is silent, or `said_no` followed by
/// the sources that say no.
pub(crate) fn every_device(
    input: &CheckInput<'_>,
    says: impl Fn(&crate::facts::Device) -> Option<bool>,
    what: &str,
    said_no: &str,
) -> Outcome {
    let by_id = devices_by_id(input.facts);
    let items = inventory(input.facts);
    let mut failing = Vec::new();
    for item in items.iter() {
        let answers: Vec<(&str, Option<bool>)> = item
            .members
            .iter()
            .filter_map(|m| by_id.get(m.as_str()))
            .map(|d| (d.source.as_str(), says(d)))
            .collect();
        if answers.iter().any(|(_, a)| *a == Some(true)) {
            continue;
        }
        let no: Vec<&str> = answers
            .iter()
            .filter(|(_, a)| *a == Some(false))
            .map(|(source, _)| *source)
            .collect();
        let detail = if no.is_empty() {
            format!(
                "no source reports {what} (seen by {})",
                item.sources.join(", ")
            )
        } else {
            format!("{said_no} {}", no.join(", "))
        };
        failing.push(inventory_subject(item, detail));
    }
    Outcome::judge(items.len(), failing, "devices")
}

/// A reconciled device as a failing subject.
pub(crate) fn inventory_subject(item: &InventoryItem, detail: String) -> Subject {
    Subject {
        id: item.id.clone(),
        name: item.name.clone(),
        detail,
    }
}

/// The sources that provide `kind` in these facts.
pub(crate) fn sources_of(facts: &Facts, kind: FactKind) -> std::collections::BTreeSet<&str> {
    facts
        .coverage
        .get(&kind)
        .into_iter()
        .flatten()
        .map(|p| p.source.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::CHECKS;

    /// Evaluation shares a check's outcome between frameworks whose declared
    /// thresholds agree, so a check must declare every threshold it reads.
    #[test]
    fn every_check_declares_the_thresholds_it_reads() {
        let all = [
            super::Threshold::InactiveAccountDays,
            super::Threshold::CriticalPatchDays,
            super::Threshold::HighPatchDays,
            super::Threshold::AccessReviewDays,
            super::Threshold::EdrSignatureDays,
            super::Threshold::StaleDeviceDays,
        ];
        for check in CHECKS {
            let code = check.source.split("#[cfg(test)]").next().unwrap_or("");
            for t in all {
                let reads = code.contains(&format!("limits.{}", t.key()));
                assert_eq!(
                    reads,
                    check.thresholds.contains(&t),
                    "{} and {}",
                    check.id,
                    t.key()
                );
            }
            for other in ["backup_max_age_hours", "evidence_ttl_days"] {
                assert!(
                    !code.contains(&format!("limits.{other}")),
                    "{}: {other}",
                    check.id
                );
            }
        }
    }

    #[test]
    fn every_check_is_documented_in_the_house_style() {
        for check in CHECKS {
            let doc = check.documentation();
            assert!(doc.starts_with(&format!("`{}`", check.id)), "{}", check.id);
            for heading in ["What it tests", "Why it matters", "Evidence", "How to fix"] {
                assert!(
                    !check.doc_section(heading).is_empty(),
                    "{}: {heading}",
                    check.id
                );
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Small fact builders for check tests.
    use chrono::{DateTime, Duration, TimeZone, Utc};

    use crate::facts::{FactKind, Facts, Provenance};
    use crate::run::DatasetStatus;

    pub fn as_of() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    pub fn days_ago(days: i64) -> DateTime<Utc> {
        as_of() - Duration::days(days)
    }

    /// Facts with the inventory reconciled from their devices.
    pub fn reconciled(mut facts: Facts) -> Facts {
        facts.inventory = crate::facts::reconcile(&facts.devices);
        facts
    }

    /// A device record of `source` with a hostname and serial.
    pub fn device(source: &str, id: &str, name: &str) -> crate::facts::Device {
        crate::facts::Device {
            id: format!("{source}:{id}"),
            name: name.to_owned(),
            source: source.to_owned(),
            serial: Some(format!("SN-{name}")),
            last_seen: Some(days_ago(1)),
            ..crate::facts::Device::default()
        }
    }

    /// A user with the given state.
    pub fn user(id: &str, enabled: bool, user_type: crate::facts::UserType) -> crate::facts::User {
        crate::facts::User {
            id: format!("m365:{id}"),
            upn: format!("{id}@contoso.example"),
            display_name: id.to_uppercase(),
            enabled,
            user_type,
            last_sign_in: Some(days_ago(1)),
            created: Some(days_ago(400)),
            mfa: None,
            is_admin: false,
            roles: vec![],
        }
    }

    /// Run `check` over `facts` with `limits`.
    pub fn run(
        check: &crate::checks::Check,
        facts: &Facts,
        limits: &crate::checks::Limits,
    ) -> crate::checks::Outcome {
        crate::checks::run_check(
            check,
            &crate::checks::CheckInput::new(facts, limits, as_of()),
        )
    }

    /// Failing subject ids of an outcome.
    pub fn ids(out: &crate::checks::Outcome) -> Vec<&str> {
        out.failing.iter().map(|s| s.id.as_str()).collect()
    }

    /// Facts whose given kinds are complete.
    pub fn complete(mut facts: Facts, kinds: &[FactKind]) -> Facts {
        for kind in kinds {
            facts.coverage.entry(*kind).or_default().push(Provenance {
                source: "test".into(),
                dataset: "test".into(),
                status: DatasetStatus::Complete,
                reason: None,
                evidence: vec!["evidence/test/test/page-00001.json".into()],
            });
        }
        facts
    }
}
