//! OPEN messages (RFC 4271 §4.2), capabilities (RFC 5492) and session negotiation.
//!
//! The peer thread builds our OPEN from the peer's config and checks the peer's with
//! `validate_open`, which yields the negotiated parameters or the NOTIFICATION to send
//! (RFC 4271 §6.2).

use super::frame::{write_header, MsgType, HEADER_LEN};
use super::graceful::{GrCap, GrNegotiated, LlgrCap};
use super::notify::{DecodeError, HeaderError, OpenSubcode};
use super::role::{self, Role};
use crate::prefix::Family;
use std::net::Ipv4Addr;

/// RFC 6793 §9: the 2-octet stand-in for a 4-octet AS number.
pub const AS_TRANS: u16 = 23456;

/// Capability codes (IANA "Capability Codes").
mod cap {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const ROLE: u8 = 9;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
}

/// Names of capability codes as `focl peer show` prints them (IANA "Capability Codes").
const CAPABILITY_NAMES: &[(u8, &str)] = &[
    (1, "multiprotocol"),                // RFC 4760
    (2, "route_refresh"),                // RFC 2918
    (3, "outbound_route_filtering"),     // RFC 5291
    (5, "extended_next_hop"),            // RFC 8950
    (6, "extended_message"),             // RFC 8654
    (7, "bgpsec"),                       // RFC 8205
    (8, "multiple_labels"),              // RFC 8277
    (9, "role"),                         // RFC 9234
    (64, "graceful_restart"),            // RFC 4724
    (65, "four_octet_as"),               // RFC 6793
    (67, "dynamic_capability"),          // draft-ietf-idr-dynamic-cap
    (68, "multisession"),                // draft-ietf-idr-bgp-multisession
    (69, "add_path"),                    // RFC 7911
    (70, "enhanced_route_refresh"),      // RFC 7313
    (71, "long_lived_graceful_restart"), // RFC 9494
    (72, "routing_policy_distribution"), // RFC 9872
    (73, "fqdn"),                        // draft-walton-bgp-hostname-capability
    (74, "bfd"),                         // draft-ietf-idr-bgp-bfd-strict-mode
    (75, "software_version"),            // draft-abraitis-bgp-version-capability
    (76, "paths_limit"),                 // draft-ietf-idr-add-paths-guidance
    (128, "route_refresh_pre_standard"), // Cisco's code before RFC 2918
];

/// The name of a capability code; `capability(N)` for one not in the table.
pub fn capability_name(code: u8) -> String {
    match CAPABILITY_NAMES.iter().find(|(c, _)| *c == code) {
        Some((_, name)) => (*name).to_string(),
        None => format!("capability({code})"),
    }
}

/// The capabilities one side advertised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Multiprotocol (RFC 4760) families we carry; others are kept in `other_families`.
    pub families: Vec<Family>,
    pub other_families: Vec<(u16, u8)>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub four_octet_as: Option<u32>,
    pub extended_message: bool,
    /// Graceful Restart (RFC 4724 §3, N bit of RFC 8538).
    pub graceful_restart: Option<GrCap>,
    /// Long-Lived Graceful Restart (RFC 9494 §2).
    pub long_lived: Option<LlgrCap>,
    /// ADD-PATH (RFC 7911 §4): per family, 1 receive, 2 send, 3 both.
    pub add_path: Vec<(Family, u8)>,
    /// BGP Role values (RFC 9234): ours (at most one), or every one the peer sent.
    pub roles: Vec<u8>,
    /// Codes of other capabilities seen.
    pub other: Vec<u8>,
    /// Whether any multiprotocol capability was present at all (RFC 4760 §8).
    pub multiprotocol_seen: bool,
}

