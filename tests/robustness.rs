//! Peers focld does not control: malformed UPDATEs handled per RFC 7606 over a live session,
//! hostile byte streams answered with the RFC's NOTIFICATION, a flood and a peer that never
//! reads, max-prefix, and another session that stays healthy through all of it.

mod common;

use common::*;
use focl::wire::frame::MsgType;
use focl::wire::open::{Capabilities, OpenMsg};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// focld on 127.0.0.1:port with passive peers at the given addresses (AS 65000 + last octet).
fn config(dir: &Path, port: u16, peers: &[(&str, &str)], extra_global: &str, prefixes: usize) -> String {
    let mut s = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\n\
         control_socket = \"{d}/f.sock\"\nlog_level = \"info\"\n{extra_global}\n",
        d = dir.display()
    );
    for (addr, extra) in peers {
        let last: u32 = addr.rsplit('.').next().and_then(|o| o.parse().ok()).unwrap_or(0);
        s.push_str(&format!(
            "\n[[peers]]\naddress = \"{addr}\"\nremote_as = {}\npassive = true\nhold_time_secs = 30\n{extra}\n",
            65000 + last
        ));
    }
    for i in 0..prefixes {
        s.push_str(&format!(
            "\n[[prefixes]]\nnetwork = \"10.{}.{}.0/24\"\nnext_hop = \"192.0.2.1\"\n",
            100 + i / 256,
            i % 256
        ));
    }
    s
}

/// ORIGIN IGP, AS_PATH [as] (4-octet), NEXT_HOP 192.0.2.9.
fn attrs(asn: u32) -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1];
    a.extend_from_slice(&asn.to_be_bytes());
    a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 9]);
    a
}

fn show(f: &Focld, peer: &str) -> Value {
    f.request("peer_show", serde_json::json!({"peer": peer})).unwrap_or(Value::Null)
}

/// Read messages until a NOTIFICATION (code, subcode, data) or the end of the stream.
fn notification(s: &mut RawSpeaker) -> Option<(u8, u8, Vec<u8>)> {
    while let Some((ty, raw)) = s.recv() {
        if ty == MsgType::Notification {
            return Some((raw[19], raw[20], raw[21..].to_vec()));
        }
    }
    None
}

#[test]
fn malformed_updates_are_handled_per_rfc7606_over_a_live_session() {
    let dir = TempDir::new("rob-7606");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, &[("127.0.0.71", "")], "", 0));
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish("127.0.0.71", target, 65071, Ipv4Addr::new(10, 0, 0, 71));
    f.wait_established("127.0.0.71", Duration::from_secs(5));
    let good = attrs(65071);
    s.send(&update_msg(&[], &good, &[24, 10, 1, 2, 24, 10, 1, 3]));
    let both = wait_for(Duration::from_secs(5), || f.rib_in_prefixes("127.0.0.71") == ["10.1.2.0/24", "10.1.3.0/24"]);
    assert!(both, "{:?}", f.rib_in_prefixes("127.0.0.71"));

    // Treat-as-withdraw: ORIGIN with the optional bit set, re-announcing 10.1.2.0/24.
    let mut bad_flags = good.clone();
    bad_flags[0] = 0xc0;
    s.send(&update_msg(&[], &bad_flags, &[24, 10, 1, 2]));
    // Attribute discard: ATOMIC_AGGREGATE with a value; the route 10.1.4.0/24 is kept.
    let mut discard = good.clone();
    discard.extend_from_slice(&[0x40, 6, 1, 0]);
    s.send(&update_msg(&[], &discard, &[24, 10, 1, 4]));
    // Treat-as-withdraw: an AS_PATH segment overrunning its attribute, for 10.1.3.0/24.
    let mut bad_path = good.clone();
    bad_path[8] = 3;
    s.send(&update_msg(&[], &bad_path, &[24, 10, 1, 3]));
    let ok = wait_for(Duration::from_secs(5), || f.rib_in_prefixes("127.0.0.71") == ["10.1.4.0/24"]);
    assert!(ok, "the two treated as withdraw are gone, the discarded one stays: {:?}", f.rib_in_prefixes("127.0.0.71"));
    let d = show(&f, "127.0.0.71");
    assert_eq!(d["state"], "Established", "the session stays up");
    assert_eq!(d["update_errors"]["treat_as_withdraw"], 2, "{d}");
    assert_eq!(d["update_errors"]["attribute_discard"], 1, "{d}");
    assert!(d["update_errors"]["last"].as_str().unwrap_or("").starts_with("AS_PATH: "), "{d}");
    let log = f.log_text();
    let lines = log.lines().filter(|l| l.contains("malformed UPDATE")).count();
    assert_eq!(lines, 1, "one log line a minute per neighbor:\n{log}");
    let route = &f.rib_in("127.0.0.71")[0];
    assert_eq!(route["as_path"], "65071");

    // MP_REACH_NLRI with a next hop length IPv6 cannot have: the NLRI cannot be located, reset.
    let mut mp = good[..13].to_vec();
    let reach = [0u8, 2, 1, 4, 192, 0, 2, 1, 0, 32, 0x20, 0x01, 0x0d, 0xb8];
    mp.extend_from_slice(&[0x80, 14, reach.len() as u8]);
    mp.extend_from_slice(&reach);
    s.send(&update_msg(&[], &mp, &[]));
    let n = notification(&mut s);
    assert_eq!(n.map(|(c, sc, _)| (c, sc)), Some((3, 9)), "UPDATE Message Error / Optional Attribute Error");
    let down = wait_for(Duration::from_secs(5), || show(&f, "127.0.0.71")["state"] != "Established");
    assert!(down);
    assert!(f.rib_in_prefixes("127.0.0.71").is_empty(), "routes of the reset session are gone");
}

