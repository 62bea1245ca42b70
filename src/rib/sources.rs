//! `[[sources]]` on the RIB thread: the tables the source thread read, and their announcement
//! to the neighbors in `to`, at full speed but in bounded batches.
//!
//! Fed by `RibMsg::SetSources` (start, reload), `SourceLoaded` (the source thread),
//! `SourceReload` (focl) and the sessions' ups and downs. Emits `PeerMsg::Send` batches and
//! `SourceMsg::Load`. Source routes are Adj-RIB-Out only: never in the table, never archived.
//!
//! A feed is the work left for one (neighbor, source): withdrawals, announcements, then the
//! closing message (End-of-RIB after the session's first announcement, RFC 4724 §2; EoRR after
//! an enhanced refresh, RFC 7313 §4). Each RIB turn hands a neighbor the next batch only while
//! its inbox and its unwritten bytes are low (`PeerLink::has_room_for_bulk`), so a slow
//! neighbor costs at most a few batches of memory and never blocks the RIB or the peer thread.

use super::{Rib, SourceProgress};
use crate::config::SourceConfig;
use crate::control::proto::{self as ctl, CtlError, FamilyCounts, SourcePeerStatus, SourceStatus};
use crate::msg::{PeerId, PeerMsg, Reply, SessionId, SourceMsg, SourceTable};
use crate::prefix::{Family, Prefix};
use crate::wire::reannounce::{rewrite_dump_attrs, ExportSession};
use crate::wire::role;
use crate::wire::update;
use log::{error, info, warn};
use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Bytes of UPDATEs in one batch handed to a peer thread.
const BATCH_BYTES: usize = 256 << 10;
/// A neighbor gets the next batch while fewer messages than this wait in its inbox...
const MAX_INBOX_BATCHES: usize = 4;
/// ... and fewer bytes than this wait to be written to its socket.
const MAX_UNWRITTEN: usize = 2 << 20;
/// Batches per neighbor in one RIB turn, so other work (UPDATEs received, queries) goes on.
const BATCHES_PER_TURN: usize = 8;

/// One `[[sources]]` entry as the RIB keeps it.
pub(super) struct Source {
    pub(super) cfg: SourceConfig,
    pub(super) table: Option<Arc<SourceTable>>,
    pub(super) loading: bool,
    pub(super) loaded_at: Option<u64>,
    pub(super) load_ms: Option<u64>,
    pub(super) load_started: Option<Instant>,
    pub(super) last_error: Option<(String, u64)>,
}

/// What is left to send to one neighbor for one source.
pub(super) struct Feed {
    pub(super) peer: PeerId,
    pub(super) session: SessionId,
    pub(super) source: String,
    steps: VecDeque<Step>,
    /// `[[prefixes]]` win over source routes for the same prefix.
    statics: HashSet<Prefix>,
    /// A batch the inbox refused, handed over first next turn.
    pending: Option<(Vec<Vec<u8>>, FamilyCounts)>,
}

enum Step {
    Withdraw {
        family: Family,
        prefixes: Vec<Prefix>,
        pos: usize,
    },
    Announce {
        table: Arc<SourceTable>,
        family: Family,
        pos: usize,
    },
    /// End-of-RIB or EoRR.
    Close(Vec<u8>),
}

fn now() -> u64 {
    u64::from(super::unix_now())
}

/// The prefixes of `family` in `old` that `new` does not have.
fn gone(old: &SourceTable, new: Option<&SourceTable>, family: Family) -> Vec<Prefix> {
    let i = family.index();
    let keep: HashSet<Prefix> = new.map(|n| n.routes[i].iter().map(|(p, _)| *p).collect()).unwrap_or_default();
    old.routes[i].iter().map(|(p, _)| *p).filter(|p| !keep.contains(p)).collect()
}

impl Rib {
    /// Start and reload: withdraw what removed or changed sources announced, and have the
    /// new and changed ones read.
    pub(super) fn set_sources(&mut self, cfgs: Vec<SourceConfig>) {
        let old = std::mem::take(&mut self.sources);
        for s in old {
            match cfgs.iter().find(|c| c.name == s.cfg.name) {
                Some(c) if *c == s.cfg => self.sources.push(s),
                other => {
                    info!(
                        "source {}: {}, withdrawing its routes",
                        s.cfg.name,
                        if other.is_some() { "changed" } else { "removed" }
                    );
                    if let Some(t) = &s.table {
                        self.withdraw_source(&s.cfg, t.clone());
                    }
                }
            }
        }
        for c in cfgs {
            if self.sources.iter().any(|s| s.cfg.name == c.name) {
                continue;
            }
            let mut s = Source {
                cfg: c,
                table: None,
                loading: false,
                loaded_at: None,
                load_ms: None,
                load_started: None,
                last_error: None,
            };
            request_load(&self.opts, &mut s, None);
            self.sources.push(s);
        }
    }

