//! `verify --reevaluate`: re-derive facts and control results from the raw
//! evidence inside a package and report every difference from the facts and
//! results the package carries. This proves the report follows from the
//! evidence (normalise and evaluate are deterministic).
//!
//! The run's inputs (`run.json`, `custody.jsonl`, `evidence/`, `manual/`,
//! `inputs/`) are copied out of the package, folder or zip alike, into a
//! private temporary folder (the package itself is never written to),
//! evaluated there, and the temporary folder is removed. `results/drift.json`
//! compares the run with an earlier run outside the package, so it is not
//! re-derived; the signed manifest covers it like every payload file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};

use serde_json::Value;

use auditpack_bag::{PackageReader, PayloadCheck};

use crate::catalog::Catalog;
use crate::judge::judge_run;
use crate::report::write_results;

/// Payload folders that are outputs of evaluation, not inputs to it.
const DERIVED: [&str; 3] = ["data/facts/", "data/results/", "data/reports/"];

/// `verify --reevaluate`: the check that re-derives facts and control
/// results from the package's evidence and compares them with the packaged
/// ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reevaluation;

impl PayloadCheck for Reevaluation {
    fn check(&self, package: &dyn PackageReader, problems: &mut Vec<String>) -> Option<usize> {
        reevaluate(package, problems)
    }
}

/// Re-evaluate the package's evidence; differences go into `problems`.
/// Returns how many controls were compared, or `None` when re-evaluation
/// could not run (the reason is in `problems`).
fn reevaluate(reader: &dyn PackageReader, problems: &mut Vec<String>) -> Option<usize> {
    fn fail(problems: &mut Vec<String>, what: String) -> Option<usize> {
        problems.push(format!("reevaluate: {what}"));
        None
    }
    let temp = match tempfile::Builder::new()
        .prefix("auditpack-reevaluate-")
        .tempdir()
    {
        Ok(t) => t,
        Err(e) => return fail(problems, format!("cannot create a temporary folder: {e}")),
    };
    let run_dir = temp.path().join("run");
    for (path, size) in reader.files() {
        let Some(rel) = path.strip_prefix("data/") else {
            continue;
        };
        if DERIVED.iter().any(|d| path.starts_with(d)) {
            continue;
        }
        // Paths come from the reader, which refused absolute paths and `..`.
        let dst = run_dir.join(rel);
        let copied = dst
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::create(&dst))
            .and_then(|f| {
                let mut w = BufWriter::new(f);
                reader.copy(path, &mut w, *size)?;
                w.flush()
            });
        if let Err(e) = copied {
            return fail(
                problems,
                format!("cannot copy {path} out of the package: {e}"),
            );
        }
    }
    let catalog = match Catalog::builtin() {
        Ok(c) => c,
        Err(e) => return fail(problems, format!("cannot load the built-in catalog: {e}")),
    };
    let derived = match judge_run(&run_dir, &catalog) {
        Ok(j) => match write_results(&run_dir, &j) {
            Ok(()) => j.results,
            Err(e) => {
                return fail(
                    problems,
                    format!("cannot write the re-derived results: {e}"),
                )
            }
        },
        Err(e) => return fail(problems, format!("the evidence cannot be evaluated: {e}")),
    };

    for (file, what) in [
        ("facts/facts.json", "facts"),
        ("results/findings.csv", "findings"),
    ] {
        let ours = std::fs::read(run_dir.join(file)).ok();
        let theirs = reader.read(&format!("data/{file}"), 1 << 30).ok();
        if theirs.is_none() {
            problems.push(format!(
                "reevaluate: data/{file} is missing from the package"
            ));
        } else if ours != theirs {
            problems.push(format!(
                "reevaluate: the {what} re-derived from the evidence differ from data/{file}"
            ));
        }
    }

    let packaged = match reader.read("data/results/controls.json", 1 << 30) {
        Ok(b) => b,
        Err(e) => return fail(problems, format!("data/results/controls.json: {e}")),
    };
    let packaged = match crate::report::json::decode(&packaged) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                problems,
                format!("data/results/controls.json is not valid: {e}"),
            )
        }
    };
    // Each control with its subjects and evidence sets inline: the packaged
    // file names them by reference, and what a reference names is part of
    // the result.
    let key = |r: &crate::evaluate::ControlResult| format!("{} {}", r.framework, r.control_id);
    let packaged: BTreeMap<String, Value> = packaged
        .iter()
        .map(|r| (key(r), crate::report::json::inline_value(r)))
        .collect();
    let derived: BTreeMap<String, Value> = derived
        .iter()
        .map(|r| (key(r), crate::report::json::inline_value(r)))
        .collect();
    for (id, ours) in &derived {
        match packaged.get(id) {
            None => problems.push(format!(
                "reevaluate: {id}: re-derived from the evidence but missing from data/results/controls.json"
            )),
            Some(theirs) if theirs != ours => {
                problems.push(format!("reevaluate: {id}: {}", describe(theirs, ours)));
            }
            Some(_) => {}
        }
    }
    for id in packaged.keys().filter(|id| !derived.contains_key(*id)) {
        problems.push(format!(
            "reevaluate: {id}: in data/results/controls.json but not re-derived from the evidence"
        ));
    }
    Some(derived.len())
}

/// Which fields of a control result differ, with the packaged and re-derived
/// status when that is one of them.
fn describe(packaged: &Value, derived: &Value) -> String {
    let fields: Vec<String> = derived
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| packaged.get(k.as_str()) != Some(*v))
        .map(|(k, v)| match (k.as_str(), packaged.get(k.as_str())) {
            ("status" | "owner", Some(Value::String(was))) => {
                format!(
                    "{k} is {was} in the package but {} from the evidence",
                    v.as_str().unwrap_or("?")
                )
            }
            _ => format!("{k} differs"),
        })
        .collect();
    if fields.is_empty() {
        "the packaged result has fields the re-derived one lacks".into()
    } else {
        fields.join("; ")
    }
}
