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
//! left over is an unknown key, so adding a key is one line in the `read_*` function.
//!
//! Keys and defaults follow the configuration reference of the README.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use log::LevelFilter;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::mrt::file::{Compression, Layout};
use crate::mrt::record::Precision;
use crate::prefix::{Family, Prefix};

/// Where focld listens when `listen_addr` is not set: every IPv4 address, the BGP port.
pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:179";
/// Where the control socket lives when `control_socket` is not set.
pub const DEFAULT_CONTROL_SOCKET: &str = "/tmp/focld.sock";
/// BGP's well-known TCP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;
/// RFC 4271 §10 suggests 90 seconds.
pub const DEFAULT_HOLD_TIME_SECS: u16 = 90;
/// Smallest non-zero hold time a speaker may use or accept (RFC 4271 §4.2).
pub const MIN_HOLD_TIME_SECS: u16 = 3;
/// RFC 4271 §10 suggests 120 seconds; a collector wants a lost session back sooner, and the
/// IdleHold back-off keeps a flapping peer from being hammered.
pub const DEFAULT_CONNECT_RETRY_SECS: u16 = 5;
/// Longest TCP-MD5 key the kernel takes (`TCP_MD5SIG_MAXKEYLEN`, RFC 2385).
pub const MAX_PASSWORD_BYTES: usize = 80;

/// The whole configuration, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was read from, for messages and reloads.
    pub file: PathBuf,
    pub global: Global,
    pub peers: Vec<PeerConfig>,
    pub prefixes: Vec<PrefixConfig>,
    pub archive: ArchiveConfig,
    /// Things worth saying that do not stop focld (e.g. secrets in a world-readable file).
    pub warnings: Vec<String>,
}

/// `[global]`: who this speaker is and where it listens.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Local AS number, 4-octet (RFC 6793); never 0 (RFC 7607).
    pub asn: u32,
    /// BGP Identifier (RFC 4271 §4.2); never 0.0.0.0 (RFC 6286 §2.1).
    pub router_id: Ipv4Addr,
    /// Accept incoming connections.
    pub listen: bool,
    /// Addresses to listen on, no duplicates; a string or an array of strings in the file.
    pub listen_addr: Vec<SocketAddr>,
    /// Unix socket focl talks to.
    pub control_socket: PathBuf,
    pub log_level: LevelFilter,
    /// Log to this file (reopened on SIGHUP) instead of standard error.
    pub log_file: Option<PathBuf>,
    /// Drop root privileges to this user and group once the sockets are bound.
    pub user: Option<String>,
    pub group: Option<String>,
}

/// One `[[peers]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerConfig {
    /// Optional short name; unique, and never an IP address so `focl peer show X` is unambiguous.
    pub name: Option<String>,
    /// The peer's address; unique among peers.
    pub address: IpAddr,
    pub remote_as: u32,
    /// The AS this speaker claims towards the peer; `global.asn` unless overridden.
    pub local_as: u32,
    pub remote_port: u16,
    /// Proposed hold time: 0 (no keepalives) or at least 3 seconds (RFC 4271 §4.2).
    pub hold_time_secs: u16,
    pub connect_retry_secs: u16,
    /// Never connect out; wait for the peer.
    pub passive: bool,
    /// TCP-MD5 key (RFC 2385), 1 to 80 bytes.
    pub password: Option<String>,
    /// Advertise the route refresh capability (RFC 2918).
    pub route_refresh: bool,
    /// Source address for outgoing connections. When not set in the file: the first
    /// `listen_addr` of the peer's family that is not a wildcard, else `None` (the kernel picks).
    pub local_address: Option<IpAddr>,
    /// Most prefixes (both families) accepted from the peer; over it, Cease / Maximum Number
    /// of Prefixes Reached (RFC 4486) and the peer stays down. `None`: no limit.
    pub max_prefixes: Option<u32>,
    /// Start again this long after a max-prefix shutdown; `None`: only by `focl peer reset`.
    pub max_prefixes_restart_secs: Option<u32>,
    /// Only log when the limit is passed.
    pub max_prefixes_warning_only: bool,
    /// RFC 9687 send hold time: a peer that takes no data for this long while focld has some
    /// to send is dropped. 0: the RFC's default, max(8 minutes, 2 x the hold time).
    pub send_hold_time_secs: u32,
}

impl PeerConfig {
    /// How logs and messages name the peer: "192.0.2.2 (upstream)" or "192.0.2.2".
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} ({})", self.address, name),
            None => self.address.to_string(),
        }
    }

    /// Internal BGP: both ends in the same AS (RFC 4271 §1.1).
    pub fn is_ibgp(&self) -> bool {
        self.remote_as == self.local_as
    }
}

/// One `[[prefixes]]` entry: a static route to announce.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixConfig {
    pub network: Prefix,
    /// Same family as `network`; `None` lets the session pick (its local address).
    pub next_hop: Option<IpAddr>,
}

/// `[archive]`: MRT archiving. The table is optional.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveConfig {
    pub enabled: bool,
    /// Root of the archive; files go below it in the layout's directories.
    pub dir: PathBuf,
    pub layout: Layout,
    pub compression: Compression,
    /// Update files rotate at multiples of this from midnight UTC.
    pub updates_interval_secs: u64,
    /// RIB snapshots at multiples of this from midnight UTC; 0 for none.
    pub rib_interval_secs: u64,
    pub timestamp_precision: Precision,
    pub record_keepalives: bool,
    /// Delete a finished local file this many days after it was finished, once every
    /// destination has confirmed it; `None` keeps files forever.
    pub retain_local_days: Option<u32>,
    /// `[[archive.destinations]]`: where finished files are replicated.
    pub destinations: Vec<DestinationConfig>,
}

/// One `[[archive.destinations]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationConfig {
    /// A directory, typically another disk or a network mount.
    Local {
        path: PathBuf,
    },
    S3(S3Destination),
}

/// An S3 or S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Destination {
    pub bucket: String,
    /// Key prefix without leading or trailing '/'; may be empty.
    pub prefix: String,
    pub region: String,
    /// `http(s)://host[:port]` of an S3-compatible store; `None` for AWS.
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub credentials: S3Credentials,
}

/// Where an S3 destination's keys come from.
#[derive(Clone, PartialEq, Eq)]
pub enum S3Credentials {
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) of focld's environment.
    Environment,
    /// An AWS credentials file (INI) and its profile (default "default").
    File { path: PathBuf, profile: Option<String> },
    /// `access_key` / `secret_key` in the config itself.
    Inline { access_key: String, secret_key: String },
}

impl fmt::Debug for S3Credentials {
    // Never print a secret, not even in a debug dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Credentials::Environment => f.write_str("Environment"),
            S3Credentials::File { path, profile } => write!(f, "File({}, {:?})", path.display(), profile),
            S3Credentials::Inline { access_key, .. } => write!(f, "Inline({access_key}, <secret>)"),
        }
    }
}

impl DestinationConfig {
    /// How the destination is named in logs and `focl archive status`.
    pub fn label(&self) -> String {
        match self {
            DestinationConfig::Local { path } => format!("local:{}", path.display()),
            DestinationConfig::S3(s) => {
                let host = s.endpoint.as_deref().map(|e| format!(" at {e}")).unwrap_or_default();
                if s.prefix.is_empty() {
                    format!("s3://{}{host}", s.bucket)
                } else {
                    format!("s3://{}/{}{host}", s.bucket, s.prefix)
                }
            }
        }
    }
}

