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
            SecretRef::File(path) => std::fs::read_to_string(path).map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("canary-123");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "canary-123");
    }
}
