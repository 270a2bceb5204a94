//! What verification reads a package through: a folder on disk or a `.zip`
//! read in place (streamed entry by entry, never unpacked to disk). Both list
//! the package's regular files by bag-relative path and read or hash them;
//! anything that is not a regular file or folder, and every unsafe zip entry,
//! is a problem found while opening.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zip::{CompressionMethod, ZipArchive};

use super::hash::{hash_copy_many, Algorithm};
use super::known_size::KnownSize;
use crate::parallel::parallel_map;

/// Largest entry a zip may declare (1 TiB): more is absurd for evidence.
pub(crate) const MAX_ENTRY_SIZE: u64 = 1 << 40;
/// Largest total a zip may declare when uncompressed (4 TiB).
pub(crate) const MAX_TOTAL_SIZE: u64 = 1 << 42;
/// Deflate cannot compress better than about 1032:1; a larger declared ratio
/// is a lie or a bomb.
pub(crate) const MAX_RATIO: u64 = 1100;
/// Most entries a zip may hold.
pub(crate) const MAX_ENTRIES: usize = 2_000_000;
/// Buffer of the archive handle. Opening seeks to every entry's local header
/// and the zip reader's seeks drop the buffer, so a read-sized buffer would
/// read 128 KiB for each 30-byte header (2.6 GB for 20,000 entries); entry
/// bytes are hashed through positional reads instead.
const HEADER_READ: usize = 4096;

/// Digests (one per requested algorithm) and size of one file, or why not.
pub type Hashed = io::Result<(Vec<String>, u64)>;

/// Read access to a package, whatever holds it.
pub trait PackageReader: Sync {
    /// Every regular file, by bag-relative `/`-separated path, with its size.
    fn files(&self) -> &BTreeMap<String, u64>;

    /// Copy one file to `sink`, failing if it yields more than `limit` bytes
    /// or more than its listed size.
    fn copy(&self, path: &str, sink: &mut dyn Write, limit: u64) -> io::Result<u64>;

    /// Digests (one per algorithm, in order) and size of each file, in order.
    fn hash(&self, paths: &[&str], algorithms: &[Algorithm]) -> Vec<Hashed>;

    /// A whole file, up to `limit` bytes.
    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.copy(path, &mut out, limit)?;
        Ok(out)
    }
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path} is missing"))
}

fn too_large(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{path} is larger than its listed size or the limit"),
    )
}

/// Copy at most `limit` bytes; more is an error (the reader lied about its size).
fn bounded_copy(
    reader: impl Read,
    sink: &mut dyn Write,
    limit: u64,
    path: &str,
) -> io::Result<u64> {
    let mut reader = reader.take(limit.saturating_add(1));
    let n = io::copy(&mut reader, sink)?;
    if n > limit {
        return Err(too_large(path));
    }
    Ok(n)
}

/// A package folder on disk.
pub(crate) struct FolderReader {
    root: PathBuf,
    files: BTreeMap<String, u64>,
}

impl FolderReader {
    /// List `root` without following symlinks; anything but regular files and
    /// folders goes into `problems`.
    pub(crate) fn open(root: &Path, problems: &mut Vec<String>) -> FolderReader {
        let mut files = BTreeMap::new();
        // Folder by folder, each level's folders on every core.
        let mut level = vec![String::new()];
        while !level.is_empty() {
            let listings = parallel_map(&level, |rel| list_folder(root, rel));
            level = Vec::new();
            for listing in listings {
                files.extend(listing.files);
                level.extend(listing.folders);
                problems.extend(listing.problems);
            }
        }
        if !root.join("data").is_dir() {
            problems.push("data/: the payload folder is missing".into());
        }
        FolderReader {
            root: root.to_owned(),
            files,
        }
    }

    fn open_file(&self, path: &str) -> io::Result<File> {
        if !self.files.contains_key(path) {
            return Err(not_found(path));
        }
        open_regular(&self.root.join(path))
    }
}

/// Open a file that a listing found regular, for reading, refusing whatever
/// was put in its place since: a symlink is not followed, a FIFO does not
/// block the open, and anything but a regular file is an error.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let refused = || io::Error::new(io::ErrorKind::InvalidInput, NOT_REGULAR);
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return refused();
        }
        e
    })?;
    if !file.metadata()?.is_file() {
        return Err(refused());
    }
    Ok(file)
}

