//! What focld knows about each path attribute type, in one table (in the spirit of BIRD's
//! `bgp_attr_table` in proto/bgp/attrs.c): code, IANA name, the Optional/Transitive bits it
//! must carry, whether it is mandatory, what RFC 7606 does with a malformed one, and the
//! check of its value. Also the attribute splitter and writer shared by UPDATE and MRT code.
//!
//! Used by `wire::update` (checks of received UPDATEs, names in problem reports, building our
//! UPDATEs) and `mrt::record` (TABLE_DUMP_V2 attributes). A new attribute is one `KNOWN` line
//! plus its check fn. Lookups are one index into a 256-entry array.

use super::aspath::{self, AsWidth};
use super::open::AS_TRANS;
use std::net::Ipv4Addr;

/// Path attribute type codes (IANA "BGP Path Attributes").
pub mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const AIGP: u8 = 26;
    pub const LARGE_COMMUNITY: u8 = 32;
    pub const OTC: u8 = 35;
}

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// What the checks of a received UPDATE need to know about the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// RFC 6793 negotiated: AS numbers in AS_PATH and AGGREGATOR are 4 octets.
    pub four_octet_as: bool,
    /// Internal BGP (LOCAL_PREF expected, not discarded).
    pub ibgp: bool,
}

/// The RFC 7606 §2 approaches short of a session reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    /// Every prefix the UPDATE announces is withdrawn instead.
    TreatAsWithdraw,
    /// The attribute is dropped; the routes are kept without it.
    AttributeDiscard,
}

/// What a malformed attribute of a type costs (RFC 7606 §2, per attribute in §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMalformed {
    TreatAsWithdraw,
    AttributeDiscard,
    /// Session reset (or AFI/SAFI disable): the NLRI cannot be trusted. A repeated one is a
    /// Malformed Attribute List (RFC 7606 §3(g)).
    SessionReset,
}

impl OnMalformed {
    /// The handling short of a reset, if this is one.
    pub fn handling(self) -> Option<Handling> {
        match self {
            OnMalformed::TreatAsWithdraw => Some(Handling::TreatAsWithdraw),
            OnMalformed::AttributeDiscard => Some(Handling::AttributeDiscard),
            OnMalformed::SessionReset => None,
        }
    }
}

/// When an announcement must carry the attribute (RFC 4271 §5, RFC 7606 §3(d)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Optional,
    /// Well-known mandatory in every UPDATE announcing routes.
    Mandatory,
    /// Mandatory when the UPDATE carries IPv4 NLRI outside MP_REACH_NLRI (RFC 4760 §3).
    WithIpv4Nlri,
    /// Mandatory on internal sessions (RFC 4271 §5.1.5).
    Ibgp,
}

/// Why a value did not pass its check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Malformed: handled as the table says.
    Malformed(String),
    /// Well formed but not to be used here: attribute discard (LOCAL_PREF from an external
    /// peer, RFC 7606 §7.5).
    Unwanted(String),
}

/// The check of a value of one attribute type.
pub type CheckFn = fn(&[u8], Session) -> Result<(), Bad>;

/// One known attribute type.
#[derive(Clone, Copy, Debug)]
pub struct AttrDesc {
    pub code: u8,
    /// IANA name.
    pub name: &'static str,
    /// The Optional and Transitive bits it must carry (RFC 4271 §5, §6.3).
    pub flags: u8,
    pub presence: Presence,
    pub on_malformed: OnMalformed,
    /// What Optional/Transitive bits in conflict with `flags` cost: treat-as-withdraw (RFC 7606
    /// §3(c)) unless the attribute's own RFC says otherwise.
    pub on_bad_flags: Handling,
    /// `None` where the value is NLRI and decoded with them (MP_REACH/MP_UNREACH).
    pub check: Option<CheckFn>,
}

const WELL_KNOWN: u8 = flag::TRANSITIVE;
const OPT_TRANS: u8 = flag::OPTIONAL | flag::TRANSITIVE;
const OPT_NON_TRANS: u8 = flag::OPTIONAL;

