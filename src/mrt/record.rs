//! MRT record encoding (RFC 6396): BGP4MP envelopes around received messages and state
//! changes, and TABLE_DUMP_V2 peer index and RIB records.
//!
//! Called by the MRT writer thread (BGP4MP) and the RIB thread (TABLE_DUMP_V2); emits bytes.
//! The messages inside BGP4MP records are the raw bytes exactly as received, so a message
//! that failed to parse is archived as well. bgpkit-parser's own MRT encoders are not used:
//! they re-encode parsed messages (see bgpkit-parser-notes.md).

use crate::prefix::Prefix;
use crate::wire::attr::{code as attr, flag, push_attr, widen_as_numbers};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

/// MRT types and subtypes (RFC 6396 §4, IANA "MRT Types").
pub mod mrt_type {
    pub const TABLE_DUMP_V2: u16 = 13;
    pub const BGP4MP: u16 = 16;
    pub const BGP4MP_ET: u16 = 17;
    pub const PEER_INDEX_TABLE: u16 = 1;
    pub const RIB_IPV4_UNICAST: u16 = 2;
    pub const RIB_IPV6_UNICAST: u16 = 4;
    pub const MESSAGE: u16 = 1;
    pub const MESSAGE_AS4: u16 = 4;
    pub const STATE_CHANGE_AS4: u16 = 5;
    /// RFC 8050 §3: messages whose NLRI carry ADD-PATH path identifiers.
    pub const MESSAGE_ADDPATH: u16 = 8;
    pub const MESSAGE_AS4_ADDPATH: u16 = 9;
    /// RFC 8050 §4: RIB entries with a path identifier each.
    pub const RIB_IPV4_UNICAST_ADDPATH: u16 = 8;
    pub const RIB_IPV6_UNICAST_ADDPATH: u16 = 10;
}

/// Timestamps: BGP4MP (seconds) or BGP4MP_ET (RFC 6396 §3: with microseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Second,
    Microsecond,
}

pub use crate::msg::SessionAddrs;

fn split_time(ts: SystemTime) -> (u32, u32) {
    let d = ts.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as u32, d.subsec_micros())
}

/// Common header (RFC 6396 §2/§3); for ET the microseconds are part of the length.
fn header(out: &mut Vec<u8>, ts: SystemTime, precision: Precision, subtype: u16, body_len: usize) {
    let (secs, micros) = split_time(ts);
    out.extend_from_slice(&secs.to_be_bytes());
    match precision {
        Precision::Second => {
            out.extend_from_slice(&mrt_type::BGP4MP.to_be_bytes());
            out.extend_from_slice(&subtype.to_be_bytes());
            out.extend_from_slice(&(body_len as u32).to_be_bytes());
        }
        Precision::Microsecond => {
            out.extend_from_slice(&mrt_type::BGP4MP_ET.to_be_bytes());
            out.extend_from_slice(&subtype.to_be_bytes());
            out.extend_from_slice(&(body_len as u32 + 4).to_be_bytes());
            out.extend_from_slice(&micros.to_be_bytes());
        }
    }
}

