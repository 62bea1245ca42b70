//! Pure: a peer thread's `MonitorEvent` decoded once, then rendered per subscriber as the JSON
//! object of `focl monitor` (in the spirit of RIPE RIS Live's messages; the schema is in
//! focl(8)), or left out when the subscriber's filter does not match.

use crate::msg::{MonitorEvent, MonitorFilter, MonitorKind};
use crate::prefix::Prefix;
use crate::wire::frame::{self, MsgType};
use crate::wire::notify::Notification;
use crate::wire::update::{self, AttrView, Session};
use serde_json::{json, Map, Value};
use std::time::UNIX_EPOCH;

/// An event decoded for rendering.
pub struct Decoded {
    head: Map<String, Value>,
    body: Body,
}

enum Body {
    Update {
        announced: Vec<Prefix>,
        withdrawn: Vec<Prefix>,
        view: AttrView,
        /// The last AS of the path, when it ends in a plain AS (an AS_SET has no origin).
        origin_as: Option<u32>,
        end_of_rib: Option<&'static str>,
    },
    Notification(Value),
    State(Value),
    /// A message the monitor does not show (OPEN, KEEPALIVE, ROUTE-REFRESH, or one that
    /// does not parse: the MRT archive keeps those).
    Skip,
}

/// `"65002 {65010,65011} 65020"` as `[65002, [65010, 65011], 65020]`.
fn path_array(path: &str) -> Vec<Value> {
    path.split_whitespace()
        .filter_map(|seg| {
            if seg.starts_with('{') || seg.starts_with('[') || seg.starts_with('(') {
                let set: Vec<Value> = seg
                    .trim_matches(|c| matches!(c, '{' | '}' | '[' | ']' | '(' | ')'))
                    .split(',')
                    .filter_map(|a| a.trim().parse::<u32>().ok().map(Value::from))
                    .collect();
                Some(Value::Array(set))
            } else {
                seg.parse::<u32>().ok().map(Value::from)
            }
        })
        .collect()
}

fn origin_of(path: &[Value]) -> Option<u32> {
    path.last().and_then(Value::as_u64).and_then(|a| u32::try_from(a).ok())
}

pub fn decode(ev: &MonitorEvent) -> Decoded {
    let ts = ev.ts.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut head = Map::new();
    head.insert("timestamp".into(), json!((ts * 1e6).round() / 1e6));
    head.insert("peer".into(), json!(ev.peer.address.to_string()));
    head.insert("peer_name".into(), json!(ev.peer.name));
    head.insert("peer_asn".into(), json!(ev.peer.remote_as));
    let body = match &ev.kind {
        MonitorKind::State { from, to, reason } => {
            Body::State(json!({ "type": "STATE", "old_state": from, "new_state": to, "reason": reason }))
        }
        MonitorKind::Message { raw, four_octet_as, ibgp, add_path } => {
            let body = raw.get(frame::HEADER_LEN..).unwrap_or_default();
            match raw.get(18).copied().and_then(MsgType::from_u8) {
                Some(MsgType::Update) => {
                    let session = Session { four_octet_as: *four_octet_as, ibgp: *ibgp };
                    match update::parse_update_with(body, session, *add_path) {
                        Ok(u) => {
                            // parse_update gives 4-octet AS numbers for every session (RFC 6793 §4.2.3).
                            let view = update::decode_attrs_for_display(&u.attrs, u.mp_next_hop.as_deref(), true);
                            let origin_as = origin_of(&path_array(&view.as_path));
                            // RFC 7606 treat-as-withdraw: what the RIB did with the NLRI.
                            let (announced, mut withdrawn) = (u.announced.clone(), u.withdrawn.clone());
                            let announced = if u.treat_as_withdraw() {
                                withdrawn.extend(announced);
                                Vec::new()
                            } else {
                                announced
                            };
                            Body::Update {
                                announced,
                                withdrawn,
                                view,
                                origin_as,
                                end_of_rib: u.end_of_rib.map(|f| f.name()),
                            }
                        }
                        Err(_) => Body::Skip,
                    }
                }
                Some(MsgType::Notification) => match Notification::decode(body) {
                    Ok(n) => Body::Notification(json!({
                        "type": "NOTIFICATION",
                        "code": n.code,
                        "subcode": n.subcode,
                        "name": n.name(),
                        "reason": n.shutdown_communication(),
                    })),
                    Err(_) => Body::Skip,
                },
                _ => Body::Skip,
            }
        }
    };
    Decoded { head, body }
}

