//! What verification reads a package through: a folder on disk or a `.zip`
//! read in place (streamed entry by entry, never unpacked to disk). Both list
//! the package's regular files and folders by bag-relative path and read or
//! hash them; anything that is not a regular file or folder, every unsafe zip
//! entry, and any byte of a zip that belongs to no entry is a problem found
//! while opening.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zip::{CompressionMethod, ZipArchive};

use super::hash::{hash_copy_many, Algorithm};
use super::known_size::KnownSize;
use crate::parallel::parallel_map;
use crate::remote::{seek_target, BlockCache, Cursor as RemoteCursor};

/// Largest entry a zip may declare (1 TiB): more is absurd for evidence.
pub(crate) const MAX_ENTRY_SIZE: u64 = 1 << 40;
/// Largest total a zip may declare when uncompressed (4 TiB).
pub(crate) const MAX_TOTAL_SIZE: u64 = 1 << 42;
/// Deflate cannot compress better than about 1032:1; a larger declared ratio
/// is a lie or a bomb.
pub(crate) const MAX_RATIO: u64 = 1100;
/// Most entries a zip may hold.
pub(crate) const MAX_ENTRIES: usize = 2_000_000;
/// Window of the archive handle ([`Window`]). Opening seeks to every entry's
/// local header and past it, in the order the entries lie, so the headers of
/// small entries come out of one window; a large entry costs one window read
/// for its header. Entry bytes are hashed through positional reads instead.
const WINDOW: usize = 64 * 1024;

pub use super::hash::Hashed;

/// The size a listing gives for a file it does not stat: a folder is listed
/// by names and types only (a status call per file cost verification as much
/// as hashing), and each file's size is taken when it is opened
/// ([`PackageReader::size`]).
pub const UNLISTED: u64 = u64::MAX;

/// Read access to a package, whatever holds it.
pub trait PackageReader: Sync {
    /// Every regular file, by bag-relative `/`-separated path, with its size
    /// where the listing gives it ([`UNLISTED`] where it does not: ask
    /// [`PackageReader::size`]).
    fn files(&self) -> &BTreeMap<String, u64>;

    /// The size of a listed file: as listed, or else as the file system
    /// says now. `None` when it is not listed or cannot be looked at.
    fn size(&self, path: &str) -> Option<u64> {
        self.files().get(path).copied().filter(|n| *n != UNLISTED)
    }

    /// Every folder, by bag-relative path without a trailing `/` (the bag's
    /// own folder left out): those holding files and any empty one.
    fn folders(&self) -> &BTreeSet<String>;

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
    folders: BTreeSet<String>,
}

impl FolderReader {
    /// List `root` without following symlinks; anything but regular files and
    /// folders goes into `problems`.
    pub(crate) fn open(root: &Path, problems: &mut Vec<String>) -> FolderReader {
        let mut files = Vec::new();
        let mut folders = BTreeSet::new();
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
            folders.extend(level.iter().cloned());
        }
        FolderReader {
            root: root.to_owned(),
            // Sorted once and built in one pass, not searched per insert
            // (a path appears once: it is one directory entry).
            files: files.into_iter().collect(),
            folders,
        }
    }

    /// Whether each of `paths` is a listed file: one walk of the listing when
    /// they come sorted (as verification asks), else a search each.
    fn listed(&self, paths: &[&str]) -> Vec<bool> {
        if !paths.is_sorted() {
            return paths.iter().map(|p| self.files.contains_key(*p)).collect();
        }
        let mut files = self.files.keys().peekable();
        paths
            .iter()
            .map(|p| {
                while files.next_if(|f| f.as_str() < *p).is_some() {}
                files.peek().is_some_and(|f| f.as_str() == *p)
            })
            .collect()
    }

    /// Open a listed file, with its size as the open file's status gives it.
    fn open_file(&self, path: &str) -> io::Result<(File, u64)> {
        if !self.files.contains_key(path) {
            return Err(not_found(path));
        }
        open_regular_sized(&self.root.join(path))
    }
}

/// Open a file that a listing found regular, for reading, refusing whatever
/// was put in its place since: a symlink is not followed, a FIFO does not
/// block the open, and anything but a regular file is an error.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    open_regular_sized(path).map(|(file, _)| file)
}

/// [`open_regular`], with the file's size from the same status call.
fn open_regular_sized(path: &Path) -> io::Result<(File, u64)> {
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
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused());
    }
    Ok((file, meta.len()))
}

/// Opening the files of a listing folder by folder: each thread keeps the
/// folder it opened a file in last and opens the next file relative to it,
/// so the kernel walks one name instead of the whole path (files come in
/// listing order, a folder's files together). A folder is opened without
/// following a symlink, so a folder replaced by a link since the listing is
/// refused. Elsewhere than Linux, each file is opened by its whole path.
mod in_folder {
    use std::fs::File;
    use std::io;
    use std::path::Path;

    /// One hashing pass: folders a thread kept from an earlier pass (another
    /// package, or the same path replaced since) are never used.
    pub(super) struct Session {
        #[cfg(target_os = "linux")]
        id: u64,
        /// Files are opened without updating their access time until one
        /// refuses (only a file's owner may ask that): a package just linked
        /// has every access time due, one inode write each.
        #[cfg(target_os = "linux")]
        noatime: std::sync::atomic::AtomicBool,
    }

    #[cfg(target_os = "linux")]
    mod linux {
        use std::cell::RefCell;
        use std::os::fd::OwnedFd;
        use std::path::PathBuf;
        use std::sync::atomic::AtomicU64;

