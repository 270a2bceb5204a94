//! Device reconciliation: the same machine as Intune, Defender, the RMM and
//! endpoint reports see it, matched into one inventory item.
//!
//! Rules, strongest first:
//! 1. the same hardware serial number (ignoring placeholders such as
//!    "To be filled by O.E.M." or "0") is the same machine;
//! 2. the same Entra ID device id is the same machine;
//! 3. the same normalised hostname (lower case, domain suffix and trailing `$`
//!    removed) is the same machine, unless both sides carry serial numbers (or
//!    Entra device ids) and they differ: then they stay apart and the clash is
//!    recorded as a conflict on both, because a reused hostname is exactly how
//!    an unprotected machine hides behind a protected one.
//! 4. a record with only a hostname (no serial, no Entra id) joins the single
//!    machine of that hostname; when two or more distinct machines share it,
//!    the record is ambiguous: it stays a machine of its own and carries a
//!    conflict, never guessed onto one of them.
//!
//! Matching is transitive (union-find): a renamed machine is still one item
//! when its serial or Entra id links the old and new names. The inventory's
//! display name is the most common name among its records, ties going to the
//! most recently seen (the new name of a renamed machine). Each item lists
//! the sources that know it, so "every device has EDR" and "devices only one
//! source knows about" ([`single_source_devices`]) are questions about
//! `sources`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

// Seeded per process, and several times faster than SipHash on short keys.
use foldhash::{HashMap, HashMapExt as _};

use super::model::{Device, Facts, InventoryItem};

/// Serial numbers that vendors ship as placeholders.
const PLACEHOLDER_SERIALS: &[&str] = &[
    "",
    "0",
    "NONE",
    "N/A",
    "NA",
    "UNKNOWN",
    "DEFAULT STRING",
    "SYSTEM SERIAL NUMBER",
    "TO BE FILLED BY O.E.M.",
    "0123456789",
    "CHASSIS SERIAL NUMBER",
];

pub(super) fn serial_key(serial: Option<&str>) -> Option<String> {
    let s = serial?.trim().to_ascii_uppercase();
    (!PLACEHOLDER_SERIALS.contains(&s.as_str()) && !s.chars().all(|c| c == '0')).then_some(s)
}

fn aad_key(id: Option<&str>) -> Option<String> {
    let s = id?.trim().to_ascii_lowercase();
    (!s.is_empty() && s != "00000000-0000-0000-0000-000000000000").then_some(s)
}

/// A hostname reduced for matching: lower case, no domain suffix, no trailing `$`.
pub fn normalise_hostname(name: &str) -> Option<String> {
    let host = name
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches('$')
        .to_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Union-find over record indices that also keeps, for each set's root, the
/// serial numbers and Entra ids of every record in the set, merged as sets
/// join: the hostname rules ask for them for every record of every hostname,
/// and collecting them by scanning all records made reconciliation
/// quadratic (7.7 s for 90,000 records).
struct Sets<'a> {
    parent: Vec<usize>,
    /// Per root: the serial keys of its records.
    serials: Vec<Keys<'a>>,
    /// Per root: the Entra device id keys of its records.
    aads: Vec<Keys<'a>>,
}

impl<'a> Sets<'a> {
    fn new(serials: &'a [Option<String>], aads: &'a [Option<String>]) -> Sets<'a> {
        let one = |key: &'a Option<String>| key.as_deref().map_or(Keys::Empty, Keys::One);
        Sets {
            parent: (0..serials.len()).collect(),
            serials: serials.iter().map(one).collect(),
            aads: aads.iter().map(one).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            let (root, child) = (a.min(b), a.max(b));
            self.parent[child] = root;
            merge_into(&mut self.serials, root, child);
            merge_into(&mut self.aads, root, child);
        }
    }

    /// Whether the set of `root` carries a serial number or an Entra id.
    fn strong(&self, root: usize) -> bool {
        !self.serials[root].is_empty() || !self.aads[root].is_empty()
    }
}

