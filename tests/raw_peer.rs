//! focld against a hand-driven BGP speaker on loopback: crafted UPDATEs (the ADD-PATH guessing
//! regression), OPEN errors answered with the right NOTIFICATION, unknown sources rejected.

mod common;

use common::*;
use focl::prefix::Family;
use focl::wire::frame::MsgType;
use focl::wire::open::{Capabilities, OpenMsg};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

fn config(dir: &std::path::Path, port: u16, peer: &str, remote_as: u32) -> String {
    format!(
        r#"
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:{port}"
control_socket = "{dir}/f.sock"
log_level = "debug"

[[peers]]
address = "{peer}"
remote_as = {remote_as}
passive = true

[[prefixes]]
network = "203.0.113.0/24"
"#,
        dir = dir.display()
    )
}

/// ORIGIN IGP, AS_PATH [65010] (4-octet), NEXT_HOP 127.0.0.3.
fn v4_attrs() -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0];
    a.extend_from_slice(&[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xf2]);
    a.extend_from_slice(&[0x40, 3, 4, 127, 0, 0, 3]);
    a
}

/// 0.0.0.0/0, 10.0.0.0/8, 11.0.0.0/8, 12.0.0.0/8: a default route first makes a parser that
/// guesses ADD-PATH read one prefix 8.12.0.0/11 with path id 526856.
const FOUR_V4: [u8; 7] = [0, 8, 10, 8, 11, 8, 12];

#[test]
fn default_route_first_in_nlri_is_stored_as_four_prefixes_v4_and_v6() {
    let dir = TempDir::new("raw");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, "127.0.0.3", 65010));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish("127.0.0.3", remote, 65010, Ipv4Addr::new(192, 0, 2, 3));
    f.wait_established("127.0.0.3", Duration::from_secs(5));

    s.send(&update_msg(&[], &v4_attrs(), &FOUR_V4));
    let want = ["0.0.0.0/0", "10.0.0.0/8", "11.0.0.0/8", "12.0.0.0/8"];
    assert!(wait_for(Duration::from_secs(5), || f.rib_in_prefixes("127.0.0.3") == want), "{:?}", f.rib_in("127.0.0.3"));
    let routes = f.rib_in("127.0.0.3");
    assert!(routes.iter().all(|r| r["as_path"] == "65010" && r["next_hop"] == "127.0.0.3"));
    // The four prefixes of the UPDATE share one interned attribute set.
    assert_eq!(f.focl(&["rib", "summary"]).unwrap()["attribute_sets"], 1);

    // Withdraw 0.0.0.0/0 and 11.0.0.0/8 in the withdrawn-routes field, default route first.
    s.send(&update_msg(&[0, 8, 11], &[], &[]));
    assert!(
        wait_for(Duration::from_secs(5), || f.rib_in_prefixes("127.0.0.3") == ["10.0.0.0/8", "12.0.0.0/8"]),
        "{:?}",
        f.rib_in_prefixes("127.0.0.3")
    );

    // IPv6: MP_REACH_NLRI with ::/0, 2001:db8::/32, 2001:db9::/32 (RFC 4760 §3).
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&"2001:db8::3".parse::<std::net::Ipv6Addr>().unwrap().octets());
    mp.push(0);
    mp.extend_from_slice(&[0, 32, 0x20, 0x01, 0x0d, 0xb8, 32, 0x20, 0x01, 0x0d, 0xb9]);
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xf2];
    attrs.extend_from_slice(&[0x80, 14, mp.len() as u8]);
    attrs.extend_from_slice(&mp);
    s.send(&update_msg(&[], &attrs, &[]));
    let want6 = ["10.0.0.0/8", "12.0.0.0/8", "2001:db8::/32", "2001:db9::/32", "::/0"];
    assert!(
        wait_for(Duration::from_secs(5), || f.rib_in_prefixes("127.0.0.3") == want6),
        "{:?}",
        f.rib_in_prefixes("127.0.0.3")
    );
    let routes = f.rib_in("127.0.0.3");
    assert!(routes
        .iter()
        .filter(|r| r["prefix"].as_str().is_some_and(|p| p.contains(':')))
        .all(|r| r["next_hop"] == "2001:db8::3"));

    // MP_UNREACH_NLRI withdrawing ::/0 and 2001:db9::/32.
    let unreach = [0u8, 2, 1, 0, 32, 0x20, 0x01, 0x0d, 0xb9];
    let mut attrs = vec![0x80, 15, unreach.len() as u8];
    attrs.extend_from_slice(&unreach);
    s.send(&update_msg(&[], &attrs, &[]));
    let left = ["10.0.0.0/8", "12.0.0.0/8", "2001:db8::/32"];
    assert!(
        wait_for(Duration::from_secs(5), || f.rib_in_prefixes("127.0.0.3") == left),
        "{:?}",
        f.rib_in_prefixes("127.0.0.3")
    );

    // The session stayed up throughout, and focld announced its own prefix to us.
    assert_eq!(f.peer_state("127.0.0.3"), "Established");
    let mut saw_announcement = false;
    s.stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    while let Some((ty, raw)) = s.recv() {
        if ty == MsgType::Update {
            let u = focl::wire::update::parse_update(
                &raw[19..],
                focl::wire::update::Session { four_octet_as: true, ibgp: false },
            )
            .unwrap();
            saw_announcement |= u.announced.iter().any(|p| p.to_string() == "203.0.113.0/24");
        }
        if saw_announcement {
            break;
        }
    }
    assert!(saw_announcement, "focld announced 203.0.113.0/24");
}

