//! Import and export policy: pure code, run on the RIB thread (and by `focl policy test`).
//!
//! Built by `config::policy` from `[sets.*]` and `[[policy.NAME.term]]` (names resolved to
//! indices, sets compiled: `sets.rs`), handed to the RIB in an `Arc<Engine>` at start and on
//! every reload (`RibMsg::SetPolicy`). The RIB asks `Engine::evaluate` about each route of an
//! UPDATE between the pre-policy Adj-RIB-In and the Loc-RIB; the answer is accept or reject
//! and the `set` actions to apply (`edit.rs` rewrites the attributes once, at the end).
//!
//! Semantics: a peer's `import` (or `export`) list is a chain of policies. Terms are tried in
//! order; a term matches when every key of its `match` holds (no `match`: always); a matching
//! term's `set` actions are collected and its `action` decides: `accept` or `reject` ends the
//! chain, `next` (the default) goes on to the next term. A policy whose terms all fall
//! through ends the chain with its `default` when it has one, and otherwise hands over to the
//! next policy of the chain. At the end of the chain the direction's default applies: import
//! accepts (a collector keeps what it is sent), export rejects. `match` keys read the route as
//! received; `set` actions never change what a later term sees.
//!
//! Speed: the RIB splits evaluation in two (`Engine::attr_pass`, `Engine::evaluate_pass`):
//! the keys that read only the attribute set and the peer (AS_PATH, communities, next hop,
//! neighbor) are tried once per UPDATE, for all of its prefixes; per route only the keys that
//! read the route (prefix set, prefix length, family, RPKI, OTC) are. A chain with no such key
//! decides every prefix of an UPDATE alike, so the RIB evaluates it once per UPDATE
//! (`Engine::reads_only_attributes`). Sets are compiled at load (`sets.rs`: prefix sets as
//! tries, community sets hashed).

pub mod edit;
pub mod offline;
pub mod path_regex;
pub mod sets;

use crate::prefix::{Family, Prefix};
use crate::rpki::aspa::AspaState;
use crate::rpki::vrp::RovState;
use crate::wire::aspath::{Segment, AS_SEQUENCE, AS_SET};
use crate::wire::attr::code;
use sets::{AsPathSet, CommunityPattern, LargePattern, Sets};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Which way a chain runs: its default at the end differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Import,
    Export,
}

/// What a matching term does after its `set` actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject,
    Next,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::Next => "next",
        }
    }
}

/// A test of `community_any|all|none` and their large/extended forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
    None,
}

/// One key of a term's `match`; set names are indices into `Sets`.
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    PrefixIn(usize),
    PrefixLen(u8, u8),
    Afi(Family),
    /// The peer's AS in an AS set.
    NeighborAsIn(usize),
    /// The peer's address in a prefix set.
    NeighborAddrIn(usize),
    OriginIn(usize),
    AsPath(usize),
    Community(Quantifier, usize),
    LargeCommunity(Quantifier, usize),
    ExtCommunity(Quantifier, usize),
    NextHopIn(usize),
    /// RFC 6811 states accepted.
    Rpki(Vec<RovState>),
    /// ASPA verification states accepted (draft-ietf-sidrops-aspa-verification-22 §6); a
    /// route without a verdict (iBGP, no ASPA records in use) matches none.
    Aspa(Vec<AspaState>),
    /// RFC 9234 §5 route leak by OTC, as the RIB marked it.
    OtcLeak(bool),
    /// RFC 7999: the route carries BLACKHOLE.
    Blackhole(bool),
}

