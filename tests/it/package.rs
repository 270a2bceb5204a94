//! Packages: our verify, bagit-python and stock OpenSSH all accept a fresh
//! package; tampering and foreign keys are rejected.

use crate::common;

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
            ..VerifyOptions::default()
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
        "findings.csv: listed in manifest-sha256.txt but missing",
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
            ..VerifyOptions::default()
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
            ..VerifyOptions::default()
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

// --- zip packages -----------------------------------------------------------

use std::io::Write as _;

use auditpack::config::{KeySource, Signing};
use auditpack::package::{
    load_signer, verify_with, verify_zip_bytes, write_bag, write_zip, zip_path, BagInfo,
    PayloadCheck, Reevaluation, Signer,
};
use auditpack::secret::SecretRef;
use zip::write::SimpleFileOptions;

fn check_with(
    h: &Harness,
    package: &Path,
    reevaluate: Option<&dyn PayloadCheck>,
) -> auditpack::package::VerifyReport {
    verify_with(
        package,
        &VerifyOptions {
            allowed_signers: h.allowed_signers(),
            identity: Some(IDENTITY.into()),
            ..VerifyOptions::default()
        },
        reevaluate,
    )
    .expect("verify runs")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn zip_package() -> (Harness, std::path::PathBuf, std::path::PathBuf) {
    let h = Harness::demo();
    let outcome = h.run(&h.config(None));
    assert_eq!(outcome.archive, zip_path(&outcome.package));
    (h, outcome.package, outcome.archive)
}

#[test]
fn the_zip_verifies_in_place_and_is_reproducible() {
    let (h, bag, archive) = zip_package();
    let report = check_with(&h, &archive, None);
    assert_eq!(report.problems, Vec::<String>::new());
    assert_eq!(report.signer.as_deref(), Some(IDENTITY));
    let folder = check_with(&h, &bag, None);
    assert_eq!((report.files, report.bytes), (folder.files, folder.bytes));

    // The same bag, copied elsewhere with fresh timestamps and zipped again,
    // gives the same bytes.
    let other = tempfile::tempdir().expect("tempdir");
    let copy = other.path().join(bag.file_name().expect("name"));
    copy_tree(&bag, &copy);
    let again = write_zip(&copy).expect("zip again");
    assert_eq!(
        std::fs::read(&archive).expect("read"),
        std::fs::read(&again).expect("read"),
        "two zips of the same bag differ"
    );
    assert!(
        write_zip(&copy).is_err(),
        "an existing zip is never overwritten"
    );

    // One top folder, sorted entries, fixed time and modes.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&archive).expect("open")).expect("zip");
    let top = format!(
        "{}/",
        bag.file_name().and_then(|n| n.to_str()).expect("name")
    );
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names[0], top);
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).expect("entry");
        assert!(entry.name().starts_with(&top));
        let mode = entry.unix_mode().expect("mode");
        assert!(
            mode == 0o100644 || mode == 0o040755,
            "{} {mode:o}",
            entry.name()
        );
        assert_eq!(entry.last_modified(), Some(zip::DateTime::default()));
    }
    let leftovers: Vec<_> = std::fs::read_dir(archive.parent().expect("parent"))
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

/// The package zip rebuilt entry by entry, with `edit` adding or changing entries.
fn rebuild(
    archive: &Path,
    edit: impl FnOnce(&mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>, &str),
) -> Vec<u8> {
    let mut source =
        zip::ZipArchive::new(std::fs::File::open(archive).expect("open")).expect("zip");
    let top = source
        .file_names()
        .min()
        .expect("entries")
        .trim_end_matches('/')
        .to_owned();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..source.len() {
        let entry = source.by_index_raw(i).expect("entry");
        if entry.is_dir() {
            let name = entry.name().to_owned();
            drop(entry);
            out.add_directory(name, SimpleFileOptions::default())
                .expect("folder");
        } else {
            out.raw_copy_file(entry).expect("copy");
        }
    }
    edit(&mut out, &top);
    out.finish().expect("finish").into_inner()
}

fn zip_problems(h: &Harness, bytes: &[u8]) -> Vec<String> {
    let signers = std::fs::read_to_string(h.allowed_signers()).expect("signers");
    verify_zip_bytes(bytes, &signers, Some(IDENTITY)).problems
}

