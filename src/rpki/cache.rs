//! Pure: one RTR cache session as a router sees it (RFC 8210 §6, §7, §8): which query to
//! send, how a response becomes data (only at End of Data: a half-received update is never
//! used), the timers, version downgrade, and what a bad PDU costs. No sockets or clocks: the
//! RTR thread feeds it PDUs and times and carries out what it returns.

use super::aspa::AspaRecords;
use super::pdu::{self, DecodeError, ErrorCode, Pdu, Timers};
use super::vrp::{Vrp, VrpSet};
use log::warn;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// RFC 8210 §6 defaults and ranges (seconds).
const DEFAULT: Timers = Timers { refresh: 3600, retry: 600, expire: 7200 };
const REFRESH_RANGE: (u32, u32) = (1, 86_400);
const RETRY_RANGE: (u32, u32) = (1, 7_200);
const EXPIRE_RANGE: (u32, u32) = (600, 172_800);

/// The expire range in use. Test-only hook: in debug builds `FOCLD_TEST_RTR_EXPIRE_MIN=N`
/// lowers its floor to N seconds, so a test sees data expire without waiting ten minutes.
/// Release builds never read the variable.
fn expire_range() -> (u32, u32) {
    #[cfg(debug_assertions)]
    if let Some(lo) = std::env::var("FOCLD_TEST_RTR_EXPIRE_MIN").ok().and_then(|v| v.parse().ok()) {
        return (lo, EXPIRE_RANGE.1);
    }
    EXPIRE_RANGE
}
/// A reconnect after a protocol version downgrade waits this long, not the retry interval.
const DOWNGRADE_WAIT: Duration = Duration::from_millis(100);
/// Most VRPs one response may carry before it is refused (memory bound per cache).
pub const MAX_VRPS: usize = 4_000_000;
/// Most ASPA records (customer ASes) one response may carry (a few hundred exist today).
pub const MAX_ASPAS: usize = 1_000_000;

/// A response being received: applied only at its End of Data.
struct Pending {
    /// A full replacement (after Reset Query) rather than a delta.
    full: bool,
    adds: Vec<Vrp>,
    dels: Vec<Vrp>,
    /// ASPA records by customer: its providers, or `None` for a withdrawal (the last PDU for
    /// a customer counts).
    aspas: HashMap<u32, Option<Vec<u32>>>,
}

/// What the thread must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    Send(Vec<u8>),
    /// Close the connection; connect again after the wait.
    Reconnect {
        after: Duration,
        reason: String,
    },
    /// The committed data changed (the table must be rebuilt).
    DataChanged,
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No connection (waiting to connect, or connecting).
    Down,
    /// Connected, a query sent, no Cache Response yet.
    Querying,
    /// Between Cache Response and End of Data.
    Receiving,
    /// Up to date until the next refresh or Serial Notify.
    Synchronized,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Down => "down",
            Phase::Querying => "querying",
            Phase::Receiving => "receiving",
            Phase::Synchronized => "synchronized",
        }
    }
}

/// Operator overrides of the cache's timers (`refresh_secs` etc.).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerOverrides {
    pub refresh: Option<u32>,
    pub retry: Option<u32>,
    pub expire: Option<u32>,
}

pub struct CacheSession {
    pub label: String,
    min_version: u8,
    max_version: u8,
    /// The version of the current (or next) connection.
    pub version: u8,
    pub phase: Phase,
    pub session_id: Option<u16>,
    pub serial: Option<u32>,
    pub data: VrpSet,
    /// ASPA records (RTR version 2), by customer AS.
    pub aspas: AspaRecords,
    /// The response being received.
    pending: Option<Pending>,
    overrides: TimerOverrides,
    pub timers: Timers,
    /// When the data was last confirmed (End of Data); it expires `expire` after that.
    pub synced_at: Option<Instant>,
    pub next_refresh: Option<Instant>,
    pub last_error: Option<String>,
}

