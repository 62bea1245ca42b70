//! Pure: the RPKI-to-Router protocol's PDUs (RFC 6810 version 0, RFC 8210 version 1, and
//! version 2's ASPA PDU in its current layout: draft-ietf-sidrops-8210bis §5.12, flags in the
//! header's third octet, the provider count from the length), both ways. Every length is checked before anything is read; a PDU larger than `MAX_PDU` is an
//! error, never an allocation.
//!
//! bgpkit-parser's RTR types are not used: its decoder works on a whole buffer and does not
//! report "need more bytes" apart from "malformed", which a stream reader must tell apart.

use crate::prefix::Prefix;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Header length (RFC 8210 §5.1).
pub const HEADER_LEN: usize = 8;
/// Largest PDU accepted: an Error Report carries a PDU and a text; 64 KiB is plenty.
pub const MAX_PDU: usize = 64 * 1024;

/// PDU types (RFC 8210 §5, IANA "rpki-rtr-pdu").
pub mod pdu_type {
    pub const SERIAL_NOTIFY: u8 = 0;
    pub const SERIAL_QUERY: u8 = 1;
    pub const RESET_QUERY: u8 = 2;
    pub const CACHE_RESPONSE: u8 = 3;
    pub const IPV4_PREFIX: u8 = 4;
    pub const IPV6_PREFIX: u8 = 6;
    pub const END_OF_DATA: u8 = 7;
    pub const CACHE_RESET: u8 = 8;
    pub const ROUTER_KEY: u8 = 9;
    pub const ERROR_REPORT: u8 = 10;
    /// Version 2 only (draft-ietf-sidrops-8210bis §5.12).
    pub const ASPA: u8 = 11;
}

/// Error Report codes (RFC 8210 §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    CorruptData = 0,
    InternalError = 1,
    NoDataAvailable = 2,
    InvalidRequest = 3,
    UnsupportedProtocolVersion = 4,
    UnsupportedPduType = 5,
    WithdrawalOfUnknownRecord = 6,
    DuplicateAnnouncement = 7,
    UnexpectedProtocolVersion = 8,
}

/// The IANA names of the Error Report codes, for logs and focl.
pub fn error_name(code: u16) -> &'static str {
    match code {
        0 => "Corrupt Data",
        1 => "Internal Error",
        2 => "No Data Available",
        3 => "Invalid Request",
        4 => "Unsupported Protocol Version",
        5 => "Unsupported PDU Type",
        6 => "Withdrawal of Unknown Record",
        7 => "Duplicate Announcement Received",
        8 => "Unexpected Protocol Version",
        _ => "Unknown error",
    }
}

/// End of Data timers (RFC 8210 §5.8, §6); version 0 caches send none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
}

/// A decoded PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pdu {
    SerialNotify {
        session: u16,
        serial: u32,
    },
    SerialQuery {
        session: u16,
        serial: u32,
    },
    ResetQuery,
    CacheResponse {
        session: u16,
    },
    /// IPv4 or IPv6 Prefix PDU: a VRP announced (or withdrawn).
    Prefix {
        announce: bool,
        prefix: Prefix,
        max_len: u8,
        asn: u32,
    },
    EndOfData {
        session: u16,
        serial: u32,
        timers: Option<Timers>,
    },
    CacheReset,
    /// Router Key PDUs (BGPsec) are read and ignored.
    RouterKey,
    ErrorReport {
        code: u16,
        pdu: Vec<u8>,
        text: String,
    },
    /// ASPA PDU (version 2): the customer AS's provider set, announced (replacing any
    /// earlier one) or withdrawn (no providers).
    Aspa {
        announce: bool,
        customer: u32,
        providers: Vec<u32>,
    },
}

