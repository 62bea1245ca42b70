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
//! Fed by the BMP thread (`RibMsg::BmpDump`); answered in the same RIB turn, so it is the
//! state after exactly `updates_in` UPDATEs of each session (and, for the Adj-RIB-Out, after
//! the `updates_queued` UPDATEs handed to its peer thread): the BMP thread sends the live
//! UPDATEs that came after those and drops the others (no gap, no duplicate).

use super::table::{AttrId, PeerSlot};
use super::{path_of, post_of, set_of, Rib};
use crate::msg::{BmpDump, BmpDumpViews, BmpPeerDump, PeerId};
use crate::prefix::{Family, Prefix};
use crate::wire::rebuild::{self, Nlri};
use crate::wire::update::OutRoute;
use std::collections::HashMap;

impl Rib {
    pub(super) fn bmp_dump(&self, peers: &[PeerId], views: BmpDumpViews) -> BmpDump {
        let mut out: Vec<BmpPeerDump> = Vec::new();
        let mut by_slot: HashMap<PeerSlot, usize> = HashMap::new();
        for id in peers {
            let Some(p) = self.peers.get(id) else { continue };
            let Some(s) = &p.session else { continue };
            by_slot.insert(p.slot, out.len());
            out.push(BmpPeerDump {
                peer: *id,
                session: s.session,
                seq: p.updates_in,
                families: s.families.clone(),
                out_seq: p.link.updates_queued(),
                ..Default::default()
            });
        }
        // (peer, family, attribute set) -> its routes, in prefix order; pre-policy, and
        // post-policy (accepted routes, their set after policy).
        let mut groups: HashMap<(usize, Family, AttrId), Vec<Nlri>> = HashMap::new();
        let mut post: HashMap<(usize, Family, AttrId), Vec<Nlri>> = HashMap::new();
        for (prefix, routes) in self.table.walk(None) {
            for r in routes {
                if let Some(&i) = by_slot.get(&r.peer) {
                    let nlri = (prefix, path_of(&self.paths, r));
                    if views.post_policy && !r.is_rejected() {
                        post.entry((i, prefix.family(), post_of(&self.paths, r))).or_default().push(nlri);
                    }
                    let key = (i, prefix.family(), set_of(&self.paths, r));
                    groups.entry(key).or_default().push(nlri);
                }
            }
        }
        self.rebuild_groups(&post, &mut out, |d| &mut d.post_policy);
        if views.adj_rib_out {
            for d in out.iter_mut() {
                d.adj_rib_out = self.adj_rib_out_updates(d.peer);
            }
        }
        if !views.pre_policy {
            groups.clear();
        }
        self.rebuild_groups(&groups, &mut out, |d| &mut d.updates);
        BmpDump { peers: out }
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