/// Connect to focld from `local`, send our OPEN (hold 3 s) and read focld's OPEN.
fn open_session(local: &str, target: SocketAddr, asn: u32) -> RawSpeaker {
    let stream = connect_from(local, target);
    stream.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let mut s = RawSpeaker::from_stream(stream);
    let caps = Capabilities {
        families: focl::prefix::Family::ALL.to_vec(),
        route_refresh: true,
        four_octet_as: Some(asn),
        ..Default::default()
    };
    s.send(&OpenMsg::new(asn, 3, Ipv4Addr::new(10, 0, 0, 72), caps).encode());
    let (ty, _) = s.recv().expect("OPEN from focld");
    assert_eq!(ty, MsgType::Open);
    s
}

#[test]
fn hostile_byte_streams_get_the_rfc_notification_and_other_peers_stay_healthy() {
    let dir = TempDir::new("rob-hostile");
    let (port, port_b) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let hostile = "127.0.0.72";
    let cfg = config(dir.path(), port, &[(hostile, ""), ("127.0.0.2", "")], "", 0).replace(
        "address = \"127.0.0.2\"\nremote_as = 65002\npassive = true",
        &format!("address = \"127.0.0.2\"\nremote_as = 65002\nremote_port = {port_b}"),
    );
    let f = Focld::start(dir.path(), "f", &cfg);
    // A well-behaved neighbor: a second focld.
    let b_cfg = format!(
        "[global]\nasn = 65002\nrouter_id = \"192.0.2.2\"\nlisten_addr = \"127.0.0.2:{port_b}\"\ncontrol_socket = \"{d}/b.sock\"\n\n\
         [[peers]]\naddress = \"127.0.0.1\"\nremote_as = 65001\npassive = true\n\n[[prefixes]]\nnetwork = \"198.51.100.0/24\"\nnext_hop = \"192.0.2.2\"\n",
        d = dir.path().display()
    );
    let b = Focld::start(dir.path(), "b", &b_cfg);
    f.wait_established("127.0.0.2", Duration::from_secs(20));
    let target = SocketAddr::from(([127, 0, 0, 1], port));

    // Garbage instead of the KEEPALIVE: a header whose marker is not all ones.
    let mut s = open_session(hostile, target, 65072);
    s.send(&[0x12; 19]);
    assert_eq!(notification(&mut s).map(|n| (n.0, n.1)), Some((1, 1)), "Connection Not Synchronized");
    // A zero marker.
    let mut s = open_session(hostile, target, 65072);
    let mut zero = vec![0u8; 16];
    zero.extend_from_slice(&[0, 19, 4]);
    s.send(&zero);
    assert_eq!(notification(&mut s).map(|n| (n.0, n.1)), Some((1, 1)), "zero marker");
    // 4097 bytes without the extended message capability: Bad Message Length, the length as data.
    let mut s = open_session(hostile, target, 65072);
    s.send(&focl::wire::frame::keepalive());
    let mut long = vec![0xff; 16];
    long.extend_from_slice(&4097u16.to_be_bytes());
    long.push(2);
    long.resize(4097, 0);
    s.send(&long);
    let n = notification(&mut s);
    assert_eq!(n, Some((1, 2, vec![0x10, 0x01])), "Bad Message Length with the length");
    // Half a message, then silence: the (3 s) hold timer expires.
    let mut s = open_session(hostile, target, 65072);
    s.send(&focl::wire::frame::keepalive());
    s.send(&[0xff; 10]);
    let t = Instant::now();
    assert_eq!(notification(&mut s).map(|n| (n.0, n.1)), Some((4, 0)), "Hold Timer Expired");
    assert!(t.elapsed() < Duration::from_secs(8), "within the hold time: {:?}", t.elapsed());

    // A flood of 1,000,000 UPDATEs from a peer that never reads what focld sends.
    let mut s = RawSpeaker::establish(hostile, target, 65072, Ipv4Addr::new(10, 0, 0, 72));
    let a = attrs(65072);
    let mut burst = Vec::new();
    for i in 0..1000u32 {
        burst.extend_from_slice(&update_msg(&[], &a, &[24, 10, (i >> 8) as u8, i as u8]));
    }
    let flood_start = Instant::now();
    let mut sent = 0;
    let mut slowest = Duration::ZERO;
    while sent < 1_000_000 {
        s.send(&burst);
        sent += 1000;
        if sent % 100_000 == 0 {
            // The other session and the control socket stay responsive throughout.
            let t = Instant::now();
            let state = show(&f, "127.0.0.2")["state"].clone();
            slowest = slowest.max(t.elapsed());
            assert_eq!(state, "Established", "the healthy session after {sent} UPDATEs");
        }
        assert!(flood_start.elapsed() < Duration::from_secs(300), "the flood takes too long");
    }
    let all = wait_for(Duration::from_secs(120), || {
        show(&f, hostile)["messages_received"]["update"].as_u64() == Some(1_000_000)
    });
    assert!(all, "every UPDATE was read: {}", show(&f, hostile));
    assert_eq!(f.rib_in("127.0.0.72").len(), 1000);
    eprintln!("flood: 1,000,000 UPDATEs in {:?}; slowest peer_show during it {slowest:?}", flood_start.elapsed());
    assert_eq!(show(&f, hostile)["state"], "Established");
    assert_eq!(show(&f, "127.0.0.2")["flaps"], 0, "the healthy session never flapped");
    assert_eq!(show(&b, "127.0.0.1")["flaps"], 0, "nor did its other end");
    assert_eq!(f.rib_in_prefixes("127.0.0.2"), ["198.51.100.0/24"]);
    assert!(!f.log_text().contains("panicked"));
}