/// Why bytes are not a PDU; each maps to the Error Report a router sends back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The header's version is not one this client speaks, or not the session's.
    Version(u8),
    UnknownType(u8),
    /// A length the type cannot have, or beyond `MAX_PDU`.
    Length {
        pdu_type: u8,
        length: u32,
    },
    /// A prefix longer than its family allows, or a max length below the prefix length.
    BadPrefix(String),
    /// An ASPA PDU that breaks its layout: reserved bits set, an announcement without
    /// providers (or, found by the session, the withdrawal of a record that does not exist).
    BadAspa(String),
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::Version(_) => ErrorCode::UnexpectedProtocolVersion,
            DecodeError::UnknownType(_) => ErrorCode::UnsupportedPduType,
            DecodeError::Length { .. } | DecodeError::BadPrefix(_) | DecodeError::BadAspa(_) => ErrorCode::CorruptData,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Version(v) => write!(f, "protocol version {v}"),
            DecodeError::UnknownType(t) => write!(f, "unknown PDU type {t}"),
            DecodeError::Length { pdu_type, length } => write!(f, "PDU type {pdu_type} with length {length}"),
            DecodeError::BadPrefix(s) => write!(f, "bad prefix: {s}"),
            DecodeError::BadAspa(s) => write!(f, "bad ASPA PDU: {s}"),
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The whole PDU at the start of `buf`, as (version, bytes used, PDU); `Ok(None)` while more
/// bytes are needed. `version` is the session's: a PDU of another version is an error.
pub fn decode(buf: &[u8], version: u8) -> Result<Option<(usize, Pdu)>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let (v, t, field, length) = (buf[0], buf[1], be16(buf, 2), be32(buf, 4));
    if v != version {
        return Err(DecodeError::Version(v));
    }
    let bad = || DecodeError::Length { pdu_type: t, length };
    let len = usize::try_from(length).map_err(|_| bad())?;
    // The fixed length of each type (RFC 8210 §5), checked before waiting for the body.
    let fixed = match t {
        pdu_type::SERIAL_NOTIFY | pdu_type::SERIAL_QUERY => Some(12),
        pdu_type::RESET_QUERY | pdu_type::CACHE_RESPONSE | pdu_type::CACHE_RESET => Some(8),
        pdu_type::IPV4_PREFIX => Some(20),
        pdu_type::IPV6_PREFIX => Some(32),
        pdu_type::END_OF_DATA => Some(if version == 0 { 12 } else { 24 }),
        pdu_type::ROUTER_KEY | pdu_type::ERROR_REPORT => None,
        pdu_type::ASPA if version >= 2 => None,
        other => return Err(DecodeError::UnknownType(other)),
    };
    match fixed {
        Some(n) if len != n => return Err(bad()),
        None if !(HEADER_LEN..=MAX_PDU).contains(&len) => return Err(bad()),
        // Header, customer AS, then whole 4-octet provider ASes.
        None if t == pdu_type::ASPA && (len < HEADER_LEN + 4 || len % 4 != 0) => return Err(bad()),
        _ => {}
    }
    if buf.len() < len {
        return Ok(None);
    }
    let b = &buf[..len];
    let pdu = match t {
        pdu_type::SERIAL_NOTIFY => Pdu::SerialNotify { session: field, serial: be32(b, 8) },
        pdu_type::SERIAL_QUERY => Pdu::SerialQuery { session: field, serial: be32(b, 8) },
        pdu_type::RESET_QUERY => Pdu::ResetQuery,
        pdu_type::CACHE_RESPONSE => Pdu::CacheResponse { session: field },
        pdu_type::CACHE_RESET => Pdu::CacheReset,
        pdu_type::ROUTER_KEY => {
            if version == 0 {
                return Err(DecodeError::UnknownType(t));
            }
            Pdu::RouterKey
        }
        pdu_type::IPV4_PREFIX | pdu_type::IPV6_PREFIX => {
            let (flags, plen, max_len) = (b[8], b[9], b[10]);
            let (addr, asn) = if t == pdu_type::IPV4_PREFIX {
                (IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])), be32(b, 16))
            } else {
                let mut o = [0u8; 16];
                o.copy_from_slice(&b[12..28]);
                (IpAddr::V6(Ipv6Addr::from(o)), be32(b, 28))
            };
            let prefix = Prefix::new(addr, plen).map_err(|e| DecodeError::BadPrefix(e.to_string()))?;
            let family_max = if addr.is_ipv4() { 32 } else { 128 };
            if max_len < plen || max_len > family_max {
                return Err(DecodeError::BadPrefix(format!("{prefix} with max length {max_len}")));
            }
            Pdu::Prefix { announce: flags & 1 == 1, prefix, max_len, asn }
        }
        pdu_type::END_OF_DATA => {
            let timers =
                (version > 0).then(|| Timers { refresh: be32(b, 12), retry: be32(b, 16), expire: be32(b, 20) });
            Pdu::EndOfData { session: field, serial: be32(b, 8), timers }
        }
        pdu_type::ERROR_REPORT => {
            let take = |at: usize| -> Result<(usize, &[u8]), DecodeError> {
                let n = usize::try_from(be32(b.get(at..at + 4).ok_or_else(bad)?, 0)).map_err(|_| bad())?;
                let body = b.get(at + 4..).and_then(|r| r.get(..n)).ok_or_else(bad)?;
                Ok((at + 4 + n, body))
            };
            let (next, pdu) = take(8)?;
            let (end, text) = take(next)?;
            if end != len {
                return Err(bad());
            }
            // Some caches NUL-terminate the text; control characters never reach a log line.
            let text = crate::wire::notify::escape_control(String::from_utf8_lossy(text).trim_end_matches('\0'));
            Pdu::ErrorReport { code: field, pdu: pdu.to_vec(), text }
        }
        pdu_type::ASPA => {
            let (flags, zero) = (b[2], b[3]);
            let announce = flags & 1 == 1;
            let customer = be32(b, 8);
            let providers: Vec<u32> = b[12..].chunks_exact(4).map(|c| be32(c, 0)).collect();
            if zero != 0 || flags & !1 != 0 {
                return Err(DecodeError::BadAspa(format!("flags {flags:#04x}, reserved octet {zero:#04x}")));
            }
            if announce && providers.is_empty() {
                return Err(DecodeError::BadAspa(format!("announcement for AS{customer} without providers")));
            }
            // A withdrawal's providers mean nothing (some caches send them): dropped.
            let providers = if announce { providers } else { Vec::new() };
            Pdu::Aspa { announce, customer, providers }
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    Ok(Some((len, pdu)))
}

