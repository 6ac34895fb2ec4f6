//! `--partition count:K/N | hash:K/N`: one shard of the scenarios, as
//! cargo-nextest partitions tests. `count` deals scenarios round-robin in
//! their stable order (suites as given, hand-written then locked scenarios);
//! `hash` places each by a stable hash of `suite/scenario`, so a shard keeps
//! its scenarios when others are added. The shards of one N are disjoint
//! and their union is the whole set.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    Count,
    Hash,
}

/// Shard `shard` (1-based) of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub(crate) strategy: Strategy,
    pub shard: u64,
    pub(crate) total: u64,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.strategy {
            Strategy::Count => "count",
            Strategy::Hash => "hash",
        };
        write!(f, "{s}:{}/{}", self.shard, self.total)
    }
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage =
            || format!("{s:?}: expected count:K/N or hash:K/N with 1 <= K <= N, e.g. hash:1/3");
        let (kind, rest) = s.split_once(':').ok_or_else(usage)?;
        let strategy = match kind {
            "count" => Strategy::Count,
            "hash" => Strategy::Hash,
            _ => return Err(usage()),
        };
        let (k, n) = rest.split_once('/').ok_or_else(usage)?;
        let shard: u64 = k.trim().parse().map_err(|_| usage())?;
        let total: u64 = n.trim().parse().map_err(|_| usage())?;
        if total == 0 || shard == 0 || shard > total {
            return Err(usage());
        }
        Ok(Partition {
            strategy,
            shard,
            total,
        })
    }
}

impl Partition {
    /// For each `(suite, scenario)` in stable order, whether it belongs to
    /// this shard.
    pub fn select(&self, items: &[(&str, &str)]) -> Vec<bool> {
        items
            .iter()
            .enumerate()
            .map(|(i, (suite, scenario))| {
                let bucket = match self.strategy {
                    Strategy::Count => i as u64 % self.total,
                    Strategy::Hash => stable_hash(suite, scenario) % self.total,
                };
                bucket + 1 == self.shard
            })
            .collect()
    }
}

/// The first 8 bytes of SHA-256 over `suite/scenario`: the same on every
/// machine and release (std's hasher is neither).
fn stable_hash(suite: &str, scenario: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(suite.as_bytes())
        .chain_update(b"/")
        .chain_update(scenario.as_bytes())
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::Strategy;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_strategies_and_refuses_nonsense() {
        assert_eq!(
            "count:2/3".parse::<Partition>().unwrap(),
            Partition {
                strategy: Strategy::Count,
                shard: 2,
                total: 3
            }
        );
        assert_eq!(
            "hash:1/1".parse::<Partition>().unwrap().to_string(),
            "hash:1/1"
        );
        for bad in [
            "count:0/3",
            "count:4/3",
            "hash:1/0",
            "slice:1/2",
            "count:1",
            "1/2",
            "hash:a/b",
        ] {
            let err = bad.parse::<Partition>().unwrap_err();
            assert!(
                err.contains("expected count:K/N or hash:K/N"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn count_deals_round_robin_in_order() {
        let items = [("s", "a"), ("s", "b"), ("s", "c"), ("t", "d"), ("t", "e")];
        let p: Partition = "count:2/2".parse().unwrap();
        assert_eq!(p.select(&items), [false, true, false, true, false]);
    }

    #[test]
    fn hash_placement_does_not_depend_on_the_other_scenarios() {
        let p: Partition = "hash:1/3".parse().unwrap();
        let alone = p.select(&[("s", "b")])[0];
        let among = p.select(&[("s", "a"), ("s", "b"), ("x", "y")])[1];
        assert_eq!(alone, among);
        // Pinned: the hash must stay stable across releases.
        assert_eq!(stable_hash("suite", "scenario"), 0x5229_d3c8_760d_33a6);
    }

    proptest! {
        #[test]
        fn shards_are_disjoint_and_cover_everything(
            names in proptest::collection::vec(("[a-c]{1,2}", "[a-z]{1,6}"), 0..40),
            total in 1u64..7,
            hash in any::<bool>(),
        ) {
            let items: Vec<(&str, &str)> =
                names.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let strategy = if hash { Strategy::Hash } else { Strategy::Count };
            let mut owners = vec![0u32; items.len()];
            for shard in 1..=total {
                let p = Partition { strategy, shard, total };
                for (i, picked) in p.select(&items).into_iter().enumerate() {
                    owners[i] += u32::from(picked);
                }
            }
            prop_assert!(owners.iter().all(|&n| n == 1), "{owners:?}");
        }
    }
}
