//! focld's threads put together: the RIB, one thread per peer, the listener and the control
//! server, started from a checked `Config` and stopped in the reverse order.
//!
//! The control thread's `Handler` lives here: it turns `ctl::Request`s into questions to the
//! peer threads and the RIB (over channels, with a timeout) and their answers into replies.

use crate::config::{self, ArchiveConfig, Config, PeerConfig};
use crate::control::{self, ControlServer, Handler};
use crate::ctl::{
    cmd, code, ActionResult, ArchiveStatus, CtlError, DaemonStatus, FamilyCounts, PeerDetail, PeerSummary,
    ReloadReport, Reply, Request,
};
use crate::listener::{self, ListenPeer, ListenerHandle};
use crate::mrt::writer::{self as mrt_writer, MrtHandle, MrtLink, MrtMsg};
use crate::peer::{self, LocalInfo, PeerHandle, PeerId, PeerLink, PeerMsg};
use crate::prefix::{Family, Prefix};
use crate::privs;
use crate::replicate::{self, ReplHandle, ReplLink, StatusSource};
use crate::rib::{self, RibHandle, RibMsg, RibOptions, RibQuery};
use crate::wire::notify::CeaseSubcode;
use crossbeam_channel::{Receiver, Sender};
use log::{error, info, warn};
use serde_json::Value;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long the control thread waits for a peer thread or the RIB to answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `focl reload` waits (stopping removed peers takes a moment each).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A running focld.
pub struct Daemon {
    cfg: Config,
    control: Option<ControlServer>,
    listener: Option<ListenerHandle>,
    peers: Vec<PeerHandle>,
    rib: Option<RibHandle>,
    mrt: Option<MrtHandle>,
    repl: Option<ReplHandle>,
    local: LocalInfo,
    next_id: PeerId,
    shared: Arc<Shared>,
    reload_rx: Receiver<ReloadRequest>,
}

/// A `focl reload` waiting for the main thread, which owns the `Daemon`, to reload.
pub type ReloadRequest = Sender<Result<ReloadReport, CtlError>>;

/// What the control thread reads and the main thread changes on reload.
struct Shared {
    peers: RwLock<Vec<PeerRef>>,
    repl: RwLock<Option<(ReplLink, StatusSource)>>,
    archive: RwLock<ArchiveConfig>,
    run: RwLock<RunInfo>,
    reload_tx: Sender<ReloadRequest>,
}

struct RunInfo {
    started: Instant,
    config_file: String,
    asn: u32,
    router_id: String,
    last_reload: Option<u64>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
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
    /// Start every thread. Errors (a port in use, a socket path taken, a user that cannot be
    /// switched to) are returned before any session is attempted.
    ///
    /// Order: the archive is prepared (salvage), the listening and control sockets are bound,
    /// then privileges are dropped to `privs` if given, and only then are the threads that talk
    /// BGP or write files started.
    pub fn start(cfg: &Config, privs: Option<&privs::Target>) -> io::Result<Daemon> {
        if cfg.archive.enabled {
            mrt_writer::prepare(&cfg.archive)?;
            if let Some(t) = privs {
                std::fs::create_dir_all(cfg.archive.dir.join(replicate::STATE_DIR))?;
                privs::chown_dirs(&cfg.archive.dir, t)?;
                for e in std::fs::read_dir(cfg.archive.dir.join(replicate::STATE_DIR))?.flatten() {
                    privs::chown(&e.path(), t)?;
                }
            }
        }
        let listener =
            if cfg.global.listen { Some(listener::start(&cfg.global.listen_addr, HashMap::new())?) } else { None };
        let (reload_tx, reload_rx) = crossbeam_channel::bounded(4);
        let shared = Arc::new(Shared {
            peers: RwLock::new(Vec::new()),
            repl: RwLock::new(None),
            archive: RwLock::new(cfg.archive.clone()),
            run: RwLock::new(RunInfo {
                started: Instant::now(),
                config_file: cfg.file.display().to_string(),
                asn: cfg.global.asn,
                router_id: cfg.global.router_id.to_string(),
                last_reload: None,
            }),
            reload_tx,
        });
        let (rib_tx, rib_rx) = crossbeam_channel::bounded(rib::RIB_CHANNEL_CAPACITY);
        let (mrt_tx, mrt_rx) = crossbeam_channel::bounded(mrt_writer::MRT_CHANNEL_CAPACITY);
        let mrt_link = cfg.archive.enabled.then(|| MrtLink::new(mrt_tx, cfg.archive.record_keepalives));
        let handler = CtlHandler { shared: shared.clone(), rib: rib_tx.clone(), mrt: mrt_link.clone() };
        let control = ControlServer::start(&cfg.global.control_socket, Box::new(handler))?;
        if let Some(t) = privs {
            privs::chown(&cfg.global.control_socket, t)?;
            privs::drop_to(t)?;
            info!("running as user {} (uid {}, gid {})", t.user, t.uid, t.gid);
        }

        let (mrt, repl) = match &mrt_link {
            Some(link) => {
                let repl = replicate::spawn(&cfg.archive)?;
                let mrt = mrt_writer::spawn_with(cfg.archive.clone(), repl.as_ref().map(|r| r.link()), link, mrt_rx)?;
                (Some(mrt), repl)
            }
            None => (None, None),
        };
        *write(&shared.repl) = repl.as_ref().map(|r| (r.link(), r.status_source()));
        let rib_opts = RibOptions {
            router_id: cfg.global.router_id,
            mrt: mrt_link.clone(),
            rib_interval_secs: cfg.archive.rib_interval_secs,
        };
        let rib = rib::spawn_with(cfg.prefixes.clone(), rib_opts, rib_tx, rib_rx)?;
        let local = LocalInfo { router_id: cfg.global.router_id, mrt: mrt_link };
        let mut d = Daemon {
            cfg: cfg.clone(),
            control: Some(control),
            listener,
            peers: Vec::new(),
            rib: Some(rib),
            mrt,
            repl,
            local,
            next_id: 1,
            shared,
            reload_rx,
        };
        for pc in &cfg.peers {
            d.add_peer(pc)?;
        }
        d.publish_peers();
        info!(
            "focld started: AS {}, router id {}, {} peers, {} prefixes",
            cfg.global.asn,
            cfg.global.router_id,
            cfg.peers.len(),
            cfg.prefixes.len()
        );
        Ok(d)
    }

