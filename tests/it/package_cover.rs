//! Every file of a package is covered by a valid signature, or the package
//! is invalid: files and manifests added without the key, manifests of
//! other algorithms, `fetch.txt`, odd names, and zips whose bytes hide
//! other content are all refused, as a folder and as a zip, and the
//! stock-tool commands of the READMEs catch what `auditpack verify` catches.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;

use auditpack::package::{
    generate_key, verify_zip_bytes, write_zip, zip_path, Algorithm, NAMESPACE, SIGNATURE_FILE,
};
use sha2::Digest;
use zip::write::SimpleFileOptions;

const IDENTITY: &str = "cover@auditpack.example";

/// A small signed package, the key that signed it, and how to verify it.
type Package = crate::common::SignedPackage;

fn package(algorithms: &[Algorithm]) -> Package {
    let files: [(&str, &[u8]); 6] = [
        ("evidence/m365/users.json", br#"{"value":[]}"#),
        ("evidence/a.json", b"[1,2,3]"),
        // A name beyond ASCII, in both Unicode normal forms.
        ("evidence/caf\u{e9} \u{fc}.json", b"{}"),
        ("evidence/cafe\u{301} u\u{308}.json", b"{}"),
        ("run.json", b"{}"),
        ("custody.jsonl", b""),
    ];
    crate::common::signed_package(&files, algorithms, "Cover", IDENTITY)
}

impl Package {
    /// What the signer alone can do: list `rel` in tagmanifest-sha256.txt
    /// and sign it again.
    fn list_and_sign(&self, rel: &str) {
        let tag = self.path("tagmanifest-sha256.txt");
        let mut text = std::fs::read_to_string(&tag).expect("read");
        let bytes = std::fs::read(self.path(rel)).expect("read");
        text.push_str(&format!("{}  {rel}\n", sha256(&bytes)));
        std::fs::write(&tag, &text).expect("write");
        let signature = self.signer.sign(text.as_bytes()).expect("sign");
        std::fs::write(self.path(SIGNATURE_FILE), signature).expect("write");
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn sha512(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha512::digest(bytes))
}

fn assert_problem(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "{needle:?} not in {problems:?}"
    );
}

#[test]
fn fresh_packages_verify_with_one_or_two_signed_tag_manifests() {
    for algorithms in [&[][..], &[Algorithm::Sha512][..]] {
        let p = package(algorithms);
        for problems in p.both() {
            assert_eq!(problems, Vec::<String>::new(), "{algorithms:?}");
        }
    }
    let p = package(&[Algorithm::Sha512]);
    for file in ["tagmanifest-sha256.txt.sig", "tagmanifest-sha512.txt.sig"] {
        assert!(p.path(file).is_file(), "{file}");
    }
}

// --- the three reported cases --------------------------------------------------

/// Case 1: a file at the bag root, smuggled in by a new
/// `tagmanifest-sha512.txt` that lists it.
#[test]
fn a_new_tag_manifest_cannot_bring_in_a_file() {
    let p = package(&[]);
    p.write("extra.txt", "planted");
    let mut text = String::new();
    for file in [
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        "custody.jsonl",
        "README-VERIFY.txt",
        "extra.txt",
    ] {
        let bytes = std::fs::read(p.path(file)).expect("read");
        text.push_str(&format!("{}  {file}\n", sha512(&bytes)));
    }
    p.write("tagmanifest-sha512.txt", &text);
    for problems in p.both() {
        assert_problem(
            &problems,
            "tagmanifest-sha512.txt.sig is missing: tagmanifest-sha512.txt is not signed",
        );
        assert_problem(
            &problems,
            "extra.txt: present but not listed in tagmanifest-sha256.txt",
        );
    }

    // Signed, but by a key the auditor does not allow.
    let other = tempfile::tempdir().expect("tempdir");
    let stranger = generate_key(&other.path().join("k"), IDENTITY, None)
        .expect("keygen")
        .signer;
    p.write(
        "tagmanifest-sha512.txt.sig",
        stranger.sign(text.as_bytes()).expect("sign"),
    );
    for problems in p.both() {
        assert_problem(
            &problems,
            "tagmanifest-sha512.txt.sig: the package was signed by a key that",
        );
    }
}

/// Case 1 where auditpack wrote the SHA-512 tag manifest itself: it is
/// signed, so replacing it breaks its signature.
#[test]
fn a_replaced_sha512_tag_manifest_breaks_its_signature() {
    let p = package(&[Algorithm::Sha512]);
    p.write("extra.txt", "planted");
    let tag = p.path("tagmanifest-sha512.txt");
    let mut text = std::fs::read_to_string(&tag).expect("read");
    text.push_str(&format!("{}  extra.txt\n", sha512(b"planted")));
    std::fs::write(&tag, text).expect("write");
    for problems in p.both() {
        assert_problem(
            &problems,
            "tagmanifest-sha512.txt.sig: the signature does not match tagmanifest-sha512.txt",
        );
        assert_problem(
            &problems,
            "extra.txt: present but not listed in tagmanifest-sha256.txt",
        );
    }
    // Its signature copied from the SHA-256 one does not help either.
    std::fs::copy(p.path(SIGNATURE_FILE), p.path("tagmanifest-sha512.txt.sig")).expect("copy");
    for problems in p.both() {
        assert_problem(
            &problems,
            "tagmanifest-sha512.txt.sig: the signature does not match",
        );
    }
}

/// Case 2: manifests of algorithms auditpack does not accept are refused,
/// even listed in the signed tag manifest and signed by the real key.
#[test]
fn manifests_of_other_algorithms_are_refused_even_when_signed() {
    let zeros = |n: usize| "0".repeat(n);
    let cases = [
        // Wrong digests for every payload file.
        (
            "manifest-md5.txt",
            format!(
                "{z}  data/evidence/a.json\n{z}  data/evidence/m365/users.json\n{z}  data/run.json\n{z}  data/custody.jsonl\n",
                z = zeros(32)
            ),
        ),
        // Missing files.
        (
            "manifest-sha1.txt",
            format!("{}  data/run.json\n", zeros(40)),
        ),
        // Wrong digests for the tag files.
        (
            "tagmanifest-md5.txt",
            format!("{z}  bagit.txt\n{z}  bag-info.txt\n", z = zeros(32)),
        ),
        ("manifest-blake3.txt", String::new()),
        ("manifest-SHA256.txt", String::new()),
    ];
    for (file, text) in cases {
        let p = package(&[]);
        p.write(file, &text);
        p.list_and_sign(file);
        for problems in p.both() {
            assert_problem(
                &problems,
                &format!("{file}: unsupported manifest algorithm"),
            );
        }
    }
}

/// Case 2 for an algorithm auditpack accepts: a SHA-512 payload manifest
/// that the signer's tag manifest lists is checked completely.
#[test]
fn a_signed_sha512_manifest_is_checked_completely() {
    let p = package(&[]);
    let users = std::fs::read(p.path("data/evidence/m365/users.json")).expect("read");
    p.write(
        "manifest-sha512.txt",
        format!(
            "{}  data/evidence/a.json\n{}  data/evidence/m365/users.json\n{}  data/ghost.json\n",
            sha512(b"[1,2,4]"),
            sha512(&users),
            sha512(b"")
        ),
    );
    p.list_and_sign("manifest-sha512.txt");
    for problems in p.both() {
        assert_problem(
            &problems,
            "data/evidence/a.json: SHA-512 does not match the manifest",
        );
        assert_problem(
            &problems,
            "data/run.json: present but not listed in manifest-sha512.txt",
        );
        assert_problem(
            &problems,
            "data/ghost.json: listed in manifest-sha512.txt but missing",
        );
    }
}

/// Case 3: a bag with `fetch.txt` is holey, whatever it names and even
/// when the signer listed it.
#[test]
fn a_signed_fetch_txt_is_refused() {
    for target in [
        "../../../x",
        "/tmp/x",
        "~/x",
        "\\\\server\\share\\x",
        "data/evidence/a.json",
    ] {
        let p = package(&[]);
        p.write("fetch.txt", format!("https://example.com/x 7 {target}\n"));
        p.list_and_sign("fetch.txt");
        for problems in p.both() {
            assert_problem(&problems, "fetch.txt: the bag is holey");
        }
    }
}

// --- the rest of the class ------------------------------------------------------

#[test]
fn payload_oxum_shows_both_sides() {
    let p = package(&[]);
    let info = std::fs::read_to_string(p.path("bag-info.txt")).expect("read");
    let oxum = info
        .lines()
        .find_map(|l| l.strip_prefix("Payload-Oxum: "))
        .expect("oxum");
    let (octets, streams) = oxum.split_once('.').expect("octets.streams");
    let (octets, streams): (u64, usize) = (
        octets.parse().expect("octets"),
        streams.parse().expect("streams"),
    );
    p.write("data/new.json", "{}");
    let expected = format!(
        "bag-info.txt: Payload-Oxum {oxum} ({octets} octets in {streams} streams) does not \
         match the payload ({} octets in {} streams, {streams} listed in manifest-sha256.txt)",
        octets + 2,
        streams + 1
    );
    for problems in p.both() {
        assert!(
            problems.contains(&expected),
            "{expected} not in {problems:?}"
        );
    }
}

#[test]
fn any_name_added_anywhere_is_refused() {
    let names = [
        ".DS_Store",
        "Thumbs.db",
        "BAGIT.TXT",
        "bagit.txt.orig",
        "tagmanifest-sha256.txt.sig.bak",
        "tagmanifest-sha512.txt.sig",
        "tagmanifest-sha256.TXT.sig",
        "tagmanifest-sha512.txt.tsr",
        "manifest-sha256.txt~",
        "meta/notes.txt",
        "data/.hidden",
        "data/evidence/A.json",
        "data/evidence/a.json ",
        "data/evidence/a.json.",
        "data/e\u{301}vidence.json",
        "data/evidence/m365/users.json/x",
        "data/line\nbreak",
        "data/percent%0Aname",
        "Data/evidence/a.json",
        " data/x",
    ];
    for name in names {
        let p = package(&[]);
        if name == "data/evidence/m365/users.json/x" {
            // A folder where the manifest lists a file.
            std::fs::remove_file(p.path("data/evidence/m365/users.json")).expect("remove");
        }
        p.write(name, "planted");
        for problems in p.both() {
            assert!(!problems.is_empty(), "{name:?} was accepted");
            let shown = name.trim_end_matches("/x");
            assert!(
                problems.iter().any(|p| p.contains(shown)),
                "{name:?} not named in {problems:?}"
            );
        }
    }
}

#[test]
fn empty_folders_symlinks_and_odd_names_in_a_folder_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let p = package(&[]);
    std::fs::create_dir_all(p.path("data/empty")).expect("mkdir");
    std::fs::create_dir_all(p.path("extra")).expect("mkdir");
    let problems = p.folder_problems();
    assert_problem(&problems, "data/empty/: an empty folder");
    assert_problem(&problems, "extra/: an empty folder");

    let p = package(&[]);
    std::os::unix::fs::symlink("/etc/passwd", p.path("data/link")).expect("symlink");
    std::os::unix::fs::symlink("data", p.path("payload")).expect("symlink");
    let problems = p.folder_problems();
    assert_problem(&problems, "data/link: not a regular file");
    assert_problem(&problems, "payload: not a regular file");

    // A name that is not UTF-8 is refused, not read under its lossy form
    // (which here is the name of a listed file).
    let p = package(&[]);
    std::fs::write(p.path("data/run\u{FFFD}.json"), "{}").expect("write");
    p.list_and_sign_payload("data/run\u{FFFD}.json");
    assert_eq!(p.folder_problems(), Vec::<String>::new());
    let raw = std::ffi::OsStr::from_bytes(b"run\xff.json");
    std::fs::write(p.path("data").join(raw), "other").expect("write");
    assert_problem(&p.folder_problems(), "the name is not UTF-8");
}

