//! The BGP finite state machine of RFC 4271 §8, as a pure function over
//! `(state, event, now) -> actions`, owning the peer's connections by `ConnId`.
//!
//! Fed by the peer thread (`driver.rs`), which turns socket readiness, decoded messages and
//! its clock into `Event`s, in the order they happened; emits `Action`s that the driver
//! carries out (connect, send, close, adopt, tell the RIB). The FSM knows which connection is
//! the session's and which is a collision candidate, and decides collisions itself (RFC 4271
//! §6.8, RFC 6286 §2.3). No sockets and no clocks in here: `now` is passed in, timers are
//! deadlines, and `next_deadline()` tells the driver how long it may sleep. Every transition
//! goes through `change_state`, which does all of a transition's duties.

pub use crate::msg::ConnId;
use crate::wire::graceful::{self, SessionEnd};
use crate::wire::notify::{CeaseSubcode, ErrorCode, FsmSubcode, Notification};
use crate::wire::open::Negotiated;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// RFC 4271 §8.2.2: "the HoldTimer is set to a large value ... a value of 4 minutes is suggested"
/// while waiting for the peer's OPEN.
pub const LARGE_HOLD_TIME: Duration = Duration::from_secs(240);
/// First IdleHold back-off after a session went down (RFC 4271 §8.1.1, DampPeerOscillations).
pub const IDLE_HOLD_INITIAL: Duration = Duration::from_secs(5);
/// IdleHold never grows beyond this.
pub const IDLE_HOLD_MAX: Duration = Duration::from_secs(120);
/// A session that stayed Established this long resets the back-off to its initial value.
pub const STABLE_SESSION: Duration = Duration::from_secs(120);
/// Pause before restarting after an operator reset.
pub const RESET_IDLE_HOLD: Duration = Duration::from_secs(1);
/// A collision candidate (a second connection) must send its OPEN within this.
pub const CANDIDATE_OPEN_TIME: Duration = Duration::from_secs(30);
/// How long bytes that arrived just before the hold timer expired may postpone it, once (BIRD
/// postpones by 10 s when unread bytes wait in the socket).
pub const HOLD_GRACE: Duration = Duration::from_secs(10);

/// The six states of RFC 4271 §8.2.2. The numbers are those of RFC 6396 §4.4.1 (MRT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Idle = 1,
    Connect = 2,
    Active = 3,
    OpenSent = 4,
    OpenConfirm = 5,
    Established = 6,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A valid OPEN, already checked by `wire::open::validate_open`.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerOpen {
    pub negotiated: Negotiated,
    pub remote_id: Ipv4Addr,
}

/// A message received on one connection, as the FSM needs to know it.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// Event 19 (BGPOpen), on a connection that waits for the peer's OPEN.
    Open(PeerOpen),
    /// An OPEN on a connection that already has the peer's OPEN (an FSM error).
    UnexpectedOpen,
    /// Events 21/22/28 (BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr): the message was bad; the
    /// NOTIFICATION to send.
    Invalid(Notification),
    /// Events 24/25 (NotifMsgVerErr, NotifMsg)
    Notification(Notification),
    /// Event 26 (KeepAliveMsg)
    Keepalive,
    /// Event 27 (UpdateMsg)
    Update,
    /// ROUTE-REFRESH (RFC 2918; treated like event 27 for the timers).
    RouteRefresh,
}

/// Inputs to the FSM; the RFC 4271 §8.1 event number is in each comment.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Event 1/4 (ManualStart, ManualStart_with_PassiveTcpEstablishment): the peer is configured.
    ManualStart,
    /// Event 2 (ManualStop): the operator stops the session; the Cease subcode and the
    /// shutdown communication (RFC 9003) to send, and whether to start again afterwards.
    ManualStop { subcode: CeaseSubcode, communication: Option<String>, restart: bool },
    /// Event 3/5 (AutomaticStart): the IdleHold timer let the peer start again.
    AutomaticStart,
    /// Event 9
    ConnectRetryTimerExpires,
    /// Event 10
    HoldTimerExpires,
    /// Event 11
    KeepaliveTimerExpires,
    /// The collision candidate did not send its OPEN in time (its own event 10).
    CandidateOpenTimerExpires,
    /// Event 16/17 (Tcp_CR_Acked, TcpConnectionConfirmed): connection `conn` is up; `outgoing`
    /// says which side opened it.
    TcpConnected { conn: ConnId, outgoing: bool },
    /// focld stops for a planned restart: close without a NOTIFICATION (RFC 4724 §4.1), stay down.
    GracefulStop,
    /// Event 18 (TcpConnectionFails): a connect failed, or the connection closed or broke.
    TcpFails { conn: ConnId, reason: String },
    /// Events 19-28: a message arrived on `conn`.
    Message { conn: ConnId, msg: Received },
}

/// What to send on a connection (NOTIFICATIONs go with `Action::Close`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing {
    Open,
    Keepalive,
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Open outgoing connection `conn` (an attempt; it reports `TcpConnected` or `TcpFails`).
    Connect {
        conn: ConnId,
    },
    Send {
        conn: ConnId,
        msg: Outgoing,
    },
    /// Send the NOTIFICATION, if any, then close the connection (or abandon the attempt).
    Close {
        conn: ConnId,
        notification: Option<Notification>,
    },
    /// `conn` is the session's connection from now on (the other one lost a collision or died).
    Adopt {
        conn: ConnId,
    },
    /// The session reached Established: tell the RIB, send the Adj-RIB-Out.
    SessionUp,
    /// The session left Established: tell the RIB to drop the peer's routes.
    SessionDown,
    /// Log `state change A -> B, reason: …` and write the MRT state-change record, with the
    /// addresses of `conn`, the session's connection at the change (still open: any `Close`
    /// follows this action).
    StateChange {
        from: State,
        to: State,
        reason: String,
        conn: Option<ConnId>,
    },
}

/// Per-peer settings the FSM needs.
#[derive(Clone, Debug, PartialEq)]
pub struct FsmConfig {
    pub passive: bool,
    pub connect_retry: Duration,
    /// For collisions (RFC 4271 §6.8, RFC 6286 §2.3).
    pub local_id: Ipv4Addr,
    pub local_as: u32,
    pub remote_as: u32,
}

/// Timer deadlines (RFC 4271 §10); `None` is a stopped timer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timers {
    pub connect_retry: Option<Instant>,
    pub hold: Option<Instant>,
    pub keepalive: Option<Instant>,
    pub idle_hold: Option<Instant>,
    /// The collision candidate's OPEN deadline.
    pub candidate_open: Option<Instant>,
}

/// A connection the FSM knows, and which side opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub conn: ConnId,
    pub outgoing: bool,
}

/// Whose connection a collision closes (RFC 4271 §6.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// The connection we opened.
    Local,
    /// The connection the peer opened.
    Remote,
}

/// What a transition to Idle does with the IdleHold timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IdleHold {
    /// A failure: wait out the current back-off and double it (RFC 4271 §8.1.1).
    BackOff,
    /// An operator stop: restart after `RESET_IDLE_HOLD` if still enabled.
    Restart,
}

/// The state machine of one peer.
#[derive(Clone, Debug)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    timers: Timers,
    /// Whether the peer is started at all (false after a ManualStop without restart).
    enabled: bool,
    /// The session's connection (OpenSent on).
    session: Option<Link>,
    /// A second connection while in OpenSent/OpenConfirm, our OPEN sent on it (RFC 4271 §6.8).
    candidate: Option<Link>,
    /// Our outgoing connect in progress.
    attempt: Option<ConnId>,
    next_conn: u64,
    /// Negotiated parameters of the current session (from OpenConfirm on).
    negotiated: Option<Negotiated>,
    remote_id: Option<Ipv4Addr>,
    /// Current IdleHold back-off (doubles for a flapping peer).
    idle_hold: Duration,
    /// The hold timer was postponed since the last whole message (at most once).
    hold_postponed: bool,
    established_at: Option<Instant>,
    state_since: Instant,
    /// Times the session left Established.
    flaps: u64,
    /// How the last session ended (for graceful restart, RFC 4724 §4.2); set by every way
    /// out of a session, read by the driver when it carries out `SessionDown`.
    session_end: Option<SessionEnd>,
}

