//! Dispatch: answers each control request by asking the thread that knows (a peer thread, the
//! RIB, the MRT writer, the main thread for reloads) over its channel, with a timeout.
//!
//! Called by the control server for every request; reads the `DaemonView` that the main
//! thread keeps up to date (the peers, replication status, archive settings, run facts).

use super::proto::{
    code, ActionResult, ArchiveStatus, Command, CtlError, DaemonStatus, FamilyCounts, PeerDetail, PeerSummary, Reply,
    Request, RibSummary, RouteFilter,
};
use super::server::{Answer, Handler};
use crate::config::ArchiveConfig;
use crate::msg::{
    AspaState, FileSink, MonitorFilter, MonitorLink, MonitorMsg, MrtLink, MrtMsg, PeerId, PeerLink, PeerMsg,
    ReloadRequest, RibMsg, RibQuery, RouteMatch, RouteQuery, RouteTarget, RovState, RpkiLink, RpkiMsg, StatusSource,
    ROUTE_STREAM_CHUNKS,
};
use crate::prefix::{Family, Prefix};
use crate::wire::display;
use crossbeam_channel::Sender;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// How long the control thread waits for a peer thread or the RIB to answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `focl reload` waits (stopping removed peers takes a moment each).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// What the control thread reads and the main thread changes on reload.
pub struct DaemonView {
    pub peers: RwLock<Vec<PeerRef>>,
    pub repl: RwLock<Option<(FileSink, StatusSource)>>,
    pub archive: RwLock<ArchiveConfig>,
    pub run: RwLock<RunInfo>,
    pub reload_tx: Sender<ReloadRequest>,
}

/// Facts about the running daemon for `focl status`.
pub struct RunInfo {
    pub started: Instant,
    pub config_file: String,
    pub asn: u32,
    pub router_id: String,
    pub last_reload: Option<u64>,
}

/// What the dispatcher knows of a peer.
#[derive(Clone)]
pub struct PeerRef {
    pub id: PeerId,
    pub address: IpAddr,
    pub name: Option<String>,
    pub link: PeerLink,
}

