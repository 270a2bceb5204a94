//! The endpoint report schema (`collectors/endpoint/schema/endpoint-report-v1.schema.json`),
//! its typed form, and a validator for the JSON Schema keywords the schema
//! uses (`type`, `const`, `enum`, `properties`, `required`,
//! `additionalProperties`, `items`, `minLength`, `maxLength`, `maxItems`,
//! `minimum`, `format: date-time`). The validator reads the schema file
//! itself, so the documented schema and the enforced one cannot drift; a
//! keyword it does not know is refused when the schema loads.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema text, as shipped.
pub const SCHEMA_V1: &str =
    include_str!("../../../collectors/endpoint/schema/endpoint-report-v1.schema.json");

/// The `schema` value every report carries.
pub const SCHEMA_ID: &str = "auditpack.endpoint-report";

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// A report, as typed data (what `auditpack probe` writes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointReport {
    /// Always [`SCHEMA_ID`].
    pub schema: String,
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u64,
    /// When produced (RFC 3339).
    pub generated_at: String,
    /// The producer.
    pub generator: Generator,
    /// Host identity.
    pub host: Host,
    /// Operating system.
    pub os: Os,
    /// Patching.
    pub patching: Patching,
    /// EDR and antivirus products.
    pub security_products: Vec<SecurityProduct>,
    /// Disk encryption.
    pub disk_encryption: DiskEncryption,
    /// Firewall.
    pub firewall: Firewall,
    /// Screen lock.
    pub screen_lock: ScreenLock,
}

/// `generator`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    /// Producer name.
    pub name: String,
    /// Producer version.
    pub version: String,
}

/// `host`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Short host name.
    pub hostname: String,
    /// Fully qualified name.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// Hardware serial number.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// OS installation id.
    #[serde(default)]
    pub machine_id: Option<String>,
    /// Entra ID device id.
    #[serde(default)]
    pub aad_device_id: Option<String>,
}

/// `os`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Os {
    /// `linux`, `windows` or `macos`.
    pub family: String,
    /// Name, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub name: String,
    /// Version, e.g. "12".
    pub version: String,
    /// Kernel release or build.
    #[serde(default)]
    pub build: Option<String>,
}

/// `patching`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Patching {
    /// Last successful install (RFC 3339).
    pub last_install: Option<String>,
    /// Whether the pending check ran.
    pub checked: bool,
    /// How pending updates were listed.
    #[serde(default)]
    pub check_method: Option<String>,
    /// Pending security updates.
    pub pending_security_updates: Vec<PendingUpdate>,
}

/// One pending security update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdate {
    /// Package, advisory or KB.
    pub id: String,
    /// Title.
    pub title: String,
    /// `critical`, `important`, `moderate`, `low` or `unknown`.
    pub severity: String,
    /// Release time (RFC 3339).
    #[serde(default)]
    pub released: Option<String>,
    /// Age in days.
    #[serde(default)]
    pub age_days: Option<u64>,
}

/// One EDR or antivirus product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityProduct {
    /// Product name.
    pub name: String,
    /// `edr` or `antivirus`.
    pub kind: String,
    /// Running now.
    pub running: bool,
    /// Signatures current, when known.
    #[serde(default)]
    pub up_to_date: Option<bool>,
    /// How it was found.
    #[serde(default)]
    pub detected_by: Option<String>,
}

/// `disk_encryption`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskEncryption {
    /// `encrypted`, `partial`, `not_encrypted` or `unknown`.
    pub status: String,
    /// LUKS, BitLocker, FileVault.
    #[serde(default)]
    pub method: Option<String>,
    /// Volumes seen.
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// One volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// Device or volume name.
    pub name: String,
    /// Mount point.
    #[serde(default)]
    pub mount: Option<String>,
    /// Encrypted.
    pub encrypted: bool,
}

/// `firewall`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Firewall {
    /// `enabled`, `disabled` or `unknown`.
    pub status: String,
    /// Firewalls found.
    #[serde(default)]
    pub products: Vec<String>,
}

/// `screen_lock`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScreenLock {
    /// `enabled`, `disabled`, `not_applicable` or `unknown`.
    pub status: String,
    /// Idle seconds before locking.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// Keywords the validator implements; annotations it ignores.
