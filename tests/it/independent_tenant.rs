//! An organisation built by hand from the vendors' documentation, not from
//! auditpack's simulator: Microsoft Graph v1.0 (users with `signInActivity`,
//! `userRegistrationDetails`, Conditional Access, directory roles with
//! `$expand=principal`, Intune `managedDevices` and `windowsProtectionState`),
//! Microsoft Defender for Endpoint (`/api/machines` paged by `$top`/`$skip`,
//! `/api/deviceavinfo`), NinjaOne API v2 (`/v2/devices` paged by `after`, the
//! `queries` paged by cursor) and Datto RMM API v2 (`/api/v2/account/devices`
//! paged by `pageDetails.nextPageUrl`), each answered by a small server of its
//! own written here, with the documented variations: null and absent fields,
//! guests with `#EXT#` names, disabled accounts, users without sign-in
//! activity, devices only one source knows, a re-imaged machine with two
//! Defender records, the same machine under different name casing and as
//! FQDN or short name, a device without patch data, several antivirus
//! products, a network printer, and every list over several pages.
//!
//! The run goes through the real collectors, normalisers, reconciliation and
//! checks, and each check's failing and unproven subjects are held to what
//! the judgement principles demand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use auditpack::checks::Verdict;
use auditpack::config::Config;
use auditpack::evaluate::CheckResult;
use auditpack::evidence::SourceStatus;
use auditpack::facts::Facts;
use auditpack::pipeline::{run, RunOptions, RunOutcome};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

const TENANT: &str = "3f1c2a7e-5b8d-4c1e-9a2f-6d7e8f901234";
const CLIENT: &str = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

// Users (Entra object ids).
const ALICE: &str = "6e7b768e-07e2-4810-8459-485f84f8f204";
const BOB: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
const CAROL: &str = "5bde3e51-d13b-4db1-9948-fe4b109d11a7";
const DAVE: &str = "4782e723-f4f4-4af3-a76e-25e3bab0d896";
const VENDOR: &str = "c1a7e2d4-0b9f-4e6a-8d3c-2f5b7a9e1c04";
const ERIN: &str = "e3f4a5b6-c7d8-4e9f-a0b1-c2d3e4f5a6b7";
const FRANK: &str = "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9";
const AUDITOR: &str = "a9b8c7d6-e5f4-4321-9876-fedcba987654";
// Groups.
const HELPDESK_GROUP: &str = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d";
const BREAK_GLASS_GROUP: &str = "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e";
// Role templates (Microsoft Entra built-in roles).
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const HELPDESK_ADMIN: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
// Intune managed device ids.
const FRONTDESK: &str = "0f3a5c2e-1111-4b6d-9e8f-a1b2c3d4e501";
const RECEPTION: &str = "0f3a5c2e-2222-4b6d-9e8f-a1b2c3d4e502";
const KIOSK: &str = "0f3a5c2e-4444-4b6d-9e8f-a1b2c3d4e504";
const ACCOUNTS: &str = "0f3a5c2e-5555-4b6d-9e8f-a1b2c3d4e505";
const SPARE: &str = "0f3a5c2e-9999-4b6d-9e8f-a1b2c3d4e509";
const PHONE: &str = "0f3a5c2e-7777-4b6d-9e8f-a1b2c3d4e507";

/// Records per page the servers hand out, whatever the client asks: every
/// list then spans several pages.
const PAGE: usize = 2;

fn at(now: DateTime<Utc>, days: i64) -> String {
    (now - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// NinjaOne writes times as epoch seconds with a fraction.
fn epoch(now: DateTime<Utc>, days: i64) -> f64 {
    (now - Duration::days(days)).timestamp() as f64 + 0.25
}

/// Datto RMM writes times as epoch milliseconds.
fn millis(now: DateTime<Utc>, days: i64) -> i64 {
    (now - Duration::days(days)).timestamp_millis()
}

/// What the servers hold.
struct Org {
    /// Graph collections by path (`/v1.0/...`), paged by `@odata.nextLink`.
    graph: HashMap<String, Vec<Value>>,
    /// Graph single objects by path.
    objects: HashMap<String, Value>,
    /// Defender for Endpoint machines (paged by `$top` / `$skip`).
    machines: Vec<Value>,
    /// Defender AV report (paged by `@odata.nextLink`).
    av_info: Vec<Value>,
    ninja_devices: Vec<Value>,
    /// NinjaOne queries by path (`/v2/queries/...`).
    ninja_queries: HashMap<String, Vec<Value>>,
    datto_devices: Vec<Value>,
}

struct Served {
    org: Org,
    base: String,
}

fn graph_user(
    id: &str,
    upn: &str,
    name: &str,
    enabled: bool,
    user_type: Option<&str>,
    created: String,
    sign_in: Option<Value>,
) -> Value {
    let mut u = json!({
        "id": id,
        "userPrincipalName": upn,
        "displayName": name,
        "accountEnabled": enabled,
        "userType": user_type,
        "createdDateTime": created,
    });
    // `None`: the property is missing from the answer altogether.
    if let Some(s) = sign_in {
        u["signInActivity"] = s;
    }
    u
}

fn sign_in(last_attempt: &str, last_non_interactive: &str, last_success: &str) -> Value {
    json!({
        "lastSignInDateTime": last_attempt,
        "lastSignInRequestId": "d0c3b1a2-0000-4000-8000-000000000001",
        "lastNonInteractiveSignInDateTime": last_non_interactive,
        "lastNonInteractiveSignInRequestId": "d0c3b1a2-0000-4000-8000-000000000002",
        "lastSuccessfulSignInDateTime": last_success,
        "lastSuccessfulSignInRequestId": "d0c3b1a2-0000-4000-8000-000000000003",
    })
}

fn registration(id: &str, upn: &str, user_type: &str, registered: Option<bool>) -> Value {
    json!({
        "id": id,
        "userPrincipalName": upn,
        "userDisplayName": upn.split('@').next().unwrap_or(upn),
        "userType": user_type,
        "isAdmin": false,
        "isSsprRegistered": false,
        "isSsprEnabled": false,
        "isSsprCapable": false,
        "isMfaRegistered": registered,
        "isMfaCapable": registered,
        "isPasswordlessCapable": false,
        "methodsRegistered": if registered == Some(true) { json!(["microsoftAuthenticatorPush", "softwareOneTimePasscode"]) } else { json!([]) },
        "isSystemPreferredAuthenticationMethodEnabled": true,
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": if registered == Some(true) { "push" } else { "none" },
        "lastUpdatedDateTime": "2026-01-10T08:00:00Z",
    })
}

#[allow(clippy::too_many_arguments)]
fn managed_device(
    id: &str,
    name: &str,
    os: &str,
    os_version: &str,
    compliance: &str,
    last_sync: String,
    encrypted: Value,
    aad: &str,
    serial: &str,
    upn: &str,
) -> Value {
    json!({
        "id": id,
        "deviceName": name,
        "operatingSystem": os,
        "osVersion": os_version,
        "complianceState": compliance,
        "lastSyncDateTime": last_sync,
        "isEncrypted": encrypted,
        "managementAgent": "mdm",
        "managedDeviceOwnerType": "company",
        "azureADDeviceId": aad,
        "userPrincipalName": upn,
        "serialNumber": serial,
        "enrolledDateTime": "2025-03-01T09:00:00Z",
    })
}

fn protection(id: &str, healthy: bool, reported: String) -> Value {
    json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices('{id}')/windowsProtectionState/$entity"),
        "@odata.type": "#microsoft.graph.windowsProtectionState",
        "id": id,
        "malwareProtectionEnabled": healthy,
        "realTimeProtectionEnabled": healthy,
        "tamperProtectionEnabled": healthy,
        "signatureVersion": "1.411.246.0",
        "signatureUpdateOverdue": !healthy,
        "quickScanOverdue": false,
        "fullScanOverdue": false,
        "lastQuickScanDateTime": reported.clone(),
        "lastReportedDateTime": reported,
        "engineVersion": "1.1.24050.5",
        "rebootRequired": false,
        "deviceState": "clean",
        "productStatus": "noStatus",
    })
}

