//! Accepted risk: `exceptions.toml`, the gaps an organisation has decided to
//! live with for now, each with a reason, an approver and an expiry date.
//!
//! ```toml
//! [[exception]]
//! control = "pci-dss:8.4.2"          # "<framework>:<control id>", required
//! check = "mfa_enforced"             # optional: only this check's failure
//! subject = "m365:user-id"           # optional: only this subject's failure
//! reason = "Kiosk account; replaced in Q2"
//! approved_by = "Jane Doe, Practice Manager"
//! expires = 2027-03-31               # a date; the exception counts through it
//! ```
//!
//! An exception never turns a failure into a pass. A failing control whose
//! every failure (each failing subject of each failing check, or the check as
//! a whole when it names no subject) is covered by a current exception keeps
//! `status: fail` and gains an `accepted` object (approver, reason, expiry):
//! reports show it as `fail (accepted until DATE)` and list it for the
//! auditor. A failure only partly covered stays a plain failure.
//!
//! The file is validated when it is loaded: unknown keys, a control that is
//! not in the catalog or not in the organisation's frameworks, a check the
//! control does not use, a subject without a check, a missing reason or
//! approver, or an expiry before the judgement date are each an error naming
//! the file and line. The run keeps a copy of the file with its evidence, so
//! re-evaluating the run applies exactly the same exceptions (judged against
//! the run's own `as_of`, never today).

use std::ops::Range;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use crate::catalog::Catalog;
use crate::checks::Verdict;
use crate::error::{Error, Result};
use crate::evaluate::{ControlResult, Status};
pub use crate::policy::{Acceptance, Exception};

