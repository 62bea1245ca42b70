//! The MRT archive end to end: what a peer sends is in the update file byte for byte, with
//! state changes and microsecond timestamps; a RIB snapshot holds the Adj-RIB-In; bgpdump and
//! bgpkit-parser read both; a kill -9 loses no complete record and damages no finished file,
//! also when it comes at any step of finishing a file.

mod common;

use common::*;
use focl::wire::frame::MsgType;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

fn config(dir: &std::path::Path, port: u16, peer: &str, layout: &str, compression: &str) -> String {
    format!(
        r#"
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:{port}"
control_socket = "{d}/f.sock"
log_level = "debug"

[[peers]]
address = "{peer}"
remote_as = 65010
passive = true

[archive]
enabled = true
dir = "{d}/archive"
layout = "{layout}"
compression = "{compression}"
"#,
        d = dir.display()
    )
}

/// An UPDATE announcing `n` /24s under 10.0.0.0/8 with communities, a large community, MED
/// and a long AS path.
fn update(i: u32) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0];
    let path: Vec<u32> = vec![65010, 65020, 4_200_000_000, 65030 + i % 7];
    attrs.extend_from_slice(&[0x40, 2, (2 + 4 * path.len()) as u8, 2, path.len() as u8]);
    for a in &path {
        attrs.extend_from_slice(&a.to_be_bytes());
    }
    attrs.extend_from_slice(&[0x40, 3, 4, 127, 0, 0, 81]);
    attrs.extend_from_slice(&[0x80, 4, 4, 0, 0, 0, 50]);
    attrs.extend_from_slice(&[0xc0, 8, 4, 0xfd, 0xe8, 0, (i % 200) as u8]);
    attrs.extend_from_slice(&[0xc0, 32, 12, 0, 0, 0xfd, 0xe8, 0, 0, 0, 1, 0, 0, 0, i as u8]);
    let nlri = [24, 10, (i >> 8) as u8, i as u8];
    let len = 19 + 4 + attrs.len() + nlri.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&attrs);
    m.extend_from_slice(&nlri);
    m
}

