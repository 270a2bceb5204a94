//! Control catalogs and ownership templates, as data in `controls/`.
//!
//! The catalogs ship inside the binary; each is parsed strictly and validated at
//! load: unique ids, a title and summary on every control, every referenced
//! check exists, every check is used, manual and hybrid controls name the
//! documents that satisfy them, ownership entries point at real controls.

use std::collections::{BTreeMap, BTreeSet};

use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};

use crate::checks::CHECKS;
use crate::error::{Error, ErrorKind, Result};
use crate::policy::{Owner, Thresholds};

static CONTROLS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../controls");

/// The values `applies_to` may take. Only `all` and `service-provider` can be
/// in scope (the latter with `service_provider = true`); the others mark PCI
/// DSS appendix requirements that auditpack leaves `not_applicable`.
pub const APPLIES_TO: &[&str] = &[
    "all",
    "service-provider",
    "multi-tenant-service-provider",
    "designated-entity",
];

/// How a control is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    /// The checks alone judge it.
    Automated,
    /// The checks judge the technical part; documents are also needed.
    Hybrid,
    /// Only documents a person supplies.
    Manual,
}

/// `[framework]` of a catalog file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkMeta {
    /// Catalog id (`hipaa`, `pci-dss`, `soc2`...).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Version of the standard.
    pub version: String,
    /// `final` or `proposed`.
    pub status: String,
    /// What it is, in our words.
    pub description: String,
    /// What of the standard's text may be shipped.
    #[serde(default)]
    pub licence_note: Option<String>,
}

/// One control.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Id within the framework (`8.2.6`, `164.312(d)`, `CC6.1`).
    pub id: String,
    /// Title.
    pub title: String,
    /// What an assessor expects, in our words.
    pub summary: String,
    /// How it is judged.
    pub kind: ControlKind,
    /// Check ids that judge it.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Documents a person supplies that satisfy it.
    #[serde(default)]
    pub manual_evidence: Vec<String>,
    /// Parent section or safeguard family.
    #[serde(default)]
    pub section: Option<String>,
    /// Theme of the group it belongs to.
    #[serde(default)]
    pub group: Option<String>,
    /// HIPAA: `required`, `addressable` or `standard`.
    #[serde(default)]
    pub requirement: Option<String>,
    /// PCI: who it applies to, when not everyone (`service-provider`...).
    #[serde(default)]
    pub applies_to: Option<String>,
    /// SOC 2 trust services category.
    #[serde(default)]
    pub category: Option<String>,
    /// Days its evidence stays usable, when it differs from the framework's
    /// `evidence_ttl_days`.
    #[serde(default)]
    pub evidence_ttl_days: Option<u32>,
}

/// A catalog: one framework's controls and threshold defaults.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// Identity.
    pub framework: FrameworkMeta,
    /// Threshold defaults of this framework.
    #[serde(default)]
    pub defaults: Thresholds,
    /// Controls in catalog order.
    #[serde(rename = "control")]
    pub controls: Vec<Control>,
}

/// `[template]` of an ownership file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMeta {
    /// Template id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Who does what in this split.
    pub description: String,
}

/// An ownership template: accountable owner per control, responsible party per check.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipTemplate {
    /// Identity.
    pub template: TemplateMeta,
    /// Responsible party per check, used where a control is shared.
    #[serde(default)]
    pub checks: BTreeMap<String, Owner>,
    /// Owner per `"<framework>:<control id>"`.
    #[serde(default)]
    pub controls: BTreeMap<String, Owner>,
}

/// Every catalog and template that ships.
#[derive(Clone, Debug)]
pub struct Catalog {
    frameworks: Vec<Framework>,
    templates: Vec<OwnershipTemplate>,
}

impl Catalog {
    /// Load and validate the built-in catalogs.
    ///
    /// # Errors
    /// When a file does not parse or validation fails (a bug in the shipped data).
    pub fn builtin() -> Result<Catalog> {
        let read = |folder: &str| -> Vec<(String, &'static str)> {
            let mut files: Vec<_> = CONTROLS
                .get_dir(folder)
                .into_iter()
                .flat_map(|d| d.files())
                .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
                .filter_map(|f| Some((f.path().display().to_string(), f.contents_utf8()?)))
                .collect();
            files.sort();
            files
        };
        Catalog::from_sources(&read("frameworks"), &read("ownership"))
    }

