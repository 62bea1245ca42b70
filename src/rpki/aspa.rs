//! Pure: ASPA-based AS_PATH verification, draft-ietf-sidrops-aspa-verification-22 (its §6
//! ramp procedure, unchanged in substance since -16).
//!
//! An `AspaTable` is the union of every source's ASPA records (caches over RTR version 2,
//! files), built by the RTR thread beside the VRPs. `verify` is the upstream (§6.2) or
//! downstream (§6.3) procedure on an AS_PATH; which one applies follows from the relationship
//! with the neighbor (RFC 9234 role), and a collector with no relationship records both.

use crate::wire::aspath::{Segment, AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SEQUENCE, AS_SET};
use crate::wire::role::Role;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Customer AS → its providers (the record's SPAS), as a source holds them.
pub type AspaRecords = HashMap<u32, Vec<u32>>;

/// §4: the Union SPAS of each customer AS over every source, providers sorted and unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AspaTable {
    by_customer: HashMap<u32, Box<[u32]>>,
}

/// The outcome of the verification (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AspaState {
    Valid,
    Invalid,
    Unknown,
}

impl AspaState {
    pub fn name(self) -> &'static str {
        match self {
            AspaState::Valid => "valid",
            AspaState::Invalid => "invalid",
            AspaState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<AspaState> {
        [AspaState::Valid, AspaState::Invalid, AspaState::Unknown].into_iter().find(|a| a.name() == s)
    }
}

/// Which procedure applies: §6.2 for routes from a customer, a lateral peer, an RS-client or
/// an RS; §6.3 for routes from a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upstream,
    Downstream,
}

impl Direction {
    /// The procedure for routes received on a session where our own RFC 9234 role is `ours`
    /// (§7.3: the roles say which one applies); `None` without a role.
    pub fn of_local_role(ours: Role) -> Direction {
        match ours {
            // We are the customer: the neighbor is our provider.
            Role::Customer => Direction::Downstream,
            Role::Provider | Role::Peer | Role::Rs | Role::RsClient => Direction::Upstream,
        }
    }
}

/// §5, the provider authorization function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    NoAttestation,
    ProviderPlus,
    NotProviderPlus,
}

