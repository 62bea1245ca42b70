//! Attribute sets, interned in a slab: the prefixes of one UPDATE share one set, and identical
//! sets from other UPDATEs and peers are found in the intern index and shared too. A route
//! holds the set's 32-bit id; each set counts the routes that hold it and is freed when the
//! count reaches zero (no periodic sweep). Attributes stay in wire form and are decoded only
//! for display; what best-path selection needs is decoded once, when the set is interned.
//!
//! Memory: a set is one allocation (a flags byte, the next hop's length and bytes, then the
//! attributes) beside its slot; the intern index maps a hash of the set to the first slot of a
//! chain of sets with that hash (`Slot::next`), so the index holds no pointer to the set.

use super::table::AttrId;
use crate::wire::aspath::{self, AsWidth, Segment, AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SEQUENCE, AS_SET};
use crate::wire::attr::{code, split_attrs};
use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A set of path attributes in wire form as received: what an UPDATE brings to be interned,
/// and what the slab gives back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrSet<'a> {
    /// Path attributes without MP_REACH_NLRI / MP_UNREACH_NLRI.
    pub attrs: &'a [u8],
    /// IPv6 next hop(s) from MP_REACH_NLRI (at most 255 bytes: its length is one octet).
    pub mp_next_hop: Option<&'a [u8]>,
    /// Whether AS numbers in `attrs` are 4 octets (the session's RFC 6793 state).
    pub four_octet: bool,
}

/// `Stored` flags byte.
const FOUR_OCTET: u8 = 1;
const HAS_NEXT_HOP: u8 = 2;

impl AttrSet<'_> {
    /// The one allocation a set is kept in: flags, next hop length, next hop, attributes.
    fn store(&self) -> Box<[u8]> {
        let nh = self.mp_next_hop.unwrap_or_default();
        let nh = &nh[..nh.len().min(255)];
        let mut v = Vec::with_capacity(2 + nh.len() + self.attrs.len());
        let flags =
            if self.four_octet { FOUR_OCTET } else { 0 } | if self.mp_next_hop.is_some() { HAS_NEXT_HOP } else { 0 };
        v.extend_from_slice(&[flags, nh.len() as u8]);
        v.extend_from_slice(nh);
        v.extend_from_slice(self.attrs);
        v.into_boxed_slice()
    }

    /// The view of a stored set.
    fn of_stored(b: &[u8]) -> AttrSet<'_> {
        let (flags, nh_len) = (b.first().copied().unwrap_or(0), usize::from(b.get(1).copied().unwrap_or(0)));
        let nh = b.get(2..2 + nh_len).unwrap_or_default();
        AttrSet {
            attrs: b.get(2 + nh_len..).unwrap_or_default(),
            mp_next_hop: (flags & HAS_NEXT_HOP != 0).then_some(nh),
            four_octet: flags & FOUR_OCTET != 0,
        }
    }
}

/// What the decision process (RFC 4271 §9.1) reads of a set, decoded once at intern time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathSummary {
    pub local_pref: Option<u32>,
    /// RFC 4271 §9.1.2.2 (c): an absent MULTI_EXIT_DISC counts as the lowest value, 0.
    pub med: u32,
    /// The AS the route was learned from: the first AS of the AS_PATH (0 for an empty path).
    pub neighbor_as: u32,
    /// RFC 4271 §9.1.2.2 (a): AS_SET counts 1; RFC 5065 §5.3: confederation segments count 0.
    pub path_len: u32,
    /// 0 IGP, 1 EGP, 2 INCOMPLETE (RFC 4271 §5.1.1); an absent ORIGIN counts as INCOMPLETE.
    pub origin: u8,
    /// RFC 6811 §2 Route Origin ASN: the last AS of a final AS_SEQUENCE; `None` for a final
    /// AS_SET (no origin: never Valid) and for `origin_local`.
    pub origin_as: Option<u32>,
    /// An empty AS_PATH or one ending in a confederation segment: the origin is the
    /// receiving speaker's own AS (RFC 6811 §2).
    pub origin_local: bool,
    /// COMMUNITIES holds BLACKHOLE (RFC 7999), so counting blackhole routes reads no bytes.
    pub blackhole: bool,
}

