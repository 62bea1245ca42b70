//! The RIB thread: every peer's Adj-RIB-In, the Adj-RIB-Out of static prefixes, and queries.
//!
//! Fed by the peer threads (`RibMsg::SessionUp/Down`, parsed UPDATEs, route-refresh requests)
//! and the control thread (`RibMsg::Query`). Emits UPDATEs to peer threads (`PeerMsg::Send`).
//! It owns all route data; nothing is shared behind a lock.
//!
//! Memory: a route is a `Prefix` key plus a `Route` (an `Arc` of an interned attribute set
//! and the time it was received). The prefixes of one UPDATE share one attribute set, and
//! identical sets from other UPDATEs and peers are found in the intern table and shared too.
//! Attributes stay in wire form and are decoded only for display.

use crate::config::PrefixConfig;
use crate::ctl::{self, CtlError, FamilyCounts, RibPeerSummary, RibSummary, Route as CtlRoute, RouteList};
use crate::peer::{PeerId, PeerLink, PeerMsg};
use crate::prefix::{Family, Prefix};
use crate::wire::update::{self, OutRoute, ParsedUpdate};
use crossbeam_channel::{Receiver, Sender};
use log::{debug, error, info, warn};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Capacity of the RIB's inbox; a full inbox makes peer threads stop reading their sockets.
pub const RIB_CHANNEL_CAPACITY: usize = 4096;

/// Intern table clean-up: after this many new sets, drop the ones no route uses any more.
const INTERN_SWEEP_EVERY: usize = 50_000;

/// What a peer thread tells the RIB when its session reaches Established.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    pub session: u64,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    pub local_as: u32,
    pub remote_as: u32,
    pub four_octet_as: bool,
    pub families: Vec<Family>,
}

impl SessionInfo {
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }
}

/// Questions the control thread asks.
#[derive(Clone, Debug, PartialEq)]
pub enum RibQuery {
    Summary,
    /// Adj-RIB-In of a peer, optionally only routes equal to or inside a prefix.
    In {
        peer: PeerId,
        prefix: Option<Prefix>,
    },
    Out {
        peer: PeerId,
    },
    /// (received, sent) route counts of a peer.
    Counts {
        peer: PeerId,
    },
}

/// Messages to the RIB thread.
#[derive(Debug)]
pub enum RibMsg {
    /// A configured peer exists (at start and, later, on reload).
    AddPeer {
        peer: PeerId,
        label: String,
        address: IpAddr,
        name: Option<String>,
        link: PeerLink,
    },
    SessionUp {
        peer: PeerId,
        info: SessionInfo,
    },
    SessionDown {
        peer: PeerId,
    },
    Update {
        peer: PeerId,
        update: ParsedUpdate,
        four_octet: bool,
    },
    /// The peer sent ROUTE-REFRESH: resend the Adj-RIB-Out of that family (RFC 2918 §4).
    Refresh {
        peer: PeerId,
        family: Family,
    },
    Query(RibQuery, Sender<Result<serde_json::Value, CtlError>>),
    Stop,
}

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

/// A route of an Adj-RIB-In.
#[derive(Clone, Debug)]
pub struct Route {
    pub attrs: Arc<AttrSet>,
    /// Unix time the route was received (seconds).
    pub received: u32,
}

/// One peer's routes as received.
#[derive(Default)]
pub struct AdjRibIn {
    routes: BTreeMap<Prefix, Route>,
    counts: [u64; 2],
}

impl AdjRibIn {
    fn insert(&mut self, p: Prefix, r: Route) {
        if self.routes.insert(p, r).is_none() {
            self.counts[p.family().index()] += 1;
        }
    }

    fn remove(&mut self, p: &Prefix) {
        if self.routes.remove(p).is_some() {
            self.counts[p.family().index()] -= 1;
        }
    }

    fn counts(&self) -> FamilyCounts {
        FamilyCounts { ipv4_unicast: self.counts[0], ipv6_unicast: self.counts[1] }
    }

