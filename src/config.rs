//! `auditpack.toml`: the organisation, its frameworks and ownership, thresholds,
//! sources and signing.
//!
//! The file is parsed strictly (`deny_unknown_fields`); every error names the
//! file, line and column and never echoes the offending line (it might hold a
//! secret). Each source's own keys are parsed by its collector through
//! [`SourceDecl::parse`], so adding a collector never touches this module.
//! Secrets are only ever named (`*_env`, `*_file`); a literal secret is refused.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::secret::SecretRef;

pub use auditpack_core::policy::{Owner, Thresholds};

/// A parsed `auditpack.toml`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (for messages and relative paths).
    pub path: PathBuf,
    /// The organisation whose evidence is collected.
    pub organisation: Organisation,
    /// Per-organisation ownership overrides: `"<framework>:<control id>"` to owner.
    pub ownership_overrides: BTreeMap<String, Owner>,
    /// Threshold overrides; unset values take the framework defaults.
    pub thresholds: Thresholds,
    /// Sources in name order.
    pub sources: Vec<SourceDecl>,
    /// How packages are signed; `None` leaves packages unsigned.
    pub signing: Option<Signing>,
    /// The object store when `store = "s3://bucket/prefix"`; then
    /// [`Organisation::store`] is the local staging folder the run is worked on in.
    pub store_s3: Option<StoreS3>,
    /// `[alerts]`, kept as the file's text and parsed by `crate::alert`
    /// (which comes later in the flow), so its errors keep file:line:col.
    pub alerts: Option<TableText>,
    /// `[sla]`: remediation targets per party, for the SLA adherence KPI.
    pub sla: Sla,
}

/// `[sla]`: how many days each party has to close a gap, per check (the
/// severity: `patch_latency_critical` against `patch_latency_high`) or by
/// default. A party without a table has no target, and its SLA adherence
/// is not measured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// Targets of internal IT.
    #[serde(default)]
    pub internal: Option<PartySla>,
    /// Targets of the MSP.
    #[serde(default)]
    pub msp: Option<PartySla>,
}

/// One party's remediation targets (`[sla.msp]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartySla {
    /// Days to close a gap of any check not named in `checks`.
    #[serde(default)]
    pub days: Option<u32>,
    /// Days per check id (`patch_latency_critical = 14`).
    #[serde(default)]
    pub checks: BTreeMap<String, u32>,
}

impl Sla {
    /// The target in days for a gap of `check` owned by `owner`, if any.
    pub fn target(&self, owner: Owner, check: &str) -> Option<u32> {
        let party = match owner {
            Owner::Internal => self.internal.as_ref(),
            Owner::Msp => self.msp.as_ref(),
            Owner::Shared | Owner::Unassigned => None,
        }?;
        party.checks.get(check).copied().or(party.days)
    }

    /// Whether any party has a target.
    pub fn is_set(&self) -> bool {
        self.internal.is_some() || self.msp.is_some()
    }
}

/// A top-level table that a later module parses itself, with the text of the
/// file it is in.
#[derive(Clone, Debug)]
pub struct TableText {
    /// The whole file's text.
    pub text: Arc<str>,
    /// The file it came from.
    pub path: PathBuf,
}

