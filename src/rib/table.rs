//! The prefix-major route table, one per address family (as BIRD keeps `net` -> list of `rte`
//! in nest/rt-table.c and OpenBGPD one `pt_entry` per prefix in rde_prefix.c): each prefix is
//! stored once, under a packed integer key, with the compact list of every peer's route for
//! it.
//!
//! Used by the RIB thread only. A B-tree over packed keys gives, in one structure, insert and
//! withdraw in O(log n), the ordered walk of TABLE_DUMP_V2 snapshots (RFC 6396 §4.3 lists
//! prefixes in order), exact lookup, longest-prefix match (at most 33 or 129 exact lookups)
//! and the covered range of a prefix (one range scan: keys sort by address, then length).
//!
//! Memory: an IPv4 key is one `u64` (address << 8 | length), an IPv6 key 24 bytes (two `u64`
//! halves and the length); no `Prefix` enum, whose IPv6 arm would pad every IPv4 key to 32
//! bytes. A route is a 12-byte `RouteEntry`; a prefix's routes are one boxed slice.

use crate::msg::RovState;
use crate::prefix::Prefix;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Index of an interned attribute set in the RIB's slab.
pub type AttrId = u32;

/// Index of a peer in the RIB's peer slots (also bounded by TABLE_DUMP_V2's 16-bit peer index).
pub type PeerSlot = u16;

/// `RouteEntry::flags`: the route is the best path of its prefix (RFC 4271 §9.1.2).
pub const BEST: u16 = 1;
/// `RouteEntry::flags`: stale since the peer's BoRR (RFC 7313 §4), removed at its EoRR unless
/// announced again meanwhile (an announcement replaces the entry, flags and all).
pub const STALE: u16 = 2;
/// `RouteEntry::flags`: a route leak by its Only-to-Customer attribute (RFC 9234 §5).
pub const OTC_LEAK: u16 = 4;
/// `RouteEntry::flags`: an ADD-PATH route (RFC 7911); `attrs` is a `paths::PathRefId`.
pub const ADD_PATH: u16 = 8;
/// `RouteEntry::flags`: route origin validation (RFC 6811) found the route Valid, or Invalid;
/// neither bit: NotFound.
pub const ROV_VALID: u16 = 16;
pub const ROV_INVALID: u16 = 32;
pub const ROV_BITS: u16 = ROV_VALID | ROV_INVALID;
/// `RouteEntry::flags`: the import policy rejected the route; it stays in the Adj-RIB-In
/// (pre-policy) and never becomes best.
pub const REJECTED: u16 = 64;
/// `RouteEntry::flags`: the import policy changed the route's attributes; `attrs` is a
/// `paths::PathRefId` whose pair also holds the post-policy set (as for `ADD_PATH`).
pub const POLICY: u16 = 128;
/// `RouteEntry::flags`: long-lived stale (RFC 9494 §4.2): kept past the peer's restart time,
/// taken to carry LLGR_STALE (65535:6), least preferred; cleared when announced again.
pub const LLGR_STALE: u16 = 256;

/// One peer's route for a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    pub attrs: AttrId,
    /// Unix time the route was received (seconds).
    pub received: u32,
    pub peer: PeerSlot,
    pub flags: u16,
}

impl RouteEntry {
    pub fn is_best(&self) -> bool {
        self.flags & BEST != 0
    }

    pub fn is_stale(&self) -> bool {
        self.flags & STALE != 0
    }

    pub fn is_llgr_stale(&self) -> bool {
        self.flags & LLGR_STALE != 0
    }

    pub fn is_otc_leak(&self) -> bool {
        self.flags & OTC_LEAK != 0
    }

    pub fn is_add_path(&self) -> bool {
        self.flags & ADD_PATH != 0
    }

    pub fn is_rejected(&self) -> bool {
        self.flags & REJECTED != 0
    }

    /// `attrs` is a `paths::PathRefId` (an ADD-PATH route, or one the import policy changed).
    pub fn is_path_ref(&self) -> bool {
        self.flags & (ADD_PATH | POLICY) != 0
    }

