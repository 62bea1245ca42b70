//! Replication of finished archive files to S3 and to a local directory, against a real
//! S3-compatible server (moto's server mode, from PyPI: `moto[server]`) that each test starts
//! on 127.0.0.1: keys mirror the archive layout, bytes are identical (SHA-256), large files go
//! multipart, and outages of the server, of the directory and of focld itself lose nothing.

mod common;

use common::*;
use s3::creds::Credentials;
use s3::{Bucket, BucketConfiguration, Region};
use sha2::{Digest, Sha256};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BUCKET: &str = "focl-archive";

/// moto's S3 server on 127.0.0.1; killed on drop. Its data lives in memory.
struct Moto {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Moto {
    fn start(dir: &Path) -> Moto {
        let mut m = Moto { child: None, port: free_port("127.0.0.1"), log: dir.join("moto.log") };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("moto log");
        // `python3 -m moto.server` rather than the `moto_server` script: no PATH to get right.
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 runs");
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let up =
            wait_for(Duration::from_secs(30), || TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok());
        assert!(up, "moto_server did not listen on {addr}");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The test's bucket (created if the server lost it).
    fn bucket(&self) -> Box<Bucket> {
        // Not us-east-1: rust-s3 sends a LocationConstraint, which S3 refuses for us-east-1.
        let region = Region::Custom { region: "eu-west-1".into(), endpoint: self.endpoint() };
        let creds = Credentials::new(Some("focl-test"), Some("focl-secret"), None, None, None).expect("credentials");
        let bucket = Bucket::new(BUCKET, region.clone(), creds.clone()).expect("bucket").with_path_style();
        if !bucket.exists().unwrap_or(false) {
            Bucket::create_with_path_style(BUCKET, region, creds, BucketConfiguration::default())
                .expect("create the test bucket");
        }
        bucket
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn config(dir: &Path, port: u16, compression: &str, destinations: &str) -> String {
    format!(
        r#"
[global]
asn = 65001
router_id = "192.0.2.1"
listen_addr = "127.0.0.1:{port}"
control_socket = "{d}/f.sock"
log_level = "debug"

[[peers]]
address = "127.0.0.41"
remote_as = 65010
passive = true

[archive]
enabled = true
dir = "{d}/archive"
layout = "routeviews"
compression = "{compression}"
# No clock-driven files during a test (only at midnight UTC): the tests count files.
updates_interval_secs = 86400
rib_interval_secs = 0
{destinations}
"#,
        d = dir.display()
    )
}

fn s3_destination(moto: &Moto, prefix: &str) -> String {
    format!(
        "\n[[archive.destinations]]\ntype = \"s3\"\nbucket = \"{BUCKET}\"\nprefix = \"{prefix}\"\nregion = \"eu-west-1\"\nendpoint = \"{}\"\npath_style = true\n",
        moto.endpoint()
    )
}

const AWS_ENV: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", "focl-test"), ("AWS_SECRET_ACCESS_KEY", "focl-secret")];

/// An UPDATE of about 4000 bytes: 10 /24s and a large optional transitive attribute (type 99,
/// kept as received), so a few thousand of them make a file above the multipart threshold.
fn big_update(i: u32) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0];
    attrs.extend_from_slice(&[0x40, 2, 6, 2, 1, 0, 0, 0xfe, 0x02]);
    attrs.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 41]);
    let blob: Vec<u8> = (0..3900u32).map(|k| (k.wrapping_mul(31) ^ i) as u8).collect();
    attrs.extend_from_slice(&[0xd0, 99]);
    attrs.extend_from_slice(&(blob.len() as u16).to_be_bytes());
    attrs.extend_from_slice(&blob);
    let mut nlri = Vec::new();
    for k in 0..10u32 {
        nlri.extend_from_slice(&[24, 10, (k >> 8) as u8, k as u8]);
    }
    update_msg(&[], &attrs, &nlri)
}

/// A small UPDATE announcing 10.1.i.0/24.
fn small_update(i: u32) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0];
    attrs.extend_from_slice(&[0x40, 2, 6, 2, 1, 0, 0, 0xfe, 0x02]);
    attrs.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 41]);
    update_msg(&[], &attrs, &[24, 10, 1, i as u8])
}

/// Finished files (relative paths) of the archive, manifests excluded.
fn finished(archive: &Path) -> Vec<String> {
    focl::archive::finished_files(archive)
}

fn destinations(f: &Focld) -> Vec<serde_json::Value> {
    f.query("archive_status").ok().and_then(|v| v["destinations"].as_array().cloned()).unwrap_or_default()
}

