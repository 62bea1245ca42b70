//! NOTIFICATION messages (RFC 4271 §4.5, §6) with their IANA code and subcode names.
//!
//! Built by the FSM and the peer thread when a session ends; decoded from what peers send.
//! One table (`describe`) gives the words used in logs, focl and JSON alike.

use super::frame::{write_header, MsgType, HEADER_LEN};
use std::fmt;

/// NOTIFICATION error codes (IANA "BGP Error (Notification) Codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    MessageHeader = 1,
    OpenMessage = 2,
    UpdateMessage = 3,
    HoldTimerExpired = 4,
    FsmError = 5,
    Cease = 6,
    RouteRefreshMessage = 7,
    /// RFC 9687
    SendHoldTimerExpired = 8,
}

/// Message Header Error subcodes (RFC 4271 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HeaderSubcode {
    ConnectionNotSynchronized = 1,
    BadMessageLength = 2,
    BadMessageType = 3,
}

/// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492, RFC 9234).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpenSubcode {
    /// Malformed optional parameters: no subcode says more (RFC 4271 §6.2).
    Unspecific = 0,
    UnsupportedVersionNumber = 1,
    BadPeerAs = 2,
    BadBgpIdentifier = 3,
    UnsupportedOptionalParameter = 4,
    UnacceptableHoldTime = 6,
    UnsupportedCapability = 7,
    RoleMismatch = 11,
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum UpdateSubcode {
    MalformedAttributeList = 1,
    UnrecognizedWellKnownAttribute = 2,
    MissingWellKnownAttribute = 3,
    AttributeFlagsError = 4,
    AttributeLengthError = 5,
    InvalidOriginAttribute = 6,
    InvalidNextHopAttribute = 8,
    OptionalAttributeError = 9,
    InvalidNetworkField = 10,
    MalformedAsPath = 11,
}

/// Finite State Machine Error subcodes (RFC 6608).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FsmSubcode {
    Unspecified = 0,
    UnexpectedMessageInOpenSent = 1,
    UnexpectedMessageInOpenConfirm = 2,
    UnexpectedMessageInEstablished = 3,
}

/// Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CeaseSubcode {
    MaximumPrefixesReached = 1,
    AdministrativeShutdown = 2,
    PeerDeconfigured = 3,
    AdministrativeReset = 4,
    ConnectionRejected = 5,
    OtherConfigurationChange = 6,
    ConnectionCollisionResolution = 7,
    OutOfResources = 8,
    HardReset = 9,
    BfdDown = 10,
}

/// Why a received message cannot be used, as the decoders return it: one variant per error
/// code of RFC 4271 §6 (and RFC 7313 §5), with the subcode and the data the RFC puts in the
/// NOTIFICATION. `Notification::from` builds that NOTIFICATION; its words come from the one
/// table, `describe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Message Header Error (RFC 4271 §6.1).
    Header(HeaderError),
    /// OPEN Message Error (RFC 4271 §6.2) and its data.
    Open(OpenSubcode, Vec<u8>),
    /// UPDATE Message Error (RFC 4271 §6.3) and its data.
    Update(UpdateSubcode, Vec<u8>),
    /// ROUTE-REFRESH Message Error (RFC 7313 §5).
    RouteRefresh(RouteRefreshError),
}

/// Message Header Errors with their data (RFC 4271 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    ConnectionNotSynchronized,
    /// "the Data field MUST contain the erroneous Length field"
    BadMessageLength(u16),
    /// "the Data field MUST contain the erroneous Type field"
    BadMessageType(u8),
}

/// ROUTE-REFRESH Message Errors (RFC 7313 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteRefreshError {
    /// The data is the complete ROUTE-REFRESH message.
    InvalidMessageLength(Vec<u8>),
}

impl DecodeError {
    /// An UPDATE error without data.
    pub fn update(sub: UpdateSubcode) -> DecodeError {
        DecodeError::Update(sub, Vec::new())
    }

    /// An OPEN error without data.
    pub fn open(sub: OpenSubcode) -> DecodeError {
        DecodeError::Open(sub, Vec::new())
    }
}