        pub(super) static SESSIONS: AtomicU64 = AtomicU64::new(0);

        /// The folder a thread opened a file in last.
        pub(super) struct Folder {
            pub(super) session: u64,
            pub(super) root: PathBuf,
            pub(super) rel: String,
            pub(super) fd: OwnedFd,
        }

        thread_local! {
            pub(super) static LAST: RefCell<Option<Folder>> = const { RefCell::new(None) };
        }
    }

    #[cfg(target_os = "linux")]
    impl Drop for Session {
        /// Close the folder this thread kept for the pass (workers' folders
        /// close with their threads).
        fn drop(&mut self) {
            let _ = linux::LAST.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    if last.as_ref().is_some_and(|f| f.session == self.id) {
                        *last = None;
                    }
                }
            });
        }
    }

    impl Session {
        pub(super) fn new() -> Session {
            Session {
                #[cfg(target_os = "linux")]
                id: linux::SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                #[cfg(target_os = "linux")]
                noatime: std::sync::atomic::AtomicBool::new(true),
            }
        }

        /// Open the listed file `path` under `root` as [`super::open_regular_sized`] does.
        #[cfg(not(target_os = "linux"))]
        pub(super) fn open(&self, root: &Path, path: &str) -> io::Result<(File, u64)> {
            super::open_regular_sized(&root.join(path))
        }

        /// Open the listed file `path` under `root` as [`super::open_regular_sized`] does.
        #[cfg(target_os = "linux")]
        pub(super) fn open(&self, root: &Path, path: &str) -> io::Result<(File, u64)> {
            use rustix::fs::{fstat, open, openat, FileType, Mode, OFlags};

            let (rel, name) = path.rsplit_once('/').unwrap_or(("", path));
            let refused = |e: rustix::io::Errno| {
                if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
                    io::Error::new(io::ErrorKind::InvalidInput, super::NOT_REGULAR)
                } else {
                    io::Error::from(e)
                }
            };
            linux::LAST.with(|last| {
                let Ok(mut last) = last.try_borrow_mut() else {
                    return super::open_regular_sized(&root.join(path));
                };
                let kept = last.as_ref().is_some_and(|f| {
                    f.session == self.id && f.rel == rel && f.root.as_os_str() == root.as_os_str()
                });
                if !kept {
                    let flags =
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let fd = open(root.join(rel), flags, Mode::empty()).map_err(refused)?;
                    *last = Some(linux::Folder {
                        session: self.id,
                        root: root.to_owned(),
                        rel: rel.to_owned(),
                        fd,
                    });
                }
                let Some(folder) = last.as_ref() else {
                    return super::open_regular_sized(&root.join(path));
                };
                use std::sync::atomic::Ordering::Relaxed;
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
                let opened = if self.noatime.load(Relaxed) {
                    match openat(&folder.fd, name, flags | OFlags::NOATIME, Mode::empty()) {
                        Err(rustix::io::Errno::PERM) => {
                            self.noatime.store(false, Relaxed);
                            openat(&folder.fd, name, flags, Mode::empty())
                        }
                        opened => opened,
                    }
                } else {
                    openat(&folder.fd, name, flags, Mode::empty())
                };
                let fd = opened.map_err(refused)?;
                let stat = fstat(&fd)?;
                if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        super::NOT_REGULAR,
                    ));
                }
                Ok((File::from(fd), u64::try_from(stat.st_size).unwrap_or(0)))
            })
        }
    }
}

/// What one folder of a package holds.
#[derive(Default)]
struct Listing {
    /// Regular files, by bag-relative path, each with [`UNLISTED`] for a size.
    files: Vec<(String, u64)>,
    folders: Vec<String>,
    problems: Vec<String>,
}

/// What a listing saw of one entry.
enum Seen {
    Folder,
    File,
    Other,
}

impl Listing {
    /// Add the entry `name` of the folder `rel`, of type `seen`.
    fn add(&mut self, rel: &str, name: &str, seen: io::Result<Seen>) {
        let mut child = String::with_capacity(rel.len() + 1 + name.len());
        if !rel.is_empty() {
            child.push_str(rel);
            child.push('/');
        }
        child.push_str(name);
        match seen {
            Ok(Seen::Folder) => self.folders.push(child),
            Ok(Seen::File) => self.files.push((child, UNLISTED)),
            Ok(Seen::Other) => self.problems.push(not_regular(&child)),
            Err(e) => self.problems.push(format!("{child}: {e}")),
        }
    }

    /// A name that is not UTF-8 would be listed under its lossy form, which
    /// another name may share: one of them would go unseen.
    fn not_utf8(&mut self, rel: &str, lossy: &str) {
        self.problems.push(format!(
            "{}/{lossy}: the name is not UTF-8",
            display_dir(rel)
        ));
    }

    /// Sorted here, by short names, the listing comes out of all folders in
    /// a few sorted runs, which the final sort only merges.
    fn sorted(mut self) -> Listing {
        self.files.sort_unstable();
        self.folders.sort_unstable();
        self
    }
}

