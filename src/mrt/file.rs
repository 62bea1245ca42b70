//! Archive files: names and directories in the RouteViews or RIS layout, intervals aligned to
//! midnight UTC, and crash-safe writing.
//!
//! Used by the MRT writer thread (create, write, close) and its finisher thread (finish,
//! salvage). A file in progress is plain MRT under a hidden temporary name beside the final
//! one, flushed to the kernel every second, so after a kill -9 it holds every record up to the
//! last flush and `salvage` can finish it at the next start. Its final name is taken when it
//! is created (never the name of an existing file, manifest or file in progress). `finish`
//! compresses it into a single gzip or bzip2 stream (exactly what RIS and RouteViews publish:
//! some readers stop after the first member of a multi-member file), fsyncs it, writes the
//! JSON manifest, renames it into place without replacing anything and removes the temporary
//! file. A reader never sees half a file; a crash at any step is finished by `salvage`.

use super::record::complete_records_len;
use super::tally::Tally;
pub use crate::archive::manifest::Manifest;
use crate::archive::manifest::{self, sync_dir};
use crate::msg::VrpTable;
use flate2::write::GzEncoder;
use log::warn;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `YYYY.MM/UPDATES/updates.YYYYMMDD.HHMM.bz2`, `YYYY.MM/RIBS/rib.YYYYMMDD.HHMM.bz2`
    RouteViews,
    /// `YYYY.MM/updates.YYYYMMDD.HHMM.gz`, `YYYY.MM/bview.YYYYMMDD.HHMM.gz`
    Ris,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Bzip2,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Updates,
    Rib,
}

impl Layout {
    pub fn default_compression(self) -> Compression {
        match self {
            Layout::RouteViews => Compression::Bzip2,
            Layout::Ris => Compression::Gzip,
        }
    }
}

impl Compression {
    fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Bzip2 => ".bz2",
            Compression::None => "",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::None => "none",
        }
    }

    fn of_name(file_name: &str) -> Compression {
        if file_name.ends_with(".gz") {
            Compression::Gzip
        } else if file_name.ends_with(".bz2") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }
}

/// Where the file of `kind` starting at `start` lives below the archive root.
pub fn relative_path(layout: Layout, compression: Compression, kind: Kind, start: SystemTime) -> PathBuf {
    let (y, mo, d, h, mi, _) = crate::utc::civil_of(start);
    let month_dir = format!("{y:04}.{mo:02}");
    let stamp = format!("{y:04}{mo:02}{d:02}.{h:02}{mi:02}{}", compression.extension());
    match (layout, kind) {
        (Layout::RouteViews, Kind::Updates) => Path::new(&month_dir).join("UPDATES").join(format!("updates.{stamp}")),
        (Layout::RouteViews, Kind::Rib) => Path::new(&month_dir).join("RIBS").join(format!("rib.{stamp}")),
        (Layout::Ris, Kind::Updates) => Path::new(&month_dir).join(format!("updates.{stamp}")),
        (Layout::Ris, Kind::Rib) => Path::new(&month_dir).join(format!("bview.{stamp}")),
    }
}

/// Start of the interval holding `t`; intervals are aligned to midnight UTC.
pub fn interval_start(t: SystemTime, interval_secs: u64) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let iv = interval_secs.max(1);
    UNIX_EPOCH + Duration::from_secs(secs - secs % iv)
}

/// Start of the next interval after the one holding `t`.
pub fn next_boundary(t: SystemTime, interval_secs: u64) -> SystemTime {
    interval_start(t, interval_secs) + Duration::from_secs(interval_secs.max(1))
}

/// Most empty update files written when the clock jumps over many intervals at once (a
/// suspended machine, a clock set forward): a day of 5-minute files.
pub const MAX_CATCH_UP: usize = 288;

/// The update intervals to open, in order, when the clock reads `now` and the next interval
/// due starts at `next`: none before `next`; every interval from `next` up to the one holding
/// `now` (the earlier ones get empty files, so every interval has its file), at most the last
/// `MAX_CATCH_UP`. Pure, so rotation is tested without sleeping.
pub fn due_intervals(next: SystemTime, now: SystemTime, interval_secs: u64) -> Vec<SystemTime> {
    let iv = interval_secs.max(1);
    let last = interval_start(now, iv);
    let Ok(span) = last.duration_since(next) else { return Vec::new() };
    let n = span.as_secs() / iv + 1;
    let skip = n.saturating_sub(MAX_CATCH_UP as u64);
    (skip..n).map(|i| next + Duration::from_secs(i * iv)).collect()
}

