//! UPDATE messages (RFC 4271 §4.3, RFC 4760 MP_REACH/MP_UNREACH): decoding received ones into
//! prefixes plus raw attributes, and building our announcements.
//!
//! Fed by the peer thread (message bodies); emits `ParsedUpdate`s for the RIB. NLRI are decoded
//! here, never by bgpkit-parser: with ADD-PATH off it guesses ADD-PATH when an entry starts
//! with a zero byte, so `0.0.0.0/0, 10/8, 11/8, 12/8` would become one bogus prefix.
//! bgpkit-parser decodes attributes for display (`decode_attrs_for_display`).

use super::frame::{write_header, MsgType, HEADER_LEN, MAX_MESSAGE_LEN};
use super::notify::{ErrorCode, Notification, UpdateSubcode};
use super::open::AS_TRANS;
use crate::prefix::{Family, Prefix};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Path attribute type codes.
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const AS4_PATH: u8 = 17;
}

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// A received UPDATE taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedUpdate {
    /// IPv4 withdrawn routes and MP_UNREACH_NLRI prefixes.
    pub withdrawn: Vec<Prefix>,
    /// IPv4 NLRI and MP_REACH_NLRI prefixes.
    pub announced: Vec<Prefix>,
    /// The path attributes as received, without MP_REACH_NLRI and MP_UNREACH_NLRI.
    pub attrs: Vec<u8>,
    /// The next hop field of an IPv6 unicast MP_REACH_NLRI (16 or 32 bytes).
    pub mp_next_hop: Option<Vec<u8>>,
    /// RFC 4724 §2 End-of-RIB marker.
    pub end_of_rib: Option<Family>,
    /// RFC 7606: the attributes are malformed in a way that makes the announced prefixes
    /// withdrawals; the reason.
    pub treat_as_withdraw: Option<String>,
}

fn update_error(sub: UpdateSubcode) -> Notification {
    Notification::new(ErrorCode::UpdateMessage, sub as u8, vec![])
}

/// Decode a run of NLRI (RFC 4271 §4.3: length in bits, then ceil(len/8) bytes), without any
/// ADD-PATH guessing. Host bits past the length are cleared, as routers do.
pub fn decode_nlri(mut data: &[u8], family: Family, out: &mut Vec<Prefix>) -> Result<(), Notification> {
    let max = match family {
        Family::Ipv4Unicast => 32,
        Family::Ipv6Unicast => 128,
    };
    while let [len, rest @ ..] = data {
        if *len > max {
            return Err(update_error(UpdateSubcode::InvalidNetworkField));
        }
        let n = usize::from(*len).div_ceil(8);
        let bytes = rest.get(..n).ok_or_else(|| update_error(UpdateSubcode::InvalidNetworkField))?;
        let addr = match family {
            Family::Ipv4Unicast => {
                let mut a = [0u8; 4];
                a[..n].copy_from_slice(bytes);
                IpAddr::V4(Ipv4Addr::from(a))
            }
            Family::Ipv6Unicast => {
                let mut a = [0u8; 16];
                a[..n].copy_from_slice(bytes);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        };
        let p = Prefix::new_truncated(addr, *len).map_err(|_| update_error(UpdateSubcode::InvalidNetworkField))?;
        out.push(p);
        data = &rest[n..];
    }
    Ok(())
}

/// One attribute: (flags, type, value, whole encoding).
struct RawAttr<'a> {
    type_code: u8,
    value: &'a [u8],
    whole: &'a [u8],
}

/// Split the path attribute section; a header or length overrunning it is a malformed
/// attribute list (RFC 7606 §4: the session cannot be trusted to parse further).
fn split_attrs(mut data: &[u8]) -> Result<Vec<RawAttr<'_>>, Notification> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (flags, type_code, len, hdr) = match data {
            [f, t, l0, l1, ..] if f & flag::EXTENDED_LENGTH != 0 => {
                (*f, *t, usize::from(u16::from_be_bytes([*l0, *l1])), 4)
            }
            [f, t, l, ..] if f & flag::EXTENDED_LENGTH == 0 => (*f, *t, usize::from(*l), 3),
            _ => return Err(update_error(UpdateSubcode::MalformedAttributeList)),
        };
        let _ = flags;
        let whole = data.get(..hdr + len).ok_or_else(|| update_error(UpdateSubcode::MalformedAttributeList))?;
        out.push(RawAttr { type_code, value: &whole[hdr..], whole });
        data = &data[hdr + len..];
    }
    Ok(out)
}

