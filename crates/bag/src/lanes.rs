//! SHA-256 of many files at once: each thread keeps as many files open as
//! its SIMD kernel has lanes and advances all of them with one instruction
//! stream (`sha256x`). A lane whose file ends is padded, finished and handed
//! the next file; the slowest lane sets the pace of a step, never of a file.
//!
//! With few streams (a handful of large files) there are not enough to fill
//! a kernel on every core; then one thread hashes all of them in one kernel
//! while the other threads read (and copy) ahead of it.
//!
//! Without SHA extensions in the CPU this is several times faster than one
//! file per thread, for 20,000 small files and for a few large ones alike.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};

use sha256x::{digest, pad, Kernel, State, BLOCK, IV};

use crate::parallel::Slots;

/// The digest and length of one stream, or why it could not be hashed.
pub(crate) type Digested<E> = Result<([u8; 32], u64), E>;

/// How a set of streams is hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Every thread reads its own streams and hashes them `lanes` at a time.
    Lanes(Kernel),
    /// One thread hashes every stream at once; the others read ahead.
    Piped(Kernel),
}

impl Plan {
    /// Hash `count` streams this way over `threads` threads. See
    /// [`digest_streams`] and [`digest_piped`].
    pub(crate) fn digest<R, W, E>(
        self,
        count: usize,
        threads: usize,
        open: impl Fn(usize) -> Result<(R, W), E> + Sync,
        failed: impl Fn(usize, io::Error) -> E + Sync,
    ) -> Vec<Digested<E>>
    where
        R: Read,
        W: Write,
        E: Send,
    {
        match self {
            Plan::Lanes(kernel) => digest_streams(count, threads, kernel, open, failed),
            Plan::Piped(kernel) => digest_piped(count, threads, kernel, open, failed),
        }
    }

    /// What this plan does, for people.
    pub(crate) fn describe(self, threads: usize) -> String {
        match self {
            Plan::Lanes(kernel) => format!("{} on each of {threads} threads", kernel.name()),
            Plan::Piped(kernel) => format!(
                "{} on one thread, fed by {} reading",
                kernel.name(),
                threads.clamp(1, kernel.lanes())
            ),
        }
    }
}

/// Streams one kernel takes whole while other threads read: up to eight,
/// which a 256-bit kernel advances as fast per lane as a 128-bit one
/// advances four, so hashing them on one thread loses nothing and leaves the
/// reads and writes to the others: one per core, so that whenever the hasher
/// waits, or the reads and writes cost more than the hashing, every core
/// still has work (measured on 2 cores: 1.86 s instead of 1.96 s to package
/// 2 GiB in 8 files, 1.38 s instead of 1.64 s to verify them, medians of
/// nine runs). From four: fewer go faster one per thread through `ring`.
const PIPED: std::ops::RangeInclusive<usize> = 4..=8;

/// Up to this many streams, their sizes are looked at to choose the plan.
const SIZED: usize = 64;

/// How many streams carry the bytes: `n` equal streams count `n`, a few large
/// ones beside many small ones count about as many as the large ones (the
/// participation ratio (Σs)² / Σs²). `streams` when there are more than
/// [`SIZED`] (then `size` is not called) or all are empty.
pub(crate) fn bulk(streams: usize, size: impl Fn(usize) -> u64) -> usize {
    if streams > SIZED {
        return streams;
    }
    let sizes: Vec<f64> = (0..streams).map(|i| size(i) as f64).collect();
    let sum: f64 = sizes.iter().sum();
    let squares: f64 = sizes.iter().map(|s| s * s).sum();
    if squares == 0.0 {
        return streams;
    }
    ((sum * sum / squares).round() as usize).clamp(1, streams)
}

/// The plan for `streams` streams, `bulk` of which carry the bytes (see
/// [`bulk`]), over `threads` threads, or `None` when a SIMD kernel would not
/// beat one stream per thread through `ring`: the CPU has SHA instructions
/// (which `ring` uses), has no AVX2, or there are too few streams.
pub(crate) fn plan_for(streams: usize, bulk: usize, threads: usize) -> Option<Plan> {
    if sha256x::has_sha_instructions() {
        return None;
    }
    if threads >= 2 && PIPED.contains(&bulk) {
        // The small streams beside the large ones take turns in the lanes.
        let kernel = Kernel::for_streams(bulk);
        return (kernel.lanes() >= 4).then_some(Plan::Piped(kernel));
    }
    let per_thread = streams.div_ceil(threads.max(1));
    let kernel = Kernel::for_streams(per_thread);
    (per_thread >= 2 && kernel.lanes() >= 4).then_some(Plan::Lanes(kernel))
}

