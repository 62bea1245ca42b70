//! What a manifest says about the records of a file: how many, the first and last timestamps
//! and the peers with records in it, read back from the record bytes themselves.
//!
//! Fed by the MRT writer (each record as it is written) and by salvage (the records of a file
//! left by a crash); emits the counts of a `Manifest`. Peers come from the BGP4MP peer header
//! (RFC 6396 §4.4) of update files, and from the TABLE_DUMP_V2 peer index (§4.3.1) joined with
//! the peer index of each RIB entry (§4.3.2, §4.3.4) of snapshots. Records it cannot read are
//! counted, never fatal: the bytes may come from a damaged file.

use super::record::mrt_type;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Counts over a run of records.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub records: u64,
    pub first: Option<u32>,
    pub last: Option<u32>,
    peers: BTreeSet<IpAddr>,
    /// The PEER_INDEX_TABLE of a snapshot, in index order.
    peer_index: Vec<IpAddr>,
    /// Peer indexes seen in RIB entries before or without a peer index table.
    unresolved: BTreeSet<u16>,
    /// Graceful restart events while the file was written (update files).
    pub graceful: Vec<crate::msg::GracefulEvent>,
    /// Stale routes per peer (RIB snapshots).
    pub stale: Vec<crate::msg::StaleCount>,
}

impl Tally {
    /// Count one complete record (12-byte common header included, RFC 6396 §2).
    pub fn add(&mut self, record: &[u8]) {
        let Some(h) = record.get(..12) else { return };
        let ts = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        self.records += 1;
        self.first.get_or_insert(ts);
        self.last = Some(ts);
        let ty = u16::from_be_bytes([h[4], h[5]]);
        let sub = u16::from_be_bytes([h[6], h[7]]);
        match ty {
            // BGP4MP_ET: 4 more octets of microseconds before the body (RFC 6396 §3).
            mrt_type::BGP4MP => self.bgp4mp(sub, record.get(12..)),
            mrt_type::BGP4MP_ET => self.bgp4mp(sub, record.get(16..)),
            mrt_type::TABLE_DUMP_V2 => self.table_dump_v2(sub, record.get(12..)),
            _ => {}
        }
    }

    /// The peers seen, as sorted address strings.
    pub fn peers(&self) -> Vec<String> {
        let mut all = self.peers.clone();
        all.extend(self.unresolved.iter().filter_map(|i| self.peer_index.get(usize::from(*i)).copied()));
        all.iter().map(ToString::to_string).collect()
    }

    /// Peer AS, local AS, interface index, AFI, peer IP (RFC 6396 §4.4.1-§4.4.4).
    fn bgp4mp(&mut self, subtype: u16, body: Option<&[u8]>) {
        let Some(body) = body else { return };
        let as_len = match subtype {
            0 | 1 => 2,
            4..=7 => 4,
            _ => return,
        };
        let at = 2 * as_len + 2;
        if let Some(ip) = read_ip(body, at) {
            self.peers.insert(ip);
        }
    }

