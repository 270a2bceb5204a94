//! The fact types: what checks may know about identities, policies, reviews
//! and devices, independent of the source that said it.
//!
//! Per-device attributes are `Option`s: `None` means "this source does not
//! say", which is different from a source saying "no". Stable ids are
//! `<source name>:<id in that source>`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run::DatasetStatus;

/// A kind of fact a check can depend on. A check whose needed kind is absent
/// (no configured source provides it) or incomplete is `inconclusive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// Directory users: enabled, member or guest.
    Users,
    /// Last sign-in per user.
    SignInActivity,
    /// MFA registration per user.
    MfaRegistration,
    /// Conditional Access policies and security defaults (MFA enforcement).
    MfaEnforcement,
    /// Members of the groups Conditional Access policies include or exclude
    /// (held in [`MfaEnforcement::group_members`]; a group whose members were
    /// not all read is left out, so only the accounts whose coverage depends
    /// on it are unproven).
    GroupMembers,
    /// Directory role assignments (who is an admin).
    AdminRoles,
    /// Access review definitions, instances and decisions.
    AccessReviews,
    /// Device inventory.
    Devices,
    /// Pending OS patches per device.
    PendingPatches,
    /// Whether each device reports patch state.
    PatchState,
    /// Anti-malware / EDR state per device.
    Antimalware,
    /// EDR sensor onboarding and health per device (Defender for Endpoint
    /// machines, EDR products in endpoint reports).
    Edr,
    /// Disk encryption per device.
    Encryption,
    /// Intune compliance per device.
    Compliance,
    /// Microsoft Secure Score.
    SecureScore,
    /// Documents people supplied for manual controls.
    ManualEvidence,
    /// Security incidents of an incident queue (Microsoft Defender XDR).
    SecurityIncidents,
    /// Backups per protected system: jobs, results, copies (see
    /// [`crate::facts::ProtectedSystem`]).
    Backups,
    /// Restore and boot tests per protected system.
    RestoreTests,
}

impl FactKind {
    /// Human name for reasons.
    pub fn describe(self) -> &'static str {
        match self {
            FactKind::Users => "directory users",
            FactKind::SignInActivity => "sign-in activity",
            FactKind::MfaRegistration => "MFA registration",
            FactKind::MfaEnforcement => "MFA enforcement policies",
            FactKind::GroupMembers => "members of policy groups",
            FactKind::AdminRoles => "admin role assignments",
            FactKind::AccessReviews => "access reviews",
            FactKind::Devices => "device inventory",
            FactKind::PendingPatches => "pending patches",
            FactKind::PatchState => "device patch reporting",
            FactKind::Antimalware => "anti-malware and EDR state",
            FactKind::Edr => "EDR sensor onboarding",
            FactKind::Encryption => "disk encryption state",
            FactKind::Compliance => "device compliance state",
            FactKind::SecureScore => "Secure Score",
            FactKind::ManualEvidence => "manual evidence",
            FactKind::SecurityIncidents => "security incidents",
            FactKind::Backups => "backups",
            FactKind::RestoreTests => "restore and boot tests",
        }
    }
}

/// Where a kind of fact came from and how complete that source was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Source name.
    pub source: String,
    /// Dataset name.
    pub dataset: String,
    /// Completeness of the dataset (downgraded when records were unreadable).
    pub status: DatasetStatus,
    /// Why it is not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Evidence files (run-relative paths) the facts were read from.
    pub evidence: Vec<String>,
}

/// Member or guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    /// A member of the organisation.
    Member,
    /// An external (B2B) guest.
    Guest,
}

/// MFA registration state of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaState {
    /// Has registered a method usable for MFA; `None` when the record does
    /// not say (no evidence either way for this user).
    pub registered: Option<bool>,
    /// Registered and allowed by policy to use it; `None` when not said.
    pub capable: Option<bool>,
    /// Methods registered.
    pub methods: Vec<String>,
}

