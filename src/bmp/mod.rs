//! The BMP THREAD (RFC 7854): turns what the peer threads see into BMP messages for every
//! configured monitoring station, and owns one station thread per station (`station.rs`).
//!
//! Fed by: peer threads (`BmpMsg::PeerUp` / `PeerDown` always, `Received` and `Sent` only while
//! a station is configured; through `BmpLink`, never blocking: a full queue drops and counts),
//! the RIB (`PostPolicy`, `PostPolicyReset`, `LocRib`), station
//! threads (`StationConnected`), the RIB (route counts for Statistics Reports, asked with
//! `RibQuery::Counts`), the control thread (`Status`) and the main thread (`Reconfigure`, `Stop`).
//! Emits: encoded messages to each station thread, tagged with the station connection they
//! were built for.
//!
//! Ordering: this one thread sees every session event and received message in the order each
//! peer thread sent them, so when a station connects, the Initiation and a Peer Up for every
//! Established session are queued before anything live, and each later message follows in
//! order, without a gap or a duplicate (a message built for an older connection is dropped by
//! the station thread). Pre-policy Route Monitoring is the received UPDATE's own bytes; the
//! Adj-RIB-Out (RFC 8671, O flag) is the bytes the peer threads write (`BmpMsg::Sent`); the
//! post-policy Adj-RIB-In (L flag) comes from the RIB after import policy
//! (`BmpMsg::PostPolicy`); each joins the initial dump by its own count. The Loc-RIB (RFC 9069,
//! peer type 3) is a feed the RIB runs per station connection (`BmpMsg::LocRib`): its walk is
//! the initial dump and its changes follow.
//!
//! The initial dump comes from the RIB in chunks (`RibMsg::BmpDump`), each taken only while
//! the station has read the last down to half its budget.
//!
//! Bounded: each station may have at most `buffer_limit_mb` waiting. Past that its connection
//! is cut, logged and counted (`drops`); the station thread reconnects after its back-off and
//! is sent everything again from the current sessions. Nothing here ever waits for a station.
//!
//! Files: `encode.rs` (the pure encoder), `station.rs` (the station threads).

pub mod encode;
mod station;

use crate::config::{BmpStationConfig, BmpView};
use crate::control::proto::{BmpStationStatus, FamilyCounts};
use crate::msg::{
    BmpDump, BmpDumpViews, BmpLink, BmpLocRibFeed, BmpMsg, BmpSession, PeerId, RibMsg, RibQuery, BMP_CHANNEL_CAPACITY,
};
use crate::prefix::Family;
use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use encode::{flags, Mirrored, PeerHeader, PeerUp, Stat, TerminationReason};
use log::{info, warn};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How often statistics timers are checked when nothing arrives.
const TICK: Duration = Duration::from_millis(200);
/// ... and while a dump is awaited or a backlog is being handed over.
const BUSY_TICK: Duration = Duration::from_millis(2);
/// How long a stopping station thread may take to send its Termination before it is told to
/// give up writing.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// BGP message types (RFC 4271 §4.1) the tap looks at.
const BGP_UPDATE: u8 = 2;
const BGP_HEADER_LEN: usize = 19;

/// What the BMP thread hands a station thread.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Encoded messages built for station connection `conn`.
    Data { conn: u64, messages: u64, bytes: Bytes },
    /// Send `farewell` (the Termination) if connected, close and end.
    Stop { farewell: Option<Bytes> },
}

/// What the BMP thread and a station thread share: the byte budget, the cut signal, the status.
#[derive(Debug, Default)]
pub(crate) struct StationShared {
    /// Bytes queued for the station thread and not yet taken.
    queued: AtomicUsize,
    /// The connection the BMP thread cut for falling behind (0: none).
    cut: AtomicU64,
    /// Give up writing now (stop after the grace period).
    stopping: AtomicBool,
    status: Mutex<BmpStationStatus>,
}

impl StationShared {
    fn status(&self) -> std::sync::MutexGuard<'_, BmpStationStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_state(&self, state: &str, error: Option<String>) {
        let mut s = self.status();
        if s.state != state {
            s.state = state.to_string();
            s.since = crate::utc::unix_secs(SystemTime::now());
        }
        if error.is_some() {
            s.last_error = error;
        }
    }

    fn connected(&self, again: bool) {
        self.set_state("up", None);
        if again {
            self.status().reconnects += 1;
        }
    }

    fn taken(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
    }

    fn sent(&self, messages: u64, bytes: usize) {
        let mut s = self.status();
        s.messages_sent += messages;
        s.bytes_sent += bytes as u64;
    }
}

/// Owns the BMP thread (which owns the station threads).
pub struct BmpHandle {
    pub link: BmpLink,
    join: Option<JoinHandle<()>>,
}

impl BmpHandle {
    /// Stop: every station gets a Peer Down for what is still up (the peers were stopped
    /// first) and a Termination.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(j) = self.join.take() {
            self.link.send_blocking(BmpMsg::Stop);
            let _ = j.join();
        }
    }
}

impl Drop for BmpHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Who focld is, for the Initiation message (RFC 7854 §4.3).
#[derive(Clone, Debug)]
pub struct Identity {
    pub sys_name: String,
    pub sys_descr: String,
    /// The Loc-RIB pseudo-peer's AS and BGP id (RFC 9069 §4.1).
    pub asn: u32,
    pub router_id: std::net::Ipv4Addr,
}

impl Identity {
    /// The host name and "focld VERSION, AS N, router id R".
    pub fn of_this_host(asn: u32, router_id: std::net::Ipv4Addr) -> Identity {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let host = if rc == 0 { String::from_utf8_lossy(&buf[..end]).into_owned() } else { String::new() };
        Identity {
            sys_name: if host.is_empty() { router_id.to_string() } else { host },
            sys_descr: format!("focld {}, AS {asn}, router id {router_id}", env!("CARGO_PKG_VERSION")),
            asn,
            router_id,
        }
    }
}

/// The BMP thread's link and inbox, made before the thread starts (the control thread gets
/// the link first).
pub fn channel() -> (BmpLink, Receiver<BmpMsg>) {
    let (tx, rx) = crossbeam_channel::bounded(BMP_CHANNEL_CAPACITY);
    (BmpLink::new(tx), rx)
}

pub fn spawn(stations: &[BmpStationConfig], id: Identity, rib: Sender<RibMsg>) -> io::Result<BmpHandle> {
    let (link, rx) = channel();
    spawn_with(link, rx, stations, id, rib)
}

pub fn spawn_with(
    link: BmpLink,
    rx: Receiver<BmpMsg>,
    stations: &[BmpStationConfig],
    id: Identity,
    rib: Sender<RibMsg>,
) -> io::Result<BmpHandle> {
    let (active, dropped) = link.counters();
    let mut hub = Hub {
        link: link.clone(),
        active,
        dropped,
        id,
        rib,
        sessions: BTreeMap::new(),
        stations: Vec::new(),
        next_station: 1,
        pending_counts: Vec::new(),
        post_wanted: false,
    };
    hub.reconfigure(stations.to_vec());
    let join = std::thread::Builder::new().name("bmp".into()).spawn(move || hub.run(rx))?;
    Ok(BmpHandle { link, join: Some(join) })
}

