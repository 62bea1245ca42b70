//! Churn: 50 peers that connect, announce, withdraw and drop again and again for a while
//! (FOCL_CHURN_SECS, default 60), with the archive on. Afterwards focld's threads, open file
//! descriptors and memory are back near where they were after the first round, every route
//! is gone, and nothing panicked.

mod common;

use common::*;
use focl::prefix::Family;
use focl::wire::frame::{self, Framer, MsgType};
use focl::wire::open::{Capabilities, OpenMsg};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PEERS: u32 = 50;

fn peer_addr(i: u32) -> String {
    format!("127.0.3.{}", i + 1)
}

/// One session: OPEN exchange, 200 prefixes under two attribute sets, half withdrawn, then
/// gone (a Cease or just a closed socket). None if focld would not take the session now.
fn one_session(i: u32, round: u64, target: SocketAddr) -> Option<()> {
    let s = focl::session::sock::connect(target, Some(peer_addr(i).parse().ok()?), None).ok()?;
    s.set_nonblocking(false).ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while s.peer_addr().is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut s: TcpStream = s;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let asn = 64600 + i;
    let caps = Capabilities { families: Family::ALL.to_vec(), four_octet_as: Some(asn), ..Default::default() };
    s.write_all(&OpenMsg::new(asn, 30, Ipv4Addr::new(10, 3, 0, i as u8 + 1), caps).encode()).ok()?;
    let mut framer = Framer::new();
    let mut buf = [0u8; 4096];
    let mut got_open = false;
    while !got_open {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        framer.feed(&buf[..n]);
        while let Ok(Some((ty, _))) = framer.next_message() {
            match ty {
                MsgType::Open => got_open = true,
                MsgType::Notification => return None,
                _ => {}
            }
        }
    }
    s.write_all(&frame::keepalive()).ok()?;
    let mut nlri = Vec::new();
    for k in 0..200u32 {
        nlri.extend_from_slice(&[24, 20 + (i % 50) as u8, (k >> 8) as u8 + (round % 7) as u8, k as u8]);
    }
    for (half, chunk) in nlri.chunks(400).enumerate() {
        let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 10, 2, 2];
        attrs.extend_from_slice(&asn.to_be_bytes());
        attrs.extend_from_slice(&(65000 + half as u32 + (round % 3) as u32).to_be_bytes());
        attrs.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 50]);
        attrs.extend_from_slice(&[0xc0, 8, 4, 0xfd, 0xe8, 0, round as u8]);
        s.write_all(&update_msg(&[], &attrs, chunk)).ok()?;
    }
    s.write_all(&update_msg(&nlri[..400], &[], &[])).ok()?;
    std::thread::sleep(Duration::from_millis(20 + u64::from(i % 5) * 10));
    if round % 2 == 0 {
        // Cease / Administrative Shutdown, then close.
        let mut n = vec![0xff; 16];
        n.extend_from_slice(&[0, 21, 3, 6, 2]);
        let _ = s.write_all(&n);
    }
    Some(())
}

fn proc_count(pid: u32, what: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/{what}")).map(|d| d.count()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn all_down(f: &Focld) -> bool {
    f.query("peer_list")
        .ok()
        .and_then(|v| v.as_array().cloned())
        .is_some_and(|peers| peers.iter().all(|p| p["state"] != "Established"))
}

#[test]
fn fifty_flapping_peers_leave_no_threads_descriptors_or_memory_behind() {
    let secs: u64 = std::env::var("FOCL_CHURN_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let dir = TempDir::new("churn");
    let port = free_port("127.0.0.1");
    let mut cfg = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\n\
         control_socket = \"{d}/f.sock\"\nlog_level = \"info\"\n\n[archive]\nenabled = true\ndir = \"{d}/mrt\"\n\
         updates_interval_secs = 60\n",
        d = dir.path().display()
    );
    for i in 0..PEERS {
        cfg.push_str(&format!(
            "\n[[peers]]\naddress = \"{}\"\nremote_as = {}\npassive = true\nhold_time_secs = 30\n",
            peer_addr(i),
            64600 + i
        ));
    }
    cfg.push_str("\n[[prefixes]]\nnetwork = \"203.0.113.0/24\"\nnext_hop = \"192.0.2.1\"\n");
    let f = Focld::start(dir.path(), "f", &cfg);
    let pid = f.child.as_ref().expect("running").id();
    let target = SocketAddr::from(([127, 0, 0, 1], port));

    // A first round, so buffers and caches exist before the baseline.
    for i in 0..PEERS {
        let _ = one_session(i, 0, target);
    }
    assert!(wait_for(Duration::from_secs(20), || all_down(&f)), "all sessions down after the first round");
    std::thread::sleep(Duration::from_secs(1));
    let base = (proc_count(pid, "task"), proc_count(pid, "fd"), rss_kib(pid));

    let sessions = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..10u32)
        .map(|w| {
            let (sessions, refused) = (sessions.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut round = 1u64;
                while Instant::now() < end {
                    for i in (w * 5)..(w * 5 + 5) {
                        match one_session(i, round, target) {
                            Some(()) => sessions.fetch_add(1, Ordering::Relaxed),
                            None => refused.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    round += 1;
                }
            })
        })
        .collect();
    let mut peak = (0, 0, 0);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_secs(2));
        let now = (proc_count(pid, "task"), proc_count(pid, "fd"), rss_kib(pid));
        peak = (peak.0.max(now.0), peak.1.max(now.1), peak.2.max(now.2));
        assert!(f.query("rib_summary").is_ok(), "focld answers during the churn");
    }
    for w in workers {
        let _ = w.join();
    }
    assert!(wait_for(Duration::from_secs(30), || all_down(&f)), "all sessions down at the end");
    // A file finished at a rotation is compressed on a short-lived thread of its own: give
    // such threads (and their open files) time to end before comparing.
    wait_for(Duration::from_secs(20), || proc_count(pid, "task") == base.0 && proc_count(pid, "fd") <= base.1 + 2);
    let after = (proc_count(pid, "task"), proc_count(pid, "fd"), rss_kib(pid));
    let n = sessions.load(Ordering::Relaxed);
    eprintln!(
        "churn: {secs} s, {n} sessions ({} refused or cut short); threads {} -> peak {} -> {}, \
         fds {} -> peak {} -> {}, RSS {} KiB -> peak {} KiB -> {} KiB",
        refused.load(Ordering::Relaxed),
        base.0,
        peak.0,
        after.0,
        base.1,
        peak.1,
        after.1,
        base.2,
        peak.2,
        after.2
    );
    assert!(n >= PEERS as u64 * 2, "the peers really churned: {n} sessions");
    assert_eq!(after.0, base.0, "thread count back to the baseline");
    assert!(after.1 <= base.1 + 2, "file descriptors back near the baseline: {} -> {}", base.1, after.1);
    assert!(after.2 <= base.2 + base.2 / 2 + 16 * 1024, "memory back near the baseline: {} -> {} KiB", base.2, after.2);
    let routes = f.query("rib_summary").expect("rib summary");
    assert_eq!(routes["routes"]["ipv4_unicast"], 0, "every route went with its session");
    let log = f.log_text();
    assert!(!log.contains("panicked"), "no panic");
    let flaps: u64 = f
        .query("peer_list")
        .ok()
        .and_then(|v| v.as_array().map(|a| a.iter().filter_map(|p| p["flaps"].as_u64()).sum()))
        .unwrap_or(0);
    assert!(flaps >= n, "every session counted as a flap: {flaps} < {n}");
}
