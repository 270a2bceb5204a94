//! Feeds arbitrary bytes to the parsers of untrusted package input: a BagIt
//! manifest (both digest lengths) and a whole zipped package, which walks the
//! zip's central directory, checks every entry name, type and size, and reads
//! the tag files and manifests inside. None of it may panic, hang or allocate
//! without bound.
#![no_main]

use auditpack::package::{parse_manifest, verify_zip_bytes, Algorithm};
use libfuzzer_sys::fuzz_target;

/// Any well-formed allowed_signers line; the key does not matter here.
const SIGNERS: &str = "fuzz@auditpack.example namespaces=\"package-v1@auditpack.dev\" \
    ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMXuxl7tPf3ZCuJk4Tu3FZ5lN4hWGD/HvuMdR1aKMRyO\n";

fuzz_target!(|data: &[u8]| {
    let _ = parse_manifest("manifest-sha256.txt", data, Algorithm::Sha256);
    let _ = parse_manifest("manifest-sha512.txt", data, Algorithm::Sha512);
    let _ = verify_zip_bytes(data, SIGNERS, Some("fuzz@auditpack.example"));
});
