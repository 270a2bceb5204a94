//! Writing a bag as a reproducible `.zip`: exactly one top-level folder (the
//! bag's name), entries sorted by name, every timestamp 1980-01-01 00:00:00,
//! modes 0644 for files and 0755 for folders, no owners, no extra fields, and
//! ZIP64 for files of 4 GiB or more, deflate where it pays and stored where it
//! does not. The same bag always gives a byte-identical archive. The archive is written under a temporary name and renamed when
//! complete.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::bag::payload_files;
use super::hash::CHUNK;
use crate::error::{Error, Result, ResultExt};

/// The zip path for a package folder: `<folder>.zip` beside it.
pub fn zip_path(bag: &Path) -> PathBuf {
    let mut name = bag.as_os_str().to_owned();
    name.push(".zip");
    PathBuf::from(name)
}

/// Write the bag folder `bag` as `<bag>.zip` beside it and return its path.
///
/// # Errors
/// When the archive already exists, the bag holds anything but regular files
/// and folders, or on I/O failure. Nothing is left at the final path on error.
pub fn write_zip(bag: &Path) -> Result<PathBuf> {
    let top = bag
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && !n.contains(['/', '\\']))
        .ok_or_else(|| Error::invalid(format!("{}: not a package folder name", bag.display())))?
        .to_owned();
    let out = zip_path(bag);
    if out.exists() {
        return Err(Error::invalid(format!("{} already exists", out.display())));
    }
    let dir = out.parent().unwrap_or(Path::new("."));
    let files = payload_files(bag)?;

    let mut folders = BTreeSet::new();
    folders.insert(String::new());
    for f in &files {
        let mut at = 0;
        while let Some(i) = f[at..].find('/') {
            folders.insert(f[..at + i].to_owned());
            at += i + 1;
        }
    }
    // Every entry name, sorted bytewise: folders end in `/`.
    let mut entries: Vec<(String, Option<&String>)> = folders
        .iter()
        .map(|d| {
            let name = if d.is_empty() {
                format!("{top}/")
            } else {
                format!("{top}/{d}/")
            };
            (name, None)
        })
        .chain(files.iter().map(|f| (format!("{top}/{f}"), Some(f))))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    let temp = tempfile::Builder::new()
        .prefix(&format!(".{top}.zip."))
        .suffix(".partial")
        .tempfile_in(dir)
        .context(|| format!("cannot create a temporary archive in {}", dir.display()))?;
    let writer = BufWriter::with_capacity(CHUNK, temp.as_file());
    let mut zip = ZipWriter::new(writer);
    let base = SimpleFileOptions::default()
        .last_modified_time(DateTime::default())
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1));
    let fail =
        |e: zip::result::ZipError| Error::invalid(format!("cannot write {}: {e}", out.display()));
    for (name, file) in &entries {
        match file {
            None => zip
                .add_directory(name.as_str(), base.unix_permissions(0o755))
                .map_err(fail)?,
            Some(rel) => {
                let src = bag.join(rel);
                let mut reader =
                    File::open(&src).context(|| format!("cannot read {}", src.display()))?;
                let len = reader
                    .metadata()
                    .context(|| format!("cannot stat {}", src.display()))?
                    .len();
                let method = method_for(&mut reader, len)
                    .context(|| format!("cannot read {}", src.display()))?;
                let level = (method == CompressionMethod::Deflated).then_some(1);
                let options = base
                    .unix_permissions(0o644)
                    .large_file(len >= u64::from(u32::MAX))
                    .compression_method(method)
                    .compression_level(level);
                zip.start_file(name.as_str(), options).map_err(fail)?;
                std::io::copy(&mut reader, &mut zip)
                    .context(|| format!("cannot add {} to {}", src.display(), out.display()))?;
            }
        }
    }
    let writer = zip.finish().map_err(fail)?;
    writer
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|mut f| {
            f.flush()?;
            f.sync_all()
        })
        .context(|| format!("cannot write {}", out.display()))?;
    temp.persist_noclobber(&out).map_err(|e| {
        Error::invalid(format!(
            "cannot move the archive into place at {}: {}",
            out.display(),
            e.error
        ))
    })?;
    // The rename is durable once the folder holding it is synced (folders
    // cannot be opened for that on Windows, where the rename is journaled).
    #[cfg(unix)]
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .context(|| format!("cannot sync {}", parent.display()))?;
    }
    Ok(out)
}

/// Bytes sampled from the start of a file to judge whether deflate pays.
const SAMPLE: usize = 64 * 1024;

/// Deflate for what compresses (JSON, CSV, text: nearly all evidence);
/// stored for what does not (PDFs, images, archives, encrypted exports), which
/// deflate would only slow down, and so would inflating them on every
/// verification. Judged on the file's first 64 KiB, so the same file always
/// gets the same method and the zip stays reproducible. `reader` is left at
/// the start.
fn method_for(reader: &mut File, len: u64) -> std::io::Result<CompressionMethod> {
    if len == 0 {
        return Ok(CompressionMethod::Stored);
    }
    let mut sample = Vec::with_capacity(SAMPLE.min(usize::try_from(len).unwrap_or(SAMPLE)));
    (&mut *reader)
        .take(SAMPLE as u64)
        .read_to_end(&mut sample)?;
    reader.seek(SeekFrom::Start(0))?;
    Ok(if worth_deflating(&sample) {
        CompressionMethod::Deflated
    } else {
        CompressionMethod::Stored
    })
}

/// Whether deflate would make `sample` at least a tenth smaller, judged by
/// the entropy of its bytes: what Huffman coding alone saves, which deflate's
/// repeat matching only adds to. Counting bytes costs a small part of
/// deflating them to see (1.5 s instead of 2.6 s to zip 20,000 random 4 KiB
/// files here).
fn worth_deflating(sample: &[u8]) -> bool {
    let mut counts = [0u32; 256];
    for &byte in sample {
        counts[usize::from(byte)] += 1;
    }
    let n = sample.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| f64::from(c) * (n / f64::from(c)).log2())
        .sum();
    bits < 0.9 * 8.0 * n
}

#[cfg(test)]
mod tests {
    use super::worth_deflating;

    #[test]
    fn the_judge_counts_symbols() {
        // One symbol, sixteen (hex digests: 4 bits a byte), and all 256
        // equally often (8 bits a byte: nothing to gain).
        assert!(worth_deflating(b"a"));
        assert!(worth_deflating(&b"0123456789abcdef".repeat(64)));
        let every: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        assert!(!worth_deflating(&every));
        // 230 of 256 symbols equally often: 7.85 bits, under a tenth saved.
        let most: Vec<u8> = (0..230u8).cycle().take(4600).collect();
        assert!(!worth_deflating(&most));
        // 128 symbols: 7 bits, an eighth saved.
        let half: Vec<u8> = (0..128u8).cycle().take(4096).collect();
        assert!(worth_deflating(&half));
    }
}
