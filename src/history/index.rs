//! The history index: `<root>/.index/history.sqlite`, a SQLite cache over
//! the run summaries of one organisation store, or of every organisation of
//! a fleet store (`<fleet store>/<organisation>/summaries/`).
//!
//! The summaries are the truth; the index is only a cache. Opening it
//! checks the file (`PRAGMA integrity_check` and the index's own schema
//! version) and rebuilds it from the summaries when it is missing, corrupt
//! or of another version; a rebuild is written to a temporary file beside it
//! and renamed into place, so a half-written index is never read. An intact
//! index is brought up to date in one transaction: summaries added to the
//! store since (by this machine or any other writing to the same store) are
//! read in, summaries gone from it are dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::summary::{ChangeCounts, RunSummary};
use super::{LocalStore, SummaryStore};
use crate::config::{Config, Owner};
use crate::error::{Error, Result, ResultExt};
use crate::evaluate::Status;

/// The layout version of the index file; another version is rebuilt.
const INDEX_SCHEMA: &str = "1";

/// The index file under a history root.
pub const INDEX_FILE: &str = ".index/history.sqlite";

const SCHEMA_SQL: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    store TEXT NOT NULL,
    run_id TEXT NOT NULL,
    organisation TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    as_of TEXT NOT NULL,
    frameworks TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    changes TEXT,
    PRIMARY KEY (store, run_id)
);
CREATE INDEX runs_finished ON runs (finished_at);
CREATE TABLE status_counts (
    store TEXT NOT NULL,
    run_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (store, run_id, owner, status)
);
";

/// The organisation stores whose history is indexed together, and where
/// the index lives.
pub struct HistoryScope {
    root: PathBuf,
    stores: Vec<(String, Box<dyn SummaryStore>)>,
}

impl std::fmt::Debug for HistoryScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryScope")
            .field("root", &self.root)
            .field(
                "stores",
                &self
                    .stores
                    .iter()
                    .map(|(k, s)| (k, s.location()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl HistoryScope {
    /// One organisation's store (the folder holding `runs/` and
    /// `summaries/`); the index is `<store>/.index/history.sqlite`.
    pub fn organisation(store: &Path) -> HistoryScope {
        HistoryScope {
            root: store.to_owned(),
            stores: vec![(String::new(), Box::new(LocalStore::new(store)))],
        }
    }

    /// A fleet store: every folder `<store>/<organisation>/` holding
    /// `summaries/`; the index is `<store>/.index/history.sqlite`.
    ///
    /// # Errors
    /// When the store cannot be listed (a missing store has no history).
    pub fn fleet(store: &Path) -> Result<HistoryScope> {
        let mut stores: Vec<(String, Box<dyn SummaryStore>)> = Vec::new();
        match std::fs::read_dir(store) {
            Ok(entries) => {
                let mut found = Vec::new();
                for entry in entries {
                    let entry = entry.context(|| format!("cannot list {}", store.display()))?;
                    let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                        continue;
                    };
                    if name.starts_with('.') || !entry.path().join("summaries").is_dir() {
                        continue;
                    }
                    found.push(name);
                }
                found.sort();
                for name in found {
                    let store_dir = store.join(&name);
                    stores.push((name, Box::new(LocalStore::new(&store_dir))));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context(|| format!("cannot list {}", store.display())),
        }
        Ok(HistoryScope {
            root: store.to_owned(),
            stores,
        })
    }

    /// Stores given explicitly (another backend), keyed by a short name.
    pub fn with_stores(root: &Path, stores: Vec<(String, Box<dyn SummaryStore>)>) -> HistoryScope {
        HistoryScope {
            root: root.to_owned(),
            stores,
        }
    }

    /// The scope a config file names: an organisation config
    /// (`[organisation] store`), or a fleet file (`[fleet] store`, relative
    /// to the file, with organisations under `<store>/<organisation>/`).
    ///
    /// # Errors
    /// When the file cannot be read or is neither.
    pub fn from_config_file(path: &Path) -> Result<HistoryScope> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            Error::config(format!(
                "{}: not valid TOML: {}",
                path.display(),
                e.message().trim_end()
            ))
        })?;
        if let Some(fleet) = table.get("fleet") {
            let store = fleet
                .get("store")
                .and_then(toml::Value::as_str)
                .ok_or_else(|| {
                    Error::config(format!(
                        "{}: [fleet] has no `store` (the folder holding each organisation's store)",
                        path.display()
                    ))
                })?;
            let base = path.parent().unwrap_or(Path::new("."));
            return HistoryScope::fleet(&base.join(store));
        }
        let config = Config::from_str_at(&text, path)?;
        Ok(HistoryScope::organisation(&config.organisation.store))
    }

    /// The index file of this scope.
    pub fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }
}