impl Match {
    /// The key as written in the file, for explain.
    pub fn key(&self) -> &'static str {
        match self {
            Match::PrefixIn(_) => "prefix_in",
            Match::PrefixLen(..) => "prefix_len",
            Match::Afi(_) => "afi",
            Match::NeighborAsIn(_) | Match::NeighborAddrIn(_) => "neighbor_in",
            Match::OriginIn(_) => "origin_in",
            Match::AsPath(_) => "as_path",
            Match::Community(Quantifier::Any, _) => "community_any",
            Match::Community(Quantifier::All, _) => "community_all",
            Match::Community(Quantifier::None, _) => "community_none",
            Match::LargeCommunity(Quantifier::Any, _) => "large_community_any",
            Match::LargeCommunity(Quantifier::All, _) => "large_community_all",
            Match::LargeCommunity(Quantifier::None, _) => "large_community_none",
            Match::ExtCommunity(Quantifier::Any, _) => "ext_community_any",
            Match::ExtCommunity(Quantifier::All, _) => "ext_community_all",
            Match::ExtCommunity(Quantifier::None, _) => "ext_community_none",
            Match::NextHopIn(_) => "next_hop_in",
            Match::Rpki(_) => "rpki",
            Match::Aspa(_) => "aspa",
            Match::OtcLeak(_) => "otc_leak",
            Match::Blackhole(_) => "blackhole",
        }
    }

    /// Does the key read more than the attribute set and the peer (so its answer differs by
    /// prefix, or by the route's RPKI or OTC state)? The others are tried once per attribute
    /// set (`Engine::attr_pass`); a new per-route key (one reading the RIB's state of the
    /// route) belongs here and in `Engine::holds_route`.
    pub fn reads_route(&self) -> bool {
        matches!(
            self,
            Match::PrefixIn(_)
                | Match::PrefixLen(..)
                | Match::Afi(_)
                | Match::Rpki(_)
                | Match::Aspa(_)
                | Match::OtcLeak(_)
        )
    }
}

/// Where `set = { next_hop = ... }` points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHopSet {
    /// The session's own address.
    SelfAddr,
    Addr(IpAddr),
    /// RFC 7999 discard next hop (the `[blackhole]` addresses).
    Discard,
}

/// One key of a term's `set`.
#[derive(Clone, Debug, PartialEq)]
pub enum SetAction {
    LocalPref(u32),
    Med(u32),
    MedAdd(i64),
    CommunityAdd(Vec<u32>),
    CommunityRemove(Vec<CommunityPattern>),
    LargeCommunityAdd(Vec<[u32; 3]>),
    LargeCommunityRemove(Vec<LargePattern>),
    NextHop(NextHopSet),
    /// Prepend the local AS this many times (RFC 4271 §5.1.2).
    Prepend(u8),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// Line of the `[[policy.NAME.term]]` header, for explain.
    pub line: usize,
    pub matches: Vec<Match>,
    pub set: Vec<SetAction>,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub terms: Vec<Term>,
    /// `default`: ends the chain when every term falls through.
    pub default: Option<Action>,
}

/// A peer's chains: indices into `Engine::policies`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    pub import: Vec<usize>,
    pub export: Vec<usize>,
    /// `route_server = true`: exported routes keep AS_PATH and NEXT_HOP (RFC 7947).
    pub route_server: bool,
}

/// `[blackhole]` (RFC 7999): which neighbors may send BLACKHOLE routes, and what they must be.
#[derive(Clone, Debug, PartialEq)]
pub struct Blackhole {
    /// Neighbors (by address) allowed to send blackhole routes...
    pub accept_from: Vec<IpAddr>,
    /// ... or neighbors whose AS is in this AS set.
    pub accept_from_asns: Option<usize>,
    /// The shortest blackhole route accepted, per family (`max_prefix_len_v4`/`_v6`).
    pub min_len_v4: u8,
    pub min_len_v6: u8,
    /// The neighbor must announce a shorter prefix covering the blackhole route.
    pub require_covering: bool,
    /// The discard next hops of the blackhole routes focld announces.
    pub discard_v4: std::net::Ipv4Addr,
    pub discard_v6: std::net::Ipv6Addr,
}

