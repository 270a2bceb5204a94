//! Where runs end up: the local store folder (the default: runs and packages
//! stay where the pipeline wrote them) or S3-compatible object storage with
//! Object Lock in compliance mode (`store = "s3://bucket/prefix"`,
//! `[store_s3]`), where each organisation's signed package zip, run summary
//! and retention record are uploaded write-once from a local staging folder.
//!
//! Layout in the bucket, per organisation (`<org>` is the organisation's
//! slug): `<prefix>/<org>/packages/<package>.zip`,
//! `<prefix>/<org>/summaries/<run_id>.json` and
//! `<prefix>/<org>/retention/<run_id>.json`.

pub mod s3;
pub mod summaries;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ResultExt};

pub use s3::{parse_object_url, LockInfo, ObjectInfo, RemoteObject, S3Store, Uploaded};
pub use summaries::{history_scope, S3Summaries};

/// The small record kept beside each package: what was stored under which
/// retention, so an auditor can see the promise without asking the bucket.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RetentionRecord {
    /// Format version of this record.
    pub schema_version: u32,
    /// The run id.
    pub run_id: String,
    /// The organisation's display name.
    pub organisation: String,
    /// Object Lock mode of every object of the run (`COMPLIANCE`).
    pub mode: String,
    /// The retain-until date of every object of the run (RFC 3339).
    pub retain_until: String,
    /// Whether a legal hold was put on them.
    pub legal_hold: bool,
    /// Each object of the run: key relative to the prefix, SHA-256 (hex),
    /// size and the version id the store gave it.
    pub objects: Vec<StoredObject>,
}

/// One object a run stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredObject {
    /// Key relative to the store's prefix.
    pub key: String,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The version id the store gave it, if any.
    pub version_id: Option<String>,
}

/// A run waiting in the staging folder to be uploaded:
/// `<staging>/outbox/<run_id>.json`. Written before the first upload and
/// removed after the last, so a run killed in between is finished by the
/// next run of the same organisation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// The organisation's slug (its folder in the bucket).
    pub org: String,
    /// The organisation's display name.
    pub organisation: String,
    /// The run id.
    pub run_id: String,
    /// The package zip in the staging folder.
    pub zip: std::path::PathBuf,
    /// The package zip's key, relative to the store's prefix.
    pub package: String,
    /// The package zip's SHA-256 (hex) when it was sealed.
    pub package_sha256: String,
    /// The package zip's size in bytes.
    pub package_bytes: u64,
    /// The run's summary (`<staging>/summaries/<run_id>.json`, the history's).
    pub summary: std::path::PathBuf,
}

/// The keys of one run, relative to the store's prefix.
pub fn package_key(org: &str, zip_name: &str) -> String {
    format!("{org}/packages/{zip_name}")
}

/// The summary key of a run, relative to the store's prefix.
pub fn summary_key(org: &str, run_id: &str) -> String {
    format!("{org}/summaries/{run_id}.json")
}

/// The retention record key of a run, relative to the store's prefix.
pub fn retention_key(org: &str, run_id: &str) -> String {
    format!("{org}/retention/{run_id}.json")
}

/// The SHA-256 (hex) and size of a file.
///
/// # Errors
/// When it cannot be read.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file =
        std::fs::File::open(path).context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Put a finished run in the staging folder's outbox.
///
/// # Errors
/// On I/O failure.
pub fn queue(staging: &Path, pending: &Pending) -> Result<()> {
    let path = staging
        .join("outbox")
        .join(format!("{}.json", pending.run_id));
    let json = serde_json::to_vec_pretty(pending).context(|| "cannot encode an outbox entry")?;
    crate::evidence::write_atomic(&path, &json)
        .context(|| format!("cannot write {}", path.display()))
}

/// The outbox entries of organisation `org`, oldest run first.
///
/// # Errors
/// When the outbox cannot be read or an entry is malformed (named).
pub fn queued(staging: &Path, org: &str) -> Result<Vec<Pending>> {
    let dir = staging.join("outbox");
    let mut paths: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::new(
                e.into(),
                format!("cannot list {}", dir.display()),
            ))
        }
    };
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).context(|| format!("cannot read {}", p.display()))?;
        let pending: Pending = serde_json::from_slice(&bytes)
            .context(|| format!("{} is not an outbox entry", p.display()))?;
        if pending.org == org {
            out.push(pending);
        }
    }
    Ok(out)
}

/// Upload one queued run: the package zip, the summary and the retention
/// record, each write-once with the same retain-until date; then the
/// record is kept in `<staging>/uploaded/` and the outbox entry removed.
/// Objects already there with the same bytes (a run killed after some
/// uploads) are left as they are.
///
/// # Errors
/// When an upload is refused or a file cannot be read.
pub async fn publish(
    store: &S3Store,
    staging: &Path,
    pending: &Pending,
) -> Result<RetentionRecord> {
    let now = chrono::Utc::now();
    let until = store.retain_until(now);
    let zip = store
        .upload_file(&pending.zip, &pending.package, until)
        .await?;
    if zip.sha256 != pending.package_sha256 {
        return Err(Error::invalid(format!(
            "{} changed since it was packaged (SHA-256 {} now, {} then); not stored",
            pending.zip.display(),
            zip.sha256,
            pending.package_sha256
        )));
    }
    let summary_json = std::fs::read(&pending.summary)
        .context(|| format!("cannot read {}", pending.summary.display()))?;
    let summary_object = store
        .upload_bytes(
            summary_json,
            &summary_key(&pending.org, &pending.run_id),
            until,
        )
        .await?;
    let relative = |u: &Uploaded| StoredObject {
        key: store.relative(&u.key).unwrap_or(&u.key).to_owned(),
        sha256: u.sha256.clone(),
        bytes: u.bytes,
        version_id: u.version_id.clone(),
    };
    let record = RetentionRecord {
        schema_version: 1,
        run_id: pending.run_id.clone(),
        organisation: pending.organisation.clone(),
        mode: "COMPLIANCE".into(),
        retain_until: until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        legal_hold: store.legal_hold(),
        objects: vec![relative(&zip), relative(&summary_object)],
    };
    let mut json =
        serde_json::to_vec_pretty(&record).context(|| "cannot encode a retention record")?;
    json.push(b'\n');
    let key = retention_key(&pending.org, &pending.run_id);
    if store.head(&store.key(&key)).await?.is_none() {
        store.upload_bytes(json.clone(), &key, until).await?;
    }
    let receipt = staging
        .join("uploaded")
        .join(format!("{}.json", pending.run_id));
    crate::evidence::write_atomic(&receipt, &json)
        .context(|| format!("cannot write {}", receipt.display()))?;
    let entry = staging
        .join("outbox")
        .join(format!("{}.json", pending.run_id));
    std::fs::remove_file(&entry).context(|| format!("cannot remove {}", entry.display()))?;
    Ok(record)
}
