//! Import policy on the RIB thread (issue 17): between the pre-policy Adj-RIB-In, which keeps
//! every route as received (the archive and BMP pre-policy read it), and the Loc-RIB (the
//! routes marked best).
//!
//! Fed by `apply_update` (each UPDATE's routes, through an `ImportRun`), by
//! `RibMsg::SetPolicy` (start and reload: the routes of peers whose chain changed are
//! evaluated again from the stored pre-policy set, no session reset) and by `revalidate` (a
//! route whose RPKI state flipped under a chain that reads `rpki`). Emits the route's flags
//! (`REJECTED`) and, only when a `set` action changed something, its post-policy attribute set
//! held in a `paths` pair (`POLICY`): a route no policy touched costs nothing more.

use super::aspa::AspaCtx;
use super::attrs::{AttrSet, AttrSlab};
use super::paths::{PathRefs, NO_POST};
use super::table::{self, AttrId, RouteEntry};
use super::{path_of, release_route, set_of};
use crate::msg::{AspaState, AspaTable};
use crate::policy::edit::{self, EditContext};
use crate::policy::{Direction, Engine, Outcome, PeerFacts, Route, RouteAttrs, Verdict};
use crate::prefix::Prefix;
use std::collections::HashMap;

/// Does the route carry BLACKHOLE (RFC 7999) and stand accepted? (Its post-policy set.)
pub(super) fn is_blackhole(attrs: &AttrSlab, paths: &PathRefs, e: &RouteEntry) -> bool {
    !e.is_rejected() && attrs.summary(super::post_of(paths, e)).blackhole
}

/// Does `slot` hold an accepted route for a prefix strictly covering `prefix` (RFC 7999
/// `require_covering`)?
pub(super) fn covered(table: &super::Table, prefix: &Prefix, slot: u16) -> bool {
    table.covering(prefix).iter().any(|(_, rs)| rs.iter().any(|e| e.peer == slot && !e.is_rejected()))
}

/// The implicit `set` of an accepted blackhole route: NO_EXPORT (RFC 7999 §3.2).
fn no_export() -> crate::policy::SetAction {
    crate::policy::SetAction::CommunityAdd(vec![crate::policy::sets::NO_EXPORT])
}

/// Reused by the import of every UPDATE: the decoded view of its attribute set and the answers
/// of the chain's attribute keys, so an UPDATE allocates nothing once they have grown.
#[derive(Default)]
pub(super) struct Scratch {
    decoded: RouteAttrs,
    pass: Vec<bool>,
    outcomes: Vec<(Verdict, Option<Outcome>, Option<Option<AttrId>>)>,
}

/// The import of one UPDATE's routes (one attribute set) from one peer: the chain's keys that
/// read only the attribute set and the peer are tried once, here; per route only those that
/// read the route (`Engine::evaluate_pass`).
pub(super) struct ImportRun<'e> {
    engine: &'e Engine,
    chain: &'e [usize],
    scratch: &'e mut Scratch,
    peer: PeerFacts,
    edit: EditContext,
    /// The set's ASPA verdict from this peer, when the chain reads it.
    aspa: Option<AspaState>,
    /// The chain reads only attributes: one verdict holds for every prefix.
    memo: Option<Decided>,
    attr_only: bool,
    /// The set carries BLACKHOLE: `[blackhole]` decides first, prefix by prefix.
    blackhole: bool,
    /// The distinct verdicts of this UPDATE's routes (found by their short form when the
    /// chain has one), each with its post-policy set once built (`None` not yet, `Some(None)`
    /// the actions change nothing); the vector is the scratch's, reused.
    outcomes: Vec<(Verdict, Option<Outcome>, Option<Option<AttrId>>)>,
}

/// A route's verdict within its `ImportRun`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Decided {
    pub(super) accept: bool,
    outcome: usize,
}

