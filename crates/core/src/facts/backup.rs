//! Backup facts: the systems a backup product protects, with their last
//! backups, their copies and their restore or boot tests, and how each one is
//! linked to a machine of the reconciled device inventory.
//!
//! Every backup source (Veeam, Datto BCDR, N-able Cove, a spec-driven
//! product) adds one [`ProtectedSystem`] per machine or workload it protects
//! to [`Facts::backups`](super::Facts::backups) and provides
//! [`FactKind::Backups`](super::FactKind::Backups) (and
//! [`FactKind::RestoreTests`](super::FactKind::RestoreTests) when it reports
//! verification at all). Per-system attributes follow the model's rule:
//! `None` means "this source does not say", which is different from a source
//! saying "none". Values outside a vendor's documented enums are kept as
//! `Unknown` with the raw value, never guessed.
//!
//! ## Linking to the inventory
//!
//! A protected system of kind [`ProtectedKind::Machine`] is linked to the
//! reconciled inventory item ([`link_backups`], run by `Facts::finish` after
//! reconciliation) by the same identities device reconciliation uses:
//! 1. the same hardware serial number (placeholders ignored) as some record
//!    of exactly one item;
//! 2. else the same normalised hostname (its `hostname`, else its `name`) as
//!    some record of exactly one item, unless both carry serial numbers and
//!    they differ: then it stays unlinked and the clash is noted;
//! 3. a hostname shared by two or more items is ambiguous: unlinked, noted,
//!    never guessed.
//!
//! Workloads (a Microsoft 365 organisation, a database, a file share) are not
//! machines and are never linked; they are still judged by the backup checks
//! that judge backup results. A system whose source does not say what it is,
//! or says something outside its documented values
//! ([`ProtectedKind::Unknown`]), is never linked either: it proves no device
//! backed up, and its `link` says why.

use foldhash::{HashMap, HashMapExt as _};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Device, InventoryItem};
use super::reconcile::{normalise_hostname, serial_key};

/// What a protected system is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectedKind {
    /// A physical or virtual machine (an agent, an image, a VM): linked to
    /// the device inventory.
    Machine,
    /// Something that is not a machine (a SaaS tenant, a database, a share).
    Workload,
    /// The source does not say whether it is a machine, or says something
    /// outside its documented values (noted on the system): never linked to
    /// the device inventory, so it never proves a device backed up.
    Unknown,
}

/// The result of a backup job run, normalised across products.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupResult {
    /// Completed successfully.
    Success,
    /// Completed with warnings (a restore point exists).
    Warning,
    /// Failed (or aborted, or completed with errors and no usable point).
    Failed,
    /// Running now.
    Running,
    /// Never ran / no result reported.
    None,
    /// A value outside the vendor's documented enum, kept raw.
    Unknown(String),
}

impl BackupResult {
    /// Lower-case words for details.
    pub fn describe(&self) -> String {
        match self {
            BackupResult::Success => "success".into(),
            BackupResult::Warning => "warning".into(),
            BackupResult::Failed => "failed".into(),
            BackupResult::Running => "running".into(),
            BackupResult::None => "no result".into(),
            BackupResult::Unknown(raw) => format!("unknown result {raw:?}"),
        }
    }
}

/// Where a copy of the backups is kept.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyLocation {
    /// On site (the primary repository, the BCDR appliance).
    Local,
    /// Another site the organisation or MSP controls (a backup copy job to a
    /// second repository, a replicated appliance).
    Offsite,
    /// A cloud or vendor data centre (object storage, Datto cloud, Cove).
    Cloud,
    /// A value the source gives that says neither, kept raw.
    Unknown(String),
}

impl CopyLocation {
    /// Whether this copy is away from the primary site (offsite or cloud).
    pub fn is_offsite(&self) -> bool {
        matches!(self, CopyLocation::Offsite | CopyLocation::Cloud)
    }
}

/// One copy of a protected system's backups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCopy {
    /// Where it is kept.
    pub location: CopyLocation,
    /// The repository, appliance or cloud it is kept in, as the source names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The newest restore point in this copy; `None` when the source does
    /// not say.
    pub latest: Option<DateTime<Utc>>,
    /// Whether the copy cannot be changed or deleted before its retention
    /// ends (object lock, hardened repository, vendor-held cloud copy).
    pub immutable: Option<bool>,
    /// Whether the copy is offline or air-gapped (tape, rotated media).
    pub offline: Option<bool>,
}

