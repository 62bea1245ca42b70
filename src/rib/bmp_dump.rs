//! The BMP initial dump (RFC 7854 §5: a station that connects is first sent the routes the
//! monitored peers have already announced): the Adj-RIB-In of each peer asked for, rebuilt as
//! UPDATEs from the interned attribute sets (4-octet AS numbers, the stored next hop, path ids
//! where ADD-PATH is on), grouped by attribute set so routes that share one share messages.
//!
//! Asked for, also the post-policy Adj-RIB-In (RFC 7854 §2: the routes the import policy
//! accepted, with the attributes it left them) and the Adj-RIB-Out (RFC 8671: focld's own
//! `[[prefixes]]` and blackholes and the learned routes exported to the peer, encoded as for
//! its session).
//!
//! Fed by the BMP thread (`RibMsg::BmpDump`). The dump is the state after exactly
//! `updates_in` UPDATEs of each session (and, for the Adj-RIB-Out, after the `updates_queued`
//! UPDATEs handed to its peer thread) when it was asked for: the BMP thread sends the live
//! UPDATEs that came after those and drops the others (no gap, no duplicate). It is made in
//! chunks of `PREFIXES_PER_CHUNK` prefixes, one per RIB turn and only as the BMP thread takes
//! them (a bounded channel), so neither the RIB nor memory waits on a whole table; an UPDATE
//! that changes a dumped peer's routes at a prefix the walk has not reached yet first keeps
//! what the peer had there (`bmp_dump_keep`), and the walk sends that instead.

use super::bmp_feed::Wire;
use super::table::{key_of_v4, key_of_v6, AttrId, PeerSlot};
use super::{path_of, post_of, set_of, Rib};
use crate::msg::{BmpDump, BmpDumpViews, BmpPeerDump, PeerId};
use crate::prefix::{Family, Prefix};
use crate::wire::rebuild::{self, Nlri};
use crate::wire::update::OutRoute;
use crossbeam_channel::{Sender, TrySendError};
use std::collections::HashMap;

/// UPDATEs of one family each.
type Updates = Vec<(Family, Vec<u8>)>;

/// Prefixes walked per chunk of a dump.
const PREFIXES_PER_CHUNK: usize = 4096;

/// A dumped peer's route at a prefix as it was when the dump began.
struct Kept {
    pid: Option<u32>,
    pre: Option<Wire>,
    /// `None` when the import policy rejected it.
    post: Option<Wire>,
}

/// An initial dump being made.
pub(super) struct AdjRibDump {
    reply: Sender<BmpDump>,
    views: BmpDumpViews,
    /// Each dumped peer's slot -> its index in `heads`.
    slots: HashMap<PeerSlot, usize>,
    /// Per peer: what every chunk says of it (the counts, the families), no routes.
    heads: Vec<BmpPeerDump>,
    /// The Adj-RIB-Outs, sent with the first chunk.
    out: Option<Vec<Updates>>,
    /// The last prefix walked (`None`: none yet).
    cursor: Option<Prefix>,
    /// (prefix ahead of the walk, slot) -> the slot's routes there when the dump began.
    kept: HashMap<(Prefix, PeerSlot), Vec<Kept>>,
    /// A chunk the BMP thread has not taken yet.
    pending: Option<BmpDump>,
    done: bool,
    /// Chunks made, and (prefix, peer) pairs kept for the walk, for the log.
    chunks: usize,
    kept_total: usize,
}

/// Whether the walk, at `cursor`, has passed `p` (IPv4 before IPv6, each in key order).
fn walked(cursor: Option<Prefix>, p: &Prefix) -> bool {
    match (cursor, p) {
        (None, _) => false,
        (Some(Prefix::V6 { .. }), Prefix::V4 { .. }) => true,
        (Some(Prefix::V4 { .. }), Prefix::V6 { .. }) => false,
        (Some(c), Prefix::V4 { .. }) => key_of_v4(p) <= key_of_v4(&c),
        (Some(c), Prefix::V6 { .. }) => key_of_v6(p) <= key_of_v6(&c),
    }
}

