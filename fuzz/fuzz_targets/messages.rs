//! A received byte stream the way a peer thread takes it: the framer, then each message's
//! decoder (OPEN with its checks, UPDATE with RFC 7606, NOTIFICATION, ROUTE-REFRESH), UPDATEs
//! applied to a RIB and shown the way `focl rib in` shows them (bgpkit-parser's attribute
//! decoding). The first input byte picks the session: 4-octet AS or not, iBGP or not.
#![no_main]

use focl::prefix::Family;
use focl::msg::{RibMsg, RibQuery, RouteQuery, RouteTarget, SessionInfo};
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
    let mut rib =
        Rib::new(Vec::new(), RibOptions { router_id: Ipv4Addr::new(192, 0, 2, 1), mrt: None, rib_interval_secs: 0 });
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
        },
    });
    let mut framer = Framer::new();
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
                            ..Default::default()
                        };
                        let _ = open::validate_open(&o, 65002, 65001, Ipv4Addr::new(192, 0, 2, 1), &ours, 90);
                    }
                }
                MsgType::Update => {
                    if let Ok(mut u) = update::parse_update(body, session) {
                        let _ = update::decode_attrs_for_display(&u.attrs, u.mp_next_hop.as_deref(), four_octet);
                        if u.treat_as_withdraw() {
                            let announced = std::mem::take(&mut u.announced);
                            u.withdrawn.extend(announced);
                            u.attrs.clear();
                        }
                        rib.apply_update(1, u, four_octet);
                    }
                }
                MsgType::Notification => {
                    let n = notify::Notification::decode(body).unwrap_or_else(|bad| bad.into());
                    let _ = n.to_string();
                }
                MsgType::RouteRefresh => {
                    let _ = focl::wire::frame::decode_route_refresh(body);
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