impl AspaTable {
    /// The union of the sources' records (§4: several ASPAs of one customer count as the union
    /// of their provider sets).
    pub fn from_sets<'a>(sets: impl IntoIterator<Item = &'a AspaRecords>) -> AspaTable {
        let mut merged: HashMap<u32, Vec<u32>> = HashMap::new();
        for set in sets {
            for (customer, providers) in set {
                merged.entry(*customer).or_default().extend_from_slice(providers);
            }
        }
        let by_customer = merged
            .into_iter()
            .map(|(c, mut p)| {
                p.sort_unstable();
                p.dedup();
                (c, p.into_boxed_slice())
            })
            .collect();
        AspaTable { by_customer }
    }

    /// Customer ASes with a record.
    pub fn len(&self) -> usize {
        self.by_customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_customer.is_empty()
    }

    /// The providers of `customer`, if it has a record.
    pub fn providers(&self, customer: u32) -> Option<&[u32]> {
        self.by_customer.get(&customer).map(|p| &p[..])
    }

    /// Every record, by customer AS.
    pub fn sorted(&self) -> Vec<(u32, &[u32])> {
        let mut v: Vec<(u32, &[u32])> = self.by_customer.iter().map(|(c, p)| (*c, &p[..])).collect();
        v.sort_unstable_by_key(|(c, _)| *c);
        v
    }

    /// §5: whether `y` is an attested provider of `x`.
    fn authorized(&self, x: u32, y: u32) -> Auth {
        match self.by_customer.get(&x) {
            None => Auth::NoAttestation,
            Some(p) if p.binary_search(&y).is_ok() => Auth::ProviderPlus,
            Some(_) => Auth::NotProviderPlus,
        }
    }

    /// §6.2 / §6.3 on a path given as its segments (most recently added AS first).
    /// `neighbor_as`: the AS the path must start with (§6.2/§6.3 step 2); `None` skips the
    /// check (a transparent route server's client, §6.2). Confederation segments are left out
    /// (§7.2: the procedures are for the confederation's boundary).
    pub fn verify(&self, segments: &[Segment], neighbor_as: Option<u32>, dir: Direction) -> AspaState {
        let mut path: Vec<u32> = Vec::new();
        for s in segments {
            match s.kind {
                // Step 3: an AS_SET anywhere makes the path Invalid.
                AS_SET => return AspaState::Invalid,
                AS_SEQUENCE => {
                    for &a in &s.asns {
                        // §6.1: the path in unique ASes: prepends collapse.
                        if path.last() != Some(&a) {
                            path.push(a);
                        }
                    }
                }
                AS_CONFED_SEQUENCE | AS_CONFED_SET => {}
                _ => return AspaState::Invalid,
            }
        }
        self.verify_path(&path, neighbor_as, dir)
    }

    /// The procedures on a path of unique ASes, `path[0]` = AS(N) (the neighbor),
    /// `path[N-1]` = AS(1) (the origin).
    pub fn verify_path(&self, path: &[u32], neighbor_as: Option<u32>, dir: Direction) -> AspaState {
        let n = path.len();
        // Step 1: an empty path is Invalid.
        if n == 0 {
            return AspaState::Invalid;
        }
        // Step 2: the most recently added AS must be the neighbor.
        if neighbor_as.is_some_and(|a| path[0] != a) {
            return AspaState::Invalid;
        }
        // AS(i) is path[n - i].
        let at = |i: usize| path[n - i];
        // §6.1: max_up_ramp is the first i with authorized(AS(i), AS(i+1)) = Not Provider+,
        // min_up_ramp the first i where it is not Provider+; N when there is none.
        let (mut max_up, mut min_up) = (n, n);
        for i in 1..n {
            match self.authorized(at(i), at(i + 1)) {
                Auth::ProviderPlus => continue,
                Auth::NoAttestation => min_up = min_up.min(i),
                Auth::NotProviderPlus => {
                    min_up = min_up.min(i);
                    max_up = i;
                    break;
                }
            }
        }
        if dir == Direction::Upstream {
            // §6.2: only an up-ramp is allowed (the down-ramp lengths are 0).
            return if max_up < n {
                AspaState::Invalid
            } else if min_up < n {
                AspaState::Unknown
            } else {
                AspaState::Valid
            };
        }
        // §6.1: max_down_ramp is N - J + 1 for the last J with authorized(AS(J), AS(J-1)) =
        // Not Provider+, min_down_ramp the same where it is not Provider+; N when none.
        let (mut max_down, mut min_down) = (n, n);
        for j in (2..=n).rev() {
            match self.authorized(at(j), at(j - 1)) {
                Auth::ProviderPlus => continue,
                Auth::NoAttestation => min_down = min_down.min(n - j + 1),
                Auth::NotProviderPlus => {
                    min_down = min_down.min(n - j + 1);
                    max_down = n - j + 1;
                    break;
                }
            }
        }
        // §6.3 steps 4-6.
        if max_up + max_down < n {
            AspaState::Invalid
        } else if min_up + min_down < n {
            AspaState::Unknown
        } else {
            AspaState::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(records: &[(u32, &[u32])]) -> AspaTable {
        let set: AspaRecords = records.iter().map(|(c, p)| (*c, p.to_vec())).collect();
        AspaTable::from_sets([&set])
    }

    fn seq(asns: &[u32]) -> Vec<Segment> {
        vec![Segment { kind: AS_SEQUENCE, asns: asns.to_vec() }]
    }

    use AspaState::{Invalid, Unknown, Valid};
    use Direction::{Downstream, Upstream};

    #[test]
    fn a_customer_route_is_valid_only_when_every_hop_is_an_attested_provider() {
        // Origin 64500 with provider 64501, which has provider 64502: announced upwards.
        let t = table(&[(64500, &[64501]), (64501, &[64502])]);
        assert_eq!(t.verify(&seq(&[64502, 64501, 64500]), Some(64502), Upstream), Valid);
        // 64502 has no record: its hop to us is not checked (it is AS(N)); all hops attested.
        assert_eq!(t.verify(&seq(&[64501, 64500]), Some(64501), Upstream), Valid);
        // A hop from an AS without a record: Unknown.
        assert_eq!(t.verify(&seq(&[64503, 64502, 64501, 64500]), Some(64503), Upstream), Unknown);
        // 64501 attests only 64502: a route through 64504 leaked.
        assert_eq!(t.verify(&seq(&[64504, 64501, 64500]), Some(64504), Upstream), Invalid);
        // A one-AS path is Valid whatever the records say.
        assert_eq!(t.verify(&seq(&[64599]), Some(64599), Upstream), Valid);
    }

    #[test]
    fn prepends_collapse_and_sets_empty_paths_and_a_wrong_neighbor_are_invalid() {
        let t = table(&[(64500, &[64501])]);
        assert_eq!(t.verify(&seq(&[64501, 64501, 64500, 64500, 64500]), Some(64501), Upstream), Valid);
        let with_set =
            vec![Segment { kind: AS_SEQUENCE, asns: vec![64501] }, Segment { kind: AS_SET, asns: vec![64500, 64502] }];
        assert_eq!(t.verify(&with_set, Some(64501), Upstream), Invalid);
        assert_eq!(t.verify(&[], None, Upstream), Invalid, "step 1");
        assert_eq!(t.verify(&seq(&[64501, 64500]), Some(64777), Upstream), Invalid, "step 2");
        assert_eq!(t.verify(&seq(&[64501, 64500]), None, Upstream), Valid, "a transparent RS: no step 2");
        let confed = vec![
            Segment { kind: AS_CONFED_SEQUENCE, asns: vec![65001] },
            Segment { kind: AS_SEQUENCE, asns: vec![64501, 64500] },
        ];
        assert_eq!(t.verify(&confed, Some(64501), Upstream), Valid, "confederation segments left out");
    }

    #[test]
    fn from_a_provider_one_peering_at_the_top_is_valid_and_a_second_apex_is_invalid() {
        // 64500 -> 64501 (its provider) -- 64502 (lateral peer) -> 64503 (64502's customer),
        // which sends it to us, its customer.
        let t = table(&[(64500, &[64501]), (64503, &[64502]), (64501, &[64600]), (64502, &[64601])]);
        let path = [64503, 64502, 64501, 64500];
        assert_eq!(t.verify_path(&path, Some(64503), Downstream), Valid);
        // Upstream the same path is a leak: 64502 is no provider of 64501.
        assert_eq!(t.verify_path(&path, Some(64503), Upstream), Invalid);
        // 64503 then leaks it to another provider 64504 (which attests 64700 only), which
        // sends it down to us: up, across, down, and up again.
        let t = table(&[
            (64500, &[64501]),
            (64503, &[64502, 64504]),
            (64501, &[64600]),
            (64502, &[64601]),
            (64504, &[64700]),
        ]);
        let leaked = [64504, 64503, 64502, 64501, 64500];
        assert_eq!(t.verify_path(&leaked, Some(64504), Downstream), Invalid);
        // Without 64504's record the leak cannot be seen: Unknown at worst, never Invalid.
        let t2 = table(&[(64500, &[64501]), (64503, &[64502, 64504]), (64501, &[64600]), (64502, &[64601])]);
        assert_eq!(t2.verify_path(&leaked, Some(64504), Downstream), Unknown);
    }

    #[test]
    fn downstream_paths_of_two_ases_are_valid_and_unattested_ramps_are_unknown() {
        let t = table(&[(64500, &[64999])]);
        assert_eq!(t.verify_path(&[64501, 64500], Some(64501), Downstream), Valid);
        let empty = AspaTable::default();
        assert_eq!(empty.verify_path(&[64503, 64502, 64501, 64500], None, Downstream), Unknown);
        assert_eq!(empty.verify_path(&[64503, 64502, 64501, 64500], None, Upstream), Unknown);
    }

    #[test]
    fn records_of_one_customer_from_several_sources_are_united() {
        let a: AspaRecords = [(64500, vec![64502, 64501])].into();
        let b: AspaRecords = [(64500, vec![64503, 64501])].into();
        let t = AspaTable::from_sets([&a, &b]);
        assert_eq!(t.providers(64500), Some(&[64501, 64502, 64503][..]));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_procedure_follows_our_role() {
        assert_eq!(Direction::of_local_role(Role::Customer), Downstream);
        for r in [Role::Provider, Role::Peer, Role::Rs, Role::RsClient] {
            assert_eq!(Direction::of_local_role(r), Upstream, "{r:?}");
        }
    }
}
