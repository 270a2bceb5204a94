//! The backup part of the spec format (`kind = "backup"`): how records map
//! into protected systems ([`crate::facts::ProtectedSystem`]).
//!
//! - `[systems]` (required): one protected system per record of a list
//!   endpoint: `id`, `name`, `hostname`, `serial`, `os`, `kind` (mapped onto
//!   `machine` / `workload`; machine when absent), `job`, and, when the
//!   product keeps them on the system itself, `last_success`, `last_run`,
//!   `last_failure`, `last_result` and `paused`.
//! - `[runs]`: backup runs (sessions, tasks), each naming its system
//!   (`system`, else the per-device request's system): a successful or
//!   warning run gives the newest success, a failed one the newest failure,
//!   the newest run its time and result.
//! - `[copies]`: where copies are kept (`location` mapped onto `local`,
//!   `offsite`, `cloud`), `target`, `latest`, `immutable`, `offline`.
//! - `[tests]`: restore, boot and integrity tests (`kind` mapped onto `boot`,
//!   `restore`, `integrity`), `at`, `result` (mapped onto `passed`, `failed`),
//!   `detail`.
//!
//! Enum fields (`last_result`, `result`, `location`, the test `kind` and
//! `result`) must have a `map` and may not have a `default`: a value the map
//! does not hold is kept as unknown with its raw value (never guessed).
//! Boolean fields (`paused`, `immutable`, `offline`) map onto `true`/`false`.

use serde::{Deserialize, Serialize};

use super::spec::{check_conditions, check_fields, Condition, Field, Fields, Spec};

/// Targets of a backup result map.
pub const RESULTS: &[&str] = &["success", "warning", "failed", "running", "none"];
/// Targets of a copy location map.
pub const LOCATIONS: &[&str] = &["local", "offsite", "cloud"];
/// Targets of a test kind map.
pub const TEST_KINDS: &[&str] = &["boot", "restore", "integrity"];
/// Targets of a test result map.
pub const TEST_RESULTS: &[&str] = &["passed", "failed"];
/// Targets of a system kind map.
pub const SYSTEM_KINDS: &[&str] = &["machine", "workload"];
const BOOLS: &[&str] = &["true", "false"];

/// `[systems]`: the protected systems.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemMap {
    /// Dataset holding one record per protected system (a list endpoint).
    pub dataset: String,
    /// The system's id in the product.
    pub id: Fields,
    /// Display name.
    pub name: Fields,
    /// Host name, when apart from the name.
    #[serde(default)]
    pub hostname: Option<Fields>,
    /// Hardware serial number.
    #[serde(default)]
    pub serial: Option<Fields>,
    /// Operating system.
    #[serde(default)]
    pub os: Option<Fields>,
    /// `machine` or `workload` after mapping (`default` allowed); machine when absent.
    #[serde(default)]
    pub kind: Option<Fields>,
    /// The job, plan or policy protecting it.
    #[serde(default)]
    pub job: Option<Fields>,
    /// Newest successful backup, when the record holds it.
    #[serde(default)]
    pub last_success: Option<Fields>,
    /// Newest run, when the record holds it.
    #[serde(default)]
    pub last_run: Option<Fields>,
    /// Newest failed run, when the record holds it.
    #[serde(default)]
    pub last_failure: Option<Fields>,
    /// Result of the newest run, mapped onto [`RESULTS`].
    #[serde(default)]
    pub last_result: Option<Fields>,
    /// Backups paused (`true`/`false` after mapping).
    #[serde(default)]
    pub paused: Option<Fields>,
    /// Keep only records meeting every condition.
    #[serde(default)]
    pub only_when: Vec<Condition>,
}

/// `[runs]`: backup runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMap {
    /// Dataset holding run records.
    pub dataset: String,
    /// The system's id within the record (else the per-device request's system).
    #[serde(default)]
    pub system: Option<Fields>,
    /// The job, plan or policy of the run.
    #[serde(default)]
    pub job: Option<Fields>,
    /// When the run finished (or started).
    pub at: Fields,
    /// The run's result, mapped onto [`RESULTS`].
    pub result: Fields,
    /// Keep only records meeting every condition.
    #[serde(default)]
    pub only_when: Vec<Condition>,
}

/// `[copies]`: copies of the backups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyMap {
    /// Dataset holding copy records.
    pub dataset: String,
    /// The system's id within the record (else the per-device request's
    /// system, or the record itself when the dataset is the systems').
    #[serde(default)]
    pub system: Option<Fields>,
    /// Where the copy is kept, mapped onto [`LOCATIONS`].
    pub location: Fields,
    /// The repository, vault or cloud, as the product names it.
    #[serde(default)]
    pub target: Option<Fields>,
    /// Newest restore point in the copy.
    #[serde(default)]
    pub latest: Option<Fields>,
    /// Immutable (`true`/`false` after mapping).
    #[serde(default)]
    pub immutable: Option<Fields>,
    /// Offline or air-gapped (`true`/`false` after mapping).
    #[serde(default)]
    pub offline: Option<Fields>,
    /// Keep only records meeting every condition.
    #[serde(default)]
    pub only_when: Vec<Condition>,
}

