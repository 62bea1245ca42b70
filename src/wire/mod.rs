//! BGP wire format: message framing, OPEN and capabilities, UPDATE decoding and building,
//! NOTIFICATION codes with their IANA names. Pure code: no sockets, no threads.

pub mod frame;
pub mod notify;
pub mod open;
pub mod update;
