//! Facts: typed, source-independent statements derived from raw evidence
//! (users, devices, pending patches), with the provenance and completeness of
//! every kind of fact. Normalising is pure: it reads the run folder and nothing else.

mod m365;
mod ninjaone;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, ResultExt};
use crate::evidence::{read_custody, DatasetStatus, RunManifest, SourceReport};

/// A kind of fact a check can depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// Directory users: enabled, member or guest.
    Users,
    /// Last sign-in per user.
    SignInActivity,
    /// MFA registration per user.
    MfaRegistration,
    /// Device inventory.
    Devices,
    /// Pending OS patches per device.
    PendingPatches,
}

impl FactKind {
    /// Human name for reasons.
    pub fn describe(self) -> &'static str {
        match self {
            FactKind::Users => "directory users",
            FactKind::SignInActivity => "sign-in activity",
            FactKind::MfaRegistration => "MFA registration",
            FactKind::Devices => "device inventory",
            FactKind::PendingPatches => "pending patches",
        }
    }
}

/// Where a kind of fact came from and how complete that source was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Source name.
    pub source: String,
    /// Dataset name.
    pub dataset: String,
    /// Completeness of the dataset (downgraded when records were unreadable).
    pub status: DatasetStatus,
    /// Why it is not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Evidence files (run-relative paths) the facts were read from.
    pub evidence: Vec<String>,
}

/// Member or guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    /// A member of the organisation.
    Member,
    /// An external (B2B) guest.
    Guest,
}

/// MFA registration state of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaState {
    /// Has registered a method usable for MFA.
    pub registered: bool,
    /// Registered and allowed by policy to use it.
    pub capable: bool,
    /// Methods registered.
    pub methods: Vec<String>,
}

/// A directory user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id: `<source>:<object id>`.
    pub id: String,
    /// Sign-in name.
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// Account can sign in.
    pub enabled: bool,
    /// Member or guest.
    pub user_type: UserType,
    /// Last successful or interactive sign-in, if any is known.
    pub last_sign_in: Option<DateTime<Utc>>,
    /// Creation time.
    pub created: Option<DateTime<Utc>>,
    /// MFA registration; `None` when no registration record exists.
    pub mfa: Option<MfaState>,
    /// Holds an admin role per the registration report.
    pub is_admin: bool,
}

/// A device as one source sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Stable id: `<source>:<device id>`.
    pub id: String,
    /// Host or display name.
    pub name: String,
    /// Operating system, as reported.
    pub os: Option<String>,
    /// Last contact with the source.
    pub last_seen: Option<DateTime<Utc>>,
    /// Source name.
    pub source: String,
}

/// Severity of a patch, normalised across sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Unknown or unrated.
    Unknown,
    /// Optional.
    Optional,
    /// Moderate.
    Moderate,
    /// Important / high.
    Important,
    /// Critical.
    Critical,
}

/// An OS patch a device still lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPatch {
    /// Device stable id.
    pub device_id: String,
    /// Patch title.
    pub name: String,
    /// KB number, when given.
    pub kb: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// Source status (e.g. MANUAL, APPROVED, FAILED).
    pub status: Option<String>,
    /// When the source first reported it pending.
    pub detected: Option<DateTime<Utc>>,
}

/// Everything the checks read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Users.
    pub users: Vec<User>,
    /// Devices.
    pub devices: Vec<Device>,
    /// Pending patches.
    pub patches: Vec<PendingPatch>,
    /// Provenance per kind of fact.
    pub coverage: BTreeMap<FactKind, Vec<Provenance>>,
}

/// Whether a kind of fact can be relied on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Every source that provides it was complete.
    Complete,
    /// Some provider was partial or failed.
    Incomplete(String),
    /// No configured source provides it.
    Absent,
}

