//! Reading a file of known size without the read that only finds its end.
//!
//! Verifying 20,000 small files is bound by system calls, not hashing: each
//! file costs an open, a status, a read of its bytes, a read that returns
//! nothing, and a close. A read of a regular file that returns fewer bytes
//! than asked for stopped at the end of the file; when the bytes read so far
//! are also exactly the size the listing saw, the file is complete and the
//! empty read is skipped. Anything else (a file that grew or shrank since
//! the listing, a file system that returns short reads) reads on until a
//! read returns nothing, as before.

use std::io::{self, Read};

/// A reader of a regular file listed with `size` bytes.
pub(crate) struct KnownSize<R> {
    inner: R,
    /// The size the listing saw.
    size: u64,
    /// Bytes read so far.
    read: u64,
    /// A short read ended exactly at `size`.
    done: bool,
}

impl<R: Read> KnownSize<R> {
    /// Read `inner`, listed with `size` bytes.
    pub(crate) fn new(inner: R, size: u64) -> KnownSize<R> {
        KnownSize {
            inner,
            size,
            read: 0,
            done: false,
        }
    }
}

impl<R: Read> Read for KnownSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if n > 0 && n < buf.len() && self.read == self.size {
            self.done = true;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts reads, and returns at most `step` bytes a read.
    struct Counting<'a> {
        bytes: &'a [u8],
        step: usize,
        reads: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = buf.len().min(self.step).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn read_all(bytes: &[u8], step: usize, listed: u64) -> (Vec<u8>, usize) {
        let mut inner = Counting {
            bytes,
            step,
            reads: 0,
        };
        let mut out = Vec::new();
        let mut buf = [0u8; 16];
        let mut reader = KnownSize::new(&mut inner, listed);
        loop {
            let n = reader.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        (out, inner.reads)
    }

    #[test]
    fn a_file_of_its_listed_size_takes_one_read() {
        let (out, reads) = read_all(b"0123456789", 64, 10);
        assert_eq!((out.as_slice(), reads), (&b"0123456789"[..], 1));
    }

    #[test]
    fn anything_else_reads_to_the_end() {
        let bytes = b"0123456789abcdefghijklmnopqrstuvwxyz";
        // Grew since the listing, shrank, short reads, a buffer-sized file.
        for (step, listed) in [(64, 10), (64, 40), (5, 36), (64, 0)] {
            let (out, _) = read_all(bytes, step, listed);
            assert_eq!(out, bytes);
        }
        let (out, reads) = read_all(&bytes[..16], 64, 16);
        assert_eq!(
            (out.len(), reads),
            (16, 2),
            "a full buffer is no proof of the end"
        );
    }
}
