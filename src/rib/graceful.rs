//! Graceful restart on the RIB thread: the helper's stale routes (RFC 4724 §4.2), Long-Lived
//! stale routes (RFC 9494 §4), and their timers.
//!
//! Fed by the RIB's handlers: `RibMsg::SessionStale` (a GR-capable peer's session ended without
//! a Hard Reset: its routes are marked `STALE` per family instead of withdrawn), `SessionUp`
//! (the peer is back: families it no longer keeps are flushed), End-of-RIB in `Update` (what
//! was not announced again is swept) and the RIB's timer turn. Emits nothing to other threads:
//! it changes the table, through the same stale flag and sweep as Enhanced Route Refresh
//! (RFC 7313, `Rib::refresh_begin`/`refresh_end`).
//!
//! The rules are a pure `Episode` (per family: which phase, until when), unit-tested without a
//! table; `impl Rib` below carries its `Step`s out. Every deadline is clamped by the episode's
//! ceiling, fixed when the routes first went stale: a peer that flaps again and again cannot
//! keep stale routes past it.

use super::table::{self, RouteEntry};
use super::{best, candidate, count_rejected, count_rov, release_route, set_of, PeerState, Rib};
use crate::control::proto::{GracefulFamily, GracefulStatus};
use crate::msg::{GracefulEvent, MrtMsg, PeerId};
use crate::prefix::Family;
use crate::wire::attr::{code, split_attrs};
use crate::wire::graceful::HelperTimes;
use log::info;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// RFC 9494 §5.2: the NO_LLGR community; such routes are not kept as long-lived stale.
pub const NO_LLGR: u32 = 0xffff_0007;
/// RFC 9494 §5.1: LLGR_STALE, which long-lived stale routes are taken to carry.
pub const LLGR_STALE: u32 = 0xffff_0006;

/// Where one family of a restarting peer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The session is down; the restart timer runs (RFC 4724 §4.2).
    Restarting,
    /// The restart timer ended with LLGR negotiated: the long-lived stale timer runs (RFC 9494 §4.2).
    LongLived,
    /// The peer is back; its End-of-RIB (or the stale timer) ends the family's stale routes.
    WaitingEor,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Restarting => "restarting",
            Phase::LongLived => "long_lived",
            Phase::WaitingEor => "waiting_eor",
        }
    }
}

/// One family's stale routes of a restarting peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyStale {
    pub phase: Phase,
    pub deadline: Instant,
    /// Unix time the family went stale (for the archive's account of the episode).
    pub since: u64,
}

