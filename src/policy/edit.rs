//! `set` actions applied to an attribute set in wire form, once per route after its chain
//! decided: LOCAL_PREF (RFC 4271 §5.1.5), MULTI_EXIT_DISC (§5.1.4), COMMUNITIES (RFC 1997),
//! LARGE_COMMUNITY (RFC 8092), NEXT_HOP (§5.1.3; MP_REACH_NLRI's next hop for IPv6, RFC 4760)
//! and AS_PATH prepends (§5.1.2). Attributes the actions do not name are kept byte for byte.
//!
//! Pure; called by the RIB (import: the post-policy set used for best path) and by
//! `focl policy test`. Input is the RIB's form: 4-octet AS numbers.

use super::SetAction;
use crate::wire::aspath::{self, AsWidth, Segment, AS_SEQUENCE};
use crate::wire::attr::{code, flag, push_attr, split_attrs};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What `set` actions need besides the route.
#[derive(Clone, Copy, Debug)]
pub struct EditContext {
    /// The AS prepended (`prepend`).
    pub local_as: u32,
    /// `next_hop = "self"`: the session's local address, when known.
    pub local_addr: Option<IpAddr>,
    /// `next_hop = "discard"` (RFC 7999 §3 leaves the address to the operator).
    pub discard_v4: Ipv4Addr,
    pub discard_v6: Ipv6Addr,
}

/// RFC 5737 TEST-NET-1 address commonly routed to a discard interface for RTBH.
pub const DEFAULT_DISCARD_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// RFC 6666 discard-only prefix 100::/64.
pub const DEFAULT_DISCARD_V6: Ipv6Addr = Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 1);

