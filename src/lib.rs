//! auditpack collects compliance evidence for co-managed IT, judges it against
//! HIPAA, PCI DSS and SOC 2 controls with an owning party on every control, and
//! packages it as a signed, hashed bag an auditor verifies offline.
//!
//! The flow runs one way: each source in [`sources`] collects through the
//! shared layer in [`collect`] (async, network), writing raw evidence and a
//! custody log into a run folder ([`evidence`]); [`judge`] normalises it into
//! [`facts`] with each source's normaliser and [`evaluate`]s it against the
//! [`catalog`] with the [`checks`]; [`report`] renders it; [`package`] bags
//! and signs it; [`pipeline`] runs the whole for one organisation. Everything
//! after collection is pure and deterministic for a given `as_of`.
//!
//! The judging core is the `auditpack-core` crate and the package format the
//! `auditpack-bag` crate; their modules are re-exported here under the names
//! the rest of the application uses.

/// mimalloc for every binary built on this crate (the command, its benchmarks
/// and tests): judging a large organisation makes and frees millions of
/// small strings across threads, which glibc's allocator serves markedly
/// slower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod alert;
pub mod collect;
pub mod commands;
pub mod config;
pub mod demo;
pub mod error;
pub mod evidence;
pub mod fleet;
pub mod history;
pub mod judge;
pub mod package;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod sanitize;
pub mod secret;
pub mod simulate;
pub mod sources;
pub mod store;
pub mod trends;

pub use auditpack_core::{catalog, checks, evaluate, exceptions, facts, policy};

pub use error::{Error, ErrorKind, Result};
