//! The pure BMP encoder (RFC 7854, with RFC 8671's O flag and RFC 9069's Loc-RIB peer type):
//! typed values in, one complete BMP message (common header included) out. No sockets, no
//! clocks: the caller passes the timestamp. bgpkit-parser reads BMP but cannot write it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 7854 §4.1: the version this encoder writes.
pub const VERSION: u8 = 3;
/// RFC 7854 §4.1: version (1) + message length (4) + message type (1).
pub const COMMON_HEADER_LEN: usize = 6;
/// RFC 7854 §4.2: the per-peer header's fixed size.
pub const PER_PEER_HEADER_LEN: usize = 42;

/// RFC 7854 §4.1 message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    RouteMonitoring = 0,
    StatisticsReport = 1,
    PeerDown = 2,
    PeerUp = 3,
    Initiation = 4,
    Termination = 5,
    RouteMirroring = 6,
}

/// RFC 7854 §4.2 / RFC 9069 §4.1 peer types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PeerType {
    Global = 0,
    /// RFC 9069 §4.1: the speaker's own Loc-RIB.
    LocRib = 3,
}

/// RFC 7854 §4.2 peer flags (RFC 8671 §4 adds O); for Loc-RIB, RFC 9069 §4.2's F flag.
pub mod flags {
    /// V: the peer address is IPv6.
    pub const V: u8 = 0x80;
    /// L: post-policy Adj-RIB-In (or Adj-RIB-Out).
    pub const L: u8 = 0x40;
    /// A: the encapsulated messages use 2-octet AS_PATHs.
    pub const A: u8 = 0x20;
    /// O: Adj-RIB-Out (RFC 8671 §4).
    pub const O: u8 = 0x10;
    /// F: the Loc-RIB is filtered (RFC 9069 §4.2); only with peer type 3.
    pub const F: u8 = 0x80;
}

/// The per-peer header of every message about one peer (RFC 7854 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHeader {
    pub peer_type: PeerType,
    pub flags: u8,
    pub distinguisher: u64,
    /// The peer's address; zero for Loc-RIB (RFC 9069 §4.1).
    pub address: IpAddr,
    pub asn: u32,
    pub bgp_id: Ipv4Addr,
    /// When the encapsulated message was received (or, for Adj-RIB-Out, sent).
    pub time: SystemTime,
}

impl PeerHeader {
    /// A Global-instance peer (type 0) with the V flag set from its address.
    pub fn global(address: IpAddr, asn: u32, bgp_id: Ipv4Addr, extra_flags: u8, time: SystemTime) -> PeerHeader {
        let v = if address.is_ipv6() { flags::V } else { 0 };
        PeerHeader { peer_type: PeerType::Global, flags: v | extra_flags, distinguisher: 0, address, asn, bgp_id, time }
    }

