//! Adj-RIB-Out: what focld announces to one peer (its `[[prefixes]]`, with the next hop and
//! attributes the session needs).

use crate::config::PrefixConfig;
use crate::msg::SessionInfo;
use crate::policy::sets::{BLACKHOLE, NO_EXPORT};
use crate::prefix::{Family, Prefix};
use crate::wire::role;
use crate::wire::update::OutRoute;
use log::error;

/// A route we announce to one peer.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct OutEntry {
    pub(super) prefix: Prefix,
    pub(super) route: OutRoute,
}

/// The routes we announce on a session: every configured prefix of a negotiated family, with
/// NEXT_HOP = the configured next hop or our address on the session (RFC 4271 §5.1.3), AS_PATH
/// = our AS for eBGP and empty for iBGP (§5.1.2), LOCAL_PREF 100 for iBGP (§5.1.5).
pub(super) fn adj_rib_out(label: &str, prefixes: &[PrefixConfig], info: &SessionInfo) -> Vec<OutEntry> {
    let ibgp = info.is_ibgp();
    let mut out = Vec::new();
    for pc in prefixes {
        let family = pc.network.family();
        if !info.families.contains(&family) {
            continue;
        }
        let next_hop = match pc.next_hop {
            Some(nh) => nh,
            None if Family::of_addr(&info.local_addr) == family => info.local_addr,
            None => {
                error!(
                    "neighbor {label}: not announcing {}: the session runs over {} and has no {family} next hop; set next_hop for this prefix",
                    pc.network,
                    info.local_addr
                );
                continue;
            }
        };
        let route = OutRoute {
            as_path: if ibgp { vec![] } else { vec![info.local_as] },
            next_hop,
            local_pref: ibgp.then_some(100),
            // RFC 2545 §3: our link-local address too, when we are the next hop on the link.
            link_local_next_hop: info.link_local.filter(|_| pc.next_hop.is_none() && family == Family::Ipv6Unicast),
            // RFC 9234 §5: to a customer, peer or RS client, our routes carry OTC = our AS.
            otc: role::otc_egress(info.role, info.local_as),
            // RFC 7999 §3.2: a blackhole route carries BLACKHOLE and stays in the AS next door.
            communities: if pc.blackhole { vec![BLACKHOLE, NO_EXPORT] } else { Vec::new() },
        };
        out.push(OutEntry { prefix: pc.network, route });
    }
    out
}

impl super::Rib {
    /// The static routes of `peer`: `[[prefixes]]`, then the blackhole routes of `focl
    /// blackhole add` meant for it (RFC 7999: BLACKHOLE, NO_EXPORT, the discard next hop).
    pub(super) fn prefixes_for(&self, peer: crate::msg::PeerId) -> Vec<PrefixConfig> {
        let mut v = self.prefixes.clone();
        for (prefix, to) in &self.blackholes {
            if to.is_some_and(|t| t != peer) || v.iter().any(|p| p.network == *prefix) {
                continue;
            }
            let b = &self.policy.blackhole;
            let next_hop = match prefix.family() {
                Family::Ipv4Unicast => std::net::IpAddr::V4(b.discard_v4),
                Family::Ipv6Unicast => std::net::IpAddr::V6(b.discard_v6),
            };
            v.push(PrefixConfig { network: *prefix, next_hop: Some(next_hop), blackhole: true });
        }
        v
    }

    /// `focl blackhole add|del|list`: change the list and announce or withdraw at once, on
    /// every session, without a reset; the list as it stands.
    pub(super) fn blackhole_op(
        &mut self,
        op: crate::msg::BlackholeOp,
    ) -> Result<serde_json::Value, crate::control::proto::CtlError> {
        use crate::control::proto::{code, BlackholeRoute, CtlError};
        use crate::msg::BlackholeOp;
        match op {
            BlackholeOp::Add(prefix, to) => {
                if self.prefixes.iter().any(|p| p.network == prefix) {
                    return Err(CtlError::new(
                        code::BAD_ARGUMENT,
                        format!("{prefix} is a [[prefixes]] entry; set blackhole = true there instead"),
                    ));
                }
                if !self.blackholes.contains(&(prefix, to)) {
                    self.blackholes.push((prefix, to));
                }
                self.set_prefixes(self.prefixes.clone());
                self.export_touch(&prefix);
            }
            BlackholeOp::Del(prefix, to) => {
                let before = self.blackholes.len();
                self.blackholes.retain(|b| *b != (prefix, to));
                if self.blackholes.len() == before {
                    return Err(CtlError::new(
                        code::BAD_ARGUMENT,
                        format!(
                            "{prefix} is not a blackhole route added with focl blackhole add (see focl blackhole list)"
                        ),
                    ));
                }
                self.set_prefixes(self.prefixes.clone());
                self.export_touch(&prefix);
            }
            BlackholeOp::List => {}
        }
        let label = |id: crate::msg::PeerId| self.peers.get(&id).map(|p| p.label.clone());
        let mut list: Vec<BlackholeRoute> = self
            .prefixes
            .iter()
            .filter(|p| p.blackhole)
            .map(|p| BlackholeRoute {
                prefix: p.network.to_string(),
                peer: None,
                next_hop: p.next_hop.map(|n| n.to_string()).unwrap_or_default(),
                source: "config".into(),
            })
            .collect();
        for (prefix, to) in &self.blackholes {
            let nh = match prefix.family() {
                Family::Ipv4Unicast => self.policy.blackhole.discard_v4.to_string(),
                Family::Ipv6Unicast => self.policy.blackhole.discard_v6.to_string(),
            };
            list.push(BlackholeRoute {
                prefix: prefix.to_string(),
                peer: to.and_then(label),
                next_hop: nh,
                source: "focl".into(),
            });
        }
        serde_json::to_value(list).map_err(|e| CtlError::new(code::INTERNAL, e.to_string()))
    }
}
