//! NinjaOne (public API v2).
//!
//! Datasets:
//! - `devices`: `GET /v2/devices?pageSize=N&after=<last id>`; a bare JSON array,
//!   paged by the last device id.
//! - `os-patches`: `GET /v2/queries/os-patches?pageSize=N&cursor=<name>`: pending
//!   OS patches, `{cursor:{name,...}, results:[...]}`.
//! - `os-patch-installs`: `GET /v2/queries/os-patch-installs`: installed and
//!   failed OS patches (`status` INSTALLED|FAILED, `installedAt`), same paging.
//! - `antivirus-status`: `GET /v2/queries/antivirus-status`: antivirus product,
//!   state and definition status per device, same paging.
//!
//! Scoping: with `organization_id`, the collector first reads
//! `GET /v2/organization/{id}` (dataset `organization`; a 404 fails the source
//! naming the id) and then asks every list above for that organization's
//! devices only, with NinjaOne's device filter `df=org = <id>`, so every page
//! stored is exactly what the API returned for that organisation. An
//! organization without devices fails the source too (most likely a wrong
//! id). Without `organization_id` the whole account is collected.
//!
//! Rate limit: NinjaOne throttles per API client; the collector holds itself
//! to `requests_per_minute` (default 300) across all datasets and every
//! source of the same instance and client id in the process (one bucket per
//! account, shared by all organisations), and 429s are retried by the shared
//! layer honouring `Retry-After`.
//!
//! Token: `POST {base}/ws/oauth/token` (client credentials, scope `monitoring`).

mod normalise;
pub mod simulate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::scope::{self, ScopeCheck};
use super::{settings, Source};
use crate::collect::auth::{Auth, ClientCredential, ClientCredentials};
use crate::collect::dataset::{fetch_dataset, DatasetRequest};
use crate::collect::paging::{with_param, PageInfo, Pager};
use crate::collect::ratelimit::{shared_limiter, AccountKey, RateLimiter};
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::{Error, Result};
use crate::evidence::SourceReport;
use crate::secret::SecretRef;

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "ninjaone",
    summary: "NinjaOne RMM: devices, pending and installed OS patches, antivirus status (API v2)",
    build,
    normalise: normalise::normalise,
};

/// Dataset names (evidence folders).
pub mod dataset {
    /// Devices.
    pub const DEVICES: &str = "devices";
    /// Pending OS patches.
    pub const OS_PATCHES: &str = "os-patches";
    /// Installed and failed OS patches.
    pub const OS_PATCH_INSTALLS: &str = "os-patch-installs";
    /// Antivirus status per device.
    pub const ANTIVIRUS_STATUS: &str = "antivirus-status";
    /// The organization a scoped source collects (`GET /v2/organization/{id}`).
    pub const ORGANIZATION: &str = "organization";
}

/// Largest page NinjaOne serves.
const PAGE_SIZE: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NinjaConfig {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default = "default_base")]
    base_url: String,
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    /// Requests per minute this tool allows itself against the instance.
    #[serde(default = "default_rpm")]
    requests_per_minute: u32,
    /// Collect only this organization's devices (an MSP's shared instance).
    #[serde(default)]
    organization_id: Option<i64>,
    #[serde(default)]
    #[allow(dead_code)]
    client_secret: Option<RefuseLiteralSecret>,
}

fn default_base() -> String {
    "https://app.ninjarmm.com".into()
}

fn default_rpm() -> u32 {
    300
}

/// The collector for one NinjaOne instance.
pub struct NinjaOne {
    name: String,
    base: String,
    client_id: String,
    secret: SecretRef,
    organization: Option<i64>,
    limit: Arc<RateLimiter>,
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: NinjaConfig = decl.parse()?;
    let secret = settings::secret(
        decl,
        "client_secret",
        c.client_secret_env.as_deref(),
        c.client_secret_file.as_deref(),
    )?;
    let base = settings::base_url(decl, &c.base_url, None)?;
    if c.organization_id.is_some_and(|id| id < 1) {
        return Err(Error::config(format!(
            "[sources.{}]: `organization_id` must be a NinjaOne organization id (1 or more)",
            decl.name
        )));
    }
    let account = AccountKey::new(SOURCE.source_type, &base, &c.client_id);
    Ok(Box::new(NinjaOne {
        name: decl.name.clone(),
        limit: shared_limiter(
            &account,
            c.requests_per_minute.max(1),
            Duration::from_secs(60),
        ),
        base,
        client_id: c.client_id,
        secret,
        organization: c.organization_id,
    }))
}

/// Devices: a bare array; the next page starts after the last id. Only an
/// empty page ends the list: the server may serve fewer than asked on any page.
struct AfterIdPager;

impl Pager for AfterIdPager {
    fn read(&mut self, url: &str, page: &Value) -> std::result::Result<PageInfo, String> {
        let items = page.as_array().ok_or("expected a JSON array of devices")?;
        let next = if items.is_empty() {
            None
        } else {
            let last = items
                .last()
                .and_then(|d| d.get("id"))
                .and_then(Value::as_i64)
                .ok_or("the last device has no numeric `id`")?;
            Some(with_param(url, "after", &last.to_string())?)
        };
        Ok(PageInfo {
            records: items.len(),
            next,
        })
    }
}

/// Queries: `results` plus a named cursor. Only an empty page ends the list.
struct CursorPager;

impl Pager for CursorPager {
    fn read(&mut self, url: &str, page: &Value) -> std::result::Result<PageInfo, String> {
        let items = page
            .get("results")
            .and_then(Value::as_array)
            .ok_or("page has no `results` array")?;
        let next = if items.is_empty() {
            None
        } else {
            let cursor = page
                .get("cursor")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .ok_or("a full page without `cursor.name`")?;
            Some(with_param(url, "cursor", cursor)?)
        };
        Ok(PageInfo {
            records: items.len(),
            next,
        })
    }
}

