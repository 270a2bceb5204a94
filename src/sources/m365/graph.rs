//! Shapes of Microsoft Graph (and Defender API) responses that every
//! Microsoft 365 normaliser reads.

use serde_json::Value;

/// The records of an OData page: its `value` array.
pub(super) fn value_array(page: &Value) -> Option<&Vec<Value>> {
    page.get("value")?.as_array()
}

/// The path segment after `after` in a URL (e.g. the group id in
/// `.../groups/<id>/transitiveMembers`).
pub(super) fn segment_after<'u>(url: &'u str, after: &str) -> Option<&'u str> {
    let path = url.split('?').next()?;
    let mut parts = path.split('/');
    parts.by_ref().find(|p| *p == after)?;
    parts.next().filter(|p| !p.is_empty())
}
