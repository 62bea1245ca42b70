//! The CONTROL THREAD: serves focl's NDJSON requests on the Unix socket.
//!
//! Fed by focl clients (one request a line); answers each by asking the thread that knows over
//! its channel. Emits one reply line per request.
//!
//! Files: `proto.rs` (the typed protocol shared with focl: `Request`/`Command`, `Reply`, the
//! result types whose field names are the `focl -j` contract), `server.rs` (the mio loop,
//! framing, limits), `dispatch.rs` (what each command asks of which thread).

pub mod dispatch;
pub mod proto;
pub mod server;

pub use dispatch::{DaemonView, Dispatcher, PeerRef, RunInfo};
pub use server::{ControlServer, Handler};
