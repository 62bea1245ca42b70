//! Every path attribute of a stored route decoded for people (`focl rib lookup --detail`,
//! like `bgpctl show rib detail` and `birdc show route all`), and the values route filters
//! compare. Decoded by hand from the wire form with the splitter of `wire::attr`; never fails:
//! a malformed value is shown as received (type, flags, hex).
//!
//! Used by the RIB thread's queries; emits plain values, no JSON.

use super::aspath::{self, AsWidth, Segment};
use super::attr::{code, split_attrs};
use std::net::{Ipv4Addr, Ipv6Addr};

/// AS_TRANS (RFC 6793 §9).
const AS_TRANS: u32 = 23456;

/// The attributes of one route, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detail {
    /// 0 IGP, 1 EGP, 2 INCOMPLETE.
    pub origin: Option<u8>,
    /// With 4-octet AS numbers (AS4_PATH merged in for a 2-octet session, RFC 6793 §4.2.3).
    pub as_path: Vec<Segment>,
    pub next_hop: Option<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub extended_communities: Vec<[u8; 8]>,
    pub large_communities: Vec<[u32; 3]>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Only-to-Customer (RFC 9234 §5).
    pub otc: Option<u32>,
    /// (type, flags, value) of attributes not decoded above, and of malformed ones.
    pub other: Vec<(u8, u8, Vec<u8>)>,
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))
}

/// Decode stored attributes (as received, MP_REACH/MP_UNREACH removed) and the IPv6 next hop.
pub fn decode(attrs: &[u8], mp_next_hop: Option<&[u8]>, four_octet: bool) -> Detail {
    let mut d = Detail::default();
    let (list, _) = split_attrs(attrs);
    let width = AsWidth::of_session(four_octet);
    let mut as4_path = None;
    let mut as4_aggregator = None;
    for a in &list {
        let v = a.value;
        let ok = match a.type_code {
            code::ORIGIN if v.len() == 1 && v[0] <= 2 => {
                d.origin = Some(v[0]);
                true
            }
            code::AS_PATH => match aspath::decode(v, width) {
                Some(segs) => {
                    d.as_path = segs;
                    true
                }
                None => false,
            },
            code::NEXT_HOP => ipv4(v).map(|ip| d.next_hop = Some(ip.to_string())).is_some(),
            code::MULTI_EXIT_DISC => be32(v).map(|m| d.med = Some(m)).is_some(),
            code::LOCAL_PREF => be32(v).map(|l| d.local_pref = Some(l)).is_some(),
            code::ATOMIC_AGGREGATE if v.is_empty() => {
                d.atomic_aggregate = true;
                true
            }
            code::AGGREGATOR => {
                let asn_len = if four_octet { 4 } else { 2 };
                if v.len() == asn_len + 4 {
                    let asn =
                        if four_octet { be32(&v[..4]) } else { Some(u32::from(u16::from_be_bytes([v[0], v[1]]))) };
                    d.aggregator = asn.zip(ipv4(&v[asn_len..]));
                    d.aggregator.is_some()
                } else {
                    false
                }
            }
            code::COMMUNITIES if v.len() % 4 == 0 => {
                d.communities.extend(v.chunks_exact(4).filter_map(be32));
                true
            }
            code::ORIGINATOR_ID => ipv4(v).map(|ip| d.originator_id = Some(ip)).is_some(),
            code::OTC => be32(v).map(|o| d.otc = Some(o)).is_some(),
            code::CLUSTER_LIST if v.len() % 4 == 0 => {
                d.cluster_list.extend(v.chunks_exact(4).filter_map(ipv4));
                true
            }
            code::EXTENDED_COMMUNITIES if v.len() % 8 == 0 => {
                d.extended_communities.extend(v.chunks_exact(8).filter_map(|c| <[u8; 8]>::try_from(c).ok()));
                true
            }
            code::LARGE_COMMUNITY if v.len() % 12 == 0 => {
                for c in v.chunks_exact(12) {
                    if let (Some(g), Some(l1), Some(l2)) = (be32(&c[..4]), be32(&c[4..8]), be32(&c[8..])) {
                        d.large_communities.push([g, l1, l2]);
                    }
                }
                true
            }
            // Merged into AS_PATH / AGGREGATOR below on a 2-octet session.
            code::AS4_PATH if !four_octet => {
                as4_path = aspath::decode(v, AsWidth::Four);
                as4_path.is_some()
            }
            code::AS4_AGGREGATOR if !four_octet && v.len() == 8 => {
                as4_aggregator = be32(&v[..4]).zip(ipv4(&v[4..]));
                true
            }
            _ => false,
        };
        if !ok {
            d.other.push((a.type_code, a.flags, v.to_vec()));
        }
    }
    if let Some(as4) = as4_path {
        d.as_path = aspath::merge_as4(std::mem::take(&mut d.as_path), as4);
    }
    // RFC 6793 §4.2.3: AS4_AGGREGATOR applies when AGGREGATOR holds AS_TRANS.
    if let (Some((AS_TRANS, _)), Some(a4)) = (d.aggregator, as4_aggregator) {
        d.aggregator = Some(a4);
    }
    if let Some(nh) = mp_next_hop {
        let global = nh.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()).map(Ipv6Addr::from);
        let local = nh.get(16..32).and_then(|b| <[u8; 16]>::try_from(b).ok()).map(Ipv6Addr::from);
        d.next_hop = match (global, local) {
            (Some(g), Some(l)) => Some(format!("{g} ({l})")),
            (Some(g), None) => Some(g.to_string()),
            _ => d.next_hop,
        };
    }
    d
}

