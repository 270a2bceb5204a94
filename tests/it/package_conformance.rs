//! The Library of Congress BagIt conformance suite
//! (github.com/LibraryOfCongress/bagit-conformance-suite), case by case, on
//! auditpack packages. Each case's defect or feature is applied to a fresh
//! signed package and, where the defect is in a signed file, the tag
//! manifests are hashed and signed again, as a hostile or buggy signer would,
//! so that the signature holds and only the BagIt defect is in play. Nothing
//! of the suite is copied: every case is written here. Folders and zips are
//! both checked wherever a zip can hold the case. The `linux-only` and
//! `windows-only` cases run everywhere: the checks read names, not a file
//! system.
//!
//! v0.97/invalid:
//! - baginfo-missing-encoding (bagit.txt without its encoding line) -> "bagit.txt: not the two lines"
//! - bom-in-bagit.txt (a byte-order mark before `BagIt-Version`) -> "bagit.txt: not the two lines"
//! - corrupt-data-file (a payload file changed after packaging) -> "<file>: SHA-256 does not match the manifest", and Payload-Oxum when its size changed
//! - corrupt-tag-file (wrong digests in the tag manifest) -> "<file>: SHA-256 does not match the tag manifest" for each, signed again or not
//! - extra-file-in-bag (a payload file no manifest lists) -> "<file>: present but not listed in manifest-sha256.txt", and Payload-Oxum
//! - invalid-version-number (`BagIt-Version: .97`) -> "bagit.txt: not the two lines"
//! - missing-baginfo -> "bag-info.txt: missing", with the tag manifest still listing it or not
//! - missing-bagit.txt -> "not a BagIt package (no bagit.txt)"
//! - out-of-scope-file-paths-using-dot-notation (`../../../README.md`, `\.\./...`) -> "manifest-sha256.txt:<line>: unsafe path"
//! - out-of-scope-file-paths-using-dot-notation-for-fetch -> "fetch.txt: the bag is holey"
//! - same-filename-listed-twice-with-different-hashes -> "manifest-sha256.txt: <path> is listed twice"
//!
//! v0.97/linux-only:
//! - out-of-scope-file-paths-using-absolute-path (`/tmp/foo`) -> "unsafe path"
//! - out-of-scope-file-paths-using-absolute-path-for-fetch -> "fetch.txt: the bag is holey"
//! - out-of-scope-file-paths-using-shortcut (`~/foo`) -> "manifest-sha256.txt lists \"~/foo\" outside data/"
//! - out-of-scope-file-paths-using-shortcut-for-fetch -> "fetch.txt: the bag is holey"
//! - out-of-scope-file-paths-using-shortcut-username (`~root/foo`) -> "lists \"~root/foo\" outside data/"
//! - out-of-scope-file-paths-using-shortcut-username-for-fetch -> "fetch.txt: the bag is holey"
//!
//! v0.97/windows-only:
//! - out-of-scope-file-paths-using-absolute-path (`C:\Windows\...`) -> "unsafe path"
//! - out-of-scope-file-paths-using-absolute-path-for-fetch -> "fetch.txt: the bag is holey"
//! - out-of-scope-file-paths-using-shortcut (`%HomeDrive%\...`) -> "unsafe path"
//! - out-of-scope-file-paths-using-shortcut-for-fetch -> "fetch.txt: the bag is holey"
//! - out-of-scope-file-paths-using-unc (`\\?\UNC\server\...`) -> "unsafe path"
//! - out-of-scope-file-paths-using-unc-for-fetch (fetch.txt unlisted, a stray root file) -> holey, and both files "present but not listed"
//!
//! v0.97/warning (valid BagIt; our profile decides):
//! - duplicate-file-with-different-case (`data/hello.txt` and `data/HELLO.txt` listed, one file) -> rejected: "data/HELLO.txt: listed in manifest-sha256.txt but missing"; with both files there -> accepted (names are bytes, as the packager writes them)
//! - made-with-md5sum-tools (`<digest> *<path>` lines) -> accepted, as `sha256sum -c` reads them
//! - relative-path (`./data/hello.txt`) -> rejected: "unsafe path", and the file unlisted
//! - same-filename-listed-twice-with-different-normalization (NFD and NFC listed, one file) -> rejected: the other form "listed but missing"; with both files there -> accepted
//! - same-filename-listed-twice-with-the-same-hash -> rejected: "is listed twice"
//! - special-system-files (`data/.DS_Store`, `data/Thumbs.db` listed) -> accepted when there (signed payload); "listed but missing" when not
//!
//! v1.0/invalid:
//! - bagit-with-invalid-whitespace (`BagIt-Version : 1.0`) -> "bagit.txt: not the two lines"
//! - notAllManifestsListAllFiles (a file missing from one of two manifests) -> "<file>: present but not listed in manifest-sha512.txt" (and the other way round)
//! - same-filename-listed-twice-with-different-hashes (and `BagIt-Version: 1.0 `) -> "is listed twice", "bagit.txt: not the two lines"
//! - same-filename-listed-twice-with-the-same-hash -> "is listed twice"
//!
//! v0.97/valid (the cases that exercise a feature; v0.93 to v0.96 hold older copies):
//! - ISO-8859-1-encoded-tag-files -> the declaration rejected ("bagit.txt: not the two lines"); bag-info.txt in ISO-8859-1 under the UTF-8 declaration rejected ("bag-info.txt: not UTF-8")
//! - UTF-16-encoded-tag-files -> the declaration rejected; bag-info.txt, manifest or tag manifest in UTF-16: "<file>: not UTF-8"
//! - bag-in-a-bag and minimal-bag (a whole bag, fetch.txt included, as payload) -> accepted
//! - bag-with-encoded-names (`%7E`, `%` and `~` in names) -> accepted, listed as auditpack writes them (`%25`) or as 0.97 tools did (literally)
//! - bag-with-escapable-characters (spaces; and CR, LF, `%`, which RFC 8493 escapes) -> accepted
//! - bag-with-leading-dot-slash-in-manifest -> rejected: "unsafe path \"./data/...\""
//! - bag-with-space -> accepted
//! - duplicate-metadata-entries -> repeated and case-varied labels accepted; a repeated Payload-Oxum (RFC 8493: MUST NOT be repeated) rejected
//! - holey-bag (fetch.txt naming files the bag holds) -> "fetch.txt: the bag is holey"
//! - uncommon-metadata-separators -> accepted for other labels; Payload-Oxum only as `Payload-Oxum: <octets>.<streams>` (any whitespace after the colon)
//! - the tag files of the bags made on Windows (CRLF line ends, bagit.txt without a final one) -> accepted
//! - basic-bag, v1.0/valid/basicBag: plain unsigned bags without SHA-256 manifests, refused by the profile as any such bag; the fresh package is the profile's basic bag

