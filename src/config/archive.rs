//! `[archive]` and its `[[archive.destinations]]`: MRT archiving (layout, compression, rotation
//! intervals) and where finished files are replicated (local directories, S3 buckets).

use std::path::Path;

use super::model::{ArchiveConfig, DestinationConfig, S3Credentials, S3Destination};
use super::reader::{Field, Reader, Table};
use crate::mrt::file::{Compression, Layout};
use crate::mrt::record::Precision;

pub(super) fn read_archive(cx: &mut Reader, t: &mut Table<'_, '_>) -> ArchiveConfig {
    // A new key is one line here: `key: t.get(cx, "key").and_then(..).unwrap_or(defaults.key)`,
    // and its field in `ArchiveConfig` (which the printer serializes).
    let d = ArchiveConfig::default();
    let enabled = t.get(cx, "enabled").and_then(|f| cx.bool(&f)).unwrap_or(d.enabled);
    let dir = t
        .get(cx, "dir")
        .and_then(|f| {
            if cx.str(&f)?.is_empty() {
                cx.at(&f, "the archive directory must not be empty");
                return None;
            }
            cx.path(&f)
        })
        .unwrap_or(d.dir);
    let layout = t
        .get(cx, "layout")
        .and_then(|f| {
            let s = cx.str(&f)?;
            match s {
                "routeviews" => Some(Layout::RouteViews),
                "ris" => Some(Layout::Ris),
                _ => {
                    cx.at(&f, format!("unknown layout '{s}'; expected \"routeviews\" or \"ris\""));
                    None
                }
            }
        })
        .unwrap_or(d.layout);
    let compression = t
        .get(cx, "compression")
        .and_then(|f| {
            let s = cx.str(&f)?;
            match s {
                "gzip" => Some(Compression::Gzip),
                "bzip2" => Some(Compression::Bzip2),
                "none" => Some(Compression::None),
                _ => {
                    cx.at(&f, format!("unknown compression '{s}'; expected \"gzip\", \"bzip2\" or \"none\""));
                    None
                }
            }
        })
        .unwrap_or(layout.default_compression());
    let interval = |cx: &mut Reader, f: &Field<'_, '_>, zero_ok: bool| -> Option<u64> {
        let v = cx.int_in(f, 0u32, 86_400, "the interval", " seconds")?;
        if v == 0 && zero_ok {
            return Some(0);
        }
        // Files are aligned to midnight UTC, so an interval must fit a day a whole number of times.
        if v < 60 || 86_400 % v != 0 {
            cx.at(f, format!("the interval must divide a day (86400 s) evenly and be at least 60 s, e.g. 300, 900, 3600 or 7200; got {v}"));
            return None;
        }
        Some(u64::from(v))
    };
    let updates_interval_secs =
        t.get(cx, "updates_interval_secs").and_then(|f| interval(cx, &f, false)).unwrap_or(d.updates_interval_secs);
    let rib_interval_secs =
        t.get(cx, "rib_interval_secs").and_then(|f| interval(cx, &f, true)).unwrap_or(d.rib_interval_secs);
    let timestamp_precision = t
        .get(cx, "timestamp_precision")
        .and_then(|f| {
            let s = cx.str(&f)?;
            match s {
                "microsecond" => Some(Precision::Microsecond),
                "second" => Some(Precision::Second),
                _ => {
                    cx.at(&f, format!("unknown timestamp precision '{s}'; expected \"microsecond\" (BGP4MP_ET) or \"second\" (BGP4MP)"));
                    None
                }
            }
        })
        .unwrap_or(d.timestamp_precision);
    let record_keepalives = t.get(cx, "record_keepalives").and_then(|f| cx.bool(&f)).unwrap_or(d.record_keepalives);
    let retain = t.get(cx, "retain_local_days");
    let retain_local_days = retain.as_ref().and_then(|f| cx.int_in(f, 1u32, 36_500, "retain_local_days", " days"));
    let mut destinations: Vec<(usize, DestinationConfig)> = Vec::new();
    for mut dt in t.tables(cx, "destinations") {
        let line = dt.line.unwrap_or(0);
        let path = dt.path.clone();
        let dest = read_destination(cx, &mut dt, &dir);
        dt.finish(cx);
        if let Some(dest) = dest {
            if let Some((l, _)) = destinations.iter().find(|(_, d)| *d == dest) {
                cx.error(Some(line), &path, format!("the same destination is already listed at line {l}"));
            } else {
                destinations.push((line, dest));
            }
        }
    }
    if let (Some(f), true) = (&retain, destinations.is_empty()) {
        cx.at(f, "retain_local_days deletes local files once every destination has them, so it needs at least one [[archive.destinations]]");
    }
    ArchiveConfig {
        enabled,
        dir,
        layout,
        compression,
        updates_interval_secs,
        rib_interval_secs,
        timestamp_precision,
        record_keepalives,
        retain_local_days,
        destinations: destinations.into_iter().map(|(_, d)| d).collect(),
    }
}