/// What kind of test proves a backup can be restored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreTestKind {
    /// The backup was booted and checked (Datto screenshot verification,
    /// Veeam SureBackup, Cove recovery testing).
    Boot,
    /// Data was actually restored and checked.
    Restore,
    /// Only the backup's integrity was checked (Datto local verification,
    /// a health check): recorded, but not a restore test.
    Integrity,
}

/// The result of a restore or boot test.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestResult {
    /// It worked.
    Passed,
    /// It did not.
    Failed,
    /// A value outside the vendor's documented enum, kept raw.
    Unknown(String),
}

/// One restore, boot or integrity test of a protected system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreTest {
    /// What was tested.
    pub kind: RestoreTestKind,
    /// When it ran (`None` when the source does not say).
    pub at: Option<DateTime<Utc>>,
    /// Its result.
    pub result: TestResult,
    /// The source's own words (a session name, a failure reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A machine or workload a backup product protects, as one source sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedSystem {
    /// Stable id: `<source>:<id in that source>`.
    pub id: String,
    /// Source name.
    pub source: String,
    /// The product, e.g. "Veeam Backup & Replication", "Datto BCDR".
    pub product: String,
    /// Display name as the product gives it.
    pub name: String,
    /// Machine or workload.
    pub kind: ProtectedKind,
    /// Host name of the machine, when the product reports one apart from
    /// `name` (linking falls back to `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Hardware serial number, when the product reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Operating system, as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// The jobs (or policies, or appliances) that protect it, sorted.
    pub jobs: Vec<String>,
    /// Newest successful backup (a usable restore point).
    pub last_success: Option<DateTime<Utc>>,
    /// When the newest backup attempt ran.
    pub last_run: Option<DateTime<Utc>>,
    /// Result of the newest attempt.
    pub last_result: BackupResult,
    /// Newest failed attempt, when the source reports it.
    pub last_failure: Option<DateTime<Utc>>,
    /// Backups are paused or the job is disabled; `None` when the source
    /// does not say.
    pub paused: Option<bool>,
    /// Copies of its backups; `None` when the source does not report where
    /// copies are, `Some(empty)` when it reports none.
    pub copies: Option<Vec<BackupCopy>>,
    /// Restore, boot and integrity tests; `None` when the source does not
    /// report tests, `Some(empty)` when it reports none.
    pub tests: Option<Vec<RestoreTest>>,
    /// Conditions the source reports that the fields above cannot hold
    /// (errors of the last session, values outside documented enums).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The inventory item this is, set by [`link_backups`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_id: Option<String>,
    /// How it was linked (`serial`, `hostname`) or why not, for auditors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl ProtectedSystem {
    /// A protected system with nothing known but its identity.
    pub fn new(
        source: &str,
        id: &str,
        product: &str,
        name: &str,
        kind: ProtectedKind,
    ) -> ProtectedSystem {
        ProtectedSystem {
            id: format!("{source}:{id}"),
            source: source.to_owned(),
            product: product.to_owned(),
            name: name.to_owned(),
            kind,
            hostname: None,
            serial: None,
            os: None,
            jobs: Vec::new(),
            last_success: None,
            last_run: None,
            last_result: BackupResult::None,
            last_failure: None,
            paused: None,
            copies: None,
            tests: None,
            notes: Vec::new(),
            inventory_id: None,
            link: None,
        }
    }
}