/// A lock that a panicking holder left poisoned is still read: the data is plain values.
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Answers control requests (the control server's `Handler`).
pub struct Dispatcher {
    pub view: Arc<DaemonView>,
    pub rib: Sender<RibMsg>,
    pub mrt: Option<MrtLink>,
    pub monitor: MonitorLink,
    pub rpki: RpkiLink,
    pub bmp: crate::msg::BmpLink,
}

fn internal(what: &str) -> CtlError {
    CtlError::new(code::INTERNAL, format!("{what} did not answer in time"))
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, CtlError> {
    serde_json::to_value(v).map_err(|e| CtlError::new(code::INTERNAL, format!("cannot encode reply: {e}")))
}

impl Dispatcher {
    fn find_peer(&self, want: &str) -> Result<PeerRef, CtlError> {
        let by_addr = want.parse::<IpAddr>().ok();
        read(&self.view.peers)
            .iter()
            .find(|p| Some(p.address) == by_addr || p.name.as_deref() == Some(want))
            .cloned()
            .ok_or_else(|| {
                CtlError::new(code::NO_SUCH_PEER, format!("no neighbor '{want}' is configured (see: focl peer list)"))
            })
    }

    /// Every peer's summary: the peer threads are all asked at once and the RIB once for
    /// all counts, so the answer takes one turn of the slowest thread, not one turn of each
    /// (a RIB busy with a snapshot's chunks answers between two chunks).
    fn peer_summaries(&self) -> Result<Vec<PeerSummary>, CtlError> {
        let peers = read(&self.view.peers).clone();
        let deadline = Instant::now() + QUERY_TIMEOUT;
        let mut asked = Vec::with_capacity(peers.len());
        for p in &peers {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if !p.link.send(PeerMsg::Summary(tx)) {
                return Err(internal(&format!("neighbor {}", p.address)));
            }
            asked.push((p, rx));
        }
        let counts: HashMap<PeerId, FamilyCounts> =
            serde_json::from_value::<Vec<(PeerId, FamilyCounts)>>(self.ask_rib(RibQuery::ReceivedCounts)?)
                .map_err(|e| CtlError::new(code::INTERNAL, e.to_string()))?
                .into_iter()
                .collect();
        let mut out = Vec::with_capacity(asked.len());
        for (p, rx) in asked {
            let mut s: PeerSummary =
                rx.recv_deadline(deadline).map_err(|_| internal(&format!("neighbor {}", p.address)))?;
            s.prefixes_received = counts.get(&p.id).cloned().unwrap_or_default();
            out.push(s);
        }
        Ok(out)
    }

    fn archive_status(&self) -> Result<ArchiveStatus, CtlError> {
        self.archive_status_asked(self.ask_archive())
    }

    /// Ask the MRT writer for its status; `archive_status_asked` takes the answer.
    fn ask_archive(&self) -> Option<crossbeam_channel::Receiver<ArchiveStatus>> {
        let m = self.mrt.as_ref()?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        m.send_blocking(MrtMsg::Status(tx));
        Some(rx)
    }

    fn archive_status_asked(
        &self,
        asked: Option<crossbeam_channel::Receiver<ArchiveStatus>>,
    ) -> Result<ArchiveStatus, CtlError> {
        match asked {
            Some(rx) => {
                let mut status: ArchiveStatus =
                    rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the MRT writer"))?;
                status.destinations = read(&self.view.repl).as_ref().map(|(_, s)| s.get()).unwrap_or_default();
                Ok(status)
            }
            None => Ok(ArchiveStatus {
                enabled: false,
                dir: read(&self.view.archive).dir.display().to_string(),
                ..Default::default()
            }),
        }
    }

    /// Every thread it reads is asked before any answer is awaited (the MRT writer and the
    /// monitor first, then the peers and the RIB): the reply takes the slowest one's turn.
    fn status(&self) -> Result<DaemonStatus, CtlError> {
        let archive = self.ask_archive();
        let (monitor_tx, monitor) = crossbeam_channel::bounded(1);
        self.monitor.send_blocking(MonitorMsg::Status(monitor_tx));
        let (rib_tx, rib) = crossbeam_channel::bounded(1);
        self.rib
            .send_timeout(RibMsg::Query(RibQuery::Summary, rib_tx), QUERY_TIMEOUT)
            .map_err(|_| internal("the RIB"))?;
        let peers = self.peer_summaries()?;
        let mut by_state = std::collections::BTreeMap::new();
        for p in &peers {
            *by_state.entry(p.state.clone()).or_insert(0) += 1;
        }
        let summary: Result<Value, CtlError> = rib.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?;
        let summary: RibSummary =
            serde_json::from_value(summary?).map_err(|e| CtlError::new(code::INTERNAL, e.to_string()))?;
        let run = read(&self.view.run);
        Ok(DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uptime_secs: run.started.elapsed().as_secs(),
            config_file: run.config_file.clone(),
            last_reload: run.last_reload,
            asn: run.asn,
            router_id: run.router_id.clone(),
            peers: peers.len() as u64,
            peers_by_state: by_state,
            peers_disabled: peers.iter().filter(|p| p.disabled).count() as u64,
            routes: summary.routes,
            archive: self.archive_status_asked(archive)?,
            monitor: monitor.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the monitor"))?,
        })
    }

    fn ask_peer<T>(&self, p: &PeerRef, make: impl FnOnce(Sender<T>) -> PeerMsg) -> Result<T, CtlError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !p.link.send(make(tx)) {
            return Err(internal(&format!("neighbor {}", p.address)));
        }
        rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal(&format!("neighbor {}", p.address)))
    }

    fn ask_rib(&self, q: RibQuery) -> Result<Value, CtlError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.rib.send_timeout(RibMsg::Query(q, tx), QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?;
        rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?
    }

    fn ask_rib_blackhole(&self, op: crate::msg::BlackholeOp) -> Result<Value, CtlError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.rib.send_timeout(RibMsg::Blackhole(op, tx), QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?;
        rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?
    }

    fn rib_counts(&self, id: PeerId) -> Result<(FamilyCounts, FamilyCounts), CtlError> {
        let v = self.ask_rib(RibQuery::Counts { peer: id })?;
        serde_json::from_value(v).map_err(|e| CtlError::new(code::INTERNAL, e.to_string()))
    }

    /// A peer action that answers `Result<ActionResult, CtlError>`.
    fn peer_action(
        &self,
        peer: &str,
        make: impl FnOnce(Sender<Result<ActionResult, CtlError>>) -> PeerMsg,
    ) -> Result<Value, CtlError> {
        let p = self.find_peer(peer)?;
        let r: Result<ActionResult, CtlError> = self.ask_peer(&p, make)?;
        to_value(r?)
    }

    fn dispatch(&self, command: &Command) -> Result<Value, CtlError> {
        match command {
            Command::PeerList {} => to_value(self.peer_summaries()?),
            Command::PeerShow { peer } => {
                let p = self.find_peer(peer)?;
                let mut d: PeerDetail = self.ask_peer(&p, PeerMsg::Status)?;
                let (rcvd, sent) = self.rib_counts(p.id)?;
                d.prefixes_received = rcvd;
                d.prefixes_sent = sent;
                let v = self.ask_rib(RibQuery::Graceful { peer: p.id })?;
                (d.stale_routes, d.graceful_restart) =
                    serde_json::from_value(v).map_err(|e| CtlError::new(code::INTERNAL, e.to_string()))?;
                to_value(d)
            }
            Command::PeerReset { peer } => self.peer_action(peer, PeerMsg::Reset),
            Command::PeerRefresh { peer, family } => {
                let family = family.as_deref().map(parse_family).transpose()?;
                self.peer_action(peer, |tx| PeerMsg::Refresh(family, tx))
            }
            Command::PeerDisable { peer } => self.peer_action(peer, PeerMsg::Disable),
            Command::PeerEnable { peer } => self.peer_action(peer, PeerMsg::Enable),
            Command::RibSummary {} => self.ask_rib(RibQuery::Summary),
            Command::RibIn { .. } | Command::RibLookup { .. } => {
                let (q, _) = self.route_query(command)?;
                self.ask_rib(RibQuery::Routes(q))
            }
            Command::BlackholeAdd { prefix, peer } | Command::BlackholeDel { prefix, peer } => {
                let prefix: crate::prefix::Prefix = prefix.parse().map_err(|e| {
                    CtlError::new(code::BAD_ARGUMENT, format!("bad prefix '{prefix}': {e}; write ADDRESS/LENGTH"))
                })?;
                let peer = peer.as_deref().map(|p| self.find_peer(p).map(|r| r.id)).transpose()?;
                let op = if matches!(command, Command::BlackholeAdd { .. }) {
                    crate::msg::BlackholeOp::Add(prefix, peer)
                } else {
                    crate::msg::BlackholeOp::Del(prefix, peer)
                };
                self.ask_rib_blackhole(op)
            }
            Command::BlackholeList {} => self.ask_rib_blackhole(crate::msg::BlackholeOp::List),
            Command::PolicyExplain { peer, prefix } => {
                let p = self.find_peer(peer)?;
                let prefix = prefix.parse().map_err(|e| {
                    CtlError::new(code::BAD_ARGUMENT, format!("bad prefix '{prefix}': {e}; write ADDRESS/LENGTH"))
                })?;
                self.ask_rib(RibQuery::PolicyExplain { peer: p.id, prefix })
            }
            Command::RibOut { peer } => {
                let p = self.find_peer(peer)?;
                self.ask_rib(RibQuery::Out { peer: p.id })
            }
            Command::ArchiveStatus {} => to_value(self.archive_status()?),
            Command::ArchiveRetry {} => {
                self.mrt.as_ref().ok_or_else(CtlError::archive_off)?;
                let repl = read(&self.view.repl);
                let (link, _) = repl.as_ref().ok_or_else(|| {
                    CtlError::new(code::BAD_ARGUMENT, "no [[archive.destinations]] are configured; nothing to retry")
                })?;
                link.retry();
                Ok(serde_json::json!({ "destinations": read(&self.view.archive).destinations.len() }))
            }
            Command::ArchiveRotate {} => {
                let m = self.mrt.as_ref().ok_or_else(CtlError::archive_off)?;
                let (tx, rx) = crossbeam_channel::bounded(1);
                m.send_blocking(MrtMsg::Rotate(tx));
                rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the MRT writer"))?
            }
            Command::ArchiveSnapshot {} => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.rib.send_timeout(RibMsg::Snapshot(tx), QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?;
                rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?
            }
            Command::Status {} => to_value(self.status()?),
            Command::RpkiStatus {} => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.rpki.send(RpkiMsg::Status(tx));
                to_value(rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the RTR client"))?)
            }
            Command::BmpStatus {} => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.bmp.send_blocking(crate::msg::BmpMsg::Status(tx));
                to_value(rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the BMP thread"))?)
            }
            Command::SourceList {} => self.ask_rib(RibQuery::Sources(None)),
            Command::SourceStatus { name } => self.ask_rib(RibQuery::Sources(name.clone())),
            Command::SourceReload { name } => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                let msg = RibMsg::SourceReload(name.clone(), tx);
                self.rib.send_timeout(msg, QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?;
                // Reading a full table takes seconds.
                let r = rx.recv_timeout(RELOAD_TIMEOUT).map_err(|_| internal("the source thread"))?;
                to_value(r?)
            }
            Command::RpkiLookup { prefix, origin } => {
                let prefix = parse_prefix(prefix)?;
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.rpki.send(RpkiMsg::Lookup { prefix, origin: *origin, reply: tx });
                to_value(rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the RTR client"))?)
            }
            // Streams are handed over in `subscribe`, never answered here.
            Command::Monitor { .. } => {
                Err(CtlError::new(code::BAD_REQUEST, "monitor is a stream; the control server hands it over"))
            }
            Command::Reload {} => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.view.reload_tx.send_timeout(tx, QUERY_TIMEOUT).map_err(|_| internal("the main thread"))?;
                let r = rx.recv_timeout(RELOAD_TIMEOUT).map_err(|_| internal("the reload"))?;
                to_value(r?)
            }
        }
    }
}

