//! RPKI: route origin validation (RFC 6811) against VRPs from RTR caches (RFC 8210 / 6810)
//! and from files.
//!
//! Pure cores: `pdu.rs` (the RTR PDUs both ways), `cache.rs` (one cache session: queries,
//! responses committed at End of Data, timers, version downgrade), `vrp.rs` (VRPs, the table
//! and RFC 6811 validation).

pub mod cache;
pub mod pdu;
pub mod vrp;