#[allow(clippy::too_many_arguments)]
fn machine(
    id: &str,
    dns: &str,
    platform: &str,
    onboarding: &str,
    health: &str,
    last_seen: String,
    aad: Value,
) -> Value {
    json!({
        "id": id,
        "computerDnsName": dns,
        "firstSeen": "2025-03-01T09:30:00Z",
        "lastSeen": last_seen,
        "osPlatform": platform,
        "version": "23H2",
        "osProcessor": "x64",
        "lastIpAddress": "10.0.0.20",
        "lastExternalIpAddress": "203.0.113.10",
        "osBuild": 22631,
        "healthStatus": health,
        "rbacGroupId": 140,
        "rbacGroupName": "Contoso",
        "riskScore": "Low",
        "exposureLevel": "Medium",
        "isAadJoined": !aad.is_null(),
        "aadDeviceId": aad,
        "machineTags": [],
        "onboardingStatus": onboarding,
        "managedBy": "Intune",
        "managedByStatus": "Success",
        "deviceValue": "Normal",
    })
}

fn av_info(machine: &str, dns: &str, mode: &str, signatures: &str, now: DateTime<Utc>) -> Value {
    json!({
        "id": format!("{machine}_av"),
        "machineId": machine,
        "computerDnsName": dns,
        "osKind": "windows",
        "osPlatform": "Windows11",
        "osVersion": "10.0.22631.3447",
        "avMode": mode,
        "avSignatureVersion": "1.411.246.0",
        "avEngineVersion": "1.1.24050.5",
        "avPlatformVersion": "4.18.24050.7",
        "quickScanResult": "Completed",
        "quickScanTime": at(now, 1),
        "lastSeenTime": at(now, 0),
        "dataRefreshTimestamp": at(now, 0),
        "avIsSignatureUpToDate": signatures,
        "avIsEngineUpToDate": "True",
        "avIsPlatformUpToDate": "True",
        "cloudProtectionState": "On",
        "rbacGroupName": "Contoso",
        "rbacGroupId": 140,
    })
}

fn ninja_device(id: i64, system: &str, dns: &str, class: &str, contact: f64) -> Value {
    json!({
        "id": id,
        "parentDeviceId": null,
        "organizationId": 12,
        "locationId": 31,
        "nodeClass": class,
        "nodeRoleId": 1,
        "rolePolicyId": 7,
        "policyId": 7,
        "approvalStatus": "APPROVED",
        "offline": false,
        "displayName": system,
        "systemName": system,
        "dnsName": dns,
        "netbiosName": system,
        "created": 1.7e9,
        "lastContact": contact,
        "lastUpdate": contact,
        "uid": format!("6a1d9c2e-0000-4000-8000-{id:012}"),
        "tags": [],
    })
}

fn ninja_patch(id: &str, device: i64, name: &str, severity: &str, status: &str, ts: f64) -> Value {
    json!({
        "id": id,
        "name": name,
        "severity": severity,
        "status": status,
        "type": "SECURITY_UPDATES",
        "kbNumber": name.split_whitespace().find(|w| w.starts_with("(KB")).map(|w| w.trim_matches(|c| c == '(' || c == ')')),
        "deviceId": device,
        "timestamp": ts,
    })
}

fn ninja_install(id: &str, device: i64, status: &str, installed: f64) -> Value {
    json!({
        "id": id,
        "name": "2026-01 Cumulative Update for Windows 11 (KB5034123)",
        "severity": "CRITICAL",
        "status": status,
        "type": "SECURITY_UPDATES",
        "kbNumber": "KB5034123",
        "installedAt": installed,
        "deviceId": device,
        "timestamp": installed,
    })
}