use std::path::Path;
use std::process::Command;

use auditpack::package::Algorithm;
use sha2::Digest;

const IDENTITY: &str = "conformance@auditpack.example";

/// A small signed package and how to verify it.
type Package = crate::common::SignedPackage;

/// A fresh package of the run files `extra` besides the usual ones, with a
/// manifest and a signed tag manifest for SHA-256 and each of `algorithms`.
fn package_of(algorithms: &[Algorithm], extra: &[(&str, &[u8])]) -> Package {
    let usual: [(&str, &[u8]); 4] = [
        ("evidence/a.json", b"[1,2,3]"),
        ("evidence/m365/users.json", br#"{"value":[]}"#),
        ("run.json", b"{}"),
        ("custody.jsonl", b""),
    ];
    let files: Vec<(&str, &[u8])> = usual.iter().chain(extra).copied().collect();
    crate::common::signed_package(&files, algorithms, "Conformance", IDENTITY)
}

fn package() -> Package {
    package_of(&[], &[])
}

impl Package {
    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).expect("read")
    }

    fn text(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).expect("UTF-8")
    }

    fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path(rel)).expect("remove");
    }

    /// The tag manifests the package has.
    fn tag_algorithms(&self) -> Vec<Algorithm> {
        [Algorithm::Sha256, Algorithm::Sha512]
            .into_iter()
            .filter(|a| self.path(&tag_manifest(*a)).is_file())
            .collect()
    }

    /// What the signer alone can do: sign each tag manifest as it is now.
    fn sign(&self) {
        for algorithm in self.tag_algorithms() {
            let file = tag_manifest(algorithm);
            let signature = self.signer.sign(&self.read(&file)).expect("sign");
            self.write(&format!("{file}.sig"), signature);
        }
    }

    /// What the signer alone can do after changing tag files: every line of
    /// every tag manifest that names a file there takes that file's digest
    /// (its separator, path and line end kept as written), and each tag
    /// manifest is signed again.
    fn resign(&self) {
        for algorithm in self.tag_algorithms() {
            let file = tag_manifest(algorithm);
            let hex = algorithm.hex_len();
            let mut out = Vec::new();
            for line in self.read(&file).split_inclusive(|b| *b == b'\n') {
                let named = std::str::from_utf8(line)
                    .ok()
                    .and_then(|l| l.get(hex..))
                    .map(|rest| rest.trim().trim_start_matches('*'))
                    .filter(|name| !name.is_empty() && self.path(name).is_file());
                match named {
                    Some(name) => {
                        out.extend_from_slice(digest(algorithm, &self.read(name)).as_bytes());
                        out.extend_from_slice(&line[hex..]);
                    }
                    None => out.extend_from_slice(line),
                }
            }
            self.write(&file, out);
        }
        self.sign();
    }

    /// Add `line` to the end of the manifest `file`, and sign again.
    fn append(&self, file: &str, line: &str) {
        let mut text = self.text(file);
        text.push_str(line);
        text.push('\n');
        self.write(file, text);
        self.resign();
    }

    /// The number the next line of `file` will have.
    fn next_line(&self, file: &str) -> usize {
        self.text(file).lines().count() + 1
    }

    /// Payload-Oxum set to what the payload holds now.
    fn recount_oxum(&self) {
        let (mut octets, mut streams) = (0, 0);
        let mut folders = vec![self.path("data")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(folder).expect("list") {
                let entry = entry.expect("entry");
                let meta = entry.metadata().expect("stat");
                if meta.is_dir() {
                    folders.push(entry.path());
                } else {
                    octets += meta.len();
                    streams += 1;
                }
            }
        }
        let info: String = self
            .text("bag-info.txt")
            .lines()
            .map(|l| match l.strip_prefix("Payload-Oxum: ") {
                Some(_) => format!("Payload-Oxum: {octets}.{streams}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        self.write("bag-info.txt", info);
    }
}

fn tag_manifest(algorithm: Algorithm) -> String {
    format!("tagmanifest-{}.txt", algorithm.name())
}

fn digest(algorithm: Algorithm, bytes: &[u8]) -> String {
    match algorithm {
        Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(bytes)),
        Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
    }
}

fn sha256(bytes: &[u8]) -> String {
    digest(Algorithm::Sha256, bytes)
}

fn assert_problem(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "{needle:?} not in {problems:?}"
    );
}

