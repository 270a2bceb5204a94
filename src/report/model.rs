//! The report data model: what every human-readable report shows, built only
//! from a run folder's `results/controls.json`, `run.json` and `custody.jsonl`.
//! Nothing here re-judges a control; it counts, groups and cross-references.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::checks::Verdict;
use crate::config::Owner;
use crate::error::Result;
use crate::evaluate::{ControlResult, EvidenceSet, Status};
use crate::evidence::{read_custody, CustodyEntry, RunManifest, SourceStatus};

/// The three inputs of every report, exactly as stored in a run folder.
#[derive(Clone, Debug)]
pub struct RunData {
    /// `run.json`.
    pub manifest: RunManifest,
    /// `results/controls.json`.
    pub results: Vec<ControlResult>,
    /// `custody.jsonl`, one entry per evidence file.
    pub custody: Vec<CustodyEntry>,
    /// `results/drift.json`, when the run has one.
    pub drift: Option<crate::history::Drift>,
}

impl RunData {
    /// Read the inputs of a run folder.
    ///
    /// # Errors
    /// When `run.json`, `results/controls.json` or `custody.jsonl` is missing
    /// or malformed (the message names the file).
    pub fn load(run_dir: &Path) -> Result<RunData> {
        let manifest = RunManifest::read(run_dir)?;
        let results = super::json::read(run_dir)?;
        let custody = read_custody(&run_dir.join("custody.jsonl"))?;
        let drift = crate::history::read_drift(run_dir)?;
        Ok(RunData {
            manifest,
            results,
            custody,
            drift,
        })
    }
}

pub use crate::evidence::SignerInfo;

/// Number of controls per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// `pass`.
    pub pass: usize,
    /// `fail`.
    pub fail: usize,
    /// `inconclusive`.
    pub inconclusive: usize,
    /// `manual_pending`.
    pub manual_pending: usize,
    /// `manual_attested`.
    pub manual_attested: usize,
    /// `not_applicable`.
    pub not_applicable: usize,
    /// All of them.
    pub total: usize,
}

impl Counts {
    fn add(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Inconclusive => self.inconclusive += 1,
            Status::ManualPending => self.manual_pending += 1,
            Status::ManualAttested => self.manual_attested += 1,
            Status::NotApplicable => self.not_applicable += 1,
        }
    }

    /// The count of one status.
    pub fn get(&self, status: Status) -> usize {
        match status {
            Status::Pass => self.pass,
            Status::Fail => self.fail,
            Status::Inconclusive => self.inconclusive,
            Status::ManualPending => self.manual_pending,
            Status::ManualAttested => self.manual_attested,
            Status::NotApplicable => self.not_applicable,
        }
    }
}

/// One summary row (a framework or an owner).
#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    /// Machine id (`hipaa`, `msp`).
    pub id: String,
    /// Display label (`HIPAA`, `MSP`).
    pub label: String,
    /// Counts per status.
    pub counts: Counts,
}

/// One check under a control, as shown in a control table.
#[derive(Clone, Debug, Serialize)]
pub struct CheckRow {
    /// Check id.
    pub check: String,
    /// Check title.
    pub title: String,
    /// `pass` | `fail` | `inconclusive`.
    pub outcome: &'static str,
    /// Responsible party (label).
    pub responsible: String,
    /// Subjects judged.
    pub evaluated: usize,
    /// Subjects failing.
    pub failing_count: usize,
    /// Subjects no usable evidence covers.
    pub unproven_count: usize,
    /// One sentence.
    pub summary: String,
}

/// A link from a result to one evidence file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceLink {
    /// Position in the evidence index (1-based), 0 when the file is not in custody.
    pub index: usize,
    /// Run-relative path.
    pub path: String,
    /// SHA-256 from the custody log (empty when not logged).
    pub sha256: String,
}

/// A link from a result to the evidence set of one dataset: its files are
/// the evidence index's rows of that source and dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceSetLink {
    /// Source name.
    pub source: String,
    /// Dataset.
    pub dataset: String,
    /// Run-relative folder holding its files.
    pub folder: String,
    /// Number of files.
    pub files: usize,
    /// SHA-256 of the sorted list of its files' paths.
    pub list_sha256: String,
    /// Position in the evidence index (1-based) of its first file, 0 when
    /// the custody log has none of it.
    pub first: usize,
    /// Whether the custody log lists exactly these files (same count and
    /// list digest).
    pub in_custody: bool,
}

