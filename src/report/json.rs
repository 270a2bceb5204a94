//! `results/controls.json`: one entry per (framework, control), and apart,
//! once per check run, what the check found.
//!
//! ```text
//! {
//! "format": 3,
//! "controls": [
//! {"framework": …, "control_id": …, "status": …, "owner": …, "checks": [
//!     {"check": …, "outcome": …, "failing_count": …, "result": "mfa_registered", …}], …},
//! …
//! ],
//! "checks": {
//! "mfa_registered": {"check": …, "evaluated": …, "evidence": [{"source", "dataset",
//!     "folder", "files", "list_sha256"}, …], "subject_fields": ["id", "name", "detail"],
//! "failing": [
//! [id, name, detail],
//! …
//! ],
//! "unproven": [
//! ]},
//! …
//! }
//! }
//! ```
//!
//! A control's check entry keeps its own outcome, party, counts and summary
//! (they differ per control: ownership, evidence time-to-live) and names in
//! `result` the entry of `checks` that holds its failing and unproven subjects
//! and the evidence sets it read. Its subjects are that entry's lists, unless
//! its count is 0 (the check was not judged under this control: evidence
//! older than the control's time-to-live). Each subject is written once per
//! check run, however many controls the check maps to; the evidence files of
//! a set are listed in `custody.jsonl`, under the same source and dataset.
//! A subject is one row, its values in the order `subject_fields` names: a
//! table, which keeps one subject to a line without repeating its keys on
//! every one of a hundred thousand lines.
//!
//! Reading also accepts the two older layouts: format 2 (subjects as
//! `{"id", "name", "detail"}` objects) and the first, a bare array of
//! controls whose checks carry `failing`, `unproven` and `evidence` file
//! lists inline.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::ControlKind;
use crate::checks::{Subject, Verdict};
use crate::config::Owner;
use crate::error::{Error, Result, ResultExt};
use crate::evaluate::{CheckResult, ControlResult, EvidenceSet, Status};
use crate::evidence::AtomicFile;

/// The layout version written in `format`.
pub const FORMAT: u32 = 3;

/// The last layout with subjects as objects, still read.
const FORMAT_SUBJECT_OBJECTS: u32 = 2;

/// The values of a subject row, in order.
const SUBJECT_FIELDS: [&str; 3] = ["id", "name", "detail"];

/// One control as written (subjects and evidence by reference).
#[derive(Serialize)]
struct ControlOut<'a> {
    framework: &'a str,
    control_id: &'a str,
    title: &'a str,
    status: Status,
    owner: Owner,
    kind: ControlKind,
    checks: Vec<CheckOut<'a>>,
    manual_evidence: &'a [String],
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<&'a crate::policy::Acceptance>,
}

/// One check under a control as written.
#[derive(Serialize)]
struct CheckOut<'a> {
    check: &'a str,
    title: &'a str,
    outcome: Verdict,
    responsible: Owner,
    evaluated: usize,
    failing_count: usize,
    unproven_count: usize,
    result: &'a str,
    summary: &'a str,
    remediation: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    figures: &'a [crate::checks::Figure],
}

/// The head of one entry of the `checks` section (its lists follow it).
#[derive(Serialize)]
struct FoundHead<'a> {
    check: &'a str,
    evaluated: usize,
    evidence: &'a [EvidenceSet],
    subject_fields: [&'static str; 3],
}

/// What one key of the `checks` section holds while writing.
struct Found<'a> {
    check: &'a str,
    evaluated: usize,
    failing: Option<&'a Arc<Vec<Subject>>>,
    unproven: Option<&'a Arc<Vec<Subject>>>,
    evidence: &'a Arc<Vec<EvidenceSet>>,
}

impl<'a> Found<'a> {
    fn new(c: &'a CheckResult) -> Self {
        Found {
            check: &c.check,
            evaluated: c.evaluated,
            failing: (c.failing_count > 0).then_some(&c.failing),
            unproven: (c.unproven_count > 0).then_some(&c.unproven),
            evidence: &c.evidence,
        }
    }

