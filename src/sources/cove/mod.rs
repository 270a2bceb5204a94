//! N-able Cove Data Protection, JSON-RPC 2.0 API.
//!
//! One endpoint, `POST {base}/jsonapi` (`https://api.backup.management`):
//! 1. `Login` with `partner`, `username` and the password: the answer carries
//!    a `visa`, the session credential every later call sends in its body
//!    (and every answer renews).
//! 2. `EnumerateAccountStatistics` with `query.PartnerId` = the organisation's
//!    customer partner id (so only its devices are read), `StartRecordNumber`
//!    and `RecordsCount` for paging (until an empty page), and the column
//!    codes in [`COLUMNS`]. Each device comes back as
//!    `{AccountId, Settings: [{"<code>": "<value>"}, ...]}`.
//!
//! Dataset `device-statistics`: one page per call. The `visa` of each answer
//! is replaced by `[redacted]` before the page is stored (it is a live
//! session credential); nothing else is changed. The Login answer is not
//! stored. An expired visa (HTTP 401, or a JSON-RPC error naming the visa)
//! is answered by one new Login.

mod normalise;
pub mod simulate;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{settings, Source};
use crate::collect::http::{Method, PageError};
use crate::collect::ratelimit::RateLimiter;
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::Result;
use crate::evidence::{DatasetReport, DatasetStatus, PageMeta, SourceReport};
use crate::secret::{Secret, SecretRef};

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "cove",
    summary: "N-able Cove Data Protection: per-device last session status, last successful backup, errors (JSON-RPC)",
    build,
    normalise: normalise::normalise,
};

/// Dataset names (evidence folders).
pub mod dataset {
    /// `EnumerateAccountStatistics` pages.
    pub const DEVICE_STATISTICS: &str = "device-statistics";
}

/// Column codes asked for: device name, computer name, account type (`I59`:
/// 1 Backup Manager, 2 Microsoft 365), active data sources, and for the total of all data sources (`D9`) the last session
/// status (`F00`), its error count (`F06`), the last successful session
/// time (`F09`) and the last session time (`F15`), both Unix seconds.
pub const COLUMNS: &[&str] = &[
    "I1", "I18", "I59", "I78", "D9F00", "D9F06", "D9F09", "D9F15",
];

/// Devices asked for per call.
const PAGE_SIZE: usize = 250;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CoveConfig {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default = "default_base")]
    base_url: String,
    /// The partner (company) name the API user logs in to.
    partner: String,
    username: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    /// The organisation's customer partner id: only its devices are read.
    customer_partner_id: u64,
    #[serde(default = "default_rpm")]
    requests_per_minute: u32,
    #[serde(default)]
    #[allow(dead_code)]
    password: Option<RefuseLiteralSecret>,
}

fn default_base() -> String {
    "https://api.backup.management".into()
}

fn default_rpm() -> u32 {
    60
}

/// The collector for one Cove customer.
pub struct Cove {
    name: String,
    url: String,
    partner: String,
    username: String,
    password: SecretRef,
    customer: u64,
    limit: RateLimiter,
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: CoveConfig = decl.parse()?;
    let password = settings::secret(
        decl,
        "password",
        c.password_env.as_deref(),
        c.password_file.as_deref(),
    )?;
    let base = settings::base_url(decl, &c.base_url, None)?;
    Ok(Box::new(Cove {
        name: decl.name.clone(),
        url: format!("{base}/jsonapi"),
        partner: c.partner,
        username: c.username,
        password,
        customer: c.customer_partner_id,
        limit: RateLimiter::new(c.requests_per_minute.max(1), Duration::from_secs(60)),
    }))
}

/// Why a call failed: `expired` when a new Login may help.
struct CallError {
    expired: bool,
    reason: String,
}

/// A JSON-RPC error object's words, if the answer is one.
fn rpc_error(answer: &Value) -> Option<String> {
    let e = answer.get("error")?;
    if e.is_null() {
        return None;
    }
    let code = e.get("code").map(Value::to_string).unwrap_or_default();
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    Some(format!(
        "JSON-RPC error {code}: {}",
        crate::sanitize::terminal_safe(message)
    ))
}