fn clamp(what: &str, label: &str, v: u32, (lo, hi): (u32, u32)) -> u32 {
    let c = v.clamp(lo, hi);
    if c != v {
        warn!("rpki {label}: {what} interval {v} s is outside RFC 8210's {lo}..{hi} s; using {c} s");
    }
    c
}

impl CacheSession {
    pub fn new(label: &str, min_version: u8, max_version: u8, overrides: TimerOverrides) -> CacheSession {
        let mut s = CacheSession {
            label: label.to_string(),
            min_version,
            max_version,
            version: max_version,
            phase: Phase::Down,
            session_id: None,
            serial: None,
            data: VrpSet::default(),
            aspas: AspaRecords::new(),
            pending: None,
            overrides,
            timers: DEFAULT,
            synced_at: None,
            next_refresh: None,
            last_error: None,
        };
        s.set_timers(DEFAULT);
        s
    }

    /// RFC 8210 §6: values outside the ranges are corrected (and logged); expire must exceed
    /// refresh and retry. Operator overrides win over the cache's values.
    fn set_timers(&mut self, from_cache: Timers) {
        let o = self.overrides;
        let refresh = clamp("refresh", &self.label, o.refresh.unwrap_or(from_cache.refresh), REFRESH_RANGE);
        let retry = clamp("retry", &self.label, o.retry.unwrap_or(from_cache.retry), RETRY_RANGE);
        let range = expire_range();
        let mut expire = clamp("expire", &self.label, o.expire.unwrap_or(from_cache.expire), range);
        if expire <= refresh.max(retry) {
            expire = (refresh.max(retry) + 1).clamp(range.0, range.1);
        }
        self.timers = Timers { refresh, retry, expire };
    }

