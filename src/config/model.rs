//! The configuration model: what a checked file becomes, with every default filled in.
//!
//! Built by the section readers (`global`, `peers`, `prefixes`, `archive`) and handed by
//! [`super::load`] to focld's threads, which trust it without checking again. The printer
//! (`printer.rs`) shows it back as TOML for `focld -n -v` through the `Serialize` derived
//! here: a field is printed under its own name unless an attribute says otherwise, so a new
//! key is a field here and a line in its section's reader. Secrets are masked by
//! `printer::masked`; `None` fields are left out (TOML has no null).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use log::LevelFilter;
use serde::Serialize;

use crate::mrt::file::{Compression, Layout};
use crate::mrt::record::Precision;
use crate::prefix::Prefix;
use crate::wire::role::Role;

use super::printer;

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
/// `multihop` of an eBGP peer: directly connected, like every router's default.
pub const DEFAULT_EBGP_MULTIHOP: u8 = 1;
/// `multihop` of an iBGP peer: anywhere in the AS.
pub const DEFAULT_IBGP_MULTIHOP: u8 = 255;

/// The whole configuration, defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The file this was read from, for messages and reloads.
    #[serde(skip)]
    pub file: PathBuf,
    /// The directory relative paths were taken from (where focld was started); a reload
    /// takes them from there again.
    #[serde(skip)]
    pub base_dir: PathBuf,
    pub global: Global,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<PrefixConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceConfig>,
    pub archive: ArchiveConfig,
    #[serde(skip_serializing_if = "RpkiConfig::is_empty")]
    pub rpki: RpkiConfig,
    #[serde(skip_serializing_if = "super::BmpConfig::is_empty")]
    pub bmp: super::BmpConfig,
    /// `[sets.*]` and `[policy.*]` as written (printed back by `focld -n -v`).
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub sets: toml::Table,
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub policy: toml::Table,
    /// `[blackhole]` as written (RFC 7999; compiled into `policies`).
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub blackhole: toml::Table,
    /// The same, compiled, with every peer's import and export chains (issue 17).
    #[serde(skip)]
    pub policies: std::sync::Arc<crate::policy::Engine>,
    /// Things worth saying that do not stop focld (e.g. secrets in a world-readable file).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// `[global]`: who this speaker is and where it listens.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    #[serde(serialize_with = "printer::lowercase")]
    pub log_level: LevelFilter,
    /// Log to this file (reopened on SIGHUP) instead of standard error.
    pub log_file: Option<PathBuf>,
    /// Drop root privileges to this user and group once the sockets are bound.
    pub user: Option<String>,
    pub group: Option<String>,
}

/// One `[[peers]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    #[serde(serialize_with = "printer::masked")]
    pub password: Option<String>,
    /// Advertise the route refresh capability (RFC 2918).
    pub route_refresh: bool,
    /// Advertise Enhanced Route Refresh (RFC 7313): refreshes bracketed by BoRR/EoRR, with
    /// what a refresh did not re-send swept.
    pub enhanced_route_refresh: bool,
    /// Advertise Extended Message (RFC 8654): messages up to 65,535 bytes once negotiated.
    pub extended_messages: bool,
    /// Our BGP Role on this eBGP session (RFC 9234); `None`: no Role capability, no OTC rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Refuse a peer that sends no Role capability (RFC 9234 §4.2). Printed only when true:
    /// without `role` the reader refuses the key.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict_role: bool,
    /// ADD-PATH (RFC 7911) for every family: `receive` keeps every path the peer sends for a
    /// prefix; `off`, one path per prefix.
    pub add_path: AddPathMode,
    /// ADD-PATH: the most paths kept from this peer for one prefix; more are refused, counted
    /// and logged.
    pub max_paths_per_prefix: u16,
    /// Source address for outgoing connections. When not set in the file: the first
    /// `listen_addr` of the peer's family that is not a wildcard, else `None` (the kernel picks).
    pub local_address: Option<IpAddr>,
    /// Most prefixes (both families) accepted from the peer; over it, Cease / Maximum Number
    /// of Prefixes Reached (RFC 4486) and the peer stays down. `None`: no limit.
    pub max_prefixes: Option<u32>,
    /// Start again this long after a max-prefix shutdown; `None`: only by `focl peer reset`.
    pub max_prefixes_restart_secs: Option<u32>,
    /// Only log when the limit is passed. Printed only when true: without `max_prefixes` the
    /// reader refuses the key, and false is its default.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub max_prefixes_warning_only: bool,
    /// RFC 9687 send hold time: a peer that takes no data for this long while focld has some
    /// to send is dropped. 0: the RFC's default, max(8 minutes, 2 x the hold time).
    pub send_hold_time_secs: u32,
    /// How many hops away the peer may be, 1 to 255: the TTL (hop limit) of our packets, or
    /// with `ttl_security` the hops the minimum allows. Default: 1 for eBGP, 255 for iBGP.
    pub multihop: u8,
    /// GTSM (RFC 5082): send with TTL 255, drop what arrives with less than 256 - `multihop`.
    pub ttl_security: bool,
    /// Graceful restart (RFC 4724, 8538, 9494): `graceful_restart` and its timers.
    #[serde(flatten)]
    pub graceful: super::graceful::GracefulConfig,
    /// Import and export policy chains (names of `[policy.NAME]`); empty: the defaults.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub import: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub export: Vec<String>,
    /// Exported learned routes keep AS_PATH and NEXT_HOP (RFC 7947 route server).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub route_server: bool,
}

