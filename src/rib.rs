//! The RIB thread: every peer's Adj-RIB-In, the Adj-RIB-Out of static prefixes, and queries.
//!
//! Fed by the peer threads (`RibMsg::SessionUp/Down`, parsed UPDATEs, route-refresh requests)
//! and the control thread (`RibMsg::Query`). Emits UPDATEs to peer threads (`PeerMsg::Send`).
//! It owns all route data; nothing is shared behind a lock.
//!
//! Memory: a route is a `Prefix` key plus a `Route` (an `Arc` of an interned attribute set
//! and the time it was received). The prefixes of one UPDATE share one attribute set, and
//! identical sets from other UPDATEs and peers are found in the intern table and shared too.
//! Attributes stay in wire form and are decoded only for display.

use crate::config::PrefixConfig;
use crate::ctl::{self, CtlError, FamilyCounts, RibPeerSummary, RibSummary, Route as CtlRoute, RouteList};
use crate::mrt::file as mrt_file;
use crate::mrt::record::{self as mrt_record, PeerEntry, RibEntry};
use crate::mrt::writer::{MrtLink, MrtMsg};
use crate::peer::{PeerId, PeerLink, PeerMsg};
use crate::prefix::{Family, Prefix};
use crate::wire::update::{self, OutRoute, ParsedUpdate};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, error, info, warn};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Bound;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Capacity of the RIB's inbox; a full inbox makes peer threads stop reading their sockets.
pub const RIB_CHANNEL_CAPACITY: usize = 4096;
/// Most routes `focl rib in` shows in one answer.
pub const MAX_ROUTES_SHOWN: usize = 50_000;

/// Intern table clean-up: after this many new sets, drop the ones no route uses any more.
const INTERN_SWEEP_EVERY: usize = 50_000;
/// Prefixes per snapshot chunk: small enough that UPDATEs are served between chunks.
const SNAPSHOT_CHUNK_PREFIXES: usize = 2_000;
/// Chunks queued at the MRT writer before the RIB waits (bounds the memory of a snapshot).
const SNAPSHOT_MAX_BACKLOG: usize = 8;
/// TABLE_DUMP_V2 view name (RFC 6396 §4.3.1).
const VIEW_NAME: &str = "focld";

/// What a peer thread tells the RIB when its session reaches Established.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    pub session: u64,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    pub local_as: u32,
    pub remote_as: u32,
    pub four_octet_as: bool,
    pub families: Vec<Family>,
    /// The peer's BGP identifier (for the TABLE_DUMP_V2 peer index).
    pub remote_id: Ipv4Addr,
}

impl SessionInfo {
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }
}

/// Questions the control thread asks.
#[derive(Clone, Debug, PartialEq)]
pub enum RibQuery {
    Summary,
    /// Adj-RIB-In of a peer, optionally only routes equal to or inside a prefix.
    In {
        peer: PeerId,
        prefix: Option<Prefix>,
    },
    Out {
        peer: PeerId,
    },
    /// (received, sent) route counts of a peer.
    Counts {
        peer: PeerId,
    },
}

/// Messages to the RIB thread.
#[derive(Debug)]
pub enum RibMsg {
    /// A configured peer exists (at start and, later, on reload).
    AddPeer {
        peer: PeerId,
        label: String,
        address: IpAddr,
        name: Option<String>,
        remote_as: u32,
        link: PeerLink,
        /// `max_prefixes` and whether it only warns.
        max_prefixes: Option<(u32, bool)>,
    },
    SessionUp {
        peer: PeerId,
        info: SessionInfo,
    },
    SessionDown {
        peer: PeerId,
    },
    Update {
        peer: PeerId,
        update: ParsedUpdate,
        four_octet: bool,
    },
    /// The peer sent ROUTE-REFRESH: resend the Adj-RIB-Out of that family (RFC 2918 §4).
    Refresh {
        peer: PeerId,
        family: Family,
    },
    Query(RibQuery, Sender<Result<serde_json::Value, CtlError>>),
    /// `focl archive snapshot`: write a TABLE_DUMP_V2 file of every Adj-RIB-In now.
    Snapshot(Sender<Result<serde_json::Value, CtlError>>),
    /// Reload: the peer is no longer configured (its thread is stopped); forget its routes.
    RemovePeer {
        peer: PeerId,
    },
    /// Reload: the prefixes to announce; the differences are announced and withdrawn on every
    /// Established session, without resetting any.
    SetPrefixes(Vec<PrefixConfig>),
    Stop,
}

