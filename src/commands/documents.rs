//! `auditpack documents`: which documents each manual or hybrid control in
//! scope still needs, who owns it and the exact sidecar to write, judged
//! from the config's `manual` folders as the next run would read them; and
//! `auditpack documents template FILE --control ID`, which writes that
//! sidecar beside a document (never over an existing one).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use super::controls::View;
use crate::catalog::{Catalog, ControlKind};
use crate::config::{Config, Owner};
use crate::error::{Error, Result, ResultExt};
use crate::sources::manual::{self, FolderEntry, SIDECAR};

/// A control that still needs a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needed {
    /// `<framework>:<control id>`, as a sidecar names it.
    pub key: String,
    /// Title.
    pub title: String,
    /// Accountable owner.
    pub owner: Owner,
    /// Manual or hybrid.
    pub kind: ControlKind,
    /// The documents the catalog asks for.
    pub evidence: Vec<String>,
    /// Documents naming it that no longer count: (name, why).
    pub lapsed: Vec<(String, String)>,
}

/// A control a current document attests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attested {
    /// `<framework>:<control id>`.
    pub key: String,
    /// Title.
    pub title: String,
    /// Accountable owner.
    pub owner: Owner,
    /// The documents: (name, expiry date if any).
    pub documents: Vec<(String, Option<String>)>,
}

/// What `auditpack documents` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Documents {
    /// The config file (for the commands it suggests).
    pub config: PathBuf,
    /// The manual folders of the config (empty: none configured).
    pub folders: Vec<PathBuf>,
    /// Controls still waiting for a document, by owner then catalog order.
    pub needed: Vec<Needed>,
    /// Controls a current document covers (a hybrid one also needs its checks to pass).
    pub attested: Vec<Attested>,
    /// Files the next run would refuse, and sidecars naming unknown controls.
    pub problems: Vec<(String, String)>,
}

impl Documents {
    /// Whether every manual part in scope has a current document.
    pub fn complete(&self) -> bool {
        self.needed.is_empty()
    }
}

/// Read the config's `manual` folders at `now` and list, for the controls in
/// scope (of `framework`, owned by `owner`, when given) that are judged by
/// documents, which are covered and which still need one.
///
/// # Errors
/// When the framework or owner filter is unknown or a manual folder cannot be read.
pub fn documents(
    catalog: &Catalog,
    view: &View<'_>,
    config: &Config,
    framework: Option<&str>,
    owner: Option<Owner>,
    now: DateTime<Utc>,
) -> Result<Documents> {
    let mut folders = Vec::new();
    let mut files: Vec<(String, FolderEntry)> = Vec::new();
    for decl in config.sources.iter().filter(|d| d.source_type == "manual") {
        let folder = manual::folder(decl)?;
        let entries = manual::scan(&folder, now)
            .map_err(|e| Error::invalid(format!("{e} (the folder of [sources.{}])", decl.name)))?;
        let shown = folder.display().to_string();
        files.extend(entries.into_iter().map(|e| (shown.clone(), e)));
        folders.push(folder);
    }
    let rows = view.list(framework, owner)?;
    let mut problems = Vec::new();
    for (folder, entry) in &files {
        let name = format!("{folder}/{}", entry.name);
        match &entry.sidecar {
            Err(why) => problems.push((name, why.clone())),
            Ok(s) => {
                for c in &s.controls {
                    if view.show(c, None).is_err() {
                        problems.push((
                            name.clone(),
                            format!("its sidecar names `{c}`, which is not in the catalog"),
                        ));
                    }
                }
            }
        }
    }
    let mut needed = Vec::new();
    let mut attested = Vec::new();
    for row in rows.iter().filter(|r| r.kind != ControlKind::Automated) {
        let Some(control) = catalog
            .framework(&row.framework)
            .and_then(|f| f.controls.iter().find(|c| c.id == row.id))
        else {
            continue;
        };
        if !crate::evaluate::applies(
            control.applies_to.as_deref(),
            config.organisation.service_provider,
        ) {
            continue;
        }
        let key = format!("{}:{}", row.framework, row.id);
        let mut current = Vec::new();
        let mut lapsed = Vec::new();
        for (folder, entry) in &files {
            let Ok(s) = &entry.sidecar else { continue };
            if !s.controls.contains(&key) {
                continue;
            }
            let name = format!("{folder}/{}", entry.name);
            match s.expires {
                Some(e) if e <= now => {
                    lapsed.push((name, format!("expired {}", e.format("%Y-%m-%d"))));
                }
                e => current.push((name, e.map(|e| e.format("%Y-%m-%d").to_string()))),
            }
        }
        if current.is_empty() {
            needed.push(Needed {
                key,
                title: row.title.clone(),
                owner: row.owner,
                kind: row.kind,
                evidence: control.manual_evidence.clone(),
                lapsed,
            });
        } else {
            attested.push(Attested {
                key,
                title: row.title.clone(),
                owner: row.owner,
                documents: current,
            });
        }
    }
    // Grouped by the party that must supply them, in catalog order within.
    needed.sort_by_key(|n| owner_rank(n.owner));
    attested.sort_by_key(|a| owner_rank(a.owner));
    Ok(Documents {
        config: config.path.clone(),
        folders,
        needed,
        attested,
        problems,
    })
}

