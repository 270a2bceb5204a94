//! The rule that makes a package the signer's: **every file in it is covered
//! by a valid signature**. A payload file (under `data/`) is covered when
//! every payload manifest lists it; any other file when every tag manifest
//! lists it; each tag manifest when its own signature (`<tag manifest>.sig`)
//! verifies. Exempt are only those signatures and the RFC 3161 timestamp
//! over `tagmanifest-sha256.txt`, which are checked themselves. Anything else
//! (a file no manifest lists, a manifest of an algorithm auditpack does not
//! accept, `fetch.txt`, an empty folder) makes the package invalid, with the
//! file named.
//!
//! These are pure functions over a package's listing and its parsed
//! manifests, so the folder and zip readers go through the same rule.

use std::collections::{BTreeMap, BTreeSet};

use super::hash::Algorithm;
use super::timestamp::TIMESTAMP_FILE;

/// The manifest algorithms auditpack accepts, SHA-256 (always required)
/// first.
pub(crate) const ACCEPTED: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

/// A parsed manifest of one algorithm: path -> lower-case hex digest.
pub(crate) type Listed = (Algorithm, BTreeMap<String, String>);

/// The two kinds of manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `manifest-<algorithm>.txt`: every payload file.
    Payload,
    /// `tagmanifest-<algorithm>.txt`: every other file but the signatures.
    Tag,
}

impl Kind {
    /// The manifest file of this kind for `algorithm`.
    pub(crate) fn file(self, algorithm: Algorithm) -> String {
        match self {
            Kind::Payload => format!("manifest-{}.txt", algorithm.name()),
            Kind::Tag => format!("tagmanifest-{}.txt", algorithm.name()),
        }
    }
}

/// The signature over the tag manifest of `algorithm`, beside it.
pub(crate) fn signature_file(algorithm: Algorithm) -> String {
    format!("{}.sig", Kind::Tag.file(algorithm))
}

/// Which manifests a package has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Payload manifest algorithms to check: SHA-256 whether or not its
    /// manifest is there (it is required), then every other one present.
    pub(crate) payload: Vec<Algorithm>,
    /// Tag manifest algorithms to check, the same way.
    pub(crate) tag: Vec<Algorithm>,
}

/// The manifests of a package from its listing. A root file that names
/// itself a manifest of an algorithm auditpack does not accept (`md5`,
/// `sha1`, anything unknown, or a name not in lower case) and `fetch.txt`
/// (a holey bag) go into `problems`.
pub(crate) fn layout(files: &BTreeMap<String, u64>, problems: &mut Vec<String>) -> Layout {
    let mut layout = Layout {
        payload: vec![Algorithm::Sha256],
        tag: vec![Algorithm::Sha256],
    };
    for name in files.keys().filter(|n| !n.contains('/')) {
        let lower = name.to_ascii_lowercase();
        if lower == "fetch.txt" {
            problems.push(format!(
                "{name}: the bag is holey (it names files to fetch from elsewhere); \
                 an auditpack package holds every file itself"
            ));
            continue;
        }
        let (kind, rest) = match (
            lower.strip_prefix("tagmanifest-"),
            lower.strip_prefix("manifest-"),
        ) {
            (Some(rest), _) => (Kind::Tag, rest),
            (None, Some(rest)) => (Kind::Payload, rest),
            (None, None) => continue,
        };
        let Some(algorithm) = rest.strip_suffix(".txt") else {
            continue; // a signature or timestamp, or not a manifest name
        };
        match ACCEPTED.iter().find(|a| kind.file(**a) == *name) {
            Some(Algorithm::Sha256) => {}
            Some(accepted) => match kind {
                Kind::Payload => layout.payload.push(*accepted),
                Kind::Tag => layout.tag.push(*accepted),
            },
            None => {
                // The algorithm as written, which may differ from `lower` in
                // case (ASCII case changes no length).
                let at = name.len() - algorithm.len() - ".txt".len();
                let written = name.get(at..name.len() - ".txt".len()).unwrap_or(algorithm);
                problems.push(format!(
                    "{name}: unsupported manifest algorithm {written:?} \
                     (auditpack accepts sha256 and sha512, named in lower case)"
                ));
            }
        }
    }
    layout
}

/// Whether `path` may be listed in a tag manifest: not payload, not a tag
/// manifest (a manifest of any algorithm, or its signature or timestamp).
pub(crate) fn is_tag_file(path: &str) -> bool {
    !path.starts_with("data/")
        && !path
            .split('/')
            .next()
            .is_some_and(|root| root.to_ascii_lowercase().starts_with("tagmanifest-"))
}