/// Both addresses in the peer's family: an IPv4 local address with an IPv6 peer becomes
/// v4-mapped, an IPv6 local address with an IPv4 peer becomes 0.0.0.0 (RFC 6396 has one AFI
/// for both).
fn same_family(s: &SessionAddrs) -> (IpAddr, IpAddr) {
    let local = match (s.peer_ip, s.local_ip) {
        (IpAddr::V6(_), IpAddr::V4(l)) => IpAddr::V6(l.to_ipv6_mapped()),
        (IpAddr::V4(_), IpAddr::V6(l)) => {
            l.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        }
        (_, l) => l,
    };
    (s.peer_ip, local)
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// Peer AS, local AS, interface index 0, AFI, peer IP, local IP (RFC 6396 §4.4).
fn bgp4mp_peer_header(out: &mut Vec<u8>, s: &SessionAddrs, as4: bool) {
    if as4 {
        out.extend_from_slice(&s.peer_as.to_be_bytes());
        out.extend_from_slice(&s.local_as.to_be_bytes());
    } else {
        out.extend_from_slice(&u16::try_from(s.peer_as).unwrap_or(23456).to_be_bytes());
        out.extend_from_slice(&u16::try_from(s.local_as).unwrap_or(23456).to_be_bytes());
    }
    out.extend_from_slice(&0u16.to_be_bytes());
    let (peer, local) = same_family(s);
    out.extend_from_slice(&(if peer.is_ipv4() { 1u16 } else { 2u16 }).to_be_bytes());
    push_ip(out, peer);
    push_ip(out, local);
}

fn peer_header_len(s: &SessionAddrs, as4: bool) -> usize {
    let ip = if s.peer_ip.is_ipv4() { 4 } else { 16 };
    (if as4 { 8 } else { 4 }) + 4 + 2 * ip
}

/// A BGP4MP(_ET) MESSAGE_AS4 (4-octet session) or MESSAGE (2-octet session) record around
/// the raw message, header included (RFC 6396 §4.4.2, §4.4.3); their _ADDPATH forms (RFC 8050
/// §3) when the message's NLRI carry path identifiers.
pub fn bgp4mp_message(
    ts: SystemTime,
    precision: Precision,
    (as4, add_path): (bool, bool),
    s: &SessionAddrs,
    raw_msg: &[u8],
    out: &mut Vec<u8>,
) {
    let subtype = match (as4, add_path) {
        (true, false) => mrt_type::MESSAGE_AS4,
        (false, false) => mrt_type::MESSAGE,
        (true, true) => mrt_type::MESSAGE_AS4_ADDPATH,
        (false, true) => mrt_type::MESSAGE_ADDPATH,
    };
    header(out, ts, precision, subtype, peer_header_len(s, as4) + raw_msg.len());
    bgp4mp_peer_header(out, s, as4);
    out.extend_from_slice(raw_msg);
}

/// A BGP4MP(_ET) STATE_CHANGE_AS4 record (RFC 6396 §4.4.4), states numbered 1 Idle to
/// 6 Established.
pub fn bgp4mp_state_change(
    ts: SystemTime,
    precision: Precision,
    s: &SessionAddrs,
    old_state: u16,
    new_state: u16,
    out: &mut Vec<u8>,
) {
    header(out, ts, precision, mrt_type::STATE_CHANGE_AS4, peer_header_len(s, true) + 4);
    bgp4mp_peer_header(out, s, true);
    out.extend_from_slice(&old_state.to_be_bytes());
    out.extend_from_slice(&new_state.to_be_bytes());
}

/// A peer of the TABLE_DUMP_V2 peer index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEntry {
    pub bgp_id: Ipv4Addr,
    pub ip: IpAddr,
    pub asn: u32,
}

fn td2_header(out: &mut Vec<u8>, ts: u32, subtype: u16, body_len: usize) {
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&mrt_type::TABLE_DUMP_V2.to_be_bytes());
    out.extend_from_slice(&subtype.to_be_bytes());
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
}

/// PEER_INDEX_TABLE (RFC 6396 §4.3.1): collector BGP id, view name, peers with 4-octet ASNs.
pub fn peer_index_table(ts: u32, collector_id: Ipv4Addr, view_name: &str, peers: &[PeerEntry], out: &mut Vec<u8>) {
    let name = &view_name.as_bytes()[..view_name.len().min(u16::MAX as usize)];
    let mut body = Vec::with_capacity(8 + name.len() + peers.len() * 25);
    body.extend_from_slice(&collector_id.octets());
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(&(peers.len().min(u16::MAX as usize) as u16).to_be_bytes());
    for p in peers.iter().take(u16::MAX as usize) {
        // Peer type: bit 0 IPv6 address, bit 1 4-octet AS.
        let ty = 0b10 | u8::from(p.ip.is_ipv6());
        body.push(ty);
        body.extend_from_slice(&p.bgp_id.octets());
        push_ip(&mut body, p.ip);
        body.extend_from_slice(&p.asn.to_be_bytes());
    }
    td2_header(out, ts, mrt_type::PEER_INDEX_TABLE, body.len());
    out.extend_from_slice(&body);
}

