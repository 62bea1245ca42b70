//! The BGP finite state machine of RFC 4271 §8, as a pure function.
//!
//! Fed by the peer thread (`peer.rs`), which turns socket readiness, decoded messages and its
//! clock into `Event`s; emits `Action`s that the peer thread carries out (connect, send, close,
//! tell the RIB). No sockets and no clocks in here: `now` is passed in, timers are deadlines,
//! and `next_deadline()` tells the driver how long it may sleep. That makes every transition
//! testable without sleeping.

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
    /// Event 16/17 (Tcp_CR_Acked, TcpConnectionConfirmed): a connection is up; `outgoing` says
    /// which side opened it.
    TcpConnected { outgoing: bool },
    /// Event 18 (TcpConnectionFails): connect failed, or the connection closed or broke.
    TcpConnectionFails { reason: String },
    /// Event 19 (BGPOpen): a valid OPEN, already checked by `wire::validate_open`.
    BgpOpen { negotiated: Negotiated, remote_id: Ipv4Addr },
    /// Event 21/22/28 (BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr): a received message was bad;
    /// the NOTIFICATION to send.
    MessageError(Notification),
    /// Event 24/25 (NotifMsgVerErr, NotifMsg): the peer sent a NOTIFICATION.
    NotifMsg(Notification),
    /// Event 26 (KeepAliveMsg)
    KeepAliveMsg,
    /// Event 27 (UpdateMsg)
    UpdateMsg,
    /// ROUTE-REFRESH received (RFC 2918; treated like event 27 for the timers).
    RouteRefreshMsg,
    /// An OPEN arrived in a state that does not expect one (event 19 outside OpenSent).
    UnexpectedOpen,
    /// RFC 4271 §6.8: the peer's second connection won the collision; it replaced the current
    /// one after the OPENs were exchanged on it. Only meaningful in OpenSent and OpenConfirm.
    CollisionSwitch { negotiated: Negotiated, remote_id: Ipv4Addr },
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Open an outgoing TCP connection (abandoning any attempt in progress).
    Connect,
    /// Send our OPEN on the current connection.
    SendOpen,
    SendKeepalive,
    SendNotification(Notification),
    /// Close the current connection and any outgoing attempt.
    CloseConnection,
    /// The session reached Established: tell the RIB, send the Adj-RIB-Out.
    SessionUp,
    /// The session left Established: tell the RIB to drop the peer's routes.
    SessionDown,
    /// Log `state change A -> B, reason: …` and write the MRT state-change record.
    StateChange {
        from: State,
        to: State,
        reason: String,
    },
}

/// Per-peer settings the FSM needs.
#[derive(Clone, Debug, PartialEq)]
pub struct FsmConfig {
    pub passive: bool,
    pub connect_retry: Duration,
}

/// Timer deadlines (RFC 4271 §10); `None` is a stopped timer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timers {
    pub connect_retry: Option<Instant>,
    pub hold: Option<Instant>,
    pub keepalive: Option<Instant>,
    pub idle_hold: Option<Instant>,
}

/// The state machine of one peer.
#[derive(Clone, Debug)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    timers: Timers,
    /// Whether the peer is started at all (false after a ManualStop without restart).
    enabled: bool,
    /// Negotiated parameters of the current session (from OpenSent on).
    negotiated: Option<Negotiated>,
    remote_id: Option<Ipv4Addr>,
    /// Current IdleHold back-off (doubles for a flapping peer).
    idle_hold: Duration,
    established_at: Option<Instant>,
    state_since: Instant,
    /// Times the session left Established.
    flaps: u64,
}

