//! The control protocol shared by focld's control thread and the focl client.
//!
//! NDJSON over a Unix stream socket: one `Request` a line, one `Reply` a line with the same id.
//! The field names of the result types below are the contract of `focl -j` (snake_case, stable,
//! documented in focl(8)); add fields, never rename them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest request line the daemon reads; a longer one gets `request_too_large`.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// One request line: `{"id":1,"cmd":"peer_show","args":{"peer":"192.0.2.2"}}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
}

/// Every command focld serves: the `cmd` word, its `args` object and (in the comment) what the
/// reply's `result` holds. This enum is the one list of commands; focl builds its requests
/// from it and focld dispatches on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum Command {
    /// -> `Vec<PeerSummary>`
    PeerList {},
    /// -> `PeerDetail`
    PeerShow { peer: String },
    /// Cease / Administrative Reset, then start again -> `ActionResult`
    PeerReset { peer: String },
    /// ROUTE-REFRESH (RFC 2918) for "ipv4_unicast"|"ipv6_unicast", or both -> `ActionResult`
    PeerRefresh {
        peer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        family: Option<String>,
    },
    /// Cease / Administrative Shutdown, then stay down -> `ActionResult`
    PeerDisable { peer: String },
    /// Start again after `peer_disable` -> `ActionResult`
    PeerEnable { peer: String },
    /// -> `RibSummary`
    RibSummary {},
    /// The peer's Adj-RIB-In, optionally only PREFIX and what it covers, or, for a bare
    /// address, the longest prefix of the peer that covers it -> `RouteList` (`Route`s, or
    /// `RouteDetail`s with `detail`), `{"count": N}` with `count`, or a stream (`stream`).
    RibIn {
        peer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        #[serde(default, skip_serializing_if = "RouteFilter::is_empty")]
        filter: RouteFilter,
        #[serde(default, skip_serializing_if = "is_false")]
        detail: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        count: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        stream: bool,
    },
    /// Longest-prefix match of an address or prefix across every peer: the best route of
    /// the matching prefix, or every peer's route with `all`; `more`/`less` add the more and
    /// less specific prefixes -> `RouteLookup`, `{"count": N}` with `count`, or a stream.
    RibLookup {
        target: String,
        #[serde(default, skip_serializing_if = "is_false")]
        all: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        less: bool,
        #[serde(default, skip_serializing_if = "RouteFilter::is_empty")]
        filter: RouteFilter,
        #[serde(default, skip_serializing_if = "is_false")]
        detail: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        count: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        stream: bool,
    },
    /// What focld announces to the peer -> `RouteList`
    RibOut { peer: String },
    /// -> `ArchiveStatus`
    ArchiveStatus {},
    /// -> {"finished": relative path of the finished update file or null}
    ArchiveRotate {},
    /// -> {"started": true}
    ArchiveSnapshot {},
    /// -> {"destinations": N}
    ArchiveRetry {},
    /// -> `ReloadReport`, or the error `bad_config` listing the new file's errors
    Reload {},
    /// -> `DaemonStatus`
    Status {},
    /// -> `RpkiStatus`
    RpkiStatus {},
    /// -> `RpkiLookup`
    RpkiLookup { prefix: String, origin: u32 },
    /// Every `[[bmp.stations]]` entry -> `Vec<BmpStationStatus>`
    BmpStatus {},
    /// Every `[[sources]]` entry -> `Vec<SourceStatus>`
    SourceList {},
    /// One source, or every one without `name` -> `Vec<SourceStatus>`
    SourceStatus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Read the source's file again and announce the difference -> `SourceStatus` (after the
    /// file is read), or the load error
    SourceReload { name: String },
    /// A stream, not one reply: data lines `{"id":N,"data":EVENT}` follow until focld ends the
    /// subscription with one closing reply line (an error such as `slow_consumer`, or
    /// `{"events":N}` at shutdown). EVENT is described in focl(8).
    Monitor {
        /// Only this neighbor (address or name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// Only UPDATEs carrying this prefix (and, with `more`, what it covers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
        /// Only UPDATEs whose AS path ends in this AS.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<u32>,
        /// "update", "state", "notification" or "all" (the default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        r#type: Option<String>,
    },
    /// The import policy's decision on the peer's route(s) for exactly PREFIX, term by term
    /// -> `PolicyExplain` (issue 17)
    PolicyExplain { peer: String, prefix: String },
    /// Announce PREFIX as a blackhole route (RFC 7999) to every neighbor, or `peer` only
    /// -> `Vec<BlackholeRoute>`
    BlackholeAdd {
        prefix: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// Withdraw a blackhole route added with `blackhole_add` -> `Vec<BlackholeRoute>`
    BlackholeDel {
        prefix: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// -> `Vec<BlackholeRoute>`
    BlackholeList {},
}

/// A blackhole route focld announces (RFC 7999).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlackholeRoute {
    pub prefix: String,
    /// The neighbor it goes to; null: every neighbor.
    pub peer: Option<String>,
    pub next_hop: String,
    /// "config" (`[[prefixes]] blackhole = true`) or "focl" (`focl blackhole add`).
    pub source: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Filters of `rib_in` and `rib_lookup`: a route is shown when it passes every one given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteFilter {
    /// The origin AS: the last AS of the AS_PATH (when it ends in an AS_SEQUENCE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<u32>,
    /// An AS anywhere in the AS_PATH.
    #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
    pub path_as: Option<u32>,
    /// A community, "65000:100" or no-export, no-advertise, no-export-subconfed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// A large community, "65000:1:2".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_community: Option<String>,
    /// The AS of the neighbor the route came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_as: Option<u32>,
    /// Only best paths (RFC 4271 §9.1.2).
    #[serde(default, skip_serializing_if = "is_false")]
    pub best: bool,
    /// An origin validation state (RFC 6811): "valid", "invalid" or "not-found".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpki: Option<String>,
    /// An ASPA verdict, "valid", "invalid" or "unknown": the route's `aspa.state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspa: Option<String>,
    /// Only routes the import policy rejected (issue 17).
    #[serde(default, skip_serializing_if = "is_false")]
    pub rejected: bool,
}

impl RouteFilter {
    pub fn is_empty(&self) -> bool {
        *self == RouteFilter::default()
    }
}

/// A streamed answer (`"stream": true`), as the control thread receives it from the thread
/// that produces it: data in order, then exactly one end. On the socket each datum is one
/// line `{"id":N,"data":{...}}` and the end is an ordinary `Reply` line with the same id.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamItem {
    Data(Vec<Value>),
    End(Result<Value, CtlError>),
}