/// Where an S3 store is: `s3://bucket/prefix` (the prefix may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl S3Location {
    /// Parse `s3://bucket/prefix`; `None` when `text` is not an `s3://` URL.
    ///
    /// # Errors
    /// When it is an `s3://` URL without a valid bucket name.
    pub fn parse(text: &str) -> Option<Result<S3Location>> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.as_bytes()[0].is_ascii_alphanumeric();
        if !valid {
            return Some(Err(Error::config(format!(
                "`{}` does not name an S3 bucket (3 to 63 lower-case letters, digits, `-` or `.`)",
                crate::sanitize::terminal_safe(text)
            ))));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == ".." || p == ".") || prefix.contains("//") {
            return Some(Err(Error::config(format!(
                "`{}`: the prefix may not hold `.`, `..` or empty segments",
                crate::sanitize::terminal_safe(text)
            ))));
        }
        Some(Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// `[store_s3]`: how to reach an S3-compatible store with Object Lock. A
/// fleet file takes the same table.
#[derive(Clone, Debug)]
pub struct StoreS3 {
    /// Bucket and prefix, from `store = "s3://bucket/prefix"`.
    pub location: S3Location,
    /// Endpoint of an S3-compatible service (`https://s3.wasabisys.com`);
    /// `None` for AWS itself (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Region; `None` takes `AWS_REGION` / the profile, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most
    /// S3-compatible services on a plain host name need.
    pub path_style: bool,
    /// Days each object is retained in compliance mode (default 2,192: six years).
    pub retention_days: u32,
    /// Also put a legal hold on each object.
    pub legal_hold: bool,
    /// Access key id and secret access key, when not from the standard AWS
    /// environment variables or profile.
    pub credentials: Option<S3Credentials>,
}

/// Static S3 credentials, each named by an environment variable or file.
#[derive(Clone, Debug)]
pub struct S3Credentials {
    /// The access key id.
    pub access_key_id: SecretRef,
    /// The secret access key.
    pub secret_access_key: SecretRef,
    /// A session token, for temporary credentials.
    pub session_token: Option<SecretRef>,
}

/// Six years of 365.25 days: HIPAA's retention (45 CFR 164.316(b)(2)(i)).
pub const DEFAULT_RETENTION_DAYS: u32 = 2192;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStoreS3 {
    endpoint: Option<String>,
    region: Option<String>,
    #[serde(default)]
    path_style: bool,
    retention_days: Option<u32>,
    #[serde(default)]
    legal_hold: bool,
    access_key_id_env: Option<String>,
    access_key_id_file: Option<PathBuf>,
    secret_access_key_env: Option<String>,
    secret_access_key_file: Option<PathBuf>,
    session_token_env: Option<String>,
    session_token_file: Option<PathBuf>,
    #[serde(default)]
    #[allow(dead_code)]
    access_key_id: Option<RefuseLiteralSecret>,
    #[serde(default)]
    #[allow(dead_code)]
    secret_access_key: Option<RefuseLiteralSecret>,
    #[serde(default)]
    #[allow(dead_code)]
    session_token: Option<RefuseLiteralSecret>,
}

/// Parse a `[store_s3]` table (of an organisation's or a fleet's file) for
/// the store `location`; relative `_file` paths are taken from `base`.
///
/// # Errors
/// On a bad endpoint, a zero retention, or credentials named only in part.
pub fn store_s3_from_toml(
    table: Option<toml::Value>,
    location: S3Location,
    base: &Path,
) -> Result<StoreS3> {
    let raw: RawStoreS3 = match table {
        Some(t) => RawStoreS3::deserialize(t).map_err(|e| Error::config(e.to_string()))?,
        None => RawStoreS3::deserialize(toml::Value::Table(toml::Table::new()))
            .map_err(|e| Error::config(e.to_string()))?,
    };
    raw.resolve(location, base)
}

impl RawStoreS3 {
    fn resolve(self, location: S3Location, base: &Path) -> Result<StoreS3> {
        if let Some(endpoint) = &self.endpoint {
            match reqwest::Url::parse(endpoint) {
                Ok(u) if !matches!(u.scheme(), "http" | "https") || u.host().is_none() => {
                    return Err(Error::config("`endpoint` is not an http(s) URL"));
                }
                Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                    return Err(Error::config(
                        "`endpoint` holds credentials; a secret never goes in the config",
                    ));
                }
                Ok(_) => {}
                Err(_) => return Err(Error::config("`endpoint` is not a URL")),
            }
        }
        let retention_days = self.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
        if retention_days == 0 {
            return Err(Error::config(
                "`retention_days` must be at least 1 (the default is 2192, six years)",
            ));
        }
        let any_key = self.access_key_id_env.is_some()
            || self.access_key_id_file.is_some()
            || self.secret_access_key_env.is_some()
            || self.secret_access_key_file.is_some();
        let credentials = if any_key {
            let session_token = match (&self.session_token_env, &self.session_token_file) {
                (None, None) => None,
                (env, file) => Some(SecretRef::from_pair(
                    "session_token",
                    env.as_deref(),
                    file.as_deref(),
                    base,
                )?),
            };
            Some(S3Credentials {
                access_key_id: SecretRef::from_pair(
                    "access_key_id",
                    self.access_key_id_env.as_deref(),
                    self.access_key_id_file.as_deref(),
                    base,
                )?,
                secret_access_key: SecretRef::from_pair(
                    "secret_access_key",
                    self.secret_access_key_env.as_deref(),
                    self.secret_access_key_file.as_deref(),
                    base,
                )?,
                session_token,
            })
        } else {
            None
        };
        Ok(StoreS3 {
            location,
            endpoint: self.endpoint,
            region: self.region,
            path_style: self.path_style,
            retention_days,
            legal_hold: self.legal_hold,
            credentials,
        })
    }
}