    /// Start the thread of one configured peer and tell the RIB.
    fn add_peer(&mut self, pc: &PeerConfig) -> io::Result<()> {
        let Some(rib) = &self.rib else { return Ok(()) };
        let id = self.next_id;
        self.next_id += 1;
        let pc = Arc::new(pc.clone());
        let h = peer::spawn(id, pc.clone(), self.local.clone(), rib.tx.clone())?;
        let _ = rib.tx.send(RibMsg::AddPeer {
            peer: id,
            label: pc.label(),
            address: pc.address,
            name: pc.name.clone(),
            remote_as: pc.remote_as,
            link: h.link.clone(),
            max_prefixes: pc.max_prefixes.map(|m| (m, pc.max_prefixes_warning_only)),
        });
        self.peers.push(h);
        Ok(())
    }

    /// Hand the current peers to the listener and the control thread.
    fn publish_peers(&self) {
        let mut listen_peers = HashMap::new();
        let mut refs = Vec::new();
        for h in &self.peers {
            let pc = &h.cfg;
            listen_peers.insert(
                pc.address,
                ListenPeer { link: h.link.clone(), md5_key: pc.password.as_ref().map(|p| p.as_bytes().to_vec()) },
            );
            refs.push(PeerRef { id: h.id, address: pc.address, name: pc.name.clone(), link: h.link.clone() });
        }
        if let Some(l) = &self.listener {
            l.set_peers(listen_peers);
        }
        *write(&self.shared.peers) = refs;
    }

    /// The addresses actually bound (useful with port 0 in tests).
    pub fn bound(&self) -> Vec<std::net::SocketAddr> {
        self.listener.as_ref().map(|l| l.bound.clone()).unwrap_or_default()
    }

    /// The running configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// `focl reload` requests, for the main thread to serve with `reload`.
    pub fn reload_requests(&self) -> &Receiver<ReloadRequest> {
        &self.reload_rx
    }

