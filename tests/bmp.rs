//! BMP export (RFC 7854) to a station on loopback, every message read back with bgpkit-parser's
//! BMP parser: Initiation, Peer Up with both OPENs as exchanged, pre- and post-policy Route
//! Monitoring carrying the received UPDATE byte for byte, Statistics, Peer Down with the
//! reason and the NOTIFICATION, Termination at shutdown; a station that connects late gets a
//! Peer Up for the session already up; a station that reads nothing is cut off and counted
//! while the session keeps its KEEPALIVEs on time; post-policy after the import policy,
//! focld's Adj-RIB-Out (RFC 8671, O flag) and its Loc-RIB (RFC 9069, peer type 3), each
//! dumped then live.

mod common;

use bgpkit_parser::models::BgpMessage;
use bgpkit_parser::parser::bmp::messages::{
    BmpMessage, BmpMessageBody, BmpMsgType, BmpPeerType, LocalRibPeerFlags, PeerDownReason, PeerFlags, PeerUpTlvType,
    PerPeerFlags, StatType, StatsData,
};
use common::*;
use focl::prefix::Family;
use focl::wire::frame::MsgType;
use focl::wire::open::{Capabilities, OpenMsg};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PEER: &str = "127.0.0.171";
const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 171);

fn config(dir: &std::path::Path, port: u16, station: u16, extra: &str) -> String {
    format!(
        "{}\n[[peers]]\nname = \"feed\"\naddress = \"{PEER}\"\nremote_as = 65010\npassive = true\nhold_time_secs = 30\n\n\
         [[bmp.stations]]\naddress = \"127.0.0.1\"\nport = {station}\nconnect_retry_secs = 1\n{extra}\n",
        global_section(dir, port)
    )
}

/// What focld's speaker sends as its OPEN (so the Peer Up can be compared byte for byte).
fn our_open() -> OpenMsg {
    let caps = Capabilities {
        families: Family::ALL.to_vec(),
        route_refresh: true,
        four_octet_as: Some(65010),
        ..Default::default()
    };
    OpenMsg::new(65010, 90, PEER_ID, caps)
}

/// ORIGIN IGP, AS_PATH [65010, 65020], NEXT_HOP 192.0.2.10.
fn attrs() -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0];
    a.extend_from_slice(&[0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xf2, 0, 0, 0xfd, 0xfc]);
    a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 10]);
    a
}

/// A station: accepts connections one after another and hands every BMP message, raw and
/// parsed, to the test.
struct Station {
    rx: mpsc::Receiver<(Vec<u8>, BmpMessage)>,
}

