//! `auditpack controls`: the catalog as a table (id, kind, owner, title), and
//! `auditpack controls show ID`: what one control requires, how it is judged
//! (its checks, their documentation and thresholds, the manual evidence) and
//! who owns it.

use std::fmt::Write as _;

use crate::catalog::{Catalog, ControlKind, Ownership};
use crate::checks::{self, Limits};
use crate::config::{Owner, Thresholds};
use crate::error::{Error, Result};

/// One row of `auditpack controls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlRow {
    /// Framework id.
    pub framework: String,
    /// Control id.
    pub id: String,
    /// How it is judged.
    pub kind: ControlKind,
    /// Accountable owner.
    pub owner: Owner,
    /// Title.
    pub title: String,
}

/// The spelling of a control kind.
pub fn kind_str(kind: ControlKind) -> &'static str {
    match kind {
        ControlKind::Automated => "automated",
        ControlKind::Hybrid => "hybrid",
        ControlKind::Manual => "manual",
    }
}

/// Controls of `framework` (every framework when `None`) owned by `owner`
/// (any owner when `None`), in catalog order.
///
/// # Errors
/// When `framework` is not in the catalog.
pub fn list(
    catalog: &Catalog,
    ownership: &Ownership<'_>,
    framework: Option<&str>,
    owner: Option<Owner>,
) -> Result<Vec<ControlRow>> {
    if let Some(f) = framework {
        if catalog.framework(f).is_none() {
            return Err(unknown_framework(catalog, f));
        }
    }
    let mut rows = Vec::new();
    for fw in catalog.frameworks() {
        let fid = fw.framework.id.as_str();
        if framework.is_some_and(|f| f != fid) {
            continue;
        }
        for c in &fw.controls {
            let o = ownership.control(fid, &c.id);
            if owner.is_some_and(|want| want != o) {
                continue;
            }
            rows.push(ControlRow {
                framework: fid.to_owned(),
                id: c.id.clone(),
                kind: c.kind,
                owner: o,
                title: c.title.clone(),
            });
        }
    }
    Ok(rows)
}

fn unknown_framework(catalog: &Catalog, f: &str) -> Error {
    let known: Vec<&str> = catalog
        .frameworks()
        .iter()
        .map(|f| f.framework.id.as_str())
        .collect();
    Error::invalid(format!(
        "framework `{f}` is not in the catalog; known: {}",
        known.join(", ")
    ))
}

/// The table printed by `auditpack controls`.
pub fn render_list(rows: &[ControlRow]) -> String {
    let mut out = String::new();
    let fw = rows
        .iter()
        .map(|r| r.framework.len())
        .max()
        .unwrap_or(9)
        .max(9);
    let id = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let _ = writeln!(
        out,
        "{:<fw$}  {:<id$}  {:<9}  {:<10}  title",
        "framework", "id", "kind", "owner"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<fw$}  {:<id$}  {:<9}  {:<10}  {}",
            r.framework,
            r.id,
            kind_str(r.kind),
            r.owner.as_str(),
            r.title
        );
    }
    let _ = writeln!(out, "{} control(s)", rows.len());
    out
}

/// One check as `controls show` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckDetail {
    /// Check id.
    pub id: String,
    /// Title.
    pub title: String,
    /// What it tests (from its documentation).
    pub tests: String,
    /// How to fix a failure (the check's remediation, as `gaps` prints it).
    pub fix: String,
    /// Thresholds it reads with their values for this framework.
    pub thresholds: Vec<(String, u32)>,
    /// Party responsible for it under this control.
    pub responsible: Owner,
}

/// One control as `controls show` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlDetail {
    /// Framework id.
    pub framework: String,
    /// Framework display name and status (`final` / `proposed`).
    pub framework_name: String,
    /// Control id.
    pub id: String,
    /// Title.
    pub title: String,
    /// What it requires, in our words.
    pub summary: String,
    /// How it is judged.
    pub kind: ControlKind,
    /// Section, requirement level and applicability notes.
    pub notes: Vec<String>,
    /// Accountable owner.
    pub owner: Owner,
    /// Its checks.
    pub checks: Vec<CheckDetail>,
    /// Documents that satisfy its manual part.
    pub manual_evidence: Vec<String>,
    /// Days its evidence stays usable.
    pub evidence_ttl_days: u32,
}

