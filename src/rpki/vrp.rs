//! Pure: Validated ROA Payloads and route origin validation (RFC 6811).
//!
//! A `VrpTable` is the union of every source in use (caches and files), built by the RTR
//! thread and handed out as an immutable snapshot; `validate` is the RFC 6811 §2 procedure.

use super::aspa::{AspaRecords, AspaTable};
pub use super::packed::VrpSet;
use super::packed::{FamilyTable, Packed, V6};
use crate::prefix::Prefix;
use serde::{Deserialize, Serialize};

/// One VRP: `asn` may originate `prefix` and its more-specifics up to `max_len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vrp {
    pub prefix: Prefix,
    pub max_len: u8,
    pub asn: u32,
}

/// RFC 6811 §2 validation states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RovState {
    Valid,
    Invalid,
    NotFound,
}

impl RovState {
    pub fn name(self) -> &'static str {
        match self {
            RovState::Valid => "valid",
            RovState::Invalid => "invalid",
            RovState::NotFound => "not-found",
        }
    }
}

/// VRPs indexed by prefix, with the prefix lengths present per family so a lookup probes
/// only lengths that exist.
#[derive(Clone, Debug, Default)]
pub struct VrpTable {
    v4: FamilyTable<u32>,
    v6: FamilyTable<V6>,
    /// Where the VRPs came from (filled by the RTR thread): archived beside each RIB snapshot
    /// so the validation state of the dump can be reproduced.
    pub sources: Vec<VrpSource>,
    /// The ASPA records in use beside the VRPs (the same sources).
    pub aspas: AspaTable,
    /// `[rpki]` has a cache or a file: routes have an origin validation state (not found,
    /// while no VRP is in use) rather than none.
    pub configured: bool,
}

/// One source of a `VrpTable`: an RTR cache in use or a VRP file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrpSource {
    /// "cache" or "file".
    pub kind: String,
    /// `address:port` of a cache, the path of a file.
    pub name: String,
    /// RTR protocol version, session id and serial of a cache (RFC 8210 §5.1, §5.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    /// VRPs this source holds (before the union removes duplicates).
    pub vrps: u64,
    /// ASPA records (customer ASes) it holds.
    #[serde(default)]
    pub aspas: u64,
    /// Unix time of the cache's last End of Data, or of the file's last successful read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<u64>,
}

impl VrpTable {
    /// The union of the sources' sets.
    pub fn from_sets<'a>(sets: impl IntoIterator<Item = &'a VrpSet>) -> VrpTable {
        let sets: Vec<&VrpSet> = sets.into_iter().collect();
        VrpTable {
            v4: FamilyTable::union(sets.iter().map(|s| &s.v4)),
            v6: FamilyTable::union(sets.iter().map(|s| &s.v6)),
            ..VrpTable::default()
        }
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether routes are validated: RPKI is configured or VRPs are in use.
    pub fn in_use(&self) -> bool {
        self.configured || !self.is_empty()
    }

    /// Every VRP whose prefix covers `p` (RFC 6811 §2 "Covering VRPs"), shortest first.
    pub fn covering(&self, p: &Prefix) -> Vec<Vrp> {
        self.covering_iter(p).collect()
    }

    /// `covering` without collecting: probes only the prefix lengths that have VRPs.
    pub fn covering_iter(&self, p: &Prefix) -> impl Iterator<Item = Vrp> + '_ {
        let (a, b) = match *p {
            Prefix::V4 { addr, len } => (Some(self.v4.covering(addr, len)), None),
            Prefix::V6 { addr, len } => (None, Some(self.v6.covering(((addr >> 64) as u64, addr as u64), len))),
        };
        a.into_iter().flatten().map(Packed::vrp).chain(b.into_iter().flatten().map(Packed::vrp))
    }

    /// RFC 6811 §2 for `p` from `origin`, with the VRPs that decide it (`focl rpki lookup`).
    pub fn validate(&self, p: &Prefix, origin: Option<u32>) -> (RovState, Vec<Vrp>) {
        let covering = self.covering(p);
        (state_among(covering.iter().copied(), p.len(), origin), covering)
    }

    /// `validate` without the covering list (no allocation): the state of a route as it
    /// arrives in the RIB.
    pub fn state(&self, p: &Prefix, origin: Option<u32>) -> RovState {
        // `state_among` on the packed entries, without making a `Vrp` of each.
        match *p {
            Prefix::V4 { addr, len } => state_of(self.v4.covering(addr, len).map(|e| (e.max, e.asn)), len, origin),
            Prefix::V6 { addr, len } => {
                let cover = self.v6.covering(((addr >> 64) as u64, addr as u64), len);
                state_of(cover.map(|e| (e.max, e.asn)), len, origin)
            }
        }
    }
}