impl Rib {
    /// Start the initial dump of `peers` (answered in chunks through `reply`).
    pub(super) fn bmp_dump_start(&mut self, peers: &[PeerId], views: BmpDumpViews, reply: Sender<BmpDump>) {
        let mut heads: Vec<BmpPeerDump> = Vec::new();
        let mut slots: HashMap<PeerSlot, usize> = HashMap::new();
        for id in peers {
            let Some(p) = self.peers.get(id) else { continue };
            let Some(s) = &p.session else { continue };
            slots.insert(p.slot, heads.len());
            heads.push(BmpPeerDump {
                peer: *id,
                session: s.session,
                seq: p.updates_in,
                families: s.families.clone(),
                out_seq: p.link.updates_queued(),
                ..Default::default()
            });
        }
        let out = views.adj_rib_out.then(|| heads.iter().map(|h| self.adj_rib_out_updates(h.peer)).collect());
        let views = BmpDumpViews { adj_rib_out: false, ..views };
        self.bmp_dumps.push(AdjRibDump {
            reply,
            views,
            slots,
            heads,
            out,
            cursor: None,
            kept: HashMap::new(),
            pending: None,
            done: false,
            chunks: 0,
            kept_total: 0,
        });
        // The first chunk goes in this turn.
        let i = self.bmp_dumps.len() - 1;
        if !self.bmp_dump_step(i) {
            self.bmp_dumps.remove(i);
        }
    }

    /// Before an UPDATE of `slot` changes its routes at `prefix`: a dump that has not walked
    /// there yet keeps what the peer has now.
    pub(super) fn bmp_dump_keep(&mut self, slot: PeerSlot, prefix: &Prefix) {
        for i in 0..self.bmp_dumps.len() {
            let d = &self.bmp_dumps[i];
            if !d.slots.contains_key(&slot) || walked(d.cursor, prefix) || d.kept.contains_key(&(*prefix, slot)) {
                continue;
            }
            let routes = self.table.get(prefix).unwrap_or_default();
            let kept: Vec<Kept> = routes
                .iter()
                .filter(|e| e.peer == slot)
                .map(|e| Kept {
                    pid: path_of(&self.paths, e),
                    pre: self.wire_of(set_of(&self.paths, e)),
                    post: (!e.is_rejected()).then(|| self.wire_of(post_of(&self.paths, e))).flatten(),
                })
                .collect();
            self.bmp_dumps[i].kept.insert((*prefix, slot), kept);
            self.bmp_dumps[i].kept_total += 1;
        }
    }

    pub(super) fn bmp_dumps_busy(&self) -> bool {
        !self.bmp_dumps.is_empty()
    }

    pub(super) fn bmp_dumps_step(&mut self) {
        let mut i = 0;
        while i < self.bmp_dumps.len() {
            if self.bmp_dump_step(i) {
                i += 1;
            } else {
                self.bmp_dumps.remove(i);
            }
        }
    }

