//! Hashing many small files of a folder package a batch at a time (Linux):
//! each worker opens, reads and closes 32 files with one system call through
//! io_uring (`auditpack-uring`), or where the kernel refuses io_uring with an
//! `openat`, one `read` and a `close` each, where the plain path costs an
//! `openat`, an `fstat`, a `read` and a `close` per file. A batch's files
//! are then hashed together (two at a time on SHA-NI). Only files that fit
//! one read whole are taken from a batch; an empty file, one larger than a read, and
//! any file the batch could not open or read (a symlink, a folder, a FIFO put
//! in its place since the listing) go through the plain path, which checks
//! what the file is and says what is wrong with it.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use uring::{Batch, Read};

use crate::hash::{hash_many, Algorithm, Hashed, Reading, CHUNK};
use crate::parallel::{cores, parallel_map};

/// Files in flight per worker.
const SLOTS: usize = 32;

thread_local! {
    /// This thread's batch, made on its first, and how it reads.
    static BATCH: RefCell<Option<(Reading, Batch)>> = const { RefCell::new(None) };
}

/// A batch that reads as `reading` says.
fn new_batch(reading: Reading) -> Option<Batch> {
    match reading {
        Reading::Best => Batch::best(SLOTS, CHUNK),
        Reading::Calls => Batch::with_calls(SLOTS, CHUNK),
    }
}

/// Digests and sizes of the files `paths` under `root`, in order, read as
/// `reading` says; `plain(i)` hashes file `i` the plain way, for what a
/// batch leaves, among them every file not `listed` (it says why).
pub(crate) fn hash(
    reading: Reading,
    root: &Path,
    paths: &[&str],
    listed: &[bool],
    algorithms: &[Algorithm],
    plain: &(dyn Fn(usize) -> Hashed + Sync),
) -> Vec<Hashed> {
    // Batches small enough that a few large files still spread over every
    // core (each large one is left to the plain path by the worker that
    // met it).
    let size = paths.len().div_ceil(cores() * 4).clamp(1, SLOTS);
    // Opened without updating access times (a package just linked has them
    // all due, one inode write each) until a file refuses: only its owner
    // may ask that.
    let noatime = AtomicBool::new(true);
    let starts: Vec<usize> = (0..paths.len()).step_by(size).collect();
    let batches = parallel_map(&starts, |&start| {
        let end = (start + size).min(paths.len());
        let batch = hash_batch(
            reading,
            root,
            &paths[start..end],
            &listed[start..end],
            algorithms,
            &noatime,
        );
        batch
            .into_iter()
            .enumerate()
            .map(|(i, hashed)| hashed.unwrap_or_else(|| plain(start + i)))
            .collect::<Vec<_>>()
    });
    batches.into_iter().flatten().collect()
}

/// One batch of at most [`SLOTS`] files, each `None` where the plain path
/// is to hash it.
fn hash_batch(
    reading: Reading,
    root: &Path,
    paths: &[&str],
    listed: &[bool],
    algorithms: &[Algorithm],
    noatime: &AtomicBool,
) -> Vec<Option<Hashed>> {
    let mut done: Vec<Option<Hashed>> = paths.iter().map(|_| None).collect();
    // Each file's folder opened once for the batch, as the plain path opens
    // it (no symlink in its place followed), and its name.
    let mut folders: Vec<(&str, OwnedFd)> = Vec::new();
    let mut asked: Vec<(usize, usize, CString)> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        if !listed[i] {
            continue;
        }
        let (rel, name) = path.rsplit_once('/').unwrap_or(("", path));
        let folder = match folders.iter().position(|(r, _)| *r == rel) {
            Some(f) => f,
            None => match open_folder(root, rel) {
                Some(fd) => {
                    folders.push((rel, fd));
                    folders.len() - 1
                }
                None => continue,
            },
        };
        if let Ok(name) = CString::new(name) {
            asked.push((i, folder, name));
        }
    }
    let files: Vec<_> = asked
        .iter()
        .map(|(_, folder, name)| (folders[*folder].1.as_fd(), name.as_c_str()))
        .collect();
    BATCH.with(|kept| {
        let Ok(mut kept) = kept.try_borrow_mut() else {
            return;
        };
        if !matches!(*kept, Some((r, _)) if r == reading) {
            *kept = new_batch(reading).map(|made| (reading, made));
        }
        let Some((_, batch)) = kept.as_mut() else {
            return;
        };
        let Ok(outcomes) = batch.read(&files, noatime.load(Ordering::Relaxed)) else {
            // The ring is unusable: this thread's next batch makes another.
            *kept = None;
            return;
        };
        // Every file read whole (its index and bytes), hashed together: two
        // at a time on SHA-NI.
        let (mut at, mut whole): (Vec<usize>, Vec<&[u8]>) = (Vec::new(), Vec::new());
        for (read, (i, _, _)) in outcomes.iter().zip(&asked) {
            match read {
                Read::Short(bytes) if !bytes.is_empty() => {
                    at.push(*i);
                    whole.push(bytes);
                }
                Read::Failed(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    noatime.store(false, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        for (i, hashed) in at.into_iter().zip(hash_many(&whole, algorithms)) {
            done[i] = Some(Ok(hashed));
        }
    });
    done
}

/// The folder `rel` of `root`, opened as the plain path opens it; `None`
/// leaves its files to the plain path, which reports why it cannot.
fn open_folder(root: &Path, rel: &str) -> Option<OwnedFd> {
    use rustix::fs::{open, Mode, OFlags};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    open(root.join(rel), flags, Mode::empty()).ok()
}
