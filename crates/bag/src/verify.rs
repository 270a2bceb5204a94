//! Verifying a package: every file covered by a valid signature (the rule of
//! [`super::cover`], the same for folders and zips), `bagit.txt`, every line
//! of every manifest, Payload-Oxum, each tag manifest's signature by an
//! allowed key in the right namespace, the RFC 3161 timestamp when there is
//! one, and the custody log's agreement with the manifest. Every problem is
//! reported, not only the first.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cms::cert::x509::Certificate;
use ssh_key::{PublicKey, SshSig};

use super::bag::decode_path;
use super::cover::{self, is_tag_file, signature_file, Kind, Listed};
use super::hash::{hash_bytes, Algorithm};
use super::reader::{FolderReader, PackageReader, ZipReader, ZipSource};
use super::timestamp::{self, TimestampInfo, TIMESTAMP_FILE};
use super::NAMESPACE;
use crate::error::{Error, Result, ResultExt};

/// What to check the signature against.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The auditor's `allowed_signers` file.
    pub allowed_signers: PathBuf,
    /// The identity the signer must hold; any principal of a matching key otherwise.
    pub identity: Option<String>,
    /// PEM certificates of the Time-Stamp Authorities the auditor trusts.
    /// When given, the package must carry a timestamp chaining to one of them.
    pub tsa_certificates: Option<PathBuf>,
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Every problem found; empty means valid.
    pub problems: Vec<String>,
    /// Payload files checked.
    pub files: usize,
    /// Payload bytes checked.
    pub bytes: u64,
    /// The principal whose key made the signature, when it verified.
    pub signer: Option<String>,
    /// Controls compared by `--reevaluate`, when it ran.
    pub reevaluated: Option<usize>,
    /// What the RFC 3161 timestamp says, when the package has a valid one.
    pub timestamp: Option<TimestampInfo>,
}

impl VerifyReport {
    /// Whether the package is valid.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Largest tag file read into memory (bag-info, manifests, custody log).
const MAX_TAG_FILE: u64 = 256 << 20;

/// Verify the package at `package`: a bag folder, or a `.zip` holding one,
/// read in place without unpacking.
///
/// # Errors
/// Only when `package` cannot be opened or the allowed signers file cannot be
/// read; everything wrong with the package itself goes into the report.
pub fn verify(package: &Path, options: &VerifyOptions) -> Result<VerifyReport> {
    verify_with(package, options, None)
}

/// A check of what the payload means, beyond what the bag itself proves,
/// run over the same reader after the bag's own checks: `auditpack verify
/// --reevaluate` re-derives facts and results from the evidence this way.
pub trait PayloadCheck {
    /// Add every problem found to `problems`; return how many items were
    /// compared, or `None` when the check could not run (the reason is in
    /// `problems`).
    fn check(&self, package: &dyn PackageReader, problems: &mut Vec<String>) -> Option<usize>;
}

/// [`verify`], with an extra check of the payload (`verify --reevaluate`).
///
/// # Errors
/// As [`verify`].
pub fn verify_with(
    package: &Path,
    options: &VerifyOptions,
    reevaluate: Option<&dyn PayloadCheck>,
) -> Result<VerifyReport> {
    let files = TrustFiles::read(options)?;
    let trust = files.trust(options);
    let meta = std::fs::metadata(package)
        .context(|| format!("cannot open package {}", package.display()))?;
    let mut problems = Vec::new();
    if meta.is_dir() {
        let reader = FolderReader::open(package, &mut problems);
        Ok(check(&reader, &trust, problems, reevaluate))
    } else {
        let opened = ZipReader::open(ZipSource::File(package), &mut problems);
        check_zip(opened, &package.display(), &trust, problems, reevaluate)
    }
}

/// [`verify_with`] for a zipped package read in place through `source`
/// (an object store's ranged reads): the archive's directory, each entry's
/// header and each entry's bytes are read where they lie, in large cached
/// blocks; nothing is downloaded whole.
///
/// # Errors
/// When the allowed signers or TSA certificates cannot be read, or the
/// object cannot be read; everything wrong with the package is in the report.
pub fn verify_remote(
    source: &dyn crate::remote::RangeSource,
    options: &VerifyOptions,
    reevaluate: Option<&dyn PayloadCheck>,
) -> Result<VerifyReport> {
    let files = TrustFiles::read(options)?;
    let trust = files.trust(options);
    let cache = crate::remote::BlockCache::new(source);
    let mut problems = Vec::new();
    let opened = ZipReader::open(ZipSource::Remote(&cache), &mut problems);
    check_zip(opened, &source.name(), &trust, problems, reevaluate)
}

/// Verify a zipped package held in memory against the text of an
/// `allowed_signers` file. Never panics, whatever the bytes.
pub fn verify_zip_bytes(zip: &[u8], allowed_signers: &str, identity: Option<&str>) -> VerifyReport {
    let trust = Trust {
        signers: allowed_signers,
        origin: "the allowed signers".into(),
        identity,
        anchors: None,
    };
    let mut problems = Vec::new();
    match ZipReader::open(ZipSource::Memory(zip), &mut problems) {
        Ok(reader) => check(&reader, &trust, problems, None),
        Err(e) => VerifyReport {
            problems: vec![format!("not a readable zip archive: {e}")],
            ..VerifyReport::default()
        },
    }
}

/// The auditor's trust anchors.
/// What [`VerifyOptions`] names, read: the allowed signers' text and the
/// TSA certificates, if any.
struct TrustFiles {
    signers: String,
    anchors: Option<Vec<Certificate>>,
}

impl TrustFiles {
    fn read(options: &VerifyOptions) -> Result<TrustFiles> {
        let signers = std::fs::read_to_string(&options.allowed_signers).context(|| {
            format!(
                "cannot read allowed signers file {}",
                options.allowed_signers.display()
            )
        })?;
        let anchors = match &options.tsa_certificates {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .context(|| format!("cannot read TSA certificates {}", path.display()))?;
                Some(timestamp::parse_anchors(&bytes).map_err(|e| {
                    Error::invalid(format!("TSA certificates {}: {e}", path.display()))
                })?)
            }
            None => None,
        };
        Ok(TrustFiles { signers, anchors })
    }