/// One entry of a RIB record: attributes already in TABLE_DUMP_V2 form (`td2_attributes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibEntry<'a> {
    pub peer_index: u16,
    pub originated: u32,
    /// RFC 8050 path identifier: entries with one go into an _ADDPATH record.
    pub path_id: Option<u32>,
    pub attrs: &'a [u8],
}

/// RIB_IPV4_UNICAST or RIB_IPV6_UNICAST (RFC 6396 §4.3.2), or their _ADDPATH forms with a
/// path identifier after each entry's originated time (RFC 8050 §4) when the entries carry
/// one (all of a record's entries do, or none).
pub fn rib_entry_record(ts: u32, seq: u32, prefix: &Prefix, entries: &[RibEntry], out: &mut Vec<u8>) {
    let add_path = entries.iter().any(|e| e.path_id.is_some());
    let subtype = match (prefix.addr().is_ipv4(), add_path) {
        (true, false) => mrt_type::RIB_IPV4_UNICAST,
        (false, false) => mrt_type::RIB_IPV6_UNICAST,
        (true, true) => mrt_type::RIB_IPV4_UNICAST_ADDPATH,
        (false, true) => mrt_type::RIB_IPV6_UNICAST_ADDPATH,
    };
    let fixed = if add_path { 12 } else { 8 };
    let body_len = 4 + prefix.nlri_len() + 2 + entries.iter().map(|e| fixed + e.attrs.len()).sum::<usize>();
    td2_header(out, ts, subtype, body_len);
    out.extend_from_slice(&seq.to_be_bytes());
    prefix.write_nlri(out);
    out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.peer_index.to_be_bytes());
        out.extend_from_slice(&e.originated.to_be_bytes());
        if add_path {
            out.extend_from_slice(&e.path_id.unwrap_or(0).to_be_bytes());
        }
        out.extend_from_slice(&(e.attrs.len() as u16).to_be_bytes());
        out.extend_from_slice(e.attrs);
    }
}

/// Stored attributes in TABLE_DUMP_V2 form (RFC 6396 §4.3.4): AS numbers always 4 octets
/// (a 2-octet session's AS_PATH and AGGREGATOR are widened, AS4_PATH/AS4_AGGREGATOR merged in
/// and dropped), and an IPv6 route's next hop as an MP_REACH_NLRI holding only the next-hop
/// length and address. Malformed attributes are copied as they are.
pub fn td2_attributes(attrs: &[u8], four_octet: bool, mp_next_hop: Option<&[u8]>, out: &mut Vec<u8>) {
    if four_octet {
        out.extend_from_slice(attrs);
    } else {
        widen_as_numbers(attrs, out);
    }
    if let Some(nh) = mp_next_hop {
        let mut v = Vec::with_capacity(1 + nh.len());
        v.push(nh.len() as u8);
        v.extend_from_slice(nh);
        push_attr(out, flag::OPTIONAL, attr::MP_REACH_NLRI, &v);
    }
}

/// Length of the longest prefix of `data` made of complete records.
pub fn complete_records_len(data: &[u8]) -> usize {
    let mut at = 0;
    while let Some(h) = data.get(at..at + 12) {
        let len = 12 + u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        if data.len() - at < len {
            break;
        }
        at += len;
    }
    at
}

