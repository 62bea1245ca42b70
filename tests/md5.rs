//! TCP-MD5 (RFC 2385) between two focld processes on loopback: matching keys reach
//! Established, a mismatch or a key on one side only never does, and focld says why.

mod common;

use common::*;
use std::time::Duration;

fn pair_configs(
    dir: &std::path::Path,
    tag: &str,
    key_a: Option<&str>,
    key_b: Option<&str>,
    ips: (&str, &str),
    v6: bool,
) -> (String, String) {
    let (ip_a, ip_b) = ips;
    let port_a = free_port(if v6 { "::1" } else { ip_a });
    let port_b = free_port(if v6 { "::1" } else { ip_b });
    let (listen_a, listen_b, peer_of_a, peer_of_b) = if v6 {
        (format!("[::1]:{port_a}"), format!("[::1]:{port_b}"), "::1".to_string(), "::1".to_string())
    } else {
        (format!("{ip_a}:{port_a}"), format!("{ip_b}:{port_b}"), ip_b.to_string(), ip_a.to_string())
    };
    let pw = |k: Option<&str>| k.map(|k| format!("password = \"{k}\"\n")).unwrap_or_default();
    let a = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"{listen_a}\"\ncontrol_socket = \"{d}/{tag}a.sock\"\nlog_level = \"debug\"\n\n\
         [[peers]]\naddress = \"{peer_of_a}\"\nremote_as = 65002\nremote_port = {port_b}\nhold_time_secs = 9\nconnect_retry_secs = 1\n{}\n\
         [[prefixes]]\nnetwork = \"203.0.113.0/24\"\nnext_hop = \"192.0.2.1\"\n",
        pw(key_a),
        d = dir.display()
    );
    let b = format!(
        "[global]\nasn = 65002\nrouter_id = \"192.0.2.2\"\nlisten_addr = \"{listen_b}\"\ncontrol_socket = \"{d}/{tag}b.sock\"\nlog_level = \"debug\"\n\n\
         [[peers]]\naddress = \"{peer_of_b}\"\nremote_as = 65001\npassive = true\nhold_time_secs = 9\n{}\n\
         [[prefixes]]\nnetwork = \"198.51.100.0/24\"\nnext_hop = \"192.0.2.2\"\n",
        pw(key_b),
        d = dir.display()
    );
    (a, b)
}

#[test]
fn matching_keys_establish_over_ipv4_and_ipv6() {
    for (v6, ips) in [(false, ("127.0.0.21", "127.0.0.22")), (true, ("::1", "::1"))] {
        let dir = TempDir::new("md5ok");
        let (ca, cb) = pair_configs(dir.path(), "ok", Some("s3cret-key"), Some("s3cret-key"), ips, v6);
        let b = Focld::start(dir.path(), "okb", &cb);
        let a = Focld::start(dir.path(), "oka", &ca);
        let peer = if v6 { "::1" } else { ips.1 };
        a.wait_established(peer, Duration::from_secs(30));
        assert!(wait_for(Duration::from_secs(10), || a.rib_in_prefixes(peer) == ["198.51.100.0/24"]));
        let show = a.focl(&["peer", "show", peer]).unwrap();
        assert_eq!(show["password_set"], true);
        drop(b);
    }
}

#[test]
fn mismatched_or_one_sided_keys_never_establish_and_focld_says_why() {
    let cases = [
        ("bad", Some("key-one"), Some("key-two"), ("127.0.0.23", "127.0.0.24")),
        ("one", Some("key-one"), None, ("127.0.0.25", "127.0.0.26")),
        ("oth", None, Some("key-two"), ("127.0.0.27", "127.0.0.28")),
    ];
    let dir = TempDir::new("md5bad");
    let mut running = Vec::new();
    for (tag, ka, kb, ips) in cases {
        let (ca, cb) = pair_configs(dir.path(), tag, ka, kb, ips, false);
        let b = Focld::start(dir.path(), &format!("{tag}b"), &cb);
        let a = Focld::start(dir.path(), &format!("{tag}a"), &ca);
        running.push((tag, ka.is_some(), a, b, ips.1));
    }
    // Three hold times (9 s each) without ever reaching Established.
    let deadline = std::time::Instant::now() + Duration::from_secs(27);
    while std::time::Instant::now() < deadline {
        for (tag, _, a, b, peer) in &running {
            assert_ne!(a.peer_state(peer), "Established", "{tag}: A established");
            assert_ne!(b.peer_state(&a_ip(peer)), "Established", "{tag}: B established");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for (tag, a_has_key, a, _b, peer) in &running {
        let show = a.focl(&["peer", "show", peer]).unwrap();
        assert!(show["connect_attempts"].as_u64().unwrap_or(0) >= 3, "{tag}: {show}");
        if *a_has_key {
            let hint = show["hint"].as_str().unwrap_or("");
            assert!(hint.contains("TCP-MD5"), "{tag}: hint names the likely cause: {show}");
            let log = a.log_text();
            let mentions = log.matches("password mismatch").count();
            assert!(mentions >= 1, "{tag}: the log says it");
            assert!(mentions <= 2, "{tag}: without flooding the log ({mentions} lines)");
        }
    }
}

/// The address A uses in the pair (B's peer), from B's address in the case table.
fn a_ip(b_ip: &str) -> String {
    let last: u8 = b_ip.rsplit('.').next().and_then(|s| s.parse().ok()).unwrap_or(1);
    format!("127.0.0.{}", last - 1)
}
