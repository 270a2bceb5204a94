//! Payload files whose SHA-256 is already known: auditpack hashed every
//! evidence file when it wrote it (the custody log), and recorded what the
//! file system said about it then (device, inode, size, modification time).
//! Such a file is linked into the package and its recorded digest goes into
//! the manifest without reading it again, as long as the link still shows
//! the same stamp; any difference (the file was replaced, rewritten or
//! touched) and it is hashed like every other file.
//!
//! Trusting the stamp is what `make`, `rsync` and `git` do. A file changed in
//! place with its modification time forged back would keep a stale digest:
//! `verify` then reports the mismatch, so the package can be wrong but never
//! silently so.

use std::collections::BTreeMap;
use std::path::Path;

use crate::hash::Algorithm;
use crate::link::{link_stamped, Payload};
use crate::parallel::parallel_map;

/// A payload file's SHA-256 as recorded when it was written, with the file
/// system's stamp of the file then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Device (file system) number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Modification time: seconds since the epoch.
    pub mtime: i64,
    /// Modification time: nanoseconds within the second.
    pub mtime_nsec: i64,
}

impl Recorded {
    /// Whether `metadata` shows the file as it was recorded.
    fn matches(&self, metadata: &std::fs::Metadata) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            metadata.is_file()
                && metadata.len() == self.size
                && metadata.dev() == self.dev
                && metadata.ino() == self.ino
                && metadata.mtime() == self.mtime
                && metadata.mtime_nsec() == self.mtime_nsec
                && self.sha256.len() == 64
                && self
                    .sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            false
        }
    }
}

/// For each of `files` (run-relative paths), its digests and size when it
/// was linked into `data` and its recorded digest still holds; `None` for
/// the files left to hash (nothing is linked for those).
pub(crate) fn link_known(
    files: &[String],
    run_dir: &Path,
    data: &Path,
    recorded: &BTreeMap<String, Recorded>,
    algorithms: &[Algorithm],
    payload: Payload,
) -> Vec<Option<(Vec<String>, u64)>> {
    if recorded.is_empty() || algorithms != [Algorithm::Sha256] || payload != Payload::Link {
        return vec![None; files.len()];
    }
    parallel_map(files, |rel| {
        let record = recorded.get(rel)?;
        let dst = data.join(rel);
        let status = link_stamped(rel, &run_dir.join(rel), &dst)?;
        if record.matches(&status) {
            Some((vec![record.sha256.clone()], record.size))
        } else {
            // Hashed with the rest, which links it again.
            let _ = std::fs::remove_file(&dst);
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{verify, write_bag_with, BagInfo, BagOptions, VerifyOptions};

    fn info() -> BagInfo {
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

    fn record(path: &Path, sha256: &str) -> std::io::Result<Recorded> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(Recorded {
            sha256: sha256.to_owned(),
            size: m.len(),
            dev: m.dev(),
            ino: m.ino(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }

    /// Package `run` signed by a new key, and options that verify it.
    fn package(
        dir: &Path,
        run: &Path,
        options: &BagOptions,
    ) -> Result<(std::path::PathBuf, VerifyOptions), Box<dyn std::error::Error>> {
        let pair = crate::generate_key(&dir.join("key"), "t@example", None)?;
        let signers = dir.join("allowed_signers");
        std::fs::write(&signers, pair.signer.allowed_signers_line()?)?;
        let bag = write_bag_with(
            run,
            &dir.join("out"),
            "pkg",
            &info(),
            Some(&pair.signer),
            options,
        )?;
        let verify_options = VerifyOptions {
            allowed_signers: signers,
            identity: Some("t@example".into()),
            ..VerifyOptions::default()
        };
        Ok((bag, verify_options))
    }

    fn manifest(bag: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(bag.join("manifest-sha256.txt"))
    }

    #[test]
    fn a_recorded_digest_is_used_while_the_file_is_unchanged(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join("evidence"))?;
        std::fs::write(run.join("custody.jsonl"), "")?;
        let (a, b) = (run.join("evidence/a.json"), run.join("evidence/b.json"));
        std::fs::write(&a, "[1]")?;
        std::fs::write(&b, "[2]")?;
        // A digest nobody computed from these bytes shows which were read.
        let fake = "f".repeat(64);
        let mut recorded = BTreeMap::new();
        recorded.insert("evidence/a.json".to_owned(), record(&a, &fake)?);
        recorded.insert("evidence/b.json".to_owned(), record(&b, &fake)?);
        // b is replaced after it was recorded: new inode, new stamp.
        crate::atomic::write_atomic(&b, b"[3]")?;
        let options = BagOptions {
            recorded,
            ..BagOptions::default()
        };
        let (bag, check) = package(dir.path(), &run, &options)?;
        let text = manifest(&bag)?;
        assert!(
            text.contains(&format!("{fake}  data/evidence/a.json")),
            "{text}"
        );
        assert!(
            !text.contains(&format!("{fake}  data/evidence/b.json")),
            "{text}"
        );
        // The untrusted digest makes verification fail, naming the file.
        let report = verify(&bag, &check)?;
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("evidence/a.json")),
            "{:?}",
            report.problems
        );
        assert!(!report
            .problems
            .iter()
            .any(|p| p.contains("evidence/b.json")));
        Ok(())
    }

    #[test]
    fn true_recorded_digests_make_a_valid_package() -> Result<(), Box<dyn std::error::Error>> {
        use sha2_free::hex_sha256;
        let dir = tempfile::tempdir()?;
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join("evidence"))?;
        std::fs::write(run.join("custody.jsonl"), "")?;
        let a = run.join("evidence/a.json");
        std::fs::write(&a, "[1,2]")?;
        let mut recorded = BTreeMap::new();
        recorded.insert(
            "evidence/a.json".to_owned(),
            record(&a, &hex_sha256(b"[1,2]"))?,
        );
        let options = BagOptions {
            recorded,
            ..BagOptions::default()
        };
        let (bag, check) = package(dir.path(), &run, &options)?;
        assert!(manifest(&bag)?.contains(&hex_sha256(b"[1,2]")));
        let report = verify(&bag, &check)?;
        assert_eq!(report.problems, Vec::<String>::new());
        Ok(())
    }

    mod sha2_free {
        /// SHA-256 in hex through ring, as the crate hashes.
        pub(super) fn hex_sha256(bytes: &[u8]) -> String {
            hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
        }
    }
}
