//! `auditpack alerts`: the messages of a store that were not delivered (the
//! outbox, retried by the next run, and `failed/`, never retried), and
//! `alerts resend`, which sends failed ones again once their channel is
//! fixed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::terminal_safe;
use super::trends::{is_fleet_file, organisation_config};
use crate::alert::{AlertsConfig, Undeliverable, Undelivered};
use crate::error::Result;
use crate::fleet::FleetFile;

/// Whose alerts: an organisation's (its config, or one of a fleet's), or a
/// fleet's own summaries (a fleet file without `--org`).
#[derive(Debug)]
pub struct AlertTarget {
    /// The organisation's or the fleet's name.
    pub name: String,
    /// The store whose `alerts/` folder holds the messages.
    pub store: PathBuf,
    /// Its `[alerts]`, when it has one.
    pub config: Option<AlertsConfig>,
    /// The file that configures it, for messages.
    pub file: PathBuf,
}

/// The alerts that `path` (an organisation config or a fleet file) and
/// `org` name.
///
/// # Errors
/// When the file cannot be read or parsed, or the fleet has no such
/// organisation.
pub fn target(path: &Path, org: Option<&str>) -> Result<AlertTarget> {
    if org.is_none() && is_fleet_file(path)? {
        let fleet = FleetFile::load(path)?;
        return Ok(AlertTarget {
            name: fleet.name,
            store: fleet.store,
            config: fleet.alerts,
            file: path.to_owned(),
        });
    }
    let (config, _) = organisation_config(path, org)?;
    Ok(AlertTarget {
        name: config.organisation.name.clone(),
        store: config.organisation.store.clone(),
        config: AlertsConfig::from_config(&config)?,
        file: path.to_owned(),
    })
}

/// The listing of `auditpack alerts`.
pub fn render(target: &AlertTarget, found: &Undeliverable) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "alerts of {} in {}",
        terminal_safe(&target.name),
        crate::alert::alerts_dir(&target.store).display()
    );
    section(
        &mut out,
        "outbox",
        "queued: the next run tries again",
        &found.outbox,
    );
    section(
        &mut out,
        "failed",
        "not tried again: `auditpack alerts resend` sends them once the channel is fixed",
        &found.failed,
    );
    for p in &found.problems {
        let _ = writeln!(out, "problem: {}", terminal_safe(p));
    }
    out
}

fn section(out: &mut String, name: &str, what: &str, messages: &[Undelivered]) {
    if messages.is_empty() {
        let _ = writeln!(out, "{name}: none");
        return;
    }
    let _ = writeln!(out, "{name} ({}): {what}", messages.len());
    for m in messages {
        let status = m
            .status
            .map(|s| format!(", last status {s}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  channel {}  run {}  queued {}  {} item(s), {} attempt(s){status}",
            m.id,
            terminal_safe(&m.channel),
            terminal_safe(&m.run_id),
            crate::evidence::format_time(m.queued),
            m.items,
            m.attempts,
        );
        if let Some(error) = &m.error {
            let _ = writeln!(out, "    {}", terminal_safe(error));
        }
    }
}
