//! Message framing (RFC 4271 §4.1, §6.1): the 19-byte header, checked before any parser
//! sees a message, and the small fixed messages (KEEPALIVE, ROUTE-REFRESH).
//!
//! The peer thread feeds `Framer` with bytes read from its socket and takes whole raw
//! messages (header included, as needed for MRT archiving) out of it.

use super::notify::{DecodeError, HeaderError, RouteRefreshError};
use crate::prefix::Family;
use bytes::{Buf, Bytes, BytesMut};

pub const HEADER_LEN: usize = 19;
/// RFC 4271 §4.1 maximum message size.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// RFC 8654 maximum with the Extended Message capability.
pub const MAX_EXTENDED_LEN: usize = 65535;

/// Message types (RFC 4271 §4.1, RFC 2918).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MsgType {
    pub fn from_u8(t: u8) -> Option<MsgType> {
        match t {
            1 => Some(MsgType::Open),
            2 => Some(MsgType::Update),
            3 => Some(MsgType::Notification),
            4 => Some(MsgType::Keepalive),
            5 => Some(MsgType::RouteRefresh),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MsgType::Open => "OPEN",
            MsgType::Update => "UPDATE",
            MsgType::Notification => "NOTIFICATION",
            MsgType::Keepalive => "KEEPALIVE",
            MsgType::RouteRefresh => "ROUTE-REFRESH",
        }
    }
}

fn bad_length(len: u16) -> DecodeError {
    DecodeError::Header(HeaderError::BadMessageLength(len))
}

/// Check one header: marker all ones (1/1), length 19..=max_len (1/2), known type (1/3), and
/// the per-type length rules (1/2): OPEN >= 29, UPDATE >= 23, NOTIFICATION >= 21,
/// KEEPALIVE == 19. A ROUTE-REFRESH of the wrong length passes: RFC 7313 §5 makes that a
/// ROUTE-REFRESH Message Error / Invalid Message Length (7/1), given by `decode_route_refresh`.
pub fn check_header(hdr: &[u8], max_len: usize) -> Result<(MsgType, usize), DecodeError> {
    let Some(hdr) = hdr.get(..HEADER_LEN) else {
        return Err(bad_length(hdr.len() as u16));
    };
    if hdr[..16].iter().any(|&b| b != 0xff) {
        return Err(DecodeError::Header(HeaderError::ConnectionNotSynchronized));
    }
    let raw_len = u16::from_be_bytes([hdr[16], hdr[17]]);
    let len = usize::from(raw_len);
    if !(HEADER_LEN..=max_len).contains(&len) {
        return Err(bad_length(raw_len));
    }
    let Some(ty) = MsgType::from_u8(hdr[18]) else {
        return Err(DecodeError::Header(HeaderError::BadMessageType(hdr[18])));
    };
    let ok = match ty {
        // RFC 8654 §4: OPEN and KEEPALIVE stay at most 4096 bytes with extended messages.
        MsgType::Open => (29..=MAX_MESSAGE_LEN).contains(&len),
        MsgType::Update => len >= 23,
        MsgType::Notification => len >= 21,
        MsgType::Keepalive => len == HEADER_LEN,
        MsgType::RouteRefresh => true,
    };
    if !ok {
        return Err(bad_length(raw_len));
    }
    Ok((ty, len))
}

/// Bytes from a stream in, whole checked messages out.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    max_len: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    pub fn new() -> Framer {
        Framer { buf: BytesMut::with_capacity(8192), max_len: MAX_MESSAGE_LEN }
    }

    /// 4096 until the Extended Message capability (RFC 8654) is negotiated.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len.clamp(MAX_MESSAGE_LEN, MAX_EXTENDED_LEN);
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether `next_message` has something to say now: a whole message, or a bad header.
    /// Part of a message is not enough (a peer stalled mid-message is not busy).
    pub fn has_message(&self) -> bool {
        let Some(hdr) = self.buf.get(..HEADER_LEN) else { return false };
        match check_header(hdr, self.max_len) {
            Ok((_, len)) => self.buf.len() >= len,
            Err(_) => true,
        }
    }

    /// The next whole message (header included), `None` if more bytes are needed, or the
    /// NOTIFICATION to send for a bad header.
    pub fn next_message(&mut self) -> Result<Option<(MsgType, Bytes)>, DecodeError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let (ty, len) = check_header(&self.buf[..HEADER_LEN], self.max_len)?;
        if self.buf.len() < len {
            return Ok(None);
        }
        let msg = self.buf.split_to(len).freeze();
        if self.buf.is_empty() {
            // Reuse the allocation rather than letting it creep.
            self.buf.clear();
        } else if self.buf.capacity() > 4 * MAX_EXTENDED_LEN && self.buf.len() < MAX_EXTENDED_LEN {
            let rest = self.buf.split().freeze();
            self.buf = BytesMut::with_capacity(8192);
            self.buf.extend_from_slice(rest.chunk());
        }
        Ok(Some((ty, msg)))
    }
}

