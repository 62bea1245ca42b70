//! Graceful restart (RFC 4724, RFC 8538, RFC 9494) with focld as the helper, against a
//! hand-driven speaker on loopback that restarts: its routes stay (stale) while it is away,
//! End-of-RIB sweeps what it did not announce again, the restart timer sweeps a speaker that
//! never returns, and a Hard Reset flushes at once.

mod common;

use common::*;
use focl::prefix::Family;
use focl::wire::frame::MsgType;
use focl::wire::graceful::GrCap;
use focl::wire::notify::{CeaseSubcode, ErrorCode, Notification};
use focl::wire::open::{Capabilities, OpenMsg};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

const PEER: &str = "127.0.0.3";

fn config(dir: &std::path::Path, port: u16, extra: &str) -> String {
    format!(
        "{}\n[[peers]]\naddress = \"{PEER}\"\nremote_as = 65010\npassive = true\n{extra}\n",
        global_section(dir, port)
    )
}

/// The speaker's OPEN: Graceful Restart for IPv4 with the F bit, N as asked, R after a restart.
fn open(restart_time: u16, n: bool, restarted: bool) -> OpenMsg {
    let caps = Capabilities {
        families: Family::ALL.to_vec(),
        route_refresh: true,
        four_octet_as: Some(65010),
        graceful_restart: Some(GrCap {
            restarting: restarted,
            notification: n,
            restart_time,
            families: vec![(Family::Ipv4Unicast, restarted)],
            other_families: 0,
        }),
        ..Default::default()
    };
    OpenMsg::new(65010, 90, Ipv4Addr::new(192, 0, 2, 3), caps)
}

/// ORIGIN IGP, AS_PATH [65010], NEXT_HOP 127.0.0.3.
fn attrs() -> Vec<u8> {
    let mut a = vec![0x40, 1, 1, 0];
    a.extend_from_slice(&[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xf2]);
    a.extend_from_slice(&[0x40, 3, 4, 127, 0, 0, 3]);
    a
}

/// 10.0.0.0/8, 11.0.0.0/8, 12.0.0.0/8.
const THREE: [u8; 6] = [8, 10, 8, 11, 8, 12];

fn connect(f: &Focld, port: u16, o: &OpenMsg) -> RawSpeaker {
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let s = RawSpeaker::establish_with(PEER, remote, o);
    f.wait_established(PEER, Duration::from_secs(10));
    s
}

fn peer_show(f: &Focld) -> Value {
    f.focl(&["peer", "show", PEER]).unwrap_or_default()
}

fn stale_in_rib(f: &Focld) -> usize {
    f.rib_in(PEER).iter().filter(|r| r["stale"] == true).count()
}

fn summary_routes_and_stale(f: &Focld) -> (u64, u64) {
    let s = f.focl(&["rib", "summary"]).unwrap_or_default();
    let p = &s["peers"][0];
    (p["routes"]["ipv4_unicast"].as_u64().unwrap_or(0), p["stale"]["ipv4_unicast"].as_u64().unwrap_or(0))
}

