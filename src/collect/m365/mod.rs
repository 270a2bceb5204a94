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
pub mod export;
pub mod limits;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Auth, AuthError, ClientCredential, ClientCredentials};
use super::http::{
    fetch_file, fetch_one, fetch_pages, merge_reports, DatasetRequest, Method, ODataPager,
    PageCounter, PageInfo, Pager, SingleObject,
};
use super::ratelimit::RateLimiter;
use super::{BoxFuture, CollectContext, Collector, CollectorKind};
use crate::config::{RefuseLiteralSecret, SourceDecl};
use crate::error::{Error, Result};
use crate::evidence::{DatasetReport, DatasetStatus, SourceReport};
use crate::secret::SecretRef;

pub use cert::{certificate_spki, pem_blocks, thumbprint_s256, CertificateCredential};
use limits::{Buckets, LimitOverrides, Limits};

/// Registry entry.
pub const KIND: CollectorKind = CollectorKind {
    source_type: "m365",
    summary: "Microsoft 365: Entra ID, Conditional Access, roles, access reviews, Intune devices, Defender for Endpoint",
    build,
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
    }))
}

/// What a 403 most likely means, per dataset.
mod forbidden {
    pub const USERS: &str =
        "the app needs User.Read.All (and AuditLog.Read.All for sign-in activity)";
    pub const SIGN_IN: &str = "signInActivity needs an Entra ID P1 or P2 licence in the tenant and AuditLog.Read.All; users were collected without it";
    pub const REGISTRATION: &str =
        "the app needs AuditLog.Read.All, and the report needs an Entra ID P1 or P2 licence";
    pub const CONDITIONAL_ACCESS: &str =
        "the app needs Policy.Read.All, and Conditional Access needs an Entra ID P1 licence";
    pub const SECURITY_DEFAULTS: &str = "the app needs Policy.Read.All";
    pub const ROLES: &str = "the app needs RoleManagement.Read.Directory";
    pub const GROUPS: &str = "the app needs GroupMember.Read.All to resolve group members";
    pub const DEVICES: &str =
        "the app needs DeviceManagementManagedDevices.Read.All, and the tenant an Intune licence";
    pub const EXPORT: &str = "the app needs DeviceManagementManagedDevices.Read.All and DeviceManagementConfiguration.Read.All for Intune reports";
    pub const REVIEWS: &str =
        "the app needs AccessReview.Read.All, and access reviews need Entra ID P2 or ID Governance";
    pub const SECURE_SCORE: &str = "the app needs SecurityEvents.Read.All";
    pub const DEFENDER: &str = "the app needs the WindowsDefenderATP permission Machine.Read.All, and the tenant a Defender for Endpoint licence";
}

/// Object ids (GUIDs) only: ids read from one answer go into the next URL.
fn is_object_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Ids of export jobs (`DefenderAgents_<guid>`).
fn is_job_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An OData pager that also hands every record to `F`.
struct Capture<F>(F);

impl<F: FnMut(&Value) + Send> Pager for Capture<F> {
    fn read(&mut self, url: &str, page: &Value) -> std::result::Result<PageInfo, String> {
        let info = ODataPager.read(url, page)?;
        for record in page
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            (self.0)(record);
        }
        Ok(info)
    }
}

/// Only the first page (e.g. `secureScores?$top=1`: later pages are history).
struct FirstPage;

impl Pager for FirstPage {
    fn read(&mut self, url: &str, page: &Value) -> std::result::Result<PageInfo, String> {
        let info = ODataPager.read(url, page)?;
        Ok(PageInfo {
            records: info.records,
            next: None,
        })
    }
}

