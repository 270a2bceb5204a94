//! `backup_coverage`: every server and every critical device is backed up.
//!
//! **What it tests.** Every machine of the reconciled inventory that is a
//! server (by the operating system its sources report), and every device the
//! organisation marks critical (`[organisation] critical_devices`, by host
//! name or serial number), is protected by at least one backup product's
//! job: some protected system is linked to it (by serial number, else host
//! name; see the backup facts). An unprotected server fails. Unproven,
//! listed apart: an unprotected machine when some backup source was partial,
//! failed or listed no protected system at all (it might be that source's);
//! a machine whose host name a backup record carries but could not be linked
//! (ambiguous or clashing serials, or a record whose source does not say it
//! is a machine); a critical device no source inventories.
//!
//! Only machines count. A workload (a Microsoft 365 tenant, a share, a
//! database) is no device: it neither protects a server nor, by sharing its
//! name, makes an unprotected one unproven; its own backup results are judged
//! by `backup_recency`, `backup_321` and `restore_tested`. A record of
//! unknown kind never protects a device (that would count a backup nobody
//! can show is of that machine); a server of its host name is unproven.
//!
//! **Why it matters.** "Everyone thought someone else did the backups": a
//! server added after the backup jobs were set up is the one lost to
//! ransomware. HIPAA 164.308(a)(7)(ii)(A) and 164.310(d)(2)(iv) ask for
//! retrievable copies of ePHI before equipment moves; SOC 2 A1.2 for
//! backups of the systems that support availability commitments.
//!
//! **Evidence.** The reconciled device inventory (every device source) and
//! the protected systems of every backup source, linked to it.
//!
//! **How to fix.** Add the listed servers to a backup job (or install the
//! backup agent); if a listed machine is not a server or needs no backup,
//! record why. Give backup products the host names the RMM uses so that the
//! records link.

use std::collections::{BTreeMap, BTreeSet};

use super::backups::source_gaps;
use super::{inventory_subject, Check, CheckInput, Outcome};
use crate::facts::{normalise_hostname, DeviceClass, FactKind, ProtectedKind};

pub(super) const CHECK: Check = Check {
    id: "backup_coverage",
    source: include_str!("backup_coverage.rs"),
    title: "Every server and critical device is protected by a backup job",
    thresholds: &[],
    remediation:
        "Add the listed servers and critical devices to a backup job, or record why they need none.",
    needs: &[FactKind::Devices, FactKind::Backups],
    per_subject: &[FactKind::Backups],
    run,
};