/// A directory role held by a user.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoleHeld {
    /// Role template / definition id.
    pub role_id: String,
    /// Display name when known (e.g. "Global Administrator").
    pub name: Option<String>,
    /// Whether the role is privileged (admin).
    pub privileged: bool,
    /// The role-assignable group the role is held through (`name (object
    /// id)`), when it is not assigned to the user directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_group: Option<String>,
}

/// What a user's `last_sign_in` rests on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInBasis {
    /// The source reports the last *successful* sign-in (Graph
    /// `lastSuccessfulSignInDateTime`); `None` means no success is recorded.
    #[default]
    Success,
    /// Only sign-in attempts were reported (`lastSignInDateTime`,
    /// `lastNonInteractiveSignInDateTime` count failed attempts too); `None`
    /// means no attempt is recorded.
    AttemptsOnly,
    /// The source reports no sign-in activity for the user at all (e.g. the
    /// tenant has no licence for it): the user's activity cannot be judged.
    NotReported,
}

/// A directory user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id: `<source>:<object id>`.
    pub id: String,
    /// Sign-in name.
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// Account can sign in.
    pub enabled: bool,
    /// Member or guest.
    pub user_type: UserType,
    /// Last successful sign-in (or, where the source reports only attempts,
    /// the last attempt: see `sign_in_basis`); `None` when none is recorded.
    pub last_sign_in: Option<DateTime<Utc>>,
    /// What `last_sign_in` rests on.
    #[serde(default)]
    pub sign_in_basis: SignInBasis,
    /// Creation time.
    pub created: Option<DateTime<Utc>>,
    /// MFA registration; `None` when no registration record exists.
    pub mfa: Option<MfaState>,
    /// Holds a privileged role (from role assignments, or the registration report).
    pub is_admin: bool,
    /// Directory roles held.
    #[serde(default)]
    pub roles: Vec<RoleHeld>,
}

/// State of a Conditional Access policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyState {
    /// Enforced.
    Enabled,
    /// Off.
    #[default]
    Disabled,
    /// Report-only: evaluated, never enforced.
    ReportOnly,
}

/// Conditions of a Conditional Access policy that narrow the sign-ins it
/// covers (besides users and applications). Empty lists mean "not
/// configured", which covers everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyConditions {
    /// `clientAppTypes` (`all`, `browser`, `mobileAppsAndDesktopClients`,
    /// `exchangeActiveSync`, `easSupported`, `other`).
    #[serde(default)]
    pub client_app_types: Vec<String>,
    /// `platforms.includePlatforms` (`all`, `android`, `iOS`, `windows`, ...).
    #[serde(default)]
    pub include_platforms: Vec<String>,
    /// `platforms.excludePlatforms`.
    #[serde(default)]
    pub exclude_platforms: Vec<String>,
    /// `locations.includeLocations` (`All`, `AllTrusted`, named location ids).
    #[serde(default)]
    pub include_locations: Vec<String>,
    /// `locations.excludeLocations`.
    #[serde(default)]
    pub exclude_locations: Vec<String>,
    /// `applications.excludeApplications`.
    #[serde(default)]
    pub exclude_applications: Vec<String>,
    /// `signInRiskLevels`: the policy applies only at these risk levels.
    #[serde(default)]
    pub sign_in_risk_levels: Vec<String>,
    /// `userRiskLevels`.
    #[serde(default)]
    pub user_risk_levels: Vec<String>,
    /// `users.excludeGuestsOrExternalUsers.guestOrExternalUserTypes`, when set.
    #[serde(default)]
    pub exclude_guest_types: Option<String>,
    /// `users.includeGuestsOrExternalUsers.guestOrExternalUserTypes`, when set.
    #[serde(default)]
    pub include_guest_types: Option<String>,
    /// Other conditions that limit the policy (device filter, authentication
    /// flows, insider or service-principal risk), described.
    #[serde(default)]
    pub other: Vec<String>,
}

