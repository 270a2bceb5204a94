//! The records a simulated organisation serves: the built-in demo (from
//! `collectors/demo/`, embedded in the binary) or a synthetic one of any size.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use include_dir::{include_dir, Dir};
use serde_json::{json, Value};

use super::{DefenderTenant, GraphTenant, NinjaTenant};

static DEMO: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/collectors/demo");

/// Every record the simulator serves, per API, in real API shapes.
#[derive(Clone, Debug, Default)]
pub struct Tenant {
    /// Microsoft Graph.
    pub graph: GraphTenant,
    /// NinjaOne.
    pub ninja: NinjaTenant,
    /// Defender for Endpoint.
    pub defender: DefenderTenant,
    /// Datto RMM.
    pub datto: super::DattoTenant,
    /// Tactical RMM.
    pub tactical: super::TacticalTenant,
    /// Datto BCDR.
    pub datto_bcdr: super::DattoBcdrTenant,
    /// N-able Cove.
    pub cove: super::CoveTenant,
    /// Veeam Backup & Replication.
    pub veeam: super::VeeamTenant,
}

impl Tenant {
    /// The demo organisation, with relative times resolved against `now`.
    ///
    /// # Errors
    /// When an embedded file is missing or not a JSON array (a build defect).
    pub fn demo(now: DateTime<Utc>) -> Result<Tenant, String> {
        let load_value = |name: &str| -> Result<Value, String> {
            let file = DEMO
                .get_file(name)
                .ok_or_else(|| format!("demo file {name} is missing"))?;
            let mut value: Value = serde_json::from_slice(file.contents())
                .map_err(|e| format!("demo file {name}: {e}"))?;
            resolve_times(&mut value, now);
            Ok(value)
        };
        let load = |name: &str| -> Result<Vec<Value>, String> {
            match load_value(name)? {
                Value::Array(items) => Ok(items),
                _ => Err(format!("demo file {name} is not an array")),
            }
        };
        let mut tenant = Tenant {
            graph: GraphTenant {
                users: load("m365-users.json")?,
                registrations: load("m365-userRegistrationDetails.json")?,
                ..GraphTenant::default()
            },
            ninja: NinjaTenant {
                organizations: vec![json!({
                    "id": 3, "name": "Contoso Dental", "description": "Demo organisation",
                    "nodeApprovalMode": "AUTOMATIC", "tags": [], "fields": {}
                })],
                devices: load("ninjaone-devices.json")?,
                os_patches: load("ninjaone-os-patches.json")?,
                os_patch_installs: load("ninjaone-os-patch-installs.json")?,
                antivirus_status: load("ninjaone-antivirus-status.json")?,
            },
            defender: DefenderTenant {
                machines: load("defender-machines.json")?,
                av_info: load("defender-deviceavinfo.json")?,
            },
            ..Tenant::default()
        };
        load_m365_demo(&mut tenant.graph, &load, &load_value)?;
        tenant.veeam = crate::sources::veeam::simulate::demo(now);
        tenant
            .ninja
            .devices
            .sort_by_key(|d| d.get("id").and_then(Value::as_i64));
        Ok(tenant)
    }

    /// A synthetic organisation: `users` users (every 10th without MFA, every
    /// 25th disabled, every 50th a guest) and `devices` devices (every 7th with
    /// an old critical patch pending).
    pub fn synthetic(users: usize, devices: usize, now: DateTime<Utc>) -> Tenant {
        Tenant::generate(&Naming::synthetic(), users, devices, now)
    }