impl Package {
    /// What the signer alone can do: list a payload file in the manifest,
    /// update Payload-Oxum and sign again.
    fn list_and_sign_payload(&self, rel: &str) {
        let bytes = std::fs::read(self.path(rel)).expect("read");
        let manifest = self.path("manifest-sha256.txt");
        let mut text = std::fs::read_to_string(&manifest).expect("read");
        text.push_str(&format!("{}  {rel}\n", sha256(&bytes)));
        std::fs::write(&manifest, text).expect("write");
        let info = std::fs::read_to_string(self.path("bag-info.txt")).expect("read");
        let old = info
            .lines()
            .find_map(|l| l.strip_prefix("Payload-Oxum: "))
            .expect("oxum")
            .to_owned();
        let (octets, streams) = old.split_once('.').expect("oxum");
        let new = format!(
            "{}.{}",
            octets.parse::<u64>().expect("octets") + bytes.len() as u64,
            streams.parse::<u64>().expect("streams") + 1
        );
        std::fs::write(
            self.path("bag-info.txt"),
            info.replace(
                &format!("Payload-Oxum: {old}"),
                &format!("Payload-Oxum: {new}"),
            ),
        )
        .expect("write");
        let tag = self.path("tagmanifest-sha256.txt");
        let mut lines = String::new();
        for line in std::fs::read_to_string(&tag).expect("read").lines() {
            let (_, file) = line.split_once("  ").expect("line");
            let bytes = std::fs::read(self.path(file)).expect("read");
            lines.push_str(&format!("{}  {file}\n", sha256(&bytes)));
        }
        std::fs::write(&tag, &lines).expect("write");
        let signature = self.signer.sign(lines.as_bytes()).expect("sign");
        std::fs::write(self.path(SIGNATURE_FILE), signature).expect("write");
    }
}

