//! `[[sources]]` against a hand-driven BGP speaker on loopback: a small TABLE_DUMP_V2 file
//! (written here with focld's own record encoders) is announced with its attributes and
//! `limit`, End-of-RIB follows the table, `focl source reload` sends it again, and a reload
//! that removes the source withdraws its routes.

mod common;

use common::*;
use focl::mrt::record::{peer_index_table, rib_entry_record, PeerEntry, RibEntry};
use focl::prefix::Prefix;
use focl::wire::frame::MsgType;
use focl::wire::update::{self, Session};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Prefixes in the file: 1,500 /24s of RIB peer 192.0.2.10 (AS 64500), in four attribute
/// sets, each also held by a second RIB peer whose routes must not be taken.
const IN_FILE: u32 = 1500;
const LIMIT: u32 = 1000;

fn nth(i: u32) -> Prefix {
    Prefix::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)).into(), 24).unwrap()
}

/// ORIGIN IGP, AS_PATH 64500 (64600 + set), MED 7, COMMUNITIES 64500:set (4-octet AS).
fn attrs(set: u32) -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 10, 2, 2];
    a.extend_from_slice(&64500u32.to_be_bytes());
    a.extend_from_slice(&(64600 + set).to_be_bytes());
    a.extend_from_slice(&[0x80, 4, 4, 0, 0, 0, 7]);
    a.extend_from_slice(&[0xc0, 8, 4, 0xfb, 0xf4, 0, set as u8]);
    a
}

fn write_dump(path: &std::path::Path) {
    let mut out = Vec::new();
    let peers = [
        PeerEntry { bgp_id: Ipv4Addr::new(9, 9, 9, 9), ip: "192.0.2.9".parse().unwrap(), asn: 64999 },
        PeerEntry { bgp_id: Ipv4Addr::new(1, 1, 1, 1), ip: "192.0.2.10".parse().unwrap(), asn: 64500 },
    ];
    peer_index_table(0, Ipv4Addr::new(192, 0, 2, 1), "", &peers, &mut out);
    let other = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe7];
    let sets: Vec<Vec<u8>> = (0..4).map(attrs).collect();
    for i in 0..IN_FILE {
        let entries = [
            RibEntry { peer_index: 0, originated: 0, path_id: None, attrs: &other },
            RibEntry { peer_index: 1, originated: 0, path_id: None, attrs: &sets[(i % 4) as usize] },
        ];
        rib_entry_record(0, i, &nth(i), &entries, &mut out);
    }
    std::fs::write(path, out).unwrap();
}

fn config(dir: &std::path::Path, port: u16, with_source: bool) -> String {
    let source = if with_source {
        format!(
            "[[sources]]\nname = \"lab\"\ntype = \"mrt\"\nfile = \"{}/rib.mrt\"\npeer = \"192.0.2.10\"\nlimit = {LIMIT}\nto = [\"raw\"]\n",
            dir.display()
        )
    } else {
        String::new()
    };
    format!(
        r#"{global}
[[peers]]
name = "raw"
address = "127.0.0.3"
remote_as = 65010
passive = true

[[prefixes]]
network = "10.0.5.0/24"

{source}"#,
        global = global_section(dir, port)
    )
}

/// What the speaker saw until `done` says stop (or `within` passed).
#[derive(Default)]
struct Seen {
    announced: Vec<(Prefix, Vec<u8>)>,
    withdrawn: Vec<Prefix>,
    end_of_rib_v4: bool,
}

fn read_until(s: &mut RawSpeaker, within: Duration, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
    let until = Instant::now() + within;
    while Instant::now() < until && !done(seen) {
        let Some((ty, raw)) = s.recv() else { break };
        if ty != MsgType::Update {
            continue;
        }
        let u = update::parse_update(&raw[19..], Session { four_octet_as: true, ibgp: false }).expect("a valid UPDATE");
        if u.end_of_rib == Some(focl::prefix::Family::Ipv4Unicast) {
            seen.end_of_rib_v4 = true;
        }
        seen.withdrawn.extend(u.withdrawn.iter().copied());
        for p in u.announced {
            seen.announced.push((p, u.attrs.clone()));
        }
    }
}

