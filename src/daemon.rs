//! focld's threads put together: the RIB, one thread per peer, the listener and the control
//! server, started from a checked `Config` and stopped in the reverse order.
//!
//! Start, stop and reload only: what the control thread answers is in `control::dispatch`,
//! which reads the `DaemonView` kept here.

use crate::archive::{self, ReplHandle};
use crate::bmp::{self, BmpHandle};
use crate::config::{self, Config, PeerConfig};
use crate::control::dispatch::write;
use crate::control::proto::ReloadReport;
use crate::control::{ControlServer, DaemonView, Dispatcher, PeerRef, RunInfo};
use crate::listener::{self, ListenerHandle};
use crate::monitor::{self, MonitorHandle};
use crate::mrt::writer::{self as mrt_writer, MrtHandle};
use crate::msg::{
    ListenPeer, MrtLink, MrtMsg, PeerId, ReloadRequest, RibMsg, RpkiMsg, MRT_CHANNEL_CAPACITY, RIB_CHANNEL_CAPACITY,
};
use crate::privs;
use crate::rib::{self, RibHandle, RibOptions};
use crate::rpki::{self, RpkiHandle};
use crate::session::{self, LocalInfo, PeerHandle};
use crate::source::{self, SourceHandle};
use crate::wire::notify::CeaseSubcode;
use crossbeam_channel::Receiver;
use log::{error, info, warn};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// A running focld.
pub struct Daemon {
    cfg: Config,
    control: Option<ControlServer>,
    listener: Option<ListenerHandle>,
    peers: Vec<PeerHandle>,
    rib: Option<RibHandle>,
    mrt: Option<MrtHandle>,
    repl: Option<ReplHandle>,
    monitor: Option<MonitorHandle>,
    rpki: Option<RpkiHandle>,
    bmp: Option<BmpHandle>,
    source: Option<SourceHandle>,
    local: LocalInfo,
    next_id: PeerId,
    view: Arc<DaemonView>,
    reload_rx: Receiver<ReloadRequest>,
}

impl Daemon {
    /// Start every thread. Errors (a port in use, a socket path taken, a user that cannot be
    /// switched to) are returned before any session is attempted.
    ///
    /// Order: the archive is prepared (salvage), the listening and control sockets are bound,
    /// then privileges are dropped to `privs` if given, and only then are the threads that talk
    /// BGP or write files started.
    pub fn start(cfg: &Config, privs: Option<&privs::Target>) -> io::Result<Daemon> {
        Daemon::start_as(cfg, privs, false)
    }