#[test]
fn a_peer_that_never_reads_is_dropped_by_the_send_hold_timer() {
    let dir = TempDir::new("rob-sendhold");
    let port = free_port("127.0.0.1");
    let cfg = config(dir.path(), port, &[("127.0.0.73", "send_hold_time_secs = 4")], "", 5_000);
    let f = Focld::start(dir.path(), "f", &cfg);
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish("127.0.0.73", target, 65073, Ipv4Addr::new(10, 0, 0, 73));
    f.wait_established("127.0.0.73", Duration::from_secs(5));
    // Ask for the 5,000 prefixes again and again (ROUTE-REFRESH, RFC 2918) and read nothing:
    // focld has megabytes to send that nobody takes. KEEPALIVEs keep its hold timer happy.
    let refresh = [0xffu8; 16].iter().copied().chain([0, 23, 5, 0, 1, 0, 1]).collect::<Vec<u8>>();
    let started = Instant::now();
    let gone = wait_for(Duration::from_secs(60), || {
        for _ in 0..50 {
            let _ = s.stream.write_all(&refresh);
        }
        let _ = s.stream.write_all(&focl::wire::frame::keepalive());
        f.log_text().contains("send hold timer expired")
    });
    assert!(gone, "dropped by the send hold timer; log:\n{}", f.log_text());
    eprintln!("send hold timer fired {:?} after the peer stopped reading", started.elapsed());
    let d = show(&f, "127.0.0.73");
    assert_eq!(d["last_error"]["code"], 8, "Send Hold Timer Expired (RFC 9687): {d}");
    assert!(d["flaps"].as_u64() >= Some(1), "{d}");
    let mut rest = Vec::new();
    let _ = s.stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = s.stream.read_to_end(&mut rest);
}