impl<'e> ImportRun<'e> {
    /// `None` when the peer has no import chain (the default: accept, unchanged).
    /// `blackhole`: the set carries BLACKHOLE (its `PathSummary`).
    /// `aspas`: the ASPA records in use, read only when the chain matches `aspa`.
    pub(super) fn new(
        engine: &'e Engine,
        scratch: &'e mut Scratch,
        sp: &SlotPolicy,
        set: AttrSet,
        aspas: &AspaTable,
        blackhole: bool,
    ) -> Option<ImportRun<'e>> {
        let chain = engine.chain(&sp.peer.address, Direction::Import);
        if chain.is_empty() && !blackhole {
            return None;
        }
        scratch.decoded.decode_into(set.attrs, set.mp_next_hop);
        engine.attr_pass(chain, &scratch.decoded, &sp.peer, &mut scratch.pass);
        let mut outcomes = std::mem::take(&mut scratch.outcomes);
        outcomes.clear();
        Some(ImportRun {
            engine,
            chain,
            scratch,
            peer: sp.peer,
            edit: sp.edit,
            aspa: sp.aspa_state(aspas, &set),
            memo: None,
            attr_only: engine.reads_only_attributes(chain) && !blackhole,
            blackhole,
            outcomes,
        })
    }

    /// The verdict on `prefix`; `covered` answers RFC 7999's `require_covering` when asked.
    pub(super) fn decide(&mut self, prefix: Prefix, flags: u16, covered: impl FnOnce() -> bool) -> Decided {
        if let Some(d) = self.memo {
            return d;
        }
        let bh = self.blackhole.then(|| self.engine.blackhole_check(&prefix, &self.peer, covered));
        let route = Route {
            prefix,
            attrs: &self.scratch.decoded,
            rov: RouteEntry { attrs: 0, received: 0, peer: 0, flags }.rov(),
            aspa: self.aspa,
            otc_leak: flags & table::OTC_LEAK != 0,
            peer: self.peer,
        };
        // The common case, without a `Verdict` built per route: the short form, compared.
        if bh.is_none() {
            if let Some(o) = self.engine.outcome_pass(self.chain, Direction::Import, &self.scratch.pass, &route) {
                let outcome = match self.outcomes.iter().position(|(_, s, _)| *s == Some(o)) {
                    Some(i) => i,
                    None => {
                        self.outcomes.push((self.engine.verdict_of(self.chain, o), Some(o), None));
                        self.outcomes.len() - 1
                    }
                };
                let d = Decided { accept: o.accept, outcome };
                if self.attr_only {
                    self.memo = Some(d);
                }
                return d;
            }
        }
        let v = match bh {
            Some(Err(why)) => Verdict { accept: false, blackhole: Some(Err(why)), ..Default::default() },
            _ => {
                let mut v = self.engine.evaluate_pass(self.chain, Direction::Import, &self.scratch.pass, &route);
                v.blackhole = bh;
                v
            }
        };
        let outcome = match self.outcomes.iter().position(|(o, _, _)| *o == v) {
            Some(i) => i,
            None => {
                self.outcomes.push((v, None, None));
                self.outcomes.len() - 1
            }
        };
        let d = Decided { accept: self.outcomes[outcome].0.accept, outcome };
        if self.attr_only {
            self.memo = Some(d);
        }
        d
    }

    /// The post-policy set of an accepted route (interned, not yet held), or `None` when the
    /// actions change nothing.
    pub(super) fn post_set(&mut self, attrs: &mut AttrSlab, pre: AttrId, d: Decided) -> Option<AttrId> {
        let (v, _, built) = self.outcomes.get(d.outcome)?;
        let bh = v.blackhole == Some(Ok(()));
        if (v.sets.is_empty() && !bh) || !v.accept {
            return None;
        }
        if let Some(p) = built {
            return *p;
        }
        // Another verdict with the same actions (decided by another term) built it already.
        let same = |(o, _, b): &(Verdict, Option<Outcome>, Option<Option<AttrId>>)| {
            (o.accept && o.sets == v.sets && (o.blackhole == Some(Ok(()))) == bh).then_some(*b).flatten()
        };
        let post = match self.outcomes.iter().find_map(same) {
            Some(p) => p,
            None => {
                let set = attrs.get(pre)?;
                let four = set.four_octet;
                let extra = bh.then(no_export);
                let edited =
                    edit::apply(self.engine.set_actions(v).chain(extra.iter()), set.attrs, set.mp_next_hop, &self.edit);
                edited.map(|(a, mp)| attrs.intern(AttrSet { attrs: &a, mp_next_hop: mp.as_deref(), four_octet: four }))
            }
        };
        self.outcomes[d.outcome].2 = Some(post);
        post
    }

    /// Give back the post-policy sets no route took.
    pub(super) fn finish(self, attrs: &mut AttrSlab) {
        let mut released = Vec::new();
        for (_, _, p) in &self.outcomes {
            if let Some(Some(p)) = p {
                if !released.contains(p) {
                    attrs.release_unused(*p);
                    released.push(*p);
                }
            }
        }
        self.scratch.outcomes = self.outcomes;
    }
}

/// Build the route entry of `pre` (and path identifier `pid`) after a verdict: the flags and
/// the `attrs` field, holding what it needs in the slab and the pairs.
pub(super) fn entry_after(
    attrs: &mut AttrSlab,
    paths: &mut PathRefs,
    pre: AttrId,
    pid: Option<u32>,
    post: Option<AttrId>,
    accept: bool,
    mut e: RouteEntry,
) -> RouteEntry {
    e.flags &= !(table::REJECTED | table::POLICY);
    if !accept {
        e.flags |= table::REJECTED;
    }
    if post.is_none() && pid.is_none() {
        attrs.hold(pre);
        e.attrs = pre;
        return e;
    }
    let (r, new) = paths.hold_post(pre, pid.unwrap_or(0), post.unwrap_or(NO_POST));
    if new {
        attrs.hold(pre);
        if let Some(p) = post {
            attrs.hold(p);
        }
    }
    e.attrs = r;
    if post.is_some() {
        e.flags |= table::POLICY;
    }
    e
}

