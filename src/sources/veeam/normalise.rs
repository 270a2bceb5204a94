//! Veeam pages to protected systems.
//!
//! One [`ProtectedSystem`] per backup object (`id`, `name`); its restore
//! points are those whose `name` is the object's and whose backup it has.
//! Through each point's `backupId` the backup gives the job (`jobId`) and
//! repository (`repositoryId`):
//! - the jobs are the object's jobs; a job's state (`/jobs/states`) gives the
//!   newest run (`lastRun`) and result (`lastResult`: `Success`, `Warning`,
//!   `Failed`, `None`; anything else kept as unknown with its raw value), and
//!   `status` `disabled` means paused; the worst state among the object's
//!   primary (not backup copy) jobs is the one recorded; copy jobs are the
//!   `EJobType` values `BackupCopy`, `LegacyBackupCopy`, `FileBackupCopy` and
//!   `EntraIDTenantBackupCopy`;
//! - the newest point of a primary job's backup is the last successful
//!   backup;
//! - each repository holding points is a copy: object storage types
//!   (`AmazonS3`, `AzureBlob`, `S3Compatible`, `WasabiCloud`, `GoogleCloud`,
//!   `AmazonS3Glacier`, `AzureArchive`) are cloud copies, a backup copy job's
//!   repository an offsite copy, others local; immutable when a hardened
//!   repository (`LinuxHardened`) keeps `makeRecentBackupsImmutableDays`
//!   above zero or object storage has `immutability.isEnabled`, not
//!   immutable for plain disk and share types, unknown otherwise;
//! - a failed backup copy job, or one whose result is not a documented
//!   value, is noted on the systems it copies (its copy's age is what
//!   `backup_321` judges);
//! - each SureBackup task session (`name` = the object) is a boot test:
//!   `result.result` `Success` or `Warning` passed, `Failed` failed, other
//!   values unknown.
//!
//! Object `type`: `VM`, `Computer` and `Server`-like values are machines;
//! anything else a workload, with the raw value noted.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::dataset;
use crate::facts::{
    parse_time, str_field, BackupCopy, BackupResult, CopyLocation, FactKind, Facts, ProtectedKind,
    ProtectedSystem, RestoreTest, RestoreTestKind, SourceEvidence, TestResult,
};

const PRODUCT: &str = "Veeam Backup & Replication";

const CLOUD_TYPES: &[&str] = &[
    "AmazonS3",
    "AzureBlob",
    "S3Compatible",
    "WasabiCloud",
    "GoogleCloud",
    "AmazonS3Glacier",
    "AzureArchive",
    "AmazonSnowballEdge",
    "IBMCloud",
];

/// Job types that copy backups another job made (`EJobType`, REST reference
/// 1.3-rev2): their repositories are copies, their results never stand for
/// the primary backup.
const COPY_JOB_TYPES: &[&str] = &[
    "BackupCopy",
    "LegacyBackupCopy",
    "FileBackupCopy",
    "EntraIDTenantBackupCopy",
];

const DISK_TYPES: &[&str] = &[
    "WinLocal",
    "LinuxLocal",
    "Smb",
    "Nfs",
    "DDBoost",
    "HPStoreOnceIntegration",
];

fn data(page: &Value) -> Option<&Vec<Value>> {
    page.get("data")?.as_array()
}

fn result(raw: Option<&str>) -> BackupResult {
    match raw {
        None | Some("None") => BackupResult::None,
        Some("Success") => BackupResult::Success,
        Some("Warning") => BackupResult::Warning,
        Some("Failed") => BackupResult::Failed,
        Some(other) => BackupResult::Unknown(other.to_owned()),
    }
}

/// How bad a result is, for picking the worst job.
fn rank(r: &BackupResult) -> u8 {
    match r {
        BackupResult::Failed => 5,
        BackupResult::Unknown(_) => 4,
        BackupResult::Warning => 3,
        BackupResult::None => 2,
        BackupResult::Running => 1,
        BackupResult::Success => 0,
    }
}

struct Repo {
    name: String,
    location: CopyLocation,
    immutable: Option<bool>,
}