/// Wait until every destination has nothing pending and has delivered at least `n` files.
fn wait_delivered(f: &Focld, n: u64, within: Duration) {
    let ok = wait_for(within, || {
        let d = destinations(f);
        !d.is_empty() && d.iter().all(|d| d["pending_files"] == 0 && d["delivered_files"].as_u64().unwrap_or(0) >= n)
    });
    assert!(ok, "replication did not finish: {:?}\nlog:\n{}", destinations(f), f.log_text());
}

/// One received message and a rotation: one more finished update file.
fn one_file(f: &Focld, speaker: &mut RawSpeaker, i: u32) -> String {
    speaker.send(&small_update(i));
    let ok = wait_for(Duration::from_secs(10), || {
        f.query("archive_status").map(|s| s["current_records"].as_u64().unwrap_or(0) > 0).unwrap_or(false)
    });
    assert!(ok, "the UPDATE was not archived");
    let r = f.focl(&["archive", "rotate"]).expect("focl archive rotate");
    // Files rotated within the same minute are named "-1", "-2", ...
    r["finished"].as_str().expect("a file was finished").to_string()
}

fn assert_same_in_s3(bucket: &Bucket, prefix: &str, archive: &Path, rel: &str) {
    for name in [rel.to_string(), format!("{rel}.json")] {
        let local = std::fs::read(archive.join(&name)).expect("local file");
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let obj = bucket.get_object(&key).unwrap_or_else(|e| panic!("object {key} is in the bucket: {e}"));
        assert_eq!(sha256(obj.bytes()), sha256(&local), "object {key} has the local file's bytes");
    }
}

#[test]
fn s3_and_local_destinations_get_every_file_byte_identical_with_multipart_for_large_ones() {
    let dir = TempDir::new("repl-s3");
    let moto = Moto::start(dir.path());
    let bucket = moto.bucket();
    let mirror = dir.path().join("mirror");
    let port = free_port("127.0.0.1");
    // This destination takes its keys from a credentials file (the outage test uses the
    // AWS environment variables).
    let creds = dir.path().join("s3-credentials");
    std::fs::write(&creds, "[archive]\naws_access_key_id = focl-test\naws_secret_access_key = focl-secret\n")
        .expect("credentials file");
    let dests = format!(
        "{}credentials_file = \"{}\"\nprofile = \"archive\"\n\n[[archive.destinations]]\ntype = \"local\"\npath = \"{}\"\n",
        s3_destination(&moto, "collectors/test-1"),
        creds.display(),
        mirror.display()
    );
    let f = Focld::start(dir.path(), "f", &config(dir.path(), port, "none", &dests));
    let mut speaker = RawSpeaker::establish(
        "127.0.0.41",
        SocketAddr::from(([127, 0, 0, 1], port)),
        65010,
        Ipv4Addr::new(10, 0, 0, 41),
    );
    f.wait_established("127.0.0.41", Duration::from_secs(10));
    let archive = dir.path().join("archive");

    // A small update file and a RIB snapshot.
    one_file(&f, &mut speaker, 1);
    f.focl(&["archive", "snapshot"]).expect("focl archive snapshot");
    wait_delivered(&f, 2, Duration::from_secs(30));

    // An update file above the 8 MiB multipart threshold.
    for i in 0..2400 {
        speaker.send(&big_update(i));
    }
    let ok = wait_for(Duration::from_secs(60), || {
        f.query("archive_status").map(|s| s["current_records"].as_u64().unwrap_or(0) >= 2400).unwrap_or(false)
    });
    assert!(ok, "the large UPDATE stream was not archived: {:?}", f.query("archive_status"));
    let big = f.focl(&["archive", "rotate"]).expect("rotate")["finished"].as_str().expect("finished").to_string();
    let big_size = std::fs::metadata(archive.join(&big)).expect("big file").len();
    assert!(big_size > focl::archive::PART_SIZE as u64, "{big} has {big_size} bytes, above the threshold");
    wait_delivered(&f, 3, Duration::from_secs(60));

    let files = finished(&archive);
    assert_eq!(files.len(), 3, "two update files and a RIB: {files:?}");
    assert!(files.iter().any(|f| f.contains("/RIBS/rib.")), "{files:?}");
    for rel in &files {
        assert_same_in_s3(&bucket, "collectors/test-1", &archive, rel);
        for name in [rel.clone(), format!("{rel}.json")] {
            let a = std::fs::read(archive.join(&name)).expect("archive file");
            let b = std::fs::read(mirror.join(&name)).unwrap_or_else(|e| panic!("{name} in the local mirror: {e}"));
            assert_eq!(sha256(&a), sha256(&b), "local copy of {name}");
        }
    }
    // The key mirrors the archive layout: YYYY.MM/UPDATES/updates.YYYYMMDD.HHMM(-N)
    let keys: Vec<String> = bucket
        .list("collectors/test-1/".into(), None)
        .expect("list")
        .iter()
        .flat_map(|page| page.contents.iter().map(|o| o.key.clone()))
        .collect();
    assert_eq!(keys.len(), 6, "3 files and 3 manifests: {keys:?}");
    for k in &keys {
        let rel = k.strip_prefix("collectors/test-1/").expect("prefix");
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 3, "{k}");
        assert!(parts[0].len() == 7 && parts[0].as_bytes()[4] == b'.', "{k}");
        assert!(["UPDATES", "RIBS"].contains(&parts[1]), "{k}");
    }
    // Uploaded in parts: S3's ETag of a multipart object ends in "-<parts>".
    let (head, _) = bucket.head_object(format!("collectors/test-1/{big}")).expect("HEAD");
    let etag = head.e_tag.unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-2"), "multipart ETag with 2 parts, got {etag}");
    // Nothing was delivered twice and the status says so.
    for d in destinations(&f) {
        assert_eq!(d["delivered_files"], 3, "{d}");
        assert!(d["last_error"].is_null(), "{d}");
    }
    let text = std::process::Command::new(focl_bin())
        .args(["-s", &f.socket.display().to_string(), "archive", "status"])
        .output()
        .expect("focl archive status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Destination s3://focl-archive/collectors/test-1"), "{text}");
    assert!(text.contains("Pending: 0 files, 0 bytes; delivered since start: 3"), "{text}");
}

