//! bench-sender: opens N BGP sessions to a receiver and sends each a full table taken from a
//! real TABLE_DUMP_V2 RIB file, pre-encoded, as fast as the receiver reads, then End-of-RIB;
//! keeps the sessions up with KEEPALIVEs until killed. Not the system under test: it does no
//! route processing while sending.
//!
//! usage: bench-sender RIB_FILE RECEIVER_IP:PORT N_SESSIONS [SCALE] [HOLD]
//! Session i connects from 127.0.1.(i+1) with AS 64512+i and prepends that AS to every path,
//! so attribute sets differ across peers as they do in reality. SCALE 2 adds a second copy of
//! every prefix moved 64 first octets further inside unicast space (see `shift`), to reach
//! today's table size from a 2014 table.
//!
//! Every route sent is one that every receiver of scripts/bench/ingest (focld, BIRD 2, GoBGP,
//! FRR, OpenBGPD) keeps: routes whose AS_PATH holds the receiver's AS (SENDER_LOCAL_AS, default
//! 65000; a loop, refused by BIRD, GoBGP and FRR) are left out, and so are prefixes that some
//! receiver refuses as martians (see `accepted`). The counts left out are printed on a
//! `dropped:` line after the `workload:` line.

use focl::prefix::{Family, Prefix};
use focl::wire::frame::{self, Framer, MsgType};
use focl::wire::open::{Capabilities, OpenMsg};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn open_mrt(path: &str) -> Box<dyn Read> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    if path.ends_with(".bz2") {
        Box::new(bzip2::read::MultiBzDecoder::new(f))
    } else if path.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    }
}

/// Every peer's routes of one family: peer index -> (prefix, attribute bytes as dumped).
fn load_rib(path: &str, v6: bool) -> HashMap<u16, Vec<(Prefix, Vec<u8>)>> {
    let mut per_peer: HashMap<u16, Vec<(Prefix, Vec<u8>)>> = HashMap::new();
    let subtype = if v6 { 4 } else { 2 };
    for rec in bgpkit_parser::BgpkitParser::from_reader(open_mrt(path)).into_raw_record_iter() {
        // TABLE_DUMP_V2 (13) RIB_IPV4_UNICAST (2) / RIB_IPV6_UNICAST (4): seq, prefix, entries
        // (RFC 6396 §4.3.2).
        if rec.common_header.entry_type as u16 != 13 || rec.common_header.entry_subtype != subtype {
            continue;
        }
        let b = &rec.message_bytes[..];
        let Some(&len) = b.get(4) else { continue };
        let n = usize::from(len).div_ceil(8);
        let Some(bytes) = b.get(5..5 + n) else { continue };
        let addr = if v6 {
            let mut a = [0u8; 16];
            let Some(dst) = a.get_mut(..n) else { continue };
            dst.copy_from_slice(bytes);
            IpAddr::V6(std::net::Ipv6Addr::from(a))
        } else {
            let mut a = [0u8; 4];
            let Some(dst) = a.get_mut(..n) else { continue };
            dst.copy_from_slice(bytes);
            IpAddr::V4(Ipv4Addr::from(a))
        };
        let Ok(prefix) = Prefix::new_truncated(addr, len) else { continue };
        let mut at = 5 + n + 2;
        while let Some(h) = b.get(at..at + 8) {
            let peer = u16::from_be_bytes([h[0], h[1]]);
            let alen = usize::from(u16::from_be_bytes([h[6], h[7]]));
            let Some(attrs) = b.get(at + 8..at + 8 + alen) else { break };
            per_peer.entry(peer).or_default().push((prefix, attrs.to_vec()));
            at += 8 + alen;
        }
    }
    per_peer
}

/// The path attributes of a block: (flags, type code, value, whole encoding); stops at the
/// first one that does not fit.
fn attributes(mut rest: &[u8]) -> Vec<(u8, u8, &[u8], &[u8])> {
    let mut out = Vec::new();
    while rest.len() >= 3 {
        let (flags, code) = (rest[0], rest[1]);
        let (len, hdr) = if flags & 0x10 != 0 {
            (usize::from(u16::from_be_bytes([rest[2], *rest.get(3).unwrap_or(&0)])), 4)
        } else {
            (usize::from(rest[2]), 3)
        };
        let Some(whole) = rest.get(..hdr + len) else { break };
        out.push((flags, code, &whole[hdr..], whole));
        rest = &rest[hdr + len..];
    }
    out
}