/// An organisation's folder name in a store (fleet store folders, object
/// store prefixes): lower-case letters and digits, other runs as one `-`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "organisation".to_owned()
    } else {
        out.chars().take(48).collect()
    }
}

/// The local folder under which an S3 store's runs are worked on before
/// upload: `$XDG_CACHE_HOME/auditpack/s3/<bucket>/<prefix>` (or
/// `~/.cache/...`, or the temporary folder); each organisation's staging
/// store is the folder of its slug in it.
pub fn default_staging(location: &S3Location) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let mut dir = cache.join("auditpack").join("s3").join(&location.bucket);
    for part in location.prefix.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
    }
    dir
}

/// `[organisation]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    /// Display name, e.g. "Contoso Dental".
    pub name: String,
    /// Catalog ids from `controls/frameworks/`.
    pub frameworks: Vec<String>,
    /// Ownership template id from `controls/ownership/`.
    #[serde(default = "default_ownership")]
    pub ownership: String,
    /// Where runs and packages are written (relative to the config file).
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// Whether the organisation is a service provider (PCI DSS requirements
    /// marked for service providers apply).
    #[serde(default)]
    pub service_provider: bool,
    /// Devices that must be backed up even though they are not servers
    /// (host names or serial numbers, case-insensitive).
    #[serde(default)]
    pub critical_devices: Vec<String>,
    /// Contact name for the package's `bag-info.txt`.
    #[serde(default)]
    pub contact_name: Option<String>,
    /// Contact e-mail for the package's `bag-info.txt`.
    #[serde(default)]
    pub contact_email: Option<String>,
    /// The organisation's accepted risks (relative to the config file);
    /// when not set, `exceptions.toml` beside the config is used if it
    /// exists. See [`crate::history::exceptions`].
    #[serde(default)]
    pub exceptions: Option<PathBuf>,
    /// The contract fee per month (for the cost per endpoint KPI).
    #[serde(default)]
    pub monthly_fee: Option<f64>,
    /// The fee's currency, as shown beside it (`EUR`, `USD`).
    #[serde(default)]
    pub currency: Option<String>,
}

fn default_ownership() -> String {
    "co-managed-default".to_owned()
}

fn default_store() -> PathBuf {
    PathBuf::from("evidence")
}

/// `[signing]`.
#[derive(Clone, Debug)]
pub struct Signing {
    /// Where the OpenSSH Ed25519 private key comes from.
    pub key: KeySource,
    /// Where its passphrase comes from, if it has one.
    pub passphrase: Option<SecretRef>,
    /// The signer identity auditors put in `allowed_signers`.
    pub identity: String,
    /// An RFC 3161 Time-Stamp Authority to stamp the signature, if any.
    pub tsa_url: Option<String>,
}

/// Where the signing key comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A key file path.
    File(PathBuf),
    /// An environment variable holding the OpenSSH PEM text.
    Env(String),
}

/// One `[sources.<name>]` table, parsed by its collector.
#[derive(Clone, Debug)]
pub struct SourceDecl {
    /// The table's name: the evidence folder name.
    pub name: String,
    /// The `type` key, naming a collector in [`crate::sources::SOURCES`].
    pub source_type: String,
    text: Arc<str>,
    path: PathBuf,
    /// Byte offset of the `type` value in `text`.
    type_at: usize,
}

impl SourceDecl {
    /// Deserialize this source's table into a collector's own config type.
    /// Errors carry the file, line and column of the offending key or value.
    ///
    /// # Errors
    /// On unknown keys, wrong types or refused literal secrets.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        parse_at(&self.text, &self.path, |de| {
            PickSource::<T>::new(&self.name).deserialize(de)
        })
        .map_err(|e| Error::config(format!("{e} (in [sources.{}])", self.name)))
    }

    /// `file:line:col` of this source's `type` value, for messages.
    pub fn type_location(&self) -> String {
        let (line, col) = line_col(&self.text, self.type_at);
        format!("{}:{line}:{col}", self.path.display())
    }

    /// The folder relative paths in this source resolve against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// A field type for keys that would hold a literal secret: any value is refused.
