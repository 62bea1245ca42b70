//! Archive files: names and directories in the RouteViews or RIS layout, intervals aligned to
//! midnight UTC, and crash-safe writing.
//!
//! Used by the MRT writer thread. A file in progress is plain MRT under a hidden temporary
//! name beside the final one, flushed to the kernel every second, so after a kill -9 it holds
//! every record up to the last flush and `salvage` can finish it at the next start. `finish`
//! compresses it into a single gzip or bzip2 stream (exactly what RIS and RouteViews publish:
//! some readers stop after the first member of a multi-member file), fsyncs it, renames it into
//! place and writes a JSON manifest next to it. A reader never sees half a file.

use super::record::complete_records_len;
pub use crate::archive::manifest::Manifest;
use crate::archive::manifest::{self, sync_dir};
use flate2::write::GzEncoder;
use log::warn;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
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

/// A file being written under its temporary name.
pub struct ArchiveWriter {
    dir: PathBuf,
    relative: PathBuf,
    temp: PathBuf,
    compression: Compression,
    out: Option<BufWriter<File>>,
    records: u64,
    bytes_in: u64,
    first: Option<u32>,
    last: Option<u32>,
    peers: BTreeSet<String>,
}

/// The temporary name of a file in progress: hidden, beside the final name.
fn temp_path(final_path: &Path) -> PathBuf {
    let name = final_path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    final_path.with_file_name(format!(".{name}.partial"))
}

/// Where the compressed stream is built before it is renamed into place.
fn compressing_path(final_path: &Path) -> PathBuf {
    let name = final_path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    final_path.with_file_name(format!(".{name}.compressing"))
}

impl ArchiveWriter {
    pub fn create(archive_dir: &Path, relative: &Path, compression: Compression) -> io::Result<ArchiveWriter> {
        let final_path = archive_dir.join(relative);
        if let Some(parent) = final_path.parent() {
            fs::create_dir_all(parent)?;
        }
        // Another file of the same name may be in progress (a snapshot asked for twice in one
        // minute): take the next free variant rather than write into it.
        let mut relative = relative.to_path_buf();
        let mut final_path = final_path;
        for i in 1..10_000 {
            if !temp_path(&final_path).exists() {
                break;
            }
            final_path = variant(&archive_dir.join(&relative), i);
        }
        if let Ok(r) = final_path.strip_prefix(archive_dir) {
            relative = r.to_path_buf();
        }
        let temp = temp_path(&final_path);
        let file = File::options().write(true).create_new(true).open(&temp)?;
        Ok(ArchiveWriter {
            dir: archive_dir.to_path_buf(),
            relative,
            temp,
            compression,
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            records: 0,
            bytes_in: 0,
            first: None,
            last: None,
            peers: BTreeSet::new(),
        })
    }

    pub fn write_record(&mut self, record: &[u8], timestamp: u32, peer: Option<&str>) -> io::Result<()> {
        let out = self.out.as_mut().ok_or_else(|| io::Error::other("writer already finished"))?;
        out.write_all(record)?;
        self.records += 1;
        self.bytes_in += record.len() as u64;
        self.first.get_or_insert(timestamp);
        self.last = Some(timestamp);
        if let Some(p) = peer {
            if !self.peers.contains(p) {
                self.peers.insert(p.to_string());
            }
        }
        Ok(())
    }

    pub fn records(&self) -> u64 {
        self.records
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

    /// Complete the file (see `finish_temp`). Compression runs here, so the writer thread
    /// calls this from a thread of its own for large files.
    pub fn finish(mut self) -> io::Result<Manifest> {
        let out = self.out.take().ok_or_else(|| io::Error::other("writer already finished"))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        let info = Tally {
            records: self.records,
            first: self.first,
            last: self.last,
            peers: std::mem::take(&mut self.peers).into_iter().collect(),
        };
        finish_temp(&self.dir, &self.temp, &self.dir.join(&self.relative), self.compression, info)
    }
}

/// What the manifest says besides size and checksum.
struct Tally {
    records: u64,
    first: Option<u32>,
    last: Option<u32>,
    peers: Vec<String>,
}

/// Turn a plain temporary file into the finished one: compress it into a single stream
/// beside it, fsync, rename into place (never over an existing file: a taken name gets "-1",
/// "-2", … before its extension), remove the temporary file, fsync the directory and write the
/// manifest as `NAME.json`.
fn finish_temp(
    dir: &Path,
    temp: &Path,
    final_path: &Path,
    compression: Compression,
    info: Tally,
) -> io::Result<Manifest> {
    let building = compressing_path(final_path);
    let file = File::create(&building)?;
    let mut sink = HashingFile { file, hasher: Sha256::new(), size: 0 };
    let mut input = io::BufReader::with_capacity(256 * 1024, File::open(temp)?);
    {
        let buffered = BufWriter::with_capacity(256 * 1024, &mut sink);
        let mut finished = match compression {
            Compression::Gzip => {
                let mut e = GzEncoder::new(buffered, flate2::Compression::default());
                io::copy(&mut input, &mut e)?;
                e.finish()?
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(buffered, bzip2::Compression::best());
                io::copy(&mut input, &mut e)?;
                e.finish()?
            }
            Compression::None => {
                let mut b = buffered;
                io::copy(&mut input, &mut b)?;
                b
            }
        };
        finished.flush()?;
    }
    sink.file.sync_all()?;
    let final_path = free_name(final_path);
    fs::rename(&building, &final_path)?;
    // Right after the rename: a crash in between could only duplicate, never lose, records.
    fs::remove_file(temp)?;
    sync_dir(&final_path);
    let relative = final_path.strip_prefix(dir).unwrap_or(&final_path).to_string_lossy().to_string();
    let manifest = Manifest {
        file: relative,
        size: sink.size,
        sha256: hex(&sink.hasher.finalize()),
        records: info.records,
        first_timestamp: info.first,
        last_timestamp: info.last,
        peers: info.peers,
        compression: compression.name().to_string(),
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

/// `name.ext` if free, else `name-1.ext`, `name-2.ext`, …
fn free_name(p: &Path) -> PathBuf {
    if !p.exists() {
        return p.to_path_buf();
    }
    (1..10_000).map(|i| variant(p, i)).find(|c| !c.exists()).unwrap_or_else(|| variant(p, std::process::id() as usize))
}

/// What `salvage` did with one leftover temporary file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvage {
    pub temp: PathBuf,
    pub finished: Option<Manifest>,
    pub records: u64,
    pub dropped_bytes: u64,
}

fn find_temps(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_temps(&p, out);
            continue;
        }
        let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if name.starts_with('.') && (name.ends_with(".partial") || name.ends_with(".compressing")) {
            out.push(p);
        }
    }
}