/// One data line of a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamLine {
    pub id: u64,
    pub data: Value,
}

impl Command {
    /// Whether the command is answered by a stream of lines rather than one reply.
    pub fn is_stream(&self) -> bool {
        matches!(self, Command::Monitor { .. })
    }

    /// The `cmd` word of this command.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("cmd").and_then(Value::as_str).map(String::from))
            .unwrap_or_default()
    }
}

/// The envelope of a request line before its command is known.
#[derive(Deserialize)]
struct RawRequest {
    id: u64,
    cmd: String,
    #[serde(default)]
    args: Value,
}

impl Request {
    /// Decode one request line. A line that is no request gets `bad_request`, an unknown
    /// `cmd` `unknown_command` (with the list of commands), wrong `args` `bad_argument`; the
    /// error carries the line's id when it has one.
    pub fn decode(line: &[u8]) -> Result<Request, (u64, CtlError)> {
        let raw: RawRequest = serde_json::from_slice(line).map_err(|e| {
            // Recover the id when the line is JSON with an id but not a valid request.
            let id = serde_json::from_slice::<Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_u64))
                .unwrap_or(0);
            (id, CtlError::new(code::BAD_REQUEST, format!("not a valid request: {e}")))
        })?;
        // Commands without arguments may send `"args": {}`, `null` or nothing.
        let args = if raw.args.is_null() { Value::Object(Default::default()) } else { raw.args };
        let tagged = serde_json::json!({ "cmd": raw.cmd, "args": args });
        match serde_json::from_value::<Command>(tagged) {
            Ok(command) => Ok(Request { id: raw.id, command }),
            Err(e) => {
                let text = e.to_string();
                let err = match text.strip_prefix("unknown variant ") {
                    Some(rest) => CtlError::new(
                        code::UNKNOWN_COMMAND,
                        format!("unknown command '{}'; {}", raw.cmd, rest.split_once(", ").map_or(rest, |(_, l)| l)),
                    ),
                    None => CtlError::new(code::BAD_ARGUMENT, format!("bad arguments for '{}': {text}", raw.cmd)),
                };
                Err((raw.id, err))
            }
        }
    }
}

/// One reply line: `{"id":1,"ok":true,"result":...}` or `{"id":1,"ok":false,"error":{...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CtlError>,
}

