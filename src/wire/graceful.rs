//! The Graceful Restart capability (code 64, RFC 4724 §3, with the N bit of RFC 8538 §2) and
//! the Long-Lived Graceful Restart capability (code 71, RFC 9494 §2): wire form both ways and
//! what two speakers' capabilities negotiate.
//!
//! Used by `open.rs` (parsing and encoding inside the OPEN) and, through `Negotiated`, by the
//! peer thread and the RIB, which keep a restarting peer's routes as stale.

use super::notify::{CeaseSubcode, ErrorCode, Notification};
use crate::prefix::Family;

/// RFC 4724 §3: Restart State bit of the Restart Flags.
const FLAG_R: u16 = 0x8000;
/// RFC 8538 §2: Graceful Notification bit.
const FLAG_N: u16 = 0x4000;
/// RFC 4724 §3 / RFC 9494 §2: Forwarding State bit of an AFI/SAFI's flags.
const FLAG_F: u8 = 0x80;
/// RFC 4724 §3: the restart time is the low 12 bits.
const TIME_MASK: u16 = 0x0fff;

/// A Graceful Restart capability as one side advertised it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrCap {
    /// R: the sender has restarted (its routes are coming again).
    pub restarting: bool,
    /// N (RFC 8538): NOTIFICATIONs other than Cease / Hard Reset keep routes too.
    pub notification: bool,
    /// Seconds the sender asks its peer to wait for it (12 bits).
    pub restart_time: u16,
    /// Families the sender restarts gracefully, with their F (forwarding state kept) bit.
    pub families: Vec<(Family, bool)>,
    /// (AFI, SAFI) pairs of families focld does not carry, kept as received.
    pub other_families: usize,
}

impl GrCap {
    /// The capability's value (without code and length).
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = self.restart_time.min(TIME_MASK);
        if self.restarting {
            flags |= FLAG_R;
        }
        if self.notification {
            flags |= FLAG_N;
        }
        let mut out = flags.to_be_bytes().to_vec();
        for (f, fwd) in &self.families {
            out.extend_from_slice(&f.afi().to_be_bytes());
            out.push(f.safi());
            out.push(if *fwd { FLAG_F } else { 0 });
        }
        out
    }

    /// RFC 4724 §3: two octets of flags and time, then four per AFI/SAFI. `None` when the
    /// length does not fit that form.
    pub fn decode(value: &[u8]) -> Option<GrCap> {
        let [h0, h1, rest @ ..] = value else { return None };
        if rest.len() % 4 != 0 {
            return None;
        }
        let head = u16::from_be_bytes([*h0, *h1]);
        let mut cap = GrCap {
            restarting: head & FLAG_R != 0,
            notification: head & FLAG_N != 0,
            restart_time: head & TIME_MASK,
            ..GrCap::default()
        };
        for c in rest.chunks_exact(4) {
            match Family::from_afi_safi(u16::from_be_bytes([c[0], c[1]]), c[2]) {
                Some(f) if !cap.families.iter().any(|(g, _)| *g == f) => cap.families.push((f, c[3] & FLAG_F != 0)),
                Some(_) => {}
                None => cap.other_families += 1,
            }
        }
        Some(cap)
    }
}

/// A Long-Lived Graceful Restart capability (RFC 9494 §2): per family, the F bit and the
/// long-lived stale time (24 bits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LlgrCap {
    pub families: Vec<(Family, bool, u32)>,
}

impl LlgrCap {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (f, fwd, stale) in &self.families {
            out.extend_from_slice(&f.afi().to_be_bytes());
            out.push(f.safi());
            out.push(if *fwd { FLAG_F } else { 0 });
            out.extend_from_slice(&stale.min(&0xff_ffff).to_be_bytes()[1..]);
        }
        out
    }

    /// Seven octets per AFI/SAFI; `None` for another length.
    pub fn decode(value: &[u8]) -> Option<LlgrCap> {
        if value.len() % 7 != 0 {
            return None;
        }
        let mut cap = LlgrCap::default();
        for c in value.chunks_exact(7) {
            if let Some(f) = Family::from_afi_safi(u16::from_be_bytes([c[0], c[1]]), c[2]) {
                if !cap.families.iter().any(|(g, _, _)| *g == f) {
                    cap.families.push((f, c[3] & FLAG_F != 0, u32::from_be_bytes([0, c[4], c[5], c[6]])));
                }
            }
        }
        Some(cap)
    }
}

