//! Export of learned routes (issue 17): a neighbor whose `export` chain accepts Loc-RIB routes
//! gets them; without a chain it gets only focld's own `[[prefixes]]` and `[[sources]]`
//! (`adj_out.rs`, `sources.rs`), as a collector should.
//!
//! Fed by the RIB thread: `export_session_up` (a full walk of the Loc-RIB for the new
//! session), `export_touch` (each prefix an UPDATE changed), `export_rewalk` (bulk changes:
//! a session down, an EoRR sweep, a policy reload) and `exports_step` from the run loop, which
//! compares each prefix's best route, after the export chain and the session's rewrite, with
//! what the neighbor was sent and hands the differences to its peer thread as packed UPDATEs
//! (routes with the same attributes share UPDATEs), a bounded batch at a time and only while
//! the neighbor's inbox and socket have room, so a full table goes out at the speed the
//! neighbor reads without holding up the RIB or other sessions.
//!
//! Rules, per route and neighbor: the best path only (RFC 4271 §9.1.3); not back to the
//! neighbor it came from; routes from iBGP not to iBGP (§9.2); NO_ADVERTISE to nobody and
//! NO_EXPORT / NO_EXPORT_SUBCONFED not to eBGP (RFC 1997); a prefix of `[[prefixes]]` is
//! focld's own and never replaced. Towards eBGP our AS is prepended, NEXT_HOP is our address
//! unless the chain sets one (§5.1.3), LOCAL_PREF is dropped (§5.1.5) and MULTI_EXIT_DISC too
//! unless the chain sets it (§5.1.4; a route server keeps it); towards iBGP the route goes as it is (LOCAL_PREF 100
//! when it has none). `route_server = true` on the neighbor leaves AS_PATH and NEXT_HOP as
//! they are (RFC 7947 §2.2.2).
//!
//! Memory: per exporting session, a map of what was sent (prefix -> digest of the attributes
//! and next hop), only for neighbors with an export chain.

use super::aspa::AspaCtx;
use super::attrs::AttrSet;
use super::table::RouteEntry;
use super::{post_of, set_of, Rib};
use crate::control::proto::FamilyCounts;
use crate::msg::{PeerId, PeerMsg, SessionId};
use crate::policy::edit::{self, EditContext};
use crate::policy::sets::NO_EXPORT;
use crate::policy::{Direction, PeerFacts, Route, RouteAttrs, SetAction};
use crate::prefix::{Family, Prefix};
use crate::wire::attr::{code, split_attrs};
use crate::wire::reannounce::{rewrite_dump_attrs, ExportSession};
use crate::wire::update;
use log::warn;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// RFC 1997 NO_ADVERTISE and NO_EXPORT_SUBCONFED.
const NO_ADVERTISE: u32 = 0xFFFF_FF02;
const NO_EXPORT_SUBCONFED: u32 = 0xFFFF_FF03;
/// Prefixes looked at per exporting session in one step.
const PREFIXES_PER_STEP: usize = 4096;
/// As for `[[sources]]`: the next batch goes while fewer messages than this wait in the
/// neighbor's inbox and fewer bytes than `MAX_UNWRITTEN` wait for its socket.
const MAX_INBOX_BATCHES: usize = 4;
const MAX_UNWRITTEN: usize = 2 << 20;

/// One Established session with an export chain.
pub(super) struct Export {
    pub(super) peer: PeerId,
    session: SessionId,
    /// What the neighbor holds from us: prefix -> digest of (attributes, next hop).
    sent: HashMap<Prefix, u64>,
    /// Prefixes to look at again.
    dirty: BTreeSet<Prefix>,
    /// A walk of the whole Loc-RIB in progress: the last prefix done (`None`: from the start).
    walk: Option<Option<Prefix>>,
    /// UPDATEs built but not yet taken by the peer thread.
    pending: Option<(Vec<Vec<u8>>, FamilyCounts)>,
    /// The End-of-RIB markers of the session's initial update (RFC 4724 §2): sent once the
    /// first walk and every `[[sources]]` feed of the session are done, so they follow every
    /// route of the initial Adj-RIB-Out.
    closing: Vec<Vec<u8>>,
}

/// What one prefix should be on one session: nothing, or its attributes and next hop.
type Wanted = Option<(Vec<u8>, IpAddr)>;

fn digest(w: &(Vec<u8>, IpAddr)) -> u64 {
    let mut h = DefaultHasher::new();
    w.hash(&mut h);
    h.finish()
}