/// RFC 8493 section 3, for every payload manifest present: each lists every
/// payload file, and only payload files that are there. (Digests are
/// compared where the files are hashed, once for all algorithms.)
pub(crate) fn check_payload(
    files: &BTreeMap<String, u64>,
    manifests: &[Listed],
    problems: &mut Vec<String>,
) {
    for (algorithm, manifest) in manifests {
        let file = Kind::Payload.file(*algorithm);
        for path in manifest.keys().filter(|p| !p.starts_with("data/")) {
            problems.push(format!("{file} lists {path:?} outside data/"));
        }
        // Both lists are sorted: one walk through them together, not a
        // lookup in the other for each of 20,000 paths.
        let listed = manifest.keys().filter(|p| p.starts_with("data/"));
        let present = files.keys().filter(|p| p.starts_with("data/"));
        let (missing, unlisted) = differences(listed, present);
        for path in missing {
            problems.push(format!("{path}: listed in {file} but missing"));
        }
        for path in unlisted {
            problems.push(format!("{path}: present but not listed in {file}"));
        }
    }
}

/// The items only `a` holds and those only `b` holds, of two sorted lists
/// without repeats, in order.
pub(crate) fn differences<'a>(
    a: impl Iterator<Item = &'a String>,
    b: impl Iterator<Item = &'a String>,
) -> (Vec<&'a String>, Vec<&'a String>) {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.cmp(y) {
                std::cmp::Ordering::Less => only_a.extend(a.next()),
                std::cmp::Ordering::Greater => only_b.extend(b.next()),
                std::cmp::Ordering::Equal => {
                    a.next();
                    b.next();
                }
            },
            (Some(_), None) => only_a.extend(a.next()),
            (None, Some(_)) => only_b.extend(b.next()),
            (None, None) => return (only_a, only_b),
        }
    }
}

/// Every tag manifest lists only tag files that are there, and every file
/// outside `data/` is listed in every tag manifest, except the tag manifests
/// themselves, their signatures and the timestamp.
pub(crate) fn check_tags(
    files: &BTreeMap<String, u64>,
    layout: &Layout,
    manifests: &[Listed],
    problems: &mut Vec<String>,
) {
    for (algorithm, listed) in manifests {
        let file = Kind::Tag.file(*algorithm);
        for required in ["bagit.txt", "bag-info.txt", "manifest-sha256.txt"] {
            if !listed.contains_key(required) {
                problems.push(format!("{file} does not list {required}"));
            }
        }
        for path in listed.keys() {
            if !is_tag_file(path) {
                problems.push(format!("{file} lists {path:?}, which is not a tag file"));
            } else if !files.contains_key(path) {
                problems.push(format!("{path}: listed in {file} but missing"));
            }
        }
    }
    let exempt: BTreeSet<String> = layout
        .tag
        .iter()
        .flat_map(|a| [Kind::Tag.file(*a), signature_file(*a)])
        .chain([TIMESTAMP_FILE.to_owned()])
        .collect();
    for name in files.keys() {
        if name.starts_with("data/") || exempt.contains(name) {
            continue;
        }
        for (algorithm, listed) in manifests {
            if !listed.contains_key(name) {
                problems.push(format!(
                    "{name}: present but not listed in {}, so no signature covers it",
                    Kind::Tag.file(*algorithm)
                ));
            }
        }
    }
}

