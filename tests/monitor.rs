//! `focl monitor`: a live stream of what peers send. Two subscribers watch a peer announce and
//! withdraw (one filtered to a prefix); state changes and NOTIFICATIONs arrive as their own
//! events; a subscriber that reads nothing is cut off with a closing line and counted, while
//! the session and the other subscriber carry on.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PEER: &str = "127.0.0.161";

fn config(dir: &std::path::Path, port: u16) -> String {
    format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\ncontrol_socket = \"{}/m.sock\"\n\n\
         [[peers]]\nname = \"feed\"\naddress = \"{PEER}\"\nremote_as = 65010\npassive = true\nhold_time_secs = 30\n",
        dir.display()
    )
}

/// `focl -j monitor ARGS` with its lines delivered on a channel.
struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Subscriber {
    fn start(f: &Focld, args: &[&str]) -> Subscriber {
        let mut child = Command::new(focl_bin())
            .arg("-s")
            .arg(&f.socket)
            .args(["-j", "monitor"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("focl monitor");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        Subscriber { child, lines }
    }

    /// Events until `want` matches one (returned), or `within` passes.
    fn until(&self, within: Duration, want: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) if want(&v) => return Some(v),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn subscribers(f: &Focld) -> u64 {
    f.query("status").ok().and_then(|s| s["monitor"]["subscribers"].as_u64()).unwrap_or(0)
}

/// ORIGIN IGP, AS_PATH [65010, 65020], NEXT_HOP 192.0.2.10.
fn attrs() -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0];
    a.extend_from_slice(&[0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xf2, 0, 0, 0xfd, 0xfc]);
    a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 10]);
    a
}

fn announces(v: &Value, prefix: &str) -> bool {
    v["type"] == "UPDATE"
        && v["announcements"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["prefixes"].as_array().into_iter().flatten().any(|p| p == prefix))
}

fn withdraws(v: &Value, prefix: &str) -> bool {
    v["type"] == "UPDATE" && v["withdrawals"].as_array().into_iter().flatten().any(|p| p == prefix)
}

#[test]
fn two_subscribers_see_announcements_withdrawals_and_state_changes() {
    let dir = TempDir::new("monitor-two");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "m", &config(dir.path(), port));
    let all = Subscriber::start(&f, &[]);
    let one = Subscriber::start(&f, &["--prefix", "198.51.100.0/24"]);
    assert!(wait_for(Duration::from_secs(5), || subscribers(&f) == 2), "both subscribed");

    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish(PEER, target, 65010, Ipv4Addr::new(10, 0, 0, 161));
    f.wait_established(PEER, Duration::from_secs(10));
    let up = all.until(Duration::from_secs(5), |v| v["type"] == "STATE" && v["new_state"] == "Established");
    let up = up.expect("the session coming up is an event");
    assert_eq!(
        (up["peer"].as_str(), up["peer_name"].as_str(), up["peer_asn"].as_u64()),
        (Some(PEER), Some("feed"), Some(65010))
    );
    assert_eq!(up["old_state"], "OpenConfirm");

    s.send(&update_msg(&[], &attrs(), &[24, 198, 51, 100, 24, 203, 0, 113]));
    let a = all.until(Duration::from_secs(5), |v| announces(v, "198.51.100.0/24")).expect("announcement");
    assert_eq!(a["announcements"][0]["prefixes"], serde_json::json!(["198.51.100.0/24", "203.0.113.0/24"]));
    assert_eq!(a["announcements"][0]["next_hop"], "192.0.2.10");
    assert_eq!(a["path"], serde_json::json!([65010, 65020]));
    assert_eq!(a["origin"], "igp");
    assert!(a["timestamp"].as_f64().is_some_and(|t| t > 1.7e9), "{a}");
    let b = one.until(Duration::from_secs(5), |v| announces(v, "198.51.100.0/24")).expect("filtered announcement");
    assert_eq!(b["announcements"][0]["prefixes"], serde_json::json!(["198.51.100.0/24"]), "only the prefix asked for");

    s.send(&update_msg(&[24, 198, 51, 100], &[], &[]));
    assert!(all.until(Duration::from_secs(5), |v| withdraws(v, "198.51.100.0/24")).is_some(), "withdrawal");
    assert!(one.until(Duration::from_secs(5), |v| withdraws(v, "198.51.100.0/24")).is_some(), "filtered withdrawal");

    // The peer says goodbye: its NOTIFICATION, then the state change.
    s.send(
        &focl::wire::notify::Notification::cease(focl::wire::notify::CeaseSubcode::AdministrativeShutdown, Some("bye"))
            .encode(),
    );
    let n = all.until(Duration::from_secs(5), |v| v["type"] == "NOTIFICATION").expect("NOTIFICATION");
    assert_eq!((n["code"].as_u64(), n["subcode"].as_u64(), n["reason"].as_str()), (Some(6), Some(2), Some("bye")));
    let down = all.until(Duration::from_secs(5), |v| v["type"] == "STATE" && v["old_state"] == "Established");
    assert!(down.is_some(), "the session going down");
    // The prefix-filtered subscriber sees neither.
    assert!(one.until(Duration::from_millis(500), |v| v["type"] != "UPDATE").is_none());

    // A subscriber that goes away is noticed.
    drop(one);
    assert!(wait_for(Duration::from_secs(5), || subscribers(&f) == 1), "the one that left is gone");
}