/// The AS_PATH of an attribute block as a list (one AS_SEQUENCE, 4-octet).
fn as_path(attrs: &[u8]) -> Vec<u32> {
    let v = focl::wire::update::decode_attrs_for_display(attrs, None, true);
    v.as_path.split_whitespace().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn a_source_is_announced_with_its_attributes_then_end_of_rib_and_reload_resends_and_removal_withdraws() {
    let dir = TempDir::new("mrtsrc");
    write_dump(&dir.path().join("rib.mrt"));
    let port = free_port("127.0.0.1");
    let cfg_path = dir.path().join("f.toml");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, true));
    let loaded = || f.focl(&["source", "status", "lab"]).map(|v| v[0]["state"] == "loaded").unwrap_or(false);
    assert!(wait_for(Duration::from_secs(20), loaded), "{:?}\n{}", f.focl(&["source", "status"]), f.log_text());

    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish("127.0.0.3", remote, 65010, Ipv4Addr::new(192, 0, 2, 3));
    let mut seen = Seen::default();
    read_until(&mut s, Duration::from_secs(20), &mut seen, |s| s.end_of_rib_v4);
    assert!(seen.end_of_rib_v4, "no End-of-RIB; {} prefixes seen", seen.announced.len());

    // `limit`: the first 1,000 prefixes of the file; 10.0.5.0/24 is a [[prefixes]] entry,
    // which wins: it comes once, with our AS alone.
    let got: BTreeSet<Prefix> = seen.announced.iter().map(|(p, _)| *p).collect();
    let want: BTreeSet<Prefix> = (0..LIMIT).map(nth).collect();
    assert_eq!(got, want);
    assert_eq!(seen.announced.len(), LIMIT as usize, "every prefix once");
    for (p, a) in &seen.announced {
        if *p == nth(5) {
            assert_eq!(as_path(a), vec![65001], "{p}: the static route");
            continue;
        }
        let i = (u32::from(match p.addr() {
            std::net::IpAddr::V4(v) => v,
            _ => unreachable!(),
        }) - 0x0a00_0000)
            >> 8;
        let view = focl::wire::update::decode_attrs_for_display(a, None, true);
        assert_eq!(as_path(a), vec![65001, 64500, 64600 + i % 4], "{p}: our AS before the dumped path (eBGP)");
        assert_eq!(view.next_hop.as_deref(), Some("127.0.0.1"), "{p}: our address on the session");
        assert_eq!(view.med, Some(7), "{p}: MED kept");
        assert_eq!(view.local_pref, None, "{p}: no LOCAL_PREF on eBGP");
    }
    let st = f.focl(&["source", "status", "lab"]).unwrap();
    assert_eq!(st[0]["routes"]["ipv4_unicast"], LIMIT);
    assert_eq!(st[0]["skipped_limit"], IN_FILE - LIMIT);
    assert_eq!(st[0]["peer_as"], 64500);
    let sent = || f.focl(&["source", "status", "lab"]).map(|v| v[0]["peers"][0]["state"] == "sent").unwrap_or(false);
    assert!(wait_for(Duration::from_secs(5), sent), "{:?}", f.focl(&["source", "status", "lab"]));
    assert_eq!(f.focl(&["source", "status", "lab"]).unwrap()[0]["peers"][0]["sent"], LIMIT - 1);

    // `focl source reload`: read again and sent again (the same table: nothing withdrawn).
    let r = f.focl(&["source", "reload", "lab"]).expect("source reload");
    assert_eq!(r["routes"]["ipv4_unicast"], LIMIT);
    let mut again = Seen::default();
    read_until(&mut s, Duration::from_secs(20), &mut again, |s| s.announced.len() >= (LIMIT - 1) as usize);
    assert_eq!(again.announced.len(), (LIMIT - 1) as usize);
    assert!(again.withdrawn.is_empty());
    assert!(f.focl(&["source", "reload", "nope"]).unwrap_err().contains("no source named 'nope'"));

    // A reload without the source withdraws its routes, and not the static one.
    std::fs::write(&cfg_path, config(dir.path(), port, false)).unwrap();
    let r = f.focl(&["reload"]).expect("reload");
    assert_eq!(r["sources_removed"], serde_json::json!(["lab"]));
    let mut gone = Seen::default();
    read_until(&mut s, Duration::from_secs(20), &mut gone, |s| s.withdrawn.len() >= (LIMIT - 1) as usize);
    let withdrawn: BTreeSet<Prefix> = gone.withdrawn.iter().copied().collect();
    let mut want = want;
    want.remove(&nth(5));
    assert_eq!(withdrawn, want);
    assert_eq!(f.focl(&["source", "list"]).unwrap(), serde_json::json!([]));
}

#[test]
fn a_missing_file_is_a_clear_error_in_source_status_and_focld_keeps_running() {
    let dir = TempDir::new("mrtsrc-missing");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, true));
    let failed = || f.focl(&["source", "status", "lab"]).map(|v| v[0]["state"] == "error").unwrap_or(false);
    assert!(wait_for(Duration::from_secs(10), failed), "{:?}", f.focl(&["source", "status", "lab"]));
    let st = f.focl(&["source", "status", "lab"]).unwrap();
    let e = st[0]["last_error"].as_str().unwrap();
    assert!(e.contains("cannot open") && e.contains("rib.mrt"), "{e}");
    let e = f.focl(&["source", "reload", "lab"]).unwrap_err();
    assert!(e.contains("cannot open"), "{e}");
    assert!(f.focl(&["status"]).is_ok(), "focld still answers");
}
