//! Declarative backup collectors: any backup product whose REST API a spec
//! file describes (`kind = "backup"`; the format is
//! [`super::rmm_spec::spec`] with the backup tables of
//! [`super::rmm_spec::backup_map`]), with no code of its own.
//!
//! Collection is the spec engine of [`super::rmm_spec`] (auth, endpoints,
//! paging, per-device requests, the spec stored as dataset `spec`); only the
//! mapping into facts differs ([`normalise`]: protected systems, their runs,
//! copies and restore tests).
//!
//! Config (`[sources.<name>]`): `type = "backup-spec"` with `spec = "<built-in
//! id>"` or `spec_file = "path"`, or `type = "<built-in id>"` (e.g.
//! `acronis-cyber-protect`); `base_url`; the credential the spec's auth
//! style names (`client_id` plus `client_secret_env`/`client_secret_file`
//! for OAuth2 client credentials); `requests_per_minute`.
//!
//! Built-in specs live in `collectors/backup/`; `README.md` in this folder
//! lists the vendor documentation each one relies on.

mod normalise;
pub mod simulate;

use super::rmm_spec::{self, spec::SpecKind};
use super::Source;
use crate::collect::Collector;
use crate::config::SourceDecl;
use crate::error::Result;

/// Registry entry.
pub const SOURCE: Source = Source {
    source_type: "backup-spec",
    summary: "any backup product described by a spec file (collectors/backup/*.toml or your own)",
    build,
    normalise: normalise::normalise,
};

fn build(decl: &SourceDecl) -> Result<Box<dyn Collector>> {
    rmm_spec::build(decl, SpecKind::Backup)
}
