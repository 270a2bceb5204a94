//! Packages read in place from somewhere only reachable by ranges of bytes
//! (an object store's ranged GETs): the [`RangeSource`] the caller implements,
//! and the block cache through which verification reads it, so that the many
//! small reads of opening a zip (the central directory, every entry's local
//! header) and the sequential reads of hashing become few large requests.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

/// Bytes reachable by offset and length, from any thread: an object in an
/// object store read with ranged GETs. The bag crate does no network I/O;
/// the application implements this over its client.
pub trait RangeSource: Sync {
    /// The total length in bytes.
    fn len(&self) -> u64;

    /// Whether it holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` with the bytes at `offset` (fewer only at the end).
    ///
    /// # Errors
    /// When the range cannot be read; the message names the object.
    fn read_range(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// What it is, for messages (`s3://bucket/key`).
    fn name(&self) -> String;
}

/// Size of one cached block: one request each.
const BLOCK: u64 = 8 << 20;
/// Blocks kept (most recently used last): enough for every hashing thread's
/// current block plus the archive's directory.
const KEPT: usize = 16;

/// A [`RangeSource`] read through a small cache of aligned blocks.
pub(crate) struct BlockCache<'a> {
    source: &'a dyn RangeSource,
    blocks: Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>,
}

impl<'a> BlockCache<'a> {
    pub(crate) fn new(source: &'a dyn RangeSource) -> Self {
        BlockCache {
            source,
            blocks: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.source.len()
    }

    fn block(&self, index: u64) -> io::Result<Arc<Vec<u8>>> {
        {
            let mut blocks = self
                .blocks
                .lock()
                .map_err(|_| io::Error::other("block cache poisoned"))?;
            if let Some(at) = blocks.iter().position(|(i, _)| *i == index) {
                let hit = blocks.remove(at).ok_or_else(|| io::Error::other("cache"))?;
                let data = hit.1.clone();
                blocks.push_back(hit);
                return Ok(data);
            }
        }
        // Fetched without holding the lock, so threads read blocks at once.
        let start = index.saturating_mul(BLOCK);
        let want = BLOCK.min(self.len().saturating_sub(start));
        let mut data = vec![0u8; usize::try_from(want).map_err(io::Error::other)?];
        let mut done = 0;
        while done < data.len() {
            match self
                .source
                .read_range(start + done as u64, &mut data[done..])
            {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} ended early", self.source.name()),
                    ))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let data = Arc::new(data);
        let mut blocks = self
            .blocks
            .lock()
            .map_err(|_| io::Error::other("block cache poisoned"))?;
        if blocks.len() >= KEPT {
            blocks.pop_front();
        }
        blocks.push_back((index, data.clone()));
        Ok(data)
    }

    /// Read at `offset`, at most to the end of its block (0 only at the end).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len() || buf.is_empty() {
            return Ok(0);
        }
        let block = self.block(offset / BLOCK)?;
        let within = usize::try_from(offset % BLOCK).map_err(io::Error::other)?;
        let n = buf.len().min(block.len().saturating_sub(within));
        buf[..n].copy_from_slice(&block[within..within + n]);
        Ok(n)
    }
}

/// A `Read + Seek` cursor over a [`BlockCache`], for the zip parser.
pub(crate) struct Cursor<'a> {
    cache: &'a BlockCache<'a>,
    pos: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(cache: &'a BlockCache<'a>) -> Self {
        Cursor { cache, pos: 0 }
    }
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.cache.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cursor<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = seek_target(pos, self.pos, || Ok(self.cache.len()))?;
        Ok(self.pos)
    }
}

/// Where a seek to `pos` lands from `current` in bytes `len` long (asked
/// only for a seek from the end), for cursors that read by position.
pub(crate) fn seek_target(
    pos: SeekFrom,
    current: u64,
    len: impl FnOnce() -> io::Result<u64>,
) -> io::Result<u64> {
    let to = match pos {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => len()?.checked_add_signed(d),
        SeekFrom::Current(d) => current.checked_add_signed(d),
    };
    to.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Vec<u8>, AtomicUsize);

    impl RangeSource for Counted {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_range(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            self.1.fetch_add(1, Ordering::Relaxed);
            let at = offset as usize;
            let n = buf.len().min(self.0.len() - at);
            buf[..n].copy_from_slice(&self.0[at..at + n]);
            Ok(n)
        }
        fn name(&self) -> String {
            "memory".into()
        }
    }

    #[test]
    fn reads_through_few_requests_and_seeks() {
        let data: Vec<u8> = (0..(BLOCK as usize * 2 + 100))
            .map(|i| (i % 251) as u8)
            .collect();
        let source = Counted(data.clone(), AtomicUsize::new(0));
        let cache = BlockCache::new(&source);
        let mut cursor = Cursor::new(&cache);
        let mut all = Vec::new();
        cursor.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        assert_eq!(source.1.load(Ordering::Relaxed), 3);
        cursor.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        cursor.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, data[data.len() - 10..]);
        assert_eq!(source.1.load(Ordering::Relaxed), 3, "a cached block");
        assert!(cursor
            .seek(SeekFrom::Current(-(data.len() as i64) - 1))
            .is_err());
    }
}
