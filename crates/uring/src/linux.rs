//! The ring behind [`super::Batch`] on Linux.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{opcode, squeue, types, IoUring};

use super::Read;

/// The three requests of one file, in the low bits of its `user_data`.
const OPEN: u64 = 0;
const READ: u64 = 1;
const CLOSE: u64 = 2;
const REQUESTS: usize = 3;

pub(crate) struct Ring {
    ring: IoUring,
    /// One buffer per slot of the ring's file table.
    buffers: Vec<Box<[u8]>>,
    /// The ring failed while requests may still have been in flight; it is
    /// not used again and its buffers are never freed.
    broken: bool,
}

impl Ring {
    pub(crate) fn new(slots: usize, buffer: usize) -> Option<Ring> {
        let buffers = super::slot_buffers(slots, buffer);
        // Every request of a full batch fits in the submission queue at once;
        // the completion queue is twice as large.
        let slots = buffers.len();
        let entries = u32::try_from(slots * REQUESTS).ok()?.next_power_of_two();
        let ring = IoUring::new(entries).ok()?;
        // A sparse file table for direct descriptors (Linux 5.19).
        ring.submitter()
            .register_files_sparse(u32::try_from(slots).ok()?)
            .ok()?;
        Some(Ring {
            ring,
            buffers,
            broken: false,
        })
    }

    pub(crate) fn slots(&self) -> usize {
        self.buffers.len()
    }

    pub(crate) fn read(
        &mut self,
        files: &[(BorrowedFd<'_>, &CStr)],
        noatime: bool,
    ) -> io::Result<Vec<Read<'_>>> {
        if self.broken {
            return Err(io::Error::other("the io_uring failed earlier"));
        }
        super::fits(files.len(), self.buffers.len())?;
        let flags = libc_flags() | if noatime { libc::O_NOATIME } else { 0 };
        {
            let mut queue = self.ring.submission();
            for (k, ((folder, name), buffer)) in files.iter().zip(&mut self.buffers).enumerate() {
                let slot = u32::try_from(k).map_err(io::Error::other)?;
                let tag = k as u64 * REQUESTS as u64;
                let target = types::DestinationSlot::try_from_slot_target(slot)
                    .map_err(|_| io::Error::other("no such slot"))?;
                let open = opcode::OpenAt::new(types::Fd(folder.as_raw_fd()), name.as_ptr())
                    .flags(flags)
                    .file_index(Some(target))
                    .build()
                    .flags(squeue::Flags::IO_LINK)
                    .user_data(tag + OPEN);
                // A short read ends the chain's link; a hard link still closes.
                let len = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
                let read = opcode::Read::new(types::Fixed(slot), buffer.as_mut_ptr(), len)
                    .offset(0)
                    .build()
                    .flags(squeue::Flags::IO_HARDLINK)
                    .user_data(tag + READ);
                let close = opcode::Close::new(types::Fixed(slot))
                    .build()
                    .user_data(tag + CLOSE);
                // SAFETY: the name and the folder are borrowed for this call
                // and the buffer belongs to the ring; this call returns only
                // once every request pushed here has completed (or, when the
                // ring fails, marks it broken so that it is never submitted
                // again and never frees its buffers).
                let pushed = unsafe { queue.push_multiple(&[open, read, close]) };
                if pushed.is_err() {
                    // Cannot happen (the queue holds a whole batch), but
                    // what was pushed refers to this call's names.
                    self.broken = true;
                    return Err(io::Error::other("the io_uring queue is full"));
                }
            }
        }

        let expected = files.len() * REQUESTS;
        let mut opened: Vec<i32> = vec![0; files.len()];
        let mut read: Vec<i32> = vec![0; files.len()];
        let mut done = 0;
        while done < expected {
            match self.ring.submit_and_wait(expected - done) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.broken = true;
                    std::mem::forget(std::mem::take(&mut self.buffers));
                    return Err(e);
                }
            }
            for entry in self.ring.completion() {
                let data = entry.user_data();
                let k = usize::try_from(data / REQUESTS as u64).unwrap_or(usize::MAX);
                match (data % REQUESTS as u64, opened.get_mut(k), read.get_mut(k)) {
                    (OPEN, Some(result), _) => *result = entry.result(),
                    (READ, _, Some(result)) => *result = entry.result(),
                    _ => {}
                }
                done += 1;
            }
        }
        let outcomes = self
            .buffers
            .iter()
            .zip(opened.iter().zip(&read))
            .map(|(buffer, (&o, &r))| {
                let read = match (o, r) {
                    (o, _) if o < 0 => Err(io::Error::from_raw_os_error(-o)),
                    (_, r) if r < 0 => Err(io::Error::from_raw_os_error(-r)),
                    // Non-negative: fits.
                    (_, r) => Ok(usize::try_from(r).unwrap_or(usize::MAX)),
                };
                super::outcome(buffer, read)
            })
            .collect();
        Ok(outcomes)
    }
}

/// Read-only, no symlink followed, no wait on a FIFO. (No close-on-exec: a
/// direct descriptor is never in the process's file table.)
fn libc_flags() -> i32 {
    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK
}
