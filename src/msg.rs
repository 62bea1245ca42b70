//! Every message that crosses a thread boundary, and the links and ids they travel with.
//!
//! One enum per receiving thread, named after it (`PeerMsg` to a peer thread, `RibMsg` to the
//! RIB thread, `MrtMsg` to the MRT writer, `ListenerMsg` to the listener, `DestMsg` to a
//! replication thread). Thread modules (`session`, `rib`, `mrt::writer`, `archive`,
//! `listener`, `control`, `daemon`) depend on this module and on the pure codecs (`wire`,
//! `prefix`, `config`, `control::proto`), never on each other, so no two modules import
//! each other.
//!
//! Delivery: a link's `send` never blocks a peer thread (the MRT link counts what it drops;
//! a peer's inbox refuses when full), except where a message must arrive, which is said at
//! the method.

use crate::config::{ArchiveConfig, PeerConfig, PrefixConfig, RpkiConfig, SourceConfig};
use crate::control::proto::{
    ActionResult, ArchiveStatus, CtlError, DestinationStatus, FamilyCounts, MonitorStatus, PeerDetail, PeerSummary,
    ReloadReport, RpkiLookup, RpkiStatus, SourceStatus, StreamItem,
};
use crate::prefix::{Family, Prefix};
/// ASPA verdicts (the RIB computes them from the table the RTR thread hands over).
pub use crate::rpki::aspa::{AspaState, AspaTable, Direction as AspaDirection};
/// The VRP table and validation states travel from the RTR thread to the RIB.
pub use crate::rpki::vrp::{self, RovState, VrpSource, VrpTable};
use crate::wire::notify::CeaseSubcode;
use crate::wire::role::Role;
use crate::wire::update::{AddPath, ParsedUpdate};
use bytes::Bytes;
use crossbeam_channel::{Sender, TrySendError};
use log::warn;
use mio::Waker;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Stable identifier of a configured peer (survives reloads).
pub type PeerId = u32;

/// Number of one Established session of a peer; messages built for an older session are
/// recognised and dropped.
pub type SessionId = u64;

/// One TCP connection of a peer thread, numbered from 1 in the order the thread met them
/// (RFC 4271 §6.8: a peer may have two at once). The FSM knows connections only by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A reply channel for a request that can fail.
pub type Reply<T> = Sender<Result<T, CtlError>>;

// ---------------------------------------------------------------------------------------------
// Peer threads

/// Capacity of a peer's inbox.
pub const INBOX_CAPACITY: usize = 1024;

/// Messages to a peer thread.
#[derive(Debug)]
pub enum PeerMsg {
    /// A connection from this peer's address, accepted by the listener.
    Incoming(std::net::TcpStream),
    /// UPDATEs built by the RIB for session `session` (stale ones are dropped).
    Send {
        session: SessionId,
        msgs: Vec<Vec<u8>>,
        sent: FamilyCounts,
    },
    Summary(Sender<PeerSummary>),
    Status(Sender<PeerDetail>),
    /// `focl peer reset`: Cease / Administrative Reset, then start again.
    Reset(Reply<ActionResult>),
    /// `focl peer refresh`: send ROUTE-REFRESH for the family (both negotiated when `None`).
    Refresh(Option<Family>, Reply<ActionResult>),
    /// From the RIB: the peer sent more prefixes than `max_prefixes` allows.
    MaxPrefixes {
        count: u64,
    },
    /// `focl peer disable`: Cease / Administrative Shutdown, then stay down.
    Disable(Reply<ActionResult>),
    /// `focl peer enable`: start again after `Disable`.
    Enable(Reply<ActionResult>),
    /// focld stops for a planned restart (SIGUSR2): with `graceful_restart = "on"` and the
    /// capability negotiated, close the session without a NOTIFICATION so the peer keeps our
    /// routes (RFC 4724 §4.1); otherwise as a plain stop. The thread ends either way.
    GracefulStop,
}

/// End a peer thread, after a Cease with this subcode and communication on a live session.
/// Travels apart from the inbox (`PeerLink::stop`), so a full inbox cannot lose it.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerStop(pub CeaseSubcode, pub Option<String>);

/// How long a message that must arrive waits for room in a peer's inbox. The peer thread
/// keeps taking its inbox while it waits for the RIB, so only a stuck thread makes this run out.
pub const PEER_SEND_BOUND: Duration = Duration::from_secs(10);

/// How other threads reach a peer thread: its inbox, a one-place stop slot, and the waker of
/// its poll loop.
#[derive(Clone, Debug)]
pub struct PeerLink {
    tx: Sender<PeerMsg>,
    stop_tx: Sender<PeerStop>,
    waker: Arc<Waker>,
    /// Bytes the peer thread has queued on its connections and not yet written, as it last
    /// saw them: a bulk sender (a source's table) hands over the next batch only when this
    /// and the inbox are low, so memory stays bounded whatever the neighbor's pace.
    out_queued: Arc<AtomicUsize>,
    /// UPDATEs handed to the peer thread in `PeerMsg::Send` so far; the peer thread counts
    /// the UPDATEs it takes the same way, which is how a BMP Adj-RIB-Out dump and the live
    /// feed of what was sent meet (RFC 8671).
    updates_queued: Arc<AtomicU64>,
}

