//! The declarative spec format (`collectors/rmm/*.toml`,
//! `collectors/backup/*.toml`): how to authenticate, which endpoints to fetch
//! and how they page, and how their JSON maps into facts: device facts and
//! pending patches for an RMM (`kind = "rmm"`, the default), protected
//! systems with their backups, copies and restore tests for a backup product
//! (`kind = "backup"`, see [`super::backup_map`]). Parsed strictly: unknown
//! keys, dangling dataset references, malformed JSON pointers and unknown
//! enum targets are refused with the spec file, line and key named.
//!
//! A field is either a JSON pointer (`"/hostname"`) or a table
//! `{ pointer, map, default, format }`; `map` translates enum values (the
//! value's text: strings as is, `true`/`false`, numbers), `default` stands in
//! for unmapped values, `format` reads times (`rfc3339`, `epoch-seconds`,
//! `epoch-millis`, `auto`). A list of fields takes the first that gives a value.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::backup_map::{CopyMap, RunMap, SystemMap, TestMap};
use crate::collect::paging::Paging;
use crate::facts::Severity;

static EMBEDDED_RMM: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/collectors/rmm");
static EMBEDDED_BACKUP: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/collectors/backup");

/// What a spec describes, and so which facts its records map into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpecKind {
    /// An RMM: `[devices]`, `[patches]`, `[installs]` (source type `rmm-spec`).
    #[default]
    Rmm,
    /// A backup product: `[systems]`, `[runs]`, `[copies]`, `[tests]`
    /// (source type `backup-spec`).
    Backup,
}

impl SpecKind {
    /// The source type that reads specs of this kind.
    pub fn source_type(self) -> &'static str {
        match self {
            SpecKind::Rmm => "rmm-spec",
            SpecKind::Backup => "backup-spec",
        }
    }

    /// The folder of the built-in specs of this kind.
    pub fn folder(self) -> &'static str {
        match self {
            SpecKind::Rmm => "collectors/rmm",
            SpecKind::Backup => "collectors/backup",
        }
    }

    fn words(self) -> &'static str {
        match self {
            SpecKind::Rmm => "an RMM",
            SpecKind::Backup => "a backup product",
        }
    }
}

/// The spec format version this build reads.
pub const SPEC_VERSION: u32 = 1;

/// A validated RMM spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Format version; must be [`SPEC_VERSION`].
    pub spec_version: u32,
    /// What the spec describes (`rmm` when absent).
    #[serde(default)]
    pub kind: SpecKind,
    /// Short id (`[a-z0-9-]`), usable as a source `type`.
    pub id: String,
    /// Display name (for a backup product, the product name its facts carry).
    pub name: String,
    /// How requests authenticate.
    pub auth: AuthSpec,
    /// Self-imposed rate limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// How one organisation of a shared account is selected (the source's
    /// `scope` key); without it the spec collects the whole account.
    #[serde(default)]
    pub scope: Option<ScopeSpec>,
    /// Endpoints, fetched in order (per-device ones after the list they expand).
    #[serde(rename = "endpoint")]
    pub endpoints: Vec<Endpoint>,
    /// How device records map into device facts (RMM specs).
    #[serde(default)]
    pub devices: Option<DeviceMap>,
    /// How records map into pending patches.
    #[serde(default)]
    pub patches: Option<PatchMap>,
    /// How records give each device's last successful install.
    #[serde(default)]
    pub installs: Option<InstallMap>,
    /// How records map into protected systems (backup specs).
    #[serde(default)]
    pub systems: Option<SystemMap>,
    /// How backup runs give each system's newest success, failure and result.
    #[serde(default)]
    pub runs: Option<RunMap>,
    /// Where each system's copies are kept.
    #[serde(default)]
    pub copies: Option<CopyMap>,
    /// Restore, boot and integrity tests of each system.
    #[serde(default)]
    pub tests: Option<TestMap>,
}

/// Authentication styles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthSpec {
    /// A static key in a header; the source gives `api_key_env`/`api_key_file`.
    ApiKey {
        /// Header name, e.g. `X-API-KEY`.
        header: String,
    },
    /// `Authorization: Bearer <token>`; the source gives `token_env`/`token_file`.
    Bearer,
    /// OAuth2 client credentials; the source gives `client_id` and
    /// `client_secret_env`/`client_secret_file`.
    Oauth2ClientCredentials {
        /// Token endpoint path on the base URL, e.g. `/oauth/token`.
        token_path: String,
        /// Scope to ask for.
        #[serde(default)]
        scope: Option<String>,
        /// How the client authenticates at the token endpoint.
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

/// Client authentication at an OAuth2 token endpoint (RFC 6749 2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    Post,
    /// HTTP Basic with the client id and secret; the form carries neither.
    Basic,
}

