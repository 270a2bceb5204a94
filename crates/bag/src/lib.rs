//! Audit packages: BagIt 1.0 bags with SHA-256 manifests and an OpenSSH
//! signature (SSHSIG) over each tag manifest, verifiable with `ssh-keygen -Y
//! verify` and `sha256sum -c` alone, as a folder or a reproducible `.zip`,
//! optionally with an RFC 3161 timestamp over the signature. A package is
//! valid only if a valid signature covers every file in it (see `cover`).
//!
//! This crate knows bags, not compliance: it writes and verifies packages,
//! signs them, hashes their files and zips them. An auditor's own tool can
//! depend on it alone. Asking a Time-Stamp Authority for a token needs the
//! network and sits behind the `tsa-client` feature; checking a token that a
//! package carries does not.
//!
//! Checks that read the payload's meaning (`auditpack verify --reevaluate`)
//! plug in through [`PayloadCheck`]; they live above this crate.

mod archive;
pub mod atomic;
mod bag;
#[cfg(target_os = "linux")]
mod batched;
mod cover;
mod error;
mod hash;
mod known_size;
mod lanes;
mod link;
mod parallel;
mod reader;
mod recorded;
mod remote;
mod sign;
mod timestamp;
mod verify;

pub use archive::{write_zip, zip_path};
pub use bag::{write_bag, write_bag_with, BagInfo, BagOptions, Durability};
pub use error::{Error, ErrorKind, Result};
pub use hash::{hashing_method, Algorithm};
pub use link::Payload;
pub use reader::{read_zipped_file, Hashed, PackageReader};
pub use recorded::Recorded;
pub use remote::RangeSource;
pub use sign::{generate_key, validate_identity, KeyPair, Signer};
#[cfg(feature = "tsa-client")]
pub use timestamp::TimestampAuthority;
pub use timestamp::{Stamp, TimestampInfo, TIMESTAMP_FILE};
pub use verify::{
    parse_manifest, verify, verify_remote, verify_with, verify_zip_bytes, Manifest, PayloadCheck,
    VerifyOptions, VerifyReport,
};

/// The SSHSIG namespace of package signatures. Fixed: auditors pass it to
/// `ssh-keygen -Y verify -n`.
pub const NAMESPACE: &str = "package-v1@auditpack.dev";

/// The signature file, beside the tag manifest it signs.
pub const SIGNATURE_FILE: &str = "tagmanifest-sha256.txt.sig";

/// The tool name and version written into `bag-info.txt` (and sent as the
/// user agent to a Time-Stamp Authority).
pub fn tool_version() -> String {
    format!("auditpack {}", env!("CARGO_PKG_VERSION"))
}
