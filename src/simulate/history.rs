//! A generated run history: daily run summaries of one organisation,
//! written straight into its store (no collection), for the trends tests
//! and the `trends` benchmark. Subjects fail and get fixed over time, a
//! framework can drop out of scope for a stretch, and each summary carries
//! its KPIs and changes as a real run's would.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use crate::checks::Verdict;
use crate::config::Owner;
use crate::error::Result;
use crate::evaluate::Status;
use crate::evidence::{format_time, SourceStatus};
use crate::history::kpis::{self, ClosedGap, KpiSettings};
use crate::history::summary::{
    CheckSummary, ControlSummary, Counts, RunSummary, SourceSummary, SubjectRef,
};
use crate::history::{drift, LocalStore, SummaryStore};

/// What to generate.
#[derive(Clone, Debug)]
pub struct HistorySpec {
    /// Organisation name.
    pub organisation: String,
    /// First run's instant.
    pub start: DateTime<Utc>,
    /// Number of daily runs.
    pub days: u32,
    /// Seed of the pseudo-random changes.
    pub seed: u64,
    /// Days (0-based run index range) on which `pci-dss` is out of scope.
    pub pci_out_of_scope: Option<(u32, u32)>,
    /// Controls per framework.
    pub controls_per_framework: usize,
}

const CHECKS: &[(&str, &str, Owner, usize)] = &[
    (
        "mfa_registered",
        "MFA registered for every enabled member account",
        Owner::Internal,
        60,
    ),
    ("mfa_admins", "Admins use MFA", Owner::Internal, 6),
    (
        "inactive_accounts",
        "No inactive accounts",
        Owner::Internal,
        60,
    ),
    (
        "access_review_completed",
        "Access reviews completed",
        Owner::Internal,
        4,
    ),
    (
        "patch_latency_critical",
        "Critical patches within the limit",
        Owner::Msp,
        40,
    ),
    (
        "patch_latency_high",
        "High patches within the limit",
        Owner::Msp,
        40,
    ),
    ("edr_coverage", "EDR on every device", Owner::Msp, 40),
    ("disk_encryption", "Disks encrypted", Owner::Msp, 40),
    ("stale_devices", "No stale devices", Owner::Msp, 40),
    ("backup_recency", "Recent backups", Owner::Msp, 8),
    (
        "device_coverage",
        "Devices known to their management tools",
        Owner::Msp,
        40,
    ),
];

fn next(state: &mut u64) -> u64 {
    // xorshift64*
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Write the history into `store` (an organisation store) and return the
/// summaries written, oldest first.
///
/// # Errors
/// On I/O failure.
pub fn write_history(
    store: &Path,
    spec: &HistorySpec,
    settings: &KpiSettings,
) -> Result<Vec<String>> {
    let summaries = LocalStore::new(store);
    let mut rng = spec.seed.max(1);
    // Per check, the failing subject indexes.
    let mut failing: Vec<Vec<usize>> = CHECKS.iter().map(|_| Vec::new()).collect();
    let mut previous: Option<RunSummary> = None;
    let mut closed_window: Vec<ClosedGap> = Vec::new();
    let mut ids = Vec::new();
    for day in 0..spec.days {
        let at = spec.start + Duration::days(i64::from(day));
        let mut frameworks = vec!["hipaa".to_owned(), "soc2".to_owned()];
        let pci = spec
            .pci_out_of_scope
            .is_none_or(|(a, b)| day < a || day > b);
        if pci {
            frameworks.insert(1, "pci-dss".to_owned());
        }
        for (i, (_, _, _, population)) in CHECKS.iter().enumerate() {
            // Fix some, break some.
            failing[i].retain(|_| !next(&mut rng).is_multiple_of(6));
            if next(&mut rng).is_multiple_of(3) {
                let s = (next(&mut rng) % *population as u64) as usize;
                if !failing[i].contains(&s) {
                    failing[i].push(s);
                }
            }
        }
        let checks: Vec<CheckSummary> = CHECKS
            .iter()
            .zip(&failing)
            .map(|((id, title, owner, population), fails)| {
                let subjects: Vec<SubjectRef> = fails
                    .iter()
                    .map(|n| SubjectRef {
                        id: format!("sim:{id}-{n}"),
                        name: format!("subject {n} of {id}"),
                    })
                    .collect();
                CheckSummary {
                    check: (*id).to_owned(),
                    title: (*title).to_owned(),
                    outcome: if subjects.is_empty() {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    },
                    judged: true,
                    responsible: *owner,
                    evaluated: *population,
                    failing_count: subjects.len(),
                    unproven_count: 0,
                    failing: subjects,
                    unproven: Vec::new(),
                }
            })
            .collect();
        let mut controls = Vec::new();
        for f in &frameworks {
            for c in 0..spec.controls_per_framework {
                let check = c % CHECKS.len();
                let status = if c >= CHECKS.len() {
                    if (c + day as usize / 30).is_multiple_of(5) {
                        Status::ManualPending
                    } else {
                        Status::ManualAttested
                    }
                } else if failing[check].is_empty() {
                    Status::Pass
                } else {
                    Status::Fail
                };
                controls.push(ControlSummary {
                    framework: f.clone(),
                    control_id: format!("C{c}"),
                    title: format!("Control {c} of {f}"),
                    status,
                    owner: CHECKS[check].2,
                    accepted: None,
                });
            }
        }
        let mut counts = Counts::default();
        for s in Status::ALL {
            counts.by_status.insert(s, 0);
        }
        for c in &controls {
            *counts.by_status.entry(c.status).or_default() += 1;
            *counts
                .by_owner
                .entry(c.owner)
                .or_default()
                .entry(c.status)
                .or_default() += 1;
        }
        let stamp = at.format("%Y%m%dT%H%M%SZ");
        let run_id = format!("{stamp}-{:08x}", next(&mut rng) as u32);
        let time = format_time(at);
        let mut summary = RunSummary {
            schema_version: crate::history::summary::SCHEMA_VERSION,
            organisation: spec.organisation.clone(),
            run_id: run_id.clone(),
            started_at: format_time(at - Duration::minutes(5)),
            finished_at: time.clone(),
            as_of: time,
            frameworks,
            sources: [(
                "m365".to_owned(),
                SourceSummary {
                    source_type: "m365".to_owned(),
                    status: SourceStatus::Complete,
                    reason: None,
                },
            )]
            .into_iter()
            .collect(),
            controls,
            checks,
            counts,
            changes: None,
            kpis: None,
        };
        let window_start = at - Duration::days(kpis::WINDOW_DAYS);
        closed_window.retain(|g| {
            DateTime::parse_from_rfc3339(&g.closed)
                .is_ok_and(|t| t.with_timezone(&Utc) > window_start)
        });
        let k = kpis::compute(&summary, previous.as_ref(), &closed_window, settings);
        closed_window.extend(k.closed.iter().cloned());
        summary.kpis = Some(k);
        if let Some(p) = &previous {
            summary.changes = drift(p, &summary).counts();
        }
        summaries.write(&summary)?;
        ids.push(run_id);
        previous = Some(summary);
    }
    Ok(ids)
}