/// What evaluating routes again changed, for `focl reload`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reimport {
    pub evaluated: u64,
    /// Rejected before, accepted now.
    pub now_accepted: u64,
    /// Accepted before, rejected now.
    pub now_rejected: u64,
    /// Accepted before and now, with other post-policy attributes.
    pub modified: u64,
}

/// Per peer slot: what evaluating its routes needs.
pub(super) struct SlotPolicy {
    pub(super) peer: PeerFacts,
    pub(super) edit: EditContext,
    /// How its routes are verified against ASPA records, when its import chain reads `aspa`
    /// (the verdict costs a walk of the path: computed only then).
    aspa: Option<AspaCtx>,
}

impl SlotPolicy {
    fn aspa_state(&self, aspas: &AspaTable, set: &AttrSet) -> Option<AspaState> {
        self.aspa.and_then(|c| c.state(aspas, set))
    }
}

/// Evaluate again the routes of one prefix that `pick` chooses, from their pre-policy sets;
/// returns whether any route's standing (rejected or post-policy set) changed, so the caller
/// decides the best path again. Counts go to `out[slot]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn reimport_routes(
    engine: &Engine,
    slots: &HashMap<u16, SlotPolicy>,
    attrs: &mut AttrSlab,
    paths: &mut PathRefs,
    decoded: &mut HashMap<AttrId, RouteAttrs>,
    aspas: &AspaTable,
    prefix: Prefix,
    routes: &mut [RouteEntry],
    out: &mut HashMap<u16, Reimport>,
    covers: &[u16],
    mut on_change: impl FnMut(&RouteEntry, bool, &RouteEntry, bool),
) -> bool {
    let mut any = false;
    for e in routes.iter_mut() {
        let Some(sp) = slots.get(&e.peer) else { continue };
        let pre = set_of(paths, e);
        let pid = path_of(paths, e);
        let Some(set) = attrs.get(pre) else { continue };
        let d = decoded.entry(pre).or_insert_with(|| RouteAttrs::decode(set.attrs, set.mp_next_hop));
        let aspa = sp.aspa_state(aspas, &set);
        let route = Route { prefix, attrs: d, rov: e.rov(), aspa, otc_leak: e.is_otc_leak(), peer: sp.peer };
        let chain = engine.chain(&sp.peer.address, Direction::Import);
        let bh = attrs
            .summary(pre)
            .blackhole
            .then(|| engine.blackhole_check(&prefix, &sp.peer, || covers.contains(&e.peer)));
        let mut v = match bh {
            Some(Err(why)) => Verdict { accept: false, blackhole: Some(Err(why)), ..Default::default() },
            _ => engine.evaluate(chain, Direction::Import, &route, None),
        };
        v.blackhole = bh;
        let extra = (bh == Some(Ok(()))).then(no_export);
        let edited = if v.accept && (!v.sets.is_empty() || extra.is_some()) {
            edit::apply(engine.set_actions(&v).chain(extra.iter()), set.attrs, set.mp_next_hop, &sp.edit)
                .map(|(a, mp)| (a, mp, set.four_octet))
        } else {
            None
        };
        let post = edited
            .map(|(a, mp, four)| attrs.intern(AttrSet { attrs: &a, mp_next_hop: mp.as_deref(), four_octet: four }));
        let old = *e;
        let old_post = if old.flags & table::POLICY != 0 { paths.post(old.attrs) } else { None };
        let old_bh = is_blackhole(attrs, paths, &old);
        let new = entry_after(attrs, paths, pre, pid, post, v.accept, old);
        if let Some(p) = post {
            attrs.release_unused(p);
        }
        release_route(attrs, paths, old);
        *e = RouteEntry { flags: new.flags & !table::BEST | old.flags & table::BEST, ..new };
        let new_bh = is_blackhole(attrs, paths, e);
        if old_bh != new_bh || old.is_rejected() != e.is_rejected() {
            on_change(&old, old_bh, e, new_bh);
        }
        let c = out.entry(e.peer).or_default();
        c.evaluated += 1;
        let was_rejected = old.is_rejected();
        if was_rejected != e.is_rejected() {
            any = true;
            if was_rejected {
                c.now_accepted += 1;
            } else {
                c.now_rejected += 1;
            }
        } else if !e.is_rejected() && old_post != post {
            // Interning gives equal sets one id: another id is other attributes.
            any = true;
            c.modified += 1;
        }
    }
    any
}

/// The peer facts and edit context of a peer's session (none yet: local AS 0, no address).
pub(super) fn slot_policy(p: &super::PeerState, engine: &Engine) -> SlotPolicy {
    let reads_aspa = engine.reads_aspa(engine.chain(&p.address, Direction::Import));
    SlotPolicy {
        peer: PeerFacts { address: p.address, asn: p.remote_as },
        edit: EditContext {
            local_as: p.session.as_ref().map_or(0, |s| s.local_as),
            local_addr: p.session.as_ref().map(|s| s.local_addr),
            discard_v4: edit::DEFAULT_DISCARD_V4,
            discard_v6: edit::DEFAULT_DISCARD_V6,
        },
        aspa: AspaCtx::of(p).filter(|_| reads_aspa),
    }
}