impl NinjaOne {
    async fn run(&self, ctx: &CollectContext) -> SourceReport {
        let secret = match self.secret.resolve() {
            Ok(s) => s,
            Err(e) => {
                return SourceReport::failed(SOURCE.source_type, format!("client secret: {e}"))
            }
        };
        let auth = ClientCredentials::new(
            ctx.http.inner().clone(),
            format!("{}/ws/oauth/token", self.base),
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), self.client_id.clone()),
                ("scope".into(), "monitoring".into()),
            ],
            ClientCredential::Secret(secret),
            ctx.http.retry(),
        );
        let auth: &dyn Auth = &auth;
        let forbidden = "the API client needs the `monitoring` scope";
        let id = self.organization.map(|o| o.to_string());
        let check = id.as_deref().map(|id| ScopeCheck {
            source: &self.name,
            source_type: SOURCE.source_type,
            dataset: dataset::ORGANIZATION,
            url: format!("{}/v2/organization/{id}", self.base),
            what: "NinjaOne organization",
            id,
            key: "organization_id",
        });
        let scoped = match &check {
            None => None,
            Some(check) => match scope::verify(ctx, check, auth, &[&*self.limit], None).await {
                Ok(Ok(scoped)) => Some(scoped),
                Ok(Err(failed)) => return failed,
                Err(e) => {
                    return crate::collect::finish(
                        SOURCE.source_type,
                        vec![(dataset::ORGANIZATION, Err(e))],
                    )
                }
            },
        };
        let requests: [(&str, String, Box<dyn Pager>); 4] = [
            (
                dataset::DEVICES,
                format!("{}/v2/devices?pageSize={PAGE_SIZE}", self.base),
                Box::new(AfterIdPager),
            ),
            (
                dataset::OS_PATCHES,
                format!("{}/v2/queries/os-patches?pageSize={PAGE_SIZE}", self.base),
                Box::new(CursorPager),
            ),
            (
                dataset::OS_PATCH_INSTALLS,
                format!(
                    "{}/v2/queries/os-patch-installs?pageSize={PAGE_SIZE}",
                    self.base
                ),
                Box::new(CursorPager),
            ),
            (
                dataset::ANTIVIRUS_STATUS,
                format!(
                    "{}/v2/queries/antivirus-status?pageSize={PAGE_SIZE}",
                    self.base
                ),
                Box::new(CursorPager),
            ),
        ];
        let df = self.organization.map(|o| format!("org = {o}"));
        let fetches = requests.into_iter().map(|(name, url, pager)| {
            let df = df.clone();
            async move {
                let url = match &df {
                    None => url,
                    Some(df) => match with_param(&url, "df", df) {
                        Ok(u) => u,
                        Err(e) => {
                            return (
                                name,
                                Ok(crate::evidence::DatasetReport {
                                    status: crate::evidence::DatasetStatus::Failed,
                                    pages: 0,
                                    records: 0,
                                    reason: Some(e),
                                }),
                            )
                        }
                    },
                };
                let req = DatasetRequest {
                    source: &self.name,
                    source_type: SOURCE.source_type,
                    dataset: name,
                    url,
                    pager,
                    auth,
                    limiters: vec![&*self.limit],
                    on_forbidden: forbidden,
                };
                (name, fetch_dataset(&ctx.http, &ctx.evidence, req).await)
            }
        });
        let mut results = crate::collect::join_all(fetches).await;
        if scoped.is_some() {
            results.push((dataset::ORGANIZATION, Ok(scope::checked())));
        }
        let report = crate::collect::finish(SOURCE.source_type, results);
        match (&check, &scoped) {
            (Some(check), Some(scoped)) => {
                scope::fail_if_empty(report, dataset::DEVICES, check, scoped)
            }
            _ => report,
        }
    }
}

impl Collector for NinjaOne {
    fn name(&self) -> &str {
        &self.name
    }
    fn secrets(&self) -> Vec<(&'static str, SecretRef)> {
        vec![("client_secret", self.secret.clone())]
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
    fn after_id_paging() {
        let mut p = AfterIdPager;
        let full = serde_json::json!([{"id": 1}, {"id": 7}]);
        let info = p
            .read("http://h/v2/devices?pageSize=2", &full)
            .expect("page");
        assert_eq!(
            info.next.as_deref(),
            Some("http://h/v2/devices?pageSize=2&after=7")
        );
        // A short page is not the end: the server may cap page sizes.
        let info = p
            .read(
                "http://h/v2/devices?pageSize=2&after=7",
                &serde_json::json!([{"id": 9}]),
            )
            .expect("page");
        assert_eq!(
            info.next.as_deref(),
            Some("http://h/v2/devices?pageSize=2&after=9")
        );
        let info = p
            .read(
                "http://h/v2/devices?pageSize=2&after=9",
                &serde_json::json!([]),
            )
            .expect("page");
        assert!(info.next.is_none());
    }

    #[test]
    fn cursor_paging() {
        let mut p = CursorPager;
        let page = serde_json::json!({"cursor": {"name": "c1"}, "results": [{"id": 1}]});
        let info = p.read("http://h/q?pageSize=1", &page).expect("page");
        assert_eq!(
            info.next.as_deref(),
            Some("http://h/q?pageSize=1&cursor=c1")
        );
        assert!(p
            .read(
                "u",
                &serde_json::json!({"cursor": {"name": "c2"}, "results": []})
            )
            .expect("page")
            .next
            .is_none());
        assert!(p.read("u", &serde_json::json!({"results": {}})).is_err());
    }
}