impl Capabilities {
    /// Names as shown by `focl peer show`: "multiprotocol(ipv4_unicast)", "route_refresh", …
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.families.iter().map(|f| format!("multiprotocol({f})")).collect();
        v.extend(self.other_families.iter().map(|(a, s)| format!("multiprotocol(afi {a} safi {s})")));
        if self.route_refresh {
            v.push("route_refresh".into());
        }
        if self.enhanced_route_refresh {
            v.push("enhanced_route_refresh".into());
        }
        if self.extended_message {
            v.push("extended_message".into());
        }
        if let Some(g) = &self.graceful_restart {
            v.push(gr_name(g));
        }
        if let Some(l) = &self.long_lived {
            let fams: Vec<String> = l.families.iter().map(|(f, fwd, t)| format!("{f} {t}s{}", f_bit(*fwd))).collect();
            v.push(format!("long_lived_graceful_restart({})", fams.join(", ")));
        }
        if let Some(asn) = self.four_octet_as {
            v.push(format!("four_octet_as({asn})"));
        }
        for (f, sr) in &self.add_path {
            v.push(format!("add_path({f} {})", add_path_mode(*sr)));
        }
        v.extend(self.roles.iter().map(|r| format!("role({})", role::value_name(*r))));
        v.extend(self.other.iter().map(|c| capability_name(*c)));
        v
    }

    /// Our role, if we advertise one.
    pub fn role(&self) -> Option<Role> {
        self.roles.first().copied().and_then(Role::from_value)
    }

    /// Capability TLVs in wire form.
    fn encode(&self, out: &mut Vec<u8>) {
        for f in &self.families {
            let afi = f.afi().to_be_bytes();
            out.extend_from_slice(&[cap::MULTIPROTOCOL, 4, afi[0], afi[1], 0, f.safi()]);
        }
        if self.route_refresh {
            out.extend_from_slice(&[cap::ROUTE_REFRESH, 0]);
        }
        // RFC 7313 §3.1: Enhanced Route Refresh, no value.
        if self.enhanced_route_refresh {
            out.extend_from_slice(&[cap::ENHANCED_ROUTE_REFRESH, 0]);
        }
        // RFC 8654 §3: Extended Message, no value.
        if self.extended_message {
            out.extend_from_slice(&[cap::EXTENDED_MESSAGE, 0]);
        }
        // RFC 7911 §4: one tuple per family.
        if !self.add_path.is_empty() {
            out.extend_from_slice(&[cap::ADD_PATH, (4 * self.add_path.len()) as u8]);
            for (f, sr) in &self.add_path {
                out.extend_from_slice(&f.afi().to_be_bytes());
                out.extend_from_slice(&[f.safi(), *sr]);
            }
        }
        // RFC 9234 §4.1: one octet, the role.
        for r in &self.roles {
            out.extend_from_slice(&[cap::ROLE, 1, *r]);
        }
        // RFC 4724 §3 and RFC 9494 §2.
        if let Some(g) = &self.graceful_restart {
            let v = g.encode();
            out.extend_from_slice(&[cap::GRACEFUL_RESTART, v.len() as u8]);
            out.extend_from_slice(&v);
        }
        if let Some(l) = &self.long_lived {
            let v = l.encode();
            out.extend_from_slice(&[cap::LONG_LIVED_GRACEFUL_RESTART, v.len() as u8]);
            out.extend_from_slice(&v);
        }
        if let Some(asn) = self.four_octet_as {
            out.extend_from_slice(&[cap::FOUR_OCTET_AS, 4]);
            out.extend_from_slice(&asn.to_be_bytes());
        }
    }

    fn add(&mut self, code: u8, value: &[u8]) -> Result<(), DecodeError> {
        match code {
            cap::MULTIPROTOCOL => {
                let [a0, a1, _, safi] = value else { return Err(malformed("multiprotocol capability length")) };
                self.multiprotocol_seen = true;
                let afi = u16::from_be_bytes([*a0, *a1]);
                match Family::from_afi_safi(afi, *safi) {
                    Some(f) if !self.families.contains(&f) => self.families.push(f),
                    Some(_) => {}
                    None => self.other_families.push((afi, *safi)),
                }
            }
            cap::ROUTE_REFRESH => self.route_refresh = true,
            cap::ENHANCED_ROUTE_REFRESH => self.enhanced_route_refresh = true,
            cap::EXTENDED_MESSAGE => self.extended_message = true,
            cap::GRACEFUL_RESTART => {
                let g = GrCap::decode(value).ok_or_else(|| malformed("graceful restart capability length"))?;
                self.graceful_restart = Some(g);
            }
            cap::LONG_LIVED_GRACEFUL_RESTART => {
                let l = LlgrCap::decode(value).ok_or_else(|| malformed("LLGR capability length"))?;
                self.long_lived = Some(l);
            }
            cap::ADD_PATH => {
                // RFC 7911 §4: AFI (2), SAFI (1), Send/Receive (1), repeated.
                if value.is_empty() || value.len() % 4 != 0 {
                    return Err(malformed("ADD-PATH capability length"));
                }
                for c in value.chunks_exact(4) {
                    if let Some(f) = Family::from_afi_safi(u16::from_be_bytes([c[0], c[1]]), c[2]) {
                        self.add_path.retain(|(g, _)| *g != f);
                        self.add_path.push((f, c[3]));
                    }
                }
            }
            cap::ROLE => {
                let [r] = value else { return Err(malformed("role capability length")) };
                self.roles.push(*r);
            }
            cap::FOUR_OCTET_AS => {
                let [a, b, c, d] = value else { return Err(malformed("4-octet AS capability length")) };
                self.four_octet_as = Some(u32::from_be_bytes([*a, *b, *c, *d]));
            }
            other => {
                if !self.other.contains(&other) {
                    self.other.push(other);
                }
            }
        }
        Ok(())
    }
}

/// "graceful_restart(120s, R, N, ipv4_unicast F, ipv6_unicast)" as `focl peer show` lists it.
fn gr_name(g: &GrCap) -> String {
    let mut parts = vec![format!("{}s", g.restart_time)];
    if g.restarting {
        parts.push("R".into());
    }
    if g.notification {
        parts.push("N".into());
    }
    parts.extend(g.families.iter().map(|(f, fwd)| format!("{f}{}", f_bit(*fwd))));
    format!("graceful_restart({})", parts.join(", "))
}

