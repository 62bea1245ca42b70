//! The RIB THREAD: every peer's Adj-RIB-In, the Adj-RIB-Out of static prefixes, snapshots and
//! queries.
//!
//! Fed by the peer threads (`RibMsg::SessionUp/Down`, parsed UPDATEs, route-refresh requests)
//! and the control thread (`RibMsg::Query`, `Snapshot`, reload's `AddPeer`/`RemovePeer`/
//! `SetPrefixes`). Emits UPDATEs to peer threads (`PeerMsg::Send`) and TABLE_DUMP_V2 chunks to
//! the MRT writer (`MrtMsg::Snapshot*`). It owns all route data; nothing is shared behind a lock.
//!
//! Memory: the routes of every peer live in one prefix-major table per family (`table.rs`):
//! each prefix once, with a 12-byte entry per peer's route (peer slot, attribute-set id,
//! received-at, flags). A peer's Adj-RIB-In is its entries in that table; the entry marked
//! best is the Loc-RIB (`best.rs`, RFC 4271 §9.1.2). Attribute sets are interned in a slab
//! with reference counts (`attrs.rs`) and freed when the last route lets go.
//!
//! Files: `table.rs` (the table), `attrs.rs` (interned attribute sets), `best.rs` (decision
//! process), `adj_out.rs` (Adj-RIB-Out), `sources.rs` (`[[sources]]` tables announced in
//! bounded batches; `SetSources`, `SourceLoaded`, `SourceReload`), `snapshot.rs` (TABLE_DUMP_V2 in chunks, one ordered
//! walk), `query.rs` (answers to focl, streamed in chunks).

mod adj_out;
mod aspa;
mod attrs;
mod best;
mod bmp_dump;
mod bmp_feed;
mod export;
mod graceful;
mod import;
mod paths;
mod query;
mod snapshot;
mod sources;
mod table;

pub use attrs::{AttrSet, AttrSlab, PathSummary};
pub use best::{choose as choose_best, Candidate, DEFAULT_LOCAL_PREF};
pub use query::MAX_ROUTES_SHOWN;
pub use table::{AttrId, PeerSlot, RouteEntry, Table};

use crate::config::PrefixConfig;
use crate::control::proto::{self as ctl, CtlError, FamilyCounts};
use crate::mrt::file as mrt_file;
use crate::msg::{
    vrp, MrtLink, PeerId, PeerLink, PeerMsg, RibMsg, SessionInfo, SourceLink, VrpTable, PEER_SEND_BOUND,
    RIB_CHANNEL_CAPACITY,
};
use crate::prefix::{Family, Prefix};
use crate::wire::frame::{self, RefreshKind};
use crate::wire::update::{self, AddPath, OutRoute, ParsedUpdate};
use adj_out::{adj_rib_out, OutEntry};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, error, info, warn};
use paths::PathRefs;
use snapshot::SnapshotCursor;
use std::collections::HashMap;
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
    /// Where this peer's routes sit in the table (`RouteEntry::peer`).
    slot: PeerSlot,
    /// Routes in its Adj-RIB-In, by family.
    counts: [u64; 2],
    /// Current session, while Established.
    session: Option<SessionInfo>,
    adj_out: Vec<OutEntry>,
    adj_out_since: Instant,
    max_prefixes: Option<(u32, bool)>,
    /// The limit was passed on this session (logged or reported once).
    over_limit: bool,
    /// Per family: the peer sent BoRR (RFC 7313 §4) and its stale routes are swept at EoRR,
    /// or at this deadline if no EoRR comes.
    refresh_deadline: [Option<Instant>; 2],
    /// ADD-PATH: the most paths kept for one prefix (`max_paths_per_prefix`), the paths
    /// refused over it on this session, and when that was last logged.
    max_paths: u16,
    paths_refused: u64,
    paths_refused_logged: Option<Instant>,
    /// Graceful restart (RFC 4724 §4.2): the peer restarted and some of its routes are stale.
    gr: Option<graceful::Episode>,
    /// Per family: routes marked stale (by a restart or an enhanced refresh) and not yet
    /// announced again, swept or withdrawn.
    stale: [u64; 2],
    /// UPDATEs of the current session applied (the BMP initial dump says how many it holds).
    updates_in: u64,
}

impl PeerState {
    fn counts(&self) -> FamilyCounts {
        FamilyCounts { ipv4_unicast: self.counts[0], ipv6_unicast: self.counts[1] }
    }

    fn routes(&self) -> u64 {
        self.counts[0] + self.counts[1]
    }
}

/// What best-path selection needs of the peer in a slot (RFC 4271 §9.1.2.2 (d), (f), (g)).
#[derive(Clone, Copy, Debug)]
struct SlotInfo {
    peer: PeerId,
    ibgp: bool,
    /// Our AS on the session: the origin of routes with an empty AS_PATH (RFC 6811 §2).
    local_as: u32,
    router_id: Ipv4Addr,
    address: IpAddr,
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
    /// The source thread, which reads `[[sources]]` files.
    pub sources: Option<SourceLink>,
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
    /// Peer slots: the peer in each, and what best-path selection needs of it.
    slots: Vec<Option<SlotInfo>>,
    table: Table,
    attrs: AttrSlab,
    /// (attribute set, path identifier) pairs of ADD-PATH routes.
    paths: PathRefs,
    opts: RibOptions,
    next_snapshot: Option<SystemTime>,
    snapshot: Option<SnapshotCursor>,
    /// Route queries being streamed to the control thread.
    streams: Vec<query::RouteStream>,
    /// Scratch space of the decision process.
    decision: best::Decision,
    /// The VRPs every route is validated against (RFC 6811); empty until the RTR thread has
    /// some.
    vrps: Arc<VrpTable>,
    /// Per peer slot: its routes found Valid and Invalid (RFC 6811), kept as routes come, go
    /// and change state, so `rib summary` never walks the table.
    rov: Vec<[u64; 2]>,
    /// `[[sources]]`, their announcements in progress, and what each sent to each neighbor.
    sources: Vec<sources::Source>,
    feeds: Vec<sources::Feed>,
    source_progress: HashMap<(PeerId, String), SourceProgress>,
    /// Import and export policy (issue 17); the defaults until `RibMsg::SetPolicy`.
    policy: Arc<crate::policy::Engine>,
    /// Per peer slot: its routes the import policy rejected, and its accepted blackhole routes
    /// (RFC 7999).
    rejected: Vec<[u64; 2]>,
    /// Sessions whose export chain sends them learned routes (`export.rs`).
    exports: Vec<export::Export>,
    /// `focl blackhole add`: prefixes announced as blackhole routes (RFC 7999), to every
    /// neighbor or one; kept across reloads.
    blackholes: Vec<(Prefix, Option<PeerId>)>,
    /// BMP (`bmp_feed.rs`): where post-policy changes go while a station monitors them, and
    /// the Loc-RIB feed of each station connection that monitors the Loc-RIB.
    bmp_post: Option<crate::msg::BmpLink>,
    loc_feeds: Vec<bmp_feed::LocRibFeed>,
    /// Initial dumps for BMP stations being made, a chunk a turn (`bmp_dump.rs`).
    bmp_dumps: Vec<bmp_dump::AdjRibDump>,
    /// Reused by the import policy of every UPDATE (`import.rs`).
    import_scratch: import::Scratch,
}

/// What one source sent to one neighbor on its current session.
#[derive(Clone, Copy, Debug, Default)]
struct SourceProgress {
    sent: u64,
    /// Unix time the last batch went.
    done_at: Option<u64>,
}

/// Count a route in (`add`) or out of its peer's origin validation counts.
fn count_rov(rov: &mut [[u64; 2]], e: &RouteEntry, add: bool) {
    let i = match e.flags & table::ROV_BITS {
        table::ROV_VALID => 0,
        table::ROV_INVALID => 1,
        _ => return,
    };
    if let Some(c) = rov.get_mut(usize::from(e.peer)) {
        c[i] = if add { c[i] + 1 } else { c[i].saturating_sub(1) };
    }
}