fn owner_rank(o: Owner) -> u8 {
    match o {
        Owner::Internal => 0,
        Owner::Msp => 1,
        Owner::Shared => 2,
        Owner::Unassigned => 3,
    }
}

/// Quote a value for a shell command line when it needs it.
fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@+,".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The text printed by `auditpack documents`.
pub fn render(d: &Documents) -> String {
    let safe = crate::sanitize::terminal_safe;
    let mut out = String::new();
    let folder = match d.folders.first() {
        Some(f) => f.display().to_string(),
        None => {
            let _ = writeln!(
                out,
                "no `manual` source in {}; add one, and put documents in its folder:\n  [sources.documents]\n  type = \"manual\"\n  path = \"manual\"\n",
                d.config.display()
            );
            d.config
                .parent()
                .unwrap_or(Path::new("."))
                .join("manual")
                .display()
                .to_string()
        }
    };
    let config = shell_quote(&d.config.display().to_string());
    let _ = writeln!(
        out,
        "documents still needed ({} control(s)); put each document in {} with a sidecar `<document>{SIDECAR}` naming the control:",
        d.needed.len(),
        safe(&folder)
    );
    for n in &d.needed {
        let _ = writeln!(out, "  [{}] {}  {}", n.owner, n.key, n.title);
        for e in &n.evidence {
            let _ = writeln!(out, "      needs: {e}");
        }
        for (name, why) in &n.lapsed {
            let _ = writeln!(out, "      no longer counts: {} ({why})", safe(name));
        }
        let _ = writeln!(
            out,
            "      sidecar: auditpack documents template {}/<document> --control {} --config {config}",
            shell_quote(&folder),
            shell_quote(&n.key),
        );
    }
    if !d.attested.is_empty() {
        let _ = writeln!(
            out,
            "\nattested by a current document ({} control(s); a hybrid control also needs its checks to pass):",
            d.attested.len()
        );
        for a in &d.attested {
            let docs: Vec<String> = a
                .documents
                .iter()
                .map(|(name, expires)| match expires {
                    Some(e) => format!("{} (until {e})", safe(name)),
                    None => safe(name),
                })
                .collect();
            let _ = writeln!(
                out,
                "  [{}] {}  {}: {}",
                a.owner,
                a.key,
                a.title,
                docs.join(", ")
            );
        }
    }
    if !d.problems.is_empty() {
        let _ = writeln!(
            out,
            "\nproblems the next run would report ({}):",
            d.problems.len()
        );
        for (name, why) in &d.problems {
            let _ = writeln!(out, "  {}: {}", safe(name), safe(why));
        }
    }
    out
}

