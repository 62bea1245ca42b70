//! Import policy end to end (issue 17): focld A announces AS30844's full table from the
//! RouteViews JINX dump (a `[[sources]]` entry) to focld B over loopback; B's import policy
//! rejects bogons and long prefixes. `focl policy test` on the same file and configuration
//! gives exactly B's accepted and rejected counts; `focl policy explain` names the deciding
//! term; a reload with a changed policy changes B's Loc-RIB from its Adj-RIB-In without a
//! session reset.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RIB_PEER: &str = "196.223.14.55"; // AS30844: 497,321 IPv4 prefixes

fn jinx() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mrt/routeviews.route-views.jinx.ribs.1401487200.bz2")
}

fn config_a(dir: &Path, port_a: u16, port_b: u16) -> String {
    format!(
        r#"[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:{port_a}"
control_socket = "{dir}/a.sock"

[[peers]]
name = "b"
address = "127.0.0.2"
remote_as = 65002
remote_port = {port_b}
connect_retry_secs = 1

[[sources]]
name = "jinx"
type = "mrt"
file = "{file}"
peer = "{RIB_PEER}"
to = ["b"]
"#,
        dir = dir.display(),
        file = jinx().display()
    )
}

fn config_b(dir: &Path, port_b: u16, long_from: u8) -> String {
    format!(
        r#"[global]
asn = 65002
router_id = "192.0.2.2"
listen_addr = "127.0.0.2:{port_b}"
control_socket = "{dir}/b.sock"

[[peers]]
name = "a"
address = "127.0.0.1"
remote_as = 65001
passive = true
import = ["in"]

[sets.prefix]
bogons = ["0.0.0.0/8 orlonger", "10.0.0.0/8 orlonger", "100.64.0.0/10 orlonger", "127.0.0.0/8 orlonger",
  "169.254.0.0/16 orlonger", "172.16.0.0/12 orlonger", "192.0.2.0/24 orlonger", "192.168.0.0/16 orlonger",
  "198.18.0.0/15 orlonger", "224.0.0.0/3 orlonger"]
[sets.asn]
big = ["3356", "174", "1299"]

[[policy.in.term]]
match = {{ prefix_in = "bogons" }}
action = "reject"
[[policy.in.term]]
match = {{ prefix_len = "{long_from}..32" }}
action = "reject"
[[policy.in.term]]
match = {{ origin_in = "big" }}
set = {{ local_pref = 200 }}
action = "accept"
"#,
        dir = dir.display()
    )
}

fn count(f: &Focld, args: &[&str]) -> u64 {
    f.focl(args).ok().and_then(|v| v["count"].as_u64()).unwrap_or(0)
}

