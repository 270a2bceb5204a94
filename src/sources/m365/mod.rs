//! Microsoft 365: Entra ID and Intune through Microsoft Graph, and Defender
//! for Endpoint through its own API (own host, own token scope).
//!
//! One source is one tenant. Datasets (evidence folders) and the application
//! permission each needs are in [`dataset`] and the README. Every call goes
//! through the shared HTTP layer with `$select` where the endpoint takes it,
//! `$top` at the endpoint's maximum, and the published throttling limits of
//! [`limits`]; nested datasets (group members per group, instances per review,
//! decisions per instance, protection state per device) store one page file
//! per request under one dataset with continuous page numbers.

mod cert;
mod defender;
pub mod export;
mod export_job;
mod fetch;
mod graph;
mod incidents;
mod intune;
pub mod limits;
mod normalise;
pub mod simulate;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Source;
use crate::collect::auth::{ClientCredential, ClientCredentials};
use crate::collect::paging::{ODataPager, SingleObject};
use crate::collect::{BoxFuture, CollectContext, Collector};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::{Error, Result};
use crate::evidence::SourceReport;
use crate::secret::SecretRef;

pub use cert::{certificate_spki, pem_blocks, thumbprint_s256, CertificateCredential};
use fetch::{forbidden, Ctx, FirstPage, Outcome};
use limits::{Buckets, LimitOverrides, Limits};

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "m365",
    summary: "Microsoft 365: Entra ID, Conditional Access, roles, access reviews, Intune devices, Defender for Endpoint, security incidents",
    build,
    normalise: normalise::normalise,
};

/// Dataset names (evidence folders).
pub mod dataset {
    /// Users with sign-in activity (or without, when it is unavailable).
    pub const USERS: &str = "users";
    /// Not a folder: the report entry saying `signInActivity` could not be
    /// read (licence), while users still were.
    pub const SIGN_IN_ACTIVITY: &str = "signInActivity";
    /// MFA and SSPR registration per user.
    pub const REGISTRATION: &str = "userRegistrationDetails";
    /// Conditional Access policies.
    pub const CONDITIONAL_ACCESS: &str = "conditionalAccessPolicies";
    /// The security defaults policy (one object).
    pub const SECURITY_DEFAULTS: &str = "securityDefaults";
    /// Directory role assignments with their principals.
    pub const ROLE_ASSIGNMENTS: &str = "roleAssignments";
    /// Directory role definitions (names, template ids).
    pub const ROLE_DEFINITIONS: &str = "roleDefinitions";
    /// Transitive user members of each group a Conditional Access policy names.
    pub const GROUP_MEMBERS: &str = "groupMembers";
    /// Transitive user members of each group a directory role is assigned to
    /// (role-assignable groups).
    pub const ROLE_GROUP_MEMBERS: &str = "roleGroupMembers";
    /// Intune managed devices.
    pub const MANAGED_DEVICES: &str = "managedDevices";
    /// Windows protection state, one request per Windows device.
    pub const PROTECTION_STATE: &str = "windowsProtectionState";
    /// The Intune export job (creation and status polls) of the `DefenderAgents` report.
    pub const PROTECTION_EXPORT_JOB: &str = "protectionStateExportJob";
    /// The downloaded `DefenderAgents` report (a ZIP archive holding one CSV).
    pub const PROTECTION_EXPORT: &str = "protectionStateExport";
    /// Access review definitions.
    pub const REVIEW_DEFINITIONS: &str = "accessReviewDefinitions";
    /// Instances of every definition.
    pub const REVIEW_INSTANCES: &str = "accessReviewInstances";
    /// Decisions of every instance.
    pub const REVIEW_DECISIONS: &str = "accessReviewDecisions";
    /// Latest Secure Score.
    pub const SECURE_SCORES: &str = "secureScores";
    /// Defender for Endpoint machines.
    pub const DEFENDER_MACHINES: &str = "defenderMachines";
    /// Defender antivirus health per machine.
    pub const DEFENDER_AV: &str = "defenderAvInfo";
    /// Microsoft Defender XDR security incidents with their alerts.
    pub const SECURITY_INCIDENTS: &str = "securityIncidents";
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
    /// Token scope of the Defender for Endpoint API.
    fn defender_scope(self) -> &'static str {
        match self {
            Cloud::Public | Cloud::China => "https://api.securitycenter.microsoft.com/.default",
            Cloud::UsGov => "https://api-gov.securitycenter.microsoft.us/.default",
        }
    }
}