    fn trust<'a>(&'a self, options: &'a VerifyOptions) -> Trust<'a> {
        Trust {
            signers: &self.signers,
            origin: options.allowed_signers.display().to_string(),
            identity: options.identity.as_deref(),
            anchors: self.anchors.as_deref(),
        }
    }
}

/// The report of a zipped package named `name` once its reader is open: an
/// archive that is not a zip is a problem of the package, any other read
/// failure an error.
fn check_zip(
    opened: std::io::Result<ZipReader<'_>>,
    name: &dyn std::fmt::Display,
    trust: &Trust<'_>,
    problems: Vec<String>,
    reevaluate: Option<&dyn PayloadCheck>,
) -> Result<VerifyReport> {
    match opened {
        Ok(reader) => Ok(check(&reader, trust, problems, reevaluate)),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(VerifyReport {
            problems: vec![format!("{name} is not a readable zip archive: {e}")],
            ..VerifyReport::default()
        }),
        Err(e) => Err(Error::new(e.into(), format!("cannot read package {name}"))),
    }
}

struct Trust<'a> {
    signers: &'a str,
    origin: String,
    identity: Option<&'a str>,
    anchors: Option<&'a [Certificate]>,
}

/// A parsed manifest: path -> lower-case hex digest, and every malformed line.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// Path (as listed, percent-decoded) -> digest.
    pub entries: BTreeMap<String, String>,
    /// What was wrong with which line.
    pub problems: Vec<String>,
}

/// Parse a BagIt manifest (`<digest>  <path>` per line) named `file` whose
/// digests are `algorithm`. Unsafe paths (absolute, `..`, empty segments,
/// backslashes), bad digests and duplicate paths are problems. Never panics.
pub fn parse_manifest(file: &str, bytes: &[u8], algorithm: Algorithm) -> Manifest {
    let mut out = Manifest::default();
    if std::str::from_utf8(bytes).is_err() {
        out.problems.push(format!("{file}: not UTF-8"));
        return out;
    }
    // Blocks of whole lines on every core (a block ends at a `\n`, so no
    // character is cut); lines and problems come back in order.
    let blocks = line_blocks(bytes, 256 << 10);
    let parsed = crate::parallel::parallel_map(&blocks, |(first, block)| {
        parse_manifest_lines(file, *first, block, algorithm)
    });
    let mut listed = Vec::with_capacity(parsed.iter().map(|(l, _)| l.len()).sum());
    for (lines, problems) in parsed {
        listed.extend(lines);
        out.problems.extend(problems);
    }
    // Sorted in one pass (manifests come sorted) and built in one, rather
    // than one tree search per line; a stable sort keeps the first listing
    // of a path first.
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    listed.dedup_by(|later, first| {
        let repeated = later.0 == first.0;
        if repeated {
            out.problems
                .push(format!("{file}: {} is listed twice", later.0));
        }
        repeated
    });
    out.entries = listed.into_iter().collect();
    out
}

