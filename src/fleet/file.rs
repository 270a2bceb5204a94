//! The fleet file: `[fleet]` (name, store, concurrency, include), what its
//! organisations share, the MSP's `[alerts]` for the fleet summary, and the
//! organisations themselves, inline (`[[organisations]]`) or one per
//! included file.
//!
//! Each organisation's config is the shared part with its own laid over it
//! key by key ([`super::merge`]), then parsed and checked exactly as an
//! `auditpack.toml` is; errors keep the file, line and column the user wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::merge::{self, File, LineMap, Node, Table};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::pipeline::slug;

/// Organisations run at once when `[fleet] concurrency` is not set: enough
/// to keep the APIs' rate limits (not a 2-core machine) the bottleneck, as
/// collection waits on the network and only judging and packaging use the
/// CPU (limited separately to the cores there are).
pub const DEFAULT_CONCURRENCY: usize = 8;

/// `[fleet]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetTable {
    name: String,
    store: PathBuf,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    include: Vec<String>,
    /// Default frameworks of every organisation.
    #[serde(default)]
    #[allow(dead_code)]
    frameworks: Option<IgnoredAny>,
    /// Default ownership template of every organisation.
    #[serde(default)]
    #[allow(dead_code)]
    ownership: Option<IgnoredAny>,
    /// Default: whether organisations are service providers.
    #[serde(default)]
    #[allow(dead_code)]
    service_provider: Option<IgnoredAny>,
}

/// The top level of a fleet file; the shared tables are checked when each
/// organisation's config is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FleetFileKeys {
    fleet: FleetTable,
    #[serde(default)]
    ownership_overrides: Option<IgnoredAny>,
    #[serde(default)]
    thresholds: Option<IgnoredAny>,
    #[serde(default)]
    sources: Option<IgnoredAny>,
    #[serde(default)]
    signing: Option<IgnoredAny>,
    /// Remediation targets shared by every organisation.
    #[serde(default)]
    sla: Option<IgnoredAny>,
    /// The object store of `[fleet] store = "s3://..."`, shared by every
    /// organisation.
    #[serde(default)]
    store_s3: Option<IgnoredAny>,
    #[serde(default)]
    organisations: Option<Vec<IgnoredAny>>,
    /// The MSP's channels for the fleet summary (not shared with the
    /// organisations, which route to their own).
    #[serde(default)]
    alerts: Option<IgnoredAny>,
}

/// A loaded fleet: its settings and every organisation's checked config.
#[derive(Debug)]
pub struct FleetFile {
    /// The fleet file.
    pub path: PathBuf,
    /// `[fleet] name`.
    pub name: String,
    /// `[fleet] store`, resolved against the fleet file's folder; for
    /// `store = "s3://bucket/prefix"`, the local staging folder the
    /// organisations' runs are worked on in before upload.
    pub store: PathBuf,
    /// `[fleet] store` when it is an object store (`s3://bucket/prefix`).
    pub store_s3: Option<crate::config::S3Location>,
    /// `[fleet] concurrency` (or [`DEFAULT_CONCURRENCY`]).
    pub concurrency: usize,
    /// The organisations in file order (inline first, then each include
    /// pattern's files in name order).
    pub members: Vec<Member>,
    /// The fleet file's own `[alerts]`: where the fleet summary goes.
    pub alerts: Option<crate::alert::AlertsConfig>,
}

/// One organisation of a fleet.
#[derive(Debug)]
pub struct Member {
    /// Its display name (`[organisation] name`).
    pub name: String,
    /// Its folder name in the store.
    pub slug: String,
    /// The file that declares it (a client file, or the fleet file for an
    /// inline organisation).
    pub file: PathBuf,
    /// Its merged config; `organisation.store` is `<fleet store>/<slug>`.
    pub config: Config,
    map: LineMap,
}

impl Member {
    /// An error about this organisation's config with every location in
    /// the merged text turned back into the file, line and column written,
    /// prefixed with the organisation's name.
    pub fn config_error(&self, e: &Error) -> Error {
        describe(&self.name, &self.file, &self.map, e)
    }
}