/// What one folder of a package holds.
#[derive(Default)]
struct Listing {
    /// Regular files, by bag-relative path, with their sizes.
    files: Vec<(String, u64)>,
    folders: Vec<String>,
    problems: Vec<String>,
}

/// List the folder `rel` of `root`. Types come with the listing and sizes
/// from a stat beside it, so no symlink is ever followed.
fn list_folder(root: &Path, rel: &str) -> Listing {
    let mut listing = Listing::default();
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
        listing
            .problems
            .push(format!("{}: cannot list", display_dir(rel)));
        return listing;
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                listing
                    .problems
                    .push(format!("{}: cannot list: {e}", display_dir(rel)));
                break;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        match entry.file_type() {
            Ok(t) if t.is_dir() => listing.folders.push(child),
            Ok(t) if t.is_file() => match entry.metadata() {
                Ok(m) if m.is_file() => listing.files.push((child, m.len())),
                Ok(_) => listing.problems.push(not_regular(&child)),
                Err(e) => listing.problems.push(format!("{child}: {e}")),
            },
            Ok(_) => listing.problems.push(not_regular(&child)),
            Err(e) => listing.problems.push(format!("{child}: {e}")),
        }
    }
    listing
}

const NOT_REGULAR: &str = "not a regular file (symlink, device or FIFO)";

fn not_regular(path: &str) -> String {
    format!("{path}: {NOT_REGULAR}")
}

fn display_dir(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

impl PackageReader for FolderReader {
    fn files(&self) -> &BTreeMap<String, u64> {
        &self.files
    }

    fn copy(&self, path: &str, sink: &mut dyn Write, limit: u64) -> io::Result<u64> {
        bounded_copy(self.open_file(path)?, sink, limit, path)
    }

    fn hash(&self, paths: &[&str], algorithms: &[Algorithm]) -> Vec<Hashed> {
        hash_copy_many(
            paths.len(),
            algorithms,
            |i| {
                let size = self.files.get(paths[i]).copied().unwrap_or(0);
                Ok((KnownSize::new(self.open_file(paths[i])?, size), io::sink()))
            },
            |_, e| e,
            |i| self.files.get(paths[i]).copied().unwrap_or(0),
        )
    }
}

/// Where a zip comes from.
#[derive(Clone, Copy)]
pub(crate) enum ZipSource<'a> {
    /// A file, opened once per reading thread.
    File(&'a Path),
    /// Bytes in memory (fuzzing, tests).
    Memory(&'a [u8]),
}

/// A readable, seekable handle on a [`ZipSource`].
pub(crate) enum Handle<'a> {
    /// A buffered file.
    File(BufReader<File>),
    /// A cursor over bytes.
    Memory(Cursor<&'a [u8]>),
}

impl Read for Handle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Handle::File(f) => f.read(buf),
            Handle::Memory(c) => c.read(buf),
        }
    }
}

impl Seek for Handle<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Handle::File(f) => f.seek(pos),
            Handle::Memory(c) => c.seek(pos),
        }
    }
}

impl<'a> ZipSource<'a> {
    fn handle(self) -> io::Result<Handle<'a>> {
        Ok(match self {
            ZipSource::File(p) => {
                Handle::File(BufReader::with_capacity(HEADER_READ, File::open(p)?))
            }
            ZipSource::Memory(b) => Handle::Memory(Cursor::new(b)),
        })
    }

    fn archive(self) -> io::Result<ZipArchive<Handle<'a>>> {
        ZipArchive::new(self.handle()?).map_err(zip_error)
    }
}

fn zip_error(e: zip::result::ZipError) -> io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        e => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    }
}

/// A package inside a `.zip`, read in place.
pub(crate) struct ZipReader<'a> {
    source: ZipSource<'a>,
    archive: Mutex<ZipArchive<Handle<'a>>>,
    /// Bag-relative path -> where its entry is and what it declares.
    index: BTreeMap<String, Entry>,
    files: BTreeMap<String, u64>,
}

/// One file entry of a zip: its index, declared size, and where its
/// (possibly deflated) bytes lie in the archive.
#[derive(Clone, Copy)]
struct Entry {
    number: usize,
    size: u64,
    start: u64,
    packed: u64,
    deflated: bool,
}

