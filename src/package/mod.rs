//! Audit packages: the [`auditpack_bag`] crate (BagIt writing, signing,
//! timestamps, zips, verification), plus what only the application knows:
//! loading the signing key the config names, and re-deriving a package's
//! conclusions from its evidence (`verify --reevaluate`).

mod reevaluate;

pub use auditpack_bag::{
    generate_key, hashing_method, parse_manifest, read_zipped_file, tool_version,
    validate_identity, verify, verify_remote, verify_with, verify_zip_bytes, write_bag,
    write_bag_with, write_zip, zip_path, Algorithm, BagInfo, BagOptions, Durability, KeyPair,
    Manifest, PackageReader, Payload, PayloadCheck, RangeSource, Recorded, Signer, Stamp,
    TimestampAuthority, TimestampInfo, VerifyOptions, VerifyReport, NAMESPACE, SIGNATURE_FILE,
    TIMESTAMP_FILE,
};
pub use reevaluate::Reevaluation;

use ssh_key::PrivateKey;

use crate::config::{KeySource, Signing};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::secret::Secret;

/// The SHA-256 of every evidence file as the custody log of `run_dir`
/// recorded it when the file was written, with the file system's stamp of
/// it then, for [`BagOptions::recorded`]. Entries without a stamp (older
/// logs) are left out, and so is everything when the log cannot be read:
/// those files are hashed again.
pub fn recorded_hashes(run_dir: &std::path::Path) -> std::collections::BTreeMap<String, Recorded> {
    let entries = crate::evidence::read_custody(&run_dir.join("custody.jsonl")).unwrap_or_default();
    entries
        .into_iter()
        .filter_map(|entry| {
            let stat = entry.stat?;
            Some((
                entry.path,
                Recorded {
                    sha256: entry.sha256,
                    size: entry.bytes,
                    dev: stat.dev,
                    ino: stat.ino,
                    mtime: stat.mtime,
                    mtime_nsec: stat.mtime_nsec,
                },
            ))
        })
        .collect()
}

/// Load the key named by `[signing]`, decrypting it if it has a passphrase, and
/// have its signatures timestamped when `tsa_url` is set.
///
/// # Errors
/// When the key is missing, unreadable, not Ed25519, or the passphrase is wrong.
pub fn load_signer(signing: &Signing) -> Result<Signer> {
    let (pem, origin) = match &signing.key {
        KeySource::File(path) => (
            Secret::new(
                std::fs::read_to_string(crate::secret::secret_file(path))
                    .context(|| format!("cannot read signing key {}", path.display()))?,
            ),
            path.display().to_string(),
        ),
        KeySource::Env(var) => (
            Secret::new(std::env::var(var).map_err(|_| {
                Error::new(
                    ErrorKind::Auth,
                    format!("environment variable {var} (signing key) is not set"),
                )
            })?),
            format!("environment variable {var}"),
        ),
    };
    let mut key = PrivateKey::from_openssh(pem.expose())
        .context(|| format!("{origin} is not an OpenSSH private key"))?;
    if key.is_encrypted() {
        let Some(passphrase) = &signing.passphrase else {
            return Err(Error::new(
                ErrorKind::Auth,
                format!("signing key {origin} is passphrase-protected; set passphrase_env or passphrase_file"),
            ));
        };
        let passphrase = passphrase.resolve()?;
        key = key.decrypt(passphrase.expose()).map_err(|_| {
            Error::new(
                ErrorKind::Auth,
                format!("wrong passphrase for signing key {origin}"),
            )
        })?;
    }
    let signer = Signer::new(key, &signing.identity)?;
    match &signing.tsa_url {
        Some(url) => Ok(signer.with_timestamps(TimestampAuthority::new(url)?)),
        None => Ok(signer),
    }
}