    /// One generated organisation of a fleet, named by `names` (users
    /// `user17@org042.example`, devices `ORG042-WS-017`), with the same
    /// patterns as [`Tenant::synthetic`] shifted by `names.shift`, and the
    /// organisation's records in each RMM: a NinjaOne organization, a Datto
    /// RMM site and a Tactical RMM client holding its devices.
    pub fn organisation(
        names: &OrgNames,
        users: usize,
        devices: usize,
        now: DateTime<Utc>,
    ) -> Tenant {
        let naming = Naming {
            domain: format!("{}.example", names.label),
            host: format!("{}-WS-", names.label.to_ascii_uppercase()),
            host_width: 3,
            display: format!("{} ", names.display_label()),
            ninja_org: names.ninja_organization_id,
            ninja_id_base: names.ninja_device_id_base,
            shift: names.shift,
        };
        let mut t = Tenant::generate(&naming, users, devices, now);
        add_rmm_accounts(&mut t, names, &naming, devices, now);
        t
    }

    fn generate(n: &Naming, users: usize, devices: usize, now: DateTime<Utc>) -> Tenant {
        let at =
            |days: i64| (now - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true);
        let k = n.shift;
        let mut t = Tenant::default();
        for i in 0..users {
            let id = format!("00000000-0000-4000-8000-{i:012x}");
            let upn = n.upn(i);
            let name = n.user_display(i);
            let guest = (i + k) % 50 == 49;
            let mfa = (i + k) % 10 != 9;
            let seen = ((i + k) % 120) as i64;
            t.graph.users.push(json!({
                "id": id, "userPrincipalName": upn, "displayName": name,
                "accountEnabled": (i + k) % 25 != 24, "userType": if guest { "Guest" } else { "Member" },
                "createdDateTime": at(400),
                "signInActivity": { "lastSignInDateTime": at(seen), "lastSuccessfulSignInDateTime": at(seen) }
            }));
            t.graph.registrations.push(json!({
                "id": id, "userPrincipalName": upn, "userDisplayName": name,
                "userType": if guest { "guest" } else { "member" }, "isAdmin": i % 500 == 0,
                "isMfaRegistered": mfa, "isMfaCapable": mfa, "isPasswordlessCapable": false,
                "isSsprRegistered": mfa, "isSsprEnabled": true, "isSsprCapable": mfa,
                "isSystemPreferredAuthenticationMethodEnabled": true,
                "methodsRegistered": if mfa { json!(["microsoftAuthenticatorPush"]) } else { json!([]) },
                "systemPreferredAuthenticationMethods": [], "userPreferredMethodForSecondaryAuthentication": if mfa { "push" } else { "none" },
                "lastUpdatedDateTime": at(1)
            }));
        }
        for i in 0..devices {
            let id = n.ninja_id_base + i as i64 + 1;
            let epoch = |days: i64| (now - Duration::days(days)).timestamp();
            t.ninja.devices.push(json!({
                "id": id, "uid": format!("dev-{id}"), "organizationId": n.ninja_org, "nodeClass": "WINDOWS_WORKSTATION",
                "offline": false, "systemName": n.host(i), "dnsName": n.dns(i),
                "lastContact": epoch(0)
            }));
            if (i + k).is_multiple_of(7) {
                t.ninja.os_patches.push(json!({
                    "id": format!("p-{id}"), "name": "Cumulative Update", "severity": "CRITICAL", "status": "APPROVED",
                    "type": "PATCH_MANAGEMENT", "kbNumber": "KB5000001", "deviceId": id, "timestamp": epoch(45)
                }));
            }
        }
        add_synthetic_m365(&mut t, n, users, devices, now);
        t
    }
}

/// The names and ids of one generated organisation of a fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgNames {
    /// 0-based position in the fleet.
    pub index: usize,
    /// Display name, e.g. `Organisation 042`.
    pub name: String,
    /// Lower-case label used in every name, e.g. `org042`.
    pub label: String,
    /// Entra tenant id.
    pub tenant_id: String,
    /// NinjaOne organization id.
    pub ninja_organization_id: i64,
    /// NinjaOne device ids are this plus 1, 2, ...
    pub ninja_device_id_base: i64,
    /// Datto RMM site uid.
    pub datto_site_uid: String,
    /// Tactical RMM client id.
    pub tactical_client_id: i64,
    /// Offset of the failure patterns (from the fleet's seed), so that
    /// organisations differ in which users and devices fail.
    pub shift: usize,
}

