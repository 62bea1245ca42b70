//! TABLE_DUMP_V2 RIB snapshots (RFC 6396 §4.3): one ordered walk of the prefix-major table
//! (IPv4, then IPv6), written as chunks of records handed to the MRT writer, one chunk per turn
//! of the RIB loop, so UPDATEs are served between chunks and no session stalls while a
//! snapshot is written. The walk resumes after the last prefix written, so prefixes added or
//! withdrawn meanwhile are seen or not as their place in the order says.

use super::{path_of, set_of, unix_now, Rib};
use crate::mrt::record::{self as mrt_record, PeerEntry, RibEntry};
use crate::msg::{MrtMsg, PeerId, StaleCount};
use crate::prefix::Prefix;
use log::info;
use std::net::Ipv4Addr;
use std::time::SystemTime;

/// Prefixes per snapshot chunk: small enough that UPDATEs are served between chunks.
const SNAPSHOT_CHUNK_PREFIXES: usize = 2_000;
/// Chunks queued at the MRT writer before the RIB waits (bounds the memory of a snapshot).
const SNAPSHOT_MAX_BACKLOG: usize = 8;
/// TABLE_DUMP_V2 view name (RFC 6396 §4.3.1).
const VIEW_NAME: &str = "focld";

/// A TABLE_DUMP_V2 snapshot in progress: prefixes are written in order, a chunk per turn.
pub(super) struct SnapshotCursor {
    /// Per peer slot: the peer it held when the snapshot began and its peer index (a slot
    /// emptied and given to another peer meanwhile is told apart by the id).
    index: Vec<Option<(PeerId, u16)>>,
    /// Last prefix written; the next chunk starts after it.
    after: Option<Prefix>,
    seq: u32,
    timestamp: u32,
    records: u64,
    /// Per peer index: its address and the stale routes written (for the manifest, RFC 4724).
    stale: Vec<(std::net::IpAddr, u64)>,
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
        let mut index = vec![None; self.slots.len()];
        for (i, id) in ids.iter().enumerate() {
            if let (Some(p), Ok(i)) = (self.peers.get(id), u16::try_from(i)) {
                index[usize::from(p.slot)] = Some((*id, i));
            }
        }
        let timestamp = unix_now();
        let mut buf = Vec::new();
        mrt_record::peer_index_table(timestamp, self.opts.router_id, VIEW_NAME, &entries, &mut buf);
        mrt.send_blocking(MrtMsg::SnapshotBegin { start, vrps: self.vrps.in_use().then(|| self.vrps.clone()) });
        mrt.send_blocking(MrtMsg::SnapshotChunk { records: buf, count: 1, timestamp });
        let stale = entries.iter().map(|e| (e.ip, 0)).collect();
        self.snapshot = Some(SnapshotCursor { index, after: None, seq: 0, timestamp, records: 1, stale });
        true
    }

    /// Write the next chunk of the snapshot in progress, if the writer has room.
    pub(super) fn snapshot_step(&mut self) {
        let (Some(cur), Some(mrt)) = (self.snapshot.as_mut(), self.opts.mrt.as_ref()) else { return };
        if mrt.backlog() >= SNAPSHOT_MAX_BACKLOG {
            return;
        }
        let mut buf = Vec::with_capacity(SNAPSHOT_CHUNK_PREFIXES * 128);
        let mut attrs = Vec::new();
        let mut count = 0;
        let mut last = None;
        // (peer index, received, range of `attrs`) per route of the prefix.
        let mut spans = Vec::new();
        for (prefix, routes) in self.table.walk(cur.after).take(SNAPSHOT_CHUNK_PREFIXES) {
            last = Some(prefix);
            attrs.clear();
            spans.clear();
            for r in routes {
                let Some(Some((id, index))) = cur.index.get(usize::from(r.peer)) else { continue };
                if self.slots.get(usize::from(r.peer)).copied().flatten().is_none_or(|s| s.peer != *id) {
                    continue;
                }
                let Some(a) = self.attrs.get(set_of(&self.paths, r)) else { continue };
                if r.is_stale() {
                    if let Some((_, n)) = cur.stale.get_mut(usize::from(*index)) {
                        *n += 1;
                    }
                }
                let from = attrs.len();
                mrt_record::td2_attributes(a.attrs, a.four_octet, a.mp_next_hop, &mut attrs);
                spans.push((*index, r.received, path_of(&self.paths, r), from..attrs.len()));
            }
            if spans.is_empty() {
                continue; // only routes of peers that came after the PEER_INDEX_TABLE
            }
            // RFC 6396 §4.3.4 does not order entries; peer-index order as before (then path id).
            spans.sort_unstable_by_key(|s| (s.0, s.2));
            // ADD-PATH routes go in a RIB_*_ADDPATH record of their own (RFC 8050 §4), after
            // the plain record of the same prefix, so readers of plain records see them as before.
            for add_path in [false, true] {
                let entries: Vec<RibEntry> = spans
                    .iter()
                    .filter(|s| s.2.is_some() == add_path)
                    .map(|(i, t, pid, r)| RibEntry {
                        peer_index: *i,
                        originated: *t,
                        path_id: *pid,
                        attrs: &attrs[r.clone()],
                    })
                    .collect();
                if entries.is_empty() {
                    continue;
                }
                mrt_record::rib_entry_record(cur.timestamp, cur.seq, &prefix, &entries, &mut buf);
                cur.seq = cur.seq.wrapping_add(1);
                count += 1;
            }
        }
        let Some(last) = last else {
            info!("rib: snapshot done, {} records", cur.records);
            let stale: Vec<StaleCount> = cur
                .stale
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(ip, n)| StaleCount { peer: ip.to_string(), routes: *n })
                .collect();
            self.snapshot = None;
            if !stale.is_empty() {
                mrt.send_blocking(MrtMsg::SnapshotStale(stale));
            }
            mrt.send_blocking(MrtMsg::SnapshotEnd);
            return;
        };
        cur.after = Some(last);
        cur.records += count;
        if count > 0 {
            mrt.send_blocking(MrtMsg::SnapshotChunk { records: buf, count, timestamp: cur.timestamp });
        }
    }
}
