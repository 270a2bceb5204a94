//! `AUDITPACK_SHA_NI=off` switches SHA-NI off for the whole process, on any
//! CPU, and the digests stay the same. Alone in its test binary: the switch
//! is read once, when SHA-NI is first asked about.

use sha2::Digest;

#[test]
fn switched_off_sha_ni_is_never_used_and_digests_stay_the_same() {
    std::env::set_var(sha256x::SHA_NI_SWITCH, "off");
    assert!(!sha256x::has_sha_instructions());
    assert!(sha256x::Kernel::sha_ni().is_none());
    assert!(sha256x::Kernel::available()
        .iter()
        .all(|k| !k.name().contains("sha")));
    assert!(!sha256x::Kernel::for_streams(2).name().contains("sha"));

    let messages: Vec<Vec<u8>> = (0..40usize)
        .map(|n| (0..n * 37).map(|i| (i % 251) as u8).collect())
        .collect();
    let slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    for (digest, message) in sha256x::digest_many(&slices).iter().zip(&messages) {
        assert_eq!(digest[..], sha2::Sha256::digest(message)[..]);
    }
}