/// What graceful restart means on one session, from the peer's capabilities against ours
/// (both must have advertised Graceful Restart; RFC 4724 §4.2 is the helper's part).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrNegotiated {
    /// RFC 8538 §2: both sides set N.
    pub notification: bool,
    /// The peer's restart time as advertised (the helper clamps it).
    pub restart_time: u16,
    /// The peer said it has restarted (R).
    pub peer_restarting: bool,
    /// Negotiated families the peer listed, with its F bit: these are kept stale when it
    /// restarts.
    pub families: Vec<(Family, bool)>,
    /// RFC 9494: families both sides listed for LLGR, with the peer's F bit and stale time.
    pub long_lived: Vec<(Family, bool, u32)>,
}

impl GrNegotiated {
    /// From both capabilities, restricted to the session's families; `None` unless both
    /// advertised Graceful Restart.
    pub fn of(
        ours: Option<&GrCap>,
        our_llgr: Option<&LlgrCap>,
        theirs: Option<&GrCap>,
        their_llgr: Option<&LlgrCap>,
        families: &[Family],
    ) -> Option<GrNegotiated> {
        let (ours, theirs) = (ours?, theirs?);
        let long_lived = match (our_llgr, their_llgr) {
            // RFC 9494 §4: LLGR goes with GR; only families both listed.
            (Some(o), Some(t)) => t
                .families
                .iter()
                .filter(|(f, _, _)| families.contains(f) && o.families.iter().any(|(g, _, _)| g == f))
                .copied()
                .collect(),
            _ => Vec::new(),
        };
        Some(GrNegotiated {
            notification: ours.notification && theirs.notification,
            restart_time: theirs.restart_time,
            peer_restarting: theirs.restarting,
            families: theirs.families.iter().filter(|(f, _)| families.contains(f)).copied().collect(),
            long_lived,
        })
    }

    /// Whether `family` is kept stale when the peer restarts.
    pub fn covers(&self, family: Family) -> bool {
        self.families.iter().any(|(f, _)| *f == family) || self.long_lived.iter().any(|(f, _, _)| *f == family)
    }

    /// The peer's F bit for `family` in Graceful Restart (or, failing that, LLGR).
    pub fn forwarding(&self, family: Family) -> bool {
        self.families.iter().find(|(f, _)| *f == family).map(|(_, b)| *b).unwrap_or(false)
            || self.long_lived.iter().any(|(f, b, _)| *f == family && *b)
    }

    /// The peer's long-lived stale time for `family`, if LLGR was negotiated for it.
    pub fn long_lived_stale(&self, family: Family) -> Option<u32> {
        self.long_lived.iter().find(|(f, _, _)| *f == family).map(|(_, _, s)| *s)
    }
}

/// The helper's part of one session (RFC 4724 §4.2), with focld's ceilings applied: what
/// the RIB needs to keep a restarting peer's routes and to know when to let them go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelperTimes {
    /// Families kept stale when the peer restarts, with its F bit on this session.
    pub families: Vec<(Family, bool)>,
    /// The peer's restart time, clamped to `max_restart_time_secs`.
    pub restart_secs: u32,
    /// How long stale routes wait for End-of-RIB after the peer is back (`max_stale_secs`).
    pub stale_secs: u32,
    /// RFC 9494: per family, the long-lived stale time, clamped to `long_lived_stale_secs`.
    pub long_lived: Vec<(Family, u32)>,
}

impl HelperTimes {
    pub fn of(neg: &GrNegotiated, max_restart_secs: u16, max_stale_secs: u32, max_long_lived_secs: u32) -> HelperTimes {
        let mut families = neg.families.clone();
        // RFC 9494 §4.2: an LLGR family is kept too, even if the GR capability did not list it.
        for (f, fwd, _) in &neg.long_lived {
            if !families.iter().any(|(g, _)| g == f) {
                families.push((*f, *fwd));
            }
        }
        HelperTimes {
            families,
            restart_secs: u32::from(neg.restart_time.min(max_restart_secs)),
            stale_secs: max_stale_secs,
            long_lived: neg
                .long_lived
                .iter()
                .map(|(f, _, t)| (*f, (*t).min(max_long_lived_secs)))
                .filter(|(_, t)| *t > 0)
                .collect(),
        }
    }

    /// Whether the peer's `family` comes back with its forwarding state (F bit).
    pub fn forwarding(&self, family: Family) -> bool {
        self.families.iter().any(|(f, fwd)| *f == family && *fwd)
    }

    pub fn covers(&self, family: Family) -> bool {
        self.families.iter().any(|(f, _)| *f == family)
    }

    pub fn long_lived_secs(&self, family: Family) -> Option<u32> {
        self.long_lived.iter().find(|(f, _)| *f == family).map(|(_, t)| *t)
    }
}

/// How a session ended, as the graceful restart rules need to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The TCP connection closed or broke.
    TcpFailed,
    /// Our hold timer expired (its NOTIFICATION is sent, but the peer is presumably gone).
    HoldTimerExpired,
    /// A new connection came from the peer while the session was Established (RFC 4724 §4.2).
    PeerRestarted,
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// focld is stopping.
    Shutdown,
}