fn assert_problem(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "{needle:?} not in {problems:?}"
    );
}

#[test]
fn unsafe_zip_entries_are_rejected() {
    let (h, _bag, archive) = zip_package();
    let good = rebuild(&archive, |_, _| {});
    assert_eq!(zip_problems(&h, &good), Vec::<String>::new());
    let file = SimpleFileOptions::default();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "absolute path",
            rebuild(&archive, |z, _| {
                z.start_file("/etc/passwd", file).expect("start");
            }),
        ),
        (
            "`..` in the path",
            rebuild(&archive, |z, top| {
                z.start_file(format!("{top}/data/../../evil"), file)
                    .expect("start");
            }),
        ),
        (
            ": a symlink",
            rebuild(&archive, |z, top| {
                z.add_symlink(format!("{top}/data/link"), "/etc/passwd", file)
                    .expect("symlink");
            }),
        ),
        (
            "outside the single top-level folder",
            rebuild(&archive, |z, _| {
                z.start_file("other/data/x", file).expect("start");
                z.write_all(b"x").expect("write");
            }),
        ),
    ];
    for (needle, bytes) in cases {
        assert_problem(&zip_problems(&h, &bytes), needle);
    }
}

/// Replace every occurrence of `from` with `to` (same length) in `bytes`.
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut found = false;
    for i in 0..bytes.len().saturating_sub(from.len() - 1) {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            found = true;
        }
    }
    assert!(found, "pattern not found");
}

/// Where the central directory header of the entry whose name ends in `name` starts.
fn central_header(bytes: &[u8], name: &[u8]) -> usize {
    let at = (0..bytes.len() - name.len())
        .rev()
        .find(|&i| &bytes[i..i + name.len()] == name)
        .expect("central entry");
    bytes[..at]
        .windows(4)
        .rposition(|w| w == [0x50, 0x4b, 0x01, 0x02])
        .expect("central header")
}

#[test]
fn duplicate_names_and_absurd_sizes_are_rejected() {
    let (h, _bag, archive) = zip_package();
    let file = SimpleFileOptions::default();
    let mut dup = rebuild(&archive, |z, top| {
        z.start_file(format!("{top}/data/dupAAA"), file)
            .expect("start");
        z.write_all(b"one").expect("write");
        z.start_file(format!("{top}/data/dupBBB"), file)
            .expect("start");
        z.write_all(b"two").expect("write");
    });
    patch(&mut dup, b"dupBBB", b"dupAAA");
    assert_problem(&zip_problems(&h, &dup), "duplicate");

    // A small entry whose central directory claims 3 GB: a zip bomb by ratio.
    let mut bomb = rebuild(&archive, |z, top| {
        z.start_file(format!("{top}/data/bomb"), file)
            .expect("start");
        z.write_all(&[0u8; 4096]).expect("write");
    });
    // The uncompressed size sits 24 bytes into the central header.
    let header = central_header(&bomb, b"/data/bomb");
    bomb[header + 24..header + 28].copy_from_slice(&3_000_000_000u32.to_le_bytes());
    assert_problem(&zip_problems(&h, &bomb), "absurd size");

    // An entry whose Unix mode (external attributes, +38) says FIFO.
    let mut fifo = rebuild(&archive, |z, top| {
        z.start_file(format!("{top}/data/fifo"), file)
            .expect("start");
    });
    let header = central_header(&fifo, b"/data/fifo");
    fifo[header + 38..header + 42].copy_from_slice(&(0o010_644u32 << 16).to_le_bytes());
    assert_problem(&zip_problems(&h, &fifo), "not a regular file");

    // A byte flipped inside the compressed data of an evidence file.
    let mut flipped = std::fs::read(&archive).expect("read");
    let name = b"data/evidence/m365/users/page-00001.json";
    let at = flipped
        .windows(name.len())
        .position(|w| w == name)
        .expect("local header");
    flipped[at + name.len() + 20] ^= 0x40;
    assert!(!zip_problems(&h, &flipped).is_empty());

    // Truncation and garbage are problems, not panics.
    let bytes = std::fs::read(&archive).expect("read");
    assert!(!zip_problems(&h, &bytes[..bytes.len() / 2]).is_empty());
    assert!(!zip_problems(&h, b"not a zip").is_empty());
}