/// The `(path, digest)` lines of one block of a manifest whose first line is
/// line `first` (from 0), and the problems of the others.
fn parse_manifest_lines(
    file: &str,
    first: usize,
    block: &[u8],
    algorithm: Algorithm,
) -> (Vec<(String, String)>, Vec<String>) {
    let (mut listed, mut problems) = (Vec::new(), Vec::new());
    let Ok(text) = std::str::from_utf8(block) else {
        problems.push(format!("{file}: not UTF-8"));
        return (listed, problems);
    };
    let hex_len = algorithm.hex_len();
    for (n, line) in (first..).zip(text.lines()) {
        if line.is_empty() {
            continue;
        }
        // Where a well-formed line has its separator, else wherever it is.
        let split = match line.as_bytes().get(hex_len) {
            Some(b' ' | b'\t') => Some(line.split_at(hex_len)),
            _ => line.split_once(char::is_whitespace),
        };
        let Some((digest, path)) = split else {
            problems.push(format!("{file}:{}: not `<digest>  <path>`", n + 1));
            continue;
        };
        let path = decode_path(path.trim_start().trim_start_matches('*'));
        // Every byte looked at, without branching, which is quicker here.
        let valid_digest = digest.len() == hex_len
            && digest
                .bytes()
                .fold(true, |hex, b| hex & b.is_ascii_hexdigit());
        let unsafe_path = path.is_empty()
            || path.starts_with('/')
            || path.contains('\\')
            || path
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..");
        if !valid_digest {
            problems.push(format!(
                "{file}:{}: not a {} digest",
                n + 1,
                algorithm.name().to_uppercase()
            ));
        } else if unsafe_path {
            problems.push(format!("{file}:{}: unsafe path {path:?}", n + 1));
        } else {
            listed.push((path, digest.to_ascii_lowercase()));
        }
    }
    (listed, problems)
}

/// The manifests of `kind` for each of `algorithms`, parsed; one that cannot
/// be read is a problem and checks as empty. Each one read is also returned
/// as read, by file name, for the tag manifests' digests.
fn read_manifests(
    reader: &dyn PackageReader,
    kind: Kind,
    algorithms: &[Algorithm],
    problems: &mut Vec<String>,
) -> (Vec<Listed>, Vec<(String, Vec<u8>)>) {
    let mut out = Vec::new();
    let mut read = Vec::new();
    for algorithm in algorithms {
        let file = kind.file(*algorithm);
        match reader.read(&file, MAX_TAG_FILE) {
            Ok(bytes) => {
                let parsed = parse_manifest(&file, &bytes, *algorithm);
                problems.extend(parsed.problems);
                out.push((*algorithm, parsed.entries));
                read.push((file, bytes));
            }
            Err(e) => {
                problems.push(format!("{file}: {e}"));
                out.push((*algorithm, BTreeMap::new()));
            }
        }
    }
    (out, read)
}

