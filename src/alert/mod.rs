//! Alerts: after a run is packaged, tell each organisation's channels what
//! changed, once, and the MSP what changed across the fleet.
//!
//! - [`rules`] turns a run into items (regressions, lost evidence, a run that
//!   could not happen or was missed, exceptions expiring) and decides which
//!   are new, with the state kept in `<store>/alerts/state.json`.
//! - [`render`] shapes one message per organisation per run for each channel;
//!   [`send`] makes one attempt on one channel.
//! - This module runs delivery: every channel at once, each with retries
//!   (at most 4 attempts a run, exponential backoff with jitter,
//!   `Retry-After` honoured up to 30 s) on network errors, 408, 429 and 5xx; any other 4xx is refused for good and not
//!   retried. Each (message, channel) has one id, derived from the
//!   organisation, run and channel, used as `webhook-id` (and the e-mail's
//!   `Message-ID`) on every attempt, in this run or a later one, so a
//!   receiver can drop duplicates.
//!
//! Delivery never fails a run: it happens after the package is sealed and
//! every problem is recorded, never returned. The store keeps:
//!
//! ```text
//! <store>/alerts/state.json           what held at the last run (rules)
//! <store>/alerts/outbox/<id>.json     a message not yet delivered: retried by the next run
//! <store>/alerts/sent/<id>.json       a delivered message, its channel and status
//! <store>/alerts/failed/<id>.json     a message refused for good (or given up after 14 days):
//!                                     sent again only by `auditpack alerts resend`
//! <store>/alerts/runs/<run id>.json   the run's alert record: items, deliveries, problems
//!                                     (`resend-<time>.json` for a resend)
//! ```
//!
//! No file or message holds a secret: channels are named, never their URL.

pub mod config;
pub mod render;
pub mod rules;
pub mod send;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use config::{AlertsConfig, Channel, ChannelKind};
pub use render::{Message, Scope};
pub use rules::{ExceptionDue, Item, ItemKind, RunState, RunView};

use crate::collect::retry::{backoff_delay, wait_refused, RetryPolicy};
use crate::evidence::write_atomic;
use rules::{AlertState, RuleSettings};
use send::Attempt;

/// A queued message older than this is given up (moved to `failed/`).
const OUTBOX_DAYS: i64 = 14;
/// Attempts per message and channel in one run, at most.
const MAX_ATTEMPTS: u32 = 4;
/// The longest `Retry-After` one run waits for; a receiver asking for longer
/// is left alone until the next run (the message stays queued).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What alerting did after one run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AlertReport {
    /// The new items of this run (empty: nothing changed, nothing sent).
    pub items: Vec<Item>,
    /// Every delivery tried in this run, retried ones from the outbox included.
    pub deliveries: Vec<DeliveryRecord>,
    /// What kept alerting from doing its whole job (unreadable state, a
    /// record that could not be written).
    pub problems: Vec<String>,
    /// The run's alert record in the store, once written.
    #[serde(skip)]
    pub record: Option<PathBuf>,
}

impl AlertReport {
    /// Deliveries that did not reach their receiver in this run.
    pub fn undelivered(&self) -> usize {
        self.deliveries
            .iter()
            .filter(|d| d.outcome != DeliveryOutcome::Delivered)
            .count()
    }
}

/// One message on one channel, as this run left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The message id (`webhook-id`).
    pub id: String,
    /// The channel's name.
    pub channel: String,
    /// The run the message reports (an earlier one for a retried message).
    pub run_id: String,
    /// How it ended.
    pub outcome: DeliveryOutcome,
    /// Attempts made in this run.
    pub attempts: u32,
    /// The last HTTP status (or SMTP reply code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The last error, without secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a delivery ended in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver took it.
    Delivered,
    /// Still failing after the run's retries: kept in the outbox for the next run.
    Queued,
    /// Refused for good (a 4xx other than 408/429, an SMTP permanent reply):
    /// moved to `failed/`, not retried.
    Refused,
    /// Queued for longer than the outbox keeps messages: moved to `failed/`.
    GaveUp,
}

