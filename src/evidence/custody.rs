//! The evidence writer and its custody log: one JSON line per evidence file,
//! naming where the bytes came from and their SHA-256.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::write_atomic;
use crate::error::{Error, Result, ResultExt};
pub use auditpack_core::custody::{
    format_time, is_binary_evidence, read_custody, CustodyEntry, FileStat, BINARY_EXTENSIONS,
};

/// What the collector knows about one page it stores.
#[derive(Clone, Debug)]
pub struct PageMeta<'a> {
    /// Source name.
    pub source: &'a str,
    /// Collector type.
    pub source_type: &'a str,
    /// Dataset name (a folder-safe constant).
    pub dataset: &'a str,
    /// 1-based page number within the dataset.
    pub page: usize,
    /// HTTP method.
    pub method: &'a str,
    /// Request URL (credentials are removed before it is written).
    pub url: &'a str,
    /// HTTP status.
    pub http_status: Option<u16>,
}

/// Writes raw evidence into a run folder and appends the custody log.
/// Safe to share between concurrent collectors.
pub struct EvidenceWriter {
    root: PathBuf,
    custody: Mutex<File>,
    tool: String,
}

impl EvidenceWriter {
    /// Open (create) the custody log of the run folder at `root`.
    ///
    /// # Errors
    /// When the folder or log cannot be created.
    pub fn open(root: &Path) -> Result<EvidenceWriter> {
        std::fs::create_dir_all(root.join("evidence"))
            .context(|| format!("cannot create run folder {}", root.display()))?;
        let path = root.join("custody.jsonl");
        let custody = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .context(|| format!("cannot open {}", path.display()))?;
        Ok(EvidenceWriter {
            root: root.to_owned(),
            custody: Mutex::new(custody),
            tool: super::tool_version(),
        })
    }

    /// Store one page of raw bytes exactly as received and log its custody.
    /// Returns the path relative to the run folder.
    ///
    /// # Errors
    /// On I/O failure, or a source or dataset name that is not folder-safe.
    pub fn write_page(&self, meta: &PageMeta<'_>, body: &[u8]) -> Result<String> {
        self.write_page_as(meta, "json", body)
    }

    /// [`EvidenceWriter::write_page`] for a page that is not JSON: stored as
    /// `page-NNNNN.<extension>`. Readers parse an evidence file as JSON unless
    /// its extension is one of [`BINARY_EXTENSIONS`], so `extension` must be
    /// `json` or one of those.
    ///
    /// # Errors
    /// On I/O failure, an unsafe source or dataset name, or an extension that
    /// readers would not recognise.
    pub fn write_page_as(
        &self,
        meta: &PageMeta<'_>,
        extension: &str,
        body: &[u8],
    ) -> Result<String> {
        if extension != "json" && !BINARY_EXTENSIONS.contains(&extension) {
            return Err(Error::invalid(format!(
                "evidence extension `{}` is neither json nor a known binary kind",
                extension.escape_debug()
            )));
        }
        for part in [meta.source, meta.dataset] {
            if !is_safe_segment(part) {
                return Err(Error::invalid(format!(
                    "unsafe evidence path segment `{}`",
                    part.escape_debug()
                )));
            }
        }
        let rel = format!(
            "evidence/{}/{}/page-{:05}.{extension}",
            meta.source, meta.dataset, meta.page
        );
        let collected_at = now_rfc3339();
        let path = self.root.join(&rel);
        write_atomic(&path, body)
            .context(|| format!("cannot write evidence {}", path.display()))?;
        let entry = CustodyEntry {
            path: rel.clone(),
            sha256: hex::encode(Sha256::digest(body)),
            bytes: body.len() as u64,
            source: meta.source.to_owned(),
            source_type: meta.source_type.to_owned(),
            dataset: meta.dataset.to_owned(),
            request: format!("{} {}", meta.method, redact_url(meta.url)),
            http_status: meta.http_status,
            collected_at,
            tool: self.tool.clone(),
            stat: stat_of(&path),
        };
        self.append(&entry)?;
        Ok(rel)
    }

