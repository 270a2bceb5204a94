//! The spec engine: any RMM or backup product whose REST API a spec file
//! describes (see [`spec`] for the format), with no code of its own. This
//! module is the `rmm-spec` source and the collector every spec-driven
//! source shares; `backup-spec` ([`super::backup_spec`]) is the same
//! collector with the backup mapping.
//!
//! Config (`[sources.<name>]`):
//! - `type = "rmm-spec"` (or `"backup-spec"`) with `spec = "<embedded id>"`
//!   or `spec_file = "path"` (a user spec, relative to the config file), or
//!   `type = "<embedded id>"` (e.g. `tactical-rmm`, `acronis-cyber-protect`);
//! - `base_url`;
//! - credentials by the spec's auth style: `api_key_env`/`api_key_file`
//!   (api-key), `token_env`/`token_file` (bearer), `client_id` plus
//!   `client_secret_env`/`client_secret_file` (oauth2 client credentials);
//! - `requests_per_minute` (overrides the spec's);
//! - `scope` (text or number): one organisation of a shared account, for
//!   specs with a `[scope]` table (Tactical RMM: a client id). The id replaces
//!   `{scope}` in endpoint paths and `query` values; the spec's
//!   `scope.verify` path is read first (dataset `scope`; a 404 fails the
//!   source naming the id), and a scope whose device list is empty fails it
//!   too. Without `scope` the whole account is collected.
//!
//! The rate limit is one bucket per account (base URL and credential
//! identity, hashed), shared by every source of that account in the process.
//!
//! The spec's text is stored as the run's first evidence of the source
//! (dataset `spec`), so a run can be re-normalised from its folder alone and
//! an auditor sees exactly which mapping produced the facts.

pub mod backup_map;
pub(crate) mod normalise;
pub mod simulate;
pub mod spec;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderName;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::scope::{self as scoping, ScopeCheck};
use super::Source;
use crate::collect::auth::{ApiKey, Auth, ClientCredential, ClientCredentials};
use crate::collect::dataset::{fetch_dataset_with, DatasetRequest, FetchOptions};
use crate::collect::paging::{with_param, GenericPager};
use crate::collect::paging::{PageInfo, Pager};
use crate::collect::ratelimit::{shared_limiter, AccountKey, RateLimiter};
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::{Error, Result};
use crate::evidence::{DatasetReport, DatasetStatus, PageMeta, SourceReport};
use crate::secret::{Secret, SecretRef};
use spec::{AuthSpec, ClientAuth, Spec, SpecKind};

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "rmm-spec",
    summary: "any RMM described by a spec file (collectors/rmm/*.toml or your own)",
    build: build_rmm,
    normalise: normalise::normalise,
};

/// The dataset holding the spec itself.
pub const SPEC_DATASET: &str = "spec";

/// The dataset holding the scope check's answer (`scope.verify`).
pub const SCOPE_DATASET: &str = "scope";

/// Largest user spec file read.
const MAX_SPEC_FILE: u64 = 256 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecSourceConfig {
    #[serde(rename = "type")]
    source_type: String,
    #[serde(default)]
    spec: Option<String>,
    #[serde(default)]
    spec_file: Option<PathBuf>,
    base_url: String,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    api_key_file: Option<PathBuf>,
    #[serde(default)]
    token_env: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret_env: Option<String>,
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
    #[serde(default)]
    requests_per_minute: Option<u32>,
    #[serde(default)]
    scope: Option<ScopeValue>,
    #[serde(default)]
    #[allow(dead_code)]
    api_key: Option<RefuseLiteralSecret>,
    #[serde(default)]
    #[allow(dead_code)]
    token: Option<RefuseLiteralSecret>,
    #[serde(default)]
    #[allow(dead_code)]
    client_secret: Option<RefuseLiteralSecret>,
}

/// `scope = "abc"` or `scope = 42`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeValue {
    Text(String),
    Number(i64),
}

enum Credentials {
    ApiKey(SecretRef),
    Bearer(SecretRef),
    Client { id: String, secret: SecretRef },
}

/// A collector driven by a spec.
pub struct SpecCollector {
    name: String,
    source_type: &'static str,
    base: String,
    spec: Spec,
    spec_text: String,
    spec_origin: String,
    credentials: Credentials,
    scope: Option<String>,
    requests_per_minute: u32,
}

/// The kind of the embedded spec `source_type` names, if it names one (so
/// the source of that kind can build it).
pub fn embedded_kind(source_type: &str) -> Option<SpecKind> {
    spec::embedded_spec(source_type).map(|e| e.spec.kind)
}

