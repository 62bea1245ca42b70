//! `[bmp]` and its `[[bmp.stations]]`: BMP monitoring stations (RFC 7854) focld connects to
//! and exports to (issue 19). The types live here too, so the section is one file.

use super::model::PeerConfig;
use super::reader::{Field, Reader, Table};
use crate::prefix::Family;
use serde::Serialize;
use std::net::IpAddr;
use toml::de::DeValue;

/// `connect_retry_secs` when the file does not set it.
pub const DEFAULT_BMP_CONNECT_RETRY_SECS: u32 = 30;
/// The back-off doubles the retry interval after every failed attempt up to this ceiling.
pub const BMP_CONNECT_RETRY_CEILING_SECS: u32 = 600;
/// `stats_interval_secs` when the file does not set it.
pub const DEFAULT_BMP_STATS_INTERVAL_SECS: u32 = 60;
/// `buffer_limit_mb` when the file does not set it.
pub const DEFAULT_BMP_BUFFER_LIMIT_MB: u32 = 64;

/// What a station is sent (RFC 7854 §2, RFC 8671, RFC 9069).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BmpView {
    /// Adj-RIB-In as received: the UPDATEs' own bytes.
    #[serde(rename = "pre-policy")]
    PrePolicy,
    /// Adj-RIB-In after import policy (L flag): rejected routes left out, `set` edits applied.
    #[serde(rename = "post-policy")]
    PostPolicy,
    /// What focld sends each peer (RFC 8671 post-policy Adj-RIB-Out: O and L flags).
    #[serde(rename = "adj-rib-out")]
    AdjRibOut,
    /// The best paths (RFC 9069: peer type 3, the Loc-RIB pseudo-peer).
    #[serde(rename = "loc-rib")]
    LocRib,
}

impl BmpView {
    pub fn name(self) -> &'static str {
        match self {
            BmpView::PrePolicy => "pre-policy",
            BmpView::PostPolicy => "post-policy",
            BmpView::AdjRibOut => "adj-rib-out",
            BmpView::LocRib => "loc-rib",
        }
    }
}

/// `[bmp]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BmpConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stations: Vec<BmpStationConfig>,
}

impl BmpConfig {
    pub fn is_empty(&self) -> bool {
        self.stations.is_empty()
    }
}

/// `[[bmp.stations]]`: one monitoring station.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BmpStationConfig {
    pub address: IpAddr,
    pub port: u16,
    /// First retry interval after a failed or dropped connection; doubles up to
    /// `BMP_CONNECT_RETRY_CEILING_SECS`.
    pub connect_retry_secs: u32,
    pub monitor: Vec<BmpView>,
    /// RFC 7854 §4.7 Route Mirroring of every received message.
    pub mirroring: bool,
    /// 0: no Statistics Reports.
    pub stats_interval_secs: u32,
    /// `[[peers]]` names or addresses to monitor; empty: all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Families whose routes are sent; empty: all negotiated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<Family>,
    /// Bytes that may wait for the station before its connection is dropped, in MiB.
    pub buffer_limit_mb: u32,
}

impl BmpStationConfig {
    /// `address:port`, for logs and focl.
    pub fn label(&self) -> String {
        std::net::SocketAddr::new(self.address, self.port).to_string()
    }

    /// Whether the station monitors `view`.
    pub fn wants(&self, view: BmpView) -> bool {
        self.monitor.contains(&view)
    }

    /// Whether the peer with this address and name is monitored.
    pub fn monitors_peer(&self, address: &IpAddr, name: Option<&str>) -> bool {
        self.peers.is_empty()
            || self.peers.iter().any(|t| t.parse::<IpAddr>().ok().as_ref() == Some(address) || Some(t.as_str()) == name)
    }

    pub fn buffer_limit_bytes(&self) -> usize {
        (self.buffer_limit_mb as usize).saturating_mul(1024 * 1024)
    }
}

pub(super) fn read_bmp(cx: &mut Reader, t: &mut Table<'_, '_>, peers: &[PeerConfig]) -> BmpConfig {
    let mut stations: Vec<(usize, BmpStationConfig)> = Vec::new();
    for mut st in t.tables(cx, "stations") {
        let (line, path) = (st.line.unwrap_or(0), st.path.clone());
        let station = read_station(cx, &mut st, peers);
        st.finish(cx);
        let Some(s) = station else { continue };
        if let Some((l, _)) = stations.iter().find(|(_, o)| o.address == s.address && o.port == s.port) {
            cx.error(Some(line), &path, format!("the station {} is already listed at line {l}", s.label()));
            continue;
        }
        stations.push((line, s));
    }
    BmpConfig { stations: stations.into_iter().map(|(_, s)| s).collect() }
}