    /// The `ROV_*` flags of an origin validation state (RFC 6811).
    pub fn rov_bits(state: RovState) -> u16 {
        match state {
            RovState::Valid => ROV_VALID,
            RovState::Invalid => ROV_INVALID,
            RovState::NotFound => 0,
        }
    }

    /// The route's origin validation state (RFC 6811), from its flags.
    pub fn rov(&self) -> RovState {
        match self.flags & ROV_BITS {
            ROV_VALID => RovState::Valid,
            ROV_INVALID => RovState::Invalid,
            _ => RovState::NotFound,
        }
    }
}

/// A packed prefix key: sorts by address, then length (TABLE_DUMP_V2 order).
pub trait Key: Copy + Ord + std::fmt::Debug {
    /// Address bits of the family.
    const BITS: u8;
    /// `addr` holds the address in its low `BITS` bits; host bits are cleared here.
    fn new(addr: u128, len: u8) -> Self;
    fn addr(self) -> u128;
    fn len(self) -> u8;
    fn prefix(self) -> Prefix;
}

fn mask(bits: u8, len: u8) -> u128 {
    let all = if bits == 128 { u128::MAX } else { (1u128 << bits) - 1 };
    if len == 0 {
        0
    } else if len >= bits {
        all
    } else {
        all & !(all >> len)
    }
}

/// IPv4: address << 8 | length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct V4Key(u64);

impl Key for V4Key {
    const BITS: u8 = 32;
    fn new(addr: u128, len: u8) -> Self {
        let len = len.min(32);
        V4Key(((addr & mask(32, len)) as u64) << 8 | u64::from(len))
    }
    fn addr(self) -> u128 {
        u128::from(self.0 >> 8)
    }
    fn len(self) -> u8 {
        self.0 as u8
    }
    fn prefix(self) -> Prefix {
        Prefix::V4 { addr: (self.0 >> 8) as u32, len: self.len() }
    }
}

/// IPv6: the address as two halves, then the length (24 bytes, 8-byte aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct V6Key {
    hi: u64,
    lo: u64,
    len: u8,
}

impl Key for V6Key {
    const BITS: u8 = 128;
    fn new(addr: u128, len: u8) -> Self {
        let len = len.min(128);
        let a = addr & mask(128, len);
        V6Key { hi: (a >> 64) as u64, lo: a as u64, len }
    }
    fn addr(self) -> u128 {
        u128::from(self.hi) << 64 | u128::from(self.lo)
    }
    fn len(self) -> u8 {
        self.len
    }
    fn prefix(self) -> Prefix {
        Prefix::V6 { addr: self.addr(), len: self.len }
    }
}

/// The routes of one family, prefix-major.
pub struct FamilyTable<K: Key> {
    map: BTreeMap<K, Box<[RouteEntry]>>,
    routes: u64,
}

impl<K: Key> Default for FamilyTable<K> {
    fn default() -> Self {
        FamilyTable { map: BTreeMap::new(), routes: 0 }
    }
}

impl<K: Key> FamilyTable<K> {
    pub fn prefixes(&self) -> usize {
        self.map.len()
    }

    pub fn routes(&self) -> u64 {
        self.routes
    }

    /// Put `entry` in as its peer's route for the prefix; the route it replaces, if any.
    pub fn insert(&mut self, key: K, entry: RouteEntry) -> (Option<RouteEntry>, &mut [RouteEntry]) {
        let peer = entry.peer;
        self.insert_as(key, entry, |e| e.peer == peer)
    }

    /// `insert`, replacing the route `same` picks (an ADD-PATH peer's route with the same path
    /// identifier) rather than the peer's one route.
    pub fn insert_as(
        &mut self,
        key: K,
        entry: RouteEntry,
        same: impl Fn(&RouteEntry) -> bool,
    ) -> (Option<RouteEntry>, &mut [RouteEntry]) {
        let slot = self.map.entry(key).or_insert_with(|| Box::new([]));
        if let Some(i) = slot.iter().position(same) {
            let old = std::mem::replace(&mut slot[i], entry);
            return (Some(old), &mut slot[..]);
        }
        // One reallocation to exactly one more entry (`push` alone would grow the vector to
        // twice its length and `into_boxed_slice` shrink it again: two).
        let mut v = std::mem::take(slot).into_vec();
        v.reserve_exact(1);
        v.push(entry);
        *slot = v.into_boxed_slice();
        self.routes += 1;
        (None, &mut slot[..])
    }