impl Reply {
    pub fn ok(id: u64, result: Value) -> Reply {
        Reply { id, ok: true, result: Some(result), error: None }
    }

    pub fn err(id: u64, error: CtlError) -> Reply {
        Reply { id, ok: false, result: None, error: Some(error) }
    }
}

/// An error reply. `code` is a stable snake_case word (below); `message` is for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtlError {
    pub code: String,
    pub message: String,
}

impl CtlError {
    pub fn new(code: &str, message: impl Into<String>) -> CtlError {
        CtlError { code: code.to_string(), message: message.into() }
    }

    /// The error focl gets when archiving is off.
    pub fn archive_off() -> CtlError {
        CtlError::new(code::NOT_SUPPORTED, "archiving is off; set enabled = true in [archive] and restart focld")
    }
}

/// Error codes used in `CtlError::code`.
pub mod code {
    pub const BAD_REQUEST: &str = "bad_request";
    pub const REQUEST_TOO_LARGE: &str = "request_too_large";
    pub const UNKNOWN_COMMAND: &str = "unknown_command";
    pub const BAD_ARGUMENT: &str = "bad_argument";
    pub const NO_SUCH_PEER: &str = "no_such_peer";
    /// `source_status`, `source_reload`: no `[[sources]]` entry of that name.
    pub const NO_SUCH_SOURCE: &str = "no_such_source";
    pub const NOT_ESTABLISHED: &str = "not_established";
    pub const NOT_SUPPORTED: &str = "not_supported";
    pub const INTERNAL: &str = "internal";
    /// `reload`: the new configuration has errors (the message lists them, one a line).
    pub const BAD_CONFIG: &str = "bad_config";
    /// A `monitor` subscriber did not read fast enough and was cut off.
    pub const SLOW_CONSUMER: &str = "slow_consumer";
}

/// `focl rpki status`: every VRP source and what is in use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpkiStatus {
    /// VRPs in use (the union of the files and the caches in use, each counted once).
    pub vrps_in_use: u64,
    /// ASPA records in use (customer ASes, the union of the same sources).
    #[serde(default)]
    pub aspas_in_use: u64,
    pub caches: Vec<RtrCacheStatus>,
    pub files: Vec<VrpFileStatus>,
}

/// A route's ASPA verification (draft-ietf-sidrops-aspa-verification-22 §6): with a BGP
/// Role (RFC 9234) on the session, the procedure the role calls for; without one (a
/// collector), both, `state` being the downstream one (§7.5: the procedure for a relationship
/// that cannot be told).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AspaVerdict {
    /// "valid", "invalid" or "unknown": what `--aspa` and policy match.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downstream: Option<String>,
}

/// One RTR cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtrCacheStatus {
    /// `address:port`.
    pub cache: String,
    pub preference: u8,
    /// "down", "connecting", "querying", "receiving" or "synchronized".
    pub state: String,
    /// Whether its VRPs are in use (the most preferred synchronized caches).
    pub in_use: bool,
    /// The RTR protocol version of the current (or next) connection.
    pub version: u8,
    pub session_id: Option<u16>,
    pub serial: Option<u32>,
    pub vrps: u64,
    /// ASPA records (RTR version 2).
    #[serde(default)]
    pub aspas: u64,
    /// Unix time of the last End of Data.
    pub last_update: Option<u64>,
    pub refresh_secs: u32,
    pub retry_secs: u32,
    pub expire_secs: u32,
    pub last_error: Option<String>,
}

/// One VRP file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrpFileStatus {
    pub path: String,
    pub vrps: u64,
    #[serde(default)]
    pub aspas: u64,
    /// Unix time it was last read successfully.
    pub loaded_at: Option<u64>,
    pub last_error: Option<String>,
}

/// `focl source status`: one `[[sources]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub name: String,
    /// "mrt".
    #[serde(rename = "type")]
    pub kind: String,
    pub file: String,
    /// The RIB peer of the dump whose routes are taken (address), when configured.
    pub peer: Option<String>,
    /// Its AS number, from the file's PEER_INDEX_TABLE.
    pub peer_as: Option<u32>,
    /// "loading", "loaded" or "error".
    pub state: String,
    /// Routes of the table in use, by family.
    pub routes: FamilyCounts,
    /// Prefixes left out by `prefix_shift`, by `limit`, and for unusable attributes.
    pub skipped_shift: u64,
    pub skipped_limit: u64,
    pub skipped_bad: u64,
    /// Unix time the table in use was read, and how long reading took.
    pub last_load: Option<u64>,
    pub load_ms: Option<u64>,
    /// Why the last load failed (the table read before, if any, stays in use).
    pub last_error: Option<String>,
    /// Unix time of the last failed load.
    pub last_error_time: Option<u64>,
    /// The configured `to`, and each neighbor's announcement state.
    pub to: Vec<String>,
    pub peers: Vec<SourcePeerStatus>,
}

