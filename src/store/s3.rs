//! The S3 backend: an `aws-sdk-s3` client for one bucket and prefix, with
//! the bucket check made before a run collects anything, write-once uploads
//! (Object Lock compliance mode with a retain-until date, optional legal
//! hold, a SHA-256 checksum the server verifies; multipart above one part,
//! aborted on failure), listing, downloads and ranged reads for verifying
//! a package in place.
//!
//! Relied on from AWS's S3 documentation: Object Lock needs versioning and
//! is set on the bucket at creation (`GetObjectLockConfiguration` says
//! `Enabled`); an object version in compliance mode cannot be deleted or
//! its retention shortened by anyone until its retain-until date; `PutObject`
//! and `CreateMultipartUpload` take `x-amz-object-lock-mode`,
//! `-retain-until-date` and `-legal-hold`; `x-amz-checksum-sha256` makes
//! the server check the bytes it received (and refuse with `BadDigest`);
//! a multipart upload's parts are invisible until `CompleteMultipartUpload`,
//! and `ListMultipartUploads` + `AbortMultipartUpload` remove leftovers.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime as AwsDateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload,
    CompletedPart, ObjectLockEnabled, ObjectLockLegalHoldStatus, ObjectLockMode,
};
use aws_sdk_s3::Client;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use crate::config::{S3Location, StoreS3};
use crate::error::{Error, ErrorKind, Result};

/// Largest object sent in one `PutObject`; larger ones go up in parts.
const DEFAULT_PART: u64 = 16 << 20;
/// Parts of one object in flight at once.
const PARTS_IN_FLIGHT: usize = 8;
/// Largest run summary read back (a summary lists every control and check).
const SUMMARY_LIMIT: u64 = 64 << 20;
/// Objects uploaded at once by [`S3Store::upload_many`].
const OBJECTS_IN_FLIGHT: usize = 16;

/// A bucket and prefix with Object Lock, and how objects are retained there.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    location: S3Location,
    retention_days: u32,
    legal_hold: bool,
    part_size: u64,
}

/// An object's Object Lock state, as the store reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// `COMPLIANCE`, `GOVERNANCE`, or `None` when unlocked.
    pub mode: Option<String>,
    /// The retain-until date (RFC 3339).
    pub retain_until: Option<String>,
    /// Whether a legal hold is on.
    pub legal_hold: bool,
}

/// One object as listed or looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full key in the bucket.
    pub key: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Its current version id, if the store gave one.
    pub version_id: Option<String>,
    /// Its SHA-256 checksum as stored (base64; `-N` suffixed for multipart).
    pub checksum_sha256: Option<String>,
    /// Its lock.
    pub lock: LockInfo,
}

/// What an upload stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Full key in the bucket.
    pub key: String,
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// The version id the store gave it.
    pub version_id: Option<String>,
    /// Whether it was already there with the same bytes (a resumed run).
    pub already_there: bool,
}

