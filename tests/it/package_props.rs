//! Property tests of packages: whatever the payload, a freshly written package
//! verifies (as a folder and as a zip), and any flipped byte, truncation,
//! rename, added, removed or swapped file, edited manifest or foreign
//! signature makes verification fail. In particular, without the key,
//! nothing can be added: no file under any name at any depth, no zip entry,
//! no manifest of any algorithm, and no manifest can be altered.

use std::path::{Path, PathBuf};

use auditpack::package::{
    generate_key, verify, verify_zip_bytes, write_zip, Signer, VerifyOptions, SIGNATURE_FILE,
};
use proptest::prelude::*;
use sha2::Digest;

const IDENTITY: &str = "props@auditpack.example";

/// A payload: distinct relative paths with distinct contents.
fn payload() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::btree_map(
        "(evidence/[a-z]{1,6}/)?[a-z0-9_-]{1,8}\\.(json|csv|txt)",
        prop::collection::vec(any::<u8>(), 0..600),
        1..6,
    )
    .prop_map(|files| {
        files
            .into_iter()
            // The name inside makes every file's content unique.
            .map(|(name, mut bytes)| {
                let mut content = name.clone().into_bytes();
                content.append(&mut bytes);
                (name, content)
            })
            .collect()
    })
}

struct Package {
    _dir: tempfile::TempDir,
    bag: PathBuf,
    options: VerifyOptions,
    signers: String,
}

fn write_package(files: &[(String, Vec<u8>)]) -> Package {
    let mut run: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    run.push(("custody.jsonl", b""));
    let p = crate::common::signed_package(&run, &[], "Props", IDENTITY);
    Package {
        _dir: p.dir,
        bag: p.bag,
        options: p.options,
        signers: p.signers,
    }
}

fn problems(p: &Package) -> Vec<String> {
    verify(&p.bag, &p.options).expect("verify runs").problems
}

