//! focld's threads put together: the RIB, one thread per peer, the listener and the control
//! server, started from a checked `Config` and stopped in the reverse order.
//!
//! The control thread's `Handler` lives here: it turns `ctl::Request`s into questions to the
//! peer threads and the RIB (over channels, with a timeout) and their answers into replies.

use crate::config::Config;
use crate::control::{self, ControlServer, Handler};
use crate::ctl::{
    cmd, code, ActionResult, ArchiveStatus, CtlError, FamilyCounts, PeerDetail, PeerSummary, Reply, Request,
};
use crate::listener::{self, ListenPeer, ListenerHandle};
use crate::mrt::writer::{self as mrt_writer, MrtHandle, MrtLink, MrtMsg};
use crate::peer::{self, LocalInfo, PeerHandle, PeerId, PeerLink, PeerMsg};
use crate::prefix::{Family, Prefix};
use crate::replicate::{self, ReplHandle, ReplLink, StatusSource};
use crate::rib::{self, RibHandle, RibMsg, RibOptions, RibQuery};
use crate::wire::notify::CeaseSubcode;
use crossbeam_channel::Sender;
use log::info;
use serde_json::Value;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long the control thread waits for a peer thread or the RIB to answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A running focld.
pub struct Daemon {
    control: Option<ControlServer>,
    listener: Option<ListenerHandle>,
    peers: Vec<PeerHandle>,
    rib: Option<RibHandle>,
    mrt: Option<MrtHandle>,
    repl: Option<ReplHandle>,
}

/// What the control handler knows of a peer.
#[derive(Clone)]
struct PeerRef {
    id: PeerId,
    address: IpAddr,
    name: Option<String>,
    link: PeerLink,
}

impl Daemon {
    /// Start every thread. Errors (a port in use, a socket path taken) are returned before any
    /// session is attempted where possible.
    pub fn start(cfg: &Config) -> io::Result<Daemon> {
        // Salvage first, so replication finds the salvaged files when it lists the archive.
        let (mrt, repl) = if cfg.archive.enabled {
            mrt_writer::prepare(&cfg.archive)?;
            let repl = replicate::spawn(&cfg.archive)?;
            (Some(mrt_writer::spawn(cfg.archive.clone(), repl.as_ref().map(|r| r.link()))?), repl)
        } else {
            (None, None)
        };
        let repl_status = repl.as_ref().map(|r| r.status_source());
        let mrt_link = mrt.as_ref().map(|m| m.link.clone());
        let rib_opts = RibOptions {
            router_id: cfg.global.router_id,
            mrt: mrt_link.clone(),
            rib_interval_secs: cfg.archive.rib_interval_secs,
        };
        let rib = rib::spawn(cfg.prefixes.clone(), rib_opts)?;
        let local = LocalInfo { router_id: cfg.global.router_id, mrt: mrt_link.clone() };
        let mut peers = Vec::new();
        let mut refs = Vec::new();
        let mut listen_peers = HashMap::new();
        for (i, pc) in cfg.peers.iter().enumerate() {
            let id = i as PeerId + 1;
            let pc = Arc::new(pc.clone());
            let h = peer::spawn(id, pc.clone(), local.clone(), rib.tx.clone())?;
            let _ = rib.tx.send(RibMsg::AddPeer {
                peer: id,
                label: pc.label(),
                address: pc.address,
                name: pc.name.clone(),
                remote_as: pc.remote_as,
                link: h.link.clone(),
            });
            listen_peers.insert(
                pc.address,
                ListenPeer { link: h.link.clone(), md5_key: pc.password.as_ref().map(|p| p.as_bytes().to_vec()) },
            );
            refs.push(PeerRef { id, address: pc.address, name: pc.name.clone(), link: h.link.clone() });
            peers.push(h);
        }
        let listener =
            if cfg.global.listen { Some(listener::start(&cfg.global.listen_addr, listen_peers)?) } else { None };
        let handler = CtlHandler {
            peers: refs,
            rib: rib.tx.clone(),
            mrt: mrt_link,
            repl: repl.as_ref().map(|r| r.link()),
            repl_status,
            archive: cfg.archive.clone(),
        };
        let control = ControlServer::start(&cfg.global.control_socket, Box::new(handler))?;
        info!(
            "focld started: AS {}, router id {}, {} peers, {} prefixes",
            cfg.global.asn,
            cfg.global.router_id,
            cfg.peers.len(),
            cfg.prefixes.len()
        );
        Ok(Daemon { control: Some(control), listener, peers, rib: Some(rib), mrt, repl })
    }

    /// The addresses actually bound (useful with port 0 in tests).
    pub fn bound(&self) -> Vec<std::net::SocketAddr> {
        self.listener.as_ref().map(|l| l.bound.clone()).unwrap_or_default()
    }

    /// Graceful stop: Cease / Administrative Shutdown to every peer (RFC 9003 text), then the
    /// listener, RIB and control socket.
    pub fn stop(mut self, communication: &str) {
        if let Some(c) = self.control.take() {
            c.stop();
        }
        if let Some(l) = self.listener.take() {
            l.stop();
        }
        for p in self.peers.drain(..) {
            p.stop(CeaseSubcode::AdministrativeShutdown, Some(communication.to_string()));
        }
        if let Some(r) = self.rib.take() {
            r.stop();
        }
        // Last: the writer finishes the current files after the final state changes.
        if let Some(m) = self.mrt.take() {
            m.stop();
        }
        // What is not delivered yet is found in the archive again at the next start.
        if let Some(r) = self.repl.take() {
            r.stop();
        }
        info!("focld stopped");
    }
}

