//! Datto BCDR (SIRIS, ALTO and Cloud SIRIS appliances), Datto REST API v1.
//!
//! Datasets:
//! - `devices`: the organisation's appliances. With `serial_numbers` set,
//!   `GET {base}/v1/bcdr/device/{serialNumber}` for each (nothing of another
//!   client's appliances is ever fetched); without it, the paged list
//!   `GET {base}/v1/bcdr/device?_page=N&_perPage=100`
//!   (`{pagination: {page, perPage, totalPages, count}, items: [...]}`),
//!   which is only right for an API key that sees this organisation alone.
//! - `assets`: `GET {base}/v1/bcdr/device/{serialNumber}/asset` per
//!   appliance: the agents and shares it protects with `lastSnapshot`,
//!   `latestOffsite`, `isPaused`, `isArchived`, `lastScreenshotAttempt`,
//!   `lastScreenshotAttemptStatus` and recent `backups` with their local and
//!   screenshot verification. Pages in the `items` shape are followed like
//!   the device list; a bare array is one page.
//!
//! Authentication: HTTP Basic with the REST API public key as user name and
//! the secret key as password (Datto partner portal, Admin, Integrations,
//! REST API keys). Datto allows about 120 requests per minute per key; the
//! collector holds itself to `requests_per_minute` (default 100).

mod normalise;
pub mod simulate;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;
use serde_json::Value;

use super::per_parent::{fetch_per_parent, ParentList};
use super::{settings, Source};
use crate::collect::auth::{ApiKey, Auth};
use crate::collect::dataset::{fetch_pages, merge_reports, DatasetRequest, PageCounter};
use crate::collect::paging::{param, with_param, PageInfo, Pager};
use crate::collect::ratelimit::RateLimiter;
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::{Error, Result};
use crate::evidence::{DatasetStatus, SourceReport};
use crate::secret::{Secret, SecretRef};

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "datto-bcdr",
    summary: "Datto BCDR appliances: protected agents and shares, snapshots, offsite copies, screenshot verification",
    build,
    normalise: normalise::normalise,
};

/// Dataset names (evidence folders).
pub mod dataset {
    /// Appliances.
    pub const DEVICES: &str = "devices";
    /// Protected agents and shares per appliance.
    pub const ASSETS: &str = "assets";
}

/// Page size asked of the device list.
const PAGE_SIZE: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BcdrConfig {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default = "default_base")]
    base_url: String,
    public_key: String,
    secret_key_env: Option<String>,
    secret_key_file: Option<PathBuf>,
    /// The organisation's appliances; without it, every appliance the key sees.
    #[serde(default)]
    serial_numbers: Option<Vec<String>>,
    #[serde(default = "default_rpm")]
    requests_per_minute: u32,
    #[serde(default)]
    #[allow(dead_code)]
    secret_key: Option<RefuseLiteralSecret>,
}

fn default_base() -> String {
    "https://api.datto.com".into()
}

fn default_rpm() -> u32 {
    100
}

/// The collector for one Datto BCDR partner key.
pub struct DattoBcdr {
    name: String,
    base: String,
    public_key: String,
    secret: SecretRef,
    serials: Option<Vec<String>>,
    limit: RateLimiter,
}

/// Whether `serial` can be put in a URL path as it is.
fn safe_serial(serial: &str) -> bool {
    !serial.is_empty()
        && serial.len() <= 64
        && serial
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: BcdrConfig = decl.parse()?;
    let secret = settings::secret(
        decl,
        "secret_key",
        c.secret_key_env.as_deref(),
        c.secret_key_file.as_deref(),
    )?;
    let base = settings::base_url(decl, &c.base_url, None)?;
    if let Some(bad) = c.serial_numbers.iter().flatten().find(|s| !safe_serial(s)) {
        return Err(Error::config(format!(
            "[sources.{}]: `serial_numbers` holds {:?}, which is not a serial number (letters, digits, - and _)",
            decl.name,
            bad.escape_debug().to_string()
        )));
    }
    Ok(Box::new(DattoBcdr {
        name: decl.name.clone(),
        base,
        public_key: c.public_key,
        secret,
        serials: c.serial_numbers,
        limit: RateLimiter::new(c.requests_per_minute.max(1), Duration::from_secs(60)),
    }))
}

/// Datto's list shape: `items` plus a `pagination` object; the next page is
/// `_page + 1` until `totalPages`. A bare array is a single page. Every
/// record's `serialNumber` is kept (for the asset requests).
struct BcdrPager {
    serials: Arc<Mutex<Vec<String>>>,
}

impl Pager for BcdrPager {
    fn read(&mut self, url: &str, page: &Value) -> std::result::Result<PageInfo, String> {
        let (items, next) = match page {
            Value::Array(items) => (items, None),
            Value::Object(_)
                if page.get("items").is_none() && page.get("serialNumber").is_some() =>
            {
                // One device by serial number.
                self.keep(std::slice::from_ref(page));
                return Ok(PageInfo {
                    records: 1,
                    next: None,
                });
            }
            Value::Object(_) => {
                let items = page
                    .get("items")
                    .and_then(Value::as_array)
                    .ok_or("page has no `items` array")?;
                let pagination = page
                    .get("pagination")
                    .ok_or("page has no `pagination` object")?;
                let current = pagination
                    .get("page")
                    .and_then(Value::as_u64)
                    .or_else(|| param(url, "_page").and_then(|p| p.parse().ok()))
                    .unwrap_or(1);
                let total = pagination
                    .get("totalPages")
                    .and_then(Value::as_u64)
                    .ok_or("`pagination` has no `totalPages`")?;
                let next = if current < total && !items.is_empty() {
                    Some(with_param(url, "_page", &(current + 1).to_string())?)
                } else {
                    None
                };
                (items, next)
            }
            _ => return Err("expected a JSON object or array".into()),
        };
        self.keep(items);
        Ok(PageInfo {
            records: items.len(),
            next,
        })
    }
}