impl<'a> ZipReader<'a> {
    /// Open the archive and check every entry's name, type and sizes; unsafe
    /// entries go into `problems` and are left out of the listing.
    ///
    /// # Errors
    /// When the archive cannot be opened or its central directory not parsed.
    pub(crate) fn open(
        source: ZipSource<'a>,
        problems: &mut Vec<String>,
    ) -> io::Result<ZipReader<'a>> {
        let mut archive = source.archive()?;
        if archive.len() > MAX_ENTRIES {
            problems.push(format!(
                "the archive holds {} entries, more than the {MAX_ENTRIES} accepted",
                archive.len()
            ));
            return Ok(ZipReader {
                source,
                archive: Mutex::new(archive),
                index: BTreeMap::new(),
                files: BTreeMap::new(),
            });
        }
        // The reader keys entries by name, so duplicates collapse into one:
        // compare with the count the end-of-central-directory record declares.
        let mut handle = source.handle()?;
        if let Some(declared) = declared_entries(&mut handle) {
            if declared != archive.len() as u64 {
                problems.push(format!(
                    "the archive declares {declared} entries but holds {} distinct names: duplicate entry names",
                    archive.len()
                ));
            }
        }
        let mut top: Option<String> = None;
        let mut index = BTreeMap::new();
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        let mut total = 0u64;
        for i in 0..archive.len() {
            let entry = match archive.by_index_raw(i) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(format!("zip entry {i}: {e}"));
                    continue;
                }
            };
            let Ok(name) = std::str::from_utf8(entry.name_raw()) else {
                problems.push(format!("zip entry {i}: name is not UTF-8"));
                continue;
            };
            let shown = name.escape_debug().to_string();
            if let Some(reason) = unsafe_entry_name(name) {
                problems.push(format!("zip entry {shown:?}: {reason}"));
                continue;
            }
            let is_dir = name.ends_with('/');
            let trimmed = name.trim_end_matches('/');
            let (first, rest) = match trimmed.split_once('/') {
                Some((f, r)) => (f, Some(r)),
                None => (trimmed, None),
            };
            match &top {
                None => top = Some(first.to_owned()),
                Some(t) if t != first => {
                    problems.push(format!(
                        "zip entry {shown:?} is outside the single top-level folder {t:?}"
                    ));
                    continue;
                }
                Some(_) => {}
            }
            let kind = entry.unix_mode().map(|m| m & 0o170_000);
            if entry.is_symlink() || kind == Some(0o120_000) {
                problems.push(format!("zip entry {shown:?} is a symlink"));
                continue;
            }
            if entry.encrypted() {
                problems.push(format!("zip entry {shown:?} is encrypted"));
                continue;
            }
            if is_dir {
                if !matches!(kind, None | Some(0) | Some(0o040_000)) {
                    problems.push(format!("zip entry {shown:?} is not a folder"));
                }
                dirs.insert(trimmed.to_owned());
                continue;
            }
            if !matches!(kind, None | Some(0) | Some(0o100_000)) {
                problems.push(format!(
                    "zip entry {shown:?} is not a regular file (device, FIFO or socket)"
                ));
                continue;
            }
            let Some(rel) = rest else {
                problems.push(format!(
                    "zip entry {shown:?} is a file at the top level, outside the package folder"
                ));
                continue;
            };
            let (size, packed) = (entry.size(), entry.compressed_size());
            let method = entry.compression();
            if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
                problems.push(format!(
                    "zip entry {shown:?} uses compression {method}, not stored or deflate"
                ));
                continue;
            }
            if size > MAX_ENTRY_SIZE
                || (method == CompressionMethod::Stored && size != packed)
                || (size > 1 << 20 && size / packed.max(1) > MAX_RATIO)
            {
                problems.push(format!(
                    "zip entry {shown:?} declares an absurd size ({size} bytes from {packed}): refusing it as a possible zip bomb"
                ));
                continue;
            }
            let Some(start) = entry.data_start() else {
                problems.push(format!("zip entry {shown:?} has no local header"));
                continue;
            };
            let found = Entry {
                number: i,
                size,
                start,
                packed,
                deflated: method == CompressionMethod::Deflated,
            };
            total = total.saturating_add(size);
            if index.insert(rel.to_owned(), found).is_some() {
                problems.push(format!("zip entry {shown:?} is a duplicate"));
                continue;
            }
            files.insert(rel.to_owned(), size);
        }
        if total > MAX_TOTAL_SIZE {
            problems.push(format!(
                "the archive declares {total} bytes uncompressed, more than {MAX_TOTAL_SIZE} accepted"
            ));
            index.clear();
            files.clear();
        }
        for path in files.keys() {
            if dirs.contains(&format!("{}/{path}", top.as_deref().unwrap_or_default())) {
                problems.push(format!("zip entry {path:?} is both a file and a folder"));
            }
        }
        if top.is_none() {
            problems.push("the archive is empty".into());
        }
        Ok(ZipReader {
            source,
            archive: Mutex::new(archive),
            index,
            files,
        })
    }
}

