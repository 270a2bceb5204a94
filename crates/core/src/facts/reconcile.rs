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

use std::borrow::Cow;
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
    serial_cow(serial).map(Cow::into_owned)
}

/// `s` trimmed and in one ASCII case (upper when `upper`), borrowed when it
/// already is.
fn folded(s: &str, upper: bool) -> Cow<'_, str> {
    let s = s.trim();
    if upper && s.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(s.to_ascii_uppercase())
    } else if !upper && s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// [`serial_key`], borrowing the serial when it is already upper case (as
/// nearly every vendor reports it).
fn serial_cow(serial: Option<&str>) -> Option<Cow<'_, str>> {
    let s = folded(serial?, true);
    (!PLACEHOLDER_SERIALS.contains(&s.as_ref()) && !s.chars().all(|c| c == '0')).then_some(s)
}

#[cfg(test)]
fn aad_key(id: Option<&str>) -> Option<String> {
    aad_cow(id).map(Cow::into_owned)
}

/// The Entra device id for matching: lower case, not empty, not the nil id;
/// borrowed when already lower case.
fn aad_cow(id: Option<&str>) -> Option<Cow<'_, str>> {
    let s = folded(id?, false);
    (!s.is_empty() && s != "00000000-0000-0000-0000-000000000000").then_some(s)
}

/// A hostname reduced for matching: lower case, no domain suffix, no trailing `$`.
pub fn normalise_hostname(name: &str) -> Option<String> {
    host_cow(name).map(Cow::into_owned)
}

