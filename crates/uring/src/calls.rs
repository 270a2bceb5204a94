//! The batch behind [`super::Batch::with_calls`]: the same opens, reads and
//! closes as the ring's, made one system call at a time where the kernel
//! refuses io_uring. A file costs an `openat`, one `read` and a `close`
//! (the plain path adds an `fstat` and reads until a read returns nothing).

use std::ffi::CStr;
use std::io;
use std::os::fd::BorrowedFd;

use rustix::fs::{openat, Mode, OFlags};
use rustix::io::Errno;

use super::Read;

pub(crate) struct Calls {
    /// One buffer per slot.
    buffers: Vec<Box<[u8]>>,
}

impl Calls {
    pub(crate) fn new(slots: usize, buffer: usize) -> Calls {
        let (slots, buffer) = (slots.clamp(1, 1024), buffer.max(1));
        Calls {
            buffers: (0..slots)
                .map(|_| vec![0u8; buffer].into_boxed_slice())
                .collect(),
        }
    }

    pub(crate) fn slots(&self) -> usize {
        self.buffers.len()
    }

    pub(crate) fn read(
        &mut self,
        files: &[(BorrowedFd<'_>, &CStr)],
        noatime: bool,
    ) -> io::Result<Vec<Read<'_>>> {
        if files.len() > self.buffers.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "more files than the batch has slots",
            ));
        }
        let mut flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        if noatime {
            flags |= OFlags::NOATIME;
        }
        let counts: Vec<Result<usize, Errno>> = files
            .iter()
            .zip(&mut self.buffers)
            .map(|((folder, name), buffer)| {
                let file = openat(folder, *name, flags, Mode::empty())?;
                loop {
                    match rustix::io::read(&file, &mut buffer[..]) {
                        Err(Errno::INTR) => continue,
                        read => return read,
                    }
                }
            })
            .collect();
        Ok(self
            .buffers
            .iter()
            .zip(counts)
            .map(|(buffer, count)| match count {
                Err(e) => Read::Failed(io::Error::from(e)),
                Ok(n) if n < buffer.len() => Read::Short(&buffer[..n]),
                Ok(_) => Read::Full,
            })
            .collect())
    }
}