impl EvidenceSetLink {
    /// A link not yet matched with the custody log.
    pub fn unresolved(set: &EvidenceSet) -> Self {
        EvidenceSetLink {
            source: set.source.clone(),
            dataset: set.dataset.clone(),
            folder: set.folder.clone(),
            files: set.files,
            list_sha256: set.list_sha256.clone(),
            first: 0,
            in_custody: false,
        }
    }
}

/// Where each dataset's files are in the custody log: position of the first
/// (1-based), and the digest of the sorted list of their paths.
struct DatasetIndex<'a> {
    sets: HashMap<(&'a str, &'a str), (usize, usize, String)>,
}

impl<'a> DatasetIndex<'a> {
    fn new(custody: &'a [CustodyEntry]) -> Self {
        let mut files: BTreeMap<(&str, &str), (usize, Vec<&str>)> = BTreeMap::new();
        for (i, e) in custody.iter().enumerate() {
            files
                .entry((e.source.as_str(), e.dataset.as_str()))
                .or_insert((i + 1, Vec::new()))
                .1
                .push(&e.path);
        }
        let sets = files
            .into_iter()
            .map(|(k, (first, mut paths))| {
                paths.sort_unstable();
                paths.dedup();
                let n = paths.len();
                (k, (first, n, EvidenceSet::list_digest(paths)))
            })
            .collect();
        DatasetIndex { sets }
    }

    fn link(&self, set: &EvidenceSet) -> EvidenceSetLink {
        let mut link = EvidenceSetLink::unresolved(set);
        if let Some((first, n, digest)) =
            self.sets.get(&(set.source.as_str(), set.dataset.as_str()))
        {
            link.first = *first;
            link.in_custody = *n == set.files && *digest == set.list_sha256;
        }
        link
    }
}

/// One control in a framework table.
#[derive(Clone, Debug, Serialize)]
pub struct ControlRow {
    /// Framework id.
    pub framework: String,
    /// Control id.
    pub control_id: String,
    /// HTML anchor.
    pub anchor: String,
    /// Title.
    pub title: String,
    /// Status (contract spelling).
    pub status: &'static str,
    /// Status for people (`Fail (accepted until DATE)` for an accepted failure).
    pub status_label: String,
    /// Owner (contract spelling).
    pub owner: &'static str,
    /// Owner for people.
    pub owner_label: &'static str,
    /// Checks.
    pub checks: Vec<CheckRow>,
    /// Documents a person must supply.
    pub manual_evidence: Vec<String>,
    /// Why it has this status.
    pub reason: String,
    /// Evidence read by its checks, one set per dataset.
    pub evidence: Vec<EvidenceSetLink>,
}

/// The control table of one framework.
#[derive(Clone, Debug, Serialize)]
pub struct FrameworkTable {
    /// Framework id.
    pub id: String,
    /// Display label.
    pub label: String,
    /// Counts per status.
    pub counts: Counts,
    /// Controls in catalog order.
    pub controls: Vec<ControlRow>,
}

pub use super::gaps::{Gap, GapControl};

/// A reference to a control from elsewhere in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ControlRef {
    /// `HIPAA 164.312(d)`.
    pub label: String,
    /// HTML anchor of the control row.
    pub anchor: String,
}

/// A control that needs attention without a failing check (inconclusive,
/// documents pending, no owner).
#[derive(Clone, Debug, Serialize)]
pub struct Attention {
    /// `HIPAA 164.316(b)(1)`.
    pub control: ControlRef,
    /// Title.
    pub title: String,
    /// Status (contract spelling).
    pub status: &'static str,
    /// Status for people (`Fail (accepted until DATE)` for an accepted failure).
    pub status_label: String,
    /// Why.
    pub reason: String,
}

/// Everything one party has to do.
#[derive(Clone, Debug, Serialize)]
pub struct OwnerGaps {
    /// Owner (contract spelling).
    pub owner: &'static str,
    /// Owner for people.
    pub label: &'static str,
    /// What it must fix: each failing subject once ([`super::gaps`]).
    pub gaps: Vec<Gap>,
    /// Checks with unproven subjects ("cannot see these"): no usable
    /// evidence shows their state; neither failures nor passes.
    pub unseen: Vec<Gap>,
    /// Other controls needing attention.
    pub attention: Vec<Attention>,
    /// Failing subjects across its gaps.
    pub subject_total: usize,
    /// Number of gaps.
    pub gap_count: usize,
    /// Number of other controls needing attention.
    pub attention_count: usize,
    /// Unproven subjects across its `unseen` checks.
    pub unseen_subject_total: usize,
    /// Number of checks with unproven subjects.
    pub unseen_count: usize,
}

