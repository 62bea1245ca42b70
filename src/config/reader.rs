//! The generic reader: walks a `toml::de::DeTable` and collects every problem as a
//! [`ConfigError`] naming the file, the line and the key path, so an operator fixes the file in
//! one pass.
//!
//! Used by the section readers (`global.rs`, `peers.rs`, `prefixes.rs`, `archive.rs`): a
//! [`Table`] records which keys were asked for and reports the rest as unknown, with a
//! suggestion by edit distance; [`Reader`] turns typed values and ranges into messages.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::str::FromStr;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line of the offending key or value; `None` when it has no place in the file (a
    /// missing table, an unreadable file).
    pub line: Option<usize>,
    /// Key path such as `global.asn` or `peers[0].remote_as`; empty for file-level errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------------
// Reading the tree: the file's tables and values with their lines.

/// Collects errors and turns byte offsets into line numbers.
pub(super) struct Reader {
    pub(super) file: String,
    /// Where relative paths in the file are taken from: the directory focld was started in.
    pub(super) base: std::path::PathBuf,
    /// Byte offset where each line starts.
    pub(super) line_starts: Vec<usize>,
    pub(super) errors: Vec<ConfigError>,
}

impl Reader {
    pub(super) fn new(text: &str, file: &Path, base: &Path) -> Reader {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Reader { file: file.display().to_string(), base: base.to_path_buf(), line_starts, errors: Vec::new() }
    }

    /// A path value; a relative one is taken from the directory focld was started in, so it
    /// means the same after `-d` (which runs from `/`) and on every reload.
    pub(super) fn path(&mut self, f: &Field<'_, '_>) -> Option<std::path::PathBuf> {
        let p = Path::new(self.str(f)?);
        Some(if p.is_absolute() { p.to_path_buf() } else { self.base.join(p) })
    }

    /// 1-based line holding byte `offset`.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset).max(1)
    }

    pub(super) fn error(&mut self, line: Option<usize>, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError { file: self.file.clone(), line, key: key.to_string(), message: message.into() });
    }

    /// Errors in file order; ones without a line (missing tables) first.
    pub(super) fn into_errors(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| e.line);
        self.errors
    }

    pub(super) fn at(&mut self, f: &Field<'_, '_>, message: impl Into<String>) {
        self.error(Some(f.line), &f.key, message);
    }

    pub(super) fn type_error(&mut self, f: &Field<'_, '_>, expected: &str) {
        let mut message = format!("expected {expected}, got {}", a_type(f.value));
        // A quoted number or boolean is the commonest slip; say how to fix it.
        if let DeValue::String(s) = f.value {
            let bare = (expected.contains("integer") && s.parse::<i64>().is_ok())
                || (expected.contains("boolean") && (s.as_ref() == "true" || s.as_ref() == "false"));
            if bare {
                message.push_str(&format!(" (write {s} without quotes)"));
            }
        }
        self.at(f, message);
    }

    pub(super) fn bool(&mut self, f: &Field<'_, '_>) -> Option<bool> {
        match f.value {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(f, "a boolean (true or false)");
                None
            }
        }
    }

    pub(super) fn str<'a>(&mut self, f: &Field<'a, '_>) -> Option<&'a str> {
        match f.value {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.type_error(f, "a string");
                None
            }
        }
    }

    /// Any integer; the callers check ranges with messages that say what the number is.
    pub(super) fn integer(&mut self, f: &Field<'_, '_>) -> Option<i128> {
        match f.value {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.at(f, format!("integer {i} is out of range"));
                    None
                }
            },
            _ => {
                self.type_error(f, "an integer");
                None
            }
        }
    }

    /// An integer within `lo..=hi`: "port must be from 1 to 65535, got 70000".
    pub(super) fn int_in<T>(&mut self, f: &Field<'_, '_>, lo: T, hi: T, what: &str, unit: &str) -> Option<T>
    where
        T: Copy + fmt::Display + Into<i128> + TryFrom<i128>,
    {
        let v = self.integer(f)?;
        if v < lo.into() || v > hi.into() {
            self.at(f, format!("{what} must be from {lo} to {hi}{unit}, got {v}"));
            return None;
        }
        T::try_from(v).ok()
    }

    /// A 4-octet AS number (RFC 6793), not the reserved AS 0 (RFC 7607).
    pub(super) fn asn(&mut self, f: &Field<'_, '_>) -> Option<u32> {
        let v = self.integer(f)?;
        if v == 0 {
            self.at(f, "AS number 0 is reserved and cannot be used (RFC 7607)");
            return None;
        }
        match u32::try_from(v) {
            Ok(asn) => Some(asn),
            Err(_) => {
                self.at(f, format!("AS number must be from 1 to {} (4-octet AS numbers, RFC 6793), got {v}", u32::MAX));
                None
            }
        }
    }

    /// A string that `T::from_str` accepts; `bad` words the message from the string.
    pub(super) fn parsed<T: FromStr>(&mut self, f: &Field<'_, '_>, bad: impl Fn(&str) -> String) -> Option<T> {
        let s = self.str(f)?;
        match s.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.at(f, bad(s));
                None
            }
        }
    }

    /// A unicast IP address written in its own family's form. `what` names it in messages.
    pub(super) fn unicast_addr(&mut self, f: &Field<'_, '_>, what: &str) -> Option<IpAddr> {
        let addr: IpAddr = self.parsed(f, |s| format!("'{s}' is not an IP address"))?;
        if let IpAddr::V6(v6) = addr {
            if let Some(v4) = v6.to_ipv4_mapped() {
                self.at(f, format!("{addr} is an IPv4-mapped IPv6 address; write the IPv4 form, {v4}"));
                return None;
            }
        }
        if addr.is_unspecified() || addr.is_multicast() || addr == Ipv4Addr::BROADCAST {
            self.at(f, format!("{what} must be a unicast address, got {addr}"));
            return None;
        }
        Some(addr)
    }
}