/// The UPDATEs among the messages of a `PeerMsg::Send` (RFC 4271 §4.1 type 2).
pub fn updates_in(msgs: &[Vec<u8>]) -> u64 {
    msgs.iter().filter(|m| m.get(18) == Some(&2)).count() as u64
}

impl PeerLink {
    pub fn new(tx: Sender<PeerMsg>, stop_tx: Sender<PeerStop>, waker: Arc<Waker>) -> PeerLink {
        PeerLink {
            tx,
            stop_tx,
            waker,
            out_queued: Arc::new(AtomicUsize::new(0)),
            updates_queued: Arc::new(AtomicU64::new(0)),
        }
    }

    /// UPDATEs queued for the peer thread so far (`updates_in` of every `PeerMsg::Send`).
    pub fn updates_queued(&self) -> u64 {
        self.updates_queued.load(Ordering::Relaxed)
    }

    fn count_updates(&self, n: u64) {
        if n > 0 {
            self.updates_queued.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The counter the peer thread keeps `out_queued` in.
    pub fn out_queued_counter(&self) -> Arc<AtomicUsize> {
        self.out_queued.clone()
    }

    /// Whether a bulk sender may hand over another batch: few messages wait in the inbox
    /// and less than `max_bytes` wait to be written.
    pub fn has_room_for_bulk(&self, max_inbox: usize, max_bytes: usize) -> bool {
        self.tx.len() < max_inbox && self.out_queued.load(Ordering::Relaxed) < max_bytes
    }

    /// Queue a message without blocking; false when the inbox is full or the thread is gone.
    /// For questions and requests whose asker hears about a refusal.
    pub fn send(&self, msg: PeerMsg) -> bool {
        let n = match &msg {
            PeerMsg::Send { msgs, .. } => updates_in(msgs),
            _ => 0,
        };
        match self.tx.try_send(msg) {
            Ok(()) => {
                self.count_updates(n);
                let _ = self.waker.wake();
                true
            }
            Err(_) => false,
        }
    }

    /// Queue a message that must arrive (UPDATEs to send, a max-prefix decision): waits for
    /// room, at most `within`; false only when the thread is gone or stuck that long.
    pub fn send_blocking(&self, msg: PeerMsg, within: Duration) -> bool {
        let _ = self.waker.wake(); // a thread that is asleep makes room sooner
        let n = match &msg {
            PeerMsg::Send { msgs, .. } => updates_in(msgs),
            _ => 0,
        };
        let ok = self.tx.send_timeout(msg, within).is_ok();
        if ok {
            self.count_updates(n);
        }
        let _ = self.waker.wake();
        ok
    }

    /// Ask the thread to stop. The slot holds one stop; a second finds it taken, which is
    /// as good. False only when the thread is gone.
    pub fn stop(&self, stop: PeerStop) -> bool {
        let ok = match self.stop_tx.try_send(stop) {
            Ok(()) | Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Disconnected(_)) => false,
        };
        let _ = self.waker.wake();
        ok
    }
}

// ---------------------------------------------------------------------------------------------
// RIB thread

/// Capacity of the RIB's inbox; a full inbox makes peer threads stop reading their sockets.
pub const RIB_CHANNEL_CAPACITY: usize = 4096;

/// What a peer thread tells the RIB when its session reaches Established.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    pub session: SessionId,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    pub local_as: u32,
    pub remote_as: u32,
    pub four_octet_as: bool,
    pub families: Vec<Family>,
    /// The peer's BGP identifier (for the TABLE_DUMP_V2 peer index).
    pub remote_id: Ipv4Addr,
    /// RFC 7313 negotiated: a refresh we answer is bracketed by BoRR and EoRR.
    pub enhanced_route_refresh: bool,
    /// The largest message we may send (4096, or 65,535 with RFC 8654).
    pub max_message_len: usize,
    /// Our BGP Role on the session (RFC 9234), for the OTC egress rule.
    pub role: Option<Role>,
    /// Families whose NLRI from the peer carry path identifiers (RFC 7911).
    pub add_path_rx: Vec<Family>,
    /// ADD-PATH: the most paths kept for one prefix from this peer.
    pub max_paths_per_prefix: u16,
    /// RFC 2545 §3: the link-local address of our interface when the neighbor is on its
    /// subnet, sent beside our global address as the IPv6 next hop.
    pub link_local: Option<std::net::Ipv6Addr>,
    /// Graceful restart negotiated (RFC 4724 §4.2): how the RIB keeps the peer's routes
    /// when it restarts.
    pub graceful: Option<crate::wire::graceful::HelperTimes>,
}

