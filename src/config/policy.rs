//! `[sets.*]`, `[[policy.NAME.term]]`, `[policy.NAME] default` and the peers' `import` /
//! `export` lists (issue 17): read with every error naming the file, line and key, and
//! compiled into a `policy::Engine`. A name that refers to no set or policy, and an unknown
//! key are load errors, never "true".
//!
//! The tables are also kept as TOML values (`Config::sets`, `Config::policy`) so `focld -n -v`
//! prints them back as written.

use super::reader::{Field, Reader, Table};
use crate::policy::sets::{
    self, parse_asn_range, parse_ext_community, AsPathSet, AsnSet, CommunityPattern, CommunitySet, LargePattern,
    LargeSet, LengthTest, PrefixRange, PrefixSet, Sets,
};
use crate::policy::{Action, Engine, Match, NextHopSet, PeerPolicy, Policy, Quantifier, SetAction, Term};
use crate::prefix::Family;
use crate::rpki::aspa::AspaState;
use crate::rpki::vrp::RovState;
use std::net::IpAddr;
use toml::de::{DeTable, DeValue};

/// A peer's `import` and `export` as read: names with the field they came from.
#[derive(Default)]
pub(super) struct PeerChains {
    pub(super) name: Option<String>,
    import: Vec<(String, usize, String)>,
    export: Vec<(String, usize, String)>,
    pub(super) route_server: bool,
}