/// Default archive root.
pub const DEFAULT_ARCHIVE_DIR: &str = "/var/lib/focld/mrt";

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            enabled: false,
            dir: PathBuf::from(DEFAULT_ARCHIVE_DIR),
            layout: Layout::RouteViews,
            compression: Layout::RouteViews.default_compression(),
            updates_interval_secs: 900,
            rib_interval_secs: 7200,
            timestamp_precision: Precision::Microsecond,
            record_keepalives: false,
            retain_local_days: None,
            destinations: Vec::new(),
        }
    }
}

impl Config {
    /// The configuration with every default filled in, as TOML that reads back to the same
    /// configuration (`focld -n -v`). Passwords and S3 secret keys are replaced by "********".
    pub fn effective_toml(&self) -> String {
        use std::fmt::Write as _;
        let q = |s: &str| toml_string(s);
        let mut o = String::new();
        let g = &self.global;
        let _ = writeln!(o, "[global]");
        let _ = writeln!(o, "asn = {}", g.asn);
        let _ = writeln!(o, "router_id = {}", q(&g.router_id.to_string()));
        let _ = writeln!(o, "listen = {}", g.listen);
        let addrs: Vec<String> = g.listen_addr.iter().map(|a| q(&a.to_string())).collect();
        let _ = writeln!(o, "listen_addr = [{}]", addrs.join(", "));
        let _ = writeln!(o, "control_socket = {}", q(&g.control_socket.display().to_string()));
        let _ = writeln!(o, "log_level = {}", q(&g.log_level.to_string().to_lowercase()));
        if let Some(f) = &g.log_file {
            let _ = writeln!(o, "log_file = {}", q(&f.display().to_string()));
        }
        if let Some(u) = &g.user {
            let _ = writeln!(o, "user = {}", q(u));
        }
        if let Some(gr) = &g.group {
            let _ = writeln!(o, "group = {}", q(gr));
        }
        for p in &self.peers {
            let _ = writeln!(o, "\n[[peers]]");
            if let Some(n) = &p.name {
                let _ = writeln!(o, "name = {}", q(n));
            }
            let _ = writeln!(o, "address = {}", q(&p.address.to_string()));
            let _ = writeln!(o, "remote_as = {}", p.remote_as);
            let _ = writeln!(o, "local_as = {}", p.local_as);
            let _ = writeln!(o, "remote_port = {}", p.remote_port);
            let _ = writeln!(o, "hold_time_secs = {}", p.hold_time_secs);
            let _ = writeln!(o, "connect_retry_secs = {}", p.connect_retry_secs);
            let _ = writeln!(o, "passive = {}", p.passive);
            if p.password.is_some() {
                let _ = writeln!(o, "password = \"********\"");
            }
            let _ = writeln!(o, "route_refresh = {}", p.route_refresh);
            if let Some(a) = &p.local_address {
                let _ = writeln!(o, "local_address = {}", q(&a.to_string()));
            }
            if let Some(m) = p.max_prefixes {
                let _ = writeln!(o, "max_prefixes = {m}");
                if let Some(r) = p.max_prefixes_restart_secs {
                    let _ = writeln!(o, "max_prefixes_restart_secs = {r}");
                }
                let _ = writeln!(o, "max_prefixes_warning_only = {}", p.max_prefixes_warning_only);
            }
            let _ = writeln!(o, "send_hold_time_secs = {}", p.send_hold_time_secs);
        }
        for p in &self.prefixes {
            let _ = writeln!(o, "\n[[prefixes]]");
            let _ = writeln!(o, "network = {}", q(&p.network.to_string()));
            if let Some(nh) = &p.next_hop {
                let _ = writeln!(o, "next_hop = {}", q(&nh.to_string()));
            }
        }
        let a = &self.archive;
        let _ = writeln!(o, "\n[archive]");
        let _ = writeln!(o, "enabled = {}", a.enabled);
        let _ = writeln!(o, "dir = {}", q(&a.dir.display().to_string()));
        let layout = match a.layout {
            Layout::RouteViews => "routeviews",
            Layout::Ris => "ris",
        };
        let _ = writeln!(o, "layout = {}", q(layout));
        let _ = writeln!(o, "compression = {}", q(a.compression.name()));
        let _ = writeln!(o, "updates_interval_secs = {}", a.updates_interval_secs);
        let _ = writeln!(o, "rib_interval_secs = {}", a.rib_interval_secs);
        let precision = match a.timestamp_precision {
            Precision::Microsecond => "microsecond",
            Precision::Second => "second",
        };
        let _ = writeln!(o, "timestamp_precision = {}", q(precision));
        let _ = writeln!(o, "record_keepalives = {}", a.record_keepalives);
        if let Some(d) = a.retain_local_days {
            let _ = writeln!(o, "retain_local_days = {d}");
        }
        for d in &a.destinations {
            let _ = writeln!(o, "\n[[archive.destinations]]");
            match d {
                DestinationConfig::Local { path } => {
                    let _ = writeln!(o, "type = \"local\"\npath = {}", q(&path.display().to_string()));
                }
                DestinationConfig::S3(s) => {
                    let _ = writeln!(o, "type = \"s3\"\nbucket = {}\nprefix = {}", q(&s.bucket), q(&s.prefix));
                    let _ = writeln!(o, "region = {}", q(&s.region));
                    if let Some(e) = &s.endpoint {
                        let _ = writeln!(o, "endpoint = {}", q(e));
                    }
                    let _ = writeln!(o, "path_style = {}", s.path_style);
                    match &s.credentials {
                        S3Credentials::Environment => {}
                        S3Credentials::File { path, profile } => {
                            let _ = writeln!(o, "credentials_file = {}", q(&path.display().to_string()));
                            if let Some(p) = profile {
                                let _ = writeln!(o, "profile = {}", q(p));
                            }
                        }
                        S3Credentials::Inline { access_key, .. } => {
                            let _ = writeln!(o, "access_key = {}\nsecret_key = \"********\"", q(access_key));
                        }
                    }
                }
            }
        }
        o
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line of the offending key or value; `None` when it has no place in the file (a
    /// missing table, an unreadable file).
    pub line: Option<usize>,
    /// Key path such as `global.asn` or `peers[0].remote_as`; empty for file-level errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Read and check the file at `path`.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut config = parse(&text, path)?;
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

/// Check `text` as if read from `file` (which only appears in messages and `Config::file`).
pub fn parse(text: &str, file: &Path) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Reader::new(text, file);
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
// Reading the tree: the file's tables and values with their lines.

/// Collects errors and turns byte offsets into line numbers.
struct Reader {
    file: String,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl Reader {
    fn new(text: &str, file: &Path) -> Reader {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Reader { file: file.display().to_string(), line_starts, errors: Vec::new() }
    }

    /// 1-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset).max(1)
    }

    fn error(&mut self, line: Option<usize>, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError { file: self.file.clone(), line, key: key.to_string(), message: message.into() });
    }

    /// Errors in file order; ones without a line (missing tables) first.
    fn into_errors(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| e.line);
        self.errors
    }

    fn at(&mut self, f: &Field<'_, '_>, message: impl Into<String>) {
        self.error(Some(f.line), &f.key, message);
    }

    fn type_error(&mut self, f: &Field<'_, '_>, expected: &str) {
        let mut message = format!("expected {expected}, got {}", a_type(f.value));
        // A quoted number or boolean is the commonest slip; say how to fix it.
        if let DeValue::String(s) = f.value {
            let bare = (expected.contains("integer") && s.parse::<i64>().is_ok())
                || (expected.contains("boolean") && (s.as_ref() == "true" || s.as_ref() == "false"));
            if bare {
                message.push_str(&format!(" (write {s} without quotes)"));
            }
        }
        self.at(f, message);
    }

    fn bool(&mut self, f: &Field<'_, '_>) -> Option<bool> {
        match f.value {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(f, "a boolean (true or false)");
                None
            }
        }
    }