/// A Conditional Access policy, reduced to what MFA enforcement depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPolicy {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// State.
    pub state: PolicyState,
    /// The grant can only be satisfied by MFA: built-in `mfa` or an
    /// authentication strength, alone or under `AND`. Under `OR` with another
    /// control (e.g. `compliantDevice`) MFA is one way among others and this
    /// is false.
    pub requires_mfa: bool,
    /// The grant blocks access (nothing to enforce MFA on).
    #[serde(default)]
    pub blocks: bool,
    /// The grant controls as the source words them (`OR: mfa, compliantDevice`).
    #[serde(default)]
    pub grant: String,
    /// Conditions that narrow the sign-ins the policy covers.
    #[serde(default)]
    pub conditions: PolicyConditions,
    /// Applies to all cloud apps.
    pub all_applications: bool,
    /// Included users (object ids, or `All`).
    pub include_users: Vec<String>,
    /// Excluded users (object ids).
    pub exclude_users: Vec<String>,
    /// Included groups.
    pub include_groups: Vec<String>,
    /// Excluded groups.
    pub exclude_groups: Vec<String>,
    /// Included directory roles (template ids).
    pub include_roles: Vec<String>,
    /// Excluded directory roles.
    pub exclude_roles: Vec<String>,
}

/// How MFA is enforced in a tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaEnforcement {
    /// Security defaults are on (MFA for everyone, no exclusions possible).
    pub security_defaults: Option<bool>,
    /// Conditional Access policies.
    pub policies: Vec<AccessPolicy>,
    /// Members (user object ids) of groups that policies include or exclude,
    /// for each group whose members were all read; a group missing here is
    /// one whose membership is unknown.
    pub group_members: BTreeMap<String, Vec<String>>,
}

/// A decision in an access review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// Keep access.
    Approve,
    /// Remove access.
    Deny,
    /// Nobody decided.
    NotReviewed,
    /// The reviewer did not know.
    DontKnow,
}

/// One decision of a review instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// Stable id of the reviewed principal (`<source>:<object id>`).
    pub principal_id: String,
    /// Display name of the principal.
    pub principal_name: String,
    /// The decision.
    pub decision: ReviewDecision,
    /// When it was decided.
    pub reviewed: Option<DateTime<Utc>>,
    /// Apply result (`AppliedSuccessfully`, `New`, ...).
    pub apply_result: Option<String>,
    /// When the decision was applied.
    pub applied: Option<DateTime<Utc>>,
}

/// One run (instance) of an access review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewInstance {
    /// Instance id.
    pub id: String,
    /// Status (`Completed`, `InProgress`, ...).
    pub status: String,
    /// Start.
    pub start: Option<DateTime<Utc>>,
    /// End.
    pub end: Option<DateTime<Utc>>,
    /// Decisions.
    pub decisions: Vec<ReviewItem>,
}

/// An access review definition with its instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessReview {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Reviews guest users only (its scope filters on `userType eq 'Guest'`).
    pub guests: bool,
    /// The scope as the source describes it.
    pub scope: String,
    /// Status of the definition.
    pub status: String,
    /// Instances, oldest first.
    pub instances: Vec<ReviewInstance>,
}

/// Intune compliance state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compliance {
    /// Compliant.
    Compliant,
    /// Not compliant.
    Noncompliant,
    /// In the grace period after falling out of compliance.
    InGracePeriod,
    /// Unknown, conflict, error or managed elsewhere.
    Unknown,
}

