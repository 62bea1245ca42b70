//! The engine against configurations read by the real reader: one test per match key family,
//! the order and defaults of terms and chains, and the `set` actions' bytes.

use super::edit::{apply, EditContext, DEFAULT_DISCARD_V4, DEFAULT_DISCARD_V6};
use super::*;
use crate::wire::aspath::encode_segment;
use crate::wire::attr::{push_attr, split_attrs};
use std::path::Path;

const HEAD: &str = "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\n[[peers]]\naddress = \"192.0.2.2\"\nremote_as = 65002\nimport = [\"a\", \"b\"]\nexport = [\"a\"]\n";

fn engine(body: &str) -> Engine {
    // Tests without a policy b import from a alone.
    let head = if body.contains("[[policy.b.") { HEAD.to_string() } else { HEAD.replace(", \"b\"", "") };
    let c = crate::config::parse(&format!("{head}{body}"), Path::new("t.toml")).expect("valid");
    (*c.policies).clone()
}

/// Wire attributes: ORIGIN IGP, AS_PATH `path`, NEXT_HOP, and the communities given.
fn wire(path: &[u32], comms: &[u32], large: &[[u32; 3]]) -> Vec<u8> {
    let mut out = Vec::new();
    push_attr(&mut out, 0x40, code::ORIGIN, &[0]);
    let mut p = Vec::new();
    if !path.is_empty() {
        encode_segment(&mut p, AS_SEQUENCE, path, crate::wire::aspath::AsWidth::Four);
    }
    push_attr(&mut out, 0x40, code::AS_PATH, &p);
    push_attr(&mut out, 0x40, code::NEXT_HOP, &[192, 0, 2, 2]);
    if !comms.is_empty() {
        let v: Vec<u8> = comms.iter().flat_map(|c| c.to_be_bytes()).collect();
        push_attr(&mut out, 0xc0, code::COMMUNITIES, &v);
    }
    if !large.is_empty() {
        let v: Vec<u8> = large.iter().flat_map(|c| c.iter().flat_map(|w| w.to_be_bytes())).collect();
        push_attr(&mut out, 0xc0, code::LARGE_COMMUNITY, &v);
    }
    out
}

fn peer() -> PeerFacts {
    PeerFacts { address: "192.0.2.2".parse().unwrap(), asn: 65002 }
}

fn decide(e: &Engine, prefix: &str, attrs: &RouteAttrs, rov: RovState) -> Verdict {
    let r = Route { prefix: prefix.parse().unwrap(), attrs, rov, aspa: None, otc_leak: false, peer: peer() };
    let chain = e.chain(&peer().address, Direction::Import);
    let v = e.evaluate(chain, Direction::Import, &r, None);
    // The RIB's split (attribute keys once per set, then the route's keys) decides alike.
    let mut pass = Vec::new();
    e.attr_pass(chain, attrs, &r.peer, &mut pass);
    assert_eq!(e.evaluate_pass(chain, Direction::Import, &pass, &r), v, "split evaluation of {prefix}");
    v
}

#[test]
fn a_view_decoded_into_again_equals_a_fresh_decode_of_the_new_set() {
    let long = wire(&[65002, 3356, 174, 64500], &[1, 2, 3, 4], &[[1, 2, 3]]);
    let short = wire(&[65002], &[9], &[]);
    let mut view = RouteAttrs::decode(&long, None);
    view.decode_into(&short, None);
    assert_eq!(view, RouteAttrs::decode(&short, None));
    let mp = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    view.decode_into(&long, Some(&mp));
    assert_eq!(view, RouteAttrs::decode(&long, Some(&mp)));
    // A malformed AS_PATH decodes to no path, as before.
    let mut bad = Vec::new();
    push_attr(&mut bad, 0x40, code::AS_PATH, &[2, 3, 0, 0]);
    view.decode_into(&bad, None);
    assert!(view.as_path.is_empty() && view.communities.is_empty() && view.next_hop.is_none());
}

fn accepted(e: &Engine, prefix: &str, attrs: &RouteAttrs) -> bool {
    decide(e, prefix, attrs, RovState::NotFound).accept
}