fn ninja_av(device: i64, product: &str, state: &str, definitions: &str, ts: f64) -> Value {
    json!({
        "productName": product,
        "productState": state,
        "definitionStatus": definitions,
        "version": "4.18.24050.7",
        "deviceId": device,
        "timestamp": ts,
    })
}

#[allow(clippy::too_many_arguments)]
fn datto_device(
    uid: &str,
    hostname: &str,
    os: Option<&str>,
    category: &str,
    class: &str,
    last_seen: i64,
    patch: Value,
    antivirus: Value,
) -> Value {
    json!({
        "id": 884_000 + hostname.len() as i64,
        "uid": uid,
        "siteId": 4412,
        "siteUid": "7c3f0e2a-5d1b-4c8e-9a6f-2b4d8e0c1a3f",
        "siteName": "Contoso Dental - Main",
        "deviceType": {"category": category, "type": category},
        "hostname": hostname,
        "intIpAddress": "10.0.0.40",
        "operatingSystem": os,
        "lastLoggedInUser": "CONTOSO\\frontdesk",
        "domain": "CONTOSO",
        "cagVersion": "4.4.2200.2200",
        "displayVersion": "4.4.2200",
        "extIpAddress": "203.0.113.10",
        "description": "",
        "a64Bit": true,
        "rebootRequired": false,
        "online": true,
        "suspended": false,
        "deleted": false,
        "lastSeen": last_seen,
        "lastReboot": last_seen,
        "lastAuditDate": last_seen,
        "creationDate": 1_700_000_000_000_i64,
        "udf": {},
        "snmpEnabled": false,
        "deviceClass": class,
        "portalUrl": "https://pinotage.centrastage.net/csm/search?dn=x",
        "warrantyDate": null,
        "antivirus": antivirus,
        "patchManagement": patch,
        "softwareStatus": "Compliant",
        "webRemoteUrl": "https://pinotage.centrastage.net/csm/remote/rto/x",
        "networkProbe": false,
        "onboardedViaNetworkMonitor": false,
    })
}

fn datto_patch(status: &str, pending: i64, installed: i64) -> Value {
    json!({"patchStatus": status, "patchesApprovedPending": pending, "patchesNotApproved": 0, "patchesInstalled": installed})
}

fn datto_av(product: Option<&str>, status: Option<&str>) -> Value {
    json!({"antivirusProduct": product, "antivirusStatus": status})
}