impl Station {
    fn listen(listener: TcpListener) -> Station {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(len) = focl::bmp::encode::message_len(&buf).filter(|l| *l <= buf.len()) {
                        let raw: Vec<u8> = buf.drain(..len).collect();
                        let mut b = bytes::Bytes::from(raw.clone());
                        let m = bgpkit_parser::parse_bmp_msg(&mut b).expect("every BMP message parses");
                        if tx.send((raw, m)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Station { rx }
    }

    /// Messages until one of type `ty` arrives (returned with those before it), or `within` passes.
    fn until(&self, ty: BmpMsgType, within: Duration) -> Option<(Vec<u8>, BmpMessage)> {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok((raw, m)) if m.common_header.msg_type == ty => return Some((raw, m)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

fn flags(m: &BmpMessage) -> PeerFlags {
    match m.per_peer_header.expect("per-peer header").peer_flags {
        PerPeerFlags::PeerFlags(f) => f,
        PerPeerFlags::LocalRibPeerFlags(_) => panic!("not a Loc-RIB message"),
    }
}

#[test]
fn a_station_sees_initiation_peer_up_route_monitoring_statistics_peer_down_and_termination() {
    let dir = TempDir::new("bmp-all");
    let port = free_port("127.0.0.1");
    let listener = TcpListener::bind("127.0.0.1:0").expect("station");
    let station_port = listener.local_addr().expect("addr").port();
    let station = Station::listen(listener);
    let extra = "monitor = [\"pre-policy\", \"post-policy\"]\nstats_interval_secs = 1\n";
    let mut f = Focld::start(dir.path(), "f", &config(dir.path(), port, station_port, extra));

    let (_, init) = station.until(BmpMsgType::InitiationMessage, Duration::from_secs(10)).expect("Initiation");
    let BmpMessageBody::InitiationMessage(i) = init.message_body else { panic!() };
    assert!(i.tlvs.iter().any(|t| t.info.starts_with("focld ")), "sysDescr: {i:?}");

    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let open = our_open();
    let mut s = RawSpeaker::establish_with(PEER, target, &open);
    f.wait_established(PEER, Duration::from_secs(10));

    let (raw, up) = station.until(BmpMsgType::PeerUpNotification, Duration::from_secs(10)).expect("Peer Up");
    let ph = up.per_peer_header.expect("per-peer header");
    assert_eq!((ph.peer_ip.to_string(), ph.peer_asn.to_u32(), ph.peer_bgp_id), (PEER.to_string(), 65010, PEER_ID));
    assert!(!flags(&up).contains(PeerFlags::AS_SIZE_16BIT), "a 4-octet AS session");
    let BmpMessageBody::PeerUpNotification(u) = &up.message_body else { panic!() };
    assert_eq!(u.local_addr.to_string(), "127.0.0.1");
    assert_eq!(u.local_port, port);
    // The OPEN we sent sits in the Peer Up byte for byte, as the second (received) OPEN.
    let sent_by_us = open.encode();
    assert!(raw.windows(sent_by_us.len()).any(|w| w == sent_by_us), "our OPEN, as sent, is in the Peer Up");
    let BgpMessage::Open(theirs) = &u.sent_open else { panic!() };
    assert_eq!(theirs.bgp_identifier, Ipv4Addr::new(192, 0, 2, 1), "focld's own OPEN comes first");

    // An UPDATE: pre-policy Route Monitoring, the received bytes; post-policy, rebuilt by the
    // RIB after import policy (none here: the same bytes).
    let update = update_msg(&[], &attrs(), &[24, 198, 51, 100]);
    s.send(&update);
    let (raw_pre, pre) = station.until(BmpMsgType::RouteMonitoring, Duration::from_secs(5)).expect("pre-policy");
    assert!(raw_pre.ends_with(&update), "the UPDATE as received");
    assert!(!flags(&pre).is_post_policy());
    let (raw_post, post) = station.until(BmpMsgType::RouteMonitoring, Duration::from_secs(5)).expect("post-policy");
    assert!(raw_post.ends_with(&update));
    assert!(flags(&post).is_post_policy(), "the L flag");

    // An UPDATE whose AS_PATH has a segment of unknown type: treated as withdraw (RFC 7606 §7.2).
    let mut bad = vec![0x40, 1, 1, 0, 0x40, 2, 6, 9, 1, 0, 0, 0xfd, 0xf2];
    bad.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 10]);
    s.send(&update_msg(&[], &bad, &[24, 203, 0, 113]));
    // Statistics: one route in the Adj-RIB-In, one UPDATE (one prefix) treated as withdraw.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        let Some((_, st)) = station.until(BmpMsgType::StatisticsReport, Duration::from_secs(3)) else { break };
        let BmpMessageBody::StatsReport(r) = st.message_body else { panic!() };
        let has = |ty: StatType, v: StatsData| r.counters.iter().any(|c| c.stat_type == ty && c.stat_data == v);
        seen = has(StatType::RoutesInAdjRibsIn, StatsData::Gauge(1))
            && has(StatType::UpdatesSubjectedToTreatAsWithdraw, StatsData::Counter(1))
            && has(StatType::PrefixesSubjectedToTreatAsWithdraw, StatsData::Counter(1))
            // RFC 8671 §5: what focld sent the peer is its post-policy Adj-RIB-Out.
            && r.counters.iter().any(|c| c.stat_type == StatType::RoutesInPostPolicyAdjRibOut)
            && r.counters.iter().any(|c| c.stat_type == StatType::RoutesInPerAfiSafiPostPolicyAdjRibOut)
            && !r.counters.iter().any(|c| c.stat_type == StatType::RoutesInPrePolicyAdjRibOut);
    }
    assert!(
        seen,
        "a Statistics Report: 1 route in the Adj-RIB-In, 1 UPDATE and 1 prefix treated as withdraw, the post-policy Adj-RIB-Out"
    );

    // The peer ends the session with a NOTIFICATION: reason 3 and that NOTIFICATION.
    let bye =
        focl::wire::notify::Notification::cease(focl::wire::notify::CeaseSubcode::AdministrativeShutdown, Some("bye"))
            .encode();
    s.send(&bye);
    let (_, down) = station.until(BmpMsgType::PeerDownNotification, Duration::from_secs(10)).expect("Peer Down");
    let BmpMessageBody::PeerDownNotification(d) = down.message_body else { panic!() };
    assert_eq!(d.reason, PeerDownReason::RemoteSystemClosedNotificationPduFollows);
    assert_eq!(d.data.as_deref(), Some(&bye[..]));
    drop(s);

    // Up again, then focld stops: our Cease (reason 1), then the Termination.
    assert!(wait_for(Duration::from_secs(10), || f.peer_state(PEER) != "Established"));
    let mut s = RawSpeaker::establish_with(PEER, target, &open);
    f.wait_established(PEER, Duration::from_secs(20));
    assert!(station.until(BmpMsgType::PeerUpNotification, Duration::from_secs(10)).is_some(), "the second Peer Up");
    f.terminate();
    let (_, down) =
        station.until(BmpMsgType::PeerDownNotification, Duration::from_secs(10)).expect("Peer Down at stop");
    let BmpMessageBody::PeerDownNotification(d) = down.message_body else { panic!() };
    assert_eq!(d.reason, PeerDownReason::LocalSystemClosedNotificationPduFollows);
    let n = d.data.expect("our NOTIFICATION");
    assert_eq!((n[18], n[19], n[20]), (3, 6, 2), "a NOTIFICATION Cease / Administrative Shutdown");
    assert!(station.until(BmpMsgType::TerminationMessage, Duration::from_secs(10)).is_some(), "Termination");
    let _ = s.recv();
}

#[test]
fn a_station_that_connects_late_gets_a_peer_up_for_the_session_already_established() {
    let dir = TempDir::new("bmp-late");
    let port = free_port("127.0.0.1");
    let station_port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, station_port, ""));
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish_with(PEER, target, &our_open());
    f.wait_established(PEER, Duration::from_secs(10));
    s.send(&update_msg(&[], &attrs(), &[24, 198, 51, 100]));
    let status = f.focl(&["bmp", "status"]).expect("bmp status");
    assert_ne!(status[0]["state"], "up", "nobody listens yet: {status}");