#[derive(Debug)]
pub enum RefuseLiteralSecret {}

impl<'de> Deserialize<'de> for RefuseLiteralSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(IgnoredAny)?;
        Err(de::Error::custom(
            "a literal secret is not allowed in the config file; put it in an environment \
             variable or a file and name that instead (e.g. `client_secret_env = \"VAR\"` or \
             `client_secret_file = \"path\"`)",
        ))
    }
}

impl Config {
    /// Read and validate a config file.
    ///
    /// # Errors
    /// When the file is missing or unreadable, or invalid; the message names the
    /// file, line, column and key.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Config::from_str_at(&text, path)
    }

    /// Parse config text as if read from `path`.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_str_at(text: &str, path: &Path) -> Result<Config> {
        let raw: RawConfig = parse_at(text, path, |de| RawConfig::deserialize(de))?;
        let text: Arc<str> = text.into();
        let mut sources = Vec::new();
        for (name, header) in raw.sources {
            if !valid_source_name(&name) {
                return Err(Error::config(format!(
                    "{}: source name `{name}` must be lower-case letters, digits, `-` or `_` (it names an evidence folder)",
                    path.display()
                )));
            }
            sources.push(SourceDecl {
                name,
                type_at: header.source_type.span().start,
                source_type: header.source_type.into_inner(),
                text: text.clone(),
                path: path.to_owned(),
            });
        }
        for key in raw.ownership.overrides.keys() {
            if key
                .split_once(':')
                .is_none_or(|(f, c)| f.is_empty() || c.is_empty())
            {
                return Err(Error::config(format!(
                    "{}: ownership override `{key}` must look like \"<framework>:<control id>\"",
                    path.display()
                )));
            }
        }
        if raw.organisation.frameworks.is_empty() {
            return Err(Error::config(format!(
                "{}: [organisation] frameworks is empty; name at least one catalog (hipaa, pci-dss, soc2)",
                path.display()
            )));
        }
        if let Some(fee) = raw.organisation.monthly_fee {
            if !fee.is_finite() || fee < 0.0 {
                return Err(Error::config(format!(
                    "{}: [organisation] monthly_fee must be a number of zero or more (e.g. 2400.0)",
                    path.display()
                )));
            }
        }
        for (party, table) in [("internal", &raw.sla.internal), ("msp", &raw.sla.msp)] {
            for check in table.iter().flat_map(|t| t.checks.keys()) {
                let known: Vec<&str> = auditpack_core::checks::CHECKS
                    .iter()
                    .map(|c| c.id)
                    .collect();
                if !known.contains(&check.as_str()) {
                    let hint = did_you_mean(check, &known)
                        .map(|k| format!("; did you mean `{k}`?"))
                        .unwrap_or_default();
                    return Err(Error::config(format!(
                        "{}: [sla.{party}.checks] names unknown check `{check}`{hint} (`auditpack controls` lists the checks)",
                        path.display()
                    )));
                }
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut organisation = raw.organisation;
        let location = organisation
            .store
            .to_str()
            .and_then(S3Location::parse)
            .transpose()
            .map_err(|e| Error::config(format!("{}: [organisation] store: {e}", path.display())))?;
        let store_s3 = match location {
            Some(location) => {
                organisation.store = default_staging(&location).join(slug(&organisation.name));
                Some(
                    store_s3_from_toml(raw.store_s3, location, base).map_err(|e| {
                        Error::config(format!("{}: [store_s3]: {e}", path.display()))
                    })?,
                )
            }
            None if raw.store_s3.is_some() => {
                return Err(Error::config(format!(
                    "{}: [store_s3] is set but [organisation] store is not an s3:// URL",
                    path.display()
                )))
            }
            None => {
                organisation.store = base
                    .join(&organisation.store)
                    .components()
                    .filter(|c| !matches!(c, std::path::Component::CurDir))
                    .collect();
                None
            }
        };
        organisation.exceptions = organisation.exceptions.map(|p| base.join(p));
        let signing = raw
            .signing
            .map(|s| s.resolve(base))
            .transpose()
            .map_err(|e| Error::config(format!("{}: [signing]: {e}", path.display())))?;
        Ok(Config {
            path: path.to_owned(),
            organisation,
            ownership_overrides: raw.ownership.overrides,
            thresholds: raw.thresholds,
            sources,
            alerts: raw.alerts.map(|_| TableText {
                text,
                path: path.to_owned(),
            }),
            signing,
            sla: raw.sla,
            store_s3,
        })
    }
}

