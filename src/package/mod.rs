//! Audit packages: BagIt 1.0 bags with SHA-256 manifests and an OpenSSH
//! signature (SSHSIG) over the tag manifest, verifiable with `ssh-keygen -Y
//! verify` and `sha256sum -c` alone.

mod bag;
mod hash;
mod sign;
mod verify;

pub use bag::{write_bag, BagInfo};
pub use sign::{generate_key, KeyPair, Signer};
pub use verify::{verify, VerifyOptions, VerifyReport};

/// The SSHSIG namespace of package signatures. Fixed: auditors pass it to
/// `ssh-keygen -Y verify -n`.
pub const NAMESPACE: &str = "package-v1@auditpack.dev";

/// The signature file, beside the tag manifest it signs.
pub const SIGNATURE_FILE: &str = "tagmanifest-sha256.txt.sig";