impl Fsm {
    pub fn new(cfg: FsmConfig, now: Instant) -> Fsm {
        Fsm {
            cfg,
            state: State::Idle,
            timers: Timers::default(),
            enabled: false,
            session: None,
            candidate: None,
            attempt: None,
            next_conn: 0,
            negotiated: None,
            remote_id: None,
            idle_hold: IDLE_HOLD_INITIAL,
            hold_postponed: false,
            established_at: None,
            state_since: now,
            flaps: 0,
            session_end: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn remote_id(&self) -> Option<Ipv4Addr> {
        self.remote_id
    }

    pub fn established_at(&self) -> Option<Instant> {
        self.established_at
    }

    pub fn state_since(&self) -> Instant {
        self.state_since
    }

    pub fn flaps(&self) -> u64 {
        self.flaps
    }

    /// How the last session ended.
    pub fn session_end(&self) -> Option<&SessionEnd> {
        self.session_end.as_ref()
    }

    /// Graceful restart negotiated on the current session, if any.
    fn graceful(&self) -> Option<&graceful::GrNegotiated> {
        self.negotiated.as_ref().and_then(|n| n.graceful.as_ref())
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The session's connection, if there is one.
    pub fn session_conn(&self) -> Option<ConnId> {
        self.session.map(|l| l.conn)
    }

    /// The collision candidate, if there is one.
    pub fn candidate_conn(&self) -> Option<ConnId> {
        self.candidate.map(|l| l.conn)
    }

    /// Whether an OPEN received on `conn` is event 19 (the session's connection in OpenSent,
    /// or the collision candidate); any other OPEN is `Received::UnexpectedOpen`.
    pub fn expects_open(&self, conn: ConnId) -> bool {
        (self.state == State::OpenSent && self.session_conn() == Some(conn)) || self.candidate_conn() == Some(conn)
    }

    /// A fresh id for a connection the driver accepted (outgoing ones come with `Connect`).
    pub fn new_conn_id(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    /// The nearest timer deadline, for the driver's poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        let t = &self.timers;
        [t.connect_retry, t.hold, t.keepalive, t.idle_hold, t.candidate_open].into_iter().flatten().min()
    }

    /// Events for every timer that is due at `now`; those timers are stopped.
    pub fn expired_timers(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        let due = |d: &mut Option<Instant>| {
            if d.is_some_and(|d| d <= now) {
                *d = None;
                true
            } else {
                false
            }
        };
        if due(&mut self.timers.idle_hold) {
            events.push(Event::AutomaticStart);
        }
        if due(&mut self.timers.connect_retry) {
            events.push(Event::ConnectRetryTimerExpires);
        }
        if due(&mut self.timers.hold) {
            events.push(Event::HoldTimerExpires);
        }
        if due(&mut self.timers.keepalive) {
            events.push(Event::KeepaliveTimerExpires);
        }
        if due(&mut self.timers.candidate_open) {
            events.push(Event::CandidateOpenTimerExpires);
        }
        events
    }

    /// Whole messages from the peer wait that we have not processed yet (our own backpressure):
    /// each would have restarted the HoldTimer, so it restarts.
    pub fn whole_messages_waiting(&mut self, now: Instant) {
        if self.state == State::Established {
            self.restart_hold_timer(now);
        }
    }

    /// The HoldTimer expired but bytes arrived since the last check: postpone it by
    /// `HOLD_GRACE` (capped at the hold time), once until a whole message restarts it. Returns
    /// false when it was already postponed: then the timer must expire. A peer that trickles
    /// bytes of a message it never finishes cannot keep a session alive this way.
    pub fn postpone_hold_timer(&mut self, now: Instant) -> bool {
        if self.hold_postponed {
            return false;
        }
        let Some(n) = &self.negotiated else { return false };
        if n.hold_time == 0 {
            return false;
        }
        self.hold_postponed = true;
        self.timers.hold = Some(now + HOLD_GRACE.min(Duration::from_secs(n.hold_time.into())));
        true
    }

    /// We sent a message: the KeepaliveTimer restarts (RFC 4271 §4.4: keepalives are only
    /// needed when nothing else was sent).
    pub fn message_sent(&mut self, now: Instant) {
        if self.timers.keepalive.is_some() {
            self.restart_keepalive_timer(now);
        }
    }

    /// Feed one event; returns what the driver must do.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::TcpConnected { conn, outgoing } => self.on_connected(Link { conn, outgoing }, now, &mut out),
            Event::TcpFails { conn, reason } => self.on_tcp_fails(conn, &reason, now, &mut out),
            Event::Message { conn, msg } if self.candidate_conn() == Some(conn) => {
                self.on_candidate_message(conn, msg, now, &mut out)
            }
            Event::Message { conn, msg } if self.session_conn() == Some(conn) => self.on_message(msg, now, &mut out),
            // A connection already closed: what was still in flight on it no longer matters.
            Event::Message { .. } => {}
            Event::CandidateOpenTimerExpires => {
                if let Some(c) = self.candidate.take() {
                    let n = Notification::new(ErrorCode::HoldTimerExpired, 0, vec![]);
                    out.push(Action::Close { conn: c.conn, notification: Some(n) });
                }
            }
            other => self.on_admin_or_timer(other, now, &mut out),
        }
        out
    }

    /// Leave Idle: active peers connect, passive ones wait in Active.
    fn start(&mut self, now: Instant, reason: &str, out: &mut Vec<Action>) {
        if self.cfg.passive {
            self.change_state(State::Active, reason, None, now, out);
        } else {
            self.change_state(State::Connect, reason, None, now, out);
            self.connect(out);
        }
    }

    /// Start an outgoing attempt, abandoning the one in progress.
    fn connect(&mut self, out: &mut Vec<Action>) {
        if let Some(old) = self.attempt.take() {
            out.push(Action::Close { conn: old, notification: None });
        }
        let conn = self.new_conn_id();
        self.attempt = Some(conn);
        out.push(Action::Connect { conn });
    }

    fn on_admin_or_timer(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        let state = self.state;
        match event {
            Event::ManualStart if state == State::Idle => {
                self.enabled = true;
                self.idle_hold = IDLE_HOLD_INITIAL;
                self.start(now, "start", out);
            }
            Event::AutomaticStart if state == State::Idle && self.enabled => self.start(now, "idle hold expired", out),
            Event::ManualStop { subcode, communication, restart } => {
                self.enabled = restart;
                if state == State::Idle {
                    // Nothing to close; just (re)arm or disarm.
                    self.timers = Timers::default();
                    if restart {
                        self.timers.idle_hold = Some(now + RESET_IDLE_HOLD);
                    }
                    return;
                }
                // RFC 8538 §3: with N negotiated, a reset that must flush goes as Hard Reset.
                let n =
                    graceful::as_hard_reset(Notification::cease(subcode, communication.as_deref()), self.graceful());
                self.go_idle(stop_reason(subcode), Some(n), IdleHold::Restart, now, out);
            }
            Event::GracefulStop => {
                self.enabled = false;
                if self.state == State::Established {
                    self.session_end = Some(SessionEnd::Shutdown);
                }
                self.go_idle(
                    "focld restarting gracefully: closed without NOTIFICATION (RFC 4724 §4.1)",
                    None,
                    IdleHold::Restart,
                    now,
                    out,
                );
            }
            Event::ConnectRetryTimerExpires if matches!(state, State::Connect | State::Active) => {
                // §8.2.2 Connect/Active: drop the attempt, restart the timer, try again.
                self.timers.connect_retry = Some(now + self.cfg.connect_retry);
                self.change_state(State::Connect, "connect retry timer expired", None, now, out);
                self.connect(out);
            }
            Event::HoldTimerExpires if self.session.is_some() => {
                // §8.2.2 OpenSent/OpenConfirm/Established, event 10: NOTIFICATION 4, Idle.
                let n = Notification::new(ErrorCode::HoldTimerExpired, 0, vec![]);
                self.session_end = Some(SessionEnd::HoldTimerExpired);
                self.go_idle("hold timer expired", Some(n), IdleHold::BackOff, now, out);
            }
            Event::KeepaliveTimerExpires if matches!(state, State::OpenConfirm | State::Established) => {
                if let Some(s) = self.session {
                    out.push(Action::Send { conn: s.conn, msg: Outgoing::Keepalive });
                }
                self.restart_keepalive_timer(now);
            }
            // RFC 4271 §8.2.2: start events in a started state, and timers that do not run in
            // this state, are ignored.
            _ => {}
        }
    }

    /// Events 16/17: a connection came up.
    fn on_connected(&mut self, link: Link, now: Instant, out: &mut Vec<Action>) {
        if self.attempt == Some(link.conn) {
            self.attempt = None;
        }
        match self.state {
            State::Idle if self.enabled && !link.outgoing => {
                // The peer connected during our IdleHold: take it (RFC 4271 §8.1.1, events 3/5
                // with passive TCP establishment). The back-off damps our own connects;
                // refusing the peer's too would let two speakers that back off out of phase
                // miss each other for minutes.
                self.take_connection(link, "connection accepted during idle hold", now, out);
            }
            State::Idle => {
                // A stopped peer refuses; a late attempt of ours is dropped.
                let n = (!link.outgoing).then(|| Notification::cease(CeaseSubcode::ConnectionRejected, None));
                out.push(Action::Close { conn: link.conn, notification: n });
            }
            State::Connect | State::Active => {
                let reason = if link.outgoing { "connection established" } else { "connection accepted" };
                self.take_connection(link, reason, now, out);
            }
            State::OpenSent | State::OpenConfirm => {
                // §6.8: a second connection. Send our OPEN on it; the collision is decided when
                // the peer's OPEN arrives on either connection. A third replaces the second.
                if let Some(old) = self.candidate.take() {
                    let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution, None);
                    out.push(Action::Close { conn: old.conn, notification: Some(n) });
                }
                self.candidate = Some(link);
                self.timers.candidate_open = Some(now + CANDIDATE_OPEN_TIME);
                out.push(Action::Send { conn: link.conn, msg: Outgoing::Open });
            }
            State::Established if !link.outgoing && self.graceful().is_some_and(|g| !g.families.is_empty()) => {
                // RFC 4724 §4.2: a new connection from a peer that can restart gracefully means
                // it restarted: the old session closes (its routes kept stale), the new one
                // goes on.
                self.session_end = Some(SessionEnd::PeerRestarted);
                let reason = "new connection while Established: the peer restarted (RFC 4724 §4.2)";
                self.change_state(State::Idle, reason, None, now, out);
                self.take_connection(link, "connection accepted after the peer's restart", now, out);
            }
            State::Established => {
                // §6.8: "collision with an existing BGP connection that is in the Established
                // state causes closing of the newly created connection".
                let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution, None);
                out.push(Action::Close { conn: link.conn, notification: Some(n) });
            }
        }
    }

    /// The connection becomes the session's: OPEN, then OpenSent.
    fn take_connection(&mut self, link: Link, reason: &str, now: Instant, out: &mut Vec<Action>) {
        self.session = Some(link);
        out.push(Action::Send { conn: link.conn, msg: Outgoing::Open });
        self.change_state(State::OpenSent, reason, None, now, out);
    }

    /// Event 18 on one of the connections.
    fn on_tcp_fails(&mut self, conn: ConnId, reason: &str, now: Instant, out: &mut Vec<Action>) {
        if self.attempt == Some(conn) {
            self.attempt = None;
            out.push(Action::Close { conn, notification: None });
            if self.state == State::Connect {
                // §8.2.2 Connect, event 18: restart the ConnectRetryTimer and wait in Active.
                self.change_state(State::Active, reason, None, now, out);
            }
            return;
        }
        if self.candidate_conn() == Some(conn) {
            self.candidate = None;
            self.timers.candidate_open = None;
            out.push(Action::Close { conn, notification: None });
            return;
        }
        if self.session_conn() != Some(conn) {
            return; // closed already
        }
        if self.candidate.is_some() {
            // Both connections were in play and the session's died: the other one carries on.
            out.push(Action::Close { conn, notification: None });
            self.promote_candidate(&format!("{reason}; continuing on the second connection"), now, out);
            return;
        }
        match self.state {
            // §8.2.2 OpenSent, event 18: back to Active, ConnectRetryTimer restarted.
            State::OpenSent => self.change_state(State::Active, reason, None, now, out),
            _ => self.go_idle(reason, None, IdleHold::BackOff, now, out),
        }
    }

    /// The candidate replaces the session's connection (already closed), before its OPEN
    /// arrived: OpenSent on it.
    fn promote_candidate(&mut self, reason: &str, now: Instant, out: &mut Vec<Action>) {
        let Some(c) = self.candidate.take() else { return };
        self.timers.candidate_open = None;
        self.session = Some(c);
        out.push(Action::Adopt { conn: c.conn });
        if self.state == State::OpenSent {
            return; // the session's connection had no OPEN yet either: nothing else changes
        }
        self.change_state(State::OpenSent, reason, None, now, out);
    }

    /// A message on the session's connection.
    fn on_message(&mut self, msg: Received, now: Instant, out: &mut Vec<Action>) {
        let state = self.state;
        match (state, msg) {
            (State::OpenSent, Received::Open(open)) => {
                if self.candidate.is_some() && self.collision_closes_session(open.remote_id) {
                    // §6.8: the peer's identifier decides now; the candidate wins and carries
                    // on in OpenSent (its OPEN has not come yet).
                    self.remote_id = Some(open.remote_id);
                    self.close_session_for_collision(out);
                    self.promote_candidate("connection collision", now, out);
                    return;
                }
                self.close_candidate_for_collision(out);
                self.confirm_open(open, "OPEN received", now, out);
            }
            (State::OpenConfirm, Received::Keepalive) => {
                self.close_candidate_for_collision(out);
                self.change_state(State::Established, "KEEPALIVE received", None, now, out);
                out.push(Action::SessionUp);
            }
            (State::Established, Received::Keepalive | Received::Update | Received::RouteRefresh) => {
                self.restart_hold_timer(now);
            }
            (_, Received::Invalid(n)) => {
                let reason = format!("sent NOTIFICATION {n}");
                self.go_idle(&reason, Some(n), IdleHold::BackOff, now, out);
            }
            (_, Received::Notification(n)) => {
                let reason = format!("received NOTIFICATION {n}");
                let collision =
                    n.code == ErrorCode::Cease as u8 && n.subcode == CeaseSubcode::ConnectionCollisionResolution as u8;
                if collision && self.candidate.is_some() {
                    // The peer resolved the collision for the other connection.
                    if let Some(s) = self.session.take() {
                        out.push(Action::Close { conn: s.conn, notification: None });
                    }
                    self.promote_candidate(&format!("{reason}; continuing on the second connection"), now, out);
                    return;
                }
                self.session_end = Some(SessionEnd::Received(n));
                self.go_idle(&reason, None, IdleHold::BackOff, now, out);
            }
            (_, other) => {
                // RFC 4271 §8.2.2 / RFC 6608: an event the state does not expect.
                let sub = match state {
                    State::OpenSent => FsmSubcode::UnexpectedMessageInOpenSent,
                    State::OpenConfirm => FsmSubcode::UnexpectedMessageInOpenConfirm,
                    State::Established => FsmSubcode::UnexpectedMessageInEstablished,
                    _ => FsmSubcode::Unspecified,
                };
                let n = Notification::new(ErrorCode::FsmError, sub as u8, vec![]);
                let reason = format!("FSM error: unexpected {} in {state}", received_name(&other));
                self.go_idle(&reason, Some(n), IdleHold::BackOff, now, out);
            }
        }
    }

    /// §8.2.2 OpenSent, event 19 (or a candidate's OPEN that won): KEEPALIVE, then the
    /// negotiated timers, OpenConfirm.
    fn confirm_open(&mut self, open: PeerOpen, reason: &str, now: Instant, out: &mut Vec<Action>) {
        if let Some(s) = self.session {
            out.push(Action::Send { conn: s.conn, msg: Outgoing::Keepalive });
        }
        self.remote_id = Some(open.remote_id);
        self.negotiated = Some(open.negotiated);
        self.change_state(State::OpenConfirm, reason, None, now, out);
        // Also when already in OpenConfirm (a candidate replaced the session's connection).
        self.set_session_timers(now);
    }

    /// A message on the collision candidate (we are in OpenSent or OpenConfirm).
    fn on_candidate_message(&mut self, conn: ConnId, msg: Received, now: Instant, out: &mut Vec<Action>) {
        let Some(link) = self.candidate else { return };
        let close = |out: &mut Vec<Action>, n: Option<Notification>| out.push(Action::Close { conn, notification: n });
        match msg {
            Received::Open(open) => {
                if !self.collision_closes_session(open.remote_id) {
                    self.close_candidate_for_collision(out);
                    self.remote_id.get_or_insert(open.remote_id);
                    return;
                }
                self.close_session_for_collision(out);
                self.candidate = None;
                self.timers.candidate_open = None;
                self.session = Some(link);
                out.push(Action::Adopt { conn });
                self.confirm_open(open, "connection collision: kept the second connection", now, out);
            }
            Received::Notification(_) => {
                self.candidate = None;
                close(out, None);
            }
            Received::Invalid(n) => {
                self.candidate = None;
                close(out, Some(n));
            }
            _ => {
                // Anything before its OPEN: the candidate is in OpenSent (RFC 6608 subcode 1).
                self.candidate = None;
                close(
                    out,
                    Some(Notification::new(ErrorCode::FsmError, FsmSubcode::UnexpectedMessageInOpenSent as u8, vec![])),
                );
            }
        }
        if self.candidate.is_none() {
            self.timers.candidate_open = None;
        }
    }

    /// §6.8 with the peer's identifier now known: whether the session's connection is the one
    /// to close (else the candidate is).
    fn collision_closes_session(&self, remote_id: Ipv4Addr) -> bool {
        let (Some(s), Some(c)) = (self.session, self.candidate) else { return false };
        if s.outgoing == c.outgoing {
            return false; // both from the same side: keep the one we had
        }
        let c = &self.cfg;
        match collision_loser(c.local_id, remote_id, c.local_as, c.remote_as) {
            Some(Initiator::Local) => s.outgoing,
            Some(Initiator::Remote) => !s.outgoing,
            None => false,
        }
    }

    fn close_session_for_collision(&mut self, out: &mut Vec<Action>) {
        if let Some(s) = self.session.take() {
            let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution, None);
            out.push(Action::Close { conn: s.conn, notification: Some(n) });
        }
    }

    fn close_candidate_for_collision(&mut self, out: &mut Vec<Action>) {
        if let Some(c) = self.candidate.take() {
            self.timers.candidate_open = None;
            let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution, None);
            out.push(Action::Close { conn: c.conn, notification: Some(n) });
        }
    }

    /// Any state -> Idle, closing every connection (the session's with `notification`).
    fn go_idle(
        &mut self,
        reason: &str,
        notification: Option<Notification>,
        hold: IdleHold,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        // How the session ended, unless the caller said it more precisely.
        if self.state == State::Established && self.session_end.is_none() {
            self.session_end = Some(match &notification {
                Some(n) => SessionEnd::Sent(n.clone()),
                None => SessionEnd::TcpFailed,
            });
        }
        self.change_state(State::Idle, reason, notification, now, out);
        if self.enabled {
            let d = match hold {
                IdleHold::BackOff => {
                    let d = self.idle_hold;
                    self.idle_hold = (self.idle_hold * 2).min(IDLE_HOLD_MAX);
                    d
                }
                IdleHold::Restart => RESET_IDLE_HOLD,
            };
            self.timers.idle_hold = Some(now + d);
        }
    }

    /// The one door for every transition (like OpenBGPD's `change_state`): logs and archives
    /// it (`StateChange`, first, while the session's connection is still open), tells the RIB
    /// when the session leaves Established and counts the flap, closes what must close, and
    /// sets the timers of the new state (RFC 4271 §8.2.2). Idle's IdleHold is armed by
    /// `go_idle`, which knows why the session went down.
    fn change_state(
        &mut self,
        to: State,
        reason: &str,
        notification: Option<Notification>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let from = self.state;
        if from == to {
            return;
        }
        out.push(Action::StateChange { from, to, reason: reason.to_string(), conn: self.session_conn() });
        if from == State::Established {
            out.push(Action::SessionDown);
            self.flaps += 1;
            if self.established_at.is_some_and(|t| now.duration_since(t) >= STABLE_SESSION) {
                self.idle_hold = IDLE_HOLD_INITIAL;
            }
        }
        self.state = to;
        self.state_since = now;
        let t = &mut self.timers;
        t.idle_hold = None;
        match to {
            State::Idle | State::Connect | State::Active => {
                if let Some(s) = self.session.take() {
                    out.push(Action::Close { conn: s.conn, notification: notification.clone() });
                }
                if let Some(c) = self.candidate.take() {
                    // The candidate hears an operator's Cease too; other errors were the session's.
                    let n = notification.filter(|n| n.code == ErrorCode::Cease as u8);
                    out.push(Action::Close { conn: c.conn, notification: n });
                }
                self.negotiated = None;
                self.established_at = None;
                *t = Timers { connect_retry: t.connect_retry, ..Timers::default() };
                match to {
                    State::Idle => {
                        if let Some(a) = self.attempt.take() {
                            out.push(Action::Close { conn: a, notification: None });
                        }
                        t.connect_retry = None;
                    }
                    // Passive peers never connect (RFC 4271 §8.1.1, PassiveTcpEstablishment).
                    _ if self.cfg.passive => t.connect_retry = None,
                    State::Connect => t.connect_retry = Some(now + self.cfg.connect_retry),
                    _ => {
                        t.connect_retry.get_or_insert(now + self.cfg.connect_retry);
                    }
                }
            }
            State::OpenSent => {
                t.connect_retry = None;
                t.keepalive = None;
                t.hold = Some(now + LARGE_HOLD_TIME);
                self.negotiated = None;
            }
            State::OpenConfirm => t.connect_retry = None,
            State::Established => {
                self.established_at = Some(now);
                self.session_end = None;
                self.restart_hold_timer(now);
            }
        }
    }

    /// RFC 4271 §4.2: the negotiated hold time; zero means no Hold and no Keepalive timer.
    fn set_session_timers(&mut self, now: Instant) {
        let Some(n) = &self.negotiated else { return };
        self.hold_postponed = false;
        if n.hold_time == 0 {
            self.timers.hold = None;
            self.timers.keepalive = None;
        } else {
            self.timers.hold = Some(now + Duration::from_secs(n.hold_time.into()));
            self.timers.keepalive = Some(now + keepalive_interval(n));
        }
    }

    fn restart_hold_timer(&mut self, now: Instant) {
        self.hold_postponed = false;
        if let Some(n) = &self.negotiated {
            if n.hold_time > 0 {
                self.timers.hold = Some(now + Duration::from_secs(n.hold_time.into()));
            }
        }
    }

    fn restart_keepalive_timer(&mut self, now: Instant) {
        if let Some(n) = &self.negotiated {
            if n.hold_time > 0 {
                self.timers.keepalive = Some(now + keepalive_interval(n));
            }
        }
    }
}

