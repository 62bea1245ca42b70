//! focld as operators run it: SIGTERM's Cease with a shutdown communication and finished MRT
//! files; SIGHUP and `focl reload` adding, removing and resetting peers and prefixes while an
//! unchanged session lives on; a bad new configuration changing nothing; `-d -p` detaching
//! with a pidfile that a second focld respects; dropping root to `global.user`.

mod common;

use common::*;
use focl::wire::frame::MsgType;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// focld A (127.0.0.1) with its peers and prefixes; B is the focld at 127.0.0.2.
fn config_a(dir: &Path, port_a: u16, port_b: u16, extra_peers: &str, prefixes: &[&str], extra: &str) -> String {
    let mut s = format!(
        r#"
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:{port_a}"
control_socket = "{d}/a.sock"
log_level = "debug"
{extra}

[[peers]]
name = "b"
address = "127.0.0.2"
remote_as = 65002
remote_port = {port_b}
hold_time_secs = 30
connect_retry_secs = 1
{extra_peers}
"#,
        d = dir.display()
    );
    for p in prefixes {
        s.push_str(&format!("\n[[prefixes]]\nnetwork = \"{p}\"\nnext_hop = \"192.0.2.1\"\n"));
    }
    s
}

fn config_b(dir: &Path, port_b: u16) -> String {
    format!(
        r#"
[global]
asn = 65002
router_id = "192.0.2.2"
listen_addr = "127.0.0.2:{port_b}"
control_socket = "{d}/b.sock"
log_level = "debug"

[[peers]]
name = "a"
address = "127.0.0.1"
remote_as = 65001
passive = true
hold_time_secs = 30
"#,
        d = dir.display()
    )
}

fn pid_of(f: &Focld) -> i32 {
    f.child.as_ref().expect("running").id() as i32
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) to a process this test started.
    unsafe { libc::kill(pid, sig) };
}

fn show(f: &Focld, peer: &str) -> Value {
    f.request("peer_show", serde_json::json!({"peer": peer})).unwrap_or(Value::Null)
}

#[test]
fn sigterm_sends_cease_with_the_shutdown_text_and_finishes_the_mrt_file() {
    let dir = TempDir::new("ops-term");
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let archive = format!("[archive]\nenabled = true\ndir = \"{}/mrt\"\n", dir.path().display());
    let b = Focld::start(dir.path(), "b", &config_b(dir.path(), pb));
    let mut text = config_a(dir.path(), pa, pb, "", &["203.0.113.0/24"], "");
    text.push_str(&archive);
    let mut a = Focld::start(dir.path(), "a", &text);
    a.wait_established("b", Duration::from_secs(20));
    b.wait_established("a", Duration::from_secs(5));

    assert_eq!(a.terminate(), Some(0), "exit 0 on SIGTERM; log:\n{}", a.log_text());
    let got = wait_for(Duration::from_secs(5), || show(&b, "a")["last_error"]["reason"] == "focld shutting down");
    let last = &show(&b, "a")["last_error"];
    assert!(got, "B saw the shutdown communication: {last}");
    assert_eq!(
        (last["direction"].as_str(), last["code"].as_u64(), last["subcode"].as_u64()),
        (Some("received"), Some(6), Some(9)),
        "both focld set the N bit (RFC 8538): the Cease goes as Hard Reset"
    );
    assert_eq!(last["name"], "Cease / Hard Reset (Cease / Administrative Shutdown)");
    let files = focl::archive::finished_files(&dir.path().join("mrt"));
    assert!(files.iter().any(|f| f.contains("/UPDATES/updates.")), "the update file was finished: {files:?}");
    assert!(!dir.path().join("a.sock").exists(), "the control socket is removed");
}