    /// Take the peer's route for the prefix out; a prefix left without routes leaves the table.
    /// Returns the removed route and the routes that remain (empty when the prefix is gone).
    pub fn remove(&mut self, key: K, peer: PeerSlot) -> (Option<RouteEntry>, &mut [RouteEntry]) {
        self.remove_as(key, |e| e.peer == peer)
    }

    /// `remove` of the route `which` picks.
    pub fn remove_as(
        &mut self,
        key: K,
        which: impl Fn(&RouteEntry) -> bool,
    ) -> (Option<RouteEntry>, &mut [RouteEntry]) {
        let std::collections::btree_map::Entry::Occupied(mut o) = self.map.entry(key) else {
            return (None, &mut []);
        };
        let Some(i) = o.get().iter().position(which) else { return (None, &mut []) };
        let old = o.get()[i];
        self.routes -= 1;
        if o.get().len() == 1 {
            o.remove();
            return (Some(old), &mut []);
        }
        let mut v = std::mem::take(o.get_mut()).into_vec();
        v.swap_remove(i);
        let slot = o.into_mut();
        *slot = v.into_boxed_slice();
        (Some(old), &mut slot[..])
    }

    pub fn get(&self, key: K) -> Option<&[RouteEntry]> {
        self.map.get(&key).map(|b| &b[..])
    }

    pub fn get_mut(&mut self, key: K) -> Option<&mut [RouteEntry]> {
        self.map.get_mut(&key).map(|b| &mut b[..])
    }

    /// The most specific prefix in the table that covers `addr`/`len` (itself included) and
    /// whose routes pass `pred`.
    pub fn longest_match(
        &self,
        addr: u128,
        len: u8,
        pred: impl Fn(&[RouteEntry]) -> bool,
    ) -> Option<(K, &[RouteEntry])> {
        (0..=len.min(K::BITS)).rev().find_map(|l| {
            let k = K::new(addr, l);
            self.map.get(&k).filter(|r| pred(r)).map(|r| (k, &r[..]))
        })
    }

    /// Prefixes strictly less specific than `addr`/`len` that cover it, shortest first.
    pub fn covering(&self, addr: u128, len: u8) -> impl Iterator<Item = (K, &[RouteEntry])> {
        (0..len.min(K::BITS)).filter_map(move |l| {
            let k = K::new(addr, l);
            self.map.get(&k).map(|r| (k, &r[..]))
        })
    }

    /// `addr`/`len` and every prefix inside it, in order, starting after `after` if given.
    pub fn within(&self, addr: u128, len: u8, after: Option<K>) -> impl Iterator<Item = (K, &[RouteEntry])> {
        let first = K::new(addr, len);
        let last_addr = first.addr() | (mask(K::BITS, K::BITS) & !mask(K::BITS, first.len()));
        let last = K::new(last_addr, K::BITS);
        let lower = match after {
            Some(a) if a >= first => Bound::Excluded(a),
            _ => Bound::Included(first),
        };
        let empty = matches!(lower, Bound::Excluded(a) if a >= last);
        let range = if empty { None } else { Some(self.map.range((lower, Bound::Included(last)))) };
        range.into_iter().flatten().map(|(k, r)| (*k, &r[..]))
    }

    /// `f` on `addr`/`len` and every prefix inside it, with their routes to change.
    pub fn within_mut(&mut self, addr: u128, len: u8, mut f: impl FnMut(K, &mut [RouteEntry])) {
        let first = K::new(addr, len);
        let last = K::new(first.addr() | (mask(K::BITS, K::BITS) & !mask(K::BITS, first.len())), K::BITS);
        for (k, r) in self.map.range_mut(first..=last) {
            f(*k, r);
        }
    }

    /// `f` on every prefix, with its routes to change.
    pub fn all_mut(&mut self, mut f: impl FnMut(K, &mut [RouteEntry])) {
        for (k, r) in self.map.iter_mut() {
            f(*k, r);
        }
    }