/// An Established session as the BMP thread keeps it.
struct Up {
    session: Arc<BmpSession>,
    ts: SystemTime,
    /// The `seq` of the last UPDATE seen: the next must be one more, or events were lost.
    last_seq: Option<u64>,
    /// The last UPDATEs seen (at most `RECENT_BYTES`): the RIB may not have applied them yet
    /// when it makes a dump, and then they follow it from here.
    recent: VecDeque<(u64, SystemTime, Bytes)>,
    recent_bytes: usize,
    /// The `seq` of the last post-policy change from the RIB: the next must be one more.
    last_post: Option<u64>,
    /// The `seq` of the last UPDATE sent to the peer seen: the next must be one more.
    last_out: Option<u64>,
}

/// Bytes of recent UPDATEs kept per session for the hand-over from a dump to the live feed.
const RECENT_BYTES: usize = 256 * 1024;

/// A message held for a station while its initial dump is being made.
struct Held {
    peer: PeerId,
    seq: u64,
    ts: SystemTime,
    what: HeldKind,
}

enum HeldKind {
    /// Received from the peer (pre-policy, mirroring).
    Received(Bytes),
    /// Sent to the peer (Adj-RIB-Out).
    Sent(Bytes),
    /// Post-policy changes from the RIB.
    PostPolicy(Vec<Vec<u8>>),
}

impl HeldKind {
    fn len(&self) -> usize {
        match self {
            HeldKind::Received(b) | HeldKind::Sent(b) => b.len(),
            HeldKind::PostPolicy(m) => m.iter().map(Vec::len).sum(),
        }
    }
}

/// A station waiting for the RIB's initial dump.
struct PendingDump {
    reply: Receiver<BmpDump>,
    held: Vec<Held>,
    held_bytes: usize,
    /// Per peer, the last UPDATE this thread had seen when it asked.
    asked_at: BTreeMap<PeerId, u64>,
    /// Per peer, from the RIB's chunks: UPDATEs applied and UPDATEs queued to be sent when the
    /// dump began, and routes too long to rebuild.
    seqs: BTreeMap<PeerId, (u64, u64)>,
    skipped: BTreeMap<PeerId, usize>,
}

impl PendingDump {
    fn hold(&mut self, h: Held) {
        self.held_bytes += h.what.len();
        self.held.push(h);
    }
}

/// Bytes of encoded messages per chunk handed to a station thread from a backlog.
const BACKLOG_CHUNK: usize = 256 * 1024;
/// A station's live messages gathered in one turn go to its thread at most this large.
const PENDING_BYTES: usize = 256 * 1024;

struct Station {
    id: u64,
    cfg: BmpStationConfig,
    tx: Sender<Chunk>,
    shared: Arc<StationShared>,
    join: Option<JoinHandle<()>>,
    /// The station connection messages are built for; None while down or cut.
    conn: Option<u64>,
    /// Peers the current connection has had a Peer Up for.
    up_peers: BTreeSet<PeerId>,
    next_stats: Instant,
    dump: Option<PendingDump>,
    /// Messages (count, bytes, live) waiting to be handed over in order: the dump and what
    /// was held during it, then live messages that came after. Fed to the station thread as
    /// it drains (`pump`); the live bytes among them count against the budget.
    backlog: VecDeque<(u64, Vec<u8>, bool)>,
    backlog_live: usize,
    /// The current connection for the RIB's Loc-RIB feed (0: none), and the bytes waiting
    /// for the station (its thread's queue and the backlog) the feed paces its walk by.
    live_conn: Arc<AtomicU64>,
    waiting: Arc<AtomicUsize>,
    /// Live messages of this turn (count, bytes), handed to the station thread as one chunk
    /// at the end of the turn or once `PENDING_BYTES` gather: one channel message and one
    /// write for a burst, not one per Route Monitoring message.
    pending: (u64, Vec<u8>),
}

impl Station {
    fn set_conn(&mut self, conn: Option<u64>) {
        self.pending = (0, Vec::new());
        self.conn = conn;
        self.live_conn.store(conn.unwrap_or(0), Ordering::Relaxed);
    }

    fn live(&self) -> bool {
        self.conn.is_some()
    }

    /// Hold a message for after the initial dump being made (cutting a station that falls
    /// its budget behind meanwhile).
    fn hold(&mut self, h: Held) {
        let Some(d) = &mut self.dump else { return };
        d.hold(h);
        if d.held_bytes > self.cfg.buffer_limit_bytes() {
            self.cut(&format!("is {} MiB behind during its initial dump", self.cfg.buffer_limit_mb));
        }
    }

    /// Queue live messages for the current connection (behind a backlog, if any); past the
    /// budget, cut the connection.
    fn queue(&mut self, messages: u64, bytes: Vec<u8>) {
        if self.conn.is_none() {
            return;
        }
        let limit = self.cfg.buffer_limit_bytes();
        if !self.backlog.is_empty() {
            if self.backlog_live + bytes.len() > limit {
                return self.cut(&format!("is {} MiB behind", self.cfg.buffer_limit_mb));
            }
            self.backlog_live += bytes.len();
            self.flush();
            self.backlog.push_back((messages, bytes, true));
            return;
        }
        let queued = self.shared.queued.load(Ordering::Relaxed) + self.pending.1.len();
        if queued + bytes.len() > limit {
            return self.cut(&format!("is {} MiB behind", self.cfg.buffer_limit_mb));
        }
        self.pending.0 += messages;
        self.pending.1.extend_from_slice(&bytes);
        if self.pending.1.len() >= PENDING_BYTES {
            self.flush();
        }
    }

    /// Hand this turn's live messages to the station thread.
    fn flush(&mut self) {
        if !self.pending.1.is_empty() {
            let (n, bytes) = std::mem::take(&mut self.pending);
            self.send_chunk(n, bytes);
        }
    }

    /// Send `bytes` after whatever this turn gathered.
    fn send_now(&mut self, messages: u64, bytes: Vec<u8>) {
        self.flush();
        self.send_chunk(messages, bytes);
    }

    fn send_chunk(&mut self, messages: u64, bytes: Vec<u8>) {
        let Some(conn) = self.conn else { return };
        self.shared.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        if self.tx.send(Chunk::Data { conn, messages, bytes: Bytes::from(bytes) }).is_err() {
            self.set_conn(None);
        }
    }

    /// Hand over backlog as the station thread drains: at most half the budget waits there.
    fn pump(&mut self) {
        let room = self.cfg.buffer_limit_bytes() / 2;
        while let Some((_, bytes, _)) = self.backlog.front() {
            let queued = self.shared.queued.load(Ordering::Relaxed);
            if queued > 0 && queued + bytes.len() > room {
                return;
            }
            let Some((n, bytes, live)) = self.backlog.pop_front() else { return };
            if live {
                self.backlog_live -= bytes.len();
            }
            self.send_now(n, bytes);
        }
    }

    /// Drop the current connection: the station thread closes it, reconnects after its
    /// back-off and is sent everything again.
    fn cut(&mut self, why: &str) {
        let Some(conn) = self.conn else { return };
        self.set_conn(None);
        self.up_peers.clear();
        self.dump = None;
        self.backlog.clear();
        self.backlog_live = 0;
        self.shared.cut.store(conn, Ordering::Relaxed);
        let drops = {
            let mut s = self.shared.status();
            s.drops += 1;
            s.drops
        };
        warn!(
            "bmp {}: the station {why}; dropping its connection ({drops} drops so far), it will be sent everything again after reconnecting",
            self.cfg.label()
        );
    }

