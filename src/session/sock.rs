//! TCP sockets the way BGP needs them, built with libc: nonblocking outgoing connections from a
//! chosen source address, listeners for v4 and v6, TCP-MD5 signatures (RFC 2385) and the TTL
//! of a session's packets (eBGP multihop, GTSM of RFC 5082).
//!
//! Used by the peer threads (outgoing connections) and the listener thread. All platform code
//! for TCP-MD5 lives in `md5`, so a BSD implementation (setkey/SA based) can be added there;
//! all code for the TTL lives in `ttl`.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Map an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what an IPv4 peer looks like on a
/// dual-stack `[::]` listener) back to IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

pub fn canonical_addr(sa: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(sa.ip()), sa.port())
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A `sockaddr_storage` holding `addr`, and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is suitably aligned.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is suitably aligned.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn new_socket(v6: bool) -> io::Result<OwnedFd> {
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "openbsd"))]
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "openbsd")))]
    let ty = libc::SOCK_STREAM;
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    // SAFETY: fd is a fresh socket we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "openbsd")))]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on our own fd.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK))?;
            cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
        }
    }
    Ok(fd)
}

fn set_int_opt(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// RFC 4271 has no say in this, but routers mark BGP as network control (DSCP CS6).
fn set_tos_cs6(fd: RawFd, v6: bool) {
    let tos = 0xc0;
    let _ = if v6 {
        set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tos)
    } else {
        set_int_opt(fd, libc::IPPROTO_IP, libc::IP_TOS, tos)
    };
}

/// Start a nonblocking connection to `remote`, from `local` if given, with a TCP-MD5 key if
/// given. The connection completes later (writable readiness, then `take_error`).
pub fn connect(remote: SocketAddr, local: Option<IpAddr>, md5_key: Option<&[u8]>) -> io::Result<std::net::TcpStream> {
    connect_with_ttl(remote, local, md5_key, None)
}