    /// Parse and validate catalogs given as (file name, TOML text).
    ///
    /// # Errors
    /// On parse or validation failure, naming the file and control.
    pub fn from_sources(
        frameworks: &[(String, &str)],
        templates: &[(String, &str)],
    ) -> Result<Catalog> {
        let parse_err = |file: &str, e: toml::de::Error| {
            Error::new(
                ErrorKind::Catalog,
                format!("controls/{file}: {}", e.to_string().trim_end()),
            )
        };
        let frameworks = frameworks
            .iter()
            .map(|(file, text)| toml::from_str::<Framework>(text).map_err(|e| parse_err(file, e)))
            .collect::<Result<Vec<_>>>()?;
        let templates = templates
            .iter()
            .map(|(file, text)| {
                toml::from_str::<OwnershipTemplate>(text).map_err(|e| parse_err(file, e))
            })
            .collect::<Result<Vec<_>>>()?;
        let catalog = Catalog {
            frameworks,
            templates,
        };
        let problems = catalog.validate();
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(Error::new(
                ErrorKind::Catalog,
                format!("invalid control catalog:\n  {}", problems.join("\n  ")),
            ))
        }
    }

    /// Every problem with the catalogs and templates; empty when valid.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let known: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
        let mut used = BTreeSet::new();
        let mut framework_ids = BTreeSet::new();
        let mut all_controls = BTreeSet::new();
        for fw in &self.frameworks {
            let f = &fw.framework.id;
            if !framework_ids.insert(f.as_str()) {
                problems.push(format!("framework id {f} appears twice"));
            }
            let mut ids = BTreeSet::new();
            for c in &fw.controls {
                let at = format!("{f}:{}", c.id);
                if !ids.insert(c.id.as_str()) {
                    problems.push(format!("{at}: duplicate control id"));
                }
                all_controls.insert(at.clone());
                if c.title.trim().is_empty() || c.summary.trim().is_empty() {
                    problems.push(format!("{at}: missing title or summary"));
                }
                for check in &c.checks {
                    if known.contains(check.as_str()) {
                        used.insert(check.as_str());
                    } else {
                        problems.push(format!("{at}: unknown check `{check}`"));
                    }
                }
                if let Some(a) = c.applies_to.as_deref() {
                    if !APPLIES_TO.contains(&a) {
                        problems.push(format!(
                            "{at}: applies_to `{a}` is not one of {}",
                            APPLIES_TO.join(", ")
                        ));
                    }
                }
                match c.kind {
                    ControlKind::Automated if c.checks.is_empty() => {
                        problems.push(format!("{at}: automated but lists no checks"))
                    }
                    ControlKind::Manual if !c.checks.is_empty() => {
                        problems.push(format!("{at}: manual but lists checks"))
                    }
                    ControlKind::Hybrid if c.checks.is_empty() => {
                        problems.push(format!("{at}: hybrid but lists no checks"))
                    }
                    ControlKind::Manual | ControlKind::Hybrid if c.manual_evidence.is_empty() => {
                        problems.push(format!("{at}: names no manual evidence"))
                    }
                    _ => {}
                }
            }
        }
        for check in &known {
            if !used.contains(check) {
                problems.push(format!("check `{check}` is used by no control"));
            }
        }
        let mut template_ids = BTreeSet::new();
        for t in &self.templates {
            let id = &t.template.id;
            if !template_ids.insert(id.as_str()) {
                problems.push(format!("ownership template {id} appears twice"));
            }
            for key in t.controls.keys() {
                if !all_controls.contains(key) {
                    problems.push(format!("ownership template {id}: unknown control {key}"));
                }
            }
            for check in t.checks.keys() {
                if !known.contains(check.as_str()) {
                    problems.push(format!("ownership template {id}: unknown check {check}"));
                }
            }
            for (check, owner) in &t.checks {
                if matches!(owner, Owner::Shared | Owner::Unassigned) {
                    problems.push(format!(
                        "ownership template {id}: check {check} must name one responsible party (internal or msp), not {owner}"
                    ));
                }
            }
        }
        problems
    }

    /// All frameworks in file order.
    pub fn frameworks(&self) -> &[Framework] {
        &self.frameworks
    }

    /// A framework by id.
    pub fn framework(&self, id: &str) -> Option<&Framework> {
        self.frameworks.iter().find(|f| f.framework.id == id)
    }

    /// All ownership templates.
    pub fn templates(&self) -> &[OwnershipTemplate] {
        &self.templates
    }

    /// A template by id.
    pub fn template(&self, id: &str) -> Option<&OwnershipTemplate> {
        self.templates.iter().find(|t| t.template.id == id)
    }
}

/// Who owns what for one organisation: a template plus overrides.
#[derive(Clone, Debug)]
pub struct Ownership<'a> {
    template: &'a OwnershipTemplate,
    overrides: &'a BTreeMap<String, Owner>,
}

impl<'a> Ownership<'a> {
    /// Combine a template with per-organisation overrides.
    ///
    /// # Errors
    /// When an override names a control that no loaded framework has.
    pub fn new(
        catalog: &Catalog,
        template: &'a OwnershipTemplate,
        overrides: &'a BTreeMap<String, Owner>,
    ) -> Result<Ownership<'a>> {
        for key in overrides.keys() {
            let known = key.split_once(':').is_some_and(|(f, c)| {
                catalog
                    .framework(f)
                    .is_some_and(|fw| fw.controls.iter().any(|ctl| ctl.id == c))
            });
            if !known {
                return Err(Error::config(format!(
                    "[ownership.overrides]: `{key}` is not a known control (see `auditpack controls`)"
                )));
            }
        }
        Ok(Ownership {
            template,
            overrides,
        })
    }

    /// The accountable owner of a control.
    pub fn control(&self, framework: &str, control: &str) -> Owner {
        let key = format!("{framework}:{control}");
        self.overrides
            .get(&key)
            .or_else(|| self.template.controls.get(&key))
            .copied()
            .unwrap_or(Owner::Unassigned)
    }

    /// The party responsible for a check under a control owned by `owner`.
    pub fn check(&self, owner: Owner, check: &str) -> Owner {
        match owner {
            Owner::Shared => self
                .template
                .checks
                .get(check)
                .copied()
                .unwrap_or(Owner::Unassigned),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_valid() {
        let catalog = Catalog::builtin().expect("shipped catalogs validate");
        assert!(catalog.framework("hipaa").is_some());
        assert!(catalog.framework("pci-dss").is_some());
        assert!(catalog.framework("soc2").is_some());
        assert!(catalog.template("co-managed-default").is_some());
    }
}