/// `state_among` over (max length, AS) pairs.
fn state_of(covering: impl Iterator<Item = (u8, u32)>, len: u8, origin: Option<u32>) -> RovState {
    let mut covered = false;
    for (max_len, asn) in covering {
        covered = true;
        if origin.is_some_and(|o| asn != 0 && asn == o) && len <= max_len {
            return RovState::Valid;
        }
    }
    if covered {
        RovState::Invalid
    } else {
        RovState::NotFound
    }
}

/// RFC 6811 §2 over a prefix's covering VRPs: Valid when one matches the origin AS and the
/// length `len`, Invalid when VRPs cover the prefix but none matches, NotFound when none covers
/// it. A route with no origin AS (an empty path, or one ending in an AS_SET) matches no VRP; AS
/// 0 in a VRP matches no route (RFC 6483 §4).
pub fn state_among(covering: impl IntoIterator<Item = Vrp>, len: u8, origin: Option<u32>) -> RovState {
    state_of(covering.into_iter().map(|v| (v.max_len, v.asn)), len, origin)
}

impl VrpTable {
    /// Every VRP, ordered by prefix (IPv4 first), then maxLength, then AS: the same table
    /// always gives the same sequence.
    pub fn sorted(&self) -> Vec<Vrp> {
        self.v4.entries().iter().map(Packed::vrp).chain(self.v6.entries().iter().map(Packed::vrp)).collect()
    }

    /// The table as the rpki-client / stayrtr JSON file (`parse_json` reads it back), with a
    /// `metadata` object carrying `extra` (what the file belongs to) and the sources.
    pub fn write_json(&self, extra: serde_json::Value, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let metadata = serde_json::json!({
            "generator": "focld",
            "vrps": self.len(),
            "sources": self.sources,
            "of": extra,
        });
        out.write_all(b"{\"metadata\":")?;
        serde_json::to_writer(&mut *out, &metadata)?;
        out.write_all(b",\n\"roas\":[")?;
        for (i, v) in self.sorted().iter().enumerate() {
            let sep = if i == 0 { "\n" } else { ",\n" };
            write!(out, "{sep}{{\"prefix\":\"{}\",\"maxLength\":{},\"asn\":{}}}", v.prefix, v.max_len, v.asn)?;
        }
        out.write_all(b"\n],\n\"aspas\":[")?;
        for (i, (customer, providers)) in self.aspas.sorted().iter().enumerate() {
            let sep = if i == 0 { "\n" } else { ",\n" };
            write!(out, "{sep}{{\"customer_asid\":{customer},\"providers\":")?;
            serde_json::to_writer(&mut *out, providers)?;
            out.write_all(b"}")?;
        }
        out.write_all(b"\n]}\n")
    }

    /// The VRP prefixes whose VRPs differ between `old` and `self`: only routes inside them
    /// can change state, so only those are validated again.
    pub fn changed_prefixes(&self, old: &VrpTable) -> Vec<Prefix> {
        let mut out = Vec::new();
        self.v4.changed(&old.v4, &mut out);
        self.v6.changed(&old.v6, &mut out);
        out
    }
}

/// The rpki-client / stayrtr JSON file (`{"roas": [{"prefix", "maxLength", "asn"}]}`; `asn`
/// a number or "AS65008"), as VRPs. Errors name the entry.
pub fn parse_json(text: &str) -> Result<VrpSet, String> {
    parse_file(text).map(|(vrps, _)| vrps)
}

/// AS numbers in these files: a number, or a string with or without "AS".
fn asn_of(v: &serde_json::Value) -> Option<u32> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|a| u32::try_from(a).ok()),
        serde_json::Value::String(s) => s.strip_prefix("AS").unwrap_or(s).parse().ok(),
        _ => None,
    }
}

