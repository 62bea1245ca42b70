//! TCP sockets the way BGP needs them, built with libc: nonblocking outgoing connections from a
//! chosen source address, listeners for v4 and v6, and TCP-MD5 signatures (RFC 2385).
//!
//! Used by the peer threads (outgoing connections) and the listener thread. All platform code
//! for TCP-MD5 lives in `md5`, so a BSD implementation (setkey/SA based) can be added there.

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
    use std::os::fd::{AsRawFd, IntoRawFd};
    let v6 = remote.is_ipv6();
    let fd = new_socket(v6)?;
    let raw = fd.as_raw_fd();
    set_tos_cs6(raw, v6);
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
/// when `0.0.0.0` on the same port is bound too).
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
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut s, from) = loop {
            match l.accept() {
                Ok(x) => break x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert_eq!(from.ip(), "127.0.0.9".parse::<IpAddr>().unwrap());
        s.set_nonblocking(false).unwrap();
        c.set_nonblocking(false).unwrap();
        c.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
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
