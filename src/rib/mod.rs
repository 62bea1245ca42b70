//! The RIB THREAD: every peer's Adj-RIB-In, the Adj-RIB-Out of static prefixes, snapshots and
//! queries.
//!
//! Fed by the peer threads (`RibMsg::SessionUp/Down`, parsed UPDATEs, route-refresh requests)
//! and the control thread (`RibMsg::Query`, `Snapshot`, reload's `AddPeer`/`RemovePeer`/
//! `SetPrefixes`). Emits UPDATEs to peer threads (`PeerMsg::Send`) and TABLE_DUMP_V2 chunks to
//! the MRT writer (`MrtMsg::Snapshot*`). It owns all route data; nothing is shared behind a lock.
//!
//! Memory: a route is a `Prefix` key plus a `Route` (an `Arc` of an interned attribute set
//! and the time it was received).
//!
//! Files: `attrs.rs` (interned attribute sets), `adj_in.rs` (Adj-RIB-In), `adj_out.rs`
//! (Adj-RIB-Out), `snapshot.rs` (TABLE_DUMP_V2 in chunks), `query.rs` (answers to focl).

mod adj_in;
mod adj_out;
mod attrs;
mod query;
mod snapshot;

pub use adj_in::{AdjRibIn, Route};
pub use attrs::AttrSet;
pub use query::MAX_ROUTES_SHOWN;

use crate::config::PrefixConfig;
use crate::control::proto::{self as ctl, CtlError, FamilyCounts};
use crate::mrt::file as mrt_file;
use crate::msg::{MrtLink, PeerId, PeerLink, PeerMsg, RibMsg, SessionInfo, PEER_SEND_BOUND, RIB_CHANNEL_CAPACITY};
use crate::prefix::{Family, Prefix};
use crate::wire::update::{self, OutRoute, ParsedUpdate};
use adj_out::{adj_rib_out, OutEntry};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, error, info, warn};
use snapshot::SnapshotCursor;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct PeerState {
    label: String,
    address: IpAddr,
    remote_as: u32,
    name: Option<String>,
    link: PeerLink,
    adj_in: AdjRibIn,
    /// Current session, while Established.
    session: Option<SessionInfo>,
    adj_out: Vec<OutEntry>,
    adj_out_since: Instant,
    max_prefixes: Option<(u32, bool)>,
    /// The limit was passed on this session (logged or reported once).
    over_limit: bool,
}

/// Owns the RIB thread.
pub struct RibHandle {
    pub tx: Sender<RibMsg>,
    join: Option<JoinHandle<()>>,
}