fn assert_valid(problems: &[String], case: &str) {
    assert_eq!(problems, &[] as &[String], "{case}");
}

// --- bagit.txt ---------------------------------------------------------------

/// baginfo-missing-encoding, bom-in-bagit.txt, invalid-version-number,
/// bagit-with-invalid-whitespace, the trailing space of v1.0's
/// same-filename-listed-twice-with-different-hashes, and the declarations of
/// ISO-8859-1-encoded-tag-files and UTF-16-encoded-tag-files (and the 0.96 of
/// same-filename-listed-twice-with-different-normalization).
#[test]
fn a_bagit_txt_that_is_not_the_two_lines_is_refused_even_when_signed() {
    for (case, text) in [
        ("baginfo-missing-encoding", "BagIt-Version: 1.0\n"),
        (
            "bom-in-bagit.txt",
            "\u{feff}BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
        ),
        (
            "invalid-version-number",
            "BagIt-Version: .97\nTag-File-Character-Encoding: UTF-8\n",
        ),
        (
            "bagit-with-invalid-whitespace",
            "BagIt-Version : 1.0\nTag-File-Character-Encoding : UTF-8\n",
        ),
        (
            "trailing space",
            "BagIt-Version: 1.0 \nTag-File-Character-Encoding: UTF-8\n",
        ),
        (
            "ISO-8859-1-encoded-tag-files",
            "BagIt-Version: 1.0\nTag-File-Character-Encoding: ISO-8859-1\n",
        ),
        (
            "UTF-16-encoded-tag-files",
            "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-16\n",
        ),
        (
            "version 0.96",
            "BagIt-Version: 0.96\nTag-File-Character-Encoding: UTF-8\n",
        ),
    ] {
        let p = package();
        p.write("bagit.txt", text);
        p.resign();
        for problems in p.both() {
            assert_eq!(
                problems,
                ["bagit.txt: not the two lines of a BagIt 1.0 bag"],
                "{case}"
            );
        }
    }
}

/// The tag files of the suite's bags made on Windows: CRLF line ends, and
/// bagit.txt without a final one. RFC 8493 allows both; `sha256sum -c`
/// reads CRLF manifests too.
#[test]
fn tag_files_with_windows_line_ends_verify() {
    let p = package();
    p.write(
        "bagit.txt",
        "BagIt-Version: 1.0\r\nTag-File-Character-Encoding: UTF-8",
    );
    for file in ["bag-info.txt", "manifest-sha256.txt"] {
        let crlf = p.text(file).replace('\n', "\r\n");
        p.write(file, crlf);
    }
    p.resign();
    let crlf = p.text("tagmanifest-sha256.txt").replace('\n', "\r\n");
    p.write("tagmanifest-sha256.txt", crlf);
    p.sign();
    for problems in p.both() {
        assert_valid(&problems, "CRLF");
    }
    let (ok, out) = bash(
        &p.bag,
        "sha256sum --quiet -c tagmanifest-sha256.txt && sha256sum --quiet -c manifest-sha256.txt",
    );
    assert!(ok, "{out}");
}