impl Default for Blackhole {
    fn default() -> Self {
        Blackhole {
            accept_from: Vec::new(),
            accept_from_asns: None,
            min_len_v4: 32,
            min_len_v6: 128,
            require_covering: true,
            discard_v4: edit::DEFAULT_DISCARD_V4,
            discard_v6: edit::DEFAULT_DISCARD_V6,
        }
    }
}

/// Everything policy knows: the sets, the policies, and each peer's chains.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Engine {
    pub sets: Sets,
    pub policies: Vec<Policy>,
    /// By address; looked up once per UPDATE, so hashed as the sets are (`sets::FastBuild`).
    pub peers: HashMap<IpAddr, PeerPolicy, sets::FastBuild>,
    pub blackhole: Blackhole,
}

/// The peer a route came from (import) or goes to (export).
#[derive(Clone, Copy, Debug)]
pub struct PeerFacts {
    pub address: IpAddr,
    pub asn: u32,
}

/// What terms read of an attribute set, decoded once per set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteAttrs {
    pub as_path: Vec<Segment>,
    pub communities: Vec<u32>,
    pub large: Vec<[u32; 3]>,
    pub ext: Vec<u64>,
    pub next_hop: Option<IpAddr>,
}

impl RouteAttrs {
    /// Decode from wire attributes with 4-octet AS numbers (as the RIB stores them) and the
    /// IPv6 next hop of MP_REACH_NLRI.
    pub fn decode(attrs: &[u8], mp_next_hop: Option<&[u8]>) -> RouteAttrs {
        let mut r = RouteAttrs::default();
        r.decode_into(attrs, mp_next_hop);
        r
    }

    /// `decode` into `self`, reusing its vectors (the RIB decodes every UPDATE's set into one
    /// view and allocates only when a set is larger than any before).
    pub fn decode_into(&mut self, attrs: &[u8], mp_next_hop: Option<&[u8]>) {
        self.communities.clear();
        self.large.clear();
        self.ext.clear();
        self.next_hop = None;
        let mut segments = 0;
        // The attributes as `split_attrs` walks them (up to one cut short), without its vector.
        let mut data = attrs;
        while let Some((type_code, value, rest)) = next_attr(data) {
            data = rest;
            struct Attr<'a> {
                type_code: u8,
                value: &'a [u8],
            }
            let a = Attr { type_code, value };
            match a.type_code {
                code::AS_PATH => segments = self.path_into(a.value),
                code::COMMUNITIES => self
                    .communities
                    .extend(a.value.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))),
                code::LARGE_COMMUNITY => self.large.extend(a.value.chunks_exact(12).map(|c| {
                    let w = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                    [w(0), w(4), w(8)]
                })),
                code::EXTENDED_COMMUNITIES => self.ext.extend(
                    a.value
                        .chunks_exact(8)
                        .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
                ),
                code::NEXT_HOP => {
                    if let [a, b, c, d] = a.value {
                        self.next_hop = Some(IpAddr::from([*a, *b, *c, *d]));
                    }
                }
                _ => {}
            }
        }
        self.as_path.truncate(segments);
        if let Some(nh) = mp_next_hop {
            if let Some(b) = nh.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()) {
                self.next_hop = Some(IpAddr::from(b));
            }
        }
    }

    /// The segments of an AS_PATH value into `self.as_path` (reusing its segments' vectors);
    /// how many there are: none when the value is malformed, as `aspath::decode` has it.
    fn path_into(&mut self, value: &[u8]) -> usize {
        use crate::wire::aspath::{walk, AsWidth};
        let mut n = 0;
        for seg in walk(value, AsWidth::Four) {
            let Ok(seg) = seg else { return 0 };
            if n == self.as_path.len() {
                self.as_path.push(Segment { kind: seg.kind, asns: Vec::new() });
            }
            let s = &mut self.as_path[n];
            s.kind = seg.kind;
            s.asns.clear();
            s.asns.extend(seg.asns());
            n += 1;
        }
        n
    }

    /// The first AS of the path (the neighbor AS), 0 when there is none.
    pub fn first_as(&self) -> u32 {
        self.as_path.iter().find(|s| s.kind == AS_SEQUENCE).and_then(|s| s.asns.first().copied()).unwrap_or(0)
    }

    /// RFC 6811 §2 origin: the last AS of a final AS_SEQUENCE.
    pub fn origin_as(&self) -> Option<u32> {
        match self.as_path.last() {
            Some(s) if s.kind == AS_SEQUENCE => s.asns.last().copied(),
            _ => None,
        }
    }

    /// RFC 4271 §9.1.2.2 (a) length: an AS_SET counts 1, confederation segments 0.
    pub fn path_len(&self) -> u32 {
        self.as_path
            .iter()
            .map(|s| match s.kind {
                AS_SET => 1,
                AS_SEQUENCE => s.asns.len() as u32,
                _ => 0,
            })
            .sum()
    }
}