impl RibHandle {
    pub fn stop(mut self) {
        let _ = self.tx.send(RibMsg::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for RibHandle {
    fn drop(&mut self) {
        if let Some(j) = self.join.take() {
            let _ = self.tx.send(RibMsg::Stop);
            let _ = j.join();
        }
    }
}

/// What the RIB needs besides the prefixes to announce.
#[derive(Clone, Debug)]
pub struct RibOptions {
    pub router_id: Ipv4Addr,
    /// The MRT writer, when archiving is on; RIB snapshots go there.
    pub mrt: Option<MrtLink>,
    /// Snapshot period aligned to midnight UTC; 0 for none.
    pub rib_interval_secs: u64,
}

pub fn spawn(prefixes: Vec<PrefixConfig>, opts: RibOptions) -> std::io::Result<RibHandle> {
    let (tx, rx) = crossbeam_channel::bounded(RIB_CHANNEL_CAPACITY);
    spawn_with(prefixes, opts, tx, rx)
}

/// `spawn` on a channel made beforehand (so other threads can hold the sender first).
pub fn spawn_with(
    prefixes: Vec<PrefixConfig>,
    opts: RibOptions,
    tx: Sender<RibMsg>,
    rx: Receiver<RibMsg>,
) -> std::io::Result<RibHandle> {
    let join = std::thread::Builder::new().name("rib".into()).spawn(move || {
        let mut rib = Rib::new(prefixes, opts);
        rib.run(rx);
    })?;
    Ok(RibHandle { tx, join: Some(join) })
}

pub struct Rib {
    peers: HashMap<PeerId, PeerState>,
    prefixes: Vec<PrefixConfig>,
    intern: HashSet<Arc<AttrSet>>,
    interned_since_sweep: usize,
    opts: RibOptions,
    next_snapshot: Option<SystemTime>,
    snapshot: Option<SnapshotCursor>,
}

pub(crate) fn unix_now() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

impl Rib {
    pub fn new(prefixes: Vec<PrefixConfig>, opts: RibOptions) -> Rib {
        let next_snapshot = (opts.mrt.is_some() && opts.rib_interval_secs > 0)
            .then(|| mrt_file::next_boundary(SystemTime::now(), opts.rib_interval_secs));
        Rib {
            peers: HashMap::new(),
            prefixes,
            intern: HashSet::new(),
            interned_since_sweep: 0,
            opts,
            next_snapshot,
            snapshot: None,
        }
    }

    fn run(&mut self, rx: Receiver<RibMsg>) {
        loop {
            // While a snapshot is being written, wake up often to write the next chunk.
            let timeout = if self.snapshot.is_some() {
                Duration::from_millis(1)
            } else {
                self.next_snapshot
                    .map(|t| t.duration_since(SystemTime::now()).unwrap_or_default())
                    .unwrap_or(Duration::from_secs(3600))
            };
            match rx.recv_timeout(timeout) {
                Ok(RibMsg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(msg) => {
                    self.handle(msg);
                    // Serve a burst before the next snapshot chunk.
                    for _ in 0..256 {
                        match rx.try_recv() {
                            Ok(RibMsg::Stop) => return self.stop_snapshot(),
                            Ok(m) => self.handle(m),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.next_snapshot.is_some_and(|t| SystemTime::now() >= t) && self.snapshot.is_none() {
                let start = self.next_snapshot.unwrap_or_else(SystemTime::now);
                self.next_snapshot = Some(mrt_file::next_boundary(SystemTime::now(), self.opts.rib_interval_secs));
                self.begin_snapshot(start);
            }
            self.snapshot_step();
        }
        self.stop_snapshot();
        debug!("rib: stopped");
    }

    pub fn handle(&mut self, msg: RibMsg) {
        match msg {
            RibMsg::AddPeer { peer, label, address, name, remote_as, link, max_prefixes } => {
                let state = PeerState {
                    label,
                    address,
                    remote_as,
                    name,
                    link,
                    adj_in: AdjRibIn::default(),
                    session: None,
                    adj_out: Vec::new(),
                    adj_out_since: Instant::now(),
                    max_prefixes,
                    over_limit: false,
                };
                self.peers.insert(peer, state);
            }
            RibMsg::SessionUp { peer, info } => self.session_up(peer, info),
            RibMsg::SessionDown { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    let n = p.adj_in.routes.len();
                    p.adj_in = AdjRibIn::default();
                    p.session = None;
                    p.adj_out.clear();
                    p.over_limit = false;
                    info!("neighbor {}: session down, {n} routes removed", p.label);
                }
                self.sweep_intern();
            }
            // AS numbers arrive in 4-octet form from every session (RFC 6793, at ingest).
            RibMsg::Update { peer, update } => self.apply_update(peer, update, true),
            RibMsg::Refresh { peer, family } => self.resend(peer, Some(family)),
            RibMsg::Query(q, reply) => {
                let _ = reply.send(self.query(q));
            }
            RibMsg::Snapshot(reply) => {
                let r = if self.opts.mrt.is_none() {
                    Err(CtlError::archive_off())
                } else if self.snapshot.is_some() {
                    Err(CtlError::new(ctl::code::BAD_ARGUMENT, "a RIB snapshot is already being written"))
                } else {
                    // Named after the minute it was asked for.
                    let start = mrt_file::interval_start(SystemTime::now(), 60);
                    self.begin_snapshot(start);
                    Ok(serde_json::json!({ "started": true }))
                };
                let _ = reply.send(r);
            }
            RibMsg::RemovePeer { peer } => {
                if let Some(p) = self.peers.remove(&peer) {
                    info!("neighbor {}: removed, {} routes dropped", p.label, p.adj_in.routes.len());
                }
                self.sweep_intern();
            }
            RibMsg::SetPrefixes(prefixes) => self.set_prefixes(prefixes),
            RibMsg::Stop => {}
        }
    }

    /// Announce what is new or changed and withdraw what is gone, session by session.
    fn set_prefixes(&mut self, prefixes: Vec<PrefixConfig>) {
        self.prefixes = prefixes;
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let Some(p) = self.peers.get_mut(&id) else { continue };
            let Some(info) = p.session.as_ref() else { continue };
            let new_out = adj_rib_out(&p.label, &self.prefixes, info);
            let mut msgs = Vec::new();
            let mut sent = FamilyCounts::default();
            for family in info.families.iter().copied() {
                let gone: Vec<Prefix> = p
                    .adj_out
                    .iter()
                    .filter(|e| e.prefix.family() == family && !new_out.iter().any(|n| n.prefix == e.prefix))
                    .map(|e| e.prefix)
                    .collect();
                if !gone.is_empty() {
                    msgs.extend(update::build_withdrawals(family, &gone));
                }
                for n in new_out.iter().filter(|n| n.prefix.family() == family && !p.adj_out.contains(n)) {
                    match update::build_announcements(family, &[n.prefix], &n.route, info.four_octet_as) {
                        Ok(m) => msgs.extend(m),
                        Err(e) => error!("neighbor {}: cannot build UPDATE for {family}: {e}", p.label),
                    }
                    match family {
                        Family::Ipv4Unicast => sent.ipv4_unicast += 1,
                        Family::Ipv6Unicast => sent.ipv6_unicast += 1,
                    }
                }
            }
            p.adj_out = new_out;
            if msgs.is_empty() {
                continue;
            }
            info!("neighbor {}: configuration reloaded, sending {} UPDATE messages", p.label, msgs.len());
            if !p.link.send_blocking(PeerMsg::Send { session: info.session, msgs, sent }, PEER_SEND_BOUND) {
                warn!("neighbor {}: peer thread gone or stuck, announcements not queued", p.label);
            }
        }
    }

    /// Apply one UPDATE: withdrawals, then announcements sharing one attribute set.
    pub fn apply_update(&mut self, peer: PeerId, u: ParsedUpdate, four_octet: bool) {
        if self.peers.get(&peer).is_none_or(|p| p.session.is_none()) {
            return; // the session went down meanwhile
        }
        let attrs = if u.announced.is_empty() {
            None
        } else {
            let set = AttrSet {
                attrs: u.attrs.into_boxed_slice(),
                mp_next_hop: u.mp_next_hop.map(Vec::into_boxed_slice),
                four_octet,
            };
            Some(self.intern(set))
        };
        let Some(p) = self.peers.get_mut(&peer) else { return };
        for w in &u.withdrawn {
            p.adj_in.remove(w);
        }
        let hard_limit = p.max_prefixes.filter(|(_, warn_only)| !warn_only).map(|(m, _)| m);
        if p.over_limit && hard_limit.is_some() {
            return; // the session is being shut down; take no more
        }
        if let Some(attrs) = attrs {
            let received = unix_now();
            for a in u.announced {
                p.adj_in.insert(a, Route { attrs: attrs.clone(), received });
            }
        }
        if let Some((limit, warn_only)) = p.max_prefixes {
            let count = p.adj_in.routes.len() as u64;
            if count > u64::from(limit) && !p.over_limit {
                p.over_limit = true;
                if warn_only {
                    warn!("neighbor {}: {count} prefixes, over max_prefixes {limit} (warning only)", p.label);
                } else {
                    if !p.link.send_blocking(PeerMsg::MaxPrefixes { count }, PEER_SEND_BOUND) {
                        warn!("neighbor {}: peer thread gone or stuck, max-prefix shutdown not queued", p.label);
                    }
                }
            }
        }
        if let Some(f) = u.end_of_rib {
            info!("neighbor {}: End-of-RIB for {f}, {} routes", p.label, p.adj_in.counts[f.index()]);
        }
    }

    fn session_up(&mut self, peer: PeerId, info: SessionInfo) {
        let prefixes = self.prefixes.clone();
        let Some(p) = self.peers.get_mut(&peer) else { return };
        p.adj_in = AdjRibIn::default();
        p.adj_out = adj_rib_out(&p.label, &prefixes, &info);
        p.adj_out_since = Instant::now();
        p.session = Some(info);
        self.resend(peer, None);
    }

    /// Send the Adj-RIB-Out of one family (or of all negotiated ones), then End-of-RIB.
    fn resend(&mut self, peer: PeerId, only: Option<Family>) {
        let Some(p) = self.peers.get(&peer) else { return };
        let Some(info) = p.session.as_ref() else { return };
        let mut msgs = Vec::new();
        let mut sent = FamilyCounts::default();
        for family in info.families.iter().copied().filter(|f| only.is_none_or(|o| o == *f)) {
            let entries: Vec<&OutEntry> = p.adj_out.iter().filter(|e| e.prefix.family() == family).collect();
            // Routes with identical attributes go into the same UPDATEs.
            let mut groups: Vec<(&OutRoute, Vec<Prefix>)> = Vec::new();
            for e in entries {
                match groups.iter_mut().find(|(r, _)| **r == e.route) {
                    Some((_, v)) => v.push(e.prefix),
                    None => groups.push((&e.route, vec![e.prefix])),
                }
            }
            for (route, prefixes) in groups {
                match update::build_announcements(family, &prefixes, route, info.four_octet_as) {
                    Ok(m) => msgs.extend(m),
                    Err(e) => error!("neighbor {}: cannot build UPDATE for {family}: {e}", p.label),
                }
                match family {
                    Family::Ipv4Unicast => sent.ipv4_unicast += prefixes.len() as u64,
                    Family::Ipv6Unicast => sent.ipv6_unicast += prefixes.len() as u64,
                }
            }
            if only.is_none() {
                msgs.push(update::end_of_rib(family));
            }
        }
        debug!("neighbor {}: sending {} UPDATE messages", p.label, msgs.len());
        if !p.link.send_blocking(PeerMsg::Send { session: info.session, msgs, sent }, PEER_SEND_BOUND) {
            warn!("neighbor {}: peer thread gone or stuck, announcements not queued", p.label);
        }
    }
}
