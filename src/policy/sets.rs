//! Named sets, compiled at load: prefix sets (prefixes with `ge`/`le` length ranges), AS
//! number sets (sorted ranges), community sets (RFC 1997 standard, RFC 8092 large, RFC 4360
//! extended: hash sets of exact values plus a short list of wildcards) and AS_PATH sets
//! (structural tests; no regular expressions).
//!
//! Pure: built by `config::policy` from the file's strings (the parse functions here return
//! messages the reader puts beside the file, line and key) and read by `policy::eval`.

use crate::prefix::Prefix;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// The hash of the sets' tables: their keys are a few integers chosen by the operator, not by
/// peers, so a multiply-rotate mix (as rustc's FxHash) is safe and several times faster than
/// SipHash on the per-route path (a lookup per prefix length and per community).
#[derive(Clone, Copy, Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub type FastBuild = BuildHasherDefault<FastHasher>;
pub type FastSet<T> = HashSet<T, FastBuild>;

// ---------------------------------------------------------------------------------------------
// Prefix sets.

/// One entry of a prefix set: routes inside `prefix` whose length is in `ge..=le`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixRange {
    pub prefix: Prefix,
    pub ge: u8,
    pub le: u8,
}

impl PrefixRange {
    /// "198.18.0.0/15 orlonger", "10.0.0.0/8 le 32", "2001:db8::/32 ge 48 le 64",
    /// "192.0.2.0/24 longer", "192.0.2.0/24" (that prefix only).
    pub fn parse(s: &str) -> Result<PrefixRange, String> {
        let mut words = s.split_whitespace();
        let first = words.next().ok_or_else(|| "an empty prefix entry".to_string())?;
        let prefix: Prefix = first.parse().map_err(|e| format!("'{first}': {e}"))?;
        let max = match prefix {
            Prefix::V4 { .. } => 32u8,
            Prefix::V6 { .. } => 128,
        };
        let len = prefix.len();
        let (mut ge, mut le) = (len, len);
        let rest: Vec<&str> = words.collect();
        let number = |w: Option<&&str>, what: &str| -> Result<u8, String> {
            let w = w.ok_or_else(|| format!("'{s}': {what} needs a length after it"))?;
            match w.parse::<u8>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(format!("'{s}': {what} {w} is not a length from 0 to {max}")),
            }
        };
        let mut i = 0;
        let (mut saw_ge, mut saw_le) = (false, false);
        while i < rest.len() {
            match rest[i] {
                "orlonger" if rest.len() == 1 => le = max,
                "longer" if rest.len() == 1 => {
                    if len == max {
                        return Err(format!("'{s}': nothing is longer than a /{max}"));
                    }
                    ge = len + 1;
                    le = max;
                }
                "ge" if !saw_ge && !saw_le => {
                    ge = number(rest.get(i + 1), "ge")?;
                    saw_ge = true;
                    le = max;
                    i += 1;
                }
                "le" if !saw_le => {
                    le = number(rest.get(i + 1), "le")?;
                    saw_le = true;
                    i += 1;
                }
                w => {
                    return Err(format!(
                        "'{s}': unexpected '{w}'; write PREFIX, PREFIX orlonger, PREFIX longer, PREFIX ge N, PREFIX le N or PREFIX ge N le M"
                    ))
                }
            }
            i += 1;
        }
        if ge < len || le < ge {
            return Err(format!("'{s}': the lengths must satisfy {len} <= ge ({ge}) <= le ({le})"));
        }
        Ok(PrefixRange { prefix, ge, le })
    }
}

/// A compiled prefix set: per family a binary trie of the entries' prefixes; a node that ends
/// an entry holds the route lengths its ranges accept (all of its entries' `ge..=le` merged
/// into one bit mask). A lookup walks the route's address bits from the top, as far as the
/// route's length and the trie go, and tests one bit at each node that ends an entry: a few
/// dependent loads, no hashing, for any number of entries.
#[derive(Clone, Debug, Default)]
pub struct PrefixSet {
    v4: Trie,
    v6: Trie,
    /// The entries, sorted and without repeats: what two sets are compared by.
    entries: Vec<PrefixRange>,
}

impl PartialEq for PrefixSet {
    fn eq(&self, other: &PrefixSet) -> bool {
        self.entries == other.entries
    }
}