#[test]
fn max_prefixes_shuts_the_session_down_until_restart_or_reset() {
    let dir = TempDir::new("rob-maxpfx");
    let port = free_port("127.0.0.1");
    let peers = [
        ("127.0.0.74", "max_prefixes = 100\nmax_prefixes_restart_secs = 3"),
        ("127.0.0.75", "max_prefixes = 100\nmax_prefixes_warning_only = true"),
    ];
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, &peers, "", 0));
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let nlri: Vec<u8> = (0..101u32).flat_map(|i| [24, 10, 2, i as u8]).collect();

    let mut warn = RawSpeaker::establish("127.0.0.75", target, 65075, Ipv4Addr::new(10, 0, 0, 75));
    warn.send(&update_msg(&[], &attrs(65075), &nlri));
    let held = wait_for(Duration::from_secs(5), || f.rib_in("127.0.0.75").len() == 101);
    assert!(held, "warning only: all 101 kept");
    assert!(f.log_text().contains("over max_prefixes 100 (warning only)"));

    let mut s = RawSpeaker::establish("127.0.0.74", target, 65074, Ipv4Addr::new(10, 0, 0, 74));
    s.send(&update_msg(&[], &attrs(65074), &nlri[..400]));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(show(&f, "127.0.0.74")["state"], "Established", "100 is the limit, not over it");
    s.send(&update_msg(&[], &attrs(65074), &nlri[400..]));
    assert_eq!(notification(&mut s).map(|n| (n.0, n.1)), Some((6, 1)), "Cease / Maximum Number of Prefixes Reached");
    let d = show(&f, "127.0.0.74");
    assert!(d["hint"].as_str().unwrap_or("").contains("over max_prefixes 100"), "{d}");
    // Shown as a max-prefix shutdown with its restart, not as an operator's disable.
    assert_eq!((d["down_reason"].as_str(), d["disabled"].as_bool()), (Some("max-prefix"), Some(false)), "{d}");
    assert!(d["restart_in_secs"].as_u64().is_some_and(|s| s <= 3), "{d}");
    assert!(f.rib_in("127.0.0.74").is_empty());
    // It refuses the peer until the restart time has passed, then takes it again.
    let early = connect_from("127.0.0.74", target);
    let mut early = RawSpeaker::from_stream(early);
    let _ = early.stream.set_read_timeout(Some(Duration::from_secs(2)));
    assert!(early.recv().is_none_or(|(ty, _)| ty == MsgType::Notification), "no session while held down");
    std::thread::sleep(Duration::from_secs(3));
    let again =
        std::panic::catch_unwind(|| RawSpeaker::establish("127.0.0.74", target, 65074, Ipv4Addr::new(10, 0, 0, 74)));
    assert!(again.is_ok(), "a session after the restart time; log:\n{}", f.log_text());
    f.wait_established("127.0.0.74", Duration::from_secs(5));
    assert_eq!(show(&f, "127.0.0.75")["state"], "Established", "the other peer was never touched");
    drop(warn);
}

