//! BMP (RFC 7854) export: the pure encoder (`encode.rs`).
pub mod encode;
