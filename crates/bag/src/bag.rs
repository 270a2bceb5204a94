//! Writing a bag: the finished run folder's files are hard-linked into
//! `data/` and made read-only (`link`), their SHA-256 taken from the custody
//! log where unchanged since written (`recorded`) or hashed (copied while
//! hashed where linking is impossible), tag files are written, each tag
//! manifest is signed, and the finished folder is renamed into place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use super::cover::{signature_file, Kind};
use super::hash::{hash_copy_all, hash_copy_many, Algorithm};
use super::known_size::KnownSize;
use super::link::{link_read_only, Payload, Sink};
use super::reader::open_regular;
use super::recorded::{link_known, Recorded};
use super::sign::Signer;
use super::timestamp::TIMESTAMP_FILE;
use super::{NAMESPACE, SIGNATURE_FILE};
use crate::error::{Error, Result, ResultExt};
use crate::tool_version;

/// What `bag-info.txt` says about the package.
#[derive(Clone, Debug)]
pub struct BagInfo {
    /// The organisation the evidence is about.
    pub organisation: String,
    /// Contact name, if configured.
    pub contact_name: Option<String>,
    /// Contact e-mail, if configured.
    pub contact_email: Option<String>,
    /// Run id (External-Identifier).
    pub run_id: String,
    /// Collection start (UTC).
    pub started: String,
    /// Collection end (UTC).
    pub finished: String,
    /// Host that collected.
    pub host: String,
}

/// Tag files listed in the tag manifest, in order.
const TAG_FILES: [&str; 5] = [
    "bagit.txt",
    "bag-info.txt",
    "manifest-sha256.txt",
    "custody.jsonl",
    "README-VERIFY.txt",
];

/// Whether a package is forced to disk before it is renamed into place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Leave the write-back to the operating system (Linux writes dirty pages
    /// within about 30 s), as `cp`, `tar` and bagit-python do. A power cut in
    /// that window can leave a folder that `verify` rejects (never one that
    /// passes with other content); it is rebuilt from the run folder, whose
    /// files are synced as they are written, and the `.zip` made from it is
    /// synced.
    #[default]
    Deferred,
    /// Write the whole package to disk before the rename, so that what
    /// appears under the final name survives a power cut. Costs the disk's
    /// write time (seconds per GiB on a cloud disk).
    Synced,
}

/// How [`write_bag_with`] writes a bag.
#[derive(Clone, Debug, Default)]
pub struct BagOptions {
    /// Manifest algorithms besides SHA-256, which is always written. Each
    /// algorithm gets a payload manifest and a tag manifest, and each tag
    /// manifest its own signature.
    pub algorithms: Vec<Algorithm>,
    /// Whether to wait for the disk before the rename.
    pub durability: Durability,
    /// Whether payload files are hard-linked (and made read-only) or copied.
    pub payload: Payload,
    /// SHA-256 digests recorded when payload files were written, by
    /// run-relative path: used for linked files the file system still shows
    /// unchanged, instead of reading them again.
    pub recorded: BTreeMap<String, Recorded>,
}

/// Package `run_dir` as a bag named `name` inside `out_dir`, with SHA-256
/// manifests only, written back by the operating system in its own time.
/// See [`write_bag_with`].
///
/// # Errors
/// As [`write_bag_with`].
pub fn write_bag(
    run_dir: &Path,
    out_dir: &Path,
    name: &str,
    info: &BagInfo,
    signer: Option<&Signer>,
) -> Result<PathBuf> {
    write_bag_with(run_dir, out_dir, name, info, signer, &BagOptions::default())
}

