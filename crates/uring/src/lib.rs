//! Reading many small files with few system calls: Linux's io_uring opens,
//! reads and closes a whole batch of files in one `io_uring_enter`, where
//! plain calls cost an `openat`, a `read` and a `close` each. Verifying a
//! package of 20,000 small files is bound by those calls, not by hashing.
//!
//! [`Batch::new`] gives `None` where the kernel refuses io_uring (older than
//! 5.19, a container's seccomp profile, `kernel.io_uring_disabled`), and
//! everywhere but Linux. [`Batch::with_calls`] gives the same batch made of
//! plain system calls, a file at a time (an `openat`, one `read`, a `close`:
//! no `fstat`, no read that only finds the end), for Linux without io_uring;
//! [`Batch::best`] takes the ring where there is one. Callers keep their
//! plain path for any file a batch could not read whole.
//!
//! Each file is opened into a slot of the ring's own file table (a "direct
//! descriptor": no entry in the process's file table to take and give back),
//! read from its start into the slot's buffer, and closed, as one linked
//! chain of three requests. The only `unsafe` is handing the kernel
//! pointers to a name and a buffer; both belong to the batch, which does not
//! return, reuse or free them before the kernel has completed every request
//! that refers to them.

#[cfg(target_os = "linux")]
mod calls;
#[cfg(target_os = "linux")]
mod linux;

use std::ffi::CStr;
use std::io;
use std::os::fd::BorrowedFd;

/// What reading one file of a batch gave.
#[derive(Debug)]
pub enum Read<'a> {
    /// Fewer bytes than the slot's buffer holds: for a regular file, its
    /// whole content (possibly empty).
    Short(&'a [u8]),
    /// The buffer filled: the file may hold more.
    Full,
    /// Opening or reading failed (`ELOOP` for a symlink opened without
    /// following it, `EISDIR` for a folder, `EAGAIN` for an empty FIFO...).
    Failed(io::Error),
}

/// One buffer per slot: 1 to 1,024 slots, each of 1 byte to 4 GiB (a read's
/// length is 32 bits in io_uring).
#[cfg(target_os = "linux")]
fn slot_buffers(slots: usize, buffer: usize) -> Vec<Box<[u8]>> {
    let buffer = buffer.clamp(1, u32::MAX as usize);
    (0..slots.clamp(1, 1024))
        .map(|_| vec![0u8; buffer].into_boxed_slice())
        .collect()
}

/// Refuses a batch of more `files` than `slots`.
#[cfg(target_os = "linux")]
fn fits(files: usize, slots: usize) -> io::Result<()> {
    if files > slots {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "more files than the batch has slots",
        ));
    }
    Ok(())
}

/// What reading into `buffer` gave: `read` bytes, or why not.
#[cfg(target_os = "linux")]
fn outcome(buffer: &[u8], read: io::Result<usize>) -> Read<'_> {
    match read {
        Err(e) => Read::Failed(e),
        Ok(n) if n < buffer.len() => Read::Short(&buffer[..n]),
        Ok(_) => Read::Full,
    }
}

/// A batch of `slots` files read at once, each into a buffer of its own,
/// through io_uring or with plain calls; one per thread.
pub struct Batch {
    #[cfg(target_os = "linux")]
    inner: Inner,
}

#[cfg(target_os = "linux")]
enum Inner {
    Ring(Box<linux::Ring>),
    Calls(calls::Calls),
}