    /// Every prefix after `after` (all from the start when `None`), in order.
    pub fn walk(&self, after: Option<K>) -> impl Iterator<Item = (K, &[RouteEntry])> {
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        self.map.range((lower, Bound::Unbounded)).map(|(k, r)| (*k, &r[..]))
    }

    /// Remove every route of `peer`; `on_removed(route, remaining routes)` sees each one
    /// (to release its attribute set and choose a new best). Prefixes left empty leave.
    pub fn remove_peer(&mut self, peer: PeerSlot, on_removed: impl FnMut(RouteEntry, &mut [RouteEntry])) {
        self.remove_peer_where(peer, |_| true, on_removed);
    }

    /// Set `flag` on every route of `peer` (all its paths); the number of routes marked.
    pub fn mark_peer(&mut self, peer: PeerSlot, flag: u16) -> u64 {
        let mut n = 0;
        for routes in self.map.values_mut() {
            for e in routes.iter_mut().filter(|e| e.peer == peer) {
                e.flags |= flag;
                n += 1;
            }
        }
        n
    }

    /// `remove_peer` for the routes of `peer` that `pred` picks.
    pub fn remove_peer_where(
        &mut self,
        peer: PeerSlot,
        pred: impl Fn(&RouteEntry) -> bool,
        mut on_removed: impl FnMut(RouteEntry, &mut [RouteEntry]),
    ) {
        let mut removed = 0;
        let picked = |e: &RouteEntry| e.peer == peer && pred(e);
        self.map.retain(|_, routes| {
            if !routes.iter().any(picked) {
                return true;
            }
            // An ADD-PATH peer may have several routes here (RFC 7911): all of them go.
            let (gone, kept): (Vec<RouteEntry>, Vec<RouteEntry>) = routes.iter().partition(|e| picked(e));
            removed += gone.len() as u64;
            *routes = kept.into_boxed_slice();
            for old in gone {
                on_removed(old, routes);
            }
            !routes.is_empty()
        });
        self.routes -= removed;
    }
}

/// Both families.
#[derive(Default)]
pub struct Table {
    pub v4: FamilyTable<V4Key>,
    pub v6: FamilyTable<V6Key>,
}

/// A position in the ordered walk of both families: IPv4 first, then IPv6 (TABLE_DUMP_V2
/// writes RIB_IPV4_UNICAST records before RIB_IPV6_UNICAST ones).
pub fn key_of_v4(p: &Prefix) -> Option<V4Key> {
    match *p {
        Prefix::V4 { addr, len } => Some(V4Key::new(u128::from(addr), len)),
        Prefix::V6 { .. } => None,
    }
}

pub fn key_of_v6(p: &Prefix) -> Option<V6Key> {
    match *p {
        Prefix::V6 { addr, len } => Some(V6Key::new(addr, len)),
        Prefix::V4 { .. } => None,
    }
}

impl Table {
    pub fn routes(&self) -> u64 {
        self.v4.routes() + self.v6.routes()
    }

    pub fn get(&self, p: &Prefix) -> Option<&[RouteEntry]> {
        match *p {
            Prefix::V4 { .. } => key_of_v4(p).and_then(|k| self.v4.get(k)),
            Prefix::V6 { .. } => key_of_v6(p).and_then(|k| self.v6.get(k)),
        }
    }

    pub fn get_mut(&mut self, p: &Prefix) -> Option<&mut [RouteEntry]> {
        match *p {
            Prefix::V4 { .. } => key_of_v4(p).and_then(|k| self.v4.get_mut(k)),
            Prefix::V6 { .. } => key_of_v6(p).and_then(|k| self.v6.get_mut(k)),
        }
    }

    pub fn insert(&mut self, p: &Prefix, e: RouteEntry) -> (Option<RouteEntry>, &mut [RouteEntry]) {
        let peer = e.peer;
        self.insert_as(p, e, |x| x.peer == peer)
    }

    pub fn insert_as(
        &mut self,
        p: &Prefix,
        e: RouteEntry,
        same: impl Fn(&RouteEntry) -> bool,
    ) -> (Option<RouteEntry>, &mut [RouteEntry]) {
        match *p {
            Prefix::V4 { addr, len } => self.v4.insert_as(V4Key::new(u128::from(addr), len), e, same),
            Prefix::V6 { addr, len } => self.v6.insert_as(V6Key::new(addr, len), e, same),
        }
    }

