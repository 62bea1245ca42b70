//! The MRT writer thread: every received BGP message and every state change as a BGP4MP
//! record in the current update file, rotated on wall-clock boundaries; RIB snapshots written
//! from chunks of TABLE_DUMP_V2 records that the RIB thread produces.
//!
//! Fed by: peer threads (`MrtMsg::Message`, `MrtMsg::StateChange`, through `MrtLink`, which
//! never blocks: a full channel drops the record and counts it), the RIB thread (snapshot
//! chunks) and the control thread (status, rotate). Emits: finished files with manifests.

use super::file::{self, ArchiveWriter, Compression, Kind, Layout, Manifest};
use super::record;
use crate::config::ArchiveConfig;
use crate::control::proto::ArchiveStatus;
use crate::msg::{FileSink, MrtLink, MrtMsg, SessionAddrs, MRT_CHANNEL_CAPACITY};
use crate::utc::unix_secs;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{error, info, warn};
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
/// replication lists the archive.
pub fn prepare(cfg: &ArchiveConfig) -> std::io::Result<()> {
    std::fs::create_dir_all(&cfg.dir).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create archive directory {}: {e}", cfg.dir.display()))
    })?;
    match file::salvage(&cfg.dir) {
        Ok(reports) => {
            for r in reports {
                match &r.finished {
                    Some(m) => warn!(
                        "archive: salvaged {} records from unfinished {} into {} ({} trailing bytes dropped)",
                        r.records,
                        r.temp.display(),
                        m.file,
                        r.dropped_bytes
                    ),
                    None => warn!("archive: removed unfinished {} (no complete record)", r.temp.display()),
                }
            }
        }
        Err(e) => error!("archive: cannot look for unfinished files in {}: {e}", cfg.dir.display()),
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
    let join = std::thread::Builder::new()
        .name("mrt".into())
        .spawn(move || Writer::new(cfg, dropped, repl, keepalives).run(rx))?;
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

/// A file being compressed and renamed on a thread of its own.
type Finishing = JoinHandle<()>;

/// What a finisher thread reports back.
struct Finished {
    kind: Kind,
    result: Result<Manifest, String>,
}

struct Writer {
    cfg: ArchiveConfig,
    dropped: Arc<AtomicU64>,
    finishing: Vec<Finishing>,
    done_tx: Sender<Finished>,
    done_rx: Receiver<Finished>,
    current: Option<ArchiveWriter>,
    /// End of the interval the current file covers.
    rotate_at: SystemTime,
    snapshot: Option<ArchiveWriter>,
    status: ArchiveStatus,
    scratch: Vec<u8>,
    repl: Option<FileSink>,
    keepalives: Arc<AtomicBool>,
}

impl Writer {
    fn new(cfg: ArchiveConfig, dropped: Arc<AtomicU64>, repl: Option<FileSink>, keepalives: Arc<AtomicBool>) -> Writer {
        let now = SystemTime::now();
        let status = ArchiveStatus {
            enabled: true,
            dir: cfg.dir.display().to_string(),
            layout: layout_name(cfg.layout).into(),
            compression: compression_name(cfg.compression).into(),
            ..ArchiveStatus::default()
        };
        let rotate_at = file::next_boundary(now, cfg.updates_interval_secs);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Writer {
            cfg,
            dropped,
            finishing: Vec::new(),
            done_tx,
            done_rx,
            current: None,
            rotate_at,
            snapshot: None,
            status,
            scratch: Vec::with_capacity(8192),
            repl,
            keepalives,
        }
    }

    fn run(mut self, rx: Receiver<MrtMsg>) {
        info!("archive: writing MRT files under {}", self.cfg.dir.display());
        let mut last_flush = Instant::now();
        loop {
            let now = SystemTime::now();
            if now >= self.rotate_at {
                self.rotate(now);
            }
            let until_rotation = self.rotate_at.duration_since(now).unwrap_or_default();
            match rx.recv_timeout(until_rotation.min(FLUSH_EVERY)) {
                Ok(MrtMsg::Stop) => break,
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Bursts are drained in one turn before the periodic flush.
            while let Ok(msg) = rx.try_recv() {
                if matches!(msg, MrtMsg::Stop) {
                    self.finish_all();
                    return;
                }
                self.handle(msg);
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

    fn finish_all(&mut self) {
        self.finish_current();
        if let Some(w) = self.snapshot.take() {
            // A snapshot cut short by shutdown is still a consistent file of whole records.
            self.finish(w);
        }
        for t in self.finishing.drain(..) {
            let _ = t.join();
        }
        self.collect_finished();
    }

    /// Compress and rename `w` on a thread of its own, so records keep flowing meanwhile.
    fn finish_in_background(&mut self, w: ArchiveWriter, kind: Kind) {
        let tx = self.done_tx.clone();
        let spawned = std::thread::Builder::new().name("mrt-finish".into()).spawn(move || {
            let result = w.finish().map_err(|e| e.to_string());
            let _ = tx.send(Finished { kind, result });
        });
        match spawned {
            Ok(t) => self.finishing.push(t),
            Err(e) => self.fail(format!("cannot start a thread to finish a file: {e}")),
        }
        self.finishing.retain(|t| !t.is_finished());
    }

    fn collect_finished(&mut self) {
        while let Ok(f) = self.done_rx.try_recv() {
            match f.result {
                Ok(m) => {
                    self.record_finished(&m);
                    if f.kind == Kind::Rib {
                        self.status.last_snapshot = Some(m.file);
                    }
                }
                Err(e) => self.fail(format!("cannot finish a file: {e}")),
            }
        }
    }

    fn record_finished(&mut self, m: &Manifest) {
        info!("archive: finished {} ({} records, {} bytes)", m.file, m.records, m.size);
        self.status.files_finished += 1;
        if let Some(r) = &self.repl {
            r.finished(&m.file);
        }
    }

    fn fail(&mut self, msg: String) {
        error!("archive: {msg}");
        self.status.last_error = Some(msg);
    }

    fn handle(&mut self, msg: MrtMsg) {
        match msg {
            MrtMsg::Message { ts, as4, session, raw } => {
                self.scratch.clear();
                record::bgp4mp_message(ts, self.cfg.timestamp_precision, as4, &session, &raw, &mut self.scratch);
                self.append(ts, &session);
            }
            MrtMsg::StateChange { ts, session, from, to } => {
                self.scratch.clear();
                record::bgp4mp_state_change(ts, self.cfg.timestamp_precision, &session, from, to, &mut self.scratch);
                self.append(ts, &session);
            }
            MrtMsg::SnapshotBegin { start } => {
                let rel = file::relative_path(self.cfg.layout, self.cfg.compression, Kind::Rib, start);
                match ArchiveWriter::create(&self.cfg.dir, &rel, self.cfg.compression) {
                    Ok(w) => {
                        info!("archive: RIB snapshot {} started", rel.display());
                        self.snapshot = Some(w);
                    }
                    Err(e) => self.fail(format!("cannot create {}: {e}", rel.display())),
                }
            }
            MrtMsg::SnapshotChunk { records, count, timestamp } => {
                let Some(w) = self.snapshot.as_mut() else { return };
                // A chunk is a run of whole records (12-byte header + length each).
                let mut rest = records.as_slice();
                let mut result = Ok(());
                for _ in 0..count {
                    let Some(hdr) = rest.get(8..12) else { break };
                    let len = 12 + u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
                    let Some(rec) = rest.get(..len) else { break };
                    result = w.write_record(rec, timestamp, None);
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
                    self.finish_in_background(w, Kind::Rib);
                }
            }
            MrtMsg::Rotate(reply) => {
                let finished = self.finish_current();
                self.rotate_at = file::next_boundary(SystemTime::now(), self.cfg.updates_interval_secs);
                let v = serde_json::json!({ "finished": finished.map(|m| m.file) });
                let _ = reply.send(Ok(v));
            }
            MrtMsg::Reconfigure(cfg, repl) => {
                self.finish_current();
                self.repl = repl;
                if cfg.dir != self.cfg.dir {
                    if let Err(e) = prepare(&cfg) {
                        self.fail(format!(
                            "cannot use the new archive directory: {e}; keeping {}",
                            self.cfg.dir.display()
                        ));
                        return;
                    }
                }
                self.keepalives.store(cfg.record_keepalives, Ordering::Relaxed);
                self.status.dir = cfg.dir.display().to_string();
                self.status.layout = layout_name(cfg.layout).into();
                self.status.compression = compression_name(cfg.compression).into();
                self.rotate_at = file::next_boundary(SystemTime::now(), cfg.updates_interval_secs);
                self.cfg = *cfg;
                info!("archive: new settings apply from the next file");
            }
            MrtMsg::Status(reply) => {
                let mut s = self.status.clone();
                s.current_file = self.current.as_ref().map(|w| w.relative().display().to_string());
                s.current_records = self.current.as_ref().map(|w| w.records()).unwrap_or(0);
                s.dropped = self.dropped.load(Ordering::Relaxed);
                s.next_rotation = Some(unix_secs(self.rotate_at));
                let _ = reply.send(s);
            }
            MrtMsg::Stop => {}
        }
    }

    /// Write the record in `scratch` to the update file of its interval.
    fn append(&mut self, ts: SystemTime, session: &SessionAddrs) {
        if self.current.is_none() {
            // Named after the interval the file covers (RouteViews and RIS name the start).
            let start = file::interval_start(ts, self.cfg.updates_interval_secs);
            let rel = file::relative_path(self.cfg.layout, self.cfg.compression, Kind::Updates, start);
            match ArchiveWriter::create(&self.cfg.dir, &rel, self.cfg.compression) {
                Ok(w) => self.current = Some(w),
                Err(e) => {
                    self.fail(format!("cannot create {}: {e}", rel.display()));
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        let Some(w) = self.current.as_mut() else { return };
        let peer = session.peer_ip.to_string();
        let secs = unix_secs(ts) as u32;
        match w.write_record(&self.scratch, secs, Some(&peer)) {
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

    /// The clock passed the interval boundary: the file is finished in the background.
    fn rotate(&mut self, now: SystemTime) {
        if let Some(w) = self.current.take() {
            self.finish_in_background(w, Kind::Updates);
            self.status.last_rotation = Some(unix_secs(now));
        }
        self.rotate_at = file::next_boundary(now, self.cfg.updates_interval_secs);
    }

    fn finish_current(&mut self) -> Option<Manifest> {
        let w = self.current.take()?;
        let m = self.finish(w)?;
        self.status.last_rotation = Some(unix_secs(SystemTime::now()));
        Some(m)
    }

    fn finish(&mut self, w: ArchiveWriter) -> Option<Manifest> {
        let rel = w.relative().display().to_string();
        match w.finish() {
            Ok(m) => {
                self.record_finished(&m);
                Some(m)
            }
            Err(e) => {
                self.fail(format!("cannot finish {rel}: {e}"));
                None
            }
        }
    }
}