impl Fsm {
    pub fn new(cfg: FsmConfig, now: Instant) -> Fsm {
        Fsm {
            cfg,
            state: State::Idle,
            timers: Timers::default(),
            enabled: false,
            negotiated: None,
            remote_id: None,
            idle_hold: IDLE_HOLD_INITIAL,
            established_at: None,
            state_since: now,
            flaps: 0,
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

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Does the state take a new incoming connection as the session's? Connect and Active
    /// do; so does Idle while the peer is enabled and only waiting out its IdleHold: the
    /// back-off damps our own connects, and refusing the peer's too would let two speakers
    /// that back off out of phase miss each other for minutes (RFC 4271 §8.1.1, events 3/5
    /// "with passive TCP establishment"). A disabled peer refuses. OpenSent and OpenConfirm
    /// need collision detection (§6.8); Established refuses the new one (§6.8).
    pub fn accepts_incoming(&self) -> bool {
        match self.state {
            State::Connect | State::Active => true,
            State::Idle => self.enabled,
            _ => false,
        }
    }

    /// The nearest timer deadline, for the driver's poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        let t = &self.timers;
        [t.connect_retry, t.hold, t.keepalive, t.idle_hold].into_iter().flatten().min()
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
        events
    }

    /// Data from the peer is waiting that we have not processed yet (our own backpressure):
    /// the peer is alive, so the HoldTimer restarts.
    pub fn peer_alive(&mut self, now: Instant) {
        if self.state == State::Established {
            self.restart_hold_timer(now);
        }
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
        match self.state {
            State::Idle => self.in_idle(event, now, &mut out),
            State::Connect | State::Active => self.in_connect_or_active(event, now, &mut out),
            State::OpenSent => self.in_open_sent(event, now, &mut out),
            State::OpenConfirm => self.in_open_confirm(event, now, &mut out),
            State::Established => self.in_established(event, now, &mut out),
        }
        out
    }

    fn in_idle(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart => {
                self.enabled = true;
                self.idle_hold = IDLE_HOLD_INITIAL;
                self.start(now, "start", out);
            }
            Event::AutomaticStart if self.enabled => self.start(now, "idle hold expired", out),
            Event::TcpConnected { outgoing: false } if self.enabled => {
                // The peer connected during our IdleHold: take it (passive automatic start).
                self.timers = Timers::default();
                self.timers.hold = Some(now + LARGE_HOLD_TIME);
                out.push(Action::SendOpen);
                self.change_state(State::OpenSent, "connection accepted during idle hold", now, out);
            }
            Event::ManualStop { restart, .. } => {
                // Nothing to close; just (re)arm or disarm.
                self.enabled = restart;
                self.timers = Timers::default();
                if restart {
                    self.timers.idle_hold = Some(now + RESET_IDLE_HOLD);
                }
            }
            // RFC 4271 §8.2.2 Idle: "any other event ... is ignored". A connection that reaches
            // us here is closed by the driver (accepts_incoming() is false).
            _ => {}
        }
    }

    /// Leave Idle: active peers connect, passive ones wait in Active.
    fn start(&mut self, now: Instant, reason: &str, out: &mut Vec<Action>) {
        self.timers = Timers::default();
        if self.cfg.passive {
            self.change_state(State::Active, reason, now, out);
        } else {
            self.timers.connect_retry = Some(now + self.cfg.connect_retry);
            self.change_state(State::Connect, reason, now, out);
            out.push(Action::Connect);
        }
    }

    fn in_connect_or_active(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        match event {
            Event::ConnectRetryTimerExpires => {
                // §8.2.2 Connect: drop the attempt, restart the timer, try again.
                self.timers.connect_retry = Some(now + self.cfg.connect_retry);
                if self.state == State::Active {
                    self.change_state(State::Connect, "connect retry timer expired", now, out);
                }
                out.push(Action::Connect);
            }
            Event::TcpConnected { outgoing } => {
                self.timers.connect_retry = None;
                self.timers.hold = Some(now + LARGE_HOLD_TIME);
                out.push(Action::SendOpen);
                let reason = if outgoing { "connection established" } else { "connection accepted" };
                self.change_state(State::OpenSent, reason, now, out);
            }
            Event::TcpConnectionFails { reason } => {
                // §8.2.2 Connect: restart the ConnectRetryTimer and wait in Active.
                out.push(Action::CloseConnection);
                if !self.cfg.passive && self.timers.connect_retry.is_none() {
                    self.timers.connect_retry = Some(now + self.cfg.connect_retry);
                }
                if self.state == State::Connect {
                    self.change_state(State::Active, &reason, now, out);
                }
            }
            Event::ManualStop { subcode, restart, .. } => {
                out.push(Action::CloseConnection);
                self.go_idle(now, stop_reason(subcode), restart.then_some(RESET_IDLE_HOLD), out);
                self.enabled = restart;
            }
            Event::ManualStart | Event::AutomaticStart => {}
            // Timers that are not running here, or messages without a connection: ignore.
            Event::HoldTimerExpires | Event::KeepaliveTimerExpires => {}
            other => {
                // Messages cannot arrive without a connection; anything else is an FSM error.
                out.push(Action::CloseConnection);
                let hold = self.bump_idle_hold();
                self.go_idle(now, &format!("unexpected event {}", event_name(&other)), hold, out);
            }
        }
    }