impl SessionInfo {
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }
}

/// Questions the control thread asks the RIB.
#[derive(Clone, Debug, PartialEq)]
pub enum RibQuery {
    Summary,
    /// `focl source list|status`: every source, or the one named.
    Sources(Option<String>),
    /// A route query answered in one piece: `{"count": N, "routes": [...]}` plus `peer` or
    /// `matched`; refused past `rib::MAX_ROUTES_SHOWN` routes.
    Routes(RouteQuery),
    Out {
        peer: PeerId,
    },
    /// (received, sent) route counts of a peer.
    Counts {
        peer: PeerId,
    },
    /// Every peer's received route counts, `[[id, counts], ...]`: one turn of the RIB for
    /// `focl peer list` and `focl status`, however many peers.
    ReceivedCounts,
    /// (stale route counts, graceful restart in progress) of a peer (RFC 4724).
    Graceful {
        peer: PeerId,
    },
    /// `focl policy explain`: the import decision on the peer's routes for exactly `prefix`.
    PolicyExplain {
        peer: PeerId,
        prefix: Prefix,
    },
}

/// Which prefixes a route query walks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteTarget {
    /// Every prefix of both families.
    All,
    /// The prefix and every prefix inside it.
    Within(Prefix),
    /// The longest prefix that covers this one (a host route for a bare address), with its
    /// more specifics (`more`) and the prefixes that cover it (`less`).
    Longest { of: Prefix, more: bool, less: bool },
}

/// A route query's filters, parsed (see `control::proto::RouteFilter`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMatch {
    pub origin: Option<u32>,
    pub path_as: Option<u32>,
    /// RFC 1997 community as its 32-bit value.
    pub community: Option<u32>,
    /// RFC 8092 large community.
    pub large_community: Option<[u32; 3]>,
    pub peer_as: Option<u32>,
    pub best: bool,
    pub rpki: Option<RovState>,
    /// The route's effective ASPA verdict (`AspaVerdict::state`).
    pub aspa: Option<AspaState>,
    /// Only routes the import policy rejected.
    pub rejected: bool,
}

/// `focl rib in` / `focl rib lookup`, answered as a stream of routes in prefix order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteQuery {
    /// Only this peer's routes (rib in); every peer's when `None`.
    pub peer: Option<PeerId>,
    pub target: RouteTarget,
    pub filter: RouteMatch,
    /// Every attribute decoded (`RouteDetail`) instead of the summary (`Route`).
    pub detail: bool,
    /// Count only: no data, the end says `{"count": N}`.
    pub count_only: bool,
}

/// Capacity of a route stream's channel, in chunks: the RIB writes a chunk only when there is
/// room, so a slow reader pauses its own stream and never the RIB.
pub const ROUTE_STREAM_CHUNKS: usize = 4;

