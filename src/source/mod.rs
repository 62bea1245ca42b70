//! The SOURCE THREAD: reads the files of `[[sources]]` (TABLE_DUMP_V2 dumps, `dump.rs`) off
//! the RIB and peer threads, since a full table takes seconds to decompress and parse.
//!
//! Fed by the RIB (`SourceMsg::Load`: at start, on reload and on `focl source reload`).
//! Emits `RibMsg::SourceLoaded` with the table (shared, read-only) or the reason it could not
//! be read; the RIB announces it. One file at a time, in the order asked.

pub mod dump;

use crate::msg::{RibMsg, SourceLink, SourceMsg, SOURCE_CHANNEL_CAPACITY};
use crossbeam_channel::{Receiver, Sender};
use log::{debug, error, info};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Owns the source thread.
pub struct SourceHandle {
    pub link: SourceLink,
    tx: Sender<SourceMsg>,
    /// Set at stop: a file being read fails at its next read, so stopping never waits for it.
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl SourceHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(j) = self.join.take() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = self.tx.send(SourceMsg::Stop);
            let _ = j.join();
        }
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The channel of the source thread, made before the RIB so that each can hold the other's
/// sender.
pub fn channel() -> (Sender<SourceMsg>, Receiver<SourceMsg>) {
    crossbeam_channel::bounded(SOURCE_CHANNEL_CAPACITY)
}

pub fn spawn_with(
    tx: Sender<SourceMsg>,
    rx: Receiver<SourceMsg>,
    rib: Sender<RibMsg>,
) -> std::io::Result<SourceHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let join = std::thread::Builder::new().name("source".into()).spawn(move || run(rx, rib, flag))?;
    Ok(SourceHandle { link: SourceLink::new(tx.clone()), tx, stop, join: Some(join) })
}

/// A file that stops giving bytes once focld stops.
struct Stoppable {
    file: std::fs::File,
    stop: Arc<AtomicBool>,
}

impl Read for Stoppable {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("focld is stopping"));
        }
        self.file.read(buf)
    }
}

fn run(rx: Receiver<SourceMsg>, rib: Sender<RibMsg>, stop: Arc<AtomicBool>) {
    while let Ok(SourceMsg::Load { cfg, reply }) = rx.recv() {
        let start = Instant::now();
        let result = std::fs::File::open(&cfg.file)
            .map_err(|e| format!("cannot open {}: {e}", cfg.file.display()))
            .and_then(|file| {
                dump::open(Stoppable { file, stop: stop.clone() })
                    .map_err(|e| format!("cannot read {}: {e}", cfg.file.display()))
            })
            .and_then(|r| dump::read_table(r, &cfg).map_err(|e| format!("{}: {e}", cfg.file.display())));
        match &result {
            Ok(t) => info!(
                "source {}: read {} routes from {} in {:.1}s ({} skipped by prefix_shift, {} by limit, {} unusable)",
                cfg.name,
                t.len(),
                cfg.file.display(),
                start.elapsed().as_secs_f64(),
                t.skipped_shift,
                t.skipped_limit,
                t.skipped_bad
            ),
            Err(e) => error!("source {}: {e}", cfg.name),
        }
        if rib.send(RibMsg::SourceLoaded { cfg, result: result.map(Arc::new), reply }).is_err() {
            break;
        }
    }
    debug!("source: stopped");
}
