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
        Calls {
            buffers: super::slot_buffers(slots, buffer),
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
        super::fits(files.len(), self.buffers.len())?;
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
            .map(|(buffer, count)| super::outcome(buffer, count.map_err(io::Error::from)))
            .collect())
    }
}
