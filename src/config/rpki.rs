//! `[rpki]`, its `[[rpki.caches]]` (RTR caches, RFC 8210) and `[[rpki.files]]` (VRP files in
//! the rpki-client JSON format).

use super::model::{RpkiConfig, RtrCacheConfig, VrpFileConfig, DEFAULT_RTR_PREFERENCE, RTR_PORT};
use super::peers::read_password;
use super::reader::{Reader, Table};

pub(super) fn read_rpki(cx: &mut Reader, t: &mut Table<'_, '_>) -> RpkiConfig {
    let mut caches: Vec<(usize, RtrCacheConfig)> = Vec::new();
    for mut ct in t.tables(cx, "caches") {
        let (line, path) = (ct.line.unwrap_or(0), ct.path.clone());
        let cache = read_cache(cx, &mut ct);
        ct.finish(cx);
        if let Some(c) = cache {
            if let Some((l, _)) = caches.iter().find(|(_, o)| o.address == c.address && o.port == c.port) {
                cx.error(Some(line), &path, format!("the cache {} is already listed at line {l}", c.label()));
            } else {
                caches.push((line, c));
            }
        }
    }
    let mut files = Vec::new();
    for mut ft in t.tables(cx, "files") {
        if let Some(f) = ft.required(cx, "path") {
            if cx.str(&f).is_some_and(str::is_empty) {
                cx.at(&f, "the VRP file path must not be empty");
            } else if let Some(path) = cx.path(&f) {
                files.push(VrpFileConfig { path });
            }
        }
        ft.finish(cx);
    }
    RpkiConfig { caches: caches.into_iter().map(|(_, c)| c).collect(), files }
}

fn read_cache(cx: &mut Reader, t: &mut Table<'_, '_>) -> Option<RtrCacheConfig> {
    let address = t.required(cx, "address").and_then(|f| cx.unicast_addr(&f, "cache address"));
    let port = t.get(cx, "port").and_then(|f| cx.int_in(&f, 1, u16::MAX, "port", "")).unwrap_or(RTR_PORT);
    let preference = t
        .get(cx, "preference")
        .and_then(|f| cx.int_in(&f, 0, u8::MAX, "preference", ""))
        .unwrap_or(DEFAULT_RTR_PREFERENCE);
    let label = address.map(|a| a.to_string()).unwrap_or_default();
    let password = t.get(cx, "password").and_then(|f| read_password(cx, &f, &format!("cache {label}")));
    // RTR version 2 (ASPA) is opt-in: servers disagree on its ASPA PDU layout (a cache that
    // sends an older one gets Corrupt Data and version 1).
    let version = |cx: &mut Reader, name: &'static str, t: &mut Table<'_, '_>, default: u8| {
        t.get(cx, name).and_then(|f| cx.int_in(&f, 0u8, 2, name, " (RTR versions 0, 1 and 2)")).unwrap_or(default)
    };
    let min_version = version(cx, "min_version", t, 0);
    let max_field = t.get(cx, "max_version");
    let max_version = match &max_field {
        Some(f) => cx.int_in(f, 0u8, 2, "max_version", " (RTR versions 0, 1 and 2)").unwrap_or(1),
        None => 1,
    };
    if min_version > max_version {
        if let Some(f) = &max_field {
            cx.at(f, format!("max_version {max_version} is below min_version {min_version}"));
        }
        return None;
    }
    // RFC 8210 §6 ranges.
    let refresh_secs = t.get(cx, "refresh_secs").and_then(|f| cx.int_in(&f, 1u32, 86_400, "refresh_secs", " seconds"));
    let retry_secs = t.get(cx, "retry_secs").and_then(|f| cx.int_in(&f, 1u32, 7_200, "retry_secs", " seconds"));
    let expire_secs = t.get(cx, "expire_secs").and_then(|f| cx.int_in(&f, 600u32, 172_800, "expire_secs", " seconds"));
    Some(RtrCacheConfig {
        address: address?,
        port,
        preference,
        password,
        min_version,
        max_version,
        refresh_secs,
        retry_secs,
        expire_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn caches_and_files_with_defaults() {
        let c = ok(&format!(
            "{MINIMAL}\n[[rpki.caches]]\naddress = \"127.0.0.1\"\nport = 8282\n\n[[rpki.caches]]\naddress = \"::1\"\npreference = 200\nmax_version = 0\nrefresh_secs = 30\n\n[[rpki.files]]\npath = \"/etc/focld/vrps.json\"\n"
        ));
        let [a, b] = &c.rpki.caches[..] else { panic!("two caches: {:?}", c.rpki) };
        assert_eq!((a.label(), a.preference, a.min_version, a.max_version), ("127.0.0.1:8282".into(), 100, 0, 1));
        assert_eq!((b.label(), b.preference, b.max_version, b.refresh_secs), ("[::1]:323".into(), 200, 0, Some(30)));
        assert_eq!(c.rpki.files[0].path, std::path::PathBuf::from("/etc/focld/vrps.json"));
    }

    #[test]
    fn bad_cache_settings_name_their_key() {
        let e = errors(&format!(
            "{MINIMAL}\n[[rpki.caches]]\nport = 8282\n\n[[rpki.caches]]\naddress = \"127.0.0.1\"\nmax_version = 3\nexpire_secs = 60\n\n[[rpki.caches]]\naddress = \"127.0.0.2\"\nmin_version = 1\nmax_version = 0\n\n[[rpki.caches]]\naddress = \"127.0.0.3\"\nrefresh = 5\n\n[[rpki.files]]\n"
        ));
        let want = [
            "focl.toml:9: rpki.caches[0].address: missing required key",
            "focl.toml:14: rpki.caches[1].max_version: max_version must be from 0 to 2 (RTR versions 0, 1 and 2), got 3",
            "focl.toml:15: rpki.caches[1].expire_secs: expire_secs must be from 600 to 172800 seconds, got 60",
            "focl.toml:20: rpki.caches[2].max_version: max_version 0 is below min_version 1",
            "focl.toml:24: rpki.caches[3].refresh: unknown key 'refresh'",
            "focl.toml:26: rpki.files[0].path: missing required key",
        ];
        for w in want {
            assert!(e.iter().any(|e| e.starts_with(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }
}
