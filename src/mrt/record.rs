//! MRT record encoding (in progress).
