//! IP prefixes and address families, shared by the config, the wire codecs and the RIB.
//!
//! A `Prefix` is a compact value (address as an integer plus a length) with host bits always
//! clear, so it can key the Adj-RIB-In directly and sorts in TABLE_DUMP_V2 order.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The address families focld negotiates (RFC 4760 AFI/SAFI pairs, SAFI 1 = unicast).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

    /// IANA Address Family Identifier.
    pub fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast => 1,
            Family::Ipv6Unicast => 2,
        }
    }

    /// IANA Subsequent Address Family Identifier (1 = unicast).
    pub fn safi(self) -> u8 {
        1
    }

    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (1, 1) => Some(Family::Ipv4Unicast),
            (2, 1) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    pub fn of_addr(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4Unicast,
            IpAddr::V6(_) => Family::Ipv6Unicast,
        }
    }

    /// The snake_case name used in JSON and logs ("ipv4_unicast").
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4_unicast",
            Family::Ipv6Unicast => "ipv6_unicast",
        }
    }

    /// Index for per-family arrays: `[T; 2]`.
    pub fn index(self) -> usize {
        match self {
            Family::Ipv4Unicast => 0,
            Family::Ipv6Unicast => 1,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IPv4 or IPv6 prefix whose bits past the length are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    V4 { addr: u32, len: u8 },
    V6 { addr: u128, len: u8 },
}

/// Why a prefix string or NLRI could not be turned into a `Prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixError {
    Syntax(String),
    LengthTooLong { len: u8, max: u8 },
    HostBitsSet { suggestion: String },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::Syntax(s) => write!(f, "'{s}' is not a prefix (expected ADDRESS/LENGTH)"),
            PrefixError::LengthTooLong { len, max } => {
                write!(f, "prefix length {len} is longer than {max}")
            }
            PrefixError::HostBitsSet { suggestion } => {
                write!(f, "host bits are set past the prefix length (did you mean {suggestion}?)")
            }
        }
    }
}

fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl Prefix {
    /// Build a prefix, refusing host bits past `len`.
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        let p = Prefix::new_truncated(addr, len)?;
        if p.addr() != addr {
            return Err(PrefixError::HostBitsSet { suggestion: p.to_string() });
        }
        Ok(p)
    }

    /// Build a prefix, clearing host bits past `len` (what a router does with NLRI whose
    /// trailing bits are set).
    pub fn new_truncated(addr: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        match addr {
            IpAddr::V4(a) => {
                if len > 32 {
                    return Err(PrefixError::LengthTooLong { len, max: 32 });
                }
                Ok(Prefix::V4 { addr: u32::from(a) & mask_v4(len), len })
            }
            IpAddr::V6(a) => {
                if len > 128 {
                    return Err(PrefixError::LengthTooLong { len, max: 128 });
                }
                Ok(Prefix::V6 { addr: u128::from(a) & mask_v6(len), len })
            }
        }
    }

    pub fn addr(&self) -> IpAddr {
        match *self {
            Prefix::V4 { addr, .. } => IpAddr::V4(Ipv4Addr::from(addr)),
            Prefix::V6 { addr, .. } => IpAddr::V6(Ipv6Addr::from(addr)),
        }
    }

    pub fn len(&self) -> u8 {
        match *self {
            Prefix::V4 { len, .. } | Prefix::V6 { len, .. } => len,
        }
    }

    /// Always false: a /0 is still a prefix. Present so clippy's `len_without_is_empty` is met.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn family(&self) -> Family {
        match self {
            Prefix::V4 { .. } => Family::Ipv4Unicast,
            Prefix::V6 { .. } => Family::Ipv6Unicast,
        }
    }

    /// Does `self` cover `other` (same family, shorter or equal length, same leading bits)?
    pub fn contains(&self, other: &Prefix) -> bool {
        match (*self, *other) {
            (Prefix::V4 { addr: a, len: l }, Prefix::V4 { addr: b, len: m }) => l <= m && (b & mask_v4(l)) == a,
            (Prefix::V6 { addr: a, len: l }, Prefix::V6 { addr: b, len: m }) => l <= m && (b & mask_v6(l)) == a,
            _ => false,
        }
    }

    /// The address bytes an NLRI carries: ceil(len / 8) leading bytes (RFC 4271 §4.3).
    pub fn nlri_bytes(&self) -> Vec<u8> {
        let n = usize::from(self.len()).div_ceil(8);
        match *self {
            Prefix::V4 { addr, .. } => addr.to_be_bytes()[..n].to_vec(),
            Prefix::V6 { addr, .. } => addr.to_be_bytes()[..n].to_vec(),
        }
    }

    /// Append this prefix in NLRI encoding (length byte, then the leading bytes).
    pub fn write_nlri(&self, out: &mut Vec<u8>) {
        out.push(self.len());
        out.extend_from_slice(&self.nlri_bytes());
    }

    /// Size in bytes of this prefix's NLRI encoding.
    pub fn nlri_len(&self) -> usize {
        1 + usize::from(self.len()).div_ceil(8)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len())
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let (a, l) = s.split_once('/').ok_or_else(|| PrefixError::Syntax(s.to_string()))?;
        let addr: IpAddr = a.parse().map_err(|_| PrefixError::Syntax(s.to_string()))?;
        let len: u8 = l.parse().map_err(|_| PrefixError::Syntax(s.to_string()))?;
        Prefix::new(addr, len)
    }
}

impl Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Prefix, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_families() {
        let p: Prefix = "203.0.113.0/24".parse().unwrap();
        assert_eq!(p.to_string(), "203.0.113.0/24");
        assert_eq!(p.family(), Family::Ipv4Unicast);
        let q: Prefix = "2001:db8:1000::/48".parse().unwrap();
        assert_eq!(q.to_string(), "2001:db8:1000::/48");
        assert_eq!(q.nlri_bytes(), vec![0x20, 0x01, 0x0d, 0xb8, 0x10, 0x00]);
    }

    #[test]
    fn refuses_host_bits_and_long_lengths() {
        assert_eq!("10.1.2.3/8".parse::<Prefix>(), Err(PrefixError::HostBitsSet { suggestion: "10.0.0.0/8".into() }));
        assert!(matches!("10.0.0.0/33".parse::<Prefix>(), Err(PrefixError::LengthTooLong { .. })));
        assert!(matches!("10.0.0.0".parse::<Prefix>(), Err(PrefixError::Syntax(_))));
        assert_eq!("0.0.0.0/0".parse::<Prefix>().unwrap().nlri_len(), 1);
    }

    #[test]
    fn contains_and_order() {
        let a: Prefix = "10.0.0.0/8".parse().unwrap();
        let b: Prefix = "10.1.0.0/16".parse().unwrap();
        assert!(a.contains(&b) && !b.contains(&a));
        let v6: Prefix = "::/0".parse().unwrap();
        assert!(a < b && b < v6);
    }
}