    /// `focl source reload NAME`.
    pub(super) fn source_reload(&mut self, name: &str, reply: Reply<SourceStatus>) {
        let Some(s) = self.sources.iter_mut().find(|s| s.cfg.name == name) else {
            let _ = reply.send(Err(no_such_source(name)));
            return;
        };
        request_load(&self.opts, s, Some(reply));
    }

    /// A file was read: announce the new table where it goes, withdrawing what it no longer has.
    pub(super) fn source_loaded(
        &mut self,
        cfg: SourceConfig,
        result: Result<Arc<SourceTable>, String>,
        reply: Option<Reply<SourceStatus>>,
    ) {
        let Some(i) = self.sources.iter().position(|s| s.cfg == cfg) else {
            if let Some(r) = reply {
                let _ =
                    r.send(Err(CtlError::new(ctl::code::BAD_ARGUMENT, "the source was changed by a reload meanwhile")));
            }
            return;
        };
        let s = &mut self.sources[i];
        s.loading = false;
        let ms = s.load_started.take().map(|t| t.elapsed().as_millis() as u64);
        match result {
            Err(e) => {
                s.last_error = Some((e.clone(), now()));
                if let Some(r) = reply {
                    let what = if s.table.is_some() { "; the table read before stays announced" } else { "" };
                    let _ =
                        r.send(Err(CtlError::new(ctl::code::BAD_ARGUMENT, format!("source {}: {e}{what}", cfg.name))));
                }
            }
            Ok(table) => {
                s.last_error = None;
                s.loaded_at = Some(now());
                s.load_ms = ms;
                let old = s.table.replace(table.clone());
                let ids: Vec<PeerId> = self.peers.keys().copied().collect();
                for peer in ids {
                    let Some(p) = self.peers.get(&peer) else { continue };
                    if p.session.is_none() || !cfg.targets(&p.address, p.name.as_deref()) {
                        continue;
                    }
                    let mut steps = VecDeque::new();
                    if let Some(old) = &old {
                        for family in Family::ALL {
                            let prefixes = gone(old, Some(&table), family);
                            if !prefixes.is_empty() {
                                steps.push_back(Step::Withdraw { family, prefixes, pos: 0 });
                            }
                        }
                    }
                    for family in Family::ALL {
                        steps.push_back(Step::Announce { table: table.clone(), family, pos: 0 });
                    }
                    self.start_feed(peer, &cfg.name, steps);
                }
                if let Some(r) = reply {
                    let status = self.status_of(i);
                    let _ = r.send(Ok(status));
                }
            }
        }
    }