/// [`normalise_hostname`], borrowing the name when it is already reduced.
fn host_cow(name: &str) -> Option<Cow<'_, str>> {
    let host = name
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches('$');
    let host = if !host.is_ascii() {
        Cow::Owned(host.to_lowercase())
    } else if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    };
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
    fn new(serials: &'a [Option<Cow<'_, str>>], aads: &'a [Option<Cow<'_, str>>]) -> Sets<'a> {
        let one = |key: &'a Option<Cow<'_, str>>| key.as_deref().map_or(Keys::Empty, Keys::One);
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
    // The three keys of every record, and the records each key links, each
    // key on a core of its own; keys are borrowed from the records wherever
    // they are already in matching form.
    let ((serials, serial_links), (aads, aad_links), (hosts, by_host)) =
        std::thread::scope(|scope| {
            let serials =
                scope.spawn(|| keyed(devices.iter().map(|d| serial_cow(d.serial.as_deref()))));
            let aads =
                scope.spawn(|| keyed(devices.iter().map(|d| aad_cow(d.aad_device_id.as_deref()))));
            let hosts: Vec<Option<Cow<'_, str>>> =
                devices.iter().map(|d| host_cow(&d.name)).collect();
            // Hostnames in order, each with its records in index order.
            let mut ids: HashMap<&str, usize> = HashMap::with_capacity(hosts.len());
            let mut names: Vec<&str> = Vec::new();
            let labels: Vec<usize> = hosts
                .iter()
                .map(|h| match h {
                    Some(h) => *ids.entry(h).or_insert_with(|| {
                        names.push(h);
                        names.len() - 1
                    }),
                    None => usize::MAX,
                })
                .collect();
            let order = sorted_order(names.iter());
            let mut rank = vec![0; order.len()];
            for (r, &id) in order.iter().enumerate() {
                rank[id] = r;
            }
            let labels = labels
                .iter()
                .map(|&l| rank.get(l).copied().unwrap_or(usize::MAX));
            let by_host = Groups::new(labels, names.len());
            (joined(serials), joined(aads), (hosts, by_host))
        });
    let mut sets = Sets::new(&serials, &aads);
    let mut matched: Vec<u8> = vec![0; devices.len()];
    for (links, label) in [(&serial_links, BY_SERIAL), (&aad_links, BY_AAD)] {
        for &(i, j) in links {
            sets.union(i, j);
            matched[i] |= label;
            matched[j] |= label;
        }
    }

    // Hostname links, refused where strong identities disagree; hostnames
    // taken in order, each with its records in index order.
    let mut conflicts: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let (mut strong, mut weak, mut machines) = (Vec::new(), Vec::new(), Vec::new());
    for members in by_host.iter() {
        // One record alone has nothing to join by its hostname.
        if members.len() < 2 {
            continue;
        }
        let host = hosts[members[0]].as_deref().unwrap_or_default();
        // Records whose machine carries a serial or Entra id, and those without.
        strong.clear();
        weak.clear();
        for &i in members {
            let root = sets.find(i);
            if sets.strong(root) {
                strong.push(i);
            } else {
                weak.push(i);
            }
        }
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
        machines.clear();
        machines.extend(strong.iter().map(|&i| sets.find(i)));
        machines.sort_unstable();
        machines.dedup();
        match machines.len() {
            0 | 1 => {
                let target = machines.first().copied().or(weak.first().copied());
                if let Some(t) = target {
                    for &w in weak.iter() {
                        if sets.find(w) != sets.find(t) {
                            sets.union(w, t);
                            matched[w] |= BY_HOST;
                            matched[t] |= BY_HOST;
                        }
                    }
                }
            }
            n => {
                for &w in weak.iter() {
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
    let mut count = 0;
    let labels: Vec<usize> = (0..devices.len())
        .map(|i| {
            let root = sets.find(i);
            if group_of[root] == usize::MAX {
                group_of[root] = count;
                count += 1;
            }
            group_of[root]
        })
        .collect();
    let groups = Groups::new(labels.into_iter(), count);
    // The items of the sets, half on each of two cores: each reads records
    // all over the list (a machine's records are far apart), which memory,
    // not arithmetic, bounds.
    let item = |members: &[usize], scratch: &mut Vec<usize>| -> InventoryItem {
        let pick = |keys: &[Option<Cow<'_, str>>]| {
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
            name: display_name(devices, members),
            members: sorted_strings(scratch, members, |i| &devices[i].id),
            sources: sorted_strings(scratch, members, |i| &devices[i].source),
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
    };
    let build = |range: std::ops::Range<usize>| -> Vec<InventoryItem> {
        let mut scratch = Vec::new();
        range.map(|g| item(groups.get(g), &mut scratch)).collect()
    };
    let half = groups.len() / 2;
    let mut items = std::thread::scope(|scope| {
        let second = scope.spawn(|| build(half..groups.len()));
        let mut items = build(0..half);
        items.extend(joined(second));
        items
    });
    // In id order; an id and its members together are unique (a record is in
    // one item), so the order is total. Sorted by index, each item moved once.
    let order = sorted_order(items.iter().map(|i| (&i.id, &i.members)));
    put_in_order(&mut items, &order);
    // Two separate machines can still share a derived id (same hostname, no
    // serials, refused for an Entra id clash): keep ids unique. Equal ids are
    // next to each other once sorted.
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

/// Records in groups, each group's records in index order, the groups one
/// after another in one list (no list of its own for each of tens of
/// thousands of groups).
struct Groups {
    /// Where each group starts in `members`, and where the last one ends.
    start: Vec<usize>,
    members: Vec<usize>,
}

impl Groups {
    /// Group the records by `labels` (one per record, each below `count`, or
    /// out of range for a record in no group).
    fn new(labels: impl Iterator<Item = usize> + Clone, count: usize) -> Groups {
        let mut start = vec![0; count + 1];
        for l in labels.clone().filter(|&l| l < count) {
            start[l + 1] += 1;
        }
        for g in 0..count {
            start[g + 1] += start[g];
        }
        let mut next = start.clone();
        let mut members = vec![0; start[count]];
        for (i, l) in labels.enumerate().filter(|&(_, l)| l < count) {
            members[next[l]] = i;
            next[l] += 1;
        }
        Groups { start, members }
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// The records of group `g`.
    fn get(&self, g: usize) -> &[usize] {
        &self.members[self.start[g]..self.start[g + 1]]
    }

    fn iter(&self) -> impl Iterator<Item = &[usize]> {
        (0..self.len()).map(|g| self.get(g))
    }
}

/// One record's key of one kind, if it has one.
type Key<'a> = Option<Cow<'a, str>>;

/// Keys in record order, and the links they make: each record whose key an
/// earlier record has, with the first such record.
fn keyed<'a>(keys: impl Iterator<Item = Key<'a>>) -> (Vec<Key<'a>>, Vec<(usize, usize)>) {
    let keys: Vec<Key<'a>> = keys.collect();
    let mut links = Vec::new();
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        if let Some(k) = key {
            match first.entry(k.as_ref()) {
                Entry::Occupied(j) => links.push((i, *j.get())),
                Entry::Vacant(v) => {
                    v.insert(i);
                }
            }
        }
    }
    (keys, links)
}

/// What a scoped thread returned; its panic goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The display name of a set: the most common name among its records, ties
/// (a renamed machine) going to the name seen most recently.
fn display_name(devices: &[Device], members: &[usize]) -> String {
    if let [only] = members {
        return devices[*only].name.clone();
    }
    // A machine has a handful of records: count by comparing them, without
    // a map or a list, unless it has many.
    let mut few = [0usize; 16];
    let mut many = Vec::new();
    let counts: &[usize] = if members.len() <= few.len() {
        for (count, &i) in few.iter_mut().zip(members) {
            *count = members
                .iter()
                .filter(|&&j| devices[j].name == devices[i].name)
                .count();
        }
        &few[..members.len()]
    } else {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in members {
            *names.entry(devices[i].name.as_str()).or_default() += 1;
        }
        many.extend(
            members
                .iter()
                .map(|&i| names.get(devices[i].name.as_str()).copied().unwrap_or(0)),
        );
        &many
    };
    let best = counts.iter().copied().max().unwrap_or(0);
    members
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n == best)
        .map(|(&i, _)| i)
        .max_by(|&a, &b| {
            devices[a]
                .last_seen
                .cmp(&devices[b].last_seen)
                .then(devices[b].name.cmp(&devices[a].name))
        })
        .map(|i| devices[i].name.clone())
        .unwrap_or_default()
}

/// The `key`s of `members`, sorted, without repeats, as owned strings
/// (`scratch` is reused from call to call).
fn sorted_strings<'a>(
    scratch: &mut Vec<usize>,
    members: &[usize],
    key: impl Fn(usize) -> &'a str,
) -> Vec<String> {
    scratch.clear();
    scratch.extend_from_slice(members);
    scratch.sort_unstable_by(|&a, &b| key(a).cmp(key(b)));
    scratch.dedup_by(|a, b| key(*a) == key(*b));
    scratch.iter().map(|&i| key(i).to_owned()).collect()
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
                let order = sorted_order(users.iter().map(|u| u.id.as_str()));
                put_in_order(users, &order);
                for u in users.iter_mut() {
                    u.roles.sort();
                    u.roles.dedup();
                }
                let order = sorted_order(
                    patches
                        .iter()
                        .map(|p| (p.device_id.as_str(), p.name.as_str(), p.kb.as_deref())),
                );
                put_in_order(patches, &order);
            });
            let order = sorted_order(devices.iter().map(|d| d.id.as_str()));
            put_in_order(devices, &order);
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

/// The order that sorts `keys` stably: the indices of the keys, smallest
/// first, equal keys in their first order. Sorting compact (key, index)
/// pairs reads each record's key where it lies once, not at every one of a
/// sort's comparisons.
fn sorted_order<K: Ord>(keys: impl Iterator<Item = K>) -> Vec<usize> {
    let mut keyed: Vec<(K, usize)> = keys.zip(0..).collect();
    // The index makes every pair distinct: an unstable sort gives the stable order.
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Put `items` in `order` (from [`sorted_order`]) in place, one cycle of
/// the permutation at a time: no second list of large records to allocate
/// and fill.
fn put_in_order<T>(items: &mut [T], order: &[usize]) {
    let mut order = order.to_vec();
    for start in 0..order.len() {
        // Position `at` is to hold what `order[at]` holds now; an index done
        // is marked by pointing at itself.
        let mut at = start;
        loop {
            let from = order[at];
            order[at] = at;
            if from == start || from == at {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
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
        let order = sorted_order(items.iter().map(|i| i.0));
        put_in_order(&mut items, &order);
        assert_eq!(items, expected);
        assert_eq!(items, [(0, 3), (1, 1), (1, 4), (3, 0), (3, 2), (3, 5)]);
        let mut empty: Vec<(u8, usize)> = Vec::new();
        let order = sorted_order(empty.iter().map(|i| i.0));
        put_in_order(&mut empty, &order);
        assert!(empty.is_empty());
    }

    #[test]
    fn putting_in_order_follows_any_permutation() {
        // Keys from a small generator, many repeated: every cycle shape.
        let mut state = 7u64;
        for n in 0..200usize {
            let keys: Vec<u64> = (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state % 17
                })
                .collect();
            let mut items: Vec<(u64, usize)> = keys.iter().copied().zip(0..).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| k);
            let order = sorted_order(keys.iter());
            put_in_order(&mut items, &order);
            assert_eq!(items, expected, "{n} items");
        }
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