fn organisation(now: DateTime<Utc>) -> Org {
    let d = |n| at(now, n);
    let never = "0001-01-01T00:00:00Z";
    let users = vec![
        // Signed in two days ago; Global Administrator; MFA registered.
        graph_user(
            ALICE,
            "alice@contoso.com",
            "Alice Admin",
            true,
            Some("Member"),
            d(400),
            Some(sign_in(&d(2), &d(1), &d(2))),
        ),
        // Someone tried yesterday, but the last success is 200 days old.
        graph_user(
            BOB,
            "bob@contoso.com",
            "Bob Dormant",
            true,
            Some("Member"),
            d(500),
            Some(sign_in(&d(1), never, &d(200))),
        ),
        // Active, no MFA method, and a helpdesk administrator through a group.
        graph_user(
            CAROL,
            "carol@contoso.com",
            "Carol Helpdesk",
            true,
            Some("Member"),
            d(300),
            Some(sign_in(&d(3), &d(3), &d(3))),
        ),
        // A leaver, disabled: judged by nothing.
        graph_user(
            DAVE,
            "dave@contoso.com",
            "Dave Leaver",
            false,
            Some("Member"),
            d(900),
            Some(sign_in(&d(400), never, &d(400))),
        ),
        // An invited guest who never signed in (signInActivity null).
        graph_user(
            VENDOR,
            "vendor_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "Vendor (Fabrikam)",
            true,
            Some("Guest"),
            d(300),
            Some(Value::Null),
        ),
        // No signInActivity in the answer at all.
        graph_user(
            ERIN,
            "erin@contoso.com",
            "Erin New",
            true,
            Some("Member"),
            d(200),
            None,
        ),
        // Active, no row in the registration report.
        graph_user(
            FRANK,
            "frank@contoso.com",
            "Frank Nobody",
            true,
            Some("Member"),
            d(150),
            Some(sign_in(&d(1), &d(1), &d(1))),
        ),
        // A guest who signs in: fine.
        graph_user(
            AUDITOR,
            "auditor_kpmg.example#EXT#@contoso.onmicrosoft.com",
            "External Auditor",
            true,
            Some("Guest"),
            d(60),
            Some(sign_in(&d(5), never, &d(5))),
        ),
    ];
    let registrations = vec![
        registration(ALICE, "alice@contoso.com", "member", Some(true)),
        registration(BOB, "bob@contoso.com", "member", Some(true)),
        registration(CAROL, "carol@contoso.com", "member", Some(false)),
        registration(DAVE, "dave@contoso.com", "member", Some(false)),
        registration(ERIN, "erin@contoso.com", "member", Some(true)),
        registration(
            AUDITOR,
            "auditor_kpmg.example#EXT#@contoso.onmicrosoft.com",
            "guest",
            Some(false),
        ),
    ];
    let policies = vec![
        json!({
            "id": "7f3e1b2a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "displayName": "Require MFA for all users",
            "createdDateTime": "2025-01-05T10:00:00Z",
            "modifiedDateTime": null,
            "state": "enabled",
            "sessionControls": null,
            "conditions": {
                "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": ["all"],
                "platforms": null, "locations": null, "devices": null,
                "applications": {"includeApplications": ["All"], "excludeApplications": [], "includeUserActions": []},
                "users": {"includeUsers": ["All"], "excludeUsers": [BOB], "includeGroups": [],
                    "excludeGroups": [BREAK_GLASS_GROUP], "includeRoles": [], "excludeRoles": []}
            },
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [], "termsOfUse": []}
        }),
        json!({
            "id": "8a4f2c3b-2d3e-4f60-9bac-1d2e3f4a5b6c",
            "displayName": "Block legacy authentication (report-only)",
            "state": "enabledForReportingButNotEnforced",
            "conditions": {
                "clientAppTypes": ["exchangeActiveSync", "other"],
                "applications": {"includeApplications": ["All"]},
                "users": {"includeUsers": ["All"], "excludeUsers": [], "includeGroups": [], "excludeGroups": [], "includeRoles": [], "excludeRoles": []}
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }),
    ];
    let role_definitions = vec![
        json!({"id": GLOBAL_ADMIN, "displayName": "Global Administrator", "templateId": GLOBAL_ADMIN, "isBuiltIn": true}),
        json!({"id": HELPDESK_ADMIN, "displayName": "Helpdesk Administrator", "templateId": HELPDESK_ADMIN, "isBuiltIn": true}),
    ];
    let role_assignments = vec![
        json!({"id": "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1", "principalId": ALICE,
            "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/",
            "principal": {"@odata.type": "#microsoft.graph.user", "id": ALICE, "displayName": "Alice Admin", "userPrincipalName": "alice@contoso.com"}}),
        json!({"id": "4-PYiFWPHkqVOpuYmLiHa3ibEcXLJYtFq5x3KkFQfSs-1", "principalId": HELPDESK_GROUP,
            "roleDefinitionId": HELPDESK_ADMIN, "directoryScopeId": "/",
            "principal": {"@odata.type": "#microsoft.graph.group", "id": HELPDESK_GROUP, "displayName": "Helpdesk Admins", "isAssignableToRole": true}}),
    ];
    let member = |id: &str, upn: &str| json!({"@odata.type": "#microsoft.graph.user", "id": id, "userPrincipalName": upn});

    let devices = vec![
        managed_device(
            FRONTDESK,
            "FRONTDESK-01",
            "Windows",
            "10.0.22631.3447",
            "compliant",
            d(0),
            json!(true),
            "b1f0a7c4-0000-4a1b-8c2d-00000000000a",
            "5CG1111AAA",
            "alice@contoso.com",
        ),
        managed_device(
            RECEPTION,
            "RECEPTION-02",
            "Windows",
            "10.0.22631.3447",
            "compliant",
            d(0),
            json!(true),
            "b1f0a7c4-0000-4a1b-8c2d-00000000000b",
            "5CG2222BBB",
            "carol@contoso.com",
        ),
        // Last synced two months ago; the firmware has no serial number.
        managed_device(
            KIOSK,
            "KIOSK-04",
            "Windows",
            "10.0.19045.4291",
            "compliant",
            d(60),
            json!(true),
            "b1f0a7c4-0000-4a1b-8c2d-00000000000d",
            "To be filled by O.E.M.",
            "",
        ),
        // Re-imaged: a new Entra device id, the same name and serial.
        managed_device(
            ACCOUNTS,
            "ACCT-05",
            "Windows",
            "10.0.22631.3447",
            "compliant",
            d(0),
            json!(true),
            "b1f0a7c4-0000-4a1b-8c2d-0000000000e2",
            "5CG5555EEE",
            "bob@contoso.com",
        ),
        // Enrolled, never synced: Graph's 0001-01-01, no Entra id, no serial,
        // compliance unknown, encryption not reported.
        managed_device(
            SPARE,
            "SPARE-09",
            "Windows",
            "",
            "unknown",
            never.into(),
            Value::Null,
            "00000000-0000-0000-0000-000000000000",
            "",
            "",
        ),
        managed_device(
            PHONE,
            "Alice's iPhone",
            "iOS",
            "17.4.1",
            "compliant",
            d(1),
            json!(true),
            "b1f0a7c4-0000-4a1b-8c2d-000000000007",
            "F2LXK0AAHG7F",
            "alice@contoso.com",
        ),
    ];
    let never_reported = json!({
        "@odata.type": "#microsoft.graph.windowsProtectionState",
        "id": SPARE,
        "malwareProtectionEnabled": null, "realTimeProtectionEnabled": null, "tamperProtectionEnabled": null,
        "signatureVersion": null, "signatureUpdateOverdue": null, "quickScanOverdue": null, "fullScanOverdue": null,
        "lastQuickScanDateTime": null, "lastReportedDateTime": null, "engineVersion": null,
        "rebootRequired": null, "deviceState": null, "productStatus": null,
    });

    let mut graph: HashMap<String, Vec<Value>> = HashMap::new();
    graph.insert("/v1.0/users".into(), users);
    graph.insert(
        "/v1.0/reports/authenticationMethods/userRegistrationDetails".into(),
        registrations,
    );
    graph.insert("/v1.0/identity/conditionalAccess/policies".into(), policies);
    graph.insert(
        "/v1.0/roleManagement/directory/roleDefinitions".into(),
        role_definitions,
    );
    graph.insert(
        "/v1.0/roleManagement/directory/roleAssignments".into(),
        role_assignments,
    );
    graph.insert(
        format!("/v1.0/groups/{HELPDESK_GROUP}/transitiveMembers/microsoft.graph.user"),
        vec![member(CAROL, "carol@contoso.com")],
    );
    graph.insert(
        format!("/v1.0/groups/{BREAK_GLASS_GROUP}/transitiveMembers/microsoft.graph.user"),
        vec![member(DAVE, "dave@contoso.com")],
    );
    graph.insert("/v1.0/deviceManagement/managedDevices".into(), devices);
    graph.insert(
        "/v1.0/identityGovernance/accessReviews/definitions".into(),
        vec![],
    );
    graph.insert("/v1.0/security/incidents".into(), vec![]);
    graph.insert(
        "/v1.0/security/secureScores".into(),
        vec![json!({"id": format!("{TENANT}_2026-01-10"), "azureTenantId": TENANT, "currentScore": 41.5,
            "maxScore": 80.0, "createdDateTime": d(1), "controlScores": []})],
    );
    let mut objects = HashMap::new();
    objects.insert(
        "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy".to_owned(),
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#policies/identitySecurityDefaultsEnforcementPolicy/$entity",
            "id": "00000000-0000-0000-0000-000000000005", "displayName": "Security Defaults",
            "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft.",
            "isEnabled": false}),
    );
    for (id, state) in [
        (FRONTDESK, protection(FRONTDESK, true, d(0))),
        (RECEPTION, protection(RECEPTION, true, d(1))),
        (KIOSK, protection(KIOSK, true, d(60))),
        (ACCOUNTS, protection(ACCOUNTS, true, d(0))),
        (SPARE, never_reported),
    ] {
        objects.insert(
            format!("/v1.0/deviceManagement/managedDevices/{id}/windowsProtectionState"),
            state,
        );
    }

    let m = |n: u8| format!("{:040x}", u128::from(n) * 0x1f2e_3d4c_5b6a_7988);
    let machines = vec![
        machine(
            &m(1),
            "frontdesk-01.contoso.local",
            "Windows11",
            "Onboarded",
            "Active",
            d(0),
            json!("b1f0a7c4-0000-4a1b-8c2d-00000000000a"),
        ),
        machine(
            &m(2),
            "reception-02.contoso.local",
            "Windows11",
            "Onboarded",
            "Active",
            d(0),
            json!("b1f0a7c4-0000-4a1b-8c2d-00000000000b"),
        ),
        // ACCT-05 before it was re-imaged: its old Entra id, an inactive sensor.
        machine(
            &m(3),
            "acct-05.contoso.local",
            "Windows11",
            "Onboarded",
            "Inactive",
            d(40),
            json!("b1f0a7c4-0000-4a1b-8c2d-0000000000e1"),
        ),
        machine(
            &m(4),
            "acct-05.contoso.local",
            "Windows11",
            "Onboarded",
            "Active",
            d(0),
            json!("b1f0a7c4-0000-4a1b-8c2d-0000000000e2"),
        ),
        // A server: not joined to Entra ID, known by its FQDN.
        machine(
            &m(5),
            "filesrv-01.contoso.local",
            "WindowsServer2019",
            "Onboarded",
            "Active",
            d(0),
            Value::Null,
        ),
        // Found by device discovery on the network, never onboarded.
        machine(
            &m(6),
            "warehouse-pc",
            "Windows10",
            "CanBeOnboarded",
            "Inactive",
            d(2),
            Value::Null,
        ),
    ];
    let av = vec![
        av_info(&m(1), "frontdesk-01.contoso.local", "0", "True", now),
        av_info(&m(2), "reception-02.contoso.local", "0", "True", now),
        av_info(&m(4), "acct-05.contoso.local", "0", "True", now),
        // Passive beside the server's Sophos.
        av_info(&m(5), "filesrv-01.contoso.local", "1", "True", now),
    ];

    let e = |n| epoch(now, n);
    let ninja_devices = vec![
        ninja_device(
            101,
            "FRONTDESK-01",
            "frontdesk-01.contoso.local",
            "WINDOWS_WORKSTATION",
            e(0),
        ),
        // A lab PC only NinjaOne knows, with no patch scan results at all.
        ninja_device(
            102,
            "LAB-PC-03",
            "lab-pc-03.contoso.local",
            "WINDOWS_WORKSTATION",
            e(0),
        ),
        ninja_device(
            103,
            "filesrv-01",
            "filesrv-01.contoso.local",
            "WINDOWS_SERVER",
            e(0),
        ),
    ];
    let mut ninja_queries = HashMap::new();
    ninja_queries.insert(
        "/v2/queries/os-patches".to_owned(),
        vec![
            ninja_patch(
                "p-1",
                101,
                "Microsoft Edge 124 (KB5036999)",
                "MODERATE",
                "APPROVED",
                e(3),
            ),
            ninja_patch(
                "p-2",
                103,
                "2026-01 Cumulative Update for Windows Server 2019 (KB5034127)",
                "CRITICAL",
                "APPROVED",
                e(45),
            ),
            ninja_patch(
                "p-3",
                103,
                ".NET Framework 4.8 (KB5034275)",
                "IMPORTANT",
                "MANUAL",
                e(10),
            ),
        ],
    );
    ninja_queries.insert(
        "/v2/queries/os-patch-installs".to_owned(),
        vec![
            ninja_install("i-1", 101, "INSTALLED", e(5)),
            ninja_install("i-2", 103, "INSTALLED", e(2)),
        ],
    );
    ninja_queries.insert(
        "/v2/queries/antivirus-status".to_owned(),
        vec![
            ninja_av(
                101,
                "Microsoft Defender Antivirus",
                "ON",
                "UP_TO_DATE",
                e(0),
            ),
            // Defender off while Sophos runs: standing by, not a gap.
            ninja_av(102, "Windows Defender", "OFF", "UP_TO_DATE", e(0)),
            ninja_av(102, "Sophos Intercept X", "ON", "UP_TO_DATE", e(0)),
            ninja_av(103, "Sophos Intercept X", "ON", "UP_TO_DATE", e(0)),
        ],
    );

    let ms = |n| millis(now, n);
    let datto_devices = vec![
        // RECEPTION-02 in lower case, with a third-party antivirus whose
        // signatures are stale, reported today.
        datto_device(
            "5d2e1c0b-aaaa-4f3e-8d7c-000000000b02",
            "reception-02",
            Some("Microsoft Windows 11 Pro 23H2"),
            "Desktop",
            "device",
            ms(0),
            datto_patch("FullyPatched", 0, 120),
            datto_av(Some("Sophos Intercept X"), Some("RunningAndNotUpToDate")),
        ),
        // The file server: patches fail to install.
        datto_device(
            "5d2e1c0b-aaaa-4f3e-8d7c-000000000f01",
            "FILESRV-01",
            Some("Microsoft Windows Server 2019 Standard"),
            "Server",
            "device",
            ms(0),
            datto_patch("InstallError", 3, 300),
            datto_av(Some("Sophos Intercept X"), Some("RunningAndUpToDate")),
        ),
        // HR-LAPTOP-06 under its old name, not seen since it was renamed.
        datto_device(
            "5d2e1c0b-aaaa-4f3e-8d7c-000000000f06",
            "HR-LAPTOP-OLD",
            Some("Microsoft Windows 10 Pro 22H2"),
            "Laptop",
            "device",
            ms(50),
            datto_patch("FullyPatched", 0, 80),
            datto_av(Some("Windows Defender"), Some("RunningAndUpToDate")),
        ),
        // A network printer: no operating system, no agent, no antivirus.
        datto_device(
            "5d2e1c0b-aaaa-4f3e-8d7c-0000000000p1",
            "PRN-LOBBY",
            None,
            "Printer",
            "printer",
            ms(0),
            json!({"patchStatus": null, "patchesApprovedPending": null, "patchesNotApproved": null, "patchesInstalled": null}),
            datto_av(None, None),
        ),
    ];
    Org {
        graph,
        objects,
        machines,
        av_info: av,
        ninja_devices,
        ninja_queries,
        datto_devices,
    }
}