/// `[tests]`: restore, boot and integrity tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestMap {
    /// Dataset holding test records.
    pub dataset: String,
    /// The system's id within the record (else the per-device request's system).
    #[serde(default)]
    pub system: Option<Fields>,
    /// What was tested, mapped onto [`TEST_KINDS`].
    pub kind: Fields,
    /// When it ran.
    #[serde(default)]
    pub at: Option<Fields>,
    /// Its result, mapped onto [`TEST_RESULTS`].
    pub result: Fields,
    /// The product's own words (a session name, a failure reason).
    #[serde(default)]
    pub detail: Option<Fields>,
    /// Keep only records meeting every condition.
    #[serde(default)]
    pub only_when: Vec<Condition>,
}

/// An enum field: a `map` onto `allowed` and no `default` (an unmapped value
/// is kept raw as unknown, never guessed).
fn check_enum(fields: Option<&Fields>, allowed: &[&str]) -> Result<(), String> {
    check_fields(fields, Some(allowed))?;
    let list: Vec<&Field> = match fields {
        None => return Ok(()),
        Some(Fields::One(f)) => vec![f],
        Some(Fields::Many(v)) => v.iter().collect(),
    };
    if list
        .iter()
        .any(|f| matches!(f, Field::Full(s) if s.default.is_some()))
    {
        return Err(
            "takes no `default`: a value outside the map is kept as unknown with its raw value"
                .into(),
        );
    }
    Ok(())
}

/// Validate the backup tables of `spec` (`kind = "backup"`): `dataset`
/// checks that a dataset is an endpoint's, `is_list` that it is not
/// per-device, `per_device` that it is.
///
/// # Errors
/// A message starting with the key at fault.
pub(super) fn validate(
    spec: &Spec,
    dataset: &dyn Fn(&str, &str) -> Result<(), String>,
    is_list: &dyn Fn(&str) -> bool,
    per_device: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let Some(s) = &spec.systems else {
        return Err("systems: missing".into());
    };
    dataset(&s.dataset, "systems")?;
    if !is_list(&s.dataset) {
        return Err("systems.dataset must not be a per-device endpoint".into());
    }
    for (name, f) in [
        ("id", Some(&s.id)),
        ("name", Some(&s.name)),
        ("hostname", s.hostname.as_ref()),
        ("serial", s.serial.as_ref()),
        ("os", s.os.as_ref()),
        ("job", s.job.as_ref()),
        ("last_success", s.last_success.as_ref()),
        ("last_run", s.last_run.as_ref()),
        ("last_failure", s.last_failure.as_ref()),
    ] {
        check_fields(f, None).map_err(|m| format!("systems.{name}: {m}"))?;
    }
    check_fields(s.kind.as_ref(), Some(SYSTEM_KINDS)).map_err(|m| format!("systems.kind: {m}"))?;
    check_enum(s.last_result.as_ref(), RESULTS).map_err(|m| format!("systems.last_result: {m}"))?;
    check_fields(s.paused.as_ref(), Some(BOOLS)).map_err(|m| format!("systems.paused: {m}"))?;
    check_conditions(&s.only_when).map_err(|m| format!("systems.only_when: {m}"))?;

    // A per-record table names its system, or is per-device, or (copies only)
    // reads the systems' own records.
    let owner = |table: &str, ds: &str, system: Option<&Fields>, own: bool| {
        dataset(ds, table)?;
        if system.is_none() && !per_device(ds) && !(own && ds == s.dataset) {
            return Err(format!(
                "{table}.system is needed when {table} come from a list that is not per-device"
            ));
        }
        check_fields(system, None).map_err(|m| format!("{table}.system: {m}"))
    };
    if let Some(r) = &spec.runs {
        owner("runs", &r.dataset, r.system.as_ref(), false)?;
        check_fields(r.job.as_ref(), None).map_err(|m| format!("runs.job: {m}"))?;
        check_fields(Some(&r.at), None).map_err(|m| format!("runs.at: {m}"))?;
        check_enum(Some(&r.result), RESULTS).map_err(|m| format!("runs.result: {m}"))?;
        check_conditions(&r.only_when).map_err(|m| format!("runs.only_when: {m}"))?;
    }
    if let Some(c) = &spec.copies {
        owner("copies", &c.dataset, c.system.as_ref(), true)?;
        check_enum(Some(&c.location), LOCATIONS).map_err(|m| format!("copies.location: {m}"))?;
        for (name, f) in [("target", c.target.as_ref()), ("latest", c.latest.as_ref())] {
            check_fields(f, None).map_err(|m| format!("copies.{name}: {m}"))?;
        }
        for (name, f) in [
            ("immutable", c.immutable.as_ref()),
            ("offline", c.offline.as_ref()),
        ] {
            check_fields(f, Some(BOOLS)).map_err(|m| format!("copies.{name}: {m}"))?;
        }
        check_conditions(&c.only_when).map_err(|m| format!("copies.only_when: {m}"))?;
    }
    if let Some(t) = &spec.tests {
        owner("tests", &t.dataset, t.system.as_ref(), false)?;
        check_enum(Some(&t.kind), TEST_KINDS).map_err(|m| format!("tests.kind: {m}"))?;
        check_enum(Some(&t.result), TEST_RESULTS).map_err(|m| format!("tests.result: {m}"))?;
        for (name, f) in [("at", t.at.as_ref()), ("detail", t.detail.as_ref())] {
            check_fields(f, None).map_err(|m| format!("tests.{name}: {m}"))?;
        }
        check_conditions(&t.only_when).map_err(|m| format!("tests.only_when: {m}"))?;
    }
    Ok(())
}