/// The compressed file being produced at finish: counts and hashes what reaches the disk.
struct HashingFile {
    file: File,
    hasher: Sha256,
    size: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A finished file read back for a manifest: hashes and counts what is read from the disk.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// A file being written under its temporary name.
pub struct ArchiveWriter {
    dir: PathBuf,
    relative: PathBuf,
    temp: PathBuf,
    compression: Compression,
    out: Option<BufWriter<File>>,
    bytes_in: u64,
    tally: Tally,
}

/// A file closed for writing, its records in the kernel, waiting to be finished (on the
/// finisher thread: `finish` fsyncs and compresses, which takes long for a large file).
pub struct Closed {
    dir: PathBuf,
    relative: PathBuf,
    temp: PathBuf,
    compression: Compression,
    file: File,
    tally: Tally,
}

/// The temporary name of a file in progress: hidden, beside the final name.
fn temp_path(final_path: &Path) -> PathBuf {
    hidden(final_path, ".partial")
}

/// Where the compressed stream is built before it is renamed into place.
fn compressing_path(final_path: &Path) -> PathBuf {
    hidden(final_path, ".compressing")
}

fn hidden(final_path: &Path, suffix: &str) -> PathBuf {
    let name = final_path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    final_path.with_file_name(format!(".{name}{suffix}"))
}

/// Whether `final_path` is free: no finished file, manifest, file in progress or half-built
/// compressed file has that name. A name is taken once, when its file is created, so the
/// rename at finish never meets an existing file.
fn name_is_free(final_path: &Path) -> bool {
    [final_path.to_path_buf(), manifest::path_of(final_path), temp_path(final_path), compressing_path(final_path)]
        .iter()
        .all(|p| fs::symlink_metadata(p).is_err())
}

impl ArchiveWriter {
    /// Create the temporary file of `relative`, or of `name-1.ext`, `name-2.ext`, … when that
    /// name is taken (by a finished file of an earlier run, or a file of the same interval
    /// still in progress after `focl archive rotate`).
    pub fn create(archive_dir: &Path, relative: &Path, compression: Compression) -> io::Result<ArchiveWriter> {
        let first = archive_dir.join(relative);
        if let Some(parent) = first.parent() {
            fs::create_dir_all(parent)?;
        }
        let final_path = (0..10_000)
            .map(|i| if i == 0 { first.clone() } else { variant(&first, i) })
            .find(|p| name_is_free(p))
            .ok_or_else(|| io::Error::other(format!("no free name for {}", first.display())))?;
        let relative = final_path.strip_prefix(archive_dir).map(Path::to_path_buf).unwrap_or_else(|_| relative.into());
        let temp = temp_path(&final_path);
        let file = File::options().write(true).create_new(true).open(&temp)?;
        Ok(ArchiveWriter {
            dir: archive_dir.to_path_buf(),
            relative,
            temp,
            compression,
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            bytes_in: 0,
            tally: Tally::default(),
        })
    }

    /// Append one complete MRT record (common header included, RFC 6396 §2).
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        let out = self.out.as_mut().ok_or_else(|| io::Error::other("writer already finished"))?;
        out.write_all(record)?;
        self.tally.add(record);
        self.bytes_in += record.len() as u64;
        Ok(())
    }

    pub fn records(&self) -> u64 {
        self.tally.records
    }

    /// The file's account, for what its manifest says besides the records.
    pub fn tally_mut(&mut self) -> &mut Tally {
        &mut self.tally
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    pub fn relative(&self) -> &Path {
        &self.relative
    }

    /// Hand everything written so far to the kernel: it survives a kill -9 of focld.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }

    /// Stop writing: the buffered records go to the kernel (a kill -9 from here on loses
    /// nothing; salvage finishes the file). Cheap: no fsync, no compression.
    pub fn close(mut self) -> io::Result<Closed> {
        let out = self.out.take().ok_or_else(|| io::Error::other("writer already finished"))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        Ok(Closed {
            dir: std::mem::take(&mut self.dir),
            relative: std::mem::take(&mut self.relative),
            temp: std::mem::take(&mut self.temp),
            compression: self.compression,
            file,
            tally: std::mem::take(&mut self.tally),
        })
    }

    /// `close` and `Closed::finish` in one (tests, and files too small to matter).
    pub fn finish(self) -> io::Result<Manifest> {
        self.close()?.finish()
    }
}

impl Closed {
    pub fn relative(&self) -> &Path {
        &self.relative
    }

    pub fn records(&self) -> u64 {
        self.tally.records
    }

    /// Complete the file (see `finish_temp`).
    pub fn finish(self) -> io::Result<Manifest> {
        self.file.sync_all()?;
        drop(self.file);
        finish_temp(&self.dir, &self.temp, &self.dir.join(&self.relative), self.compression, &self.tally)
    }
}

/// The steps of finishing a file, in order, as named by the test-only fault hook.
pub const FINISH_STEPS: [&str; 6] = ["compress", "compressing", "manifest", "rename", "unlink", "sync"];

/// Test-only fault hook: in debug builds, `FOCLD_FAULT_FINISH=STEP` makes focld kill itself
/// with SIGKILL when finishing reaches STEP (one of `FINISH_STEPS`), so tests can show that
/// a crash at every step loses nothing. Release builds never read the variable.
fn fault_point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("FOCLD_FAULT_FINISH").is_ok_and(|v| v == step) {
        // SAFETY: kill(2) on our own process; nothing runs after it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// Rename `from` to `to`, failing rather than replacing an existing `to`: renameat2 with
/// RENAME_NOREPLACE on Linux (link + unlink where the file system does not support it, and
/// on the BSDs). Either way the finished name appears complete or not at all.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: two valid NUL-terminated paths, relative to the working directory.
        let rc =
            unsafe { libc::renameat2(libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), libc::RENAME_NOREPLACE) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(e);
        }
    }
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