impl PathSummary {
    pub fn of(set: &AttrSet) -> PathSummary {
        let mut s = PathSummary { origin: 2, ..Default::default() };
        let (list, _) = split_attrs(set.attrs);
        let segs = effective_as_path(set);
        for a in &list {
            match (a.type_code, a.value) {
                (code::ORIGIN, [o]) => s.origin = (*o).min(2),
                (code::MULTI_EXIT_DISC, [a, b, c, d]) => s.med = u32::from_be_bytes([*a, *b, *c, *d]),
                (code::LOCAL_PREF, [a, b, c, d]) => s.local_pref = Some(u32::from_be_bytes([*a, *b, *c, *d])),
                (code::COMMUNITIES, v) => {
                    s.blackhole = v
                        .chunks_exact(4)
                        .any(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) == crate::policy::sets::BLACKHOLE)
                }
                _ => {}
            }
        }
        for seg in &segs {
            s.path_len += match seg.kind {
                AS_SET => 1,
                AS_CONFED_SEQUENCE | AS_CONFED_SET => 0,
                _ => seg.asns.len() as u32,
            };
        }
        s.neighbor_as = segs.iter().find(|g| g.kind == AS_SEQUENCE).and_then(|g| g.asns.first().copied()).unwrap_or(0);
        match segs.last() {
            Some(g) if g.kind == AS_SEQUENCE => s.origin_as = g.asns.last().copied(),
            Some(g) if g.kind == AS_SET => {}
            _ => s.origin_local = true,
        }
        s
    }

    /// The Route Origin ASN of RFC 6811 §2 for a route received on a session whose local AS
    /// is `local_as`.
    pub fn route_origin(&self, local_as: u32) -> Option<u32> {
        if self.origin_local {
            Some(local_as)
        } else {
            self.origin_as
        }
    }
}

/// The AS_PATH of a set with 4-octet AS numbers: as received on a 4-octet session, or with
/// AS4_PATH merged in on a 2-octet one (RFC 6793 §4.2.3). Empty when absent or malformed.
pub fn effective_as_path(set: &AttrSet) -> Vec<Segment> {
    let (list, _) = split_attrs(set.attrs);
    let width = AsWidth::of_session(set.four_octet);
    let path = list.iter().find(|a| a.type_code == code::AS_PATH).and_then(|a| aspath::decode(a.value, width));
    let Some(path) = path else { return Vec::new() };
    if set.four_octet {
        return path;
    }
    match list.iter().find(|a| a.type_code == code::AS4_PATH).and_then(|a| aspath::decode(a.value, AsWidth::Four)) {
        Some(as4) => aspath::merge_as4(path, as4),
        None => path,
    }
}

/// No slot (the end of a hash chain).
const NONE: AttrId = AttrId::MAX;

struct Slot {
    /// The stored set (`AttrSet::store`); `None` for a free slot.
    set: Option<Box<[u8]>>,
    summary: PathSummary,
    /// Routes holding this set.
    refs: u32,
    /// The next set with the same hash.
    next: AttrId,
}

/// The slab of interned sets with its index.
pub struct AttrSlab {
    slots: Vec<Slot>,
    free: Vec<AttrId>,
    /// Hash of a set -> the first slot of its chain. Keyed SipHash (std's `RandomState`), so a
    /// peer cannot choose attributes that all fall in one chain.
    index: HashMap<u64, AttrId>,
    hasher: RandomState,
    sets: usize,
    /// Bits of the hash kept: all but in tests that put every set in one chain.
    hash_mask: u64,
}

impl Default for AttrSlab {
    fn default() -> Self {
        AttrSlab {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            hasher: RandomState::new(),
            sets: 0,
            hash_mask: u64::MAX,
        }
    }
}

impl AttrSlab {
    fn hash(&self, set: &AttrSet) -> u64 {
        let mut h = self.hasher.build_hasher();
        let nh = set.mp_next_hop.unwrap_or_default();
        h.write(&[u8::from(set.four_octet), u8::from(set.mp_next_hop.is_some()), nh.len().min(255) as u8]);
        h.write(&nh[..nh.len().min(255)]);
        h.write(set.attrs);
        h.finish() & self.hash_mask
    }

    /// The slot holding `set`, if interned.
    fn find(&self, hash: u64, set: &AttrSet) -> Option<AttrId> {
        let mut id = *self.index.get(&hash)?;
        while let Some(s) = self.slots.get(id as usize) {
            if s.set.as_deref().is_some_and(|b| AttrSet::of_stored(b) == *set) {
                return Some(id);
            }
            id = s.next;
        }
        None
    }