    let station = Station::listen(TcpListener::bind(("127.0.0.1", station_port)).expect("station"));
    assert!(station.until(BmpMsgType::InitiationMessage, Duration::from_secs(20)).is_some(), "Initiation");
    let (_, up) = station.until(BmpMsgType::PeerUpNotification, Duration::from_secs(5)).expect("Peer Up");
    assert_eq!(up.per_peer_header.expect("header").peer_bgp_id, PEER_ID);
    // The initial dump: the route already received, rebuilt from the RIB, then an End-of-RIB
    // per family (RFC 7854 §5).
    let (_, dumped) = station.until(BmpMsgType::RouteMonitoring, Duration::from_secs(5)).expect("the dump");
    let BmpMessageBody::RouteMonitoring(r) = dumped.message_body else { panic!() };
    let BgpMessage::Update(u) = r.bgp_message else { panic!() };
    assert_eq!(u.announced_prefixes.iter().map(|p| p.prefix.to_string()).collect::<Vec<_>>(), ["198.51.100.0/24"]);
    for _ in 0..2 {
        let (_, eor) = station.until(BmpMsgType::RouteMonitoring, Duration::from_secs(5)).expect("End-of-RIB");
        let BmpMessageBody::RouteMonitoring(r) = eor.message_body else { panic!() };
        assert!(r.is_end_of_rib(), "{r:?}");
    }
    // What follows is live.
    let update = update_msg(&[], &attrs(), &[24, 203, 0, 113]);
    s.send(&update);
    let (raw, _) = station.until(BmpMsgType::RouteMonitoring, Duration::from_secs(5)).expect("live Route Monitoring");
    assert!(raw.ends_with(&update));
    let status = f.focl(&["bmp", "status"]).expect("bmp status");
    assert_eq!(status[0]["state"], "up", "{status}");
    assert!(status[0]["messages_sent"].as_u64().is_some_and(|n| n >= 3), "{status}");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn a_station_that_reads_nothing_is_dropped_and_counted_and_the_session_keeps_its_keepalives() {
    let dir = TempDir::new("bmp-stall");
    let port = free_port("127.0.0.1");
    // The station accepts and then never reads.
    let listener = TcpListener::bind("127.0.0.1:0").expect("station");
    let station_port = listener.local_addr().expect("addr").port();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done_here = done.clone();
    let held = std::thread::spawn(move || {
        let mut kept: Vec<TcpStream> = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + Duration::from_secs(120);
        while Instant::now() < until && kept.len() < 8 && !done_here.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => kept.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        kept.len()
    });
    let extra = "buffer_limit_mb = 1\nmirroring = true\n";
    let text = config(dir.path(), port, station_port, extra).replace("hold_time_secs = 30", "hold_time_secs = 3");
    let f = Focld::start(dir.path(), "f", &text);
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut open = our_open();
    open.hold_time = 3;
    let s = RawSpeaker::establish_with(PEER, target, &open);
    f.wait_established(PEER, Duration::from_secs(10));

    // A reader of focld's side of the session: when each KEEPALIVE arrives.
    let mut reader = RawSpeaker::from_stream(s.stream.try_clone().expect("clone"));
    let (ka_tx, ka_rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Some((ty, _)) = reader.recv() {
            if ty == MsgType::Keepalive && ka_tx.send(Instant::now()).is_err() {
                return;
            }
        }
    });
    let mut s = s;
    // 40,000 UPDATEs of one /32 each, with our KEEPALIVEs in between: several MB of BMP for
    // a station that reads nothing.
    let a = attrs();
    let mut batch = Vec::new();
    let mut last_ka = Instant::now();
    let started = Instant::now();
    let mut peak_buffered = 0;
    let mut peak_rss = 0;
    let mut i = 0u32;
    while started.elapsed() < Duration::from_secs(12) {
        if i < 40_000 {
            let b = (i + 1).to_be_bytes();
            batch.extend_from_slice(&update_msg(&[], &a, &[32, 100, b[1], b[2], b[3]]));
            i += 1;
        }
        if batch.len() > 32 * 1024 || (i >= 40_000 && !batch.is_empty()) {
            s.send(&batch);
            batch.clear();
        }
        if last_ka.elapsed() > Duration::from_millis(500) {
            s.send(&focl::wire::frame::keepalive());
            last_ka = Instant::now();
            if let Ok(st) = f.focl(&["bmp", "status"]) {
                peak_buffered = peak_buffered.max(st[0]["buffered_bytes"].as_u64().unwrap_or(0));
            }
            peak_rss = peak_rss.max(rss_kib(f.child.as_ref().map_or(0, |c| c.id())));
        }
        if i >= 40_000 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let st = f.focl(&["bmp", "status"]).expect("bmp status");
    assert!(st[0]["drops"].as_u64().is_some_and(|d| d >= 1), "the station was dropped: {st}");
    assert!(peak_buffered <= 1024 * 1024, "never more than the limit waits: {peak_buffered}");
    assert!(peak_rss < 200 * 1024, "focld stays small: {peak_rss} KiB");
    let show = f.focl(&["peer", "show", PEER]).expect("peer show");
    assert_eq!((show["state"].as_str(), show["flaps"].as_u64()), (Some("Established"), Some(0)), "{show}");
    // KEEPALIVEs every hold/3 = 1 s: no gap near the 3 s hold time.
    let times: Vec<Instant> = ka_rx.try_iter().collect();
    assert!(times.len() >= 8, "KEEPALIVEs kept coming: {}", times.len());
    let worst = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    assert!(worst < Duration::from_millis(2000), "largest gap between KEEPALIVEs: {worst:?}");
    assert!(f.log_text().contains("dropping its connection"), "logged");
    eprintln!("peak buffered {peak_buffered} bytes, peak RSS {peak_rss} KiB, largest KEEPALIVE gap {worst:?}, {st}");
    drop(f);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(held.join().unwrap_or(0) >= 1);
}

/// ORIGIN IGP, AS_PATH [65010], NEXT_HOP 192.0.2.10 and MED `tag`: every UPDATE of the churn
/// carries its own MED, so a station that got one twice is caught.
fn tagged_attrs(tag: u32) -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0];
    a.extend_from_slice(&[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xf2]);
    a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 10]);
    a.extend_from_slice(&[0x80, 4, 4]);
    a.extend_from_slice(&tag.to_be_bytes());
    a
}