    /// Take `c`'s lists into this entry when they agree with it.
    fn merge(&mut self, c: &'a CheckResult) -> bool {
        fn agrees(
            have: Option<&Arc<Vec<Subject>>>,
            count: usize,
            list: &Arc<Vec<Subject>>,
        ) -> bool {
            count == 0 || have.is_none_or(|h| Arc::ptr_eq(h, list) || h == list)
        }
        let same = self.check == c.check
            && self.evaluated == c.evaluated
            && (Arc::ptr_eq(self.evidence, &c.evidence) || self.evidence == &c.evidence)
            && agrees(self.failing, c.failing_count, &c.failing)
            && agrees(self.unproven, c.unproven_count, &c.unproven);
        if same {
            if c.failing_count > 0 {
                self.failing.get_or_insert(&c.failing);
            }
            if c.unproven_count > 0 {
                self.unproven.get_or_insert(&c.unproven);
            }
        }
        same
    }
}

/// The `checks` section of `results`, and the key each (control, check)
/// refers to: its own `result`, or `result#N` when results naming the same
/// key found different things (files written by hand or by older versions).
fn shared(results: &[ControlResult]) -> (BTreeMap<String, Found<'_>>, Vec<Vec<String>>) {
    let mut variants: BTreeMap<&str, Vec<Found<'_>>> = BTreeMap::new();
    let mut keys = Vec::with_capacity(results.len());
    for r in results {
        let mut of_control = Vec::with_capacity(r.checks.len());
        for c in &r.checks {
            let base = if c.result.is_empty() {
                c.check.as_str()
            } else {
                c.result.as_str()
            };
            let list = variants.entry(base).or_default();
            let n = match list.iter_mut().position(|f| f.merge(c)) {
                Some(n) => n,
                None => {
                    list.push(Found::new(c));
                    list.len() - 1
                }
            };
            of_control.push(if n == 0 {
                base.to_owned()
            } else {
                format!("{base}#{}", n + 1)
            });
        }
        keys.push(of_control);
    }
    let mut section = BTreeMap::new();
    for (base, list) in variants {
        for (n, found) in list.into_iter().enumerate() {
            let key = if n == 0 {
                base.to_owned()
            } else {
                format!("{base}#{}", n + 1)
            };
            section.insert(key, found);
        }
    }
    (section, keys)
}

/// Write `results` in the layout of this module to `out`, streaming: no
/// copy of the whole document is built in memory.
///
/// # Errors
/// On a write failure.
pub fn encode(results: &[ControlResult], out: &mut impl Write) -> std::io::Result<()> {
    let (section, keys) = shared(results);
    write!(out, "{{\n\"format\": {FORMAT},\n\"controls\": [\n")?;
    for (i, (r, keys)) in results.iter().zip(&keys).enumerate() {
        let control = ControlOut {
            framework: &r.framework,
            control_id: &r.control_id,
            title: &r.title,
            status: r.status,
            owner: r.owner,
            kind: r.kind,
            checks: r
                .checks
                .iter()
                .zip(keys)
                .map(|(c, key)| CheckOut {
                    check: &c.check,
                    title: &c.title,
                    outcome: c.outcome,
                    responsible: c.responsible,
                    evaluated: c.evaluated,
                    failing_count: c.failing_count,
                    unproven_count: c.unproven_count,
                    result: key,
                    summary: &c.summary,
                    remediation: &c.remediation,
                    figures: &c.figures,
                })
                .collect(),
            manual_evidence: &r.manual_evidence,
            reason: &r.reason,
            accepted: r.accepted.as_ref(),
        };
        if i > 0 {
            out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut *out, &control)?;
    }
    out.write_all(b"\n],\n\"checks\": {")?;
    for (i, (key, found)) in section.iter().enumerate() {
        out.write_all(if i > 0 { b",\n" } else { b"\n" })?;
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b": ")?;
        let head = serde_json::to_vec(&FoundHead {
            check: found.check,
            evaluated: found.evaluated,
            evidence: found.evidence,
            subject_fields: SUBJECT_FIELDS,
        })?;
        // The head without its closing brace; the lists follow.
        out.write_all(head.strip_suffix(b"}").unwrap_or(&head))?;
        for (name, list) in [("failing", found.failing), ("unproven", found.unproven)] {
            write!(out, ",\n\"{name}\": [")?;
            for (j, s) in list.map_or(&[][..], |l| l.as_slice()).iter().enumerate() {
                out.write_all(if j > 0 { b",\n" } else { b"\n" })?;
                serde_json::to_writer(&mut *out, &(&s.id, &s.name, &s.detail))?;
            }
            out.write_all(b"\n]")?;
        }
        out.write_all(b"}")?;
    }
    out.write_all(b"\n}\n}\n")
}