const fn entry(
    code: u8,
    name: &'static str,
    flags: u8,
    presence: Presence,
    on_malformed: OnMalformed,
    check: Option<CheckFn>,
) -> AttrDesc {
    AttrDesc { code, name, flags, presence, on_malformed, on_bad_flags: Handling::TreatAsWithdraw, check }
}

impl AttrDesc {
    /// Bad flags cost an attribute discard, not treat-as-withdraw: for attributes whose RFC
    /// treats any malformed one as an unrecognized non-transitive attribute.
    const fn flags_discarded(self) -> AttrDesc {
        AttrDesc { on_bad_flags: Handling::AttributeDiscard, ..self }
    }
}

use code::*;
use OnMalformed::{AttributeDiscard as Discard, SessionReset as Reset, TreatAsWithdraw as Withdraw};
use Presence::{Ibgp, Mandatory, Optional, WithIpv4Nlri};

/// Every attribute type focld knows, in code order. Unknown optional types are passed on as
/// received; an unknown well-known one resets the session (RFC 4271 §6.3).
#[rustfmt::skip]
pub const KNOWN: &[AttrDesc] = &[
    entry(ORIGIN, "ORIGIN", WELL_KNOWN, Mandatory, Withdraw, Some(check_origin)), // RFC 7606 §7.1
    entry(AS_PATH, "AS_PATH", WELL_KNOWN, Mandatory, Withdraw, Some(check_as_path)), // §7.2
    entry(NEXT_HOP, "NEXT_HOP", WELL_KNOWN, WithIpv4Nlri, Withdraw, Some(check_next_hop)), // §7.3
    entry(MULTI_EXIT_DISC, "MULTI_EXIT_DISC", OPT_NON_TRANS, Optional, Withdraw, Some(len_4)), // §7.4
    entry(LOCAL_PREF, "LOCAL_PREF", WELL_KNOWN, Ibgp, Withdraw, Some(check_local_pref)), // §7.5
    entry(ATOMIC_AGGREGATE, "ATOMIC_AGGREGATE", WELL_KNOWN, Optional, Discard, Some(len_0)), // §7.6
    entry(AGGREGATOR, "AGGREGATOR", OPT_TRANS, Optional, Discard, Some(check_aggregator)), // §7.7
    entry(COMMUNITIES, "COMMUNITIES", OPT_TRANS, Optional, Withdraw, Some(multiple_of_4)), // §7.8
    entry(ORIGINATOR_ID, "ORIGINATOR_ID", OPT_NON_TRANS, Optional, Withdraw, Some(len_4)), // §7.9
    entry(CLUSTER_LIST, "CLUSTER_LIST", OPT_NON_TRANS, Optional, Withdraw, Some(multiple_of_4)), // §7.10
    entry(MP_REACH_NLRI, "MP_REACH_NLRI", OPT_NON_TRANS, Optional, Reset, None), // §7.11
    entry(MP_UNREACH_NLRI, "MP_UNREACH_NLRI", OPT_NON_TRANS, Optional, Reset, None), // §7.11
    entry(EXTENDED_COMMUNITIES, "EXTENDED_COMMUNITIES", OPT_TRANS, Optional, Withdraw, Some(multiple_of_8)), // §7.14
    entry(AS4_PATH, "AS4_PATH", OPT_TRANS, Optional, Discard, Some(check_as4_path)), // RFC 6793 §6
    entry(AS4_AGGREGATOR, "AS4_AGGREGATOR", OPT_TRANS, Optional, Discard, Some(check_as4_aggregator)), // RFC 6793 §6
    entry(AIGP, "AIGP", OPT_NON_TRANS, Optional, Discard, Some(check_aigp)).flags_discarded(), // RFC 7311 §3.2
    entry(LARGE_COMMUNITY, "LARGE_COMMUNITY", OPT_TRANS, Optional, Withdraw, Some(multiple_of_12)), // RFC 8092 §6
    entry(OTC, "OTC", OPT_TRANS, Optional, Withdraw, Some(len_4)), // RFC 9234 §5
];

