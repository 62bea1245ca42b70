//! Best path per prefix: the Phase 2 decision process of RFC 4271 §9.1.2, run over the routes
//! of one prefix every time one of them changes. The winner carries `table::BEST`; it is the
//! Loc-RIB entry that later export, BMP Loc-RIB (RFC 9069) and RPKI work reads.
//!
//! The degree of preference (§9.1.1) is LOCAL_PREF on iBGP routes and the default 100 on eBGP
//! ones (§5.1.5: LOCAL_PREF from an external peer is ignored), unless the import policy
//! rewrote the route (issue 17): then the post-policy LOCAL_PREF counts on every session.
//! Routes the import policy rejected are not candidates (§9.1.2: only feasible routes).

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
    /// Long-lived stale (RFC 9494 §4.3): ranks below every route that is not.
    pub llgr_stale: bool,
    /// The import policy rejected the route: it is never chosen.
    pub rejected: bool,
    /// `path` is post-policy: its LOCAL_PREF is the degree of preference on eBGP too.
    pub policy_pref: bool,
}

impl Candidate {
    fn preference(&self) -> u32 {
        match (self.ibgp || self.policy_pref, self.path.local_pref) {
            (true, Some(lp)) => lp,
            _ => DEFAULT_LOCAL_PREF,
        }
    }
}

/// Index of the best candidate, or `None` for none.
pub fn choose(c: &[Candidate]) -> Option<usize> {
    choose_with(c, &mut Vec::new(), &mut Vec::new())
}

/// `choose` with the caller's scratch vectors (the RIB keeps them, so a decision at full-table
/// speed allocates nothing).
fn choose_with(c: &[Candidate], alive: &mut Vec<usize>, next: &mut Vec<usize>) -> Option<usize> {
    alive.clear();
    alive.extend((0..c.len()).filter(|&i| !c[i].rejected));
    let keep_min = |alive: &mut Vec<usize>, key: &dyn Fn(&Candidate) -> u64| {
        if let Some(m) = alive.iter().map(|&i| key(&c[i])).min() {
            alive.retain(|&i| key(&c[i]) == m);
        }
    };
    // RFC 9494 §4.3: a route that is not long-lived stale beats one that is.
    keep_min(alive, &|x| u64::from(x.llgr_stale));
    // §9.1.2 / §9.1.1: the highest degree of preference.
    keep_min(alive, &|x| u64::from(u32::MAX - x.preference()));
    // §9.1.2.2 (a): the fewest AS numbers in the AS_PATH.
    keep_min(alive, &|x| u64::from(x.path.path_len));
    // (b): the lowest ORIGIN.
    keep_min(alive, &|x| u64::from(x.path.origin));
    // (c): a route loses to one from the same neighboring AS with a lower MULTI_EXIT_DISC.
    next.clear();
    next.extend(alive.iter().copied().filter(|&i| {
        !alive.iter().any(|&j| c[j].path.neighbor_as == c[i].path.neighbor_as && c[j].path.med < c[i].path.med)
    }));
    std::mem::swap(alive, next);
    // (d) to (g): a total order over the survivors.
    alive.iter().copied().min_by_key(|&i| c[i].tie_break())
}

impl Candidate {
    /// §9.1.2.2 (d) routes from eBGP peers over routes from iBGP peers; (e) the interior cost
    /// to the NEXT_HOP: focld installs no routes, all are equal; (f) the lowest BGP
    /// identifier; (g) the lowest peer address.
    fn tie_break(&self) -> (bool, Ipv4Addr, IpAddr) {
        (self.ibgp, self.router_id, self.address)
    }

    /// Rejected last, then long-lived stale (RFC 9494 §4.3), then §9.1.2 / §9.1.1 degree of
    /// preference, (a) AS_PATH length, (b) ORIGIN: lower is better.
    fn rank(&self) -> (bool, bool, u32, u32, u8) {
        (self.rejected, self.llgr_stale, u32::MAX - self.preference(), self.path.path_len, self.path.origin)
    }
}

/// The RIB's scratch space for decisions.
#[derive(Default)]
pub struct Decision {
    cands: Vec<Candidate>,
    alive: Vec<usize>,
    next: Vec<usize>,
}

