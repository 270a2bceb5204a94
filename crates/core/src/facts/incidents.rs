//! Security incidents: what an incident queue (Microsoft Defender XDR through
//! Microsoft Graph) says about each incident, independent of its API shape.
//!
//! Severity and status are read against the documented enumerations; a value
//! outside them (or the documented "unknown" members) is kept as `Unknown`
//! with the raw value, never guessed. Classification and determination keep
//! the documented member they matched, or none, and always the raw value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How severe an incident is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSeverity {
    /// Not a documented severity, or the source says it does not know.
    Unknown,
    /// Informational.
    Informational,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

impl IncidentSeverity {
    /// The documented severities, most severe first, with their names.
    pub const KNOWN: [(IncidentSeverity, &'static str); 4] = [
        (IncidentSeverity::High, "high"),
        (IncidentSeverity::Medium, "medium"),
        (IncidentSeverity::Low, "low"),
        (IncidentSeverity::Informational, "informational"),
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentSeverity::Unknown => "unknown",
            IncidentSeverity::Informational => "informational",
            IncidentSeverity::Low => "low",
            IncidentSeverity::Medium => "medium",
            IncidentSeverity::High => "high",
        }
    }
}

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// New, not yet worked on.
    Active,
    /// Being mitigated.
    InProgress,
    /// Waiting for the customer's action (set by the vendor's experts).
    AwaitingAction,
    /// Resolved.
    Resolved,
    /// Merged into another incident, which carries it on.
    Redirected,
    /// Not a documented status (including an evolvable enumeration's
    /// `unknownFutureValue`).
    Unknown,
}

impl IncidentStatus {
    /// Whether the incident is still open.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            IncidentStatus::Active | IncidentStatus::InProgress | IncidentStatus::AwaitingAction
        )
    }
}

/// A value of a documented enumeration: the member it matched (compared
/// without regard to case, as Graph's examples spell members both ways), and
/// the raw value as the source gave it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Documented {
    /// The documented member, in its documented spelling; `None` when the
    /// value is outside the enumeration.
    pub member: Option<String>,
    /// The value as given.
    pub raw: String,
}

impl Documented {
    /// Read `raw` against `members`.
    pub fn read(raw: &str, members: &[&str]) -> Documented {
        Documented {
            member: members
                .iter()
                .find(|m| m.eq_ignore_ascii_case(raw))
                .map(|m| (*m).to_owned()),
            raw: raw.to_owned(),
        }
    }
}

/// One security incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id: `<source>:<incident id>`.
    pub id: String,
    /// Display name (as given: escape before showing it).
    pub name: String,
    /// Source name.
    pub source: String,
    /// Severity.
    pub severity: IncidentSeverity,
    /// Severity as given (`None` when absent).
    pub severity_raw: Option<String>,
    /// Status.
    pub status: IncidentStatus,
    /// Status as given (`None` when absent).
    pub status_raw: Option<String>,
    /// When the incident was created.
    pub created: Option<DateTime<Utc>>,
    /// When it was last updated (any change: status, assignment, comment).
    pub last_update: Option<DateTime<Utc>>,
    /// When it was resolved, where the source says exactly (the latest
    /// resolution time of its alerts, every alert resolved with a time).
    pub resolved: Option<DateTime<Utc>>,
    /// Who it is assigned to, when anyone.
    pub assigned_to: Option<String>,
    /// Whether it is a true threat (`truePositive`, `falsePositive`, ...).
    pub classification: Option<Documented>,
    /// The result of the investigation (`malware`, `phishing`, ...).
    pub determination: Option<Documented>,
    /// The incident it was merged into, for a redirected incident.
    pub redirected_to: Option<String>,
    /// How many alerts the incident holds, when they were collected.
    pub alerts: Option<usize>,
}