impl Detail {
    /// The origin AS: the last AS of the path when it ends in an AS_SEQUENCE.
    pub fn origin_as(&self) -> Option<u32> {
        self.as_path.last().filter(|s| s.kind == aspath::AS_SEQUENCE).and_then(|s| s.asns.last().copied())
    }

    pub fn path_contains(&self, asn: u32) -> bool {
        self.as_path.iter().any(|s| s.asns.contains(&asn))
    }
}

/// "igp", "egp", "incomplete".
pub fn origin_name(o: u8) -> &'static str {
    match o {
        0 => "igp",
        1 => "egp",
        _ => "incomplete",
    }
}

/// "sequence", "set", "confed_sequence", "confed_set".
pub fn segment_kind_name(kind: u8) -> String {
    match kind {
        aspath::AS_SET => "set".into(),
        aspath::AS_SEQUENCE => "sequence".into(),
        aspath::AS_CONFED_SEQUENCE => "confed_sequence".into(),
        aspath::AS_CONFED_SET => "confed_set".into(),
        k => format!("type_{k}"),
    }
}

/// Well-known communities (RFC 1997, RFC 3765 is not one of them).
const WELL_KNOWN: [(u32, &str); 3] =
    [(0xFFFF_FF01, "no-export"), (0xFFFF_FF02, "no-advertise"), (0xFFFF_FF03, "no-export-subconfed")];

/// "65000:100", or the well-known name.
pub fn community_text(c: u32) -> String {
    match WELL_KNOWN.iter().find(|(v, _)| *v == c) {
        Some((_, n)) => (*n).to_string(),
        None => format!("{}:{}", c >> 16, c & 0xffff),
    }
}

/// Parse "65000:100" or a well-known name into a community value.
pub fn parse_community(s: &str) -> Option<u32> {
    if let Some((v, _)) = WELL_KNOWN.iter().find(|(_, n)| *n == s) {
        return Some(*v);
    }
    let (a, b) = s.split_once(':')?;
    let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
    Some(u32::from(a) << 16 | u32::from(b))
}

/// Parse "65000:1:2" into a large community.
pub fn parse_large_community(s: &str) -> Option<[u32; 3]> {
    let mut it = s.split(':').map(|p| p.parse::<u32>().ok());
    let v = [it.next()??, it.next()??, it.next()??];
    it.next().is_none().then_some(v)
}

/// RFC 4360 §3-§5 and RFC 5668: route target and route origin in words, others in hex.
pub fn extended_community_text(c: &[u8; 8]) -> String {
    let (ty, sub) = (c[0], c[1]);
    let what = match sub {
        0x02 => Some("rt"),
        0x03 => Some("soo"),
        _ => None,
    };
    let hex = || c.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let Some(what) = what else { return format!("0x{}", hex()) };
    match ty & !0x40 {
        0x00 => format!("{what} {}:{}", u16::from_be_bytes([c[2], c[3]]), u32::from_be_bytes([c[4], c[5], c[6], c[7]])),
        0x01 => format!("{what} {}:{}", Ipv4Addr::new(c[2], c[3], c[4], c[5]), u16::from_be_bytes([c[6], c[7]])),
        0x02 => format!("{what} {}:{}", u32::from_be_bytes([c[2], c[3], c[4], c[5]]), u16::from_be_bytes([c[6], c[7]])),
        _ => format!("0x{}", hex()),
    }
}