/// A message waiting for (or done with) delivery on one channel.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    schema_version: u32,
    id: String,
    channel: String,
    queued: DateTime<Utc>,
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivered: Option<DateTime<Utc>>,
    message: Message,
}

const PENDING_VERSION: u32 = 1;

/// The id of `message` on `channel`: the same for every attempt, in any run.
pub fn message_id(message: &Message, channel: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        match message.scope {
            Scope::Organisation => "organisation",
            Scope::Fleet => "fleet",
        },
        &message.name,
        &message.run_id,
        channel,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("msg_{}", &hex::encode(h.finalize())[..32])
}

/// The store's alerts folder.
pub fn alerts_dir(store: &Path) -> PathBuf {
    store.join("alerts")
}

/// Apply the rules to one organisation's run (`store` is that
/// organisation's store) and deliver what is new, plus whatever the outbox
/// still holds, to the organisation's channels. Never fails: problems are in
/// the report and in `<store>/alerts/runs/<run id>.json`.
pub async fn notify_async(
    config: &AlertsConfig,
    store: &Path,
    run: &RunView<'_>,
    retry: &RetryPolicy,
) -> AlertReport {
    let dir = alerts_dir(store);
    let mut report = AlertReport::default();
    let settings = RuleSettings {
        persist_runs: config.persist_runs,
        max_age_hours: config.max_age_hours,
        exception_warn_days: config.exception_warn_days,
    };
    let state_path = dir.join("state.json");
    let previous = match read_state(&state_path) {
        Ok(s) => Some(s),
        Err(problem) => {
            report.problems.push(problem);
            None
        }
    };
    let mut message = None;
    if let Some(previous) = previous {
        let (items, state) = rules::evaluate(&previous, run, &settings);
        if !items.is_empty() {
            message = Some(Message {
                scope: Scope::Organisation,
                name: run.organisation.to_owned(),
                run_id: run.run_id.to_owned(),
                created: crate::evidence::format_time(run.started),
                items: items.clone(),
            });
        }
        report.items = items;
        // Queue first, then remember: a run that dies between the two
        // re-sends (same id) rather than forgets.
        if let Some(m) = &message {
            queue(&dir, config, m, &mut report.problems);
        }
        if let Err(e) = write_json(&state_path, &state) {
            report.problems.push(e);
        }
    }
    dispatch(&dir, config, retry, &mut report).await;
    finish(&dir, run.run_id, &mut report);
    report
}

/// The MSP's summary of a fleet run: every organisation's new items, each
/// title prefixed with the organisation's name. `None` when no organisation
/// has anything new.
pub fn fleet_summary(
    fleet: &str,
    run_id: &str,
    started: DateTime<Utc>,
    organisations: &[(&str, &AlertReport)],
) -> Option<Message> {
    let mut items = Vec::new();
    for (name, report) in organisations {
        for item in &report.items {
            items.push(Item {
                kind: item.kind,
                key: format!("{name}/{}", item.key),
                title: format!("{name}: {}", item.title),
                detail: item.detail.clone(),
                owner: item.owner,
            });
        }
    }
    if items.is_empty() {
        return None;
    }
    items.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    Some(Message {
        scope: Scope::Fleet,
        name: fleet.to_owned(),
        run_id: run_id.to_owned(),
        created: crate::evidence::format_time(started),
        items,
    })
}

/// Deliver a fleet summary (from [`fleet_summary`]) to the fleet file's
/// `[alerts]` channels, with the same retries, outbox and records as an
/// organisation's alerts, under `<fleet store>/alerts/`.
pub async fn notify_fleet(
    config: &AlertsConfig,
    store: &Path,
    run_id: &str,
    summary: Option<Message>,
    retry: &RetryPolicy,
) -> AlertReport {
    let dir = alerts_dir(store);
    let mut report = AlertReport::default();
    if let Some(m) = &summary {
        report.items = m.items.clone();
        queue(&dir, config, m, &mut report.problems);
    }
    dispatch(&dir, config, retry, &mut report).await;
    finish(&dir, run_id, &mut report);
    report
}