fn keepalive_interval(n: &Negotiated) -> Duration {
    Duration::from_secs(u64::from(n.keepalive.max(1)))
}

fn stop_reason(sub: CeaseSubcode) -> &'static str {
    match sub {
        CeaseSubcode::AdministrativeReset => "administrative reset",
        CeaseSubcode::PeerDeconfigured => "peer de-configured",
        CeaseSubcode::MaximumPrefixesReached => "maximum number of prefixes reached",
        CeaseSubcode::OtherConfigurationChange => "configuration change",
        _ => "administrative shutdown",
    }
}

fn received_name(m: &Received) -> &'static str {
    match m {
        Received::Open(_) | Received::UnexpectedOpen => "OPEN",
        Received::Invalid(_) => "bad message",
        Received::Notification(_) => "NOTIFICATION",
        Received::Keepalive => "KEEPALIVE",
        Received::Update => "UPDATE",
        Received::RouteRefresh => "ROUTE-REFRESH",
    }
}

/// RFC 4271 §6.8 connection collision, once the peer's BGP Identifier is known: whose
/// connection closes. "If the value of the local BGP Identifier is less than the remote one,
/// close the connection that was initiated by the local system" (compared as unsigned
/// integers); otherwise the peer's. RFC 6286 §2.3: with equal identifiers on an external
/// session, the speaker with the lower AS number closes the connection it initiated. Equal
/// identifiers on an internal session are refused with the OPEN (RFC 6286 §2.2, 2/3), so no
/// rule applies: `None`.
pub fn collision_loser(local_id: Ipv4Addr, remote_id: Ipv4Addr, local_as: u32, remote_as: u32) -> Option<Initiator> {
    let (l, r) = (u32::from(local_id), u32::from(remote_id));
    let local_closes = if l != r {
        l < r
    } else if local_as != remote_as {
        local_as < remote_as
    } else {
        return None;
    };
    Some(if local_closes { Initiator::Local } else { Initiator::Remote })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefix::Family;

    const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const LOW_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const HIGH_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
    /// The first outgoing attempt of an active FSM.
    const OURS: ConnId = ConnId(1);

    fn cfg(passive: bool) -> FsmConfig {
        FsmConfig {
            passive,
            connect_retry: Duration::from_secs(5),
            local_id: LOCAL_ID,
            local_as: 65001,
            remote_as: 65002,
        }
    }

    fn negotiated(hold: u16) -> Negotiated {
        Negotiated {
            hold_time: hold,
            keepalive: hold / 3,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            four_octet_as: true,
            route_refresh: true,
            enhanced_route_refresh: false,
            extended_message: false,
            role: None,
            remote_role: None,
            add_path_rx: vec![],
            graceful: None,
        }
    }

    fn open_from(remote_id: Ipv4Addr, hold: u16) -> Received {
        Received::Open(PeerOpen { negotiated: negotiated(hold), remote_id })
    }

    fn msg(conn: ConnId, msg: Received) -> Event {
        Event::Message { conn, msg }
    }

    /// The OPEN of the peer 192.0.2.2 (lower than ours) on our first connection.
    fn open_event(hold: u16) -> Event {
        msg(OURS, open_from(Ipv4Addr::new(192, 0, 2, 2), hold))
    }

    fn connected(conn: ConnId, outgoing: bool) -> Event {
        Event::TcpConnected { conn, outgoing }
    }

    fn fails(conn: ConnId) -> Event {
        Event::TcpFails { conn, reason: "eof".into() }
    }

    fn states(actions: &[Action]) -> Vec<(State, State)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::StateChange { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    fn notification(actions: &[Action]) -> Option<&Notification> {
        actions.iter().find_map(|a| match a {
            Action::Close { notification: Some(n), .. } => Some(n),
            _ => None,
        })
    }

    fn closes(actions: &[Action]) -> Vec<(ConnId, Option<(u8, u8)>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Close { conn, notification } => {
                    Some((*conn, notification.as_ref().map(|n| (n.code, n.subcode))))
                }
                _ => None,
            })
            .collect()
    }

    fn sends(actions: &[Action]) -> Vec<(ConnId, Outgoing)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { conn, msg } => Some((*conn, *msg)),
                _ => None,
            })
            .collect()
    }

    const CEASE_7: Option<(u8, u8)> = Some((6, 7));

    /// Drive an active FSM to the given state on our first connection.
    fn fsm_in(state: State, t0: Instant) -> Fsm {
        let mut f = Fsm::new(cfg(false), t0);
        f.handle(Event::ManualStart, t0);
        if state == State::Connect {
            return f;
        }
        if state == State::Active {
            f.handle(Event::TcpFails { conn: OURS, reason: "refused".into() }, t0);
            return f;
        }
        f.handle(connected(OURS, true), t0);
        if state == State::OpenSent {
            return f;
        }
        f.handle(open_event(90), t0);
        if state == State::OpenConfirm {
            return f;
        }
        f.handle(msg(OURS, Received::Keepalive), t0);
        assert_eq!(f.state(), State::Established);
        f
    }

    /// An FSM in `state` on our connection with the peer's connection as a candidate.
    fn with_candidate(state: State, t0: Instant) -> (Fsm, ConnId) {
        let mut f = fsm_in(state, t0);
        let theirs = f.new_conn_id();
        let a = f.handle(connected(theirs, false), t0);
        assert_eq!(sends(&a), vec![(theirs, Outgoing::Open)], "our OPEN goes on the candidate");
        assert_eq!(f.candidate_conn(), Some(theirs));
        (f, theirs)
    }

    #[test]
    fn idle_ignores_everything_but_start() {
        let t0 = Instant::now();
        let mut f = Fsm::new(cfg(false), t0);
        assert!(f.handle(msg(ConnId(7), Received::Keepalive), t0).is_empty());
        assert!(f.handle(Event::AutomaticStart, t0).is_empty(), "not enabled yet");
        assert_eq!(f.state(), State::Idle);
        let a = f.handle(connected(ConnId(8), false), t0);
        assert_eq!(closes(&a), vec![(ConnId(8), Some((6, 5)))], "not started: Connection Rejected");
    }

    #[test]
    fn manual_start_on_active_peer_connects_with_retry_timer() {
        let t0 = Instant::now();
        let mut f = Fsm::new(cfg(false), t0);
        let a = f.handle(Event::ManualStart, t0);
        assert_eq!(states(&a), vec![(State::Idle, State::Connect)]);
        assert!(a.contains(&Action::Connect { conn: OURS }));
        assert_eq!(f.timers().connect_retry, Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn manual_start_on_passive_peer_waits_in_active_without_connecting() {
        let t0 = Instant::now();
        let mut f = Fsm::new(cfg(true), t0);
        let a = f.handle(Event::ManualStart, t0);
        assert_eq!(states(&a), vec![(State::Idle, State::Active)]);
        assert!(!a.iter().any(|a| matches!(a, Action::Connect { .. })));
        assert_eq!(f.next_deadline(), None);
        // ConnectRetry never fires for a passive peer, it only accepts.
        let c = f.new_conn_id();
        let a = f.handle(connected(c, false), t0);
        assert_eq!(states(&a), vec![(State::Active, State::OpenSent)]);
        assert_eq!(sends(&a), vec![(c, Outgoing::Open)]);
    }

    #[test]
    fn connect_retry_timer_expiry_in_connect_tries_again() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Connect, t0);
        let t1 = t0 + Duration::from_secs(5);
        let ev = f.expired_timers(t1);
        assert_eq!(ev, vec![Event::ConnectRetryTimerExpires]);
        let a = f.handle(Event::ConnectRetryTimerExpires, t1);
        assert_eq!(a, vec![Action::Close { conn: OURS, notification: None }, Action::Connect { conn: ConnId(2) }]);
        assert_eq!(f.state(), State::Connect);
        assert_eq!(f.timers().connect_retry, Some(t1 + Duration::from_secs(5)));
    }

    #[test]
    fn connection_failure_in_connect_moves_to_active_and_retries_later() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Active, t0);
        assert_eq!(f.state(), State::Active);
        let t1 = t0 + Duration::from_secs(5);
        let a = f.handle(Event::ConnectRetryTimerExpires, t1);
        assert_eq!(states(&a), vec![(State::Active, State::Connect)]);
        assert!(a.contains(&Action::Connect { conn: ConnId(2) }));
    }

    #[test]
    fn incoming_connection_in_active_sends_open() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Active, t0);
        let c = f.new_conn_id();
        let a = f.handle(connected(c, false), t0);
        assert_eq!(a[0], Action::Send { conn: c, msg: Outgoing::Open });
        assert_eq!(f.state(), State::OpenSent);
        assert_eq!(f.timers().hold, Some(t0 + LARGE_HOLD_TIME));
        assert_eq!(f.timers().connect_retry, None);
    }

    #[test]
    fn open_in_open_sent_sends_keepalive_and_sets_negotiated_timers() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let a = f.handle(open_event(90), t0);
        assert_eq!(a[0], Action::Send { conn: OURS, msg: Outgoing::Keepalive });
        assert_eq!(f.state(), State::OpenConfirm);
        assert_eq!(f.timers().hold, Some(t0 + Duration::from_secs(90)));
        assert_eq!(f.timers().keepalive, Some(t0 + Duration::from_secs(30)));
        assert_eq!(f.remote_id(), Some(Ipv4Addr::new(192, 0, 2, 2)));
    }

    #[test]
    fn hold_time_zero_runs_no_hold_or_keepalive_timer() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        f.handle(open_event(0), t0);
        assert_eq!(f.timers().hold, None);
        assert_eq!(f.timers().keepalive, None);
        f.handle(msg(OURS, Received::Keepalive), t0);
        assert_eq!(f.state(), State::Established);
        assert_eq!(f.next_deadline(), None);
    }

    #[test]
    fn hold_timer_expired_in_open_sent_sends_notification_4_and_goes_idle() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let t1 = t0 + LARGE_HOLD_TIME;
        assert_eq!(f.expired_timers(t1), vec![Event::HoldTimerExpires]);
        let a = f.handle(Event::HoldTimerExpires, t1);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((4, 0)));
        assert_eq!(f.state(), State::Idle);
        assert_eq!(f.timers().idle_hold, Some(t1 + IDLE_HOLD_INITIAL));
    }

    #[test]
    fn keepalive_in_open_sent_is_an_fsm_error_with_rfc6608_subcode() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let a = f.handle(msg(OURS, Received::Keepalive), t0);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((5, 1)));
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn bad_open_sends_its_notification_and_goes_idle() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let n = Notification::new(ErrorCode::OpenMessage, 2, vec![]);
        let a = f.handle(msg(OURS, Received::Invalid(n.clone())), t0);
        assert_eq!(notification(&a), Some(&n));
        assert_eq!(closes(&a), vec![(OURS, Some((2, 2)))]);
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn connection_lost_in_open_sent_goes_to_active() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let a = f.handle(fails(OURS), t0);
        assert_eq!(states(&a), vec![(State::OpenSent, State::Active)]);
        assert!(f.timers().connect_retry.is_some());
        assert_eq!(closes(&a), vec![(OURS, None)]);
    }

    #[test]
    fn keepalive_in_open_confirm_establishes_the_session() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenConfirm, t0);
        let t1 = t0 + Duration::from_secs(1);
        let a = f.handle(msg(OURS, Received::Keepalive), t1);
        assert_eq!(states(&a), vec![(State::OpenConfirm, State::Established)]);
        assert!(a.contains(&Action::SessionUp));
        assert_eq!(f.established_at(), Some(t1));
        assert_eq!(f.timers().hold, Some(t1 + Duration::from_secs(90)));
    }

    #[test]
    fn keepalive_timer_in_open_confirm_sends_keepalive() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenConfirm, t0);
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(f.expired_timers(t1), vec![Event::KeepaliveTimerExpires]);
        assert_eq!(
            f.handle(Event::KeepaliveTimerExpires, t1),
            vec![Action::Send { conn: OURS, msg: Outgoing::Keepalive }]
        );
        assert_eq!(f.timers().keepalive, Some(t1 + Duration::from_secs(30)));
    }

    #[test]
    fn update_in_open_confirm_is_an_fsm_error() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenConfirm, t0);
        let a = f.handle(msg(OURS, Received::Update), t0);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((5, 2)));
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn notification_in_open_confirm_goes_idle_without_answering() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenConfirm, t0);
        let n = Notification::new(ErrorCode::Cease, 2, vec![]);
        let a = f.handle(msg(OURS, Received::Notification(n)), t0);
        assert!(notification(&a).is_none());
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn messages_in_established_restart_the_hold_timer() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let t1 = t0 + Duration::from_secs(60);
        assert!(f.handle(msg(OURS, Received::Update), t1).is_empty());
        assert_eq!(f.timers().hold, Some(t1 + Duration::from_secs(90)));
        let t2 = t1 + Duration::from_secs(60);
        f.handle(msg(OURS, Received::RouteRefresh), t2);
        assert_eq!(f.timers().hold, Some(t2 + Duration::from_secs(90)));
    }

    #[test]
    fn sending_a_message_restarts_the_keepalive_timer() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let t1 = t0 + Duration::from_secs(20);
        f.message_sent(t1);
        assert_eq!(f.timers().keepalive, Some(t1 + Duration::from_secs(30)));
    }

    #[test]
    fn hold_timer_expired_in_established_drops_session_and_backs_off() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let t1 = t0 + Duration::from_secs(90);
        assert!(f.expired_timers(t1).contains(&Event::HoldTimerExpires));
        let a = f.handle(Event::HoldTimerExpires, t1);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((4, 0)));
        assert!(a.contains(&Action::SessionDown));
        assert_eq!(f.state(), State::Idle);
        assert_eq!(f.flaps(), 1);
        assert_eq!(f.timers().idle_hold, Some(t1 + IDLE_HOLD_INITIAL));
    }

    #[test]
    fn the_hold_timer_is_postponed_at_most_once_until_a_whole_message_arrives() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let t1 = t0 + Duration::from_secs(90);
        assert!(f.expired_timers(t1).contains(&Event::HoldTimerExpires));
        assert!(f.postpone_hold_timer(t1), "bytes arrived: once, briefly");
        assert_eq!(f.timers().hold, Some(t1 + HOLD_GRACE));
        let t2 = t1 + HOLD_GRACE;
        assert!(f.expired_timers(t2).contains(&Event::HoldTimerExpires));
        assert!(!f.postpone_hold_timer(t2), "a second time: the timer expires");
        // A whole message restarts the timer and allows one postponement again.
        f.handle(msg(OURS, Received::Keepalive), t2);
        assert!(f.postpone_hold_timer(t2));
    }

    #[test]
    fn leaving_established_names_the_sessions_connection_before_closing_it() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let a = f.handle(fails(OURS), t0);
        let Some(Action::StateChange { conn, to: State::Idle, .. }) = a.first() else { panic!("{a:?}") };
        assert_eq!(*conn, Some(OURS), "the MRT record is written with this connection's addresses");
        assert_eq!(a[1], Action::SessionDown);
        assert_eq!(closes(&a), vec![(OURS, None)]);
        assert_eq!(f.session_conn(), None);
    }

    #[test]
    fn incoming_connection_during_idle_hold_is_taken() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        f.handle(fails(OURS), t0);
        assert_eq!(f.state(), State::Idle);
        let c = f.new_conn_id();
        let a = f.handle(connected(c, false), t0);
        assert_eq!(a[0], Action::Send { conn: c, msg: Outgoing::Open });
        assert_eq!(f.state(), State::OpenSent);
        assert_eq!(f.timers().idle_hold, None);
    }

    #[test]
    fn a_stopped_peer_refuses_incoming_connections() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let stop =
            Event::ManualStop { subcode: CeaseSubcode::AdministrativeShutdown, communication: None, restart: false };
        f.handle(stop, t0);
        let c = f.new_conn_id();
        assert_eq!(closes(&f.handle(connected(c, false), t0)), vec![(c, Some((6, 5)))]);
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn open_in_established_is_an_fsm_error() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let a = f.handle(msg(OURS, Received::UnexpectedOpen), t0);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((5, 3)));
        assert!(a.contains(&Action::SessionDown));
    }

    #[test]
    fn update_error_in_established_sends_it_and_drops_session() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let n = Notification::new(ErrorCode::UpdateMessage, 1, vec![]);
        let a = f.handle(msg(OURS, Received::Invalid(n.clone())), t0);
        assert_eq!(notification(&a), Some(&n));
        assert!(matches!(a.first(), Some(Action::StateChange { to: State::Idle, .. })));
    }

    #[test]
    fn idle_hold_doubles_for_a_flapping_peer_and_resets_after_a_stable_session() {
        let mut t = Instant::now();
        let mut f = fsm_in(State::Established, t);
        let mut holds = Vec::new();
        for _ in 0..7 {
            let conn = f.session_conn().expect("a session");
            f.handle(fails(conn), t);
            let d = f.timers().idle_hold.map(|d| d.duration_since(t));
            holds.push(d.map(|d| d.as_secs()));
            t += d.unwrap_or_default();
            assert_eq!(f.expired_timers(t), vec![Event::AutomaticStart]);
            let a = f.handle(Event::AutomaticStart, t);
            let Some(Action::Connect { conn }) = a.iter().find(|a| matches!(a, Action::Connect { .. })).cloned() else {
                panic!("no connect: {a:?}")
            };
            f.handle(connected(conn, true), t);
            f.handle(msg(conn, open_from(LOW_ID, 90)), t);
            f.handle(msg(conn, Received::Keepalive), t);
        }
        assert_eq!(holds, [5, 10, 20, 40, 80, 120, 120].map(Some).to_vec());
        // Stable for long enough: back to the initial back-off.
        t += STABLE_SESSION;
        let conn = f.session_conn().expect("a session");
        f.handle(fails(conn), t);
        assert_eq!(f.timers().idle_hold, Some(t + IDLE_HOLD_INITIAL));
        assert_eq!(f.flaps(), 8);
    }

    #[test]
    fn manual_stop_with_restart_sends_cease_and_comes_back() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let stop = Event::ManualStop {
            subcode: CeaseSubcode::AdministrativeReset,
            communication: Some("maintenance".into()),
            restart: true,
        };
        let a = f.handle(stop, t0);
        let n = notification(&a).cloned();
        assert_eq!(n.as_ref().map(|n| (n.code, n.subcode)), Some((6, 4)));
        assert_eq!(n.and_then(|n| n.shutdown_communication()), Some("maintenance".into()));
        assert!(a.contains(&Action::SessionDown));
        assert_eq!(f.state(), State::Idle);
        let t1 = t0 + RESET_IDLE_HOLD;
        assert_eq!(f.expired_timers(t1), vec![Event::AutomaticStart]);
        let a = f.handle(Event::AutomaticStart, t1);
        assert_eq!(states(&a), vec![(State::Idle, State::Connect)]);
    }

    #[test]
    fn manual_stop_without_restart_stays_idle() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let stop =
            Event::ManualStop { subcode: CeaseSubcode::AdministrativeShutdown, communication: None, restart: false };
        f.handle(stop, t0);
        assert_eq!(f.state(), State::Idle);
        assert_eq!(f.next_deadline(), None);
        assert!(f.handle(Event::AutomaticStart, t0).is_empty());
    }

    #[test]
    fn manual_stop_closes_both_connections_of_a_collision_with_the_cease() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenConfirm, t0);
        let stop =
            Event::ManualStop { subcode: CeaseSubcode::AdministrativeShutdown, communication: None, restart: false };
        let a = f.handle(stop, t0);
        assert_eq!(closes(&a), vec![(OURS, Some((6, 2))), (theirs, Some((6, 2)))]);
    }

    // RFC 4271 §6.8 and RFC 6286 §2.3: every collision case.

    #[test]
    fn collision_loser_compares_identifiers_as_unsigned_integers_then_as_numbers() {
        // Our id is lower: our connection closes; higher: theirs.
        assert_eq!(collision_loser(LOW_ID, HIGH_ID, 65001, 65002), Some(Initiator::Local));
        assert_eq!(collision_loser(HIGH_ID, LOW_ID, 65001, 65002), Some(Initiator::Remote));
        // Compared as unsigned integers, not as signed or as text.
        let (big, small) = (Ipv4Addr::new(200, 0, 0, 1), Ipv4Addr::new(9, 0, 0, 1));
        assert_eq!(collision_loser(big, small, 65001, 65002), Some(Initiator::Remote));
        // RFC 6286 §2.3: equal ids on eBGP: the lower AS closes the connection it opened.
        assert_eq!(collision_loser(LOW_ID, LOW_ID, 65001, 65002), Some(Initiator::Local));
        assert_eq!(collision_loser(LOW_ID, LOW_ID, 65003, 65002), Some(Initiator::Remote));
        // Equal ids on iBGP never get this far (OPEN error 2/3): no rule.
        assert_eq!(collision_loser(LOW_ID, LOW_ID, 65001, 65001), None);
    }

    #[test]
    fn collision_in_open_sent_closes_our_connection_when_the_peers_id_is_higher() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        let a = f.handle(msg(theirs, open_from(HIGH_ID, 90)), t0);
        assert_eq!(closes(&a), vec![(OURS, CEASE_7)]);
        assert!(a.contains(&Action::Adopt { conn: theirs }));
        assert_eq!(sends(&a), vec![(theirs, Outgoing::Keepalive)]);
        assert_eq!(states(&a), vec![(State::OpenSent, State::OpenConfirm)]);
        assert_eq!((f.session_conn(), f.candidate_conn()), (Some(theirs), None));
        let a = f.handle(msg(theirs, Received::Keepalive), t0);
        assert!(a.contains(&Action::SessionUp));
    }

    #[test]
    fn collision_in_open_sent_closes_the_peers_connection_when_our_id_is_higher() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        let a = f.handle(msg(theirs, open_from(LOW_ID, 90)), t0);
        assert_eq!(closes(&a), vec![(theirs, CEASE_7)]);
        assert_eq!(f.state(), State::OpenSent, "still waiting for the OPEN on our connection");
        assert_eq!(f.timers().candidate_open, None);
        let a = f.handle(msg(OURS, open_from(LOW_ID, 90)), t0);
        assert_eq!(states(&a), vec![(State::OpenSent, State::OpenConfirm)]);
    }

    #[test]
    fn collision_decided_by_the_open_on_the_first_connection_in_both_directions() {
        let t0 = Instant::now();
        // Our connection is the session's, the peer's the candidate; the OPEN comes on ours.
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        let a = f.handle(msg(OURS, open_from(LOW_ID, 90)), t0);
        assert_eq!(closes(&a), vec![(theirs, CEASE_7)], "our id is higher: theirs closes");
        assert_eq!(f.state(), State::OpenConfirm);
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        let a = f.handle(msg(OURS, open_from(HIGH_ID, 90)), t0);
        assert_eq!(closes(&a), vec![(OURS, CEASE_7)], "their id is higher: ours closes");
        assert_eq!((f.state(), f.session_conn()), (State::OpenSent, Some(theirs)));

        // The peer's connection is the session's (it came first), ours the candidate.
        let mut f = fsm_in(State::Connect, t0);
        let theirs = f.new_conn_id();
        f.handle(connected(theirs, false), t0);
        let a = f.handle(connected(OURS, true), t0);
        assert_eq!(sends(&a), vec![(OURS, Outgoing::Open)]);
        assert_eq!((f.session_conn(), f.candidate_conn()), (Some(theirs), Some(OURS)));
        let a = f.handle(msg(theirs, open_from(HIGH_ID, 90)), t0);
        assert_eq!(closes(&a), vec![(OURS, CEASE_7)], "their id is higher: ours closes");
        assert_eq!((f.state(), f.session_conn()), (State::OpenConfirm, Some(theirs)));
    }

    #[test]
    fn collision_with_equal_ids_on_ebgp_is_decided_by_the_as_numbers() {
        let t0 = Instant::now();
        // Local AS 65001 < remote AS 65002: we close the connection we opened.
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        let a = f.handle(msg(theirs, open_from(LOCAL_ID, 90)), t0);
        assert_eq!(closes(&a), vec![(OURS, CEASE_7)]);
        assert_eq!(f.session_conn(), Some(theirs));
        let mut f = Fsm::new(FsmConfig { local_as: 65003, ..cfg(false) }, t0);
        f.handle(Event::ManualStart, t0);
        f.handle(connected(OURS, true), t0);
        let theirs = f.new_conn_id();
        f.handle(connected(theirs, false), t0);
        let a = f.handle(msg(theirs, open_from(LOCAL_ID, 90)), t0);
        assert_eq!(closes(&a), vec![(theirs, CEASE_7)], "our AS is higher: we keep ours");
    }

    #[test]
    fn collision_with_equal_ids_on_ibgp_keeps_the_existing_connection() {
        let t0 = Instant::now();
        let mut f = Fsm::new(FsmConfig { remote_as: 65001, ..cfg(false) }, t0);
        f.handle(Event::ManualStart, t0);
        f.handle(connected(OURS, true), t0);
        let theirs = f.new_conn_id();
        f.handle(connected(theirs, false), t0);
        let a = f.handle(msg(theirs, open_from(LOCAL_ID, 90)), t0);
        assert_eq!(closes(&a), vec![(theirs, CEASE_7)]);
        assert_eq!(f.session_conn(), Some(OURS));
    }

    #[test]
    fn collision_in_open_confirm_replaces_the_connection_without_a_state_change() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenConfirm, t0);
        let t1 = t0 + Duration::from_secs(3);
        let a = f.handle(msg(theirs, open_from(HIGH_ID, 60)), t1);
        assert_eq!(closes(&a), vec![(OURS, CEASE_7)]);
        assert_eq!(sends(&a), vec![(theirs, Outgoing::Keepalive)]);
        assert!(states(&a).is_empty());
        assert_eq!(f.negotiated().map(|n| n.hold_time), Some(60));
        assert_eq!(f.timers().hold, Some(t1 + Duration::from_secs(60)));
        assert_eq!(f.remote_id(), Some(HIGH_ID));
    }

    #[test]
    fn collision_in_open_confirm_keeps_ours_when_our_id_is_higher() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenConfirm, t0);
        let a = f.handle(msg(theirs, open_from(LOW_ID, 60)), t0);
        assert_eq!(closes(&a), vec![(theirs, CEASE_7)]);
        assert_eq!((f.state(), f.session_conn()), (State::OpenConfirm, Some(OURS)));
    }

    #[test]
    fn keepalive_in_open_confirm_establishes_and_closes_a_candidate_without_an_open() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenConfirm, t0);
        let a = f.handle(msg(OURS, Received::Keepalive), t0);
        assert_eq!(closes(&a), vec![(theirs, CEASE_7)]);
        assert!(a.contains(&Action::SessionUp));
    }

    #[test]
    fn collision_in_established_keeps_the_established_session() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let theirs = f.new_conn_id();
        let a = f.handle(connected(theirs, false), t0);
        assert_eq!(
            a,
            vec![Action::Close {
                conn: theirs,
                notification: Some(Notification::cease(CeaseSubcode::ConnectionCollisionResolution, None))
            }]
        );
        assert_eq!((f.state(), f.session_conn()), (State::Established, Some(OURS)));
    }

    #[test]
    fn our_connect_completing_and_the_peers_connection_in_the_same_turn_leave_one_session() {
        let t0 = Instant::now();
        for ours_first in [true, false] {
            let mut f = fsm_in(State::Connect, t0);
            let theirs = f.new_conn_id();
            let mut all = Vec::new();
            if ours_first {
                all.extend(f.handle(connected(OURS, true), t0));
                all.extend(f.handle(connected(theirs, false), t0));
            } else {
                all.extend(f.handle(connected(theirs, false), t0));
                all.extend(f.handle(connected(OURS, true), t0));
            }
            let mut opens = sends(&all);
            opens.sort_by_key(|(c, _)| *c);
            assert_eq!(opens, vec![(OURS, Outgoing::Open), (theirs, Outgoing::Open)], "our OPEN on both");
            assert!(closes(&all).is_empty(), "nothing closed before the identifier is known");
            // The peer (higher id) sends OPENs on both; ours closes.
            let mut a = f.handle(msg(theirs, open_from(HIGH_ID, 90)), t0);
            a.extend(f.handle(msg(OURS, open_from(HIGH_ID, 90)), t0));
            assert_eq!(closes(&a), vec![(OURS, CEASE_7)], "ours_first {ours_first}");
            assert_eq!((f.state(), f.session_conn()), (State::OpenConfirm, Some(theirs)));
            assert!(notification(&a).is_none_or(|n| n.code != ErrorCode::FsmError as u8));
        }
    }

    #[test]
    fn our_connect_failing_in_the_turn_the_peers_connection_arrives_keeps_the_peers() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Connect, t0);
        let theirs = f.new_conn_id();
        f.handle(connected(theirs, false), t0);
        let a = f.handle(fails(OURS), t0);
        assert_eq!(a, vec![Action::Close { conn: OURS, notification: None }]);
        assert_eq!((f.state(), f.session_conn()), (State::OpenSent, Some(theirs)));
    }

    #[test]
    fn the_peers_cease_on_one_connection_while_the_other_is_decided_continues_on_the_other() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenConfirm, t0);
        let cease = Notification::cease(CeaseSubcode::ConnectionCollisionResolution, None);
        let a = f.handle(msg(OURS, Received::Notification(cease.clone())), t0);
        assert_eq!(closes(&a), vec![(OURS, None)]);
        assert!(a.contains(&Action::Adopt { conn: theirs }));
        assert_eq!(states(&a), vec![(State::OpenConfirm, State::OpenSent)]);
        assert_eq!(f.session_conn(), Some(theirs));
        let a = f.handle(msg(theirs, open_from(HIGH_ID, 90)), t0);
        assert_eq!(states(&a), vec![(State::OpenSent, State::OpenConfirm)]);
        // A Cease on the candidate closes only the candidate.
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        let a = f.handle(msg(theirs, Received::Notification(cease)), t0);
        assert_eq!(closes(&a), vec![(theirs, None)]);
        assert_eq!((f.state(), f.session_conn(), f.candidate_conn()), (State::OpenSent, Some(OURS), None));
    }

    #[test]
    fn a_collision_where_both_connections_die_ends_in_active_without_a_stale_session() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenConfirm, t0);
        let a = f.handle(fails(OURS), t0);
        assert!(a.contains(&Action::Adopt { conn: theirs }));
        assert_eq!((f.state(), f.session_conn()), (State::OpenSent, Some(theirs)));
        let a = f.handle(fails(theirs), t0);
        assert_eq!(states(&a), vec![(State::OpenSent, State::Active)]);
        assert_eq!((f.session_conn(), f.candidate_conn()), (None, None));
        // A new connection is taken, not refused.
        let next = f.new_conn_id();
        let a = f.handle(connected(next, false), t0);
        assert_eq!(sends(&a), vec![(next, Outgoing::Open)]);
        // The candidate dying first leaves the session as it was.
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        assert_eq!(f.handle(fails(theirs), t0), vec![Action::Close { conn: theirs, notification: None }]);
        assert_eq!((f.state(), f.session_conn()), (State::OpenSent, Some(OURS)));
    }

    #[test]
    fn a_candidate_that_sends_no_open_in_time_is_closed_with_hold_timer_expired() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenConfirm, t0);
        let t1 = t0 + CANDIDATE_OPEN_TIME;
        assert!(f.expired_timers(t1).contains(&Event::CandidateOpenTimerExpires));
        let a = f.handle(Event::CandidateOpenTimerExpires, t1);
        assert_eq!(closes(&a), vec![(theirs, Some((4, 0)))]);
        assert_eq!((f.state(), f.session_conn()), (State::OpenConfirm, Some(OURS)));
    }

    #[test]
    fn a_candidate_sending_anything_before_its_open_is_closed_with_an_fsm_error() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenConfirm, t0);
        let a = f.handle(msg(theirs, Received::Keepalive), t0);
        assert_eq!(closes(&a), vec![(theirs, Some((5, 1)))]);
        assert_eq!(f.state(), State::OpenConfirm);
    }

    #[test]
    fn a_third_connection_replaces_the_candidate() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        let third = f.new_conn_id();
        let a = f.handle(connected(third, false), t0);
        assert_eq!(closes(&a), vec![(theirs, CEASE_7)]);
        assert_eq!(f.candidate_conn(), Some(third));
    }

    #[test]
    fn messages_on_a_closed_connection_are_ignored() {
        let t0 = Instant::now();
        let (mut f, theirs) = with_candidate(State::OpenSent, t0);
        f.handle(msg(theirs, open_from(LOW_ID, 90)), t0);
        assert!(f.handle(msg(theirs, Received::Keepalive), t0).is_empty());
        assert!(f.handle(fails(theirs), t0).is_empty());
        assert_eq!(f.state(), State::OpenSent);
    }

    // ---- Graceful restart (RFC 4724 §4.2, RFC 8538) ----

    fn gr_negotiated(n: bool) -> graceful::GrNegotiated {
        graceful::GrNegotiated {
            notification: n,
            restart_time: 120,
            families: vec![(Family::Ipv4Unicast, true)],
            ..Default::default()
        }
    }

    /// Established on our first connection, with graceful restart negotiated (N bit or not).
    fn gr_established(n: bool, t0: Instant) -> Fsm {
        let mut f = fsm_in(State::OpenSent, t0);
        let negotiated = Negotiated { graceful: Some(gr_negotiated(n)), ..negotiated(90) };
        f.handle(msg(OURS, Received::Open(PeerOpen { negotiated, remote_id: Ipv4Addr::new(192, 0, 2, 2) })), t0);
        f.handle(msg(OURS, Received::Keepalive), t0);
        assert_eq!(f.state(), State::Established);
        f
    }

    #[test]
    fn every_way_out_of_established_is_recorded_for_the_graceful_restart_decision() {
        let t0 = Instant::now();
        let mut f = gr_established(true, t0);
        assert_eq!(f.session_end(), None);
        let a = f.handle(fails(OURS), t0);
        assert!(a.contains(&Action::SessionDown));
        assert_eq!(f.session_end(), Some(&SessionEnd::TcpFailed));
        let mut f = gr_established(true, t0);
        f.handle(Event::HoldTimerExpires, t0);
        assert_eq!(f.session_end(), Some(&SessionEnd::HoldTimerExpired));
        let mut f = gr_established(true, t0);
        let n = Notification::new(ErrorCode::UpdateMessage, 3, vec![]);
        f.handle(msg(OURS, Received::Notification(n.clone())), t0);
        assert_eq!(f.session_end(), Some(&SessionEnd::Received(n.clone())));
        let mut f = gr_established(true, t0);
        f.handle(msg(OURS, Received::Invalid(n.clone())), t0);
        assert_eq!(f.session_end(), Some(&SessionEnd::Sent(n)));
        // A new session starts with a clean slate.
        let mut f = gr_established(true, t0);
        f.handle(fails(OURS), t0);
        let theirs = f.new_conn_id();
        f.handle(connected(theirs, false), t0 + Duration::from_secs(10));
        f.handle(msg(theirs, open_from(Ipv4Addr::new(192, 0, 2, 2), 90)), t0);
        f.handle(msg(theirs, Received::Keepalive), t0);
        assert_eq!((f.state(), f.session_end()), (State::Established, None));
    }

    #[test]
    fn a_new_connection_while_established_is_the_peers_restart_with_graceful_restart_and_refused_without() {
        let t0 = Instant::now();
        let mut f = gr_established(false, t0);
        let theirs = f.new_conn_id();
        let a = f.handle(connected(theirs, false), t0);
        assert_eq!(states(&a), vec![(State::Established, State::Idle), (State::Idle, State::OpenSent)]);
        assert!(a.contains(&Action::SessionDown));
        assert_eq!(closes(&a), vec![(OURS, None)], "the old connection closes without a NOTIFICATION");
        assert_eq!(sends(&a), vec![(theirs, Outgoing::Open)]);
        assert_eq!(f.session_conn(), Some(theirs));
        assert_eq!(f.session_end(), Some(&SessionEnd::PeerRestarted));
        let mut plain = fsm_in(State::Established, t0);
        let theirs = plain.new_conn_id();
        let a = plain.handle(connected(theirs, false), t0);
        assert_eq!(closes(&a), vec![(theirs, CEASE_7)], "RFC 4271 §6.8 without graceful restart");
        assert_eq!(plain.state(), State::Established);
    }

    #[test]
    fn an_operator_reset_goes_out_as_hard_reset_only_when_n_is_negotiated() {
        let t0 = Instant::now();
        let reset = || Event::ManualStop {
            subcode: CeaseSubcode::AdministrativeReset,
            communication: Some("reset".into()),
            restart: true,
        };
        let mut f = gr_established(true, t0);
        let a = f.handle(reset(), t0);
        let n = notification(&a).expect("a NOTIFICATION");
        assert_eq!((n.code, n.subcode), (6, 9), "RFC 8538 §3 Hard Reset");
        assert_eq!(&n.data[..2], &[6, 4], "the Administrative Reset inside");
        assert_eq!(f.session_end(), Some(&SessionEnd::Sent(n.clone())));
        assert!(!graceful::helper_keeps_routes(Some(&gr_negotiated(true)), f.session_end().unwrap()));
        let mut f = gr_established(false, t0);
        let a = f.handle(reset(), t0);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((6, 4)));
    }
}
