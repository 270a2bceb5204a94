//! Checks: pure functions from facts and thresholds to an outcome with the
//! exact failing users and devices. One check per file; each file's doc
//! comment says what it tests, why it matters, what it reads and how to fix a
//! failure. Adding a check is one file plus one line in [`CHECKS`].

mod access_review_completed;
mod access_review_denials_applied;
mod backup_321;
mod backup_coverage;
mod backup_recency;
mod backups;
mod device_coverage;
mod devices_report_patch_state;
mod disk_encryption;
mod edr_coverage;
mod edr_health;
mod edr_onboarded;
mod guest_accounts_reviewed;
mod inactive_accounts;
mod intune_compliance;
mod mfa_admins;
mod mfa_enforced;
mod mfa_registered;
mod patch_install_failures;
mod patch_latency_critical;
mod patch_latency_high;
mod responsibility_matrix;
mod restore_tested;
mod security_incidents_handled;
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
    patch_install_failures::CHECK,
    device_coverage::CHECK,
    edr_coverage::CHECK,
    edr_health::CHECK,
    edr_onboarded::CHECK,
    disk_encryption::CHECK,
    intune_compliance::CHECK,
    stale_devices::CHECK,
    backup_recency::CHECK,
    backup_coverage::CHECK,
    backup_321::CHECK,
    restore_tested::CHECK,
    responsibility_matrix::CHECK,
    security_incidents_handled::CHECK,
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
    /// Fact kinds it reads; any that no source provides makes it
    /// inconclusive, and so does any that is incomplete unless it is listed
    /// in `per_subject`.
    pub needs: &'static [FactKind],
    /// Needed kinds whose incompleteness the check judges subject by subject:
    /// a subject whose only source for the state was partial or failed is
    /// listed as unproven, the others are still judged.
    pub per_subject: &'static [FactKind],
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
    /// The inventory with each item's device records, when the evaluation
    /// built it once for every check; `None` builds it per check.
    pub devices: Option<&'a DeviceIndex<'a>>,
}

impl<'a> CheckInput<'a> {
    /// Input without an ownership matrix.
    pub fn new(facts: &'a Facts, limits: &'a Limits, as_of: DateTime<Utc>) -> CheckInput<'a> {
        CheckInput {
            facts,
            limits,
            as_of,
            ownership: None,
            devices: None,
        }
    }

    /// The inventory and its device records: the evaluation's shared index,
    /// or one built now.
    pub(crate) fn device_index(&self) -> Devices<'a> {
        match self.devices {
            Some(index) => Devices::Shared(index),
            None => Devices::Own(Box::new(DeviceIndex::new(self.facts))),
        }
    }
}

/// The reconciled inventory with the device records of each item, and the
/// records by id. Built once per evaluation and shared by every device
/// check: looking each item's records up by id again in every check cost
/// more than judging them.
pub struct DeviceIndex<'a> {
    items: std::borrow::Cow<'a, [InventoryItem]>,
    /// Per item (same order), its records that the facts hold.
    records: Vec<Vec<&'a crate::facts::Device>>,
    by_id: foldhash::HashMap<&'a str, &'a crate::facts::Device>,
}

impl<'a> DeviceIndex<'a> {
    /// Index the inventory of `facts` (reconciled here when the facts were
    /// never finished, so a device can never escape an inventory check).
    pub fn new(facts: &'a Facts) -> DeviceIndex<'a> {
        let by_id = devices_by_id(facts);
        let items = inventory(facts);
        let records = items
            .iter()
            .map(|item| {
                item.members
                    .iter()
                    .filter_map(|m| by_id.get(m.as_str()).copied())
                    .collect()
            })
            .collect();
        DeviceIndex {
            items,
            records,
            by_id,
        }
    }

    /// The inventory items, each with its device records.
    pub(crate) fn items(
        &self,
    ) -> impl Iterator<Item = (&InventoryItem, &[&'a crate::facts::Device])> {
        self.items
            .iter()
            .zip(self.records.iter().map(Vec::as_slice))
    }

    /// The device record of `id`.
    pub(crate) fn device(&self, id: &str) -> Option<&'a crate::facts::Device> {
        self.by_id.get(id).copied()
    }
}

/// A [`DeviceIndex`] shared by the evaluation or built for one check.
pub(crate) enum Devices<'a> {
    Shared(&'a DeviceIndex<'a>),
    Own(Box<DeviceIndex<'a>>),
}

impl<'a> std::ops::Deref for Devices<'a> {
    type Target = DeviceIndex<'a>;

