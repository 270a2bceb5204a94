//! The organisation's `exceptions.toml` (accepted risk), as a run takes it:
//! found from the config, validated before anything is collected, and
//! copied byte for byte into the run folder as `inputs/exceptions.toml`
//! (hashed in the custody log and so in the signed package), from where
//! judging the run, and `verify --reevaluate` later, apply it. The format
//! and the rules are in [`crate::exceptions`].
//!
//! Which file: `[organisation] exceptions = "path"` (relative to the
//! config; an error when it does not exist), else `exceptions.toml` beside
//! the config when there is one, else none.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::evidence::EvidenceWriter;
use crate::exceptions::Exceptions;
use crate::judge::EXCEPTIONS_INPUT;

/// The exceptions a run applies, with the file they came from.
#[derive(Clone, Debug)]
pub struct ExceptionsInput {
    /// The file they were read from.
    pub path: PathBuf,
    text: String,
    /// The validated exceptions.
    pub exceptions: Exceptions,
}

/// The exceptions file a config names or implies, if any.
///
/// # Errors
/// When `[organisation] exceptions` names a file that does not exist.
pub fn exceptions_path(config: &Config) -> Result<Option<PathBuf>> {
    if let Some(path) = &config.organisation.exceptions {
        if !path.is_file() {
            return Err(Error::config(format!(
                "{}: [organisation] exceptions names {}, which does not exist",
                config.path.display(),
                path.display()
            )));
        }
        return Ok(Some(path.clone()));
    }
    let beside = config
        .path
        .parent()
        .unwrap_or(Path::new("."))
        .join("exceptions.toml");
    Ok(beside.is_file().then_some(beside))
}

/// Read and validate the config's exceptions against the catalog and the
/// organisation's frameworks, judged at `as_of` (an expiry before it is an
/// error). `None` when the organisation has no exceptions file.
///
/// # Errors
/// When the file cannot be read, or is invalid: every message names the
/// file and line.
pub fn load(
    config: &Config,
    catalog: &Catalog,
    as_of: DateTime<Utc>,
) -> Result<Option<ExceptionsInput>> {
    let Some(path) = exceptions_path(config)? else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
    let exceptions = Exceptions::parse(
        &text,
        &path.display().to_string(),
        catalog,
        &config.organisation.frameworks,
        as_of,
    )?;
    Ok(Some(ExceptionsInput {
        path,
        text,
        exceptions,
    }))
}

impl ExceptionsInput {
    /// Copy the file, byte for byte, into the run folder as
    /// `inputs/exceptions.toml`, with a custody entry.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn store(&self, evidence: &EvidenceWriter) -> Result<()> {
        let origin = crate::sanitize::terminal_safe(&self.path.display().to_string());
        evidence.write_file(
            EXCEPTIONS_INPUT,
            "exceptions",
            "exceptions",
            "exceptions",
            &origin,
            self.text.as_bytes(),
        )?;
        Ok(())
    }
}