    fn in_open_sent(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        match event {
            Event::BgpOpen { negotiated, remote_id } => {
                // §8.2.2 OpenSent, event 19: KEEPALIVE, then the negotiated timers.
                out.push(Action::SendKeepalive);
                self.remote_id = Some(remote_id);
                self.set_session_timers(&negotiated, now);
                self.negotiated = Some(negotiated);
                self.change_state(State::OpenConfirm, "OPEN received", now, out);
            }
            Event::TcpConnectionFails { reason } => {
                // §8.2.2 OpenSent, event 18: back to Active, ConnectRetryTimer restarted.
                out.push(Action::CloseConnection);
                self.timers.hold = None;
                if !self.cfg.passive {
                    self.timers.connect_retry = Some(now + self.cfg.connect_retry);
                }
                self.change_state(State::Active, &reason, now, out);
            }
            other => self.common_open_states(other, FsmSubcode::UnexpectedMessageInOpenSent, now, out),
        }
    }

    fn in_open_confirm(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        match event {
            Event::KeepAliveMsg => {
                self.restart_hold_timer(now);
                self.established_at = Some(now);
                self.change_state(State::Established, "KEEPALIVE received", now, out);
                out.push(Action::SessionUp);
            }
            Event::KeepaliveTimerExpires => {
                out.push(Action::SendKeepalive);
                self.restart_keepalive_timer(now);
            }
            Event::TcpConnectionFails { reason } => {
                out.push(Action::CloseConnection);
                let hold = self.bump_idle_hold();
                self.go_idle(now, &reason, hold, out);
            }
            other => self.common_open_states(other, FsmSubcode::UnexpectedMessageInOpenConfirm, now, out),
        }
    }

    /// The arms OpenSent and OpenConfirm share (RFC 4271 §8.2.2).
    fn common_open_states(&mut self, event: Event, fsm_sub: FsmSubcode, now: Instant, out: &mut Vec<Action>) {
        match event {
            Event::CollisionSwitch { negotiated, remote_id } => {
                // The surviving connection has seen both OPENs: confirm it like event 19.
                out.push(Action::SendKeepalive);
                self.remote_id = Some(remote_id);
                self.timers.connect_retry = None;
                self.set_session_timers(&negotiated, now);
                self.negotiated = Some(negotiated);
                self.change_state(State::OpenConfirm, "connection collision: kept the peer's connection", now, out);
            }
            Event::ManualStop { subcode, communication, restart } => {
                self.stop_with_cease(subcode, communication.as_deref(), now, out);
                self.enabled = restart;
                if restart {
                    self.timers.idle_hold = Some(now + RESET_IDLE_HOLD);
                }
            }
            Event::HoldTimerExpires => {
                out.push(Action::SendNotification(Notification::new(ErrorCode::HoldTimerExpired, 0, vec![])));
                out.push(Action::CloseConnection);
                let hold = self.bump_idle_hold();
                self.go_idle(now, "hold timer expired", hold, out);
            }
            Event::MessageError(n) => {
                let reason = format!("sent NOTIFICATION {n}");
                out.push(Action::SendNotification(n));
                out.push(Action::CloseConnection);
                let hold = self.bump_idle_hold();
                self.go_idle(now, &reason, hold, out);
            }
            Event::NotifMsg(n) => {
                out.push(Action::CloseConnection);
                let hold = self.bump_idle_hold();
                self.go_idle(now, &format!("received NOTIFICATION {n}"), hold, out);
            }
            Event::ManualStart | Event::AutomaticStart | Event::ConnectRetryTimerExpires => {}
            Event::KeepaliveTimerExpires => {}
            other => self.fsm_error(fsm_sub, &other, now, out),
        }
    }

