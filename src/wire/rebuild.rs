//! UPDATEs rebuilt from a stored attribute set (RFC 4271 §4.3, RFC 4760 §3, RFC 7911 §3):
//! the attributes in the wire form the RIB keeps (4-octet AS numbers, MP_REACH_NLRI kept apart
//! as its next hop), the prefixes of one family that share them, and their path identifiers
//! where ADD-PATH was negotiated. Pure code; the RIB thread calls it for the BMP initial dump.

use super::attr::{code, flag, push_attr};
use super::frame::{write_header, MsgType, HEADER_LEN, MAX_MESSAGE_LEN};
use crate::prefix::{Family, Prefix};

/// One route to rebuild: its prefix and, with ADD-PATH, its path identifier.
pub type Nlri = (Prefix, Option<u32>);

fn write_nlri(out: &mut Vec<u8>, n: &Nlri) {
    if let Some(id) = n.1 {
        out.extend_from_slice(&id.to_be_bytes());
    }
    n.0.write_nlri(out);
}

fn nlri_len(n: &Nlri) -> usize {
    n.0.nlri_len() + if n.1.is_some() { 4 } else { 0 }
}

fn update(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + 4 + attrs.len() + nlri.len();
    let mut m = Vec::with_capacity(len);
    write_header(&mut m, len, MsgType::Update);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(attrs);
    m.extend_from_slice(nlri);
    m
}

/// UPDATEs of at most 4,096 bytes announcing `routes` (all of `family`) with `attrs` (which,
/// for IPv4, hold NEXT_HOP) and, for IPv6, an MP_REACH_NLRI with `mp_next_hop`. Appended to
/// `out`; a set too long to leave room for one route is skipped and counted in the result.
pub fn announcements(
    family: Family,
    attrs: &[u8],
    mp_next_hop: Option<&[u8]>,
    routes: &[Nlri],
    out: &mut Vec<Vec<u8>>,
) -> usize {
    // Room for the longest route: a /128 with a path id.
    const LONGEST: usize = 4 + 17;
    match family {
        Family::Ipv4Unicast => {
            let Some(room) = MAX_MESSAGE_LEN.checked_sub(HEADER_LEN + 4 + attrs.len()) else { return routes.len() };
            if room < LONGEST {
                return routes.len();
            }
            let mut nlri = Vec::new();
            for r in routes {
                if nlri.len() + nlri_len(r) > room {
                    out.push(update(attrs, &nlri));
                    nlri.clear();
                }
                write_nlri(&mut nlri, r);
            }
            if !nlri.is_empty() {
                out.push(update(attrs, &nlri));
            }
            0
        }
        Family::Ipv6Unicast => {
            // RFC 4760 §3: AFI, SAFI, next hop length and next hop, reserved, NLRI.
            let nh = mp_next_hop.unwrap_or_default();
            let nh = &nh[..nh.len().min(255)];
            let mut head = vec![0, 2, 1, nh.len() as u8];
            head.extend_from_slice(nh);
            head.push(0);
            // MP_REACH with an extended length: 4 header bytes.
            let Some(room) = MAX_MESSAGE_LEN.checked_sub(HEADER_LEN + 4 + attrs.len() + 4 + head.len()) else {
                return routes.len();
            };
            if room < LONGEST {
                return routes.len();
            }
            let mut value = head.clone();
            let emit = |value: &mut Vec<u8>, out: &mut Vec<Vec<u8>>| {
                let mut all = Vec::with_capacity(4 + value.len() + attrs.len());
                push_attr(&mut all, flag::OPTIONAL, code::MP_REACH_NLRI, value);
                all.extend_from_slice(attrs);
                out.push(update(&all, &[]));
                value.truncate(head.len());
            };
            for r in routes {
                if value.len() - head.len() + nlri_len(r) > room {
                    emit(&mut value, out);
                }
                write_nlri(&mut value, r);
            }
            if value.len() > head.len() {
                emit(&mut value, out);
            }
            0
        }
    }
}