impl Batch {
    /// A ring of `slots` files, each read into a buffer of `buffer` bytes;
    /// `None` where io_uring (with direct descriptors) is not available.
    pub fn new(slots: usize, buffer: usize) -> Option<Batch> {
        #[cfg(target_os = "linux")]
        {
            linux::Ring::new(slots, buffer).map(|ring| Batch {
                inner: Inner::Ring(Box::new(ring)),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (slots, buffer);
            None
        }
    }

    /// The same batch read with plain system calls, one file at a time:
    /// for Linux without io_uring. `None` on other systems.
    pub fn with_calls(slots: usize, buffer: usize) -> Option<Batch> {
        #[cfg(target_os = "linux")]
        {
            Some(Batch {
                inner: Inner::Calls(calls::Calls::new(slots, buffer)),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (slots, buffer);
            None
        }
    }

    /// A ring where the kernel gives one, otherwise [`Batch::with_calls`].
    pub fn best(slots: usize, buffer: usize) -> Option<Batch> {
        Batch::new(slots, buffer).or_else(|| Batch::with_calls(slots, buffer))
    }

    /// Whether this batch goes through io_uring.
    pub fn is_ring(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            matches!(self.inner, Inner::Ring(_))
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Whether this kernel gives io_uring with direct descriptors (whether
    /// [`Batch::new`] can succeed), asked once per process.
    pub fn available() -> bool {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(|| Batch::new(1, 1).is_some())
    }

    /// How many files one call to [`Batch::read`] takes at most.
    pub fn slots(&self) -> usize {
        #[cfg(target_os = "linux")]
        {
            match &self.inner {
                Inner::Ring(ring) => ring.slots(),
                Inner::Calls(calls) => calls.slots(),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            0
        }
    }

    /// Open each of `files` (a name relative to a folder's descriptor)
    /// read-only, without following a symlink and without waiting on a FIFO
    /// (`O_NOFOLLOW | O_NONBLOCK`), and with `noatime` without updating its
    /// access time (`O_NOATIME`: only the file's owner may, others get
    /// `EPERM`); read it from its start into its slot's buffer and close it.
    /// Returns each file's outcome, in the order of `files`, its bytes
    /// borrowed from the batch until the next read. At most
    /// [`Batch::slots`] files.
    ///
    /// # Errors
    /// When the ring itself fails (no outcome was given then); the batch
    /// cannot be used again. Also when `files` are more than its slots.
    pub fn read(
        &mut self,
        files: &[(BorrowedFd<'_>, &CStr)],
        noatime: bool,
    ) -> io::Result<Vec<Read<'_>>> {
        #[cfg(target_os = "linux")]
        {
            match &mut self.inner {
                Inner::Ring(ring) => ring.read(files, noatime),
                Inner::Calls(calls) => calls.read(files, noatime),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (files, noatime);
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs::File;

    fn names(list: &[&str]) -> Vec<CString> {
        list.iter()
            .map(|n| CString::new(*n).expect("no NUL"))
            .collect()
    }

    #[test]
    fn a_ring_reads_small_files_whole_and_tells_what_it_could_not_read() {
        match Batch::new(4, 16) {
            Some(batch) => {
                assert!(batch.is_ring());
                reads_small_files_whole_and_tells_what_it_could_not_read(batch);
            }
            // The kernel refuses io_uring here: only the calls are tested.
            None => assert!(!Batch::available()),
        }
    }

    #[test]
    fn plain_calls_read_the_same() {
        let batch = Batch::with_calls(4, 16).expect("Linux");
        assert!(!batch.is_ring());
        reads_small_files_whole_and_tells_what_it_could_not_read(batch);
    }

    #[test]
    fn the_best_batch_is_a_ring_where_the_kernel_gives_one() {
        let best = Batch::best(4, 16).expect("Linux");
        assert_eq!(best.is_ring(), Batch::available());
    }

    fn reads_small_files_whole_and_tells_what_it_could_not_read(mut batch: Batch) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("small"), b"hello").expect("write");
        std::fs::write(dir.path().join("empty"), b"").expect("write");
        std::fs::write(dir.path().join("large"), [7u8; 40]).expect("write");
        std::fs::create_dir(dir.path().join("folder")).expect("mkdir");
        std::os::unix::fs::symlink(dir.path().join("small"), dir.path().join("link"))
            .expect("symlink");
        let folder = File::open(dir.path()).expect("open folder");
        let fd = std::os::fd::AsFd::as_fd(&folder);

        // More than one round, so that every slot is used twice.
        let list = names(&["small", "empty", "large", "missing", "link", "folder"]);
        let mut seen = Vec::new();
        for chunk in list.chunks(batch.slots()).enumerate() {
            let (round, chunk) = chunk;
            let files: Vec<_> = chunk.iter().map(|n| (fd, n.as_c_str())).collect();
            let outcomes = batch.read(&files, true).expect("the batch works");
            assert_eq!(outcomes.len(), files.len());
            for (i, read) in outcomes.into_iter().enumerate() {
                let what = match read {
                    Read::Short(bytes) => format!("short {:?}", String::from_utf8_lossy(bytes)),
                    Read::Full => "full".to_owned(),
                    Read::Failed(e) => format!("failed {:?}", e.raw_os_error()),
                };
                seen.push((round * 4 + i, what));
            }
        }
        seen.sort();
        let expected = [
            (0, "short \"hello\"".to_owned()),
            (1, "short \"\"".to_owned()),
            (2, "full".to_owned()),
            (3, format!("failed Some({})", libc::ENOENT)),
            (4, format!("failed Some({})", libc::ELOOP)),
            (5, format!("failed Some({})", libc::EISDIR)),
        ];
        assert_eq!(seen, expected);

        // The same slots again: nothing left over from the last round.
        let again = names(&["small"]);
        let outcomes = batch
            .read(&[(fd, again[0].as_c_str())], false)
            .expect("the batch works");
        assert!(matches!(outcomes[..], [Read::Short(b"hello")]));

        // More files than slots: refused, the batch still usable.
        let many: Vec<_> = (0..=batch.slots())
            .map(|_| (fd, again[0].as_c_str()))
            .collect();
        let refused = batch.read(&many, false).map(|_| ()).expect_err("too many");
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
        let slots = batch.slots();
        let outcomes = batch.read(&many[1..], false).expect("the batch works");
        assert_eq!(outcomes.len(), slots);
        assert!(outcomes.iter().all(|r| matches!(r, Read::Short(b"hello"))));
    }
}
