//! A received byte stream the way a peer thread takes it: the framer, then each message's
//! decoder (OPEN with its checks, UPDATE with RFC 7606, NOTIFICATION, ROUTE-REFRESH), UPDATEs
//! applied to a RIB and shown the way `focl rib in` shows them (bgpkit-parser's attribute
//! decoding). The first input byte picks the session: 4-octet AS or not, iBGP or not.
#![no_main]

use focl::msg::{RibMsg, RibQuery, RouteQuery, RouteTarget, SessionInfo};
use focl::prefix::Family;
use focl::rib::{Rib, RibOptions};
use focl::wire::frame::{Framer, MsgType};
use focl::wire::{notify, open, update};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

/// The RIB's link to the peer thread: a channel nobody reads (bounded, so it cannot grow)
/// and a waker of a poll that lives as long as the process.
fn link() -> focl::msg::PeerLink {
    static POLL: OnceLock<(mio::Poll, Arc<mio::Waker>)> = OnceLock::new();
    let (_, waker) = POLL.get_or_init(|| {
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
        (poll, waker)
    });
    let (tx, _rx) = crossbeam_channel::bounded(1);
    focl::msg::PeerLink::new(tx, crossbeam_channel::bounded(1).0, waker.clone())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else { return };
    let four_octet = mode & 1 != 0;
    let ibgp = mode & 2 != 0;
    let session = update::Session { four_octet_as: four_octet, ibgp };
    // ADD-PATH on both families (RFC 7911), extended messages (RFC 8654), a BGP Role (RFC 9234).
    let add_path = if mode & 16 != 0 { Family::ALL.to_vec() } else { Vec::new() };
    let ap = update::AddPath::of(&add_path);
    let role = focl::wire::role::Role::from_value(mode >> 5);
    let mut rib = Rib::new(
        Vec::new(),
        RibOptions { router_id: Ipv4Addr::new(192, 0, 2, 1), mrt: None, rib_interval_secs: 0, sources: None },
    );
    rib.handle(RibMsg::AddPeer {
        peer: 1,
        label: "fuzz".into(),
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        name: None,
        remote_as: 65002,
        link: link(),
        max_prefixes: Some((1000, mode & 4 != 0)),
    });
    rib.handle(RibMsg::SessionUp {
        peer: 1,
        info: SessionInfo {
            session: 1,
            local_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            remote_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            local_as: 65001,
            remote_as: if ibgp { 65001 } else { 65002 },
            four_octet_as: four_octet,
            families: Family::ALL.to_vec(),
            remote_id: Ipv4Addr::new(192, 0, 2, 2),
            enhanced_route_refresh: true,
            max_message_len: 65535,
            role,
            add_path_rx: add_path.clone(),
            max_paths_per_prefix: 4,
            link_local: None,
            graceful: None,
        },
    });
    let mut framer = Framer::new();
    framer.set_max_len(if mode & 32 != 0 { 65535 } else { 4096 });
    // Fed in two pieces, as reads split a stream.
    let cut = stream.len() / 2;
    for piece in [&stream[..cut], &stream[cut..]] {
        framer.feed(piece);
        while let Ok(Some((ty, raw))) = framer.next_message() {
            let body = &raw[19..];
            match ty {
                MsgType::Open => {
                    if let Ok(o) = open::OpenMsg::decode(body) {
                        let ours = open::Capabilities {
                            families: Family::ALL.to_vec(),
                            route_refresh: true,
                            four_octet_as: Some(65001),
                            extended_message: true,
                            enhanced_route_refresh: true,
                            add_path: Family::ALL.iter().map(|f| (*f, 1)).collect(),
                            roles: role.map(|r| r.value()).into_iter().collect(),
                            ..Default::default()
                        };
                        let id = Ipv4Addr::new(192, 0, 2, 1);
                        let _ = open::validate_open(&o, 65002, 65001, id, &ours, 90, mode & 64 != 0);
                        let _ = o.caps.names();
                    }
                }
                MsgType::Update => {
                    let _ = update::carries_path_ids(body, ap);
                    if let Ok(mut u) = update::parse_update_with(body, session, ap) {
                        let _ = update::decode_attrs_for_display(&u.attrs, u.mp_next_hop.as_deref(), four_octet);
                        if u.treat_as_withdraw() {
                            u.withdraw_announced();
                        }
                        if let Some(r) = role.filter(|_| !u.announced.is_empty()) {
                            u.otc_leak = focl::wire::role::otc_ingress(r, 65002, &mut u.attrs);
                        }
                        rib.apply_update(1, u, four_octet);
                    }
                }
                MsgType::Notification => {
                    let n = notify::Notification::decode(body).unwrap_or_else(|bad| bad.into());
                    let _ = n.to_string();
                }
                MsgType::RouteRefresh => {
                    // RFC 7313: BoRR marks, EoRR sweeps.
                    if let Ok(Some((family, kind))) = focl::wire::frame::decode_route_refresh(body) {
                        use focl::wire::frame::RefreshKind;
                        if kind != RefreshKind::Request {
                            rib.handle(RibMsg::RefreshMark { peer: 1, family, begin: kind == RefreshKind::Begin });
                        }
                    }
                }
                MsgType::Keepalive => {}
            }
        }
    }
    let (tx, _rx) = crossbeam_channel::bounded(1);
    let all = RouteQuery {
        peer: Some(1),
        target: RouteTarget::All,
        filter: Default::default(),
        detail: mode & 8 != 0,
        count_only: false,
    };
    rib.handle(RibMsg::Query(RibQuery::Routes(all), tx));
});