/// One route as a term sees it.
#[derive(Clone, Copy, Debug)]
pub struct Route<'a> {
    pub prefix: Prefix,
    pub attrs: &'a RouteAttrs,
    pub rov: RovState,
    /// The route's ASPA verdict, when it has one (filled only for chains that read it).
    pub aspa: Option<AspaState>,
    pub otc_leak: bool,
    pub peer: PeerFacts,
}

/// One line of an explanation: a term tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub policy: String,
    /// 1-based term number in its policy; 0 for the policy's `default`.
    pub term: usize,
    pub line: usize,
    /// `None`: every key held; `Some(key)`: the first that did not.
    pub failed: Option<&'static str>,
    /// The action taken, when the term matched (or the default applied).
    pub action: Option<Action>,
}

/// A chain's decision in short (`Engine::outcome_pass`): who decided, and as bit `i` each
/// term of the chain (numbered through its policies) that matched and has `set` actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub accept: bool,
    pub decided_by: Option<(u16, u16)>,
    pub sets: u64,
}

/// What a chain decided about one route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub accept: bool,
    /// The `set` actions of the matching terms, in order, as (policy, term) indices.
    pub sets: Vec<(u16, u16)>,
    /// Who decided: (policy, term number (0 for its default)), or `None` for the direction's
    /// default at the end of the chain.
    pub decided_by: Option<(u16, u16)>,
    /// RFC 7999: `Some(Ok)` an accepted blackhole route (NO_EXPORT is added), `Some(Err)`
    /// one refused before any term, and why.
    pub blackhole: Option<Result<(), &'static str>>,
}

impl Engine {
    /// The chain of `peer` in `dir` (empty when it has none).
    pub fn chain(&self, peer: &IpAddr, dir: Direction) -> &[usize] {
        match (self.peers.get(peer), dir) {
            (Some(p), Direction::Import) => &p.import,
            (Some(p), Direction::Export) => &p.export,
            (None, _) => &[],
        }
    }

    /// Do the terms of `chain` read only the attribute set and the peer (so one answer holds
    /// for every prefix of an UPDATE)?
    pub fn reads_only_attributes(&self, chain: &[usize]) -> bool {
        chain
            .iter()
            .filter_map(|&i| self.policies.get(i))
            .all(|p| p.terms.iter().all(|t| !t.matches.iter().any(Match::reads_route)))
    }