/// Count a route in (`add`) or out of its peer's routes rejected by import policy, or of its
/// accepted blackhole routes.
fn count_rejected(rejected: &mut [[u64; 2]], attrs: &AttrSlab, paths: &PathRefs, e: &RouteEntry, add: bool) {
    let i = if e.is_rejected() {
        0
    } else if import::is_blackhole(attrs, paths, e) {
        1
    } else {
        return;
    };
    if let Some(c) = rejected.get_mut(usize::from(e.peer)) {
        c[i] = if add { c[i] + 1 } else { c[i].saturating_sub(1) };
    }
}

/// More changed VRP prefixes than this: validate the whole table again in one walk rather
/// than prefix by prefix.
const REVALIDATE_WHOLE_TABLE: usize = 10_000;

/// The `table::ROV_*` flags of a route for `prefix` whose set has `summary`.
fn rov_flags(vrps: &VrpTable, prefix: &Prefix, summary: &PathSummary, local_as: u32) -> u16 {
    if vrps.is_empty() {
        return 0;
    }
    RouteEntry::rov_bits(vrps.state(prefix, summary.route_origin(local_as)))
}

/// How long the stale routes of an Enhanced Route Refresh wait for the peer's EoRR before they
/// are removed anyway (RFC 7313 §4 leaves it to the implementation; it must end).
pub const REFRESH_STALE_BOUND: Duration = Duration::from_secs(300);

/// The decision-process view of a route (its set's summary and its peer's facts).
fn candidate(slots: &[Option<SlotInfo>], attrs: &AttrSlab, paths: &PathRefs, e: &RouteEntry) -> Candidate {
    let info = slots.get(usize::from(e.peer)).copied().flatten();
    let post = (e.flags & table::POLICY != 0).then(|| paths.post(e.attrs)).flatten();
    Candidate {
        path: attrs.summary(post.unwrap_or_else(|| set_of(paths, e))),
        rejected: e.is_rejected(),
        policy_pref: post.is_some(),
        ibgp: info.is_some_and(|i| i.ibgp),
        router_id: info.map(|i| i.router_id).unwrap_or(Ipv4Addr::UNSPECIFIED),
        address: info.map(|i| i.address).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        llgr_stale: e.flags & table::LLGR_STALE != 0,
    }
}

/// The attribute set of a route (through its path pair for an ADD-PATH route).
fn set_of(paths: &PathRefs, e: &RouteEntry) -> AttrId {
    if e.is_path_ref() {
        paths.get(e.attrs).map_or(AttrId::MAX, |(a, _)| a)
    } else {
        e.attrs
    }
}

/// The RFC 7911 path identifier of an ADD-PATH route; `None` for others.
fn path_of(paths: &PathRefs, e: &RouteEntry) -> Option<u32> {
    if e.is_add_path() {
        paths.get(e.attrs).map(|(_, p)| p)
    } else {
        None
    }
}

/// Give back what a route that left the table held.
fn release_route(attrs: &mut AttrSlab, paths: &mut PathRefs, e: RouteEntry) {
    if !e.is_path_ref() {
        attrs.release(e.attrs);
    } else if let Some((set, post)) = paths.release_post(e.attrs) {
        attrs.release(set);
        if let Some(post) = post {
            attrs.release(post);
        }
    }
}