fn valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    organisation: Organisation,
    #[serde(default)]
    ownership: RawOwnership,
    #[serde(default)]
    thresholds: Thresholds,
    #[serde(default)]
    sources: BTreeMap<String, SourceHeader>,
    #[serde(default)]
    signing: Option<RawSigning>,
    #[serde(default)]
    store_s3: Option<toml::Value>,
    alerts: Option<IgnoredAny>,
    #[serde(default)]
    sla: Sla,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOwnership {
    #[serde(default)]
    overrides: BTreeMap<String, Owner>,
}

/// The part of a source every collector shares; the rest is the collector's.
#[derive(Deserialize)]
struct SourceHeader {
    #[serde(rename = "type")]
    source_type: toml::Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    key_file: Option<PathBuf>,
    key_env: Option<String>,
    passphrase_env: Option<String>,
    passphrase_file: Option<PathBuf>,
    identity: String,
    tsa_url: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    key: Option<RefuseLiteralSecret>,
    #[serde(default)]
    #[allow(dead_code)]
    passphrase: Option<RefuseLiteralSecret>,
}

impl RawSigning {
    fn resolve(self, base: &Path) -> Result<Signing> {
        let key = match (self.key_file, self.key_env) {
            (Some(file), None) => KeySource::File(base.join(file)),
            (None, Some(var)) => KeySource::Env(var),
            _ => return Err(Error::config("set exactly one of `key_file` and `key_env`")),
        };
        let passphrase = match (&self.passphrase_env, &self.passphrase_file) {
            (None, None) => None,
            (env, file) => Some(SecretRef::from_pair(
                "passphrase",
                env.as_deref(),
                file.as_deref(),
                base,
            )?),
        };
        auditpack_bag::validate_identity(&self.identity)
            .map_err(|e| Error::config(format!("`identity`: {e}")))?;
        if let Some(url) = &self.tsa_url {
            // Never echo the URL: it is refused when it may hold credentials.
            match reqwest::Url::parse(url) {
                Ok(u) if !matches!(u.scheme(), "http" | "https") || u.host().is_none() => {
                    return Err(Error::config("`tsa_url` is not an http(s) URL"));
                }
                Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                    return Err(Error::config(
                        "`tsa_url` holds credentials; a secret never goes in the config",
                    ));
                }
                Ok(_) => {}
                Err(_) => return Err(Error::config("`tsa_url` is not a URL")),
            }
        }
        Ok(Signing {
            key,
            passphrase,
            identity: self.identity,
            tsa_url: self.tsa_url,
        })
    }
}

/// Run a deserializer over `text` and turn its error into `file:line:col: message`,
/// without quoting the line (it may hold a secret).
///
/// # Errors
/// When the text is not TOML or `f` refuses it.
pub(crate) fn parse_at<T>(
    text: &str,
    path: &Path,
    f: impl FnOnce(toml::Deserializer<'_>) -> std::result::Result<T, toml::de::Error>,
) -> Result<T> {
    let result = toml::Deserializer::parse(text).and_then(f);
    result.map_err(|e| {
        let location = match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                format!("{}:{line}:{col}", path.display())
            }
            None => path.display().to_string(),
        };
        let key = e.span().map(|span| key_at(text, span.start)).unwrap_or("");
        Error::config(format!(
            "{location}: {}",
            humanise(e.message().trim_end(), key)
        ))
    })
}

/// Keys whose only purpose is to refuse a literal secret: never offered as a
/// hint for an unknown key.
const REFUSED_KEYS: &[&str] = &[
    "client_secret",
    "url",
    "secret",
    "password",
    "api_key",
    "api_secret",
    "token",
    "key",
    "passphrase",
];

