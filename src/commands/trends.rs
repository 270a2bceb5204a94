//! `auditpack kpis`, `auditpack qbr` and `auditpack dashboard`: which
//! organisation (or fleet) a config file names, handed to [`crate::trends`].

use std::path::Path;

use crate::config::{did_you_mean, Config};
use crate::error::{Error, Result};
use crate::fleet::FleetFile;
use crate::history::kpis::KpiSettings;
use crate::trends::{slug, Organisation};

/// Whether `path` is a fleet file (it has a `[fleet]` table).
///
/// # Errors
/// When it cannot be read or is not TOML.
pub fn is_fleet_file(path: &Path) -> Result<bool> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read config file {}: {e}", path.display())))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        Error::config(format!(
            "{}: not valid TOML: {}",
            path.display(),
            e.message().trim_end()
        ))
    })?;
    Ok(table.contains_key("fleet"))
}

fn from_config(config: &Config, folder: Option<&str>) -> Organisation {
    Organisation {
        name: config.organisation.name.clone(),
        slug: folder.map_or_else(|| slug(&config.organisation.name), str::to_owned),
        store: config.organisation.store.clone(),
        settings: KpiSettings::from_config(config),
    }
}

/// The organisation `--config FILE --org NAME` names: an organisation
/// config (`--org`, when given, must be its name), or a fleet file and one
/// of its organisations by name or store folder.
///
/// # Errors
/// When the file cannot be read or parsed, or names no such organisation
/// (the message suggests the nearest name).
pub fn organisation(path: &Path, org: Option<&str>) -> Result<Organisation> {
    let (config, folder) = organisation_config(path, org)?;
    Ok(from_config(&config, folder.as_deref()))
}

/// The config of the organisation `--config FILE --org NAME` names, as
/// [`organisation`] finds it (merged with the fleet's defaults for a fleet
/// member), and its folder in the fleet's store.
///
/// # Errors
/// As [`organisation`].
pub fn organisation_config(path: &Path, org: Option<&str>) -> Result<(Config, Option<String>)> {
    if is_fleet_file(path)? {
        let mut fleet = FleetFile::load(path)?;
        let Some(want) = org else {
            return Err(Error::invalid(format!(
                "{} is a fleet file: name the organisation with --org",
                path.display()
            )));
        };
        if let Some(at) = fleet
            .members
            .iter()
            .position(|m| m.name.eq_ignore_ascii_case(want) || m.slug == want)
        {
            let m = fleet.members.swap_remove(at);
            return Ok((m.config, Some(m.slug)));
        }
        let names: Vec<&str> = fleet.members.iter().map(|m| m.name.as_str()).collect();
        let hint = did_you_mean(want, &names)
            .map(|n| format!("; did you mean `{n}`?"))
            .unwrap_or_default();
        return Err(Error::invalid(format!(
            "{}: no organisation `{want}` in the fleet{hint}",
            path.display()
        )));
    }
    let config = Config::load(path)?;
    if let Some(want) = org {
        if !config.organisation.name.eq_ignore_ascii_case(want) {
            return Err(Error::invalid(format!(
                "{} is the config of `{}`, not `{want}`",
                path.display(),
                config.organisation.name
            )));
        }
    }
    Ok((config, None))
}

/// Every organisation of a fleet file, and the fleet's name and store.
///
/// # Errors
/// When the fleet file is invalid.
pub fn fleet(path: &Path) -> Result<(String, std::path::PathBuf, Vec<Organisation>)> {
    let fleet = FleetFile::load(path)?;
    let orgs = fleet
        .members
        .iter()
        .map(|m| from_config(&m.config, Some(&m.slug)))
        .collect();
    Ok((fleet.name, fleet.store, orgs))
}
