//! `focl rib lookup` and `focl rib in` against a focld holding routes from three raw peers on
//! loopback: longest match, --all, --more, --less, --detail, the filters and --count, in text
//! and JSON, and best-path marking across peers (RFC 4271 §9.1.2).

mod common;

use common::{focl_bin, free_port, update_msg, wait_for, Focld, RawSpeaker, TempDir};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

fn config(dir: &Path, port: u16) -> String {
    let mut s = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\n\
         control_socket = \"{d}/f.sock\"\nlog_level = \"info\"\n",
        d = dir.display()
    );
    for last in [91, 92, 93] {
        let name = if last == 93 { "name = \"p93\"\n" } else { "" };
        s.push_str(&format!(
            "\n[[peers]]\naddress = \"127.0.0.{last}\"\nremote_as = {}\npassive = true\nhold_time_secs = 30\n{name}",
            65000 + last
        ));
    }
    s
}

/// ORIGIN IGP, an AS_SEQUENCE of 4-octet ASNs, NEXT_HOP, then `extra` attributes.
fn attrs(path: &[u32], extra: &[u8]) -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 2 + 4 * path.len() as u8, 2, path.len() as u8];
    for asn in path {
        a.extend_from_slice(&asn.to_be_bytes());
    }
    a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 9]);
    a.extend_from_slice(extra);
    a
}

fn community(asn: u16, v: u16) -> Vec<u8> {
    let mut a = vec![0xc0, 8, 4];
    a.extend_from_slice(&asn.to_be_bytes());
    a.extend_from_slice(&v.to_be_bytes());
    a
}

fn nlri(prefixes: &[(&[u8], u8)]) -> Vec<u8> {
    prefixes.iter().flat_map(|(bytes, len)| std::iter::once(*len).chain(bytes.iter().copied())).collect()
}

/// An IPv6 announcement: MP_REACH_NLRI (RFC 4760) with a global next hop.
fn v6_update(path: &[u32], prefix: &[u8], len: u8) -> Vec<u8> {
    let mut a = attrs(path, &[]);
    a.truncate(a.len() - 7); // no NEXT_HOP for IPv6 only
    let mut mp = vec![0, 2, 1, 16];
    mp.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    mp.push(0);
    mp.push(len);
    mp.extend_from_slice(prefix);
    a.extend_from_slice(&[0x80, 14, mp.len() as u8]);
    a.extend_from_slice(&mp);
    update_msg(&[], &a, &[])
}