/// missing-bagit.txt and missing-baginfo, as the suite has them (still
/// listed) and with the tag manifest rewritten without them.
#[test]
fn a_missing_bagit_txt_or_bag_info_is_refused() {
    let p = package();
    p.remove("bagit.txt");
    for problems in p.both() {
        assert_eq!(problems, ["not a BagIt package (no bagit.txt)"]);
    }
    unlist(&p, "bagit.txt");
    for problems in p.both() {
        assert_eq!(problems, ["not a BagIt package (no bagit.txt)"]);
    }

    let p = package();
    p.remove("bag-info.txt");
    for problems in p.both() {
        assert_problem(&problems, "bag-info.txt: missing");
        assert_problem(
            &problems,
            "bag-info.txt: listed in tagmanifest-sha256.txt but missing",
        );
    }
    unlist(&p, "bag-info.txt");
    for mut problems in p.both() {
        problems.sort();
        assert_eq!(
            problems,
            [
                "bag-info.txt: missing",
                "tagmanifest-sha256.txt does not list bag-info.txt",
            ]
        );
    }
}

/// Drop `file` from the tag manifest and sign again.
fn unlist(p: &Package, file: &str) {
    let text: String = p
        .text("tagmanifest-sha256.txt")
        .lines()
        .filter(|l| !l.ends_with(&format!("  {file}")))
        .map(|l| format!("{l}\n"))
        .collect();
    p.write("tagmanifest-sha256.txt", text);
    p.sign();
}

// --- digests -------------------------------------------------------------------

/// corrupt-data-file: a payload file changed after packaging, in size (as
/// the suite's) and in place.
#[test]
fn a_payload_file_changed_after_packaging_is_refused() {
    let p = package();
    p.write("data/evidence/a.json", "INVALID [1,2,3]");
    for problems in p.both() {
        assert_problem(
            &problems,
            "data/evidence/a.json: SHA-256 does not match the manifest",
        );
        assert_problem(&problems, "bag-info.txt: Payload-Oxum");
    }
    p.write("data/evidence/a.json", "[1,2,4]");
    for problems in p.both() {
        assert_eq!(
            problems,
            ["data/evidence/a.json: SHA-256 does not match the manifest"]
        );
    }
}

/// corrupt-tag-file: the tag manifest's digests start with `deadbeef`, as
/// left after packaging and as signed again.
#[test]
fn wrong_tag_manifest_digests_are_refused_even_when_signed() {
    let p = package();
    let text: String = p
        .text("tagmanifest-sha256.txt")
        .lines()
        .map(|l| format!("deadbeef{}\n", &l[8..]))
        .collect();
    p.write("tagmanifest-sha256.txt", &text);
    let listed: Vec<String> = text.lines().map(|l| l[66..].to_owned()).collect();
    assert!(listed.contains(&"bagit.txt".to_owned()), "{listed:?}");
    for problems in p.both() {
        assert_problem(
            &problems,
            "tagmanifest-sha256.txt.sig: the signature does not match tagmanifest-sha256.txt",
        );
    }
    p.sign();
    for problems in p.both() {
        for file in &listed {
            assert_problem(
                &problems,
                &format!("{file}: SHA-256 does not match the tag manifest"),
            );
        }
        assert!(!problems.iter().any(|p| p.contains(".sig")), "{problems:?}");
    }
}

// --- payload listing -----------------------------------------------------------

/// extra-file-in-bag: a payload file no manifest lists, with Payload-Oxum as
/// the suite leaves it and recounted by the signer.
#[test]
fn an_unlisted_payload_file_is_refused() {
    let p = package();
    p.write("data/bar", "Fri Feb 26 18:29:32 EST 2016\n");
    for problems in p.both() {
        assert_problem(
            &problems,
            "data/bar: present but not listed in manifest-sha256.txt",
        );
        assert_problem(&problems, "bag-info.txt: Payload-Oxum");
    }
    p.recount_oxum();
    p.resign();
    for problems in p.both() {
        assert_problem(
            &problems,
            "data/bar: present but not listed in manifest-sha256.txt",
        );
        assert_problem(&problems, "listed in manifest-sha256.txt)");
    }
}

