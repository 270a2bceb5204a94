//! The config keys many sources share, read one way with one wording of
//! their errors: a credential named by `<key>_env` or `<key>_file`, and the
//! API's `base_url`. Each message names the source (`[sources.<name>]: ...`).

use std::path::Path;

use reqwest::Url;

use crate::config::SourceDecl;
use crate::error::{Error, Result};
use crate::secret::SecretRef;

/// Where source `decl` keeps the secret `what` (`password`, `client_secret`,
/// ...): its `<what>_env` or its `<what>_file`, a relative file taken from
/// the config file's folder. Only the place is read, never the value.
///
/// # Errors
/// When both or neither of the two keys are set.
pub(crate) fn secret(
    decl: &SourceDecl,
    what: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<SecretRef> {
    SecretRef::from_pair(what, env, file, decl.base_dir())
        .map_err(|e| Error::config(format!("[sources.{}]: {e}", decl.name)))
}

/// Source `decl`'s `base_url`, without a trailing `/` (request paths are
/// appended to it).
///
/// # Errors
/// When it is not a URL; the message shows `example`, when given, as one
/// of the right form.
pub(crate) fn base_url(decl: &SourceDecl, url: &str, example: Option<&str>) -> Result<String> {
    if Url::parse(url).is_err() {
        let example = example.map(|e| format!(" (e.g. {e})")).unwrap_or_default();
        return Err(Error::config(format!(
            "[sources.{}]: `base_url` is not a URL{example}",
            decl.name
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}
