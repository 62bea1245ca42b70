//! UPDATE messages (RFC 4271 §4.3, RFC 4760 MP_REACH/MP_UNREACH): decoding received ones into
//! prefixes plus raw attributes, and building our announcements.
//!
//! Fed by the peer thread (message bodies); emits `ParsedUpdate`s for the RIB. NLRI are decoded
//! here, never by bgpkit-parser: with ADD-PATH off it guesses ADD-PATH when an entry starts
//! with a zero byte, so `0.0.0.0/0, 10/8, 11/8, 12/8` would become one bogus prefix.
//! bgpkit-parser decodes attributes for display (`decode_attrs_for_display`).
//! What each attribute type must look like, and what RFC 7606 does when it does not, is the
//! table in `wire::attr`; this module applies it message by message.

use super::aspath::{self, AsWidth};
use super::attr::{
    lookup, push_attr, split_attrs, widen_as_numbers, AttrDesc, Bad, CheckFn, OnMalformed, Presence, RawAttr, KNOWN,
};
use super::frame::{write_header, MsgType, HEADER_LEN, MAX_EXTENDED_LEN, MAX_MESSAGE_LEN};
use super::notify::{DecodeError, UpdateSubcode};
use crate::prefix::{Family, Prefix};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Path attribute type codes and flag bits, the session facts the checks need, and the
/// RFC 7606 handlings: all kept in `wire::attr` with the attribute table.
pub use super::attr::{attr_name, code as attr, flag, Handling, Session};

/// A received UPDATE taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedUpdate {
    /// IPv4 withdrawn routes and MP_UNREACH_NLRI prefixes.
    pub withdrawn: Vec<Prefix>,
    /// IPv4 NLRI and MP_REACH_NLRI prefixes.
    pub announced: Vec<Prefix>,
    /// The path attributes as received, without MP_REACH_NLRI and MP_UNREACH_NLRI, and with
    /// AS numbers always 4 octets: a 2-octet session's AS_PATH/AGGREGATOR are widened and
    /// its AS4_PATH/AS4_AGGREGATOR merged in and dropped (RFC 6793 §4.2.3).
    pub attrs: Vec<u8>,
    /// The next hop field of an IPv6 unicast MP_REACH_NLRI (16 or 32 bytes).
    pub mp_next_hop: Option<Vec<u8>>,
    /// RFC 4724 §2 End-of-RIB marker.
    pub end_of_rib: Option<Family>,
    /// RFC 7606 findings: malformed attributes and what was done with each.
    pub problems: Vec<AttrProblem>,
    /// RFC 9234 §5: the announced routes are route leaks by their OTC (set by the peer
    /// thread, which knows the session's role).
    pub otc_leak: bool,
    /// RFC 7911 path identifiers of `announced` and `withdrawn`, one each, when the session
    /// has ADD-PATH for any family (0 for a family without); empty otherwise.
    pub announced_ids: Vec<u32>,
    pub withdrawn_ids: Vec<u32>,
}

/// The families whose NLRI carry RFC 7911 path identifiers on a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddPath(u8);

impl AddPath {
    pub const NONE: AddPath = AddPath(0);

    pub fn of(families: &[Family]) -> AddPath {
        AddPath(families.iter().fold(0, |m, f| m | 1 << f.index()))
    }

    pub fn has(self, f: Family) -> bool {
        self.0 & 1 << f.index() != 0
    }

    pub fn any(self) -> bool {
        self.0 != 0
    }
}

impl ParsedUpdate {
    /// The path identifier of `announced[i]` (0 without ADD-PATH).
    pub fn announced_id(&self, i: usize) -> u32 {
        self.announced_ids.get(i).copied().unwrap_or(0)
    }

    /// The path identifier of `withdrawn[i]` (0 without ADD-PATH).
    pub fn withdrawn_id(&self, i: usize) -> u32 {
        self.withdrawn_ids.get(i).copied().unwrap_or(0)
    }

    /// RFC 7606 treat-as-withdraw: every announced route becomes a withdrawal (with its path
    /// identifier) and the attributes are dropped.
    pub fn withdraw_announced(&mut self) {
        let announced = std::mem::take(&mut self.announced);
        self.withdrawn.extend(announced);
        let ids = std::mem::take(&mut self.announced_ids);
        self.withdrawn_ids.extend(ids);
        self.attrs.clear();
    }
}

impl ParsedUpdate {
    /// Whether a problem makes every announced prefix a withdrawal (RFC 7606 §2).
    pub fn treat_as_withdraw(&self) -> bool {
        self.problems.iter().any(|p| p.handling == Handling::TreatAsWithdraw)
    }
}

fn update_error(sub: UpdateSubcode) -> DecodeError {
    DecodeError::update(sub)
}

/// NLRI of `family` into `out`, with path identifiers into `ids` when the session has
/// ADD-PATH for any family: read from the wire for a family that has it (RFC 7911 §3), 0 for
/// one that does not, so `ids` stays one per prefix.
fn decode_nlri_of(
    data: &[u8],
    family: Family,
    ap: AddPath,
    out: &mut Vec<Prefix>,
    ids: &mut Vec<u32>,
) -> Result<(), DecodeError> {
    if !ap.has(family) {
        decode_nlri(data, family, out)?;
        if ap.any() {
            ids.resize(out.len(), 0);
        }
        return Ok(());
    }
    let mut data = data;
    while !data.is_empty() {
        // RFC 7911 §3: Path Identifier (4 octets), then the usual length and prefix.
        let [a, b, c, d, rest @ ..] = data else { return Err(update_error(UpdateSubcode::InvalidNetworkField)) };
        let [len, ..] = rest else { return Err(update_error(UpdateSubcode::InvalidNetworkField)) };
        let n = 1 + usize::from(*len).div_ceil(8);
        let one = rest.get(..n).ok_or_else(|| update_error(UpdateSubcode::InvalidNetworkField))?;
        decode_nlri(one, family, out)?;
        ids.push(u32::from_be_bytes([*a, *b, *c, *d]));
        data = &rest[n..];
    }
    Ok(())
}