/// Every control matching `id`: `"<framework>:<id>"`, or a bare id in
/// `framework` (in every framework when `None`).
///
/// # Errors
/// When a framework named (by prefix or `framework`) is not in the catalog,
/// the two name different frameworks, or nothing matches.
pub fn show(
    catalog: &Catalog,
    ownership: &Ownership<'_>,
    thresholds: &Thresholds,
    id: &str,
    framework: Option<&str>,
) -> Result<Vec<ControlDetail>> {
    if let Some(f) = framework {
        if catalog.framework(f).is_none() {
            return Err(unknown_framework(catalog, f));
        }
    }
    let (framework, id) = match id.split_once(':') {
        Some((f, _)) if catalog.framework(f).is_none() => {
            return Err(unknown_framework(catalog, f));
        }
        Some((f, _)) if framework.is_some_and(|given| given != f) => {
            return Err(Error::invalid(format!(
                "`{id}` names framework `{f}` but --framework is `{}`; give one of them",
                framework.unwrap_or_default()
            )));
        }
        Some((f, c)) => (Some(f), c),
        None => (framework, id),
    };
    let mut found = Vec::new();
    for fw in catalog.frameworks() {
        let fid = fw.framework.id.as_str();
        if framework.is_some_and(|f| f != fid) {
            continue;
        }
        let limits = Limits::resolve(&fw.defaults, thresholds);
        for c in fw.controls.iter().filter(|c| c.id.eq_ignore_ascii_case(id)) {
            let owner = ownership.control(fid, &c.id);
            let checks = c
                .checks
                .iter()
                .filter_map(|cid| checks::check(cid))
                .map(|check| CheckDetail {
                    id: check.id.to_owned(),
                    title: check.title.to_owned(),
                    tests: check.doc_section("What it tests"),
                    // The same words as `gaps` and the reports print.
                    fix: check.remediation.to_owned(),
                    thresholds: check
                        .thresholds
                        .iter()
                        .map(|t| (t.key().to_owned(), t.value(&limits)))
                        .collect(),
                    responsible: ownership.check(owner, check.id),
                })
                .collect();
            let mut notes = Vec::new();
            if let Some(s) = &c.section {
                notes.push(format!("section {s}"));
            }
            if let Some(g) = &c.group {
                notes.push(g.clone());
            }
            if let Some(r) = &c.requirement {
                notes.push(r.clone());
            }
            if let Some(cat) = &c.category {
                notes.push(cat.clone());
            }
            if let Some(a) = c.applies_to.as_deref().filter(|a| *a != "all") {
                notes.push(format!("applies to {a} only"));
            }
            found.push(ControlDetail {
                framework: fid.to_owned(),
                framework_name: format!("{} ({})", fw.framework.name, fw.framework.status),
                id: c.id.clone(),
                title: c.title.clone(),
                summary: c.summary.clone(),
                kind: c.kind,
                notes,
                owner,
                checks,
                manual_evidence: c.manual_evidence.clone(),
                evidence_ttl_days: c.evidence_ttl_days.unwrap_or(limits.evidence_ttl_days),
            });
        }
    }
    if found.is_empty() {
        let scope = framework.map_or_else(|| "any framework".to_owned(), |f| format!("`{f}`"));
        return Err(Error::invalid(format!(
            "no control `{id}` in {scope} (list them with `auditpack controls`)"
        )));
    }
    Ok(found)
}