/// One dataset of a source.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetRow {
    /// Dataset name.
    pub name: String,
    /// `complete` | `partial` | `failed`.
    pub status: String,
    /// Pages stored.
    pub pages: usize,
    /// Records stored.
    pub records: usize,
    /// Why it is not complete.
    pub reason: String,
}

/// One source's completeness.
#[derive(Clone, Debug, Serialize)]
pub struct SourceRow {
    /// Source name from the config.
    pub name: String,
    /// Collector type.
    pub source_type: String,
    /// `complete` | `partial` | `failed`.
    pub status: &'static str,
    /// Why it is not complete.
    pub reason: String,
    /// Datasets.
    pub datasets: Vec<DatasetRow>,
}

/// One evidence file in the index.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceRow {
    /// 1-based position.
    pub index: usize,
    /// Run-relative path.
    pub path: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Source name.
    pub source: String,
    /// Dataset.
    pub dataset: String,
    /// The request that fetched it (credentials removed at collection).
    pub request: String,
    /// HTTP status, when fetched over HTTP.
    pub http_status: String,
    /// When it was received.
    pub collected_at: String,
    /// Checks that read it.
    pub used_by: Vec<String>,
}

/// The whole report model.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Organisation name.
    pub organisation: String,
    /// Run id.
    pub run_id: String,
    /// Tool and version that collected.
    pub tool: String,
    /// Host that collected.
    pub host: String,
    /// Collection start.
    pub started_at: String,
    /// Collection end.
    pub finished_at: String,
    /// The instant judged against.
    pub as_of: String,
    /// Ownership template.
    pub ownership: String,
    /// Framework labels in scope.
    pub frameworks: Vec<String>,
    /// Package signer, when known.
    pub signer: Option<SignerInfo>,
    /// Counts across all controls.
    pub totals: Counts,
    /// Per framework.
    pub by_framework: Vec<SummaryRow>,
    /// Per owner.
    pub by_owner: Vec<SummaryRow>,
    /// Control tables.
    pub tables: Vec<FrameworkTable>,
    /// Gaps by responsible party.
    pub owners: Vec<OwnerGaps>,
    /// Source completeness.
    pub sources: Vec<SourceRow>,
    /// Evidence files.
    pub evidence: Vec<EvidenceRow>,
    /// Changes since the previous run and accepted risks.
    pub history: super::drift::History,
}

/// A framework id for people.
pub fn framework_label(id: &str) -> String {
    match id {
        "hipaa" => "HIPAA".to_owned(),
        "hipaa-2025-proposed" => "HIPAA (2025 proposed)".to_owned(),
        "pci-dss" => "PCI DSS".to_owned(),
        "soc2" => "SOC 2".to_owned(),
        other => other.to_uppercase(),
    }
}

/// An owner for people.
pub fn owner_label(owner: Owner) -> &'static str {
    match owner {
        Owner::Internal => "Internal IT",
        Owner::Msp => "MSP",
        Owner::Shared => "Shared",
        Owner::Unassigned => "Unassigned",
    }
}

/// A status for people.
pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::Pass => "Pass",
        Status::Fail => "Fail",
        Status::Inconclusive => "Inconclusive",
        Status::ManualPending => "Documents pending",
        Status::ManualAttested => "Attested",
        Status::NotApplicable => "Not applicable",
    }
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    }
}

fn source_status_str(s: SourceStatus) -> &'static str {
    match s {
        SourceStatus::Complete => "complete",
        SourceStatus::Partial => "partial",
        SourceStatus::Failed => "failed",
    }
}

