//! Attribute sets, interned in a slab: the prefixes of one UPDATE share one set, and identical
//! sets from other UPDATEs and peers are found in the intern index and shared too. A route
//! holds the set's 32-bit id; each set counts the routes that hold it and is freed when the
//! count reaches zero (no periodic sweep). Attributes stay in wire form and are decoded only
//! for display; what best-path selection needs is decoded once, when the set is interned.

use super::table::AttrId;
use crate::wire::aspath::{self, AsWidth, Segment, AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SEQUENCE, AS_SET};
use crate::wire::attr::{code, split_attrs};
use std::collections::HashMap;
use std::rc::Rc;

/// An interned set of path attributes, in wire form as received.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AttrSet {
    /// Path attributes without MP_REACH_NLRI / MP_UNREACH_NLRI.
    pub attrs: Box<[u8]>,
    /// IPv6 next hop(s) from MP_REACH_NLRI.
    pub mp_next_hop: Option<Box<[u8]>>,
    /// Whether AS numbers in `attrs` are 4 octets (the session's RFC 6793 state).
    pub four_octet: bool,
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
}

impl PathSummary {
    pub fn of(set: &AttrSet) -> PathSummary {
        let mut s = PathSummary { origin: 2, ..Default::default() };
        let (list, _) = split_attrs(&set.attrs);
        let segs = effective_as_path(set);
        for a in &list {
            match (a.type_code, a.value) {
                (code::ORIGIN, [o]) => s.origin = (*o).min(2),
                (code::MULTI_EXIT_DISC, [a, b, c, d]) => s.med = u32::from_be_bytes([*a, *b, *c, *d]),
                (code::LOCAL_PREF, [a, b, c, d]) => s.local_pref = Some(u32::from_be_bytes([*a, *b, *c, *d])),
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
        s
    }
}

/// The AS_PATH of a set with 4-octet AS numbers: as received on a 4-octet session, or with
/// AS4_PATH merged in on a 2-octet one (RFC 6793 §4.2.3). Empty when absent or malformed.
pub fn effective_as_path(set: &AttrSet) -> Vec<Segment> {
    let (list, _) = split_attrs(&set.attrs);
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

struct Slot {
    set: Option<Rc<AttrSet>>,
    summary: PathSummary,
    /// Routes holding this set.
    refs: u32,
}

/// The slab of interned sets with its index.
#[derive(Default)]
pub struct AttrSlab {
    slots: Vec<Slot>,
    free: Vec<AttrId>,
    index: HashMap<Rc<AttrSet>, AttrId>,
}

impl AttrSlab {
    /// The id of `set`, interning it (with no routes yet) when it is new. A set that ends up
    /// held by no route must be given back with `release_unused`.
    pub fn intern(&mut self, set: AttrSet) -> AttrId {
        if let Some(id) = self.index.get(&set) {
            return *id;
        }
        let summary = PathSummary::of(&set);
        let set = Rc::new(set);
        let slot = Slot { set: Some(set.clone()), summary, refs: 0 };
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
        self.index.insert(set, id);
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

    fn free_slot(&mut self, id: AttrId) {
        if let Some(set) = self.slots.get_mut(id as usize).and_then(|s| s.set.take()) {
            self.index.remove(&set);
            self.free.push(id);
        }
    }

    pub fn get(&self, id: AttrId) -> Option<&AttrSet> {
        self.slots.get(id as usize).and_then(|s| s.set.as_deref())
    }

    pub fn summary(&self, id: AttrId) -> PathSummary {
        self.slots.get(id as usize).map(|s| s.summary).unwrap_or_default()
    }

    /// Distinct sets held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Routes holding `id` (tests).
    pub fn refs(&self, id: AttrId) -> u32 {
        self.slots.get(id as usize).map(|s| s.refs).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(med: u8) -> AttrSet {
        let attrs = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, 0x80, 4, 4, 0, 0, 0, med];
        AttrSet { attrs: attrs.into_boxed_slice(), mp_next_hop: None, four_octet: true }
    }

    #[test]
    fn identical_sets_share_one_id_and_are_freed_when_the_last_route_lets_go() {
        let mut s = AttrSlab::default();
        let a = s.intern(set(1));
        let b = s.intern(set(1));
        assert_eq!(a, b);
        s.hold(a);
        s.hold(a);
        let c = s.intern(set(2));
        assert_ne!(a, c);
        s.release_unused(c);
        assert_eq!(s.len(), 1, "a set no route took is freed at once");
        s.release(a);
        assert_eq!((s.len(), s.refs(a)), (1, 1));
        s.release(a);
        assert!(s.is_empty() && s.get(a).is_none());
        // The freed id is used again.
        assert_eq!(s.intern(set(3)), a);
    }

    #[test]
    fn the_summary_reads_origin_med_local_pref_and_path_length() {
        let mut a = set(7);
        let mut attrs = a.attrs.to_vec();
        attrs.extend_from_slice(&[0x40, 5, 4, 0, 0, 0, 200]);
        a.attrs = attrs.into_boxed_slice();
        let s = PathSummary::of(&a);
        assert_eq!(s, PathSummary { local_pref: Some(200), med: 7, neighbor_as: 65002, path_len: 1, origin: 0 });
    }
}