#[test]
fn a_signature_file_holds_only_the_signature() {
    let p = package(&[]);
    let sig = std::fs::read_to_string(p.path(SIGNATURE_FILE)).expect("read");
    for tampered in [
        format!("{sig}planted\n"),
        format!("planted\n{sig}"),
        format!("{sig}\n"),
        sig.replace('\n', "\r\n"),
    ] {
        p.write(SIGNATURE_FILE, &tampered);
        for problems in p.both() {
            assert_problem(&problems, "tagmanifest-sha256.txt.sig");
        }
    }
}

// --- zips whose bytes could show other content ----------------------------------

/// The package's zip rebuilt entry by entry by `zip`, with `edit` adding
/// entries before it is finished.
fn rebuild(
    archive: &[u8],
    edit: impl FnOnce(&mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>),
) -> Vec<u8> {
    let mut source = zip::ZipArchive::new(std::io::Cursor::new(archive)).expect("zip");
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
    edit(&mut out);
    out.finish().expect("finish").into_inner()
}

fn zip_of(p: &Package) -> Vec<u8> {
    let zip = zip_path(&p.bag);
    let _ = std::fs::remove_file(&zip);
    std::fs::read(write_zip(&p.bag).expect("zip")).expect("read")
}

fn zip_problems(p: &Package, bytes: &[u8]) -> Vec<String> {
    verify_zip_bytes(bytes, &p.signers, Some(IDENTITY)).problems
}