    /// The id of `set`, interning it (with no routes yet) when it is new. A set that ends up
    /// held by no route must be given back with `release_unused`.
    pub fn intern(&mut self, set: AttrSet) -> AttrId {
        let hash = self.hash(&set);
        if let Some(id) = self.find(hash, &set) {
            return id;
        }
        let next_free = self.free.last().copied().unwrap_or(self.slots.len() as AttrId);
        let next = self.index.insert(hash, next_free).unwrap_or(NONE);
        let slot = Slot { set: Some(set.store()), summary: PathSummary::of(&set), refs: 0, next };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as AttrId
            }
        };
        self.sets += 1;
        id
    }

    /// One more route holds `id`.
    pub fn hold(&mut self, id: AttrId) {
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.refs += 1;
        }
    }

    /// A route let go of `id`; the set is freed when no route holds it.
    pub fn release(&mut self, id: AttrId) {
        let Some(s) = self.slots.get_mut(id as usize) else { return };
        s.refs = s.refs.saturating_sub(1);
        if s.refs == 0 {
            self.free_slot(id);
        }
    }

    /// Free `id` if no route holds it (a set interned for an UPDATE whose routes were refused).
    pub fn release_unused(&mut self, id: AttrId) {
        if self.slots.get(id as usize).is_some_and(|s| s.refs == 0 && s.set.is_some()) {
            self.free_slot(id);
        }
    }

    /// Take `id` out of its hash chain and put the slot on the free list.
    fn free_slot(&mut self, id: AttrId) {
        let Some(hash) = self.get(id).map(|set| self.hash(&set)) else { return };
        let next = self.slots[id as usize].next;
        if let Entry::Occupied(mut head) = self.index.entry(hash) {
            if *head.get() == id {
                if next == NONE {
                    head.remove();
                } else {
                    head.insert(next);
                }
            } else {
                let mut at = *head.get();
                while let Some(s) = self.slots.get_mut(at as usize) {
                    if s.next == id {
                        s.next = next;
                        break;
                    }
                    at = s.next;
                }
            }
        }
        let s = &mut self.slots[id as usize];
        s.set = None;
        s.next = NONE;
        self.free.push(id);
        self.sets -= 1;
    }

    pub fn get(&self, id: AttrId) -> Option<AttrSet<'_>> {
        self.slots.get(id as usize).and_then(|s| s.set.as_deref()).map(AttrSet::of_stored)
    }

    pub fn summary(&self, id: AttrId) -> PathSummary {
        self.slots.get(id as usize).map(|s| s.summary).unwrap_or_default()
    }

    /// Distinct sets held.
    pub fn len(&self) -> usize {
        self.sets
    }

    pub fn is_empty(&self) -> bool {
        self.sets == 0
    }

    /// Routes holding `id` (tests).
    pub fn refs(&self, id: AttrId) -> u32 {
        self.slots.get(id as usize).map(|s| s.refs).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(med: u8) -> Vec<u8> {
        vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, 0x80, 4, 4, 0, 0, 0, med]
    }

    fn set(a: &[u8]) -> AttrSet<'_> {
        AttrSet { attrs: a, mp_next_hop: None, four_octet: true }
    }

    #[test]
    fn identical_sets_share_one_id_and_are_freed_when_the_last_route_lets_go() {
        let mut s = AttrSlab::default();
        let (one, two, three) = (attrs(1), attrs(2), attrs(3));
        let a = s.intern(set(&one));
        let b = s.intern(set(&one.clone()));
        assert_eq!(a, b);
        s.hold(a);
        s.hold(a);
        let c = s.intern(set(&two));
        assert_ne!(a, c);
        s.release_unused(c);
        assert_eq!(s.len(), 1, "a set no route took is freed at once");
        s.release(a);
        assert_eq!((s.len(), s.refs(a)), (1, 1));
        s.release(a);
        assert!(s.is_empty() && s.get(a).is_none());
        // The freed id is used again.
        assert_eq!(s.intern(set(&three)), a);
    }

    #[test]
    fn a_set_reads_back_as_interned_with_its_next_hop_and_as_width() {
        let mut s = AttrSlab::default();
        let a = attrs(1);
        let nh = [0x20u8, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let with_nh = AttrSet { attrs: &a, mp_next_hop: Some(&nh), four_octet: false };
        let empty_nh = AttrSet { attrs: &a, mp_next_hop: Some(&[]), four_octet: true };
        let (x, y, z) = (s.intern(with_nh), s.intern(empty_nh), s.intern(set(&a)));
        assert_eq!(s.len(), 3, "the next hop and the AS width tell sets apart");
        assert_eq!((s.get(x), s.get(y), s.get(z)), (Some(with_nh), Some(empty_nh), Some(set(&a))));
    }

    #[test]
    fn sets_with_one_hash_are_told_apart_and_leave_their_chain_in_any_order() {
        let mut s = AttrSlab { hash_mask: 0, ..AttrSlab::default() };
        let all: Vec<Vec<u8>> = (0..6).map(attrs).collect();
        let ids: Vec<AttrId> = all.iter().map(|a| s.intern(set(a))).collect();
        for (a, id) in all.iter().zip(&ids) {
            s.hold(*id);
            assert_eq!(s.intern(set(a)), *id);
        }
        // Out of the middle, the head and the tail of the chain.
        for i in [2, 5, 0] {
            s.release(ids[i]);
        }
        for (i, (a, id)) in all.iter().zip(&ids).enumerate() {
            let gone = [2, 5, 0].contains(&i);
            assert_eq!(s.get(*id).is_none(), gone);
            if !gone {
                assert_eq!(s.intern(set(a)), *id, "set {i} still found");
            }
        }
        assert_eq!(s.len(), 3);
        let again = s.intern(set(&all[2]));
        assert!(ids.contains(&again) && s.get(again) == Some(set(&all[2])));
    }

    #[test]
    fn the_summary_reads_origin_med_local_pref_and_path_length() {
        let mut a = attrs(7);
        a.extend_from_slice(&[0x40, 5, 4, 0, 0, 0, 200]);
        let s = PathSummary::of(&set(&a));
        assert_eq!(
            s,
            PathSummary {
                local_pref: Some(200),
                med: 7,
                neighbor_as: 65002,
                path_len: 1,
                origin: 0,
                origin_as: Some(65002),
                origin_local: false,
                blackhole: false
            }
        );
    }
}