pub(super) fn read_destination(
    cx: &mut Reader,
    t: &mut Table<'_, '_>,
    archive_dir: &Path,
) -> Option<DestinationConfig> {
    let kind = t.required(cx, "type").and_then(|f| {
        let s = cx.str(&f)?;
        match s {
            "local" | "s3" => Some(s),
            _ => {
                cx.at(&f, format!("unknown destination type '{s}'; expected \"local\" or \"s3\""));
                None
            }
        }
    });
    // Every key is asked for, so none is "unknown"; those of the other type are refused here.
    let path = t.get(cx, "path");
    let s3_keys = ["bucket", "prefix", "region", "endpoint", "path_style", "credentials_file", "profile"];
    let s3_fields: Vec<Option<Field<'_, '_>>> = s3_keys.iter().map(|k| t.get(cx, k)).collect();
    let access_key = t.get(cx, "access_key");
    let secret_key = t.get(cx, "secret_key");
    match kind? {
        "local" => {
            for f in s3_fields.iter().flatten().chain(access_key.iter()).chain(secret_key.iter()) {
                cx.at(f, "this key is for type = \"s3\" destinations");
            }
            let Some(f) = path else {
                cx.error(t.line, &t.key_path("path"), "missing required key (the directory to copy files to)");
                return None;
            };
            if cx.str(&f)?.is_empty() {
                cx.at(&f, "the destination path must not be empty");
                return None;
            }
            let p = cx.path(&f)?;
            if p.starts_with(archive_dir) || archive_dir.starts_with(&p) {
                cx.at(
                    &f,
                    format!("the destination {} overlaps the archive directory {}", p.display(), archive_dir.display()),
                );
                return None;
            }
            Some(DestinationConfig::Local { path: p })
        }
        _ => {
            if let Some(f) = &path {
                cx.at(f, "this key is for type = \"local\" destinations; an S3 destination takes bucket and prefix");
            }
            let [bucket, prefix, region, endpoint, path_style, credentials_file, profile] =
                <[Option<Field<'_, '_>>; 7]>::try_from(s3_fields).ok()?;
            let bucket = match bucket {
                Some(f) => {
                    let b = cx.str(&f)?;
                    if b.len() < 3 || b.len() > 63 || b.contains('/') {
                        cx.at(&f, format!("'{b}' is not a bucket name (3 to 63 characters, no '/')"));
                        return None;
                    }
                    b.to_string()
                }
                None => {
                    cx.error(t.line, &t.key_path("bucket"), "missing required key");
                    return None;
                }
            };
            let prefix = match &prefix {
                Some(f) => cx.str(f)?.trim_matches('/').to_string(),
                None => String::new(),
            };
            let region = match &region {
                Some(f) => cx.str(f)?.to_string(),
                None => "us-east-1".to_string(),
            };
            let endpoint = match &endpoint {
                Some(f) => {
                    let e = cx.str(f)?;
                    if !(e.starts_with("http://") || e.starts_with("https://")) {
                        cx.at(f, format!("the endpoint must be a URL such as https://s3.example.net or http://127.0.0.1:9000, got '{e}'"));
                        return None;
                    }
                    Some(e.trim_end_matches('/').to_string())
                }
                None => None,
            };
            let path_style = match &path_style {
                Some(f) => cx.bool(f)?,
                None => false,
            };
            let credentials = match (&credentials_file, &access_key, &secret_key) {
                (None, None, None) => {
                    if let Some(f) = &profile {
                        cx.at(f, "profile names a section of credentials_file; set credentials_file too");
                        return None;
                    }
                    S3Credentials::Environment
                }
                (Some(f), None, None) => S3Credentials::File {
                    path: cx.path(f)?,
                    profile: match &profile {
                        Some(p) => Some(cx.str(p)?.to_string()),
                        None => None,
                    },
                },
                (None, Some(a), Some(s)) => {
                    let (a, s) = (cx.str(a)?, cx.str(s)?);
                    S3Credentials::Inline { access_key: a.to_string(), secret_key: s.to_string() }
                }
                (None, Some(f), None) | (None, None, Some(f)) => {
                    cx.at(f, "access_key and secret_key go together (better: leave both out and use the AWS environment variables or credentials_file)");
                    return None;
                }
                (Some(_), Some(f), _) | (Some(_), None, Some(f)) => {
                    cx.at(f, "give either credentials_file or access_key/secret_key, not both");
                    return None;
                }
            };
            Some(DestinationConfig::S3(S3Destination { bucket, prefix, region, endpoint, path_style, credentials }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn archive_destinations() {
        let c = ok(&format!(
            "{MINIMAL}\n[archive]\nenabled = true\ndir = \"/var/mrt\"\nretain_local_days = 30\n\
             [[archive.destinations]]\ntype = \"local\"\npath = \"/mnt/backup/mrt\"\n\
             [[archive.destinations]]\ntype = \"s3\"\nbucket = \"rv-archive\"\nprefix = \"/collectors/rv1/\"\n\
             endpoint = \"http://127.0.0.1:9000/\"\npath_style = true\ncredentials_file = \"/etc/focld/s3\"\nprofile = \"mrt\"\n\
             [[archive.destinations]]\ntype = \"s3\"\nbucket = \"rv-archive-2\"\nregion = \"eu-central-1\"\n"
        ));
        assert_eq!(c.archive.retain_local_days, Some(30));
        assert_eq!(c.archive.destinations.len(), 3);
        assert_eq!(c.archive.destinations[0], DestinationConfig::Local { path: PathBuf::from("/mnt/backup/mrt") });
        let DestinationConfig::S3(s) = &c.archive.destinations[1] else { panic!("s3") };
        assert_eq!(
            (s.bucket.as_str(), s.prefix.as_str(), s.region.as_str()),
            ("rv-archive", "collectors/rv1", "us-east-1")
        );
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s.path_style);
        assert_eq!(
            s.credentials,
            S3Credentials::File { path: PathBuf::from("/etc/focld/s3"), profile: Some("mrt".into()) }
        );
        assert_eq!(c.archive.destinations[1].label(), "s3://rv-archive/collectors/rv1 at http://127.0.0.1:9000");
        let DestinationConfig::S3(s) = &c.archive.destinations[2] else { panic!("s3") };
        assert_eq!(
            (s.region.as_str(), &s.credentials, s.path_style),
            ("eu-central-1", &S3Credentials::Environment, false)
        );

        let inline = ok(&format!(
            "{MINIMAL}\n[[archive.destinations]]\ntype = \"s3\"\nbucket = \"abc\"\naccess_key = \"AK\"\nsecret_key = \"SK\"\n"
        ));
        let DestinationConfig::S3(s) = &inline.archive.destinations[0] else { panic!("s3") };
        assert_eq!(s.credentials, S3Credentials::Inline { access_key: "AK".into(), secret_key: "SK".into() });
        assert!(!format!("{:?}", s.credentials).contains("SK"), "the secret is never printed");

        let e = errors(&format!(
            "{MINIMAL}\n[archive]\ndir = \"/var/mrt\"\nretain_local_days = 0\n\
             [[archive.destinations]]\npath = \"/x\"\n\
             [[archive.destinations]]\ntype = \"ftp\"\n\
             [[archive.destinations]]\ntype = \"local\"\npath = \"mrt-copy\"\nbucket = \"b\"\n\
             [[archive.destinations]]\ntype = \"local\"\npath = \"/var/mrt/copy\"\n\
             [[archive.destinations]]\ntype = \"s3\"\npath = \"/y\"\n\
             [[archive.destinations]]\ntype = \"s3\"\nbucket = \"abc\"\nendpoint = \"127.0.0.1:9000\"\n\
             [[archive.destinations]]\ntype = \"s3\"\nbucket = \"abc\"\naccess_key = \"AK\"\n\
             [[archive.destinations]]\ntype = \"s3\"\nbucket = \"abc\"\ncredentials_file = \"/c\"\nsecret_key = \"SK\"\n\
             [[archive.destinations]]\ntype = \"local\"\npath = \"/z\"\nmode = 1\n\
             [[archive.destinations]]\ntype = \"local\"\npath = \"/z\"\n"
        ));
        let want = [
            "focl.toml:11: archive.retain_local_days: retain_local_days must be from 1 to 36500 days, got 0",
            "focl.toml:12: archive.destinations[0].type: missing required key",
            "focl.toml:15: archive.destinations[1].type: unknown destination type 'ftp'",
            "focl.toml:19: archive.destinations[2].bucket: this key is for type = \"s3\" destinations",
            "focl.toml:22: archive.destinations[3].path: the destination /var/mrt/copy overlaps the archive directory /var/mrt",
            "focl.toml:25: archive.destinations[4].path: this key is for type = \"local\" destinations",
            "focl.toml:23: archive.destinations[4].bucket: missing required key",
            "focl.toml:29: archive.destinations[5].endpoint: the endpoint must be a URL",
            "focl.toml:33: archive.destinations[6].access_key: access_key and secret_key go together",
            "focl.toml:38: archive.destinations[7].secret_key: give either credentials_file or access_key/secret_key",
            "focl.toml:42: archive.destinations[8].mode: unknown key 'mode'",
            "focl.toml:43: archive.destinations[9]: the same destination is already listed at line 39",
        ];
        for w in want {
            assert!(e.iter().any(|e| e.starts_with(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
        let e = errors(&format!("{MINIMAL}\n[archive]\nretain_local_days = 7\n"));
        assert!(e[0].contains("needs at least one [[archive.destinations]]"), "{e:?}");
    }

    #[test]
    fn archive_keys_defaults_and_errors() {
        let c = ok(&format!(
            "{MINIMAL}\n[archive]\nenabled = true\ndir = \"/tmp/a\"\nlayout = \"ris\"\nupdates_interval_secs = 300\nrib_interval_secs = 0\ntimestamp_precision = \"second\"\nrecord_keepalives = true\n"
        ));
        assert!(c.archive.enabled);
        assert_eq!(c.archive.compression, Compression::Gzip, "the RIS layout defaults to gzip");
        assert_eq!((c.archive.updates_interval_secs, c.archive.rib_interval_secs), (300, 0));
        assert_eq!(c.archive.timestamp_precision, Precision::Second);
        assert!(c.archive.record_keepalives);
        let e = errors(&format!(
            "{MINIMAL}\n[archive]\nlayout = \"bgpstream\"\ncompression = \"zstd\"\nupdates_interval_secs = 700\nrib_interval_secs = 30\n"
        ));
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("focl.toml:10: archive.layout: unknown layout 'bgpstream'"), "{e:?}");
        assert!(e[1].starts_with("focl.toml:11: archive.compression: unknown compression 'zstd'"), "{e:?}");
        assert!(
            e[2].starts_with("focl.toml:12: archive.updates_interval_secs: the interval must divide a day"),
            "{e:?}"
        );
        assert!(e[3].starts_with("focl.toml:13: archive.rib_interval_secs: the interval must divide a day"), "{e:?}");
    }
}
