//! Answers to the control thread's questions (`focl rib ...`): summaries, and route queries
//! (`rib in`, `rib lookup`) walked over the prefix-major table with their filters.
//!
//! A route query is a cursor over the table: a list of spans (every prefix, a prefix and what
//! it covers, one prefix) and the last prefix done. Streamed (`RibMsg::Routes`), it is advanced
//! one chunk per turn of the RIB loop, and only when its channel has room, so a slow reader
//! pauses its own answer and never the RIB; a reader that goes away cancels it. Asked in one
//! piece (`RibQuery::Routes`), it runs to the end at once and is refused past
//! `MAX_ROUTES_SHOWN` routes.

use super::attrs::AttrSet;
use super::table::{PeerSlot, RouteEntry};
use super::{path_of, post_of, set_of, unix_now, PeerState, Rib};
use crate::control::proto::{
    self as ctl, Aggregator, AsPathSegment, AspaVerdict, CtlError, FamilyCounts, PeerName, RawAttribute,
    RibPeerSummary, RibSummary, Route as CtlRoute, RouteDetail, RouteList, RovCounts, StreamItem,
};
use crate::msg::AspaState;
use crate::msg::{PeerId, RibQuery, RouteQuery, RouteTarget};
use crate::prefix::{Family, Prefix};
use crate::wire::{display, role, update};
use crossbeam_channel::{Sender, TrySendError};
use serde_json::{json, Value};

/// Most routes a query asked in one piece answers; more are refused with a hint (a stream,
/// which focl always asks for, has no limit).
pub const MAX_ROUTES_SHOWN: usize = 50_000;
/// Routes per streamed chunk.
const CHUNK_ROUTES: usize = 512;
/// Prefixes looked at per chunk, so a filter that matches little still yields the RIB often.
const CHUNK_PREFIXES: usize = 4_096;

/// Which prefixes a query walks, in order.
#[derive(Clone, Copy, Debug)]
enum Span {
    All,
    Within(Prefix),
    Exact(Prefix),
}

/// A route query in progress.
pub(super) struct RouteCursor {
    q: RouteQuery,
    spans: Vec<Span>,
    span: usize,
    /// The last prefix done in the current span.
    after: Option<Prefix>,
    count: u64,
    /// What the end line says besides the count.
    head: serde_json::Map<String, Value>,
    /// The slot of `q.peer` when the query began.
    slot: Option<PeerSlot>,
    /// `q.peer` was removed (a reload) before the walk was done.
    peer_gone: bool,
}

/// A streamed query: its cursor and where the chunks go.
pub(super) struct RouteStream {
    cur: RouteCursor,
    tx: Sender<StreamItem>,
    /// The walk is finished.
    done: bool,
    /// An item that found the channel full, sent first next turn.
    pending: Option<StreamItem>,
}

fn to_json<T: serde::Serialize>(v: T) -> Result<Value, CtlError> {
    serde_json::to_value(v).map_err(|e| CtlError::new(ctl::code::INTERNAL, format!("cannot encode reply: {e}")))
}