/// A source's announcement to one neighbor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePeerStatus {
    /// The neighbor's address.
    pub peer: String,
    pub name: Option<String>,
    /// "down" (no established session), "sending" or "sent".
    pub state: String,
    /// Prefixes sent on the current session.
    pub sent: u64,
    /// Unix time the whole table had gone out on the current session.
    pub done_at: Option<u64>,
}

/// `focl rpki lookup`: RFC 6811 route origin validation of one (prefix, origin AS).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpkiLookup {
    pub prefix: String,
    pub origin: u32,
    /// "valid", "invalid" or "not-found".
    pub state: String,
    /// The covering VRPs, which decide the state.
    pub vrps: Vec<VrpEntry>,
}

/// A VRP as focl shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrpEntry {
    pub prefix: String,
    pub max_length: u8,
    pub asn: u32,
}

/// The live update stream (`focl monitor`), in `focl status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorStatus {
    /// Subscribers now.
    pub subscribers: u64,
    /// Events sent to subscribers since start (one per subscriber it went to).
    pub events_sent: u64,
    /// Events peer threads dropped because the monitor thread was behind.
    pub dropped: u64,
    /// Subscribers cut off because they did not read fast enough.
    pub cut_off: u64,
}

/// `focl status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub version: String,
    pub pid: u32,
    pub uptime_secs: u64,
    pub config_file: String,
    /// Unix time of the last successful reload, if any.
    pub last_reload: Option<u64>,
    pub asn: u32,
    pub router_id: String,
    pub peers: u64,
    /// Peers per FSM state name.
    pub peers_by_state: std::collections::BTreeMap<String, u64>,
    pub peers_disabled: u64,
    pub routes: FamilyCounts,
    pub archive: ArchiveStatus,
    #[serde(default)]
    pub monitor: MonitorStatus,
}

/// `focl reload`: what changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Peers whose session settings changed: their sessions were reset.
    pub reset: Vec<String>,
    pub unchanged: u64,
    pub prefixes_added: Vec<String>,
    pub prefixes_removed: Vec<String>,
    /// The archive or replication settings changed (they apply from the next file).
    pub archive_changed: bool,
    /// `[global]` keys that changed and apply at once, as `key: old -> new`
    /// (e.g. `log_level: info -> debug`).
    #[serde(default)]
    pub global_changed: Vec<String>,
    /// `[[sources]]` by name: added (read and announced), removed (withdrawn), changed
    /// (withdrawn, read again and announced).
    #[serde(default)]
    pub sources_added: Vec<String>,
    #[serde(default)]
    pub sources_removed: Vec<String>,
    #[serde(default)]
    pub sources_changed: Vec<String>,
    /// Peers whose import or export policy changed, and what evaluating again did.
    #[serde(default)]
    pub policy_changed: Vec<PolicyChange>,
}

/// One peer's policy change on reload (issue 17), without a session reset. Import: its routes
/// evaluated again from the pre-policy Adj-RIB-In. Export: the Loc-RIB's prefixes evaluated
/// again for it, and its Adj-RIB-Out's changes: `now_accepted` routes announced,
/// `now_rejected` withdrawn, `modified` announced again with other attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChange {
    /// The peer's label: "192.0.2.2 (upstream)".
    pub peer: String,
    /// "import" or "export".
    pub direction: String,
    pub evaluated: u64,
    /// Rejected before, accepted now.
    pub now_accepted: u64,
    /// Accepted before, rejected now.
    pub now_rejected: u64,
    /// Accepted before and now, with other post-policy attributes.
    pub modified: u64,
}

/// Per-family route counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyCounts {
    pub ipv4_unicast: u64,
    pub ipv6_unicast: u64,
}