fn bgpdump(path: &std::path::Path) -> String {
    let out = std::process::Command::new("bgpdump")
        .arg("-m")
        .arg(path)
        .output()
        .expect("bgpdump (Debian package bgpdump) is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn update_file_and_snapshot_hold_what_the_peer_sent_for_both_compressions() {
    for (tag, layout, compression, peer) in
        [("gz", "ris", "gzip", "127.0.0.81"), ("bz", "routeviews", "bzip2", "127.0.0.82")]
    {
        let dir = TempDir::new(&format!("mrt-{tag}"));
        let port = free_port("127.0.0.1");
        let f = Focld::start(dir.path(), "f", &config(dir.path(), port, peer, layout, compression));
        let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut s = RawSpeaker::establish(peer, remote, 65010, Ipv4Addr::new(192, 0, 2, 81));
        f.wait_established(peer, Duration::from_secs(5));
        let sent: Vec<Vec<u8>> = (0..300).map(update).collect();
        for m in &sent {
            s.send(m);
        }
        // Withdraw the first 100 again.
        let mut w = vec![0xff; 16];
        let withdrawn: Vec<u8> = (0..100u32).flat_map(|i| [24, 10, (i >> 8) as u8, i as u8]).collect();
        w.extend_from_slice(&((23 + withdrawn.len()) as u16).to_be_bytes());
        w.push(2);
        w.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
        w.extend_from_slice(&withdrawn);
        w.extend_from_slice(&[0, 0]);
        s.send(&w);
        assert!(wait_for(Duration::from_secs(10), || f.rib_in(peer).len() == 200), "{}", f.rib_in(peer).len());

        // Update file: rotate, then every UPDATE we sent, in order, byte for byte.
        let r = f.focl(&["archive", "rotate"]).expect("rotate");
        let finished = r["finished"].as_str().expect("a finished file").to_string();
        let path = dir.path().join("archive").join(&finished);
        assert!(path.exists(), "{}", path.display());
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{}.json", path.display())).expect("manifest")).unwrap();
        assert_eq!(manifest["size"].as_u64(), Some(std::fs::metadata(&path).unwrap().len()));
        let records = mrt_records(&path);
        assert_eq!(manifest["records"].as_u64(), Some(records.len() as u64));
        let mut updates = Vec::new();
        let mut states = Vec::new();
        for r in &records {
            assert_eq!(r.common_header.entry_type as u16, 17, "BGP4MP_ET");
            assert!(r.common_header.microsecond_timestamp.is_some());
            match r.common_header.entry_subtype {
                4 => {
                    let (ip, msg) = bgp4mp_message(4, &r.message_bytes).expect("MESSAGE_AS4");
                    assert_eq!(ip.to_string(), peer);
                    if msg[18] == MsgType::Update as u8 {
                        updates.push(msg);
                    }
                }
                5 => states.push(r.message_bytes.to_vec()),
                other => panic!("unexpected subtype {other}"),
            }
        }
        let mut want = sent.clone();
        want.push(w.clone());
        assert_eq!(updates.len(), want.len());
        assert!(updates == want, "archived UPDATEs are byte-identical and in order");
        // Idle->Active at start, then Active->OpenSent->OpenConfirm->Established.
        let last_states: Vec<(u8, u8)> = states.iter().map(|b| (b[b.len() - 3], b[b.len() - 1])).collect();
        assert!(last_states.ends_with(&[(3, 4), (4, 5), (5, 6)]), "{last_states:?}");
        let dump = bgpdump(&path);
        // bgpdump -m: TYPE|time|A|peer|peer AS|prefix|AS path|origin|next hop|local pref|MED|communities|...
        let line =
            dump.lines().find(|l| l.contains("|A|") && l.contains("|10.0.5.0/24|")).expect("10.0.5.0/24 announced");
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields[0], "BGP4MP_ET", "{line}");
        assert!(fields[1].contains('.'), "microseconds: {line}");
        assert_eq!(
            &fields[3..12],
            &[peer, "65010", "10.0.5.0/24", "65010 65020 4200000000 65035", "IGP", "127.0.0.81", "0", "50", "65000:5"],
            "{line}"
        );
        assert_eq!(dump.lines().filter(|l| l.contains("|W|")).count(), 100, "bgpdump sees the 100 withdrawals");
        assert!(
            dump.lines().any(|l| l.contains("|STATE|") && l.ends_with("|5|6")),
            "bgpdump sees the state change to Established"
        );

        // Snapshot: the 200 surviving routes with their attributes.
        f.focl(&["archive", "snapshot"]).expect("snapshot");
        let rib_kind = if layout == "ris" { "bview" } else { "rib" };
        assert!(wait_for(Duration::from_secs(10), || !archive_files(&dir.path().join("archive"), rib_kind).is_empty()));
        let ribs = archive_files(&dir.path().join("archive"), rib_kind);
        let rib_manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{}.json", ribs[0].display())).expect("manifest")).unwrap();
        assert_eq!(rib_manifest["peers"], serde_json::json!([peer]), "the snapshot's manifest lists its peer");
        let elems: Vec<bgpkit_parser::BgpElem> =
            bgpkit_parser::BgpkitParser::from_reader(open_mrt(&ribs[0])).into_elem_iter().collect();
        assert_eq!(elems.len(), 200);
        let e = elems.iter().find(|e| e.prefix.to_string() == "10.0.150.0/24").expect("10.0.150.0/24 in the RIB");
        assert_eq!(e.peer_ip.to_string(), peer);
        assert_eq!(e.peer_asn.to_u32(), 65010);
        assert_eq!(e.as_path.as_ref().map(|p| p.to_string()).as_deref(), Some("65010 65020 4200000000 65033"));
        assert_eq!(e.med, Some(50));
        assert!(elems.windows(2).all(|w| w[0].prefix.prefix.addr() <= w[1].prefix.prefix.addr()), "prefix order");
        let dump = bgpdump(&ribs[0]);
        assert_eq!(dump.lines().filter(|l| l.starts_with("TABLE_DUMP2|")).count(), 200, "{dump}");
        // gzip/bzip2 files are valid for the system tools too.
        let tool = if compression == "gzip" { "gzip" } else { "bzip2" };
        for p in [&path, &ribs[0]] {
            let ok = std::process::Command::new(tool).arg("-t").arg(p).status().map(|s| s.success()).unwrap_or(false);
            assert!(ok, "{tool} -t {}", p.display());
        }
        let st = f.focl(&["archive", "status"]).unwrap();
        assert_eq!(st["dropped"], 0);
    }
}

