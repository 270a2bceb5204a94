//! Scoping a shared RMM account to one organisation: the organisation's id
//! (NinjaOne organization, Datto RMM site, a spec's client) is checked with
//! the API before anything is collected, and the answer is stored as the
//! source's evidence; an id the API does not know, or one that holds no
//! devices, fails the source with a reason naming the id and the config key.

use serde_json::Value;

use crate::collect::auth::{Auth, AuthError};
use crate::collect::dataset::{fetch_one_with, PageCounter};
use crate::collect::http::{Method, ThrottleBlock};
use crate::collect::ratelimit::RateLimiter;
use crate::collect::CollectContext;
use crate::evidence::{DatasetReport, DatasetStatus, SourceReport, SourceStatus};

/// One organisation id to check.
pub(crate) struct ScopeCheck<'a> {
    /// Source name (evidence folder).
    pub source: &'a str,
    /// Collector type.
    pub source_type: &'a str,
    /// Dataset the answer is stored in.
    pub dataset: &'a str,
    /// The object's URL.
    pub url: String,
    /// What the id names, for messages, e.g. `NinjaOne organization`.
    pub what: &'a str,
    /// The id as configured.
    pub id: &'a str,
    /// The config key holding the id.
    pub key: &'a str,
}

/// The checked organisation: its record as the API returned it.
pub(crate) struct Scoped {
    /// The record (its `name` goes into messages).
    pub record: Value,
}

impl Scoped {
    /// The record's `name`, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.record.get("name").and_then(Value::as_str)
    }
}

/// Fetch the organisation's own object and store it as evidence. With
/// `block`, a 403 after throttling is the server's block (see
/// [`ThrottleBlock`]), waited out like on every other request of the source.
///
/// # Errors
/// `Ok(Err(report))`: the source's failed report (unknown id, or the check
/// could not be made); `Err`: credentials failed.
pub(crate) async fn verify(
    ctx: &CollectContext,
    check: &ScopeCheck<'_>,
    auth: &dyn Auth,
    limiters: &[&RateLimiter],
    block: Option<&ThrottleBlock>,
) -> Result<Result<Scoped, SourceReport>, AuthError> {
    let counter = PageCounter::default();
    let answer = fetch_one_with(
        &ctx.http,
        &ctx.evidence,
        (check.source, check.source_type, check.dataset),
        (Method::Get, &check.url),
        Some(auth),
        limiters,
        &counter,
        block,
    )
    .await?;
    let id = check.id.escape_debug();
    Ok(match answer {
        Ok(record) if record.is_object() => Ok(Scoped { record }),
        Ok(_) => Err(SourceReport::failed(
            check.source_type,
            format!(
                "{} {id}: GET {} did not return an object; check `{}`",
                check.what, check.url, check.key
            ),
        )),
        Err((Some(404), _)) => Err(SourceReport::failed(
            check.source_type,
            format!(
                "{} {id} does not exist in this account (HTTP 404 from GET {}); check `{}`",
                check.what, check.url, check.key
            ),
        )),
        Err((_, reason)) => Err(SourceReport::failed(
            check.source_type,
            format!(
                "{} {id} could not be checked (GET {}: {reason})",
                check.what, check.url
            ),
        )),
    })
}

/// The report of the check itself, one stored page.
pub(crate) fn checked() -> DatasetReport {
    DatasetReport {
        status: DatasetStatus::Complete,
        pages: 1,
        records: 1,
        reason: None,
    }
}

/// Fail `report` when its device dataset came back complete but empty: the
/// id names an organisation with nothing in it, most likely the wrong one.
pub(crate) fn fail_if_empty(
    mut report: SourceReport,
    devices: &str,
    check: &ScopeCheck<'_>,
    scoped: &Scoped,
) -> SourceReport {
    let empty = report
        .datasets
        .get(devices)
        .is_some_and(|d| d.status == DatasetStatus::Complete && d.records == 0);
    if empty {
        let name = scoped
            .name()
            .map(|n| format!(" (\"{}\")", n.escape_debug()))
            .unwrap_or_default();
        report.status = SourceStatus::Failed;
        report.reason = Some(format!(
            "{} {}{name} has no devices (`{devices}` is empty); check `{}`",
            check.what,
            check.id.escape_debug(),
            check.key
        ));
    }
    report
}