    fn in_established(&mut self, event: Event, now: Instant, out: &mut Vec<Action>) {
        match event {
            Event::KeepAliveMsg | Event::UpdateMsg | Event::RouteRefreshMsg => {
                self.restart_hold_timer(now);
            }
            Event::KeepaliveTimerExpires => {
                out.push(Action::SendKeepalive);
                self.restart_keepalive_timer(now);
            }
            Event::HoldTimerExpires => {
                out.push(Action::SendNotification(Notification::new(ErrorCode::HoldTimerExpired, 0, vec![])));
                out.push(Action::CloseConnection);
                self.session_lost(now, "hold timer expired", out);
            }
            Event::MessageError(n) => {
                let reason = format!("sent NOTIFICATION {n}");
                out.push(Action::SendNotification(n));
                out.push(Action::CloseConnection);
                self.session_lost(now, &reason, out);
            }
            Event::NotifMsg(n) => {
                out.push(Action::CloseConnection);
                self.session_lost(now, &format!("received NOTIFICATION {n}"), out);
            }
            Event::TcpConnectionFails { reason } => {
                out.push(Action::CloseConnection);
                self.session_lost(now, &reason, out);
            }
            Event::ManualStop { subcode, communication, restart } => {
                out.push(Action::SessionDown);
                self.flaps += 1;
                self.stop_with_cease(subcode, communication.as_deref(), now, out);
                self.enabled = restart;
                if restart {
                    self.timers.idle_hold = Some(now + RESET_IDLE_HOLD);
                }
            }
            Event::ManualStart | Event::AutomaticStart | Event::ConnectRetryTimerExpires => {}
            other => self.fsm_error(FsmSubcode::UnexpectedMessageInEstablished, &other, now, out),
        }
    }

    /// Established -> Idle through a failure: tell the RIB, count the flap, back off.
    fn session_lost(&mut self, now: Instant, reason: &str, out: &mut Vec<Action>) {
        out.push(Action::SessionDown);
        self.flaps += 1;
        let stable = self.established_at.is_some_and(|t| now.duration_since(t) >= STABLE_SESSION);
        if stable {
            self.idle_hold = IDLE_HOLD_INITIAL;
        }
        let hold = self.bump_idle_hold();
        self.go_idle(now, reason, hold, out);
    }

    /// RFC 4271 §8.2.2 / RFC 6608: an event the state does not expect.
    fn fsm_error(&mut self, sub: FsmSubcode, event: &Event, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendNotification(Notification::new(ErrorCode::FsmError, sub as u8, vec![])));
        out.push(Action::CloseConnection);
        let reason = format!("FSM error: unexpected {} in {}", event_name(event), self.state);
        if self.state == State::Established {
            self.session_lost(now, &reason, out);
        } else {
            let hold = self.bump_idle_hold();
            self.go_idle(now, &reason, hold, out);
        }
    }

    fn stop_with_cease(&mut self, sub: CeaseSubcode, text: Option<&str>, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendNotification(Notification::cease(sub, text)));
        out.push(Action::CloseConnection);
        self.go_idle(now, stop_reason(sub), None, out);
    }

    /// Current back-off, then double it for next time (capped).
    fn bump_idle_hold(&mut self) -> Option<Duration> {
        let hold = self.idle_hold;
        self.idle_hold = (self.idle_hold * 2).min(IDLE_HOLD_MAX);
        Some(hold)
    }

    /// Any state -> Idle: all timers stop; IdleHold arms the automatic restart.
    fn go_idle(&mut self, now: Instant, reason: &str, idle_hold: Option<Duration>, out: &mut Vec<Action>) {
        self.timers = Timers::default();
        if let Some(d) = idle_hold {
            if self.enabled {
                self.timers.idle_hold = Some(now + d);
            }
        }
        self.change_state(State::Idle, reason, now, out);
    }

    /// The one door for every transition: bookkeeping that must happen on each change.
    fn change_state(&mut self, to: State, reason: &str, now: Instant, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        if to == State::Idle || to == State::Active || to == State::Connect {
            self.negotiated = None;
            self.established_at = None;
        }
        self.state = to;
        self.state_since = now;
        out.push(Action::StateChange { from, to, reason: reason.to_string() });
    }

    fn set_session_timers(&mut self, n: &Negotiated, now: Instant) {
        // RFC 4271 §4.2: a hold time of zero means no Hold and no Keepalive timer.
        if n.hold_time == 0 {
            self.timers.hold = None;
            self.timers.keepalive = None;
        } else {
            self.timers.hold = Some(now + Duration::from_secs(n.hold_time.into()));
            self.timers.keepalive = Some(now + keepalive_interval(n));
        }
    }

    fn restart_hold_timer(&mut self, now: Instant) {
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

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::ManualStart => "ManualStart",
        Event::ManualStop { .. } => "ManualStop",
        Event::AutomaticStart => "AutomaticStart",
        Event::ConnectRetryTimerExpires => "ConnectRetryTimer_Expires",
        Event::HoldTimerExpires => "HoldTimer_Expires",
        Event::KeepaliveTimerExpires => "KeepaliveTimer_Expires",
        Event::TcpConnected { .. } => "TcpConnectionConfirmed",
        Event::TcpConnectionFails { .. } => "TcpConnectionFails",
        Event::BgpOpen { .. } => "OPEN",
        Event::MessageError(_) => "message error",
        Event::NotifMsg(_) => "NOTIFICATION",
        Event::KeepAliveMsg => "KEEPALIVE",
        Event::UpdateMsg => "UPDATE",
        Event::RouteRefreshMsg => "ROUTE-REFRESH",
        Event::UnexpectedOpen => "OPEN",
        Event::CollisionSwitch { .. } => "connection collision",
    }
}

