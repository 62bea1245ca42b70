//! The peer thread's body: the poll loop that feeds the FSM and carries out its actions.
//!
//! Waiting: a small per-peer mio `Poll` watches the sockets (one token per connection, the
//! `ConnId`) and a `Waker` that is woken after every message put into the inbox or the stop
//! slot; the poll timeout is the nearest FSM timer deadline. When the RIB's bounded channel
//! is full the thread stops reading its socket (TCP backpressure on the peer) and retries
//! shortly, instead of queueing without bound.
//!
//! One way into the FSM: every socket happening, message and timer becomes an `Event`, fed
//! through `feed` in the order it happened; the driver decides nothing about connections
//! itself, it only carries out `Action`s (connect, send, close, adopt).

use super::bmp_tap::BmpTap;
use super::conn::Conn;
use super::fsm::{Action, ConnId, Event, Fsm, FsmConfig, Outgoing, PeerOpen, Received, State};
use super::sock::{self, ttl};
use super::LocalInfo;
use crate::config::{AddPathMode, PeerConfig};
use crate::control::proto::{
    self as ctl, ActionResult, CtlError, FamilyCounts, LastError, MsgCounters, PeerDetail, PeerSummary, UpdateErrors,
};
use crate::msg::{MonitorEvent, MonitorKind, MrtMsg, PeerId, PeerMsg, PeerStop, RibMsg, SessionAddrs, SessionInfo};
use crate::prefix::Family;
use crate::wire::frame::{self, MsgType, RefreshKind};
use crate::wire::graceful::{self, HelperTimes, SessionEnd};
use crate::wire::notify::{CeaseSubcode, ErrorCode, Notification};
use crate::wire::open::{self, Capabilities, OpenMsg};
use crate::wire::role;
use crate::wire::update;
use crossbeam_channel::{Receiver, Select, Sender, TrySendError};
use log::{debug, error, info, warn};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub(super) const WAKER: Token = Token(0);

/// Bytes buffered from the socket before the thread stops reading (backpressure).
pub(super) const MAX_READ_BUFFER: usize = 256 * 1024;
/// How often to retry handing a message to a full RIB channel.
const BACKLOG_RETRY: Duration = Duration::from_millis(5);
/// How long a NOTIFICATION may take to leave before the connection is closed anyway.
pub(super) const NOTIFICATION_FLUSH: Duration = Duration::from_millis(200);
/// A ROUTE-REFRESH is not answered again while more than this waits to be written to the peer.
const REFRESH_BACKLOG: usize = 1024 * 1024;
/// Messages framed per connection per loop turn, so timers and the inbox are served between
/// bursts; the loop comes straight back for the rest.
const MESSAGES_PER_TURN: usize = 512;
/// How long session up/down may wait for room at the RIB before it is given up (logged).
const RIB_BLOCKING_BOUND: Duration = Duration::from_secs(30);

/// What reaches a peer thread from other threads: its inbox and its stop slot.
pub(super) struct Inbox {
    pub(super) msgs: Receiver<PeerMsg>,
    pub(super) stop: Receiver<PeerStop>,
    /// Where the bytes waiting to be written are published (`PeerLink::has_room_for_bulk`).
    pub(super) out_queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Counters kept by the peer thread.
#[derive(Default)]
struct Stats {
    sent: MsgCounters,
    received: MsgCounters,
    connect_attempts: u64,
    connect_timeouts: u64,
    /// Incoming connections refused because their SYN came with too small a TTL (GTSM).
    gtsm_refused: u64,
    sent_prefixes: FamilyCounts,
    update_errors: UpdateErrors,
    /// RFC 7606 findings are logged at most once a minute: when the last line went out and
    /// how many were not logged since.
    update_errors_logged: Option<Instant>,
    update_errors_quiet: u64,
}

fn count(c: &mut MsgCounters, ty: MsgType) {
    match ty {
        MsgType::Open => c.open += 1,
        MsgType::Update => c.update += 1,
        MsgType::Notification => c.notification += 1,
        MsgType::Keepalive => c.keepalive += 1,
        MsgType::RouteRefresh => c.route_refresh += 1,
    }
    c.total += 1;
}

fn token(conn: ConnId) -> Token {
    Token(usize::try_from(conn.0).unwrap_or(usize::MAX))
}

pub(super) struct Peer {
    id: PeerId,
    cfg: Arc<PeerConfig>,
    label: String,
    local: LocalInfo,
    fsm: Fsm,
    poll: Poll,
    inbox: Inbox,
    /// Inbox messages taken while waiting for room at the RIB, handled first.
    deferred: VecDeque<PeerMsg>,
    rib: Sender<RibMsg>,
    /// Every open connection and outgoing attempt, in the order they were made.
    conns: Vec<Conn>,
    /// FSM events produced while carrying out actions, handled before the next poll.
    events: VecDeque<Event>,
    /// A message the RIB channel had no room for; nothing more is read until it is taken.
    rib_backlog: Option<RibMsg>,
    our_caps: Capabilities,
    peer_caps: Option<Capabilities>,
    session: u64,
    four_octet: bool,
    stats: Stats,
    last_error: Option<(LastError, Instant)>,
    /// Last connection error logged, so a peer that stays unreachable does not flood the log.
    last_connect_error: Option<String>,
    stopping: bool,
    /// Down after a max-prefix Cease (the count that tripped it), until restart or reset.
    max_prefix_down: Option<u64>,
    /// When a max-prefix shutdown ends by itself (`max_prefixes_restart_secs`).
    max_prefix_restart_at: Option<Instant>,
    /// Graceful restart as negotiated on the last Established session (RFC 4724): decides,
    /// when it ends, whether the RIB keeps its routes stale.
    session_gr: Option<crate::wire::graceful::GrNegotiated>,
    /// What BMP stations are told of this peer (`bmp_tap.rs`).
    bmp: Option<BmpTap>,
}

impl Peer {
    pub(super) fn new(
        id: PeerId,
        cfg: Arc<PeerConfig>,
        local: LocalInfo,
        poll: Poll,
        inbox: Inbox,
        rib: Sender<RibMsg>,
    ) -> Peer {
        let now = Instant::now();
        let fsm_cfg = FsmConfig {
            passive: cfg.passive,
            connect_retry: Duration::from_secs(cfg.connect_retry_secs.into()),
            local_id: local.router_id,
            local_as: cfg.local_as,
            remote_as: cfg.remote_as,
        };
        let our_caps = Capabilities {
            families: Family::ALL.to_vec(),
            route_refresh: cfg.route_refresh,
            // RFC 7313 §3.1: Enhanced Route Refresh builds on route refresh.
            enhanced_route_refresh: cfg.route_refresh && cfg.enhanced_route_refresh,
            extended_message: cfg.extended_messages,
            roles: cfg.role.map(|r| r.value()).into_iter().collect(),
            // RFC 7911 §4: receive (1) for every family we carry.
            add_path: match cfg.add_path {
                AddPathMode::Receive => Family::ALL.iter().map(|f| (*f, 1)).collect(),
                AddPathMode::Off => Vec::new(),
            },
            four_octet_as: Some(cfg.local_as),
            graceful_restart: super::graceful::our_gr_cap(&cfg.graceful, local.restarted),
            long_lived: super::graceful::our_llgr_cap(&cfg.graceful),
            ..Capabilities::default()
        };
        let bmp = local.bmp.clone().map(|l| BmpTap::new(l, id));
        Peer {
            id,
            label: cfg.label(),
            cfg,
            local,
            fsm: Fsm::new(fsm_cfg, now),
            poll,
            inbox,
            deferred: VecDeque::new(),
            rib,
            conns: Vec::new(),
            events: VecDeque::new(),
            rib_backlog: None,
            our_caps,
            peer_caps: None,
            session: 0,
            four_octet: false,
            stats: Stats::default(),
            last_error: None,
            last_connect_error: None,
            stopping: false,
            max_prefix_down: None,
            max_prefix_restart_at: None,
            session_gr: None,
            bmp,
        }
    }

