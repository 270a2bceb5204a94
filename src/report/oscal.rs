//! `results/assessment-results.oscal.json`: the results as NIST OSCAL 1.1.2
//! assessment results, for GRC tools.
//!
//! - `metadata` names the internal IT team and the MSP as parties with a role
//!   each, so a finding's owner resolves to a party.
//! - one `observation` per distinct check result, whose `relevant-evidence`
//!   points at the folder of each dataset it read (relative to this file,
//!   with its file count and the SHA-256 of its path list), and one
//!   `back-matter` resource per evidence file carrying its SHA-256;
//! - one `finding` per control (not-applicable ones are excluded from the
//!   reviewed controls instead), with target state `satisfied` or
//!   `not-satisfied`.
//!
//! Every UUID is a version-5 UUID of the run id and what it names, so the same
//! run always gives the same file.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};
use uuid::Uuid;

use super::model::{framework_label, RunData};
use crate::config::Owner;
use crate::error::{Result, ResultExt};
use crate::evaluate::{ControlResult, Status};
use crate::evidence::write_atomic;

/// The OSCAL version written.
pub const OSCAL_VERSION: &str = "1.1.2";

/// Namespace of auditpack's own property names.
pub const NS: &str = "https://auditpack.dev/ns/oscal";

/// The UUID namespace of auditpack's deterministic UUIDs.
const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c2e_9a4d_5e70_8c21_d4f0_a7b3_9e15);

fn id(run_id: &str, kind: &str, key: &str) -> String {
    Uuid::new_v5(&UUID_NAMESPACE, format!("{run_id}/{kind}/{key}").as_bytes()).to_string()
}

/// An OSCAL token (`^(\p{L}|_)(\p{L}|\p{N}|[.\-_])*$`) naming a control:
/// `hipaa_164.312.a.1` for HIPAA 164.312(a)(1).
pub fn control_token(framework: &str, control: &str) -> String {
    let mut out = String::new();
    for c in framework.chars() {
        out.push(if c.is_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        });
    }
    out.push('_');
    for c in control.chars() {
        match c {
            '(' => out.push('.'),
            ')' => {}
            c if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') => out.push(c),
            _ => out.push('_'),
        }
    }
    let out = out.trim_end_matches('.').to_owned();
    if out.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        out
    } else {
        format!("_{out}")
    }
}

/// Text OSCAL accepts where a non-empty single line is required (a `string`,
/// a `markup-line`: no line break, no leading or trailing white space): each
/// run of white space and control characters becomes one space.
fn text(s: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        fallback.to_owned()
    } else {
        out
    }
}

/// Text for a `markup-line` or `markup-multiline` field, which OSCAL reads
/// as CommonMark: one line (see [`text`]) with every character that could
/// open markup escaped, so a name from a tenant (`<img onerror=...>`,
/// `[link](...)`, `*bold*`) stays text in any tool that renders it.
fn markup(s: &str, fallback: &str) -> String {
    let line = text(s, fallback);
    let mut out = String::with_capacity(line.len() + 8);
    let mut chars = line.chars().peekable();
    // A line that starts with a block marker (heading, list item, setext
    // underline, thematic break) or with digits and `.` / `)` (an ordered
    // list item) would not be a paragraph.
    if matches!(chars.peek(), Some('#' | '+' | '-' | '=')) {
        out.push('\\');
    }
    let mut leading_digits = true;
    for c in chars {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '~' | '|'
        ) || (leading_digits && !out.is_empty() && matches!(c, '.' | ')'))
        {
            out.push('\\');
        }
        leading_digits &= c.is_ascii_digit();
        out.push(c);
    }
    out
}

fn prop(name: &str, value: &str) -> Value {
    json!({ "name": name, "ns": NS, "value": text(value, "none") })
}

fn satisfied(status: Status) -> bool {
    matches!(status, Status::Pass | Status::ManualAttested)
}

