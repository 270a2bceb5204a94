//! Verifying a package: `bagit.txt`, every manifest line, no unlisted payload
//! file, Payload-Oxum, the tag manifest, the signature by an allowed key in the
//! right namespace, and the custody log's agreement with the manifest. Every
//! problem is reported, not only the first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ssh_key::{PublicKey, SshSig};

use super::bag::decode_path;
use super::hash::{hash_file, parallel_map};
use super::{NAMESPACE, SIGNATURE_FILE};
use crate::error::{Error, Result, ResultExt};
use crate::evidence::CustodyEntry;

/// What to check the signature against.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The auditor's `allowed_signers` file.
    pub allowed_signers: PathBuf,
    /// The identity the signer must hold; any principal of a matching key otherwise.
    pub identity: Option<String>,
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
}

impl VerifyReport {
    /// Whether the package is valid.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verify the bag at `bag`.
///
/// # Errors
/// Only when `bag` is not a folder or the allowed signers file cannot be read;
/// everything wrong with the package itself goes into the report.
pub fn verify(bag: &Path, options: &VerifyOptions) -> Result<VerifyReport> {
    if !bag.is_dir() {
        return Err(Error::invalid(format!(
            "{} is not a package folder",
            bag.display()
        )));
    }
    let signers_text = std::fs::read_to_string(&options.allowed_signers).context(|| {
        format!(
            "cannot read allowed signers file {}",
            options.allowed_signers.display()
        )
    })?;
    let mut report = VerifyReport::default();
    let problems = &mut report.problems;

    match std::fs::read_to_string(bag.join("bagit.txt")) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            if lines != ["BagIt-Version: 1.0", "Tag-File-Character-Encoding: UTF-8"] {
                problems.push("bagit.txt is not the two lines of a BagIt 1.0 bag".into());
            }
        }
        Err(e) => problems.push(format!("bagit.txt: {e}")),
    }

    let manifest = read_manifest(bag, "manifest-sha256.txt", problems);
    for path in manifest.keys() {
        if !path.starts_with("data/") {
            problems.push(format!("manifest-sha256.txt lists {path:?} outside data/"));
        }
    }
    let actual = list_payload(bag, problems);
    for path in manifest.keys().filter(|p| !actual.contains(*p)) {
        problems.push(format!("{path}: listed in the manifest but missing"));
    }
    for path in actual.iter().filter(|p| !manifest.contains_key(*p)) {
        problems.push(format!("{path}: present but not listed in the manifest"));
    }
    let listed: Vec<(&String, &String)> = manifest
        .iter()
        .filter(|(p, _)| actual.contains(*p))
        .collect();
    let hashed = parallel_map(&listed, |(path, _)| hash_file(&bag.join(path)));
    for ((path, expected), result) in listed.iter().zip(hashed) {
        match result {
            Ok((digest, bytes)) => {
                report.files += 1;
                report.bytes += bytes;
                if &&digest != expected {
                    problems.push(format!("{path}: SHA-256 does not match the manifest"));
                }
            }
            Err(e) => problems.push(format!("{path}: cannot read: {e}")),
        }
    }
    check_oxum(bag, &manifest, problems);

    let tags = read_manifest(bag, "tagmanifest-sha256.txt", problems);
    for required in ["bagit.txt", "bag-info.txt", "manifest-sha256.txt"] {
        if !tags.contains_key(required) {
            problems.push(format!("tagmanifest-sha256.txt does not list {required}"));
        }
    }
    for (path, expected) in &tags {
        if path.starts_with("data/") || path.contains("..") || path.starts_with('/') {
            problems.push(format!(
                "tagmanifest-sha256.txt lists {path:?}, which is not a tag file"
            ));
            continue;
        }
        match hash_file(&bag.join(path)) {
            Ok((digest, _)) if &digest == expected => {}
            Ok(_) => problems.push(format!("{path}: SHA-256 does not match the tag manifest")),
            Err(e) => problems.push(format!("{path}: cannot read: {e}")),
        }
    }
    if let Ok(entries) = std::fs::read_dir(bag) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_unsigned =
                name == SIGNATURE_FILE || name == "tagmanifest-sha256.txt" || name == "data";
            if !is_unsigned && !tags.contains_key(&name) {
                problems.push(format!(
                    "{name}: present but not listed in the tag manifest"
                ));
            }
        }
    }

    report.signer = check_signature(bag, &signers_text, options, problems);
    check_custody(bag, &manifest, problems);
    Ok(report)
}

/// Parse a manifest into path -> lower-case hex digest.
fn read_manifest(bag: &Path, file: &str, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = match std::fs::read_to_string(bag.join(file)) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("{file}: {e}"));
            return out;
        }
    };
    for (n, line) in text.lines().enumerate() {
        let Some((digest, path)) = line.split_once(char::is_whitespace) else {
            problems.push(format!("{file}:{}: not `<sha256>  <path>`", n + 1));
            continue;
        };
        let path = decode_path(path.trim_start().trim_start_matches('*'));
        let valid_digest = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        let unsafe_path = path.is_empty()
            || path.starts_with('/')
            || path.contains('\\')
            || path
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..");
        if !valid_digest {
            problems.push(format!("{file}:{}: not a SHA-256 digest", n + 1));
        } else if unsafe_path {
            problems.push(format!("{file}:{}: unsafe path {path:?}", n + 1));
        } else if out
            .insert(path.clone(), digest.to_ascii_lowercase())
            .is_some()
        {
            problems.push(format!("{file}: {path} is listed twice"));
        }
    }
    out
}

