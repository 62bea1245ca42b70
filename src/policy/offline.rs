//! `focl policy test`: a configuration's import chain run offline over the routes of an MRT
//! file, before a reload puts it in use.
//!
//! Called by focl only. A TABLE_DUMP_V2 RIB dump is read by the same reader as `[[sources]]`
//! (`source::dump::read_table`: one RIB peer's routes with `--mrt-peer`, else the first route
//! of every prefix), so the counts match what focld accepts when that table is announced to it
//! by a source; a BGP4MP update file is read with bgpkit-parser (every announcement). Offline
//! there are no VRPs (`rpki` sees every route NotFound) and no session (`otc_leak` is false).

use super::edit::{self, EditContext};
use super::{Direction, Engine, PeerFacts, Route, RouteAttrs};
use crate::config::{Config, SourceConfig};
use crate::prefix::Prefix;
use crate::rpki::vrp::RovState;
use crate::wire::aspath::{Segment, AS_SEQUENCE, AS_SET};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Routes shown per decision.
pub const SAMPLES: usize = 5;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TestReport {
    /// The configured neighbor whose import chain was run.
    pub peer: String,
    pub import: Vec<String>,
    pub routes: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Accepted with attributes changed by `set`.
    pub modified: u64,
    /// Routes per deciding term ("policy NAME term N (line L)", the default, ...).
    pub decided_by: BTreeMap<String, u64>,
    pub accepted_sample: Vec<Sample>,
    pub rejected_sample: Vec<Sample>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub prefix: String,
    pub as_path: String,
    pub decided_by: String,
}

/// The configured neighbor to evaluate for: `peer`, or the only one with an import chain.
fn pick_peer(cfg: &Config, peer: Option<IpAddr>) -> Result<(IpAddr, u32, u32, String), String> {
    let with_chain: Vec<_> = cfg.peers.iter().filter(|p| !p.import.is_empty()).collect();
    let p = match peer {
        Some(a) => cfg.peers.iter().find(|p| p.address == a).ok_or_else(|| {
            let known: Vec<String> = cfg.peers.iter().map(|p| p.address.to_string()).collect();
            format!("no [[peers]] entry has address {a}; the file has {}", known.join(", "))
        })?,
        None => match with_chain.as_slice() {
            [one] => *one,
            [] => return Err("no [[peers]] entry has an import list; nothing to test (every route is accepted)".into()),
            many => {
                let known: Vec<String> = many.iter().map(|p| p.address.to_string()).collect();
                return Err(format!("several peers have import lists ({}); choose one with --peer", known.join(", ")));
            }
        },
    };
    Ok((p.address, p.remote_as, p.local_as, p.label()))
}