/// Every file of the bag that a hash or the signature covers, sorted.
fn covered_files(bag: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![bag.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("list").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with(SIGNATURE_FILE) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn nonempty(bag: &Path) -> Vec<PathBuf> {
    covered_files(bag)
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect()
}

fn payload_files(bag: &Path) -> Vec<PathBuf> {
    covered_files(bag)
        .into_iter()
        .filter(|p| p.starts_with(bag.join("data")))
        .collect()
}

/// An entry's content as the `zip` crate reads it, or `None` if it cannot.
fn entry_content(zip: &[u8], name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).ok()?;
    let mut entry = archive.by_name(name).ok()?;
    let mut out = Vec::new();
    entry.read_to_end(&mut out).ok()?;
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn a_fresh_package_verifies_as_folder_and_zip(files in payload()) {
        let p = write_package(&files);
        prop_assert_eq!(problems(&p), Vec::<String>::new());
        let zip = write_zip(&p.bag).expect("zip");
        let bytes = std::fs::read(&zip).expect("read");
        prop_assert_eq!(verify_zip_bytes(&bytes, &p.signers, Some(IDENTITY)).problems, Vec::<String>::new());
    }

    #[test]
    fn a_truncated_zip_fails(files in payload(), cut in any::<prop::sample::Index>()) {
        let p = write_package(&files);
        let bytes = std::fs::read(write_zip(&p.bag).expect("zip")).expect("read");
        let at = cut.index(bytes.len());
        prop_assert!(!verify_zip_bytes(&bytes[..at], &p.signers, Some(IDENTITY)).problems.is_empty());
    }

    #[test]
    fn a_flipped_byte_inside_a_zip_entry_fails(files in payload(), which in any::<prop::sample::Index>(),
                                               at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let p = write_package(&files);
        let mut bytes = std::fs::read(write_zip(&p.bag).expect("zip")).expect("read");
        // Where each non-empty file's stored or deflated bytes lie.
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).expect("open");
        let mut spans = Vec::new();
        for i in 0..archive.len() {
            let entry = archive.by_index_raw(i).expect("entry");
            if entry.is_file() && entry.compressed_size() > 0 {
                let start = entry.data_start().expect("data start");
                spans.push((entry.name().to_owned(), start, entry.compressed_size()));
            }
        }
        drop(archive);
        let (name, start, len) = which.get(&spans).clone();
        let i = usize::try_from(start + at.index(usize::try_from(len).expect("size")) as u64).expect("offset");
        let before = entry_content(&bytes, &name);
        bytes[i] ^= 1 << bit;
        // A flip in a deflate stream's padding bits changes nothing to check.
        prop_assume!(entry_content(&bytes, &name) != before);
        prop_assert!(!verify_zip_bytes(&bytes, &p.signers, Some(IDENTITY)).problems.is_empty(), "{name} byte {i}");
    }

    #[test]
    fn a_flipped_byte_fails(files in payload(), which in any::<prop::sample::Index>(),
                            at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let p = write_package(&files);
        let candidates = nonempty(&p.bag);
        let target = which.get(&candidates);
        let mut bytes = std::fs::read(target).expect("read");
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        std::fs::write(target, bytes).expect("write");
        prop_assert!(!problems(&p).is_empty(), "{} byte {i}", target.display());
    }

    #[test]
    fn a_truncated_file_fails(files in payload(), which in any::<prop::sample::Index>(),
                              keep in any::<prop::sample::Index>()) {
        let p = write_package(&files);
        let candidates = nonempty(&p.bag);
        let target = which.get(&candidates);
        let bytes = std::fs::read(target).expect("read");
        std::fs::write(target, &bytes[..keep.index(bytes.len())]).expect("write");
        prop_assert!(!problems(&p).is_empty());
    }

    #[test]
    fn a_renamed_added_or_removed_file_fails(files in payload(), which in any::<prop::sample::Index>(),
                                             action in 0u8..4) {
        let p = write_package(&files);
        let all = covered_files(&p.bag);
        let target = which.get(&all).clone();
        match action {
            0 => std::fs::rename(&target, target.with_extension("renamed")).expect("rename"),
            1 => std::fs::remove_file(&target).expect("remove"),
            2 => std::fs::write(p.bag.join("data/planted.json"), "{}").expect("add"),
            _ => std::fs::write(p.bag.join("extra-tag.txt"), "x").expect("add"),
        }
        prop_assert!(!problems(&p).is_empty(), "action {action} on {}", target.display());
    }

    #[test]
    fn swapped_files_fail(files in payload(), a in any::<prop::sample::Index>(),
                          b in any::<prop::sample::Index>()) {
        let p = write_package(&files);
        let all = payload_files(&p.bag);
        let (x, y) = (a.get(&all).clone(), b.get(&all).clone());
        prop_assume!(x != y);
        let (bx, by) = (std::fs::read(&x).expect("read"), std::fs::read(&y).expect("read"));
        std::fs::write(&x, &by).expect("write");
        std::fs::write(&y, &bx).expect("write");
        prop_assert!(!problems(&p).is_empty());
    }

    #[test]
    fn an_edited_manifest_fails(files in payload(), line in any::<prop::sample::Index>(),
                                digest in "[0-9a-f]{64}") {
        let p = write_package(&files);
        let path = p.bag.join("manifest-sha256.txt");
        let text = std::fs::read_to_string(&path).expect("read");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let i = line.index(lines.len());
        prop_assume!(!lines[i].starts_with(&digest));
        lines[i] = format!("{digest}{}", &lines[i][64..]);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write");
        prop_assert!(!problems(&p).is_empty());
    }

    #[test]
    fn a_foreign_signature_fails(files in payload()) {
        let p = write_package(&files);
        let other = tempfile::tempdir().expect("tempdir");
        let foreign: Signer = generate_key(&other.path().join("k"), IDENTITY, None).expect("keygen").signer;
        let tag = std::fs::read(p.bag.join("tagmanifest-sha256.txt")).expect("read");
        std::fs::write(p.bag.join(SIGNATURE_FILE), foreign.sign(&tag).expect("sign")).expect("write");
        prop_assert!(!problems(&p).is_empty());
    }
}