/// Node 0 is the root (length 0); children by the next address bit; `NONE` for none.
#[derive(Clone, Debug, Default)]
struct Trie {
    nodes: Vec<Node>,
    /// The length masks of the nodes that end an entry: bit `l` of word `l / 64` for a route
    /// of length `l` (0..=128).
    masks: Vec<[u64; 3]>,
    /// A first stride of 8 bits, by the address's first octet: the node at depth 8 (or
    /// `NONE`) and the union of the masks of the entries shorter than 8 on the way, so a route
    /// of length 8 or more starts its walk there (most routes end at this one lookup).
    top: Vec<(u32, [u64; 3])>,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    child: [u32; 2],
    /// Index into `Trie::masks`, or `NONE` when no entry ends here.
    mask: u32,
}

const NONE: u32 = u32::MAX;

impl Trie {
    /// Add the entry `addr`/`len` (address left-aligned in 128 bits) accepting `ge..=le`.
    fn insert(&mut self, addr: u128, len: u8, ge: u8, le: u8) {
        if self.nodes.is_empty() {
            self.nodes.push(Node { child: [NONE; 2], mask: NONE });
        }
        let mut at = 0usize;
        for depth in 0..len {
            let bit = (addr >> (127 - u32::from(depth))) as usize & 1;
            let next = self.nodes[at].child[bit];
            at = if next == NONE {
                self.nodes.push(Node { child: [NONE; 2], mask: NONE });
                let n = self.nodes.len() - 1;
                self.nodes[at].child[bit] = n as u32;
                n
            } else {
                next as usize
            };
        }
        if self.nodes[at].mask == NONE {
            self.masks.push([0; 3]);
            self.nodes[at].mask = (self.masks.len() - 1) as u32;
        }
        let m = &mut self.masks[self.nodes[at].mask as usize];
        for l in ge..=le {
            m[usize::from(l / 64)] |= 1 << (l % 64);
        }
    }

    /// Build `top` once every entry is in.
    fn finish(&mut self) {
        if self.nodes.is_empty() {
            return;
        }
        self.top = (0..=255u8)
            .map(|octet| {
                let mut masks = [0u64; 3];
                let mut at = 0u32;
                for depth in 0..8 {
                    let n = &self.nodes[at as usize];
                    if n.mask != NONE {
                        for (m, w) in masks.iter_mut().zip(self.masks[n.mask as usize]) {
                            *m |= w;
                        }
                    }
                    at = n.child[usize::from(octet >> (7 - depth) & 1)];
                    if at == NONE {
                        break;
                    }
                }
                (at, masks)
            })
            .collect();
    }

    /// Does an entry cover `addr`/`len` (address left-aligned) with `len` in its range?
    #[inline]
    fn matches(&self, addr: u128, len: u8) -> bool {
        let Some(mut node) = self.nodes.first() else { return false };
        let (word, bit) = (usize::from(len / 64), 1u64 << (len % 64));
        let mut depth = 0u8;
        if len >= 8 {
            let Some((at, masks)) = self.top.get((addr >> 120) as usize) else { return false };
            if masks[word] & bit != 0 {
                return true;
            }
            if *at == NONE {
                return false;
            }
            node = &self.nodes[*at as usize];
            depth = 8;
        }
        loop {
            if node.mask != NONE && self.masks[node.mask as usize][word] & bit != 0 {
                return true;
            }
            if depth == len {
                return false;
            }
            let next = node.child[(addr >> (127 - u32::from(depth))) as usize & 1];
            if next == NONE {
                return false;
            }
            node = &self.nodes[next as usize];
            depth += 1;
        }
    }
}

impl PrefixSet {
    pub fn new(entries: &[PrefixRange]) -> PrefixSet {
        let mut s = PrefixSet::default();
        for e in entries {
            match e.prefix {
                Prefix::V4 { addr, len } => s.v4.insert(u128::from(addr) << 96, len, e.ge, e.le),
                Prefix::V6 { addr, len } => s.v6.insert(addr, len, e.ge, e.le),
            }
        }
        s.v4.finish();
        s.v6.finish();
        let mut sorted = entries.to_vec();
        sorted.sort_unstable_by_key(|e| (e.prefix, e.ge, e.le));
        sorted.dedup();
        s.entries = sorted;
        s
    }