impl OrgNames {
    /// The names of organisation `index` (0-based) of a fleet generated from `seed`.
    pub fn new(index: usize, seed: u64) -> OrgNames {
        let n = index + 1;
        let mut rng =
            fastrand::Rng::with_seed(seed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let salt = rng.u32(..);
        OrgNames {
            index,
            name: format!("Organisation {n:03}"),
            label: format!("org{n:03}"),
            tenant_id: format!(
                "{salt:08x}-{:04x}-4{:03x}-8{:03x}-{n:012x}",
                rng.u16(..),
                rng.u16(..0xfff),
                rng.u16(..0xfff)
            ),
            ninja_organization_id: 1_000 + n as i64,
            ninja_device_id_base: 1_000_000 * n as i64,
            datto_site_uid: format!("{:08x}-d470-4517-8e00-{n:012x}", salt.rotate_left(7)),
            tactical_client_id: 5_000 + n as i64,
            shift: rng.usize(..1_000),
        }
    }

    /// `Org042`, the prefix of user display names.
    fn display_label(&self) -> String {
        let mut label = self.label.clone();
        if let Some(first) = label.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        label
    }
}

/// How a generated organisation names its users and devices.
pub(crate) struct Naming {
    domain: String,
    /// Device names are this plus the 1-based number, `host_width` digits.
    host: String,
    host_width: usize,
    /// User display names are this plus `User <i>`.
    display: String,
    ninja_org: i64,
    ninja_id_base: i64,
    shift: usize,
}

impl Naming {
    fn synthetic() -> Naming {
        Naming {
            domain: "synthetic.example".into(),
            host: "HOST-".into(),
            host_width: 5,
            display: String::new(),
            ninja_org: 1,
            ninja_id_base: 0,
            shift: 0,
        }
    }
    fn upn(&self, i: usize) -> String {
        format!("user{i}@{}", self.domain)
    }
    fn user_display(&self, i: usize) -> String {
        format!("{}User {i}", self.display)
    }
    /// Device `i` (0-based).
    fn host(&self, i: usize) -> String {
        format!("{}{:0w$}", self.host, i + 1, w = self.host_width)
    }
    fn dns(&self, i: usize) -> String {
        format!("{}.{}", self.host(i).to_ascii_lowercase(), self.domain)
    }
}

/// The organisation's part of each RMM account: its NinjaOne organization
/// (installs and antivirus status too), Datto RMM site and devices, Tactical
/// RMM client, agents and Windows updates.
fn add_rmm_accounts(
    t: &mut Tenant,
    names: &OrgNames,
    n: &Naming,
    devices: usize,
    now: DateTime<Utc>,
) {
    let k = names.shift;
    let epoch = |days: i64| (now - Duration::days(days)).timestamp();
    let at = |days: i64| (now - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true);
    t.ninja.organizations.push(json!({
        "id": names.ninja_organization_id, "name": names.name,
        "description": format!("{} ({})", names.name, n.domain), "nodeApprovalMode": "AUTOMATIC",
        "tags": [], "fields": {}
    }));
    t.datto.sites.push(json!({
        "id": names.tactical_client_id, "uid": names.datto_site_uid, "accountUid": "SIMACCT1",
        "name": names.name, "description": n.domain, "onDemand": false, "splashtopAutoInstall": false,
        "devicesStatus": {"numberOfDevices": devices, "numberOfOnlineDevices": devices, "numberOfOfflineDevices": 0},
        "portalUrl": format!("https://sim.centrastage.net/site/{}", names.datto_site_uid)
    }));
    t.tactical.clients.push(json!({
        "id": names.tactical_client_id, "name": names.name,
        "sites": [{"id": names.tactical_client_id * 10, "name": "Main office", "client": names.tactical_client_id}]
    }));
    let datto_status = [
        "FullyPatched",
        "ApprovedPending",
        "FullyPatched",
        "RebootRequired",
        "FullyPatched",
        "InstallError",
    ];
    for i in 0..devices {
        let id = n.ninja_id_base + i as i64 + 1;
        let host = n.host(i);
        let stale = (i + k).is_multiple_of(7);
        t.ninja.os_patch_installs.push(json!({
            "id": format!("i-{id}"), "name": "Cumulative Update", "severity": "IMPORTANT", "status": "INSTALLED",
            "type": "PATCH_MANAGEMENT", "kbNumber": "KB5000000", "deviceId": id,
            "installedAt": epoch(if stale { 60 } else { 5 }), "timestamp": epoch(if stale { 60 } else { 5 })
        }));
        t.ninja.antivirus_status.push(json!({
            "productName": "Windows Defender", "productState": if (i + k) % 29 == 28 { "OFF" } else { "ON" },
            "definitionStatus": if (i + k) % 17 == 16 { "OUT_OF_DATE" } else { "UP_TO_DATE" },
            "version": "4.18.24090.11", "deviceId": id, "timestamp": epoch(0)
        }));
        t.datto.devices.push(json!({
            "id": id, "uid": format!("{:08x}-0000-4000-8000-{id:012x}", names.index),
            "siteId": names.tactical_client_id, "siteUid": names.datto_site_uid, "siteName": names.name,
            "hostname": host, "lastSeen": (now - Duration::hours(((i + k) % 48) as i64)).timestamp_millis(),
            "operatingSystem": "Microsoft Windows 11 Pro 23H2",
            "patchManagement": {"patchStatus": datto_status[(i + k) % datto_status.len()],
                "patchesApprovedPending": (i + k) % 3, "patchesNotApproved": 0, "patchesInstalled": 40},
            "antivirus": {"antivirusProduct": "Windows Defender",
                "antivirusStatus": if (i + k) % 17 == 16 { "RunningAndNotUpToDate" } else { "RunningAndUpToDate" }}
        }));
        let agent_id = tactical_agent_id(names.index, i);
        t.tactical.agents.push(json!({
            "agent_id": agent_id, "hostname": host, "site_name": "Main office", "client_name": names.name,
            "monitoring_type": "workstation", "plat": "windows",
            "operating_system": "Windows 11 Pro, 64 bit v23H2 (build 22631.4317)",
            "needs_reboot": (i + k) % 13 == 12, "has_patches_pending": stale,
            "last_seen": at(((i + k) % 3) as i64), "status": "online"
        }));
        let updates = vec![
            json!({"id": id * 10, "kb": "KB5000000", "title": "Cumulative Update", "severity": "Important",
                "installed": true, "downloaded": true, "action": "approve",
                "date_installed": at(if stale { 60 } else { 5 }), "result": "success"}),
            json!({"id": id * 10 + 1, "kb": "KB5000001", "title": "Cumulative Update", "severity": "Critical",
                "installed": false, "downloaded": false, "action": if stale { "approve" } else { "ignore" },
                "date_installed": null, "result": "n/a"}),
        ];
        t.tactical.updates.insert(agent_id, updates);
    }
}

/// Tactical RMM agent id of device `device` (0-based) of organisation `org`.
pub(crate) fn tactical_agent_id(org: usize, device: usize) -> String {
    format!("SIMAGENT{:05}D{:06}", org + 1, device + 1)
}

/// The organisation index (0-based) of a generated Tactical RMM agent id.
pub(crate) fn tactical_agent_org(agent_id: &str) -> Option<usize> {
    let rest = agent_id.strip_prefix("SIMAGENT")?;
    let (org, _) = rest.split_once('D')?;
    org.parse::<usize>().ok()?.checked_sub(1)
}

/// The Microsoft 365 demo files beyond users: policies, roles, groups,
/// devices, protection state, access reviews (definitions with nested
/// `instances`, each with nested `decisions`, split here), Secure Score.
fn load_m365_demo(
    g: &mut GraphTenant,
    load: &dyn Fn(&str) -> Result<Vec<Value>, String>,
    load_value: &dyn Fn(&str) -> Result<Value, String>,
) -> Result<(), String> {
    g.conditional_access = load("m365-conditionalAccessPolicies.json")?;
    g.security_defaults = load_value("m365-securityDefaults.json")?;
    g.role_definitions = load("m365-roleDefinitions.json")?;
    g.role_assignments = load("m365-roleAssignments.json")?;
    for group in load("m365-groups.json")? {
        let id = group.get("id").and_then(Value::as_str).unwrap_or_default();
        let name = group
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let members = group
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        g.groups.insert(id.to_owned(), (name.to_owned(), members));
    }
    g.managed_devices = load("m365-managedDevices.json")?;
    if let Value::Object(states) = load_value("m365-windowsProtectionStates.json")? {
        g.protection_states = states.into_iter().collect();
    }
    for mut def in load("m365-accessReviews.json")? {
        let instances = def
            .as_object_mut()
            .and_then(|d| d.remove("instances"))
            .unwrap_or(Value::Array(Vec::new()));
        let def_id = def
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut list = Vec::new();
        for mut inst in instances.as_array().cloned().unwrap_or_default() {
            let decisions = inst
                .as_object_mut()
                .and_then(|i| i.remove("decisions"))
                .and_then(|d| d.as_array().cloned())
                .unwrap_or_default();
            let inst_id = inst
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            g.review_decisions.insert(inst_id, decisions);
            list.push(inst);
        }
        g.review_instances.insert(def_id, list);
        g.review_definitions.push(def);
    }
    g.secure_scores = load("m365-secureScores.json")?;
    g.security_incidents = load("m365-securityIncidents.json")?;
    Ok(())
}

/// Synthetic Microsoft 365 records: one MFA policy for everyone but a
/// break-glass account (user 0) and an exclusion group (users 1-2), security
/// defaults off, two Global Administrators (users 0 and 1), Intune devices
/// named like the RMM's (every 3rd a Mac, every 11th unencrypted, every 13th
/// noncompliant) with protection state (every 17th with overdue signatures),
/// Defender machines for the Windows ones (every 19th missing, every 23rd
/// inactive), one guest access review and a Secure Score.
fn add_synthetic_m365(
    t: &mut Tenant,
    n: &Naming,
    users: usize,
    devices: usize,
    now: DateTime<Utc>,
) {
    let k = n.shift;
    let at = |days: i64| (now - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let uid = |i: usize| format!("00000000-0000-4000-8000-{i:012x}");
    let ga = "62e90394-69f5-4237-9190-012177145e10";
    let group = "10000000-0000-4000-8000-000000000001".to_owned();
    let g = &mut t.graph;
    g.groups.insert(
        group.clone(),
        (
            "MFA exclusions".into(),
            (1..users.min(3)).map(uid).collect(),
        ),
    );
    g.conditional_access.push(json!({
        "id": "20000000-0000-4000-8000-000000000001", "displayName": "Require MFA for all users",
        "createdDateTime": at(300), "modifiedDateTime": at(30), "state": "enabled",
        "conditions": {"clientAppTypes": ["all"],
            "applications": {"includeApplications": ["All"], "excludeApplications": []},
            "users": {"includeUsers": ["All"], "excludeUsers": if users > 0 { json!([uid(0)]) } else { json!([]) },
                "includeGroups": [], "excludeGroups": [group], "includeRoles": [], "excludeRoles": []}},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [], "termsOfUse": [], "authenticationStrength": null}
    }));
    g.security_defaults = json!({"id": "00000000-0000-0000-0000-000000000005", "displayName": "Security Defaults", "isEnabled": false});
    g.role_definitions.push(json!({"id": ga, "displayName": "Global Administrator", "templateId": ga, "isBuiltIn": true}));
    for i in 0..users.min(2) {
        g.role_assignments.push(json!({"id": format!("ra-{i}"), "principalId": uid(i), "roleDefinitionId": ga, "directoryScopeId": "/"}));
    }
    for i in 0..devices {
        let id = format!("30000000-0000-4000-8000-{i:012x}");
        let aad = format!("40000000-0000-4000-8000-{i:012x}");
        let mac = i % 3 == 2;
        g.managed_devices.push(json!({
            "id": id, "deviceName": n.host(i), "operatingSystem": if mac { "macOS" } else { "Windows" },
            "osVersion": if mac { "14.6.1" } else { "10.0.22631.4460" },
            "complianceState": if (i + k) % 13 == 12 { "noncompliant" } else { "compliant" },
            "lastSyncDateTime": at(0), "isEncrypted": (i + k) % 11 != 10, "managementAgent": "mdm",
            "managedDeviceOwnerType": "company", "azureADDeviceId": aad,
            "userPrincipalName": n.upn(i % users.max(1)),
            "serialNumber": format!("SN{i:08}"), "enrolledDateTime": at(200)
        }));
        if mac {
            continue;
        }
        let overdue = (i + k) % 17 == 16;
        g.protection_states.insert(id.clone(), json!({
            "id": format!("50000000-0000-4000-8000-{i:012x}"),
            "malwareProtectionEnabled": true, "realTimeProtectionEnabled": true, "tamperProtectionEnabled": true,
            "signatureVersion": "1.419.233.0", "signatureUpdateOverdue": overdue, "quickScanOverdue": false,
            "fullScanOverdue": false, "lastQuickScanDateTime": at(1), "lastReportedDateTime": at(0),
            "engineVersion": "1.1.24090.11", "rebootRequired": false, "deviceState": "clean",
            "productStatus": if overdue { "avSignaturesOutOfDate" } else { "noStatus" }
        }));
        if (i + k) % 19 == 18 {
            continue;
        }
        let mid = format!("{i:040x}");
        t.defender.machines.push(json!({
            "id": mid, "computerDnsName": n.dns(i),
            "firstSeen": at(200), "lastSeen": at(0), "osPlatform": "Windows11", "osBuild": 22631,
            "onboardingStatus": "Onboarded", "healthStatus": if (i + k) % 23 == 22 { "Inactive" } else { "Active" },
            "riskScore": "Low", "exposureLevel": "Low", "aadDeviceId": aad, "machineTags": []
        }));
        t.defender.av_info.push(json!({
            "id": format!("{mid}_av"), "machineId": mid, "computerDnsName": n.dns(i),
            "avMode": "0", "avIsSignatureUpToDate": if overdue { "False" } else { "True" },
            "avIsEngineUpToDate": "True", "avIsPlatformUpToDate": "True",
            "avSignatureVersion": "1.419.233.0", "quickScanTime": at(1), "lastSeenTime": at(0)
        }));
    }
    let def = "60000000-0000-4000-8000-000000000001";
    let inst = "60000000-0000-4000-8000-000000000002";
    g.review_definitions.push(json!({
        "id": def, "displayName": "Guest access review", "status": "InProgress", "createdDateTime": at(120),
        "scope": {"@odata.type": "#microsoft.graph.accessReviewQueryScope", "query": "/users?$filter=(userType eq 'Guest')", "queryType": "MicrosoftGraph"}
    }));
    g.review_instances.insert(def.into(), vec![json!({"id": inst, "startDateTime": at(40), "endDateTime": at(26), "status": "Completed"})]);
    let decisions = (0..users).filter(|i| (i + k) % 50 == 49).map(|i| json!({
        "id": format!("70000000-0000-4000-8000-{i:012x}"), "accessReviewId": inst, "decision": "Approve",
        "reviewedDateTime": at(30), "applyResult": "AppliedSuccessfully", "appliedDateTime": at(26),
        "recommendation": "Approve", "justification": "",
        "principal": {"@odata.type": "#microsoft.graph.userIdentity", "id": uid(i), "displayName": n.user_display(i), "userPrincipalName": n.upn(i)}
    })).collect();
    g.review_decisions.insert(inst.into(), decisions);
    g.secure_scores.push(json!({"id": "synthetic_score", "createdDateTime": at(1), "currentScore": 55.0, "maxScore": 90.0, "controlScores": []}));
}

/// Replace `"@now-45d"` (RFC 3339) and `"@epoch:now-45d"` (epoch seconds) markers.
/// The demo organisation's `manual/` folder (`collectors/demo/manual/`):
/// policy documents and their sidecars, as (file name, bytes). Sidecar dates
/// written `"@now-60d"` become the date that many days before `now`, so the
/// same documents are current (or, for one, expired) on any day.
///
/// # Errors
/// When the embedded folder is missing or a sidecar holds a relative date
/// that does not resolve (a build defect).
pub fn demo_documents(now: DateTime<Utc>) -> Result<Vec<(String, Vec<u8>)>, String> {
    let dir = DEMO
        .get_dir("manual")
        .ok_or("demo folder manual/ is missing")?;
    let mut files = Vec::new();
    for file in dir.files() {
        let name = file
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("demo document without a UTF-8 name")?
            .to_owned();
        let bytes = if name.ends_with(".evidence.toml") {
            let text = std::str::from_utf8(file.contents())
                .map_err(|_| format!("demo sidecar {name} is not UTF-8"))?;
            resolve_sidecar_dates(text, now)
                .ok_or_else(|| format!("demo sidecar {name}: a relative date does not resolve"))?
                .into_bytes()
        } else {
            file.contents().to_vec()
        };
        files.push((name, bytes));
    }
    files.sort();
    Ok(files)
}

/// Replace every `"@now±N<unit>"` string in sidecar text with a TOML date.
fn resolve_sidecar_dates(text: &str, now: DateTime<Utc>) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\"@now") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('"')?;
        let t = shift(now, after[..end].strip_prefix("@now")?)?;
        out.push_str(&t.format("%Y-%m-%d").to_string());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn resolve_times(value: &mut Value, now: DateTime<Utc>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| resolve_times(v, now)),
        Value::Object(map) => map.values_mut().for_each(|v| resolve_times(v, now)),
        Value::String(s) => {
            let (epoch, rest) = match s.strip_prefix("@epoch:") {
                Some(rest) => (true, rest),
                None => (false, s.strip_prefix('@').unwrap_or("")),
            };
            if let Some(t) = rest
                .strip_prefix("now")
                .and_then(|offset| shift(now, offset))
            {
                *value = if epoch {
                    json!(t.timestamp())
                } else {
                    json!(t.to_rfc3339_opts(SecondsFormat::Secs, true))
                };
            }
        }
        _ => {}
    }
}

