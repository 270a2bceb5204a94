//! Secrets: resolved only from environment variables or files, and held in a
//! type that cannot print them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// A secret value. `Debug` and `Display` print `[redacted]`; the value is only
/// reachable through [`Secret::expose`], which call sites use to put it on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value that must never be printed.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for an HTTP form or header. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from. The config file names the place, never the value.
#[derive(Clone, Debug)]
pub enum SecretRef {
    /// An environment variable, by name.
    Env(String),
    /// A file whose content (trailing newline trimmed) is the secret.
    File(PathBuf),
}

impl SecretRef {
    /// Pick the one reference a source gives for `what` (`client_secret`, `api_key`...).
    ///
    /// # Errors
    /// When both or neither of `<what>_env` and `<what>_file` are set.
    pub fn from_pair(
        what: &str,
        env: Option<&str>,
        file: Option<&Path>,
        base: &Path,
    ) -> Result<SecretRef> {
        match (env, file) {
            (Some(var), None) => Ok(SecretRef::Env(var.to_owned())),
            (None, Some(path)) => Ok(SecretRef::File(base.join(path))),
            (Some(_), Some(_)) => Err(Error::config(format!(
                "set only one of `{what}_env` and `{what}_file`"
            ))),
            (None, None) => Err(Error::config(format!(
                "missing `{what}_env` (an environment variable holding the secret) or `{what}_file` (a file holding it)"
            ))),
        }
    }

    /// Read the secret.
    ///
    /// # Errors
    /// When the variable is unset or empty, or the file cannot be read or is empty.
    /// The message names the variable or file, never the value.
    pub fn resolve(&self) -> Result<Secret> {
        let value = match self {
            SecretRef::Env(var) => std::env::var(var).map_err(|_| {
                Error::new(
                    ErrorKind::Auth,
                    format!("environment variable {var} is not set (it should hold the secret)"),
                )
            })?,
            SecretRef::File(path) => std::fs::read_to_string(secret_file(path)).map_err(|e| {
                Error::new(
                    ErrorKind::Auth,
                    format!("cannot read secret file {}: {e}", path.display()),
                )
            })?,
        };
        let value = value.trim_end_matches(['\r', '\n']).to_owned();
        if value.is_empty() {
            return Err(Error::new(
                ErrorKind::Auth,
                format!("{} is empty", self.describe()),
            ));
        }
        Ok(Secret(value))
    }

    /// The config key that names this secret, from its stem (`client_secret`
    /// gives `client_secret_env` or `client_secret_file`).
    pub fn key(&self, stem: &str) -> String {
        match self {
            SecretRef::Env(_) => format!("{stem}_env"),
            SecretRef::File(_) => format!("{stem}_file"),
        }
    }

    /// Where the secret lives, for messages.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(var) => format!("environment variable {var}"),
            SecretRef::File(path) => format!("secret file {}", path.display()),
        }
    }
}

/// The variable systemd sets, for a service with `LoadCredential=`, to the
/// folder holding its credentials.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// The credential name `auditpack schedule systemd` gives the secret file
/// `path` in its `LoadCredential=` lines: the file's name (characters other
/// than letters, digits, `.`, `_` and `-` replaced) and 12 hex digits of the
/// SHA-256 of its absolute path, so that two files of one name differ.
pub fn credential_name(path: &Path) -> String {
    use sha2::Digest as _;
    let absolute = lexical_absolute(path);
    let digest = sha2::Sha256::digest(absolute.as_os_str().as_encoded_bytes());
    let stem: String = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let stem = stem.trim_start_matches('.');
    let stem = if stem.is_empty() { "secret" } else { stem };
    format!("{stem}-{}", hex::encode(&digest[..6]))
}

/// `path` made absolute (against the working folder) with `.` and `..`
/// folded away lexically, as systemd wants credential sources written.
pub fn lexical_absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.parent().is_some() {
                    out.pop();
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Where the secret file `path` is read from: under a systemd service with
/// `LoadCredential=` (`$CREDENTIALS_DIRECTORY` set), the credential named
/// [`credential_name`] when it is there; otherwise `path` itself. So one
/// config works both from a shell and under the units
/// `auditpack schedule systemd` prints.
pub fn secret_file(path: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os(CREDENTIALS_DIRECTORY) {
        let credential = Path::new(&dir).join(credential_name(path));
        if credential.is_file() {
            return credential;
        }
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("canary-123");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "canary-123");
    }

    #[test]
    fn credential_names_are_file_names_with_a_path_digest() {
        let a = credential_name(Path::new("/etc/auditpack/graph.secret"));
        let b = credential_name(Path::new("/etc/auditpack/./other/../graph.secret"));
        let c = credential_name(Path::new("/srv/clients/a/graph.secret"));
        assert!(a.starts_with("graph.secret-") && a.len() == "graph.secret-".len() + 12);
        assert_ne!(a, c, "same name, other folder");
        assert_eq!(a, b, "`.` and `..` are folded away");
        assert_eq!(
            credential_name(Path::new("/k/.hidden key$")),
            credential_name(Path::new("/k/./.hidden key$"))
        );
        assert!(credential_name(Path::new("/k/.hidden key$")).starts_with("hidden_key_-"));
    }
}
