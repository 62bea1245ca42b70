//! Answers to the control thread's questions (`focl rib ...`): summaries and routes decoded
//! for display.

use super::attrs::AttrSet;
use super::table::RouteEntry;
use super::{unix_now, PeerState, Rib};
use crate::control::proto::{
    self as ctl, CtlError, FamilyCounts, RibPeerSummary, RibSummary, Route as CtlRoute, RouteList,
};
use crate::msg::{PeerId, RibQuery};
use crate::prefix::{Family, Prefix};
use crate::wire::update;

/// Most routes `focl rib in` shows in one answer.
pub const MAX_ROUTES_SHOWN: usize = 50_000;

impl Rib {
    pub(super) fn query(&self, q: RibQuery) -> Result<serde_json::Value, CtlError> {
        let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| CtlError::new(ctl::code::INTERNAL, format!("cannot encode reply: {e}")))
        };
        match q {
            RibQuery::Summary => to_json(serde_json::to_value(self.summary())),
            RibQuery::In { peer, prefix } => {
                let p = self.peer(peer)?;
                let now = unix_now();
                let slot = p.slot;
                let matching = || {
                    self.table.walk(None).filter(|(k, _)| prefix.is_none_or(|f| f.contains(k))).filter_map(
                        |(k, routes)| {
                            routes.iter().find(|e| e.peer == slot).and_then(|e| Some((k, e, self.attrs.get(e.attrs)?)))
                        },
                    )
                };
                // Decoding a full table for display would hold the RIB (and every session's
                // UPDATEs) for seconds, and the answer would not fit the control socket.
                let n = matching().take(MAX_ROUTES_SHOWN + 1).count();
                if n > MAX_ROUTES_SHOWN {
                    return Err(CtlError::new(
                        ctl::code::BAD_ARGUMENT,
                        format!(
                            "more than {MAX_ROUTES_SHOWN} routes match; give a prefix (focl rib in {} PREFIX), \
                             or read the whole table from a RIB snapshot (focl archive snapshot)",
                            p.address
                        ),
                    ));
                }
                let routes = matching().map(|(k, e, a)| display_route(&k, e, a, now)).collect();
                to_json(serde_json::to_value(RouteList { peer: p.label.clone(), routes }))
            }
            RibQuery::Out { peer } => {
                let p = self.peer(peer)?;
                let age = p.adj_out_since.elapsed().as_secs();
                let routes = p
                    .adj_out
                    .iter()
                    .map(|e| CtlRoute {
                        prefix: e.prefix.to_string(),
                        next_hop: Some(e.route.next_hop.to_string()),
                        as_path: e.route.as_path.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" "),
                        origin: Some("igp".into()),
                        med: None,
                        local_pref: e.route.local_pref,
                        communities: vec![],
                        large_communities: vec![],
                        age_secs: age,
                    })
                    .collect();
                to_json(serde_json::to_value(RouteList { peer: p.label.clone(), routes }))
            }
            RibQuery::Counts { peer } => {
                let p = self.peer(peer)?;
                let mut sent = FamilyCounts::default();
                for e in &p.adj_out {
                    match e.prefix.family() {
                        Family::Ipv4Unicast => sent.ipv4_unicast += 1,
                        Family::Ipv6Unicast => sent.ipv6_unicast += 1,
                    }
                }
                to_json(serde_json::to_value((p.counts(), sent)))
            }
        }
    }

    pub(super) fn peer(&self, id: PeerId) -> Result<&PeerState, CtlError> {
        self.peers.get(&id).ok_or_else(|| CtlError::new(ctl::code::NO_SUCH_PEER, format!("no peer with id {id}")))
    }

    pub fn summary(&self) -> RibSummary {
        let mut peers: Vec<(&PeerId, &PeerState)> = self.peers.iter().collect();
        peers.sort_by_key(|(id, _)| **id);
        let mut routes = FamilyCounts::default();
        let peers = peers
            .into_iter()
            .map(|(_, p)| {
                let c = p.counts();
                routes.ipv4_unicast += c.ipv4_unicast;
                routes.ipv6_unicast += c.ipv6_unicast;
                RibPeerSummary { address: p.address.to_string(), name: p.name.clone(), routes: c }
            })
            .collect();
        let mut announced = FamilyCounts::default();
        for p in &self.prefixes {
            match p.network.family() {
                Family::Ipv4Unicast => announced.ipv4_unicast += 1,
                Family::Ipv6Unicast => announced.ipv6_unicast += 1,
            }
        }
        RibSummary { peers, routes, attribute_sets: self.attrs.len() as u64, announced }
    }
}

fn display_route(p: &Prefix, r: &RouteEntry, a: &AttrSet, now: u32) -> CtlRoute {
    let v = update::decode_attrs_for_display(&a.attrs, a.mp_next_hop.as_deref(), a.four_octet);
    CtlRoute {
        prefix: p.to_string(),
        next_hop: v.next_hop,
        as_path: v.as_path,
        origin: v.origin,
        med: v.med,
        local_pref: v.local_pref,
        communities: v.communities,
        large_communities: v.large_communities,
        age_secs: u64::from(now.saturating_sub(r.received)),
    }
}