fn run(input: &CheckInput<'_>) -> Outcome {
    let facts = input.facts;
    let index = input.device_index();
    let gaps = source_gaps(input, FactKind::Backups);
    let critical: BTreeSet<String> = facts
        .critical_devices
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    let protected: BTreeSet<&str> = facts
        .backups
        .iter()
        .filter_map(|b| b.inventory_id.as_deref())
        .collect();
    // Backup records that may be machines, carry a host name, and were not
    // linked. Workloads are not devices: they are left out.
    let mut unlinked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in facts
        .backups
        .iter()
        .filter(|b| b.inventory_id.is_none() && b.kind != ProtectedKind::Workload)
    {
        if let Some(h) = normalise_hostname(b.hostname.as_deref().unwrap_or(&b.name)) {
            unlinked.entry(h).or_default().push(format!(
                "{} ({})",
                b.id,
                b.link.as_deref().unwrap_or("not linked")
            ));
        }
    }
    let mut seen_critical: BTreeSet<String> = BTreeSet::new();
    let mut evaluated = 0;
    let mut failing = Vec::new();
    let mut unproven = gaps.clone();
    for (item, members) in index.items() {
        let mut keys: BTreeSet<String> = BTreeSet::new();
        for d in members {
            keys.insert(d.name.trim().to_ascii_lowercase());
            keys.extend(normalise_hostname(&d.name));
            keys.extend(d.serial.as_deref().map(|s| s.trim().to_ascii_lowercase()));
        }
        let hits: Vec<String> = critical.intersection(&keys).cloned().collect();
        let is_critical = !hits.is_empty();
        seen_critical.extend(hits);
        let class = DeviceClass::of_records(members.iter().copied());
        if class != DeviceClass::Server && !is_critical {
            continue;
        }
        evaluated += 1;
        if protected.contains(item.id.as_str()) {
            continue;
        }
        let what = if class == DeviceClass::Server {
            "server"
        } else {
            "critical device"
        };
        let near: Vec<&String> = members
            .iter()
            .filter_map(|d| normalise_hostname(&d.name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|h| unlinked.get(&h))
            .flatten()
            .collect();
        if !near.is_empty() {
            let list: Vec<&str> = near.iter().map(|s| s.as_str()).collect();
            unproven.push(inventory_subject(
                item,
                format!(
                    "{what} with no linked backup; backup records of its host name could not be linked: {}",
                    list.join(", ")
                ),
            ));
        } else if !gaps.is_empty() {
            let names: Vec<&str> = gaps.iter().map(|g| g.name.as_str()).collect();
            unproven.push(inventory_subject(
                item,
                format!(
                    "{what} no complete backup source protects; it may be in the list of {}, which cannot be relied on",
                    names.join(", ")
                ),
            ));
        } else {
            failing.push(inventory_subject(
                item,
                format!("{what} not protected by any backup job"),
            ));
        }
    }
    for name in critical.difference(&seen_critical) {
        evaluated += 1;
        unproven.push(super::Subject {
            id: format!("critical:{name}"),
            name: name.clone(),
            detail: "marked critical, but no device source inventories it".to_owned(),
        });
    }
    Outcome::judge_all(evaluated, failing, unproven, "servers and critical devices")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::backups::fixtures::{from_veeam, system};
    use crate::checks::fixtures::{device, ids, run as run_with};
    use crate::checks::{Limits, Verdict};
    use crate::facts::{BackupResult, Device, Facts, ProtectedSystem};

    fn server(source: &str, id: &str, name: &str) -> Device {
        Device {
            os: Some("Windows Server 2022 Standard".into()),
            ..device(source, id, name)
        }
    }

    fn judge(devices: Vec<Device>, backups: Vec<ProtectedSystem>, critical: &[&str]) -> Outcome {
        let mut facts = from_veeam(
            Facts {
                devices,
                backups,
                critical_devices: critical.iter().map(|c| (*c).to_owned()).collect(),
                ..Facts::default()
            },
            &[FactKind::Devices, FactKind::Backups],
        );
        facts.finish();
        run_with(&CHECK, &facts, &Limits::DEFAULT)
    }

    #[test]
    fn table() {
        let ok = || system("FS01", Some(1), BackupResult::Success);
        type Case = (
            &'static str,
            Vec<Device>,
            Vec<ProtectedSystem>,
            &'static [&'static str],
            Verdict,
            &'static [&'static str],
        );
        let cases: Vec<Case> = vec![
            (
                "protected server",
                vec![server("ninja", "1", "FS01")],
                vec![ok()],
                &[],
                Verdict::Pass,
                &[],
            ),
            (
                "unprotected server fails",
                vec![server("ninja", "1", "FS01"), server("ninja", "2", "DC01")],
                vec![ok()],
                &[],
                Verdict::Fail,
                &["device:serial:SN-DC01"],
            ),
            (
                "workstations are out of scope",
                vec![device("ninja", "3", "PC01")],
                vec![ok()],
                &[],
                Verdict::Pass,
                &[],
            ),
            (
                "a critical workstation is in scope",
                vec![device("ninja", "3", "PC01")],
                vec![ok()],
                &["pc01"],
                Verdict::Fail,
                &["device:serial:SN-PC01"],
            ),
            (
                "a critical device nobody inventories is unproven",
                vec![server("ninja", "1", "FS01")],
                vec![ok()],
                &["ghost"],
                Verdict::Inconclusive,
                &[],
            ),
            (
                "0 jobs: unproven, not fail and not pass",
                vec![server("ninja", "1", "FS01")],
                vec![],
                &[],
                Verdict::Inconclusive,
                &[],
            ),
        ];
        for (name, devices, backups, critical, verdict, failing) in cases {
            let out = judge(devices, backups, critical);
            assert_eq!(out.verdict, verdict, "{name}: {out:?}");
            assert_eq!(ids(&out), failing, "{name}");
        }
    }

    /// A Cove-style system of `kind` named `name`, backed up an hour ago.
    fn of_kind(name: &str, kind: ProtectedKind) -> ProtectedSystem {
        let mut b = system(name, Some(0), BackupResult::Success);
        b.kind = kind;
        b
    }

    #[test]
    fn only_machines_protect_devices() {
        // A Microsoft 365 account named like the server neither protects it
        // nor makes it unproven: the server is unprotected.
        let out = judge(
            vec![server("ninja", "1", "FS01")],
            vec![of_kind("FS01", ProtectedKind::Workload)],
            &[],
        );
        assert_eq!(out.verdict, Verdict::Fail, "{out:?}");
        assert_eq!(ids(&out), ["device:serial:SN-FS01"]);

        // A record whose kind is not known never counts as the server's
        // backup; the server is unproven, not passed and not failed.
        let out = judge(
            vec![server("ninja", "1", "FS01")],
            vec![of_kind("FS01", ProtectedKind::Unknown)],
            &[],
        );
        assert_eq!(out.verdict, Verdict::Inconclusive, "{out:?}");
        assert!(ids(&out).is_empty());
        assert!(out.unproven[0].detail.contains("could not be linked"));

        // A machine beside a Microsoft 365 account: the machine protects.
        let out = judge(
            vec![server("ninja", "1", "FS01")],
            vec![
                system("FS01", Some(1), BackupResult::Success),
                of_kind("Contoso M365", ProtectedKind::Workload),
            ],
            &[],
        );
        assert_eq!(out.verdict, Verdict::Pass, "{out:?}");
    }

    #[test]
    fn findings_snapshot() {
        let mut clash = system("APP01", Some(1), BackupResult::Success);
        clash.serial = Some("OTHER".into());
        insta::assert_json_snapshot!(judge(
            vec![
                server("ninja", "1", "FS01"),
                server("ninja", "2", "DC01"),
                server("ninja", "3", "APP01"),
                device("ninja", "4", "RECEPTION"),
            ],
            vec![system("FS01", Some(1), BackupResult::Success), clash],
            &["reception"],
        ));
    }
}