/// A path of one to four segments, of names made to slip past a careless
/// check: dots and spaces, case variants and near misses of tag files and
/// signatures, manifests of any algorithm, `fetch.txt`, both Unicode normal
/// forms, percent escapes.
fn added_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "[a-zA-Z0-9._ ~%-]{1,10}",
        Just("data".to_owned()),
        Just("Data".to_owned()),
        Just("evidence".to_owned()),
        Just("bagit.txt".to_owned()),
        Just("BAGIT.TXT".to_owned()),
        Just("custody.jsonl".to_owned()),
        Just("fetch.txt".to_owned()),
        Just(".DS_Store".to_owned()),
        Just("tagmanifest-sha256.txt.tsr".to_owned()),
        Just("tagmanifest-sha512.txt.sig".to_owned()),
        Just("tagmanifest-SHA256.txt.sig".to_owned()),
        "(tag)?manifest-(sha256|sha512|md5|sha1|SHA256|blake2b)\\.txt",
        Just("e\u{301}vidence".to_owned()),
        Just("\u{e9}vidence".to_owned()),
        Just("%0A%25".to_owned()),
    ];
    prop::collection::vec(segment, 1..4)
        .prop_map(|segments| segments.join("/"))
        .prop_filter("a name a file can have", |path| {
            path.split('/').all(|s| s != "." && s != "..")
        })
}

/// Lowercase hex of `len` digits from `seed`.
fn hex_digits(seed: u64, len: usize) -> String {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"0123456789abcdef"[(state % 16) as usize])
        })
        .collect()
}

/// Every file of the bag by bag-relative path.
fn relative_files(bag: &Path) -> Vec<String> {
    covered_files(bag)
        .into_iter()
        .chain([bag.join(SIGNATURE_FILE)])
        .filter_map(|p| {
            p.strip_prefix(bag)
                .ok()
                .and_then(|r| r.to_str())
                .map(str::to_owned)
        })
        .collect()
}