impl super::Rib {
    /// `RibMsg::SetPolicy`: take the new policies; evaluate again, from the pre-policy sets,
    /// the routes of every peer whose import chain changed (no session reset, no route
    /// refresh: the Adj-RIB-In holds every route as received), deciding best paths again
    /// where a route's standing changed. What changed, peer by peer, for `focl reload`.
    pub(super) fn set_policy(&mut self, engine: std::sync::Arc<Engine>) -> Vec<crate::control::proto::PolicyChange> {
        let changed = self.policy.changed_peers(&engine, Direction::Import);
        // `[blackhole]` decides before any chain: a change there concerns every neighbor.
        let all = self.policy.blackhole != engine.blackhole;
        self.policy = engine;
        let mut picked = HashMap::new();
        let mut labels = HashMap::new();
        for p in self.peers.values().filter(|p| all || changed.contains(&p.address)) {
            labels.insert(p.slot, p.label.clone());
            if p.session.is_some() {
                picked.insert(p.slot, slot_policy(p, &self.policy));
            }
        }
        let started = std::time::Instant::now();
        // Exports follow in `export_policy_changed`, told whether any route's standing moved.
        let out = self.reimport(&picked, None);
        let mut report: Vec<crate::control::proto::PolicyChange> = labels
            .iter()
            .map(|(slot, label)| {
                let c = out.get(slot).copied().unwrap_or_default();
                crate::control::proto::PolicyChange {
                    peer: label.clone(),
                    direction: "import".into(),
                    evaluated: c.evaluated,
                    now_accepted: c.now_accepted,
                    now_rejected: c.now_rejected,
                    modified: c.modified,
                }
            })
            .collect();
        report.sort_by(|a, b| a.peer.cmp(&b.peer));
        for c in &report {
            log::info!(
                "neighbor {}: import policy changed: {} routes evaluated again, {} now accepted, {} now rejected, {} with other attributes ({} ms)",
                c.peer,
                c.evaluated,
                c.now_accepted,
                c.now_rejected,
                c.modified,
                started.elapsed().as_millis()
            );
        }
        report
    }

    /// Evaluate again the routes of the slots in `picked` (within the prefixes `only` when
    /// given, else the whole table) and decide the best path again where that changed.
    pub(super) fn reimport(
        &mut self,
        picked: &HashMap<u16, SlotPolicy>,
        only: Option<&[Prefix]>,
    ) -> HashMap<u16, Reimport> {
        let mut out = HashMap::new();
        if picked.is_empty() {
            return out;
        }
        let super::Rib { table, attrs, paths, slots, decision, rejected, policy, vrps, .. } = self;
        let mut decoded = HashMap::new();
        // RFC 7999 require_covering: the slots with an accepted route on a shorter prefix
        // covering the current one. A walk in table order meets a covering prefix before the
        // prefixes inside it, so a stack of the prefixes walked that may cover what follows
        // answers it without another lookup.
        let mut stack: Vec<(Prefix, Vec<u16>)> = Vec::new();
        let mut each = |prefix: Prefix, routes: &mut [RouteEntry], covers: Option<Vec<u16>>| {
            let covers = covers.unwrap_or_else(|| {
                while stack.last().is_some_and(|(p, _)| !p.contains(&prefix)) {
                    stack.pop();
                }
                stack.iter().flat_map(|(_, s)| s.iter().copied()).collect()
            });
            if routes.iter().any(|e| picked.contains_key(&e.peer)) {
                if decoded.len() > 100_000 {
                    decoded.clear(); // bounded: a full table has more sets than worth keeping decoded
                }
                let count = |old: &RouteEntry, old_bh: bool, new: &RouteEntry, new_bh: bool| {
                    if let Some(c) = rejected.get_mut(usize::from(old.peer)) {
                        let bump = |v: &mut u64, was: bool, now: bool| match (was, now) {
                            (true, false) => *v = v.saturating_sub(1),
                            (false, true) => *v += 1,
                            _ => {}
                        };
                        bump(&mut c[0], old.is_rejected(), new.is_rejected());
                        bump(&mut c[1], old_bh, new_bh);
                    }
                };
                let changed = reimport_routes(
                    policy,
                    picked,
                    attrs,
                    paths,
                    &mut decoded,
                    &vrps.aspas,
                    prefix,
                    routes,
                    &mut out,
                    &covers,
                    count,
                );
                if changed {
                    super::best::mark_best(decision, routes, |e| super::candidate(slots, attrs, paths, e));
                }
            }
            stack.push((prefix, routes.iter().filter(|e| !e.is_rejected()).map(|e| e.peer).collect()));
        };
        match only {
            None => table.all_mut(|p, r| each(p, r, None)),
            Some(prefixes) => {
                for p in prefixes {
                    let covers: Vec<u16> = table
                        .covering(p)
                        .iter()
                        .flat_map(|(_, rs)| rs.iter().filter(|e| !e.is_rejected()).map(|e| e.peer))
                        .collect();
                    if let Some(routes) = table.get_mut(p) {
                        each(*p, routes, Some(covers));
                    }
                }
            }
        }
        out
    }
}