fn f_bit(fwd: bool) -> &'static str {
    if fwd {
        " F"
    } else {
        ""
    }
}

fn malformed(_what: &str) -> DecodeError {
    // RFC 4271 §6.2: malformed optional parameters get the unspecific OPEN error subcode 0.
    DecodeError::open(OpenSubcode::Unspecific)
}

/// An OPEN message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenMsg {
    pub version: u8,
    /// The 2-octet "My Autonomous System" field (AS_TRANS for a 4-octet AS).
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub caps: Capabilities,
}

impl OpenMsg {
    /// Our OPEN: version 4, AS_TRANS in the header when the AS needs 4 octets (RFC 6793 §4.1).
    pub fn new(asn: u32, hold_time: u16, router_id: Ipv4Addr, caps: Capabilities) -> OpenMsg {
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
        OpenMsg { version: 4, my_as, hold_time, router_id, caps }
    }

    /// The sender's AS: from the 4-octet AS capability if present, else the header.
    pub fn asn(&self) -> u32 {
        self.caps.four_octet_as.unwrap_or(u32::from(self.my_as))
    }

    /// The whole message. All capabilities go in one Capabilities optional parameter.
    pub fn encode(&self) -> Vec<u8> {
        let mut caps = Vec::new();
        self.caps.encode(&mut caps);
        let mut params = Vec::new();
        if !caps.is_empty() {
            params.push(2);
            params.push(caps.len() as u8);
            params.extend_from_slice(&caps);
        }
        let len = HEADER_LEN + 10 + params.len();
        let mut out = Vec::with_capacity(len);
        write_header(&mut out, len, MsgType::Open);
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.router_id.octets());
        out.push(params.len() as u8);
        out.extend_from_slice(&params);
        out
    }

    /// Decode an OPEN body (after the header). Length problems inside it are OPEN errors.
    pub fn decode(body: &[u8]) -> Result<OpenMsg, DecodeError> {
        let [version, a0, a1, h0, h1, i0, i1, i2, i3, opt_len, rest @ ..] = body else {
            return Err(DecodeError::Header(HeaderError::BadMessageLength((HEADER_LEN + body.len()) as u16)));
        };
        let mut open = OpenMsg {
            version: *version,
            my_as: u16::from_be_bytes([*a0, *a1]),
            hold_time: u16::from_be_bytes([*h0, *h1]),
            router_id: Ipv4Addr::new(*i0, *i1, *i2, *i3),
            caps: Capabilities::default(),
        };
        if *version != 4 {
            return Ok(open); // validate_open answers with the supported version
        }
        let mut params = rest;
        let mut opt_len = usize::from(*opt_len);
        let mut extended = false;
        // RFC 9072: Non-Ext OP Type 255 announces extended (2-octet) parameter lengths.
        if let [255, l0, l1, tail @ ..] = params {
            if opt_len != 0 {
                extended = true;
                opt_len = usize::from(u16::from_be_bytes([*l0, *l1]));
                params = tail;
            }
        }
        if params.len() != opt_len {
            return Err(malformed("optional parameters length"));
        }
        while !params.is_empty() {
            let (ptype, plen, tail) = match (extended, params) {
                (false, [t, l, tail @ ..]) => (*t, usize::from(*l), tail),
                (true, [t, l0, l1, tail @ ..]) => (*t, usize::from(u16::from_be_bytes([*l0, *l1])), tail),
                _ => return Err(malformed("optional parameter header")),
            };
            let value = tail.get(..plen).ok_or_else(|| malformed("optional parameter overruns the message"))?;
            params = &tail[plen..];
            if ptype != 2 {
                // RFC 4271 §6.2: only the Capabilities parameter (RFC 5492) is defined.
                return Err(DecodeError::open(OpenSubcode::UnsupportedOptionalParameter));
            }
            let mut caps = value;
            while !caps.is_empty() {
                let [code, clen, tail @ ..] = caps else { return Err(malformed("capability header")) };
                let v = tail.get(..usize::from(*clen)).ok_or_else(|| malformed("capability overruns its parameter"))?;
                open.caps.add(*code, v)?;
                caps = &tail[usize::from(*clen)..];
            }
        }
        Ok(open)
    }
}

/// What both sides agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub hold_time: u16,
    pub keepalive: u16,
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    /// RFC 7313: both sides advertised Enhanced Route Refresh.
    pub enhanced_route_refresh: bool,
    /// RFC 8654: both sides advertised Extended Message (messages up to 65,535 bytes).
    pub extended_message: bool,
    /// Our BGP Role on this session (RFC 9234), whether or not the peer sent one.
    pub role: Option<Role>,
    /// The role the peer sent, if any.
    pub remote_role: Option<u8>,
    /// Families whose NLRI from the peer carry path identifiers (RFC 7911 §4: we advertised
    /// receive, the peer send, and the family is negotiated).
    pub add_path_rx: Vec<Family>,
    /// Graceful restart on this session (RFC 4724, 8538, 9494): both sides advertised it.
    pub graceful: Option<GrNegotiated>,
}

