//! Atomic file writes: a temporary name in the same folder, flushed, then renamed.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Write `bytes` to `path` so that readers see either the old file or the whole
/// new one, never a part.
///
/// # Errors
/// On any I/O failure; nothing is left at `path` in that case.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file being written under a temporary name; [`AtomicFile::commit`] renames it
/// into place, and dropping it uncommitted removes it.
pub struct AtomicFile {
    temp: NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Start writing a file that will land at `path` (parent folders are created).
    ///
    /// # Errors
    /// When the folder cannot be created or the temporary file opened.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let temp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".partial")
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            temp,
            target: path.to_owned(),
        })
    }

    /// Flush to disk and rename into place.
    ///
    /// # Errors
    /// On a failed sync or rename.
    pub fn commit(self) -> io::Result<()> {
        self.temp.as_file().sync_all()?;
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
    }

    /// The open file, for callers that need more than `Write`.
    pub fn file(&self) -> &File {
        self.temp.as_file()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}