/// Take a received UPDATE body (after the header) apart.
pub fn parse_update(body: &[u8], _four_octet_as: bool) -> Result<ParsedUpdate, Notification> {
    let malformed = || update_error(UpdateSubcode::MalformedAttributeList);
    let [w0, w1, rest @ ..] = body else { return Err(malformed()) };
    let wlen = usize::from(u16::from_be_bytes([*w0, *w1]));
    let withdrawn_raw = rest.get(..wlen).ok_or_else(malformed)?;
    let rest = &rest[wlen..];
    let [a0, a1, rest @ ..] = rest else { return Err(malformed()) };
    let alen = usize::from(u16::from_be_bytes([*a0, *a1]));
    let attrs_raw = rest.get(..alen).ok_or_else(malformed)?;
    let nlri_raw = &rest[alen..];

    let mut u = ParsedUpdate::default();
    decode_nlri(withdrawn_raw, Family::Ipv4Unicast, &mut u.withdrawn)?;
    decode_nlri(nlri_raw, Family::Ipv4Unicast, &mut u.announced)?;

    let attrs = split_attrs(attrs_raw)?;
    let mut seen = [false; 256];
    let mut mp_unreach_family = None;
    let mut only_mp_unreach = !attrs.is_empty();
    for a in &attrs {
        if seen[usize::from(a.type_code)] && matches!(a.type_code, attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI) {
            // RFC 7606 §3(g): more than one MP_REACH/MP_UNREACH resets the session.
            return Err(malformed());
        }
        seen[usize::from(a.type_code)] = true;
        match a.type_code {
            attr::MP_REACH_NLRI => {
                only_mp_unreach = false;
                parse_mp_reach(a.value, &mut u)?;
            }
            attr::MP_UNREACH_NLRI => {
                let [f0, f1, safi, nlri @ ..] = a.value else { return Err(malformed()) };
                let fam = Family::from_afi_safi(u16::from_be_bytes([*f0, *f1]), *safi);
                if let Some(fam) = fam {
                    decode_nlri(nlri, fam, &mut u.withdrawn)?;
                    if nlri.is_empty() {
                        mp_unreach_family = Some(fam);
                    }
                }
            }
            _ => {
                only_mp_unreach = false;
                u.attrs.extend_from_slice(a.whole);
            }
        }
    }
    // RFC 4724 §2: End-of-RIB is an empty UPDATE (IPv4) or one with only an empty MP_UNREACH.
    if body.len() == 4 {
        u.end_of_rib = Some(Family::Ipv4Unicast);
    } else if only_mp_unreach && u.withdrawn.is_empty() && u.announced.is_empty() {
        u.end_of_rib = mp_unreach_family;
    }
    if !u.announced.is_empty() {
        let v4_nlri = !nlri_raw.is_empty();
        let mut missing = Vec::new();
        if !seen[usize::from(attr::ORIGIN)] {
            missing.push("ORIGIN");
        }
        if !seen[usize::from(attr::AS_PATH)] {
            missing.push("AS_PATH");
        }
        if v4_nlri && !seen[usize::from(attr::NEXT_HOP)] {
            missing.push("NEXT_HOP");
        }
        if !missing.is_empty() {
            // RFC 7606 §3(d): a missing well-known mandatory attribute is treat-as-withdraw.
            u.treat_as_withdraw = Some(format!("missing well-known attribute {}", missing.join(", ")));
        }
    }
    Ok(u)
}

