//! The Veeam Backup & Replication REST API as the simulator serves it: the
//! password grant (refused without `x-api-version`), and each list paged by
//! `skip` / `limit` with a `pagination` object.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use serde_json::{json, Value};

use crate::simulate::{json_response, Shared, SimRouter, SimState};

/// The token path (faults are keyed on each path as routed).
pub const TOKEN_PATH: &str = "/api/oauth2/token";

/// The lists served, by path.
pub const LISTS: &[&str] = &[
    "/api/v1/jobs/states",
    "/api/v1/backups",
    "/api/v1/backupObjects",
    "/api/v1/restorePoints",
    "/api/v1/backupInfrastructure/repositories",
    "/api/v1/sessions",
];

/// `ESessionType` values of the REST reference (1.2-rev1); like the server,
/// the simulator answers 400 to any other `typeFilter`.
const SESSION_TYPES: &[&str] = &[
    "Infrastructure",
    "BackupJob",
    "Automation",
    "ConfigurationBackup",
    "PublishBackupContentViaMount",
    "RepositoryMaintenance",
    "RepositoryEvacuate",
    "InfrastructureItemDeletion",
    "RestoreVm",
    "InstantRecovery",
    "FirstClassDiskInstantRestore",
    "AzureApplianceDeploy",
    "QuickMigration",
    "FileLevelRestore",
    "LinuxFileLevelRestore",
    "ReplicaJob",
    "MalwareDetection",
    "SecurityComplianceAnalyzer",
    "SureBackup",
    "NasRestore",
    "DeleteBackup",
    "BackgroundOperation",
];

/// Path of the task sessions of one session.
pub const TASKS_PATH: &str = "/api/v1/sessions/{id}/taskSessions";

/// The records of a simulated backup server.
#[derive(Clone, Debug, Default)]
pub struct VeeamTenant {
    /// Accepted user name.
    pub username: String,
    /// Accepted password.
    pub password: String,
    /// Records per list path (see [`LISTS`]); `/api/v1/sessions` is filtered
    /// by `typeFilter` against each session's `sessionType`.
    pub lists: BTreeMap<String, Vec<Value>>,
    /// Task sessions per session id.
    pub tasks: BTreeMap<String, Vec<Value>>,
    tokens: Arc<Mutex<BTreeSet<String>>>,
}

pub(crate) fn routes(router: SimRouter) -> SimRouter {
    let mut router = router
        .route(TOKEN_PATH, post(token))
        .route(TASKS_PATH, get(tasks));
    for path in LISTS {
        let p: &'static str = path;
        router = router.route(
            p,
            get(move |s: Shared, h: HeaderMap, q: Query<HashMap<String, String>>| list(s, h, q, p)),
        );
    }
    router
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &json!({"errorCode": status.canonical_reason().unwrap_or("Error"), "message": message}),
    )
}

fn version_missing(headers: &HeaderMap) -> Option<Response> {
    headers.get("x-api-version").is_none().then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "The x-api-version header is missing or invalid.",
        )
    })
}

async fn token(
    State(s): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = s.before(TOKEN_PATH).await {
        return fault;
    }
    s.count_token_request();
    if let Some(missing) = version_missing(&headers) {
        return missing;
    }
    let t = &s.tenant.veeam;
    let ok = !t.username.is_empty()
        && form.get("grant_type").map(String::as_str) == Some("password")
        && form.get("username") == Some(&t.username)
        && form.get("password") == Some(&t.password);
    if !ok {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_grant", "error_description": "Invalid user name or password."}),
        );
    }
    let token = format!("vbr-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    if let Ok(mut tokens) = t.tokens.lock() {
        tokens.insert(token.clone());
    }
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "bearer", "refresh_token": "not-served", "expires_in": 900}),
    )
}

fn denied(s: &SimState, headers: &HeaderMap) -> Option<Response> {
    if let Some(missing) = version_missing(headers) {
        return Some(missing);
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = token.is_some_and(|t| {
        s.tenant
            .veeam
            .tokens
            .lock()
            .map(|tokens| tokens.contains(t))
            .unwrap_or(false)
    });
    (!ok).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "The access token is missing or expired.",
        )
    })
}