/// notAllManifestsListAllFiles: with a SHA-256 and a SHA-512 manifest, a
/// file only one of them lists, the other signed and counted as it should.
#[test]
fn every_manifest_must_list_every_payload_file() {
    let name = "data/missingFromManifest.txt";
    let bytes = b"this file should be missing from a manifest so that it becomes invalid\n";
    for (listed_in, missing_from) in [
        (Algorithm::Sha256, Algorithm::Sha512),
        (Algorithm::Sha512, Algorithm::Sha256),
    ] {
        let p = package_of(&[Algorithm::Sha512], &[]);
        p.write(name, bytes);
        p.recount_oxum();
        let file = format!("manifest-{}.txt", listed_in.name());
        p.append(&file, &format!("{}  {name}", digest(listed_in, bytes)));
        let expected = format!(
            "{name}: present but not listed in manifest-{}.txt",
            missing_from.name()
        );
        for problems in p.both() {
            if listed_in == Algorithm::Sha256 {
                assert_eq!(problems, [expected.as_str()]);
            } else {
                // Payload-Oxum is held against the SHA-256 manifest.
                assert_problem(&problems, &expected);
            }
        }
    }
}

/// same-filename-listed-twice-with-different-hashes (v0.97 and v1.0) and
/// same-filename-listed-twice-with-the-same-hash (v1.0 invalid, v0.97
/// warning): refused in either order, in the SHA-512 manifest too, and in a
/// tag manifest.
#[test]
fn a_path_listed_twice_is_refused() {
    let right = sha256(b"[1,2,3]");
    let wrong = format!("deadbeef{}", &right[8..]);
    for (case, second) in [
        ("different hashes", wrong.as_str()),
        ("the same hash", right.as_str()),
    ] {
        let p = package();
        p.append(
            "manifest-sha256.txt",
            &format!("{second}  data/evidence/a.json"),
        );
        for problems in p.both() {
            assert_eq!(
                problems,
                ["manifest-sha256.txt: data/evidence/a.json is listed twice"],
                "{case}"
            );
        }
    }

    // The wrong digest first.
    let p = package();
    let text = p.text("manifest-sha256.txt");
    p.write(
        "manifest-sha256.txt",
        format!("{wrong}  data/evidence/a.json\n{text}"),
    );
    p.resign();
    for problems in p.both() {
        assert_problem(
            &problems,
            "manifest-sha256.txt: data/evidence/a.json is listed twice",
        );
    }

    let p = package_of(&[Algorithm::Sha512], &[]);
    let again = p
        .text("manifest-sha512.txt")
        .lines()
        .find(|l| l.ends_with("  data/run.json"))
        .expect("listed")
        .to_owned();
    p.append("manifest-sha512.txt", &again);
    for problems in p.both() {
        assert_eq!(
            problems,
            ["manifest-sha512.txt: data/run.json is listed twice"]
        );
    }

    let p = package();
    let again = p
        .text("tagmanifest-sha256.txt")
        .lines()
        .find(|l| l.ends_with("  bag-info.txt"))
        .expect("listed")
        .to_owned();
    let mut text = p.text("tagmanifest-sha256.txt");
    text.push_str(&again);
    text.push('\n');
    p.write("tagmanifest-sha256.txt", text);
    p.sign();
    for problems in p.both() {
        assert_eq!(
            problems,
            ["tagmanifest-sha256.txt: bag-info.txt is listed twice"]
        );
    }
}

// --- paths out of the bag and fetch.txt ----------------------------------------

/// The out-of-scope-file-paths cases of v0.97/invalid, linux-only and
/// windows-only: a manifest line whose path leaves the bag, listed by the
/// signer in the payload manifest and in the tag manifest.
#[test]
fn manifest_paths_that_leave_the_bag_are_refused_even_when_signed() {
    let unsafe_paths = [
        "../../../README.md",
        "\\.\\./\\.\\./\\.\\./README.md",
        "data/../../../README.md",
        "/tmp/foo",
        "C:\\Windows\\System32\\setx.exe",
        "%HomeDrive%\\Windows\\System32\\setx.exe",
        "\\\\?\\UNC\\server\\Windows\\System32\\setx.exe",
    ];
    let home_paths = ["~/foo", "~root/foo"];
    let bytes = b"# README\n";
    for path in unsafe_paths.iter().chain(&home_paths) {
        let p = package();
        let n = p.next_line("manifest-sha256.txt");
        p.append("manifest-sha256.txt", &format!("{}  {path}", sha256(bytes)));
        for problems in p.both() {
            if unsafe_paths.contains(path) {
                assert_eq!(
                    problems,
                    [format!("manifest-sha256.txt:{n}: unsafe path {path:?}")]
                );
            } else {
                assert_problem(
                    &problems,
                    &format!("manifest-sha256.txt lists {path:?} outside data/"),
                );
            }
        }

        let p = package();
        let n = p.next_line("tagmanifest-sha256.txt");
        let mut text = p.text("tagmanifest-sha256.txt");
        text.push_str(&format!("{}  {path}\n", sha256(bytes)));
        p.write("tagmanifest-sha256.txt", text);
        p.sign();
        for problems in p.both() {
            if unsafe_paths.contains(path) {
                assert_eq!(
                    problems,
                    [format!("tagmanifest-sha256.txt:{n}: unsafe path {path:?}")]
                );
            } else {
                assert_eq!(
                    problems,
                    [format!(
                        "{path}: listed in tagmanifest-sha256.txt but missing"
                    )]
                );
            }
        }
    }
}

