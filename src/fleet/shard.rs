//! `--shard I/N`: a stable share of the organisations for one of N machines.
//!
//! Rendezvous (highest-random-weight) hashing: every organisation name gets a
//! weight for every shard, SHA-256 of the name and the shard number, and
//! belongs to the shard with the highest. Every organisation is in exactly
//! one shard; the choice depends only on the name and N, never on the other
//! organisations, so adding or removing a client moves no other one, and
//! going from N to N+1 shards moves only the organisations the new shard
//! wins (about 1/(N+1) of them).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// One share of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count` (`index < count`, `count >= 1`).
    ///
    /// # Errors
    /// When `count` is zero or `index` is not below it.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count N in I/N must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index}/{count}: I must be below N (shards are numbered 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether the organisation of this name falls in this shard.
    pub fn contains(&self, organisation: &str) -> bool {
        shard_of(organisation, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("--shard {s:?}: expected I/N, e.g. 0/4"))?;
        let parse = |part: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("--shard {s:?}: expected I/N with whole numbers, e.g. 0/4"))
        };
        Shard::new(parse(i)?, parse(n)?)
    }
}

/// The shard (0-based, below `count`) the organisation `name` belongs to.
pub fn shard_of(name: &str, count: u32) -> u32 {
    (0..count.max(1))
        .max_by_key(|&i| (weight(name, i), std::cmp::Reverse(i)))
        .unwrap_or(0)
}

fn weight(name: &str, shard: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0]);
    h.update(shard.to_be_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("Client {i}")).collect()
    }

    #[test]
    fn every_name_is_in_exactly_one_shard() {
        for count in 1..6 {
            let shards: Vec<Shard> = (0..count)
                .map(|i| Shard::new(i, count).expect("valid"))
                .collect();
            for name in names(200) {
                assert_eq!(shards.iter().filter(|s| s.contains(&name)).count(), 1);
            }
        }
    }

    #[test]
    fn shares_are_even_and_growing_moves_few() {
        let all = names(2000);
        let counts = (0..4).map(|i| all.iter().filter(|n| shard_of(n, 4) == i).count());
        for c in counts {
            assert!((350..650).contains(&c), "uneven share: {c}");
        }
        // From 4 to 5 shards only names the new shard wins move (about 1/5).
        let moved: Vec<&String> = all
            .iter()
            .filter(|n| shard_of(n, 4) != shard_of(n, 5))
            .collect();
        assert!(moved.iter().all(|n| shard_of(n, 5) == 4));
        assert!(moved.len() < 2000 / 5 + 100, "{} moved", moved.len());
    }

    #[test]
    fn bad_shards_are_refused() {
        assert_eq!("1/3".parse::<Shard>(), Shard::new(1, 3));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("a/2".parse::<Shard>().is_err());
        assert!("2".parse::<Shard>().is_err());
    }
}