/// One line of `focl peer list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSummary {
    pub address: String,
    pub name: Option<String>,
    pub remote_as: u32,
    /// RFC 4271 state name: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// Seconds in the current state.
    pub state_secs: u64,
    /// Seconds since the session reached Established, when it is.
    pub uptime_secs: Option<u64>,
    pub prefixes_received: FamilyCounts,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub flaps: u64,
    pub passive: bool,
    /// Taken down by `focl peer disable` (stays down until `focl peer enable`).
    #[serde(default)]
    pub disabled: bool,
    /// Why an Idle peer does not try to connect: "admin down" (`focl peer disable`) or
    /// "max-prefix" (sent more than `max_prefixes`); none while it may connect.
    #[serde(default)]
    pub down_reason: Option<String>,
    /// For a max-prefix shutdown with `max_prefixes_restart_secs`: when it starts again.
    #[serde(default)]
    pub restart_in_secs: Option<u64>,
}

/// Messages counted by type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgCounters {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
    pub total: u64,
}

/// A NOTIFICATION sent or received, in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// "sent" or "received".
    pub direction: String,
    pub code: u8,
    pub subcode: u8,
    /// IANA names: "Cease / Administrative Shutdown".
    pub name: String,
    /// Shutdown communication (RFC 9003) or other decoded data, sanitised; null if none.
    pub reason: Option<String>,
    /// Seconds since it happened.
    pub age_secs: u64,
}

/// `focl peer show`.
/// One capability in `peer show`: "multiprotocol(ipv6_unicast)", "extended_message",
/// "role(customer)", …; advertised by us, received from the peer, in use on the session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityState {
    pub name: String,
    pub advertised: bool,
    pub received: bool,
    pub negotiated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDetail {
    pub address: String,
    pub name: Option<String>,
    pub remote_as: u32,
    pub local_as: u32,
    pub remote_port: u16,
    pub passive: bool,
    pub state: String,
    pub state_secs: u64,
    pub uptime_secs: Option<u64>,
    /// The peer's BGP identifier from its OPEN, once received.
    pub remote_router_id: Option<String>,
    /// Addresses of the current TCP connection ("ip:port"), when there is one.
    pub local_endpoint: Option<String>,
    pub remote_endpoint: Option<String>,
    pub hold_time_configured: u16,
    /// Negotiated hold time and keepalive interval (seconds), once OPENs were exchanged.
    pub hold_time: Option<u16>,
    pub keepalive_time: Option<u16>,
    /// Capability names: "multiprotocol(ipv4_unicast)", "route_refresh", "four_octet_as(65001)".
    pub capabilities_sent: Vec<String>,
    pub capabilities_received: Vec<String>,
    /// Every capability either side advertised, by name, with where it stands.
    #[serde(default)]
    pub capabilities: Vec<CapabilityState>,
    /// Our BGP Role on the session (RFC 9234), as configured.
    #[serde(default)]
    pub role: Option<String>,
    /// The role the peer sent in its OPEN.
    #[serde(default)]
    pub remote_role: Option<String>,
    /// Families both sides negotiated.
    pub families: Vec<String>,
    pub messages_sent: MsgCounters,
    pub messages_received: MsgCounters,
    pub prefixes_received: FamilyCounts,
    pub prefixes_sent: FamilyCounts,
    pub last_error: Option<LastError>,
    /// Times the session left Established.
    pub flaps: u64,
    pub connect_attempts: u64,
    pub password_set: bool,
    /// `multihop` and `ttl_security` (GTSM, RFC 5082) as configured.
    #[serde(default)]
    pub multihop: u8,
    #[serde(default)]
    pub ttl_security: bool,
    /// GTSM is on and no message ever came from the neighbor while connections timed out or
    /// arrived with too small a TTL; `hint` says more.
    #[serde(default)]
    pub gtsm_likely_cause: bool,
    #[serde(default)]
    pub disabled: bool,
    /// As in `PeerSummary`.
    #[serde(default)]
    pub down_reason: Option<String>,
    #[serde(default)]
    pub restart_in_secs: Option<u64>,
    /// A hint for the operator when the session is not up (e.g. a likely TCP-MD5 mismatch).
    pub hint: Option<String>,
    /// Malformed UPDATEs handled without a reset (RFC 7606), since focld started.
    #[serde(default)]
    pub update_errors: UpdateErrors,
    /// Of `prefixes_received`, those stale (RFC 4724 graceful restart, RFC 7313).
    #[serde(default)]
    pub stale_routes: FamilyCounts,
    /// The neighbor's graceful restart in progress (RFC 4724 §4.2), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulStatus>,
}