    /// The Loc-RIB pseudo-peer (RFC 9069 §4.1): the speaker's AS and router id, a zero address.
    pub fn loc_rib(asn: u32, bgp_id: Ipv4Addr, filtered: bool, time: SystemTime) -> PeerHeader {
        PeerHeader {
            peer_type: PeerType::LocRib,
            flags: if filtered { flags::F } else { 0 },
            distinguisher: 0,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            asn,
            bgp_id,
            time,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.peer_type as u8);
        out.push(self.flags);
        out.extend_from_slice(&self.distinguisher.to_be_bytes());
        write_addr16(out, self.address);
        out.extend_from_slice(&self.asn.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let (secs, micros) = split_time(self.time);
        out.extend_from_slice(&secs.to_be_bytes());
        out.extend_from_slice(&micros.to_be_bytes());
    }
}

/// RFC 7854 §4.2: an IPv4 address sits in the last 4 of 16 octets, the rest zero.
fn write_addr16(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            out.extend_from_slice(&[0u8; 12]);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

/// Seconds and microseconds since the epoch; 0 for a time before it ("unavailable").
fn split_time(t: SystemTime) -> (u32, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (u32::try_from(d.as_secs()).unwrap_or(u32::MAX), d.subsec_micros()),
        Err(_) => (0, 0),
    }
}

/// Start a message: the common header with a length patched in by `finish`.
fn begin(ty: MsgType, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(COMMON_HEADER_LEN + capacity);
    out.push(VERSION);
    out.extend_from_slice(&[0u8; 4]);
    out.push(ty as u8);
    out
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    // A message is at most a few BGP messages; its length always fits 32 bits.
    let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    out[1..5].copy_from_slice(&len.to_be_bytes());
    out
}

/// An information TLV (RFC 7854 §4.4): type, length, value; a value longer than 65,535
/// octets is cut (only free text could be that long).
fn write_tlv(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let value = &value[..value.len().min(u16::MAX as usize)];
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// RFC 7854 §4.4 information TLV types of the Initiation message.
pub mod init_tlv {
    pub const STRING: u16 = 0;
    pub const SYS_DESCR: u16 = 1;
    pub const SYS_NAME: u16 = 2;
}

/// RFC 7854 §4.3: the first message on a connection, naming the monitored router.
pub fn initiation(sys_name: &str, sys_descr: &str) -> Vec<u8> {
    let mut out = begin(MsgType::Initiation, 8 + sys_name.len() + sys_descr.len());
    // RFC 7854 §4.3: sysDescr and sysName MUST be sent.
    write_tlv(&mut out, init_tlv::SYS_DESCR, sys_descr.as_bytes());
    write_tlv(&mut out, init_tlv::SYS_NAME, sys_name.as_bytes());
    finish(out)
}

/// RFC 7854 §4.5 termination reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum TerminationReason {
    AdministrativelyClosed = 0,
    Unspecified = 1,
    OutOfResources = 2,
    RedundantConnection = 3,
    PermanentlyClosed = 4,
}

/// RFC 7854 §4.5: the last message before the router closes the connection.
pub fn termination(reason: TerminationReason, text: Option<&str>) -> Vec<u8> {
    let mut out = begin(MsgType::Termination, 16);
    if let Some(t) = text {
        write_tlv(&mut out, 0, t.as_bytes());
    }
    write_tlv(&mut out, 1, &(reason as u16).to_be_bytes());
    finish(out)
}

/// What a Peer Up carries besides the per-peer header (RFC 7854 §4.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerUp<'a> {
    /// The local address of the session; zero for Loc-RIB.
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_port: u16,
    /// The OPEN we sent and the one we received, each a whole BGP message exactly as on the wire.
    pub sent_open: &'a [u8],
    pub received_open: &'a [u8],
    /// RFC 9069 §5.1: the VRF/table name TLV (type 3) of a Loc-RIB Peer Up.
    pub table_name: Option<&'a str>,
}

/// RFC 7854 §4.10 Peer Up Notification.
pub fn peer_up(ph: &PeerHeader, up: &PeerUp<'_>) -> Vec<u8> {
    let body = 20 + up.sent_open.len() + up.received_open.len() + up.table_name.map_or(0, |n| n.len() + 4);
    let mut out = begin(MsgType::PeerUp, PER_PEER_HEADER_LEN + body);
    ph.write(&mut out);
    // RFC 7854 §4.10: the local address is IPv6 exactly when the V flag says the peer's is;
    // a local address of the other family (never seen on one TCP session) is written zero.
    let local = match (ph.address, up.local_addr) {
        (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        (IpAddr::V4(_), IpAddr::V6(v6)) => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)),
        (_, a) => a,
    };
    write_addr16(&mut out, local);
    out.extend_from_slice(&up.local_port.to_be_bytes());
    out.extend_from_slice(&up.remote_port.to_be_bytes());
    out.extend_from_slice(up.sent_open);
    out.extend_from_slice(up.received_open);
    if let Some(name) = up.table_name {
        // RFC 9069 §5.1: 1-255 octets of UTF-8.
        let mut end = name.len().min(255);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        write_tlv(&mut out, 3, &name.as_bytes()[..end]);
    }
    finish(out)
}

/// RFC 7854 §4.9 Peer Down reasons, with what follows each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerDownReason {
    /// 1: we closed the session with this NOTIFICATION (a whole BGP message).
    LocalNotification(Vec<u8>),
    /// 2: we closed it without a NOTIFICATION; the RFC 4271 §8.1 FSM event (0: none defined).
    LocalFsmEvent(u16),
    /// 3: the peer closed it with this NOTIFICATION (a whole BGP message).
    RemoteNotification(Vec<u8>),
    /// 4: the peer closed it without a NOTIFICATION (or the transport failed).
    RemoteNoData,
    /// 5: the peer is no longer configured (or no longer monitored).
    Deconfigured,
    /// 6 (RFC 9069 §5.2): a Loc-RIB instance went away; TLV type 3 names the table.
    LocRibClosed(String),
}