/// The post-policy attribute set of a route: the one best path and the Loc-RIB read.
fn post_of(paths: &PathRefs, e: &RouteEntry) -> AttrId {
    match e.flags & table::POLICY {
        0 => set_of(paths, e),
        _ => paths.post(e.attrs).unwrap_or_else(|| set_of(paths, e)),
    }
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
            slots: Vec::new(),
            table: Table::default(),
            attrs: AttrSlab::default(),
            paths: PathRefs::default(),
            opts,
            next_snapshot,
            snapshot: None,
            streams: Vec::new(),
            decision: best::Decision::default(),
            vrps: Arc::new(VrpTable::default()),
            rov: Vec::new(),
            sources: Vec::new(),
            feeds: Vec::new(),
            source_progress: HashMap::new(),
            policy: Arc::default(),
            rejected: Vec::new(),
            exports: Vec::new(),
            import_scratch: import::Scratch::default(),
            blackholes: Vec::new(),
            bmp_post: None,
            loc_feeds: Vec::new(),
            bmp_dumps: Vec::new(),
        }
    }

    fn run(&mut self, rx: Receiver<RibMsg>) {
        loop {
            // While a snapshot or a route stream is being written, wake up often for the next chunk.
            let timeout = if self.snapshot.is_some()
                || !self.streams.is_empty()
                || !self.feeds.is_empty()
                || self.exports_busy()
                || self.loc_feeds_busy()
                || self.bmp_dumps_busy()
            {
                Duration::from_millis(1)
            } else {
                let refresh = self.next_refresh_deadline().map(|d| d.saturating_duration_since(Instant::now()));
                self.next_snapshot
                    .map(|t| t.duration_since(SystemTime::now()).unwrap_or_default())
                    .unwrap_or(Duration::from_secs(3600))
                    .min(refresh.unwrap_or(Duration::MAX))
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
            self.refresh_overdue(Instant::now());
            self.snapshot_step();
            self.streams_step();
            self.feeds_step();
            self.exports_step();
            self.loc_feeds_step();
            self.bmp_dumps_step();
        }
        self.stop_snapshot();
        debug!("rib: stopped");
    }

    pub fn handle(&mut self, msg: RibMsg) {
        match msg {
            RibMsg::AddPeer { peer, label, address, name, remote_as, link, max_prefixes } => {
                if let Some(old) = self.peers.get(&peer) {
                    // Added again (a reload): the old slot and its routes go first.
                    let slot = old.slot;
                    self.clear_routes(peer);
                    self.slots[usize::from(slot)] = None;
                }
                let Some(slot) = self.free_slot() else {
                    error!("neighbor {label}: more than {} neighbors; its routes are not kept", PeerSlot::MAX);
                    return;
                };
                self.slots[usize::from(slot)] =
                    Some(SlotInfo { peer, ibgp: false, local_as: 0, router_id: Ipv4Addr::UNSPECIFIED, address });
                if self.rov.len() <= usize::from(slot) {
                    self.rov.resize(usize::from(slot) + 1, [0; 2]);
                }
                self.rov[usize::from(slot)] = [0; 2];
                if self.rejected.len() <= usize::from(slot) {
                    self.rejected.resize(usize::from(slot) + 1, [0; 2]);
                }
                self.rejected[usize::from(slot)] = [0; 2];
                let state = PeerState {
                    label,
                    address,
                    remote_as,
                    name,
                    link,
                    slot,
                    counts: [0; 2],
                    session: None,
                    adj_out: Vec::new(),
                    adj_out_since: Instant::now(),
                    max_prefixes,
                    over_limit: false,
                    refresh_deadline: [None; 2],
                    max_paths: 8,
                    paths_refused: 0,
                    paths_refused_logged: None,
                    gr: None,
                    stale: [0; 2],
                    updates_in: 0,
                };
                self.peers.insert(peer, state);
            }
            RibMsg::SessionUp { peer, info } => self.session_up(peer, info),
            RibMsg::SessionDown { peer } => {
                let n = self.clear_routes(peer);
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.session = None;
                    p.adj_out.clear();
                    self.feeds.retain(|f| f.peer != peer);
                    self.source_progress.retain(|(q, _), _| *q != peer);
                    p.over_limit = false;
                    p.refresh_deadline = [None; 2];
                    info!("neighbor {}: session down, {n} routes removed", p.label);
                }
            }
            // AS numbers arrive in 4-octet form from every session (RFC 6793, at ingest).
            RibMsg::Update { peer, update } => {
                if let Some(p) = self.peers.get_mut(&peer).filter(|p| p.session.is_some()) {
                    p.updates_in += 1;
                }
                let eor = update.end_of_rib;
                let touched = self.bmp_post.as_ref().map(|_| self.bmp_touched(peer, &update));
                self.apply_update(peer, update, true);
                if let Some(t) = touched {
                    self.bmp_post_policy(peer, &t, eor);
                }
                if let Some(f) = eor {
                    self.gr_end_of_rib(peer, f);
                }
            }
            RibMsg::BmpDump { peers, views, reply } => self.bmp_dump_start(&peers, views, reply),
            RibMsg::BmpPostPolicy(link) => self.bmp_post_set(link),
            RibMsg::BmpLocRib(feed) => self.loc_feed_start(feed),
            RibMsg::Refresh { peer, family } => self.resend(peer, Some(family)),
            RibMsg::SetSources(cfgs) => self.set_sources(cfgs),
            RibMsg::SourceLoaded { cfg, result, reply } => self.source_loaded(cfg, result, reply),
            RibMsg::SourceReload(name, reply) => self.source_reload(&name, reply),
            RibMsg::RefreshMark { peer, family, begin: true } => self.refresh_begin(peer, family, Instant::now()),
            RibMsg::RefreshMark { peer, family, begin: false } => self.refresh_end(peer, family, "EoRR"),
            RibMsg::Vrps { table, changed } => {
                self.revalidate(table, changed);
            }
            RibMsg::Query(q, reply) => {
                let _ = reply.send(self.query(q));
            }
            RibMsg::Routes(q, tx) => self.start_stream(q, tx),
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
                let n = self.clear_routes(peer);
                self.sources_session_down(peer);
                if let Some(p) = self.peers.remove(&peer) {
                    self.slots[usize::from(p.slot)] = None;
                    info!("neighbor {}: removed, {n} routes dropped", p.label);
                }
            }
            RibMsg::SetPrefixes(prefixes) => {
                self.set_prefixes(prefixes);
                // Learned routes of prefixes that stopped or started being ours (issue 17).
                self.export_rewalk();
            }
            RibMsg::Blackhole(op, reply) => {
                let _ = reply.send(self.blackhole_op(op));
            }
            RibMsg::SetPolicy(engine, reply) => {
                let export_changed = self.policy.changed_peers(&engine, crate::policy::Direction::Export);
                let mut report = self.set_policy(engine);
                let import_moved = report.iter().any(|c| c.now_accepted + c.now_rejected + c.modified > 0);
                if import_moved {
                    self.bmp_post_reset("the import policy changed");
                }
                report.extend(self.export_policy_changed(&export_changed, import_moved));
                if let Some(r) = reply {
                    let _ = r.send(Ok(report));
                }
            }
            RibMsg::Stop => {}
            RibMsg::SessionStale { peer } => self.gr_session_stale(peer, Instant::now()),
        }
    }

    /// Announce what is new or changed and withdraw what is gone, session by session.
    fn set_prefixes(&mut self, prefixes: Vec<PrefixConfig>) {
        self.prefixes = prefixes;
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let mine = self.prefixes_for(id);
            let Some(p) = self.peers.get_mut(&id) else { continue };
            let Some(info) = p.session.as_ref() else { continue };
            let new_out = adj_rib_out(&p.label, &mine, info);
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
                    msgs.extend(update::build_withdrawals(family, &gone, info.max_message_len));
                }
                for n in new_out.iter().filter(|n| n.prefix.family() == family && !p.adj_out.contains(n)) {
                    let max = info.max_message_len;
                    match update::build_announcements(family, &[n.prefix], &n.route, info.four_octet_as, max) {
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

    /// Apply one UPDATE: withdrawals, then announcements sharing one attribute set; the best
    /// path of every prefix touched is chosen again (RFC 4271 §9.1.2).
    pub fn apply_update(&mut self, peer: PeerId, u: ParsedUpdate, four_octet: bool) {
        if !self.bmp_dumps.is_empty() {
            // A BMP dump in progress keeps what it has not walked yet (`bmp_dump.rs`).
            if let Some(slot) = self.peers.get(&peer).filter(|p| p.session.is_some()).map(|p| p.slot) {
                for x in u.withdrawn.iter().chain(u.announced.iter()) {
                    self.bmp_dump_keep(slot, x);
                }
            }
        }
        if (!self.exports.is_empty() || !self.loc_feeds.is_empty())
            && self.peers.get(&peer).is_some_and(|p| p.session.is_some())
        {
            for x in u.withdrawn.iter().chain(u.announced.iter()) {
                self.export_touch(x);
                self.loc_feed_touch(x);
            }
        }
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if p.session.is_none() {
            return; // the session went down meanwhile
        }
        let slot = p.slot;
        let ap = p.session.as_ref().map(|s| AddPath::of(&s.add_path_rx)).unwrap_or_default();
        let Rib { table, attrs, slots, paths, decision, vrps, rov, policy, rejected, import_scratch, .. } = self;
        for (i, w) in u.withdrawn.iter().enumerate() {
            // RFC 7911 §3: an ADD-PATH withdrawal names its path.
            let pid = ap.has(w.family()).then(|| u.withdrawn_id(i));
            let (old, rest) = table.remove_as(w, |e| e.peer == slot && path_of(paths, e) == pid);
            if let Some(old) = old {
                p.counts[w.family().index()] -= 1;
                if old.is_stale() {
                    p.stale[w.family().index()] = p.stale[w.family().index()].saturating_sub(1);
                }
                count_rov(rov, &old, false);
                count_rejected(rejected, attrs, paths, &old, false);
                let gone = (old.is_best(), candidate(slots, attrs, paths, &old));
                best::mark_best_after_remove(decision, rest, gone, |e| candidate(slots, attrs, paths, e));
                release_route(attrs, paths, old);
            }
        }
        let hard_limit = p.max_prefixes.filter(|(_, warn_only)| !warn_only).map(|(m, _)| m);
        if p.over_limit && hard_limit.is_some() {
            return; // the session is being shut down; take no more
        }
        if !u.announced.is_empty() {
            let set = AttrSet { attrs: &u.attrs, mp_next_hop: u.mp_next_hop.as_deref(), four_octet };
            let id = attrs.intern(set);
            let received = unix_now();
            let leak = if u.otc_leak { table::OTC_LEAK } else { 0 };
            let summary = attrs.summary(id);
            let local_as = p.session.as_ref().map_or(0, |s| s.local_as);
            // Import policy (issue 17): one run per UPDATE, over its one attribute set.
            let sp = import::slot_policy(p, policy);
            let mut run = attrs.get(id).and_then(|set| {
                import::ImportRun::new(policy, import_scratch, &sp, set, &vrps.aspas, summary.blackhole)
            });
            for (i, a) in u.announced.iter().enumerate() {
                let leak = leak | rov_flags(vrps, a, &summary, local_as);
                let pid = ap.has(a.family()).then(|| u.announced_ids.get(i).copied().unwrap_or(0));
                let verdict = run.as_mut().map(|r| r.decide(*a, leak, || import::covered(table, a, slot)));
                let post = match (&mut run, verdict) {
                    (Some(r), Some(v)) => r.post_set(attrs, id, v),
                    _ => None,
                };
                let entry = match (pid, verdict) {
                    (None, Some(v)) => {
                        let e = RouteEntry { attrs: id, received, peer: slot, flags: leak };
                        import::entry_after(attrs, paths, id, None, post, v.accept, e)
                    }
                    (Some(pid), Some(v)) => {
                        let routes = table.get(a).unwrap_or_default();
                        let mine = routes.iter().filter(|e| e.peer == slot);
                        let known = mine.clone().any(|e| path_of(paths, e) == Some(pid));
                        if !known && mine.count() >= usize::from(p.max_paths) {
                            p.paths_refused += 1;
                            continue;
                        }
                        let e = RouteEntry { attrs: id, received, peer: slot, flags: leak | table::ADD_PATH };
                        import::entry_after(attrs, paths, id, Some(pid), post, v.accept, e)
                    }
                    (pid, None) => match pid {
                        None => {
                            attrs.hold(id);
                            RouteEntry { attrs: id, received, peer: slot, flags: leak }
                        }
                        Some(pid) => {
                            let routes = table.get(a).unwrap_or_default();
                            let mine = routes.iter().filter(|e| e.peer == slot);
                            let known = mine.clone().any(|e| path_of(paths, e) == Some(pid));
                            if !known && mine.count() >= usize::from(p.max_paths) {
                                // A peer's paths for one prefix are bounded (max_paths_per_prefix).
                                p.paths_refused += 1;
                                continue;
                            }
                            let (r, new) = paths.hold(id, pid);
                            if new {
                                attrs.hold(id);
                            }
                            RouteEntry { attrs: r, received, peer: slot, flags: leak | table::ADD_PATH }
                        }
                    },
                };
                count_rov(rov, &entry, true);
                count_rejected(rejected, attrs, paths, &entry, true);
                let (old, routes) = table.insert_as(a, entry, |e| e.peer == slot && path_of(paths, e) == pid);
                let facts = |e: &RouteEntry| candidate(slots, attrs, paths, e);
                match old {
                    // A replaced route changes the set in two ways: decide again.
                    Some(_) => best::mark_best(decision, routes, facts),
                    // `insert_as` puts a new route last.
                    None => best::mark_best_after_insert(decision, routes, routes.len() - 1, facts),
                };
                match old {
                    Some(old) => {
                        if old.is_stale() {
                            // Announced again: no longer stale (RFC 4724 §4.2, RFC 7313 §4).
                            p.stale[a.family().index()] = p.stale[a.family().index()].saturating_sub(1);
                        }
                        count_rov(rov, &old, false);
                        count_rejected(rejected, attrs, paths, &old, false);
                        release_route(attrs, paths, old);
                    }
                    None => p.counts[a.family().index()] += 1,
                }
            }
            if let Some(r) = run {
                r.finish(attrs);
            }
            attrs.release_unused(id);
            if p.paths_refused > 0 && p.paths_refused_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                warn!(
                    "neighbor {}: {} paths refused so far: more than max_paths_per_prefix {} paths for one prefix",
                    p.label, p.paths_refused, p.max_paths
                );
                p.paths_refused_logged = Some(Instant::now());
            }
        }
        if let Some((limit, warn_only)) = p.max_prefixes {
            let count = p.routes();
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
            info!("neighbor {}: End-of-RIB for {f}, {} routes", p.label, p.counts[f.index()]);
        }
    }

    /// Take a new VRP table and validate again the routes inside the VRP prefixes that
    /// changed (RFC 6811 §2: a route's state depends only on the VRPs covering it), or every
    /// route when most of the table changed (the first table, a cache's reset).
    fn revalidate(&mut self, vrps: Arc<VrpTable>, mut changed: Vec<Prefix>) -> (u64, u64) {
        let aspas_changed = self.vrps.aspas != vrps.aspas;
        self.vrps = vrps;
        if aspas_changed {
            self.reverify_aspa();
        }
        // Peers whose import chain reads `rpki`: a route of theirs that flips is imported again.
        let rpki_slots = self.rpki_policy_slots();
        let mut reimport_at = Vec::new();
        let Rib { table, attrs, slots, paths, vrps, rov: counts, .. } = self;
        let started = Instant::now();
        let (mut seen, mut flipped) = (0u64, 0u64);
        let mut cover = Vec::new();
        // A prefix's covering VRPs are looked up once for all of its routes.
        let mut check = |prefix: Prefix, routes: &mut [RouteEntry]| {
            cover.clear();
            cover.extend(vrps.covering_iter(&prefix));
            for e in routes.iter_mut() {
                let local_as = slots.get(usize::from(e.peer)).copied().flatten().map_or(0, |s| s.local_as);
                let origin = attrs.summary(set_of(paths, e)).route_origin(local_as);
                let rov = RouteEntry::rov_bits(vrp::state_among(cover.iter().copied(), prefix.len(), origin));
                seen += 1;
                if e.flags & table::ROV_BITS != rov {
                    if rpki_slots.contains_key(&e.peer) && reimport_at.last() != Some(&prefix) {
                        reimport_at.push(prefix);
                    }
                    flipped += 1;
                    count_rov(counts, e, false);
                    e.flags = e.flags & !table::ROV_BITS | rov;
                    count_rov(counts, e, true);
                }
            }
        };
        let whole = changed.len() > REVALIDATE_WHOLE_TABLE;
        if whole {
            table.all_mut(&mut check);
        } else {
            // A changed prefix inside another changed one is walked with it, not again
            // (a covering prefix sorts before what it covers).
            changed.sort_unstable();
            let mut last: Option<Prefix> = None;
            for c in &changed {
                if last.is_some_and(|l| l.contains(c)) {
                    continue;
                }
                last = Some(*c);
                table.within_mut(c, &mut check);
            }
        }
        let reimported = self.reimport(&rpki_slots, Some(&reimport_at));
        if !reimported.is_empty() {
            let n: u64 = reimported.values().map(|c| c.now_accepted + c.now_rejected).sum();
            info!("rpki: import policy evaluated again at {} prefixes; {n} routes changed standing", reimport_at.len());
            if n > 0 {
                self.bmp_post_reset("a VRP change moved routes across the import policy");
            }
        }
        let vrps = &self.vrps;
        // A new serial or source time without a VRP change is no news.
        let level = if changed.is_empty() { log::Level::Debug } else { log::Level::Info };
        log::log!(
            level,
            "rpki: VRPs in use: {}; VRP prefixes changed: {}; routes validated again: {seen}{}; changed state: {flipped} ({} ms)",
            vrps.len(),
            changed.len(),
            if whole { " (the whole table)" } else { "" },
            started.elapsed().as_millis()
        );
        (seen, flipped)
    }

    /// The ASPA records changed: any route's verdict may have (a record speaks for every
    /// path through its customer), so the routes of peers whose import chain reads `aspa`
    /// are evaluated again, and exports whose chain reads it walk the Loc-RIB again.
    fn reverify_aspa(&mut self) {
        let slots = self.aspa_policy_slots();
        if !slots.is_empty() {
            let started = Instant::now();
            let out = self.reimport(&slots, None);
            let n: u64 = out.values().map(|c| c.now_accepted + c.now_rejected + c.modified).sum();
            info!(
                "rpki: ASPA records changed: import policy evaluated again for {} peers; {n} routes changed standing ({} ms)",
                slots.len(),
                started.elapsed().as_millis()
            );
            if n > 0 {
                self.bmp_post_reset("an ASPA change moved routes across the import policy");
            }
        }
        let exports_read = self.peers.values().any(|p| {
            p.session.is_some()
                && self.policy.reads_aspa(self.policy.chain(&p.address, crate::policy::Direction::Export))
        });
        if exports_read {
            self.export_rewalk();
        }
    }

    /// Take every route of a peer out of the table (session down, removal); the number taken.
    fn clear_routes(&mut self, peer: PeerId) -> u64 {
        let Some(p) = self.peers.get_mut(&peer) else { return 0 };
        let n = p.routes();
        p.counts = [0; 2];
        p.stale = [0; 2];
        p.gr = None;
        if n == 0 {
            return 0;
        }
        let slot = p.slot;
        let Rib { table, attrs, slots, paths, decision, .. } = self;
        let mut released = Vec::new();
        let mut on_removed = |old: RouteEntry, rest: &mut [RouteEntry]| {
            let gone = (old.is_best(), candidate(slots, attrs, paths, &old));
            best::mark_best_after_remove(decision, rest, gone, |e| candidate(slots, attrs, paths, e));
            released.push(old);
        };
        table.v4.remove_peer(slot, &mut on_removed);
        table.v6.remove_peer(slot, &mut on_removed);
        for old in released {
            release_route(attrs, paths, old);
        }
        if let Some(c) = self.rov.get_mut(usize::from(slot)) {
            *c = [0; 2];
        }
        if let Some(c) = self.rejected.get_mut(usize::from(slot)) {
            *c = [0; 2];
        }
        self.export_rewalk();
        n
    }

    /// RFC 7313 §4 BoRR: every route of the peer in `family` becomes stale until announced
    /// again; what is still stale at EoRR (or at the deadline) is removed.
    fn refresh_begin(&mut self, peer: PeerId, family: Family, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if p.session.is_none() {
            return;
        }
        if p.refresh_deadline[family.index()].is_some() {
            // A BoRR while one is pending neither marks again (routes announced since are
            // fresh; a flood of BoRRs costs no table walks) nor moves the deadline (repeated
            // BoRRs cannot keep stale routes forever).
            debug!("neighbor {}: BoRR for {family} while one is pending: ignored", p.label);
            return;
        }
        let n = match family {
            Family::Ipv4Unicast => self.table.v4.mark_peer(p.slot, table::STALE),
            Family::Ipv6Unicast => self.table.v6.mark_peer(p.slot, table::STALE),
        };
        p.refresh_deadline[family.index()] = Some(now + REFRESH_STALE_BOUND);
        p.stale[family.index()] = n;
        info!("neighbor {}: BoRR for {family}: {n} routes stale until EoRR", p.label);
    }

    /// RFC 7313 §4 EoRR (or its deadline): remove the peer's routes of `family` still stale.
    /// An EoRR without a BoRR before it is ignored.
    fn refresh_end(&mut self, peer: PeerId, family: Family, why: &str) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if p.refresh_deadline[family.index()].take().is_none() {
            debug!("neighbor {}: {why} for {family} without BoRR, ignored", p.label);
            return;
        }
        let slot = p.slot;
        let Rib { table, attrs, slots, paths, decision, rov, rejected, .. } = self;
        let mut released = Vec::new();
        let on_removed = |old: RouteEntry, rest: &mut [RouteEntry]| {
            let gone = (old.is_best(), candidate(slots, attrs, paths, &old));
            best::mark_best_after_remove(decision, rest, gone, |e| candidate(slots, attrs, paths, e));
            count_rov(rov, &old, false);
            count_rejected(rejected, attrs, paths, &old, false);
            released.push(old);
        };
        match family {
            Family::Ipv4Unicast => table.v4.remove_peer_where(slot, RouteEntry::is_stale, on_removed),
            Family::Ipv6Unicast => table.v6.remove_peer_where(slot, RouteEntry::is_stale, on_removed),
        }
        let n = released.len() as u64;
        for old in released {
            release_route(attrs, paths, old);
        }
        p.counts[family.index()] -= n;
        p.stale[family.index()] = p.stale[family.index()].saturating_sub(n);
        if n > 0 {
            self.export_rewalk();
        }
        let Some(p) = self.peers.get(&peer) else { return };
        info!("neighbor {}: {why} for {family}: {n} stale routes removed, {} kept", p.label, p.counts[family.index()]);
    }

    /// The earliest EoRR deadline of any peer.
    fn next_refresh_deadline(&self) -> Option<Instant> {
        let refresh = self.peers.values().flat_map(|p| p.refresh_deadline.iter().flatten()).min().copied();
        // Graceful restart timers (RFC 4724 §4.2) wake the same turn.
        refresh.into_iter().chain(self.gr_next_deadline()).min()
    }

    /// Sweep the families whose EoRR did not come in time.
    fn refresh_overdue(&mut self, now: Instant) {
        self.gr_due(now);
        let mut due = Vec::new();
        for (id, p) in &self.peers {
            for f in Family::ALL {
                if p.refresh_deadline[f.index()].is_some_and(|d| d <= now) {
                    due.push((*id, f));
                }
            }
        }
        for (id, f) in due {
            if let Some(p) = self.peers.get(&id) {
                warn!("neighbor {}: no EoRR for {f} within {} s of its BoRR", p.label, REFRESH_STALE_BOUND.as_secs());
            }
            self.refresh_end(id, f, "EoRR deadline");
        }
    }

    /// A free peer slot, growing the slot table if needed.
    fn free_slot(&mut self) -> Option<PeerSlot> {
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            return PeerSlot::try_from(i).ok();
        }
        let i = PeerSlot::try_from(self.slots.len()).ok()?;
        self.slots.push(None);
        Some(i)
    }

    fn session_up(&mut self, peer: PeerId, info: SessionInfo) {
        let prefixes = self.prefixes_for(peer);
        // Routes of an earlier session are gone (SessionDown), unless it ended in a graceful
        // restart (RFC 4724 §4.2: kept stale until End-of-RIB); make sure of it.
        if !self.gr_session_up(peer, &info, Instant::now()) {
            self.clear_routes(peer);
        }
        let Some(p) = self.peers.get_mut(&peer) else { return };
        if let Some(s) = self.slots.get_mut(usize::from(p.slot)).and_then(Option::as_mut) {
            s.ibgp = info.is_ibgp();
            s.local_as = info.local_as;
            s.router_id = info.remote_id;
        }
        p.adj_out = adj_rib_out(&p.label, &prefixes, &info);
        p.adj_out_since = Instant::now();
        p.updates_in = 0;
        p.max_paths = info.max_paths_per_prefix;
        p.paths_refused = 0;
        p.session = Some(info);
        // The export first: End-of-RIB waits for its walk of the Loc-RIB (RFC 4724 §2).
        self.export_session_up(peer);
        self.resend(peer, None);
    }

    /// Send the Adj-RIB-Out of one family (or of all negotiated ones), then End-of-RIB.
    fn resend(&mut self, peer: PeerId, only: Option<Family>) {
        // The closing End-of-RIB / EoRR goes after the routes of `[[sources]]`, if any.
        let sources_follow = !self.sources_for(peer).is_empty();
        // The exported learned routes are part of the Adj-RIB-Out a refresh asks for (RFC
        // 2918 §4; RFC 7313 §4: before EoRR, or the neighbor sweeps them as stale).
        let export_follows = self.exports.iter().any(|e| e.peer == peer);
        if let Some(family) = only.filter(|_| export_follows) {
            self.export_refresh(peer, family);
        }
        let mut close = Vec::new();
        let Some(p) = self.peers.get(&peer) else { return };
        let Some(info) = p.session.as_ref() else { return };
        let mut msgs = Vec::new();
        let mut sent = FamilyCounts::default();
        for family in info.families.iter().copied().filter(|f| only.is_none_or(|o| o == *f)) {
            // RFC 7313 §4: an answer to a refresh is bracketed by BoRR and EoRR when negotiated.
            let enhanced = only.is_some() && info.enhanced_route_refresh;
            if enhanced {
                msgs.push(frame::route_refresh_of(family, RefreshKind::Begin));
            }
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
                match update::build_announcements(family, &prefixes, route, info.four_octet_as, info.max_message_len) {
                    Ok(m) => msgs.extend(m),
                    Err(e) => error!("neighbor {}: cannot build UPDATE for {family}: {e}", p.label),
                }
                match family {
                    Family::Ipv4Unicast => sent.ipv4_unicast += prefixes.len() as u64,
                    Family::Ipv6Unicast => sent.ipv6_unicast += prefixes.len() as u64,
                }
            }
            if only.is_none() {
                close.push(update::end_of_rib(family));
            }
            if enhanced {
                close.push(frame::route_refresh_of(family, RefreshKind::End));
            }
        }
        // RFC 4724 §2: End-of-RIB ends the initial update: after the exported learned routes
        // (`export.rs`) when the session has an export, else after the sources' routes.
        if !sources_follow && !export_follows {
            msgs.append(&mut close);
        }
        debug!("neighbor {}: sending {} UPDATE messages", p.label, msgs.len());
        if !p.link.send_blocking(PeerMsg::Send { session: info.session, msgs, sent }, PEER_SEND_BOUND) {
            warn!("neighbor {}: peer thread gone or stuck, announcements not queued", p.label);
        }
        if export_follows && !close.is_empty() {
            self.export_takes_closing(peer, &mut close);
        }
        if sources_follow {
            self.announce_sources(peer, only, close);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn link() -> PeerLink {
        let poll = mio::Poll::new().expect("poll");
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
        let (tx, _rx) = crossbeam_channel::bounded(16);
        PeerLink::new(tx, crossbeam_channel::bounded(1).0, waker)
    }

    pub(super) fn rib_with_peers(n: u8) -> Rib {
        let mut rib = Rib::new(
            Vec::new(),
            RibOptions { router_id: Ipv4Addr::new(192, 0, 2, 1), mrt: None, rib_interval_secs: 0, sources: None },
        );
        for i in 1..=n {
            let address = IpAddr::from([127, 0, 0, i]);
            rib.handle(RibMsg::AddPeer {
                peer: u32::from(i),
                label: format!("p{i}"),
                address,
                name: None,
                remote_as: 65000 + u32::from(i),
                link: link(),
                max_prefixes: None,
            });
            rib.handle(RibMsg::SessionUp { peer: u32::from(i), info: session_info(i) });
        }
        rib
    }

    /// Session 1 of peer `i` (127.0.0.i, AS 65000 + i) with us at AS 65000: eBGP, both
    /// families, 4-octet AS numbers.
    pub(super) fn session_info(i: u8) -> SessionInfo {
        let address = IpAddr::from([127, 0, 0, i]);
        SessionInfo {
            session: 1,
            local_addr: IpAddr::from([127, 0, 0, 100]),
            remote_addr: address,
            local_as: 65000,
            remote_as: 65000 + u32::from(i),
            four_octet_as: true,
            families: Family::ALL.to_vec(),
            remote_id: Ipv4Addr::new(10, 0, 0, i),
            enhanced_route_refresh: true,
            max_message_len: 4096,
            role: None,
            add_path_rx: vec![],
            max_paths_per_prefix: 8,
            link_local: None,
            graceful: None,
        }
    }

    /// ORIGIN IGP, AS_PATH of `path_len` copies of `asn`, NEXT_HOP 192.0.2.2.
    pub(super) fn attrs(asn: u32, path_len: u8) -> Vec<u8> {
        let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 2 + 4 * path_len, 2, path_len];
        for _ in 0..path_len {
            a.extend_from_slice(&asn.to_be_bytes());
        }
        a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 2]);
        a
    }

    pub(super) fn announce(rib: &mut Rib, peer: PeerId, prefixes: &[&str], attrs: Vec<u8>) {
        let announced = prefixes.iter().map(|p| p.parse().expect("prefix")).collect();
        rib.apply_update(peer, ParsedUpdate { announced, attrs, ..Default::default() }, true);
    }

    pub(super) fn withdraw(rib: &mut Rib, peer: PeerId, prefixes: &[&str]) {
        let withdrawn = prefixes.iter().map(|p| p.parse().expect("prefix")).collect();
        rib.apply_update(peer, ParsedUpdate { withdrawn, ..Default::default() }, true);
    }

    pub(super) fn best_peer(rib: &Rib, prefix: &str) -> Option<PeerId> {
        let routes = rib.table.get(&prefix.parse().expect("prefix"))?;
        assert!(routes.iter().filter(|r| r.is_best()).count() <= 1, "at most one best");
        let best = routes.iter().find(|r| r.is_best())?;
        rib.slots[usize::from(best.peer)].map(|s| s.peer)
    }

    pub(super) fn prefixes_of(rib: &Rib, peer: PeerId) -> Vec<String> {
        let slot = rib.peers[&peer].slot;
        let mut v: Vec<String> = rib
            .table
            .walk(None)
            .filter(|(_, r)| r.iter().any(|e| e.peer == slot))
            .map(|(p, _)| p.to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn routes_not_announced_again_between_borr_and_eorr_are_swept() {
        let mut rib = rib_with_peers(2);
        announce(&mut rib, 1, &["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"], attrs(65001, 1));
        announce(&mut rib, 1, &["2001:db8::/32"], attrs(65001, 1));
        announce(&mut rib, 2, &["198.51.100.0/24"], attrs(65002, 2));
        let sets = rib.attrs.len();
        rib.handle(RibMsg::RefreshMark { peer: 1, family: Family::Ipv4Unicast, begin: true });
        assert!(rib.table.get(&"192.0.2.0/24".parse().unwrap()).unwrap()[0].is_stale());
        announce(&mut rib, 1, &["198.51.100.0/24"], attrs(65001, 1));
        rib.handle(RibMsg::RefreshMark { peer: 1, family: Family::Ipv4Unicast, begin: false });
        assert_eq!(prefixes_of(&rib, 1), ["198.51.100.0/24", "2001:db8::/32"], "IPv6 untouched");
        assert_eq!(prefixes_of(&rib, 2), ["198.51.100.0/24"], "the other peer untouched");
        assert_eq!(rib.peers[&1].counts, [1, 1]);
        assert_eq!(best_peer(&rib, "198.51.100.0/24"), Some(1));
        assert!(!rib.table.get(&"198.51.100.0/24".parse().unwrap()).unwrap().iter().any(|e| e.is_stale()));
        assert_eq!(rib.attrs.len(), sets, "no set leaked or lost");
    }

    #[test]
    fn an_eorr_without_borr_is_ignored_and_a_sweep_moves_the_best_path() {
        let mut rib = rib_with_peers(2);
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 3));
        rib.handle(RibMsg::RefreshMark { peer: 1, family: Family::Ipv4Unicast, begin: false });
        assert_eq!(prefixes_of(&rib, 1), ["192.0.2.0/24"]);
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(1));
        rib.handle(RibMsg::RefreshMark { peer: 1, family: Family::Ipv4Unicast, begin: true });
        rib.handle(RibMsg::RefreshMark { peer: 1, family: Family::Ipv4Unicast, begin: false });
        assert!(prefixes_of(&rib, 1).is_empty());
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(2), "the remaining route is best");
    }

    #[test]
    fn stale_routes_without_an_eorr_are_swept_at_the_bound_and_not_before() {
        let mut rib = rib_with_peers(1);
        announce(&mut rib, 1, &["192.0.2.0/24", "198.51.100.0/24"], attrs(65001, 1));
        let t0 = Instant::now();
        rib.refresh_begin(1, Family::Ipv4Unicast, t0);
        assert_eq!(rib.next_refresh_deadline(), Some(t0 + REFRESH_STALE_BOUND));
        rib.refresh_overdue(t0 + REFRESH_STALE_BOUND - Duration::from_secs(1));
        assert_eq!(prefixes_of(&rib, 1).len(), 2);
        rib.refresh_overdue(t0 + REFRESH_STALE_BOUND);
        assert!(prefixes_of(&rib, 1).is_empty());
        assert_eq!(rib.next_refresh_deadline(), None);
        assert!(rib.attrs.is_empty());
    }

    #[test]
    fn repeated_borrs_do_not_move_the_deadline() {
        let mut rib = rib_with_peers(1);
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        let t0 = Instant::now();
        rib.refresh_begin(1, Family::Ipv4Unicast, t0);
        announce(&mut rib, 1, &["198.51.100.0/24"], attrs(65001, 1));
        rib.refresh_begin(1, Family::Ipv4Unicast, t0 + Duration::from_secs(200));
        assert_eq!(rib.next_refresh_deadline(), Some(t0 + REFRESH_STALE_BOUND));
        rib.refresh_overdue(t0 + REFRESH_STALE_BOUND);
        assert_eq!(prefixes_of(&rib, 1), ["198.51.100.0/24"], "announced after the first BoRR: kept");
    }

    #[test]
    fn a_session_down_ends_a_pending_refresh() {
        let mut rib = rib_with_peers(1);
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        rib.handle(RibMsg::RefreshMark { peer: 1, family: Family::Ipv4Unicast, begin: true });
        rib.handle(RibMsg::SessionDown { peer: 1 });
        assert_eq!(rib.next_refresh_deadline(), None);
    }

    /// `rib_with_peers`, with ADD-PATH receive on peer 1's session for both families.
    fn rib_with_add_path(max_paths: u16) -> Rib {
        let mut rib = rib_with_peers(2);
        let p = rib.peers.get_mut(&1).unwrap();
        p.max_paths = max_paths;
        p.session.as_mut().unwrap().add_path_rx = Family::ALL.to_vec();
        rib
    }

    fn announce_path(rib: &mut Rib, peer: PeerId, prefix: &str, id: u32, attrs: Vec<u8>) {
        let u = ParsedUpdate {
            announced: vec![prefix.parse().unwrap()],
            announced_ids: vec![id],
            attrs,
            ..Default::default()
        };
        rib.apply_update(peer, u, true);
    }

    fn paths_of(rib: &Rib, prefix: &str) -> Vec<(PeerId, Option<u32>)> {
        let mut v: Vec<(PeerId, Option<u32>)> = rib
            .table
            .get(&prefix.parse().unwrap())
            .unwrap_or_default()
            .iter()
            .map(|e| (rib.slots[usize::from(e.peer)].unwrap().peer, path_of(&rib.paths, e)))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_add_path_peer_keeps_each_path_and_withdraws_them_by_identifier() {
        let mut rib = rib_with_add_path(8);
        announce_path(&mut rib, 1, "192.0.2.0/24", 1, attrs(65001, 3));
        announce_path(&mut rib, 1, "192.0.2.0/24", 2, attrs(65001, 1));
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 2));
        assert_eq!(paths_of(&rib, "192.0.2.0/24"), [(1, Some(1)), (1, Some(2)), (2, None)]);
        assert_eq!(rib.peers[&1].counts, [2, 0], "two paths, two routes");
        let best = rib.table.get(&"192.0.2.0/24".parse().unwrap()).unwrap().iter().find(|e| e.is_best()).copied();
        assert_eq!(best.and_then(|e| path_of(&rib.paths, &e)), Some(2), "the shorter path of the two");
        // Path 2 again with other attributes replaces path 2 only.
        announce_path(&mut rib, 1, "192.0.2.0/24", 2, attrs(65001, 4));
        assert_eq!(paths_of(&rib, "192.0.2.0/24"), [(1, Some(1)), (1, Some(2)), (2, None)]);
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(2), "now peer 2's 2-AS path is best");
        let u = ParsedUpdate {
            withdrawn: vec!["192.0.2.0/24".parse().unwrap()],
            withdrawn_ids: vec![1],
            ..Default::default()
        };
        rib.apply_update(1, u, true);
        assert_eq!(paths_of(&rib, "192.0.2.0/24"), [(1, Some(2)), (2, None)]);
        rib.handle(RibMsg::SessionDown { peer: 1 });
        assert_eq!(paths_of(&rib, "192.0.2.0/24"), [(2, None)]);
        assert_eq!((rib.paths.len(), rib.attrs.len()), (0, 1), "pairs and sets given back");
    }

    #[test]
    fn paths_past_max_paths_per_prefix_are_refused_and_counted() {
        let mut rib = rib_with_add_path(2);
        for id in 1..=5 {
            announce_path(&mut rib, 1, "192.0.2.0/24", id, attrs(65001, 1));
        }
        assert_eq!(paths_of(&rib, "192.0.2.0/24"), [(1, Some(1)), (1, Some(2))]);
        assert_eq!(rib.peers[&1].paths_refused, 3);
        announce_path(&mut rib, 1, "192.0.2.0/24", 2, attrs(65001, 2));
        assert_eq!(rib.peers[&1].paths_refused, 3, "a known path is replaced, not refused");
    }

    #[test]
    fn a_snapshot_puts_add_path_routes_in_an_rfc_8050_record_after_the_plain_one() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut rib = rib_with_add_path(8);
        rib.opts.mrt = Some(MrtLink::new(tx, false));
        announce_path(&mut rib, 1, "192.0.2.0/24", 7, attrs(65001, 1));
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 1));
        assert!(rib.begin_snapshot(SystemTime::now()));
        while rib.snapshot.is_some() {
            rib.snapshot_step();
        }
        let mut records = Vec::new();
        while let Ok(m) = rx.try_recv() {
            if let crate::msg::MrtMsg::SnapshotChunk { records: r, .. } = m {
                records.extend(r);
            }
        }
        let mut starts = Vec::new();
        let mut at = 0;
        while at + 12 <= records.len() {
            starts.push(at);
            at += 12 + u32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
        }
        let subtypes: Vec<u16> = starts.iter().map(|&a| u16::from_be_bytes([records[a + 6], records[a + 7]])).collect();
        assert_eq!(subtypes, [1, 2, 8], "the peer index, RIB_IPV4_UNICAST, then RIB_IPV4_UNICAST_ADDPATH");
        // RFC 8050 §4: sequence, 192.0.2.0/24, one entry: peer index, originated, path id 7.
        let body = &records[starts[2] + 12..];
        assert_eq!(&body[4..10], &[24, 192, 0, 2, 0, 1]);
        assert_eq!(&body[16..20], &7u32.to_be_bytes());
        // bgpkit-parser reads both records, the ADD-PATH entry with its path id.
        use bgpkit_parser::models::{MrtMessage, TableDumpV2Message};
        let mut ids = Vec::new();
        for r in bgpkit_parser::BgpkitParser::from_reader(&records[..]).into_record_iter() {
            if let MrtMessage::TableDumpV2Message(TableDumpV2Message::RibAfi(e)) = r.message {
                ids.extend(e.rib_entries.iter().map(|x| x.path_id));
            }
        }
        assert_eq!(ids, [None, Some(7)]);
    }

    #[test]
    fn a_route_leak_keeps_its_mark_and_an_announcement_again_clears_it() {
        let mut rib = rib_with_peers(1);
        let p: Prefix = "192.0.2.0/24".parse().unwrap();
        let u = ParsedUpdate { announced: vec![p], attrs: attrs(65001, 1), otc_leak: true, ..Default::default() };
        rib.apply_update(1, u, true);
        let e = rib.table.get(&p).unwrap()[0];
        assert!(e.is_otc_leak() && e.is_best());
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        assert!(!rib.table.get(&p).unwrap()[0].is_otc_leak());
    }

    #[test]
    fn the_best_path_follows_every_announcement_and_withdrawal() {
        let mut rib = rib_with_peers(3);
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 3));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(1));
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 2));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(2), "the shorter AS_PATH");
        announce(&mut rib, 3, &["192.0.2.0/24"], attrs(65003, 2));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(2), "same length: the lower router id");
        withdraw(&mut rib, 2, &["192.0.2.0/24"]);
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(3));
        announce(&mut rib, 3, &["192.0.2.0/24"], attrs(65003, 5));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(1), "an implicit withdrawal makes 3 longer");
        rib.handle(RibMsg::SessionDown { peer: 1 });
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(3), "session down picks the next best");
        withdraw(&mut rib, 3, &["192.0.2.0/24"]);
        assert!(rib.table.get(&"192.0.2.0/24".parse().expect("prefix")).is_none(), "the prefix left the table");
    }

    #[test]
    fn attribute_sets_are_freed_when_their_last_route_goes_and_memory_does_not_grow_with_churn() {
        let mut rib = rib_with_peers(2);
        for round in 0..50u32 {
            announce(&mut rib, 1, &["10.0.0.0/8", "10.1.0.0/16"], attrs(65001 + round % 7, 2));
            announce(&mut rib, 2, &["10.0.0.0/8"], attrs(65001 + round % 7, 2));
            assert!(rib.attrs.len() <= 2, "round {round}: {} sets", rib.attrs.len());
            withdraw(&mut rib, 1, &["10.1.0.0/16"]);
        }
        assert_eq!(rib.attrs.len(), 1, "peers 1 and 2 share one set");
        withdraw(&mut rib, 1, &["10.0.0.0/8"]);
        assert_eq!(rib.attrs.len(), 1);
        rib.handle(RibMsg::SessionDown { peer: 2 });
        assert_eq!((rib.attrs.len(), rib.table.routes(), rib.table.v4.prefixes()), (0, 0, 0));
        assert_eq!(rib.summary().routes, FamilyCounts::default());
    }

    #[test]
    fn a_route_stream_that_is_not_read_waits_without_blocking_the_rib_and_ends_when_its_reader_goes() {
        use crate::control::proto::StreamItem;
        use crate::msg::{RouteQuery, RouteTarget, ROUTE_STREAM_CHUNKS};
        let mut rib = rib_with_peers(1);
        let prefixes: Vec<String> = (0..3000u32).map(|i| format!("10.{}.{}.0/24", i >> 8, i & 0xff)).collect();
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        announce(&mut rib, 1, &refs, attrs(65001, 1));
        let q = RouteQuery {
            peer: Some(1),
            target: RouteTarget::All,
            filter: Default::default(),
            detail: false,
            count_only: false,
        };
        let (tx, rx) = crossbeam_channel::bounded(ROUTE_STREAM_CHUNKS);
        rib.handle(RibMsg::Routes(q.clone(), tx));
        for _ in 0..100 {
            rib.streams_step(); // returns at once although nobody reads
        }
        assert_eq!((rx.len(), rib.streams.len()), (ROUTE_STREAM_CHUNKS, 1));
        drop(rx);
        rib.streams_step();
        assert!(rib.streams.is_empty(), "a reader that went away ends its stream");

        let (tx, rx) = crossbeam_channel::bounded(ROUTE_STREAM_CHUNKS);
        rib.handle(RibMsg::Routes(q, tx));
        let mut seen = Vec::new();
        let mut end = None;
        for _ in 0..1000 {
            rib.streams_step();
            while let Ok(item) = rx.try_recv() {
                match item {
                    StreamItem::Data(d) => {
                        seen.extend(d.into_iter().filter_map(|v| v["prefix"].as_str().map(String::from)))
                    }
                    StreamItem::End(e) => end = Some(e),
                }
            }
            if end.is_some() {
                break;
            }
        }
        let mut want = prefixes.clone();
        want.sort_by_key(|p| p.parse::<Prefix>().ok());
        assert_eq!(seen, want, "every route once, in prefix order");
        assert_eq!(end.and_then(|e| e.ok()).map(|v| v["count"].clone()), Some(serde_json::json!(3000)));
        assert!(rib.streams.is_empty());
    }

    #[test]
    fn a_snapshot_is_byte_for_byte_the_merge_of_every_peers_routes_in_prefix_order() {
        use crate::mrt::record::{self as mrt_record, RibEntry};
        use crate::msg::MrtMsg;
        use std::collections::BTreeMap;
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let mut rib = rib_with_peers(3);
        rib.opts.mrt = Some(MrtLink::new(tx, false));
        // The reference: per prefix, (peer index, attributes) as the old per-peer maps held them.
        let mut model: BTreeMap<Prefix, BTreeMap<u16, Vec<u8>>> = BTreeMap::new();
        let mut x: u32 = 7;
        for i in 0..5000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let peer = 1 + (x >> 16) % 3;
            let p = if i % 5 == 0 {
                format!("2001:db8:{:x}::/48", (x >> 8) % 700)
            } else {
                format!("10.{}.{}.0/24", (x >> 20) % 8, (x >> 12) % 256)
            };
            let a = attrs(65000 + peer, 1 + (x % 3) as u8);
            if (x >> 4) % 4 == 0 {
                withdraw(&mut rib, peer, &[&p]);
                model.entry(p.parse().expect("prefix")).or_default().remove(&((peer - 1) as u16));
            } else {
                announce(&mut rib, peer, &[&p], a.clone());
                model.entry(p.parse().expect("prefix")).or_default().insert((peer - 1) as u16, a);
            }
        }
        model.retain(|_, m| !m.is_empty());
        assert!(rib.begin_snapshot(SystemTime::now()));
        while rib.snapshot.is_some() {
            rib.snapshot_step();
        }
        let mut got = Vec::new();
        let mut timestamp = 0;
        for m in rx.try_iter() {
            if let MrtMsg::SnapshotChunk { records, timestamp: t, .. } = m {
                timestamp = t;
                got.extend(records);
            }
        }
        let mut want = Vec::new();
        for (seq, (prefix, routes)) in (0u32..).zip(&model) {
            let mut bufs = Vec::new();
            for (i, a) in routes {
                let mut b = Vec::new();
                mrt_record::td2_attributes(a, true, None, &mut b);
                let received =
                    rib.table.get(prefix).and_then(|rs| rs.iter().find(|r| r.peer == *i)).map(|r| r.received);
                bufs.push((*i, received.expect("in the table"), b));
            }
            let entries: Vec<RibEntry> = bufs
                .iter()
                .map(|(i, t, b)| RibEntry { peer_index: *i, originated: *t, path_id: None, attrs: b })
                .collect();
            mrt_record::rib_entry_record(timestamp, seq, prefix, &entries, &mut want);
        }
        assert!(model.len() > 1000 && model.keys().any(|p| p.family() == Family::Ipv6Unicast), "{}", model.len());
        // `got` starts with the PEER_INDEX_TABLE; compare what follows it.
        let index_len = 12 + u32::from_be_bytes([got[8], got[9], got[10], got[11]]) as usize;
        assert_eq!(got.len() - index_len, want.len());
        assert!(got[index_len..] == want[..], "RIB records differ from the reference merge");
    }

    #[test]
    fn a_removed_peer_gives_its_slot_back_and_its_routes_leave() {
        let mut rib = rib_with_peers(2);
        announce(&mut rib, 1, &["2001:db8::/32"], attrs(65001, 1));
        rib.handle(RibMsg::RemovePeer { peer: 1 });
        assert!(rib.table.get(&"2001:db8::/32".parse().expect("prefix")).is_none());
        assert_eq!(rib.attrs.len(), 0);
        let before = rib.slots.len();
        rib.handle(RibMsg::AddPeer {
            peer: 9,
            label: "p9".into(),
            address: IpAddr::from([127, 0, 0, 9]),
            name: None,
            remote_as: 65009,
            link: link(),
            max_prefixes: None,
        });
        assert_eq!(rib.slots.len(), before, "the free slot is used again");
    }

    #[test]
    fn a_vrp_change_validates_again_only_the_routes_inside_the_changed_vrp_prefixes() {
        use crate::rpki::vrp::{RovState, Vrp};
        let mut rib = rib_with_peers(2);
        // 256 /24s under 10.0.0.0/16 and 256 under 10.1.0.0/16, from two peers: 1,024 routes.
        let all: Vec<String> = (0..2).flat_map(|b| (0..256).map(move |c| format!("10.{b}.{c}.0/24"))).collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        announce(&mut rib, 1, &refs, attrs(65001, 1));
        announce(&mut rib, 2, &refs, attrs(65002, 1));
        let vrp = |p: &str, max_len, asn| Vrp { prefix: p.parse().expect("prefix"), max_len, asn };
        let set: crate::rpki::vrp::VrpSet = [vrp("10.0.0.0/16", 24, 65001)].into_iter().collect();
        let first = Arc::new(VrpTable::from_sets([&set]));
        let changed = first.changed_prefixes(&VrpTable::default());
        assert_eq!(rib.revalidate(first.clone(), changed), (512, 512), "the /16's routes only, all now decided");
        let state = |rib: &Rib, p: &str| -> Vec<RovState> {
            rib.table.get(&p.parse().expect("prefix")).expect("routes").iter().map(|e| e.rov()).collect()
        };
        assert_eq!(state(&rib, "10.0.7.0/24"), [RovState::Valid, RovState::Invalid]);
        assert_eq!(state(&rib, "10.1.7.0/24"), [RovState::NotFound, RovState::NotFound]);
        // A VRP for one /24 of the other /16 arrives: two routes to look at, one flips.
        let mut more = set.clone();
        more.apply([vrp("10.1.7.0/24", 24, 65002)], []);
        let second = Arc::new(VrpTable::from_sets([&more]));
        let changed = second.changed_prefixes(&first);
        assert_eq!(rib.revalidate(second, changed), (2, 2));
        assert_eq!(state(&rib, "10.1.7.0/24"), [RovState::Invalid, RovState::Valid]);
        // New routes are validated as they arrive.
        announce(&mut rib, 1, &["10.0.0.0/25"], attrs(65001, 1));
        assert_eq!(state(&rib, "10.0.0.0/25"), [RovState::Invalid], "longer than the VRP's maxLength");
        // The summary's counts follow every change without a walk of the table.
        let total = rib.summary().rov.expect("rov counts");
        assert_eq!((total.valid, total.invalid, total.not_found), (257, 258, 510));
        withdraw(&mut rib, 1, &["10.0.0.0/25", "10.0.7.0/24"]);
        rib.handle(RibMsg::SessionDown { peer: 2 });
        let s = rib.summary();
        let total = s.rov.expect("rov counts");
        assert_eq!((total.valid, total.invalid, total.not_found), (255, 1, 255));
        assert_eq!(s.peers[1].rov.map(|r| (r.valid, r.invalid, r.not_found)), Some((0, 0, 0)));
    }
}