    pub(super) fn run(&mut self) {
        info!("neighbor {}: starting ({})", self.label, if self.cfg.passive { "passive" } else { "active" });
        self.feed(Event::ManualStart);
        let mut events = Events::with_capacity(64);
        while !self.stopping {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    error!("neighbor {}: poll failed: {e}", self.label);
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                let Some(i) = self.conns.iter().position(|c| token(c.id) == ev.token()) else { continue };
                let c = &mut self.conns[i];
                c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                    let id = c.id;
                    self.on_connect_progress(id);
                    self.flush_output(id);
                }
            }
            self.drain_events();
            // Each stage feeds the FSM, so each message meets an up-to-date FSM.
            self.max_prefix_restart_due(Instant::now());
            self.drain_inbox();
            if self.stopping {
                break;
            }
            let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
            for id in ids {
                self.drive_conn(id);
                if self.stopping {
                    break;
                }
            }
            self.fire_timers();
            self.drain_events();
            let queued = self.conns.iter().map(|c| c.out.len().saturating_sub(c.out_pos)).sum::<usize>();
            self.inbox.out_queued.store(queued, std::sync::atomic::Ordering::Relaxed);
        }
        for c in std::mem::take(&mut self.conns) {
            c.close(&self.poll);
        }
        info!("neighbor {}: stopped", self.label);
    }

    /// The one way into the FSM: queue the event and handle it (and all it causes) now.
    fn feed(&mut self, ev: Event) {
        self.events.push_back(ev);
        self.drain_events();
    }

    /// Handle queued FSM events and the actions they produce, in order.
    fn drain_events(&mut self) {
        // Bounded: a pathological action/event loop must not spin forever.
        for _ in 0..1000 {
            let Some(ev) = self.events.pop_front() else { break };
            if let (Some(b), Event::TcpFails { .. }) = (&mut self.bmp, &ev) {
                b.peer_closed();
            }
            let actions = self.fsm.handle(ev, Instant::now());
            for a in actions {
                self.carry_out(a);
            }
            if let Some(b) = &mut self.bmp {
                b.settle();
            }
        }
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.iter().find(|c| c.id == id)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    /// The session's connection, as the FSM has it.
    fn session_conn(&self) -> Option<&Conn> {
        self.conn(self.fsm.session_conn()?)
    }

    /// When the send hold timer of the session's connection expires, if it runs.
    fn send_hold_deadline(&self) -> Option<Instant> {
        let since = self.session_conn()?.send_stalled_since?;
        Some(since + self.send_hold_time())
    }

    /// Write what waits, after the socket said it has room.
    fn flush_output(&mut self, id: ConnId) {
        let Some(c) = self.conn_mut(id) else { return };
        if c.connected && c.out_pos < c.out.len() {
            if let Err(e) = c.flush() {
                c.break_off(format!("write failed: {e}"));
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut deadline = self.fsm.next_deadline();
        for d in [self.send_hold_deadline(), self.max_prefix_restart_at].into_iter().flatten() {
            deadline = Some(deadline.map_or(d, |x| x.min(d)));
        }
        let until = deadline.map(|d| d.saturating_duration_since(now));
        if self.rib_backlog.is_some() {
            return Some(until.map_or(BACKLOG_RETRY, |u| u.min(BACKLOG_RETRY)));
        }
        // Whole messages wait (the per-turn bound was reached), or bytes wait in the socket
        // that were not read: come straight back. Part of a message is no reason to.
        let busy = self.conns.iter().any(|c| {
            c.connected
                && (c.framer.has_message()
                    || (c.eof && !c.failed)
                    || (c.readable && !c.eof && c.framer.buffered() < MAX_READ_BUFFER))
        });
        if busy {
            return Some(Duration::ZERO);
        }
        until
    }

    fn carry_out(&mut self, action: Action) {
        match action {
            Action::Connect { conn } => self.connect(conn),
            Action::Send { conn, msg: Outgoing::Open } => {
                let open = OpenMsg::new(
                    self.cfg.local_as,
                    self.cfg.hold_time_secs,
                    self.local.router_id,
                    self.our_caps.clone(),
                );
                let raw = open.encode();
                if let Some(b) = &mut self.bmp {
                    b.open_sent(conn, &raw);
                }
                self.send_raw(conn, &raw, MsgType::Open);
            }
            Action::Send { conn, msg: Outgoing::Keepalive } => {
                self.send_raw(conn, &frame::keepalive(), MsgType::Keepalive)
            }
            Action::Close { conn, notification } => self.close(conn, notification),
            Action::Adopt { conn } => {
                info!("neighbor {}: connection collision: continuing on connection {conn}", self.label);
                let caps = self.conn(conn).and_then(|c| c.peer_caps.clone());
                self.peer_caps = caps;
            }
            Action::SessionUp => self.session_up(),
            Action::SessionDown => {
                if let Some(b) = &mut self.bmp {
                    b.session_down();
                }
                let end = self.fsm.session_end().cloned().unwrap_or(SessionEnd::TcpFailed);
                let msg = if graceful::helper_keeps_routes(self.session_gr.as_ref(), &end) {
                    info!(
                        "neighbor {}: session ended ({end:?}): graceful restart, routes kept as stale (RFC 4724 §4.2)",
                        self.label
                    );
                    RibMsg::SessionStale { peer: self.id }
                } else {
                    RibMsg::SessionDown { peer: self.id }
                };
                self.send_to_rib_blocking(msg);
                self.stats.sent_prefixes = FamilyCounts::default();
            }
            Action::StateChange { from, to, reason, conn } => {
                info!("neighbor {}: state change {from} -> {to}, reason: {reason}", self.label);
                if let Some(m) = self.local.monitor.as_ref().filter(|m| m.active()) {
                    m.event(MonitorEvent {
                        ts: SystemTime::now(),
                        peer: self.cfg.clone(),
                        kind: MonitorKind::State { from: from.name(), to: to.name(), reason: reason.clone() },
                    });
                }
                if let Some(mrt) = &self.local.mrt {
                    let session = self.session_addrs(conn);
                    mrt.send(MrtMsg::StateChange { ts: SystemTime::now(), session, from: from as u16, to: to as u16 });
                }
                if to == State::Established {
                    self.last_connect_error = None;
                }
            }
        }
    }

    /// Send the NOTIFICATION (if any) and close the connection, or abandon the attempt.
    fn close(&mut self, id: ConnId, notification: Option<Notification>) {
        let Some(i) = self.conns.iter().position(|c| c.id == id) else { return };
        let mut c = self.conns.remove(i);
        if !c.connected {
            if c.outgoing && self.fsm.state() == State::Connect {
                // Abandoned for a new attempt: it never completed.
                self.stats.connect_timeouts += 1;
                self.log_connect_error("connection attempt timed out".to_string());
            }
            c.close(&self.poll);
            return;
        }
        if let Some(n) = notification {
            let cease = |sub: CeaseSubcode| n.code == ErrorCode::Cease as u8 && n.subcode == sub as u8;
            if cease(CeaseSubcode::ConnectionCollisionResolution) {
                info!("neighbor {}: connection collision: closing connection {id} ({:?})", self.label, c.remote);
            } else if cease(CeaseSubcode::ConnectionRejected) {
                info!("neighbor {}: refusing connection {id} from {:?}: {n}", self.label, c.remote);
            } else {
                warn!("neighbor {}: sending NOTIFICATION {n}", self.label);
                self.remember_error("sent", &n);
            }
            let raw = n.encode();
            if let Some(b) = &mut self.bmp {
                b.closing(id, Some(&raw));
            }
            c.queue(&raw);
            count(&mut self.stats.sent, MsgType::Notification);
        } else if let Some(b) = &mut self.bmp {
            b.closing(id, None);
        }
        if self.fsm.session_conn().is_none() {
            self.rib_backlog = None; // UPDATEs of a session that is gone
        }
        c.close(&self.poll);
    }

    /// Queue a whole message on a connection and count it.
    fn send_raw(&mut self, id: ConnId, msg: &[u8], ty: MsgType) {
        let Some(c) = self.conns.iter_mut().find(|c| c.id == id) else { return };
        c.queue(msg);
        count(&mut self.stats.sent, ty);
        if Some(id) == self.fsm.session_conn() {
            self.fsm.message_sent(Instant::now());
        }
        if let Err(e) = c.flush() {
            c.break_off(format!("write failed: {e}"));
        }
    }

    fn connect(&mut self, id: ConnId) {
        let remote = SocketAddr::new(self.cfg.address, self.cfg.remote_port);
        let key = self.cfg.password.as_deref().map(str::as_bytes);
        self.stats.connect_attempts += 1;
        debug!("neighbor {}: connecting to {remote} (connection {id})", self.label);
        match sock::connect_with_ttl(remote, self.cfg.local_address, key, Some(self.ttl_policy())) {
            Ok(s) => {
                let mut stream = TcpStream::from_std(s);
                if let Err(e) =
                    self.poll.registry().register(&mut stream, token(id), Interest::READABLE | Interest::WRITABLE)
                {
                    self.events.push_back(Event::TcpFails { conn: id, reason: format!("cannot watch socket: {e}") });
                    return;
                }
                self.conns.push(Conn::new(id, stream, true, false));
            }
            Err(e) => {
                let reason = format!("connect to {remote} failed: {e}");
                self.log_connect_error(reason.clone());
                self.events.push_back(Event::TcpFails { conn: id, reason });
            }
        }
    }

    /// An outgoing connect finished (or failed).
    fn on_connect_progress(&mut self, id: ConnId) {
        let Some(c) = self.conns.iter_mut().find(|c| c.id == id) else { return };
        if c.connected {
            return;
        }
        match c.stream.take_error() {
            Ok(None) if c.stream.peer_addr().is_ok() => {
                c.connected = true;
                c.learn_addresses();
                debug!("neighbor {}: connected from {:?} (connection {id})", self.label, c.local);
                self.events.push_back(Event::TcpConnected { conn: id, outgoing: true });
            }
            Ok(None) => {} // spurious wake-up, still connecting
            Ok(Some(e)) | Err(e) => {
                let reason = format!("connect to {}:{} failed: {e}", self.cfg.address, self.cfg.remote_port);
                self.log_connect_error(reason.clone());
                self.events.push_back(Event::TcpFails { conn: id, reason });
            }
        }
    }

    /// The TTL options of this peer's sockets (`multihop`, `ttl_security`).
    fn ttl_policy(&self) -> ttl::TtlPolicy {
        ttl::TtlPolicy::new(self.cfg.multihop, self.cfg.ttl_security)
    }

    /// Give an accepted socket this peer's TTL and GTSM minimum before anything is read from
    /// it (it carries the listener's TTL 255 until then), and check the TTL its SYN came with
    /// (RFC 5082 §3: a packet below the minimum is dropped; the bytes that came between the
    /// handshake and this call were only checked through the SYN). False: closed, with a log.
    fn secure_incoming(&mut self, s: &std::net::TcpStream, from: Option<SocketAddr>) -> bool {
        use std::os::fd::AsRawFd;
        let policy = self.ttl_policy();
        let fd = s.as_raw_fd();
        let socket_v6 = s.local_addr().map(|a| a.is_ipv6()).unwrap_or(self.cfg.address.is_ipv6());
        if let Err(e) = ttl::apply(fd, ttl::Carries::of_peer(self.cfg.address, socket_v6), policy) {
            let from = from.map_or(self.cfg.address, |a| a.ip());
            error!(
                "neighbor {}: connection from {from} closed: {e}; no session runs without its TTL settings",
                self.label
            );
            return false;
        }
        let Some(min) = policy.min_recv else { return true };
        match ttl::syn_ttl(fd) {
            Some(got) if got < min => {
                self.stats.gtsm_refused += 1;
                let n = self.stats.gtsm_refused;
                let msg = format!(
                    "connection from {} refused: its SYN arrived with TTL {got}, below the GTSM minimum {min} \
                     (RFC 5082 §3: the neighbor must send with TTL 255, and multihop = {} allows that many hops)",
                    from.map_or(self.cfg.address, |a| a.ip()),
                    self.cfg.multihop
                );
                // A neighbor retries every few seconds: logged the 1st, 10th, 100th... time.
                if n.to_string().strip_prefix('1').is_some_and(|rest| rest.bytes().all(|b| b == b'0')) {
                    warn!("neighbor {}: {msg} ({n} so far)", self.label);
                } else {
                    debug!("neighbor {}: {msg}", self.label);
                }
                false
            }
            _ => true,
        }
    }

    /// A connection from the peer, handed over by the listener: the FSM decides what it is.
    fn on_incoming(&mut self, s: std::net::TcpStream) {
        let from = s.peer_addr().map(sock::canonical_addr).ok();
        if !self.secure_incoming(&s, from) {
            let _ = s.shutdown(std::net::Shutdown::Both);
            return;
        }
        if let Err(e) = s.set_nonblocking(true) {
            warn!("neighbor {}: cannot use incoming connection: {e}", self.label);
            return;
        }
        let mut stream = TcpStream::from_std(s);
        let id = self.fsm.new_conn_id();
        if let Err(e) = self.poll.registry().register(&mut stream, token(id), Interest::READABLE | Interest::WRITABLE) {
            warn!("neighbor {}: cannot watch incoming connection: {e}", self.label);
            return;
        }
        debug!("neighbor {}: connection {id} from {from:?} in state {}", self.label, self.fsm.state());
        self.conns.push(Conn::new(id, stream, false, true));
        self.feed(Event::TcpConnected { conn: id, outgoing: false });
    }

    /// Decode and check a received OPEN body (RFC 4271 §6.2): what was negotiated, or the
    /// NOTIFICATION to answer with.
    fn check_open(&self, body: &[u8]) -> Result<(OpenMsg, open::Negotiated), Notification> {
        let o = OpenMsg::decode(body)?;
        let c = &self.cfg;
        if let Err(e) = role::check_roles(c.role, c.strict_role, &o.caps.roles) {
            warn!("neighbor {}: {e}; refusing the session with Role Mismatch (RFC 9234 §4.2)", self.label);
        }
        let (ours, hold) = (&self.our_caps, c.hold_time_secs);
        let neg = open::validate_open(&o, c.remote_as, c.local_as, self.local.router_id, ours, hold, c.strict_role)?;
        Ok((o, neg))
    }

    /// Flush, read and process the messages of one connection.
    fn drive_conn(&mut self, id: ConnId) {
        if !self.take_backlog() {
            return;
        }
        let Some(c) = self.conn_mut(id) else { return };
        if !c.connected {
            return;
        }
        // A connection that breaks keeps what it received: those messages are processed
        // first, and the failure is reported after them.
        if let Err(e) = c.flush() {
            c.break_off(format!("write failed: {e}"));
        }
        if c.readable && !c.eof && c.framer.buffered() < MAX_READ_BUFFER {
            if let Err(e) = c.fill() {
                c.break_off(format!("read failed: {e}"));
            }
        }
        for _ in 0..MESSAGES_PER_TURN {
            let Some(c) = self.conns.iter_mut().find(|c| c.id == id) else { return }; // closed by the FSM
            let end = if c.eof && !c.failed { Some(c.broken.clone()) } else { None };
            match c.framer.next_message() {
                Ok(Some((ty, raw))) => {
                    c.bytes_seen_by_hold = c.bytes_in;
                    count(&mut self.stats.received, ty);
                    self.archive_message(id, ty, raw.clone());
                    self.monitor_message(id, ty, &raw);
                    self.bmp_message(id, ty, &raw);
                    self.on_message(id, ty, &raw);
                    if self.rib_backlog.is_some() || self.stopping {
                        return; // a full RIB: stop reading (backpressure)
                    }
                }
                Ok(None) => {
                    // Every whole message that came before the end of the stream, the peer's
                    // NOTIFICATION included, has been processed and archived: now the end.
                    if let Some(broken) = end {
                        c.failed = true;
                        let reason = broken.unwrap_or_else(|| "connection closed by peer".into());
                        self.feed(Event::TcpFails { conn: id, reason });
                    }
                    return;
                }
                Err(n) => {
                    // RFC 4271 §6.1: a framing error ends the session with its NOTIFICATION.
                    self.feed(Event::Message { conn: id, msg: Received::Invalid(n.into()) });
                    return;
                }
            }
        }
    }

    /// Addresses and ASNs of a connection for MRT records (configured values where no
    /// connection tells the real ones).
    fn session_addrs(&self, conn: Option<ConnId>) -> SessionAddrs {
        let conn = conn.and_then(|id| self.conn(id)).filter(|c| c.connected);
        let peer_ip = conn.and_then(|c| c.remote).map(|a| a.ip()).unwrap_or(self.cfg.address);
        let unspecified =
            if peer_ip.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
        let local_ip = conn.and_then(|c| c.local).map(|a| a.ip()).or(self.cfg.local_address).unwrap_or(unspecified);
        SessionAddrs { peer_as: self.cfg.remote_as, local_as: self.cfg.local_as, peer_ip, local_ip }
    }

    /// Every received message goes to the archive as received, before it is parsed, so
    /// messages that fail to parse are kept too, and so are those of a collision candidate
    /// (with that connection's addresses). KEEPALIVEs only when asked for.
    fn archive_message(&self, id: ConnId, ty: MsgType, raw: bytes::Bytes) {
        let Some(mrt) = &self.local.mrt else { return };
        if ty == MsgType::Keepalive && !mrt.record_keepalives() {
            return;
        }
        // Until the OPENs are exchanged we speak 4-octet AS (our capability).
        let neg = self.conn(id).and_then(|c| c.negotiated.as_ref());
        let as4 = neg.is_none_or(|n| n.four_octet_as);
        // RFC 8050 §3: _ADDPATH subtypes for UPDATEs whose NLRI carry path identifiers.
        let ap = neg.map(|n| update::AddPath::of(&n.add_path_rx)).unwrap_or_default();
        let body = raw.get(frame::HEADER_LEN..).unwrap_or_default();
        let add_path = ty == MsgType::Update && update::carries_path_ids(body, ap);
        let session = self.session_addrs(Some(id));
        mrt.send(MrtMsg::Message { ts: SystemTime::now(), as4, add_path, session, raw });
    }

    /// Received messages for BMP: OPENs kept for the Peer Up, a NOTIFICATION for the Peer
    /// Down, and the Established session's messages for Route Monitoring and Mirroring.
    fn bmp_message(&mut self, id: ConnId, ty: MsgType, raw: &bytes::Bytes) {
        let Some(b) = &mut self.bmp else { return };
        match ty {
            MsgType::Open => b.open_received(id, raw),
            MsgType::Notification => b.notification_received(id, raw),
            _ => {}
        }
        b.received(id, raw);
    }

    /// Received UPDATEs and NOTIFICATIONs for `focl monitor`, only while someone listens.
    fn monitor_message(&self, id: ConnId, ty: MsgType, raw: &bytes::Bytes) {
        let Some(m) = self.local.monitor.as_ref().filter(|m| m.active()) else { return };
        if !matches!(ty, MsgType::Update | MsgType::Notification) {
            return;
        }
        let neg = self.conn(id).and_then(|c| c.negotiated.as_ref());
        let four_octet_as = neg.is_none_or(|n| n.four_octet_as);
        let add_path = neg.map(|n| update::AddPath::of(&n.add_path_rx)).unwrap_or_default();
        let ibgp = self.cfg.local_as == self.cfg.remote_as;
        m.event(MonitorEvent {
            ts: SystemTime::now(),
            peer: self.cfg.clone(),
            kind: MonitorKind::Message { raw: raw.clone(), four_octet_as, ibgp, add_path },
        });
    }

    /// Turn one received message into its FSM event; UPDATE and ROUTE-REFRESH content goes to
    /// the RIB once the FSM has taken the message as the Established session's.
    fn on_message(&mut self, id: ConnId, ty: MsgType, raw: &[u8]) {
        let body = raw.get(frame::HEADER_LEN..).unwrap_or_default();
        let msg = |msg| Event::Message { conn: id, msg };
        match ty {
            MsgType::Open if !self.fsm.expects_open(id) => self.feed(msg(Received::UnexpectedOpen)),
            MsgType::Open => match self.check_open(body) {
                Ok((o, neg)) => {
                    if let Some(c) = self.conn_mut(id) {
                        c.peer_caps = Some(o.caps.clone());
                        // RFC 8654 §4: longer messages from now on, once both sides said so.
                        c.framer.set_max_len(neg.max_message_len());
                        c.negotiated = Some(neg.clone());
                    }
                    self.feed(msg(Received::Open(PeerOpen { negotiated: neg, remote_id: o.router_id })));
                    if self.fsm.session_conn() == Some(id) {
                        self.four_octet = self.fsm.negotiated().is_some_and(|n| n.four_octet_as);
                        self.peer_caps = Some(o.caps);
                    }
                }
                Err(n) => self.feed(msg(Received::Invalid(n))),
            },
            MsgType::Keepalive => self.feed(msg(Received::Keepalive)),
            MsgType::Notification => {
                // The header check keeps a body of 2 bytes or more, so this does not fail; if it
                // did, the peer would get 1/2 back.
                let n = match Notification::decode(body) {
                    Ok(n) => n,
                    Err(e) => return self.feed(msg(Received::Invalid(e.into()))),
                };
                warn!("neighbor {}: received NOTIFICATION {n} (connection {id})", self.label);
                self.remember_error("received", &n);
                self.feed(msg(Received::Notification(n)));
            }
            MsgType::Update => {
                // Timers first (any message restarts the hold timer), then the content, and
                // only in Established; elsewhere the FSM answers with an FSM error.
                self.feed(msg(Received::Update));
                if !self.established_on(id) {
                    return;
                }
                let session = update::Session { four_octet_as: self.four_octet, ibgp: self.cfg.is_ibgp() };
                // RFC 7911: path identifiers on the families negotiated for them, never guessed.
                let ap = self.fsm.negotiated().map(|n| update::AddPath::of(&n.add_path_rx)).unwrap_or_default();
                match update::parse_update_with(body, session, ap) {
                    Ok(mut u) => {
                        if !u.problems.is_empty() {
                            self.note_update_problems(&u.problems);
                        }
                        if u.treat_as_withdraw() {
                            if let Some(b) = &self.bmp {
                                b.treated_as_withdraw(u.announced.len());
                            }
                            // RFC 7606 §2: treat-as-withdraw keeps the session up.
                            u.withdraw_announced();
                        }
                        if let Some(r) = self.cfg.role.filter(|_| !u.announced.is_empty()) {
                            // RFC 9234 §5: OTC added or checked on ingress; a leak is marked.
                            u.otc_leak = role::otc_ingress(r, self.cfg.remote_as, &mut u.attrs);
                        }
                        self.send_to_rib(RibMsg::Update { peer: self.id, update: u });
                    }
                    Err(e) => self.feed(msg(Received::Invalid(e.into()))),
                }
            }
            MsgType::RouteRefresh => {
                self.feed(msg(Received::RouteRefresh));
                if !self.established_on(id) {
                    return;
                }
                let waiting = self.conn(id).map_or(0, |c| c.out.len() - c.out_pos);
                let enhanced = self.fsm.negotiated().is_some_and(|n| n.enhanced_route_refresh);
                match frame::decode_route_refresh(body) {
                    // A peer asking again while it has not taken the last answer gets nothing
                    // more queued: what waits is already its whole Adj-RIB-Out.
                    Ok(Some((family, RefreshKind::Request)))
                        if self.our_caps.route_refresh && waiting > REFRESH_BACKLOG =>
                    {
                        debug!(
                            "neighbor {}: ignoring ROUTE-REFRESH for {family}: {waiting} bytes not taken yet",
                            self.label
                        );
                    }
                    // RFC 2918 §4: only if we advertised the capability; unknown AFI/SAFI ignored.
                    Ok(Some((family, RefreshKind::Request))) if self.our_caps.route_refresh => {
                        info!("neighbor {}: route refresh requested for {family}", self.label);
                        self.send_to_rib(RibMsg::Refresh { peer: self.id, family });
                    }
                    // RFC 7313 §4: the peer re-advertises a family between BoRR and EoRR; what
                    // it does not re-advertise is swept at EoRR. Only when negotiated.
                    Ok(Some((family, kind @ (RefreshKind::Begin | RefreshKind::End)))) if enhanced => {
                        let begin = kind == RefreshKind::Begin;
                        debug!("neighbor {}: {} for {family}", self.label, if begin { "BoRR" } else { "EoRR" });
                        self.send_to_rib(RibMsg::RefreshMark { peer: self.id, family, begin });
                    }
                    Ok(_) => debug!("neighbor {}: ignoring ROUTE-REFRESH", self.label),
                    Err(e) => self.feed(msg(Received::Invalid(e.into()))),
                }
            }
        }
    }

    /// Whether `id` is the connection of an Established session.
    fn established_on(&self, id: ConnId) -> bool {
        self.fsm.state() == State::Established && self.fsm.session_conn() == Some(id)
    }

    /// Count RFC 7606 findings and log them, at most one line a minute per neighbor.
    fn note_update_problems(&mut self, problems: &[update::AttrProblem]) {
        let withdraw = problems.iter().any(|p| p.handling == update::Handling::TreatAsWithdraw);
        let e = &mut self.stats.update_errors;
        if withdraw {
            e.treat_as_withdraw += 1;
        }
        e.attribute_discard +=
            problems.iter().filter(|p| p.handling == update::Handling::AttributeDiscard).count() as u64;
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let text = text.join("; ");
        e.last = Some(text.clone());
        let now = Instant::now();
        let due = self.stats.update_errors_logged.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60));
        if due {
            let quiet = std::mem::take(&mut self.stats.update_errors_quiet);
            let more =
                if quiet > 0 { format!(" ({quiet} more malformed UPDATEs in the last minute)") } else { String::new() };
            warn!("neighbor {}: malformed UPDATE: {text}{more}", self.label);
            self.stats.update_errors_logged = Some(now);
        } else {
            self.stats.update_errors_quiet += 1;
        }
    }

    /// Hand a message to the RIB without blocking; a full channel parks it (backpressure).
    fn send_to_rib(&mut self, msg: RibMsg) {
        match self.rib.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(m)) => self.rib_backlog = Some(m),
            Err(TrySendError::Disconnected(_)) => {
                error!("neighbor {}: the RIB thread is gone", self.label);
                self.stopping = true;
            }
        }
    }

    /// Session up/down must reach the RIB (after any parked UPDATE): wait for room. While
    /// waiting, the inbox is still taken (into `deferred`), so a RIB that waits for room in
    /// this peer's inbox at the same time cannot deadlock with us.
    fn send_to_rib_blocking(&mut self, msg: RibMsg) {
        let (rib, inbox) = (self.rib.clone(), self.inbox.msgs.clone());
        for m in self.rib_backlog.take().into_iter().chain(std::iter::once(msg)) {
            let deadline = Instant::now() + RIB_BLOCKING_BOUND;
            loop {
                let mut sel = Select::new();
                let send_op = sel.send(&rib);
                sel.recv(&inbox);
                let Ok(op) = sel.select_deadline(deadline) else {
                    error!("neighbor {}: the RIB took nothing for {RIB_BLOCKING_BOUND:?}", self.label);
                    break;
                };
                if op.index() == send_op {
                    if op.send(&rib, m).is_err() {
                        self.stopping = true;
                    }
                    break;
                }
                match op.recv(&inbox) {
                    Ok(x) => self.deferred.push_back(x),
                    Err(_) => {
                        // Every sender is gone; only the RIB is left to wait for.
                        if rib.send_deadline(m, deadline).is_err() {
                            self.stopping = true;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Retry the parked message; true when the way is clear again.
    fn take_backlog(&mut self) -> bool {
        let Some(m) = self.rib_backlog.take() else { return true };
        self.send_to_rib(m);
        self.rib_backlog.is_none()
    }

    fn session_up(&mut self) {
        self.session += 1;
        let Some(neg) = self.fsm.negotiated().cloned() else { return };
        let Some(c) = self.session_conn() else { return };
        let local = c.local.map(|a| a.ip());
        let remote = c.remote.map(|a| a.ip());
        let (conn, local_sock, remote_sock) = (c.id, c.local, c.remote);
        let info = SessionInfo {
            session: self.session,
            local_addr: local.unwrap_or(self.cfg.address),
            remote_addr: remote.unwrap_or(self.cfg.address),
            local_as: self.cfg.local_as,
            remote_as: self.cfg.remote_as,
            four_octet_as: neg.four_octet_as,
            families: neg.families.clone(),
            remote_id: self.fsm.remote_id().unwrap_or(Ipv4Addr::UNSPECIFIED),
            enhanced_route_refresh: neg.enhanced_route_refresh,
            max_message_len: neg.max_message_len(),
            role: neg.role,
            add_path_rx: neg.add_path_rx.clone(),
            max_paths_per_prefix: self.cfg.max_paths_per_prefix,
            link_local: match (local, remote) {
                (Some(IpAddr::V6(l)), Some(IpAddr::V6(r))) => {
                    super::ifaddr::pick_link_local(&super::ifaddr::ipv6_addresses(), l, r)
                }
                _ => None,
            },
            graceful: neg.graceful.as_ref().map(|g| {
                let c = &self.cfg.graceful;
                HelperTimes::of(g, c.max_restart_time_secs, c.max_stale_secs, c.long_lived_stale_secs)
            }),
        };
        self.session_gr = neg.graceful.clone();
        // RFC 4724 §4.1: the R and F bits are for the first session after our restart only.
        if self.our_caps.graceful_restart.as_ref().is_some_and(|g| g.restarting) {
            self.our_caps.graceful_restart = super::graceful::our_gr_cap(&self.cfg.graceful, false);
        }
        info!(
            "neighbor {}: session established, hold time {}s, families {}",
            self.label,
            neg.hold_time,
            neg.families.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
        );
        if let (Some(b), Some(l), Some(r)) = (&mut self.bmp, local_sock, remote_sock) {
            let remote_id = self.fsm.remote_id().unwrap_or(Ipv4Addr::UNSPECIFIED);
            b.session_up(conn, &self.cfg, l, r, remote_id, neg.four_octet_as);
        }
        self.send_to_rib_blocking(RibMsg::SessionUp { peer: self.id, info });
    }

    fn drain_inbox(&mut self) {
        if let Ok(PeerStop(sub, communication)) = self.inbox.stop.try_recv() {
            self.feed(Event::ManualStop { subcode: sub, communication, restart: false });
            self.stopping = true;
            return;
        }
        while let Some(msg) = self.deferred.pop_front().or_else(|| self.inbox.msgs.try_recv().ok()) {
            match msg {
                PeerMsg::Incoming(s) => self.on_incoming(s),
                PeerMsg::Send { session, msgs, sent } => {
                    let live = session == self.session && self.fsm.state() == State::Established;
                    let conn = self.fsm.session_conn().filter(|_| live);
                    if let Some(b) = &mut self.bmp {
                        // Counts every UPDATE taken, written or not (RFC 8671 Adj-RIB-Out).
                        b.sent(conn, &msgs);
                    }
                    let Some(conn) = conn else {
                        continue; // for a session that is gone
                    };
                    for m in &msgs {
                        // UPDATEs, and the BoRR/EoRR around a refresh (RFC 7313).
                        let ty = m.get(18).copied().and_then(MsgType::from_u8).unwrap_or(MsgType::Update);
                        self.send_raw(conn, m, ty);
                    }
                    self.stats.sent_prefixes.ipv4_unicast += sent.ipv4_unicast;
                    self.stats.sent_prefixes.ipv6_unicast += sent.ipv6_unicast;
                }
                PeerMsg::Summary(reply) => {
                    let _ = reply.send(self.summary());
                }
                PeerMsg::Status(reply) => {
                    let _ = reply.send(self.detail());
                }
                // A disabled peer stays down until `focl peer enable` (focl(8)); a reset would
                // bring it back up behind the operator's back.
                PeerMsg::Reset(reply) if self.admin_down() => {
                    let _ = reply.send(Err(CtlError::new(
                        ctl::code::BAD_ARGUMENT,
                        format!("neighbor {} is disabled; focl peer enable {} starts it again", self.label, self.label),
                    )));
                }
                PeerMsg::Reset(reply) => {
                    info!("neighbor {}: reset by operator", self.label);
                    self.max_prefix_down = None;
                    self.max_prefix_restart_at = None;
                    self.feed(Event::ManualStop {
                        subcode: CeaseSubcode::AdministrativeReset,
                        communication: Some("session reset by operator".into()),
                        restart: true,
                    });
                    let _ = reply.send(Ok(ActionResult { peer: self.label.clone(), message: "session reset".into() }));
                }
                PeerMsg::Refresh(family, reply) => {
                    let _ = reply.send(self.request_refresh(family));
                }
                PeerMsg::MaxPrefixes { count } => {
                    let limit = self.cfg.max_prefixes.unwrap_or(0);
                    if self.fsm.state() == State::Established {
                        let again = match self.cfg.max_prefixes_restart_secs {
                            Some(s) => format!("starting again in {s} s"),
                            None => "down until focl peer reset".to_string(),
                        };
                        warn!("neighbor {}: {count} prefixes, over max_prefixes {limit}: {again}", self.label);
                        self.feed(Event::ManualStop {
                            subcode: CeaseSubcode::MaximumPrefixesReached,
                            communication: None,
                            restart: false,
                        });
                        self.max_prefix_down = Some(count);
                        self.max_prefix_restart_at = self
                            .cfg
                            .max_prefixes_restart_secs
                            .map(|s| Instant::now() + Duration::from_secs(u64::from(s)));
                    }
                }
                PeerMsg::Disable(reply) => {
                    let message = if self.fsm.is_enabled() {
                        info!("neighbor {}: disabled by operator", self.label);
                        self.feed(Event::ManualStop {
                            subcode: CeaseSubcode::AdministrativeShutdown,
                            communication: Some("session disabled by operator".into()),
                            restart: false,
                        });
                        "disabled"
                    } else {
                        "already disabled"
                    };
                    let _ = reply.send(Ok(ActionResult { peer: self.label.clone(), message: message.into() }));
                }
                PeerMsg::GracefulStop => {
                    let graceful = self.cfg.graceful.graceful_restart == crate::config::GracefulMode::On
                        && self.fsm.state() == State::Established
                        && self.fsm.negotiated().is_some_and(|n| n.graceful.is_some());
                    if graceful {
                        info!("neighbor {}: focld restarting: closing the session without NOTIFICATION; the neighbor keeps our routes for {} s (RFC 4724)", self.label, self.cfg.graceful.restart_time_secs);
                        self.feed(Event::GracefulStop);
                    } else {
                        self.feed(Event::ManualStop {
                            subcode: CeaseSubcode::AdministrativeShutdown,
                            communication: Some("focld restarting".into()),
                            restart: false,
                        });
                    }
                    self.stopping = true;
                    return;
                }
                PeerMsg::Enable(reply) => {
                    self.max_prefix_down = None;
                    self.max_prefix_restart_at = None;
                    let message = if self.fsm.is_enabled() {
                        "already enabled"
                    } else {
                        info!("neighbor {}: enabled by operator", self.label);
                        self.feed(Event::ManualStart);
                        "enabled"
                    };
                    let _ = reply.send(Ok(ActionResult { peer: self.label.clone(), message: message.into() }));
                }
            }
        }
    }

    /// `focl peer refresh`: RFC 2918 §3, only to a peer that advertised the capability.
    fn request_refresh(&mut self, family: Option<Family>) -> Result<ActionResult, CtlError> {
        if self.fsm.state() != State::Established {
            return Err(CtlError::new(
                ctl::code::NOT_ESTABLISHED,
                format!("neighbor {} is {}, not Established", self.label, self.fsm.state()),
            ));
        }
        let caps_ok = self.peer_caps.as_ref().is_some_and(|c| c.route_refresh || c.enhanced_route_refresh);
        if !caps_ok {
            return Err(CtlError::new(
                ctl::code::NOT_SUPPORTED,
                format!("neighbor {} did not advertise the route refresh capability (RFC 2918); reset the session instead: focl peer reset {}", self.label, self.cfg.address),
            ));
        }
        let negotiated = self.fsm.negotiated().map(|n| n.families.clone()).unwrap_or_default();
        let families: Vec<Family> = match family {
            Some(f) if negotiated.contains(&f) => vec![f],
            Some(f) => {
                return Err(CtlError::new(
                    ctl::code::BAD_ARGUMENT,
                    format!("{f} was not negotiated with neighbor {}", self.label),
                ));
            }
            None => negotiated,
        };
        let Some(conn) = self.fsm.session_conn() else {
            return Err(CtlError::new(
                ctl::code::NOT_ESTABLISHED,
                format!("neighbor {} has no connection", self.label),
            ));
        };
        for f in &families {
            self.send_raw(conn, &frame::route_refresh(*f), MsgType::RouteRefresh);
        }
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        let enhanced = self.fsm.negotiated().is_some_and(|n| n.enhanced_route_refresh);
        // RFC 7313 §4: with Enhanced Route Refresh the peer brackets its answer with BoRR and
        // EoRR, and what it does not send again is swept.
        let how = if enhanced { " (enhanced: routes not sent again before EoRR are removed)" } else { "" };
        info!("neighbor {}: sent ROUTE-REFRESH for {}{how}", self.label, names.join(", "));
        let message = format!("route refresh sent for {}{how}", names.join(", "));
        Ok(ActionResult { peer: self.label.clone(), message })
    }

    /// The end of a max-prefix shutdown; checked before connections are looked at, so one
    /// arriving right at the restart time is taken.
    fn max_prefix_restart_due(&mut self, now: Instant) {
        if self.max_prefix_restart_at.is_some_and(|d| d <= now) {
            self.max_prefix_restart_at = None;
            if !self.fsm.is_enabled() {
                info!("neighbor {}: starting again after the maximum-prefix shutdown", self.label);
                self.feed(Event::ManualStart);
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        if self.send_hold_deadline().is_some_and(|d| d <= now) {
            let secs = self.send_hold_time().as_secs();
            warn!("neighbor {}: send hold timer expired: the peer took no data for {secs} s (RFC 9687)", self.label);
            if let Some(c) = self.fsm.session_conn().and_then(|id| self.conn_mut(id)) {
                c.send_stalled_since = None;
            }
            // Best effort: the peer is not reading, so this NOTIFICATION is unlikely to arrive.
            let n = Notification::new(ErrorCode::SendHoldTimerExpired, 0, vec![]);
            if let Some(conn) = self.fsm.session_conn() {
                self.feed(Event::Message { conn, msg: Received::Invalid(n) });
            }
        }
        self.max_prefix_restart_due(now);
        for ev in self.fsm.expired_timers(now) {
            if ev == Event::HoldTimerExpires && self.hold_timer_may_wait(now) {
                continue;
            }
            self.feed(ev);
        }
    }

    /// The HoldTimer expired: may it wait? Whole messages that we have not processed yet (our
    /// own backpressure) prove the peer alive, and each would have restarted the timer. Like
    /// BIRD, bytes may be waiting in the socket: they are read, and whole messages among them
    /// are processed. Otherwise only bytes that arrived since the last look postpone expiry,
    /// once and briefly (`Fsm::postpone_hold_timer`): part of a message is no proof of life,
    /// or a peer stalled mid-UPDATE would stay Established forever.
    fn hold_timer_may_wait(&mut self, now: Instant) -> bool {
        let Some(id) = self.fsm.session_conn() else { return false };
        let backlogged = self.rib_backlog.is_some() || self.conn(id).is_some_and(|c| c.framer.has_message());
        if backlogged && self.fsm.state() == State::Established {
            self.fsm.whole_messages_waiting(now);
            return true;
        }
        let Some(c) = self.conn_mut(id) else { return false };
        if c.connected && !c.eof {
            let _ = c.fill();
        }
        let arrived = c.bytes_in > c.bytes_seen_by_hold;
        c.bytes_seen_by_hold = c.bytes_in;
        if c.framer.has_message() {
            self.drive_conn(id);
            if self.fsm.timers().hold.is_some_and(|d| d > now) {
                return true;
            }
        }
        arrived && self.fsm.postpone_hold_timer(now)
    }

    /// RFC 9687 §3: the configured send hold time, or max(8 minutes, 2 x the hold time).
    fn send_hold_time(&self) -> Duration {
        if self.cfg.send_hold_time_secs > 0 {
            return Duration::from_secs(u64::from(self.cfg.send_hold_time_secs));
        }
        let hold = self.fsm.negotiated().map_or(self.cfg.hold_time_secs, |n| n.hold_time);
        Duration::from_secs(480.max(2 * u64::from(hold)))
    }

    fn remember_error(&mut self, direction: &str, n: &Notification) {
        let e = LastError {
            direction: direction.to_string(),
            code: n.code,
            subcode: n.subcode,
            name: n.name(),
            reason: n.shutdown_communication(),
            age_secs: 0,
        };
        self.last_error = Some((e, Instant::now()));
    }

    /// Log a connection problem once, not on every retry.
    fn log_connect_error(&mut self, msg: String) {
        if self.last_connect_error.as_deref() != Some(msg.as_str()) {
            warn!("neighbor {}: {msg}{}", self.label, self.md5_hint_suffix());
            self.last_connect_error = Some(msg);
        } else {
            debug!("neighbor {}: {msg}", self.label);
        }
    }

    /// GTSM is on and the peer never got a message through, while connections timed out or
    /// came with too small a TTL: what a peer too far away or without GTSM looks like.
    fn gtsm_likely_cause(&self) -> bool {
        self.cfg.ttl_security
            && self.fsm.state() != State::Established
            && self.stats.received.total == 0
            && (self.stats.connect_timeouts > 0 || self.stats.gtsm_refused > 0)
    }

    fn md5_hint_suffix(&self) -> &'static str {
        if self.cfg.password.is_some() && self.stats.connect_timeouts > 0 {
            " (a TCP-MD5 password is configured: a password mismatch makes connections time out silently)"
        } else {
            ""
        }
    }

    /// Taken down by `focl peer disable` (not by a max-prefix shutdown).
    fn admin_down(&self) -> bool {
        !self.fsm.is_enabled() && self.max_prefix_down.is_none()
    }

    /// Why the peer does not connect, and when a max-prefix shutdown ends by itself.
    fn down_reason(&self, now: Instant) -> (Option<String>, Option<u64>) {
        if self.max_prefix_down.is_some() && self.fsm.state() != State::Established {
            let restart = self.max_prefix_restart_at.map(|at| at.saturating_duration_since(now).as_secs());
            (Some("max-prefix".into()), restart)
        } else if self.admin_down() {
            (Some("admin down".into()), None)
        } else {
            (None, None)
        }
    }

    fn summary(&self) -> PeerSummary {
        let now = Instant::now();
        PeerSummary {
            address: self.cfg.address.to_string(),
            name: self.cfg.name.clone(),
            remote_as: self.cfg.remote_as,
            state: self.fsm.state().name().to_string(),
            state_secs: now.duration_since(self.fsm.state_since()).as_secs(),
            uptime_secs: self.fsm.established_at().map(|t| now.duration_since(t).as_secs()),
            prefixes_received: FamilyCounts::default(),
            messages_received: self.stats.received.total,
            messages_sent: self.stats.sent.total,
            flaps: self.fsm.flaps(),
            passive: self.cfg.passive,
            disabled: self.admin_down(),
            down_reason: self.down_reason(now).0,
            restart_in_secs: self.down_reason(now).1,
        }
    }

    fn detail(&self) -> PeerDetail {
        let now = Instant::now();
        let neg = self.fsm.negotiated();
        let conn = self.session_conn().filter(|c| c.connected);
        let state = self.fsm.state();
        let hint = if let Some(count) = self.max_prefix_down.filter(|_| state != State::Established) {
            let limit = self.cfg.max_prefixes.unwrap_or(0);
            Some(match self.max_prefix_restart_at {
                Some(at) => format!(
                    "sent {count} prefixes, over max_prefixes {limit}; starting again in {} s (or focl peer reset)",
                    at.saturating_duration_since(now).as_secs()
                ),
                None => format!("sent {count} prefixes, over max_prefixes {limit}; down until focl peer reset"),
            })
        } else if self.gtsm_likely_cause() {
            let min = self.ttl_policy().min_recv.unwrap_or(0);
            Some(format!(
                "ttl_security is on and the neighbor never got a BGP message through: GTSM (RFC 5082) is the \
                 likely cause; the kernel drops every packet that arrives with a TTL below {min}, which looks like a \
                 connection timeout: is the neighbor sending with TTL 255 (GTSM on its side too) from at most \
                 multihop = {} hops away?",
                self.cfg.multihop
            ))
        } else if state != State::Established && self.cfg.password.is_some() && self.stats.connect_timeouts > 0 {
            Some("connection attempts time out; with a TCP-MD5 password configured, a password mismatch (or a password on one side only) is the likely cause: the kernel drops such segments silently".to_string())
        } else if state != State::Established {
            self.last_connect_error.clone()
        } else {
            None
        };
        PeerDetail {
            address: self.cfg.address.to_string(),
            name: self.cfg.name.clone(),
            remote_as: self.cfg.remote_as,
            local_as: self.cfg.local_as,
            remote_port: self.cfg.remote_port,
            passive: self.cfg.passive,
            state: state.name().to_string(),
            state_secs: now.duration_since(self.fsm.state_since()).as_secs(),
            uptime_secs: self.fsm.established_at().map(|t| now.duration_since(t).as_secs()),
            remote_router_id: self.fsm.remote_id().map(|i| i.to_string()),
            local_endpoint: conn.and_then(|c| c.local).map(|a| a.to_string()),
            remote_endpoint: conn.and_then(|c| c.remote).map(|a| a.to_string()),
            hold_time_configured: self.cfg.hold_time_secs,
            hold_time: neg.map(|n| n.hold_time),
            keepalive_time: neg.map(|n| n.keepalive),
            capabilities_sent: self.our_caps.names(),
            capabilities_received: self.peer_caps.as_ref().map(|c| c.names()).unwrap_or_default(),
            capabilities: open::capability_rows(&self.our_caps, self.peer_caps.as_ref(), neg)
                .into_iter()
                .map(|r| ctl::CapabilityState {
                    name: r.name,
                    advertised: r.advertised,
                    received: r.received,
                    negotiated: r.negotiated,
                })
                .collect(),
            role: self.cfg.role.map(|r| r.name().to_string()),
            remote_role: neg.and_then(|n| n.remote_role).map(role::value_name),
            families: neg.map(|n| n.families.iter().map(|f| f.name().to_string()).collect()).unwrap_or_default(),
            messages_sent: self.stats.sent,
            messages_received: self.stats.received,
            prefixes_received: FamilyCounts::default(),
            prefixes_sent: self.stats.sent_prefixes,
            last_error: self
                .last_error
                .as_ref()
                .map(|(e, at)| LastError { age_secs: now.duration_since(*at).as_secs(), ..e.clone() }),
            flaps: self.fsm.flaps(),
            connect_attempts: self.stats.connect_attempts,
            password_set: self.cfg.password.is_some(),
            multihop: self.cfg.multihop,
            ttl_security: self.cfg.ttl_security,
            gtsm_likely_cause: self.gtsm_likely_cause(),
            disabled: self.admin_down(),
            down_reason: self.down_reason(now).0,
            restart_in_secs: self.down_reason(now).1,
            hint,
            update_errors: self.stats.update_errors.clone(),
            // From the RIB, filled in by the control thread.
            stale_routes: FamilyCounts::default(),
            graceful_restart: None,
        }
    }
}