/// Turn a plain temporary file into the finished one, so that a crash at any step leaves
/// either the temporary file (salvage finishes it again) or the finished file with its
/// manifest: compress into a single stream beside it and fsync; write the manifest `NAME.json`
/// (a manifest without its data file means nothing to replication or retention); rename the
/// compressed file into place without replacing anything; remove the temporary file; fsync
/// the directory.
fn finish_temp(
    dir: &Path,
    temp: &Path,
    final_path: &Path,
    compression: Compression,
    info: &Tally,
) -> io::Result<Manifest> {
    fault_point("compress");
    let building = compressing_path(final_path);
    let mut input = io::BufReader::with_capacity(256 * 1024, File::open(temp)?);
    let sink = compress_into(&building, compression, |out| io::copy(&mut input, out).map(drop))?;
    let relative = final_path.strip_prefix(dir).unwrap_or(final_path).to_string_lossy().to_string();
    let manifest = Manifest {
        file: relative,
        size: sink.size,
        sha256: hex(&sink.hasher.finalize()),
        records: info.records,
        first_timestamp: info.first,
        last_timestamp: info.last,
        peers: info.peers(),
        compression: compression.name().to_string(),
        rpki: None,
        graceful_restart: info.graceful.clone(),
        stale_routes: info.stale.clone(),
    };
    fault_point("manifest");
    manifest::write(final_path, &manifest)?;
    fault_point("rename");
    rename_noreplace(&building, final_path)?;
    fault_point("unlink");
    fs::remove_file(temp)?;
    fault_point("sync");
    sync_dir(final_path);
    Ok(manifest)
}