    pub fn retry_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.timers.retry))
    }

    /// Whether the data may still be used (RFC 8210 §6: not past the expire interval).
    pub fn fresh(&self, now: Instant) -> bool {
        self.synced_at.is_some_and(|t| now < t + Duration::from_secs(u64::from(self.timers.expire)))
    }

    /// When the data expires, if it is held.
    pub fn expires_at(&self) -> Option<Instant> {
        self.synced_at.map(|t| t + Duration::from_secs(u64::from(self.timers.expire)))
    }

    /// A new connection: Serial Query when a session and serial are known, else Reset Query.
    pub fn on_connected(&mut self) -> Vec<Out> {
        self.phase = Phase::Querying;
        self.pending = None;
        vec![Out::Send(self.query())]
    }

    fn query(&self) -> Vec<u8> {
        match (self.session_id, self.serial) {
            (Some(session), Some(serial)) => pdu::encode(&Pdu::SerialQuery { session, serial }, self.version),
            _ => pdu::encode(&Pdu::ResetQuery, self.version),
        }
    }

    fn reset_state(&mut self) {
        self.session_id = None;
        self.serial = None;
    }

    pub fn on_disconnected(&mut self, reason: &str) {
        if self.phase != Phase::Down {
            self.last_error = Some(reason.to_string());
        }
        self.phase = Phase::Down;
        self.pending = None;
        self.next_refresh = None;
    }

    /// The refresh timer: ask for changes (RFC 8210 §6).
    pub fn on_refresh(&mut self, now: Instant) -> Vec<Out> {
        self.next_refresh = None;
        if self.phase == Phase::Synchronized {
            self.phase = Phase::Querying;
            return vec![Out::Send(self.query())];
        }
        let _ = now;
        Vec::new()
    }

    /// The expire timer: the data may no longer be used (RFC 8210 §6).
    pub fn on_expire(&mut self) -> Vec<Out> {
        if self.data.is_empty() && self.synced_at.is_none() {
            return Vec::new();
        }
        warn!("rpki {}: data expired ({} s without a successful update); dropping it", self.label, self.timers.expire);
        self.data.clear();
        self.aspas.clear();
        self.synced_at = None;
        self.reset_state();
        // A new session may negotiate the highest version again (RFC 8210 §7).
        self.version = self.max_version;
        vec![Out::DataChanged]
    }

    /// Bytes that are no PDU: Error Report (Corrupt Data etc.) and a new connection; an older
    /// version from the cache before any data: downgrade (RFC 8210 §7).
    pub fn on_decode_error(&mut self, e: &DecodeError, raw: &[u8]) -> Vec<Out> {
        if let DecodeError::Version(v) = e {
            if *v < self.version && *v >= self.min_version && self.phase == Phase::Querying {
                return self.downgrade(*v, format!("the cache speaks version {v}"));
            }
        }
        let report = Pdu::ErrorReport {
            code: e.code() as u16,
            pdu: raw.get(..raw.len().min(64)).unwrap_or_default().to_vec(),
            text: e.to_string(),
        };
        self.pending = None;
        // Caches disagree on the ASPA PDU's layout (it changed between drafts): after Corrupt
        // Data, go on in version 1 rather than fail the same way at every retry.
        if matches!(e, DecodeError::BadAspa(_)) && self.version >= 2 && self.min_version < 2 {
            let mut out = vec![Out::Send(pdu::encode(&report, self.version))];
            out.extend(self.downgrade(1, format!("the cache's ASPA PDU is not in the current layout ({e})")));
            return out;
        }
        vec![
            Out::Send(pdu::encode(&report, self.version)),
            Out::Reconnect { after: self.retry_after(), reason: format!("bad PDU from the cache: {e}") },
        ]
    }

    fn downgrade(&mut self, to: u8, why: String) -> Vec<Out> {
        self.version = to;
        self.reset_state();
        vec![Out::Reconnect { after: DOWNGRADE_WAIT, reason: format!("{why}; using RTR version {to}") }]
    }

    pub fn on_pdu(&mut self, p: Pdu, now: Instant) -> Vec<Out> {
        match p {
            Pdu::SerialNotify { session, .. } => {
                // RFC 8210 §5.2: a hint; ask when idle, ignore while a response is under way.
                if self.phase == Phase::Synchronized && Some(session) == self.session_id {
                    self.phase = Phase::Querying;
                    return vec![Out::Send(self.query())];
                }
                Vec::new()
            }
            Pdu::CacheResponse { session } => {
                if self.phase != Phase::Querying {
                    return self.protocol_error(ErrorCode::InvalidRequest, "Cache Response without a query");
                }
                let full = self.session_id != Some(session) || self.serial.is_none();
                if self.session_id.is_some_and(|s| s != session) {
                    // RFC 8210 §5.1: a new session id means the cache restarted: start over.
                    warn!("rpki {}: the cache's session id changed; resetting", self.label);
                    self.reset_state();
                    self.phase = Phase::Querying;
                    return vec![Out::Send(pdu::encode(&Pdu::ResetQuery, self.version))];
                }
                self.session_id = Some(session);
                self.phase = Phase::Receiving;
                self.pending = Some(Pending { full, adds: Vec::new(), dels: Vec::new(), aspas: HashMap::new() });
                Vec::new()
            }
            Pdu::Prefix { announce, prefix, max_len, asn } => {
                let Some(Pending { adds, dels, .. }) = self.pending.as_mut() else {
                    return self.protocol_error(ErrorCode::CorruptData, "Prefix PDU outside a Cache Response");
                };
                if adds.len() + dels.len() >= MAX_VRPS {
                    return self.protocol_error(ErrorCode::InternalError, "more VRPs than this router holds");
                }
                let v = Vrp { prefix, max_len, asn };
                if announce {
                    adds.push(v);
                } else {
                    dels.push(v);
                }
                Vec::new()
            }
            Pdu::RouterKey => Vec::new(),
            Pdu::Aspa { announce, customer, providers } => {
                let Some(Pending { full, aspas, .. }) = self.pending.as_mut() else {
                    return self.protocol_error(ErrorCode::CorruptData, "ASPA PDU outside a Cache Response");
                };
                if aspas.len() >= MAX_ASPAS {
                    return self.protocol_error(ErrorCode::InternalError, "more ASPA records than this router holds");
                }
                // Withdrawing a record that does not exist is an error (draft-ietf-sidrops-
                // 8210bis §5.12). It is also what an announcement in an older draft's layout
                // (flags, AFI flags and a count after the header) looks like when read as the
                // current one, so the first answer to a Reset Query shows it.
                let known =
                    (!*full && self.aspas.contains_key(&customer)) || aspas.get(&customer).is_some_and(|p| p.is_some());
                if !announce && !known {
                    let e = DecodeError::BadAspa(format!("withdrawal of AS{customer}, which has no ASPA record"));
                    return self.on_decode_error(&e, &[]);
                }
                aspas.insert(customer, announce.then_some(providers));
                Vec::new()
            }
            Pdu::EndOfData { session, serial, timers } => {
                let Some(Pending { full, adds, dels, aspas }) = self.pending.take() else {
                    return self.protocol_error(ErrorCode::CorruptData, "End of Data outside a Cache Response");
                };
                if Some(session) != self.session_id {
                    return self.protocol_error(ErrorCode::CorruptData, "End of Data for another session");
                }
                // draft-ietf-sidrops-8210bis §5.12: one record per customer; an announcement
                // replaces the customer's record, a withdrawal removes it.
                if full {
                    self.aspas.clear();
                }
                for (customer, providers) in aspas {
                    match providers {
                        Some(p) => self.aspas.insert(customer, p),
                        None => self.aspas.remove(&customer),
                    };
                }
                if full {
                    self.data = adds.into_iter().collect();
                } else {
                    let unknown = self.data.apply(adds, dels);
                    if unknown > 0 {
                        warn!("rpki {}: the cache withdrew {unknown} VRPs it never announced", self.label);
                    }
                }
                self.serial = Some(serial);
                if let Some(t) = timers {
                    self.set_timers(t);
                }
                self.phase = Phase::Synchronized;
                self.synced_at = Some(now);
                self.next_refresh = Some(now + Duration::from_secs(u64::from(self.timers.refresh)));
                self.last_error = None;
                vec![Out::DataChanged]
            }
            Pdu::CacheReset => {
                // RFC 8210 §5.9: the cache cannot serve the serial asked for.
                self.reset_state();
                self.phase = Phase::Querying;
                vec![Out::Send(pdu::encode(&Pdu::ResetQuery, self.version))]
            }
            Pdu::ErrorReport { code, text, .. } => {
                let name = pdu::error_name(code);
                self.last_error = Some(format!("{name}: {text}"));
                if code == ErrorCode::UnsupportedProtocolVersion as u16 && self.version > self.min_version {
                    let to = self.version - 1;
                    return self.downgrade(to, format!("the cache refused version {}", self.version));
                }
                // A cache that restarted may answer our Serial Query with Corrupt Data (its
                // session id changed) instead of Cache Reset: start over with a Reset Query.
                // The data stays in use until the new response is complete or it expires.
                if code == ErrorCode::CorruptData as u16 || code == ErrorCode::InvalidRequest as u16 {
                    self.reset_state();
                }
                // No Data Available (RFC 8210 §12): the cache is starting; ask again later.
                let after = if code == ErrorCode::NoDataAvailable as u16 {
                    self.retry_after().min(Duration::from_secs(10))
                } else {
                    self.retry_after()
                };
                vec![Out::Reconnect { after, reason: format!("the cache reported {name}: {text}") }]
            }
            Pdu::SerialQuery { .. } | Pdu::ResetQuery => {
                self.protocol_error(ErrorCode::InvalidRequest, "a router's query from the cache")
            }
        }
    }

    fn protocol_error(&mut self, code: ErrorCode, what: &str) -> Vec<Out> {
        self.pending = None;
        let report = Pdu::ErrorReport { code: code as u16, pdu: Vec::new(), text: what.to_string() };
        vec![
            Out::Send(pdu::encode(&report, self.version)),
            Out::Reconnect { after: self.retry_after(), reason: what.to_string() },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn vrp(s: &str, max_len: u8, asn: u32) -> Pdu {
        Pdu::Prefix { announce: true, prefix: s.parse().expect("prefix"), max_len, asn }
    }

    fn synced(version: u8) -> (CacheSession, Instant) {
        let mut c = CacheSession::new("test", 0, version, TimerOverrides::default());
        let t0 = Instant::now();
        assert_eq!(c.on_connected(), vec![Out::Send(pdu::encode(&Pdu::ResetQuery, version))]);
        assert!(c.on_pdu(Pdu::CacheResponse { session: 7 }, t0).is_empty());
        assert!(c.on_pdu(vrp("192.0.2.0/24", 24, 64496), t0).is_empty());
        assert!(c.on_pdu(vrp("2001:db8::/32", 48, 64497), t0).is_empty());
        assert_eq!(c.data.len(), 0, "nothing is used before End of Data");
        let timers = Some(Timers { refresh: 30, retry: 10, expire: 900 });
        assert_eq!(c.on_pdu(Pdu::EndOfData { session: 7, serial: 100, timers }, t0), vec![Out::DataChanged]);
        (c, t0)
    }

    fn aspa(customer: u32, providers: &[u32]) -> Pdu {
        Pdu::Aspa { announce: !providers.is_empty(), customer, providers: providers.to_vec() }
    }

    #[test]
    fn aspa_records_apply_at_end_of_data_and_a_later_announcement_replaces_the_customers_record() {
        let (mut c, t0) = synced(2);
        assert!(c.on_pdu(Pdu::SerialNotify { session: 7, serial: 101 }, t0).len() == 1);
        assert!(c.on_pdu(Pdu::CacheResponse { session: 7 }, t0).is_empty());
        assert!(c.on_pdu(aspa(64500, &[64501, 64502]), t0).is_empty());
        assert!(c.on_pdu(aspa(64510, &[64511]), t0).is_empty());
        assert!(c.aspas.is_empty(), "nothing before End of Data");
        assert_eq!(c.on_pdu(Pdu::EndOfData { session: 7, serial: 101, timers: None }, t0), vec![Out::DataChanged]);
        assert_eq!(c.aspas.get(&64500), Some(&vec![64501, 64502]));
        assert_eq!(c.on_pdu(Pdu::SerialNotify { session: 7, serial: 102 }, t0).len(), 1);
        c.on_pdu(Pdu::CacheResponse { session: 7 }, t0);
        c.on_pdu(aspa(64500, &[64503]), t0);
        c.on_pdu(aspa(64510, &[]), t0);
        c.on_pdu(Pdu::EndOfData { session: 7, serial: 102, timers: None }, t0);
        assert_eq!(c.aspas.get(&64500), Some(&vec![64503]), "replaced, not merged");
        assert!(!c.aspas.contains_key(&64510), "withdrawn");
        assert_eq!(c.data.len(), 2, "the VRPs stay");
        // A Reset Query's response replaces every record.
        c.on_pdu(Pdu::CacheReset, t0);
        c.on_pdu(Pdu::CacheResponse { session: 7 }, t0);
        c.on_pdu(aspa(64520, &[64521]), t0);
        c.on_pdu(Pdu::EndOfData { session: 7, serial: 200, timers: None }, t0);
        assert_eq!(c.aspas.keys().copied().collect::<Vec<_>>(), [64520]);
        assert_eq!(c.on_expire(), vec![Out::DataChanged]);
        assert!(c.aspas.is_empty(), "expired with the VRPs");
    }

    /// Feed `bytes` as the RTR thread does: decode at the session's version, hand each PDU
    /// over, stop at the first error or reconnect. Returns everything the session asked for.
    fn replay(c: &mut CacheSession, bytes: &[u8], now: Instant) -> Vec<Out> {
        let (mut at, mut outs) = (0, Vec::new());
        while at < bytes.len() {
            match pdu::decode(&bytes[at..], c.version) {
                Ok(Some((n, p))) => {
                    at += n;
                    outs.extend(c.on_pdu(p, now));
                }
                Ok(None) => break,
                Err(e) => {
                    outs.extend(c.on_decode_error(&e, &bytes[at..]));
                    break;
                }
            }
            if outs.iter().any(|o| matches!(o, Out::Reconnect { .. })) {
                break;
            }
        }
        outs
    }

    #[test]
    fn rtrtrs_version_2_answers_give_its_aspa_records_and_a_serial_update_changes_them() {
        let mut c = CacheSession::new("rtrtr", 0, 2, TimerOverrides::default());
        let t0 = Instant::now();
        c.on_connected();
        let outs = replay(&mut c, include_bytes!("../../tests/data/rtr/rtrtr-v2-reset.bin"), t0);
        assert_eq!(outs, vec![Out::DataChanged]);
        assert_eq!((c.version, c.phase, c.serial, c.data.len()), (2, Phase::Synchronized, Some(0), 2));
        let mut a: Vec<(u32, Vec<u32>)> = c.aspas.iter().map(|(k, v)| (*k, v.clone())).collect();
        a.sort();
        assert_eq!(a, [(64500, vec![65041, 64501]), (64510, vec![0])]);
        // The capture's Serial Notify, then the delta: AS64510 withdrawn with its old providers.
        let outs = replay(&mut c, include_bytes!("../../tests/data/rtr/rtrtr-v2-serial.bin"), t0);
        assert_eq!(outs.len(), 2, "a Serial Query, then the data changed: {outs:?}");
        assert_eq!(outs[1], Out::DataChanged);
        let mut a: Vec<(u32, Vec<u32>)> = c.aspas.iter().map(|(k, v)| (*k, v.clone())).collect();
        a.sort();
        assert_eq!(a, [(64500, vec![65041]), (64520, vec![64521])]);
        assert_eq!((c.serial, c.data.len()), (Some(1), 1));
    }

    #[test]
    fn stayrtrs_older_aspa_layout_gets_corrupt_data_and_version_1() {
        let mut c = CacheSession::new("stayrtr", 0, 2, TimerOverrides::default());
        c.on_connected();
        let outs = replay(&mut c, include_bytes!("../../tests/data/rtr/stayrtr-v2-reset.bin"), Instant::now());
        let Some(Out::Send(report)) = outs.first() else { panic!("{outs:?}") };
        let Ok(Some((_, Pdu::ErrorReport { code, text, .. }))) = pdu::decode(report, 2) else { panic!("{report:?}") };
        assert_eq!(code, ErrorCode::CorruptData as u16);
        assert!(text.contains("no ASPA record"), "{text}");
        assert!(matches!(outs.get(1), Some(Out::Reconnect { .. })), "{outs:?}");
        assert_eq!(c.version, 1);
        assert!(c.aspas.is_empty() && c.data.is_empty(), "nothing of the broken answer is used");
    }

    #[test]
    fn an_aspa_pdu_in_an_older_layout_gets_corrupt_data_and_a_downgrade_to_version_1() {
        let mut c = CacheSession::new("test", 0, 2, TimerOverrides::default());
        c.on_connected();
        let e = DecodeError::BadAspa("withdrawal with providers".into());
        let out = c.on_decode_error(&e, &[2, 11, 0, 0, 0, 0, 0, 16]);
        let Some(Out::Send(report)) = out.first() else { panic!("{out:?}") };
        assert_eq!(
            pdu::decode(report, 2).map(|p| p.map(|(_, p)| p)),
            Ok(Some(Pdu::ErrorReport {
                code: ErrorCode::CorruptData as u16,
                pdu: vec![2, 11, 0, 0, 0, 0, 0, 16],
                text: "bad ASPA PDU: withdrawal with providers".into()
            }))
        );
        assert!(matches!(out.get(1), Some(Out::Reconnect { .. })), "{out:?}");
        assert_eq!(c.version, 1, "the next connection speaks version 1");
        // With version 2 required there is nothing to fall back to: report and retry.
        let mut strict = CacheSession::new("test", 2, 2, TimerOverrides::default());
        strict.on_connected();
        strict.on_decode_error(&e, &[]);
        assert_eq!(strict.version, 2);
    }

    #[test]
    fn a_reset_query_response_becomes_the_data_at_end_of_data_only() {
        let (c, t0) = synced(1);
        assert_eq!(c.data.len(), 2);
        assert_eq!((c.phase, c.session_id, c.serial), (Phase::Synchronized, Some(7), Some(100)));
        assert_eq!(c.timers, Timers { refresh: 30, retry: 10, expire: 900 });
        assert_eq!(c.next_refresh, Some(t0 + Duration::from_secs(30)));
    }

    #[test]
    fn a_serial_update_applies_withdrawals_and_announcements() {
        let (mut c, t0) = synced(1);
        let q = c.on_refresh(t0);
        assert_eq!(q, vec![Out::Send(pdu::encode(&Pdu::SerialQuery { session: 7, serial: 100 }, 1))]);
        c.on_pdu(Pdu::CacheResponse { session: 7 }, t0);
        c.on_pdu(
            Pdu::Prefix { announce: false, prefix: "192.0.2.0/24".parse().expect("p"), max_len: 24, asn: 64496 },
            t0,
        );
        c.on_pdu(vrp("203.0.113.0/24", 24, 64498), t0);
        assert_eq!(c.on_pdu(Pdu::EndOfData { session: 7, serial: 101, timers: None }, t0), vec![Out::DataChanged]);
        let asns: HashSet<u32> = c.data.iter().map(|v| v.asn).collect();
        assert_eq!(asns, HashSet::from([64497, 64498]));
        assert_eq!(c.serial, Some(101));
    }

    #[test]
    fn serial_notify_asks_only_when_synchronized() {
        let (mut c, t0) = synced(1);
        assert_eq!(c.on_pdu(Pdu::SerialNotify { session: 7, serial: 101 }, t0).len(), 1);
        assert_eq!(c.phase, Phase::Querying);
        assert!(c.on_pdu(Pdu::SerialNotify { session: 7, serial: 102 }, t0).is_empty(), "a query is already out");
    }

    #[test]
    fn cache_reset_and_a_new_session_id_start_over_with_a_reset_query() {
        let (mut c, t0) = synced(1);
        c.on_refresh(t0);
        assert_eq!(c.on_pdu(Pdu::CacheReset, t0), vec![Out::Send(pdu::encode(&Pdu::ResetQuery, 1))]);
        let (mut c, t0) = synced(1);
        c.on_refresh(t0);
        assert_eq!(c.on_pdu(Pdu::CacheResponse { session: 8 }, t0), vec![Out::Send(pdu::encode(&Pdu::ResetQuery, 1))]);
        assert_eq!(c.session_id, None);
        // The data stays usable until the new response is complete.
        assert_eq!(c.data.len(), 2);
    }

    #[test]
    fn the_expire_timer_drops_the_data() {
        let (mut c, t0) = synced(1);
        assert!(c.fresh(t0 + Duration::from_secs(899)));
        assert!(!c.fresh(t0 + Duration::from_secs(900)));
        assert_eq!(c.on_expire(), vec![Out::DataChanged]);
        assert!(c.data.is_empty() && c.serial.is_none());
    }

    #[test]
    fn timers_outside_rfc_8210_ranges_are_corrected_and_overrides_win() {
        let mut c = CacheSession::new("t", 0, 1, TimerOverrides { refresh: None, retry: Some(5), expire: None });
        c.set_timers(Timers { refresh: 0, retry: 99_999, expire: 10 });
        assert_eq!(c.timers, Timers { refresh: 1, retry: 5, expire: 600 });
        c.set_timers(Timers { refresh: 86_400, retry: 7_000, expire: 700 });
        assert_eq!(c.timers.expire, 86_401, "expire exceeds refresh and retry");
    }

    #[test]
    fn version_downgrade_on_an_older_answer_or_an_unsupported_version_report() {
        let mut c = CacheSession::new("t", 0, 1, TimerOverrides::default());
        c.on_connected();
        let out = c.on_decode_error(&DecodeError::Version(0), &[0, 10]);
        assert!(matches!(out.as_slice(), [Out::Reconnect { after, .. }] if *after == DOWNGRADE_WAIT), "{out:?}");
        assert_eq!(c.version, 0);
        let mut c = CacheSession::new("t", 0, 1, TimerOverrides::default());
        c.on_connected();
        let out = c.on_pdu(Pdu::ErrorReport { code: 4, pdu: vec![], text: String::new() }, Instant::now());
        assert!(matches!(out.as_slice(), [Out::Reconnect { .. }]));
        assert_eq!(c.version, 0);
        // Not below the minimum.
        let mut c = CacheSession::new("t", 1, 1, TimerOverrides::default());
        c.on_connected();
        let out = c.on_decode_error(&DecodeError::Version(0), &[0, 10]);
        assert!(matches!(out.first(), Some(Out::Send(_))), "an Error Report, no downgrade: {out:?}");
        assert_eq!(c.version, 1);
    }

    #[test]
    fn pdus_out_of_place_are_reported_and_reconnect() {
        let mut c = CacheSession::new("t", 0, 1, TimerOverrides::default());
        c.on_connected();
        let out = c.on_pdu(vrp("192.0.2.0/24", 24, 1), Instant::now());
        assert!(matches!(out.as_slice(), [Out::Send(b), Out::Reconnect { .. }] if b[1] == pdu::pdu_type::ERROR_REPORT));
        let out = c.on_pdu(Pdu::EndOfData { session: 1, serial: 1, timers: None }, Instant::now());
        assert!(matches!(out.as_slice(), [Out::Send(_), Out::Reconnect { .. }]));
        assert!(c.data.is_empty());
    }

    #[test]
    fn a_cache_that_calls_our_serial_query_corrupt_gets_a_reset_query_next_time() {
        let (mut c, t0) = synced(1);
        c.on_disconnected("the cache restarted");
        assert_eq!(c.on_connected(), vec![Out::Send(pdu::encode(&Pdu::SerialQuery { session: 7, serial: 100 }, 1))]);
        let out = c.on_pdu(Pdu::ErrorReport { code: 0, pdu: vec![], text: "Session ID mismatch".into() }, t0);
        assert!(matches!(out.as_slice(), [Out::Reconnect { .. }]), "{out:?}");
        c.on_disconnected("reconnecting");
        assert_eq!(c.on_connected(), vec![Out::Send(pdu::encode(&Pdu::ResetQuery, 1))]);
        assert_eq!(c.data.len(), 2, "the data stays until the new response is complete");
    }

    #[test]
    fn no_data_available_retries_soon() {
        let mut c = CacheSession::new("t", 0, 1, TimerOverrides::default());
        c.on_connected();
        let out = c.on_pdu(Pdu::ErrorReport { code: 2, pdu: vec![], text: "starting".into() }, Instant::now());
        assert!(matches!(out.as_slice(), [Out::Reconnect { after, .. }] if *after <= Duration::from_secs(10)));
        assert!(c.last_error.as_deref().is_some_and(|e| e.starts_with("No Data Available")));
    }
}