/// Serialize results exactly as written.
///
/// # Errors
/// Only if serialization fails (it does not for these types).
pub fn to_bytes(results: &[ControlResult]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    encode(results, &mut bytes).context(|| "cannot encode controls.json")?;
    Ok(bytes)
}

/// Write `results/controls.json` under `run_dir` (atomically, streamed).
///
/// # Errors
/// On I/O failure.
pub fn write(run_dir: &Path, results: &[ControlResult]) -> Result<()> {
    let path = run_dir.join("results/controls.json");
    let written = AtomicFile::create(&path).and_then(|file| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        encode(results, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.commit()
    });
    written.context(|| format!("cannot write {}", path.display()))
}

/// Read `results/controls.json`.
///
/// # Errors
/// When missing or malformed.
pub fn read(run_dir: &Path) -> Result<Vec<ControlResult>> {
    let path = run_dir.join("results/controls.json");
    let bytes = std::fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
    decode(&bytes).map_err(|e| Error::invalid(format!("{} is not valid: {e}", path.display())))
}

/// One control as read (both layouts).
#[derive(Deserialize)]
struct ControlIn {
    framework: String,
    control_id: String,
    title: String,
    status: Status,
    owner: Owner,
    kind: ControlKind,
    checks: Vec<CheckIn>,
    manual_evidence: Vec<String>,
    reason: String,
    #[serde(default)]
    accepted: Option<crate::policy::Acceptance>,
}

/// One check under a control as read: `result` in this layout, the lists
/// inline in the older one.
#[derive(Deserialize)]
struct CheckIn {
    check: String,
    title: String,
    outcome: Verdict,
    responsible: Owner,
    evaluated: usize,
    failing_count: usize,
    #[serde(default)]
    unproven_count: usize,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    failing: Option<Vec<Subject>>,
    #[serde(default)]
    unproven: Option<Vec<Subject>>,
    #[serde(default)]
    evidence: Option<Vec<String>>,
    summary: String,
    remediation: String,
    #[serde(default)]
    figures: Vec<crate::checks::Figure>,
}

/// One entry of the `checks` section as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FoundIn {
    check: String,
    evaluated: usize,
    evidence: Vec<EvidenceSet>,
    #[serde(default)]
    subject_fields: Option<Vec<String>>,
    #[serde(deserialize_with = "subject_list")]
    failing: Vec<Subject>,
    #[serde(deserialize_with = "subject_list")]
    unproven: Vec<Subject>,
}