    #[inline]
    pub fn matches(&self, p: &Prefix) -> bool {
        match *p {
            Prefix::V4 { addr, len } => self.v4.matches(u128::from(addr) << 96, len),
            Prefix::V6 { addr, len } => self.v6.matches(addr, len),
        }
    }

    /// An address is matched as a host route (/32, /128).
    pub fn matches_addr(&self, a: &IpAddr) -> bool {
        match a {
            IpAddr::V4(v4) => self.v4.matches(u128::from(u32::from(*v4)) << 96, 32),
            IpAddr::V6(v6) => self.v6.matches(u128::from(*v6), 128),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AS number sets.

/// Sorted, merged ranges of AS numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AsnSet {
    ranges: Vec<(u32, u32)>,
}

/// "64512-65534", "65001" (a string) — integers are taken by the reader directly.
pub fn parse_asn_range(s: &str) -> Result<(u32, u32), String> {
    let one = |w: &str| {
        let w = w.trim();
        let w = w.strip_prefix("AS").or_else(|| w.strip_prefix("as")).unwrap_or(w);
        w.parse::<u32>().map_err(|_| format!("'{s}' is not an AS number or a range A-B"))
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let a = one(s)?;
            (a, a)
        }
    };
    if lo > hi {
        return Err(format!("'{s}': the range's first AS is above its last"));
    }
    Ok((lo, hi))
}

impl AsnSet {
    pub fn new(mut ranges: Vec<(u32, u32)>) -> AsnSet {
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        AsnSet { ranges: merged }
    }

    pub fn contains(&self, asn: u32) -> bool {
        let i = self.ranges.partition_point(|&(lo, _)| lo <= asn);
        i > 0 && self.ranges[i - 1].1 >= asn
    }
}

// ---------------------------------------------------------------------------------------------
// Communities.

/// RFC 1997 and RFC 7999 / RFC 8326 / RFC 9494 well-known communities by name.
pub const WELL_KNOWN: &[(&str, u32)] = &[
    ("GRACEFUL_SHUTDOWN", 0xFFFF_0000),
    ("ACCEPT_OWN", 0xFFFF_0001),
    ("LLGR_STALE", 0xFFFF_0006),
    ("NO_LLGR", 0xFFFF_0007),
    ("BLACKHOLE", 0xFFFF_029A),
    ("NO_EXPORT", 0xFFFF_FF01),
    ("NO_ADVERTISE", 0xFFFF_FF02),
    ("NO_EXPORT_SUBCONFED", 0xFFFF_FF03),
];

/// RFC 7999 §5: BLACKHOLE, 65535:666.
pub const BLACKHOLE: u32 = 0xFFFF_029A;
/// RFC 1997: NO_EXPORT.
pub const NO_EXPORT: u32 = 0xFFFF_FF01;

/// A standard community pattern: each half a value or any (`*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommunityPattern {
    pub high: Option<u16>,
    pub low: Option<u16>,
}

impl CommunityPattern {
    pub fn parse(s: &str) -> Result<CommunityPattern, String> {
        if let Some((_, v)) = WELL_KNOWN.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return Ok(CommunityPattern::exact(*v));
        }
        let half = |w: &str| -> Result<Option<u16>, String> {
            if w == "*" {
                return Ok(None);
            }
            w.parse::<u16>().map(Some).map_err(|_| {
                let names: Vec<&str> = WELL_KNOWN.iter().map(|(n, _)| *n).collect();
                format!(
                    "'{s}' is not a community: write A:B with A and B from 0 to 65535 (or *), or one of {}",
                    names.join(", ")
                )
            })
        };
        let (a, b) = s.split_once(':').ok_or_else(|| format!("'{s}' is not a community: write A:B"))?;
        Ok(CommunityPattern { high: half(a)?, low: half(b)? })
    }

    pub fn exact(v: u32) -> CommunityPattern {
        CommunityPattern { high: Some((v >> 16) as u16), low: Some(v as u16) }
    }

    pub fn value(&self) -> Option<u32> {
        Some(u32::from(self.high?) << 16 | u32::from(self.low?))
    }

    pub fn matches(&self, c: u32) -> bool {
        self.high.is_none_or(|h| h == (c >> 16) as u16) && self.low.is_none_or(|l| l == c as u16)
    }
}

/// A large community pattern (RFC 8092): three 32-bit parts, each a value or any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargePattern(pub [Option<u32>; 3]);