/// A manifest of `kind` (`manifest` or `tagmanifest`) and `algorithm` as
/// someone without the key would write it: complete and, for SHA-256 and
/// SHA-512, with correct digests of the files it should list.
fn forged_manifest(p: &Package, kind: &str, algorithm: &str, seed: u64) -> String {
    let listed: Vec<String> = relative_files(&p.bag)
        .into_iter()
        .filter(|f| {
            if kind == "manifest" {
                f.starts_with("data/")
            } else {
                !f.starts_with("data/") && !f.starts_with("tagmanifest-")
            }
        })
        .collect();
    let mut text = String::new();
    for (i, file) in listed.iter().enumerate() {
        let bytes = std::fs::read(p.bag.join(file)).expect("read");
        let digest = match algorithm {
            "sha256" => hex::encode(sha2::Sha256::digest(&bytes)),
            "sha512" => hex::encode(sha2::Sha512::digest(&bytes)),
            "md5" => hex_digits(seed + i as u64, 32),
            "sha1" => hex_digits(seed + i as u64, 40),
            _ => hex_digits(seed + i as u64, 64),
        };
        text.push_str(&format!("{digest}  {file}\n"));
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn no_file_can_be_added_anywhere(files in payload(), path in added_path(),
                                     content in prop::collection::vec(any::<u8>(), 0..64)) {
        let p = write_package(&files);
        let target = p.bag.join(&path);
        prop_assume!(std::fs::symlink_metadata(&target).is_err());
        // Under an existing file there can be no new one.
        prop_assume!(target.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok()));
        std::fs::write(&target, &content).expect("write");
        prop_assert!(!problems(&p).is_empty(), "{path:?} accepted in a folder");
        let bytes = std::fs::read(write_zip(&p.bag).expect("zip")).expect("read");
        prop_assert!(
            !verify_zip_bytes(&bytes, &p.signers, Some(IDENTITY)).problems.is_empty(),
            "{path:?} accepted in a zip"
        );
    }

    #[test]
    fn no_entry_can_be_added_to_a_zip(files in payload(),
                                      name in prop_oneof![
                                          added_path(),
                                          Just("../x".to_owned()),
                                          Just("./x".to_owned()),
                                          Just("data/../../x".to_owned()),
                                          Just("data//x".to_owned()),
                                          Just("data\\x".to_owned()),
                                          Just("C:x".to_owned()),
                                      ],
                                      outside in any::<bool>(), folder in any::<bool>(),
                                      content in prop::collection::vec(any::<u8>(), 0..64)) {
        use std::io::Write as _;
        let p = write_package(&files);
        let good = std::fs::read(write_zip(&p.bag).expect("zip")).expect("read");
        let mut source = zip::ZipArchive::new(std::io::Cursor::new(&good[..])).expect("zip");
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..source.len() {
            let entry = source.by_index_raw(i).expect("entry");
            out.raw_copy_file(entry).expect("copy");
        }
        // Inside the package folder, or beside it.
        let name = if outside { name } else { format!("pkg/{name}") };
        let options = zip::write::SimpleFileOptions::default();
        let added = if folder {
            out.add_directory(name.clone(), options)
        } else {
            out.start_file(name.clone(), options)
                .and_then(|()| out.write_all(&content).map_err(Into::into))
        };
        // The zip writer refuses a name it already holds.
        prop_assume!(added.is_ok());
        let bytes = out.finish().expect("finish").into_inner();
        prop_assert!(
            !verify_zip_bytes(&bytes, &p.signers, Some(IDENTITY)).problems.is_empty(),
            "{name:?} (folder: {folder}) accepted"
        );
    }

    #[test]
    fn a_zip_with_any_byte_changed_is_read_without_panic(files in payload(),
                                                         at in any::<prop::sample::Index>(),
                                                         byte in any::<u8>()) {
        // Headers, names, sizes, offsets and counts included: whatever the
        // byte, verification reports, never panics (overflow checks are on).
        let p = write_package(&files);
        let mut bytes = std::fs::read(write_zip(&p.bag).expect("zip")).expect("read");
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let _ = verify_zip_bytes(&bytes, &p.signers, Some(IDENTITY));
    }

    #[test]
    fn no_manifest_can_be_added_or_altered(files in payload(),
                                           kind in prop_oneof![Just("manifest"), Just("tagmanifest")],
                                           algorithm in prop_oneof![
                                               Just("sha256"), Just("sha512"), Just("md5"),
                                               Just("sha1"), Just("SHA256"), Just("blake2b"),
                                           ],
                                           edit in 0u8..6, line in any::<prop::sample::Index>(),
                                           seed in any::<u64>()) {
        let p = write_package(&files);
        let file = p.bag.join(format!("{kind}-{algorithm}.txt"));
        let before = std::fs::read(&file).ok();
        let text = match &before {
            Some(bytes) => String::from_utf8(bytes.clone()).expect("UTF-8"),
            None => forged_manifest(&p, kind, algorithm, seed),
        };
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let i = line.index(lines.len().max(1)).min(lines.len().saturating_sub(1));
        let edited = match edit {
            // Added as it is (for a new manifest), or re-sorted.
            0 => {
                lines.reverse();
                lines.join("\n") + "\n"
            }
            // A line twice.
            1 => {
                let repeated = lines.get(i).cloned().unwrap_or_default();
                lines.push(repeated);
                lines.join("\n") + "\n"
            }
            // A line gone.
            2 => {
                if !lines.is_empty() {
                    lines.remove(i);
                }
                lines.join("\n") + "\n"
            }
            // A digest changed.
            3 => {
                if let Some(l) = lines.get_mut(i) {
                    let digit = if l.starts_with('0') { "1" } else { "0" };
                    l.replace_range(..1, digit);
                }
                lines.join("\n") + "\n"
            }
            // CRLF line ends.
            4 => lines.join("\r\n") + "\r\n",
            // A byte order mark.
            _ => format!("\u{feff}{text}"),
        };
        prop_assume!(before.as_deref() != Some(edited.as_bytes()));
        std::fs::write(&file, &edited).expect("write");
        prop_assert!(!problems(&p).is_empty(), "{} accepted in a folder (edit {edit})", file.display());
        let bytes = std::fs::read(write_zip(&p.bag).expect("zip")).expect("read");
        prop_assert!(
            !verify_zip_bytes(&bytes, &p.signers, Some(IDENTITY)).problems.is_empty(),
            "{} accepted in a zip (edit {edit})", file.display()
        );
    }
}

#[test]
fn manifest_parser_survives_garbage() {
    use auditpack::package::{parse_manifest, Algorithm};
    for text in [
        &b""[..],
        b"\xff\xfe",
        b"abc",
        b"0000000000000000000000000000000000000000000000000000000000000000  /etc/passwd\n",
        b"0000000000000000000000000000000000000000000000000000000000000000  data/../x\n",
        b"0000000000000000000000000000000000000000000000000000000000000000  data/a\n\
          0000000000000000000000000000000000000000000000000000000000000000  data/a\n",
    ] {
        let parsed = parse_manifest("manifest-sha256.txt", text, Algorithm::Sha256);
        assert!(parsed.entries.len() <= 1);
        assert!(text.is_empty() || !parsed.problems.is_empty(), "{text:?}");
    }
}
