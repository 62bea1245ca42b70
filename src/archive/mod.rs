//! Replication of finished archive files to `[[archive.destinations]]`: local directories and
//! S3 (or S3-compatible) buckets, one thread per destination, blocking I/O, no async runtime.
//!
//! Nothing is lost, by construction rather than by a queue that could itself be lost: a file
//! is pending for a destination as long as it is finished in the archive (it has its `NAME.json`
//! manifest) and is not in that destination's delivered log, `DIR/.replication/ID.delivered`,
//! to which a line is appended and fsynced only after the copy was checked. At start-up each
//! destination thread lists the archive and queues what its log lacks, so a destination that
//! was down for hours, a restart or a crash in the middle all end with every file delivered;
//! a file copied but not yet logged is copied again (same bytes). The MRT writer tells the
//! threads of each file it finishes. A destination added later receives the whole archive.
//!
//! Each destination gets the data file, then its manifest, under the file's path relative to
//! the archive (`YYYY.MM/UPDATES/...`), so a destination mirrors the local layout. Local copies
//! are written under a temporary name, fsynced, renamed and read back against the manifest's
//! SHA-256; S3 uploads send Content-MD5 (checked by the server), go multipart above
//! `PART_SIZE`, and are checked with a HEAD (size) before they count.

//!
//! Files: `replicate.rs` (one destination's thread: queue, back-off, local and S3 copies),
//! `manifest.rs` (what makes a file finished), `retention.rs` (local deletion).

pub mod manifest;
mod replicate;
mod retention;

pub use manifest::finished_files;
pub use replicate::{s3_key, PART_SIZE};

use crate::config::{ArchiveConfig, DestinationConfig};
use crate::control::proto::DestinationStatus;
use crate::msg::{FileSink, StatusSource};
use crossbeam_channel::Receiver;
use replicate::{hex, s3_bucket, Dest, Target, BACKOFF_FIRST};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The directory under the archive root holding the delivered logs.
pub const STATE_DIR: &str = ".replication";
/// How long `stop` waits for a destination busy with a transfer.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// The running replication threads.
pub struct ReplHandle {
    link: FileSink,
    status: Vec<Arc<Mutex<DestinationStatus>>>,
    threads: Vec<JoinHandle<()>>,
    done_rx: Receiver<()>,
}

impl ReplHandle {
    pub fn link(&self) -> FileSink {
        self.link.clone()
    }

    /// What the control thread keeps to read the destinations' state.
    pub fn status_source(&self) -> StatusSource {
        StatusSource::new(self.status.clone())
    }

    /// Ask every thread to stop; wait a little for one in the middle of a transfer (what it
    /// has not logged as delivered is sent again at the next start).
    pub fn stop(self) {
        self.link.stop();
        drop(self.link);
        let deadline = Instant::now() + STOP_WAIT;
        // Each thread holds a sender of `done`; all gone means all returned.
        while self.done_rx.recv_deadline(deadline).is_ok() {}
        for t in self.threads {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start one thread per destination (and one for retention if configured). `None` when the
/// archive has no destinations. Errors: the state directory cannot be made, or an S3
/// destination has no usable credentials.
pub fn spawn(cfg: &ArchiveConfig) -> io::Result<Option<ReplHandle>> {
    if cfg.destinations.is_empty() {
        return Ok(None);
    }
    let state_dir = cfg.dir.join(STATE_DIR);
    fs::create_dir_all(&state_dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", state_dir.display())))?;
    let mut targets = Vec::new();
    for (i, d) in cfg.destinations.iter().enumerate() {
        let target = match d {
            DestinationConfig::Local { path } => Target::Local(path.clone()),
            DestinationConfig::S3(s) => Target::S3(
                Box::new(
                    s3_bucket(s)
                        .map_err(|e| io::Error::other(format!("archive.destinations[{i}] ({}): {e}", d.label())))?,
                ),
                s.prefix.clone(),
            ),
        };
        targets.push((d, target));
    }
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let mut txs = Vec::new();
    let mut status = Vec::new();
    let mut delivered_sets = Vec::new();
    let mut threads = Vec::new();
    for (i, (d, target)) in targets.into_iter().enumerate() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let st = Arc::new(Mutex::new(DestinationStatus { destination: d.label(), ..Default::default() }));
        let delivered = Arc::new(Mutex::new(HashSet::new()));
        let mut dest = Dest {
            label: d.label(),
            target,
            archive: cfg.dir.clone(),
            log: state_dir.join(format!("{}.delivered", destination_id(d))),
            delivered: delivered.clone(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            pending_bytes: 0,
            status: st.clone(),
            backoff: BACKOFF_FIRST,
            retry_at: None,
            failures: 0,
        };
        let done = done_tx.clone();
        let t = std::thread::Builder::new().name(format!("repl-{i}")).spawn(move || {
            dest.run(rx);
            drop(done);
        })?;
        txs.push(tx);
        status.push(st);
        delivered_sets.push(delivered);
        threads.push(t);
    }
    let retention = match cfg.retain_local_days {
        Some(days) => {
            let (tx, rx) = crossbeam_channel::unbounded();
            let archive = cfg.dir.clone();
            let done = done_tx.clone();
            let max_age = Duration::from_secs(u64::from(days) * 86_400);
            threads.push(std::thread::Builder::new().name("repl-retain".into()).spawn(move || {
                retention::retention_loop(&archive, max_age, &delivered_sets, rx);
                drop(done);
            })?);
            Some(tx)
        }
        None => None,
    };
    drop(done_tx);
    Ok(Some(ReplHandle { link: FileSink::new(txs, retention), status, threads, done_rx }))
}

/// A stable name for a destination's delivered log: the same destination keeps its log across
/// restarts; another bucket, prefix, endpoint or path starts a new one (and gets everything).
fn destination_id(d: &DestinationConfig) -> String {
    let key = match d {
        DestinationConfig::Local { path } => format!("local\n{}", path.display()),
        DestinationConfig::S3(s) => {
            format!("s3\n{}\n{}\n{}\n{}", s.endpoint.as_deref().unwrap_or(""), s.region, s.bucket, s.prefix)
        }
    };
    let kind = if matches!(d, DestinationConfig::Local { .. }) { "local" } else { "s3" };
    format!("{kind}-{}", &hex(&Sha256::digest(key.as_bytes()))[..16])
}