    fn monitors(&self, s: &BmpSession) -> bool {
        self.cfg.monitors_peer(&s.peer_address, s.peer_name.as_deref())
    }

    /// Ask the thread to stop (a Termination first when connected) and wait for it, giving
    /// up on a station that does not read after `STOP_GRACE`.
    fn stop(mut self, why: &str) {
        let farewell =
            self.live().then(|| Bytes::from(encode::termination(TerminationReason::AdministrativelyClosed, Some(why))));
        self.flush();
        // The RIB's Loc-RIB feed for this station ends with it.
        self.live_conn.store(0, Ordering::Relaxed);
        let _ = self.tx.send(Chunk::Stop { farewell });
        if let Some(j) = self.join.take() {
            let until = Instant::now() + STOP_GRACE;
            while !j.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.shared.stopping.store(true, Ordering::Relaxed);
            let _ = j.join();
        }
    }
}

/// The RIB's answer to a `RibQuery::Counts`.
type CountsAnswer = Receiver<Result<serde_json::Value, crate::control::proto::CtlError>>;

struct Hub {
    link: BmpLink,
    active: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    id: Identity,
    rib: Sender<RibMsg>,
    sessions: BTreeMap<PeerId, Up>,
    stations: Vec<Station>,
    next_station: u64,
    /// Route-count questions to the RIB for Statistics Reports: (station, connection, peer, answer).
    pending_counts: Vec<(u64, u64, PeerId, CountsAnswer)>,
    /// Some station monitors post-policy: the RIB has been told to send its changes.
    post_wanted: bool,
}

