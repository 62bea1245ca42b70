//! Configuration: the TOML file `focld --config` names, turned into a typed [`Config`] with every
//! default filled in and every rule checked.
//!
//! Read by focld at start-up (and by `focld -n`, which only checks) and by focl for the control
//! socket path. It produces either a [`Config`] the rest of the daemon can trust without checking
//! again, or the complete list of [`ConfigError`]s, each naming the file, the line and the key
//! path (`peers[1].hold_time_secs`), so an operator fixes the file in one pass.
//!
//! The file is read with `toml::de::DeTable`, which keeps the byte span of every key and value,
//! and walked by hand rather than through serde: serde stops at the first error and loses lines.
//! Each table is read through a [`Table`] that records which keys were asked for; whatever is
//! left over is an unknown key. Adding a key is a field in `model.rs` (which the printer
//! derives its output from) and one line in its section's `read_*` function;
//! `tests/packaging.rs` fails until the man page, `tests/config/every-key.toml` and the
//! printer's output all have it.
//!
//! Keys and defaults follow the configuration reference of the README.
//!
//! Files: `model.rs` (the types, defaults and constants), `reader.rs` (the error-collecting
//! walker: `Reader`, `Table`, `Field`, unknown-key suggestions), one reader per section
//! (`global.rs`, `peers.rs`, `prefixes.rs`, `archive.rs`) and `printer.rs`
//! ([`Config::effective_toml`]).

mod archive;
mod bmp;
mod global;
mod graceful;
mod model;
mod peers;
mod policy;
mod prefixes;
mod printer;
mod reader;
mod rpki;
mod sources;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

pub use bmp::{BmpConfig, BmpStationConfig, BmpView, BMP_CONNECT_RETRY_CEILING_SECS};
pub use graceful::{GracefulConfig, GracefulMode};
pub use model::*;
pub use reader::ConfigError;

use archive::read_archive;
use bmp::read_bmp;
use global::read_global;
use peers::{check_peers_unique, read_peer};
use prefixes::{check_prefixes_unique, read_prefix};
use reader::{Reader, Table};
use rpki::read_rpki;
use sources::read_sources;

/// The directory relative paths are taken from when none is given: the current one.
fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

/// Read and check the file at `path`; relative paths (the file's own, and every path key in
/// it) are taken from the current directory.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load_in(path, &current_dir())
}

/// `load` with relative paths taken from `base` (a reload uses the directory focld was
/// started in, kept in `Config::base_dir`).
pub fn load_in(path: &Path, base: &Path) -> Result<Config, Vec<ConfigError>> {
    let path = &base.join(path);
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut config = parse_in(&text, path, base)?;
            let inline = config.archive.destinations.iter().any(|d| {
                matches!(d, DestinationConfig::S3(S3Destination { credentials: S3Credentials::Inline { .. }, .. }))
            });
            if inline {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0);
                if mode & 0o004 != 0 {
                    config.warnings.push(format!(
                        "{}: holds an S3 secret_key but is readable by every user (mode {:o}); chmod o-r it, or use credentials_file or the AWS environment variables",
                        path.display(),
                        mode & 0o777
                    ));
                }
            }
            Ok(config)
        }
        Err(e) => Err(vec![ConfigError {
            file: path.display().to_string(),
            line: None,
            key: String::new(),
            message: e.to_string(),
        }]),
    }
}

/// Check `text` as if read from `file` (which only appears in messages and `Config::file`),
/// relative paths taken from the current directory.
pub fn parse(text: &str, file: &Path) -> Result<Config, Vec<ConfigError>> {
    parse_in(text, file, &current_dir())
}

/// `parse` with relative paths taken from `base`.
pub fn parse_in(text: &str, file: &Path, base: &Path) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Reader::new(text, file, base);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // The tree is only a best guess after a syntax error; checking it would add noise.
        for e in &syntax {
            let line = e.span().map(|s| cx.line_of(s.start));
            let mut message = format!("syntax error: {}", e.message());
            if let Some(snippet) = e.span().and_then(|s| text.get(s)) {
                if !snippet.is_empty() && snippet.len() <= 40 && !snippet.contains('\n') {
                    message.push_str(&format!(" (at `{snippet}`)"));
                }
            }
            cx.error(line, "", message);
        }
        return Err(cx.into_errors());
    }
    let config = read_config(&mut cx, root.get_ref(), file);
    if cx.errors.is_empty() {
        Ok(config)
    } else {
        Err(cx.into_errors())
    }
}