/// List the folder `rel` of `root`. Types come with the listing, so no
/// symlink is ever followed; sizes are left to the open of each file (a
/// status call per file here cost as much as hashing 4 KiB files). On Linux
/// the entries are read straight from the kernel's buffer, without an
/// allocation per name, and a folder below the root is opened without
/// following a symlink put in its place since it was listed.
#[cfg(target_os = "linux")]
fn list_folder(root: &Path, rel: &str) -> Listing {
    use rustix::fs::{open, statat, AtFlags, FileType, Mode, OFlags, RawDir};

    let mut listing = Listing::default();
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !rel.is_empty() {
        flags |= OFlags::NOFOLLOW;
    }
    let Ok(fd) = open(root.join(rel), flags, Mode::empty()) else {
        listing
            .problems
            .push(format!("{}: cannot list", display_dir(rel)));
        return listing;
    };
    let mut buf = Vec::with_capacity(64 << 10);
    let mut entries = RawDir::new(&fd, buf.spare_capacity_mut());
    while let Some(entry) = entries.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                listing.problems.push(format!(
                    "{}: cannot list: {}",
                    display_dir(rel),
                    io::Error::from(e)
                ));
                break;
            }
        };
        let bytes = entry.file_name().to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let Ok(name) = std::str::from_utf8(bytes) else {
            listing.not_utf8(rel, &String::from_utf8_lossy(bytes));
            continue;
        };
        // Some file systems leave the type out of the listing.
        let kind = match entry.file_type() {
            FileType::Unknown => statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| FileType::from_raw_mode(st.st_mode))
                .map_err(io::Error::from),
            kind => Ok(kind),
        };
        let seen = kind.map(|kind| match kind {
            FileType::Directory => Seen::Folder,
            FileType::RegularFile => Seen::File,
            _ => Seen::Other,
        });
        listing.add(rel, name, seen);
    }
    listing.sorted()
}

/// List the folder `rel` of `root`, as on Linux, through the standard library.
#[cfg(not(target_os = "linux"))]
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
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            listing.not_utf8(rel, &name.to_string_lossy());
            continue;
        };
        let seen = entry.file_type().map(|t| {
            if t.is_dir() {
                Seen::Folder
            } else if t.is_file() {
                Seen::File
            } else {
                Seen::Other
            }
        });
        listing.add(rel, name, seen);
    }
    listing.sorted()
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

    fn folders(&self) -> &BTreeSet<String> {
        &self.folders
    }

    fn size(&self, path: &str) -> Option<u64> {
        if !self.files.contains_key(path) {
            return None;
        }
        let meta = std::fs::symlink_metadata(self.root.join(path)).ok()?;
        meta.is_file().then_some(meta.len())
    }

    fn copy(&self, path: &str, sink: &mut dyn Write, limit: u64) -> io::Result<u64> {
        bounded_copy(self.open_file(path)?.0, sink, limit, path)
    }

    fn read(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        // Sized from the open: one allocation, no copy as the buffer grows.
        let (file, size) = self.open_file(path)?;
        let mut out = Vec::with_capacity(usize::try_from(size.min(limit)).unwrap_or(0) + 1);
        let n = file.take(limit.saturating_add(1)).read_to_end(&mut out)?;
        if n as u64 > limit {
            return Err(too_large(path));
        }
        Ok(out)
    }

    fn hash(&self, paths: &[&str], algorithms: &[Algorithm]) -> Vec<Hashed> {
        self.hash_reading(paths, algorithms, crate::hash::Reading::Best)
    }
}

impl FolderReader {
    /// [`PackageReader::hash`], small files read in batches as `reading`
    /// says (Linux).
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    fn hash_reading(
        &self,
        paths: &[&str],
        algorithms: &[Algorithm],
        reading: crate::hash::Reading,
    ) -> Vec<Hashed> {
        let listed = self.listed(paths);
        let folders = in_folder::Session::new();
        // Many small files a batch at a time where the kernel can, unless
        // the multi-lane kernels are to hash them.
        #[cfg(target_os = "linux")]
        if crate::hash::one_stream_per_thread(paths.len(), algorithms, |i| {
            self.size(paths[i]).unwrap_or(0)
        }) {
            let plain = |i: usize| -> Hashed {
                if !listed[i] {
                    return Err(not_found(paths[i]));
                }
                let (file, size) = folders.open(&self.root, paths[i])?;
                crate::hash::hash_copy_all(KnownSize::new(file, size), io::sink(), algorithms)
            };
            return crate::batched::hash(reading, &self.root, paths, &listed, algorithms, &plain);
        }
        hash_copy_many(
            paths.len(),
            algorithms,
            |i| {
                let path = paths[i];
                if !listed[i] {
                    return Err(not_found(path));
                }
                let (file, size) = folders.open(&self.root, path)?;
                Ok((KnownSize::new(file, size), io::sink()))
            },
            |_, e| e,
            |i| self.size(paths[i]).unwrap_or(0),
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
    /// Ranges of a remote object, through a block cache.
    Remote(&'a BlockCache<'a>),
}

/// A readable, seekable handle on a [`ZipSource`].
pub(crate) enum Handle<'a> {
    /// A file, read through a window.
    File(Window<'a>),
    /// A cursor over bytes.
    Memory(Cursor<&'a [u8]>),
    /// A cursor over a remote object.
    Remote(RemoteCursor<'a>),
}

impl Read for Handle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Handle::File(f) => f.read(buf),
            Handle::Memory(c) => c.read(buf),
            Handle::Remote(c) => c.read(buf),
        }
    }
}

impl Seek for Handle<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Handle::File(f) => f.seek(pos),
            Handle::Memory(c) => c.seek(pos),
            Handle::Remote(c) => c.seek(pos),
        }
    }
}