/// Timestamp (seconds) of the record at the start of `data`.
pub fn record_timestamp(data: &[u8]) -> Option<u32> {
    data.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// An unspecified address of the same family, for sessions without a known local address.
pub fn unspecified_like(ip: &IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgpkit_parser::models::{Bgp4MpEnum, MrtMessage, TableDumpV2Message};
    use std::time::Duration;

    fn session_v4() -> SessionAddrs {
        SessionAddrs {
            peer_as: 4_200_000_000,
            local_as: 65001,
            peer_ip: "192.0.2.2".parse().unwrap(),
            local_ip: "192.0.2.1".parse().unwrap(),
        }
    }

    fn an_update() -> Vec<u8> {
        let attrs = [0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00, 0x40, 3, 4, 192, 0, 2, 2];
        let nlri = [0, 8, 10];
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((23 + attrs.len() + nlri.len()) as u16).to_be_bytes());
        m.push(2);
        m.extend_from_slice(&[0, 0, 0, attrs.len() as u8]);
        m.extend_from_slice(&attrs);
        m.extend_from_slice(&nlri);
        m
    }

    fn parse_all(data: &[u8]) -> Vec<bgpkit_parser::models::MrtRecord> {
        let mut r = data;
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(bgpkit_parser::parse_mrt_record(&mut r).expect("bgpkit-parser reads the record"));
        }
        out
    }

    #[test]
    fn bgp4mp_et_message_round_trips_with_microseconds() {
        let ts = UNIX_EPOCH + Duration::from_micros(1_795_513_500_123_456);
        let raw = an_update();
        let mut buf = Vec::new();
        bgp4mp_message(ts, Precision::Microsecond, (true, false), &session_v4(), &raw, &mut buf);
        let recs = parse_all(&buf);
        let h = &recs[0].common_header;
        assert_eq!((h.timestamp, h.microsecond_timestamp), (1_795_513_500, Some(123_456)));
        assert_eq!((h.entry_type as u16, h.entry_subtype), (17, 4));
        let MrtMessage::Bgp4Mp(Bgp4MpEnum::Message(m)) = &recs[0].message else { panic!("not a BGP4MP message") };
        assert_eq!(m.peer_asn.to_u32(), 4_200_000_000);
        assert_eq!(m.local_asn.to_u32(), 65001);
        assert_eq!(m.peer_ip.to_string(), "192.0.2.2");
        assert_eq!(m.local_ip.to_string(), "192.0.2.1");
        // The message bytes are ours, verbatim, after the 20-byte peer header.
        assert_eq!(&buf[16 + 20..], &raw[..]);
        assert_eq!(complete_records_len(&buf), buf.len());
        assert_eq!(complete_records_len(&buf[..buf.len() - 1]), 0);
    }

    #[test]
    fn second_precision_and_two_octet_sessions() {
        let ts = UNIX_EPOCH + Duration::from_secs(1_795_513_500);
        let s = SessionAddrs { peer_as: 65002, ..session_v4() };
        let mut buf = Vec::new();
        bgp4mp_message(ts, Precision::Second, (false, false), &s, &an_update(), &mut buf);
        let recs = parse_all(&buf);
        assert_eq!((recs[0].common_header.entry_type as u16, recs[0].common_header.entry_subtype), (16, 1));
        assert_eq!(recs[0].common_header.microsecond_timestamp, None);
        assert_eq!(&buf[12 + 16..], &an_update()[..], "2-octet ASNs make a 16-byte peer header");
    }

    #[test]
    fn state_change_over_ipv6() {
        let s = SessionAddrs {
            peer_ip: "2001:db8::2".parse().unwrap(),
            local_ip: "2001:db8::1".parse().unwrap(),
            ..session_v4()
        };
        let mut buf = Vec::new();
        bgp4mp_state_change(SystemTime::now(), Precision::Microsecond, &s, 5, 6, &mut buf);
        let recs = parse_all(&buf);
        let MrtMessage::Bgp4Mp(Bgp4MpEnum::StateChange(c)) = &recs[0].message else { panic!("not a state change") };
        assert_eq!(c.peer_ip.to_string(), "2001:db8::2");
        assert_eq!((c.old_state as u16, c.new_state as u16), (5, 6));
        assert_eq!(recs[0].common_header.entry_subtype, 5);
    }

    #[test]
    fn table_dump_v2_with_an_ipv6_next_hop_reads_back_as_elements() {
        let peers = [
            PeerEntry { bgp_id: "192.0.2.2".parse().unwrap(), ip: "192.0.2.2".parse().unwrap(), asn: 4_200_000_000 },
            PeerEntry { bgp_id: "192.0.2.3".parse().unwrap(), ip: "2001:db8::3".parse().unwrap(), asn: 65003 },
        ];
        let mut buf = Vec::new();
        peer_index_table(1_795_513_500, "192.0.2.1".parse().unwrap(), "focld", &peers, &mut buf);
        // IPv4 route from peer 0 with MED and a community.
        let mut a4 = Vec::new();
        let stored =
            [0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, 0x40, 3, 4, 192, 0, 2, 2, 0x80, 4, 4, 0, 0, 0, 7];
        td2_attributes(&stored, true, None, &mut a4);
        let p4: Prefix = "10.0.0.0/8".parse().unwrap();
        rib_entry_record(
            1_795_513_500,
            0,
            &p4,
            &[RibEntry { peer_index: 0, originated: 1_795_510_000, path_id: None, attrs: &a4 }],
            &mut buf,
        );
        // IPv6 route from peer 1 on a 2-octet session: AS_PATH widened, next hop abbreviated.
        let mut a6 = Vec::new();
        let stored6 = [0x40, 1, 1, 0, 0x40, 2, 4, 2, 1, 0xfd, 0xeb];
        let nh: Ipv6Addr = "2001:db8::3".parse().unwrap();
        td2_attributes(&stored6, false, Some(&nh.octets()), &mut a6);
        let p6: Prefix = "2001:db8:1000::/48".parse().unwrap();
        rib_entry_record(
            1_795_513_500,
            1,
            &p6,
            &[RibEntry { peer_index: 1, originated: 1_795_510_000, path_id: None, attrs: &a6 }],
            &mut buf,
        );
        let recs = parse_all(&buf);
        let MrtMessage::TableDumpV2Message(TableDumpV2Message::PeerIndexTable(pit)) = &recs[0].message else {
            panic!("no peer index")
        };
        assert_eq!(pit.view_name, "focld");
        let elems: Vec<bgpkit_parser::BgpElem> =
            bgpkit_parser::BgpkitParser::from_reader(buf.as_slice()).into_elem_iter().collect();
        assert_eq!(elems.len(), 2);
        assert_eq!(elems[0].prefix.to_string(), "10.0.0.0/8");
        assert_eq!(elems[0].peer_asn.to_u32(), 4_200_000_000);
        assert_eq!(elems[0].med, Some(7));
        assert_eq!(elems[0].next_hop.map(|n| n.to_string()).as_deref(), Some("192.0.2.2"));
        assert_eq!(elems[1].prefix.to_string(), "2001:db8:1000::/48");
        assert_eq!(elems[1].peer_ip.to_string(), "2001:db8::3");
        assert_eq!(elems[1].next_hop.map(|n| n.to_string()).as_deref(), Some("2001:db8::3"));
        assert_eq!(elems[1].as_path.as_ref().map(|p| p.to_string()).as_deref(), Some("65003"));
    }

    #[test]
    fn two_octet_as_path_with_as4_path_becomes_the_real_path() {
        // AS_PATH [65002, AS_TRANS, 65010], AS4_PATH [4200000000, 65010].
        let mut stored = vec![0x40, 1, 1, 0, 0x40, 2, 8, 2, 3, 0xfd, 0xea, 0x5b, 0xa0, 0xfd, 0xf2];
        stored.extend_from_slice(&[0xc0, 17, 10, 2, 2, 0xfa, 0x56, 0xea, 0x00, 0, 0, 0xfd, 0xf2]);
        let mut out = Vec::new();
        td2_attributes(&stored, false, None, &mut out);
        let want = [0x40, 1, 1, 0, 0x40, 2, 14, 2, 3, 0, 0, 0xfd, 0xea, 0xfa, 0x56, 0xea, 0x00, 0, 0, 0xfd, 0xf2];
        assert_eq!(out, want);
        // 4-octet sessions are copied as they are; garbage is kept, never a panic.
        let mut same = Vec::new();
        td2_attributes(&stored, true, None, &mut same);
        assert_eq!(same, stored);
        // OTC and AIGP are copied byte for byte, on either kind of session.
        let known_new = [0xc0, 35, 4, 0, 0, 0xfd, 0xe9, 0x80, 26, 11, 1, 0, 11, 0, 0, 0, 0, 0, 0, 0, 100];
        let with_new = [&stored[..], &known_new[..]].concat();
        let mut out = Vec::new();
        td2_attributes(&with_new, false, None, &mut out);
        assert_eq!(out, [&want[..], &known_new[..]].concat());
        let mut junk = Vec::new();
        td2_attributes(&[0x40, 2, 200, 1], false, None, &mut junk);
        assert_eq!(junk, [0x40, 2, 200, 1]);
    }
}