impl Dispatcher {
    /// The RIB question of a `rib_in` / `rib_lookup`, and whether it is to be streamed.
    fn route_query(&self, command: &Command) -> Result<(RouteQuery, bool), CtlError> {
        match command {
            Command::RibIn { peer, prefix, filter, detail, count, stream } => {
                let p = self.find_peer(peer)?;
                // A prefix: it and what it covers; a bare address: the peer's longest match.
                let target = match prefix.as_deref() {
                    None => RouteTarget::All,
                    Some(s) if s.parse::<IpAddr>().is_ok() => {
                        RouteTarget::Longest { of: parse_prefix(s)?, more: false, less: false }
                    }
                    Some(s) => RouteTarget::Within(parse_prefix(s)?),
                };
                let q = RouteQuery {
                    peer: Some(p.id),
                    target,
                    filter: parse_filter(filter)?,
                    detail: *detail,
                    count_only: *count,
                };
                Ok((q, *stream))
            }
            Command::RibLookup { target, all, more, less, filter, detail, count, stream } => {
                let of = parse_prefix(target)?;
                let mut filter = parse_filter(filter)?;
                // Without --all, only the best route of each prefix.
                filter.best |= !*all;
                let q = RouteQuery {
                    peer: None,
                    target: RouteTarget::Longest { of, more: *more, less: *less },
                    filter,
                    detail: *detail,
                    count_only: *count,
                };
                Ok((q, *stream))
            }
            _ => Err(CtlError::new(code::INTERNAL, "not a route query")),
        }
    }
}