/// One run as `auditpack history` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunRow {
    /// Organisation name.
    pub organisation: String,
    /// Run id.
    pub run_id: String,
    /// Collection start.
    pub started: String,
    /// Collection end.
    pub finished: String,
    /// The instant judged at.
    pub as_of: String,
    /// Frameworks in scope.
    pub frameworks: Vec<String>,
    /// Controls per status.
    pub by_status: BTreeMap<Status, usize>,
    /// Controls per owner and status.
    pub by_owner: BTreeMap<Owner, BTreeMap<Status, usize>>,
    /// Failing controls accepted by an exception.
    pub accepted: usize,
    /// What changed since the previous run (absent for a first run).
    pub changes: Option<ChangeCounts>,
}

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Only this organisation (its name, case-insensitive, or its folder in
    /// a fleet store).
    pub organisation: Option<String>,
    /// Only runs finished at or after this RFC 3339 time or date.
    pub since: Option<String>,
}

/// An open, up-to-date index.
#[derive(Debug)]
pub struct Index {
    conn: Connection,
    rebuilt: Option<String>,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::invalid(format!("history index {}: {e}", path.display()))
}

/// Why an index file cannot be trusted, or `None` when it can.
fn untrusted(conn: &Connection) -> Option<String> {
    let check: rusqlite::Result<String> =
        conn.query_row("PRAGMA integrity_check", [], |row| row.get(0));
    match check {
        Ok(s) if s == "ok" => {}
        Ok(s) => return Some(format!("integrity check failed: {s}")),
        Err(e) => return Some(format!("unreadable: {e}")),
    }
    let version: rusqlite::Result<Option<String>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |row| {
            row.get(0)
        })
        .optional();
    match version {
        Ok(Some(v)) if v == INDEX_SCHEMA => None,
        Ok(Some(v)) => Some(format!(
            "index layout {v}, this version uses {INDEX_SCHEMA}"
        )),
        Ok(None) => Some("no layout version".to_owned()),
        Err(e) => Some(format!("unreadable: {e}")),
    }
}

fn insert(conn: &Connection, key: &str, s: &RunSummary) -> rusqlite::Result<()> {
    let changes = s
        .changes
        .as_ref()
        .and_then(|c| serde_json::to_string(c).ok());
    conn.execute(
        "INSERT OR REPLACE INTO runs (store, run_id, organisation, started_at, finished_at, as_of, frameworks, accepted, changes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            key,
            s.run_id,
            s.organisation,
            s.started_at,
            s.finished_at,
            s.as_of,
            s.frameworks.join(","),
            i64::try_from(s.counts.accepted).unwrap_or(i64::MAX),
            changes,
        ],
    )?;
    conn.execute(
        "DELETE FROM status_counts WHERE store = ?1 AND run_id = ?2",
        params![key, s.run_id],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO status_counts (store, run_id, owner, status, n) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (status, n) in &s.counts.by_status {
        stmt.execute(params![key, s.run_id, "", status.as_str(), count(*n)])?;
    }
    for (owner, statuses) in &s.counts.by_owner {
        for (status, n) in statuses {
            stmt.execute(params![
                key,
                s.run_id,
                owner.as_str(),
                status.as_str(),
                count(*n)
            ])?;
        }
    }
    Ok(())
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Read every summary of the scope that is not yet in the index, drop the
/// rows of summaries gone from the store, in one transaction.
fn sync(conn: &mut Connection, scope: &HistoryScope, path: &Path) -> Result<()> {
    let tx = conn.transaction().map_err(sql(path))?;
    let mut keys = BTreeSet::new();
    for (key, store) in &scope.stores {
        keys.insert(key.clone());
        let listed: BTreeSet<String> = store.list()?.into_iter().collect();
        let indexed: BTreeSet<String> = {
            let mut stmt = tx
                .prepare("SELECT run_id FROM runs WHERE store = ?1")
                .map_err(sql(path))?;
            let rows = stmt
                .query_map([key], |row| row.get::<_, String>(0))
                .map_err(sql(path))?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql(path))?
        };
        for id in listed.difference(&indexed) {
            let summary = store.read(id)?;
            insert(&tx, key, &summary).map_err(sql(path))?;
        }
        for id in indexed.difference(&listed) {
            for table in ["runs", "status_counts"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE store = ?1 AND run_id = ?2"),
                    params![key, id],
                )
                .map_err(sql(path))?;
            }
        }
    }
    let stale: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT DISTINCT store FROM runs")
            .map_err(sql(path))?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(sql(path))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(sql(path))?
            .into_iter()
            .filter(|k| !keys.contains(k))
            .collect()
    };
    for key in stale {
        for table in ["runs", "status_counts"] {
            tx.execute(&format!("DELETE FROM {table} WHERE store = ?1"), [&key])
                .map_err(sql(path))?;
        }
    }
    tx.commit().map_err(sql(path))
}