/// `connect`, with the TTL options of a BGP session (`None`: the system's defaults).
pub fn connect_with_ttl(
    remote: SocketAddr,
    local: Option<IpAddr>,
    md5_key: Option<&[u8]>,
    ttl: Option<ttl::TtlPolicy>,
) -> io::Result<std::net::TcpStream> {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let v6 = remote.is_ipv6();
    let fd = new_socket(v6)?;
    let raw = fd.as_raw_fd();
    set_tos_cs6(raw, v6);
    if let Some(ttl) = ttl {
        // RFC 5082 §3: the SYN already leaves with the session's TTL, and a SYN-ACK below the
        // minimum is dropped by the kernel (the attempt then times out).
        ttl::apply(raw, ttl::Carries::of_peer(remote.ip(), v6), ttl)?;
    }
    if let Some(key) = md5_key {
        // RFC 2385: the key must be on the socket before the SYN leaves.
        md5::set_key(raw, remote.ip(), key)?;
    }
    if let Some(ip) = local {
        let (ss, len) = sockaddr(&SocketAddr::new(ip, 0));
        // SAFETY: bind with a valid sockaddr and its length.
        cvt(unsafe { libc::bind(raw, &ss as *const _ as *const libc::sockaddr, len) })
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind source address {ip}: {e}")))?;
    }
    let (ss, len) = sockaddr(&remote);
    // SAFETY: connect with a valid sockaddr and its length.
    let rc = unsafe { libc::connect(raw, &ss as *const _ as *const libc::sockaddr, len) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    // SAFETY: we own the fd and hand it over.
    Ok(unsafe { std::net::TcpStream::from_raw_fd(fd.into_raw_fd()) })
}

/// Bind a nonblocking listener. `v6only` keeps a `[::]` listener from also taking IPv4 (needed
/// when `0.0.0.0` on the same port is bound too). Its SYN-ACKs leave with TTL 255 (GTSM,
/// RFC 5082 §3, for peers that check it; an accepted socket gets its peer's TTL right away).
pub fn listen(addr: SocketAddr, v6only: bool) -> io::Result<std::net::TcpListener> {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let v6 = addr.is_ipv6();
    let fd = new_socket(v6)?;
    let raw = fd.as_raw_fd();
    set_int_opt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if v6 {
        set_int_opt(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, i32::from(v6only))?;
    }
    set_tos_cs6(raw, v6);
    let carries = ttl::Carries::of_listener(v6, v6only);
    ttl::apply(raw, carries, ttl::TtlPolicy { send: ttl::MAX_TTL, min_recv: None })?;
    ttl::save_syns(raw);
    let (ss, len) = sockaddr(&addr);
    // SAFETY: bind with a valid sockaddr and its length.
    cvt(unsafe { libc::bind(raw, &ss as *const _ as *const libc::sockaddr, len) })?;
    // SAFETY: listen on our own bound socket.
    cvt(unsafe { libc::listen(raw, 64) })?;
    // SAFETY: we own the fd and hand it over.
    Ok(unsafe { std::net::TcpListener::from_raw_fd(fd.into_raw_fd()) })
}

/// TCP-MD5 signatures (RFC 2385). Linux: the `TCP_MD5SIG` socket option, one key per peer
/// address, set on the connecting socket and on every listener the peer may reach.
pub mod md5 {
    use super::*;

    /// Longest key the kernel takes (`TCP_MD5SIG_MAXKEYLEN`).
    pub const MAX_KEY_LEN: usize = 80;

    /// Can this platform sign sessions? Config loading refuses passwords where it cannot.
    pub const SUPPORTED: bool = cfg!(any(target_os = "linux", target_os = "android"));

    /// `struct tcp_md5sig` of linux/tcp.h.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[repr(C)]
    struct TcpMd5Sig {
        addr: libc::sockaddr_storage,
        flags: u8,
        prefixlen: u8,
        keylen: u16,
        ifindex: libc::c_int,
        key: [u8; MAX_KEY_LEN],
    }

    /// Install (or, with an empty key, remove) the key for `peer` on socket `fd`. On a v6
    /// socket an IPv4 peer is keyed by its v4-mapped address, which is how it arrives there.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn set_key_on(fd: RawFd, peer: IpAddr, key: &[u8], socket_is_v6: bool) -> io::Result<()> {
        if key.len() > MAX_KEY_LEN {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "TCP-MD5 key longer than 80 bytes"));
        }
        let peer_sa = match (peer, socket_is_v6) {
            (IpAddr::V4(v4), true) => SocketAddr::V6(SocketAddrV6::new(v4.to_ipv6_mapped(), 0, 0, 0)),
            (IpAddr::V4(v4), false) => SocketAddr::V4(SocketAddrV4::new(v4, 0)),
            (IpAddr::V6(v6), _) => SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, 0)),
        };
        let (addr, _) = sockaddr(&peer_sa);
        let mut sig =
            TcpMd5Sig { addr, flags: 0, prefixlen: 0, keylen: key.len() as u16, ifindex: 0, key: [0; MAX_KEY_LEN] };
        sig.key[..key.len()].copy_from_slice(key);
        // SAFETY: setsockopt with a pointer to a live, correctly laid out tcp_md5sig.
        cvt(unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_MD5SIG,
                &sig as *const TcpMd5Sig as *const libc::c_void,
                mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
            )
        })
        .map(|_| ())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn set_key_on(_fd: RawFd, _peer: IpAddr, _key: &[u8], _socket_is_v6: bool) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "TCP-MD5 (RFC 2385) is not supported on this platform by focld"))
    }

    /// Key an outgoing socket of the peer's own family.
    pub fn set_key(fd: RawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
        set_key_on(fd, peer, key, peer.is_ipv6())
    }
}

/// The TTL (IPv4) or hop limit (IPv6) of a session's packets: eBGP multihop, and the
/// Generalized TTL Security Mechanism (GTSM, RFC 5082). Linux: `IP_TTL` / `IPV6_UNICAST_HOPS`
/// and `IP_MINTTL` / `IPV6_MINHOPCOUNT`; an IPv4 peer on a dual-stack `[::]` socket travels
/// as IPv4, so such a socket takes the IPv4 options.
pub mod ttl {
    use super::*;

    /// The largest TTL, which GTSM sends with (RFC 5082 §3).
    pub const MAX_TTL: u8 = 255;

    /// Can this platform drop packets below a minimum TTL? Config loading refuses
    /// `ttl_security` where it cannot.
    pub const MIN_TTL_SUPPORTED: bool = cfg!(any(target_os = "linux", target_os = "android"));