fn prefix_passes(p: &Prefix, f: &MonitorFilter) -> bool {
    match f.prefix {
        None => true,
        Some((want, more)) => *p == want || (more && want.contains(p)),
    }
}

/// The event as `filter`'s subscriber sees it, or `None` when it does not match.
pub fn render(d: &Decoded, filter: &MonitorFilter) -> Option<Value> {
    if let Some(peer) = filter.peer {
        if d.head.get("peer").and_then(Value::as_str) != Some(peer.to_string().as_str()) {
            return None;
        }
    }
    let mut out = d.head.clone();
    match &d.body {
        Body::Skip => return None,
        Body::State(v) => {
            if !filter.states || filter.prefix.is_some() || filter.origin.is_some() {
                return None;
            }
            out.extend(v.as_object().cloned().unwrap_or_default());
        }
        Body::Notification(v) => {
            if !filter.notifications || filter.prefix.is_some() || filter.origin.is_some() {
                return None;
            }
            out.extend(v.as_object().cloned().unwrap_or_default());
        }
        Body::Update { announced, withdrawn, view, origin_as, end_of_rib } => {
            if !filter.updates {
                return None;
            }
            let announced: Vec<String> =
                announced.iter().filter(|p| prefix_passes(p, filter)).map(ToString::to_string).collect();
            let withdrawn: Vec<String> =
                withdrawn.iter().filter(|p| prefix_passes(p, filter)).map(ToString::to_string).collect();
            if filter.prefix.is_some() && announced.is_empty() && withdrawn.is_empty() {
                return None;
            }
            if let Some(o) = filter.origin {
                if announced.is_empty() || *origin_as != Some(o) {
                    return None;
                }
            }
            out.insert("type".into(), json!("UPDATE"));
            let mut announcements = Vec::new();
            if !announced.is_empty() {
                announcements.push(json!({ "next_hop": view.next_hop, "prefixes": announced }));
            }
            out.insert("announcements".into(), Value::Array(announcements));
            out.insert("withdrawals".into(), json!(withdrawn));
            if !announced.is_empty() {
                out.insert("path".into(), Value::Array(path_array(&view.as_path)));
                out.insert("origin".into(), json!(view.origin));
                out.insert("community".into(), json!(view.communities));
                out.insert("large_community".into(), json!(view.large_communities));
                out.insert("med".into(), json!(view.med));
                out.insert("local_pref".into(), json!(view.local_pref));
            }
            if let Some(f) = end_of_rib {
                out.insert("end_of_rib".into(), json!(f));
            }
        }
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PeerConfig;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    fn peer() -> Arc<PeerConfig> {
        let text = "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\n[[peers]]\nname = \"up\"\naddress = \"127.0.0.2\"\nremote_as = 65002\n";
        let c = crate::config::parse(text, std::path::Path::new("t.toml")).expect("config");
        Arc::new(c.peers[0].clone())
    }

    /// An UPDATE announcing `nlri` with ORIGIN IGP, AS_PATH [65002, 65010] and NEXT_HOP 192.0.2.2,
    /// withdrawing `withdrawn`.
    fn update(withdrawn: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        if !nlri.is_empty() {
            attrs.extend_from_slice(&[0x40, 1, 1, 0]);
            attrs.extend_from_slice(&[0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xea, 0, 0, 0xfd, 0xf2]);
            attrs.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 2]);
            attrs.extend_from_slice(&[0xc0, 8, 4, 0xfd, 0xe8, 0, 1]);
        }
        let mut body = Vec::new();
        body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
        body.extend_from_slice(withdrawn);
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        body.extend_from_slice(nlri);
        let mut msg = Vec::new();
        frame::write_header(&mut msg, frame::HEADER_LEN + body.len(), MsgType::Update);
        msg.extend_from_slice(&body);
        msg
    }

    fn event(raw: Vec<u8>) -> MonitorEvent {
        MonitorEvent {
            ts: UNIX_EPOCH + Duration::from_millis(1_764_650_000_250),
            peer: peer(),
            kind: MonitorKind::Message {
                raw: raw.into(),
                four_octet_as: true,
                ibgp: false,
                add_path: Default::default(),
            },
        }
    }

    fn all() -> MonitorFilter {
        MonitorFilter { updates: true, states: true, notifications: true, ..Default::default() }
    }

    #[test]
    fn an_announcement_reads_like_ris_live() {
        let d = decode(&event(update(&[], &[24, 198, 51, 100, 16, 10, 1])));
        let v = render(&d, &all()).expect("shown");
        assert_eq!(v["type"], "UPDATE");
        assert_eq!(v["timestamp"], 1_764_650_000.25);
        assert_eq!(
            (v["peer"].as_str(), v["peer_name"].as_str(), v["peer_asn"].as_u64()),
            (Some("127.0.0.2"), Some("up"), Some(65002))
        );
        assert_eq!(
            v["announcements"],
            json!([{"next_hop": "192.0.2.2", "prefixes": ["198.51.100.0/24", "10.1.0.0/16"]}])
        );
        assert_eq!(v["withdrawals"], json!([]));
        assert_eq!(v["path"], json!([65002, 65010]));
        assert_eq!(v["origin"], "igp");
        assert_eq!(v["community"], json!(["65000:1"]));
    }

    #[test]
    fn filters_pick_prefixes_origins_peers_and_types() {
        let d = decode(&event(update(&[8, 10], &[24, 198, 51, 100, 16, 10, 1])));
        let f = MonitorFilter { prefix: Some(("10.0.0.0/8".parse().expect("prefix"), true)), ..all() };
        let v = render(&d, &f).expect("10/8 and what it covers");
        assert_eq!(v["announcements"][0]["prefixes"], json!(["10.1.0.0/16"]));
        assert_eq!(v["withdrawals"], json!(["10.0.0.0/8"]));
        let exact = MonitorFilter { prefix: Some(("10.0.0.0/8".parse().expect("prefix"), false)), ..all() };
        let v = render(&d, &exact).expect("only the withdrawal");
        assert_eq!(v["announcements"], json!([]));
        assert!(render(&d, &MonitorFilter { origin: Some(65010), ..all() }).is_some());
        assert!(render(&d, &MonitorFilter { origin: Some(65002), ..all() }).is_none(), "65002 is not the origin");
        assert!(render(&d, &MonitorFilter { peer: Some("127.0.0.9".parse().expect("ip")), ..all() }).is_none());
        assert!(render(&d, &MonitorFilter { updates: false, ..all() }).is_none());
        // A withdrawal alone has no origin to match.
        let w = decode(&event(update(&[8, 10], &[])));
        assert!(render(&w, &MonitorFilter { origin: Some(65010), ..all() }).is_none());
        assert_eq!(render(&w, &all()).expect("shown")["withdrawals"], json!(["10.0.0.0/8"]));
    }

    #[test]
    fn state_changes_and_notifications_have_their_own_types() {
        let st = MonitorEvent {
            ts: SystemTime::now(),
            peer: peer(),
            kind: MonitorKind::State { from: "OpenConfirm", to: "Established", reason: "KEEPALIVE received".into() },
        };
        let v = render(&decode(&st), &all()).expect("shown");
        assert_eq!(
            (v["type"].as_str(), v["old_state"].as_str(), v["new_state"].as_str()),
            (Some("STATE"), Some("OpenConfirm"), Some("Established"))
        );
        assert!(render(&decode(&st), &MonitorFilter { states: false, ..all() }).is_none());
        let n = Notification::cease(crate::wire::notify::CeaseSubcode::AdministrativeShutdown, Some("maintenance"));
        let v = render(&decode(&event(n.encode())), &all()).expect("shown");
        assert_eq!(
            (v["type"].as_str(), v["code"].as_u64(), v["subcode"].as_u64()),
            (Some("NOTIFICATION"), Some(6), Some(2))
        );
        assert_eq!(v["reason"], "maintenance");
    }

    #[test]
    fn garbage_and_keepalives_are_not_shown() {
        assert!(render(&decode(&event(frame::keepalive())), &all()).is_none());
        let mut bad = update(&[], &[24, 198, 51, 100]);
        bad.truncate(25);
        assert!(render(&decode(&event(bad)), &all()).is_none());
        assert!(render(&decode(&event(vec![0xff; 3])), &all()).is_none());
    }

    #[test]
    fn as_sets_become_nested_arrays() {
        assert_eq!(path_array("65002 {65010,65011}"), vec![json!(65002), json!([65010, 65011])]);
        assert_eq!(origin_of(&path_array("65002 {65010,65011}")), None);
    }
}
