//! One replication destination's thread: its queue of pending files, back-off, and the copy
//! itself (local directory or S3), each checked before it counts as delivered.

use super::{lock, manifest};
use crate::config::{S3Credentials, S3Destination};
use crate::control::proto::DestinationStatus;
use crate::msg::DestMsg;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{info, warn};
use s3::creds::Credentials;
use s3::{Bucket, Region};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Files above this go to S3 in multipart uploads of parts this size (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
pub(super) const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Per-request timeout towards S3 (a part of `PART_SIZE` must get through within it).
const S3_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn s3_bucket(s: &S3Destination) -> Result<Bucket, String> {
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

pub(super) enum Target {
    Local(PathBuf),
    /// The bucket and the key prefix.
    S3(Box<Bucket>, String),
}

pub(super) struct Dest {
    pub(super) label: String,
    pub(super) target: Target,
    pub(super) archive: PathBuf,
    /// Append-only list of delivered relative paths.
    pub(super) log: PathBuf,
    pub(super) delivered: Arc<Mutex<HashSet<String>>>,
    /// Pending files, oldest first, with their bytes (file and manifest).
    pub(super) queue: VecDeque<(String, u64)>,
    /// The names in `queue` and the sum of its bytes, kept beside it.
    pub(super) queued: HashSet<String>,
    pub(super) pending_bytes: u64,
    pub(super) status: Arc<Mutex<DestinationStatus>>,
    pub(super) backoff: Duration,
    pub(super) retry_at: Option<Instant>,
    /// Consecutive failed attempts.
    pub(super) failures: u32,
}

impl Dest {
    pub(super) fn run(&mut self, rx: Receiver<DestMsg>) {
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
        let finished = manifest::finished_files(&self.archive);
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
        let bytes = [self.archive.join(&rel), manifest::path_of(&self.archive.join(&rel))]
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
                st.last_success = Some(crate::utc::unix_secs(SystemTime::now()));
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
            crate::utc::unix_secs(SystemTime::now() + secs)
        });
    }
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
    let manifest = manifest::read(archive, rel)?;
    let src = archive.join(rel);
    for (from, to) in [(src.clone(), root.join(rel)), (manifest::path_of(&src), manifest::path_of(&root.join(rel)))] {
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
    let manifest = manifest::read(archive, rel)?;
    let src = archive.join(rel);
    put_file(bucket, &s3_key(prefix, rel), &src, "application/octet-stream", manifest.size)?;
    let mpath = manifest::path_of(&src);
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
