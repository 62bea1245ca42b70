//! focl: the command-line client of focld.
//!
//! Sends one NDJSON request over focld's control socket and prints the reply as a table
//! (in the spirit of `bgpctl show` and `gobgp neighbor`) or, with `-j`, as JSON.
//! Exit status: 0 success, 1 the daemon answered with an error, 2 focld is not reachable.

use argh::FromArgs;
use focl::control::proto::{
    self as ctl, Command as Cmd, LastError, MsgCounters, PeerDetail, PeerSummary, Reply, Request, RibSummary, Route,
    RouteDetail, RouteFilter, RouteList,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// focl: control and query focld. Exit status: 0 ok, 1 error reply, 2 focld not reachable.
#[derive(FromArgs)]
struct Args {
    /// focld's control socket (default /tmp/focld.sock, or $FOCL_SOCKET)
    #[argh(option, short = 's')]
    socket: Option<PathBuf>,
    /// print the reply as JSON (one document, pretty-printed)
    #[argh(switch, short = 'j')]
    json: bool,
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Peer(PeerCmd),
    Rib(RibCmd),
    Archive(ArchiveCmd),
    Status(StatusCmd),
    Reload(ReloadCmd),
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
    /// print only the number of routes
    #[argh(switch)]
    count: bool,
    /// every attribute decoded
    #[argh(switch)]
    detail: bool,
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

fn query_of(c: &Command) -> Query {
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
            RibAction::In(i) => return rib_in_query(i),
            RibAction::Lookup(l) => return rib_lookup_query(l),
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
    Query { cmd, render, routes: None }
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

fn request(socket: &PathBuf, cmd: Cmd) -> Result<Reply, Failure> {
    request_stream(socket, cmd, &mut |_| Ok(()))
}

/// Send one request; every data line of a streamed answer goes to `on_data`, and the closing
/// reply line (or the only one) is returned.
fn request_stream(
    socket: &PathBuf,
    cmd: Cmd,
    on_data: &mut dyn FnMut(Value) -> Result<(), String>,
) -> Result<Reply, Failure> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        Failure::NotRunning(format!(
            "focld is not running (cannot connect to {}: {e}); start it with focld --config FILE, or give its socket with -s SOCKET",
            socket.display()
        ))
    })?;
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

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let socket = args
        .socket
        .or_else(|| std::env::var_os("FOCL_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/tmp/focld.sock"));
    let q = query_of(&args.command);
    if let Some(shape) = q.routes {
        return stream_routes(&socket, q.cmd, shape, args.json);
    }
    let reply = match request(&socket, q.cmd) {
        Ok(r) => r,
        Err(Failure::NotRunning(m)) => {
            eprintln!("focl: {m}");
            return ExitCode::from(2);
        }
        Err(Failure::Other(m)) => {
            eprintln!("focl: {m}");
            return ExitCode::from(1);
        }
    };
    if !reply.ok {
        let e = reply.error.unwrap_or_else(|| ctl::CtlError::new(ctl::code::INTERNAL, "error without details"));
        if e.code == ctl::code::BAD_CONFIG {
            eprintln!("focl: the new configuration was rejected; focld keeps running the old one:");
            for line in e.message.lines() {
                eprintln!("  {line}");
            }
            return ExitCode::from(1);
        }
        eprintln!("focl: {}", e.message);
        return ExitCode::from(1);
    }
    let result = reply.result.unwrap_or(Value::Null);
    let text =
        if args.json { serde_json::to_string_pretty(&result).map_err(|e| e.to_string()) } else { (q.render)(&result) };
    match text {
        Ok(t) => {
            print!("{t}");
            if !t.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("focl: cannot show focld's answer: {e}");
            ExitCode::from(1)
        }
    }
}

/// Exit status and message of a failed request.
fn failed(f: Failure) -> ExitCode {
    match f {
        Failure::NotRunning(m) => {
            eprintln!("focl: {m}");
            ExitCode::from(2)
        }
        Failure::Other(m) => {
            eprintln!("focl: {m}");
            ExitCode::from(1)
        }
    }
}

