//! Veeam Backup & Replication REST API (v1, on the backup server, port 9419).
//!
//! Token: `POST {base}/api/oauth2/token`, the OAuth2 password grant
//! (`grant_type=password`, `username`, `password`). Every request, the token
//! request included, carries `x-api-version` (`api_version`, default
//! `1.1-rev2`).
//!
//! Datasets, each `GET ...?skip=N&limit=M`, answered as
//! `{data: [...], pagination: {total, count, skip, limit}}` and followed
//! until `skip + count` reaches `total`:
//! - `job-states`: `/api/v1/jobs/states` (name, `type`, `status`,
//!   `lastResult`, `lastRun`, `nextRun`, `repositoryId`);
//! - `backups`: `/api/v1/backups` (which job made each backup, in which
//!   repository);
//! - `backup-objects`: `/api/v1/backupObjects` (the machines and workloads
//!   with backups);
//! - `restore-points`: `/api/v1/restorePoints` (per object: `name`,
//!   `backupId`, `creationTime`);
//! - `repositories`: `/api/v1/backupInfrastructure/repositories` (type and
//!   immutability settings);
//! - `surebackup-sessions`: `/api/v1/sessions?typeFilter=SureBackup` (the
//!   `ESessionType` value of the REST reference), and
//!   per session `surebackup-tasks`: `/api/v1/sessions/{id}/taskSessions`
//!   (one task per verified machine, with its result).

mod normalise;
pub mod simulate;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderName;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use super::per_parent::{fetch_per_parent, ParentList};
use super::{settings, Source};
use crate::collect::auth::{Auth, AuthError, TokenCache, TokenEndpoint};
use crate::collect::dataset::{fetch_dataset, DatasetRequest};
use crate::collect::paging::{param, with_param, PageInfo, Pager};
use crate::collect::ratelimit::RateLimiter;
use crate::collect::retry::RetryPolicy;
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::{Error, Result};
use crate::evidence::{DatasetStatus, SourceReport};
use crate::secret::{Secret, SecretRef};

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "veeam",
    summary: "Veeam Backup & Replication REST API: job states, restore points, repositories and immutability, SureBackup",
    build,
    normalise: normalise::normalise,
};

/// Dataset names (evidence folders).
pub mod dataset {
    /// Job states.
    pub const JOB_STATES: &str = "job-states";
    /// Backups (job and repository of each).
    pub const BACKUPS: &str = "backups";
    /// Backup objects.
    pub const BACKUP_OBJECTS: &str = "backup-objects";
    /// Restore points.
    pub const RESTORE_POINTS: &str = "restore-points";
    /// Repositories.
    pub const REPOSITORIES: &str = "repositories";
    /// SureBackup job sessions.
    pub const SUREBACKUP_SESSIONS: &str = "surebackup-sessions";
    /// Task sessions (one per verified machine) of each SureBackup session.
    pub const SUREBACKUP_TASKS: &str = "surebackup-tasks";
}

/// Records asked per page.
const PAGE_SIZE: usize = 200;

/// The session type of SureBackup job sessions (`ESessionType` in the REST
/// reference, revisions 1.2-rev1 and 1.3-rev2; there is no `SureBackupJob`).
pub const SUREBACKUP_SESSION_TYPE: &str = "SureBackup";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VeeamConfig {
    #[serde(rename = "type")]
    _type: String,
    base_url: String,
    username: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    #[serde(default = "default_version")]
    api_version: String,
    #[serde(default = "default_rpm")]
    requests_per_minute: u32,
    #[serde(default)]
    #[allow(dead_code)]
    password: Option<RefuseLiteralSecret>,
}

fn default_version() -> String {
    "1.1-rev2".into()
}

fn default_rpm() -> u32 {
    600
}

/// The collector for one backup server.
pub struct Veeam {
    name: String,
    base: String,
    username: String,
    password: SecretRef,
    version: String,
    limit: RateLimiter,
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: VeeamConfig = decl.parse()?;
    let password = settings::secret(
        decl,
        "password",
        c.password_env.as_deref(),
        c.password_file.as_deref(),
    )?;
    let base = settings::base_url(decl, &c.base_url, Some("https://vbr.example.local:9419"))?;
    let version_ok = c
        .api_version
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')
        && !c.api_version.is_empty();
    if !version_ok {
        return Err(Error::config(format!(
            "[sources.{}]: `api_version` must look like 1.1-rev2",
            decl.name
        )));
    }
    Ok(Box::new(Veeam {
        name: decl.name.clone(),
        base,
        username: c.username,
        password,
        version: c.api_version,
        limit: RateLimiter::new(c.requests_per_minute.max(1), Duration::from_secs(60)),
    }))
}