    /// `start`; `restarted` after a planned restart (`focld -R`, RFC 4724 §4.1): the first
    /// OPEN to each peer with `graceful_restart = "on"` says so.
    pub fn start_as(cfg: &Config, privs: Option<&privs::Target>, restarted: bool) -> io::Result<Daemon> {
        if cfg.archive.enabled {
            mrt_writer::prepare(&cfg.archive)?;
            if let Some(t) = privs {
                std::fs::create_dir_all(cfg.archive.dir.join(archive::STATE_DIR))?;
                privs::chown_dirs(&cfg.archive.dir, t)?;
                for e in std::fs::read_dir(cfg.archive.dir.join(archive::STATE_DIR))?.flatten() {
                    privs::chown(&e.path(), t)?;
                }
            }
        }
        let listener =
            if cfg.global.listen { Some(listener::start(&cfg.global.listen_addr, HashMap::new())?) } else { None };
        let (reload_tx, reload_rx) = crossbeam_channel::bounded(4);
        let view = Arc::new(DaemonView {
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
        let (rib_tx, rib_rx) = crossbeam_channel::bounded(RIB_CHANNEL_CAPACITY);
        let (mrt_tx, mrt_rx) = crossbeam_channel::bounded(MRT_CHANNEL_CAPACITY);
        let mrt_link = cfg.archive.enabled.then(|| MrtLink::new(mrt_tx, cfg.archive.record_keepalives));
        let monitor = monitor::spawn()?;
        let (bmp_link, bmp_rx) = bmp::channel();
        let rpki = rpki::spawn(&cfg.rpki, rib_tx.clone())?;
        let handler = Dispatcher {
            view: view.clone(),
            rib: rib_tx.clone(),
            mrt: mrt_link.clone(),
            monitor: monitor.link.clone(),
            rpki: rpki.link.clone(),
            bmp: bmp_link.clone(),
        };
        let control = ControlServer::start(&cfg.global.control_socket, Box::new(handler))?;
        if let Some(t) = privs {
            privs::chown(&cfg.global.control_socket, t)?;
            privs::drop_to(t)?;
            info!("running as user {} (uid {}, gid {})", t.user, t.uid, t.gid);
        }

        let (mrt, repl) = match &mrt_link {
            Some(link) => {
                let repl = archive::spawn(&cfg.archive)?;
                let mrt = mrt_writer::spawn_with(cfg.archive.clone(), repl.as_ref().map(|r| r.link()), link, mrt_rx)?;
                (Some(mrt), repl)
            }
            None => (None, None),
        };
        *write(&view.repl) = repl.as_ref().map(|r| (r.link(), r.status_source()));
        let (source_tx, source_rx) = source::channel();
        let source = source::spawn_with(source_tx, source_rx, rib_tx.clone())?;
        let rib_opts = RibOptions {
            router_id: cfg.global.router_id,
            mrt: mrt_link.clone(),
            rib_interval_secs: cfg.archive.rib_interval_secs,
            sources: Some(source.link.clone()),
        };
        let rib = rib::spawn_with(cfg.prefixes.clone(), rib_opts, rib_tx, rib_rx)?;
        // Before any peer: the first routes already meet their import policy.
        let _ = rib.tx.send(RibMsg::SetPolicy(cfg.policies.clone(), None));
        let identity = bmp::Identity::of_this_host(cfg.global.asn, cfg.global.router_id);
        let bmp = bmp::spawn_with(bmp_link, bmp_rx, &cfg.bmp.stations, identity, rib.tx.clone())?;
        let local = LocalInfo {
            router_id: cfg.global.router_id,
            mrt: mrt_link,
            monitor: Some(monitor.link.clone()),
            restarted,
            bmp: Some(bmp.link.clone()),
        };
        let mut d = Daemon {
            cfg: cfg.clone(),
            control: Some(control),
            listener,
            peers: Vec::new(),
            rib: Some(rib),
            mrt,
            repl,
            monitor: Some(monitor),
            rpki: Some(rpki),
            bmp: Some(bmp),
            source: Some(source),
            local,
            next_id: 1,
            view,
            reload_rx,
        };
        for pc in &cfg.peers {
            d.add_peer(pc)?;
        }
        // Peers added later by a reload did not live through the restart.
        d.local.restarted = false;
        d.publish_peers();
        if let Some(rib) = &d.rib {
            let _ = rib.tx.send(RibMsg::SetSources(cfg.sources.clone()));
        }
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
        // `spawn` tells the RIB of the peer before its thread starts.
        let h = session::spawn(id, pc.clone(), self.local.clone(), rib.tx.clone())?;
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
                ListenPeer {
                    link: h.link.clone(),
                    md5_key: pc.password.as_ref().map(|p| p.as_bytes().to_vec()),
                    min_ttl: session::sock::ttl::TtlPolicy::new(pc.multihop, pc.ttl_security).min_recv,
                },
            );
            refs.push(PeerRef { id: h.id, address: pc.address, name: pc.name.clone(), link: h.link.clone() });
        }
        if let Some(l) = &self.listener {
            l.set_peers(listen_peers);
        }
        *write(&self.view.peers) = refs;
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
        let new = config::load_in(&self.cfg.file, &self.cfg.base_dir)
            .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
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
        if old_g.log_level != new_g.log_level {
            report.global_changed.push(format!(
                "log_level: {} -> {}",
                old_g.log_level.as_str().to_lowercase(),
                new_g.log_level.as_str().to_lowercase()
            ));
        }
        if old_g.log_file != new_g.log_file {
            let show = |p: &Option<std::path::PathBuf>| p.as_ref().map_or("stderr".into(), |p| p.display().to_string());
            report.global_changed.push(format!("log_file: {} -> {}", show(&old_g.log_file), show(&new_g.log_file)));
        }

        // Peers, by address.
        let mut kept = Vec::new();
        let mut reset_addrs = Vec::new();
        for h in std::mem::take(&mut self.peers) {
            match new.peers.iter().find(|p| p.address == h.cfg.address) {
                // A changed import or export list applies without a reset (issue 17).
                Some(p) if p.same_session(&h.cfg) => {
                    report.unchanged += 1;
                    let mut h = h;
                    h.cfg = Arc::new(p.clone());
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

        // Policy: the RIB evaluates again the routes of peers whose chain changed, from the
        // pre-policy Adj-RIB-In, and says by how much (issue 17).
        if *self.cfg.policies != *new.policies {
            if let Some(rib) = &self.rib {
                let (tx, rx) = crossbeam_channel::bounded(1);
                if rib.tx.send(RibMsg::SetPolicy(new.policies.clone(), Some(tx))).is_ok() {
                    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                        Ok(Ok(changes)) => report.policy_changed = changes,
                        _ => errors.push("policy: the RIB did not report its evaluation within 60 s".into()),
                    }
                }
            }
        }

        // RPKI: unchanged caches keep their sessions; files are read again.
        // Sources: the RIB withdraws removed and changed ones and has new and changed ones read.
        let names = |c: &Config| c.sources.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        let (old_names, new_names) = (names(&self.cfg), names(&new));
        report.sources_added = new_names.iter().filter(|n| !old_names.contains(n)).cloned().collect();
        report.sources_removed = old_names.iter().filter(|n| !new_names.contains(n)).cloned().collect();
        report.sources_changed = new
            .sources
            .iter()
            .filter(|s| self.cfg.sources.iter().any(|o| o.name == s.name && o != *s))
            .map(|s| s.name.clone())
            .collect();
        if self.cfg.sources != new.sources {
            if let Some(rib) = &self.rib {
                let _ = rib.tx.send(RibMsg::SetSources(new.sources.clone()));
            }
        }

        if let Some(r) = &self.rpki {
            r.link.send(RpkiMsg::Reconfigure(Box::new(new.rpki.clone())));
        }
        if new.bmp != self.cfg.bmp {
            if let Some(b) = &self.bmp {
                b.link.send_blocking(crate::msg::BmpMsg::Reconfigure(new.bmp.stations.clone()));
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
                match archive::spawn(&new.archive) {
                    Ok(r) => self.repl = r,
                    Err(e) => errors.push(format!("replication: {e}")),
                }
                *write(&self.view.repl) = self.repl.as_ref().map(|r| (r.link(), r.status_source()));
            }
            if let Some(m) = &self.mrt {
                m.link.send_blocking(MrtMsg::Reconfigure(
                    Box::new(new.archive.clone()),
                    self.repl.as_ref().map(|r| r.link()),
                ));
            }
            *write(&self.view.archive) = new.archive.clone();
        }
        self.cfg = new;
        write(&self.view.run).last_reload = Some(crate::utc::unix_secs(std::time::SystemTime::now()));
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

    /// Stop for a planned restart (SIGUSR2): peers with `graceful_restart = "on"` lose their
    /// session without a NOTIFICATION, so they keep focld's routes until `focld -R` is back
    /// (RFC 4724 §4.1); the others get the Cease of `stop`; then as `stop`.
    pub fn stop_for_restart(mut self) {
        if let Some(l) = self.listener.take() {
            l.stop();
        }
        for p in self.peers.drain(..) {
            p.stop_for_restart();
        }
        self.stop("focld restarting");
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
        // Stations have been sent the Peer Downs; they get their Termination.
        if let Some(b) = self.bmp.take() {
            b.stop();
        }
        // Subscribers have seen the sessions end; they get their closing line.
        if let Some(r) = self.rpki.take() {
            r.stop();
        }
        if let Some(m) = self.monitor.take() {
            m.stop();
        }
        if let Some(r) = self.rib.take() {
            r.stop();
        }
        if let Some(s) = self.source.take() {
            s.stop();
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