/// Ask a route query as a stream. With -j the routes are written as they arrive, as one JSON
/// document `{"routes": [...], "count": N, ...}` (the closing reply's fields after the list);
/// as text they are gathered and printed as one table at the end.
fn stream_routes(socket: &PathBuf, cmd: Cmd, shape: RouteShape, json: bool) -> ExitCode {
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
        write!(out, "{sep}{indented}").map_err(|e| format!("cannot write: {e}"))
    };
    let reply = request_stream(socket, cmd, &mut on_data);
    let reply = match reply {
        Ok(r) => r,
        Err(f) => {
            let _ = out.flush();
            return failed(f);
        }
    };
    if !reply.ok {
        let _ = out.flush();
        let e = reply.error.unwrap_or_else(|| ctl::CtlError::new(ctl::code::INTERNAL, "error without details"));
        eprintln!("focl: {}", e.message);
        return ExitCode::from(1);
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
            if write!(out, "{t}{nl}").and_then(|_| out.flush()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
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

/// `rib lookup`: one line per route, "*" on the best.
fn render_lookup(end: &Value, routes: &[Value]) -> Result<String, String> {
    let routes: Vec<Route> = routes.iter().map(parse).collect::<Result<_, _>>()?;
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            let mut comms = r.communities.clone();
            comms.extend(r.large_communities.iter().cloned());
            vec![
                if r.best == Some(true) { "*".into() } else { " ".into() },
                r.prefix.clone(),
                neighbor_text(&r.peer),
                r.next_hop.clone().unwrap_or_else(|| "-".into()),
                if r.as_path.is_empty() { "-".into() } else { r.as_path.clone() },
                r.origin.clone().unwrap_or_else(|| "-".into()),
                r.med.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                r.local_pref.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                abbreviate(&comms, 3),
                duration(r.age_secs),
            ]
        })
        .collect();
    let mut o = matched_line(end);
    if !rows.is_empty() {
        o.push_str(&table(
            &["", "Prefix", "Neighbor", "Next hop", "AS path", "Origin", "MED", "LocPrf", "Communities", "Age"],
            &rows,
        ));
    }
    o.push_str(&format!("\n{} routes (* best)\n", routes.len()));
    Ok(o)
}

/// `--detail`: every attribute, one block per route (as `bgpctl show rib detail`).
fn render_detail(end: &Value, routes: &[Value]) -> Result<String, String> {
    let routes: Vec<RouteDetail> = routes.iter().map(parse).collect::<Result<_, _>>()?;
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(" ") };
    let mut o = matched_line(end);
    for r in &routes {
        o.push_str(&format!("\n{}{} from {}\n", r.prefix, if r.best { " (best)" } else { "" }, neighbor_text(&r.peer)));
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
        for a in &r.other_attributes {
            o.push_str(&format!("  Attribute {} (flags 0x{:02x}): {}\n", a.type_code, a.flags, a.value));
        }
    }
    o.push_str(&format!("\n{} routes\n", routes.len()));
    Ok(o)
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

/// 45s, 12:03, 3:04:05, 2d03h.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else if m > 0 {
        format!("{m}:{s:02}")
    } else {
        format!("{s}s")
    }
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
            let state = if p.disabled { format!("{} (disabled)", p.state) } else { p.state.clone() };
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

fn render_peer_show(v: &Value) -> Result<String, String> {
    let p: PeerDetail = parse(v)?;
    let mut o = String::new();
    let name = p.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    o.push_str(&format!("BGP neighbor is {}{name}, remote AS {}, local AS {}\n", p.address, p.remote_as, p.local_as));
    let mode = if p.passive { "passive" } else { "active" };
    o.push_str(&format!(
        "  Remote port {}, {mode}{}\n",
        p.remote_port,
        if p.password_set { ", TCP-MD5 password set" } else { "" }
    ));
    let mut state = format!("  BGP state = {}", p.state);
    if p.disabled {
        state.push_str(" (administratively disabled)");
    }
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
    o.push_str(&format!("  Last flap/connect: {} flaps, {} connect attempts\n", p.flaps, p.connect_attempts));
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
    o.push_str(&format!("  Capabilities sent:     {}\n", p.capabilities_sent.join(", ")));
    let recv = if p.capabilities_received.is_empty() { "-".to_string() } else { p.capabilities_received.join(", ") };
    o.push_str(&format!("  Capabilities received: {recv}\n"));
    let fams = if p.families.is_empty() { "-".to_string() } else { p.families.join(", ") };
    o.push_str(&format!("  Negotiated families:   {fams}\n\n"));
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
    let mut o = table(&["Neighbor", "Name", "IPv4 routes", "IPv6 routes"], &rows);
    o.push_str(&format!(
        "\nTotal: {} IPv4 and {} IPv6 routes from {} neighbors, {} distinct attribute sets\n",
        s.routes.ipv4_unicast,
        s.routes.ipv6_unicast,
        s.peers.len(),
        s.attribute_sets
    ));
    o.push_str(&format!(
        "Announced: {} IPv4 and {} IPv6 prefixes\n",
        s.announced.ipv4_unicast, s.announced.ipv6_unicast
    ));
    Ok(o)
}