// ---------------------------------------------------------------------------------------------
// The configuration's tables. Each `read_*` asks for its keys in README order (the order the
// "known keys" list shows) and applies the defaults.

fn read_config(cx: &mut Reader, root: &DeTable<'_>, file: &Path) -> Config {
    let mut top = Table::new(String::new(), None, Some(root));

    let mut global_table = top.table(cx, "global");
    let global = read_global(cx, &mut global_table);
    top.global_keys = global_table.known.clone();
    global_table.finish(cx);

    let mut peers = Vec::new();
    let mut chains = Vec::new();
    for (i, mut t) in top.tables(cx, "peers").into_iter().enumerate() {
        let peer = read_peer(cx, &mut t, &global);
        let chain = policy::read_peer_chains(cx, &mut t);
        t.finish(cx);
        if let Some(mut peer) = peer {
            (peer.config.import, peer.config.export) = (chain.import_names(), chain.export_names());
            peer.config.route_server = chain.route_server;
            let mut chain = chain;
            chain.name = peer.config.name.clone();
            chains.push((peer.config.address, chain));
            peers.push((i, peer));
        }
    }
    check_peers_unique(cx, &peers);

    let mut prefixes = Vec::new();
    for (i, mut t) in top.tables(cx, "prefixes").into_iter().enumerate() {
        let prefix = read_prefix(cx, &mut t);
        t.finish(cx);
        if let Some(prefix) = prefix {
            prefixes.push((i, prefix));
        }
    }
    check_prefixes_unique(cx, &prefixes);

    let peer_configs: Vec<PeerConfig> = peers.iter().map(|(_, p)| p.config.clone()).collect();
    let sources = read_sources(cx, &mut top, &peer_configs);

    let mut archive_table = top.table(cx, "archive");
    let archive = read_archive(cx, &mut archive_table);
    archive_table.finish(cx);

    let mut rpki_table = top.table(cx, "rpki");
    let rpki = read_rpki(cx, &mut rpki_table);
    rpki_table.finish(cx);

    let mut bmp_table = top.table(cx, "bmp");
    let bmp = read_bmp(cx, &mut bmp_table, &peer_configs);
    bmp_table.finish(cx);
    let policy = policy::read_policy(cx, &mut top, &chains);
    // RFC 7999: a blackhole prefix without a next hop goes to the discard address.
    for (_, p) in prefixes.iter_mut().filter(|(_, p)| p.config.blackhole && p.config.next_hop.is_none()) {
        p.config.next_hop = Some(match p.config.network.family() {
            crate::prefix::Family::Ipv4Unicast => std::net::IpAddr::V4(policy.engine.blackhole.discard_v4),
            crate::prefix::Family::Ipv6Unicast => std::net::IpAddr::V6(policy.engine.blackhole.discard_v6),
        });
    }

    top.finish(cx);

    // Only returned when no error was recorded, so the placeholders for missing required keys
    // (AS 0, router ID 0.0.0.0) never leave this module.
    Config {
        file: file.to_path_buf(),
        base_dir: cx.base.clone(),
        global: Global {
            asn: global.asn.unwrap_or(0),
            router_id: global.router_id.unwrap_or(Ipv4Addr::UNSPECIFIED),
            listen: global.listen,
            listen_addr: global.listen_addr,
            control_socket: global.control_socket,
            log_level: global.log_level,
            log_file: global.log_file,
            user: global.user,
            group: global.group,
        },
        peers: peers.into_iter().map(|(_, p)| p.config).collect(),
        prefixes: prefixes.into_iter().map(|(_, p)| p.config).collect(),
        sources,
        archive,
        rpki,
        bmp,
        sets: policy.sets,
        policy: policy.policy,
        blackhole: policy.blackhole,
        policies: std::sync::Arc::new(policy.engine),
        warnings: Vec::new(),
    }
}

/// What the tests of every file share: a minimal valid file and helpers that parse it.
#[cfg(test)]
mod test_support {
    use super::*;

    pub(super) const FILE: &str = "focl.toml";

    /// The smallest valid file: the two required global keys and one peer.
    pub(super) const MINIMAL: &str = r#"[global]
asn = 65001
router_id = "192.0.2.1"

[[peers]]
address = "192.0.2.2"
remote_as = 65002
"#;

    pub(super) fn ok(text: &str) -> Config {
        match parse(text, Path::new(FILE)) {
            Ok(c) => c,
            Err(errors) => panic!("unexpected errors: {errors:#?}"),
        }
    }