/// Query parameters, decoded.
fn query(uri: &Uri) -> BTreeMap<String, String> {
    let text = format!("http://h{uri}");
    reqwest::Url::parse(&text)
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn number(q: &BTreeMap<String, String>, key: &str) -> Option<usize> {
    q.get(key).and_then(|v| v.parse().ok())
}

/// One page of `records` from `start`, at most [`PAGE`] long.
fn page(records: &[Value], start: usize) -> Vec<Value> {
    records.iter().skip(start).take(PAGE).cloned().collect()
}

/// A Graph / Defender collection page: `value` and, while records remain, an
/// `@odata.nextLink` carrying the request's own query plus `$skiptoken`, as
/// Graph writes it.
fn odata_page(s: &Served, uri: &Uri, records: &[Value]) -> Value {
    let q = query(uri);
    let start = q
        .get("$skiptoken")
        .and_then(|t| t.strip_prefix("RFNwdAIAAQAAAB"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let value = page(records, start);
    let mut body = json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{}", uri.path().trim_start_matches("/v1.0/")),
        "value": value,
    });
    if start + PAGE < records.len() {
        let kept: Vec<String> = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| {
                !p.is_empty() && !p.starts_with("$skiptoken") && !p.starts_with("%24skiptoken")
            })
            .map(str::to_owned)
            .collect();
        let mut next = format!("{}{}?", s.base, uri.path());
        for p in kept {
            next.push_str(&p);
            next.push('&');
        }
        next.push_str(&format!("$skiptoken=RFNwdAIAAQAAAB{}", start + PAGE));
        body["@odata.nextLink"] = json!(next);
    }
    body
}