/// Unix seconds as UTC "2026-11-24 09:45:00".
fn utc(secs: u64) -> String {
    focl::utc::format(secs)
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
        "  Current update file: {} ({} records)\n",
        s.current_file.as_deref().unwrap_or("-"),
        s.current_records
    ));
    o.push_str(&format!(
        "  Written: {} records, {} bytes, {} files finished\n",
        s.records_written, s.bytes_written, s.files_finished
    ));
    o.push_str(&format!("  Dropped: {}\n", s.dropped));
    o.push_str(&format!("  Last rotation: {}, next rotation: {}\n", opt(s.last_rotation), opt(s.next_rotation)));
    o.push_str(&format!("  Last RIB snapshot: {}\n", s.last_snapshot.as_deref().unwrap_or("-")));
    if let Some(e) = &s.last_error {
        o.push_str(&format!("  Last error: {e}\n"));
    }
    for d in &s.destinations {
        o.push_str(&format!("  Destination {}\n", d.destination));
        o.push_str(&format!(
            "    Pending: {} files, {} bytes; delivered since start: {}\n",
            d.pending_files, d.pending_bytes, d.delivered_files
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
            "  Archive: {} ({}), {} files finished, {} records dropped, current {}\n",
            a.dir,
            a.layout,
            a.files_finished,
            a.dropped,
            a.current_file.as_deref().unwrap_or("-")
        ));
        if let Some(e) = &a.last_error {
            o.push_str(&format!("    last error: {e}\n"));
        }
        for d in &a.destinations {
            o.push_str(&format!(
                "  Replication to {}: {} files pending ({} bytes){}\n",
                d.destination,
                d.pending_files,
                d.pending_bytes,
                d.last_error.as_deref().map(|e| format!(", last error: {e}")).unwrap_or_default()
            ));
        }
    } else {
        o.push_str("  Archive: off\n");
    }
    Ok(o)
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
    let rows: Vec<Vec<String>> = l
        .routes
        .iter()
        .map(|r| {
            let mut comms = r.communities.clone();
            comms.extend(r.large_communities.iter().cloned());
            vec![
                r.prefix.clone(),
                r.next_hop.clone().unwrap_or_else(|| "-".into()),
                if r.as_path.is_empty() { "-".into() } else { r.as_path.clone() },
                r.origin.clone().unwrap_or_else(|| "-".into()),
                r.med.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                r.local_pref.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                abbreviate(&comms, 3),
                duration(r.age_secs),
            ]
        })
        .collect();
    let mut o = table(&["Prefix", "Next hop", "AS path", "Origin", "MED", "LocPrf", "Communities", "Age"], &rows);
    o.push_str(&format!("\n{} routes, neighbor {}\n", l.routes.len(), l.peer));
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use focl::control::proto::FamilyCounts;

    #[test]
    fn durations_read_like_bgpctl() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(125), "2:05");
        assert_eq!(duration(3 * 3600 + 4 * 60 + 5), "3:04:05");
        assert_eq!(duration(2 * 86400 + 3 * 3600), "2d03h");
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
        };
        let out = render_peer_list(&serde_json::to_value(vec![p]).unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Neighbor   Name      AS     State        Up/Down  Rcvd v4  Rcvd v6  MsgRcvd  MsgSent  Flaps"
        );
        assert_eq!(lines[1], "192.0.2.2  upstream  65002  Established  1:00     10       2        30       20       1");
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
        };
        let l = RouteList { peer: "192.0.2.2".into(), routes: vec![r], count: 1 };
        let out = render_routes(&serde_json::to_value(l).unwrap()).unwrap();
        assert!(out
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("198.51.100.0/24  192.0.2.2  65002 65010  igp     -    100     65000:1"));
        assert!(out.ends_with("1 routes, neighbor 192.0.2.2\n"));
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
            "received Cease / Administrative Shutdown (6/2), 1:10 ago, reason: \"maintenance\""
        );
    }
}