/// SHA-256 and length of `count` streams: `open(i)` gives stream `i`'s reader
/// and the sink its bytes are copied to as they are hashed; `failed(i, e)`
/// turns an I/O error while copying stream `i` into the caller's error.
/// Results come back in stream order.
pub(crate) fn digest_streams<R, W, E>(
    count: usize,
    threads: usize,
    kernel: Kernel,
    open: impl Fn(usize) -> Result<(R, W), E> + Sync,
    failed: impl Fn(usize, io::Error) -> E + Sync,
) -> Vec<Digested<E>>
where
    R: Read,
    W: Write,
    E: Send,
{
    let threads = threads.clamp(1, count.max(1));
    // Deal the first files out evenly: a thread fills at most its share of
    // lanes, so two threads split eight files four and four.
    let lanes = kernel.lanes().min(count.div_ceil(threads)).max(1);
    let jobs = Jobs::new(count, threads);
    let results = Slots::new(count);
    let put = |i: usize, r: Digested<E>| results.put(i, r);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (jobs, open, failed, put) = (&jobs, &open, &failed, &put);
            scope.spawn(move || run_lanes(kernel, lanes, &|| jobs.take(thread), open, failed, put));
        }
    });
    results.in_order()
}

/// The streams dealt out as one contiguous range per thread, taken from the
/// front; a thread whose range is done helps with the fullest other one.
/// Streams come sorted by path, so threads work in different folders and do
/// not queue on one folder's lock when they create files.
struct Jobs {
    /// Per thread: the next stream to take, and the end of its range.
    ranges: Vec<(AtomicUsize, usize)>,
}

impl Jobs {
    fn new(count: usize, threads: usize) -> Jobs {
        let ranges = (0..threads)
            .map(|t| {
                (
                    AtomicUsize::new(count * t / threads),
                    count * (t + 1) / threads,
                )
            })
            .collect();
        Jobs { ranges }
    }

    /// The next stream for `thread`, or `None` when all are taken.
    fn take(&self, thread: usize) -> Option<usize> {
        let claim = |t: usize| {
            let (next, end) = &self.ranges[t];
            let i = next.fetch_add(1, Ordering::Relaxed);
            (i < *end).then_some(i)
        };
        claim(thread).or_else(|| self.fullest_others(thread).into_iter().find_map(claim))
    }

    /// Other threads' ranges, the one with the most left first.
    fn fullest_others(&self, own: usize) -> Vec<usize> {
        let mut others: Vec<(usize, usize)> = self
            .ranges
            .iter()
            .enumerate()
            .filter(|(t, _)| *t != own)
            .map(|(t, (next, end))| (end.saturating_sub(next.load(Ordering::Relaxed)), t))
            .filter(|(left, _)| *left > 0)
            .collect();
        others.sort_unstable_by(|a, b| b.cmp(a));
        others.into_iter().map(|(_, t)| t).collect()
    }
}

/// Bytes a lane reads at a time: 128 KiB for up to four lanes, 64 KiB for
/// more, so one thread's buffers stay within a megabyte of cache.
fn read_size(lanes: usize) -> usize {
    if lanes <= 4 {
        128 * 1024
    } else {
        64 * 1024
    }
}

/// One open stream in a lane.
struct Lane<R, W> {
    job: usize,
    reader: R,
    sink: W,
    state: State,
    /// Bytes copied so far.
    total: u64,
    /// `buf[start..end]` is read but not yet hashed.
    start: usize,
    end: usize,
    /// The end of the stream was seen and its padding is in the buffer.
    padded: bool,
}

impl<R: Read, W: Write> Lane<R, W> {
    fn new(job: usize, reader: R, sink: W) -> Lane<R, W> {
        Lane {
            job,
            reader,
            sink,
            state: IV,
            total: 0,
            start: 0,
            end: 0,
            padded: false,
        }
    }

    /// Whole blocks ready to hash.
    fn blocks(&self) -> usize {
        (self.end - self.start) / BLOCK
    }