#[test]
fn s3_outage_across_a_restart_loses_nothing() {
    let dir = TempDir::new("repl-outage");
    let mut moto = Moto::start(dir.path());
    moto.bucket();
    let port = free_port("127.0.0.1");
    let cfg = config(dir.path(), port, "bzip2", &s3_destination(&moto, ""));
    let mut f = Focld::start_with_env(dir.path(), "f", &cfg, &AWS_ENV);
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut speaker = RawSpeaker::establish("127.0.0.41", target, 65010, Ipv4Addr::new(10, 0, 0, 41));
    f.wait_established("127.0.0.41", Duration::from_secs(10));

    moto.stop();
    let mut files = Vec::new();
    for i in 0..3 {
        files.push(one_file(&f, &mut speaker, i));
    }
    let failing = wait_for(Duration::from_secs(20), || {
        destinations(&f).first().is_some_and(|d| d["pending_files"] == 3 && !d["last_error"].is_null())
    });
    assert!(failing, "three files pending with an error while S3 is down: {:?}", destinations(&f));
    let log = f.log_text();
    let complaints = log.lines().filter(|l| l.contains("will retry with back-off")).count();
    assert_eq!(complaints, 1, "the failure is logged once, not per retry:\n{log}");

    // Restart focld while the server is still down: the files are still pending.
    assert_eq!(f.terminate(), Some(0), "clean exit; log:\n{}", f.log_text());
    drop(speaker);
    f.spawn();
    // Pending again: the three, and the file finished at shutdown (the session's last records).
    let pending =
        wait_for(Duration::from_secs(10), || destinations(&f).first().is_some_and(|d| d["pending_files"] == 4));
    assert!(pending, "after the restart the files are pending again: {:?}", destinations(&f));

    // The server comes back (empty: moto keeps nothing); the back-off brings the files there.
    moto.spawn();
    let bucket = moto.bucket();
    let delivered = wait_for(Duration::from_secs(90), || {
        destinations(&f).first().is_some_and(|d| d["pending_files"] == 0 && d["delivered_files"] == 4)
    });
    assert!(delivered, "all delivered after the outage: {:?}\n{}", destinations(&f), f.log_text());
    let archive = dir.path().join("archive");
    let all = finished(&archive);
    assert!(files.iter().all(|f| all.contains(f)), "{files:?} {all:?}");
    for rel in &all {
        assert_same_in_s3(&bucket, "", &archive, rel);
    }
    assert!(f.log_text().contains("delivering again after"), "recovery is logged");
}

