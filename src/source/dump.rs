//! Reading a TABLE_DUMP_V2 file (RFC 6396 §4.3) into a `SourceTable`: one RIB peer's routes
//! (or the first route of every prefix), with `prefix_shift` and `limit` applied. Pure code
//! over any `Read`; plain, gzip and bzip2 files are told apart by their first bytes.
//!
//! The records are framed here (12-byte header, RFC 6396 §2) rather than by bgpkit-parser, so
//! a truncated or foreign file is an error that says where, and the attributes stay the raw
//! bytes that are sent on.

use crate::config::SourceConfig;
use crate::msg::SourceTable;
use crate::prefix::{Family, Prefix};
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 6396 §4: MRT type TABLE_DUMP_V2 and the subtypes read (§4.3).
const TABLE_DUMP_V2: u16 = 13;
const PEER_INDEX_TABLE: u16 = 1;
const RIB_IPV4_UNICAST: u16 = 2;
const RIB_IPV6_UNICAST: u16 = 4;
/// A record longer than this is taken for a sign of a file that is not MRT.
const MAX_RECORD_LEN: usize = 16 << 20;

/// The whole file behind `raw`, decompressed by its magic bytes (gzip 1f 8b, bzip2 "BZh").
pub fn open(mut raw: impl Read + 'static) -> std::io::Result<Box<dyn Read>> {
    let mut magic = [0u8; 3];
    let mut got = 0;
    while got < 3 {
        match raw.read(&mut magic[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let head = std::io::Cursor::new(magic[..got].to_vec()).chain(raw);
    Ok(match &magic[..got] {
        [0x1f, 0x8b, ..] => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(head))),
        [b'B', b'Z', b'h'] => Box::new(BufReader::new(bzip2::read::MultiBzDecoder::new(head))),
        _ => Box::new(BufReader::new(head)),
    })
}

/// `prefix_shift`: `shift` added to the first octet of an IPv4 prefix or the first 16 bits of
/// an IPv6 one. `None` when the result would not be unicast (IPv4 0/8, 127/8, 224/3 and
/// above; IPv6 outside 2000::/3) or the prefix is shorter than what is shifted (/8, /16).
pub fn shift_prefix(p: Prefix, shift: i16) -> Option<Prefix> {
    if shift == 0 {
        return Some(p);
    }
    match p.addr() {
        IpAddr::V4(a) => {
            let first = i32::from(a.octets()[0]) + i32::from(shift);
            if p.len() < 8 || first <= 0 || first == 127 || first >= 224 {
                return None;
            }
            let mut o = a.octets();
            o[0] = first as u8;
            Prefix::new(IpAddr::V4(Ipv4Addr::from(o)), p.len()).ok()
        }
        IpAddr::V6(a) => {
            let mut s = a.segments();
            let first = i32::from(s[0]) + i32::from(shift);
            if p.len() < 16 || !(0x2000..0x4000).contains(&first) {
                return None;
            }
            s[0] = first as u16;
            Prefix::new(IpAddr::V6(Ipv6Addr::from(s)), p.len()).ok()
        }
    }
}

/// One peer of the PEER_INDEX_TABLE (RFC 6396 §4.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IndexPeer {
    addr: IpAddr,
    asn: u32,
}

fn take<'a>(b: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err(format!("{what} is cut short"));
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

