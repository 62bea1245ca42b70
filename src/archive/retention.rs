//! Local retention: deletes archive files older than `retain_local_days` once every
//! replication destination has confirmed them.
//!
//! One thread, started with the replication threads; fed by `DestMsg::Retry`/`Stop`; reads the
//! destinations' delivered sets.

use super::lock;
use super::manifest;
use crate::msg::DestMsg;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{info, warn};
use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often local retention looks for files to delete.
const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// Delete local files older than `max_age` that every destination has confirmed.
pub(super) fn retention_loop(
    archive: &Path,
    max_age: Duration,
    delivered: &[Arc<Mutex<HashSet<String>>>],
    rx: Receiver<DestMsg>,
) {
    loop {
        let now = SystemTime::now();
        for rel in manifest::finished_files(archive) {
            let path = archive.join(&rel);
            let old = fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > max_age));
            if old && delivered.iter().all(|d| lock(d).contains(&rel)) {
                match fs::remove_file(&path).and_then(|()| fs::remove_file(manifest::path_of(&path))) {
                    Ok(()) => info!("archive: removed {rel} (older than the retention, replicated everywhere)"),
                    Err(e) => warn!("archive: cannot remove {rel}: {e}"),
                }
            }
        }
        match rx.recv_timeout(RETENTION_EVERY) {
            Ok(DestMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            _ => {}
        }
    }
}
