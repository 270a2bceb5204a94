//! Hashing files in parallel with bounded reads.

use std::io::{self, Read, Write};

use ring::digest::{Context, SHA256, SHA512};

use crate::parallel::parallel_map;

/// Read size: large enough to amortise syscalls, small enough to stay in cache.
pub(crate) const CHUNK: usize = 128 * 1024;

/// How verification reads small files a batch at a time (Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Through io_uring where the kernel gives it, with plain calls otherwise.
    Best,
    /// With plain calls, as where the kernel refuses io_uring.
    #[cfg_attr(not(test), allow(dead_code))]
    Calls,
}

/// Digests (one per requested algorithm) and size of one file, or why not.
pub type Hashed = io::Result<(Vec<String>, u64)>;

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

/// Digests (one per algorithm, in order) and length of `count` streams, over
/// every core: `open(i)` gives stream `i`'s reader and the sink it is copied
/// to as it is hashed, `failed(i, e)` names an I/O error while copying it,
/// `size(i)` is its expected length (a hint for the plan, asked only when
/// there are few streams).
/// SHA-256 alone goes through the multi-lane SIMD kernels (`lanes`) when the
/// CPU has them and there are enough streams; otherwise each thread hashes
/// one stream at a time with ring; [`hashing_method`] tells which. Results
/// come back in stream order.
pub(crate) fn hash_copy_many<R: Read, W: Write, E: Send>(
    count: usize,
    algorithms: &[Algorithm],
    open: impl Fn(usize) -> Result<(R, W), E> + Sync,
    failed: impl Fn(usize, io::Error) -> E + Sync,
    size: impl Fn(usize) -> u64,
) -> Vec<Result<(Vec<String>, u64), E>> {
    let threads = threads();
    if algorithms == [Algorithm::Sha256] {
        let bulk = super::lanes::bulk(count, size);
        if let Some(plan) = super::lanes::plan_for(count, bulk, threads) {
            return plan
                .digest(count, threads, open, failed)
                .into_iter()
                .map(|r| r.map(|(digest, n)| (vec![to_hex(&digest)], n)))
                .collect();
        }
    }
    let streams: Vec<usize> = (0..count).collect();
    parallel_map(&streams, |&i| {
        let (reader, sink) = open(i)?;
        hash_copy_all(reader, sink, algorithms).map_err(|e| failed(i, e))
    })
}

/// Whether [`hash_copy_many`] would hash `count` streams one at a time per
/// thread (through `ring`), not in the multi-lane kernels.
pub(crate) fn one_stream_per_thread(
    count: usize,
    algorithms: &[Algorithm],
    size: impl Fn(usize) -> u64,
) -> bool {
    algorithms != [Algorithm::Sha256]
        || super::lanes::plan_for(count, super::lanes::bulk(count, size), threads()).is_none()
}

/// Threads to hash on: one per core.
fn threads() -> usize {
    crate::parallel::cores()
}

/// How this machine hashes `streams` files, `bulk` of which carry nearly
/// all the bytes, for a SHA-256 manifest, for people (the benchmark prints
/// it).
pub fn hashing_method(streams: usize, bulk: usize) -> String {
    let threads = threads();
    match super::lanes::plan_for(streams, bulk, threads) {
        Some(plan) => plan.describe(threads),
        // Verification reads small files in batches on Linux.
        None if sha256x::Kernel::sha_ni().is_some() && cfg!(target_os = "linux") => {
            let calls = if uring::Batch::available() {
                "through io_uring"
            } else {
                "with plain calls (no io_uring)"
            };
            format!(
                "SHA-NI on each of {threads} threads: small files read 32 at a time {calls} and \
                 hashed two at a time, others one at a time with ring"
            )
        }
        None if sha256x::has_sha_instructions() => {
            format!("ring with SHA-NI, a file at a time on each of {threads} threads")
        }
        None => format!("ring, a file at a time on each of {threads} threads"),
    }
}

/// Digests of everything read from `reader` for each of `algorithms` (in
/// order, each named once) and its length, copied to `sink` as it goes, in
/// one pass.
pub(crate) fn hash_copy_all(
    mut reader: impl Read,
    mut sink: impl Write,
    algorithms: &[Algorithm],
) -> io::Result<(Vec<String>, u64)> {
    let mut digests = Digests::new(algorithms);
    with_buffer(|buf| copy_chunks(&mut reader, &mut sink, buf, |chunk| digests.update(chunk)))
        .map(|total| (digests.finish(algorithms), total))
}

/// [`hash_copy_all`] of bytes already in memory, without copying them.
pub(crate) fn hash_bytes(bytes: &[u8], algorithms: &[Algorithm]) -> (Vec<String>, u64) {
    let mut digests = Digests::new(algorithms);
    digests.update(bytes);
    (digests.finish(algorithms), bytes.len() as u64)
}

/// [`hash_bytes`] of each of `messages`: for SHA-256 alone on a CPU with
/// SHA-NI, two messages at a time through its two-lane kernel (about 1.8x
/// one message at a time), else one by one.
pub(crate) fn hash_many(messages: &[&[u8]], algorithms: &[Algorithm]) -> Vec<(Vec<String>, u64)> {
    if algorithms != [Algorithm::Sha256]
        || messages.len() < 2
        || sha256x::Kernel::sha_ni().is_none()
    {
        return messages.iter().map(|m| hash_bytes(m, algorithms)).collect();
    }
    sha256x::digest_many(messages)
        .iter()
        .zip(messages)
        .map(|(digest, m)| (vec![to_hex(digest)], m.len() as u64))
        .collect()
}

/// One running digest per algorithm asked for.
struct Digests {
    sha256: Option<Context>,
    sha512: Option<Context>,
}

impl Digests {
    // ring's SHA-2 is the OpenSSL-lineage assembly, picked per CPU at run
    // time: on a CPU without SHA-NI it is about twice as fast as `sha2`.
    fn new(algorithms: &[Algorithm]) -> Digests {
        Digests {
            sha256: algorithms
                .contains(&Algorithm::Sha256)
                .then(|| Context::new(&SHA256)),
            sha512: algorithms
                .contains(&Algorithm::Sha512)
                .then(|| Context::new(&SHA512)),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        if let Some(h) = self.sha256.as_mut() {
            h.update(chunk);
        }
        if let Some(h) = self.sha512.as_mut() {
            h.update(chunk);
        }
    }

    /// Lower-case hex digests in the order of `algorithms`.
    fn finish(self, algorithms: &[Algorithm]) -> Vec<String> {
        let mut sha256 = self.sha256.map(|h| to_hex(h.finish().as_ref()));
        let mut sha512 = self.sha512.map(|h| to_hex(h.finish().as_ref()));
        algorithms
            .iter()
            .map(|a| match a {
                Algorithm::Sha256 => sha256.take().unwrap_or_default(),
                Algorithm::Sha512 => sha512.take().unwrap_or_default(),
            })
            .collect()
    }
}

/// Lower-case hex of a digest, through `hex`'s table (its `encode` builds
/// the string a character at a time, which shows when hashing 20,000 files).
pub(crate) fn to_hex(digest: &[u8]) -> String {
    let mut out = vec![0u8; digest.len() * 2];
    match hex::encode_to_slice(digest, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => hex::encode(digest),
    }
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