    pub fn remove(&mut self, p: &Prefix, peer: PeerSlot) -> (Option<RouteEntry>, &mut [RouteEntry]) {
        self.remove_as(p, |e| e.peer == peer)
    }

    pub fn remove_as(
        &mut self,
        p: &Prefix,
        which: impl Fn(&RouteEntry) -> bool,
    ) -> (Option<RouteEntry>, &mut [RouteEntry]) {
        match *p {
            Prefix::V4 { addr, len } => self.v4.remove_as(V4Key::new(u128::from(addr), len), which),
            Prefix::V6 { addr, len } => self.v6.remove_as(V6Key::new(addr, len), which),
        }
    }

    /// The most specific prefix covering `p` (itself included).
    pub fn longest_match(&self, p: &Prefix) -> Option<(Prefix, &[RouteEntry])> {
        let any = |_: &[RouteEntry]| true;
        match *p {
            Prefix::V4 { addr, len } => self.v4.longest_match(u128::from(addr), len, any).map(|(k, r)| (k.prefix(), r)),
            Prefix::V6 { addr, len } => self.v6.longest_match(addr, len, any).map(|(k, r)| (k.prefix(), r)),
        }
    }

    /// The most specific prefix covering `p` (itself included) whose routes pass `pred`.
    pub fn longest_match_where(&self, p: &Prefix, pred: impl Fn(&[RouteEntry]) -> bool) -> Option<Prefix> {
        match *p {
            Prefix::V4 { addr, len } => self.v4.longest_match(u128::from(addr), len, pred).map(|(k, _)| k.prefix()),
            Prefix::V6 { addr, len } => self.v6.longest_match(addr, len, pred).map(|(k, _)| k.prefix()),
        }
    }

    /// Prefixes strictly less specific than `p` that cover it, shortest first.
    pub fn covering(&self, p: &Prefix) -> Vec<(Prefix, &[RouteEntry])> {
        match *p {
            Prefix::V4 { addr, len } => self.v4.covering(u128::from(addr), len).map(|(k, r)| (k.prefix(), r)).collect(),
            Prefix::V6 { addr, len } => self.v6.covering(addr, len).map(|(k, r)| (k.prefix(), r)).collect(),
        }
    }