#[test]
fn a_subscriber_that_reads_nothing_is_cut_off_and_the_session_is_unaffected() {
    let dir = TempDir::new("monitor-slow");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "m", &config(dir.path(), port));
    // The slow one: subscribes on a raw socket and then does not read.
    let mut slow = std::os::unix::net::UnixStream::connect(&f.socket).expect("connect");
    slow.write_all(b"{\"id\":5,\"cmd\":\"monitor\",\"args\":{}}\n").expect("subscribe");
    let fast = Subscriber::start(&f, &["--type", "update"]);
    assert!(wait_for(Duration::from_secs(5), || subscribers(&f) == 2), "both subscribed");

    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = RawSpeaker::establish(PEER, target, 65010, Ipv4Addr::new(10, 0, 0, 161));
    f.wait_established(PEER, Duration::from_secs(10));
    // 20,000 UPDATEs, one /32 each: several MB of events for a subscriber that reads nothing.
    let a = attrs();
    let mut batch = Vec::new();
    for i in 0..20_000u32 {
        let b = (i + 1).to_be_bytes();
        batch.extend_from_slice(&update_msg(&[], &a, &[32, 100, b[1], b[2], b[3]]));
        if batch.len() > 64 * 1024 {
            s.send(&batch);
            batch.clear();
        }
    }
    s.send(&batch);
    let cut =
        wait_for(Duration::from_secs(60), || f.query("status").ok().is_some_and(|st| st["monitor"]["cut_off"] == 1));
    assert!(cut, "the slow subscriber is cut off: {:?}", f.query("status").map(|s| s["monitor"].clone()));
    // The session never noticed, and the reading subscriber still gets what follows.
    s.send(&update_msg(&[], &a, &[24, 198, 51, 100]));
    let last = fast.until(Duration::from_secs(30), |v| announces(v, "198.51.100.0/24"));
    assert!(last.is_some(), "the reading subscriber goes on");
    let show = f.focl(&["peer", "show", PEER]).expect("peer show");
    assert_eq!((show["state"].as_str(), show["flaps"].as_u64()), (Some("Established"), Some(0)), "{show}");
    assert_eq!(subscribers(&f), 1);

    // Once the slow one reads, it finds data lines and then the closing line that says why.
    slow.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut last_line = String::new();
    for l in BufReader::new(slow).lines() {
        match l {
            Ok(l) => last_line = l,
            Err(_) => break,
        }
    }
    let closing: Value = serde_json::from_str(&last_line).expect("a JSON closing line");
    assert_eq!((closing["id"].as_u64(), closing["ok"].as_bool()), (Some(5), Some(false)), "{closing}");
    assert_eq!(closing["error"]["code"], "slow_consumer");
    assert!(f.log_text().contains("monitor: subscriber 5 cut off"), "logged");
}

#[test]
fn a_bad_filter_is_refused_with_a_closing_line_and_focl_exits_1() {
    let dir = TempDir::new("monitor-bad");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "m", &config(dir.path(), port));
    for args in [&["--peer", "nobody"][..], &["--type", "weather"], &["--prefix", "300.0.0.0/8"]] {
        let out = Command::new(focl_bin()).arg("-s").arg(&f.socket).arg("monitor").args(args).output().expect("focl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.is_empty(), "{args:?}: says why");
    }
    assert_eq!(subscribers(&f), 0);
}