impl LargePattern {
    pub fn parse(s: &str) -> Result<LargePattern, String> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 3 {
            return Err(format!("'{s}' is not a large community: write A:B:C (RFC 8092)"));
        }
        let mut out = [None; 3];
        for (o, p) in out.iter_mut().zip(&parts) {
            if *p != "*" {
                *o =
                    Some(p.parse::<u32>().map_err(|_| {
                        format!("'{s}' is not a large community: each part from 0 to 4294967295, or *")
                    })?);
            }
        }
        Ok(LargePattern(out))
    }

    pub fn value(&self) -> Option<[u32; 3]> {
        Some([self.0[0]?, self.0[1]?, self.0[2]?])
    }

    pub fn matches(&self, c: &[u32; 3]) -> bool {
        self.0.iter().zip(c).all(|(p, v)| p.is_none_or(|p| p == *v))
    }
}

/// An extended community (RFC 4360) as its 8 bytes: "rt:65000:100", "soo:65000:100",
/// "rt:192.0.2.1:7", "rt:4200000000:7" (RFC 5668), or "0x" and 16 hex digits.
pub fn parse_ext_community(s: &str) -> Result<u64, String> {
    if let Some(hex) = s.strip_prefix("0x") {
        if hex.len() == 16 {
            if let Ok(v) = u64::from_str_radix(hex, 16) {
                return Ok(v);
            }
        }
        return Err(format!("'{s}': a raw extended community is 0x and 16 hex digits"));
    }
    let bad =
        || format!("'{s}' is not an extended community: write rt:ASN:N, soo:ASN:N, rt:IPV4:N or 0x and 16 hex digits");
    let mut parts = s.splitn(3, ':');
    let (kind, admin, local) =
        (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    let sub: u64 = match kind {
        "rt" => 0x02,
        "soo" => 0x03,
        _ => return Err(bad()),
    };
    if let Ok(ip) = admin.parse::<std::net::Ipv4Addr>() {
        let n: u16 = local.parse().map_err(|_| bad())?;
        return Ok(0x01 << 56 | sub << 48 | u64::from(u32::from(ip)) << 16 | u64::from(n));
    }
    let asn: u32 = admin.parse().map_err(|_| bad())?;
    if let Ok(asn16) = u16::try_from(asn) {
        let n: u32 = local.parse().map_err(|_| bad())?;
        Ok(sub << 48 | u64::from(asn16) << 32 | u64::from(n))
    } else {
        let n: u16 = local.parse().map_err(|_| bad())?;
        Ok(0x02 << 56 | sub << 48 | u64::from(asn) << 16 | u64::from(n))
    }
}

/// A compiled set of standard communities: exact values hashed, wildcards listed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommunitySet {
    pub exact: FastSet<u32>,
    pub wild: Vec<CommunityPattern>,
    /// The entries in file order, for `all` (each must be matched) and for `set`.
    pub entries: Vec<CommunityPattern>,
}

impl CommunitySet {
    pub fn new(entries: Vec<CommunityPattern>) -> CommunitySet {
        let mut s = CommunitySet::default();
        for e in &entries {
            match e.value() {
                Some(v) => {
                    s.exact.insert(v);
                }
                None => s.wild.push(*e),
            }
        }
        s.entries = entries;
        s
    }