/// Append a header for a message of `len` bytes in all.
pub fn write_header(out: &mut Vec<u8>, len: usize, ty: MsgType) {
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(ty as u8);
}

pub fn keepalive() -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    write_header(&mut out, HEADER_LEN, MsgType::Keepalive);
    out
}

/// ROUTE-REFRESH for one family (RFC 2918 §3: AFI, reserved, SAFI).
pub fn route_refresh(family: Family) -> Vec<u8> {
    route_refresh_of(family, RefreshKind::Request)
}

/// What a ROUTE-REFRESH message is: the byte after the AFI, "Reserved" in RFC 2918 and the
/// Message Subtype in RFC 7313 §3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RefreshKind {
    /// A request to re-advertise the Adj-RIB-Out (RFC 2918).
    Request = 0,
    /// Beginning of Route Refresh (BoRR, RFC 7313 §4).
    Begin = 1,
    /// End of Route Refresh (EoRR, RFC 7313 §4).
    End = 2,
}

/// A ROUTE-REFRESH of any kind for `family`.
pub fn route_refresh_of(family: Family, kind: RefreshKind) -> Vec<u8> {
    let mut out = Vec::with_capacity(23);
    write_header(&mut out, 23, MsgType::RouteRefresh);
    out.extend_from_slice(&family.afi().to_be_bytes());
    out.push(kind as u8);
    out.push(family.safi());
    out
}

