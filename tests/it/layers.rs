//! The one-way flow, checked on the source itself: within each crate, no two
//! modules import each other (directly or round a loop), and in the
//! application no module imports one that comes later in the flow
//! (collect -> sources -> judge -> report -> package -> pipeline). The core
//! and bag crates cannot import the application at all: they do not depend
//! on it, so the compiler already refuses it.
//!
//! A module here is a top-level module of a crate (`src/collect/**` is
//! `collect`); a source's simulator (`src/sources/*/simulate*`) belongs to
//! `simulate`, the test and demo support that sits above the sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The application's modules in flow order: each may import only modules at
/// its own rank or before it. The core crate's modules re-exported by the
/// application (`facts`, `catalog`, `checks`, `evaluate`) come first.
const APP_RANKS: &[&[&str]] = &[
    &[
        "facts",
        "catalog",
        "checks",
        "evaluate",
        "exceptions",
        "policy",
        "error",
        "sanitize",
    ],
    &["secret"],
    &["config"],
    &["evidence"],
    &["collect"],
    &["sources"],
    &["judge"],
    // Run history (summaries, drift, the index): read by the reports and
    // written by the pipeline.
    &["history"],
    &["report"],
    // KPI series, the QBR and the fleet dashboard, over the history.
    &["trends"],
    &["package"],
    &["store"],
    &["alert"],
    &["pipeline"],
    &["fleet"],
    &["simulate"],
    &["demo", "commands"],
    // Renders the events the layers above emit; none of them imports it.
    &["progress"],
    // The binary's own modules (src/main.rs is the crate root).
    &["cli"],
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to, or `None` for the crate root.
fn module_of(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.len() == 1 && matches!(parts[0].as_str(), "lib" | "main") {
        return None;
    }
    if parts.first().map(String::as_str) == Some("sources")
        && parts.iter().skip(2).any(|p| p == "simulate")
    {
        return Some("simulate".into());
    }
    parts.first().cloned()
}

/// Every module a file names through `crate::<module>`, comments left out.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `auditpack_crate::`
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Module -> the other modules of the same crate it imports, with a file that does.
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("inside src");
        let Some(from) = module_of(rel) else { continue };
        let text = std::fs::read_to_string(&file).expect("readable");
        let edges = graph.entry(from.clone()).or_default();
        for to in imports(&text) {
            if to != from {
                edges.entry(to).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    graph
}

/// A loop in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn no_module_imports_another_in_a_loop() {
    for src in ["src", "crates/core/src", "crates/bag/src"] {
        let graph = graph(&root().join(src));
        assert!(graph.len() > 3, "{src}: too few modules found");
        if let Some(cycle) = find_cycle(&graph) {
            let hops: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} (in {})", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            panic!("{src}: modules import each other: {}", hops.join(", "));
        }
    }
}

#[test]
fn the_application_flows_one_way() {
    let rank = |m: &str| APP_RANKS.iter().position(|r| r.contains(&m));
    let graph = graph(&root().join("src"));
    let mut wrong = Vec::new();
    for (from, edges) in &graph {
        let Some(from_rank) = rank(from) else {
            wrong.push(format!("module {from} has no place in APP_RANKS"));
            continue;
        };
        for (to, file) in edges {
            match rank(to) {
                Some(to_rank) if to_rank <= from_rank => {}
                Some(_) => wrong.push(format!("{file}: {from} imports {to}, which comes later")),
                None => wrong.push(format!(
                    "{file}: imports {to}, which has no place in APP_RANKS"
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_import_scan_reads_paths_not_comments() {
    let found = imports("use crate::a::b;\n// crate::c\nlet x = crate::d(auditpack_crate::e);");
    assert_eq!(found, BTreeSet::from(["a".to_owned(), "d".to_owned()]));
}
