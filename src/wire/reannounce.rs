//! Announcing routes taken from a TABLE_DUMP_V2 dump (`[[sources]]`): the dump's path
//! attributes turned into the ones one session gets. Pure code, fed by the RIB thread for
//! every attribute set of a source and every session it goes to; emits the attribute block
//! that `update::announce_with_attrs` packs prefixes behind.
//!
//! The dump's attributes always carry 4-octet AS numbers (RFC 6396 §4.3.4).

use super::aspath::{self, AsWidth, Segment, AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SEQUENCE};
use super::attr::{code, flag, push_attr, split_attrs};
use super::open::AS_TRANS;
use std::net::IpAddr;

/// The RFC 4271 §4.3 Partial bit, set on an optional transitive attribute passed on without
/// being recognized (§5).
const PARTIAL: u8 = 0x20;

/// RFC 4271 §5.1.5: the degree of preference sent to iBGP when the dump has none.
const DEFAULT_LOCAL_PREF: u32 = 100;

/// What the rewrite needs to know of the session the routes go out on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportSession {
    pub local_as: u32,
    pub ibgp: bool,
    /// RFC 6793 negotiated.
    pub four_octet_as: bool,
    /// Our address on the session: the NEXT_HOP of IPv4 routes (IPv6 ones carry theirs in
    /// MP_REACH_NLRI, built with the UPDATE).
    pub next_hop: IpAddr,
    /// RFC 9234 §5: OTC to add when the dump's route has none.
    pub otc: Option<u32>,
}