#[test]
fn reevaluate_confirms_the_results_and_names_changed_controls() {
    let (h, bag, archive) = zip_package();
    for package in [&bag, &archive] {
        let report = check_with(&h, package, Some(&Reevaluation));
        assert_eq!(
            report.problems,
            Vec::<String>::new(),
            "{}",
            package.display()
        );
        assert!(
            report.reevaluated.is_some_and(|n| n > 10),
            "{:?}",
            report.reevaluated
        );
    }

    // A packaged conclusion that does not follow from the evidence.
    let path = bag.join("data/results/controls.json");
    let mut results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let changed = results["controls"]
        .as_array_mut()
        .expect("list")
        .iter_mut()
        .find(|r| r["status"] == "fail")
        .expect("a failing control in the demo");
    changed["status"] = "pass".into();
    let id = format!(
        "{} {}",
        changed["framework"].as_str().expect("framework"),
        changed["control_id"].as_str().expect("id")
    );
    std::fs::write(&path, serde_json::to_vec_pretty(&results).expect("json")).expect("write");
    let problems = check_with(&h, &bag, Some(&Reevaluation)).problems;
    assert_problem(
        &problems,
        &format!("reevaluate: {id}: status is pass in the package but fail from the evidence"),
    );
    // The package itself is never written to by re-evaluation.
    assert!(!bag.join("data/facts/facts.json.partial").exists());
}

#[test]
fn the_cli_verifies_a_zip_with_reevaluate() {
    let (h, _bag, archive) = zip_package();
    let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args([
            "verify",
            "--reevaluate",
            "--identity",
            IDENTITY,
            "--allowed-signers",
        ])
        .arg(h.allowed_signers())
        .arg(&archive)
        .output()
        .expect("auditpack runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("verify: VALID"), "{stdout}");
    assert!(
        stdout.contains("re-derived from the evidence, all identical"),
        "{stdout}"
    );

    let mut bytes = std::fs::read(&archive).expect("read");
    let n = bytes.len();
    bytes[n / 3] ^= 0xff;
    let bad = h.path().join("bad.zip");
    std::fs::write(&bad, &bytes).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(["verify", "--allowed-signers"])
        .arg(h.allowed_signers())
        .arg(&bad)
        .output()
        .expect("auditpack runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// --- safety of collection and packaging --------------------------------------

fn bag_info() -> BagInfo {
    BagInfo {
        organisation: "Test".into(),
        contact_name: None,
        contact_email: None,
        run_id: "r1".into(),
        started: "2026-01-01T00:00:00Z".into(),
        finished: "2026-01-01T00:00:01Z".into(),
        host: "host".into(),
    }
}

#[test]
fn symlinks_and_fifos_in_the_run_folder_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("evidence")).expect("mkdir");
    std::fs::write(run.join("evidence/a.json"), "{}").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", run.join("evidence/link")).expect("symlink");
    let out = dir.path().join("packages");
    let err = write_bag(&run, &out, "pkg", &bag_info(), None).expect_err("symlink refused");
    assert!(err.to_string().contains("evidence/link"), "{err}");
    assert!(!out.join("pkg").exists());

    std::fs::remove_file(run.join("evidence/link")).expect("remove");
    let fifo = run.join("evidence/fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    // Opening the FIFO would block forever; refusing it returns at once.
    let err = write_bag(&run, &out, "pkg", &bag_info(), None).expect_err("FIFO refused");
    assert!(err.to_string().contains("evidence/fifo"), "{err}");
    assert!(!out.join("pkg").exists());
    let leftovers = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "no staging folder is left behind");

    std::fs::remove_file(&fifo).expect("remove");
    let bag = write_bag(&run, &out, "pkg", &bag_info(), None).expect("clean folder packages");
    assert!(bag.join("data/evidence/a.json").is_file());
}

// --- keys -------------------------------------------------------------------

#[test]
fn passphrase_protected_keys_and_keys_from_the_environment_sign() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    let passphrase = auditpack::secret::Secret::new("correct horse".to_owned());
    let pair = generate_key(&key, IDENTITY, Some(passphrase.expose())).expect("keygen");
    let pem = std::fs::read_to_string(&key).expect("read");
    assert!(pem.contains("BEGIN OPENSSH PRIVATE KEY"));
    let line = pair.signer.allowed_signers_line().expect("line");

    let load = |key: KeySource, passphrase: Option<SecretRef>| {
        load_signer(&Signing {
            key,
            passphrase,
            identity: IDENTITY.into(),
            tsa_url: None,
        })
    };
    let err = load(KeySource::File(key.clone()), None).expect_err("needs a passphrase");
    assert!(err.to_string().contains("passphrase-protected"), "{err}");
    std::fs::write(dir.path().join("wrong"), "wrong horse\n").expect("write");
    let err = load(
        KeySource::File(key.clone()),
        Some(SecretRef::File(dir.path().join("wrong"))),
    )
    .expect_err("wrong passphrase");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    assert!(
        !err.to_string().contains("wrong horse"),
        "the passphrase never shows"
    );

    std::fs::write(dir.path().join("pass"), "correct horse\n").expect("write");
    let from_file = load(
        KeySource::File(key.clone()),
        Some(SecretRef::File(dir.path().join("pass"))),
    )
    .expect("decrypts with passphrase_file");
    assert_eq!(from_file.allowed_signers_line().expect("line"), line);

    // The key itself and its passphrase from environment variables (names
    // unique to this test, so parallel tests do not interfere).
    std::env::set_var("AUDITPACK_TEST_PKG_KEY", &pem);
    std::env::set_var("AUDITPACK_TEST_PKG_PASS", "correct horse");
    let from_env = load(
        KeySource::Env("AUDITPACK_TEST_PKG_KEY".into()),
        Some(SecretRef::Env("AUDITPACK_TEST_PKG_PASS".into())),
    )
    .expect("key from the environment");
    assert_eq!(from_env.allowed_signers_line().expect("line"), line);
    let err = load(KeySource::Env("AUDITPACK_TEST_PKG_UNSET".into()), None).expect_err("unset");
    assert!(
        err.to_string().contains("AUDITPACK_TEST_PKG_UNSET"),
        "{err}"
    );

    // A package signed with the env key verifies against the keygen line.
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(run.join("run.json"), "{}").expect("write");
    std::fs::write(run.join("custody.jsonl"), "").expect("write");
    let bag = write_bag(
        &run,
        &dir.path().join("out"),
        "pkg",
        &bag_info(),
        Some(&from_env),
    )
    .expect("package");
    std::fs::write(dir.path().join("allowed_signers"), &line).expect("write");
    let report = verify(
        &bag,
        &VerifyOptions {
            allowed_signers: dir.path().join("allowed_signers"),
            identity: Some(IDENTITY.into()),
            ..VerifyOptions::default()
        },
    )
    .expect("verify");
    assert_eq!(report.problems, Vec::<String>::new());
}