/// `focl blackhole`: announce (to every neighbor, or one) or withdraw a blackhole route, or list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlackholeOp {
    Add(Prefix, Option<PeerId>),
    Del(Prefix, Option<PeerId>),
    List,
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
    /// A received UPDATE; its AS numbers are 4 octets whatever the session (a 2-octet
    /// session's paths are converted at ingest, RFC 6793 §4.2.3, by `wire::update`).
    Update {
        peer: PeerId,
        update: ParsedUpdate,
    },
    /// The peer sent ROUTE-REFRESH: resend the Adj-RIB-Out of that family (RFC 2918 §4).
    Refresh {
        peer: PeerId,
        family: Family,
    },
    /// RFC 7313 §4: BoRR (`begin`) marks the peer's routes of the family stale; EoRR removes
    /// those not announced again since.
    RefreshMark {
        peer: PeerId,
        family: Family,
        begin: bool,
    },
    /// A new VRP table from the RTR thread (RFC 6811), with the VRP prefixes whose VRPs
    /// changed: the routes inside them are validated again, no others.
    Vrps {
        table: Arc<VrpTable>,
        changed: Vec<Prefix>,
    },
    Query(RibQuery, Reply<serde_json::Value>),
    /// A route query, answered in chunks on the channel (capacity `ROUTE_STREAM_CHUNKS`);
    /// dropping the receiver cancels it.
    Routes(RouteQuery, Sender<StreamItem>),
    /// `focl archive snapshot`: write a TABLE_DUMP_V2 file of every Adj-RIB-In now.
    Snapshot(Reply<serde_json::Value>),
    /// Reload: the peer is no longer configured (its thread is stopped); forget its routes.
    RemovePeer {
        peer: PeerId,
    },
    /// Reload: the prefixes to announce; the differences are announced and withdrawn on every
    /// Established session, without resetting any.
    SetPrefixes(Vec<PrefixConfig>),
    /// Start and reload: the configured `[[sources]]`. A removed or changed source's routes
    /// are withdrawn; a new or changed one is handed to the source thread to read.
    SetSources(Vec<SourceConfig>),
    /// From the source thread: a source's file was read (or could not be). Applied only
    /// while `cfg` is still the source's configuration; `reply` answers `focl source reload`.
    SourceLoaded {
        cfg: SourceConfig,
        result: Result<Arc<SourceTable>, String>,
        reply: Option<Reply<SourceStatus>>,
    },
    /// `focl source reload NAME`: read the file again (answered once it is read).
    SourceReload(String, Reply<SourceStatus>),
    /// Start and reload: the import and export policies and every peer's chains (issue 17).
    /// The routes of peers whose import chain changed are evaluated again from their
    /// pre-policy attributes; the reply (reload) says what changed, peer by peer.
    SetPolicy(Arc<crate::policy::Engine>, Option<Reply<Vec<crate::control::proto::PolicyChange>>>),
    /// `focl blackhole add|del|list` (RFC 7999): answered with the list of blackhole routes.
    Blackhole(BlackholeOp, Reply<serde_json::Value>),
    Stop,
    /// The session left Established as a graceful restart (RFC 4724 §4.2, RFC 8538): keep
    /// the peer's routes of the families it negotiated as stale instead of removing them.
    SessionStale {
        peer: PeerId,
    },
    /// From the BMP thread: the Adj-RIB-In of these peers as UPDATEs, for a station that
    /// connected (RFC 7854 §5: the initial dump), each with how many UPDATEs of its session
    /// are in it, so the live feed takes over without a gap or a duplicate. Answered in
    /// chunks, each sent when `reply` (bounded) has room.
    BmpDump {
        peers: Vec<PeerId>,
        /// Which views to rebuild besides the pre-policy Adj-RIB-In.
        views: BmpDumpViews,
        reply: Sender<BmpDump>,
    },
    /// From the BMP thread: where the post-policy Adj-RIB-In changes go (RFC 7854 §2, the L
    /// flag); `None` while no station monitors post-policy.
    BmpPostPolicy(Option<BmpLink>),
    /// From the BMP thread: start (or start again) the Loc-RIB feed of a station connection
    /// (RFC 9069): every best path, then every change of one.
    BmpLocRib(BmpLocRibFeed),
}

/// The views `RibMsg::BmpDump` rebuilds besides the pre-policy Adj-RIB-In.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BmpDumpViews {
    /// The Adj-RIB-In as received (RFC 7854 §2).
    pub pre_policy: bool,
    /// The Adj-RIB-In after import policy (RFC 7854 §2).
    pub post_policy: bool,
    /// What focld sent the peer (RFC 8671 post-policy Adj-RIB-Out).
    pub adj_rib_out: bool,
}

/// A Loc-RIB feed for one station connection (RFC 9069), run by the RIB.
#[derive(Clone, Debug)]
pub struct BmpLocRibFeed {
    pub station: u64,
    pub conn: u64,
    /// The families the station wants (empty: all).
    pub families: Vec<Family>,
    pub link: BmpLink,
    /// Bytes waiting for the station (kept by the BMP thread): the walk of the whole Loc-RIB
    /// goes on only while fewer than `room` wait, so a slow station does not make the dump
    /// pile up.
    pub waiting: Arc<AtomicUsize>,
    pub room: usize,
    /// The station's current connection (kept by the BMP thread; 0: none): the feed ends
    /// when it is no longer `conn`.
    pub live: Arc<AtomicU64>,
}

// ---------------------------------------------------------------------------------------------
// MRT writer thread

/// Records queued for the writer before peers start dropping (never blocking them).
pub const MRT_CHANNEL_CAPACITY: usize = 65_536;

/// Who a session is between, for the BGP4MP header (RFC 6396 §4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionAddrs {
    pub peer_as: u32,
    pub local_as: u32,
    pub peer_ip: IpAddr,
    pub local_ip: IpAddr,
}

/// Messages to the MRT writer.
#[derive(Debug)]
pub enum MrtMsg {
    /// A received BGP message, header included, as it came off the wire.
    Message {
        ts: SystemTime,
        as4: bool,
        /// The message's NLRI carry ADD-PATH path identifiers (RFC 8050 _ADDPATH subtypes).
        add_path: bool,
        session: SessionAddrs,
        raw: Bytes,
    },
    /// An FSM transition (RFC 6396 state numbers).
    StateChange {
        ts: SystemTime,
        session: SessionAddrs,
        from: u16,
        to: u16,
    },
    /// Start a RIB snapshot file for the interval starting at `start`; `vrps`, the VRPs in
    /// effect when RPKI is in use, are archived beside it.
    SnapshotBegin {
        start: SystemTime,
        vrps: Option<Arc<VrpTable>>,
    },
    /// Encoded TABLE_DUMP_V2 records of the snapshot in progress, with the first one's time.
    SnapshotChunk {
        records: Vec<u8>,
        count: u64,
        timestamp: u32,
    },
    /// The snapshot is complete.
    SnapshotEnd,
    /// Finish the current update file now (`focl archive rotate`).
    Rotate(Reply<serde_json::Value>),
    Status(Sender<ArchiveStatus>),
    /// Reload: finish the current update file and write the next ones with these settings;
    /// finished files go to `sink` from now on.
    Reconfigure(Box<ArchiveConfig>, Option<FileSink>),
    Stop,
    /// From the RIB: a step of a peer's graceful restart, for the current update file's
    /// manifest (RFC 4724).
    Graceful(GracefulEvent),
    /// From the RIB, before `SnapshotEnd`: the stale routes per peer in the snapshot.
    SnapshotStale(Vec<StaleCount>),
}