/// Every file under `data/`, as bag-relative paths; anything but regular files
/// and folders is a problem (never followed).
fn list_payload(bag: &Path, problems: &mut Vec<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![String::from("data")];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(bag.join(&rel)) else {
            problems.push(format!("{rel}: cannot list"));
            continue;
        };
        for entry in entries.flatten() {
            let child = format!("{rel}/{}", entry.file_name().to_string_lossy());
            match std::fs::symlink_metadata(entry.path()) {
                Ok(m) if m.is_dir() => stack.push(child),
                Ok(m) if m.is_file() => {
                    out.insert(child);
                }
                Ok(_) => problems.push(format!(
                    "{child}: not a regular file (symlink, device or FIFO)"
                )),
                Err(e) => problems.push(format!("{child}: {e}")),
            }
        }
    }
    out
}

fn check_oxum(bag: &Path, manifest: &BTreeMap<String, String>, problems: &mut Vec<String>) {
    let Ok(info) = std::fs::read_to_string(bag.join("bag-info.txt")) else {
        problems.push("bag-info.txt is missing".into());
        return;
    };
    let Some(oxum) = info.lines().find_map(|l| l.strip_prefix("Payload-Oxum:")) else {
        problems.push("bag-info.txt has no Payload-Oxum".into());
        return;
    };
    let Some((bytes, count)) = oxum.trim().split_once('.') else {
        problems.push("Payload-Oxum is not <bytes>.<files>".into());
        return;
    };
    let actual_bytes: u64 = manifest
        .keys()
        .filter_map(|p| std::fs::symlink_metadata(bag.join(p)).ok())
        .map(|m| m.len())
        .sum();
    if count.parse::<usize>().ok() != Some(manifest.len())
        || bytes.parse::<u64>().ok() != Some(actual_bytes)
    {
        problems.push(format!(
            "Payload-Oxum {} does not match the payload ({actual_bytes}.{})",
            oxum.trim(),
            manifest.len()
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

fn check_signature(
    bag: &Path,
    signers: &str,
    options: &VerifyOptions,
    problems: &mut Vec<String>,
) -> Option<String> {
    let sig_text = match std::fs::read_to_string(bag.join(SIGNATURE_FILE)) {
        Ok(t) => t,
        Err(_) => {
            problems.push(format!(
                "{SIGNATURE_FILE} is missing: the package is not signed"
            ));
            return None;
        }
    };
    let Ok(sig) = SshSig::from_pem(sig_text.trim()) else {
        problems.push(format!("{SIGNATURE_FILE} is not an SSHSIG signature"));
        return None;
    };
    if sig.namespace() != NAMESPACE {
        problems.push(format!(
            "the signature is in namespace {:?}, expected {NAMESPACE}",
            sig.namespace()
        ));
        return None;
    }
    let Ok(message) = std::fs::read(bag.join("tagmanifest-sha256.txt")) else {
        return None; // already reported
    };
    let allowed = parse_allowed_signers(signers);
    if allowed.is_empty() {
        problems.push(format!(
            "{} lists no usable key",
            options.allowed_signers.display()
        ));
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
            "the package was signed by a key that {} does not allow",
            options.allowed_signers.display()
        ));
        return None;
    }
    let matching = candidates.iter().find(|a| match &options.identity {
        Some(id) => a.principals.iter().any(|p| principal_matches(p, id)),
        None => true,
    });
    let Some(signer) = matching else {
        problems.push(format!(
            "the signing key is not allowed for identity {}",
            options.identity.as_deref().unwrap_or_default()
        ));
        return None;
    };
    match signer.key.verify(NAMESPACE, &message, &sig) {
        Ok(()) => Some(
            options
                .identity
                .clone()
                .unwrap_or_else(|| signer.principals.join(",")),
        ),
        Err(_) => {
            problems.push("the signature does not match tagmanifest-sha256.txt".into());
            None
        }
    }
}

fn check_custody(bag: &Path, manifest: &BTreeMap<String, String>, problems: &mut Vec<String>) {
    let Ok(top) = std::fs::read(bag.join("custody.jsonl")) else {
        problems.push("custody.jsonl is missing".into());
        return;
    };
    if std::fs::read(bag.join("data/custody.jsonl"))
        .ok()
        .as_deref()
        != Some(&top[..])
    {
        problems.push("custody.jsonl differs from data/custody.jsonl".into());
    }
    for (n, line) in top
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        let Ok(entry) = serde_json::from_slice::<CustodyEntry>(line) else {
            problems.push(format!("custody.jsonl:{}: not a custody entry", n + 1));
            continue;
        };
        match manifest.get(&format!("data/{}", entry.path)) {
            None => problems.push(format!(
                "custody.jsonl:{}: {} is not in the manifest",
                n + 1,
                entry.path
            )),
            Some(digest) if digest != &entry.sha256 => problems.push(format!(
                "custody.jsonl:{}: {} hash differs from the manifest",
                n + 1,
                entry.path
            )),
            Some(_) => {}
        }
    }
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
}