fn page(s: &SimState, q: &HashMap<String, String>, all: &[&Value]) -> Response {
    let skip = q
        .get("skip")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(200)
        .clamp(1, 1000)
        .min(s.options.max_page_size.max(1));
    let data: Vec<&Value> = all.iter().skip(skip).take(limit).copied().collect();
    json_response(
        StatusCode::OK,
        &json!({"data": data, "pagination": {"total": all.len(), "count": data.len(), "skip": skip, "limit": limit}}),
    )
}

async fn list(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    path: &'static str,
) -> Response {
    if let Some(fault) = s.before(path).await {
        return fault;
    }
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    let filter = q.get("typeFilter");
    if let Some(f) = filter.filter(|f| !SESSION_TYPES.contains(&f.as_str())) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("typeFilter: {f:?} is not a valid ESessionType value."),
        );
    }
    let all: Vec<&Value> = s
        .tenant
        .veeam
        .lists
        .get(path)
        .into_iter()
        .flatten()
        .filter(|r| {
            filter.is_none_or(|f| r.get("sessionType").and_then(Value::as_str) == Some(f.as_str()))
        })
        .collect();
    page(&s, &q, &all)
}

async fn tasks(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = s.before(TASKS_PATH).await {
        return fault;
    }
    if let Some(denied) = denied(&s, &headers) {
        return denied;
    }
    let all: Vec<&Value> = s
        .tenant
        .veeam
        .tasks
        .get(&id)
        .into_iter()
        .flatten()
        .collect();
    page(&s, &q, &all)
}