/// The `-for-fetch` cases and holey-bag: fetch.txt in the suite's form (a
/// `-` for the length, CRLF line ends), naming a path out of the bag or the
/// bag's own files, signed; and, as out-of-scope-file-paths-using-unc-for-fetch
/// has it, unlisted beside a stray root file.
#[test]
fn fetch_txt_is_refused_whatever_it_names() {
    let url = "https://en.wikipedia.org";
    let cases = [
        ("dot-notation-for-fetch", "../../../README.md"),
        ("linux absolute-path-for-fetch", "/tmp/test.txt"),
        ("linux shortcut-for-fetch", "~/test.txt"),
        ("linux shortcut-username-for-fetch", "~root/foo"),
        (
            "windows absolute-path-for-fetch",
            "C:\\Windows\\System32\\setx.exe",
        ),
        (
            "windows shortcut-for-fetch",
            "%HomeDrive%\\Windows\\System32\\setx.exe",
        ),
        (
            "windows unc-for-fetch",
            "\\\\?\\UNC\\server\\Windows\\System32\\setx.exe",
        ),
        ("holey-bag", "data/evidence/a.json"),
    ];
    for (case, target) in cases {
        let p = package();
        let mut text = format!("{url} - {target}\r\n");
        if case == "holey-bag" {
            text.push_str(&format!("{url}/run.json 2 data/run.json\r\n"));
        }
        p.write("fetch.txt", text);
        p.append(
            "tagmanifest-sha256.txt",
            &format!("{}  fetch.txt", sha256(&p.read("fetch.txt"))),
        );
        for problems in p.both() {
            assert_eq!(
                problems,
                [
                    "fetch.txt: the bag is holey (it names files to fetch from elsewhere); \
                     an auditpack package holds every file itself"
                ],
                "{case}"
            );
        }
    }

    let p = package();
    p.write(
        "fetch.txt",
        format!("{url} - \\\\?\\UNC\\server\\Windows\\System32\\setx.exe\n"),
    );
    p.write(
        ".-verifyvalid-null.txt",
        "(error) Tag manifest tagmanifest-md5.txt contains invalid files\n",
    );
    for problems in p.both() {
        assert_problem(&problems, "fetch.txt: the bag is holey");
        for file in ["fetch.txt", ".-verifyvalid-null.txt"] {
            assert_problem(
                &problems,
                &format!("{file}: present but not listed in tagmanifest-sha256.txt"),
            );
        }
    }
}

// --- manifest line forms -------------------------------------------------------

/// made-with-md5sum-tools: `<digest> *<path>` lines, as `sha256sum -b`
/// writes them, in both manifests: accepted, as `sha256sum -c` accepts them.
#[test]
fn binary_mode_manifest_lines_verify() {
    let p = package();
    for file in ["manifest-sha256.txt", "tagmanifest-sha256.txt"] {
        let text = p.text(file).replace("  ", " *");
        assert!(text.contains(" *data/") || text.contains(" *bagit.txt"));
        p.write(file, text);
        p.resign();
    }
    for problems in p.both() {
        assert_valid(&problems, "made-with-md5sum-tools");
    }
    let (ok, out) = bash(
        &p.bag,
        "sha256sum --quiet -c tagmanifest-sha256.txt && sha256sum --quiet -c manifest-sha256.txt",
    );
    assert!(ok, "{out}");
}

/// relative-path and bag-with-leading-dot-slash-in-manifest: a path
/// listed as `./data/...`. auditpack writes `data/...`, and the README's
/// `diff` of the listing against the manifest would not match either.
#[test]
fn a_leading_dot_slash_in_a_manifest_is_refused() {
    let p = package();
    let n = p
        .text("manifest-sha256.txt")
        .lines()
        .position(|l| l.ends_with("  data/evidence/a.json"))
        .expect("listed")
        + 1;
    let text = p
        .text("manifest-sha256.txt")
        .replace("  data/evidence/a.json", "  ./data/evidence/a.json");
    p.write("manifest-sha256.txt", text);
    p.resign();
    for problems in p.both() {
        assert_problem(
            &problems,
            &format!("manifest-sha256.txt:{n}: unsafe path \"./data/evidence/a.json\""),
        );
        assert_problem(
            &problems,
            "data/evidence/a.json: present but not listed in manifest-sha256.txt",
        );
    }
}