// --- a bag made by other tools ------------------------------------------------

#[test]
fn our_verify_accepts_a_bagit_python_bag_signed_by_ssh_keygen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bag = dir.path().join("bag");
    std::fs::create_dir_all(bag.join("evidence")).expect("mkdir");
    std::fs::write(bag.join("evidence/page.json"), r#"{"value":[]}"#).expect("write");
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(br#"{"value":[]}"#))
    };
    let custody = format!(
        "{}\n",
        serde_json::json!({
            "path": "evidence/page.json", "sha256": digest, "bytes": 12,
            "source": "m365", "source_type": "m365", "dataset": "users",
            "request": "GET https://graph.microsoft.com/v1.0/users", "http_status": 200,
            "collected_at": "2026-01-01T00:00:00Z", "tool": "auditpack 0.1.0"
        })
    );
    std::fs::write(bag.join("custody.jsonl"), &custody).expect("write");
    // bagit-python's defaults: SHA-256 and SHA-512 manifests.
    let out = tool("python3")
        .args(["-m", "bagit", "--processes", "2"])
        .arg(&bag)
        .output()
        .expect("bagit-python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bag.join("manifest-sha512.txt").is_file());

    // Our custody log beside the payload, added to both tag manifests with sha256sum / sha512sum.
    std::fs::write(bag.join("custody.jsonl"), &custody).expect("write");
    for (tool_name, manifest) in [
        ("sha256sum", "tagmanifest-sha256.txt"),
        ("sha512sum", "tagmanifest-sha512.txt"),
    ] {
        let line = tool(tool_name)
            .current_dir(&bag)
            .arg("custody.jsonl")
            .output()
            .expect("hash");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(bag.join(manifest))
            .expect("open");
        f.write_all(&line.stdout).expect("append");
    }
    let key = dir.path().join("id_ed25519");
    let made = tool("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", IDENTITY, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(made.success());
    // Every tag manifest signed: auditpack accepts no file that a signature
    // does not cover.
    let signed = tool("ssh-keygen")
        .current_dir(&bag)
        .args(["-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(&key)
        .args(["tagmanifest-sha256.txt", "tagmanifest-sha512.txt"])
        .output()
        .expect("ssh-keygen signs");
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let public = std::fs::read_to_string(dir.path().join("id_ed25519.pub")).expect("pub");
    let signers = dir.path().join("allowed_signers");
    std::fs::write(&signers, format!("{IDENTITY} {public}")).expect("write");

    let options = VerifyOptions {
        allowed_signers: signers,
        identity: Some(IDENTITY.into()),
        ..VerifyOptions::default()
    };
    let report = verify(&bag, &options).expect("verify");
    assert_eq!(report.problems, Vec::<String>::new());
    assert_eq!(report.files, 2);

    // The SHA-512 manifest is checked too.
    let text = std::fs::read_to_string(bag.join("manifest-sha512.txt")).expect("read");
    let first = text.chars().next().expect("digest");
    let other = if first == 'a' { 'b' } else { 'a' };
    std::fs::write(
        bag.join("manifest-sha512.txt"),
        format!("{other}{}", &text[1..]),
    )
    .expect("write");
    let problems = verify(&bag, &options).expect("verify").problems;
    assert_problem(&problems, "SHA-512 does not match the manifest");
    assert_problem(
        &problems,
        "manifest-sha512.txt: SHA-256 does not match the tag manifest",
    );
}

// --- interrupted packaging ----------------------------------------------------

/// Entries of `dir` that are not hidden staging names (`.<name>...partial`).
fn visible(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_packager_killed_mid_write_leaves_no_package_and_a_rerun_succeeds() {
    use auditpack::simulate::{SimOptions, Tenant};
    // A larger organisation in full pages (few requests, a few MB of
    // evidence): packaging takes long enough to be caught in the middle.
    let h = Harness::new(
        Tenant::synthetic(2_000, 200, chrono::Utc::now()),
        SimOptions::default(),
    );
    let config = h.signed_config_file();
    let packages = h.path().join("store/packages");
    let run = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_auditpack"));
        command
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        command
    };

    let mut child = run().spawn().expect("auditpack starts");
    let staging = loop {
        let staged = std::fs::read_dir(&packages).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| n.ends_with(".partial"))
        });
        if let Some(name) = staged {
            child.kill().expect("SIGKILL");
            break name;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("auditpack finished ({status}) before packaging could be interrupted");
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    child.wait().expect("reaped");
    assert!(staging.starts_with('.'), "staging is hidden: {staging}");
    assert_eq!(
        visible(&packages),
        Vec::<String>::new(),
        "a killed run left a package at the final path"
    );

    let out = run().output().expect("auditpack reruns");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let made = visible(&packages);
    assert_eq!(made.len(), 2, "a folder and its zip: {made:?}");
    for name in made {
        let problems = check(&h, &packages.join(&name));
        assert_eq!(problems, Vec::<String>::new(), "{name}");
    }
}

#[test]
fn staging_left_by_a_killed_run_is_removed_after_a_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("evidence")).expect("mkdir");
    std::fs::write(run.join("evidence/a.json"), "[]").expect("write");
    std::fs::write(run.join("custody.jsonl"), "").expect("write");
    let out = dir.path().join("out");
    let old = out.join(".auditpack-a-run1.x1y2.partial");
    let young = out.join(".auditpack-a-run2.z3w4.partial");
    for staging in [&old, &young] {
        std::fs::create_dir_all(staging.join("data")).expect("mkdir");
    }
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    std::fs::File::open(&old)
        .and_then(|d| d.set_modified(two_days_ago))
        .expect("age the staging folder");
    write_bag(&run, &out, "pkg", &bag_info(), None).expect("packaged");
    assert!(!old.exists(), "a day-old staging folder is removed");
    assert!(young.exists(), "a young one may be another run's work");
    assert!(out.join("pkg/bagit.txt").is_file());
}

/// A new signing key in `dir`, and options verifying against its
/// `allowed_signers` line.
fn key_in(dir: &Path) -> (Signer, VerifyOptions) {
    let pair = generate_key(&dir.join("key"), IDENTITY, None).expect("keygen");
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, pair.signer.allowed_signers_line().expect("line")).expect("write");
    let options = VerifyOptions {
        allowed_signers: signers,
        identity: Some(IDENTITY.into()),
        ..VerifyOptions::default()
    };
    (pair.signer, options)
}