    /// Store a file a source read from disk (an endpoint report, a supplied
    /// document, the organisation's exceptions) at `rel`, a run-relative path
    /// under `evidence/`, `manual/` or `inputs/`
    /// made only of folder-safe segments, and log its custody with `origin`
    /// (where it came from, already made printable by the caller) as the request.
    ///
    /// # Errors
    /// On I/O failure or an unsafe path.
    pub fn write_file(
        &self,
        rel: &str,
        source: &str,
        source_type: &str,
        dataset: &str,
        origin: &str,
        body: &[u8],
    ) -> Result<String> {
        let segments: Vec<&str> = rel.split('/').collect();
        let top_ok = matches!(
            segments.first(),
            Some(&"evidence") | Some(&"manual") | Some(&"inputs")
        );
        if !top_ok || segments.len() < 2 || !segments.iter().all(|s| is_safe_segment(s)) {
            return Err(Error::invalid(format!(
                "unsafe evidence path `{}`",
                rel.escape_debug()
            )));
        }
        let path = self.root.join(rel);
        write_atomic(&path, body)
            .context(|| format!("cannot write evidence {}", path.display()))?;
        let entry = CustodyEntry {
            path: rel.to_owned(),
            sha256: hex::encode(Sha256::digest(body)),
            bytes: body.len() as u64,
            source: source.to_owned(),
            source_type: source_type.to_owned(),
            dataset: dataset.to_owned(),
            request: format!("FILE {origin}"),
            http_status: None,
            collected_at: now_rfc3339(),
            tool: self.tool.clone(),
            stat: stat_of(&path),
        };
        self.append(&entry)?;
        Ok(rel.to_owned())
    }

    fn append(&self, entry: &CustodyEntry) -> Result<()> {
        let mut line = serde_json::to_vec(entry).context(|| "cannot encode custody entry")?;
        line.push(b'\n');
        let mut log = self
            .custody
            .lock()
            .map_err(|_| Error::invalid("custody log lock poisoned"))?;
        // One write call per line: a crash leaves at most one torn last line,
        // which the reader reports instead of trusting.
        log.write_all(&line)
            .and_then(|()| log.flush())
            .context(|| "cannot append to custody.jsonl")
    }

    /// Flush the custody log to disk.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn sync(&self) -> Result<()> {
        let log = self
            .custody
            .lock()
            .map_err(|_| Error::invalid("custody log lock poisoned"))?;
        log.sync_all().context(|| "cannot sync custody.jsonl")
    }
}

/// The file system's stamp of the file just written at `path` (`None` if it
/// cannot be read: then packaging hashes the file again).
fn stat_of(path: &Path) -> Option<FileStat> {
    std::fs::symlink_metadata(path)
        .ok()
        .and_then(|m| FileStat::of(&m))
}

/// A path segment made only of `[A-Za-z0-9._-]`, not `.` or `..`.
pub(crate) fn is_safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(crate) fn now_rfc3339() -> String {
    format_time(Utc::now())
}

/// Query parameters whose values are credentials.
const SECRET_PARAMS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "password",
    "api_key",
    "apikey",
    "access_token",
    "code",
    "sig",
    "signature",
    "key",
    "token",
    "secret",
];

/// Remove user info and credential-bearing query values from a URL.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "[unparseable url]".to_owned();
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
                let v = if secret {
                    "[redacted]".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_but_keeps_paging() {
        let u = redact_url("https://u:p@h.example/x?client_secret=abc&$skiptoken=Z1&key=k");
        assert!(!u.contains("abc") && !u.contains(":p@") && !u.contains("=k"));
        assert!(u.contains("skiptoken=Z1"));
    }

    #[test]
    fn segments() {
        assert!(is_safe_segment("userRegistrationDetails"));
        assert!(!is_safe_segment(".."));
        assert!(!is_safe_segment("a/b"));
        assert!(!is_safe_segment("é"));
    }
}