impl PeerChains {
    pub(super) fn import_names(&self) -> Vec<String> {
        self.import.iter().map(|(n, _, _)| n.clone()).collect()
    }
    pub(super) fn export_names(&self) -> Vec<String> {
        self.export.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

/// `import = ["p1", "p2"]` and `export = [...]` of one `[[peers]]` entry (a single string is
/// taken as a list of one).
pub(super) fn read_peer_chains(cx: &mut Reader, t: &mut Table<'_, '_>) -> PeerChains {
    let mut out = PeerChains::default();
    for (key, list) in [("import", &mut out.import), ("export", &mut out.export)] {
        if let Some(f) = t.get(cx, key) {
            for item in string_list(cx, &f) {
                if let Some(s) = cx.str(&item) {
                    list.push((s.to_string(), item.line, item.key.clone()));
                }
            }
        }
    }
    out.route_server = t.get(cx, "route_server").and_then(|f| cx.bool(&f)).unwrap_or(false);
    out
}

/// The items of a list value (a lone value is a list of one), each as a field of its own.
fn string_list<'a, 'i>(cx: &Reader, f: &Field<'a, 'i>) -> Vec<Field<'a, 'i>> {
    match f.value {
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| Field {
                key: format!("{}[{i}]", f.key),
                line: cx.line_of(v.span().start),
                value: v.get_ref(),
            })
            .collect(),
        _ => vec![Field { key: f.key.clone(), line: f.line, value: f.value }],
    }
}

/// The entries of a table whose keys are names the operator chose (`[sets.prefix]`,
/// `[policy]`), as fields.
fn named<'a, 'i>(cx: &Reader, path: &str, t: &'a DeTable<'i>) -> Vec<(String, Field<'a, 'i>)> {
    t.iter()
        .map(|(k, v)| {
            let name = k.get_ref().to_string();
            let f = Field { key: format!("{path}.{name}"), line: cx.line_of(k.span().start), value: v.get_ref() };
            (name, f)
        })
        .collect()
}

/// The table a field holds, or a type error.
fn as_table<'a, 'i>(cx: &mut Reader, f: &Field<'a, 'i>, what: &str) -> Option<&'a DeTable<'i>> {
    match f.value {
        DeValue::Table(t) => Some(t),
        _ => {
            cx.type_error(f, what);
            None
        }
    }
}

/// What `read_policy` gives the configuration.
pub(super) struct PolicyRead {
    pub(super) engine: Engine,
    pub(super) sets: toml::Table,
    pub(super) policy: toml::Table,
    pub(super) blackhole: toml::Table,
}

/// `[sets]` and `[policy]` from the root, then each peer's chains resolved.
pub(super) fn read_policy(cx: &mut Reader, top: &mut Table<'_, '_>, peers: &[(IpAddr, PeerChains)]) -> PolicyRead {
    let mut engine = Engine::default();
    let sets_field = top.get(cx, "sets");
    let sets_toml = sets_field.as_ref().map(|f| to_toml_table(f.value)).unwrap_or_default();
    if let Some(f) = &sets_field {
        if let Some(t) = as_table(cx, f, "a table ([sets.prefix], [sets.asn], ...)") {
            engine.sets = read_sets(cx, t);
        }
    }
    let policy_field = top.get(cx, "policy");
    let policy_toml = policy_field.as_ref().map(|f| to_toml_table(f.value)).unwrap_or_default();
    if let Some(f) = &policy_field {
        if let Some(t) = as_table(cx, f, "a table ([[policy.NAME.term]])") {
            for (name, pf) in named(cx, "policy", t) {
                if let Some(p) = read_one_policy(cx, &engine.sets, &name, &pf) {
                    engine.policies.push(p);
                }
            }
        }
    }
    let policy_names: Vec<String> = engine.policies.iter().map(|p| p.name.clone()).collect();
    for (addr, chains) in peers {
        let mut pp = PeerPolicy { route_server: chains.route_server, ..Default::default() };
        for (names, out) in [(&chains.import, &mut pp.import), (&chains.export, &mut pp.export)] {
            for (name, line, key) in names {
                match policy_names.iter().position(|n| n == name) {
                    Some(i) => out.push(i),
                    None => cx.error(Some(*line), key, no_such("policy", name, &policy_names)),
                }
            }
        }
        if pp != PeerPolicy::default() {
            engine.peers.insert(*addr, pp);
        }
    }
    let mut bt = top.table(cx, "blackhole");
    let blackhole = bt.entries.map(|t| to_toml_table(&DeValue::Table(t.clone()))).unwrap_or_default();
    engine.blackhole = read_blackhole(cx, &mut bt, &engine.sets, peers);
    bt.finish(cx);
    PolicyRead { engine, sets: sets_toml, policy: policy_toml, blackhole }
}

/// `[blackhole]` (RFC 7999).
fn read_blackhole(
    cx: &mut Reader,
    t: &mut Table<'_, '_>,
    s: &Sets,
    peers: &[(IpAddr, PeerChains)],
) -> crate::policy::Blackhole {
    let mut b = crate::policy::Blackhole::default();
    if let Some(f) = t.get(cx, "accept_from") {
        match f.value {
            // A string that names no neighbor: an AS set.
            DeValue::String(name)
                if !peers.iter().any(|(a, c)| c.name.as_deref() == Some(name) || a.to_string() == **name) =>
            {
                b.accept_from_asns = asn_set_ref(cx, s, &f);
            }
            _ => {
                for it in string_list(cx, &f) {
                    let Some(w) = cx.str(&it) else { continue };
                    match peers.iter().find(|(a, c)| c.name.as_deref() == Some(w) || a.to_string() == w) {
                        Some((a, _)) => b.accept_from.push(*a),
                        None => cx.at(&it, format!("no [[peers]] entry is named or has address '{w}'")),
                    }
                }
            }
        }
    }
    if let Some(v) = t.get(cx, "max_prefix_len_v4").and_then(|f| cx.int_in(&f, 0u8, 32, "max_prefix_len_v4", "")) {
        b.min_len_v4 = v;
    }
    if let Some(v) = t.get(cx, "max_prefix_len_v6").and_then(|f| cx.int_in(&f, 0u8, 128, "max_prefix_len_v6", "")) {
        b.min_len_v6 = v;
    }
    if let Some(v) = t.get(cx, "require_covering").and_then(|f| cx.bool(&f)) {
        b.require_covering = v;
    }
    if let Some(f) = t.get(cx, "discard_next_hop_v4") {
        if let Some(a) = cx.parsed::<std::net::Ipv4Addr>(&f, |s| format!("'{s}' is not an IPv4 address")) {
            b.discard_v4 = a;
        }
    }
    if let Some(f) = t.get(cx, "discard_next_hop_v6") {
        if let Some(a) = cx.parsed::<std::net::Ipv6Addr>(&f, |s| format!("'{s}' is not an IPv6 address")) {
            b.discard_v6 = a;
        }
    }
    b
}

fn no_such(what: &str, name: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("no {what} is called '{name}' (none is defined)")
    } else {
        format!("no {what} is called '{name}'; defined: {}", known.join(", "))
    }
}

const SET_KINDS: &[&str] = &["prefix", "asn", "community", "large_community", "ext_community", "as_path"];