#[test]
fn sha512_manifests_are_written_on_request_and_checked() {
    use auditpack::package::{write_bag_with, Algorithm, BagOptions, Durability};
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("evidence")).expect("mkdir");
    std::fs::write(run.join("evidence/a.json"), "[1,2,3]").expect("write");
    std::fs::write(run.join("custody.jsonl"), "").expect("write");
    let (signer, options) = key_in(dir.path());
    let bag = write_bag_with(
        &run,
        &dir.path().join("out"),
        "pkg",
        &bag_info(),
        Some(&signer),
        &BagOptions {
            algorithms: vec![Algorithm::Sha512],
            durability: Durability::Synced,
            ..BagOptions::default()
        },
    )
    .expect("package");
    for file in [
        "manifest-sha256.txt",
        "manifest-sha512.txt",
        "tagmanifest-sha256.txt",
        "tagmanifest-sha512.txt",
    ] {
        assert!(bag.join(file).is_file(), "{file}");
    }
    let tags = std::fs::read_to_string(bag.join("tagmanifest-sha256.txt")).expect("read");
    assert!(tags.contains("  manifest-sha512.txt\n"), "{tags}");
    assert_eq!(
        verify(&bag, &options).expect("verify").problems,
        Vec::<String>::new()
    );
    let out = tool("python3")
        .args(["-m", "bagit", "--validate"])
        .arg(&bag)
        .output()
        .expect("bagit-python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip = write_zip(&bag).expect("zip");
    assert_eq!(
        verify(&zip, &options).expect("verify").problems,
        Vec::<String>::new()
    );

    std::fs::write(bag.join("data/evidence/a.json"), "[1,2,4]").expect("write");
    let problems = verify(&bag, &options).expect("verify").problems;
    assert_problem(
        &problems,
        "data/evidence/a.json: SHA-256 does not match the manifest",
    );
    assert_problem(
        &problems,
        "data/evidence/a.json: SHA-512 does not match the manifest",
    );
}

