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

use crate::config::{ArchiveConfig, DestinationConfig, S3Credentials, S3Destination};
use crate::ctl::DestinationStatus;
use crate::mrt::file::Manifest;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{info, warn};
use s3::creds::Credentials;
use s3::{Bucket, Region};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Files above this go to S3 in multipart uploads of parts this size (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// The directory under the archive root holding the delivered logs.
pub const STATE_DIR: &str = ".replication";
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// How often local retention looks for files to delete.
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// How long `stop` waits for a destination busy with a transfer.
const STOP_WAIT: Duration = Duration::from_secs(3);
/// Per-request timeout towards S3 (a part of `PART_SIZE` must get through within it).
const S3_TIMEOUT: Duration = Duration::from_secs(120);

enum DestMsg {
    /// A file was finished (its path relative to the archive).
    Finished(String),
    /// Try now, forgetting the back-off.
    Retry,
    Stop,
}

/// What the MRT writer and the control thread hold: fan-out to every destination.
#[derive(Clone)]
pub struct ReplLink {
    txs: Vec<Sender<DestMsg>>,
    retention: Option<Sender<DestMsg>>,
}

impl std::fmt::Debug for ReplLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplLink({} destinations)", self.txs.len())
    }
}

impl ReplLink {
    pub fn finished(&self, relative: &str) {
        for tx in &self.txs {
            let _ = tx.send(DestMsg::Finished(relative.to_string()));
        }
    }

    /// `focl archive retry`: every destination tries its pending files now.
    pub fn retry(&self) {
        for tx in self.txs.iter().chain(self.retention.iter()) {
            let _ = tx.send(DestMsg::Retry);
        }
    }
}

/// The running replication threads.
pub struct ReplHandle {
    link: ReplLink,
    status: Vec<Arc<Mutex<DestinationStatus>>>,
    threads: Vec<JoinHandle<()>>,
    done_rx: Receiver<()>,
}

impl ReplHandle {
    pub fn link(&self) -> ReplLink {
        self.link.clone()
    }

    /// What the control thread keeps to read the destinations' state.
    pub fn status_source(&self) -> StatusSource {
        StatusSource(self.status.clone())
    }

    /// Ask every thread to stop; wait a little for one in the middle of a transfer (what it
    /// has not logged as delivered is sent again at the next start).
    pub fn stop(self) {
        for tx in self.link.txs.iter().chain(self.link.retention.iter()) {
            let _ = tx.send(DestMsg::Stop);
        }
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

/// Shared view of the destinations' state.
#[derive(Clone)]
pub struct StatusSource(Vec<Arc<Mutex<DestinationStatus>>>);

impl StatusSource {
    pub fn get(&self) -> Vec<DestinationStatus> {
        self.0.iter().map(|s| lock(s).clone()).collect()
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
                retention_loop(&archive, max_age, &delivered_sets, rx);
                drop(done);
            })?);
            Some(tx)
        }
        None => None,
    };
    drop(done_tx);
    Ok(Some(ReplHandle { link: ReplLink { txs, retention }, status, threads, done_rx }))
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn s3_bucket(s: &S3Destination) -> Result<Bucket, String> {
    let credentials = match &s.credentials {
        S3Credentials::Environment => Credentials::from_env().map_err(|e| {
            format!("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in focld's environment, or credentials_file ({e})")
        })?,
        S3Credentials::File { path, profile } => Credentials::from_credentials_file(path, profile.as_deref())
            .map_err(|e| format!("cannot read S3 credentials from {}: {e}", path.display()))?,
        S3Credentials::Inline { access_key, secret_key } => {
            Credentials::new(Some(access_key), Some(secret_key), None, None, None).map_err(|e| e.to_string())?
        }
    };
    let region = match &s.endpoint {
        Some(endpoint) => Region::Custom { region: s.region.clone(), endpoint: endpoint.clone() },
        None => s.region.parse().map_err(|e| format!("region '{}': {e}", s.region))?,
    };
    let bucket = Bucket::new(&s.bucket, region, credentials).map_err(|e| e.to_string())?;
    let bucket = if s.path_style { bucket.with_path_style() } else { bucket };
    let bucket = bucket.with_request_timeout(S3_TIMEOUT).map_err(|e| e.to_string())?;
    Ok(*bucket)
}