fn parse_filter(f: &RouteFilter) -> Result<RouteMatch, CtlError> {
    let community = f
        .community
        .as_deref()
        .map(|c| {
            display::parse_community(c).ok_or_else(|| {
                CtlError::new(code::BAD_ARGUMENT, format!("bad community '{c}': use ASN:VALUE (0-65535 each) or no-export, no-advertise, no-export-subconfed"))
            })
        })
        .transpose()?;
    let large_community = f
        .large_community
        .as_deref()
        .map(|c| {
            display::parse_large_community(c).ok_or_else(|| {
                CtlError::new(code::BAD_ARGUMENT, format!("bad large community '{c}': use GLOBAL:LOCAL1:LOCAL2"))
            })
        })
        .transpose()?;
    let rpki = f
        .rpki
        .as_deref()
        .map(|s| match s {
            "valid" => Ok(RovState::Valid),
            "invalid" => Ok(RovState::Invalid),
            "not-found" | "not_found" | "notfound" => Ok(RovState::NotFound),
            _ => {
                Err(CtlError::new(code::BAD_ARGUMENT, format!("bad RPKI state '{s}': use valid, invalid or not-found")))
            }
        })
        .transpose()?;
    let aspa = f
        .aspa
        .as_deref()
        .map(|s| {
            AspaState::parse(s).ok_or_else(|| {
                CtlError::new(code::BAD_ARGUMENT, format!("bad ASPA state '{s}': use valid, invalid or unknown"))
            })
        })
        .transpose()?;
    Ok(RouteMatch {
        origin: f.origin,
        path_as: f.path_as,
        community,
        large_community,
        peer_as: f.peer_as,
        best: f.best,
        rpki,
        aspa,
        rejected: f.rejected,
    })
}