/// Why a zip entry name is unsafe, if it is: absolute, `..`, `.`, empty
/// segments, backslashes, drive letters or control characters.
fn unsafe_entry_name(name: &str) -> Option<&'static str> {
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    if name.starts_with('/') {
        Some("absolute path")
    } else if name.contains('\\') {
        Some("backslash in the name")
    } else if name
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r')
        || name.contains('\0')
    {
        Some("control character in the name")
    } else if trimmed.split('/').any(|s| s == "..") {
        Some("`..` in the path")
    } else if trimmed.split('/').any(|s| s.is_empty() || s == ".") {
        Some("empty or `.` path segment")
    } else if trimmed.split('/').next().is_some_and(|s| s.contains(':')) {
        Some("drive letter or colon in the top folder")
    } else {
        None
    }
}

/// The entry count the end-of-central-directory record (or its ZIP64 form)
/// declares, when it can be found.
fn declared_entries(handle: &mut (impl Read + Seek)) -> Option<u64> {
    let len = handle.seek(SeekFrom::End(0)).ok()?;
    let tail_len = len.min(22 + 65_535);
    handle.seek(SeekFrom::Start(len - tail_len)).ok()?;
    let mut tail = vec![0u8; usize::try_from(tail_len).ok()?];
    handle.read_exact(&mut tail).ok()?;
    let u16_at = |b: &[u8], i: usize| Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let u64_at = |b: &[u8], i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
    let pos = (0..tail.len().saturating_sub(21)).rev().find(|&p| {
        u32_at(&tail, p) == Some(0x0605_4b50)
            && u16_at(&tail, p + 20).is_some_and(|c| p + 22 + usize::from(c) == tail.len())
    })?;
    let count = u16_at(&tail, pos + 10)?;
    if count != 0xFFFF {
        return Some(u64::from(count));
    }
    // ZIP64: the locator sits just before the record.
    let locator = pos.checked_sub(20)?;
    if u32_at(&tail, locator) != Some(0x0706_4b50) {
        return None;
    }
    let record_at = u64_at(&tail, locator + 8)?;
    handle.seek(SeekFrom::Start(record_at)).ok()?;
    let mut record = [0u8; 56];
    handle.read_exact(&mut record).ok()?;
    if u32_at(&record, 0) != Some(0x0606_4b50) {
        return None;
    }
    u64_at(&record, 32)
}

impl ZipReader<'_> {
    fn copy_from(
        archive: &mut ZipArchive<Handle<'_>>,
        index: &BTreeMap<String, Entry>,
        path: &str,
        sink: &mut dyn Write,
        limit: u64,
    ) -> io::Result<u64> {
        let &Entry { number, size, .. } = index.get(path).ok_or_else(|| not_found(path))?;
        let entry = archive.by_index(number).map_err(zip_error)?;
        // Reading to the end makes the zip reader check the entry's CRC-32.
        let n = bounded_copy(entry, sink, limit.min(size), path)?;
        if n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path} is shorter than its declared size"),
            ));
        }
        Ok(n)
    }
}