/// A neighbor's graceful restart in progress, as the RIB keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GracefulStatus {
    /// Families whose routes are stale, one entry each.
    pub families: Vec<GracefulFamily>,
    /// Sessions that ended during this restart (more than 1: the neighbor flapped).
    pub restarts: u32,
    /// Seconds until the hard ceiling that sweeps every stale route whatever happens.
    pub ends_at_latest_in_secs: u64,
}

/// One family of a graceful restart in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GracefulFamily {
    pub family: String,
    /// "restarting" (restart timer, the session is down), "long_lived" (RFC 9494 long-lived
    /// stale timer) or "waiting_eor" (back; stale timer until End-of-RIB).
    pub phase: String,
    /// Unix time the family's routes went stale.
    pub since: u64,
    /// Seconds until the running timer sweeps (or, restarting with LLGR, goes long-lived).
    pub expires_in_secs: u64,
    pub stale_routes: u64,
}

/// RFC 7606 counters of one neighbor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateErrors {
    /// UPDATEs whose announcements were turned into withdrawals.
    pub treat_as_withdraw: u64,
    /// Attributes dropped from otherwise accepted UPDATEs.
    pub attribute_discard: u64,
    /// The latest finding ("AS_PATH: a segment has no AS numbers (treat-as-withdraw, RFC 7606)").
    pub last: Option<String>,
}

/// Result of `peer_reset` and `peer_refresh`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub peer: String,
    pub message: String,
}

/// Per-peer line of `focl rib summary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibPeerSummary {
    pub address: String,
    pub name: Option<String>,
    pub routes: FamilyCounts,
    /// Its routes by origin validation state (RFC 6811); absent without `[rpki]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rov: Option<RovCounts>,
    /// Of `routes`, those stale (a graceful restart, RFC 4724, or an enhanced refresh, RFC 7313).
    #[serde(default)]
    pub stale: FamilyCounts,
    /// Its routes the import policy rejected (kept in the Adj-RIB-In), issue 17.
    #[serde(default)]
    pub rejected: u64,
    /// Its blackhole routes accepted by `[blackhole]` (RFC 7999).
    #[serde(default)]
    pub blackholes: u64,
}

/// Routes by RFC 6811 origin validation state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RovCounts {
    pub valid: u64,
    pub invalid: u64,
    pub not_found: u64,
}

/// `focl rib summary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibSummary {
    pub peers: Vec<RibPeerSummary>,
    /// Routes over all Adj-RIBs-In, by family.
    pub routes: FamilyCounts,
    /// Distinct interned attribute sets held.
    pub attribute_sets: u64,
    /// Prefixes configured for announcement, by family.
    pub announced: FamilyCounts,
    /// Every route by origin validation state (RFC 6811); absent without `[rpki]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rov: Option<RovCounts>,
}

/// One route of `focl rib in` / `focl rib out`, attributes decoded for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub prefix: String,
    pub next_hop: Option<String>,
    /// AS numbers of the AS_PATH as text, sets in braces: "65002 65010 {65020,65021}".
    pub as_path: String,
    /// "igp", "egp" or "incomplete".
    pub origin: Option<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// "65000:100" form.
    pub communities: Vec<String>,
    /// "65000:1:2" form.
    pub large_communities: Vec<String>,
    /// Seconds since the route was received (rib in) or configured (rib out).
    pub age_secs: u64,
    /// `rib in` / `rib lookup`: whether this route is its prefix's best path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<bool>,
    /// `rib in` / `rib lookup`: the neighbor the route came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerName>,
    /// The Only-to-Customer attribute (RFC 9234 §5): the AS the route may go down from.
    #[serde(default)]
    pub otc: Option<u32>,
    /// A route leak by its OTC (RFC 9234 §5 ingress rules on this session's role).
    #[serde(default)]
    pub otc_leak: bool,
    /// Route origin validation (RFC 6811): "valid", "invalid" or "not-found" ("not-found"
    /// while no cache or file has given VRPs); absent without `[rpki]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpki: Option<String>,
    /// ASPA-based AS_PATH verification; absent while focld has no ASPA records, and for
    /// routes from iBGP peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspa: Option<AspaVerdict>,
    /// Marked stale by the peer's BoRR (RFC 7313) or its graceful restart (RFC 4724) and not
    /// announced again yet.
    #[serde(default)]
    pub stale: bool,
    /// The path identifier of a route from an ADD-PATH session (RFC 7911), else null.
    #[serde(default)]
    pub path_id: Option<u32>,
    /// Long-lived stale (RFC 9494): kept past the peer's restart time, taken to carry the
    /// LLGR_STALE community, least preferred. Only present when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub llgr_stale: bool,
    /// The import policy rejected the route: kept in the Adj-RIB-In, never best (issue 17).
    #[serde(default, skip_serializing_if = "is_false")]
    pub rejected: bool,
}