impl Cove {
    async fn call(
        &self,
        ctx: &CollectContext,
        body: &Value,
    ) -> std::result::Result<(u16, Value), CallError> {
        match ctx
            .http
            .send_json(Method::Post(body), &self.url, None, &[&self.limit])
            .await
        {
            Ok((status, _, answer)) => match rpc_error(&answer) {
                Some(reason) => Err(CallError {
                    expired: reason.to_ascii_lowercase().contains("visa"),
                    reason,
                }),
                None => Ok((status, answer)),
            },
            Err(PageError::Failed { status, reason }) => Err(CallError {
                expired: status == Some(401),
                reason,
            }),
            Err(PageError::Auth(e)) => Err(CallError {
                expired: false,
                reason: e.to_string(),
            }),
        }
    }

    async fn login(
        &self,
        ctx: &CollectContext,
        password: &Secret,
    ) -> std::result::Result<Secret, String> {
        let body = json!({
            "jsonrpc": "2.0", "id": "auditpack", "method": "Login",
            "params": {"partner": self.partner, "username": self.username, "password": password.expose()}
        });
        let (_, answer) = self.call(ctx, &body).await.map_err(|e| {
            format!(
                "Login as {} at partner {} failed: {}",
                self.username,
                self.partner,
                e.reason.replace(password.expose(), "[redacted]")
            )
        })?;
        answer
            .get("visa")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| "Login answered without a visa".to_owned())
    }

    async fn run(&self, ctx: &CollectContext) -> SourceReport {
        let password = match self.password.resolve() {
            Ok(s) => s,
            Err(e) => return SourceReport::failed(SOURCE.source_type, format!("password: {e}")),
        };
        let mut visa = match self.login(ctx, &password).await {
            Ok(v) => v,
            Err(e) => {
                return SourceReport::failed(
                    SOURCE.source_type,
                    format!("authentication failed: {e}"),
                )
            }
        };
        let mut pages = 0;
        let mut records = 0;
        let mut relogged = false;
        let mut start = 0;
        let report = loop {
            let body = json!({
                "jsonrpc": "2.0", "id": "auditpack", "visa": visa.expose(),
                "method": "EnumerateAccountStatistics",
                "params": {"query": {
                    "PartnerId": self.customer, "StartRecordNumber": start,
                    "RecordsCount": PAGE_SIZE, "Columns": COLUMNS
                }}
            });
            let (status, mut answer) = match self.call(ctx, &body).await {
                Ok(ok) => ok,
                Err(e) if e.expired && !relogged => {
                    relogged = true;
                    match self.login(ctx, &password).await {
                        Ok(v) => {
                            visa = v;
                            continue;
                        }
                        Err(why) => break (DatasetStatus::Failed, Some(why)),
                    }
                }
                Err(e) => {
                    let reason = if e.expired {
                        format!("{} (the visa expired again after a new Login)", e.reason)
                    } else {
                        e.reason
                    };
                    break (DatasetStatus::Failed, Some(reason));
                }
            };
            if let Some(v) = answer
                .get("visa")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
            {
                visa = Secret::new(v);
            }
            let Some(list) = answer.pointer("/result/result").and_then(Value::as_array) else {
                break (
                    DatasetStatus::Failed,
                    Some("the answer has no `result.result` array of devices".into()),
                );
            };
            let n = list.len();
            if let Some(v) = answer.get_mut("visa") {
                *v = Value::String("[redacted]".into());
            }
            let bytes = answer.to_string().into_bytes();
            let url = format!(
                "{}#EnumerateAccountStatistics?StartRecordNumber={start}",
                self.url
            );
            let meta = PageMeta {
                source: &self.name,
                source_type: SOURCE.source_type,
                dataset: dataset::DEVICE_STATISTICS,
                page: pages + 1,
                method: "POST",
                url: &url,
                http_status: Some(status),
            };
            if let Err(e) = ctx.evidence.write_page(&meta, &bytes) {
                break (
                    DatasetStatus::Failed,
                    Some(format!("page could not be stored: {e}")),
                );
            }
            pages += 1;
            records += n;
            if n == 0 {
                break (DatasetStatus::Complete, None);
            }
            start += n;
        };
        let (status, reason) = report;
        let status = if status == DatasetStatus::Failed && pages > 0 {
            DatasetStatus::Partial
        } else {
            status
        };
        crate::collect::finish(
            SOURCE.source_type,
            vec![(
                dataset::DEVICE_STATISTICS,
                Ok(DatasetReport {
                    status,
                    pages,
                    records,
                    reason,
                }),
            )],
        )
    }
}

impl Collector for Cove {
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