/// Build the document.
pub fn render(data: &RunData) -> Value {
    let m = &data.manifest;
    let run = m.run_id.as_str();
    let internal = id(run, "party", "internal");
    let msp = id(run, "party", "msp");
    let plan = id(run, "resource", "assessment-plan");
    // Files per dataset in the custody log.
    let mut sha: HashMap<(&str, &str), usize> = HashMap::new();
    for e in &data.custody {
        *sha.entry((e.source.as_str(), e.dataset.as_str()))
            .or_default() += 1;
    }

    // One observation per distinct check result (frameworks with the same
    // thresholds share the cached outcome, so they share the observation).
    let mut observations: Vec<Value> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut findings = Vec::new();
    let mut included = Vec::new();
    let mut excluded = Vec::new();
    for r in &data.results {
        let token = control_token(&r.framework, &r.control_id);
        if r.status == Status::NotApplicable {
            excluded.push(json!({ "control-id": token }));
            continue;
        }
        included.push(json!({ "control-id": token }));
        let mut related = Vec::new();
        for c in &r.checks {
            let key = format!(
                "{}|{:?}|{}|{}|{}|{}",
                c.check, c.outcome, c.evaluated, c.failing_count, c.unproven_count, c.summary
            );
            let uuid = match seen.get(&key) {
                Some(u) => u.clone(),
                None => {
                    let uuid = id(run, "observation", &key);
                    observations.push(observation(&uuid, c, &sha, &m.finished_at));
                    seen.insert(key, uuid.clone());
                    uuid
                }
            };
            related.push(json!({ "observation-uuid": uuid }));
        }
        findings.push(finding(run, r, &token, related));
    }

    let mut controls = json!({ "include-controls": included });
    if !excluded.is_empty() {
        controls["exclude-controls"] = json!(excluded);
    }
    let frameworks: Vec<String> = m.frameworks.iter().map(|f| framework_label(f)).collect();
    let mut resources = vec![json!({
        "uuid": plan,
        "title": "Assessment plan",
        "description": markup(&format!(
            "auditpack judged {} with ownership template {} against the evidence of run {}; \
             the catalogs and ownership template shipped with {} are the plan.",
            frameworks.join(", "), m.ownership, m.run_id, m.tool
        ), "Assessment plan"),
    })];
    for e in &data.custody {
        resources.push(json!({
            "uuid": id(run, "evidence", &e.path),
            "title": markup(&e.path, "evidence file"),
            "description": markup(&format!("{} / {}, received {}", e.source, e.dataset, e.collected_at), "evidence file"),
            "rlinks": [{
                "href": format!("../{}", e.path),
                "media-type": "application/json",
                "hashes": [{ "algorithm": "SHA-256", "value": e.sha256 }],
            }],
        }));
    }

    json!({
        "assessment-results": {
            "uuid": id(run, "assessment-results", ""),
            "metadata": {
                "title": markup(&format!("Assessment results: {} ({})", text(&m.organisation, "organisation"), run), "Assessment results"),
                "last-modified": m.finished_at,
                "version": run,
                "oscal-version": OSCAL_VERSION,
                "roles": [
                    { "id": "internal-it", "title": "Internal IT" },
                    { "id": "msp", "title": "Managed service provider" },
                ],
                "parties": [
                    { "uuid": internal, "type": "organization",
                      "name": format!("{} internal IT", text(&m.organisation, "organisation")) },
                    { "uuid": msp, "type": "organization",
                      "name": format!("Managed service provider of {}", text(&m.organisation, "organisation")) },
                ],
                "responsible-parties": [
                    { "role-id": "internal-it", "party-uuids": [internal] },
                    { "role-id": "msp", "party-uuids": [msp] },
                ],
            },
            "import-ap": { "href": format!("#{plan}") },
            "results": [{
                "uuid": id(run, "result", ""),
                "title": markup(&format!("Automated assessment {run}"), "Automated assessment"),
                "description": markup(&format!(
                    "{} controls of {} judged from the evidence collected between {} and {}, as of {}.",
                    data.results.len(), frameworks.join(", "), m.started_at, m.finished_at, m.as_of
                ), "Automated assessment"),
                "start": m.started_at,
                "end": m.finished_at,
                "props": [prop("run-id", run), prop("as-of", &m.as_of)],
                "reviewed-controls": { "control-selections": [controls] },
                "observations": observations,
                "findings": findings,
            }],
            "back-matter": { "resources": resources },
        }
    })
}