/// Mark the best of `routes` (and clear the mark elsewhere); `facts` gives each route's
/// candidate. Returns the index of the best.
pub fn mark_best(
    d: &mut Decision,
    routes: &mut [RouteEntry],
    facts: impl Fn(&RouteEntry) -> Candidate,
) -> Option<usize> {
    // The common case at full-table speed: one route, nothing to compare.
    if let [only] = routes {
        if only.is_rejected() {
            only.flags &= !BEST;
            return None;
        }
        only.flags |= BEST;
        return Some(0);
    }
    d.cands.clear();
    d.cands.extend(routes.iter().map(&facts));
    let best = choose_with(&d.cands, &mut d.alive, &mut d.next);
    set_best(routes, best);
    best
}

fn set_best(routes: &mut [RouteEntry], best: Option<usize>) {
    for (i, r) in routes.iter_mut().enumerate() {
        if Some(i) == best {
            r.flags |= BEST;
        } else {
            r.flags &= !BEST;
        }
    }
}

/// `mark_best` after `routes[new]` was added and nothing else changed, comparing it with the
/// current best where that decides the whole set exactly, and deciding over all routes where
/// it does not. With `b` the best of the routes before and `r` the new one:
/// - `r` ranks lower than `b` by preference, AS_PATH length and ORIGIN: `r` drops out in those
///   steps and the rest of the decision is the one that chose `b`;
/// - `r` ranks higher: every other route drops out in those steps;
/// - the same rank, the same neighboring AS and `r`'s MED higher than `b`'s: `b` removes `r` in
///   step (c), and any route `r` would remove `b` removes too;
/// - the same rank, neighboring AS and MED: `r` removes and survives exactly what `b` does,
///   and (d) to (g) are a total order, so the better of the two by it wins.
///
/// - the same rank, another neighboring AS, and `b` before `r` in (d) to (g): see below.
///
/// Anything else (a lower MED, or another neighboring AS with `r` first in (d) to (g), where
/// whether `r` survives step (c) depends on the other routes) decides again over all the
/// routes. Routes equal in every step (ADD-PATH paths of one peer) keep the one already best.
pub fn mark_best_after_insert(
    d: &mut Decision,
    routes: &mut [RouteEntry],
    new: usize,
    facts: impl Fn(&RouteEntry) -> Candidate,
) -> Option<usize> {
    let Some(b) = routes.iter().position(|e| e.is_best()).filter(|&b| b != new && new < routes.len()) else {
        return mark_best(d, routes, facts);
    };
    let (cb, cr) = (facts(&routes[b]), facts(&routes[new]));
    let winner = match cr.rank().cmp(&cb.rank()) {
        std::cmp::Ordering::Greater => b,
        std::cmp::Ordering::Less => new,
        std::cmp::Ordering::Equal if cr.path.neighbor_as == cb.path.neighbor_as && cr.path.med > cb.path.med => b,
        std::cmp::Ordering::Equal if cr.path.neighbor_as == cb.path.neighbor_as && cr.path.med == cb.path.med => {
            if cr.tie_break() < cb.tie_break() {
                new
            } else {
                b
            }
        }
        // Another neighboring AS: `r` removes no route `b` needs in step (c) and cannot remove
        // `b`, so the survivors are those of before, less some, perhaps with `r`: the winner
        // is `b` or `r`, and `b` if it comes first in (d) to (g) whether `r` survives or not.
        std::cmp::Ordering::Equal if cr.path.neighbor_as != cb.path.neighbor_as && cr.tie_break() >= cb.tie_break() => {
            b
        }
        std::cmp::Ordering::Equal => return mark_best(d, routes, facts),
    };
    routes[b].flags &= !BEST;
    routes[new].flags &= !BEST;
    routes[winner].flags |= BEST;
    Some(winner)
}

