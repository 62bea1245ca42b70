//! The printer: a checked [`Config`] shown back as TOML with every default filled in, for
//! `focld -n -v` (`Config::effective_toml`). Secrets are masked.
//!
//! The TOML is derived from the model's `Serialize` (see `model.rs`); this file holds only the
//! `serialize_with` helpers for values that are not written as their Rust form: secrets, the
//! log level, the prefix and the archive's enums, which are written as the words the reader
//! accepts.

use std::fmt::Display;

use log::LevelFilter;
use serde::Serializer;

use crate::mrt::file::{Compression, Layout};
use crate::mrt::record::Precision;

use super::model::Config;

/// What a password or an S3 secret key is shown as.
const MASK: &str = "********";

impl Config {
    /// The configuration with every default filled in, as TOML that reads back to the same
    /// configuration (`focld -n -v`). Passwords and S3 secret keys are replaced by "********".
    pub fn effective_toml(&self) -> String {
        match toml::to_string(self) {
            Ok(text) => text,
            // Not reached for a checked Config (a test prints one with every key); never panic.
            Err(e) => format!("# the configuration cannot be shown as TOML: {e}\n"),
        }
    }
}

/// A secret that may be absent: the mask, or nothing (the key is left out).
pub(super) fn masked<S: Serializer>(secret: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str(MASK),
        None => s.serialize_none(),
    }
}

/// A secret that is always there.
pub(super) fn masked_str<S: Serializer>(_secret: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(MASK)
}

/// A value in its `Display` form, such as a prefix: "203.0.113.0/24".
pub(super) fn display<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// The log level as the reader takes it: "info".
pub(super) fn lowercase<S: Serializer>(level: &LevelFilter, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&level.to_string().to_lowercase())
}

pub(super) fn layout<S: Serializer>(layout: &Layout, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match layout {
        Layout::RouteViews => "routeviews",
        Layout::Ris => "ris",
    })
}

pub(super) fn compression<S: Serializer>(compression: &Compression, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(compression.name())
}

pub(super) fn precision<S: Serializer>(precision: &Precision, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match precision {
        Precision::Microsecond => "microsecond",
        Precision::Second => "second",
    })
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;

    #[test]
    fn effective_configuration_reads_back_the_same() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/config/every-key.toml"))
            .expect("every-key.toml");
        let c = ok(&text);
        let shown = c.effective_toml();
        assert!(!shown.contains("example-secret") && !shown.contains("password = \"k\""), "{shown}");
        let mut again = ok(&shown);
        // Secrets are masked in the output: put them back to compare the rest.
        again.peers[0].password = c.peers[0].password.clone();
        again.archive.destinations[2] = c.archive.destinations[2].clone();
        assert_eq!(again.global, c.global);
        assert_eq!(again.peers, c.peers);
        assert_eq!(again.prefixes, c.prefixes);
        assert_eq!(again.sources, c.sources);
        assert_eq!(again.archive, c.archive);
        let minimal = ok(MINIMAL).effective_toml();
        assert!(minimal.contains("hold_time_secs = 90") && minimal.contains("layout = \"routeviews\""), "{minimal}");
        assert_eq!(ok(&minimal).global, ok(MINIMAL).global);
    }

    /// `tests/config/every-key.effective` is what the hand-written printer wrote for
    /// every-key.toml before the printer was derived; `FOCL_BLESS=1` rewrites it.
    #[test]
    fn every_key_toml_prints_as_every_key_effective() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/config");
        let text = std::fs::read_to_string(format!("{dir}/every-key.toml")).expect("every-key.toml");
        let shown = ok(&text).effective_toml();
        let expected_path = format!("{dir}/every-key.effective");
        if std::env::var_os("FOCL_BLESS").is_some() {
            std::fs::write(&expected_path, &shown).expect("bless");
        }
        let want = std::fs::read_to_string(&expected_path).expect("every-key.effective");
        assert_eq!(shown, want);
        assert!(shown.contains("password = \"********\"") && shown.contains("secret_key = \"********\""), "{shown}");
    }

    #[test]
    fn max_prefixes_warning_only_is_printed_only_when_true() {
        let limited = ok(&with_peer_keys("max_prefixes = 10"));
        let shown = limited.effective_toml();
        assert!(shown.contains("max_prefixes = 10") && !shown.contains("max_prefixes_warning_only"), "{shown}");
        assert_eq!(ok(&shown).peers, limited.peers);
        let warn = ok(&with_peer_keys("max_prefixes = 10\nmax_prefixes_warning_only = true"));
        assert!(warn.effective_toml().contains("max_prefixes_warning_only = true"));
        // Without max_prefixes the key would be refused on reading back.
        assert!(!ok(MINIMAL).effective_toml().contains("max_prefixes"));
    }

    #[test]
    fn strings_that_need_escaping_read_back_the_same() {
        let c = ok(&MINIMAL.replace("[[peers]]", "control_socket = \"/tmp/a\\\"b'c\\\\d\\u0001.sock\"\n[[peers]]"));
        assert_eq!(c.global.control_socket, std::path::PathBuf::from("/tmp/a\"b'c\\d\u{1}.sock"));
        assert_eq!(ok(&c.effective_toml()).global, c.global);
    }
}
