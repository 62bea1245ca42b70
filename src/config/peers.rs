//! `[[peers]]`: one entry per BGP neighbour, checked one by one and then against each other
//! (no two peers share an address or a name).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::global::GlobalRead;
use super::model::{
    AddPathMode, PeerConfig, BGP_PORT, DEFAULT_CONNECT_RETRY_SECS, DEFAULT_EBGP_MULTIHOP, DEFAULT_HOLD_TIME_SECS,
    DEFAULT_IBGP_MULTIHOP, MAX_PASSWORD_BYTES, MIN_HOLD_TIME_SECS,
};
use super::reader::{family_word, Field, Reader, Table};
use crate::prefix::Family;
use crate::wire::role::Role;

/// A peer as read, with the lines the cross-peer checks point at.
pub(super) struct PeerRead {
    pub(super) config: PeerConfig,
    pub(super) address_line: usize,
    pub(super) name_line: Option<usize>,
}

pub(super) fn read_peer(cx: &mut Reader, t: &mut Table<'_, '_>, global: &GlobalRead) -> Option<PeerRead> {
    // An invalid optional value is recorded as an error and replaced by its default, so the
    // peer still takes part in the duplicate checks; the Config is never returned anyway.
    let name = t.get(cx, "name").and_then(|f| read_peer_name(cx, &f).map(|n| (n, f.line)));
    let address_field = t.required(cx, "address");
    let address = address_field.as_ref().and_then(|f| cx.unicast_addr(f, "peer address"));
    let remote_as = t.required(cx, "remote_as").and_then(|f| cx.asn(&f));
    let local_as = t.get(cx, "local_as").and_then(|f| cx.asn(&f));
    let remote_port = t.get(cx, "remote_port").and_then(|f| cx.int_in(&f, 1, u16::MAX, "port", ""));
    let hold_time_secs = t.get(cx, "hold_time_secs").and_then(|f| read_hold_time(cx, &f));
    let connect_retry_secs =
        t.get(cx, "connect_retry_secs").and_then(|f| cx.int_in(&f, 1, u16::MAX, "connect retry interval", " seconds"));
    let passive = t.get(cx, "passive").and_then(|f| cx.bool(&f));
    let password_field = t.get(cx, "password");
    let route_refresh = t.get(cx, "route_refresh").and_then(|f| cx.bool(&f));
    let enhanced_route_refresh = t.get(cx, "enhanced_route_refresh").and_then(|f| cx.bool(&f));
    let extended_messages = t.get(cx, "extended_messages").and_then(|f| cx.bool(&f));
    let role_field = t.get(cx, "role");
    let role = role_field.as_ref().and_then(|f| read_role(cx, f));
    let strict_field = t.get(cx, "strict_role");
    let strict_role = strict_field.as_ref().and_then(|f| cx.bool(f)).unwrap_or(false);
    if let (Some(f), None) = (&strict_field, &role_field) {
        cx.at(f, "strict_role only applies with role; set role too");
    }
    let add_path = t.get(cx, "add_path").and_then(|f| read_add_path(cx, &f));
    let max_paths_per_prefix =
        t.get(cx, "max_paths_per_prefix").and_then(|f| cx.int_in(&f, 1u16, 1024, "max_paths_per_prefix", " paths"));
    let local_address_field = t.get(cx, "local_address");
    let max_prefixes = t.get(cx, "max_prefixes").and_then(|f| cx.int_in(&f, 1u32, u32::MAX, "max_prefixes", ""));
    let restart = t.get(cx, "max_prefixes_restart_secs");
    let max_prefixes_restart_secs =
        restart.as_ref().and_then(|f| cx.int_in(f, 1u32, 86_400 * 7, "max_prefixes_restart_secs", " seconds"));
    let warning = t.get(cx, "max_prefixes_warning_only");
    let max_prefixes_warning_only = warning.as_ref().and_then(|f| cx.bool(f)).unwrap_or(false);
    if max_prefixes.is_none() {
        for f in [&restart, &warning].into_iter().flatten() {
            cx.at(f, "this only applies with max_prefixes; set it too");
        }
    }
    let send_hold_time_secs = t
        .get(cx, "send_hold_time_secs")
        .and_then(|f| {
            let v = cx.int_in(&f, 0u32, 86_400, "send_hold_time_secs", " seconds")?;
            if v != 0 && v < 3 {
                cx.at(&f, format!("send_hold_time_secs must be 0 (automatic) or at least 3 seconds, got {v}"));
                return None;
            }
            Some(v)
        })
        .unwrap_or(0);
    let multihop = t.get(cx, "multihop").and_then(|f| cx.int_in(&f, 1u8, u8::MAX, "multihop", " hops"));
    let ttl_security = t.get(cx, "ttl_security").and_then(|f| read_ttl_security(cx, &f));
    let graceful = super::graceful::read_graceful(cx, t);

    // Messages about the key and the source address name the peer, so they need its address.
    let label = match (&address, &name) {
        (Some(a), Some((n, _))) => format!("{a} ({n})"),
        (Some(a), None) => a.to_string(),
        (None, _) => t.path.clone(),
    };
    let password = password_field.and_then(|f| read_password(cx, &f, &label));
    let local_address = match local_address_field {
        Some(f) => cx.unicast_addr(&f, "local_address").inspect(|local| {
            if let Some(peer) = address {
                if Family::of_addr(local) != Family::of_addr(&peer) {
                    let message = format!(
                        "local_address {local} is {} but peer {label} is {}; \
                         a session runs over one family",
                        family_word(local),
                        family_word(&peer)
                    );
                    cx.at(&f, message);
                }
            }
        }),
        None => address.and_then(|a| default_local_address(&a, &global.listen_addr)),
    };

    let remote_as = remote_as.unwrap_or(0);
    let local_as = local_as.or(global.asn).unwrap_or(0);
    let default_multihop = if remote_as == local_as { DEFAULT_IBGP_MULTIHOP } else { DEFAULT_EBGP_MULTIHOP };
    let config = PeerConfig {
        name: name.as_ref().map(|(n, _)| n.clone()),
        address: address?,
        remote_as,
        local_as,
        remote_port: remote_port.unwrap_or(BGP_PORT),
        hold_time_secs: hold_time_secs.unwrap_or(DEFAULT_HOLD_TIME_SECS),
        connect_retry_secs: connect_retry_secs.unwrap_or(DEFAULT_CONNECT_RETRY_SECS),
        passive: passive.unwrap_or(false),
        password,
        route_refresh: route_refresh.unwrap_or(true),
        enhanced_route_refresh: enhanced_route_refresh.unwrap_or(true),
        extended_messages: extended_messages.unwrap_or(true),
        role,
        strict_role,
        add_path: add_path.unwrap_or(AddPathMode::Off),
        max_paths_per_prefix: max_paths_per_prefix.unwrap_or(8),
        local_address,
        max_prefixes,
        max_prefixes_restart_secs,
        max_prefixes_warning_only,
        send_hold_time_secs,
        multihop: multihop.unwrap_or(default_multihop),
        ttl_security: ttl_security.unwrap_or(false),
        graceful,
        import: Vec::new(),
        export: Vec::new(),
        route_server: false,
    };
    if let (Some(f), true) = (&role_field, config.role.is_some() && config.is_ibgp()) {
        // RFC 9234 §4: roles are for eBGP sessions.
        cx.at(f, format!("peer {label} is iBGP (remote_as is the local AS); BGP Role (RFC 9234) is for eBGP sessions"));
    }
    Some(PeerRead { config, address_line: address_field.map_or(0, |f| f.line), name_line: name.map(|(_, line)| line) })
}