/// Keep `routes`' best up to date after the route `gone` (as a candidate) left them: a best
/// route gone means deciding again; a route that ranked lower than the best removed nobody in
/// step (c); one of the same rank, neighboring AS and a MED not lower than the best's removed
/// only routes the best removes too. Otherwise (step (c) is not transitive) decide again.
pub fn mark_best_after_remove(
    d: &mut Decision,
    routes: &mut [RouteEntry],
    gone: (bool, Candidate),
    facts: impl Fn(&RouteEntry) -> Candidate,
) -> Option<usize> {
    let (was_best, cg) = gone;
    let b = routes.iter().position(|e| e.is_best());
    let Some(b) = b.filter(|_| !was_best) else { return mark_best(d, routes, facts) };
    let cb = facts(&routes[b]);
    let keeps = match cg.rank().cmp(&cb.rank()) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => cg.path.neighbor_as == cb.path.neighbor_as && cg.path.med >= cb.path.med,
        std::cmp::Ordering::Less => false,
    };
    if keeps {
        Some(b)
    } else {
        mark_best(d, routes, facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_the_import_policy_rejected_is_never_best_and_a_policy_local_pref_counts_on_ebgp() {
        let mut a = cand(1);
        a.path.path_len = 1;
        a.rejected = true;
        assert_eq!(choose(&[a, cand(2)]), Some(1), "the shorter path is rejected");
        assert_eq!(choose(&[a]), None);
        let mut lp = cand(3);
        lp.path.local_pref = Some(200);
        assert_eq!(choose(&[cand(2), lp]), Some(0), "eBGP LOCAL_PREF is ignored as received");
        lp.policy_pref = true;
        assert_eq!(choose(&[cand(2), lp]), Some(1), "set by the import policy it counts");
    }

    fn cand(n: u8) -> Candidate {
        Candidate {
            path: PathSummary { neighbor_as: 65000 + u32::from(n), path_len: 3, ..Default::default() },
            ibgp: false,
            router_id: Ipv4Addr::new(10, 0, 0, n),
            address: IpAddr::from([127, 0, 0, n]),
            llgr_stale: false,
            rejected: false,
            policy_pref: false,
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
        let best = mark_best(&mut Decision::default(), &mut routes, |r| cand(3 - r.peer as u8));
        assert_eq!(best, Some(2));
        assert_eq!(routes.iter().map(|r| r.is_best()).collect::<Vec<_>>(), [false, false, true]);
    }

    #[test]
    fn keeping_the_best_route_by_route_agrees_with_deciding_over_all_routes() {
        // Random small values make ties, shared neighbor ASes and MED cases common.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut d = Decision::default();
        for _ in 0..2000 {
            // Route i's candidate is facts[i]; routes carry their index in `attrs`.
            let mut facts: Vec<Candidate> = Vec::new();
            let mut routes: Vec<RouteEntry> = Vec::new();
            for step in 0..12u32 {
                if routes.len() > 1 && rnd(3) == 0 {
                    let i = rnd(routes.len() as u64) as usize;
                    let old = routes.swap_remove(i);
                    let gone = (old.is_best(), facts[old.attrs as usize]);
                    mark_best_after_remove(&mut d, &mut routes, gone, |e| facts[e.attrs as usize]);
                } else {
                    let mut c = cand(step as u8 + 1);
                    c.path.path_len = rnd(2) as u32 + 1;
                    c.path.origin = rnd(2) as u8;
                    c.path.neighbor_as = 65000 + rnd(2) as u32;
                    c.path.med = rnd(3) as u32;
                    c.ibgp = rnd(4) == 0;
                    c.path.local_pref = Some(100 + rnd(2) as u32 * 50);
                    c.router_id = Ipv4Addr::new(10, 0, 0, rnd(4) as u8);
                    routes.push(RouteEntry { attrs: facts.len() as u32, received: 0, peer: step as u16, flags: 0 });
                    facts.push(c);
                    let new = routes.len() - 1;
                    mark_best_after_insert(&mut d, &mut routes, new, |e| facts[e.attrs as usize]);
                }
                let all: Vec<Candidate> = routes.iter().map(|e| facts[e.attrs as usize]).collect();
                let want = choose(&all);
                let marked: Vec<usize> = (0..routes.len()).filter(|&i| routes[i].is_best()).collect();
                assert_eq!(marked, want.into_iter().collect::<Vec<_>>(), "routes {all:?}");
            }
        }
    }
}