    /// `p` and every prefix inside it, in order, after `after` (a prefix of the same family).
    pub fn within<'a>(
        &'a self,
        p: &Prefix,
        after: Option<Prefix>,
    ) -> Box<dyn Iterator<Item = (Prefix, &'a [RouteEntry])> + 'a> {
        match *p {
            Prefix::V4 { addr, len } => Box::new(
                self.v4.within(u128::from(addr), len, after.as_ref().and_then(key_of_v4)).map(|(k, r)| (k.prefix(), r)),
            ),
            Prefix::V6 { addr, len } => {
                Box::new(self.v6.within(addr, len, after.as_ref().and_then(key_of_v6)).map(|(k, r)| (k.prefix(), r)))
            }
        }
    }

    /// `f` on `p` and every prefix inside it, with their routes to change.
    pub fn within_mut(&mut self, p: &Prefix, mut f: impl FnMut(Prefix, &mut [RouteEntry])) {
        match *p {
            Prefix::V4 { addr, len } => self.v4.within_mut(u128::from(addr), len, |k, r| f(k.prefix(), r)),
            Prefix::V6 { addr, len } => self.v6.within_mut(addr, len, |k, r| f(k.prefix(), r)),
        }
    }

    /// `f` on every prefix of both families, with its routes to change.
    pub fn all_mut(&mut self, mut f: impl FnMut(Prefix, &mut [RouteEntry])) {
        self.v4.all_mut(|k, r| f(k.prefix(), r));
        self.v6.all_mut(|k, r| f(k.prefix(), r));
    }

    /// Every prefix after `after`, IPv4 before IPv6, in order.
    pub fn walk<'a>(&'a self, after: Option<Prefix>) -> Box<dyn Iterator<Item = (Prefix, &'a [RouteEntry])> + 'a> {
        let v6 = |after: Option<V6Key>| self.v6.walk(after).map(|(k, r)| (k.prefix(), r));
        match after {
            None => Box::new(self.v4.walk(None).map(|(k, r)| (k.prefix(), r)).chain(v6(None))),
            Some(p @ Prefix::V4 { .. }) => {
                Box::new(self.v4.walk(key_of_v4(&p)).map(|(k, r)| (k.prefix(), r)).chain(v6(None)))
            }
            Some(p @ Prefix::V6 { .. }) => Box::new(v6(key_of_v6(&p))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap as Model;

    /// xorshift64*: a small deterministic generator, so every run tests the same sequences.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn entry(peer: PeerSlot, attrs: AttrId) -> RouteEntry {
        RouteEntry { attrs, received: 0, peer, flags: 0 }
    }

    /// A random prefix, biased to a few short ranges so that prefixes nest and collide, with
    /// /0 and host routes among them.
    fn random_prefix(r: &mut Rng, v6: bool) -> Prefix {
        let bits = if v6 { 128u32 } else { 32 };
        let len = match r.below(8) {
            0 => 0,
            1 => bits as u8,
            _ => r.below(u64::from(bits) + 1) as u8,
        };
        // Top bits from a handful of values, the rest random.
        let top = r.below(4) as u128;
        let low = (u128::from(r.next()) << 64 | u128::from(r.next())) >> 3;
        let addr = if v6 { top << 126 | low >> 2 } else { (top << 30 | (low as u32 as u128) >> 2) & 0xffff_ffff };
        if v6 {
            Prefix::new_truncated(std::net::IpAddr::V6((addr).into()), len).unwrap()
        } else {
            Prefix::new_truncated(std::net::IpAddr::V4((addr as u32).into()), len).unwrap()
        }
    }

    type ModelRib = Model<Prefix, Model<PeerSlot, AttrId>>;

    fn model_longest(m: &ModelRib, p: &Prefix) -> Option<Prefix> {
        m.keys().filter(|k| k.contains(p)).max_by_key(|k| k.len()).copied()
    }

    fn sorted(routes: &[RouteEntry]) -> Vec<(PeerSlot, AttrId)> {
        let mut v: Vec<_> = routes.iter().map(|e| (e.peer, e.attrs)).collect();
        v.sort_unstable();
        v
    }

    fn model_routes(m: &Model<PeerSlot, AttrId>) -> Vec<(PeerSlot, AttrId)> {
        m.iter().map(|(p, a)| (*p, *a)).collect()
    }

    fn check_against_model(seed: u64, v6: bool) {
        let mut r = Rng(seed);
        let mut t = Table::default();
        let mut m: ModelRib = Model::new();
        for step in 0..4000 {
            let p = random_prefix(&mut r, v6);
            let peer = r.below(4) as PeerSlot;
            match r.below(10) {
                0..=5 => {
                    let a = r.below(1000) as AttrId;
                    let (old, _) = t.insert(&p, entry(peer, a));
                    let mold = m.entry(p).or_default().insert(peer, a);
                    assert_eq!(old.map(|e| e.attrs), mold, "insert {p} step {step}");
                }
                6..=8 => {
                    let (old, left) = t.remove(&p, peer);
                    let left = sorted(left);
                    let mold = m.get_mut(&p).and_then(|rs| rs.remove(&peer));
                    if m.get(&p).is_some_and(|rs| rs.is_empty()) {
                        m.remove(&p);
                    }
                    assert_eq!(old.map(|e| e.attrs), mold, "withdraw {p} step {step}");
                    if mold.is_some() {
                        assert_eq!(left, m.get(&p).map(model_routes).unwrap_or_default());
                    }
                }
                _ => {
                    let peer = r.below(4) as PeerSlot;
                    let mut n = 0;
                    for rs in m.values_mut() {
                        n += usize::from(rs.remove(&peer).is_some());
                    }
                    m.retain(|_, rs| !rs.is_empty());
                    let mut seen = 0;
                    t.v4.remove_peer(peer, |_, _| seen += 1);
                    t.v6.remove_peer(peer, |_, _| seen += 1);
                    assert_eq!(seen, n, "session down of peer {peer}");
                }
            }
            // Lookups: exact, longest match, covered and covering, against the model.
            let q = random_prefix(&mut r, v6);
            assert_eq!(t.get(&q).map(sorted), m.get(&q).map(model_routes), "exact {q}");
            let lm = t.longest_match(&q).map(|(k, rs)| (k, sorted(rs)));
            let mlm = model_longest(&m, &q).map(|k| (k, model_routes(&m[&k])));
            assert_eq!(lm, mlm, "longest match {q}");
            let within: Vec<Prefix> = t.within(&q, None).map(|(k, _)| k).collect();
            let mwithin: Vec<Prefix> = m.keys().filter(|k| q.contains(k)).copied().collect();
            assert_eq!(within, mwithin, "within {q}");
            let covering: Vec<Prefix> = t.covering(&q).into_iter().map(|(k, _)| k).collect();
            let mcovering: Vec<Prefix> = m.keys().filter(|k| k.contains(&q) && **k != q).copied().collect();
            assert_eq!(covering, mcovering, "covering {q}");
        }
        let all: Vec<Prefix> = t.walk(None).map(|(k, _)| k).collect();
        assert_eq!(all, m.keys().copied().collect::<Vec<_>>(), "ordered walk");
        assert_eq!(t.routes(), m.values().map(|rs| rs.len() as u64).sum::<u64>());
        // A walk resumed after any prefix gives the rest.
        if let Some(mid) = all.get(all.len() / 2) {
            let rest: Vec<Prefix> = t.walk(Some(*mid)).map(|(k, _)| k).collect();
            assert_eq!(rest, all[all.len() / 2 + 1..].to_vec());
            let q = Prefix::new_truncated(mid.addr(), 0).unwrap();
            let rest_within: Vec<Prefix> = t.within(&q, Some(*mid)).map(|(k, _)| k).collect();
            assert_eq!(rest_within, all[all.len() / 2 + 1..].to_vec());
        }
    }

    #[test]
    fn the_ipv4_table_agrees_with_a_simple_model_over_random_inserts_withdrawals_and_lookups() {
        for seed in [1, 2, 3, 0x5eed] {
            check_against_model(seed, false);
        }
    }

    #[test]
    fn the_ipv6_table_agrees_with_a_simple_model_over_random_inserts_withdrawals_and_lookups() {
        for seed in [4, 5, 6, 0xbeef] {
            check_against_model(seed, true);
        }
    }

    #[test]
    fn both_families_walk_in_table_dump_order_ipv4_first() {
        let mut t = Table::default();
        for s in ["::/0", "2001:db8::/32", "0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/16", "9.0.0.0/8", "255.255.255.255/32"]
        {
            t.insert(&s.parse().unwrap(), entry(0, 0));
        }
        let order: Vec<String> = t.walk(None).map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            order,
            ["0.0.0.0/0", "9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/16", "255.255.255.255/32", "::/0", "2001:db8::/32"]
        );
        let after: Vec<String> =
            t.walk(Some("255.255.255.255/32".parse().unwrap())).map(|(k, _)| k.to_string()).collect();
        assert_eq!(after, ["::/0", "2001:db8::/32"]);
    }

    #[test]
    fn a_withdrawn_prefix_leaves_the_table() {
        let mut t = Table::default();
        let p: Prefix = "192.0.2.0/24".parse().unwrap();
        t.insert(&p, entry(1, 7));
        t.insert(&p, entry(2, 8));
        assert_eq!(t.routes(), 2);
        assert_eq!(t.remove(&p, 1).0.map(|e| e.attrs), Some(7));
        assert_eq!(t.v4.prefixes(), 1);
        assert_eq!(t.remove(&p, 2).0.map(|e| e.attrs), Some(8));
        assert_eq!((t.v4.prefixes(), t.routes()), (0, 0));
        assert!(t.get(&p).is_none());
    }

    #[test]
    fn keys_and_entries_are_compact() {
        assert_eq!(std::mem::size_of::<V4Key>(), 8);
        assert_eq!(std::mem::size_of::<V6Key>(), 24);
        assert_eq!(std::mem::size_of::<RouteEntry>(), 12);
    }
}
