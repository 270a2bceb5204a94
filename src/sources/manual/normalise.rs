//! Manual evidence: the `documents` list of a `manual` source to
//! [`ManualDocument`] facts. Whether a document still counts (expiry) is
//! judged by the evaluation, not here.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{DocumentEntry, DOCUMENTS};
use crate::facts::{FactKind, Facts, ManualDocument, SourceEvidence};

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn normalise(src: &SourceEvidence<'_>, facts: &mut Facts) {
    let mut problems = Vec::new();
    for (path, page) in src.pages.get(DOCUMENTS).into_iter().flatten() {
        let Some(list) = page.get("documents").and_then(Value::as_array) else {
            problems.push(format!("{path}: no `documents` array"));
            continue;
        };
        for item in list {
            match serde_json::from_value::<DocumentEntry>(item.clone()) {
                Ok(d) => facts.manual.push(ManualDocument {
                    path: d.path,
                    sha256: d.sha256,
                    title: d.title,
                    controls: d.controls,
                    owner: d.owner,
                    evidence_date: time(&d.evidence_date),
                    expires: d.expires.as_deref().and_then(time),
                }),
                Err(e) => problems.push(format!("{path}: {e}")),
            }
        }
    }
    let mut provenance = src.provenance(DOCUMENTS, &problems);
    // The documents themselves are evidence too.
    provenance.evidence.extend(
        facts
            .manual
            .iter()
            .filter(|d| d.path.starts_with(&format!("manual/{}/", src.name)))
            .map(|d| d.path.clone()),
    );
    provenance.evidence.sort();
    provenance.evidence.dedup();
    facts.provide(FactKind::ManualEvidence, provenance);
}