impl Rib {
    /// Start exporting to `peer` if its export chain is not empty: every Loc-RIB prefix is
    /// looked at.
    pub(super) fn export_session_up(&mut self, peer: PeerId) {
        self.exports.retain(|e| e.peer != peer);
        let Some(p) = self.peers.get(&peer) else { return };
        let Some(info) = &p.session else { return };
        if self.policy.chain(&p.address, Direction::Export).is_empty() {
            return;
        }
        self.exports.push(Export {
            peer,
            session: info.session,
            sent: HashMap::new(),
            dirty: BTreeSet::new(),
            walk: Some(None),
            pending: None,
            closing: Vec::new(),
        });
    }

    /// A route refresh of `family` (RFC 2918): what was sent of it is sent again, by a walk
    /// of the Loc-RIB that forgets it was sent (the closing EoRR waits for the walk).
    pub(super) fn export_refresh(&mut self, peer: PeerId, family: Family) {
        if let Some(e) = self.exports.iter_mut().find(|e| e.peer == peer) {
            e.sent.retain(|p, _| p.family() != family);
            e.walk = Some(None);
        }
    }

    /// The session's End-of-RIB markers wait for its export's first walk (and its sources'
    /// feeds, `export_close`).
    pub(super) fn export_takes_closing(&mut self, peer: PeerId, close: &mut Vec<Vec<u8>>) {
        if let Some(e) = self.exports.iter_mut().find(|e| e.peer == peer) {
            e.closing.append(close);
        }
    }

    /// The best route of `prefix` may have changed.
    pub(super) fn export_touch(&mut self, prefix: &Prefix) {
        for e in &mut self.exports {
            e.dirty.insert(*prefix);
        }
    }

    /// Many best routes may have changed: walk the whole Loc-RIB again for every session
    /// (what was sent and is gone is withdrawn at the end of the walk).
    pub(super) fn export_rewalk(&mut self) {
        for e in &mut self.exports {
            e.walk = Some(None);
        }
        // The BMP Loc-RIB feeds (RFC 9069) follow the same best paths.
        self.loc_feed_rewalk();
    }

    /// After a policy change (`changed`: the peers whose export chain changed, by content;
    /// `import_moved`: the import changed some route's standing, so best routes may have):
    /// sessions whose export chain appeared start, the Adj-RIB-Out of every session concerned
    /// is compared with what it should hold now, and exactly the prefixes that differ are sent
    /// again (withdrawn, announced, or announced with their new attributes), paced as any
    /// export. What changed, session by session, for `focl reload`.
    pub(super) fn export_policy_changed(
        &mut self,
        changed: &std::collections::HashSet<IpAddr>,
        import_moved: bool,
    ) -> Vec<crate::control::proto::PolicyChange> {
        let ids: Vec<PeerId> = self.peers.iter().filter(|(_, p)| p.session.is_some()).map(|(id, _)| *id).collect();
        let mut report = Vec::new();
        for id in ids {
            let Some(p) = self.peers.get(&id) else { continue };
            let has_chain = !self.policy.chain(&p.address, Direction::Export).is_empty();
            let concerned = import_moved || changed.contains(&p.address);
            let i = match self.exports.iter().position(|e| e.peer == id) {
                Some(i) if concerned => i,
                None if has_chain => {
                    self.export_session_up(id);
                    self.exports.len() - 1
                }
                _ => continue,
            };
            let started = std::time::Instant::now();
            let c = self.export_diff(i);
            let Some(p) = self.peers.get(&id) else { continue };
            log::info!(
                "neighbor {}: export changed: {} prefixes evaluated again; Adj-RIB-Out: {} announced, {} withdrawn, {} announced again with other attributes ({} ms)",
                p.label,
                c.evaluated,
                c.now_accepted,
                c.now_rejected,
                c.modified,
                started.elapsed().as_millis()
            );
            if changed.contains(&p.address) || c.now_accepted + c.now_rejected + c.modified > 0 {
                report.push(crate::control::proto::PolicyChange {
                    peer: p.label.clone(),
                    direction: "export".into(),
                    evaluated: c.evaluated,
                    now_accepted: c.now_accepted,
                    now_rejected: c.now_rejected,
                    modified: c.modified,
                });
            }
        }
        report.sort_by(|a, b| a.peer.cmp(&b.peer));
        report
    }

    /// Compare, prefix by prefix, what export `i`'s session should hold with what it was sent;
    /// the prefixes that differ are looked at again by the next steps (and sent). Counts: the
    /// prefixes looked at, and those to announce, withdraw, and announce with other attributes.
    fn export_diff(&mut self, i: usize) -> super::import::Reimport {
        let e = &self.exports[i];
        let mut c = super::import::Reimport::default();
        let mut differ = Vec::new();
        for (prefix, _) in self.table.walk(None) {
            c.evaluated += 1;
            let now = self.export_wanted(e.peer, &prefix).map(|w| digest(&w));
            match (e.sent.get(&prefix), now) {
                (None, None) => continue,
                (Some(a), Some(b)) if *a == b => continue,
                (None, Some(_)) => c.now_accepted += 1,
                (Some(_), None) => c.now_rejected += 1,
                (Some(_), Some(_)) => c.modified += 1,
            }
            differ.push(prefix);
        }
        // Sent and no longer in the table: withdrawn.
        for prefix in e.sent.keys().filter(|p| self.table.get(p).is_none()) {
            c.now_rejected += 1;
            differ.push(*prefix);
        }
        self.exports[i].dirty.extend(differ);
        c
    }