/// A neighbor, as routes name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerName {
    pub address: String,
    pub name: Option<String>,
}

/// One segment of an AS_PATH (4-octet AS numbers, AS4_PATH merged in, RFC 6793).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsPathSegment {
    /// "sequence", "set", "confed_sequence" or "confed_set".
    #[serde(rename = "type")]
    pub kind: String,
    pub asns: Vec<u32>,
}

/// AGGREGATOR (RFC 4271 §5.1.7), with AS4_AGGREGATOR applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregator {
    pub asn: u32,
    pub address: String,
}

/// An attribute shown as received: type code, flags and value in hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawAttribute {
    #[serde(rename = "type")]
    pub type_code: u8,
    pub flags: u8,
    pub value: String,
}

/// One route with every attribute decoded (`--detail`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDetail {
    pub prefix: String,
    pub peer: Option<PeerName>,
    pub best: bool,
    pub age_secs: u64,
    pub origin: Option<String>,
    pub as_path: Vec<AsPathSegment>,
    pub next_hop: Option<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<String>,
    /// RFC 4360 / RFC 5701 in words ("rt 65000:100", "soo 192.0.2.1:7") or hex when unknown.
    pub extended_communities: Vec<String>,
    pub large_communities: Vec<String>,
    /// RFC 4456.
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
    /// RFC 9234 §5, as in `Route`.
    #[serde(default)]
    pub otc: Option<u32>,
    #[serde(default)]
    pub otc_leak: bool,
    /// RFC 6811, as in `Route`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpki: Option<String>,
    /// As in `Route`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspa: Option<AspaVerdict>,
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub path_id: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub llgr_stale: bool,
    /// The import policy rejected the route: kept in the Adj-RIB-In, never best (issue 17).
    #[serde(default, skip_serializing_if = "is_false")]
    pub rejected: bool,
    /// Attributes focld does not decode (and malformed ones), as received.
    pub other_attributes: Vec<RawAttribute>,
}

/// Result of `rib_lookup` (without `stream`): the routes, `Route`s or `RouteDetail`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteLookup {
    pub target: String,
    /// The longest prefix that matched, or null.
    pub matched: Option<String>,
    pub routes: Vec<Value>,
    pub count: u64,
}

/// Result of `rib_in` / `rib_out`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteList {
    pub peer: String,
    pub routes: Vec<Route>,
    /// Routes in `routes` (absent in replies from older focld versions).
    #[serde(default)]
    pub count: u64,
}

/// `focl archive status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveStatus {
    pub enabled: bool,
    pub dir: String,
    pub layout: String,
    pub compression: String,
    /// The update file being written (relative path), if any.
    pub current_file: Option<String>,
    pub current_records: u64,
    /// Totals since start.
    pub records_written: u64,
    pub bytes_written: u64,
    pub files_finished: u64,
    /// Records dropped because the writer could not keep up.
    pub dropped: u64,
    /// Unix times.
    pub last_rotation: Option<u64>,
    pub next_rotation: Option<u64>,
    pub last_snapshot: Option<String>,
    pub next_snapshot: Option<u64>,
    pub last_error: Option<String>,
    /// Replication, one entry per `[[archive.destinations]]`.
    #[serde(default)]
    pub destinations: Vec<DestinationStatus>,
}

/// One replication destination in `focl archive status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationStatus {
    /// "local:/path" or "s3://bucket/prefix at endpoint".
    pub destination: String,
    /// Finished files not yet confirmed by this destination, and their bytes (with manifests).
    pub pending_files: u64,
    pub pending_bytes: u64,
    /// Files delivered since focld started.
    pub delivered_files: u64,
    /// Unix time and file of the last delivery.
    pub last_success: Option<u64>,
    pub last_file: Option<String>,
    /// The error of the last failed attempt, cleared by a success.
    pub last_error: Option<String>,
    /// Unix time of the next attempt while backing off.
    pub next_retry: Option<u64>,
}