/// CRC-32 (IEEE), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn find(bytes: &[u8], needle: &[u8]) -> Vec<usize> {
    (0..bytes.len().saturating_sub(needle.len() - 1))
        .filter(|&i| &bytes[i..i + needle.len()] == needle)
        .collect()
}

#[test]
fn zip_entries_that_differ_by_a_slash_or_hold_nothing_are_refused() {
    let p = package(&[]);
    let good = zip_of(&p);
    assert_eq!(zip_problems(&p, &good), Vec::<String>::new());
    let file = SimpleFileOptions::default();

    let folder_and_file = rebuild(&good, |z| {
        z.add_directory("pkg/data/run.json/", file).expect("folder");
    });
    assert_problem(
        &zip_problems(&p, &folder_and_file),
        "data/run.json: both a file and a folder",
    );

    let empty = rebuild(&good, |z| {
        z.add_directory("pkg/data/empty/", file).expect("folder");
    });
    assert_problem(&zip_problems(&p, &empty), "data/empty/: an empty folder");

    let file_under_file = rebuild(&good, |z| {
        z.start_file("pkg/bagit.txt/x", file).expect("start");
        z.write_all(b"x").expect("write");
    });
    assert_problem(
        &zip_problems(&p, &file_under_file),
        "bagit.txt: both a file and a folder",
    );

    for name in [
        "pkg/./data/x",
        "pkg/data//x",
        "pkg/data/../x",
        "/pkg/data/x",
    ] {
        let bad = rebuild(&good, |z| {
            z.start_file(name, file).expect("start");
        });
        assert!(!zip_problems(&p, &bad).is_empty(), "{name}");
    }

    // A hostile name is shown escaped once, as the name it is.
    let control = rebuild(&good, |z| {
        z.start_file("pkg/data/a\"\tb", file).expect("start");
    });
    assert_problem(
        &zip_problems(&p, &control),
        "zip entry \"pkg/data/a\\\"\\tb\": control character in the name",
    );
}