/// Hash every listed file that is there, once, with every algorithm of
/// `manifests`, and compare; `held` are files already hashed, by path
/// (digests in the order of `manifests`, and size). Returns the size of each
/// file hashed, as read, in path order.
///
/// The listing and every manifest are sorted by path, so the files to hash
/// and each one's listed digests are found by walking them side by side
/// (a package has tens of thousands of paths that share long prefixes).
fn compare_digests<'a>(
    reader: &'a dyn PackageReader,
    manifests: &[Listed],
    which: &str,
    mut held: Vec<(String, (Vec<String>, u64))>,
    report: &mut VerifyReport,
    problems: &mut Vec<String>,
) -> Vec<(&'a str, u64)> {
    // Listed in any manifest and there: the listing's own keys, in order,
    // each with its digest in each manifest.
    let mut walks: Vec<_> = manifests.iter().map(|(_, m)| m.iter().peekable()).collect();
    let mut paths: Vec<&'a str> = Vec::new();
    let mut expected: Vec<Option<&str>> = Vec::new();
    for path in reader.files().keys() {
        let mut listed = false;
        for walk in &mut walks {
            let digest = sorted_lookup(walk, path);
            listed |= digest.is_some();
            expected.push(digest);
        }
        if listed {
            paths.push(path);
        } else {
            expected.truncate(expected.len() - walks.len());
        }
    }
    let algorithms: Vec<Algorithm> = manifests.iter().map(|(a, _)| *a).collect();
    let is_held = |path: &str| held.iter().any(|(h, _)| h == path);
    let to_read: Vec<&str> = paths.iter().copied().filter(|p| !is_held(p)).collect();
    let mut read = reader.hash(&to_read, &algorithms).into_iter();
    let mut sizes = Vec::with_capacity(paths.len());
    for (path, expected) in paths.iter().zip(expected.chunks(algorithms.len().max(1))) {
        let result = match held.iter().position(|(h, _)| h == path) {
            Some(at) => Ok(held.swap_remove(at).1),
            None => match read.next() {
                Some(result) => result,
                None => break,
            },
        };
        match result {
            Ok((digests, bytes)) => {
                sizes.push((*path, bytes));
                if which == "manifest" {
                    report.files += 1;
                    report.bytes += bytes;
                }
                for ((algorithm, listed), digest) in algorithms.iter().zip(expected).zip(digests) {
                    if listed.is_some_and(|d| *d != digest) {
                        problems.push(format!(
                            "{path}: {} does not match the {which}",
                            algorithm.name().to_uppercase().replace("SHA", "SHA-")
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!("{path}: cannot read: {e}")),
        }
    }
    sizes
}

/// The value of `key` in the sorted walk `walk`, which is moved past every
/// key before it; keys are asked for in ascending order.
fn sorted_lookup<'m, I>(walk: &mut std::iter::Peekable<I>, key: &str) -> Option<&'m str>
where
    I: Iterator<Item = (&'m String, &'m String)>,
{
    while walk.next_if(|(k, _)| k.as_str() < key).is_some() {}
    walk.next_if(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v.as_str())
}

/// Every check, over any package reader: the rule of [`cover`] (every file
/// covered by a valid signature) first, then what each file must say.
fn check(
    reader: &dyn PackageReader,
    trust: &Trust<'_>,
    mut problems: Vec<String>,
    reevaluate: Option<&dyn PayloadCheck>,
) -> VerifyReport {
    let files = reader.files();
    if !files.contains_key("bagit.txt") {
        // Not a bag at all: one problem, not one per file it lacks.
        return VerifyReport {
            problems: vec!["not a BagIt package (no bagit.txt)".to_owned()],
            ..VerifyReport::default()
        };
    }

    match reader.read("bagit.txt", 4096) {
        Ok(text) => {
            let text = String::from_utf8_lossy(&text);
            let lines: Vec<&str> = text.lines().collect();
            // 1.0 is what we write; 0.97 is what bagit-python still writes.
            let version_ok = matches!(
                lines.first(),
                Some(&"BagIt-Version: 1.0" | &"BagIt-Version: 0.97")
            );
            if !version_ok || lines.get(1..) != Some(&["Tag-File-Character-Encoding: UTF-8"][..]) {
                problems.push("bagit.txt: not the two lines of a BagIt 1.0 bag".into());
            }
        }
        Err(e) => problems.push(format!("bagit.txt: {e}")),
    }

    let layout = cover::layout(files, &mut problems);
    cover::check_folders(files, reader.folders(), &mut problems);
    let (manifests, manifest_files) =
        read_manifests(reader, Kind::Payload, &layout.payload, &mut problems);
    let none = BTreeMap::new();
    let manifest = manifests.first().map_or(&none, |(_, m)| m);
    // The custody log is read, hashed and its lines checked against the
    // manifest on a thread of its own while the payload is hashed, and the
    // manifests read above are hashed for the tag manifests there too: the
    // payload's checks leave a core idle at times (building maps, comparing,
    // the last few files), which that work fills.
    std::thread::scope(|scope| {
        let early = scope.spawn(|| early_custody(reader, &layout.tag, manifest, manifest_files));
        let early = || {
            early
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        };
        check_laid_out(
            reader, trust, &layout, &manifests, problems, reevaluate, early,
        )
    })
}

/// The checks of [`check`] once the package's layout and payload manifests
/// are known; `early` gives what [`early_custody`] found.
fn check_laid_out(
    reader: &dyn PackageReader,
    trust: &Trust<'_>,
    layout: &cover::Layout,
    manifests: &[Listed],
    mut problems: Vec<String>,
    reevaluate: Option<&dyn PayloadCheck>,
    early: impl FnOnce() -> EarlyCustody,
) -> VerifyReport {
    let mut report = VerifyReport::default();
    let files = reader.files();
    cover::check_payload(files, manifests, &mut problems);
    let sizes = compare_digests(
        reader,
        manifests,
        "manifest",
        Vec::new(),
        &mut report,
        &mut problems,
    );
    let none = BTreeMap::new();
    let manifest = manifests.first().map_or(&none, |(_, m)| m);
    check_oxum(reader, manifest, &sizes, &mut problems);

    let (tag_manifests, _) = read_manifests(reader, Kind::Tag, &layout.tag, &mut problems);
    cover::check_tags(files, layout, &tag_manifests, &mut problems);
    let tag_files: Vec<Listed> = tag_manifests
        .into_iter()
        .map(|(a, m)| (a, m.into_iter().filter(|(p, _)| is_tag_file(p)).collect()))
        .collect();
    let custody = early();
    let mut tag_report = VerifyReport::default();
    compare_digests(
        reader,
        &tag_files,
        "tag manifest",
        custody.held,
        &mut tag_report,
        &mut problems,
    );

    for algorithm in &layout.tag {
        let signer = check_signature(reader, trust, *algorithm, &mut problems);
        if *algorithm == Algorithm::Sha256 {
            report.signer = signer;
        }
    }
    report.timestamp = check_timestamp(reader, trust, &mut problems);
    let algorithm = manifests.first().map(|(a, _)| *a);
    let tags = tag_files
        .iter()
        .find(|(a, _)| Some(*a) == algorithm)
        .map(|(_, m)| m);
    match custody.top {
        Ok(top) => {
            check_custody_copy(reader, &top, manifest, tags, &mut problems);
            problems.extend(custody.lines);
        }
        Err(_) => problems.push("custody.jsonl: missing".into()),
    }
    if let Some(extra) = reevaluate {
        report.reevaluated = extra.check(reader, &mut problems);
    }
    report.problems = problems;
    report
}

/// Payload-Oxum (`<octets>.<streams>`) against the payload and the SHA-256
/// manifest. Each file's size is what hashing it read (`hashed`, by path in
/// order), else what the reader says. `bag-info.txt` is UTF-8, as bagit.txt
/// declares, and gives Payload-Oxum once (RFC 8493 section 2.2.2), written
/// `Payload-Oxum: <octets>.<streams>`.
fn check_oxum(
    reader: &dyn PackageReader,
    manifest: &BTreeMap<String, String>,
    hashed: &[(&str, u64)],
    problems: &mut Vec<String>,
) {
    let Ok(info) = reader.read("bag-info.txt", 1 << 20) else {
        problems.push("bag-info.txt: missing".into());
        return;
    };
    // Read lossily, a file in another encoding (ISO-8859-1, UTF-16) would
    // pass for one in the UTF-8 that bagit.txt declares.
    let Ok(info) = std::str::from_utf8(&info) else {
        problems.push("bag-info.txt: not UTF-8".into());
        return;
    };
    // Every element another reader takes for Payload-Oxum counts: its label
    // trimmed and in any case. A line that starts with whitespace continues
    // the value before it.
    let oxums: Vec<&str> = info
        .lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(label, _)| label.trim().eq_ignore_ascii_case("Payload-Oxum"))
        })
        .collect();
    let line = match oxums[..] {
        [] => {
            problems.push("bag-info.txt: no Payload-Oxum".into());
            return;
        }
        [line] => line,
        _ => {
            problems.push(format!(
                "bag-info.txt: Payload-Oxum is given {} times; RFC 8493 allows it once",
                oxums.len()
            ));
            return;
        }
    };
    let Some(oxum) = line.strip_prefix("Payload-Oxum:") else {
        problems.push(format!(
            "bag-info.txt: {line:?} is not written `Payload-Oxum: <octets>.<streams>`"
        ));
        return;
    };
    let oxum = oxum.trim();
    let parsed = oxum
        .split_once('.')
        .and_then(|(octets, streams)| Some((octets.parse::<u64>().ok()?, streams.parse().ok()?)));
    let Some((octets, streams)) = parsed else {
        problems.push(format!(
            "bag-info.txt: Payload-Oxum {oxum:?} is not <octets>.<streams>"
        ));
        return;
    };
    // The payload in path order, with the sizes hashing read (`hashed`, in
    // the same order), else what the reader says.
    let mut hashed = hashed.iter().peekable();
    let (actual_octets, actual_streams) = reader
        .files()
        .keys()
        .filter(|p| p.starts_with("data/"))
        .fold((0u64, 0usize), |(octets, streams), p| {
            while hashed.next_if(|(h, _)| *h < p.as_str()).is_some() {}
            let n = hashed
                .next_if(|(h, _)| *h == p.as_str())
                .map(|(_, n)| *n)
                .or_else(|| reader.size(p))
                .unwrap_or(0);
            (octets.saturating_add(n), streams + 1)
        });
    let listed = manifest.len();
    if (octets, streams) != (actual_octets, actual_streams) || streams != listed {
        problems.push(format!(
            "bag-info.txt: Payload-Oxum {oxum} ({octets} octets in {streams} streams) does not \
             match the payload ({actual_octets} octets in {actual_streams} streams, \
             {listed} listed in manifest-sha256.txt)"
        ));
    }
}

/// An `allowed_signers` entry.
struct AllowedSigner {
    principals: Vec<String>,
    namespaces: Option<Vec<String>>,
    key: PublicKey,
}

fn parse_allowed_signers(text: &str) -> Vec<AllowedSigner> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((principals, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut namespaces = None;
        // Options come before the key type; the key type is the first token
        // that parses as a public key together with what follows.
        let key = loop {
            if let Ok(key) = PublicKey::from_openssh(rest) {
                break Some(key);
            }
            let (option, tail) = split_option(rest);
            if option.is_empty() {
                break None;
            }
            if let Some(list) = option.strip_prefix("namespaces=") {
                namespaces = Some(
                    list.trim_matches('"')
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                );
            }
            rest = tail.trim_start();
        };
        if let Some(key) = key {
            out.push(AllowedSigner {
                principals: principals
                    .trim_matches('"')
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                namespaces,
                key,
            });
        }
    }
    out
}

/// The first option (which may hold a quoted value with spaces) and the rest.
fn split_option(s: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&s[..i], &s[i..]),
            _ => {}
        }
    }
    (s, "")
}