/// The exceptions of one organisation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exceptions {
    entries: Vec<Exception>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    exception: Vec<toml::Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    control: toml::Spanned<String>,
    #[serde(default)]
    check: Option<toml::Spanned<String>>,
    #[serde(default)]
    subject: Option<toml::Spanned<String>>,
    reason: toml::Spanned<String>,
    approved_by: toml::Spanned<String>,
    expires: toml::Spanned<toml::value::Datetime>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl Exceptions {
    /// No exceptions.
    pub fn none() -> Exceptions {
        Exceptions::default()
    }

    /// Parse and validate `exceptions.toml` text read from `file` (named in
    /// every message). `frameworks` are the organisation's frameworks in
    /// scope; `as_of` the instant the run is judged at: an exception that
    /// expired before it is refused.
    ///
    /// # Errors
    /// A [`crate::ErrorKind::Config`] error naming `file` and the line, on
    /// malformed TOML or unknown keys, a control not in the catalog or not in
    /// scope, a check the control does not use, a subject without a check,
    /// an empty reason or approver, or an expiry before `as_of`.
    pub fn parse(
        text: &str,
        file: &str,
        catalog: &Catalog,
        frameworks: &[String],
        as_of: DateTime<Utc>,
    ) -> Result<Exceptions> {
        let at = |span: Range<usize>| format!("{file}:{}", line_of(text, span.start));
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let location = e.span().map_or_else(|| file.to_owned(), &at);
            Error::config(format!("{location}: {}", e.message().trim_end()))
        })?;
        let mut entries = Vec::new();
        for entry in raw.exception {
            let header_line = line_of(text, entry.span().start);
            let entry = entry.into_inner();
            let control_at = at(entry.control.span());
            let control = entry.control.into_inner();
            let Some((framework_id, control_id)) = control
                .split_once(':')
                .filter(|(f, c)| !f.is_empty() && !c.is_empty())
            else {
                return Err(Error::config(format!(
                    "{control_at}: exception control `{control}` must look like \"<framework>:<control id>\""
                )));
            };
            let Some(framework) = catalog.framework(framework_id) else {
                return Err(Error::config(format!(
                    "{control_at}: exception for `{control}`: framework `{framework_id}` is not in the catalog"
                )));
            };
            let Some(found) = framework.controls.iter().find(|c| c.id == control_id) else {
                return Err(Error::config(format!(
                    "{control_at}: exception for `{control}`: {framework_id} has no control `{control_id}`"
                )));
            };
            if !frameworks.iter().any(|f| f == framework_id) {
                return Err(Error::config(format!(
                    "{control_at}: exception for `{control}`: framework `{framework_id}` is not among the organisation's frameworks ({})",
                    frameworks.join(", ")
                )));
            }
            let check = match entry.check {
                Some(check) => {
                    let check_at = at(check.span());
                    let check = check.into_inner();
                    if !found.checks.contains(&check) {
                        return Err(Error::config(format!(
                            "{check_at}: exception for `{control}`: the control has no check `{check}` (its checks: {})",
                            if found.checks.is_empty() {
                                "none".to_owned()
                            } else {
                                found.checks.join(", ")
                            }
                        )));
                    }
                    Some(check)
                }
                None => None,
            };
            let subject = match entry.subject {
                Some(subject) if check.is_none() => {
                    return Err(Error::config(format!(
                        "{}: exception for `{control}`: a subject needs the check it fails (add `check = \"...\"`)",
                        at(subject.span())
                    )));
                }
                Some(subject) if subject.get_ref().trim().is_empty() => {
                    return Err(Error::config(format!(
                        "{}: exception for `{control}`: subject is empty",
                        at(subject.span())
                    )));
                }
                Some(subject) => Some(subject.into_inner()),
                None => None,
            };
            for (name, value) in [
                ("reason", &entry.reason),
                ("approved_by", &entry.approved_by),
            ] {
                if value.get_ref().trim().is_empty() {
                    return Err(Error::config(format!(
                        "{}: exception for `{control}`: {name} is empty; an accepted risk needs a reason and an approver",
                        at(value.span())
                    )));
                }
            }
            let expires_at = at(entry.expires.span());
            let expires = entry.expires.into_inner();
            let expires = match (expires.date, expires.time) {
                (Some(d), None) => {
                    NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                }
                _ => None,
            }
            .ok_or_else(|| {
                Error::config(format!(
                    "{expires_at}: exception for `{control}`: expires must be a date (e.g. 2027-03-31), not `{expires}`"
                ))
            })?;
            if expires < as_of.date_naive() {
                return Err(Error::config(format!(
                    "{expires_at}: exception for `{control}` expired on {expires}, before {}; renew it (a new date and approval) or remove it",
                    as_of.date_naive()
                )));
            }
            entries.push(Exception {
                control: control.clone(),
                check,
                subject,
                reason: entry.reason.into_inner(),
                approved_by: entry.approved_by.into_inner(),
                expires,
                line: header_line,
            });
        }
        Ok(Exceptions { entries })
    }

    /// Every exception, in file order.
    pub fn entries(&self) -> &[Exception] {
        &self.entries
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The exceptions that are current at `now` and expire within `days`
    /// days of it (expiry day included), soonest first: what an expiry
    /// alert names.
    pub fn expiring_within(&self, days: u32, now: DateTime<Utc>) -> Vec<&Exception> {
        let today = now.date_naive();
        let limit = today + chrono::Days::new(u64::from(days));
        let mut soon: Vec<&Exception> = self
            .entries
            .iter()
            .filter(|e| e.expires >= today && e.expires <= limit)
            .collect();
        soon.sort_by(|a, b| a.expires.cmp(&b.expires).then(a.line.cmp(&b.line)));
        soon
    }

    /// Mark each failing result whose every failure a current exception
    /// covers with [`ControlResult::accepted`]. Statuses never change: an
    /// accepted failure is still `fail`. Deterministic for a given `as_of`.
    pub fn apply(&self, results: &mut [ControlResult], as_of: DateTime<Utc>) {
        let current: Vec<&Exception> = self
            .entries
            .iter()
            .filter(|e| e.current_at(as_of))
            .collect();
        if current.is_empty() {
            return;
        }
        for result in results.iter_mut().filter(|r| r.status == Status::Fail) {
            let mut used: Vec<&Exception> = Vec::new();
            let mut covered_all = true;
            let mut any_failure = false;
            for check in result.checks.iter().filter(|c| c.outcome == Verdict::Fail) {
                let subjects: Vec<Option<&str>> = if check.failing.is_empty() {
                    vec![None]
                } else {
                    check.failing.iter().map(|s| Some(s.id.as_str())).collect()
                };
                for subject in subjects {
                    any_failure = true;
                    let by = current.iter().find(|e| {
                        e.covers(&result.framework, &result.control_id, &check.check, subject)
                    });
                    match by {
                        Some(e) => {
                            if !used.iter().any(|u| std::ptr::eq(*u, *e)) {
                                used.push(e);
                            }
                        }
                        None => covered_all = false,
                    }
                }
            }
            if !any_failure {
                // A failure no check explains: only a control-wide exception covers it.
                match current.iter().find(|e| {
                    e.framework() == result.framework
                        && e.control_id() == result.control_id
                        && e.check.is_none()
                }) {
                    Some(e) => used.push(e),
                    None => covered_all = false,
                }
            }
            if !covered_all || used.is_empty() {
                continue;
            }
            used.sort_by(|a, b| a.expires.cmp(&b.expires).then(a.line.cmp(&b.line)));
            let first = used[0];
            result.accepted = Some(Acceptance {
                approved_by: first.approved_by.clone(),
                reason: first.reason.clone(),
                expires: first.expires,
                exceptions: used.into_iter().cloned().collect(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ControlKind;
    use crate::checks::Subject;
    use crate::evaluate::CheckResult;
    use crate::policy::Owner;

    fn as_of() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("time")
    }

    fn parse(text: &str) -> Result<Exceptions> {
        let catalog = Catalog::builtin().expect("catalog");
        Exceptions::parse(text, "ex.toml", &catalog, &["pci-dss".to_owned()], as_of())
    }

    fn entry(control: &str, check: Option<&str>, subject: Option<&str>, expires: &str) -> String {
        let mut s = format!("[[exception]]\ncontrol = \"{control}\"\n");
        if let Some(c) = check {
            s.push_str(&format!("check = \"{c}\"\n"));
        }
        if let Some(x) = subject {
            s.push_str(&format!("subject = \"{x}\"\n"));
        }
        s.push_str(&format!(
            "reason = \"known gap\"\napproved_by = \"CISO\"\nexpires = {expires}\n\n"
        ));
        s
    }

    fn failing(check: &str, subjects: &[&str]) -> CheckResult {
        CheckResult {
            check: check.into(),
            title: check.into(),
            outcome: Verdict::Fail,
            responsible: Owner::Internal,
            evaluated: 5,
            failing_count: subjects.len(),
            failing: std::sync::Arc::new(
                subjects
                    .iter()
                    .map(|id| Subject {
                        id: (*id).into(),
                        name: (*id).into(),
                        detail: "fails".into(),
                    })
                    .collect(),
            ),
            unproven_count: 0,
            unproven: Default::default(),
            evidence: Default::default(),
            result: check.into(),
            summary: String::new(),
            remediation: String::new(),
            figures: vec![],
        }
    }

    fn result(id: &str, checks: Vec<CheckResult>) -> ControlResult {
        ControlResult {
            framework: "pci-dss".into(),
            control_id: id.into(),
            title: id.into(),
            status: Status::Fail,
            owner: Owner::Internal,
            kind: ControlKind::Hybrid,
            checks,
            manual_evidence: vec![],
            reason: String::new(),
            accepted: None,
        }
    }

    #[test]
    fn bad_entries_name_the_file_and_line() {
        let cases = [
            (entry("pci-dss:9.9.99", None, None, "2027-01-01"), "ex.toml:2: exception for `pci-dss:9.9.99`: pci-dss has no control `9.9.99`"),
            (entry("iso:5.1", None, None, "2027-01-01"), "ex.toml:2: exception for `iso:5.1`: framework `iso` is not in the catalog"),
            (entry("8.4.2", None, None, "2027-01-01"), "ex.toml:2: exception control `8.4.2` must look like"),
            (entry("pci-dss:8.4.2", Some("edr_health"), None, "2027-01-01"), "ex.toml:3: exception for `pci-dss:8.4.2`: the control has no check `edr_health` (its checks: mfa_enforced, mfa_registered)"),
            (entry("pci-dss:8.4.2", None, Some("m365:1"), "2027-01-01"), "ex.toml:3: exception for `pci-dss:8.4.2`: a subject needs the check"),
            (entry("pci-dss:8.4.2", None, None, "2026-05-31"), "ex.toml:5: exception for `pci-dss:8.4.2` expired on 2026-05-31, before 2026-06-01"),
            (entry("pci-dss:8.4.2", None, None, "2027-01-01T00:00:00Z"), "ex.toml:5: exception for `pci-dss:8.4.2`: expires must be a date"),
            ("[[exception]]\ncontrol = \"pci-dss:8.4.2\"\nreason = \" \"\napproved_by = \"x\"\nexpires = 2027-01-01\n".to_owned(), "ex.toml:3: exception for `pci-dss:8.4.2`: reason is empty"),
            ("[[exception]]\ncontrol = \"pci-dss:8.4.2\"\nreason = \"r\"\nexpires = 2027-01-01\n".to_owned(), "ex.toml:1: missing field `approved_by`"),
            ("[[exception]]\ncontrol = \"pci-dss:8.4.2\"\nreason = \"r\"\napproved_by = \"x\"\nexpires = 2027-01-01\napproved = 1\n".to_owned(), "ex.toml:6: unknown field `approved`"),
            ("[[exception]\n".to_owned(), "ex.toml:1:"),
        ];
        for (text, want) in cases {
            let err = parse(&text).expect_err(want).to_string();
            assert!(err.starts_with(want), "want {want}\n got {err}");
        }
        // Lines count from the top of the file, across entries.
        let two = format!(
            "{}{}",
            entry("pci-dss:8.4.2", None, None, "2027-01-01"),
            entry("pci-dss:8.4.3", None, None, "2020-01-01")
        );
        let err = parse(&two).expect_err("second expired").to_string();
        assert!(err.starts_with("ex.toml:11:"), "{err}");
        // The last day still counts.
        assert!(parse(&entry("pci-dss:8.4.2", None, None, "2026-06-01")).is_ok());
    }

    #[test]
    fn a_failure_is_accepted_only_when_every_part_is_covered() {
        let text = format!(
            "{}{}{}",
            entry("pci-dss:8.4.1", None, None, "2026-12-31"),
            entry(
                "pci-dss:8.4.2",
                Some("mfa_registered"),
                Some("m365:1"),
                "2026-09-30"
            ),
            entry("pci-dss:8.4.2", Some("mfa_enforced"), None, "2026-08-31"),
        );
        let exceptions = parse(&text).expect("valid");
        assert_eq!(exceptions.entries().len(), 3);
        assert_eq!(exceptions.entries()[1].line, 7);
        let mut results = vec![
            result("8.4.1", vec![failing("mfa_admins", &["m365:7"])]),
            result(
                "8.4.2",
                vec![
                    failing("mfa_enforced", &["m365:2", "m365:3"]),
                    failing("mfa_registered", &["m365:1"]),
                ],
            ),
            result("8.4.3", vec![failing("mfa_enforced", &["m365:2"])]),
        ];
        let mut partly = results[1].clone();
        partly.checks[1] = failing("mfa_registered", &["m365:1", "m365:4"]);
        results.push(partly);
        exceptions.apply(&mut results, as_of());
        let a = results[0].accepted.as_ref().expect("control-wide");
        assert_eq!(a.expires.to_string(), "2026-12-31");
        let b = results[1].accepted.as_ref().expect("check and subject");
        assert_eq!(b.expires.to_string(), "2026-08-31", "the earliest expiry");
        assert_eq!(b.exceptions.len(), 2);
        assert!(results[2].accepted.is_none(), "another control");
        assert!(results[3].accepted.is_none(), "m365:4 is not covered");
        assert!(results.iter().all(|r| r.status == Status::Fail));
        // After its expiry an exception no longer covers anything.
        let mut later = vec![result("8.4.1", vec![failing("mfa_admins", &["m365:7"])])];
        let next_year = as_of() + chrono::Duration::days(365);
        exceptions.apply(&mut later, next_year);
        assert!(later[0].accepted.is_none());
        // What an expiry alert names.
        let soon: Vec<&str> = exceptions
            .expiring_within(95, as_of())
            .iter()
            .map(|e| e.control.as_str())
            .collect();
        assert_eq!(soon, ["pci-dss:8.4.2"]);
        assert_eq!(exceptions.expiring_within(92, as_of()).len(), 1);
        assert_eq!(exceptions.expiring_within(400, as_of()).len(), 3);
    }
}