/// The family and kind of a ROUTE-REFRESH; `None` for a family we do not carry (RFC 2918
/// §4: ignore) and for a subtype other than 0, 1 and 2 (RFC 7313 §5: ignore).
pub fn decode_route_refresh(body: &[u8]) -> Result<Option<(Family, RefreshKind)>, DecodeError> {
    match body {
        [a0, a1, subtype, safi] => {
            let kind = match subtype {
                0 => RefreshKind::Request,
                1 => RefreshKind::Begin,
                2 => RefreshKind::End,
                _ => return Ok(None),
            };
            Ok(Family::from_afi_safi(u16::from_be_bytes([*a0, *a1]), *safi).map(|f| (f, kind)))
        }
        // RFC 7313 §5: a bad length is ROUTE-REFRESH Message Error / Invalid Message Length.
        _ => {
            let mut data = vec![0xff; 16];
            data.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
            data.push(MsgType::RouteRefresh as u8);
            data.extend_from_slice(body);
            Err(DecodeError::RouteRefresh(RouteRefreshError::InvalidMessageLength(data)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::notify::Notification;

    fn header(len: u16, ty: u8) -> Vec<u8> {
        let mut h = vec![0xff; 16];
        h.extend_from_slice(&len.to_be_bytes());
        h.push(ty);
        h
    }

    #[test]
    fn keepalive_and_route_refresh_bytes() {
        assert_eq!(keepalive(), header(19, 4));
        let mut rr = header(23, 5);
        rr.extend_from_slice(&[0, 2, 0, 1]);
        assert_eq!(route_refresh(Family::Ipv6Unicast), rr);
        assert_eq!(decode_route_refresh(&[0, 1, 0, 1]), Ok(Some((Family::Ipv4Unicast, RefreshKind::Request))));
        assert_eq!(decode_route_refresh(&[0, 25, 0, 70]), Ok(None), "EVPN is ignored");
    }

    #[test]
    fn borr_and_eorr_are_subtypes_1_and_2_and_other_subtypes_are_ignored() {
        let mut borr = header(23, 5);
        borr.extend_from_slice(&[0, 2, 1, 1]);
        assert_eq!(route_refresh_of(Family::Ipv6Unicast, RefreshKind::Begin), borr);
        assert_eq!(decode_route_refresh(&borr[19..]), Ok(Some((Family::Ipv6Unicast, RefreshKind::Begin))));
        let eorr = route_refresh_of(Family::Ipv4Unicast, RefreshKind::End);
        assert_eq!(eorr[21], 2);
        assert_eq!(decode_route_refresh(&eorr[19..]), Ok(Some((Family::Ipv4Unicast, RefreshKind::End))));
        assert_eq!(decode_route_refresh(&[0, 1, 3, 1]), Ok(None), "RFC 7313 §5: subtype 3 is ignored");
        assert_eq!(decode_route_refresh(&[0, 1, 255, 1]), Ok(None));
    }

    #[test]
    fn header_errors_carry_the_rfc_data() {
        let mut bad_marker = header(19, 4);
        bad_marker[3] = 0;
        assert_eq!(check_header(&bad_marker, 4096).map_err(Notification::from).unwrap_err().encode()[19..], [1, 1]);
        assert_eq!(
            check_header(&header(18, 4), 4096).map_err(Notification::from).unwrap_err().encode()[19..],
            [1, 2, 0, 18]
        );
        assert_eq!(
            check_header(&header(4097, 2), 4096).map_err(Notification::from).unwrap_err().encode()[19..],
            [1, 2, 0x10, 0x01]
        );
        assert_eq!(
            check_header(&header(19, 9), 4096).map_err(Notification::from).unwrap_err().encode()[19..],
            [1, 3, 9]
        );
        assert_eq!(
            check_header(&header(20, 4), 4096).map_err(Notification::from).unwrap_err().encode()[19..],
            [1, 2, 0, 20],
            "KEEPALIVE with a body"
        );
        assert_eq!(
            check_header(&header(28, 1), 4096).map_err(Notification::from).unwrap_err().encode()[19..],
            [1, 2, 0, 28],
            "short OPEN"
        );
        assert_eq!(check_header(&header(24, 5), 4096), Ok((MsgType::RouteRefresh, 24)), "7/1 later, RFC 7313 §5");
        assert_eq!(check_header(&header(22, 2), 4096).map_err(Notification::from).unwrap_err().subcode, 2);
        assert_eq!(check_header(&header(4097, 2), 65535), Ok((MsgType::Update, 4097)));
    }

    #[test]
    fn framer_yields_whole_messages_whatever_the_split() {
        let mut stream = keepalive();
        stream.extend_from_slice(&route_refresh(Family::Ipv4Unicast));
        stream.extend_from_slice(&keepalive());
        for cut in 0..stream.len() {
            let mut f = Framer::new();
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                f.feed(part);
                while let Some((ty, raw)) = f.next_message().unwrap() {
                    got.push((ty, raw.len()));
                }
            }
            assert_eq!(got, vec![(MsgType::Keepalive, 19), (MsgType::RouteRefresh, 23), (MsgType::Keepalive, 19)]);
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn extended_messages_allow_long_updates_but_never_a_long_open() {
        assert_eq!(check_header(&header(36950, 2), MAX_EXTENDED_LEN), Ok((MsgType::Update, 36950)));
        assert_eq!(
            check_header(&header(36950, 2), MAX_MESSAGE_LEN).map_err(Notification::from).unwrap_err().subcode,
            2
        );
        let long_open = check_header(&header(5000, 1), MAX_EXTENDED_LEN).map_err(Notification::from);
        assert_eq!(long_open.unwrap_err().encode()[19..], [1, 2, 0x13, 0x88], "RFC 8654 §4");
        let mut f = Framer::new();
        f.set_max_len(MAX_EXTENDED_LEN);
        let mut msg = header(36950, 2);
        msg.resize(36950, 0);
        f.feed(&msg);
        assert_eq!(f.next_message().unwrap().map(|(t, m)| (t, m.len())), Some((MsgType::Update, 36950)));
    }

    #[test]
    fn framer_reports_a_bad_header_before_the_body_arrives() {
        let mut f = Framer::new();
        f.feed(&header(5000, 2));
        assert_eq!(f.next_message().map_err(Notification::from).unwrap_err().subcode, 2);
    }

    #[test]
    fn a_route_refresh_of_the_wrong_length_is_a_route_refresh_error_not_a_header_error() {
        for body in [&[0u8, 1, 0, 1, 9][..], &[0, 1, 0][..], &[][..]] {
            let mut m = header((HEADER_LEN + body.len()) as u16, 5);
            m.extend_from_slice(body);
            let mut f = Framer::new();
            f.feed(&m);
            assert!(f.has_message());
            let (ty, raw) = f.next_message().expect("framed").expect("whole");
            assert_eq!(ty, MsgType::RouteRefresh);
            let n = decode_route_refresh(&raw[HEADER_LEN..]).map_err(Notification::from).unwrap_err();
            // RFC 7313 §5: 7/1, the data is the complete ROUTE-REFRESH message.
            assert_eq!((n.code, n.subcode, n.data.as_slice()), (7, 1, &m[..]));
            assert_eq!(n.name(), "ROUTE-REFRESH Message Error / Invalid Message Length");
        }
    }

    #[test]
    fn part_of_a_message_is_not_a_message() {
        let mut f = Framer::new();
        f.feed(&header(4096, 2));
        f.feed(&[0; 10]);
        assert!(!f.has_message(), "a header and 10 body bytes");
        let mut bad = header(19, 4);
        bad[0] = 0;
        f = Framer::new();
        f.feed(&bad);
        assert!(f.has_message(), "a bad header is something to report");
    }
}
