//! Best path per prefix: the Phase 2 decision process of RFC 4271 §9.1.2, run over the routes
//! of one prefix every time one of them changes. The winner carries `table::BEST`; it is the
//! Loc-RIB entry that later export, BMP Loc-RIB (RFC 9069) and RPKI work reads.
//!
//! No import policy yet, so the degree of preference (§9.1.1) is LOCAL_PREF on iBGP routes and
//! the default 100 on eBGP ones (§5.1.5: LOCAL_PREF from an external peer is ignored).

use super::attrs::PathSummary;
use super::table::{RouteEntry, BEST};
use std::net::{IpAddr, Ipv4Addr};

/// LOCAL_PREF assumed where none applies (the common default of BIRD, FRR and OpenBGPD).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// What the decision reads of one route: its attributes' summary and its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathSummary,
    pub ibgp: bool,
    /// The peer's BGP identifier (§9.1.2.2 (f)).
    pub router_id: Ipv4Addr,
    /// The peer's address (§9.1.2.2 (g)).
    pub address: IpAddr,
}

impl Candidate {
    fn preference(&self) -> u32 {
        match (self.ibgp, self.path.local_pref) {
            (true, Some(lp)) => lp,
            _ => DEFAULT_LOCAL_PREF,
        }
    }
}

/// Index of the best candidate, or `None` for none.
pub fn choose(c: &[Candidate]) -> Option<usize> {
    let mut alive: Vec<usize> = (0..c.len()).collect();
    let keep_min = |alive: &mut Vec<usize>, key: &dyn Fn(&Candidate) -> u64| {
        if let Some(m) = alive.iter().map(|&i| key(&c[i])).min() {
            alive.retain(|&i| key(&c[i]) == m);
        }
    };
    // §9.1.2 / §9.1.1: the highest degree of preference.
    keep_min(&mut alive, &|x| u64::from(u32::MAX - x.preference()));
    // §9.1.2.2 (a): the fewest AS numbers in the AS_PATH.
    keep_min(&mut alive, &|x| u64::from(x.path.path_len));
    // (b): the lowest ORIGIN.
    keep_min(&mut alive, &|x| u64::from(x.path.origin));
    // (c): a route loses to one from the same neighboring AS with a lower MULTI_EXIT_DISC.
    let snapshot = alive.clone();
    alive.retain(|&i| {
        !snapshot.iter().any(|&j| c[j].path.neighbor_as == c[i].path.neighbor_as && c[j].path.med < c[i].path.med)
    });
    // (d): routes from eBGP peers over routes from iBGP peers.
    if alive.iter().any(|&i| !c[i].ibgp) {
        alive.retain(|&i| !c[i].ibgp);
    }
    // (e) the interior cost to the NEXT_HOP: focld installs no routes, all are equal.
    // (f): the lowest BGP identifier.
    keep_min(&mut alive, &|x| u64::from(u32::from(x.router_id)));
    // (g): the lowest peer address.
    alive.into_iter().min_by_key(|&i| c[i].address)
}

/// Mark the best of `routes` (and clear the mark elsewhere); `facts` gives each route's
/// candidate. Returns the index of the best.
pub fn mark_best(routes: &mut [RouteEntry], facts: impl Fn(&RouteEntry) -> Candidate) -> Option<usize> {
    // The common case at full-table speed: one route, nothing to compare.
    if let [only] = routes {
        only.flags |= BEST;
        return Some(0);
    }
    let cands: Vec<Candidate> = routes.iter().map(&facts).collect();
    let best = choose(&cands);
    for (i, r) in routes.iter_mut().enumerate() {
        if Some(i) == best {
            r.flags |= BEST;
        } else {
            r.flags &= !BEST;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: u8) -> Candidate {
        Candidate {
            path: PathSummary { local_pref: None, med: 0, neighbor_as: 65000 + u32::from(n), path_len: 3, origin: 0 },
            ibgp: false,
            router_id: Ipv4Addr::new(10, 0, 0, n),
            address: IpAddr::from([127, 0, 0, n]),
        }
    }

    #[test]
    fn a_higher_local_pref_wins_on_ibgp_routes() {
        let mut a = cand(1);
        let mut b = cand(2);
        (a.ibgp, b.ibgp) = (true, true);
        a.path.local_pref = Some(100);
        b.path.local_pref = Some(200);
        b.path.path_len = 9;
        assert_eq!(choose(&[a, b]), Some(1));
    }

    #[test]
    fn local_pref_from_an_ebgp_peer_is_ignored() {
        let mut a = cand(1);
        let b = cand(2);
        a.path.local_pref = Some(500);
        a.path.path_len = 9;
        assert_eq!(choose(&[a, b]), Some(1), "both count as 100; the shorter path wins");
    }

    #[test]
    fn a_shorter_as_path_wins() {
        let mut a = cand(1);
        a.path.path_len = 4;
        assert_eq!(choose(&[a, cand(2)]), Some(1));
    }

    #[test]
    fn a_lower_origin_wins() {
        let mut a = cand(1);
        a.path.origin = 2;
        assert_eq!(choose(&[a, cand(2)]), Some(1));
    }

    #[test]
    fn a_lower_med_wins_only_between_routes_from_the_same_neighbor_as() {
        let mut a = cand(1);
        let mut b = cand(2);
        a.path.med = 50;
        b.path.med = 10;
        // Different neighbor ASes: MED is not compared; the lower router id (a) wins.
        assert_eq!(choose(&[a, b]), Some(0));
        b.path.neighbor_as = a.path.neighbor_as;
        assert_eq!(choose(&[a, b]), Some(1));
    }

    #[test]
    fn an_ebgp_route_wins_over_an_ibgp_route() {
        let mut a = cand(1);
        a.ibgp = true;
        assert_eq!(choose(&[a, cand(2)]), Some(1));
    }

    #[test]
    fn the_lowest_router_id_wins() {
        let mut a = cand(1);
        a.router_id = Ipv4Addr::new(10, 0, 0, 9);
        assert_eq!(choose(&[a, cand(2)]), Some(1));
    }

    #[test]
    fn the_lowest_peer_address_breaks_the_last_tie() {
        let mut a = cand(1);
        let mut b = cand(2);
        b.router_id = a.router_id;
        a.address = IpAddr::from([127, 0, 0, 9]);
        assert_eq!(choose(&[a, b]), Some(1));
        b.address = IpAddr::from([127, 0, 0, 10]);
        assert_eq!(choose(&[a, b]), Some(0));
    }

    #[test]
    fn one_route_is_best_and_none_is_none() {
        assert_eq!(choose(&[cand(1)]), Some(0));
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn marking_keeps_exactly_one_best() {
        let mut routes: Vec<RouteEntry> =
            (0..3).map(|p| RouteEntry { attrs: 0, received: 0, peer: p, flags: BEST }).collect();
        let best = mark_best(&mut routes, |r| cand(3 - r.peer as u8));
        assert_eq!(best, Some(2));
        assert_eq!(routes.iter().map(|r| r.is_best()).collect::<Vec<_>>(), [false, false, true]);
    }
}