/// What the RIB must do to the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Remove every route of the family: it is not kept across this restart.
    Flush(Family, &'static str),
    /// Remove the family's routes that are still stale.
    Sweep(Family, &'static str),
    /// RFC 9494 §4.2: the stale routes become long-lived stale (LLGR_STALE, least preferred);
    /// those carrying NO_LLGR are removed.
    LongLived(Family),
}

/// A restarting peer's stale routes, from the first session end until the last family is
/// swept or refreshed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    /// No deadline of this episode lies past this: the first stale time plus the longest
    /// restart, long-lived stale and End-of-RIB waits.
    pub ceiling: Instant,
    pub times: HelperTimes,
    pub families: [Option<FamilyStale>; 2],
    /// Sessions that ended during the episode.
    pub restarts: u32,
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Episode {
    /// The session of a GR-capable peer ended without a Hard Reset: the families it listed and
    /// negotiated go stale with the restart timer; the others are flushed. A `prev` episode
    /// (the peer flapped again before it was over) keeps its ceiling.
    pub fn begin(
        prev: Option<Episode>,
        times: HelperTimes,
        negotiated: &[Family],
        now: Instant,
    ) -> (Episode, Vec<Step>) {
        let longest_ll = times.long_lived.iter().map(|(_, t)| *t).max().unwrap_or(0);
        let ceiling = prev
            .as_ref()
            .map_or(now + secs(times.restart_secs) + secs(longest_ll) + secs(times.stale_secs), |p| p.ceiling);
        let restarts = prev.as_ref().map_or(0, |p| p.restarts) + 1;
        let mut ep = Episode { ceiling, times, families: [None; 2], restarts };
        let mut steps = Vec::new();
        for f in Family::ALL {
            if ep.times.covers(f) && negotiated.contains(&f) && now < ceiling {
                let since = prev.as_ref().and_then(|p| p.families[f.index()]).map_or_else(unix_secs, |s| s.since);
                let deadline = (now + secs(ep.times.restart_secs)).min(ceiling);
                ep.families[f.index()] = Some(FamilyStale { phase: Phase::Restarting, deadline, since });
            } else {
                steps.push(Step::Flush(f, "not kept across a restart"));
            }
        }
        (ep, steps)
    }

    /// RFC 4724 §4.2: the peer is back. A family stays stale, until End-of-RIB or the stale
    /// timer, only if the new session negotiated it with the capability and the F bit set.
    pub fn reconnect(&mut self, new: Option<&HelperTimes>, negotiated: &[Family], now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        for f in Family::ALL {
            let Some(s) = self.families[f.index()].as_mut() else { continue };
            let why = match new {
                None => Some("the peer came back without the Graceful Restart capability"),
                Some(_) if !negotiated.contains(&f) => Some("the family was not negotiated again"),
                Some(n) if !n.covers(f) => Some("the peer no longer lists the family"),
                Some(n) if !n.forwarding(f) => Some("the peer came back with the F bit clear"),
                Some(_) => None,
            };
            match why {
                Some(why) => {
                    self.families[f.index()] = None;
                    steps.push(Step::Sweep(f, why));
                }
                None => {
                    s.phase = Phase::WaitingEor;
                    let stale = new.map_or(self.times.stale_secs, |n| n.stale_secs);
                    s.deadline = (now + secs(stale)).min(self.ceiling);
                }
            }
        }
        if let Some(n) = new {
            // Later restarts use what the new session negotiated (the ceiling stays).
            self.times = n.clone();
        }
        steps
    }

    /// RFC 4724 §4.2: End-of-RIB for `family` from the peer that came back.
    pub fn end_of_rib(&mut self, family: Family) -> Option<Step> {
        let s = self.families[family.index()]?;
        if s.phase != Phase::WaitingEor {
            return None;
        }
        self.families[family.index()] = None;
        Some(Step::Sweep(family, "End-of-RIB"))
    }

    /// Timers due at `now`: a restart timer moves an LLGR family to long-lived stale, and
    /// sweeps any other; the other timers sweep.
    pub fn due(&mut self, now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        for f in Family::ALL {
            let Some(s) = self.families[f.index()].as_mut() else { continue };
            if s.deadline > now {
                continue;
            }
            match (s.phase, self.times.long_lived_secs(f)) {
                (Phase::Restarting, Some(ll)) if now < self.ceiling => {
                    s.phase = Phase::LongLived;
                    s.deadline = (now + secs(ll)).min(self.ceiling);
                    steps.push(Step::LongLived(f));
                }
                (phase, _) => {
                    self.families[f.index()] = None;
                    steps.push(Step::Sweep(
                        f,
                        match phase {
                            Phase::Restarting => "restart timer expired",
                            Phase::LongLived => "long-lived stale timer expired",
                            Phase::WaitingEor => "stale timer expired before End-of-RIB",
                        },
                    ));
                }
            }
        }
        steps
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.families.iter().flatten().map(|s| s.deadline).min()
    }

    pub fn is_over(&self) -> bool {
        self.families.iter().all(Option::is_none)
    }
}

/// Whether the route's attributes carry the community `value` (RFC 1997).
fn has_community(set: Option<super::AttrSet<'_>>, value: u32) -> bool {
    let Some(set) = set else { return false };
    let (list, _) = split_attrs(set.attrs);
    list.iter()
        .filter(|a| a.type_code == code::COMMUNITIES)
        .any(|a| a.value.chunks_exact(4).any(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) == value))
}

