//! Datto RMM (API v2).
//!
//! Dataset:
//! - `devices`: `GET /api/v2/account/devices?max=N&page=P`:
//!   `{pageDetails:{count,totalCount,prevPageUrl,nextPageUrl}, devices:[...]}`;
//!   each device carries its `patchManagement` and `antivirus` blocks, so one
//!   list gives inventory, patch state and antivirus state. The next page is
//!   `pageDetails.nextPageUrl`, followed only on the same host.
//!
//! Scoping: with `site_uid`, the collector first reads
//! `GET /api/v2/site/{siteUid}` (dataset `site`; a 404 fails the source naming
//! the uid) and then the site's own device list,
//! `GET /api/v2/site/{siteUid}/devices` (same paging and shape), into
//! `devices`, so every page stored is exactly what Datto returned for that
//! site. A site without devices fails the source too (most likely a wrong
//! uid). Without `site_uid` the whole account is collected.
//!
//! Token: `POST {base}/auth/oauth/token`, password grant, HTTP Basic
//! `public-client:public`, the API key and secret as user name and password.
//!
//! Rate limit: 600 requests per 60 s per account; beyond it Datto answers 429,
//! and a client that keeps going gets its IP address blocked for a while (403).
//! The collector stays under the limit (`requests_per_minute`, default 500,
//! one bucket per account shared by every source of the same API key in the
//! process, so many sites of one account together stay under it),
//! and a 403 after a 429 is waited out (`ip_block_wait_seconds`, at most
//! `ip_block_max_waits` times per request) and otherwise recorded as a block,
//! not as a missing permission. The block is on the IP address, so the memory
//! of 429s is shared by every source of the same API host in the process
//! ([`ThrottleBlock::shared`]): a 403 that one site's source meets after
//! another's 429s is the block too, and so is a 403 from the token endpoint,
//! which is waited out in the same way and, if it persists, reported as the
//! block rather than as a rejected key and secret.

mod auth;
mod normalise;
pub mod simulate;

pub use auth::PasswordGrant;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::scope::{self, ScopeCheck};
use super::{settings, Source};
use crate::collect::dataset::{fetch_dataset_with, DatasetRequest, FetchOptions};
use crate::collect::http::ThrottleBlock;
use crate::collect::paging::{GenericPager, Paging};
use crate::collect::ratelimit::{shared_limiter, AccountKey, RateLimiter};
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::{Error, Result};
use crate::evidence::SourceReport;
use crate::secret::SecretRef;

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "datto-rmm",
    summary: "Datto RMM: devices with patch and antivirus state (API v2)",
    build,
    normalise: normalise::normalise,
};

/// Dataset names (evidence folders).
pub mod dataset {
    /// Devices with their `patchManagement` and `antivirus` blocks.
    pub const DEVICES: &str = "devices";
    /// The site a scoped source collects (`GET /api/v2/site/{siteUid}`).
    pub const SITE: &str = "site";
}

/// Largest page Datto serves.
const PAGE_SIZE: u32 = 250;

/// How long after a 429 a 403 counts as Datto's IP block.
const BLOCK_WINDOW: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DattoConfig {
    #[serde(rename = "type")]
    _type: String,
    base_url: String,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    api_secret_env: Option<String>,
    api_secret_file: Option<PathBuf>,
    #[serde(default = "default_rpm")]
    requests_per_minute: u32,
    #[serde(default = "default_block_wait")]
    ip_block_wait_seconds: u64,
    #[serde(default = "default_block_waits")]
    ip_block_max_waits: u32,
    #[serde(default = "default_page_size")]
    page_size: u32,
    /// Collect only this site's devices (an MSP's shared account).
    #[serde(default)]
    site_uid: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    api_key: Option<RefuseLiteralSecret>,
    #[serde(default)]
    #[allow(dead_code)]
    api_secret: Option<RefuseLiteralSecret>,
}

fn default_rpm() -> u32 {
    500
}
fn default_block_wait() -> u64 {
    60
}
fn default_block_waits() -> u32 {
    5
}
fn default_page_size() -> u32 {
    PAGE_SIZE
}