/// `[scope]`: a source's `scope = "<id>"` is substituted for `{scope}` in
/// endpoint paths and `query` values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    /// What the id names, for messages (e.g. `client`).
    pub name: String,
    /// A path (with `{scope}`) answering 200 for an id the API knows and 404
    /// otherwise; fetched once before the endpoints, stored as dataset `scope`.
    #[serde(default)]
    pub verify: Option<String>,
}

/// The placeholder an organisation's id replaces.
pub const SCOPE_PLACEHOLDER: &str = "{scope}";

/// `[rate_limit]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests per minute the tool allows itself.
    pub requests_per_minute: u32,
}

/// One `[[endpoint]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Dataset name (evidence folder).
    pub dataset: String,
    /// Path on the base URL, with one `{placeholder}` for per-device endpoints.
    pub path: String,
    /// JSON pointer to the record array on a page (`""`: the page is the array).
    #[serde(default)]
    pub records: String,
    /// Paging style.
    #[serde(default)]
    pub paging: PagingSpec,
    /// Fetch once per device of another dataset.
    #[serde(default)]
    pub per_device: Option<PerDevice>,
    /// Query parameters of the first request. A value holding `{scope}` is
    /// sent only by a scoped source, with the id in its place.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
}

/// `per_device = { from, id }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerDevice {
    /// The dataset whose records are the devices.
    pub from: String,
    /// JSON pointer to the id within each of those records.
    pub id: String,
}

/// `paging = { style = ... }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "kebab-case", deny_unknown_fields)]
pub enum PagingSpec {
    /// One page.
    #[default]
    None,
    /// `?page=N`.
    PageNumber {
        /// Page parameter.
        param: String,
        /// First page number.
        #[serde(default)]
        first: u64,
        /// Page-size parameter and value to send, e.g. `["max", "250"]`.
        #[serde(default)]
        size: Option<(String, u32)>,
    },
    /// `?<param>=<offset>`: `$skip`, `offset`, `start`.
    Offset {
        /// Offset parameter.
        param: String,
        /// Offset of the first page.
        #[serde(default)]
        first: u64,
        /// Page-size parameter and value, e.g. `["$top", 100]`.
        #[serde(default)]
        size: Option<(String, u32)>,
    },
    /// `?<param>=<cursor>`.
    Cursor {
        /// Cursor parameter.
        param: String,
        /// JSON pointer to the cursor on a page.
        pointer: String,
        /// Page-size parameter and value.
        #[serde(default)]
        size: Option<(String, u32)>,
    },
    /// Full next-page URL on the page.
    NextUrl {
        /// JSON pointer to the URL.
        pointer: String,
        /// Page-size parameter and value.
        #[serde(default)]
        size: Option<(String, u32)>,
    },
    /// `?<param>=<last id>`.
    AfterId {
        /// Parameter.
        param: String,
        /// JSON pointer to the id within a record.
        id: String,
        /// Page-size parameter and value.
        #[serde(default)]
        size: Option<(String, u32)>,
    },
}

impl PagingSpec {
    /// The runtime paging style.
    pub fn paging(&self) -> Paging {
        match self {
            PagingSpec::None => Paging::None,
            PagingSpec::PageNumber { param, first, .. } => Paging::PageNumber {
                param: param.clone(),
                first: *first,
            },
            PagingSpec::Offset { param, first, .. } => Paging::Offset {
                param: param.clone(),
                first: *first,
            },
            PagingSpec::Cursor { param, pointer, .. } => Paging::Cursor {
                param: param.clone(),
                pointer: pointer.clone(),
            },
            PagingSpec::NextUrl { pointer, .. } => Paging::NextUrl {
                pointer: pointer.clone(),
            },
            PagingSpec::AfterId { param, id, .. } => Paging::AfterId {
                param: param.clone(),
                id: id.clone(),
            },
        }
    }

    /// Query parameters of the first request.
    pub fn first_query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        let size = match self {
            PagingSpec::None => &None,
            PagingSpec::PageNumber { param, first, size }
            | PagingSpec::Offset { param, first, size } => {
                q.push((param.clone(), first.to_string()));
                size
            }
            PagingSpec::Cursor { size, .. }
            | PagingSpec::NextUrl { size, .. }
            | PagingSpec::AfterId { size, .. } => size,
        };
        if let Some((name, n)) = size {
            q.insert(0, (name.clone(), n.to_string()));
        }
        q
    }
}

/// A value read from a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Field {
    /// A bare JSON pointer.
    Pointer(String),
    /// A pointer with a value map, default or time format.
    Full(FieldSpec),
}

/// `{ pointer, map, default, format }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// JSON pointer into the record.
    pub pointer: String,
    /// Value translations.
    #[serde(default)]
    pub map: Option<BTreeMap<String, String>>,
    /// Used when the value is present but not in `map`.
    #[serde(default)]
    pub default: Option<String>,
    /// Time format.
    #[serde(default)]
    pub format: Option<TimeFormat>,
}