    pub fn contains(&self, c: u32) -> bool {
        self.exact.contains(&c) || self.wild.iter().any(|w| w.matches(c))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LargeSet {
    pub exact: FastSet<[u32; 3]>,
    pub wild: Vec<LargePattern>,
    pub entries: Vec<LargePattern>,
}

impl LargeSet {
    pub fn new(entries: Vec<LargePattern>) -> LargeSet {
        let mut s = LargeSet::default();
        for e in &entries {
            match e.value() {
                Some(v) => {
                    s.exact.insert(v);
                }
                None => s.wild.push(*e),
            }
        }
        s.entries = entries;
        s
    }

    pub fn contains(&self, c: &[u32; 3]) -> bool {
        self.exact.contains(c) || self.wild.iter().any(|w| w.matches(c))
    }
}

// ---------------------------------------------------------------------------------------------
// AS_PATH sets: structural tests, all of which must hold.

/// A comparison of the AS_PATH length (RFC 4271 §9.1.2.2 (a) counting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthTest {
    pub min: u32,
    pub max: u32,
}

impl LengthTest {
    /// "<=50", "<3", ">=2", ">1", "=4", "4", "2..10".
    pub fn parse(s: &str) -> Result<LengthTest, String> {
        let t = s.trim();
        let num = |w: &str| {
            w.trim()
                .parse::<u32>()
                .map_err(|_| format!("'{s}' is not a length test: write <=N, <N, >=N, >N, =N or A..B"))
        };
        let (min, max) = if let Some((a, b)) = t.split_once("..") {
            (num(a)?, num(b)?)
        } else if let Some(w) = t.strip_prefix("<=") {
            (0, num(w)?)
        } else if let Some(w) = t.strip_prefix(">=") {
            (num(w)?, u32::MAX)
        } else if let Some(w) = t.strip_prefix('<') {
            let n = num(w)?;
            if n == 0 {
                return Err(format!("'{s}': no path is shorter than 0"));
            }
            (0, n - 1)
        } else if let Some(w) = t.strip_prefix('>') {
            (num(w)?.saturating_add(1), u32::MAX)
        } else {
            let n = num(t.strip_prefix('=').unwrap_or(t))?;
            (n, n)
        };
        if min > max {
            return Err(format!("'{s}': the range is empty"));
        }
        Ok(LengthTest { min, max })
    }

    pub fn matches(&self, len: u32) -> bool {
        self.min <= len && len <= self.max
    }
}

/// A compiled `[sets.as_path.NAME]`. Set names are resolved to indices in `Sets::asn`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AsPathSet {
    /// The origin AS (last AS of a final AS_SEQUENCE, RFC 6811 §2) is in this AS set.
    pub origin_in: Option<usize>,
    /// The neighbor AS (first AS of the path) is in this AS set.
    pub peer_as: Option<usize>,
    /// Some AS anywhere in the path is in this AS set.
    pub contains_any: Option<usize>,
    pub length: Option<LengthTest>,
    /// `regex`: tried after the structural tests (`path_regex`).
    pub regex: Option<super::path_regex::PathRegex>,
}

/// Every named set of a configuration, by index; names are resolved when policies compile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sets {
    pub prefix: Vec<(String, PrefixSet)>,
    pub asn: Vec<(String, AsnSet)>,
    pub community: Vec<(String, CommunitySet)>,
    pub large_community: Vec<(String, LargeSet)>,
    pub ext_community: Vec<(String, FastSet<u64>)>,
    pub as_path: Vec<(String, AsPathSet)>,
}