impl Hub {
    fn run(mut self, rx: Receiver<BmpMsg>) {
        loop {
            let busy = self.stations.iter().any(|s| s.dump.is_some() || !s.backlog.is_empty());
            match rx.recv_timeout(if busy { BUSY_TICK } else { TICK }) {
                Ok(BmpMsg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(m) => self.handle(m),
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Bursts are drained in one turn; timers are checked between bursts.
            for _ in 0..10_000 {
                match rx.try_recv() {
                    Ok(BmpMsg::Stop) => return self.stop_all(),
                    Ok(m) => self.handle(m),
                    Err(_) => break,
                }
            }
            self.dumps_answered();
            for st in self.stations.iter_mut() {
                st.flush();
                st.pump();
                let backlog: usize = st.backlog.iter().map(|b| b.1.len()).sum();
                st.waiting.store(st.shared.queued.load(Ordering::Relaxed) + backlog, Ordering::Relaxed);
            }
            self.statistics_due(Instant::now());
            self.answer_counts();
        }
        self.stop_all();
    }

    fn stop_all(&mut self) {
        let ts = SystemTime::now();
        for mut st in std::mem::take(&mut self.stations) {
            // Sessions still up when focld stops (the peers are stopped first, so normally none).
            for peer in std::mem::take(&mut st.up_peers) {
                if let Some(up) = self.sessions.get(&peer) {
                    let m =
                        encode::peer_down(&peer_header(&up.session, 0, ts), &encode::PeerDownReason::LocalFsmEvent(0));
                    st.queue(1, m);
                }
            }
            st.stop("focld is shutting down");
        }
        info!("bmp: stopped");
    }

    fn handle(&mut self, m: BmpMsg) {
        match m {
            BmpMsg::PeerUp { ts, session } => {
                for st in self.stations.iter_mut().filter(|s| s.live() && s.monitors(&session)) {
                    if st.dump.is_some() {
                        // The dump on its way may or may not know this session: start over.
                        st.cut("saw a session change during its initial dump");
                        continue;
                    }
                    st.queue(1, peer_up_message(&session, ts));
                    st.up_peers.insert(session.peer);
                }
                let up = Up {
                    session,
                    ts,
                    last_seq: None,
                    recent: VecDeque::new(),
                    recent_bytes: 0,
                    last_post: None,
                    last_out: None,
                };
                self.sessions.insert(up.session.peer, up);
            }
            BmpMsg::Received { ts, peer, raw, seq } => {
                let Some(up) = self.sessions.get_mut(&peer) else { return };
                if raw.get(18) == Some(&BGP_UPDATE) {
                    let lost = up.last_seq.is_some_and(|l| seq != l + 1);
                    up.last_seq = Some(seq);
                    up.recent_bytes += raw.len();
                    up.recent.push_back((seq, ts, raw.clone()));
                    while up.recent_bytes > RECENT_BYTES {
                        let Some((_, _, r)) = up.recent.pop_front() else { break };
                        up.recent_bytes -= r.len();
                    }
                    if lost {
                        // An UPDATE never reached us: what the stations hold is wrong.
                        for st in self.stations.iter_mut().filter(|st| st.up_peers.contains(&peer)) {
                            st.cut("missed UPDATEs the peer threads could not queue");
                        }
                    }
                }
                let session = up.session.clone();
                self.on_received(session, ts, raw, seq);
            }
            BmpMsg::Sent { ts, peer, raw, seq } => {
                let Some(up) = self.sessions.get_mut(&peer) else { return };
                let lost = up.last_out.is_some_and(|l| seq != l + 1);
                up.last_out = Some(seq);
                let session = up.session.clone();
                for st in self.stations.iter_mut().filter(|st| st.up_peers.contains(&peer)) {
                    if !st.cfg.wants(BmpView::AdjRibOut) {
                        continue;
                    }
                    if lost {
                        // An UPDATE sent never reached us: what the station holds is wrong.
                        st.cut("missed UPDATEs sent that the peer threads could not queue");
                        continue;
                    }
                    if !update_families(&raw).wanted(&st.cfg.families) {
                        continue;
                    }
                    if st.dump.is_some() {
                        st.hold(Held { peer, seq, ts, what: HeldKind::Sent(raw.clone()) });
                        continue;
                    }
                    st.queue(1, encode::route_monitoring(&out_header(&session, ts), &raw));
                }
            }
            BmpMsg::PostPolicy { ts, peer, seq, msgs } => {
                let Some(up) = self.sessions.get_mut(&peer) else { return };
                let lost = up.last_post.is_some_and(|l| seq != l + 1);
                up.last_post = Some(seq);
                let session = up.session.clone();
                for st in self.stations.iter_mut().filter(|st| st.up_peers.contains(&peer)) {
                    if !st.cfg.wants(BmpView::PostPolicy) {
                        continue;
                    }
                    if lost {
                        st.cut("missed post-policy changes the RIB could not queue");
                        continue;
                    }
                    if st.dump.is_some() {
                        st.hold(Held { peer, seq, ts, what: HeldKind::PostPolicy(msgs.clone()) });
                        continue;
                    }
                    let (n, out) = post_policy_messages(&st.cfg, &session, ts, &msgs);
                    if n > 0 {
                        st.queue(n, out);
                    }
                }
            }
            BmpMsg::PostPolicyReset { why } => {
                for st in self.stations.iter_mut().filter(|st| st.cfg.wants(BmpView::PostPolicy)) {
                    st.cut(&format!("needs its post-policy routes again ({why})"));
                }
            }
            BmpMsg::LocRib { station, conn, msgs, end_of_rib } => {
                let ts = SystemTime::now();
                let Some(st) = self.stations.iter_mut().find(|s| s.id == station && s.conn == Some(conn)) else {
                    return;
                };
                let ph = loc_rib_header(&self.id, &st.cfg, ts);
                let mut out = Vec::new();
                let eors = end_of_rib.iter().map(|f| crate::wire::update::end_of_rib(*f));
                let mut n = 0;
                for m in msgs.iter().cloned().chain(eors) {
                    encode::route_monitoring_into(&mut out, &ph, &m);
                    n += 1;
                }
                st.queue(n, out);
            }
            BmpMsg::PeerDown { ts, peer, reason } => {
                let Some(up) = self.sessions.remove(&peer) else { return };
                for st in self.stations.iter_mut() {
                    if st.dump.is_some() && st.up_peers.contains(&peer) {
                        st.cut("saw a session change during its initial dump");
                        continue;
                    }
                    if st.up_peers.remove(&peer) {
                        st.queue(1, encode::peer_down(&peer_header(&up.session, 0, ts), &reason));
                    }
                }
            }
            BmpMsg::StationConnected { station, conn } => self.on_station_connected(station, conn),
            BmpMsg::Reconfigure(cfgs) => self.reconfigure(cfgs),
            BmpMsg::Status(tx) => {
                let events_dropped = self.dropped.load(Ordering::Relaxed);
                let list = self
                    .stations
                    .iter()
                    .map(|s| {
                        let mut st = s.shared.status().clone();
                        let backlog: usize = s.backlog.iter().map(|b| b.1.len()).sum();
                        st.buffered_bytes = (s.shared.queued.load(Ordering::Relaxed) + backlog) as u64;
                        st.events_dropped = events_dropped;
                        st
                    })
                    .collect();
                let _ = tx.send(list);
            }
            BmpMsg::Stop => {}
        }
    }

    /// A received message of an Established session: Route Monitoring for UPDATEs (each
    /// view), Route Mirroring for every message where asked.
    fn on_received(&mut self, s: Arc<BmpSession>, ts: SystemTime, raw: Bytes, seq: u64) {
        for st in self.stations.iter_mut().filter(|st| st.up_peers.contains(&s.peer)) {
            if st.dump.is_some() {
                st.hold(Held { peer: s.peer, seq, ts, what: HeldKind::Received(raw.clone()) });
                continue;
            }
            let (n, out) = received_messages(&st.cfg, &s, ts, &raw, true);
            if n > 0 {
                st.queue(n, out);
            }
        }
    }

    /// Stations whose initial dump the RIB is answering, a chunk at a time, taken while the
    /// station keeps up: per peer and view its routes; after the last chunk an End-of-RIB per
    /// view and family, then what was held, without the UPDATEs the dump already holds.
    fn dumps_answered(&mut self) {
        let ts = SystemTime::now();
        for st in self.stations.iter_mut() {
            loop {
                let room = st.cfg.buffer_limit_bytes() / 2;
                let backlog: usize = st.backlog.iter().map(|b| b.1.len()).sum();
                if st.shared.queued.load(Ordering::Relaxed) + backlog > room {
                    break;
                }
                // What this turn gathered goes before the dump's chunks.
                st.flush();
                let Some(d) = &mut st.dump else { break };
                let chunk = match d.reply.try_recv() {
                    Ok(chunk) => chunk,
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        st.cut("got no initial dump from the RIB");
                        break;
                    }
                };
                let last = chunk.last;
                let mut chunk_out = Vec::with_capacity(BACKLOG_CHUNK);
                let mut n = 0;
                let wanted = |f: &Family| st.cfg.families.is_empty() || st.cfg.families.contains(f);
                for p in chunk.peers {
                    let Some(up) = self.sessions.get(&p.peer).filter(|_| st.up_peers.contains(&p.peer)) else {
                        continue;
                    };
                    d.seqs.insert(p.peer, (p.seq, p.out_seq));
                    *d.skipped.entry(p.peer).or_default() += p.skipped;
                    // 4-octet AS paths in what the RIB rebuilt of the Adj-RIB-In: no A flag.
                    // The Adj-RIB-Out is encoded as for the session, as sent.
                    let mut s = (*up.session).clone();
                    s.four_octet_as = true;
                    let views = [
                        (BmpView::PrePolicy, peer_header(&s, 0, ts), p.updates),
                        (BmpView::PostPolicy, peer_header(&s, flags::L, ts), p.post_policy),
                        (BmpView::AdjRibOut, out_header(&up.session, ts), p.adj_rib_out),
                    ];
                    for (view, ph, updates) in views {
                        if !st.cfg.wants(view) {
                            continue;
                        }
                        let eors: Vec<(Family, Vec<u8>)> = if last {
                            p.families.iter().map(|f| (*f, crate::wire::update::end_of_rib(*f))).collect()
                        } else {
                            Vec::new()
                        };
                        // Each rebuilt UPDATE is freed once encoded: the chunk is not held twice.
                        for (family, m) in updates.into_iter().chain(eors) {
                            if !wanted(&family) {
                                continue;
                            }
                            encode::route_monitoring_into(&mut chunk_out, &ph, &m);
                            n += 1;
                            if chunk_out.len() >= BACKLOG_CHUNK {
                                st.backlog.push_back((std::mem::take(&mut n), std::mem::take(&mut chunk_out), false));
                            }
                        }
                    }
                }
                if !chunk_out.is_empty() {
                    st.backlog.push_back((n, chunk_out, false));
                }
                if last {
                    if let Some(d) = st.dump.take() {
                        Self::dump_done(&self.sessions, st, d);
                    }
                    break;
                }
            }
        }
    }

    /// After the last chunk of a station's dump: the UPDATEs this thread had seen before it
    /// asked but the RIB had not applied, then what was held, without what the dump holds.
    fn dump_done(sessions: &BTreeMap<PeerId, Up>, st: &mut Station, d: PendingDump) {
        let mut chunk = Vec::with_capacity(BACKLOG_CHUNK);
        let mut n = 0;
        for (peer, &(seq, _)) in &d.seqs {
            let Some(up) = sessions.get(peer) else { continue };
            let skipped = d.skipped.get(peer).copied().unwrap_or(0);
            if skipped > 0 {
                warn!(
                    "bmp {}: {skipped} routes of {} too long to rebuild, left out of the dump",
                    st.cfg.label(),
                    up.session.remote.ip()
                );
            }
            let asked = d.asked_at.get(peer).copied().unwrap_or(0);
            if seq < asked && st.cfg.wants(BmpView::PrePolicy) {
                if up.recent.front().is_none_or(|(first, _, _)| *first > seq + 1) {
                    st.cut("fell behind the RIB during its initial dump");
                    return;
                }
                // Mirroring is of what arrived while connected: not these.
                let cfg = BmpStationConfig { mirroring: false, ..st.cfg.clone() };
                for (_, t, raw) in up.recent.iter().filter(|(q, _, _)| *q > seq && *q <= asked) {
                    let (k, out) = received_messages(&cfg, &up.session, *t, raw, true);
                    chunk.extend_from_slice(&out);
                    n += k;
                }
            }
        }
        for h in d.held {
            let Some(up) = sessions.get(&h.peer) else { continue };
            let (seq, out_seq) = d.seqs.get(&h.peer).copied().unwrap_or((0, 0));
            // RFC 7854 §5: no UPDATE twice: those the dump holds are left out (mirroring,
            // a copy of what arrived, keeps them).
            let (k, out) = match &h.what {
                HeldKind::Received(raw) => received_messages(&st.cfg, &up.session, h.ts, raw, h.seq > seq),
                HeldKind::PostPolicy(msgs) if h.seq > seq => post_policy_messages(&st.cfg, &up.session, h.ts, msgs),
                HeldKind::Sent(raw) if h.seq > out_seq => {
                    (1, encode::route_monitoring(&out_header(&up.session, h.ts), raw))
                }
                _ => (0, Vec::new()),
            };
            chunk.extend_from_slice(&out);
            n += k;
            if chunk.len() >= BACKLOG_CHUNK {
                st.flush();
                st.backlog.push_back((std::mem::take(&mut n), std::mem::take(&mut chunk), false));
            }
        }
        if !chunk.is_empty() {
            st.flush();
            st.backlog.push_back((n, chunk, false));
        }
    }

    fn on_station_connected(&mut self, station: u64, conn: u64) {
        let Some(st) = self.stations.iter_mut().find(|s| s.id == station) else { return };
        // Whatever was built for an earlier connection goes no further.
        st.set_conn(Some(conn));
        st.up_peers.clear();
        st.dump = None;
        st.backlog.clear();
        st.backlog_live = 0;
        // RFC 7854 §4.3: the Initiation comes first; then a Peer Up for every session (§4.10).
        let mut out = encode::initiation(&self.id.sys_name, &self.id.sys_descr);
        let mut n = 1;
        for up in self.sessions.values() {
            if st.monitors(&up.session) {
                out.extend_from_slice(&peer_up_message(&up.session, up.ts));
                st.up_peers.insert(up.session.peer);
                n += 1;
            }
        }
        // RFC 9069 §5: the Loc-RIB pseudo-peer's Peer Up, then its routes from the RIB's feed.
        if st.cfg.wants(BmpView::LocRib) {
            out.extend_from_slice(&loc_rib_peer_up(&self.id, &st.cfg, SystemTime::now()));
            n += 1;
        }
        st.queue(n, out);
        let every = st.cfg.stats_interval_secs;
        st.next_stats = Instant::now() + Duration::from_secs(every.into());
        if st.cfg.wants(BmpView::LocRib) {
            let feed = BmpLocRibFeed {
                station: st.id,
                conn,
                families: st.cfg.families.clone(),
                link: self.link.clone(),
                waiting: st.waiting.clone(),
                room: st.cfg.buffer_limit_bytes() / 4,
                live: st.live_conn.clone(),
            };
            if self.rib.send_timeout(RibMsg::BmpLocRib(feed), Duration::from_secs(1)).is_err() {
                st.cut("could not ask the RIB for its Loc-RIB");
                return;
            }
        }
        let views = BmpDumpViews {
            pre_policy: st.cfg.wants(BmpView::PrePolicy),
            post_policy: st.cfg.wants(BmpView::PostPolicy),
            adj_rib_out: st.cfg.wants(BmpView::AdjRibOut),
        };
        // RFC 7854 §5: then the routes already received (and sent), from the RIB.
        if !st.up_peers.is_empty() && views != BmpDumpViews::default() {
            let (tx, rx) = crossbeam_channel::bounded(2);
            let msg = RibMsg::BmpDump { peers: st.up_peers.iter().copied().collect(), views, reply: tx };
            if self.rib.send_timeout(msg, Duration::from_secs(1)).is_ok() {
                let asked_at = st
                    .up_peers
                    .iter()
                    .map(|p| (*p, self.sessions.get(p).and_then(|u| u.last_seq).unwrap_or(0)))
                    .collect();
                st.dump = Some(PendingDump {
                    reply: rx,
                    held: Vec::new(),
                    held_bytes: 0,
                    asked_at,
                    seqs: BTreeMap::new(),
                    skipped: BTreeMap::new(),
                });
            } else {
                st.cut("could not ask the RIB for its initial dump");
            }
        }
    }

    /// Start added stations, stop removed ones, restart changed ones.
    fn reconfigure(&mut self, cfgs: Vec<BmpStationConfig>) {
        let (keep, gone): (Vec<Station>, Vec<Station>) =
            std::mem::take(&mut self.stations).into_iter().partition(|s| cfgs.contains(&s.cfg));
        self.stations = keep;
        for st in gone {
            info!("bmp {}: station removed from the configuration", st.cfg.label());
            st.stop("station removed from the configuration");
        }
        for cfg in cfgs {
            if self.stations.iter().any(|s| s.cfg == cfg) {
                continue;
            }
            match self.start_station(cfg.clone()) {
                Ok(st) => self.stations.push(st),
                Err(e) => warn!("bmp {}: cannot start the station thread: {e}", cfg.label()),
            }
        }
        self.active.store(!self.stations.is_empty(), Ordering::Relaxed);
        // The RIB sends post-policy changes only while some station monitors them.
        let post = self.stations.iter().any(|s| s.cfg.wants(BmpView::PostPolicy));
        if post != self.post_wanted {
            let link = post.then(|| self.link.clone());
            if self.rib.send_timeout(RibMsg::BmpPostPolicy(link), Duration::from_secs(1)).is_ok() {
                self.post_wanted = post;
                // The RIB numbers its changes from wherever its sessions are now.
                for up in self.sessions.values_mut() {
                    up.last_post = None;
                }
            }
        }
    }

    fn start_station(&mut self, cfg: BmpStationConfig) -> io::Result<Station> {
        let id = self.next_station;
        self.next_station += 1;
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(StationShared::default());
        {
            let mut s = shared.status();
            s.station = cfg.label();
            s.buffer_limit_bytes = cfg.buffer_limit_bytes() as u64;
        }
        shared.set_state("connecting", None);
        let t = station::StationThread { id, cfg: cfg.clone(), rx, shared: shared.clone(), bmp: self.link.clone() };
        let join = std::thread::Builder::new().name(format!("bmp {}", cfg.label())).spawn(move || t.run())?;
        Ok(Station {
            id,
            cfg,
            tx,
            shared,
            join: Some(join),
            conn: None,
            up_peers: BTreeSet::new(),
            next_stats: Instant::now(),
            dump: None,
            backlog: VecDeque::new(),
            backlog_live: 0,
            live_conn: Arc::new(AtomicU64::new(0)),
            waiting: Arc::new(AtomicUsize::new(0)),
            pending: (0, Vec::new()),
        })
    }

    /// RFC 7854 §4.8: every `stats_interval_secs`, a Statistics Report per monitored session;
    /// the route counts come from the RIB (asked here, answered in `answer_counts`).
    fn statistics_due(&mut self, now: Instant) {
        for st in self.stations.iter_mut() {
            let (Some(conn), every) = (st.conn, st.cfg.stats_interval_secs) else { continue };
            if every == 0 || now < st.next_stats {
                continue;
            }
            st.next_stats = now + Duration::from_secs(every.into());
            for &peer in &st.up_peers {
                let (tx, rx) = crossbeam_channel::bounded(1);
                if self.rib.try_send(RibMsg::Query(RibQuery::Counts { peer }, tx)).is_ok() {
                    self.pending_counts.push((st.id, conn, peer, rx));
                }
            }
        }
    }

    fn answer_counts(&mut self) {
        let ts = SystemTime::now();
        let mut i = 0;
        while i < self.pending_counts.len() {
            let answer = match self.pending_counts[i].3.try_recv() {
                Ok(a) => Some(a),
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    i += 1;
                    continue;
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => None,
            };
            let (station, conn, peer, _) = self.pending_counts.swap_remove(i);
            let Some(Ok(value)) = answer else { continue };
            let Ok((received, sent)) = serde_json::from_value::<(FamilyCounts, FamilyCounts)>(value) else { continue };
            let Some(up) = self.sessions.get(&peer) else { continue };
            let Some(st) = self.stations.iter_mut().find(|s| s.id == station && s.conn == Some(conn)) else { continue };
            if !st.up_peers.contains(&peer) {
                continue;
            }
            let mut stats = statistics_of(&received, &sent);
            let treated = &up.session.treated_as_withdraw;
            let counter = |i: usize| u32::try_from(treated[i].load(Ordering::Relaxed)).unwrap_or(u32::MAX);
            stats.push(Stat::Counter(encode::stat::TREATED_AS_WITHDRAW, counter(0)));
            stats.push(Stat::Counter(encode::stat::PREFIXES_TREATED_AS_WITHDRAW, counter(1)));
            st.queue(1, encode::statistics(&peer_header(&up.session, 0, ts), &stats));
        }
    }
}

/// What a station is sent for one received message: pre-policy Route Monitoring for an UPDATE
/// (unless `monitoring` is false), Route Mirroring for any message where asked.
fn received_messages(
    cfg: &BmpStationConfig,
    s: &BmpSession,
    ts: SystemTime,
    raw: &[u8],
    monitoring: bool,
) -> (u64, Vec<u8>) {
    let mut out = Vec::new();
    let mut n = 0;
    let pre = cfg.wants(BmpView::PrePolicy);
    if pre && monitoring && raw.get(18) == Some(&BGP_UPDATE) && update_families(raw).wanted(&cfg.families) {
        out.extend_from_slice(&encode::route_monitoring(&peer_header(s, 0, ts), raw));
        n += 1;
    }
    if cfg.mirroring {
        out.extend_from_slice(&encode::route_mirroring(&peer_header(s, 0, ts), &Mirrored::Message(raw)));
        n += 1;
    }
    (n, out)
}

/// RFC 7854 §4.8 (and RFC 8671 §5) statistics from the RIB's route counts.
fn statistics_of(received: &FamilyCounts, sent: &FamilyCounts) -> Vec<Stat> {
    use encode::stat;
    let mut v = vec![Stat::Gauge(stat::ADJ_RIB_IN_ROUTES, received.ipv4_unicast + received.ipv6_unicast)];
    for (fam, n) in [(Family::Ipv4Unicast, received.ipv4_unicast), (Family::Ipv6Unicast, received.ipv6_unicast)] {
        v.push(Stat::AfiGauge(stat::ADJ_RIB_IN_ROUTES_PER_AFI, fam.afi(), fam.safi(), n));
    }
    v.push(Stat::Gauge(stat::ADJ_RIB_OUT_POST_ROUTES, sent.ipv4_unicast + sent.ipv6_unicast));
    for (fam, n) in [(Family::Ipv4Unicast, sent.ipv4_unicast), (Family::Ipv6Unicast, sent.ipv6_unicast)] {
        v.push(Stat::AfiGauge(stat::ADJ_RIB_OUT_POST_ROUTES_PER_AFI, fam.afi(), fam.safi(), n));
    }
    v
}

/// The per-peer header of a session's messages: V from its address, A when its AS_PATHs are
/// 2-octet (RFC 7854 §4.2), plus `extra`.
fn peer_header(s: &BmpSession, extra: u8, ts: SystemTime) -> PeerHeader {
    let a = if s.four_octet_as { 0 } else { flags::A };
    PeerHeader::global(s.remote.ip(), s.remote_as, s.remote_id, a | extra, ts)
}

/// Post-policy Route Monitoring (RFC 7854 §4.2: L flag; 4-octet AS numbers, as the RIB keeps
/// them) of the RIB's UPDATEs of the families the station wants.
fn post_policy_messages(cfg: &BmpStationConfig, s: &BmpSession, ts: SystemTime, msgs: &[Vec<u8>]) -> (u64, Vec<u8>) {
    let ph = PeerHeader::global(s.remote.ip(), s.remote_as, s.remote_id, flags::L, ts);
    let mut out = Vec::new();
    let mut n = 0;
    for m in msgs.iter().filter(|m| update_families(m).wanted(&cfg.families)) {
        encode::route_monitoring_into(&mut out, &ph, m);
        n += 1;
    }
    (n, out)
}

/// The per-peer header of what focld sent a peer: RFC 8671 §4 O (Adj-RIB-Out) and L
/// (post-policy: after export policy, as written), A when the session's AS_PATHs are 2-octet.
fn out_header(s: &BmpSession, ts: SystemTime) -> PeerHeader {
    peer_header(s, flags::O | flags::L, ts)
}

/// RFC 9069 §4.2: F when the station's Loc-RIB is filtered (only some families).
fn loc_rib_filtered(cfg: &BmpStationConfig) -> bool {
    !cfg.families.is_empty() && !Family::ALL.iter().all(|f| cfg.families.contains(f))
}

fn loc_rib_header(id: &Identity, cfg: &BmpStationConfig, ts: SystemTime) -> PeerHeader {
    PeerHeader::loc_rib(id.asn, id.router_id, loc_rib_filtered(cfg), ts)
}

/// The name of focld's one Loc-RIB in the Peer Up's table name TLV (RFC 9069 §5.1).
pub const LOC_RIB_TABLE_NAME: &str = "global";

/// RFC 9069 §5.1: the Loc-RIB Peer Up, with the table name and an OPEN (as sent and as
/// received) that says how its routes are encoded: 4-octet AS numbers (RFC 6793) and the
/// families, no ADD-PATH (one best path per prefix), so a station decodes them right.
fn loc_rib_peer_up(id: &Identity, cfg: &BmpStationConfig, ts: SystemTime) -> Vec<u8> {
    let families = if cfg.families.is_empty() { Family::ALL.to_vec() } else { cfg.families.clone() };
    let caps = crate::wire::open::Capabilities { families, four_octet_as: Some(id.asn), ..Default::default() };
    let open = crate::wire::open::OpenMsg::new(id.asn, 0, id.router_id, caps).encode();
    let up = PeerUp {
        local_addr: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        local_port: 0,
        remote_port: 0,
        sent_open: &open,
        received_open: &open,
        table_name: Some(LOC_RIB_TABLE_NAME),
    };
    encode::peer_up(&loc_rib_header(id, cfg, ts), &up)
}

fn peer_up_message(s: &BmpSession, ts: SystemTime) -> Vec<u8> {
    let up = PeerUp {
        local_addr: s.local.ip(),
        local_port: s.local.port(),
        remote_port: s.remote.port(),
        sent_open: &s.sent_open,
        received_open: &s.received_open,
        table_name: None,
    };
    encode::peer_up(&peer_header(s, 0, ts), &up)
}

/// Which families an UPDATE speaks of: IPv4 NLRI or withdrawals (or an IPv4 End-of-RIB, the
/// empty UPDATE, RFC 4724 §2), and the AFI of MP_REACH / MP_UNREACH (RFC 4760 §3, §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FamilySet {
    v4: bool,
    v6: bool,
    other: bool,
}

