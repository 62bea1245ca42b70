//! The peer thread's side of BMP: keeps the OPENs of each connection exactly as exchanged,
//! and hands the BMP thread the session's Peer Up, every message received on it, and its Peer
//! Down with the reason (RFC 7854 §4.9). Never blocks (`BmpLink::event`).
//!
//! Fed by: the driver (OPEN sent/received per connection, FSM events, closes, session up/down,
//! received messages). Emits: `BmpMsg` to the BMP thread.

use crate::msg::{BmpDownReason, BmpLink, BmpMsg, BmpSession, ConnId, PeerId};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// What ended the session, as far as the peer thread saw (RFC 7854 §4.9 reasons 1-4).
#[derive(Clone, Debug, Default)]
enum Cause {
    /// No more is known: the local FSM closed without a NOTIFICATION.
    #[default]
    LocalFsm,
    /// The peer closed the TCP connection (or it failed).
    RemoteNoData,
    /// The peer's NOTIFICATION, as received.
    RemoteNotification(Vec<u8>),
}

/// RFC 4271 §4.1 message type of an UPDATE.
const UPDATE: u8 = 2;

pub(super) struct BmpTap {
    link: BmpLink,
    peer: PeerId,
    /// Per connection: the OPEN we sent and the one we received.
    opens: HashMap<ConnId, (Option<Bytes>, Option<Bytes>)>,
    /// The connection of the session the BMP thread has a Peer Up for.
    up_on: Option<ConnId>,
    /// The session left Established; the Peer Down waits for the close that says why.
    down_pending: bool,
    cause: Cause,
    /// UPDATEs received on the session so far; the RIB counts the UPDATEs it applies the
    /// same way (`RibMsg::BmpDump`).
    seq: u64,
    /// UPDATEs taken from the RIB (`PeerMsg::Send`) so far, written or not; the RIB's link
    /// counts the same (`PeerLink::updates_queued`).
    out_seq: u64,
    /// RFC 7606 treat-as-withdraw counts of the session (UPDATEs, prefixes), shared with the
    /// BMP thread.
    treated: Arc<[AtomicU64; 2]>,
}

impl BmpTap {
    pub(super) fn new(link: BmpLink, peer: PeerId) -> BmpTap {
        BmpTap {
            link,
            peer,
            opens: HashMap::new(),
            up_on: None,
            down_pending: false,
            cause: Cause::default(),
            seq: 0,
            out_seq: 0,
            treated: Arc::default(),
        }
    }

    pub(super) fn open_sent(&mut self, conn: ConnId, raw: &[u8]) {
        self.opens.entry(conn).or_default().0 = Some(Bytes::copy_from_slice(raw));
    }

    pub(super) fn open_received(&mut self, conn: ConnId, raw: &Bytes) {
        self.opens.entry(conn).or_default().1 = Some(raw.clone());
    }

    /// Before an FSM event is handled: remember what it says about the peer ending the session.
    pub(super) fn peer_closed(&mut self) {
        self.cause = Cause::RemoteNoData;
    }

    pub(super) fn notification_received(&mut self, conn: ConnId, raw: &[u8]) {
        if self.up_on == Some(conn) {
            self.cause = Cause::RemoteNotification(raw.to_vec());
        }
    }

    /// A message received on `conn`; only the Established session's go to BMP, and only while
    /// a station is configured.
    pub(super) fn received(&mut self, conn: ConnId, raw: &Bytes) {
        if self.up_on != Some(conn) || self.down_pending {
            return;
        }
        // Counted whether or not a station listens: the RIB counts every one.
        if raw.get(18) == Some(&UPDATE) {
            self.seq += 1;
        }
        if self.link.active() {
            self.link.event(BmpMsg::Received {
                ts: SystemTime::now(),
                peer: self.peer,
                raw: raw.clone(),
                seq: self.seq,
            });
        }
    }

    /// UPDATEs from the RIB, about to be written on `conn` (None: for a session that is
    /// gone, not written). Each is counted; those of the Established session go to BMP as
    /// what focld sent the peer (RFC 8671), while a station is configured.
    pub(super) fn sent(&mut self, conn: Option<ConnId>, msgs: &[Vec<u8>]) {
        let to_bmp = conn.is_some() && self.up_on == conn && !self.down_pending && self.link.active();
        for m in msgs.iter().filter(|m| m.get(18) == Some(&UPDATE)) {
            self.out_seq += 1;
            if to_bmp {
                let raw = Bytes::copy_from_slice(m);
                self.link.event(BmpMsg::Sent { ts: SystemTime::now(), peer: self.peer, raw, seq: self.out_seq });
            }
        }
    }

    /// The session is Established on `conn`. Sent whether or not a station is configured, so a
    /// station added later is told of it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn session_up(
        &mut self,
        conn: ConnId,
        cfg: &crate::config::PeerConfig,
        local: SocketAddr,
        remote: SocketAddr,
        remote_id: std::net::Ipv4Addr,
        four_octet_as: bool,
    ) {
        let (sent, received) = self.opens.get(&conn).cloned().unwrap_or_default();
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; BMP wants them as IPv4.
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        let (local, remote) = (canonical(local), canonical(remote));
        let (Some(sent_open), Some(received_open)) = (sent, received) else { return };
        self.up_on = Some(conn);
        self.down_pending = false;
        self.seq = 0;
        self.treated = Arc::default();
        self.cause = Cause::default();
        let session = BmpSession {
            peer: self.peer,
            peer_address: cfg.address,
            peer_name: cfg.name.clone(),
            local,
            remote,
            remote_as: cfg.remote_as,
            remote_id,
            four_octet_as,
            sent_open,
            received_open,
            treated_as_withdraw: self.treated.clone(),
        };
        self.link.event(BmpMsg::PeerUp { ts: SystemTime::now(), session: Arc::new(session) });
    }

    /// RFC 7606 §2: an UPDATE of the session was treated as a withdrawal of its `prefixes`.
    pub(super) fn treated_as_withdraw(&self, prefixes: usize) {
        self.treated[0].fetch_add(1, Ordering::Relaxed);
        self.treated[1].fetch_add(prefixes as u64, Ordering::Relaxed);
    }

    pub(super) fn session_down(&mut self) {
        if self.up_on.is_some() {
            self.down_pending = true;
        }
    }

    /// A connection closes, with the NOTIFICATION we send on it, if any.
    pub(super) fn closing(&mut self, conn: ConnId, notification: Option<&[u8]>) {
        if self.down_pending && self.up_on == Some(conn) {
            let reason = match notification {
                Some(n) => BmpDownReason::LocalNotification(n.to_vec()),
                None => self.reason_from_cause(),
            };
            self.send_down(reason);
        }
        self.opens.remove(&conn);
    }

    /// After a batch of FSM actions: a Peer Down no close explained goes out now.
    pub(super) fn settle(&mut self) {
        if self.down_pending {
            let reason = self.reason_from_cause();
            self.send_down(reason);
        }
    }

    fn reason_from_cause(&self) -> BmpDownReason {
        match &self.cause {
            Cause::RemoteNotification(n) => BmpDownReason::RemoteNotification(n.clone()),
            Cause::RemoteNoData => BmpDownReason::RemoteNoData,
            // RFC 7854 §4.9: two zero octets when no FSM event code applies.
            Cause::LocalFsm => BmpDownReason::LocalFsmEvent(0),
        }
    }

    fn send_down(&mut self, reason: BmpDownReason) {
        self.down_pending = false;
        self.up_on = None;
        self.cause = Cause::default();
        self.link.event(BmpMsg::PeerDown { ts: SystemTime::now(), peer: self.peer, reason });
    }
}