/// `allowed_signers` principal patterns: `*` matches any run, `?` one character.
fn principal_matches(pattern: &str, identity: &str) -> bool {
    fn glob(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = identity.chars().collect();
    glob(&p, &s)
}

/// The signature over the tag manifest of `algorithm`: present, exactly the
/// armored SSHSIG `ssh-keygen -Y sign` writes (nothing around it, since no
/// signature covers the file itself), in [`NAMESPACE`], by a key the auditor
/// allows for the identity, over the tag manifest's bytes. The signer's
/// principals when it verifies.
fn check_signature(
    reader: &dyn PackageReader,
    trust: &Trust<'_>,
    algorithm: Algorithm,
    problems: &mut Vec<String>,
) -> Option<String> {
    let signed = Kind::Tag.file(algorithm);
    let file = signature_file(algorithm);
    let sig_bytes = match reader.read(&file, 1 << 20) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(format!("{file} is missing: {signed} is not signed"));
            return None;
        }
        Err(e) => {
            problems.push(format!("{file}: {e}"));
            return None;
        }
    };
    let parsed = std::str::from_utf8(&sig_bytes)
        .ok()
        .and_then(|text| SshSig::from_pem(text).ok());
    let Some(sig) = parsed else {
        problems.push(format!("{file} is not an SSHSIG signature"));
        return None;
    };
    if sig
        .to_pem(ssh_key::LineEnding::LF)
        .is_ok_and(|pem| pem.as_bytes() != &sig_bytes[..])
    {
        problems.push(format!(
            "{file} holds more than its signature, or not in the form ssh-keygen writes"
        ));
        return None;
    }
    if sig.namespace() != NAMESPACE {
        problems.push(format!(
            "{file}: the signature is in namespace {:?}, expected {NAMESPACE}",
            sig.namespace()
        ));
        return None;
    }
    let Ok(message) = reader.read(&signed, MAX_TAG_FILE) else {
        return None; // already reported
    };
    let allowed = parse_allowed_signers(trust.signers);
    if allowed.is_empty() {
        problems.push(format!("{}: lists no usable key", trust.origin));
        return None;
    }
    let candidates: Vec<&AllowedSigner> = allowed
        .iter()
        .filter(|a| a.key.key_data() == sig.public_key())
        .filter(|a| {
            a.namespaces
                .as_ref()
                .is_none_or(|ns| ns.iter().any(|n| n == NAMESPACE))
        })
        .collect();
    if candidates.is_empty() {
        problems.push(format!(
            "{file}: the package was signed by a key that {} does not allow",
            trust.origin
        ));
        return None;
    }
    let matching = candidates.iter().find(|a| match trust.identity {
        Some(id) => a.principals.iter().any(|p| principal_matches(p, id)),
        None => true,
    });
    let Some(signer) = matching else {
        problems.push(format!(
            "{file}: the signing key is not allowed for identity {}",
            trust.identity.unwrap_or_default()
        ));
        return None;
    };
    match signer.key.verify(NAMESPACE, &message, &sig) {
        Ok(()) => Some(
            trust
                .identity
                .map(str::to_owned)
                .unwrap_or_else(|| signer.principals.join(",")),
        ),
        Err(_) => {
            problems.push(format!("{file}: the signature does not match {signed}"));
            None
        }
    }
}