/// `add_path`: "receive" or "off" (RFC 7911; focld never sends several paths).
fn read_add_path(cx: &mut Reader, f: &Field<'_, '_>) -> Option<AddPathMode> {
    match cx.str(f)? {
        "receive" => Some(AddPathMode::Receive),
        "off" => Some(AddPathMode::Off),
        other => {
            cx.at(
                f,
                format!("unknown add_path mode '{other}'; expected \"receive\" or \"off\" (RFC 7911 receive only)"),
            );
            None
        }
    }
}

/// `role`: one of the RFC 9234 roles, as BIRD and FRR spell them.
fn read_role(cx: &mut Reader, f: &Field<'_, '_>) -> Option<Role> {
    let s = cx.str(f)?;
    let role = Role::from_name(s);
    if role.is_none() {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
        cx.at(f, format!("unknown BGP role '{s}'; expected one of {} (RFC 9234)", known.join(", ")));
    }
    role
}

/// A peer name: not empty, and not an address, which `focl peer show` would take as one.
pub(super) fn read_peer_name(cx: &mut Reader, f: &Field<'_, '_>) -> Option<String> {
    let name = cx.str(f)?;
    if name.trim().is_empty() {
        cx.at(f, "peer name must not be empty; remove the key to leave the peer unnamed");
        return None;
    }
    if name.parse::<IpAddr>().is_ok() {
        cx.at(
            f,
            format!(
                "peer name '{name}' is an IP address; focl takes a name or an address, \
                 so a name must not look like one"
            ),
        );
        return None;
    }
    Some(name.to_string())
}