impl super::Rib {
    /// The slots of Established peers whose import chain reads `rpki`.
    pub(super) fn rpki_policy_slots(&self) -> HashMap<u16, SlotPolicy> {
        self.policy_slots_reading(Engine::reads_rpki)
    }

    /// The slots of Established peers whose import chain reads `aspa`.
    pub(super) fn aspa_policy_slots(&self) -> HashMap<u16, SlotPolicy> {
        self.policy_slots_reading(Engine::reads_aspa)
    }

    fn policy_slots_reading(&self, reads: impl Fn(&Engine, &[usize]) -> bool) -> HashMap<u16, SlotPolicy> {
        let mut out = HashMap::new();
        for p in self.peers.values().filter(|p| p.session.is_some()) {
            if reads(&self.policy, self.policy.chain(&p.address, Direction::Import)) {
                out.insert(p.slot, slot_policy(p, &self.policy));
            }
        }
        out
    }
}

impl super::Rib {
    /// `focl policy explain PEER PREFIX`: the peer's routes for exactly `prefix`, each run
    /// through its import chain with every term recorded.
    pub(super) fn explain(
        &self,
        peer: crate::msg::PeerId,
        prefix: Prefix,
    ) -> Result<crate::control::proto::PolicyExplain, crate::control::proto::CtlError> {
        use crate::control::proto::{self as ctl, CtlError, ExplainStep, ExplainedRoute};
        let p = self.peer(peer)?;
        let chain = self.policy.chain(&p.address, Direction::Import);
        let mut out = ctl::PolicyExplain {
            peer: p.label.clone(),
            prefix: prefix.to_string(),
            import: self.policy.names(chain),
            routes: Vec::new(),
        };
        let sp = slot_policy(p, &self.policy);
        let routes = self.table.get(&prefix).unwrap_or_default();
        for e in routes.iter().filter(|e| e.peer == p.slot) {
            let Some(set) = self.attrs.get(set_of(&self.paths, e)) else { continue };
            let decoded = RouteAttrs::decode(set.attrs, set.mp_next_hop);
            let aspa = sp.aspa_state(&self.vrps.aspas, &set);
            let route = Route { prefix, attrs: &decoded, rov: e.rov(), aspa, otc_leak: e.is_otc_leak(), peer: sp.peer };
            let mut trace = Vec::new();
            let bh = self
                .attrs
                .summary(set_of(&self.paths, e))
                .blackhole
                .then(|| self.policy.blackhole_check(&prefix, &sp.peer, || covered(&self.table, &prefix, p.slot)));
            let mut v = match bh {
                Some(Err(why)) => Verdict { accept: false, blackhole: Some(Err(why)), ..Default::default() },
                _ => self.policy.evaluate(chain, Direction::Import, &route, Some(&mut trace)),
            };
            v.blackhole = bh;
            out.routes.push(ExplainedRoute {
                path_id: path_of(&self.paths, e),
                steps: trace
                    .into_iter()
                    .map(|s| ExplainStep {
                        policy: s.policy,
                        term: s.term as u32,
                        line: s.line as u32,
                        matched: s.failed.is_none(),
                        failed: s.failed.map(String::from),
                        action: s.action.map(|a| a.name().to_string()),
                    })
                    .collect(),
                decision: if v.accept { "accept" } else { "reject" }.into(),
                decided_by: self.policy.decider(&v, Direction::Import),
                best: e.is_best(),
            });
        }
        if out.routes.is_empty() {
            return Err(CtlError::new(
                ctl::code::BAD_ARGUMENT,
                format!(
                    "neighbor {} has no route for {prefix}; focl rib in {} {prefix} shows what it has",
                    p.label, p.address
                ),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::{announce, attrs, best_peer, rib_with_peers, withdraw};
    use super::super::Rib;
    use crate::msg::{RibMsg, VrpTable};
    use crate::prefix::Prefix;
    use std::path::Path;
    use std::sync::Arc;

    /// Peers 127.0.0.1 and 127.0.0.2 (as `rib_with_peers` makes them), 127.0.0.1 with `import`.
    fn policy(body: &str) -> Arc<crate::policy::Engine> {
        let text = format!(
            "[global]\nasn = 65000\nrouter_id = \"192.0.2.1\"\n[[peers]]\naddress = \"127.0.0.1\"\nremote_as = 65001\nimport = [\"in\"]\n[[peers]]\nname = \"b\"\naddress = \"127.0.0.2\"\nremote_as = 65002\n{body}"
        );
        crate::config::parse(&text, Path::new("t.toml")).expect("valid").policies
    }

    const STD: &str = r#"
[sets.prefix]
bogons = ["198.18.0.0/15 orlonger", "10.0.0.0/8 le 32"]
[sets.community]
preferred = ["65001:100"]
[[policy.in.term]]
match = { prefix_in = "bogons" }
action = "reject"
[[policy.in.term]]
match = { community_any = "preferred" }
set = { local_pref = 200 }
action = "accept"
"#;

    /// An import chain that accepts everything.
    const ALL_IN: &str = "[[policy.in.term]]\naction = \"accept\"\n";

    /// `attrs` with COMMUNITIES `c` added.
    fn with_community(mut a: Vec<u8>, c: u32) -> Vec<u8> {
        a.extend_from_slice(&[0xc0, 8, 4]);
        a.extend_from_slice(&c.to_be_bytes());
        a
    }

    fn entry(rib: &Rib, p: &str, peer_slot: u16) -> super::RouteEntry {
        let p: Prefix = p.parse().expect("prefix");
        *rib.table.get(&p).expect("routes").iter().find(|e| e.peer == peer_slot).expect("route")
    }

    #[test]
    fn rejected_routes_stay_in_the_adj_rib_in_and_a_set_local_pref_wins_the_best_path() {
        let mut rib = rib_with_peers(2);
        rib.handle(RibMsg::SetPolicy(policy(STD), None));
        let slot1 = rib.peers[&1].slot;
        announce(&mut rib, 1, &["10.1.0.0/16", "192.0.2.0/24"], attrs(65001, 3));
        announce(&mut rib, 2, &["10.1.0.0/16"], attrs(65002, 1));
        assert!(entry(&rib, "10.1.0.0/16", slot1).is_rejected(), "a bogon from peer 1");
        assert_eq!(best_peer(&rib, "10.1.0.0/16"), Some(2));
        assert_eq!(rib.peers[&1].counts, [2, 0], "the rejected route is still in the Adj-RIB-In");
        assert_eq!(rib.rejected[usize::from(slot1)], [1, 0]);
        withdraw(&mut rib, 2, &["10.1.0.0/16"]);
        assert_eq!(best_peer(&rib, "10.1.0.0/16"), None, "a rejected route alone is never best");
        // Peer 1's longer path with the community gets LOCAL_PREF 200 and beats peer 2's.
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 1));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(2));
        announce(&mut rib, 1, &["192.0.2.0/24"], with_community(attrs(65001, 3), 65001 << 16 | 100));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(1));
        let e = entry(&rib, "192.0.2.0/24", slot1);
        assert!(e.flags & super::table::POLICY != 0);
        let post = rib.attrs.summary(super::super::post_of(&rib.paths, &e));
        let pre = rib.attrs.summary(super::super::set_of(&rib.paths, &e));
        assert_eq!((pre.local_pref, post.local_pref), (None, Some(200)), "the pre-policy set is kept as received");
        // Everything is given back when the routes go.
        withdraw(&mut rib, 1, &["10.1.0.0/16"]);
        assert_eq!(rib.rejected[usize::from(slot1)], [0, 0]);
        rib.handle(RibMsg::SessionDown { peer: 1 });
        rib.handle(RibMsg::SessionDown { peer: 2 });
        assert_eq!((rib.attrs.len(), rib.paths.len(), rib.table.routes()), (0, 0, 0));
    }

