//! The MRT writer thread: every received BGP message and every state change as a BGP4MP
//! record in the current update file, rotated on wall-clock boundaries; RIB snapshots written
//! from chunks of TABLE_DUMP_V2 records that the RIB thread produces.
//!
//! Fed by: peer threads (`MrtMsg::Message`, `MrtMsg::StateChange`, through `MrtLink`, which
//! never blocks: a full channel drops the record and counts it), the RIB thread (snapshot
//! chunks) and the control thread (status, rotate). Emits: closed files to its finisher
//! thread (`finisher.rs`), which compresses them and announces them to replication; the writer
//! itself never compresses, so it keeps dequeuing records while a large file is finished.
//!
//! Naming rule: an update file is named for the interval, aligned to midnight UTC, that the
//! writer's clock was in when it opened the file, and holds the records the writer dequeued
//! while its clock was in that interval. A record's own timestamp (taken by the peer thread on
//! receipt) can precede its file's start by the time it waited in the channel, normally
//! microseconds; it never makes the writer reopen the previous interval. Every interval gets
//! its file while the archive is on, empty when nothing arrived.

use super::file::{self, ArchiveWriter, Compression, Kind, Layout};
use super::finisher::{self, Done, Finisher, Job};
use super::record;
use crate::config::ArchiveConfig;
use crate::control::proto::ArchiveStatus;
use crate::msg::{FileSink, MrtLink, MrtMsg, Reply, MRT_CHANNEL_CAPACITY};
use crate::utc::unix_secs;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{error, info};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How often the current file is flushed so a crash loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Owns the writer thread.
pub struct MrtHandle {
    pub link: MrtLink,
    join: Option<JoinHandle<()>>,
}

impl MrtHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(j) = self.join.take() {
            self.link.send_blocking(MrtMsg::Stop);
            let _ = j.join();
        }
    }
}

impl Drop for MrtHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Make the archive directory and salvage what a crash left; before `spawn`, and before
/// replication lists the archive. Runs on the calling (main) thread, before any record flows.
pub fn prepare(cfg: &ArchiveConfig) -> std::io::Result<()> {
    std::fs::create_dir_all(&cfg.dir).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create archive directory {}: {e}", cfg.dir.display()))
    })?;
    match file::salvage(&cfg.dir) {
        Ok(reports) => reports.iter().for_each(finisher::log_salvage),
        Err(e) => error!("archive: cannot finish what a crash left in {}: {e}", cfg.dir.display()),
    }
    Ok(())
}

/// Start the writer thread; each finished file is announced to `repl`.
pub fn spawn(cfg: ArchiveConfig, repl: Option<FileSink>) -> std::io::Result<MrtHandle> {
    let (tx, rx) = crossbeam_channel::bounded(MRT_CHANNEL_CAPACITY);
    let link = MrtLink::new(tx, cfg.record_keepalives);
    spawn_with(cfg, repl, &link, rx)
}

/// `spawn` on a channel made beforehand (so other threads can hold the link first).
pub fn spawn_with(
    cfg: ArchiveConfig,
    repl: Option<FileSink>,
    link: &MrtLink,
    rx: Receiver<MrtMsg>,
) -> std::io::Result<MrtHandle> {
    let (dropped, keepalives) = link.counters();
    let writer = Writer::new(cfg, dropped, repl, keepalives, SystemTime::now())?;
    let join = std::thread::Builder::new().name("mrt".into()).spawn(move || writer.run(rx))?;
    Ok(MrtHandle { link: link.clone(), join: Some(join) })
}

fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::RouteViews => "routeviews",
        Layout::Ris => "ris",
    }
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::Gzip => "gzip",
        Compression::Bzip2 => "bzip2",
        Compression::None => "none",
    }
}

struct Writer {
    cfg: ArchiveConfig,
    dropped: Arc<AtomicU64>,
    finisher: Finisher,
    current: Option<ArchiveWriter>,
    /// Start of the next interval due: the end of the one the current file is named for.
    rotate_at: SystemTime,
    /// After a file could not be created, when to try again (not once per record).
    retry_create_at: Option<SystemTime>,
    snapshot: Option<ArchiveWriter>,
    status: ArchiveStatus,
    scratch: Vec<u8>,
    repl: Option<FileSink>,
    keepalives: Arc<AtomicBool>,
}