    fn deref(&self) -> &DeviceIndex<'a> {
        match self {
            Devices::Shared(index) => index,
            Devices::Own(index) => index,
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
    /// `incident_high_sla_days`.
    IncidentHighSlaDays,
    /// `incident_medium_sla_days`.
    IncidentMediumSlaDays,
    /// `mobile_endpoint_protection` (1 when phones and tablets are in scope
    /// for anti-malware and EDR, else 0).
    MobileEndpointProtection,
    /// `backup_max_age_hours`.
    BackupMaxAgeHours,
    /// `restore_test_days`.
    RestoreTestDays,
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
            Threshold::IncidentHighSlaDays => "incident_high_sla_days",
            Threshold::IncidentMediumSlaDays => "incident_medium_sla_days",
            Threshold::MobileEndpointProtection => "mobile_endpoint_protection",
            Threshold::BackupMaxAgeHours => "backup_max_age_hours",
            Threshold::RestoreTestDays => "restore_test_days",
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
            Threshold::IncidentHighSlaDays => limits.incident_high_sla_days,
            Threshold::IncidentMediumSlaDays => limits.incident_medium_sla_days,
            Threshold::MobileEndpointProtection => u32::from(limits.mobile_endpoint_protection),
            Threshold::BackupMaxAgeHours => limits.backup_max_age_hours,
            Threshold::RestoreTestDays => limits.restore_test_days,
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

/// A user, device or other object a check judged: failing (the evidence
/// shows a problem) or unproven (no usable evidence for it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    /// Stable id (`<source>:<id>`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Why it fails, or why it cannot be judged.
    pub detail: String,
}

/// How many subject names a summary lists before it says "and N more".
const SUMMARY_NAMES: usize = 5;

/// A check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Verdict.
    pub verdict: Verdict,
    /// How many subjects were judged (failing, unproven and passing).
    pub evaluated: usize,
    /// The failing subjects (evidence shows a problem), sorted by id.
    pub failing: Vec<Subject>,
    /// The unproven subjects (no usable evidence: no source reports the
    /// state, or the only source that would was partial or failed), sorted by
    /// id. Never a pass, never a failure: alone they make the check
    /// inconclusive.
    #[serde(default)]
    pub unproven: Vec<Subject>,
    /// One sentence for reports.
    pub summary: String,
    /// Numbers the check measured beside its verdict (e.g. the mean time to
    /// resolve incidents per severity), for KPIs and trends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<Figure>,
}

/// A number a check measured beside its verdict. Deterministic for given
/// facts and `as_of`, like the verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Stable name, e.g. `mean_time_to_resolve.high`.
    pub name: String,
    /// The value (finite).
    pub value: f64,
    /// Its unit, e.g. `hours` or `incidents`.
    pub unit: String,
}

// Values are always finite (never NaN), so equality is total.
impl Eq for Figure {}

impl Outcome {
    /// Pass or fail from the failing subjects; `what` names the population.
    pub fn judge(evaluated: usize, failing: Vec<Subject>, what: &str) -> Outcome {
        Outcome::judge_all(evaluated, failing, Vec::new(), what)
    }