/// RFC 4271 §6.8 connection collision: which connection survives. `existing_outgoing` says
/// whether the connection we already have is the one we opened. Returns true when the
/// existing connection is kept (and the new, incoming one closed with Cease / Connection
/// Collision Resolution).
pub fn keep_existing_on_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr, existing_outgoing: bool) -> bool {
    // "If the value of the local BGP Identifier is less than the remote one, close the
    // connection that was initiated by the local system" (compared as unsigned integers).
    let local_wins = u32::from(local_id) > u32::from(remote_id);
    if existing_outgoing {
        local_wins
    } else {
        // Both connections came from the peer: keep the established one.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefix::Family;

    fn cfg(passive: bool) -> FsmConfig {
        FsmConfig { passive, connect_retry: Duration::from_secs(5) }
    }

    fn negotiated(hold: u16) -> Negotiated {
        Negotiated {
            hold_time: hold,
            keepalive: hold / 3,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            four_octet_as: true,
            route_refresh: true,
            extended_message: false,
        }
    }

    fn open_event(hold: u16) -> Event {
        Event::BgpOpen { negotiated: negotiated(hold), remote_id: Ipv4Addr::new(192, 0, 2, 2) }
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
            Action::SendNotification(n) => Some(n),
            _ => None,
        })
    }

    /// Drive an active FSM to the given state.
    fn fsm_in(state: State, t0: Instant) -> Fsm {
        let mut f = Fsm::new(cfg(false), t0);
        f.handle(Event::ManualStart, t0);
        if state == State::Connect {
            return f;
        }
        if state == State::Active {
            f.handle(Event::TcpConnectionFails { reason: "refused".into() }, t0);
            return f;
        }
        f.handle(Event::TcpConnected { outgoing: true }, t0);
        if state == State::OpenSent {
            return f;
        }
        f.handle(open_event(90), t0);
        if state == State::OpenConfirm {
            return f;
        }
        f.handle(Event::KeepAliveMsg, t0);
        assert_eq!(f.state(), State::Established);
        f
    }

    #[test]
    fn idle_ignores_everything_but_start() {
        let t0 = Instant::now();
        let mut f = Fsm::new(cfg(false), t0);
        assert!(f.handle(Event::KeepAliveMsg, t0).is_empty());
        assert!(f.handle(Event::AutomaticStart, t0).is_empty(), "not enabled yet");
        assert!(!f.accepts_incoming());
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn manual_start_on_active_peer_connects_with_retry_timer() {
        let t0 = Instant::now();
        let mut f = Fsm::new(cfg(false), t0);
        let a = f.handle(Event::ManualStart, t0);
        assert_eq!(states(&a), vec![(State::Idle, State::Connect)]);
        assert!(a.contains(&Action::Connect));
        assert_eq!(f.timers().connect_retry, Some(t0 + Duration::from_secs(5)));
        assert!(f.accepts_incoming());
    }

    #[test]
    fn manual_start_on_passive_peer_waits_in_active_without_connecting() {
        let t0 = Instant::now();
        let mut f = Fsm::new(cfg(true), t0);
        let a = f.handle(Event::ManualStart, t0);
        assert_eq!(states(&a), vec![(State::Idle, State::Active)]);
        assert!(!a.contains(&Action::Connect));
        assert_eq!(f.next_deadline(), None);
        // ConnectRetry never fires for a passive peer, it only accepts.
        let a = f.handle(Event::TcpConnected { outgoing: false }, t0);
        assert_eq!(states(&a), vec![(State::Active, State::OpenSent)]);
        assert!(a.contains(&Action::SendOpen));
    }

    #[test]
    fn connect_retry_timer_expiry_in_connect_tries_again() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Connect, t0);
        let t1 = t0 + Duration::from_secs(5);
        let ev = f.expired_timers(t1);
        assert_eq!(ev, vec![Event::ConnectRetryTimerExpires]);
        let a = f.handle(Event::ConnectRetryTimerExpires, t1);
        assert_eq!(a, vec![Action::Connect]);
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
        assert!(a.contains(&Action::Connect));
    }

    #[test]
    fn incoming_connection_in_active_sends_open() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Active, t0);
        let a = f.handle(Event::TcpConnected { outgoing: false }, t0);
        assert_eq!(a[0], Action::SendOpen);
        assert_eq!(f.state(), State::OpenSent);
        assert_eq!(f.timers().hold, Some(t0 + LARGE_HOLD_TIME));
        assert_eq!(f.timers().connect_retry, None);
    }

    #[test]
    fn open_in_open_sent_sends_keepalive_and_sets_negotiated_timers() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let a = f.handle(open_event(90), t0);
        assert_eq!(a[0], Action::SendKeepalive);
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
        f.handle(Event::KeepAliveMsg, t0);
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
        let a = f.handle(Event::KeepAliveMsg, t0);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((5, 1)));
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn bad_open_sends_its_notification_and_goes_idle() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let n = Notification::new(ErrorCode::OpenMessage, 2, vec![]);
        let a = f.handle(Event::MessageError(n.clone()), t0);
        assert_eq!(notification(&a), Some(&n));
        assert!(a.contains(&Action::CloseConnection));
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn connection_lost_in_open_sent_goes_to_active() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let a = f.handle(Event::TcpConnectionFails { reason: "eof".into() }, t0);
        assert_eq!(states(&a), vec![(State::OpenSent, State::Active)]);
        assert!(f.timers().connect_retry.is_some());
    }

    #[test]
    fn keepalive_in_open_confirm_establishes_the_session() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenConfirm, t0);
        let t1 = t0 + Duration::from_secs(1);
        let a = f.handle(Event::KeepAliveMsg, t1);
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
        assert_eq!(f.handle(Event::KeepaliveTimerExpires, t1), vec![Action::SendKeepalive]);
        assert_eq!(f.timers().keepalive, Some(t1 + Duration::from_secs(30)));
    }

    #[test]
    fn update_in_open_confirm_is_an_fsm_error() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenConfirm, t0);
        let a = f.handle(Event::UpdateMsg, t0);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((5, 2)));
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn notification_in_open_confirm_goes_idle_without_answering() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenConfirm, t0);
        let n = Notification::new(ErrorCode::Cease, 2, vec![]);
        let a = f.handle(Event::NotifMsg(n), t0);
        assert!(notification(&a).is_none());
        assert_eq!(f.state(), State::Idle);
    }

    #[test]
    fn messages_in_established_restart_the_hold_timer() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let t1 = t0 + Duration::from_secs(60);
        assert!(f.handle(Event::UpdateMsg, t1).is_empty());
        assert_eq!(f.timers().hold, Some(t1 + Duration::from_secs(90)));
        let t2 = t1 + Duration::from_secs(60);
        f.handle(Event::RouteRefreshMsg, t2);
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
    fn incoming_connection_during_idle_hold_is_taken() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        f.handle(Event::TcpConnectionFails { reason: "eof".into() }, t0);
        assert_eq!(f.state(), State::Idle);
        assert!(f.accepts_incoming(), "the back-off only damps our own connects");
        let a = f.handle(Event::TcpConnected { outgoing: false }, t0);
        assert_eq!(a[0], Action::SendOpen);
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
        assert!(!f.accepts_incoming());
        assert!(f.handle(Event::TcpConnected { outgoing: false }, t0).is_empty());
    }

    #[test]
    fn open_in_established_is_an_fsm_error() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let a = f.handle(Event::UnexpectedOpen, t0);
        assert_eq!(notification(&a).map(|n| (n.code, n.subcode)), Some((5, 3)));
        assert!(a.contains(&Action::SessionDown));
    }

    #[test]
    fn update_error_in_established_sends_it_and_drops_session() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::Established, t0);
        let n = Notification::new(ErrorCode::UpdateMessage, 1, vec![]);
        let a = f.handle(Event::MessageError(n.clone()), t0);
        assert_eq!(notification(&a), Some(&n));
        assert_eq!(a.last().map(|a| matches!(a, Action::StateChange { to: State::Idle, .. })), Some(true));
    }

    #[test]
    fn idle_hold_doubles_for_a_flapping_peer_and_resets_after_a_stable_session() {
        let mut t = Instant::now();
        let mut f = fsm_in(State::Established, t);
        let mut holds = Vec::new();
        for _ in 0..7 {
            f.handle(Event::TcpConnectionFails { reason: "eof".into() }, t);
            let d = f.timers().idle_hold.map(|d| d.duration_since(t));
            holds.push(d.map(|d| d.as_secs()));
            t += d.unwrap_or_default();
            assert_eq!(f.expired_timers(t), vec![Event::AutomaticStart]);
            f.handle(Event::AutomaticStart, t);
            f.handle(Event::TcpConnected { outgoing: true }, t);
            f.handle(open_event(90), t);
            f.handle(Event::KeepAliveMsg, t);
        }
        assert_eq!(holds, [5, 10, 20, 40, 80, 120, 120].map(Some).to_vec());
        // Stable for long enough: back to the initial back-off.
        t += STABLE_SESSION;
        f.handle(Event::TcpConnectionFails { reason: "eof".into() }, t);
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
    fn collision_switch_in_open_sent_confirms_the_surviving_connection() {
        let t0 = Instant::now();
        let mut f = fsm_in(State::OpenSent, t0);
        let ev = Event::CollisionSwitch { negotiated: negotiated(30), remote_id: Ipv4Addr::new(192, 0, 2, 9) };
        let a = f.handle(ev, t0);
        assert_eq!(a[0], Action::SendKeepalive);
        assert_eq!(states(&a), vec![(State::OpenSent, State::OpenConfirm)]);
        assert_eq!(f.timers().hold, Some(t0 + Duration::from_secs(30)));
        assert_eq!(f.remote_id(), Some(Ipv4Addr::new(192, 0, 2, 9)));
        // In OpenConfirm it replaces the old connection's parameters without a state change.
        let ev = Event::CollisionSwitch { negotiated: negotiated(60), remote_id: Ipv4Addr::new(192, 0, 2, 9) };
        let a = f.handle(ev, t0);
        assert_eq!(a, vec![Action::SendKeepalive]);
        assert_eq!(f.negotiated().map(|n| n.hold_time), Some(60));
    }

    #[test]
    fn collision_keeps_the_connection_of_the_higher_router_id() {
        let low = Ipv4Addr::new(192, 0, 2, 1);
        let high = Ipv4Addr::new(192, 0, 2, 200);
        // We opened the existing one and have the higher id: keep ours.
        assert!(keep_existing_on_collision(high, low, true));
        // We opened it but the peer's id is higher: the peer's connection wins.
        assert!(!keep_existing_on_collision(low, high, true));
        // Compared as unsigned integers, not as signed or as text.
        assert!(keep_existing_on_collision(Ipv4Addr::new(200, 0, 0, 1), Ipv4Addr::new(9, 0, 0, 1), true));
    }
}