#[test]
fn zip_bytes_outside_the_entries_are_refused() {
    let p = package(&[]);
    let good = zip_of(&p);
    let file = SimpleFileOptions::default();

    // A comment, and bytes after the end record.
    let commented = rebuild(&good, |z| z.set_comment("planted"));
    assert_problem(&zip_problems(&p, &commented), "ends in a comment");
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"planted");
    assert_problem(&zip_problems(&p, &trailing), "ends in a comment");

    // Bytes before the first entry (a self-extractor, or a hidden entry).
    let mut prefixed = b"planted".to_vec();
    prefixed.extend_from_slice(&good);
    assert!(!zip_problems(&p, &prefixed).is_empty());

    // An entry whose local header names something else than the central
    // directory does (a streaming unzipper would see the local name).
    let mut renamed = rebuild(&good, |z| {
        z.start_file("pkg/data/zzzAAA", file).expect("start");
        z.write_all(b"planted").expect("write");
    });
    let local = find(&renamed, b"pkg/data/zzzAAA")[0];
    renamed[local + 12..local + 15].copy_from_slice(b"BBB");
    assert_problem(
        &zip_problems(&p, &renamed),
        "its local header names it \"pkg/data/zzzBBB\"",
    );

    // A whole entry the central directory does not list: its local header
    // and data sit between two listed entries.
    let with_extra = rebuild(&good, |z| {
        z.start_file("pkg/data/zzz", file).expect("start");
        z.write_all(b"planted").expect("write");
    });
    // Drop its central record and lower the declared counts.
    let central = find(&with_extra, &[0x50, 0x4b, 0x01, 0x02])
        .into_iter()
        .find(|&at| with_extra[at + 46..].starts_with(b"pkg/data/zzz"))
        .expect("central record");
    let record_len =
        46 + usize::from(u16::from_le_bytes([
            with_extra[central + 28],
            with_extra[central + 29],
        ])) + usize::from(u16::from_le_bytes([
            with_extra[central + 30],
            with_extra[central + 31],
        ])) + usize::from(u16::from_le_bytes([
            with_extra[central + 32],
            with_extra[central + 33],
        ]));
    let mut hidden = with_extra[..central].to_vec();
    hidden.extend_from_slice(&with_extra[central + record_len..]);
    let eocd = hidden.len() - 22;
    for at in [eocd + 8, eocd + 10] {
        let n = u16::from_le_bytes([hidden[at], hidden[at + 1]]) - 1;
        hidden[at..at + 2].copy_from_slice(&n.to_le_bytes());
    }
    let size = u32::from_le_bytes(hidden[eocd + 12..eocd + 16].try_into().expect("4 bytes"))
        - record_len as u32;
    hidden[eocd + 12..eocd + 16].copy_from_slice(&size.to_le_bytes());
    let problems = zip_problems(&p, &hidden);
    assert_problem(&problems, "belong to no entry");

    // The same record kept in the central directory but past the declared
    // count (readers that walk the directory's size would see it).
    let mut uncounted = with_extra.clone();
    let eocd = uncounted.len() - 22;
    for at in [eocd + 8, eocd + 10] {
        let n = u16::from_le_bytes([uncounted[at], uncounted[at + 1]]) - 1;
        uncounted[at..at + 2].copy_from_slice(&n.to_le_bytes());
    }
    assert_problem(
        &zip_problems(&p, &uncounted),
        "entries but its central directory holds",
    );
}