    /// Move the unhashed tail to the front and read until a block is ready
    /// or the stream ends, copying what is read to the sink; at the end,
    /// append the padding.
    fn refill(&mut self, buf: &mut [u8], read_size: usize) -> io::Result<()> {
        buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < BLOCK {
            let n = match self.reader.read(&mut buf[self.end..self.end + read_size]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                let (last, len) = pad(&buf[..self.end], self.total);
                buf[..len].copy_from_slice(&last[..len]);
                self.end = len;
                self.padded = true;
                return Ok(());
            }
            self.sink.write_all(&buf[self.end..self.end + n])?;
            self.end += n;
            self.total += n as u64;
        }
        Ok(())
    }
}

/// One thread's work: keep `lanes` streams going until no job is left.
fn run_lanes<R: Read, W: Write, E>(
    kernel: Kernel,
    lanes: usize,
    take: &impl Fn() -> Option<usize>,
    open: &impl Fn(usize) -> Result<(R, W), E>,
    failed: &impl Fn(usize, io::Error) -> E,
    put: &impl Fn(usize, Digested<E>),
) {
    let read_size = read_size(lanes);
    // Room for a partial block before a read and two padding blocks after.
    let mut bufs: Vec<Vec<u8>> = (0..lanes)
        .map(|_| vec![0u8; read_size + 2 * BLOCK])
        .collect();
    let mut slots: Vec<Option<Lane<R, W>>> = (0..lanes).map(|_| None).collect();
    let mut exhausted = false;
    // Make a slot hold a stream with a block ready, opening streams as
    // needed and reporting those that fail; empty once no stream is left.
    let mut ready = |slot: &mut Option<Lane<R, W>>, buf: &mut [u8]| loop {
        if slot.is_none() {
            let job = if exhausted { None } else { take() };
            let Some(job) = job else {
                exhausted = true;
                return;
            };
            match open(job) {
                Ok((reader, sink)) => *slot = Some(Lane::new(job, reader, sink)),
                Err(e) => {
                    put(job, Err(e));
                    continue;
                }
            }
        }
        let Some(lane) = slot else { return };
        if lane.blocks() > 0 || lane.padded {
            return;
        }
        if let Err(e) = lane.refill(buf, read_size) {
            put(lane.job, Err(failed(lane.job, e)));
            *slot = None;
        }
    };
    let mut states: Vec<State> = Vec::with_capacity(lanes);
    let mut active: Vec<usize> = Vec::with_capacity(lanes);
    loop {
        for (slot, buf) in slots.iter_mut().zip(bufs.iter_mut()) {
            ready(slot, buf);
        }
        active.clear();
        active.extend((0..lanes).filter(|&i| slots[i].is_some()));
        let step = active
            .iter()
            .filter_map(|&i| slots[i].as_ref().map(Lane::blocks))
            .min();
        let Some(step) = step else { break };
        states.clear();
        states.extend(
            active
                .iter()
                .filter_map(|&i| slots[i].as_ref().map(|l| l.state)),
        );
        let data: Vec<&[u8]> = active
            .iter()
            .filter_map(|&i| {
                let lane = slots[i].as_ref()?;
                Some(&bufs[i][lane.start..lane.start + step * BLOCK])
            })
            .collect();
        kernel.compress(&mut states, &data);
        for (&i, state) in active.iter().zip(&states) {
            let slot = &mut slots[i];
            if let Some(lane) = slot {
                lane.state = *state;
                lane.start += step * BLOCK;
                if lane.padded && lane.blocks() == 0 {
                    let sunk = lane.sink.flush();
                    let result = match sunk {
                        Ok(()) => Ok((digest(&lane.state), lane.total)),
                        Err(e) => Err(failed(lane.job, e)),
                    };
                    put(lane.job, result);
                    *slot = None;
                }
            }
        }
    }
}

/// Bytes a reading thread hands the hashing thread at a time.
const PIECE: usize = 128 * 1024;

/// Buffers per lane: one being hashed, the others being filled or waiting.
const DEPTH: usize = 3;

/// What a reading thread sends down a lane, in stream order.
enum Piece {
    /// A stream starts.
    Open(usize),
    /// Its next bytes: whole blocks, except for the last piece before `End`.
    Data(Vec<u8>),
    /// It ended after this many bytes, all sent and copied.
    End(u64),
    /// It failed; the reader has reported why.
    Failed,
}