async fn answer(State(s): State<Arc<Served>>, method: Method, uri: Uri, _body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let q = query(&uri);
    let org = &s.org;
    if method == Method::POST {
        return if path == format!("/{TENANT}/oauth2/v2.0/token") {
            Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.graph.sig"})).into_response()
        } else if path == "/ws/oauth/token" {
            Json(json!({"access_token": "ninja-token", "expires_in": 3600, "scope": "monitoring", "token_type": "Bearer"})).into_response()
        } else if path == "/auth/oauth/token" {
            Json(json!({"access_token": "datto-token", "token_type": "bearer", "expires_in": 359999, "scope": "default", "jti": "a1b2"})).into_response()
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    }
    if let Some(records) = org.graph.get(&path) {
        return Json(odata_page(&s, &uri, records)).into_response();
    }
    if let Some(object) = org.objects.get(&path) {
        return Json(object.clone()).into_response();
    }
    match path.as_str() {
        "/api/machines" => {
            // Microsoft documents `$top` (at most 10,000) and `$skip`, and no next link.
            let top = number(&q, "$top").unwrap_or(10_000);
            let skip = number(&q, "$skip").unwrap_or(0);
            let value: Vec<Value> = org.machines.iter().skip(skip).take(top).cloned().collect();
            Json(json!({"@odata.context": "https://api.security.microsoft.com/api/$metadata#Machines", "value": value})).into_response()
        }
        "/api/deviceavinfo" => Json(odata_page(&s, &uri, &org.av_info)).into_response(),
        "/v2/devices" => {
            let after = q.get("after").and_then(|a| a.parse::<i64>().ok()).unwrap_or(i64::MIN);
            let size = number(&q, "pageSize").unwrap_or(PAGE).min(PAGE);
            let list: Vec<Value> = org
                .ninja_devices
                .iter()
                .filter(|d| d["id"].as_i64().is_some_and(|id| id > after))
                .take(size)
                .cloned()
                .collect();
            Json(Value::Array(list)).into_response()
        }
        p if org.ninja_queries.contains_key(p) => {
            let rows = &org.ninja_queries[p];
            let offset = q
                .get("cursor")
                .and_then(|c| c.strip_prefix("cur-"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let results = page(rows, offset);
            Json(json!({
                "cursor": {"name": format!("cur-{}", offset + results.len()), "offset": offset,
                    "count": results.len(), "expires": 1_900_000_000},
                "results": results,
            }))
            .into_response()
        }
        "/api/v2/account/devices" => {
            let n = number(&q, "page").unwrap_or(0);
            let devices = page(&org.datto_devices, n * PAGE);
            let more = (n + 1) * PAGE < org.datto_devices.len();
            let url = |k: usize| format!("{}/api/v2/account/devices?max={}&page={k}", s.base, PAGE);
            Json(json!({
                "pageDetails": {
                    "count": devices.len(),
                    "totalCount": org.datto_devices.len(),
                    "prevPageUrl": if n > 0 { json!(url(n - 1)) } else { Value::Null },
                    "nextPageUrl": if more { json!(url(n + 1)) } else { Value::Null },
                },
                "devices": devices,
            }))
            .into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "Request_ResourceNotFound", "message": format!("no route {path}")}})),
        )
            .into_response(),
    }
}