enum Target {
    Local(PathBuf),
    /// The bucket and the key prefix.
    S3(Box<Bucket>, String),
}

struct Dest {
    label: String,
    target: Target,
    archive: PathBuf,
    /// Append-only list of delivered relative paths.
    log: PathBuf,
    delivered: Arc<Mutex<HashSet<String>>>,
    /// Pending files, oldest first, with their bytes (file and manifest).
    queue: VecDeque<(String, u64)>,
    /// The names in `queue` and the sum of its bytes, kept beside it.
    queued: HashSet<String>,
    pending_bytes: u64,
    status: Arc<Mutex<DestinationStatus>>,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// Consecutive failed attempts.
    failures: u32,
}

impl Dest {
    fn run(&mut self, rx: Receiver<DestMsg>) {
        self.load();
        loop {
            let wait = match (self.queue.is_empty(), self.retry_at) {
                (true, _) => Duration::from_secs(3600),
                (false, Some(at)) => at.saturating_duration_since(Instant::now()),
                (false, None) => Duration::ZERO,
            };
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            for msg in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                match msg {
                    DestMsg::Finished(rel) => self.enqueue(rel),
                    DestMsg::Retry => {
                        self.retry_at = None;
                        self.backoff = BACKOFF_FIRST;
                    }
                    DestMsg::Stop => return,
                }
            }
            self.publish();
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                continue;
            }
            if let Some((rel, _)) = self.queue.front().cloned() {
                self.attempt(&rel);
                self.publish();
            }
        }
    }

    /// Read the delivered log (dropping lines for files no longer in the archive, so the log
    /// stays as small as the archive) and queue every finished file it lacks.
    fn load(&mut self) {
        let mut delivered = HashSet::new();
        match fs::read_to_string(&self.log) {
            Ok(text) => delivered.extend(text.lines().filter(|l| !l.is_empty()).map(String::from)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!("replication {}: cannot read {}: {e}; sending everything again", self.label, self.log.display())
            }
        }
        let finished = finished_files(&self.archive);
        let before = delivered.len();
        let present: HashSet<&String> = finished.iter().collect();
        delivered.retain(|f| present.contains(f));
        if delivered.len() != before {
            if let Err(e) = rewrite_log(&self.log, &delivered) {
                warn!("replication {}: cannot compact {}: {e}", self.label, self.log.display());
            }
        }
        *lock(&self.delivered) = delivered;
        for f in finished {
            self.enqueue(f);
        }
        if !self.queue.is_empty() {
            info!("replication {}: {} files pending from before", self.label, self.queue.len());
        }
        self.publish();
    }

    fn enqueue(&mut self, rel: String) {
        if self.queued.contains(&rel) || lock(&self.delivered).contains(&rel) {
            return;
        }
        let bytes = [self.archive.join(&rel), manifest_path(&self.archive.join(&rel))]
            .iter()
            .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        self.queued.insert(rel.clone());
        self.pending_bytes += bytes;
        self.queue.push_back((rel, bytes));
    }

    fn attempt(&mut self, rel: &str) {
        let src = self.archive.join(rel);
        if !src.exists() {
            warn!("replication {}: {rel} is gone from the archive; it cannot be sent", self.label);
            self.dequeue();
            return;
        }
        let result = match &self.target {
            Target::Local(root) => copy_local(&self.archive, root, rel),
            Target::S3(bucket, prefix) => upload_s3(&self.archive, bucket, prefix, rel),
        };
        let result = result.and_then(|()| self.log_delivered(rel));
        match result {
            Ok(()) => {
                if self.failures > 0 {
                    info!("replication {}: delivering again after {} failed attempts", self.label, self.failures);
                }
                info!("replication {}: delivered {rel}", self.label);
                self.dequeue();
                self.failures = 0;
                self.backoff = BACKOFF_FIRST;
                self.retry_at = None;
                let mut st = lock(&self.status);
                st.delivered_files += 1;
                st.last_success = Some(crate::mrt::writer::unix_secs(SystemTime::now()));
                st.last_file = Some(rel.to_string());
                st.last_error = None;
            }
            Err(e) => {
                // Logged once when the destination starts failing, not at every retry.
                if self.failures == 0 {
                    warn!(
                        "replication {}: {e}; will retry with back-off (up to {} s)",
                        self.label,
                        BACKOFF_CAP.as_secs()
                    );
                }
                self.failures += 1;
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_CAP);
                lock(&self.status).last_error = Some(e);
            }
        }
    }

    /// Take the front of the queue off (delivered, or gone from the archive).
    fn dequeue(&mut self) {
        if let Some((rel, bytes)) = self.queue.pop_front() {
            self.queued.remove(&rel);
            self.pending_bytes -= bytes;
        }
    }

    fn log_delivered(&mut self, rel: &str) -> Result<(), String> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        f.write_all(format!("{rel}\n").as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("cannot record delivery in {}: {e}", self.log.display()))?;
        lock(&self.delivered).insert(rel.to_string());
        Ok(())
    }

    fn publish(&self) {
        let mut st = lock(&self.status);
        st.pending_files = self.queue.len() as u64;
        st.pending_bytes = self.pending_bytes;
        st.next_retry = self.retry_at.map(|at| {
            let secs = at.saturating_duration_since(Instant::now());
            crate::mrt::writer::unix_secs(SystemTime::now() + secs)
        });
    }
}

