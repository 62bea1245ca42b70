//! The finisher thread: fsyncs, compresses, writes the manifest of and renames the files the
//! MRT writer has closed, and salvages an archive directory a reload switched to, so the
//! writer thread never compresses (compressing a large file with bzip2 takes seconds, long
//! enough to fill the writer's channel and drop records).
//!
//! Fed by the MRT writer (`Job`s, never blocking it); emits finished files to the replication
//! sink, the answer to `focl archive rotate`, and a `Done` per file back to the writer (for
//! `focl archive status`). Jobs run one at a time, in order.
//!
//! Falling behind: the queue holds `FINISH_QUEUE` files; beyond that the writer keeps the
//! closed files in order itself (each is a closed file on disk and a few hundred bytes of
//! counts in memory, never records) and hands them over as room frees, warning once per
//! backlog. Meanwhile the files wait under their temporary names, complete: a crash then
//! loses none of them (salvage finishes them at the next start).

use super::file::{self, Closed, Compression, Kind, Leftovers, Manifest, SalvageAction};
use crate::msg::{FileSink, Reply, VrpTable};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{error, info, warn};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Closed files queued at the finisher before the writer keeps them itself.
pub const FINISH_QUEUE: usize = 16;

/// Work for the finisher.
pub enum Job {
    /// Finish a closed file; announce it to `sink`; answer `reply` (`focl archive rotate`).
    Finish { file: Closed, kind: Kind, sink: Option<FileSink>, reply: Option<Reply<serde_json::Value>> },
    /// Write the VRPs in effect beside the RIB snapshot `rib` (relative to `dir`).
    Vrps { dir: PathBuf, rib: PathBuf, compression: Compression, vrps: Arc<VrpTable>, sink: Option<FileSink> },
    /// Salvage what a crash left in `dir` (listed before the writer wrote there).
    Salvage { dir: PathBuf, found: Leftovers, sink: Option<FileSink> },
}

/// What the finisher reports back to the writer.
pub enum Done {
    Finished { kind: Kind, manifest: Manifest },
    Failed(String),
}

/// The writer's side of the finisher thread.
pub struct Finisher {
    tx: Option<Sender<Job>>,
    done_rx: Receiver<Done>,
    /// Jobs the full queue did not take yet, in order.
    backlog: VecDeque<Job>,
    join: Option<JoinHandle<()>>,
}

impl Finisher {
    pub fn spawn() -> std::io::Result<Finisher> {
        let (tx, rx) = crossbeam_channel::bounded(FINISH_QUEUE);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let join = std::thread::Builder::new().name("mrt-finish".into()).spawn(move || run(rx, done_tx))?;
        Ok(Finisher { tx: Some(tx), done_rx, backlog: VecDeque::new(), join: Some(join) })
    }

    /// Queue a job without blocking.
    pub fn submit(&mut self, job: Job) {
        self.backlog.push_back(job);
        self.pump();
    }