/// The keys of one set. Nearly every machine has one serial number and one
/// Entra id at most, so a single key is kept without an allocation.
#[derive(Default)]
enum Keys<'a> {
    #[default]
    Empty,
    One(&'a str),
    Many(BTreeSet<&'a str>),
}

impl<'a> Keys<'a> {
    fn is_empty(&self) -> bool {
        matches!(self, Keys::Empty)
    }

    fn contains(&self, key: &str) -> bool {
        match self {
            Keys::Empty => false,
            Keys::One(k) => *k == key,
            Keys::Many(set) => set.contains(key),
        }
    }

    fn is_disjoint(&self, other: &Keys<'a>) -> bool {
        match (self, other) {
            (Keys::Empty, _) | (_, Keys::Empty) => true,
            (Keys::One(k), keys) | (keys, Keys::One(k)) => !keys.contains(k),
            (Keys::Many(a), Keys::Many(b)) => a.is_disjoint(b),
        }
    }

    /// Both sets' keys.
    fn union(self, other: Keys<'a>) -> Keys<'a> {
        match (self, other) {
            (Keys::Empty, keys) | (keys, Keys::Empty) => keys,
            (Keys::One(a), Keys::One(b)) if a == b => Keys::One(a),
            (Keys::One(a), Keys::One(b)) => Keys::Many(BTreeSet::from([a, b])),
            (Keys::Many(mut set), Keys::One(k)) | (Keys::One(k), Keys::Many(mut set)) => {
                set.insert(k);
                Keys::Many(set)
            }
            (Keys::Many(a), Keys::Many(b)) => {
                let (mut into, from) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                into.extend(from);
                Keys::Many(into)
            }
        }
    }
}

/// Move the keys of `child` into those of `root`.
fn merge_into(keys: &mut [Keys<'_>], root: usize, child: usize) {
    let from = std::mem::take(&mut keys[child]);
    let into = std::mem::take(&mut keys[root]);
    keys[root] = into.union(from);
}

/// How records were matched, one bit each, in the (alphabetical) order
/// `matched_by` lists them.
const MATCHED: [(u8, &str); 3] = [(1, "aad_device_id"), (2, "hostname"), (4, "serial")];
const BY_AAD: u8 = 1;
const BY_HOST: u8 = 2;
const BY_SERIAL: u8 = 4;

/// Reconcile per-source device records into one inventory, in id order.
///
/// Keys are looked up in hash maps and per-record marks kept in vectors; the
/// only ordered walk the rules need (hostnames in order, so that the same
/// records give the same links and notes) sorts the distinct hostnames once.
pub fn reconcile(devices: &[Device]) -> Vec<InventoryItem> {
    let serials: Vec<Option<String>> = devices
        .iter()
        .map(|d| serial_key(d.serial.as_deref()))
        .collect();
    let aads: Vec<Option<String>> = devices
        .iter()
        .map(|d| aad_key(d.aad_device_id.as_deref()))
        .collect();
    let hosts: Vec<Option<String>> = devices
        .iter()
        .map(|d| normalise_hostname(&d.name))
        .collect();
    let mut sets = Sets::new(&serials, &aads);
    let mut matched: Vec<u8> = vec![0; devices.len()];

    for (keys, label) in [(&serials, BY_SERIAL), (&aads, BY_AAD)] {
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if let Some(k) = key {
                match first.entry(k.as_str()) {
                    Entry::Occupied(j) => {
                        let j = *j.get();
                        sets.union(i, j);
                        matched[i] |= label;
                        matched[j] |= label;
                    }
                    Entry::Vacant(v) => {
                        v.insert(i);
                    }
                }
            }
        }
    }

    // Hostname links, refused where strong identities disagree; hostnames
    // taken in order, each with its records in index order.
    let mut by_host: HashMap<&str, Vec<usize>> = HashMap::with_capacity(hosts.len());
    for (i, h) in hosts.iter().enumerate() {
        if let Some(h) = h {
            by_host.entry(h).or_default().push(i);
        }
    }
    let mut by_host: Vec<(&str, Vec<usize>)> = by_host.into_iter().collect();
    by_host.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut conflicts: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (host, members) in &by_host {
        // One record alone has nothing to join by its hostname.
        if members.len() < 2 {
            continue;
        }
        // Records whose machine carries a serial or Entra id, and those without.
        let (strong, weak): (Vec<usize>, Vec<usize>) = members.iter().partition(|&&i| {
            let root = sets.find(i);
            sets.strong(root)
        });
        for (n, &a) in strong.iter().enumerate() {
            for &b in &strong[n + 1..] {
                let (ra, rb) = (sets.find(a), sets.find(b));
                if ra == rb {
                    continue;
                }
                let (sa, sb) = (&sets.serials[ra], &sets.serials[rb]);
                let (aa, ab) = (&sets.aads[ra], &sets.aads[rb]);
                let serial_clash = !sa.is_empty() && !sb.is_empty() && sa.is_disjoint(sb);
                let aad_clash = !aa.is_empty() && !ab.is_empty() && aa.is_disjoint(ab);
                if serial_clash || aad_clash {
                    let what = if serial_clash {
                        "serial numbers"
                    } else {
                        "Entra device ids"
                    };
                    let note = format!(
                        "hostname {host} is shared by {} and {} with different {what}",
                        devices[a].id, devices[b].id
                    );
                    conflicts.entry(a).or_default().insert(note.clone());
                    conflicts.entry(b).or_default().insert(note);
                } else {
                    sets.union(a, b);
                    matched[a] |= BY_HOST;
                    matched[b] |= BY_HOST;
                }
            }
        }
        // A record with only a hostname joins the one machine of that name;
        // when several distinct machines share the name it is ambiguous and
        // stays apart, flagged, rather than being guessed onto one of them.
        let mut machines: Vec<usize> = strong.iter().map(|&i| sets.find(i)).collect();
        machines.sort_unstable();
        machines.dedup();
        match machines.len() {
            0 | 1 => {
                let target = machines.first().copied().or(weak.first().copied());
                if let Some(t) = target {
                    for &w in &weak {
                        if sets.find(w) != sets.find(t) {
                            sets.union(w, t);
                            matched[w] |= BY_HOST;
                            matched[t] |= BY_HOST;
                        }
                    }
                }
            }
            n => {
                for &w in &weak {
                    let note = format!(
                        "hostname {host} matches {n} machines with different serial numbers or Entra device ids; {} carries neither and is left unmatched",
                        devices[w].id
                    );
                    conflicts.entry(w).or_default().insert(note);
                }
            }
        }
    }

    // Each set's members in index order, the sets in the order of their
    // roots (a set's root is its lowest index).
    let mut group_of: Vec<usize> = vec![usize::MAX; devices.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in 0..devices.len() {
        let root = sets.find(i);
        if group_of[root] == usize::MAX {
            group_of[root] = groups.len();
            groups.push(Vec::new());
        }
        groups[group_of[root]].push(i);
    }
    let mut items: Vec<InventoryItem> = groups
        .into_iter()
        .map(|members| {
            let pick = |keys: &[Option<String>]| {
                members
                    .iter()
                    .filter_map(|&i| keys[i].as_deref())
                    .min()
                    .map(str::to_owned)
            };
            let id = if let Some(s) = pick(&serials) {
                format!("device:serial:{s}")
            } else if let Some(a) = pick(&aads) {
                format!("device:aad:{a}")
            } else if let Some(h) = pick(&hosts) {
                format!("device:host:{h}")
            } else {
                format!("device:{}", devices[members[0]].id)
            };
            InventoryItem {
                id,
                name: display_name(devices, &members),
                members: sorted_strings(members.iter().map(|&i| devices[i].id.as_str())),
                sources: sorted_strings(members.iter().map(|&i| devices[i].source.as_str())),
                matched_by: {
                    let bits = members.iter().fold(0, |bits, &i| bits | matched[i]);
                    MATCHED
                        .iter()
                        .filter(|(bit, _)| bits & bit != 0)
                        .map(|(_, label)| (*label).to_owned())
                        .collect()
                },
                conflicts: if conflicts.is_empty() {
                    Vec::new()
                } else {
                    let notes: BTreeSet<&String> = members
                        .iter()
                        .flat_map(|i| conflicts.get(i).into_iter().flatten())
                        .collect();
                    notes.into_iter().cloned().collect()
                },
            }
        })
        .collect();
    // Two separate machines can still share a derived id (same hostname, no
    // serials, refused for an Entra id clash): keep ids unique. Equal ids are
    // next to each other once sorted.
    items.sort_by(|a, b| a.id.cmp(&b.id).then(a.members.cmp(&b.members)));
    let mut previous: Option<String> = None;
    let mut run = 0usize;
    for item in &mut items {
        if previous.as_ref() == Some(&item.id) {
            run += 1;
            item.id = format!("{}#{run}", item.id);
        } else {
            run = 1;
            previous = Some(item.id.clone());
        }
    }
    items
}

/// The display name of a set: the most common name among its records, ties
/// (a renamed machine) going to the name seen most recently.
fn display_name(devices: &[Device], members: &[usize]) -> String {
    if let [only] = members {
        return devices[*only].name.clone();
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in members {
        *names.entry(devices[i].name.as_str()).or_default() += 1;
    }
    let best = names.values().copied().max().unwrap_or(0);
    members
        .iter()
        .filter(|&&i| names.get(devices[i].name.as_str()) == Some(&best))
        .max_by(|&&a, &&b| {
            devices[a]
                .last_seen
                .cmp(&devices[b].last_seen)
                .then(devices[b].name.cmp(&devices[a].name))
        })
        .map(|&i| devices[i].name.clone())
        .unwrap_or_default()
}

/// Sorted, without repeats, as owned strings.
fn sorted_strings<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut list: Vec<&str> = items.collect();
    list.sort_unstable();
    list.dedup();
    list.into_iter().map(str::to_owned).collect()
}

/// Inventory items only one source knows about (and at least two sources
/// report devices): the machines that may be missing an agent elsewhere.
pub fn single_source_devices(items: &[InventoryItem]) -> Vec<&InventoryItem> {
    let sources: BTreeSet<&str> = items
        .iter()
        .flat_map(|i| i.sources.iter().map(String::as_str))
        .collect();
    if sources.len() < 2 {
        return Vec::new();
    }
    items.iter().filter(|i| i.sources.len() == 1).collect()
}

#[cfg(test)]
fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = items.collect();
    set.into_iter().collect()
}

impl Facts {
    /// Sort everything into a canonical order and reconcile devices; run once
    /// after every normaliser, so output is byte-stable.
    pub fn finish(&mut self) {
        let Facts {
            users,
            devices,
            patches,
            access_reviews,
            manual,
            incidents,
            mfa_enforcement,
            coverage,
            inventory,
            backups,
            ..
        } = self;
        // Users and patches on one core while the devices are reconciled on
        // another: in a large organisation each half is a sort of 100,000
        // records.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                sort_moving_once(users, |a, b| a.id.cmp(&b.id));
                for u in users.iter_mut() {
                    u.roles.sort();
                    u.roles.dedup();
                }
                sort_moving_once(patches, |a, b| {
                    (&a.device_id, &a.name, &a.kb).cmp(&(&b.device_id, &b.name, &b.kb))
                });
            });
            sort_moving_once(devices, |a, b| a.id.cmp(&b.id));
            *inventory = reconcile(devices);
            backups.sort_by(|a, b| a.id.cmp(&b.id));
            super::backup::link_backups(inventory, devices, backups);
        });
        access_reviews.sort_by(|a, b| a.id.cmp(&b.id));
        manual.sort_by(|a, b| a.path.cmp(&b.path));
        incidents.sort_by(|a, b| a.id.cmp(&b.id));
        for e in mfa_enforcement.values_mut() {
            e.policies.sort_by(|a, b| a.id.cmp(&b.id));
            for members in e.group_members.values_mut() {
                members.sort();
                members.dedup();
            }
        }
        for list in coverage.values_mut() {
            list.sort_by(|a, b| (&a.source, &a.dataset).cmp(&(&b.source, &b.dataset)));
        }
    }
}

