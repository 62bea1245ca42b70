//! MRT archive (RFC 6396): BGP4MP records of every received message and state change, and
//! TABLE_DUMP_V2 RIB snapshots, written to rotating, compressed files.

pub mod file;
pub mod record;
pub mod writer;