/// The key on the line holding `offset` (the text before its `=`), for
/// messages; empty when there is none. Never the value.
fn key_at(text: &str, offset: usize) -> &str {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    line.split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"'))
        .filter(|k| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
        .unwrap_or("")
}

/// serde's messages in words a config author uses: a whole number of days
/// instead of `u32`, and for an unknown key the nearest known one, without
/// the keys that only exist to refuse a literal secret.
fn humanise(message: &str, key: &str) -> String {
    for int in ["u8", "u16", "u32", "u64", "usize", "i64"] {
        let rust = format!("expected {int}");
        if let Some(at) = message.find(&rust) {
            if message[at + rust.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
            {
                let unit = if key.ends_with("_days") {
                    "a whole number of days (e.g. 90)"
                } else if key.ends_with("_hours") {
                    "a whole number of hours (e.g. 48)"
                } else {
                    "a whole number (e.g. 100)"
                };
                let mut out = message.to_owned();
                out.replace_range(at..at + rust.len(), &format!("expected {unit}"));
                return out;
            }
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((unknown, list)) = rest.split_once('`') {
            let known: Vec<&str> = list
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|k| !REFUSED_KEYS.contains(k))
                .collect();
            if known.is_empty() {
                return format!("unknown key `{unknown}`");
            }
            let hint = did_you_mean(unknown, &known)
                .map(|k| format!("did you mean `{k}`? "))
                .unwrap_or_default();
            return format!(
                "unknown key `{unknown}`; {hint}known keys here: {}",
                known.join(", ")
            );
        }
    }
    message.to_owned()
}

/// The candidate closest to `given` by edit distance, when it is close enough
/// to be a typo (at most a third of its length, and at least one edit).
pub fn did_you_mean<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&given, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Deserializes `sources.<name>` into `T` and ignores everything else, so the
/// collector's type sees the original spans.
struct PickSource<'a, T> {
    name: &'a str,
    _t: PhantomData<T>,
}

impl<'a, T> PickSource<'a, T> {
    fn new(name: &'a str) -> Self {
        PickSource {
            name,
            _t: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for PickSource<'_, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<T, D::Error> {
        d.deserialize_map(PickVisitor {
            path: ["sources", self.name],
            depth: 0,
            _t: PhantomData,
        })
    }
}

struct PickVisitor<'a, T> {
    path: [&'a str; 2],
    depth: usize,
    _t: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for PickVisitor<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a table containing `{}`", self.path[self.depth])
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<T, A::Error> {
        let want = self.path[self.depth];
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != want || found.is_some() {
                map.next_value::<IgnoredAny>()?;
            } else if self.depth + 1 == self.path.len() {
                found = Some(map.next_value::<T>()?);
            } else {
                found = Some(map.next_value_seed(NextLevel(PickVisitor {
                    path: self.path,
                    depth: self.depth + 1,
                    _t: PhantomData,
                }))?);
            }
        }
        found.ok_or_else(|| de::Error::custom(format!("missing [{}]", self.path.join("."))))
    }
}

struct NextLevel<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for NextLevel<V> {
    type Value = V::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<V::Value, D::Error> {
        d.deserialize_map(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }

    #[test]
    fn messages_use_words_not_rust_types() {
        assert_eq!(
            humanise(
                "invalid type: string \"x\", expected u32",
                "inactive_account_days"
            ),
            "invalid type: string \"x\", expected a whole number of days (e.g. 90)"
        );
        assert_eq!(
            humanise(
                "invalid type: string \"x\", expected u32",
                "backup_max_age_hours"
            ),
            "invalid type: string \"x\", expected a whole number of hours (e.g. 48)"
        );
        let unknown = humanise(
            "unknown field `client_secrt`, expected one of `tenant_id`, `client_secret_env`, `client_secret`",
            "",
        );
        assert_eq!(
            unknown,
            "unknown key `client_secrt`; did you mean `client_secret_env`? known keys here: tenant_id, client_secret_env"
        );
        assert_eq!(key_at("a = 1\n  bcd_days = \"x\"\n", 18), "bcd_days");
    }

    #[test]
    fn typos_find_their_key() {
        assert_eq!(did_you_mean("m356", &["m365", "ninjaone"]), Some("m365"));
        assert_eq!(did_you_mean("ninja", &["m365", "ninjaone"]), None);
        assert_eq!(did_you_mean("datto", &["datto-rmm", "m365"]), None);
        assert_eq!(
            did_you_mean("datto-rm", &["datto-rmm", "m365"]),
            Some("datto-rmm")
        );
    }

    #[test]
    fn source_names_are_folder_safe() {
        assert!(valid_source_name("m365"));
        assert!(valid_source_name("ninja-eu_2"));
        assert!(!valid_source_name("../x"));
        assert!(!valid_source_name("Upper"));
        assert!(!valid_source_name("-lead"));
        assert!(!valid_source_name(""));
    }
}