    /// Hand over the next chunk if the BMP thread has taken the last; false when the dump is
    /// over or no longer wanted.
    fn bmp_dump_step(&mut self, i: usize) -> bool {
        let d = &mut self.bmp_dumps[i];
        if let Some(chunk) = d.pending.take() {
            match d.reply.try_send(chunk) {
                Ok(()) => {}
                Err(TrySendError::Full(chunk)) => {
                    d.pending = Some(chunk);
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        if d.done {
            return false;
        }
        let chunk = self.bmp_dump_chunk(i);
        let d = &mut self.bmp_dumps[i];
        match d.reply.try_send(chunk) {
            Ok(()) => !d.done,
            Err(TrySendError::Full(chunk)) => {
                d.pending = Some(chunk);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// The routes of the dumped peers at the next `PREFIXES_PER_CHUNK` prefixes (and, at the
    /// end, at the prefixes kept that have left the table since).
    fn bmp_dump_chunk(&mut self, i: usize) -> BmpDump {
        let d = &mut self.bmp_dumps[i];
        let mut kept = std::mem::take(&mut d.kept);
        let (cursor, views) = (d.cursor, d.views);
        let mut out: Vec<BmpPeerDump> = d
            .heads
            .iter()
            .map(|h| BmpPeerDump {
                peer: h.peer,
                session: h.session,
                seq: h.seq,
                out_seq: h.out_seq,
                ..Default::default()
            })
            .collect();
        if let Some(o) = d.out.take() {
            for (h, o) in out.iter_mut().zip(o) {
                h.adj_rib_out = o;
            }
        }
        // (peer, family, attribute set) -> its routes, pre-policy and post-policy (accepted
        // routes, their set after policy); the same from routes kept, by their bytes.
        let mut pre: HashMap<(usize, Family, AttrId), Vec<Nlri>> = HashMap::new();
        let mut post: HashMap<(usize, Family, AttrId), Vec<Nlri>> = HashMap::new();
        let mut pre_kept: HashMap<(usize, Family, Wire), Vec<Nlri>> = HashMap::new();
        let mut post_kept: HashMap<(usize, Family, Wire), Vec<Nlri>> = HashMap::new();
        let mut take_kept = |i: usize, prefix: Prefix, list: Vec<Kept>| {
            for k in list {
                if let (Some(w), true) = (k.pre, views.pre_policy) {
                    pre_kept.entry((i, prefix.family(), w)).or_default().push((prefix, k.pid));
                }
                if let (Some(w), true) = (k.post, views.post_policy) {
                    post_kept.entry((i, prefix.family(), w)).or_default().push((prefix, k.pid));
                }
            }
        };
        let mut last = None;
        let mut n = 0;
        for (prefix, routes) in self.table.walk(cursor).take(PREFIXES_PER_CHUNK) {
            last = Some(prefix);
            n += 1;
            // Slots whose routes here changed since the dump began: what they had is sent.
            let mut changed: Vec<PeerSlot> = Vec::new();
            if !kept.is_empty() {
                for (slot, &i) in &d.slots {
                    if let Some(list) = kept.remove(&(prefix, *slot)) {
                        take_kept(i, prefix, list);
                        changed.push(*slot);
                    }
                }
            }
            for r in routes {
                let Some(&i) = d.slots.get(&r.peer) else { continue };
                if changed.contains(&r.peer) {
                    continue;
                }
                let nlri = (prefix, path_of(&self.paths, r));
                if views.post_policy && !r.is_rejected() {
                    post.entry((i, prefix.family(), post_of(&self.paths, r))).or_default().push(nlri);
                }
                if views.pre_policy {
                    pre.entry((i, prefix.family(), set_of(&self.paths, r))).or_default().push(nlri);
                }
            }
        }
        let done = n < PREFIXES_PER_CHUNK;
        if done {
            // Routes kept at prefixes that left the table after the dump began.
            for ((prefix, slot), list) in std::mem::take(&mut kept) {
                if let Some(&i) = d.slots.get(&slot) {
                    take_kept(i, prefix, list);
                }
            }
        }
        d.cursor = last.or(cursor);
        d.done = done;
        d.chunks += 1;
        if done {
            log::debug!(
                "bmp: initial dump of {} peers made in {} chunks; {} of their prefixes changed ahead of the walk",
                d.heads.len(),
                d.chunks,
                d.kept_total
            );
        }
        d.kept = kept;
        self.rebuild_groups(&pre, &mut out, |d| &mut d.updates);
        self.rebuild_groups(&post, &mut out, |d| &mut d.post_policy);
        for (groups, into) in [(pre_kept, 0), (post_kept, 1)] {
            let mut groups: Vec<_> = groups.into_iter().collect();
            groups.sort_unstable_by(|a, b| a.1.cmp(&b.1));
            for ((i, family, (attrs, nh)), routes) in groups {
                let mut msgs = Vec::new();
                out[i].skipped += rebuild::announcements(family, &attrs, nh.as_deref(), &routes, &mut msgs);
                let to = if into == 0 { &mut out[i].updates } else { &mut out[i].post_policy };
                to.extend(msgs.into_iter().map(|m| (family, m)));
            }
        }
        if done {
            for (o, h) in out.iter_mut().zip(&self.bmp_dumps[i].heads) {
                o.families = h.families.clone();
            }
        }
        BmpDump { peers: out, last: done }
    }

    /// UPDATEs (4-octet AS numbers) of each group of routes sharing a set, into `into(peer)`.
    fn rebuild_groups(
        &self,
        groups: &HashMap<(usize, Family, AttrId), Vec<Nlri>>,
        out: &mut [BmpPeerDump],
        into: impl Fn(&mut BmpPeerDump) -> &mut Vec<(Family, Vec<u8>)>,
    ) {
        let mut keys: Vec<_> = groups.keys().copied().collect();
        keys.sort_unstable();
        let mut widened = Vec::new();
        for key in keys {
            let (i, family, set) = key;
            let Some(routes) = groups.get(&key) else { continue };
            let Some(a) = self.attrs.get(set) else {
                out[i].skipped += routes.len();
                continue;
            };
            let attrs = if a.four_octet {
                a.attrs
            } else {
                widened.clear();
                crate::wire::attr::widen_as_numbers(a.attrs, &mut widened);
                &widened[..]
            };
            let mut msgs = Vec::new();
            out[i].skipped += rebuild::announcements(family, attrs, a.mp_next_hop, routes, &mut msgs);
            into(&mut out[i]).extend(msgs.into_iter().map(|m| (family, m)));
        }
    }

    /// What `peer` holds from us (RFC 8671 post-policy Adj-RIB-Out), encoded as for its
    /// session: `[[prefixes]]` and blackhole routes, then the learned routes exported to it.
    /// (Routes of `[[sources]]` are not rebuilt: they reach a station only as sent.)
    fn adj_rib_out_updates(&self, peer: PeerId) -> Vec<(Family, Vec<u8>)> {
        let Some(p) = self.peers.get(&peer) else { return Vec::new() };
        let Some(info) = p.session.as_ref() else { return Vec::new() };
        let mut out = Vec::new();
        for family in info.families.iter().copied() {
            let mut groups: Vec<(&OutRoute, Vec<Prefix>)> = Vec::new();
            for e in p.adj_out.iter().filter(|e| e.prefix.family() == family) {
                match groups.iter_mut().find(|(r, _)| **r == e.route) {
                    Some((_, v)) => v.push(e.prefix),
                    None => groups.push((&e.route, vec![e.prefix])),
                }
            }
            for (route, prefixes) in groups {
                let max = info.max_message_len;
                if let Ok(m) =
                    crate::wire::update::build_announcements(family, &prefixes, route, info.four_octet_as, max)
                {
                    out.extend(m.into_iter().map(|m| (family, m)));
                }
            }
        }
        out.extend(self.exported_updates(peer));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{announce, attrs, rib_with_peers, withdraw};
    use super::*;
    use crate::wire::update::{parse_update, Session};
    use std::collections::BTreeMap;

    /// Prefix -> first AS of the AS_PATH, from the dump's pre-policy UPDATEs, and the chunks.
    fn collect(rx: &crossbeam_channel::Receiver<BmpDump>, rib: &mut Rib) -> (BTreeMap<String, u32>, usize) {
        let mut got = BTreeMap::new();
        let mut chunks = 0;
        loop {
            let chunk = match rx.try_recv() {
                Ok(c) => c,
                Err(_) => {
                    rib.bmp_dumps_step();
                    continue;
                }
            };
            chunks += 1;
            for p in chunk.peers {
                for (_, m) in p.updates {
                    let u = parse_update(&m[19..], Session { four_octet_as: true, ibgp: false }).expect("parses");
                    let asn = u32::from_be_bytes([u.attrs[9], u.attrs[10], u.attrs[11], u.attrs[12]]);
                    for a in u.announced {
                        assert!(got.insert(a.to_string(), asn).is_none(), "{a} twice");
                    }
                }
            }
            if chunk.last {
                return (got, chunks);
            }
        }
    }

    fn announce_v6(rib: &mut Rib, peer: PeerId, prefixes: &[&str], attrs: Vec<u8>) {
        let announced = prefixes.iter().map(|p| p.parse().expect("prefix")).collect();
        let nh = "2001:db8::1".parse::<std::net::Ipv6Addr>().expect("nh").octets().to_vec();
        let u = crate::wire::update::ParsedUpdate { announced, attrs, mp_next_hop: Some(nh), ..Default::default() };
        rib.apply_update(peer, u, true);
    }

    fn v4(i: u32) -> String {
        let b = (0x0a00_0000u32 + (i << 8)).to_be_bytes();
        format!("{}.{}.{}.0/24", b[0], b[1], b[2])
    }

    #[test]
    fn a_dump_in_chunks_is_the_table_when_it_was_asked_for_whatever_changes_meanwhile() {
        let mut rib = rib_with_peers(2);
        let mut all: Vec<String> = (0..10_000).map(v4).collect();
        all.extend((0..3_000u32).map(|i| format!("2001:db8:{:x}::/48", i)));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        announce(&mut rib, 1, &refs[..10_000], attrs(65001, 1));
        announce_v6(&mut rib, 1, &refs[10_000..], attrs(65001, 1));
        announce(&mut rib, 2, &refs[..100], attrs(65002, 1));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let views = BmpDumpViews { pre_policy: true, ..Default::default() };
        rib.bmp_dump_start(&[1], views, tx);
        // The first chunk is made at once; then, before the rest: routes changed ahead of the
        // walk (a new AS, a withdrawal, a prefix new to the table) and behind it, and the
        // other peer's routes.
        announce(&mut rib, 1, &[&v4(9_000), &v4(20), "192.0.2.0/24"], attrs(65099, 1));
        withdraw(&mut rib, 1, &[&v4(9_500), &v4(30), "2001:db8:10::/48"]);
        announce(&mut rib, 2, &[&v4(9_600)], attrs(65002, 1));
        let (got, chunks) = collect(&rx, &mut rib);
        assert_eq!(chunks, 13_000 / PREFIXES_PER_CHUNK + 1, "chunks");
        assert_eq!(got.len(), 13_000, "every route of the peer when the dump was asked for");
        assert_eq!(got["2001:db8:10::/48"], 65001, "IPv6 too");
        assert_eq!(got[&v4(9_000)], 65001, "as it was");
        assert_eq!(got[&v4(9_500)], 65001, "withdrawn after the dump was asked for: still in it");
        assert!(!got.contains_key("192.0.2.0/24"), "announced after: not in it");
        assert!(rib.bmp_dumps.is_empty(), "the dump is over");
    }
}