fn repository(r: &Value) -> Repo {
    let name = str_field(r, "name").unwrap_or("repository").to_owned();
    let kind = str_field(r, "type").unwrap_or_default();
    let hardened_days = r
        .pointer("/repository/makeRecentBackupsImmutableDays")
        .and_then(Value::as_u64);
    let object_lock = r
        .pointer("/bucket/immutability/isEnabled")
        .or_else(|| r.pointer("/container/immutability/isEnabled"))
        .and_then(Value::as_bool);
    let (location, immutable) = if CLOUD_TYPES.contains(&kind) {
        (CopyLocation::Cloud, object_lock)
    } else if kind == "LinuxHardened" {
        (CopyLocation::Local, Some(hardened_days.unwrap_or(0) > 0))
    } else if DISK_TYPES.contains(&kind) {
        (CopyLocation::Local, Some(false))
    } else {
        (CopyLocation::Unknown(kind.to_owned()), None)
    };
    Repo {
        name,
        location,
        immutable,
    }
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut problems = Vec::new();
    let jobs: BTreeMap<&str, &Value> = src
        .records(dataset::JOB_STATES, data, &mut problems)
        .into_iter()
        .filter_map(|(_, j)| Some((str_field(j, "id")?, j)))
        .collect();
    let backups: BTreeMap<&str, &Value> = src
        .records(dataset::BACKUPS, data, &mut problems)
        .into_iter()
        .filter_map(|(_, b)| Some((str_field(b, "id")?, b)))
        .collect();
    let repos: BTreeMap<&str, Repo> = src
        .records(dataset::REPOSITORIES, data, &mut problems)
        .into_iter()
        .filter_map(|(_, r)| Some((str_field(r, "id")?, repository(r))))
        .collect();
    // Points per object name: (time, backup id).
    let mut points: BTreeMap<&str, Vec<(DateTime<Utc>, &str)>> = BTreeMap::new();
    for (path, p) in src.records(dataset::RESTORE_POINTS, data, &mut problems) {
        match (
            str_field(p, "name"),
            parse_time(p.get("creationTime")),
            str_field(p, "backupId"),
        ) {
            (Some(name), Some(at), Some(backup)) => {
                points.entry(name).or_default().push((at, backup))
            }
            _ => problems.push(format!(
                "{path}: a restore point without name, creationTime or backupId"
            )),
        }
    }
    let mut tests: BTreeMap<&str, Vec<RestoreTest>> = BTreeMap::new();
    let mut test_problems = Vec::new();
    for (path, t) in src.records(dataset::SUREBACKUP_TASKS, data, &mut test_problems) {
        let Some(name) = str_field(t, "name") else {
            test_problems.push(format!("{path}: a task session without name"));
            continue;
        };
        let raw = t.pointer("/result/result").and_then(Value::as_str);
        let result = match raw {
            Some("Success" | "Warning") => TestResult::Passed,
            Some("Failed") => TestResult::Failed,
            Some(other) => TestResult::Unknown(other.to_owned()),
            None => TestResult::Unknown("no result".into()),
        };
        tests.entry(name).or_default().push(RestoreTest {
            kind: RestoreTestKind::Boot,
            at: parse_time(t.get("endTime")).or_else(|| parse_time(t.get("creationTime"))),
            result,
            detail: t
                .pointer("/result/message")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(|m| format!("SureBackup: {m}"))
                .or_else(|| Some("SureBackup".into())),
        });
    }
    let tests_reported = src.report.datasets.contains_key(dataset::SUREBACKUP_TASKS);
    for (path, o) in src.records(dataset::BACKUP_OBJECTS, data, &mut problems) {
        let (Some(id), Some(name)) = (str_field(o, "id"), str_field(o, "name")) else {
            problems.push(format!("{path}: a backup object without id or name"));
            continue;
        };
        let mut notes = Vec::new();
        let kind = match str_field(o, "type").map(str::to_ascii_lowercase).as_deref() {
            Some("vm" | "computer" | "server" | "workstation" | "virtualmachine") => {
                ProtectedKind::Machine
            }
            other => {
                notes.push(format!(
                    "object type {:?} is not a machine type",
                    other.unwrap_or("none")
                ));
                ProtectedKind::Workload
            }
        };
        let mut b = ProtectedSystem::new(src.name, id, PRODUCT, name, kind);
        let mut job_names = BTreeSet::new();
        let mut copies: BTreeMap<&str, (Option<DateTime<Utc>>, bool)> = BTreeMap::new();
        let mut primary_success: Option<DateTime<Utc>> = None;
        let mut any_success: Option<DateTime<Utc>> = None;
        let mut worst: Option<&Value> = None;
        let mut copy_failures: BTreeSet<String> = BTreeSet::new();
        for (at, backup_id) in points.get(name).into_iter().flatten() {
            let Some(backup) = backups.get(backup_id) else {
                continue;
            };
            let job = str_field(backup, "jobId")
                .and_then(|j| jobs.get(j))
                .copied();
            let copy_job = job
                .and_then(|j| str_field(j, "type"))
                .is_some_and(|t| COPY_JOB_TYPES.contains(&t));
            any_success = any_success.max(Some(*at));
            if !copy_job {
                primary_success = primary_success.max(Some(*at));
            }
            if let Some(j) = job {
                job_names.extend(str_field(j, "name").map(str::to_owned));
                if copy_job {
                    let name = str_field(j, "name").unwrap_or("?");
                    let last_run = str_field(j, "lastRun").unwrap_or("unknown");
                    match result(str_field(j, "lastResult")) {
                        BackupResult::Failed => {
                            copy_failures.insert(format!(
                                "backup copy job {name} failed (last run {last_run})"
                            ));
                        }
                        BackupResult::Unknown(raw) => {
                            copy_failures.insert(format!(
                                "backup copy job {name} result {raw:?} is not a documented value (last run {last_run})"
                            ));
                        }
                        _ => {}
                    }
                }
                if !copy_job {
                    let worse = worst.is_none_or(|w| {
                        rank(&result(str_field(j, "lastResult")))
                            > rank(&result(str_field(w, "lastResult")))
                    });
                    if worse {
                        worst = Some(j);
                    }
                }
            }
            if let Some(repo) = str_field(backup, "repositoryId") {
                let e = copies.entry(repo).or_insert((None, copy_job));
                e.0 = e.0.max(Some(*at));
                e.1 |= copy_job;
            }
        }
        b.jobs = job_names.into_iter().collect();
        b.last_success = primary_success.or(any_success);
        if let Some(j) = worst {
            b.last_run = parse_time(j.get("lastRun"));
            b.last_result = result(str_field(j, "lastResult"));
            if b.last_result == BackupResult::Failed {
                b.last_failure = b.last_run;
            }
            if let BackupResult::Unknown(raw) = &b.last_result {
                notes.push(format!("job result {raw:?} is not a documented value"));
            }
            b.paused = str_field(j, "status").map(|s| s.eq_ignore_ascii_case("disabled"));
        }
        b.copies = Some(
            copies
                .into_iter()
                .map(|(repo, (latest, copy_job))| {
                    let r = repos.get(repo);
                    let location = match r.map(|r| r.location.clone()) {
                        Some(CopyLocation::Local) if copy_job => CopyLocation::Offsite,
                        Some(l) => l,
                        None => CopyLocation::Unknown(format!("repository {repo} not listed")),
                    };
                    BackupCopy {
                        location,
                        target: r.map(|r| r.name.clone()),
                        latest,
                        immutable: r.and_then(|r| r.immutable),
                        offline: r.and(Some(false)),
                    }
                })
                .collect(),
        );
        b.tests = tests_reported.then(|| tests.get(name).cloned().unwrap_or_default());
        notes.extend(copy_failures);
        b.notes = notes;
        facts.backups.push(b);
    }
    for ds in [
        dataset::JOB_STATES,
        dataset::BACKUPS,
        dataset::BACKUP_OBJECTS,
        dataset::RESTORE_POINTS,
        dataset::REPOSITORIES,
    ] {
        facts.provide(FactKind::Backups, src.provenance(ds, &problems));
    }
    for ds in [dataset::SUREBACKUP_SESSIONS, dataset::SUREBACKUP_TASKS] {
        facts.provide(FactKind::RestoreTests, src.provenance(ds, &test_problems));
    }
}