#[test]
fn the_zip_deflates_what_compresses_and_stores_what_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("evidence")).expect("mkdir");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(run.join("evidence/export.zip"), &noise).expect("write");
    let json = "{\"id\":\"device\",\"compliant\":true},".repeat(8_000);
    std::fs::write(run.join("evidence/devices.json"), &json).expect("write");
    // Small files are judged the same way.
    std::fs::write(run.join("evidence/photo.jpg"), &noise[..4096]).expect("write");
    std::fs::write(run.join("evidence/user.json"), &json[..300]).expect("write");
    std::fs::write(run.join("evidence/empty.txt"), "").expect("write");
    std::fs::write(run.join("custody.jsonl"), "").expect("write");
    let (signer, options) = key_in(dir.path());
    let bag = write_bag(
        &run,
        &dir.path().join("out"),
        "pkg",
        &bag_info(),
        Some(&signer),
    )
    .expect("package");
    let archive = write_zip(&bag).expect("zip");

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&archive).expect("open")).expect("zip");
    let method = |zip: &mut zip::ZipArchive<std::fs::File>, name: &str| {
        zip.by_name(&format!("pkg/data/evidence/{name}"))
            .expect("entry")
            .compression()
    };
    assert_eq!(
        method(&mut zip, "export.zip"),
        zip::CompressionMethod::Stored
    );
    assert_eq!(
        method(&mut zip, "devices.json"),
        zip::CompressionMethod::Deflated
    );
    assert_eq!(
        method(&mut zip, "photo.jpg"),
        zip::CompressionMethod::Stored
    );
    assert_eq!(
        method(&mut zip, "user.json"),
        zip::CompressionMethod::Deflated
    );
    assert_eq!(
        method(&mut zip, "empty.txt"),
        zip::CompressionMethod::Stored
    );
    assert_eq!(
        verify(&archive, &options).expect("verify").problems,
        Vec::<String>::new()
    );
}