type Outcome = (&'static str, std::result::Result<DatasetReport, AuthError>);

/// A dataset fetched per parent object is only as complete as its parents'
/// list: a parent failing on credentials fails it the same way, and a parent
/// that is not complete makes it partial (or failed, when nothing was fetched).
fn after_parent(
    parent: &Outcome,
    child: std::result::Result<DatasetReport, AuthError>,
) -> std::result::Result<DatasetReport, AuthError> {
    let parent_report = match &parent.1 {
        Err(e) => return Err(e.clone()),
        Ok(r) => r,
    };
    let child = child?;
    if parent_report.status == DatasetStatus::Complete {
        return Ok(child);
    }
    let note = DatasetReport {
        status: DatasetStatus::Failed,
        pages: 0,
        records: 0,
        reason: Some(format!(
            "its parent dataset {} is {}",
            parent.0, parent_report.status
        )),
    };
    Ok(merge_reports(&[child, note]))
}

/// Why an export job ended before its report could be downloaded.
enum JobStop {
    /// Credentials failed: fatal for the source.
    Auth(AuthError),
    /// The job could not be created, polled or completed.
    Failed {
        /// HTTP status of the refused request, if one was refused.
        status: Option<u16>,
        /// What happened, for `run.json`.
        reason: String,
    },
}

impl JobStop {
    fn failed(reason: String) -> JobStop {
        JobStop::Failed {
            status: None,
            reason,
        }
    }

    /// The answer of one job request; `step` names it in the reason.
    fn check(
        got: std::result::Result<std::result::Result<Value, (Option<u16>, String)>, AuthError>,
        step: &str,
    ) -> std::result::Result<Value, JobStop> {
        match got {
            Err(e) => Err(JobStop::Auth(e)),
            Ok(Err((status, reason))) => Err(JobStop::Failed {
                status,
                reason: format!("{step} failed: {reason}"),
            }),
            Ok(Ok(value)) => Ok(value),
        }
    }
}

/// The two export datasets when the job did not complete after `pages` stored
/// answers: the job partial or failed, the report failed, both saying why.
fn export_failed(pages: usize, status: Option<u16>, reason: String) -> Vec<Outcome> {
    let hint = if status == Some(403) {
        format!("; {}", forbidden::EXPORT)
    } else {
        String::new()
    };
    let job = DatasetReport {
        status: if pages == 0 {
            DatasetStatus::Failed
        } else {
            DatasetStatus::Partial
        },
        pages,
        records: 0,
        reason: Some(format!("{reason}{hint}")),
    };
    let export = DatasetReport {
        status: DatasetStatus::Failed,
        pages: 0,
        records: 0,
        reason: Some(format!("the export job did not complete: {reason}{hint}")),
    };
    vec![
        (dataset::PROTECTION_EXPORT_JOB, Ok(job)),
        (dataset::PROTECTION_EXPORT, Ok(export)),
    ]
}

const USER_FIELDS: &str =
    "id,userPrincipalName,displayName,accountEnabled,userType,createdDateTime";
const DEVICE_FIELDS: &str = "id,deviceName,operatingSystem,osVersion,complianceState,lastSyncDateTime,isEncrypted,managementAgent,managedDeviceOwnerType,azureADDeviceId,userPrincipalName,serialNumber,enrolledDateTime";
const PROTECTION_FIELDS: &str = "malwareProtectionEnabled,realTimeProtectionEnabled,tamperProtectionEnabled,signatureVersion,signatureUpdateOverdue,quickScanOverdue,fullScanOverdue,lastQuickScanDateTime,lastReportedDateTime,engineVersion,rebootRequired,deviceState,productStatus";
/// Columns asked of the `DefenderAgents` export.
pub const EXPORT_COLUMNS: &[&str] = &[
    "DeviceId",
    "DeviceName",
    "DeviceState",
    "MalwareProtectionEnabled",
    "RealTimeProtectionEnabled",
    "SignatureUpdateOverdue",
    "QuickScanOverdue",
    "FullScanOverdue",
    "RebootRequired",
    "SignatureVersion",
    "EngineVersion",
    "LastReportedDateTime",
    "ProductStatus",
];

/// How many per-device requests run at once.
const PER_DEVICE_WORKERS: usize = 8;

struct Ctx<'a> {
    me: &'a M365,
    ctx: &'a CollectContext,
    graph: &'a dyn Auth,
}