/// RFC 8538 §3: a Cease / Hard Reset.
pub fn is_hard_reset(n: &Notification) -> bool {
    n.code == ErrorCode::Cease as u8 && n.subcode == CeaseSubcode::HardReset as u8
}

/// RFC 4724 §4.2 with RFC 8538 §3/§4: whether the helper keeps the peer's routes as stale
/// when the session ends this way (else they are withdrawn at once). A TCP failure, hold
/// timer expiry or a new connection are restarts; a NOTIFICATION is one only with N
/// negotiated, and never a Cease / Hard Reset.
pub fn helper_keeps_routes(gr: Option<&GrNegotiated>, end: &SessionEnd) -> bool {
    let Some(gr) = gr else { return false };
    if gr.families.is_empty() && gr.long_lived.is_empty() {
        return false;
    }
    match end {
        SessionEnd::TcpFailed | SessionEnd::HoldTimerExpired | SessionEnd::PeerRestarted => true,
        SessionEnd::Sent(n) | SessionEnd::Received(n) => gr.notification && !is_hard_reset(n),
        SessionEnd::Shutdown => false,
    }
}

/// RFC 8538 §3: with N negotiated, a Cease that must flush the peer's routes (an operator
/// reset or shutdown, a max-prefix teardown, a reset by reload, RFC 8538 §5) goes out as
/// Cease / Hard Reset with the original code, subcode and data inside.
pub fn as_hard_reset(n: Notification, gr: Option<&GrNegotiated>) -> Notification {
    let flushing = [
        CeaseSubcode::MaximumPrefixesReached,
        CeaseSubcode::AdministrativeShutdown,
        CeaseSubcode::PeerDeconfigured,
        CeaseSubcode::AdministrativeReset,
        CeaseSubcode::OtherConfigurationChange,
    ];
    let wrap = gr.is_some_and(|g| g.notification)
        && n.code == ErrorCode::Cease as u8
        && flushing.iter().any(|s| *s as u8 == n.subcode);
    if !wrap {
        return n;
    }
    let mut data = vec![n.code, n.subcode];
    data.extend_from_slice(&n.data);
    Notification::new(ErrorCode::Cease, CeaseSubcode::HardReset as u8, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gr(n: bool) -> GrNegotiated {
        GrNegotiated {
            notification: n,
            restart_time: 120,
            families: vec![(Family::Ipv4Unicast, true)],
            ..GrNegotiated::default()
        }
    }

    #[test]
    fn the_graceful_restart_capability_has_r_n_time_and_f_bits_as_rfc_4724_and_8538_lay_them_out() {
        let cap = GrCap {
            restarting: true,
            notification: true,
            restart_time: 120,
            families: vec![(Family::Ipv4Unicast, true), (Family::Ipv6Unicast, false)],
            other_families: 0,
        };
        let raw = cap.encode();
        assert_eq!(raw, [0xc0, 120, 0, 1, 1, 0x80, 0, 2, 1, 0]);
        assert_eq!(GrCap::decode(&raw), Some(cap));
        // 4095 is the largest time; more is cut to 12 bits.
        let big = GrCap { restart_time: 5000, ..GrCap::default() };
        assert_eq!(big.encode(), [0x0f, 0xff]);
        assert_eq!(GrCap::decode(&[0x0f]), None, "too short");
        assert_eq!(GrCap::decode(&[0, 0, 0, 1, 1]), None, "not whole AFI/SAFI entries");
        let evpn = GrCap::decode(&[0, 5, 0, 25, 70, 0x80]).unwrap();
        assert_eq!((evpn.families.len(), evpn.other_families, evpn.restart_time), (0, 1, 5));
    }

    #[test]
    fn the_llgr_capability_carries_a_24_bit_stale_time_per_family() {
        let cap = LlgrCap { families: vec![(Family::Ipv6Unicast, true, 0x01_0203)] };
        let raw = cap.encode();
        assert_eq!(raw, [0, 2, 1, 0x80, 1, 2, 3]);
        assert_eq!(LlgrCap::decode(&raw), Some(cap));
        assert_eq!(LlgrCap::decode(&raw[..6]), None);
    }

    #[test]
    fn negotiation_needs_both_sides_and_keeps_only_the_sessions_families() {
        let ours = GrCap { notification: true, ..GrCap::default() };
        let theirs = GrCap {
            notification: true,
            restart_time: 90,
            families: vec![(Family::Ipv4Unicast, true), (Family::Ipv6Unicast, true)],
            ..GrCap::default()
        };
        let v4 = [Family::Ipv4Unicast];
        assert_eq!(GrNegotiated::of(None, None, Some(&theirs), None, &v4), None);
        assert_eq!(GrNegotiated::of(Some(&ours), None, None, None, &v4), None);
        let n = GrNegotiated::of(Some(&ours), None, Some(&theirs), None, &v4).unwrap();
        assert!(n.notification && n.covers(Family::Ipv4Unicast) && !n.covers(Family::Ipv6Unicast));
        assert_eq!(n.restart_time, 90);
        let no_n = GrCap::default();
        assert!(!GrNegotiated::of(Some(&no_n), None, Some(&theirs), None, &v4).unwrap().notification);
        let ll = LlgrCap { families: vec![(Family::Ipv4Unicast, false, 3600)] };
        let n = GrNegotiated::of(Some(&ours), Some(&ll), Some(&theirs), Some(&ll), &v4).unwrap();
        assert_eq!(n.long_lived_stale(Family::Ipv4Unicast), Some(3600));
        let n = GrNegotiated::of(Some(&ours), None, Some(&theirs), Some(&ll), &v4).unwrap();
        assert_eq!(n.long_lived_stale(Family::Ipv4Unicast), None, "LLGR only when we advertised it too");
    }

    #[test]
    fn tcp_failure_hold_expiry_and_a_new_connection_keep_routes_a_notification_only_with_n() {
        let admin = Notification::cease(CeaseSubcode::AdministrativeShutdown, None);
        let hard = Notification::new(ErrorCode::Cease, CeaseSubcode::HardReset as u8, vec![6, 2]);
        let update_err = Notification::new(ErrorCode::UpdateMessage, 1, vec![]);
        let hold = Notification::new(ErrorCode::HoldTimerExpired, 0, vec![]);
        for end in [SessionEnd::TcpFailed, SessionEnd::HoldTimerExpired, SessionEnd::PeerRestarted] {
            assert!(helper_keeps_routes(Some(&gr(false)), &end), "{end:?}");
            assert!(!helper_keeps_routes(None, &end), "no GR negotiated: {end:?}");
        }
        assert!(!helper_keeps_routes(Some(&gr(false)), &SessionEnd::Received(hold.clone())));
        assert!(helper_keeps_routes(Some(&gr(true)), &SessionEnd::Received(hold)));
        assert!(!helper_keeps_routes(Some(&gr(false)), &SessionEnd::Received(admin.clone())), "RFC 4724: no N");
        assert!(helper_keeps_routes(Some(&gr(true)), &SessionEnd::Received(admin)), "RFC 8538 §4");
        assert!(helper_keeps_routes(Some(&gr(true)), &SessionEnd::Sent(update_err.clone())));
        assert!(!helper_keeps_routes(Some(&gr(false)), &SessionEnd::Sent(update_err)));
        assert!(!helper_keeps_routes(Some(&gr(true)), &SessionEnd::Received(hard.clone())), "Hard Reset flushes");
        assert!(!helper_keeps_routes(Some(&gr(true)), &SessionEnd::Sent(hard)));
        assert!(!helper_keeps_routes(Some(&gr(true)), &SessionEnd::Shutdown));
        let empty = GrNegotiated { families: vec![], ..gr(true) };
        assert!(!helper_keeps_routes(Some(&empty), &SessionEnd::TcpFailed), "the peer listed no family");
    }

    #[test]
    fn resets_go_out_as_hard_reset_with_the_original_cease_inside_only_with_n() {
        let reset = Notification::cease(CeaseSubcode::AdministrativeReset, Some("bye"));
        let wrapped = as_hard_reset(reset.clone(), Some(&gr(true)));
        assert_eq!((wrapped.code, wrapped.subcode), (6, 9));
        assert_eq!(&wrapped.data[..2], &[6, 4]);
        assert_eq!(&wrapped.data[2..], &reset.data[..]);
        assert_eq!(as_hard_reset(reset.clone(), Some(&gr(false))), reset);
        assert_eq!(as_hard_reset(reset.clone(), None), reset);
        let collision = Notification::cease(CeaseSubcode::ConnectionCollisionResolution, None);
        assert_eq!(as_hard_reset(collision.clone(), Some(&gr(true))), collision);
        let max = Notification::cease(CeaseSubcode::MaximumPrefixesReached, None);
        assert_eq!(as_hard_reset(max, Some(&gr(true))).subcode, 9);
        // A reload's resets (RFC 8538 §5): a changed or removed peer.
        for sub in [
            CeaseSubcode::OtherConfigurationChange,
            CeaseSubcode::PeerDeconfigured,
            CeaseSubcode::AdministrativeShutdown,
        ] {
            let n = as_hard_reset(Notification::cease(sub, None), Some(&gr(true)));
            assert_eq!((n.subcode, n.data[1]), (9, sub as u8), "{sub:?}");
        }
    }
}