impl<'a> ZipSource<'a> {
    fn handle(self) -> io::Result<Handle<'a>> {
        Ok(match self {
            ZipSource::File(p) => Handle::File(Window::new(Bytes::File(File::open(p)?))),
            ZipSource::Memory(b) => Handle::Memory(Cursor::new(b)),
            ZipSource::Remote(cache) => Handle::Remote(RemoteCursor::new(cache)),
        })
    }

    fn archive(self) -> io::Result<ZipArchive<Handle<'a>>> {
        ZipArchive::new(self.handle()?).map_err(zip_error)
    }

    /// The archive's bytes, for reads by position from any thread.
    fn bytes(self) -> io::Result<Bytes<'a>> {
        Ok(match self {
            ZipSource::File(path) => Bytes::File(File::open(path)?),
            ZipSource::Memory(bytes) => Bytes::Memory(bytes),
            ZipSource::Remote(cache) => Bytes::Remote(cache),
        })
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
    folders: BTreeSet<String>,
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
    /// Open the archive and check every entry's name, type and sizes, and
    /// that every byte of the archive belongs to an entry or the directory
    /// of entries; unsafe entries go into `problems` and are left out of the
    /// listing.
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
                "the archive: holds {} entries, more than the {MAX_ENTRIES} accepted",
                archive.len()
            ));
            return Ok(ZipReader {
                source,
                archive: Mutex::new(archive),
                index: BTreeMap::new(),
                files: BTreeMap::new(),
                folders: BTreeSet::new(),
            });
        }
        let mut top: Option<String> = None;
        let mut index = BTreeMap::new();
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        let mut records = Vec::with_capacity(archive.len());
        let mut total = 0u64;
        for i in 0..archive.len() {
            let entry = match archive.by_index_raw(i) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(format!("zip entry {i}: {e}"));
                    continue;
                }
            };
            records.push(Record {
                name: entry.name_raw().to_vec(),
                header: entry.header_start(),
                packed: entry.compressed_size(),
                size: entry.size(),
                crc: entry.crc32(),
                method: match entry.compression() {
                    CompressionMethod::Stored => Some(0),
                    CompressionMethod::Deflated => Some(8),
                    _ => None,
                },
            });
            let Ok(name) = std::str::from_utf8(entry.name_raw()) else {
                problems.push(format!("zip entry {i}: name is not UTF-8"));
                continue;
            };
            if let Some(reason) = unsafe_entry_name(name) {
                problems.push(format!("zip entry {name:?}: {reason}"));
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
                        "zip entry {name:?}: outside the single top-level folder {t:?}"
                    ));
                    continue;
                }
                Some(_) => {}
            }
            let kind = entry.unix_mode().map(|m| m & 0o170_000);
            if entry.is_symlink() || kind == Some(0o120_000) {
                problems.push(format!("zip entry {name:?}: a symlink"));
                continue;
            }
            if entry.encrypted() {
                problems.push(format!("zip entry {name:?}: encrypted"));
                continue;
            }
            if is_dir {
                if !matches!(kind, None | Some(0) | Some(0o040_000)) {
                    problems.push(format!("zip entry {name:?}: not a folder"));
                }
                if let Some(rel) = rest {
                    if !dirs.insert(rel.to_owned()) {
                        problems.push(format!("zip entry {name:?} is a duplicate"));
                    }
                }
                continue;
            }
            if !matches!(kind, None | Some(0) | Some(0o100_000)) {
                problems.push(format!(
                    "zip entry {name:?}: not a regular file (device, FIFO or socket)"
                ));
                continue;
            }
            let Some(rel) = rest else {
                problems.push(format!(
                    "zip entry {name:?}: a file at the top level, outside the package folder"
                ));
                continue;
            };
            let (size, packed) = (entry.size(), entry.compressed_size());
            let method = entry.compression();
            if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
                problems.push(format!(
                    "zip entry {name:?}: uses compression {method}, not stored or deflate"
                ));
                continue;
            }
            if size > MAX_ENTRY_SIZE
                || (method == CompressionMethod::Stored && size != packed)
                || (size > 1 << 20 && size / packed.max(1) > MAX_RATIO)
            {
                problems.push(format!(
                    "zip entry {name:?}: declares an absurd size ({size} bytes from {packed}): refusing it as a possible zip bomb"
                ));
                continue;
            }
            let Some(start) = entry.data_start() else {
                problems.push(format!("zip entry {name:?}: has no local header"));
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
                problems.push(format!("zip entry {name:?}: a duplicate"));
                continue;
            }
            files.insert(rel.to_owned(), size);
        }
        if total > MAX_TOTAL_SIZE {
            problems.push(format!(
                "the archive: declares {total} bytes uncompressed, more than {MAX_TOTAL_SIZE} accepted"
            ));
            index.clear();
            files.clear();
        }
        if top.is_none() {
            problems.push("the archive: empty".into());
        }
        check_layout(&mut Window::new(source.bytes()?), &mut records, problems);
        let folders = folders_of(&files, dirs);
        Ok(ZipReader {
            source,
            archive: Mutex::new(archive),
            index,
            files,
            folders,
        })
    }
}