/// Sort `items` stably, moving each one once: records are large, and a sort
/// that swaps them in place moves each many times.
fn sort_moving_once<T>(items: &mut Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| cmp(&items[a], &items[b]));
    if order.iter().enumerate().all(|(i, &j)| i == j) {
        return;
    }
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    *items = order.iter().filter_map(|&i| slots[i].take()).collect();
}

#[cfg(test)]
#[path = "reconcile_reference.rs"]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str, name: &str, serial: Option<&str>, aad: Option<&str>) -> Device {
        let source = id.split(':').next().unwrap_or_default().to_owned();
        Device {
            id: id.into(),
            name: name.into(),
            os: None,
            last_seen: None,
            source,
            os_version: None,
            serial: serial.map(str::to_owned),
            aad_device_id: aad.map(str::to_owned),
            compliance: None,
            encrypted: None,
            antimalware: None,
            patch: None,
        }
    }

    #[test]
    fn matches_by_serial_aad_and_hostname() {
        let items = reconcile(&[
            dev("intune:1", "PC-01", Some("ABC123"), Some("AAD-1")),
            dev("ninja:7", "pc-01.contoso.local", Some("abc123"), None),
            dev("defender:x", "PC-01", None, Some("aad-1")),
            dev("ninja:8", "PC-02", None, None),
            dev("endpoint:pc-02", "pc-02$", None, None),
        ]);
        assert_eq!(items.len(), 2);
        let pc1 = items
            .iter()
            .find(|i| i.members.len() == 3)
            .expect("PC-01 merged");
        assert_eq!(pc1.id, "device:serial:ABC123");
        assert_eq!(pc1.sources, ["defender", "intune", "ninja"]);
        assert!(pc1.matched_by.contains(&"serial".to_owned()));
        let pc2 = items
            .iter()
            .find(|i| i.members.len() == 2)
            .expect("PC-02 merged by hostname");
        assert_eq!(pc2.id, "device:host:pc-02");
    }

    #[test]
    fn same_hostname_different_serials_stay_apart_with_a_conflict() {
        let items = reconcile(&[
            dev("intune:1", "FRONTDESK", Some("S1"), None),
            dev("ninja:2", "frontdesk", Some("S2"), None),
        ]);
        assert_eq!(items.len(), 2);
        assert!(
            items
                .iter()
                .all(|i| i.conflicts.len() == 1
                    && i.conflicts[0].contains("different serial numbers"))
        );
    }

    #[test]
    fn placeholder_serials_do_not_merge() {
        let items = reconcile(&[
            dev("a:1", "X", Some("To be filled by O.E.M."), None),
            dev("b:2", "Y", Some("to be filled by o.e.m."), None),
            dev("c:3", "Z", Some("0000000"), None),
        ]);
        assert_eq!(items.len(), 3);
    }

    fn at(d: Device, days_ago: i64) -> Device {
        Device {
            last_seen: Some(chrono::Utc::now() - chrono::Duration::days(days_ago)),
            ..d
        }
    }

    #[test]
    fn a_hostname_only_record_shared_by_two_machines_is_ambiguous() {
        let items = reconcile(&[
            dev("intune:1", "FRONTDESK", Some("S1"), None),
            dev("ninja:2", "frontdesk", Some("S2"), None),
            dev("endpoint:frontdesk", "frontdesk.contoso.local", None, None),
        ]);
        assert_eq!(items.len(), 3, "{items:#?}");
        let lone = items
            .iter()
            .find(|i| i.members == ["endpoint:frontdesk"])
            .expect("left alone");
        assert!(lone.conflicts[0].contains("matches 2 machines"));
        assert!(lone.matched_by.is_empty());
    }

    #[test]
    fn partial_identities_chain_through_hostname() {
        // Intune knows serial and Entra id, Defender only the Entra id, the
        // RMM only the hostname, the endpoint report serial and hostname.
        let items = reconcile(&[
            dev("intune:1", "LAB-3", Some("SER-3"), Some("aad-3")),
            dev("defender:m3", "lab-3.contoso.local", None, Some("AAD-3")),
            dev("ninja:30", "LAB-3", None, None),
            dev("endpoint:lab-3", "lab-3", Some("ser-3"), None),
        ]);
        assert_eq!(items.len(), 1, "{items:#?}");
        let item = &items[0];
        assert_eq!(item.sources, ["defender", "endpoint", "intune", "ninja"]);
        assert_eq!(item.matched_by, ["aad_device_id", "hostname", "serial"]);
        assert!(item.conflicts.is_empty());
    }

    #[test]
    fn a_renamed_device_takes_its_newest_name() {
        let items = reconcile(&[
            at(dev("intune:1", "OLD-NAME", Some("S9"), None), 30),
            at(dev("ninja:2", "NEW-NAME", Some("S9"), None), 1),
        ]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].name, "NEW-NAME");
        // Renamed without a serial: the Entra id still links the records.
        let items = reconcile(&[
            dev("intune:1", "PC-OLD", None, Some("aad-7")),
            dev("defender:x", "PC-NEW", None, Some("aad-7")),
        ]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].matched_by, ["aad_device_id"]);
    }

    #[test]
    fn devices_missing_from_a_source_are_listed() {
        let items = reconcile(&[
            dev("intune:1", "PC-01", Some("A"), None),
            dev("ninja:1", "PC-01", Some("A"), None),
            dev("intune:2", "PC-02", Some("B"), None),
            dev("ninja:3", "KIOSK", None, None),
        ]);
        let lonely: Vec<&str> = single_source_devices(&items)
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(lonely, ["KIOSK", "PC-02"]);
        // With one source, nothing is "missing elsewhere".
        assert!(
            single_source_devices(&reconcile(&[dev("ninja:3", "KIOSK", None, None)])).is_empty()
        );
    }

    #[test]
    fn same_entra_id_different_serials_conflict_stays_recorded() {
        let items = reconcile(&[
            dev("intune:1", "PC-A", Some("S1"), None),
            dev("ninja:1", "pc-a", Some("S2"), None),
            dev("intune:9", "PC-B", None, Some("aad-1")),
            dev("defender:9", "pc-b", None, Some("aad-2")),
        ]);
        assert_eq!(items.len(), 4);
        let with_conflicts = items.iter().filter(|i| !i.conflicts.is_empty()).count();
        assert_eq!(with_conflicts, 4);
        assert!(items
            .iter()
            .any(|i| i.conflicts[0].contains("different Entra device ids")));
        let ids: BTreeSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids.len(), 4, "ids stay unique");
    }

    #[test]
    fn sorting_moves_each_record_once_and_keeps_equal_ones_in_order() {
        let mut items: Vec<(u8, usize)> = [3u8, 1, 3, 0, 1, 3]
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        let mut expected = items.clone();
        expected.sort_by_key(|&(k, _)| k);
        sort_moving_once(&mut items, |a, b| a.0.cmp(&b.0));
        assert_eq!(items, expected);
        assert_eq!(items, [(0, 3), (1, 1), (1, 4), (3, 0), (3, 2), (3, 5)]);
        let mut empty: Vec<(u8, usize)> = Vec::new();
        sort_moving_once(&mut empty, |a, b| a.0.cmp(&b.0));
        assert!(empty.is_empty());
    }

    #[test]
    fn a_renamed_device_is_matched_by_serial() {
        let items = reconcile(&[
            dev("intune:1", "OLD-NAME", Some("S9"), None),
            dev("ninja:2", "NEW-NAME", Some("S9"), None),
        ]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].members.len(), 2);
    }

    /// A generated inventory full of the cases the rules tell apart: shared
    /// serials and Entra ids in any case, placeholders, hostnames with domain
    /// suffixes and `$`, hostnames reused by different machines, records with
    /// only a hostname, renames and ties in `last_seen`.
    fn generated(records: usize, seed: u64) -> Vec<Device> {
        let mut state = seed;
        let mut next = move |n: u64| {
            // xorshift64*: deterministic, no dependency.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        };
        let placeholders = ["", "0", "To be filled by O.E.M.", "000000", "n/a"];
        let sources = ["intune", "ninja", "defender", "endpoint"];
        (0..records)
            .map(|i| {
                let machine = next(records as u64 / 3 + 1);
                let serial = match next(10) {
                    0..=4 => Some(format!("sn{machine}")),
                    5 => Some(format!("SN{}", next(records as u64 / 3 + 1))),
                    6 => Some(placeholders[next(5) as usize].to_owned()),
                    _ => None,
                };
                let aad = match next(8) {
                    0..=2 => Some(format!("AAD-{}", machine / 2)),
                    3 => Some("00000000-0000-0000-0000-000000000000".to_owned()),
                    _ => None,
                };
                let host = match next(6) {
                    0 => format!("pc-{}", machine / 4),
                    1 => format!("PC-{machine}.contoso.local"),
                    2 => format!("pc-{machine}$"),
                    3 => format!("PC-{}", next(records as u64 / 5 + 1)),
                    _ => format!("PC-{machine}"),
                };
                let source = sources[next(4) as usize];
                let mut d = dev(
                    &format!("{source}:{i}"),
                    &host,
                    serial.as_deref(),
                    aad.as_deref(),
                );
                d.last_seen = (next(3) > 0).then(|| {
                    chrono::DateTime::from_timestamp(1_700_000_000 + next(5) as i64 * 86_400, 0)
                        .unwrap_or_default()
                });
                d
            })
            .collect()
    }

    #[test]
    fn gives_byte_identical_inventories_to_the_previous_algorithm() -> serde_json::Result<()> {
        for (records, seed) in [(10, 1), (200, 2), (1_000, 3), (3_000, 4), (3_000, 5)] {
            let devices = generated(records, seed);
            let now = reconcile(&devices);
            let before = reference::reconcile(&devices);
            assert_eq!(serde_json::to_vec(&now)?, serde_json::to_vec(&before)?);
            // The set exercises every rule.
            if records >= 1_000 {
                assert!(now.iter().any(|i| i.members.len() > 2));
                assert!(now.iter().any(|i| i.id.contains('#')));
                let notes: Vec<&String> = now.iter().flat_map(|i| &i.conflicts).collect();
                assert!(notes.iter().any(|n| n.contains("different serial")));
                assert!(notes.iter().any(|n| n.contains("left unmatched")));
                for how in ["serial", "aad_device_id", "hostname"] {
                    assert!(now.iter().any(|i| i.matched_by.iter().any(|m| m == how)));
                }
            }
        }
        Ok(())
    }
}