    /// Withdraw a source's routes from every neighbor it went to.
    fn withdraw_source(&mut self, cfg: &SourceConfig, table: Arc<SourceTable>) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in ids {
            let Some(p) = self.peers.get(&peer) else { continue };
            if p.session.is_none() || !cfg.targets(&p.address, p.name.as_deref()) {
                continue;
            }
            let steps = Family::ALL
                .into_iter()
                .map(|family| Step::Withdraw { family, prefixes: gone(&table, None, family), pos: 0 })
                .collect();
            self.start_feed(peer, &cfg.name, steps);
        }
    }

    /// Whether sources with a table go to this neighbor (the static routes' End-of-RIB or
    /// EoRR then waits for them).
    pub(super) fn sources_for(&self, peer: PeerId) -> Vec<(String, Arc<SourceTable>)> {
        let Some(p) = self.peers.get(&peer) else { return Vec::new() };
        self.sources
            .iter()
            .filter(|s| s.cfg.targets(&p.address, p.name.as_deref()))
            .filter_map(|s| Some((s.cfg.name.clone(), s.table.clone()?)))
            .collect()
    }

    /// After the static routes of a new session (`close` = End-of-RIB per family) or of a
    /// refresh of `only` (`close` = EoRR, or nothing): every source's routes, the closing
    /// messages after the last.
    pub(super) fn announce_sources(&mut self, peer: PeerId, only: Option<Family>, close: Vec<Vec<u8>>) {
        let sources = self.sources_for(peer);
        let n = sources.len();
        for (k, (name, table)) in sources.into_iter().enumerate() {
            let mut steps: VecDeque<Step> = Family::ALL
                .into_iter()
                .filter(|f| only.is_none_or(|o| o == *f))
                .map(|family| Step::Announce { table: table.clone(), family, pos: 0 })
                .collect();
            if k + 1 == n {
                steps.extend(close.iter().cloned().map(Step::Close));
            }
            self.start_feed(peer, &name, steps);
        }
    }

    /// A session ended: its feeds and progress go.
    pub(super) fn sources_session_down(&mut self, peer: PeerId) {
        self.feeds.retain(|f| f.peer != peer);
        self.source_progress.retain(|(p, _), _| *p != peer);
    }

    fn start_feed(&mut self, peer: PeerId, source: &str, steps: VecDeque<Step>) {
        let Some(info) = self.peers.get(&peer).and_then(|p| p.session.as_ref()) else { return };
        // A feed of the same source to the same neighbor is replaced: the new one announces
        // the whole new table. Withdrawals the old one had not finished go first (what the new
        // table has is announced again after them), its closing messages last.
        let mut steps = steps;
        if let Some(i) = self.feeds.iter().position(|f| f.peer == peer && f.source == source) {
            let old = self.feeds.remove(i);
            let (mut first, mut close) = (VecDeque::new(), Vec::new());
            for s in old.steps {
                match s {
                    Step::Withdraw { .. } => first.push_back(s),
                    Step::Close(_) => close.push(s),
                    Step::Announce { .. } => {}
                }
            }
            first.append(&mut steps);
            first.extend(close);
            steps = first;
        }
        let statics = self.prefixes.iter().map(|p| p.network).collect();
        self.source_progress.insert((peer, source.to_string()), SourceProgress::default());
        self.feeds.push(Feed {
            peer,
            session: info.session,
            source: source.to_string(),
            steps,
            statics,
            pending: None,
        });
    }

    /// One RIB turn of every feed.
    pub(super) fn feeds_step(&mut self) {
        let mut i = 0;
        while i < self.feeds.len() {
            if self.feed_step(i) {
                let f = self.feeds.remove(i);
                if let Some(pr) = self.source_progress.get_mut(&(f.peer, f.source.clone())) {
                    pr.done_at = Some(now());
                    if let Some(p) = self.peers.get(&f.peer) {
                        info!("neighbor {}: source {}: {} prefixes sent", p.label, f.source, pr.sent);
                    }
                }
            } else {
                i += 1;
            }
        }
    }

    /// Hand feed `i`'s neighbor batches while it has room; true when the feed is done (or its
    /// session or neighbor is gone).
    fn feed_step(&mut self, i: usize) -> bool {
        let f = &mut self.feeds[i];
        let Some(p) = self.peers.get(&f.peer) else { return true };
        let Some(info) = p.session.as_ref().filter(|s| s.session == f.session) else { return true };
        let es = ExportSession {
            local_as: info.local_as,
            ibgp: info.is_ibgp(),
            four_octet_as: info.four_octet_as,
            next_hop: info.local_addr,
            otc: role::otc_egress(info.role, info.local_as),
        };
        let progress = self.source_progress.entry((f.peer, f.source.clone())).or_default();
        for _ in 0..BATCHES_PER_TURN {
            if !p.link.has_room_for_bulk(MAX_INBOX_BATCHES, MAX_UNWRITTEN) {
                return false;
            }
            let (msgs, sent) = match f.pending.take() {
                Some(b) => b,
                None => {
                    let b = build_batch(&mut f.steps, &f.statics, info, &es, &p.label);
                    if b.0.is_empty() {
                        return f.steps.is_empty();
                    }
                    b
                }
            };
            let n = sent.ipv4_unicast + sent.ipv6_unicast;
            if !p.link.send(PeerMsg::Send { session: f.session, msgs: msgs.clone(), sent }) {
                f.pending = Some((msgs, sent));
                return false;
            }
            progress.sent += n;
        }
        false
    }

    /// `focl source list|status`.
    pub(super) fn source_status(&self, name: Option<&str>) -> Result<Vec<SourceStatus>, CtlError> {
        if let Some(n) = name {
            let i = self.sources.iter().position(|s| s.cfg.name == n).ok_or_else(|| no_such_source(n))?;
            return Ok(vec![self.status_of(i)]);
        }
        Ok((0..self.sources.len()).map(|i| self.status_of(i)).collect())
    }

    fn status_of(&self, i: usize) -> SourceStatus {
        let s = &self.sources[i];
        let t = s.table.as_deref();
        let mut peers: Vec<SourcePeerStatus> = self
            .peers
            .iter()
            .filter(|(_, p)| s.cfg.targets(&p.address, p.name.as_deref()))
            .map(|(id, p)| {
                let progress = self.source_progress.get(&(*id, s.cfg.name.clone()));
                let feeding = self.feeds.iter().any(|f| f.peer == *id && f.source == s.cfg.name);
                let state = match (&p.session, feeding, progress) {
                    (None, _, _) => "down",
                    (Some(_), true, _) => "sending",
                    (Some(_), false, Some(pr)) if pr.done_at.is_some() => "sent",
                    (Some(_), false, _) => "waiting",
                };
                SourcePeerStatus {
                    peer: p.address.to_string(),
                    name: p.name.clone(),
                    state: state.into(),
                    sent: progress.map_or(0, |pr| pr.sent),
                    done_at: progress.and_then(|pr| pr.done_at),
                }
            })
            .collect();
        peers.sort_by(|a, b| a.peer.cmp(&b.peer));
        SourceStatus {
            name: s.cfg.name.clone(),
            kind: s.cfg.kind.clone(),
            file: s.cfg.file.display().to_string(),
            peer: s.cfg.peer.map(|a| a.to_string()),
            peer_as: t.and_then(|t| t.peer).map(|(_, asn)| asn),
            state: if s.loading {
                "loading"
            } else if t.is_some() {
                "loaded"
            } else {
                "error"
            }
            .into(),
            routes: FamilyCounts {
                ipv4_unicast: t.map_or(0, |t| t.routes[0].len() as u64),
                ipv6_unicast: t.map_or(0, |t| t.routes[1].len() as u64),
            },
            skipped_shift: t.map_or(0, |t| t.skipped_shift),
            skipped_limit: t.map_or(0, |t| t.skipped_limit),
            skipped_bad: t.map_or(0, |t| t.skipped_bad),
            last_load: s.loaded_at,
            load_ms: s.load_ms,
            last_error: s.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_time: s.last_error.as_ref().map(|(_, t)| *t),
            to: s.cfg.to.clone(),
            peers,
        }
    }
}