    /// Read the configuration file again and apply it (SIGHUP, `focl reload`): new peers start,
    /// removed ones get Cease / Peer De-configured, peers whose settings changed are reset
    /// (Cease / Other Configuration Change), unchanged peers keep their sessions; prefixes are
    /// announced and withdrawn without resets; archive settings apply from the next file. An
    /// invalid file, or a change that needs a restart, changes nothing: the errors are returned.
    pub fn reload(&mut self) -> Result<ReloadReport, Vec<String>> {
        let new =
            config::load(&self.cfg.file).map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let (old_g, new_g) = (&self.cfg.global, &new.global);
        let mut restart = Vec::new();
        let mut needs_restart = |key: &str, changed: bool| {
            if changed {
                restart.push(format!("{}: global.{key} changed; restart focld to apply it", self.cfg.file.display()));
            }
        };
        needs_restart("asn", old_g.asn != new_g.asn);
        needs_restart("router_id", old_g.router_id != new_g.router_id);
        needs_restart("listen", old_g.listen != new_g.listen);
        needs_restart("listen_addr", old_g.listen_addr != new_g.listen_addr);
        needs_restart("control_socket", old_g.control_socket != new_g.control_socket);
        needs_restart("user", old_g.user != new_g.user);
        needs_restart("group", old_g.group != new_g.group);
        if self.cfg.archive.enabled != new.archive.enabled {
            restart.push(format!("{}: archive.enabled changed; restart focld to apply it", self.cfg.file.display()));
        }
        if !restart.is_empty() {
            return Err(restart);
        }
        for w in &new.warnings {
            warn!("{w}");
        }
        log::set_max_level(new.global.log_level);
        let mut report = ReloadReport::default();

        // Peers, by address.
        let mut kept = Vec::new();
        let mut reset_addrs = Vec::new();
        for h in std::mem::take(&mut self.peers) {
            match new.peers.iter().find(|p| p.address == h.cfg.address) {
                Some(p) if *p == *h.cfg => {
                    report.unchanged += 1;
                    kept.push(h);
                }
                Some(_) => {
                    report.reset.push(h.cfg.label());
                    reset_addrs.push(h.cfg.address);
                    info!("neighbor {}: settings changed, resetting the session", h.cfg.label());
                    self.remove_peer(h, CeaseSubcode::OtherConfigurationChange, "configuration changed");
                }
                None => {
                    report.removed.push(h.cfg.label());
                    info!("neighbor {}: removed from the configuration", h.cfg.label());
                    self.remove_peer(h, CeaseSubcode::PeerDeconfigured, "neighbor removed from the configuration");
                }
            }
        }
        self.peers = kept;
        let mut errors = Vec::new();
        for p in &new.peers {
            if self.peers.iter().any(|h| h.cfg.address == p.address) {
                continue;
            }
            if !reset_addrs.contains(&p.address) {
                report.added.push(p.label());
                info!("neighbor {}: added", p.label());
            }
            if let Err(e) = self.add_peer(p) {
                errors.push(format!("neighbor {}: cannot start: {e}", p.label()));
            }
        }
        self.publish_peers();

        // Prefixes.
        let old_nets: Vec<_> = self.cfg.prefixes.iter().map(|p| p.network).collect();
        let new_nets: Vec<_> = new.prefixes.iter().map(|p| p.network).collect();
        report.prefixes_added = new_nets.iter().filter(|n| !old_nets.contains(n)).map(ToString::to_string).collect();
        report.prefixes_removed = old_nets.iter().filter(|n| !new_nets.contains(n)).map(ToString::to_string).collect();
        if self.cfg.prefixes != new.prefixes {
            if let Some(rib) = &self.rib {
                let _ = rib.tx.send(RibMsg::SetPrefixes(new.prefixes.clone()));
            }
        }

        // Archive and replication: from the next file.
        if new.archive != self.cfg.archive && new.archive.enabled {
            report.archive_changed = true;
            if new.archive.destinations != self.cfg.archive.destinations
                || new.archive.retain_local_days != self.cfg.archive.retain_local_days
                || new.archive.dir != self.cfg.archive.dir
            {
                if let Some(r) = self.repl.take() {
                    r.stop();
                }
                match replicate::spawn(&new.archive) {
                    Ok(r) => self.repl = r,
                    Err(e) => errors.push(format!("replication: {e}")),
                }
                *write(&self.shared.repl) = self.repl.as_ref().map(|r| (r.link(), r.status_source()));
            }
            if let Some(m) = &self.mrt {
                m.link.send_blocking(MrtMsg::Reconfigure(
                    Box::new(new.archive.clone()),
                    self.repl.as_ref().map(|r| r.link()),
                ));
            }
            *write(&self.shared.archive) = new.archive.clone();
        }
        self.cfg = new;
        write(&self.shared.run).last_reload = Some(crate::mrt::writer::unix_secs(std::time::SystemTime::now()));
        info!(
            "configuration reloaded: {} added, {} removed, {} reset, {} unchanged; prefixes +{} -{}{}",
            report.added.len(),
            report.removed.len(),
            report.reset.len(),
            report.unchanged,
            report.prefixes_added.len(),
            report.prefixes_removed.len(),
            if report.archive_changed { "; archive settings apply from the next file" } else { "" }
        );
        for e in &errors {
            error!("reload: {e}");
        }
        Ok(report)
    }

