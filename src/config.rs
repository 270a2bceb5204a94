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

/// The accountable party for a control or check.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// The business's own IT person or team.
    Internal,
    /// The managed service provider.
    Msp,
    /// Both, with the responsible party named per check.
    Shared,
    /// Nobody: itself a finding.
    Unassigned,
}

impl Owner {
    /// The contract spelling (`internal`, `msp`, `shared`, `unassigned`).
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Internal => "internal",
            Owner::Msp => "msp",
            Owner::Shared => "shared",
            Owner::Unassigned => "unassigned",
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// Contact name for the package's `bag-info.txt`.
    #[serde(default)]
    pub contact_name: Option<String>,
    /// Contact e-mail for the package's `bag-info.txt`.
    #[serde(default)]
    pub contact_email: Option<String>,
}

fn default_ownership() -> String {
    "co-managed-default".to_owned()
}

fn default_store() -> PathBuf {
    PathBuf::from("evidence")
}

/// `[thresholds]`: every value optional; unset ones take framework defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Days without sign-in after which an enabled account counts as inactive.
    pub inactive_account_days: Option<u32>,
    /// Days a critical patch may stay pending.
    pub critical_patch_days: Option<u32>,
    /// Days a high/important patch may stay pending.
    pub high_patch_days: Option<u32>,
    /// Days within which an access review must have completed.
    pub access_review_days: Option<u32>,
    /// Maximum age of anti-malware signatures, in days.
    pub edr_signature_days: Option<u32>,
    /// Days without check-in after which a device is stale.
    pub stale_device_days: Option<u32>,
    /// Maximum age of the newest backup, in hours.
    pub backup_max_age_hours: Option<u32>,
    /// Days collected evidence stays usable; older evidence makes a control inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_ttl_days: Option<u32>,
    /// Whether phones and tablets (iOS, iPadOS, Android) are in scope for
    /// the anti-malware and EDR checks; off by default (they stay in scope
    /// for encryption, compliance and staleness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_endpoint_protection: Option<bool>,
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
    /// The `type` key, naming a collector in [`crate::collect::COLLECTORS`].
    pub source_type: String,
    text: Arc<str>,
    path: PathBuf,
}

impl SourceDecl {
    /// A declaration built in code (the demo, tests) from the TOML body of one source.
    ///
    /// # Errors
    /// When the body is not valid TOML or lacks `type`.
    pub fn from_toml(name: &str, body: &str) -> Result<SourceDecl> {
        let text = format!("[sources.{name}]\n{body}\n");
        let header: SourceHeader = parse_at(&text, Path::new("<built-in>"), |de| {
            PickSource::<SourceHeader>::new(name).deserialize(de)
        })?;
        Ok(SourceDecl {
            name: name.to_owned(),
            source_type: header.source_type,
            text: text.into(),
            path: PathBuf::from("<built-in>"),
        })
    }

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
                source_type: header.source_type,
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
        let base = path.parent().unwrap_or(Path::new("."));
        let mut organisation = raw.organisation;
        organisation.store = base
            .join(&organisation.store)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
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
            signing,
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
    source_type: String,
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
        if self.identity.trim().is_empty() {
            return Err(Error::config("`identity` is empty"));
        }
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
fn parse_at<T>(
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
        Error::config(format!("{location}: {}", e.message().trim_end()))
    })
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
    fn source_names_are_folder_safe() {
        assert!(valid_source_name("m365"));
        assert!(valid_source_name("ninja-eu_2"));
        assert!(!valid_source_name("../x"));
        assert!(!valid_source_name("Upper"));
        assert!(!valid_source_name("-lead"));
        assert!(!valid_source_name(""));
    }
}
