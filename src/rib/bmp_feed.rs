//! The RIB's live BMP views: the post-policy Adj-RIB-In (RFC 7854 §2, L flag) and the
//! Loc-RIB (RFC 9069).
//!
//! Fed by the RIB thread: `bmp_post_policy` after each UPDATE applied (while the BMP thread
//! has asked for post-policy with `RibMsg::BmpPostPolicy`), `loc_feed_touch` / `loc_feed_rewalk`
//! beside the export hooks (every place a best path may change), `loc_feeds_step` from the
//! run loop. Emits `BmpMsg::PostPolicy`, `PostPolicyReset` and `LocRib` to the BMP thread.
//!
//! Post-policy: the routes one UPDATE changed, as the import policy left them (rejected ones
//! withdrawn, `set` edits applied), numbered like the UPDATE (`updates_in`) so the BMP thread
//! joins them to the initial dump (`bmp_dump.rs`, the same RIB turn) without a gap or a
//! duplicate, and sees a lost one. A change of many routes at once (policy reload, VRPs an
//! import chain reads) sends a reset instead: stations get everything again.
//!
//! Loc-RIB: one feed per station connection, built like an export (`export.rs`): a walk of the
//! whole table in bounded steps (the initial dump, taken only while the station has room),
//! the prefixes touched since, and per prefix a digest of what the station was sent, so a best
//! path is sent once when it changes and withdrawn when it is gone, during the walk or after.
//! Memory: that digest map, 8 bytes and a prefix per Loc-RIB prefix per station connection.

use super::{post_of, Rib};
use crate::msg::{BmpLink, BmpLocRibFeed, BmpMsg, PeerId};
use crate::prefix::{Family, Prefix};
use crate::wire::rebuild::{self, Nlri};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

/// Prefixes looked at per Loc-RIB feed in one step.
const PREFIXES_PER_STEP: usize = 4096;

/// A Loc-RIB feed (RFC 9069) for one station connection.
pub(super) struct LocRibFeed {
    cfg: BmpLocRibFeed,
    /// What the station holds: prefix -> digest of (attributes, next hop).
    sent: HashMap<Prefix, u64>,
    dirty: BTreeSet<Prefix>,
    /// A walk of the whole table in progress: the last prefix done (`None`: from the start).
    walk: Option<Option<Prefix>>,
    /// The first walk (the initial dump) is not over: its end sends End-of-RIB.
    first: bool,
    /// A message the BMP thread's queue had no room for.
    pending: Option<BmpMsg>,
}

/// A route's attributes in the 4-octet form the views use, and its IPv6 next hop.
pub(super) type Wire = (Vec<u8>, Option<Vec<u8>>);

fn digest(w: &Wire) -> u64 {
    let mut h = DefaultHasher::new();
    w.hash(&mut h);
    h.finish()
}

impl Rib {
    /// The attributes of set `id`, 4-octet AS numbers (RFC 6793 §4.2.3, as the Loc-RIB Peer Up
    /// says) and its IPv6 next hop.
    pub(super) fn wire_of(&self, id: super::AttrId) -> Option<Wire> {
        let a = self.attrs.get(id)?;
        let attrs = if a.four_octet {
            a.attrs.to_vec()
        } else {
            let mut w = Vec::new();
            crate::wire::attr::widen_as_numbers(a.attrs, &mut w);
            w
        };
        Some((attrs, a.mp_next_hop.map(<[u8]>::to_vec)))
    }