impl S3Store {
    /// A client for `settings`: credentials from `access_key_id_*` /
    /// `secret_access_key_*` when set, else the standard AWS environment
    /// variables and profile files; region from the settings, the
    /// environment or profile, else `us-east-1`.
    ///
    /// # Errors
    /// When a named credential cannot be read (the message names the
    /// variable or file, never the value).
    pub async fn connect(settings: &StoreS3) -> Result<S3Store> {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(creds) = &settings.credentials {
            let key = creds
                .access_key_id
                .resolve()
                .map_err(|e| named(e, &settings.location, "access_key_id"))?;
            let secret = creds
                .secret_access_key
                .resolve()
                .map_err(|e| named(e, &settings.location, "secret_access_key"))?;
            let token = creds
                .session_token
                .as_ref()
                .map(|t| t.resolve())
                .transpose()
                .map_err(|e| named(e, &settings.location, "session_token"))?;
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                key.expose(),
                secret.expose(),
                token.map(|t| t.expose().to_owned()),
                None,
                "auditpack-store-s3",
            ));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.path_style)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(3));
        if shared.region().is_none() {
            config = config.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(config.build()),
            location: settings.location.clone(),
            retention_days: settings.retention_days,
            legal_hold: settings.legal_hold,
            part_size: DEFAULT_PART,
        })
    }

    /// The same store with parts of `bytes` (at least 5 MiB, S3's minimum).
    #[must_use]
    pub fn with_part_size(mut self, bytes: u64) -> S3Store {
        self.part_size = bytes.max(5 << 20);
        self
    }

    /// The bucket and prefix.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// The underlying client (tests and benchmarks drive the bucket with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The full key of `relative` under the prefix.
    pub fn key(&self, relative: &str) -> String {
        if self.location.prefix.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.location.prefix)
        }
    }

    /// The key relative to the prefix, when `key` lies under it.
    pub fn relative<'k>(&self, key: &'k str) -> Option<&'k str> {
        if self.location.prefix.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(&self.location.prefix)?.strip_prefix('/')
        }
    }

    /// Check the bucket before anything is collected: it exists, the
    /// credentials are accepted, versioning is on, Object Lock is enabled,
    /// and an object can be written under the prefix. Every failure is an
    /// error naming the bucket and what is missing.
    ///
    /// # Errors
    /// As described; [`ErrorKind::Config`] for what the bucket lacks,
    /// [`ErrorKind::Auth`] for refused credentials, [`ErrorKind::Source`]
    /// for an unreachable endpoint.
    pub async fn check_bucket(&self) -> Result<()> {
        let bucket = &self.location.bucket;
        self.client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| self.refused(&e, "cannot reach the bucket"))?;
        let mut missing = Vec::new();
        let versioning = self
            .client
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| self.refused(&e, "cannot read its versioning"))?;
        if versioning.status() != Some(&BucketVersioningStatus::Enabled) {
            missing.push("versioning is not enabled");
        }
        match self
            .client
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out)
                if out
                    .object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    == Some(&ObjectLockEnabled::Enabled) => {}
            Ok(_) => missing.push("Object Lock is not enabled"),
            Err(e)
                if status(&e) == Some(404)
                    || code(&e).is_some_and(|c| c.contains("ObjectLockConfigurationNotFound")) =>
            {
                missing.push("Object Lock is not enabled (it can only be turned on when the bucket is created, or by AWS support)");
            }
            Err(e) => return Err(self.refused(&e, "cannot read its Object Lock configuration")),
        }
        if !missing.is_empty() {
            return Err(Error::config(format!(
                "bucket {bucket}: {}; evidence there could be deleted or overwritten, so nothing was collected",
                missing.join("; ")
            )));
        }
        // A write test: a tiny object without retention of its own, removed
        // again (where a default retention keeps it, it stays: one tiny file).
        let probe = self.key(".auditpack-write-probe");
        let put = self
            .client
            .put_object()
            .bucket(bucket)
            .key(&probe)
            .body(ByteStream::from_static(b"auditpack write probe\n"))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| {
                self.refused(
                    &e,
                    &format!("the credentials cannot write under {}", self.location),
                )
            })?;
        if let Some(version) = put.version_id() {
            let _ = self
                .client
                .delete_object()
                .bucket(bucket)
                .key(&probe)
                .version_id(version)
                .send()
                .await;
        }
        Ok(())
    }

    /// The retain-until date of an object written now.
    pub fn retain_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::days(i64::from(self.retention_days))
    }

    /// Whether new objects get a legal hold.
    pub fn legal_hold(&self) -> bool {
        self.legal_hold
    }

    /// Upload a file to `key` (relative to the prefix), write-once: Object
    /// Lock compliance until `retain_until`, a legal hold if configured, and
    /// the SHA-256 checksum the server verifies. An object already at the
    /// key with the same SHA-256 is left as it is (a resumed upload);
    /// one with other bytes is an error, never overwritten. Above one part,
    /// a multipart upload, aborted when any part fails.
    ///
    /// # Errors
    /// When the file cannot be read, the server refuses (the message names
    /// the bucket and key), or a different object is already there.
    pub async fn upload_file(
        &self,
        path: &Path,
        key: &str,
        retain_until: DateTime<Utc>,
    ) -> Result<Uploaded> {
        let full = self.key(key);
        let size = std::fs::metadata(path)
            .map_err(|e| Error::new(e.into(), format!("cannot read {}", path.display())))?
            .len();
        if size <= self.part_size {
            let bytes = std::fs::read(path)
                .map_err(|e| Error::new(e.into(), format!("cannot read {}", path.display())))?;
            self.put_bytes(&full, bytes, retain_until).await
        } else {
            self.put_multipart(path, &full, size, retain_until).await
        }
    }

    /// Upload bytes to `key` (relative to the prefix), as [`S3Store::upload_file`].
    ///
    /// # Errors
    /// As [`S3Store::upload_file`].
    pub async fn upload_bytes(
        &self,
        bytes: Vec<u8>,
        key: &str,
        retain_until: DateTime<Utc>,
    ) -> Result<Uploaded> {
        self.put_bytes(&self.key(key), bytes, retain_until).await
    }

    /// Upload many files at once (up to 16 in flight), each as
    /// [`S3Store::upload_file`]; results in the order given.
    ///
    /// # Errors
    /// The first failure, after every started upload has ended.
    pub async fn upload_many(
        &self,
        files: &[(PathBuf, String)],
        retain_until: DateTime<Utc>,
    ) -> Result<Vec<Uploaded>> {
        let semaphore = Arc::new(tokio::sync::Semaphore::new(OBJECTS_IN_FLIGHT));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (path, key)) in files.iter().enumerate() {
            let store = self.clone();
            let (path, key) = (path.clone(), key.clone());
            let semaphore = semaphore.clone();
            tasks.spawn(async move {
                let _permit = semaphore.acquire().await;
                (i, store.upload_file(&path, &key, retain_until).await)
            });
        }
        let mut out: Vec<Option<Uploaded>> = vec![None; files.len()];
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Ok(u))) => out[i] = Some(u),
                Ok((_, Err(e))) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(Error::new(
                        ErrorKind::Source,
                        format!("an upload to {} stopped: {e}", self.location),
                    ));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out.into_iter().flatten().collect()),
        }
    }

    fn lock_headers(
        &self,
        retain_until: DateTime<Utc>,
    ) -> (
        ObjectLockMode,
        AwsDateTime,
        Option<ObjectLockLegalHoldStatus>,
    ) {
        (
            ObjectLockMode::Compliance,
            AwsDateTime::from_secs(retain_until.timestamp()),
            self.legal_hold.then_some(ObjectLockLegalHoldStatus::On),
        )
    }

    /// What is at `full` already: `Some(Uploaded)` when it holds `sha256`,
    /// an error when it holds something else, `None` when nothing is there.
    async fn existing(&self, full: &str, sha256: &[u8], size: u64) -> Result<Option<Uploaded>> {
        let Some(info) = self.head(full).await? else {
            return Ok(None);
        };
        let whole = base64::engine::general_purpose::STANDARD.encode(sha256);
        let same = info.bytes == size
            && match info.checksum_sha256.as_deref() {
                Some(c) if c == whole => true,
                // A multipart object's checksum is of its parts: compare the bytes.
                Some(c) if c.contains('-') => self.sha256_of(full).await? == sha256,
                _ => false,
            };
        if !same {
            return Err(Error::invalid(format!(
                "s3://{}/{full} already holds other bytes; stored evidence is never overwritten",
                self.location.bucket
            )));
        }
        Ok(Some(Uploaded {
            key: full.to_owned(),
            sha256: hex::encode(sha256),
            bytes: size,
            version_id: info.version_id,
            already_there: true,
        }))
    }

    async fn put_bytes(
        &self,
        full: &str,
        bytes: Vec<u8>,
        retain_until: DateTime<Utc>,
    ) -> Result<Uploaded> {
        let sha256 = Sha256::digest(&bytes);
        let size = bytes.len() as u64;
        if let Some(done) = self.existing(full, &sha256, size).await? {
            return Ok(done);
        }
        let (mode, until, hold) = self.lock_headers(retain_until);
        let out = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(full)
            .body(ByteStream::from(bytes))
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(sha256))
            .object_lock_mode(mode)
            .object_lock_retain_until_date(until)
            .set_object_lock_legal_hold_status(hold)
            .send()
            .await
            .map_err(|e| self.refused(&e, &format!("cannot upload {full}")))?;
        Ok(Uploaded {
            key: full.to_owned(),
            sha256: hex::encode(sha256),
            bytes: size,
            version_id: out.version_id().map(str::to_owned),
            already_there: false,
        })
    }

    async fn put_multipart(
        &self,
        path: &Path,
        full: &str,
        size: u64,
        retain_until: DateTime<Utc>,
    ) -> Result<Uploaded> {
        let cannot_read =
            |e: std::io::Error| Error::new(e.into(), format!("cannot read {}", path.display()));
        // The whole file's SHA-256 first: to find a finished upload of the
        // same bytes, and for the retention record.
        let whole = {
            let owned = path.to_owned();
            tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                let mut file = std::fs::File::open(&owned)?;
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                Ok(hasher.finalize().to_vec())
            })
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Source,
                    format!("hashing {}: {e}", path.display()),
                )
            })?
            .map_err(cannot_read)?
        };
        if let Some(done) = self.existing(full, &whole, size).await? {
            return Ok(done);
        }
        let (mode, until, hold) = self.lock_headers(retain_until);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.location.bucket)
            .key(full)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .object_lock_mode(mode)
            .object_lock_retain_until_date(until)
            .set_object_lock_legal_hold_status(hold)
            .send()
            .await
            .map_err(|e| self.refused(&e, &format!("cannot start uploading {full}")))?;
        let Some(upload_id) = created.upload_id().map(str::to_owned) else {
            return Err(Error::new(
                ErrorKind::Source,
                format!("bucket {}: no upload id for {full}", self.location.bucket),
            ));
        };
        match self.send_parts(path, full, &upload_id, size).await {
            Ok(parts) => {
                let done = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.location.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await;
                match done {
                    Ok(out) => Ok(Uploaded {
                        key: full.to_owned(),
                        sha256: hex::encode(&whole),
                        bytes: size,
                        version_id: out.version_id().map(str::to_owned),
                        already_there: false,
                    }),
                    Err(e) => {
                        self.abort(full, &upload_id).await;
                        Err(self.refused(&e, &format!("cannot complete the upload of {full}")))
                    }
                }
            }
            Err(e) => {
                self.abort(full, &upload_id).await;
                Err(e)
            }
        }
    }

    async fn send_parts(
        &self,
        path: &Path,
        full: &str,
        upload_id: &str,
        size: u64,
    ) -> Result<Vec<CompletedPart>> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| Error::new(e.into(), format!("cannot read {}", path.display())))?;
        let count = size.div_ceil(self.part_size);
        let mut tasks = tokio::task::JoinSet::new();
        let mut parts = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for number in 1..=count {
            while tasks.len() >= PARTS_IN_FLIGHT {
                if let Some(joined) = tasks.join_next().await {
                    parts.push(part_result(joined, &self.location)?);
                }
            }
            let len = self.part_size.min(size - (number - 1) * self.part_size);
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
            file.read_exact(&mut buf)
                .map_err(|e| Error::new(e.into(), format!("cannot read {}", path.display())))?;
            let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&buf));
            let request = self
                .client
                .upload_part()
                .bucket(&self.location.bucket)
                .key(full)
                .upload_id(upload_id)
                .part_number(i32::try_from(number).unwrap_or(i32::MAX))
                .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                .checksum_sha256(sum.clone())
                .body(ByteStream::from(buf));
            let store = self.clone();
            let full = full.to_owned();
            tasks.spawn(async move {
                let out = request.send().await.map_err(|e| {
                    store.refused(&e, &format!("cannot upload part {number} of {full}"))
                })?;
                Ok(CompletedPart::builder()
                    .part_number(i32::try_from(number).unwrap_or(i32::MAX))
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .checksum_sha256(sum)
                    .build())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            parts.push(part_result(joined, &self.location)?);
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    async fn abort(&self, full: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.location.bucket)
            .key(full)
            .upload_id(upload_id)
            .send()
            .await;
    }

    /// Abort every unfinished multipart upload under `relative` (a key
    /// prefix under the store's prefix): what a killed run left. Their
    /// parts were never visible as objects. Returns how many were aborted.
    ///
    /// # Errors
    /// When the uploads cannot be listed or one cannot be aborted.
    pub async fn abort_stale_uploads(&self, relative: &str) -> Result<usize> {
        let prefix = self.key(relative);
        let mut aborted = 0;
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_multipart_uploads()
                .bucket(&self.location.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| self.refused(&e, "cannot list unfinished uploads"))?;
            for upload in out.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.location.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| {
                        self.refused(&e, &format!("cannot abort the unfinished upload of {key}"))
                    })?;
                aborted += 1;
            }
            if out.is_truncated() == Some(true) {
                key_marker = out.next_key_marker().map(str::to_owned);
                id_marker = out.next_upload_id_marker().map(str::to_owned);
                if key_marker.is_none() {
                    break;
                }
            } else {
                break;
            }
        }
        Ok(aborted)
    }

    /// The object at the full `key`, with its lock, or `None` when absent.
    ///
    /// # Errors
    /// When the store refuses or cannot be reached.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self
            .client
            .head_object()
            .bucket(&self.location.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                bytes: out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                version_id: out.version_id().map(str::to_owned),
                checksum_sha256: out.checksum_sha256().map(str::to_owned),
                lock: LockInfo {
                    mode: out.object_lock_mode().map(|m| m.as_str().to_owned()),
                    retain_until: out.object_lock_retain_until_date().and_then(rfc3339),
                    legal_hold: out.object_lock_legal_hold_status()
                        == Some(&ObjectLockLegalHoldStatus::On),
                },
            })),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.refused(&e, &format!("cannot look up {key}"))),
        }
    }

    async fn sha256_of(&self, key: &str) -> Result<Vec<u8>> {
        let out = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.refused(&e, &format!("cannot read {key}")))?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| Error::new(ErrorKind::Source, format!("reading {key}: {e}")))?
        {
            hasher.update(&chunk);
        }
        Ok(hasher.finalize().to_vec())
    }

    /// Every object whose key (relative to the prefix) starts with
    /// `relative`, in key order.
    ///
    /// # Errors
    /// When the store refuses or cannot be reached.
    pub async fn list(&self, relative: &str) -> Result<Vec<(String, u64)>> {
        let prefix = self.key(relative);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.location.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| self.refused(&e, "cannot list objects"))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    let size = object
                        .size()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0);
                    out.push((key.to_owned(), size));
                }
            }
            token = page.next_continuation_token().map(str::to_owned);
            if page.is_truncated() != Some(true) || token.is_none() {
                break;
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every package zip in the store (of one organisation's slug when
    /// given), each with its lock.
    ///
    /// # Errors
    /// When the store refuses or cannot be reached.
    pub async fn list_packages(&self, org: Option<&str>) -> Result<Vec<ObjectInfo>> {
        let listed = self
            .list(org.map(|o| format!("{o}/")).as_deref().unwrap_or(""))
            .await?;
        let mut out = Vec::new();
        for (key, _) in listed {
            let Some(rel) = self.relative(&key) else {
                continue;
            };
            let mut parts = rel.split('/');
            let (Some(_org), Some("packages"), Some(name), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if !name.ends_with(".zip") {
                continue;
            }
            if let Some(info) = self.head(&key).await? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// The organisations (slugs) with run summaries in the store
    /// (`<prefix>/<org>/summaries/`), sorted.
    ///
    /// # Errors
    /// When the store refuses or cannot be reached.
    pub async fn organisations(&self) -> Result<Vec<String>> {
        let mut out = std::collections::BTreeSet::new();
        for (key, _) in self.list("").await? {
            let Some(rel) = self.relative(&key) else {
                continue;
            };
            let parts: Vec<&str> = rel.split('/').collect();
            if parts.len() == 3 && parts[1] == "summaries" && parts[2].ends_with(".json") {
                out.insert(parts[0].to_owned());
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Every run summary in the store (`<prefix>/<org>/summaries/*.json`),
    /// by key.
    ///
    /// # Errors
    /// When the store refuses or a summary is not one.
    pub async fn list_summaries(&self) -> Result<Vec<crate::history::RunSummary>> {
        let mut out = Vec::new();
        for (key, _) in self.list("").await? {
            let Some(rel) = self.relative(&key) else {
                continue;
            };
            let parts: Vec<&str> = rel.split('/').collect();
            if parts.len() == 3 && parts[1] == "summaries" && parts[2].ends_with(".json") {
                out.push(self.read_summary(&key).await?);
            }
        }
        Ok(out)
    }

    /// One run summary, by full key.
    ///
    /// # Errors
    /// When it cannot be read or is not a summary.
    pub async fn read_summary(&self, key: &str) -> Result<crate::history::RunSummary> {
        let bytes = self.get_bytes(key, SUMMARY_LIMIT).await?;
        crate::history::RunSummary::decode(&bytes, &format!("s3://{}/{key}", self.location.bucket))
    }

    /// A whole object, up to `limit` bytes.
    ///
    /// # Errors
    /// When it cannot be read or is larger.
    pub async fn get_bytes(&self, key: &str, limit: u64) -> Result<Vec<u8>> {
        let out = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| self.refused(&e, &format!("cannot read {key}")))?;
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!("reading s3://{}/{key}: {e}", self.location.bucket),
            )
        })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > limit {
                return Err(Error::invalid(format!(
                    "s3://{}/{key} is larger than {limit} bytes",
                    self.location.bucket
                )));
            }
        }
        Ok(bytes)
    }

    /// Download the object at the full `key` to `dest`, atomically, checking
    /// the server's SHA-256 of it when it has a whole-object one. Returns
    /// the SHA-256 of what was written (hex).
    ///
    /// # Errors
    /// When it cannot be read or written, or the bytes do not match.
    pub async fn download(&self, key: &str, dest: &Path) -> Result<String> {
        use std::io::Write as _;
        let out = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| self.refused(&e, &format!("cannot read {key}")))?;
        let expected = out.checksum_sha256().map(str::to_owned);
        let mut file = crate::evidence::AtomicFile::create(dest)
            .map_err(|e| Error::new(e.into(), format!("cannot write {}", dest.display())))?;
        let mut hasher = Sha256::new();
        let mut body = out.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!("reading s3://{}/{key}: {e}", self.location.bucket),
            )
        })? {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .map_err(|e| Error::new(e.into(), format!("cannot write {}", dest.display())))?;
        }
        let digest = hasher.finalize();
        if let Some(expected) = expected.filter(|c| !c.contains('-')) {
            if base64::engine::general_purpose::STANDARD.encode(digest) != expected {
                return Err(Error::invalid(format!(
                    "s3://{}/{key}: the bytes received do not match the stored SHA-256; nothing written",
                    self.location.bucket
                )));
            }
        }
        file.commit()
            .map_err(|e| Error::new(e.into(), format!("cannot write {}", dest.display())))?;
        Ok(hex::encode(digest))
    }

    /// Read `buf.len()` bytes (fewer at the end) of `key` at `offset`.
    ///
    /// # Errors
    /// When the range cannot be read.
    pub async fn read_range(&self, key: &str, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let last = offset + buf.len() as u64 - 1;
        let out = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .range(format!("bytes={offset}-{last}"))
            .send()
            .await
            .map_err(|e| self.refused(&e, &format!("cannot read {key} at {offset}")))?;
        let mut body = out.body;
        let mut done = 0;
        while let Some(chunk) = body.try_next().await.map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!("reading s3://{}/{key}: {e}", self.location.bucket),
            )
        })? {
            let n = chunk.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&chunk[..n]);
            done += n;
        }
        Ok(done)
    }

    /// An error for a refused or failed request, naming the bucket, what
    /// was being done, and the server's code; never a credential (the SDK's
    /// messages carry none, and the text is made terminal-safe).
    fn refused<E, R>(&self, e: &SdkError<E, R>, doing: &str) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HasStatus,
    {
        let bucket = &self.location.bucket;
        let (kind, text) = match e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (
                ErrorKind::Source,
                format!(
                    "bucket {bucket}: {doing}: the endpoint cannot be reached ({})",
                    DisplayErrorContext(e)
                ),
            ),
            _ => {
                let code = e.code().map(str::to_owned);
                let status = status(e);
                let why = match (code.as_deref(), status) {
                    (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch"), _) | (_, Some(401)) => {
                        "the credentials were refused (wrong access key or secret)".to_owned()
                    }
                    (Some("AccessDenied"), _) | (None, Some(403)) => {
                        "access denied (wrong credentials, or they lack the permission)".to_owned()
                    }
                    (Some("NoSuchBucket" | "NotFound"), _) | (None, Some(404)) => {
                        "the bucket does not exist".to_owned()
                    }
                    (Some(c), _) => format!(
                        "{c}{}",
                        e.message().map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                    (None, Some(s)) => format!("HTTP {s}"),
                    (None, None) => DisplayErrorContext(e).to_string(),
                };
                let kind = if matches!(status, Some(401 | 403)) {
                    ErrorKind::Auth
                } else {
                    ErrorKind::Source
                };
                (kind, format!("bucket {bucket}: {doing}: {why}"))
            }
        };
        Error::new(kind, crate::sanitize::terminal_safe(&text))
    }
}