impl Negotiated {
    /// The largest message either side may send (RFC 8654 §4).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            super::frame::MAX_EXTENDED_LEN
        } else {
            super::frame::MAX_MESSAGE_LEN
        }
    }
}

/// One capability of `focl peer show`: by name, whether we advertised it, the peer did, and
/// whether it is in use on the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityRow {
    pub name: String,
    pub advertised: bool,
    pub received: bool,
    pub negotiated: bool,
}

/// Every capability either side advertised, one row each (multiprotocol one per family).
pub fn capability_rows(
    ours: &Capabilities,
    theirs: Option<&Capabilities>,
    neg: Option<&Negotiated>,
) -> Vec<CapabilityRow> {
    let none = Capabilities::default();
    let t = theirs.unwrap_or(&none);
    let mut rows = Vec::new();
    let mut row = |name: String, advertised: bool, received: bool, negotiated: bool| {
        if advertised || received {
            rows.push(CapabilityRow { name, advertised, received, negotiated });
        }
    };
    for f in Family::ALL {
        let n = neg.is_some_and(|n| n.families.contains(&f));
        row(format!("multiprotocol({f})"), ours.families.contains(&f), t.families.contains(&f), n);
    }
    for (afi, safi) in &t.other_families {
        row(format!("multiprotocol(afi {afi} safi {safi})"), false, true, false);
    }
    let n = |f: fn(&Negotiated) -> bool| neg.is_some_and(f);
    row("route_refresh".into(), ours.route_refresh, t.route_refresh, n(|n| n.route_refresh));
    row(
        "enhanced_route_refresh".into(),
        ours.enhanced_route_refresh,
        t.enhanced_route_refresh,
        n(|n| n.enhanced_route_refresh),
    );
    row("extended_message".into(), ours.extended_message, t.extended_message, n(|n| n.extended_message));
    row("four_octet_as".into(), ours.four_octet_as.is_some(), t.four_octet_as.is_some(), n(|n| n.four_octet_as));
    let gr = neg.and_then(|n| n.graceful.as_ref());
    for f in Family::ALL {
        let listed =
            |c: &Capabilities| c.graceful_restart.as_ref().is_some_and(|g| g.families.iter().any(|(x, _)| *x == f));
        let any = |c: &Capabilities| c.graceful_restart.is_some();
        let n = gr.is_some_and(|g| g.families.iter().any(|(x, _)| *x == f));
        row(format!("graceful_restart({f})"), any(ours), listed(t), n);
        let ll = |c: &Capabilities| c.long_lived.as_ref().is_some_and(|l| l.families.iter().any(|(x, _, _)| *x == f));
        let n = gr.is_some_and(|g| g.long_lived_stale(f).is_some());
        row(format!("long_lived_graceful_restart({f})"), ll(ours), ll(t), n);
    }
    if ours.graceful_restart.is_some() || t.graceful_restart.is_some() {
        let n = |c: &Capabilities| c.graceful_restart.as_ref().is_some_and(|g| g.notification);
        row("graceful_notification".into(), n(ours), n(t), gr.is_some_and(|g| g.notification));
    }
    for f in Family::ALL {
        let mode = |c: &Capabilities| c.add_path.iter().find(|(g, _)| *g == f).map(|(_, m)| *m);
        let n = neg.is_some_and(|n| n.add_path_rx.contains(&f));
        row(format!("add_path({f})"), mode(ours).is_some(), mode(t).is_some(), n);
    }
    let role_name = |v: &[u8]| v.first().map(|r| format!("role({})", role::value_name(*r)));
    let both_roles = neg.is_some() && !ours.roles.is_empty() && !t.roles.is_empty();
    match (role_name(&ours.roles), role_name(&t.roles)) {
        (Some(a), Some(b)) if a == b => row(a, true, true, both_roles),
        (a, b) => {
            if let Some(a) = a {
                row(a, true, false, false);
            }
            if let Some(b) = b {
                row(b, false, true, false);
            }
        }
    }
    for c in &t.other {
        row(capability_name(*c), false, true, false);
    }
    rows
}

/// "receive", "send" or "send/receive" (RFC 7911 §4 values 1, 2, 3).
fn add_path_mode(sr: u8) -> String {
    match sr {
        1 => "receive".into(),
        2 => "send".into(),
        3 => "send/receive".into(),
        v => format!("mode {v}"),
    }
}

/// RFC 7911 §4: the peer sends path identifiers for a family when it advertised send (2 or 3)
/// and we advertised receive (1 or 3) for it.
fn families_of_add_path(ours: &Capabilities, theirs: &Capabilities, negotiated: &[Family]) -> Vec<Family> {
    let has = |c: &Capabilities, f: Family, bit: u8| c.add_path.iter().any(|(g, m)| *g == f && m & bit != 0);
    negotiated.iter().copied().filter(|f| has(ours, *f, 1) && has(theirs, *f, 2)).collect()
}