/// UPDATEs of at most 4,096 bytes withdrawing `routes` (all of `family`): IPv4 in the
/// Withdrawn Routes field (RFC 4271 §4.3), IPv6 in an MP_UNREACH_NLRI (RFC 4760 §4); with
/// their path identifiers where ADD-PATH is on (RFC 7911 §3). Appended to `out`.
pub fn withdrawals(family: Family, routes: &[Nlri], out: &mut Vec<Vec<u8>>) {
    // Withdrawn Routes Length and Total Path Attribute Length (IPv4); for IPv6 the
    // extended-length MP_UNREACH header and its AFI/SAFI too.
    let room = match family {
        Family::Ipv4Unicast => MAX_MESSAGE_LEN - HEADER_LEN - 4,
        Family::Ipv6Unicast => MAX_MESSAGE_LEN - HEADER_LEN - 4 - 4 - 3,
    };
    let emit = |nlri: &[u8], out: &mut Vec<Vec<u8>>| match family {
        Family::Ipv4Unicast => {
            let len = HEADER_LEN + 4 + nlri.len();
            let mut m = Vec::with_capacity(len);
            write_header(&mut m, len, MsgType::Update);
            m.extend_from_slice(&(nlri.len() as u16).to_be_bytes());
            m.extend_from_slice(nlri);
            m.extend_from_slice(&[0, 0]);
            out.push(m);
        }
        Family::Ipv6Unicast => {
            let mut value = vec![0, 2, 1];
            value.extend_from_slice(nlri);
            let mut attrs = Vec::with_capacity(4 + value.len());
            push_attr(&mut attrs, flag::OPTIONAL, code::MP_UNREACH_NLRI, &value);
            out.push(update(&attrs, &[]));
        }
    };
    let mut nlri = Vec::new();
    for r in routes {
        if nlri.len() + nlri_len(r) > room {
            emit(&nlri, out);
            nlri.clear();
        }
        write_nlri(&mut nlri, r);
    }
    if !nlri.is_empty() {
        emit(&nlri, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::update::{parse_update_with, AddPath, Session};

    fn attrs_v4() -> Vec<u8> {
        let mut a = vec![0x40, 1, 1, 0];
        a.extend_from_slice(&[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea]);
        a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 2]);
        a
    }

    #[test]
    fn ten_thousand_ipv4_routes_are_packed_into_full_updates_that_parse_back() {
        let routes: Vec<Nlri> = (0..10_000u32)
            .map(|i| (Prefix::new(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8)).into(), 24).unwrap(), None))
            .collect();
        let mut out = Vec::new();
        assert_eq!(announcements(Family::Ipv4Unicast, &attrs_v4(), None, &routes, &mut out), 0);
        assert!(out.len() < 10_000 / 900 + 2, "packed: {} messages", out.len());
        let mut back = Vec::new();
        for m in &out {
            assert!(m.len() <= MAX_MESSAGE_LEN);
            let u =
                parse_update_with(&m[HEADER_LEN..], Session { four_octet_as: true, ibgp: false }, AddPath::default())
                    .expect("parses");
            assert_eq!(u.attrs, attrs_v4());
            back.extend(u.announced);
        }
        assert_eq!(back, routes.iter().map(|r| r.0).collect::<Vec<_>>());
    }

    #[test]
    fn ipv6_routes_with_path_ids_rebuild_mp_reach_with_the_stored_next_hop() {
        let nh: Vec<u8> = "2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec();
        let routes: Vec<Nlri> = (0..500u16)
            .map(|i| {
                (
                    Prefix::new(std::net::Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0).into(), 48).unwrap(),
                    Some(u32::from(i) + 1),
                )
            })
            .collect();
        let attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0];
        let mut out = Vec::new();
        assert_eq!(announcements(Family::Ipv6Unicast, &attrs, Some(&nh), &routes, &mut out), 0);
        let mut back = Vec::new();
        let mut ids = Vec::new();
        for m in &out {
            let ap = AddPath::of(&[Family::Ipv6Unicast]);
            let u =
                parse_update_with(&m[HEADER_LEN..], Session { four_octet_as: true, ibgp: true }, ap).expect("parses");
            assert_eq!(u.mp_next_hop.as_deref(), Some(&nh[..]));
            back.extend(u.announced.iter().copied());
            ids.extend(u.announced_ids.iter().copied());
        }
        assert_eq!(back, routes.iter().map(|r| r.0).collect::<Vec<_>>());
        assert_eq!(ids, routes.iter().map(|r| r.1.unwrap()).collect::<Vec<_>>());
    }
}
