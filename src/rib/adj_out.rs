//! Adj-RIB-Out: what focld announces to one peer (its `[[prefixes]]`, with the next hop and
//! attributes the session needs).

use crate::config::PrefixConfig;
use crate::msg::SessionInfo;
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
        };
        out.push(OutEntry { prefix: pc.network, route });
    }
    out
}