fn read_sets(cx: &mut Reader, t: &DeTable<'_>) -> Sets {
    let mut s = Sets::default();
    let kinds = named(cx, "sets", t);
    // AS sets first: AS_PATH sets name them.
    let order = ["prefix", "asn", "community", "large_community", "ext_community", "as_path"];
    for want in order {
        for (kind, f) in kinds.iter().filter(|(k, _)| k == want) {
            let Some(tab) = as_table(cx, f, &format!("a table ([sets.{kind}])")) else { continue };
            for (name, nf) in named(cx, &f.key, tab) {
                read_one_set(cx, &mut s, kind, name, &nf);
            }
        }
    }
    for (kind, f) in &kinds {
        if !SET_KINDS.contains(&kind.as_str()) {
            cx.at(f, format!("unknown set kind '{kind}'; known kinds: {}", SET_KINDS.join(", ")));
        }
    }
    s
}

fn read_one_set(cx: &mut Reader, s: &mut Sets, kind: &str, name: String, f: &Field<'_, '_>) {
    let taken = match kind {
        "prefix" => sets::index_of(&s.prefix, &name).is_some(),
        "asn" => sets::index_of(&s.asn, &name).is_some(),
        "community" => sets::index_of(&s.community, &name).is_some(),
        "large_community" => sets::index_of(&s.large_community, &name).is_some(),
        "ext_community" => sets::index_of(&s.ext_community, &name).is_some(),
        _ => sets::index_of(&s.as_path, &name).is_some(),
    };
    if taken {
        cx.at(f, format!("{kind} set '{name}' is defined twice"));
        return;
    }
    if kind == "as_path" {
        if let Some(p) = read_as_path_set(cx, s, f) {
            s.as_path.push((name, p));
        }
        return;
    }
    if !matches!(f.value, DeValue::Array(_)) {
        cx.type_error(f, "an array of entries");
        return;
    }
    let items = string_list(cx, f);
    let mut bad = false;
    macro_rules! each {
        ($parse:expr) => {{
            let mut v = Vec::new();
            for it in &items {
                match $parse(cx, it) {
                    Some(x) => v.push(x),
                    None => bad = true,
                }
            }
            v
        }};
    }
    match kind {
        "prefix" => {
            let v: Vec<PrefixRange> =
                each!(|cx: &mut Reader, it: &Field<'_, '_>| str_parse(cx, it, PrefixRange::parse));
            if !bad {
                s.prefix.push((name, PrefixSet::new(&v)));
            }
        }
        "asn" => {
            let v: Vec<(u32, u32)> = each!(|cx: &mut Reader, it: &Field<'_, '_>| match it.value {
                DeValue::Integer(_) => cx.int_in(it, 0u32, u32::MAX, "AS number", "").map(|a| (a, a)),
                _ => str_parse(cx, it, parse_asn_range),
            });
            if !bad {
                s.asn.push((name, AsnSet::new(v)));
            }
        }
        "community" => {
            let v = each!(|cx: &mut Reader, it: &Field<'_, '_>| str_parse(cx, it, CommunityPattern::parse));
            if !bad {
                s.community.push((name, CommunitySet::new(v)));
            }
        }
        "large_community" => {
            let v = each!(|cx: &mut Reader, it: &Field<'_, '_>| str_parse(cx, it, LargePattern::parse));
            if !bad {
                s.large_community.push((name, LargeSet::new(v)));
            }
        }
        _ => {
            let v: Vec<u64> = each!(|cx: &mut Reader, it: &Field<'_, '_>| str_parse(cx, it, parse_ext_community));
            if !bad {
                s.ext_community.push((name, v.into_iter().collect::<sets::FastSet<u64>>()));
            }
        }
    }
}

/// A string item parsed by `p`, or its message at the item's line.
fn str_parse<T>(cx: &mut Reader, it: &Field<'_, '_>, p: impl Fn(&str) -> Result<T, String>) -> Option<T> {
    let st = cx.str(it)?;
    p(st).map_err(|e| cx.at(it, e)).ok()
}

/// An AS set named by `f` (a string), or an error naming the sets there are.
fn asn_set_ref(cx: &mut Reader, s: &Sets, f: &Field<'_, '_>) -> Option<usize> {
    let name = cx.str(f)?;
    let i = sets::index_of(&s.asn, name);
    if i.is_none() {
        let known: Vec<String> = s.asn.iter().map(|(n, _)| n.clone()).collect();
        cx.at(f, no_such("asn set", name, &known));
    }
    i
}

