//! The peer thread's body: the poll loop that feeds the FSM and carries out its actions.
//!
//! Waiting: a small per-peer mio `Poll` watches the socket(s) and a `Waker` that is woken after
//! every message put into the inbox; the poll timeout is the nearest FSM timer deadline. When
//! the RIB's bounded channel is full the thread stops reading its socket (TCP backpressure on
//! the peer) and retries shortly, instead of queueing without bound.

use super::conn::Conn;
use super::fsm::{self, Action, Event, Fsm, FsmConfig, State};
use super::{sock, LocalInfo};
use crate::config::PeerConfig;
use crate::control::proto::{
    self as ctl, ActionResult, CtlError, FamilyCounts, LastError, MsgCounters, PeerDetail, PeerSummary, UpdateErrors,
};
use crate::msg::{MonitorEvent, MonitorKind, MrtMsg, PeerId, PeerMsg, RibMsg, SessionAddrs, SessionInfo};
use crate::prefix::Family;
use crate::wire::frame::{self, MsgType};
use crate::wire::notify::{CeaseSubcode, ErrorCode, Notification};
use crate::wire::open::{self, Capabilities, OpenMsg};
use crate::wire::update;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{debug, error, info, warn};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub(super) const WAKER: Token = Token(0);
const CONN: Token = Token(1);
const PENDING: Token = Token(2);

/// Bytes buffered from the socket before the thread stops reading (backpressure).
pub(super) const MAX_READ_BUFFER: usize = 256 * 1024;
/// How often to retry handing a message to a full RIB channel.
const BACKLOG_RETRY: Duration = Duration::from_millis(5);
/// How long a NOTIFICATION may take to leave before the connection is closed anyway.
pub(super) const NOTIFICATION_FLUSH: Duration = Duration::from_millis(200);
/// A ROUTE-REFRESH is not answered again while more than this waits to be written to the peer.
const REFRESH_BACKLOG: usize = 1024 * 1024;
/// A collision candidate (second, incoming connection) must send its OPEN within this.
const PENDING_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Counters kept by the peer thread.
#[derive(Default)]
struct Stats {
    sent: MsgCounters,
    received: MsgCounters,
    connect_attempts: u64,
    connect_timeouts: u64,
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

pub(super) struct Peer {
    id: PeerId,
    cfg: Arc<PeerConfig>,
    label: String,
    local: LocalInfo,
    fsm: Fsm,
    poll: Poll,
    inbox: Receiver<PeerMsg>,
    rib: Sender<RibMsg>,
    conn: Option<Conn>,
    /// A second connection from the peer while we are in OpenSent/OpenConfirm (RFC 4271 §6.8).
    pending: Option<Conn>,
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
}

impl Peer {
    pub(super) fn new(
        id: PeerId,
        cfg: Arc<PeerConfig>,
        local: LocalInfo,
        poll: Poll,
        inbox: Receiver<PeerMsg>,
        rib: Sender<RibMsg>,
    ) -> Peer {
        let now = Instant::now();
        let fsm_cfg =
            FsmConfig { passive: cfg.passive, connect_retry: Duration::from_secs(cfg.connect_retry_secs.into()) };
        let our_caps = Capabilities {
            families: Family::ALL.to_vec(),
            route_refresh: cfg.route_refresh,
            four_octet_as: Some(cfg.local_as),
            ..Capabilities::default()
        };
        Peer {
            id,
            label: cfg.label(),
            cfg,
            local,
            fsm: Fsm::new(fsm_cfg, now),
            poll,
            inbox,
            rib,
            conn: None,
            pending: None,
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
        }
    }