#[test]
fn kill_9_loses_no_complete_record_and_damages_no_finished_file() {
    let dir = TempDir::new("mrt-crash");
    let port = free_port("127.0.0.1");
    let mut f = Focld::start(dir.path(), "f", &config(dir.path(), port, "127.0.0.83", "routeviews", "bzip2"));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish("127.0.0.83", remote, 65010, Ipv4Addr::new(192, 0, 2, 83));
    f.wait_established("127.0.0.83", Duration::from_secs(5));
    for i in 0..50 {
        s.send(&update(i));
    }
    assert!(wait_for(Duration::from_secs(5), || f.rib_in("127.0.0.83").len() == 50));
    let first = f.focl(&["archive", "rotate"]).unwrap()["finished"].as_str().unwrap().to_string();
    let first_path = dir.path().join("archive").join(&first);
    let before = std::fs::read(&first_path).unwrap();
    for i in 50..170 {
        s.send(&update(i));
    }
    assert!(wait_for(Duration::from_secs(5), || f.rib_in("127.0.0.83").len() == 170));
    std::thread::sleep(Duration::from_millis(2500)); // past the writer's 1 s flush
    f.kill(); // SIGKILL: no chance to finish the file
    drop(s);
    f.spawn();
    assert!(f.log_text().contains("salvaged"), "{}", f.log_text());
    assert_eq!(std::fs::read(&first_path).unwrap(), before, "the finished file is untouched");
    let files = archive_files(&dir.path().join("archive"), "updates");
    assert_eq!(files.len(), 2, "{files:?}");
    let salvaged = files.iter().find(|p| **p != first_path).unwrap();
    let updates = mrt_records(salvaged)
        .iter()
        .filter_map(|r| bgp4mp_message(r.common_header.entry_subtype, &r.message_bytes))
        .filter(|(_, m)| m[18] == 2)
        .count();
    assert_eq!(updates, 120, "every UPDATE received before the kill is in the salvaged file");
    assert!(std::path::Path::new(&format!("{}.json", salvaged.display())).exists(), "with a manifest");
}

#[test]
fn update_files_rotate_and_snapshots_are_taken_on_the_clock() {
    let dir = TempDir::new("mrt-clock");
    let port = free_port("127.0.0.1");
    let cfg = config(dir.path(), port, "127.0.0.84", "ris", "gzip")
        + "updates_interval_secs = 60\nrib_interval_secs = 60\nrecord_keepalives = true\n";
    let f = Focld::start(dir.path(), "f", &cfg);
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish("127.0.0.84", remote, 65010, Ipv4Addr::new(192, 0, 2, 84));
    s.send(&update(1));
    let archive = dir.path().join("archive");
    let st = f.focl(&["archive", "status"]).unwrap();
    let next = st["next_snapshot"].as_u64().expect("next_snapshot is filled");
    let now = unix_now() as u64;
    assert!(
        next % 60 == 0 && next + 1 >= now && next <= now + 61,
        "next_snapshot {next} is the next minute after {now}"
    );
    // Within a minute and a bit, the clock finishes the update file and takes a snapshot.
    let done = wait_for(Duration::from_secs(75), || {
        !archive_files(&archive, "updates.").is_empty() && !archive_files(&archive, "bview.").is_empty()
    });
    assert!(done, "no rotation or snapshot; status {:?}", f.focl(&["archive", "status"]));
    for p in archive_files(&archive, "updates.").iter().chain(archive_files(&archive, "bview.").iter()) {
        // Named after a minute boundary (UTC): updates.YYYYMMDD.HHMM.gz, bview.YYYYMMDD.HHMM.gz.
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let stamp = name.split('.').nth(2).unwrap();
        assert_eq!(stamp.len(), 4, "{name}");
        // An interval in which nothing arrived has its (empty) file too.
        let Some(first) = mrt_records(p).first().map(|r| r.common_header.timestamp) else { continue };
        let minute = (first / 60) * 60;
        let want = focl::utc::format(u64::from(minute));
        let hhmm = format!("{}{}", &want[11..13], &want[14..16]);
        assert_eq!(hhmm, stamp, "{name} holds records from {want} on");
    }
    // KEEPALIVEs are in the archive when asked for.
    let upd = &archive_files(&archive, "updates.")[0];
    let keepalives = mrt_records(upd)
        .iter()
        .filter_map(|r| bgp4mp_message(r.common_header.entry_subtype, &r.message_bytes))
        .filter(|(_, m)| m[18] == MsgType::Keepalive as u8)
        .count();
    assert!(keepalives >= 1, "record_keepalives = true archives KEEPALIVEs");
}