/// Whether an UPDATE body's NLRI or withdrawals carry path identifiers on a session with
/// ADD-PATH for the families in `ap`: IPv4 in the body's own fields, and the family of its
/// MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760). Chooses the archive's RFC 8050 subtype; a
/// body too short to tell counts as without.
pub fn carries_path_ids(body: &[u8], ap: AddPath) -> bool {
    if !ap.any() {
        return false;
    }
    let Some(wlen) = body.get(..2).map(|w| usize::from(u16::from_be_bytes([w[0], w[1]]))) else { return false };
    let Some(rest) = body.get(2 + wlen..) else { return false };
    let Some(alen) = rest.get(..2).map(|a| usize::from(u16::from_be_bytes([a[0], a[1]]))) else { return false };
    let Some(attrs) = rest.get(2..2 + alen) else { return false };
    let nlri = &rest[2 + alen..];
    if ap.has(Family::Ipv4Unicast) && (wlen > 0 || !nlri.is_empty()) {
        return true;
    }
    let (list, _) = split_attrs(attrs);
    list.iter().filter(|a| matches!(a.type_code, attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI)).any(|a| {
        matches!(a.value, [f0, f1, safi, ..] if Family::from_afi_safi(u16::from_be_bytes([*f0, *f1]), *safi).is_some_and(|f| ap.has(f)))
    })
}

/// Decode a run of NLRI (RFC 4271 §4.3: length in bits, then ceil(len/8) bytes), without any
/// ADD-PATH guessing. Host bits past the length are cleared, as routers do.
pub fn decode_nlri(mut data: &[u8], family: Family, out: &mut Vec<Prefix>) -> Result<(), DecodeError> {
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

/// One malformed attribute found in a received UPDATE, and what was done about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrProblem {
    pub attr: u8,
    pub handling: Handling,
    pub reason: String,
}

impl std::fmt::Display for AttrProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.handling {
            Handling::TreatAsWithdraw => "treat-as-withdraw",
            Handling::AttributeDiscard => "attribute discarded",
        };
        write!(f, "{}: {} ({how}, RFC 7606)", attr_name(self.attr), self.reason)
    }
}

/// Check one known attribute's value with its table hook (RFC 7606 §7). `Ok(true)` keeps it;
/// a malformed one is reported with the handling the table gives its type.
fn check_value(
    a: &RawAttr<'_>,
    desc: &AttrDesc,
    check: CheckFn,
    s: Session,
    problems: &mut Vec<AttrProblem>,
) -> Result<bool, DecodeError> {
    let (handling, reason) = match check(a.value, s) {
        Ok(()) => return Ok(true),
        Err(Bad::Unwanted(why)) => (Handling::AttributeDiscard, why),
        Err(Bad::Malformed(why)) => match desc.on_malformed.handling() {
            Some(h) => (h, why),
            None => return Err(update_error(UpdateSubcode::OptionalAttributeError)),
        },
    };
    problems.push(AttrProblem { attr: a.type_code, handling, reason });
    Ok(false)
}

/// Take a received UPDATE body (after the header) apart, applying RFC 7606: problems that
/// leave the message readable are returned in `problems` (the caller turns announcements into
/// withdrawals when one says so); only what makes the NLRI unlocatable or unreadable resets
/// the session (the `Err`).
pub fn parse_update(body: &[u8], s: Session) -> Result<ParsedUpdate, DecodeError> {
    parse_update_with(body, s, AddPath::NONE)
}