/// The timestamp over the signature, when there is one (required when the
/// auditor named trusted TSAs).
fn check_timestamp(
    reader: &dyn PackageReader,
    trust: &Trust<'_>,
    problems: &mut Vec<String>,
) -> Option<TimestampInfo> {
    if !reader.files().contains_key(TIMESTAMP_FILE) {
        if trust.anchors.is_some() {
            problems.push(format!(
                "{TIMESTAMP_FILE}: missing, so the package has no timestamp"
            ));
        }
        return None;
    }
    let reply = match reader.read(TIMESTAMP_FILE, timestamp::MAX_REPLY) {
        Ok(reply) => reply,
        Err(e) => {
            problems.push(format!("{TIMESTAMP_FILE}: {e}"));
            return None;
        }
    };
    let Ok(stamped) = reader.read("tagmanifest-sha256.txt", MAX_TAG_FILE) else {
        return None; // the missing tag manifest is already reported
    };
    match timestamp::check_reply(&reply, &stamped, trust.anchors) {
        Ok(info) => Some(info),
        Err(e) => {
            problems.push(format!("{TIMESTAMP_FILE}: {e}"));
            None
        }
    }
}

/// What the bag checks of a custody line: that it names a payload file the
/// manifest lists with the same digest. The line's full schema belongs to the
/// run folder and is checked again when the evidence is re-evaluated.
#[derive(serde::Deserialize)]
struct CustodyLine<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
    #[serde(borrow)]
    sha256: Cow<'a, str>,
}

/// The custody log at the top of the package (`top`, as read) and its copy
/// in the payload agree. `tags` is the tag manifest of the manifest's
/// algorithm: when both manifests list the two copies, their digests decide
/// whether they are the same (each copy's bytes were checked against its
/// own manifest), and the payload copy is not read a second time.
fn check_custody_copy(
    reader: &dyn PackageReader,
    top: &[u8],
    manifest: &BTreeMap<String, String>,
    tags: Option<&BTreeMap<String, String>>,
    problems: &mut Vec<String>,
) {
    let listed = tags
        .and_then(|t| t.get("custody.jsonl"))
        .zip(manifest.get("data/custody.jsonl"));
    let same = match listed {
        Some((top_digest, data_digest)) => top_digest == data_digest,
        None => {
            reader
                .read("data/custody.jsonl", MAX_TAG_FILE)
                .ok()
                .as_deref()
                == Some(top)
        }
    };
    if !same {
        problems.push("custody.jsonl: differs from data/custody.jsonl".into());
    }
}