impl Facts {
    /// Whether `kind` is fully available.
    pub fn availability(&self, kind: FactKind) -> Availability {
        match self.coverage.get(&kind) {
            None => Availability::Absent,
            Some(providers) if providers.is_empty() => Availability::Absent,
            Some(providers) => {
                let problems: Vec<String> = providers
                    .iter()
                    .filter(|p| p.status != DatasetStatus::Complete)
                    .map(|p| {
                        format!(
                            "{}/{} is {}{}",
                            p.source,
                            p.dataset,
                            p.status,
                            p.reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                if problems.is_empty() {
                    Availability::Complete
                } else {
                    Availability::Incomplete(problems.join("; "))
                }
            }
        }
    }

    /// Evidence files behind `kind`.
    pub fn evidence(&self, kind: FactKind) -> impl Iterator<Item = &str> {
        self.coverage
            .get(&kind)
            .into_iter()
            .flatten()
            .flat_map(|p| p.evidence.iter().map(String::as_str))
    }

    fn provide(&mut self, kind: FactKind, provenance: Provenance) {
        self.coverage.entry(kind).or_default().push(provenance);
    }
}

/// Pages per dataset name: (run-relative path, parsed JSON) in page order.
pub type Pages = BTreeMap<String, Vec<(String, Value)>>;

/// One source's evidence, ready for its normaliser.
pub struct SourceEvidence<'a> {
    /// Source name.
    pub name: &'a str,
    /// Its collection report.
    pub report: &'a SourceReport,
    /// Pages per dataset, in page order.
    pub pages: Pages,
}

impl SourceEvidence<'_> {
    /// Provenance for `dataset`, with its pages as evidence; a dataset the source
    /// never reported counts as failed.
    fn provenance(&self, dataset: &str, problems: &[String]) -> Provenance {
        let (mut status, mut reason) = match self.report.datasets.get(dataset) {
            Some(d) => (d.status, d.reason.clone()),
            None => (
                DatasetStatus::Failed,
                Some(
                    self.report
                        .reason
                        .clone()
                        .unwrap_or_else(|| "not collected".into()),
                ),
            ),
        };
        if !problems.is_empty() {
            if status == DatasetStatus::Complete {
                status = DatasetStatus::Partial;
            }
            let detail = format!(
                "{} unreadable record(s), first: {}",
                problems.len(),
                problems[0]
            );
            reason = Some(match reason {
                Some(r) => format!("{r}; {detail}"),
                None => detail,
            });
        }
        Provenance {
            source: self.name.to_owned(),
            dataset: dataset.to_owned(),
            status,
            reason,
            evidence: self
                .pages
                .get(dataset)
                .into_iter()
                .flatten()
                .map(|(p, _)| p.clone())
                .collect(),
        }
    }

    /// The records of every page of `dataset`, located by `records` (which picks
    /// the array out of a page), with the page path for messages.
    fn records<'p>(
        &'p self,
        dataset: &str,
        records: fn(&Value) -> Option<&Vec<Value>>,
        problems: &mut Vec<String>,
    ) -> Vec<(&'p str, &'p Value)> {
        let mut out = Vec::new();
        for (path, page) in self.pages.get(dataset).into_iter().flatten() {
            match records(page) {
                Some(items) => out.extend(items.iter().map(|r| (path.as_str(), r))),
                None => problems.push(format!("{path}: no record array")),
            }
        }
        out
    }
}

/// A normaliser: raw pages of one collector type to facts.
pub struct NormaliserKind {
    /// Collector type it reads.
    pub source_type: &'static str,
    /// Add this source's facts.
    pub normalise: fn(&SourceEvidence<'_>, &mut Facts),
}

/// Every normaliser, one per collector type.
pub const NORMALISERS: &[NormaliserKind] = &[m365::NORMALISER, ninjaone::NORMALISER];

/// Derive facts from a run folder: every evidence file is checked against its
/// custody hash before it is read.
///
/// # Errors
/// When `run.json` or `custody.jsonl` is unreadable, or an evidence file is
/// missing, altered or not JSON (the message names the file).
pub fn normalise(run_dir: &Path) -> Result<Facts> {
    let manifest = RunManifest::read(run_dir)?;
    let custody = read_custody(&run_dir.join("custody.jsonl"))?;
    let mut by_source: BTreeMap<&str, Pages> = BTreeMap::new();
    for entry in &custody {
        let path = run_dir.join(&entry.path);
        let bytes =
            std::fs::read(&path).context(|| format!("cannot read evidence {}", entry.path))?;
        if hex::encode(Sha256::digest(&bytes)) != entry.sha256 {
            return Err(Error::invalid(format!(
                "evidence {} does not match its custody hash",
                entry.path
            )));
        }
        let json: Value = serde_json::from_slice(&bytes)
            .context(|| format!("evidence {} is not JSON", entry.path))?;
        by_source
            .entry(entry.source.as_str())
            .or_default()
            .entry(entry.dataset.clone())
            .or_default()
            .push((entry.path.clone(), json));
    }
    let mut facts = Facts::default();
    for (name, report) in &manifest.sources {
        let Some(kind) = NORMALISERS
            .iter()
            .find(|n| n.source_type == report.source_type)
        else {
            return Err(Error::invalid(format!(
                "run.json: source {name} has type {} which this version cannot read",
                report.source_type
            )));
        };
        let mut pages = by_source.remove(name.as_str()).unwrap_or_default();
        for list in pages.values_mut() {
            list.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let evidence = SourceEvidence {
            name,
            report,
            pages,
        };
        (kind.normalise)(&evidence, &mut facts);
    }
    if let Some(source) = by_source.keys().next() {
        return Err(Error::invalid(format!(
            "custody.jsonl lists evidence of source {source}, which run.json does not name"
        )));
    }
    facts.users.sort_by(|a, b| a.id.cmp(&b.id));
    facts.devices.sort_by(|a, b| a.id.cmp(&b.id));
    facts
        .patches
        .sort_by(|a, b| (&a.device_id, &a.name).cmp(&(&b.device_id, &b.name)));
    Ok(facts)
}

/// Parse an RFC 3339 time.
pub(crate) fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = v?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parse epoch seconds (integer or fractional).
pub(crate) fn parse_epoch(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let secs = v?.as_f64()?;
    if !secs.is_finite() {
        return None;
    }
    Utc.timestamp_opt(secs.trunc() as i64, 0).single()
}

pub(crate) fn str_field<'v>(record: &'v Value, key: &str) -> Option<&'v str> {
    record.get(key).and_then(Value::as_str)
}