/// An HTML id for a control: ASCII letters, digits and `-` only.
pub fn anchor(framework: &str, control: &str) -> String {
    let mut out = String::from("c-");
    for c in framework.chars().chain(['-']).chain(control.chars()) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

const OWNERS: [Owner; 4] = [
    Owner::Internal,
    Owner::Msp,
    Owner::Shared,
    Owner::Unassigned,
];

impl Report {
    /// Build the model from a run's inputs. The package signer comes from
    /// `run.json`, so a report rendered again from the run folder names the
    /// same signer as the one inside the package.
    pub fn build(data: &RunData) -> Report {
        let m = &data.manifest;
        let datasets = DatasetIndex::new(&data.custody);
        let link = |set: &EvidenceSet| datasets.link(set);

        // Frameworks in run order, then any the results name beyond it.
        let mut framework_ids: Vec<String> = m.frameworks.clone();
        for r in &data.results {
            if !framework_ids.contains(&r.framework) {
                framework_ids.push(r.framework.clone());
            }
        }

        let mut totals = Counts::default();
        let mut per_owner: BTreeMap<Owner, Counts> = BTreeMap::new();
        let mut tables: Vec<FrameworkTable> = framework_ids
            .iter()
            .map(|id| FrameworkTable {
                id: id.clone(),
                label: framework_label(id),
                counts: Counts::default(),
                controls: Vec::new(),
            })
            .collect();
        let mut used_by: HashMap<(&str, &str), BTreeSet<&str>> = HashMap::new();
        let mut attention: BTreeMap<Owner, Vec<Attention>> = BTreeMap::new();

        for r in &data.results {
            totals.add(r.status);
            per_owner.entry(r.owner).or_default().add(r.status);
            let anchor = anchor(&r.framework, &r.control_id);
            let cref = ControlRef {
                label: format!("{} {}", framework_label(&r.framework), r.control_id),
                anchor: anchor.clone(),
            };
            let mut files: BTreeSet<&EvidenceSet> = BTreeSet::new();
            let mut has_failing_check = false;
            for c in &r.checks {
                for f in c.evidence.iter() {
                    files.insert(f);
                    used_by
                        .entry((f.source.as_str(), f.dataset.as_str()))
                        .or_default()
                        .insert(&c.check);
                }
                if c.outcome == Verdict::Fail && matches!(r.status, Status::Fail) {
                    has_failing_check = true;
                }
            }
            let needs_attention = matches!(
                r.status,
                Status::Fail | Status::Inconclusive | Status::ManualPending
            ) || r.owner == Owner::Unassigned;
            if needs_attention && !has_failing_check {
                attention.entry(r.owner).or_default().push(Attention {
                    control: cref.clone(),
                    title: r.title.clone(),
                    status: r.status.as_str(),
                    status_label: super::drift::status_label(r),
                    reason: r.reason.clone(),
                });
            }
            let row = ControlRow {
                framework: r.framework.clone(),
                control_id: r.control_id.clone(),
                anchor,
                title: r.title.clone(),
                status: r.status.as_str(),
                status_label: super::drift::status_label(r),
                owner: r.owner.as_str(),
                owner_label: owner_label(r.owner),
                checks: r
                    .checks
                    .iter()
                    .map(|c| CheckRow {
                        check: c.check.clone(),
                        title: c.title.clone(),
                        outcome: verdict_str(c.outcome),
                        responsible: owner_label(c.responsible).to_owned(),
                        evaluated: c.evaluated,
                        failing_count: c.failing_count,
                        unproven_count: c.unproven_count,
                        summary: c.summary.clone(),
                    })
                    .collect(),
                manual_evidence: r.manual_evidence.clone(),
                reason: r.reason.clone(),
                evidence: files.into_iter().map(link).collect(),
            };
            if let Some(t) = tables.iter_mut().find(|t| t.id == r.framework) {
                t.counts.add(r.status);
                t.controls.push(row);
            }
        }

        let found = super::gaps::gaps(&data.results, None);
        let mut gaps_of: BTreeMap<Owner, Vec<Gap>> = BTreeMap::new();
        let mut unseen_of: BTreeMap<Owner, Vec<Gap>> = BTreeMap::new();
        for (list, into) in [(found.gaps, &mut gaps_of), (found.unseen, &mut unseen_of)] {
            for mut g in list {
                for e in &mut g.evidence {
                    if let Some((first, n, digest)) =
                        datasets.sets.get(&(e.source.as_str(), e.dataset.as_str()))
                    {
                        e.first = *first;
                        e.in_custody = *n == e.files && *digest == e.list_sha256;
                    }
                }
                into.entry(g.responsible).or_default().push(g);
            }
        }
        let mut owners = Vec::new();
        for owner in OWNERS {
            let gaps = gaps_of.remove(&owner).unwrap_or_default();
            let unseen = unseen_of.remove(&owner).unwrap_or_default();
            let attention = attention.remove(&owner).unwrap_or_default();
            if gaps.is_empty() && attention.is_empty() && unseen.is_empty() {
                continue;
            }
            owners.push(OwnerGaps {
                owner: owner.as_str(),
                label: owner_label(owner),
                subject_total: gaps.iter().map(|g| g.failing.len()).sum(),
                gap_count: gaps.len(),
                attention_count: attention.len(),
                unseen_subject_total: unseen.iter().map(|g| g.unproven.len()).sum(),
                unseen_count: unseen.len(),
                gaps,
                unseen,
                attention,
            });
        }

        let sources = m
            .sources
            .iter()
            .map(|(name, s)| SourceRow {
                name: name.clone(),
                source_type: s.source_type.clone(),
                status: source_status_str(s.status),
                reason: s.reason.clone().unwrap_or_default(),
                datasets: s
                    .datasets
                    .iter()
                    .map(|(n, d)| DatasetRow {
                        name: n.clone(),
                        status: d.status.to_string(),
                        pages: d.pages,
                        records: d.records,
                        reason: d.reason.clone().unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect();

        let evidence = data
            .custody
            .iter()
            .enumerate()
            .map(|(i, e)| EvidenceRow {
                index: i + 1,
                path: e.path.clone(),
                sha256: e.sha256.clone(),
                bytes: e.bytes,
                source: e.source.clone(),
                dataset: e.dataset.clone(),
                request: e.request.clone(),
                http_status: e.http_status.map(|s| s.to_string()).unwrap_or_default(),
                collected_at: e.collected_at.clone(),
                used_by: used_by
                    .get(&(e.source.as_str(), e.dataset.as_str()))
                    .map(|s| s.iter().map(|c| (*c).to_owned()).collect())
                    .unwrap_or_default(),
            })
            .collect();

        Report {
            organisation: m.organisation.clone(),
            run_id: m.run_id.clone(),
            tool: m.tool.clone(),
            host: m.host.clone(),
            started_at: m.started_at.clone(),
            finished_at: m.finished_at.clone(),
            as_of: m.as_of.clone(),
            ownership: m.ownership.clone(),
            frameworks: framework_ids.iter().map(|f| framework_label(f)).collect(),
            signer: m.signer.clone(),
            totals,
            by_framework: tables
                .iter()
                .map(|t| SummaryRow {
                    id: t.id.clone(),
                    label: t.label.clone(),
                    counts: t.counts,
                })
                .collect(),
            by_owner: OWNERS
                .iter()
                .filter_map(|o| {
                    per_owner.get(o).map(|c| SummaryRow {
                        id: o.as_str().to_owned(),
                        label: owner_label(*o).to_owned(),
                        counts: *c,
                    })
                })
                .collect(),
            tables,
            owners,
            sources,
            evidence,
            history: super::drift::History::build(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{anchor, Report, RunData};
    use crate::catalog::ControlKind;
    use crate::checks::{Subject, Verdict};
    use crate::config::{Owner, Thresholds};
    use crate::evaluate::{CheckResult, ControlResult, Status};
    use crate::evidence::{CustodyEntry, RunManifest};

    fn subject(n: u32) -> Subject {
        Subject {
            id: format!("m365:{n}"),
            name: format!("User {n}"),
            detail: "no MFA method registered".into(),
        }
    }

    fn check(responsible: Owner, failing: Vec<Subject>) -> CheckResult {
        CheckResult {
            check: "mfa_registered".into(),
            title: "MFA registered".into(),
            outcome: if failing.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            responsible,
            evaluated: 10,
            failing_count: failing.len(),
            failing: failing.into(),
            unproven_count: 0,
            unproven: Default::default(),
            evidence: vec![crate::evaluate::EvidenceSet::new(
                "m365",
                "users",
                ["evidence/m365/users/page-00001.json"],
            )]
            .into(),
            result: "mfa_registered".into(),
            summary: "summary".into(),
            remediation: "register MFA".into(),
            figures: vec![],
        }
    }

    fn control(
        framework: &str,
        id: &str,
        status: Status,
        owner: Owner,
        checks: Vec<CheckResult>,
    ) -> ControlResult {
        ControlResult {
            framework: framework.into(),
            control_id: id.into(),
            title: format!("{id} title"),
            status,
            owner,
            kind: ControlKind::Automated,
            checks,
            manual_evidence: vec![],
            reason: "reason".into(),
            accepted: None,
        }
    }

    fn data(results: Vec<ControlResult>) -> RunData {
        RunData {
            manifest: RunManifest {
                schema_version: RunManifest::SCHEMA_VERSION,
                run_id: "20260101T000000Z-abcd".into(),
                organisation: "Org".into(),
                frameworks: vec!["hipaa".into(), "soc2".into()],
                ownership: "co-managed-default".into(),
                tool: "auditpack test".into(),
                host: "host".into(),
                started_at: "2026-01-01T00:00:00Z".into(),
                finished_at: "2026-01-01T00:01:00Z".into(),
                as_of: "2026-01-01T00:01:00Z".into(),
                thresholds: Thresholds::default(),
                ownership_overrides: BTreeMap::new(),
                service_provider: false,
                sources: BTreeMap::new(),
                critical_devices: Vec::new(),
                signer: None,
            },
            results,
            custody: vec![CustodyEntry {
                path: "evidence/m365/users/page-00001.json".into(),
                sha256: "ab".repeat(32),
                bytes: 10,
                source: "m365".into(),
                source_type: "m365".into(),
                dataset: "users".into(),
                request: "GET /users".into(),
                http_status: Some(200),
                collected_at: "2026-01-01T00:00:30Z".into(),
                tool: "auditpack test".into(),
                stat: None,
            }],
            drift: None,
        }
    }

    #[test]
    fn gaps_group_by_responsible_party_and_share_identical_subject_lists() {
        let failing = vec![subject(1), subject(2)];
        let report = Report::build(&data(vec![
            control(
                "hipaa",
                "164.312(d)",
                Status::Fail,
                Owner::Internal,
                vec![check(Owner::Internal, failing.clone())],
            ),
            control(
                "soc2",
                "CC6.1",
                Status::Fail,
                Owner::Shared,
                vec![check(Owner::Internal, failing.clone())],
            ),
            control(
                "soc2",
                "CC6.6",
                Status::Fail,
                Owner::Msp,
                vec![check(Owner::Msp, vec![subject(3)])],
            ),
            control(
                "hipaa",
                "164.308(b)(1)",
                Status::ManualPending,
                Owner::Msp,
                vec![],
            ),
            control("soc2", "CC1.1", Status::Pass, Owner::Unassigned, vec![]),
        ]));
        assert_eq!(report.totals.total, 5);
        assert_eq!(report.totals.fail, 3);
        assert_eq!(report.by_framework[0].counts.manual_pending, 1);
        let owners: Vec<&str> = report.owners.iter().map(|o| o.owner).collect();
        assert_eq!(owners, ["internal", "msp", "unassigned"]);
        let internal = &report.owners[0];
        assert_eq!(internal.gaps.len(), 1, "one gap for both controls");
        assert_eq!(internal.gaps[0].controls.len(), 2);
        assert_eq!(internal.gaps[0].failing, failing);
        assert_eq!(internal.gaps[0].evidence[0].first, 1);
        assert!(internal.gaps[0].evidence[0].in_custody);
        assert_eq!(internal.subject_total, 2);
        let msp = &report.owners[1];
        assert_eq!(msp.gaps[0].failing, vec![subject(3)]);
        assert_eq!(msp.attention[0].control.label, "HIPAA 164.308(b)(1)");
        assert_eq!(report.owners[2].attention[0].control.label, "SOC 2 CC1.1");
        let row = &report.tables[0].controls[0];
        assert_eq!(row.evidence[0].first, 1);
        assert_eq!(row.evidence[0].folder, "evidence/m365/users");
        assert!(row.evidence[0].in_custody);
        assert_eq!(report.evidence[0].used_by, ["mfa_registered"]);
    }

    #[test]
    fn anchors_are_plain() {
        assert_eq!(
            anchor("hipaa", "164.312(a)(2)(iv)"),
            "c-hipaa-164-312-a-2-iv"
        );
        assert_eq!(anchor("pci-dss", "<x>\""), "c-pci-dss-x");
    }
}