    /// The verdict from failing and unproven subjects: any failing subject
    /// fails the check; otherwise any unproven subject makes it inconclusive
    /// (and the summary names them); otherwise it passes.
    pub fn judge_all(
        evaluated: usize,
        mut failing: Vec<Subject>,
        mut unproven: Vec<Subject>,
        what: &str,
    ) -> Outcome {
        failing.sort();
        failing.dedup();
        unproven.sort();
        unproven.dedup();
        let (verdict, summary) = match (failing.is_empty(), unproven.is_empty()) {
            (true, true) => (Verdict::Pass, format!("all {evaluated} {what} pass")),
            (false, true) => (
                Verdict::Fail,
                format!("{} of {evaluated} {what} fail", failing.len()),
            ),
            (false, false) => (
                Verdict::Fail,
                format!(
                    "{} of {evaluated} {what} fail; {} cannot be judged: {}",
                    failing.len(),
                    unproven.len(),
                    name_list(&unproven)
                ),
            ),
            (true, false) => (
                Verdict::Inconclusive,
                format!(
                    "{} of {evaluated} {what} cannot be judged: {}",
                    unproven.len(),
                    name_list(&unproven)
                ),
            ),
        };
        Outcome {
            verdict,
            evaluated,
            failing,
            unproven,
            summary,
            figures: Vec::new(),
        }
    }

    /// An outcome that cannot be judged.
    pub fn inconclusive(reason: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Inconclusive,
            evaluated: 0,
            failing: Vec::new(),
            unproven: Vec::new(),
            summary: reason.into(),
            figures: Vec::new(),
        }
    }

    /// Attach measured figures.
    pub(crate) fn with_figures(mut self, figures: Vec<Figure>) -> Outcome {
        self.figures = figures;
        self
    }

    /// Append a note (e.g. a newer report that overrode an older problem) to
    /// the summary.
    pub(crate) fn note(mut self, note: &str) -> Outcome {
        if !note.is_empty() {
            self.summary.push_str("; ");
            self.summary.push_str(note);
        }
        self
    }
}

/// The first few subject names with their reasons, for a summary.
fn name_list(subjects: &[Subject]) -> String {
    let mut names: Vec<String> = subjects
        .iter()
        .take(SUMMARY_NAMES)
        .map(|s| format!("{} ({})", s.name, s.detail))
        .collect();
    if subjects.len() > SUMMARY_NAMES {
        names.push(format!("and {} more", subjects.len() - SUMMARY_NAMES));
    }
    names.join(", ")
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
    /// Days a high-severity incident may stay unresolved without active handling.
    pub incident_high_sla_days: u32,
    /// Days a medium-severity incident may stay unresolved without active handling.
    pub incident_medium_sla_days: u32,
    /// Days within which a restore or boot test must have passed.
    pub restore_test_days: u32,
    /// Days collected evidence stays usable for a judgement.
    pub evidence_ttl_days: u32,
    /// Phones and tablets are in scope for the anti-malware and EDR checks
    /// (they always are for encryption, compliance and staleness).
    pub mobile_endpoint_protection: bool,
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
        incident_high_sla_days: 7,
        incident_medium_sla_days: 30,
        restore_test_days: 90,
        evidence_ttl_days: 30,
        mobile_endpoint_protection: false,
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
            incident_high_sla_days: pick(
                config.incident_high_sla_days,
                framework.incident_high_sla_days,
                d.incident_high_sla_days,
            ),
            incident_medium_sla_days: pick(
                config.incident_medium_sla_days,
                framework.incident_medium_sla_days,
                d.incident_medium_sla_days,
            ),
            restore_test_days: pick(
                config.restore_test_days,
                framework.restore_test_days,
                d.restore_test_days,
            ),
            evidence_ttl_days: pick(
                config.evidence_ttl_days,
                framework.evidence_ttl_days,
                d.evidence_ttl_days,
            ),
            mobile_endpoint_protection: config
                .mobile_endpoint_protection
                .or(framework.mobile_endpoint_protection)
                .unwrap_or(d.mobile_endpoint_protection),
        }
    }
}