    /// Whether some export has work (the run loop then wakes up often).
    pub(super) fn exports_busy(&self) -> bool {
        self.exports
            .iter()
            .any(|e| e.pending.is_some() || e.walk.is_some() || !e.dirty.is_empty() || !e.closing.is_empty())
    }

    /// One bounded step of every export.
    pub(super) fn exports_step(&mut self) {
        let mut i = 0;
        while i < self.exports.len() {
            let keep = self.export_step(i);
            if keep {
                i += 1;
            } else {
                self.exports.remove(i);
            }
        }
    }

    /// False when the session is gone.
    fn export_step(&mut self, i: usize) -> bool {
        let peer = self.exports[i].peer;
        let Some(p) = self.peers.get(&peer) else { return false };
        let Some(info) = p.session.as_ref().filter(|s| s.session == self.exports[i].session) else { return false };
        if !p.link.has_room_for_bulk(MAX_INBOX_BATCHES, MAX_UNWRITTEN) {
            return true;
        }
        if let Some((msgs, sent)) = self.exports[i].pending.take() {
            if !p.link.send(PeerMsg::Send { session: info.session, msgs: msgs.clone(), sent }) {
                self.exports[i].pending = Some((msgs, sent));
            }
            return true;
        }
        // The prefixes of this step: dirty ones first, then the walk's next ones.
        let mut todo: Vec<Prefix> = Vec::new();
        while todo.len() < PREFIXES_PER_STEP {
            let Some(x) = self.exports[i].dirty.pop_first() else { break };
            todo.push(x);
        }
        let mut walk_done = false;
        if let Some(after) = self.exports[i].walk {
            let room = PREFIXES_PER_STEP.saturating_sub(todo.len()).max(1);
            let next: Vec<Prefix> = self.table.walk(after).take(room).map(|(p, _)| p).collect();
            walk_done = next.len() < room;
            self.exports[i].walk = if walk_done { None } else { next.last().copied().map(Some) };
            todo.extend(next);
        }
        if walk_done {
            // What was sent and is no longer in the table is looked at too (withdrawn).
            let gone: Vec<Prefix> =
                self.exports[i].sent.keys().filter(|p| self.table.get(p).is_none()).copied().collect();
            todo.extend(gone);
        }
        if todo.is_empty() {
            self.export_close(i);
            return true;
        }
        let wanted: Vec<(Prefix, Wanted)> = todo.iter().map(|x| (*x, self.export_wanted(peer, x))).collect();
        let e = &mut self.exports[i];
        let mut groups: HashMap<(Family, Vec<u8>, IpAddr), Vec<Prefix>> = HashMap::new();
        let mut withdraw: [Vec<Prefix>; 2] = [Vec::new(), Vec::new()];
        for (prefix, w) in wanted {
            match w {
                Some(w) => {
                    let d = digest(&w);
                    if e.sent.insert(prefix, d) != Some(d) {
                        groups.entry((prefix.family(), w.0, w.1)).or_default().push(prefix);
                    }
                }
                None => {
                    if e.sent.remove(&prefix).is_some() {
                        withdraw[prefix.family().index()].push(prefix);
                    }
                }
            }
        }
        let mut msgs = Vec::new();
        let mut sent = FamilyCounts::default();
        for family in Family::ALL {
            if !withdraw[family.index()].is_empty() {
                msgs.extend(update::build_withdrawals(family, &withdraw[family.index()], info.max_message_len));
            }
        }
        for ((family, attrs, nh), prefixes) in groups {
            let ll = if family == Family::Ipv6Unicast { info.link_local } else { None };
            match update::announce_with_attrs(family, &prefixes, &attrs, nh, ll, info.max_message_len) {
                Ok(m) => msgs.extend(m),
                Err(err) => warn!("neighbor {}: cannot export {} {family} routes: {err}", p.label, prefixes.len()),
            }
            match family {
                Family::Ipv4Unicast => sent.ipv4_unicast += prefixes.len() as u64,
                Family::Ipv6Unicast => sent.ipv6_unicast += prefixes.len() as u64,
            }
        }
        if !msgs.is_empty() && !p.link.send(PeerMsg::Send { session: info.session, msgs: msgs.clone(), sent }) {
            e.pending = Some((msgs, sent));
        }
        self.export_close(i);
        true
    }