/// An interned set of path attributes, in wire form as received.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AttrSet {
    /// Path attributes without MP_REACH_NLRI / MP_UNREACH_NLRI.
    pub attrs: Box<[u8]>,
    /// IPv6 next hop(s) from MP_REACH_NLRI.
    pub mp_next_hop: Option<Box<[u8]>>,
    /// Whether AS numbers in `attrs` are 4 octets (the session's RFC 6793 state).
    pub four_octet: bool,
}

/// A route of an Adj-RIB-In.
#[derive(Clone, Debug)]
pub struct Route {
    pub attrs: Arc<AttrSet>,
    /// Unix time the route was received (seconds).
    pub received: u32,
}

/// One peer's routes as received.
#[derive(Default)]
pub struct AdjRibIn {
    routes: BTreeMap<Prefix, Route>,
    counts: [u64; 2],
}

impl AdjRibIn {
    fn insert(&mut self, p: Prefix, r: Route) {
        if self.routes.insert(p, r).is_none() {
            self.counts[p.family().index()] += 1;
        }
    }

    fn remove(&mut self, p: &Prefix) {
        if self.routes.remove(p).is_some() {
            self.counts[p.family().index()] -= 1;
        }
    }

    fn counts(&self) -> FamilyCounts {
        FamilyCounts { ipv4_unicast: self.counts[0], ipv6_unicast: self.counts[1] }
    }

    pub fn routes(&self) -> impl Iterator<Item = (&Prefix, &Route)> {
        self.routes.iter()
    }
}

/// A route we announce to one peer.
#[derive(Clone, Debug, PartialEq)]
struct OutEntry {
    prefix: Prefix,
    route: OutRoute,
}

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

