//! Pure: VRPs packed for memory (12 bytes an IPv4 VRP, 24 an IPv6 one, in sorted arrays),
//! and the prefix index that finds a prefix's VRPs in one probe.
//!
//! A `VrpSet` is one source's VRPs (an RTR cache's data, a file); a `FamilyTable` is the
//! union in use, with an open-addressing index from (prefix, length) to the first of that
//! prefix's VRPs. Budget for 1M VRPs (three in four IPv4): about 15 MB per set, and for the
//! table 6 MB of index plus its entries, which are the set's own (shared, not copied) when
//! one source is in use; against about 150 bytes a VRP in hash maps of `Vrp`.

use super::vrp::Vrp;
use crate::prefix::Prefix;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// An address of one family as packed: `u32` for IPv4, two `u64` (high, low) for IPv6 so
/// the entry is 8-aligned rather than 16.
pub trait Addr: Copy + Ord + Eq + Default + std::fmt::Debug {
    const BITS: u8;
    /// The address with the bits past `len` cleared.
    fn truncate(self, len: u8) -> Self;
    fn to_ip(self) -> IpAddr;
    /// A 64-bit mix of the address for the index.
    fn mix(self) -> u64;
}

impl Addr for u32 {
    const BITS: u8 = 32;
    fn truncate(self, len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len.min(32))))
        }
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    fn mix(self) -> u64 {
        u64::from(self)
    }
}

/// An IPv6 address as (high 64 bits, low 64 bits).
pub type V6 = (u64, u64);

impl Addr for V6 {
    const BITS: u8 = 128;
    fn truncate(self, len: u8) -> V6 {
        let a = (u128::from(self.0) << 64) | u128::from(self.1);
        let a = if len == 0 { 0 } else { a & (u128::MAX << (128 - u32::from(len.min(128)))) };
        ((a >> 64) as u64, a as u64)
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from((u128::from(self.0) << 64) | u128::from(self.1)))
    }
    fn mix(self) -> u64 {
        self.0 ^ self.1.rotate_left(29)
    }
}

/// One VRP of a family. Field order is the sort order: address, length, max length, AS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Packed<A> {
    pub addr: A,
    pub len: u8,
    pub max: u8,
    pub asn: u32,
}

impl<A: Addr> Packed<A> {
    pub fn vrp(&self) -> Vrp {
        let prefix = Prefix::new_truncated(self.addr.to_ip(), self.len).unwrap_or(Prefix::V4 { addr: 0, len: 0 });
        Vrp { prefix, max_len: self.max, asn: self.asn }
    }

    fn key(&self) -> (A, u8) {
        (self.addr, self.len)
    }
}

fn pack(v: &Vrp) -> Result<Packed<u32>, Packed<V6>> {
    match v.prefix {
        Prefix::V4 { addr, len } => Ok(Packed { addr, len, max: v.max_len, asn: v.asn }),
        Prefix::V6 { addr, len } => {
            Err(Packed { addr: ((addr >> 64) as u64, addr as u64), len, max: v.max_len, asn: v.asn })
        }
    }
}

/// Sorted, without duplicates, no spare capacity.
fn normalise<T: Ord>(v: &mut Vec<T>) {
    v.sort_unstable();
    v.dedup();
    v.shrink_to_fit();
}

/// `base` without `dels` and with `adds` (all sorted, unique); how many of `dels` were not
/// in `base`.
fn apply_sorted<T: Ord + Copy>(base: &mut Vec<T>, adds: &[T], dels: &[T]) -> usize {
    let mut out = Vec::with_capacity(base.len() + adds.len());
    let (mut d, mut missing) = (0, 0);
    for x in base.iter() {
        while d < dels.len() && dels[d] < *x {
            missing += 1;
            d += 1;
        }
        if d < dels.len() && dels[d] == *x {
            d += 1;
            continue;
        }
        out.push(*x);
    }
    missing += dels.len() - d;
    // Merge the additions in.
    let mut merged = Vec::with_capacity(out.len() + adds.len());
    let (mut i, mut j) = (0, 0);
    while i < out.len() || j < adds.len() {
        let take_add = j < adds.len() && (i >= out.len() || adds[j] < out[i]);
        let x = if take_add {
            j += 1;
            adds[j - 1]
        } else {
            i += 1;
            out[i - 1]
        };
        if merged.last() != Some(&x) {
            merged.push(x);
        }
    }
    merged.shrink_to_fit();
    *base = merged;
    missing
}