/// The folder entries `dirs` and every folder holding one of `files`.
fn folders_of(files: &BTreeMap<String, u64>, mut dirs: BTreeSet<String>) -> BTreeSet<String> {
    // Files come sorted, so each folder's files follow one another: one
    // walk up the tree per folder, not per file.
    let mut last = "";
    for path in files.keys() {
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        if parent == last {
            continue;
        }
        last = parent;
        let mut folder = parent;
        while !folder.is_empty() {
            if !dirs.contains(folder) {
                dirs.insert(folder.to_owned());
            }
            folder = folder.rsplit_once('/').map_or("", |(p, _)| p);
        }
    }
    dirs
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

/// What the central directory says of one entry, to hold its local header
/// and its place in the archive against.
struct Record {
    name: Vec<u8>,
    header: u64,
    packed: u64,
    size: u64,
    crc: u32,
    /// The compression method's number, when it is one auditpack reads.
    method: Option<u16>,
}

/// Where the end records put the central directory.
struct End {
    /// Entries declared.
    entries: u64,
    /// Where the central directory starts and ends.
    start: u64,
    end: u64,
}

/// Largest central directory read (a quarter more than [`MAX_ENTRIES`]
/// entries with 100-byte names).
const MAX_DIRECTORY: u64 = (MAX_ENTRIES as u64) * 180;

/// Hold the archive's bytes against its entries, so that nothing lies where
/// another unzipper than ours could find content no manifest lists: the
/// entries' local headers back to back from the first byte, each agreeing
/// with its central record (name, method, CRC-32, sizes) and followed by its
/// data (and data descriptor); the central directory right after them,
/// exactly as many records as declared with no name twice, filling its
/// declared size; then the end records, with no archive comment and nothing
/// after them. Problems go into `problems`; `records` is sorted by offset.
fn check_layout(bytes: &mut Window<'_>, records: &mut [Record], problems: &mut Vec<String>) {
    let len = match bytes.len() {
        Ok(len) => len,
        Err(e) => {
            problems.push(format!("the archive's length: {e}"));
            return;
        }
    };
    let end = match end_records(bytes, len) {
        Ok(end) => end,
        Err(e) => {
            problems.push(format!("the archive's end records: {e}"));
            return;
        }
    };
    match central_directory(bytes, &end) {
        Ok((count, found)) => {
            if count != end.entries {
                problems.push(format!(
                    "the archive declares {} entries but its central directory holds {count}",
                    end.entries
                ));
            }
            problems.extend(found);
        }
        Err(e) => problems.push(format!("the archive's central directory: {e}")),
    }
    records.sort_by_key(|r| r.header);
    let mut at = 0u64;
    for record in records.iter() {
        let shown = String::from_utf8_lossy(&record.name);
        if record.header > at {
            problems.push(format!(
                "{} bytes at offset {at} of the archive belong to no entry",
                record.header - at
            ));
        } else if record.header < at {
            problems.push(format!("zip entry {shown:?} overlaps the entry before it"));
        }
        match local_entry(bytes, len, record) {
            Ok(next) => at = next,
            Err(e) => {
                problems.push(format!("zip entry {shown:?}: {e}"));
                return;
            }
        }
    }
    if at < end.start {
        problems.push(format!(
            "{} bytes at offset {at} of the archive belong to no entry",
            end.start - at
        ));
    } else if at > end.start {
        problems.push("the last entry runs into the central directory".into());
    }
}

/// Read `buf.len()` bytes at `offset`, or fail.
fn read_exact_at(bytes: &mut Window<'_>, buf: &mut [u8], offset: u64) -> Result<(), String> {
    let mut done = 0;
    while done < buf.len() {
        match bytes.read_at(&mut buf[done..], offset.saturating_add(done as u64)) {
            Ok(0) => {
                return Err(format!(
                    "the archive ends before offset {}",
                    offset.saturating_add(buf.len() as u64)
                ))
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    b.get(i..i + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The end-of-central-directory record, which must close the archive with
/// no comment, and the ZIP64 end record and locator right before it when
/// there are some.
fn end_records(bytes: &mut Window<'_>, len: u64) -> Result<End, String> {
    let eocd_at = len.checked_sub(22).ok_or("the archive is too short")?;
    let mut eocd = [0u8; 22];
    read_exact_at(bytes, &mut eocd, eocd_at)?;
    if u32_at(&eocd, 0) != 0x0605_4b50 || u16_at(&eocd, 20) != 0 {
        return Err(
            "the archive ends in a comment or in bytes after its end record, which no signature covers"
                .into(),
        );
    }
    let mut end = End {
        entries: u64::from(u16_at(&eocd, 10)),
        start: u64::from(u32_at(&eocd, 16)),
        end: u64::from(u32_at(&eocd, 16)) + u64::from(u32_at(&eocd, 12)),
    };
    let mut records_at = eocd_at;
    let mut locator = [0u8; 20];
    if let Some(locator_at) = eocd_at.checked_sub(20) {
        read_exact_at(bytes, &mut locator, locator_at)?;
        if u32_at(&locator, 0) == 0x0706_4b50 {
            let record_at = u64_at(&locator, 8);
            let mut record = [0u8; 56];
            read_exact_at(bytes, &mut record, record_at)?;
            if u32_at(&record, 0) != 0x0606_4b50 {
                return Err("the ZIP64 locator points at no ZIP64 end record".into());
            }
            let record_end = record_at
                .checked_add(12)
                .and_then(|n| n.checked_add(u64_at(&record, 4)));
            // 44 bytes after the size: no extensible data that no
            // signature covers.
            if u64_at(&record, 4) != 44 || record_end != Some(locator_at) {
                return Err("the ZIP64 end record carries extra data, or bytes follow it".into());
            }
            let start = u64_at(&record, 48);
            end = End {
                entries: u64_at(&record, 32),
                start,
                end: start
                    .checked_add(u64_at(&record, 40))
                    .ok_or("the ZIP64 end record declares an absurd size")?,
            };
            records_at = record_at;
        }
    }
    if end.end != records_at {
        return Err(format!(
            "the central directory ends at offset {}, not where the end records begin ({records_at})",
            end.end
        ));
    }
    Ok(end)
}

/// How many records the central directory holds (they must fill it
/// exactly), and what is wrong with them: a name listed twice, a name that
/// other unzippers would read differently, a comment.
fn central_directory(bytes: &mut Window<'_>, end: &End) -> Result<(u64, Vec<String>), String> {
    let size = end.end - end.start;
    if size > MAX_DIRECTORY {
        return Err(format!(
            "it declares {size} bytes, more than the {MAX_DIRECTORY} accepted"
        ));
    }
    let mut dir = vec![0u8; usize::try_from(size).map_err(|_| "it is too large to read")?];
    read_exact_at(bytes, &mut dir, end.start)?;
    let mut at = 0usize;
    let mut count = 0u64;
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    while at < dir.len() {
        if dir.len() - at < 46 || u32_at(&dir, at) != 0x0201_4b50 {
            return Err(format!("no entry record at its byte {at}"));
        }
        let name_end = at + 46 + usize::from(u16_at(&dir, at + 28));
        let extra_end = name_end + usize::from(u16_at(&dir, at + 30));
        let next = extra_end + usize::from(u16_at(&dir, at + 32));
        let (Some(name), Some(extra)) = (
            dir.get(at + 46..name_end).filter(|_| next <= dir.len()),
            dir.get(name_end..extra_end),
        ) else {
            return Err("its last record runs past its end".into());
        };
        let shown = String::from_utf8_lossy(name);
        if !seen.insert(name) {
            problems.push(format!(
                "zip entry {shown:?} is listed twice: duplicate entry names"
            ));
        }
        if let Some(reason) = read_otherwise(name, u16_at(&dir, at + 8), extra) {
            problems.push(format!("zip entry {shown:?}: {reason}"));
        }
        if next != extra_end {
            problems.push(format!(
                "zip entry {shown:?} carries a comment, which no signature covers"
            ));
        }
        count += 1;
        at = next;
    }
    Ok((count, problems))
}

/// The data of the extra field `id` in `extra`, if there is one.
fn extra_field(extra: &[u8], id: u16) -> Option<&[u8]> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let len = usize::from(u16_at(extra, at + 2));
        let data = extra.get(at + 4..at + 4 + len)?;
        if u16_at(extra, at) == id {
            return Some(data);
        }
        at += 4 + len;
    }
    None
}

/// Why other unzippers would read an entry's name as another one than its
/// bytes in UTF-8, if they would: a name beyond ASCII without the UTF-8
/// flag (read as code page 437), or an Info-ZIP Unicode path field (read
/// instead of the name).
fn read_otherwise(name: &[u8], flags: u16, extra: &[u8]) -> Option<&'static str> {
    if !name.is_ascii() && flags & 0x0800 == 0 {
        Some("a name beyond ASCII without the UTF-8 flag, which other unzippers read as another name")
    } else if extra_field(extra, 0x7075).is_some() {
        Some("a Unicode path field, which other unzippers read instead of the name")
    } else {
        None
    }
}

/// Check the local header (and data descriptor) of the entry `record`
/// describes; where the next entry must start.
fn local_entry(bytes: &mut Window<'_>, len: u64, record: &Record) -> Result<u64, String> {
    // One read for the header, name and extra field of nearly every entry.
    let mut buf = [0u8; 512];
    let want = len.saturating_sub(record.header).min(buf.len() as u64) as usize;
    read_exact_at(bytes, &mut buf[..want], record.header)?;
    if want < 30 || u32_at(&buf, 0) != 0x0403_4b50 {
        return Err("no local header where the central directory points".into());
    }
    let head = &buf[..30];
    let flags = u16_at(head, 6);
    let name_len = usize::from(u16_at(head, 26));
    let tail_len = name_len + usize::from(u16_at(head, 28));
    let tail = match buf.get(30..30 + tail_len).filter(|_| 30 + tail_len <= want) {
        Some(tail) => std::borrow::Cow::Borrowed(tail),
        None => {
            let mut tail = vec![0u8; tail_len];
            read_exact_at(bytes, &mut tail, record.header.saturating_add(30))?;
            std::borrow::Cow::Owned(tail)
        }
    };
    let (name, extra) = tail.split_at(name_len);
    if name != record.name {
        return Err(format!(
            "its local header names it {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    if record.method.is_some_and(|m| m != u16_at(head, 8)) {
        return Err("its local header gives another compression method".into());
    }
    if let Some(reason) = read_otherwise(name, flags, extra) {
        return Err(format!("its local header: {reason}"));
    }
    let zip64 = extra_field(extra, 0x0001);
    let data_end = (record.header.saturating_add(30 + tail_len as u64))
        .checked_add(record.packed)
        .ok_or("its data ends past any archive")?;
    let (crc, packed, size, next) = if flags & 0x0008 == 0 {
        let (mut packed, mut size) = (u64::from(u32_at(head, 18)), u64::from(u32_at(head, 22)));
        if packed == 0xFFFF_FFFF || size == 0xFFFF_FFFF {
            // A local ZIP64 field holds both sizes, the original first.
            match zip64.filter(|f| f.len() >= 16) {
                Some(field) => (size, packed) = (u64_at(field, 0), u64_at(field, 8)),
                None => return Err("its local header has no room for its sizes".into()),
            }
        }
        (u32_at(head, 14), packed, size, data_end)
    } else {
        // A data descriptor after the data, with or without its signature.
        let mut descriptor = [0u8; 24];
        let room = len.saturating_sub(data_end).min(24) as usize;
        read_exact_at(bytes, &mut descriptor[..room], data_end)?;
        let skip = if u32_at(&descriptor, 0) == 0x0807_4b50 {
            4
        } else {
            0
        };
        let fields = &descriptor[skip..];
        let found = if zip64.is_some() {
            let found = (u32_at(fields, 0), u64_at(fields, 4), u64_at(fields, 12));
            (
                found.0,
                found.1,
                found.2,
                data_end.saturating_add(skip as u64 + 20),
            )
        } else {
            let found = (u32_at(fields, 0), u32_at(fields, 4), u32_at(fields, 8));
            let (packed, size) = (u64::from(found.1), u64::from(found.2));
            (
                found.0,
                packed,
                size,
                data_end.saturating_add(skip as u64 + 12),
            )
        };
        // Some streaming writers flag an empty entry (a folder) so and
        // write no descriptor; nothing can hide in what is not there.
        let local = (u32_at(head, 14), u32_at(head, 18), u32_at(head, 22));
        if (found.0, found.1, found.2) != (record.crc, record.packed, record.size)
            && (record.crc, record.packed, record.size) == (0, 0, 0)
            && local == (0, 0, 0)
        {
            (0, 0, 0, data_end)
        } else {
            found
        }
    };
    if (crc, packed, size) != (record.crc, record.packed, record.size) {
        return Err(
            "its local header disagrees with the central directory on its CRC-32 or sizes".into(),
        );
    }
    Ok(next)
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

    fn folders(&self) -> &BTreeSet<String> {
        &self.folders
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
        let archive = match self.source.bytes() {
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
    Remote(&'a BlockCache<'a>),
}

impl Bytes<'_> {
    /// The archive's length.
    fn len(&self) -> Result<u64, String> {
        match self {
            Bytes::File(f) => f.metadata().map(|m| m.len()).map_err(|e| e.to_string()),
            Bytes::Memory(bytes) => Ok(bytes.len() as u64),
            Bytes::Remote(cache) => Ok(cache.len()),
        }
    }

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
            Bytes::Remote(cache) => cache.read_at(buf, offset),
        }
    }
}

/// An archive read by position through a window of [`WINDOW`] bytes that
/// seeks keep. Opening seeks to each entry's local header, then to its data,
/// and a `BufReader` drops its buffer and makes a system call on every seek
/// (three calls per entry of 4 KiB), where the next header mostly lies in the
/// bytes already read; the layout check reads every local header again, in
/// the order they lie.
pub(crate) struct Window<'a> {
    bytes: Bytes<'a>,
    /// Where [`Read`] reads next.
    pos: u64,
    window: Box<[u8]>,
    /// Where in the archive `window` starts, and how much of it is filled.
    start: u64,
    filled: usize,
}

impl<'a> Window<'a> {
    fn new(bytes: Bytes<'a>) -> Window<'a> {
        Window {
            bytes,
            pos: 0,
            window: vec![0; WINDOW].into_boxed_slice(),
            start: 0,
            filled: 0,
        }
    }

    /// The archive's length.
    fn len(&self) -> Result<u64, String> {
        self.bytes.len()
    }

    /// Read at `offset`, as much as fits in `buf` (0 only at the end): out
    /// of the window where it holds `offset`, else straight into `buf` when
    /// that is at least as large, else through a window read from `offset`.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let inside = offset
            .checked_sub(self.start)
            .and_then(|at| usize::try_from(at).ok())
            .filter(|&at| at < self.filled);
        let at = match inside {
            Some(at) => at,
            None if buf.len() >= self.window.len() => return self.bytes.read_at(buf, offset),
            None => {
                self.filled = 0;
                self.filled = self.bytes.read_at(&mut self.window, offset)?;
                self.start = offset;
                0
            }
        };
        let n = buf.len().min(self.filled - at);
        buf[..n].copy_from_slice(&self.window[at..at + n]);
        Ok(n)
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = seek_target(pos, self.pos, || self.len().map_err(io::Error::other))?;
        Ok(self.pos)
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
    use crate::hash::Reading;

    proptest::proptest! {
        /// Reads through the window, by position or after any seek, give
        /// the bytes where they are, whether the window holds them, a read
        /// is larger than it, or the end is near.
        #[test]
        fn the_window_reads_what_lies_there(
            len in 0usize..3 * WINDOW,
            steps in proptest::collection::vec(
                (0u8..3, 0usize..3 * WINDOW + 10, 0usize..WINDOW + 100),
                1..40,
            ),
        ) {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut window = Window::new(Bytes::Memory(&bytes));
            for (how, at, want) in steps {
                let mut buf = vec![0u8; want];
                let (from, n) = match how {
                    0 => (at as u64, window.read_at(&mut buf, at as u64).unwrap()),
                    1 => {
                        let from = window.seek(SeekFrom::Start(at as u64)).unwrap();
                        (from, window.read(&mut buf).unwrap())
                    }
                    _ => {
                        let back = i64::try_from(at.min(len)).unwrap();
                        let from = window.seek(SeekFrom::End(-back)).unwrap();
                        (from, window.read(&mut buf).unwrap())
                    }
                };
                let from = usize::try_from(from).unwrap();
                let there = bytes.get(from..).unwrap_or(&[]);
                proptest::prop_assert!(n > 0 || want == 0 || there.is_empty());
                proptest::prop_assert_eq!(&buf[..n], &there[..n.min(there.len())]);
                proptest::prop_assert!(n <= there.len());
            }
        }
    }

    /// A FIFO at `path`, made by `mkfifo(1)`.
    fn mkfifo(path: &Path) {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo {}", path.display());
    }

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
        mkfifo(&fifo);
        let e = open_regular(&fifo).expect_err("a FIFO is refused");
        assert!(e.to_string().contains("not a regular file"), "{e}");

        let e = open_regular(dir.path()).expect_err("a folder is refused");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(open_regular(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn hashing_a_listing_gives_every_file_its_digest_and_refuses_what_replaced_one() {
        // Enough small files for several batches, with an empty one, one
        // larger than a read, a missing one and three replaced after the
        // listing by what must not be read as a file.
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let mut contents = std::collections::BTreeMap::new();
        for f in 0..3 {
            std::fs::create_dir_all(root.join(format!("data/f{f}"))).expect("mkdir");
            for i in 0..50 {
                let path = format!("data/f{f}/n{i:02}");
                let bytes = match (f, i) {
                    (0, 7) => Vec::new(),
                    (1, 9) => vec![b'x'; super::super::hash::CHUNK * 2 + 5],
                    _ => format!("file {f} {i}").into_bytes(),
                };
                std::fs::write(root.join(&path), &bytes).expect("write");
                contents.insert(path, bytes);
            }
        }
        let mut problems = Vec::new();
        let reader = FolderReader::open(root, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        std::fs::remove_file(root.join("data/f0/n01")).expect("remove");
        std::os::unix::fs::symlink(root.join("data/f0/n00"), root.join("data/f0/n01"))
            .expect("symlink");
        std::fs::remove_file(root.join("data/f1/n02")).expect("remove");
        std::fs::create_dir(root.join("data/f1/n02")).expect("mkdir");
        std::fs::remove_file(root.join("data/f2/n03")).expect("remove");
        mkfifo(&root.join("data/f2/n03"));
        std::fs::remove_file(root.join("data/f2/n04")).expect("remove");

        let paths: Vec<&str> = contents.keys().map(String::as_str).collect();
        // Through io_uring where this kernel gives it, and with the plain
        // calls of a kernel that refuses it.
        for reading in [Reading::Best, Reading::Calls] {
            let hashed = reader.hash_reading(&paths, &[Algorithm::Sha256], reading);
            assert_eq!(hashed.len(), paths.len());
            for (path, result) in paths.iter().zip(hashed) {
                match *path {
                    "data/f0/n01" | "data/f1/n02" | "data/f2/n03" => {
                        let e = result.expect_err(path);
                        assert!(
                            e.to_string().contains("not a regular file"),
                            "{reading:?} {path}: {e}"
                        );
                    }
                    "data/f2/n04" => assert!(result.is_err(), "{reading:?} {path}"),
                    _ => {
                        let bytes = &contents[*path];
                        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
                        let expected = (vec![hex::encode(digest.as_ref())], bytes.len() as u64);
                        assert_eq!(result.expect(path), expected, "{reading:?} {path}");
                    }
                }
            }
        }
    }

    #[test]
    fn opening_folder_by_folder_refuses_the_same_and_never_reuses_a_replaced_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("data/a")).expect("mkdir");
        std::fs::write(root.join("data/a/f"), b"first").expect("write");
        std::fs::write(root.join("top"), b"top").expect("write");
        let read = |session: &in_folder::Session, path: &str| -> io::Result<(String, u64)> {
            let (mut file, size) = session.open(root, path)?;
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            Ok((text, size))
        };
        let session = in_folder::Session::new();
        assert_eq!(
            read(&session, "data/a/f").expect("opens"),
            ("first".into(), 5)
        );
        assert_eq!(read(&session, "top").expect("opens"), ("top".into(), 3));

        std::os::unix::fs::symlink(root.join("data/a/f"), root.join("data/a/link"))
            .expect("symlink");
        mkfifo(&root.join("data/a/fifo"));
        std::fs::create_dir(root.join("data/a/sub")).expect("mkdir");
        for refused in ["data/a/link", "data/a/fifo", "data/a/sub"] {
            let e = read(&session, refused).expect_err(refused);
            assert!(
                e.to_string().contains("not a regular file"),
                "{refused}: {e}"
            );
        }
        assert!(read(&session, "data/a/missing").is_err());
        drop(session);

        // The folder replaced by another of the same name: a new pass reads
        // the new one; replaced by a symlink to it: refused.
        std::fs::rename(root.join("data/a"), root.join("data/old")).expect("rename");
        std::fs::create_dir(root.join("data/a")).expect("mkdir");
        std::fs::write(root.join("data/a/f"), b"second").expect("write");
        let session = in_folder::Session::new();
        assert_eq!(read(&session, "data/a/f").expect("opens").0, "second");
        drop(session);
        std::fs::remove_dir_all(root.join("data/a")).expect("remove");
        std::os::unix::fs::symlink(root.join("data/old"), root.join("data/a")).expect("symlink");
        let session = in_folder::Session::new();
        let e = read(&session, "data/a/f").expect_err("a folder turned symlink");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}

/// One file of a zipped package (`data/results/controls.json`), read in
/// place: the archive is checked entry by entry as for verification, and
/// nothing is unpacked. For commands that only read a package (`diff`,
/// `gaps`); a valid package is not implied.
///
/// # Errors
/// When the archive cannot be opened or parsed, or the file is missing,
/// refused or larger than `limit` bytes.
pub fn read_zipped_file(zip: &Path, path: &str, limit: u64) -> crate::error::Result<Vec<u8>> {
    use crate::error::ResultExt as _;
    let mut problems = Vec::new();
    let reader = ZipReader::open(ZipSource::File(zip), &mut problems)
        .context(|| format!("cannot read the zipped package {}", zip.display()))?;
    reader
        .read(path, limit)
        .context(|| format!("{}: cannot read {path} in it", zip.display()))
}