/// Create `building` and write into it what `fill` writes, compressed as a single stream;
/// fsync it. The returned sink holds the size and hash of the bytes on disk.
fn compress_into(
    building: &Path,
    compression: Compression,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<HashingFile> {
    let file = File::create(building)?;
    let mut sink = HashingFile { file, hasher: Sha256::new(), size: 0 };
    {
        let buffered = BufWriter::with_capacity(256 * 1024, &mut sink);
        let mut finished = match compression {
            Compression::Gzip => {
                let mut e = GzEncoder::new(buffered, flate2::Compression::default());
                fill(&mut e)?;
                fault_point("compressing");
                e.finish()?
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(buffered, bzip2::Compression::best());
                fill(&mut e)?;
                fault_point("compressing");
                e.finish()?
            }
            Compression::None => {
                let mut b = buffered;
                fill(&mut b)?;
                fault_point("compressing");
                b
            }
        };
        finished.flush()?;
    }
    sink.file.sync_all()?;
    Ok(sink)
}

/// The VRP file beside the RIB snapshot `rib` (relative): `rib.20261203.0000.bz2` (or
/// `bview.…`) gives `vrps.20261203.0000.json.bz2`, in the same directory.
pub fn vrps_path_of(rib: &Path, compression: Compression) -> PathBuf {
    let name = rib.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let ext = compression.extension();
    let stem = name.strip_suffix(ext).unwrap_or(&name);
    let stamp = stem.strip_prefix("rib.").or_else(|| stem.strip_prefix("bview.")).unwrap_or(stem);
    rib.with_file_name(format!("vrps.{stamp}.json{ext}"))
}

/// Write the VRPs in effect for the RIB snapshot `rib` (relative) beside it, compressed like
/// it, with a manifest naming the sources (cache serials, files) and counting the VRPs as
/// records. Built under a hidden `.compressing` name (removed as a scrap if a crash
/// interrupts it), renamed into place, then the manifest written: the file counts as finished,
/// for replication and retention, once its manifest is there.
pub fn write_vrps(dir: &Path, rib: &Path, compression: Compression, vrps: &VrpTable) -> io::Result<Manifest> {
    let relative = vrps_path_of(rib, compression);
    let final_path = dir.join(&relative);
    let building = compressing_path(&final_path);
    let of = serde_json::json!({ "rib": rib.display().to_string() });
    let sink = compress_into(&building, compression, |out| {
        let mut b = BufWriter::with_capacity(256 * 1024, out);
        vrps.write_json(of, &mut b)?;
        b.flush()
    })?;
    rename_noreplace(&building, &final_path)?;
    let manifest = Manifest {
        file: relative.to_string_lossy().to_string(),
        size: sink.size,
        sha256: hex(&sink.hasher.finalize()),
        records: vrps.len() as u64,
        first_timestamp: None,
        last_timestamp: None,
        peers: Vec::new(),
        compression: compression.name().to_string(),
        rpki: Some(vrps.sources.clone()),
        graceful_restart: Vec::new(),
        stale_routes: Vec::new(),
    };
    manifest::write(&final_path, &manifest)?;
    Ok(manifest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `name-N.ext` for `name.ext` (the extension being ".gz" or ".bz2" when compressed).
fn variant(p: &Path, n: usize) -> PathBuf {
    let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if e == "gz" || e == "bz2" => (s.to_string(), format!(".{e}")),
        _ => (name.clone(), String::new()),
    };
    p.with_file_name(format!("{stem}-{n}{ext}"))
}

/// What `salvage` did with one leftover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvage {
    /// The temporary file, or the finished file whose manifest was missing.
    pub temp: PathBuf,
    pub finished: Option<Manifest>,
    pub records: u64,
    pub dropped_bytes: u64,
    pub action: SalvageAction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SalvageAction {
    /// A temporary file was finished (cut back to its last complete record).
    Finished,
    /// A temporary file whose finished file was already in place was removed.
    AlreadyFinished,
    /// A finished file had no manifest: it was written from the file.
    ManifestWritten,
    /// A temporary snapshot without a complete record was removed.
    Removed,
}

/// What a crash may have left in an archive, listed before anything new is written there.
#[derive(Clone, Debug, Default)]
pub struct Leftovers {
    temps: Vec<PathBuf>,
    scraps: Vec<PathBuf>,
    unlisted: Vec<PathBuf>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.temps.is_empty() && self.scraps.is_empty() && self.unlisted.is_empty()
    }
}

/// Whether `name` is an archive data file focld writes (in either layout).
fn is_data_name(name: &str) -> bool {
    ["updates.", "rib.", "bview."].iter().any(|p| name.starts_with(p)) && !name.ends_with(".json")
}

/// Walk the archive (a directory listing, cheap enough for the writer thread): temporary
/// files, half-built compressed files and manifests, and data files without a manifest.
pub fn leftovers(archive_dir: &Path) -> Leftovers {
    fn walk(dir: &Path, out: &mut Leftovers) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            match e.file_type() {
                // The replication state (a hidden directory) is not the archive's.
                Ok(t) if t.is_dir() && !name.starts_with('.') => walk(&p, out),
                Ok(t) if t.is_file() => {
                    if name.starts_with('.') && name.ends_with(".json.partial") {
                        out.scraps.push(p);
                    } else if name.starts_with('.') && name.ends_with(".partial") {
                        out.temps.push(p);
                    } else if name.starts_with('.') && name.ends_with(".compressing") {
                        out.scraps.push(p);
                    } else if is_data_name(&name) && !manifest::path_of(&p).exists() {
                        out.unlisted.push(p);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Leftovers::default();
    walk(archive_dir, &mut out);
    out.temps.sort();
    out.unlisted.sort();
    out
}

/// Turn what a crash left behind into finished files (see `salvage_listed`).
pub fn salvage(archive_dir: &Path) -> io::Result<Vec<Salvage>> {
    salvage_listed(archive_dir, leftovers(archive_dir))
}

/// Finish what a crash left, whichever step of `finish_temp` it interrupted: half-built
/// compressed files and manifests are removed (their temporary file is still there); a
/// temporary file whose finished file exists is removed (the crash came after the rename); any
/// other temporary file is cut back to its last complete record and finished under its own
/// name (an update file without a record is finished empty: focld was up in that interval); a
/// finished file without a manifest gets one. Finished files are never changed. What was
/// listed but is gone or finished by now is skipped.
pub fn salvage_listed(archive_dir: &Path, found: Leftovers) -> io::Result<Vec<Salvage>> {
    let mut reports = Vec::new();
    for scrap in &found.scraps {
        match fs::remove_file(scrap) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    for temp in found.temps {
        let name = temp.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let Some(final_name) = name.strip_suffix(".partial").and_then(|n| n.strip_prefix('.')).map(String::from) else {
            continue;
        };
        let final_path = temp.with_file_name(&final_name);
        let data = match fs::read(&temp) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let good = complete_records_len(&data);
        let mut report = Salvage {
            temp: temp.clone(),
            finished: None,
            records: 0,
            dropped_bytes: (data.len() - good) as u64,
            action: SalvageAction::Finished,
        };
        if final_path.exists() {
            // Renamed into place, not yet unlinked: the finished file holds these records.
            fs::remove_file(&temp)?;
            report.action = SalvageAction::AlreadyFinished;
            if !manifest::path_of(&final_path).exists() {
                report.finished = Some(write_manifest_of(archive_dir, &final_path)?);
            } else {
                report.finished = manifest::read(archive_dir, &relative_of(archive_dir, &final_path)).ok();
            }
            reports.push(report);
            continue;
        }
        if good == 0 && !final_name.starts_with("updates.") {
            warn!("archive: {} holds no complete MRT record", temp.display());
            fs::remove_file(&temp)?;
            report.action = SalvageAction::Removed;
            reports.push(report);
            continue;
        }
        let mut info = Tally::default();
        let mut at = 0;
        while at < good {
            let len = 12 + u32::from_be_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]) as usize;
            info.add(&data[at..at + len]);
            at += len;
        }
        if good < data.len() {
            let f = File::options().write(true).open(&temp)?;
            f.set_len(good as u64)?;
            f.sync_all()?;
        }
        report.records = info.records;
        report.finished = Some(finish_temp(archive_dir, &temp, &final_path, Compression::of_name(&final_name), &info)?);
        reports.push(report);
    }
    for data_file in found.unlisted {
        if !data_file.exists() || manifest::path_of(&data_file).exists() {
            continue;
        }
        let m = write_manifest_of(archive_dir, &data_file)?;
        reports.push(Salvage {
            temp: data_file,
            records: m.records,
            finished: Some(m),
            dropped_bytes: 0,
            action: SalvageAction::ManifestWritten,
        });
    }
    Ok(reports)
}

fn relative_of(archive_dir: &Path, p: &Path) -> String {
    p.strip_prefix(archive_dir).unwrap_or(p).to_string_lossy().to_string()
}

/// Write the manifest of a finished file from its bytes: decompress, count the records.
fn write_manifest_of(archive_dir: &Path, data_file: &Path) -> io::Result<Manifest> {
    let name = data_file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let compression = Compression::of_name(&name);
    let mut reader = HashingReader { inner: File::open(data_file)?, hasher: Sha256::new(), size: 0 };
    let mut info = Tally::default();
    {
        let plain: Box<dyn Read + '_> = match compression {
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(&mut reader)),
            Compression::Bzip2 => Box::new(bzip2::read::BzDecoder::new(&mut reader)),
            Compression::None => Box::new(&mut reader),
        };
        let mut plain = io::BufReader::with_capacity(256 * 1024, plain);
        let mut record = vec![0; 12];
        loop {
            record.truncate(12);
            match plain.read_exact(&mut record[..12]) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let len = u32::from_be_bytes([record[8], record[9], record[10], record[11]]) as usize;
            record.resize(12 + len, 0);
            plain.read_exact(&mut record[12..])?;
            info.add(&record);
        }
    }
    // The rest of the file (after the compressed stream), so the checksum covers every byte.
    io::copy(&mut reader, &mut io::sink())?;
    let m = Manifest {
        file: relative_of(archive_dir, data_file),
        size: reader.size,
        sha256: hex(&reader.hasher.finalize()),
        records: info.records,
        first_timestamp: info.first,
        last_timestamp: info.last,
        peers: info.peers(),
        compression: compression.name().to_string(),
        rpki: None,
        // What the writer knew besides the records is lost with the crash.
        graceful_restart: Vec::new(),
        stale_routes: Vec::new(),
    };
    manifest::write(data_file, &m)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
        // Days from civil (the inverse of utc_parts), for test inputs.
        let (y, mo) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * mo + 2) / 5 + d - 1;
        let doe = yoe as u32 * 365 + yoe as u32 / 4 - yoe as u32 / 100 + doy;
        let days = era as i64 * 146_097 + doe as i64 - 719_468;
        UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400 + u64::from(h * 3600 + mi * 60 + s))
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let p = std::env::temp_dir().join(format!("focl-file-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// A fake MRT record: 12-byte header with `ts` and a body of `n` bytes.
    fn record(ts: u32, n: usize) -> Vec<u8> {
        let mut r = ts.to_be_bytes().to_vec();
        r.extend_from_slice(&[0, 13, 0, 2]);
        r.extend_from_slice(&(n as u32).to_be_bytes());
        r.extend(std::iter::repeat_n(0xab, n));
        r
    }

    /// A BGP4MP_ET MESSAGE_AS4 record from `peer` at `ts` around `n` bytes.
    fn bgp4mp(ts: u32, peer: &str, n: usize) -> Vec<u8> {
        let peer_ip: std::net::IpAddr = peer.parse().unwrap();
        let s = crate::msg::SessionAddrs { peer_as: 65010, local_as: 65001, peer_ip, local_ip: peer_ip };
        let mut r = Vec::new();
        let t = UNIX_EPOCH + Duration::from_secs(u64::from(ts));
        super::super::record::bgp4mp_message(
            t,
            super::super::record::Precision::Microsecond,
            (true, false),
            &s,
            &vec![0xff; n],
            &mut r,
        );
        r
    }

    /// Decompress with the single-stream decoders: a reader that stops after the first member
    /// must still see everything.
    fn decompress(p: &Path) -> Vec<u8> {
        let f = File::open(p).unwrap();
        let mut out = Vec::new();
        match Compression::of_name(&p.to_string_lossy()) {
            Compression::Gzip => flate2::read::GzDecoder::new(f).read_to_end(&mut out),
            Compression::Bzip2 => bzip2::read::BzDecoder::new(f).read_to_end(&mut out),
            Compression::None => io::BufReader::new(f).read_to_end(&mut out),
        }
        .unwrap();
        out
    }

    #[test]
    fn names_follow_the_collectors_layouts() {
        let t = interval_start(at(2026, 11, 24, 9, 47, 13), 900);
        assert_eq!(t, at(2026, 11, 24, 9, 45, 0));
        let rv = |k| relative_path(Layout::RouteViews, Compression::Bzip2, k, t);
        assert_eq!(rv(Kind::Updates), Path::new("2026.11/UPDATES/updates.20261124.0945.bz2"));
        assert_eq!(rv(Kind::Rib), Path::new("2026.11/RIBS/rib.20261124.0945.bz2"));
        let ris = |k| relative_path(Layout::Ris, Compression::Gzip, k, t);
        assert_eq!(ris(Kind::Updates), Path::new("2026.11/updates.20261124.0945.gz"));
        assert_eq!(ris(Kind::Rib), Path::new("2026.11/bview.20261124.0945.gz"));
        assert_eq!(
            relative_path(Layout::Ris, Compression::None, Kind::Updates, t),
            Path::new("2026.11/updates.20261124.0945")
        );
    }

    #[test]
    fn intervals_are_aligned_to_midnight_utc() {
        assert_eq!(next_boundary(at(2026, 11, 24, 9, 47, 13), 900), at(2026, 11, 24, 10, 0, 0));
        assert_eq!(interval_start(at(2026, 11, 24, 9, 47, 13), 7200), at(2026, 11, 24, 8, 0, 0));
        assert_eq!(next_boundary(at(2026, 12, 31, 23, 59, 59), 7200), at(2027, 1, 1, 0, 0, 0));
        assert_eq!(next_boundary(at(2028, 2, 28, 23, 50, 0), 900), at(2028, 2, 29, 0, 0, 0));
        let leap = relative_path(Layout::RouteViews, Compression::Bzip2, Kind::Rib, at(2028, 2, 29, 0, 0, 0));
        assert_eq!(leap, Path::new("2028.02/RIBS/rib.20280229.0000.bz2"));
    }

    #[test]
    fn every_compression_round_trips_with_a_true_manifest() {
        for c in [Compression::Gzip, Compression::Bzip2, Compression::None] {
            let dir = temp_dir("rt");
            let rel = relative_path(Layout::RouteViews, c, Kind::Updates, at(2026, 11, 24, 9, 45, 0));
            let mut w = ArchiveWriter::create(&dir, &rel, c).unwrap();
            let mut want = Vec::new();
            for i in 0..100u32 {
                let r = bgp4mp(1000 + i, if i % 2 == 0 { "192.0.2.2" } else { "2001:db8::2" }, (i as usize) % 50);
                w.write_record(&r).unwrap();
                want.extend_from_slice(&r);
                if i % 30 == 0 {
                    w.flush().unwrap();
                }
                if i == 50 {
                    // In progress: plain MRT under a hidden name, flushed records readable.
                    assert!(!dir.join(&rel).exists());
                    let partial = fs::read(temp_path(&dir.join(&rel))).unwrap();
                    assert!(partial.len() >= 31 * 12 && complete_records_len(&partial) == partial.len());
                }
            }
            let m = w.finish().unwrap();
            let path = dir.join(&m.file);
            assert_eq!(decompress(&path), want, "{c:?}");
            let on_disk = fs::read(&path).unwrap();
            assert_eq!(m.size, on_disk.len() as u64);
            assert_eq!(m.sha256, hex(&Sha256::digest(&on_disk)));
            assert_eq!((m.records, m.first_timestamp, m.last_timestamp), (100, Some(1000), Some(1099)));
            assert_eq!(m.peers, vec!["192.0.2.2".to_string(), "2001:db8::2".to_string()]);
            let manifest: Manifest =
                serde_json::from_slice(&fs::read(format!("{}.json", path.display())).unwrap()).unwrap();
            assert_eq!(manifest, m);
            let tool = match c {
                Compression::Gzip => Some("gzip"),
                Compression::Bzip2 => Some("bzip2"),
                Compression::None => None,
            };
            if let Some(tool) = tool {
                let ok = std::process::Command::new(tool).arg("-t").arg(&path).status().map(|s| s.success());
                assert!(ok.unwrap_or(true), "{tool} -t accepts the file");
            }
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn two_files_of_one_name_in_progress_get_distinct_names() {
        let dir = temp_dir("twice");
        let rel = relative_path(Layout::Ris, Compression::Gzip, Kind::Rib, at(2026, 11, 24, 9, 45, 0));
        let mut a = ArchiveWriter::create(&dir, &rel, Compression::Gzip).unwrap();
        let mut b = ArchiveWriter::create(&dir, &rel, Compression::Gzip).unwrap();
        a.write_record(&record(1, 1)).unwrap();
        b.write_record(&record(2, 2)).unwrap();
        let (ma, mb) = (a.finish().unwrap(), b.finish().unwrap());
        assert_eq!(ma.file, "2026.11/bview.20261124.0945.gz");
        assert_eq!(mb.file, "2026.11/bview.20261124.0945-1.gz");
        assert_eq!(decompress(&dir.join(&mb.file)), record(2, 2));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_finished_file_is_never_overwritten() {
        let dir = temp_dir("clobber");
        let rel = relative_path(Layout::RouteViews, Compression::Gzip, Kind::Updates, at(2026, 11, 24, 9, 45, 0));
        let mut a = ArchiveWriter::create(&dir, &rel, Compression::Gzip).unwrap();
        a.write_record(&record(1, 3)).unwrap();
        let ma = a.finish().unwrap();
        let mut b = ArchiveWriter::create(&dir, &rel, Compression::Gzip).unwrap();
        b.write_record(&record(2, 3)).unwrap();
        let mb = b.finish().unwrap();
        assert_eq!(ma.file, "2026.11/UPDATES/updates.20261124.0945.gz");
        assert_eq!(mb.file, "2026.11/UPDATES/updates.20261124.0945-1.gz");
        assert_eq!(decompress(&dir.join(&ma.file)), record(1, 3));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn salvage_keeps_every_flushed_record_after_a_crash() {
        for c in [Compression::Gzip, Compression::Bzip2, Compression::None] {
            let dir = temp_dir("salvage");
            let rel = relative_path(Layout::Ris, c, Kind::Updates, at(2026, 11, 24, 9, 45, 0));
            let mut w = ArchiveWriter::create(&dir, &rel, c).unwrap();
            let mut want = Vec::new();
            for i in 0..40u32 {
                let r = record(i, 20);
                w.write_record(&r).unwrap();
                want.extend_from_slice(&r);
            }
            w.flush().unwrap();
            // The crash: the process dies in the middle of the next record, and a half-built
            // compressed file of an earlier finish is lying around.
            let temp = temp_path(&dir.join(&rel));
            std::mem::forget(w);
            let mut f = File::options().append(true).open(&temp).unwrap();
            f.write_all(&record(99, 20)[..17]).unwrap();
            drop(f);
            let stale = compressing_path(&dir.join(&rel));
            fs::write(&stale, b"junk").unwrap();
            let reports = salvage(&dir).unwrap();
            assert_eq!(reports.len(), 1, "{c:?}");
            assert_eq!((reports[0].records, reports[0].dropped_bytes), (40, 17));
            let m = reports[0].finished.clone().unwrap();
            assert_eq!(decompress(&dir.join(&m.file)), want, "{c:?}");
            assert_eq!((m.first_timestamp, m.last_timestamp), (Some(0), Some(39)));
            assert!(!temp.exists() && !stale.exists());
            assert!(salvage(&dir).unwrap().is_empty(), "nothing left to salvage");
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn an_update_leftover_without_a_complete_record_is_finished_empty_and_a_snapshot_one_removed() {
        let dir = temp_dir("empty");
        let upd = relative_path(Layout::Ris, Compression::Gzip, Kind::Updates, at(2026, 11, 24, 9, 45, 0));
        let rib = relative_path(Layout::Ris, Compression::Gzip, Kind::Rib, at(2026, 11, 24, 9, 45, 0));
        for rel in [&upd, &rib] {
            let temp = temp_path(&dir.join(rel));
            fs::create_dir_all(temp.parent().unwrap()).unwrap();
            fs::write(&temp, &record(1, 10)[..15]).unwrap();
        }
        let mut reports = salvage(&dir).unwrap();
        reports.sort_by_key(|r| r.temp.clone());
        assert_eq!(reports.len(), 2);
        let (snap, upd_report) = (&reports[0], &reports[1]);
        assert_eq!((snap.action, snap.dropped_bytes), (SalvageAction::Removed, 15));
        assert_eq!((upd_report.action, upd_report.dropped_bytes), (SalvageAction::Finished, 15));
        let m = upd_report.finished.clone().unwrap();
        assert_eq!((m.file.as_str(), m.records, m.first_timestamp), ("2026.11/updates.20261124.0945.gz", 0, None));
        assert!(decompress(&dir.join(&m.file)).is_empty());
        assert!(!dir.join(&rib).exists() && !temp_path(&dir.join(&rib)).exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_file_is_a_valid_compressed_file_of_zero_records() {
        for c in [Compression::Gzip, Compression::Bzip2, Compression::None] {
            let dir = temp_dir("zero");
            let rel = relative_path(Layout::RouteViews, c, Kind::Updates, at(2026, 11, 24, 9, 45, 0));
            let m = ArchiveWriter::create(&dir, &rel, c).unwrap().finish().unwrap();
            assert_eq!((m.records, m.first_timestamp, m.last_timestamp, m.peers.len()), (0, None, None, 0));
            let path = dir.join(&m.file);
            assert!(decompress(&path).is_empty());
            let reader: Box<dyn Read + Send> = match c {
                Compression::Gzip => Box::new(flate2::read::GzDecoder::new(File::open(&path).unwrap())),
                Compression::Bzip2 => Box::new(bzip2::read::BzDecoder::new(File::open(&path).unwrap())),
                Compression::None => Box::new(File::open(&path).unwrap()),
            };
            assert_eq!(bgpkit_parser::BgpkitParser::from_reader(reader).into_raw_record_iter().count(), 0);
            let tool = match c {
                Compression::Gzip => Some("gzip"),
                Compression::Bzip2 => Some("bzip2"),
                Compression::None => None,
            };
            if let Some(tool) = tool {
                let ok = std::process::Command::new(tool).arg("-t").arg(&path).status().map(|s| s.success());
                assert!(ok.unwrap_or(true), "{tool} -t accepts the empty file");
            }
            // bgpdump (Debian package bgpdump) reads it as a file of no records.
            if let Ok(out) = std::process::Command::new("bgpdump").arg("-m").arg(&path).output() {
                assert!(out.status.success() && out.stdout.is_empty(), "bgpdump -m {}: {out:?}", path.display());
            }
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn rotation_opens_every_interval_up_to_the_clock_and_none_before_the_boundary() {
        let b = at(2026, 11, 24, 10, 0, 0);
        assert!(due_intervals(b, at(2026, 11, 24, 9, 59, 59), 900).is_empty());
        assert_eq!(due_intervals(b, b, 900), vec![b]);
        assert_eq!(due_intervals(b, at(2026, 11, 24, 10, 14, 59), 900), vec![b]);
        // A writer stalled for 40 minutes opens the two intervals it missed, then the current.
        assert_eq!(
            due_intervals(b, at(2026, 11, 24, 10, 40, 0), 900),
            vec![b, at(2026, 11, 24, 10, 15, 0), at(2026, 11, 24, 10, 30, 0)]
        );
        // A clock set years ahead does not write years of empty files.
        let far = due_intervals(b, at(2030, 1, 1, 0, 0, 0), 300);
        assert_eq!(far.len(), MAX_CATCH_UP);
        assert_eq!((far[0], far.last()), (at(2029, 12, 31, 0, 5, 0), Some(&at(2030, 1, 1, 0, 0, 0))));
    }

    #[test]
    fn the_final_rename_never_replaces_a_file() {
        let dir = temp_dir("noreplace");
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, b"new").unwrap();
        fs::write(&b, b"old").unwrap();
        assert!(rename_noreplace(&a, &b).is_err());
        assert_eq!(fs::read(&b).unwrap(), b"old");
        fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert_eq!((fs::read(&b).unwrap(), a.exists()), (b"new".to_vec(), false));
        let _ = fs::remove_dir_all(&dir);
    }

    /// Leave `rel` in the state a crash after finishing step `after` leaves it in, by
    /// finishing it for real and then undoing the later steps.
    fn crashed_at(dir: &Path, rel: &Path, records: &[Vec<u8>], after: &str) -> Manifest {
        let mut w = ArchiveWriter::create(dir, rel, Compression::Gzip).unwrap();
        for r in records {
            w.write_record(r).unwrap();
        }
        let temp = temp_path(&dir.join(rel));
        let plain = records.concat();
        let m = w.finish().unwrap();
        let data = dir.join(&m.file);
        let steps_done = FINISH_STEPS.iter().position(|s| *s == after).unwrap();
        // Undo, latest first: unlink (the temporary file back), rename, manifest.
        if steps_done < 5 {
            fs::write(&temp, &plain).unwrap();
        }
        if steps_done < 4 {
            fs::rename(&data, compressing_path(&data)).unwrap();
        }
        if steps_done < 3 {
            fs::remove_file(manifest::path_of(&data)).unwrap();
        }
        if steps_done < 2 {
            // Half of the compressed stream.
            let c = compressing_path(&data);
            let bytes = fs::read(&c).unwrap();
            fs::write(&c, &bytes[..bytes.len() / 2]).unwrap();
        }
        if steps_done < 1 {
            fs::remove_file(compressing_path(&data)).unwrap();
        }
        m
    }

    #[test]
    fn a_crash_at_any_finishing_step_ends_in_one_finished_file_with_a_true_manifest() {
        let records: Vec<Vec<u8>> = (0..30u32).map(|i| bgp4mp(100 + i, "192.0.2.9", 40)).collect();
        for step in FINISH_STEPS {
            let dir = temp_dir("steps");
            let rel = relative_path(Layout::Ris, Compression::Gzip, Kind::Updates, at(2026, 11, 24, 9, 45, 0));
            let want = crashed_at(&dir, &rel, &records, step);
            salvage(&dir).unwrap();
            let mut all: Vec<String> = Vec::new();
            let mut stack = vec![dir.clone()];
            while let Some(d) = stack.pop() {
                for e in fs::read_dir(&d).unwrap().flatten() {
                    if e.path().is_dir() {
                        stack.push(e.path());
                    } else {
                        all.push(e.path().strip_prefix(&dir).unwrap().to_string_lossy().to_string());
                    }
                }
            }
            all.sort();
            assert_eq!(all, vec![want.file.clone(), format!("{}.json", want.file)], "after a crash at {step}");
            let m = manifest::read(&dir, &want.file).unwrap();
            let on_disk = fs::read(dir.join(&m.file)).unwrap();
            assert_eq!(m.sha256, hex(&Sha256::digest(&on_disk)), "{step}");
            assert_eq!(
                (m.size, m.records, &m.peers),
                (on_disk.len() as u64, 30, &vec!["192.0.2.9".to_string()]),
                "{step}"
            );
            assert_eq!(decompress(&dir.join(&m.file)), records.concat(), "{step}");
            assert!(salvage(&dir).unwrap().is_empty(), "{step}: nothing left");
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_finished_file_without_its_manifest_gets_one_written_from_its_bytes() {
        let dir = temp_dir("nomanifest");
        let rel = relative_path(Layout::RouteViews, Compression::Bzip2, Kind::Updates, at(2026, 11, 24, 9, 45, 0));
        let mut w = ArchiveWriter::create(&dir, &rel, Compression::Bzip2).unwrap();
        for i in 0..12u32 {
            w.write_record(&bgp4mp(50 + i, if i < 6 { "192.0.2.1" } else { "2001:db8::1" }, 30)).unwrap();
        }
        let want = w.finish().unwrap();
        // What the old order (rename, unlink, then manifest) left after a crash.
        fs::remove_file(manifest::path_of(&dir.join(&want.file))).unwrap();
        assert!(finished_files_here(&dir).is_empty());
        let reports = salvage(&dir).unwrap();
        assert_eq!((reports.len(), reports[0].action), (1, SalvageAction::ManifestWritten));
        assert_eq!(manifest::read(&dir, &want.file).unwrap(), want);
        assert_eq!(finished_files_here(&dir), vec![want.file.clone()]);
        let _ = fs::remove_dir_all(&dir);
    }

    fn finished_files_here(dir: &Path) -> Vec<String> {
        crate::archive::manifest::finished_files(dir)
    }
}
