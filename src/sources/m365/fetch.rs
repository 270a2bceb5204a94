//! Fetching the Microsoft 365 datasets: Entra ID (users with sign-in
//! activity, registration details, Conditional Access, security defaults,
//! directory roles and their group members, access reviews with instances
//! and decisions, Secure Score), Intune devices and their protection state,
//! and Defender for Endpoint machines. Nested datasets store one page file
//! per request under one dataset with continuous page numbers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use super::{dataset, ProtectionStateMode, M365, PER_DEVICE_MAX, SOURCE};
use crate::collect::auth::{Auth, AuthError};
use crate::collect::dataset::{fetch_pages, merge_reports, DatasetRequest, PageCounter};
use crate::collect::paging::{ODataPager, ODataSkipPager, PageInfo, Pager, SingleObject};
use crate::collect::ratelimit::RateLimiter;
use crate::collect::CollectContext;
use crate::evidence::{DatasetReport, DatasetStatus};

/// What a 403 most likely means, per dataset.
pub(super) mod forbidden {
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
pub(super) fn is_job_id(s: &str) -> bool {
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
pub(super) struct FirstPage;

impl Pager for FirstPage {
    fn read(&mut self, url: &str, page: &Value) -> std::result::Result<PageInfo, String> {
        let info = ODataPager.read(url, page)?;
        Ok(PageInfo {
            records: info.records,
            next: None,
        })
    }
}

/// A dataset and what fetching it gave.
pub(super) type Outcome = (&'static str, std::result::Result<DatasetReport, AuthError>);

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

const USER_FIELDS: &str =
    "id,userPrincipalName,displayName,accountEnabled,userType,createdDateTime";
const DEVICE_FIELDS: &str = "id,deviceName,operatingSystem,osVersion,complianceState,lastSyncDateTime,isEncrypted,managementAgent,managedDeviceOwnerType,azureADDeviceId,userPrincipalName,serialNumber,enrolledDateTime";
const PROTECTION_FIELDS: &str = "malwareProtectionEnabled,realTimeProtectionEnabled,tamperProtectionEnabled,signatureVersion,signatureUpdateOverdue,quickScanOverdue,fullScanOverdue,lastQuickScanDateTime,lastReportedDateTime,engineVersion,rebootRequired,deviceState,productStatus";
/// How many per-device requests run at once.
const PER_DEVICE_WORKERS: usize = 8;

/// One collection of one tenant: the source, the shared layer and the Graph
/// token source every dataset method uses.
pub(super) struct Ctx<'a> {
    pub(super) me: &'a M365,
    pub(super) ctx: &'a CollectContext,
    pub(super) graph: &'a dyn Auth,
}

impl Ctx<'_> {
    pub(super) fn request<'b>(
        &'b self,
        dataset: &'b str,
        url: String,
        pager: Box<dyn Pager + 'b>,
        limiter: &'b RateLimiter,
        on_forbidden: &'b str,
    ) -> DatasetRequest<'b> {
        DatasetRequest {
            source: &self.me.name,
            source_type: SOURCE.source_type,
            dataset,
            url,
            pager,
            auth: self.graph,
            limiters: vec![limiter, &self.me.buckets.global],
            on_forbidden,
        }
    }

    pub(super) async fn simple(
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
    pub(super) async fn users(&self) -> Vec<Outcome> {
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
    pub(super) async fn conditional_access(&self) -> Vec<Outcome> {
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
    pub(super) async fn roles(&self) -> Vec<Outcome> {
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
    pub(super) async fn group_members(
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
    pub(super) async fn children(
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
    pub(super) async fn children_with(
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
        let results = crate::collect::join_all((0..workers.max(1)).map(|_| worker())).await;
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
    pub(super) async fn access_reviews(&self) -> Vec<Outcome> {
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
    pub(super) async fn devices(&self) -> Vec<Outcome> {
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

    pub(super) async fn defender(&self, auth: &dyn Auth, base: &str) -> Vec<Outcome> {
        let b = &self.me.buckets;
        let mut out = Vec::new();
        // The machine list documents `$top` (at most 10,000) with `$skip` and
        // no next link; the AV report pages by `@odata.nextLink`.
        let machines: Box<dyn Pager> = Box::new(ODataSkipPager::default());
        let av: Box<dyn Pager> = Box::new(ODataPager);
        for (name, url, pager) in [
            (
                dataset::DEFENDER_MACHINES,
                format!("{base}/api/machines?$top={}", self.me.defender_page_size),
                machines,
            ),
            (dataset::DEFENDER_AV, format!("{base}/api/deviceavinfo"), av),
        ] {
            let counter = PageCounter::default();
            let req = DatasetRequest {
                source: &self.me.name,
                source_type: SOURCE.source_type,
                dataset: name,
                url,
                pager,
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
