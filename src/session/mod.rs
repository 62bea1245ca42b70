//! The session: one PEER THREAD per configured neighbor, owning its TCP connection(s), the
//! framer, the timers and the RFC 4271 FSM of that peer.
//!
//! Fed by: the listener (`PeerMsg::Incoming`), the RIB (`PeerMsg::Send`, UPDATEs built for this
//! session), the control thread (status, reset, refresh, disable/enable) and the socket.
//! Emits: `RibMsg`s to the RIB thread (session up/down, parsed UPDATEs, route-refresh
//! requests) and `MrtMsg`s to the MRT writer (every received message, every state change).
//!
//! Files: `fsm.rs` (the pure state machine: `(state, event) -> actions`), `driver.rs` (the
//! thread: poll loop, carries out FSM actions, talks to the RIB), `conn.rs` (one connection
//! and its buffers), `sock.rs` (connect, TCP-MD5 and other socket options; also used by the
//! listener for its sockets), `ifaddr.rs` (the RFC 2545 link-local next hop of a session).

mod bmp_tap;
mod conn;
mod driver;
pub mod fsm;
mod graceful;
mod ifaddr;
pub mod sock;

use crate::config::PeerConfig;
use crate::msg::{BmpLink, MonitorLink, MrtLink, PeerId, PeerLink, PeerStop, RibMsg, INBOX_CAPACITY};
use crate::wire::notify::CeaseSubcode;
use crossbeam_channel::Sender;
use mio::{Poll, Waker};
use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Owns a running peer thread.
pub struct PeerHandle {
    pub id: PeerId,
    pub cfg: Arc<PeerConfig>,
    pub link: PeerLink,
    join: Option<JoinHandle<()>>,
}

impl PeerHandle {
    /// For a planned restart of focld: the thread closes a graceful session without a
    /// NOTIFICATION (RFC 4724 §4.1), or stops as `stop` does; then wait for it.
    pub fn stop_for_restart(mut self) {
        if !self.link.send_blocking(crate::msg::PeerMsg::GracefulStop, crate::msg::PEER_SEND_BOUND) {
            self.link.stop(PeerStop(CeaseSubcode::AdministrativeShutdown, None));
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }

    /// Ask the thread to stop (with a Cease on a live session) and wait for it.
    pub fn stop(mut self, sub: CeaseSubcode, communication: Option<String>) {
        self.link.stop(PeerStop(sub, communication));
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for PeerHandle {
    fn drop(&mut self) {
        if let Some(j) = self.join.take() {
            self.link.stop(PeerStop(CeaseSubcode::AdministrativeShutdown, None));
            let _ = j.join();
        }
    }
}

/// What a peer thread needs to know about the speaker as a whole.
#[derive(Clone, Debug)]
pub struct LocalInfo {
    pub router_id: Ipv4Addr,
    /// Where received messages and state changes are archived, when archiving is on.
    pub mrt: Option<MrtLink>,
    /// The live stream (`focl monitor`): UPDATEs, NOTIFICATIONs and state changes.
    pub monitor: Option<MonitorLink>,
    /// focld was started after a planned restart (`focld -R`): the first OPEN to each peer
    /// with `graceful_restart = "on"` sets the R and F bits (RFC 4724 §4.1).
    pub restarted: bool,
    /// The BMP thread (Peer Up/Down always, received messages while a station is configured).
    pub bmp: Option<BmpLink>,
}

/// Start the thread of one configured peer. The RIB hears of the peer (`RibMsg::AddPeer`)
/// before the thread starts, so the session's `SessionUp` never reaches a RIB that does not
/// know the peer yet (on loopback a session is up within a millisecond).
pub fn spawn(id: PeerId, cfg: Arc<PeerConfig>, local: LocalInfo, rib: Sender<RibMsg>) -> io::Result<PeerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), driver::WAKER)?);
    let (tx, rx) = crossbeam_channel::bounded(INBOX_CAPACITY);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    let link = PeerLink::new(tx, stop_tx, waker);
    let _ = rib.send(RibMsg::AddPeer {
        peer: id,
        label: cfg.label(),
        address: cfg.address,
        name: cfg.name.clone(),
        remote_as: cfg.remote_as,
        link: link.clone(),
        max_prefixes: cfg.max_prefixes.map(|m| (m, cfg.max_prefixes_warning_only)),
    });
    let out_queued = link.out_queued_counter();
    start(id, cfg, local, rib, poll, link, driver::Inbox { msgs: rx, stop: stop_rx, out_queued })
}