fn read_as_path_set(cx: &mut Reader, s: &mut Sets, f: &Field<'_, '_>) -> Option<AsPathSet> {
    let DeValue::Table(t) = f.value else {
        cx.type_error(f, "a table ([sets.as_path.NAME] with origin_in, peer_as, contains_any, length)");
        return None;
    };
    let mut p = AsPathSet::default();
    let mut ok = true;
    for (key, kf) in named(cx, &f.key, t) {
        match key.as_str() {
            "origin_in" => {
                p.origin_in = asn_set_ref(cx, s, &kf).or_else(|| {
                    ok = false;
                    None
                })
            }
            "contains_any" => {
                p.contains_any = asn_set_ref(cx, s, &kf).or_else(|| {
                    ok = false;
                    None
                })
            }
            "peer_as" => {
                // An AS number, or the name of an AS set.
                if let DeValue::Integer(_) = kf.value {
                    match cx.asn(&kf) {
                        Some(a) => {
                            let name = format!("{}#peer_as", kf.key);
                            s.asn.push((name, AsnSet::new(vec![(a, a)])));
                            p.peer_as = Some(s.asn.len() - 1);
                        }
                        None => ok = false,
                    }
                } else {
                    p.peer_as = asn_set_ref(cx, s, &kf).or_else(|| {
                        ok = false;
                        None
                    });
                }
            }
            "length" => {
                let st = match kf.value {
                    DeValue::Integer(i) => Some(i.as_str().to_string()),
                    _ => cx.str(&kf).map(str::to_string),
                };
                match st.map(|st| LengthTest::parse(&st)) {
                    Some(Ok(l)) => p.length = Some(l),
                    Some(Err(e)) => {
                        cx.at(&kf, e);
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            "regex" => match cx.str(&kf).map(crate::policy::path_regex::PathRegex::new) {
                Some(Ok(re)) => p.regex = Some(re),
                Some(Err(e)) => {
                    cx.at(&kf, e);
                    ok = false;
                }
                None => ok = false,
            },
            other => {
                cx.at(
                    &kf,
                    format!("unknown key '{other}'; known keys: origin_in, peer_as, contains_any, length, regex"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(p)
}

const TERM_KEYS: &[&str] = &["match", "set", "action"];
const MATCH_KEYS: &[&str] = &[
    "prefix_in",
    "prefix_len",
    "afi",
    "neighbor_in",
    "origin_in",
    "as_path",
    "community_any",
    "community_all",
    "community_none",
    "large_community_any",
    "large_community_all",
    "large_community_none",
    "ext_community_any",
    "ext_community_all",
    "ext_community_none",
    "next_hop_in",
    "rpki",
    "aspa",
    "otc_leak",
    "blackhole",
];
const SET_KEYS: &[&str] = &[
    "local_pref",
    "med",
    "med_add",
    "community_add",
    "community_remove",
    "large_community_add",
    "large_community_remove",
    "next_hop",
    "prepend",
];

fn unknown(cx: &mut Reader, f: &Field<'_, '_>, name: &str, known: &[&str]) {
    let mut m = format!("unknown key '{name}'");
    if let Some(c) = super::reader::closest(name, known) {
        m.push_str(&format!(" (did you mean '{c}'?)"));
    }
    m.push_str(&format!("; known keys: {}", known.join(", ")));
    cx.at(f, m);
}

fn read_one_policy(cx: &mut Reader, s: &Sets, name: &str, f: &Field<'_, '_>) -> Option<Policy> {
    let t = as_table(cx, f, &format!("a table ([[policy.{name}.term]], [policy.{name}] default)"))?;
    let mut p = Policy { name: name.to_string(), terms: Vec::new(), default: None };
    for (key, kf) in named(cx, &f.key, t) {
        match key.as_str() {
            "default" => {
                p.default = match cx.str(&kf) {
                    Some("accept") => Some(Action::Accept),
                    Some("reject") => Some(Action::Reject),
                    Some(o) => {
                        cx.at(&kf, format!("default must be \"accept\" or \"reject\", got \"{o}\""));
                        None
                    }
                    None => None,
                }
            }
            "term" => {
                let DeValue::Array(items) = kf.value else {
                    cx.type_error(&kf, &format!("an array of tables ([[policy.{name}.term]])"));
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let tf = Field {
                        key: format!("{}[{i}]", kf.key),
                        line: cx.line_of(item.span().start),
                        value: item.get_ref(),
                    };
                    if let Some(term) = read_term(cx, s, &tf) {
                        p.terms.push(term);
                    }
                }
            }
            other => unknown(cx, &kf, other, &["term", "default"]),
        }
    }
    Some(p)
}

fn read_term(cx: &mut Reader, s: &Sets, f: &Field<'_, '_>) -> Option<Term> {
    let t = as_table(cx, f, "a table")?;
    let mut term = Term { line: f.line, matches: Vec::new(), set: Vec::new(), action: Action::Next };
    let mut ok = true;
    for (key, kf) in named(cx, &f.key, t) {
        match key.as_str() {
            "action" => match cx.str(&kf) {
                Some("accept") => term.action = Action::Accept,
                Some("reject") => term.action = Action::Reject,
                Some("next") => term.action = Action::Next,
                Some(o) => {
                    cx.at(&kf, format!("action must be \"accept\", \"reject\" or \"next\", got \"{o}\""));
                    ok = false;
                }
                None => ok = false,
            },
            "match" => {
                let Some(mt) = as_table(cx, &kf, "an inline table such as { prefix_in = \"bogons\" }") else {
                    ok = false;
                    continue;
                };
                for (mk, mf) in named(cx, &kf.key, mt) {
                    match read_match(cx, s, &mk, &mf) {
                        Some(m) => term.matches.push(m),
                        None => ok = false,
                    }
                }
            }
            "set" => {
                let Some(st) = as_table(cx, &kf, "an inline table such as { local_pref = 200 }") else {
                    ok = false;
                    continue;
                };
                for (sk, sf) in named(cx, &kf.key, st) {
                    match read_set(cx, s, &sk, &sf) {
                        Some(a) => term.set.push(a),
                        None => ok = false,
                    }
                }
            }
            other => {
                unknown(cx, &kf, other, TERM_KEYS);
                ok = false;
            }
        }
    }
    ok.then_some(term)
}

/// A set of `kind` named by the string in `f`: its index, or an error listing the sets of
/// that kind.
fn set_ref<T>(cx: &mut Reader, f: &Field<'_, '_>, kind: &str, list: &[(String, T)]) -> Option<usize> {
    let name = cx.str(f)?;
    let i = sets::index_of(list, name);
    if i.is_none() {
        let known: Vec<String> = list.iter().map(|(n, _)| n.clone()).filter(|n| !n.contains('#')).collect();
        cx.at(f, no_such(&format!("{kind} set"), name, &known));
    }
    i
}

fn read_match(cx: &mut Reader, s: &Sets, key: &str, f: &Field<'_, '_>) -> Option<Match> {
    let q = |k: &str| -> Quantifier {
        if k.ends_with("_any") {
            Quantifier::Any
        } else if k.ends_with("_all") {
            Quantifier::All
        } else {
            Quantifier::None
        }
    };
    Some(match key {
        "prefix_in" => Match::PrefixIn(set_ref(cx, f, "prefix", &s.prefix)?),
        "prefix_len" => {
            let (lo, hi) = match f.value {
                DeValue::Integer(_) => {
                    let n = cx.int_in(f, 0u8, 128, "prefix_len", "")?;
                    (n, n)
                }
                _ => {
                    let st = cx.str(f)?;
                    let parse = |w: &str| w.trim().parse::<u8>().ok().filter(|n| *n <= 128);
                    match st.split_once("..").map(|(a, b)| (parse(a), parse(b))) {
                        Some((Some(a), Some(b))) if a <= b => (a, b),
                        _ => {
                            cx.at(f, format!("prefix_len must be N or \"A..B\" with 0 <= A <= B <= 128, got \"{st}\""));
                            return None;
                        }
                    }
                }
            };
            Match::PrefixLen(lo, hi)
        }
        "afi" => match cx.str(f)? {
            "ipv4" => Match::Afi(Family::Ipv4Unicast),
            "ipv6" => Match::Afi(Family::Ipv6Unicast),
            o => {
                cx.at(f, format!("afi must be \"ipv4\" or \"ipv6\", got \"{o}\""));
                return None;
            }
        },
        "neighbor_in" => {
            // An AS set (the peer's AS) or a prefix set (the peer's address).
            let name = cx.str(f)?;
            match (sets::index_of(&s.asn, name), sets::index_of(&s.prefix, name)) {
                (Some(i), _) => Match::NeighborAsIn(i),
                (None, Some(i)) => Match::NeighborAddrIn(i),
                (None, None) => {
                    cx.at(f, format!("no asn set or prefix set is called '{name}' (neighbor_in names one of them)"));
                    return None;
                }
            }
        }
        "origin_in" => Match::OriginIn(set_ref(cx, f, "asn", &s.asn)?),
        "as_path" => Match::AsPath(set_ref(cx, f, "as_path", &s.as_path)?),
        k @ ("community_any" | "community_all" | "community_none") => {
            Match::Community(q(k), set_ref(cx, f, "community", &s.community)?)
        }
        k @ ("large_community_any" | "large_community_all" | "large_community_none") => {
            Match::LargeCommunity(q(k), set_ref(cx, f, "large_community", &s.large_community)?)
        }
        k @ ("ext_community_any" | "ext_community_all" | "ext_community_none") => {
            Match::ExtCommunity(q(k), set_ref(cx, f, "ext_community", &s.ext_community)?)
        }
        "next_hop_in" => Match::NextHopIn(set_ref(cx, f, "prefix", &s.prefix)?),
        "rpki" => {
            let mut states = Vec::new();
            for it in string_list(cx, f) {
                match cx.str(&it)? {
                    "valid" => states.push(RovState::Valid),
                    "invalid" => states.push(RovState::Invalid),
                    "not_found" | "notfound" | "unknown" => states.push(RovState::NotFound),
                    o => {
                        cx.at(&it, format!("rpki states are \"valid\", \"invalid\" and \"not_found\", got \"{o}\""));
                        return None;
                    }
                }
            }
            Match::Rpki(states)
        }
        "aspa" => {
            let mut states = Vec::new();
            for it in string_list(cx, f) {
                let name = cx.str(&it)?;
                match AspaState::parse(name) {
                    Some(a) => states.push(a),
                    None => {
                        cx.at(&it, format!("aspa states are \"valid\", \"invalid\" and \"unknown\", got \"{name}\""));
                        return None;
                    }
                }
            }
            Match::Aspa(states)
        }
        "otc_leak" => Match::OtcLeak(cx.bool(f)?),
        "blackhole" => Match::Blackhole(cx.bool(f)?),
        other => {
            unknown(cx, f, other, MATCH_KEYS);
            return None;
        }
    })
}

/// The values of an `*_add` key: every pattern must be a literal value (`None`: a wildcard).
fn literal_values<T>(
    cx: &mut Reader,
    f: &Field<'_, '_>,
    key: &str,
    values: impl IntoIterator<Item = Option<T>>,
) -> Option<Vec<T>> {
    let v: Option<Vec<T>> = values.into_iter().collect();
    if v.is_none() {
        cx.at(f, format!("{key} takes values, not wildcards (*)"));
    }
    v
}

fn read_set(cx: &mut Reader, s: &Sets, key: &str, f: &Field<'_, '_>) -> Option<SetAction> {
    // Communities to add: literal values (or a set without wildcards); to remove: patterns
    // (or a set's entries).
    let community_patterns = |cx: &mut Reader, f: &Field<'_, '_>| -> Option<Vec<CommunityPattern>> {
        if let DeValue::String(name) = f.value {
            if !name.contains(':') {
                if let Some(i) = sets::index_of(&s.community, name) {
                    return Some(s.community[i].1.entries.clone());
                }
                if CommunityPattern::parse(name).is_err() {
                    let known: Vec<String> = s.community.iter().map(|(n, _)| n.clone()).collect();
                    cx.at(f, no_such("community set", name, &known));
                    return None;
                }
            }
        }
        let mut v = Vec::new();
        for it in string_list(cx, f) {
            let st = cx.str(&it)?;
            match CommunityPattern::parse(st) {
                Ok(p) => v.push(p),
                Err(e) => {
                    cx.at(&it, e);
                    return None;
                }
            }
        }
        Some(v)
    };
    let large_patterns = |cx: &mut Reader, f: &Field<'_, '_>| -> Option<Vec<LargePattern>> {
        if let DeValue::String(name) = f.value {
            if let Some(i) = sets::index_of(&s.large_community, name) {
                return Some(s.large_community[i].1.entries.clone());
            }
        }
        let mut v = Vec::new();
        for it in string_list(cx, f) {
            let st = cx.str(&it)?;
            match LargePattern::parse(st) {
                Ok(p) => v.push(p),
                Err(e) => {
                    cx.at(&it, format!("{e} (or the name of a large_community set)"));
                    return None;
                }
            }
        }
        Some(v)
    };
    Some(match key {
        "local_pref" => SetAction::LocalPref(cx.int_in(f, 0u32, u32::MAX, "local_pref", "")?),
        "med" => SetAction::Med(cx.int_in(f, 0u32, u32::MAX, "med", "")?),
        "med_add" => SetAction::MedAdd(cx.int_in(f, -i64::from(u32::MAX), i64::from(u32::MAX), "med_add", "")?),
        "community_add" | "community_remove" => {
            let pats = community_patterns(cx, f)?;
            if key == "community_remove" {
                SetAction::CommunityRemove(pats)
            } else {
                SetAction::CommunityAdd(literal_values(cx, f, key, pats.iter().map(|p| p.value()))?)
            }
        }
        "large_community_add" | "large_community_remove" => {
            let pats = large_patterns(cx, f)?;
            if key == "large_community_remove" {
                SetAction::LargeCommunityRemove(pats)
            } else {
                SetAction::LargeCommunityAdd(literal_values(cx, f, key, pats.iter().map(|p| p.value()))?)
            }
        }
        "next_hop" => match cx.str(f)? {
            "self" => SetAction::NextHop(NextHopSet::SelfAddr),
            "discard" => SetAction::NextHop(NextHopSet::Discard),
            a => match a.parse::<IpAddr>() {
                Ok(ip) => SetAction::NextHop(NextHopSet::Addr(ip)),
                Err(_) => {
                    cx.at(f, format!("next_hop must be \"self\", \"discard\" or an IP address, got \"{a}\""));
                    return None;
                }
            },
        },
        "prepend" => SetAction::Prepend(cx.int_in(f, 1u8, 32, "prepend", " times")?),
        other => {
            unknown(cx, f, other, SET_KEYS);
            return None;
        }
    })
}

/// A table of the file as a `toml` value, for the printer.
fn to_toml_table(v: &DeValue<'_>) -> toml::Table {
    match to_toml(v) {
        toml::Value::Table(t) => t,
        _ => toml::Table::new(),
    }
}

fn to_toml(v: &DeValue<'_>) -> toml::Value {
    match v {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => {
            toml::Value::Integer(i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).unwrap_or_default())
        }
        DeValue::Float(x) => toml::Value::Float(x.as_str().replace('_', "").parse().unwrap_or_default()),
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(items) => toml::Value::Array(items.iter().map(|i| to_toml(i.get_ref())).collect()),
        DeValue::Table(t) => {
            toml::Value::Table(t.iter().map(|(k, v)| (k.get_ref().to_string(), to_toml(v.get_ref()))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::policy::{Action, Direction, Match};

    const POLICY: &str = r#"
[sets.prefix]
bogons = ["198.18.0.0/15 orlonger", "10.0.0.0/8 le 32", "2001:db8::/32 ge 48 le 64"]
[sets.asn]
private = ["64512-65534", 4200000000]
[sets.community]
rtbh = ["BLACKHOLE", "65535:666", "64496:*"]
[sets.as_path.long]
length = ">=50"
origin_in = "private"

[[policy.import_std.term]]
match = { prefix_in = "bogons" }
action = "reject"
[[policy.import_std.term]]
match = { community_any = "rtbh", as_path = "long" }
set = { local_pref = 200, community_add = ["65001:1"] }
action = "accept"
[policy.import_std]
default = "accept"
"#;

    #[test]
    fn the_issue_example_compiles_sets_terms_and_a_peers_chain() {
        let c = ok(&format!("{}import = [\"import_std\"]\n{POLICY}", MINIMAL));
        let e = &c.policies;
        assert_eq!(e.policies.len(), 1);
        let p = &e.policies[0];
        assert_eq!((p.name.as_str(), p.terms.len(), p.default), ("import_std", 2, Some(Action::Accept)));
        assert_eq!(p.terms[0].matches, vec![Match::PrefixIn(0)]);
        assert_eq!(p.terms[1].line, 23, "the line of its [[policy.import_std.term]] header");
        assert_eq!(e.chain(&c.peers[0].address, Direction::Import), &[0]);
        assert_eq!(c.peers[0].import, vec!["import_std".to_string()]);
        // Printed back, it reads back the same.
        let again = ok(&c.effective_toml());
        assert_eq!(again.policies.policies[0].terms[1].set, p.terms[1].set);
        assert_eq!(again.peers[0].import, c.peers[0].import);
    }

    #[test]
    fn undefined_names_unknown_keys_and_bad_aspa_states_are_load_errors_with_file_line_and_key() {
        let text = format!(
            "{}import = [\"nope\"]\n{POLICY}[[policy.x.term]]\nmatch = {{ prefix_in = \"martians\", aspa = \"fine\", colour = 1 }}\nset = {{ local_pref = -1 }}\naction = \"drop\"\n[sets.as_path.re]\nregex = \"_(65000$\"\n",
            MINIMAL
        );
        let errs = errors(&text);
        let want = [
            "focl.toml:8: peers[0].import[0]: no policy is called 'nope'; defined: import_std, x",
            "focl.toml:30: policy.x.term[0].match.prefix_in: no prefix set is called 'martians'; defined: bogons",
            "focl.toml:30: policy.x.term[0].match.aspa: aspa states are \"valid\", \"invalid\" and \"unknown\", got \"fine\"",
            "focl.toml:30: policy.x.term[0].match.colour: unknown key 'colour'",
            "focl.toml:31: policy.x.term[0].set.local_pref: local_pref must be from 0 to 4294967295, got -1",
            "focl.toml:32: policy.x.term[0].action: action must be \"accept\", \"reject\" or \"next\", got \"drop\"",
            "focl.toml:34: sets.as_path.re.regex: the regex \"_(65000$\" does not compile:",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.starts_with(w)), "missing {w} in {errs:#?}");
        }
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
    }

    #[test]
    fn add_actions_refuse_wildcards_and_name_their_key() {
        let errs = errors(&format!(
            "{MINIMAL}[[policy.w.term]]\nset = {{ community_add = [\"65000:*\"], large_community_add = [\"1:2:*\"] }}\naction = \"accept\"\n"
        ));
        for key in ["community_add", "large_community_add"] {
            let w = format!("policy.w.term[0].set.{key}: {key} takes values, not wildcards (*)");
            assert!(errs.iter().any(|e| e.contains(&w)), "missing {w} in {errs:#?}");
        }
        assert_eq!(errs.len(), 2, "{errs:#?}");
    }

    #[test]
    fn bad_set_entries_name_the_entry_and_its_line() {
        let errs = errors(&format!(
            "{MINIMAL}[sets.prefix]\nx = [\"10.0.0.0/8 le 4\"]\n[sets.community]\nc = [\"1:70000\"]\n[sets.asn]\na = [\"9-1\"]\n[sets.colour]\n"
        ));
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].starts_with("focl.toml:9: sets.prefix.x[0]: '10.0.0.0/8 le 4': the lengths must satisfy"));
        assert!(errs[1].starts_with("focl.toml:11: sets.community.c[0]: '1:70000' is not a community"));
        assert!(errs[2].starts_with("focl.toml:13: sets.asn.a[0]: '9-1'"));
        assert!(errs[3].starts_with("focl.toml:14: sets.colour: unknown set kind 'colour'"));
    }

    #[test]
    fn every_match_and_set_key_is_read() {
        let c = ok(&format!(
            r#"{MINIMAL}export = "all"
[sets.prefix]
p = ["0.0.0.0/0 orlonger"]
[sets.asn]
a = [1]
[sets.community]
c = ["1:1"]
[sets.large_community]
l = ["1:2:3", "4:*:*"]
[sets.ext_community]
e = ["rt:65000:1"]
[sets.as_path.ap]
peer_as = 65002
contains_any = "a"
length = "1..10"
[[policy.all.term]]
match = {{ prefix_in = "p", prefix_len = "8..24", afi = "ipv4", neighbor_in = "a", origin_in = "a", as_path = "ap", community_all = "c", community_none = "c", large_community_any = "l", ext_community_none = "e", next_hop_in = "p", rpki = ["valid", "not_found"], aspa = ["valid", "unknown"], otc_leak = false, blackhole = true }}
set = {{ local_pref = 1, med = 2, med_add = -3, community_add = "NO_EXPORT", community_remove = ["1:*"], large_community_add = ["1:2:3"], large_community_remove = "l", next_hop = "discard", prepend = 2 }}
action = "next"
"#
        ));
        let t = &c.policies.policies[0].terms[0];
        assert_eq!((t.matches.len(), t.set.len(), t.action), (15, 9, Action::Next));
        assert!(t
            .matches
            .contains(&Match::Aspa(vec![crate::rpki::aspa::AspaState::Valid, crate::rpki::aspa::AspaState::Unknown])));
        assert_eq!(c.peers[0].export, vec!["all".to_string()]);
    }
}
