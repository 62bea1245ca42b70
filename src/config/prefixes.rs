//! `[[prefixes]]`: the static routes focld announces, each with an optional next hop of the
//! same family; no prefix listed twice.

use std::collections::HashMap;

use super::model::PrefixConfig;
use super::reader::{family_word, Reader, Table};
use crate::prefix::{Family, Prefix};

/// A prefix as read, with the line of its `network` key.
pub(super) struct PrefixRead {
    pub(super) config: PrefixConfig,
    pub(super) network_line: usize,
}

pub(super) fn read_prefix(cx: &mut Reader, t: &mut Table<'_, '_>) -> Option<PrefixRead> {
    let network_field = t.required(cx, "network");
    let network = network_field.as_ref().and_then(|f| {
        let s = cx.str(f)?;
        match s.parse::<Prefix>() {
            Ok(p) => Some(p),
            Err(e) => {
                cx.at(f, e.to_string());
                None
            }
        }
    });
    let next_hop = t.get(cx, "next_hop").and_then(|f| {
        cx.unicast_addr(&f, "next_hop").inspect(|hop| {
            if let Some(net) = network {
                if Family::of_addr(hop) != net.family() {
                    cx.at(
                        &f,
                        format!(
                            "next_hop {hop} is {} but network {net} is {}",
                            family_word(hop),
                            family_word(&net.addr())
                        ),
                    );
                }
            }
        })
    });
    let blackhole = t.get(cx, "blackhole").and_then(|f| cx.bool(&f)).unwrap_or(false);
    Some(PrefixRead {
        config: PrefixConfig { network: network?, next_hop, blackhole },
        network_line: network_field.map_or(0, |f| f.line),
    })
}

/// Announcing one prefix twice is a slip (two next hops for one route, or a copy-paste).
pub(super) fn check_prefixes_unique(cx: &mut Reader, prefixes: &[(usize, PrefixRead)]) {
    let mut seen: HashMap<Prefix, (usize, usize)> = HashMap::new();
    for (i, p) in prefixes {
        let network = p.config.network;
        if let Some((j, line)) = seen.get(&network) {
            cx.error(
                Some(p.network_line),
                &format!("prefixes[{i}].network"),
                format!("prefix {network} is already listed as prefixes[{j}] (line {line})"),
            );
        } else {
            seen.insert(network, (*i, p.network_line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

    #[test]
    fn prefix_rules() {
        let base = format!("{MINIMAL}\n[[prefixes]]\nnetwork = \"10.1.0.0/8\"\n");
        assert_eq!(
            errors(&base),
            vec![
                "focl.toml:10: prefixes[0].network: host bits are set past the prefix length \
                 (did you mean 10.0.0.0/8?)"
            ]
        );
        let text = format!("{MINIMAL}\n[[prefixes]]\nnetwork = \"203.0.113.0/24\"\nnext_hop = \"2001:db8::1\"\n");
        assert_eq!(
            errors(&text),
            vec![
                "focl.toml:11: prefixes[0].next_hop: next_hop 2001:db8::1 is IPv6 but network \
                 203.0.113.0/24 is IPv4"
            ]
        );
        let text = format!(
            "{MINIMAL}\n[[prefixes]]\nnetwork = \"203.0.113.0/24\"\n\n\
             [[prefixes]]\nnetwork = \"203.0.113.0/24\"\n"
        );
        assert_eq!(
            errors(&text),
            vec![
                "focl.toml:13: prefixes[1].network: prefix 203.0.113.0/24 is already listed as \
                 prefixes[0] (line 10)"
            ]
        );
        let text = format!(
            "{MINIMAL}\n[[prefixes]]\nnetwork = \"2001:db8:1000::/48\"\n\
             next_hop = \"2001:db8::2\"\n"
        );
        let c = ok(&text);
        assert_eq!(c.prefixes[0].network.family(), Family::Ipv6Unicast);
        assert_eq!(c.prefixes[0].next_hop, Some("2001:db8::2".parse().unwrap()));
    }
}