/// How a peer thread hands records to the writer: never blocks, counts what it drops.
#[derive(Clone, Debug)]
pub struct MrtLink {
    tx: Sender<MrtMsg>,
    dropped: Arc<AtomicU64>,
    /// `record_keepalives`, changeable by a reload.
    keepalives: Arc<AtomicBool>,
}

impl MrtLink {
    /// A link to a writer that will be started on the receiving end of `tx`.
    pub fn new(tx: Sender<MrtMsg>, record_keepalives: bool) -> MrtLink {
        MrtLink { tx, dropped: Arc::new(AtomicU64::new(0)), keepalives: Arc::new(AtomicBool::new(record_keepalives)) }
    }

    /// Whether peer threads hand KEEPALIVEs to the archive.
    pub fn record_keepalives(&self) -> bool {
        self.keepalives.load(Ordering::Relaxed)
    }

    /// The drop counter and the `record_keepalives` switch, shared with the writer thread
    /// (which counts its own drops and applies a reload's setting).
    pub fn counters(&self) -> (Arc<AtomicU64>, Arc<AtomicBool>) {
        (self.dropped.clone(), self.keepalives.clone())
    }

    pub fn send(&self, msg: MrtMsg) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Log the first drop and then every 10,000th, not every one.
                if n == 1 || n % 10_000 == 0 {
                    warn!("archive: the MRT writer is behind; {n} records dropped so far");
                }
            }
        }
    }

    /// Messages waiting at the writer (the RIB paces snapshot chunks with it).
    pub fn backlog(&self) -> usize {
        self.tx.len()
    }

    /// For the RIB and the control thread: snapshot chunks and requests must not be dropped,
    /// so this waits for room.
    pub fn send_blocking(&self, msg: MrtMsg) -> bool {
        self.tx.send(msg).is_ok()
    }
}

/// One step of a peer's graceful restart, as an update file's manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GracefulEvent {
    /// Unix time.
    pub time: u64,
    /// The peer's address.
    pub peer: String,
    /// "ipv4_unicast" or "ipv6_unicast".
    pub family: String,
    /// "stale" (the session ended as a restart: every route of the family kept, stale),
    /// "long_lived" (RFC 9494: kept past the restart time as LLGR_STALE), "swept" (the
    /// stale routes left were removed) or "flushed" (every route of the family removed at once).
    pub event: String,
    /// Routes made stale, long-lived or removed.
    pub routes: u64,
    pub reason: String,
}

/// A peer's stale routes in a RIB snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaleCount {
    pub peer: String,
    pub routes: u64,
}

// ---------------------------------------------------------------------------------------------
// Replication threads

/// Messages to one replication destination's thread (and the retention thread).
#[derive(Debug)]
pub enum DestMsg {
    /// A file was finished (its path relative to the archive).
    Finished(String),
    /// Try now, forgetting the back-off.
    Retry,
    Stop,
}

/// Where the MRT writer hands finished files: fan-out to every replication destination.
/// The writer knows only this sink, not the replication threads behind it.
#[derive(Clone, Default)]
pub struct FileSink {
    txs: Vec<Sender<DestMsg>>,
    retention: Option<Sender<DestMsg>>,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileSink({} destinations)", self.txs.len())
    }
}

impl FileSink {
    pub fn new(txs: Vec<Sender<DestMsg>>, retention: Option<Sender<DestMsg>>) -> FileSink {
        FileSink { txs, retention }
    }

    /// A file (path relative to the archive) is finished, with its manifest.
    pub fn finished(&self, relative: &str) {
        for tx in &self.txs {
            let _ = tx.send(DestMsg::Finished(relative.to_string()));
        }
    }

    /// `focl archive retry`: every destination tries its pending files now.
    pub fn retry(&self) {
        for tx in self.all() {
            let _ = tx.send(DestMsg::Retry);
        }
    }

    /// Ask every thread behind the sink to stop.
    pub fn stop(&self) {
        for tx in self.all() {
            let _ = tx.send(DestMsg::Stop);
        }
    }

    fn all(&self) -> impl Iterator<Item = &Sender<DestMsg>> {
        self.txs.iter().chain(self.retention.iter())
    }
}

/// What the control thread reads of the replication destinations' state (each destination's
/// thread updates its own entry).
#[derive(Clone, Default)]
pub struct StatusSource(Vec<Arc<Mutex<DestinationStatus>>>);