/// `KNOWN` indexed by code. A code listed twice stops the build.
static BY_CODE: [Option<AttrDesc>; 256] = index(KNOWN);

const fn index(known: &[AttrDesc]) -> [Option<AttrDesc>; 256] {
    let mut t = [None; 256];
    let mut i = 0;
    while i < known.len() {
        let code = known[i].code as usize;
        if t[code].is_some() {
            panic!("an attribute code is listed twice in KNOWN");
        }
        t[code] = Some(known[i]);
        i += 1;
    }
    t
}

/// The descriptor of a known attribute type.
pub fn lookup(code: u8) -> Option<&'static AttrDesc> {
    BY_CODE[usize::from(code)].as_ref()
}

/// The name of a path attribute type (IANA).
pub fn attr_name(code: u8) -> String {
    match lookup(code) {
        Some(d) => d.name.to_string(),
        None => format!("attribute {code}"),
    }
}

fn malformed<T>(why: String) -> Result<T, Bad> {
    Err(Bad::Malformed(why))
}

fn exact_len(v: &[u8], want: usize) -> Result<(), Bad> {
    if v.len() == want {
        Ok(())
    } else {
        malformed(format!("length {} instead of {want}", v.len()))
    }
}

fn positive_multiple(v: &[u8], of: usize) -> Result<(), Bad> {
    if v.is_empty() || v.len() % of != 0 {
        malformed(format!("length {} is not a positive multiple of {of}", v.len()))
    } else {
        Ok(())
    }
}

fn len_0(v: &[u8], _: Session) -> Result<(), Bad> {
    exact_len(v, 0)
}

fn len_4(v: &[u8], _: Session) -> Result<(), Bad> {
    exact_len(v, 4)
}

fn multiple_of_4(v: &[u8], _: Session) -> Result<(), Bad> {
    positive_multiple(v, 4)
}

fn multiple_of_8(v: &[u8], _: Session) -> Result<(), Bad> {
    positive_multiple(v, 8)
}

fn multiple_of_12(v: &[u8], _: Session) -> Result<(), Bad> {
    positive_multiple(v, 12)
}

fn check_origin(v: &[u8], _: Session) -> Result<(), Bad> {
    match v {
        [0..=2] => Ok(()),
        [x] => malformed(format!("undefined value {x}")),
        _ => malformed(format!("length {} instead of 1", v.len())),
    }
}

fn check_as_path(v: &[u8], s: Session) -> Result<(), Bad> {
    aspath::check(v, AsWidth::of_session(s.four_octet_as)).map_err(Bad::Malformed)
}

/// RFC 6793 §3: "a NEW BGP speaker ... MUST NOT send AS4_PATH/AS4_AGGREGATOR to a NEW
/// speaker"; received from one, they are discarded and the UPDATE processed without them.
fn from_a_new_speaker(s: Session) -> Result<(), Bad> {
    if s.four_octet_as {
        Err(Bad::Unwanted("received from a 4-octet AS speaker (RFC 6793 §3)".into()))
    } else {
        Ok(())
    }
}

fn check_as4_path(v: &[u8], s: Session) -> Result<(), Bad> {
    from_a_new_speaker(s)?;
    aspath::check(v, AsWidth::Four).map_err(Bad::Malformed)
}

fn check_as4_aggregator(v: &[u8], s: Session) -> Result<(), Bad> {
    from_a_new_speaker(s)?;
    exact_len(v, 8)
}

fn check_next_hop(v: &[u8], _: Session) -> Result<(), Bad> {
    let [a0, a1, a2, a3] = v else { return malformed(format!("length {} instead of 4", v.len())) };
    let nh = Ipv4Addr::new(*a0, *a1, *a2, *a3);
    if nh.is_unspecified() || nh.is_broadcast() || nh.is_multicast() {
        return malformed(format!("{nh} is not a host address"));
    }
    Ok(())
}

fn check_local_pref(v: &[u8], s: Session) -> Result<(), Bad> {
    if !s.ibgp {
        return Err(Bad::Unwanted("received from an external peer".into()));
    }
    exact_len(v, 4)
}