fn build_rmm(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    build(decl, SpecKind::Rmm)
}

/// Build a collector for a `rmm-spec` / `backup-spec` source (`kind` says
/// which) or a source whose type is an embedded spec id of that kind.
///
/// # Errors
/// On an invalid source config or spec (the message names the spec file,
/// line and key), or a spec of the other kind.
pub fn build(decl: &SourceDecl, kind: SpecKind) -> Result<Box<dyn Collector>> {
    let c: SpecSourceConfig = decl.parse()?;
    let at = |m: String| Error::config(format!("[sources.{}]: {m}", decl.name));
    let source_type = kind.source_type();
    let (text, origin) = if c.source_type == source_type {
        match (&c.spec, &c.spec_file) {
            (Some(id), None) => {
                let e = spec::embedded_spec(id).ok_or_else(|| {
                    let known = spec::embedded()
                        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    at(format!("no built-in spec `{id}`; built in: {known}"))
                })?;
                (e.text, e.origin)
            }
            (None, Some(file)) => {
                let path = decl.base_dir().join(file);
                (
                    read_spec_file(&path).map_err(at)?,
                    path.display().to_string(),
                )
            }
            _ => {
                return Err(at(
                    "set exactly one of `spec` (a built-in spec id) and `spec_file` (a path)"
                        .into(),
                ))
            }
        }
    } else {
        if c.spec.is_some() || c.spec_file.is_some() {
            return Err(at(format!(
                "`type = \"{}\"` is a built-in spec; `spec`/`spec_file` only go with `type = \"{source_type}\"`",
                c.source_type
            )));
        }
        let e = spec::embedded_spec(&c.source_type)
            .ok_or_else(|| at(format!("unknown type `{}`", c.source_type)))?;
        (e.text, e.origin)
    };
    let spec = Spec::parse(&text, &origin).map_err(Error::config)?;
    if spec.kind != kind {
        return Err(at(format!(
            "{origin}: the spec `{}` has `kind = \"{}\"`; use it with `type = \"{}\"`",
            spec.id,
            match spec.kind {
                SpecKind::Rmm => "rmm",
                SpecKind::Backup => "backup",
            },
            spec.kind.source_type()
        )));
    }
    let pair = |what: &str, env: &Option<String>, file: &Option<PathBuf>| {
        SecretRef::from_pair(what, env.as_deref(), file.as_deref(), decl.base_dir())
            .map_err(|e| at(format!("{e} (the spec `{}` uses this credential)", spec.id)))
    };
    let credentials = match &spec.auth {
        AuthSpec::ApiKey { .. } => {
            Credentials::ApiKey(pair("api_key", &c.api_key_env, &c.api_key_file)?)
        }
        AuthSpec::Bearer => Credentials::Bearer(pair("token", &c.token_env, &c.token_file)?),
        AuthSpec::Oauth2ClientCredentials { .. } => Credentials::Client {
            id: c.client_id.clone().ok_or_else(|| {
                at("missing `client_id` (the spec uses OAuth2 client credentials)".into())
            })?,
            secret: pair("client_secret", &c.client_secret_env, &c.client_secret_file)?,
        },
    };
    if Url::parse(&c.base_url).is_err() {
        return Err(at("`base_url` is not a URL".into()));
    }
    let rpm = c
        .requests_per_minute
        .or(spec.rate_limit.as_ref().map(|r| r.requests_per_minute))
        .unwrap_or(120)
        .max(1);
    let scope = match c.scope {
        None => None,
        Some(ScopeValue::Number(n)) => Some(n.to_string()),
        Some(ScopeValue::Text(t)) => Some(t),
    };
    match (&scope, &spec.scope) {
        (Some(_), None) => {
            return Err(at(format!(
                "`scope` is set but the spec `{}` has no [scope]: it cannot collect one organisation of an account",
                spec.id
            )))
        }
        (Some(id), Some(_))
            if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) =>
        {
            return Err(at(format!(
                "`scope` \"{}\" must be 1-128 characters without control characters",
                id.escape_debug()
            )))
        }
        (None, Some(_)) if spec.endpoints.iter().any(|e| e.path.contains(spec::SCOPE_PLACEHOLDER)) => {
            return Err(at(format!(
                "the spec `{}` needs `scope` (its endpoint paths hold `{{scope}}`)",
                spec.id
            )))
        }
        _ => {}
    }
    Ok(Box::new(SpecCollector {
        name: decl.name.clone(),
        source_type,
        base: c.base_url.trim_end_matches('/').to_owned(),
        spec,
        spec_text: text,
        spec_origin: origin,
        credentials,
        scope,
        requests_per_minute: rpm,
    }))
}

