//! The RTR client against a real cache: Debian's stayrtr serving a JSON file on loopback, in
//! RTR versions 1 and 0. focld synchronises, validates with what it got (`focl rpki lookup`),
//! follows an edit of the file live (Serial Notify, Serial Query), and of two caches uses the
//! preferred one, the other taking over when it dies and handing back when it returns.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// stayrtr on 127.0.0.1:`port`, serving `file`, re-reading it every second. Killed on drop.
struct Stayrtr(Child);

impl Stayrtr {
    fn start(dir: &Path, file: &Path, port: u16, protocol: u8) -> Stayrtr {
        Stayrtr::start_with_timers(dir, file, port, protocol, (30, 2, 600))
    }

    /// With the End of Data timers (refresh, retry, expire) stayrtr sends.
    fn start_with_timers(dir: &Path, file: &Path, port: u16, protocol: u8, timers: (u32, u32, u32)) -> Stayrtr {
        let metrics = free_port("127.0.0.1");
        let log = std::fs::File::create(dir.join(format!("stayrtr-{port}.log"))).expect("log");
        let child = Command::new("stayrtr")
            .args(["-bind", &format!("127.0.0.1:{port}")])
            .args(["-metrics.addr", &format!("127.0.0.1:{metrics}")])
            .arg("-cache")
            .arg(file)
            .args(["-checktime=false", "-refresh", "1", "-protocol", &protocol.to_string()])
            .args(["-rtr.refresh", &timers.0.to_string(), "-rtr.retry", &timers.1.to_string()])
            .args(["-rtr.expire", &timers.2.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("stayrtr (Debian package stayrtr) is installed");
        // Listening once a TCP connect works.
        let up = wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(up, "stayrtr listens on {port}");
        Stayrtr(child)
    }
}

impl Drop for Stayrtr {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn roas(list: &[(&str, u8, u32)]) -> String {
    let items: Vec<String> =
        list.iter().map(|(p, m, a)| format!("{{\"prefix\":\"{p}\",\"maxLength\":{m},\"asn\":\"AS{a}\"}}")).collect();
    format!("{{\"roas\":[{}]}}", items.join(","))
}

/// Replace `file` in one step, as a cache's publisher would.
fn write_atomically(file: &Path, text: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, file).expect("rename");
}

fn config(dir: &Path, caches: &[(u16, u8, u8)]) -> String {
    let mut s = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten = false\ncontrol_socket = \"{}/f.sock\"\n\n\
         [[peers]]\naddress = \"127.0.0.171\"\nremote_as = 65002\npassive = true\n",
        dir.display()
    );
    for (port, preference, max_version) in caches {
        s.push_str(&format!(
            "\n[[rpki.caches]]\naddress = \"127.0.0.1\"\nport = {port}\npreference = {preference}\nmax_version = {max_version}\nretry_secs = 1\n"
        ));
    }
    s
}

fn lookup(f: &Focld, prefix: &str, origin: u32) -> String {
    let v = f.focl(&["rpki", "lookup", prefix, &format!("AS{origin}")]).expect("rpki lookup");
    v["state"].as_str().unwrap_or("?").to_string()
}

fn cache_status(f: &Focld, i: usize) -> Value {
    f.focl(&["rpki", "status"]).map(|s| s["caches"][i].clone()).unwrap_or(Value::Null)
}

#[test]
fn focld_synchronises_with_stayrtr_in_versions_1_and_0_and_follows_an_edit_live() {
    for protocol in [1u8, 0] {
        let dir = TempDir::new(&format!("rtr-v{protocol}"));
        let file = dir.path().join("vrps.json");
        write_atomically(&file, &roas(&[("203.0.113.0/24", 24, 65008), ("2001:db8::/32", 48, 65009)]));
        let port = free_port("127.0.0.1");
        let _cache = Stayrtr::start(dir.path(), &file, port, protocol);
        // focld starts at version 1; against a version 0 cache it downgrades (RFC 8210 §7).
        let f = Focld::start(dir.path(), "f", &config(dir.path(), &[(port, 100, 1)]));
        let synced = wait_for(Duration::from_secs(20), || {
            let c = cache_status(&f, 0);
            c["state"] == "synchronized" && c["vrps"] == 2
        });
        assert!(
            synced,
            "v{protocol}: {:?}; stayrtr log:\n{}",
            cache_status(&f, 0),
            std::fs::read_to_string(dir.path().join(format!("stayrtr-{port}.log"))).unwrap_or_default()
        );
        let c = cache_status(&f, 0);
        assert_eq!(c["version"], protocol, "{c}");
        assert_eq!(c["in_use"], true);
        if protocol == 1 {
            assert_eq!(
                (c["refresh_secs"].as_u64(), c["retry_secs"].as_u64()),
                (Some(30), Some(1)),
                "the cache's timers, the retry override"
            );
        }
        assert_eq!(lookup(&f, "203.0.113.0/24", 65008), "valid");
        assert_eq!(lookup(&f, "203.0.113.0/25", 65008), "invalid", "longer than maxLength");
        assert_eq!(lookup(&f, "203.0.113.0/24", 65010), "invalid", "another origin");
        assert_eq!(lookup(&f, "2001:db8:1::/48", 65009), "valid");
        assert_eq!(lookup(&f, "198.51.100.0/24", 65010), "not-found");
        let serial = c["serial"].as_u64().expect("a serial");

        // The file changes: stayrtr re-reads it and notifies; focld asks for the difference.
        write_atomically(&file, &roas(&[("203.0.113.0/24", 24, 65008), ("198.51.100.0/24", 24, 65010)]));
        let followed = wait_for(Duration::from_secs(20), || lookup(&f, "198.51.100.0/24", 65010) == "valid");
        assert!(followed, "v{protocol}: the new VRP arrives: {:?}", cache_status(&f, 0));
        assert!(
            wait_for(Duration::from_secs(5), || lookup(&f, "2001:db8:1::/48", 65009) == "not-found"),
            "the removed one goes"
        );
        let c = cache_status(&f, 0);
        assert!(c["serial"].as_u64().is_some_and(|s| s > serial), "a newer serial: {c}");
        assert_eq!(c["vrps"], 2);
    }
}

#[test]
fn of_two_caches_the_preferred_one_is_used_and_the_other_takes_over_while_it_is_gone() {
    let dir = TempDir::new("rtr-two");
    let (fa, fb) = (dir.path().join("a.json"), dir.path().join("b.json"));
    write_atomically(&fa, &roas(&[("203.0.113.0/24", 24, 65008)]));
    write_atomically(&fb, &roas(&[("198.51.100.0/24", 24, 65010)]));
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let a = Stayrtr::start(dir.path(), &fa, pa, 1);
    let _b = Stayrtr::start(dir.path(), &fb, pb, 1);
    let f = Focld::start(dir.path(), "f", &config(dir.path(), &[(pa, 10, 1), (pb, 20, 1)]));
    let both = wait_for(Duration::from_secs(20), || {
        cache_status(&f, 0)["state"] == "synchronized" && cache_status(&f, 1)["state"] == "synchronized"
    });
    assert!(both, "{:?}", f.focl(&["rpki", "status"]));
    assert_eq!(
        (cache_status(&f, 0)["in_use"].as_bool(), cache_status(&f, 1)["in_use"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(lookup(&f, "203.0.113.0/24", 65008), "valid");
    assert_eq!(lookup(&f, "198.51.100.0/24", 65010), "not-found", "the less preferred cache is not used");

    // The preferred cache dies: the other one takes over at once.
    drop(a);
    let over = wait_for(Duration::from_secs(10), || lookup(&f, "198.51.100.0/24", 65010) == "valid");
    assert!(over, "{:?}", f.focl(&["rpki", "status"]));
    assert_eq!(lookup(&f, "203.0.113.0/24", 65008), "not-found");
    assert_eq!(cache_status(&f, 1)["in_use"], true);
    assert_ne!(cache_status(&f, 0)["state"], "synchronized");

    // It comes back (same port): focld reconnects and prefers it again.
    let _a = Stayrtr::start(dir.path(), &fa, pa, 1);
    let back = wait_for(Duration::from_secs(20), || lookup(&f, "203.0.113.0/24", 65008) == "valid");
    assert!(back, "{:?}", f.focl(&["rpki", "status"]));
    assert_eq!(lookup(&f, "198.51.100.0/24", 65010), "not-found");
}

#[test]
fn vrp_files_validate_without_a_cache_and_are_read_again_on_reload() {
    let dir = TempDir::new("rtr-file");
    let file = dir.path().join("vrps.json");
    write_atomically(&file, &roas(&[("203.0.113.0/24", 24, 65008)]));
    let cfg = config(dir.path(), &[]) + &format!("\n[[rpki.files]]\npath = \"{}\"\n", file.display());
    let f = Focld::start(dir.path(), "f", &cfg);
    assert_eq!(lookup(&f, "203.0.113.0/24", 65008), "valid");
    let s = f.focl(&["rpki", "status"]).expect("status");
    assert_eq!((s["vrps_in_use"].as_u64(), s["files"][0]["vrps"].as_u64()), (Some(1), Some(1)), "{s}");
    write_atomically(&file, &roas(&[("203.0.113.0/24", 24, 65009)]));
    f.focl(&["reload"]).expect("reload");
    assert!(wait_for(Duration::from_secs(5), || lookup(&f, "203.0.113.0/24", 65008) == "invalid"));
    // A broken file keeps what was read before, and says why.
    std::fs::write(&file, "{not json").expect("write");
    f.focl(&["reload"]).expect("reload");
    let s = f.focl(&["rpki", "status"]).expect("status");
    assert!(s["files"][0]["last_error"].as_str().is_some_and(|e| e.contains("not a VRP file")), "{s}");
    assert_eq!(lookup(&f, "203.0.113.0/24", 65009), "valid", "the VRPs read before stay");
}

/// The `rpki` field of the route `focl rib lookup PREFIX` gives.
fn route_state(f: &Focld, prefix: &str) -> String {
    let v = f.focl(&["rib", "lookup", prefix]).expect("rib lookup");
    v["routes"][0]["rpki"].as_str().unwrap_or("-").to_string()
}

#[test]
fn every_route_carries_its_origin_validation_and_a_vrp_change_revalidates_only_the_routes_under_it() {
    use std::net::{Ipv4Addr, SocketAddr};
    let dir = TempDir::new("rov-rib");
    let file = dir.path().join("vrps.json");
    // 192.0.2.0/24 may come from AS65041; 198.51.100.0/22 only from AS64999, up to /22.
    write_atomically(&file, &roas(&[("192.0.2.0/24", 24, 65041), ("198.51.100.0/22", 22, 64999)]));
    let port = free_port("127.0.0.1");
    let cfg = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\n\
         control_socket = \"{d}/f.sock\"\nlog_level = \"info\"\n\n\
         [[peers]]\naddress = \"127.0.0.172\"\nremote_as = 65041\npassive = true\n\n\
         [[rpki.files]]\npath = \"{f}\"\n",
        d = dir.path().display(),
        f = file.display()
    );
    let f = Focld::start(dir.path(), "f", &cfg);
    assert!(wait_for(Duration::from_secs(5), || lookup(&f, "192.0.2.0/24", 65041) == "valid"));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish("127.0.0.172", remote, 65041, Ipv4Addr::new(192, 0, 2, 72));
    f.wait_established("127.0.0.172", Duration::from_secs(5));
    // ORIGIN IGP, AS_PATH [65041] (4-octet), NEXT_HOP 127.0.0.172; then an AS_SET origin.
    let attrs = [0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfe, 0x11, 0x40, 3, 4, 127, 0, 0, 172];
    s.send(&update_msg(&[], &attrs, &[24, 192, 0, 2, 24, 198, 51, 100, 24, 203, 0, 113]));
    let set_attrs = [0x40, 1, 1, 0, 0x40, 2, 6, 1, 1, 0, 0, 0xfe, 0x11, 0x40, 3, 4, 127, 0, 0, 172];
    s.send(&update_msg(&[], &set_attrs, &[25, 192, 0, 2, 0]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in_prefixes("127.0.0.172").len() == 4));
    assert_eq!(route_state(&f, "192.0.2.0/24"), "valid");
    assert_eq!(route_state(&f, "198.51.100.0/24"), "invalid", "covered, but another AS and too long");
    assert_eq!(route_state(&f, "203.0.113.0/24"), "not-found");
    assert_eq!(route_state(&f, "192.0.2.0/25"), "invalid", "an AS_SET origin matches no VRP (RFC 6811 §2)");
    let text = Command::new(focl_bin()).arg("-s").arg(&f.socket).args(["rib", "lookup", "198.51.100.1"]).output();
    let text = String::from_utf8_lossy(&text.expect("focl").stdout).to_string();
    assert!(text.contains("RPKI") && text.contains("invalid"), "{text}");
    let rov = |f: &Focld| {
        let s = f.focl(&["rib", "summary"]).expect("rib summary");
        let r = &s["rov"];
        (r["valid"].as_u64(), r["invalid"].as_u64(), r["not_found"].as_u64(), s["peers"][0]["rov"] == s["rov"])
    };
    assert_eq!(rov(&f), (Some(1), Some(2), Some(1), true));
    let invalid = f.focl(&["rib", "in", "127.0.0.172", "--rpki", "invalid"]).expect("rib in --rpki");
    let mut names: Vec<&str> =
        invalid["routes"].as_array().expect("routes").iter().filter_map(|r| r["prefix"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["192.0.2.0/25", "198.51.100.0/24"]);
    let bad = f.focl(&["rib", "in", "127.0.0.172", "--rpki", "bogus"]);
    assert!(bad.as_ref().is_err_and(|e| e.contains("valid, invalid or not-found")), "{bad:?}");

    // One VRP prefix changes: its one route is validated again, and no other.
    write_atomically(&file, &roas(&[("192.0.2.0/24", 24, 65041), ("198.51.100.0/22", 24, 65041)]));
    f.focl(&["reload"]).expect("reload");
    assert!(wait_for(Duration::from_secs(5), || route_state(&f, "198.51.100.0/24") == "valid"));
    assert_eq!(route_state(&f, "192.0.2.0/24"), "valid");
    assert_eq!(route_state(&f, "203.0.113.0/24"), "not-found");
    assert_eq!(rov(&f), (Some(2), Some(1), Some(1), true), "the counts follow the change");
    let log = f.log_text();
    assert!(
        log.contains("VRP prefixes changed: 1; routes validated again: 1; changed state: 1"),
        "the log says what was validated again:\n{log}"
    );
    // The file gone from the configuration: no VRPs, no state shown.
    let without = cfg.split("[[rpki.files]]").next().unwrap_or_default().to_string();
    std::fs::write(&f.config, &without).expect("config");
    f.focl(&["reload"]).expect("reload");
    assert!(wait_for(Duration::from_secs(5), || route_state(&f, "192.0.2.0/24") == "-"));
    assert_eq!(rov(&f), (None, None, None, true), "no VRPs, no counts");
    drop(s);
}

#[test]
fn each_rib_snapshot_gets_the_vrps_in_effect_beside_it_with_the_cache_serial_in_its_manifest() {
    use std::io::Read;
    let dir = TempDir::new("rtr-archive");
    let cached = dir.path().join("cache.json");
    write_atomically(&cached, &roas(&[("203.0.113.0/24", 24, 65008), ("2001:db8::/32", 48, 65009)]));
    let local = dir.path().join("local.json");
    // One VRP in both sources: the archived set holds it once.
    write_atomically(&local, &roas(&[("198.51.100.0/22", 24, 65010), ("203.0.113.0/24", 24, 65008)]));
    let port = free_port("127.0.0.1");
    let _cache = Stayrtr::start(dir.path(), &cached, port, 1);
    let cfg = config(dir.path(), &[(port, 100, 1)])
        + &format!(
            "\n[[rpki.files]]\npath = \"{}\"\n\n[archive]\nenabled = true\ndir = \"{}/archive\"\nlayout = \"routeviews\"\ncompression = \"bzip2\"\n",
            local.display(),
            dir.path().display()
        );
    let f = Focld::start(dir.path(), "f", &cfg);
    assert!(
        wait_for(Duration::from_secs(20), || f.focl(&["rpki", "status"]).is_ok_and(|s| s["vrps_in_use"] == 3)),
        "{:?}",
        f.focl(&["rpki", "status"])
    );
    let c = cache_status(&f, 0);
    f.focl(&["archive", "snapshot"]).expect("snapshot");
    let archive = dir.path().join("archive");
    assert!(wait_for(Duration::from_secs(10), || archive_files(&archive, "vrps.").len() == 1
        && archive_files(&archive, "rib.").len() == 1));
    let (rib, vrps) = (archive_files(&archive, "rib.").remove(0), archive_files(&archive, "vrps.").remove(0));
    assert_eq!(rib.parent(), vrps.parent(), "beside the snapshot");
    let stamp = |p: &Path, kind: &str| {
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        n.strip_prefix(kind).unwrap().split('.').take(2).collect::<Vec<_>>().join(".")
    };
    assert_eq!(stamp(&vrps, "vrps."), stamp(&rib, "rib."), "{} and {}", vrps.display(), rib.display());
    assert!(vrps.to_string_lossy().ends_with(".json.bz2"), "compressed like the snapshot: {}", vrps.display());

    // The file is the rpki-client JSON of the union, each VRP once.
    let mut text = String::new();
    bzip2::read::MultiBzDecoder::new(std::fs::File::open(&vrps).expect("open"))
        .read_to_string(&mut text)
        .expect("bzip2");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    let mut got: Vec<String> = v["roas"]
        .as_array()
        .expect("roas")
        .iter()
        .map(|r| format!("{} {} {}", r["prefix"].as_str().unwrap_or("?"), r["maxLength"], r["asn"]))
        .collect();
    got.sort();
    assert_eq!(got, ["198.51.100.0/22 24 65010", "2001:db8::/32 48 65009", "203.0.113.0/24 24 65008"]);
    let rib_name = rib.strip_prefix(&archive).unwrap().display().to_string();
    assert_eq!(v["metadata"]["of"]["rib"], rib_name.as_str());

    // Its manifest: finished (replicated and retained like any archive file), the sources
    // with the cache's session id and serial.
    let m: Value =
        serde_json::from_slice(&std::fs::read(format!("{}.json", vrps.display())).expect("manifest")).expect("json");
    assert_eq!(m["records"], 3, "{m}");
    let sources = m["rpki"].as_array().expect("rpki sources");
    let file = sources.iter().find(|s| s["kind"] == "file").expect("the file");
    assert_eq!((file["name"].as_str(), file["vrps"].as_u64()), (Some(&*local.display().to_string()), Some(2)));
    let cache = sources.iter().find(|s| s["kind"] == "cache").expect("the cache");
    assert_eq!(cache["name"], format!("127.0.0.1:{port}").as_str());
    assert_eq!(
        (&cache["serial"], &cache["session_id"], &cache["version"]),
        (&c["serial"], &c["session_id"], &c["version"])
    );
    assert_eq!(cache["vrps"], 2);
}

/// ORIGIN IGP, the AS_PATH as one segment of `kind` (2 sequence, 1 set) of 4-octet ASes
/// after an AS_SEQUENCE `head`, NEXT_HOP 127.0.0.173.
fn path_attrs(head: &[u32], set: &[u32]) -> Vec<u8> {
    let mut path = vec![2, head.len() as u8];
    path.extend(head.iter().flat_map(|a| a.to_be_bytes()));
    if !set.is_empty() {
        path.extend([1, set.len() as u8]);
        path.extend(set.iter().flat_map(|a| a.to_be_bytes()));
    }
    let mut a = vec![0x40, 1, 1, 0, 0x40, 2, path.len() as u8];
    a.extend(path);
    a.extend([0x40, 3, 4, 127, 0, 0, 173]);
    a
}

#[test]
fn aspa_records_from_a_file_verify_every_path_both_ways_from_a_neighbor_without_a_role() {
    use std::net::{Ipv4Addr, SocketAddr};
    let dir = TempDir::new("aspa-rib");
    let file = dir.path().join("rpki.json");
    // AS64500's only provider is AS65041 (the neighbor); AS64510 attests AS64511.
    let json = r#"{"roas":[],"aspas":[{"customer_asid":64500,"providers":[65041]},{"customer_asid":64510,"providers":["AS64511"]}]}"#;
    write_atomically(&file, json);
    let port = free_port("127.0.0.1");
    let cfg = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\n\
         control_socket = \"{d}/f.sock\"\n\n\
         [[peers]]\naddress = \"127.0.0.173\"\nremote_as = 65041\npassive = true\nimport = [\"aspa_guard\"]\n\n\
         [[policy.aspa_guard.term]]\nmatch = {{ aspa = \"invalid\" }}\naction = \"reject\"\n\n\
         [[rpki.files]]\npath = \"{f}\"\n",
        d = dir.path().display(),
        f = file.display()
    );
    let f = Focld::start(dir.path(), "f", &cfg);
    let status = f.focl(&["rpki", "status"]).expect("status");
    assert_eq!((status["aspas_in_use"].as_u64(), status["files"][0]["aspas"].as_u64()), (Some(2), Some(2)), "{status}");
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish("127.0.0.173", remote, 65041, Ipv4Addr::new(192, 0, 2, 73));
    f.wait_established("127.0.0.173", Duration::from_secs(5));
    // Up from the customer's attested provider: valid both ways.
    s.send(&update_msg(&[], &path_attrs(&[65041, 65041, 64500], &[]), &[24, 192, 0, 2]));
    // Through AS64501, which AS64500 does not attest: a leak upwards; from a provider, AS64501
    // may have been a lateral peer of the neighbor's: unknown, not invalid.
    s.send(&update_msg(&[], &path_attrs(&[65041, 64501, 64500], &[]), &[24, 198, 51, 100]));
    // An AS_SET, and a path that does not start with the neighbor's AS.
    s.send(&update_msg(&[], &path_attrs(&[65041], &[64500, 64502]), &[24, 203, 0, 113]));
    s.send(&update_msg(&[], &path_attrs(&[64999, 64500], &[]), &[16, 10, 1]));
    assert!(wait_for(Duration::from_secs(5), || f.rib_in_prefixes("127.0.0.173").len() == 4));
    // From the Adj-RIB-In: the routes the policy below rejects are shown there too.
    let aspa = |prefix: &str| {
        let v = f.focl(&["rib", "in", "127.0.0.173"]).expect("rib in");
        let routes = v["routes"].as_array().cloned().unwrap_or_default();
        let a = routes.iter().find(|r| r["prefix"] == prefix).map(|r| r["aspa"].clone()).unwrap_or_default();
        format!("{} {} {}", a["state"], a["upstream"], a["downstream"]).replace('"', "")
    };
    assert_eq!(aspa("192.0.2.0/24"), "valid valid valid");
    assert_eq!(aspa("198.51.100.0/24"), "unknown invalid unknown");
    assert_eq!(aspa("203.0.113.0/24"), "invalid invalid invalid", "an AS_SET");
    assert_eq!(aspa("10.1.0.0/16"), "invalid invalid invalid", "not from the neighbor");
    let invalid = f.focl(&["rib", "in", "127.0.0.173", "--aspa", "invalid"]).expect("rib in --aspa");
    let mut names: Vec<&str> =
        invalid["routes"].as_array().expect("routes").iter().filter_map(|r| r["prefix"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["10.1.0.0/16", "203.0.113.0/24"]);
    // The import policy matches the same verdicts: those two are rejected, and kept.
    let rejected = |f: &Focld| {
        let v = f.focl(&["rib", "in", "127.0.0.173", "--rejected"]).expect("rib in --rejected");
        let mut names: Vec<String> = v["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .filter_map(|r| r["prefix"].as_str().map(String::from))
            .collect();
        names.sort();
        names
    };
    assert_eq!(rejected(&f), ["10.1.0.0/16", "203.0.113.0/24"]);
    let why = f.focl(&["policy", "explain", "127.0.0.173", "203.0.113.0/24"]).expect("explain");
    assert_eq!(why["routes"][0]["decision"], "reject", "{why}");
    assert!(why["routes"][0]["decided_by"].as_str().is_some_and(|d| d.contains("aspa_guard term 1")), "{why}");
    let bad = f.focl(&["rib", "in", "127.0.0.173", "--aspa", "maybe"]);
    assert!(bad.as_ref().is_err_and(|e| e.contains("valid, invalid or unknown")), "{bad:?}");
    let text = Command::new(focl_bin()).arg("-s").arg(&f.socket).args(["rib", "lookup", "198.51.100.1"]).output();
    let text = String::from_utf8_lossy(&text.expect("focl").stdout).to_string();
    assert!(text.contains("ASPA") && text.contains("up invalid, down unknown"), "{text}");

    // The provider set changes: AS64500 now attests AS64501 as well, so the path is an up-ramp
    // (the AS64501 hop unattested: unknown) or, from a provider, up and down: valid.
    write_atomically(&file, &json.replace("[65041]", "[65041, 64501]"));
    f.focl(&["reload"]).expect("reload");
    assert!(
        wait_for(Duration::from_secs(5), || aspa("198.51.100.0/24") == "valid unknown valid"),
        "{}",
        aspa("198.51.100.0/24")
    );
    // With no ASPA record at all no route has a verdict and the policy rejects none; the
    // records back, the same two are rejected again (evaluated again, no session reset).
    write_atomically(&file, r#"{"roas":[],"aspas":[]}"#);
    f.focl(&["reload"]).expect("reload");
    assert!(wait_for(Duration::from_secs(5), || rejected(&f).is_empty()), "{:?}", rejected(&f));
    write_atomically(&file, json);
    f.focl(&["reload"]).expect("reload");
    assert!(
        wait_for(Duration::from_secs(5), || rejected(&f) == ["10.1.0.0/16", "203.0.113.0/24"]),
        "{:?}",
        rejected(&f)
    );
    drop(s);
}

#[test]
fn a_cache_gone_past_its_expire_time_has_its_data_dropped_and_its_return_brings_it_back() {
    use std::net::{Ipv4Addr, SocketAddr};
    let dir = TempDir::new("rtr-expire");
    let file = dir.path().join("vrps.json");
    write_atomically(&file, &roas(&[("192.0.2.0/24", 24, 65041)]));
    let (port, bgp) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    // stayrtr sends expire 4 s; a debug focld accepts it (FOCLD_TEST_RTR_EXPIRE_MIN), where
    // RFC 8210 §6's floor of 600 s would otherwise apply.
    let cache = Stayrtr::start_with_timers(dir.path(), &file, port, 1, (1, 1, 4));
    let cfg = format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{bgp}\"\n\
         control_socket = \"{d}/f.sock\"\n\n\
         [[peers]]\naddress = \"127.0.0.174\"\nremote_as = 65041\npassive = true\n\n\
         [[rpki.caches]]\naddress = \"127.0.0.1\"\nport = {port}\n",
        d = dir.path().display()
    );
    let f = Focld::start_with_env(dir.path(), "f", &cfg, &[("FOCLD_TEST_RTR_EXPIRE_MIN", "2")]);
    assert!(wait_for(Duration::from_secs(20), || cache_status(&f, 0)["state"] == "synchronized"));
    assert_eq!(cache_status(&f, 0)["expire_secs"], 4, "{}", cache_status(&f, 0));
    let remote: SocketAddr = format!("127.0.0.1:{bgp}").parse().unwrap();
    let mut s = RawSpeaker::establish("127.0.0.174", remote, 65041, Ipv4Addr::new(192, 0, 2, 74));
    f.wait_established("127.0.0.174", Duration::from_secs(5));
    let attrs = [0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfe, 0x11, 0x40, 3, 4, 127, 0, 0, 174];
    s.send(&update_msg(&[], &attrs, &[24, 192, 0, 2]));
    assert!(wait_for(Duration::from_secs(5), || route_state(&f, "192.0.2.0/24") == "valid"));

    // The cache goes away: its data stays in use until it expires, then the route is not found.
    drop(cache);
    let gone = std::time::Instant::now();
    assert!(wait_for(Duration::from_secs(15), || route_state(&f, "192.0.2.0/24") == "not-found"));
    assert!(gone.elapsed() >= Duration::from_secs(2), "not dropped before it expired: {:?}", gone.elapsed());
    assert_eq!(f.focl(&["rpki", "status"]).expect("status")["vrps_in_use"], 0);

    // It comes back: focld reconnects (retry 1 s) and the route is valid again.
    let _cache = Stayrtr::start_with_timers(dir.path(), &file, port, 1, (1, 1, 4));
    assert!(
        wait_for(Duration::from_secs(20), || route_state(&f, "192.0.2.0/24") == "valid"),
        "{:?}",
        f.focl(&["rpki", "status"])
    );
    drop(s);
}