/// One field or a list of fields (the first with a value wins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fields {
    /// One field.
    One(Field),
    /// Alternatives in order.
    Many(Vec<Field>),
}

/// How times are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeFormat {
    /// RFC 3339 text.
    Rfc3339,
    /// Epoch seconds.
    EpochSeconds,
    /// Epoch milliseconds.
    EpochMillis,
    /// Numbers as epoch seconds (or milliseconds when large), text as RFC 3339.
    Auto,
}

/// `[devices]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceMap {
    /// Dataset holding device records.
    pub dataset: String,
    /// Device id.
    pub id: Fields,
    /// Hostname.
    pub name: Fields,
    /// Operating system.
    #[serde(default)]
    pub os: Option<Fields>,
    /// OS version.
    #[serde(default)]
    pub os_version: Option<Fields>,
    /// Hardware serial number.
    #[serde(default)]
    pub serial: Option<Fields>,
    /// Entra ID device id.
    #[serde(default)]
    pub aad_device_id: Option<Fields>,
    /// Last check-in time.
    #[serde(default)]
    pub last_seen: Option<Fields>,
    /// Patch status text; a device whose status resolves (and is not listed in
    /// `patch_not_reporting`) reports patch state.
    #[serde(default)]
    pub patch_status: Option<Fields>,
    /// Patch statuses that mean the device does not report.
    #[serde(default)]
    pub patch_not_reporting: Vec<String>,
    /// Antivirus product name.
    #[serde(default)]
    pub antivirus_product: Option<Fields>,
    /// Antivirus running (`true`/`false` after mapping).
    #[serde(default)]
    pub antivirus_running: Option<Fields>,
    /// Antivirus signatures current (`true`/`false` after mapping).
    #[serde(default)]
    pub antivirus_current: Option<Fields>,
    /// Disk encrypted (`true`/`false` after mapping).
    #[serde(default)]
    pub encrypted: Option<Fields>,
}

/// A condition on a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// JSON pointer.
    pub pointer: String,
    /// Keep the record when the value equals this.
    #[serde(default)]
    pub equals: Option<toml::Value>,
    /// Keep the record when the value differs from this.
    #[serde(default)]
    pub not_equals: Option<toml::Value>,
}

/// `[patches]`: pending patches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMap {
    /// Dataset holding patch records.
    pub dataset: String,
    /// Device id within the record; when absent the device is the one the
    /// (per-device) request was made for.
    #[serde(default)]
    pub device: Option<Fields>,
    /// Patch title.
    pub name: Fields,
    /// KB number.
    #[serde(default)]
    pub kb: Option<Fields>,
    /// Severity, mapped to `critical`, `important`, `moderate`, `optional` or `unknown`.
    #[serde(default)]
    pub severity: Option<Fields>,
    /// Status text.
    #[serde(default)]
    pub status: Option<Fields>,
    /// When first seen.
    #[serde(default)]
    pub detected: Option<Fields>,
    /// Keep only records meeting every condition.
    #[serde(default)]
    pub only_when: Vec<Condition>,
}

/// `[installs]`: successful installs, for each device's last install time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallMap {
    /// Dataset holding install records.
    pub dataset: String,
    /// Device id within the record (else the per-device request's device).
    #[serde(default)]
    pub device: Option<Fields>,
    /// Install time.
    pub installed_at: Fields,
    /// Keep only records meeting every condition.
    #[serde(default)]
    pub only_when: Vec<Condition>,
}

/// Severity targets a `severity` map may use.
const SEVERITIES: &[&str] = &["critical", "important", "moderate", "optional", "unknown"];

/// Parse a severity target.
pub fn severity(text: &str) -> Severity {
    match text {
        "critical" => Severity::Critical,
        "important" => Severity::Important,
        "moderate" => Severity::Moderate,
        "optional" => Severity::Optional,
        _ => Severity::Unknown,
    }
}

/// Largest spec file accepted.
const MAX_SPEC_BYTES: usize = 256 * 1024;