/// Send `open`, expect a NOTIFICATION back; returns (code, subcode, data).
fn open_answer(remote: SocketAddr, local: &str, open: &OpenMsg) -> (u8, u8, Vec<u8>) {
    let mut s = raw(local, remote);
    s.send(&open.encode());
    loop {
        let Some((ty, raw)) = s.recv() else { panic!("connection closed without NOTIFICATION") };
        if ty == MsgType::Notification {
            return (raw[19], raw[20], raw[21..].to_vec());
        }
    }
}

fn raw(local: &str, remote: SocketAddr) -> RawSpeaker {
    let stream = connect_from(local, remote);
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    RawSpeaker::from_stream(stream)
}

#[test]
fn bad_opens_get_the_rfc4271_notification() {
    let dir = TempDir::new("open");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, "127.0.0.4", 65010));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let caps =
        |asn| Capabilities { families: vec![Family::Ipv4Unicast], four_octet_as: Some(asn), ..Default::default() };

    // Wrong peer AS: OPEN Message Error / Bad Peer AS (2/2).
    let o = OpenMsg::new(65099, 90, Ipv4Addr::new(192, 0, 2, 4), caps(65099));
    let (c, s, _) = open_answer(remote, "127.0.0.4", &o);
    assert_eq!((c, s), (2, 2));

    // Hold time 2: Unacceptable Hold Time (2/6).
    let o = OpenMsg::new(65010, 2, Ipv4Addr::new(192, 0, 2, 4), caps(65010));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut got = None;
    while std::time::Instant::now() < deadline {
        let (c, s, _) = open_answer(remote, "127.0.0.4", &o);
        if (c, s) != (6, 5) {
            got = Some((c, s));
            break;
        }
        std::thread::sleep(Duration::from_millis(500)); // refused while idle: try again
    }
    assert_eq!(got, Some((2, 6)));
    assert!(f.log_text().contains("Unacceptable Hold Time"), "logged with its IANA name");
}

#[test]
fn connection_from_an_unknown_address_is_rejected_with_cease_5() {
    let dir = TempDir::new("unknown");
    let port = free_port("127.0.0.1");
    let _f = Focld::start(dir.path(), "f", &config(dir.path(), port, "127.0.0.5", 65010));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = raw("127.0.0.6", remote);
    let (ty, raw) = s.recv().expect("a NOTIFICATION");
    assert_eq!(ty, MsgType::Notification);
    assert_eq!((raw[19], raw[20]), (6, 5), "Cease / Connection Rejected");
    assert!(s.recv().is_none(), "then closed");
}

/// RFC 4271 §6.8 driven by hand: focld has opened a connection to us (OpenSent) when we open a
/// second one and send our OPEN on it. The higher BGP identifier's connection survives and
/// the other gets Cease / Connection Collision Resolution.
fn collision_case(tag: &str, our_ip: &str, our_id: Ipv4Addr, peer_wins: bool) {
    use std::net::TcpListener;
    let dir = TempDir::new(tag);
    let port = free_port("127.0.0.1");
    let raw_listener = TcpListener::bind((our_ip, 0)).unwrap();
    let raw_port = raw_listener.local_addr().unwrap().port();
    let cfg = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.100\"\nlisten_addr = \"127.0.0.1:{port}\"\ncontrol_socket = \"{}/f.sock\"\nlog_level = \"debug\"\n\n\
         [[peers]]\naddress = \"{our_ip}\"\nremote_as = 65010\nremote_port = {raw_port}\nconnect_retry_secs = 30\n",
        dir.path().display()
    );
    let f = Focld::start(dir.path(), "f", &cfg);
    // 1. focld's own connection; read its OPEN, answer nothing yet.
    let (c1, _) = raw_listener.accept().unwrap();
    c1.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut first = RawSpeaker::from_stream(c1);
    assert_eq!(first.recv().map(|m| m.0), Some(MsgType::Open));
    // 2. Our connection to focld: it answers with its OPEN; we send ours.
    let mut second = raw(our_ip, format!("127.0.0.1:{port}").parse().unwrap());
    assert_eq!(second.recv().map(|m| m.0), Some(MsgType::Open));
    let caps = Capabilities { families: vec![Family::Ipv4Unicast], four_octet_as: Some(65010), ..Default::default() };
    let open = OpenMsg::new(65010, 90, our_id, caps);
    second.send(&open.encode());
    let (loser, winner) = if peer_wins { (&mut first, &mut second) } else { (&mut second, &mut first) };
    let (ty, m) = loser.recv().expect("a NOTIFICATION on the losing connection");
    assert_eq!((ty, m[19], m[20]), (MsgType::Notification, 6, 7), "Cease / Connection Collision Resolution");
    if !peer_wins {
        winner.send(&open.encode()); // the surviving connection is still in OpenSent
    }
    assert_eq!(winner.recv().map(|m| m.0), Some(MsgType::Keepalive));
    winner.send(&focl::wire::frame::keepalive());
    f.wait_established(our_ip, Duration::from_secs(5));
    assert!(f.log_text().contains("connection collision"), "logged");
}

#[test]
fn collision_keeps_the_peers_connection_when_its_id_is_higher() {
    collision_case("coll-hi", "127.0.0.61", Ipv4Addr::new(192, 0, 2, 200), true);
}

#[test]
fn collision_keeps_our_connection_when_our_id_is_higher() {
    collision_case("coll-lo", "127.0.0.62", Ipv4Addr::new(192, 0, 2, 7), false);
}