/// A TABLE_DUMP_V2 snapshot in progress: prefixes are written in order, a chunk per turn.
struct SnapshotCursor {
    /// Peers in peer-index order.
    peers: Vec<PeerId>,
    /// Last prefix written; the next chunk starts after it.
    after: Option<Prefix>,
    seq: u32,
    timestamp: u32,
    records: u64,
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

fn unix_now() -> u32 {
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

    fn stop_snapshot(&mut self) {
        if self.snapshot.take().is_some() {
            if let Some(m) = &self.opts.mrt {
                m.send_blocking(MrtMsg::SnapshotEnd);
            }
        }
    }

    /// Start a snapshot named after `start`: the PEER_INDEX_TABLE goes out at once.
    fn begin_snapshot(&mut self, start: SystemTime) -> bool {
        let Some(mrt) = &self.opts.mrt else { return false };
        if self.snapshot.is_some() {
            return false;
        }
        let mut ids: Vec<PeerId> = self.peers.keys().copied().collect();
        ids.sort_unstable();
        let entries: Vec<PeerEntry> = ids
            .iter()
            .filter_map(|id| self.peers.get(id))
            .map(|p| PeerEntry {
                bgp_id: p.session.as_ref().map(|s| s.remote_id).unwrap_or(Ipv4Addr::UNSPECIFIED),
                ip: p.address,
                asn: p.remote_as,
            })
            .collect();
        let timestamp = unix_now();
        let mut buf = Vec::new();
        mrt_record::peer_index_table(timestamp, self.opts.router_id, VIEW_NAME, &entries, &mut buf);
        mrt.send_blocking(MrtMsg::SnapshotBegin { start });
        mrt.send_blocking(MrtMsg::SnapshotChunk { records: buf, count: 1, timestamp });
        self.snapshot = Some(SnapshotCursor { peers: ids, after: None, seq: 0, timestamp, records: 1 });
        true
    }

    /// Write the next chunk of the snapshot in progress, if the writer has room.
    fn snapshot_step(&mut self) {
        let (Some(cur), Some(mrt)) = (self.snapshot.as_mut(), self.opts.mrt.as_ref()) else { return };
        if mrt.backlog() >= SNAPSHOT_MAX_BACKLOG {
            return;
        }
        // The next prefixes after the cursor over all peers, merged in order.
        let lower = match cur.after {
            Some(p) => Bound::Excluded(p),
            None => Bound::Unbounded,
        };
        let mut next: Vec<Prefix> = Vec::new();
        for id in &cur.peers {
            if let Some(p) = self.peers.get(id) {
                next.extend(
                    p.adj_in.routes.range((lower, Bound::Unbounded)).take(SNAPSHOT_CHUNK_PREFIXES).map(|(k, _)| *k),
                );
            }
        }
        next.sort_unstable();
        next.dedup();
        next.truncate(SNAPSHOT_CHUNK_PREFIXES);
        if next.is_empty() {
            info!("rib: snapshot done, {} records", cur.records);
            self.snapshot = None;
            mrt.send_blocking(MrtMsg::SnapshotEnd);
            return;
        }
        let mut buf = Vec::with_capacity(next.len() * 128);
        let mut attrs = Vec::new();
        let mut count = 0;
        for prefix in &next {
            attrs.clear();
            // (peer index, received, range of `attrs`) per peer holding the prefix.
            let mut spans = Vec::new();
            for (index, id) in cur.peers.iter().enumerate() {
                let Some(route) = self.peers.get(id).and_then(|p| p.adj_in.routes.get(prefix)) else { continue };
                let from = attrs.len();
                let a = &route.attrs;
                mrt_record::td2_attributes(&a.attrs, a.four_octet, a.mp_next_hop.as_deref(), &mut attrs);
                spans.push((index as u16, route.received, from..attrs.len()));
            }
            let entries: Vec<RibEntry> = spans
                .iter()
                .map(|(i, t, r)| RibEntry { peer_index: *i, originated: *t, attrs: &attrs[r.clone()] })
                .collect();
            mrt_record::rib_entry_record(cur.timestamp, cur.seq, prefix, &entries, &mut buf);
            cur.seq = cur.seq.wrapping_add(1);
            count += 1;
        }
        cur.after = next.last().copied();
        cur.records += count;
        mrt.send_blocking(MrtMsg::SnapshotChunk { records: buf, count, timestamp: cur.timestamp });
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
            RibMsg::Update { peer, update, four_octet } => self.apply_update(peer, update, four_octet),
            RibMsg::Refresh { peer, family } => self.resend(peer, Some(family)),
            RibMsg::Query(q, reply) => {
                let _ = reply.send(self.query(q));
            }
            RibMsg::Snapshot(reply) => {
                let r = if self.opts.mrt.is_none() {
                    Err(crate::mrt::writer::archive_off())
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
            if !p.link.send(PeerMsg::Send { session: info.session, msgs, sent }) {
                warn!("neighbor {}: peer inbox full, announcements not queued", p.label);
            }
        }
    }

    fn intern(&mut self, set: AttrSet) -> Arc<AttrSet> {
        if let Some(a) = self.intern.get(&set) {
            return a.clone();
        }
        let a = Arc::new(set);
        self.intern.insert(a.clone());
        self.interned_since_sweep += 1;
        if self.interned_since_sweep >= INTERN_SWEEP_EVERY {
            self.sweep_intern();
        }
        a
    }

    /// Forget attribute sets no route refers to any more.
    fn sweep_intern(&mut self) {
        self.intern.retain(|a| Arc::strong_count(a) > 1);
        self.interned_since_sweep = 0;
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
                    p.link.send(PeerMsg::MaxPrefixes { count });
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
        if !p.link.send(PeerMsg::Send { session: info.session, msgs, sent }) {
            warn!("neighbor {}: peer inbox full, announcements not queued", p.label);
        }
    }

    fn query(&self, q: RibQuery) -> Result<serde_json::Value, CtlError> {
        let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| CtlError::new(ctl::code::INTERNAL, format!("cannot encode reply: {e}")))
        };
        match q {
            RibQuery::Summary => to_json(serde_json::to_value(self.summary())),
            RibQuery::In { peer, prefix } => {
                let p = self.peer(peer)?;
                let now = unix_now();
                let matching = p.adj_in.routes.iter().filter(|(k, _)| prefix.is_none_or(|f| f.contains(k)));
                // Decoding a full table for display would hold the RIB (and every session's
                // UPDATEs) for seconds, and the answer would not fit the control socket.
                let n = matching.clone().take(MAX_ROUTES_SHOWN + 1).count();
                if n > MAX_ROUTES_SHOWN {
                    return Err(CtlError::new(
                        ctl::code::BAD_ARGUMENT,
                        format!(
                            "more than {MAX_ROUTES_SHOWN} routes match; give a prefix (focl rib in {} PREFIX), \
                             or read the whole table from a RIB snapshot (focl archive snapshot)",
                            p.address
                        ),
                    ));
                }
                let routes = matching.map(|(k, r)| display_route(k, r, now)).collect();
                to_json(serde_json::to_value(RouteList { peer: p.label.clone(), routes }))
            }
            RibQuery::Out { peer } => {
                let p = self.peer(peer)?;
                let age = p.adj_out_since.elapsed().as_secs();
                let routes = p
                    .adj_out
                    .iter()
                    .map(|e| CtlRoute {
                        prefix: e.prefix.to_string(),
                        next_hop: Some(e.route.next_hop.to_string()),
                        as_path: e.route.as_path.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" "),
                        origin: Some("igp".into()),
                        med: None,
                        local_pref: e.route.local_pref,
                        communities: vec![],
                        large_communities: vec![],
                        age_secs: age,
                    })
                    .collect();
                to_json(serde_json::to_value(RouteList { peer: p.label.clone(), routes }))
            }
            RibQuery::Counts { peer } => {
                let p = self.peer(peer)?;
                let mut sent = FamilyCounts::default();
                for e in &p.adj_out {
                    match e.prefix.family() {
                        Family::Ipv4Unicast => sent.ipv4_unicast += 1,
                        Family::Ipv6Unicast => sent.ipv6_unicast += 1,
                    }
                }
                to_json(serde_json::to_value((p.adj_in.counts(), sent)))
            }
        }
    }

    fn peer(&self, id: PeerId) -> Result<&PeerState, CtlError> {
        self.peers.get(&id).ok_or_else(|| CtlError::new(ctl::code::NO_SUCH_PEER, format!("no peer with id {id}")))
    }

    pub fn summary(&self) -> RibSummary {
        let mut peers: Vec<(&PeerId, &PeerState)> = self.peers.iter().collect();
        peers.sort_by_key(|(id, _)| **id);
        let mut routes = FamilyCounts::default();
        let peers = peers
            .into_iter()
            .map(|(_, p)| {
                let c = p.adj_in.counts();
                routes.ipv4_unicast += c.ipv4_unicast;
                routes.ipv6_unicast += c.ipv6_unicast;
                RibPeerSummary { address: p.address.to_string(), name: p.name.clone(), routes: c }
            })
            .collect();
        let mut announced = FamilyCounts::default();
        for p in &self.prefixes {
            match p.network.family() {
                Family::Ipv4Unicast => announced.ipv4_unicast += 1,
                Family::Ipv6Unicast => announced.ipv6_unicast += 1,
            }
        }
        RibSummary { peers, routes, attribute_sets: self.intern.len() as u64, announced }
    }

    /// A peer's Adj-RIB-In (tests and snapshots).
    pub fn adj_rib_in(&self, peer: PeerId) -> Option<&AdjRibIn> {
        self.peers.get(&peer).map(|p| &p.adj_in)
    }
}