/// One line of `focl bmp status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BmpStationStatus {
    /// `address:port`.
    pub station: String,
    /// "connecting", "up", "waiting" (back-off) or "stopped".
    pub state: String,
    /// Unix seconds of the last state change.
    pub since: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    /// Connections dropped because the station fell `buffer_limit_mb` behind.
    pub drops: u64,
    /// Connections made after the first.
    pub reconnects: u64,
    /// Bytes waiting for the station now, and the limit.
    pub buffered_bytes: u64,
    pub buffer_limit_bytes: u64,
    pub last_error: Option<String>,
    /// Events the peer threads could not queue for the BMP thread (shared by every station).
    pub events_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_keeps_the_documented_wire_format() {
        let req = Request { id: 7, command: Command::PeerShow { peer: "192.0.2.2".into() } };
        let line = serde_json::to_string(&req).unwrap();
        assert_eq!(line, r#"{"id":7,"cmd":"peer_show","args":{"peer":"192.0.2.2"}}"#);
        assert_eq!(Request::decode(line.as_bytes()).unwrap(), req);
        let req = Request { id: 1, command: Command::Status {} };
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"id":1,"cmd":"status","args":{}}"#);
    }

    #[test]
    fn commands_without_arguments_take_empty_null_or_missing_args() {
        for line in [
            r#"{"id":1,"cmd":"status"}"#,
            r#"{"id":1,"cmd":"status","args":null}"#,
            r#"{"id":1,"cmd":"status","args":{}}"#,
        ] {
            assert_eq!(Request::decode(line.as_bytes()).map(|r| r.command), Ok(Command::Status {}), "{line}");
        }
    }

    #[test]
    fn optional_arguments_may_be_left_out() {
        let r = Request::decode(br#"{"id":2,"cmd":"rib_in","args":{"peer":"p"}}"#).unwrap();
        let want = Command::RibIn {
            peer: "p".into(),
            prefix: None,
            filter: RouteFilter::default(),
            detail: false,
            count: false,
            stream: false,
        };
        assert_eq!(r.command, want);
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"id":2,"cmd":"rib_in","args":{"peer":"p"}}"#);
    }

    #[test]
    fn an_unknown_command_names_the_known_ones_and_keeps_the_id() {
        let (id, e) = Request::decode(br#"{"id":4,"cmd":"nope"}"#).unwrap_err();
        assert_eq!((id, e.code.as_str()), (4, code::UNKNOWN_COMMAND));
        assert!(
            e.message.contains("'nope'") && e.message.contains("peer_list") && e.message.contains("status"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_arguments_and_non_requests_are_told_apart() {
        let (id, e) = Request::decode(br#"{"id":5,"cmd":"peer_show","args":{}}"#).unwrap_err();
        assert_eq!((id, e.code.as_str()), (5, code::BAD_ARGUMENT));
        assert!(e.message.contains("peer"), "{}", e.message);
        let (id, e) = Request::decode(br#"{"id":6,"command":"oops"}"#).unwrap_err();
        assert_eq!((id, e.code.as_str()), (6, code::BAD_REQUEST));
        let (id, e) = Request::decode(b"this is not json").unwrap_err();
        assert_eq!((id, e.code.as_str()), (0, code::BAD_REQUEST));
    }

    #[test]
    fn a_command_knows_its_name() {
        assert_eq!(Command::ArchiveRetry {}.name(), "archive_retry");
        assert_eq!(Command::PeerRefresh { peer: "p".into(), family: None }.name(), "peer_refresh");
    }
}

/// `focl policy explain PEER PREFIX`: how the peer's import chain decided each of its routes
/// for the prefix (one per path identifier).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyExplain {
    pub peer: String,
    pub prefix: String,
    /// The peer's import chain, policy names in order; empty: the default (accept).
    pub import: Vec<String>,
    pub routes: Vec<ExplainedRoute>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainedRoute {
    #[serde(default)]
    pub path_id: Option<u32>,
    /// Every term tried, in order.
    pub steps: Vec<ExplainStep>,
    /// "accept" or "reject".
    pub decision: String,
    /// "policy NAME term N (line L)", "policy NAME default" or "the import default (accept)".
    pub decided_by: String,
    /// The route is its prefix's best path now.
    pub best: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainStep {
    pub policy: String,
    /// 1-based; 0 for the policy's `default`.
    pub term: u32,
    /// Line of the term in the configuration file (0 for a default).
    pub line: u32,
    /// Whether every `match` key held.
    pub matched: bool,
    /// The first `match` key that did not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The action taken when it matched: "accept", "reject" or "next".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}