/// Run the import chain of `peer` (see `pick_peer`) over the routes of `mrt`.
pub fn test_file(
    cfg: &Config,
    peer: Option<IpAddr>,
    mrt: &Path,
    mrt_peer: Option<IpAddr>,
) -> Result<TestReport, String> {
    let (address, remote_as, local_as, label) = pick_peer(cfg, peer)?;
    let engine: &Engine = &cfg.policies;
    let chain = engine.chain(&address, Direction::Import);
    let mut r = TestReport { peer: label, import: engine.names(chain), ..Default::default() };
    let facts = PeerFacts { address, asn: remote_as };
    let cx = EditContext {
        local_as,
        local_addr: None,
        discard_v4: edit::DEFAULT_DISCARD_V4,
        discard_v6: edit::DEFAULT_DISCARD_V6,
    };
    let mut one = |prefix: Prefix, attrs: &RouteAttrs, raw: Option<(&[u8], Option<&[u8]>)>| {
        let route = Route { prefix, attrs, rov: RovState::NotFound, aspa: None, otc_leak: false, peer: facts };
        let v = engine.evaluate(chain, Direction::Import, &route, None);
        let by = engine.decider(&v, Direction::Import);
        r.routes += 1;
        *r.decided_by.entry(by.clone()).or_default() += 1;
        let sample =
            || Sample { prefix: prefix.to_string(), as_path: path_text(&attrs.as_path), decided_by: by.clone() };
        if v.accept {
            r.accepted += 1;
            let changed = match raw {
                Some((a, mp)) => edit::apply(engine.set_actions(&v), a, mp, &cx).is_some(),
                None => engine.set_actions(&v).next().is_some(),
            };
            r.modified += u64::from(changed);
            if r.accepted_sample.len() < SAMPLES {
                r.accepted_sample.push(sample());
            }
        } else {
            r.rejected += 1;
            if r.rejected_sample.len() < SAMPLES {
                r.rejected_sample.push(sample());
            }
        }
    };
    let open = |p: &Path| -> Result<Box<dyn std::io::Read>, String> {
        let f = std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?;
        crate::source::dump::open(f).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let src = SourceConfig {
        name: "policy-test".into(),
        kind: "mrt".into(),
        file: mrt.to_path_buf(),
        peer: mrt_peer,
        prefix_shift: 0,
        limit: None,
        to: Vec::new(),
    };
    match crate::source::dump::read_table(open(mrt)?, &src) {
        Ok(table) => {
            let decoded: Vec<RouteAttrs> = table.attrs.iter().map(|a| RouteAttrs::decode(a, None)).collect();
            for family in &table.routes {
                for (prefix, i) in family {
                    let Some(a) = decoded.get(*i as usize) else { continue };
                    let raw = table.attrs.get(*i as usize).map(|b| (&b[..], None));
                    one(*prefix, a, raw);
                }
            }
        }
        Err(e) if e.contains("not TABLE_DUMP_V2") => {
            // An update file: every announcement, as bgpkit-parser reads it.
            let parser = bgpkit_parser::BgpkitParser::from_reader(open(mrt)?);
            for elem in parser.into_elem_iter() {
                if elem.elem_type != bgpkit_parser::models::ElemType::ANNOUNCE {
                    continue;
                }
                if let Some(mp) = mrt_peer {
                    if elem.peer_ip != mp {
                        continue;
                    }
                }
                let Ok(prefix) = Prefix::new_truncated(elem.prefix.prefix.addr(), elem.prefix.prefix.prefix_len())
                else {
                    continue;
                };
                one(prefix, &attrs_of_elem(&elem), None);
            }
        }
        Err(e) => return Err(format!("{}: {e}", mrt.display())),
    }
    Ok(r)
}

/// What terms read, from a bgpkit-parser element.
fn attrs_of_elem(e: &bgpkit_parser::models::BgpElem) -> RouteAttrs {
    use bgpkit_parser::models::{AsPathSegment, MetaCommunity};
    let mut a = RouteAttrs::default();
    if let Some(p) = &e.as_path {
        for seg in p.iter_segments() {
            match seg {
                AsPathSegment::AsSequence(v) => {
                    a.as_path.push(Segment { kind: AS_SEQUENCE, asns: v.iter().map(|x| x.to_u32()).collect() })
                }
                AsPathSegment::AsSet(v) => {
                    a.as_path.push(Segment { kind: AS_SET, asns: v.iter().map(|x| x.to_u32()).collect() })
                }
                _ => {}
            }
        }
    }
    for c in e.communities.iter().flatten() {
        match c {
            MetaCommunity::Plain(p) => a.communities.push(plain_value(p)),
            MetaCommunity::Large(l) => a.large.push([l.global_admin, l.local_data[0], l.local_data[1]]),
            _ => {}
        }
    }
    a.next_hop = e.next_hop;
    a
}

fn plain_value(c: &bgpkit_parser::models::Community) -> u32 {
    use bgpkit_parser::models::Community;
    match c {
        Community::NoExport => 0xFFFF_FF01,
        Community::NoAdvertise => 0xFFFF_FF02,
        Community::NoExportSubConfed => 0xFFFF_FF03,
        Community::Custom(asn, v) => asn.to_u32() << 16 | u32::from(*v),
    }
}

fn path_text(segs: &[Segment]) -> String {
    let mut out = Vec::new();
    for s in segs {
        let asns: Vec<String> = s.asns.iter().map(u32::to_string).collect();
        if s.kind == AS_SET {
            out.push(format!("{{{}}}", asns.join(",")));
        } else {
            out.push(asns.join(" "));
        }
    }
    out.join(" ")
}