    #[test]
    fn a_changed_policy_is_applied_from_the_adj_rib_in_and_reported_peer_by_peer() {
        let mut rib = rib_with_peers(2);
        rib.handle(RibMsg::SetPolicy(policy(STD), None));
        let prefixes: Vec<String> = (0..50).map(|i| format!("10.{i}.0.0/16")).collect();
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        announce(&mut rib, 1, &refs, attrs(65001, 1));
        announce(&mut rib, 1, &["192.0.2.0/24"], with_community(attrs(65001, 1), 65001 << 16 | 100));
        announce(&mut rib, 2, &refs, attrs(65002, 2));
        assert_eq!(best_peer(&rib, "10.7.0.0/16"), Some(2));
        // The bogon term goes; 10/8 is accepted now and peer 1's shorter paths win.
        let report = rib.set_policy(policy(&STD.replace("\"10.0.0.0/8 le 32\"", "\"192.168.0.0/16 le 32\"")));
        assert_eq!(report.len(), 1);
        let c = &report[0];
        assert_eq!((c.peer.as_str(), c.evaluated, c.now_accepted, c.now_rejected), ("p1", 51, 50, 0));
        assert_eq!(best_peer(&rib, "10.7.0.0/16"), Some(1));
        // A new LOCAL_PREF: other attributes for the one route with the community.
        let report = rib
            .set_policy(policy(&STD.replace("\"10.0.0.0/8 le 32\"", "\"192.168.0.0/16 le 32\"").replace("200", "300")));
        assert_eq!((report[0].modified, report[0].now_rejected), (1, 0));
        let slot1 = rib.peers[&1].slot;
        let e = entry(&rib, "192.0.2.0/24", slot1);
        assert_eq!(rib.attrs.summary(super::super::post_of(&rib.paths, &e)).local_pref, Some(300));
        // The same policy again changes nothing and reports nothing.
        let same = policy(&STD.replace("\"10.0.0.0/8 le 32\"", "\"192.168.0.0/16 le 32\"").replace("200", "300"));
        assert!(rib.set_policy(same).is_empty());
        rib.handle(RibMsg::SessionDown { peer: 1 });
        rib.handle(RibMsg::SessionDown { peer: 2 });
        assert_eq!((rib.attrs.len(), rib.paths.len()), (0, 0), "no set leaked across re-evaluations");
    }

