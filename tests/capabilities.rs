//! Session capabilities against a hand-driven BGP speaker on loopback: extended messages with a
//! real 36,950-byte UPDATE (RFC 8654), Enhanced Route Refresh both ways (RFC 7313), BGP Role
//! and Only-to-Customer (RFC 9234), and the capability table of `focl peer show`.

mod common;

use common::*;
use focl::prefix::{Family, Prefix};
use focl::wire::frame::{self, MsgType, RefreshKind};
use focl::wire::open::{Capabilities, OpenMsg};
use focl::wire::update::{self, OutRoute, Session};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

const PEER: &str = "127.0.0.41";

fn config(dir: &Path, port: u16, remote_as: u32, peer_extra: &str, archive: bool) -> String {
    let archive = if archive {
        format!("\n[archive]\nenabled = true\ndir = \"{}/archive\"\ncompression = \"none\"\n", dir.display())
    } else {
        String::new()
    };
    format!(
        r#"{global}
[[peers]]
address = "{PEER}"
remote_as = {remote_as}
passive = true
{peer_extra}

[[prefixes]]
network = "203.0.113.0/24"
{archive}"#,
        global = global_section(dir, port)
    )
}

fn caps(asn: u32) -> Capabilities {
    Capabilities { families: Family::ALL.to_vec(), route_refresh: true, four_octet_as: Some(asn), ..Default::default() }
}

fn start(tag: &str, remote_as: u32, peer_extra: &str, archive: bool) -> (TempDir, Focld, SocketAddr) {
    let dir = TempDir::new(tag);
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, remote_as, peer_extra, archive));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    (dir, f, remote)
}

/// The NOTIFICATION focld answers our OPEN with: (code, subcode).
fn refused(remote: SocketAddr, open: &OpenMsg) -> Option<(u8, u8)> {
    let stream = connect_from(PEER, remote);
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = RawSpeaker::from_stream(stream);
    s.send(&open.encode());
    while let Some((ty, raw)) = s.recv() {
        if ty == MsgType::Notification {
            return Some((raw[19], raw[20]));
        }
    }
    None
}

fn lookup(f: &Focld, target: &str) -> Vec<Value> {
    f.focl(&["rib", "lookup", target]).ok().and_then(|v| v["routes"].as_array().cloned()).unwrap_or_default()
}

/// The one UPDATE of bgpdump's test capture updates.long_withdrawal.gz: 4,096 IPv6 prefixes
/// withdrawn in one extended message, and the AS of the peer that sent it.
fn long_withdrawal() -> (Vec<u8>, u32) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mrt/updates.long_withdrawal.gz");
    let records = mrt_records(&path);
    let r = records.iter().find(|r| r.common_header.entry_subtype == 4).expect("a BGP4MP_MESSAGE_AS4 record");
    let asn = u32::from_be_bytes(r.message_bytes[..4].try_into().unwrap());
    let (_, msg) = bgp4mp_message(4, &r.message_bytes).expect("a BGP message");
    (msg, asn)
}

