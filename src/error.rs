//! The library's error type: a kind a caller can match on, plus the context a
//! person needs to act (which file, which source, which key).

use std::fmt;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for callers that branch on it. Messages live in [`Error`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid (unknown key, literal secret, bad value).
    Config,
    /// A file or directory could not be read or written.
    Io(std::io::Error),
    /// A JSON document could not be parsed or written.
    Json(serde_json::Error),
    /// A credential was missing or rejected.
    Auth,
    /// A remote source failed in a way that stops the whole source.
    Source,
    /// A control catalog or ownership template is invalid.
    Catalog,
    /// A run folder or package is malformed.
    Invalid,
    /// A signing key could not be read or used.
    Key(ssh_key::Error),
}

/// A library error: a [`ErrorKind`] and a message naming what failed.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    context: String,
}

impl Error {
    /// An error of `kind` described by `context`.
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        Error {
            kind,
            context: context.into(),
        }
    }

    /// A configuration error.
    pub fn config(context: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, context)
    }

    /// A malformed run folder, package or input file.
    pub fn invalid(context: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid, context)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            ErrorKind::Json(e) => Some(e),
            ErrorKind::Key(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ErrorKind {
    fn from(e: std::io::Error) -> Self {
        ErrorKind::Io(e)
    }
}

impl From<serde_json::Error> for ErrorKind {
    fn from(e: serde_json::Error) -> Self {
        ErrorKind::Json(e)
    }
}

impl From<ssh_key::Error> for ErrorKind {
    fn from(e: ssh_key::Error) -> Self {
        ErrorKind::Key(e)
    }
}

impl From<auditpack_core::Error> for Error {
    fn from(e: auditpack_core::Error) -> Self {
        use auditpack_core::ErrorKind as Core;
        let (kind, context) = e.into_parts();
        let kind = match kind {
            Core::Config => ErrorKind::Config,
            Core::Io(e) => ErrorKind::Io(e),
            Core::Json(e) => ErrorKind::Json(e),
            Core::Catalog => ErrorKind::Catalog,
            _ => ErrorKind::Invalid,
        };
        Error::new(kind, context)
    }
}

impl From<auditpack_bag::Error> for Error {
    fn from(e: auditpack_bag::Error) -> Self {
        use auditpack_bag::ErrorKind as Bag;
        let (kind, context) = e.into_parts();
        let kind = match kind {
            Bag::Config => ErrorKind::Config,
            Bag::Io(e) => ErrorKind::Io(e),
            Bag::Auth => ErrorKind::Auth,
            Bag::Source => ErrorKind::Source,
            Bag::Key(e) => ErrorKind::Key(e),
            _ => ErrorKind::Invalid,
        };
        Error::new(kind, context)
    }
}

/// Attach context to a lower-level error.
pub trait ResultExt<T> {
    /// Wrap the error with a message built only when it fails.
    fn context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<ErrorKind>> ResultExt<T> for std::result::Result<T, E> {
    fn context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::new(e.into(), f()))
    }
}