    pub fn routes(&self) -> impl Iterator<Item = (&Prefix, &Route)> {
        self.routes.iter()
    }
}

/// A route we announce to one peer.
#[derive(Clone, Debug)]
struct OutEntry {
    prefix: Prefix,
    route: OutRoute,
}

struct PeerState {
    label: String,
    address: IpAddr,
    name: Option<String>,
    link: PeerLink,
    adj_in: AdjRibIn,
    /// Current session, while Established.
    session: Option<SessionInfo>,
    adj_out: Vec<OutEntry>,
    adj_out_since: Instant,
}

/// Owns the RIB thread.
pub struct RibHandle {
    pub tx: Sender<RibMsg>,
    join: Option<JoinHandle<()>>,
}

impl RibHandle {
    pub fn stop(mut self) {
        let _ = self.tx.send(RibMsg::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for RibHandle {
    fn drop(&mut self) {
        if let Some(j) = self.join.take() {
            let _ = self.tx.send(RibMsg::Stop);
            let _ = j.join();
        }
    }
}

pub fn spawn(prefixes: Vec<PrefixConfig>) -> std::io::Result<RibHandle> {
    let (tx, rx) = crossbeam_channel::bounded(RIB_CHANNEL_CAPACITY);
    let join = std::thread::Builder::new().name("rib".into()).spawn(move || {
        let mut rib = Rib::new(prefixes);
        rib.run(rx);
    })?;
    Ok(RibHandle { tx, join: Some(join) })
}

pub struct Rib {
    peers: HashMap<PeerId, PeerState>,
    prefixes: Vec<PrefixConfig>,
    intern: HashSet<Arc<AttrSet>>,
    interned_since_sweep: usize,
}

fn unix_now() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

impl Rib {
    pub fn new(prefixes: Vec<PrefixConfig>) -> Rib {
        Rib { peers: HashMap::new(), prefixes, intern: HashSet::new(), interned_since_sweep: 0 }
    }

    fn run(&mut self, rx: Receiver<RibMsg>) {
        while let Ok(msg) = rx.recv() {
            if matches!(msg, RibMsg::Stop) {
                break;
            }
            self.handle(msg);
        }
        debug!("rib: stopped");
    }

    pub fn handle(&mut self, msg: RibMsg) {
        match msg {
            RibMsg::AddPeer { peer, label, address, name, link } => {
                let state = PeerState {
                    label,
                    address,
                    name,
                    link,
                    adj_in: AdjRibIn::default(),
                    session: None,
                    adj_out: Vec::new(),
                    adj_out_since: Instant::now(),
                };
                self.peers.insert(peer, state);
            }
            RibMsg::SessionUp { peer, info } => self.session_up(peer, info),
            RibMsg::SessionDown { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    let n = p.adj_in.routes.len();
                    p.adj_in = AdjRibIn::default();
                    p.session = None;
                    p.adj_out.clear();
                    info!("neighbor {}: session down, {n} routes removed", p.label);
                }
                self.sweep_intern();
            }
            RibMsg::Update { peer, update, four_octet } => self.apply_update(peer, update, four_octet),
            RibMsg::Refresh { peer, family } => self.resend(peer, Some(family)),
            RibMsg::Query(q, reply) => {
                let _ = reply.send(self.query(q));
            }
            RibMsg::Stop => {}
        }
    }

    fn intern(&mut self, set: AttrSet) -> Arc<AttrSet> {
        if let Some(a) = self.intern.get(&set) {
            return a.clone();
        }
        let a = Arc::new(set);
        self.intern.insert(a.clone());
        self.interned_since_sweep += 1;
        if self.interned_since_sweep >= INTERN_SWEEP_EVERY {
            self.sweep_intern();
        }
        a
    }

    /// Forget attribute sets no route refers to any more.
    fn sweep_intern(&mut self) {
        self.intern.retain(|a| Arc::strong_count(a) > 1);
        self.interned_since_sweep = 0;
    }

    /// Apply one UPDATE: withdrawals, then announcements sharing one attribute set.
    pub fn apply_update(&mut self, peer: PeerId, u: ParsedUpdate, four_octet: bool) {
        if self.peers.get(&peer).is_none_or(|p| p.session.is_none()) {
            return; // the session went down meanwhile
        }
        let attrs = if u.announced.is_empty() {
            None
        } else {
            let set = AttrSet {
                attrs: u.attrs.into_boxed_slice(),
                mp_next_hop: u.mp_next_hop.map(Vec::into_boxed_slice),
                four_octet,
            };
            Some(self.intern(set))
        };
        let Some(p) = self.peers.get_mut(&peer) else { return };
        for w in &u.withdrawn {
            p.adj_in.remove(w);
        }
        if let Some(attrs) = attrs {
            let received = unix_now();
            for a in u.announced {
                p.adj_in.insert(a, Route { attrs: attrs.clone(), received });
            }
        }
        if let Some(f) = u.end_of_rib {
            info!("neighbor {}: End-of-RIB for {f}, {} routes", p.label, p.adj_in.counts[f.index()]);
        }
    }

    fn session_up(&mut self, peer: PeerId, info: SessionInfo) {
        let prefixes = self.prefixes.clone();
        let Some(p) = self.peers.get_mut(&peer) else { return };
        p.adj_in = AdjRibIn::default();
        p.adj_out = adj_rib_out(&p.label, &prefixes, &info);
        p.adj_out_since = Instant::now();
        p.session = Some(info);
        self.resend(peer, None);
    }

    /// Send the Adj-RIB-Out of one family (or of all negotiated ones), then End-of-RIB.
    fn resend(&mut self, peer: PeerId, only: Option<Family>) {
        let Some(p) = self.peers.get(&peer) else { return };
        let Some(info) = p.session.as_ref() else { return };
        let mut msgs = Vec::new();
        let mut sent = FamilyCounts::default();
        for family in info.families.iter().copied().filter(|f| only.is_none_or(|o| o == *f)) {
            let entries: Vec<&OutEntry> = p.adj_out.iter().filter(|e| e.prefix.family() == family).collect();
            // Routes with identical attributes go into the same UPDATEs.
            let mut groups: Vec<(&OutRoute, Vec<Prefix>)> = Vec::new();
            for e in entries {
                match groups.iter_mut().find(|(r, _)| **r == e.route) {
                    Some((_, v)) => v.push(e.prefix),
                    None => groups.push((&e.route, vec![e.prefix])),
                }
            }
            for (route, prefixes) in groups {
                match update::build_announcements(family, &prefixes, route, info.four_octet_as) {
                    Ok(m) => msgs.extend(m),
                    Err(e) => error!("neighbor {}: cannot build UPDATE for {family}: {e}", p.label),
                }
                match family {
                    Family::Ipv4Unicast => sent.ipv4_unicast += prefixes.len() as u64,
                    Family::Ipv6Unicast => sent.ipv6_unicast += prefixes.len() as u64,
                }
            }
            if only.is_none() {
                msgs.push(update::end_of_rib(family));
            }
        }
        debug!("neighbor {}: sending {} UPDATE messages", p.label, msgs.len());
        if !p.link.send(PeerMsg::Send { session: info.session, msgs, sent }) {
            warn!("neighbor {}: peer inbox full, announcements not queued", p.label);
        }
    }

    fn query(&self, q: RibQuery) -> Result<serde_json::Value, CtlError> {
        let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| CtlError::new(ctl::code::INTERNAL, format!("cannot encode reply: {e}")))
        };
        match q {
            RibQuery::Summary => to_json(serde_json::to_value(self.summary())),
            RibQuery::In { peer, prefix } => {
                let p = self.peer(peer)?;
                let now = unix_now();
                let routes = p
                    .adj_in
                    .routes
                    .iter()
                    .filter(|(k, _)| prefix.is_none_or(|f| f.contains(k)))
                    .map(|(k, r)| display_route(k, r, now))
                    .collect();
                to_json(serde_json::to_value(RouteList { peer: p.label.clone(), routes }))
            }
            RibQuery::Out { peer } => {
                let p = self.peer(peer)?;
                let age = p.adj_out_since.elapsed().as_secs();
                let routes = p
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
                    })
                    .collect();
                to_json(serde_json::to_value(RouteList { peer: p.label.clone(), routes }))
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
                to_json(serde_json::to_value((p.adj_in.counts(), sent)))
            }
        }
    }

    fn peer(&self, id: PeerId) -> Result<&PeerState, CtlError> {
        self.peers.get(&id).ok_or_else(|| CtlError::new(ctl::code::NO_SUCH_PEER, format!("no peer with id {id}")))
    }

    pub fn summary(&self) -> RibSummary {
        let mut peers: Vec<(&PeerId, &PeerState)> = self.peers.iter().collect();
        peers.sort_by_key(|(id, _)| **id);
        let mut routes = FamilyCounts::default();
        let peers = peers
            .into_iter()
            .map(|(_, p)| {
                let c = p.adj_in.counts();
                routes.ipv4_unicast += c.ipv4_unicast;
                routes.ipv6_unicast += c.ipv6_unicast;
                RibPeerSummary { address: p.address.to_string(), name: p.name.clone(), routes: c }
            })
            .collect();
        let mut announced = FamilyCounts::default();
        for p in &self.prefixes {
            match p.network.family() {
                Family::Ipv4Unicast => announced.ipv4_unicast += 1,
                Family::Ipv6Unicast => announced.ipv6_unicast += 1,
            }
        }
        RibSummary { peers, routes, attribute_sets: self.intern.len() as u64, announced }
    }

    /// A peer's Adj-RIB-In (tests and snapshots).
    pub fn adj_rib_in(&self, peer: PeerId) -> Option<&AdjRibIn> {
        self.peers.get(&peer).map(|p| &p.adj_in)
    }
}