/// The IPv6 next hop of a TABLE_DUMP_V2 attribute block (RFC 6396 §4.3.4: MP_REACH_NLRI holds
/// only the next hop length and next hop), and the block without it.
fn split_mp_next_hop(attrs: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::with_capacity(attrs.len());
    let mut nh = Vec::new();
    for (_, code, value, whole) in attributes(attrs) {
        if code == 14 {
            // Some dumpers write the whole MP_REACH_NLRI (AFI 2, SAFI 1, length, next hop, ...)
            // instead of the abbreviated form.
            let hop = match value {
                [0, 2, 1, n, rest @ ..] => rest.get(..usize::from(*n)),
                [n, rest @ ..] => rest.get(..usize::from(*n)),
                [] => None,
            };
            nh = hop.unwrap_or_default().to_vec();
        } else {
            out.extend_from_slice(whole);
        }
    }
    (out, nh)
}

/// The attribute block with `asn` put in front of the AS_PATH (4-octet encoding).
fn prepend(attrs: &[u8], asn: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(attrs.len() + 8);
    for (flags, code, value, whole) in attributes(attrs) {
        if code == 2 {
            let mut v = vec![2u8, 1];
            v.extend_from_slice(&asn.to_be_bytes());
            v.extend_from_slice(value);
            if v.len() > 255 {
                out.extend_from_slice(&[flags | 0x10, 2]);
                out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            } else {
                out.extend_from_slice(&[flags & !0x10, 2, v.len() as u8]);
            }
            out.extend_from_slice(&v);
        } else {
            out.extend_from_slice(whole);
        }
    }
    out
}

/// Whether every receiver keeps a route for this prefix. From the counts each receiver held
/// in the 2026-11-29 run of scripts/bench/ingest (a2, old shift by 64.0.0.0) against the
/// prefixes sent: BIRD 2.0.12 refused the IPv4 prefixes whose address lies in 0/8 (not the
/// default route 0.0.0.0/0), 127/8 and 224/4; FRR 8.4 those in 224/4 (its NLRI parser skips
/// multicast, and IPv6 link-local and multicast); GoBGP 3.10 none. 240/4 was kept by all,
/// but it is not unicast space, so it is left out too. IPv6: 2000::/3 and ::/0 only.
fn accepted(p: &Prefix) -> bool {
    match *p {
        Prefix::V4 { len: 0, .. } | Prefix::V6 { len: 0, .. } => true,
        Prefix::V4 { addr, .. } => unicast_octet((addr >> 24) as u8),
        Prefix::V6 { addr, .. } => addr >> 125 == 1,
    }
}

/// A first octet of IPv4 unicast space that every receiver accepts: 1-223 without 127.
fn unicast_octet(o: u8) -> bool {
    (1..=223).contains(&o) && o != 127
}

/// Copy `k` of an IPv4 prefix: its first octet moved 64 * k places further along the list of
/// unicast first octets (1-126, 128-223, wrapping around), the rest of the address unchanged.
/// None for the default route and anything that would not stay in unicast space.
fn shift(p: &Prefix, k: u32) -> Option<Prefix> {
    let Prefix::V4 { addr, len } = *p else { return None };
    if len < 8 || !unicast_octet((addr >> 24) as u8) {
        return None;
    }
    let octets: Vec<u32> = (1..=223u32).filter(|&o| o != 127).collect();
    let i = octets.iter().position(|&o| o == addr >> 24)?;
    let o = octets[(i + 64 * k as usize) % octets.len()];
    let q = Prefix::new_truncated(IpAddr::V4(Ipv4Addr::from((o << 24) | (addr & 0x00ff_ffff))), len).ok()?;
    accepted(&q).then_some(q)
}

/// Whether the AS_PATH of an attribute block (4-octet AS numbers, as TABLE_DUMP_V2 stores
/// them) contains `asn`.
fn path_has(attrs: &[u8], asn: u32) -> bool {
    attributes(attrs).into_iter().any(|(_, code, value, _)| {
        if code != 2 {
            return false;
        }
        let mut rest = value;
        while let [_, n, tail @ ..] = rest {
            let n = usize::from(*n) * 4;
            let Some(asns) = tail.get(..n) else { return false };
            if asns.chunks_exact(4).any(|a| u32::from_be_bytes([a[0], a[1], a[2], a[3]]) == asn) {
                return true;
            }
            rest = &tail[n..];
        }
        false
    })
}

/// Leave out what some receiver would refuse; returns how many routes were left out for an AS
/// path loop and for a martian prefix.
fn keep_accepted(table: &mut Vec<(Prefix, Vec<u8>)>, local_as: u32) -> (usize, usize) {
    let before = table.len();
    table.retain(|(_, a)| !path_has(a, local_as));
    let loops = before - table.len();
    let before = table.len();
    table.retain(|(p, _)| accepted(p));
    (loops, before - table.len())
}