#[test]
fn a_whole_large_table_streams_through_focl_rib_in_and_is_refused_in_one_piece_never_truncated() {
    let dir = TempDir::new("rob-ribin");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, &[("127.0.0.76", "")], "", 0));
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish("127.0.0.76", target, 65076, Ipv4Addr::new(10, 0, 0, 76));
    let a = attrs(65076);
    // 51,000 /24s under 10.0.0.0/8 and 11.0.0.0/8, 1,000 an UPDATE.
    for m in 0..51u32 {
        let nlri: Vec<u8> = (0..1000u32)
            .flat_map(|k| {
                let n = m * 1000 + k;
                [24, 10 + (n >> 16) as u8, (n >> 8) as u8, n as u8]
            })
            .collect();
        s.send(&update_msg(&[], &a, &nlri));
    }
    let all = wait_for(Duration::from_secs(30), || {
        f.query("rib_summary").is_ok_and(|v| v["routes"]["ipv4_unicast"] == 51_000)
    });
    assert!(all, "{:?}", f.query("rib_summary"));
    // Asked in one piece (no "stream"), the answer is refused with a hint, never cut off.
    let err = f.request("rib_in", serde_json::json!({"peer": "127.0.0.76"})).expect_err("too many for one piece");
    assert!(err.contains("more than 50000 routes match; give a prefix"), "{err}");
    // focl asks for a stream: every route arrives, in prefix order, and the count says so.
    let all = f.focl(&["rib", "in", "127.0.0.76"]).expect("the whole table streams");
    let routes = all["routes"].as_array().cloned().unwrap_or_default();
    assert_eq!((routes.len(), all["count"].as_u64()), (51_000, Some(51_000)));
    assert_eq!(
        (routes[0]["prefix"].as_str(), routes[50_999]["prefix"].as_str()),
        (Some("10.0.0.0/24"), Some("10.199.55.0/24"))
    );
    let some = f.focl(&["rib", "in", "127.0.0.76", "10.0.0.0/16"]).expect("a prefix narrows it");
    assert_eq!(some["routes"].as_array().map(Vec::len), Some(256));
}

#[test]
fn hold_timer_expires_when_a_peer_stalls_mid_message() {
    let dir = TempDir::new("rob-stall");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, &[("127.0.0.74", "")], "", 0));
    // Our OPEN says hold 3 s: the session's hold time.
    let mut s = open_session("127.0.0.74", SocketAddr::from(([127, 0, 0, 1], port)), 65074);
    s.send(&focl::wire::frame::keepalive());
    f.wait_established("127.0.0.74", Duration::from_secs(5));
    // A header announcing a 4096-byte UPDATE and 10 bytes of its body, then nothing: TCP
    // still acknowledges, but no whole message ever arrives.
    let mut partial = vec![0xffu8; 16];
    partial.extend_from_slice(&4096u16.to_be_bytes());
    partial.push(MsgType::Update as u8);
    partial.extend_from_slice(&[0; 10]);
    s.send(&partial);
    let stalled = Instant::now();
    let mut got = None;
    // focld's KEEPALIVEs keep arriving until it gives up; bounded in time either way.
    while got.is_none() && stalled.elapsed() < Duration::from_secs(20) {
        match s.recv() {
            Some((MsgType::Notification, raw)) => got = Some((raw[19], raw[20], stalled.elapsed())),
            Some(_) => {}
            None => break,
        }
    }
    let (code, subcode, after) = got.expect("a NOTIFICATION within 20 s");
    assert_eq!((code, subcode), (4, 0), "Hold Timer Expired");
    // Hold time 3 s, postponed at most once by at most the hold time: well within 3 + 5 s.
    assert!(after < Duration::from_secs(8), "after {after:?}");
    assert_ne!(show(&f, "127.0.0.74")["state"], "Established");
}