/// Block the directory: mode 0555 stops an ordinary user; root ignores modes, so as root
/// a regular file takes the directory's place (creating anything below it fails even for root).
fn block(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("mirror dir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let probe = dir.join(".probe");
    if std::fs::write(&probe, b"x").is_ok() {
        let _ = std::fs::remove_file(&probe);
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::remove_dir_all(dir).expect("remove mirror");
        std::fs::write(dir, b"not a directory").expect("block with a file");
    }
}

fn unblock(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_file() {
        std::fs::remove_file(dir).expect("unblock");
        std::fs::create_dir_all(dir).expect("mirror dir");
    } else {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

#[test]
fn local_destination_unwritable_across_a_restart_loses_nothing() {
    let dir = TempDir::new("repl-local");
    let mirror = dir.path().join("mirror");
    let port = free_port("127.0.0.1");
    let dest = format!("\n[[archive.destinations]]\ntype = \"local\"\npath = \"{}\"\n", mirror.display());
    let mut f = Focld::start(dir.path(), "f", &config(dir.path(), port, "gzip", &dest));
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut speaker = RawSpeaker::establish("127.0.0.41", target, 65010, Ipv4Addr::new(10, 0, 0, 41));
    f.wait_established("127.0.0.41", Duration::from_secs(10));

    block(&mirror);
    let files: Vec<String> = (0..3).map(|i| one_file(&f, &mut speaker, i)).collect();
    let failing = wait_for(Duration::from_secs(20), || {
        destinations(&f).first().is_some_and(|d| d["pending_files"] == 3 && !d["last_error"].is_null())
    });
    assert!(failing, "three files pending while the directory is unwritable: {:?}", destinations(&f));

    assert_eq!(f.terminate(), Some(0));
    drop(speaker);
    f.spawn();
    unblock(&mirror);
    // `focl archive retry` skips the back-off.
    let r = f.focl(&["archive", "retry"]).expect("focl archive retry");
    assert_eq!(r["destinations"], 1);
    // The three files, and the one finished at shutdown (the session's last state changes).
    let archive = dir.path().join("archive");
    let all = finished(&archive);
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(files.iter().all(|f| all.contains(f)), "{files:?} {all:?}");
    let delivered = wait_for(Duration::from_secs(30), || {
        destinations(&f).first().is_some_and(|d| d["pending_files"] == 0 && d["delivered_files"] == 4)
    });
    assert!(delivered, "all four copied: {:?}\n{}", destinations(&f), f.log_text());
    for rel in &all {
        for name in [rel.clone(), format!("{rel}.json")] {
            let a = std::fs::read(archive.join(&name)).expect("archive file");
            let b = std::fs::read(mirror.join(&name)).expect("mirror file");
            assert_eq!(sha256(&a), sha256(&b), "{name}");
        }
    }
    // The mirror holds the three files and their manifests, no temporary files.
    let mut names = Vec::new();
    let mut stack = vec![mirror.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read mirror").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                names.push(e.file_name().to_string_lossy().to_string());
            }
        }
    }
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn retention_deletes_old_files_only_once_every_destination_has_them() {
    let dir = TempDir::new("repl-retain");
    let mirror = dir.path().join("mirror");
    let port = free_port("127.0.0.1");
    let dest = format!(
        "retain_local_days = 2\n\n[[archive.destinations]]\ntype = \"local\"\npath = \"{}\"\n",
        mirror.display()
    );
    let mut f = Focld::start(dir.path(), "f", &config(dir.path(), port, "gzip", &dest));
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut speaker = RawSpeaker::establish("127.0.0.41", target, 65010, Ipv4Addr::new(10, 0, 0, 41));
    f.wait_established("127.0.0.41", Duration::from_secs(10));
    let old_delivered = one_file(&f, &mut speaker, 1);
    let young_delivered = one_file(&f, &mut speaker, 2);
    wait_delivered(&f, 2, Duration::from_secs(20));
    block(&mirror);
    let old_undelivered = one_file(&f, &mut speaker, 3);
    let failing = wait_for(Duration::from_secs(20), || {
        destinations(&f).first().is_some_and(|d| d["pending_files"] == 1 && !d["last_error"].is_null())
    });
    assert!(failing, "{:?}", destinations(&f));
    assert_eq!(f.terminate(), Some(0));
    drop(speaker);

    // Three days old (the retention is two): one delivered file and the undelivered one.
    let archive = dir.path().join("archive");
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    for rel in [&old_delivered, &old_undelivered] {
        let file = std::fs::File::options().write(true).open(archive.join(rel)).expect("open");
        file.set_modified(old).expect("set mtime");
    }
    f.spawn();
    // Retention runs at start, every 10 minutes and on `focl archive retry`.
    let removed = wait_for(Duration::from_secs(20), || {
        let _ = f.focl(&["archive", "retry"]);
        !archive.join(&old_delivered).exists() && !archive.join(format!("{old_delivered}.json")).exists()
    });
    assert!(removed, "the old, delivered file is removed; log:\n{}", f.log_text());
    assert!(!archive.join(format!("{old_delivered}.json")).exists(), "with its manifest");
    assert!(archive.join(&old_undelivered).exists(), "an old file not yet replicated is kept");
    assert!(archive.join(&young_delivered).exists(), "a young file is kept");
    // The line is logged just after the files go: give it a moment to reach the log.
    let logged = wait_for(Duration::from_secs(5), || f.log_text().contains(&format!("removed {old_delivered}")));
    assert!(logged, "the removal is logged");
}