    /// The TTL options of one peer's sockets.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TtlPolicy {
        /// TTL / hop limit of every packet sent.
        pub send: u8,
        /// Packets that arrive with less are dropped by the kernel; `None`: no check.
        pub min_recv: Option<u8>,
    }

    impl TtlPolicy {
        /// `multihop` (1..=255) is how many hops away the peer may be. Without GTSM it is the
        /// TTL we send with, so the peer is reachable and nothing further is. With GTSM
        /// (RFC 5082 §3) we send with 255 and accept only what left the peer with 255 and
        /// crossed at most `multihop` - 1 routers: at least 256 - `multihop`.
        pub fn new(multihop: u8, ttl_security: bool) -> TtlPolicy {
            let multihop = multihop.max(1);
            if ttl_security {
                TtlPolicy { send: MAX_TTL, min_recv: Some((256 - u16::from(multihop)) as u8) }
            } else {
                TtlPolicy { send: multihop, min_recv: None }
            }
        }
    }

    /// The minimum a listening socket may carry for one address family, from the minimums of
    /// every peer of that family it can be reached by (`None` for a peer without GTSM). The
    /// kernel drops every SYN below a listener's minimum, whoever sends it, so the listener
    /// gets one only when every such peer has GTSM on, and then the most permissive of
    /// theirs; the accepted socket gets its own peer's. No peers: no minimum.
    pub fn listener_min<I: IntoIterator<Item = Option<u8>>>(peer_mins: I) -> Option<u8> {
        let mut lowest: Option<u8> = None;
        for min in peer_mins {
            let min = min?;
            lowest = Some(lowest.map_or(min, |l| l.min(min)));
        }
        lowest
    }

    /// Which IP versions a socket's packets travel as.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Carries {
        /// The socket is AF_INET6 (options at the IPv6 level exist on it).
        pub socket_v6: bool,
        pub ipv4: bool,
        pub ipv6: bool,
    }

    impl Carries {
        /// A connected (or connecting) socket to `peer`; an IPv4 peer on an AF_INET6
        /// socket is v4-mapped and its packets are IPv4.
        pub fn of_peer(peer: IpAddr, socket_v6: bool) -> Carries {
            let v4 = canonical_ip(peer).is_ipv4();
            Carries { socket_v6, ipv4: v4, ipv6: !v4 }
        }

        /// A listening socket: a `[::]` one without `IPV6_V6ONLY` takes IPv4 too.
        pub fn of_listener(socket_v6: bool, v6only: bool) -> Carries {
            Carries { socket_v6, ipv4: !socket_v6 || !v6only, ipv6: socket_v6 }
        }
    }

    /// Set the TTL to send with and the minimum (0 clears it) for every IP version the
    /// socket carries. Errors name the option, for a log line that says what is missing.
    pub fn apply(fd: RawFd, carries: Carries, policy: TtlPolicy) -> io::Result<()> {
        let named =
            |what: &'static str| move |e: io::Error| io::Error::new(e.kind(), format!("cannot set {what}: {e}"));
        if carries.ipv4 {
            set_int_opt(fd, libc::IPPROTO_IP, libc::IP_TTL, policy.send.into()).map_err(named("IP_TTL"))?;
        }
        if carries.ipv6 && carries.socket_v6 {
            set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, policy.send.into())
                .map_err(named("IPV6_UNICAST_HOPS"))?;
        }
        set_min(fd, carries, policy.min_recv.unwrap_or(0))
    }

    /// The minimum alone (0 clears it), for a listener whose peers changed.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn set_min(fd: RawFd, carries: Carries, min: u8) -> io::Result<()> {
        let named =
            |what: &'static str| move |e: io::Error| io::Error::new(e.kind(), format!("cannot set {what}: {e}"));
        if carries.ipv4 {
            set_int_opt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, min.into()).map_err(named("IP_MINTTL"))?;
        }
        if carries.ipv6 && carries.socket_v6 {
            set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, min.into())
                .map_err(named("IPV6_MINHOPCOUNT"))?;
        }
        Ok(())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn set_min(_fd: RawFd, _carries: Carries, min: u8) -> io::Result<()> {
        if min == 0 {
            return Ok(());
        }
        Err(io::Error::new(io::ErrorKind::Unsupported, "GTSM (RFC 5082) is not supported on this platform by focld"))
    }

    /// Read an option back (tests and `focl peer show` trust, but verify).
    pub fn get(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt into a live c_int with its size.
        cvt(unsafe {
            libc::getsockopt(fd, level, name, &mut value as *mut libc::c_int as *mut libc::c_void, &mut len)
        })?;
        Ok(value)
    }

    /// Keep each SYN on a listener (Linux `TCP_SAVE_SYN`) so the TTL it arrived with can be
    /// checked on the accepted socket (`syn_ttl`). Best effort: without it, segments that
    /// arrive between the handshake and the accepted socket's minimum are not checked.
    pub fn save_syns(fd: RawFd) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Err(e) = set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_SAVE_SYN, 1) {
            log::warn!("listener: cannot keep SYNs (TCP_SAVE_SYN) for the GTSM check: {e}");
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = fd;
    }

    /// The TTL / hop limit the SYN of an accepted connection arrived with, when the listener
    /// kept it (the saved headers start with the IP header; it is handed out once).
    pub fn syn_ttl(fd: RawFd) -> Option<u8> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut buf = [0u8; 512];
            let mut len = buf.len() as libc::socklen_t;
            // SAFETY: getsockopt into a live buffer with its size.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_SAVED_SYN,
                    buf.as_mut_ptr() as *mut libc::c_void,
                    &mut len,
                )
            };
            if rc < 0 {
                return None;
            }
            ttl_of_ip_header(buf.get(..len as usize)?)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = fd;
            None
        }
    }

    /// TTL (IPv4, byte 8) or hop limit (IPv6, byte 7) of a packet's IP header.
    pub fn ttl_of_ip_header(header: &[u8]) -> Option<u8> {
        match header.first()? >> 4 {
            4 => header.get(8).copied(),
            6 => header.get(7).copied(),
            _ => None,
        }
    }
}

