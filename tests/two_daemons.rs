//! Two focld processes peer over loopback (A active, B passive) on an IPv4 and an IPv6
//! session, exchange their static prefixes, answer focl, survive a kill and restart of B.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

fn configs(dir: &std::path::Path, port_a: u16, port_b: u16) -> (String, String) {
    let a = format!(
        r#"
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = ["127.0.0.1:{port_a}", "[::1]:{port_a}"]
control_socket = "{dir}/a.sock"
log_level = "debug"

[[peers]]
name = "b-v4"
address = "127.0.0.2"
remote_as = 65002
remote_port = {port_b}
hold_time_secs = 9
connect_retry_secs = 1

[[peers]]
name = "b-v6"
address = "::1"
remote_as = 65002
remote_port = {port_b}
hold_time_secs = 9
connect_retry_secs = 1

[[prefixes]]
network = "203.0.113.0/24"
next_hop = "192.0.2.1"

[[prefixes]]
network = "2001:db8:1000::/48"
next_hop = "2001:db8::1"
"#,
        dir = dir.display()
    );
    let b = format!(
        r#"
[global]
asn = 65002
router_id = "192.0.2.2"
listen_addr = ["127.0.0.2:{port_b}", "[::1]:{port_b}"]
control_socket = "{dir}/b.sock"
log_level = "debug"

[[peers]]
name = "a-v4"
address = "127.0.0.1"
remote_as = 65001
passive = true
hold_time_secs = 9

[[peers]]
name = "a-v6"
address = "::1"
remote_as = 65001
passive = true
hold_time_secs = 9

# No next_hop: announced with the session's own address, so only over the IPv4 session.
[[prefixes]]
network = "198.51.100.0/24"

# No next_hop: only over the IPv6 session.
[[prefixes]]
network = "2001:db8:2000::/48"
"#,
        dir = dir.display()
    );
    (a, b)
}

fn route<'a>(routes: &'a [Value], prefix: &str) -> &'a Value {
    routes.iter().find(|r| r["prefix"] == prefix).unwrap_or_else(|| panic!("no route for {prefix} in {routes:?}"))
}