/// Anti-malware / EDR state as one source reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Antimalware {
    /// Product name (e.g. "Microsoft Defender Antivirus", "SentinelOne").
    pub product: Option<String>,
    /// Protection is running / active.
    pub running: Option<bool>,
    /// Real-time protection on.
    pub real_time: Option<bool>,
    /// Signatures current per the source.
    pub signatures_current: Option<bool>,
    /// When signatures were last updated.
    pub signatures_updated: Option<DateTime<Utc>>,
    /// EDR sensor onboarded (Defender for Endpoint and peers).
    pub edr_onboarded: Option<bool>,
    /// EDR sensor health as the source words it (`Active`, `Inactive`...).
    pub edr_health: Option<String>,
    /// EDR sensor active and reporting (Defender for Endpoint `healthStatus`
    /// `Active`); `Some(false)` for inactive or impaired sensors.
    #[serde(default)]
    pub edr_active: Option<bool>,
    /// Engine and platform current per the source.
    #[serde(default)]
    pub engine_current: Option<bool>,
    /// Conditions the source flags as needing action (a threat whose
    /// remediation is pending or failed, a required scan or reboot);
    /// `Some(empty)` when the source reports none, `None` when it does not say.
    #[serde(default)]
    pub attention: Option<Vec<String>>,
    /// When the source last received this state from the device.
    #[serde(default)]
    pub reported: Option<DateTime<Utc>>,
    /// Fields the source reported in values auditpack cannot read in full
    /// (`productStatus "1073741824"`): no evidence either way, so the states
    /// they bear on are left unset here and judged unproven, with these
    /// words, unless another source speaks to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// Whether a device reports patch state, and what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchReport {
    /// The device reports patch state to this source.
    pub reporting: bool,
    /// The source's patch status (e.g. `FullyPatched`, `NoPolicy`).
    pub status: Option<String>,
    /// Last successful patch install, when known.
    pub last_install: Option<DateTime<Utc>>,
    /// Patches are failing to install per the source (Datto `InstallError`,
    /// a NinjaOne install that failed after the last success); `None` when
    /// the source does not report install results.
    #[serde(default)]
    pub install_failing: Option<bool>,
    /// The source says patches are pending without listing them with ages
    /// (Datto `ApprovedPending`, `RebootRequired`, `InstallError`).
    #[serde(default)]
    pub pending_without_age: bool,
}

/// A device as one source sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Stable id: `<source>:<device id>`.
    pub id: String,
    /// Host or display name.
    pub name: String,
    /// Operating system, as reported.
    pub os: Option<String>,
    /// Last contact with the source.
    pub last_seen: Option<DateTime<Utc>>,
    /// Source name.
    pub source: String,
    /// OS version.
    #[serde(default)]
    pub os_version: Option<String>,
    /// Hardware serial number.
    #[serde(default)]
    pub serial: Option<String>,
    /// Entra ID (Azure AD) device id.
    #[serde(default)]
    pub aad_device_id: Option<String>,
    /// Intune compliance.
    #[serde(default)]
    pub compliance: Option<Compliance>,
    /// Disk encryption.
    #[serde(default)]
    pub encrypted: Option<bool>,
    /// Anti-malware / EDR state.
    #[serde(default)]
    pub antimalware: Option<Antimalware>,
    /// Patch reporting.
    #[serde(default)]
    pub patch: Option<PatchReport>,
}

/// What kind of machine a device is, read from the operating system or node
/// class its sources report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// A desktop or laptop (Windows, macOS, Linux client).
    Workstation,
    /// A server (Windows Server, a Linux or Mac server, a hypervisor host).
    Server,
    /// A phone or tablet (iOS, iPadOS, Android, Windows Phone).
    Mobile,
    /// Something that runs no endpoint agent (network gear, a monitored cloud
    /// target, a printer).
    Other,
    /// No source says.
    Unknown,
}

impl DeviceClass {
    /// The class an operating system or node class name means (Intune
    /// `operatingSystem`, Defender `osPlatform`, NinjaOne `nodeClass`, Datto
    /// `operatingSystem`, endpoint reports).
    ///
    /// Remembered per thread for the names seen (an organisation has a few
    /// dozen, and every device check asks for every device).
    pub fn of_os(os: &str) -> DeviceClass {
        /// Names remembered per thread before the memory starts over.
        const REMEMBERED: usize = 4096;
        thread_local! {
            static SEEN: std::cell::RefCell<std::collections::HashMap<String, DeviceClass>> =
                std::cell::RefCell::default();
        }
        SEEN.with(|seen| {
            if let Some(class) = seen.borrow().get(os) {
                return *class;
            }
            let class = DeviceClass::classify(os);
            let mut seen = seen.borrow_mut();
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
            seen.insert(os.to_owned(), class);
            class
        })
    }