#[test]
fn reload_adds_removes_and_resets_peers_and_prefixes_and_keeps_unchanged_sessions() {
    let dir = TempDir::new("ops-reload");
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let b = Focld::start(dir.path(), "b", &config_b(dir.path(), pb));
    let c_peer = "\n[[peers]]\nname = \"c\"\naddress = \"127.0.0.23\"\nremote_as = 65023\npassive = true\n";
    let a = Focld::start(dir.path(), "a", &config_a(dir.path(), pa, pb, c_peer, &["203.0.113.0/24"], ""));
    a.wait_established("b", Duration::from_secs(20));
    let target = SocketAddr::from(([127, 0, 0, 1], pa));
    let mut c = RawSpeaker::establish("127.0.0.23", target, 65023, Ipv4Addr::new(10, 0, 0, 23));
    a.wait_established("c", Duration::from_secs(5));
    let ok = wait_for(Duration::from_secs(10), || b.rib_in_prefixes("a") == ["203.0.113.0/24"]);
    assert!(ok, "B holds A's prefix: {:?}", b.rib_in_prefixes("a"));
    std::thread::sleep(Duration::from_millis(1100));
    let before = show(&a, "b");
    let b_up = before["uptime_secs"].as_u64().expect("uptime");

    // SIGHUP with c removed, d added, one prefix swapped for another.
    let d_peer = "\n[[peers]]\nname = \"d\"\naddress = \"127.0.0.24\"\nremote_as = 65024\npassive = true\n";
    std::fs::write(&a.config, config_a(dir.path(), pa, pb, d_peer, &["198.51.100.0/24"], "")).expect("write");
    signal(pid_of(&a), libc::SIGHUP);
    let mut cease = None;
    while let Some((ty, raw)) = c.recv() {
        if ty == MsgType::Notification {
            cease = Some((raw[19], raw[20]));
            break;
        }
    }
    assert_eq!(cease, Some((6, 3)), "the removed peer got Cease / Peer De-configured");
    let ok = wait_for(Duration::from_secs(10), || b.rib_in_prefixes("a") == ["198.51.100.0/24"]);
    assert!(ok, "B sees the new prefix and the withdrawal: {:?}\n{}", b.rib_in_prefixes("a"), a.log_text());
    let peers: Vec<String> = a
        .query("peer_list")
        .expect("peer list")
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(peers, ["b", "d"]);
    let after = show(&a, "b");
    assert_eq!(after["state"], "Established");
    assert_eq!(after["flaps"], 0, "the unchanged session was not reset");
    assert!(after["uptime_secs"].as_u64().unwrap_or(0) >= b_up, "its uptime goes on: {before} / {after}");
    assert_eq!(show(&b, "a")["flaps"], 0);

    // `focl reload`: d's hold time changes -> only d is reset.
    let d_changed = format!("{d_peer}hold_time_secs = 30\n");
    std::fs::write(&a.config, config_a(dir.path(), pa, pb, &d_changed, &["198.51.100.0/24"], "")).expect("write");
    let r = a.focl(&["reload"]).expect("focl reload");
    assert_eq!(r["reset"], serde_json::json!(["127.0.0.24 (d)"]), "{r}");
    assert_eq!(r["unchanged"], 1, "{r}");
    assert_eq!(r["added"], serde_json::json!([]), "{r}");
    assert_eq!(r["global_changed"], serde_json::json!([]), "{r}");

    // A global change that applies at once is in the summary too.
    let quieter = config_a(dir.path(), pa, pb, &d_changed, &["198.51.100.0/24"], "")
        .replace("log_level = \"debug\"", "log_level = \"info\"");
    std::fs::write(&a.config, quieter).expect("write");
    let r = a.focl(&["reload"]).expect("focl reload");
    assert_eq!(r["global_changed"], serde_json::json!(["log_level: debug -> info"]), "{r}");
    assert_eq!((r["unchanged"].as_u64(), r["reset"].clone()), (Some(2), serde_json::json!([])), "{r}");

    // A broken file changes nothing; focl reload says why and exits 1.
    std::fs::write(&a.config, "[global]\nasn = \"x\"\n").expect("write");
    let out =
        Command::new(focl_bin()).args(["-s", &a.socket.display().to_string(), "reload"]).output().expect("focl reload");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rejected") && err.contains("a.toml:2: global.asn: expected an integer"), "{err}");
    assert!(a.log_text().contains("reload failed: the running configuration stays"));
    let still = show(&a, "b");
    assert_eq!((still["state"].as_str(), still["flaps"].as_u64()), (Some("Established"), Some(0)));
    assert_eq!(b.rib_in_prefixes("a"), ["198.51.100.0/24"]);

    // A change that needs a restart is refused whole, too.
    std::fs::write(
        &a.config,
        config_a(dir.path(), pa, pb, "", &[], "").replace("192.0.2.1\"\nlisten", "192.0.2.9\"\nlisten"),
    )
    .expect("write");
    let err = a.focl(&["reload"]).expect_err("router_id change refused");
    assert!(err.contains("global.router_id changed; restart focld"), "{err}");
    assert_eq!(a.query("peer_list").expect("list").as_array().map(Vec::len), Some(2));

    // focl status sums it up.
    let s = a.focl(&["status"]).expect("focl status");
    assert_eq!(s["peers"], 2);
    assert!(s["last_reload"].as_u64().is_some(), "{s}");
    assert_eq!(s["router_id"], "192.0.2.1");
}