// --- names ---------------------------------------------------------------------

/// bag-with-space, bag-with-escapable-characters and bag-with-encoded-names:
/// the names as auditpack packages them (CR, LF and `%` percent-encoded),
/// and with `%` listed literally, as 0.97 tools wrote `%7Etest1.txt`.
#[test]
fn names_with_spaces_escapes_and_percent_signs_verify() {
    let names: [(&str, &[u8]); 9] = [
        ("test 1.txt", b"test1"),
        ("test file with spaces.txt", b"spaces"),
        ("%7Etest1.txt", b"test1"),
        ("%test2.txt", b"test2"),
        ("dir1/~test3.txt", b"test3"),
        ("%7Edir2/dir3/test5.txt", b"test5"),
        ("100%.txt", b"percent"),
        ("line\nbreak.txt", b"lf"),
        ("cr\rname.txt", b"cr"),
    ];
    let p = package_of(&[], &names);
    let manifest = p.text("manifest-sha256.txt");
    for listed in [
        "  data/test 1.txt\n",
        "  data/%257Etest1.txt\n",
        "  data/%25test2.txt\n",
        "  data/line%0Abreak.txt\n",
        "  data/cr%0Dname.txt\n",
    ] {
        assert!(manifest.contains(listed), "{listed:?} not in {manifest}");
    }
    for problems in p.both() {
        assert_valid(&problems, "as auditpack writes them");
    }
    p.write("manifest-sha256.txt", manifest.replace("%25", "%"));
    p.resign();
    for problems in p.both() {
        assert_valid(&problems, "as 0.97 tools wrote them");
    }
}

/// duplicate-file-with-different-case and
/// same-filename-listed-twice-with-different-normalization: two listings
/// for one file are refused; two files are two names, as the packager
/// writes them from a run folder on Linux.
#[test]
fn names_that_differ_by_case_or_normal_form_are_two_names() {
    let nfc = "N\u{fa}\u{f1}ez";
    let nfd = "Nu\u{301}n\u{303}ez";
    for (there, other) in [("hello.txt", "HELLO.txt"), (nfc, nfd)] {
        let p = package_of(&[], &[(there, &b"hello\n"[..])]);
        p.append(
            "manifest-sha256.txt",
            &format!("{}  data/{other}", sha256(b"hello\n")),
        );
        for problems in p.both() {
            assert_problem(
                &problems,
                &format!("data/{other}: listed in manifest-sha256.txt but missing"),
            );
        }

        let p = package_of(&[], &[(there, &b"hello\n"[..]), (other, &b"hello\n"[..])]);
        for problems in p.both() {
            assert_valid(&problems, other);
        }
    }
}

/// special-system-files: `.DS_Store` and `Thumbs.db` that the signer
/// listed are payload like any other; one listed but absent (as in the
/// suite's checkout, which holds no `.DS_Store`) is missing.
#[test]
fn system_files_the_signer_listed_are_payload() {
    let p = package_of(&[], &[(".DS_Store", &b""[..]), ("Thumbs.db", &b""[..])]);
    for problems in p.both() {
        assert_valid(&problems, "special-system-files");
    }
    p.remove("data/.DS_Store");
    for problems in p.both() {
        assert_problem(
            &problems,
            "data/.DS_Store: listed in manifest-sha256.txt but missing",
        );
    }
}

/// bag-in-a-bag (and minimal-bag, whose payload is a bag): a whole bag
/// under `data/`, with its own manifests of other algorithms and a fetch.txt,
/// is payload.
#[test]
fn a_bag_in_the_payload_is_payload() {
    let inner: [(&str, &[u8]); 7] = [
        (
            "bag/bagit.txt",
            b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
        ),
        ("bag/bag-info.txt", b"Bag-Count: 1 of 15\r\n"),
        (
            "bag/manifest-md5.txt",
            b"5a105e8b9d40e1329780d62ea2265d8a  data/test1.txt\r\n",
        ),
        (
            "bag/tagmanifest-md5.txt",
            b"41b89090f32a9ef33226b48f1b98dddf  bagit.txt\r\n",
        ),
        (
            "bag/fetch.txt",
            b"http://localhost:8989/test3.txt - data/dir1/test3.txt\r\n",
        ),
        ("bag/data/test1.txt", b"test1"),
        ("bag/data/dir2/dir3/test5.txt", b"test5"),
    ];
    let p = package_of(&[], &inner);
    for problems in p.both() {
        assert_valid(&problems, "bag-in-a-bag");
    }
}

// --- bag-info.txt --------------------------------------------------------------