const STD: &str = r#"
[sets.prefix]
bogons = ["198.18.0.0/15 orlonger", "10.0.0.0/8 le 32"]
[sets.community]
pref = ["64496:*"]
[[policy.a.term]]
match = { prefix_in = "bogons" }
action = "reject"
[[policy.a.term]]
match = { community_any = "pref" }
set = { local_pref = 200 }
action = "accept"
[[policy.b.term]]
match = { prefix_len = "25..32" }
action = "reject"
"#;

#[test]
fn the_first_terminal_action_wins_and_a_policy_without_default_hands_over_to_the_next() {
    let e = engine(STD);
    let plain = RouteAttrs::decode(&wire(&[65002], &[], &[]), None);
    let tagged = RouteAttrs::decode(&wire(&[65002], &[64496 << 16 | 9], &[]), None);
    assert!(!accepted(&e, "10.1.0.0/16", &tagged), "a bogon is rejected before the community term");
    let v = decide(&e, "192.0.2.0/24", &tagged, RovState::NotFound);
    assert!(v.accept && v.decided_by == Some((0, 2)) && v.sets == vec![(0, 1)]);
    assert_eq!(e.decider(&v, Direction::Import), "policy a term 2 (line 17)");
    // Policy a falls through for a plain route; policy b rejects long prefixes.
    assert!(!accepted(&e, "192.0.2.0/25", &plain));
    let v = decide(&e, "192.0.2.0/24", &plain, RovState::NotFound);
    assert!(v.accept && v.decided_by.is_none(), "the import default accepts");
    assert_eq!(e.decider(&v, Direction::Import), "the import default (accept)");
    assert!(!e.reads_only_attributes(&[0]), "prefix_in reads the prefix");
    // Export: the same chain's end rejects.
    let r = Route {
        prefix: "192.0.2.0/24".parse().unwrap(),
        attrs: &plain,
        rov: RovState::NotFound,
        aspa: None,
        otc_leak: false,
        peer: peer(),
    };
    assert!(!e.evaluate(&[0], Direction::Export, &r, None).accept);
}

#[test]
fn a_policy_default_ends_the_chain_and_the_trace_names_every_term_tried() {
    let e = engine(&format!("{STD}[policy.a]\ndefault = \"reject\"\n"));
    let plain = RouteAttrs::decode(&wire(&[65002], &[], &[]), None);
    let r = Route {
        prefix: "192.0.2.0/24".parse().unwrap(),
        attrs: &plain,
        rov: RovState::NotFound,
        aspa: None,
        otc_leak: false,
        peer: peer(),
    };
    let mut trace = Vec::new();
    let v = e.evaluate(e.chain(&peer().address, Direction::Import), Direction::Import, &r, Some(&mut trace));
    assert!(!v.accept && v.decided_by == Some((0, 0)));
    let got: Vec<(usize, Option<&str>, Option<Action>)> = trace.iter().map(|s| (s.term, s.failed, s.action)).collect();
    assert_eq!(
        got,
        vec![(1, Some("prefix_in"), None), (2, Some("community_any"), None), (0, None, Some(Action::Reject))]
    );
}

#[test]
fn community_quantifiers_any_all_and_none_and_the_blackhole_key() {
    let e = engine(
        r#"
[sets.community]
two = ["1:1", "1:2"]
[sets.large_community]
big = ["7:*:9"]
[[policy.a.term]]
match = { community_all = "two" }
action = "reject"
[[policy.a.term]]
match = { large_community_any = "big" }
action = "reject"
[[policy.a.term]]
match = { blackhole = true }
action = "reject"
[[policy.a.term]]
match = { community_none = "two" }
action = "accept"
[policy.a]
default = "reject"
"#,
    );
    let a = |c: &[u32], l: &[[u32; 3]]| accepted(&e, "192.0.2.0/24", &RouteAttrs::decode(&wire(&[65002], c, l), None));
    assert!(!a(&[1 << 16 | 1, 1 << 16 | 2], &[]), "all of the set: rejected");
    assert!(!a(&[1 << 16 | 1], &[]), "one of two: not all, but not none either: the default");
    assert!(a(&[5], &[]) && a(&[], &[]), "none of the set");
    assert!(!a(&[], &[[7, 0, 9]]) && a(&[], &[[7, 0, 8]]));
    assert!(!a(&[sets::BLACKHOLE], &[]));
}

