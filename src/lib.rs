//! focl: a synchronous, thread-per-peer BGP speaker and MRT route collector.
//!
//! ```text
//!               Incoming(socket)              PeerMsg                     RibMsg
//!  listener ────────────────────▶ peer threads ◀────────── rib thread ◀────────────── peer threads
//!  (mio Poll, v4+v6,             (session/: one per       (rib/: Adj-RIB-In per      (routes, session
//!   MD5 keys per peer)             peer; framing, FSM,      peer, Adj-RIB-Out,         up/down, refresh)
//!        ▲ ListenerMsg             timers, socket)          snapshots, queries)
//!        │                              │ MrtMsg                 │ MrtMsg (snapshot chunks)
//!  main thread (daemon.rs:              ▼                        ▼
//!  start, reload, stop)           mrt writer ─▶ finisher (mrt/) ──FileSink──▶ replication
//!        ▲ ReloadRequest          update files, snapshots                           threads (archive/:
//!        │                                                                           local dirs, S3,
//!  control thread (control/: Unix socket, NDJSON) ── asks peers, rib, writer ──      retention)
//!        │ Subscribe (the client's socket)
//!        ▼
//!  monitor thread (monitor/) ◀── MonitorMsg::Event ── peer threads; writes `focl monitor` streams
//!  RTR client thread (rpki/) ◀── RpkiMsg ── control, main; talks RTR to the caches (RFC 8210)
//!  source thread (source/) ◀── SourceMsg::Load ── rib; reads [[sources]] MRT dumps and hands
//!        each table back to the rib (RibMsg::SourceLoaded), which announces it to peer threads
//! ```
//!
//! Every channel's message type, link and id lives in [`msg`]; thread modules depend on it and
//! on the pure codecs, never on each other.
//!
//! | channel | sender(s) | receiver | carries |
//! |---|---|---|---|
//! | `PeerMsg` (`PeerLink`) | listener, rib, control | one peer thread | accepted sockets, UPDATEs to send, status queries, reset/refresh/disable/enable, max-prefix |
//! | `PeerStop` (`PeerLink`'s stop slot) | main | one peer thread | stop with a Cease: a slot of its own, so a full inbox never loses it |
//! | `RibMsg` | peer threads, control, main, source thread | rib thread | parsed UPDATEs, session up/down, route-refresh, queries, snapshot, reload changes, sources and their tables, stop |
//! | `MrtMsg` (`MrtLink`) | peer threads, rib, control, main | mrt writer | raw received messages, state changes, snapshot chunks, rotate, status, reconfigure, stop |
//! | `DestMsg` (`FileSink`) | mrt finisher, control, archive | each replication thread, retention | finished files, retry, stop |
//! | `ListenerMsg` | main | listener | the set of peers and their TCP-MD5 keys |
//! | `RpkiMsg` (`RpkiLink`) | control, main | RTR client | status, origin-validation lookups, reload, stop |
//! | `MonitorMsg` (`MonitorLink`) | peer threads, control, main | monitor | received UPDATEs/NOTIFICATIONs and state changes (only while someone listens), subscriptions, status, stop |
//! | `ReloadRequest` | control | main | `focl reload`, answered with a `ReloadReport` |
//! | `SourceMsg` (`SourceLink`) | rib | source thread | files of `[[sources]]` to read (start, reload, `focl source reload`) |
//! | `BmpMsg` (`BmpLink`) | peer threads, rib, station threads, control, main | bmp thread | Peer Up/Down, received and sent UPDATEs (while a station is configured), the rib's post-policy changes and Loc-RIB feeds, station connected, status, reload, stop; it asks the rib for initial dumps (`RibMsg::BmpDump`), post-policy changes (`BmpPostPolicy`) and Loc-RIB feeds (`BmpLocRib`) |
//!
//! Modules by thread: `session/` (peer threads), `listener.rs`, `rib/`, `monitor/` (live
//! stream), `rpki/` (RTR client thread; pure PDU, session and ROV cores), `source/` (source
//! thread; pure TABLE_DUMP_V2 reader), `mrt/` (writer and
//! finisher threads; record and file encoders), `archive/` (replication and retention threads,
//! manifests),
//! `control/` (control thread: server, typed protocol, dispatch), `daemon.rs` (main thread).
//! Pure codecs and data: `wire/` (BGP messages), `config/`, `prefix.rs`, `utc.rs`; `privs.rs`
//! drops root. See docs/architecture.md.
//!
//! Supported: RFC 4271 (BGP-4), RFC 4760 (multiprotocol, IPv4/IPv6 unicast), RFC 6793 (4-octet
//! AS), RFC 2918 (route refresh), RFC 4724 §2 (End-of-RIB marker), RFC 4486 (Cease subcodes),
//! RFC 9003 (shutdown communication), RFC 7606 (revised error handling), RFC 9687 (send hold
//! timer), RFC 2385 (TCP-MD5), RFC 5082 (GTSM), RFC 6396 (MRT), RFC 7313 §5 (ROUTE-REFRESH
//! errors), RFC 8210 and RFC 6810 (RTR client), RFC 6811 (route origin validation), RFC 7854
//! (BMP export, `bmp/`: one thread plus one per station), RFC 8671 (BMP Adj-RIB-Out), RFC 9069
//! (BMP Loc-RIB).

pub mod archive;
pub mod bmp;
pub mod config;
pub mod control;
pub mod daemon;
pub mod listener;
pub mod mem;
pub mod monitor;
pub mod mrt;
pub mod msg;
pub mod policy;
pub mod prefix;
pub mod privs;
pub mod rib;
pub mod rpki;
pub mod session;
pub mod source;
pub mod utc;
pub mod wire;
