//! What an organisation decided about judging its evidence: who owns each
//! control, and the limits (days, hours) that checks hold evidence against.
//! The config file sets them; the run folder records them; evaluation reads
//! them. Accepted risk too: the exceptions an organisation approved
//! ([`Exception`]) and the acceptance they give a failing control
//! ([`Acceptance`]); `crate::exceptions` parses and applies them.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The accountable party for a control or check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// The business's own IT person or team.
    Internal,
    /// The managed service provider.
    Msp,
    /// Both, with the responsible party named per check.
    Shared,
    /// Nobody: itself a finding.
    Unassigned,
}

impl Owner {
    /// The contract spelling (`internal`, `msp`, `shared`, `unassigned`).
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Internal => "internal",
            Owner::Msp => "msp",
            Owner::Shared => "shared",
            Owner::Unassigned => "unassigned",
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[thresholds]`: every value optional; unset ones take framework defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Days without sign-in after which an enabled account counts as inactive.
    pub inactive_account_days: Option<u32>,
    /// Days a critical patch may stay pending.
    pub critical_patch_days: Option<u32>,
    /// Days a high/important patch may stay pending.
    pub high_patch_days: Option<u32>,
    /// Days within which an access review must have completed.
    pub access_review_days: Option<u32>,
    /// Maximum age of anti-malware signatures, in days.
    pub edr_signature_days: Option<u32>,
    /// Days without check-in after which a device is stale.
    pub stale_device_days: Option<u32>,
    /// Maximum age of the newest backup, in hours.
    pub backup_max_age_hours: Option<u32>,
    /// Days a high-severity security incident may stay unresolved without
    /// active handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_high_sla_days: Option<u32>,
    /// Days a medium-severity security incident may stay unresolved without
    /// active handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_medium_sla_days: Option<u32>,
    /// Days within which a restore or boot test must have passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test_days: Option<u32>,
    /// Days collected evidence stays usable; older evidence makes a control inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_ttl_days: Option<u32>,
    /// Whether phones and tablets (iOS, iPadOS, Android) are in scope for
    /// the anti-malware and EDR checks; off by default (they stay in scope
    /// for encryption, compliance and staleness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_endpoint_protection: Option<bool>,
}

// Accepted risk: the types `results/controls.json` carries; parsing and
// applying `exceptions.toml` is in `crate::exceptions`.

/// One exception, as validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    /// `"<framework>:<control id>"`.
    pub control: String,
    /// Only this check's failure, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Only this subject's failure (a stable subject id), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Why the gap is accepted.
    pub reason: String,
    /// Who accepted it.
    pub approved_by: String,
    /// The last day it counts (`YYYY-MM-DD`).
    pub expires: NaiveDate,
    /// The line of its `[[exception]]` header in the file (1-based).
    #[serde(skip)]
    pub line: usize,
}

impl Exception {
    /// The framework part of [`Exception::control`].
    pub fn framework(&self) -> &str {
        self.control.split_once(':').map_or("", |(f, _)| f)
    }

    /// The control id part of [`Exception::control`].
    pub fn control_id(&self) -> &str {
        self.control.split_once(':').map_or("", |(_, c)| c)
    }

    /// Whether it still counts at `as_of` (through the whole expiry day, UTC).
    pub fn current_at(&self, as_of: DateTime<Utc>) -> bool {
        as_of.date_naive() <= self.expires
    }

    /// Whether it covers the failure of `check` (for `subject`, or the
    /// check as a whole) under a control.
    pub(crate) fn covers(
        &self,
        framework: &str,
        control_id: &str,
        check: &str,
        subject: Option<&str>,
    ) -> bool {
        self.framework() == framework
            && self.control_id() == control_id
            && self.check.as_deref().is_none_or(|c| c == check)
            && self
                .subject
                .as_deref()
                .is_none_or(|s| subject.is_some_and(|t| t == s))
    }
}

/// The `accepted` object added to a failing control of `controls.json`
/// whose every failure a current exception covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// The approver of the exception that expires first.
    pub approved_by: String,
    /// Its reason.
    pub reason: String,
    /// The earliest expiry among the covering exceptions (`YYYY-MM-DD`): the
    /// failure is accepted until then.
    pub expires: NaiveDate,
    /// Every exception that covers part of the failure.
    pub exceptions: Vec<Exception>,
}