#[test]
fn peer_disable_and_enable() {
    let dir = TempDir::new("ops-disable");
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let b = Focld::start(dir.path(), "b", &config_b(dir.path(), pb));
    let a = Focld::start(dir.path(), "a", &config_a(dir.path(), pa, pb, "", &["203.0.113.0/24"], ""));
    a.wait_established("b", Duration::from_secs(20));
    let r = a.focl(&["peer", "disable", "b"]).expect("disable");
    assert_eq!(r["message"], "disabled");
    // RFC 8538: with the N bit both focld set, the Cease goes as Hard Reset carrying it.
    let down = wait_for(Duration::from_secs(5), || {
        show(&b, "a")["last_error"]["name"] == "Cease / Hard Reset (Cease / Administrative Shutdown)"
    });
    assert!(down, "B got Cease / Administrative Shutdown: {}", show(&b, "a"));
    std::thread::sleep(Duration::from_secs(3));
    let s = show(&a, "b");
    assert_eq!((s["state"].as_str(), s["disabled"].as_bool()), (Some("Idle"), Some(true)), "stays down: {s}");
    assert_eq!(s["down_reason"], "admin down", "{s}");
    // A reset does not bring a disabled peer back: only enable does (focl(8)).
    let err = a.focl(&["peer", "reset", "b"]).expect_err("reset of a disabled peer is refused");
    assert!(err.contains("is disabled; focl peer enable"), "{err}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(show(&a, "b")["state"], "Idle", "still down after the refused reset");
    let text =
        Command::new(focl_bin()).args(["-s", &a.socket.display().to_string(), "peer", "list"]).output().expect("focl");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Idle (admin down)"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    a.focl(&["peer", "enable", "b"]).expect("enable");
    a.wait_established("b", Duration::from_secs(20));
    assert_eq!(show(&a, "b")["disabled"], false);
}

#[test]
fn detach_writes_the_pidfile_and_a_second_focld_refuses() {
    let dir = TempDir::new("ops-detach");
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let log = dir.path().join("a.log");
    let pidfile = dir.path().join("a.pid");
    let extra = format!("log_file = \"{}\"", log.display());
    let cfg = dir.path().join("a.toml");
    std::fs::write(&cfg, config_a(dir.path(), pa, pb, "", &[], &extra)).expect("write");
    let start = || {
        Command::new(focld_bin())
            .args(["-c", &cfg.display().to_string(), "-d", "-p", &pidfile.display().to_string()])
            .output()
            .expect("run focld -d")
    };
    let out = start();
    assert!(out.status.success(), "focld -d: {}", String::from_utf8_lossy(&out.stderr));
    let pid: i32 = std::fs::read_to_string(&pidfile).expect("pidfile").trim().parse().expect("a pid");
    assert!(alive(pid as u32), "the daemon runs");
    let sock = dir.path().join("a.sock");
    let status =
        Command::new(focl_bin()).args(["-s", &sock.display().to_string(), "-j", "status"]).output().expect("focl");
    let s: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(s["pid"], pid, "the pidfile names the running daemon");

    let again = start();
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains(&format!("already running (pid {pid}")), "{err}");
    assert_eq!(std::fs::read_to_string(&pidfile).expect("pidfile").trim(), pid.to_string(), "the pidfile is untouched");

    // logrotate: move the log away, SIGHUP, and focld writes a new file at the old path.
    let rotated = dir.path().join("a.log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    signal(pid, libc::SIGHUP);
    let reopened = wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("configuration reloaded"))
    });
    assert!(reopened, "a new log file after SIGHUP");
    assert!(std::fs::read_to_string(&rotated).expect("old log").contains("SIGHUP: reopening the log file"));

    signal(pid, libc::SIGTERM);
    let gone = wait_for(Duration::from_secs(10), || !alive(pid as u32));
    assert!(gone, "stopped on SIGTERM");
    assert!(!pidfile.exists() && !sock.exists(), "pidfile and socket removed");
    assert!(std::fs::read_to_string(&log).expect("log").contains("focld stopped"));

    // -d without a log file has nowhere to log.
    std::fs::write(&cfg, config_a(dir.path(), pa, pb, "", &[], "")).expect("write");
    let out = Command::new(focld_bin()).args(["-c", &cfg.display().to_string(), "-d"]).output().expect("focld");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-d needs global.log_file"));
    // -n -v prints the effective configuration, defaults filled in.
    let shown = Command::new(focld_bin()).args(["-n", "-v", "-c", &cfg.display().to_string()]).output().expect("focld");
    assert!(shown.status.success());
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("connect_retry_secs = 1") && text.contains("route_refresh = true"), "{text}");
    assert!(text.contains("layout = \"routeviews\""), "the archive defaults too: {text}");
    let quiet = Command::new(focld_bin()).args(["-n", "-c", &cfg.display().to_string()]).output().expect("focld");
    assert!(quiet.status.success() && quiet.stdout.is_empty(), "-n alone prints nothing");
    let v = Command::new(focld_bin()).arg("-V").output().expect("focld -V");
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("focld {}", env!("CARGO_PKG_VERSION")));
}