impl Spec {
    /// Parse and validate spec text; `origin` names the file in errors.
    ///
    /// # Errors
    /// A message starting with `origin` on any syntax or validation error.
    pub fn parse(text: &str, origin: &str) -> Result<Spec, String> {
        if text.len() > MAX_SPEC_BYTES {
            return Err(format!(
                "{origin}: spec is larger than {MAX_SPEC_BYTES} bytes"
            ));
        }
        let spec: Spec = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    format!(":{}", before.matches('\n').count() + 1)
                })
                .unwrap_or_default();
            format!("{origin}{at}: {}", e.message().trim_end())
        })?;
        spec.validate().map_err(|e| match key_line(text, &e) {
            Some(line) => format!("{origin}:{line}: {e}"),
            None => format!("{origin}: {e}"),
        })?;
        Ok(spec)
    }

    /// The dataset listing what the source inventories (devices or protected
    /// systems); a scoped source whose list is empty fails.
    pub fn inventory_dataset(&self) -> &str {
        match (&self.devices, &self.systems) {
            (Some(d), _) => &d.dataset,
            (None, Some(s)) => &s.dataset,
            (None, None) => "",
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.spec_version != SPEC_VERSION {
            return Err(format!(
                "spec_version {} is not supported (this build reads {SPEC_VERSION})",
                self.spec_version
            ));
        }
        if self.id.is_empty()
            || self.id.len() > 48
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "id `{}` must be 1-48 characters of a-z, 0-9 and -",
                self.id.escape_debug()
            ));
        }
        if self.name.trim().is_empty() {
            return Err("name is empty".into());
        }
        type Tables<'a> = &'a [(&'a str, bool)];
        let (wanted, unwanted): (Tables<'_>, Tables<'_>) = match self.kind {
            SpecKind::Rmm => (
                &[("devices", self.devices.is_some())],
                &[
                    ("systems", self.systems.is_some()),
                    ("runs", self.runs.is_some()),
                    ("copies", self.copies.is_some()),
                    ("tests", self.tests.is_some()),
                ],
            ),
            SpecKind::Backup => (
                &[("systems", self.systems.is_some())],
                &[
                    ("devices", self.devices.is_some()),
                    ("patches", self.patches.is_some()),
                    ("installs", self.installs.is_some()),
                ],
            ),
        };
        for (table, present) in wanted {
            if !present {
                return Err(format!(
                    "{table}: a spec of kind `{}` needs a [{table}] table",
                    kind_name(self.kind)
                ));
            }
        }
        for (table, present) in unwanted {
            if *present {
                return Err(format!(
                    "{table}: [{table}] does not belong in a spec of kind `{}` (it describes {})",
                    kind_name(self.kind),
                    self.kind.words()
                ));
            }
        }
        match &self.auth {
            AuthSpec::ApiKey { header } => {
                if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(format!(
                        "auth.header `{}` is not a valid header name",
                        header.escape_debug()
                    ));
                }
            }
            AuthSpec::Bearer => {}
            AuthSpec::Oauth2ClientCredentials { token_path, .. } => {
                if !token_path.starts_with('/') {
                    return Err("auth.token_path must start with `/`".into());
                }
            }
        }
        if let Some(r) = &self.rate_limit {
            if r.requests_per_minute == 0 {
                return Err("rate_limit.requests_per_minute must be at least 1".into());
            }
        }
        if self.endpoints.is_empty() {
            return Err("no [[endpoint]]".into());
        }
        if let Some(scope) = &self.scope {
            if scope.name.trim().is_empty() {
                return Err("scope.name is empty".into());
            }
            if let Some(v) = &scope.verify {
                if !v.starts_with('/')
                    || v.contains("://")
                    || v.contains('?')
                    || v.matches('{').count() != 1
                    || !v.contains(SCOPE_PLACEHOLDER)
                {
                    return Err(
                        "scope.verify must be a path starting with `/` holding `{scope}` and no other placeholder or query"
                            .into(),
                    );
                }
            }
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut lists: BTreeSet<&str> = BTreeSet::new();
        for e in &self.endpoints {
            let at = format!("endpoint `{}`", e.dataset);
            if !safe_name(&e.dataset) || e.dataset == "spec" || e.dataset == "scope" {
                return Err(format!(
                    "{at}: dataset names must be [A-Za-z0-9._-] and not `spec` or `scope`"
                ));
            }
            let scoped = e.path.contains(SCOPE_PLACEHOLDER)
                || e.query.values().any(|v| v.contains(SCOPE_PLACEHOLDER));
            if scoped && self.scope.is_none() {
                return Err(format!(
                    "{at}: `{{scope}}` is used but the spec has no [scope]"
                ));
            }
            if scoped && e.per_device.is_some() && e.path.contains(SCOPE_PLACEHOLDER) {
                return Err(format!(
                    "{at}: a per_device path cannot hold `{{scope}}`; scope the list it expands"
                ));
            }
            for (k, v) in &e.query {
                let stray = v.replace(SCOPE_PLACEHOLDER, "");
                if k.is_empty() || stray.contains(['{', '}']) {
                    return Err(format!(
                        "{at}: query `{}` may hold no placeholder but `{{scope}}`",
                        k.escape_debug()
                    ));
                }
            }
            if !seen.insert(&e.dataset) {
                return Err(format!("{at}: dataset defined twice"));
            }
            if !e.path.starts_with('/') || e.path.contains("://") || e.path.contains('?') {
                return Err(format!(
                    "{at}: path must start with `/` and hold no host or query"
                ));
            }
            pointer(&e.records).map_err(|m| format!("{at}: records: {m}"))?;
            let placeholders = e.path.replace(SCOPE_PLACEHOLDER, "").matches('{').count();
            match &e.per_device {
                None if placeholders > 0 => {
                    return Err(format!("{at}: path has a placeholder but no per_device"))
                }
                None => {
                    lists.insert(&e.dataset);
                }
                Some(p) => {
                    if placeholders != 1 || placeholder(&e.path).is_none() {
                        return Err(format!(
                            "{at}: a per_device path needs exactly one `{{name}}` placeholder"
                        ));
                    }
                    if !lists.contains(p.from.as_str()) {
                        return Err(format!(
                            "{at}: per_device.from `{}` must name an earlier endpoint that is not per-device",
                            p.from
                        ));
                    }
                    pointer(&p.id).map_err(|m| format!("{at}: per_device.id: {m}"))?;
                }
            }
            match &e.paging {
                PagingSpec::None => {}
                PagingSpec::PageNumber { param, .. } | PagingSpec::Offset { param, .. }
                    if !param.is_empty() => {}
                PagingSpec::Cursor {
                    param, pointer: p, ..
                } if !param.is_empty() => {
                    pointer(p).map_err(|m| format!("{at}: paging.pointer: {m}"))?;
                }
                PagingSpec::NextUrl { pointer: p, .. } => {
                    pointer(p).map_err(|m| format!("{at}: paging.pointer: {m}"))?;
                }
                PagingSpec::AfterId { param, id, .. } if !param.is_empty() => {
                    pointer(id).map_err(|m| format!("{at}: paging.id: {m}"))?;
                }
                _ => return Err(format!("{at}: paging.param is empty")),
            }
        }
        let dataset = |d: &str, what: &str| -> Result<(), String> {
            if seen.contains(d) {
                Ok(())
            } else {
                Err(format!("{what}.dataset `{d}` is not an endpoint's dataset"))
            }
        };
        let per_device = |ds: &str| {
            self.endpoints
                .iter()
                .any(|e| e.dataset == ds && e.per_device.is_some())
        };
        if self.kind == SpecKind::Backup {
            return super::backup_map::validate(
                self,
                &|d: &str, what: &str| dataset(d, what),
                &|d: &str| lists.contains(d),
                &per_device,
            );
        }
        let Some(d) = &self.devices else {
            return Err("devices: missing".into());
        };
        dataset(&d.dataset, "devices")?;
        if !lists.contains(d.dataset.as_str()) {
            return Err("devices.dataset must not be a per-device endpoint".into());
        }
        for (name, f) in [
            ("id", Some(&d.id)),
            ("name", Some(&d.name)),
            ("os", d.os.as_ref()),
            ("os_version", d.os_version.as_ref()),
            ("serial", d.serial.as_ref()),
            ("aad_device_id", d.aad_device_id.as_ref()),
            ("last_seen", d.last_seen.as_ref()),
            ("patch_status", d.patch_status.as_ref()),
            ("antivirus_product", d.antivirus_product.as_ref()),
        ] {
            check_fields(f, None).map_err(|m| format!("devices.{name}: {m}"))?;
        }
        for (name, f) in [
            ("antivirus_running", d.antivirus_running.as_ref()),
            ("antivirus_current", d.antivirus_current.as_ref()),
            ("encrypted", d.encrypted.as_ref()),
        ] {
            check_fields(f, Some(&["true", "false"]))
                .map_err(|m| format!("devices.{name}: {m}"))?;
        }
        if let Some(p) = &self.patches {
            dataset(&p.dataset, "patches")?;
            if p.device.is_none() && !per_device(&p.dataset) {
                return Err(
                    "patches.device is needed when patches come from a list that is not per-device"
                        .into(),
                );
            }
            for (name, f, allowed) in [
                ("device", p.device.as_ref(), None),
                ("name", Some(&p.name), None),
                ("kb", p.kb.as_ref(), None),
                ("severity", p.severity.as_ref(), Some(SEVERITIES)),
                ("status", p.status.as_ref(), None),
                ("detected", p.detected.as_ref(), None),
            ] {
                check_fields(f, allowed).map_err(|m| format!("patches.{name}: {m}"))?;
            }
            check_conditions(&p.only_when).map_err(|m| format!("patches.only_when: {m}"))?;
        }
        if let Some(i) = &self.installs {
            dataset(&i.dataset, "installs")?;
            if i.device.is_none() && !per_device(&i.dataset) {
                return Err("installs.device is needed when installs come from a list that is not per-device".into());
            }
            check_fields(i.device.as_ref(), None).map_err(|m| format!("installs.device: {m}"))?;
            check_fields(Some(&i.installed_at), None)
                .map_err(|m| format!("installs.installed_at: {m}"))?;
            check_conditions(&i.only_when).map_err(|m| format!("installs.only_when: {m}"))?;
        }
        Ok(())
    }

    /// The endpoint that fills `dataset`.
    pub fn endpoint(&self, dataset: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.dataset == dataset)
    }
}