/// The text printed by `auditpack controls show`.
pub fn render_show(details: &[ControlDetail]) -> String {
    let mut out = String::new();
    for (i, d) in details.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}:{}  {}", d.framework, d.id, d.title);
        let _ = writeln!(out, "framework: {}", d.framework_name);
        if !d.notes.is_empty() {
            let _ = writeln!(out, "           {}", d.notes.join("; "));
        }
        let _ = writeln!(out, "owner:     {}", d.owner);
        let _ = writeln!(out, "kind:      {}", kind_str(d.kind));
        let _ = writeln!(out, "\nrequires:  {}", d.summary);
        if d.checks.is_empty() {
            let _ = writeln!(out, "\njudged by: documents only (no automated check)");
        } else {
            let _ = writeln!(
                out,
                "\njudged by {} check(s) (evidence older than {} days is inconclusive):",
                d.checks.len(),
                d.evidence_ttl_days
            );
            for c in &d.checks {
                let _ = writeln!(out, "  {} ({}) [{}]", c.id, c.title, c.responsible);
                let _ = writeln!(out, "    tests: {}", c.tests);
                if !c.thresholds.is_empty() {
                    let list: Vec<String> = c
                        .thresholds
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect();
                    let _ = writeln!(out, "    thresholds: {}", list.join(", "));
                }
                let _ = writeln!(out, "    fix: {}", c.fix);
            }
        }
        if !d.manual_evidence.is_empty() {
            let _ = writeln!(
                out,
                "\nmanual evidence (a current document listing \"{}:{}\" attests it):",
                d.framework, d.id
            );
            for m in &d.manual_evidence {
                let _ = writeln!(out, "  - {m}");
            }
        }
    }
    out
}

/// The catalog as one organisation sees it: an ownership template with
/// overrides, threshold overrides, and the frameworks in scope.
#[derive(Debug)]
pub struct View<'a> {
    catalog: &'a Catalog,
    template: &'a crate::catalog::OwnershipTemplate,
    overrides: std::collections::BTreeMap<String, Owner>,
    thresholds: Thresholds,
    frameworks: Option<Vec<String>>,
}

impl<'a> View<'a> {
    /// Ownership and thresholds from `config` when given (its template,
    /// overrides, thresholds and frameworks), else from the template named
    /// `template` (default `co-managed-default`) over every framework.
    /// `template` wins over the config's template when both are given.
    ///
    /// # Errors
    /// When the template does not exist or an override names an unknown control.
    pub fn new(
        catalog: &'a Catalog,
        config: Option<&crate::config::Config>,
        template: Option<&str>,
    ) -> Result<View<'a>> {
        let name = template
            .or(config.map(|c| c.organisation.ownership.as_str()))
            .unwrap_or("co-managed-default");
        let found = catalog.template(name).ok_or_else(|| {
            let known: Vec<&str> = catalog
                .templates()
                .iter()
                .map(|t| t.template.id.as_str())
                .collect();
            Error::invalid(format!(
                "ownership template `{name}` does not exist; known: {}",
                known.join(", ")
            ))
        })?;
        let view = View {
            catalog,
            template: found,
            overrides: config
                .map(|c| c.ownership_overrides.clone())
                .unwrap_or_default(),
            thresholds: config.map(|c| c.thresholds).unwrap_or_default(),
            frameworks: config.map(|c| c.organisation.frameworks.clone()),
        };
        view.ownership()?;
        Ok(view)
    }

    fn ownership(&self) -> Result<Ownership<'_>> {
        Ok(Ownership::new(
            self.catalog,
            self.template,
            &self.overrides,
        )?)
    }

    /// `auditpack controls`: rows of `framework` (else the frameworks in scope)
    /// owned by `owner`.
    ///
    /// # Errors
    /// When `framework` is not in the catalog.
    pub fn list(&self, framework: Option<&str>, owner: Option<Owner>) -> Result<Vec<ControlRow>> {
        let rows = list(self.catalog, &self.ownership()?, framework, owner)?;
        Ok(match (&self.frameworks, framework) {
            (Some(scope), None) => rows
                .into_iter()
                .filter(|r| scope.contains(&r.framework))
                .collect(),
            _ => rows,
        })
    }

    /// `auditpack controls show ID`.
    ///
    /// # Errors
    /// When no control matches.
    pub fn show(&self, id: &str, framework: Option<&str>) -> Result<Vec<ControlDetail>> {
        show(
            self.catalog,
            &self.ownership()?,
            &self.thresholds,
            id,
            framework,
        )
    }
}
