//! Hashing files in parallel with bounded reads.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ring::digest::{Context, SHA256, SHA512};

/// Read size: large enough to amortise syscalls, small enough to stay in cache.
pub(crate) const CHUNK: usize = 128 * 1024;

/// Run `work` over `items` on every core, keeping the input order in the output.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = work(item);
                if let Ok(mut slots) = results.lock() {
                    slots[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// A digest algorithm BagIt manifests may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256: `manifest-sha256.txt`, the default and always written.
    Sha256,
    /// SHA-512: `manifest-sha512.txt`, the RFC 8493 default, written on request.
    Sha512,
}

impl Algorithm {
    /// The name used in manifest file names (`manifest-<name>.txt`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of a digest in hex.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Digests of everything read from `reader` for each of `algorithms` (in
/// order) and its length, copied to `sink` as it goes, in one pass.
pub(crate) fn hash_copy_all(
    mut reader: impl Read,
    mut sink: impl Write,
    algorithms: &[Algorithm],
) -> io::Result<(Vec<String>, u64)> {
    // ring's SHA-2 is the OpenSSL-lineage assembly, picked per CPU at run
    // time: on a CPU without SHA-NI it is about twice as fast as `sha2`.
    let mut sha256 = algorithms
        .contains(&Algorithm::Sha256)
        .then(|| Context::new(&SHA256));
    let mut sha512 = algorithms
        .contains(&Algorithm::Sha512)
        .then(|| Context::new(&SHA512));
    with_buffer(|buf| {
        copy_chunks(&mut reader, &mut sink, buf, |chunk| {
            if let Some(h) = sha256.as_mut() {
                h.update(chunk);
            }
            if let Some(h) = sha512.as_mut() {
                h.update(chunk);
            }
        })
    })
    .map(|total| {
        let sha256 = sha256.map(|h| hex::encode(h.finish()));
        let sha512 = sha512.map(|h| hex::encode(h.finish()));
        let digests = algorithms
            .iter()
            .map(|a| match a {
                Algorithm::Sha256 => sha256.clone().unwrap_or_default(),
                Algorithm::Sha512 => sha512.clone().unwrap_or_default(),
            })
            .collect();
        (digests, total)
    })
}

thread_local! {
    /// One read buffer per thread: a fresh 128 KiB allocation per file costs
    /// an mmap, page faults and an munmap, more than hashing a small file.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `work` with this thread's read buffer (a fresh one if it is in use).
fn with_buffer<R>(work: impl FnOnce(&mut [u8]) -> R) -> R {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.resize(CHUNK, 0);
            work(&mut buf)
        }
        Err(_) => work(&mut vec![0u8; CHUNK]),
    })
}

/// Read `reader` to its end through `buf`, handing each chunk to `each` and
/// then to `sink`; the number of bytes read.
fn copy_chunks(
    reader: &mut impl Read,
    sink: &mut impl Write,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]),
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        each(&buf[..n]);
        sink.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok(total)
}