struct Run {
    _dir: tempfile::TempDir,
    outcome: RunOutcome,
    facts: Facts,
}

fn collect_and_judge() -> Run {
    let now = Utc::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let served = Arc::new(Served {
        org: organisation(now),
        base: base.clone(),
    });
    let app = axum::Router::new().fallback(answer).with_state(served);
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let put = |name: &str, value: &str| {
        std::fs::write(dir.path().join(name), value).expect("write secret");
    };
    put("graph.secret", "graph-client-secret");
    put("ninja.secret", "ninja-client-secret");
    put("datto.key", "DATTOKEY");
    put("datto.secret", "DATTOSECRET");
    let text = format!(
        r#"
[organisation]
name = "Contoso Dental"
frameworks = ["hipaa", "pci-dss", "soc2"]
store = "store"

[sources.m365]
type = "m365"
tenant_id = "{TENANT}"
client_id = "{CLIENT}"
client_secret_file = "graph.secret"
authority_url = "{base}"
graph_url = "{base}"
defender_url = "{base}"
defender_page_size = 2
protection_state = "per-device"
rate_limits = {{ identity_reports = "1000/1s", conditional_access = "1000/1s" }}

[sources.ninja]
type = "ninjaone"
base_url = "{base}"
client_id = "ninja-client"
client_secret_file = "ninja.secret"

[sources.datto]
type = "datto-rmm"
base_url = "{base}"
api_key_file = "datto.key"
api_secret_file = "datto.secret"
"#
    );
    let path = dir.path().join("auditpack.toml");
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(&path).expect("config loads");
    let options = RunOptions {
        as_of: Some(now),
        ..crate::common::fast_options()
    };
    let outcome = run(&config, &options, &runtime).expect("run completes");
    let facts = read_facts(&outcome.run_dir);
    Run {
        _dir: dir,
        outcome,
        facts,
    }
}

fn read_facts(run_dir: &Path) -> Facts {
    let bytes = std::fs::read(run_dir.join("facts/facts.json")).expect("facts");
    serde_json::from_slice(&bytes).expect("facts parse")
}

/// Every result of `check` (one per threshold set) agree; that one.
fn check<'a>(run: &'a Run, id: &str) -> &'a CheckResult {
    let all: Vec<&CheckResult> = run
        .outcome
        .results
        .iter()
        .flat_map(|c| c.checks.iter())
        .filter(|c| c.check == id)
        .collect();
    assert!(!all.is_empty(), "no result for {id}");
    all[0]
}

fn ids(subjects: &[auditpack::checks::Subject]) -> BTreeSet<String> {
    subjects.iter().map(|s| s.id.clone()).collect()
}

/// The inventory item a per-source device id belongs to.
fn item_of(run: &Run, member: &str) -> String {
    run.facts
        .inventory
        .iter()
        .find(|i| i.members.iter().any(|m| m == member))
        .map(|i| i.id.clone())
        .unwrap_or_else(|| panic!("{member} is in no inventory item"))
}

fn dump(run: &Run) -> String {
    let mut out = String::new();
    for item in &run.facts.inventory {
        out.push_str(&format!(
            "{} {:?} {:?}\n",
            item.id, item.members, item.conflicts
        ));
    }
    let mut seen = BTreeSet::new();
    for c in run.outcome.results.iter().flat_map(|c| c.checks.iter()) {
        if seen.insert(c.result.clone()) {
            out.push_str(&format!(
                "{} {:?} failing {:?} unproven {:?}: {}\n",
                c.result,
                c.outcome,
                c.failing
                    .iter()
                    .map(|s| (&s.id, &s.detail))
                    .collect::<Vec<_>>(),
                c.unproven
                    .iter()
                    .map(|s| (&s.id, &s.detail))
                    .collect::<Vec<_>>(),
                c.summary
            ));
        }
    }
    out
}