    fn classify(os: &str) -> DeviceClass {
        let os = os.trim().to_ascii_lowercase();
        let words: Vec<&str> = os
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let has = |w: &str| words.contains(&w);
        let mobile = [
            "ios",
            "ipados",
            "iphone",
            "ipad",
            "android",
            "androidforwork",
        ]
        .iter()
        .any(|w| has(w))
            || os.starts_with("android")
            || os.starts_with("apple_i")
            || os.contains("windows phone")
            || os.contains("windowsphone")
            || os.contains("windows mobile");
        if mobile {
            return DeviceClass::Mobile;
        }
        if os.starts_with("nms")
            || os.contains("cloud_monitor")
            || has("printer")
            || os.starts_with("network device")
        {
            return DeviceClass::Other;
        }
        if os.contains("server") || os.contains("vm_host") || os.contains("vmm_host") {
            return DeviceClass::Server;
        }
        let client = [
            "windows", "mac", "macos", "osx", "linux", "ubuntu", "debian", "fedora", "centos",
            "rhel", "chromeos",
        ];
        if client.iter().any(|w| has(w))
            || os.starts_with("windows")
            || os.starts_with("mac")
            || os.starts_with("linux")
        {
            return DeviceClass::Workstation;
        }
        DeviceClass::Unknown
    }

    /// The class of a machine from its records: mobile when any record says
    /// so, else server, else workstation, else other, else unknown.
    pub fn of_records<'a>(records: impl IntoIterator<Item = &'a Device>) -> DeviceClass {
        records
            .into_iter()
            .filter_map(|d| d.os.as_deref())
            .map(DeviceClass::of_os)
            .min_by_key(|c| match c {
                DeviceClass::Mobile => 0,
                DeviceClass::Server => 1,
                DeviceClass::Workstation => 2,
                DeviceClass::Other => 3,
                DeviceClass::Unknown => 4,
            })
            .unwrap_or(DeviceClass::Unknown)
    }

    /// Lower-case name for details.
    pub fn describe(self) -> &'static str {
        match self {
            DeviceClass::Workstation => "workstation",
            DeviceClass::Server => "server",
            DeviceClass::Mobile => "mobile device",
            DeviceClass::Other => "device without an endpoint agent",
            DeviceClass::Unknown => "device of unknown kind",
        }
    }
}

/// Severity of a patch, normalised across sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Unknown or unrated.
    Unknown,
    /// Optional.
    Optional,
    /// Moderate.
    Moderate,
    /// Important / high.
    Important,
    /// Critical.
    Critical,
}

/// An OS patch a device still lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPatch {
    /// Device stable id.
    pub device_id: String,
    /// Patch title.
    pub name: String,
    /// KB number, when given.
    pub kb: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// Source status (e.g. MANUAL, APPROVED, FAILED).
    pub status: Option<String>,
    /// When the source first reported it pending.
    pub detected: Option<DateTime<Utc>>,
}

/// One physical or virtual machine, reconciled across sources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    /// Stable id: `device:` plus the strongest identity (serial, Entra device id or hostname).
    pub id: String,
    /// Display name (the most common name among its records).
    pub name: String,
    /// The per-source device ids that are this machine, sorted.
    pub members: Vec<String>,
    /// The sources that know it, sorted.
    pub sources: Vec<String>,
    /// How the records were matched (`serial`, `aad_device_id`, `hostname`), for auditors.
    pub matched_by: Vec<String>,
    /// Identity conflicts found while matching (e.g. same hostname, different serials).
    pub conflicts: Vec<String>,
}