    #[test]
    fn a_vrp_change_imports_again_the_routes_whose_rpki_state_a_policy_reads() {
        use crate::rpki::vrp::Vrp;
        let mut rib = rib_with_peers(2);
        rib.handle(RibMsg::SetPolicy(
            policy("[[policy.in.term]]\nmatch = { rpki = \"invalid\" }\naction = \"reject\"\n"),
            None,
        ));
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 2));
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(1));
        let set: crate::rpki::vrp::VrpSet =
            [Vrp { prefix: "192.0.2.0/24".parse().expect("prefix"), max_len: 24, asn: 65002 }].into_iter().collect();
        let table = Arc::new(VrpTable::from_sets([&set]));
        let changed = table.changed_prefixes(&VrpTable::default());
        rib.revalidate(table, changed);
        let slot1 = rib.peers[&1].slot;
        assert!(entry(&rib, "192.0.2.0/24", slot1).is_rejected(), "now Invalid: rejected");
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(2));
        rib.revalidate(Arc::new(VrpTable::default()), vec!["192.0.2.0/24".parse().expect("prefix")]);
        assert!(!entry(&rib, "192.0.2.0/24", slot1).is_rejected(), "NotFound again: accepted");
        assert_eq!(best_peer(&rib, "192.0.2.0/24"), Some(1));
    }

    /// ORIGIN IGP, one AS_SEQUENCE of `path`, NEXT_HOP 192.0.2.2.
    pub(in crate::rib) fn path_attrs(path: &[u32]) -> Vec<u8> {
        let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 2 + 4 * path.len() as u8, 2, path.len() as u8];
        for asn in path {
            a.extend_from_slice(&asn.to_be_bytes());
        }
        a.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 2]);
        a
    }

    pub(in crate::rib) fn aspa_table(records: &[(u32, &[u32])]) -> Arc<VrpTable> {
        let set: crate::rpki::aspa::AspaRecords = records.iter().map(|(c, p)| (*c, p.to_vec())).collect();
        let mut t = VrpTable::default();
        t.aspas = crate::rpki::aspa::AspaTable::from_sets([&set]);
        Arc::new(t)
    }

    #[test]
    fn an_aspa_change_imports_again_the_routes_whose_verdict_a_policy_reads() {
        let mut rib = rib_with_peers(2);
        rib.handle(RibMsg::SetPolicy(
            policy("[[policy.in.term]]\nmatch = { aspa = \"invalid\" }\naction = \"reject\"\n"),
            None,
        ));
        // Up from 64500 to 64501, across to 64502, down to 64503, then up again to its other
        // provider, peer 1 (AS 65001), which sends it down to us: a leak (draft §6.3, the
        // downstream procedure that decides without a BGP Role).
        let leaked = path_attrs(&[65001, 64503, 64502, 64501, 64500]);
        announce(&mut rib, 1, &["192.0.2.0/24"], leaked.clone());
        announce(&mut rib, 1, &["198.51.100.0/24"], path_attrs(&[65001, 64500]));
        let slot1 = rib.peers[&1].slot;
        assert!(!entry(&rib, "192.0.2.0/24", slot1).is_rejected(), "no ASPA records: no verdict, no match");
        let records: [(u32, &[u32]); 5] =
            [(64500, &[64501]), (64503, &[64502, 65001]), (64501, &[64600]), (64502, &[64601]), (65001, &[64700])];
        rib.revalidate(aspa_table(&records), Vec::new());
        assert!(entry(&rib, "192.0.2.0/24", slot1).is_rejected(), "Invalid now: rejected");
        assert!(!entry(&rib, "198.51.100.0/24", slot1).is_rejected(), "a two-AS path from a provider is Valid");
        assert_eq!(rib.rejected[usize::from(slot1)], [1, 0]);
        let why = rib.explain(1, "192.0.2.0/24".parse().expect("prefix")).expect("explain");
        assert_eq!(why.routes[0].decision, "reject");
        assert!(why.routes[0].steps[0].matched, "the aspa term matched: {:?}", why.routes[0]);
        // A new route with that path is refused on arrival, under the records in use.
        announce(&mut rib, 1, &["203.0.113.0/24"], leaked);
        assert!(entry(&rib, "203.0.113.0/24", slot1).is_rejected());
        // Without 65001's record the leak cannot be seen: Unknown, accepted again.
        rib.revalidate(aspa_table(&records[..4]), Vec::new());
        assert!(!entry(&rib, "192.0.2.0/24", slot1).is_rejected());
        assert!(!entry(&rib, "203.0.113.0/24", slot1).is_rejected());
        assert_eq!(rib.rejected[usize::from(slot1)], [0, 0]);
    }

    #[test]
    fn an_ibgp_route_has_no_aspa_verdict_and_matches_no_aspa_value() {
        let mut rib = rib_with_peers(1);
        rib.handle(RibMsg::SetPolicy(
            policy(
                "[[policy.in.term]]\nmatch = { aspa = [\"valid\", \"invalid\", \"unknown\"] }\naction = \"reject\"\n",
            ),
            None,
        ));
        rib.revalidate(aspa_table(&[(64500, &[64501])]), Vec::new());
        let slot1 = rib.peers[&1].slot;
        announce(&mut rib, 1, &["192.0.2.0/24"], path_attrs(&[65001, 64500]));
        assert!(entry(&rib, "192.0.2.0/24", slot1).is_rejected(), "eBGP: some verdict, so matched");
        // The same peer as iBGP (local AS = its AS): draft §7.2 verifies eBGP routes only.
        rib.handle(RibMsg::SessionDown { peer: 1 });
        let mut info = super::super::tests::session_info(1);
        info.local_as = 65001;
        rib.handle(RibMsg::SessionUp { peer: 1, info });
        announce(&mut rib, 1, &["192.0.2.0/24"], path_attrs(&[64500]));
        assert!(!entry(&rib, "192.0.2.0/24", slot1).is_rejected());
    }

    #[test]
    fn a_blackhole_route_is_accepted_only_from_an_allowed_neighbor_long_enough_and_covered_and_gets_no_export() {
        let mut rib = rib_with_peers(2);
        rib.handle(RibMsg::SetPolicy(
            policy(&format!("{ALL_IN}[blackhole]\naccept_from = [\"127.0.0.1\"]\nmax_prefix_len_v4 = 32\n")),
            None,
        ));
        let (slot1, slot2) = (rib.peers[&1].slot, rib.peers[&2].slot);
        let bh = |a| with_community(a, crate::policy::sets::BLACKHOLE);
        // Not covered yet: refused; covered by the neighbor's /24: accepted.
        announce(&mut rib, 1, &["192.0.2.1/32"], bh(attrs(65001, 1)));
        assert!(entry(&rib, "192.0.2.1/32", slot1).is_rejected());
        let why = rib.explain(1, "192.0.2.1/32".parse().unwrap()).expect("explain");
        assert!(why.routes[0].decided_by.contains("require_covering"), "{:?}", why.routes[0]);
        announce(&mut rib, 1, &["192.0.2.0/24"], attrs(65001, 1));
        announce(&mut rib, 1, &["192.0.2.1/32"], bh(attrs(65001, 1)));
        let e = entry(&rib, "192.0.2.1/32", slot1);
        assert!(!e.is_rejected() && e.is_best());
        let post = rib.attrs.get(super::super::post_of(&rib.paths, &e)).expect("set");
        let d = crate::policy::RouteAttrs::decode(post.attrs, None);
        assert_eq!(
            d.communities,
            vec![crate::policy::sets::BLACKHOLE, crate::policy::sets::NO_EXPORT],
            "NO_EXPORT added"
        );
        assert_eq!(rib.rejected[usize::from(slot1)], [0, 1], "one blackhole counted");
        // Too short a prefix, and a neighbor not in accept_from: refused.
        announce(&mut rib, 1, &["192.0.2.0/25"], bh(attrs(65001, 1)));
        assert!(entry(&rib, "192.0.2.0/25", slot1).is_rejected());
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 1));
        announce(&mut rib, 2, &["192.0.2.2/32"], bh(attrs(65002, 1)));
        assert!(entry(&rib, "192.0.2.2/32", slot2).is_rejected());
        assert_eq!(rib.summary().peers[1].rejected, 1);
        // A reload allowing peer 2: evaluated again, accepted (its /24 covers it), counted.
        rib.set_policy(policy(&format!("{ALL_IN}[blackhole]\naccept_from = [\"127.0.0.1\", \"b\"]\n")));
        assert!(!entry(&rib, "192.0.2.2/32", slot2).is_rejected());
        assert_eq!(rib.rejected[usize::from(slot2)], [0, 1]);
        withdraw(&mut rib, 1, &["192.0.2.1/32"]);
        assert_eq!(rib.rejected[usize::from(slot1)], [1, 0], "the /25 stays refused, the /32 went");
        rib.handle(RibMsg::SessionDown { peer: 1 });
        rib.handle(RibMsg::SessionDown { peer: 2 });
        assert_eq!((rib.attrs.len(), rib.paths.len()), (0, 0));
    }
}