fn manifest_path(file: &Path) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    file.with_file_name(format!("{name}.json"))
}

/// Finished files of the archive (those with a manifest), relative, in name order (which is
/// time order within each directory). Hidden files and directories (temporary files, the
/// replication state) are skipped.
pub fn finished_files(archive: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&path, root, out),
                Ok(t) if t.is_file() => {
                    if let Some(data) = name.strip_suffix(".json") {
                        let data_path = path.with_file_name(data);
                        if data_path.is_file() {
                            if let Ok(rel) = data_path.strip_prefix(root) {
                                out.push(rel.to_string_lossy().to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(archive, archive, &mut out);
    out.sort();
    out
}

fn rewrite_log(log: &Path, delivered: &HashSet<String>) -> io::Result<()> {
    let tmp = log.with_extension("delivered.tmp");
    let mut lines: Vec<&String> = delivered.iter().collect();
    lines.sort();
    let mut f = File::create(&tmp)?;
    for l in lines {
        writeln!(f, "{l}")?;
    }
    f.sync_all()?;
    fs::rename(&tmp, log)
}

fn read_manifest(archive: &Path, rel: &str) -> Result<Manifest, String> {
    let path = manifest_path(&archive.join(rel));
    let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a manifest: {e}", path.display()))
}

fn sha256_of(path: &Path) -> io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((size, hex(&h.finalize())));
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
}

/// Copy `rel` and its manifest under `root`: temporary name, fsync, rename, fsync the
/// directory; then read the copy back against the manifest.
fn copy_local(archive: &Path, root: &Path, rel: &str) -> Result<(), String> {
    let manifest = read_manifest(archive, rel)?;
    let src = archive.join(rel);
    for (from, to) in [(src.clone(), root.join(rel)), (manifest_path(&src), manifest_path(&root.join(rel)))] {
        let dir = to.parent().unwrap_or(root);
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let name = to.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.replicating"));
        let copied = (|| -> io::Result<()> {
            let mut input = File::open(&from)?;
            let mut out = File::create(&tmp)?;
            io::copy(&mut input, &mut out)?;
            out.sync_all()?;
            fs::rename(&tmp, &to)?;
            File::open(dir)?.sync_all()
        })();
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(format!("cannot copy {rel} to {}: {e}", to.display()));
        }
    }
    let dst = root.join(rel);
    let (size, sha) = sha256_of(&dst).map_err(|e| format!("cannot read back {}: {e}", dst.display()))?;
    if size != manifest.size || sha != manifest.sha256 {
        return Err(format!("the copy {} does not match its manifest (size {size}, sha256 {sha})", dst.display()));
    }
    Ok(())
}

/// The object key of `rel` under the destination's prefix.
pub fn s3_key(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

fn upload_s3(archive: &Path, bucket: &Bucket, prefix: &str, rel: &str) -> Result<(), String> {
    let manifest = read_manifest(archive, rel)?;
    let src = archive.join(rel);
    put_file(bucket, &s3_key(prefix, rel), &src, "application/octet-stream", manifest.size)?;
    let mpath = manifest_path(&src);
    let msize = fs::metadata(&mpath).map_err(|e| format!("cannot read {}: {e}", mpath.display()))?.len();
    put_file(bucket, &s3_key(prefix, &format!("{rel}.json")), &mpath, "application/json", msize)
}

fn put_file(bucket: &Bucket, key: &str, path: &Path, content_type: &str, size: u64) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot upload {key} ({what}): {e}");
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if size <= PART_SIZE as u64 {
        let mut data = Vec::with_capacity(size as usize);
        file.read_to_end(&mut data).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let r = bucket.put_object_with_content_type(key, &data, content_type).map_err(|e| fail("PUT", &e))?;
        if !(200..300).contains(&r.status_code()) {
            return Err(fail("PUT", &format!("HTTP {}", r.status_code())));
        }
    } else {
        let init = bucket.initiate_multipart_upload(key, content_type).map_err(|e| fail("initiate multipart", &e))?;
        let mut parts = Vec::new();
        let mut buf = vec![0u8; PART_SIZE];
        let uploaded = (|| -> Result<usize, String> {
            loop {
                let n = read_full(&mut file, &mut buf).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if n == 0 {
                    break;
                }
                let number = parts.len() as u32 + 1;
                let part = bucket
                    .put_multipart_chunk(&buf[..n], &init.key, number, &init.upload_id, content_type)
                    .map_err(|e| fail(&format!("part {number}"), &e))?;
                parts.push(part);
                if n < PART_SIZE {
                    break;
                }
            }
            Ok(parts.len())
        })();
        let count = match uploaded {
            Ok(count) => count,
            Err(e) => {
                let _ = bucket.abort_upload(&init.key, &init.upload_id);
                return Err(e);
            }
        };
        if let Err(e) = bucket.complete_multipart_upload(&init.key, &init.upload_id, parts) {
            // A completion whose answer was lost or not understood (some S3-compatible stores
            // name the reply's XML element differently) may still have completed: the object
            // then has the file's size and a multipart ETag ("...-<parts>").
            let completed = bucket.head_object(key).is_ok_and(|(h, st)| {
                st < 300
                    && h.content_length.and_then(|n| u64::try_from(n).ok()) == Some(size)
                    && h.e_tag.is_some_and(|t| t.trim_matches('"').ends_with(&format!("-{count}")))
            });
            if !completed {
                let _ = bucket.abort_upload(&init.key, &init.upload_id);
                return Err(fail("complete multipart", &e));
            }
        }
    }
    let (head, status) = bucket.head_object(key).map_err(|e| fail("HEAD after upload", &e))?;
    match head.content_length {
        Some(n) if status < 300 && u64::try_from(n).ok() == Some(size) => Ok(()),
        other => Err(fail("check", &format!("the object has {other:?} bytes, the file {size}"))),
    }
}

/// Read until `buf` is full or the file ends.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Delete local files older than `max_age` that every destination has confirmed.
fn retention_loop(archive: &Path, max_age: Duration, delivered: &[Arc<Mutex<HashSet<String>>>], rx: Receiver<DestMsg>) {
    loop {
        let now = SystemTime::now();
        for rel in finished_files(archive) {
            let path = archive.join(&rel);
            let old = fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > max_age));
            if old && delivered.iter().all(|d| lock(d).contains(&rel)) {
                match fs::remove_file(&path).and_then(|()| fs::remove_file(manifest_path(&path))) {
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