/// Microsoft Secure Score at collection time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecureScore {
    /// Current score.
    pub current: f64,
    /// Maximum score.
    pub max: f64,
    /// When it was computed.
    pub created: Option<DateTime<Utc>>,
}

impl Eq for SecureScore {}

/// A document a person supplied as evidence for manual controls (a policy, a
/// training record, a business associate agreement, a restore test).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualDocument {
    /// Run-relative path of the document (under `manual/`).
    pub path: String,
    /// SHA-256 of the document.
    pub sha256: String,
    /// What it is, in the supplier's words.
    pub title: String,
    /// Controls it satisfies, as `"<framework>:<control id>"`.
    pub controls: Vec<String>,
    /// The party that supplied it.
    pub owner: Option<crate::policy::Owner>,
    /// The date the evidence speaks for (e.g. when the restore test ran).
    pub evidence_date: Option<DateTime<Utc>>,
    /// When it stops counting (e.g. 12 months after a risk analysis).
    pub expires: Option<DateTime<Utc>>,
}

/// Everything the checks read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Users.
    pub users: Vec<User>,
    /// MFA enforcement, per identity source.
    #[serde(default)]
    pub mfa_enforcement: BTreeMap<String, MfaEnforcement>,
    /// Access reviews.
    #[serde(default)]
    pub access_reviews: Vec<AccessReview>,
    /// Devices, one record per source.
    pub devices: Vec<Device>,
    /// Pending patches.
    pub patches: Vec<PendingPatch>,
    /// Devices reconciled across sources.
    #[serde(default)]
    pub inventory: Vec<InventoryItem>,
    /// Secure Score per identity source.
    #[serde(default)]
    pub secure_score: BTreeMap<String, SecureScore>,
    /// Documents supplied for manual controls.
    #[serde(default)]
    pub manual: Vec<ManualDocument>,
    /// Security incidents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<crate::facts::Incident>,
    /// Systems backup products protect, one record per source, linked to
    /// the inventory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<crate::facts::ProtectedSystem>,
    /// Devices the organisation marks critical (`[organisation]
    /// critical_devices` as `run.json` records it): host names or serial
    /// numbers. Backup coverage holds them to the same rule as servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_devices: Vec<String>,
    /// Provenance per kind of fact.
    pub coverage: BTreeMap<FactKind, Vec<Provenance>>,
    /// When each dataset (`"<source>/<dataset>"`) was collected: its oldest
    /// page's custody time. Evidence time-to-live is measured from it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collected: BTreeMap<String, DateTime<Utc>>,
}

/// Whether a kind of fact can be relied on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Every source that provides it was complete.
    Complete,
    /// Some provider was partial or failed.
    Incomplete(String),
    /// No configured source provides it.
    Absent,
}

impl Facts {
    /// Whether `kind` is fully available.
    pub fn availability(&self, kind: FactKind) -> Availability {
        match self.coverage.get(&kind) {
            None => Availability::Absent,
            Some(providers) if providers.is_empty() => Availability::Absent,
            Some(providers) => {
                let problems: Vec<String> = providers
                    .iter()
                    .filter(|p| p.status != DatasetStatus::Complete)
                    .map(|p| {
                        format!(
                            "{}/{} is {}{}",
                            p.source,
                            p.dataset,
                            p.status,
                            p.reason
                                .as_deref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                if problems.is_empty() {
                    Availability::Complete
                } else {
                    Availability::Incomplete(problems.join("; "))
                }
            }
        }
    }

    /// Evidence files behind `kind`.
    pub fn evidence(&self, kind: FactKind) -> impl Iterator<Item = &str> {
        self.coverage
            .get(&kind)
            .into_iter()
            .flatten()
            .flat_map(|p| p.evidence.iter().map(String::as_str))
    }

    /// Record that a dataset provides `kind`.
    pub fn provide(&mut self, kind: FactKind, provenance: Provenance) {
        self.coverage.entry(kind).or_default().push(provenance);
    }
}