    /// The learned routes `peer` holds from us (those its export has sent), as UPDATEs encoded
    /// for its session: the BMP Adj-RIB-Out dump (RFC 8671).
    pub(super) fn exported_updates(&self, peer: PeerId) -> Vec<(Family, Vec<u8>)> {
        let Some(e) = self.exports.iter().find(|e| e.peer == peer) else { return Vec::new() };
        let Some(info) = self.peers.get(&peer).and_then(|p| p.session.as_ref()) else { return Vec::new() };
        let mut groups: HashMap<(Family, Vec<u8>, IpAddr), Vec<Prefix>> = HashMap::new();
        let mut keys: Vec<&Prefix> = e.sent.keys().collect();
        keys.sort_unstable();
        for prefix in keys {
            if let Some((attrs, nh)) = self.export_wanted(peer, prefix) {
                groups.entry((prefix.family(), attrs, nh)).or_default().push(*prefix);
            }
        }
        let mut out = Vec::new();
        for ((family, attrs, nh), prefixes) in groups {
            let ll = if family == Family::Ipv6Unicast { info.link_local } else { None };
            if let Ok(m) = update::announce_with_attrs(family, &prefixes, &attrs, nh, ll, info.max_message_len) {
                out.extend(m.into_iter().map(|m| (family, m)));
            }
        }
        out
    }

    /// RFC 4724 §2: End-of-RIB once the initial update is out: the first walk done, its last
    /// UPDATEs taken and no `[[sources]]` feed of the session still announcing. (Prefixes
    /// changed meanwhile are not part of it: a steady churn does not hold End-of-RIB back.)
    fn export_close(&mut self, i: usize) {
        let e = &self.exports[i];
        if e.closing.is_empty() || e.walk.is_some() || e.pending.is_some() {
            return;
        }
        if self.feeds.iter().any(|f| f.peer == e.peer) {
            return;
        }
        let Some(p) = self.peers.get(&e.peer) else { return };
        let Some(info) = p.session.as_ref().filter(|s| s.session == e.session) else { return };
        let msgs = std::mem::take(&mut self.exports[i].closing);
        if !p.link.send(PeerMsg::Send { session: info.session, msgs: msgs.clone(), sent: FamilyCounts::default() }) {
            self.exports[i].closing = msgs;
        }
    }

    /// The route `peer` should hold for `prefix`, after its export chain and the session's
    /// rewrite; `None` for none.
    fn export_wanted(&self, peer: PeerId, prefix: &Prefix) -> Wanted {
        let p = self.peers.get(&peer)?;
        let info = p.session.as_ref()?;
        let own = self.prefixes.iter().any(|s| s.network == *prefix)
            || self.blackholes.iter().any(|(b, to)| b == prefix && to.is_none_or(|t| t == peer));
        if !info.families.contains(&prefix.family()) || own {
            return None; // a static or blackhole route of ours goes instead
        }
        let best: &RouteEntry = self.table.get(prefix)?.iter().find(|e| e.is_best())?;
        if best.peer == p.slot {
            return None; // not back to the neighbor it came from
        }
        let from = self.slots.get(usize::from(best.peer)).copied().flatten()?;
        let ibgp = info.is_ibgp();
        if from.ibgp && ibgp {
            return None; // RFC 4271 §9.2: iBGP routes are not passed to iBGP
        }
        let set: AttrSet = self.attrs.get(post_of(&self.paths, best))?;
        let decoded = RouteAttrs::decode(set.attrs, set.mp_next_hop);
        let c = &decoded.communities;
        if c.contains(&NO_ADVERTISE) || (!ibgp && (c.contains(&NO_EXPORT) || c.contains(&NO_EXPORT_SUBCONFED))) {
            return None; // RFC 1997
        }
        let chain = self.policy.chain(&p.address, Direction::Export);
        let facts = PeerFacts { address: p.address, asn: info.remote_as };
        // The route's ASPA verdict as received from the neighbor it came from, when the
        // chain reads it.
        let aspa = if self.policy.reads_aspa(chain) {
            let source = self.peers.get(&from.peer);
            let pre = self.attrs.get(set_of(&self.paths, best));
            source.and_then(AspaCtx::of).zip(pre).and_then(|(c, pre)| c.state(&self.vrps.aspas, &pre))
        } else {
            None
        };
        let route = Route {
            prefix: *prefix,
            attrs: &decoded,
            rov: best.rov(),
            aspa,
            otc_leak: best.is_otc_leak(),
            peer: facts,
        };
        let v = self.policy.evaluate(chain, Direction::Export, &route, None);
        if !v.accept {
            return None;
        }
        let cx = EditContext {
            local_as: info.local_as,
            local_addr: Some(info.local_addr),
            discard_v4: edit::DEFAULT_DISCARD_V4,
            discard_v6: edit::DEFAULT_DISCARD_V6,
        };
        let actions: Vec<&SetAction> = self.policy.set_actions(&v).collect();
        let (attrs, mp) = edit::apply(actions.iter().copied(), set.attrs, set.mp_next_hop, &cx)
            .unwrap_or_else(|| (set.attrs.to_vec(), set.mp_next_hop.map(<[u8]>::to_vec)));
        let nh_set = actions.iter().any(|a| matches!(a, SetAction::NextHop(_)));
        let med_set = actions.iter().any(|a| matches!(a, SetAction::Med(_) | SetAction::MedAdd(_)));
        let route_server = self.policy.peers.get(&p.address).is_some_and(|pp| pp.route_server);
        // The route's own next hop, after the chain.
        let own_nh: Option<IpAddr> = match prefix.family() {
            Family::Ipv4Unicast => RouteAttrs::decode(&attrs, None).next_hop,
            Family::Ipv6Unicast => {
                mp.as_deref().and_then(|b| b.get(..16)).and_then(|b| <[u8; 16]>::try_from(b).ok()).map(IpAddr::from)
            }
        };
        let keep_nh = nh_set || ibgp || route_server;
        let next_hop = if keep_nh { own_nh? } else { info.local_addr };
        if Family::of_addr(&next_hop) != prefix.family() {
            return None; // no next hop of the route's family on this session
        }
        // RFC 4271 §5.1.4: a MED received from a neighboring AS is not passed to another.
        // A route server passes it on as it came (RFC 7947 §2.2).
        let attrs = if !ibgp && !med_set && !route_server { without(&attrs, code::MULTI_EXIT_DISC) } else { attrs };
        let es = ExportSession {
            local_as: info.local_as,
            // A route server passes AS_PATH on as it is (RFC 7947 §2.2.2).
            ibgp: ibgp || route_server,
            four_octet_as: info.four_octet_as,
            next_hop,
            otc: crate::wire::role::otc_egress(info.role, info.local_as),
        };
        let mut out = rewrite_dump_attrs(&attrs, prefix.family() == Family::Ipv4Unicast, &es).ok()?;
        if route_server && !ibgp {
            out = without(&out, code::LOCAL_PREF); // §5.1.5: not sent to eBGP
        }
        Some((out, next_hop))
    }