fn check_aggregator(v: &[u8], s: Session) -> Result<(), Bad> {
    exact_len(v, if s.four_octet_as { 8 } else { 6 })
}

/// RFC 7311 §3: a run of TLVs (type, 2-byte length counting the whole TLV, value) exactly
/// filling the attribute; the AIGP TLV (type 1) is 11 bytes. A repeated TLV type is not
/// malformed (RFC 7311 §3.2; only the first is used).
fn check_aigp(v: &[u8], _: Session) -> Result<(), Bad> {
    let mut rest = v;
    while !rest.is_empty() {
        let [ty, l0, l1, ..] = rest else { return malformed("a TLV header is cut short".into()) };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if len < 3 || len > rest.len() {
            return malformed(format!("a TLV of length {len} does not fit the attribute"));
        }
        if *ty == 1 && len != 11 {
            return malformed(format!("AIGP TLV of length {len} instead of 11"));
        }
        rest = &rest[len..];
    }
    Ok(())
}

/// One attribute as received: flags, type, value, whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawAttr<'a> {
    pub flags: u8,
    pub type_code: u8,
    pub value: &'a [u8],
    pub whole: &'a [u8],
}

/// Where the split of an attribute section stopped: the type of the attribute that did not
/// fit (when its header got that far) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Overrun {
    pub type_code: Option<u8>,
    pub why: String,
}

/// Split a path attribute section. Where an attribute's header or length runs past the
/// section, the split stops and says where, with what was read (RFC 7606 §4: the UPDATE is
/// treated as withdraw; the Total Path Attribute Length still locates the NLRI).
pub(crate) fn split_attrs(mut data: &[u8]) -> (Vec<RawAttr<'_>>, Option<Overrun>) {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (flags, type_code, len, hdr) = match data {
            [f, t, l0, l1, ..] if f & flag::EXTENDED_LENGTH != 0 => {
                (*f, *t, usize::from(u16::from_be_bytes([*l0, *l1])), 4)
            }
            [f, t, l, ..] if f & flag::EXTENDED_LENGTH == 0 => (*f, *t, usize::from(*l), 3),
            _ => {
                let why = format!("{} bytes left, too few for an attribute header", data.len());
                return (out, Some(Overrun { type_code: data.get(1).copied(), why }));
            }
        };
        let Some(whole) = data.get(..hdr + len) else {
            let why = format!(
                "{} of length {len} overruns the path attributes by {} bytes",
                attr_name(type_code),
                hdr + len - data.len()
            );
            return (out, Some(Overrun { type_code: Some(type_code), why }));
        };
        out.push(RawAttr { flags, type_code, value: &whole[hdr..], whole });
        data = &data[hdr + len..];
    }
    (out, None)
}

/// Append one attribute, with the extended length bit when the value needs it (a value over
/// 65535 bytes is cut, which no caller has).
pub(crate) fn push_attr(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX))];
    if value.len() > 255 {
        out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, code]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags & !flag::EXTENDED_LENGTH, code, value.len() as u8]);
    }
    out.extend_from_slice(value);
}