#[test]
fn as_path_sets_rpki_and_neighbor_and_origin_keys_hold_only_where_they_should() {
    let e = engine(
        r#"
[sets.asn]
private = ["64512-65534"]
peers = [65002]
[sets.as_path.short_private]
length = "<=3"
origin_in = "private"
peer_as = 65002
[[policy.a.term]]
match = { as_path = "short_private", neighbor_in = "peers", rpki = "valid" }
action = "accept"
[[policy.a.term]]
match = { origin_in = "private" }
action = "reject"
"#,
    );
    let at = |path: &[u32], rov| {
        decide(&e, "192.0.2.0/24", &RouteAttrs::decode(&wire(path, &[], &[]), None), rov).decided_by
    };
    assert_eq!(at(&[65002, 64600], RovState::Valid), Some((0, 1)));
    assert_eq!(at(&[65002, 64600], RovState::Invalid), Some((0, 2)), "not valid: the second term");
    assert_eq!(at(&[65002, 1, 2, 64600], RovState::Valid), Some((0, 2)), "four ASes are too long");
    assert_eq!(at(&[65003, 64600], RovState::Valid), Some((0, 2)), "another neighbor AS");
    assert_eq!(at(&[65002, 3], RovState::Valid), None, "a public origin");
    assert!(!e.reads_only_attributes(&[0]), "rpki reads the route");
}