    /// UPDATEs announcing `groups` (routes sharing attributes) and withdrawing `gone`.
    fn view_updates(groups: HashMap<(Family, Wire), Vec<Nlri>>, gone: [Vec<Nlri>; 2]) -> Vec<Vec<u8>> {
        let mut msgs = Vec::new();
        for family in Family::ALL {
            if !gone[family.index()].is_empty() {
                rebuild::withdrawals(family, &gone[family.index()], &mut msgs);
            }
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        for ((family, (attrs, nh)), routes) in groups {
            // A set too long for one UPDATE is left out (as in the initial dump).
            rebuild::announcements(family, &attrs, nh.as_deref(), &routes, &mut msgs);
        }
        msgs
    }

    /// The BMP thread wants post-policy changes (`Some`) or no longer does.
    pub(super) fn bmp_post_set(&mut self, link: Option<BmpLink>) {
        self.bmp_post = link;
    }

    /// The routes an UPDATE of `peer` names, with their path identifiers where ADD-PATH is
    /// on (RFC 7911 §3), before it is applied.
    pub(super) fn bmp_touched(&self, peer: PeerId, u: &crate::wire::update::ParsedUpdate) -> Vec<Nlri> {
        let Some(s) = self.peers.get(&peer).and_then(|p| p.session.as_ref()) else { return Vec::new() };
        let ap = crate::wire::update::AddPath::of(&s.add_path_rx);
        let withdrawn =
            u.withdrawn.iter().enumerate().map(|(i, w)| (*w, ap.has(w.family()).then(|| u.withdrawn_id(i))));
        let announced = u
            .announced
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, ap.has(a.family()).then(|| u.announced_ids.get(i).copied().unwrap_or(0))));
        withdrawn.chain(announced).collect()
    }

    /// After UPDATE `seq` of `peer`'s session was applied: the post-policy state of each
    /// route it named (`touched`; an End-of-RIB for `eor`).
    pub(super) fn bmp_post_policy(&self, peer: PeerId, touched: &[(Prefix, Option<u32>)], eor: Option<Family>) {
        let Some(link) = &self.bmp_post else { return };
        let Some(p) = self.peers.get(&peer) else { return };
        if p.session.is_none() {
            return;
        }
        let mut groups: HashMap<(Family, Wire), Vec<Nlri>> = HashMap::new();
        let mut gone: [Vec<Nlri>; 2] = [Vec::new(), Vec::new()];
        for &(prefix, pid) in touched {
            let route = self
                .table
                .get(&prefix)
                .and_then(|routes| routes.iter().find(|e| e.peer == p.slot && super::path_of(&self.paths, e) == pid));
            // RFC 7854 §2: post-policy holds what the import policy accepted, as it left it.
            match route.filter(|e| !e.is_rejected()).and_then(|e| self.wire_of(post_of(&self.paths, e))) {
                Some(w) => groups.entry((prefix.family(), w)).or_default().push((prefix, pid)),
                None => gone[prefix.family().index()].push((prefix, pid)),
            }
        }
        let mut msgs = Self::view_updates(groups, gone);
        if let Some(f) = eor {
            msgs.push(crate::wire::update::end_of_rib(f));
        }
        link.event(BmpMsg::PostPolicy { ts: SystemTime::now(), peer, seq: p.updates_in, msgs });
    }

    /// Many post-policy routes may have changed at once.
    pub(super) fn bmp_post_reset(&self, why: &str) {
        if let Some(link) = &self.bmp_post {
            link.event(BmpMsg::PostPolicyReset { why: why.to_string() });
        }
    }

    /// Start the Loc-RIB feed of a station connection (replacing the station's earlier one).
    pub(super) fn loc_feed_start(&mut self, cfg: BmpLocRibFeed) {
        self.loc_feeds.retain(|f| f.cfg.station != cfg.station);
        self.loc_feeds.push(LocRibFeed {
            cfg,
            sent: HashMap::new(),
            dirty: BTreeSet::new(),
            walk: Some(None),
            first: true,
            pending: None,
        });
    }

    pub(super) fn loc_feed_touch(&mut self, prefix: &Prefix) {
        for f in &mut self.loc_feeds {
            f.dirty.insert(*prefix);
        }
    }

    pub(super) fn loc_feed_rewalk(&mut self) {
        for f in &mut self.loc_feeds {
            if f.walk.is_none() {
                f.walk = Some(None);
            }
        }
    }

    pub(super) fn loc_feeds_busy(&self) -> bool {
        self.loc_feeds.iter().any(|f| f.pending.is_some() || f.walk.is_some() || !f.dirty.is_empty())
    }

    pub(super) fn loc_feeds_step(&mut self) {
        let mut i = 0;
        while i < self.loc_feeds.len() {
            if self.loc_feed_step(i) {
                i += 1;
            } else {
                self.loc_feeds.remove(i);
            }
        }
    }

    /// False when the feed's station connection is gone.
    fn loc_feed_step(&mut self, i: usize) -> bool {
        let f = &mut self.loc_feeds[i];
        if f.cfg.live.load(Ordering::Relaxed) != f.cfg.conn {
            return false;
        }
        if let Some(m) = f.pending.take() {
            match f.cfg.link.try_event(m) {
                Ok(()) => {}
                Err(Some(m)) => {
                    f.pending = Some(m);
                    return true;
                }
                Err(None) => return false,
            }
        }
        let mut todo: Vec<Prefix> = Vec::new();
        while todo.len() < PREFIXES_PER_STEP {
            let Some(x) = f.dirty.pop_first() else { break };
            todo.push(x);
        }
        // The walk goes on only while the station keeps up.
        let mut walk_done = false;
        let has_room = f.cfg.waiting.load(Ordering::Relaxed) < f.cfg.room;
        if let (Some(after), true) = (f.walk, has_room) {
            let room = PREFIXES_PER_STEP.saturating_sub(todo.len()).max(1);
            let next: Vec<Prefix> = self.table.walk(after).take(room).map(|(p, _)| p).collect();
            walk_done = next.len() < room;
            f.walk = if walk_done { None } else { next.last().copied().map(Some) };
            todo.extend(next);
        }
        if walk_done {
            // What was sent and is no longer in the table is withdrawn.
            let gone: Vec<Prefix> = f.sent.keys().filter(|p| self.table.get(p).is_none()).copied().collect();
            todo.extend(gone);
        }
        let eor = if walk_done && f.first {
            f.first = false;
            if f.cfg.families.is_empty() {
                Family::ALL.to_vec()
            } else {
                f.cfg.families.clone()
            }
        } else {
            Vec::new()
        };
        if todo.is_empty() && eor.is_empty() {
            return true;
        }
        let families = self.loc_feeds[i].cfg.families.clone();
        let wanted: Vec<(Prefix, Option<Wire>)> = todo
            .into_iter()
            .filter(|x| families.is_empty() || families.contains(&x.family()))
            .map(|x| {
                let best = self.table.get(&x).and_then(|r| r.iter().find(|e| e.is_best()));
                (x, best.and_then(|e| self.wire_of(post_of(&self.paths, e))))
            })
            .collect();
        let f = &mut self.loc_feeds[i];
        let mut groups: HashMap<(Family, Wire), Vec<Nlri>> = HashMap::new();
        let mut gone: [Vec<Nlri>; 2] = [Vec::new(), Vec::new()];
        for (prefix, w) in wanted {
            match w {
                Some(w) => {
                    let d = digest(&w);
                    if f.sent.insert(prefix, d) != Some(d) {
                        groups.entry((prefix.family(), w)).or_default().push((prefix, None));
                    }
                }
                None => {
                    if f.sent.remove(&prefix).is_some() {
                        gone[prefix.family().index()].push((prefix, None));
                    }
                }
            }
        }
        let msgs = Self::view_updates(groups, gone);
        if msgs.is_empty() && eor.is_empty() {
            return true;
        }
        let m = BmpMsg::LocRib { station: f.cfg.station, conn: f.cfg.conn, msgs, end_of_rib: eor };
        match f.cfg.link.try_event(m) {
            Ok(()) => true,
            Err(Some(m)) => {
                f.pending = Some(m);
                true
            }
            Err(None) => false,
        }
    }
}