/// The collector for one Datto RMM account.
pub struct DattoRmm {
    name: String,
    base: String,
    api_key: SecretRef,
    api_secret: SecretRef,
    page_size: u32,
    site: Option<String>,
    requests_per_minute: u32,
    /// Wait per blocked request, and waits per request.
    block_wait: Duration,
    block_max_waits: u32,
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: DattoConfig = decl.parse()?;
    let api_key = settings::secret(
        decl,
        "api_key",
        c.api_key_env.as_deref(),
        c.api_key_file.as_deref(),
    )?;
    let api_secret = settings::secret(
        decl,
        "api_secret",
        c.api_secret_env.as_deref(),
        c.api_secret_file.as_deref(),
    )?;
    let base = settings::base_url(
        decl,
        &c.base_url,
        Some("https://pinotage-api.centrastage.net"),
    )?;
    if !(1..=600).contains(&c.requests_per_minute) {
        return Err(Error::config(format!(
            "[sources.{}]: `requests_per_minute` must be 1..=600 (Datto blocks clients above 600 per minute)",
            decl.name
        )));
    }
    if let Some(uid) = &c.site_uid {
        let valid = !uid.is_empty()
            && uid.len() <= 64
            && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(Error::config(format!(
                "[sources.{}]: `site_uid` \"{}\" is not a Datto site uid (letters, digits and -, as in Setup > Sites)",
                decl.name,
                uid.escape_debug()
            )));
        }
    }
    Ok(Box::new(DattoRmm {
        name: decl.name.clone(),
        base,
        api_key,
        api_secret,
        page_size: c.page_size.clamp(1, PAGE_SIZE),
        site: c.site_uid,
        requests_per_minute: c.requests_per_minute,
        block_wait: Duration::from_secs(c.ip_block_wait_seconds),
        block_max_waits: c.ip_block_max_waits,
    }))
}

impl DattoRmm {
    async fn run(&self, ctx: &CollectContext) -> SourceReport {
        let (key, secret) = match (self.api_key.resolve(), self.api_secret.resolve()) {
            (Ok(k), Ok(s)) => (k, s),
            (Err(e), _) => {
                return SourceReport::failed(SOURCE.source_type, format!("API key: {e}"))
            }
            (_, Err(e)) => {
                return SourceReport::failed(SOURCE.source_type, format!("API secret: {e}"))
            }
        };
        // One bucket per account: the API key identifies it (hashed, never kept).
        let account = AccountKey::new(SOURCE.source_type, &self.base, key.expose());
        let limit: Arc<RateLimiter> =
            shared_limiter(&account, self.requests_per_minute, Duration::from_secs(60));
        // The IP block follows 429s of any source of this API host.
        let block = ThrottleBlock::shared(
            &account,
            self.block_wait,
            self.block_max_waits,
            BLOCK_WINDOW,
        );
        let auth = PasswordGrant::new(
            ctx.http.inner().clone(),
            format!("{}/auth/oauth/token", self.base),
            (key, secret),
            ctx.http.retry(),
            block.clone(),
        );
        let check = self.site.as_deref().map(|uid| ScopeCheck {
            source: &self.name,
            source_type: SOURCE.source_type,
            dataset: dataset::SITE,
            url: format!("{}/api/v2/site/{uid}", self.base),
            what: "Datto RMM site",
            id: uid,
            key: "site_uid",
        });
        let scoped = match &check {
            None => None,
            Some(check) => match scope::verify(ctx, check, &auth, &[&*limit], Some(&block)).await {
                Ok(Ok(scoped)) => Some(scoped),
                Ok(Err(failed)) => return failed,
                Err(e) => {
                    return crate::collect::finish(
                        SOURCE.source_type,
                        vec![(dataset::SITE, Err(e))],
                    )
                }
            },
        };
        let list = match &self.site {
            Some(uid) => format!("{}/api/v2/site/{uid}/devices", self.base),
            None => format!("{}/api/v2/account/devices", self.base),
        };
        let req = DatasetRequest {
            source: &self.name,
            source_type: SOURCE.source_type,
            dataset: dataset::DEVICES,
            url: format!("{list}?max={}&page=0", self.page_size),
            pager: Box::new(GenericPager::new(
                Paging::NextUrl {
                    pointer: "/pageDetails/nextPageUrl".into(),
                },
                "/devices",
            )),
            auth: &auth,
            limiters: vec![&*limit],
            on_forbidden: "the API user needs API access enabled (Setup > Users) and an account-level security level",
        };
        let options = FetchOptions {
            block: Some(&block),
            pages_before: 0,
        };
        let result = fetch_dataset_with(&ctx.http, &ctx.evidence, req, options).await;
        let mut results = vec![(dataset::DEVICES, result)];
        if scoped.is_some() {
            results.push((dataset::SITE, Ok(scope::checked())));
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

impl Collector for DattoRmm {
    fn name(&self) -> &str {
        &self.name
    }
    fn secrets(&self) -> Vec<(&'static str, SecretRef)> {
        vec![
            ("api_key", self.api_key.clone()),
            ("api_secret", self.api_secret.clone()),
        ]
    }
    fn source_type(&self) -> &'static str {
        SOURCE.source_type
    }
    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> BoxFuture<'a, SourceReport> {
        Box::pin(self.run(ctx))
    }
}