/// Link every machine in `backups` to the inventory item it is (see the
/// module documentation for the rules), setting `inventory_id` and `link`.
pub fn link_backups(
    inventory: &[InventoryItem],
    devices: &[Device],
    backups: &mut [ProtectedSystem],
) {
    for b in backups.iter_mut() {
        b.inventory_id = None;
        b.link = None;
    }
    if !backups.iter().any(|b| b.kind != ProtectedKind::Workload) {
        return;
    }
    let by_id: HashMap<&str, &Device> = devices.iter().map(|d| (d.id.as_str(), d)).collect();
    // Identity keys of each item, and the items of each key.
    let mut by_serial: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_host: HashMap<String, Vec<usize>> = HashMap::new();
    let mut item_serials: Vec<Vec<String>> = vec![Vec::new(); inventory.len()];
    for (n, item) in inventory.iter().enumerate() {
        for member in &item.members {
            let Some(d) = by_id.get(member.as_str()) else {
                continue;
            };
            if let Some(s) = serial_key(d.serial.as_deref()) {
                item_serials[n].push(s.clone());
                by_serial.entry(s).or_default().push(n);
            }
            if let Some(h) = normalise_hostname(&d.name) {
                by_host.entry(h).or_default().push(n);
            }
        }
    }
    for list in by_serial.values_mut().chain(by_host.values_mut()) {
        list.sort_unstable();
        list.dedup();
    }
    for b in backups.iter_mut() {
        match b.kind {
            ProtectedKind::Machine => {}
            ProtectedKind::Workload => continue,
            ProtectedKind::Unknown => {
                b.link = Some(
                    "the source does not say that this is a machine; not linked to a device".into(),
                );
                continue;
            }
        }
        let serial = serial_key(b.serial.as_deref());
        if let Some(items) = serial.as_ref().and_then(|s| by_serial.get(s)) {
            if let [n] = items.as_slice() {
                b.inventory_id = Some(inventory[*n].id.clone());
                b.link = Some("serial".into());
                continue;
            }
        }
        let host = normalise_hostname(b.hostname.as_deref().unwrap_or(&b.name));
        let Some(host) = host else {
            b.link = Some("no serial number or hostname to link by".into());
            continue;
        };
        match by_host.get(&host).map(Vec::as_slice) {
            None | Some([]) => {
                b.link = Some(format!("no inventory device has hostname {host}"));
            }
            Some([n]) => {
                let theirs = &item_serials[*n];
                match &serial {
                    Some(s) if !theirs.is_empty() && !theirs.contains(s) => {
                        b.link = Some(format!(
                            "hostname {host} matches {} but its serial numbers differ",
                            inventory[*n].id
                        ));
                    }
                    _ => {
                        b.inventory_id = Some(inventory[*n].id.clone());
                        b.link = Some("hostname".into());
                    }
                }
            }
            Some(many) => {
                b.link = Some(format!(
                    "hostname {host} matches {} inventory devices; left unlinked",
                    many.len()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::reconcile;

    fn dev(id: &str, name: &str, serial: Option<&str>) -> Device {
        Device {
            id: id.into(),
            name: name.into(),
            source: id.split(':').next().unwrap_or_default().into(),
            serial: serial.map(str::to_owned),
            ..Device::default()
        }
    }

    fn machine(id: &str, name: &str, serial: Option<&str>) -> ProtectedSystem {
        let mut b = ProtectedSystem::new("veeam", id, "Veeam", name, ProtectedKind::Machine);
        b.serial = serial.map(str::to_owned);
        b
    }

    #[test]
    fn links_by_serial_then_hostname_and_refuses_clashes_and_ambiguity() {
        let devices = vec![
            dev("ninja:1", "FS01", Some("SN1")),
            dev("ninja:2", "DC01", None),
            dev("ninja:3", "PC", Some("A")),
            dev("intune:4", "pc", Some("B")),
        ];
        let inventory = reconcile(&devices);
        let mut backups = vec![
            machine("a", "renamed-fs", Some("sn1")),
            machine("b", "dc01.contoso.local", None),
            machine("c", "FS01", Some("OTHER")),
            machine("d", "PC", None),
            machine("e", "NEW", None),
            ProtectedSystem::new("cove", "m365", "Cove", "FS01", ProtectedKind::Workload),
            ProtectedSystem::new("cove", "odd", "Cove", "FS01", ProtectedKind::Unknown),
        ];
        link_backups(&inventory, &devices, &mut backups);
        let got: Vec<(Option<&str>, Option<&str>)> = backups
            .iter()
            .map(|b| (b.inventory_id.as_deref(), b.link.as_deref()))
            .collect();
        assert_eq!(got[0], (Some("device:serial:SN1"), Some("serial")));
        assert_eq!(got[1], (Some("device:host:dc01"), Some("hostname")));
        assert_eq!(got[2].0, None);
        assert!(got[2]
            .1
            .unwrap_or_default()
            .contains("serial numbers differ"));
        assert_eq!(got[3].0, None);
        assert!(got[3].1.unwrap_or_default().contains("matches 2"));
        assert_eq!(got[4].0, None);
        assert_eq!(got[5], (None, None));
        // A system of unknown kind never links, even by an exact host name.
        assert_eq!(got[6].0, None);
        assert!(got[6].1.unwrap_or_default().contains("not linked"));
    }
}