    fn remove_peer(&mut self, h: PeerHandle, sub: CeaseSubcode, communication: &str) {
        let id = h.id;
        h.stop(sub, Some(communication.to_string()));
        if let Some(rib) = &self.rib {
            let _ = rib.tx.send(RibMsg::RemovePeer { peer: id });
        }
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
    shared: Arc<Shared>,
    rib: Sender<RibMsg>,
    mrt: Option<MrtLink>,
}

fn internal(what: &str) -> CtlError {
    CtlError::new(code::INTERNAL, format!("{what} did not answer in time"))
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, CtlError> {
    serde_json::to_value(v).map_err(|e| CtlError::new(code::INTERNAL, format!("cannot encode reply: {e}")))
}

impl CtlHandler {
    fn find_peer(&self, args: &Value) -> Result<PeerRef, CtlError> {
        let want = args
            .get("peer")
            .and_then(Value::as_str)
            .ok_or_else(|| CtlError::new(code::BAD_ARGUMENT, "missing argument 'peer' (an address or a name)"))?;
        let by_addr = want.parse::<IpAddr>().ok();
        read(&self.shared.peers)
            .iter()
            .find(|p| Some(p.address) == by_addr || p.name.as_deref() == Some(want))
            .cloned()
            .ok_or_else(|| {
                CtlError::new(code::NO_SUCH_PEER, format!("no neighbor '{want}' is configured (see: focl peer list)"))
            })
    }

    fn peer_summaries(&self) -> Result<Vec<PeerSummary>, CtlError> {
        let peers = read(&self.shared.peers).clone();
        let mut out = Vec::new();
        for p in &peers {
            let mut s: PeerSummary = self.ask_peer(p, PeerMsg::Summary)?;
            s.prefixes_received = self.rib_counts(p.id)?.0;
            out.push(s);
        }
        Ok(out)
    }

    fn archive_status(&self) -> Result<ArchiveStatus, CtlError> {
        match &self.mrt {
            Some(m) => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                m.send_blocking(MrtMsg::Status(tx));
                let mut status: ArchiveStatus =
                    rx.recv_timeout(QUERY_TIMEOUT).map_err(|_| internal("the MRT writer"))?;
                status.destinations = read(&self.shared.repl).as_ref().map(|(_, s)| s.get()).unwrap_or_default();
                Ok(status)
            }
            None => Ok(ArchiveStatus {
                enabled: false,
                dir: read(&self.shared.archive).dir.display().to_string(),
                ..Default::default()
            }),
        }
    }

    fn status(&self) -> Result<DaemonStatus, CtlError> {
        let peers = self.peer_summaries()?;
        let mut by_state = std::collections::BTreeMap::new();
        for p in &peers {
            *by_state.entry(p.state.clone()).or_insert(0) += 1;
        }
        let summary: crate::ctl::RibSummary = serde_json::from_value(self.ask_rib(RibQuery::Summary)?)
            .map_err(|e| CtlError::new(code::INTERNAL, e.to_string()))?;
        let run = read(&self.shared.run);
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
            archive: self.archive_status()?,
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
            cmd::PEER_LIST => to_value(self.peer_summaries()?),
            cmd::PEER_SHOW => {
                let p = self.find_peer(&req.args)?;
                let mut d: PeerDetail = self.ask_peer(&p, PeerMsg::Status)?;
                let (rcvd, sent) = self.rib_counts(p.id)?;
                d.prefixes_received = rcvd;
                d.prefixes_sent = sent;
                to_value(d)
            }
            cmd::PEER_RESET => {
                let p = self.find_peer(&req.args)?;
                let r: Result<ActionResult, CtlError> = self.ask_peer(&p, PeerMsg::Reset)?;
                to_value(r?)
            }
            cmd::PEER_REFRESH => {
                let p = self.find_peer(&req.args)?;
                let family = match req.args.get("family").and_then(Value::as_str) {
                    None => None,
                    Some(s) => Some(parse_family(s)?),
                };
                let r: Result<ActionResult, CtlError> = self.ask_peer(&p, |tx| PeerMsg::Refresh(family, tx))?;
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
            cmd::ARCHIVE_STATUS => to_value(self.archive_status()?),
            cmd::ARCHIVE_RETRY => {
                self.mrt.as_ref().ok_or_else(mrt_writer::archive_off)?;
                let repl = read(&self.shared.repl);
                let (link, _) = repl.as_ref().ok_or_else(|| {
                    CtlError::new(code::BAD_ARGUMENT, "no [[archive.destinations]] are configured; nothing to retry")
                })?;
                link.retry();
                Ok(serde_json::json!({ "destinations": read(&self.shared.archive).destinations.len() }))
            }
            cmd::PEER_DISABLE => {
                let p = self.find_peer(&req.args)?;
                let r: Result<ActionResult, CtlError> = self.ask_peer(&p, PeerMsg::Disable)?;
                to_value(r?)
            }
            cmd::PEER_ENABLE => {
                let p = self.find_peer(&req.args)?;
                let r: Result<ActionResult, CtlError> = self.ask_peer(&p, PeerMsg::Enable)?;
                to_value(r?)
            }
            cmd::STATUS => to_value(self.status()?),
            cmd::RELOAD => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.shared.reload_tx.send_timeout(tx, QUERY_TIMEOUT).map_err(|_| internal("the main thread"))?;
                let r = rx.recv_timeout(RELOAD_TIMEOUT).map_err(|_| internal("the reload"))?;
                to_value(r?)
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
