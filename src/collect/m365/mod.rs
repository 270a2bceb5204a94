//! Microsoft 365 (Entra ID through Microsoft Graph).
//!
//! Datasets:
//! - `users`: `GET /v1.0/users` with `signInActivity` (User.Read.All,
//!   AuditLog.Read.All; `signInActivity` needs Entra ID P1/P2).
//! - `userRegistrationDetails`: `GET /v1.0/reports/authenticationMethods/userRegistrationDetails`
//!   (AuditLog.Read.All).
//!
//! Rate limits are per source (one source is one tenant): identity reports
//! about 5 requests per 10 s, users 3,500 per 10 s.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::auth::{Auth, ClientCredential, ClientCredentials};
use super::http::{fetch_dataset, DatasetRequest, ODataPager};
use super::ratelimit::RateLimiter;
use super::{BoxFuture, CollectContext, Collector, CollectorKind};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::{Error, Result};
use crate::evidence::SourceReport;
use crate::secret::SecretRef;

/// Registry entry.
pub const KIND: CollectorKind = CollectorKind {
    source_type: "m365",
    summary: "Microsoft 365: Entra ID users, MFA registration (Microsoft Graph)",
    build,
};

/// Dataset names (evidence folders).
pub mod dataset {
    /// Users with sign-in activity.
    pub const USERS: &str = "users";
    /// MFA and SSPR registration per user.
    pub const REGISTRATION: &str = "userRegistrationDetails";
}

/// Which national cloud the tenant lives in.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    /// Commercial and GCC.
    #[default]
    Public,
    /// GCC High.
    UsGov,
    /// Operated by 21Vianet.
    China,
}

impl Cloud {
    fn authority(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::UsGov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }
    fn graph(self) -> &'static str {
        match self {
            Cloud::Public => "https://graph.microsoft.com",
            Cloud::UsGov => "https://graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct M365Config {
    #[serde(rename = "type")]
    _type: String,
    tenant_id: String,
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    #[serde(default)]
    cloud: Cloud,
    authority_url: Option<String>,
    graph_url: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    client_secret: Option<RefuseLiteralSecret>,
}

/// The collector for one tenant.
pub struct M365 {
    name: String,
    tenant_id: String,
    client_id: String,
    secret: SecretRef,
    authority: String,
    graph: String,
    reports_limit: RateLimiter,
    users_limit: RateLimiter,
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: M365Config = decl.parse()?;
    let secret = SecretRef::from_pair(
        "client_secret",
        c.client_secret_env.as_deref(),
        c.client_secret_file.as_deref(),
        decl.base_dir(),
    )
    .map_err(|e| Error::config(format!("[sources.{}]: {e}", decl.name)))?;
    for (key, value) in [("tenant_id", &c.tenant_id), ("client_id", &c.client_id)] {
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(Error::config(format!(
                "[sources.{}]: `{key}` must be a GUID or domain name",
                decl.name
            )));
        }
    }
    let url = |given: Option<String>, preset: &str| {
        given
            .unwrap_or_else(|| preset.to_owned())
            .trim_end_matches('/')
            .to_owned()
    };
    Ok(Box::new(M365 {
        name: decl.name.clone(),
        tenant_id: c.tenant_id,
        client_id: c.client_id,
        secret,
        authority: url(c.authority_url, c.cloud.authority()),
        graph: url(c.graph_url, c.cloud.graph()),
        reports_limit: RateLimiter::new(5, Duration::from_secs(10)),
        users_limit: RateLimiter::new(3_500, Duration::from_secs(10)),
    }))
}

impl M365 {
    async fn run(&self, ctx: &CollectContext) -> SourceReport {
        let secret = match self.secret.resolve() {
            Ok(s) => s,
            Err(e) => return SourceReport::failed(KIND.source_type, format!("client secret: {e}")),
        };
        let auth = ClientCredentials::new(
            ctx.http.inner().clone(),
            format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant_id),
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), self.client_id.clone()),
                ("scope".into(), format!("{}/.default", self.graph)),
            ],
            ClientCredential::Secret(secret),
            ctx.http.retry(),
        );
        let datasets = [
            (
                dataset::USERS,
                format!(
                    "{}/v1.0/users?$select=id,userPrincipalName,displayName,accountEnabled,userType,createdDateTime,signInActivity&$top=999",
                    self.graph
                ),
                &self.users_limit,
                "the app needs User.Read.All and AuditLog.Read.All, and signInActivity needs an Entra ID P1 or P2 licence",
            ),
            (
                dataset::REGISTRATION,
                format!(
                    "{}/v1.0/reports/authenticationMethods/userRegistrationDetails?$top=999",
                    self.graph
                ),
                &self.reports_limit,
                "the app needs AuditLog.Read.All, and the report needs an Entra ID P1 or P2 licence",
            ),
        ];
        let auth: &dyn Auth = &auth;
        let fetches = datasets
            .iter()
            .map(|(name, url, limiter, forbidden)| async move {
                let req = DatasetRequest {
                    source: &self.name,
                    source_type: KIND.source_type,
                    dataset: name,
                    url: url.clone(),
                    pager: Box::new(ODataPager),
                    auth,
                    limiters: vec![limiter],
                    on_forbidden: forbidden,
                };
                (*name, fetch_dataset(&ctx.http, &ctx.evidence, req).await)
            });
        super::finish(KIND.source_type, super::join_all(fetches).await)
    }
}

impl Collector for M365 {
    fn name(&self) -> &str {
        &self.name
    }
    fn source_type(&self) -> &'static str {
        KIND.source_type
    }
    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> BoxFuture<'a, SourceReport> {
        Box::pin(self.run(ctx))
    }
}