const KEYWORDS: &[&str] = &[
    "type",
    "const",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minLength",
    "maxLength",
    "maxItems",
    "minimum",
    "format",
];
const ANNOTATIONS: &[&str] = &["$schema", "$id", "title", "description"];

/// A loaded schema.
pub struct Schema {
    root: Value,
}

impl Schema {
    /// The shipped v1 schema.
    ///
    /// # Errors
    /// When the shipped schema uses a keyword the validator lacks (a build defect).
    pub fn v1() -> Result<Schema, String> {
        Schema::parse(SCHEMA_V1)
    }

    /// Load a schema, refusing keywords the validator does not implement.
    ///
    /// # Errors
    /// When the text is not JSON or uses an unknown keyword.
    pub fn parse(text: &str) -> Result<Schema, String> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| format!("schema is not JSON: {e}"))?;
        check_keywords(&root, "#")?;
        Ok(Schema { root })
    }

    /// Every violation of `doc`, as `<JSON pointer>: <problem>`; empty when valid.
    pub fn validate(&self, doc: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        validate(&self.root, doc, "", &mut errors);
        errors
    }
}

fn check_keywords(schema: &Value, at: &str) -> Result<(), String> {
    let Some(map) = schema.as_object() else {
        return Err(format!("{at}: a schema must be an object"));
    };
    for (k, v) in map {
        if ANNOTATIONS.contains(&k.as_str()) {
            continue;
        }
        if !KEYWORDS.contains(&k.as_str()) {
            return Err(format!("{at}: keyword `{k}` is not supported"));
        }
        match k.as_str() {
            "properties" => {
                for (name, sub) in v.as_object().into_iter().flatten() {
                    check_keywords(sub, &format!("{at}/properties/{name}"))?;
                }
            }
            "items" => check_keywords(v, &format!("{at}/items"))?,
            "format" if v.as_str() != Some("date-time") => {
                return Err(format!("{at}: only format date-time is supported"))
            }
            _ => {}
        }
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn validate(schema: &Value, doc: &Value, at: &str, errors: &mut Vec<String>) {
    let here = if at.is_empty() { "/" } else { at };
    if let Some(t) = schema.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let actual = type_name(doc);
        let ok = allowed
            .iter()
            .any(|a| *a == actual || (*a == "number" && actual == "integer"));
        if !ok {
            errors.push(format!(
                "{here}: expected {}, found {actual}",
                allowed.join(" or ")
            ));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != doc {
            errors.push(format!("{here}: must be {c}"));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(doc) {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            errors.push(format!("{here}: must be one of {}", list.join(", ")));
        }
    }
    if let Value::String(s) = doc {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if len < min {
                errors.push(format!("{here}: shorter than {min} characters"));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                errors.push(format!("{here}: longer than {max} characters"));
            }
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && chrono::DateTime::parse_from_rfc3339(s).is_err()
        {
            errors.push(format!("{here}: not an RFC 3339 date-time"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), doc.as_f64()) {
        if n < min {
            errors.push(format!("{here}: less than {min}"));
        }
    }
    if let Value::Array(items) = doc {
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                errors.push(format!("{here}: more than {max} items"));
            }
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(item_schema, item, &format!("{at}/{i}"), errors);
            }
        }
    }
    if let Value::Object(map) = doc {
        let props = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(name) {
                errors.push(format!("{here}: missing required `{name}`"));
            }
        }
        for (k, v) in map {
            let key = k.replace('~', "~0").replace('/', "~1");
            match props.and_then(|p| p.get(k)) {
                Some(sub) => validate(sub, v, &format!("{at}/{key}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!(
                        "{here}: unknown key `{}`",
                        k.chars().take(64).collect::<String>().escape_debug()
                    ));
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_shipped_schema_loads_and_unknown_keywords_are_refused() {
        assert!(Schema::v1().is_ok());
        assert!(Schema::parse(r#"{"type": "object", "patternProperties": {}}"#).is_err());
    }

    #[test]
    fn reports_every_violation_with_its_pointer() {
        let schema = Schema::v1().expect("schema");
        let errors = schema.validate(&json!({"schema": "x", "schema_version": 1, "extra": 1}));
        assert!(errors.iter().any(|e| e.starts_with("/schema: must be")));
        assert!(errors.iter().any(|e| e.contains("missing required `host`")));
        assert!(errors.iter().any(|e| e.contains("unknown key `extra`")));
    }
}
