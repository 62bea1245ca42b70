//! BGP Role (RFC 9234): the Role capability's values, which pairs of roles may form a session
//! (§4.2), and the Only-to-Customer attribute's ingress and egress rules (§5).
//!
//! Pure code, used by the OPEN check (`wire::open`), the peer thread (ingress, on every
//! received UPDATE) and the RIB (egress, on the routes it announces).

use super::attr::{code, flag, split_attrs};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A speaker's role on one eBGP session (RFC 9234 §4.1, IANA "BGP Role" values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Provider,
    Rs,
    RsClient,
    Customer,
    Peer,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Provider, Role::Rs, Role::RsClient, Role::Customer, Role::Peer];

    /// The value in the Role capability.
    pub fn value(self) -> u8 {
        match self {
            Role::Provider => 0,
            Role::Rs => 1,
            Role::RsClient => 2,
            Role::Customer => 3,
            Role::Peer => 4,
        }
    }

    pub fn from_value(v: u8) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.value() == v)
    }

    /// The configuration spelling (`role = "rs-client"`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Rs => "rs",
            Role::RsClient => "rs-client",
            Role::Customer => "customer",
            Role::Peer => "peer",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The only role the other end may have (RFC 9234 §4.2, Table 2).
    pub fn expected_remote(self) -> Role {
        match self {
            Role::Provider => Role::Customer,
            Role::Customer => Role::Provider,
            Role::Rs => Role::RsClient,
            Role::RsClient => Role::Rs,
            Role::Peer => Role::Peer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name of a received role value, also one no RFC defines.
pub fn value_name(v: u8) -> String {
    match Role::from_value(v) {
        Some(r) => r.name().to_string(),
        None => format!("unassigned {v}"),
    }
}

/// Why a session's roles do not fit (RFC 9234 §4.2): each answered with OPEN Message Error /
/// Role Mismatch (2/11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleError {
    /// The peer sent Role capabilities with different values.
    Conflicting(Vec<u8>),
    /// Our role and the peer's are not an allowed pair.
    Mismatch { local: Role, remote: u8 },
    /// `strict_role`: the peer sent no Role capability.
    Missing { local: Role },
}

impl fmt::Display for RoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleError::Conflicting(v) => {
                let names: Vec<String> = v.iter().map(|r| value_name(*r)).collect();
                write!(f, "the peer sent conflicting roles ({})", names.join(", "))
            }
            RoleError::Mismatch { local, remote } => write!(
                f,
                "role mismatch: we are {local}, the peer says {}, expected {}",
                value_name(*remote),
                local.expected_remote()
            ),
            RoleError::Missing { local } => {
                write!(f, "the peer sent no BGP Role and strict_role is set (we are {local})")
            }
        }
    }
}

/// RFC 9234 §4.2: check the peer's roles (every Role capability value it sent) against ours.
/// Without a local role the capability is not ours to check.
pub fn check_roles(local: Option<Role>, strict: bool, received: &[u8]) -> Result<(), RoleError> {
    let Some(local) = local else { return Ok(()) };
    // "If multiple Role Capabilities are received and they are not all the same ... Role Mismatch"
    if received.windows(2).any(|w| w[0] != w[1]) {
        return Err(RoleError::Conflicting(received.to_vec()));
    }
    match received.first() {
        Some(&remote) if Role::from_value(remote) != Some(local.expected_remote()) => {
            Err(RoleError::Mismatch { local, remote })
        }
        Some(_) => Ok(()),
        None if strict => Err(RoleError::Missing { local }),
        None => Ok(()),
    }
}

/// The OTC attribute's value in a set of path attributes, if present and well formed.
pub fn otc_of(attrs: &[u8]) -> Option<u32> {
    let (list, _) = split_attrs(attrs);
    list.iter()
        .find(|a| a.type_code == code::OTC)
        .and_then(|a| <[u8; 4]>::try_from(a.value).ok())
        .map(u32::from_be_bytes)
}

fn push_otc(attrs: &mut Vec<u8>, asn: u32) {
    attrs.extend_from_slice(&[flag::OPTIONAL | flag::TRANSITIVE, code::OTC, 4]);
    attrs.extend_from_slice(&asn.to_be_bytes());
}

/// RFC 9234 §5 ingress, for a route received with `attrs` from `remote_as` on a session where
/// we are `local`: adds OTC where the rules say so and tells whether the route is a leak (the
/// route is kept, marked; what to do with it is policy's).
pub fn otc_ingress(local: Role, remote_as: u32, attrs: &mut Vec<u8>) -> bool {
    let otc = otc_of(attrs);
    match (local, otc) {
        // 1. "If a route with the OTC Attribute is received from a Customer or an RS-Client,
        //    then it is a route leak".
        (Role::Provider | Role::Rs, Some(_)) => true,
        // 2. "If a route with the OTC Attribute is received from a Peer ... and the Attribute
        //    has a value that is not equal to the remote (i.e., Peer's) AS number, then it is a
        //    route leak".
        (Role::Peer, Some(v)) => v != remote_as,
        // 3. "If a route is received from a Provider, a Peer, or an RS and the OTC Attribute
        //    is not present, then it MUST be added with a value equal to the remote AS number".
        (Role::Customer | Role::Peer | Role::RsClient, None) => {
            push_otc(attrs, remote_as);
            false
        }
        _ => false,
    }
}