/// One source's VRPs, sorted and unique; shared with the table in use when it is the only
/// source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VrpSet {
    pub v4: Arc<Vec<Packed<u32>>>,
    pub v6: Arc<Vec<Packed<V6>>>,
}

impl FromIterator<Vrp> for VrpSet {
    fn from_iter<I: IntoIterator<Item = Vrp>>(it: I) -> VrpSet {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for v in it {
            match pack(&v) {
                Ok(p) => v4.push(p),
                Err(p) => v6.push(p),
            }
        }
        normalise(&mut v4);
        normalise(&mut v6);
        VrpSet { v4: Arc::new(v4), v6: Arc::new(v6) }
    }
}

impl VrpSet {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        *self = VrpSet::default();
    }

    pub fn iter(&self) -> impl Iterator<Item = Vrp> + '_ {
        self.v4.iter().map(Packed::vrp).chain(self.v6.iter().map(Packed::vrp))
    }

    pub fn contains(&self, v: &Vrp) -> bool {
        match pack(v) {
            Ok(p) => self.v4.binary_search(&p).is_ok(),
            Err(p) => self.v6.binary_search(&p).is_ok(),
        }
    }

    /// Withdraw `dels` and announce `adds` (an RTR delta, RFC 8210 §5.3); how many
    /// withdrawals named a VRP the set did not hold.
    pub fn apply(&mut self, adds: impl IntoIterator<Item = Vrp>, dels: impl IntoIterator<Item = Vrp>) -> usize {
        let (a, d): (VrpSet, VrpSet) = (adds.into_iter().collect(), dels.into_iter().collect());
        apply_sorted(Arc::make_mut(&mut self.v4), &a.v4, &d.v4)
            + apply_sorted(Arc::make_mut(&mut self.v6), &a.v6, &d.v6)
    }
}

/// The union in use for one family, with its prefix index.
#[derive(Clone, Debug, Default)]
pub struct FamilyTable<A> {
    entries: Arc<Vec<Packed<A>>>,
    /// Open addressing: the index of the first entry of a (prefix, length) group, or EMPTY.
    slots: Vec<u32>,
    /// log2 of `slots.len()`.
    bits: u32,
    /// Prefix lengths with VRPs (bit l of word l / 64).
    lens: [u64; 3],
}

const EMPTY: u32 = u32::MAX;

