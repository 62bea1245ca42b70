//! MRT files (in progress).