#[test]
fn the_cli_packages_a_run_again() {
    let h = Harness::demo();
    let config_path = h.signed_config_file();
    let config = auditpack::config::Config::load(&config_path).expect("config loads");
    let outcome = h.run(&config);
    let package = || {
        Command::new(env!("CARGO_BIN_EXE_auditpack"))
            .arg("package")
            .arg(&outcome.run_dir)
            .arg("--config")
            .arg(&config_path)
            .output()
            .expect("auditpack runs")
    };

    // The package is there: packaging again is refused, naming it.
    let out = package();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");

    // Lost: made again from the run folder, signed, and it verifies.
    std::fs::remove_dir_all(&outcome.package).expect("remove the package");
    std::fs::remove_file(&outcome.archive).expect("remove the zip");
    let out = package();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&outcome.package.display().to_string()),
        "{stdout}"
    );
    for made in [&outcome.package, &outcome.archive] {
        assert_eq!(check(&h, made), Vec::<String>::new(), "{}", made.display());
    }
}

#[cfg(unix)]
#[test]
fn a_package_stays_as_it_was_when_its_run_folder_changes() {
    use auditpack::evidence::write_atomic;
    use auditpack::package::{write_bag_with, BagOptions, Payload};
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("evidence")).expect("mkdir");
    std::fs::write(run.join("evidence/a.json"), "[1,2,3]").expect("write");
    std::fs::write(run.join("evidence/b.json"), "[4,5,6]").expect("write");
    std::fs::write(run.join("custody.jsonl"), "").expect("write");
    let (signer, options) = key_in(dir.path());
    let write = |name: &str, payload: Payload| {
        let options = BagOptions {
            payload,
            ..BagOptions::default()
        };
        write_bag_with(
            &run,
            &dir.path().join("out"),
            name,
            &bag_info(),
            Some(&signer),
            &options,
        )
        .expect("package")
    };
    let valid = |bag: &Path| verify(bag, &options).expect("verify runs").problems;

    // Linked (the default): the files are shared and no longer writable.
    let linked = write("linked", Payload::Link);
    let mode = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("stat").permissions().mode()
    };
    assert_eq!(mode(&run.join("evidence/a.json")) & 0o222, 0);
    assert_eq!(mode(&linked.join("data/evidence/a.json")) & 0o222, 0);
    // The custody log, appended to during a run, is copied, never linked.
    assert_ne!(mode(&run.join("custody.jsonl")) & 0o222, 0);
    // Every auditpack writer replaces files: the package keeps its bytes.
    write_atomic(&run.join("evidence/a.json"), b"[0]").expect("replace");
    assert_eq!(valid(&linked), Vec::<String>::new());
    assert_eq!(
        std::fs::read(linked.join("data/evidence/a.json")).expect("read"),
        b"[1,2,3]"
    );
    // A write in place is refused; where the writer overrides permissions
    // (root), verification names the file: never a silent change.
    let in_place = std::fs::OpenOptions::new()
        .write(true)
        .open(run.join("evidence/b.json"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"[9"));
    match in_place {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied),
        Ok(()) => {
            let problems = valid(&linked);
            assert!(
                problems.iter().any(|p| p.contains("evidence/b.json")),
                "{problems:?}"
            );
        }
    }

    // Copied: the run folder is left as it was and shares nothing.
    let fresh = dir.path().join("run2");
    std::fs::create_dir_all(fresh.join("evidence")).expect("mkdir");
    std::fs::write(fresh.join("evidence/c.json"), "[7]").expect("write");
    std::fs::write(fresh.join("custody.jsonl"), "").expect("write");
    let copied = write_bag_with(
        &fresh,
        &dir.path().join("out"),
        "copied",
        &bag_info(),
        Some(&signer),
        &BagOptions {
            payload: Payload::Copy,
            ..BagOptions::default()
        },
    )
    .expect("package");
    assert_ne!(mode(&fresh.join("evidence/c.json")) & 0o222, 0);
    std::fs::write(fresh.join("evidence/c.json"), "[8]").expect("write in place");
    assert_eq!(valid(&copied), Vec::<String>::new());
}