/// RFC 9234 §5 egress: the OTC value a route without one gets when we advertise it on a
/// session where we are `local` ("to a Customer, a Peer, or an RS-Client": our role Provider,
/// Peer or RS), `None` elsewhere.
pub fn otc_egress(local: Option<Role>, local_as: u32) -> Option<u32> {
    match local? {
        Role::Provider | Role::Peer | Role::Rs => Some(local_as),
        Role::Customer | Role::RsClient => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN_IGP: [u8; 4] = [0x40, 1, 1, 0];

    fn with_otc(asn: u32) -> Vec<u8> {
        let mut a = ORIGIN_IGP.to_vec();
        push_otc(&mut a, asn);
        a
    }

    #[test]
    fn only_the_pairs_of_table_2_form_a_session() {
        for local in Role::ALL {
            for remote in 0..=5u8 {
                let ok = Role::from_value(remote) == Some(local.expected_remote());
                assert_eq!(check_roles(Some(local), false, &[remote]).is_ok(), ok, "{local} with {remote}");
            }
        }
        assert_eq!(check_roles(Some(Role::Customer), false, &[0]), Ok(()), "customer of a provider");
        assert_eq!(
            check_roles(Some(Role::Customer), false, &[3]),
            Err(RoleError::Mismatch { local: Role::Customer, remote: 3 })
        );
    }

    #[test]
    fn a_missing_role_is_accepted_unless_strict() {
        assert_eq!(check_roles(Some(Role::Peer), false, &[]), Ok(()));
        assert_eq!(check_roles(Some(Role::Peer), true, &[]), Err(RoleError::Missing { local: Role::Peer }));
        assert_eq!(check_roles(None, true, &[3]), Ok(()), "no local role: nothing to check");
    }

    #[test]
    fn conflicting_role_capabilities_are_a_mismatch() {
        assert_eq!(check_roles(Some(Role::Peer), false, &[4, 4]), Ok(()));
        assert_eq!(check_roles(Some(Role::Peer), false, &[4, 3]), Err(RoleError::Conflicting(vec![4, 3])));
    }

    #[test]
    fn config_names_and_wire_values_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_name(r.name()), Some(r));
            assert_eq!(Role::from_value(r.value()), Some(r));
        }
        assert_eq!(Role::RsClient.value(), 2);
        assert_eq!(Role::from_name("rs_client"), None);
        assert_eq!(value_name(9), "unassigned 9");
    }

    #[test]
    fn a_route_with_otc_from_a_customer_or_rs_client_is_a_leak() {
        for local in [Role::Provider, Role::Rs] {
            let mut a = with_otc(65010);
            assert!(otc_ingress(local, 65002, &mut a));
            assert_eq!(a, with_otc(65010), "kept as received");
            let mut a = ORIGIN_IGP.to_vec();
            assert!(!otc_ingress(local, 65002, &mut a));
            assert_eq!(otc_of(&a), None, "nothing added from below");
        }
    }

    #[test]
    fn a_route_from_a_peer_is_a_leak_only_with_someone_elses_otc() {
        let mut a = with_otc(65002);
        assert!(!otc_ingress(Role::Peer, 65002, &mut a));
        let mut a = with_otc(65099);
        assert!(otc_ingress(Role::Peer, 65002, &mut a));
    }

    #[test]
    fn routes_from_above_or_aside_get_the_remote_as_as_otc() {
        for local in [Role::Customer, Role::Peer, Role::RsClient] {
            let mut a = ORIGIN_IGP.to_vec();
            assert!(!otc_ingress(local, 65002, &mut a));
            assert_eq!(otc_of(&a), Some(65002), "{local}");
            assert_eq!(&a[4..], &[0xc0, 35, 4, 0, 0, 0xfd, 0xea]);
        }
        let mut a = with_otc(65010);
        assert!(!otc_ingress(Role::Customer, 65002, &mut a), "from a provider, OTC is no leak");
        assert_eq!(otc_of(&a), Some(65010), "and is not replaced");
    }

    #[test]
    fn routes_to_customers_peers_and_rs_clients_carry_our_as() {
        assert_eq!(otc_egress(Some(Role::Provider), 65001), Some(65001));
        assert_eq!(otc_egress(Some(Role::Peer), 65001), Some(65001));
        assert_eq!(otc_egress(Some(Role::Rs), 65001), Some(65001));
        assert_eq!(otc_egress(Some(Role::Customer), 65001), None);
        assert_eq!(otc_egress(Some(Role::RsClient), 65001), None);
        assert_eq!(otc_egress(None, 65001), None);
    }
}