fn m365(id: &str) -> String {
    format!("m365:{id}")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The check's verdict, failing and unproven subject ids.
fn judged(run: &Run, id: &str) -> (Verdict, BTreeSet<String>, BTreeSet<String>) {
    let c = check(run, id);
    assert_eq!(c.failing_count, c.failing.len(), "{id}");
    assert_eq!(c.unproven_count, c.unproven.len(), "{id}");
    (c.outcome, ids(&c.failing), ids(&c.unproven))
}

#[test]
fn an_organisation_built_from_the_vendor_documentation_is_judged_by_the_principles() {
    let run = collect_and_judge();
    let report = dump(&run);
    for (name, source) in &run.outcome.manifest.sources {
        assert_eq!(
            source.status,
            SourceStatus::Complete,
            "{name}: {:?} {:?}\n{report}",
            source.reason,
            source.datasets
        );
    }

    // Reconciliation: the same machine under FQDN and short name, in any
    // case, across Intune, Defender, NinjaOne and Datto, is one item; the
    // re-imaged machine's two Defender records fold into its Intune device.
    let frontdesk = item_of(&run, &m365(FRONTDESK));
    assert_eq!(item_of(&run, "ninja:101"), frontdesk, "{report}");
    let reception = item_of(&run, &m365(RECEPTION));
    assert_eq!(
        item_of(&run, "datto:5d2e1c0b-aaaa-4f3e-8d7c-000000000b02"),
        reception
    );
    let server = item_of(&run, "ninja:103");
    assert_eq!(
        item_of(&run, "datto:5d2e1c0b-aaaa-4f3e-8d7c-000000000f01"),
        server
    );
    let server_item = run
        .facts
        .inventory
        .iter()
        .find(|i| i.id == server)
        .expect("server item");
    assert_eq!(
        server_item.sources,
        ["datto", "m365", "ninja"],
        "Defender's FQDN record joins the RMMs' short names: {report}"
    );
    let accounts = item_of(&run, &m365(ACCOUNTS));
    let kiosk = item_of(&run, &m365(KIOSK));
    let spare = item_of(&run, &m365(SPARE));
    let lab = item_of(&run, "ninja:102");
    let old_laptop = item_of(&run, "datto:5d2e1c0b-aaaa-4f3e-8d7c-000000000f06");
    let printer = item_of(&run, "datto:5d2e1c0b-aaaa-4f3e-8d7c-0000000000p1");
    let discovered = run
        .facts
        .inventory
        .iter()
        .find(|i| i.name == "warehouse-pc")
        .map(|i| i.id.clone())
        .expect("the discovered machine is in the inventory");
    assert!(
        run.facts
            .inventory
            .iter()
            .all(|i| !i.name.to_ascii_lowercase().starts_with("acct-05") || i.id == accounts),
        "the re-imaged machine's old Defender record is no machine of its own: {report}"
    );
    assert_eq!(
        run.facts.users.len(),
        8,
        "every user of every page, guests and disabled accounts included"
    );

    // Identity.
    assert_eq!(
        judged(&run, "mfa_registered"),
        (Verdict::Fail, set(&[&m365(CAROL), &m365(FRANK)]), set(&[])),
        "Carol registered nothing, Frank has no row in the report; guests and the disabled Dave are not judged: {report}"
    );
    assert_eq!(
        judged(&run, "mfa_admins"),
        (Verdict::Fail, set(&[&m365(CAROL)]), set(&[])),
        "Carol holds Helpdesk Administrator through a role-assignable group: {report}"
    );
    assert_eq!(
        judged(&run, "mfa_enforced"),
        (Verdict::Fail, set(&[&m365(BOB)]), set(&[])),
        "Bob is excluded from the only enforced policy; report-only does not enforce: {report}"
    );
    assert_eq!(
        judged(&run, "inactive_accounts"),
        (
            Verdict::Fail,
            set(&[&m365(BOB), &m365(VENDOR)]),
            set(&[&m365(ERIN)])
        ),
        "a failed attempt yesterday does not make Bob active; the guest never signed in; Erin's sign-in activity is missing, not old: {report}"
    );
    assert_eq!(
        judged(&run, "guest_accounts_reviewed"),
        (Verdict::Fail, set(&[&m365(VENDOR)]), set(&[])),
        "no review exists; the auditor was invited within the period: {report}"
    );

    // Devices.
    assert_eq!(
        judged(&run, "device_coverage"),
        (
            Verdict::Fail,
            set(&[&kiosk, &spare, &accounts, &lab, &old_laptop, &discovered]),
            set(&[])
        ),
        "every machine missing from a management family, by name; the printer and the phone are not expected in both: {report}"
    );
    assert_eq!(
        judged(&run, "edr_onboarded"),
        (
            Verdict::Fail,
            set(&[&kiosk, &spare, &discovered]),
            set(&[&lab, &old_laptop])
        ),
        "Intune devices a complete machine list lacks, and the discovered machine, fail; the re-imaged machine's newest record is active; RMM-only machines are unproven; the printer is out of scope: {report}"
    );
    assert_eq!(
        judged(&run, "edr_coverage"),
        (Verdict::Inconclusive, set(&[]), set(&[&discovered])),
        "nobody reports anti-malware on the discovered machine; the printer is out of scope: {report}"
    );
    assert_eq!(
        judged(&run, "edr_health"),
        (Verdict::Fail, set(&[&reception]), set(&[&old_laptop, &spare])),
        "Datto's stale Sophos on RECEPTION-02 is not silenced by Intune's healthy Defender; Datto has no real-time flag and SPARE-09 never reported; Defender off beside a running Sophos on LAB-PC-03 is standing by: {report}"
    );
    assert_eq!(
        judged(&run, "devices_report_patch_state"),
        (Verdict::Fail, set(&[&lab]), set(&[])),
        "LAB-PC-03 has no patch data in NinjaOne; the printer gets no OS patches: {report}"
    );
    assert_eq!(
        judged(&run, "patch_install_failures"),
        (Verdict::Fail, set(&[&server]), set(&[])),
        "Datto's InstallError on the server stands beside NinjaOne's successful installs: {report}"
    );
    assert_eq!(
        judged(&run, "patch_latency_critical"),
        (Verdict::Fail, set(&["ninja:103"]), set(&[])),
        "{report}"
    );
    assert_eq!(
        judged(&run, "stale_devices"),
        (
            Verdict::Fail,
            set(&[&m365(KIOSK), "datto:5d2e1c0b-aaaa-4f3e-8d7c-000000000f06"]),
            set(&[&m365(SPARE)])
        ),
        "records silent for 60 and 50 days fail; Graph's 0001-01-01 is no time at all: {report}"
    );
    assert_eq!(
        judged(&run, "intune_compliance"),
        (Verdict::Inconclusive, set(&[]), set(&[&spare])),
        "{report}"
    );
    let (verdict, failing, unproven) = judged(&run, "disk_encryption");
    assert_eq!(
        (verdict, failing),
        (Verdict::Inconclusive, set(&[])),
        "{report}"
    );
    assert!(
        unproven.contains(&spare) && !unproven.contains(&printer) && !unproven.contains(&frontdesk),
        "{report}"
    );
    // Subjects are named, so the finding says what to fix.
    let named = check(&run, "edr_health");
    assert!(
        named.failing[0].name.eq_ignore_ascii_case("RECEPTION-02")
            && named.failing[0].detail.contains("Sophos Intercept X")
            && named.failing[0].detail.contains("datto"),
        "{report}"
    );
    assert!(report.lines().count() > 10);
}
