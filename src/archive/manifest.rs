//! Manifests: the JSON file `NAME.json` written beside every finished archive file, which makes
//! it "finished" for replication and retention.
//!
//! Written by the MRT writer when it finishes a file; read by the replication threads (what to
//! copy, and the SHA-256 to check the copy against) and by retention.

use serde::{Deserialize, Serialize};

/// Graceful restart events and stale counts travel from the RIB to the MRT writer (`msg`).
pub use crate::msg::{GracefulEvent, StaleCount};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A finished file, described for replication and for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Path relative to the archive root.
    pub file: String,
    /// Bytes on disk.
    pub size: u64,
    /// SHA-256 of the bytes on disk, hex.
    pub sha256: String,
    pub records: u64,
    pub first_timestamp: Option<u32>,
    pub last_timestamp: Option<u32>,
    /// Peers with records in the file (addresses), sorted.
    pub peers: Vec<String>,
    pub compression: String,
    /// For a VRP file beside a RIB snapshot: the sources of its VRPs (RTR caches with their
    /// session id and serial, VRP files); `records` then counts VRPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpki: Option<Vec<crate::msg::VrpSource>>,
    /// Update files: graceful restart events (RFC 4724, RFC 9494) while the file was written,
    /// in order: which families of which peer went stale, and when they were swept, so a
    /// consumer rebuilding a RIB from the updates can see the routes that were not withdrawn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub graceful_restart: Vec<GracefulEvent>,
    /// RIB snapshots: per peer with any, the stale routes in the snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_routes: Vec<StaleCount>,
}

/// Where the manifest of `file` lives: `NAME.json` beside it.
pub fn path_of(file: &Path) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    file.with_file_name(format!("{name}.json"))
}

/// Write the manifest of the finished file `final_path`: temporary name, fsync, rename.
pub fn write(final_path: &Path, m: &Manifest) -> io::Result<()> {
    let name = final_path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let path = path_of(final_path);
    let tmp = final_path.with_file_name(format!(".{name}.json.partial"));
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(m).map_err(io::Error::other)?)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    sync_dir(&path);
    Ok(())
}

/// The manifest of `rel` (relative to the archive root).
pub fn read(archive: &Path, rel: &str) -> Result<Manifest, String> {
    let path = path_of(&archive.join(rel));
    let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a manifest: {e}", path.display()))
}

/// fsync the directory holding `file`, so a rename into it survives a crash.
pub fn sync_dir(file: &Path) {
    if let Some(d) = file.parent() {
        if let Ok(f) = File::open(d) {
            let _ = f.sync_all();
        }
    }
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
