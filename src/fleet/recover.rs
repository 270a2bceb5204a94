//! What a killed run leaves behind, put right before the organisation runs
//! again (under its lock, so nothing else is writing there), and whether it
//! already has today's package (`--resume`).
//!
//! Packages are written under a hidden staging name and renamed into place
//! whole, and the zip beside each likewise, so a kill leaves at most: hidden
//! staging folders and files in `packages/` (removed), a package folder
//! whose zip was not yet written (the zip is written now), and a run folder
//! whose collection or judging never finished (moved out of `runs/` to
//! `interrupted/`, kept for inspection, never packaged).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{Error, ErrorKind, Result};
use crate::package::{write_zip, zip_path};

/// Where an organisation's runs, packages and interrupted runs live.
pub(crate) fn runs_dir(org: &Path) -> PathBuf {
    org.join("runs")
}

pub(crate) fn packages_dir(org: &Path) -> PathBuf {
    org.join("packages")
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Io(e),
        format!("cannot {what} {}", path.display()),
    )
}

fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", dir, e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| io("read", dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            out.push((name.to_owned(), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Put right what a killed run of the organisation in `org` left; one note
/// per thing done.
///
/// # Errors
/// On I/O failure reading, removing, moving or zipping.
pub(crate) fn recover(org: &Path, slug: &str) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let packages = packages_dir(org);
    let prefix = format!("auditpack-{slug}-");
    let mut finished_runs = Vec::new();
    for (name, path) in entries(&packages)? {
        if name.starts_with(&format!(".{prefix}")) || name.starts_with(".tmp-") {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| io("remove", &path, e))?;
            notes.push(format!(
                "removed {name}, an unfinished package of an interrupted run"
            ));
        } else if let Some(run_id) = name.strip_prefix(&prefix) {
            if path.is_dir() {
                finished_runs.push(run_id.to_owned());
                if !zip_path(&path).exists() {
                    write_zip(&path)?;
                    notes.push(format!("wrote the missing zip of {name}"));
                }
            }
        }
    }
    let runs = runs_dir(org);
    for (name, path) in entries(&runs)? {
        if !path.is_dir() || finished_runs.contains(&name) {
            continue;
        }
        let judged =
            path.join("run.json").is_file() && path.join("results").join("controls.json").is_file();
        if judged {
            notes.push(format!(
                "run {name} was judged but has no package; package it with `auditpack package`"
            ));
            continue;
        }
        let target = org.join("interrupted").join(&name);
        std::fs::create_dir_all(org.join("interrupted"))
            .map_err(|e| io("create", &org.join("interrupted"), e))?;
        std::fs::rename(&path, &target).map_err(|e| io("move", &path, e))?;
        notes.push(format!(
            "moved run {name}, interrupted before it was judged, to interrupted/"
        ));
    }
    Ok(notes)
}

/// The organisation's newest complete package (folder and zip) from a run
/// started on `day` (UTC), if any.
///
/// # Errors
/// When the packages folder cannot be read.
pub(crate) fn package_of_day(org: &Path, slug: &str, day: NaiveDate) -> Result<Option<PathBuf>> {
    let prefix = format!("auditpack-{slug}-{}T", day.format("%Y%m%d"));
    Ok(entries(&packages_dir(org))?
        .into_iter()
        .filter(|(name, path)| {
            name.starts_with(&prefix)
                && path.is_dir()
                && path.join("tagmanifest-sha256.txt").is_file()
                && zip_path(path).is_file()
        })
        .map(|(_, path)| path)
        .next_back())
}