    fn str<'a>(&mut self, f: &Field<'a, '_>) -> Option<&'a str> {
        match f.value {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.type_error(f, "a string");
                None
            }
        }
    }

    /// Any integer; the callers check ranges with messages that say what the number is.
    fn integer(&mut self, f: &Field<'_, '_>) -> Option<i128> {
        match f.value {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.at(f, format!("integer {i} is out of range"));
                    None
                }
            },
            _ => {
                self.type_error(f, "an integer");
                None
            }
        }
    }

    /// An integer within `lo..=hi`: "port must be from 1 to 65535, got 70000".
    fn int_in<T>(&mut self, f: &Field<'_, '_>, lo: T, hi: T, what: &str, unit: &str) -> Option<T>
    where
        T: Copy + fmt::Display + Into<i128> + TryFrom<i128>,
    {
        let v = self.integer(f)?;
        if v < lo.into() || v > hi.into() {
            self.at(f, format!("{what} must be from {lo} to {hi}{unit}, got {v}"));
            return None;
        }
        T::try_from(v).ok()
    }

    /// A 4-octet AS number (RFC 6793), not the reserved AS 0 (RFC 7607).
    fn asn(&mut self, f: &Field<'_, '_>) -> Option<u32> {
        let v = self.integer(f)?;
        if v == 0 {
            self.at(f, "AS number 0 is reserved and cannot be used (RFC 7607)");
            return None;
        }
        match u32::try_from(v) {
            Ok(asn) => Some(asn),
            Err(_) => {
                self.at(f, format!("AS number must be from 1 to {} (4-octet AS numbers, RFC 6793), got {v}", u32::MAX));
                None
            }
        }
    }

    /// A string that `T::from_str` accepts; `bad` words the message from the string.
    fn parsed<T: FromStr>(&mut self, f: &Field<'_, '_>, bad: impl Fn(&str) -> String) -> Option<T> {
        let s = self.str(f)?;
        match s.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.at(f, bad(s));
                None
            }
        }
    }

    /// A unicast IP address written in its own family's form. `what` names it in messages.
    fn unicast_addr(&mut self, f: &Field<'_, '_>, what: &str) -> Option<IpAddr> {
        let addr: IpAddr = self.parsed(f, |s| format!("'{s}' is not an IP address"))?;
        if let IpAddr::V6(v6) = addr {
            if let Some(v4) = v6.to_ipv4_mapped() {
                self.at(f, format!("{addr} is an IPv4-mapped IPv6 address; write the IPv4 form, {v4}"));
                return None;
            }
        }
        if addr.is_unspecified() || addr.is_multicast() || addr == Ipv4Addr::BROADCAST {
            self.at(f, format!("{what} must be a unicast address, got {addr}"));
            return None;
        }
        Some(addr)
    }
}

/// "a string", "an integer": for "expected X, got Y".
fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A value found in the file, with the key path and line that errors about it report.
struct Field<'a, 'i> {
    key: String,
    line: usize,
    value: &'a DeValue<'i>,
}

/// One TOML table being read. Every key the reader asks for is remembered as known; `finish`
/// reports the keys nobody asked for. An absent table (`entries: None`) answers every key with
/// nothing, so a missing `[global]` still yields "missing required key" for its keys.
struct Table<'a, 'i> {
    /// Key path of the table: "global", "peers[0]"; empty for the document root.
    path: String,
    /// Line of the table header, for keys that should be there and are not.
    line: Option<usize>,
    entries: Option<&'a DeTable<'i>>,
    known: Vec<&'static str>,
    /// The file has this key but not as a table; that is reported once, not once per key.
    wrong_type: bool,
    /// Keys of `[global]`, set on the root only: a root key among them was written above the
    /// `[global]` header, and the message says so.
    global_keys: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    fn new(path: String, line: Option<usize>, entries: Option<&'a DeTable<'i>>) -> Self {
        Table { path, line, entries, known: Vec::new(), wrong_type: false, global_keys: Vec::new() }
    }

    fn key_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The value of `name`, if the file sets it.
    fn get(&mut self, cx: &Reader, name: &'static str) -> Option<Field<'a, 'i>> {
        self.known.push(name);
        let (_, value) = self.entries?.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        Some(Field { key: self.key_path(name), line: cx.line_of(value.span().start), value: value.get_ref() })
    }

    /// The value of `name`, or an error saying it must be set.
    fn required(&mut self, cx: &mut Reader, name: &'static str) -> Option<Field<'a, 'i>> {
        let field = self.get(cx, name);
        if field.is_none() && !self.wrong_type {
            cx.error(self.line, &self.key_path(name), "missing required key");
        }
        field
    }

    /// A sub-table such as `[global]`; absent if the file has none.
    fn table(&mut self, cx: &mut Reader, name: &'static str) -> Table<'a, 'i> {
        let path = self.key_path(name);
        match self.get(cx, name) {
            None => Table::new(path, None, None),
            Some(f) => match f.value {
                DeValue::Table(t) => Table::new(path, Some(f.line), Some(t)),
                _ => {
                    cx.type_error(&f, &format!("a table ([{path}])"));
                    Table { wrong_type: true, ..Table::new(path, Some(f.line), None) }
                }
            },
        }
    }