#[test]
fn a_real_36950_byte_update_is_taken_and_archived_unchanged_once_extended_messages_are_negotiated() {
    let (big, asn) = long_withdrawal();
    assert!(big.len() > 4096 && big[18] == 2, "the capture holds an extended UPDATE ({} bytes)", big.len());
    let withdrawn = update::parse_update(&big[19..], Session { four_octet_as: true, ibgp: false }).unwrap().withdrawn;
    assert_eq!(withdrawn.len(), 4096);

    let (dir, f, remote) = start("extmsg", asn, "", true);
    let mut ours = caps(asn);
    ours.extended_message = true;
    let mut s = RawSpeaker::establish_with(PEER, remote, &OpenMsg::new(asn, 90, Ipv4Addr::new(192, 0, 2, 41), ours));
    f.wait_established(PEER, Duration::from_secs(5));
    let show = f.request("peer_show", serde_json::json!({"peer": PEER})).unwrap();
    let row = show["capabilities"].as_array().unwrap().iter().find(|c| c["name"] == "extended_message").cloned();
    assert_eq!(
        row,
        Some(serde_json::json!({"name": "extended_message", "advertised": true, "received": true, "negotiated": true}))
    );

    // Announce the 4,096 prefixes first (in messages of at most 4096 bytes), then withdraw
    // them all with the captured message.
    let route = OutRoute {
        as_path: vec![asn],
        next_hop: "2001:db8::41".parse().unwrap(),
        local_pref: None,
        link_local_next_hop: None,
        otc: None,
        communities: Vec::new(),
    };
    for m in update::build_announcements(Family::Ipv6Unicast, &withdrawn, &route, true, 4096).unwrap() {
        s.send(&m);
    }
    let count = |f: &Focld| f.focl(&["rib", "summary"]).ok().and_then(|v| v["routes"]["ipv6_unicast"].as_u64());
    assert!(wait_for(Duration::from_secs(10), || count(&f) == Some(4096)), "{:?}", count(&f));
    s.send(&big);
    assert!(wait_for(Duration::from_secs(10), || count(&f) == Some(0)), "{:?}\n{}", count(&f), f.log_text());
    assert_eq!(f.peer_state(PEER), "Established");

    // The archive holds it byte for byte, and bgpdump reads all 4,096 withdrawals back.
    let finished = f.focl(&["archive", "rotate"]).unwrap()["finished"].as_str().unwrap().to_string();
    let file = dir.path().join("archive").join(finished);
    let archived: Vec<Vec<u8>> = mrt_records(&file)
        .iter()
        .filter_map(|r| bgp4mp_message(r.common_header.entry_subtype, &r.message_bytes))
        .map(|(_, m)| m)
        .filter(|m| m.len() > 4096)
        .collect();
    assert_eq!(archived, vec![big.clone()]);
    let out = std::process::Command::new("bgpdump").arg("-m").arg(&file).output().expect("bgpdump (Debian bgpdump)");
    let text = String::from_utf8_lossy(&out.stdout);
    let withdrawals = text.lines().filter(|l| l.contains("|W|")).count();
    assert_eq!(withdrawals, 4096, "bgpdump reads every withdrawal of the extended message");
}

#[test]
fn without_extended_messages_on_our_side_a_long_update_is_bad_message_length() {
    let (big, asn) = long_withdrawal();
    let (_dir, f, remote) = start("noextmsg", asn, "extended_messages = false", false);
    let mut ours = caps(asn);
    ours.extended_message = true;
    let mut s = RawSpeaker::establish_with(PEER, remote, &OpenMsg::new(asn, 90, Ipv4Addr::new(192, 0, 2, 41), ours));
    f.wait_established(PEER, Duration::from_secs(5));
    s.send(&big);
    let mut got = None;
    while let Some((ty, raw)) = s.recv() {
        if ty == MsgType::Notification {
            got = Some(raw[19..].to_vec());
            break;
        }
    }
    let len = (big.len() as u16).to_be_bytes();
    assert_eq!(got, Some(vec![1, 2, len[0], len[1]]), "RFC 4271 §6.1 with the length as data");
}

#[test]
fn routes_not_sent_again_between_borr_and_eorr_are_removed_and_our_answer_is_bracketed() {
    let (_dir, f, remote) = start("err", 65041, "", false);
    let mut ours = caps(65041);
    ours.enhanced_route_refresh = true;
    let mut s = RawSpeaker::establish_with(PEER, remote, &OpenMsg::new(65041, 90, Ipv4Addr::new(192, 0, 2, 41), ours));
    f.wait_established(PEER, Duration::from_secs(5));
    let route = OutRoute {
        as_path: vec![65041],
        next_hop: "127.0.0.41".parse().unwrap(),
        local_pref: None,
        link_local_next_hop: None,
        otc: None,
        communities: Vec::new(),
    };
    let p = |s: &str| s.parse::<Prefix>().unwrap();
    let all = [p("192.0.2.0/24"), p("198.51.100.0/24"), p("198.51.100.128/25")];
    for m in update::build_announcements(Family::Ipv4Unicast, &all, &route, true, 4096).unwrap() {
        s.send(&m);
    }
    assert!(wait_for(Duration::from_secs(5), || f.rib_in_prefixes(PEER).len() == 3));

    // BoRR, one route again, and the stale mark shows until EoRR.
    s.send(&frame::route_refresh_of(Family::Ipv4Unicast, RefreshKind::Begin));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).iter().all(|r| r["stale"] == true)));
    for m in update::build_announcements(Family::Ipv4Unicast, &all[1..2], &route, true, 4096).unwrap() {
        s.send(&m);
    }
    s.send(&frame::route_refresh_of(Family::Ipv4Unicast, RefreshKind::End));
    assert!(
        wait_for(Duration::from_secs(5), || f.rib_in_prefixes(PEER) == ["198.51.100.0/24"]),
        "{:?}",
        f.rib_in_prefixes(PEER)
    );
    assert!(f.rib_in(PEER).iter().all(|r| r["stale"] == false));
    assert!(f.log_text().contains("EoRR for ipv4_unicast: 2 stale routes removed"), "{}", f.log_text());

    // We ask: focld answers BoRR, its UPDATE, EoRR, in that order.
    // First what focld sent at session start (its announcement, End-of-RIB).
    s.stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    while s.recv().is_some() {}
    s.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send(&frame::route_refresh(Family::Ipv4Unicast));
    let mut seen = Vec::new();
    while let Some((ty, raw)) = s.recv() {
        match ty {
            MsgType::RouteRefresh => seen.push(format!("rr{}", raw[21])),
            MsgType::Update => seen.push("update".into()),
            _ => {}
        }
        if seen.last().is_some_and(|l| l == "rr2") {
            break;
        }
    }
    assert_eq!(seen, ["rr1", "update", "rr2"], "BoRR, the Adj-RIB-Out, EoRR (RFC 7313 §4)");
    assert_eq!(f.peer_state(PEER), "Established");
}

