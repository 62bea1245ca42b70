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
fn a_configuration_naming_an_undefined_set_or_aspa_does_not_start() {
    let dir = TempDir::new("policy-bad");
    let text = format!(
        "{}[[peers]]\naddress = \"127.0.0.9\"\nremote_as = 65009\nimport = [\"in\"]\n[[policy.in.term]]\nmatch = {{ prefix_in = \"nope\", aspa = \"valid\" }}\naction = \"reject\"\n",
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
    assert!(err.contains("policy.in.term[0].match.aspa: ASPA is not available yet"), "{err}");
}