/// An IPv6 UPDATE announcing `prefixes` (/48s under 2001:db8::/32) with MED `tag`.
fn tagged_v6(tag: u32, nets: &[u16]) -> Vec<u8> {
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&"2001:db8::10".parse::<std::net::Ipv6Addr>().unwrap().octets());
    mp.push(0);
    for n in nets {
        mp.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8]);
        mp.extend_from_slice(&n.to_be_bytes());
    }
    let mut a = vec![0x90, 14];
    a.extend_from_slice(&(mp.len() as u16).to_be_bytes());
    a.extend_from_slice(&mp);
    a.extend_from_slice(&[0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xf2]);
    a.extend_from_slice(&[0x80, 4, 4]);
    a.extend_from_slice(&tag.to_be_bytes());
    update_msg(&[], &a, &[])
}

/// The MED of a parsed UPDATE.
fn med_of(u: &bgpkit_parser::models::BgpUpdateMessage) -> Option<u32> {
    u.attributes.iter().find_map(|a| match a {
        bgpkit_parser::models::AttributeValue::MultiExitDiscriminator(m) => Some(*m),
        _ => None,
    })
}

/// A table of 22,000 routes, then churn while a station (monitoring `extra`'s views)
/// connects and takes its dump; focld and what the station got, in order.
fn churned(tag: &str, extra: &str) -> (TempDir, Focld, RawSpeaker, Vec<BmpMessage>) {
    let dir = TempDir::new(tag);
    let port = free_port("127.0.0.1");
    let station_port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, station_port, extra));
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish_with(PEER, target, &our_open());
    f.wait_established(PEER, Duration::from_secs(10));

    // A table first: 20,000 IPv4 /24s and 2,000 IPv6 /48s, 50 prefixes an UPDATE.
    let mut tag = 0u32;
    let mut batch = Vec::new();
    for chunk in (0..20_000u32).collect::<Vec<_>>().chunks(50) {
        tag += 1;
        let mut nlri = Vec::new();
        for i in chunk {
            let b = (0x0a00_0000u32 + (i << 8)).to_be_bytes();
            nlri.extend_from_slice(&[24, b[0], b[1], b[2]]);
        }
        batch.extend_from_slice(&update_msg(&[], &tagged_attrs(tag), &nlri));
    }
    for chunk in (0..2_000u16).collect::<Vec<_>>().chunks(50) {
        tag += 1;
        batch.extend_from_slice(&tagged_v6(tag, chunk));
    }
    s.send(&batch);
    assert!(wait_for(Duration::from_secs(30), || f.rib_in(PEER).len() == 22_000), "the table is in");

    // Churn: announce again and withdraw a few hundred prefixes without a pause, while a
    // station connects and takes its dump.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_here = stop.clone();
    let churn = std::thread::spawn(move || {
        let mut tag = 1_000_000u32;
        let mut round = 0u32;
        while !stop_here.load(std::sync::atomic::Ordering::Relaxed) {
            let mut out = Vec::new();
            for k in 0..20u32 {
                tag += 1;
                // Spread over the table, so the walk of the dump meets them ahead of it and behind it.
                let i = ((round * 20 + k) * 97) % 20_000;
                let b = (0x0a00_0000u32 + (i << 8)).to_be_bytes();
                if (round + k) % 3 == 0 {
                    out.extend_from_slice(&update_msg(&[24, b[0], b[1], b[2]], &[], &[]));
                } else {
                    out.extend_from_slice(&update_msg(&[], &tagged_attrs(tag), &[24, b[0], b[1], b[2]]));
                }
            }
            tag += 1;
            out.extend_from_slice(&tagged_v6(tag, &[(round % 100) as u16]));
            s.send(&out);
            round += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        s
    });
    std::thread::sleep(Duration::from_millis(300));
    let station = Station::listen(TcpListener::bind(("127.0.0.1", station_port)).expect("station"));
    // The station thread retries with back-off (1, 2, 4, ... s): wait for it to be up.
    let up = wait_for(Duration::from_secs(40), || {
        f.focl(&["bmp", "status"]).is_ok_and(|st| st[0]["state"] == "up" && st[0]["messages_sent"].as_u64() > Some(100))
    });
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(up, "the station connected");
    let s = churn.join().expect("churn");
    for l in f.log_text().lines().filter(|l| l.contains("initial dump of")) {
        eprintln!("{l}");
    }
    let mut got = Vec::new();
    while let Ok((_, m)) = station.rx.recv_timeout(Duration::from_secs(3)) {
        got.push(m);
    }
    (dir, f, s, got)
}

#[test]
fn the_initial_dump_hands_over_to_live_updates_under_churn_without_a_gap_or_a_duplicate() {
    let (_dir, f, _s, got) = churned("bmp-churn", "");
    // Apply what the station got, in order; after the last End-of-RIB everything is live.
    let mut state: std::collections::BTreeMap<String, Option<u32>> = std::collections::BTreeMap::new();
    let mut eors = 0;
    let mut dump_meds = std::collections::HashSet::new();
    let mut live_meds = std::collections::HashSet::new();
    let mut dump_updates = 0;
    let mut duplicates = Vec::new();
    for m in got {
        let BmpMessageBody::RouteMonitoring(r) = m.message_body else { continue };
        let BgpMessage::Update(u) = r.bgp_message else { continue };
        if u.is_end_of_rib() {
            eors += 1;
            continue;
        }
        let med = med_of(&u);
        if eors < 2 {
            dump_updates += 1;
            if let Some(m) = med {
                dump_meds.insert(m);
            }
        } else if let Some(m) = med {
            if dump_meds.contains(&m) || !live_meds.insert(m) {
                duplicates.push(m);
            }
        }
        let (announced, withdrawn) = nlri_of(&u);
        for w in withdrawn {
            state.remove(&w);
        }
        for a in announced {
            state.insert(a, med);
        }
    }
    assert_eq!(
        eors,
        2,
        "an End-of-RIB for IPv4 and for IPv6; log: {}",
        f.log_text().lines().filter(|l| l.contains("bmp")).collect::<Vec<_>>().join("\n")
    );
    assert!(dump_updates >= 22_000 / 400, "the dump was packed into full UPDATEs: {dump_updates}");
    assert!(!live_meds.is_empty(), "live UPDATEs followed the dump");
    assert!(duplicates.is_empty(), "UPDATEs sent twice (by MED): {duplicates:?}");
    // No gap: the station's table is focld's.
    let rib: std::collections::BTreeMap<String, Option<u32>> = f
        .rib_in(PEER)
        .iter()
        .map(|r| (r["prefix"].as_str().unwrap_or_default().to_string(), r["med"].as_u64().map(|m| m as u32)))
        .collect();
    assert_eq!(state.len(), rib.len());
    let differ: Vec<_> = rib.iter().filter(|(p, m)| state.get(*p) != Some(m)).take(5).collect();
    assert!(differ.is_empty(), "the station's routes differ from focl rib in: {differ:?}");
}