/// Bytes as lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_is_decoded_or_kept_as_received() {
        let mut a = vec![0x40, 1, 1, 2]; // ORIGIN incomplete
        a.extend_from_slice(&[0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0x3b, 0x41]); // 65001 15169
        a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 1]);
        a.extend_from_slice(&[0x40, 6, 0]); // ATOMIC_AGGREGATE
        a.extend_from_slice(&[0xc0, 7, 8, 0, 0, 0xfd, 0xe9, 10, 0, 0, 1]); // AGGREGATOR
        a.extend_from_slice(&[0xc0, 8, 8, 0xfd, 0xe9, 0, 100, 0xff, 0xff, 0xff, 0x01]);
        a.extend_from_slice(&[0x80, 9, 4, 10, 9, 9, 9]); // ORIGINATOR_ID
        a.extend_from_slice(&[0x80, 10, 8, 10, 1, 1, 1, 10, 2, 2, 2]); // CLUSTER_LIST
        a.extend_from_slice(&[0xc0, 16, 8, 0, 2, 0xfd, 0xe9, 0, 0, 0, 7]); // rt 65001:7
        a.extend_from_slice(&[0xc0, 32, 12, 0, 0, 0xfd, 0xe9, 0, 0, 0, 1, 0, 0, 0, 2]);
        a.extend_from_slice(&[0xc0, 99, 2, 0xab, 0xcd]); // unknown
        let d = decode(&a, None, true);
        assert_eq!(d.origin, Some(2));
        assert_eq!(d.as_path, vec![Segment { kind: aspath::AS_SEQUENCE, asns: vec![65001, 15169] }]);
        assert_eq!((d.origin_as(), d.path_contains(65001), d.path_contains(1)), (Some(15169), true, false));
        assert_eq!(d.next_hop.as_deref(), Some("192.0.2.1"));
        assert!(d.atomic_aggregate);
        assert_eq!(d.aggregator, Some((65001, Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(d.communities.iter().map(|c| community_text(*c)).collect::<Vec<_>>(), ["65001:100", "no-export"]);
        assert_eq!(d.originator_id, Some(Ipv4Addr::new(10, 9, 9, 9)));
        assert_eq!(d.cluster_list.len(), 2);
        assert_eq!(extended_community_text(&d.extended_communities[0]), "rt 65001:7");
        assert_eq!(d.large_communities, vec![[65001, 1, 2]]);
        assert_eq!(d.other, vec![(99, 0xc0, vec![0xab, 0xcd])]);
    }

    #[test]
    fn community_filters_parse_numbers_and_well_known_names() {
        assert_eq!(parse_community("65000:100"), Some(65000 << 16 | 100));
        assert_eq!(parse_community("no-export"), Some(0xFFFF_FF01));
        assert_eq!(parse_community("65000"), None);
        assert_eq!(parse_community("70000:1"), None);
        assert_eq!(parse_large_community("4200000000:1:2"), Some([4_200_000_000, 1, 2]));
        assert_eq!(parse_large_community("1:2"), None);
        assert_eq!(parse_large_community("1:2:3:4"), None);
    }

    #[test]
    fn a_two_octet_session_gets_as4_path_merged_and_as4_aggregator_applied() {
        let mut a = vec![0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0x5b, 0xa0]; // 65001 AS_TRANS
        a.extend_from_slice(&[0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00]); // AS4_PATH 4200000000
        a.extend_from_slice(&[0xc0, 7, 6, 0x5b, 0xa0, 10, 0, 0, 1]); // AGGREGATOR AS_TRANS
        a.extend_from_slice(&[0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x00, 10, 0, 0, 1]);
        let d = decode(&a, None, false);
        assert_eq!(d.as_path[0].asns, vec![65001, 4_200_000_000]);
        assert_eq!(d.aggregator, Some((4_200_000_000, Ipv4Addr::new(10, 0, 0, 1))));
        assert!(d.other.is_empty(), "{:?}", d.other);
    }
}