    /// `focl rib out`: the learned routes exported to `peer`, as sent (at most `limit`).
    pub(super) fn exported_routes(&self, peer: PeerId, limit: usize) -> Vec<crate::control::proto::Route> {
        let mut prefixes: Vec<Prefix> =
            self.exports.iter().filter(|e| e.peer == peer).flat_map(|e| e.sent.keys().copied()).collect();
        prefixes.sort_unstable();
        prefixes.truncate(limit);
        prefixes
            .into_iter()
            .filter_map(|x| {
                let (attrs, nh) = self.export_wanted(peer, &x)?;
                let v = update::decode_attrs_for_display(&attrs, None, true);
                Some(crate::control::proto::Route {
                    prefix: x.to_string(),
                    next_hop: Some(nh.to_string()),
                    as_path: v.as_path,
                    origin: v.origin,
                    med: v.med,
                    local_pref: v.local_pref,
                    communities: v.communities,
                    large_communities: v.large_communities,
                    age_secs: 0,
                    best: None,
                    peer: None,
                    otc: crate::wire::role::otc_of(&attrs),
                    otc_leak: false,
                    rpki: None,
                    aspa: None,
                    stale: false,
                    llgr_stale: false,
                    path_id: None,
                    rejected: false,
                })
            })
            .collect()
    }
}