/// Tokens are renewed this long before they expire.
const EXPIRY_SKEW: Duration = Duration::from_secs(60);

/// The OAuth2 password grant of the backup server, with `x-api-version` on
/// every request.
struct PasswordGrant {
    http: reqwest::Client,
    token_url: String,
    username: String,
    password: Secret,
    version: String,
    retry: RetryPolicy,
    cache: TokenCache,
}

impl PasswordGrant {
    async fn fetch(&self) -> std::result::Result<(Secret, Instant), AuthError> {
        let endpoint = TokenEndpoint {
            url: &self.token_url,
            retry: &self.retry,
            default_ttl: 900,
            block: None,
        };
        endpoint
            .request(
                || {
                    let form = [
                        ("grant_type", "password"),
                        ("username", self.username.as_str()),
                        ("password", self.password.expose()),
                    ];
                    let request = self
                        .http
                        .post(&self.token_url)
                        .header("x-api-version", &self.version)
                        .form(&form);
                    Ok((request, self.password.clone()))
                },
                |status, _, _| {
                    format!(
                        "the token endpoint {} rejected user {} (HTTP {status}); check the user name, password and that the account may use the REST API",
                        self.token_url, self.username
                    )
                },
            )
            .await
    }
}

impl Auth for PasswordGrant {
    fn header(&self) -> BoxFuture<'_, std::result::Result<(HeaderName, Secret), AuthError>> {
        Box::pin(self.cache.bearer(|| self.fetch()))
    }

    fn invalidate(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.cache.clear())
    }

    fn extra_headers(&self) -> Vec<(HeaderName, String)> {
        vec![(
            HeaderName::from_static("x-api-version"),
            self.version.clone(),
        )]
    }
}

/// `data` plus `pagination`; the next page skips what was read until
/// `total`. An empty page ends the list. Every record's `id` is kept when
/// `ids` is set (for the per-session task requests).
struct SkipLimitPager {
    ids: Option<Arc<Mutex<Vec<String>>>>,
}