/// The HTTP status of a response, where there was one.
pub trait HasStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn status<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HasStatus::status_code)
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.code()
}

fn part_result(
    joined: std::result::Result<Result<CompletedPart>, tokio::task::JoinError>,
    location: &S3Location,
) -> Result<CompletedPart> {
    joined.map_err(|e| {
        Error::new(
            ErrorKind::Source,
            format!("a part upload to {location} stopped: {e}"),
        )
    })?
}

fn rfc3339(t: &AwsDateTime) -> Option<String> {
    DateTime::<Utc>::from_timestamp(t.secs(), 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn named(e: Error, location: &S3Location, what: &str) -> Error {
    Error::new(
        ErrorKind::Auth,
        format!("bucket {}: [store_s3] {what}: {e}", location.bucket),
    )
}

/// An object read in place by ranged GETs, for verifying a package without
/// downloading it: [`auditpack_bag::RangeSource`] over [`S3Store::read_range`].
pub struct RemoteObject {
    store: S3Store,
    key: String,
    len: u64,
    runtime: tokio::runtime::Handle,
}

impl RemoteObject {
    /// The object at the full `key`, read through `runtime` (from threads
    /// outside it).
    ///
    /// # Errors
    /// When it does not exist or cannot be looked up.
    pub fn open(
        store: &S3Store,
        key: &str,
        runtime: tokio::runtime::Handle,
    ) -> Result<(RemoteObject, ObjectInfo)> {
        let info = runtime.block_on(store.head(key))?.ok_or_else(|| {
            Error::invalid(format!(
                "s3://{}/{key} does not exist",
                store.location.bucket
            ))
        })?;
        Ok((
            RemoteObject {
                store: store.clone(),
                key: key.to_owned(),
                len: info.bytes,
                runtime,
            },
            info,
        ))
    }
}

impl auditpack_bag::RangeSource for RemoteObject {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        self.runtime
            .block_on(self.store.read_range(&self.key, offset, &mut buf[..want]))
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    fn name(&self) -> String {
        format!("s3://{}/{}", self.store.location.bucket, self.key)
    }
}

/// Split `s3://bucket/key` into bucket and key.
pub fn parse_object_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}