/// What [`early_custody`] found.
struct EarlyCustody {
    /// The custody log at the top of the package, as read.
    top: std::io::Result<Vec<u8>>,
    /// The problems of its lines, in line order.
    lines: Vec<String>,
    /// Digests for the tag manifests (in the order of the package's tag
    /// algorithms) and size of the custody log and the payload manifests,
    /// by path.
    held: Vec<(String, (Vec<String>, u64))>,
}

/// Read the custody log at the top of the package, check its lines against
/// `manifest`, and hash it and the payload manifests `manifest_files` (as
/// read) with the tag algorithms `tag`.
fn early_custody(
    reader: &dyn PackageReader,
    tag: &[Algorithm],
    manifest: &BTreeMap<String, String>,
    manifest_files: Vec<(String, Vec<u8>)>,
) -> EarlyCustody {
    let top = reader.read("custody.jsonl", MAX_TAG_FILE);
    let mut held: Vec<(String, (Vec<String>, u64))> = manifest_files
        .into_iter()
        .map(|(file, bytes)| (file, hash_bytes(&bytes, tag)))
        .collect();
    let mut lines = Vec::new();
    if let Ok(bytes) = &top {
        lines = check_custody_lines(&parse_custody_lines(bytes), manifest);
        held.push(("custody.jsonl".to_owned(), hash_bytes(bytes, tag)));
    }
    EarlyCustody { top, lines, held }
}

/// One non-empty line of the custody log: its index (from 0) and its entry,
/// `None` when it is not one.
type CustodyParsed<'a> = (usize, Option<CustodyLine<'a>>);

/// The non-empty lines of the custody log `top`, parsed.
fn parse_custody_lines(top: &[u8]) -> Vec<CustodyParsed<'_>> {
    lines_of(top)
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| (n, serde_json::from_slice::<CustodyLine<'_>>(line).ok()))
        .collect()
}

/// Every line of the custody log (`lines`, as parsed) names a payload file
/// the manifest lists with the same digest; the problems, in line order.
fn check_custody_lines(
    lines: &[CustodyParsed<'_>],
    manifest: &BTreeMap<String, String>,
) -> Vec<String> {
    let manifest: foldhash::HashMap<&str, &str> = manifest
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_str()))
        .collect();
    let mut found = Vec::new();
    let mut key = String::new();
    for (n, entry) in lines {
        let Some(entry) = entry else {
            found.push(format!("custody.jsonl:{}: not a custody entry", n + 1));
            continue;
        };
        key.clear();
        key.push_str("data/");
        key.push_str(&entry.path);
        match manifest.get(key.as_str()) {
            None => found.push(format!(
                "custody.jsonl:{}: {} is not in the manifest",
                n + 1,
                entry.path
            )),
            Some(digest) if *digest != entry.sha256.as_ref() => found.push(format!(
                "custody.jsonl:{}: {} hash differs from the manifest",
                n + 1,
                entry.path
            )),
            Some(_) => {}
        }
    }
    found
}

/// The lines of `block` (without their `\n`), found with `memchr`.
fn lines_of(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = block;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        Some(line)
    })
}

