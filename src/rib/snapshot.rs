//! TABLE_DUMP_V2 RIB snapshots (RFC 6396 §4.3): written as chunks of records handed to the MRT
//! writer, one chunk per turn of the RIB loop, so UPDATEs are served between chunks and no
//! session stalls while a snapshot is written.

use super::{unix_now, Rib};
use crate::mrt::record::{self as mrt_record, PeerEntry, RibEntry};
use crate::msg::{MrtMsg, PeerId};
use crate::prefix::Prefix;
use log::info;
use std::net::Ipv4Addr;
use std::ops::Bound;
use std::time::SystemTime;

/// Prefixes per snapshot chunk: small enough that UPDATEs are served between chunks.
const SNAPSHOT_CHUNK_PREFIXES: usize = 2_000;
/// Chunks queued at the MRT writer before the RIB waits (bounds the memory of a snapshot).
const SNAPSHOT_MAX_BACKLOG: usize = 8;
/// TABLE_DUMP_V2 view name (RFC 6396 §4.3.1).
const VIEW_NAME: &str = "focld";

/// A TABLE_DUMP_V2 snapshot in progress: prefixes are written in order, a chunk per turn.
pub(super) struct SnapshotCursor {
    /// Peers in peer-index order.
    peers: Vec<PeerId>,
    /// Last prefix written; the next chunk starts after it.
    after: Option<Prefix>,
    seq: u32,
    timestamp: u32,
    records: u64,
}

impl Rib {
    pub(super) fn stop_snapshot(&mut self) {
        if self.snapshot.take().is_some() {
            if let Some(m) = &self.opts.mrt {
                m.send_blocking(MrtMsg::SnapshotEnd);
            }
        }
    }

    /// Start a snapshot named after `start`: the PEER_INDEX_TABLE goes out at once.
    pub(super) fn begin_snapshot(&mut self, start: SystemTime) -> bool {
        let Some(mrt) = &self.opts.mrt else { return false };
        if self.snapshot.is_some() {
            return false;
        }
        let mut ids: Vec<PeerId> = self.peers.keys().copied().collect();
        ids.sort_unstable();
        let entries: Vec<PeerEntry> = ids
            .iter()
            .filter_map(|id| self.peers.get(id))
            .map(|p| PeerEntry {
                bgp_id: p.session.as_ref().map(|s| s.remote_id).unwrap_or(Ipv4Addr::UNSPECIFIED),
                ip: p.address,
                asn: p.remote_as,
            })
            .collect();
        let timestamp = unix_now();
        let mut buf = Vec::new();
        mrt_record::peer_index_table(timestamp, self.opts.router_id, VIEW_NAME, &entries, &mut buf);
        mrt.send_blocking(MrtMsg::SnapshotBegin { start });
        mrt.send_blocking(MrtMsg::SnapshotChunk { records: buf, count: 1, timestamp });
        self.snapshot = Some(SnapshotCursor { peers: ids, after: None, seq: 0, timestamp, records: 1 });
        true
    }

    /// Write the next chunk of the snapshot in progress, if the writer has room.
    pub(super) fn snapshot_step(&mut self) {
        let (Some(cur), Some(mrt)) = (self.snapshot.as_mut(), self.opts.mrt.as_ref()) else { return };
        if mrt.backlog() >= SNAPSHOT_MAX_BACKLOG {
            return;
        }
        // The next prefixes after the cursor over all peers, merged in order.
        let lower = match cur.after {
            Some(p) => Bound::Excluded(p),
            None => Bound::Unbounded,
        };
        let mut next: Vec<Prefix> = Vec::new();
        for id in &cur.peers {
            if let Some(p) = self.peers.get(id) {
                next.extend(
                    p.adj_in.routes.range((lower, Bound::Unbounded)).take(SNAPSHOT_CHUNK_PREFIXES).map(|(k, _)| *k),
                );
            }
        }
        next.sort_unstable();
        next.dedup();
        next.truncate(SNAPSHOT_CHUNK_PREFIXES);
        if next.is_empty() {
            info!("rib: snapshot done, {} records", cur.records);
            self.snapshot = None;
            mrt.send_blocking(MrtMsg::SnapshotEnd);
            return;
        }
        let mut buf = Vec::with_capacity(next.len() * 128);
        let mut attrs = Vec::new();
        let mut count = 0;
        for prefix in &next {
            attrs.clear();
            // (peer index, received, range of `attrs`) per peer holding the prefix.
            let mut spans = Vec::new();
            for (index, id) in cur.peers.iter().enumerate() {
                let Some(route) = self.peers.get(id).and_then(|p| p.adj_in.routes.get(prefix)) else { continue };
                let from = attrs.len();
                let a = &route.attrs;
                mrt_record::td2_attributes(&a.attrs, a.four_octet, a.mp_next_hop.as_deref(), &mut attrs);
                spans.push((index as u16, route.received, from..attrs.len()));
            }
            let entries: Vec<RibEntry> = spans
                .iter()
                .map(|(i, t, r)| RibEntry { peer_index: *i, originated: *t, attrs: &attrs[r.clone()] })
                .collect();
            mrt_record::rib_entry_record(cur.timestamp, cur.seq, prefix, &entries, &mut buf);
            cur.seq = cur.seq.wrapping_add(1);
            count += 1;
        }
        cur.after = next.last().copied();
        cur.records += count;
        mrt.send_blocking(MrtMsg::SnapshotChunk { records: buf, count, timestamp: cur.timestamp });
    }
}