/// MP_REACH_NLRI (RFC 4760 §3): AFI, SAFI, next hop length and next hop, reserved, NLRI.
fn parse_mp_reach(v: &[u8], u: &mut ParsedUpdate) -> Result<(), Notification> {
    let malformed = || update_error(UpdateSubcode::MalformedAttributeList);
    let [f0, f1, safi, nh_len, rest @ ..] = v else { return Err(malformed()) };
    let nh_len = usize::from(*nh_len);
    let nh = rest.get(..nh_len).ok_or_else(malformed)?;
    let rest = &rest[nh_len..];
    let [_reserved, nlri @ ..] = rest else { return Err(malformed()) };
    match Family::from_afi_safi(u16::from_be_bytes([*f0, *f1]), *safi) {
        Some(Family::Ipv6Unicast) => {
            if nh_len != 16 && nh_len != 32 {
                // RFC 7606 §7.11: a next hop length we cannot use; the NLRI are still readable,
                // so the prefixes are treated as withdrawn.
                decode_nlri(nlri, Family::Ipv6Unicast, &mut u.withdrawn)?;
                u.treat_as_withdraw = Some(format!("MP_REACH_NLRI next hop length {nh_len}"));
                return Ok(());
            }
            u.mp_next_hop = Some(nh.to_vec());
            decode_nlri(nlri, Family::Ipv6Unicast, &mut u.announced)
        }
        Some(Family::Ipv4Unicast) => {
            if nh_len == 4 {
                u.mp_next_hop = None;
                // Keep an IPv4 next hop as a NEXT_HOP attribute so the stored set is uniform.
                u.attrs.extend_from_slice(&[flag::TRANSITIVE, attr::NEXT_HOP, 4]);
                u.attrs.extend_from_slice(nh);
            }
            decode_nlri(nlri, Family::Ipv4Unicast, &mut u.announced)
        }
        None => Ok(()), // a family we do not carry: ignored
    }
}

/// The attributes of the routes we announce: ORIGIN is always IGP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRoute {
    pub as_path: Vec<u32>,
    pub next_hop: IpAddr,
    pub local_pref: Option<u32>,
    pub link_local_next_hop: Option<Ipv6Addr>,
}

fn push_attr(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, code]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags, code, value.len() as u8]);
    }
    out.extend_from_slice(value);
}

/// AS_SEQUENCE segments of at most 255 ASNs, 2 or 4 octets each.
fn encode_as_path(path: &[u32], four_octet: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for seg in path.chunks(255) {
        v.push(2); // AS_SEQUENCE
        v.push(seg.len() as u8);
        for asn in seg {
            if four_octet {
                v.extend_from_slice(&asn.to_be_bytes());
            } else {
                v.extend_from_slice(&u16::try_from(*asn).unwrap_or(AS_TRANS).to_be_bytes());
            }
        }
    }
    v
}

/// Common attributes (without MP_REACH): ORIGIN, AS_PATH (and AS4_PATH towards a 2-octet
/// peer, RFC 6793 §4.2.2), NEXT_HOP for IPv4, LOCAL_PREF.
fn common_attrs(family: Family, route: &OutRoute, four_octet: bool) -> Vec<u8> {
    let mut a = Vec::new();
    push_attr(&mut a, flag::TRANSITIVE, attr::ORIGIN, &[0]);
    push_attr(&mut a, flag::TRANSITIVE, attr::AS_PATH, &encode_as_path(&route.as_path, four_octet));
    if !four_octet && route.as_path.iter().any(|&x| x > 65535) {
        push_attr(&mut a, flag::OPTIONAL | flag::TRANSITIVE, attr::AS4_PATH, &encode_as_path(&route.as_path, true));
    }
    if let (Family::Ipv4Unicast, IpAddr::V4(nh)) = (family, route.next_hop) {
        push_attr(&mut a, flag::TRANSITIVE, attr::NEXT_HOP, &nh.octets());
    }
    if let Some(lp) = route.local_pref {
        push_attr(&mut a, flag::TRANSITIVE, attr::LOCAL_PREF, &lp.to_be_bytes());
    }
    a
}

fn finish(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + 4 + withdrawn.len() + attrs.len() + nlri.len();
    let mut m = Vec::with_capacity(len);
    write_header(&mut m, len, MsgType::Update);
    m.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    m.extend_from_slice(withdrawn);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(attrs);
    m.extend_from_slice(nlri);
    m
}