#[test]
fn a_restarting_peer_keeps_its_routes_stale_and_end_of_rib_sweeps_what_it_did_not_announce_again() {
    let dir = TempDir::new("gr-eor");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, ""));
    let mut s = connect(&f, port, &open(60, true, false));
    s.send(&update_msg(&[], &attrs(), &THREE));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3));
    let caps = peer_show(&f)["capabilities"].clone();
    let row = caps.as_array().unwrap().iter().find(|c| c["name"] == "graceful_restart(ipv4_unicast)").cloned();
    assert_eq!(row.map(|r| r["negotiated"].clone()), Some(Value::Bool(true)), "{caps}");

    // The speaker's process dies: its TCP connection closes without a NOTIFICATION.
    drop(s);
    assert!(wait_for(Duration::from_secs(5), || peer_show(&f)["state"] != "Established"));
    assert!(wait_for(Duration::from_secs(5), || stale_in_rib(&f) == 3), "{:?}", f.rib_in(PEER));
    assert_eq!(f.rib_in(PEER).len(), 3, "no route withdrawn");
    assert_eq!(summary_routes_and_stale(&f), (3, 3), "rib summary keeps counting them, and says stale");
    let p = peer_show(&f);
    assert_eq!(p["stale_routes"]["ipv4_unicast"], 3);
    assert_eq!(p["graceful_restart"]["families"][0]["phase"], "restarting", "{p}");
    let left = p["graceful_restart"]["families"][0]["expires_in_secs"].as_u64().unwrap();
    assert!((55..=60).contains(&left), "the speaker's restart time, 60 s: {left}");
    let text = std::process::Command::new(focl_bin())
        .args(["-s", &dir.path().join("f.sock").to_string_lossy(), "rib", "in", PEER])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("stale"), "the text marks stale routes");
    let text_of = |args: &[&str]| {
        let sock = dir.path().join("f.sock");
        let out = std::process::Command::new(focl_bin()).arg("-s").arg(&sock).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let show = text_of(&["peer", "show", PEER]);
    assert!(show.contains("Stale routes: 3 IPv4, 0 IPv6"), "{show}");
    assert!(show.contains("Graceful restart in progress (RFC 4724)"), "{show}");
    assert!(show.contains("ipv4_unicast: 3 stale, restart timer"), "{show}");
    let summary = text_of(&["rib", "summary"]);
    assert!(summary.lines().next().is_some_and(|l| l.contains("Stale")), "{summary}");

    // Back, with R and the F bit: 11/8 is announced again, then End-of-RIB.
    let mut s = connect(&f, port, &open(60, true, true));
    assert_eq!(stale_in_rib(&f), 3, "still stale until End-of-RIB");
    assert_eq!(peer_show(&f)["graceful_restart"]["families"][0]["phase"], "waiting_eor");
    s.send(&update_msg(&[], &attrs(), &[8, 11]));
    assert!(wait_for(Duration::from_secs(5), || stale_in_rib(&f) == 2));
    s.send(&update_msg(&[], &[], &[])); // End-of-RIB for IPv4 (RFC 4724 §2)
    assert!(wait_for(Duration::from_secs(5), || f.rib_in_prefixes(PEER) == ["11.0.0.0/8"]), "{:?}", f.rib_in(PEER));
    assert_eq!(stale_in_rib(&f), 0);
    assert!(peer_show(&f).get("graceful_restart").is_none(), "the restart is over");
    assert_eq!(summary_routes_and_stale(&f), (1, 0));
}

#[test]
fn a_peer_that_never_comes_back_is_swept_at_its_restart_time_and_a_new_connection_is_a_restart() {
    let dir = TempDir::new("gr-timer");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, ""));
    let mut s = connect(&f, port, &open(3, false, false));
    s.send(&update_msg(&[], &attrs(), &THREE));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3));

    // A second connection while the session is Established: the speaker restarted (RFC 4724
    // §4.2). The old session closes, the routes stay stale, the new session comes up.
    let _old = s;
    let mut s = connect(&f, port, &open(3, false, true));
    assert_eq!(stale_in_rib(&f), 3, "{:?}", f.rib_in(PEER));
    s.send(&update_msg(&[], &[], &[]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).is_empty()), "nothing announced again: swept");

    s.send(&update_msg(&[], &attrs(), &THREE));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3));
    let gone = Instant::now();
    drop(s);
    assert!(wait_for(Duration::from_secs(2), || stale_in_rib(&f) == 3));
    assert!(wait_for(Duration::from_secs(8), || f.rib_in(PEER).is_empty()), "swept at the restart timer");
    let after = gone.elapsed();
    assert!(after >= Duration::from_millis(2500), "not before the 3 s restart time: {after:?}");
    assert!(f.log_text().contains("restart timer expired"));
}