fn no_such_source(name: &str) -> CtlError {
    CtlError::new(ctl::code::NO_SUCH_SOURCE, format!("no source named '{name}' (focl source list shows them)"))
}

fn request_load(opts: &super::RibOptions, s: &mut Source, reply: Option<Reply<SourceStatus>>) {
    let Some(link) = &opts.sources else {
        if let Some(r) = reply {
            let _ = r.send(Err(CtlError::new(ctl::code::INTERNAL, "no source thread")));
        }
        return;
    };
    if link.send(SourceMsg::Load { cfg: s.cfg.clone(), reply }) {
        s.loading = true;
        s.load_started = Some(Instant::now());
    } else {
        // The reply went with the refused message and is dropped: the asker hears of it.
        warn!("source {}: the source thread is busy; not read now", s.cfg.name);
    }
}

/// The next batch of a feed: UPDATEs of at most about `BATCH_BYTES`, and the prefixes they
/// announce. Empty when the steps are done.
fn build_batch(
    steps: &mut VecDeque<Step>,
    statics: &HashSet<Prefix>,
    info: &crate::msg::SessionInfo,
    es: &ExportSession,
    label: &str,
) -> (Vec<Vec<u8>>, FamilyCounts) {
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    let mut sent = FamilyCounts::default();
    let max = info.max_message_len;
    while bytes < BATCH_BYTES {
        let Some(step) = steps.front_mut() else { break };
        match step {
            Step::Close(m) => {
                bytes += m.len();
                msgs.push(std::mem::take(m));
                steps.pop_front();
            }
            Step::Withdraw { family, prefixes, pos } => {
                if !info.families.contains(family) || *pos >= prefixes.len() {
                    steps.pop_front();
                    continue;
                }
                // About 4 bytes a prefix: take what fits the batch.
                let end = prefixes.len().min(*pos + (BATCH_BYTES - bytes) / 4 + 1);
                let chunk: Vec<Prefix> = prefixes[*pos..end].iter().copied().filter(|p| !statics.contains(p)).collect();
                *pos = end;
                for m in update::build_withdrawals(*family, &chunk, max) {
                    bytes += m.len();
                    msgs.push(m);
                }
            }
            Step::Announce { table, family, pos } => {
                let routes = &table.routes[family.index()];
                let next_hop_ok = matches!(
                    (*family, es.next_hop),
                    (Family::Ipv4Unicast, IpAddr::V4(_)) | (Family::Ipv6Unicast, IpAddr::V6(_))
                );
                if !info.families.contains(family) || *pos >= routes.len() || !next_hop_ok {
                    if info.families.contains(family) && !next_hop_ok && *pos < routes.len() {
                        error!(
                            "neighbor {label}: not announcing {} {family} source routes: the session runs over {} and has no {family} next hop",
                            routes.len(),
                            es.next_hop
                        );
                    }
                    steps.pop_front();
                    continue;
                }
                // One run of routes sharing an attribute block.
                let attr_id = routes[*pos].1;
                let run_end = routes[*pos..].iter().position(|(_, a)| *a != attr_id).map_or(routes.len(), |k| *pos + k);
                let end = run_end.min(*pos + (BATCH_BYTES - bytes) / 4 + 1);
                let chunk: Vec<Prefix> =
                    routes[*pos..end].iter().map(|(p, _)| *p).filter(|p| !statics.contains(p)).collect();
                *pos = end;
                if chunk.is_empty() {
                    continue;
                }
                let dump = table.attrs.get(attr_id as usize).map(Vec::as_slice).unwrap_or_default();
                let ipv4 = *family == Family::Ipv4Unicast;
                let built = rewrite_dump_attrs(dump, ipv4, es).and_then(|attrs| {
                    let ll = if ipv4 { None } else { info.link_local };
                    update::announce_with_attrs(*family, &chunk, &attrs, es.next_hop, ll, max)
                });
                match built {
                    Ok(ms) => {
                        for m in ms {
                            bytes += m.len();
                            msgs.push(m);
                        }
                        match family {
                            Family::Ipv4Unicast => sent.ipv4_unicast += chunk.len() as u64,
                            Family::Ipv6Unicast => sent.ipv6_unicast += chunk.len() as u64,
                        }
                    }
                    Err(e) => warn!("neighbor {label}: {} source routes not sent: {e}", chunk.len()),
                }
            }
        }
    }
    (msgs, sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{PeerLink, RibMsg, SessionInfo};
    use crate::rib::RibOptions;
    use crossbeam_channel::Receiver;
    use std::net::Ipv4Addr;

    const ROUTES: u32 = 100_000;

    fn table() -> SourceTable {
        // ORIGIN IGP, AS_PATH 64500 (4-octet); two attribute blocks.
        let a = |last: u8| vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfb, last];
        let mut t = SourceTable { attrs: vec![a(0xf4), a(0xf5)], ..Default::default() };
        t.routes[0] = (0..ROUTES)
            .map(|i| (Prefix::new(Ipv4Addr::from(0x0b00_0000 + (i << 8)).into(), 24).unwrap(), i % 2))
            .collect();
        t.routes[0].sort_unstable_by_key(|&(p, a)| (a, p));
        t
    }

    fn cfg() -> SourceConfig {
        SourceConfig {
            name: "lab".into(),
            kind: "mrt".into(),
            file: "rib.mrt".into(),
            peer: None,
            prefix_shift: 0,
            limit: None,
            to: vec!["127.0.0.2".into()],
        }
    }

    fn rib_with_a_peer() -> (Rib, Receiver<PeerMsg>) {
        let mut rib = Rib::new(
            Vec::new(),
            RibOptions { router_id: Ipv4Addr::new(192, 0, 2, 1), mrt: None, rib_interval_secs: 0, sources: None },
        );
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
        let (tx, rx) = crossbeam_channel::bounded(crate::msg::INBOX_CAPACITY);
        let link = PeerLink::new(tx, crossbeam_channel::bounded(1).0, waker);
        let address = IpAddr::from([127, 0, 0, 2]);
        rib.handle(RibMsg::AddPeer {
            peer: 1,
            label: "p".into(),
            address,
            name: None,
            remote_as: 65002,
            link,
            max_prefixes: None,
        });
        (rib, rx)
    }

    fn session_up(rib: &mut Rib) {
        rib.handle(RibMsg::SessionUp {
            peer: 1,
            info: SessionInfo {
                local_addr: IpAddr::from([127, 0, 0, 1]),
                local_as: 65001,
                families: vec![Family::Ipv4Unicast],
                enhanced_route_refresh: false,
                ..super::super::tests::session_info(2)
            },
        });
    }

    /// Take what waits in the inbox: (prefixes announced, prefixes withdrawn, End-of-RIB seen
    /// after the last announcement, messages).
    fn drain(rx: &Receiver<PeerMsg>, seen: &mut (u64, u64, bool, usize)) {
        while let Ok(PeerMsg::Send { msgs, sent, .. }) = rx.try_recv() {
            for m in &msgs {
                let u = update::parse_update(&m[19..], update::Session { four_octet_as: true, ibgp: false }).unwrap();
                seen.1 += u.withdrawn.len() as u64;
                if u.end_of_rib.is_some() {
                    seen.2 = true;
                } else if !u.announced.is_empty() {
                    assert!(!seen.2, "an announcement after End-of-RIB");
                }
                assert!(m.len() <= 4096);
            }
            seen.0 += sent.ipv4_unicast;
            seen.3 += msgs.len();
        }
    }

    #[test]
    fn a_table_goes_out_in_bounded_batches_then_end_of_rib_and_a_removed_source_is_withdrawn() {
        let (mut rib, rx) = rib_with_a_peer();
        rib.handle(RibMsg::SetSources(vec![cfg()]));
        rib.handle(RibMsg::SourceLoaded { cfg: cfg(), result: Ok(Arc::new(table())), reply: None });
        session_up(&mut rib);
        let mut seen = (0, 0, false, 0);
        let mut turns = 0;
        while !rib.feeds.is_empty() {
            rib.feeds_step();
            // A neighbor that does not read holds a few batches, never the table.
            assert!(rx.len() <= MAX_INBOX_BATCHES + 1, "{} messages waiting", rx.len());
            drain(&rx, &mut seen);
            turns += 1;
            assert!(turns < 10_000);
        }
        assert_eq!(seen.0, u64::from(ROUTES));
        assert!(seen.2, "End-of-RIB after the table");
        assert!(seen.3 < ROUTES as usize / 100, "{} UPDATEs: prefixes sharing attributes are packed", seen.3);
        let st = rib.source_status(Some("lab")).unwrap();
        assert_eq!((st[0].peers[0].state.as_str(), st[0].peers[0].sent), ("sent", u64::from(ROUTES)));

        // Removed by a reload: every prefix withdrawn.
        rib.handle(RibMsg::SetSources(vec![]));
        let mut gone = (0, 0, false, 0);
        while !rib.feeds.is_empty() {
            rib.feeds_step();
            drain(&rx, &mut gone);
        }
        assert_eq!(gone.1, u64::from(ROUTES));
        assert!(rib.source_status(None).unwrap().is_empty());
    }

    #[test]
    fn a_reloaded_table_withdraws_only_what_it_no_longer_has() {
        let (mut rib, rx) = rib_with_a_peer();
        session_up(&mut rib);
        drain(&rx, &mut (0, 0, false, 0));
        rib.handle(RibMsg::SetSources(vec![cfg()]));
        rib.handle(RibMsg::SourceLoaded { cfg: cfg(), result: Ok(Arc::new(table())), reply: None });
        while !rib.feeds.is_empty() {
            rib.feeds_step();
            drain(&rx, &mut (0, 0, false, 0));
        }
        let mut smaller = table();
        smaller.routes[0].retain(|(p, _)| p.addr() != IpAddr::from([11, 0, 7, 0]));
        rib.handle(RibMsg::SourceLoaded { cfg: cfg(), result: Ok(Arc::new(smaller)), reply: None });
        let mut seen = (0, 0, false, 0);
        while !rib.feeds.is_empty() {
            rib.feeds_step();
            drain(&rx, &mut seen);
        }
        assert_eq!((seen.0, seen.1), (u64::from(ROUTES) - 1, 1));
        // A failed read keeps the table in use and says why.
        rib.handle(RibMsg::SourceLoaded { cfg: cfg(), result: Err("rib.mrt: truncated".into()), reply: None });
        let st = rib.source_status(Some("lab")).unwrap();
        assert_eq!(st[0].routes.ipv4_unicast, u64::from(ROUTES) - 1);
        assert_eq!(st[0].last_error.as_deref(), Some("rib.mrt: truncated"));
        assert!(rib.feeds.is_empty());
    }
}