impl PeerDownReason {
    pub fn code(&self) -> u8 {
        match self {
            PeerDownReason::LocalNotification(_) => 1,
            PeerDownReason::LocalFsmEvent(_) => 2,
            PeerDownReason::RemoteNotification(_) => 3,
            PeerDownReason::RemoteNoData => 4,
            PeerDownReason::Deconfigured => 5,
            PeerDownReason::LocRibClosed(_) => 6,
        }
    }
}

/// RFC 7854 §4.9 Peer Down Notification.
pub fn peer_down(ph: &PeerHeader, reason: &PeerDownReason) -> Vec<u8> {
    let mut out = begin(MsgType::PeerDown, PER_PEER_HEADER_LEN + 64);
    ph.write(&mut out);
    out.push(reason.code());
    match reason {
        PeerDownReason::LocalNotification(m) | PeerDownReason::RemoteNotification(m) => out.extend_from_slice(m),
        PeerDownReason::LocalFsmEvent(e) => out.extend_from_slice(&e.to_be_bytes()),
        PeerDownReason::RemoteNoData | PeerDownReason::Deconfigured => {}
        PeerDownReason::LocRibClosed(name) => write_tlv(&mut out, 3, name.as_bytes()),
    }
    finish(out)
}

/// RFC 7854 §4.6: one received (or, with O, sent) BGP UPDATE, a whole BGP message.
pub fn route_monitoring(ph: &PeerHeader, bgp_message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(COMMON_HEADER_LEN + PER_PEER_HEADER_LEN + bgp_message.len());
    route_monitoring_into(&mut out, ph, bgp_message);
    out
}

/// `route_monitoring` appended to `out` (many messages into one buffer, no allocation each).
pub fn route_monitoring_into(out: &mut Vec<u8>, ph: &PeerHeader, bgp_message: &[u8]) {
    let start = out.len();
    let len = COMMON_HEADER_LEN + PER_PEER_HEADER_LEN + bgp_message.len();
    out.push(VERSION);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    out.push(MsgType::RouteMonitoring as u8);
    ph.write(out);
    out.extend_from_slice(bgp_message);
    debug_assert_eq!(out.len() - start, len);
}

/// RFC 7854 §4.7 Route Mirroring contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mirrored<'a> {
    /// TLV type 0: a BGP message exactly as received.
    Message(&'a [u8]),
    /// TLV type 1 code 0: the message that follows could not be parsed.
    Errored(&'a [u8]),
    /// TLV type 1 code 1: messages were lost in between (a gap the station should know of).
    Lost,
}

/// RFC 7854 §4.7 Route Mirroring.
pub fn route_mirroring(ph: &PeerHeader, what: &Mirrored<'_>) -> Vec<u8> {
    let mut out = begin(MsgType::RouteMirroring, PER_PEER_HEADER_LEN + 8 + 4096);
    ph.write(&mut out);
    match what {
        Mirrored::Message(m) => write_tlv(&mut out, 0, m),
        Mirrored::Errored(m) => {
            write_tlv(&mut out, 1, &0u16.to_be_bytes());
            write_tlv(&mut out, 0, m);
        }
        Mirrored::Lost => write_tlv(&mut out, 1, &1u16.to_be_bytes()),
    }
    finish(out)
}

/// RFC 7854 §4.8 statistics types focld keeps.
pub mod stat {
    /// 0: prefixes rejected by inbound policy (32-bit counter).
    pub const REJECTED_BY_POLICY: u16 = 0;
    /// 2: duplicate withdraws (32-bit counter).
    pub const DUPLICATE_WITHDRAWS: u16 = 2;
    /// 7: routes in Adj-RIBs-In (64-bit gauge).
    pub const ADJ_RIB_IN_ROUTES: u16 = 7;
    /// 8: routes in Loc-RIB (64-bit gauge).
    pub const LOC_RIB_ROUTES: u16 = 8;
    /// 9: routes in the per-AFI/SAFI Adj-RIB-In (AFI, SAFI, 64-bit gauge).
    pub const ADJ_RIB_IN_ROUTES_PER_AFI: u16 = 9;
    /// 10: routes in the per-AFI/SAFI Loc-RIB.
    pub const LOC_RIB_ROUTES_PER_AFI: u16 = 10;
    /// 11: UPDATEs treated as withdraw (RFC 7606) (32-bit counter).
    pub const TREATED_AS_WITHDRAW: u16 = 11;
    /// 12: prefixes treated as withdraw (RFC 7606) (32-bit counter).
    pub const PREFIXES_TREATED_AS_WITHDRAW: u16 = 12;
    /// 15 (RFC 8671 §5): routes in the post-policy Adj-RIB-Out, what focld sent the peer
    /// (64-bit gauge).
    pub const ADJ_RIB_OUT_POST_ROUTES: u16 = 15;
    /// 17 (RFC 8671 §5): the same per AFI/SAFI.
    pub const ADJ_RIB_OUT_POST_ROUTES_PER_AFI: u16 = 17;
}

/// One statistic of a Statistics Report (RFC 7854 §4.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    Counter(u16, u32),
    Gauge(u16, u64),
    /// A per-AFI/SAFI gauge: type, AFI, SAFI, value.
    AfiGauge(u16, u16, u8, u64),
}