/// The `{name}` placeholder of a per-device path, as (prefix, name, suffix).
pub fn placeholder(path: &str) -> Option<(&str, &str, &str)> {
    let open = path.find('{')?;
    let close = open + path[open..].find('}')?;
    let name = &path[open + 1..close];
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !path[close + 1..].contains(['{', '}']);
    ok.then(|| (&path[..open], name, &path[close + 1..]))
}

fn kind_name(kind: SpecKind) -> &'static str {
    match kind {
        SpecKind::Rmm => "rmm",
        SpecKind::Backup => "backup",
    }
}

/// The 1-based line of the key a validation message starts with
/// (`systems.name: ...`, `auth.token_path ...`, ``endpoint `x`: ...``), if
/// the text holds it.
fn key_line(text: &str, message: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    if let Some(rest) = message.strip_prefix("endpoint `") {
        let dataset = rest.split('`').next()?;
        let (_, list) = doc
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref() == "endpoint")?;
        let DeValue::Array(items) = list.get_ref() else {
            return None;
        };
        let item = items.iter().find(|i| match i.get_ref() {
            DeValue::Table(t) => t.iter().any(|(k, v)| {
                k.get_ref() == "dataset"
                    && matches!(v.get_ref(), DeValue::String(d) if d.as_ref() == dataset)
            }),
            _ => false,
        })?;
        return Some(line(item.span().start));
    }
    let key: &str = message.split([':', ' ']).next().filter(|k| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    })?;
    let mut table = doc.get_ref();
    let mut found = None;
    for part in key.split('.') {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref() == part)?;
        found = Some(k.span().start);
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    found.map(line)
}

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn pointer(p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a JSON pointer (it must be empty or start with `/`)",
            p.escape_debug()
        ))
    }
}