#[test]
fn set_actions_rewrite_only_the_attributes_they_name() {
    let e = engine(
        r#"
[[policy.a.term]]
set = { local_pref = 300, med = 10, community_add = ["65001:7", "NO_EXPORT"], community_remove = ["64496:*"], large_community_add = ["1:2:3"], prepend = 2 }
action = "next"
[[policy.a.term]]
set = { med_add = -20, next_hop = "discard" }
action = "accept"
"#,
    );
    let before = wire(&[65002], &[64496 << 16 | 1, 5], &[]);
    let ra = RouteAttrs::decode(&before, None);
    let v = decide(&e, "192.0.2.0/24", &ra, RovState::NotFound);
    assert!(v.accept && v.sets.len() == 2);
    let cx = EditContext {
        local_as: 65001,
        local_addr: None,
        discard_v4: DEFAULT_DISCARD_V4,
        discard_v6: DEFAULT_DISCARD_V6,
    };
    let (after, mp) = apply(e.set_actions(&v), &before, None, &cx).expect("changed");
    assert!(mp.is_none());
    let d = RouteAttrs::decode(&after, None);
    assert_eq!(d.communities, vec![5, 65001 << 16 | 7, sets::NO_EXPORT]);
    assert_eq!(d.large, vec![[1, 2, 3]]);
    assert_eq!(d.as_path[0].asns, vec![65001, 65001, 65002]);
    assert_eq!(d.next_hop, Some("192.0.2.1".parse().unwrap()));
    let summary =
        crate::rib::PathSummary::of(&crate::rib::AttrSet { attrs: &after, mp_next_hop: None, four_octet: true });
    assert_eq!((summary.local_pref, summary.med, summary.path_len), (Some(300), 0, 3), "MED 10 - 20 stops at 0");
    // ORIGIN is kept as it was, and the attributes stay in type order.
    let codes: Vec<u8> = split_attrs(&after).0.iter().map(|a| a.type_code).collect();
    assert_eq!(codes, vec![1, 2, 3, 4, 5, 8, 32]);
    // An IPv6 route's discard next hop is MP_REACH's.
    let nh = [0x20u8, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let (_, mp) = apply(e.set_actions(&v), &before, Some(&nh), &cx).expect("changed");
    assert_eq!(mp.as_deref(), Some(&DEFAULT_DISCARD_V6.octets()[..]));
    // Nothing to do: nothing changed.
    assert!(apply(std::iter::empty(), &before, None, &cx).is_none());
}

#[test]
fn a_reload_finds_the_peers_whose_chain_changed_by_content_not_by_name() {
    let a = engine(STD);
    let same = engine(STD);
    assert!(a.changed_peers(&same, Direction::Import).is_empty());
    let b = engine(&STD.replace("local_pref = 200", "local_pref = 250"));
    let changed = a.changed_peers(&b, Direction::Import);
    assert!(changed.contains(&peer().address));
    // `route_server` changes what the export sends (RFC 7947), with the same chain (the
    // policies' lines kept, as they are part of them).
    let with_rs = |on: bool| {
        let head = HEAD
            .replace(", \"b\"", "")
            .replace("export = [\"a\"]\n", &format!("export = [\"a\"]\nroute_server = {on}\n"));
        (*crate::config::parse(&format!("{head}{STD}"), Path::new("t.toml")).expect("valid").policies).clone()
    };
    let (off, on) = (with_rs(false), with_rs(true));
    assert!(off.changed_peers(&on, Direction::Export).contains(&peer().address));
    assert!(off.changed_peers(&on, Direction::Import).is_empty());
    assert!(off.changed_peers(&with_rs(false), Direction::Export).is_empty());
}

#[test]
fn the_aspa_key_matches_the_listed_verdicts_and_never_a_route_without_one() {
    use crate::rpki::aspa::AspaState;
    let e = engine("[[policy.a.term]]\nmatch = { aspa = [\"invalid\", \"unknown\"] }\naction = \"reject\"\n");
    let plain = RouteAttrs::decode(&wire(&[65002], &[], &[]), None);
    let run = |aspa| {
        let r = Route {
            prefix: "192.0.2.0/24".parse().unwrap(),
            attrs: &plain,
            rov: RovState::NotFound,
            aspa,
            otc_leak: false,
            peer: peer(),
        };
        e.evaluate(&[0], Direction::Import, &r, None).accept
    };
    assert!(!run(Some(AspaState::Invalid)));
    assert!(!run(Some(AspaState::Unknown)));
    assert!(run(Some(AspaState::Valid)));
    assert!(run(None), "no verdict (iBGP, no records): no aspa value matches");
    assert!(e.reads_aspa(&[0]) && !e.reads_rpki(&[0]));
    // Handed in with the route by the RIB (computed once per UPDATE), so tried per route.
    assert!(!e.reads_only_attributes(&[0]));
    let r = Route {
        prefix: "192.0.2.0/24".parse().unwrap(),
        attrs: &plain,
        rov: RovState::NotFound,
        aspa: Some(AspaState::Invalid),
        otc_leak: false,
        peer: peer(),
    };
    let mut pass = Vec::new();
    e.attr_pass(&[0], &plain, &r.peer, &mut pass);
    assert!(!e.evaluate_pass(&[0], Direction::Import, &pass, &r).accept, "the RIB's split evaluation alike");
}

#[test]
fn an_as_path_regex_runs_after_the_structural_tests_and_matches_whole_as_numbers() {
    let e = engine(
        "[sets.as_path.via_3356]\nlength = \"<=3\"\nregex = \"_3356_\"\n[[policy.a.term]]\nmatch = { as_path = \"via_3356\" }\naction = \"reject\"\n",
    );
    let path = |asns: &[u32]| RouteAttrs::decode(&wire(asns, &[], &[]), None);
    assert!(!accepted(&e, "192.0.2.0/24", &path(&[65002, 3356, 64500])));
    assert!(accepted(&e, "192.0.2.0/24", &path(&[65002, 33560, 64500])), "not a part of another AS number");
    assert!(accepted(&e, "192.0.2.0/24", &path(&[65002, 3356, 64501, 64500])), "length > 3: the regex is not reached");
    assert!(accepted(&e, "192.0.2.0/24", &path(&[65002, 64500])));
}
