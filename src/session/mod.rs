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
//! listener for its sockets).

mod conn;
mod driver;
pub mod fsm;
pub mod sock;

use crate::config::PeerConfig;
use crate::msg::{MrtLink, PeerId, PeerLink, PeerStop, RibMsg, INBOX_CAPACITY};
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
}

/// Start the thread of one configured peer.
pub fn spawn(id: PeerId, cfg: Arc<PeerConfig>, local: LocalInfo, rib: Sender<RibMsg>) -> io::Result<PeerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), driver::WAKER)?);
    let (tx, rx) = crossbeam_channel::bounded(INBOX_CAPACITY);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    let link = PeerLink::new(tx, stop_tx, waker);
    let thread_cfg = cfg.clone();
    let join = std::thread::Builder::new().name(format!("peer {}", cfg.address)).spawn(move || {
        let mut peer = driver::Peer::new(id, thread_cfg, local, poll, driver::Inbox { msgs: rx, stop: stop_rx }, rib);
        peer.run();
    })?;
    Ok(PeerHandle { id, cfg, link, join: Some(join) })
}