/// Unused-address helpers for tests: the IPv4 wildcard.
pub const V4_ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
/// The IPv6 wildcard.
pub const V6_ANY: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    #[test]
    fn v4_mapped_addresses_become_ipv4() {
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(canonical_ip(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(canonical_ip(v6), v6);
    }

    #[test]
    fn connect_from_a_chosen_loopback_source_reaches_a_listener() {
        let l = listen("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let port = l.local_addr().unwrap().port();
        let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut c = connect(remote, Some("127.0.0.9".parse().unwrap()), None).unwrap();
        let (mut s, from) = accept_one(&l);
        assert_eq!(from.ip(), "127.0.0.9".parse::<IpAddr>().unwrap());
        s.set_nonblocking(false).unwrap();
        c.set_nonblocking(false).unwrap();
        c.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    /// Accept one connection on `l` within five seconds.
    fn accept_one(l: &std::net::TcpListener) -> (std::net::TcpStream, SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match l.accept() {
                Ok(x) => return x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    #[test]
    fn gtsm_sends_255_and_requires_256_minus_multihop() {
        use ttl::TtlPolicy;
        assert_eq!(TtlPolicy::new(1, false), TtlPolicy { send: 1, min_recv: None });
        assert_eq!(TtlPolicy::new(2, false), TtlPolicy { send: 2, min_recv: None });
        assert_eq!(TtlPolicy::new(255, false), TtlPolicy { send: 255, min_recv: None });
        // RFC 5082 §3: directly connected means nothing below 255.
        assert_eq!(TtlPolicy::new(1, true), TtlPolicy { send: 255, min_recv: Some(255) });
        assert_eq!(TtlPolicy::new(2, true), TtlPolicy { send: 255, min_recv: Some(254) });
        assert_eq!(TtlPolicy::new(255, true), TtlPolicy { send: 255, min_recv: Some(1) });
        // 0 never comes from the config; it is taken as 1, never as "no TTL".
        assert_eq!(TtlPolicy::new(0, true), TtlPolicy { send: 255, min_recv: Some(255) });
    }

    #[test]
    fn a_listener_carries_a_minimum_only_when_every_peer_has_one() {
        assert_eq!(ttl::listener_min([]), None, "no peers, no minimum");
        assert_eq!(ttl::listener_min([Some(255)]), Some(255));
        assert_eq!(ttl::listener_min([Some(255), Some(253), Some(254)]), Some(253), "the most permissive");
        assert_eq!(ttl::listener_min([Some(255), None]), None, "one peer without GTSM");
        assert_eq!(ttl::listener_min([None]), None);
    }

    #[test]
    fn an_ipv4_peer_on_a_dual_stack_socket_takes_the_ipv4_options() {
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ttl::Carries::of_peer(mapped, true), ttl::Carries { socket_v6: true, ipv4: true, ipv6: false });
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(ttl::Carries::of_peer(v6, true), ttl::Carries { socket_v6: true, ipv4: false, ipv6: true });
        assert_eq!(ttl::Carries::of_listener(true, false), ttl::Carries { socket_v6: true, ipv4: true, ipv6: true });
        assert_eq!(ttl::Carries::of_listener(true, true), ttl::Carries { socket_v6: true, ipv4: false, ipv6: true });
        assert_eq!(ttl::Carries::of_listener(false, false), ttl::Carries { socket_v6: false, ipv4: true, ipv6: false });
    }

    #[test]
    fn the_ttl_is_read_from_ipv4_and_ipv6_headers() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[8] = 254;
        assert_eq!(ttl::ttl_of_ip_header(&v4), Some(254));
        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[7] = 253;
        assert_eq!(ttl::ttl_of_ip_header(&v6), Some(253));
        assert_eq!(ttl::ttl_of_ip_header(&[0x45, 0, 0]), None, "cut short");
        assert_eq!(ttl::ttl_of_ip_header(&[]), None);
        assert_eq!(ttl::ttl_of_ip_header(&[0x10; 40]), None, "not IP");
    }

    #[test]
    fn ttl_options_are_on_the_connecting_listening_and_accepted_sockets() {
        use std::os::fd::AsRawFd;
        if !ttl::MIN_TTL_SUPPORTED {
            return;
        }
        let get = |fd, level, name| ttl::get(fd, level, name).unwrap();
        let l = listen("127.0.0.1:0".parse().unwrap(), false).unwrap();
        assert_eq!(get(l.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TTL), 255, "SYN-ACKs leave with 255");
        let gtsm = ttl::TtlPolicy::new(2, true);
        let c =
            connect_with_ttl(l.local_addr().unwrap(), Some("127.0.0.10".parse().unwrap()), None, Some(gtsm)).unwrap();
        assert_eq!(get(c.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TTL), 255);
        assert_eq!(get(c.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MINTTL), 254);
        let (s, from) = accept_one(&l);
        // Loopback does not count hops: the SYN arrived with the TTL it was sent with.
        assert_eq!(ttl::syn_ttl(s.as_raw_fd()), Some(255));
        assert_eq!(get(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TTL), 255, "inherited from the listener");
        ttl::apply(s.as_raw_fd(), ttl::Carries::of_peer(from.ip(), false), ttl::TtlPolicy::new(3, false)).unwrap();
        assert_eq!(get(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TTL), 3);
        assert_eq!(get(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MINTTL), 0);
    }

    #[test]
    fn an_ipv4_peer_accepted_on_a_dual_stack_listener_gets_the_ipv4_ttl_options() {
        use std::os::fd::AsRawFd;
        if !ttl::MIN_TTL_SUPPORTED {
            return;
        }
        let Ok(l) = listen("[::]:0".parse().unwrap(), false) else { return }; // no IPv6 here
        let get = |fd, level, name| ttl::get(fd, level, name).unwrap();
        assert_eq!(get(l.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TTL), 255);
        assert_eq!(get(l.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS), 255);
        let port = l.local_addr().unwrap().port();
        let policy = ttl::TtlPolicy::new(1, false);
        let _c = connect_with_ttl(SocketAddr::new("127.0.0.1".parse().unwrap(), port), None, None, Some(policy));
        let (s, from) = accept_one(&l);
        assert!(from.ip().is_ipv6(), "v4-mapped: {from}");
        assert_eq!(ttl::syn_ttl(s.as_raw_fd()), Some(1), "the SYN's IPv4 header");
        let gtsm = ttl::TtlPolicy::new(1, true);
        ttl::apply(s.as_raw_fd(), ttl::Carries::of_peer(from.ip(), true), gtsm).unwrap();
        assert_eq!(get(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TTL), 255);
        assert_eq!(get(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MINTTL), 255);
    }

    #[test]
    fn the_kernel_drops_syns_below_a_listeners_minimum() {
        use std::os::fd::AsRawFd;
        if !ttl::MIN_TTL_SUPPORTED {
            return;
        }
        let l = listen("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let v4 = ttl::Carries::of_listener(false, false);
        ttl::set_min(l.as_raw_fd(), v4, 255).unwrap();
        let to = l.local_addr().unwrap();
        let _low =
            connect_with_ttl(to, Some("127.0.0.11".parse().unwrap()), None, Some(ttl::TtlPolicy::new(254, false)));
        std::thread::sleep(Duration::from_millis(300));
        assert!(matches!(l.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock), "TTL 254 dropped");
        let _ok = connect_with_ttl(to, Some("127.0.0.12".parse().unwrap()), None, Some(ttl::TtlPolicy::new(1, true)));
        let (_, from) = accept_one(&l);
        assert_eq!(from.ip(), "127.0.0.12".parse::<IpAddr>().unwrap(), "TTL 255 accepted");
    }

    #[test]
    fn md5_keys_are_accepted_and_overlong_keys_refused() {
        let l = listen("127.0.0.1:0".parse().unwrap(), false).unwrap();
        use std::os::fd::AsRawFd;
        let peer: IpAddr = "127.0.0.2".parse().unwrap();
        if md5::SUPPORTED {
            md5::set_key(l.as_raw_fd(), peer, b"secret").unwrap();
            md5::set_key(l.as_raw_fd(), peer, b"").unwrap();
        }
        assert!(md5::set_key(l.as_raw_fd(), peer, &[b'x'; 81]).is_err());
    }
}