/// Hold time: 0 turns keepalives off, otherwise at least 3 seconds (RFC 4271 §4.2).
pub(super) fn read_hold_time(cx: &mut Reader, f: &Field<'_, '_>) -> Option<u16> {
    let secs = cx.int_in(f, 0, u16::MAX, "hold time", " seconds")?;
    if secs != 0 && secs < MIN_HOLD_TIME_SECS {
        cx.at(
            f,
            format!(
                "hold time must be 0 or at least {MIN_HOLD_TIME_SECS} seconds \
                 (RFC 4271 §4.2), got {secs}"
            ),
        );
        return None;
    }
    Some(secs)
}

/// TCP-MD5 key (RFC 2385): 1 to `TCP_MD5SIG_MAXKEYLEN` bytes.
pub(super) fn read_password(cx: &mut Reader, f: &Field<'_, '_>, label: &str) -> Option<String> {
    let password = cx.str(f)?;
    if password.is_empty() {
        cx.at(
            f,
            format!(
                "TCP-MD5 password of peer {label} is empty; set 1 to {MAX_PASSWORD_BYTES} \
                 bytes, or remove the key to run without TCP-MD5"
            ),
        );
        return None;
    }
    if password.len() > MAX_PASSWORD_BYTES {
        cx.at(
            f,
            format!(
                "TCP-MD5 password of peer {label} is {} bytes; the kernel takes at most \
                 {MAX_PASSWORD_BYTES} (TCP_MD5SIG_MAXKEYLEN, RFC 2385)",
                password.len()
            ),
        );
        return None;
    }
    Some(password.to_string())
}

/// GTSM (RFC 5082) needs the kernel to drop packets below a minimum TTL (`IP_MINTTL`).
pub(super) fn read_ttl_security(cx: &mut Reader, f: &Field<'_, '_>) -> Option<bool> {
    let on = cx.bool(f)?;
    if on && !crate::session::sock::ttl::MIN_TTL_SUPPORTED {
        cx.at(
            f,
            format!(
                "ttl_security (GTSM, RFC 5082) needs IP_MINTTL, which focld does not support on {}; \
                 remove the key or run focld on Linux",
                std::env::consts::OS
            ),
        );
        return None;
    }
    Some(on)
}

/// Source address when none is configured: the first listen address of the peer's family that
/// names one address (not 0.0.0.0 or ::); otherwise the kernel chooses.
pub(super) fn default_local_address(peer: &IpAddr, listen: &[SocketAddr]) -> Option<IpAddr> {
    listen.iter().map(|a| a.ip()).find(|ip| Family::of_addr(ip) == Family::of_addr(peer) && !ip.is_unspecified())
}

