//! The crate's error type: a kind a caller can match on, plus the context a
//! person needs to act (which file, which key, which authority).

use std::fmt;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for callers that branch on it. Messages live in [`Error`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is invalid (a Time-Stamp Authority URL that is not http(s)).
    Config,
    /// A file or folder could not be read or written.
    Io(std::io::Error),
    /// A key or passphrase was missing or rejected.
    Auth,
    /// A remote service (a Time-Stamp Authority) failed.
    Source,
    /// A run folder, package or input file is malformed.
    Invalid,
    /// A signing key could not be read or used.
    Key(ssh_key::Error),
}

/// An error of this crate: an [`ErrorKind`] and a message naming what failed.
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

    /// An invalid setting.
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

    /// The kind and the message, for wrapping into a caller's own error.
    pub fn into_parts(self) -> (ErrorKind, String) {
        (self.kind, self.context)
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

impl From<ssh_key::Error> for ErrorKind {
    fn from(e: ssh_key::Error) -> Self {
        ErrorKind::Key(e)
    }
}

/// Attach context to a lower-level error.
pub(crate) trait ResultExt<T> {
    /// Wrap the error with a message built only when it fails.
    fn context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<ErrorKind>> ResultExt<T> for std::result::Result<T, E> {
    fn context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::new(e.into(), f()))
    }
}