/// Every file of the archive below `archive` (relative), hidden ones included, sorted.
fn all_files(archive: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![archive.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else if let Ok(rel) = e.path().strip_prefix(archive) {
                out.push(rel.to_string_lossy().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Check every finished update file against its manifest (size, SHA-256, records) and return
/// the UPDATEs from `peer` in each, by file name.
fn checked_updates(archive: &std::path::Path, peer: &str) -> Vec<(String, usize)> {
    use sha2::{Digest, Sha256};
    archive_files(archive, "updates.")
        .iter()
        .map(|p| {
            let name = p.strip_prefix(archive).unwrap().to_string_lossy().to_string();
            let json =
                std::fs::read(format!("{}.json", p.display())).unwrap_or_else(|e| panic!("manifest of {name}: {e}"));
            let m: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let bytes = std::fs::read(p).unwrap();
            let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(m["sha256"].as_str(), Some(sha.as_str()), "{name}: manifest SHA-256");
            assert_eq!(m["size"].as_u64(), Some(bytes.len() as u64), "{name}: manifest size");
            let records = mrt_records(p);
            assert_eq!(m["records"].as_u64(), Some(records.len() as u64), "{name}: manifest records");
            let updates = records
                .iter()
                .filter_map(|r| bgp4mp_message(r.common_header.entry_subtype, &r.message_bytes))
                .filter(|(ip, m)| ip.to_string() == peer && m[18] == MsgType::Update as u8)
                .count();
            (name, updates)
        })
        .collect()
}

#[test]
fn kill_9_at_every_step_of_finishing_leaves_each_file_finished_once_with_a_true_manifest() {
    // The steps of src/mrt/file.rs FINISH_STEPS; the debug-build hook FOCLD_FAULT_FINISH=STEP
    // makes focld SIGKILL itself there.
    for step in ["compress", "compressing", "manifest", "rename", "unlink", "sync"] {
        let dir = TempDir::new(&format!("mrt-step-{step}"));
        let port = free_port("127.0.0.1");
        let peer = "127.0.0.85";
        let archive = dir.path().join("archive");
        let mut f = Focld::start_with_env(
            dir.path(),
            "f",
            &config(dir.path(), port, peer, "ris", "gzip"),
            &[("FOCLD_FAULT_FINISH", step)],
        );
        let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut s = RawSpeaker::establish(peer, remote, 65010, Ipv4Addr::new(192, 0, 2, 85));
        f.wait_established(peer, Duration::from_secs(5));
        for i in 0..40 {
            s.send(&update(i));
        }
        assert!(wait_for(Duration::from_secs(5), || f.rib_in(peer).len() == 40), "{step}");
        // Finishing the file kills focld at the step.
        assert!(f.focl(&["archive", "rotate"]).is_err(), "{step}: focld died finishing the file");
        let pid = f.child.as_ref().map(|c| c.id()).unwrap();
        assert!(wait_for(Duration::from_secs(10), || !alive(pid)), "{step}: focld is gone");
        f.kill();
        drop(s);
        f.env.clear();
        f.spawn();
        // Start-up salvage finished the file exactly once: one file holds the 40 UPDATEs.
        let files = checked_updates(&archive, peer);
        let with_updates: Vec<_> = files.iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(with_updates.len(), 1, "{step}: {files:?}\n{}", f.log_text());
        assert_eq!(with_updates[0].1, 40, "{step}: every UPDATE, once");
        assert!(!with_updates[0].0.contains("-1"), "{step}: finished under its own name: {files:?}");
        assert_eq!(f.focl(&["archive", "status"]).unwrap()["dropped"], 0, "{step}");
        // After a clean stop nothing is left unfinished, and every file has its manifest.
        assert_eq!(f.terminate(), Some(0), "{step}");
        let left: Vec<String> = all_files(&archive)
            .into_iter()
            .filter(|n| n.rsplit('/').next().is_some_and(|b| b.starts_with('.')))
            .collect();
        assert!(left.is_empty(), "{step}: leftovers {left:?}");
        let files = checked_updates(&archive, peer);
        assert_eq!(files.iter().map(|(_, n)| n).sum::<usize>(), 40, "{step}: {files:?}");
    }
}

/// Seconds since the Unix epoch, as a float.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `updates.YYYYMMDD.HHMM.gz` of the minute starting at `secs`.
fn ris_update_name(secs: u64) -> String {
    let t = focl::utc::format(secs);
    format!("updates.{}{}{}.{}{}.gz", &t[0..4], &t[5..7], &t[8..10], &t[11..13], &t[14..16])
}

#[test]
fn a_stream_across_a_rotation_boundary_goes_to_the_files_of_the_minutes_the_writer_took_it_in() {
    let dir = TempDir::new("mrt-boundary");
    let port = free_port("127.0.0.1");
    let peer = "127.0.0.86";
    let cfg = config(dir.path(), port, peer, "ris", "gzip") + "updates_interval_secs = 60\nrib_interval_secs = 0\n";
    let f = Focld::start(dir.path(), "f", &cfg);
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish(peer, remote, 65010, Ipv4Addr::new(192, 0, 2, 86));
    f.wait_established(peer, Duration::from_secs(5));
    // The next minute boundary at least 3 s away; stream UPDATEs from 1.5 s before it to
    // 1.5 s after it, one a millisecond.
    let now = unix_now();
    let mut boundary = (now / 60.0).ceil() * 60.0;
    if boundary - now < 3.0 {
        boundary += 60.0;
    }
    std::thread::sleep(Duration::from_secs_f64(boundary - 1.5 - unix_now()));
    let mut sent = Vec::new();
    while unix_now() < boundary + 1.5 && sent.len() < 10_000 {
        let m = update(sent.len() as u32);
        s.send(&m);
        sent.push(m);
        std::thread::sleep(Duration::from_millis(1));
    }
    let archive = dir.path().join("archive");
    let (before, after) = (ris_update_name(boundary as u64 - 60), ris_update_name(boundary as u64));
    assert!(wait_for(Duration::from_secs(10), || archive_files(&archive, &before).len() == 1), "{before} finished");
    let finished = f.focl(&["archive", "rotate"]).unwrap()["finished"].as_str().unwrap().to_string();
    assert!(finished.ends_with(&after), "the current file is {after}: {finished}");
    // Exactly two files hold the stream, named for their minutes (no "-1"), and together
    // every UPDATE in order.
    let mut got = Vec::new();
    let mut names = Vec::new();
    for p in archive_files(&archive, "updates.") {
        let records = mrt_records(&p);
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let mut n = 0;
        for r in &records {
            let Some((_, m)) = bgp4mp_message(r.common_header.entry_subtype, &r.message_bytes) else { continue };
            if m[18] != MsgType::Update as u8 {
                continue;
            }
            let ts = f64::from(r.common_header.timestamp)
                + f64::from(r.common_header.microsecond_timestamp.unwrap_or(0)) / 1e6;
            if name == before {
                assert!(ts < boundary, "{name} holds only records from before {boundary}: {ts}");
            } else {
                // Received before the boundary at the most by the time it waited in the queue.
                assert!(ts > boundary - 1.0, "{name}: a record from {ts}");
            }
            got.push(m);
            n += 1;
        }
        if n > 0 {
            names.push((name, n));
        }
    }
    assert_eq!(
        names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [before.as_str(), after.as_str()],
        "{names:?}"
    );
    assert!(names.iter().all(|(_, n)| *n > 100), "both minutes hold part of the stream: {names:?}");
    assert!(got == sent, "{} UPDATEs archived of {} sent, in order", got.len(), sent.len());
    assert_eq!(f.focl(&["archive", "status"]).unwrap()["dropped"], 0);
}

#[test]
fn a_minute_in_which_nothing_arrived_has_an_empty_file_that_bgpdump_and_bgpkit_read() {
    let dir = TempDir::new("mrt-idle");
    let port = free_port("127.0.0.1");
    // The peer never connects: after its Idle -> Active at start nothing is archived.
    let cfg = config(dir.path(), port, "127.0.0.87", "routeviews", "bzip2") + "updates_interval_secs = 60\n";
    let f = Focld::start(dir.path(), "f", &cfg);
    let archive = dir.path().join("archive");
    let started = unix_now() as u64;
    let second_minute = ris_update_name((started / 60 + 1) * 60).replace(".gz", ".bz2");
    let ok = wait_for(Duration::from_secs(130), || archive_files(&archive, &second_minute).len() == 1);
    assert!(ok, "{second_minute} finished; status {:?}", f.focl(&["archive", "status"]));
    let files = archive_files(&archive, "updates.");
    let first_minute = ris_update_name(started / 60 * 60).replace(".gz", ".bz2");
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().to_string()).collect();
    assert_eq!(&names[..2], [first_minute, second_minute.clone()], "one file a minute, no gap");
    let empty = &files[1];
    assert_eq!(mrt_records(empty).len(), 0, "bgpkit-parser reads no record");
    assert_eq!(bgpdump(empty), "", "bgpdump reads no record");
    let ok = std::process::Command::new("bzip2").arg("-t").arg(empty).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "bzip2 -t {}", empty.display());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.json", empty.display())).unwrap()).unwrap();
    assert_eq!((m["records"].as_u64(), m["peers"].as_array().map(Vec::len)), (Some(0), Some(0)));
    assert!(!mrt_records(&files[0]).is_empty(), "the first minute holds the Idle -> Active change");
}

#[test]
fn a_thousand_updates_and_a_notification_in_one_write_before_close_are_all_archived_and_counted() {
    let dir = TempDir::new("mrt-eof");
    let port = free_port("127.0.0.1");
    let peer = "127.0.0.85";
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, peer, "ris", "gzip"));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = RawSpeaker::establish(peer, remote, 65010, Ipv4Addr::new(192, 0, 2, 85));
    f.wait_established(peer, Duration::from_secs(5));
    let mut burst: Vec<u8> = (0..1000).flat_map(update).collect();
    let cease = focl::wire::notify::Notification::cease(focl::wire::notify::CeaseSubcode::AdministrativeShutdown, None);
    burst.extend_from_slice(&cease.encode());
    s.send(&burst);
    drop(s); // and close
    let show = || f.request("peer_show", serde_json::json!({"peer": peer})).unwrap_or_default();
    assert!(wait_for(Duration::from_secs(10), || show()["state"] != "Established"), "{}", show());
    let d = show();
    assert_eq!(d["messages_received"]["update"], 1000, "{d}");
    assert_eq!(d["messages_received"]["notification"], 1, "{d}");
    assert_eq!(
        (d["last_error"]["direction"].as_str(), d["last_error"]["subcode"].as_u64()),
        (Some("received"), Some(2))
    );
    assert!(f.log_text().contains("reason: received NOTIFICATION Cease / Administrative Shutdown"), "{}", f.log_text());

    let r = f.focl(&["archive", "rotate"]).expect("rotate");
    let path = dir.path().join("archive").join(r["finished"].as_str().expect("a finished file"));
    let msgs: Vec<Vec<u8>> = mrt_records(&path)
        .iter()
        .filter_map(|r| bgp4mp_message(r.common_header.entry_subtype, &r.message_bytes))
        .map(|(_, m)| m)
        .collect();
    let count = |ty: MsgType| msgs.iter().filter(|m| m[18] == ty as u8).count();
    assert_eq!(count(MsgType::Update), 1000);
    assert_eq!(msgs.iter().filter(|m| **m == cease.encode()).count(), 1, "the NOTIFICATION, byte for byte");
}