/// The routes we announce on a session: every configured prefix of a negotiated family, with
/// NEXT_HOP = the configured next hop or our address on the session (RFC 4271 §5.1.3), AS_PATH
/// = our AS for eBGP and empty for iBGP (§5.1.2), LOCAL_PREF 100 for iBGP (§5.1.5).
fn adj_rib_out(label: &str, prefixes: &[PrefixConfig], info: &SessionInfo) -> Vec<OutEntry> {
    let ibgp = info.is_ibgp();
    let mut out = Vec::new();
    for pc in prefixes {
        let family = pc.network.family();
        if !info.families.contains(&family) {
            continue;
        }
        let next_hop = match pc.next_hop {
            Some(nh) => nh,
            None if Family::of_addr(&info.local_addr) == family => info.local_addr,
            None => {
                error!(
                    "neighbor {label}: not announcing {}: the session runs over {} and has no {family} next hop; set next_hop for this prefix",
                    pc.network,
                    info.local_addr
                );
                continue;
            }
        };
        let route = OutRoute {
            as_path: if ibgp { vec![] } else { vec![info.local_as] },
            next_hop,
            local_pref: ibgp.then_some(100),
            link_local_next_hop: None,
        };
        out.push(OutEntry { prefix: pc.network, route });
    }
    out
}

fn display_route(p: &Prefix, r: &Route, now: u32) -> CtlRoute {
    let v = update::decode_attrs_for_display(&r.attrs.attrs, r.attrs.mp_next_hop.as_deref(), r.attrs.four_octet);
    CtlRoute {
        prefix: p.to_string(),
        next_hop: v.next_hop,
        as_path: v.as_path,
        origin: v.origin,
        med: v.med,
        local_pref: v.local_pref,
        communities: v.communities,
        large_communities: v.large_communities,
        age_secs: u64::from(now.saturating_sub(r.received)),
    }
}