impl Rib {
    pub(super) fn query(&self, q: RibQuery) -> Result<Value, CtlError> {
        match q {
            RibQuery::Summary => to_json(self.summary()),
            RibQuery::Sources(name) => to_json(self.source_status(name.as_deref())?),
            RibQuery::Routes(q) => {
                // Count first, without decoding for display (the costly part), and refuse
                // before doing it: decoding a full table at once would hold the RIB (and
                // every session's UPDATEs) for seconds; a stream does it in chunks.
                let mut counting = self.start_routes(RouteQuery { count_only: true, ..q.clone() })?;
                let limit = if q.count_only { u64::MAX } else { MAX_ROUTES_SHOWN as u64 };
                while counting.count <= limit && !self.step_routes(&mut counting).1 {}
                if q.count_only {
                    return Ok(Value::Object(counting.end()));
                }
                if counting.count > limit {
                    let hint = match q.peer.and_then(|id| self.peers.get(&id)) {
                        Some(p) => format!("give a prefix (focl rib in {} PREFIX)", p.address),
                        None => "narrow the question".into(),
                    };
                    return Err(CtlError::new(
                        ctl::code::BAD_ARGUMENT,
                        format!(
                            "more than {MAX_ROUTES_SHOWN} routes match; {hint}, ask for a stream (\"stream\": true, \
                             as focl does), or read the whole table from a RIB snapshot (focl archive snapshot)"
                        ),
                    ));
                }
                let mut cur = self.start_routes(q)?;
                let mut routes = Vec::new();
                loop {
                    let (data, done) = self.step_routes(&mut cur);
                    routes.extend(data);
                    if done {
                        break;
                    }
                }
                let mut end = cur.end();
                end.insert("routes".into(), Value::Array(routes));
                Ok(Value::Object(end))
            }
            RibQuery::Out { peer } => {
                let p = self.peer(peer)?;
                let age = p.adj_out_since.elapsed().as_secs();
                let routes: Vec<CtlRoute> = p
                    .adj_out
                    .iter()
                    .map(|e| CtlRoute {
                        prefix: e.prefix.to_string(),
                        next_hop: Some(e.route.next_hop.to_string()),
                        as_path: e.route.as_path.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" "),
                        origin: Some("igp".into()),
                        med: None,
                        local_pref: e.route.local_pref,
                        communities: vec![],
                        large_communities: vec![],
                        age_secs: age,
                        best: None,
                        peer: None,
                        otc: e.route.otc,
                        otc_leak: false,
                        rpki: None,
                        aspa: None,
                        stale: false,
                        path_id: None,
                        llgr_stale: false,
                        rejected: false,
                    })
                    .collect();
                // Learned routes its export chain accepted (issue 17), after the static ones.
                let mut routes = routes;
                routes.extend(self.exported_routes(peer, super::MAX_ROUTES_SHOWN.saturating_sub(routes.len())));
                let count = routes.len() as u64;
                to_json(RouteList { peer: p.label.clone(), routes, count })
            }
            RibQuery::Counts { peer } => {
                let p = self.peer(peer)?;
                let mut sent = FamilyCounts::default();
                for e in &p.adj_out {
                    match e.prefix.family() {
                        Family::Ipv4Unicast => sent.ipv4_unicast += 1,
                        Family::Ipv6Unicast => sent.ipv6_unicast += 1,
                    }
                }
                to_json((p.counts(), sent))
            }
            RibQuery::ReceivedCounts => {
                let counts: Vec<(PeerId, FamilyCounts)> = self.peers.iter().map(|(id, p)| (*id, p.counts())).collect();
                to_json(counts)
            }
            RibQuery::Graceful { peer } => {
                let p = self.peer(peer)?;
                let stale = FamilyCounts { ipv4_unicast: p.stale[0], ipv6_unicast: p.stale[1] };
                to_json((stale, super::graceful::describe(p, std::time::Instant::now())))
            }
            RibQuery::PolicyExplain { peer, prefix } => to_json(self.explain(peer, prefix)?),
        }
    }

    /// Start a streamed route query; an error (no such peer) ends the stream at once.
    pub(super) fn start_stream(&mut self, q: RouteQuery, tx: Sender<StreamItem>) {
        match self.start_routes(q) {
            Ok(cur) => self.streams.push(RouteStream { cur, tx, done: false, pending: None }),
            Err(e) => {
                let _ = tx.try_send(StreamItem::End(Err(e)));
            }
        }
    }

    /// Advance every stream by a chunk where its reader has made room. Never blocks: a chunk
    /// that finds the channel full waits for the next turn; a reader that went away (seen by
    /// `try_send` even on a full channel) ends the stream.
    pub(super) fn streams_step(&mut self) {
        let mut streams = std::mem::take(&mut self.streams);
        streams.retain_mut(|s| {
            let item = match s.pending.take() {
                Some(item) => item,
                None if s.done => return false,
                None => {
                    let (data, done) = self.step_routes(&mut s.cur);
                    s.done = done;
                    if done && data.is_empty() {
                        s.cur.end_item()
                    } else if data.is_empty() {
                        return true; // nothing matched in this chunk; go on next turn
                    } else {
                        StreamItem::Data(data)
                    }
                }
            };
            let was_end = matches!(item, StreamItem::End(_));
            match s.tx.try_send(item) {
                Ok(()) if was_end => false,
                Ok(()) if s.done => {
                    // The end follows the last chunk, at once if there is room (a short answer
                    // then costs one turn, not two).
                    match s.tx.try_send(s.cur.end_item()) {
                        Ok(()) | Err(TrySendError::Disconnected(_)) => false,
                        Err(TrySendError::Full(end)) => {
                            s.pending = Some(end);
                            true
                        }
                    }
                }
                Ok(()) => true,
                Err(TrySendError::Full(item)) => {
                    s.pending = Some(item);
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
        streams.append(&mut self.streams);
        self.streams = streams;
    }

    fn start_routes(&self, q: RouteQuery) -> Result<RouteCursor, CtlError> {
        let mut head = serde_json::Map::new();
        let slot = match q.peer {
            Some(id) => {
                let p = self.peer(id)?;
                head.insert("peer".into(), json!(p.label));
                Some(p.slot)
            }
            None => None,
        };
        let spans = match q.target {
            RouteTarget::All => vec![Span::All],
            RouteTarget::Within(p) => vec![Span::Within(p)],
            RouteTarget::Longest { of, more, less } => {
                // A rib in PEER ADDRESS looks for the longest prefix of that peer.
                let m = self
                    .table
                    .longest_match_where(&of, |routes| slot.is_none_or(|s| routes.iter().any(|r| r.peer == s)));
                head.insert("target".into(), json!(of.to_string()));
                head.insert("matched".into(), json!(m.map(|p| p.to_string())));
                match m {
                    None => vec![],
                    Some(m) => {
                        let mut spans = Vec::new();
                        if less {
                            spans.extend(self.table.covering(&m).into_iter().map(|(p, _)| Span::Exact(p)));
                        }
                        spans.push(if more { Span::Within(m) } else { Span::Exact(m) });
                        spans
                    }
                }
            }
        };
        Ok(RouteCursor { q, spans, span: 0, after: None, count: 0, head, slot, peer_gone: false })
    }

    /// The next chunk of a query's routes, and whether it is finished.
    fn step_routes(&self, cur: &mut RouteCursor) -> (Vec<Value>, bool) {
        let now = unix_now();
        let slot = cur.slot;
        // A streamed rib in whose peer was removed meanwhile ends (with an error), rather than
        // go on with whichever peer gets the slot next.
        if let (Some(id), Some(s)) = (cur.q.peer, slot) {
            if self.slots.get(usize::from(s)).copied().flatten().is_none_or(|i| i.peer != id) {
                cur.peer_gone = true;
                return (Vec::new(), true);
            }
        }
        let mut out = Vec::new();
        let mut scanned = 0;
        while let Some(span) = cur.spans.get(cur.span).copied() {
            let iter: Box<dyn Iterator<Item = (Prefix, &[RouteEntry])>> = match span {
                Span::All => self.table.walk(cur.after),
                Span::Within(p) => self.table.within(&p, cur.after),
                Span::Exact(p) if cur.after.is_none() => Box::new(self.table.get(&p).map(|r| (p, r)).into_iter()),
                Span::Exact(_) => Box::new(std::iter::empty()),
            };
            let mut exhausted = true;
            for (prefix, routes) in iter {
                cur.after = Some(prefix);
                scanned += 1;
                // Best first, then in peer-slot order.
                let mut order: Vec<&RouteEntry> = routes.iter().filter(|r| slot.is_none_or(|s| r.peer == s)).collect();
                order.sort_by_key(|r| (!r.is_best(), r.peer));
                for r in order {
                    let Some(v) = self.route_value(&prefix, r, cur, now) else { continue };
                    cur.count += 1;
                    if !cur.q.count_only {
                        out.push(v);
                    }
                }
                if out.len() >= CHUNK_ROUTES || scanned >= CHUNK_PREFIXES {
                    exhausted = false;
                    break;
                }
            }
            if !exhausted {
                return (out, false);
            }
            cur.span += 1;
            cur.after = None;
        }
        (out, true)
    }

    /// The route as shown, if it passes the query's filters (`Null` when only counting).
    fn route_value(&self, prefix: &Prefix, r: &RouteEntry, cur: &RouteCursor, now: u32) -> Option<Value> {
        let f = &cur.q.filter;
        if (f.best && !r.is_best()) || (f.rejected && !r.is_rejected()) {
            return None;
        }
        if f.rpki.is_some_and(|want| !self.vrps.in_use() || r.rov() != want) {
            return None;
        }
        let peer = self.slots.get(usize::from(r.peer)).copied().flatten().and_then(|s| self.peers.get(&s.peer))?;
        if f.peer_as.is_some_and(|a| a != peer.remote_as) {
            return None;
        }
        // `rib in` shows the Adj-RIB-In as received; `rib lookup` the attributes after import
        // policy, which best path used.
        let id = if cur.q.peer.is_some() { set_of(&self.paths, r) } else { post_of(&self.paths, r) };
        let set = self.attrs.get(id)?;
        // Only when filtered on or shown: a count skips the AS_PATH walk.
        let aspa = (f.aspa.is_some() || !cur.q.count_only).then(|| self.aspa_verdict(&set, peer)).flatten();
        if f.aspa.is_some_and(|want| aspa.as_ref().is_none_or(|(state, _)| *state != want)) {
            return None;
        }
        let needs_decode =
            f.origin.is_some() || f.path_as.is_some() || f.community.is_some() || f.large_community.is_some();
        let detail =
            (needs_decode || cur.q.detail).then(|| display::decode(set.attrs, set.mp_next_hop, set.four_octet));
        if let Some(d) = &detail {
            let pass = f.origin.is_none_or(|a| d.origin_as() == Some(a))
                && f.path_as.is_none_or(|a| d.path_contains(a))
                && f.community.is_none_or(|c| d.communities.contains(&c))
                && f.large_community.is_none_or(|c| d.large_communities.contains(&c));
            if !pass {
                return None;
            }
        }
        if cur.q.count_only {
            return Some(Value::Null);
        }
        let name = PeerName { address: peer.address.to_string(), name: peer.name.clone() };
        let age = u64::from(now.saturating_sub(r.received));
        let path_id = path_of(&self.paths, r);
        let rpki = self.vrps.in_use().then(|| r.rov().name().to_string());
        let aspa = aspa.map(|(_, v)| v);
        match detail.filter(|_| cur.q.detail) {
            Some(d) => {
                serde_json::to_value(RouteDetail { path_id, rpki, aspa, ..route_detail(prefix, r, d, name, age) }).ok()
            }
            None => {
                serde_json::to_value(CtlRoute { path_id, rpki, aspa, ..display_route(prefix, r, set, name, age) }).ok()
            }
        }
    }

    /// ASPA verification of a route from `peer` (`aspa.rs`), while ASPA records are in use;
    /// none for iBGP peers.
    fn aspa_verdict(&self, set: &AttrSet, peer: &PeerState) -> Option<(AspaState, AspaVerdict)> {
        super::aspa::AspaCtx::of(peer)?.verdict(&self.vrps.aspas, set)
    }

    pub(super) fn peer(&self, id: PeerId) -> Result<&PeerState, CtlError> {
        self.peers.get(&id).ok_or_else(|| CtlError::new(ctl::code::NO_SUCH_PEER, format!("no peer with id {id}")))
    }

    pub fn summary(&self) -> RibSummary {
        let mut peers: Vec<(&PeerId, &PeerState)> = self.peers.iter().collect();
        peers.sort_by_key(|(id, _)| **id);
        let mut routes = FamilyCounts::default();
        let with_rov = self.vrps.in_use();
        let mut rov_total = RovCounts::default();
        let peers = peers
            .into_iter()
            .map(|(_, p)| {
                let c = p.counts();
                routes.ipv4_unicast += c.ipv4_unicast;
                routes.ipv6_unicast += c.ipv6_unicast;
                let [valid, invalid] = self.rov.get(usize::from(p.slot)).copied().unwrap_or_default();
                let not_found = p.routes().saturating_sub(valid + invalid);
                let rov = RovCounts { valid, invalid, not_found };
                rov_total.valid += valid;
                rov_total.invalid += invalid;
                rov_total.not_found += not_found;
                let rov = with_rov.then_some(rov);
                let [rejected, blackholes] = self.rejected.get(usize::from(p.slot)).copied().unwrap_or_default();
                let stale = FamilyCounts { ipv4_unicast: p.stale[0], ipv6_unicast: p.stale[1] };
                RibPeerSummary {
                    address: p.address.to_string(),
                    name: p.name.clone(),
                    routes: c,
                    rov,
                    stale,
                    rejected,
                    blackholes,
                }
            })
            .collect();
        let mut announced = FamilyCounts::default();
        for p in &self.prefixes {
            match p.network.family() {
                Family::Ipv4Unicast => announced.ipv4_unicast += 1,
                Family::Ipv6Unicast => announced.ipv6_unicast += 1,
            }
        }
        let rov = with_rov.then_some(rov_total);
        RibSummary { peers, routes, attribute_sets: self.attrs.len() as u64, announced, rov }
    }
}

impl RouteCursor {
    /// The end line's result: what the query found.
    fn end(&self) -> serde_json::Map<String, Value> {
        let mut m = self.head.clone();
        m.insert("count".into(), json!(self.count));
        m
    }

    /// The closing item of a stream.
    fn end_item(&self) -> StreamItem {
        if self.peer_gone {
            let e = CtlError::new(ctl::code::NO_SUCH_PEER, "the neighbor was removed while its routes were being sent");
            return StreamItem::End(Err(e));
        }
        StreamItem::End(Ok(Value::Object(self.end())))
    }
}

fn display_route(p: &Prefix, r: &RouteEntry, a: AttrSet, peer: PeerName, age_secs: u64) -> CtlRoute {
    let v = update::decode_attrs_for_display(a.attrs, a.mp_next_hop, a.four_octet);
    CtlRoute {
        prefix: p.to_string(),
        next_hop: v.next_hop,
        as_path: v.as_path,
        origin: v.origin,
        med: v.med,
        local_pref: v.local_pref,
        communities: with_llgr_stale(v.communities, r),
        large_communities: v.large_communities,
        age_secs,
        best: Some(r.is_best()),
        peer: Some(peer),
        otc: role::otc_of(a.attrs),
        otc_leak: r.is_otc_leak(),
        rpki: None,
        aspa: None,
        stale: r.is_stale(),
        path_id: None,
        llgr_stale: r.is_llgr_stale(),
        rejected: r.is_rejected(),
    }
}

/// RFC 9494 §4.2: a long-lived stale route is shown with the LLGR_STALE community.
fn with_llgr_stale(mut communities: Vec<String>, r: &RouteEntry) -> Vec<String> {
    if r.is_llgr_stale() {
        communities.push(display::community_text(super::graceful::LLGR_STALE));
    }
    communities
}

fn route_detail(p: &Prefix, r: &RouteEntry, d: display::Detail, peer: PeerName, age_secs: u64) -> RouteDetail {
    RouteDetail {
        prefix: p.to_string(),
        peer: Some(peer),
        best: r.is_best(),
        age_secs,
        origin: d.origin.map(|o| display::origin_name(o).to_string()),
        as_path: d
            .as_path
            .iter()
            .map(|s| AsPathSegment { kind: display::segment_kind_name(s.kind), asns: s.asns.clone() })
            .collect(),
        next_hop: d.next_hop,
        med: d.med,
        local_pref: d.local_pref,
        atomic_aggregate: d.atomic_aggregate,
        aggregator: d.aggregator.map(|(asn, ip)| Aggregator { asn, address: ip.to_string() }),
        communities: with_llgr_stale(d.communities.iter().map(|c| display::community_text(*c)).collect(), r),
        extended_communities: d.extended_communities.iter().map(display::extended_community_text).collect(),
        large_communities: d.large_communities.iter().map(|[g, a, b]| format!("{g}:{a}:{b}")).collect(),
        originator_id: d.originator_id.map(|ip| ip.to_string()),
        cluster_list: d.cluster_list.iter().map(|ip| ip.to_string()).collect(),
        otc: d.otc,
        otc_leak: r.is_otc_leak(),
        rpki: None,
        aspa: None,
        stale: r.is_stale(),
        path_id: None,
        llgr_stale: r.is_llgr_stale(),
        rejected: r.is_rejected(),
        other_attributes: d
            .other
            .iter()
            .map(|(t, f, v)| RawAttribute { type_code: *t, flags: *f, value: display::hex(v) })
            .collect(),
    }
}