/// SHA-256 and length of `count` streams, as [`digest_streams`], on
/// `readers` threads that open, read and copy the streams (each looks after
/// some of the lanes) and the calling thread, which hashes every lane at
/// once. A lane's buffers come back to the thread that filled them, so a
/// lane the hasher waits for always has one free: the threads cannot wait
/// for each other in a circle.
pub(crate) fn digest_piped<R, W, E>(
    count: usize,
    readers: usize,
    kernel: Kernel,
    open: impl Fn(usize) -> Result<(R, W), E> + Sync,
    failed: impl Fn(usize, io::Error) -> E + Sync,
) -> Vec<Digested<E>>
where
    R: Read,
    W: Write,
    E: Send,
{
    let lanes = kernel.lanes().min(count).max(1);
    let readers = readers.clamp(1, lanes);
    let next = AtomicUsize::new(0);
    let results = Slots::new(count);
    let put = |i: usize, r: Digested<E>| results.put(i, r);
    let mut to_hasher = Vec::with_capacity(lanes);
    let mut from_readers = Vec::with_capacity(lanes);
    for _ in 0..lanes {
        let (tx, rx) = channel::<Piece>();
        to_hasher.push(Some(tx));
        from_readers.push(rx);
    }
    let mut returns = Vec::with_capacity(readers);
    let mut recycled = Vec::with_capacity(readers);
    for _ in 0..readers {
        let (tx, rx) = channel::<(usize, Vec<u8>)>();
        returns.push(tx);
        recycled.push(Some(rx));
    }
    std::thread::scope(|scope| {
        for (reader, recycled) in recycled.iter_mut().enumerate() {
            let mine: Vec<(usize, Sender<Piece>)> = (reader..lanes)
                .step_by(readers)
                .filter_map(|lane| Some((lane, to_hasher[lane].take()?)))
                .collect();
            let Some(recycled) = recycled.take() else {
                continue;
            };
            let take = || {
                let i = next.fetch_add(1, Ordering::Relaxed);
                (i < count).then_some(i)
            };
            let (open, failed, put) = (&open, &failed, &put);
            scope.spawn(move || feed_lanes(mine, &recycled, &take, open, failed, put));
        }
        hash_lanes(kernel, from_readers, &returns, readers, &put);
    });
    results.in_order()
}

/// A reading thread's lane: the stream it is copying, and the buffers it may
/// fill.
struct Feed<R, W> {
    lane: usize,
    down: Sender<Piece>,
    stream: Option<(usize, R, W, u64)>,
    free: Vec<Vec<u8>>,
}