/// The folders of a package: `data/` is there, no folder is also a file,
/// and none is empty (a name no manifest can cover; auditpack never writes
/// one).
pub(crate) fn check_folders(
    files: &BTreeMap<String, u64>,
    folders: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    if !folders.contains("data") {
        problems.push("data/: the payload folder is missing".into());
    }
    for folder in folders {
        if files.contains_key(folder) {
            problems.push(format!("{folder}: both a file and a folder"));
            continue;
        }
        let prefix = format!("{folder}/");
        let holds_a_file = files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(path, _)| path.starts_with(&prefix));
        if !holds_a_file {
            problems.push(format!(
                "{prefix}: an empty folder, which no manifest covers"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> BTreeMap<String, u64> {
        names.iter().map(|n| ((*n).to_owned(), 1)).collect()
    }

    #[test]
    fn differences_of_two_sorted_lists() {
        let owned =
            |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };
        let a = owned(&["data/a", "data/b", "data/d", "data/f"]);
        let b = owned(&["data/b", "data/c", "data/d", "data/e", "data/g"]);
        let (only_a, only_b) = differences(a.iter(), b.iter());
        assert_eq!(only_a, [&a[0], &a[3]]);
        assert_eq!(only_b, [&b[1], &b[3], &b[4]]);
        let none: Vec<String> = Vec::new();
        let (only_a, only_b) = differences(none.iter(), b.iter());
        assert!(only_a.is_empty());
        assert_eq!(only_b.len(), b.len());
        let (only_a, only_b) = differences(a.iter(), a.iter());
        assert!(only_a.is_empty() && only_b.is_empty());
    }

    fn listed(algorithm: Algorithm, names: &[&str]) -> Listed {
        (
            algorithm,
            names
                .iter()
                .map(|n| ((*n).to_owned(), String::new()))
                .collect(),
        )
    }

    #[test]
    fn manifests_are_found_and_unsupported_ones_named() {
        let mut problems = Vec::new();
        let found = layout(
            &listing(&[
                "bagit.txt",
                "manifest-sha256.txt",
                "manifest-sha512.txt",
                "manifest-md5.txt",
                "Manifest-SHA1.txt",
                "tagmanifest-sha256.txt",
                "tagmanifest-sha256.txt.sig",
                "tagmanifest-sha512.txt",
                "tagmanifest-blake3.txt",
                "FETCH.txt",
                "data/manifest-md5.txt",
                "meta/fetch.txt",
            ]),
            &mut problems,
        );
        assert_eq!(
            found,
            Layout {
                payload: vec![Algorithm::Sha256, Algorithm::Sha512],
                tag: vec![Algorithm::Sha256, Algorithm::Sha512],
            }
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        for needle in [
            "FETCH.txt: the bag is holey",
            "Manifest-SHA1.txt: unsupported manifest algorithm \"SHA1\"",
            "manifest-md5.txt: unsupported manifest algorithm \"md5\"",
            "tagmanifest-blake3.txt: unsupported manifest algorithm \"blake3\"",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(needle)), "{needle}");
        }
        // Case variants of accepted names are not accepted.
        let mut problems = Vec::new();
        let found = layout(&listing(&["manifest-SHA256.txt"]), &mut problems);
        assert_eq!(found.payload, [Algorithm::Sha256]);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn every_file_outside_the_payload_is_in_every_tag_manifest() {
        let files = listing(&[
            "bagit.txt",
            "bag-info.txt",
            "manifest-sha256.txt",
            "extra.txt",
            "tagmanifest-sha256.txt",
            "tagmanifest-sha256.txt.sig",
            "tagmanifest-sha256.txt.tsr",
            "tagmanifest-sha512.txt",
            "tagmanifest-sha512.txt.sig",
            "tagmanifest-sha512.txt.tsr",
            "tagmanifest-md5.txt.sig",
            "data/a",
        ]);
        let layout = Layout {
            payload: vec![Algorithm::Sha256],
            tag: vec![Algorithm::Sha256, Algorithm::Sha512],
        };
        let tags = [
            listed(
                Algorithm::Sha256,
                &["bagit.txt", "bag-info.txt", "manifest-sha256.txt"],
            ),
            listed(
                Algorithm::Sha512,
                &[
                    "bagit.txt",
                    "bag-info.txt",
                    "manifest-sha256.txt",
                    "extra.txt",
                    "data/a",
                    "tagmanifest-sha256.txt",
                    "gone.txt",
                ],
            ),
        ];
        let mut problems = Vec::new();
        check_tags(&files, &layout, &tags, &mut problems);
        assert_eq!(
            problems,
            [
                "tagmanifest-sha512.txt lists \"data/a\", which is not a tag file",
                "gone.txt: listed in tagmanifest-sha512.txt but missing",
                "tagmanifest-sha512.txt lists \"tagmanifest-sha256.txt\", which is not a tag file",
                "extra.txt: present but not listed in tagmanifest-sha256.txt, so no signature covers it",
                "tagmanifest-md5.txt.sig: present but not listed in tagmanifest-sha256.txt, so no signature covers it",
                "tagmanifest-md5.txt.sig: present but not listed in tagmanifest-sha512.txt, so no signature covers it",
                "tagmanifest-sha512.txt.tsr: present but not listed in tagmanifest-sha256.txt, so no signature covers it",
                "tagmanifest-sha512.txt.tsr: present but not listed in tagmanifest-sha512.txt, so no signature covers it",
            ]
        );
    }

    #[test]
    fn folders_hold_files() {
        let files = listing(&["data/a/b", "data/x", "meta"]);
        let folders: BTreeSet<String> = ["data", "data/a", "data/empty", "data/x", "meta"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut problems = Vec::new();
        check_folders(&files, &folders, &mut problems);
        assert_eq!(
            problems,
            [
                "data/empty/: an empty folder, which no manifest covers",
                "data/x: both a file and a folder",
                "meta: both a file and a folder",
            ]
        );
        let mut problems = Vec::new();
        check_folders(&listing(&["bagit.txt"]), &BTreeSet::new(), &mut problems);
        assert_eq!(problems, ["data/: the payload folder is missing"]);
    }
}