fn u16_of(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn u32_of(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn peer_index(mut b: &[u8]) -> Result<Vec<IndexPeer>, String> {
    let b = &mut b;
    take(b, 4, "the collector BGP ID")?;
    let name_len = usize::from(u16_of(take(b, 2, "the view name length")?));
    take(b, name_len, "the view name")?;
    let count = u16_of(take(b, 2, "the peer count")?);
    let mut peers = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        let what = format!("peer entry {i}");
        let ty = take(b, 1, &what)?[0];
        take(b, 4, &what)?;
        let addr = if ty & 1 != 0 {
            let o: [u8; 16] = take(b, 16, &what)?.try_into().map_err(|_| format!("{what} is cut short"))?;
            IpAddr::V6(Ipv6Addr::from(o))
        } else {
            let o: [u8; 4] = take(b, 4, &what)?.try_into().map_err(|_| format!("{what} is cut short"))?;
            IpAddr::V4(Ipv4Addr::from(o))
        };
        let asn = if ty & 2 != 0 { u32_of(take(b, 4, &what)?) } else { u32::from(u16_of(take(b, 2, &what)?)) };
        peers.push(IndexPeer { addr, asn });
    }
    Ok(peers)
}

/// Read every record of `input` and keep the routes `cfg` asks for.
pub fn read_table(mut input: impl Read, cfg: &SourceConfig) -> Result<SourceTable, String> {
    let mut t = SourceTable::default();
    let mut index: Option<Vec<IndexPeer>> = None;
    // Indexes of the PEER_INDEX_TABLE entries with `cfg.peer`'s address.
    let mut wanted: Vec<u16> = Vec::new();
    let mut interned: HashMap<Vec<u8>, u32> = HashMap::new();
    let limit = cfg.limit.map_or(usize::MAX, |l| l as usize);
    let mut kept = 0usize;
    let mut header = [0u8; 12];
    let mut body = Vec::new();
    for n in 0u64.. {
        // RFC 6396 §2: timestamp, type, subtype, length.
        match read_full(&mut input, &mut header) {
            Ok(0) => break,
            Ok(12) => {}
            Ok(got) => return Err(format!("record {n}: the file ends {got} bytes into a record header")),
            Err(e) => return Err(format!("record {n}: {e}")),
        }
        let (ty, sub, len) = (u16_of(&header[4..]), u16_of(&header[6..]), u32_of(&header[8..]) as usize);
        if len > MAX_RECORD_LEN {
            return Err(format!("record {n}: a length of {len} bytes; this is not an MRT file"));
        }
        body.resize(len, 0);
        match read_full(&mut input, &mut body) {
            Ok(got) if got == len => {}
            Ok(got) => return Err(format!("record {n}: the file ends after {got} of its {len} bytes")),
            Err(e) => return Err(format!("record {n}: {e}")),
        }
        if n == 0 && ty != TABLE_DUMP_V2 {
            return Err(format!("the first record is of MRT type {ty}, not TABLE_DUMP_V2 (13); not a RIB dump"));
        }
        let family = match (ty, sub) {
            (TABLE_DUMP_V2, PEER_INDEX_TABLE) => {
                let peers = peer_index(&body).map_err(|e| format!("record {n} (PEER_INDEX_TABLE): {e}"))?;
                if let Some(want) = cfg.peer {
                    wanted = (0..peers.len()).filter(|&i| peers[i].addr == want).map(|i| i as u16).collect();
                    let Some(&first) = wanted.first() else {
                        let mut known: Vec<String> = peers.iter().map(|p| p.addr.to_string()).collect();
                        known.dedup();
                        return Err(format!(
                            "peer {want} is not in the file's PEER_INDEX_TABLE (it has {})",
                            known.join(", ")
                        ));
                    };
                    t.peer = Some((want, peers[usize::from(first)].asn));
                }
                index = Some(peers);
                continue;
            }
            (TABLE_DUMP_V2, RIB_IPV4_UNICAST) => Family::Ipv4Unicast,
            (TABLE_DUMP_V2, RIB_IPV6_UNICAST) => Family::Ipv6Unicast,
            _ => {
                t.other_records += 1;
                continue;
            }
        };
        if index.is_none() {
            return Err(format!("record {n}: a RIB record before the PEER_INDEX_TABLE"));
        }
        let Some((prefix, entry)) = rib_entry(&body, family, cfg.peer.is_some().then_some(&wanted[..]))
            .map_err(|e| format!("record {n} ({}): {e}", family.name()))?
        else {
            continue; // the chosen peer has no route for this prefix
        };
        let Some(prefix) = shift_prefix(prefix, cfg.prefix_shift) else {
            t.skipped_shift += 1;
            continue;
        };
        if kept >= limit {
            t.skipped_limit += 1;
            continue;
        }
        // The attributes must at least be split into whole attributes with ORIGIN and AS_PATH;
        // the rewrite checks the rest per session.
        if !attrs_usable(entry) {
            t.skipped_bad += 1;
            continue;
        }
        // Most routes share a block seen before: look it up without copying it.
        let id = match interned.get(entry) {
            Some(&id) => id,
            None => {
                let id = interned.len() as u32;
                interned.insert(entry.to_vec(), id);
                id
            }
        };
        t.routes[family.index()].push((prefix, id));
        kept += 1;
    }
    if index.is_none() {
        return Err("no PEER_INDEX_TABLE: not a TABLE_DUMP_V2 RIB dump".into());
    }
    let mut attrs = vec![Vec::new(); interned.len()];
    for (a, i) in interned {
        attrs[i as usize] = a;
    }
    t.attrs = attrs;
    for r in &mut t.routes {
        r.sort_unstable_by_key(|&(p, a)| (a, p));
        // Two dumped prefixes shifted onto one: keep one route.
        r.dedup_by_key(|(p, _)| *p);
    }
    Ok(t)
}

/// Fill `buf` as far as the input goes; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// RFC 6396 §4.3.2: sequence number, prefix, then entries (peer index, originated time,
/// attributes). The attributes of the first entry of a wanted peer (or of the first entry).
fn rib_entry<'a>(
    mut b: &'a [u8],
    family: Family,
    wanted: Option<&[u16]>,
) -> Result<Option<(Prefix, &'a [u8])>, String> {
    let b = &mut b;
    take(b, 4, "the sequence number")?;
    let len = take(b, 1, "the prefix length")?[0];
    let max = if family == Family::Ipv4Unicast { 32 } else { 128 };
    if len > max {
        return Err(format!("a prefix length of {len}"));
    }
    let bytes = take(b, usize::from(len).div_ceil(8), "the prefix")?;
    let addr = match family {
        Family::Ipv4Unicast => {
            let mut o = [0u8; 4];
            o[..bytes.len()].copy_from_slice(bytes);
            IpAddr::V4(Ipv4Addr::from(o))
        }
        Family::Ipv6Unicast => {
            let mut o = [0u8; 16];
            o[..bytes.len()].copy_from_slice(bytes);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    };
    let prefix = Prefix::new_truncated(addr, len).map_err(|e| e.to_string())?;
    let count = u16_of(take(b, 2, "the entry count")?);
    for i in 0..count {
        let what = format!("entry {i} of {prefix}");
        let peer = u16_of(take(b, 2, &what)?);
        take(b, 4, &what)?;
        let alen = usize::from(u16_of(take(b, 2, &what)?));
        let attrs = take(b, alen, &what)?;
        if wanted.is_none_or(|w| w.contains(&peer)) {
            return Ok(Some((prefix, attrs)));
        }
    }
    Ok(None)
}

fn attrs_usable(attrs: &[u8]) -> bool {
    use crate::wire::update::attr;
    let (list, overrun) = crate::wire::attr::split_attrs(attrs);
    overrun.is_none()
        && list.iter().any(|a| a.type_code == attr::ORIGIN)
        && list.iter().any(|a| {
            a.type_code == attr::AS_PATH
                && crate::wire::aspath::check(a.value, crate::wire::aspath::AsWidth::Four).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mrt::record::{peer_index_table, rib_entry_record, PeerEntry, RibEntry};
    use crate::wire::aspath::{encode_segment, AsWidth, AS_SEQUENCE};
    use crate::wire::attr::push_attr;
    use crate::wire::update::{attr, flag};

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn attrs(path: &[u32]) -> Vec<u8> {
        let mut seg = Vec::new();
        encode_segment(&mut seg, AS_SEQUENCE, path, AsWidth::Four);
        let mut a = Vec::new();
        push_attr(&mut a, flag::TRANSITIVE, attr::ORIGIN, &[0]);
        push_attr(&mut a, flag::TRANSITIVE, attr::AS_PATH, &seg);
        a
    }

    /// Two RIB peers; 10.0.0.0/8 .. 10.0.4.0/24 from both (peer 0 first), 2001:db8::/32 from
    /// peer 1 only, 0.0.0.0/0 from peer 0 only.
    fn dump() -> Vec<u8> {
        let mut out = Vec::new();
        let peers = [
            PeerEntry { bgp_id: "1.1.1.1".parse().unwrap(), ip: "192.0.2.10".parse().unwrap(), asn: 64500 },
            PeerEntry { bgp_id: "2.2.2.2".parse().unwrap(), ip: "192.0.2.20".parse().unwrap(), asn: 4_200_000_000 },
        ];
        peer_index_table(0, "9.9.9.9".parse().unwrap(), "", &peers, &mut out);
        let (a0, a1) = (attrs(&[64500, 1]), attrs(&[4_200_000_000, 2]));
        fn e(i: u16, a: &[u8]) -> RibEntry<'_> {
            RibEntry { peer_index: i, originated: 0, path_id: None, attrs: a }
        }
        rib_entry_record(0, 0, &p("0.0.0.0/0"), &[e(0, &a0)], &mut out);
        for (i, net) in ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24", "10.0.4.0/24"].iter().enumerate() {
            let (a0, a1) = (a0.clone(), a1.clone());
            rib_entry_record(0, i as u32 + 1, &p(net), &[e(0, &a0), e(1, &a1)], &mut out);
        }
        rib_entry_record(0, 9, &p("2001:db8::/32"), &[e(1, &a1)], &mut out);
        out
    }

    fn cfg(peer: Option<&str>, shift: i16, limit: Option<u32>) -> SourceConfig {
        SourceConfig {
            name: "t".into(),
            kind: "mrt".into(),
            file: "t.mrt".into(),
            peer: peer.map(|a| a.parse().unwrap()),
            prefix_shift: shift,
            limit,
            to: vec![],
        }
    }

    fn prefixes(t: &SourceTable) -> Vec<String> {
        let mut v: Vec<String> = t.routes.iter().flatten().map(|(p, _)| p.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_chosen_rib_peer_gives_its_routes_only_with_its_attributes() {
        let t = read_table(&dump()[..], &cfg(Some("192.0.2.20"), 0, None)).unwrap();
        assert_eq!(t.peer, Some(("192.0.2.20".parse().unwrap(), 4_200_000_000)));
        assert_eq!(t.routes[0].len(), 5);
        assert_eq!(prefixes(&t).last().map(String::as_str), Some("2001:db8::/32"));
        assert_eq!(t.attrs, vec![attrs(&[4_200_000_000, 2])], "one attribute block shared by every route");
    }

    #[test]
    fn without_a_peer_the_first_route_of_every_prefix_is_taken() {
        let t = read_table(&dump()[..], &cfg(None, 0, None)).unwrap();
        assert_eq!(t.len(), 7);
        let first = t.routes[0].iter().find(|(q, _)| *q == p("10.0.0.0/24")).unwrap().1;
        assert_eq!(t.attrs[first as usize], attrs(&[64500, 1]));
    }

    #[test]
    fn a_peer_that_is_not_in_the_file_is_an_error_naming_the_peers_there() {
        let e = read_table(&dump()[..], &cfg(Some("192.0.2.99"), 0, None)).unwrap_err();
        assert_eq!(e, "peer 192.0.2.99 is not in the file's PEER_INDEX_TABLE (it has 192.0.2.10, 192.0.2.20)");
    }

    #[test]
    fn limit_keeps_the_first_prefixes_of_the_file_and_counts_the_rest() {
        let t = read_table(&dump()[..], &cfg(Some("192.0.2.10"), 0, Some(3))).unwrap();
        assert_eq!(prefixes(&t), vec!["0.0.0.0/0", "10.0.0.0/24", "10.0.1.0/24"]);
        assert_eq!(t.skipped_limit, 3);
    }

    #[test]
    fn prefix_shift_moves_every_prefix_and_skips_what_would_leave_unicast_space() {
        let t = read_table(&dump()[..], &cfg(None, 1, None)).unwrap();
        assert_eq!(
            prefixes(&t),
            vec!["11.0.0.0/24", "11.0.1.0/24", "11.0.2.0/24", "11.0.3.0/24", "11.0.4.0/24", "2002:db8::/32"]
        );
        assert_eq!(t.skipped_shift, 1, "0.0.0.0/0 is shorter than /8");
        assert_eq!(shift_prefix(p("126.1.0.0/16"), 1), None, "127/8 is loopback");
        assert_eq!(shift_prefix(p("223.0.0.0/8"), 1), None, "224/4 is multicast");
        assert_eq!(shift_prefix(p("1.0.0.0/8"), -1), None, "0/8 is this network");
        assert_eq!(shift_prefix(p("3fff::/16"), 1), None, "outside 2000::/3");
        assert_eq!(shift_prefix(p("193.0.0.0/21"), -2), Some(p("191.0.0.0/21")));
        assert_eq!(shift_prefix(p("0.0.0.0/0"), 0), Some(p("0.0.0.0/0")), "no shift, nothing skipped");
    }

    #[test]
    fn broken_and_foreign_files_are_errors_that_say_where() {
        let d = dump();
        let e = read_table(&d[..d.len() - 3], &cfg(None, 0, None)).unwrap_err();
        assert!(e.starts_with("record 7: the file ends after"), "{e}");
        let e = read_table(&b"hello, this is a text file\n"[..], &cfg(None, 0, None)).unwrap_err();
        assert!(e.contains("not an MRT file") || e.contains("not TABLE_DUMP_V2"), "{e}");
        assert_eq!(
            read_table(&b""[..], &cfg(None, 0, None)).unwrap_err(),
            "no PEER_INDEX_TABLE: not a TABLE_DUMP_V2 RIB dump"
        );
    }

    #[test]
    fn gzip_and_bzip2_files_are_recognized_by_their_first_bytes() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&dump()).unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&dump()).unwrap();
        let bz = bz.finish().unwrap();
        for data in [gz, bz, dump()] {
            let t = read_table(open(std::io::Cursor::new(data)).unwrap(), &cfg(None, 0, None)).unwrap();
            assert_eq!(t.len(), 7);
        }
    }
}