impl Ctx<'_> {
    fn request<'b>(
        &'b self,
        dataset: &'b str,
        url: String,
        pager: Box<dyn Pager + 'b>,
        limiter: &'b RateLimiter,
        on_forbidden: &'b str,
    ) -> DatasetRequest<'b> {
        DatasetRequest {
            source: &self.me.name,
            source_type: KIND.source_type,
            dataset,
            url,
            pager,
            auth: self.graph,
            limiters: vec![limiter, &self.me.buckets.global],
            on_forbidden,
        }
    }

    async fn simple(
        &self,
        dataset: &'static str,
        url: String,
        pager: Box<dyn Pager + '_>,
        limiter: &RateLimiter,
        on_forbidden: &str,
    ) -> Outcome {
        let counter = PageCounter::default();
        let req = self.request(dataset, url, pager, limiter, on_forbidden);
        let got = fetch_pages(&self.ctx.http, &self.ctx.evidence, req, &counter).await;
        (dataset, got.map(|f| f.report))
    }

    /// Users, with sign-in activity when the tenant is licensed for it.
    async fn users(&self) -> Vec<Outcome> {
        let g = &self.me.graph;
        let b = &self.me.buckets;
        let counter = PageCounter::default();
        let req = self.request(
            dataset::USERS,
            // With signInActivity selected Graph serves at most 120 users a page.
            format!("{g}/v1.0/users?$select={USER_FIELDS},signInActivity&$top=120"),
            Box::new(ODataPager),
            &b.users,
            forbidden::USERS,
        );
        let first = match fetch_pages(&self.ctx.http, &self.ctx.evidence, req, &counter).await {
            Err(e) => return vec![(dataset::USERS, Err(e))],
            Ok(f) => f,
        };
        if first.failed_status != Some(403) || first.report.pages > 0 {
            return vec![(dataset::USERS, Ok(first.report))];
        }
        // Without Entra ID P1/P2 the whole request is refused for
        // signInActivity alone: fetch users without it, and say why it is missing.
        let req = self.request(
            dataset::USERS,
            format!("{g}/v1.0/users?$select={USER_FIELDS}&$top=999"),
            Box::new(ODataPager),
            &b.users,
            forbidden::USERS,
        );
        let second = fetch_pages(&self.ctx.http, &self.ctx.evidence, req, &counter).await;
        let sign_in = match &second {
            Ok(s) if s.report.pages > 0 => DatasetReport {
                status: DatasetStatus::Failed,
                pages: 0,
                records: 0,
                reason: Some(format!(
                    "unavailable: {}; {}",
                    first
                        .report
                        .reason
                        .as_deref()
                        .and_then(|r| r.split("; the app").next())
                        .unwrap_or("HTTP 403"),
                    forbidden::SIGN_IN
                )),
            },
            _ => first.report.clone(),
        };
        vec![
            (dataset::USERS, second.map(|s| s.report)),
            (dataset::SIGN_IN_ACTIVITY, Ok(sign_in)),
        ]
    }

    /// Conditional Access policies, then the members of every group they name.
    async fn conditional_access(&self) -> Vec<Outcome> {
        let g = &self.me.graph;
        let b = &self.me.buckets;
        let groups = Mutex::new(Vec::<String>::new());
        let pager = Capture(|policy: &Value| {
            let users = policy.pointer("/conditions/users");
            for key in ["includeGroups", "excludeGroups"] {
                for id in users
                    .and_then(|u| u.get(key))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if let Ok(mut g) = groups.lock() {
                        g.push(id.to_owned());
                    }
                }
            }
        });
        let policies = self
            .simple(
                dataset::CONDITIONAL_ACCESS,
                format!("{g}/v1.0/identity/conditionalAccess/policies?$select=id,displayName,state,conditions,grantControls"),
                Box::new(pager),
                &b.conditional_access,
                forbidden::CONDITIONAL_ACCESS,
            )
            .await;
        let members = self
            .group_members(dataset::GROUP_MEMBERS, groups, &policies, 1)
            .await;
        vec![policies, members]
    }

    /// Role definitions and assignments, then the transitive user members of
    /// every group a role is assigned to (a role-assignable group's members
    /// hold its roles).
    async fn roles(&self) -> Vec<Outcome> {
        let g = &self.me.graph;
        let b = &self.me.buckets;
        let definitions = self
            .simple(
                dataset::ROLE_DEFINITIONS,
                format!("{g}/v1.0/roleManagement/directory/roleDefinitions?$select=id,displayName,templateId,isBuiltIn"),
                Box::new(ODataPager),
                &b.directory,
                forbidden::ROLES,
            )
            .await;
        let groups = Mutex::new(Vec::<String>::new());
        let pager = Capture(|assignment: &Value| {
            let principal = assignment.get("principal");
            let is_group = principal
                .and_then(|p| p.get("@odata.type"))
                .and_then(Value::as_str)
                == Some("#microsoft.graph.group");
            if let (true, Some(id), Ok(mut g)) = (
                is_group,
                principal.and_then(|p| p.get("id")).and_then(Value::as_str),
                groups.lock(),
            ) {
                g.push(id.to_owned());
            }
        });
        let assignments = self
            .simple(
                dataset::ROLE_ASSIGNMENTS,
                format!("{g}/v1.0/roleManagement/directory/roleAssignments?$select=id,principalId,roleDefinitionId,directoryScopeId&$expand=principal"),
                Box::new(pager),
                &b.directory,
                forbidden::ROLES,
            )
            .await;
        let members = self
            .group_members(dataset::ROLE_GROUP_MEMBERS, groups, &assignments, 4)
            .await;
        vec![definitions, assignments, members]
    }

    /// The transitive user members of each of `groups` (each fetched once),
    /// as `name`, `workers` groups at a time; only as complete as `parent`,
    /// the dataset the groups were found in.
    async fn group_members(
        &self,
        name: &'static str,
        groups: Mutex<Vec<String>>,
        parent: &Outcome,
        workers: usize,
    ) -> Outcome {
        let g = &self.me.graph;
        let mut groups = groups.into_inner().unwrap_or_default();
        groups.sort();
        groups.dedup();
        let members = self
            .children(
                name,
                groups,
                |id| format!("{g}/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user?$select=id,userPrincipalName&$top=999"),
                &self.me.buckets.directory,
                forbidden::GROUPS,
                workers,
                false,
            )
            .await;
        (name, after_parent(parent, members))
    }

    /// One request chain per parent id into one dataset, `workers` at a time.
    /// With `single`, each answer is one object; otherwise an OData collection.
    #[allow(clippy::too_many_arguments)]
    async fn children(
        &self,
        name: &'static str,
        parents: Vec<String>,
        url: impl Fn(&str) -> String + Sync,
        limiter: &RateLimiter,
        on_forbidden: &str,
        workers: usize,
        single: bool,
    ) -> std::result::Result<DatasetReport, AuthError> {
        self.children_with(
            name,
            parents,
            url,
            limiter,
            on_forbidden,
            workers,
            single,
            |_, _| {},
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn children_with(
        &self,
        name: &'static str,
        parents: Vec<String>,
        url: impl Fn(&str) -> String + Sync,
        limiter: &RateLimiter,
        on_forbidden: &str,
        workers: usize,
        single: bool,
        on_record: impl Fn(&str, &Value) + Sync,
    ) -> std::result::Result<DatasetReport, AuthError> {
        let counter = PageCounter::default();
        let next = AtomicUsize::new(0);
        let parts = Mutex::new(Vec::new());
        let mut skipped = 0;
        let parents: Vec<String> = parents
            .into_iter()
            .filter(|p| {
                let ok = p.split('/').all(is_object_id);
                skipped += usize::from(!ok);
                ok
            })
            .collect();
        let worker = || async {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(parent) = parents.get(i) else {
                    return Ok(());
                };
                let pager: Box<dyn Pager + '_> = if single {
                    Box::new(SingleObject)
                } else {
                    Box::new(Capture(|r: &Value| on_record(parent, r)))
                };
                let req = self.request(name, url(parent), pager, limiter, on_forbidden);
                let fetched =
                    fetch_pages(&self.ctx.http, &self.ctx.evidence, req, &counter).await?;
                if let Ok(mut parts) = parts.lock() {
                    parts.push(fetched.report);
                }
            }
        };
        let results = super::join_all((0..workers.max(1)).map(|_| worker())).await;
        if let Some(Err(e)) = results
            .into_iter()
            .find(|r: &std::result::Result<(), AuthError>| r.is_err())
        {
            return Err(e);
        }
        let mut parts = parts.into_inner().unwrap_or_default();
        if skipped > 0 {
            parts.push(DatasetReport {
                status: DatasetStatus::Partial,
                pages: 0,
                records: 0,
                reason: Some(format!(
                    "{skipped} referenced id(s) are not object ids and were not requested"
                )),
            });
        }
        Ok(merge_reports(&parts))
    }

    /// Definitions, then instances per definition, then decisions per instance.
    async fn access_reviews(&self) -> Vec<Outcome> {
        let g = &self.me.graph;
        let b = &self.me.buckets;
        let base = format!("{g}/v1.0/identityGovernance/accessReviews/definitions");
        let definitions = Mutex::new(Vec::<String>::new());
        let pager = Capture(|r: &Value| {
            if let (Some(id), Ok(mut d)) = (r.get("id").and_then(Value::as_str), definitions.lock())
            {
                d.push(id.to_owned());
            }
        });
        let defs = self
            .simple(
                dataset::REVIEW_DEFINITIONS,
                format!("{base}?$top=100"),
                Box::new(pager),
                &b.directory,
                forbidden::REVIEWS,
            )
            .await;
        let definitions = definitions.into_inner().unwrap_or_default();
        let instances = Mutex::new(Vec::<(String, String)>::new());
        let inst = self
            .children_with(
                dataset::REVIEW_INSTANCES,
                definitions,
                |d| format!("{base}/{d}/instances?$top=100"),
                &b.directory,
                forbidden::REVIEWS,
                1,
                false,
                |def, r| {
                    if let (Some(id), Ok(mut i)) =
                        (r.get("id").and_then(Value::as_str), instances.lock())
                    {
                        i.push((def.to_owned(), id.to_owned()));
                    }
                },
            )
            .await;
        let inst = after_parent(&defs, inst);
        let instances = instances.into_inner().unwrap_or_default();
        let bad: Vec<String> = instances
            .iter()
            .filter(|(d, i)| !is_object_id(d) || !is_object_id(i))
            .map(|(_, i)| i.clone())
            .collect();
        // Decisions are addressed by definition and instance: the key joins
        // both as `<definition>/<instance>`, each part checked as an object id.
        let keys: Vec<String> = instances
            .iter()
            .filter(|(d, i)| is_object_id(d) && is_object_id(i))
            .map(|(d, i)| format!("{d}/{i}"))
            .collect();
        let decisions = self
            .children(
                dataset::REVIEW_DECISIONS,
                keys,
                |key| {
                    let (d, i) = key.split_once('/').unwrap_or((key, ""));
                    format!("{base}/{d}/instances/{i}/decisions?$top=100")
                },
                &b.directory,
                forbidden::REVIEWS,
                1,
                false,
            )
            .await
            .map(|mut r| {
                if !bad.is_empty() {
                    r = merge_reports(&[
                        r,
                        DatasetReport {
                            status: DatasetStatus::Partial,
                            pages: 0,
                            records: 0,
                            reason: Some(format!(
                                "{} instance id(s) are not object ids",
                                bad.len()
                            )),
                        },
                    ]);
                }
                r
            });
        let inst = (dataset::REVIEW_INSTANCES, inst);
        let decisions = after_parent(&inst, decisions);
        vec![defs, inst, (dataset::REVIEW_DECISIONS, decisions)]
    }

    /// Intune devices, then protection state of the Windows ones.
    async fn devices(&self) -> Vec<Outcome> {
        let g = &self.me.graph;
        let b = &self.me.buckets;
        let windows = Mutex::new(Vec::<String>::new());
        let pager = Capture(|r: &Value| {
            let is_windows = r
                .get("operatingSystem")
                .and_then(Value::as_str)
                .is_some_and(|os| os.eq_ignore_ascii_case("windows"));
            if let (true, Some(id), Ok(mut w)) = (
                is_windows,
                r.get("id").and_then(Value::as_str),
                windows.lock(),
            ) {
                w.push(id.to_owned());
            }
        });
        let devices = self
            .simple(
                dataset::MANAGED_DEVICES,
                format!(
                    "{g}/v1.0/deviceManagement/managedDevices?$select={DEVICE_FIELDS}&$top=1000"
                ),
                Box::new(pager),
                &b.intune,
                forbidden::DEVICES,
            )
            .await;
        let windows = windows.into_inner().unwrap_or_default();
        let mode = match self.me.protection_state {
            ProtectionStateMode::Auto if windows.len() > PER_DEVICE_MAX => {
                ProtectionStateMode::Export
            }
            ProtectionStateMode::Auto => ProtectionStateMode::PerDevice,
            m => m,
        };
        let devices_ok = matches!(&devices.1, Ok(r) if r.status != DatasetStatus::Failed);
        let mut out = vec![devices];
        match mode {
            ProtectionStateMode::Off => {}
            _ if !devices_ok => {}
            ProtectionStateMode::PerDevice | ProtectionStateMode::Auto => {
                let state = self
                    .children(
                        dataset::PROTECTION_STATE,
                        windows,
                        |id| format!("{g}/v1.0/deviceManagement/managedDevices/{id}/windowsProtectionState?$select={PROTECTION_FIELDS}"),
                        &b.intune,
                        forbidden::DEVICES,
                        PER_DEVICE_WORKERS,
                        true,
                    )
                    .await;
                let state = after_parent(&out[0], state);
                out.push((dataset::PROTECTION_STATE, state));
            }
            ProtectionStateMode::Export => out.extend(self.export_protection_state().await),
        }
        out
    }

    /// The `DefenderAgents` report through an Intune export job: create it,
    /// poll its status, download the file (without the bearer token: the URL
    /// is pre-signed). Every answer is stored; the download, a ZIP archive
    /// holding one CSV report, byte for byte as a `.zip` evidence file.
    async fn export_protection_state(&self) -> Vec<Outcome> {
        let me = self.me;
        let counter = PageCounter::default();
        let job = match self.export_job(&counter).await {
            Ok(job) => job,
            Err(JobStop::Auth(e)) => {
                return vec![
                    (dataset::PROTECTION_EXPORT_JOB, Err(e.clone())),
                    (dataset::PROTECTION_EXPORT, Err(e)),
                ]
            }
            Err(JobStop::Failed { status, reason }) => {
                return export_failed(counter.pages(), status, reason)
            }
        };
        let job_report = DatasetReport {
            status: DatasetStatus::Complete,
            pages: counter.pages(),
            records: 1,
            reason: None,
        };
        let url = job.get("url").and_then(Value::as_str).unwrap_or_default();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            let mut out = export_failed(
                counter.pages(),
                None,
                "the completed export job has no download URL".into(),
            );
            out[0].1 = Ok(job_report);
            return out;
        }
        let download = PageCounter::default();
        let meta = (
            me.name.as_str(),
            KIND.source_type,
            dataset::PROTECTION_EXPORT,
        );
        let fetched = fetch_file(
            &self.ctx.http,
            &self.ctx.evidence,
            meta,
            url,
            "zip",
            None,
            &[],
            &download,
        )
        .await;
        let failed = |reason: String| DatasetReport {
            status: DatasetStatus::Failed,
            pages: download.pages(),
            records: 0,
            reason: Some(reason),
        };
        let export = match fetched {
            Err(e) => Err(e),
            Ok(Err((status, reason))) => Ok(failed(format!(
                "downloading the report failed: {reason}{}",
                if status == Some(403) {
                    "; the download link expired or was refused"
                } else {
                    ""
                }
            ))),
            Ok(Ok((path, bytes))) => Ok(match export::read_report(&bytes) {
                Ok(report) => DatasetReport {
                    status: DatasetStatus::Complete,
                    pages: download.pages(),
                    records: report.rows.len(),
                    reason: None,
                },
                Err(e) => failed(format!("the downloaded report {path} is unusable: {e}")),
            }),
        };
        vec![
            (dataset::PROTECTION_EXPORT_JOB, Ok(job_report)),
            (dataset::PROTECTION_EXPORT, export),
        ]
    }

    /// Create the export job and poll it until it completes; the completed job.
    async fn export_job(&self, counter: &PageCounter) -> std::result::Result<Value, JobStop> {
        let me = self.me;
        let jobs = format!("{}/v1.0/deviceManagement/reports/exportJobs", me.graph);
        let body = json!({
            "reportName": "DefenderAgents",
            "format": "csv",
            "localizationType": "localizedValuesAsAdditionalColumn",
            "select": EXPORT_COLUMNS,
        });
        let mut job = self
            .job_request(
                Method::Post(&body),
                &jobs,
                counter,
                "creating the export job",
            )
            .await?;
        let Some(id) = job
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_job_id(id))
            .map(str::to_owned)
        else {
            return Err(JobStop::failed("the export job has no usable id".into()));
        };
        let started = tokio::time::Instant::now();
        loop {
            match job.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(job),
                Some("failed") => {
                    return Err(JobStop::failed(format!("the export job {id} failed")))
                }
                _ => {}
            }
            if started.elapsed() > me.export_timeout {
                return Err(JobStop::failed(format!(
                    "the export job {id} did not complete within {:?}",
                    me.export_timeout
                )));
            }
            tokio::time::sleep(me.export_poll).await;
            job = self
                .job_request(
                    Method::Get,
                    &format!("{jobs}('{id}')"),
                    counter,
                    "polling the export job",
                )
                .await?;
        }
    }

    /// One request about the export job, stored in its dataset.
    async fn job_request(
        &self,
        method: Method<'_>,
        url: &str,
        counter: &PageCounter,
        step: &str,
    ) -> std::result::Result<Value, JobStop> {
        let me = self.me;
        let b = &me.buckets;
        let meta = (
            me.name.as_str(),
            KIND.source_type,
            dataset::PROTECTION_EXPORT_JOB,
        );
        let got = fetch_one(
            &self.ctx.http,
            &self.ctx.evidence,
            meta,
            method,
            url,
            Some(self.graph),
            &[&b.intune, &b.global],
            counter,
        )
        .await;
        JobStop::check(got, step)
    }

    async fn defender(&self, auth: &dyn Auth, base: &str) -> Vec<Outcome> {
        let b = &self.me.buckets;
        let mut out = Vec::new();
        for (name, url) in [
            (
                dataset::DEFENDER_MACHINES,
                format!("{base}/api/machines?$top=10000"),
            ),
            (dataset::DEFENDER_AV, format!("{base}/api/deviceavinfo")),
        ] {
            let counter = PageCounter::default();
            let req = DatasetRequest {
                source: &self.me.name,
                source_type: KIND.source_type,
                dataset: name,
                url,
                pager: Box::new(ODataPager),
                auth,
                limiters: vec![&b.defender_per_minute, &b.defender_per_hour],
                on_forbidden: forbidden::DEFENDER,
            };
            let got = fetch_pages(&self.ctx.http, &self.ctx.evidence, req, &counter).await;
            out.push((name, got.map(|f| f.report)));
        }
        out
    }
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
            Err(e) => return SourceReport::failed(KIND.source_type, e),
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
        ];
        if let (Some(auth), Some((base, _))) = (&defender_auth, &self.defender) {
            let c = &c;
            tasks.push(Box::pin(async move { c.defender(auth, base).await }));
        }
        let results: Vec<Outcome> = super::join_all(tasks).await.into_iter().flatten().collect();
        super::finish(KIND.source_type, results)
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