/// Run a check: inconclusive when a needed fact is missing, or incomplete
/// where the check cannot judge the incompleteness subject by subject.
pub fn run_check(check: &Check, input: &CheckInput<'_>) -> Outcome {
    use crate::facts::Availability;
    let mut problems = Vec::new();
    for kind in check.needs {
        match input.facts.availability(*kind) {
            Availability::Complete => {}
            Availability::Incomplete(_) if check.per_subject.contains(kind) => {}
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

/// Devices with a pending patch of `severity` older than `limit_days`, one
/// failing subject per device record listing its overdue patches; `label`
/// names the severity in the detail (e.g. "critical"). Unproven, listed
/// apart: a device whose pending patches of that severity carry no detection
/// time; a device a source says has patches pending without listing them
/// (Datto `ApprovedPending`, `RebootRequired`, `InstallError`) when no
/// complete source lists its pending patches with ages; a device whose only
/// pending-patch list was partial or failed.
pub(crate) fn overdue_patches(
    input: &CheckInput<'_>,
    severity: Severity,
    limit_days: u32,
    label: &str,
) -> Outcome {
    let limit = i64::from(limit_days);
    let mut overdue: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    let mut unknown_age: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for patch in &input.facts.patches {
        if patch.severity != severity {
            continue;
        }
        let name = patch.kb.as_deref().unwrap_or(&patch.name);
        match patch.detected.map(|t| days_between(t, input.as_of)) {
            Some(days) if days > limit => overdue
                .entry(patch.device_id.as_str())
                .or_default()
                .push((days, name)),
            Some(_) => {}
            None => unknown_age
                .entry(patch.device_id.as_str())
                .or_default()
                .push(name),
        }
    }
    let index = input.device_index();
    let name_of = |id: &str| index.device(id).map_or(id, |d| d.name.as_str()).to_owned();
    let mut failing: Vec<Subject> = overdue
        .iter()
        .map(|(device, patches)| {
            let mut patches = patches.clone();
            patches.sort_by(|a, b| b.cmp(a));
            let oldest = patches.first().map_or(0, |p| p.0);
            let list: Vec<&str> = patches.iter().map(|p| p.1).collect();
            let mut detail = format!(
                "{} {label} patch(es) pending over {limit} days, oldest {oldest} days: {}",
                list.len(),
                list.join(", ")
            );
            if let Some(more) = unknown_age.get(device) {
                detail.push_str(&format!("; age unknown for {}", more.join(", ")));
            }
            Subject {
                id: (*device).to_owned(),
                name: name_of(device),
                detail,
            }
        })
        .collect();
    failing.sort();
    let mut unproven: BTreeMap<String, Subject> = BTreeMap::new();
    for (device, patches) in &unknown_age {
        if overdue.contains_key(device) {
            continue;
        }
        unproven.insert(
            (*device).to_owned(),
            Subject {
                id: (*device).to_owned(),
                name: name_of(device),
                detail: format!(
                    "{} {label} patch(es) pending with no detection time, so their age cannot be shown: {}",
                    patches.len(),
                    patches.join(", ")
                ),
            },
        );
    }
    // Devices whose pending patches no complete source lists with ages.
    let listing = sources_of(input.facts, FactKind::PendingPatches);
    let partial = incomplete_sources(input.facts, FactKind::PendingPatches);
    for (_, records) in index.items() {
        let listed = |d: &&crate::facts::Device| {
            listing.contains(d.source.as_str()) && d.patch.as_ref().is_some_and(|p| p.reporting)
        };
        let ages_known = records
            .iter()
            .any(|d| listed(d) && !partial.contains_key(d.source.as_str()));
        if ages_known {
            continue;
        }
        for d in records {
            if overdue.contains_key(d.id.as_str()) || unproven.contains_key(&d.id) {
                continue;
            }
            let detail = match &d.patch {
                Some(p) if p.pending_without_age => format!(
                    "{} reports {}: patches pending without ages or severities, and no source lists them with ages",
                    d.source,
                    p.status.as_deref().unwrap_or("patches pending")
                ),
                Some(_) if listed(d) => match partial.get(d.source.as_str()) {
                    Some(why) => format!("its pending patch list is incomplete: {why}"),
                    None => continue,
                },
                _ => continue,
            };
            unproven.insert(
                d.id.clone(),
                Subject {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    detail,
                },
            );
        }
    }
    Outcome::judge_all(
        input.facts.devices.len(),
        failing,
        unproven.into_values().collect(),
        "devices",
    )
}

/// Whole days from `then` to `now` (0 when `then` is later).
pub(crate) fn days_between(then: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - then).num_days().max(0)
}

/// Per-source device records by stable id.
pub(crate) fn devices_by_id(facts: &Facts) -> foldhash::HashMap<&str, &crate::facts::Device> {
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

/// What one source says about one state of one subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The state is as it should be.
    Good,
    /// The state shows a problem, described.
    Bad(String),
    /// The source does not report this state.
    Silent,
    /// The source reports the state as unknown, with its words: no evidence
    /// either way, but worth naming.
    Unknown(String),
}

/// One source's report of one state, with the time the source received it.
#[derive(Clone, Debug)]
pub(crate) struct Report<'a> {
    /// Source name.
    pub source: &'a str,
    /// When the source received this state, when it says.
    pub at: Option<DateTime<Utc>>,
    /// What it says.
    pub reading: Reading,
}

/// The judgement of one state of one subject across its sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Judgement {
    /// Good per every source that reports it (or per the newest report).
    Pass,
    /// A newer healthy report decides over an older problem report (every
    /// report carried a time); the note says which.
    Overridden(String),
    /// A problem, with the sources that report it.
    Fail(String),
    /// No usable evidence, with the reason.
    Unproven(String),
}