impl StatusSource {
    pub fn new(entries: Vec<Arc<Mutex<DestinationStatus>>>) -> StatusSource {
        StatusSource(entries)
    }

    pub fn get(&self) -> Vec<DestinationStatus> {
        self.0.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Listener thread

/// A peer as the listener sees it: where to hand its connections, and its TCP-MD5 key.
#[derive(Clone, Debug)]
pub struct ListenPeer {
    pub link: PeerLink,
    pub md5_key: Option<Vec<u8>>,
    /// The GTSM minimum TTL of the peer's packets (RFC 5082), when `ttl_security` is on.
    pub min_ttl: Option<u8>,
}

/// Messages to the listener thread.
#[derive(Debug)]
pub enum ListenerMsg {
    /// Replace the set of peers (on reload): TCP-MD5 keys of removed peers and changed
    /// passwords are taken off every listening socket, new ones put on; the sockets' GTSM
    /// minimum TTL follows the new peers.
    SetPeers(HashMap<IpAddr, ListenPeer>),
}

// ---------------------------------------------------------------------------------------------
// Monitor thread (`focl monitor`)

/// Events queued for the monitor thread before peers start dropping them (never blocking).
pub const MONITOR_CHANNEL_CAPACITY: usize = 16_384;

/// What a peer thread saw, for live subscribers; decoded on the monitor thread, not here.
#[derive(Clone, Debug)]
pub struct MonitorEvent {
    pub ts: SystemTime,
    /// The peer's configuration (address, name, AS).
    pub peer: Arc<PeerConfig>,
    pub kind: MonitorKind,
}

#[derive(Clone, Debug)]
pub enum MonitorKind {
    /// A received UPDATE or NOTIFICATION, header included, as it came off the wire, with what
    /// decoding it needs (RFC 6793 4-octet AS, iBGP).
    Message { raw: Bytes, four_octet_as: bool, ibgp: bool, add_path: AddPath },
    /// An FSM transition and why.
    State { from: &'static str, to: &'static str, reason: String },
}

/// A subscription's filter, resolved by the control thread (names to addresses, text to
/// prefixes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MonitorFilter {
    pub peer: Option<IpAddr>,
    /// Only these prefixes (and, with `more`, what they cover).
    pub prefix: Option<(Prefix, bool)>,
    /// Only UPDATEs whose AS path ends in this AS.
    pub origin: Option<u32>,
    pub updates: bool,
    pub states: bool,
    pub notifications: bool,
}

/// Messages to the monitor thread.
#[derive(Debug)]
pub enum MonitorMsg {
    Event(MonitorEvent),
    /// A `monitor` request: the client's connection, handed over by the control server, and
    /// the request id its lines carry.
    Subscribe {
        id: u64,
        stream: std::os::unix::net::UnixStream,
        filter: MonitorFilter,
    },
    Status(Sender<MonitorStatus>),
    Stop,
}

/// How peer threads reach the monitor: never blocks; nothing is sent while nobody listens.
#[derive(Clone, Debug)]
pub struct MonitorLink {
    tx: Sender<MonitorMsg>,
    subscribers: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

impl MonitorLink {
    pub fn new(tx: Sender<MonitorMsg>) -> MonitorLink {
        MonitorLink { tx, subscribers: Arc::new(AtomicUsize::new(0)), dropped: Arc::new(AtomicU64::new(0)) }
    }