/// RFC 4271 §6.8 with the archive on: focld has connected to us (OpenSent); our second
/// connection wins the collision. Its OPEN is in the archive, and the state changes of the
/// session carry the connection's real local address, also the one written as it closes.
#[test]
fn the_open_that_wins_a_collision_on_the_second_connection_is_archived() {
    use focl::wire::open::{Capabilities, OpenMsg};
    let dir = TempDir::new("mrt-coll");
    let port = free_port("127.0.0.1");
    let peer = "127.0.0.86";
    let raw_listener = std::net::TcpListener::bind((peer, 0)).unwrap();
    let raw_port = raw_listener.local_addr().unwrap().port();
    let cfg = config(dir.path(), port, peer, "ris", "gzip")
        .replace("passive = true", &format!("remote_port = {raw_port}\nconnect_retry_secs = 30"));
    let f = Focld::start(dir.path(), "f", &cfg);
    let (c1, _) = raw_listener.accept().unwrap();
    c1.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut first = RawSpeaker::from_stream(c1);
    assert_eq!(first.recv().map(|m| m.0), Some(MsgType::Open));
    let c2 = connect_from(peer, format!("127.0.0.1:{port}").parse().unwrap());
    c2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut second = RawSpeaker::from_stream(c2);
    assert_eq!(second.recv().map(|m| m.0), Some(MsgType::Open));
    let caps = Capabilities {
        families: vec![focl::prefix::Family::Ipv4Unicast],
        four_octet_as: Some(65010),
        ..Default::default()
    };
    let open = OpenMsg::new(65010, 90, Ipv4Addr::new(192, 0, 2, 200), caps).encode();
    second.send(&open);
    let (ty, m) = first.recv().expect("Cease on our first connection");
    assert_eq!((ty, m[19], m[20]), (MsgType::Notification, 6, 7));
    assert_eq!(second.recv().map(|m| m.0), Some(MsgType::Keepalive));
    second.send(&focl::wire::frame::keepalive());
    f.wait_established(peer, Duration::from_secs(5));
    drop(second);
    assert!(wait_for(Duration::from_secs(5), || f.peer_state(peer) != "Established"));

    let r = f.focl(&["archive", "rotate"]).expect("rotate");
    let path = dir.path().join("archive").join(r["finished"].as_str().expect("a finished file"));
    let records = mrt_records(&path);
    let opens: Vec<Vec<u8>> = records
        .iter()
        .filter_map(|r| bgp4mp_message(r.common_header.entry_subtype, &r.message_bytes))
        .map(|(_, m)| m)
        .filter(|m| m[18] == MsgType::Open as u8)
        .collect();
    assert_eq!(opens, vec![open], "the peer's OPEN on the winning connection");
    // STATE_CHANGE_AS4 (RFC 6396 §4.4.5): AS 4+4, ifindex, AFI, peer IP, local IP, old, new.
    let states: Vec<(Ipv4Addr, u8, u8)> = records
        .iter()
        .filter(|r| r.common_header.entry_subtype == 5)
        .map(|r| {
            let b = &r.message_bytes;
            (Ipv4Addr::new(b[16], b[17], b[18], b[19]), b[21], b[23])
        })
        .collect();
    let down = states.iter().find(|s| (s.1, s.2) == (6, 1)).expect("Established -> Idle archived");
    assert_eq!(down.0, Ipv4Addr::new(127, 0, 0, 1), "the real local address as the session closes: {states:?}");
    assert!(states.iter().filter(|s| s.1 >= 4).all(|s| !s.0.is_unspecified()), "{states:?}");
}