/// Announced and withdrawn prefixes, IPv4 NLRI and MP_REACH / MP_UNREACH alike.
fn nlri_of(u: &bgpkit_parser::models::BgpUpdateMessage) -> (Vec<String>, Vec<String>) {
    use bgpkit_parser::models::AttributeValue;
    let mut ann: Vec<String> = u.announced_prefixes.iter().map(|p| p.prefix.to_string()).collect();
    let mut wd: Vec<String> = u.withdrawn_prefixes.iter().map(|p| p.prefix.to_string()).collect();
    for a in u.attributes.iter() {
        match a {
            AttributeValue::MpReachNlri(n) => ann.extend(n.prefixes.iter().map(|p| p.prefix.to_string())),
            AttributeValue::MpUnreachNlri(n) => wd.extend(n.prefixes.iter().map(|p| p.prefix.to_string())),
            _ => {}
        }
    }
    (ann, wd)
}

#[test]
fn post_policy_and_loc_rib_dumps_hand_over_to_live_changes_under_churn_without_a_gap_or_a_duplicate() {
    let (_dir, f, _s, got) = churned("bmp-churn-views", "monitor = [\"post-policy\", \"loc-rib\"]\n");
    let mut state: std::collections::BTreeMap<View, std::collections::BTreeMap<String, Option<u32>>> =
        std::collections::BTreeMap::new();
    let mut eors: std::collections::BTreeMap<View, usize> = std::collections::BTreeMap::new();
    // Each churn UPDATE has its own MED: a (prefix, MED) announced twice in a view was sent twice.
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = Vec::new();
    for m in got {
        if m.common_header.msg_type != BmpMsgType::RouteMonitoring {
            continue;
        }
        let view = view_of(&m);
        let BmpMessageBody::RouteMonitoring(r) = m.message_body else { continue };
        let BgpMessage::Update(u) = r.bgp_message else { continue };
        if u.is_end_of_rib() {
            *eors.entry(view).or_default() += 1;
            continue;
        }
        let med = med_of(&u);
        let (announced, withdrawn) = nlri_of(&u);
        let routes = state.entry(view).or_default();
        for w in withdrawn {
            routes.remove(&w);
        }
        for a in announced {
            if !seen.insert((view, a.clone(), med)) {
                duplicates.push((view, a.clone(), med));
            }
            routes.insert(a, med);
        }
    }
    assert_eq!(eors.get(&View::Post), Some(&2), "post-policy: an End-of-RIB per family");
    assert_eq!(eors.get(&View::Loc), Some(&2), "Loc-RIB: an End-of-RIB per family");
    assert!(!state.contains_key(&View::Pre), "no pre-policy asked for");
    assert!(duplicates.is_empty(), "sent twice: {:?}", &duplicates[..duplicates.len().min(5)]);
    let rib: std::collections::BTreeMap<String, Option<u32>> = f
        .rib_in(PEER)
        .iter()
        .map(|r| (r["prefix"].as_str().unwrap_or_default().to_string(), r["med"].as_u64().map(|m| m as u32)))
        .collect();
    for view in [View::Post, View::Loc] {
        let got = state.remove(&view).unwrap_or_default();
        assert_eq!(got.len(), rib.len(), "{view:?}");
        let differ: Vec<_> = rib.iter().filter(|(p, m)| got.get(*p) != Some(m)).take(5).collect();
        assert!(differ.is_empty(), "{view:?}: the station's routes differ from focl rib in: {differ:?}");
    }
}

#[test]
fn a_reload_adds_and_removes_a_station_without_touching_the_session() {
    let dir = TempDir::new("bmp-reload");
    let port = free_port("127.0.0.1");
    let listener = TcpListener::bind("127.0.0.1:0").expect("station");
    let station_port = listener.local_addr().expect("addr").port();
    let with_station = config(dir.path(), port, station_port, "");
    let without = with_station.split("[[bmp.stations]]").next().unwrap_or_default().to_string();
    let f = Focld::start(dir.path(), "f", &without);
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish_with(PEER, target, &our_open());
    f.wait_established(PEER, Duration::from_secs(10));
    s.send(&update_msg(&[], &attrs(), &[24, 198, 51, 100]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 1));
    assert_eq!(f.focl(&["bmp", "status"]).expect("status"), serde_json::json!([]));

    // Added: the station is told of the session that is already up, and of its route.
    std::fs::write(&f.config, &with_station).expect("config");
    f.focl(&["reload"]).expect("reload");
    let station = Station::listen(listener);
    assert!(station.until(BmpMsgType::PeerUpNotification, Duration::from_secs(10)).is_some(), "Peer Up");
    let (_, m) = station.until(BmpMsgType::RouteMonitoring, Duration::from_secs(5)).expect("the dump");
    let BmpMessageBody::RouteMonitoring(r) = m.message_body else { panic!() };
    let BgpMessage::Update(u) = r.bgp_message else { panic!() };
    assert_eq!(u.announced_prefixes[0].prefix.to_string(), "198.51.100.0/24");

    // Removed: a Termination, and the station is gone from the status.
    std::fs::write(&f.config, &without).expect("config");
    f.focl(&["reload"]).expect("reload");
    assert!(station.until(BmpMsgType::TerminationMessage, Duration::from_secs(10)).is_some(), "Termination");
    assert_eq!(f.focl(&["bmp", "status"]).expect("status"), serde_json::json!([]));
    let show = f.focl(&["peer", "show", PEER]).expect("peer show");
    assert_eq!((show["state"].as_str(), show["flaps"].as_u64()), (Some("Established"), Some(0)), "{show}");
}