/// `attrs` without the attribute of type `c`.
fn without(attrs: &[u8], c: u8) -> Vec<u8> {
    let (list, _) = split_attrs(attrs);
    let mut out = Vec::with_capacity(attrs.len());
    for a in list.iter().filter(|a| a.type_code != c) {
        out.extend_from_slice(a.whole);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{announce, attrs, withdraw};
    use super::super::{Rib, RibOptions};
    use crate::msg::{PeerLink, PeerMsg, RibMsg, SessionInfo};
    use crate::prefix::{Family, Prefix};
    use crate::wire::update::{self, Session};
    use crossbeam_channel::Receiver;
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::Path;

    /// The policies of a configuration with peer 127.0.0.3 (keys `extra`) and `body`.
    fn engine(extra: &str, body: &str) -> std::sync::Arc<crate::policy::Engine> {
        let text = format!(
            "[global]\nasn = 65000\nrouter_id = \"192.0.2.1\"\n[[peers]]\naddress = \"127.0.0.3\"\nremote_as = 65003\n{extra}\n{body}"
        );
        crate::config::parse(&text, Path::new("t.toml")).expect("valid").policies
    }

    /// Peers 1..=3 at 127.0.0.N, AS 65000 + N, eBGP from our AS 65000 (as `rib_with_peers`),
    /// with `extra` peer keys for peer 3 and the policies of `body`; the inboxes of the peers.
    fn rib(extra: &str, body: &str) -> (Rib, Vec<Receiver<PeerMsg>>) {
        let engine = engine(extra, body);
        let mut rib = Rib::new(
            Vec::new(),
            RibOptions { router_id: Ipv4Addr::new(192, 0, 2, 1), mrt: None, rib_interval_secs: 0, sources: None },
        );
        rib.handle(RibMsg::SetPolicy(engine, None));
        let mut inboxes = Vec::new();
        for i in 1..=3u8 {
            let poll = mio::Poll::new().expect("poll");
            let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
            let (tx, rx) = crossbeam_channel::bounded(64);
            let address = IpAddr::from([127, 0, 0, i]);
            let link = PeerLink::new(tx, crossbeam_channel::bounded(1).0, waker);
            rib.handle(RibMsg::AddPeer {
                peer: u32::from(i),
                label: format!("p{i}"),
                address,
                name: None,
                remote_as: 65000 + u32::from(i),
                link,
                max_prefixes: None,
            });
            rib.handle(RibMsg::SessionUp { peer: u32::from(i), info: session(i, 1) });
            inboxes.push(rx);
        }
        (rib, inboxes)
    }

    /// Session `id` of peer `i` (eBGP, both families, 4-octet AS numbers).
    fn session(i: u8, id: u64) -> SessionInfo {
        SessionInfo { session: id, enhanced_route_refresh: false, ..super::super::tests::session_info(i) }
    }

    /// What the RIB sent to a peer since the last call, after letting the exports run:
    /// (announced prefix, AS path, next hop, MED) and withdrawn prefixes.
    #[allow(clippy::type_complexity)]
    fn sent(
        rib: &mut Rib,
        rx: &Receiver<PeerMsg>,
    ) -> (Vec<(Prefix, String, Option<String>, Option<u32>)>, Vec<Prefix>) {
        for _ in 0..10 {
            rib.exports_step();
        }
        let (mut ann, mut wd) = (Vec::new(), Vec::new());
        while let Ok(m) = rx.try_recv() {
            let PeerMsg::Send { msgs, .. } = m else { continue };
            for raw in msgs {
                let Ok(u) = update::parse_update(&raw[19..], Session { four_octet_as: true, ibgp: false }) else {
                    continue;
                };
                let v = update::decode_attrs_for_display(&u.attrs, u.mp_next_hop.as_deref(), true);
                for p in &u.announced {
                    ann.push((*p, v.as_path.clone(), v.next_hop.clone(), v.med));
                }
                wd.extend(u.withdrawn.iter().copied());
            }
        }
        (ann, wd)
    }

    const ALL: &str = "[[policy.out.term]]\naction = \"accept\"\n";

    /// `attrs` with MULTI_EXIT_DISC 50 and, if given, one community.
    fn with(mut a: Vec<u8>, community: Option<u32>) -> Vec<u8> {
        a.extend_from_slice(&[0x80, 4, 4, 0, 0, 0, 50]);
        if let Some(c) = community {
            a.extend_from_slice(&[0xc0, 8, 4]);
            a.extend_from_slice(&c.to_be_bytes());
        }
        a
    }

    #[test]
    fn a_learned_route_goes_to_a_neighbor_whose_export_chain_accepts_it_and_withdrawals_follow() {
        let (mut rib, rx) = rib("export = [\"out\"]", ALL);
        let p: Prefix = "192.0.2.0/24".parse().unwrap();
        sent(&mut rib, &rx[2]);
        announce(&mut rib, 1, &["192.0.2.0/24"], with(attrs(65001, 1), None));
        let (ann, _) = sent(&mut rib, &rx[2]);
        assert_eq!(
            ann,
            vec![(p, "65000 65001".to_string(), Some("127.0.0.100".to_string()), None)],
            "eBGP: our AS prepended, next hop self, no MED"
        );
        assert!(sent(&mut rib, &rx[1]).0.is_empty(), "peer 2 has no export chain: learned routes never go to it");
        // A better path from peer 2 replaces it; the same again sends nothing.
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 0));
        announce(&mut rib, 2, &["192.0.2.0/24"], attrs(65002, 0));
        let (ann, _) = sent(&mut rib, &rx[2]);
        assert_eq!(ann.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(), ["65000"]);
        // Peer 3's own route is best now: it is withdrawn from peer 3, not sent back.
        announce(&mut rib, 3, &["192.0.2.0/24"], attrs(65003, 0));
        withdraw(&mut rib, 2, &["192.0.2.0/24"]);
        let (ann, wd) = sent(&mut rib, &rx[2]);
        assert!(ann.is_empty() && wd == vec![p], "{ann:?} {wd:?}");
        // Peer 3 withdraws; peer 1's path is best again and goes out; session down of 1: gone.
        withdraw(&mut rib, 3, &["192.0.2.0/24"]);
        assert_eq!(sent(&mut rib, &rx[2]).0.len(), 1);
        rib.handle(RibMsg::SessionDown { peer: 1 });
        assert_eq!(sent(&mut rib, &rx[2]).1, vec![p]);
    }

    #[test]
    fn no_export_routes_stay_in_the_as_and_the_export_chain_decides() {
        let body = "[sets.prefix]\nmine = [\"198.51.100.0/24\"]\n[[policy.out.term]]\nmatch = { prefix_in = \"mine\" }\naction = \"accept\"\n";
        let (mut rib, rx) = rib("export = [\"out\"]", body);
        announce(&mut rib, 1, &["198.51.100.0/24"], with(attrs(65001, 1), Some(crate::policy::sets::NO_EXPORT)));
        announce(&mut rib, 1, &["203.0.113.0/24"], attrs(65001, 1));
        assert!(sent(&mut rib, &rx[2]).0.is_empty(), "NO_EXPORT: not to eBGP; the other: the export default rejects");
        announce(&mut rib, 1, &["198.51.100.0/24"], attrs(65001, 1));
        assert_eq!(sent(&mut rib, &rx[2]).0.len(), 1);
    }

    #[test]
    fn end_of_rib_follows_every_static_and_exported_route_of_the_initial_update() {
        let (mut rib, rx) = rib("export = [\"out\"]", ALL);
        let own: Prefix = "198.51.100.0/24".parse().unwrap();
        rib.handle(RibMsg::SetPrefixes(vec![crate::config::PrefixConfig {
            network: own,
            next_hop: None,
            blackhole: false,
        }]));
        // More learned routes than one export step takes.
        let learned: Vec<String> = (0..5000).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
        let refs: Vec<&str> = learned.iter().map(String::as_str).collect();
        announce(&mut rib, 1, &refs, attrs(65001, 1));
        rib.handle(RibMsg::SessionDown { peer: 3 });
        while rx[2].try_recv().is_ok() {}
        rib.handle(RibMsg::SessionUp { peer: 3, info: session(3, 2) });
        // The UPDATE stream of the new session, in order: announced prefixes and End-of-RIBs.
        let (mut announced, mut eor) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            while let Ok(m) = rx[2].try_recv() {
                let PeerMsg::Send { msgs, .. } = m else { continue };
                for raw in msgs {
                    let u = update::parse_update(&raw[19..], Session { four_octet_as: true, ibgp: false })
                        .expect("an UPDATE");
                    if let Some(f) = u.end_of_rib {
                        eor.push((f, announced.len()));
                    }
                    announced.extend(u.announced.iter().copied());
                }
            }
            rib.exports_step();
        }
        assert_eq!(announced.len(), 5001, "the static prefix and every learned route");
        assert_eq!(announced[0], own, "the static prefix first");
        // RFC 4724 §2: End-of-RIB of each family after the last route of the initial update.
        assert_eq!(eor, vec![(Family::Ipv4Unicast, 5001), (Family::Ipv6Unicast, 5001)]);
    }

    #[test]
    fn an_export_chain_reading_aspa_sees_the_verdict_of_the_route_as_its_neighbor_sent_it() {
        use super::super::import::tests::{aspa_table, path_attrs};
        let body = "[[policy.out.term]]\nmatch = { aspa = \"invalid\" }\naction = \"reject\"\n[[policy.out.term]]\naction = \"accept\"\n";
        let (mut rib, rx) = rib("export = [\"out\"]", body);
        // The leak of rib::import's ASPA test, from peer 1 (AS 65001), and a clean route.
        let records: [(u32, &[u32]); 5] =
            [(64500, &[64501]), (64503, &[64502, 65001]), (64501, &[64600]), (64502, &[64601]), (65001, &[64700])];
        rib.revalidate(aspa_table(&records), Vec::new());
        announce(&mut rib, 1, &["192.0.2.0/24"], path_attrs(&[65001, 64503, 64502, 64501, 64500]));
        announce(&mut rib, 1, &["198.51.100.0/24"], path_attrs(&[65001, 64500]));
        let announced: Vec<Prefix> = sent(&mut rib, &rx[2]).0.iter().map(|a| a.0).collect();
        assert_eq!(announced, vec!["198.51.100.0/24".parse::<Prefix>().unwrap()], "the invalid route is not exported");
    }

    #[test]
    fn a_route_refresh_sends_the_exported_routes_again_before_the_eorr() {
        let (mut rib, rx) = rib("export = [\"out\"]", ALL);
        let learned: Vec<String> = (0..3000).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
        let refs: Vec<&str> = learned.iter().map(String::as_str).collect();
        announce(&mut rib, 1, &refs, attrs(65001, 1));
        rib.handle(RibMsg::SessionDown { peer: 3 });
        rib.handle(RibMsg::SessionUp { peer: 3, info: SessionInfo { enhanced_route_refresh: true, ..session(3, 2) } });
        assert_eq!(sent(&mut rib, &rx[2]).0.len(), 3000, "the initial update");
        // RFC 7313 §4: BoRR, the family's whole Adj-RIB-Out, EoRR; a neighbor sweeps what did
        // not come again in between.
        rib.handle(RibMsg::Refresh { peer: 3, family: Family::Ipv4Unicast });
        let (mut announced, mut marks) = (0usize, Vec::new());
        for _ in 0..20 {
            while let Ok(m) = rx[2].try_recv() {
                let PeerMsg::Send { msgs, .. } = m else { continue };
                for raw in msgs {
                    if raw[18] == 5 {
                        marks.push((raw[21], announced)); // ROUTE-REFRESH: AFI, subtype, SAFI
                        continue;
                    }
                    let u = update::parse_update(&raw[19..], Session { four_octet_as: true, ibgp: false })
                        .expect("an UPDATE");
                    announced += u.announced.len();
                }
            }
            rib.exports_step();
        }
        assert_eq!(announced, 3000, "every exported route again");
        assert_eq!(marks, vec![(1, 0), (2, 3000)], "BoRR first, EoRR after the last route");
    }

    #[test]
    fn a_reload_of_a_changed_export_policy_sends_and_reports_only_the_routes_whose_adj_rib_out_changed() {
        let v1 = "[sets.prefix]\nout = [\"192.0.2.0/24\", \"203.0.113.0/24\"]\n[[policy.out.term]]\nmatch = { prefix_in = \"out\" }\naction = \"accept\"\n";
        let (mut rib, rx) = rib("export = [\"out\"]", v1);
        announce(&mut rib, 1, &["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"], attrs(65001, 1));
        assert_eq!(sent(&mut rib, &rx[2]).0.len(), 2);
        // 192.0.2.0/24 leaves the chain, 198.51.100.0/24 joins it, 203.0.113.0/24 gets a MED.
        let v2 = "[sets.prefix]\nnew = [\"198.51.100.0/24\"]\nmed = [\"203.0.113.0/24\"]\n[[policy.out.term]]\nmatch = { prefix_in = \"new\" }\naction = \"accept\"\n[[policy.out.term]]\nmatch = { prefix_in = \"med\" }\nset = { med = 7 }\naction = \"accept\"\n";
        let (tx, reply) = crossbeam_channel::bounded(1);
        rib.handle(RibMsg::SetPolicy(engine("export = [\"out\"]", v2), Some(tx)));
        let report = reply.recv().expect("reply").expect("report");
        let c: Vec<_> = report
            .iter()
            .map(|c| (c.peer.as_str(), c.direction.as_str(), c.now_accepted, c.now_rejected, c.modified))
            .collect();
        assert_eq!(c, vec![("p3", "export", 1, 1, 1)], "one announced, one withdrawn, one with other attributes");
        let (mut ann, wd) = sent(&mut rib, &rx[2]);
        ann.sort();
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        assert_eq!(wd, vec![p("192.0.2.0/24")]);
        assert_eq!(
            ann.iter().map(|a| (a.0, a.3)).collect::<Vec<_>>(),
            vec![(p("198.51.100.0/24"), None), (p("203.0.113.0/24"), Some(7))],
            "exactly the changed routes go again"
        );
        // The same policy again: nothing changes, nothing is sent or reported.
        let (tx, reply) = crossbeam_channel::bounded(1);
        rib.handle(RibMsg::SetPolicy(engine("export = [\"out\"]", v2), Some(tx)));
        assert!(reply.recv().expect("reply").expect("report").is_empty());
        assert_eq!(sent(&mut rib, &rx[2]), (vec![], vec![]));
    }

    #[test]
    fn a_route_server_passes_as_path_next_hop_and_med_on_unchanged() {
        let (mut rib, rx) = rib("export = [\"out\"]\nroute_server = true", ALL);
        announce(&mut rib, 1, &["192.0.2.0/24"], with(attrs(65001, 2), None));
        let (ann, _) = sent(&mut rib, &rx[2]);
        assert_eq!(ann.len(), 1);
        assert_eq!(
            (ann[0].1.as_str(), ann[0].2.as_deref(), ann[0].3),
            ("65001 65001", Some("192.0.2.2"), Some(50)),
            "RFC 7947: AS_PATH, NEXT_HOP and MED as received"
        );
    }
}