/// A name another unzipper would read differently from its bytes (as code
/// page 437, or from an Info-ZIP Unicode path field), and per-entry comments,
/// are refused.
#[test]
fn zip_names_that_others_would_read_otherwise_are_refused() {
    let p = package(&[]);
    let good = zip_of(&p);
    let file = SimpleFileOptions::default();

    let mut no_flag = rebuild(&good, |z| {
        z.start_file("pkg/data/caf\u{e9}", file).expect("start");
        z.write_all(b"x").expect("write");
    });
    let name = "pkg/data/caf\u{e9}".as_bytes();
    let at = find(&no_flag, name);
    assert_eq!(at.len(), 2, "a local and a central name");
    for (flags, name_at) in [(at[0] - 30 + 6, at[0]), (at[1] - 46 + 8, at[1])] {
        assert!(name_at > flags);
        no_flag[flags + 1] &= !0x08;
    }
    assert_problem(
        &zip_problems(&p, &no_flag),
        "a name beyond ASCII without the UTF-8 flag",
    );

    // Version 1, the CRC-32 of the name it replaces, the name to use.
    let mut field = vec![1];
    field.extend_from_slice(&crc32(b"pkg/data/zzz").to_le_bytes());
    field.extend_from_slice(b"pkg/data/run.json");
    let field = &field[..];
    let mut options = zip::write::FullFileOptions::default();
    options
        .add_extra_data(0x7a7a, field, false)
        .expect("extra field");
    let mut unicode_path = rebuild(&good, |z| {
        z.start_file("pkg/data/zzz", options).expect("start");
        z.write_all(b"x").expect("write");
    });
    let mut marker = vec![0x7a, 0x7a];
    marker.extend_from_slice(&(field.len() as u16).to_le_bytes());
    marker.extend_from_slice(field);
    let found = find(&unicode_path, &marker);
    assert!(!found.is_empty());
    for at in found {
        unicode_path[at..at + 2].copy_from_slice(&0x7075u16.to_le_bytes());
    }
    assert_problem(
        &zip_problems(&p, &unicode_path),
        "a Unicode path field, which other unzippers read instead of the name",
    );

    let commented = rebuild(&good, |z| {
        z.start_file(
            "pkg/data/zzz",
            zip::write::FullFileOptions::default().with_file_comment("planted"),
        )
        .expect("start");
    });
    assert_problem(
        &zip_problems(&p, &commented),
        "zip entry \"pkg/data/zzz\" carries a comment",
    );
}

/// Zips that other writers make, with data descriptors (streamed) or ZIP64
/// fields on small entries, are read the same way: no false alarm.
#[test]
fn streamed_and_zip64_zips_still_verify() {
    let p = package(&[]);
    let good = zip_of(&p);
    let mut source = zip::ZipArchive::new(std::io::Cursor::new(&good[..])).expect("zip");
    let mut entries = Vec::new();
    for i in 0..source.len() {
        let mut entry = source.by_index(i).expect("entry");
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read");
        entries.push((entry.name().to_owned(), entry.is_dir(), bytes));
    }
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);

    let mut streamed = zip::ZipWriter::new_stream(Vec::new());
    for (name, is_dir, bytes) in &entries {
        if *is_dir {
            streamed.add_directory(name, options).expect("folder");
        } else {
            streamed.start_file(name, options).expect("start");
            streamed.write_all(bytes).expect("write");
        }
    }
    let streamed = streamed.finish().expect("finish").into_inner();
    assert_eq!(zip_problems(&p, &streamed), Vec::<String>::new());

    let mut large = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, is_dir, bytes) in &entries {
        if *is_dir {
            large.add_directory(name, options).expect("folder");
        } else {
            large
                .start_file(name, options.large_file(true))
                .expect("start");
            large.write_all(bytes).expect("write");
        }
    }
    let large = large.finish().expect("finish").into_inner();
    assert_eq!(zip_problems(&p, &large), Vec::<String>::new());
}

// --- the stock-tool commands ------------------------------------------------------

/// The command of a README that starts with `start`, joined across its
/// `\` continuation lines.
fn command(text: &str, start: &str) -> String {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(start));
    let mut out = String::new();
    for line in lines.by_ref() {
        let line = line.trim();
        match line.strip_suffix('\\') {
            Some(head) => out.push_str(head),
            None => {
                out.push_str(line);
                break;
            }
        }
    }
    assert!(!out.is_empty(), "no {start:?} command");
    out
}