fn read_state(path: &Path) -> Result<AlertState, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AlertState::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let state: AlertState = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a valid alert state ({e}); alerts were not judged in this run; \
             delete it to start again from this run",
            path.display()
        )
    })?;
    if state.schema_version > AlertState::SCHEMA_VERSION {
        return Err(format!(
            "{} was written by a newer auditpack (state version {}, this one reads {}); \
             alerts were not judged in this run",
            path.display(),
            state.schema_version,
            AlertState::SCHEMA_VERSION
        ));
    }
    Ok(state)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| format!("{}: {e}", path.display()))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Put `message` in the outbox once per channel.
fn queue(dir: &Path, config: &AlertsConfig, message: &Message, problems: &mut Vec<String>) {
    for channel in &config.channels {
        let id = message_id(message, &channel.name);
        let path = dir.join("outbox").join(format!("{id}.json"));
        if path.exists() || dir.join("sent").join(format!("{id}.json")).exists() {
            continue;
        }
        let pending = Pending {
            schema_version: PENDING_VERSION,
            id,
            channel: channel.name.clone(),
            queued: Utc::now(),
            attempts: 0,
            last_error: None,
            status: None,
            delivered: None,
            message: message.clone(),
        };
        if let Err(e) = write_json(&path, &pending) {
            problems.push(e);
        }
    }
}

/// Everything in the outbox, each entry read; unreadable ones are problems.
fn outbox(dir: &Path, problems: &mut Vec<String>) -> Vec<(PathBuf, Pending)> {
    entries(&dir.join("outbox"), problems)
}

/// Every message file in `folder` (the outbox, `failed/`), each read, in
/// name order; unreadable ones are problems and left as they are.
fn entries(folder: &Path, problems: &mut Vec<String>) -> Vec<(PathBuf, Pending)> {
    let listing = match std::fs::read_dir(folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(format!("cannot read {}: {e}", folder.display()));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in listing.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Pending>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(p) if p.schema_version <= PENDING_VERSION => out.push((path, p)),
            Ok(p) => problems.push(format!(
                "{}: written by a newer auditpack (version {}); left as it is",
                path.display(),
                p.schema_version
            )),
            Err(e) => problems.push(format!(
                "{} is not a readable queued alert ({e}); left as it is",
                path.display()
            )),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Deliver every outbox entry, all channels at once, and file each result.
async fn dispatch(
    dir: &Path,
    config: &AlertsConfig,
    retry: &RetryPolicy,
    report: &mut AlertReport,
) {
    let entries = outbox(dir, &mut report.problems);
    if entries.is_empty() {
        return;
    }
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            report
                .problems
                .push(format!("cannot build the HTTP client for alerts: {e}"));
            return;
        }
    };
    // The outbox retries on the next run, so the end of this one never
    // waits long for a receiver that is down.
    let retry = &RetryPolicy {
        max_attempts: retry.max_attempts.min(MAX_ATTEMPTS),
        max_retry_after: retry.max_retry_after.min(MAX_RETRY_AFTER),
        ..*retry
    };
    let mut tasks = tokio::task::JoinSet::new();
    let now = Utc::now();
    for (path, mut pending) in entries {
        let Some(channel) = config.channel(&pending.channel).cloned() else {
            pending.last_error = Some(format!(
                "channel `{}` is no longer in [alerts.channels] of {}",
                pending.channel,
                config.path.display()
            ));
            file(dir, &path, pending, DeliveryOutcome::GaveUp, 0, report);
            continue;
        };
        if now - pending.queued > chrono::Duration::days(OUTBOX_DAYS) {
            file(dir, &path, pending, DeliveryOutcome::GaveUp, 0, report);
            continue;
        }
        let http = http.clone();
        let retry = *retry;
        tasks.spawn(async move {
            let (outcome, attempts) = deliver(&channel, &mut pending, &http, &retry).await;
            (path, pending, outcome, attempts)
        });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((path, pending, outcome, attempts)) => {
                file(dir, &path, pending, outcome, attempts, report);
            }
            Err(e) => report
                .problems
                .push(format!("an alert delivery stopped unexpectedly: {e}")),
        }
    }
    report
        .deliveries
        .sort_by(|a, b| (&a.run_id, &a.channel).cmp(&(&b.run_id, &b.channel)));
}