impl Pager for SkipLimitPager {
    fn read(&mut self, url: &str, page: &Value) -> std::result::Result<PageInfo, String> {
        let items = page
            .get("data")
            .and_then(Value::as_array)
            .ok_or("page has no `data` array")?;
        if let Some(ids) = &self.ids {
            if let Ok(mut ids) = ids.lock() {
                ids.extend(
                    items
                        .iter()
                        .filter_map(|r| r.get("id").and_then(Value::as_str))
                        .map(str::to_owned),
                );
            }
        }
        let skip = page
            .pointer("/pagination/skip")
            .and_then(Value::as_u64)
            .or_else(|| param(url, "skip").and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        let total = page.pointer("/pagination/total").and_then(Value::as_u64);
        let read = skip + items.len() as u64;
        let next = match total {
            _ if items.is_empty() => None,
            Some(total) if read >= total => None,
            _ => Some(with_param(url, "skip", &read.to_string())?),
        };
        Ok(PageInfo {
            records: items.len(),
            next,
        })
    }
}

/// Whether a session id can go into a URL path as it is.
fn safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

impl Veeam {
    fn request<'a>(
        &'a self,
        dataset: &'a str,
        url: String,
        ids: Option<Arc<Mutex<Vec<String>>>>,
        auth: &'a dyn Auth,
    ) -> DatasetRequest<'a> {
        DatasetRequest {
            source: &self.name,
            source_type: SOURCE.source_type,
            dataset,
            url,
            pager: Box::new(SkipLimitPager { ids }),
            auth,
            limiters: vec![&self.limit],
            on_forbidden: "the user needs a Veeam Backup Viewer (or higher) role",
        }
    }

    async fn run(&self, ctx: &CollectContext) -> SourceReport {
        let password = match self.password.resolve() {
            Ok(s) => s,
            Err(e) => return SourceReport::failed(SOURCE.source_type, format!("password: {e}")),
        };
        let auth = PasswordGrant {
            http: ctx.http.inner().clone(),
            token_url: format!("{}/api/oauth2/token", self.base),
            username: self.username.clone(),
            password,
            version: self.version.clone(),
            retry: ctx.http.retry(),
            cache: TokenCache::new(EXPIRY_SKEW),
        };
        let auth: &dyn Auth = &auth;
        let lists = [
            (dataset::JOB_STATES, "/api/v1/jobs/states"),
            (dataset::BACKUPS, "/api/v1/backups"),
            (dataset::BACKUP_OBJECTS, "/api/v1/backupObjects"),
            (dataset::RESTORE_POINTS, "/api/v1/restorePoints"),
            (
                dataset::REPOSITORIES,
                "/api/v1/backupInfrastructure/repositories",
            ),
        ];
        let mut results = Vec::new();
        for (name, path) in lists {
            let url = format!("{}{path}?skip=0&limit={PAGE_SIZE}", self.base);
            let req = self.request(name, url, None, auth);
            let got = fetch_dataset(&ctx.http, &ctx.evidence, req).await;
            let fatal = got.is_err();
            results.push((name, got));
            if fatal {
                break;
            }
        }
        if results.iter().any(|(_, r)| r.is_err()) {
            return crate::collect::finish(SOURCE.source_type, results);
        }
        let ids = Arc::new(Mutex::new(Vec::new()));
        let url = format!(
            "{}/api/v1/sessions?typeFilter={SUREBACKUP_SESSION_TYPE}&skip=0&limit={PAGE_SIZE}",
            self.base
        );
        let req = self.request(dataset::SUREBACKUP_SESSIONS, url, Some(ids.clone()), auth);
        let sessions = fetch_dataset(&ctx.http, &ctx.evidence, req).await;
        let sessions_ok = matches!(&sessions, Ok(r) if r.status == DatasetStatus::Complete);
        results.push((dataset::SUREBACKUP_SESSIONS, sessions));
        let ids: Vec<String> = ids.lock().map(|i| i.clone()).unwrap_or_default();
        let (ids, hostile): (Vec<String>, Vec<String>) = ids.into_iter().partition(|i| safe_id(i));
        let requests: Vec<DatasetRequest> = ids
            .iter()
            .map(|id| {
                let url = format!(
                    "{}/api/v1/sessions/{id}/taskSessions?skip=0&limit={PAGE_SIZE}",
                    self.base
                );
                self.request(dataset::SUREBACKUP_TASKS, url, None, auth)
            })
            .collect();
        let not_requested = (!hostile.is_empty()).then(|| {
            format!(
                "{} session id(s) are not ids and were not requested",
                hostile.len()
            )
        });
        let session_list = if sessions_ok {
            ParentList::Complete
        } else {
            ParentList::Incomplete("no complete SureBackup session list to ask for tasks")
        };
        let tasks = fetch_per_parent(ctx, requests, not_requested, session_list).await;
        results.push((dataset::SUREBACKUP_TASKS, tasks));
        crate::collect::finish(SOURCE.source_type, results)
    }
}

impl Collector for Veeam {
    fn name(&self) -> &str {
        &self.name
    }
    fn secrets(&self) -> Vec<(&'static str, SecretRef)> {
        vec![("password", self.password.clone())]
    }
    fn source_type(&self) -> &'static str {
        SOURCE.source_type
    }
    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> BoxFuture<'a, SourceReport> {
        Box::pin(self.run(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_limit_paging_follows_the_total() {
        let mut p = SkipLimitPager { ids: None };
        let page = serde_json::json!({"data": [{"id": "a"}, {"id": "b"}], "pagination": {"total": 3, "count": 2, "skip": 0, "limit": 2}});
        let info = p
            .read("http://h/api/v1/backups?skip=0&limit=2", &page)
            .expect("page");
        assert_eq!(
            info.next.as_deref(),
            Some("http://h/api/v1/backups?limit=2&skip=2")
        );
        let last = serde_json::json!({"data": [{"id": "c"}], "pagination": {"total": 3, "count": 1, "skip": 2, "limit": 2}});
        assert!(p.read("u", &last).expect("page").next.is_none());
        let empty = serde_json::json!({"data": [], "pagination": {"total": 9}});
        assert!(p.read("u", &empty).expect("page").next.is_none());
        assert!(p.read("u", &serde_json::json!({"items": []})).is_err());
        assert!(safe_id("3f2a-00aa"));
        assert!(!safe_id("../x"));
    }
}