/// The uids (real, effective, saved, fs) of every thread of `pid`.
fn thread_uids(pid: i32) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks").flatten() {
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
            out.push(line.split_whitespace().skip(1).filter_map(|n| n.parse().ok()).collect());
        }
    }
    out
}

#[test]
fn runs_as_global_user_after_binding() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("ops-user");
    // Like /tmp: the dropped user may remove its own socket at exit.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.2"));
    let archive = format!("[archive]\nenabled = true\ndir = \"{}/mrt\"\n", dir.path().display());
    let mut text = config_a(dir.path(), pa, pb, "", &["203.0.113.0/24"], "user = \"nobody\"");
    text.push_str(&archive);
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        std::fs::write(dir.path().join("a.toml"), &text).expect("write");
        let out = Command::new(focld_bin()).args(["-c", &dir.path().join("a.toml").display().to_string()]).output();
        let out = out.expect("focld");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("must be started as root"));
        return;
    }
    let b = Focld::start(dir.path(), "b", &config_b(dir.path(), pb));
    let mut a = Focld::start(dir.path(), "a", &text);
    a.wait_established("b", Duration::from_secs(20));
    let ok = wait_for(Duration::from_secs(10), || b.rib_in_prefixes("a") == ["203.0.113.0/24"]);
    assert!(ok, "routes flow after the drop");
    let nobody = focl::privs::resolve(Some("nobody"), None).expect("nobody").expect("target");
    let uids = thread_uids(pid_of(&a));
    assert!(uids.len() >= 5, "threads: {uids:?}");
    for u in &uids {
        assert!(u.iter().all(|&x| x == nobody.uid), "every thread runs as nobody: {uids:?}");
    }
    let r = a.focl(&["archive", "rotate"]).expect("rotate");
    let file = dir.path().join("mrt").join(r["finished"].as_str().expect("a file"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).expect("file").uid(), nobody.uid, "written by nobody");
    assert!(a.log_text().contains("running as user nobody"));
    assert_eq!(a.terminate(), Some(0));
    assert!(!dir.path().join("a.sock").exists(), "the socket is removed by the unprivileged focld");
}

#[test]
fn a_detached_focld_takes_relative_paths_from_the_directory_it_was_started_in() {
    let dir = TempDir::new("ops-relative");
    let port = free_port("127.0.0.1");
    let cfg = "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\n".to_string()
        + &format!("listen_addr = \"127.0.0.1:{port}\"\n")
        + "control_socket = \"run/focld.sock\"\nlog_file = \"log/focld.log\"\n\n\
           [[peers]]\naddress = \"127.0.0.2\"\nremote_as = 65002\npassive = true\n\n\
           [archive]\nenabled = true\ndir = \"mrt\"\n";
    for sub in ["run", "log", "etc"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    std::fs::write(dir.path().join("etc/focl.toml"), cfg).expect("write config");
    // Every path relative: -c, -p and the configuration's keys.
    let out = Command::new(focld_bin())
        .current_dir(dir.path())
        .args(["-c", "etc/focl.toml", "-d", "-p", "run/focld.pid"])
        .output()
        .expect("run focld -d");
    assert!(out.status.success(), "focld -d: {}", String::from_utf8_lossy(&out.stderr));
    let pid: i32 =
        std::fs::read_to_string(dir.path().join("run/focld.pid")).expect("pidfile").trim().parse().expect("pid");
    let sock = dir.path().join("run/focld.sock");
    let up = wait_for(Duration::from_secs(10), || sock.exists());
    assert!(up, "the control socket is where the relative path says, not under /");
    let status = Command::new(focl_bin()).arg("-s").arg(&sock).args(["-j", "status"]).output().expect("focl");
    let s: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(s["config_file"], dir.path().join("etc/focl.toml").display().to_string());
    assert_eq!(s["archive"]["dir"], dir.path().join("mrt").display().to_string());
    assert!(dir.path().join("mrt").is_dir(), "the archive directory is under the start directory");
    // A reload reads the same file and takes its paths from the same place.
    signal(pid, libc::SIGHUP);
    let log = dir.path().join("log/focld.log");
    let reloaded = wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("configuration reloaded"))
    });
    assert!(reloaded, "reloaded from the same file; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert!(sock.exists(), "the socket stays");
    signal(pid, libc::SIGTERM);
    let gone = wait_for(Duration::from_secs(10), || !alive(pid as u32));
    assert!(gone, "stopped on SIGTERM");
    assert!(!dir.path().join("run/focld.pid").exists(), "pidfile removed");
}