/// Run the thread on a prepared poll, link and inbox.
fn start(
    id: PeerId,
    cfg: Arc<PeerConfig>,
    local: LocalInfo,
    rib: Sender<RibMsg>,
    poll: Poll,
    link: PeerLink,
    inbox: driver::Inbox,
) -> io::Result<PeerHandle> {
    let thread_cfg = cfg.clone();
    let join = std::thread::Builder::new().name(format!("peer {}", cfg.address)).spawn(move || {
        let mut peer = driver::Peer::new(id, thread_cfg, local, poll, inbox, rib);
        peer.run();
    })?;
    Ok(PeerHandle { id, cfg, link, join: Some(join) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{PeerMsg, PEER_SEND_BOUND};
    use std::time::{Duration, Instant};

    fn passive_peer() -> Arc<PeerConfig> {
        let text = "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\n\n[[peers]]\naddress = \"127.0.0.99\"\nremote_as = 65002\npassive = true\n";
        let mut c = crate::config::parse(text, std::path::Path::new("t.toml")).expect("a valid config");
        Arc::new(c.peers.remove(0))
    }

    /// A link and inbox as `spawn` makes them, with the inbox already full.
    fn full_inbox() -> (Poll, PeerLink, driver::Inbox) {
        let poll = Poll::new().expect("poll");
        let waker = Arc::new(Waker::new(poll.registry(), driver::WAKER).expect("waker"));
        let (tx, rx) = crossbeam_channel::bounded(INBOX_CAPACITY);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let link = PeerLink::new(tx, stop_tx, waker);
        let mut n = 0;
        while link.send(PeerMsg::Summary(crossbeam_channel::bounded(1).0)) {
            n += 1;
            assert!(n <= INBOX_CAPACITY, "bounded");
        }
        assert_eq!(n, INBOX_CAPACITY);
        let out_queued = link.out_queued_counter();
        (poll, link, driver::Inbox { msgs: rx, stop: stop_rx, out_queued })
    }

    #[test]
    fn stop_reaches_a_peer_thread_whose_inbox_is_full_and_join_returns() {
        let (poll, link, inbox) = full_inbox();
        assert!(!link.send(PeerMsg::Summary(crossbeam_channel::bounded(1).0)), "the inbox refuses more");
        assert!(link.stop(PeerStop(CeaseSubcode::AdministrativeShutdown, None)), "the stop slot takes it");
        let (rib, _rib_rx) = crossbeam_channel::bounded(8);
        let local =
            LocalInfo { router_id: Ipv4Addr::new(192, 0, 2, 1), mrt: None, monitor: None, restarted: false, bmp: None };
        let handle = start(1, passive_peer(), local, rib, poll, link, inbox).expect("thread");
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            handle.stop(CeaseSubcode::AdministrativeShutdown, None);
            let _ = done_tx.send(());
        });
        assert!(done_rx.recv_timeout(Duration::from_secs(10)).is_ok(), "join returned");
    }

    #[test]
    fn dropping_a_handle_stops_a_thread_whose_inbox_is_full() {
        let (poll, link, inbox) = full_inbox();
        let (rib, _rib_rx) = crossbeam_channel::bounded(8);
        let local =
            LocalInfo { router_id: Ipv4Addr::new(192, 0, 2, 1), mrt: None, monitor: None, restarted: false, bmp: None };
        let handle = start(1, passive_peer(), local, rib, poll, link, inbox).expect("thread");
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            drop(handle);
            let _ = done_tx.send(());
        });
        assert!(done_rx.recv_timeout(Duration::from_secs(10)).is_ok(), "drop returned");
    }

    #[test]
    fn a_message_that_must_arrive_waits_for_room_in_a_full_inbox() {
        let (_poll, link, inbox) = full_inbox();
        let drainer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let mut got = 0;
            while let Ok(m) = inbox.msgs.recv_timeout(Duration::from_secs(2)) {
                got += 1;
                if matches!(m, PeerMsg::MaxPrefixes { count: 7 }) {
                    return Some(got);
                }
            }
            None
        });
        let t = Instant::now();
        assert!(link.send_blocking(PeerMsg::MaxPrefixes { count: 7 }, PEER_SEND_BOUND), "arrives");
        assert!(t.elapsed() >= Duration::from_millis(150), "it waited for room");
        assert_eq!(drainer.join().ok().flatten(), Some(INBOX_CAPACITY + 1), "after everything queued before it");
    }

    #[test]
    fn a_message_that_must_arrive_gives_up_after_its_bound_on_a_stuck_thread() {
        let (_poll, link, _inbox) = full_inbox();
        let t = Instant::now();
        assert!(!link.send_blocking(PeerMsg::MaxPrefixes { count: 7 }, Duration::from_millis(100)));
        assert!(t.elapsed() < Duration::from_secs(5), "bounded");
    }
}