fn header(out: &mut Vec<u8>, version: u8, t: u8, field: u16, len: usize) {
    out.push(version);
    out.push(t);
    out.extend_from_slice(&field.to_be_bytes());
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

/// Encode `pdu` at `version` (a router sends Serial Query, Reset Query and Error Report; the
/// rest is encoded for tests and symmetry).
pub fn encode(pdu: &Pdu, version: u8) -> Vec<u8> {
    let mut o = Vec::new();
    match pdu {
        Pdu::SerialNotify { session, serial } | Pdu::SerialQuery { session, serial } => {
            let t =
                if matches!(pdu, Pdu::SerialNotify { .. }) { pdu_type::SERIAL_NOTIFY } else { pdu_type::SERIAL_QUERY };
            header(&mut o, version, t, *session, 12);
            o.extend_from_slice(&serial.to_be_bytes());
        }
        Pdu::ResetQuery => header(&mut o, version, pdu_type::RESET_QUERY, 0, 8),
        Pdu::CacheResponse { session } => header(&mut o, version, pdu_type::CACHE_RESPONSE, *session, 8),
        Pdu::CacheReset => header(&mut o, version, pdu_type::CACHE_RESET, 0, 8),
        Pdu::RouterKey => header(&mut o, version, pdu_type::ROUTER_KEY, 0, 8),
        Pdu::Prefix { announce, prefix, max_len, asn } => {
            let v4 = prefix.addr().is_ipv4();
            header(
                &mut o,
                version,
                if v4 { pdu_type::IPV4_PREFIX } else { pdu_type::IPV6_PREFIX },
                0,
                if v4 { 20 } else { 32 },
            );
            o.extend_from_slice(&[u8::from(*announce), prefix.len(), *max_len, 0]);
            match prefix.addr() {
                IpAddr::V4(a) => o.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => o.extend_from_slice(&a.octets()),
            }
            o.extend_from_slice(&asn.to_be_bytes());
        }
        Pdu::EndOfData { session, serial, timers } => {
            let t = timers.filter(|_| version > 0);
            header(&mut o, version, pdu_type::END_OF_DATA, *session, if t.is_some() { 24 } else { 12 });
            o.extend_from_slice(&serial.to_be_bytes());
            if let Some(t) = t {
                for v in [t.refresh, t.retry, t.expire] {
                    o.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        Pdu::ErrorReport { code, pdu, text } => {
            let pdu = &pdu[..pdu.len().min(MAX_PDU / 2)];
            let text = &text.as_bytes()[..text.len().min(1024)];
            header(&mut o, version, pdu_type::ERROR_REPORT, *code, HEADER_LEN + 8 + pdu.len() + text.len());
            o.extend_from_slice(&(pdu.len() as u32).to_be_bytes());
            o.extend_from_slice(pdu);
            o.extend_from_slice(&(text.len() as u32).to_be_bytes());
            o.extend_from_slice(text);
        }
        Pdu::Aspa { announce, customer, providers } => {
            let providers = &providers[..providers.len().min((MAX_PDU - HEADER_LEN - 4) / 4)];
            header(&mut o, version, pdu_type::ASPA, u16::from(*announce) << 8, HEADER_LEN + 4 + 4 * providers.len());
            o.extend_from_slice(&customer.to_be_bytes());
            for p in providers {
                o.extend_from_slice(&p.to_be_bytes());
            }
        }
    }
    o
}

/// RFC 1982 serial number arithmetic (RFC 8210 §2: serials wrap): is `a` newer than `b`?
pub fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(p: Pdu, version: u8) {
        let bytes = encode(&p, version);
        assert_eq!(decode(&bytes, version), Ok(Some((bytes.len(), p.clone()))), "{p:?}");
        // Every shorter prefix of the bytes asks for more, never errs or panics.
        for n in 0..bytes.len() {
            assert_eq!(decode(&bytes[..n], version), Ok(None), "{p:?} cut at {n}");
        }
    }

    #[test]
    fn every_pdu_round_trips_in_both_versions() {
        let v4: Prefix = "192.0.2.0/24".parse().expect("prefix");
        let v6: Prefix = "2001:db8::/32".parse().expect("prefix");
        for version in [0, 1] {
            round_trip(Pdu::SerialNotify { session: 7, serial: 42 }, version);
            round_trip(Pdu::SerialQuery { session: 7, serial: u32::MAX }, version);
            round_trip(Pdu::ResetQuery, version);
            round_trip(Pdu::CacheResponse { session: 65535 }, version);
            round_trip(Pdu::Prefix { announce: true, prefix: v4, max_len: 24, asn: 64496 }, version);
            round_trip(Pdu::Prefix { announce: false, prefix: v6, max_len: 48, asn: 4_200_000_000 }, version);
            round_trip(Pdu::CacheReset, version);
            round_trip(Pdu::ErrorReport { code: 2, pdu: vec![], text: "no data yet".into() }, version);
        }
        round_trip(Pdu::EndOfData { session: 1, serial: 9, timers: None }, 0);
        round_trip(
            Pdu::EndOfData { session: 1, serial: 9, timers: Some(Timers { refresh: 3600, retry: 600, expire: 7200 }) },
            1,
        );
    }

    #[test]
    fn aspa_pdus_round_trip_in_version_2_in_the_current_layout_only() {
        round_trip(Pdu::Aspa { announce: true, customer: 64500, providers: vec![64501, 4_200_000_000] }, 2);
        round_trip(Pdu::Aspa { announce: false, customer: 64500, providers: vec![] }, 2);
        round_trip(
            Pdu::EndOfData { session: 3, serial: 1, timers: Some(Timers { refresh: 1, retry: 2, expire: 700 }) },
            2,
        );
        // Flags in the header's third octet, the customer, then the providers.
        assert_eq!(
            encode(&Pdu::Aspa { announce: true, customer: 0x0102_0304, providers: vec![5] }, 2),
            [2, 11, 1, 0, 0, 0, 0, 16, 1, 2, 3, 4, 0, 0, 0, 5]
        );
        // Not a type in versions 0 and 1.
        let b = encode(&Pdu::Aspa { announce: true, customer: 1, providers: vec![2] }, 1);
        assert_eq!(decode(&b, 1).map_err(|e| e.code()), Err(ErrorCode::UnsupportedPduType));
        // A withdrawal's providers (rtrtr sends them) are dropped.
        let w = [2, 11, 0, 0, 0, 0, 0, 16, 0, 0, 0xfb, 0xfe, 0, 0, 0, 0];
        assert_eq!(decode(&w, 2), Ok(Some((16, Pdu::Aspa { announce: false, customer: 64510, providers: vec![] }))));
        // Reserved bits, an announcement without providers, a length that is no whole number
        // of ASes.
        assert!(matches!(decode(&[2, 11, 3, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 2], 2), Err(DecodeError::BadAspa(_))));
        assert!(matches!(decode(&[2, 11, 1, 0, 0, 0, 0, 12, 0, 0, 0, 1], 2), Err(DecodeError::BadAspa(_))));
        assert!(matches!(decode(&[2, 11, 1, 0, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0], 2), Err(DecodeError::Length { .. })));
    }

    #[test]
    fn the_bytes_are_those_of_rfc_8210() {
        assert_eq!(encode(&Pdu::ResetQuery, 1), [1, 2, 0, 0, 0, 0, 0, 8]);
        assert_eq!(
            encode(&Pdu::SerialQuery { session: 0x1234, serial: 5 }, 1),
            [1, 1, 0x12, 0x34, 0, 0, 0, 12, 0, 0, 0, 5]
        );
        let p = Pdu::Prefix { announce: true, prefix: "203.0.113.0/24".parse().expect("p"), max_len: 24, asn: 65008 };
        assert_eq!(encode(&p, 1), [1, 4, 0, 0, 0, 0, 0, 20, 1, 24, 24, 0, 203, 0, 113, 0, 0, 0, 0xfd, 0xf0]);
    }

    #[test]
    fn bad_pdus_are_errors_that_name_the_report_to_send() {
        // Another version than the session's.
        assert_eq!(
            decode(&encode(&Pdu::ResetQuery, 0), 1).map_err(|e| e.code()),
            Err(ErrorCode::UnexpectedProtocolVersion)
        );
        // An unknown type, a length the type cannot have, one beyond the limit.
        assert_eq!(decode(&[1, 99, 0, 0, 0, 0, 0, 8], 1).map_err(|e| e.code()), Err(ErrorCode::UnsupportedPduType));
        assert!(matches!(decode(&[1, 4, 0, 0, 0, 0, 0, 21], 1), Err(DecodeError::Length { .. })));
        assert!(matches!(decode(&[1, 10, 0, 0, 0x7f, 0, 0, 0], 1), Err(DecodeError::Length { .. })));
        // A v4 prefix /33, a max length below the prefix length.
        let mut b =
            encode(&Pdu::Prefix { announce: true, prefix: "192.0.2.0/24".parse().expect("p"), max_len: 24, asn: 1 }, 1);
        b[9] = 33;
        b[10] = 33;
        assert!(matches!(decode(&b, 1), Err(DecodeError::BadPrefix(_))));
        b[9] = 24;
        b[10] = 20;
        assert!(matches!(decode(&b, 1), Err(DecodeError::BadPrefix(_))));
        // An Error Report whose inner lengths overrun it.
        let mut e = encode(&Pdu::ErrorReport { code: 0, pdu: vec![1, 2], text: "x".into() }, 1);
        e[11] = 200;
        assert!(matches!(decode(&e, 1), Err(DecodeError::Length { .. })));
        // Router Key is v1 only.
        assert_eq!(decode(&[0, 9, 0, 0, 0, 0, 0, 8], 0).map_err(|e| e.code()), Err(ErrorCode::UnsupportedPduType));
    }

    #[test]
    fn serial_numbers_wrap_around_as_rfc_1982_says() {
        assert!(serial_newer(5, 4));
        assert!(!serial_newer(4, 5));
        assert!(!serial_newer(7, 7));
        assert!(serial_newer(0, u32::MAX), "0 follows 2^32-1");
        assert!(serial_newer(10, u32::MAX - 10));
        assert!(!serial_newer(u32::MAX - 10, 10));
    }
}