/// Which view a Route Monitoring message is of, from its per-peer header (RFC 7854 §4.2,
/// RFC 8671 §4, RFC 9069 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum View {
    Pre,
    Post,
    Out,
    Loc,
}

fn view_of(m: &BmpMessage) -> View {
    let ph = m.per_peer_header.expect("per-peer header");
    match ph.peer_flags {
        PerPeerFlags::LocalRibPeerFlags(_) => {
            assert_eq!(ph.peer_type, BmpPeerType::LocalRib, "Loc-RIB flags only with peer type 3");
            View::Loc
        }
        PerPeerFlags::PeerFlags(f) if f.is_adj_rib_out() => {
            assert!(f.is_post_policy(), "focld's Adj-RIB-Out is what it sent: post-policy");
            View::Out
        }
        PerPeerFlags::PeerFlags(f) if f.is_post_policy() => View::Post,
        PerPeerFlags::PeerFlags(_) => View::Pre,
    }
}

/// What a station holds, view by view: prefix -> LOCAL_PREF; End-of-RIBs seen; every prefix
/// ever announced.
#[derive(Default)]
struct Views {
    routes: std::collections::BTreeMap<View, std::collections::BTreeMap<String, Option<u32>>>,
    eors: std::collections::BTreeMap<View, usize>,
    announced: std::collections::BTreeMap<View, std::collections::BTreeSet<String>>,
    /// How often each (view, prefix) was announced.
    times: std::collections::BTreeMap<(View, String), usize>,
    loc_rib_peer_up: Option<BmpMessage>,
}

impl Views {
    fn apply(&mut self, m: BmpMessage) {
        if m.common_header.msg_type == BmpMsgType::PeerUpNotification
            && m.per_peer_header.is_some_and(|h| h.peer_type == BmpPeerType::LocalRib)
        {
            self.loc_rib_peer_up = Some(m);
            return;
        }
        if m.common_header.msg_type != BmpMsgType::RouteMonitoring {
            return;
        }
        let view = view_of(&m);
        let BmpMessageBody::RouteMonitoring(r) = m.message_body else { return };
        let BgpMessage::Update(u) = r.bgp_message else { return };
        if u.is_end_of_rib() {
            *self.eors.entry(view).or_default() += 1;
            return;
        }
        let lp = u.attributes.iter().find_map(|a| match a {
            bgpkit_parser::models::AttributeValue::LocalPreference(x) => Some(*x),
            _ => None,
        });
        let (ann, wd) = nlri_of(&u);
        let routes = self.routes.entry(view).or_default();
        for w in wd {
            routes.remove(&w);
        }
        for a in ann {
            routes.insert(a.clone(), lp);
            *self.times.entry((view, a.clone())).or_default() += 1;
            self.announced.entry(view).or_default().insert(a);
        }
    }

    /// Take what the station got until it has been quiet for a second.
    fn gather(&mut self, station: &Station) {
        while let Ok((_, m)) = station.rx.recv_timeout(Duration::from_secs(1)) {
            self.apply(m);
        }
    }