#[test]
fn policy_test_counts_what_a_live_load_accepts_and_rejects_and_a_reload_applies_without_a_reset() {
    let dir = TempDir::new("policy");
    let (port_a, port_b) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let b = Focld::start(dir.path(), "b", &config_b(dir.path(), port_b, 25));
    let a = Focld::start(dir.path(), "a", &config_a(dir.path(), port_a, port_b));
    b.wait_established("a", Duration::from_secs(30));

    // Offline, from B's file: what B's chain does with the same table.
    let cfg = focl::config::load(&dir.path().join("b.toml")).expect("b.toml");
    let offline = focl::policy::offline::test_file(
        &cfg,
        Some("127.0.0.1".parse().unwrap()),
        &jinx(),
        Some(RIB_PEER.parse().unwrap()),
    )
    .expect("policy test");
    assert_eq!(offline.routes, 497_321);
    assert!(offline.rejected > 1000 && offline.accepted > 490_000, "{offline:?}");

    // Live: every route arrives and is kept (pre-policy), the rejected ones marked.
    let all = || count(&b, &["rib", "in", "a", "--count"]);
    assert!(
        wait_for(Duration::from_secs(240), || all() == offline.routes),
        "{} of {} routes; {}",
        all(),
        offline.routes,
        a.log_text()
    );
    let rejected = count(&b, &["rib", "in", "a", "--rejected", "--count"]);
    assert_eq!((offline.routes - rejected, rejected), (offline.accepted, offline.rejected));
    assert_eq!(count(&b, &["rib", "in", "a", "--best", "--count"]), offline.accepted, "only accepted routes are best");

    // The focl command says the same, and explain names the deciding term of a rejected route.
    let out = std::process::Command::new(focl_bin())
        .args(["policy", "test", "--config"])
        .arg(dir.path().join("b.toml"))
        .arg("--mrt")
        .arg(jinx())
        .args(["--peer", "127.0.0.1", "--mrt-peer", RIB_PEER])
        .output()
        .expect("focl policy test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{} routes: {} accepted", offline.routes, offline.accepted))
            && text.contains(&format!("{} rejected", offline.rejected)),
        "{text}"
    );
    let long = &offline.rejected_sample[0];
    let e = b.focl(&["policy", "explain", "a", &long.prefix]).expect("explain");
    let r = &e["routes"][0];
    assert_eq!(r["decision"], "reject");
    assert_eq!(r["decided_by"], "policy in term 2 (line 24)", "{e}");
    assert_eq!(r["steps"][0]["failed"], "prefix_in");
    let shown = b.focl(&["rib", "in", "a", &long.prefix]).expect("rib in");
    assert_eq!(shown["routes"][0]["rejected"], true, "{shown}");

    // Reload with /24s rejected too: the Loc-RIB changes, the session stays.
    let flaps = b.focl(&["peer", "show", "a"]).expect("peer show")["flaps"].clone();
    std::fs::write(dir.path().join("b.toml"), config_b(dir.path(), port_b, 24)).unwrap();
    let report = b.focl(&["reload"]).expect("reload");
    let cfg = focl::config::load(&dir.path().join("b.toml")).expect("b.toml");
    let after = focl::policy::offline::test_file(
        &cfg,
        Some("127.0.0.1".parse().unwrap()),
        &jinx(),
        Some(RIB_PEER.parse().unwrap()),
    )
    .expect("policy test");
    let change = &report["policy_changed"][0];
    assert_eq!(change["peer"], "127.0.0.1 (a)");
    assert_eq!(change["now_rejected"].as_u64(), Some(after.rejected - offline.rejected), "{report}");
    assert_eq!(count(&b, &["rib", "in", "a", "--rejected", "--count"]), after.rejected);
    assert_eq!(count(&b, &["rib", "in", "a", "--best", "--count"]), after.accepted);
    let peer = b.focl(&["peer", "show", "a"]).expect("peer show");
    assert_eq!((peer["state"].as_str(), &peer["flaps"]), (Some("Established"), &flaps), "no session reset");
    assert_eq!(report["reset"], serde_json::json!([]));
}

#[test]
fn a_configuration_naming_an_undefined_set_or_an_unknown_aspa_state_does_not_start() {
    let dir = TempDir::new("policy-bad");
    let text = format!(
        "{}[[peers]]\naddress = \"127.0.0.9\"\nremote_as = 65009\nimport = [\"in\"]\n[[policy.in.term]]\nmatch = {{ prefix_in = \"nope\", aspa = \"leaky\" }}\naction = \"reject\"\n",
        global_section(dir.path(), free_port("127.0.0.1"))
    );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(focld_bin()).arg("-n").arg("-c").arg(&path).output().expect("focld -n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "bad.toml:12: policy.in.term[0].match.prefix_in: no prefix set is called 'nope' (none is defined)"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "policy.in.term[0].match.aspa: aspa states are \"valid\", \"invalid\" and \"unknown\", got \"leaky\""
        ),
        "{err}"
    );
}

/// A (AS 65001) announces two prefixes to B (AS 65002), which exports them to C (AS 65003)
/// through an export chain and to D (AS 65004) as a route server.
fn export_configs(dir: &Path, ports: [u16; 4], c_accepts_doc: bool) -> [String; 4] {
    let g = |name: &str, asn: u32, ip: &str, port: u16| {
        format!(
            "[global]\nasn = {asn}\nrouter_id = \"{ip}\"\nlisten_addr = \"{ip}:{port}\"\ncontrol_socket = \"{}/{name}.sock\"\nlog_level = \"debug\"\n",
            dir.display()
        )
    };
    let peer = |name: &str, ip: &str, asn: u32, port: u16, extra: &str| {
        format!("\n[[peers]]\nname = \"{name}\"\naddress = \"{ip}\"\nremote_as = {asn}\nremote_port = {port}\nconnect_retry_secs = 1\n{extra}")
    };
    let a = format!(
        "{}{}\n[[prefixes]]\nnetwork = \"203.0.113.0/24\"\nnext_hop = \"192.0.2.1\"\n[[prefixes]]\nnetwork = \"198.51.100.0/24\"\nnext_hop = \"192.0.2.1\"\n",
        g("a", 65001, "127.0.0.1", ports[0]),
        peer("b", "127.0.0.2", 65002, ports[1], "")
    );
    let doc = if c_accepts_doc { ", \"198.51.100.0/24\"" } else { "" };
    let b = format!(
        "{}{}{}{}\n[sets.prefix]\nout = [\"203.0.113.0/24\"{doc}]\n[[policy.out.term]]\nmatch = {{ prefix_in = \"out\" }}\naction = \"accept\"\n",
        g("b", 65002, "127.0.0.2", ports[1]),
        peer("a", "127.0.0.1", 65001, ports[0], "passive = true\n"),
        peer("c", "127.0.0.3", 65003, ports[2], "export = [\"out\"]\n"),
        peer("d", "127.0.0.4", 65004, ports[3], "export = [\"out\"]\nroute_server = true\n"),
    );
    let c = format!(
        "{}{}",
        g("c", 65003, "127.0.0.3", ports[2]),
        peer("b", "127.0.0.2", 65002, ports[1], "passive = true\n")
    );
    let d = format!(
        "{}{}",
        g("d", 65004, "127.0.0.4", ports[3]),
        peer("b", "127.0.0.2", 65002, ports[1], "passive = true\n")
    );
    [a, b, c, d]
}

