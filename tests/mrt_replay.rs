//! Replay of a real RouteViews update file: a test-only BGP sender feeds focld one peer's
//! UPDATEs from `updates.20260222.1530.bz2` over a live session. The archived UPDATEs are
//! byte-identical to the source and in the same order, and a RIB snapshot afterwards has the
//! prefixes of the source peer's final state (computed by bgpkit-parser from the source).

mod common;

use common::*;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// At most this many UPDATEs, to keep the test short in a debug build.
const MAX_UPDATES: usize = 4000;

fn source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mrt/updates.20260222.1530.bz2")
}

#[test]
fn replayed_real_updates_are_archived_verbatim_and_snapshot_matches_source_state() {
    let src = source();
    assert!(src.exists(), "{} is needed (tests/data/mrt, see its README)", src.display());
    // One peer's UPDATEs (BGP4MP MESSAGE_AS4), raw, in file order.
    let records = mrt_records(&src);
    let mut by_peer: HashMap<IpAddr, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.common_header.entry_subtype == 4 {
            if let Some((ip, msg)) = bgp4mp_message(4, &r.message_bytes) {
                if msg.get(18) == Some(&2) && msg.len() <= 4096 {
                    by_peer.entry(ip).or_default().push(i);
                }
            }
        }
    }
    let (peer_ip, idx) =
        by_peer.into_iter().filter(|(ip, _)| ip.is_ipv4()).max_by_key(|(_, v)| v.len()).expect("a peer");
    let idx: Vec<usize> = idx.into_iter().take(MAX_UPDATES).collect();
    let first = &records[idx[0]].message_bytes;
    let peer_as = u32::from_be_bytes([first[0], first[1], first[2], first[3]]);
    let msgs: Vec<Vec<u8>> = idx.iter().map(|&i| bgp4mp_message(4, &records[i].message_bytes).unwrap().1).collect();
    println!("replaying {} UPDATEs of peer {peer_ip} AS{peer_as}", msgs.len());

    // The source peer's final state, by bgpkit-parser over exactly those records.
    let mut subset = Vec::new();
    for &i in &idx {
        subset.extend_from_slice(&records[i].header_bytes);
        subset.extend_from_slice(&records[i].message_bytes);
    }
    let mut want = BTreeSet::new();
    for e in bgpkit_parser::BgpkitParser::from_reader(subset.as_slice()).into_elem_iter() {
        match e.elem_type {
            bgpkit_parser::models::ElemType::ANNOUNCE => want.insert(e.prefix.to_string()),
            bgpkit_parser::models::ElemType::WITHDRAW => want.remove(&e.prefix.to_string()),
        };
    }

    let dir = TempDir::new("replay");
    let port = free_port("127.0.0.1");
    let cfg = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\ncontrol_socket = \"{d}/f.sock\"\n\n\
         [[peers]]\naddress = \"127.0.0.91\"\nremote_as = {peer_as}\npassive = true\n\n\
         [archive]\nenabled = true\ndir = \"{d}/archive\"\ncompression = \"none\"\n",
        d = dir.path().display()
    );
    let f = Focld::start(dir.path(), "f", &cfg);
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish("127.0.0.91", remote, peer_as, Ipv4Addr::new(192, 0, 2, 91));
    for m in &msgs {
        s.send(m);
    }
    let n = msgs.len() as u64;
    let got_all = wait_for(Duration::from_secs(60), || {
        f.request("peer_show", serde_json::json!({"peer": "127.0.0.91"}))
            .map(|v| v["messages_received"]["update"].as_u64() == Some(n))
            .unwrap_or(false)
    });
    assert!(got_all, "focld took every UPDATE; log:\n{}", f.log_text());
    assert_eq!(f.peer_state("127.0.0.91"), "Established", "no UPDATE reset the session");

    // The archive: the same bytes in the same order.
    let finished = f.focl(&["archive", "rotate"]).unwrap()["finished"].as_str().unwrap().to_string();
    let archived: Vec<Vec<u8>> = mrt_records(&dir.path().join("archive").join(finished))
        .iter()
        .filter_map(|r| bgp4mp_message(r.common_header.entry_subtype, &r.message_bytes))
        .map(|(_, m)| m)
        .filter(|m| m[18] == 2)
        .collect();
    assert_eq!(archived.len(), msgs.len());
    assert!(archived == msgs, "archived UPDATEs are byte-identical to the source, in order");

    // The snapshot: the source peer's final prefixes.
    f.focl(&["archive", "snapshot"]).unwrap();
    let ribs_dir = dir.path().join("archive");
    assert!(wait_for(Duration::from_secs(30), || !archive_files(&ribs_dir, "rib.").is_empty()));
    let rib = &archive_files(&ribs_dir, "rib.")[0];
    let have: BTreeSet<String> = bgpkit_parser::BgpkitParser::from_reader(open_mrt(rib))
        .into_elem_iter()
        .filter(|e| e.peer_ip.to_string() == "127.0.0.91")
        .map(|e| e.prefix.to_string())
        .collect();
    assert_eq!(have.len(), want.len(), "snapshot has {} prefixes, source state {}", have.len(), want.len());
    assert!(have == want, "snapshot prefixes equal the source peer's final state");
    let summary = f.focl(&["rib", "summary"]).unwrap();
    let total =
        summary["routes"]["ipv4_unicast"].as_u64().unwrap() + summary["routes"]["ipv6_unicast"].as_u64().unwrap();
    assert_eq!(total, want.len() as u64);
}