impl PackageReader for ZipReader<'_> {
    fn files(&self) -> &BTreeMap<String, u64> {
        &self.files
    }

    fn copy(&self, path: &str, sink: &mut dyn Write, limit: u64) -> io::Result<u64> {
        let mut archive = self
            .archive
            .lock()
            .map_err(|_| io::Error::other("zip reader poisoned"))?;
        Self::copy_from(&mut archive, &self.index, path, sink, limit)
    }

    fn hash(&self, paths: &[&str], algorithms: &[Algorithm]) -> Vec<Hashed> {
        // Entries are read where they lie, by position, through one shared
        // handle: as many at once as the hashing wants, never unpacked.
        let archive = match self.source {
            ZipSource::File(path) => File::open(path).map(Bytes::File),
            ZipSource::Memory(bytes) => Ok(Bytes::Memory(bytes)),
        };
        let archive = match archive {
            Ok(a) => a,
            Err(e) => {
                return paths
                    .iter()
                    .map(|_| Err(io::Error::new(e.kind(), e.to_string())))
                    .collect()
            }
        };
        let entries: Vec<Option<Entry>> =
            paths.iter().map(|p| self.index.get(*p).copied()).collect();
        let hashed = hash_copy_many(
            paths.len(),
            algorithms,
            |i| {
                let entry = entries[i].ok_or_else(|| not_found(paths[i]))?;
                Ok((EntryReader::new(&archive, entry), io::sink()))
            },
            |_, e| e,
            |i| entries[i].map_or(0, |entry| entry.size),
        );
        hashed
            .into_iter()
            .zip(paths.iter().zip(&entries))
            .map(|(result, (path, entry))| {
                let (digests, n) = result?;
                match entry {
                    Some(e) if n > e.size => Err(too_large(path)),
                    Some(e) if n < e.size => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{path} is shorter than its declared size"),
                    )),
                    _ => Ok((digests, n)),
                }
            })
            .collect()
    }
}

/// The bytes of an archive, read by position from any thread.
enum Bytes<'a> {
    File(File),
    Memory(&'a [u8]),
}

impl Bytes<'_> {
    /// Read at `offset`, as much as fits in `buf` (0 only at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            #[cfg(unix)]
            Bytes::File(f) => std::os::unix::fs::FileExt::read_at(f, buf, offset),
            #[cfg(windows)]
            Bytes::File(f) => std::os::windows::fs::FileExt::seek_read(f, buf, offset),
            #[cfg(not(any(unix, windows)))]
            Bytes::File(_) => Err(io::Error::other("positional reads are not supported here")),
            Bytes::Memory(bytes) => {
                let at = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let n = buf.len().min(bytes.len() - at);
                buf[..n].copy_from_slice(&bytes[at..at + n]);
                Ok(n)
            }
        }
    }
}

/// An entry's packed bytes, read by position; an archive that ends before
/// them is an error, not a short entry.
struct Span<'a> {
    bytes: &'a Bytes<'a>,
    at: u64,
    end: u64,
}

impl Read for Span<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.bytes.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside an entry",
            ));
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// An entry's content, inflated if it was deflated, and never more than one
/// byte past its declared size (enough for the caller to see the lie).
enum EntryReader<'a> {
    Stored(io::Take<Span<'a>>),
    Deflated(io::Take<flate2::read::DeflateDecoder<Span<'a>>>),
}

impl<'a> EntryReader<'a> {
    fn new(bytes: &'a Bytes<'a>, entry: Entry) -> EntryReader<'a> {
        let span = Span {
            bytes,
            at: entry.start,
            end: entry.start.saturating_add(entry.packed),
        };
        let limit = entry.size.saturating_add(1);
        if entry.deflated {
            EntryReader::Deflated(flate2::read::DeflateDecoder::new(span).take(limit))
        } else {
            EntryReader::Stored(span.take(limit))
        }
    }
}

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            EntryReader::Stored(r) => r.read(buf),
            EntryReader::Deflated(r) => r.read(buf),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn open_regular_refuses_what_replaced_a_listed_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"evidence").expect("write");
        let mut read = String::new();
        open_regular(&file)
            .expect("a regular file opens")
            .read_to_string(&mut read)
            .expect("read");
        assert_eq!(read, "evidence");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let e = open_regular(&link).expect_err("a symlink is refused");
        assert!(e.to_string().contains("not a regular file"), "{e}");

        // A FIFO would block a plain open until a writer came.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let e = open_regular(&fifo).expect_err("a FIFO is refused");
        assert!(e.to_string().contains("not a regular file"), "{e}");

        let e = open_regular(dir.path()).expect_err("a folder is refused");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(open_regular(&dir.path().join("missing")).is_err());
    }
}
