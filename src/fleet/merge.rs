//! Merging TOML documents key by key while remembering where every key came
//! from.
//!
//! A fleet's organisation is the fleet file's shared tables with the client's
//! own tables laid over them: a table merges with the table of the same name
//! key by key (recursively), any other value replaces the shared one whole
//! (an array is not appended to). The result is written out as TOML text
//! and parsed by [`crate::config::Config`] like any `auditpack.toml`; a
//! [`LineMap`] turns a `line:col` of that text back into the file, line and
//! column where the key was written, so every error still points at what
//! the user wrote.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{Error, Result};

/// One file taking part in a merge.
#[derive(Debug)]
pub(crate) struct File {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

impl File {
    /// Read a file.
    pub(crate) fn read(path: &Path) -> Result<File> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
        Ok(File {
            path: path.to_owned(),
            text,
        })
    }

    /// `path:line:col` of a byte offset.
    pub(crate) fn location(&self, offset: usize) -> String {
        let (line, col) = line_col(&self.text, offset);
        format!("{}:{line}:{col}", self.path.display())
    }

    /// Parse the whole file into a tree whose every key remembers `index`
    /// (this file's place in the list the [`LineMap`] is given).
    ///
    /// # Errors
    /// When the text is not TOML: `file:line:col: message`, never the line.
    pub(crate) fn tree(&self, index: usize) -> Result<Table> {
        let root = DeTable::parse(&self.text).map_err(|e| {
            let at = e.span().map_or_else(
                || self.path.display().to_string(),
                |s| self.location(s.start),
            );
            Error::config(format!("{at}: {}", e.message().trim_end()))
        })?;
        Ok(table_from(root.get_ref(), index))
    }
}

/// Where a key was written: a file (by index) and byte offsets of the key and
/// of its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) file: usize,
    pub(crate) key: usize,
    pub(crate) value: usize,
}

/// A table of a merged document.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    pub(crate) entries: BTreeMap<String, Entry>,
}

/// One key of a table.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) at: Option<Origin>,
    pub(crate) node: Node,
}

/// A table, or any other value already written as TOML.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Table(Table),
    Value {
        /// The value as TOML text (one line).
        toml: String,
        /// The string itself, when the value is a string.
        string: Option<String>,
    },
}

impl Table {
    /// The entry at `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Remove and return the entry at `key`.
    pub(crate) fn take(&mut self, key: &str) -> Option<Entry> {
        self.entries.remove(key)
    }

    /// The sub-table at `key`, created empty if missing (a value there is
    /// replaced by a table).
    pub(crate) fn table_mut(&mut self, key: &str) -> &mut Table {
        let entry = self.entries.entry(key.to_owned()).or_insert(Entry {
            at: None,
            node: Node::Table(Table::default()),
        });
        if !matches!(entry.node, Node::Table(_)) {
            entry.node = Node::Table(Table::default());
        }
        match &mut entry.node {
            Node::Table(t) => t,
            Node::Value { .. } => unreachable!("replaced by a table just above"),
        }
    }

    /// Set `key` to a string value made here (not read from a file).
    pub(crate) fn set_string(&mut self, key: &str, value: &str) {
        self.entries.insert(
            key.to_owned(),
            Entry {
                at: None,
                node: string_node(value),
            },
        );
    }

    /// Lay `over` over this table: tables merge key by key, anything else is
    /// replaced by the value in `over`.
    pub(crate) fn merge(&mut self, over: Table) {
        for (key, entry) in over.entries {
            match (self.entries.get_mut(&key), entry.node) {
                (Some(mine), Node::Table(theirs)) if matches!(mine.node, Node::Table(_)) => {
                    if let Node::Table(t) = &mut mine.node {
                        t.merge(theirs);
                    }
                    if entry.at.is_some() {
                        mine.at = entry.at;
                    }
                }
                (_, node) => {
                    self.entries.insert(key, Entry { at: entry.at, node });
                }
            }
        }
    }