impl Rib {
    /// `RibMsg::SessionStale`: the session ended as a restart. Routes stay, marked stale.
    pub(super) fn gr_session_stale(&mut self, peer: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        let Some(info) = p.session.take() else { return };
        let Some(times) = info.graceful.clone() else {
            // Not negotiated after all: an ordinary session end.
            self.gr_session_ended(peer);
            let n = self.clear_routes(peer);
            info!("neighbor {peer}: session down, {n} routes removed");
            return;
        };
        self.gr_session_ended(peer);
        let Some(p) = self.peers.get_mut(&peer) else { return };
        let (ep, steps) = Episode::begin(p.gr.take(), times, &info.families, now);
        let slot = p.slot;
        for f in Family::ALL.into_iter().filter(|f| ep.families[f.index()].is_some()) {
            let n = match f {
                Family::Ipv4Unicast => self.table.v4.mark_peer(slot, table::STALE),
                Family::Ipv6Unicast => self.table.v6.mark_peer(slot, table::STALE),
            };
            p.stale[f.index()] = n;
            if let Some(m) = &self.opts.mrt {
                m.send(event(p, f, "stale", n, "the session ended without a Hard Reset (RFC 4724 §4.2)"));
            }
            info!(
                "neighbor {}: graceful restart (RFC 4724): {n} {f} routes kept as stale for up to {} s",
                p.label,
                ep.families[f.index()].map_or(0, |s| s.deadline.saturating_duration_since(now).as_secs())
            );
        }
        p.gr = Some(ep);
        self.gr_apply(peer, steps);
    }