/// RFC 4271 §6.2 checks of a received OPEN, then negotiation; `strict_role` refuses a peer
/// that sends no BGP Role when we have one (RFC 9234 §4.2).
pub fn validate_open(
    open: &OpenMsg,
    expected_remote_as: u32,
    local_as: u32,
    local_router_id: Ipv4Addr,
    ours: &Capabilities,
    our_hold: u16,
    strict_role: bool,
) -> Result<Negotiated, DecodeError> {
    if open.version != 4 {
        // "the Data field is a 2-octet unsigned integer, which indicates the largest ...
        // version number supported"
        return Err(DecodeError::Open(OpenSubcode::UnsupportedVersionNumber, vec![0, 4]));
    }
    let bad_as = || DecodeError::open(OpenSubcode::BadPeerAs);
    if open.asn() != expected_remote_as {
        return Err(bad_as());
    }
    // RFC 6793 §4.1: a 4-octet AS must come with AS_TRANS in the header.
    if open.caps.four_octet_as.is_some_and(|a| a > 65535) && open.my_as != AS_TRANS {
        return Err(bad_as());
    }
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(DecodeError::open(OpenSubcode::UnacceptableHoldTime));
    }
    let id = u32::from(open.router_id);
    // RFC 6286 §2.2: the identifier must be non-zero; only iBGP peers must differ from us.
    if id == 0 || (expected_remote_as == local_as && open.router_id == local_router_id) {
        return Err(DecodeError::open(OpenSubcode::BadBgpIdentifier));
    }
    // RFC 9234 §4.2: a role pair not in Table 2 is OPEN Message Error / Role Mismatch.
    if role::check_roles(ours.role(), strict_role, &open.caps.roles).is_err() {
        return Err(DecodeError::open(OpenSubcode::RoleMismatch));
    }
    let hold_time = if open.hold_time == 0 || our_hold == 0 { 0 } else { open.hold_time.min(our_hold) };
    // RFC 4760 §8: a peer that advertised no multiprotocol capability speaks IPv4 unicast.
    let theirs: Vec<Family> =
        if open.caps.multiprotocol_seen { open.caps.families.clone() } else { vec![Family::Ipv4Unicast] };
    let families: Vec<Family> = ours.families.iter().copied().filter(|f| theirs.contains(f)).collect();
    let add_path_rx = families_of_add_path(ours, &open.caps, &families);
    let c = &open.caps;
    let graceful = GrNegotiated::of(
        ours.graceful_restart.as_ref(),
        ours.long_lived.as_ref(),
        c.graceful_restart.as_ref(),
        c.long_lived.as_ref(),
        &families,
    );
    Ok(Negotiated {
        hold_time,
        keepalive: hold_time / 3,
        families,
        four_octet_as: ours.four_octet_as.is_some() && open.caps.four_octet_as.is_some(),
        route_refresh: ours.route_refresh && (open.caps.route_refresh || open.caps.enhanced_route_refresh),
        // RFC 7313 §3.1: in use when both advertised it (and route refresh, RFC 2918).
        enhanced_route_refresh: ours.route_refresh && ours.enhanced_route_refresh && open.caps.enhanced_route_refresh,
        extended_message: ours.extended_message && open.caps.extended_message,
        role: ours.role(),
        remote_role: open.caps.roles.first().copied(),
        add_path_rx,
        graceful,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::notify::Notification;

    fn ours() -> Capabilities {
        Capabilities {
            families: Family::ALL.to_vec(),
            route_refresh: true,
            four_octet_as: Some(65001),
            ..Default::default()
        }
    }

    fn peer_open(asn: u32, hold: u16, id: [u8; 4]) -> OpenMsg {
        let caps = Capabilities { four_octet_as: Some(asn), ..ours() };
        OpenMsg::new(asn, hold, Ipv4Addr::from(id), caps)
    }

    fn check(o: &OpenMsg) -> Result<Negotiated, (u8, u8, Vec<u8>)> {
        validate_open(o, 65002, 65001, Ipv4Addr::new(192, 0, 2, 1), &ours(), 90, false)
            .map_err(Notification::from)
            .map_err(|n| (n.code, n.subcode, n.data))
    }

    #[test]
    fn four_octet_asn_goes_as_as_trans_in_the_header() {
        let o = OpenMsg::new(4_200_000_000, 90, Ipv4Addr::new(192, 0, 2, 1), ours());
        let raw = o.encode();
        assert_eq!(&raw[19..22], &[4, 0x5b, 0xa0], "version 4, AS_TRANS 23456");
        let back = OpenMsg::decode(&raw[19..]).unwrap();
        assert_eq!(back.my_as, AS_TRANS);
        assert_eq!(back.caps.four_octet_as, Some(65001));
        assert_eq!(back.caps.families, Family::ALL.to_vec());
        assert!(back.caps.route_refresh);
    }

    #[test]
    fn our_open_bytes_exactly() {
        let caps = Capabilities {
            families: vec![Family::Ipv4Unicast],
            route_refresh: true,
            four_octet_as: Some(65001),
            ..Default::default()
        };
        let raw = OpenMsg::new(65001, 90, Ipv4Addr::new(192, 0, 2, 1), caps).encode();
        let mut want = vec![0xff; 16];
        want.extend_from_slice(&[0, 45, 1, 4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1, 16, 2, 14]);
        want.extend_from_slice(&[1, 4, 0, 1, 0, 1, 2, 0, 65, 4, 0, 0, 0xfd, 0xe9]);
        assert_eq!(raw, want);
    }

    #[test]
    fn bgpkit_parser_reads_our_open_the_same_way() {
        let raw = OpenMsg::new(4_200_000_000, 90, Ipv4Addr::new(192, 0, 2, 1), ours()).encode();
        let mut body = bytes::Bytes::copy_from_slice(&raw[19..]);
        let theirs = bgpkit_parser::parser::bgp::messages::parse_bgp_open_message(&mut body).unwrap();
        assert_eq!(theirs.version, 4);
        assert_eq!(theirs.hold_time, 90);
        assert_eq!(theirs.bgp_identifier, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(theirs.opt_params.len(), 1);
    }

    #[test]
    fn open_errors_get_rfc4271_subcodes() {
        let mut v3 = peer_open(65002, 90, [192, 0, 2, 2]);
        v3.version = 3;
        assert_eq!(check(&v3), Err((2, 1, vec![0, 4])));
        assert_eq!(check(&peer_open(65099, 90, [192, 0, 2, 2])).unwrap_err().1, 2);
        assert_eq!(check(&peer_open(65002, 1, [192, 0, 2, 2])).unwrap_err().1, 6);
        assert_eq!(check(&peer_open(65002, 2, [192, 0, 2, 2])).unwrap_err().1, 6);
        assert_eq!(check(&peer_open(65002, 90, [0, 0, 0, 0])).unwrap_err().1, 3);
        // eBGP peers may share our identifier (RFC 6286); iBGP peers may not.
        assert!(check(&peer_open(65002, 90, [192, 0, 2, 1])).is_ok());
        let ibgp = peer_open(65001, 90, [192, 0, 2, 1]);
        let r = validate_open(&ibgp, 65001, 65001, Ipv4Addr::new(192, 0, 2, 1), &ours(), 90, false);
        assert_eq!(r.map_err(|n| Notification::from(n).subcode), Err(3));
    }

    #[test]
    fn negotiation_takes_the_smaller_hold_time_and_common_families() {
        let n = check(&peer_open(65002, 30, [192, 0, 2, 2])).unwrap();
        assert_eq!((n.hold_time, n.keepalive), (30, 10));
        assert!(n.four_octet_as && n.route_refresh);
        let n = check(&peer_open(65002, 0, [192, 0, 2, 2])).unwrap();
        assert_eq!((n.hold_time, n.keepalive), (0, 0), "0 on either side disables");
        let mut v4only = peer_open(65002, 90, [192, 0, 2, 2]);
        v4only.caps.families = vec![Family::Ipv4Unicast];
        assert_eq!(check(&v4only).unwrap().families, vec![Family::Ipv4Unicast]);
        let mut no_mp = peer_open(65002, 240, [192, 0, 2, 2]);
        no_mp.caps = Capabilities::default();
        let raw = no_mp.encode();
        let decoded = OpenMsg::decode(&raw[19..]).unwrap();
        let n = check(&decoded).unwrap();
        assert_eq!(n.families, vec![Family::Ipv4Unicast], "no MP capability means IPv4 unicast");
        assert_eq!(n.hold_time, 90);
        assert!(!n.four_octet_as && !n.route_refresh);
    }

    #[test]
    fn malformed_optional_parameters_are_open_errors() {
        let raw = peer_open(65002, 90, [192, 0, 2, 2]).encode();
        let mut body = raw[19..].to_vec();
        body[9] += 1; // opt param length longer than what follows
        assert_eq!(OpenMsg::decode(&body).map_err(Notification::from).unwrap_err().code, 2);
        let mut body = raw[19..].to_vec();
        body[13] = 40; // capability length overruns its parameter
        assert_eq!(OpenMsg::decode(&body).map_err(Notification::from).unwrap_err().code, 2);
        let mut body = raw[19..].to_vec();
        body[10] = 3; // parameter type 3 is not defined
        assert_eq!(OpenMsg::decode(&body).map_err(Notification::from).unwrap_err().subcode, 4);
        assert_eq!(OpenMsg::decode(&body[..5]).map_err(Notification::from).unwrap_err().code, 1);
    }

    #[test]
    fn unknown_capabilities_are_kept_by_code() {
        let mut o = peer_open(65002, 90, [192, 0, 2, 2]);
        let mut raw = o.encode();
        // Append capability 73 (FQDN, empty) and EVPN multiprotocol to the parameter.
        raw.extend_from_slice(&[73, 0, 1, 4, 0, 25, 0, 70]);
        raw[28] += 8;
        raw[30] += 8;
        let len = raw.len() as u16;
        raw[16..18].copy_from_slice(&len.to_be_bytes());
        o = OpenMsg::decode(&raw[19..]).unwrap();
        assert_eq!(o.caps.other, vec![73]);
        assert_eq!(o.caps.other_families, vec![(25, 70)]);
        assert!(o.caps.names().contains(&"fqdn".to_string()));
        assert_eq!(capability_name(71), "long_lived_graceful_restart");
        assert_eq!(capability_name(200), "capability(200)");
        assert_eq!(capability_name(73), "fqdn");
        assert_eq!(capability_name(5), "extended_next_hop");
    }

    #[test]
    fn extended_message_enhanced_refresh_and_role_capability_bytes_both_ways() {
        let caps = Capabilities {
            extended_message: true,
            enhanced_route_refresh: true,
            roles: vec![Role::Customer.value()],
            ..Default::default()
        };
        let mut out = Vec::new();
        caps.encode(&mut out);
        assert_eq!(out, [70, 0, 6, 0, 9, 1, 3], "RFC 7313 §3.1, RFC 8654 §3, RFC 9234 §4.1");
        let raw = OpenMsg::new(65001, 90, Ipv4Addr::new(192, 0, 2, 1), caps.clone()).encode();
        let back = OpenMsg::decode(&raw[19..]).unwrap();
        assert_eq!(back.caps, caps);
        assert_eq!(back.caps.role(), Some(Role::Customer));
        // bgpkit-parser reads the same three capabilities.
        let mut body = bytes::Bytes::copy_from_slice(&raw[19..]);
        let theirs = bgpkit_parser::parser::bgp::messages::parse_bgp_open_message(&mut body).unwrap();
        let codes: Vec<u8> = theirs
            .opt_params
            .iter()
            .flat_map(|p| match &p.param_value {
                bgpkit_parser::models::ParamValue::Capacities(c) => c.iter().map(|c| c.ty.into()).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(codes, [70, 6, 9]);
    }

    #[test]
    fn a_role_capability_of_the_wrong_length_is_an_open_error() {
        let mut raw = OpenMsg::new(65001, 90, Ipv4Addr::new(192, 0, 2, 1), Capabilities::default()).encode();
        raw.extend_from_slice(&[2, 4, 9, 2, 3, 3]);
        raw[28] = 6;
        assert_eq!(OpenMsg::decode(&raw[19..]).map_err(Notification::from).map_err(|n| n.code), Err(2));
    }

    #[test]
    fn a_role_mismatch_is_refused_with_2_11() {
        let with_role = |r: Option<Role>| Capabilities { roles: r.map(|r| r.value()).into_iter().collect(), ..ours() };
        let mut us = with_role(Some(Role::Customer));
        us.four_octet_as = Some(65001);
        let id = Ipv4Addr::new(192, 0, 2, 1);
        let peer = |r: Option<Role>| {
            let caps = Capabilities { four_octet_as: Some(65002), ..with_role(r) };
            OpenMsg::new(65002, 90, Ipv4Addr::new(192, 0, 2, 2), caps)
        };
        let code = |o: &OpenMsg, strict| {
            validate_open(o, 65002, 65001, id, &us, 90, strict)
                .map_err(Notification::from)
                .map_err(|n| (n.code, n.subcode))
        };
        let n = code(&peer(Some(Role::Provider)), true).unwrap();
        assert_eq!((n.role, n.remote_role), (Some(Role::Customer), Some(0)));
        assert_eq!(code(&peer(Some(Role::Customer)), false).unwrap_err(), (2, 11));
        assert_eq!(code(&peer(Some(Role::Peer)), false).unwrap_err(), (2, 11));
        assert!(code(&peer(None), false).is_ok(), "no role from the peer: accepted unless strict");
        assert_eq!(code(&peer(None), true).unwrap_err(), (2, 11));
    }

    #[test]
    fn enhanced_refresh_and_extended_messages_need_both_sides() {
        let mut us = ours();
        us.extended_message = true;
        us.enhanced_route_refresh = true;
        let id = Ipv4Addr::new(192, 0, 2, 1);
        let mut o = peer_open(65002, 90, [192, 0, 2, 2]);
        let n = validate_open(&o, 65002, 65001, id, &us, 90, false).unwrap();
        assert!(!n.extended_message && !n.enhanced_route_refresh);
        assert_eq!(n.max_message_len(), 4096);
        o.caps.extended_message = true;
        o.caps.enhanced_route_refresh = true;
        let n = validate_open(&o, 65002, 65001, id, &us, 90, false).unwrap();
        assert!(n.extended_message && n.enhanced_route_refresh);
        assert_eq!(n.max_message_len(), 65535);
    }

    #[test]
    fn peer_show_rows_say_advertised_received_and_negotiated_by_name() {
        let mut us = ours();
        us.extended_message = true;
        let mut o = peer_open(65002, 90, [192, 0, 2, 2]);
        o.caps.families = vec![Family::Ipv4Unicast];
        o.caps.other = vec![73, 5];
        let n = validate_open(&o, 65002, 65001, Ipv4Addr::new(192, 0, 2, 1), &us, 90, false).unwrap();
        let rows = capability_rows(&us, Some(&o.caps), Some(&n));
        let get = |name: &str| {
            let r = rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name} in {rows:?}"));
            (r.advertised, r.received, r.negotiated)
        };
        assert_eq!(get("multiprotocol(ipv4_unicast)"), (true, true, true));
        assert_eq!(get("multiprotocol(ipv6_unicast)"), (true, false, false));
        assert_eq!(get("extended_message"), (true, false, false));
        assert_eq!(get("four_octet_as"), (true, true, true));
        assert_eq!(get("fqdn"), (false, true, false));
        assert_eq!(get("extended_next_hop"), (false, true, false));
        assert!(!rows.iter().any(|r| r.name == "add_path"), "neither side: no row");
    }

    #[test]
    fn graceful_restart_and_llgr_capabilities_go_through_the_open_and_negotiate_per_family() {
        let mut us = ours();
        us.graceful_restart = Some(GrCap { notification: true, restart_time: 120, ..GrCap::default() });
        us.long_lived = Some(LlgrCap { families: vec![(Family::Ipv4Unicast, false, 600)] });
        let raw = OpenMsg::new(65001, 90, Ipv4Addr::new(192, 0, 2, 1), us.clone()).encode();
        let back = OpenMsg::decode(&raw[19..]).unwrap();
        assert_eq!(
            (back.caps.graceful_restart.as_ref(), back.caps.long_lived.as_ref()),
            (us.graceful_restart.as_ref(), us.long_lived.as_ref())
        );
        // bgpkit-parser reads our Graceful Restart capability as RFC 4724 lays it out.
        let mut body = bytes::Bytes::copy_from_slice(&raw[19..]);
        let theirs = bgpkit_parser::parser::bgp::messages::parse_bgp_open_message(&mut body).unwrap();
        let gr = theirs.opt_params.iter().find_map(|p| match &p.param_value {
            bgpkit_parser::models::ParamValue::Capacities(c) => c.iter().find_map(|c| match &c.value {
                bgpkit_parser::models::CapabilityValue::GracefulRestart(g) => Some(g.clone()),
                _ => None,
            }),
            _ => None,
        });
        let gr = gr.expect("a graceful restart capability");
        assert_eq!(gr.restart_time, 120);
        assert!(!gr.restart_state);
        let mut o = peer_open(65002, 90, [192, 0, 2, 2]);
        o.caps.graceful_restart = Some(GrCap {
            restarting: true,
            notification: true,
            restart_time: 60,
            families: vec![(Family::Ipv4Unicast, true), (Family::Ipv6Unicast, false)],
            other_families: 0,
        });
        o.caps.long_lived = Some(LlgrCap { families: vec![(Family::Ipv4Unicast, true, 86_400)] });
        o.caps.multiprotocol_seen = true;
        let n = validate_open(&o, 65002, 65001, Ipv4Addr::new(192, 0, 2, 1), &us, 90, false).unwrap();
        let g = n.graceful.clone().expect("negotiated");
        assert!(g.notification && g.peer_restarting && g.forwarding(Family::Ipv4Unicast));
        assert!(!g.forwarding(Family::Ipv6Unicast), "{g:?}");
        assert!(g.covers(Family::Ipv6Unicast), "{g:?}");
        assert_eq!(g.long_lived_stale(Family::Ipv4Unicast), Some(86_400));
        let rows = capability_rows(&us, Some(&o.caps), Some(&n));
        let get = |name: &str| rows.iter().find(|r| r.name == name).map(|r| (r.advertised, r.received, r.negotiated));
        assert_eq!(get("graceful_restart(ipv4_unicast)"), Some((true, true, true)));
        assert_eq!(get("long_lived_graceful_restart(ipv4_unicast)"), Some((true, true, true)));
        assert_eq!(get("graceful_notification"), Some((true, true, true)));
        assert!(o.caps.names().contains(&"graceful_restart(60s, R, N, ipv4_unicast F, ipv6_unicast)".to_string()));
        // A capability of the wrong length is an OPEN error.
        let mut raw = OpenMsg::new(65001, 90, Ipv4Addr::new(192, 0, 2, 1), Capabilities::default()).encode();
        raw.extend_from_slice(&[2, 5, 64, 3, 0, 120, 0]);
        raw[28] = 7;
        assert_eq!(OpenMsg::decode(&raw[19..]).map_err(Notification::from).map_err(|n| n.code), Err(2));
    }
}
