//! focl: a synchronous, thread-per-peer BGP speaker and MRT route collector.
//!
//! ```text
//!             accept                    PeerMsg                  RibMsg
//! listener ──────────────▶ peer thread ◀──────── rib thread ◀───────────── peer threads
//!  (mio Poll, v4+v6)       (one per peer:        (Adj-RIB-In per peer,      (routes, session up/down)
//!                           framing, FSM,          Adj-RIB-Out, queries)
//!                           timers, socket)
//! control thread (Unix socket, NDJSON) ── asks peers and the rib over channels
//! ```
//!
//! | channel | receiver | carries |
//! |---|---|---|
//! | `PeerMsg` | one peer thread | accepted sockets, UPDATEs to send, status queries, reset/refresh |
//! | `RibMsg`  | rib thread | parsed routes, session up/down, queries |
//!
//! Supported: RFC 4271 (BGP-4), RFC 4760 (multiprotocol, IPv4/IPv6 unicast), RFC 6793 (4-octet
//! AS), RFC 2918 (route refresh), RFC 4724 §2 (End-of-RIB marker), RFC 4486 (Cease subcodes),
//! RFC 9003 (shutdown communication).

pub mod config;
pub mod control;
pub mod ctl;
pub mod daemon;
pub mod fsm;
pub mod listener;
pub mod mrt;
pub mod peer;
pub mod prefix;
pub mod privs;
pub mod replicate;
pub mod rib;
pub mod sock;
pub mod utc;
pub mod wire;