impl Writer {
    /// A writer whose clock reads `now`: the update file of the interval holding `now` is
    /// opened at once (every interval has its file, records or not).
    fn new(
        cfg: ArchiveConfig,
        dropped: Arc<AtomicU64>,
        repl: Option<FileSink>,
        keepalives: Arc<AtomicBool>,
        now: SystemTime,
    ) -> std::io::Result<Writer> {
        let status = ArchiveStatus {
            enabled: true,
            dir: cfg.dir.display().to_string(),
            layout: layout_name(cfg.layout).into(),
            compression: compression_name(cfg.compression).into(),
            ..ArchiveStatus::default()
        };
        let rotate_at = file::next_boundary(now, cfg.updates_interval_secs);
        let mut w = Writer {
            cfg,
            dropped,
            finisher: Finisher::spawn()?,
            current: None,
            rotate_at,
            retry_create_at: None,
            snapshot: None,
            status,
            scratch: Vec::with_capacity(8192),
            repl,
            keepalives,
        };
        w.open_updates(file::interval_start(now, w.cfg.updates_interval_secs), now);
        Ok(w)
    }

    fn run(mut self, rx: Receiver<MrtMsg>) {
        info!("archive: writing MRT files under {}", self.cfg.dir.display());
        let mut last_flush = Instant::now();
        'outer: loop {
            let now = SystemTime::now();
            self.tick(now);
            let until_rotation = self.rotate_at.duration_since(now).unwrap_or_default();
            match rx.recv_timeout(until_rotation.min(FLUSH_EVERY)) {
                Ok(MrtMsg::Stop) => break,
                Ok(msg) => self.handle(msg, SystemTime::now()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Bursts are drained in one turn before the periodic flush; each record is placed
            // by the clock when it is dequeued.
            while let Ok(msg) = rx.try_recv() {
                if matches!(msg, MrtMsg::Stop) {
                    break 'outer;
                }
                self.handle(msg, SystemTime::now());
            }
            self.collect_finished();
            if last_flush.elapsed() >= FLUSH_EVERY {
                let failed = self
                    .current
                    .as_mut()
                    .and_then(|w| w.flush().err().map(|e| format!("cannot flush {}: {e}", w.relative().display())));
                if let Some(msg) = failed {
                    self.fail(msg);
                }
                last_flush = Instant::now();
            }
        }
        self.finish_all();
    }

    /// The clock reads `now`: past the end of the current interval, close its file and open
    /// one for each interval up to the one holding `now` (the skipped ones stay empty).
    fn tick(&mut self, now: SystemTime) {
        let iv = self.cfg.updates_interval_secs;
        let due = file::due_intervals(self.rotate_at, now, iv);
        let Some(&last) = due.last() else { return };
        for start in due {
            self.close_current(None);
            self.open_updates(start, now);
        }
        self.rotate_at = last + Duration::from_secs(iv.max(1));
        self.status.last_rotation = Some(unix_secs(now));
    }

    /// Stop the writer: close what is open, wait for the finisher to finish everything.
    fn finish_all(&mut self) {
        self.close_current(None);
        if let Some(w) = self.snapshot.take() {
            // A snapshot cut short by shutdown is still a consistent file of whole records.
            self.close_into_finisher(w, Kind::Rib, None);
        }
        for d in self.finisher.shutdown() {
            self.on_done(d);
        }
    }

    fn collect_finished(&mut self) {
        for d in self.finisher.done() {
            self.on_done(d);
        }
        self.finisher.pump();
    }

    fn on_done(&mut self, d: Done) {
        match d {
            Done::Finished { kind, manifest } => {
                self.status.files_finished += 1;
                if kind == Kind::Rib {
                    self.status.last_snapshot = Some(manifest.file);
                }
            }
            Done::Failed(e) => self.fail(e),
        }
    }

    fn fail(&mut self, msg: String) {
        error!("archive: {msg}");
        self.status.last_error = Some(msg);
    }

    /// Open the update file of the interval starting at `start`.
    fn open_updates(&mut self, start: SystemTime, now: SystemTime) {
        let rel = file::relative_path(self.cfg.layout, self.cfg.compression, Kind::Updates, start);
        match ArchiveWriter::create(&self.cfg.dir, &rel, self.cfg.compression) {
            Ok(w) => {
                self.current = Some(w);
                self.retry_create_at = None;
            }
            Err(e) => {
                self.fail(format!("cannot create {}: {e}", rel.display()));
                self.retry_create_at = Some(now + FLUSH_EVERY);
            }
        }
    }

    /// Hand the current update file to the finisher (answering `reply` once it is finished).
    fn close_current(&mut self, reply: Option<Reply<serde_json::Value>>) {
        match self.current.take() {
            Some(w) => self.close_into_finisher(w, Kind::Updates, reply),
            None => {
                if let Some(r) = reply {
                    let _ = r.send(Ok(serde_json::json!({ "finished": null })));
                }
            }
        }
    }

    fn close_into_finisher(&mut self, w: ArchiveWriter, kind: Kind, reply: Option<Reply<serde_json::Value>>) {
        let rel = w.relative().display().to_string();
        match w.close() {
            Ok(file) => self.finisher.submit(Job::Finish { file, kind, sink: self.repl.clone(), reply }),
            Err(e) => {
                // The temporary file stays; salvage finishes what reached it at the next start.
                self.fail(format!("cannot close {rel}: {e}"));
                if let Some(r) = reply {
                    let _ = r.send(Ok(serde_json::json!({ "finished": null })));
                }
            }
        }
    }

    fn handle(&mut self, msg: MrtMsg, now: SystemTime) {
        match msg {
            MrtMsg::Message { ts, as4, add_path, session, raw } => {
                self.scratch.clear();
                let kind = (as4, add_path);
                record::bgp4mp_message(ts, self.cfg.timestamp_precision, kind, &session, &raw, &mut self.scratch);
                self.append(now);
            }
            MrtMsg::StateChange { ts, session, from, to } => {
                self.scratch.clear();
                record::bgp4mp_state_change(ts, self.cfg.timestamp_precision, &session, from, to, &mut self.scratch);
                self.append(now);
            }
            MrtMsg::SnapshotBegin { start, vrps } => {
                if let Some(old) = self.snapshot.take() {
                    self.close_into_finisher(old, Kind::Rib, None);
                }
                let rel = file::relative_path(self.cfg.layout, self.cfg.compression, Kind::Rib, start);
                match ArchiveWriter::create(&self.cfg.dir, &rel, self.cfg.compression) {
                    Ok(w) => {
                        info!("archive: RIB snapshot {} started", w.relative().display());
                        if let Some(vrps) = vrps {
                            self.finisher.submit(Job::Vrps {
                                dir: self.cfg.dir.clone(),
                                rib: w.relative().to_path_buf(),
                                compression: self.cfg.compression,
                                vrps,
                                sink: self.repl.clone(),
                            });
                        }
                        self.snapshot = Some(w);
                    }
                    Err(e) => self.fail(format!("cannot create {}: {e}", rel.display())),
                }
            }
            MrtMsg::SnapshotChunk { records, count, .. } => {
                let Some(w) = self.snapshot.as_mut() else { return };
                // A chunk is a run of whole records (12-byte header + length each, RFC 6396 §2).
                let mut rest = records.as_slice();
                let mut result = Ok(());
                for _ in 0..count {
                    let Some(hdr) = rest.get(8..12) else { break };
                    let len = 12 + u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
                    let Some(rec) = rest.get(..len) else { break };
                    result = w.write_record(rec);
                    if result.is_err() {
                        break;
                    }
                    rest = &rest[len..];
                }
                if let Err(e) = result {
                    let rel = w.relative().display().to_string();
                    self.snapshot = None;
                    self.fail(format!("cannot write snapshot {rel}: {e}"));
                }
            }
            MrtMsg::SnapshotEnd => {
                if let Some(w) = self.snapshot.take() {
                    self.close_into_finisher(w, Kind::Rib, None);
                }
            }
            MrtMsg::Rotate(reply) => {
                // The rest of the interval goes to a file of the same name with "-1" (or the
                // next free number); the reply comes from the finisher once the file is done.
                self.close_current(Some(reply));
                self.open_updates(file::interval_start(now, self.cfg.updates_interval_secs), now);
                self.status.last_rotation = Some(unix_secs(now));
            }
            MrtMsg::Reconfigure(cfg, repl) => self.reconfigure(*cfg, repl, now),
            MrtMsg::Status(reply) => {
                let mut s = self.status.clone();
                s.current_file = self.current.as_ref().map(|w| w.relative().display().to_string());
                s.current_records = self.current.as_ref().map(|w| w.records()).unwrap_or(0);
                s.dropped = self.dropped.load(Ordering::Relaxed);
                s.next_rotation = Some(unix_secs(self.rotate_at));
                // The RIB takes snapshots on the same midnight-aligned clock.
                s.next_snapshot = (self.cfg.rib_interval_secs > 0)
                    .then(|| unix_secs(file::next_boundary(now, self.cfg.rib_interval_secs)));
                let _ = reply.send(s);
            }
            MrtMsg::Stop => {}
            MrtMsg::Graceful(ev) => {
                if let Some(w) = self.current.as_mut() {
                    w.tally_mut().graceful.push(ev);
                }
            }
            MrtMsg::SnapshotStale(stale) => {
                if let Some(w) = self.snapshot.as_mut() {
                    w.tally_mut().stale = stale;
                }
            }
        }
    }

    /// Reload: the current file is finished with the old settings; the next one, opened at
    /// once for the rest of the interval, has the new ones. A new directory is salvaged by the
    /// finisher (its leftovers are listed before anything is written there).
    fn reconfigure(&mut self, cfg: ArchiveConfig, repl: Option<FileSink>, now: SystemTime) {
        // The main thread has stopped the old replication threads: in the same directory the
        // file finished now goes to the new ones.
        if cfg.dir == self.cfg.dir {
            self.repl.clone_from(&repl);
        }
        self.close_current(None);
        self.repl = repl;
        if cfg.dir != self.cfg.dir {
            if let Err(e) = std::fs::create_dir_all(&cfg.dir) {
                self.fail(format!(
                    "cannot use the new archive directory {}: {e}; keeping {}",
                    cfg.dir.display(),
                    self.cfg.dir.display()
                ));
                self.open_updates(file::interval_start(now, self.cfg.updates_interval_secs), now);
                return;
            }
            let found = file::leftovers(&cfg.dir);
            if !found.is_empty() {
                self.finisher.submit(Job::Salvage { dir: cfg.dir.clone(), found, sink: self.repl.clone() });
            }
        }
        self.keepalives.store(cfg.record_keepalives, Ordering::Relaxed);
        self.status.dir = cfg.dir.display().to_string();
        self.status.layout = layout_name(cfg.layout).into();
        self.status.compression = compression_name(cfg.compression).into();
        self.rotate_at = file::next_boundary(now, cfg.updates_interval_secs);
        self.cfg = cfg;
        self.open_updates(file::interval_start(now, self.cfg.updates_interval_secs), now);
        info!("archive: new settings apply from the next file");
    }

    /// Write the record in `scratch` to the open update file: the file of the interval the
    /// writer's clock is in when it dequeues the record (`now`), whatever the record's own
    /// timestamp, so a record queued just before a boundary never reopens the previous interval.
    fn append(&mut self, now: SystemTime) {
        self.tick(now);
        if self.current.is_none() && self.retry_create_at.is_none_or(|t| now >= t) {
            self.open_updates(file::interval_start(now, self.cfg.updates_interval_secs), now);
        }
        let Some(w) = self.current.as_mut() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match w.write_record(&self.scratch) {
            Ok(()) => {
                self.status.records_written += 1;
                self.status.bytes_written += self.scratch.len() as u64;
            }
            Err(e) => {
                let rel = w.relative().display().to_string();
                self.fail(format!("cannot write {rel}: {e}"));
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest;
    use crate::msg::SessionAddrs;
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::time::UNIX_EPOCH;

    /// 2026-11-24 00:00:00 UTC plus `secs`.
    fn t(secs: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_478_400) + Duration::from_secs_f64(secs)
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let p = std::env::temp_dir().join(format!("focl-writer-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn writer(dir: &Path, now: SystemTime) -> Writer {
        let cfg = ArchiveConfig {
            enabled: true,
            dir: dir.to_path_buf(),
            layout: Layout::Ris,
            compression: Compression::Gzip,
            updates_interval_secs: 900,
            ..ArchiveConfig::default()
        };
        Writer::new(cfg, Arc::default(), None, Arc::default(), now).unwrap()
    }

    fn message(ts: SystemTime, n: u32) -> MrtMsg {
        let peer_ip = "192.0.2.7".parse().unwrap();
        let session = SessionAddrs { peer_as: 65010, local_as: 65001, peer_ip, local_ip: peer_ip };
        let mut raw = vec![0xff; 16];
        raw.extend_from_slice(&[0, 23, 2, 0, 0, 0, 0]);
        raw.extend_from_slice(&n.to_be_bytes());
        MrtMsg::Message { ts, as4: true, add_path: false, session, raw: raw.into() }
    }

    /// The finished files below `dir` (relative), and every manifest checked against its file.
    fn finished(dir: &Path) -> Vec<(String, manifest::Manifest)> {
        manifest::finished_files(dir)
            .into_iter()
            .map(|rel| {
                let m = manifest::read(dir, &rel).unwrap();
                assert_eq!(m.size, std::fs::metadata(dir.join(&rel)).unwrap().len());
                (rel, m)
            })
            .collect()
    }

    /// The numbers carried by the test messages of a finished gzip file, in order.
    fn numbers(path: &Path) -> Vec<u32> {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut plain).unwrap();
        let mut out = Vec::new();
        let mut at = 0;
        while at + 12 <= plain.len() {
            let len = 12 + u32::from_be_bytes([plain[at + 8], plain[at + 9], plain[at + 10], plain[at + 11]]) as usize;
            let rec = &plain[at..at + len];
            out.push(u32::from_be_bytes([rec[len - 4], rec[len - 3], rec[len - 2], rec[len - 1]]));
            at += len;
        }
        out
    }

    #[test]
    fn records_stamped_before_a_boundary_and_dequeued_after_it_go_to_the_new_interval_file() {
        let dir = temp_dir("boundary");
        // 09:59:50, interval 900 s: the file of 09:45 is open.
        let mut w = writer(&dir, t(35_990.0));
        let mut n = 0;
        for i in 0..3000 {
            let now = t(35_990.0 + f64::from(i) * 0.003);
            w.handle(message(now, n), now);
            n += 1;
        }
        // Under load: 3000 records stamped in the last 0.1 s of 09:59, dequeued after 10:00.
        for i in 0..3000 {
            let stamped = t(35_999.9 + f64::from(i) * 0.00003);
            w.handle(message(stamped, n), t(36_000.0 + f64::from(i) * 0.0001));
            n += 1;
        }
        for i in 0..3000 {
            let now = t(36_001.0 + f64::from(i) * 0.001);
            w.handle(message(now, n), now);
            n += 1;
        }
        w.finish_all();
        let files = finished(&dir);
        let names: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["2026.11/updates.20261124.0945.gz", "2026.11/updates.20261124.1000.gz"]);
        assert_eq!(numbers(&dir.join(names[0])), (0..3000).collect::<Vec<_>>());
        assert_eq!(numbers(&dir.join(names[1])), (3000..9000).collect::<Vec<_>>());
        assert_eq!((files[0].1.records, files[1].1.records), (3000, 6000));
        // The late records keep their own timestamps (09:59:59), in the 10:00 file.
        assert_eq!(files[1].1.first_timestamp, Some(35_999 + 1_795_478_400));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_interval_gets_its_file_also_when_no_record_arrived() {
        let dir = temp_dir("empty-intervals");
        let mut w = writer(&dir, t(35_400.0)); // 09:50
        w.handle(message(t(35_401.0), 1), t(35_401.0));
        // Nothing from 09:50:01 until 10:31: the 10:00 and 10:15 files are empty.
        w.tick(t(37_860.0));
        w.finish_all();
        let files = finished(&dir);
        let got: Vec<(&str, u64)> = files.iter().map(|(f, m)| (f.as_str(), m.records)).collect();
        assert_eq!(
            got,
            [
                ("2026.11/updates.20261124.0945.gz", 1),
                ("2026.11/updates.20261124.1000.gz", 0),
                ("2026.11/updates.20261124.1015.gz", 0),
                ("2026.11/updates.20261124.1030.gz", 0),
            ]
        );
        for (f, _) in &files[1..] {
            assert!(numbers(&dir.join(f)).is_empty());
            let ok = std::process::Command::new("gzip").arg("-t").arg(dir.join(f)).status().map(|s| s.success());
            assert!(ok.unwrap_or(true), "gzip -t {f}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn status_names_the_next_snapshot_on_the_rib_clock() {
        let dir = temp_dir("status");
        let mut w = writer(&dir, t(35_400.0));
        w.cfg.rib_interval_secs = 7200;
        let (tx, rx) = crossbeam_channel::bounded(1);
        w.handle(MrtMsg::Status(tx), t(35_400.0));
        let s = rx.recv().unwrap();
        assert_eq!(s.next_snapshot, Some(unix_secs(t(36_000.0))), "10:00 is the next 2-hour boundary");
        assert_eq!(s.next_rotation, Some(unix_secs(t(36_000.0))));
        w.cfg.rib_interval_secs = 0;
        let (tx, rx) = crossbeam_channel::bounded(1);
        w.handle(MrtMsg::Status(tx), t(35_400.0));
        assert_eq!(rx.recv().unwrap().next_snapshot, None, "no snapshots configured");
        w.finish_all();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_snapshot_manifest_lists_the_peers_with_routes_in_it() {
        use crate::mrt::record::{peer_index_table, rib_entry_record, PeerEntry, RibEntry};
        let dir = temp_dir("snapshot-peers");
        let mut w = writer(&dir, t(35_400.0));
        let peer =
            |ip: &str| PeerEntry { bgp_id: std::net::Ipv4Addr::new(192, 0, 2, 1), ip: ip.parse().unwrap(), asn: 65010 };
        let mut index = Vec::new();
        peer_index_table(
            5,
            std::net::Ipv4Addr::new(192, 0, 2, 1),
            "focld",
            &[peer("192.0.2.7"), peer("2001:db8::7"), peer("192.0.2.9")],
            &mut index,
        );
        let attrs = [0x40, 1, 1, 0];
        let mut ribs = Vec::new();
        for (i, p) in ["10.0.0.0/24", "10.0.1.0/24"].iter().enumerate() {
            let e = [RibEntry { peer_index: if i == 0 { 0 } else { 1 }, originated: 1, path_id: None, attrs: &attrs }];
            rib_entry_record(5, i as u32, &p.parse().unwrap(), &e, &mut ribs);
        }
        w.handle(MrtMsg::SnapshotBegin { start: t(36_000.0), vrps: None }, t(36_000.0));
        w.handle(MrtMsg::SnapshotChunk { records: index, count: 1, timestamp: 5 }, t(36_000.0));
        w.handle(MrtMsg::SnapshotChunk { records: ribs, count: 2, timestamp: 5 }, t(36_000.0));
        w.handle(MrtMsg::SnapshotEnd, t(36_000.0));
        w.finish_all();
        let (_, m) = finished(&dir).into_iter().find(|(f, _)| f.contains("bview.")).expect("the snapshot");
        assert_eq!(m.records, 3);
        assert_eq!(m.peers, ["192.0.2.7", "2001:db8::7"], "192.0.2.9 has no route in the snapshot");
        assert_eq!(w.status.last_snapshot.as_deref(), Some("2026.11/bview.20261124.1000.gz"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotating_a_large_file_drops_no_record_while_records_keep_arriving() {
        let dir = temp_dir("large");
        let cfg = ArchiveConfig {
            enabled: true,
            dir: dir.clone(),
            layout: Layout::RouteViews,
            compression: Compression::Bzip2,
            ..ArchiveConfig::default()
        };
        let h = spawn(cfg, None).unwrap();
        // 12 MB of incompressible 4 KB messages (bzip2 at its best level takes seconds on them).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut sent = 0u64;
        for _ in 0..3_000 {
            assert!(h.link.send_blocking(big_message(&mut x, SystemTime::now())));
            sent += 1;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let asked = Instant::now();
        assert!(h.link.send_blocking(MrtMsg::Rotate(tx)));
        // Records keep arriving at 20,000 a second, through the link that drops when full
        // (65,536 queued: a writer stalled for more than about 3 s would drop).
        let mut reply = None;
        let deadline = asked + Duration::from_secs(120);
        let mut next = Instant::now();
        while Instant::now() < deadline {
            for _ in 0..200 {
                h.link.send(message(SystemTime::now(), 1));
                sent += 1;
            }
            next += Duration::from_millis(10);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            if reply.is_none() {
                reply = rx.try_recv().ok().map(|r| (r, asked.elapsed()));
            }
            if reply.as_ref().is_some_and(|(_, took)| asked.elapsed() > *took + Duration::from_secs(1)) {
                break;
            }
        }
        let (reply, took) = reply.expect("the rotation finished within 2 minutes");
        let finished = reply.unwrap()["finished"].as_str().map(String::from).expect("a finished file");
        let (tx, rx) = crossbeam_channel::bounded(1);
        assert!(h.link.send_blocking(MrtMsg::Status(tx)));
        let status = rx.recv().unwrap();
        h.stop();
        assert_eq!(status.dropped, 0, "no record dropped while {finished} was compressed for {took:?}");
        let total: u64 = finished_files_records(&dir);
        assert_eq!(total, sent, "every record is in a finished file");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn finished_files_records(dir: &Path) -> u64 {
        finished(dir).iter().map(|(_, m)| m.records).sum()
    }

    /// A 4 KB message of xorshift noise (what bzip2 is slowest on), received at `ts`.
    fn big_message(x: &mut u64, ts: SystemTime) -> MrtMsg {
        let mut raw = vec![0xff; 16];
        raw.extend_from_slice(&[0x10, 0, 2]);
        while raw.len() < 4096 {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            raw.extend_from_slice(&x.to_be_bytes());
        }
        let MrtMsg::Message { as4, session, .. } = message(ts, 0) else { unreachable!() };
        MrtMsg::Message { ts, as4, add_path: false, session, raw: raw.into() }
    }

    /// `n` incompressible 4 KB messages into the writer, at `now`.
    fn fill(w: &mut Writer, n: usize, now: SystemTime) {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..n {
            w.handle(big_message(&mut x, now), now);
        }
    }

    #[test]
    fn rotation_rotate_and_reload_hand_compression_to_the_finisher() {
        let dir = temp_dir("off-writer");
        let mut w = writer(&dir, t(35_400.0));
        w.cfg.compression = Compression::Bzip2;
        let new_cfg = w.cfg.clone();
        w.handle(MrtMsg::Reconfigure(Box::new(new_cfg.clone()), None), t(35_400.0));
        // Each way a file is finished while focld runs, with 4 MB in it.
        let mut on_writer = Vec::new();
        fill(&mut w, 1000, t(35_401.0));
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let started = Instant::now();
        w.handle(MrtMsg::Rotate(tx), t(35_402.0));
        on_writer.push(("rotate", started.elapsed()));
        fill(&mut w, 1000, t(35_403.0));
        let started = Instant::now();
        w.handle(MrtMsg::Reconfigure(Box::new(new_cfg), None), t(35_404.0));
        on_writer.push(("reload", started.elapsed()));
        fill(&mut w, 1000, t(35_405.0));
        let started = Instant::now();
        w.tick(t(36_000.0));
        on_writer.push(("rotation", started.elapsed()));
        let started = Instant::now();
        w.finish_all();
        let finishing = started.elapsed();
        let big: Vec<u64> = finished(&dir).iter().map(|(_, m)| m.records).filter(|r| *r > 0).collect();
        assert_eq!(big, [1000, 1000, 1000]);
        for (how, took) in on_writer {
            assert!(took * 6 < finishing, "{how} kept the writer {took:?}; finishing the three took {finishing:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