impl From<DecodeError> for Notification {
    fn from(e: DecodeError) -> Notification {
        match e {
            DecodeError::Header(h) => {
                let (sub, data) = match h {
                    HeaderError::ConnectionNotSynchronized => (HeaderSubcode::ConnectionNotSynchronized, vec![]),
                    HeaderError::BadMessageLength(len) => (HeaderSubcode::BadMessageLength, len.to_be_bytes().to_vec()),
                    HeaderError::BadMessageType(ty) => (HeaderSubcode::BadMessageType, vec![ty]),
                };
                Notification::new(ErrorCode::MessageHeader, sub as u8, data)
            }
            DecodeError::Open(sub, data) => Notification::new(ErrorCode::OpenMessage, sub as u8, data),
            DecodeError::Update(sub, data) => Notification::new(ErrorCode::UpdateMessage, sub as u8, data),
            DecodeError::RouteRefresh(RouteRefreshError::InvalidMessageLength(msg)) => {
                Notification::new(ErrorCode::RouteRefreshMessage, 1, msg)
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Notification::from(self.clone()).fmt(f)
    }
}

/// The IANA names: (code name, subcode name) for a code and subcode.
pub fn describe(code: u8, subcode: u8) -> (&'static str, Option<&'static str>) {
    let code_name = match code {
        1 => "Message Header Error",
        2 => "OPEN Message Error",
        3 => "UPDATE Message Error",
        4 => "Hold Timer Expired",
        5 => "Finite State Machine Error",
        6 => "Cease",
        7 => "ROUTE-REFRESH Message Error",
        8 => "Send Hold Timer Expired",
        _ => "Unknown Error",
    };
    let sub = match (code, subcode) {
        (1, 1) => "Connection Not Synchronized",
        (1, 2) => "Bad Message Length",
        (1, 3) => "Bad Message Type",
        (2, 1) => "Unsupported Version Number",
        (2, 2) => "Bad Peer AS",
        (2, 3) => "Bad BGP Identifier",
        (2, 4) => "Unsupported Optional Parameter",
        (2, 6) => "Unacceptable Hold Time",
        (2, 7) => "Unsupported Capability",
        (2, 11) => "Role Mismatch",
        (3, 1) => "Malformed Attribute List",
        (3, 2) => "Unrecognized Well-known Attribute",
        (3, 3) => "Missing Well-known Attribute",
        (3, 4) => "Attribute Flags Error",
        (3, 5) => "Attribute Length Error",
        (3, 6) => "Invalid ORIGIN Attribute",
        (3, 8) => "Invalid NEXT_HOP Attribute",
        (3, 9) => "Optional Attribute Error",
        (3, 10) => "Invalid Network Field",
        (3, 11) => "Malformed AS_PATH",
        (5, 1) => "Receive Unexpected Message in OpenSent State",
        (5, 2) => "Receive Unexpected Message in OpenConfirm State",
        (5, 3) => "Receive Unexpected Message in Established State",
        (6, 1) => "Maximum Number of Prefixes Reached",
        (6, 2) => "Administrative Shutdown",
        (6, 3) => "Peer De-configured",
        (6, 4) => "Administrative Reset",
        (6, 5) => "Connection Rejected",
        (6, 6) => "Other Configuration Change",
        (6, 7) => "Connection Collision Resolution",
        (6, 8) => "Out of Resources",
        (6, 9) => "Hard Reset",
        (6, 10) => "BFD Down",
        (7, 1) => "Invalid Message Length",
        (_, 0) => return (code_name, None),
        _ => return (code_name, None),
    };
    (code_name, Some(sub))
}

/// A NOTIFICATION message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// RFC 9003 §2: at most 255 octets of UTF-8.
const MAX_COMMUNICATION: usize = 255;

impl Notification {
    pub fn new(code: ErrorCode, subcode: u8, data: Vec<u8>) -> Notification {
        Notification { code: code as u8, subcode, data }
    }

    /// A Cease; Administrative Shutdown and Reset carry the RFC 9003 shutdown communication
    /// (a length octet then UTF-8, cut at a character boundary to fit 255 octets).
    pub fn cease(sub: CeaseSubcode, communication: Option<&str>) -> Notification {
        let mut data = Vec::new();
        if let Some(text) = communication {
            if matches!(sub, CeaseSubcode::AdministrativeShutdown | CeaseSubcode::AdministrativeReset) {
                let mut end = text.len().min(MAX_COMMUNICATION);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                data.push(end as u8);
                data.extend_from_slice(&text.as_bytes()[..end]);
            }
        }
        Notification::new(ErrorCode::Cease, sub as u8, data)
    }

    /// The whole message, header included.
    pub fn encode(&self) -> Vec<u8> {
        let len = HEADER_LEN + 2 + self.data.len();
        let mut out = Vec::with_capacity(len);
        write_header(&mut out, len, MsgType::Notification);
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
        out
    }

    /// Decode a body (after the header). Too short a body is itself a header error (1/2).
    pub fn decode(body: &[u8]) -> Result<Notification, DecodeError> {
        match body {
            [code, subcode, data @ ..] => Ok(Notification { code: *code, subcode: *subcode, data: data.to_vec() }),
            _ => Err(DecodeError::Header(HeaderError::BadMessageLength((HEADER_LEN + body.len()) as u16))),
        }
    }

    /// RFC 8538 §3: the NOTIFICATION a Cease / Hard Reset carries in its data (code,
    /// subcode, data), if any.
    pub fn encapsulated(&self) -> Option<Notification> {
        if self.code != ErrorCode::Cease as u8 || self.subcode != CeaseSubcode::HardReset as u8 {
            return None;
        }
        match self.data.as_slice() {
            [code, subcode, data @ ..] => Some(Notification { code: *code, subcode: *subcode, data: data.to_vec() }),
            _ => None,
        }
    }

    /// "Cease / Administrative Shutdown"; unknown subcodes by number; a Hard Reset names what
    /// it carries: "Cease / Hard Reset (Cease / Administrative Shutdown)".
    pub fn name(&self) -> String {
        if let Some(inner) = self.encapsulated().filter(|i| i.encapsulated().is_none()) {
            return format!("{} ({})", self.plain_name(), inner.name());
        }
        self.plain_name()
    }

    fn plain_name(&self) -> String {
        match describe(self.code, self.subcode) {
            (c, Some(s)) => format!("{c} / {s}"),
            (c, None) if self.subcode == 0 => c.to_string(),
            (c, None) => format!("{c} / subcode {}", self.subcode),
        }
    }

    /// The RFC 9003 shutdown communication of a Cease 2 or 4, made safe to print: the length
    /// octet must fit the data, the text must be UTF-8, control characters are escaped.
    pub fn shutdown_communication(&self) -> Option<String> {
        if let Some(inner) = self.encapsulated().filter(|i| i.encapsulated().is_none()) {
            return inner.shutdown_communication();
        }
        if self.code != ErrorCode::Cease as u8 || !(self.subcode == 2 || self.subcode == 4) {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        if text.is_empty() {
            return None;
        }
        let s = std::str::from_utf8(text).ok()?;
        Some(escape_control(s))
    }
}

/// Escape control characters (`\x07`), keep everything else.
pub fn escape_control(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if ch.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(ch)));
        } else {
            out.push(ch);
        }
    }
    out
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(text) = self.shutdown_communication() {
            write!(f, ": \"{text}\"")
        } else if !self.data.is_empty() {
            write!(f, ", data: ")?;
            for b in self.data.iter().take(64) {
                write!(f, "{b:02x}")?;
            }
            if self.data.len() > 64 {
                write!(f, "...")?;
            }
            Ok(())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_hold_timer_expired_exactly() {
        let n = Notification::new(ErrorCode::HoldTimerExpired, 0, vec![]);
        let mut want = vec![0xff; 16];
        want.extend_from_slice(&[0, 21, 3, 4, 0]);
        assert_eq!(n.encode(), want);
        assert_eq!(n.name(), "Hold Timer Expired");
    }

    #[test]
    fn cease_with_shutdown_communication_round_trips() {
        let n = Notification::cease(CeaseSubcode::AdministrativeShutdown, Some("focld shutting down"));
        let raw = n.encode();
        assert_eq!(&raw[19..22], &[6, 2, 19]);
        let back = Notification::decode(&raw[19..]).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.shutdown_communication().as_deref(), Some("focld shutting down"));
        assert_eq!(back.to_string(), "Cease / Administrative Shutdown: \"focld shutting down\"");
    }

    #[test]
    fn long_communication_is_cut_at_a_character_boundary() {
        let text = "é".repeat(200); // 400 bytes
        let n = Notification::cease(CeaseSubcode::AdministrativeReset, Some(&text));
        assert_eq!(n.data[0], 254);
        assert_eq!(n.shutdown_communication().map(|s| s.chars().count()), Some(127));
    }

    #[test]
    fn hostile_communications_are_sanitised_or_refused() {
        let bell = Notification { code: 6, subcode: 2, data: vec![3, b'a', 7, b'b'] };
        assert_eq!(bell.shutdown_communication().as_deref(), Some("a\\x07b"));
        let overlong = Notification { code: 6, subcode: 2, data: vec![50, b'a'] };
        assert_eq!(overlong.shutdown_communication(), None);
        let not_utf8 = Notification { code: 6, subcode: 4, data: vec![2, 0xff, 0xfe] };
        assert_eq!(not_utf8.shutdown_communication(), None);
        assert!(not_utf8.to_string().contains("data: 02fffe"));
    }

    #[test]
    fn names_come_from_one_table() {
        assert_eq!(Notification::new(ErrorCode::OpenMessage, 2, vec![]).name(), "OPEN Message Error / Bad Peer AS");
        assert_eq!(Notification::new(ErrorCode::Cease, 42, vec![]).name(), "Cease / subcode 42");
        assert_eq!(
            Notification::new(ErrorCode::FsmError, 1, vec![]).name(),
            "Finite State Machine Error / Receive Unexpected Message in OpenSent State"
        );
    }

    #[test]
    fn too_short_body_is_a_length_error() {
        let e = Notification::decode(&[6]).map_err(Notification::from).unwrap_err();
        assert_eq!((e.code, e.subcode, e.data), (1, 2, vec![0, 20]));
    }

    #[test]
    fn decode_errors_become_their_notification_with_the_rfc_data() {
        let cases = [
            (DecodeError::Header(HeaderError::ConnectionNotSynchronized), (1, 1, vec![])),
            (DecodeError::Header(HeaderError::BadMessageLength(4097)), (1, 2, vec![0x10, 0x01])),
            (DecodeError::Header(HeaderError::BadMessageType(9)), (1, 3, vec![9])),
            (DecodeError::open(OpenSubcode::BadPeerAs), (2, 2, vec![])),
            (
                DecodeError::Update(UpdateSubcode::UnrecognizedWellKnownAttribute, vec![0x40, 99, 0]),
                (3, 2, vec![0x40, 99, 0]),
            ),
            (DecodeError::RouteRefresh(RouteRefreshError::InvalidMessageLength(vec![0xff; 3])), (7, 1, vec![0xff; 3])),
        ];
        for (e, (code, subcode, data)) in cases {
            let text = e.to_string();
            let n = Notification::from(e);
            assert_eq!((n.code, n.subcode, n.data.clone()), (code, subcode, data));
            assert!(text.starts_with(&n.name()), "the one name table: {text}");
        }
        assert_eq!(
            DecodeError::update(UpdateSubcode::MalformedAsPath).to_string(),
            "UPDATE Message Error / Malformed AS_PATH"
        );
    }

    #[test]
    fn a_hard_reset_is_named_after_and_shows_the_text_of_the_cease_it_carries() {
        let inner = Notification::cease(CeaseSubcode::AdministrativeShutdown, Some("maintenance"));
        let mut data = vec![6, 2];
        data.extend_from_slice(&inner.data);
        let hard = Notification::new(ErrorCode::Cease, CeaseSubcode::HardReset as u8, data);
        assert_eq!(hard.encapsulated(), Some(inner));
        assert_eq!(hard.name(), "Cease / Hard Reset (Cease / Administrative Shutdown)");
        assert_eq!(hard.shutdown_communication().as_deref(), Some("maintenance"));
        let bare = Notification::new(ErrorCode::Cease, CeaseSubcode::HardReset as u8, vec![]);
        assert_eq!((bare.encapsulated(), bare.name()), (None, "Cease / Hard Reset".to_string()));
    }
}