    /// Apply `f` to every string value in this table and below, with the
    /// key path leading to it; a `Some` result replaces the string.
    pub(crate) fn rewrite_strings(
        &mut self,
        path: &mut Vec<String>,
        f: &dyn Fn(&[String], &str) -> Option<String>,
    ) {
        for (key, entry) in &mut self.entries {
            path.push(key.clone());
            match &mut entry.node {
                Node::Table(t) => t.rewrite_strings(path, f),
                Node::Value {
                    string: Some(s), ..
                } => {
                    if let Some(new) = f(path, s) {
                        entry.node = string_node(&new);
                    }
                }
                Node::Value { .. } => {}
            }
            path.pop();
        }
    }

    /// Write the table as a TOML document, with the map from its lines back
    /// to the files the keys came from.
    pub(crate) fn render(&self) -> (String, LineMap) {
        let mut out = Rendered::default();
        self.render_into(&mut Vec::new(), &mut out);
        (
            out.text,
            LineMap {
                lines: out.lines,
                files: Vec::new(),
            },
        )
    }

    fn render_into(&self, path: &mut Vec<String>, out: &mut Rendered) {
        for (key, entry) in &self.entries {
            if let Node::Value { toml, .. } = &entry.node {
                let key = toml_key(key);
                let value_col = key.len() + 3;
                let _ = writeln!(out.text, "{key} = {toml}");
                out.lines.push(entry.at.map(|at| (at, value_col)));
            }
        }
        for (key, entry) in &self.entries {
            if let Node::Table(t) = &entry.node {
                path.push(toml_key(key));
                let _ = writeln!(out.text, "\n[{}]", path.join("."));
                out.lines.push(None);
                out.lines.push(entry.at.map(|at| (at, usize::MAX)));
                t.render_into(path, out);
                path.pop();
            }
        }
    }
}

#[derive(Default)]
struct Rendered {
    text: String,
    lines: Vec<Option<(Origin, usize)>>,
}

/// From a line and column of a rendered document to the file, line and
/// column of the key or value written there.
#[derive(Clone, Debug, Default)]
pub(crate) struct LineMap {
    /// Per rendered line (0-based): the origin, and the column (0-based) at
    /// which the value starts in the rendered line.
    lines: Vec<Option<(Origin, usize)>>,
    /// `(path, text)` of each file, by the index in [`Origin::file`].
    files: Vec<(PathBuf, String)>,
}

impl LineMap {
    /// Give the map the files its origins index.
    pub(crate) fn with_files(mut self, files: &[&File]) -> LineMap {
        self.files = files
            .iter()
            .map(|f| (f.path.clone(), f.text.clone()))
            .collect();
        self
    }

    /// Where rendered `line:col` (1-based) was written, as `file:line:col`.
    fn locate(&self, line: usize, col: usize) -> Option<String> {
        let (origin, value_col) = (*self.lines.get(line.checked_sub(1)?)?)?;
        let (path, text) = self.files.get(origin.file)?;
        let col = col.saturating_sub(1);
        let offset = if col >= value_col {
            origin.value + (col - value_col)
        } else {
            origin.key
        };
        let (l, c) = line_col(text, offset);
        Some(format!("{}:{l}:{c}", path.display()))
    }

    /// `message` with every `rendered:line:col` replaced by the place it was
    /// written (or by the rendered name alone when it was made here).
    pub(crate) fn translate(&self, message: &str, rendered: &Path) -> String {
        let needle = format!("{}:", rendered.display());
        let mut out = String::new();
        let mut rest = message;
        while let Some(at) = rest.find(&needle) {
            out.push_str(&rest[..at]);
            let after = &rest[at + needle.len()..];
            match parse_line_col(after) {
                Some((line, col, used)) => {
                    match self.locate(line, col) {
                        Some(place) => out.push_str(&place),
                        None => out.push_str(&rendered.display().to_string()),
                    }
                    rest = &after[used..];
                }
                None => {
                    out.push_str(&needle);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// `L:C` at the start of `s`: the two numbers and the bytes they take.
fn parse_line_col(s: &str) -> Option<(usize, usize, usize)> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let a = digits(s);
    if a == 0 || s.as_bytes().get(a) != Some(&b':') {
        return None;
    }
    let b = digits(&s[a + 1..]);
    if b == 0 {
        return None;
    }
    let line = s[..a].parse().ok()?;
    let col = s[a + 1..a + 1 + b].parse().ok()?;
    Some((line, col, a + 1 + b))
}

/// A parsed table as a merge tree whose keys remember file `file`.
pub(crate) fn table_tree(table: &DeTable<'_>, file: usize) -> Table {
    table_from(table, file)
}

fn table_from(table: &DeTable<'_>, file: usize) -> Table {
    let mut out = Table::default();
    for (key, value) in table {
        let at = Origin {
            file,
            key: key.span().start,
            value: value.span().start,
        };
        let node = match value.get_ref() {
            DeValue::Table(t) => Node::Table(table_from(t, file)),
            other => Node::Value {
                toml: render_value(other),
                string: other.as_str().map(str::to_owned),
            },
        };
        out.entries
            .insert(key.get_ref().to_string(), Entry { at: Some(at), node });
    }
    out
}

fn string_node(value: &str) -> Node {
    Node::Value {
        toml: toml::Value::String(value.to_owned()).to_string(),
        string: Some(value.to_owned()),
    }
}

/// A value as one line of TOML.
fn render_value(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => toml::Value::String(s.to_string()).to_string(),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|v: &Spanned<DeValue<'_>>| render_value(v.get_ref()))
                .collect();
            format!("[{}]", items.join(", "))
        }
        DeValue::Table(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k.get_ref()), render_value(v.get_ref())))
                .collect();
            if items.is_empty() {
                "{}".to_owned()
            } else {
                format!("{{ {} }}", items.join(", "))
            }
        }
    }
}