pub(super) fn check_fields(
    fields: Option<&Fields>,
    allowed: Option<&[&str]>,
) -> Result<(), String> {
    let list: Vec<&Field> = match fields {
        None => return Ok(()),
        Some(Fields::One(f)) => vec![f],
        Some(Fields::Many(v)) if v.is_empty() => return Err("an empty list of fields".into()),
        Some(Fields::Many(v)) => v.iter().collect(),
    };
    for f in list {
        match f {
            Field::Pointer(p) => {
                pointer(p)?;
                if allowed.is_some() {
                    return Err("needs a `map` onto its allowed values".into());
                }
            }
            Field::Full(s) => {
                pointer(&s.pointer)?;
                if let Some(allowed) = allowed {
                    let Some(map) = &s.map else {
                        return Err(format!("needs a `map` onto {}", allowed.join(", ")));
                    };
                    for target in map.values().chain(s.default.iter()) {
                        if !allowed.contains(&target.as_str()) {
                            return Err(format!(
                                "maps onto `{}`, which is not one of {}",
                                target.escape_debug(),
                                allowed.join(", ")
                            ));
                        }
                    }
                }
                if s.default.is_some() && s.map.is_none() {
                    return Err("`default` only applies with a `map`".into());
                }
            }
        }
    }
    Ok(())
}

pub(super) fn check_conditions(conditions: &[Condition]) -> Result<(), String> {
    for c in conditions {
        pointer(&c.pointer)?;
        if c.equals.is_some() == c.not_equals.is_some() {
            return Err(format!(
                "condition on `{}` needs exactly one of `equals` and `not_equals`",
                c.pointer
            ));
        }
    }
    Ok(())
}

/// A JSON scalar as text (`null` and containers give `None`).
pub fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Why a field gave no value although the record had one.
#[derive(Debug, PartialEq, Eq)]
pub struct Unmapped(pub String);

/// Resolve `fields` on `record` to text: `Ok(None)` when absent,
/// `Err` when present but not in a map without default.
///
/// # Errors
/// [`Unmapped`] naming the value when no alternative gives a value.
pub fn resolve(fields: &Fields, record: &Value) -> Result<Option<String>, Unmapped> {
    match resolve_at(fields, record) {
        (EnumValue::Mapped(v), _) => Ok(Some(v)),
        (EnumValue::Raw(text), ptr) if matches!(fields, Fields::One(_)) => Err(Unmapped(format!(
            "value `{}` at {ptr} is not in the map",
            text.escape_debug()
        ))),
        _ => Ok(None),
    }
}

/// What an enum field gives: nothing, a mapped value, or a value the map
/// does not hold (kept raw: never guessed).
#[derive(Debug, PartialEq, Eq)]
pub enum EnumValue {
    /// No alternative has a value.
    Absent,
    /// The mapped target.
    Mapped(String),
    /// The record's own text, outside the map.
    Raw(String),
}

/// Resolve an enum field (one with a `map`), keeping an unmapped value raw.
pub fn resolve_enum(fields: &Fields, record: &Value) -> EnumValue {
    resolve_at(fields, record).0
}