/// Group prefixes by attribute set (as a router sends them) and pack UPDATEs of at most 4096.
fn encode(table: &[(Prefix, Vec<u8>)], asn: u32) -> (Vec<u8>, usize) {
    let mut groups: HashMap<&[u8], Vec<Prefix>> = HashMap::new();
    let mut order = Vec::new();
    for (p, a) in table {
        let e = groups.entry(a.as_slice()).or_default();
        if e.is_empty() {
            order.push(a.as_slice());
        }
        e.push(*p);
    }
    let mut out = Vec::new();
    let mut msgs = 0;
    let v6 = table.first().is_some_and(|(p, _)| p.family() == Family::Ipv6Unicast);
    for a in order {
        let (attrs, nh) = if v6 { split_mp_next_hop(a) } else { (a.to_vec(), Vec::new()) };
        let attrs = prepend(&attrs, asn);
        // IPv6: MP_REACH_NLRI (extended length) = AFI, SAFI, next hop, reserved, NLRI.
        let mp_fixed = if v6 { 4 + 3 + 1 + nh.len() + 1 } else { 0 };
        let room = 4096 - 23 - attrs.len() - mp_fixed;
        let mut nlri = Vec::new();
        let flush = |nlri: &mut Vec<u8>, out: &mut Vec<u8>, msgs: &mut usize| {
            if v6 {
                let mp_len = 3 + 1 + nh.len() + 1 + nlri.len();
                let total = attrs.len() + 4 + mp_len;
                frame::write_header(out, 23 + total, MsgType::Update);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(total as u16).to_be_bytes());
                out.extend_from_slice(&attrs);
                out.extend_from_slice(&[0x90, 14]);
                out.extend_from_slice(&(mp_len as u16).to_be_bytes());
                out.extend_from_slice(&[0, 2, 1, nh.len() as u8]);
                out.extend_from_slice(&nh);
                out.push(0);
                out.append(nlri);
            } else {
                frame::write_header(out, 23 + attrs.len() + nlri.len(), MsgType::Update);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
                out.extend_from_slice(&attrs);
                out.append(nlri);
            }
            *msgs += 1;
        };
        for p in &groups[a] {
            if nlri.len() + p.nlri_len() > room {
                flush(&mut nlri, &mut out, &mut msgs);
            }
            p.write_nlri(&mut nlri);
        }
        if !nlri.is_empty() {
            flush(&mut nlri, &mut out, &mut msgs);
        }
    }
    out.extend_from_slice(&focl::wire::update::end_of_rib(if v6 { Family::Ipv6Unicast } else { Family::Ipv4Unicast }));
    (out, msgs)
}