    pub(super) fn run(&mut self) {
        info!("neighbor {}: starting ({})", self.label, if self.cfg.passive { "passive" } else { "active" });
        self.events.push_back(Event::ManualStart);
        let mut events = Events::with_capacity(64);
        while !self.stopping {
            self.drain_events();
            if self.stopping {
                break;
            }
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    error!("neighbor {}: poll failed: {e}", self.label);
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    CONN => {
                        if let Some(c) = self.conn.as_mut() {
                            c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        }
                        if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                            self.on_connect_progress();
                            self.flush_pending_output();
                        }
                    }
                    PENDING => {
                        if let Some(c) = self.pending.as_mut() {
                            c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        }
                    }
                    _ => {}
                }
            }
            // FSM events are handled after every stage, so each message meets an up-to-date FSM.
            self.max_prefix_restart_due(Instant::now());
            self.drain_inbox();
            self.drain_events();
            self.drive_connection();
            self.drain_events();
            self.drive_pending();
            self.drain_events();
            self.fire_timers();
        }
        if let Some(c) = self.conn.take() {
            c.close(&self.poll);
        }
        if let Some(c) = self.pending.take() {
            c.close(&self.poll);
        }
        info!("neighbor {}: stopped", self.label);
    }

    /// RFC 9687 §3: the configured send hold time, or max(8 minutes, 2 x the hold time).
    fn send_hold_time(&self) -> Duration {
        if self.cfg.send_hold_time_secs > 0 {
            return Duration::from_secs(u64::from(self.cfg.send_hold_time_secs));
        }
        let hold = self.fsm.negotiated().map_or(self.cfg.hold_time_secs, |n| n.hold_time);
        Duration::from_secs(480.max(2 * u64::from(hold)))
    }

    /// When the send hold timer of the current connection expires, if it runs.
    fn send_hold_deadline(&self) -> Option<Instant> {
        let since = self.conn.as_ref()?.send_stalled_since?;
        Some(since + self.send_hold_time())
    }

    /// Write what waits, after the socket said it has room.
    fn flush_pending_output(&mut self) {
        let Some(c) = self.conn.as_mut() else { return };
        if c.out_pos < c.out.len() {
            if let Err(e) = c.flush() {
                self.events.push_back(Event::TcpConnectionFails { reason: format!("write failed: {e}") });
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut deadline = self.fsm.next_deadline();
        if let Some(d) = self.pending.as_ref().and_then(|p| p.open_deadline) {
            deadline = Some(deadline.map_or(d, |x| x.min(d)));
        }
        for d in [self.send_hold_deadline(), self.max_prefix_restart_at].into_iter().flatten() {
            deadline = Some(deadline.map_or(d, |x| x.min(d)));
        }
        let until = deadline.map(|d| d.saturating_duration_since(now));
        let conn_busy =
            self.conn.as_ref().is_some_and(|c| c.connected && (c.readable || c.framer.buffered() >= frame::HEADER_LEN));
        if self.rib_backlog.is_some() || conn_busy {
            return Some(until.map_or(BACKLOG_RETRY, |u| u.min(BACKLOG_RETRY)));
        }
        until
    }

    /// Handle queued FSM events and the actions they produce.
    fn drain_events(&mut self) {
        // Bounded: a pathological action/event loop must not spin forever.
        for _ in 0..1000 {
            let Some(ev) = self.events.pop_front() else { return };
            let actions = self.fsm.handle(ev, Instant::now());
            for a in actions {
                self.carry_out(a);
            }
        }
    }

    fn carry_out(&mut self, action: Action) {
        match action {
            Action::Connect => self.connect(),
            Action::SendOpen => {
                let open = OpenMsg::new(
                    self.cfg.local_as,
                    self.cfg.hold_time_secs,
                    self.local.router_id,
                    self.our_caps.clone(),
                );
                self.send_raw(&open.encode(), MsgType::Open);
            }
            Action::SendKeepalive => self.send_raw(&frame::keepalive(), MsgType::Keepalive),
            Action::SendNotification(n) => {
                warn!("neighbor {}: sending NOTIFICATION {n}", self.label);
                self.remember_error("sent", &n);
                self.send_raw(&n.encode(), MsgType::Notification);
            }
            Action::CloseConnection => {
                if let Some(c) = self.conn.take() {
                    c.close(&self.poll);
                }
                self.rib_backlog = None;
            }
            Action::SessionUp => self.session_up(),
            Action::SessionDown => {
                self.send_to_rib_blocking(RibMsg::SessionDown { peer: self.id });
                self.stats.sent_prefixes = FamilyCounts::default();
            }
            Action::StateChange { from, to, reason } => {
                info!("neighbor {}: state change {from} -> {to}, reason: {reason}", self.label);
                if let Some(m) = self.local.monitor.as_ref().filter(|m| m.active()) {
                    m.event(MonitorEvent {
                        ts: SystemTime::now(),
                        peer: self.cfg.clone(),
                        kind: MonitorKind::State { from: from.name(), to: to.name(), reason: reason.clone() },
                    });
                }
                if let Some(mrt) = &self.local.mrt {
                    let session = self.session_addrs();
                    mrt.send(MrtMsg::StateChange { ts: SystemTime::now(), session, from: from as u16, to: to as u16 });
                }
                if to == State::Established {
                    self.last_connect_error = None;
                }
            }
        }
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

    /// Queue a whole message on the current connection and count it.
    fn send_raw(&mut self, msg: &[u8], ty: MsgType) {
        let Some(c) = self.conn.as_mut() else { return };
        c.queue(msg);
        count(&mut self.stats.sent, ty);
        self.fsm.message_sent(Instant::now());
        if let Err(e) = c.flush() {
            self.events.push_back(Event::TcpConnectionFails { reason: format!("write failed: {e}") });
        }
    }

    fn connect(&mut self) {
        if let Some(c) = self.conn.take() {
            if !c.connected {
                self.stats.connect_timeouts += 1;
                self.log_connect_error("connection attempt timed out".to_string());
            }
            c.close(&self.poll);
        }
        let remote = SocketAddr::new(self.cfg.address, self.cfg.remote_port);
        let key = self.cfg.password.as_deref().map(str::as_bytes);
        self.stats.connect_attempts += 1;
        debug!("neighbor {}: connecting to {remote}", self.label);
        match sock::connect(remote, self.cfg.local_address, key) {
            Ok(s) => {
                let mut stream = TcpStream::from_std(s);
                if let Err(e) =
                    self.poll.registry().register(&mut stream, CONN, Interest::READABLE | Interest::WRITABLE)
                {
                    self.events.push_back(Event::TcpConnectionFails { reason: format!("cannot watch socket: {e}") });
                    return;
                }
                self.conn = Some(Conn::new(stream, true, false));
            }
            Err(e) => {
                let reason = format!("connect to {remote} failed: {e}");
                self.log_connect_error(reason.clone());
                self.events.push_back(Event::TcpConnectionFails { reason });
            }
        }
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

    fn md5_hint_suffix(&self) -> &'static str {
        if self.cfg.password.is_some() && self.stats.connect_timeouts > 0 {
            " (a TCP-MD5 password is configured: a password mismatch makes connections time out silently)"
        } else {
            ""
        }
    }

    /// The outgoing connect finished (or failed).
    fn on_connect_progress(&mut self) {
        let Some(c) = self.conn.as_mut() else { return };
        if c.connected {
            return;
        }
        match c.stream.take_error() {
            Ok(None) if c.stream.peer_addr().is_ok() => {
                c.connected = true;
                c.learn_addresses();
                debug!("neighbor {}: connected from {:?}", self.label, c.local);
                self.events.push_back(Event::TcpConnected { outgoing: true });
            }
            Ok(None) => {} // spurious wake-up, still connecting
            Ok(Some(e)) | Err(e) => {
                let reason = format!("connect to {}:{} failed: {e}", self.cfg.address, self.cfg.remote_port);
                self.log_connect_error(reason.clone());
                self.events.push_back(Event::TcpConnectionFails { reason });
            }
        }
    }

    fn on_incoming(&mut self, s: std::net::TcpStream) {
        let from = s.peer_addr().map(sock::canonical_addr).ok();
        if let Err(e) = s.set_nonblocking(true) {
            warn!("neighbor {}: cannot use incoming connection: {e}", self.label);
            return;
        }
        let mut stream = TcpStream::from_std(s);
        let state = self.fsm.state();
        if !self.fsm.accepts_incoming() && !matches!(state, State::OpenSent | State::OpenConfirm) {
            // A stopped peer refuses connections; Established keeps the old one (§6.8).
            let sub = if state == State::Established {
                CeaseSubcode::ConnectionCollisionResolution
            } else {
                CeaseSubcode::ConnectionRejected
            };
            info!("neighbor {}: refusing connection from {from:?} in state {state}", self.label);
            let n = Notification::cease(sub, None);
            let _ = stream.write(&n.encode());
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        if self.fsm.accepts_incoming() {
            // Connect/Active: the incoming connection replaces any attempt of ours.
            if let Some(c) = self.conn.take() {
                c.close(&self.poll);
            }
            if let Err(e) = self.poll.registry().register(&mut stream, CONN, Interest::READABLE | Interest::WRITABLE) {
                warn!("neighbor {}: cannot watch incoming connection: {e}", self.label);
                return;
            }
            self.conn = Some(Conn::new(stream, false, true));
            self.events.push_back(Event::TcpConnected { outgoing: false });
            return;
        }
        // OpenSent/OpenConfirm: a collision candidate. Send our OPEN on it and decide when the
        // peer's OPEN arrives on it (RFC 4271 §6.8).
        if let Some(old) = self.pending.take() {
            old.close(&self.poll);
        }
        if let Err(e) = self.poll.registry().register(&mut stream, PENDING, Interest::READABLE | Interest::WRITABLE) {
            warn!("neighbor {}: cannot watch incoming connection: {e}", self.label);
            return;
        }
        debug!("neighbor {}: second connection from {from:?} in {state}: collision detection", self.label);
        let mut c = Conn::new(stream, false, true);
        let open =
            OpenMsg::new(self.cfg.local_as, self.cfg.hold_time_secs, self.local.router_id, self.our_caps.clone());
        c.queue(&open.encode());
        let _ = c.flush();
        c.open_deadline = Some(Instant::now() + PENDING_OPEN_TIMEOUT);
        self.pending = Some(c);
    }

    /// Read the collision candidate until its OPEN arrives, then resolve the collision.
    fn drive_pending(&mut self) {
        let Some(c) = self.pending.as_mut() else { return };
        let _ = c.flush();
        let alive = if c.readable { c.fill().unwrap_or(false) } else { true };
        let first = c.framer.next_message();
        let expired = c.open_deadline.is_some_and(|d| Instant::now() >= d);
        let open = match first {
            Ok(Some((MsgType::Open, raw))) => raw,
            Ok(None) if alive && !expired => return,
            _ => {
                if let Some(c) = self.pending.take() {
                    c.close(&self.poll);
                }
                return;
            }
        };
        let body = open.get(frame::HEADER_LEN..).unwrap_or_default();
        let checked = self.check_open(body);
        let Some(mut cand) = self.pending.take() else { return };
        let (o, neg) = match checked {
            Ok(x) => x,
            Err(n) => {
                cand.queue(&n.encode());
                cand.close(&self.poll);
                return;
            }
        };
        let existing_outgoing = self.conn.as_ref().is_some_and(|c| c.outgoing);
        let collision = Notification::cease(CeaseSubcode::ConnectionCollisionResolution, None);
        if fsm::keep_existing_on_collision(self.local.router_id, o.router_id, existing_outgoing) {
            info!("neighbor {}: connection collision: keeping our connection", self.label);
            cand.queue(&collision.encode());
            cand.close(&self.poll);
            return;
        }
        info!("neighbor {}: connection collision: keeping the peer's connection", self.label);
        if let Some(mut old) = self.conn.take() {
            old.queue(&collision.encode());
            old.close(&self.poll);
        }
        cand.open_deadline = None;
        if let Err(e) = self.poll.registry().reregister(&mut cand.stream, CONN, Interest::READABLE | Interest::WRITABLE)
        {
            self.events.push_back(Event::TcpConnectionFails { reason: format!("cannot watch socket: {e}") });
        }
        count(&mut self.stats.received, MsgType::Open);
        count(&mut self.stats.sent, MsgType::Open);
        self.adopt_open(&o, &neg);
        cand.readable = true;
        self.conn = Some(cand);
        self.events.push_back(Event::CollisionSwitch { negotiated: neg, remote_id: o.router_id });
    }

    /// Decode and check a received OPEN body (RFC 4271 §6.2): what was negotiated, or the
    /// NOTIFICATION to answer with.
    fn check_open(&self, body: &[u8]) -> Result<(OpenMsg, open::Negotiated), Notification> {
        let o = OpenMsg::decode(body)?;
        let c = &self.cfg;
        let neg =
            open::validate_open(&o, c.remote_as, c.local_as, self.local.router_id, &self.our_caps, c.hold_time_secs)?;
        Ok((o, neg))
    }

    fn adopt_open(&mut self, o: &OpenMsg, neg: &open::Negotiated) {
        self.four_octet = neg.four_octet_as;
        self.peer_caps = Some(o.caps.clone());
    }

    /// Flush, read and process messages of the current connection.
    fn drive_connection(&mut self) {
        if !self.take_backlog() {
            return;
        }
        let Some(c) = self.conn.as_mut() else { return };
        if !c.connected {
            return;
        }
        if let Err(e) = c.flush() {
            self.events.push_back(Event::TcpConnectionFails { reason: format!("write failed: {e}") });
            return;
        }
        let mut eof = false;
        if c.readable && c.framer.buffered() < MAX_READ_BUFFER {
            match c.fill() {
                Ok(true) => {}
                Ok(false) => eof = true,
                Err(e) => {
                    self.events.push_back(Event::TcpConnectionFails { reason: format!("read failed: {e}") });
                    return;
                }
            }
        }
        // Bounded per turn so timers and the inbox are served between bursts.
        for _ in 0..512 {
            let Some(c) = self.conn.as_mut() else { return };
            match c.framer.next_message() {
                Ok(Some((ty, raw))) => {
                    count(&mut self.stats.received, ty);
                    self.archive_message(ty, raw.clone());
                    self.monitor_message(ty, &raw);
                    self.on_message(ty, &raw);
                    // The FSM must see this message's effect before the next message.
                    self.drain_events();
                    if self.rib_backlog.is_some() || self.stopping {
                        return; // a full RIB: stop reading (backpressure)
                    }
                }
                Ok(None) => break,
                Err(n) => {
                    // RFC 4271 §6.1: a framing error ends the session with its NOTIFICATION.
                    self.events.push_back(Event::MessageError(n));
                    return;
                }
            }
        }
        if eof {
            let reason = "connection closed by peer".to_string();
            self.events.push_back(Event::TcpConnectionFails { reason });
        }
    }

    /// Addresses and ASNs of the current session for MRT records (configured values until a
    /// connection tells the real ones).
    fn session_addrs(&self) -> SessionAddrs {
        let conn = self.conn.as_ref().filter(|c| c.connected);
        let peer_ip = conn.and_then(|c| c.remote).map(|a| a.ip()).unwrap_or(self.cfg.address);
        let unspecified =
            if peer_ip.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
        let local_ip = conn.and_then(|c| c.local).map(|a| a.ip()).or(self.cfg.local_address).unwrap_or(unspecified);
        SessionAddrs { peer_as: self.cfg.remote_as, local_as: self.cfg.local_as, peer_ip, local_ip }
    }

    /// Every received message goes to the archive as received, before it is parsed, so
    /// messages that fail to parse are kept too. KEEPALIVEs only when asked for.
    fn archive_message(&self, ty: MsgType, raw: bytes::Bytes) {
        let Some(mrt) = &self.local.mrt else { return };
        if ty == MsgType::Keepalive && !mrt.record_keepalives() {
            return;
        }
        // Until the OPENs are exchanged we speak 4-octet AS (our capability).
        let as4 = self.fsm.negotiated().is_none_or(|n| n.four_octet_as);
        mrt.send(MrtMsg::Message { ts: SystemTime::now(), as4, session: self.session_addrs(), raw });
    }

    /// Received UPDATEs and NOTIFICATIONs for `focl monitor`, only while someone listens.
    fn monitor_message(&self, ty: MsgType, raw: &bytes::Bytes) {
        let Some(m) = self.local.monitor.as_ref().filter(|m| m.active()) else { return };
        if !matches!(ty, MsgType::Update | MsgType::Notification) {
            return;
        }
        let four_octet_as = self.fsm.negotiated().is_none_or(|n| n.four_octet_as);
        let ibgp = self.cfg.local_as == self.cfg.remote_as;
        m.event(MonitorEvent {
            ts: SystemTime::now(),
            peer: self.cfg.clone(),
            kind: MonitorKind::Message { raw: raw.clone(), four_octet_as, ibgp },
        });
    }

    fn on_message(&mut self, ty: MsgType, raw: &[u8]) {
        let body = raw.get(frame::HEADER_LEN..).unwrap_or_default();
        match ty {
            MsgType::Open => {
                if self.fsm.state() != State::OpenSent {
                    self.events.push_back(Event::UnexpectedOpen);
                    return;
                }
                match self.check_open(body) {
                    Ok((o, neg)) => {
                        self.adopt_open(&o, &neg);
                        self.events.push_back(Event::BgpOpen { negotiated: neg, remote_id: o.router_id });
                    }
                    Err(n) => self.events.push_back(Event::MessageError(n)),
                }
            }
            MsgType::Keepalive => self.events.push_back(Event::KeepAliveMsg),
            MsgType::Notification => {
                let n = Notification::decode(body).unwrap_or_else(|bad| bad);
                warn!("neighbor {}: received NOTIFICATION {n}", self.label);
                self.remember_error("received", &n);
                self.events.push_back(Event::NotifMsg(n));
            }
            MsgType::Update => {
                // Timers first (any message restarts the hold timer), then the content, and
                // only in Established; elsewhere the FSM answers with an FSM error.
                if self.fsm.state() != State::Established {
                    self.events.push_back(Event::UpdateMsg);
                    return;
                }
                let actions = self.fsm.handle(Event::UpdateMsg, Instant::now());
                for a in actions {
                    self.carry_out(a);
                }
                let session = update::Session { four_octet_as: self.four_octet, ibgp: self.cfg.is_ibgp() };
                match update::parse_update(body, session) {
                    Ok(mut u) => {
                        if !u.problems.is_empty() {
                            self.note_update_problems(&u.problems);
                        }
                        if u.treat_as_withdraw() {
                            // RFC 7606 §2: treat-as-withdraw keeps the session up.
                            let announced = std::mem::take(&mut u.announced);
                            u.withdrawn.extend(announced);
                            u.attrs.clear();
                        }
                        self.send_to_rib(RibMsg::Update { peer: self.id, update: u, four_octet: self.four_octet });
                    }
                    Err(n) => self.events.push_back(Event::MessageError(n)),
                }
            }
            MsgType::RouteRefresh => {
                if self.fsm.state() != State::Established {
                    self.events.push_back(Event::RouteRefreshMsg);
                    return;
                }
                let actions = self.fsm.handle(Event::RouteRefreshMsg, Instant::now());
                for a in actions {
                    self.carry_out(a);
                }
                let waiting = self.conn.as_ref().map_or(0, |c| c.out.len() - c.out_pos);
                match frame::decode_route_refresh(body) {
                    // A peer asking again while it has not taken the last answer gets nothing
                    // more queued: what waits is already its whole Adj-RIB-Out.
                    Ok(Some(family)) if self.our_caps.route_refresh && waiting > REFRESH_BACKLOG => {
                        debug!(
                            "neighbor {}: ignoring ROUTE-REFRESH for {family}: {waiting} bytes not taken yet",
                            self.label
                        );
                    }
                    // RFC 2918 §4: only if we advertised the capability; unknown AFI/SAFI ignored.
                    Ok(Some(family)) if self.our_caps.route_refresh => {
                        info!("neighbor {}: route refresh requested for {family}", self.label);
                        self.send_to_rib(RibMsg::Refresh { peer: self.id, family });
                    }
                    Ok(_) => debug!("neighbor {}: ignoring ROUTE-REFRESH", self.label),
                    Err(n) => self.events.push_back(Event::MessageError(n)),
                }
            }
        }
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

    /// Session up/down must reach the RIB: wait for room.
    fn send_to_rib_blocking(&mut self, msg: RibMsg) {
        if let Some(m) = self.rib_backlog.take() {
            let _ = self.rib.send(m);
        }
        if self.rib.send(msg).is_err() {
            self.stopping = true;
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
        let Some(c) = self.conn.as_ref() else { return };
        let local = c.local.map(|a| a.ip());
        let remote = c.remote.map(|a| a.ip());
        let info = SessionInfo {
            session: self.session,
            local_addr: local.unwrap_or(self.cfg.address),
            remote_addr: remote.unwrap_or(self.cfg.address),
            local_as: self.cfg.local_as,
            remote_as: self.cfg.remote_as,
            four_octet_as: neg.four_octet_as,
            families: neg.families.clone(),
            remote_id: self.fsm.remote_id().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        info!(
            "neighbor {}: session established, hold time {}s, families {}",
            self.label,
            neg.hold_time,
            neg.families.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
        );
        self.send_to_rib_blocking(RibMsg::SessionUp { peer: self.id, info });
    }

    fn drain_inbox(&mut self) {
        while let Ok(msg) = self.inbox.try_recv() {
            match msg {
                PeerMsg::Incoming(s) => self.on_incoming(s),
                PeerMsg::Send { session, msgs, sent } => {
                    if session != self.session || self.fsm.state() != State::Established {
                        continue; // for a session that is gone
                    }
                    for m in &msgs {
                        self.send_raw(m, MsgType::Update);
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
                PeerMsg::Reset(reply) => {
                    info!("neighbor {}: reset by operator", self.label);
                    self.max_prefix_down = None;
                    self.max_prefix_restart_at = None;
                    self.events.push_back(Event::ManualStop {
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
                        self.events.push_back(Event::ManualStop {
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
                        self.events.push_back(Event::ManualStop {
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
                PeerMsg::Enable(reply) => {
                    self.max_prefix_down = None;
                    self.max_prefix_restart_at = None;
                    let message = if self.fsm.is_enabled() {
                        "already enabled"
                    } else {
                        info!("neighbor {}: enabled by operator", self.label);
                        self.events.push_back(Event::ManualStart);
                        "enabled"
                    };
                    let _ = reply.send(Ok(ActionResult { peer: self.label.clone(), message: message.into() }));
                }
                PeerMsg::Stop(sub, communication) => {
                    let ev = Event::ManualStop { subcode: sub, communication, restart: false };
                    let actions = self.fsm.handle(ev, Instant::now());
                    for a in actions {
                        self.carry_out(a);
                    }
                    self.stopping = true;
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
        for f in &families {
            self.send_raw(&frame::route_refresh(*f), MsgType::RouteRefresh);
        }
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        info!("neighbor {}: sent ROUTE-REFRESH for {}", self.label, names.join(", "));
        Ok(ActionResult { peer: self.label.clone(), message: format!("route refresh sent for {}", names.join(", ")) })
    }

    /// The end of a max-prefix shutdown; checked before connections are looked at, so one
    /// arriving right at the restart time is taken.
    fn max_prefix_restart_due(&mut self, now: Instant) {
        if self.max_prefix_restart_at.is_some_and(|d| d <= now) {
            self.max_prefix_restart_at = None;
            if !self.fsm.is_enabled() {
                info!("neighbor {}: starting again after the maximum-prefix shutdown", self.label);
                self.events.push_back(Event::ManualStart);
                self.drain_events();
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        if self.send_hold_deadline().is_some_and(|d| d <= now) {
            let secs = self.send_hold_time().as_secs();
            warn!("neighbor {}: send hold timer expired: the peer took no data for {secs} s (RFC 9687)", self.label);
            let n = Notification::new(ErrorCode::SendHoldTimerExpired, 0, vec![]);
            // Best effort: the peer is not reading, so this NOTIFICATION is unlikely to arrive.
            self.carry_out(Action::SendNotification(n));
            if let Some(c) = self.conn.as_mut() {
                c.send_stalled_since = None;
            }
            self.events.push_back(Event::TcpConnectionFails {
                reason: format!("send hold timer expired ({secs} s without the peer taking data)"),
            });
        }
        self.max_prefix_restart_due(now);
        for ev in self.fsm.expired_timers(now) {
            if ev == Event::HoldTimerExpires {
                // Messages we have not processed because the RIB is behind prove the peer is
                // alive: our backpressure must not look like its silence.
                let backlogged = self.rib_backlog.is_some()
                    || self.conn.as_ref().is_some_and(|c| c.framer.buffered() >= frame::HEADER_LEN);
                if backlogged && self.fsm.state() == State::Established {
                    self.fsm.peer_alive(now);
                    continue;
                }
                // Like BIRD: bytes may be waiting that would have restarted the timer.
                if let Some(c) = self.conn.as_mut() {
                    if c.connected {
                        let _ = c.fill();
                        if c.framer.buffered() >= frame::HEADER_LEN {
                            self.drive_connection();
                            if self.fsm.timers().hold.is_some_and(|d| d > now) {
                                continue;
                            }
                        }
                    }
                }
            }
            self.events.push_back(ev);
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
            disabled: !self.fsm.is_enabled(),
        }
    }

    fn detail(&self) -> PeerDetail {
        let now = Instant::now();
        let neg = self.fsm.negotiated();
        let conn = self.conn.as_ref().filter(|c| c.connected);
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
            disabled: !self.fsm.is_enabled(),
            hint,
            update_errors: self.stats.update_errors.clone(),
        }
    }
}