/// Run `script` with bash in `dir`; whether it succeeded, and its output.
fn bash(dir: &Path, script: &str) -> (bool, String) {
    let out = Command::new("bash")
        .current_dir(dir)
        .args(["-c", script])
        .output()
        .expect("bash runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_stock_tool_commands_catch_any_added_file() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    for algorithms in [&[][..], &[Algorithm::Sha512][..]] {
        let p = package(algorithms);
        let ours = std::fs::read_to_string(p.path("README-VERIFY.txt")).expect("read");
        let signers = p.dir.path().join("allowed_signers");
        let signers = signers.to_str().expect("path");
        // Every command of README-VERIFY.txt passes on the fresh package.
        let mut steps = vec![
            command(&ours, "ssh-keygen -Y verify"),
            command(&ours, "sha256sum -c"),
            command(&ours, "diff <("),
        ];
        if !algorithms.is_empty() {
            let from = ours.find("The SHA-512 manifests").expect("SHA-512 step");
            steps.push(command(&ours[from..], "ssh-keygen -Y verify"));
            steps.push(command(&ours, "sha512sum -c"));
        }
        for step in &steps {
            let step = step
                .replace("-f allowed_signers", &format!("-f {signers}"))
                .replace("-I <signer identity>", &format!("-I {IDENTITY}"));
            let (ok, out) = bash(&p.bag, &step);
            assert!(ok, "{step}: {out}");
            assert!(!step.starts_with("diff") || out.is_empty(), "{step}: {out}");
        }
        if algorithms.is_empty() {
            // The README's own line, for a package like this one.
            let (ok, out) = bash(&p.bag, &command(&readme, "diff <(find . "));
            assert!(ok && out.is_empty(), "README.md: {out}");
        }

        // Any file added, at the root or at any depth, shows in the diff.
        let diff = command(&ours, "diff <(");
        for name in [
            "extra.txt",
            ".hidden",
            "tagmanifest-sha512.txt.bak",
            "meta/notes.txt",
            "data/evidence/new.json",
            "data/deep/er/x",
        ] {
            p.write(name, "planted");
            let (ok, out) = bash(&p.bag, &diff);
            assert!(!ok && out.contains(name), "{name}: {out}");
            if algorithms.is_empty() {
                let (ok, out) = bash(&p.bag, &command(&readme, "diff <(find . "));
                assert!(!ok && out.contains(name), "README.md, {name}: {out}");
            }
            std::fs::remove_file(p.path(name)).expect("remove");
        }
    }
}

#[test]
fn namespaces_and_signature_names_are_what_the_readme_says() {
    // The README-VERIFY text names the namespace and the signature files.
    let p = package(&[Algorithm::Sha512]);
    let ours = std::fs::read_to_string(p.path("README-VERIFY.txt")).expect("read");
    for needle in [
        NAMESPACE,
        "tagmanifest-sha256.txt.sig",
        "tagmanifest-sha512.txt.sig",
        "sha512sum --quiet -c manifest-sha512.txt",
    ] {
        assert!(ours.contains(needle), "{needle} not in {ours}");
    }
}

#[test]
fn a_top_custody_log_other_than_its_payload_copy_is_refused_even_when_signed() {
    // The signer writes a custody log at the top that is not the one in the
    // payload, lists it with its own digest and signs again: each copy then
    // matches its manifest, and only comparing them shows the difference.
    let p = package(&[]);
    let data = std::fs::read(p.path("data/evidence/a.json")).expect("read");
    let line = format!(
        "{{\"path\":\"evidence/a.json\",\"sha256\":\"{}\"}}\n",
        sha256(&data)
    );
    p.write("custody.jsonl", &line);
    let tag = p.path("tagmanifest-sha256.txt");
    let text: String = std::fs::read_to_string(&tag)
        .expect("read")
        .lines()
        .map(|l| match l.split_once("  ") {
            Some((_, "custody.jsonl")) => format!("{}  custody.jsonl\n", sha256(line.as_bytes())),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&tag, &text).expect("write");
    let signature = p.signer.sign(text.as_bytes()).expect("sign");
    std::fs::write(p.path(SIGNATURE_FILE), signature).expect("write");
    for problems in p.both() {
        assert_eq!(
            problems,
            ["custody.jsonl: differs from data/custody.jsonl"],
            "only the copies' difference"
        );
    }
}