/// focl without -j: (exit ok, stdout, stderr).
fn focl_text(f: &Focld, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(focl_bin()).arg("-s").arg(&f.socket).args(args).output().expect("run focl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn prefixes_and_peers(v: &Value) -> Vec<(String, String, bool)> {
    v["routes"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    (
                        r["prefix"].as_str().unwrap_or("").to_string(),
                        r["peer"]["address"].as_str().unwrap_or("").to_string(),
                        r["best"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn owned(v: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    v.iter().map(|(p, a, b)| (p.to_string(), a.to_string(), *b)).collect()
}

/// focld with three peers: 91 (AS 65091), 92 (AS 65092) and 93 (AS 65093, named p93).
fn loaded(dir: &TempDir) -> (Focld, Vec<RawSpeaker>) {
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port));
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut speakers = Vec::new();
    for last in [91u8, 92, 93] {
        let s = RawSpeaker::establish(
            &format!("127.0.0.{last}"),
            target,
            65000 + u32::from(last),
            Ipv4Addr::new(10, 0, 0, last),
        );
        speakers.push(s);
    }
    // Peer 91: a longer path to 192.0.2.0/24 (through 3356), the covering /16, a /25 with
    // communities, and an IPv6 /32.
    speakers[0].send(&update_msg(&[], &attrs(&[65091, 3356, 15169], &[]), &nlri(&[(&[192, 0, 2], 24)])));
    speakers[0].send(&update_msg(&[], &attrs(&[65091, 15169], &[]), &nlri(&[(&[192, 0], 16)])));
    let mut extra = community(65091, 100);
    extra.extend_from_slice(&[0xc0, 32, 12, 0, 0, 0xfe, 0x63, 0, 0, 0, 1, 0, 0, 0, 2]); // 65091:1:2
    speakers[0].send(&update_msg(&[], &attrs(&[65091, 64500], &extra), &nlri(&[(&[192, 0, 2, 128], 25)])));
    speakers[0].send(&v6_update(&[65091, 15169], &[0x20, 0x01, 0x0d, 0xb8], 32));
    // Peer 92: the best path to 192.0.2.0/24 (as short as 93's, lower router id), with every
    // kind of attribute for the detail view.
    let mut extra = community(65092, 7);
    extra.extend_from_slice(&[0x40, 6, 0]); // ATOMIC_AGGREGATE
    extra.extend_from_slice(&[0xc0, 7, 8, 0, 0, 0xfe, 0x64, 10, 0, 0, 92]); // AGGREGATOR
    extra.extend_from_slice(&[0xc0, 16, 8, 0, 2, 0xfe, 0x44, 0, 0, 0, 7]); // rt 65092:7
    extra.extend_from_slice(&[0xc0, 99, 2, 0xab, 0xcd]); // unknown
    speakers[1].send(&update_msg(&[], &attrs(&[65092, 15169], &extra), &nlri(&[(&[192, 0, 2], 24)])));
    // Peer 93.
    speakers[2].send(&update_msg(&[], &attrs(&[65093, 64501], &[]), &nlri(&[(&[192, 0, 2], 24)])));
    let all_in = wait_for(Duration::from_secs(10), || {
        f.query("rib_summary").is_ok_and(|v| v["routes"]["ipv4_unicast"] == 5 && v["routes"]["ipv6_unicast"] == 1)
    });
    assert!(all_in, "{:?}\n{}", f.query("rib_summary"), f.log_text());
    (f, speakers)
}

#[test]
fn rib_lookup_finds_the_longest_match_marks_the_best_and_shows_more_and_less_specifics() {
    let dir = TempDir::new("ribq-lookup");
    let (f, _speakers) = loaded(&dir);

    let v = f.focl(&["rib", "lookup", "192.0.2.77"]).expect("lookup");
    assert_eq!(prefixes_and_peers(&v), owned(&[("192.0.2.0/24", "127.0.0.92", true)]), "{v}");
    assert_eq!((v["matched"].as_str(), v["count"].as_u64()), (Some("192.0.2.0/24"), Some(1)));
    let v = f.focl(&["rib", "lookup", "192.0.2.200"]).expect("lookup");
    assert_eq!(prefixes_and_peers(&v), owned(&[("192.0.2.128/25", "127.0.0.91", true)]));

    let v = f.focl(&["rib", "lookup", "192.0.2.77", "--all"]).expect("lookup --all");
    let want = [
        ("192.0.2.0/24", "127.0.0.92", true),
        ("192.0.2.0/24", "127.0.0.91", false),
        ("192.0.2.0/24", "127.0.0.93", false),
    ];
    assert_eq!(prefixes_and_peers(&v), owned(&want), "best first, every route carries best: {v}");
    assert_eq!(v["routes"][2]["peer"]["name"], "p93");

    let v = f.focl(&["rib", "lookup", "192.0.2.0/24", "--more"]).expect("lookup --more");
    assert_eq!(
        prefixes_and_peers(&v),
        owned(&[("192.0.2.0/24", "127.0.0.92", true), ("192.0.2.128/25", "127.0.0.91", true)])
    );
    let v = f.focl(&["rib", "lookup", "192.0.2.0/24", "--less"]).expect("lookup --less");
    assert_eq!(
        prefixes_and_peers(&v),
        owned(&[("192.0.0.0/16", "127.0.0.91", true), ("192.0.2.0/24", "127.0.0.92", true)])
    );
    let v = f.focl(&["rib", "lookup", "2001:db8:1::1"]).expect("lookup v6");
    assert_eq!(prefixes_and_peers(&v), owned(&[("2001:db8::/32", "127.0.0.91", true)]));
    let v = f.focl(&["rib", "lookup", "203.0.113.1"]).expect("lookup of nothing");
    assert_eq!((v["matched"].clone(), v["count"].as_u64()), (Value::Null, Some(0)));
    assert_eq!(v["routes"].as_array().map(Vec::len), Some(0));

    // Text: the matched prefix, one line per route, "*" on the best.
    let (ok, out, err) = focl_text(&f, &["rib", "lookup", "192.0.2.77", "--all"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("192.0.2.77/32: longest match 192.0.2.0/24\n"), "{out}");
    let best: Vec<&str> = out.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(best.len(), 1, "{out}");
    assert!(
        best[0].contains("192.0.2.0/24") && best[0].contains("127.0.0.92") && best[0].contains("65092 15169"),
        "{out}"
    );
    assert!(out.contains("127.0.0.93 (p93)"), "{out}");
    assert!(out.ends_with("3 routes (* best)\n"), "{out}");
    let (ok, out, _) = focl_text(&f, &["rib", "lookup", "203.0.113.1"]);
    assert!(ok && out.starts_with("203.0.113.1/32: no route covers it\n"), "{out}");
    let (ok, _, err) = focl_text(&f, &["rib", "lookup", "not-an-address"]);
    assert!(!ok && err.contains("bad prefix"), "{err}");
}

#[test]
fn rib_lookup_detail_decodes_every_attribute_with_the_path_as_segments_and_the_peer_apart() {
    let dir = TempDir::new("ribq-detail");
    let (f, _speakers) = loaded(&dir);
    let v = f.focl(&["rib", "lookup", "192.0.2.77", "--detail"]).expect("lookup --detail");
    let r = &v["routes"][0];
    assert_eq!(r["as_path"], serde_json::json!([{"type": "sequence", "asns": [65092, 15169]}]), "{r}");
    assert_eq!(r["peer"], serde_json::json!({"address": "127.0.0.92", "name": null}));
    assert_eq!(
        (r["best"].as_bool(), r["origin"].as_str(), r["next_hop"].as_str()),
        (Some(true), Some("igp"), Some("192.0.2.9"))
    );
    assert_eq!(r["communities"], serde_json::json!(["65092:7"]));
    assert_eq!(r["extended_communities"], serde_json::json!(["rt 65092:7"]));
    assert_eq!(r["atomic_aggregate"], true);
    assert_eq!(r["aggregator"], serde_json::json!({"asn": 65124, "address": "10.0.0.92"}));
    assert_eq!(r["other_attributes"], serde_json::json!([{"type": 99, "flags": 192, "value": "abcd"}]));

    let (ok, out, err) = focl_text(&f, &["rib", "lookup", "192.0.2.77", "--detail", "--all"]);
    assert!(ok, "{err}");
    assert!(out.contains("192.0.2.0/24 (best) from 127.0.0.92\n"), "{out}");
    assert!(out.contains("192.0.2.0/24 from 127.0.0.93 (p93)\n"), "{out}");
    assert!(out.contains("  AS path: 65092 15169\n"), "{out}");
    assert!(out.contains("  Extended communities: rt 65092:7\n"), "{out}");
    assert!(out.contains("  Atomic aggregate: yes, aggregator: AS 65124 10.0.0.92\n"), "{out}");
    assert!(out.contains("  Attribute 99 (flags 0xc0): abcd\n"), "{out}");
}

#[test]
fn rib_in_with_a_bare_address_takes_the_peers_longest_match() {
    let dir = TempDir::new("ribq-in");
    let (f, _speakers) = loaded(&dir);
    let v = f.focl(&["rib", "in", "127.0.0.91", "192.0.2.77"]).expect("rib in ADDRESS");
    assert_eq!(prefixes_and_peers(&v), owned(&[("192.0.2.0/24", "127.0.0.91", false)]));
    let v = f.focl(&["rib", "in", "127.0.0.91", "192.0.2.200"]).expect("rib in ADDRESS");
    assert_eq!(prefixes_and_peers(&v), owned(&[("192.0.2.128/25", "127.0.0.91", true)]));
    // Peer 93 holds only the /24: its longest match for .200 is that.
    let v = f.focl(&["rib", "in", "p93", "192.0.2.200"]).expect("rib in NAME ADDRESS");
    assert_eq!(prefixes_and_peers(&v), owned(&[("192.0.2.0/24", "127.0.0.93", false)]));
    // A prefix still means it and what it covers.
    let v = f.focl(&["rib", "in", "127.0.0.91", "192.0.2.0/24"]).expect("rib in PREFIX");
    assert_eq!(v["count"].as_u64(), Some(2));
    let (ok, out, err) = focl_text(&f, &["rib", "in", "127.0.0.91", "192.0.2.77"]);
    assert!(ok, "{err}");
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("192.0.2.0/24  192.0.2.9  65091 3356 15169")), "{out}");
    assert!(out.ends_with("1 route, neighbor 127.0.0.91\n"), "{out}");
}

#[test]
fn the_filters_origin_as_community_large_community_peer_as_best_and_count_select_routes() {
    let dir = TempDir::new("ribq-filter");
    let (f, _speakers) = loaded(&dir);
    let lookup = |extra: &[&str]| {
        let mut args = vec!["rib", "lookup", "192.0.2.0/24", "--all"];
        args.extend_from_slice(extra);
        prefixes_and_peers(&f.focl(&args).expect("lookup"))
    };
    assert_eq!(
        lookup(&["--origin", "15169"]),
        owned(&[("192.0.2.0/24", "127.0.0.92", true), ("192.0.2.0/24", "127.0.0.91", false)])
    );
    assert_eq!(lookup(&["--as", "3356"]), owned(&[("192.0.2.0/24", "127.0.0.91", false)]));
    assert_eq!(lookup(&["--peer-as", "65093"]), owned(&[("192.0.2.0/24", "127.0.0.93", false)]));
    assert_eq!(lookup(&["--community", "65092:7"]), owned(&[("192.0.2.0/24", "127.0.0.92", true)]));
    assert_eq!(lookup(&["--best"]), owned(&[("192.0.2.0/24", "127.0.0.92", true)]));
    assert!(lookup(&["--community", "no-export"]).is_empty());

    let v = f.focl(&["rib", "in", "127.0.0.91", "--large-community", "65123:1:2"]).expect("rib in --large-community");
    assert_eq!(prefixes_and_peers(&v), owned(&[("192.0.2.128/25", "127.0.0.91", true)]));
    let v = f.focl(&["rib", "in", "127.0.0.91", "--best"]).expect("rib in --best");
    let best: Vec<String> = prefixes_and_peers(&v).into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(best, ["192.0.0.0/16", "192.0.2.128/25", "2001:db8::/32"]);

    // --count: only the number, in text and JSON.
    assert_eq!(
        f.focl(&["rib", "in", "127.0.0.91", "--count"]).expect("count"),
        serde_json::json!({"peer": "127.0.0.91", "count": 4})
    );
    let v = f.focl(&["rib", "lookup", "192.0.2.0/24", "--all", "--more", "--count"]).expect("lookup count");
    assert_eq!(v["count"].as_u64(), Some(4));
    let (ok, out, _) = focl_text(&f, &["rib", "in", "127.0.0.91", "--origin", "15169", "--count"]);
    assert!(ok);
    assert_eq!(out, "3\n", "the /24 and /16 of IPv4 and the IPv6 /32 end in 15169");
    let (ok, _, err) = focl_text(&f, &["rib", "in", "127.0.0.91", "--community", "65092"]);
    assert!(!ok && err.contains("bad community '65092'"), "{err}");
}

#[test]
fn a_new_best_path_is_chosen_when_the_best_is_withdrawn_or_its_session_goes_down() {
    let dir = TempDir::new("ribq-best");
    let (f, mut speakers) = loaded(&dir);
    let best_of = || prefixes_and_peers(&f.focl(&["rib", "lookup", "192.0.2.77"]).expect("lookup"));
    // 92 withdraws: 93 (as short, router id 10.0.0.93) beats 91 (longer path).
    speakers[1].send(&update_msg(&nlri(&[(&[192, 0, 2], 24)]), &[], &[]));
    assert!(
        wait_for(Duration::from_secs(5), || best_of() == owned(&[("192.0.2.0/24", "127.0.0.93", true)])),
        "{:?}",
        best_of()
    );
    // 93's session goes: 91 is the only one left.
    drop(speakers.remove(2));
    assert!(
        wait_for(Duration::from_secs(10), || best_of() == owned(&[("192.0.2.0/24", "127.0.0.91", true)])),
        "{:?}",
        best_of()
    );
}