/// The first alternative giving a value (mapped, or as it is without a map),
/// else the first value outside its map, kept raw with its pointer.
fn resolve_at<'f>(fields: &'f Fields, record: &Value) -> (EnumValue, &'f str) {
    let list: Vec<&Field> = match fields {
        Fields::One(f) => vec![f],
        Fields::Many(v) => v.iter().collect(),
    };
    let mut raw = None;
    for f in list {
        let (ptr, map, default) = match f {
            Field::Pointer(p) => (p.as_str(), None, None),
            Field::Full(s) => (s.pointer.as_str(), s.map.as_ref(), s.default.as_ref()),
        };
        let Some(text) = record.pointer(ptr).and_then(text_of) else {
            continue;
        };
        match map.and_then(|m| m.get(&text)).or(default) {
            Some(v) => return (EnumValue::Mapped(v.clone()), ptr),
            None if map.is_none() => return (EnumValue::Mapped(text), ptr),
            None => {
                raw.get_or_insert((text, ptr));
            }
        }
    }
    match raw {
        Some((text, ptr)) => (EnumValue::Raw(text), ptr),
        None => (EnumValue::Absent, ""),
    }
}

/// Resolve a time field.
pub fn resolve_time(fields: &Fields, record: &Value) -> Option<DateTime<Utc>> {
    let list: Vec<&Field> = match fields {
        Fields::One(f) => vec![f],
        Fields::Many(v) => v.iter().collect(),
    };
    list.into_iter().find_map(|f| {
        let (ptr, format) = match f {
            Field::Pointer(p) => (p.as_str(), TimeFormat::Auto),
            Field::Full(s) => (s.pointer.as_str(), s.format.unwrap_or(TimeFormat::Auto)),
        };
        let v = record.pointer(ptr)?;
        let epoch = |secs: f64| {
            secs.is_finite()
                .then(|| Utc.timestamp_opt(secs.trunc() as i64, 0).single())
                .flatten()
        };
        let rfc = |s: &str| crate::facts::parse_rfc3339(s);
        match (format, v) {
            (TimeFormat::Rfc3339, Value::String(s)) => rfc(s),
            (TimeFormat::EpochSeconds, Value::Number(n)) => epoch(n.as_f64()?),
            (TimeFormat::EpochMillis, Value::Number(n)) => epoch(n.as_f64()? / 1000.0),
            (TimeFormat::Auto, Value::Number(n)) => {
                let n = n.as_f64()?;
                epoch(if n > 1e11 { n / 1000.0 } else { n })
            }
            (TimeFormat::Auto, Value::String(s)) => rfc(s),
            _ => None,
        }
    })
}

/// Whether `record` meets every condition.
pub fn keep(conditions: &[Condition], record: &Value) -> bool {
    conditions.iter().all(|c| {
        let v = record.pointer(&c.pointer);
        let same = |want: &toml::Value| {
            v.is_some_and(|v| match (want, v) {
                (toml::Value::String(a), Value::String(b)) => a == b,
                (toml::Value::Boolean(a), Value::Bool(b)) => a == b,
                (toml::Value::Integer(a), Value::Number(b)) => b.as_i64() == Some(*a),
                (toml::Value::Float(a), Value::Number(b)) => b.as_f64() == Some(*a),
                _ => false,
            })
        };
        match (&c.equals, &c.not_equals) {
            (Some(want), _) => same(want),
            (_, Some(unwanted)) => !same(unwanted),
            _ => true,
        }
    })
}

/// A spec built into this binary.
#[derive(Clone, Debug)]
pub struct EmbeddedSpec {
    /// Its text.
    pub text: String,
    /// Where it lives in the source tree, e.g. `collectors/rmm/tactical-rmm.toml`.
    pub origin: String,
    /// The parsed spec.
    pub spec: Spec,
}

/// The specs built into this binary (RMMs and backup products), by id.
///
/// # Errors
/// When an embedded spec is invalid (a build defect, caught by the tests).
pub fn embedded() -> Result<BTreeMap<String, EmbeddedSpec>, String> {
    let mut out = BTreeMap::new();
    for (dir, kind) in [
        (&EMBEDDED_RMM, SpecKind::Rmm),
        (&EMBEDDED_BACKUP, SpecKind::Backup),
    ] {
        for file in dir.files() {
            let path = file.path().to_string_lossy().into_owned();
            if !path.ends_with(".toml") {
                continue;
            }
            let origin = format!("{}/{path}", kind.folder());
            let text = file
                .contents_utf8()
                .ok_or_else(|| format!("{origin}: not UTF-8"))?;
            let spec = Spec::parse(text, &origin)?;
            if spec.kind != kind {
                return Err(format!(
                    "{origin}: a spec of kind `{}` in {}",
                    kind_name(spec.kind),
                    kind.folder()
                ));
            }
            if out.contains_key(&spec.id) {
                return Err(format!("{origin}: id `{}` is used twice", spec.id));
            }
            out.insert(
                spec.id.clone(),
                EmbeddedSpec {
                    text: text.to_owned(),
                    origin,
                    spec,
                },
            );
        }
    }
    Ok(out)
}

