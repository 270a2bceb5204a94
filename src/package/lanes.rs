//! SHA-256 of many files at once: each thread keeps as many files open as
//! its SIMD kernel has lanes and advances all of them with one instruction
//! stream (`sha256x`). A lane whose file ends is padded, finished and handed
//! the next file; the slowest lane sets the pace of a step, never of a file.
//!
//! Without SHA extensions in the CPU this is several times faster than one
//! file per thread, for 20,000 small files and for a few large ones alike.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha256x::{digest, pad, Kernel, State, BLOCK, IV};

/// The digest and length of one stream, or why it could not be hashed.
pub(crate) type Digested<E> = Result<([u8; 32], u64), E>;

/// The kernel for `streams` streams over `threads` threads, or `None` when
/// a SIMD kernel would not beat one stream per thread through `ring`: the
/// CPU has SHA instructions (which `ring` uses), has no AVX2, or there is
/// one stream a thread.
pub(crate) fn kernel_for(streams: usize, threads: usize) -> Option<Kernel> {
    if sha256x::has_sha_instructions() {
        return None;
    }
    let per_thread = streams.div_ceil(threads.max(1));
    let kernel = Kernel::for_streams(per_thread);
    (per_thread >= 2 && kernel.lanes() >= 4).then_some(kernel)
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
    let results: Mutex<Vec<Option<Digested<E>>>> = Mutex::new((0..count).map(|_| None).collect());
    let put = |i: usize, r: Digested<E>| {
        if let Ok(mut slots) = results.lock() {
            slots[i] = Some(r);
        }
    };
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (jobs, open, failed, put) = (&jobs, &open, &failed, &put);
            scope.spawn(move || run_lanes(kernel, lanes, &|| jobs.take(thread), open, failed, put));
        }
    });
    super::hash::in_order(results)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        kernel: Kernel,
        threads: usize,
    ) -> Vec<Digested<String>> {
        digest_streams(
            messages.len(),
            threads,
            kernel,
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
            for threads in [1, 2, 3] {
                let got = run(&messages, &[7, 4096, 200_000], kernel, threads);
                assert_eq!(got, expected(&messages), "{} x{threads}", kernel.name());
            }
        }
    }

    #[test]
    fn the_copy_is_the_input() {
        let messages: Vec<Vec<u8>> = (0..9).map(|n| vec![n as u8; 70_000 * n]).collect();
        let sinks: Vec<Mutex<Vec<u8>>> = messages.iter().map(|_| Mutex::new(Vec::new())).collect();
        let kernel = Kernel::for_streams(16);
        let got = digest_streams(
            messages.len(),
            2,
            kernel,
            |i| -> Result<_, io::Error> { Ok((&messages[i][..], SinkRef(&sinks[i]))) },
            |_, e| e,
        );
        assert_eq!(got.len(), messages.len());
        for ((m, sink), r) in messages.iter().zip(&sinks).zip(got) {
            assert_eq!(r.ok(), Some((sha256(m), m.len() as u64)));
            assert_eq!(&*sink.lock().unwrap_or_else(|p| p.into_inner()), m);
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
            prop_assert_eq!(run(&messages, &steps, kernel, threads), expected(&messages));
        }
    }
}