    fn prefixes(&self, v: View) -> Vec<&str> {
        self.routes.get(&v).map(|r| r.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    fn local_pref(&self, v: View, prefix: &str) -> Option<u32> {
        self.routes.get(&v).and_then(|r| r.get(prefix).copied().flatten())
    }
}

#[test]
fn post_policy_follows_the_import_policy_adj_rib_out_has_the_o_flag_and_loc_rib_peer_type_3() {
    let dir = TempDir::new("bmp-views");
    let port = free_port("127.0.0.1");
    let station_port = free_port("127.0.0.1");
    let extra =
        "monitor = [\"pre-policy\", \"post-policy\", \"adj-rib-out\", \"loc-rib\"]\nstats_interval_secs = 0\n\n\
                 [[prefixes]]\nnetwork = \"192.0.2.0/24\"\n\n\
                 [sets.prefix]\nrefused = [\"203.0.113.0/24 orlonger\"]\n\
                 [[policy.in.term]]\nmatch = { prefix_in = \"refused\" }\naction = \"reject\"\n\
                 [[policy.in.term]]\nset = { local_pref = 200 }\naction = \"accept\"\n";
    let text = config(dir.path(), port, station_port, extra)
        .replace("hold_time_secs = 30", "hold_time_secs = 30\nimport = [\"in\"]");
    let f = Focld::start(dir.path(), "f", &text);
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish_with(PEER, target, &our_open());
    f.wait_established(PEER, Duration::from_secs(10));
    // One route the import policy accepts (and gives LOCAL_PREF 200), one it rejects.
    s.send(&update_msg(&[], &attrs(), &[24, 198, 51, 100]));
    s.send(&update_msg(&[], &attrs(), &[24, 203, 0, 113]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 2), "both routes are in the Adj-RIB-In");

    // A station that connects now gets each view's initial dump.
    let station = Station::listen(TcpListener::bind(("127.0.0.1", station_port)).expect("station"));
    assert!(station.until(BmpMsgType::InitiationMessage, Duration::from_secs(20)).is_some(), "Initiation");
    let mut v = Views::default();
    v.gather(&station);

    let up = v.loc_rib_peer_up.take().expect("a Peer Up for the Loc-RIB");
    let ph = up.per_peer_header.expect("header");
    assert_eq!((ph.peer_asn.to_u32(), ph.peer_bgp_id), (65001, Ipv4Addr::new(192, 0, 2, 1)), "focld itself");
    assert_eq!(ph.peer_flags, PerPeerFlags::LocalRibPeerFlags(LocalRibPeerFlags::empty()), "no F: not filtered");
    let BmpMessageBody::PeerUpNotification(u) = up.message_body else { panic!() };
    assert!(
        u.tlvs.iter().any(|t| t.info_type == PeerUpTlvType::VrTableName && t.info_value == "global"),
        "the table name TLV: {:?}",
        u.tlvs
    );
    let BgpMessage::Open(open) = &u.sent_open else { panic!("a synthesized OPEN") };
    assert_eq!(open.bgp_identifier, Ipv4Addr::new(192, 0, 2, 1));

    assert_eq!(v.prefixes(View::Pre), ["198.51.100.0/24", "203.0.113.0/24"], "pre-policy: as received");
    assert_eq!(v.prefixes(View::Post), ["198.51.100.0/24"], "post-policy: the rejected route is not there");
    assert_eq!(v.local_pref(View::Pre, "198.51.100.0/24"), None);
    assert_eq!(v.local_pref(View::Post, "198.51.100.0/24"), Some(200), "post-policy: the policy's set applied");
    assert_eq!(v.prefixes(View::Loc), ["198.51.100.0/24"], "Loc-RIB: the best paths");
    assert_eq!(v.local_pref(View::Loc, "198.51.100.0/24"), Some(200));
    assert_eq!(v.prefixes(View::Out), ["192.0.2.0/24"], "Adj-RIB-Out: what focld sent the peer");
    for view in [View::Pre, View::Post, View::Out, View::Loc] {
        assert_eq!(v.eors.get(&view), Some(&2), "{view:?}: an End-of-RIB per family after the dump");
    }
    // The dump equals the RIB: every route of `focl rib in`, and the Loc-RIB its accepted ones.
    let rib: Vec<String> = f.rib_in_prefixes(PEER);
    assert_eq!(v.prefixes(View::Pre), rib);
    // Each once: what was sent or received before the station connected is in the dump only.
    let twice: Vec<_> = v.times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "announced more than once: {twice:?}");

    // Live: one more of each, a withdrawal, and a new prefix of our own after a reload.
    s.send(&update_msg(&[], &attrs(), &[25, 198, 51, 100, 128]));
    s.send(&update_msg(&[], &attrs(), &[25, 203, 0, 113, 128]));
    s.send(&update_msg(&[24, 198, 51, 100], &[], &[]));
    let reloaded = std::fs::read_to_string(&f.config)
        .expect("config")
        .replace("[[prefixes]]\n", "[[prefixes]]\nnetwork = \"192.0.2.128/25\"\n\n[[prefixes]]\n");
    std::fs::write(&f.config, reloaded).expect("config");
    f.focl(&["reload"]).expect("reload");
    v.gather(&station);
    assert_eq!(v.prefixes(View::Pre), ["198.51.100.128/25", "203.0.113.0/24", "203.0.113.128/25"]);
    assert_eq!(v.prefixes(View::Post), ["198.51.100.128/25"]);
    assert_eq!(v.local_pref(View::Post, "198.51.100.128/25"), Some(200));
    assert_eq!(v.prefixes(View::Loc), ["198.51.100.128/25"], "the withdrawn best path left the Loc-RIB");
    assert_eq!(v.prefixes(View::Out), ["192.0.2.0/24", "192.0.2.128/25"], "the reload's announcement, as sent");
    let post = v.announced.get(&View::Post).cloned().unwrap_or_default();
    assert!(!post.iter().any(|p| p.starts_with("203.0.113.")), "a rejected route never shows post-policy: {post:?}");
    assert_eq!(v.prefixes(View::Pre), f.rib_in_prefixes(PEER), "pre-policy equals the RIB");
    let show = f.focl(&["peer", "show", PEER]).expect("peer show");
    assert_eq!(show["flaps"].as_u64(), Some(0), "{show}");
}

const SECOND: &str = "127.0.0.172";

/// What a station holds per (view, peer address): prefix -> AS path.
#[derive(Default)]
struct Paths {
    routes: std::collections::BTreeMap<(View, String), std::collections::BTreeMap<String, String>>,
    peer_downs: usize,
}

impl Paths {
    fn gather(&mut self, station: &Station) {
        while let Ok((_, m)) = station.rx.recv_timeout(Duration::from_secs(1)) {
            match m.common_header.msg_type {
                BmpMsgType::PeerDownNotification => self.peer_downs += 1,
                BmpMsgType::InitiationMessage => {
                    // A new connection: the station starts from nothing.
                    self.routes.clear();
                }
                BmpMsgType::RouteMonitoring => {
                    let view = view_of(&m);
                    let peer = m.per_peer_header.expect("header").peer_ip.to_string();
                    let BmpMessageBody::RouteMonitoring(r) = m.message_body else { continue };
                    let BgpMessage::Update(u) = r.bgp_message else { continue };
                    let path = u.attributes.as_path().map(|p| p.to_string()).unwrap_or_default();
                    let (ann, wd) = nlri_of(&u);
                    let routes = self.routes.entry((view, peer)).or_default();
                    for w in wd {
                        routes.remove(&w);
                    }
                    for a in ann {
                        routes.insert(a, path.clone());
                    }
                }
                _ => {}
            }
        }
    }