/// "a string", "an integer": for "expected X, got Y".
pub(super) fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A value found in the file, with the key path and line that errors about it report.
pub(super) struct Field<'a, 'i> {
    pub(super) key: String,
    pub(super) line: usize,
    pub(super) value: &'a DeValue<'i>,
}

/// One TOML table being read. Every key the reader asks for is remembered as known; `finish`
/// reports the keys nobody asked for. An absent table (`entries: None`) answers every key with
/// nothing, so a missing `[global]` still yields "missing required key" for its keys.
pub(super) struct Table<'a, 'i> {
    /// Key path of the table: "global", "peers[0]"; empty for the document root.
    pub(super) path: String,
    /// Line of the table header, for keys that should be there and are not.
    pub(super) line: Option<usize>,
    pub(super) entries: Option<&'a DeTable<'i>>,
    pub(super) known: Vec<&'static str>,
    /// The file has this key but not as a table; that is reported once, not once per key.
    pub(super) wrong_type: bool,
    /// Keys of `[global]`, set on the root only: a root key among them was written above the
    /// `[global]` header, and the message says so.
    pub(super) global_keys: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    pub(super) fn new(path: String, line: Option<usize>, entries: Option<&'a DeTable<'i>>) -> Self {
        Table { path, line, entries, known: Vec::new(), wrong_type: false, global_keys: Vec::new() }
    }

    pub(super) fn key_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The value of `name`, if the file sets it.
    pub(super) fn get(&mut self, cx: &Reader, name: &'static str) -> Option<Field<'a, 'i>> {
        self.known.push(name);
        let (_, value) = self.entries?.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        Some(Field { key: self.key_path(name), line: cx.line_of(value.span().start), value: value.get_ref() })
    }

    /// The value of `name`, or an error saying it must be set.
    pub(super) fn required(&mut self, cx: &mut Reader, name: &'static str) -> Option<Field<'a, 'i>> {
        let field = self.get(cx, name);
        if field.is_none() && !self.wrong_type {
            cx.error(self.line, &self.key_path(name), "missing required key");
        }
        field
    }

