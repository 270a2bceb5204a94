//! Audit packages: BagIt 1.0 bags with SHA-256 manifests and an OpenSSH
//! signature (SSHSIG) over each tag manifest, verifiable with `ssh-keygen -Y
//! verify` and `sha256sum -c` alone, as a folder or a reproducible `.zip`,
//! optionally with an RFC 3161 timestamp over the signature. A package is
//! valid only if a valid signature covers every file in it.

mod archive;
mod bag;
mod cover;
mod hash;
mod lanes;
mod reader;
mod reevaluate;
mod sign;
mod timestamp;
mod verify;

pub use archive::{write_zip, zip_path};
pub use bag::{write_bag, write_bag_with, BagInfo, BagOptions, Durability};
pub use hash::{hashing_method, Algorithm};
pub use sign::{generate_key, KeyPair, Signer};
pub use timestamp::{TimestampAuthority, TimestampInfo, TIMESTAMP_FILE};
pub use verify::{
    parse_manifest, verify, verify_with, verify_zip_bytes, Manifest, Reevaluate, VerifyOptions,
    VerifyReport,
};

/// The SSHSIG namespace of package signatures. Fixed: auditors pass it to
/// `ssh-keygen -Y verify -n`.
pub const NAMESPACE: &str = "package-v1@auditpack.dev";

/// The signature file, beside the SHA-256 tag manifest it signs (a SHA-512
/// tag manifest has its own, `tagmanifest-sha512.txt.sig`).
pub const SIGNATURE_FILE: &str = "tagmanifest-sha256.txt.sig";