/// `parse_update` on a session with ADD-PATH receive negotiated for the families in `ap`
/// (RFC 7911): their NLRI and withdrawals carry path identifiers, read into
/// `announced_ids`/`withdrawn_ids`; never guessed.
pub fn parse_update_with(body: &[u8], s: Session, ap: AddPath) -> Result<ParsedUpdate, DecodeError> {
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
    decode_nlri_of(withdrawn_raw, Family::Ipv4Unicast, ap, &mut u.withdrawn, &mut u.withdrawn_ids)?;
    decode_nlri_of(nlri_raw, Family::Ipv4Unicast, ap, &mut u.announced, &mut u.announced_ids)?;

    let (attrs, overrun) = split_attrs(attrs_raw);
    if let Some(o) = overrun {
        if matches!(o.type_code, Some(attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI)) {
            // RFC 7606 §5.3, §7.11: the MP NLRI cannot be located, so its routes can be
            // neither used nor withdrawn: session reset (the overrun's RFC 4271 §6.3 subcode).
            return Err(update_error(UpdateSubcode::AttributeLengthError));
        }
        u.problems.push(AttrProblem { attr: 0, handling: Handling::TreatAsWithdraw, reason: o.why });
    }
    let mut seen = [false; 256];
    let mut mp_unreach_family = None;
    let mut only_mp_unreach = !attrs.is_empty();
    for a in &attrs {
        let code = a.type_code;
        let desc = lookup(code);
        if seen[usize::from(code)] {
            // RFC 7606 §3(g): a second MP_REACH/MP_UNREACH (the attributes whose damage
            // resets) resets the session; any other repeated attribute is dropped after its
            // first occurrence.
            if desc.is_some_and(|d| d.on_malformed == OnMalformed::SessionReset) {
                return Err(malformed());
            }
            u.problems.push(AttrProblem {
                attr: code,
                handling: Handling::AttributeDiscard,
                reason: "repeated; the first one is kept".into(),
            });
            continue;
        }
        seen[usize::from(code)] = true;
        // MP_REACH/MP_UNREACH carry NLRI: decoded here, not stored as attributes.
        match code {
            attr::MP_REACH_NLRI => {
                only_mp_unreach = false;
                parse_mp_reach(a.value, ap, &mut u)?;
            }
            attr::MP_UNREACH_NLRI => {
                let [f0, f1, safi, nlri @ ..] = a.value else {
                    return Err(update_error(UpdateSubcode::OptionalAttributeError));
                };
                let fam = Family::from_afi_safi(u16::from_be_bytes([*f0, *f1]), *safi);
                if let Some(fam) = fam {
                    decode_nlri_of(nlri, fam, ap, &mut u.withdrawn, &mut u.withdrawn_ids)?;
                    if nlri.is_empty() {
                        mp_unreach_family = Some(fam);
                    }
                }
            }
            _ => {
                only_mp_unreach = false;
                if desc.is_none() && a.flags & flag::OPTIONAL == 0 {
                    // RFC 4271 §6.3: a well-known attribute we do not know.
                    return Err(DecodeError::Update(UpdateSubcode::UnrecognizedWellKnownAttribute, a.whole.to_vec()));
                }
            }
        }
        let Some(desc) = desc else {
            u.attrs.extend_from_slice(a.whole); // an unknown optional attribute, kept as received
            continue;
        };
        let want = desc.flags;
        if a.flags & (flag::OPTIONAL | flag::TRANSITIVE) != want {
            // RFC 7606 §3(c): flags in conflict with the type make the attribute malformed.
            u.problems.push(AttrProblem {
                attr: code,
                handling: desc.on_bad_flags,
                reason: format!("flags 0x{:02x}, expected 0x{want:02x}", a.flags & 0xf0),
            });
            continue;
        }
        let Some(check) = desc.check else { continue }; // MP_REACH/MP_UNREACH, decoded above
        if check_value(a, desc, check, s, &mut u.problems)? {
            u.attrs.extend_from_slice(a.whole);
        }
    }
    // RFC 4724 §2: End-of-RIB is an empty UPDATE (IPv4) or one with only an empty MP_UNREACH.
    if body.len() == 4 {
        u.end_of_rib = Some(Family::Ipv4Unicast);
    } else if only_mp_unreach && u.withdrawn.is_empty() && u.announced.is_empty() {
        u.end_of_rib = mp_unreach_family;
    }
    if !u.announced.is_empty() {
        for d in KNOWN {
            let needed = match d.presence {
                Presence::Mandatory => true,
                Presence::WithIpv4Nlri => !nlri_raw.is_empty(),
                Presence::Ibgp => s.ibgp,
                Presence::Optional => false,
            };
            if !needed || seen[usize::from(d.code)] {
                continue;
            }
            // RFC 7606 §3(d): a missing well-known mandatory attribute is treat-as-withdraw.
            u.problems.push(AttrProblem {
                attr: d.code,
                handling: Handling::TreatAsWithdraw,
                reason: "missing (well-known mandatory)".into(),
            });
        }
    }
    if !s.four_octet_as {
        // RFC 6793 §4.2.3, once, here: everything after this reads 4-octet AS numbers. The
        // archive keeps the message as received.
        let mut wide = Vec::with_capacity(u.attrs.len() + 16);
        widen_as_numbers(&u.attrs, &mut wide);
        u.attrs = wide;
    }
    Ok(u)
}

