//! MRT archive (RFC 6396): BGP4MP records of every received message and state change, and
//! TABLE_DUMP_V2 RIB snapshots, written to rotating, compressed files.

pub mod file;
mod finisher;
pub mod record;
pub mod tally;
pub mod writer;