    /// A sub-table such as `[global]`; absent if the file has none.
    pub(super) fn table(&mut self, cx: &mut Reader, name: &'static str) -> Table<'a, 'i> {
        let path = self.key_path(name);
        match self.get(cx, name) {
            None => Table::new(path, None, None),
            Some(f) => match f.value {
                DeValue::Table(t) => Table::new(path, Some(f.line), Some(t)),
                _ => {
                    cx.type_error(&f, &format!("a table ([{path}])"));
                    Table { wrong_type: true, ..Table::new(path, Some(f.line), None) }
                }
            },
        }
    }

    /// An array of tables such as `[[peers]]`; each entry's path carries its index.
    pub(super) fn tables(&mut self, cx: &mut Reader, name: &'static str) -> Vec<Table<'a, 'i>> {
        let path = self.key_path(name);
        let Some(f) = self.get(cx, name) else {
            return Vec::new();
        };
        let DeValue::Array(items) = f.value else {
            cx.type_error(&f, &format!("an array of tables ([[{path}]])"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let entry =
                Field { key: format!("{path}[{i}]"), line: cx.line_of(item.span().start), value: item.get_ref() };
            match entry.value {
                DeValue::Table(t) => out.push(Table::new(entry.key, Some(entry.line), Some(t))),
                _ => cx.type_error(&entry, "a table"),
            }
        }
        out
    }

    /// Report every key of the file's table that no reader asked for.
    pub(super) fn finish(self, cx: &mut Reader) {
        let Some(entries) = self.entries else {
            return;
        };
        for (key, value) in entries.iter() {
            let name = key.get_ref().as_ref();
            if self.known.contains(&name) {
                continue;
            }
            let line = Some(cx.line_of(key.span().start));
            let message = unknown_key_message(name, &self.known, &self.global_keys, value);
            cx.error(line, &self.key_path(name), message);
        }
    }
}

/// "unknown key 'hold_time' (did you mean 'hold_time_secs'?); known keys: ..."
pub(super) fn unknown_key_message(
    name: &str,
    known: &[&str],
    global_keys: &[&str],
    value: &Spanned<DeValue<'_>>,
) -> String {
    let at_root = !global_keys.is_empty();
    let is_table = match value.get_ref() {
        DeValue::Table(_) => true,
        DeValue::Array(items) => items.iter().all(|i| i.get_ref().is_table()) && !items.is_empty(),
        _ => false,
    };
    let what = if at_root && is_table { "table" } else { "key" };
    let mut message = format!("unknown {what} '{name}'");
    if let Some(close) = closest(name, known) {
        message.push_str(&format!(" (did you mean '{close}'?)"));
    } else if at_root && !is_table && global_keys.contains(&name) {
        message.push_str(" (it belongs under [global])");
    }
    message.push_str(&format!("; known {what}s: {}", known.join(", ")));
    message
}

/// The known name nearest to `name`: a small edit distance, or one is a prefix of the other
/// once case, dashes and underscores are set aside ("hold_time", "holdtime" for
/// "hold_time_secs").
pub(super) fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let squash = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    let lower = name.to_ascii_lowercase().replace('-', "_");
    let squashed = squash(name);
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|&(d, k)| {
            let limit = if k.len() <= 3 { 1 } else { 2 };
            let k = squash(k);
            d <= limit || (squashed.len() >= 4 && (k.starts_with(&squashed) || squashed.starts_with(&k)))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// "IPv4" or "IPv6", for messages about mixed families.
pub(super) fn family_word(addr: &IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

    #[test]
    fn unknown_keys_are_errors_with_a_suggestion() {
        assert_eq!(
            errors(&with_peer_keys("hold_time = 30")),
            vec![
                "focl.toml:8: peers[0].hold_time: unknown key 'hold_time' (did you mean \
                 'hold_time_secs'?); known keys: name, address, remote_as, local_as, \
                 remote_port, hold_time_secs, connect_retry_secs, passive, password, \
                 route_refresh, enhanced_route_refresh, extended_messages, role, strict_role, add_path, max_paths_per_prefix, local_address, max_prefixes, max_prefixes_restart_secs, \
                 max_prefixes_warning_only, send_hold_time_secs, multihop, ttl_security, graceful_restart, \
                 restart_time_secs, graceful_notification, long_lived_stale_secs, max_restart_time_secs, max_stale_secs, import, export, route_server"
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("asn = 65001", "asn = 65001\nrouterid = \"192.0.2.1\"")),
            vec![
                "focl.toml:3: global.routerid: unknown key 'routerid' (did you mean \
                 'router_id'?); known keys: asn, router_id, listen, listen_addr, \
                 control_socket, log_level, log_file, user, group"
            ]
        );
        assert_eq!(
            errors(&format!("{MINIMAL}\n[archive]\nenabled = true\nzzz = 1\n")),
            vec![
                "focl.toml:11: archive.zzz: unknown key 'zzz'; known keys: enabled, dir, layout, compression, \
                 updates_interval_secs, rib_interval_secs, timestamp_precision, record_keepalives, \
                 retain_local_days, destinations"
            ]
        );
    }

    #[test]
    fn integer_ranges() {
        assert_eq!(
            errors(&with_peer_keys("remote_port = 70000\nconnect_retry_secs = 0")),
            vec![
                "focl.toml:8: peers[0].remote_port: port must be from 1 to 65535, got 70000",
                "focl.toml:9: peers[0].connect_retry_secs: connect retry interval must be from \
                 1 to 65535 seconds, got 0",
            ]
        );
        assert_eq!(
            errors(&with_peer_keys("remote_port = 0")),
            vec!["focl.toml:8: peers[0].remote_port: port must be from 1 to 65535, got 0"]
        );
        assert_eq!(
            errors(&MINIMAL.replace("asn = 65001", "asn = 4294967296")),
            vec![
                "focl.toml:2: global.asn: AS number must be from 1 to 4294967295 (4-octet AS \
                 numbers, RFC 6793), got 4294967296"
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("remote_as = 65002", "remote_as = -1")),
            vec![
                "focl.toml:7: peers[0].remote_as: AS number must be from 1 to 4294967295 \
                 (4-octet AS numbers, RFC 6793), got -1"
            ]
        );
        // Hex, underscores and the 4-octet maximum are all fine.
        let c = ok(&MINIMAL
            .replace("remote_as = 65002", "remote_as = 4_294_967_295")
            .replace("asn = 65001", "asn = 0xFDE9"));
        assert_eq!((c.global.asn, c.peers[0].remote_as), (65001, u32::MAX));
    }

    #[test]
    fn asn_zero_is_rejected() {
        assert_eq!(
            errors(&MINIMAL.replace("asn = 65001", "asn = 0")),
            vec!["focl.toml:2: global.asn: AS number 0 is reserved and cannot be used (RFC 7607)"]
        );
        assert_eq!(
            errors(&with_peer_keys("local_as = 0")),
            vec![
                "focl.toml:8: peers[0].local_as: AS number 0 is reserved and cannot be used \
                 (RFC 7607)"
            ]
        );
    }

    #[test]
    fn error_display() {
        let e = ConfigError {
            file: FILE.into(),
            line: Some(12),
            key: "peers[1].hold_time_secs".into(),
            message: "hold time must be 0 or at least 3 seconds (RFC 4271 §4.2), got 2".into(),
        };
        assert_eq!(
            e.to_string(),
            "focl.toml:12: peers[1].hold_time_secs: hold time must be 0 or at least 3 seconds \
             (RFC 4271 §4.2), got 2"
        );
        let e = ConfigError { line: None, key: "global.asn".into(), message: "missing required key".into(), ..e };
        assert_eq!(e.to_string(), "focl.toml: global.asn: missing required key");
    }

    #[test]
    fn suggestions() {
        let known = ["hold_time_secs", "remote_as", "asn", "name"];
        assert_eq!(closest("hold_time", &known), Some("hold_time_secs"));
        assert_eq!(closest("remote-as", &known), Some("remote_as"));
        assert_eq!(closest("ASN", &known), Some("asn"));
        assert_eq!(closest("holdtime", &known), Some("hold_time_secs"));
        assert_eq!(closest("password", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