/// A list of subjects, each a row (`[id, name, detail]`) or, as format 2
/// wrote them, an object.
fn subject_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<Subject>, D::Error> {
    struct Row(Subject);

    impl<'de> Deserialize<'de> for Row {
        fn deserialize<D: serde::Deserializer<'de>>(
            deserializer: D,
        ) -> std::result::Result<Self, D::Error> {
            struct Visit;

            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Subject;

                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a subject: [id, name, detail] or {\"id\", \"name\", \"detail\"}")
                }

                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> std::result::Result<Subject, A::Error> {
                    use serde::de::Error as _;
                    let mut next = |n: usize| {
                        seq.next_element::<String>()?
                            .ok_or_else(|| A::Error::invalid_length(n, &self))
                    };
                    let subject = Subject {
                        id: next(0)?,
                        name: next(1)?,
                        detail: next(2)?,
                    };
                    if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                        return Err(A::Error::invalid_length(4, &self));
                    }
                    Ok(subject)
                }

                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    map: A,
                ) -> std::result::Result<Subject, A::Error> {
                    Subject::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                }
            }

            deserializer.deserialize_any(Visit).map(Row)
        }
    }

    let rows = Vec::<Row>::deserialize(deserializer)?;
    Ok(rows.into_iter().map(|Row(s)| s).collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentIn {
    format: u32,
    controls: Vec<ControlIn>,
    checks: BTreeMap<String, FoundIn>,
}

/// The shared form of one `checks` entry.
struct FoundArc {
    check: String,
    evaluated: usize,
    failing: Arc<Vec<Subject>>,
    unproven: Arc<Vec<Subject>>,
    evidence: Arc<Vec<EvidenceSet>>,
}

/// Parse `results/controls.json` bytes of either layout.
///
/// # Errors
/// When the bytes are not such a document: not JSON, a missing key, a
/// `result` that names no entry of `checks`, or a count that disagrees with
/// the list it counts.
pub fn decode(bytes: &[u8]) -> std::result::Result<Vec<ControlResult>, String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let controls: Vec<ControlIn> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        return controls.into_iter().map(legacy).collect();
    }
    let doc: DocumentIn = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if doc.format != FORMAT && doc.format != FORMAT_SUBJECT_OBJECTS {
        return Err(format!(
            "format {} is not one this version reads ({FORMAT_SUBJECT_OBJECTS} or {FORMAT})",
            doc.format
        ));
    }
    let section: BTreeMap<String, FoundArc> = doc
        .checks
        .into_iter()
        .map(|(k, f)| {
            let fields = f.subject_fields.as_deref().unwrap_or_default();
            if doc.format == FORMAT && fields != SUBJECT_FIELDS {
                return Err(format!(
                    "checks.{k}: subject_fields is {fields:?}, where this version reads {SUBJECT_FIELDS:?}"
                ));
            }
            Ok((
                k,
                FoundArc {
                    check: f.check,
                    evaluated: f.evaluated,
                    failing: Arc::new(f.failing),
                    unproven: Arc::new(f.unproven),
                    evidence: Arc::new(f.evidence),
                },
            ))
        })
        .collect::<std::result::Result<_, String>>()?;
    doc.controls
        .into_iter()
        .map(|mut r| {
            let key = format!("{}:{}", r.framework, r.control_id);
            let checks = std::mem::take(&mut r.checks)
                .into_iter()
                .map(|c| {
                    let name = c.result.as_deref().unwrap_or_default();
                    let found = section.get(name).ok_or_else(|| {
                        format!("{key}: check {} names result `{name}`, which `checks` lacks", c.check)
                    })?;
                    if found.check != c.check || found.evaluated != c.evaluated {
                        return Err(format!(
                            "{key}: check {} ({} evaluated) names result `{name}`, which is of check {} ({} evaluated)",
                            c.check, c.evaluated, found.check, found.evaluated
                        ));
                    }
                    let list = |count: usize, list: &Arc<Vec<Subject>>, what: &str| {
                        if count == 0 {
                            Ok(Arc::default())
                        } else if count == list.len() {
                            Ok(Arc::clone(list))
                        } else {
                            Err(format!(
                                "{key}: check {} counts {count} {what} subjects but result `{name}` lists {}",
                                c.check,
                                list.len()
                            ))
                        }
                    };
                    Ok(CheckResult {
                        failing: list(c.failing_count, &found.failing, "failing")?,
                        unproven: list(c.unproven_count, &found.unproven, "unproven")?,
                        evidence: Arc::clone(&found.evidence),
                        result: name.to_owned(),
                        check: c.check,
                        title: c.title,
                        outcome: c.outcome,
                        responsible: c.responsible,
                        evaluated: c.evaluated,
                        failing_count: c.failing_count,
                        unproven_count: c.unproven_count,
                        summary: c.summary,
                        remediation: c.remediation,
                        figures: c.figures,
                    })
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            Ok(control(r, checks))
        })
        .collect()
}

fn control(r: ControlIn, checks: Vec<CheckResult>) -> ControlResult {
    ControlResult {
        framework: r.framework,
        control_id: r.control_id,
        title: r.title,
        status: r.status,
        owner: r.owner,
        kind: r.kind,
        checks,
        manual_evidence: r.manual_evidence,
        reason: r.reason,
        accepted: r.accepted,
    }
}

/// A control of the older layout: lists inline, evidence as file paths
/// (`evidence/<source>/<dataset>/…`), grouped here into sets.
fn legacy(mut r: ControlIn) -> std::result::Result<ControlResult, String> {
    let key = format!("{}:{}", r.framework, r.control_id);
    let mut checks = Vec::new();
    for mut c in std::mem::take(&mut r.checks) {
        let failing = c.failing.take().ok_or_else(|| {
            format!(
                "{key}: check {} has neither `result` nor `failing`",
                c.check
            )
        })?;
        let mut sets: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for path in c.evidence.take().unwrap_or_default() {
            let mut parts = path.split('/');
            let (source, dataset) = match (parts.next(), parts.next(), parts.next()) {
                (Some("evidence"), Some(s), Some(d)) => (s.to_owned(), d.to_owned()),
                _ => (String::new(), String::new()),
            };
            sets.entry((source, dataset)).or_default().insert(path);
        }
        let evidence = sets
            .iter()
            .map(|((s, d), files)| EvidenceSet::new(s, d, files.iter().map(String::as_str)))
            .collect();
        checks.push(CheckResult {
            failing: Arc::new(failing),
            unproven: Arc::new(c.unproven.take().unwrap_or_default()),
            evidence: Arc::new(evidence),
            result: c.result.take().unwrap_or_else(|| c.check.clone()),
            check: c.check,
            title: c.title,
            outcome: c.outcome,
            responsible: c.responsible,
            evaluated: c.evaluated,
            failing_count: c.failing_count,
            unproven_count: c.unproven_count,
            summary: c.summary,
            remediation: c.remediation,
            figures: c.figures,
        });
    }
    Ok(control(r, checks))
}

/// One control with its subjects and evidence sets inline, as a JSON value:
/// what `verify --reevaluate` compares field by field.
pub fn inline_value(r: &ControlResult) -> serde_json::Value {
    use serde_json::json;
    json!({
        "framework": r.framework,
        "control_id": r.control_id,
        "title": r.title,
        "status": r.status,
        "owner": r.owner,
        "kind": r.kind,
        "checks": r.checks.iter().map(|c| json!({
            "check": c.check,
            "title": c.title,
            "outcome": c.outcome,
            "responsible": c.responsible,
            "evaluated": c.evaluated,
            "failing_count": c.failing_count,
            "failing": *c.failing,
            "unproven_count": c.unproven_count,
            "unproven": *c.unproven,
            "evidence": *c.evidence,
            "summary": c.summary,
            "remediation": c.remediation,
            "figures": c.figures,
        })).collect::<Vec<_>>(),
        "manual_evidence": r.manual_evidence,
        "reason": r.reason,
        "accepted": r.accepted,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{decode, to_bytes};
    use crate::catalog::ControlKind;
    use crate::checks::{Subject, Verdict};
    use crate::config::Owner;
    use crate::evaluate::{CheckResult, ControlResult, EvidenceSet, Status};

    fn subjects(n: usize) -> Arc<Vec<Subject>> {
        Arc::new(
            (0..n)
                .map(|i| Subject {
                    id: format!("m365:user-{i}"),
                    name: format!("User {i}"),
                    detail: "no MFA method registered".into(),
                })
                .collect(),
        )
    }

    fn control(id: &str, failing: &Arc<Vec<Subject>>, count: usize) -> ControlResult {
        ControlResult {
            framework: "hipaa".into(),
            control_id: id.into(),
            title: format!("{id} title"),
            status: Status::Fail,
            owner: Owner::Internal,
            kind: ControlKind::Automated,
            checks: vec![CheckResult {
                check: "mfa_registered".into(),
                title: "MFA registered".into(),
                outcome: Verdict::Fail,
                responsible: Owner::Internal,
                evaluated: 10,
                failing_count: count,
                failing: if count == 0 {
                    Arc::default()
                } else {
                    Arc::clone(failing)
                },
                unproven_count: 0,
                unproven: Arc::default(),
                evidence: Arc::new(vec![EvidenceSet::new(
                    "m365",
                    "users",
                    [
                        "evidence/m365/users/page-00002.json",
                        "evidence/m365/users/page-00001.json",
                    ],
                )]),
                result: "mfa_registered".into(),
                summary: "3 users without MFA".into(),
                remediation: "Register MFA.".into(),
                figures: vec![crate::checks::Figure {
                    name: "mean_time_to_resolve.high".into(),
                    value: 12.5,
                    unit: "hours".into(),
                }],
            }],
            manual_evidence: vec![],
            reason: "reason".into(),
            accepted: (id == "b").then(|| crate::policy::Acceptance {
                approved_by: "CISO".into(),
                reason: "known gap".into(),
                expires: chrono::NaiveDate::from_ymd_opt(2030, 1, 1).expect("date"),
                exceptions: vec![],
            }),
        }
    }

    #[test]
    fn subjects_are_written_once_and_read_back_shared() {
        let failing = subjects(3);
        let results = vec![
            control("a", &failing, 3),
            control("b", &failing, 3),
            // Not judged under this control (stale evidence): no subjects.
            control("c", &failing, 0),
        ];
        let bytes = to_bytes(&results).expect("encodes");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert_eq!(text.matches("m365:user-1").count(), 1, "{text}");
        assert_eq!(
            text.matches("page-00001.json").count(),
            0,
            "files by set only"
        );
        let back = decode(&bytes).expect("decodes");
        // Everything comes back, the acceptance and the check's figures too.
        assert_eq!(back, results);
        assert!(back[1].accepted.is_some() && !back[0].checks[0].figures.is_empty());
        assert!(Arc::ptr_eq(
            &back[0].checks[0].failing,
            &back[1].checks[0].failing
        ));
        assert!(back[2].checks[0].failing.is_empty());
        assert_eq!(to_bytes(&back).expect("encodes"), bytes, "stable");
    }

    #[test]
    fn results_that_disagree_under_one_key_are_kept_apart() {
        let results = vec![control("a", &subjects(3), 3), control("b", &subjects(2), 2)];
        let bytes = to_bytes(&results).expect("encodes");
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back[0].checks[0].failing.len(), 3);
        assert_eq!(back[1].checks[0].failing.len(), 2);
        assert_eq!(back[1].checks[0].result, "mfa_registered#2");
    }

    #[test]
    fn the_older_inline_layout_is_read() {
        let legacy = r#"[{"framework":"hipaa","control_id":"a","title":"t","status":"fail",
            "owner":"msp","kind":"automated","manual_evidence":[],"reason":"r",
            "checks":[{"check":"mfa_registered","title":"t","outcome":"fail","responsible":"msp",
            "evaluated":2,"failing_count":1,"failing":[{"id":"m365:1","name":"One","detail":"d"}],
            "evidence":["evidence/m365/users/page-00001.json","evidence/m365/users/page-00002.json"],
            "summary":"s","remediation":"x"}]}]"#;
        let back = decode(legacy.as_bytes()).expect("decodes");
        let c = &back[0].checks[0];
        assert_eq!(c.failing[0].id, "m365:1");
        assert_eq!(c.evidence.len(), 1);
        assert_eq!(c.evidence[0].files, 2);
        assert_eq!(c.evidence[0].folder, "evidence/m365/users");
    }

    #[test]
    fn subjects_are_rows_under_their_field_names() {
        let bytes = to_bytes(&[control("a", &subjects(2), 2)]).expect("encodes");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(
            text.contains("\"subject_fields\":[\"id\",\"name\",\"detail\"]")
                && text.contains("\n[\"m365:user-1\",\"User 1\",\"no MFA method registered\"]\n"),
            "{text}"
        );
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(doc["format"], super::FORMAT);
    }

    #[test]
    fn format_2_with_subject_objects_is_read() {
        let text = String::from_utf8(to_bytes(&[control("a", &subjects(2), 2)]).expect("encodes"))
            .expect("utf-8");
        let format_2 = text
            .replace("\"format\": 3", "\"format\": 2")
            .replace(",\"subject_fields\":[\"id\",\"name\",\"detail\"]", "")
            .replace(
                "[\"m365:user-0\",\"User 0\",\"no MFA method registered\"]",
                "{\"id\":\"m365:user-0\",\"name\":\"User 0\",\"detail\":\"no MFA method registered\"}",
            );
        assert!(format_2.contains("{\"id\":\"m365:user-0\""), "{format_2}");
        let back = decode(format_2.as_bytes()).expect("decodes");
        assert_eq!(back, decode(text.as_bytes()).expect("decodes"));
    }

    #[test]
    fn rows_that_do_not_match_the_field_names_are_errors() {
        let text = String::from_utf8(to_bytes(&[control("a", &subjects(2), 2)]).expect("encodes"))
            .expect("utf-8");
        let renamed = text.replace(
            "[\"id\",\"name\",\"detail\"]",
            "[\"name\",\"id\",\"detail\"]",
        );
        let e = decode(renamed.as_bytes()).expect_err("reordered fields");
        assert!(
            e.contains("checks.mfa_registered") && e.contains("subject_fields"),
            "{e}"
        );
        let short = text.replace(",\"User 1\",\"no MFA method registered\"]", ",\"User 1\"]");
        assert!(decode(short.as_bytes()).is_err(), "a row of two values");
        let long = text.replace("\"User 1\",\"no MFA", "\"User 1\",\"x\",\"no MFA");
        assert!(decode(long.as_bytes()).is_err(), "a row of four values");
        assert!(decode(text.replace("\"format\": 3", "\"format\": 4").as_bytes()).is_err());
    }

    #[test]
    fn broken_references_are_errors_naming_the_control() {
        let bytes = to_bytes(&[control("a", &subjects(3), 3)]).expect("encodes");
        let text = String::from_utf8(bytes).expect("utf-8");
        let missing = text.replace("\"result\":\"mfa_registered\"", "\"result\":\"nope\"");
        let e = decode(missing.as_bytes()).expect_err("dangling");
        assert!(e.contains("hipaa:a") && e.contains("nope"), "{e}");
        let miscounted = text.replace("\"failing_count\":3", "\"failing_count\":4");
        let e = decode(miscounted.as_bytes()).expect_err("miscounted");
        assert!(e.contains("hipaa:a") && e.contains('4'), "{e}");
        assert!(decode(b"{\"format\": 2").is_err());
        assert!(decode(b"").is_err());
    }
}