    /// The errors of `text`, as the lines focld prints.
    pub(super) fn errors(text: &str) -> Vec<String> {
        match parse(text, Path::new(FILE)) {
            Ok(c) => panic!("expected errors, got {c:#?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    /// MINIMAL with `extra` appended to the peer.
    pub(super) fn with_peer_keys(extra: &str) -> String {
        format!("{MINIMAL}{extra}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::mrt::file::{Compression, Layout};
    use crate::mrt::record::Precision;
    use log::LevelFilter;
    use std::path::PathBuf;

    #[test]
    fn minimal_config_gets_every_default() {
        let c = ok(MINIMAL);
        assert_eq!(c.file, PathBuf::from(FILE));
        assert_eq!(
            c.global,
            Global {
                asn: 65001,
                router_id: Ipv4Addr::new(192, 0, 2, 1),
                listen: true,
                listen_addr: vec!["0.0.0.0:179".parse().unwrap()],
                control_socket: PathBuf::from("/tmp/focld.sock"),
                log_level: LevelFilter::Info,
                log_file: None,
                user: None,
                group: None,
            }
        );
        assert_eq!(
            c.peers,
            vec![PeerConfig {
                name: None,
                address: "192.0.2.2".parse().unwrap(),
                remote_as: 65002,
                local_as: 65001,
                remote_port: 179,
                hold_time_secs: 90,
                connect_retry_secs: 5,
                passive: false,
                password: None,
                route_refresh: true,
                enhanced_route_refresh: true,
                extended_messages: true,
                role: None,
                strict_role: false,
                add_path: AddPathMode::Off,
                max_paths_per_prefix: 8,
                local_address: None,
                max_prefixes: None,
                max_prefixes_restart_secs: None,
                max_prefixes_warning_only: false,
                send_hold_time_secs: 0,
                multihop: 1,
                ttl_security: false,
                graceful: GracefulConfig::default(),
                import: Vec::new(),
                export: Vec::new(),
                route_server: false,
            }]
        );
        assert!(c.prefixes.is_empty());
        assert_eq!(c.archive, ArchiveConfig::default());
        assert_eq!(c.archive.dir, PathBuf::from("/var/lib/focld/mrt"));
        assert_eq!((c.archive.layout, c.archive.compression), (Layout::RouteViews, Compression::Bzip2));
        assert_eq!((c.archive.updates_interval_secs, c.archive.rib_interval_secs), (900, 7200));
        assert_eq!(c.archive.timestamp_precision, Precision::Microsecond);
        assert!(!c.archive.record_keepalives);
        assert_eq!(c.peers[0].label(), "192.0.2.2");
        assert!(!c.peers[0].is_ibgp());
    }

    /// The "Basic Configuration" of the README, verbatim.
    const README_BASIC: &str = r#"[global]
asn = 65001
router_id = "192.0.2.1"
listen = true
listen_addr = "0.0.0.0:179"
control_socket = "/tmp/focld.sock"
log_level = "info"

[[peers]]
name = "upstream"
address = "192.0.2.2"
remote_as = 65002
remote_port = 179
hold_time_secs = 90
password = "secretpassword"  # Optional: TCP-MD5 authentication

[[prefixes]]
network = "203.0.113.0/24"
next_hop = "192.0.2.1"

[archive]
enabled = false
"#;

    #[test]
    fn readme_basic_example_parses() {
        let c = ok(README_BASIC);
        assert_eq!(c.global.asn, 65001);
        assert_eq!(c.global.router_id, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers[0].label(), "192.0.2.2 (upstream)");
        assert_eq!(c.peers[0].password.as_deref(), Some("secretpassword"));
        assert_eq!(
            c.prefixes,
            vec![PrefixConfig {
                network: "203.0.113.0/24".parse().unwrap(),
                next_hop: Some("192.0.2.1".parse().unwrap()),
                blackhole: false,
            }]
        );
        assert!(!c.archive.enabled);
    }

    #[test]
    fn missing_required_keys() {
        // A missing table has no line; a missing key points at its table's header.
        assert_eq!(
            errors("[[peers]]\naddress = \"192.0.2.2\"\n"),
            vec![
                "focl.toml: global.asn: missing required key",
                "focl.toml: global.router_id: missing required key",
                "focl.toml:1: peers[0].remote_as: missing required key",
            ]
        );
        assert_eq!(
            errors("[global]\nasn = 65001\n\n[[peers]]\nremote_as = 1\n\n[[prefixes]]\n"),
            vec![
                "focl.toml:1: global.router_id: missing required key",
                "focl.toml:4: peers[0].address: missing required key",
                "focl.toml:7: prefixes[0].network: missing required key",
            ]
        );
    }

    #[test]
    fn unknown_top_level_tables_and_keys() {
        assert_eq!(
            errors(&format!("{MINIMAL}\n[bgpd]\nx = 1\n")),
            vec![
                "focl.toml:9: bgpd: unknown table 'bgpd'; known tables: global, peers, \
                 prefixes, sources, archive, rpki, bmp, sets, policy, blackhole"
            ]
        );
        assert_eq!(
            errors(&format!("{MINIMAL}\n[[peer]]\nx = 1\n")),
            vec![
                "focl.toml:9: peer: unknown table 'peer' (did you mean 'peers'?); known \
                 tables: global, peers, prefixes, sources, archive, rpki, bmp, sets, policy, blackhole"
            ]
        );
        assert_eq!(
            errors(&format!("extra = [1, 2]\n{MINIMAL}")),
            vec![
                "focl.toml:1: extra: unknown key 'extra'; known keys: global, peers, prefixes, sources, \
                 archive, rpki, bmp, sets, policy, blackhole"
            ]
        );
        assert_eq!(
            errors(&format!("log_level = \"debug\"\n{MINIMAL}")),
            vec![
                "focl.toml:1: log_level: unknown key 'log_level' (it belongs under \
                 [global]); known keys: global, peers, prefixes, sources, archive, rpki, bmp, sets, policy, blackhole"
            ]
        );
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            errors(&MINIMAL.replace("asn = 65001", "asn = \"65001\"")),
            vec![
                "focl.toml:2: global.asn: expected an integer, got a string (write 65001 \
                 without quotes)"
            ]
        );
        assert_eq!(
            errors(&with_peer_keys("passive = \"yes\"\nremote_port = 1.5")),
            vec![
                "focl.toml:8: peers[0].passive: expected a boolean (true or false), got a string",
                "focl.toml:9: peers[0].remote_port: expected an integer, got a float",
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("[global]", "global = 1\n[x]")),
            vec![
                "focl.toml:1: global: expected a table ([global]), got an integer",
                "focl.toml:2: x: unknown table 'x'; known tables: global, peers, prefixes, sources, \
                 archive, rpki, bmp, sets, policy, blackhole",
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("[[peers]]", "[peers]")),
            vec!["focl.toml:5: peers: expected an array of tables ([[peers]]), got a table"]
        );
    }

    #[test]
    fn secrets_in_a_world_readable_config_are_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("focl-secret-{}.toml", std::process::id()));
        let text = format!(
            "{MINIMAL}\n[[archive.destinations]]\ntype = \"s3\"\nbucket = \"abc\"\naccess_key = \"AK\"\nsecret_key = \"SK\"\n"
        );
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("readable by every user (mode 644)"), "{:?}", c.warnings);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(load(&path).unwrap().warnings.is_empty());
        std::fs::write(&path, MINIMAL).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&path).unwrap().warnings.is_empty(), "no secrets, no warning");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let text = r#"[global]
asn = 0
router_id = "0.0.0.0"
log_level = "loud"

[[peers]]
address = "192.0.2.2"
hold_time_secs = 2
hold_time = 3

[[peers]]
address = "192.0.2.2"
remote_as = 65002
password = ""

[[prefixes]]
network = "10.0.0.1/8"

[bogus]
"#;
        assert_eq!(
            errors(text),
            vec![
                "focl.toml:2: global.asn: AS number 0 is reserved and cannot be used (RFC 7607)",
                "focl.toml:3: global.router_id: router ID must not be 0.0.0.0 (the BGP \
                 Identifier is non-zero, RFC 6286 §2.1)",
                "focl.toml:4: global.log_level: unknown log level 'loud'; expected off, error, \
                 warn, info, debug or trace",
                "focl.toml:6: peers[0].remote_as: missing required key",
                "focl.toml:8: peers[0].hold_time_secs: hold time must be 0 or at least 3 seconds \
                 (RFC 4271 §4.2), got 2",
                "focl.toml:9: peers[0].hold_time: unknown key 'hold_time' (did you mean \
                 'hold_time_secs'?); known keys: name, address, remote_as, local_as, \
                 remote_port, hold_time_secs, connect_retry_secs, passive, password, \
                 route_refresh, enhanced_route_refresh, extended_messages, role, strict_role, add_path, max_paths_per_prefix, local_address, max_prefixes, max_prefixes_restart_secs, \
                 max_prefixes_warning_only, send_hold_time_secs, multihop, ttl_security, graceful_restart, \
                 restart_time_secs, graceful_notification, long_lived_stale_secs, max_restart_time_secs, max_stale_secs, import, export, route_server",
                "focl.toml:12: peers[1].address: peer address 192.0.2.2 is already used by \
                 peers[0] (line 7)",
                "focl.toml:14: peers[1].password: TCP-MD5 password of peer 192.0.2.2 is empty; \
                 set 1 to 80 bytes, or remove the key to run without TCP-MD5",
                "focl.toml:17: prefixes[0].network: host bits are set past the prefix length \
                 (did you mean 10.0.0.0/8?)",
                "focl.toml:19: bogus: unknown table 'bogus'; known tables: global, peers, \
                 prefixes, sources, archive, rpki, bmp, sets, policy, blackhole",
            ]
        );
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let text = "[global]\nasn = 65001\nasn = 65002\nrouter_id = \"192.0.2.1\n";
        let errs = parse(text, Path::new(FILE)).unwrap_err();
        assert!(!errs.is_empty());
        assert_eq!(errs[0].line, Some(3));
        assert_eq!(errs[0].key, "");
        assert_eq!(errs[0].to_string(), "focl.toml:3: syntax error: duplicate key (at `asn`)");
        assert!(errs.iter().all(|e| e.file == FILE && e.line.is_some()));
    }

    #[test]
    fn load_reports_unreadable_files() {
        let path = Path::new("/nonexistent/focl-test/focl.toml");
        let errs = load(path).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].file, "/nonexistent/focl-test/focl.toml");
        assert_eq!((errs[0].line, errs[0].key.as_str()), (None, ""));
        assert!(errs[0].to_string().starts_with("/nonexistent/focl-test/focl.toml: "));
    }

    /// Golden files: each `tests/config/NAME.toml` is checked and the result compared with
    /// `NAME.expected` ("ok", or one error a line). `FOCL_BLESS=1` rewrites the expectations.
    #[test]
    fn golden_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config");
        let entries = std::fs::read_dir(&dir).unwrap();
        let mut seen = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let got = match parse(&text, Path::new(&name)) {
                Ok(_) => "ok\n".to_string(),
                Err(errs) => errs.iter().map(|e| format!("{e}\n")).collect(),
            };
            let expected_path = path.with_extension("expected");
            if std::env::var_os("FOCL_BLESS").is_some() {
                std::fs::write(&expected_path, &got).unwrap();
            }
            let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
            assert_eq!(got, want, "golden file {name}");
            seen += 1;
        }
        assert!(seen > 0, "no golden files in {}", dir.display());
    }

    #[test]
    fn relative_paths_are_taken_from_the_directory_focld_was_started_in() {
        let text = format!(
            "{}control_socket = \"run/focld.sock\"\nlog_file = \"log/focld.log\"\n{}\n[archive]\ndir = \"mrt\"\n\
             [[archive.destinations]]\ntype = \"local\"\npath = \"copy\"\n\
             [[archive.destinations]]\ntype = \"s3\"\nbucket = \"mrt-archive\"\ncredentials_file = \"aws/creds\"\n",
            &MINIMAL[..MINIMAL.find("[[peers]]").unwrap_or(MINIMAL.len())],
            &MINIMAL[MINIMAL.find("[[peers]]").unwrap_or(MINIMAL.len())..]
        );
        let c = parse_in(&text, Path::new("focl.toml"), Path::new("/srv/focld")).expect("valid");
        assert_eq!(c.global.control_socket, PathBuf::from("/srv/focld/run/focld.sock"));
        assert_eq!(c.global.log_file, Some(PathBuf::from("/srv/focld/log/focld.log")));
        assert_eq!(c.archive.dir, PathBuf::from("/srv/focld/mrt"));
        assert_eq!(c.archive.destinations[0], DestinationConfig::Local { path: PathBuf::from("/srv/focld/copy") });
        let DestinationConfig::S3(s) = &c.archive.destinations[1] else { panic!("s3") };
        assert_eq!(s.credentials, S3Credentials::File { path: PathBuf::from("/srv/focld/aws/creds"), profile: None });
        assert_eq!(c.base_dir, PathBuf::from("/srv/focld"));
        // Absolute paths stay as they are.
        let c = parse_in(MINIMAL, Path::new("focl.toml"), Path::new("/srv/focld")).expect("valid");
        assert_eq!(c.global.control_socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
    }
}
