//! Packages: our verify, bagit-python and stock OpenSSH all accept a fresh
//! package; tampering and foreign keys are rejected.

mod common;

use std::path::Path;
use std::process::Command;

use auditpack::package::{generate_key, verify, VerifyOptions, NAMESPACE, SIGNATURE_FILE};
use common::{Harness, IDENTITY};

fn package() -> (Harness, std::path::PathBuf) {
    let h = Harness::demo();
    let outcome = h.run(&h.config(None));
    (h, outcome.package)
}

fn check(h: &Harness, bag: &Path) -> Vec<String> {
    verify(
        bag,
        &VerifyOptions {
            allowed_signers: h.allowed_signers(),
            identity: Some(IDENTITY.into()),
        },
    )
    .expect("verify runs")
    .problems
}

#[test]
fn a_fresh_package_verifies() {
    let (h, bag) = package();
    assert_eq!(check(&h, &bag), Vec::<String>::new());
    let name = bag.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(name.starts_with("auditpack-test-clinic-"), "{name}");
    let leftovers: Vec<_> = std::fs::read_dir(bag.parent().expect("parent"))
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "no staging folder is left behind");
}

#[test]
fn a_flipped_byte_is_found() {
    let (h, bag) = package();
    let target = bag.join("data/evidence/m365/users/page-00001.json");
    let mut bytes = std::fs::read(&target).expect("read");
    bytes[10] ^= 0x01;
    std::fs::write(&target, bytes).expect("write");
    let problems = check(&h, &bag);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("users/page-00001.json") && p.contains("does not match")),
        "{problems:?}"
    );
}

#[test]
fn added_removed_and_edited_files_are_all_reported() {
    let (h, bag) = package();
    std::fs::write(bag.join("data/extra.txt"), "planted").expect("write");
    std::fs::remove_file(bag.join("data/results/findings.csv")).expect("remove");
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).expect("read");
    std::fs::write(
        bag.join("bag-info.txt"),
        info.replace("Test Clinic", "Other Clinic"),
    )
    .expect("write");
    let problems = check(&h, &bag);
    for needle in [
        "data/extra.txt: present but not listed",
        "findings.csv: listed in the manifest but missing",
        "bag-info.txt: SHA-256",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle} not in {problems:?}"
        );
    }
}

#[test]
fn a_foreign_key_is_rejected() {
    let (h, bag) = package();
    let other = tempfile::tempdir().expect("tempdir");
    let pair = generate_key(&other.path().join("k"), IDENTITY, None).expect("keygen");
    let signers = other.path().join("allowed_signers");
    std::fs::write(&signers, pair.signer.allowed_signers_line().expect("line")).expect("write");
    let problems = verify(
        &bag,
        &VerifyOptions {
            allowed_signers: signers,
            identity: Some(IDENTITY.into()),
        },
    )
    .expect("verify runs")
    .problems;
    assert!(
        problems.iter().any(|p| p.contains("does not allow")),
        "{problems:?}"
    );

    // Re-signing an edited tag manifest with a foreign key does not help either.
    let tag = bag.join("tagmanifest-sha256.txt");
    let forged = pair
        .signer
        .sign(&std::fs::read(&tag).expect("read"))
        .expect("sign");
    std::fs::write(bag.join(SIGNATURE_FILE), forged).expect("write");
    assert!(!check(&h, &bag).is_empty());
}

#[test]
fn the_wrong_identity_is_rejected() {
    let (h, bag) = package();
    let problems = verify(
        &bag,
        &VerifyOptions {
            allowed_signers: h.allowed_signers(),
            identity: Some("mallory@x".into()),
        },
    )
    .expect("verify runs")
    .problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("not allowed for identity")),
        "{problems:?}"
    );
}

fn tool(name: &str) -> Command {
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
            .is_ok_and(|o| o.status.success()),
        "{name} is not installed; scripts/test.sh installs it"
    );
    Command::new(name)
}

#[test]
fn bagit_python_accepts_the_package() {
    let (_h, bag) = package();
    let out = tool("python3")
        .args(["-m", "bagit", "--validate"])
        .arg(&bag)
        .output()
        .expect("bagit-python runs");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("No module named"),
        "bagit-python is not installed; scripts/test.sh installs it"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is valid"));
}

#[test]
fn ssh_keygen_and_sha256sum_accept_the_package() {
    let (h, bag) = package();
    let tag = std::fs::File::open(bag.join("tagmanifest-sha256.txt")).expect("open");
    let out = tool("ssh-keygen")
        .current_dir(&bag)
        .args(["-Y", "verify", "-f"])
        .arg(h.allowed_signers())
        .args(["-I", IDENTITY, "-n", NAMESPACE, "-s", SIGNATURE_FILE])
        .stdin(tag)
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for manifest in ["tagmanifest-sha256.txt", "manifest-sha256.txt"] {
        let out = tool("sha256sum")
            .current_dir(&bag)
            .args(["--quiet", "-c", manifest])
            .output()
            .expect("sha256sum runs");
        assert!(
            out.status.success(),
            "{manifest}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn ssh_keygen_rejects_a_tampered_tag_manifest() {
    let (h, bag) = package();
    let tampered = std::fs::read_to_string(bag.join("tagmanifest-sha256.txt"))
        .expect("read")
        .replacen('a', "b", 1);
    let mut child = tool("ssh-keygen")
        .current_dir(&bag)
        .args(["-Y", "verify", "-f"])
        .arg(h.allowed_signers())
        .args(["-I", IDENTITY, "-n", NAMESPACE, "-s", SIGNATURE_FILE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(tampered.as_bytes())
        .expect("write");
    assert!(!child.wait().expect("wait").success());
}