    /// What every session end does besides the routes: no Adj-RIB-Out, no feeds, no refresh.
    fn gr_session_ended(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.session = None;
            p.adj_out.clear();
            p.over_limit = false;
            p.refresh_deadline = [None; 2];
        }
        self.feeds.retain(|f| f.peer != peer);
        self.source_progress.retain(|(q, _), _| *q != peer);
    }

    /// From `session_up`: the peer is back. True when it had stale routes (then they were
    /// dealt with and must not be cleared).
    pub(super) fn gr_session_up(&mut self, peer: PeerId, info: &crate::msg::SessionInfo, now: Instant) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else { return false };
        let Some(ep) = p.gr.as_mut() else { return false };
        let steps = ep.reconnect(info.graceful.as_ref(), &info.families, now);
        self.gr_apply(peer, steps);
        true
    }

    /// End-of-RIB from the peer (RFC 4724 §2): sweep the family's stale routes.
    pub(super) fn gr_end_of_rib(&mut self, peer: PeerId, family: Family) {
        let Some(step) = self.peers.get_mut(&peer).and_then(|p| p.gr.as_mut()).and_then(|e| e.end_of_rib(family))
        else {
            return;
        };
        self.gr_apply(peer, vec![step]);
    }

    /// The earliest graceful restart deadline of any peer.
    pub(super) fn gr_next_deadline(&self) -> Option<Instant> {
        self.peers.values().filter_map(|p| p.gr.as_ref()?.next_deadline()).min()
    }

    /// Carry out the timers that are due.
    pub(super) fn gr_due(&mut self, now: Instant) {
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.gr.as_ref().and_then(Episode::next_deadline).is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(steps) = self.peers.get_mut(&id).and_then(|p| p.gr.as_mut()).map(|e| e.due(now)) else { continue };
            self.gr_apply(id, steps);
        }
    }

    fn gr_apply(&mut self, peer: PeerId, steps: Vec<Step>) {
        for step in steps {
            let Some(p) = self.peers.get(&peer) else { return };
            let label = p.label.clone();
            match step {
                Step::Flush(f, why) => {
                    let n = self.remove_family_where(peer, f, |_, _| true);
                    if n > 0 {
                        info!("neighbor {label}: {n} {f} routes removed: {why}");
                        self.gr_archive(peer, f, "flushed", n, why);
                    }
                }
                Step::Sweep(f, why) => {
                    let n = self.remove_family_where(peer, f, |e, _| e.is_stale());
                    let kept = self.peers.get(&peer).map_or(0, |p| p.counts[f.index()]);
                    info!("neighbor {label}: graceful restart for {f} over ({why}): {n} stale routes removed, {kept} kept");
                    self.gr_archive(peer, f, "swept", n, why);
                }
                Step::LongLived(f) => {
                    // RFC 9494 §4.2: routes with NO_LLGR go; the rest stay, least preferred.
                    let dropped =
                        self.remove_family_where(peer, f, |e, set| e.is_stale() && has_community(set, NO_LLGR));
                    let kept = self.mark_long_lived(peer, f);
                    info!(
                        "neighbor {label}: restart timer expired for {f}: {kept} routes kept as long-lived stale (LLGR_STALE, RFC 9494), {dropped} with NO_LLGR removed"
                    );
                    let why = format!("restart timer expired; {dropped} routes with NO_LLGR removed (RFC 9494)");
                    self.gr_archive(peer, f, "long_lived", kept, &why);
                }
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            if p.gr.as_ref().is_some_and(Episode::is_over) {
                p.gr = None;
            }
        }
    }

    /// Tell the MRT writer, for the current update file's manifest.
    fn gr_archive(&self, peer: PeerId, family: Family, what: &str, routes: u64, why: &str) {
        if let (Some(m), Some(p)) = (&self.opts.mrt, self.peers.get(&peer)) {
            m.send(event(p, family, what, routes, why));
        }
    }

    /// Mark the peer's stale routes of `family` long-lived stale and choose the best paths of
    /// their prefixes again (RFC 9494 §4.3: they rank below every other route).
    fn mark_long_lived(&mut self, peer: PeerId, family: Family) -> u64 {
        let Some(p) = self.peers.get(&peer) else { return 0 };
        let slot = p.slot;
        let Rib { table, attrs, slots, paths, decision, .. } = self;
        let mut n = 0;
        let mut mark = |routes: &mut [RouteEntry]| {
            let mut touched = false;
            for e in routes.iter_mut().filter(|e| e.peer == slot && e.is_stale()) {
                e.flags |= table::LLGR_STALE;
                touched = true;
                n += 1;
            }
            if touched {
                best::mark_best(decision, routes, |e| candidate(slots, attrs, paths, e));
            }
        };
        match family {
            Family::Ipv4Unicast => table.v4.all_mut(|_, r| mark(r)),
            Family::Ipv6Unicast => table.v6.all_mut(|_, r| mark(r)),
        }
        if n > 0 {
            self.export_rewalk();
        }
        n
    }

    /// Remove the peer's routes of `family` that `pred` picks (given the route and its
    /// attribute set); the number removed. Counts, origin validation counts and the best
    /// paths follow.
    pub(super) fn remove_family_where(
        &mut self,
        peer: PeerId,
        family: Family,
        pred: impl Fn(&RouteEntry, Option<super::AttrSet<'_>>) -> bool,
    ) -> u64 {
        let Some(p) = self.peers.get_mut(&peer) else { return 0 };
        let slot = p.slot;
        let Rib { table, attrs, slots, paths, decision, rov, rejected, .. } = self;
        let mut released = Vec::new();
        let on_removed = |old: RouteEntry, rest: &mut [RouteEntry]| {
            let gone = (old.is_best(), candidate(slots, attrs, paths, &old));
            best::mark_best_after_remove(decision, rest, gone, |e| candidate(slots, attrs, paths, e));
            count_rov(rov, &old, false);
            count_rejected(rejected, attrs, paths, &old, false);
            released.push(old);
        };
        let picked = |e: &RouteEntry| pred(e, attrs.get(set_of(paths, e)));
        match family {
            Family::Ipv4Unicast => table.v4.remove_peer_where(slot, picked, on_removed),
            Family::Ipv6Unicast => table.v6.remove_peer_where(slot, picked, on_removed),
        }
        let n = released.len() as u64;
        let stale = released.iter().filter(|e| e.is_stale()).count() as u64;
        for old in released {
            release_route(attrs, paths, old);
        }
        let i = family.index();
        p.counts[i] = p.counts[i].saturating_sub(n);
        p.stale[i] = p.stale[i].saturating_sub(stale);
        // Best paths changed: what learned routes go out follows (export policy, issue 17).
        if n > 0 {
            self.export_rewalk();
        }
        n
    }
}

fn event(p: &PeerState, family: Family, what: &str, routes: u64, why: &str) -> MrtMsg {
    MrtMsg::Graceful(GracefulEvent {
        time: unix_secs(),
        peer: p.address.to_string(),
        family: family.name().to_string(),
        event: what.to_string(),
        routes,
        reason: why.to_string(),
    })
}

/// For `focl peer show`: a peer's graceful restart in progress.
pub(super) fn describe(p: &PeerState, now: Instant) -> Option<GracefulStatus> {
    let ep = p.gr.as_ref()?;
    let families = Family::ALL
        .iter()
        .filter_map(|f| {
            let s = ep.families[f.index()]?;
            Some(GracefulFamily {
                family: f.name().to_string(),
                phase: s.phase.name().to_string(),
                since: s.since,
                expires_in_secs: s.deadline.saturating_duration_since(now).as_secs(),
                stale_routes: p.stale[f.index()],
            })
        })
        .collect();
    Some(GracefulStatus {
        families,
        restarts: ep.restarts,
        ends_at_latest_in_secs: ep.ceiling.saturating_duration_since(now).as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: Family = Family::Ipv4Unicast;
    const V6: Family = Family::Ipv6Unicast;
    const BOTH: [Family; 2] = Family::ALL;

    fn times(fwd: bool) -> HelperTimes {
        HelperTimes { families: vec![(V4, fwd), (V6, fwd)], restart_secs: 120, stale_secs: 360, long_lived: vec![] }
    }

    fn t(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_restart_keeps_the_listed_families_stale_and_flushes_the_others() {
        let now = Instant::now();
        let only_v4 = HelperTimes { families: vec![(V4, true)], ..times(true) };
        let (ep, steps) = Episode::begin(None, only_v4, &BOTH, now);
        assert_eq!(steps, vec![Step::Flush(V6, "not kept across a restart")]);
        let s = ep.families[V4.index()].unwrap();
        assert_eq!((s.phase, s.deadline), (Phase::Restarting, now + t(120)));
        assert_eq!(ep.ceiling, now + t(120 + 360));
        // A family listed but not negotiated on the session is not kept either.
        let (ep, steps) = Episode::begin(None, times(true), &[V4], now);
        assert_eq!(steps.len(), 1);
        assert!(ep.families[V6.index()].is_none());
    }

    #[test]
    fn the_restart_timer_sweeps_a_peer_that_never_comes_back_and_not_before() {
        let now = Instant::now();
        let (mut ep, _) = Episode::begin(None, times(true), &BOTH, now);
        assert_eq!(ep.next_deadline(), Some(now + t(120)));
        assert!(ep.due(now + t(119)).is_empty());
        let steps = ep.due(now + t(120));
        assert_eq!(steps, vec![Step::Sweep(V4, "restart timer expired"), Step::Sweep(V6, "restart timer expired")]);
        assert!(ep.is_over());
    }

    #[test]
    fn on_reconnect_families_without_the_capability_or_the_f_bit_are_flushed_and_the_rest_wait_for_end_of_rib() {
        let now = Instant::now();
        let (mut ep, _) = Episode::begin(None, times(true), &BOTH, now);
        let back = HelperTimes { families: vec![(V4, true), (V6, false)], ..times(true) };
        let steps = ep.reconnect(Some(&back), &BOTH, now + t(10));
        assert_eq!(steps, vec![Step::Sweep(V6, "the peer came back with the F bit clear")]);
        let s = ep.families[V4.index()].unwrap();
        assert_eq!((s.phase, s.deadline), (Phase::WaitingEor, now + t(370)));
        assert_eq!(ep.end_of_rib(V6), None, "already swept");
        assert_eq!(ep.end_of_rib(V4), Some(Step::Sweep(V4, "End-of-RIB")));
        assert!(ep.is_over());

        let (mut ep, _) = Episode::begin(None, times(true), &BOTH, now);
        let steps = ep.reconnect(None, &BOTH, now);
        assert_eq!(steps.len(), 2, "no capability: everything stale goes: {steps:?}");
        let (mut ep, _) = Episode::begin(None, times(true), &BOTH, now);
        let only_v4 = HelperTimes { families: vec![(V4, true)], ..times(true) };
        assert_eq!(
            ep.reconnect(Some(&only_v4), &BOTH, now),
            vec![Step::Sweep(V6, "the peer no longer lists the family")]
        );
        let (mut ep, _) = Episode::begin(None, times(true), &BOTH, now);
        assert_eq!(
            ep.reconnect(Some(&times(true)), &[V6], now),
            vec![Step::Sweep(V4, "the family was not negotiated again")]
        );
    }

    #[test]
    fn without_end_of_rib_the_stale_timer_sweeps() {
        let now = Instant::now();
        let (mut ep, _) = Episode::begin(None, times(true), &BOTH, now);
        ep.reconnect(Some(&times(true)), &BOTH, now + t(5));
        assert!(ep.due(now + t(364)).is_empty());
        assert_eq!(ep.due(now + t(365)).len(), 2);
        assert!(ep.is_over());
    }

    #[test]
    fn end_of_rib_counts_per_family_and_only_once_the_peer_is_back() {
        let now = Instant::now();
        let (mut ep, _) = Episode::begin(None, times(true), &BOTH, now);
        assert_eq!(ep.end_of_rib(V4), None, "the session is still down");
        ep.reconnect(Some(&times(true)), &BOTH, now);
        assert_eq!(ep.end_of_rib(V6), Some(Step::Sweep(V6, "End-of-RIB")));
        assert!(ep.families[V4.index()].is_some() && !ep.is_over());
    }

    #[test]
    fn repeated_flaps_never_keep_stale_routes_past_the_ceiling() {
        let now = Instant::now();
        let (mut ep, _) = Episode::begin(None, times(true), &BOTH, now);
        let ceiling = ep.ceiling;
        // The peer comes back and goes again every 100 s, never sending End-of-RIB.
        let mut at = now;
        for _ in 0..10 {
            at += t(100);
            ep.reconnect(Some(&times(true)), &BOTH, at);
            at += t(1);
            let (next, _) = Episode::begin(Some(ep.clone()), times(true), &BOTH, at);
            ep = next;
            if ep.is_over() {
                break;
            }
            assert!(ep.next_deadline().unwrap() <= ceiling);
        }
        assert_eq!(ep.ceiling, ceiling);
        assert!(ep.restarts > 1);
        // Past the ceiling nothing is kept, whatever the peer says.
        let (ep, steps) = Episode::begin(Some(ep), times(true), &BOTH, ceiling + t(1));
        assert!(ep.is_over() && steps.len() == 2);
    }

    #[test]
    fn llgr_families_go_long_lived_at_the_restart_timer_and_are_swept_at_the_long_lived_timer() {
        let now = Instant::now();
        let ll = HelperTimes { long_lived: vec![(V4, 1000)], ..times(true) };
        let (mut ep, _) = Episode::begin(None, ll, &BOTH, now);
        assert_eq!(ep.ceiling, now + t(120 + 1000 + 360));
        let steps = ep.due(now + t(120));
        assert_eq!(steps, vec![Step::LongLived(V4), Step::Sweep(V6, "restart timer expired")]);
        let s = ep.families[V4.index()].unwrap();
        assert_eq!((s.phase, s.deadline), (Phase::LongLived, now + t(1120)));
        assert!(ep.due(now + t(1119)).is_empty());
        assert_eq!(ep.due(now + t(1120)), vec![Step::Sweep(V4, "long-lived stale timer expired")]);
    }

    #[test]
    fn a_peer_back_during_the_long_lived_phase_waits_for_end_of_rib_like_any_other() {
        let now = Instant::now();
        let ll = HelperTimes { long_lived: vec![(V4, 1000)], ..times(true) };
        let (mut ep, _) = Episode::begin(None, ll.clone(), &[V4], now);
        ep.due(now + t(120));
        assert!(ep.reconnect(Some(&ll), &[V4], now + t(500)).is_empty());
        assert_eq!(ep.families[V4.index()].unwrap().phase, Phase::WaitingEor);
        assert_eq!(ep.end_of_rib(V4), Some(Step::Sweep(V4, "End-of-RIB")));
    }

    #[test]
    fn no_llgr_and_llgr_stale_are_the_rfc_9494_communities() {
        assert_eq!((NO_LLGR >> 16, NO_LLGR & 0xffff), (65535, 7));
        assert_eq!((LLGR_STALE >> 16, LLGR_STALE & 0xffff), (65535, 6));
    }

    // ---- The same rules carried out on a RIB ----

    use super::super::tests::{announce, attrs, best_peer, prefixes_of, rib_with_peers, session_info};
    use crate::msg::{RibMsg, SessionInfo};
    use crate::wire::update::ParsedUpdate;

    fn gr_session(rib: &mut Rib, peer: PeerId, times: Option<HelperTimes>) {
        let info = SessionInfo { session: 2, graceful: times, ..session_info(peer as u8) };
        rib.handle(RibMsg::SessionUp { peer, info });
    }

    fn eor(rib: &mut Rib, peer: PeerId, f: Family) {
        rib.handle(RibMsg::Update { peer, update: ParsedUpdate { end_of_rib: Some(f), ..Default::default() } });
    }

    fn stale_of(rib: &Rib, peer: PeerId) -> usize {
        let slot = rib.peers[&peer].slot;
        rib.table.walk(None).flat_map(|(_, r)| r.iter()).filter(|e| e.peer == slot && e.is_stale()).count()
    }

    #[test]
    fn a_restarting_peer_keeps_its_routes_stale_and_end_of_rib_sweeps_what_it_did_not_announce_again() {
        let mut rib = rib_with_peers(2);
        gr_session(&mut rib, 1, Some(times(true)));
        announce(&mut rib, 1, &["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"], attrs(65001, 1));
        announce(&mut rib, 1, &["2001:db8::/32"], attrs(65001, 1));
        announce(&mut rib, 2, &["198.51.100.0/24"], attrs(65002, 3));
        let sets = rib.attrs.len();
        rib.handle(RibMsg::SessionStale { peer: 1 });
        assert_eq!(rib.peers[&1].counts, [3, 1], "nothing withdrawn");
        assert_eq!(rib.peers[&1].stale, [3, 1]);
        assert_eq!(stale_of(&rib, 1), 4);
        assert_eq!(stale_of(&rib, 2), 0, "the other peer untouched");
        assert_eq!(best_peer(&rib, "198.51.100.0/24"), Some(1), "plain stale routes keep their rank");
        // UPDATEs of a session that is gone are not taken.
        announce(&mut rib, 1, &["10.0.0.0/8"], attrs(65001, 1));
        assert_eq!(rib.peers[&1].counts, [3, 1]);
        gr_session(&mut rib, 1, Some(times(true)));
        assert_eq!(rib.peers[&1].counts, [3, 1], "back with the F bit: still kept");
        announce(&mut rib, 1, &["198.51.100.0/24"], attrs(65001, 1));
        assert_eq!(rib.peers[&1].stale, [2, 1]);
        eor(&mut rib, 1, Family::Ipv4Unicast);
        assert_eq!(prefixes_of(&rib, 1), ["198.51.100.0/24", "2001:db8::/32"]);
        assert_eq!(rib.peers[&1].stale, [0, 1], "IPv6 waits for its own End-of-RIB");
        eor(&mut rib, 1, Family::Ipv6Unicast);
        assert_eq!(prefixes_of(&rib, 1), ["198.51.100.0/24"]);
        assert!(rib.peers[&1].gr.is_none(), "the episode is over");
        assert_eq!(rib.attrs.len(), sets, "no set leaked or lost");
    }

    #[test]
    fn a_peer_back_with_the_f_bit_clear_or_without_the_capability_is_flushed_at_once() {
        let mut rib = rib_with_peers(1);
        gr_session(&mut rib, 1, Some(times(true)));
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        announce(&mut rib, 1, &["2001:db8::/32"], attrs(65001, 1));
        rib.handle(RibMsg::SessionStale { peer: 1 });
        let back = HelperTimes { families: vec![(V4, false), (V6, true)], ..times(true) };
        gr_session(&mut rib, 1, Some(back));
        assert_eq!(prefixes_of(&rib, 1), ["2001:db8::/32"], "IPv4 came back with F clear");
        rib.handle(RibMsg::SessionStale { peer: 1 });
        gr_session(&mut rib, 1, None);
        assert!(prefixes_of(&rib, 1).is_empty(), "no capability on the new session");
        assert_eq!(rib.peers[&1].counts, [0, 0]);
    }

    #[test]
    fn the_restart_timer_sweeps_and_an_ordinary_session_end_during_a_restart_flushes() {
        let mut rib = rib_with_peers(1);
        let short = HelperTimes { restart_secs: 5, ..times(true) };
        gr_session(&mut rib, 1, Some(short.clone()));
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        let now = Instant::now();
        rib.handle(RibMsg::SessionStale { peer: 1 });
        let d = rib.next_refresh_deadline().expect("the restart timer wakes the RIB");
        assert!(d <= now + t(6) && d >= now + t(4));
        rib.refresh_overdue(d - t(1));
        assert_eq!(prefixes_of(&rib, 1), ["192.0.2.0/24"]);
        rib.refresh_overdue(d);
        assert!(prefixes_of(&rib, 1).is_empty() && rib.peers[&1].gr.is_none());
        // A Hard Reset (a plain SessionDown) while routes are stale removes them all.
        gr_session(&mut rib, 1, Some(short));
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        rib.handle(RibMsg::SessionStale { peer: 1 });
        rib.handle(RibMsg::SessionDown { peer: 1 });
        assert!(prefixes_of(&rib, 1).is_empty() && rib.peers[&1].gr.is_none());
        assert_eq!(rib.next_refresh_deadline(), None);
    }

    #[test]
    fn long_lived_stale_routes_rank_last_and_no_llgr_routes_are_dropped() {
        let mut rib = rib_with_peers(2);
        let ll = HelperTimes { restart_secs: 1, long_lived: vec![(V4, 600)], ..times(true) };
        gr_session(&mut rib, 1, Some(ll));
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        let mut no_llgr = attrs(65001, 1);
        no_llgr.extend_from_slice(&[0xc0, 8, 4, 0xff, 0xff, 0, 7]);
        announce(&mut rib, 1, &["198.51.100.0/24"], no_llgr);
        // The other peer's route is longer: it loses while peer 1's is fresh or merely stale.
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 4));
        rib.handle(RibMsg::SessionStale { peer: 1 });
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(1));
        let d = rib.next_refresh_deadline().unwrap();
        rib.refresh_overdue(d);
        assert_eq!(prefixes_of(&rib, 1), ["192.0.2.0/24"], "NO_LLGR (65535:7) dropped");
        let e = rib
            .table
            .get(&"192.0.2.0/24".parse().unwrap())
            .unwrap()
            .iter()
            .find(|e| e.peer == rib.peers[&1].slot)
            .copied();
        assert!(e.is_some_and(|e| e.is_llgr_stale() && e.is_stale()));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(2), "RFC 9494 §4.3: long-lived stale ranks last");
        assert_eq!(rib.peers[&1].gr.as_ref().unwrap().families[0].unwrap().phase, Phase::LongLived);
        // Announced again: fresh, and best again.
        gr_session(&mut rib, 1, Some(times(true)));
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(1));
        assert_eq!(rib.peers[&1].stale, [0, 0]);
    }
}