impl Index {
    /// Open the scope's index, rebuilding it from the summaries when it is
    /// missing, corrupt or of another layout, and bring it up to date.
    ///
    /// # Errors
    /// When a summary cannot be read (malformed, or from a newer auditpack:
    /// the message names it), or the index cannot be written.
    pub fn open(scope: &HistoryScope) -> Result<Index> {
        let path = scope.index_path();
        let reason = if path.exists() {
            match Connection::open(&path) {
                Ok(conn) => match untrusted(&conn) {
                    None => {
                        let mut conn = conn;
                        sync(&mut conn, scope, &path)?;
                        return Ok(Index {
                            conn,
                            rebuilt: None,
                        });
                    }
                    Some(why) => why,
                },
                Err(e) => format!("cannot be opened: {e}"),
            }
        } else {
            "missing".to_owned()
        };
        let mut index = Index::rebuild(scope)?;
        index.rebuilt = Some(reason);
        Ok(index)
    }

    /// Recreate the index from the summaries in the store: built in a
    /// temporary file beside it, then renamed over it.
    ///
    /// # Errors
    /// As [`Index::open`].
    pub fn rebuild(scope: &HistoryScope) -> Result<Index> {
        let path = scope.index_path();
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        let temp = tempfile::Builder::new()
            .prefix(".history-")
            .suffix(".sqlite")
            .tempfile_in(dir)
            .context(|| format!("cannot create a temporary index in {}", dir.display()))?;
        {
            let mut conn = Connection::open(temp.path()).map_err(sql(temp.path()))?;
            conn.execute_batch(SCHEMA_SQL).map_err(sql(temp.path()))?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                [INDEX_SCHEMA],
            )
            .map_err(sql(temp.path()))?;
            sync(&mut conn, scope, temp.path())?;
            conn.close().map_err(|(_, e)| sql(temp.path())(e))?;
        }
        // A journal left by an interrupted write to the old file must not be
        // replayed into the new one.
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
        temp.persist(&path)
            .map_err(|e| e.error)
            .context(|| format!("cannot write {}", path.display()))?;
        let conn = Connection::open(&path).map_err(sql(&path))?;
        Ok(Index {
            conn,
            rebuilt: Some("rebuilt on request".to_owned()),
        })
    }

    /// Why this index was rebuilt when opened (missing, corrupt...), or
    /// `None` when the existing file was used.
    pub fn rebuilt(&self) -> Option<&str> {
        self.rebuilt.as_deref()
    }

    /// The runs matching `filter`, oldest first (by finish time, then run id).
    ///
    /// # Errors
    /// On a failing query.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        let err = |e: rusqlite::Error| Error::invalid(format!("history index query: {e}"));
        let mut stmt = self
            .conn
            .prepare(
                "SELECT store, run_id, organisation, started_at, finished_at, as_of, frameworks, accepted, changes
                 FROM runs WHERE finished_at >= ?1 ORDER BY finished_at, run_id",
            )
            .map_err(err)?;
        let since = filter.since.clone().unwrap_or_default();
        let rows = stmt
            .query_map([since], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, i64>(7)?,
                    row.get::<_, Option<String>>(8)?,
                ))
            })
            .map_err(err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(err)?;
        let mut counts = self
            .conn
            .prepare("SELECT owner, status, n FROM status_counts WHERE store = ?1 AND run_id = ?2")
            .map_err(err)?;
        let mut out = Vec::new();
        for (
            store,
            run_id,
            organisation,
            started,
            finished,
            as_of,
            frameworks,
            accepted,
            changes,
        ) in rows
        {
            if let Some(want) = &filter.organisation {
                if !organisation.eq_ignore_ascii_case(want) && store != *want {
                    continue;
                }
            }
            let mut by_status = BTreeMap::new();
            let mut by_owner: BTreeMap<Owner, BTreeMap<Status, usize>> = BTreeMap::new();
            let found = counts
                .query_map(params![store, run_id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .map_err(err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(err)?;
            for (owner, status, n) in found {
                let Some(status) = Status::ALL.into_iter().find(|s| s.as_str() == status) else {
                    continue;
                };
                let n = usize::try_from(n).unwrap_or(0);
                if owner.is_empty() {
                    by_status.insert(status, n);
                } else if let Some(owner) = [
                    Owner::Internal,
                    Owner::Msp,
                    Owner::Shared,
                    Owner::Unassigned,
                ]
                .into_iter()
                .find(|o| o.as_str() == owner)
                {
                    by_owner.entry(owner).or_default().insert(status, n);
                }
            }
            out.push(RunRow {
                organisation,
                run_id,
                started,
                finished,
                as_of,
                frameworks: frameworks
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect(),
                by_status,
                by_owner,
                accepted: usize::try_from(accepted).unwrap_or(0),
                changes: changes.and_then(|c| serde_json::from_str(&c).ok()),
            });
        }
        Ok(out)
    }
}