/// A 2-octet AS session's attributes in the 4-octet form (RFC 6793 §4.2.3), the one form the
/// RIB, display, TABLE_DUMP_V2 and policy read: AS_PATH widened with AS4_PATH merged in,
/// AGGREGATOR widened (AS4_AGGREGATOR's value when AGGREGATOR holds AS_TRANS), AS4_PATH and
/// AS4_AGGREGATOR dropped. "If the AGGREGATOR attribute contains an AS number other than
/// AS_TRANS, then AS4_AGGREGATOR and AS4_PATH shall be ignored" (§4.2.3): the aggregating
/// speaker was a 2-octet one, so the AS4_PATH describes no part of this path. Malformed
/// attributes, and what follows an overrun, are copied as they are.
pub fn widen_as_numbers(attrs: &[u8], out: &mut Vec<u8>) {
    let (list, _) = split_attrs(attrs);
    let read = list.iter().map(|a| a.whole.len()).sum::<usize>();
    let tail = attrs.get(read..).unwrap_or_default();
    let aggregator_as = list.iter().find(|a| a.type_code == code::AGGREGATOR).and_then(|a| match a.value {
        [as0, as1, _, _, _, _] => Some(u16::from_be_bytes([*as0, *as1])),
        _ => None,
    });
    let ignore_as4 = aggregator_as.is_some_and(|asn| asn != AS_TRANS);
    let find = |c: u8| list.iter().find(|a| a.type_code == c).filter(|_| !ignore_as4);
    let as4_path = find(code::AS4_PATH).and_then(|a| aspath::decode(a.value, AsWidth::Four));
    let as4_aggr = find(code::AS4_AGGREGATOR).map(|a| a.value).filter(|v| v.len() == 8);
    for a in &list {
        match a.type_code {
            code::AS_PATH => match aspath::decode(a.value, AsWidth::Two) {
                Some(segs) => {
                    let segs = match &as4_path {
                        Some(a4) => aspath::merge_as4(segs, a4.clone()),
                        None => segs,
                    };
                    push_attr(out, a.flags, a.type_code, &aspath::encode(&segs, AsWidth::Four));
                }
                None => out.extend_from_slice(a.whole),
            },
            code::AGGREGATOR => match a.value {
                [as0, as1, ip @ ..] if ip.len() == 4 => {
                    let v = match as4_aggr {
                        Some(a4) if u16::from_be_bytes([*as0, *as1]) == AS_TRANS => a4.to_vec(),
                        _ => {
                            let mut v = Vec::with_capacity(8);
                            v.extend_from_slice(&u32::from(u16::from_be_bytes([*as0, *as1])).to_be_bytes());
                            v.extend_from_slice(ip);
                            v
                        }
                    };
                    push_attr(out, a.flags, a.type_code, &v);
                }
                _ => out.extend_from_slice(a.whole),
            },
            code::AS4_PATH | code::AS4_AGGREGATOR => {}
            _ => out.extend_from_slice(a.whole),
        }
    }
    out.extend_from_slice(tail);
}

#[cfg(test)]
mod tests {
    use super::*;

    const EBGP4: Session = Session { four_octet_as: true, ibgp: false };

    fn check(code: u8, v: &[u8]) -> Result<(), Bad> {
        let d = lookup(code).expect("a known code");
        (d.check.expect("a value check"))(v, EBGP4)
    }

    #[test]
    fn every_table_entry_has_its_iana_name_and_flags() {
        let want: &[(u8, &str, u8)] = &[
            (1, "ORIGIN", 0x40),
            (2, "AS_PATH", 0x40),
            (3, "NEXT_HOP", 0x40),
            (4, "MULTI_EXIT_DISC", 0x80),
            (5, "LOCAL_PREF", 0x40),
            (6, "ATOMIC_AGGREGATE", 0x40),
            (7, "AGGREGATOR", 0xc0),
            (8, "COMMUNITIES", 0xc0),
            (9, "ORIGINATOR_ID", 0x80),
            (10, "CLUSTER_LIST", 0x80),
            (14, "MP_REACH_NLRI", 0x80),
            (15, "MP_UNREACH_NLRI", 0x80),
            (16, "EXTENDED_COMMUNITIES", 0xc0),
            (17, "AS4_PATH", 0xc0),
            (18, "AS4_AGGREGATOR", 0xc0),
            (26, "AIGP", 0x80),
            (32, "LARGE_COMMUNITY", 0xc0),
            (35, "OTC", 0xc0),
        ];
        let got: Vec<(u8, &str, u8)> = KNOWN.iter().map(|d| (d.code, d.name, d.flags)).collect();
        assert_eq!(got, want);
        for &(code, name, flags) in want {
            assert_eq!(lookup(code).map(|d| (d.name, d.flags)), Some((name, flags)));
            assert_eq!(attr_name(code), name);
        }
        let gentle: Vec<&str> =
            KNOWN.iter().filter(|d| d.on_bad_flags == Handling::AttributeDiscard).map(|d| d.name).collect();
        assert_eq!(gentle, ["AIGP"], "bad flags are treat-as-withdraw for every other type");
        assert_eq!(attr_name(99), "attribute 99");
        assert!(lookup(0).is_none() && lookup(255).is_none());
    }