/// Package `run_dir` as a bag named `name` inside `out_dir`: payload linked
/// (or copied, see [`BagOptions::payload`]) into `data/` and hashed or taken
/// from [`BagOptions::recorded`], bag-info, manifests for SHA-256 and
/// `options.algorithms`, custody log, README, tag manifests and, with a
/// `signer`, a signature over each tag manifest (and a timestamp over
/// `tagmanifest-sha256.txt`).
///
/// The bag is assembled under a hidden temporary name and renamed when
/// complete, so an interrupted run never leaves a partial package at the final
/// path. An existing package is never overwritten.
///
/// # Errors
/// When the run folder holds anything but regular files and folders (symlinks,
/// devices, FIFOs are refused), on I/O failure, or when signing fails.
pub fn write_bag_with(
    run_dir: &Path,
    out_dir: &Path,
    name: &str,
    info: &BagInfo,
    signer: Option<&Signer>,
    options: &BagOptions,
) -> Result<PathBuf> {
    let mut algorithms = options.algorithms.clone();
    algorithms.push(Algorithm::Sha256);
    algorithms.sort();
    algorithms.dedup();
    let final_path = out_dir.join(name);
    if final_path.exists() {
        return Err(Error::invalid(format!(
            "{} already exists",
            final_path.display()
        )));
    }
    std::fs::create_dir_all(out_dir).context(|| format!("cannot create {}", out_dir.display()))?;
    remove_stale_staging(out_dir);
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempdir_in(out_dir)
        .context(|| format!("cannot create a staging folder in {}", out_dir.display()))?;
    let bag = staging.path();

    let files = payload_files(run_dir)?;
    // Folders first, once each, so the copying threads only create files.
    let folders: BTreeSet<&str> = files
        .iter()
        .map(|rel| rel.rsplit_once('/').map_or("", |(dir, _)| dir))
        .collect();
    for folder in folders {
        let dir = bag.join("data").join(folder);
        std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    let data = bag.join("data");
    let synced = options.durability == Durability::Synced;
    // Files whose recorded digest still holds are linked and not read.
    let known = link_known(
        &files,
        run_dir,
        &data,
        &options.recorded,
        &algorithms,
        options.payload,
    );
    let todo: Vec<usize> = (0..files.len()).filter(|&i| known[i].is_none()).collect();
    let copied = while_syncing(bag, synced, || {
        hash_copy_many(
            todo.len(),
            &algorithms,
            |j| -> Result<(KnownSize<File>, Sink<Writeback>)> {
                let i = todo[j];
                let src = run_dir.join(&files[i]);
                let dst = data.join(&files[i]);
                if let Some(linked) = link_read_only(options.payload, &files[i], &src, &dst) {
                    return Ok((linked, Sink::Linked));
                }
                let reader =
                    open_regular(&src).context(|| format!("cannot read {}", src.display()))?;
                // Unbuffered: every write is already one whole read chunk.
                let writer =
                    File::create(&dst).context(|| format!("cannot write {}", dst.display()))?;
                let reader = KnownSize::new(reader, u64::MAX);
                Ok((reader, Sink::Copy(Writeback::new(writer, synced))))
            },
            |j, e| {
                let src = run_dir.join(&files[todo[j]]);
                Error::new(e.into(), format!("cannot copy {}", src.display()))
            },
            |j| std::fs::symlink_metadata(run_dir.join(&files[todo[j]])).map_or(0, |m| m.len()),
        )
    });
    let mut copied = copied.into_iter();
    let results = known.into_iter().map(|k| match k {
        Some(digests) => Ok(digests),
        None => copied
            .next()
            .unwrap_or_else(|| Err(Error::invalid("a payload file was not hashed"))),
    });
    let mut manifests = vec![String::new(); algorithms.len()];
    let mut total_bytes = 0u64;
    for (rel, result) in files.iter().zip(results) {
        let (digests, bytes) = result?;
        total_bytes += bytes;
        for (manifest, digest) in manifests.iter_mut().zip(digests) {
            manifest.push_str(&format!("{digest}  data/{}\n", encode_path(rel)));
        }
    }

    // Plain writes: the staging folder is hidden until its rename, which is
    // what makes the package appear whole or not at all.
    let write_tag = |file: &str, text: &[u8]| -> Result<()> {
        std::fs::write(bag.join(file), text).context(|| format!("cannot write {file}"))
    };
    write_tag(
        "bagit.txt",
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
    )?;
    write_tag(
        "bag-info.txt",
        bag_info(info, total_bytes, files.len()).as_bytes(),
    )?;
    for (algorithm, manifest) in algorithms.iter().zip(&manifests) {
        write_tag(
            &format!("manifest-{}.txt", algorithm.name()),
            manifest.as_bytes(),
        )?;
    }
    let custody_path = run_dir.join("custody.jsonl");
    let custody = match std::fs::read(&custody_path) {
        Ok(bytes) => bytes,
        // A run folder without custody log packages with an empty one, which
        // verification then reports against the manifest.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::new(
                e.into(),
                format!("cannot read {}", custody_path.display()),
            ))
        }
    };
    write_tag("custody.jsonl", &custody)?;
    write_tag("README-VERIFY.txt", readme(signer, &algorithms).as_bytes())?;

    let mut tag_files: Vec<String> = TAG_FILES.iter().map(|f| (*f).to_owned()).collect();
    for algorithm in algorithms.iter().filter(|a| **a != Algorithm::Sha256) {
        tag_files.insert(3, format!("manifest-{}.txt", algorithm.name()));
    }
    let mut tagmanifests = vec![String::new(); algorithms.len()];
    for file in &tag_files {
        let reader = File::open(bag.join(file)).context(|| format!("cannot read {file}"))?;
        let (digests, _) = hash_copy_all(reader, std::io::sink(), &algorithms)
            .context(|| format!("cannot hash {file}"))?;
        for (tagmanifest, digest) in tagmanifests.iter_mut().zip(digests) {
            tagmanifest.push_str(&format!("{digest}  {file}\n"));
        }
    }
    // Every tag manifest is signed: verification accepts no file that a
    // signature does not cover, and each algorithm's chain (signature, tag
    // manifest, manifest) stands alone for stock tools.
    for (algorithm, text) in algorithms.iter().zip(tagmanifests) {
        write_tag(&Kind::Tag.file(*algorithm), text.as_bytes())?;
        if let Some(signer) = signer {
            let signature = signer.sign(text.as_bytes())?;
            write_tag(&signature_file(*algorithm), signature.as_bytes())?;
            if *algorithm == Algorithm::Sha256 {
                if let Some(authority) = signer.timestamps() {
                    write_tag(TIMESTAMP_FILE, &authority.stamp(text.as_bytes())?)?;
                }
            }
        }
    }
    if synced {
        sync_bag(bag)?;
    }

    let staged = staging.keep();
    std::fs::rename(&staged, &final_path).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        Error::invalid(format!(
            "cannot move the package into place at {}: {e}",
            final_path.display()
        ))
    })?;
    if synced {
        // The rename itself is durable once the folder holding it is synced.
        File::open(out_dir)
            .and_then(|d| d.sync_all())
            .context(|| format!("cannot sync {}", out_dir.display()))?;
    }
    Ok(final_path)
}