/// The attributes and IPv6 next hop after `actions`; `None` when nothing changed.
pub fn apply<'a>(
    actions: impl Iterator<Item = &'a SetAction>,
    attrs: &[u8],
    mp_next_hop: Option<&[u8]>,
    cx: &EditContext,
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let (list, _) = split_attrs(attrs);
    let mut kept: Vec<(u8, u8, Vec<u8>)> = list.iter().map(|a| (a.type_code, a.flags, a.value.to_vec())).collect();
    let value = |kept: &Vec<(u8, u8, Vec<u8>)>, c: u8| kept.iter().find(|a| a.0 == c).map(|a| a.2.clone());
    let u32s = |v: &[u8], n: usize| -> Vec<u32> {
        v.chunks_exact(4).take(n).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    let mut med = value(&kept, code::MULTI_EXIT_DISC).and_then(|v| u32s(&v, 1).first().copied());
    let mut local_pref = value(&kept, code::LOCAL_PREF).and_then(|v| u32s(&v, 1).first().copied());
    let mut comms: Vec<u32> = value(&kept, code::COMMUNITIES).map(|v| u32s(&v, usize::MAX)).unwrap_or_default();
    let mut large: Vec<[u32; 3]> = value(&kept, code::LARGE_COMMUNITY)
        .map(|v| u32s(&v, usize::MAX).chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
        .unwrap_or_default();
    let mut next_hop: Option<IpAddr> = None;
    let mut prepend = 0usize;
    let (med0, lp0, comms0, large0) = (med, local_pref, comms.clone(), large.clone());
    for a in actions {
        match a {
            SetAction::LocalPref(v) => local_pref = Some(*v),
            SetAction::Med(v) => med = Some(*v),
            SetAction::MedAdd(d) => {
                let base = i64::from(med.unwrap_or(0));
                med = Some((base + d).clamp(0, i64::from(u32::MAX)) as u32);
            }
            SetAction::CommunityAdd(add) => {
                for c in add {
                    if !comms.contains(c) {
                        comms.push(*c);
                    }
                }
            }
            SetAction::CommunityRemove(pats) => comms.retain(|c| !pats.iter().any(|p| p.matches(*c))),
            SetAction::LargeCommunityAdd(add) => {
                for c in add {
                    if !large.contains(c) {
                        large.push(*c);
                    }
                }
            }
            SetAction::LargeCommunityRemove(pats) => large.retain(|c| !pats.iter().any(|p| p.matches(c))),
            SetAction::NextHop(super::NextHopSet::Addr(a)) => next_hop = Some(*a),
            SetAction::NextHop(super::NextHopSet::SelfAddr) => next_hop = cx.local_addr.or(next_hop),
            SetAction::NextHop(super::NextHopSet::Discard) => {
                // The family of the route decides: an IPv6 route has its next hop in MP_REACH.
                next_hop =
                    Some(if mp_next_hop.is_some() { IpAddr::V6(cx.discard_v6) } else { IpAddr::V4(cx.discard_v4) })
            }
            SetAction::Prepend(n) => prepend += usize::from(*n),
        }
    }
    let mut changed = false;
    let mut put = |kept: &mut Vec<(u8, u8, Vec<u8>)>, c: u8, flags: u8, v: Option<Vec<u8>>| {
        changed = true;
        kept.retain(|a| a.0 != c);
        if let Some(v) = v {
            kept.push((c, flags, v));
        }
    };
    if local_pref != lp0 {
        put(&mut kept, code::LOCAL_PREF, flag::TRANSITIVE, local_pref.map(|v| v.to_be_bytes().to_vec()));
    }
    if med != med0 {
        put(&mut kept, code::MULTI_EXIT_DISC, flag::OPTIONAL, med.map(|v| v.to_be_bytes().to_vec()));
    }
    if comms != comms0 {
        let v: Vec<u8> = comms.iter().flat_map(|c| c.to_be_bytes()).collect();
        put(&mut kept, code::COMMUNITIES, flag::OPTIONAL | flag::TRANSITIVE, (!v.is_empty()).then_some(v));
    }
    if large != large0 {
        let v: Vec<u8> = large.iter().flat_map(|c| c.iter().flat_map(|w| w.to_be_bytes())).collect();
        put(&mut kept, code::LARGE_COMMUNITY, flag::OPTIONAL | flag::TRANSITIVE, (!v.is_empty()).then_some(v));
    }
    if prepend > 0 {
        let mut segs = value(&kept, code::AS_PATH).and_then(|v| aspath::decode(&v, AsWidth::Four)).unwrap_or_default();
        let add = std::iter::repeat_n(cx.local_as, prepend);
        match segs.first_mut() {
            Some(s) if s.kind == AS_SEQUENCE && s.asns.len() + prepend <= 255 => {
                s.asns.splice(0..0, add);
            }
            _ => segs.insert(0, Segment { kind: AS_SEQUENCE, asns: add.collect() }),
        }
        put(&mut kept, code::AS_PATH, flag::TRANSITIVE, Some(aspath::encode(&segs, AsWidth::Four)));
    }
    let mut mp = mp_next_hop.map(<[u8]>::to_vec);
    match next_hop {
        Some(IpAddr::V4(v4))
            if mp_next_hop.is_none() && value(&kept, code::NEXT_HOP).as_deref() != Some(&v4.octets()[..]) =>
        {
            put(&mut kept, code::NEXT_HOP, flag::TRANSITIVE, Some(v4.octets().to_vec()));
        }
        Some(IpAddr::V6(v6)) if mp_next_hop.is_some() => {
            let new = v6.octets().to_vec();
            if mp.as_deref() != Some(&new[..]) {
                mp = Some(new);
                changed = true;
            }
        }
        _ => {} // a next hop of the other family cannot carry this route: left as it is
    }
    if !changed {
        return None;
    }
    kept.sort_by_key(|a| a.0);
    let mut out = Vec::with_capacity(attrs.len() + 16);
    for (c, f, v) in &kept {
        push_attr(&mut out, *f, *c, v);
    }
    Some((out, mp))
}