fn read_station(cx: &mut Reader, t: &mut Table<'_, '_>, peers: &[PeerConfig]) -> Option<BmpStationConfig> {
    let address = t.required(cx, "address").and_then(|f| cx.unicast_addr(&f, "station address"));
    // BMP has no well-known port (RFC 7854 §3.2 leaves it to configuration).
    let port = t.required(cx, "port").and_then(|f| cx.int_in(&f, 1, u16::MAX, "port", ""));
    let connect_retry_secs = t
        .get(cx, "connect_retry_secs")
        .and_then(|f| cx.int_in(&f, 1u32, BMP_CONNECT_RETRY_CEILING_SECS, "connect_retry_secs", " seconds"))
        .unwrap_or(DEFAULT_BMP_CONNECT_RETRY_SECS);
    let monitor = match t.get(cx, "monitor") {
        Some(f) => read_views(cx, &f),
        None => Some(vec![BmpView::PrePolicy]),
    };
    let mirroring = t.get(cx, "mirroring").and_then(|f| cx.bool(&f)).unwrap_or(false);
    let stats_interval_secs = t
        .get(cx, "stats_interval_secs")
        .and_then(|f| cx.int_in(&f, 0u32, 86_400, "stats_interval_secs", " seconds (0: no statistics)"))
        .unwrap_or(DEFAULT_BMP_STATS_INTERVAL_SECS);
    let peers = match t.get(cx, "peers") {
        Some(f) => read_peer_list(cx, &f, peers),
        None => Some(Vec::new()),
    };
    let families = match t.get(cx, "families") {
        Some(f) => read_families(cx, &f),
        None => Some(Vec::new()),
    };
    let buffer_limit_mb = t
        .get(cx, "buffer_limit_mb")
        .and_then(|f| cx.int_in(&f, 1u32, 4096, "buffer_limit_mb", " MiB"))
        .unwrap_or(DEFAULT_BMP_BUFFER_LIMIT_MB);
    Some(BmpStationConfig {
        address: address?,
        port: port?,
        connect_retry_secs,
        monitor: monitor?,
        mirroring,
        stats_interval_secs,
        peers: peers?,
        families: families?,
        buffer_limit_mb,
    })
}