    #[test]
    fn no_code_is_listed_twice_and_the_index_holds_exactly_the_table() {
        let mut codes: Vec<u8> = KNOWN.iter().map(|d| d.code).collect();
        codes.dedup();
        assert_eq!(codes.len(), KNOWN.len());
        assert!(KNOWN.windows(2).all(|w| w[0].code < w[1].code), "in code order");
        assert_eq!(BY_CODE.iter().flatten().count(), KNOWN.len());
        assert!(BY_CODE.iter().enumerate().all(|(i, d)| d.is_none_or(|d| usize::from(d.code) == i)));
    }

    #[test]
    fn only_the_nlri_attributes_go_without_a_value_check_and_reset_when_malformed() {
        for d in KNOWN {
            assert_eq!(d.check.is_none(), d.on_malformed == OnMalformed::SessionReset, "{}", d.name);
        }
    }

    #[test]
    fn otc_is_four_bytes_or_treat_as_withdraw() {
        assert_eq!(check(OTC, &[0, 0, 0xfd, 0xe9]), Ok(()));
        for bad in [&[][..], &[0, 0, 1], &[0, 0, 0, 1, 2]] {
            assert!(matches!(check(OTC, bad), Err(Bad::Malformed(_))), "{bad:?}");
        }
        assert_eq!(lookup(OTC).map(|d| d.on_malformed), Some(OnMalformed::TreatAsWithdraw));
    }

    #[test]
    fn aigp_is_a_run_of_tlvs_with_one_eleven_byte_aigp_tlv() {
        let aigp = [1, 0, 11, 0, 0, 0, 0, 0, 0, 0, 100];
        assert_eq!(check(AIGP, &aigp), Ok(()));
        assert_eq!(check(AIGP, &[&aigp[..], &[7, 0, 4, 9]].concat()), Ok(()), "an unknown TLV beside it");
        assert_eq!(check(AIGP, &[aigp, aigp].concat()), Ok(()), "a repeated TLV is not malformed");
        for (bad, what) in [
            (&aigp[..10], "cut short"),
            (&[1, 0, 10, 0, 0, 0, 0, 0, 0, 0][..], "AIGP TLV of 10 bytes"),
            (&[1, 0][..], "TLV header cut short"),
            (&[7, 0, 2][..], "TLV length below its header"),
        ] {
            assert!(matches!(check(AIGP, bad), Err(Bad::Malformed(_))), "{what}");
        }
        let d = lookup(AIGP).map(|d| (d.on_malformed, d.on_bad_flags));
        assert_eq!(d, Some((OnMalformed::AttributeDiscard, Handling::AttributeDiscard)));
    }

    #[test]
    fn local_pref_from_an_external_peer_is_unwanted_not_malformed() {
        assert!(matches!(check(LOCAL_PREF, &[0, 0, 0, 100]), Err(Bad::Unwanted(_))));
        let ibgp = Session { four_octet_as: true, ibgp: true };
        let lp = lookup(LOCAL_PREF).and_then(|d| d.check).expect("LOCAL_PREF has a check");
        assert_eq!(lp(&[0, 0, 0, 100], ibgp), Ok(()));
        assert!(matches!(lp(&[0, 100], ibgp), Err(Bad::Malformed(_))));
    }

    #[test]
    fn long_values_get_the_extended_length_bit_and_short_ones_lose_it() {
        let mut out = Vec::new();
        push_attr(&mut out, flag::OPTIONAL, 99, &[7; 300]);
        assert_eq!(&out[..4], [0x90, 99, 1, 44]);
        out.clear();
        push_attr(&mut out, flag::TRANSITIVE | flag::EXTENDED_LENGTH, 2, &[]);
        assert_eq!(out, [0x40, 2, 0]);
    }
}
