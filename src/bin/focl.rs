//! focl: the command-line client of focld.
//!
//! Sends one NDJSON request over focld's control socket and prints the reply as a table
//! (in the spirit of `bgpctl show` and `gobgp neighbor`) or, with `-j`, as JSON.
//! Exit status: 0 success, 1 the daemon answered with an error, 2 focld is not reachable, 64
//! the command line is wrong (EX_USAGE). Commands may be abbreviated to any unambiguous prefix
//! (`focl p l` is `focl peer list`); `-j` may come anywhere; a closed output (`| head`) ends
//! focl quietly.

use argh::{EarlyExit, FromArgs, SubCommands};
use focl::control::proto::{
    self as ctl, Command as Cmd, LastError, MsgCounters, PeerDetail, PeerSummary, Reply, Request, RibSummary, Route,
    RouteDetail, RouteFilter, RouteList,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// focl: control and query focld. Exit status: 0 ok, 1 error reply, 2 focld not reachable,
/// 64 usage error. Commands may be abbreviated (focl p l).
#[derive(FromArgs)]
struct Args {
    /// focld's control socket (default /tmp/focld.sock, or $FOCL_SOCKET)
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// print the reply as JSON (one document, pretty-printed); may follow the command
    #[argh(switch, short = 'j')]
    json: bool,
    /// print focl's version and exit
    #[argh(switch, short = 'V')]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

/// focld answered with an error, or its answer could not be shown.
const EXIT_ERROR: u8 = 1;
/// focld is not running, or its control socket cannot be used by this user.
const EXIT_UNREACHABLE: u8 = 2;
/// The command line is wrong (sysexits.h EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Peer(PeerCmd),
    Rib(RibCmd),
    Archive(ArchiveCmd),
    Status(StatusCmd),
    Reload(ReloadCmd),
    Monitor(MonitorCmd),
    Rpki(RpkiCmd),
    Source(SourceCmd),
    Completion(CompletionCmd),
    Bmp(BmpCmd),
    Policy(PolicyCmd),
    Blackhole(BlackholeCmd),
}

/// blackhole routes (RFC 7999): announce a prefix with BLACKHOLE and NO_EXPORT to the discard next hop
#[derive(FromArgs)]
#[argh(subcommand, name = "blackhole")]
struct BlackholeCmd {
    #[argh(subcommand)]
    action: BlackholeAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum BlackholeAction {
    Add(BlackholeAddCmd),
    Del(BlackholeDelCmd),
    List(BlackholeListCmd),
}

/// announce PREFIX as a blackhole route to every neighbor (or --peer only), at once and across reloads
#[derive(FromArgs)]
#[argh(subcommand, name = "add")]
struct BlackholeAddCmd {
    /// the prefix (a host route for an attacked address)
    #[argh(positional)]
    prefix: String,
    /// only to this neighbor (address or name)
    #[argh(option)]
    peer: Option<String>,
}

/// withdraw a blackhole route added with focl blackhole add
#[derive(FromArgs)]
#[argh(subcommand, name = "del")]
struct BlackholeDelCmd {
    /// the prefix
    #[argh(positional)]
    prefix: String,
    /// the neighbor it was added for
    #[argh(option)]
    peer: Option<String>,
}

/// every blackhole route focld announces: from [[prefixes]] and from focl blackhole add
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct BlackholeListCmd {}

/// import policy: why a route was accepted or rejected, and a policy file tried offline
#[derive(FromArgs)]
#[argh(subcommand, name = "policy")]
struct PolicyCmd {
    #[argh(subcommand)]
    action: PolicyAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum PolicyAction {
    Explain(PolicyExplainCmd),
    Test(PolicyTestCmd),
}

/// the neighbor's route(s) for exactly PREFIX through its import chain, term by term: what matched and which action decided
#[derive(FromArgs)]
#[argh(subcommand, name = "explain")]
struct PolicyExplainCmd {
    /// neighbor address or name
    #[argh(positional)]
    peer: String,
    /// the prefix, as the neighbor announced it
    #[argh(positional)]
    prefix: String,
}

/// run a configuration's import chain offline over an MRT RIB dump or update file: accepted and rejected counts and a sample of each (focld is not asked)
#[derive(FromArgs)]
#[argh(subcommand, name = "test")]
struct PolicyTestCmd {
    /// the configuration file whose policies and [[peers]] import lists are tried
    #[argh(option)]
    config: PathBuf,
    /// the MRT file (TABLE_DUMP_V2 RIB dump or BGP4MP updates; plain, gzip or bzip2)
    #[argh(option)]
    mrt: PathBuf,
    /// the configured neighbor whose import chain runs (default: the only one with an import list)
    #[argh(option)]
    peer: Option<String>,
    /// only the routes of this peer of the MRT file (a RIB dump without it: the first route of every prefix)
    #[argh(option)]
    mrt_peer: Option<String>,
}

/// BMP (RFC 7854): the monitoring stations focld exports to
#[derive(FromArgs)]
#[argh(subcommand, name = "bmp")]
struct BmpCmd {
    #[argh(subcommand)]
    action: BmpAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum BmpAction {
    Status(BmpStatusCmd),
}

/// every station: state and since when, messages and bytes sent, drops, reconnects, buffer use, last error
#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
struct BmpStatusCmd {}

/// [[sources]]: tables read from MRT files and announced to chosen neighbors
#[derive(FromArgs)]
#[argh(subcommand, name = "source")]
struct SourceCmd {
    #[argh(subcommand)]
    action: SourceAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum SourceAction {
    List(SourceListCmd),
    Status(SourceStatusCmd),
    Reload(SourceReloadCmd),
}

/// one line per source: state, routes, neighbors, last load
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct SourceListCmd {}

/// a source (or every one): file, RIB peer, routes loaded and skipped, each neighbor's state, last load and error
#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
struct SourceStatusCmd {
    /// the source's name
    #[argh(positional)]
    name: Option<String>,
}

/// read the source's file again: withdraw what is gone, announce the new table
#[derive(FromArgs)]
#[argh(subcommand, name = "reload")]
struct SourceReloadCmd {
    /// the source's name
    #[argh(positional)]
    name: String,
}

/// RPKI: status of the RTR caches and VRP files, route origin validation of a prefix
#[derive(FromArgs)]
#[argh(subcommand, name = "rpki")]
struct RpkiCmd {
    #[argh(subcommand)]
    action: RpkiAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum RpkiAction {
    Status(RpkiStatusCmd),
    Lookup(RpkiLookupCmd),
}

/// every RTR cache and VRP file: state, version, session, serial, VRPs, timers, errors
#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
struct RpkiStatusCmd {}

/// the RFC 6811 state of PREFIX originated by AS, and the VRPs that decide it
#[derive(FromArgs)]
#[argh(subcommand, name = "lookup")]
struct RpkiLookupCmd {
    /// a prefix (or address)
    #[argh(positional)]
    prefix: String,
    /// the origin AS (AS65001 or 65001)
    #[argh(positional, from_str_fn(parse_asn))]
    origin: u32,
}

/// `65001` or `AS65001`.
fn parse_asn(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("AS").or_else(|| s.strip_prefix("as")).unwrap_or(s);
    digits.parse().map_err(|_| format!("'{s}' is not an AS number (65001 or AS65001)"))
}

/// stream live events (UPDATEs, state changes, NOTIFICATIONs) until interrupted; NDJSON with -j
#[derive(FromArgs)]
#[argh(subcommand, name = "monitor")]
struct MonitorCmd {
    /// only this neighbor (address or name)
    #[argh(option)]
    peer: Option<String>,
    /// only UPDATEs carrying this prefix
    #[argh(option)]
    prefix: Option<String>,
    /// with --prefix: also the prefixes it covers
    #[argh(switch)]
    more: bool,
    /// only UPDATEs whose AS path ends in this AS
    #[argh(option)]
    origin: Option<u32>,
    /// update, state, notification or all (default)
    #[argh(option, long = "type")]
    kind: Option<String>,
}

/// print a shell completion script: focl completion bash (or zsh); e.g. source <(focl completion bash)
#[derive(FromArgs)]
#[argh(subcommand, name = "completion")]
struct CompletionCmd {
    /// bash or zsh
    #[argh(positional)]
    shell: String,
}

/// focld's version, uptime, configuration, peers by state, archive and replication summary
#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
struct StatusCmd {}

/// read the configuration file again and apply it (like SIGHUP); prints what changed or the errors
#[derive(FromArgs)]
#[argh(subcommand, name = "reload")]
struct ReloadCmd {}

/// MRT archive: status, rotate, snapshot, retry
#[derive(FromArgs)]
#[argh(subcommand, name = "archive")]
struct ArchiveCmd {
    #[argh(subcommand)]
    action: ArchiveAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum ArchiveAction {
    Status(ArchiveStatusCmd),
    Rotate(ArchiveRotate),
    Snapshot(ArchiveSnapshot),
    Retry(ArchiveRetry),
}

/// current files, records and bytes written, drops, rotations, last error
#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
struct ArchiveStatusCmd {}

/// finish the current update file now
#[derive(FromArgs)]
#[argh(subcommand, name = "rotate")]
struct ArchiveRotate {}

/// write a TABLE_DUMP_V2 snapshot of every Adj-RIB-In now
#[derive(FromArgs)]
#[argh(subcommand, name = "snapshot")]
struct ArchiveSnapshot {}

/// replicate pending files to every destination now, without waiting for the back-off
#[derive(FromArgs)]
#[argh(subcommand, name = "retry")]
struct ArchiveRetry {}

/// neighbors: list, show, reset, refresh, disable, enable
#[derive(FromArgs)]
#[argh(subcommand, name = "peer")]
struct PeerCmd {
    #[argh(subcommand)]
    action: PeerAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum PeerAction {
    List(PeerList),
    Show(PeerShow),
    Reset(PeerReset),
    Refresh(PeerRefresh),
    Disable(PeerDisable),
    Enable(PeerEnable),
}

/// administratively down: Cease / Administrative Shutdown, no reconnection until enabled
#[derive(FromArgs)]
#[argh(subcommand, name = "disable")]
struct PeerDisable {
    /// neighbor address or name
    #[argh(positional)]
    peer: String,
}

/// start a disabled neighbor again
#[derive(FromArgs)]
#[argh(subcommand, name = "enable")]
struct PeerEnable {
    /// neighbor address or name
    #[argh(positional)]
    peer: String,
}

/// one line per neighbor: state, uptime, prefixes, messages, flaps
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct PeerList {}

/// everything about one neighbor
#[derive(FromArgs)]
#[argh(subcommand, name = "show")]
struct PeerShow {
    /// neighbor address or name
    #[argh(positional)]
    peer: String,
}

/// Cease / Administrative Reset, then start the session again
#[derive(FromArgs)]
#[argh(subcommand, name = "reset")]
struct PeerReset {
    /// neighbor address or name
    #[argh(positional)]
    peer: String,
}

/// send ROUTE-REFRESH (RFC 2918) for ipv4, ipv6 or both
#[derive(FromArgs)]
#[argh(subcommand, name = "refresh")]
struct PeerRefresh {
    /// neighbor address or name
    #[argh(positional)]
    peer: String,
    /// ipv4 or ipv6 (default: every negotiated family)
    #[argh(positional)]
    family: Option<String>,
}

/// routes: summary, in, out
#[derive(FromArgs)]
#[argh(subcommand, name = "rib")]
struct RibCmd {
    #[argh(subcommand)]
    action: RibAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum RibAction {
    Summary(RibSummaryCmd),
    In(RibIn),
    Lookup(RibLookup),
    Out(RibOut),
}

/// routes per neighbor and family
#[derive(FromArgs)]
#[argh(subcommand, name = "summary")]
struct RibSummaryCmd {}

/// a neighbor's Adj-RIB-In, optionally only PREFIX and the routes inside it, or for a bare ADDRESS the neighbor's longest prefix covering it
#[derive(FromArgs)]
#[argh(subcommand, name = "in")]
struct RibIn {
    /// neighbor address or name
    #[argh(positional)]
    peer: String,
    /// a prefix (or address) to look up
    #[argh(positional)]
    prefix: Option<String>,
    /// only routes whose AS_PATH ends in this AS
    #[argh(option)]
    origin: Option<u32>,
    /// only routes with this AS anywhere in the AS_PATH
    #[argh(option, long = "as")]
    path_as: Option<u32>,
    /// only routes with this community (ASN:VALUE, no-export, no-advertise, no-export-subconfed)
    #[argh(option)]
    community: Option<String>,
    /// only routes with this large community (GLOBAL:LOCAL1:LOCAL2)
    #[argh(option)]
    large_community: Option<String>,
    /// only routes from a neighbor in this AS
    #[argh(option)]
    peer_as: Option<u32>,
    /// only best paths
    #[argh(switch)]
    best: bool,
    /// only routes in this RPKI origin validation state: valid, invalid or not-found
    #[argh(option)]
    rpki: Option<String>,
    /// only routes with this ASPA verdict (valid, invalid or unknown; the downstream one from a neighbor without a BGP Role)
    #[argh(option)]
    aspa: Option<String>,
    /// print only the number of routes
    #[argh(switch)]
    count: bool,
    /// every attribute decoded
    #[argh(switch)]
    detail: bool,
    /// only routes the import policy rejected (kept in the Adj-RIB-In, never best)
    #[argh(switch)]
    rejected: bool,
}

/// longest-prefix match of ADDRESS or PREFIX across every neighbor: the best route, or every neighbor's with --all
#[derive(FromArgs)]
#[argh(subcommand, name = "lookup")]
struct RibLookup {
    /// an address or a prefix
    #[argh(positional)]
    target: String,
    /// every neighbor's route, the best marked, not only the best
    #[argh(switch)]
    all: bool,
    /// also the more specific prefixes
    #[argh(switch)]
    more: bool,
    /// also the less specific prefixes
    #[argh(switch)]
    less: bool,
    /// every attribute decoded
    #[argh(switch)]
    detail: bool,
    /// only routes whose AS_PATH ends in this AS
    #[argh(option)]
    origin: Option<u32>,
    /// only routes with this AS anywhere in the AS_PATH
    #[argh(option, long = "as")]
    path_as: Option<u32>,
    /// only routes with this community (ASN:VALUE, no-export, no-advertise, no-export-subconfed)
    #[argh(option)]
    community: Option<String>,
    /// only routes with this large community (GLOBAL:LOCAL1:LOCAL2)
    #[argh(option)]
    large_community: Option<String>,
    /// only routes from a neighbor in this AS
    #[argh(option)]
    peer_as: Option<u32>,
    /// only best paths (the default without --all)
    #[argh(switch)]
    best: bool,
    /// only routes in this RPKI origin validation state: valid, invalid or not-found
    #[argh(option)]
    rpki: Option<String>,
    /// only routes with this ASPA verdict (valid, invalid or unknown; the downstream one from a neighbor without a BGP Role)
    #[argh(option)]
    aspa: Option<String>,
    /// print only the number of routes
    #[argh(switch)]
    count: bool,
}

/// what focld announces to a neighbor
#[derive(FromArgs)]
#[argh(subcommand, name = "out")]
struct RibOut {
    /// neighbor address or name
    #[argh(positional)]
    peer: String,
}

/// How an answer is printed as text.
type Render = fn(&Value) -> Result<String, String>;

/// What a command asks and how its answer is printed.
struct Query {
    cmd: Cmd,
    render: Render,
    /// A route query, streamed: how its routes are printed.
    routes: Option<RouteShape>,
}

/// How streamed routes are printed as text.
#[derive(Clone, Copy)]
enum RouteShape {
    /// One neighbor's routes, `rib in`'s table.
    OnePeer,
    /// Routes of many neighbors, the best marked.
    Lookup,
    Detail,
    Count,
}

/// The request a command sends; `None` for what focl answers itself (completion, monitor).
fn query_of(c: &Command) -> Option<Query> {
    let (cmd, render): (Cmd, Render) = match c {
        Command::Peer(p) => match &p.action {
            PeerAction::List(_) => (Cmd::PeerList {}, render_peer_list),
            PeerAction::Show(s) => (Cmd::PeerShow { peer: s.peer.clone() }, render_peer_show),
            PeerAction::Reset(r) => (Cmd::PeerReset { peer: r.peer.clone() }, render_action),
            PeerAction::Refresh(r) => {
                (Cmd::PeerRefresh { peer: r.peer.clone(), family: r.family.clone() }, render_action)
            }
            PeerAction::Disable(d) => (Cmd::PeerDisable { peer: d.peer.clone() }, render_action),
            PeerAction::Enable(e) => (Cmd::PeerEnable { peer: e.peer.clone() }, render_action),
        },
        Command::Status(_) => (Cmd::Status {}, render_status),
        Command::Reload(_) => (Cmd::Reload {}, render_reload),
        Command::Rib(r) => match &r.action {
            RibAction::Summary(_) => (Cmd::RibSummary {}, render_rib_summary),
            RibAction::Out(o) => (Cmd::RibOut { peer: o.peer.clone() }, render_routes),
            RibAction::In(i) => return Some(rib_in_query(i)),
            RibAction::Lookup(l) => return Some(rib_lookup_query(l)),
        },
        Command::Completion(_) | Command::Monitor(_) => return None,
        Command::Policy(c) => match &c.action {
            PolicyAction::Explain(e) => {
                (Cmd::PolicyExplain { peer: e.peer.clone(), prefix: e.prefix.clone() }, render_policy_explain)
            }
            PolicyAction::Test(_) => return None,
        },
        Command::Blackhole(c) => match &c.action {
            BlackholeAction::Add(a) => {
                (Cmd::BlackholeAdd { prefix: a.prefix.clone(), peer: a.peer.clone() }, render_blackholes)
            }
            BlackholeAction::Del(d) => {
                (Cmd::BlackholeDel { prefix: d.prefix.clone(), peer: d.peer.clone() }, render_blackholes)
            }
            BlackholeAction::List(_) => (Cmd::BlackholeList {}, render_blackholes),
        },
        Command::Source(c) => match &c.action {
            SourceAction::List(_) => (Cmd::SourceList {}, render_source_list),
            SourceAction::Status(st) => (Cmd::SourceStatus { name: st.name.clone() }, render_source_status),
            SourceAction::Reload(r) => (Cmd::SourceReload { name: r.name.clone() }, render_source_reloaded),
        },
        Command::Bmp(b) => match &b.action {
            BmpAction::Status(_) => (Cmd::BmpStatus {}, render_bmp_status),
        },
        Command::Rpki(r) => match &r.action {
            RpkiAction::Status(_) => (Cmd::RpkiStatus {}, render_rpki_status),
            RpkiAction::Lookup(l) => {
                (Cmd::RpkiLookup { prefix: l.prefix.clone(), origin: l.origin }, render_rpki_lookup)
            }
        },
        Command::Archive(a) => match &a.action {
            ArchiveAction::Status(_) => (Cmd::ArchiveStatus {}, render_archive_status),
            ArchiveAction::Rotate(_) => (Cmd::ArchiveRotate {}, render_rotate),
            ArchiveAction::Snapshot(_) => {
                (Cmd::ArchiveSnapshot {}, |_| Ok("RIB snapshot started; see focl archive status\n".into()))
            }
            ArchiveAction::Retry(_) => {
                (Cmd::ArchiveRetry {}, |_| Ok("retrying every destination now; see focl archive status\n".into()))
            }
        },
    };
    Some(Query { cmd, render, routes: None })
}

/// `rib in`, always asked as a stream.
fn rib_in_query(i: &RibIn) -> Query {
    let filter = RouteFilter {
        origin: i.origin,
        path_as: i.path_as,
        community: i.community.clone(),
        large_community: i.large_community.clone(),
        peer_as: i.peer_as,
        best: i.best,
        rpki: i.rpki.clone(),
        aspa: i.aspa.clone(),
        rejected: i.rejected,
    };
    let cmd = Cmd::RibIn {
        peer: i.peer.clone(),
        prefix: i.prefix.clone(),
        filter,
        detail: i.detail,
        count: i.count,
        stream: true,
    };
    Query { cmd, render: render_routes, routes: Some(shape(i.count, i.detail, RouteShape::OnePeer)) }
}

/// `rib lookup`, always asked as a stream.
fn rib_lookup_query(l: &RibLookup) -> Query {
    let filter = RouteFilter {
        origin: l.origin,
        path_as: l.path_as,
        community: l.community.clone(),
        large_community: l.large_community.clone(),
        peer_as: l.peer_as,
        best: l.best,
        rpki: l.rpki.clone(),
        aspa: l.aspa.clone(),
        rejected: false,
    };
    let cmd = Cmd::RibLookup {
        target: l.target.clone(),
        all: l.all,
        more: l.more,
        less: l.less,
        filter,
        detail: l.detail,
        count: l.count,
        stream: true,
    };
    Query { cmd, render: render_routes, routes: Some(shape(l.count, l.detail, RouteShape::Lookup)) }
}

fn shape(count: bool, detail: bool, otherwise: RouteShape) -> RouteShape {
    if count {
        RouteShape::Count
    } else if detail {
        RouteShape::Detail
    } else {
        otherwise
    }
}

/// Why a request could not be answered.
enum Failure {
    /// focld is not reachable: one line, exit 2.
    NotRunning(String),
    /// Anything else: exit 1.
    Other(String),
}

/// What focl says when the control socket cannot be reached: not running, or not ours to use.
fn connect_error(socket: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        let owner = match std::fs::metadata(socket) {
            Ok(m) => format!(
                " (mode {:04o}, owner {}, group {})",
                m.mode() & 0o7777,
                focl::privs::user_name(m.uid()),
                focl::privs::group_name(m.gid())
            ),
            Err(_) => String::new(),
        };
        return format!(
            "permission denied on focld's control socket {}{owner}: run focl as that user or as a member of that group \
             (focld's global.user/group), or give another socket with -s SOCKET",
            socket.display()
        );
    }
    format!(
        "focld is not running (cannot connect to {}: {e}); start it with focld --config FILE, or give its socket with -s SOCKET",
        socket.display()
    )
}

fn request(socket: &Path, cmd: Cmd) -> Result<Reply, Failure> {
    request_stream(socket, cmd, &mut |_| Ok(()))
}

/// Send one request; every data line of a streamed answer goes to `on_data`, and the closing
/// reply line (or the only one) is returned.
fn request_stream(
    socket: &Path,
    cmd: Cmd,
    on_data: &mut dyn FnMut(Value) -> Result<(), String>,
) -> Result<Reply, Failure> {
    let mut s = UnixStream::connect(socket).map_err(|e| Failure::NotRunning(connect_error(socket, &e)))?;
    // A reload stops and starts peer threads: give it longer.
    let secs = if cmd == (Cmd::Reload {}) { 90 } else { 15 };
    let timeout = Some(Duration::from_secs(secs));
    let _ = s.set_read_timeout(timeout);
    let _ = s.set_write_timeout(timeout);
    let req = Request { id: 1, command: cmd };
    let mut line = serde_json::to_vec(&req).map_err(|e| Failure::Other(e.to_string()))?;
    line.push(b'\n');
    s.write_all(&line).map_err(|e| Failure::Other(format!("cannot send the request to focld: {e}")))?;
    let mut reader = BufReader::new(s);
    let mut answer = String::new();
    loop {
        answer.clear();
        match reader.read_line(&mut answer) {
            Ok(0) => return Err(Failure::Other("focld closed the connection without answering".into())),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(Failure::Other(format!("focld did not answer within {secs} seconds")));
            }
            Err(e) => return Err(Failure::Other(format!("cannot read focld's answer: {e}"))),
        }
        // A stream's data line: {"id":1,"data":...}; anything else is the reply.
        match serde_json::from_str::<ctl::StreamLine>(&answer) {
            Ok(line) => on_data(line.data).map_err(Failure::Other)?,
            Err(_) => {
                return serde_json::from_str(&answer)
                    .map_err(|e| Failure::Other(format!("focld's answer is not valid: {e}")))
            }
        }
    }
}

/// The command tree from argh's own tables: each command and its subcommands.
fn command_tree() -> Vec<(&'static str, Vec<&'static str>)> {
    <Command as SubCommands>::COMMANDS
        .iter()
        .map(|c| {
            let subs: &[&argh::CommandInfo] = match c.name {
                "peer" => <PeerAction as SubCommands>::COMMANDS,
                "rib" => <RibAction as SubCommands>::COMMANDS,
                "archive" => <ArchiveAction as SubCommands>::COMMANDS,
                "rpki" => <RpkiAction as SubCommands>::COMMANDS,
                "source" => <SourceAction as SubCommands>::COMMANDS,
                "bmp" => <BmpAction as SubCommands>::COMMANDS,
                "policy" => <PolicyAction as SubCommands>::COMMANDS,
                "blackhole" => <BlackholeAction as SubCommands>::COMMANDS,
                _ => &[],
            };
            (c.name, subs.iter().map(|s| s.name).collect())
        })
        .collect()
}

/// Abbreviations that stay unambiguous by definition: (word, command).
const KEPT_ABBREVIATIONS: &[(&str, &str)] = &[("p", "peer")];

/// `word` as one of `names`: itself, or the only name it is a prefix of.
fn expand(word: &str, names: &[&'static str]) -> Result<&'static str, String> {
    if let Some(n) = names.iter().find(|n| **n == word) {
        return Ok(n);
    }
    let matches: Vec<&'static str> = names.iter().copied().filter(|n| n.starts_with(word)).collect();
    // Abbreviations documented before a newer command shared their first letters keep
    // their meaning (`focl p l` is `focl peer list`, though `policy` came later).
    if let Some((_, kept)) = KEPT_ABBREVIATIONS.iter().find(|(w, n)| *w == word && matches.contains(n)) {
        return Ok(kept);
    }
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("unknown command '{word}'; expected one of: {}", names.join(", "))),
        many => Err(format!("'{word}' is ambiguous: {}", many.join(", "))),
    }
}

/// The command line made ready for argh: `-j` taken from wherever it stands, commands
/// abbreviated to a prefix written out. Returns (json, the words for argh).
fn prepare_args(argv: &[String]) -> Result<(bool, Vec<String>), String> {
    let tree = command_tree();
    let top: Vec<&'static str> = tree.iter().map(|(n, _)| *n).collect();
    let (mut json, mut out, mut commands) = (false, Vec::new(), Vec::<&'static str>::new());
    let mut words = argv.iter();
    while let Some(w) = words.next() {
        match w.as_str() {
            "-j" | "--json" => json = true,
            "--" => {
                out.push(w.clone());
                out.extend(words.by_ref().cloned());
            }
            "-s" | "--socket" => {
                out.push(w.clone());
                if let Some(v) = words.next() {
                    out.push(v.clone());
                }
            }
            o if o.starts_with('-') => out.push(w.clone()),
            _ => {
                let level: Option<Vec<&'static str>> = match commands.as_slice() {
                    [] => Some(top.clone()),
                    [first] => tree.iter().find(|(n, _)| n == first).map(|(_, s)| s.clone()).filter(|s| !s.is_empty()),
                    _ => None,
                };
                match level {
                    Some(names) => {
                        let name = expand(w, &names)?;
                        commands.push(name);
                        out.push(name.to_string());
                    }
                    None => {
                        commands.push("");
                        out.push(w.clone());
                    }
                }
            }
        }
    }
    Ok((json, out))
}

/// `focl monitor`: print every data line of the stream until focld closes it (the closing
/// line says why) or the reader goes away.
fn monitor(socket: &Path, cmd: Cmd, json: bool) -> ExitCode {
    let mut s = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("focl: {}", connect_error(socket, &e));
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    let Ok(mut line) = serde_json::to_vec(&Request { id: 1, command: cmd }) else { return ExitCode::from(EXIT_ERROR) };
    line.push(b'\n');
    if let Err(e) = s.write_all(&line) {
        eprintln!("focl: cannot send the request to focld: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    let mut out = std::io::stdout().lock();
    for l in BufReader::new(s).lines() {
        let Ok(l) = l else { break };
        let Ok(v) = serde_json::from_str::<Value>(&l) else { continue };
        if let Some(data) = v.get("data") {
            let text = if json { data.to_string() + "\n" } else { monitor_line(data) };
            // A reader that went away (`| head`) ends the stream quietly.
            if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
                return ExitCode::SUCCESS;
            }
            continue;
        }
        // The closing line.
        return match serde_json::from_value::<Reply>(v) {
            Ok(r) if r.ok => {
                let why = r.result.as_ref().and_then(|x| x.get("reason")).and_then(Value::as_str).unwrap_or("done");
                eprintln!("focl: the stream ended: {why}");
                ExitCode::SUCCESS
            }
            Ok(r) => {
                eprintln!(
                    "focl: {}",
                    r.error.map(|e| e.message).unwrap_or_else(|| "the stream ended with an error".into())
                );
                ExitCode::from(EXIT_ERROR)
            }
            Err(e) => {
                eprintln!("focl: focld's closing line is not valid: {e}");
                ExitCode::from(EXIT_ERROR)
            }
        };
    }
    eprintln!("focl: focld closed the stream without a closing line");
    ExitCode::from(EXIT_ERROR)
}

/// One event as a line of text: time, neighbor, what happened.
fn monitor_line(d: &Value) -> String {
    let secs = d["timestamp"].as_f64().unwrap_or(0.0);
    let millis = ((secs.fract()) * 1000.0).round() as u64 % 1000;
    let when = format!("{}.{millis:03} UTC", focl::utc::format(secs as u64));
    let peer = match d["peer_name"].as_str() {
        Some(n) => format!("{} ({n})", d["peer"].as_str().unwrap_or("?")),
        None => d["peer"].as_str().unwrap_or("?").to_string(),
    };
    let head = format!("{when}  {peer} AS{}", d["peer_asn"]);
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string())).collect())
            .unwrap_or_default()
    };
    let mut o = String::new();
    match d["type"].as_str() {
        Some("UPDATE") => {
            let path: Vec<String> = list(&d["path"]);
            for a in d["announcements"].as_array().into_iter().flatten() {
                for p in list(&a["prefixes"]) {
                    o.push_str(&format!(
                        "{head}  announce {p} via {} path {}\n",
                        a["next_hop"].as_str().unwrap_or("-"),
                        if path.is_empty() { "-".into() } else { path.join(" ") }
                    ));
                }
            }
            for p in list(&d["withdrawals"]) {
                o.push_str(&format!("{head}  withdraw {p}\n"));
            }
            if let Some(f) = d["end_of_rib"].as_str() {
                o.push_str(&format!("{head}  end-of-rib {f}\n"));
            }
        }
        Some("STATE") => o.push_str(&format!(
            "{head}  state {} -> {} ({})\n",
            d["old_state"].as_str().unwrap_or("?"),
            d["new_state"].as_str().unwrap_or("?"),
            d["reason"].as_str().unwrap_or("")
        )),
        Some("NOTIFICATION") => {
            let reason = d["reason"].as_str().map(|r| format!(", reason: \"{r}\"")).unwrap_or_default();
            o.push_str(&format!(
                "{head}  NOTIFICATION {} ({}/{}){reason}\n",
                d["name"].as_str().unwrap_or("?"),
                d["code"],
                d["subcode"]
            ));
        }
        _ => o.push_str(&format!("{head}  {d}\n")),
    }
    o
}

/// A completion script for `shell`, from the command tree.
fn completion_script(shell: &str) -> Result<String, String> {
    let tree = command_tree();
    let top: Vec<&str> = tree.iter().map(|(n, _)| *n).collect();
    let mut cases = String::new();
    for (name, subs) in &tree {
        if !subs.is_empty() {
            cases.push_str(&format!("        {name}) subs=\"{}\" ;;\n", subs.join(" ")));
        }
    }
    match shell {
        "bash" => Ok(format!(
            "# focl completion for bash: source <(focl completion bash)\n\
             _focl() {{\n    local cur=${{COMP_WORDS[COMP_CWORD]}} i subs=\"\" words=()\n\
             \x20   for ((i = 1; i < COMP_CWORD; i++)); do\n\
             \x20       case ${{COMP_WORDS[i]}} in\n\
             \x20       -s | --socket) i=$((i + 1)) ;;\n\
             \x20       -*) ;;\n\
             \x20       *) words+=(\"${{COMP_WORDS[i]}}\") ;;\n\
             \x20       esac\n    done\n\
             \x20   case ${{#words[@]}} in\n\
             \x20   0) subs=\"{}\" ;;\n\
             \x20   1)\n        case ${{words[0]}} in\n{cases}        completion) subs=\"bash zsh\" ;;\n        esac\n        ;;\n\
             \x20   3) [ \"${{words[0]}} ${{words[1]}}\" = \"peer refresh\" ] && subs=\"ipv4 ipv6\" ;;\n\
             \x20   esac\n\
             \x20   mapfile -t COMPREPLY < <(compgen -W \"$subs\" -- \"$cur\")\n}}\n\
             complete -F _focl focl\n",
            top.join(" ")
        )),
        "zsh" => Ok(format!(
            "#compdef focl\n# focl completion for zsh: source <(focl completion zsh), or save as _focl in $fpath\n\
             _focl() {{\n    local -a args\n    local subs=\"\"\n    args=(${{${{words[2,CURRENT-1]}}:#-*}})\n\
             \x20   case ${{#args}} in\n\
             \x20   0) subs=\"{}\" ;;\n\
             \x20   1)\n        case ${{args[1]}} in\n{cases}        completion) subs=\"bash zsh\" ;;\n        esac\n        ;;\n\
             \x20   esac\n\
             \x20   compadd -- ${{=subs}}\n}}\n\
             if [ \"$funcstack[1]\" = _focl ]; then _focl \"$@\"; else compdef _focl focl; fi\n",
            top.join(" ")
        )),
        other => Err(format!("no completion for '{other}': use bash or zsh")),
    }
}

/// Print `text` (with a final newline). A reader that closed the pipe (`focl ... | head`,
/// `| grep -q`) is not an error: focl ends quietly, as other Unix tools do.
fn emit(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut r = out.write_all(text.as_bytes());
    if r.is_ok() && !text.ends_with('\n') {
        r = out.write_all(b"\n");
    }
    match r.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // stderr may be gone too; nothing more to say then.
            let _ = writeln!(std::io::stderr(), "focl: cannot write the answer: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "focl: {msg}; see focl --help");
    ExitCode::from(EXIT_USAGE)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (hoisted_json, words) = match prepare_args(&argv) {
        Ok(x) => x,
        Err(m) => return usage_error(&m),
    };
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let args = match Args::from_args(&["focl"], &refs) {
        Ok(a) => a,
        Err(EarlyExit { output, status: Ok(()) }) => return emit(&output),
        Err(EarlyExit { output, status: Err(()) }) => return usage_error(output.trim_end()),
    };
    if args.version {
        return emit(&format!("focl {}\n", env!("CARGO_PKG_VERSION")));
    }
    let Some(command) = &args.command else { return usage_error("no command given") };
    if let Command::Completion(c) = command {
        return match completion_script(&c.shell) {
            Ok(script) => emit(&script),
            Err(m) => usage_error(&m),
        };
    }
    let json = args.json || hoisted_json;
    if let Command::Policy(PolicyCmd { action: PolicyAction::Test(t) }) = command {
        return policy_test(t, json);
    }
    let socket = args
        .socket
        .clone()
        .or_else(|| std::env::var_os("FOCL_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/tmp/focld.sock"));
    if let Command::Monitor(m) = command {
        let cmd = Cmd::Monitor {
            peer: m.peer.clone(),
            prefix: m.prefix.clone(),
            more: m.more,
            origin: m.origin,
            r#type: m.kind.clone(),
        };
        return monitor(&socket, cmd, json);
    }
    let Some(q) = query_of(command) else { return usage_error("nothing to ask focld") };
    if let Some(shape) = q.routes {
        return stream_routes(&socket, q.cmd, shape, json);
    }
    let reply = match request(&socket, q.cmd) {
        Ok(r) => r,
        Err(f) => return failed(f),
    };
    if !reply.ok {
        let e = reply.error.unwrap_or_else(|| ctl::CtlError::new(ctl::code::INTERNAL, "error without details"));
        if e.code == ctl::code::BAD_CONFIG {
            eprintln!("focl: the new configuration was rejected; focld keeps running the old one:");
            for line in e.message.lines() {
                eprintln!("  {line}");
            }
            return ExitCode::from(EXIT_ERROR);
        }
        eprintln!("focl: {}", e.message);
        return ExitCode::from(EXIT_ERROR);
    }
    let result = reply.result.unwrap_or(Value::Null);
    let text =
        if json { serde_json::to_string_pretty(&result).map_err(|e| e.to_string()) } else { (q.render)(&result) };
    match text {
        Ok(t) => emit(&t),
        Err(e) => {
            eprintln!("focl: cannot show focld's answer: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Exit status and message of a failed request.
fn failed(f: Failure) -> ExitCode {
    match f {
        Failure::NotRunning(m) => {
            eprintln!("focl: {m}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Failure::Other(m) => {
            eprintln!("focl: {m}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Ask a route query as a stream. With -j the routes are written as they arrive, as one JSON
/// document `{"routes": [...], "count": N, ...}` (the closing reply's fields after the list);
/// as text they are gathered and printed as one table at the end.
/// What a streamed answer's writer says when the reader closed the pipe.
const PIPE_CLOSED: &str = "the reader closed the output";

fn stream_routes(socket: &Path, cmd: Cmd, shape: RouteShape, json: bool) -> ExitCode {
    let mut routes: Vec<Value> = Vec::new();
    let mut written = 0u64;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let counting = matches!(shape, RouteShape::Count);
    let mut on_data = |v: Value| -> Result<(), String> {
        if counting {
            return Ok(());
        }
        if !json {
            routes.push(v);
            return Ok(());
        }
        let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
        let sep = if written == 0 { "{\n  \"routes\": [\n" } else { ",\n" };
        written += 1;
        let indented = text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n");
        write!(out, "{sep}{indented}").map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                PIPE_CLOSED.to_string()
            } else {
                format!("cannot write: {e}")
            }
        })
    };
    let reply = request_stream(socket, cmd, &mut on_data);
    let reply = match reply {
        Ok(r) => r,
        // The reader went away (`| head`): not an error, as for every other answer.
        Err(Failure::Other(m)) if m == PIPE_CLOSED => return ExitCode::SUCCESS,
        Err(f) => {
            let _ = out.flush();
            return failed(f);
        }
    };
    if !reply.ok {
        let _ = out.flush();
        let e = reply.error.unwrap_or_else(|| ctl::CtlError::new(ctl::code::INTERNAL, "error without details"));
        eprintln!("focl: {}", e.message);
        return ExitCode::from(EXIT_ERROR);
    }
    let end = reply.result.unwrap_or(Value::Null);
    let text = if json {
        if counting {
            serde_json::to_string_pretty(&end).map_err(|e| e.to_string())
        } else {
            let mut t = if written == 0 { "{\n  \"routes\": [\n  ]".to_string() } else { "\n  ]".to_string() };
            if let Some(m) = end.as_object() {
                for (k, v) in m {
                    t.push_str(&format!(",\n  {}: {}", Value::String(k.clone()), v));
                }
            }
            t.push_str("\n}");
            Ok(t)
        }
    } else {
        match shape {
            RouteShape::Count => Ok(end.get("count").and_then(Value::as_u64).unwrap_or(0).to_string()),
            RouteShape::OnePeer => render_peer_routes(&end, &routes),
            RouteShape::Lookup => render_lookup(&end, &routes),
            RouteShape::Detail => render_detail(&end, &routes),
        }
    };
    match text {
        Ok(t) => {
            let nl = if t.ends_with('\n') { "" } else { "\n" };
            match write!(out, "{t}{nl}").and_then(|_| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_ERROR),
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("focl: cannot show focld's answer: {e}");
            ExitCode::from(1)
        }
    }
}

fn render_peer_routes(end: &Value, routes: &[Value]) -> Result<String, String> {
    let routes: Vec<Route> = routes.iter().map(parse).collect::<Result<_, _>>()?;
    let peer = end.get("peer").and_then(Value::as_str).unwrap_or("-").to_string();
    let count = routes.len() as u64;
    render_routes(&serde_json::to_value(RouteList { peer, routes, count }).map_err(|e| e.to_string())?)
}

fn matched_line(end: &Value) -> String {
    match (end.get("target").and_then(Value::as_str), end.get("matched")) {
        (Some(t), Some(Value::String(m))) => format!("{t}: longest match {m}\n"),
        (Some(t), _) => format!("{t}: no route covers it\n"),
        _ => String::new(),
    }
}

fn neighbor_text(p: &Option<ctl::PeerName>) -> String {
    match p {
        Some(ctl::PeerName { address, name: Some(n) }) => format!("{address} ({n})"),
        Some(ctl::PeerName { address, name: None }) => address.clone(),
        None => "-".into(),
    }
}

/// The columns of every route table, from the next hop to the age.
const ROUTE_HEAD: [&str; 7] = ["Next hop", "AS path", "Origin", "MED", "LocPrf", "Communities", "Age"];

/// A route's cells under `ROUTE_HEAD`.
fn route_cells(r: &Route) -> [String; 7] {
    let mut comms = r.communities.clone();
    comms.extend(r.large_communities.iter().cloned());
    [
        r.next_hop.clone().unwrap_or_else(|| "-".into()),
        if r.as_path.is_empty() { "-".into() } else { r.as_path.clone() },
        r.origin.clone().unwrap_or_else(|| "-".into()),
        r.med.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
        r.local_pref.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
        abbreviate(&comms, 3),
        duration(r.age_secs),
    ]
}

/// The columns a route table shows only when one of its routes needs them: OTC (RFC 9234),
/// path id (RFC 7911), RPKI (RFC 6811), ASPA. A table without a mark column says "stale"
/// (RFC 7313) in the OTC column.
struct ExtraColumns {
    otc: bool,
    paths: bool,
    rpki: bool,
    aspa: bool,
    stale_in_otc: bool,
}

impl ExtraColumns {
    fn of(routes: &[Route], stale_in_otc: bool) -> ExtraColumns {
        ExtraColumns {
            otc: routes.iter().any(|r| r.otc.is_some() || r.otc_leak || (stale_in_otc && r.stale)),
            paths: routes.iter().any(|r| r.path_id.is_some()),
            rpki: routes.iter().any(|r| r.rpki.is_some()),
            aspa: routes.iter().any(|r| r.aspa.is_some()),
            stale_in_otc,
        }
    }

    fn head(&self, head: &mut Vec<&str>) {
        let names = [(self.otc, "OTC"), (self.paths, "Path id"), (self.rpki, "RPKI"), (self.aspa, "ASPA")];
        head.extend(names.into_iter().filter(|(shown, _)| *shown).map(|(_, name)| name));
    }

    fn cells(&self, r: &Route, row: &mut Vec<String>) {
        if self.otc {
            let stale = if self.stale_in_otc && r.stale { " stale" } else { "" };
            row.push(format!("{}{stale}", otc_text(r)));
        }
        if self.paths {
            row.push(path_id_text(r));
        }
        if self.rpki {
            row.push(r.rpki.clone().unwrap_or_else(|| "-".into()));
        }
        if self.aspa {
            row.push(r.aspa.as_ref().map(aspa_text).unwrap_or_else(|| "-".into()));
        }
    }
}

/// An ASPA verdict in a table cell or a detail line: the one that applies, or both ("up
/// invalid, down valid") for a neighbor without a BGP Role.
fn aspa_text(a: &ctl::AspaVerdict) -> String {
    match (&a.upstream, &a.downstream) {
        (Some(u), Some(d)) => format!("up {u}, down {d}"),
        _ => a.state.clone(),
    }
}

/// `rib lookup`: one line per route, "*" on the best.
fn render_lookup(end: &Value, routes: &[Value]) -> Result<String, String> {
    let routes: Vec<Route> = routes.iter().map(parse).collect::<Result<_, _>>()?;
    let extra = ExtraColumns::of(&routes, false);
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            let mut row = vec![route_marks(r), r.prefix.clone(), neighbor_text(&r.peer)];
            row.extend(route_cells(r));
            extra.cells(r, &mut row);
            row
        })
        .collect();
    let mut o = matched_line(end);
    if !rows.is_empty() {
        let mut head = vec!["", "Prefix", "Neighbor"];
        head.extend(ROUTE_HEAD);
        extra.head(&mut head);
        o.push_str(&table(&head, &rows));
    }
    let mut legend = vec!["* best"];
    if routes.iter().any(|r| r.otc_leak) {
        legend.push("L route leak by OTC, RFC 9234");
    }
    if routes.iter().any(|r| r.stale) {
        legend.push("S stale until the peer's End-of-RIB or EoRR, RFC 4724 / RFC 7313");
    }
    if routes.iter().any(|r| r.rejected) {
        legend.push("R rejected by import policy");
    }
    o.push_str(&format!("\n{} ({})\n", count(routes.len() as u64, "route", "routes"), legend.join(", ")));
    Ok(o)
}

/// The mark column of `rib lookup`: "*" best, "L" a route leak by its OTC, "S" stale.
fn route_marks(r: &Route) -> String {
    let mut m = String::new();
    m.push(if r.best == Some(true) { '*' } else { ' ' });
    if r.otc_leak {
        m.push('L');
    }
    if r.stale {
        m.push('S');
    }
    if r.rejected {
        m.push('R');
    }
    m.trim_end().to_string()
}

/// The path identifier column of an ADD-PATH neighbor's routes (RFC 7911).
fn path_id_text(r: &Route) -> String {
    r.path_id.map(|p| p.to_string()).unwrap_or_else(|| "-".into())
}

/// The OTC column: the attribute's AS, and "leak" when the session's role makes it one.
fn otc_text(r: &Route) -> String {
    match (r.otc, r.otc_leak) {
        (Some(a), true) => format!("{a} leak"),
        (Some(a), false) => a.to_string(),
        (None, true) => "leak".into(),
        (None, false) => "-".into(),
    }
}

/// `--detail`: every attribute, one block per route (as `bgpctl show rib detail`).
fn render_detail(end: &Value, routes: &[Value]) -> Result<String, String> {
    let routes: Vec<RouteDetail> = routes.iter().map(parse).collect::<Result<_, _>>()?;
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(" ") };
    let mut o = matched_line(end);
    for r in &routes {
        let path = r.path_id.map(|p| format!(", path id {p}")).unwrap_or_default();
        o.push_str(&format!(
            "\n{}{} from {}{path}\n",
            r.prefix,
            if r.best { " (best)" } else { "" },
            neighbor_text(&r.peer)
        ));
        let path: Vec<String> = r
            .as_path
            .iter()
            .map(|s| {
                let asns: Vec<String> = s.asns.iter().map(u32::to_string).collect();
                match s.kind.as_str() {
                    "sequence" => asns.join(" "),
                    "set" => format!("{{{}}}", asns.join(",")),
                    "confed_sequence" => format!("({})", asns.join(" ")),
                    "confed_set" => format!("[{}]", asns.join(",")),
                    k => format!("{k}:{}", asns.join(",")),
                }
            })
            .collect();
        o.push_str(&format!("  AS path: {}\n", if path.is_empty() { "-".into() } else { path.join(" ") }));
        o.push_str(&format!(
            "  Origin {}, next hop {}, MED {}, local pref {}, age {}\n",
            r.origin.as_deref().unwrap_or("-"),
            r.next_hop.as_deref().unwrap_or("-"),
            r.med.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
            r.local_pref.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
            duration(r.age_secs)
        ));
        if r.atomic_aggregate || r.aggregator.is_some() {
            let aggr =
                r.aggregator.as_ref().map(|a| format!("AS {} {}", a.asn, a.address)).unwrap_or_else(|| "-".into());
            o.push_str(&format!(
                "  Atomic aggregate: {}, aggregator: {aggr}\n",
                if r.atomic_aggregate { "yes" } else { "no" }
            ));
        }
        o.push_str(&format!("  Communities: {}\n", list(&r.communities)));
        o.push_str(&format!("  Extended communities: {}\n", list(&r.extended_communities)));
        o.push_str(&format!("  Large communities: {}\n", list(&r.large_communities)));
        if r.originator_id.is_some() || !r.cluster_list.is_empty() {
            o.push_str(&format!(
                "  Originator id: {}, cluster list: {}\n",
                r.originator_id.as_deref().unwrap_or("-"),
                list(&r.cluster_list)
            ));
        }
        if r.otc.is_some() || r.otc_leak {
            let leak = if r.otc_leak { " (route leak, RFC 9234 §5)" } else { "" };
            let otc = r.otc.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
            o.push_str(&format!("  Only to customer: {otc}{leak}\n"));
        }
        if r.llgr_stale {
            o.push_str("  Stale: long-lived (LLGR_STALE, RFC 9494), least preferred, until announced again\n");
        } else if r.stale {
            o.push_str("  Stale: since the peer's restart (RFC 4724) or BoRR (RFC 7313), removed at its End-of-RIB or EoRR unless announced again\n");
        }
        if let Some(v) = &r.rpki {
            o.push_str(&format!("  RPKI origin validation: {v} (RFC 6811)\n"));
        }
        if let Some(a) = &r.aspa {
            let how = match (&a.upstream, &a.downstream) {
                (Some(_), Some(_)) => "no BGP Role: both procedures, the downstream one decides",
                (Some(_), None) => "upstream procedure",
                _ => "downstream procedure",
            };
            o.push_str(&format!("  ASPA path verification: {} ({how})\n", aspa_text(a)));
        }
        for a in &r.other_attributes {
            o.push_str(&format!("  Attribute {} (flags 0x{:02x}): {}\n", a.type_code, a.flags, a.value));
        }
    }
    o.push_str(&format!("\n{}\n", count(routes.len() as u64, "route", "routes")));
    Ok(o)
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

/// Durations everywhere in one form: `00:01:16` under a day, `1d02h03m` from a day on.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// `1 route`, `2 routes`: a count with its noun, singular or plural.
fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn render_peer_list(v: &Value) -> Result<String, String> {
    let peers: Vec<PeerSummary> = parse(v)?;
    if peers.is_empty() {
        return Ok("no neighbors configured\n".into());
    }
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            let state = state_text(&p.state, p.down_reason.as_deref(), p.restart_in_secs);
            vec![
                p.address.clone(),
                p.name.clone().unwrap_or_else(|| "-".into()),
                p.remote_as.to_string(),
                state,
                duration(p.uptime_secs.unwrap_or(p.state_secs)),
                p.prefixes_received.ipv4_unicast.to_string(),
                p.prefixes_received.ipv6_unicast.to_string(),
                p.messages_received.to_string(),
                p.messages_sent.to_string(),
                p.flaps.to_string(),
            ]
        })
        .collect();
    Ok(table(
        &["Neighbor", "Name", "AS", "State", "Up/Down", "Rcvd v4", "Rcvd v6", "MsgRcvd", "MsgSent", "Flaps"],
        &rows,
    ))
}

/// `Idle (admin down)`, `Idle (max-prefix, restarts in 00:00:42)`, `Idle (max-prefix, until reset)`.
fn state_text(state: &str, down_reason: Option<&str>, restart_in: Option<u64>) -> String {
    match (down_reason, restart_in) {
        (Some("max-prefix"), Some(s)) => format!("{state} (max-prefix, restarts in {})", duration(s)),
        (Some("max-prefix"), None) => format!("{state} (max-prefix, until reset)"),
        (Some(r), _) => format!("{state} ({r})"),
        (None, _) => state.to_string(),
    }
}

fn counters_rows(sent: &MsgCounters, rcvd: &MsgCounters) -> Vec<Vec<String>> {
    let row = |n: &str, a: u64, b: u64| vec![format!("  {n}"), a.to_string(), b.to_string()];
    vec![
        row("Opens", sent.open, rcvd.open),
        row("Updates", sent.update, rcvd.update),
        row("Notifications", sent.notification, rcvd.notification),
        row("Keepalives", sent.keepalive, rcvd.keepalive),
        row("Route Refresh", sent.route_refresh, rcvd.route_refresh),
        row("Total", sent.total, rcvd.total),
    ]
}

fn last_error_text(e: &LastError) -> String {
    let mut s = format!("{} {} ({}/{}), {} ago", e.direction, e.name, e.code, e.subcode, duration(e.age_secs));
    if let Some(r) = &e.reason {
        s.push_str(&format!(", reason: \"{r}\""));
    }
    s
}

/// The TTL part of `peer show`'s "Remote port" line (RFC 5082 §3 for GTSM); nothing from a
/// focld that does not send the fields (multihop 0).
fn ttl_text(multihop: u8, ttl_security: bool) -> String {
    match (multihop, ttl_security) {
        (0, _) => String::new(),
        (m, true) => format!(", GTSM: TTL 255 sent, at least {} received (multihop {m})", 256 - u16::from(m)),
        (m, false) => format!(", multihop {m}"),
    }
}

fn render_peer_show(v: &Value) -> Result<String, String> {
    let p: PeerDetail = parse(v)?;
    let mut o = String::new();
    let name = p.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    o.push_str(&format!("BGP neighbor is {}{name}, remote AS {}, local AS {}\n", p.address, p.remote_as, p.local_as));
    let mode = if p.passive { "passive" } else { "active" };
    let ttl = ttl_text(p.multihop, p.ttl_security);
    o.push_str(&format!(
        "  Remote port {}, {mode}{}{ttl}\n",
        p.remote_port,
        if p.password_set { ", TCP-MD5 password set" } else { "" }
    ));
    let mut state = format!("  BGP state = {}", state_text(&p.state, p.down_reason.as_deref(), p.restart_in_secs));
    match p.uptime_secs {
        Some(u) => state.push_str(&format!(", up for {}", duration(u))),
        None => state.push_str(&format!(", for {}", duration(p.state_secs))),
    }
    o.push_str(&state);
    o.push('\n');
    if let Some(id) = &p.remote_router_id {
        o.push_str(&format!("  Remote router id {id}\n"));
    }
    if let (Some(l), Some(r)) = (&p.local_endpoint, &p.remote_endpoint) {
        o.push_str(&format!("  Local {l}, remote {r}\n"));
    }
    let neg = match (p.hold_time, p.keepalive_time) {
        (Some(h), Some(k)) => format!(", negotiated hold time {h}s, keepalive {k}s"),
        _ => String::new(),
    };
    o.push_str(&format!("  Configured hold time {}s{neg}\n", p.hold_time_configured));
    o.push_str(&format!(
        "  Last flap/connect: {}, {}\n",
        count(p.flaps, "flap", "flaps"),
        count(p.connect_attempts, "connect attempt", "connect attempts")
    ));
    if let Some(e) = &p.last_error {
        o.push_str(&format!("  Last error: {}\n", last_error_text(e)));
    }
    if let Some(h) = &p.hint {
        o.push_str(&format!("  Hint: {h}\n"));
    }
    let ue = &p.update_errors;
    if ue.treat_as_withdraw > 0 || ue.attribute_discard > 0 {
        o.push_str(&format!(
            "  Malformed UPDATEs (RFC 7606): {} treated as withdraw, {} attributes discarded\n",
            ue.treat_as_withdraw, ue.attribute_discard
        ));
        if let Some(l) = &ue.last {
            o.push_str(&format!("    latest: {l}\n"));
        }
    }
    o.push('\n');
    let fams = if p.families.is_empty() { "-".to_string() } else { p.families.join(", ") };
    o.push_str(&format!("  Negotiated families:   {fams}\n"));
    if let Some(r) = &p.role {
        o.push_str(&format!(
            "  BGP role:              {r} (peer: {})\n",
            p.remote_role.as_deref().unwrap_or("none sent")
        ));
    }
    o.push_str("  Capabilities:\n");
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let rows: Vec<Vec<String>> = p
        .capabilities
        .iter()
        .map(|c| vec![format!("  {}", c.name), yes(c.advertised), yes(c.received), yes(c.negotiated)])
        .collect();
    for line in table(&["", "Advertised", "Received", "Negotiated"], &rows).lines() {
        o.push_str(&format!("  {line}\n"));
    }
    o.push('\n');
    o.push_str("  Message statistics:\n");
    let t = table(&["", "Sent", "Received"], &counters_rows(&p.messages_sent, &p.messages_received));
    for line in t.lines() {
        o.push_str(&format!("  {line}\n"));
    }
    o.push_str("\n  Prefixes:\n");
    let rows = vec![
        vec![
            "  IPv4 unicast".into(),
            p.prefixes_sent.ipv4_unicast.to_string(),
            p.prefixes_received.ipv4_unicast.to_string(),
        ],
        vec![
            "  IPv6 unicast".into(),
            p.prefixes_sent.ipv6_unicast.to_string(),
            p.prefixes_received.ipv6_unicast.to_string(),
        ],
    ];
    for line in table(&["", "Sent", "Received"], &rows).lines() {
        o.push_str(&format!("  {line}\n"));
    }
    let stale = p.stale_routes.ipv4_unicast + p.stale_routes.ipv6_unicast;
    if stale > 0 || p.graceful_restart.is_some() {
        o.push_str(&format!(
            "\n  Stale routes: {} IPv4, {} IPv6 (counted among those received)\n",
            p.stale_routes.ipv4_unicast, p.stale_routes.ipv6_unicast
        ));
    }
    if let Some(g) = &p.graceful_restart {
        o.push_str(&format!(
            "  Graceful restart in progress (RFC 4724): {}, every stale route gone within {}\n",
            count(u64::from(g.restarts), "session end", "session ends"),
            duration(g.ends_at_latest_in_secs)
        ));
        for f in &g.families {
            let what = match f.phase.as_str() {
                "restarting" => "restart timer",
                "long_lived" => "long-lived stale timer (RFC 9494)",
                _ => "back; End-of-RIB or the stale timer",
            };
            o.push_str(&format!(
                "    {}: {} stale, {what}: {} left\n",
                f.family,
                f.stale_routes,
                duration(f.expires_in_secs)
            ));
        }
    }
    Ok(o)
}

fn render_action(v: &Value) -> Result<String, String> {
    let a: ctl::ActionResult = parse(v)?;
    Ok(format!("neighbor {}: {}\n", a.peer, a.message))
}

fn render_rib_summary(v: &Value) -> Result<String, String> {
    let s: RibSummary = parse(v)?;
    let rows: Vec<Vec<String>> = s
        .peers
        .iter()
        .map(|p| {
            vec![
                p.address.clone(),
                p.name.clone().unwrap_or_else(|| "-".into()),
                p.routes.ipv4_unicast.to_string(),
                p.routes.ipv6_unicast.to_string(),
            ]
        })
        .collect();
    let with_rov = s.rov.is_some();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .zip(&s.peers)
        .map(|(mut row, p)| {
            if with_rov {
                let r = p.rov.unwrap_or_default();
                row.extend([r.valid.to_string(), r.invalid.to_string(), r.not_found.to_string()]);
            }
            row
        })
        .collect();
    let mut head = vec!["Neighbor", "Name", "IPv4 routes", "IPv6 routes"];
    if with_rov {
        head.extend(["Valid", "Invalid", "Not found"]);
    }
    // Stale routes (graceful restart, RFC 4724; enhanced refresh, RFC 7313) are counted among
    // the routes above and again here, when a neighbor has any.
    let rows = if s.peers.iter().any(|p| p.stale.ipv4_unicast + p.stale.ipv6_unicast > 0) {
        head.push("Stale");
        rows.into_iter()
            .zip(&s.peers)
            .map(|(mut row, p)| {
                row.push((p.stale.ipv4_unicast + p.stale.ipv6_unicast).to_string());
                row
            })
            .collect()
    } else {
        rows
    };
    let mut o = table(&head, &rows);
    o.push_str(&format!(
        "\nTotal: {} IPv4 and {} from {}, {}\n",
        s.routes.ipv4_unicast,
        count(s.routes.ipv6_unicast, "IPv6 route", "IPv6 routes"),
        count(s.peers.len() as u64, "neighbor", "neighbors"),
        count(s.attribute_sets, "distinct attribute set", "distinct attribute sets")
    ));
    if let Some(r) = s.rov {
        o.push_str(&format!(
            "RPKI origin validation (RFC 6811): {} valid, {} invalid, {} not found\n",
            r.valid, r.invalid, r.not_found
        ));
    }
    o.push_str(&format!(
        "Announced: {} IPv4 and {}\n",
        s.announced.ipv4_unicast,
        count(s.announced.ipv6_unicast, "IPv6 prefix", "IPv6 prefixes")
    ));
    Ok(o)
}

/// Unix seconds as "2026-11-24 09:45:00 UTC".
fn utc(secs: u64) -> String {
    format!("{} UTC", focl::utc::format(secs))
}

fn render_archive_status(v: &Value) -> Result<String, String> {
    let s: ctl::ArchiveStatus = parse(v)?;
    if !s.enabled {
        return Ok("archiving is off ([archive] enabled = false)\n".into());
    }
    let opt = |t: Option<u64>| t.map(utc).unwrap_or_else(|| "-".into());
    let mut o = String::new();
    o.push_str(&format!("Archive {} ({} layout, {})\n", s.dir, s.layout, s.compression));
    o.push_str(&format!(
        "  Current update file: {} ({})\n",
        s.current_file.as_deref().unwrap_or("-"),
        count(s.current_records, "record", "records")
    ));
    o.push_str(&format!(
        "  Written: {}, {}, {} finished\n",
        count(s.records_written, "record", "records"),
        count(s.bytes_written, "byte", "bytes"),
        count(s.files_finished, "file", "files")
    ));
    o.push_str(&format!("  Dropped: {}\n", s.dropped));
    o.push_str(&format!("  Last rotation: {}, next rotation: {}\n", opt(s.last_rotation), opt(s.next_rotation)));
    o.push_str(&format!(
        "  Last RIB snapshot: {}, next: {}\n",
        s.last_snapshot.as_deref().unwrap_or("-"),
        opt(s.next_snapshot)
    ));
    if let Some(e) = &s.last_error {
        o.push_str(&format!("  Last error: {e}\n"));
    }
    for d in &s.destinations {
        o.push_str(&format!("  Destination {}\n", d.destination));
        o.push_str(&format!(
            "    Pending: {}, {}; delivered since start: {}\n",
            count(d.pending_files, "file", "files"),
            count(d.pending_bytes, "byte", "bytes"),
            d.delivered_files
        ));
        let last = match (&d.last_success, &d.last_file) {
            (Some(t), Some(f)) => format!("{} ({f})", utc(*t)),
            _ => "-".into(),
        };
        o.push_str(&format!("    Last success: {last}\n"));
        if let Some(e) = &d.last_error {
            o.push_str(&format!("    Last error: {e}\n"));
        }
        if let Some(t) = d.next_retry {
            o.push_str(&format!("    Next attempt: {} (focl archive retry to try now)\n", utc(t)));
        }
    }
    Ok(o)
}

fn render_status(v: &Value) -> Result<String, String> {
    let s: ctl::DaemonStatus = parse(v)?;
    let mut o = String::new();
    o.push_str(&format!("focld {} (pid {}), up {}\n", s.version, s.pid, duration(s.uptime_secs)));
    o.push_str(&format!(
        "  Configuration: {} (last reload: {})\n",
        s.config_file,
        s.last_reload.map(utc).unwrap_or_else(|| "never".into())
    ));
    o.push_str(&format!("  AS {}, router id {}\n", s.asn, s.router_id));
    let states: Vec<String> = s.peers_by_state.iter().map(|(k, n)| format!("{n} {k}")).collect();
    o.push_str(&format!(
        "  Peers: {} ({}{})\n",
        s.peers,
        if states.is_empty() { "none".to_string() } else { states.join(", ") },
        if s.peers_disabled > 0 { format!(", {} disabled", s.peers_disabled) } else { String::new() }
    ));
    o.push_str(&format!("  Routes: {} IPv4, {} IPv6\n", s.routes.ipv4_unicast, s.routes.ipv6_unicast));
    let a = &s.archive;
    if a.enabled {
        o.push_str(&format!(
            "  Archive: {} ({}), {} finished, {} dropped, current {}\n",
            a.dir,
            a.layout,
            count(a.files_finished, "file", "files"),
            count(a.dropped, "record", "records"),
            a.current_file.as_deref().unwrap_or("-")
        ));
        if let Some(e) = &a.last_error {
            o.push_str(&format!("    last error: {e}\n"));
        }
        for d in &a.destinations {
            o.push_str(&format!(
                "  Replication to {}: {} pending ({}){}\n",
                d.destination,
                count(d.pending_files, "file", "files"),
                count(d.pending_bytes, "byte", "bytes"),
                d.last_error.as_deref().map(|e| format!(", last error: {e}")).unwrap_or_default()
            ));
        }
    } else {
        o.push_str("  Archive: off\n");
    }
    let m = &s.monitor;
    o.push_str(&format!(
        "  Monitor: {}, {} sent, {} dropped, {} cut off\n",
        count(m.subscribers, "subscriber", "subscribers"),
        count(m.events_sent, "event", "events"),
        m.dropped,
        m.cut_off
    ));
    Ok(o)
}

/// `focl blackhole`: the blackhole routes announced.
fn render_blackholes(v: &Value) -> Result<String, String> {
    let list: Vec<ctl::BlackholeRoute> = parse(v)?;
    if list.is_empty() {
        return Ok("no blackhole routes are announced\n".into());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                b.prefix.clone(),
                b.peer.clone().unwrap_or_else(|| "every neighbor".into()),
                b.next_hop.clone(),
                b.source.clone(),
            ]
        })
        .collect();
    let mut o = table(&["Prefix", "To", "Next hop", "From"], &rows);
    o.push_str("(announced with BLACKHOLE 65535:666 and NO_EXPORT, RFC 7999)\n");
    Ok(o)
}

/// `focl policy explain`: one block per route, one line per term tried.
fn render_policy_explain(v: &Value) -> Result<String, String> {
    let e: ctl::PolicyExplain = parse(v)?;
    let chain = if e.import.is_empty() { "none (accept everything)".to_string() } else { e.import.join(", ") };
    let mut o = format!("{} from {}: import chain {chain}\n", e.prefix, e.peer);
    for r in &e.routes {
        if let Some(p) = r.path_id {
            o.push_str(&format!("path id {p}:\n"));
        }
        for st in &r.steps {
            let what =
                if st.term == 0 { "default".to_string() } else { format!("term {} (line {})", st.term, st.line) };
            let result = match (&st.failed, &st.action) {
                (Some(k), _) => format!("no match ({k} does not hold)"),
                (None, Some(a)) => format!("matched: {a}"),
                (None, None) => "matched".into(),
            };
            o.push_str(&format!("  {} {what}: {result}\n", st.policy));
        }
        o.push_str(&format!(
            "  => {} by {}{}\n",
            r.decision.to_uppercase(),
            r.decided_by,
            if r.best { " (best path)" } else { "" }
        ));
    }
    Ok(o)
}

/// `focl policy test`: offline, in focl itself.
fn policy_test(t: &PolicyTestCmd, json: bool) -> ExitCode {
    let cfg = match focl::config::load(&t.config) {
        Ok(c) => c,
        Err(errs) => {
            eprintln!("focl: {} has errors:", t.config.display());
            for e in errs {
                eprintln!("  {e}");
            }
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let addr = |s: &Option<String>, what: &str| -> Result<Option<std::net::IpAddr>, String> {
        s.as_deref().map(|a| a.parse().map_err(|_| format!("{what} '{a}' is not an IP address"))).transpose()
    };
    let (peer, mrt_peer) = match (addr(&t.peer, "--peer"), addr(&t.mrt_peer, "--mrt-peer")) {
        (Ok(p), Ok(m)) => (p, m),
        (Err(e), _) | (_, Err(e)) => return usage_error(&e),
    };
    let r = match focl::policy::offline::test_file(&cfg, peer, &t.mrt, mrt_peer) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("focl: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    if json {
        return match serde_json::to_string_pretty(&r) {
            Ok(t) => emit(&format!("{t}\n")),
            Err(e) => {
                eprintln!("focl: {e}");
                ExitCode::from(EXIT_ERROR)
            }
        };
    }
    let chain = if r.import.is_empty() { "none (accept everything)".to_string() } else { r.import.join(", ") };
    let mut o = format!("{}: import chain {chain}\n", r.peer);
    o.push_str(&format!(
        "  {} routes: {} accepted ({} with attributes changed), {} rejected\n",
        r.routes, r.accepted, r.modified, r.rejected
    ));
    for (by, n) in &r.decided_by {
        o.push_str(&format!("  {n} decided by {by}\n"));
    }
    for (what, sample) in [("accepted", &r.accepted_sample), ("rejected", &r.rejected_sample)] {
        if !sample.is_empty() {
            o.push_str(&format!("  Sample {what}:\n"));
        }
        for s in sample {
            o.push_str(&format!("    {} [{}] by {}\n", s.prefix, s.as_path, s.decided_by));
        }
    }
    emit(&o)
}

fn render_reload(v: &Value) -> Result<String, String> {
    let r: ctl::ReloadReport = parse(v)?;
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    let mut o = String::from("configuration reloaded\n");
    o.push_str(&format!("  Peers added: {}\n", list(&r.added)));
    o.push_str(&format!("  Peers removed: {}\n", list(&r.removed)));
    o.push_str(&format!("  Peers reset (settings changed): {}\n", list(&r.reset)));
    o.push_str(&format!("  Peers unchanged: {}\n", r.unchanged));
    o.push_str(&format!("  Prefixes announced: {}\n", list(&r.prefixes_added)));
    o.push_str(&format!("  Prefixes withdrawn: {}\n", list(&r.prefixes_removed)));
    if r.archive_changed {
        o.push_str("  Archive settings changed: they apply from the next file\n");
    }
    for g in &r.global_changed {
        o.push_str(&format!("  Global: {g}\n"));
    }
    if !(r.sources_added.is_empty() && r.sources_removed.is_empty() && r.sources_changed.is_empty()) {
        o.push_str(&format!(
            "  Sources added: {}; removed (withdrawn): {}; changed (read again): {}\n",
            list(&r.sources_added),
            list(&r.sources_removed),
            list(&r.sources_changed)
        ));
    }
    for c in &r.policy_changed {
        if c.direction == "export" {
            o.push_str(&format!(
                "  Policy: {} export changed: {} routes in its Adj-RIB-Out changed ({} announced, {} withdrawn, {} announced again with other attributes; {} prefixes evaluated again)\n",
                c.peer,
                c.now_accepted + c.now_rejected + c.modified,
                c.now_accepted,
                c.now_rejected,
                c.modified,
                c.evaluated
            ));
        } else {
            o.push_str(&format!(
                "  Policy: {} {} changed: {} routes evaluated again, {} now accepted, {} now rejected, {} with other attributes\n",
                c.peer, c.direction, c.evaluated, c.now_accepted, c.now_rejected, c.modified
            ));
        }
    }
    Ok(o)
}

fn render_bmp_status(v: &Value) -> Result<String, String> {
    let list: Vec<ctl::BmpStationStatus> = parse(v)?;
    if list.is_empty() {
        return Ok("BMP: no [[bmp.stations]] are configured\n".into());
    }
    let mut o = String::new();
    for s in &list {
        o.push_str(&format!("Station {}: {} since {}\n", s.station, s.state, utc(s.since)));
        o.push_str(&format!(
            "  Sent {} ({} bytes), buffered {} of {} bytes\n",
            count(s.messages_sent, "message", "messages"),
            s.bytes_sent,
            s.buffered_bytes,
            s.buffer_limit_bytes
        ));
        o.push_str(&format!(
            "  Dropped {} for falling behind, {}; {} not queued by the peers\n",
            count(s.drops, "time", "times"),
            count(s.reconnects, "reconnect", "reconnects"),
            count(s.events_dropped, "event", "events")
        ));
        if let Some(e) = &s.last_error {
            o.push_str(&format!("  Last error: {e}\n"));
        }
    }
    Ok(o)
}

fn render_rpki_status(v: &Value) -> Result<String, String> {
    let s: ctl::RpkiStatus = parse(v)?;
    let mut o = format!(
        "RPKI: {} and {} in use\n",
        count(s.vrps_in_use, "VRP", "VRPs"),
        count(s.aspas_in_use, "ASPA record", "ASPA records")
    );
    if s.caches.is_empty() && s.files.is_empty() {
        o.push_str("  no [[rpki.caches]] or [[rpki.files]] are configured\n");
    }
    for c in &s.caches {
        o.push_str(&format!(
            "  Cache {} (preference {}): {}{}, RTR version {}\n",
            c.cache,
            c.preference,
            c.state,
            if c.in_use { ", in use" } else { "" },
            c.version
        ));
        o.push_str(&format!(
            "    Session {}, serial {}, {}, {}, last update {}\n",
            c.session_id.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            c.serial.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            count(c.vrps, "VRP", "VRPs"),
            count(c.aspas, "ASPA record", "ASPA records"),
            c.last_update.map(utc).unwrap_or_else(|| "never".into())
        ));
        o.push_str(&format!(
            "    Timers: refresh {}, retry {}, expire {}\n",
            duration(u64::from(c.refresh_secs)),
            duration(u64::from(c.retry_secs)),
            duration(u64::from(c.expire_secs))
        ));
        if let Some(e) = &c.last_error {
            o.push_str(&format!("    Last error: {e}\n"));
        }
    }
    for f in &s.files {
        o.push_str(&format!(
            "  File {}: {}, {}, read {}\n",
            f.path,
            count(f.vrps, "VRP", "VRPs"),
            count(f.aspas, "ASPA record", "ASPA records"),
            f.loaded_at.map(utc).unwrap_or_else(|| "never".into())
        ));
        if let Some(e) = &f.last_error {
            o.push_str(&format!("    Last error: {e}\n"));
        }
    }
    Ok(o)
}

fn source_routes(s: &ctl::SourceStatus) -> u64 {
    s.routes.ipv4_unicast + s.routes.ipv6_unicast
}

fn render_source_list(v: &Value) -> Result<String, String> {
    let list: Vec<ctl::SourceStatus> = parse(v)?;
    if list.is_empty() {
        return Ok("no [[sources]] are configured\n".into());
    }
    let mut o = format!("{:<16} {:<8} {:>9} {:<24} {}\n", "Name", "State", "Routes", "Neighbors sent/all", "Last load");
    for s in &list {
        let sent = s.peers.iter().filter(|p| p.state == "sent").count();
        o.push_str(&format!(
            "{:<16} {:<8} {:>9} {:<24} {}\n",
            s.name,
            s.state,
            source_routes(s),
            format!("{sent}/{}", s.peers.len()),
            s.last_load.map(utc).unwrap_or_else(|| "never".into())
        ));
    }
    Ok(o)
}

fn render_source_status(v: &Value) -> Result<String, String> {
    let list: Vec<ctl::SourceStatus> = parse(v)?;
    if list.is_empty() {
        return Ok("no [[sources]] are configured\n".into());
    }
    let mut o = String::new();
    for s in &list {
        o.push_str(&render_one_source(s));
    }
    Ok(o)
}

fn render_one_source(s: &ctl::SourceStatus) -> String {
    let mut o = format!("Source {} ({}): {}\n", s.name, s.kind, s.state);
    o.push_str(&format!("  File: {}\n", s.file));
    match (&s.peer, s.peer_as) {
        (Some(p), Some(asn)) => o.push_str(&format!("  RIB peer: {p} (AS{asn})\n")),
        (Some(p), None) => o.push_str(&format!("  RIB peer: {p}\n")),
        (None, _) => o.push_str("  RIB peer: any (the first route of every prefix)\n"),
    }
    o.push_str(&format!(
        "  Routes: {} ({} IPv4, {} IPv6); skipped: {} by prefix_shift, {} by limit, {} unusable\n",
        source_routes(s),
        s.routes.ipv4_unicast,
        s.routes.ipv6_unicast,
        s.skipped_shift,
        s.skipped_limit,
        s.skipped_bad
    ));
    o.push_str(&format!(
        "  Last load: {}{}\n",
        s.last_load.map(utc).unwrap_or_else(|| "never".into()),
        s.load_ms.map(|ms| format!(", took {:.1} s", ms as f64 / 1000.0)).unwrap_or_default()
    ));
    if let Some(e) = &s.last_error {
        o.push_str(&format!("  Last error ({}): {e}\n", s.last_error_time.map(utc).unwrap_or_default()));
    }
    o.push_str(&format!("  To: {}\n", s.to.join(", ")));
    for p in &s.peers {
        let name = p.name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
        let done = p.done_at.map(|t| format!(", done {}", utc(t))).unwrap_or_default();
        o.push_str(&format!("    {}{name}: {}, {} sent{done}\n", p.peer, p.state, count(p.sent, "prefix", "prefixes")));
    }
    o
}

fn render_source_reloaded(v: &Value) -> Result<String, String> {
    let s: ctl::SourceStatus = parse(v)?;
    Ok(format!("source {} read again: {} routes; announcing\n{}", s.name, source_routes(&s), render_one_source(&s)))
}

fn render_rpki_lookup(v: &Value) -> Result<String, String> {
    let l: ctl::RpkiLookup = parse(v)?;
    let mut o = format!("{} from AS{}: {}\n", l.prefix, l.origin, l.state);
    for v in &l.vrps {
        o.push_str(&format!("  VRP {} max length {} AS{}\n", v.prefix, v.max_length, v.asn));
    }
    if l.vrps.is_empty() {
        o.push_str("  no VRP covers it\n");
    }
    Ok(o)
}

fn render_rotate(v: &Value) -> Result<String, String> {
    Ok(match v.get("finished").and_then(Value::as_str) {
        Some(f) => format!("finished {f}\n"),
        None => "no update file was open (nothing received since the last rotation)\n".into(),
    })
}

fn abbreviate(list: &[String], max: usize) -> String {
    if list.is_empty() {
        return "-".into();
    }
    if list.len() <= max {
        return list.join(" ");
    }
    format!("{} (+{})", list[..max].join(" "), list.len() - max)
}

fn render_routes(v: &Value) -> Result<String, String> {
    let l: RouteList = parse(v)?;
    let extra = ExtraColumns::of(&l.routes, true);
    let rows: Vec<Vec<String>> = l
        .routes
        .iter()
        .map(|r| {
            let mut row = vec![r.prefix.clone()];
            row.extend(route_cells(r));
            extra.cells(r, &mut row);
            row
        })
        .collect();
    let mut head = vec!["Prefix"];
    head.extend(ROUTE_HEAD);
    extra.head(&mut head);
    let mut o = table(&head, &rows);
    o.push_str(&format!("\n{}, neighbor {}\n", count(l.routes.len() as u64, "route", "routes"), l.peer));
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use focl::control::proto::FamilyCounts;

    #[test]
    fn durations_have_one_form_below_a_day_and_one_above() {
        assert_eq!(duration(5), "00:00:05");
        assert_eq!(duration(125), "00:02:05");
        assert_eq!(duration(3 * 3600 + 4 * 60 + 5), "03:04:05");
        assert_eq!(duration(86_399), "23:59:59");
        assert_eq!(duration(86_400 + 2 * 3600 + 3 * 60 + 9), "1d02h03m");
        assert_eq!(duration(12 * 86400), "12d00h00m");
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(1, "route", "routes"), "1 route");
        assert_eq!(count(0, "route", "routes"), "0 routes");
        assert_eq!(count(2, "IPv6 prefix", "IPv6 prefixes"), "2 IPv6 prefixes");
        assert!(utc(0).ends_with(" UTC"), "{}", utc(0));
    }

    fn argv(words: &str) -> Vec<String> {
        words.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn unambiguous_prefixes_expand_to_commands() {
        assert_eq!(prepare_args(&argv("p l")), Ok((false, argv("peer list"))));
        assert_eq!(prepare_args(&argv("-s /x.sock ri su")), Ok((false, argv("-s /x.sock rib summary"))));
        assert_eq!(prepare_args(&argv("a st")), Ok((false, argv("archive status"))));
        assert_eq!(prepare_args(&argv("pe sh upstream")), Ok((false, argv("peer show upstream"))));
        // Positionals after the command are left alone, even when they look like commands.
        assert_eq!(prepare_args(&argv("peer show rib")), Ok((false, argv("peer show rib"))));
        assert_eq!(prepare_args(&argv("st")), Ok((false, argv("status"))));
        assert_eq!(prepare_args(&argv("po ex a 10.0.0.0/8")), Ok((false, argv("policy explain a 10.0.0.0/8"))));
    }

    #[test]
    fn an_ambiguous_or_unknown_prefix_names_the_candidates() {
        let e = prepare_args(&argv("r")).unwrap_err();
        assert!(e.contains("ambiguous") && e.contains("rib") && e.contains("reload"), "{e}");
        let e = prepare_args(&argv("peer re x")).unwrap_err();
        assert!(e.contains("reset") && e.contains("refresh"), "{e}");
        let e = prepare_args(&argv("frobnicate")).unwrap_err();
        assert!(e.contains("unknown command 'frobnicate'") && e.contains("peer"), "{e}");
    }

    #[test]
    fn json_may_follow_the_command() {
        assert_eq!(prepare_args(&argv("peer show x -j")), Ok((true, argv("peer show x"))));
        assert_eq!(prepare_args(&argv("--json status")), Ok((true, argv("status"))));
    }

    #[test]
    fn completion_scripts_name_every_command() {
        for shell in ["bash", "zsh"] {
            let script = completion_script(shell).unwrap();
            for (name, subs) in command_tree() {
                assert!(script.contains(name), "{shell}: {name}");
                for sub in subs {
                    assert!(script.contains(sub), "{shell}: {name} {sub}");
                }
            }
        }
        assert!(completion_script("fish").is_err());
    }

    #[test]
    fn peer_list_table() {
        let p = PeerSummary {
            address: "192.0.2.2".into(),
            name: Some("upstream".into()),
            remote_as: 65002,
            state: "Established".into(),
            state_secs: 60,
            uptime_secs: Some(60),
            prefixes_received: FamilyCounts { ipv4_unicast: 10, ipv6_unicast: 2 },
            messages_received: 30,
            messages_sent: 20,
            flaps: 1,
            passive: false,
            disabled: false,
            down_reason: None,
            restart_in_secs: None,
        };
        let out = render_peer_list(&serde_json::to_value(vec![p]).unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Neighbor   Name      AS     State        Up/Down   Rcvd v4  Rcvd v6  MsgRcvd  MsgSent  Flaps"
        );
        assert_eq!(
            lines[1],
            "192.0.2.2  upstream  65002  Established  00:01:00  10       2        30       20       1"
        );
    }

    #[test]
    fn routes_table_and_count() {
        let r = Route {
            prefix: "198.51.100.0/24".into(),
            next_hop: Some("192.0.2.2".into()),
            as_path: "65002 65010".into(),
            origin: Some("igp".into()),
            med: None,
            local_pref: Some(100),
            communities: vec!["65000:1".into()],
            large_communities: vec![],
            age_secs: 3,
            best: None,
            peer: None,
            otc: None,
            otc_leak: false,
            rpki: None,
            aspa: None,
            stale: false,
            llgr_stale: false,
            path_id: None,
            rejected: false,
        };
        let l = RouteList { peer: "192.0.2.2".into(), routes: vec![r.clone()], count: 1 };
        let out = render_routes(&serde_json::to_value(l).unwrap()).unwrap();
        assert!(out
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("198.51.100.0/24  192.0.2.2  65002 65010  igp     -    100     65000:1"));
        assert!(out.ends_with("1 route, neighbor 192.0.2.2\n"));
        assert!(!out.contains("OTC"), "no OTC column without OTC");
        let leak = Route { otc: Some(65010), otc_leak: true, best: Some(true), ..r.clone() };
        let out =
            render_lookup(&serde_json::json!({"matched": "198.51.100.0/24"}), &[serde_json::to_value(&leak).unwrap()])
                .unwrap();
        assert!(out.contains("OTC"), "{out}");
        assert!(out.contains("*L"), "{out}");
        assert!(out.contains("65010 leak"), "{out}");
        assert!(out.contains("L route leak by OTC, RFC 9234"), "{out}");
    }

    #[test]
    fn monitor_events_read_as_one_line_each() {
        let d = serde_json::json!({
            "timestamp": 1_764_650_000.25, "peer": "192.0.2.2", "peer_name": "up", "peer_asn": 65002,
            "type": "UPDATE", "announcements": [{"next_hop": "192.0.2.2", "prefixes": ["198.51.100.0/24"]}],
            "withdrawals": ["203.0.113.0/24"], "path": [65002, [65010, 65011]]
        });
        let text = monitor_line(&d);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("2025-12-02 04:33:20.250 UTC  192.0.2.2 (up) AS65002  announce 198.51.100.0/24 via 192.0.2.2 path 65002 [65010,65011]"), "{text}");
        assert!(lines[1].ends_with("withdraw 203.0.113.0/24"), "{text}");
        let st = serde_json::json!({"timestamp": 0.0, "peer": "192.0.2.2", "peer_name": null, "peer_asn": 65002,
            "type": "STATE", "old_state": "OpenConfirm", "new_state": "Established", "reason": "KEEPALIVE"});
        assert!(monitor_line(&st).ends_with("192.0.2.2 AS65002  state OpenConfirm -> Established (KEEPALIVE)\n"));
    }

    #[test]
    fn why_a_peer_is_down_is_part_of_its_state() {
        assert_eq!(state_text("Idle", Some("admin down"), None), "Idle (admin down)");
        assert_eq!(state_text("Idle", Some("max-prefix"), Some(42)), "Idle (max-prefix, restarts in 00:00:42)");
        assert_eq!(state_text("Idle", Some("max-prefix"), None), "Idle (max-prefix, until reset)");
        assert_eq!(state_text("Established", None, None), "Established");
    }

    #[test]
    fn not_running_is_one_line() {
        let path = std::env::temp_dir().join("focl-test-no-such-socket");
        match request(&path, Cmd::PeerList {}) {
            Err(Failure::NotRunning(m)) => {
                assert!(!m.contains('\n'));
                assert!(m.starts_with("focld is not running"));
            }
            _ => panic!("expected NotRunning"),
        }
    }

    #[test]
    fn peer_show_gives_the_ttl_and_the_gtsm_minimum() {
        assert_eq!(ttl_text(1, false), ", multihop 1");
        assert_eq!(ttl_text(2, true), ", GTSM: TTL 255 sent, at least 254 received (multihop 2)");
        assert_eq!(ttl_text(0, false), "", "an older focld sends no multihop");
    }

    #[test]
    fn peer_show_names_the_last_error() {
        let e = LastError {
            direction: "received".into(),
            code: 6,
            subcode: 2,
            name: "Cease / Administrative Shutdown".into(),
            reason: Some("maintenance".into()),
            age_secs: 70,
        };
        assert_eq!(
            last_error_text(&e),
            "received Cease / Administrative Shutdown (6/2), 00:01:10 ago, reason: \"maintenance\""
        );
    }
}
