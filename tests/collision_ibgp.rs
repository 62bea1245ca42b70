//! Two focld that both connect (RFC 4271 §6.8 connection collision) on an iBGP session:
//! exactly one connection survives, routes carry LOCAL_PREF 100 and an empty AS_PATH, and a
//! refresh towards a peer without the route refresh capability is refused with a clear error.

mod common;

use common::*;
use std::time::Duration;

/// One side of the pair: (address, port) of itself and of its peer.
struct Side<'a> {
    me: (&'a str, u16),
    peer: (&'a str, u16),
    id: &'a str,
    prefix: &'a str,
    route_refresh: bool,
}

fn config(dir: &std::path::Path, s: &Side) -> String {
    format!(
        r#"
[global]
asn = 65000
router_id = "{id}"
listen_addr = "{me}:{port}"
control_socket = "{dir}/{id}.sock"
log_level = "debug"

[[peers]]
address = "{peer}"
remote_as = 65000
remote_port = {peer_port}
hold_time_secs = 9
connect_retry_secs = 1
route_refresh = {rr}

[[prefixes]]
network = "{prefix}"
"#,
        dir = dir.display(),
        id = s.id,
        me = s.me.0,
        port = s.me.1,
        peer = s.peer.0,
        peer_port = s.peer.1,
        rr = s.route_refresh,
        prefix = s.prefix
    )
}

#[test]
fn simultaneous_connects_leave_one_ibgp_session_with_local_pref() {
    let dir = TempDir::new("collide");
    let (ip_a, ip_b) = ("127.0.0.51", "127.0.0.52");
    let (pa, pb) = (free_port(ip_a), free_port(ip_b));
    let ca = config(
        dir.path(),
        &Side { me: (ip_a, pa), peer: (ip_b, pb), id: "192.0.2.51", prefix: "203.0.113.0/24", route_refresh: true },
    );
    let cb = config(
        dir.path(),
        &Side { me: (ip_b, pb), peer: (ip_a, pa), id: "192.0.2.52", prefix: "198.51.100.0/24", route_refresh: false },
    );
    let a = Focld::start(dir.path(), "192.0.2.51", &ca);
    let b = Focld::start(dir.path(), "192.0.2.52", &cb);
    a.wait_established(ip_b, Duration::from_secs(30));
    b.wait_established(ip_a, Duration::from_secs(10));

    // Stays up: one surviving connection, not two sessions fighting.
    std::thread::sleep(Duration::from_secs(3));
    let sa = a.focl(&["peer", "show", ip_b]).unwrap();
    let sb = b.focl(&["peer", "show", ip_a]).unwrap();
    assert_eq!(sa["state"], "Established");
    assert_eq!(sb["state"], "Established");
    assert_eq!(sa["flaps"], 0, "{sa}");
    assert_eq!(sa["local_endpoint"], sb["remote_endpoint"], "both see the same TCP connection");

    // iBGP: empty AS_PATH, LOCAL_PREF 100, next hop = the sender's address.
    assert!(wait_for(Duration::from_secs(5), || a.rib_in_prefixes(ip_b) == ["198.51.100.0/24"]));
    let r = &a.rib_in(ip_b)[0];
    assert_eq!(r["as_path"], "");
    assert_eq!(r["local_pref"], 100);
    assert_eq!(r["next_hop"], ip_b);

    // B did not advertise route refresh: A refuses to send one, saying why and what to do.
    let err = a.focl(&["peer", "refresh", ip_b]).unwrap_err();
    assert!(err.contains("route refresh capability") && err.contains("focl peer reset"), "{err}");
    // B advertised nothing, but A did: B may refresh A.
    assert!(b.focl(&["peer", "refresh", ip_a, "ipv4"]).is_ok());

    // An operator reset brings the session back.
    a.focl(&["peer", "reset", ip_b]).expect("reset");
    assert!(wait_for(Duration::from_secs(5), || {
        a.focl(&["peer", "show", ip_b]).map(|v| v["flaps"] == 1).unwrap_or(false)
    }));
    a.wait_established(ip_b, Duration::from_secs(30));
    let last = &a.focl(&["peer", "show", ip_b]).unwrap()["last_error"];
    // Both focld set the N bit (RFC 8538): an operator reset goes as Hard Reset carrying it.
    assert_eq!(last["name"], "Cease / Hard Reset (Cease / Administrative Reset)", "{last}");
    assert_eq!(last["direction"], "sent");
}

/// Two focld, both active, started at the same instant, 50 times (iBGP and eBGP in turn):
/// every run reaches one Established session (both sides on the same TCP connection) within
/// 2 connect-retry intervals of both being up, and nobody ever sends or gets an FSM error.
#[test]
fn two_active_focld_started_at_the_same_instant_fifty_times_reach_one_session_without_fsm_errors() {
    let (ip_a, ip_b) = ("127.0.0.53", "127.0.0.54");
    let connect_retry = Duration::from_secs(1); // connect_retry_secs in `config`
    let started = std::time::Instant::now();
    for run in 0..50 {
        let dir = TempDir::new(&format!("simul-{run}"));
        let (pa, pb) = (free_port(ip_a), free_port(ip_b));
        let mut ca = config(
            dir.path(),
            &Side { me: (ip_a, pa), peer: (ip_b, pb), id: "192.0.2.53", prefix: "203.0.113.0/24", route_refresh: true },
        );
        let mut cb = config(
            dir.path(),
            &Side {
                me: (ip_b, pb),
                peer: (ip_a, pa),
                id: "192.0.2.54",
                prefix: "198.51.100.0/24",
                route_refresh: true,
            },
        );
        if run % 2 == 1 {
            // eBGP: A is AS 65001.
            ca = ca.replace("\nasn = 65000\n", "\nasn = 65001\n");
            cb = cb.replace("remote_as = 65000", "remote_as = 65001");
        }
        let pair = Focld::start_together(dir.path(), &[("192.0.2.53", &ca), ("192.0.2.54", &cb)]);
        let (a, b) = (&pair[0], &pair[1]);
        let up =
            wait_for(2 * connect_retry, || a.peer_state(ip_b) == "Established" && b.peer_state(ip_a) == "Established");
        assert!(up, "run {run}: not Established within 2 connect retries; A:\n{}\nB:\n{}", a.log_text(), b.log_text());
        let sa = a.request("peer_show", serde_json::json!({"peer": ip_b})).expect("A peer show");
        let sb = b.request("peer_show", serde_json::json!({"peer": ip_a})).expect("B peer show");
        assert_eq!(sa["local_endpoint"], sb["remote_endpoint"], "run {run}: one TCP connection");
        for (f, name) in [(a, "A"), (b, "B")] {
            let log = f.log_text();
            assert!(
                !log.contains("Finite State Machine Error") && !log.contains("FSM error"),
                "run {run} {name}:\n{log}"
            );
        }
    }
    eprintln!("50 simultaneous starts in {:?}", started.elapsed());
}