/// Two peers with one address (or one name) could not be told apart on accept or by focl.
pub(super) fn check_peers_unique(cx: &mut Reader, peers: &[(usize, PeerRead)]) {
    let mut addresses: HashMap<IpAddr, (usize, usize)> = HashMap::new();
    let mut names: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, peer) in peers {
        let address = peer.config.address;
        if let Some((j, line)) = addresses.get(&address) {
            cx.error(
                Some(peer.address_line),
                &format!("peers[{i}].address"),
                format!("peer address {address} is already used by peers[{j}] (line {line})"),
            );
        } else {
            addresses.insert(address, (*i, peer.address_line));
        }
        if let (Some(name), Some(name_line)) = (&peer.config.name, peer.name_line) {
            if let Some((j, line)) = names.get(name.as_str()) {
                cx.error(
                    Some(name_line),
                    &format!("peers[{i}].name"),
                    format!("peer name '{name}' is already used by peers[{j}] (line {line})"),
                );
            } else {
                names.insert(name, (*i, name_line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::wire::role::Role;

    #[test]
    fn every_peer_key_can_be_set() {
        let c = ok(&with_peer_keys(
            r#"name = "core"
local_as = 65002
remote_port = 1179
hold_time_secs = 30
connect_retry_secs = 10
passive = true
password = "s3cret"
route_refresh = false
local_address = "192.0.2.9""#,
        ));
        let p = &c.peers[0];
        assert_eq!(p.name.as_deref(), Some("core"));
        assert_eq!(p.label(), "192.0.2.2 (core)");
        assert!(p.is_ibgp());
        assert_eq!((p.remote_port, p.hold_time_secs, p.connect_retry_secs), (1179, 30, 10));
        assert!(p.passive && !p.route_refresh);
        assert_eq!(p.password.as_deref(), Some("s3cret"));
        assert_eq!(p.local_address, Some("192.0.2.9".parse().unwrap()));
    }

    #[test]
    fn capability_keys_default_on_and_role_is_off() {
        let p = &ok(&with_peer_keys("")).peers[0];
        assert!(p.extended_messages && p.enhanced_route_refresh);
        assert_eq!((p.role, p.strict_role), (None, false));
        let c = ok(&with_peer_keys(
            "role = \"rs-client\"\nstrict_role = true\nextended_messages = false\nenhanced_route_refresh = false",
        ));
        let p = &c.peers[0];
        assert_eq!((p.role, p.strict_role), (Some(Role::RsClient), true));
        assert!(!p.extended_messages && !p.enhanced_route_refresh);
    }

    #[test]
    fn a_bad_role_names_the_roles_and_needs_ebgp() {
        let e = errors(&with_peer_keys("role = \"upstream\""));
        assert_eq!(
            e,
            ["focl.toml:8: peers[0].role: unknown BGP role 'upstream'; expected one of provider, rs, \
              rs-client, customer, peer (RFC 9234)"]
        );
        let e = errors(&with_peer_keys("strict_role = true"));
        assert_eq!(e, ["focl.toml:8: peers[0].strict_role: strict_role only applies with role; set role too"]);
        let e = errors(&with_peer_keys("local_as = 65002\nrole = \"peer\""));
        assert_eq!(
            e,
            ["focl.toml:9: peers[0].role: peer 192.0.2.2 is iBGP (remote_as is the local AS); BGP Role \
              (RFC 9234) is for eBGP sessions"]
        );
    }

    #[test]
    fn hold_time_must_be_zero_or_at_least_three() {
        for secs in [1, 2] {
            assert_eq!(
                errors(&with_peer_keys(&format!("hold_time_secs = {secs}"))),
                vec![format!(
                    "focl.toml:8: peers[0].hold_time_secs: hold time must be 0 or at least 3 \
                     seconds (RFC 4271 §4.2), got {secs}"
                )]
            );
        }
        for secs in [0, 3, 65535] {
            let c = ok(&with_peer_keys(&format!("hold_time_secs = {secs}")));
            assert_eq!(c.peers[0].hold_time_secs, secs);
        }
        assert_eq!(
            errors(&with_peer_keys("hold_time_secs = 70000")),
            vec![
                "focl.toml:8: peers[0].hold_time_secs: hold time must be from 0 to 65535 \
                 seconds, got 70000"
            ]
        );
    }

    #[test]
    fn multihop_defaults_to_one_for_ebgp_and_255_for_ibgp() {
        let c = ok(MINIMAL);
        assert_eq!((c.peers[0].multihop, c.peers[0].ttl_security), (1, false));
        let c = ok(&MINIMAL.replace("remote_as = 65002", "remote_as = 65001"));
        assert_eq!(c.peers[0].multihop, 255);
        let c = ok(&with_peer_keys("multihop = 2\nttl_security = true"));
        assert_eq!((c.peers[0].multihop, c.peers[0].ttl_security), (2, true));
    }

    #[test]
    fn multihop_must_be_from_1_to_255_and_ttl_security_a_boolean() {
        for bad in ["0", "256", "-1"] {
            assert_eq!(
                errors(&with_peer_keys(&format!("multihop = {bad}"))),
                vec![format!("focl.toml:8: peers[0].multihop: multihop must be from 1 to 255 hops, got {bad}")]
            );
        }
        assert_eq!(
            errors(&with_peer_keys("multihop = 2\nttl_security = \"yes\"")),
            vec!["focl.toml:9: peers[0].ttl_security: expected a boolean (true or false), got a string"]
        );
    }

    const TWO_PEERS: &str = r#"[global]
asn = 65001
router_id = "192.0.2.1"

[[peers]]
name = "a"
address = "192.0.2.2"
remote_as = 65002

[[peers]]
name = "b"
address = "192.0.2.3"
remote_as = 65003
"#;

    #[test]
    fn duplicate_peer_address_and_name() {
        assert_eq!(
            errors(&TWO_PEERS.replace("192.0.2.3", "192.0.2.2")),
            vec![
                "focl.toml:12: peers[1].address: peer address 192.0.2.2 is already used by \
                 peers[0] (line 7)"
            ]
        );
        assert_eq!(
            errors(&TWO_PEERS.replace("name = \"b\"", "name = \"a\"")),
            vec!["focl.toml:11: peers[1].name: peer name 'a' is already used by peers[0] (line 6)"]
        );
    }

    #[test]
    fn peer_name_and_address_rules() {
        assert_eq!(
            errors(&TWO_PEERS.replace("name = \"b\"", "name = \"192.0.2.9\"")),
            vec![
                "focl.toml:11: peers[1].name: peer name '192.0.2.9' is an IP address; focl \
                 takes a name or an address, so a name must not look like one"
            ]
        );
        assert_eq!(
            errors(&TWO_PEERS.replace("address = \"192.0.2.3\"", "address = \"::ffff:192.0.2.3\"")),
            vec![
                "focl.toml:12: peers[1].address: ::ffff:192.0.2.3 is an IPv4-mapped IPv6 \
                 address; write the IPv4 form, 192.0.2.3"
            ]
        );
        assert_eq!(
            errors(&TWO_PEERS.replace("192.0.2.3", "192.0.2.300")),
            vec!["focl.toml:12: peers[1].address: '192.0.2.300' is not an IP address"]
        );
        assert_eq!(
            errors(&TWO_PEERS.replace("192.0.2.3", "0.0.0.0")),
            vec![
                "focl.toml:12: peers[1].address: peer address must be a unicast address, got \
                 0.0.0.0"
            ]
        );
    }

    #[test]
    fn password_length() {
        let p = "x".repeat(81);
        assert_eq!(
            errors(&with_peer_keys(&format!("password = \"{p}\""))),
            vec![
                "focl.toml:8: peers[0].password: TCP-MD5 password of peer 192.0.2.2 is 81 \
                 bytes; the kernel takes at most 80 (TCP_MD5SIG_MAXKEYLEN, RFC 2385)"
            ]
        );
        assert_eq!(
            errors(&with_peer_keys("password = \"\"\nname = \"up\"")),
            vec![
                "focl.toml:8: peers[0].password: TCP-MD5 password of peer 192.0.2.2 (up) is \
                 empty; set 1 to 80 bytes, or remove the key to run without TCP-MD5"
            ]
        );
        let p = "x".repeat(80);
        let c = ok(&with_peer_keys(&format!("password = \"{p}\"")));
        assert_eq!(c.peers[0].password.as_deref().map(str::len), Some(80));
    }

    /// Two peers (v4, v6) under a `listen_addr` line.
    fn dual_stack(listen_addr: &str) -> String {
        format!(
            "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = {listen_addr}\n\n\
             [[peers]]\naddress = \"192.0.2.2\"\nremote_as = 65002\n\n\
             [[peers]]\naddress = \"2001:db8::1\"\nremote_as = 65002\n"
        )
    }

    #[test]
    fn local_address_defaults_from_listen_addr() {
        let c = ok(&dual_stack(r#"["0.0.0.0:179", "192.0.2.1:179", "[2001:db8::2]:179"]"#));
        assert_eq!(c.peers[0].local_address, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(c.peers[1].local_address, Some("2001:db8::2".parse().unwrap()));

        // Wildcards name no address: the kernel chooses.
        let c = ok(&dual_stack(r#"["0.0.0.0:179", "[::]:179"]"#));
        assert_eq!(c.peers[0].local_address, None);
        assert_eq!(c.peers[1].local_address, None);

        // Only the peer's own family counts.
        let c = ok(&dual_stack(r#""192.0.2.1:179""#));
        assert_eq!(c.peers[0].local_address, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(c.peers[1].local_address, None);

        // An explicit one wins over the listen address.
        let text = dual_stack(r#""192.0.2.1:179""#)
            .replace("remote_as = 65002\n\n", "remote_as = 65002\nlocal_address = \"192.0.2.7\"\n\n");
        assert_eq!(ok(&text).peers[0].local_address, Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn local_address_family_must_match() {
        assert_eq!(
            errors(&with_peer_keys("name = \"up\"\nlocal_address = \"2001:db8::2\"")),
            vec![
                "focl.toml:9: peers[0].local_address: local_address 2001:db8::2 is IPv6 but peer \
                 192.0.2.2 (up) is IPv4; a session runs over one family"
            ]
        );
    }
}