impl PeerConfig {
    /// How logs and messages name the peer: "192.0.2.2 (upstream)" or "192.0.2.2".
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{} ({})", self.address, name),
            None => self.address.to_string(),
        }
    }

    /// Equal but for the policy chains, which a reload applies without a session reset.
    pub fn same_session(&self, other: &PeerConfig) -> bool {
        let strip =
            |p: &PeerConfig| PeerConfig { import: Vec::new(), export: Vec::new(), route_server: false, ..p.clone() };
        strip(self) == strip(other)
    }

    /// Internal BGP: both ends in the same AS (RFC 4271 §1.1).
    pub fn is_ibgp(&self) -> bool {
        self.remote_as == self.local_as
    }
}

/// `add_path`: focld receives several paths per prefix (RFC 7911), it never sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddPathMode {
    Off,
    Receive,
}

/// One `[[prefixes]]` entry: a static route to announce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefixConfig {
    #[serde(serialize_with = "printer::display")]
    pub network: Prefix,
    /// Same family as `network`; `None` lets the session pick (its local address).
    pub next_hop: Option<IpAddr>,
    /// RFC 7999: announced with BLACKHOLE and NO_EXPORT, the next hop defaulting to the
    /// `[blackhole]` discard address of its family.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blackhole: bool,
}

/// `[archive]`: MRT archiving. The table is optional.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveConfig {
    pub enabled: bool,
    /// Root of the archive; files go below it in the layout's directories.
    pub dir: PathBuf,
    #[serde(serialize_with = "printer::layout")]
    pub layout: Layout,
    #[serde(serialize_with = "printer::compression")]
    pub compression: Compression,
    /// Update files rotate at multiples of this from midnight UTC.
    pub updates_interval_secs: u64,
    /// RIB snapshots at multiples of this from midnight UTC; 0 for none.
    pub rib_interval_secs: u64,
    #[serde(serialize_with = "printer::precision")]
    pub timestamp_precision: Precision,
    pub record_keepalives: bool,
    /// Delete a finished local file this many days after it was finished, once every
    /// destination has confirmed it; `None` keeps files forever.
    pub retain_local_days: Option<u32>,
    /// `[[archive.destinations]]`: where finished files are replicated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<DestinationConfig>,
}

/// One `[[archive.destinations]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DestinationConfig {
    /// A directory, typically another disk or a network mount.
    Local {
        path: PathBuf,
    },
    S3(S3Destination),
}

/// An S3 or S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Destination {
    pub bucket: String,
    /// Key prefix without leading or trailing '/'; may be empty.
    pub prefix: String,
    pub region: String,
    /// `http(s)://host[:port]` of an S3-compatible store; `None` for AWS.
    pub endpoint: Option<String>,
    pub path_style: bool,
    /// Printed as the keys of its variant: none, `credentials_file`/`profile`, or
    /// `access_key`/`secret_key`.
    #[serde(flatten)]
    pub credentials: S3Credentials,
}

/// Where an S3 destination's keys come from.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum S3Credentials {
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) of focld's environment.
    Environment,
    /// An AWS credentials file (INI) and its profile (default "default").
    File {
        #[serde(rename = "credentials_file")]
        path: PathBuf,
        profile: Option<String>,
    },
    /// `access_key` / `secret_key` in the config itself.
    Inline {
        access_key: String,
        #[serde(serialize_with = "printer::masked_str")]
        secret_key: String,
    },
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

/// The RTR port (RFC 8210 §15: IANA "rpki-rtr", 323).
pub const RTR_PORT: u16 = 323;
/// RTR cache preference when none is given (RFC 8210 §10: lower is preferred).
pub const DEFAULT_RTR_PREFERENCE: u8 = 100;

/// `[rpki]`: where VRPs come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RpkiConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<RtrCacheConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<VrpFileConfig>,
}

impl RpkiConfig {
    pub fn is_empty(&self) -> bool {
        self.caches.is_empty() && self.files.is_empty()
    }
}

/// `[[rpki.caches]]`: an RPKI-to-Router cache (RFC 8210).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtrCacheConfig {
    pub address: IpAddr,
    pub port: u16,
    /// RFC 8210 §10: the most preferred (lowest) reachable cache is used.
    pub preference: u8,
    #[serde(serialize_with = "printer::masked", skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub min_version: u8,
    pub max_version: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_secs: Option<u32>,
}

impl RtrCacheConfig {
    /// `address:port`, for logs and focl.
    pub fn label(&self) -> String {
        std::net::SocketAddr::new(self.address, self.port).to_string()
    }
}

/// `[[rpki.files]]`: VRPs from a JSON file in the rpki-client format, read at start and on
/// every reload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrpFileConfig {
    pub path: PathBuf,
}

/// `prefix_shift` of a `[[sources]]` entry when the file does not set it: prefixes as dumped.
pub const DEFAULT_PREFIX_SHIFT: i16 = 0;

/// One `[[sources]]` entry: a table read from a file and announced to some peers (focl.toml(5)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceConfig {
    /// Unique; `focl source reload NAME` uses it.
    pub name: String,
    /// The only type is "mrt" (an RFC 6396 TABLE_DUMP_V2 file, plain, gzip or bzip2).
    #[serde(rename = "type")]
    pub kind: String,
    pub file: PathBuf,
    /// The RIB peer of the dump whose routes are taken; `None`: the first route of every prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    /// Added to the first octet of every IPv4 prefix and to the first 16 bits of every IPv6
    /// prefix; prefixes that would leave unicast space are skipped.
    pub prefix_shift: i16,
    /// Announce at most this many prefixes (the first ones of the file, after the shift).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `[[peers]]` (by name or address) the routes go to.
    pub to: Vec<String>,
}

impl SourceConfig {
    /// Whether `to` names a peer with this address or name.
    pub fn targets(&self, address: &IpAddr, name: Option<&str>) -> bool {
        self.to.iter().any(|t| t.parse::<IpAddr>().ok().as_ref() == Some(address) || Some(t.as_str()) == name)
    }
}
