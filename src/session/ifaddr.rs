//! The link-local next hop of RFC 2545 §3: on an IPv6 session with a neighbor on a directly
//! connected subnet, our IPv6 announcements carry the link-local address of the interface
//! the session runs over beside the global one (a 32-byte MP_REACH_NLRI next hop), so routers
//! that resolve next hops on the link (FRR, vendor boxes) can use it.
//!
//! Used by the peer thread when a session comes up. The interface addresses come from
//! getifaddrs(3); the choice is the pure `pick_link_local`.

use std::net::Ipv6Addr;

/// One IPv6 address of an interface: (interface name, address, prefix length).
pub type IfAddr6 = (String, Ipv6Addr, u8);

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn same_subnet(a: &Ipv6Addr, b: &Ipv6Addr, len: u8) -> bool {
    let len = u32::from(len.min(128));
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - len);
    u128::from(*a) & mask == u128::from(*b) & mask
}

/// RFC 2545 §3: "the link-local address shall be included in the Next Hop field if and only if
/// the BGP speaker shares a common subnet with the entity identified by the global IPv6
/// address carried in the Network Address of Next Hop field and the peer the route is being
/// advertised to". Our global next hop is `local`, the session's address: the link-local
/// address of the interface that holds `local`, when `peer` is on one of that interface's
/// subnets.
pub fn pick_link_local(addrs: &[IfAddr6], local: Ipv6Addr, peer: Ipv6Addr) -> Option<Ipv6Addr> {
    if is_link_local(&local) {
        return None; // no global address to pair it with
    }
    let (iface, _, _) = addrs.iter().find(|(_, a, _)| *a == local)?;
    let on_link = addrs.iter().any(|(i, a, len)| i == iface && !is_link_local(a) && same_subnet(a, &peer, *len));
    if !on_link {
        return None;
    }
    addrs.iter().find(|(i, a, _)| i == iface && is_link_local(a)).map(|(_, a, _)| *a)
}

/// Every IPv6 address of every interface, from getifaddrs(3); empty if it fails.
pub fn ipv6_addresses() -> Vec<IfAddr6> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr of at least its family's size.
        if i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET6 {
            continue;
        }
        // SAFETY: an AF_INET6 address is a sockaddr_in6; the netmask, when set, too.
        let addr = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
        let len = if ifa.ifa_netmask.is_null() {
            128
        } else {
            // SAFETY: as above.
            let m = unsafe { &*(ifa.ifa_netmask as *const libc::sockaddr_in6) };
            u128::from_be_bytes(m.sin6_addr.s6_addr).count_ones() as u8
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        out.push((name, Ipv6Addr::from(addr.sin6_addr.s6_addr), len));
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn addrs() -> Vec<IfAddr6> {
        vec![
            ("lo".into(), a("::1"), 128),
            ("veth0".into(), a("2001:db8:1::1"), 64),
            ("veth0".into(), a("fe80::1c:2dff:fe3e:4f5a"), 64),
            ("veth1".into(), a("2001:db8:2::1"), 64),
        ]
    }

    #[test]
    fn a_neighbor_on_the_link_gets_the_interfaces_link_local_address() {
        assert_eq!(
            pick_link_local(&addrs(), a("2001:db8:1::1"), a("2001:db8:1::2")),
            Some(a("fe80::1c:2dff:fe3e:4f5a"))
        );
    }

    #[test]
    fn a_neighbor_elsewhere_or_an_interface_without_link_local_gets_none() {
        assert_eq!(pick_link_local(&addrs(), a("2001:db8:1::1"), a("2001:db8:9::2")), None, "not on the link");
        assert_eq!(pick_link_local(&addrs(), a("2001:db8:2::1"), a("2001:db8:2::2")), None, "veth1 has no fe80");
        assert_eq!(pick_link_local(&addrs(), a("::1"), a("::1")), None, "loopback has none");
        assert_eq!(pick_link_local(&addrs(), a("2001:db8:7::1"), a("2001:db8:7::2")), None, "not our address");
        assert_eq!(pick_link_local(&addrs(), a("fe80::1c:2dff:fe3e:4f5a"), a("fe80::2")), None, "no global to pair");
    }

    #[test]
    fn getifaddrs_lists_the_loopback_address() {
        let all = ipv6_addresses();
        // Where IPv6 is on at all, ::1 is on the loopback interface.
        if !all.is_empty() {
            assert!(all.iter().any(|(_, a, len)| *a == Ipv6Addr::LOCALHOST && *len == 128), "{all:?}");
        }
    }
}