fn describe(name: &str, file: &Path, map: &LineMap, e: &Error) -> Error {
    Error::config(format!(
        "organisation `{}` ({}): {}",
        crate::sanitize::terminal_safe(name),
        file.display(),
        map.translate(&e.to_string(), file)
    ))
}

/// Keys of an inline `[[organisations]]` entry that are tables of the
/// config's top level rather than keys of its `[organisation]`.
const TOP_LEVEL: &[&str] = &[
    "sources",
    "thresholds",
    "signing",
    "alerts",
    "sla",
    "store_s3",
];

/// Path-valued keys: in shared tables, relative ones are resolved against
/// the fleet file's folder (every other relative path against the file
/// that wrote it, as in `auditpack.toml`).
fn is_path_key(path: &[String]) -> bool {
    let Some(key) = path.last() else {
        return false;
    };
    let top = path.first().map(String::as_str);
    matches!(top, Some("sources" | "signing" | "store_s3"))
        && (key.ends_with("_file") || key == "path")
}

impl FleetFile {
    /// Read a fleet file, its included client files, and every
    /// organisation's merged config.
    ///
    /// # Errors
    /// Before anything is collected, naming the file (and line and column)
    /// and the organisation: a file that does not parse, an unknown key, an
    /// include pattern that matches nothing, two organisations of the same
    /// name (or of names that share a store folder), an invalid merged config.
    pub fn load(path: &Path) -> Result<FleetFile> {
        let fleet = File::read(path)?;
        let keys: FleetFileKeys = toml::from_str(&fleet.text).map_err(|e| {
            let at = e
                .span()
                .map_or_else(|| path.display().to_string(), |s| fleet.location(s.start));
            Error::config(format!("{at}: {}", e.message().trim_end()))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let store_s3 = keys
            .fleet
            .store
            .to_str()
            .and_then(crate::config::S3Location::parse)
            .transpose()
            .map_err(|e| Error::config(format!("{}: [fleet] store: {e}", path.display())))?;
        let store = match &store_s3 {
            Some(location) => crate::config::default_staging(location),
            None => absolute(&base.join(&keys.fleet.store)),
        };
        // What each organisation's `[organisation] store` is set to: its
        // folder in the fleet store, or the object store itself (which keeps
        // each organisation under its slug).
        let member_store = |slug: &str| match &store_s3 {
            Some(location) => location.to_string(),
            None => store.join(slug).display().to_string(),
        };
        let concurrency = match keys.fleet.concurrency {
            Some(0) => {
                return Err(Error::config(format!(
                    "{}: [fleet] concurrency must be at least 1",
                    path.display()
                )))
            }
            Some(n) => n,
            None => DEFAULT_CONCURRENCY,
        };

        let alerts = crate::alert::AlertsConfig::from_toml(&fleet.text, path)?;
        let mut tree = fleet.tree(0)?;
        let fleet_table = tree.take("fleet");
        // The fleet's own channels; each organisation names its own.
        tree.take("alerts");
        let inline = tree.take("organisations");
        let mut shared = shared_defaults(&mut tree, fleet_table);
        let fleet_dir = absolute(base);
        shared.rewrite_strings(&mut Vec::new(), &|key_path, value| {
            let p = Path::new(value);
            (is_path_key(key_path) && p.is_relative())
                .then(|| fleet_dir.join(p).display().to_string())
        });

        let mut members = Vec::new();
        if let Some(entry) = inline {
            let items = inline_organisations(&fleet, entry)?;
            for (i, own) in items.into_iter().enumerate() {
                let label = format!("{} [[organisations]] #{}", path.display(), i + 1);
                members.push(member(
                    &fleet,
                    None,
                    shared.clone(),
                    own,
                    &member_store,
                    &label,
                )?);
            }
        }
        let mut seen_files = std::collections::BTreeSet::new();
        for pattern in &keys.fleet.include {
            let files = expand(path, base, pattern)?;
            for file in files {
                if file == path || !seen_files.insert(file.clone()) {
                    continue;
                }
                let client = File::read(&file)?;
                let own = client.tree(1)?;
                let label = file.display().to_string();
                members.push(member(
                    &fleet,
                    Some(&client),
                    shared.clone(),
                    own,
                    &member_store,
                    &label,
                )?);
            }
        }
        if members.is_empty() {
            return Err(Error::config(format!(
                "{}: the fleet has no organisations; add [[organisations]] or `include` patterns to [fleet]",
                path.display()
            )));
        }
        let mut by_slug: BTreeMap<&str, &Member> = BTreeMap::new();
        for m in &members {
            if let Some(first) = by_slug.insert(&m.slug, m) {
                let what = if first.name == m.name {
                    format!(
                        "two organisations are named `{}`",
                        crate::sanitize::terminal_safe(&m.name)
                    )
                } else {
                    format!(
                        "organisations `{}` and `{}` would share the store folder `{}`",
                        crate::sanitize::terminal_safe(&first.name),
                        crate::sanitize::terminal_safe(&m.name),
                        m.slug
                    )
                };
                return Err(Error::config(format!(
                    "{}: {what}: in {} and in {}; names must be unique in a fleet",
                    path.display(),
                    first.file.display(),
                    m.file.display()
                )));
            }
        }
        Ok(FleetFile {
            path: path.to_owned(),
            name: keys.fleet.name,
            store,
            store_s3,
            concurrency,
            members,
            alerts,
        })
    }
}

/// The fleet file's shared part in `auditpack.toml` shape: `[fleet]`'s
/// `frameworks`, `ownership` and `service_provider` as `[organisation]`
/// defaults, `[ownership_overrides]` as `[ownership.overrides]`, and
/// `[thresholds]`, `[signing]`, `[sources.*]` as they are.
fn shared_defaults(tree: &mut Table, fleet_table: Option<merge::Entry>) -> Table {
    let mut shared = Table::default();
    if let Some(merge::Entry {
        node: Node::Table(mut fleet),
        ..
    }) = fleet_table
    {
        for key in ["frameworks", "ownership", "service_provider"] {
            if let Some(entry) = fleet.take(key) {
                shared
                    .table_mut("organisation")
                    .entries
                    .insert(key.to_owned(), entry);
            }
        }
    }
    if let Some(entry) = tree.take("ownership_overrides") {
        shared
            .table_mut("ownership")
            .entries
            .insert("overrides".to_owned(), entry);
    }
    for (key, entry) in std::mem::take(&mut tree.entries) {
        shared.entries.insert(key, entry);
    }
    shared
}

/// The `[[organisations]]` entries, each in `auditpack.toml` shape.
fn inline_organisations(fleet: &File, entry: merge::Entry) -> Result<Vec<Table>> {
    // The array's items are not kept as tables by the merge tree; read them
    // again with their spans.
    let root = toml::de::DeTable::parse(&fleet.text)
        .map_err(|e| Error::config(format!("{}: {}", fleet.path.display(), e.message())))?;
    let Some(items) = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "organisations")
        .map(|(_, v)| v)
    else {
        return Ok(Vec::new());
    };
    let at = entry.at.map_or(0, |a| a.key);
    let Some(array) = items.get_ref().as_array() else {
        return Err(Error::config(format!(
            "{}: `organisations` must be an array of tables ([[organisations]])",
            fleet.location(at)
        )));
    };
    let mut out = Vec::new();
    for item in array {
        let Some(table) = item.get_ref().as_table() else {
            return Err(Error::config(format!(
                "{}: each of `organisations` must be a table ([[organisations]])",
                fleet.location(item.span().start)
            )));
        };
        // A one-entry document holding this table, parsed like any file.
        let mut wrapper = toml::de::DeTable::new();
        wrapper.insert(
            toml::Spanned::new(0..0, "x".into()),
            toml::Spanned::new(item.span(), toml::de::DeValue::Table(table.clone())),
        );
        let mut own = merge::table_tree(&wrapper, 0);
        let Some(merge::Entry {
            node: Node::Table(mut org),
            ..
        }) = own.take("x")
        else {
            continue;
        };
        let mut shaped = Table::default();
        for key in TOP_LEVEL {
            if let Some(e) = org.take(key) {
                shaped.entries.insert((*key).to_owned(), e);
            }
        }
        if let Some(e) = org.take("ownership_overrides") {
            shaped
                .table_mut("ownership")
                .entries
                .insert("overrides".to_owned(), e);
        }
        let organisation = shaped.table_mut("organisation");
        organisation.entries.extend(org.entries);
        out.push(shaped);
    }
    Ok(out)
}

/// One organisation: the shared tables with its own over them, its store
/// set to `store(slug)`, parsed as an `auditpack.toml` written at
/// `client` (or at the fleet file for an inline one).
fn member(
    fleet: &File,
    client: Option<&File>,
    mut merged: Table,
    own: Table,
    store: &dyn Fn(&str) -> String,
    label: &str,
) -> Result<Member> {
    let name = match own
        .get("organisation")
        .and_then(|o| match &o.node {
            Node::Table(t) => t.get("name"),
            Node::Value { .. } => None,
        })
        .map(|e| &e.node)
    {
        Some(Node::Value {
            string: Some(name), ..
        }) if !name.trim().is_empty() => name.clone(),
        _ => {
            return Err(Error::config(format!(
                "{label}: the organisation has no name; set `name` in its [organisation]"
            )))
        }
    };
    let slug = slug(&name);
    // A shared source is a template: it joins only the organisations that
    // name it in their own `[sources.<name>]` (with their tenant, RMM
    // organisation or site), so a client off Microsoft 365 has no m365.
    let own_sources: Vec<String> = match own.get("sources").map(|e| &e.node) {
        Some(Node::Table(t)) => t.entries.keys().cloned().collect(),
        _ => Vec::new(),
    };
    if let Some(merge::Entry {
        node: Node::Table(shared_sources),
        ..
    }) = merged.entries.get_mut("sources")
    {
        shared_sources
            .entries
            .retain(|name, _| own_sources.contains(name));
    }
    merged.merge(own);
    merged
        .table_mut("organisation")
        .set_string("store", &store(&slug));
    let (text, map) = merged.render();
    let files: Vec<&File> = std::iter::once(fleet).chain(client).collect();
    let map = map.with_files(&files);
    let file = client.map_or_else(|| fleet.path.clone(), |c| c.path.clone());
    let config = Config::from_str_at(&text, &file).map_err(|e| describe(&name, &file, &map, &e))?;
    Ok(Member {
        name,
        slug,
        file,
        config,
        map,
    })
}

/// The files an include pattern names, in name order.
fn expand(fleet: &Path, base: &Path, pattern: &str) -> Result<Vec<PathBuf>> {
    let full = if Path::new(pattern).is_absolute() {
        pattern.to_owned()
    } else {
        format!(
            "{}/{pattern}",
            glob::Pattern::escape(&base.display().to_string())
        )
    };
    let entries = glob::glob(&full).map_err(|e| {
        Error::config(format!(
            "{}: [fleet] include pattern `{pattern}` is not a valid pattern: {e}",
            fleet.display()
        ))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let file = entry.map_err(|e| {
            Error::config(format!(
                "{}: [fleet] include pattern `{pattern}`: cannot read {}: {}",
                fleet.display(),
                e.path().display(),
                e.error()
            ))
        })?;
        if file.is_file() {
            files.push(file);
        }
    }
    if files.is_empty() {
        return Err(Error::config(format!(
            "{}: [fleet] include pattern `{pattern}` matches no file (patterns are relative to the fleet file's folder {})",
            fleet.display(),
            base.display()
        )));
    }
    files.sort();
    Ok(files)
}

fn absolute(p: &Path) -> PathBuf {
    let p = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}