/// The embedded spec with `id`.
pub fn embedded_spec(id: &str) -> Option<EmbeddedSpec> {
    embedded().ok()?.remove(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_embedded_spec_is_valid() {
        let specs = embedded().expect("embedded specs are valid");
        assert!(specs.contains_key("tactical-rmm"));
        let acronis = &specs["acronis-cyber-protect"];
        assert_eq!(acronis.spec.kind, SpecKind::Backup);
        assert_eq!(
            acronis.origin,
            "collectors/backup/acronis-cyber-protect.toml"
        );
    }

    fn tactical() -> String {
        embedded_spec("tactical-rmm").expect("tactical").text
    }

    #[test]
    fn invalid_specs_are_refused_naming_the_file() {
        let base = tactical();
        let cases = [
            (
                base.replace("spec_version = 1", "spec_version = 2"),
                "spec_version 2",
            ),
            (
                base.replace("id = \"tactical-rmm\"", "id = \"Tactical RMM\""),
                "id `Tactical RMM`",
            ),
            (
                base.replace("style = \"api-key\"", "style = \"magic\""),
                "magic",
            ),
            (
                base.replace("from = \"agents\"", "from = \"nowhere\""),
                "per_device.from `nowhere`",
            ),
            (
                base.replace("name = \"/hostname\"", "name = \"hostname\""),
                "not a JSON pointer",
            ),
            (
                base.replace("\"Critical\" = \"critical\"", "\"Critical\" = \"urgent\""),
                "`urgent`",
            ),
            (
                base.replace("dataset = \"agents\"\nid", "dataset = \"agent\"\nid"),
                "devices.dataset `agent`",
            ),
            (
                base.replace("[devices]", "[devices]\nsurprise = 1"),
                "surprise",
            ),
            (
                base.replace("path = \"/agents/\"", "path = \"/agents/{x}\""),
                "placeholder",
            ),
            (
                base.replace(
                    "[scope]\nname = \"client\"\nverify = \"/clients/{scope}/\"\n",
                    "",
                ),
                "`{scope}` is used but the spec has no [scope]",
            ),
            (
                base.replace("verify = \"/clients/{scope}/\"", "verify = \"/clients/\""),
                "scope.verify",
            ),
            (
                base.replace(
                    "query = { client = \"{scope}\" }",
                    "query = { client = \"{other}\" }",
                ),
                "may hold no placeholder but `{scope}`",
            ),
            (
                base.replace(
                    "path = \"/winupdate/{agent_id}/\"",
                    "path = \"/winupdate/{scope}/{agent_id}/\"",
                ),
                "per_device path cannot hold `{scope}`",
            ),
            (
                base.replacen(
                    "paging = { style = \"none\" }",
                    "paging = { style = \"offset\", param = \"\" }",
                    1,
                ),
                "paging.param is empty",
            ),
            (
                base.replacen(
                    "paging = { style = \"none\" }",
                    "paging = { style = \"offset\", param = \"$skip\", step = 2 }",
                    1,
                ),
                "step",
            ),
        ];
        for (text, want) in cases {
            let err = Spec::parse(&text, "my/spec.toml").expect_err(want);
            assert!(err.starts_with("my/spec.toml"), "{err}");
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }

    #[test]
    fn offset_paging_starts_at_first_with_its_size() {
        let text = tactical().replacen(
            "paging = { style = \"none\" }",
            "paging = { style = \"offset\", param = \"$skip\", size = [\"$top\", 250] }",
            1,
        );
        let spec = Spec::parse(&text, "offset.toml").expect("valid");
        let paging = &spec.endpoints[0].paging;
        assert_eq!(
            paging.first_query(),
            [
                ("$top".to_owned(), "250".to_owned()),
                ("$skip".to_owned(), "0".to_owned())
            ]
        );
        assert_eq!(
            paging.paging(),
            Paging::Offset {
                param: "$skip".into(),
                first: 0
            }
        );
    }

    #[test]
    fn fields_resolve_with_maps_defaults_and_alternatives() {
        let spec = embedded_spec("tactical-rmm").expect("tactical").spec;
        let status = spec
            .devices
            .and_then(|d| d.patch_status)
            .expect("patch status");
        let agent = json!({"needs_reboot": false, "has_patches_pending": true});
        assert_eq!(resolve(&status, &agent), Ok(Some("PatchesPending".into())));
        let agent = json!({"needs_reboot": true, "has_patches_pending": true});
        assert_eq!(resolve(&status, &agent), Ok(Some("RebootRequired".into())));
        assert_eq!(resolve(&status, &json!({})), Ok(None));
        let sev = spec.patches.expect("patches").severity.expect("severity");
        assert_eq!(
            resolve(&sev, &json!({"severity": "Whatever"})),
            Ok(Some("unknown".into()))
        );
        assert_eq!(
            placeholder("/winupdate/{agent_id}/"),
            Some(("/winupdate/", "agent_id", "/"))
        );
    }
}
