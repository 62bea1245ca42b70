//! The BMP initial dump (RFC 7854 §5: a station that connects is first sent the routes the
//! monitored peers have already announced): the Adj-RIB-In of each peer asked for, rebuilt as
//! UPDATEs from the interned attribute sets (4-octet AS numbers, the stored next hop, path ids
//! where ADD-PATH is on), grouped by attribute set so routes that share one share messages.
//!
//! Fed by the BMP thread (`RibMsg::BmpDump`); answered in the same RIB turn, so it is the
//! state after exactly `updates_in` UPDATEs of each session: the BMP thread sends the live
//! UPDATEs that came after those and drops the others (no gap, no duplicate).

use super::table::{AttrId, PeerSlot};
use super::{path_of, set_of, Rib};
use crate::msg::{BmpDump, BmpPeerDump, PeerId};
use crate::prefix::Family;
use crate::wire::rebuild::{self, Nlri};
use std::collections::HashMap;

impl Rib {
    pub(super) fn bmp_dump(&self, peers: &[PeerId]) -> BmpDump {
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
                ..Default::default()
            });
        }
        // (peer, family, attribute set) -> its routes, in prefix order.
        let mut groups: HashMap<(usize, Family, AttrId), Vec<Nlri>> = HashMap::new();
        for (prefix, routes) in self.table.walk(None) {
            for r in routes {
                if let Some(&i) = by_slot.get(&r.peer) {
                    let key = (i, prefix.family(), set_of(&self.paths, r));
                    groups.entry(key).or_default().push((prefix, path_of(&self.paths, r)));
                }
            }
        }
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
            out[i].updates.extend(msgs.into_iter().map(|m| (family, m)));
        }
        BmpDump { peers: out }
    }
}