    fn get(&self, view: View, peer: &str, prefix: &str) -> Option<&str> {
        self.routes.get(&(view, peer.to_string())).and_then(|r| r.get(prefix)).map(String::as_str)
    }
}

#[test]
fn loc_rib_and_adj_rib_out_follow_best_path_changes_and_a_policy_reload_sends_post_policy_again() {
    let dir = TempDir::new("bmp-best");
    let port = free_port("127.0.0.1");
    let listener = TcpListener::bind("127.0.0.1:0").expect("station");
    let station_port = listener.local_addr().expect("addr").port();
    let station = Station::listen(listener);
    let extra = format!(
        "monitor = [\"post-policy\", \"adj-rib-out\", \"loc-rib\"]\nstats_interval_secs = 0\n\n\
         [[peers]]\nname = \"second\"\naddress = \"{SECOND}\"\nremote_as = 65020\npassive = true\n\
         import = [\"in\"]\nexport = [\"out\"]\n\n\
         [[policy.in.term]]\naction = \"accept\"\n[[policy.out.term]]\naction = \"accept\"\n"
    );
    let text = config(dir.path(), port, station_port, &extra)
        .replace("hold_time_secs = 30", "hold_time_secs = 30\nimport = [\"in\"]\nexport = [\"out\"]");
    let f = Focld::start(dir.path(), "f", &text);
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut a = RawSpeaker::establish_with(PEER, target, &our_open());
    let caps = Capabilities {
        families: Family::ALL.to_vec(),
        route_refresh: true,
        four_octet_as: Some(65020),
        ..Default::default()
    };
    let mut b =
        RawSpeaker::establish_with(SECOND, target, &OpenMsg::new(65020, 90, Ipv4Addr::new(10, 0, 0, 172), caps));
    f.wait_established(PEER, Duration::from_secs(10));
    f.wait_established(SECOND, Duration::from_secs(10));
    // Both drain what focld sends them (the exports).
    let drain = |mut s: RawSpeaker| std::thread::spawn(move || while s.recv().is_some() {});
    let a_reader = RawSpeaker::from_stream(a.stream.try_clone().expect("clone"));
    let b_reader = RawSpeaker::from_stream(b.stream.try_clone().expect("clone"));
    drain(a_reader);
    drain(b_reader);

    // The same prefix from both: the first with a longer AS path, the second shorter (best).
    let mut long = vec![0x40, 1, 1, 0];
    long.extend_from_slice(&[0x40, 2, 14, 2, 3, 0, 0, 0xfd, 0xf2, 0, 0, 0xfd, 0xfc, 0, 0, 0xfe, 0x06]);
    long.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 10]);
    a.send(&update_msg(&[], &long, &[24, 198, 51, 100, 24, 203, 0, 113]));
    let short = [0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xfc, 0x40, 3, 4, 192, 0, 2, 20];
    b.send(&update_msg(&[], &short, &[24, 198, 51, 100]));
    let mut p = Paths::default();
    p.gather(&station);
    let x = "198.51.100.0/24";
    assert_eq!(p.get(View::Loc, "0.0.0.0", x), Some("65020"), "Loc-RIB: the shorter path is best");
    assert_eq!(p.get(View::Post, PEER, x), Some("65010 65020 65030"));
    assert_eq!(p.get(View::Post, SECOND, x), Some("65020"));
    assert_eq!(p.get(View::Out, PEER, x), Some("65001 65020"), "exported to the first, our AS prepended");
    assert_eq!(p.get(View::Out, SECOND, x), None, "not back to the neighbor it came from");
    let y = "203.0.113.0/24";
    assert_eq!(p.get(View::Out, SECOND, y), Some("65001 65010 65020 65030"), "the first's other route, exported");

    // The second session ends: its routes go (a walk of the Loc-RIB, not one UPDATE).
    drop(b);
    assert!(wait_for(Duration::from_secs(10), || f.peer_state(SECOND) != "Established"));
    p.gather(&station);
    assert!(p.peer_downs >= 1, "the second's Peer Down");
    assert_eq!(p.get(View::Loc, "0.0.0.0", x), Some("65010 65020 65030"), "Loc-RIB: the first's path now");
    assert_eq!(p.get(View::Out, PEER, x), None, "no longer sent to the first: its own route is best");

    // A reload whose import policy now rejects the prefix: post-policy changes for routes
    // already in, so the station is sent everything again, and the route is nowhere.
    let reloaded = std::fs::read_to_string(&f.config).expect("config").replace(
        "[[policy.in.term]]\naction = \"accept\"\n",
        "[[policy.in.term]]\nmatch = { prefix_len = 24 }\naction = \"reject\"\n",
    );
    std::fs::write(&f.config, reloaded).expect("config");
    f.focl(&["reload"]).expect("reload");
    let again = station.until(BmpMsgType::InitiationMessage, Duration::from_secs(15));
    assert!(again.is_some(), "a new connection after the reload: {}", f.log_text());
    p.routes.clear();
    p.gather(&station);
    assert_eq!(p.get(View::Post, PEER, x), None, "post-policy: rejected now");
    assert_eq!(p.get(View::Loc, "0.0.0.0", x), None, "Loc-RIB: no best path left");
    assert_eq!(p.get(View::Post, PEER, y), None, "post-policy: rejected now");
    assert_eq!(f.rib_in_prefixes(PEER), [x, y], "still in the Adj-RIB-In");
    let show = f.focl(&["peer", "show", PEER]).expect("peer show");
    assert_eq!((show["state"].as_str(), show["flaps"].as_u64()), (Some("Established"), Some(0)), "{show}");
}