/// The index of the set called `name` in `sets`.
pub fn index_of<T>(sets: &[(String, T)], name: &str) -> Option<usize> {
    sets.iter().position(|(n, _)| n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> PrefixSet {
        let e: Vec<PrefixRange> = entries.iter().map(|s| PrefixRange::parse(s).expect(s)).collect();
        PrefixSet::new(&e)
    }

    fn m(s: &PrefixSet, p: &str) -> bool {
        s.matches(&p.parse().expect("prefix"))
    }

    #[test]
    fn a_bare_prefix_matches_only_itself() {
        let s = set(&["192.0.2.0/24"]);
        assert!(m(&s, "192.0.2.0/24"));
        assert!(!m(&s, "192.0.2.0/25") && !m(&s, "192.0.0.0/16") && !m(&s, "192.0.3.0/24"));
    }

    #[test]
    fn orlonger_longer_ge_and_le_bound_the_length_inside_the_prefix() {
        let s = set(&["198.18.0.0/15 orlonger"]);
        assert!(m(&s, "198.18.0.0/15") && m(&s, "198.19.255.255/32") && m(&s, "198.18.7.0/24"));
        assert!(!m(&s, "198.16.0.0/14") && !m(&s, "198.20.0.0/16"));
        let s = set(&["10.0.0.0/8 longer"]);
        assert!(!m(&s, "10.0.0.0/8") && m(&s, "10.0.0.0/9") && m(&s, "10.1.2.3/32"));
        let s = set(&["10.0.0.0/8 le 24"]);
        assert!(m(&s, "10.0.0.0/8") && m(&s, "10.9.9.0/24") && !m(&s, "10.9.9.0/25"));
        let s = set(&["2001:db8::/32 ge 48 le 64"]);
        assert!(!m(&s, "2001:db8::/32") && m(&s, "2001:db8:1::/48") && m(&s, "2001:db8:1:2::/64"));
        assert!(!m(&s, "2001:db8:1:2::/65") && !m(&s, "2001:db9::/48"));
        let s = set(&["2001:db8::/32 ge 40"]);
        assert!(m(&s, "2001:db8::1/128") && !m(&s, "2001:db8::/39"));
    }

    #[test]
    fn the_default_routes_and_host_routes_are_edge_cases_that_hold() {
        let s = set(&["0.0.0.0/0"]);
        assert!(m(&s, "0.0.0.0/0") && !m(&s, "10.0.0.0/8"));
        let s = set(&["0.0.0.0/0 orlonger"]);
        assert!(m(&s, "0.0.0.0/0") && m(&s, "255.255.255.255/32") && !m(&s, "::/0"));
        let s = set(&["0.0.0.0/0 le 8"]);
        assert!(m(&s, "10.0.0.0/8") && !m(&s, "10.0.0.0/9"));
        let s = set(&["0.0.0.0/0 ge 32"]);
        assert!(m(&s, "192.0.2.1/32") && !m(&s, "192.0.2.0/31"));
        let s = set(&["::/0 orlonger"]);
        assert!(m(&s, "::/0") && m(&s, "ffff::1/128") && !m(&s, "0.0.0.0/0"));
        let s = set(&["::/0 ge 128"]);
        assert!(m(&s, "2001:db8::1/128") && !m(&s, "2001:db8::/127"));
        let s = set(&["192.0.2.1/32", "2001:db8::1/128"]);
        assert!(m(&s, "192.0.2.1/32") && m(&s, "2001:db8::1/128") && !m(&s, "192.0.2.0/32"));
        assert!(s.matches_addr(&"192.0.2.1".parse().unwrap()) && !s.matches_addr(&"192.0.2.2".parse().unwrap()));
        assert!(PrefixRange::parse("192.0.2.1/32 longer").is_err());
        assert!(PrefixRange::parse("192.0.2.1/32 orlonger").is_ok());
    }

    #[test]
    fn a_prefix_set_answers_as_a_walk_over_its_entries_would() {
        // Entries and routes from a fixed pseudo-random sequence, concentrated in a few /8s
        // (and /16s of 2001:db8::/32) so that they nest and overlap.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut entries = Vec::new();
        for _ in 0..60 {
            let r = next();
            let len = (r % 33) as u8;
            let addr = (10 + (r >> 8) % 3) << 24 | (r >> 16) as u32 as u64 & 0xff_ffff;
            let prefix = Prefix::new_truncated(std::net::Ipv4Addr::from(addr as u32).into(), len).unwrap();
            let ge = len + ((r >> 40) % u64::from(33 - len)) as u8;
            let le = ge + ((r >> 48) % u64::from(33 - ge)) as u8;
            entries.push(PrefixRange { prefix, ge, le });
            let len6 = 16 + (r % 113) as u8;
            let a6 = 0x2001_0db8u128 << 96 | u128::from((r >> 20) % 4) << 80 | u128::from(next()) << 16;
            let p6 = Prefix::new_truncated(std::net::Ipv6Addr::from(a6).into(), len6).unwrap();
            entries.push(PrefixRange { prefix: p6, ge: len6, le: len6 + ((r >> 50) % u64::from(129 - len6)) as u8 });
        }
        let s = PrefixSet::new(&entries);
        let brute = |p: &Prefix| entries.iter().any(|e| e.prefix.contains(p) && (e.ge..=e.le).contains(&p.len()));
        let (mut yes, mut total) = (0, 0);
        for _ in 0..20_000 {
            let r = next();
            let addr = (10 + (r >> 8) % 3) << 24 | (r >> 16) as u32 as u64 & 0xff_ffff;
            let p = Prefix::new_truncated(std::net::Ipv4Addr::from(addr as u32).into(), (r % 33) as u8).unwrap();
            let a6 = 0x2001_0db8u128 << 96 | u128::from((r >> 20) % 4) << 80 | u128::from(next()) << 16;
            let p6 = Prefix::new_truncated(std::net::Ipv6Addr::from(a6).into(), (r % 129) as u8).unwrap();
            for p in [p, p6] {
                assert_eq!(s.matches(&p), brute(&p), "{p}");
                yes += usize::from(brute(&p));
                total += 1;
            }
        }
        assert!(yes > total / 20 && yes < total * 19 / 20, "both answers are tried: {yes} of {total}");
        // Sets are equal by their entries, whatever the order they were written in.
        let mut rev = entries.clone();
        rev.reverse();
        assert_eq!(PrefixSet::new(&rev), s);
        assert_ne!(PrefixSet::new(&entries[1..]), s);
    }

    #[test]
    fn bad_prefix_entries_say_what_is_wrong() {
        for (s, want) in [
            ("10.0.0.0/8 le 4", "the lengths must satisfy 8 <= ge (8) <= le (4)"),
            ("10.0.0.0/8 ge 33", "ge 33 is not a length from 0 to 32"),
            ("10.0.0.0/8 ge 24 le 16", "8 <= ge (24) <= le (16)"),
            ("10.0.0.1/8", "host bits"),
            ("10.0.0.0/8 upto 9", "unexpected 'upto'"),
            ("10.0.0.0/8 le", "le needs a length"),
            ("2001:db8::/32 le 129", "not a length from 0 to 128"),
        ] {
            let e = PrefixRange::parse(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn asn_sets_merge_ranges_and_find_members_by_binary_search() {
        let s = AsnSet::new(vec![(64512, 65534), (4_200_000_000, 4_294_967_294), (65535, 65535), (3, 3)]);
        assert!(s.contains(3) && s.contains(64512) && s.contains(65535) && s.contains(4_200_000_001));
        assert!(!s.contains(4) && !s.contains(64511) && !s.contains(u32::MAX) && !s.contains(0));
        assert_eq!(parse_asn_range("64512-65534"), Ok((64512, 65534)));
        assert_eq!(parse_asn_range("AS65001"), Ok((65001, 65001)));
        assert!(parse_asn_range("2-1").is_err() && parse_asn_range("x").is_err());
    }

    #[test]
    fn community_sets_hold_names_values_and_wildcards() {
        let e: Vec<CommunityPattern> = ["BLACKHOLE", "65535:666", "64496:*", "*:100", "no_export"]
            .iter()
            .map(|s| CommunityPattern::parse(s).unwrap())
            .collect();
        let s = CommunitySet::new(e);
        assert!(s.contains(BLACKHOLE) && s.contains(NO_EXPORT));
        assert!(s.contains(64496 << 16 | 7) && s.contains(1 << 16 | 100));
        assert!(!s.contains(64497 << 16 | 7) && !s.contains(1 << 16 | 101));
        assert_eq!(s.exact.len(), 2, "BLACKHOLE and 65535:666 are one value");
        assert!(CommunityPattern::parse("65536:1").is_err() && CommunityPattern::parse("1").is_err());
        let l = LargeSet::new(vec![LargePattern::parse("64496:1:*").unwrap(), LargePattern::parse("1:2:3").unwrap()]);
        assert!(l.contains(&[64496, 1, 99]) && l.contains(&[1, 2, 3]) && !l.contains(&[64496, 2, 99]));
        assert!(LargePattern::parse("1:2").is_err() && LargePattern::parse("1:2:x").is_err());
        assert_eq!(parse_ext_community("rt:65000:100"), Ok(0x0002_fde8_0000_0064));
        assert_eq!(parse_ext_community("0x0002fde800000064"), Ok(0x0002_fde8_0000_0064));
        assert_eq!(parse_ext_community("rt:192.0.2.1:7"), Ok(0x0102_c000_0201_0007));
        assert_eq!(parse_ext_community("soo:4200000000:7"), Ok(0x0203_fa56_ea00_0007));
        assert!(parse_ext_community("xx:1:2").is_err());
    }

    #[test]
    fn length_tests_read_every_comparison() {
        let t = |s: &str| LengthTest::parse(s).unwrap();
        assert!(t("<=50").matches(50) && !t("<=50").matches(51));
        assert!(t("<3").matches(2) && !t("<3").matches(3));
        assert!(t(">1").matches(2) && !t(">1").matches(1));
        assert!(t(">=2").matches(2) && t("=4").matches(4) && t("4").matches(4) && !t("4").matches(5));
        assert!(t("2..10").matches(10) && !t("2..10").matches(1));
        assert!(
            LengthTest::parse("<0").is_err() && LengthTest::parse("5..2").is_err() && LengthTest::parse("~1").is_err()
        );
    }
}
