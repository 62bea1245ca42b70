//! BGP wire format: message framing, OPEN and capabilities, the path attribute table, AS_PATH
//! segments, UPDATE decoding and building, NOTIFICATION codes with their IANA names.
//! Pure code: no sockets, no threads.

pub mod aspath;
pub mod attr;
pub mod display;
pub mod frame;
pub mod graceful;
pub mod notify;
pub mod open;
pub mod reannounce;
pub mod rebuild;
pub mod role;
pub mod update;