    fn table_dump_v2(&mut self, subtype: u16, body: Option<&[u8]>) {
        let Some(body) = body else { return };
        match subtype {
            mrt_type::PEER_INDEX_TABLE => {
                if let Some(index) = peer_index_table(body) {
                    self.peer_index = index;
                }
            }
            // RIB_IPV4/IPV6 UNICAST/MULTICAST (§4.3.2) and their ADD-PATH forms (RFC 8050 §4).
            2..=5 | 8..=11 => {
                let add_path = subtype >= 8;
                for i in rib_entry_peer_indexes(body, add_path) {
                    match self.peer_index.get(usize::from(i)) {
                        Some(ip) => {
                            self.peers.insert(*ip);
                        }
                        None => {
                            self.unresolved.insert(i);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// An AFI (1 IPv4, 2 IPv6) at `at` followed by an address of that family.
fn read_ip(body: &[u8], at: usize) -> Option<IpAddr> {
    let afi = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
    match afi {
        1 => Some(IpAddr::from(<[u8; 4]>::try_from(body.get(at + 2..at + 6)?).ok()?)),
        2 => Some(IpAddr::from(<[u8; 16]>::try_from(body.get(at + 2..at + 18)?).ok()?)),
        _ => None,
    }
}

/// The peer addresses of a PEER_INDEX_TABLE body (RFC 6396 §4.3.1): collector id, view name,
/// peer count, then per peer a type octet (bit 0: IPv6, bit 1: 4-octet AS), BGP id, address, AS.
fn peer_index_table(body: &[u8]) -> Option<Vec<IpAddr>> {
    let name_len = usize::from(u16::from_be_bytes([*body.get(4)?, *body.get(5)?]));
    let mut at = 6 + name_len;
    let count = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
    at += 2;
    let mut peers = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let ty = *body.get(at)?;
        let ip_len = if ty & 1 == 1 { 16 } else { 4 };
        let as_len = if ty & 2 == 2 { 4 } else { 2 };
        let ip = body.get(at + 5..at + 5 + ip_len)?;
        peers.push(if ip_len == 4 {
            IpAddr::from(<[u8; 4]>::try_from(ip).ok()?)
        } else {
            IpAddr::from(<[u8; 16]>::try_from(ip).ok()?)
        });
        at += 5 + ip_len + as_len;
    }
    Some(peers)
}

/// The peer index of every entry of a RIB record body (RFC 6396 §4.3.2): sequence number,
/// prefix length and prefix, entry count, then entries of peer index, originated time,
/// [path id (RFC 8050)], attribute length and attributes. Stops at the first short entry.
fn rib_entry_peer_indexes(body: &[u8], add_path: bool) -> Vec<u16> {
    let mut out = Vec::new();
    let Some(&bits) = body.get(4) else { return out };
    let mut at = 5 + usize::from(bits).div_ceil(8);
    let Some(count) = body.get(at..at + 2).map(|c| u16::from_be_bytes([c[0], c[1]])) else { return out };
    at += 2;
    let fixed = if add_path { 12 } else { 8 };
    for _ in 0..count {
        let Some(e) = body.get(at..at + fixed) else { break };
        out.push(u16::from_be_bytes([e[0], e[1]]));
        let attr_len = usize::from(u16::from_be_bytes([e[fixed - 2], e[fixed - 1]]));
        at += fixed + attr_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mrt::record::{self, PeerEntry, Precision, RibEntry};
    use crate::msg::SessionAddrs;
    use std::net::Ipv4Addr;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn update_records_name_their_peers_and_times() {
        let mut t = Tally::default();
        for (i, peer) in ["192.0.2.2", "2001:db8::2", "192.0.2.2"].iter().enumerate() {
            let peer_ip: IpAddr = peer.parse().unwrap();
            let s = SessionAddrs { peer_as: 65010, local_as: 65001, peer_ip, local_ip: peer_ip };
            let mut r = Vec::new();
            let ts = UNIX_EPOCH + Duration::from_secs(1000 + i as u64);
            record::bgp4mp_message(ts, Precision::Microsecond, (true, false), &s, &[0xff; 19], &mut r);
            t.add(&r);
        }
        assert_eq!((t.records, t.first, t.last), (3, Some(1000), Some(1002)));
        assert_eq!(t.peers(), vec!["192.0.2.2".to_string(), "2001:db8::2".to_string()]);
    }

    #[test]
    fn a_snapshot_lists_the_peers_with_routes_in_it() {
        let entry = |ip: &str| PeerEntry { bgp_id: Ipv4Addr::new(1, 1, 1, 1), ip: ip.parse().unwrap(), asn: 65010 };
        let mut r = Vec::new();
        record::peer_index_table(
            5,
            Ipv4Addr::new(192, 0, 2, 1),
            "focld",
            &[entry("192.0.2.7"), entry("2001:db8::9"), entry("192.0.2.8")],
            &mut r,
        );
        let prefix = "10.0.0.0/24".parse().unwrap();
        let attrs = [0x40, 1, 1, 0];
        let entries = [
            RibEntry { peer_index: 2, originated: 1, path_id: None, attrs: &attrs },
            RibEntry { peer_index: 1, originated: 1, path_id: None, attrs: &attrs },
        ];
        record::rib_entry_record(5, 0, &prefix, &entries, &mut r);
        let mut t = Tally::default();
        let first_len = 12 + u32::from_be_bytes([r[8], r[9], r[10], r[11]]) as usize;
        t.add(&r[..first_len]);
        t.add(&r[first_len..]);
        assert_eq!(t.records, 2);
        // 192.0.2.7 is in the peer index but has no route: not in the snapshot's peers.
        assert_eq!(t.peers(), vec!["192.0.2.8".to_string(), "2001:db8::9".to_string()]);
    }

    #[test]
    fn short_or_foreign_records_are_counted_without_peers() {
        let mut t = Tally::default();
        t.add(&[0, 0, 0, 9, 0, 13, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        t.add(&[0, 0, 0, 9, 0, 16, 0, 4, 0, 0, 0, 0]);
        t.add(&[1, 2, 3]);
        assert_eq!((t.records, t.peers().len()), (2, 0));
    }
}