/// ISO-8859-1-encoded-tag-files and UTF-16-encoded-tag-files under the
/// UTF-8 declaration auditpack requires: tag files in other encodings.
#[test]
fn tag_files_in_other_encodings_are_refused_even_when_signed() {
    // A value in ISO-8859-1.
    let p = package();
    let mut info = p.read("bag-info.txt");
    info.extend_from_slice(b"Contact-Name: Ren\xe9 Janssen\n");
    p.write("bag-info.txt", info);
    p.resign();
    for problems in p.both() {
        assert_eq!(problems, ["bag-info.txt: not UTF-8"]);
    }

    // Whole files in UTF-16 with a byte-order mark.
    for file in [
        "bag-info.txt",
        "manifest-sha256.txt",
        "tagmanifest-sha256.txt",
    ] {
        let p = package();
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(p.text(file).encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        p.write(file, utf16);
        if file == "tagmanifest-sha256.txt" {
            p.sign();
        } else {
            p.resign();
        }
        for problems in p.both() {
            if file == "bag-info.txt" {
                assert_eq!(problems, ["bag-info.txt: not UTF-8"]);
            } else {
                assert_problem(&problems, &format!("{file}: not UTF-8"));
            }
        }
    }
}

/// duplicate-metadata-entries and uncommon-metadata-separators: labels
/// other than Payload-Oxum may repeat, vary in case and be written with
/// whitespace around the colon (the signer's metadata, which auditpack does
/// not read); a continuation line is part of the value before it.
#[test]
fn repeated_labels_and_uncommon_separators_verify() {
    let p = package();
    let mut info = p.text("bag-info.txt");
    info.push_str(
        "Contact-Email: cadams@loc.gov\n\
         contact-name: Chris Adams\n\
         Contact-Email: jsca@loc.gov\n\
         Case-Insensitivity-Test: 1\n\
         CASE-INSENSITIVITY-TEST: 2\n\
         case-insensitivity-test: 3\n\
         Test-Tag: 1\n\
         Test-Tag:   2\n\
         Test-Tag : 3\n\
         Test-Tag    :   5\n\
         External-Description: a value that goes on\n  \
         Payload-Oxum: 1.1 (part of the description)\n",
    );
    p.write("bag-info.txt", info);
    p.resign();
    for problems in p.both() {
        assert_valid(&problems, "other labels");
    }

    // Payload-Oxum with more whitespace after its colon.
    let p = package();
    let info = p
        .text("bag-info.txt")
        .replace("Payload-Oxum: ", "Payload-Oxum:   ");
    p.write("bag-info.txt", info);
    p.resign();
    for problems in p.both() {
        assert_valid(&problems, "Payload-Oxum:   ");
    }
}

/// duplicate-metadata-entries and uncommon-metadata-separators applied to
/// Payload-Oxum, which RFC 8493 allows once: a second one, whatever its
/// value, case or separator, is refused, and the only one must be written
/// `Payload-Oxum: <octets>.<streams>`.
#[test]
fn payload_oxum_must_be_written_once_and_plainly() {
    let oxum = |p: &Package| {
        p.text("bag-info.txt")
            .lines()
            .find_map(|l| l.strip_prefix("Payload-Oxum: ").map(str::to_owned))
            .expect("oxum")
    };
    for second in [
        "Payload-Oxum: {oxum}",
        "Payload-Oxum: 1.1",
        "PAYLOAD-OXUM: 1.1",
        "Payload-Oxum : 1.1",
        "payload-oxum\t:\t1.1",
    ] {
        for first in [true, false] {
            let p = package();
            let line = second.replace("{oxum}", &oxum(&p));
            let info = p.text("bag-info.txt");
            let info = if first {
                format!("{line}\n{info}")
            } else {
                format!("{info}{line}\n")
            };
            p.write("bag-info.txt", info);
            p.resign();
            for problems in p.both() {
                assert_eq!(
                    problems,
                    ["bag-info.txt: Payload-Oxum is given 2 times; RFC 8493 allows it once"],
                    "{line:?}"
                );
            }
        }
    }

    for written in [
        "Payload-Oxum : {oxum}",
        "Payload-Oxum    :   {oxum}",
        "payload-oxum: {oxum}",
    ] {
        let p = package();
        let line = written.replace("{oxum}", &oxum(&p));
        let info = p
            .text("bag-info.txt")
            .replace(&format!("Payload-Oxum: {}", oxum(&p)), &line);
        p.write("bag-info.txt", info);
        p.resign();
        for problems in p.both() {
            assert_eq!(
                problems,
                [format!(
                    "bag-info.txt: {line:?} is not written `Payload-Oxum: <octets>.<streams>`"
                )]
            );
        }
    }
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