/// The demo practice's backup server, with times relative to `now`: the
/// practice-management server backed up to a hardened repository and copied
/// to object-locked cloud storage, but its last SureBackup run is 100 days
/// old; the billing PC's agent job failing; the doctor's laptop backed up to
/// a plain NAS share only (no offsite, nothing immutable). The imaging
/// server is in no job at all.
pub fn demo(now: chrono::DateTime<chrono::Utc>) -> VeeamTenant {
    let at = |hours: i64| {
        (now - chrono::Duration::hours(hours)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let repos = vec![
        json!({"id": "9a1c0f6e-0000-4000-8000-000000000001", "name": "Hardened Repository", "type": "LinuxHardened",
               "repository": {"path": "/backups", "makeRecentBackupsImmutableDays": 14}}),
        json!({"id": "9a1c0f6e-0000-4000-8000-000000000002", "name": "Wasabi Offsite", "type": "WasabiCloud",
               "bucket": {"bucketName": "contoso-dental-vbr", "immutability": {"isEnabled": true, "daysCount": 30}}}),
        json!({"id": "9a1c0f6e-0000-4000-8000-000000000003", "name": "Front Office NAS", "type": "Smb",
               "share": {"sharePath": "\\\\nas01\\veeam"}}),
    ];
    let jobs = vec![
        json!({"id": "5b0e-0001", "name": "PMS Server Backup", "type": "Backup", "status": "inactive",
               "lastRun": at(10), "lastResult": "Success", "nextRun": at(-14),
               "repositoryId": "9a1c0f6e-0000-4000-8000-000000000001", "repositoryName": "Hardened Repository", "objectsCount": 1}),
        json!({"id": "5b0e-0002", "name": "PMS Offsite Copy", "type": "BackupCopy", "status": "inactive",
               "lastRun": at(8), "lastResult": "Success", "nextRun": at(-16),
               "repositoryId": "9a1c0f6e-0000-4000-8000-000000000002", "repositoryName": "Wasabi Offsite", "objectsCount": 1}),
        json!({"id": "5b0e-0003", "name": "Workstation Agent Backup", "type": "WindowsAgentBackup", "status": "inactive",
               "lastRun": at(6), "lastResult": "Failed", "nextRun": at(-18),
               "repositoryId": "9a1c0f6e-0000-4000-8000-000000000003", "repositoryName": "Front Office NAS", "objectsCount": 2}),
        json!({"id": "5b0e-0004", "name": "PMS SureBackup", "type": "SureBackup", "status": "inactive",
               "lastRun": at(2400), "lastResult": "Success", "nextRun": null, "objectsCount": 1}),
    ];
    let backups = vec![
        json!({"id": "b-0001", "name": "PMS Server Backup", "jobId": "5b0e-0001", "platformName": "VMware",
               "repositoryId": "9a1c0f6e-0000-4000-8000-000000000001", "creationTime": at(9000)}),
        json!({"id": "b-0002", "name": "PMS Offsite Copy", "jobId": "5b0e-0002", "platformName": "VMware",
               "repositoryId": "9a1c0f6e-0000-4000-8000-000000000002", "creationTime": at(9000)}),
        json!({"id": "b-0003", "name": "Workstation Agent Backup", "jobId": "5b0e-0003", "platformName": "WindowsPhysical",
               "repositoryId": "9a1c0f6e-0000-4000-8000-000000000003", "creationTime": at(9000)}),
    ];
    let objects = vec![
        json!({"id": "o-0001", "name": "CD-SRV-PMS", "type": "VM", "platformName": "VMware", "restorePointsCount": 2}),
        json!({"id": "o-0002", "name": "CD-BILLING-01", "type": "Computer", "platformName": "WindowsPhysical", "restorePointsCount": 1}),
        json!({"id": "o-0003", "name": "CD-DRALVAREZ-LT", "type": "Computer", "platformName": "WindowsPhysical", "restorePointsCount": 1}),
    ];
    let points = vec![
        json!({"id": "rp-0001", "name": "CD-SRV-PMS", "backupId": "b-0001", "creationTime": at(10), "type": "Increment", "platformName": "VMware"}),
        json!({"id": "rp-0002", "name": "CD-SRV-PMS", "backupId": "b-0002", "creationTime": at(8), "type": "Increment", "platformName": "VMware"}),
        json!({"id": "rp-0003", "name": "CD-BILLING-01", "backupId": "b-0003", "creationTime": at(54), "type": "Increment", "platformName": "WindowsPhysical"}),
        json!({"id": "rp-0004", "name": "CD-DRALVAREZ-LT", "backupId": "b-0003", "creationTime": at(20), "type": "Increment", "platformName": "WindowsPhysical"}),
    ];
    let sessions = vec![json!({
        "id": "c0ffee00-0000-4000-8000-000000000001", "name": "PMS SureBackup", "jobId": "5b0e-0004",
        "sessionType": "SureBackup", "creationTime": at(2401), "endTime": at(2400), "state": "Stopped",
        "result": {"result": "Success", "message": "", "isCanceled": false}
    })];
    let tasks = vec![json!({
        "id": "t-0001", "sessionId": "c0ffee00-0000-4000-8000-000000000001", "name": "CD-SRV-PMS",
        "creationTime": at(2401), "endTime": at(2400), "state": "Stopped",
        "result": {"result": "Success", "message": "Heartbeat, ping and application tests passed", "isCanceled": false}
    })];
    let mut lists = BTreeMap::new();
    lists.insert("/api/v1/jobs/states".to_owned(), jobs);
    lists.insert("/api/v1/backups".to_owned(), backups);
    lists.insert("/api/v1/backupObjects".to_owned(), objects);
    lists.insert("/api/v1/restorePoints".to_owned(), points);
    lists.insert(
        "/api/v1/backupInfrastructure/repositories".to_owned(),
        repos,
    );
    lists.insert("/api/v1/sessions".to_owned(), sessions);
    let mut task_map = BTreeMap::new();
    task_map.insert("c0ffee00-0000-4000-8000-000000000001".to_owned(), tasks);
    VeeamTenant {
        username: "CONTOSODENTAL\\svc-auditpack".into(),
        password: "simulator-veeam-password".into(),
        lists,
        tasks: task_map,
        tokens: Arc::default(),
    }
}
