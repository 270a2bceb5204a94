//! auditpack collects compliance evidence for co-managed IT, judges it against
//! HIPAA, PCI DSS and SOC 2 controls with an owning party on every control, and
//! packages it as a signed, hashed bag an auditor verifies offline.
//!
//! The flow runs one way: [`collect`] (async, network) writes raw evidence and
//! a custody log into a run folder ([`evidence`]); [`facts`] normalises it;
//! [`evaluate`] judges it against [`catalog`] with [`checks`]; [`report`]
//! renders it; [`package`] bags and signs it. Everything after collection is
//! pure and deterministic for a given `as_of`.

pub mod catalog;
pub mod checks;
pub mod collect;
pub mod commands;
pub mod config;
pub mod demo;
pub mod error;
pub mod evaluate;
pub mod evidence;
pub mod facts;
pub mod package;
pub mod pipeline;
pub mod report;
pub mod secret;
pub mod simulate;

pub use error::{Error, ErrorKind, Result};