fn routes_of(f: &Focld, peer: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = f
        .rib_in(peer)
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            (s("prefix"), s("as_path"), s("next_hop"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_export_chain_propagates_learned_routes_with_prepend_and_next_hop_self_or_unchanged_as_a_route_server() {
    let dir = TempDir::new("policy-export");
    let ports = [free_port("127.0.0.1"), free_port("127.0.0.2"), free_port("127.0.0.3"), free_port("127.0.0.4")];
    let [ta, tb, tc, td] = export_configs(dir.path(), ports, true);
    let all = Focld::start_together(dir.path(), &[("a", &ta), ("b", &tb), ("c", &tc), ("d", &td)]);
    let (a, b, c, d) = (&all[0], &all[1], &all[2], &all[3]);
    for (f, p) in [(b, "a"), (b, "c"), (b, "d")] {
        f.wait_established(p, Duration::from_secs(30));
    }
    let both = |f: &Focld| routes_of(f, "b").len() == 2;
    assert!(
        wait_for(Duration::from_secs(20), || both(c) && both(d)),
        "C {:?} D {:?}\n{}",
        routes_of(c, "b"),
        routes_of(d, "b"),
        b.log_text()
    );
    let want_c = vec![
        ("198.51.100.0/24".to_string(), "65002 65001".to_string(), "127.0.0.2".to_string()),
        ("203.0.113.0/24".to_string(), "65002 65001".to_string(), "127.0.0.2".to_string()),
    ];
    assert_eq!(routes_of(c, "b"), want_c, "eBGP: B's AS prepended, next hop B's address");
    let want_d = vec![
        ("198.51.100.0/24".to_string(), "65001".to_string(), "192.0.2.1".to_string()),
        ("203.0.113.0/24".to_string(), "65001".to_string(), "192.0.2.1".to_string()),
    ];
    assert_eq!(routes_of(d, "b"), want_d, "route server: AS_PATH and NEXT_HOP unchanged");
    let out = b.focl(&["rib", "out", "c"]).expect("rib out");
    assert_eq!(out["count"], 2, "{out}");
    assert!(routes_of(a, "b").is_empty(), "nothing goes back to A (no export chain towards it)");

    // B's export chain loses 198.51.100.0/24 on reload: C and D get a withdrawal, no reset.
    let [_, tb, _, _] = export_configs(dir.path(), ports, false);
    std::fs::write(dir.path().join("b.toml"), tb).unwrap();
    let r = b.focl(&["reload"]).expect("reload");
    assert_eq!(r["reset"], serde_json::json!([]), "{r}");
    // The reload says whose Adj-RIB-Out changed and by how much: one route withdrawn each.
    let mut exports: Vec<(String, u64, u64, u64)> = r["policy_changed"]
        .as_array()
        .expect("policy_changed")
        .iter()
        .filter(|c| c["direction"] == "export")
        .map(|c| {
            let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
            (c["peer"].as_str().unwrap_or("").to_string(), n("now_accepted"), n("now_rejected"), n("modified"))
        })
        .collect();
    exports.sort();
    assert_eq!(exports.len(), 2, "{r}");
    for (peer, announced, withdrawn, modified) in &exports {
        assert_eq!((*announced, *withdrawn, *modified), (0, 1, 0), "{peer}: {r}");
    }
    let one = |f: &Focld| routes_of(f, "b").len() == 1;
    assert!(wait_for(Duration::from_secs(10), || one(c) && one(d)), "C {:?}", routes_of(c, "b"));
    // A withdraws 203.0.113.0/24 (a reload without it): it leaves C too.
    std::fs::write(dir.path().join("a.toml"), ta.replace("network = \"203.0.113.0/24\"", "network = \"192.0.2.0/24\""))
        .unwrap();
    a.focl(&["reload"]).expect("reload a");
    assert!(wait_for(Duration::from_secs(10), || routes_of(c, "b").is_empty()), "C {:?}", routes_of(c, "b"));
    assert_eq!(c.focl(&["peer", "show", "b"]).unwrap()["flaps"], 0, "C's session was never reset");
}

#[test]
fn blackhole_routes_are_accepted_only_covered_from_allowed_neighbors_and_focl_blackhole_add_announces_them() {
    let dir = TempDir::new("policy-blackhole");
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let a = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{pa}\"\ncontrol_socket = \"{d}/a.sock\"\n\
         [[peers]]\nname = \"b\"\naddress = \"127.0.0.2\"\nremote_as = 65002\nremote_port = {pb}\nconnect_retry_secs = 1\n\
         [[prefixes]]\nnetwork = \"203.0.113.0/24\"\nnext_hop = \"192.0.2.1\"\n\
         [[prefixes]]\nnetwork = \"203.0.113.7/32\"\nblackhole = true\n\
         [[prefixes]]\nnetwork = \"198.51.100.9/32\"\nblackhole = true\n",
        d = dir.path().display()
    );
    let b = format!(
        "[global]\nasn = 65002\nrouter_id = \"192.0.2.2\"\nlisten_addr = \"127.0.0.2:{pb}\"\ncontrol_socket = \"{d}/b.sock\"\n\
         [[peers]]\nname = \"a\"\naddress = \"127.0.0.1\"\nremote_as = 65001\npassive = true\n\
         [blackhole]\naccept_from = [\"a\"]\ndiscard_next_hop_v4 = \"192.0.2.66\"\n",
        d = dir.path().display()
    );
    let all = Focld::start_together(dir.path(), &[("a", &a), ("b", &b)]);
    let (a, b) = (&all[0], &all[1]);
    b.wait_established("a", Duration::from_secs(30));
    assert!(wait_for(Duration::from_secs(10), || count(b, &["rib", "in", "a", "--count"]) == 3));
    // A's own blackhole routes carry BLACKHOLE and NO_EXPORT and the discard next hop.
    let r = b.focl(&["rib", "in", "a", "203.0.113.7/32"]).expect("rib in");
    let route = &r["routes"][0];
    assert_eq!(route["communities"], serde_json::json!(["65535:666", "no-export"]), "{r}");
    assert_eq!(route["next_hop"], "192.0.2.1", "{r}");
    // B accepts the covered one only.
    let rejected = b.focl(&["rib", "in", "a", "--rejected"]).expect("rib in");
    let names: Vec<&str> = rejected["routes"].as_array().unwrap().iter().filter_map(|r| r["prefix"].as_str()).collect();
    assert_eq!(names, ["198.51.100.9/32"], "not covered by a shorter prefix of A");
    let why = b.focl(&["policy", "explain", "a", "198.51.100.9/32"]).expect("explain");
    assert!(why["routes"][0]["decided_by"].as_str().unwrap().contains("require_covering"), "{why}");
    let summary = b.focl(&["rib", "summary"]).expect("summary");
    assert_eq!(
        (&summary["peers"][0]["blackholes"], &summary["peers"][0]["rejected"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );

    // focl blackhole add on B: A receives it with 65535:666, NO_EXPORT and B's discard next hop.
    b.focl(&["blackhole", "add", "192.0.2.99/32"]).expect("blackhole add");
    let got = || a.focl(&["rib", "in", "b", "192.0.2.99/32"]).ok().and_then(|v| v["routes"].get(0).cloned());
    assert!(wait_for(Duration::from_secs(10), || got().is_some()));
    let r = got().unwrap();
    assert_eq!(
        (&r["communities"], &r["next_hop"]),
        (&serde_json::json!(["65535:666", "no-export"]), &serde_json::json!("192.0.2.66")),
        "{r}"
    );
    let out = b.focl(&["rib", "out", "a"]).expect("rib out");
    assert!(out["routes"].as_array().unwrap().iter().any(|x| x["prefix"] == "192.0.2.99/32"), "{out}");
    // It survives a reload, and focl blackhole del withdraws it.
    b.focl(&["reload"]).expect("reload");
    assert_eq!(b.focl(&["blackhole", "list"]).unwrap()[0]["prefix"], "192.0.2.99/32");
    b.focl(&["blackhole", "del", "192.0.2.99/32"]).expect("blackhole del");
    assert!(wait_for(Duration::from_secs(10), || got().is_none()));
    assert!(b.focl(&["blackhole", "del", "192.0.2.99/32"]).unwrap_err().contains("not a blackhole route"));
}