/// Pack prefixes into runs whose NLRI encoding fits `room` bytes each.
fn pack(prefixes: &[Prefix], room: usize) -> Vec<Vec<u8>> {
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for p in prefixes {
        if !cur.is_empty() && cur.len() + p.nlri_len() > room {
            runs.push(std::mem::take(&mut cur));
        }
        p.write_nlri(&mut cur);
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// UPDATEs announcing `prefixes` (all of `family`) with shared attributes, each at most 4096
/// bytes. The next hop must be of the prefixes' family.
pub fn build_announcements(
    family: Family,
    prefixes: &[Prefix],
    route: &OutRoute,
    four_octet_as: bool,
) -> Result<Vec<Vec<u8>>, String> {
    if let Some(p) = prefixes.iter().find(|p| p.family() != family) {
        return Err(format!("{p} is not {family}"));
    }
    if Family::of_addr(&route.next_hop) != family {
        return Err(format!("next hop {} cannot be used for {family}", route.next_hop));
    }
    let attrs = common_attrs(family, route, four_octet_as);
    let mut out = Vec::new();
    match family {
        Family::Ipv4Unicast => {
            let room = MAX_MESSAGE_LEN - HEADER_LEN - 4 - attrs.len();
            for nlri in pack(prefixes, room) {
                out.push(finish(&[], &attrs, &nlri));
            }
        }
        Family::Ipv6Unicast => {
            let IpAddr::V6(nh) = route.next_hop else { return Err("IPv6 needs an IPv6 next hop".into()) };
            let mut mp_head = vec![0, 2, 1];
            match route.link_local_next_hop {
                Some(ll) => {
                    mp_head.push(32);
                    mp_head.extend_from_slice(&nh.octets());
                    mp_head.extend_from_slice(&ll.octets());
                }
                None => {
                    mp_head.push(16);
                    mp_head.extend_from_slice(&nh.octets());
                }
            }
            mp_head.push(0); // reserved
                             // MP_REACH header is 4 bytes with the extended length bit, to be safe.
            let room = MAX_MESSAGE_LEN - HEADER_LEN - 4 - attrs.len() - 4 - mp_head.len();
            for nlri in pack(prefixes, room) {
                let mut value = mp_head.clone();
                value.extend_from_slice(&nlri);
                let mut all = Vec::with_capacity(attrs.len() + value.len() + 4);
                push_attr(&mut all, flag::OPTIONAL, attr::MP_REACH_NLRI, &value);
                all.extend_from_slice(&attrs);
                out.push(finish(&[], &all, &[]));
            }
        }
    }
    Ok(out)
}

/// UPDATEs withdrawing `prefixes` (all of `family`), each at most 4096 bytes.
pub fn build_withdrawals(family: Family, prefixes: &[Prefix]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match family {
        Family::Ipv4Unicast => {
            for w in pack(prefixes, MAX_MESSAGE_LEN - HEADER_LEN - 4) {
                out.push(finish(&w, &[], &[]));
            }
        }
        Family::Ipv6Unicast => {
            for w in pack(prefixes, MAX_MESSAGE_LEN - HEADER_LEN - 4 - 4 - 3) {
                let mut value = vec![0, 2, 1];
                value.extend_from_slice(&w);
                let mut a = Vec::new();
                push_attr(&mut a, flag::OPTIONAL, attr::MP_UNREACH_NLRI, &value);
                out.push(finish(&[], &a, &[]));
            }
        }
    }
    out
}

/// RFC 4724 §2 End-of-RIB.
pub fn end_of_rib(family: Family) -> Vec<u8> {
    match family {
        Family::Ipv4Unicast => finish(&[], &[], &[]),
        Family::Ipv6Unicast => {
            let mut a = Vec::new();
            push_attr(&mut a, flag::OPTIONAL, attr::MP_UNREACH_NLRI, &[0, 2, 1]);
            finish(&[], &a, &[])
        }
    }
}

/// Attributes decoded for people (`focl rib in`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrView {
    pub origin: Option<String>,
    pub as_path: String,
    pub next_hop: Option<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
}

/// Decode stored attributes for display with bgpkit-parser. Never fails: what cannot be
/// decoded is left out.
pub fn decode_attrs_for_display(attrs: &[u8], mp_next_hop: Option<&[u8]>, four_octet_as: bool) -> AttrView {
    use bgpkit_parser::models::{AsnLength, AttributeValue, Origin};
    let asn_len = if four_octet_as { AsnLength::Bits32 } else { AsnLength::Bits16 };
    let mut view = AttrView::default();
    let parsed = bgpkit_parser::parser::bgp::attributes::parse_attributes(
        bytes::Bytes::copy_from_slice(attrs),
        &asn_len,
        false,
        None,
        None,
        None,
    );
    if let Ok(parsed) = parsed {
        // AS_PATH merged with AS4_PATH for 2-octet sessions (RFC 6793 §4.2.3).
        if let Some(path) = parsed.effective_as_path() {
            view.as_path = path.to_string();
        }
        for a in parsed.iter() {
            match a {
                AttributeValue::Origin(o) => {
                    view.origin = Some(
                        match o {
                            Origin::IGP => "igp",
                            Origin::EGP => "egp",
                            _ => "incomplete",
                        }
                        .to_string(),
                    )
                }
                AttributeValue::NextHop(nh) => view.next_hop = Some(nh.to_string()),
                AttributeValue::MultiExitDiscriminator(m) => view.med = Some(*m),
                AttributeValue::LocalPreference(l) => view.local_pref = Some(*l),
                AttributeValue::Communities(cs) => {
                    view.communities.extend(cs.iter().map(community_text));
                }
                AttributeValue::LargeCommunities(ls) => {
                    for l in ls {
                        view.large_communities
                            .push(format!("{}:{}:{}", l.global_admin, l.local_data[0], l.local_data[1]));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(nh) = mp_next_hop.and_then(|b| b.get(..16)) {
        let mut a = [0u8; 16];
        a.copy_from_slice(nh);
        view.next_hop = Some(Ipv6Addr::from(a).to_string());
    }
    view
}

fn community_text(c: &bgpkit_parser::models::Community) -> String {
    use bgpkit_parser::models::Community;
    match c {
        Community::NoExport => "no-export".into(),
        Community::NoAdvertise => "no-advertise".into(),
        Community::NoExportSubConfed => "no-export-subconfed".into(),
        Community::Custom(asn, v) => format!("{}:{v}", asn.to_u32()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn body(msg: &[u8]) -> &[u8] {
        &msg[HEADER_LEN..]
    }

    fn raw_update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        finish(withdrawn, attrs, nlri)
    }

    fn v4_attrs() -> Vec<u8> {
        let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea];
        a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 2]);
        a
    }

    #[test]
    fn default_route_first_is_four_prefixes_not_an_add_path_guess() {
        let nlri = [0, 8, 10, 8, 11, 8, 12];
        let m = raw_update(&[], &v4_attrs(), &nlri);
        let u = parse_update(body(&m), true).unwrap();
        assert_eq!(u.announced, vec![p("0.0.0.0/0"), p("10.0.0.0/8"), p("11.0.0.0/8"), p("12.0.0.0/8")]);
        assert_eq!(u.attrs, v4_attrs());
        let m = raw_update(&nlri, &[], &[]);
        let u = parse_update(body(&m), true).unwrap();
        assert_eq!(u.withdrawn.len(), 4);
        assert_eq!(u.withdrawn[0], p("0.0.0.0/0"));
    }

    #[test]
    fn default_route_first_in_mp_reach_and_unreach() {
        let mut mp = vec![0, 2, 1, 16];
        mp.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        mp.push(0);
        mp.extend_from_slice(&[0, 32, 0x20, 0x01, 0x0d, 0xb8, 16, 0x20, 0x02]);
        let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0];
        attrs.extend_from_slice(&[0x80, 14, mp.len() as u8]);
        attrs.extend_from_slice(&mp);
        let u = parse_update(body(&raw_update(&[], &attrs, &[])), true).unwrap();
        assert_eq!(u.announced, vec![p("::/0"), p("2001:db8::/32"), p("2002::/16")]);
        assert_eq!(u.attrs, vec![0x40, 1, 1, 0, 0x40, 2, 0], "MP_REACH is taken out");
        assert_eq!(u.mp_next_hop.as_deref().map(|b| b.len()), Some(16));
        assert_eq!(u.treat_as_withdraw, None);
        let un = [0x80, 15, 6, 0, 2, 1, 0, 8, 0x20];
        let u = parse_update(body(&raw_update(&[], &un, &[])), true).unwrap();
        assert_eq!(u.withdrawn, vec![p("::/0"), p("2000::/8")]);
        assert_eq!(u.end_of_rib, None);
    }

    #[test]
    fn end_of_rib_both_families() {
        let u = parse_update(body(&end_of_rib(Family::Ipv4Unicast)), true).unwrap();
        assert_eq!(u.end_of_rib, Some(Family::Ipv4Unicast));
        let u = parse_update(body(&end_of_rib(Family::Ipv6Unicast)), true).unwrap();
        assert_eq!(u.end_of_rib, Some(Family::Ipv6Unicast));
        assert!(u.withdrawn.is_empty() && u.announced.is_empty());
    }

    #[test]
    fn structural_errors_reset_with_the_right_subcode() {
        // Attribute length overruns the section.
        let m = raw_update(&[], &[0x40, 1, 9, 0], &[]);
        assert_eq!(parse_update(body(&m), true).unwrap_err().subcode, 1);
        // Withdrawn length overruns the message.
        assert_eq!(parse_update(&[0, 9, 0, 0], true).unwrap_err().subcode, 1);
        // NLRI overruns its field, or is longer than 32 bits.
        let m = raw_update(&[], &v4_attrs(), &[24, 10, 0]);
        assert_eq!(parse_update(body(&m), true).unwrap_err().subcode, 10);
        let m = raw_update(&[], &v4_attrs(), &[33, 10, 0, 0, 0, 0]);
        assert_eq!(parse_update(body(&m), true).unwrap_err().subcode, 10);
    }

    #[test]
    fn missing_mandatory_attribute_is_treat_as_withdraw() {
        let m = raw_update(&[], &[0x40, 1, 1, 0], &[8, 10]);
        let u = parse_update(body(&m), true).unwrap();
        assert_eq!(u.treat_as_withdraw.as_deref(), Some("missing well-known attribute AS_PATH, NEXT_HOP"));
    }

    #[test]
    fn host_bits_are_cleared() {
        let m = raw_update(&[], &v4_attrs(), &[24, 10, 1, 2, 0]);
        // length 24 with 3 bytes, then a /0: trailing garbage bits would show up in byte 3
        let u = parse_update(body(&m), true).unwrap();
        assert_eq!(u.announced[0], p("10.1.2.0/24"));
        let m = raw_update(&[], &v4_attrs(), &[7, 0xff]);
        assert_eq!(parse_update(body(&m), true).unwrap().announced, vec![p("254.0.0.0/7")]);
    }

    fn route(nh: &str) -> OutRoute {
        OutRoute { as_path: vec![65001], next_hop: nh.parse().unwrap(), local_pref: None, link_local_next_hop: None }
    }

    #[test]
    fn announcements_round_trip_through_our_parser_and_bgpkit() {
        use bgpkit_parser::models::{AsnLength, BgpMessage};
        let v4 = [p("203.0.113.0/24"), p("198.51.100.0/24")];
        let msgs = build_announcements(Family::Ipv4Unicast, &v4, &route("192.0.2.1"), true).unwrap();
        assert_eq!(msgs.len(), 1);
        let u = parse_update(body(&msgs[0]), true).unwrap();
        assert_eq!(u.announced, v4.to_vec());
        let view = decode_attrs_for_display(&u.attrs, None, true);
        assert_eq!(
            (view.origin.as_deref(), view.as_path.as_str(), view.next_hop.as_deref()),
            (Some("igp"), "65001", Some("192.0.2.1"))
        );
        let mut b = bytes::Bytes::copy_from_slice(&msgs[0]);
        let BgpMessage::Update(theirs) =
            bgpkit_parser::parser::bgp::messages::parse_bgp_message(&mut b, false, &AsnLength::Bits32).unwrap()
        else {
            panic!("not an UPDATE")
        };
        assert_eq!(theirs.announced_prefixes.len(), 2);

        let v6 = [p("2001:db8:1000::/48")];
        let msgs = build_announcements(Family::Ipv6Unicast, &v6, &route("2001:db8::1"), true).unwrap();
        let u = parse_update(body(&msgs[0]), true).unwrap();
        assert_eq!(u.announced, v6.to_vec());
        assert_eq!(
            decode_attrs_for_display(&u.attrs, u.mp_next_hop.as_deref(), true).next_hop.as_deref(),
            Some("2001:db8::1")
        );
        let mut b = bytes::Bytes::copy_from_slice(&msgs[0]);
        let BgpMessage::Update(theirs) =
            bgpkit_parser::parser::bgp::messages::parse_bgp_message(&mut b, false, &AsnLength::Bits32).unwrap()
        else {
            panic!("not an UPDATE")
        };
        assert!(theirs.attributes.get_reachable_nlri().is_some_and(|r| r.prefixes.len() == 1));
        assert!(build_announcements(Family::Ipv6Unicast, &v6, &route("192.0.2.1"), true).is_err());
    }

    #[test]
    fn many_prefixes_are_packed_into_messages_of_at_most_4096_bytes() {
        let v4: Vec<Prefix> =
            (0..2000u32).map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from((10 << 24) | (i << 8))), 24).unwrap()).collect();
        let v6: Vec<Prefix> = (0..2000u128)
            .map(|i| Prefix::new(IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 80))), 48).unwrap())
            .collect();
        for (fam, pfx, nh) in [(Family::Ipv4Unicast, &v4, "192.0.2.1"), (Family::Ipv6Unicast, &v6, "2001:db8::1")] {
            let msgs = build_announcements(fam, pfx, &route(nh), false).unwrap();
            assert!(msgs.len() > 1);
            let mut all = Vec::new();
            for m in &msgs {
                assert!(m.len() <= MAX_MESSAGE_LEN, "{}", m.len());
                all.extend(parse_update(body(m), false).unwrap().announced);
            }
            assert_eq!(&all, pfx);
            let mut gone = Vec::new();
            for m in build_withdrawals(fam, pfx) {
                assert!(m.len() <= MAX_MESSAGE_LEN);
                gone.extend(parse_update(body(&m), false).unwrap().withdrawn);
            }
            assert_eq!(&gone, pfx);
        }
    }

    #[test]
    fn two_octet_sessions_get_as_trans_and_as4_path() {
        let r = OutRoute { as_path: vec![4_200_000_000], ..route("192.0.2.1") };
        let msgs = build_announcements(Family::Ipv4Unicast, &[p("203.0.113.0/24")], &r, false).unwrap();
        let u = parse_update(body(&msgs[0]), false).unwrap();
        // AS_PATH with AS_TRANS, then AS4_PATH with the real AS.
        assert!(u.attrs.windows(4).any(|w| w == [2, 1, 0x5b, 0xa0]));
        assert!(u.attrs.windows(2).any(|w| w == [0xc0, 17]));
    }

    #[test]
    fn display_decoding_survives_garbage() {
        let v = decode_attrs_for_display(&[0xff, 0xff, 0xff], None, true);
        assert_eq!(v.as_path, "");
        let mut attrs = v4_attrs();
        attrs.extend_from_slice(&[
            0xc0, 8, 4, 0xfd, 0xe8, 0, 100, 0xc0, 32, 12, 0, 0, 0xfd, 0xe8, 0, 0, 0, 1, 0, 0, 0, 2,
        ]);
        attrs.extend_from_slice(&[0x80, 4, 4, 0, 0, 0, 5]);
        let v = decode_attrs_for_display(&attrs, None, true);
        assert_eq!(v.communities, vec!["65000:100"]);
        assert_eq!(v.large_communities, vec!["65000:1:2"]);
        assert_eq!(v.med, Some(5));
        assert_eq!(v.as_path, "65002");
    }
}