/// A key as TOML writes it: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_owned()
    } else {
        toml::Value::String(key.to_owned()).to_string()
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> File {
        File {
            path: PathBuf::from(path),
            text: text.to_owned(),
        }
    }

    #[test]
    fn tables_merge_key_by_key_and_values_replace() {
        let shared = file(
            "fleet.toml",
            "[sources.ninja]\ntype = \"ninjaone\"\nclient_id = \"msp\"\nscopes = [\"a\", \"b\"]\n",
        );
        let client = file(
            "c.toml",
            "[sources.ninja]\norganization_id = 12\nscopes = [\"c\"]\n",
        );
        let mut tree = shared.tree(0).expect("parses");
        tree.merge(client.tree(1).expect("parses"));
        let (text, _) = tree.render();
        let value: toml::Table = toml::from_str(&text).expect("renders TOML");
        let ninja = &value["sources"]["ninja"];
        assert_eq!(ninja["type"].as_str(), Some("ninjaone"));
        assert_eq!(ninja["client_id"].as_str(), Some("msp"));
        assert_eq!(ninja["organization_id"].as_integer(), Some(12));
        assert_eq!(ninja["scopes"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn rendered_locations_point_at_the_file_that_wrote_the_key() {
        let shared = file("fleet.toml", "# shared\n[thresholds]\nx_days = 1\n");
        let client = file(
            "c.toml",
            "[organisation]\nname = \"A \\\"B\\\"\"\n\n[thresholds]\n  y_days = \"ten\"\n",
        );
        let mut tree = shared.tree(0).expect("parses");
        tree.merge(client.tree(1).expect("parses"));
        let (text, map) = tree.render();
        let map = map.with_files(&[&shared, &client]);
        let rendered = Path::new("c.toml");
        let line = text
            .lines()
            .position(|l| l.starts_with("y_days"))
            .expect("rendered")
            + 1;
        let message = format!("c.toml:{line}:10: expected a number");
        assert_eq!(
            map.translate(&message, rendered),
            "c.toml:5:12: expected a number"
        );
        let line = text
            .lines()
            .position(|l| l.starts_with("x_days"))
            .expect("rendered")
            + 1;
        assert_eq!(
            map.translate(&format!("c.toml:{line}:1: unknown key"), rendered),
            "fleet.toml:3:1: unknown key"
        );
        assert_eq!(
            map.translate("c.toml: no place", rendered),
            "c.toml: no place"
        );
        let (name, _) = text.split_once('\n').expect("lines");
        assert!(name.is_empty() || name.starts_with('['), "{text}");
        let value: toml::Table = toml::from_str(&text).expect("renders TOML");
        assert_eq!(value["organisation"]["name"].as_str(), Some("A \"B\""));
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let bad = file("clients/x.toml", "[organisation]\nname = \n");
        let err = bad.tree(0).expect_err("does not parse").to_string();
        assert!(err.starts_with("clients/x.toml:2:"), "{err}");
    }
}