/// MP_REACH_NLRI (RFC 4760 §3): AFI, SAFI, next hop length and next hop, reserved, NLRI. A
/// next hop length the family cannot have makes the NLRI unlocatable: session reset
/// (RFC 7606 §7.11), with the subcode of RFC 4760 §7.
fn parse_mp_reach(v: &[u8], ap: AddPath, u: &mut ParsedUpdate) -> Result<(), DecodeError> {
    let bad = || update_error(UpdateSubcode::OptionalAttributeError);
    let [f0, f1, safi, nh_len, rest @ ..] = v else { return Err(bad()) };
    let nh_len = usize::from(*nh_len);
    let nh = rest.get(..nh_len).ok_or_else(bad)?;
    let rest = &rest[nh_len..];
    let [_reserved, nlri @ ..] = rest else { return Err(bad()) };
    match Family::from_afi_safi(u16::from_be_bytes([*f0, *f1]), *safi) {
        Some(Family::Ipv6Unicast) => {
            if nh_len != 16 && nh_len != 32 {
                return Err(bad());
            }
            u.mp_next_hop = Some(nh.to_vec());
            decode_nlri_of(nlri, Family::Ipv6Unicast, ap, &mut u.announced, &mut u.announced_ids)
        }
        Some(Family::Ipv4Unicast) => {
            if nh_len != 4 {
                return Err(bad());
            }
            u.mp_next_hop = None;
            // Keep an IPv4 next hop as a NEXT_HOP attribute so the stored set is uniform.
            u.attrs.extend_from_slice(&[flag::TRANSITIVE, attr::NEXT_HOP, 4]);
            u.attrs.extend_from_slice(nh);
            decode_nlri_of(nlri, Family::Ipv4Unicast, ap, &mut u.announced, &mut u.announced_ids)
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
    /// Only-to-Customer (RFC 9234 §5), added on sessions to customers, peers and RS clients.
    pub otc: Option<u32>,
    /// COMMUNITIES (RFC 1997): BLACKHOLE and NO_EXPORT on a blackhole route (RFC 7999).
    pub communities: Vec<u32>,
}

/// One AS_SEQUENCE holding `path` (split at 255), 2 or 4 octets per AS.
fn encode_as_path(path: &[u32], four_octet: bool) -> Vec<u8> {
    let mut v = Vec::new();
    aspath::encode_segment(&mut v, aspath::AS_SEQUENCE, path, AsWidth::of_session(four_octet));
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
    if !route.communities.is_empty() {
        let v: Vec<u8> = route.communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        push_attr(&mut a, flag::OPTIONAL | flag::TRANSITIVE, attr::COMMUNITIES, &v);
    }
    if let Some(otc) = route.otc {
        push_attr(&mut a, flag::OPTIONAL | flag::TRANSITIVE, attr::OTC, &otc.to_be_bytes());
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

/// UPDATEs announcing `prefixes` (all of `family`) with shared attributes, each at most
/// `max_len` bytes (4096, or up to 65,535 with RFC 8654). The next hop must be of the
/// prefixes' family.
pub fn build_announcements(
    family: Family,
    prefixes: &[Prefix],
    route: &OutRoute,
    four_octet_as: bool,
    max_len: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let max_len = max_len.clamp(MAX_MESSAGE_LEN, MAX_EXTENDED_LEN);
    if let Some(p) = prefixes.iter().find(|p| p.family() != family) {
        return Err(format!("{p} is not {family}"));
    }
    if Family::of_addr(&route.next_hop) != family {
        return Err(format!("next hop {} cannot be used for {family}", route.next_hop));
    }
    let attrs = common_attrs(family, route, four_octet_as);
    announce_with_attrs(family, prefixes, &attrs, route.next_hop, route.link_local_next_hop, max_len)
}

/// UPDATEs announcing `prefixes` (all of `family`) with the path attributes `attrs` as they
/// are (for IPv4 including NEXT_HOP; without MP_REACH_NLRI, which is built here for IPv6 with
/// `next_hop` and the optional link-local one, RFC 2545 §3), each at most `max_len` bytes.
pub fn announce_with_attrs(
    family: Family,
    prefixes: &[Prefix],
    attrs: &[u8],
    next_hop: IpAddr,
    link_local: Option<Ipv6Addr>,
    max_len: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let max_len = max_len.clamp(MAX_MESSAGE_LEN, MAX_EXTENDED_LEN);
    let too_long = || format!("{} bytes of path attributes leave no room for NLRI in {max_len} bytes", attrs.len());
    let mut out = Vec::new();
    match family {
        Family::Ipv4Unicast => {
            let room = max_len.checked_sub(HEADER_LEN + 4 + attrs.len() + 5).ok_or_else(too_long)? + 5;
            for nlri in pack(prefixes, room) {
                out.push(finish(&[], attrs, &nlri));
            }
        }
        Family::Ipv6Unicast => {
            let IpAddr::V6(nh) = next_hop else { return Err("IPv6 needs an IPv6 next hop".into()) };
            let mut mp_head = vec![0, 2, 1];
            match link_local {
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
                             // MP_REACH header is 4 bytes with the extended length bit, to be safe; room for
                             // at least one /128 (17 bytes).
            let room =
                max_len.checked_sub(HEADER_LEN + 4 + attrs.len() + 4 + mp_head.len() + 17).ok_or_else(too_long)? + 17;
            for nlri in pack(prefixes, room) {
                let mut value = mp_head.clone();
                value.extend_from_slice(&nlri);
                let mut all = Vec::with_capacity(attrs.len() + value.len() + 4);
                push_attr(&mut all, flag::OPTIONAL, attr::MP_REACH_NLRI, &value);
                all.extend_from_slice(attrs);
                out.push(finish(&[], &all, &[]));
            }
        }
    }
    Ok(out)
}

/// UPDATEs withdrawing `prefixes` (all of `family`), each at most `max_len` bytes.
pub fn build_withdrawals(family: Family, prefixes: &[Prefix], max_len: usize) -> Vec<Vec<u8>> {
    let max_len = max_len.clamp(MAX_MESSAGE_LEN, MAX_EXTENDED_LEN);
    let mut out = Vec::new();
    match family {
        Family::Ipv4Unicast => {
            for w in pack(prefixes, max_len - HEADER_LEN - 4) {
                out.push(finish(&w, &[], &[]));
            }
        }
        Family::Ipv6Unicast => {
            for w in pack(prefixes, max_len - HEADER_LEN - 4 - 4 - 3) {
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
    use crate::wire::notify::Notification;

    const EBGP4: Session = Session { four_octet_as: true, ibgp: false };
    const EBGP2: Session = Session { four_octet_as: false, ibgp: false };

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
        let u = parse_update(body(&m), EBGP4).unwrap();
        assert_eq!(u.announced, vec![p("0.0.0.0/0"), p("10.0.0.0/8"), p("11.0.0.0/8"), p("12.0.0.0/8")]);
        assert_eq!(u.attrs, v4_attrs());
        let m = raw_update(&nlri, &[], &[]);
        let u = parse_update(body(&m), EBGP4).unwrap();
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
        let u = parse_update(body(&raw_update(&[], &attrs, &[])), EBGP4).unwrap();
        assert_eq!(u.announced, vec![p("::/0"), p("2001:db8::/32"), p("2002::/16")]);
        assert_eq!(u.attrs, vec![0x40, 1, 1, 0, 0x40, 2, 0], "MP_REACH is taken out");
        assert_eq!(u.mp_next_hop.as_deref().map(|b| b.len()), Some(16));
        assert!(u.problems.is_empty(), "{:?}", u.problems);
        let un = [0x80, 15, 6, 0, 2, 1, 0, 8, 0x20];
        let u = parse_update(body(&raw_update(&[], &un, &[])), EBGP4).unwrap();
        assert_eq!(u.withdrawn, vec![p("::/0"), p("2000::/8")]);
        assert_eq!(u.end_of_rib, None);
    }

    #[test]
    fn end_of_rib_both_families() {
        let u = parse_update(body(&end_of_rib(Family::Ipv4Unicast)), EBGP4).unwrap();
        assert_eq!(u.end_of_rib, Some(Family::Ipv4Unicast));
        let u = parse_update(body(&end_of_rib(Family::Ipv6Unicast)), EBGP4).unwrap();
        assert_eq!(u.end_of_rib, Some(Family::Ipv6Unicast));
        assert!(u.withdrawn.is_empty() && u.announced.is_empty());
    }

    /// The handling of one crafted attribute section with a /24 of IPv4 NLRI.
    fn judge(attrs: &[u8], s: Session) -> Result<ParsedUpdate, Notification> {
        parse_update(body(&raw_update(&[], attrs, &[24, 10, 1, 2])), s).map_err(Notification::from)
    }

    fn with(extra: &[u8]) -> Vec<u8> {
        let mut a = v4_attrs();
        a.extend_from_slice(extra);
        a
    }

    fn handled(u: &ParsedUpdate) -> Vec<(String, Handling)> {
        u.problems.iter().map(|p| (attr_name(p.attr), p.handling)).collect()
    }

    #[test]
    fn rfc7606_every_class_gets_its_handling() {
        use Handling::*;
        let taw = |attrs: &[u8], what: &str| {
            let u = judge(attrs, EBGP4).unwrap_or_else(|n| panic!("{what}: session reset {n}"));
            assert!(u.treat_as_withdraw(), "{what}: {:?}", u.problems);
            assert_eq!(u.announced, vec![p("10.1.2.0/24")], "{what}: the NLRI is still read");
            u
        };
        // Wrong flags: ORIGIN marked optional; MED marked transitive.
        let mut a = v4_attrs();
        a[0] = 0xc0;
        assert_eq!(handled(&taw(&a, "ORIGIN flags")), [("ORIGIN".into(), TreatAsWithdraw)]);
        taw(&with(&[0xc0, 4, 4, 0, 0, 0, 1]), "MED flags");
        // Wrong lengths.
        taw(&with(&[0x80, 4, 3, 0, 0, 1]), "MED length");
        let mut a = v4_attrs();
        a[2] = 2;
        a.insert(4, 0);
        let u = judge(&a, EBGP4);
        assert!(u.is_ok_and(|u| u.treat_as_withdraw()), "ORIGIN length 2");
        taw(&with(&[0xc0, 8, 6, 0, 0, 0, 1, 0, 2]), "COMMUNITIES length 6");
        taw(&with(&[0xc0, 32, 5, 0, 0, 0, 1, 2]), "LARGE_COMMUNITY length 5");
        taw(&with(&[0xc0, 16, 4, 0, 2, 0, 1]), "EXTENDED_COMMUNITIES length 4");
        let u = judge(&with(&[0x40, 6, 1, 0]), EBGP4).unwrap();
        assert_eq!(handled(&u), [("ATOMIC_AGGREGATE".into(), AttributeDiscard)]);
        assert!(!u.treat_as_withdraw() && u.attrs == v4_attrs(), "the route stays, without the attribute");
        let u = judge(&with(&[0xc0, 7, 6, 0, 1, 192, 0, 2, 1]), EBGP4).unwrap();
        assert_eq!(handled(&u), [("AGGREGATOR".into(), AttributeDiscard)], "6-byte AGGREGATOR on a 4-octet session");
        let two_octet =
            [0x40, 1, 1, 0, 0x40, 2, 4, 2, 1, 0xfd, 0xea, 0x40, 3, 4, 192, 0, 2, 2, 0xc0, 7, 6, 0, 1, 192, 0, 2, 1];
        assert!(judge(&two_octet, EBGP2).unwrap().problems.is_empty(), "6 bytes on a 2-octet session");
        assert!(judge(&v4_attrs(), EBGP2).unwrap().treat_as_withdraw(), "4-octet AS_PATH read as 2-octet: malformed");
        // Missing well-known attributes.
        let u = taw(&v4_attrs()[4..], "no ORIGIN");
        assert_eq!(handled(&u), [("ORIGIN".into(), TreatAsWithdraw)]);
        let u = judge(&v4_attrs(), Session { four_octet_as: true, ibgp: true }).unwrap();
        assert_eq!(handled(&u), [("LOCAL_PREF".into(), TreatAsWithdraw)], "iBGP needs LOCAL_PREF");
        let u = judge(&with(&[0x40, 5, 4, 0, 0, 0, 100]), EBGP4).unwrap();
        assert_eq!(handled(&u), [("LOCAL_PREF".into(), AttributeDiscard)], "eBGP LOCAL_PREF is ignored");
        // Duplicates: the first is kept; a second MP_REACH resets.
        let u = judge(&with(&[0xc0, 8, 4, 0, 0, 0, 1, 0xc0, 8, 4, 0, 0, 0, 2]), EBGP4).unwrap();
        assert_eq!(handled(&u), [("COMMUNITIES".into(), AttributeDiscard)]);
        assert!(u.attrs.ends_with(&[0xc0, 8, 4, 0, 0, 0, 1]) && !u.treat_as_withdraw());
        let unreach = [0x80, 15, 3, 0, 2, 1];
        let mut twice = v4_attrs();
        twice.extend_from_slice(&unreach);
        twice.extend_from_slice(&unreach);
        assert_eq!(judge(&twice, EBGP4).unwrap_err().subcode, UpdateSubcode::MalformedAttributeList as u8);
        // Bad AS_PATH segments: unknown type, empty, overrunning.
        for (seg, what) in
            [([9u8, 1, 0, 0, 0, 1], "type 9"), ([2, 0, 0, 0, 0, 1], "empty"), ([2, 2, 0, 0, 0, 1], "overrun")]
        {
            let mut a = vec![0x40, 1, 1, 0, 0x40, 2, seg.len() as u8];
            a.extend_from_slice(&seg);
            a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 1]);
            assert_eq!(handled(&taw(&a, what)), [("AS_PATH".into(), TreatAsWithdraw)], "{what}");
        }
        // A malformed AS4_PATH is discarded (RFC 6793 §6).
        let u = judge(&[&two_octet[..18], &[0xc0, 17, 2, 2, 0]].concat(), EBGP2).unwrap();
        assert_eq!(handled(&u), [("AS4_PATH".into(), AttributeDiscard)]);
        // Bad NEXT_HOP: not a host address, or not 4 bytes.
        let mut a = v4_attrs();
        let at = a.len() - 4;
        a[at..].copy_from_slice(&[0, 0, 0, 0]);
        taw(&a, "NEXT_HOP 0.0.0.0");
        a[at..].copy_from_slice(&[224, 0, 0, 1]);
        taw(&a, "NEXT_HOP multicast");
        let mut a = v4_attrs();
        let len_at = a.len() - 5;
        a[len_at] = 5;
        a.push(1);
        taw(&a, "NEXT_HOP length 5");
        // An attribute overrunning the section: treat-as-withdraw, the NLRI found by the total length.
        let u = taw(&with(&[0xc0, 8, 8, 0, 0, 0, 1]), "overrun");
        assert!(u.problems[0].reason.contains("overruns"), "{:?}", u.problems);
        taw(&with(&[0xc0]), "a lone byte");
        // MP_REACH with a next hop length IPv6 cannot have: the NLRI cannot be trusted, reset.
        let mut mp = vec![0x80, 14, 0, 0, 2, 1, 4, 192, 0, 2, 1, 0, 32, 0x20, 0x01, 0x0d, 0xb8];
        mp[2] = (mp.len() - 3) as u8;
        let n = parse_update(body(&raw_update(&[], &[&v4_attrs()[..13], &mp].concat(), &[])), EBGP4)
            .map_err(Notification::from)
            .unwrap_err();
        assert_eq!((n.code, n.subcode), (3, UpdateSubcode::OptionalAttributeError as u8));
        // NLRI overrunning its field resets (RFC 7606 §5.3).
        let n = parse_update(body(&raw_update(&[], &v4_attrs(), &[24, 10, 0])), EBGP4)
            .map_err(Notification::from)
            .unwrap_err();
        assert_eq!(n.subcode, UpdateSubcode::InvalidNetworkField as u8);
        // A well-known attribute we do not know: RFC 4271 §6.3, with the attribute as data.
        let n = judge(&with(&[0x40, 99, 1, 7]), EBGP4).unwrap_err();
        assert_eq!(
            (n.subcode, n.data.as_slice()),
            (UpdateSubcode::UnrecognizedWellKnownAttribute as u8, &[0x40, 99, 1, 7][..])
        );
        // An unknown optional attribute is kept as received.
        let u = judge(&with(&[0xc0, 99, 1, 7]), EBGP4).unwrap();
        assert!(u.problems.is_empty() && u.attrs.ends_with(&[0xc0, 99, 1, 7]));
    }

    #[test]
    fn otc_and_aigp_are_kept_as_received_when_well_formed() {
        let otc = [0xc0, 35, 4, 0, 0, 0xfd, 0xe9];
        let aigp = [0x80, 26, 11, 1, 0, 11, 0, 0, 0, 0, 0, 0, 0, 100];
        let u = judge(&with(&[&otc[..], &aigp[..]].concat()), EBGP4).unwrap();
        assert!(u.problems.is_empty(), "{:?}", u.problems);
        assert_eq!(u.attrs, with(&[&otc[..], &aigp[..]].concat()), "bytes passed on unchanged");
    }

    #[test]
    fn a_malformed_otc_is_treat_as_withdraw_and_a_malformed_aigp_is_discarded() {
        let u = judge(&with(&[0xc0, 35, 3, 0, 0, 1]), EBGP4).unwrap();
        assert_eq!(handled(&u), [("OTC".into(), Handling::TreatAsWithdraw)]);
        assert_eq!(u.problems[0].to_string(), "OTC: length 3 instead of 4 (treat-as-withdraw, RFC 7606)");
        let u = judge(&with(&[0x80, 26, 6, 1, 0, 6, 0, 0, 0]), EBGP4).unwrap();
        assert_eq!(handled(&u), [("AIGP".into(), Handling::AttributeDiscard)]);
        assert!(!u.treat_as_withdraw() && u.attrs == v4_attrs(), "the route stays, without the AIGP");
        let u = judge(&with(&[0xc0, 26, 11, 1, 0, 11, 0, 0, 0, 0, 0, 0, 0, 100]), EBGP4).unwrap();
        assert_eq!(handled(&u), [("AIGP".into(), Handling::AttributeDiscard)], "transitive AIGP: RFC 7311 §3.2");
        let u = judge(&with(&[0x80, 35, 4, 0, 0, 0xfd, 0xe9]), EBGP4).unwrap();
        assert_eq!(handled(&u), [("OTC".into(), Handling::TreatAsWithdraw)], "non-transitive OTC");
    }

    #[test]
    fn structural_errors_reset_with_the_right_subcode() {
        // Withdrawn length overruns the message.
        assert_eq!(parse_update(&[0, 9, 0, 0], EBGP4).map_err(Notification::from).unwrap_err().subcode, 1);
        // NLRI overruns its field, or is longer than 32 bits.
        let m = raw_update(&[], &v4_attrs(), &[24, 10, 0]);
        assert_eq!(parse_update(body(&m), EBGP4).map_err(Notification::from).unwrap_err().subcode, 10);
        let m = raw_update(&[], &v4_attrs(), &[33, 10, 0, 0, 0, 0]);
        assert_eq!(parse_update(body(&m), EBGP4).map_err(Notification::from).unwrap_err().subcode, 10);
    }

    #[test]
    fn missing_mandatory_attribute_is_treat_as_withdraw() {
        let m = raw_update(&[], &[0x40, 1, 1, 0], &[8, 10]);
        let u = parse_update(body(&m), EBGP4).unwrap();
        assert!(u.treat_as_withdraw());
        let missing: Vec<String> = u.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            missing,
            [
                "AS_PATH: missing (well-known mandatory) (treat-as-withdraw, RFC 7606)",
                "NEXT_HOP: missing (well-known mandatory) (treat-as-withdraw, RFC 7606)"
            ]
        );
    }

    #[test]
    fn host_bits_are_cleared() {
        let m = raw_update(&[], &v4_attrs(), &[24, 10, 1, 2, 0]);
        // length 24 with 3 bytes, then a /0: trailing garbage bits would show up in byte 3
        let u = parse_update(body(&m), EBGP4).unwrap();
        assert_eq!(u.announced[0], p("10.1.2.0/24"));
        let m = raw_update(&[], &v4_attrs(), &[7, 0xff]);
        assert_eq!(parse_update(body(&m), EBGP4).unwrap().announced, vec![p("254.0.0.0/7")]);
    }

    fn route(nh: &str) -> OutRoute {
        OutRoute {
            as_path: vec![65001],
            next_hop: nh.parse().unwrap(),
            local_pref: None,
            link_local_next_hop: None,
            otc: None,
            communities: Vec::new(),
        }
    }

    #[test]
    fn announcements_round_trip_through_our_parser_and_bgpkit() {
        use bgpkit_parser::models::{AsnLength, BgpMessage};
        let v4 = [p("203.0.113.0/24"), p("198.51.100.0/24")];
        let msgs = build_announcements(Family::Ipv4Unicast, &v4, &route("192.0.2.1"), true, MAX_MESSAGE_LEN).unwrap();
        assert_eq!(msgs.len(), 1);
        let u = parse_update(body(&msgs[0]), EBGP4).unwrap();
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
        let msgs = build_announcements(Family::Ipv6Unicast, &v6, &route("2001:db8::1"), true, MAX_MESSAGE_LEN).unwrap();
        let u = parse_update(body(&msgs[0]), EBGP4).unwrap();
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
        assert!(build_announcements(Family::Ipv6Unicast, &v6, &route("192.0.2.1"), true, MAX_MESSAGE_LEN).is_err());
    }

    #[test]
    fn with_extended_messages_one_update_carries_what_took_several() {
        let v4: Vec<Prefix> =
            (0..3000u32).map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from((10 << 24) | (i << 8))), 24).unwrap()).collect();
        let v6: Vec<Prefix> = (0..3000u128)
            .map(|i| Prefix::new(IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 80))), 48).unwrap())
            .collect();
        for (fam, pfx, nh) in [(Family::Ipv4Unicast, &v4, "192.0.2.1"), (Family::Ipv6Unicast, &v6, "2001:db8::1")] {
            let msgs = build_announcements(fam, pfx, &route(nh), true, MAX_EXTENDED_LEN).unwrap();
            assert_eq!(msgs.len(), 1, "{fam}");
            assert!(msgs[0].len() > MAX_MESSAGE_LEN);
            assert_eq!(&parse_update(body(&msgs[0]), EBGP4).unwrap().announced, pfx);
            let w = build_withdrawals(fam, pfx, MAX_EXTENDED_LEN);
            assert_eq!(w.len(), 1);
            assert_eq!(&parse_update(body(&w[0]), EBGP4).unwrap().withdrawn, pfx);
        }
    }

    #[test]
    fn an_otc_route_carries_the_attribute_optional_transitive() {
        let r = OutRoute { otc: Some(65001), ..route("192.0.2.1") };
        let msgs = build_announcements(Family::Ipv4Unicast, &[p("203.0.113.0/24")], &r, true, MAX_MESSAGE_LEN).unwrap();
        let u = parse_update(body(&msgs[0]), EBGP4).unwrap();
        assert_eq!(crate::wire::role::otc_of(&u.attrs), Some(65001));
        assert!(u.attrs.windows(7).any(|w| w == [0xc0, 35, 4, 0, 0, 0xfd, 0xe9]));
    }

    #[test]
    fn many_prefixes_are_packed_into_messages_of_at_most_4096_bytes() {
        let v4: Vec<Prefix> =
            (0..2000u32).map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from((10 << 24) | (i << 8))), 24).unwrap()).collect();
        let v6: Vec<Prefix> = (0..2000u128)
            .map(|i| Prefix::new(IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 80))), 48).unwrap())
            .collect();
        for (fam, pfx, nh) in [(Family::Ipv4Unicast, &v4, "192.0.2.1"), (Family::Ipv6Unicast, &v6, "2001:db8::1")] {
            let msgs = build_announcements(fam, pfx, &route(nh), false, MAX_MESSAGE_LEN).unwrap();
            assert!(msgs.len() > 1);
            let mut all = Vec::new();
            for m in &msgs {
                assert!(m.len() <= MAX_MESSAGE_LEN, "{}", m.len());
                all.extend(parse_update(body(m), EBGP2).unwrap().announced);
            }
            assert_eq!(&all, pfx);
            let mut gone = Vec::new();
            for m in build_withdrawals(fam, pfx, MAX_MESSAGE_LEN) {
                assert!(m.len() <= MAX_MESSAGE_LEN);
                gone.extend(parse_update(body(&m), EBGP2).unwrap().withdrawn);
            }
            assert_eq!(&gone, pfx);
        }
    }

    #[test]
    fn two_octet_sessions_get_as_trans_and_as4_path() {
        let r = OutRoute { as_path: vec![4_200_000_000], ..route("192.0.2.1") };
        let msgs =
            build_announcements(Family::Ipv4Unicast, &[p("203.0.113.0/24")], &r, false, MAX_MESSAGE_LEN).unwrap();
        // AS_PATH with AS_TRANS, then AS4_PATH with the real AS, on the wire.
        assert!(msgs[0].windows(4).any(|w| w == [2, 1, 0x5b, 0xa0]));
        assert!(msgs[0].windows(2).any(|w| w == [0xc0, 17]));
        // Read back on a 2-octet session: the real path, in 4-octet form, and no AS4_PATH.
        let u = parse_update(body(&msgs[0]), EBGP2).unwrap();
        assert!(u.attrs.windows(6).any(|w| w == [2, 1, 0xfa, 0x56, 0xea, 0x00]), "{:?}", u.attrs);
        assert!(!u.attrs.windows(2).any(|w| w == [0xc0, 17]));
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

    #[test]
    fn an_mp_reach_or_mp_unreach_overrunning_the_attributes_resets_the_session() {
        // MP_UNREACH for 2001:db8::/32 claiming 20 bytes where 9 are left: the IPv6 routes
        // inside can be neither withdrawn nor kept, so treat-as-withdraw is not enough.
        for code in [attr::MP_UNREACH_NLRI, attr::MP_REACH_NLRI] {
            let attrs = [&v4_attrs()[..], &[0x80, code, 20, 0, 2, 1, 32, 0x20, 0x01, 0x0d, 0xb8]].concat();
            let n = judge(&attrs, EBGP4).unwrap_err();
            assert_eq!((n.code, n.subcode), (3, UpdateSubcode::AttributeLengthError as u8), "{}", attr_name(code));
            // Cut inside its header, with the type code read: the same.
            let attrs = [&v4_attrs()[..], &[0x90, code, 0]].concat();
            assert!(judge(&attrs, EBGP4).is_err(), "{} header cut short", attr_name(code));
        }
        // Another attribute overrunning stays treat-as-withdraw (RFC 7606 §4).
        assert!(judge(&with(&[0xc0, 8, 8, 0, 0, 0, 1]), EBGP4).is_ok_and(|u| u.treat_as_withdraw()));
    }

    #[test]
    fn as4_path_and_as4_aggregator_from_a_4_octet_speaker_are_discarded() {
        // RFC 6793 §3: a NEW speaker never sends them to a NEW speaker; discard, keep the route.
        let as4_path = [0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00];
        let as4_aggr = [0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x00, 192, 0, 2, 1];
        let u = judge(&with(&[&as4_path[..], &as4_aggr[..]].concat()), EBGP4).unwrap();
        assert_eq!(
            handled(&u),
            [("AS4_PATH".into(), Handling::AttributeDiscard), ("AS4_AGGREGATOR".into(), Handling::AttributeDiscard)]
        );
        assert!(!u.treat_as_withdraw() && u.attrs == v4_attrs(), "the route stays with its AS_PATH");
        assert!(u.problems[0].reason.contains("RFC 6793"), "{}", u.problems[0]);
    }

    /// ORIGIN, AS_PATH (2-octet) [65002, AS_TRANS], NEXT_HOP, then `extra`.
    fn two_octet_attrs(extra: &[u8]) -> Vec<u8> {
        let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 2, 0xfd, 0xea, 0x5b, 0xa0, 0x40, 3, 4, 192, 0, 2, 2];
        a.extend_from_slice(extra);
        a
    }

    #[test]
    fn a_two_octet_sessions_path_is_converted_to_four_octets_once_at_ingest() {
        // AS4_PATH [4200000000] covers the AS_TRANS: the stored path is [65002, 4200000000].
        let as4_path = [0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00];
        // AGGREGATOR AS_TRANS 192.0.2.9 with AS4_AGGREGATOR 4200000000: the real aggregator.
        let aggr = [0xc0, 7, 6, 0x5b, 0xa0, 192, 0, 2, 9];
        let as4_aggr = [0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x00, 192, 0, 2, 9];
        let u = judge(&two_octet_attrs(&[&as4_path[..], &aggr[..], &as4_aggr[..]].concat()), EBGP2).unwrap();
        assert!(u.problems.is_empty(), "{:?}", u.problems);
        let want = [
            &[0x40, 1, 1, 0, 0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xea, 0xfa, 0x56, 0xea, 0x00][..],
            &[0x40, 3, 4, 192, 0, 2, 2, 0xc0, 7, 8, 0xfa, 0x56, 0xea, 0x00, 192, 0, 2, 9],
        ]
        .concat();
        assert_eq!(u.attrs, want, "4-octet AS_PATH and AGGREGATOR, no AS4_* left");
        let view = decode_attrs_for_display(&u.attrs, None, true);
        assert_eq!(view.as_path, "65002 4200000000");
        // Without AS4_PATH the 2-octet path is only widened.
        let u = judge(&two_octet_attrs(&[]), EBGP2).unwrap();
        assert_eq!(decode_attrs_for_display(&u.attrs, None, true).as_path, "65002 23456");
    }

    #[test]
    fn an_aggregator_without_as_trans_makes_as4_path_and_as4_aggregator_ignored() {
        // RFC 6793 §4.2.3: AGGREGATOR holds 65009, not AS_TRANS: AS4_PATH and AS4_AGGREGATOR are
        // ignored, the path stays the 2-octet one (widened).
        let as4_path = [0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x00];
        let aggr = [0xc0, 7, 6, 0xfd, 0xf1, 192, 0, 2, 9];
        let as4_aggr = [0xc0, 18, 8, 0xfa, 0x56, 0xea, 0x00, 192, 0, 2, 9];
        let u = judge(&two_octet_attrs(&[&as4_path[..], &aggr[..], &as4_aggr[..]].concat()), EBGP2).unwrap();
        let view = decode_attrs_for_display(&u.attrs, None, true);
        assert_eq!(view.as_path, "65002 23456");
        assert!(u.attrs.ends_with(&[0xc0, 7, 8, 0, 0, 0xfd, 0xf1, 192, 0, 2, 9]), "{:?}", u.attrs);
        assert!(!u.attrs.windows(2).any(|w| w == [0xc0, 17] || w == [0xc0, 18]));
    }
}