/// What `auditpack documents template` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateRequest<'a> {
    /// The document the sidecar describes (it must exist).
    pub document: &'a Path,
    /// Controls it attests (`<framework>:<control id>`), at least one.
    pub controls: &'a [String],
    /// Its title (default: from the file name).
    pub title: Option<&'a str>,
    /// Its owner (default: the controls' owner when they agree).
    pub owner: Option<Owner>,
}

/// Write `<document>.evidence.toml` for `request.document`, dated `today`,
/// expiring a year later (the usual review cycle of a policy document);
/// returns its path.
///
/// # Errors
/// When the document is missing or is itself a sidecar, a control is not in
/// the catalog, or the sidecar already exists (it is never overwritten).
pub fn write_template(
    view: &View<'_>,
    request: &TemplateRequest<'_>,
    today: DateTime<Utc>,
) -> Result<PathBuf> {
    let doc = request.document;
    let file_name = doc
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::invalid(format!("{} does not name a file", doc.display())))?;
    if file_name.ends_with(SIDECAR) {
        return Err(Error::invalid(format!(
            "{} is a sidecar; name the document it describes",
            doc.display()
        )));
    }
    if !doc.is_file() {
        return Err(Error::invalid(format!(
            "{} is not a file; put the document in the manual folder first (the sidecar goes beside it)",
            doc.display()
        )));
    }
    if request.owner == Some(Owner::Unassigned) {
        return Err(Error::invalid(
            "a sidecar's owner is internal, msp or shared",
        ));
    }
    if request.controls.is_empty() {
        return Err(Error::invalid(
            "name at least one control: --control <framework>:<control id>",
        ));
    }
    let mut keys = Vec::new();
    let mut owners = Vec::new();
    for c in request.controls {
        if !c.contains(':') {
            return Err(Error::invalid(format!(
                "control `{c}` needs its framework: `<framework>:<control id>`, e.g. hipaa:164.308(a)(1)(ii)(A)"
            )));
        }
        for d in view.show(c, None)? {
            if d.kind == ControlKind::Automated {
                return Err(Error::invalid(format!(
                    "{}:{} is judged by automated checks only; a document does not change it",
                    d.framework, d.id
                )));
            }
            keys.push(format!("{}:{}", d.framework, d.id));
            owners.push(d.owner);
        }
    }
    keys.dedup();
    let owner = request.owner.or_else(|| {
        let first = *owners.first()?;
        owners.iter().all(|o| *o == first).then_some(first)
    });
    let title = request.title.map(str::to_owned).unwrap_or_else(|| {
        let stem = file_name
            .rsplit_once('.')
            .map_or(file_name, |(stem, _)| stem);
        stem.replace(['-', '_'], " ")
    });
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let controls: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    let date = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let mut text = format!(
        "# Sidecar for `{name}`, read by the `manual` source at the next run.\n\
         # Check every value against the document before you rely on it.\n\
         title = {title}\n\
         controls = [{controls}]\n",
        name = crate::collect::files::printable(file_name),
        title = quote(&title),
        controls = controls.join(", "),
    );
    match owner {
        Some(o) => {
            let _ = writeln!(
                text,
                "owner = \"{}\"                  # internal | msp | shared",
                o.as_str()
            );
        }
        None => text.push_str("# owner = \"internal\"          # internal | msp | shared\n"),
    }
    let _ = writeln!(
        text,
        "evidence_date = {}         # the day the evidence speaks for (not in the future)",
        date(today)
    );
    let _ = writeln!(
        text,
        "expires = {}               # when it stops counting: a year on; use the document's own review date",
        date(today + Duration::days(365))
    );
    let sidecar = doc.with_file_name(format!("{file_name}{SIDECAR}"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&sidecar)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::invalid(format!(
                    "{} already exists; it is never overwritten (edit it, or remove it first)",
                    sidecar.display()
                ))
            } else {
                Error::invalid(format!("cannot create {}: {e}", sidecar.display()))
            }
        })?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .and_then(|()| file.sync_all())
        .context(|| format!("cannot write {}", sidecar.display()))?;
    Ok(sidecar)
}
