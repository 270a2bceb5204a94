//! A dataset fetched with one request per record of a parent list (Veeam's
//! task sessions per SureBackup session, Datto BCDR's assets per appliance):
//! the requests are made one after another, their pages numbered on across
//! them in one dataset, and the dataset is only as complete as its parent.

use crate::collect::auth::AuthError;
use crate::collect::dataset::{fetch_pages, merge_reports, DatasetRequest, PageCounter};
use crate::collect::CollectContext;
use crate::evidence::{DatasetReport, DatasetStatus};

/// How much of the parent list was read.
pub(crate) enum ParentList<'a> {
    /// All of it: a list without records makes an empty, complete dataset.
    Complete,
    /// Only part of it, or nothing: when no request was made, the dataset
    /// failed for this reason.
    Incomplete(&'a str),
}

/// Fetch `requests`, one after another, into one dataset. `not_requested`, when
/// set, says why some parents were left out (ids that cannot go into a URL):
/// the dataset is then partial (failed when nothing else was fetched).
///
/// # Errors
/// When credentials fail, which is fatal for the whole source; the requests
/// after that one are not made.
pub(crate) async fn fetch_per_parent<'a>(
    ctx: &CollectContext,
    requests: Vec<DatasetRequest<'a>>,
    not_requested: Option<String>,
    parents: ParentList<'_>,
) -> Result<DatasetReport, AuthError> {
    let counter = PageCounter::default();
    let mut parts = Vec::new();
    for req in requests {
        parts.push(
            fetch_pages(&ctx.http, &ctx.evidence, req, &counter)
                .await?
                .report,
        );
    }
    if let Some(reason) = not_requested {
        parts.push(DatasetReport {
            status: DatasetStatus::Partial,
            pages: 0,
            records: 0,
            reason: Some(reason),
        });
    }
    Ok(match (parts.is_empty(), parents) {
        (false, _) => merge_reports(&parts),
        (true, ParentList::Complete) => DatasetReport {
            status: DatasetStatus::Complete,
            pages: 0,
            records: 0,
            reason: None,
        },
        (true, ParentList::Incomplete(why)) => DatasetReport {
            status: DatasetStatus::Failed,
            pages: 0,
            records: 0,
            reason: Some(why.to_owned()),
        },
    })
}