/// Judge one state from every source's report, the way an auditor would:
/// a problem reported by any source is never silenced by another source's
/// good news, except that where every report carries a time the newest
/// decides (a tie goes to the problem); a state no source reports is
/// unproven, with the partial or failed sources that might have reported it
/// (`incomplete`) named.
pub(crate) fn decide(what: &str, reports: &[Report<'_>], incomplete: &[String]) -> Judgement {
    let speaking: Vec<&Report<'_>> = reports
        .iter()
        .filter(|r| matches!(r.reading, Reading::Good | Reading::Bad(_)))
        .collect();
    if speaking.is_empty() {
        let mut why: Vec<String> = reports
            .iter()
            .filter_map(|r| match &r.reading {
                Reading::Unknown(text) => Some(format!("{}: {text}", r.source)),
                _ => None,
            })
            .collect();
        if why.is_empty() {
            let mut sources: Vec<&str> = reports.iter().map(|r| r.source).collect();
            sources.sort_unstable();
            sources.dedup();
            why.push(if sources.is_empty() {
                format!("no source reports {what}")
            } else {
                format!("no source reports {what} (known to {})", sources.join(", "))
            });
        }
        why.extend(incomplete.iter().cloned());
        return Judgement::Unproven(why.join("; "));
    }
    let bad: Vec<(&Report<'_>, &str)> = speaking
        .iter()
        .filter_map(|r| match &r.reading {
            Reading::Bad(why) => Some((*r, why.as_str())),
            _ => None,
        })
        .collect();
    if bad.is_empty() {
        return Judgement::Pass;
    }
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    if speaking.len() > 1 && speaking.iter().all(|r| r.at.is_some()) {
        let newest_bad = bad.iter().filter_map(|(r, _)| r.at).max();
        let newest_good = speaking
            .iter()
            .filter(|r| r.reading == Reading::Good)
            .filter_map(|r| r.at)
            .max();
        if let (Some(b), Some(g)) = (newest_bad, newest_good) {
            if g > b {
                let good = speaking
                    .iter()
                    .filter(|r| r.reading == Reading::Good && r.at == Some(g))
                    .map(|r| r.source)
                    .collect::<Vec<_>>()
                    .join(", ");
                let older = bad
                    .iter()
                    .map(|(r, why)| {
                        format!(
                            "{} ({why}, {})",
                            r.source,
                            r.at.map(day).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                return Judgement::Overridden(format!(
                    "{what}: the newest report ({good}, {}) is healthy and decides over older problem reports from {older}",
                    day(g)
                ));
            }
        }
        let newest = bad
            .iter()
            .filter(|(r, _)| r.at == newest_bad)
            .map(|(r, why)| {
                format!(
                    "{why} per {} (newest report, {})",
                    r.source,
                    r.at.map(day).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>();
        return Judgement::Fail(newest.join("; "));
    }
    let mut out: Vec<String> = bad
        .iter()
        .map(|(r, why)| format!("{why} per {}", r.source))
        .collect();
    if speaking.iter().any(|r| r.reading == Reading::Good) {
        let good: Vec<&str> = speaking
            .iter()
            .filter(|r| r.reading == Reading::Good)
            .map(|r| r.source)
            .collect();
        out.push(format!(
            "not cancelled by the healthy report of {} (not every report carries a time)",
            good.join(", ")
        ));
    }
    Judgement::Fail(out.join("; "))
}

/// How a device check reads one state from one source record: the reading
/// and the time the source received it.
pub(crate) type ReadState<'a> =
    dyn Fn(&crate::facts::Device) -> (Reading, Option<DateTime<Utc>>) + 'a;

/// One state a device check judges: its name, whether a device must have a
/// report of it (required) or is judged on it only where some source
/// reports it, and how to read one source record.
pub(crate) struct State<'f> {
    /// What the state is, for details ("real-time protection").
    pub what: &'static str,
    /// A device no source reports this state for is unproven. (Optional
    /// states make a device unproven only when a source reported them in
    /// words that cannot be judged, [`Reading::Unknown`].)
    pub required: bool,
    /// One record's reading and its report time.
    pub read: &'f ReadState<'f>,
}

/// The sources whose datasets providing `kind` are partial or failed, with
/// a sentence each.
pub(crate) fn incomplete_sources(facts: &Facts, kind: FactKind) -> BTreeMap<&str, String> {
    let mut out: BTreeMap<&str, String> = BTreeMap::new();
    for p in facts.coverage.get(&kind).into_iter().flatten() {
        if p.status == crate::run::DatasetStatus::Complete {
            continue;
        }
        let line = format!(
            "{}/{} is {}{}",
            p.source,
            p.dataset,
            p.status,
            p.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        out.entry(p.source.as_str())
            .and_modify(|l| {
                l.push_str("; ");
                l.push_str(&line);
            })
            .or_insert(line);
    }
    out
}

/// Judge every reconciled device that `in_scope` keeps on `states`: a device
/// fails when any state fails (see [`decide`]), is unproven when none fails
/// but a required state has no usable evidence (or an optional one has none
/// while a source reported it in words that cannot be judged), and passes
/// otherwise. A
/// source whose `kind` datasets were partial or failed is named in an
/// unproven device's reason when it knows the device. Where a newer healthy
/// report decided over an older problem, the summary says so.
pub(crate) fn judge_devices(
    input: &CheckInput<'_>,
    kind: FactKind,
    in_scope: &dyn Fn(&InventoryItem, &[&crate::facts::Device]) -> bool,
    states: &[State<'_>],
    what: &str,
) -> Outcome {
    let index = input.device_index();
    let incomplete = incomplete_sources(input.facts, kind);
    let mut evaluated = 0;
    let (mut failing, mut unproven, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for (item, records) in index.items() {
        if !in_scope(item, records) {
            continue;
        }
        evaluated += 1;
        let partial: Vec<String> = item
            .sources
            .iter()
            .filter_map(|s| incomplete.get(s.as_str()).cloned())
            .collect();
        let (mut fails, mut unknown) = (Vec::new(), Vec::new());
        for state in states {
            let reports: Vec<Report<'_>> = records
                .iter()
                .map(|d| {
                    let (reading, at) = (state.read)(d);
                    Report {
                        source: d.source.as_str(),
                        at,
                        reading,
                    }
                })
                .collect();
            match decide(state.what, &reports, &partial) {
                Judgement::Pass => {}
                Judgement::Overridden(note) => notes.push(format!("{}: {note}", item.name)),
                Judgement::Fail(why) => fails.push(why),
                // An optional state is unproven, not skipped, when a source
                // reported it in words that cannot be judged.
                Judgement::Unproven(why)
                    if state.required
                        || reports
                            .iter()
                            .any(|r| matches!(r.reading, Reading::Unknown(_))) =>
                {
                    unknown.push(why)
                }
                Judgement::Unproven(_) => {}
            }
        }
        if !fails.is_empty() {
            failing.push(inventory_subject(item, fails.join("; ")));
        } else if !unknown.is_empty() {
            unproven.push(inventory_subject(item, unknown.join("; ")));
        }
    }
    let note = if notes.is_empty() {
        String::new()
    } else {
        format!(
            "{} state(s) decided by a newer healthy report over an older problem report: {}",
            notes.len(),
            notes.join("; ")
        )
    };
    Outcome::judge_all(evaluated, failing, unproven, what).note(&note)
}

/// Whether a device is in scope for anti-malware and EDR checks: workstations,
/// servers and devices of unknown kind are; phones and tablets only when the
/// organisation opts in (`mobile_endpoint_protection`); network gear and
/// other agentless devices are not.
pub(crate) fn endpoint_protection_scope(mobile: bool, records: &[&crate::facts::Device]) -> bool {
    match crate::facts::DeviceClass::of_records(records.iter().copied()) {
        crate::facts::DeviceClass::Mobile => mobile,
        crate::facts::DeviceClass::Other => false,
        _ => true,
    }
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
            super::Threshold::IncidentHighSlaDays,
            super::Threshold::IncidentMediumSlaDays,
            super::Threshold::MobileEndpointProtection,
            super::Threshold::BackupMaxAgeHours,
            super::Threshold::RestoreTestDays,
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
            assert!(
                !code.contains("limits.evidence_ttl_days"),
                "{}: evidence_ttl_days",
                check.id
            );
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
            sign_in_basis: crate::facts::SignInBasis::Success,
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

    /// Run `check` with `limits` over `devices`, reconciled, with every kind
    /// the check needs complete.
    pub fn run_on_devices(
        check: &crate::checks::Check,
        devices: Vec<crate::facts::Device>,
        limits: &crate::checks::Limits,
    ) -> crate::checks::Outcome {
        let facts = complete(
            reconciled(Facts {
                devices,
                ..Facts::default()
            }),
            check.needs,
        );
        run(check, &facts, limits)
    }

    /// Run `check` with `limits` over `patches` pending on two NinjaOne
    /// devices, `ninja:1` (PC-1) and `ninja:2` (PC-2), with devices and
    /// pending patches complete.
    pub fn run_on_patches(
        check: &crate::checks::Check,
        patches: Vec<crate::facts::PendingPatch>,
        limits: &crate::checks::Limits,
    ) -> crate::checks::Outcome {
        let facts = complete(
            Facts {
                devices: vec![device("ninja", "1", "PC-1"), device("ninja", "2", "PC-2")],
                patches,
                ..Facts::default()
            },
            &[FactKind::Devices, FactKind::PendingPatches],
        );
        run(check, &facts, limits)
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