fn parse_family(s: &str) -> Result<Family, CtlError> {
    match s {
        "ipv4" | "ipv4_unicast" => Ok(Family::Ipv4Unicast),
        "ipv6" | "ipv6_unicast" => Ok(Family::Ipv6Unicast),
        _ => Err(CtlError::new(code::BAD_ARGUMENT, format!("unknown family '{s}': use ipv4 or ipv6"))),
    }
}

/// A prefix, or a bare address taken as a host route.
fn parse_prefix(s: &str) -> Result<Prefix, CtlError> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        return Prefix::new(ip, len).map_err(|e| CtlError::new(code::BAD_ARGUMENT, e.to_string()));
    }
    s.parse().map_err(|e: crate::prefix::PrefixError| CtlError::new(code::BAD_ARGUMENT, format!("bad prefix: {e}")))
}

impl Dispatcher {
    /// A `monitor` request's filter, with names and text resolved.
    fn monitor_filter(&self, command: &Command) -> Result<MonitorFilter, CtlError> {
        let Command::Monitor { peer, prefix, more, origin, r#type } = command else {
            return Err(CtlError::new(code::BAD_REQUEST, "not a monitor request"));
        };
        let peer = peer.as_deref().map(|p| self.find_peer(p).map(|r| r.address)).transpose()?;
        let prefix = prefix.as_deref().map(parse_prefix).transpose()?.map(|p| (p, *more));
        let (updates, states, notifications) = match r#type.as_deref().unwrap_or("all") {
            "all" => (true, true, true),
            "update" | "updates" => (true, false, false),
            "state" | "states" => (false, true, false),
            "notification" | "notifications" => (false, false, true),
            other => {
                return Err(CtlError::new(
                    code::BAD_ARGUMENT,
                    format!("unknown event type '{other}': use update, state, notification or all"),
                ))
            }
        };
        Ok(MonitorFilter { peer, prefix, origin: *origin, updates, states, notifications })
    }
}

impl Handler for Dispatcher {
    fn handle(&mut self, req: &Request) -> Answer {
        // Streamed route queries: the RIB writes chunks as the client reads them.
        if let Command::RibIn { stream: true, .. } | Command::RibLookup { stream: true, .. } = &req.command {
            let started = self.route_query(&req.command).and_then(|(q, _)| {
                let (tx, rx) = crossbeam_channel::bounded(ROUTE_STREAM_CHUNKS);
                self.rib.send_timeout(RibMsg::Routes(q, tx), QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?;
                Ok(rx)
            });
            return match started {
                Ok(rx) => Answer::Stream { id: req.id, rx },
                Err(e) => Reply::err(req.id, e).into(),
            };
        }
        match self.dispatch(&req.command) {
            Ok(v) => Reply::ok(req.id, v).into(),
            Err(e) => Reply::err(req.id, e).into(),
        }
    }

    fn subscribe(&mut self, req: &Request, mut stream: std::os::unix::net::UnixStream) {
        match self.monitor_filter(&req.command) {
            Ok(filter) => {
                self.monitor.send_blocking(MonitorMsg::Subscribe { id: req.id, stream, filter });
            }
            Err(e) => {
                use std::io::Write;
                // A closing line and the end of the stream; a client gone already hears nothing.
                let _ = stream.set_write_timeout(Some(QUERY_TIMEOUT));
                if let Ok(mut line) = serde_json::to_vec(&Reply::err(req.id, e)) {
                    line.push(b'\n');
                    let _ = stream.write_all(&line);
                }
            }
        }
    }
}