impl FamilySet {
    /// Whether a station asking for `families` (empty: all) wants the UPDATE.
    fn wanted(&self, families: &[Family]) -> bool {
        if families.is_empty() {
            return true;
        }
        let none = !self.v4 && !self.v6;
        (self.v4 && families.contains(&Family::Ipv4Unicast))
            || (self.v6 && families.contains(&Family::Ipv6Unicast))
            || (none && self.other)
    }
}

fn update_families(raw: &[u8]) -> FamilySet {
    let mut f = FamilySet::default();
    let body = raw.get(BGP_HEADER_LEN..).unwrap_or_default();
    let u16_at = |b: &[u8], i: usize| b.get(i..i + 2).map(|x| u16::from_be_bytes([x[0], x[1]]) as usize);
    let Some(wlen) = u16_at(body, 0) else { return f };
    let Some(alen) = u16_at(body, 2 + wlen) else { return f };
    let attrs = body.get(4 + wlen..4 + wlen + alen).unwrap_or_default();
    let nlri_len = body.len().saturating_sub(4 + wlen + alen);
    f.v4 = wlen > 0 || nlri_len > 0 || (alen == 0 && body.len() == 4);
    let mut i = 0;
    while i + 3 <= attrs.len() {
        let (flags, ty) = (attrs[i], attrs[i + 1]);
        let (len, hdr) = if flags & 0x10 != 0 {
            match u16_at(attrs, i + 2) {
                Some(l) => (l, 4),
                None => break,
            }
        } else {
            (attrs[i + 2] as usize, 3)
        };
        if ty == 14 || ty == 15 {
            match u16_at(attrs, i + hdr) {
                Some(1) => f.v4 = true,
                Some(2) => f.v6 = true,
                _ => f.other = true,
            }
        }
        i += hdr + len;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
        body.extend_from_slice(withdrawn);
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(attrs);
        body.extend_from_slice(nlri);
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(2);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn the_families_of_an_update_come_from_its_nlri_and_mp_attributes() {
        let v4 = update(&[], &[0x40, 1, 1, 0], &[8, 10]);
        assert_eq!(update_families(&v4), FamilySet { v4: true, v6: false, other: false });
        let eor4 = update(&[], &[], &[]);
        assert_eq!(update_families(&eor4), FamilySet { v4: true, v6: false, other: false });
        // MP_UNREACH for IPv6 unicast with nothing in it: the IPv6 End-of-RIB.
        let eor6 = update(&[], &[0x80, 15, 3, 0, 2, 1], &[]);
        assert_eq!(update_families(&eor6), FamilySet { v4: false, v6: true, other: false });
        // An extended-length MP_REACH.
        let mut mp = vec![0x90, 14, 0, 5, 0, 2, 1, 0, 0];
        mp.extend_from_slice(&[0x40, 1, 1, 0]);
        let v6 = update(&[], &mp, &[]);
        assert_eq!(update_families(&v6), FamilySet { v4: false, v6: true, other: false });
        assert!(!update_families(&v6).wanted(&[Family::Ipv4Unicast]));
        assert!(update_families(&v6).wanted(&[]));
        assert!(update_families(&v4).wanted(&[Family::Ipv4Unicast]));
    }

    /// The BMP thread with one station on a local listener, the test playing the RIB.
    struct Rig {
        bmp: BmpHandle,
        rib: Receiver<RibMsg>,
        listener: std::net::TcpListener,
        station: std::net::TcpStream,
        buf: Vec<u8>,
    }

    fn rig() -> Rig {
        rig_with(vec![BmpView::PrePolicy])
    }

    fn rig_with(monitor: Vec<BmpView>) -> Rig {
        // A port nobody listens on yet: the station thread's first attempt fails, and it
        // connects once the session and its first UPDATEs are known here.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let cfg = BmpStationConfig {
            address: "127.0.0.1".parse().expect("addr"),
            port,
            connect_retry_secs: 1,
            monitor,
            mirroring: false,
            stats_interval_secs: 0,
            peers: vec![],
            families: vec![],
            buffer_limit_mb: 1,
        };
        let (rib_tx, rib) = crossbeam_channel::bounded(16);
        let id = Identity {
            sys_name: "t".into(),
            sys_descr: "t".into(),
            asn: 65001,
            router_id: std::net::Ipv4Addr::new(192, 0, 2, 1),
        };
        let bmp = spawn(&[cfg], id, rib_tx).expect("bmp thread");
        // A session, and two UPDATEs before the station is there.
        let open =
            crate::wire::open::OpenMsg::new(65002, 90, std::net::Ipv4Addr::new(192, 0, 2, 2), Default::default());
        let session = BmpSession {
            peer: 7,
            peer_address: "192.0.2.2".parse().expect("addr"),
            peer_name: None,
            local: "192.0.2.1:179".parse().expect("addr"),
            remote: "192.0.2.2:40000".parse().expect("addr"),
            remote_as: 65002,
            remote_id: std::net::Ipv4Addr::new(192, 0, 2, 2),
            four_octet_as: true,
            sent_open: Bytes::from(open.encode()),
            received_open: Bytes::from(open.encode()),
            treated_as_withdraw: Arc::default(),
        };
        bmp.link.event(BmpMsg::PeerUp { ts: SystemTime::now(), session: Arc::new(session) });
        for seq in 1..=2 {
            bmp.link.event(BmpMsg::Received { ts: SystemTime::now(), peer: 7, raw: Bytes::from(marked(seq)), seq });
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("listener");
        let (station, _) = listener.accept().expect("the station thread connects");
        station.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        Rig { bmp, rib, listener, station, buf: Vec::new() }
    }

    /// UPDATE number `n`: it announces 10.0.n.0/24.
    fn marked(n: u64) -> Vec<u8> {
        update(&[], &[0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 0, 2, 2], &[24, 10, 0, n as u8])
    }

    impl Rig {
        /// The BGP messages of every Route Monitoring the station got until it went quiet.
        fn monitored(&mut self) -> Vec<Vec<u8>> {
            use std::io::Read;
            let mut chunk = [0u8; 65536];
            while let Ok(n) = self.station.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            let mut out = Vec::new();
            while let Some(len) = encode::message_len(&self.buf).filter(|l| *l <= self.buf.len()) {
                let m: Vec<u8> = self.buf.drain(..len).collect();
                if m[5] == encode::MsgType::RouteMonitoring as u8 {
                    out.push(m[encode::COMMON_HEADER_LEN + encode::PER_PEER_HEADER_LEN..].to_vec());
                }
            }
            out
        }

        fn dump_asked(&self) -> Sender<BmpDump> {
            loop {
                match self.rib.recv_timeout(Duration::from_secs(10)) {
                    Ok(RibMsg::BmpDump { peers, reply, .. }) => {
                        assert_eq!(peers, vec![7]);
                        return reply;
                    }
                    // Told where post-policy changes go (a station monitors them).
                    Ok(RibMsg::BmpPostPolicy(Some(_))) => {}
                    other => panic!("expected a dump request, got {other:?}"),
                }
            }
        }

        fn answer(&self, reply: Sender<BmpDump>, seq: u64, dumped: Vec<u8>) {
            let p = crate::msg::BmpPeerDump {
                peer: 7,
                session: 1,
                seq,
                families: vec![Family::Ipv4Unicast],
                updates: vec![(Family::Ipv4Unicast, dumped)],
                ..Default::default()
            };
            reply.send(BmpDump { peers: vec![p], last: true }).expect("the BMP thread waits");
        }

        fn live(&self, seq: u64) {
            self.bmp.link.event(BmpMsg::Received {
                ts: SystemTime::now(),
                peer: 7,
                raw: Bytes::from(marked(seq)),
                seq,
            });
        }
    }

    #[test]
    fn updates_the_rib_had_not_applied_when_it_dumped_follow_the_dump_and_those_it_had_do_not() {
        let mut r = rig();
        let reply = r.dump_asked();
        // Seen here before the dump was asked for, but (as the RIB says) not in it: UPDATE 2.
        // Arrived while the RIB worked: UPDATE 3.
        r.live(3);
        std::thread::sleep(Duration::from_millis(100));
        let dumped = marked(100);
        r.answer(reply, 1, dumped.clone());
        let got = r.monitored();
        let eor = crate::wire::update::end_of_rib(Family::Ipv4Unicast);
        assert_eq!(got, vec![dumped, eor, marked(2), marked(3)], "the dump, End-of-RIB, then 2 and 3, once each");
    }

    #[test]
    fn updates_that_arrived_during_the_dump_but_are_in_it_are_not_sent_again() {
        let mut r = rig();
        let reply = r.dump_asked();
        r.live(3);
        r.live(4);
        std::thread::sleep(Duration::from_millis(100));
        let dumped = marked(100);
        // The RIB had applied 1 to 3 when it dumped: only 4 follows.
        r.answer(reply, 3, dumped.clone());
        r.live(5);
        let got = r.monitored();
        let eor = crate::wire::update::end_of_rib(Family::Ipv4Unicast);
        assert_eq!(got, vec![dumped, eor, marked(4), marked(5)]);
    }

    #[test]
    fn a_station_that_reconnects_during_its_dump_starts_again_with_the_initiation() {
        let mut r = rig();
        let first = r.dump_asked();
        r.live(3);
        // The station goes away before the dump is answered; the thread connects again.
        let _ = r.station.shutdown(std::net::Shutdown::Both);
        let (again, _) = r.listener.accept().expect("the station thread connects again");
        again.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        r.station = again;
        r.buf.clear();
        // Too late, and for the first connection: dropped (or not even read).
        let _ = first.send(BmpDump { last: true, ..Default::default() });
        let second = r.dump_asked();
        r.answer(second, 3, marked(101));
        std::thread::sleep(Duration::from_millis(100));
        use std::io::Read;
        let mut head = [0u8; 6];
        r.station.read_exact(&mut head).expect("a message");
        assert_eq!(head[5], encode::MsgType::Initiation as u8, "the new connection starts with the Initiation");
        r.buf.extend_from_slice(&head);
        let eor = crate::wire::update::end_of_rib(Family::Ipv4Unicast);
        assert_eq!(r.monitored(), vec![marked(101), eor], "only the second dump");
    }

    #[test]
    fn post_policy_changes_and_sent_updates_the_dump_holds_are_not_sent_again_and_later_ones_follow_it() {
        let mut r = rig_with(vec![BmpView::PostPolicy, BmpView::AdjRibOut]);
        let reply = r.dump_asked();
        // While the RIB works: post-policy changes 1 to 3 of the session, UPDATEs 1 to 3 sent.
        for seq in 1..=3 {
            let msgs = vec![marked(10 + seq)];
            r.bmp.link.event(BmpMsg::PostPolicy { ts: SystemTime::now(), peer: 7, seq, msgs });
            let raw = Bytes::from(marked(20 + seq));
            r.bmp.link.event(BmpMsg::Sent { ts: SystemTime::now(), peer: 7, raw, seq });
        }
        std::thread::sleep(Duration::from_millis(100));
        // The dump holds post-policy changes 1 and 2, and the first 2 UPDATEs sent.
        let p = crate::msg::BmpPeerDump {
            peer: 7,
            session: 1,
            seq: 2,
            out_seq: 2,
            families: vec![Family::Ipv4Unicast],
            post_policy: vec![(Family::Ipv4Unicast, marked(101))],
            adj_rib_out: vec![(Family::Ipv4Unicast, marked(102))],
            ..Default::default()
        };
        reply.send(BmpDump { peers: vec![p], last: true }).expect("the BMP thread waits");
        let raw = Bytes::from(marked(24));
        r.bmp.link.event(BmpMsg::Sent { ts: SystemTime::now(), peer: 7, raw, seq: 4 });
        let got = r.monitored();
        let eor = crate::wire::update::end_of_rib(Family::Ipv4Unicast);
        let want = [marked(101), eor.clone(), marked(102), eor, marked(13), marked(23), marked(24)];
        assert_eq!(got, want, "each view's dump and End-of-RIB, then only what came after it");
    }

    #[test]
    fn a_loc_rib_peer_up_says_4_octet_as_and_sets_f_only_when_families_are_left_out() {
        let id = Identity {
            sys_name: "t".into(),
            sys_descr: "t".into(),
            asn: 4_200_000_001,
            router_id: std::net::Ipv4Addr::new(192, 0, 2, 1),
        };
        let mut cfg = BmpStationConfig {
            address: "127.0.0.1".parse().expect("addr"),
            port: 1,
            connect_retry_secs: 1,
            monitor: vec![BmpView::LocRib],
            mirroring: false,
            stats_interval_secs: 0,
            peers: vec![],
            families: vec![],
            buffer_limit_mb: 1,
        };
        for (families, filtered) in [(vec![], false), (Family::ALL.to_vec(), false), (vec![Family::Ipv6Unicast], true)]
        {
            cfg.families = families;
            let m = loc_rib_peer_up(&id, &cfg, SystemTime::now());
            let mut b = Bytes::from(m);
            let parsed = bgpkit_parser::parse_bmp_msg(&mut b).expect("parses");
            let ph = parsed.per_peer_header.expect("header");
            assert_eq!(ph.peer_type, bgpkit_parser::parser::bmp::messages::BmpPeerType::LocalRib);
            assert_eq!(ph.peer_asn.to_u32(), 4_200_000_001);
            let bgpkit_parser::parser::bmp::messages::PerPeerFlags::LocalRibPeerFlags(f) = ph.peer_flags else {
                panic!("Loc-RIB flags")
            };
            assert_eq!(f.is_filtered(), filtered, "{:?}", cfg.families);
            let bgpkit_parser::parser::bmp::messages::BmpMessageBody::PeerUpNotification(u) = parsed.message_body
            else {
                panic!("a Peer Up")
            };
            let bgpkit_parser::models::BgpMessage::Open(open) = u.sent_open else { panic!("an OPEN") };
            let caps = format!("{:?}", open.opt_params);
            assert!(caps.contains("FourOctetAs") || caps.contains("4200000001"), "{caps}");
            assert!(!caps.contains("AddPath"), "one path per prefix: no ADD-PATH: {caps}");
        }
    }

    #[test]
    fn a_truncated_update_names_no_family_and_does_not_panic() {
        for n in 0..30 {
            let m = update(&[24, 10, 0, 0], &[0x40, 1, 1, 0, 0x80, 14, 9], &[8, 10]);
            let _ = update_families(&m[..n.min(m.len())]);
        }
    }
}