/// The routes we announce on a session: every configured prefix of a negotiated family, with
/// NEXT_HOP = the configured next hop or our address on the session (RFC 4271 §5.1.3), AS_PATH
/// = our AS for eBGP and empty for iBGP (§5.1.2), LOCAL_PREF 100 for iBGP (§5.1.5).
fn adj_rib_out(label: &str, prefixes: &[PrefixConfig], info: &SessionInfo) -> Vec<OutEntry> {
    let ibgp = info.is_ibgp();
    let mut out = Vec::new();
    for pc in prefixes {
        let family = pc.network.family();
        if !info.families.contains(&family) {
            continue;
        }
        let next_hop = match pc.next_hop {
            Some(nh) => nh,
            None if Family::of_addr(&info.local_addr) == family => info.local_addr,
            None => {
                error!(
                    "neighbor {label}: not announcing {}: the session runs over {} and has no {family} next hop; set next_hop for this prefix",
                    pc.network,
                    info.local_addr
                );
                continue;
            }
        };
        let route = OutRoute {
            as_path: if ibgp { vec![] } else { vec![info.local_as] },
            next_hop,
            local_pref: ibgp.then_some(100),
            link_local_next_hop: None,
        };
        out.push(OutEntry { prefix: pc.network, route });
    }
    out
}

fn display_route(p: &Prefix, r: &Route, now: u32) -> CtlRoute {
    let v = update::decode_attrs_for_display(&r.attrs.attrs, r.attrs.mp_next_hop.as_deref(), r.attrs.four_octet);
    CtlRoute {
        prefix: p.to_string(),
        next_hop: v.next_hop,
        as_path: v.as_path,
        origin: v.origin,
        med: v.med,
        local_pref: v.local_pref,
        communities: v.communities,
        large_communities: v.large_communities,
        age_secs: u64::from(now.saturating_sub(r.received)),
    }
}