    /// Whether anyone listens (checked by peer threads before they build an event).
    pub fn active(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    /// The subscriber count (kept by the monitor thread) and the drop counter.
    pub fn counters(&self) -> (Arc<AtomicUsize>, Arc<AtomicU64>) {
        (self.subscribers.clone(), self.dropped.clone())
    }

    /// From a peer thread: queue the event or count it as dropped.
    pub fn event(&self, ev: MonitorEvent) {
        if self.tx.try_send(MonitorMsg::Event(ev)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// From the control or main thread: requests that must arrive (the queue is bounded;
    /// this waits for room).
    pub fn send_blocking(&self, msg: MonitorMsg) -> bool {
        self.tx.send(msg).is_ok()
    }
}

// ---------------------------------------------------------------------------------------------
// RTR client thread (RPKI)

/// Messages to the RTR client thread.
#[derive(Debug)]
pub enum RpkiMsg {
    Status(Sender<RpkiStatus>),
    /// `focl rpki lookup`: the RFC 6811 state of (prefix, origin AS) and the VRPs that decide it.
    Lookup {
        prefix: Prefix,
        origin: u32,
        reply: Sender<RpkiLookup>,
    },
    /// Reload: the new `[rpki]` settings (unchanged caches keep their sessions; files are read again).
    Reconfigure(Box<RpkiConfig>),
    Stop,
}

/// How other threads reach the RTR thread: its inbox plus the waker of its poll loop.
#[derive(Clone, Debug)]
pub struct RpkiLink {
    tx: Sender<RpkiMsg>,
    waker: Arc<Waker>,
}

impl RpkiLink {
    pub fn new(tx: Sender<RpkiMsg>, waker: Arc<Waker>) -> RpkiLink {
        RpkiLink { tx, waker }
    }

    /// Requests from the control and main threads; the inbox is bounded and this waits for room.
    pub fn send(&self, msg: RpkiMsg) -> bool {
        let ok = self.tx.send(msg).is_ok();
        let _ = self.waker.wake();
        ok
    }
}

// ---------------------------------------------------------------------------------------------
// Main thread

/// A `focl reload` waiting for the main thread, which owns the daemon, to reload.
pub type ReloadRequest = Reply<ReloadReport>;

// ---------------------------------------------------------------------------------------------
// Source thread

/// Loads queued for the source thread (each reads a whole file; a few are plenty).
pub const SOURCE_CHANNEL_CAPACITY: usize = 64;

/// Messages to the source thread.
#[derive(Debug)]
pub enum SourceMsg {
    /// Read the source's file; the result goes to the RIB as `RibMsg::SourceLoaded`.
    Load {
        cfg: SourceConfig,
        reply: Option<Reply<SourceStatus>>,
    },
    Stop,
}

/// A table read from a `[[sources]]` file: what the RIB announces, shared by every session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceTable {
    /// The distinct path attribute blocks of the routes, as dumped (4-octet AS numbers,
    /// RFC 6396 §4.3.4).
    pub attrs: Vec<Vec<u8>>,
    /// Per family (`Family::index`): the routes as (prefix, index into `attrs`), sorted by
    /// attribute block then prefix, so that routes sharing attributes are packed together.
    pub routes: [Vec<(Prefix, u32)>; 2],
    /// The RIB peer whose routes were taken (address, AS), when `peer` is set.
    pub peer: Option<(IpAddr, u32)>,
    /// Prefixes left out: by `prefix_shift` (outside unicast space), by `limit`, and routes
    /// whose attributes lack ORIGIN/AS_PATH or do not parse.
    pub skipped_shift: u64,
    pub skipped_limit: u64,
    pub skipped_bad: u64,
    /// MRT records of other types and subtypes than PEER_INDEX_TABLE, RIB_IPV4_UNICAST and
    /// RIB_IPV6_UNICAST.
    pub other_records: u64,
}

impl SourceTable {
    pub fn len(&self) -> usize {
        self.routes[0].len() + self.routes[1].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How other threads reach the source thread.
#[derive(Clone, Debug)]
pub struct SourceLink {
    tx: Sender<SourceMsg>,
}

impl SourceLink {
    pub fn new(tx: Sender<SourceMsg>) -> SourceLink {
        SourceLink { tx }
    }

    /// Queue a message without blocking; false when the queue is full or the thread is gone.
    pub fn send(&self, msg: SourceMsg) -> bool {
        self.tx.try_send(msg).is_ok()
    }
}

// ---------------------------------------------------------------------------------------------
// BMP threads (RFC 7854)

/// Events queued for the BMP thread before peers start dropping them (never blocking).
pub const BMP_CHANNEL_CAPACITY: usize = 65_536;

/// Why a session ended, as a BMP Peer Down says (RFC 7854 §4.9).
pub use crate::bmp::encode::PeerDownReason as BmpDownReason;

/// A session as a BMP station learns of it in a Peer Up (RFC 7854 §4.10).
#[derive(Clone, Debug)]
pub struct BmpSession {
    pub peer: PeerId,
    /// The peer's configured address and name (which stations monitor it).
    pub peer_address: IpAddr,
    pub peer_name: Option<String>,
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
    pub remote_as: u32,
    pub remote_id: Ipv4Addr,
    /// RFC 6793 negotiated: the peer's UPDATEs carry 4-octet AS_PATHs (else the A flag).
    pub four_octet_as: bool,
    /// Both OPENs, whole messages exactly as sent and received.
    pub sent_open: Bytes,
    pub received_open: Bytes,
    /// RFC 7606 treat-as-withdraw on this session, kept by the peer thread: UPDATEs and the
    /// prefixes they announced (BMP statistics types 11 and 12).
    pub treated_as_withdraw: Arc<[AtomicU64; 2]>,
}

/// Messages to the BMP thread.
#[derive(Debug)]
pub enum BmpMsg {
    /// From a peer thread: the session reached Established.
    PeerUp {
        ts: SystemTime,
        session: Arc<BmpSession>,
    },
    /// From a peer thread: a message received on the Established session, header included,
    /// as it came off the wire, with the number of UPDATEs received on the session so far
    /// (this one included): the RIB counts the same, which is how a dump and the live feed
    /// meet.
    Received {
        ts: SystemTime,
        peer: PeerId,
        raw: Bytes,
        seq: u64,
    },
    /// From a peer thread: an UPDATE it wrote on the Established session (what focld sends
    /// the peer, RFC 8671 Adj-RIB-Out), with the number of UPDATEs the peer thread has taken
    /// from the RIB so far (`PeerLink::updates_queued` counts the same).
    Sent {
        ts: SystemTime,
        peer: PeerId,
        raw: Bytes,
        seq: u64,
    },
    /// From the RIB: the post-policy view (RFC 7854 §2, after import policy) of the routes
    /// the `seq`th UPDATE of the peer's session changed, as UPDATEs (4-octet AS numbers):
    /// announced with their attributes after policy, or withdrawn when gone or rejected.
    PostPolicy {
        ts: SystemTime,
        peer: PeerId,
        seq: u64,
        msgs: Vec<Vec<u8>>,
    },
    /// From the RIB: many post-policy routes changed at once (a policy reload, a VRP change
    /// an import chain reads): stations monitoring post-policy are sent everything again.
    PostPolicyReset {
        why: String,
    },
    /// From the RIB: Loc-RIB changes (RFC 9069) for station connection `conn`, as UPDATEs
    /// (4-octet AS numbers); `end_of_rib` once the first walk of the Loc-RIB is done.
    LocRib {
        station: u64,
        conn: u64,
        msgs: Vec<Vec<u8>>,
        end_of_rib: Vec<Family>,
    },
    /// From a peer thread: the session left Established.
    PeerDown {
        ts: SystemTime,
        peer: PeerId,
        reason: BmpDownReason,
    },
    /// From a station thread: connection number `conn` to the station is up; the BMP thread
    /// queues the Initiation and a Peer Up for every session before anything live.
    StationConnected {
        station: u64,
        conn: u64,
    },
    /// Reload: the configured stations (added ones start, removed ones stop, changed ones restart).
    Reconfigure(Vec<crate::config::BmpStationConfig>),
    Status(Sender<Vec<crate::control::proto::BmpStationStatus>>),
    Stop,
}

/// How peer threads reach the BMP thread: never blocks; nothing is sent while no station
/// is configured.
#[derive(Clone, Debug)]
pub struct BmpLink {
    tx: Sender<BmpMsg>,
    active: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl BmpLink {
    pub fn new(tx: Sender<BmpMsg>) -> BmpLink {
        BmpLink { tx, active: Arc::new(AtomicBool::new(false)), dropped: Arc::new(AtomicU64::new(0)) }
    }

    /// Whether any station is configured (checked by peer threads before they build an event).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The "any station" switch (kept by the BMP thread) and the drop counter.
    pub fn counters(&self) -> (Arc<AtomicBool>, Arc<AtomicU64>) {
        (self.active.clone(), self.dropped.clone())
    }

    /// From a peer thread: queue the event or count it as dropped.
    pub fn event(&self, msg: BmpMsg) {
        if self.tx.try_send(msg).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n % 10_000 == 0 {
                warn!("bmp: the BMP thread is behind; {n} events dropped so far");
            }
        }
    }

    /// From the RIB: queue the message if there is room, else hand it back (to try again).
    pub fn try_event(&self, msg: BmpMsg) -> Result<(), Option<BmpMsg>> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(m)) => Err(Some(m)),
            Err(TrySendError::Disconnected(_)) => Err(None),
        }
    }

    /// From the control, main and station threads: requests that must arrive (the queue is
    /// bounded; this waits for room).
    pub fn send_blocking(&self, msg: BmpMsg) -> bool {
        self.tx.send(msg).is_ok()
    }
}

/// The RIB's answer to `RibMsg::BmpDump`, one chunk of it: every dumped peer's routes at
/// some prefixes; `last` on the final one.
#[derive(Debug, Default)]
pub struct BmpDump {
    pub peers: Vec<BmpPeerDump>,
    pub last: bool,
}

/// One peer's Adj-RIB-In as UPDATEs (4-octet AS paths, path ids where ADD-PATH is on).
#[derive(Debug, Default)]
pub struct BmpPeerDump {
    pub peer: PeerId,
    pub session: SessionId,
    /// UPDATEs of the session applied when the dump was taken (`BmpMsg::Received::seq`).
    pub seq: u64,
    /// The session's families, each to end with an End-of-RIB (in the last chunk).
    pub families: Vec<Family>,
    pub updates: Vec<(Family, Vec<u8>)>,
    /// The post-policy Adj-RIB-In (when asked): accepted routes with their attributes after
    /// import policy.
    pub post_policy: Vec<(Family, Vec<u8>)>,
    /// The Adj-RIB-Out (when asked), encoded as for the session (`four_octet_as`), and the
    /// UPDATEs queued for the peer when it was taken (`BmpMsg::Sent::seq`).
    pub adj_rib_out: Vec<(Family, Vec<u8>)>,
    pub out_seq: u64,
    /// Routes whose attributes were too long to rebuild into one UPDATE.
    pub skipped: usize,
}