/// `text` cut into blocks of about `size` bytes that end at a line's end
/// (the last may not), each with the index of its first line.
fn line_blocks(text: &[u8], size: usize) -> Vec<(usize, &[u8])> {
    let mut blocks = Vec::new();
    let (mut rest, mut line) = (text, 0);
    while !rest.is_empty() {
        let end = match rest.get(size..) {
            Some(after) => memchr::memchr(b'\n', after).map_or(rest.len(), |at| size + at + 1),
            None => rest.len(),
        };
        let (block, after) = rest.split_at(end);
        blocks.push((line, block));
        line += memchr::memchr_iter(b'\n', block).count();
        rest = after;
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_signers_with_options() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMXuxl7tPf3ZCuJk4Tu3FZ5lN4hWGD/HvuMdR1aKMRyO c";
        let text =
            format!("# comment\n\na@x,b@y namespaces=\"{NAMESPACE},other\" {key}\nplain@z {key}\n");
        let parsed = parse_allowed_signers(&text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].principals, ["a@x", "b@y"]);
        assert_eq!(
            parsed[0].namespaces.as_deref(),
            Some(&[NAMESPACE.to_owned(), "other".to_owned()][..])
        );
        assert!(parsed[1].namespaces.is_none());
        assert!(principal_matches("*@msp.example", "x@msp.example"));
        assert!(principal_matches("a@*", "a@b"));
        assert!(!principal_matches("a@x", "a@y"));
    }

    #[test]
    fn manifest_lines_parse_whatever_their_order_and_separator() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let c = "c".repeat(64);
        let text = format!(
            "{c}  data/z\n{b}\tdata/a\n{a}\u{3000}data/m\n{c} *data/%0Ax\n\n{a}  data/a\n{b}  data/a\n"
        );
        let parsed = parse_manifest("manifest-sha256.txt", text.as_bytes(), Algorithm::Sha256);
        let entries: Vec<(&str, &str)> = parsed
            .entries
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_str()))
            .collect();
        // Sorted, lower-case, the first listing of a path kept.
        assert_eq!(
            entries,
            [
                ("data/\nx", c.as_str()),
                ("data/a", b.to_lowercase().as_str()),
                ("data/m", a.as_str()),
                ("data/z", c.as_str()),
            ]
        );
        assert_eq!(
            parsed.problems,
            [
                "manifest-sha256.txt: data/a is listed twice",
                "manifest-sha256.txt: data/a is listed twice"
            ]
        );

        let bad = format!("{}  data/x\n{a}data/y\n{a}  ../y\n", "g".repeat(64));
        let parsed = parse_manifest("m", bad.as_bytes(), Algorithm::Sha256);
        assert!(parsed.entries.is_empty());
        assert_eq!(
            parsed.problems,
            [
                "m:1: not a SHA256 digest",
                "m:2: not `<digest>  <path>`",
                "m:3: unsafe path \"../y\""
            ]
        );
    }

    #[test]
    fn blocks_of_lines_keep_every_line_and_its_number() {
        let text = b"a\n\nbb\nccc\nlast";
        for size in [1, 2, 3, 5, 100] {
            let mut seen = Vec::new();
            for (first, block) in line_blocks(text, size) {
                assert!(block.ends_with(b"\n") || block.ends_with(b"last"), "{size}");
                for (n, line) in (first..).zip(lines_of(block)) {
                    seen.push((n, String::from_utf8_lossy(line).into_owned()));
                }
            }
            let expected = [(0, "a"), (1, ""), (2, "bb"), (3, "ccc"), (4, "last")];
            let expected: Vec<(usize, String)> = expected
                .iter()
                .map(|(n, l)| (*n, (*l).to_owned()))
                .collect();
            assert_eq!(seen, expected, "blocks of {size} bytes");
        }
        assert!(line_blocks(b"", 8).is_empty());
    }

    #[test]
    fn a_manifest_parsed_in_blocks_names_the_right_lines() {
        // More than one block of lines (256 KiB): 5,000 lines of ~75 bytes,
        // two of them bad, and one path listed twice far apart.
        let digest = "a".repeat(64);
        let mut text = String::new();
        for i in 0..5000 {
            match i {
                10 => text.push_str("garbage\n"),
                4321 => text.push_str(&format!("{}  data/x\n", "g".repeat(64))),
                4999 => text.push_str(&format!("{digest}  data/f00007\n")),
                _ => text.push_str(&format!("{digest}  data/f{i:05}\n")),
            }
        }
        assert!(text.len() > 256 << 10);
        let parsed = parse_manifest("m", text.as_bytes(), Algorithm::Sha256);
        assert_eq!(parsed.entries.len(), 4997);
        assert_eq!(
            parsed.problems,
            [
                "m:11: not `<digest>  <path>`",
                "m:4322: not a SHA256 digest",
                "m: data/f00007 is listed twice"
            ]
        );
    }

    #[test]
    fn custody_lines_name_each_line_that_disagrees_with_the_manifest() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let manifest: BTreeMap<String, String> = [
            ("data/evidence/x.json", a.as_str()),
            ("data/evidence/y\"z.json", a.as_str()),
        ]
        .iter()
        .map(|(p, d)| ((*p).to_owned(), (*d).to_owned()))
        .collect();
        let line = |path: &str, digest: &str| {
            serde_json::json!({"path": path, "sha256": digest, "bytes": 1, "stat": {"ino": 7}})
                .to_string()
        };
        let log = [
            line("evidence/x.json", &a),
            String::new(),
            "{not json".to_owned(),
            line("evidence/y\"z.json", &a),
            line("evidence/gone.json", &a),
            line("evidence/x.json", &b),
            r#"{"path":"evidence/x.json"}"#.to_owned(),
        ]
        .join("\n");
        let lines = parse_custody_lines(log.as_bytes());
        assert_eq!(lines.len(), 6, "the empty line is skipped");
        assert_eq!(
            check_custody_lines(&lines, &manifest),
            [
                "custody.jsonl:3: not a custody entry",
                "custody.jsonl:5: evidence/gone.json is not in the manifest",
                "custody.jsonl:6: evidence/x.json hash differs from the manifest",
                "custody.jsonl:7: not a custody entry",
            ]
        );
    }
}