impl BcdrPager {
    fn keep(&self, items: &[Value]) {
        if let Ok(mut serials) = self.serials.lock() {
            serials.extend(
                items
                    .iter()
                    .filter_map(|d| d.get("serialNumber").and_then(Value::as_str))
                    .map(str::to_owned),
            );
        }
    }
}

impl DattoBcdr {
    fn request<'a>(
        &'a self,
        dataset: &'a str,
        url: String,
        pager: Box<dyn Pager + 'a>,
        auth: &'a dyn Auth,
    ) -> DatasetRequest<'a> {
        DatasetRequest {
            source: &self.name,
            source_type: SOURCE.source_type,
            dataset,
            url,
            pager,
            auth,
            limiters: vec![&self.limit],
            on_forbidden:
                "the REST API key must be enabled for the BCDR API in the Datto partner portal",
        }
    }

    async fn run(&self, ctx: &CollectContext) -> SourceReport {
        let secret = match self.secret.resolve() {
            Ok(s) => s,
            Err(e) => return SourceReport::failed(SOURCE.source_type, format!("secret key: {e}")),
        };
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.public_key,
            secret.expose()
        ));
        let auth = ApiKey {
            header: AUTHORIZATION,
            key: Secret::new(format!("Basic {basic}")),
        };
        let auth: &dyn Auth = &auth;
        let found = Arc::new(Mutex::new(Vec::new()));
        let devices_counter = PageCounter::default();
        let urls: Vec<String> = match &self.serials {
            Some(serials) => serials
                .iter()
                .map(|s| format!("{}/v1/bcdr/device/{s}", self.base))
                .collect(),
            None => vec![format!(
                "{}/v1/bcdr/device?_page=1&_perPage={PAGE_SIZE}",
                self.base
            )],
        };
        let mut parts = Vec::new();
        for url in urls {
            let pager = Box::new(BcdrPager {
                serials: found.clone(),
            });
            let req = self.request(dataset::DEVICES, url, pager, auth);
            match fetch_pages(&ctx.http, &ctx.evidence, req, &devices_counter).await {
                Ok(f) => parts.push(f.report),
                Err(e) => {
                    return crate::collect::finish(
                        SOURCE.source_type,
                        vec![
                            (dataset::DEVICES, Err(e.clone())),
                            (dataset::ASSETS, Err(e)),
                        ],
                    )
                }
            }
        }
        let devices = merge_reports(&parts);
        let mut serials: Vec<String> = found.lock().map(|s| s.clone()).unwrap_or_default();
        serials.sort();
        serials.dedup();
        let (serials, hostile): (Vec<String>, Vec<String>) =
            serials.into_iter().partition(|s| safe_serial(s));
        let requests: Vec<DatasetRequest> = serials
            .iter()
            .map(|serial| {
                let pager = Box::new(BcdrPager {
                    serials: Arc::new(Mutex::new(Vec::new())),
                });
                let url = format!("{}/v1/bcdr/device/{serial}/asset", self.base);
                self.request(dataset::ASSETS, url, pager, auth)
            })
            .collect();
        let not_requested = (!hostile.is_empty()).then(|| {
            format!(
                "{} appliance serial number(s) are not plain serial numbers and were not requested",
                hostile.len()
            )
        });
        // No appliance at all in a complete list: an empty, complete asset
        // list (the checks treat a product with nothing protected as unproven).
        let appliances = if devices.status == DatasetStatus::Complete {
            ParentList::Complete
        } else {
            ParentList::Incomplete("no appliance list to ask for assets")
        };
        let assets = fetch_per_parent(ctx, requests, not_requested, appliances).await;
        crate::collect::finish(
            SOURCE.source_type,
            vec![(dataset::DEVICES, Ok(devices)), (dataset::ASSETS, assets)],
        )
    }
}

impl Collector for DattoBcdr {
    fn name(&self) -> &str {
        &self.name
    }
    fn secrets(&self) -> Vec<(&'static str, SecretRef)> {
        vec![("secret_key", self.secret.clone())]
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
    fn pages_until_total_pages() {
        let serials = Arc::new(Mutex::new(Vec::new()));
        let mut p = BcdrPager {
            serials: serials.clone(),
        };
        let page = serde_json::json!({
            "pagination": {"page": 1, "perPage": 1, "totalPages": 2, "count": 2},
            "items": [{"serialNumber": "A1"}]
        });
        let info = p
            .read("http://h/v1/bcdr/device?_page=1&_perPage=1", &page)
            .expect("page");
        assert_eq!(
            info.next.as_deref(),
            Some("http://h/v1/bcdr/device?_perPage=1&_page=2")
        );
        let last = serde_json::json!({
            "pagination": {"page": 2, "perPage": 1, "totalPages": 2, "count": 2},
            "items": [{"serialNumber": "B2"}]
        });
        assert!(p.read("u", &last).expect("page").next.is_none());
        assert_eq!(*serials.lock().expect("lock"), ["A1", "B2"]);
        assert!(p.read("u", &serde_json::json!({"items": []})).is_err());
        assert!(p
            .read("u", &serde_json::json!([]))
            .expect("array")
            .next
            .is_none());
    }

    #[test]
    fn serial_numbers_must_be_plain() {
        assert!(safe_serial("A1B2-C3_d"));
        assert!(!safe_serial("../../x"));
        assert!(!safe_serial("a b"));
        assert!(!safe_serial(""));
    }
}