fn read_spec_file(path: &Path) -> std::result::Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read spec {}: {e}", path.display()))?;
    if !meta.is_file() || meta.len() > MAX_SPEC_FILE {
        return Err(format!(
            "spec {} is not a regular file of at most {MAX_SPEC_FILE} bytes",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read spec {}: {e}", path.display()))
}

/// Percent-encode one path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Wraps a pager, remembering the per-device ids found in each page's records.
struct Collecting<'a> {
    inner: GenericPager,
    id: Option<&'a str>,
    ids: Arc<Mutex<Vec<String>>>,
}

impl Pager for Collecting<'_> {
    fn read(&mut self, url: &str, page: &Value) -> std::result::Result<PageInfo, String> {
        let info = self.inner.read(url, page)?;
        if let Some(ptr) = self.id {
            if let Ok(items) = crate::collect::paging::records_at(page, &self.inner.records) {
                if let Ok(mut ids) = self.ids.lock() {
                    ids.extend(
                        items
                            .iter()
                            .filter_map(|r| r.pointer(ptr))
                            .filter_map(spec::text_of),
                    );
                }
            }
        }
        Ok(info)
    }
}

impl SpecCollector {
    fn auth(&self, ctx: &CollectContext) -> std::result::Result<Box<dyn Auth>, String> {
        Ok(match (&self.credentials, &self.spec.auth) {
            (Credentials::ApiKey(r), AuthSpec::ApiKey { header }) => Box::new(ApiKey {
                header: HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| format!("invalid header name {header}"))?,
                key: r.resolve().map_err(|e| format!("API key: {e}"))?,
            }),
            (Credentials::Bearer(r), _) => {
                let token = r.resolve().map_err(|e| format!("token: {e}"))?;
                Box::new(ApiKey {
                    header: reqwest::header::AUTHORIZATION,
                    key: Secret::new(format!("Bearer {}", token.expose())),
                })
            }
            (
                Credentials::Client { id, secret },
                AuthSpec::Oauth2ClientCredentials {
                    token_path,
                    scope,
                    client_auth,
                },
            ) => {
                let secret = secret
                    .resolve()
                    .map_err(|e| format!("client secret: {e}"))?;
                let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
                let credential = match client_auth {
                    ClientAuth::Post => {
                        form.push(("client_id".to_owned(), id.clone()));
                        ClientCredential::Secret(secret)
                    }
                    ClientAuth::Basic => ClientCredential::Basic {
                        client_id: id.clone(),
                        secret,
                    },
                };
                if let Some(scope) = scope {
                    form.push(("scope".into(), scope.clone()));
                }
                Box::new(ClientCredentials::new(
                    ctx.http.inner().clone(),
                    format!("{}{token_path}", self.base),
                    form,
                    credential,
                    ctx.http.retry(),
                ))
            }
            _ => return Err("credentials do not match the spec's auth style".into()),
        })
    }

    fn store_spec(&self, ctx: &CollectContext) -> std::result::Result<(), String> {
        let doc = serde_json::json!({
            "spec_id": self.spec.id,
            "spec_file": self.spec_origin,
            "sha256": hex::encode(Sha256::digest(self.spec_text.as_bytes())),
            "toml": self.spec_text,
        });
        let body = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
        let url = format!("{}/", self.base);
        ctx.evidence
            .write_page(
                &PageMeta {
                    source: &self.name,
                    source_type: self.source_type,
                    dataset: SPEC_DATASET,
                    page: 1,
                    method: "SPEC",
                    url: &url,
                    http_status: None,
                },
                &body,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The account's shared bucket: base URL plus the credential's identity
    /// (client id, or the key or token itself, hashed).
    fn limiter(&self) -> std::result::Result<Arc<RateLimiter>, String> {
        let identity = match &self.credentials {
            Credentials::Client { id, .. } => id.clone(),
            Credentials::ApiKey(r) | Credentials::Bearer(r) => r
                .resolve()
                .map_err(|e| format!("credential: {e}"))?
                .expose()
                .to_owned(),
        };
        let account = AccountKey::new(self.source_type, &self.base, &identity);
        Ok(shared_limiter(
            &account,
            self.requests_per_minute,
            Duration::from_secs(60),
        ))
    }

    /// `text` with `{scope}` replaced by the id (`encode` for a path segment).
    fn scoped(&self, text: &str, encode: bool) -> Option<String> {
        if !text.contains(spec::SCOPE_PLACEHOLDER) {
            return Some(text.to_owned());
        }
        let id = self.scope.as_deref()?;
        let id = if encode {
            encode_segment(id)
        } else {
            id.to_owned()
        };
        Some(text.replace(spec::SCOPE_PLACEHOLDER, &id))
    }

    async fn run(&self, ctx: &CollectContext) -> SourceReport {
        let auth = match self.auth(ctx) {
            Ok(a) => a,
            Err(e) => return SourceReport::failed(self.source_type, e),
        };
        let limit = match self.limiter() {
            Ok(l) => l,
            Err(e) => return SourceReport::failed(self.source_type, e),
        };
        let limit: &RateLimiter = &limit;
        if let Err(e) = self.store_spec(ctx) {
            return SourceReport::failed(self.source_type, format!("cannot store the spec: {e}"));
        }
        let auth: &dyn Auth = auth.as_ref();
        let what = self
            .spec
            .scope
            .as_ref()
            .map(|s| format!("{} {}", self.spec.name, s.name))
            .unwrap_or_default();
        let check = match (
            &self.scope,
            self.spec.scope.as_ref().and_then(|s| s.verify.as_ref()),
        ) {
            (Some(id), Some(verify)) => self.scoped(verify, true).map(|path| ScopeCheck {
                source: &self.name,
                source_type: self.source_type,
                dataset: SCOPE_DATASET,
                url: format!("{}{path}", self.base),
                what: &what,
                id,
                key: "scope",
            }),
            _ => None,
        };
        let scoped = match &check {
            None => None,
            Some(check) => match scoping::verify(ctx, check, auth, &[limit], None).await {
                Ok(Ok(scoped)) => Some(scoped),
                Ok(Err(failed)) => return failed,
                Err(e) => {
                    return crate::collect::finish(self.source_type, vec![(SCOPE_DATASET, Err(e))])
                }
            },
        };
        let mut results: Vec<(
            &str,
            std::result::Result<DatasetReport, crate::collect::auth::AuthError>,
        )> = Vec::new();
        let mut ids: std::collections::BTreeMap<&str, Arc<Mutex<Vec<String>>>> =
            std::collections::BTreeMap::new();
        results.push((
            SPEC_DATASET,
            Ok(DatasetReport {
                status: DatasetStatus::Complete,
                pages: 1,
                records: 1,
                reason: None,
            }),
        ));
        if scoped.is_some() {
            results.push((SCOPE_DATASET, Ok(scoping::checked())));
        }
        for e in &self.spec.endpoints {
            let report = match &e.per_device {
                None => {
                    let collected = Arc::new(Mutex::new(Vec::new()));
                    let id = self
                        .spec
                        .endpoints
                        .iter()
                        .find_map(|o| o.per_device.as_ref().filter(|p| p.from == e.dataset))
                        .map(|p| p.id.as_str());
                    ids.insert(&e.dataset, collected.clone());
                    let Some(path) = self.scoped(&e.path, true) else {
                        return SourceReport::failed(
                            self.source_type,
                            format!("endpoint `{}` needs `scope`", e.dataset),
                        );
                    };
                    let mut url = format!("{}{path}", self.base);
                    let query = e
                        .query
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), self.scoped(v, false)?)));
                    for (k, v) in query.chain(e.paging.first_query()) {
                        match with_param(&url, &k, &v) {
                            Ok(u) => url = u,
                            Err(err) => return SourceReport::failed(self.source_type, err),
                        }
                    }
                    let pager = Collecting {
                        inner: GenericPager::new(e.paging.paging(), e.records.clone()),
                        id,
                        ids: collected,
                    };
                    self.fetch(ctx, auth, limit, &e.dataset, url, Box::new(pager), 0)
                        .await
                }
                Some(per) => {
                    let list = ids
                        .get(per.from.as_str())
                        .and_then(|l| l.lock().ok().map(|l| l.clone()))
                        .unwrap_or_default();
                    let from_ok = results.iter().find(|(n, _)| *n == per.from).is_some_and(
                        |(_, r)| matches!(r, Ok(r) if r.status == DatasetStatus::Complete),
                    );
                    self.fetch_per_device(ctx, auth, limit, e, &list, from_ok)
                        .await
                }
            };
            let fatal = report.is_err();
            results.push((&e.dataset, report));
            if fatal {
                break;
            }
        }
        let mut report = crate::collect::finish(self.source_type, results);
        // The stored spec is no evidence of the API: a source whose every
        // endpoint failed (a rejected secret) collected nothing usable.
        let mut fetched = report
            .datasets
            .iter()
            .filter(|(n, _)| n.as_str() != SPEC_DATASET && n.as_str() != SCOPE_DATASET)
            .peekable();
        if fetched.peek().is_some() && fetched.all(|(_, d)| d.status == DatasetStatus::Failed) {
            report.status = crate::evidence::SourceStatus::Failed;
        }
        match (&check, &scoped) {
            (Some(check), Some(scoped)) => {
                scoping::fail_if_empty(report, self.spec.inventory_dataset(), check, scoped)
            }
            _ => report,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch(
        &self,
        ctx: &CollectContext,
        auth: &dyn Auth,
        limit: &RateLimiter,
        dataset: &str,
        url: String,
        pager: Box<dyn Pager + '_>,
        pages_before: usize,
    ) -> std::result::Result<DatasetReport, crate::collect::auth::AuthError> {
        let req = DatasetRequest {
            source: &self.name,
            source_type: self.source_type,
            dataset,
            url,
            pager,
            auth,
            limiters: vec![limit],
            on_forbidden: "the credentials lack permission for this endpoint",
        };
        fetch_dataset_with(
            &ctx.http,
            &ctx.evidence,
            req,
            FetchOptions {
                block: None,
                pages_before,
            },
        )
        .await
    }

    async fn fetch_per_device(
        &self,
        ctx: &CollectContext,
        auth: &dyn Auth,
        limit: &RateLimiter,
        e: &spec::Endpoint,
        devices: &[String],
        from_complete: bool,
    ) -> std::result::Result<DatasetReport, crate::collect::auth::AuthError> {
        let Some((pre, _, post)) = spec::placeholder(&e.path) else {
            return Ok(DatasetReport {
                status: DatasetStatus::Failed,
                pages: 0,
                records: 0,
                reason: Some("the endpoint path has no placeholder".into()),
            });
        };
        let mut total = DatasetReport {
            status: DatasetStatus::Complete,
            pages: 0,
            records: 0,
            reason: None,
        };
        let mut failures = Vec::new();
        let mut unique: Vec<&String> = devices.iter().collect();
        unique.sort();
        unique.dedup();
        for device in unique {
            let mut url = format!("{}{pre}{}{post}", self.base, encode_segment(device));
            for (k, v) in e.paging.first_query() {
                if let Ok(u) = with_param(&url, &k, &v) {
                    url = u;
                }
            }
            let pager = GenericPager::new(e.paging.paging(), e.records.clone());
            let r = self
                .fetch(
                    ctx,
                    auth,
                    limit,
                    &e.dataset,
                    url,
                    Box::new(pager),
                    total.pages,
                )
                .await?;
            total.pages += r.pages;
            total.records += r.records;
            if r.status != DatasetStatus::Complete {
                failures.push(format!(
                    "device {}: {}",
                    device.escape_debug(),
                    r.reason.unwrap_or_default()
                ));
            }
        }
        if !from_complete {
            failures.insert(
                0,
                format!("the device list `{}` is incomplete", per_from(e)),
            );
        }
        if !failures.is_empty() {
            total.status = if total.pages == 0 && !devices.is_empty() {
                DatasetStatus::Failed
            } else {
                DatasetStatus::Partial
            };
            let n = failures.len();
            let first = failures.into_iter().next().unwrap_or_default();
            total.reason = Some(if n > 1 {
                format!("{first}; and {} more", n - 1)
            } else {
                first
            });
        }
        Ok(total)
    }
}

fn per_from(e: &spec::Endpoint) -> &str {
    e.per_device.as_ref().map_or("", |p| p.from.as_str())
}

impl Collector for SpecCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn secrets(&self) -> Vec<(&'static str, SecretRef)> {
        match &self.credentials {
            Credentials::ApiKey(r) => vec![("api_key", r.clone())],
            Credentials::Bearer(r) => vec![("token", r.clone())],
            Credentials::Client { secret, .. } => vec![("client_secret", secret.clone())],
        }
    }
    fn source_type(&self) -> &'static str {
        self.source_type
    }
    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> BoxFuture<'a, SourceReport> {
        Box::pin(self.run(ctx))
    }
}
