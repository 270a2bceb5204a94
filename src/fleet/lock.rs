//! One run of an organisation at a time: an advisory lock on
//! `<store>/<organisation>/auditpack.lock` (`flock` on Unix, `LockFileEx` on
//! Windows, through [`std::fs::File::try_lock`]). The operating system
//! releases it when the process ends, however it ends (kill -9 included), so
//! a killed run never leaves an organisation locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// The lock file's name in an organisation's folder.
pub const LOCK_FILE: &str = "auditpack.lock";

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct OrgLock {
    _file: File,
    path: PathBuf,
}

/// The result of trying to take the lock.
#[derive(Debug)]
pub enum Acquired {
    /// Taken: this process may run the organisation.
    Held(OrgLock),
    /// Another run holds it; what it wrote about itself (pid, host, start).
    Busy(String),
}

impl OrgLock {
    /// Try to take the lock of the organisation folder `dir` (created if
    /// missing), without waiting. The holder's pid, host and start time are
    /// written into the file for the note a skipped run prints.
    ///
    /// # Errors
    /// When the folder or the lock file cannot be created or locked for any
    /// reason other than another holder.
    pub fn try_acquire(dir: &Path, holder: &str) -> Result<Acquired> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            Error::new(
                ErrorKind::Io(e),
                format!("cannot {what} {}", path.display()),
            )
        };
        std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                return Ok(Acquired::Busy(who.trim().to_owned()));
            }
            Err(TryLockError::Error(e)) => return Err(io("lock", &path, e)),
        }
        // Best effort: the note is for people, the lock is what counts.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .and_then(|()| file.flush());
        Ok(Acquired::Held(OrgLock { _file: file, path }))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = match OrgLock::try_acquire(dir.path(), "pid 1").expect("locks") {
            Acquired::Held(l) => l,
            Acquired::Busy(_) => panic!("free lock reported busy"),
        };
        match OrgLock::try_acquire(dir.path(), "pid 2").expect("tries") {
            Acquired::Busy(who) => assert_eq!(who, "pid 1"),
            Acquired::Held(_) => panic!("lock taken twice"),
        }
        drop(first);
        assert!(matches!(
            OrgLock::try_acquire(dir.path(), "pid 3").expect("locks"),
            Acquired::Held(_)
        ));
    }
}
