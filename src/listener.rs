//! The listener thread: accepts BGP connections on every `listen_addr` and hands each socket
//! to the thread of the peer it comes from.
//!
//! Fed by: the listening sockets (mio `Poll`, one token each; `Token(0)` is the waker that
//! stops the thread). Emits: `PeerMsg::Incoming` to peer threads. A connection from an address
//! that is no configured peer gets a NOTIFICATION Cease / Connection Rejected (RFC 4486) and
//! is closed.

use crate::peer::{PeerLink, PeerMsg};
use crate::sock;
use crate::wire::notify::{CeaseSubcode, Notification};
use log::{debug, error, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

const WAKER: Token = Token(0);

/// A peer as the listener sees it: where to hand its connections, and its TCP-MD5 key.
#[derive(Clone, Debug)]
pub struct ListenPeer {
    pub link: PeerLink,
    pub md5_key: Option<Vec<u8>>,
}

/// Owns the listener thread.
pub struct ListenerHandle {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
    pub bound: Vec<SocketAddr>,
}

impl ListenerHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Bind every address (before privileges are dropped) and start the accept loop. A `[::]`
/// listener is made v6-only when an IPv4 wildcard on the same port is bound too; otherwise it
/// also takes IPv4 peers, which arrive as v4-mapped addresses.
pub fn start(addrs: &[SocketAddr], peers: HashMap<IpAddr, ListenPeer>) -> io::Result<ListenerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let v6only =
            addr.is_ipv6() && addrs.iter().any(|a| a.is_ipv4() && a.port() == addr.port() && a.ip().is_unspecified());
        let std_l = sock::listen(*addr, v6only)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        for (ip, p) in &peers {
            if let Some(key) = &p.md5_key {
                // A v4 peer can reach a v6 listener only where it is dual-stack.
                if ip.is_ipv4() && addr.is_ipv6() && v6only || ip.is_ipv6() && addr.is_ipv4() {
                    continue;
                }
                sock::md5::set_key_on(std_l.as_raw_fd(), *ip, key, addr.is_ipv6()).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot set the TCP-MD5 key for {ip} on {addr}: {e}"))
                })?;
            }
        }
        let mut l = TcpListener::from_std(std_l);
        bound.push(l.local_addr()?);
        poll.registry().register(&mut l, Token(i + 1), Interest::READABLE)?;
        listeners.push(l);
    }
    for b in &bound {
        info!("listening on {b}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let join =
        std::thread::Builder::new().name("listener".into()).spawn(move || run(poll, listeners, peers, thread_stop))?;
    Ok(ListenerHandle { waker, stop, join: Some(join), bound })
}

fn run(mut poll: Poll, listeners: Vec<TcpListener>, peers: HashMap<IpAddr, ListenPeer>, stop: Arc<AtomicBool>) {
    let mut events = Events::with_capacity(64);
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != io::ErrorKind::Interrupted {
                error!("listener: poll failed: {e}");
                return;
            }
            continue;
        }
        for ev in events.iter() {
            let Some(l) = ev.token().0.checked_sub(1).and_then(|i| listeners.get(i)) else { continue };
            accept_all(l, &peers);
        }
    }
    debug!("listener: stopped");
}

/// Accept until the listener would block (readiness is edge-triggered).
fn accept_all(l: &TcpListener, peers: &HashMap<IpAddr, ListenPeer>) {
    loop {
        match l.accept() {
            Ok((stream, from)) => {
                let ip = sock::canonical_ip(from.ip());
                // Hand over a plain std socket; the peer thread registers it with its own poll.
                let std_stream = into_std(stream);
                match peers.get(&ip) {
                    Some(p) => {
                        debug!("listener: connection from {from} for neighbor {ip}");
                        if !p.link.send(PeerMsg::Incoming(std_stream)) {
                            warn!("listener: neighbor {ip} is busy; connection from {from} dropped");
                        }
                    }
                    None => reject(std_stream, from),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: log and let the next readiness event try again.
                warn!("listener: accept failed: {e}");
                return;
            }
        }
    }
}

fn into_std(s: mio::net::TcpStream) -> std::net::TcpStream {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: the fd comes straight out of an owned mio stream.
    unsafe { std::net::TcpStream::from_raw_fd(s.into_raw_fd()) }
}

/// RFC 4486 Cease / Connection Rejected for an address that is not a configured peer.
fn reject(mut s: std::net::TcpStream, from: SocketAddr) {
    info!("listener: connection from {from} rejected: not a configured neighbor");
    let n = Notification::cease(CeaseSubcode::ConnectionRejected, None);
    let _ = s.write(&n.encode());
    let _ = s.shutdown(Shutdown::Both);
}