/// A 2-octet AS speaker (no RFC 6793 capability) sends AS_PATH [65010, AS_TRANS] with
/// AS4_PATH [4200000000]: `focl rib in` shows the real path, the update file keeps the message
/// as received (BGP4MP MESSAGE, 2-octet), the TABLE_DUMP_V2 snapshot carries the 4-octet path,
/// and bgpdump reads both.
#[test]
fn a_two_octet_as_peers_path_is_shown_and_archived_in_four_octet_form() {
    use focl::wire::open::{Capabilities, OpenMsg};
    let dir = TempDir::new("mrt-as2");
    let port = free_port("127.0.0.1");
    let peer = "127.0.0.87";
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, peer, "ris", "gzip"));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let caps = Capabilities { families: vec![focl::prefix::Family::Ipv4Unicast], ..Default::default() };
    let open = OpenMsg::new(65010, 90, Ipv4Addr::new(192, 0, 2, 87), caps);
    let mut s = RawSpeaker::establish_with(peer, remote, &open);
    f.wait_established(peer, Duration::from_secs(5));
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 2, 0xfd, 0xf2, 0x5b, 0xa0, 0x40, 3, 4, 127, 0, 0, 87];
    attrs.extend_from_slice(&[0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00]);
    let sent = update_msg(&[], &attrs, &[16, 10, 87]);
    s.send(&sent);
    assert!(wait_for(Duration::from_secs(5), || f.rib_in(peer).len() == 1));
    let shown = f.focl(&["rib", "in", peer]).expect("focl rib in");
    assert_eq!(shown["routes"][0]["as_path"], "65010 4200000000", "{shown}");
    assert_eq!(shown["routes"][0]["prefix"], "10.87.0.0/16");

    // The update file: the message as received, in a 2-octet BGP4MP MESSAGE record.
    let r = f.focl(&["archive", "rotate"]).expect("rotate");
    let path = dir.path().join("archive").join(r["finished"].as_str().expect("a finished file"));
    let raw: Vec<Vec<u8>> = mrt_records(&path)
        .iter()
        .filter(|r| r.common_header.entry_subtype == 1)
        .filter_map(|r| bgp4mp_message(1, &r.message_bytes))
        .map(|(_, m)| m)
        .filter(|m| m[18] == 2)
        .collect();
    assert_eq!(raw, vec![sent], "raw bytes stay raw");
    let dump = bgpdump(&path);
    assert!(dump.lines().any(|l| l.contains("|10.87.0.0/16|65010 4200000000|")), "{dump}");

    // The snapshot: TABLE_DUMP_V2 with the 4-octet path.
    f.focl(&["archive", "snapshot"]).expect("snapshot");
    assert!(wait_for(Duration::from_secs(10), || !archive_files(&dir.path().join("archive"), "bview").is_empty()));
    let rib = &archive_files(&dir.path().join("archive"), "bview")[0];
    let elems: Vec<bgpkit_parser::BgpElem> =
        bgpkit_parser::BgpkitParser::from_reader(open_mrt(rib)).into_elem_iter().collect();
    assert_eq!(elems.len(), 1);
    assert_eq!(elems[0].as_path.as_ref().map(|p| p.to_string()).as_deref(), Some("65010 4200000000"));
    let dump = bgpdump(rib);
    let line = dump.lines().find(|l| l.starts_with("TABLE_DUMP2|")).expect("a TABLE_DUMP2 line");
    assert!(line.contains("|10.87.0.0/16|65010 4200000000|"), "{line}");
}