    /// RFC 7999 acceptance of a route carrying BLACKHOLE from `peer`: `Ok` or why not.
    /// `covered` says whether the neighbor announces a shorter prefix covering it.
    pub fn blackhole_check(
        &self,
        prefix: &Prefix,
        peer: &PeerFacts,
        covered: impl FnOnce() -> bool,
    ) -> Result<(), &'static str> {
        let b = &self.blackhole;
        let allowed = b.accept_from.contains(&peer.address)
            || b.accept_from_asns.and_then(|i| self.sets.asn.get(i)).is_some_and(|(_, s)| s.contains(peer.asn));
        if !allowed {
            return Err("a blackhole route from a neighbor not in [blackhole] accept_from");
        }
        let min = match prefix.family() {
            Family::Ipv4Unicast => b.min_len_v4,
            Family::Ipv6Unicast => b.min_len_v6,
        };
        if prefix.len() < min {
            return Err("a blackhole route shorter than [blackhole] max_prefix_len allows");
        }
        if b.require_covering && !covered() {
            return Err(
                "a blackhole route the neighbor does not cover with a shorter prefix ([blackhole] require_covering)",
            );
        }
        Ok(())
    }

    /// Does some term of `chain` read the RPKI state (so a VRP change must evaluate again)?
    pub fn reads_rpki(&self, chain: &[usize]) -> bool {
        self.chain_reads(chain, |m| matches!(m, Match::Rpki(_)))
    }

    /// Does some term of `chain` read the ASPA verdict (so the route's verdict must be
    /// computed for it, and an ASPA change must evaluate again)?
    pub fn reads_aspa(&self, chain: &[usize]) -> bool {
        self.chain_reads(chain, |m| matches!(m, Match::Aspa(_)))
    }

    fn chain_reads(&self, chain: &[usize], key: impl Fn(&Match) -> bool) -> bool {
        chain.iter().filter_map(|&i| self.policies.get(i)).any(|p| p.terms.iter().any(|t| t.matches.iter().any(&key)))
    }

    /// Run `chain` over `route`; with `trace`, record every term tried (for explain).
    pub fn evaluate(&self, chain: &[usize], dir: Direction, route: &Route, trace: Option<&mut Vec<Step>>) -> Verdict {
        self.run(chain, dir, |_, t| t.matches.iter().find(|m| !self.holds(m, route)).map(Match::key), trace)
    }

    /// The first half of `evaluate` split for the RIB: the keys of every term of `chain` that
    /// read only the attribute set and the peer, tried once for all routes with these
    /// attributes from this peer. `out[i]`: every such key of the chain's `i`-th term holds
    /// (terms numbered through the chain's policies in order).
    pub fn attr_pass(&self, chain: &[usize], attrs: &RouteAttrs, peer: &PeerFacts, out: &mut Vec<bool>) {
        out.clear();
        for p in chain.iter().filter_map(|&i| self.policies.get(i)) {
            for t in &p.terms {
                out.push(t.matches.iter().filter(|m| !m.reads_route()).all(|m| self.holds_attrs(m, attrs, peer)));
            }
        }
    }

    /// The second half: the verdict on one route given `attr_pass`'s answers for its attribute
    /// set; only the keys that read the route (prefix, family, RPKI, OTC) are tried. The same
    /// verdict as `evaluate`.
    pub fn evaluate_pass(&self, chain: &[usize], dir: Direction, pass: &[bool], route: &Route) -> Verdict {
        if let Some(o) = self.outcome_pass(chain, dir, pass, route) {
            return self.verdict_of(chain, o);
        }
        let term_holds = |i: usize, t: &Term| {
            if !pass.get(i).copied().unwrap_or(false) {
                return Some("");
            }
            t.matches.iter().filter(|m| m.reads_route()).find(|m| !self.holds_route(m, route)).map(Match::key)
        };
        self.run(chain, dir, term_holds, None)
    }

    /// `evaluate_pass` without building a `Verdict`: what the RIB compares route by route.
    /// `None` for a chain of more than 64 terms (then `evaluate_pass` is the way).
    #[inline]
    pub fn outcome_pass(&self, chain: &[usize], dir: Direction, pass: &[bool], route: &Route) -> Option<Outcome> {
        let mut o = Outcome { accept: dir == Direction::Import, decided_by: None, sets: 0 };
        let mut i = 0usize;
        for &pi in chain {
            let Some(policy) = self.policies.get(pi) else { continue };
            for (ti, term) in policy.terms.iter().enumerate() {
                if i >= 64 {
                    return None;
                }
                let holds = pass.get(i).copied().unwrap_or(false)
                    && term.matches.iter().all(|m| !m.reads_route() || self.holds_route(m, route));
                if holds {
                    if !term.set.is_empty() {
                        o.sets |= 1 << i;
                    }
                    if term.action != Action::Next {
                        o.accept = term.action == Action::Accept;
                        o.decided_by = Some((pi as u16, (ti + 1) as u16));
                        return Some(o);
                    }
                }
                i += 1;
            }
            if let Some(a) = policy.default {
                o.accept = a == Action::Accept;
                o.decided_by = Some((pi as u16, 0));
                return Some(o);
            }
        }
        Some(o)
    }

    /// The `Verdict` an `Outcome` of `chain` stands for.
    pub fn verdict_of(&self, chain: &[usize], o: Outcome) -> Verdict {
        let mut v = Verdict { accept: o.accept, decided_by: o.decided_by, ..Default::default() };
        let mut i = 0usize;
        for &pi in chain {
            let Some(policy) = self.policies.get(pi) else { continue };
            for ti in 0..policy.terms.len() {
                if i < 64 && o.sets & 1 << i != 0 {
                    v.sets.push((pi as u16, ti as u16));
                }
                i += 1;
            }
        }
        v
    }

    /// The chain's semantics (see the module header), with `failed(i, term)` naming the first
    /// key of the chain's `i`-th term that does not hold, `None` when all do.
    fn run(
        &self,
        chain: &[usize],
        dir: Direction,
        mut failed_key: impl FnMut(usize, &Term) -> Option<&'static str>,
        mut trace: Option<&mut Vec<Step>>,
    ) -> Verdict {
        let mut v = Verdict::default();
        let mut i = 0;
        for &pi in chain {
            let Some(policy) = self.policies.get(pi) else { continue };
            for (ti, term) in policy.terms.iter().enumerate() {
                let failed = failed_key(i, term);
                i += 1;
                if let Some(t) = trace.as_deref_mut() {
                    t.push(Step {
                        policy: policy.name.clone(),
                        term: ti + 1,
                        line: term.line,
                        failed,
                        action: failed.is_none().then_some(term.action),
                    });
                }
                if failed.is_some() {
                    continue;
                }
                if !term.set.is_empty() {
                    v.sets.push((pi as u16, ti as u16));
                }
                match term.action {
                    Action::Next => {}
                    a => {
                        v.accept = a == Action::Accept;
                        v.decided_by = Some((pi as u16, (ti + 1) as u16));
                        return v;
                    }
                }
            }
            if let Some(a) = policy.default {
                if let Some(t) = trace.as_deref_mut() {
                    t.push(Step { policy: policy.name.clone(), term: 0, line: 0, failed: None, action: Some(a) });
                }
                v.accept = a == Action::Accept;
                v.decided_by = Some((pi as u16, 0));
                return v;
            }
        }
        v.accept = dir == Direction::Import;
        v
    }

    /// The `set` actions a verdict collected, in order.
    pub fn set_actions<'a>(&'a self, v: &'a Verdict) -> impl Iterator<Item = &'a SetAction> + 'a {
        v.sets.iter().flat_map(move |&(p, t)| {
            self.policies
                .get(usize::from(p))
                .and_then(|p| p.terms.get(usize::from(t)))
                .map(|t| t.set.iter())
                .into_iter()
                .flatten()
        })
    }

    /// Words for who decided a verdict: "policy import_std term 2 (line 14)".
    pub fn decider(&self, v: &Verdict, dir: Direction) -> String {
        if let Some(Err(why)) = v.blackhole {
            return format!("[blackhole]: {why}");
        }
        match v.decided_by {
            Some((p, t)) => {
                let pol = self.policies.get(usize::from(p));
                let name = pol.map_or("?", |p| p.name.as_str());
                if t == 0 {
                    format!("policy {name} default")
                } else {
                    let line = pol.and_then(|p| p.terms.get(usize::from(t) - 1)).map_or(0, |t| t.line);
                    format!("policy {name} term {t} (line {line})")
                }
            }
            None => match dir {
                Direction::Import => "the import default (accept)".into(),
                Direction::Export => "the export default (reject)".into(),
            },
        }
    }

    fn holds(&self, m: &Match, r: &Route) -> bool {
        if m.reads_route() {
            self.holds_route(m, r)
        } else {
            self.holds_attrs(m, r.attrs, &r.peer)
        }
    }

    /// A key that reads more than the attribute set and the peer (`Match::reads_route`).
    #[inline]
    fn holds_route(&self, m: &Match, r: &Route) -> bool {
        match m {
            Match::PrefixIn(i) => self.sets.prefix.get(*i).is_some_and(|(_, p)| p.matches(&r.prefix)),
            Match::PrefixLen(lo, hi) => (*lo..=*hi).contains(&r.prefix.len()),
            Match::Afi(f) => r.prefix.family() == *f,
            Match::Rpki(states) => states.contains(&r.rov),
            // The verdict is one per attribute set and neighbor, but computed by the RIB from
            // the ASPA records in use and handed in with the route, as the RPKI state is.
            Match::Aspa(states) => r.aspa.is_some_and(|a| states.contains(&a)),
            Match::OtcLeak(b) => r.otc_leak == *b,
            m => self.holds_attrs(m, r.attrs, &r.peer),
        }
    }

    /// A key that reads only the attribute set and the peer.
    fn holds_attrs(&self, m: &Match, a: &RouteAttrs, peer: &PeerFacts) -> bool {
        let s = &self.sets;
        match m {
            Match::NeighborAsIn(i) => s.asn.get(*i).is_some_and(|(_, x)| x.contains(peer.asn)),
            Match::NeighborAddrIn(i) => s.prefix.get(*i).is_some_and(|(_, p)| p.matches_addr(&peer.address)),
            Match::OriginIn(i) => a.origin_as().is_some_and(|o| s.asn.get(*i).is_some_and(|(_, x)| x.contains(o))),
            Match::AsPath(i) => s.as_path.get(*i).is_some_and(|(_, p)| self.as_path_holds(p, a)),
            Match::Community(q, i) => s.community.get(*i).is_some_and(|(_, set)| {
                quantify(
                    *q,
                    &a.communities,
                    |c| set.contains(*c),
                    || set.entries.iter().all(|e| a.communities.iter().any(|c| e.matches(*c))),
                )
            }),
            Match::LargeCommunity(q, i) => s.large_community.get(*i).is_some_and(|(_, set)| {
                quantify(
                    *q,
                    &a.large,
                    |c| set.contains(c),
                    || set.entries.iter().all(|e| a.large.iter().any(|c| e.matches(c))),
                )
            }),
            Match::ExtCommunity(q, i) => s.ext_community.get(*i).is_some_and(|(_, set)| {
                quantify(*q, &a.ext, |c| set.contains(c), || set.iter().all(|e| a.ext.contains(e)))
            }),
            Match::NextHopIn(i) => {
                a.next_hop.is_some_and(|nh| s.prefix.get(*i).is_some_and(|(_, p)| p.matches_addr(&nh)))
            }
            Match::Blackhole(b) => a.communities.contains(&sets::BLACKHOLE) == *b,
            // Keys that read the route: never asked here (`reads_route`).
            Match::PrefixIn(_)
            | Match::PrefixLen(..)
            | Match::Afi(_)
            | Match::Rpki(_)
            | Match::Aspa(_)
            | Match::OtcLeak(_) => false,
        }
    }

    fn as_path_holds(&self, p: &AsPathSet, a: &RouteAttrs) -> bool {
        let asn = |i: usize| self.sets.asn.get(i).map(|(_, s)| s);
        if let Some(l) = p.length {
            if !l.matches(a.path_len()) {
                return false;
            }
        }
        if let Some(i) = p.peer_as {
            if !asn(i).is_some_and(|s| s.contains(a.first_as())) {
                return false;
            }
        }
        if let Some(i) = p.origin_in {
            if !a.origin_as().is_some_and(|o| asn(i).is_some_and(|s| s.contains(o))) {
                return false;
            }
        }
        if let Some(i) = p.contains_any {
            let Some(s) = asn(i) else { return false };
            if !a.as_path.iter().flat_map(|g| g.asns.iter()).any(|x| s.contains(*x)) {
                return false;
            }
        }
        // Last, and only when written: the expression over the path as text.
        if let Some(re) = &p.regex {
            if !re.is_match(&path_regex::path_text(&a.as_path)) {
                return false;
            }
        }
        true
    }

    /// The names of the policies in `chain`.
    pub fn names(&self, chain: &[usize]) -> Vec<String> {
        chain.iter().filter_map(|&i| self.policies.get(i)).map(|p| p.name.clone()).collect()
    }

    /// Peers whose chain in `dir` differs between `self` and `new` (by the policies'
    /// contents, not only their names): what a reload must evaluate again.
    pub fn changed_peers(&self, new: &Engine, dir: Direction) -> HashSet<IpAddr> {
        let mut out = HashSet::new();
        let addrs: HashSet<&IpAddr> = self
            .peers
            .keys()
            .chain(new.peers.keys())
            .chain(self.blackhole.accept_from.iter())
            .chain(new.blackhole.accept_from.iter())
            .collect();
        for a in addrs {
            let old: Vec<&Policy> = self.chain(a, dir).iter().filter_map(|&i| self.policies.get(i)).collect();
            let now: Vec<&Policy> = new.chain(a, dir).iter().filter_map(|&i| new.policies.get(i)).collect();
            // Sets are compared whole: a policy's set indices mean the same only if they do.
            // `[blackhole]` decides on import before any chain: a change there concerns all.
            let blackhole = dir == Direction::Import && self.blackhole != new.blackhole;
            // `route_server` changes what an export sends (RFC 7947: AS_PATH and NEXT_HOP).
            let rs = |e: &Engine| e.peers.get(a).is_some_and(|p| p.route_server);
            let route_server = dir == Direction::Export && !now.is_empty() && rs(self) != rs(new);
            if old != now || (!old.is_empty() && self.sets != new.sets) || blackhole || route_server {
                out.insert(*a);
            }
        }
        out
    }
}

/// The first attribute of `data` (type code and value) and what follows it; `None` at the
/// end or when the header or value is cut short.
fn next_attr(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (t, len, hdr) = match data {
        [f, t, l0, l1, ..] if f & crate::wire::attr::flag::EXTENDED_LENGTH != 0 => {
            (*t, usize::from(u16::from_be_bytes([*l0, *l1])), 4)
        }
        [f, t, l, ..] if f & crate::wire::attr::flag::EXTENDED_LENGTH == 0 => (*t, usize::from(*l), 3),
        _ => return None,
    };
    let value = data.get(hdr..hdr + len)?;
    Some((t, value, &data[hdr + len..]))
}

/// `any`: some item is in the set; `none`: no item is; `all`: every entry of the set is
/// matched by some item.
fn quantify<T>(q: Quantifier, items: &[T], inset: impl Fn(&T) -> bool, all: impl Fn() -> bool) -> bool {
    match q {
        Quantifier::Any => items.iter().any(inset),
        Quantifier::None => !items.iter().any(inset),
        Quantifier::All => all(),
    }
}

#[cfg(test)]
mod tests;
