//! The judging core of auditpack: the run folder model it reads, the facts
//! derived from raw evidence, device reconciliation across sources, the
//! control catalogs, the checks and the evaluation of controls.
//!
//! Everything here is synchronous, deterministic and free of network code:
//! the same run folder, catalog, ownership and `as_of` time always give
//! byte-identical results, which is what lets an auditor re-derive a
//! package's conclusions from its evidence. Collectors, reports and packages
//! live above this crate and depend on it, never the other way round.

pub mod catalog;
pub mod checks;
pub mod custody;
mod error;
pub mod evaluate;
pub mod exceptions;
pub mod facts;
pub mod policy;
pub mod run;

pub use error::{Error, ErrorKind, Result, ResultExt};