#[test]
fn with_n_a_notification_keeps_routes_a_hard_reset_flushes_and_an_operator_reset_is_sent_as_hard_reset() {
    let dir = TempDir::new("gr-hard");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, ""));
    let mut s = connect(&f, port, &open(60, true, false));
    s.send(&update_msg(&[], &attrs(), &THREE));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3));
    // RFC 8538 §4: any NOTIFICATION but Hard Reset is a restart when N is negotiated.
    s.send(&Notification::cease(CeaseSubcode::AdministrativeReset, None).encode());
    assert!(wait_for(Duration::from_secs(5), || stale_in_rib(&f) == 3), "{:?}", f.rib_in(PEER));

    let mut s = connect(&f, port, &open(60, true, true));
    s.send(&update_msg(&[], &attrs(), &THREE));
    s.send(&update_msg(&[], &[], &[]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3 && stale_in_rib(&f) == 0));
    // RFC 8538 §3: Cease / Hard Reset flushes at once.
    s.send(&Notification::new(ErrorCode::Cease, CeaseSubcode::HardReset as u8, vec![6, 2]).encode());
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).is_empty()), "{:?}", f.rib_in(PEER));

    // An operator reset goes to the speaker as Hard Reset, the Administrative Reset inside.
    let mut s = connect(&f, port, &open(60, true, false));
    s.send(&update_msg(&[], &attrs(), &THREE));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3));
    f.focl(&["peer", "reset", PEER]).expect("reset");
    let mut got = None;
    while let Some((ty, raw)) = s.recv() {
        if ty == MsgType::Notification {
            got = Some(raw[19..].to_vec());
            break;
        }
    }
    let body = got.expect("a NOTIFICATION");
    assert_eq!(&body[..4], &[6, 9, 6, 4], "Cease / Hard Reset carrying Cease / Administrative Reset");
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).is_empty()), "our Hard Reset flushes too");

    // Without N, a NOTIFICATION ends graceful restart (RFC 4724): routes go at once.
    let mut s = connect(&f, port, &open(60, false, false));
    s.send(&update_msg(&[], &attrs(), &THREE));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3));
    s.send(&Notification::cease(CeaseSubcode::AdministrativeReset, None).encode());
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).is_empty()));
}

#[test]
fn with_graceful_restart_off_a_closed_session_takes_its_routes_at_once() {
    let dir = TempDir::new("gr-off");
    let port = free_port("127.0.0.1");
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, "graceful_restart = \"off\""));
    let mut s = connect(&f, port, &open(60, true, false));
    let sent = peer_show(&f)["capabilities_sent"].to_string();
    assert!(!sent.contains("graceful_restart"), "{sent}");
    s.send(&update_msg(&[], &attrs(), &THREE));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3));
    drop(s);
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).is_empty()));
}

#[test]
fn the_update_files_manifest_tells_when_families_went_stale_and_were_swept_and_a_snapshot_counts_stale_routes() {
    let dir = TempDir::new("gr-archive");
    let port = free_port("127.0.0.1");
    let archive = dir.path().join("archive");
    let text = format!(
        "{}\n[archive]\nenabled = true\ndir = \"{}\"\ncompression = \"none\"\n",
        config(dir.path(), port, ""),
        archive.display()
    );
    let f = Focld::start(dir.path(), "f", &text);
    let mut s = connect(&f, port, &open(60, true, false));
    s.send(&update_msg(&[], &attrs(), &THREE));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(PEER).len() == 3));
    drop(s);
    assert!(wait_for(Duration::from_secs(5), || stale_in_rib(&f) == 3));

    // A snapshot taken during the restart holds the stale routes, and its manifest counts them.
    f.focl(&["archive", "snapshot"]).expect("snapshot");
    assert!(wait_for(Duration::from_secs(10), || !archive_files(&archive, "rib").is_empty()));
    let rib = archive_files(&archive, "rib").remove(0);
    let read = |p: &std::path::Path| -> Value {
        serde_json::from_slice(&std::fs::read(format!("{}.json", p.display())).expect("manifest")).expect("JSON")
    };
    assert!(wait_for(Duration::from_secs(5), || std::path::Path::new(&format!("{}.json", rib.display())).exists()));
    let m = read(&rib);
    assert_eq!(m["stale_routes"], serde_json::json!([{"peer": PEER, "routes": 3}]), "{m}");
    let elems = bgpkit_parser::BgpkitParser::from_reader(open_mrt(&rib)).into_elem_iter().count();
    assert_eq!(elems, 3, "the stale routes are in the snapshot");

    let mut s = connect(&f, port, &open(60, true, true));
    s.send(&update_msg(&[], &attrs(), &[8, 11]));
    s.send(&update_msg(&[], &[], &[]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in_prefixes(PEER) == ["11.0.0.0/8"]));
    let rel = f.focl(&["archive", "rotate"]).expect("rotate")["finished"].as_str().expect("a file").to_string();
    let m = read(&archive.join(&rel));
    let events: Vec<(String, String, u64)> = m["graceful_restart"]
        .as_array()
        .expect("graceful_restart events in the manifest")
        .iter()
        .map(|e| {
            assert_eq!(e["peer"], PEER);
            (e["family"].as_str().unwrap().into(), e["event"].as_str().unwrap().into(), e["routes"].as_u64().unwrap())
        })
        .collect();
    let want = [("ipv4_unicast".into(), "stale".into(), 3), ("ipv4_unicast".into(), "swept".into(), 2)];
    assert_eq!(events, want, "{m}");
    assert_eq!(m["graceful_restart"][1]["reason"], "End-of-RIB");
}