struct CtlHandler {
    peers: Vec<PeerRef>,
    rib: Sender<RibMsg>,
    mrt: Option<MrtLink>,
    repl: Option<ReplLink>,
    repl_status: Option<StatusSource>,
    archive: crate::config::ArchiveConfig,
}

fn internal(what: &str) -> CtlError {
    CtlError::new(code::INTERNAL, format!("{what} did not answer in time"))
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, CtlError> {
    serde_json::to_value(v).map_err(|e| CtlError::new(code::INTERNAL, format!("cannot encode reply: {e}")))
}

impl CtlHandler {
    fn find_peer(&self, args: &Value) -> Result<&PeerRef, CtlError> {
        let want = args
            .get("peer")
            .and_then(Value::as_str)
            .ok_or_else(|| CtlError::new(code::BAD_ARGUMENT, "missing argument 'peer' (an address or a name)"))?;
        let by_addr = want.parse::<IpAddr>().ok();
        self.peers.iter().find(|p| Some(p.address) == by_addr || p.name.as_deref() == Some(want)).ok_or_else(|| {
            CtlError::new(code::NO_SUCH_PEER, format!("no neighbor '{want}' is configured (see: focl peer list)"))
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

    fn rib_counts(&self, id: PeerId) -> Result<(FamilyCounts, FamilyCounts), CtlError> {
        let v = self.ask_rib(RibQuery::Counts { peer: id })?;
        serde_json::from_value(v).map_err(|e| CtlError::new(code::INTERNAL, e.to_string()))
    }

    fn dispatch(&self, req: &Request) -> Result<Value, CtlError> {
        match req.cmd.as_str() {
            cmd::PEER_LIST => {
                let mut out = Vec::new();
                for p in &self.peers {
                    let mut s: PeerSummary = self.ask_peer(p, PeerMsg::Summary)?;
                    s.prefixes_received = self.rib_counts(p.id)?.0;
                    out.push(s);
                }
                to_value(out)
            }
            cmd::PEER_SHOW => {
                let p = self.find_peer(&req.args)?;
                let mut d: PeerDetail = self.ask_peer(p, PeerMsg::Status)?;
                let (rcvd, sent) = self.rib_counts(p.id)?;
                d.prefixes_received = rcvd;
                d.prefixes_sent = sent;
                to_value(d)
            }
            cmd::PEER_RESET => {
                let p = self.find_peer(&req.args)?;
                let r: Result<ActionResult, CtlError> = self.ask_peer(p, PeerMsg::Reset)?;
                to_value(r?)
            }
            cmd::PEER_REFRESH => {
                let p = self.find_peer(&req.args)?;
                let family = match req.args.get("family").and_then(Value::as_str) {
                    None => None,
                    Some(s) => Some(parse_family(s)?),
                };
                let r: Result<ActionResult, CtlError> = self.ask_peer(p, |tx| PeerMsg::Refresh(family, tx))?;
                to_value(r?)
            }
            cmd::RIB_SUMMARY => self.ask_rib(RibQuery::Summary),
            cmd::RIB_IN => {
                let p = self.find_peer(&req.args)?;
                let prefix = match req.args.get("prefix").and_then(Value::as_str) {
                    None => None,
                    Some(s) => Some(parse_prefix(s)?),
                };
                self.ask_rib(RibQuery::In { peer: p.id, prefix })
            }
            cmd::RIB_OUT => {
                let p = self.find_peer(&req.args)?;
                self.ask_rib(RibQuery::Out { peer: p.id })
            }
            cmd::ARCHIVE_STATUS => match &self.mrt {
                Some(m) => {
                    let (tx, rx) = crossbeam_channel::bounded(1);
                    m.send_blocking(MrtMsg::Status(tx));
                    let mut status: ArchiveStatus =
                        rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the MRT writer"))?;
                    status.destinations = self.repl_status.as_ref().map(|s| s.get()).unwrap_or_default();
                    to_value(status)
                }
                None => to_value(ArchiveStatus {
                    enabled: false,
                    dir: self.archive.dir.display().to_string(),
                    ..Default::default()
                }),
            },
            cmd::ARCHIVE_RETRY => {
                self.mrt.as_ref().ok_or_else(mrt_writer::archive_off)?;
                let r = self.repl.as_ref().ok_or_else(|| {
                    CtlError::new(code::BAD_ARGUMENT, "no [[archive.destinations]] are configured; nothing to retry")
                })?;
                r.retry();
                Ok(serde_json::json!({ "destinations": self.archive.destinations.len() }))
            }
            cmd::ARCHIVE_ROTATE => {
                let m = self.mrt.as_ref().ok_or_else(mrt_writer::archive_off)?;
                let (tx, rx) = crossbeam_channel::bounded(1);
                m.send_blocking(MrtMsg::Rotate(tx));
                rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the MRT writer"))?
            }
            cmd::ARCHIVE_SNAPSHOT => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.rib.send_timeout(RibMsg::Snapshot(tx), QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?;
                rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the RIB"))?
            }
            _ => Err(control::unknown_command(req)
                .error
                .unwrap_or_else(|| CtlError::new(code::UNKNOWN_COMMAND, "unknown command"))),
        }
    }
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

impl Handler for CtlHandler {
    fn handle(&mut self, req: &Request) -> Reply {
        match self.dispatch(req) {
            Ok(v) => Reply::ok(req.id, v),
            Err(e) => Reply::err(req.id, e),
        }
    }
}