/// RFC 7854 §4.8 Statistics Report.
pub fn statistics(ph: &PeerHeader, stats: &[Stat]) -> Vec<u8> {
    let mut out = begin(MsgType::StatisticsReport, PER_PEER_HEADER_LEN + 4 + stats.len() * 15);
    ph.write(&mut out);
    out.extend_from_slice(&(stats.len() as u32).to_be_bytes());
    for s in stats {
        match *s {
            Stat::Counter(ty, v) => write_tlv(&mut out, ty, &v.to_be_bytes()),
            Stat::Gauge(ty, v) => write_tlv(&mut out, ty, &v.to_be_bytes()),
            Stat::AfiGauge(ty, afi, safi, v) => {
                let mut value = [0u8; 11];
                value[..2].copy_from_slice(&afi.to_be_bytes());
                value[2] = safi;
                value[3..].copy_from_slice(&v.to_be_bytes());
                write_tlv(&mut out, ty, &value);
            }
        }
    }
    finish(out)
}

/// Where the next message in `buf` ends, if it is whole: a reader of a BMP stream (tests, the
/// benchmark reader) frames with this.
pub fn message_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < COMMON_HEADER_LEN {
        return None;
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    Some(len.max(COMMON_HEADER_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgpkit_parser::models::{AsnLength, BgpMessage};
    use bgpkit_parser::parser::bmp::messages::{
        BmpMessage, BmpMessageBody, BmpMsgType, BmpPeerType, InitiationTlvType, LocalRibPeerFlags, PeerFlags,
        PeerUpTlvType, PerPeerFlags, RouteMirroringInfo, RouteMirroringValue, StatType, StatsData, TerminationTlvValue,
    };
    use bytes::Bytes;
    use std::net::Ipv6Addr;
    use std::time::Duration;

    fn parse(msg: &[u8]) -> BmpMessage {
        let mut b = Bytes::copy_from_slice(msg);
        let m = bgpkit_parser::parse_bmp_msg(&mut b).expect("bgpkit-parser reads the message");
        assert!(b.is_empty(), "the whole message was read");
        assert_eq!(m.common_header.msg_len as usize, msg.len());
        m
    }

    fn t(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros as u64)
    }

    /// An OPEN as focld's wire module writes it.
    fn open(asn: u32, id: Ipv4Addr) -> Vec<u8> {
        use crate::wire::open::{Capabilities, OpenMsg};
        let caps = Capabilities { four_octet_as: Some(asn), ..Default::default() };
        OpenMsg::new(asn, 90, id, caps).encode()
    }

    fn keepalive() -> Vec<u8> {
        crate::wire::frame::keepalive()
    }

    /// A small UPDATE: 10.0.0.0/8 with ORIGIN IGP, AS_PATH [65002], NEXT_HOP 192.0.2.2, 4-octet AS.
    fn update() -> Vec<u8> {
        let mut body = vec![0, 0]; // no withdrawn routes
        let attrs: Vec<u8> = vec![
            0x40, 1, 1, 0, // ORIGIN IGP
            0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, // AS_PATH SEQ [65002]
            0x40, 3, 4, 192, 0, 2, 2, // NEXT_HOP
        ];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        body.extend_from_slice(&[8, 10]);
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(2);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn an_initiation_carries_sys_name_and_sys_descr_that_bgpkit_reads_back() {
        let m = parse(&initiation("collector-1", "focld 0.1.0"));
        assert_eq!(m.common_header.msg_type, BmpMsgType::InitiationMessage);
        let BmpMessageBody::InitiationMessage(i) = m.message_body else { panic!("{m:?}") };
        let got: Vec<_> = i.tlvs.iter().map(|t| (t.info_type, t.info.as_str())).collect();
        assert_eq!(got, [(InitiationTlvType::SysDescr, "focld 0.1.0"), (InitiationTlvType::SysName, "collector-1")]);
    }

    #[test]
    fn a_termination_carries_its_reason() {
        let m = parse(&termination(TerminationReason::AdministrativelyClosed, Some("shutting down")));
        let BmpMessageBody::TerminationMessage(tm) = m.message_body else { panic!() };
        assert_eq!(tm.tlvs[0].info_value, TerminationTlvValue::String("shutting down".into()));
        assert_eq!(tm.tlvs[1].info_value, TerminationTlvValue::Reason(TerminationReason2::AdministrativelyClosed));
    }
    use bgpkit_parser::parser::bmp::messages::TerminationReason as TerminationReason2;

    #[test]
    fn a_peer_up_carries_both_opens_byte_exact_and_the_ports() {
        let sent = open(65001, Ipv4Addr::new(192, 0, 2, 1));
        let recv = open(4_200_000_000, Ipv4Addr::new(192, 0, 2, 2));
        let ph = PeerHeader::global(
            "192.0.2.2".parse().unwrap(),
            4_200_000_000,
            Ipv4Addr::new(192, 0, 2, 2),
            0,
            t(1_700_000_000, 250),
        );
        let up = PeerUp {
            local_addr: "192.0.2.1".parse().unwrap(),
            local_port: 179,
            remote_port: 50123,
            sent_open: &sent,
            received_open: &recv,
            table_name: None,
        };
        let bytes = peer_up(&ph, &up);
        // Byte-exact: the OPENs sit in the message as given.
        let at = COMMON_HEADER_LEN + PER_PEER_HEADER_LEN + 20;
        assert_eq!(&bytes[at..at + sent.len()], &sent[..]);
        assert_eq!(&bytes[at + sent.len()..at + sent.len() + recv.len()], &recv[..]);
        let m = parse(&bytes);
        let p = m.per_peer_header.expect("per-peer header");
        assert_eq!(p.peer_type, BmpPeerType::Global);
        assert_eq!(p.peer_ip, ph.address);
        assert_eq!(p.peer_asn.to_u32(), 4_200_000_000);
        assert_eq!(p.peer_bgp_id, Ipv4Addr::new(192, 0, 2, 2));
        assert!((p.timestamp - 1_700_000_000.000_25).abs() < 1e-6, "{}", p.timestamp);
        let BmpMessageBody::PeerUpNotification(u) = m.message_body else { panic!() };
        assert_eq!((u.local_addr, u.local_port, u.remote_port), (up.local_addr, 179, 50123));
        let BgpMessage::Open(o) = u.received_open else { panic!() };
        assert_eq!(o.bgp_identifier, Ipv4Addr::new(192, 0, 2, 2));
    }

    #[test]
    fn a_loc_rib_peer_up_has_peer_type_3_a_zero_address_and_the_table_name() {
        let sent = open(65001, Ipv4Addr::new(192, 0, 2, 1));
        let ph = PeerHeader::loc_rib(65001, Ipv4Addr::new(192, 0, 2, 1), true, t(5, 0));
        let up = PeerUp {
            local_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            local_port: 0,
            remote_port: 0,
            sent_open: &sent,
            received_open: &sent,
            table_name: Some("global"),
        };
        let m = parse(&peer_up(&ph, &up));
        let p = m.per_peer_header.expect("per-peer header");
        assert_eq!(p.peer_type, BmpPeerType::LocalRib);
        assert_eq!(p.peer_flags, PerPeerFlags::LocalRibPeerFlags(LocalRibPeerFlags::IS_FILTERED));
        let BmpMessageBody::PeerUpNotification(u) = m.message_body else { panic!() };
        assert_eq!(u.tlvs[0].info_type, PeerUpTlvType::VrTableName);
        assert_eq!(u.tlvs[0].info_value, "global");
    }

    #[test]
    fn peer_header_flags_say_ipv6_post_policy_two_octet_and_adj_rib_out() {
        let ph = PeerHeader::global(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
            65002,
            Ipv4Addr::new(192, 0, 2, 2),
            flags::L | flags::A | flags::O,
            t(1, 2),
        );
        let m = parse(&route_monitoring(&ph, &keepalive()));
        let p = m.per_peer_header.expect("per-peer header");
        let PerPeerFlags::PeerFlags(f) = p.peer_flags else { panic!() };
        assert!(f.contains(PeerFlags::ADDRESS_FAMILY_IPV6 | PeerFlags::IS_POST_POLICY | PeerFlags::AS_SIZE_16BIT));
        assert!(f.is_adj_rib_out());
        assert_eq!(p.peer_ip, ph.address);
    }

    #[test]
    fn route_monitoring_carries_the_update_as_given() {
        let u = update();
        let ph = PeerHeader::global("192.0.2.2".parse().unwrap(), 65002, Ipv4Addr::new(192, 0, 2, 2), 0, t(9, 9));
        let bytes = route_monitoring(&ph, &u);
        assert_eq!(&bytes[COMMON_HEADER_LEN + PER_PEER_HEADER_LEN..], &u[..]);
        let m = parse(&bytes);
        let BmpMessageBody::RouteMonitoring(r) = m.message_body else { panic!() };
        let BgpMessage::Update(up) = r.bgp_message else { panic!() };
        assert_eq!(up.announced_prefixes.len(), 1);
        assert_eq!(up.announced_prefixes[0].prefix.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn route_monitoring_appended_to_a_buffer_is_the_same_message() {
        let ph = PeerHeader::global("192.0.2.2".parse().unwrap(), 65002, Ipv4Addr::new(192, 0, 2, 2), 0, t(9, 9));
        let mut buf = vec![1, 2, 3];
        route_monitoring_into(&mut buf, &ph, &update());
        assert_eq!(&buf[3..], &route_monitoring(&ph, &update())[..]);
        parse(&buf[3..]);
    }

    #[test]
    fn peer_down_reasons_have_their_codes_and_data() {
        let ph = PeerHeader::global("192.0.2.2".parse().unwrap(), 65002, Ipv4Addr::new(192, 0, 2, 2), 0, t(9, 9));
        let notification = crate::wire::notify::Notification { code: 6, subcode: 2, data: Vec::new() }.encode();
        let cases = [
            (
                PeerDownReason::LocalNotification(notification.clone()),
                PeerDownReason2::LocalSystemClosedNotificationPduFollows,
                Some(notification.clone()),
            ),
            (PeerDownReason::LocalFsmEvent(10), PeerDownReason2::LocalSystemClosedFsmEvenFollows, Some(vec![0, 10])),
            (
                PeerDownReason::RemoteNotification(notification.clone()),
                PeerDownReason2::RemoteSystemClosedNotificationPduFollows,
                Some(notification),
            ),
            (PeerDownReason::RemoteNoData, PeerDownReason2::RemoteSystemsClosedNoData, None),
            (PeerDownReason::Deconfigured, PeerDownReason2::PeerDeConfigured, None),
        ];
        for (reason, code, data) in cases {
            let m = parse(&peer_down(&ph, &reason));
            let BmpMessageBody::PeerDownNotification(d) = m.message_body else { panic!() };
            assert_eq!((d.reason, d.data), (code, data), "{reason:?}");
        }
    }
    use bgpkit_parser::parser::bmp::messages::PeerDownReason as PeerDownReason2;

    #[test]
    fn statistics_counters_and_gauges_read_back() {
        let ph = PeerHeader::global("192.0.2.2".parse().unwrap(), 65002, Ipv4Addr::new(192, 0, 2, 2), 0, t(9, 9));
        let stats = [
            Stat::Counter(stat::DUPLICATE_WITHDRAWS, 3),
            Stat::Gauge(stat::ADJ_RIB_IN_ROUTES, 1_000_000),
            Stat::AfiGauge(stat::ADJ_RIB_IN_ROUTES_PER_AFI, 2, 1, 200_000),
        ];
        let m = parse(&statistics(&ph, &stats));
        let BmpMessageBody::StatsReport(s) = m.message_body else { panic!() };
        assert_eq!(s.stats_count, 3);
        assert_eq!(s.counters[0].stat_data, StatsData::Counter(3));
        assert_eq!(s.counters[1].stat_type, StatType::RoutesInAdjRibsIn);
        assert_eq!(s.counters[1].stat_data, StatsData::Gauge(1_000_000));
        assert_eq!(s.counters[2].stat_data, StatsData::AfiSafiGauge(2, 1, 200_000));
    }

    #[test]
    fn route_mirroring_carries_the_message_or_says_messages_were_lost() {
        let ph = PeerHeader::global("192.0.2.2".parse().unwrap(), 65002, Ipv4Addr::new(192, 0, 2, 2), 0, t(9, 9));
        let ka = keepalive();
        let m = parse(&route_mirroring(&ph, &Mirrored::Message(&ka)));
        let BmpMessageBody::RouteMirroring(r) = m.message_body else { panic!() };
        assert_eq!(r.tlvs[0].value, RouteMirroringValue::BgpMessage(BgpMessage::KeepAlive));
        let m = parse(&route_mirroring(&ph, &Mirrored::Lost));
        let BmpMessageBody::RouteMirroring(r) = m.message_body else { panic!() };
        assert_eq!(r.tlvs[0].value, RouteMirroringValue::Information(RouteMirroringInfo::MessageLost));
    }

    /// xorshift64*: a fixed sequence, so a failure repeats.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_headers_and_messages_survive_a_round_trip_through_bgpkit() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in 0..5_000 {
            let v6 = rng.below(2) == 1;
            let address = if v6 {
                IpAddr::V6(Ipv6Addr::from(((rng.next() as u128) << 64) | rng.next() as u128))
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            };
            let two_octet = rng.below(2) == 1;
            let asn = if two_octet { rng.below(65_536) as u32 } else { rng.next() as u32 };
            let extra = (rng.below(2) as u8 * flags::L)
                | (rng.below(2) as u8 * flags::O)
                | if two_octet { flags::A } else { 0 };
            let time = t(rng.below(u32::MAX as u64), rng.below(1_000_000) as u32);
            let ph = PeerHeader::global(address, asn, Ipv4Addr::from(rng.next() as u32), extra, time);
            let (msg, kind) = match rng.below(4) {
                0 => (route_monitoring(&ph, &update()), BmpMsgType::RouteMonitoring),
                1 => {
                    let n = rng.below(5) as usize;
                    let stats: Vec<Stat> = (0..n)
                        .map(|_| match rng.below(3) {
                            0 => Stat::Counter(rng.below(7) as u16, rng.next() as u32),
                            1 => Stat::Gauge(7, rng.next()),
                            _ => Stat::AfiGauge(9, 1 + rng.below(2) as u16, 1, rng.next()),
                        })
                        .collect();
                    (statistics(&ph, &stats), BmpMsgType::StatisticsReport)
                }
                2 => (
                    peer_down(&ph, &PeerDownReason::LocalFsmEvent(rng.below(30) as u16)),
                    BmpMsgType::PeerDownNotification,
                ),
                _ => (route_mirroring(&ph, &Mirrored::Message(&keepalive())), BmpMsgType::RouteMirroringMessage),
            };
            let m = parse(&msg);
            assert_eq!(m.common_header.msg_type, kind, "case {i}");
            let p = m.per_peer_header.expect("per-peer header");
            assert_eq!(p.peer_ip, address, "case {i}");
            assert_eq!(p.peer_asn.to_u32(), asn, "case {i}");
            assert_eq!(p.peer_bgp_id, ph.bgp_id, "case {i}");
            let (s, us) = split_time(time);
            assert!((p.timestamp - (s as f64 + us as f64 / 1e6)).abs() < 1e-5, "case {i}");
            let PerPeerFlags::PeerFlags(f) = p.peer_flags else { panic!() };
            assert_eq!(f.bits(), ph.flags, "case {i}");
            assert_eq!(p.asn_length(), if two_octet { AsnLength::Bits16 } else { AsnLength::Bits32 });
            assert_eq!(message_len(&msg), Some(msg.len()));
        }
    }
}