/// A reading thread: keep each of its lanes supplied with pieces until no
/// stream is left, then close them.
fn feed_lanes<R: Read, W: Write, E>(
    lanes: Vec<(usize, Sender<Piece>)>,
    recycled: &Receiver<(usize, Vec<u8>)>,
    take: &impl Fn() -> Option<usize>,
    open: &impl Fn(usize) -> Result<(R, W), E>,
    failed: &impl Fn(usize, io::Error) -> E,
    put: &impl Fn(usize, Digested<E>),
) {
    let mut feeds: Vec<Feed<R, W>> = lanes
        .into_iter()
        .map(|(lane, down)| Feed {
            lane,
            down,
            stream: None,
            free: (0..DEPTH).map(|_| vec![0u8; PIECE]).collect(),
        })
        .collect();
    let mut exhausted = false;
    while !feeds.is_empty() {
        while let Ok((lane, buf)) = recycled.try_recv() {
            if let Some(feed) = feeds.iter_mut().find(|f| f.lane == lane) {
                feed.free.push(buf);
            }
        }
        let mut progressed = false;
        let mut i = 0;
        while i < feeds.len() {
            let feed = &mut feeds[i];
            if feed.stream.is_none() {
                progressed = true;
                let job = if exhausted { None } else { take() };
                let Some(job) = job else {
                    // Dropping the sender tells the hasher the lane is done.
                    exhausted = true;
                    feeds.swap_remove(i);
                    continue;
                };
                match open(job) {
                    Ok((reader, sink)) => {
                        feed.stream = Some((job, reader, sink, 0));
                        if feed.down.send(Piece::Open(job)).is_err() {
                            return;
                        }
                    }
                    Err(e) => put(job, Err(e)),
                }
            } else if let Some(buf) = feed.free.pop() {
                progressed = true;
                if feed_piece(feed, buf, failed, put).is_err() {
                    return;
                }
            }
            i += 1;
        }
        if !progressed {
            // Every lane has its buffers in flight: wait for one back.
            match recycled.recv() {
                Ok((lane, buf)) => {
                    if let Some(feed) = feeds.iter_mut().find(|f| f.lane == lane) {
                        feed.free.push(buf);
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// Fill `buf` from the lane's stream (to the end of the stream or of the
/// buffer), copy it to the sink and send it down, followed by `End` or
/// `Failed` when the stream is over. Errs only when the hasher is gone.
fn feed_piece<R: Read, W: Write, E>(
    feed: &mut Feed<R, W>,
    mut buf: Vec<u8>,
    failed: &impl Fn(usize, io::Error) -> E,
    put: &impl Fn(usize, Digested<E>),
) -> Result<(), ()> {
    let Some((job, reader, sink, total)) = feed.stream.as_mut() else {
        feed.free.push(buf);
        return Ok(());
    };
    buf.resize(PIECE, 0);
    let mut filled = 0;
    let mut ended = false;
    let outcome = loop {
        if filled == buf.len() {
            break Ok(());
        }
        match reader.read(&mut buf[filled..]) {
            Ok(0) => {
                ended = true;
                break Ok(());
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let outcome = outcome
        .and_then(|()| sink.write_all(&buf[..filled]))
        .and_then(|()| if ended { sink.flush() } else { Ok(()) });
    let job = *job;
    *total += filled as u64;
    let total = *total;
    let mut pieces = Vec::with_capacity(2);
    match outcome {
        Err(e) => {
            put(job, Err(failed(job, e)));
            feed.free.push(buf);
            feed.stream = None;
            pieces.push(Piece::Failed);
        }
        Ok(()) => {
            if filled > 0 {
                buf.truncate(filled);
                pieces.push(Piece::Data(buf));
            } else {
                feed.free.push(buf);
            }
            if ended {
                feed.stream = None;
                pieces.push(Piece::End(total));
            }
        }
    }
    for piece in pieces {
        feed.down.send(piece).map_err(|_| ())?;
    }
    Ok(())
}

/// The hashing thread's view of a lane.
struct Pipe {
    up: Receiver<Piece>,
    /// The reading thread the lane's buffers go back to.
    back: usize,
    /// The stream being hashed: its job, state and (once ended) length.
    stream: Option<(usize, State, u64)>,
    /// The bytes being hashed, `bytes[start..end]` still to go (whole blocks).
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    /// `bytes` is a reader's buffer, to be given back when hashed.
    lent: bool,
    /// `bytes` is the stream's padding: when hashed, the stream is done.
    last: bool,
    /// The bytes after the last whole block, kept for the padding.
    tail: Vec<u8>,
    closed: bool,
}

impl Pipe {
    fn blocks(&self) -> usize {
        (self.end - self.start) / BLOCK
    }

    /// Take pieces until a block is ready or the lane is closed.
    fn fill(&mut self, lane: usize, returns: &[Sender<(usize, Vec<u8>)>]) {
        while self.blocks() == 0 && !self.closed {
            self.give_back(lane, returns);
            match self.up.recv() {
                Err(_) => self.closed = true,
                Ok(Piece::Open(job)) => {
                    self.stream = Some((job, IV, 0));
                    self.tail.clear();
                }
                Ok(Piece::Data(bytes)) => {
                    let whole = bytes.len() / BLOCK * BLOCK;
                    self.tail.extend_from_slice(&bytes[whole..]);
                    self.bytes = bytes;
                    (self.start, self.end, self.lent, self.last) = (0, whole, true, false);
                }
                Ok(Piece::End(total)) => {
                    let (padding, len) = pad(&self.tail, total);
                    self.bytes = padding[..len].to_vec();
                    (self.start, self.end, self.lent, self.last) = (0, len, false, true);
                    if let Some((_, _, length)) = self.stream.as_mut() {
                        *length = total;
                    }
                }
                Ok(Piece::Failed) => self.stream = None,
            }
        }
    }

    /// Hand a hashed reader's buffer back to the thread that filled it.
    fn give_back(&mut self, lane: usize, returns: &[Sender<(usize, Vec<u8>)>]) {
        if self.lent {
            self.lent = false;
            let buf = std::mem::take(&mut self.bytes);
            // A reader that has left no longer needs it.
            let _ = returns[self.back].send((lane, buf));
        }
    }
}

/// The hashing thread: advance every lane that has blocks ready, one kernel
/// call at a time, until every lane is closed.
fn hash_lanes<E>(
    kernel: Kernel,
    from_readers: Vec<Receiver<Piece>>,
    returns: &[Sender<(usize, Vec<u8>)>],
    readers: usize,
    put: &impl Fn(usize, Digested<E>),
) {
    let mut pipes: Vec<Pipe> = from_readers
        .into_iter()
        .enumerate()
        .map(|(lane, up)| Pipe {
            up,
            back: lane % readers,
            stream: None,
            bytes: Vec::new(),
            start: 0,
            end: 0,
            lent: false,
            last: false,
            tail: Vec::with_capacity(BLOCK),
            closed: false,
        })
        .collect();
    let mut states: Vec<State> = Vec::with_capacity(pipes.len());
    let mut active: Vec<usize> = Vec::with_capacity(pipes.len());
    loop {
        for (lane, pipe) in pipes.iter_mut().enumerate() {
            pipe.fill(lane, returns);
        }
        active.clear();
        active.extend((0..pipes.len()).filter(|&i| pipes[i].blocks() > 0));
        let Some(step) = active.iter().map(|&i| pipes[i].blocks()).min() else {
            break;
        };
        states.clear();
        states.extend(
            active
                .iter()
                .map(|&i| pipes[i].stream.map_or(IV, |(_, state, _)| state)),
        );
        let data: Vec<&[u8]> = active
            .iter()
            .map(|&i| &pipes[i].bytes[pipes[i].start..pipes[i].start + step * BLOCK])
            .collect();
        kernel.compress(&mut states, &data);
        for (&i, state) in active.iter().zip(&states) {
            let pipe = &mut pipes[i];
            pipe.start += step * BLOCK;
            if let Some((_, s, _)) = pipe.stream.as_mut() {
                *s = *state;
            }
            if pipe.last && pipe.blocks() == 0 {
                pipe.last = false;
                if let Some((job, state, total)) = pipe.stream.take() {
                    put(job, Ok((digest(&state), total)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Mutex;

    fn sha256(bytes: &[u8]) -> [u8; 32] {
        let d = ring::digest::digest(&ring::digest::SHA256, bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// A reader that hands out at most `step` bytes a call, and fails at
    /// `fail_at` bytes if set.
    struct Trickle<'a> {
        data: &'a [u8],
        at: usize,
        step: usize,
        fail_at: Option<usize>,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.at >= f) {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn run(
        messages: &[Vec<u8>],
        steps: &[usize],
        plan: Plan,
        threads: usize,
    ) -> Vec<Digested<String>> {
        plan.digest(
            messages.len(),
            threads,
            |i| -> Result<_, String> {
                if messages[i].len() == 13 {
                    return Err(format!("cannot open {i}"));
                }
                let reader = Trickle {
                    data: &messages[i],
                    at: 0,
                    step: steps[i % steps.len()],
                    fail_at: (messages[i].len() == 777).then_some(500),
                };
                Ok((reader, Vec::new()))
            },
            |i, e| format!("stream {i}: {e}"),
        )
    }

    fn expected(messages: &[Vec<u8>]) -> Vec<Digested<String>> {
        messages
            .iter()
            .enumerate()
            .map(|(i, m)| match m.len() {
                13 => Err(format!("cannot open {i}")),
                777 => Err(format!("stream {i}: disk on fire")),
                _ => Ok((sha256(m), m.len() as u64)),
            })
            .collect()
    }

    #[test]
    fn every_kernel_matches_ring_and_reports_failures_in_order() {
        let lengths = [
            0, 1, 55, 56, 63, 64, 65, 13, 4096, 777, 300_000, 119, 120, 1000,
        ];
        let messages: Vec<Vec<u8>> = lengths
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
            .collect();
        for kernel in Kernel::available() {
            for plan in [Plan::Lanes(kernel), Plan::Piped(kernel)] {
                for threads in [1, 2, 3] {
                    let got = run(&messages, &[7, 4096, 200_000], plan, threads);
                    assert_eq!(got, expected(&messages), "{plan:?} x{threads}");
                }
            }
        }
    }

    #[test]
    fn piped_lanes_survive_a_slow_reader_and_uneven_files() {
        // One huge stream beside many tiny ones: the hasher waits on one
        // lane while the others come and go, which must not stall anyone.
        let mut lengths = vec![3_000_000];
        lengths.extend((0..40).map(|n| n * 97));
        lengths.push(13);
        lengths.push(777);
        let messages: Vec<Vec<u8>> = lengths
            .iter()
            .map(|&n| (0..n).map(|i| (i % 253) as u8).collect())
            .collect();
        for readers in [1, 2, 5] {
            let got = run(
                &messages,
                &[1, 65, 131_072],
                Plan::Piped(Kernel::for_streams(8)),
                readers,
            );
            assert_eq!(got, expected(&messages), "{readers} readers");
        }
    }

    #[test]
    fn few_streams_are_piped_and_many_are_laned() {
        if sha256x::has_sha_instructions() || Kernel::for_streams(8).lanes() < 8 {
            return;
        }
        assert!(matches!(plan_for(8, 8, 2), Some(Plan::Piped(k)) if k.lanes() == 8));
        assert!(matches!(plan_for(4, 4, 2), Some(Plan::Piped(k)) if k.lanes() == 4));
        // Eight large files among small ones: piped, the small ones in turn.
        assert!(matches!(plan_for(30, 8, 2), Some(Plan::Piped(k)) if k.lanes() == 8));
        assert!(matches!(plan_for(8, 8, 1), Some(Plan::Lanes(_))));
        assert!(matches!(plan_for(20_000, 20_000, 2), Some(Plan::Lanes(k)) if k.lanes() >= 8));
        assert_eq!(plan_for(2, 2, 2), None);
    }

    #[test]
    fn bulk_counts_the_streams_that_carry_the_bytes() {
        let sizes = |v: Vec<u64>| move |i: usize| v[i];
        assert_eq!(bulk(8, sizes(vec![1 << 28; 8])), 8);
        let mut mixed = vec![1 << 28; 8];
        mixed.extend([0, 300, 4096, 12]);
        assert_eq!(bulk(12, sizes(mixed)), 8);
        assert_eq!(bulk(3, sizes(vec![0, 0, 0])), 3);
        assert_eq!(bulk(2, sizes(vec![1000, 1])), 1);
        // Many streams: counted, not measured.
        assert_eq!(bulk(SIZED + 1, |_| unreachable!()), SIZED + 1);
    }

    #[test]
    fn the_copy_is_the_input() {
        let messages: Vec<Vec<u8>> = (0..9).map(|n| vec![n as u8; 70_000 * n]).collect();
        for plan in [
            Plan::Lanes(Kernel::for_streams(16)),
            Plan::Piped(Kernel::for_streams(8)),
        ] {
            let sinks: Vec<Mutex<Vec<u8>>> =
                messages.iter().map(|_| Mutex::new(Vec::new())).collect();
            let got = plan.digest(
                messages.len(),
                2,
                |i| -> Result<_, io::Error> { Ok((&messages[i][..], SinkRef(&sinks[i]))) },
                |_, e| e,
            );
            assert_eq!(got.len(), messages.len());
            for ((m, sink), r) in messages.iter().zip(&sinks).zip(got) {
                assert_eq!(r.ok(), Some((sha256(m), m.len() as u64)));
                assert_eq!(&*sink.lock().unwrap_or_else(|p| p.into_inner()), m);
            }
        }
    }

    struct SinkRef<'a>(&'a Mutex<Vec<u8>>);

    impl Write for SinkRef<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut v = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
            v.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_mix_of_lengths_and_read_sizes(
            lengths in prop::collection::vec(0usize..5000, 0..60),
            steps in prop::collection::vec(1usize..9000, 1..5),
            threads in 1usize..4,
        ) {
            let messages: Vec<Vec<u8>> = lengths
                .iter()
                .enumerate()
                .map(|(k, &n)| (0..n).map(|i| (i * 7 + k) as u8).collect())
                .collect();
            let kernel = Kernel::for_streams(lengths.len().div_ceil(threads));
            prop_assert_eq!(run(&messages, &steps, Plan::Lanes(kernel), threads), expected(&messages));
            let kernel = Kernel::for_streams(lengths.len().min(8));
            prop_assert_eq!(run(&messages, &steps, Plan::Piped(kernel), threads + 1), expected(&messages));
        }
    }
}