/// The strings of an array, each checked by `check` (Err: the message for that entry);
/// duplicates are errors.
fn read_list<T: PartialEq>(
    cx: &mut Reader,
    f: &Field<'_, '_>,
    what: &str,
    check: impl Fn(&str) -> Result<T, String>,
) -> Option<Vec<T>> {
    let DeValue::Array(items) = f.value else {
        cx.type_error(f, &format!("an array of {what}"));
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let entry =
            Field { key: format!("{}[{i}]", f.key), line: cx.line_of(item.span().start), value: item.get_ref() };
        let Some(s) = cx.str(&entry) else {
            ok = false;
            continue;
        };
        match check(s) {
            Ok(v) if out.contains(&v) => {
                cx.at(&entry, format!("'{s}' is listed twice"));
                ok = false;
            }
            Ok(v) => out.push(v),
            Err(m) => {
                cx.at(&entry, m);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn read_views(cx: &mut Reader, f: &Field<'_, '_>) -> Option<Vec<BmpView>> {
    let views = read_list(cx, f, "views", |s| match s {
        "pre-policy" => Ok(BmpView::PrePolicy),
        "post-policy" => Ok(BmpView::PostPolicy),
        "adj-rib-out" => Ok(BmpView::AdjRibOut),
        "loc-rib" => Ok(BmpView::LocRib),
        _ => Err(format!("unknown view '{s}'; known: \"pre-policy\", \"post-policy\", \"adj-rib-out\", \"loc-rib\"")),
    })?;
    if views.is_empty() {
        cx.at(f, "a station needs at least one view to monitor");
        return None;
    }
    Some(views)
}

fn read_peer_list(cx: &mut Reader, f: &Field<'_, '_>, peers: &[PeerConfig]) -> Option<Vec<String>> {
    read_list(cx, f, "peer names or addresses", |s| {
        let known =
            peers.iter().any(|p| p.name.as_deref() == Some(s) || s.parse::<IpAddr>().is_ok_and(|a| a == p.address));
        if known {
            Ok(s.to_string())
        } else {
            Err(format!("'{s}' is not the name or address of a [[peers]] entry"))
        }
    })
}

fn read_families(cx: &mut Reader, f: &Field<'_, '_>) -> Option<Vec<Family>> {
    read_list(cx, f, "families", |s| {
        Family::ALL
            .into_iter()
            .find(|fam| fam.name() == s)
            .ok_or_else(|| format!("unknown family '{s}'; known: \"ipv4_unicast\", \"ipv6_unicast\""))
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn a_station_gets_every_default() {
        let c = ok(&format!("{MINIMAL}\n[[bmp.stations]]\naddress = \"127.0.0.1\"\nport = 1790\n"));
        assert_eq!(
            c.bmp.stations,
            vec![BmpStationConfig {
                address: "127.0.0.1".parse().unwrap(),
                port: 1790,
                connect_retry_secs: 30,
                monitor: vec![BmpView::PrePolicy],
                mirroring: false,
                stats_interval_secs: 60,
                peers: vec![],
                families: vec![],
                buffer_limit_mb: 64,
            }]
        );
        assert!(c.bmp.stations[0].monitors_peer(&"192.0.2.2".parse().unwrap(), None));
    }

    #[test]
    fn a_station_with_every_key_is_read() {
        let c = ok(&format!(
            "{MINIMAL}name = \"up\"\n\n[[bmp.stations]]\naddress = \"::1\"\nport = 11019\nconnect_retry_secs = 5\n\
             monitor = [\"pre-policy\", \"post-policy\", \"adj-rib-out\", \"loc-rib\"]\nmirroring = true\nstats_interval_secs = 0\n\
             peers = [\"up\"]\nfamilies = [\"ipv6_unicast\"]\nbuffer_limit_mb = 1\n"
        ));
        let s = &c.bmp.stations[0];
        assert_eq!(s.label(), "[::1]:11019");
        assert_eq!((s.connect_retry_secs, s.mirroring, s.stats_interval_secs), (5, true, 0));
        assert_eq!(s.monitor, vec![BmpView::PrePolicy, BmpView::PostPolicy, BmpView::AdjRibOut, BmpView::LocRib]);
        assert_eq!((s.families.clone(), s.buffer_limit_bytes()), (vec![Family::Ipv6Unicast], 1 << 20));
        assert!(s.monitors_peer(&"192.0.2.2".parse().unwrap(), Some("up")));
        assert!(!s.monitors_peer(&"192.0.2.3".parse().unwrap(), None));
    }

    #[test]
    fn bad_stations_name_their_file_line_and_key() {
        let e = errors(&format!(
            "{MINIMAL}\n[[bmp.stations]]\naddress = \"127.0.0.1\"\n\n[[bmp.stations]]\naddress = \"127.0.0.1\"\nport = 1790\n\
             monitor = [\"loc-rib\", \"everything\"]\nconnect_retry_secs = 0\npeers = [\"nobody\"]\n\
             families = [\"ipv4_multicast\"]\nbuffer_limit_mb = 0\nstats = 5\n\n\
             [[bmp.stations]]\naddress = \"127.0.0.2\"\nport = 1790\nmonitor = []\n\n\
             [[bmp.stations]]\naddress = \"127.0.0.3\"\nport = 1790\n\n[[bmp.stations]]\naddress = \"127.0.0.3\"\nport = 1790\n"
        ));
        let want = [
            "focl.toml:9: bmp.stations[0].port: missing required key",
            "focl.toml:15: bmp.stations[1].monitor[1]: unknown view 'everything'",
            "focl.toml:16: bmp.stations[1].connect_retry_secs: connect_retry_secs must be from 1 to 600 seconds, got 0",
            "focl.toml:17: bmp.stations[1].peers[0]: 'nobody' is not the name or address of a [[peers]] entry",
            "focl.toml:18: bmp.stations[1].families[0]: unknown family 'ipv4_multicast'",
            "focl.toml:19: bmp.stations[1].buffer_limit_mb: buffer_limit_mb must be from 1 to 4096 MiB, got 0",
            "focl.toml:20: bmp.stations[1].stats: unknown key 'stats'",
            "focl.toml:25: bmp.stations[2].monitor: a station needs at least one view to monitor",
            "focl.toml:31: bmp.stations[4]: the station 127.0.0.3:1790 is already listed at line 27",
        ];
        for w in want {
            assert!(e.iter().any(|e| e.starts_with(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }
}