/// How Windows protection state is collected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtectionStateMode {
    /// The Intune `DefenderAgents` export job when there are more than
    /// [`PER_DEVICE_MAX`] Windows devices, one request per device otherwise.
    #[default]
    Auto,
    /// Always the export job (one report for the whole tenant).
    Export,
    /// Always one request per Windows device.
    PerDevice,
    /// Do not collect protection state.
    Off,
}

/// Up to this many Windows devices, `auto` asks each device.
pub const PER_DEVICE_MAX: usize = 100;

/// The largest `$top` the Defender for Endpoint machine list takes (its
/// documented maximum page size).
pub const DEFENDER_MACHINES_MAX_TOP: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct M365Config {
    #[serde(rename = "type")]
    _type: String,
    tenant_id: String,
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    certificate_file: Option<PathBuf>,
    #[serde(default)]
    cloud: Cloud,
    authority_url: Option<String>,
    graph_url: Option<String>,
    defender_url: Option<String>,
    defender_scope: Option<String>,
    #[serde(default)]
    protection_state: ProtectionStateMode,
    export_poll_interval: Option<String>,
    export_timeout: Option<String>,
    defender_page_size: Option<usize>,
    #[serde(default)]
    rate_limits: LimitOverrides,
    #[serde(default)]
    #[allow(dead_code)]
    client_secret: Option<RefuseLiteralSecret>,
}

enum CredentialSource {
    Secret(SecretRef),
    Certificate(PathBuf),
}

/// The collector for one tenant.
pub struct M365 {
    name: String,
    tenant_id: String,
    client_id: String,
    credential: CredentialSource,
    authority: String,
    graph: String,
    defender: Option<(String, String)>,
    protection_state: ProtectionStateMode,
    export_poll: Duration,
    export_timeout: Duration,
    defender_page_size: usize,
    buckets: Buckets,
}

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    let c: M365Config = decl.parse()?;
    let err = |m: String| Error::config(format!("[sources.{}]: {m}", decl.name));
    let credential = match (
        &c.certificate_file,
        &c.client_secret_env,
        &c.client_secret_file,
    ) {
        (Some(file), None, None) => CredentialSource::Certificate(decl.base_dir().join(file)),
        (Some(_), _, _) => {
            return Err(err(
                "give either `certificate_file` or a client secret, not both".into(),
            ))
        }
        (None, env, file) => CredentialSource::Secret(
            SecretRef::from_pair(
                "client_secret",
                env.as_deref(),
                file.as_deref(),
                decl.base_dir(),
            )
            .map_err(|e| err(format!("{e} (or `certificate_file`)")))?,
        ),
    };
    for (key, value) in [("tenant_id", &c.tenant_id), ("client_id", &c.client_id)] {
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(err(format!("`{key}` must be a GUID or domain name")));
        }
    }
    let url = |given: Option<String>, preset: &str| {
        given
            .unwrap_or_else(|| preset.to_owned())
            .trim_end_matches('/')
            .to_owned()
    };
    let duration = |key: &str, given: &Option<String>, default: Duration| match given {
        None => Ok(default),
        Some(text) => limits::parse_duration(text)
            .ok_or_else(|| err(format!("`{key}` = `{text}` is not a duration like \"2s\""))),
    };
    let limits = Limits::with(&c.rate_limits).map_err(err)?;
    let defender_page_size = match c.defender_page_size {
        None => DEFENDER_MACHINES_MAX_TOP,
        Some(n) if (1..=DEFENDER_MACHINES_MAX_TOP).contains(&n) => n,
        Some(n) => {
            return Err(err(format!(
                "`defender_page_size` = {n} is not between 1 and {DEFENDER_MACHINES_MAX_TOP}"
            )))
        }
    };
    Ok(Box::new(M365 {
        name: decl.name.clone(),
        defender: c.defender_url.map(|u| {
            (
                u.trim_end_matches('/').to_owned(),
                c.defender_scope
                    .unwrap_or_else(|| c.cloud.defender_scope().to_owned()),
            )
        }),
        buckets: Buckets::new(&limits, &c.client_id),
        tenant_id: c.tenant_id,
        client_id: c.client_id,
        credential,
        authority: url(c.authority_url, c.cloud.authority()),
        graph: url(c.graph_url, c.cloud.graph()),
        protection_state: c.protection_state,
        export_poll: duration(
            "export_poll_interval",
            &c.export_poll_interval,
            Duration::from_secs(5),
        )?,
        export_timeout: duration(
            "export_timeout",
            &c.export_timeout,
            Duration::from_secs(1800),
        )?,
        defender_page_size,
    }))
}

