//! GTSM (RFC 5082) and multihop on loopback, where no hop is counted: two focld processes
//! with `ttl_security` on both ends reach Established; a reload that changes one peer's
//! `multihop` resets that peer only; a connection whose SYN left with TTL 64 is refused, and
//! `focl peer show` names GTSM as the likely cause. Routers in between are shown by
//! `scripts/interop/run_multihop_gtsm.sh`.

mod common;

use common::*;
use focl::session::sock::{self, ttl};
use focl::wire::frame::{self, MsgType};
use focl::wire::open::{Capabilities, OpenMsg};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path, name: &str, asn: u32, listen: &str, peers: &str) -> String {
    format!(
        "[global]\nasn = {asn}\nrouter_id = \"192.0.2.{}\"\nlisten_addr = \"{listen}\"\n\
         control_socket = \"{d}/{name}.sock\"\nlog_level = \"debug\"\n{peers}",
        asn - 65000,
        d = dir.display()
    )
}

#[test]
fn gtsm_on_both_ends_establishes_and_a_reload_of_multihop_resets_only_that_peer() {
    if !ttl::MIN_TTL_SUPPORTED {
        return;
    }
    let dir = TempDir::new("gtsm-reload");
    let (pa, pb) = (free_port("127.0.0.51"), free_port("127.0.0.52"));
    let b = Focld::start(
        dir.path(),
        "b",
        &config(
            dir.path(),
            "b",
            65002,
            &format!("127.0.0.52:{pb}"),
            &format!(
                "\n[[peers]]\naddress = \"127.0.0.51\"\nremote_as = 65001\nremote_port = {pa}\n\
                 passive = true\nhold_time_secs = 9\nttl_security = true\n"
            ),
        ),
    );
    let peers_of_a = |multihop: u8| {
        format!(
            "\n[[peers]]\naddress = \"127.0.0.52\"\nremote_as = 65002\nremote_port = {pb}\n\
             hold_time_secs = 9\nconnect_retry_secs = 1\nttl_security = true\nmultihop = {multihop}\n\
             \n[[peers]]\naddress = \"127.0.0.53\"\nremote_as = 65003\npassive = true\n"
        )
    };
    let a = Focld::start(dir.path(), "a", &config(dir.path(), "a", 65001, &format!("127.0.0.51:{pa}"), &peers_of_a(1)));
    a.wait_established("127.0.0.52", Duration::from_secs(30));
    let show = a.focl(&["peer", "show", "127.0.0.52"]).expect("peer show");
    assert_eq!((show["ttl_security"].as_bool(), show["multihop"].as_u64()), (Some(true), Some(1)), "{show}");
    assert_eq!(show["gtsm_likely_cause"], false, "{show}");

    std::fs::write(&a.config, config(dir.path(), "a", 65001, &format!("127.0.0.51:{pa}"), &peers_of_a(2)))
        .expect("write");
    let r = a.focl(&["reload"]).expect("focl reload");
    assert_eq!(r["reset"], serde_json::json!(["127.0.0.52"]), "{r}");
    assert_eq!(r["unchanged"], 1, "{r}");
    a.wait_established("127.0.0.52", Duration::from_secs(30));
    assert_eq!(a.focl(&["peer", "show", "127.0.0.52"]).expect("peer show")["multihop"], 2);
    drop(b);
}

/// Connect from `local` with the given TTL options and wait for the handshake.
fn connect_with(local: &str, remote: SocketAddr, policy: ttl::TtlPolicy) -> std::net::TcpStream {
    let s = sock::connect_with_ttl(remote, Some(local.parse().expect("ip")), None, Some(policy)).expect("connect");
    s.set_nonblocking(false).expect("blocking");
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.peer_addr().is_err() {
        assert!(Instant::now() < deadline, "connect to {remote} did not complete");
        std::thread::sleep(Duration::from_millis(10));
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s
}

#[test]
fn a_syn_below_the_gtsm_minimum_is_refused_and_peer_show_names_gtsm_as_the_likely_cause() {
    if !ttl::MIN_TTL_SUPPORTED {
        return;
    }
    let dir = TempDir::new("gtsm-refused");
    let port = free_port("127.0.0.1");
    // A peer without GTSM keeps the minimum off the listener: the check is on the accepted socket.
    let peers = "\n[[peers]]\naddress = \"127.0.0.54\"\nremote_as = 65004\npassive = true\nttl_security = true\n\
                 \n[[peers]]\naddress = \"127.0.0.55\"\nremote_as = 65005\npassive = true\n";
    let a = Focld::start(dir.path(), "a", &config(dir.path(), "a", 65001, &format!("127.0.0.1:{port}"), peers));
    let target = SocketAddr::from(([127, 0, 0, 1], port));

    // TTL 64, what a host that does not do GTSM sends: closed before any message is read.
    let mut low = RawSpeaker::from_stream(connect_with("127.0.0.54", target, ttl::TtlPolicy::new(64, false)));
    assert_eq!(low.recv().map(|(ty, _)| ty), None, "closed without a message");
    let ok = wait_for(Duration::from_secs(5), || {
        a.focl(&["peer", "show", "127.0.0.54"]).map(|s| s["gtsm_likely_cause"] == true).unwrap_or(false)
    });
    let show = a.focl(&["peer", "show", "127.0.0.54"]).expect("peer show");
    assert!(ok, "gtsm_likely_cause: {show}");
    assert!(show["hint"].as_str().unwrap_or("").contains("GTSM (RFC 5082) is the likely cause"), "{show}");
    assert!(a.log_text().contains("its SYN arrived with TTL 64, below the GTSM minimum 255"), "{}", a.log_text());

    // TTL 255: the session comes up, and the hint goes away.
    let caps = Capabilities { four_octet_as: Some(65004), ..Default::default() };
    let mut good = RawSpeaker::from_stream(connect_with("127.0.0.54", target, ttl::TtlPolicy::new(1, true)));
    good.send(&OpenMsg::new(65004, 90, Ipv4Addr::new(10, 0, 0, 54), caps).encode());
    assert_eq!(good.recv().map(|(ty, _)| ty), Some(MsgType::Open));
    good.send(&frame::keepalive());
    assert_eq!(good.recv().map(|(ty, _)| ty), Some(MsgType::Keepalive));
    a.wait_established("127.0.0.54", Duration::from_secs(5));
    assert_eq!(a.focl(&["peer", "show", "127.0.0.54"]).expect("peer show")["gtsm_likely_cause"], false);
}