fn hash<A: Addr>(addr: A, len: u8) -> u64 {
    (addr.mix() ^ (u64::from(len) << 56) ^ u64::from(len)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl<A: Addr> FamilyTable<A> {
    /// The union of `sets` (each sorted and unique); a single set is shared, not copied.
    pub fn union<'a>(sets: impl IntoIterator<Item = &'a Arc<Vec<Packed<A>>>>) -> FamilyTable<A>
    where
        A: 'a,
    {
        let sets: Vec<&Arc<Vec<Packed<A>>>> = sets.into_iter().filter(|s| !s.is_empty()).collect();
        let entries = match sets.as_slice() {
            [] => Arc::new(Vec::new()),
            [one] => Arc::clone(one),
            many => {
                let mut all: Vec<Packed<A>> = many.iter().flat_map(|s| s.iter().copied()).collect();
                normalise(&mut all);
                Arc::new(all)
            }
        };
        FamilyTable::build(entries)
    }

    fn build(entries: Arc<Vec<Packed<A>>>) -> FamilyTable<A> {
        let groups = entries.iter().enumerate().filter(|(i, e)| *i == 0 || entries[i - 1].key() != e.key()).count();
        // Load at most 3/4.
        let bits = (groups * 4 / 3 + 1).next_power_of_two().trailing_zeros().max(3);
        let mut t = FamilyTable { entries, slots: vec![EMPTY; 1 << bits], bits, lens: [0; 3] };
        for i in 0..t.entries.len() {
            let e = t.entries[i];
            t.lens[usize::from(e.len / 64)] |= 1 << (e.len % 64);
            if i > 0 && t.entries[i - 1].key() == e.key() {
                continue;
            }
            let mask = t.slots.len() - 1;
            let mut s = (hash(e.addr, e.len) >> (64 - t.bits)) as usize;
            while t.slots[s] != EMPTY {
                s = (s + 1) & mask;
            }
            t.slots[s] = i as u32;
        }
        t
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Packed<A>] {
        &self.entries
    }

    /// The VRPs of exactly `addr`/`len`.
    fn group(&self, addr: A, len: u8) -> &[Packed<A>] {
        if self.entries.is_empty() {
            return &[];
        }
        let mask = self.slots.len() - 1;
        let mut s = (hash(addr, len) >> (64 - self.bits)) as usize;
        loop {
            let i = self.slots[s];
            if i == EMPTY {
                return &[];
            }
            let first = &self.entries[i as usize];
            if first.addr == addr && first.len == len {
                let rest = &self.entries[i as usize..];
                let n = rest.iter().take_while(|e| e.addr == addr && e.len == len).count();
                return &rest[..n];
            }
            s = (s + 1) & mask;
        }
    }

    /// Every VRP whose prefix covers `addr`/`plen`, shortest prefix first, probing only the
    /// lengths that have VRPs.
    pub fn covering(&self, addr: A, plen: u8) -> impl Iterator<Item = &Packed<A>> + '_ {
        (0..=plen.min(A::BITS))
            .filter(move |&l| self.lens[usize::from(l / 64)] & (1 << (l % 64)) != 0)
            .flat_map(move |l| self.group(addr.truncate(l), l))
    }

    /// The (prefix, length) groups whose VRPs differ between `old` and `self`.
    pub fn changed(&self, old: &FamilyTable<A>, out: &mut Vec<Prefix>) {
        let groups = |t: &'_ FamilyTable<A>| -> Vec<(usize, usize)> {
            let mut v = Vec::new();
            let mut start = 0;
            for i in 1..=t.entries.len() {
                if i == t.entries.len() || t.entries[i].key() != t.entries[start].key() {
                    v.push((start, i));
                    start = i;
                }
            }
            v
        };
        let (a, b) = (groups(self), groups(old));
        let (mut i, mut j) = (0, 0);
        let prefix = |e: &Packed<A>| Prefix::new_truncated(e.addr.to_ip(), e.len).ok();
        while i < a.len() || j < b.len() {
            let ka = a.get(i).map(|&(s, _)| self.entries[s].key());
            let kb = b.get(j).map(|&(s, _)| old.entries[s].key());
            match (ka, kb) {
                (Some(x), Some(y)) if x == y => {
                    let (sa, ea) = a[i];
                    let (sb, eb) = b[j];
                    if self.entries[sa..ea] != old.entries[sb..eb] {
                        out.extend(prefix(&self.entries[sa]));
                    }
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x < y => {
                    out.extend(prefix(&self.entries[a[i].0]));
                    i += 1;
                }
                (Some(_), None) => {
                    out.extend(prefix(&self.entries[a[i].0]));
                    i += 1;
                }
                _ => {
                    out.extend(prefix(&old.entries[b[j].0]));
                    j += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn v(s: &str, max_len: u8, asn: u32) -> Vrp {
        Vrp { prefix: s.parse().expect("prefix"), max_len, asn }
    }

    #[test]
    fn packed_vrps_take_12_and_24_bytes() {
        assert_eq!(std::mem::size_of::<Packed<u32>>(), 12);
        assert_eq!(std::mem::size_of::<Packed<V6>>(), 24);
    }

    #[test]
    fn a_set_is_sorted_and_unique_and_a_delta_applies_like_a_set_of_vrps() {
        // A reference model: BTreeSet<Vrp> under the same random announce/withdraw sequence.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut model: BTreeSet<Vrp> = BTreeSet::new();
        let mut set = VrpSet::default();
        for _ in 0..200 {
            let mut adds = Vec::new();
            let mut dels = Vec::new();
            for _ in 0..rnd(20) {
                let len = rnd(4) as u8 * 8;
                let vrp = if rnd(3) == 0 {
                    let p = Prefix::new_truncated(IpAddr::V6(Ipv6Addr::from((rnd(4) as u128) << 100)), len + 8);
                    Vrp { prefix: p.expect("v6"), max_len: len + 16, asn: rnd(3) as u32 }
                } else {
                    let p = Prefix::new_truncated(IpAddr::V4(Ipv4Addr::from((rnd(4) as u32) << 26)), len);
                    Vrp { prefix: p.expect("v4"), max_len: len + 1, asn: rnd(3) as u32 }
                };
                if rnd(2) == 0 {
                    adds.push(vrp);
                } else {
                    dels.push(vrp);
                }
            }
            // RFC 8210 deltas withdraw what was there before and announce what is new.
            dels.retain(|d| !adds.contains(d));
            dels.sort();
            dels.dedup();
            let missing_model = dels.iter().filter(|d| !model.contains(d)).count();
            for d in &dels {
                model.remove(d);
            }
            model.extend(adds.iter().copied());
            assert_eq!(set.apply(adds, dels), missing_model);
            assert_eq!(set.iter().collect::<BTreeSet<_>>(), model);
            assert_eq!(set.len(), model.len());
            assert!(set.v4.windows(2).all(|w| w[0] < w[1]) && set.v6.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn the_table_finds_every_covering_vrp_and_nothing_else() {
        let s: VrpSet = [
            v("0.0.0.0/0", 8, 1),
            v("10.0.0.0/8", 24, 2),
            v("10.0.0.0/8", 16, 3),
            v("10.1.0.0/16", 24, 4),
            v("10.1.2.0/24", 24, 5),
            v("11.0.0.0/8", 8, 6),
        ]
        .into_iter()
        .collect();
        let t = FamilyTable::union([&s.v4]);
        let asns = |addr: u32, len: u8| t.covering(addr, len).map(|p| p.asn).collect::<Vec<_>>();
        assert_eq!(asns(0x0a01_0203, 32), [1, 3, 2, 4, 5], "shortest first, then by max length");
        assert_eq!(asns(0x0a01_0200, 24), [1, 3, 2, 4, 5]);
        assert_eq!(asns(0x0a01_0000, 16), [1, 3, 2, 4]);
        assert_eq!(asns(0x0a00_0000, 7), [1]);
        assert_eq!(asns(0x0c00_0000, 8), [1]);
        // The union of two sets holds each VRP once.
        let other: VrpSet = [v("10.0.0.0/8", 24, 2), v("12.0.0.0/8", 8, 7)].into_iter().collect();
        assert_eq!(FamilyTable::union([&s.v4, &other.v4]).len(), 7);
    }

    #[test]
    fn changed_groups_are_those_whose_vrps_differ() {
        let a: VrpSet =
            [v("10.0.0.0/8", 8, 1), v("10.0.0.0/16", 16, 2), v("2001:db8::/32", 48, 3)].into_iter().collect();
        let b: VrpSet = [v("10.0.0.0/8", 8, 1), v("10.0.0.0/16", 16, 9), v("11.0.0.0/8", 8, 4)].into_iter().collect();
        let (a4, b4) = (FamilyTable::union([&a.v4]), FamilyTable::union([&b.v4]));
        let (a6, b6) = (FamilyTable::union([&a.v6]), FamilyTable::union([&b.v6]));
        let mut out = Vec::new();
        b4.changed(&a4, &mut out);
        b6.changed(&a6, &mut out);
        out.sort();
        let want: Vec<Prefix> =
            ["10.0.0.0/16", "11.0.0.0/8", "2001:db8::/32"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(out, want);
    }
}