fn recv(s: &mut TcpStream, f: &mut Framer) -> Option<MsgType> {
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(Some((ty, _))) = f.next_message() {
            return Some(ty);
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => f.feed(&buf[..n]),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: bench-sender RIB_FILE RECEIVER_IP:PORT N_SESSIONS [SCALE] [HOLD]");
        std::process::exit(2);
    }
    let target: SocketAddr = args[2].parse().expect("RECEIVER_IP:PORT");
    let sessions: u32 = args[3].parse().expect("N_SESSIONS");
    let scale: u32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1);
    let hold: u16 = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(90);
    let t0 = Instant::now();
    // SENDER_V6=1: one session per peer of an IPv6 RIB, each with that peer's routes.
    // SENDER_LIMIT=N: only the first N prefixes (in prefix order) of the table.
    let v6 = std::env::var("SENDER_V6").is_ok_and(|v| v == "1");
    let limit: Option<usize> = std::env::var("SENDER_LIMIT").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0);
    // SENDER_LOCAL_AS=N: the receiver's AS; routes with it in their AS_PATH are left out.
    let local_as: u32 = std::env::var("SENDER_LOCAL_AS").ok().and_then(|v| v.parse().ok()).unwrap_or(65000);
    let rib = load_rib(&args[1], v6);
    if v6 {
        let mut peers: Vec<(u16, Vec<(Prefix, Vec<u8>)>)> = rib.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        peers.sort_by_key(|(k, _)| *k);
        peers.truncate(sessions as usize);
        let (mut loops, mut martians) = (0, 0);
        let streams: Vec<(Vec<u8>, usize)> = peers
            .iter_mut()
            .enumerate()
            .map(|(i, (_, t))| {
                t.sort_by_key(|a| a.0);
                t.dedup_by(|a, b| a.0 == b.0);
                let (l, m) = keep_accepted(t, local_as);
                loops += l;
                martians += m;
                encode(t, 64512 + i as u32)
            })
            .collect();
        let total: usize = peers.iter().map(|(_, t)| t.len()).sum();
        println!(
            "workload: {total} IPv6 routes over {} sessions (one per RIB peer), {} UPDATEs, encoded in {:.1} s",
            streams.len(),
            streams.iter().map(|s| s.1).sum::<usize>(),
            t0.elapsed().as_secs_f64()
        );
        println!("dropped: {loops} routes with AS {local_as} in the path, {martians} martian prefixes");
        run_sessions(streams, target, hold);
        return;
    }
    let mut table = rib.into_values().max_by_key(|v| v.len()).unwrap_or_default();
    table.sort_by_key(|a| a.0);
    table.dedup_by(|a, b| a.0 == b.0);
    let (loops, martians) = keep_accepted(&mut table, local_as);
    let base = table.clone();
    for k in 1..scale {
        for (p, a) in &base {
            if let Some(q) = shift(p, k) {
                table.push((q, a.clone()));
            }
        }
    }
    table.sort_by_key(|a| a.0);
    table.dedup_by(|a, b| a.0 == b.0);
    if let Some(n) = limit {
        table.truncate(n);
    }
    let streams: Vec<(Vec<u8>, usize)> = (0..sessions).map(|i| encode(&table, 64512 + i)).collect();
    println!(
        "workload: {} IPv4 prefixes per session, {} UPDATEs per session, {} sessions, encoded in {:.1} s",
        table.len(),
        streams.first().map(|s| s.1).unwrap_or(0),
        sessions,
        t0.elapsed().as_secs_f64()
    );
    println!("dropped: {loops} routes with AS {local_as} in the path, {martians} martian prefixes (of the original table)");
    run_sessions(streams, target, hold);
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One thread per session: connect from 127.0.1.(i+1), OPEN, the stream, then KEEPALIVEs.
fn run_sessions(streams: Vec<(Vec<u8>, usize)>, target: SocketAddr, hold: u16) {
    let mut handles = Vec::new();
    for (i, (stream, _)) in streams.into_iter().enumerate() {
        // SENDER_SOURCE=A.B.C. and SENDER_FIRST=N: sessions come from A.B.C.N, A.B.C.N+1, ...
        let base = std::env::var("SENDER_SOURCE").unwrap_or_else(|_| "127.0.1.".into());
        let first: usize = std::env::var("SENDER_FIRST").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
        let local: IpAddr = format!("{base}{}", first + i).parse().expect("local address");
        handles.push(std::thread::spawn(move || {
            let sock = focl::session::sock::connect(target, Some(local), None).expect("connect");
            sock.set_nonblocking(false).expect("blocking");
            let deadline = Instant::now() + Duration::from_secs(10);
            while sock.peer_addr().is_err() {
                assert!(Instant::now() < deadline, "connect from {local} timed out");
                std::thread::sleep(Duration::from_millis(10));
            }
            let mut s = sock;
            let mut f = Framer::new();
            let asn = 64512 + i as u32;
            let caps = Capabilities {
                families: Family::ALL.to_vec(),
                route_refresh: true,
                four_octet_as: Some(asn),
                ..Default::default()
            };
            s.write_all(&OpenMsg::new(asn, hold, Ipv4Addr::new(10, 255, 0, i as u8 + 1), caps).encode()).expect("OPEN");
            assert_eq!(recv(&mut s, &mut f), Some(MsgType::Open));
            s.write_all(&frame::keepalive()).expect("KEEPALIVE");
            // Drain whatever the receiver sends from now on, so it never blocks on us, and report
            // each new longest silence and each late one, timestamped: how close our hold timer for the receiver came to expiring.
            let mut reader = s.try_clone().expect("clone");
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut last = Instant::now();
                let mut longest = Duration::ZERO;
                while matches!(reader.read(&mut buf), Ok(n) if n > 0) {
                    let gap = last.elapsed();
                    last = Instant::now();
                    let late = gap > Duration::from_millis(u64::from(hold) * 1000 / 3 + 500);
                    if gap > longest + Duration::from_millis(100) || late {
                        longest = longest.max(gap);
                        let at = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0.0, |d| d.as_secs_f64());
                        println!("session {i}: silence {:.2} s ending at {at:.1} (hold {hold} s)", gap.as_secs_f64());
                    }
                }
                println!("session {i}: closed by the receiver");
            });
            let start = Instant::now();
            println!("session {i}: first UPDATE at {:.3}", unix_now());
            s.write_all(&stream).expect("UPDATE stream");
            println!(
                "session {i}: {} bytes written in {:.2} s, done at {:.3}",
                stream.len(),
                start.elapsed().as_secs_f64(),
                unix_now()
            );
            let every = Duration::from_secs(u64::from(hold / 3).max(1));
            loop {
                std::thread::sleep(every);
                if s.write_all(&frame::keepalive()).is_err() {
                    return;
                }
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}