fn shift(now: DateTime<Utc>, offset: &str) -> Option<DateTime<Utc>> {
    if offset.is_empty() {
        return Some(now);
    }
    let (sign, rest) = match offset.as_bytes().first()? {
        b'-' => (-1, &offset[1..]),
        b'+' => (1, &offset[1..]),
        _ => return None,
    };
    let unit = rest.chars().last()?;
    let n: i64 = rest[..rest.len() - 1].parse().ok()?;
    let d = match unit {
        'd' => Duration::days(n),
        'h' => Duration::hours(n),
        'm' => Duration::minutes(n),
        _ => return None,
    };
    Some(now + d * sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_loads_with_times_resolved() {
        let now = Utc::now();
        let t = Tenant::demo(now).expect("demo data is valid");
        assert!(t.graph.users.len() >= 20 && t.ninja.devices.len() >= 10);
        let text = serde_json::to_string(&t.graph.users).expect("json");
        assert!(!text.contains("@now"));
        assert!(t.ninja.devices[0]["lastContact"].is_i64());
    }

    #[test]
    fn markers() {
        let now = DateTime::parse_from_rfc3339("2026-01-31T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let mut v = json!(["@now-30d", "@epoch:now", "@nope", "plain"]);
        resolve_times(&mut v, now);
        assert_eq!(
            v,
            json!(["2026-01-01T00:00:00Z", now.timestamp(), "@nope", "plain"])
        );
    }
}