    /// Hand what the queue has room for to the finisher, oldest first.
    pub fn pump(&mut self) {
        let Some(tx) = &self.tx else { return };
        while let Some(job) = self.backlog.pop_front() {
            match tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job)) => {
                    if self.backlog.is_empty() {
                        warn!(
                            "archive: finishing is behind: {} files queued; closed files wait, complete, under their temporary names",
                            FINISH_QUEUE + 1
                        );
                    }
                    self.backlog.push_front(job);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    error!("archive: the finisher thread is gone; closed files are finished at the next start");
                    self.backlog.clear();
                    self.tx = None;
                    return;
                }
            }
        }
    }

    /// What the finisher has completed since the last call.
    pub fn done(&self) -> Vec<Done> {
        self.done_rx.try_iter().collect()
    }

    /// Hand over everything (waiting for room: the writer is stopping), wait for the finisher
    /// to complete it and return what it reported.
    pub fn shutdown(&mut self) -> Vec<Done> {
        if let Some(tx) = self.tx.take() {
            for job in self.backlog.drain(..) {
                if tx.send(job).is_err() {
                    break;
                }
            }
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
        self.done()
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(rx: Receiver<Job>, done: Sender<Done>) {
    for job in rx {
        match job {
            Job::Finish { file, kind, sink, reply } => {
                let rel = file.relative().display().to_string();
                let result = file.finish();
                let finished = match result {
                    Ok(m) => {
                        info!("archive: finished {} ({} records, {} bytes)", m.file, m.records, m.size);
                        if let Some(s) = &sink {
                            s.finished(&m.file);
                        }
                        let name = m.file.clone();
                        let _ = done.send(Done::Finished { kind, manifest: m });
                        Some(name)
                    }
                    Err(e) => {
                        let _ = done.send(Done::Failed(format!("cannot finish {rel}: {e}")));
                        None
                    }
                };
                if let Some(r) = reply {
                    let _ = r.send(Ok(serde_json::json!({ "finished": finished })));
                }
            }
            Job::Vrps { dir, rib, compression, vrps, sink } => match file::write_vrps(&dir, &rib, compression, &vrps) {
                Ok(m) => {
                    info!("archive: finished {} ({} VRPs beside {})", m.file, m.records, rib.display());
                    if let Some(s) = &sink {
                        s.finished(&m.file);
                    }
                }
                Err(e) => {
                    let _ = done.send(Done::Failed(format!("cannot write the VRPs beside {}: {e}", rib.display())));
                }
            },
            Job::Salvage { dir, found, sink } => match file::salvage_listed(&dir, found) {
                Ok(reports) => {
                    for r in reports {
                        log_salvage(&r);
                        if let (Some(m), Some(s)) = (&r.finished, &sink) {
                            s.finished(&m.file);
                        }
                    }
                }
                Err(e) => {
                    let _ = done.send(Done::Failed(format!("cannot salvage {}: {e}", dir.display())));
                }
            },
        }
    }
}

/// One line per leftover a crash left.
pub fn log_salvage(r: &file::Salvage) {
    let name = r.finished.as_ref().map(|m| m.file.as_str()).unwrap_or("");
    match r.action {
        SalvageAction::Finished => warn!(
            "archive: salvaged {} records from unfinished {} into {name} ({} trailing bytes dropped)",
            r.records,
            r.temp.display(),
            r.dropped_bytes
        ),
        SalvageAction::AlreadyFinished => {
            warn!("archive: removed {} ({name} was already finished)", r.temp.display())
        }
        SalvageAction::ManifestWritten => warn!("archive: wrote the missing manifest of {name}"),
        SalvageAction::Removed => warn!("archive: removed unfinished {} (no complete record)", r.temp.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mrt::file::{relative_path, ArchiveWriter, Compression, Layout};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn files_beyond_the_queue_wait_with_the_writer_and_are_all_finished_in_order() {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("focl-finisher-{}-{nanos}", std::process::id()));
        let mut f = Finisher::spawn().unwrap();
        let n = 3 * FINISH_QUEUE;
        for i in 0..n {
            let start = UNIX_EPOCH + Duration::from_secs(1_795_478_400 + 900 * i as u64);
            let rel = relative_path(Layout::Ris, Compression::Bzip2, Kind::Updates, start);
            let mut w = ArchiveWriter::create(&dir, &rel, Compression::Bzip2).unwrap();
            if i == 0 {
                // The first file keeps the finisher busy for a while: 2 MB of noise.
                let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
                for _ in 0..512 {
                    let mut r = vec![0, 0, 0, 1, 0, 13, 0, 99, 0, 0, 0x0f, 0xf8];
                    while r.len() < 4096 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        r.extend_from_slice(&x.to_be_bytes());
                    }
                    w.write_record(&r).unwrap();
                }
            }
            // Never blocks, however far behind the finisher is.
            f.submit(Job::Finish { file: w.close().unwrap(), kind: Kind::Updates, sink: None, reply: None });
        }
        assert!(!f.backlog.is_empty(), "more files than the queue holds wait with the writer");
        let done = f.shutdown();
        let names: Vec<String> = done
            .into_iter()
            .map(|d| match d {
                Done::Finished { manifest, .. } => manifest.file,
                Done::Failed(e) => panic!("{e}"),
            })
            .collect();
        assert_eq!(names.len(), n);
        assert!(names.windows(2).all(|w| w[0] < w[1]), "in the order they were closed: {names:?}");
        assert_eq!(crate::archive::manifest::finished_files(&dir), names);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