#[test]
fn a_role_that_does_not_pair_with_ours_is_refused_with_role_mismatch() {
    let (_dir, f, remote) = start("role", 65041, "role = \"customer\"", false);
    let open = |role: Option<u8>| {
        let mut c = caps(65041);
        c.roles = role.into_iter().collect();
        OpenMsg::new(65041, 90, Ipv4Addr::new(192, 0, 2, 41), c)
    };
    // We are the customer: the peer must say provider (0).
    assert_eq!(refused(remote, &open(Some(3))), Some((2, 11)), "customer with customer");
    assert_eq!(refused(remote, &open(Some(4))), Some((2, 11)), "customer with peer");
    assert!(f.log_text().contains("role mismatch: we are customer, the peer says peer, expected provider"));
    let show = f.focl(&["peer", "show", PEER]).unwrap();
    let e = &show["last_error"];
    assert_eq!((e["direction"].as_str(), e["code"].as_u64(), e["subcode"].as_u64()), (Some("sent"), Some(2), Some(11)));
    assert!(e["name"].as_str().is_some_and(|n| n.contains("Role Mismatch")), "{show}");
}

#[test]
fn strict_role_refuses_a_peer_without_a_role() {
    let (_dir, _f, remote) = start("strict", 65041, "role = \"peer\"\nstrict_role = true", false);
    let open = OpenMsg::new(65041, 90, Ipv4Addr::new(192, 0, 2, 41), caps(65041));
    assert_eq!(refused(remote, &open), Some((2, 11)));
}

/// ORIGIN IGP, AS_PATH [65041], NEXT_HOP 127.0.0.41, and OTC when given.
fn attrs_with_otc(otc: Option<u32>) -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfe, 0x11, 0x40, 3, 4, 127, 0, 0, 41];
    if let Some(o) = otc {
        a.extend_from_slice(&[0xc0, 35, 4]);
        a.extend_from_slice(&o.to_be_bytes());
    }
    a
}