fn observation(
    uuid: &str,
    c: &crate::evaluate::CheckResult,
    sha: &HashMap<(&str, &str), usize>,
    collected: &str,
) -> Value {
    // One entry per dataset; each of its files is a back-matter resource
    // with its SHA-256.
    let evidence: Vec<Value> = c
        .evidence
        .iter()
        .map(|set| {
            let in_custody = sha.get(&(set.source.as_str(), set.dataset.as_str())).copied();
            json!({
                "href": format!("../{}/", set.folder),
                "description": markup(&format!(
                    "{}: {} file(s) in {}/, path list SHA-256 {}; {}",
                    set.name(),
                    set.files,
                    set.folder,
                    set.list_sha256,
                    match in_custody {
                        Some(n) => format!("{n} file(s) of this dataset in the custody log, each a back-matter resource with its SHA-256"),
                        None => "not in the custody log".to_owned(),
                    }
                ), "evidence"),
            })
        })
        .collect();
    let mut o = json!({
        "uuid": uuid,
        "title": markup(&c.title, &c.check),
        "description": markup(&c.summary, &c.check),
        "props": [
            prop("check", &c.check),
            prop("outcome", match c.outcome {
                crate::checks::Verdict::Pass => "pass",
                crate::checks::Verdict::Fail => "fail",
                crate::checks::Verdict::Inconclusive => "inconclusive",
            }),
            prop("responsible", c.responsible.as_str()),
            prop("evaluated", &c.evaluated.to_string()),
            prop("failing", &c.failing_count.to_string()),
            prop("unproven", &c.unproven_count.to_string()),
        ],
        "methods": ["TEST"],
        "collected": collected,
    });
    if !evidence.is_empty() {
        o["relevant-evidence"] = json!(evidence);
    }
    o
}

fn finding(run: &str, r: &ControlResult, token: &str, related: Vec<Value>) -> Value {
    let state = if satisfied(r.status) {
        "satisfied"
    } else {
        "not-satisfied"
    };
    let reason = match r.status {
        Status::Pass | Status::ManualAttested => "pass",
        Status::Fail => "fail",
        _ => "other",
    };
    let role = match r.owner {
        Owner::Internal => "internal-it",
        Owner::Msp => "msp",
        Owner::Shared => "shared",
        Owner::Unassigned => "unassigned",
    };
    let mut f = json!({
        "uuid": id(run, "finding", token),
        "title": markup(&format!("{} {}: {}", framework_label(&r.framework), text(&r.control_id, "control"), text(&r.title, "untitled")), "control"),
        "description": markup(&r.reason, r.status.as_str()),
        "props": [
            prop("framework", &r.framework),
            prop("control-id", &r.control_id),
            prop("status", r.status.as_str()),
            prop("owner", r.owner.as_str()),
            prop("owner-role", role),
        ],
        "target": {
            "type": "objective-id",
            "target-id": token,
            "status": { "state": state, "reason": reason },
        },
    });
    if !related.is_empty() {
        f["related-observations"] = json!(related);
    }
    f
}

/// Write `results/assessment-results.oscal.json` under the run folder.
///
/// # Errors
/// On I/O failure.
pub fn write(run_dir: &Path, data: &RunData) -> Result<()> {
    let mut bytes =
        serde_json::to_vec_pretty(&render(data)).context(|| "cannot encode OSCAL results")?;
    bytes.push(b'\n');
    let path = run_dir.join("results/assessment-results.oscal.json");
    write_atomic(&path, &bytes).context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{control_token, markup, text};

    #[test]
    fn markup_keeps_names_as_text() {
        assert_eq!(
            markup(
                "<img src=x onerror=alert(1)> & [a](javascript:x) *b* `c`",
                "x"
            ),
            "\\<img src=x onerror=alert(1)\\> \\& \\[a\\](javascript:x) \\*b\\* \\`c\\`"
        );
        assert_eq!(markup("# heading", "x"), "\\# heading");
        assert_eq!(markup("- item", "x"), "\\- item");
        assert_eq!(markup("12. item", "x"), "12\\. item");
        assert_eq!(
            markup("3 of 34 devices fail: WS-1 (no data)", "x"),
            "3 of 34 devices fail: WS-1 (no data)"
        );
        assert_eq!(markup("a\\b_c", "x"), "a\\\\b\\_c");
    }

    #[test]
    fn single_line_text_has_no_break_and_no_outer_space() {
        assert_eq!(text(" Contoso\n\tDental\r\n ", "x"), "Contoso Dental");
        assert_eq!(text("a\u{7}b", "x"), "a b");
        assert_eq!(text(" \n ", "fallback"), "fallback");
    }

    #[test]
    fn tokens_are_oscal_tokens() {
        assert_eq!(
            control_token("hipaa", "164.312(a)(2)(iv)"),
            "hipaa_164.312.a.2.iv"
        );
        assert_eq!(control_token("pci-dss", "8.2.6"), "pci-dss_8.2.6");
        assert_eq!(control_token("soc2", "CC6.1"), "soc2_CC6.1");
        assert_eq!(control_token("9x", "a b"), "_9x_a_b");
    }
}