/// Peer address of a BGP4MP record, for the manifest.
fn bgp4mp_peer(record: &[u8]) -> Option<String> {
    let ty = u16::from_be_bytes([*record.get(4)?, *record.get(5)?]);
    let sub = u16::from_be_bytes([*record.get(6)?, *record.get(7)?]);
    let body = match ty {
        16 => record.get(12..)?,
        17 => record.get(16..)?,
        _ => return None,
    };
    let as_len = match sub {
        0 | 1 => 2,
        4..=7 => 4,
        _ => return None,
    };
    let at = 2 * as_len + 2;
    let afi = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
    let ip = match afi {
        1 => std::net::IpAddr::from(<[u8; 4]>::try_from(body.get(at + 2..at + 6)?).ok()?),
        2 => std::net::IpAddr::from(<[u8; 16]>::try_from(body.get(at + 2..at + 18)?).ok()?),
        _ => return None,
    };
    Some(ip.to_string())
}

/// Turn what a crash left behind into finished files: a temporary file is cut back to its
/// last complete record and finished like any other (an empty one is removed); a half-built
/// compressed file is removed (its temporary file is still there). Finished files are never
/// touched.
pub fn salvage(archive_dir: &Path) -> io::Result<Vec<Salvage>> {
    let mut temps = Vec::new();
    find_temps(archive_dir, &mut temps);
    temps.sort();
    let mut reports = Vec::new();
    for temp in temps {
        let name = temp.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if name.ends_with(".compressing") {
            fs::remove_file(&temp)?;
            continue;
        }
        let Some(final_name) = name.strip_suffix(".partial").and_then(|n| n.strip_prefix('.')).map(String::from) else {
            continue;
        };
        let final_path = temp.with_file_name(&final_name);
        let data = fs::read(&temp)?;
        let good = complete_records_len(&data);
        let mut report =
            Salvage { temp: temp.clone(), finished: None, records: 0, dropped_bytes: (data.len() - good) as u64 };
        if good == 0 {
            warn!("archive: {} holds no complete MRT record", temp.display());
            fs::remove_file(&temp)?;
            reports.push(report);
            continue;
        }
        let mut info = Tally { records: 0, first: None, last: None, peers: Vec::new() };
        let mut peers = BTreeSet::new();
        let mut at = 0;
        while at < good {
            let len = 12 + u32::from_be_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]) as usize;
            let rec = &data[at..at + len];
            let ts = u32::from_be_bytes([rec[0], rec[1], rec[2], rec[3]]);
            info.first.get_or_insert(ts);
            info.last = Some(ts);
            info.records += 1;
            if let Some(p) = bgp4mp_peer(rec) {
                peers.insert(p);
            }
            at += len;
        }
        info.peers = peers.into_iter().collect();
        if good < data.len() {
            let f = File::options().write(true).open(&temp)?;
            f.set_len(good as u64)?;
            f.sync_all()?;
        }
        report.records = info.records;
        report.finished = Some(finish_temp(archive_dir, &temp, &final_path, Compression::of_name(&final_name), info)?);
        reports.push(report);
    }
    Ok(reports)
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
                let r = record(1000 + i, (i as usize) % 50);
                w.write_record(&r, 1000 + i, Some(if i % 2 == 0 { "192.0.2.2" } else { "2001:db8::2" })).unwrap();
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
        a.write_record(&record(1, 1), 1, None).unwrap();
        b.write_record(&record(2, 2), 2, None).unwrap();
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
        a.write_record(&record(1, 3), 1, None).unwrap();
        let ma = a.finish().unwrap();
        let mut b = ArchiveWriter::create(&dir, &rel, Compression::Gzip).unwrap();
        b.write_record(&record(2, 3), 2, None).unwrap();
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
                w.write_record(&r, i, None).unwrap();
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
    fn a_leftover_without_a_complete_record_is_removed() {
        let dir = temp_dir("empty");
        let rel = relative_path(Layout::Ris, Compression::None, Kind::Updates, at(2026, 11, 24, 9, 45, 0));
        let temp = temp_path(&dir.join(&rel));
        fs::create_dir_all(temp.parent().unwrap()).unwrap();
        fs::write(&temp, &record(1, 10)[..15]).unwrap();
        let reports = salvage(&dir).unwrap();
        assert_eq!((reports.len(), reports[0].finished.is_none(), reports[0].dropped_bytes), (1, true, 15));
        assert!(!temp.exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