#[test]
fn a_customer_route_with_otc_is_marked_a_leak_and_our_announcement_carries_our_as() {
    // We are the provider; the peer is our customer.
    let (_dir, f, remote) = start("otc-provider", 65041, "role = \"provider\"", false);
    let mut c = caps(65041);
    c.roles = vec![3];
    let mut s = RawSpeaker::establish_with(PEER, remote, &OpenMsg::new(65041, 90, Ipv4Addr::new(192, 0, 2, 41), c));
    f.wait_established(PEER, Duration::from_secs(5));
    s.send(&update_msg(&[], &attrs_with_otc(Some(65099)), &[24, 192, 0, 2]));
    s.send(&update_msg(&[], &attrs_with_otc(None), &[24, 198, 51, 100]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in_prefixes(PEER).len() == 2));
    let leak = lookup(&f, "192.0.2.0/24");
    assert_eq!((leak[0]["otc"].as_u64(), leak[0]["otc_leak"].as_bool()), (Some(65099), Some(true)), "{leak:?}");
    let clean = lookup(&f, "198.51.100.0/24");
    assert_eq!((clean[0]["otc"].as_u64(), clean[0]["otc_leak"].as_bool()), (None, Some(false)), "{clean:?}");
    let text = std::process::Command::new(focl_bin())
        .arg("-s")
        .arg(&f.socket)
        .args(["rib", "lookup", "192.0.2.0/24"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("65099 leak") && text.contains("*L"), "{text}");

    // RFC 9234 §5 egress: our own prefix goes to a customer with OTC = our AS.
    s.stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut otc = None;
    while let Some((ty, raw)) = s.recv() {
        if ty == MsgType::Update {
            let u = update::parse_update(&raw[19..], Session { four_octet_as: true, ibgp: false }).unwrap();
            if !u.announced.is_empty() {
                otc = focl::wire::role::otc_of(&u.attrs);
                break;
            }
        }
    }
    assert_eq!(otc, Some(65001));
}

#[test]
fn a_provider_route_without_otc_gets_the_providers_as() {
    let (_dir, f, remote) = start("otc-customer", 65041, "role = \"customer\"", false);
    let mut c = caps(65041);
    c.roles = vec![0];
    let mut s = RawSpeaker::establish_with(PEER, remote, &OpenMsg::new(65041, 90, Ipv4Addr::new(192, 0, 2, 41), c));
    f.wait_established(PEER, Duration::from_secs(5));
    s.send(&update_msg(&[], &attrs_with_otc(None), &[24, 192, 0, 2]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in_prefixes(PEER).len() == 1));
    let r = lookup(&f, "192.0.2.0/24");
    assert_eq!((r[0]["otc"].as_u64(), r[0]["otc_leak"].as_bool()), (Some(65041), Some(false)), "{r:?}");
    let show = f.focl(&["peer", "show", PEER]).unwrap();
    assert_eq!((show["role"].as_str(), show["remote_role"].as_str()), (Some("customer"), Some("provider")));
    let roles: Vec<&Value> =
        show["capabilities"].as_array().unwrap().iter().filter(|c| c["name"] == "role(customer)").collect();
    assert_eq!(roles.len(), 1, "{show}");
}

/// The UPDATEs of BIRD's own ADD-PATH dump (BGP4MP_MESSAGE_AS4_ADDPATH, RFC 8050): focld's
/// decoder, told the session has ADD-PATH, reads the same prefixes and path identifiers as
/// bgpkit-parser does.
#[test]
fn birds_add_path_capture_decodes_to_the_same_paths_as_bgpkit_parser() {
    use bgpkit_parser::models::{AsnLength, BgpMessage};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mrt/bird-mrtdump_bgp");
    let mut checked = 0;
    for r in mrt_records(&path).iter().filter(|r| r.common_header.entry_subtype == 9) {
        // MESSAGE_AS4_ADDPATH has the MESSAGE_AS4 layout (RFC 8050 §3).
        let Some((_, msg)) = bgp4mp_message(4, &r.message_bytes) else { continue };
        if msg.get(18) != Some(&2) {
            continue;
        }
        let ap = update::AddPath::of(&Family::ALL);
        let ours = update::parse_update_with(&msg[19..], Session { four_octet_as: true, ibgp: false }, ap).unwrap();
        let mut b = bytes::Bytes::copy_from_slice(&msg);
        let Ok(BgpMessage::Update(theirs)) =
            bgpkit_parser::parser::bgp::parse_bgp_message(&mut b, true, &AsnLength::Bits32)
        else {
            panic!("bgpkit-parser reads the UPDATE")
        };
        let mut want: Vec<(String, Option<u32>)> =
            theirs.announced_prefixes.iter().map(|p| (p.prefix.to_string(), p.path_id)).collect();
        if let Some(r) = theirs.attributes.get_reachable_nlri() {
            want.extend(r.prefixes.iter().map(|p| (p.prefix.to_string(), p.path_id)));
        }
        let got: Vec<(String, Option<u32>)> =
            ours.announced.iter().enumerate().map(|(i, p)| (p.to_string(), Some(ours.announced_id(i)))).collect();
        assert_eq!(got, want);
        checked += got.len();
    }
    assert!(checked > 0, "the capture has ADD-PATH announcements");
}

#[test]
fn two_paths_from_an_add_path_peer_are_kept_archived_as_rfc_8050_and_dumped_with_their_ids() {
    let (dir, f, remote) = start("addpath", 65041, "add_path = \"receive\"", true);
    let mut c = caps(65041);
    c.add_path = vec![(Family::Ipv4Unicast, 2)]; // we send, focld receives (RFC 7911 §4)
    let mut s = RawSpeaker::establish_with(PEER, remote, &OpenMsg::new(65041, 90, Ipv4Addr::new(192, 0, 2, 41), c));
    f.wait_established(PEER, Duration::from_secs(5));
    let show = f.focl(&["peer", "show", PEER]).unwrap();
    let row = show["capabilities"].as_array().unwrap().iter().find(|c| c["name"] == "add_path(ipv4_unicast)").cloned();
    assert_eq!(row.map(|r| r["negotiated"].clone()), Some(Value::Bool(true)), "{show}");

    // 192.0.2.0/24 twice, path 1 via AS 65041 65010 and path 2 via AS 65041; then path 1 goes.
    let path = |asns: &[u32]| {
        let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 2 + 4 * asns.len() as u8, 2, asns.len() as u8];
        for x in asns {
            a.extend_from_slice(&x.to_be_bytes());
        }
        a.extend_from_slice(&[0x40, 3, 4, 127, 0, 0, 41]);
        a
    };
    let nlri = |id: u32| {
        let mut n = id.to_be_bytes().to_vec();
        n.extend_from_slice(&[24, 192, 0, 2]);
        n
    };
    let one = update_msg(&[], &path(&[65041, 65010]), &nlri(1));
    let two = update_msg(&[], &path(&[65041]), &nlri(2));
    s.send(&one);
    s.send(&two);
    let routes = || {
        let mut v: Vec<(Option<u64>, bool)> = f
            .focl(&["rib", "lookup", "192.0.2.0/24", "--all"])
            .ok()
            .and_then(|v| v["routes"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|r| (r["path_id"].as_u64(), r["best"] == true))
            .collect();
        v.sort();
        v
    };
    assert!(wait_for(Duration::from_secs(5), || routes() == [(Some(1), false), (Some(2), true)]), "{:?}", routes());

    // The snapshot: a RIB_IPV4_UNICAST_ADDPATH record with both path ids, which bgpdump reads.
    f.focl(&["archive", "snapshot"]).unwrap();
    let archive = dir.path().join("archive");
    assert!(wait_for(Duration::from_secs(30), || !archive_files(&archive, "rib.").is_empty()));
    let rib = &archive_files(&archive, "rib.")[0];
    let mut ids = Vec::new();
    for rec in bgpkit_parser::BgpkitParser::from_reader(open_mrt(rib)).into_record_iter() {
        if let bgpkit_parser::models::MrtMessage::TableDumpV2Message(
            bgpkit_parser::models::TableDumpV2Message::RibAfi(e),
        ) = rec.message
        {
            ids.extend(e.rib_entries.iter().filter_map(|x| x.path_id));
        }
    }
    let subtypes: Vec<u16> = mrt_records(rib).iter().map(|r| r.common_header.entry_subtype).collect();
    assert!(subtypes.contains(&8), "a RIB_IPV4_UNICAST_ADDPATH record: {subtypes:?}");
    assert_eq!(ids, [1, 2], "RFC 8050 §4 entries with their path ids");
    let dump = std::process::Command::new("bgpdump").arg("-m").arg(rib).output().unwrap();
    let text = String::from_utf8_lossy(&dump.stdout);
    assert_eq!(text.lines().filter(|l| l.contains("|192.0.2.0/24|")).count(), 2, "{text}");

    // Withdraw path 1 by its identifier (RFC 7911 §3): path 2 stays.
    s.send(&update_msg(&nlri(1), &[], &[]));
    assert!(wait_for(Duration::from_secs(5), || routes() == [(Some(2), true)]), "{:?}", routes());

    // The archive: the three UPDATEs as MESSAGE_AS4_ADDPATH (subtype 9), byte for byte.
    let finished = f.focl(&["archive", "rotate"]).unwrap()["finished"].as_str().unwrap().to_string();
    let file = archive.join(finished);
    let updates: Vec<(u16, Vec<u8>)> = mrt_records(&file)
        .iter()
        .filter_map(|r| {
            let sub = r.common_header.entry_subtype;
            let as_of = if sub == 9 { 4 } else { sub };
            bgp4mp_message(as_of, &r.message_bytes).map(|(_, m)| (sub, m))
        })
        .filter(|(_, m)| m[18] == 2 && m.len() > 23)
        .collect();
    let want = vec![(9, one), (9, two), (9, update_msg(&nlri(1), &[], &[]))];
    assert_eq!(updates, want);
    let dump = std::process::Command::new("bgpdump").arg("-m").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&dump.stdout);
    assert_eq!(text.lines().filter(|l| l.contains("|A|") && l.contains("192.0.2.0/24")).count(), 2, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("|W|") && l.contains("192.0.2.0/24")).count(), 1, "{text}");
}