impl M365 {
    fn credential(&self) -> std::result::Result<ClientCredential, String> {
        match &self.credential {
            CredentialSource::Secret(s) => s
                .resolve()
                .map(ClientCredential::Secret)
                .map_err(|e| format!("client secret: {e}")),
            CredentialSource::Certificate(path) => {
                CertificateCredential::load(path, &self.client_id)
                    .map(|c| ClientCredential::Assertion(c.into_builder()))
            }
        }
    }

    fn token_source(
        &self,
        ctx: &CollectContext,
        credential: ClientCredential,
        scope: String,
    ) -> ClientCredentials {
        ClientCredentials::new(
            ctx.http.inner().clone(),
            format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant_id),
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), self.client_id.clone()),
                ("scope".into(), scope),
            ],
            credential,
            ctx.http.retry(),
        )
    }

    async fn run(&self, ctx: &CollectContext) -> SourceReport {
        let credential = match self.credential() {
            Ok(c) => c,
            Err(e) => return SourceReport::failed(SOURCE.source_type, e),
        };
        let graph_auth =
            self.token_source(ctx, credential.clone(), format!("{}/.default", self.graph));
        let defender_auth = self
            .defender
            .as_ref()
            .map(|(_, scope)| self.token_source(ctx, credential.clone(), scope.clone()));
        let c = Ctx {
            me: self,
            ctx,
            graph: &graph_auth,
        };
        let g = &self.graph;
        let b = &self.buckets;
        let mut tasks: Vec<BoxFuture<'_, Vec<Outcome>>> = vec![
            Box::pin(c.users()),
            Box::pin(async {
                vec![c.simple(
                    dataset::REGISTRATION,
                    format!("{g}/v1.0/reports/authenticationMethods/userRegistrationDetails?$top=999"),
                    Box::new(ODataPager),
                    &b.identity_reports,
                    forbidden::REGISTRATION,
                ).await]
            }),
            Box::pin(c.conditional_access()),
            Box::pin(async {
                vec![c.simple(
                    dataset::SECURITY_DEFAULTS,
                    format!("{g}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy?$select=id,isEnabled"),
                    Box::new(SingleObject),
                    &b.directory,
                    forbidden::SECURITY_DEFAULTS,
                ).await]
            }),
            Box::pin(c.roles()),
            Box::pin(c.devices()),
            Box::pin(c.access_reviews()),
            Box::pin(async {
                vec![
                    c.simple(
                        dataset::SECURE_SCORES,
                        format!("{g}/v1.0/security/secureScores?$top=1"),
                        Box::new(FirstPage),
                        &b.directory,
                        forbidden::SECURE_SCORE,
                    )
                    .await,
                ]
            }),
            Box::pin(c.incidents()),
        ];
        if let (Some(auth), Some((base, _))) = (&defender_auth, &self.defender) {
            let c = &c;
            tasks.push(Box::pin(async move { c.defender(auth, base).await }));
        }
        let results: Vec<Outcome> = crate::collect::join_all(tasks)
            .await
            .into_iter()
            .flatten()
            .collect();
        crate::collect::finish(SOURCE.source_type, results)
    }
}

impl Collector for M365 {
    fn name(&self) -> &str {
        &self.name
    }
    fn secrets(&self) -> Vec<(&'static str, SecretRef)> {
        match &self.credential {
            CredentialSource::Secret(s) => vec![("client_secret", s.clone())],
            CredentialSource::Certificate(path) => {
                vec![("certificate", SecretRef::File(path.clone()))]
            }
        }
    }
    fn source_type(&self) -> &'static str {
        SOURCE.source_type
    }
    fn collect<'a>(&'a self, ctx: &'a CollectContext) -> BoxFuture<'a, SourceReport> {
        Box::pin(self.run(ctx))
    }
}
