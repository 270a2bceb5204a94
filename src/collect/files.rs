//! Reading a folder of untrusted files (endpoint reports, supplied documents)
//! one by one: symlinks, non-regular files, non-UTF-8 or hostile names,
//! oversized files and too-deep nesting are refused with a reason each, and
//! nothing ever stops the walk. Names are only reported (escaped), never used
//! to build paths.

use std::io::Read;
use std::path::Path;

use walkdir::WalkDir;

use crate::evidence::Rejection;

/// Bounds of a walk.
#[derive(Clone, Copy, Debug)]
pub struct WalkLimits {
    /// Folder levels below the root that are read (0: the root only).
    pub max_depth: usize,
    /// Largest file read.
    pub max_bytes: u64,
    /// Files read at most; the rest are refused.
    pub max_files: usize,
    /// Bytes held in memory across all files read; files beyond are refused
    /// (`over-budget`) so a huge folder cannot exhaust memory.
    pub max_total_bytes: u64,
}

/// A file that passed the walk's checks.
#[derive(Debug)]
pub struct Input {
    /// Path relative to the root, `/`-separated (UTF-8, checked harmless).
    pub rel: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A refusal with a stable reason code.
pub fn reject(input: &str, reason: &str, detail: impl Into<String>) -> Rejection {
    Rejection {
        input: printable(input),
        reason: reason.to_owned(),
        detail: detail.into(),
    }
}

/// `s` with control characters escaped, at most 300 characters.
pub fn printable(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| {
            if c.is_control() || c == '\u{202e}' || c == '\u{200b}' {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    escaped.chars().take(300).collect()
}

/// Names reserved on Windows (a report copied there would misbehave).
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "lpt1", "lpt2", "lpt3",
];

/// Why a file or folder name is hostile, if it is.
pub fn hostile_name(name: &str) -> Option<&'static str> {
    if name.len() > 255 {
        return Some("longer than 255 bytes");
    }
    if name.chars().any(|c| c.is_control()) {
        return Some("holds control characters");
    }
    if name.chars().any(|c| {
        matches!(c, '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}')
    }) {
        return Some("holds characters that are unsafe in file names");
    }
    if name.starts_with('-') {
        return Some("starts with `-`");
    }
    if name.ends_with(' ') || name.ends_with('.') {
        return Some("ends with a space or dot");
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_lowercase();
    if RESERVED.contains(&stem.as_str()) {
        return Some("is a reserved device name");
    }
    None
}

fn rel_display(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Walk `root` (sorted by name, symlinks never followed); `wanted` says
/// whether a file name is one this source reads (others are refused as
/// `unexpected-file`). Hidden entries (`.name`) are skipped silently.
///
/// # Errors
/// When `root` itself is missing or not a folder.
pub fn walk(
    root: &Path,
    limits: WalkLimits,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<(Vec<Input>, Vec<Rejection>), String> {
    let meta = std::fs::metadata(root)
        .map_err(|e| format!("cannot read folder {}: {e}", root.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a folder", root.display()));
    }
    let mut inputs = Vec::new();
    let mut rejected = Vec::new();
    let mut held: u64 = 0;
    let mut it = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let at = e
                    .path()
                    .map(|p| rel_display(root, p))
                    .unwrap_or_else(|| "?".into());
                rejected.push(reject(&at, "unreadable", format!("cannot read: {e}")));
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let rel = rel_display(root, entry.path());
        let is_dir = entry.file_type().is_dir();
        let Some(name) = entry.file_name().to_str() else {
            rejected.push(reject(&rel, "non-utf8-name", "the name is not valid UTF-8"));
            if is_dir {
                it.skip_current_dir();
            }
            continue;
        };
        if name.starts_with('.') {
            if is_dir {
                it.skip_current_dir();
            }
            continue;
        }
        if let Some(why) = hostile_name(name) {
            rejected.push(reject(&rel, "hostile-name", format!("the name {why}")));
            if is_dir {
                it.skip_current_dir();
            }
            continue;
        }
        let ft = entry.file_type();
        if ft.is_symlink() {
            rejected.push(reject(&rel, "symlink", "symbolic links are never followed"));
            continue;
        }
        if is_dir {
            if entry.depth() > limits.max_depth {
                rejected.push(reject(
                    &rel,
                    "too-deep",
                    format!("nested deeper than {} folder level(s)", limits.max_depth),
                ));
                it.skip_current_dir();
            }
            continue;
        }
        if !ft.is_file() {
            rejected.push(reject(
                &rel,
                "not-regular-file",
                "not a regular file (a device, pipe or socket)",
            ));
            continue;
        }
        if !wanted(name) {
            rejected.push(reject(
                &rel,
                "unexpected-file",
                "not a file this source reads",
            ));
            continue;
        }
        if inputs.len() >= limits.max_files {
            rejected.push(reject(
                &rel,
                "too-many-files",
                format!("more than {} files in the folder", limits.max_files),
            ));
            continue;
        }
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        if held.saturating_add(size.min(limits.max_bytes)) > limits.max_total_bytes {
            rejected.push(reject(
                &rel,
                "over-budget",
                format!(
                    "the folder holds more than {} bytes of input; split it",
                    limits.max_total_bytes
                ),
            ));
            continue;
        }
        match read_bounded(entry.path(), limits.max_bytes) {
            Ok(bytes) => {
                held += bytes.len() as u64;
                inputs.push(Input { rel, bytes });
            }
            Err((reason, detail)) => rejected.push(reject(&rel, reason, detail)),
        }
    }
    Ok((inputs, rejected))
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, (&'static str, String)> {
    let file =
        std::fs::File::open(path).map_err(|e| ("unreadable", format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| ("unreadable", format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(("not-regular-file", "not a regular file".into()));
    }
    if meta.len() > max {
        return Err((
            "oversized",
            format!("{} bytes, more than the limit of {max}", meta.len()),
        ));
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ("unreadable", format!("cannot read: {e}")))?;
    if bytes.len() as u64 > max {
        return Err((
            "oversized",
            format!("grew beyond the limit of {max} bytes while read"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_holds_at_most_its_byte_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["a.json", "b.json", "c.json"] {
            std::fs::write(dir.path().join(name), b"123456").expect("write");
        }
        let limits = WalkLimits {
            max_depth: 1,
            max_bytes: 100,
            max_files: 10,
            max_total_bytes: 13,
        };
        let (inputs, rejected) = walk(dir.path(), limits, &|_| true).expect("walk");
        let names: Vec<&str> = inputs.iter().map(|i| i.rel.as_str()).collect();
        assert_eq!(names, ["a.json", "b.json"]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            (rejected[0].input.as_str(), rejected[0].reason.as_str()),
            ("c.json", "over-budget")
        );
    }

    #[test]
    fn hostile_names() {
        assert!(hostile_name("report.json").is_none());
        assert!(hostile_name("rep\u{1b}[31mort.json").is_some());
        assert!(hostile_name("-rf.json").is_some());
        assert!(hostile_name("a\\b.json").is_some());
        assert!(hostile_name("CON.json").is_some());
        assert!(hostile_name("evil\u{202e}nosj.exe").is_some());
        assert_eq!(printable("a\nb"), "a\\u{a}b");
    }
}
