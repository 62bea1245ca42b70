//! The listener thread: accepts BGP connections on every `listen_addr` and hands each socket
//! to the thread of the peer it comes from.
//!
//! Fed by: the listening sockets (mio `Poll`, one token each; `Token(0)` is the waker that
//! stops the thread). Emits: `PeerMsg::Incoming` to peer threads. A connection from an address
//! that is no configured peer gets a NOTIFICATION Cease / Connection Rejected (RFC 4486) and
//! is closed.
//!
//! Per-peer options on the shared listening sockets: TCP-MD5 keys, and the GTSM minimum TTL
//! (RFC 5082) when every peer that can reach a socket has one. The accepted socket gets its
//! peer's TTL options from the peer thread.

use crate::msg::{ListenPeer, ListenerMsg, PeerMsg};
use crate::session::sock::{self, ttl};
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

/// Owns the listener thread.
pub struct ListenerHandle {
    tx: crossbeam_channel::Sender<ListenerMsg>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
    pub bound: Vec<SocketAddr>,
}

impl ListenerHandle {
    /// Hand the listener a new set of peers (see `ListenerMsg::SetPeers`).
    pub fn set_peers(&self, peers: HashMap<IpAddr, ListenPeer>) {
        if self.tx.send(ListenerMsg::SetPeers(peers)).is_ok() {
            let _ = self.waker.wake();
        }
    }

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
    let no_peers = HashMap::new();
    for (i, addr) in addrs.iter().enumerate() {
        let v6only =
            addr.is_ipv6() && addrs.iter().any(|a| a.is_ipv4() && a.port() == addr.port() && a.ip().is_unspecified());
        let std_l = sock::listen(*addr, v6only)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let mut l = Listening { socket: TcpListener::from_std(std_l), addr: *addr, v6only, min_ttl: (0, 0) };
        l.apply_keys(&no_peers, &peers)?;
        l.apply_min_ttl(&peers);
        bound.push(l.socket.local_addr()?);
        poll.registry().register(&mut l.socket, Token(i + 1), Interest::READABLE)?;
        listeners.push(l);
    }
    for b in &bound {
        info!("listening on {b}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let (tx, rx) = crossbeam_channel::unbounded();
    let join = std::thread::Builder::new()
        .name("listener".into())
        .spawn(move || run(poll, listeners, peers, rx, thread_stop))?;
    Ok(ListenerHandle { tx, waker, stop, join: Some(join), bound })
}

/// One listening socket and how it was bound.
struct Listening {
    socket: TcpListener,
    addr: SocketAddr,
    v6only: bool,
    /// The minimum TTL on the socket for IPv4 and for IPv6 packets (0: none).
    min_ttl: (u8, u8),
}

impl Listening {
    /// Can a peer at `ip` reach this socket? (A v4 peer reaches a dual-stack `[::]` only.)
    fn reachable_by(&self, ip: &IpAddr) -> bool {
        match (ip, self.addr) {
            (IpAddr::V4(_), SocketAddr::V6(_)) => !self.v6only,
            (IpAddr::V6(_), SocketAddr::V4(_)) => false,
            _ => true,
        }
    }

    /// The GTSM minimum (RFC 5082 §3) for each family this socket carries: only when every
    /// peer of that family that can reach it has one (`ttl::listener_min`), since the kernel
    /// drops every SYN below it. A failure is logged; the accepted sockets still get their
    /// peer's minimum, so no session goes unprotected.
    fn apply_min_ttl(&mut self, peers: &HashMap<IpAddr, ListenPeer>) {
        let min_of = |v4: bool| {
            ttl::listener_min(
                peers.iter().filter(|(ip, _)| ip.is_ipv4() == v4 && self.reachable_by(ip)).map(|(_, p)| p.min_ttl),
            )
            .unwrap_or(0)
        };
        let carries = ttl::Carries::of_listener(self.addr.is_ipv6(), self.v6only);
        let want = (if carries.ipv4 { min_of(true) } else { 0 }, if carries.ipv6 { min_of(false) } else { 0 });
        let fd = self.socket.as_raw_fd();
        for (v4, now, new) in [(true, self.min_ttl.0, want.0), (false, self.min_ttl.1, want.1)] {
            if now == new {
                continue;
            }
            let only = ttl::Carries { ipv4: v4, ipv6: !v4, ..carries };
            match ttl::set_min(fd, only, new) {
                Ok(()) => {
                    info!(
                        "listener: {}: minimum TTL of {} SYNs {new} (GTSM)",
                        self.addr,
                        if v4 { "IPv4" } else { "IPv6" }
                    );
                    if v4 {
                        self.min_ttl.0 = new;
                    } else {
                        self.min_ttl.1 = new;
                    }
                }
                Err(e) => error!(
                    "listener: {}: {e}; each accepted connection is still checked against its neighbor's minimum",
                    self.addr
                ),
            }
        }
    }

    /// Bring the socket's TCP-MD5 keys from `old` to `new`: keys of removed peers and changed
    /// keys are deleted (an empty key deletes on Linux), new keys installed.
    fn apply_keys(&mut self, old: &HashMap<IpAddr, ListenPeer>, new: &HashMap<IpAddr, ListenPeer>) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        let v6 = self.addr.is_ipv6();
        for (ip, p) in old {
            let Some(old_key) = &p.md5_key else { continue };
            let same = new.get(ip).and_then(|n| n.md5_key.as_ref()) == Some(old_key);
            if !same && self.reachable_by(ip) {
                if let Err(e) = sock::md5::set_key_on(fd, *ip, b"", v6) {
                    warn!("listener: cannot remove the TCP-MD5 key of {ip} from {}: {e}", self.addr);
                }
            }
        }
        for (ip, p) in new {
            let Some(key) = &p.md5_key else { continue };
            if old.get(ip).and_then(|o| o.md5_key.as_ref()) == Some(key) || !self.reachable_by(ip) {
                continue;
            }
            sock::md5::set_key_on(fd, *ip, key, v6).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot set the TCP-MD5 key for {ip} on {}: {e}", self.addr))
            })?;
        }
        Ok(())
    }
}