/// Try one message on one channel until it is delivered, refused, or the
/// retries run out.
async fn deliver(
    channel: &Channel,
    pending: &mut Pending,
    http: &reqwest::Client,
    retry: &RetryPolicy,
) -> (DeliveryOutcome, u32) {
    let attempts = retry.max_attempts.max(1);
    for n in 1..=attempts {
        pending.attempts = pending.attempts.saturating_add(1);
        match send::attempt(channel, &pending.id, &pending.message, http, retry.timeout).await {
            Attempt::Delivered(status) => {
                pending.status = Some(status);
                pending.last_error = None;
                pending.delivered = Some(Utc::now());
                return (DeliveryOutcome::Delivered, n);
            }
            Attempt::Refused { error, status } => {
                pending.status = status;
                pending.last_error = Some(error);
                return (DeliveryOutcome::Refused, n);
            }
            Attempt::Retry {
                error,
                status,
                retry_after,
            } => {
                pending.status = status;
                if let Some(why) = wait_refused(retry, retry_after) {
                    // Asking again before the receiver's time only gets
                    // throttled again: the next run tries.
                    pending.last_error = Some(format!("{error}; {why}"));
                    return (DeliveryOutcome::Queued, n);
                }
                pending.last_error = Some(error);
                if n < attempts {
                    let wait: Duration = backoff_delay(retry, n, retry_after);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    (DeliveryOutcome::Queued, attempts)
}

/// Move an entry where its outcome says and record the delivery.
fn file(
    dir: &Path,
    outbox_path: &Path,
    pending: Pending,
    outcome: DeliveryOutcome,
    attempts: u32,
    report: &mut AlertReport,
) {
    let target = match outcome {
        DeliveryOutcome::Delivered => Some("sent"),
        DeliveryOutcome::Refused | DeliveryOutcome::GaveUp => Some("failed"),
        DeliveryOutcome::Queued => None,
    };
    let written = match target {
        Some(folder) => {
            let path = dir.join(folder).join(format!("{}.json", pending.id));
            write_json(&path, &pending).and_then(|()| {
                std::fs::remove_file(outbox_path)
                    .map_err(|e| format!("cannot remove {}: {e}", outbox_path.display()))
            })
        }
        None => write_json(outbox_path, &pending),
    };
    if let Err(e) = written {
        report.problems.push(e);
    }
    report.deliveries.push(DeliveryRecord {
        id: pending.id,
        channel: pending.channel,
        run_id: pending.message.run_id,
        outcome,
        attempts,
        status: pending.status,
        error: pending.last_error,
    });
}

/// A message not delivered yet (in the outbox) or not to be delivered
/// (in `failed/`), as `auditpack alerts` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undelivered {
    /// The message id (`webhook-id`).
    pub id: String,
    /// The channel's name.
    pub channel: String,
    /// The run the message reports.
    pub run_id: String,
    /// When it was queued.
    pub queued: DateTime<Utc>,
    /// Attempts made so far, over every run.
    pub attempts: u32,
    /// The last HTTP status (or SMTP reply code).
    pub status: Option<u16>,
    /// The last error, without secrets.
    pub error: Option<String>,
    /// Items the message carries.
    pub items: usize,
}

/// What a store's alerts folder holds undelivered.
#[derive(Clone, Debug, Default)]
pub struct Undeliverable {
    /// Queued: the next run (or `auditpack alerts resend`) tries them again.
    pub outbox: Vec<Undelivered>,
    /// Refused for good, given up or left by a removed channel: sent again
    /// only by `auditpack alerts resend`.
    pub failed: Vec<Undelivered>,
    /// Files that could not be read (left as they are).
    pub problems: Vec<String>,
}

impl From<&Pending> for Undelivered {
    fn from(p: &Pending) -> Undelivered {
        Undelivered {
            id: p.id.clone(),
            channel: p.channel.clone(),
            run_id: p.message.run_id.clone(),
            queued: p.queued,
            attempts: p.attempts,
            status: p.status,
            error: p.last_error.clone(),
            items: p.message.items.len(),
        }
    }
}

/// The undelivered messages of the store `store` (an organisation's, or a
/// fleet's for its summaries), oldest first.
pub fn undelivered(store: &Path) -> Undeliverable {
    let dir = alerts_dir(store);
    let mut problems = Vec::new();
    let mut list = |folder: &str| {
        let mut found: Vec<Undelivered> = entries(&dir.join(folder), &mut problems)
            .iter()
            .map(|(_, p)| p.into())
            .collect();
        found.sort_by(|a, b| (a.queued, &a.id).cmp(&(b.queued, &b.id)));
        found
    };
    let (outbox, failed) = (list("outbox"), list("failed"));
    Undeliverable {
        outbox,
        failed,
        problems,
    }
}

/// Send again: put the failed messages named by `ids` (every failed one
/// when `ids` is empty) back in the outbox, queued now, and deliver the
/// whole outbox to `config`'s channels at once, as a run would. The record
/// goes to `<store>/alerts/runs/resend-<time>.json`. Each message keeps its
/// id, so a receiver that did take it once drops the repeat.
///
/// # Errors
/// When an id names no failed message, or a message cannot be moved back
/// to the outbox; nothing is sent then.
pub async fn resend(
    config: &AlertsConfig,
    store: &Path,
    ids: &[String],
    retry: &RetryPolicy,
) -> crate::error::Result<AlertReport> {
    use crate::error::Error;
    let dir = alerts_dir(store);
    let mut report = AlertReport::default();
    let failed = entries(&dir.join("failed"), &mut report.problems);
    for id in ids {
        if !failed.iter().any(|(_, p)| &p.id == id) {
            return Err(Error::invalid(format!(
                "no failed alert `{id}` in {}; `auditpack alerts` lists them",
                dir.join("failed").display()
            )));
        }
    }
    let now = Utc::now();
    for (path, mut pending) in failed {
        if !ids.is_empty() && !ids.contains(&pending.id) {
            continue;
        }
        // Queued anew, so the outbox keeps it its full time again; the
        // outbox copy is written before the failed one goes, so a crash
        // between the two leaves it queued, never lost.
        pending.queued = now;
        let queued = dir.join("outbox").join(format!("{}.json", pending.id));
        write_json(&queued, &pending).map_err(Error::invalid)?;
        std::fs::remove_file(&path)
            .map_err(|e| Error::invalid(format!("cannot remove {}: {e}", path.display())))?;
    }
    dispatch(&dir, config, retry, &mut report).await;
    finish(
        &dir,
        &format!("resend-{}", now.format("%Y%m%dT%H%M%SZ")),
        &mut report,
    );
    Ok(report)
}

/// Write the run's alert record, when there is anything to record.
fn finish(dir: &Path, run_id: &str, report: &mut AlertReport) {
    if report.items.is_empty() && report.deliveries.is_empty() && report.problems.is_empty() {
        return;
    }
    let name: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join("runs").join(format!("{name}.json"));
    let record = serde_json::json!({
        "run_id": run_id,
        "items": report.items,
        "deliveries": report.deliveries,
        "problems": report.problems,
    });
    match write_json(&path, &record) {
        Ok(()) => report.record = Some(path),
        Err(e) => report.problems.push(e),
    }
}