    /// An array of tables such as `[[peers]]`; each entry's path carries its index.
    fn tables(&mut self, cx: &mut Reader, name: &'static str) -> Vec<Table<'a, 'i>> {
        let path = self.key_path(name);
        let Some(f) = self.get(cx, name) else {
            return Vec::new();
        };
        let DeValue::Array(items) = f.value else {
            cx.type_error(&f, &format!("an array of tables ([[{path}]])"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let entry =
                Field { key: format!("{path}[{i}]"), line: cx.line_of(item.span().start), value: item.get_ref() };
            match entry.value {
                DeValue::Table(t) => out.push(Table::new(entry.key, Some(entry.line), Some(t))),
                _ => cx.type_error(&entry, "a table"),
            }
        }
        out
    }

    /// Report every key of the file's table that no reader asked for.
    fn finish(self, cx: &mut Reader) {
        let Some(entries) = self.entries else {
            return;
        };
        for (key, value) in entries.iter() {
            let name = key.get_ref().as_ref();
            if self.known.contains(&name) {
                continue;
            }
            let line = Some(cx.line_of(key.span().start));
            let message = unknown_key_message(name, &self.known, &self.global_keys, value);
            cx.error(line, &self.key_path(name), message);
        }
    }
}

/// "unknown key 'hold_time' (did you mean 'hold_time_secs'?); known keys: ..."
fn unknown_key_message(name: &str, known: &[&str], global_keys: &[&str], value: &Spanned<DeValue<'_>>) -> String {
    let at_root = !global_keys.is_empty();
    let is_table = match value.get_ref() {
        DeValue::Table(_) => true,
        DeValue::Array(items) => items.iter().all(|i| i.get_ref().is_table()) && !items.is_empty(),
        _ => false,
    };
    let what = if at_root && is_table { "table" } else { "key" };
    let mut message = format!("unknown {what} '{name}'");
    if let Some(close) = closest(name, known) {
        message.push_str(&format!(" (did you mean '{close}'?)"));
    } else if at_root && !is_table && global_keys.contains(&name) {
        message.push_str(" (it belongs under [global])");
    }
    message.push_str(&format!("; known {what}s: {}", known.join(", ")));
    message
}

/// The known name nearest to `name`: a small edit distance, or one is a prefix of the other
/// once case, dashes and underscores are set aside ("hold_time", "holdtime" for
/// "hold_time_secs").
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let squash = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    let lower = name.to_ascii_lowercase().replace('-', "_");
    let squashed = squash(name);
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|&(d, k)| {
            let limit = if k.len() <= 3 { 1 } else { 2 };
            let k = squash(k);
            d <= limit || (squashed.len() >= 4 && (k.starts_with(&squashed) || squashed.starts_with(&k)))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
    for (i, mut t) in top.tables(cx, "peers").into_iter().enumerate() {
        let peer = read_peer(cx, &mut t, &global);
        t.finish(cx);
        if let Some(peer) = peer {
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

    let mut archive_table = top.table(cx, "archive");
    let archive = read_archive(cx, &mut archive_table);
    archive_table.finish(cx);

    top.finish(cx);

    // Only returned when no error was recorded, so the placeholders for missing required keys
    // (AS 0, router ID 0.0.0.0) never leave this module.
    Config {
        file: file.to_path_buf(),
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
        archive,
        warnings: Vec::new(),
    }
}

/// `[global]` as read; the required keys stay `Option` so peers can be checked without them.
struct GlobalRead {
    asn: Option<u32>,
    router_id: Option<Ipv4Addr>,
    listen: bool,
    listen_addr: Vec<SocketAddr>,
    control_socket: PathBuf,
    log_level: LevelFilter,
    log_file: Option<PathBuf>,
    user: Option<String>,
    group: Option<String>,
}

fn read_global(cx: &mut Reader, t: &mut Table<'_, '_>) -> GlobalRead {
    let asn = t.required(cx, "asn").and_then(|f| cx.asn(&f));
    let router_id = t.required(cx, "router_id").and_then(|f| read_router_id(cx, &f));
    let listen = t.get(cx, "listen").and_then(|f| cx.bool(&f)).unwrap_or(true);
    let listen_addr = match t.get(cx, "listen_addr") {
        Some(f) => read_listen_addrs(cx, &f, listen),
        None => vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, BGP_PORT))],
    };
    let control_socket = t
        .get(cx, "control_socket")
        .and_then(|f| {
            let s = cx.str(&f)?;
            if s.is_empty() {
                cx.at(&f, "the control socket path must not be empty");
                return None;
            }
            Some(PathBuf::from(s))
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
    let log_level = t
        .get(cx, "log_level")
        .and_then(|f| {
            cx.parsed(&f, |s| format!("unknown log level '{s}'; expected off, error, warn, info, debug or trace"))
        })
        .unwrap_or(LevelFilter::Info);
    let log_file = t.get(cx, "log_file").and_then(|f| {
        let p = PathBuf::from(cx.str(&f)?);
        if !p.is_absolute() {
            cx.at(&f, format!("the log file must be an absolute path (focld -d runs from /), got '{}'", p.display()));
            return None;
        }
        Some(p)
    });
    let name = |cx: &mut Reader, f: &Field<'_, '_>, what: &str| -> Option<String> {
        let s = cx.str(f)?;
        if s.is_empty() || s.contains(['/', ':', ' ']) {
            cx.at(f, format!("'{s}' is not a {what} name"));
            return None;
        }
        Some(s.to_string())
    };
    let user = t.get(cx, "user").and_then(|f| name(cx, &f, "user"));
    let group = t.get(cx, "group").and_then(|f| name(cx, &f, "group"));
    GlobalRead { asn, router_id, listen, listen_addr, control_socket, log_level, log_file, user, group }
}

/// The BGP Identifier: an IPv4 address (RFC 4271 §4.2), non-zero (RFC 6286 §2.1).
fn read_router_id(cx: &mut Reader, f: &Field<'_, '_>) -> Option<Ipv4Addr> {
    let id: Ipv4Addr = cx.parsed(f, |s| {
        format!(
            "'{s}' is not an IPv4 address \
             (the router ID is the 4-octet BGP Identifier, RFC 4271 §4.2)"
        )
    })?;
    if id.is_unspecified() {
        cx.at(f, "router ID must not be 0.0.0.0 (the BGP Identifier is non-zero, RFC 6286 §2.1)");
        return None;
    }
    Some(id)
}

/// `listen_addr = "0.0.0.0:179"` or `listen_addr = ["0.0.0.0:179", "[::]:179"]`.
fn read_listen_addrs(cx: &mut Reader, f: &Field<'_, '_>, listen: bool) -> Vec<SocketAddr> {
    let bad = |s: &str| format!("'{s}' is not an address and port (write e.g. \"0.0.0.0:179\" or \"[::]:179\")");
    // Each address with the key and line of its first mention.
    let mut addrs: Vec<(SocketAddr, String, usize)> = Vec::new();
    match f.value {
        DeValue::String(_) => {
            if let Some(a) = cx.parsed(f, bad) {
                addrs.push((a, f.key.clone(), f.line));
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let entry = Field {
                    key: format!("{}[{i}]", f.key),
                    line: cx.line_of(item.span().start),
                    value: item.get_ref(),
                };
                let Some(a) = cx.parsed::<SocketAddr>(&entry, bad) else {
                    continue;
                };
                if let Some((_, key, line)) = addrs.iter().find(|(seen, _, _)| *seen == a) {
                    let message = format!("listen address {a} is already listed as {key} (line {line})");
                    cx.at(&entry, message);
                    continue;
                }
                addrs.push((a, entry.key, entry.line));
            }
            if items.is_empty() && listen {
                cx.at(f, "listen = true needs at least one listen address");
            }
        }
        _ => cx.type_error(f, "a string or an array of strings"),
    }
    addrs.into_iter().map(|(a, _, _)| a).collect()
}

/// A peer as read, with the lines the cross-peer checks point at.
struct PeerRead {
    config: PeerConfig,
    address_line: usize,
    name_line: Option<usize>,
}

fn read_peer(cx: &mut Reader, t: &mut Table<'_, '_>, global: &GlobalRead) -> Option<PeerRead> {
    // An invalid optional value is recorded as an error and replaced by its default, so the
    // peer still takes part in the duplicate checks; the Config is never returned anyway.
    let name = t.get(cx, "name").and_then(|f| read_peer_name(cx, &f).map(|n| (n, f.line)));
    let address_field = t.required(cx, "address");
    let address = address_field.as_ref().and_then(|f| cx.unicast_addr(f, "peer address"));
    let remote_as = t.required(cx, "remote_as").and_then(|f| cx.asn(&f));
    let local_as = t.get(cx, "local_as").and_then(|f| cx.asn(&f));
    let remote_port = t.get(cx, "remote_port").and_then(|f| cx.int_in(&f, 1, u16::MAX, "port", ""));
    let hold_time_secs = t.get(cx, "hold_time_secs").and_then(|f| read_hold_time(cx, &f));
    let connect_retry_secs =
        t.get(cx, "connect_retry_secs").and_then(|f| cx.int_in(&f, 1, u16::MAX, "connect retry interval", " seconds"));
    let passive = t.get(cx, "passive").and_then(|f| cx.bool(&f));
    let password_field = t.get(cx, "password");
    let route_refresh = t.get(cx, "route_refresh").and_then(|f| cx.bool(&f));
    let local_address_field = t.get(cx, "local_address");
    let max_prefixes = t.get(cx, "max_prefixes").and_then(|f| cx.int_in(&f, 1u32, u32::MAX, "max_prefixes", ""));
    let restart = t.get(cx, "max_prefixes_restart_secs");
    let max_prefixes_restart_secs =
        restart.as_ref().and_then(|f| cx.int_in(f, 1u32, 86_400 * 7, "max_prefixes_restart_secs", " seconds"));
    let warning = t.get(cx, "max_prefixes_warning_only");
    let max_prefixes_warning_only = warning.as_ref().and_then(|f| cx.bool(f)).unwrap_or(false);
    if max_prefixes.is_none() {
        for f in [&restart, &warning].into_iter().flatten() {
            cx.at(f, "this only applies with max_prefixes; set it too");
        }
    }
    let send_hold_time_secs = t
        .get(cx, "send_hold_time_secs")
        .and_then(|f| {
            let v = cx.int_in(&f, 0u32, 86_400, "send_hold_time_secs", " seconds")?;
            if v != 0 && v < 3 {
                cx.at(&f, format!("send_hold_time_secs must be 0 (automatic) or at least 3 seconds, got {v}"));
                return None;
            }
            Some(v)
        })
        .unwrap_or(0);

    // Messages about the key and the source address name the peer, so they need its address.
    let label = match (&address, &name) {
        (Some(a), Some((n, _))) => format!("{a} ({n})"),
        (Some(a), None) => a.to_string(),
        (None, _) => t.path.clone(),
    };
    let password = password_field.and_then(|f| read_password(cx, &f, &label));
    let local_address = match local_address_field {
        Some(f) => cx.unicast_addr(&f, "local_address").inspect(|local| {
            if let Some(peer) = address {
                if Family::of_addr(local) != Family::of_addr(&peer) {
                    let message = format!(
                        "local_address {local} is {} but peer {label} is {}; \
                         a session runs over one family",
                        family_word(local),
                        family_word(&peer)
                    );
                    cx.at(&f, message);
                }
            }
        }),
        None => address.and_then(|a| default_local_address(&a, &global.listen_addr)),
    };

    let config = PeerConfig {
        name: name.as_ref().map(|(n, _)| n.clone()),
        address: address?,
        remote_as: remote_as.unwrap_or(0),
        local_as: local_as.or(global.asn).unwrap_or(0),
        remote_port: remote_port.unwrap_or(BGP_PORT),
        hold_time_secs: hold_time_secs.unwrap_or(DEFAULT_HOLD_TIME_SECS),
        connect_retry_secs: connect_retry_secs.unwrap_or(DEFAULT_CONNECT_RETRY_SECS),
        passive: passive.unwrap_or(false),
        password,
        route_refresh: route_refresh.unwrap_or(true),
        local_address,
        max_prefixes,
        max_prefixes_restart_secs,
        max_prefixes_warning_only,
        send_hold_time_secs,
    };
    Some(PeerRead { config, address_line: address_field.map_or(0, |f| f.line), name_line: name.map(|(_, line)| line) })
}

/// A peer name: not empty, and not an address, which `focl peer show` would take as one.
fn read_peer_name(cx: &mut Reader, f: &Field<'_, '_>) -> Option<String> {
    let name = cx.str(f)?;
    if name.trim().is_empty() {
        cx.at(f, "peer name must not be empty; remove the key to leave the peer unnamed");
        return None;
    }
    if name.parse::<IpAddr>().is_ok() {
        cx.at(
            f,
            format!(
                "peer name '{name}' is an IP address; focl takes a name or an address, \
                 so a name must not look like one"
            ),
        );
        return None;
    }
    Some(name.to_string())
}

/// Hold time: 0 turns keepalives off, otherwise at least 3 seconds (RFC 4271 §4.2).
fn read_hold_time(cx: &mut Reader, f: &Field<'_, '_>) -> Option<u16> {
    let secs = cx.int_in(f, 0, u16::MAX, "hold time", " seconds")?;
    if secs != 0 && secs < MIN_HOLD_TIME_SECS {
        cx.at(
            f,
            format!(
                "hold time must be 0 or at least {MIN_HOLD_TIME_SECS} seconds \
                 (RFC 4271 §4.2), got {secs}"
            ),
        );
        return None;
    }
    Some(secs)
}

/// TCP-MD5 key (RFC 2385): 1 to `TCP_MD5SIG_MAXKEYLEN` bytes.
fn read_password(cx: &mut Reader, f: &Field<'_, '_>, label: &str) -> Option<String> {
    let password = cx.str(f)?;
    if password.is_empty() {
        cx.at(
            f,
            format!(
                "TCP-MD5 password of peer {label} is empty; set 1 to {MAX_PASSWORD_BYTES} \
                 bytes, or remove the key to run without TCP-MD5"
            ),
        );
        return None;
    }
    if password.len() > MAX_PASSWORD_BYTES {
        cx.at(
            f,
            format!(
                "TCP-MD5 password of peer {label} is {} bytes; the kernel takes at most \
                 {MAX_PASSWORD_BYTES} (TCP_MD5SIG_MAXKEYLEN, RFC 2385)",
                password.len()
            ),
        );
        return None;
    }
    Some(password.to_string())
}

/// Source address when none is configured: the first listen address of the peer's family that
/// names one address (not 0.0.0.0 or ::); otherwise the kernel chooses.
fn default_local_address(peer: &IpAddr, listen: &[SocketAddr]) -> Option<IpAddr> {
    listen.iter().map(|a| a.ip()).find(|ip| Family::of_addr(ip) == Family::of_addr(peer) && !ip.is_unspecified())
}

fn family_word(addr: &IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// Two peers with one address (or one name) could not be told apart on accept or by focl.
fn check_peers_unique(cx: &mut Reader, peers: &[(usize, PeerRead)]) {
    let mut addresses: HashMap<IpAddr, (usize, usize)> = HashMap::new();
    let mut names: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, peer) in peers {
        let address = peer.config.address;
        if let Some((j, line)) = addresses.get(&address) {
            cx.error(
                Some(peer.address_line),
                &format!("peers[{i}].address"),
                format!("peer address {address} is already used by peers[{j}] (line {line})"),
            );
        } else {
            addresses.insert(address, (*i, peer.address_line));
        }
        if let (Some(name), Some(name_line)) = (&peer.config.name, peer.name_line) {
            if let Some((j, line)) = names.get(name.as_str()) {
                cx.error(
                    Some(name_line),
                    &format!("peers[{i}].name"),
                    format!("peer name '{name}' is already used by peers[{j}] (line {line})"),
                );
            } else {
                names.insert(name, (*i, name_line));
            }
        }
    }
}

/// A prefix as read, with the line of its `network` key.
struct PrefixRead {
    config: PrefixConfig,
    network_line: usize,
}

fn read_prefix(cx: &mut Reader, t: &mut Table<'_, '_>) -> Option<PrefixRead> {
    let network_field = t.required(cx, "network");
    let network = network_field.as_ref().and_then(|f| {
        let s = cx.str(f)?;
        match s.parse::<Prefix>() {
            Ok(p) => Some(p),
            Err(e) => {
                cx.at(f, e.to_string());
                None
            }
        }
    });
    let next_hop = t.get(cx, "next_hop").and_then(|f| {
        cx.unicast_addr(&f, "next_hop").inspect(|hop| {
            if let Some(net) = network {
                if Family::of_addr(hop) != net.family() {
                    cx.at(
                        &f,
                        format!(
                            "next_hop {hop} is {} but network {net} is {}",
                            family_word(hop),
                            family_word(&net.addr())
                        ),
                    );
                }
            }
        })
    });
    Some(PrefixRead {
        config: PrefixConfig { network: network?, next_hop },
        network_line: network_field.map_or(0, |f| f.line),
    })
}

/// Announcing one prefix twice is a slip (two next hops for one route, or a copy-paste).
fn check_prefixes_unique(cx: &mut Reader, prefixes: &[(usize, PrefixRead)]) {
    let mut seen: HashMap<Prefix, (usize, usize)> = HashMap::new();
    for (i, p) in prefixes {
        let network = p.config.network;
        if let Some((j, line)) = seen.get(&network) {
            cx.error(
                Some(p.network_line),
                &format!("prefixes[{i}].network"),
                format!("prefix {network} is already listed as prefixes[{j}] (line {line})"),
            );
        } else {
            seen.insert(network, (*i, p.network_line));
        }
    }
}

fn read_archive(cx: &mut Reader, t: &mut Table<'_, '_>) -> ArchiveConfig {
    // A new key is one line here: `key: t.get(cx, "key").and_then(..).unwrap_or(defaults.key)`.
    let d = ArchiveConfig::default();
    let enabled = t.get(cx, "enabled").and_then(|f| cx.bool(&f)).unwrap_or(d.enabled);
    let dir = t
        .get(cx, "dir")
        .and_then(|f| {
            let s = cx.str(&f)?;
            if s.is_empty() {
                cx.at(&f, "the archive directory must not be empty");
                return None;
            }
            Some(PathBuf::from(s))
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

fn read_destination(cx: &mut Reader, t: &mut Table<'_, '_>, archive_dir: &Path) -> Option<DestinationConfig> {
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
            let p = PathBuf::from(cx.str(&f)?);
            if !p.is_absolute() {
                cx.at(&f, format!("the destination must be an absolute path, got '{}'", p.display()));
                return None;
            }
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
                    path: PathBuf::from(cx.str(f)?),
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

    const FILE: &str = "focl.toml";

    /// The smallest valid file: the two required global keys and one peer.
    const MINIMAL: &str = r#"[global]
asn = 65001
router_id = "192.0.2.1"

[[peers]]
address = "192.0.2.2"
remote_as = 65002
"#;

    fn ok(text: &str) -> Config {
        match parse(text, Path::new(FILE)) {
            Ok(c) => c,
            Err(errors) => panic!("unexpected errors: {errors:#?}"),
        }
    }

    /// The errors of `text`, as the lines focld prints.
    fn errors(text: &str) -> Vec<String> {
        match parse(text, Path::new(FILE)) {
            Ok(c) => panic!("expected errors, got {c:#?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    /// MINIMAL with `extra` appended to the peer.
    fn with_peer_keys(extra: &str) -> String {
        format!("{MINIMAL}{extra}\n")
    }

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
                local_address: None,
                max_prefixes: None,
                max_prefixes_restart_secs: None,
                max_prefixes_warning_only: false,
                send_hold_time_secs: 0,
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

    #[test]
    fn every_peer_key_can_be_set() {
        let c = ok(&with_peer_keys(
            r#"name = "core"
local_as = 65002
remote_port = 1179
hold_time_secs = 30
connect_retry_secs = 10
passive = true
password = "s3cret"
route_refresh = false
local_address = "192.0.2.9""#,
        ));
        let p = &c.peers[0];
        assert_eq!(p.name.as_deref(), Some("core"));
        assert_eq!(p.label(), "192.0.2.2 (core)");
        assert!(p.is_ibgp());
        assert_eq!((p.remote_port, p.hold_time_secs, p.connect_retry_secs), (1179, 30, 10));
        assert!(p.passive && !p.route_refresh);
        assert_eq!(p.password.as_deref(), Some("s3cret"));
        assert_eq!(p.local_address, Some("192.0.2.9".parse().unwrap()));
    }

    #[test]
    fn listen_addr_as_string_and_as_list() {
        let c = ok(&MINIMAL.replace("[[peers]]", "listen_addr = \"127.0.0.1:1790\"\n\n[[peers]]"));
        assert_eq!(c.global.listen_addr, vec!["127.0.0.1:1790".parse().unwrap()]);

        let c = ok(&MINIMAL.replace("[[peers]]", "listen_addr = [\"0.0.0.0:179\", \"[::]:179\"]\n\n[[peers]]"));
        let want: Vec<SocketAddr> = vec!["0.0.0.0:179".parse().unwrap(), "[::]:179".parse().unwrap()];
        assert_eq!(c.global.listen_addr, want);
    }

    #[test]
    fn listen_addr_errors() {
        let text = MINIMAL.replace(
            "[[peers]]",
            "listen_addr = [\n  \"0.0.0.0:179\",\n  \"0.0.0.0\",\n  \"0.0.0.0:179\",\n]\n\n\
             [[peers]]",
        );
        assert_eq!(
            errors(&text),
            vec![
                "focl.toml:7: global.listen_addr[1]: '0.0.0.0' is not an address and port \
                 (write e.g. \"0.0.0.0:179\" or \"[::]:179\")",
                "focl.toml:8: global.listen_addr[2]: listen address 0.0.0.0:179 is already \
                 listed as global.listen_addr[0] (line 6)",
            ]
        );
        let text = MINIMAL.replace("[[peers]]", "listen_addr = 179\n\n[[peers]]");
        assert_eq!(
            errors(&text),
            vec![
                "focl.toml:5: global.listen_addr: expected a string or an array of strings, got \
                 an integer"
            ]
        );
        let text = MINIMAL.replace("[[peers]]", "listen_addr = []\n\n[[peers]]");
        assert_eq!(
            errors(&text),
            vec!["focl.toml:5: global.listen_addr: listen = true needs at least one listen address"]
        );
        let text = MINIMAL.replace("[[peers]]", "listen = false\nlisten_addr = []\n\n[[peers]]");
        assert!(ok(&text).global.listen_addr.is_empty());
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
    fn unknown_keys_are_errors_with_a_suggestion() {
        assert_eq!(
            errors(&with_peer_keys("hold_time = 30")),
            vec![
                "focl.toml:8: peers[0].hold_time: unknown key 'hold_time' (did you mean \
                 'hold_time_secs'?); known keys: name, address, remote_as, local_as, \
                 remote_port, hold_time_secs, connect_retry_secs, passive, password, \
                 route_refresh, local_address, max_prefixes, max_prefixes_restart_secs, \
                 max_prefixes_warning_only, send_hold_time_secs"
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("asn = 65001", "asn = 65001\nrouterid = \"192.0.2.1\"")),
            vec![
                "focl.toml:3: global.routerid: unknown key 'routerid' (did you mean \
                 'router_id'?); known keys: asn, router_id, listen, listen_addr, \
                 control_socket, log_level, log_file, user, group"
            ]
        );
        assert_eq!(
            errors(&format!("{MINIMAL}\n[archive]\nenabled = true\nzzz = 1\n")),
            vec![
                "focl.toml:11: archive.zzz: unknown key 'zzz'; known keys: enabled, dir, layout, compression, \
                 updates_interval_secs, rib_interval_secs, timestamp_precision, record_keepalives, \
                 retain_local_days, destinations"
            ]
        );
    }

    #[test]
    fn unknown_top_level_tables_and_keys() {
        assert_eq!(
            errors(&format!("{MINIMAL}\n[bgp]\nx = 1\n")),
            vec![
                "focl.toml:9: bgp: unknown table 'bgp'; known tables: global, peers, \
                 prefixes, archive"
            ]
        );
        assert_eq!(
            errors(&format!("{MINIMAL}\n[[peer]]\nx = 1\n")),
            vec![
                "focl.toml:9: peer: unknown table 'peer' (did you mean 'peers'?); known \
                 tables: global, peers, prefixes, archive"
            ]
        );
        assert_eq!(
            errors(&format!("extra = [1, 2]\n{MINIMAL}")),
            vec![
                "focl.toml:1: extra: unknown key 'extra'; known keys: global, peers, prefixes, \
                 archive"
            ]
        );
        assert_eq!(
            errors(&format!("log_level = \"debug\"\n{MINIMAL}")),
            vec![
                "focl.toml:1: log_level: unknown key 'log_level' (it belongs under \
                 [global]); known keys: global, peers, prefixes, archive"
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
                "focl.toml:2: x: unknown table 'x'; known tables: global, peers, prefixes, \
                 archive",
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("[[peers]]", "[peers]")),
            vec!["focl.toml:5: peers: expected an array of tables ([[peers]]), got a table"]
        );
    }

    #[test]
    fn hold_time_must_be_zero_or_at_least_three() {
        for secs in [1, 2] {
            assert_eq!(
                errors(&with_peer_keys(&format!("hold_time_secs = {secs}"))),
                vec![format!(
                    "focl.toml:8: peers[0].hold_time_secs: hold time must be 0 or at least 3 \
                     seconds (RFC 4271 §4.2), got {secs}"
                )]
            );
        }
        for secs in [0, 3, 65535] {
            let c = ok(&with_peer_keys(&format!("hold_time_secs = {secs}")));
            assert_eq!(c.peers[0].hold_time_secs, secs);
        }
        assert_eq!(
            errors(&with_peer_keys("hold_time_secs = 70000")),
            vec![
                "focl.toml:8: peers[0].hold_time_secs: hold time must be from 0 to 65535 \
                 seconds, got 70000"
            ]
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
    fn effective_configuration_reads_back_the_same() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/config/every-key.toml"))
            .expect("every-key.toml");
        let c = ok(&text);
        let shown = c.effective_toml();
        assert!(!shown.contains("example-secret") && !shown.contains("password = \"k\""), "{shown}");
        let mut again = ok(&shown);
        // Secrets are masked in the output: put them back to compare the rest.
        again.peers[0].password = c.peers[0].password.clone();
        again.archive.destinations[2] = c.archive.destinations[2].clone();
        assert_eq!(again.global, c.global);
        assert_eq!(again.peers, c.peers);
        assert_eq!(again.prefixes, c.prefixes);
        assert_eq!(again.archive, c.archive);
        let minimal = ok(MINIMAL).effective_toml();
        assert!(minimal.contains("hold_time_secs = 90") && minimal.contains("layout = \"routeviews\""), "{minimal}");
        assert_eq!(ok(&minimal).global, ok(MINIMAL).global);
    }

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
            "focl.toml:18: archive.destinations[2].path: the destination must be an absolute path",
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

    #[test]
    fn integer_ranges() {
        assert_eq!(
            errors(&with_peer_keys("remote_port = 70000\nconnect_retry_secs = 0")),
            vec![
                "focl.toml:8: peers[0].remote_port: port must be from 1 to 65535, got 70000",
                "focl.toml:9: peers[0].connect_retry_secs: connect retry interval must be from \
                 1 to 65535 seconds, got 0",
            ]
        );
        assert_eq!(
            errors(&with_peer_keys("remote_port = 0")),
            vec!["focl.toml:8: peers[0].remote_port: port must be from 1 to 65535, got 0"]
        );
        assert_eq!(
            errors(&MINIMAL.replace("asn = 65001", "asn = 4294967296")),
            vec![
                "focl.toml:2: global.asn: AS number must be from 1 to 4294967295 (4-octet AS \
                 numbers, RFC 6793), got 4294967296"
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("remote_as = 65002", "remote_as = -1")),
            vec![
                "focl.toml:7: peers[0].remote_as: AS number must be from 1 to 4294967295 \
                 (4-octet AS numbers, RFC 6793), got -1"
            ]
        );
        // Hex, underscores and the 4-octet maximum are all fine.
        let c = ok(&MINIMAL
            .replace("remote_as = 65002", "remote_as = 4_294_967_295")
            .replace("asn = 65001", "asn = 0xFDE9"));
        assert_eq!((c.global.asn, c.peers[0].remote_as), (65001, u32::MAX));
    }

    #[test]
    fn asn_zero_is_rejected() {
        assert_eq!(
            errors(&MINIMAL.replace("asn = 65001", "asn = 0")),
            vec!["focl.toml:2: global.asn: AS number 0 is reserved and cannot be used (RFC 7607)"]
        );
        assert_eq!(
            errors(&with_peer_keys("local_as = 0")),
            vec![
                "focl.toml:8: peers[0].local_as: AS number 0 is reserved and cannot be used \
                 (RFC 7607)"
            ]
        );
    }

    #[test]
    fn router_id_must_be_nonzero_ipv4() {
        assert_eq!(
            errors(&MINIMAL.replace("192.0.2.1", "0.0.0.0")),
            vec![
                "focl.toml:3: global.router_id: router ID must not be 0.0.0.0 (the BGP \
                 Identifier is non-zero, RFC 6286 §2.1)"
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("192.0.2.1", "2001:db8::1")),
            vec![
                "focl.toml:3: global.router_id: '2001:db8::1' is not an IPv4 address (the \
                 router ID is the 4-octet BGP Identifier, RFC 4271 §4.2)"
            ]
        );
    }

    #[test]
    fn log_level_is_case_insensitive() {
        let c = ok(&MINIMAL.replace("[[peers]]", "log_level = \"DEBUG\"\n[[peers]]"));
        assert_eq!(c.global.log_level, LevelFilter::Debug);
        let c = ok(&MINIMAL.replace("[[peers]]", "log_level = \"off\"\n[[peers]]"));
        assert_eq!(c.global.log_level, LevelFilter::Off);
        assert_eq!(
            errors(&MINIMAL.replace("[[peers]]", "log_level = \"verbose\"\n[[peers]]")),
            vec![
                "focl.toml:5: global.log_level: unknown log level 'verbose'; expected off, \
                 error, warn, info, debug or trace"
            ]
        );
    }

    const TWO_PEERS: &str = r#"[global]
asn = 65001
router_id = "192.0.2.1"

[[peers]]
name = "a"
address = "192.0.2.2"
remote_as = 65002

[[peers]]
name = "b"
address = "192.0.2.3"
remote_as = 65003
"#;

    #[test]
    fn duplicate_peer_address_and_name() {
        assert_eq!(
            errors(&TWO_PEERS.replace("192.0.2.3", "192.0.2.2")),
            vec![
                "focl.toml:12: peers[1].address: peer address 192.0.2.2 is already used by \
                 peers[0] (line 7)"
            ]
        );
        assert_eq!(
            errors(&TWO_PEERS.replace("name = \"b\"", "name = \"a\"")),
            vec!["focl.toml:11: peers[1].name: peer name 'a' is already used by peers[0] (line 6)"]
        );
    }

    #[test]
    fn peer_name_and_address_rules() {
        assert_eq!(
            errors(&TWO_PEERS.replace("name = \"b\"", "name = \"192.0.2.9\"")),
            vec![
                "focl.toml:11: peers[1].name: peer name '192.0.2.9' is an IP address; focl \
                 takes a name or an address, so a name must not look like one"
            ]
        );
        assert_eq!(
            errors(&TWO_PEERS.replace("address = \"192.0.2.3\"", "address = \"::ffff:192.0.2.3\"")),
            vec![
                "focl.toml:12: peers[1].address: ::ffff:192.0.2.3 is an IPv4-mapped IPv6 \
                 address; write the IPv4 form, 192.0.2.3"
            ]
        );
        assert_eq!(
            errors(&TWO_PEERS.replace("192.0.2.3", "192.0.2.300")),
            vec!["focl.toml:12: peers[1].address: '192.0.2.300' is not an IP address"]
        );
        assert_eq!(
            errors(&TWO_PEERS.replace("192.0.2.3", "0.0.0.0")),
            vec![
                "focl.toml:12: peers[1].address: peer address must be a unicast address, got \
                 0.0.0.0"
            ]
        );
    }

    #[test]
    fn prefix_rules() {
        let base = format!("{MINIMAL}\n[[prefixes]]\nnetwork = \"10.1.0.0/8\"\n");
        assert_eq!(
            errors(&base),
            vec![
                "focl.toml:10: prefixes[0].network: host bits are set past the prefix length \
                 (did you mean 10.0.0.0/8?)"
            ]
        );
        let text = format!("{MINIMAL}\n[[prefixes]]\nnetwork = \"203.0.113.0/24\"\nnext_hop = \"2001:db8::1\"\n");
        assert_eq!(
            errors(&text),
            vec![
                "focl.toml:11: prefixes[0].next_hop: next_hop 2001:db8::1 is IPv6 but network \
                 203.0.113.0/24 is IPv4"
            ]
        );
        let text = format!(
            "{MINIMAL}\n[[prefixes]]\nnetwork = \"203.0.113.0/24\"\n\n\
             [[prefixes]]\nnetwork = \"203.0.113.0/24\"\n"
        );
        assert_eq!(
            errors(&text),
            vec![
                "focl.toml:13: prefixes[1].network: prefix 203.0.113.0/24 is already listed as \
                 prefixes[0] (line 10)"
            ]
        );
        let text = format!(
            "{MINIMAL}\n[[prefixes]]\nnetwork = \"2001:db8:1000::/48\"\n\
             next_hop = \"2001:db8::2\"\n"
        );
        let c = ok(&text);
        assert_eq!(c.prefixes[0].network.family(), Family::Ipv6Unicast);
        assert_eq!(c.prefixes[0].next_hop, Some("2001:db8::2".parse().unwrap()));
    }

    #[test]
    fn password_length() {
        let p = "x".repeat(81);
        assert_eq!(
            errors(&with_peer_keys(&format!("password = \"{p}\""))),
            vec![
                "focl.toml:8: peers[0].password: TCP-MD5 password of peer 192.0.2.2 is 81 \
                 bytes; the kernel takes at most 80 (TCP_MD5SIG_MAXKEYLEN, RFC 2385)"
            ]
        );
        assert_eq!(
            errors(&with_peer_keys("password = \"\"\nname = \"up\"")),
            vec![
                "focl.toml:8: peers[0].password: TCP-MD5 password of peer 192.0.2.2 (up) is \
                 empty; set 1 to 80 bytes, or remove the key to run without TCP-MD5"
            ]
        );
        let p = "x".repeat(80);
        let c = ok(&with_peer_keys(&format!("password = \"{p}\"")));
        assert_eq!(c.peers[0].password.as_deref().map(str::len), Some(80));
    }

    /// Two peers (v4, v6) under a `listen_addr` line.
    fn dual_stack(listen_addr: &str) -> String {
        format!(
            "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = {listen_addr}\n\n\
             [[peers]]\naddress = \"192.0.2.2\"\nremote_as = 65002\n\n\
             [[peers]]\naddress = \"2001:db8::1\"\nremote_as = 65002\n"
        )
    }

    #[test]
    fn local_address_defaults_from_listen_addr() {
        let c = ok(&dual_stack(r#"["0.0.0.0:179", "192.0.2.1:179", "[2001:db8::2]:179"]"#));
        assert_eq!(c.peers[0].local_address, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(c.peers[1].local_address, Some("2001:db8::2".parse().unwrap()));

        // Wildcards name no address: the kernel chooses.
        let c = ok(&dual_stack(r#"["0.0.0.0:179", "[::]:179"]"#));
        assert_eq!(c.peers[0].local_address, None);
        assert_eq!(c.peers[1].local_address, None);

        // Only the peer's own family counts.
        let c = ok(&dual_stack(r#""192.0.2.1:179""#));
        assert_eq!(c.peers[0].local_address, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(c.peers[1].local_address, None);

        // An explicit one wins over the listen address.
        let text = dual_stack(r#""192.0.2.1:179""#)
            .replace("remote_as = 65002\n\n", "remote_as = 65002\nlocal_address = \"192.0.2.7\"\n\n");
        assert_eq!(ok(&text).peers[0].local_address, Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn local_address_family_must_match() {
        assert_eq!(
            errors(&with_peer_keys("name = \"up\"\nlocal_address = \"2001:db8::2\"")),
            vec![
                "focl.toml:9: peers[0].local_address: local_address 2001:db8::2 is IPv6 but peer \
                 192.0.2.2 (up) is IPv4; a session runs over one family"
            ]
        );
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
                 route_refresh, local_address, max_prefixes, max_prefixes_restart_secs, \
                 max_prefixes_warning_only, send_hold_time_secs",
                "focl.toml:12: peers[1].address: peer address 192.0.2.2 is already used by \
                 peers[0] (line 7)",
                "focl.toml:14: peers[1].password: TCP-MD5 password of peer 192.0.2.2 is empty; \
                 set 1 to 80 bytes, or remove the key to run without TCP-MD5",
                "focl.toml:17: prefixes[0].network: host bits are set past the prefix length \
                 (did you mean 10.0.0.0/8?)",
                "focl.toml:19: bogus: unknown table 'bogus'; known tables: global, peers, \
                 prefixes, archive",
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

    #[test]
    fn error_display() {
        let e = ConfigError {
            file: FILE.into(),
            line: Some(12),
            key: "peers[1].hold_time_secs".into(),
            message: "hold time must be 0 or at least 3 seconds (RFC 4271 §4.2), got 2".into(),
        };
        assert_eq!(
            e.to_string(),
            "focl.toml:12: peers[1].hold_time_secs: hold time must be 0 or at least 3 seconds \
             (RFC 4271 §4.2), got 2"
        );
        let e = ConfigError { line: None, key: "global.asn".into(), message: "missing required key".into(), ..e };
        assert_eq!(e.to_string(), "focl.toml: global.asn: missing required key");
    }

    #[test]
    fn suggestions() {
        let known = ["hold_time_secs", "remote_as", "asn", "name"];
        assert_eq!(closest("hold_time", &known), Some("hold_time_secs"));
        assert_eq!(closest("remote-as", &known), Some("remote_as"));
        assert_eq!(closest("ASN", &known), Some("asn"));
        assert_eq!(closest("holdtime", &known), Some("hold_time_secs"));
        assert_eq!(closest("password", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
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
}