/// `parse_json` and the file's ASPA records (`"aspas": [{"customer_asid", "providers"}]`, as
/// rpki-client writes them; `customer` is read too), by customer AS (several records of one
/// customer are united). Errors name the entry.
pub fn parse_file(text: &str) -> Result<(VrpSet, AspaRecords), String> {
    #[derive(Deserialize)]
    struct File {
        roas: Vec<Roa>,
        #[serde(default)]
        aspas: Vec<Aspa>,
    }
    #[derive(Deserialize)]
    struct Aspa {
        #[serde(alias = "customer")]
        customer_asid: serde_json::Value,
        providers: Vec<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct Roa {
        prefix: String,
        #[serde(rename = "maxLength")]
        max_length: Option<u8>,
        asn: serde_json::Value,
    }
    let f: File = serde_json::from_str(text).map_err(|e| format!("not a VRP file (rpki-client JSON): {e}"))?;
    let mut out = Vec::new();
    for (i, r) in f.roas.iter().enumerate() {
        let prefix: Prefix = r.prefix.parse().map_err(|e| format!("roas[{i}]: prefix '{}': {e}", r.prefix))?;
        let asn = asn_of(&r.asn).ok_or_else(|| format!("roas[{i}]: asn {} is not an AS number", r.asn))?;
        let max_len = r.max_length.unwrap_or(prefix.len());
        let family_max = if prefix.addr().is_ipv4() { 32 } else { 128 };
        if max_len < prefix.len() || max_len > family_max {
            return Err(format!("roas[{i}]: maxLength {max_len} does not fit {prefix}"));
        }
        out.push(Vrp { prefix, max_len, asn });
    }
    let mut aspas = AspaRecords::new();
    for (i, a) in f.aspas.iter().enumerate() {
        let customer = asn_of(&a.customer_asid)
            .ok_or_else(|| format!("aspas[{i}]: customer_asid {} is not an AS number", a.customer_asid))?;
        let providers = a
            .providers
            .iter()
            .map(|p| asn_of(p).ok_or_else(|| format!("aspas[{i}]: provider {p} is not an AS number")))
            .collect::<Result<Vec<u32>, String>>()?;
        if providers.is_empty() {
            return Err(format!("aspas[{i}]: AS{customer} has no providers (an AS0 ASPA lists 0)"));
        }
        aspas.entry(customer).or_default().extend(providers);
    }
    Ok((out.into_iter().collect(), aspas))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().expect("prefix")
    }

    fn table(vrps: &[(&str, u8, u32)]) -> VrpTable {
        let set: VrpSet = vrps.iter().map(|&(s, m, a)| Vrp { prefix: p(s), max_len: m, asn: a }).collect();
        VrpTable::from_sets([&set])
    }

    #[test]
    fn rfc_6811_states_for_length_origin_and_cover() {
        let t = table(&[("192.0.2.0/24", 24, 64496), ("198.51.100.0/22", 24, 64497), ("2001:db8::/32", 48, 64498)]);
        assert_eq!(t.validate(&p("192.0.2.0/24"), Some(64496)).0, RovState::Valid);
        assert_eq!(t.validate(&p("192.0.2.0/24"), Some(64499)).0, RovState::Invalid, "another origin");
        assert_eq!(t.validate(&p("192.0.2.128/25"), Some(64496)).0, RovState::Invalid, "longer than maxLength");
        assert_eq!(t.validate(&p("198.51.101.0/24"), Some(64497)).0, RovState::Valid, "within maxLength");
        assert_eq!(t.validate(&p("198.51.96.0/21"), Some(64497)).0, RovState::NotFound, "less specific: not covered");
        assert_eq!(t.validate(&p("203.0.113.0/24"), Some(64496)).0, RovState::NotFound);
        assert_eq!(t.validate(&p("2001:db8:1::/48"), Some(64498)).0, RovState::Valid);
        assert_eq!(t.validate(&p("2001:db8:1::/49"), Some(64498)).0, RovState::Invalid);
        assert_eq!(t.validate(&p("192.0.2.0/24"), None).0, RovState::Invalid, "an AS_SET origin is never valid");
    }

    #[test]
    fn the_state_alone_agrees_with_the_full_validation() {
        let t = table(&[("192.0.2.0/24", 24, 64496), ("192.0.0.0/16", 20, 0), ("2001:db8::/32", 48, 64498)]);
        for (q, o) in [
            ("192.0.2.0/24", Some(64496)),
            ("192.0.2.0/24", Some(1)),
            ("192.0.2.0/25", Some(64496)),
            ("192.0.16.0/20", Some(64496)),
            ("10.0.0.0/8", Some(64496)),
            ("2001:db8::/48", Some(64498)),
            ("2001:db8::/48", None),
            ("0.0.0.0/0", Some(64496)),
        ] {
            assert_eq!(t.state(&p(q), o), t.validate(&p(q), o).0, "{q} {o:?}");
            assert_eq!(state_among(t.covering(&p(q)), p(q).len(), o), t.validate(&p(q), o).0, "{q} {o:?}");
        }
    }

    #[test]
    fn changed_prefixes_are_those_whose_vrps_differ() {
        let old = table(&[("192.0.2.0/24", 24, 64496), ("198.51.100.0/24", 24, 64497), ("2001:db8::/32", 48, 1)]);
        let new = table(&[("192.0.2.0/24", 24, 64496), ("198.51.100.0/24", 25, 64497), ("203.0.113.0/24", 24, 2)]);
        let mut c = new.changed_prefixes(&old);
        c.sort();
        assert_eq!(c, [p("198.51.100.0/24"), p("203.0.113.0/24"), p("2001:db8::/32")]);
        assert!(new.changed_prefixes(&new).is_empty());
    }

    #[test]
    fn as0_vrps_make_routes_invalid_never_valid() {
        let t = table(&[("192.0.2.0/24", 32, 0)]);
        assert_eq!(t.validate(&p("192.0.2.0/24"), Some(0)).0, RovState::Invalid);
        assert_eq!(t.validate(&p("192.0.2.0/25"), Some(64496)).0, RovState::Invalid);
    }

    #[test]
    fn the_covering_vrps_decide_and_are_listed_shortest_first() {
        let t = table(&[("10.0.0.0/8", 8, 1), ("10.1.0.0/16", 24, 2), ("0.0.0.0/0", 0, 3)]);
        let (state, cover) = t.validate(&p("10.1.2.0/24"), Some(2));
        assert_eq!(state, RovState::Valid);
        let lens: Vec<u8> = cover.iter().map(|v| v.prefix.len()).collect();
        assert_eq!(lens, [0, 8, 16]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn the_same_vrp_from_two_sources_counts_once() {
        let a: VrpSet = [Vrp { prefix: p("192.0.2.0/24"), max_len: 24, asn: 1 }].into_iter().collect();
        let b = a.clone();
        assert_eq!(VrpTable::from_sets([&a, &b]).len(), 1);
    }

    #[test]
    fn the_written_json_reads_back_as_the_same_vrps_in_a_fixed_order() {
        let mut t = table(&[("2001:db8::/32", 48, 3), ("192.0.2.0/24", 24, 1), ("192.0.2.0/24", 25, 2)]);
        t.aspas = AspaTable::from_sets([&AspaRecords::from([(64500, vec![64502, 64501]), (64499, vec![0])])]);
        t.sources.push(VrpSource { kind: "file".into(), name: "/x.json".into(), vrps: 3, ..Default::default() });
        let mut a = Vec::new();
        t.write_json(serde_json::json!({"rib": "rib.x"}), &mut a).expect("written");
        let text = String::from_utf8(a.clone()).expect("utf-8");
        let (back, aspas) = parse_file(&text).expect("parses");
        assert_eq!(back, t.sorted().into_iter().collect::<VrpSet>());
        assert_eq!(AspaTable::from_sets([&aspas]), t.aspas, "the ASPA records too");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["metadata"]["sources"][0]["name"], "/x.json");
        assert_eq!(v["metadata"]["of"]["rib"], "rib.x");
        assert_eq!(v["roas"][0]["prefix"], "192.0.2.0/24", "IPv4 first, ordered");
        assert_eq!(v["roas"][1]["maxLength"], 25);
        let mut b = Vec::new();
        t.clone().write_json(serde_json::json!({"rib": "rib.x"}), &mut b).expect("written");
        assert_eq!(a, b, "the same table gives the same bytes");
    }

    #[test]
    fn aspa_records_read_from_rpki_client_json_and_bad_ones_are_named() {
        let (v, a) = parse_file(r#"{"roas":[],"aspas":[{"customer_asid":64500,"expires":1,"providers":[64501,"AS64502"]},{"customer":"AS64500","providers":[64503]}]}"#).expect("valid");
        assert!(v.is_empty());
        assert_eq!(AspaTable::from_sets([&a]).providers(64500), Some(&[64501, 64502, 64503][..]), "united");
        assert!(parse_file(r#"{"roas":[]}"#).expect("no aspas").1.is_empty());
        let e = parse_file(r#"{"roas":[],"aspas":[{"customer_asid":1,"providers":["x"]}]}"#).unwrap_err();
        assert!(e.contains("aspas[0]: provider \"x\""), "{e}");
        let e = parse_file(r#"{"roas":[],"aspas":[{"customer_asid":1,"providers":[]}]}"#).unwrap_err();
        assert!(e.contains("aspas[0]: AS1 has no providers"), "{e}");
    }

    #[test]
    fn rpki_client_json_reads_with_numbers_or_as_strings_and_names_bad_entries() {
        let s = parse_json(r#"{"roas":[{"prefix":"203.0.113.0/24","maxLength":24,"asn":65008},{"prefix":"2001:db8::/32","maxLength":48,"asn":"AS65009"},{"prefix":"198.51.100.0/24","asn":1}]}"#).expect("valid");
        assert_eq!(s.len(), 3);
        assert!(
            s.contains(&Vrp { prefix: p("198.51.100.0/24"), max_len: 24, asn: 1 }),
            "maxLength defaults to the length"
        );
        let e = parse_json(r#"{"roas":[{"prefix":"203.0.113.0/24","maxLength":20,"asn":1}]}"#).unwrap_err();
        assert!(e.contains("roas[0]") && e.contains("maxLength 20"), "{e}");
        assert!(parse_json(r#"{"roas":[{"prefix":"x","asn":1}]}"#).unwrap_err().contains("roas[0]: prefix 'x'"));
        assert!(parse_json("[]").is_err());
    }
}