#[test]
fn two_daemons_exchange_v4_and_v6_prefixes_and_recover_after_restart() {
    let dir = TempDir::new("two");
    let port_a = free_port("127.0.0.1");
    let port_b = free_port("127.0.0.2");
    let (ca, cb) = configs(dir.path(), port_a, port_b);
    let mut b = Focld::start(dir.path(), "b", &cb);
    let a = Focld::start(dir.path(), "a", &ca);

    for p in ["127.0.0.2", "b-v6"] {
        a.wait_established(p, Duration::from_secs(30));
    }
    for p in ["127.0.0.1", "::1"] {
        b.wait_established(p, Duration::from_secs(10));
    }

    // Routes as A sees them from B.
    assert!(
        wait_for(Duration::from_secs(10), || a.rib_in_prefixes("127.0.0.2") == ["198.51.100.0/24"]),
        "{:?}\nA LOG:\n{}\nB LOG:\n{}",
        a.rib_in("127.0.0.2"),
        a.log_text(),
        b.log_text()
    );
    let r = a.rib_in("127.0.0.2");
    let r = route(&r, "198.51.100.0/24");
    assert_eq!(r["next_hop"], "127.0.0.2");
    assert_eq!(r["as_path"], "65002");
    assert_eq!(r["origin"], "igp");
    assert!(
        wait_for(Duration::from_secs(10), || a.rib_in_prefixes("::1") == ["2001:db8:2000::/48"]),
        "{:?}\nA LOG:\n{}\nB LOG:\n{}",
        a.rib_in("::1"),
        a.log_text(),
        b.log_text()
    );
    let r6 = a.rib_in("::1");
    assert_eq!(route(&r6, "2001:db8:2000::/48")["next_hop"], "::1");
    assert!(b.log_text().contains("not announcing 2001:db8:2000::/48"), "the missing IPv6 next hop is logged");

    // Routes as B sees them from A: both families on both sessions (next hops configured).
    let want = ["2001:db8:1000::/48", "203.0.113.0/24"];
    for peer in ["127.0.0.1", "::1"] {
        assert!(wait_for(Duration::from_secs(10), || b.rib_in_prefixes(peer) == want), "{peer}: {:?}", b.rib_in(peer));
        let routes = b.rib_in(peer);
        assert_eq!(route(&routes, "203.0.113.0/24")["next_hop"], "192.0.2.1");
        assert_eq!(route(&routes, "2001:db8:1000::/48")["next_hop"], "2001:db8::1");
        assert_eq!(route(&routes, "2001:db8:1000::/48")["as_path"], "65001");
    }

    // focl itself, text and JSON.
    let list = a.focl(&["peer", "list"]).expect("focl peer list");
    assert_eq!(list.as_array().map(|l| l.len()), Some(2));
    assert_eq!(list[0]["prefixes_received"]["ipv4_unicast"], 1);
    let show = a.focl(&["peer", "show", "b-v4"]).expect("focl peer show");
    assert_eq!(show["remote_router_id"], "192.0.2.2");
    assert_eq!(show["hold_time"], 9);
    assert_eq!(show["keepalive_time"], 3);
    assert!(show["capabilities_received"].as_array().is_some_and(|c| c.iter().any(|c| c == "route_refresh")));
    assert_eq!(show["prefixes_sent"]["ipv4_unicast"], 1);
    let out = a.focl(&["rib", "out", "127.0.0.2"]).expect("focl rib out");
    assert_eq!(out["routes"].as_array().map(|r| r.len()), Some(2));
    let text = std::process::Command::new(focl_bin())
        .arg("-s")
        .arg(&a.socket)
        .args(["rib", "in", "127.0.0.2"])
        .output()
        .unwrap();
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("198.51.100.0/24"));

    // Route refresh from A: B resends its Adj-RIB-Out and counts the request.
    let before = a.focl(&["peer", "show", "127.0.0.2"]).unwrap()["messages_received"]["update"].as_u64().unwrap();
    a.focl(&["peer", "refresh", "127.0.0.2"]).expect("refresh");
    assert!(
        wait_for(Duration::from_secs(5), || {
            b.focl(&["peer", "show", "127.0.0.1"])
                .map(|v| v["messages_received"]["route_refresh"] == 2)
                .unwrap_or(false)
        }),
        "B got one ROUTE-REFRESH per family"
    );
    assert!(
        wait_for(Duration::from_secs(5), || {
            a.focl(&["peer", "show", "127.0.0.2"])
                .map(|v| v["messages_received"]["update"].as_u64().unwrap_or(0) > before)
                .unwrap_or(false)
        }),
        "B resent its routes"
    );

    // Kill B hard; A notices, B comes back, sessions and routes return.
    b.kill();
    assert!(wait_for(Duration::from_secs(15), || a.peer_state("127.0.0.2") != "Established"), "A noticed B's death");
    assert!(wait_for(Duration::from_secs(5), || a.rib_in_prefixes("127.0.0.2").is_empty()), "B's routes withdrawn");
    b.spawn();
    for p in ["127.0.0.2", "::1"] {
        a.wait_established(p, Duration::from_secs(40));
    }
    assert!(wait_for(Duration::from_secs(10), || a.rib_in_prefixes("127.0.0.2") == ["198.51.100.0/24"]));
    let show = a.focl(&["peer", "show", "127.0.0.2"]).unwrap();
    assert!(show["flaps"].as_u64().unwrap_or(0) >= 1);

    // Errors from focl are one clear line and a non-zero exit.
    let err = a.focl(&["peer", "show", "192.0.2.99"]).unwrap_err();
    assert!(err.contains("no neighbor"), "{err}");
}

#[test]
fn focl_says_in_one_line_when_focld_is_not_running() {
    let dir = TempDir::new("norun");
    let out = std::process::Command::new(focl_bin())
        .arg("-s")
        .arg(dir.path().join("nothing.sock"))
        .args(["peer", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("not running"), "{err}");
}
