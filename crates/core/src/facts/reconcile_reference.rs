//! The reconciliation before its sets kept their own keys (quadratic in the
//! number of records), kept verbatim for tests: the current one must give
//! byte-identical inventories.

use std::collections::{BTreeMap, BTreeSet};

use super::{aad_key, normalise_hostname, serial_key, sorted};
use crate::facts::{Device, InventoryItem};

struct Sets {
    parent: Vec<usize>,
}

impl Sets {
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
            self.parent[a.max(b)] = a.min(b);
        }
    }
}

/// The reconciliation as it was before the per-set keys: the same rules,
/// collecting each set's keys by scanning every record.
pub(super) fn reconcile(devices: &[Device]) -> Vec<InventoryItem> {
    let mut sets = Sets {
        parent: (0..devices.len()).collect(),
    };
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
    let mut matched: BTreeMap<usize, BTreeSet<&'static str>> = BTreeMap::new();

    for (keys, label) in [(&serials, "serial"), (&aads, "aad_device_id")] {
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(k) = key {
                if let Some(&j) = first.get(k.as_str()) {
                    sets.union(i, j);
                    matched.entry(i).or_default().insert(label);
                    matched.entry(j).or_default().insert(label);
                } else {
                    first.insert(k, i);
                }
            }
        }
    }

    // Hostname links, refused where strong identities disagree.
    let mut by_host: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, h) in hosts.iter().enumerate() {
        if let Some(h) = h {
            by_host.entry(h).or_default().push(i);
        }
    }
    let mut conflicts: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let ids = |root: usize, keys: &[Option<String>], sets: &mut Sets| -> BTreeSet<String> {
        (0..devices.len())
            .filter(|&i| sets.find(i) == root)
            .filter_map(|i| keys[i].clone())
            .collect()
    };
    for (host, members) in &by_host {
        // Records whose machine carries a serial or Entra id, and those without.
        let (strong, weak): (Vec<usize>, Vec<usize>) = members.iter().partition(|&&i| {
            let root = sets.find(i);
            !ids(root, &serials, &mut sets).is_empty() || !ids(root, &aads, &mut sets).is_empty()
        });
        for (n, &a) in strong.iter().enumerate() {
            for &b in &strong[n + 1..] {
                let (ra, rb) = (sets.find(a), sets.find(b));
                if ra == rb {
                    continue;
                }
                let (sa, sb) = (ids(ra, &serials, &mut sets), ids(rb, &serials, &mut sets));
                let (aa, ab) = (ids(ra, &aads, &mut sets), ids(rb, &aads, &mut sets));
                let serial_clash = !sa.is_empty() && !sb.is_empty() && sa.is_disjoint(&sb);
                let aad_clash = !aa.is_empty() && !ab.is_empty() && aa.is_disjoint(&ab);
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
                    matched.entry(a).or_default().insert("hostname");
                    matched.entry(b).or_default().insert("hostname");
                }
            }
        }
        // A record with only a hostname joins the one machine of that name;
        // when several distinct machines share the name it is ambiguous and
        // stays apart, flagged, rather than being guessed onto one of them.
        let machines: BTreeSet<usize> = strong.iter().map(|&i| sets.find(i)).collect();
        match machines.len() {
            0 | 1 => {
                let target = machines.first().copied().or(weak.first().copied());
                if let Some(t) = target {
                    for &w in &weak {
                        if sets.find(w) != sets.find(t) {
                            sets.union(w, t);
                            matched.entry(w).or_default().insert("hostname");
                            matched.entry(t).or_default().insert("hostname");
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

    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..devices.len() {
        let root = sets.find(i);
        groups.entry(root).or_default().push(i);
    }
    let mut items: Vec<InventoryItem> = groups
        .into_values()
        .map(|members| {
            let pick =
                |keys: &[Option<String>]| members.iter().filter_map(|&i| keys[i].clone()).min();
            let id = if let Some(s) = pick(&serials) {
                format!("device:serial:{s}")
            } else if let Some(a) = pick(&aads) {
                format!("device:aad:{a}")
            } else if let Some(h) = pick(&hosts) {
                format!("device:host:{h}")
            } else {
                format!("device:{}", devices[members[0]].id)
            };
            let mut names: BTreeMap<&str, usize> = BTreeMap::new();
            for &i in &members {
                *names.entry(devices[i].name.as_str()).or_default() += 1;
            }
            let best = names.values().copied().max().unwrap_or(0);
            // Ties (a renamed machine) go to the name seen most recently.
            let name = members
                .iter()
                .filter(|&&i| names.get(devices[i].name.as_str()) == Some(&best))
                .max_by(|&&a, &&b| {
                    devices[a]
                        .last_seen
                        .cmp(&devices[b].last_seen)
                        .then(devices[b].name.cmp(&devices[a].name))
                })
                .map(|&i| devices[i].name.clone())
                .unwrap_or_default();
            InventoryItem {
                id,
                name,
                members: sorted(members.iter().map(|&i| devices[i].id.clone())),
                sources: sorted(members.iter().map(|&i| devices[i].source.clone())),
                matched_by: sorted(members.iter().flat_map(|i| {
                    matched
                        .get(i)
                        .into_iter()
                        .flatten()
                        .map(|s| (*s).to_owned())
                })),
                conflicts: sorted(
                    members
                        .iter()
                        .flat_map(|i| conflicts.get(i).into_iter().flatten().cloned()),
                ),
            }
        })
        .collect();
    // Two separate machines can still share a derived id (same hostname, no
    // serials, refused for an Entra id clash): keep ids unique.
    items.sort_by(|a, b| a.id.cmp(&b.id).then(a.members.cmp(&b.members)));
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for item in &mut items {
        let n = seen.entry(item.id.clone()).or_default();
        *n += 1;
        if *n > 1 {
            item.id = format!("{}#{}", item.id, n);
        }
    }
    items
}