/// focld A as a process of its own, so the test can send it signals and start it with `-R`.
struct Process(std::process::Child);

impl Process {
    fn start(config: &std::path::Path, log: &std::path::Path, restarted: bool) -> Process {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log");
        let mut c = std::process::Command::new(focld_bin());
        c.arg("--config").arg(config).stdout(std::process::Stdio::null()).stderr(log);
        if restarted {
            c.arg("-R");
        }
        Process(c.spawn().expect("focld"))
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, sig) };
    }

    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.0.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn focld_restarting_gracefully_keeps_its_prefixes_at_its_peer_and_a_plain_stop_does_not() {
    let dir = TempDir::new("gr-speaker");
    let (port_a, port_b) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let a = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port_a}\"\n\
         control_socket = \"{d}/a.sock\"\nlog_level = \"debug\"\n\n[[peers]]\naddress = \"127.0.0.2\"\n\
         remote_as = 65002\nremote_port = {port_b}\nconnect_retry_secs = 1\ngraceful_restart = \"on\"\n\
         restart_time_secs = 30\n\n[[prefixes]]\nnetwork = \"203.0.113.0/24\"\n",
        d = dir.path().display()
    );
    let b = format!(
        "[global]\nasn = 65002\nrouter_id = \"192.0.2.2\"\nlisten_addr = \"127.0.0.2:{port_b}\"\n\
         control_socket = \"{d}/b.sock\"\nlog_level = \"debug\"\n\n[[peers]]\naddress = \"127.0.0.1\"\n\
         remote_as = 65001\npassive = true\n",
        d = dir.path().display()
    );
    let b = Focld::start(dir.path(), "b", &b);
    let a_conf = dir.path().join("a.toml");
    std::fs::write(&a_conf, a).unwrap();
    let a_log = dir.path().join("a.log");
    let mut a = Process::start(&a_conf, &a_log, false);
    let from_a = |b: &Focld| b.rib_in("127.0.0.1");
    assert!(wait_for(Duration::from_secs(15), || from_a(&b).len() == 1), "{}", b.log_text());

    // SIGUSR2: A stops for a restart, closing the session without a NOTIFICATION.
    a.signal(libc::SIGUSR2);
    assert_eq!(a.wait_exit(), Some(0), "{}", std::fs::read_to_string(&a_log).unwrap_or_default());
    assert!(wait_for(Duration::from_secs(5), || b.peer_state("127.0.0.1") != "Established"));
    let kept = from_a(&b);
    assert_eq!(kept.len(), 1, "B keeps A's prefix while A restarts");
    assert_eq!(kept[0]["stale"], true);
    let show = b.focl(&["peer", "show", "127.0.0.1"]).unwrap();
    assert_eq!(show["last_error"], Value::Null, "no NOTIFICATION came: {show}");

    // focld -R: the R and F bits, the prefix again, End-of-RIB; B's route is fresh again.
    let mut a = Process::start(&a_conf, &a_log, true);
    b.wait_established("127.0.0.1", Duration::from_secs(15));
    let received = b.focl(&["peer", "show", "127.0.0.1"]).unwrap()["capabilities_received"].to_string();
    assert!(received.contains("graceful_restart(30s, R, N, ipv4_unicast F, ipv6_unicast F)"), "{received}");
    assert!(wait_for(Duration::from_secs(5), || {
        let r = from_a(&b);
        r.len() == 1 && r[0]["stale"] == false
    }));
    assert!(b.focl(&["peer", "show", "127.0.0.1"]).unwrap().get("graceful_restart").is_none());

    // A plain stop (SIGTERM): Cease (as Hard Reset with N) and B drops the prefix at once.
    a.signal(libc::SIGTERM);
    assert_eq!(a.wait_exit(), Some(0));
    assert!(wait_for(Duration::from_secs(5), || from_a(&b).is_empty()), "{:?}", from_a(&b));
}