/// With `sync`, run `work` while a helper thread asks the kernel every
/// 100 ms to write out what is dirty on the staging file system, so that
/// disk writes overlap the copy and the `syncfs` before the rename finds
/// little left (many small files never reach the write-back window of
/// [`Writeback`]). Otherwise, or elsewhere than Linux, just `work`.
fn while_syncing<T>(bag: &Path, sync: bool, work: impl FnOnce() -> T) -> T {
    #[cfg(target_os = "linux")]
    if let Some(dir) = sync.then(|| File::open(bag).ok()).flatten() {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        return std::thread::scope(|scope| {
            scope.spawn(move || {
                let tick = std::time::Duration::from_millis(100);
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(tick)
                {
                    // Only a head start: the sync after the copy is the one
                    // whose failure counts.
                    let _ = rustix::fs::syncfs(&dir);
                }
            });
            let out = work();
            drop(done);
            out
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (bag, sync);
    work()
}

/// A file being written that, when the package is to be synced, asks the
/// kernel to start writing each 8 MiB to disk as soon as it is complete, so
/// the `syncfs` before the rename overlaps the copy instead of following it
/// (by default the kernel would hold up to a tenth of memory dirty for 30 s).
/// Pages stay cached.
struct Writeback {
    file: File,
    /// Whether to ask for write-back at all.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    early: bool,
    written: u64,
    /// Where the last write-back request ended (read on Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    flushed: u64,
}

impl Writeback {
    /// Bytes between write-back requests.
    const WINDOW: u64 = 8 << 20;

    fn new(file: File, early: bool) -> Writeback {
        Writeback {
            file,
            early,
            written: 0,
            flushed: 0,
        }
    }
}

impl std::io::Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        #[cfg(target_os = "linux")]
        if self.early && self.written - self.flushed >= Self::WINDOW {
            // Advice only: on dirty pages it starts write-back and keeps
            // them; a failure changes nothing but speed.
            let len = std::num::NonZeroU64::new(self.written - self.flushed);
            let _ =
                rustix::fs::fadvise(&self.file, self.flushed, len, rustix::fs::Advice::DontNeed);
            self.flushed = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A staging folder untouched this long belongs to a run that was killed.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Remove the hidden `.<name>.*.partial` staging folders that killed runs
/// left in `out_dir` more than a day ago (a younger one may be another run's
/// work in progress). Best effort: what cannot be removed stays.
fn remove_stale_staging(out_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with('.') && name.ends_with(".partial")) {
            continue;
        }
        let stale = entry
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_dir)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_STAGING);
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Make the staged bag durable before it is renamed into place: one `syncfs`
/// on Linux (thousands of per-file fsyncs cost far more than the hashing), a
/// sync of every file and folder elsewhere.
fn sync_bag(bag: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        File::open(bag)
            .and_then(|dir| rustix::fs::syncfs(&dir).map_err(std::io::Error::from))
            .context(|| format!("cannot sync {}", bag.display()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        for rel in payload_files(bag)? {
            let path = bag.join(&rel);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .context(|| format!("cannot sync {}", path.display()))?;
        }
        Ok(())
    }
}

/// Every regular file under `root`, as sorted `/`-separated relative paths.
/// Symlinks, devices, sockets and FIFOs are refused, never followed or read.
pub(crate) fn payload_files(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries =
            std::fs::read_dir(&dir).context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.context(|| format!("cannot list {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(Error::invalid(format!(
                    "{}: a file name that is not UTF-8 cannot be packaged",
                    dir.display()
                )));
            };
            let child = rel.join(name);
            // The type comes with the listing and never follows a symlink.
            let kind = entry
                .file_type()
                .context(|| format!("cannot stat {}", entry.path().display()))?;
            if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() {
                let text = child
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push(text);
            } else {
                return Err(Error::invalid(format!(
                    "{} is not a regular file (symlink, device or FIFO); refusing to package it",
                    entry.path().display()
                )));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Percent-encode what RFC 8493 requires in manifest paths (CR, LF, `%`).
pub(crate) fn encode_path(path: &str) -> String {
    path.replace('%', "%25")
        .replace('\n', "%0A")
        .replace('\r', "%0D")
}

/// Reverse of [`encode_path`].
pub(crate) fn decode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let decoded = match rest.get(at + 1..at + 3) {
            Some("0A" | "0a") => Some('\n'),
            Some("0D" | "0d") => Some('\r'),
            Some("25") => Some('%'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn bag_info(info: &BagInfo, bytes: u64, files: usize) -> String {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut lines = vec![format!(
        "Source-Organization: {}",
        clean(&info.organisation)
    )];
    if let Some(name) = &info.contact_name {
        lines.push(format!("Contact-Name: {}", clean(name)));
    }
    if let Some(email) = &info.contact_email {
        lines.push(format!("Contact-Email: {}", clean(email)));
    }
    lines.extend([
        format!("External-Identifier: {}", clean(&info.run_id)),
        format!(
            "External-Description: Compliance evidence for {} collected by auditpack, with results and reports",
            clean(&info.organisation)
        ),
        format!("Bagging-Date: {}", chrono::Utc::now().format("%Y-%m-%d")),
        format!("Payload-Oxum: {bytes}.{files}"),
        format!("Bag-Software-Agent: {}", tool_version()),
        format!("Collection-Started: {}", info.started),
        format!("Collection-Finished: {}", info.finished),
        format!("Collected-By: {}", tool_version()),
        format!("Collector-Host: {}", clean(&info.host)),
        format!("Signature-Namespace: {NAMESPACE}"),
    ]);
    lines.join("\n") + "\n"
}

/// The auditor's `README-VERIFY.txt`: stock-tool commands for exactly the
/// files this package holds.
fn readme(signer: Option<&Signer>, algorithms: &[Algorithm]) -> String {
    let identity = signer.map_or("<signer identity>", Signer::identity);
    let authority = signer.and_then(Signer::timestamps);
    // The files no manifest lists: each tag manifest and its signature, and
    // the timestamp.
    let mut unlisted = Vec::new();
    for algorithm in algorithms {
        unlisted.push(Kind::Tag.file(*algorithm));
        unlisted.push(signature_file(*algorithm));
    }
    if authority.is_some() {
        unlisted.push(TIMESTAMP_FILE.to_owned());
    }
    let unlisted = unlisted.join(" ");
    let mut step = 4;
    let mut more = String::new();
    if algorithms.contains(&Algorithm::Sha512) {
        more.push_str(&format!(
            "
  {step}. The SHA-512 manifests, signed the same way:
     ssh-keygen -Y verify -f allowed_signers -I {identity} -n {NAMESPACE} \\
         -s tagmanifest-sha512.txt.sig < tagmanifest-sha512.txt
     sha512sum -c tagmanifest-sha512.txt && sha512sum --quiet -c manifest-sha512.txt
"
        ));
        step += 1;
    }
    if let Some(authority) = authority {
        more.push_str(&format!(
            "
  {step}. The time: {TIMESTAMP_FILE} is an RFC 3161 timestamp over
     tagmanifest-sha256.txt from {url};
     with that TSA's CA certificate (received out of band):
     openssl ts -verify -data tagmanifest-sha256.txt -in {TIMESTAMP_FILE} -CAfile tsa-ca.pem
",
            url = authority.url()
        ));
    }
    let tsa_flag = if authority.is_some() {
        " --tsa-ca tsa-ca.pem"
    } else {
        ""
    };
    format!(
        "This is an auditpack evidence package: a BagIt 1.0 bag (RFC 8493).
Everything collected is under data/; manifest-sha256.txt lists the SHA-256 of
every payload file, tagmanifest-sha256.txt lists the SHA-256 of every other
file, and {SIGNATURE_FILE} is an OpenSSH signature over tagmanifest-sha256.txt.
The package is the signer's only if the signature covers every file in it:
the steps below prove that together, and any file they do not account for
makes the package invalid.

Verify it with stock tools, from this folder. Use an allowed_signers file you
received from the signer out of band, never one shipped inside a package.

  1. The signature (namespace {NAMESPACE}):
     ssh-keygen -Y verify -f allowed_signers -I {identity} -n {NAMESPACE} \\
         -s {SIGNATURE_FILE} < tagmanifest-sha256.txt

  2. The tag files, then every payload file:
     sha256sum -c tagmanifest-sha256.txt && sha256sum --quiet -c manifest-sha256.txt

  3. Every file in the package is listed in a manifest or is one of
     {unlisted}
     (no output means nothing was added, anywhere):
     diff <(find . ! -type d | cut -c3- | LC_ALL=C sort) \\
          <( (cut -d' ' -f3- manifest-sha256.txt tagmanifest-sha256.txt; printf '%s\\n' {unlisted}) | LC_ALL=C sort)
{more}
Or, with auditpack (also on the .zip, without unpacking it; --reevaluate
re-derives the results from the evidence and reports any difference):
     auditpack verify . --allowed-signers allowed_signers --identity {identity}{tsa_flag} --reevaluate
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_encoding_round_trips() {
        for p in [
            "a/b.json",
            "50%.txt",
            "line\nbreak",
            "cr\rx",
            "%0A literally",
            "%250A%",
            "é%25%",
            "%",
        ] {
            assert_eq!(decode_path(&encode_path(p)), p);
            assert!(!encode_path(p).contains(['\n', '\r']));
        }
        // What other tools write: lower-case escapes, and a `%` that starts
        // no escape stays as it is.
        assert_eq!(decode_path("a%0ab%0dc"), "a\nb\rc");
        assert_eq!(decode_path("100%.txt"), "100%.txt");
        assert_eq!(decode_path("%2"), "%2");
        assert_eq!(decode_path("%%25é%"), "%%é%");
    }

    #[test]
    fn write_back_advice_leaves_the_bytes_intact() -> std::io::Result<()> {
        use std::io::Write;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("big");
        // Two and a half windows, in uneven writes, while syncs run beside.
        let bytes: Vec<u8> = (0..Writeback::WINDOW * 5 / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        while_syncing(dir.path(), true, || -> std::io::Result<()> {
            let mut out = Writeback::new(File::create(&path)?, true);
            for chunk in bytes.chunks(100_003) {
                out.write_all(chunk)?;
            }
            out.flush()
        })?;
        assert!(std::fs::read(&path)? == bytes);
        Ok(())
    }
}