fn run(
    mut poll: Poll,
    mut listeners: Vec<Listening>,
    mut peers: HashMap<IpAddr, ListenPeer>,
    inbox: crossbeam_channel::Receiver<ListenerMsg>,
    stop: Arc<AtomicBool>,
) {
    let mut events = Events::with_capacity(64);
    // The sockets are bound before the peer threads exist (privileges are dropped in between).
    // Until the first set of peers arrives, connections wait in the kernel's backlog: accepted
    // now, a configured peer's connection would be rejected (Cease 5) and its speaker back off.
    let mut known = !peers.is_empty();
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != io::ErrorKind::Interrupted {
                error!("listener: poll failed: {e}");
                return;
            }
            continue;
        }
        let mut first_set = false;
        while let Ok(ListenerMsg::SetPeers(new)) = inbox.try_recv() {
            for l in &mut listeners {
                if let Err(e) = l.apply_keys(&peers, &new) {
                    error!("{e}");
                }
                l.apply_min_ttl(&new);
            }
            peers = new;
            first_set |= !known;
            known = true;
        }
        if first_set {
            // Readiness is edge-triggered: take what waited meanwhile.
            for l in &listeners {
                accept_all(&l.socket, &peers);
            }
            continue;
        }
        if !known {
            continue;
        }
        for ev in events.iter() {
            let Some(l) = ev.token().0.checked_sub(1).and_then(|i| listeners.get(i)) else { continue };
            accept_all(&l.socket, &peers);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::PeerLink;
    use std::time::{Duration, Instant};

    fn peer_link() -> (PeerLink, crossbeam_channel::Receiver<PeerMsg>, Poll) {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let (tx, rx) = crossbeam_channel::bounded(8);
        (PeerLink::new(tx, crossbeam_channel::bounded(1).0, waker), rx, poll)
    }

    /// Does an unsigned connection from `from` get handed to the peer within `within`?
    fn handed_over(from: &str, to: SocketAddr, rx: &crossbeam_channel::Receiver<PeerMsg>, within: Duration) -> bool {
        let _c = sock::connect(to, Some(from.parse().unwrap()), None).unwrap();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(PeerMsg::Incoming(_)) = rx.try_recv() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn removing_a_peers_key_takes_it_off_the_listener() {
        if !sock::md5::SUPPORTED {
            return;
        }
        let (link, rx, _poll) = peer_link();
        let ip: IpAddr = "127.0.0.31".parse().unwrap();
        let with_key =
            HashMap::from([(ip, ListenPeer { link: link.clone(), md5_key: Some(b"k1".to_vec()), min_ttl: None })]);
        let l = start(&["127.0.0.1:0".parse().unwrap()], with_key).unwrap();
        let addr = l.bound[0];
        // The kernel drops unsigned segments from a keyed peer: nothing is accepted.
        assert!(!handed_over("127.0.0.31", addr, &rx, Duration::from_millis(800)));
        let without_key = HashMap::from([(ip, ListenPeer { link, md5_key: None, min_ttl: None })]);
        l.set_peers(without_key);
        assert!(handed_over("127.0.0.31", addr, &rx, Duration::from_secs(5)), "key removed");
        l.stop();
    }

    #[test]
    fn a_listener_takes_the_gtsm_minimum_only_while_every_peer_has_one_and_follows_reloads() {
        if !sock::ttl::MIN_TTL_SUPPORTED {
            return;
        }
        let (link, _rx, _poll) = peer_link();
        let peer = |ip: &str, min_ttl| (ip.parse().unwrap(), ListenPeer { link: link.clone(), md5_key: None, min_ttl });
        let gtsm = HashMap::from([peer("127.0.0.35", Some(254)), peer("127.0.0.36", Some(255))]);
        let l = start(&["127.0.0.1:0".parse().unwrap()], gtsm).unwrap();
        let addr = l.bound[0];
        // Listening sockets are not reachable from here; the kernel's behaviour shows it:
        // a SYN with TTL 253 is dropped, one with 254 gets through.
        let low = sock::ttl::TtlPolicy::new(253, false);
        let fits = sock::ttl::TtlPolicy::new(254, false);
        let tries = |policy, from: &str| {
            let c = sock::connect_with_ttl(addr, Some(from.parse().unwrap()), None, Some(policy)).unwrap();
            let c = mio::net::TcpStream::from_std(c);
            let deadline = Instant::now() + Duration::from_millis(600);
            while Instant::now() < deadline {
                if c.peer_addr().is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        };
        assert!(!tries(low, "127.0.0.35"), "below the most permissive minimum: dropped");
        assert!(tries(fits, "127.0.0.35"), "at the minimum: accepted");
        // A reload adds a peer without GTSM: the listener drops its minimum.
        l.set_peers(HashMap::from([peer("127.0.0.35", Some(254)), peer("127.0.0.37", None)]));
        std::thread::sleep(Duration::from_millis(200));
        assert!(tries(low, "127.0.0.35"), "no minimum on the listener any more");
        l.stop();
    }

    #[test]
    fn unknown_sources_get_cease_connection_rejected() {
        use std::io::Read;
        let (link, _rx, _poll) = peer_link();
        let peers = HashMap::from([("127.0.0.32".parse().unwrap(), ListenPeer { link, md5_key: None, min_ttl: None })]);
        let l = start(&["127.0.0.1:0".parse().unwrap()], peers).unwrap();
        let mut c = sock::connect(l.bound[0], Some("127.0.0.33".parse().unwrap()), None).unwrap();
        c.set_nonblocking(false).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        assert_eq!(buf.get(18..21), Some(&[3u8, 6, 5][..]), "NOTIFICATION Cease / Connection Rejected");
        l.stop();
    }

    #[test]
    fn a_connection_before_the_first_peer_set_waits_and_is_handed_over() {
        let (link, rx, _poll) = peer_link();
        let l = start(&["127.0.0.1:0".parse().unwrap()], HashMap::new()).unwrap();
        // The peer threads do not exist yet: the connection waits in the backlog, no Cease 5.
        let _c = sock::connect(l.bound[0], Some("127.0.0.34".parse().unwrap()), None).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        l.set_peers(HashMap::from([(
            "127.0.0.34".parse().unwrap(),
            ListenPeer { link, md5_key: None, min_ttl: None },
        )]));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = false;
        while !got && Instant::now() < deadline {
            got = matches!(rx.try_recv(), Ok(PeerMsg::Incoming(_)));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(got, "handed to the peer once the peers are known");
        l.stop();
    }
}
