//! The import policy's cost inside the RIB, without sessions or sockets: the IPv4 routes of
//! one RIB peer of an MRT dump go to `focl::rib::Rib::apply_update` of one peer, one UPDATE
//! per attribute block (at most 500 prefixes each, about what fits in 4096 bytes), with the
//! policies of a configuration file (its only peer's import chain) or none.
//!
//! usage: policy_cost MRT_FILE RIB_PEER [CONFIG]
//!
//! With REPEAT=N in the environment the load is done N times, each into a new RIB, and the
//! fastest is printed too (the least disturbed by other work on the machine).
//!
//! Run under `valgrind --tool=callgrind --toggle-collect='*apply_update*'` by
//! scripts/bench/policy, the instructions of the RIB's work alone are counted: with and
//! without the chain, their difference is the chain's, independent of the machine's load.
use focl::msg::{PeerLink, RibMsg, SessionInfo};
use focl::prefix::Family;
use focl::rib::{Rib, RibOptions};
use focl::wire::update::ParsedUpdate;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: policy_cost MRT_FILE RIB_PEER [CONFIG]");
        std::process::exit(2);
    }
    let peer: IpAddr = args[2].parse().expect("RIB_PEER is an address");
    let cfg = focl::config::SourceConfig {
        name: "bench".into(),
        kind: "mrt".into(),
        file: args[1].clone().into(),
        peer: Some(peer),
        prefix_shift: 0,
        limit: None,
        to: Vec::new(),
    };
    let file = std::fs::File::open(&args[1]).expect("MRT file");
    let table = focl::source::dump::read_table(focl::source::dump::open(file).expect("MRT"), &cfg).expect("table");
    let address = IpAddr::from([127, 0, 1, 1]);
    let engine = match args.get(3) {
        Some(c) => {
            let text = std::fs::read_to_string(c).expect("config");
            match focl::config::parse(&text, Path::new(c)) {
                Ok(c) => c.policies,
                Err(e) => panic!("{c}: {e:?}"),
            }
        }
        None => Arc::new(focl::policy::Engine::default()),
    };
    let repeat: usize = std::env::var("REPEAT").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let mut best = u128::MAX;
    for _ in 0..repeat.max(1) {
        let (routes, updates, micros) = load(&table, engine.clone(), address);
        best = best.min(micros);
        println!("{routes} routes in {updates} UPDATEs in {} ms", micros / 1000);
    }
    if repeat > 1 {
        println!("fastest of {repeat}: {} us", best);
    }
}

/// One load into a new RIB: routes, UPDATEs, microseconds.
fn load(table: &focl::msg::SourceTable, engine: Arc<focl::policy::Engine>, address: IpAddr) -> (u64, u64, u128) {
    let mut rib = Rib::new(
        Vec::new(),
        RibOptions { router_id: Ipv4Addr::new(10, 0, 0, 1), mrt: None, rib_interval_secs: 0, sources: None },
    );
    rib.handle(RibMsg::SetPolicy(engine, None));
    let poll = mio::Poll::new().expect("poll");
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker"));
    let (tx, _rx) = crossbeam_channel::unbounded();
    let link = PeerLink::new(tx, crossbeam_channel::bounded(1).0, waker);
    rib.handle(RibMsg::AddPeer {
        peer: 1,
        label: "bench".into(),
        address,
        name: None,
        remote_as: 64512,
        link,
        max_prefixes: None,
    });
    let info = SessionInfo {
        session: 1,
        local_addr: IpAddr::from([127, 0, 0, 1]),
        remote_addr: address,
        local_as: 65000,
        remote_as: 64512,
        four_octet_as: true,
        families: Family::ALL.to_vec(),
        remote_id: Ipv4Addr::new(10, 0, 0, 2),
        enhanced_route_refresh: false,
        max_message_len: 4096,
        role: None,
        add_path_rx: vec![],
        max_paths_per_prefix: 8,
        link_local: None,
        graceful: None,
    };
    rib.handle(RibMsg::SessionUp { peer: 1, info });
    let started = std::time::Instant::now();
    let (mut routes, mut updates) = (0u64, 0u64);
    let v4 = &table.routes[Family::Ipv4Unicast.index()];
    let mut i = 0;
    while i < v4.len() {
        let at = v4[i].1;
        let mut j = i;
        while j < v4.len() && v4[j].1 == at && j - i < 500 {
            j += 1;
        }
        let update = ParsedUpdate {
            announced: v4[i..j].iter().map(|(p, _)| *p).collect(),
            attrs: table.attrs[at as usize].clone(),
            ..Default::default()
        };
        rib.apply_update(1, update, true);
        routes += (j - i) as u64;
        updates += 1;
        i = j;
    }
    (routes, updates, started.elapsed().as_micros())
}
