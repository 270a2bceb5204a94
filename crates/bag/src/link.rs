//! Payload files that need no copy: a finished run folder's files are
//! hard-linked into the package's `data/` and made read-only, then hashed
//! where they lie. With SHA-NI one hashing stream runs at memory speed, so
//! copying every byte into staging would cost as much as hashing it.
//!
//! A link shares the file with the run folder, so the package stays a stable
//! artifact only while nobody writes the run folder's files in place:
//! - every writer of auditpack replaces files by renaming a new one over
//!   them (`atomic`), which leaves the package's link untouched;
//! - the linked file loses its write permission before it is hashed, so any
//!   other writer without root's override is refused;
//! - the custody log, the one file auditpack appends to, is never linked;
//! - and whatever still changes bytes in place (root) breaks the manifest,
//!   which `verify` reports: never a silent change.
//!
//! Where linking is impossible (another file system, a file system without
//! hard links, too many links) or not wanted ([`Payload::Copy`]), the file is
//! copied while it is hashed, as before.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::known_size::KnownSize;
use super::reader::open_regular;

/// How the payload gets into a package's `data/`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Payload {
    /// Hard-link each run folder file and make it read-only (in the run
    /// folder too: it is one file), falling back to a copy per file where
    /// linking fails. No byte is copied; each is read once, to hash it.
    #[default]
    Link,
    /// Copy every file into `data/` while hashing it; the run folder is left
    /// exactly as it was.
    Copy,
}

/// Files of the run folder that are never linked: the custody log is
/// appended to while a run is collected.
const NEVER_LINKED: &[&str] = &["custody.jsonl"];

/// Where a payload file's bytes go while they are hashed: nowhere when the
/// file is already in the package (linked), or into its copy.
pub(crate) enum Sink<W> {
    /// The file is a link: hashing reads it and writes nothing.
    Linked,
    /// The file is copied into the package through `W`.
    Copy(W),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Linked => Ok(buf.len()),
            Sink::Copy(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Linked => Ok(()),
            Sink::Copy(w) => w.flush(),
        }
    }
}

/// Link the run folder file `src` (at `rel`) at `dst` inside the package,
/// take its write permission away and open it for hashing (read to its
/// size without the read that finds its end). `None` when it is not to be
/// or cannot be linked (the caller copies it instead; a link left half-made
/// is removed).
pub(crate) fn link_read_only(
    payload: Payload,
    rel: &str,
    src: &Path,
    dst: &Path,
) -> Option<KnownSize<File>> {
    if payload == Payload::Copy {
        return None;
    }
    let (file, status) = link(rel, src, dst)?;
    Some(KnownSize::new(file, status.len()))
}

/// [`link_read_only`] for a file that is not to be read: what the file
/// system says about the linked file.
pub(crate) fn link_stamped(rel: &str, src: &Path, dst: &Path) -> Option<std::fs::Metadata> {
    link(rel, src, dst).map(|(_, status)| status)
}

fn link(rel: &str, src: &Path, dst: &Path) -> Option<(File, std::fs::Metadata)> {
    if NEVER_LINKED.contains(&rel) {
        return None;
    }
    // `link` does not follow a symlink put at `src`; opening the link with
    // `open_regular` then refuses anything but a regular file.
    std::fs::hard_link(src, dst).ok()?;
    let opened = open_regular(dst).and_then(|file| {
        let status = file.metadata()?;
        let mut permissions = status.permissions();
        if !permissions.readonly() {
            read_only(&mut permissions);
            file.set_permissions(permissions)?;
        }
        Ok((file, status))
    });
    match opened {
        Ok(linked) => Some(linked),
        Err(_) => {
            // Copy instead (which reports what is wrong with the file).
            let _ = std::fs::remove_file(dst);
            None
        }
    }
}

/// Take every write permission away (owner, group, others).
fn read_only(permissions: &mut std::fs::Permissions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        permissions.set_mode(permissions.mode() & !0o222);
    }
    #[cfg(not(unix))]
    permissions.set_readonly(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linked_file_is_read_only_and_shared() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let (src, dst) = (dir.path().join("a.json"), dir.path().join("b.json"));
        std::fs::write(&src, b"{}")?;
        let file = link_read_only(Payload::Link, "a.json", &src, &dst);
        assert!(file.is_some());
        assert!(std::fs::metadata(&src)?.permissions().readonly());
        assert_eq!(std::fs::read(&dst)?, b"{}");
        // Replacing the run folder's file (as every auditpack writer does)
        // leaves the package's link as it was.
        crate::atomic::write_atomic(&src, b"changed")?;
        assert_eq!(std::fs::read(&dst)?, b"{}");
        Ok(())
    }

    #[test]
    fn the_custody_log_and_copy_mode_are_never_linked() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("custody.jsonl");
        std::fs::write(&src, b"")?;
        let dst = dir.path().join("copy");
        assert!(link_read_only(Payload::Link, "custody.jsonl", &src, &dst).is_none());
        assert!(link_read_only(Payload::Copy, "x", &src, &dst).is_none());
        assert!(!dst.exists());
        assert!(!std::fs::metadata(&src)?.permissions().readonly());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_not_linked() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("secret");
        std::fs::write(&target, b"x")?;
        let src = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &src)?;
        let dst = dir.path().join("dst");
        assert!(link_read_only(Payload::Link, "link", &src, &dst).is_none());
        assert!(!dst.exists());
        Ok(())
    }
}