/// The attributes of a dumped route as sent on `s`, ordered by type code (RFC 4271 §5):
/// - ORIGIN, MULTI_EXIT_DISC, ATOMIC_AGGREGATE, COMMUNITIES, EXTENDED_COMMUNITIES,
///   LARGE_COMMUNITY, OTC kept;
/// - AS_PATH: our AS prepended towards eBGP (RFC 4271 §5.1.2, confederation segments
///   removed, RFC 5065 §5.3), kept towards iBGP; towards a 2-octet speaker with AS_TRANS for
///   the large AS numbers and the true path in AS4_PATH (RFC 6793 §4.2.2); AGGREGATOR the same
///   way with AS4_AGGREGATOR;
/// - NEXT_HOP: `s.next_hop` for IPv4 (§5.1.3); none for IPv6;
/// - LOCAL_PREF only towards iBGP (§5.1.5), 100 when the dump has none;
/// - MP_REACH/MP_UNREACH_NLRI, AS4_PATH, AS4_AGGREGATOR, ORIGINATOR_ID and CLUSTER_LIST
///   (RFC 4456 §8, route reflection is not ours) and unknown non-transitive attributes
///   dropped; unknown optional transitive ones kept with the Partial bit (§5).
///
/// An error when ORIGIN or AS_PATH is missing or AS_PATH is malformed (RFC 4271 §5: both are
/// mandatory): the route is not announced.
pub fn rewrite_dump_attrs(dump: &[u8], ipv4: bool, s: &ExportSession) -> Result<Vec<u8>, String> {
    let (list, overrun) = split_attrs(dump);
    if let Some(o) = overrun {
        return Err(o.why);
    }
    let mut out: Vec<(u8, Vec<u8>)> = Vec::with_capacity(list.len() + 2);
    let width = AsWidth::of_session(s.four_octet_as);
    let (mut origin, mut as_path, mut local_pref, mut otc) = (false, false, false, false);
    for a in &list {
        let mut one = Vec::with_capacity(a.whole.len() + 4);
        match a.type_code {
            code::ORIGIN => {
                origin = true;
                one.extend_from_slice(a.whole);
            }
            code::AS_PATH => {
                let mut segs = aspath::decode(a.value, AsWidth::Four).ok_or("malformed AS_PATH")?;
                if !s.ibgp {
                    segs.retain(|g| g.kind != AS_CONFED_SEQUENCE && g.kind != AS_CONFED_SET);
                    match segs.first_mut() {
                        Some(g) if g.kind == AS_SEQUENCE && g.asns.len() < 255 => g.asns.insert(0, s.local_as),
                        _ => segs.insert(0, Segment { kind: AS_SEQUENCE, asns: vec![s.local_as] }),
                    }
                }
                as_path = true;
                push_attr(&mut one, flag::TRANSITIVE, code::AS_PATH, &aspath::encode(&segs, width));
                let wide = segs.iter().flat_map(|g| g.asns.iter()).any(|&n| n > u32::from(u16::MAX));
                if !s.four_octet_as && wide {
                    let as4: Vec<Segment> =
                        segs.into_iter().filter(|g| g.kind != AS_CONFED_SEQUENCE && g.kind != AS_CONFED_SET).collect();
                    let mut a4 = Vec::new();
                    push_attr(
                        &mut a4,
                        flag::OPTIONAL | flag::TRANSITIVE,
                        code::AS4_PATH,
                        &aspath::encode(&as4, AsWidth::Four),
                    );
                    out.push((code::AS4_PATH, a4));
                }
            }
            code::LOCAL_PREF if s.ibgp => {
                local_pref = true;
                one.extend_from_slice(a.whole);
            }
            code::AGGREGATOR => {
                // RFC 7606 §7.7: a malformed AGGREGATOR is discarded.
                let [a0, a1, a2, a3, ip @ ..] = a.value else { continue };
                if ip.len() != 4 {
                    continue;
                }
                let asn = u32::from_be_bytes([*a0, *a1, *a2, *a3]);
                if s.four_octet_as {
                    one.extend_from_slice(a.whole);
                } else {
                    let two = u16::try_from(asn).unwrap_or(AS_TRANS);
                    let mut v = two.to_be_bytes().to_vec();
                    v.extend_from_slice(ip);
                    push_attr(&mut one, a.flags, code::AGGREGATOR, &v);
                    if asn > u32::from(u16::MAX) {
                        let mut a4 = Vec::new();
                        push_attr(&mut a4, flag::OPTIONAL | flag::TRANSITIVE, code::AS4_AGGREGATOR, a.value);
                        out.push((code::AS4_AGGREGATOR, a4));
                    }
                }
            }
            code::OTC => {
                otc = true;
                one.extend_from_slice(a.whole);
            }
            code::MULTI_EXIT_DISC
            | code::ATOMIC_AGGREGATE
            | code::COMMUNITIES
            | code::EXTENDED_COMMUNITIES
            | code::LARGE_COMMUNITY => one.extend_from_slice(a.whole),
            code::NEXT_HOP
            | code::LOCAL_PREF
            | code::MP_REACH_NLRI
            | code::MP_UNREACH_NLRI
            | code::AS4_PATH
            | code::AS4_AGGREGATOR
            | code::ORIGINATOR_ID
            | code::CLUSTER_LIST => continue,
            _ if a.flags & flag::OPTIONAL != 0 && a.flags & flag::TRANSITIVE != 0 => {
                push_attr(&mut one, a.flags | PARTIAL, a.type_code, a.value);
            }
            _ => continue,
        }
        out.push((a.type_code, one));
    }
    if !origin {
        return Err("no ORIGIN".into());
    }
    if !as_path {
        return Err("no AS_PATH".into());
    }
    if let (true, IpAddr::V4(nh)) = (ipv4, s.next_hop) {
        let mut one = Vec::new();
        push_attr(&mut one, flag::TRANSITIVE, code::NEXT_HOP, &nh.octets());
        out.push((code::NEXT_HOP, one));
    }
    if s.ibgp && !local_pref {
        let mut one = Vec::new();
        push_attr(&mut one, flag::TRANSITIVE, code::LOCAL_PREF, &DEFAULT_LOCAL_PREF.to_be_bytes());
        out.push((code::LOCAL_PREF, one));
    }
    if let (false, Some(asn)) = (otc, s.otc) {
        let mut one = Vec::new();
        push_attr(&mut one, flag::OPTIONAL | flag::TRANSITIVE, code::OTC, &asn.to_be_bytes());
        out.push((code::OTC, one));
    }
    out.sort_by_key(|(c, _)| *c);
    Ok(out.into_iter().flat_map(|(_, v)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        push_attr(&mut v, flags, code, value);
        v
    }

    /// A dumped route: ORIGIN IGP, AS_PATH 30844 174 4200000000, NEXT_HOP 196.223.14.55, MED 7,
    /// LOCAL_PREF 80, COMMUNITIES 30844:1, AGGREGATOR 4200000000/10.0.0.1, CLUSTER_LIST, an
    /// unknown optional transitive (99) and an unknown optional non-transitive (98).
    fn dump() -> Vec<u8> {
        let mut path = Vec::new();
        aspath::encode_segment(&mut path, AS_SEQUENCE, &[30844, 174, 4_200_000_000], AsWidth::Four);
        let mut aggr = 4_200_000_000u32.to_be_bytes().to_vec();
        aggr.extend_from_slice(&[10, 0, 0, 1]);
        [
            attr(flag::TRANSITIVE, code::ORIGIN, &[0]),
            attr(flag::TRANSITIVE, code::AS_PATH, &path),
            attr(flag::TRANSITIVE, code::NEXT_HOP, &[196, 223, 14, 55]),
            attr(flag::OPTIONAL, code::MULTI_EXIT_DISC, &7u32.to_be_bytes()),
            attr(flag::TRANSITIVE, code::LOCAL_PREF, &80u32.to_be_bytes()),
            attr(flag::OPTIONAL | flag::TRANSITIVE, code::AGGREGATOR, &aggr),
            attr(flag::OPTIONAL | flag::TRANSITIVE, code::COMMUNITIES, &[0x78, 0x7c, 0, 1]),
            attr(flag::OPTIONAL, code::CLUSTER_LIST, &[1, 2, 3, 4]),
            attr(flag::OPTIONAL, 98, &[1]),
            attr(flag::OPTIONAL | flag::TRANSITIVE, 99, &[2]),
        ]
        .concat()
    }

    fn session(ibgp: bool, four_octet_as: bool) -> ExportSession {
        ExportSession { local_as: 65001, ibgp, four_octet_as, next_hop: "192.0.2.1".parse().unwrap(), otc: None }
    }

    /// (type code, flags, value) of every attribute.
    fn list(attrs: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
        let (l, o) = split_attrs(attrs);
        assert!(o.is_none());
        l.iter().map(|a| (a.type_code, a.flags, a.value.to_vec())).collect()
    }

    fn value(attrs: &[u8], c: u8) -> Option<Vec<u8>> {
        list(attrs).into_iter().find(|(t, _, _)| *t == c).map(|(_, _, v)| v)
    }

    #[test]
    fn on_ebgp_our_as_is_prepended_the_next_hop_is_ours_and_local_pref_and_reflection_attributes_go() {
        let out = rewrite_dump_attrs(&dump(), true, &session(false, true)).unwrap();
        let codes: Vec<u8> = list(&out).iter().map(|(c, _, _)| *c).collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 7, 8, 99], "ordered by type code, LOCAL_PREF, CLUSTER_LIST and 98 gone");
        let mut path = Vec::new();
        aspath::encode_segment(&mut path, AS_SEQUENCE, &[65001, 30844, 174, 4_200_000_000], AsWidth::Four);
        assert_eq!(value(&out, code::AS_PATH), Some(path));
        assert_eq!(value(&out, code::NEXT_HOP), Some(vec![192, 0, 2, 1]));
        assert_eq!(value(&out, code::MULTI_EXIT_DISC), Some(7u32.to_be_bytes().to_vec()));
        let unknown = list(&out).into_iter().find(|(c, _, _)| *c == 99).unwrap();
        assert_eq!(unknown.1 & PARTIAL, PARTIAL, "an unknown transitive attribute is passed on as partial");
    }

    #[test]
    fn on_ibgp_the_path_and_local_pref_are_kept_and_a_missing_local_pref_becomes_100() {
        let out = rewrite_dump_attrs(&dump(), true, &session(true, true)).unwrap();
        let mut path = Vec::new();
        aspath::encode_segment(&mut path, AS_SEQUENCE, &[30844, 174, 4_200_000_000], AsWidth::Four);
        assert_eq!(value(&out, code::AS_PATH), Some(path));
        assert_eq!(value(&out, code::LOCAL_PREF), Some(80u32.to_be_bytes().to_vec()));
        let without: Vec<u8> =
            [attr(flag::TRANSITIVE, code::ORIGIN, &[2]), attr(flag::TRANSITIVE, code::AS_PATH, &[])].concat();
        let out = rewrite_dump_attrs(&without, true, &session(true, true)).unwrap();
        assert_eq!(value(&out, code::LOCAL_PREF), Some(100u32.to_be_bytes().to_vec()));
    }

    #[test]
    fn a_two_octet_session_gets_as_trans_with_as4_path_and_as4_aggregator() {
        let out = rewrite_dump_attrs(&dump(), true, &session(false, false)).unwrap();
        let mut two = Vec::new();
        aspath::encode_segment(&mut two, AS_SEQUENCE, &[65001, 30844, 174, u32::from(AS_TRANS)], AsWidth::Two);
        assert_eq!(value(&out, code::AS_PATH), Some(two));
        let mut four = Vec::new();
        aspath::encode_segment(&mut four, AS_SEQUENCE, &[65001, 30844, 174, 4_200_000_000], AsWidth::Four);
        assert_eq!(value(&out, code::AS4_PATH), Some(four));
        assert_eq!(value(&out, code::AGGREGATOR), Some([&AS_TRANS.to_be_bytes()[..], &[10, 0, 0, 1]].concat()));
        let mut a4 = 4_200_000_000u32.to_be_bytes().to_vec();
        a4.extend_from_slice(&[10, 0, 0, 1]);
        assert_eq!(value(&out, code::AS4_AGGREGATOR), Some(a4));
    }

    #[test]
    fn an_ipv6_route_has_no_next_hop_attribute_and_the_dumps_mp_reach_is_not_copied() {
        let mp = attr(
            flag::OPTIONAL,
            code::MP_REACH_NLRI,
            &[16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        let d = [dump(), mp].concat();
        let out = rewrite_dump_attrs(&d, false, &session(false, true)).unwrap();
        assert_eq!(value(&out, code::NEXT_HOP), None);
        assert_eq!(value(&out, code::MP_REACH_NLRI), None);
    }

    #[test]
    fn a_route_without_as_path_or_with_a_broken_one_is_refused() {
        let origin_only = attr(flag::TRANSITIVE, code::ORIGIN, &[0]);
        assert_eq!(rewrite_dump_attrs(&origin_only, true, &session(false, true)), Err("no AS_PATH".into()));
        let broken = [origin_only.clone(), attr(flag::TRANSITIVE, code::AS_PATH, &[2, 3, 0, 0])].concat();
        assert!(rewrite_dump_attrs(&broken, true, &session(false, true)).is_err());
        assert!(rewrite_dump_attrs(&[0x40, 1], true, &session(false, true)).is_err());
    }

    #[test]
    fn otc_is_added_on_a_role_session_unless_the_route_has_one() {
        let s = ExportSession { otc: Some(65001), ..session(false, true) };
        let out = rewrite_dump_attrs(&dump(), true, &s).unwrap();
        assert_eq!(value(&out, code::OTC), Some(65001u32.to_be_bytes().to_vec()));
        let with = [dump(), attr(flag::OPTIONAL | flag::TRANSITIVE, code::OTC, &7u32.to_be_bytes())].concat();
        let out = rewrite_dump_attrs(&with, true, &s).unwrap();
        assert_eq!(value(&out, code::OTC), Some(7u32.to_be_bytes().to_vec()));
    }
}
