//! `[global]`: who this speaker is, where it listens, where it logs. Read first, because the
//! peers take their default `local_as` and `local_address` from it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use log::LevelFilter;
use toml::de::DeValue;

use super::model::{BGP_PORT, DEFAULT_CONTROL_SOCKET};
use super::reader::{Field, Reader, Table};

/// `[global]` as read; the required keys stay `Option` so peers can be checked without them.
pub(super) struct GlobalRead {
    pub(super) asn: Option<u32>,
    pub(super) router_id: Option<Ipv4Addr>,
    pub(super) listen: bool,
    pub(super) listen_addr: Vec<SocketAddr>,
    pub(super) control_socket: PathBuf,
    pub(super) log_level: LevelFilter,
    pub(super) log_file: Option<PathBuf>,
    pub(super) user: Option<String>,
    pub(super) group: Option<String>,
}

pub(super) fn read_global(cx: &mut Reader, t: &mut Table<'_, '_>) -> GlobalRead {
    let asn = t.required(cx, "asn").and_then(|f| cx.asn(&f));
    let router_id = t.required(cx, "router_id").and_then(|f| read_router_id(cx, &f));
    let listen = t.get(cx, "listen").and_then(|f| cx.bool(&f)).unwrap_or(true);
    let listen_addr = match t.get(cx, "listen_addr") {
        Some(f) => read_listen_addrs(cx, &f, listen),
        None => vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, BGP_PORT))],
    };
    let control_socket = t
        .get(cx, "control_socket")
        .and_then(|f| {
            if cx.str(&f)?.is_empty() {
                cx.at(&f, "the control socket path must not be empty");
                return None;
            }
            cx.path(&f)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
    let log_level = t
        .get(cx, "log_level")
        .and_then(|f| {
            cx.parsed(&f, |s| format!("unknown log level '{s}'; expected off, error, warn, info, debug or trace"))
        })
        .unwrap_or(LevelFilter::Info);
    let log_file = t.get(cx, "log_file").and_then(|f| {
        if cx.str(&f)?.is_empty() {
            cx.at(&f, "the log file path must not be empty");
            return None;
        }
        cx.path(&f)
    });
    let name = |cx: &mut Reader, f: &Field<'_, '_>, what: &str| -> Option<String> {
        let s = cx.str(f)?;
        if s.is_empty() || s.contains(['/', ':', ' ']) {
            cx.at(f, format!("'{s}' is not a {what} name"));
            return None;
        }
        Some(s.to_string())
    };
    let user = t.get(cx, "user").and_then(|f| name(cx, &f, "user"));
    let group = t.get(cx, "group").and_then(|f| name(cx, &f, "group"));
    GlobalRead { asn, router_id, listen, listen_addr, control_socket, log_level, log_file, user, group }
}

/// The BGP Identifier: an IPv4 address (RFC 4271 §4.2), non-zero (RFC 6286 §2.1).
pub(super) fn read_router_id(cx: &mut Reader, f: &Field<'_, '_>) -> Option<Ipv4Addr> {
    let id: Ipv4Addr = cx.parsed(f, |s| {
        format!(
            "'{s}' is not an IPv4 address \
             (the router ID is the 4-octet BGP Identifier, RFC 4271 §4.2)"
        )
    })?;
    if id.is_unspecified() {
        cx.at(f, "router ID must not be 0.0.0.0 (the BGP Identifier is non-zero, RFC 6286 §2.1)");
        return None;
    }
    Some(id)
}

/// `listen_addr = "0.0.0.0:179"` or `listen_addr = ["0.0.0.0:179", "[::]:179"]`.
pub(super) fn read_listen_addrs(cx: &mut Reader, f: &Field<'_, '_>, listen: bool) -> Vec<SocketAddr> {
    let bad = |s: &str| format!("'{s}' is not an address and port (write e.g. \"0.0.0.0:179\" or \"[::]:179\")");
    // Each address with the key and line of its first mention.
    let mut addrs: Vec<(SocketAddr, String, usize)> = Vec::new();
    match f.value {
        DeValue::String(_) => {
            if let Some(a) = cx.parsed(f, bad) {
                addrs.push((a, f.key.clone(), f.line));
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let entry = Field {
                    key: format!("{}[{i}]", f.key),
                    line: cx.line_of(item.span().start),
                    value: item.get_ref(),
                };
                let Some(a) = cx.parsed::<SocketAddr>(&entry, bad) else {
                    continue;
                };
                if let Some((_, key, line)) = addrs.iter().find(|(seen, _, _)| *seen == a) {
                    let message = format!("listen address {a} is already listed as {key} (line {line})");
                    cx.at(&entry, message);
                    continue;
                }
                addrs.push((a, entry.key, entry.line));
            }
            if items.is_empty() && listen {
                cx.at(f, "listen = true needs at least one listen address");
            }
        }
        _ => cx.type_error(f, "a string or an array of strings"),
    }
    addrs.into_iter().map(|(a, _, _)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

    #[test]
    fn listen_addr_as_string_and_as_list() {
        let c = ok(&MINIMAL.replace("[[peers]]", "listen_addr = \"127.0.0.1:1790\"\n\n[[peers]]"));
        assert_eq!(c.global.listen_addr, vec!["127.0.0.1:1790".parse().unwrap()]);

        let c = ok(&MINIMAL.replace("[[peers]]", "listen_addr = [\"0.0.0.0:179\", \"[::]:179\"]\n\n[[peers]]"));
        let want: Vec<SocketAddr> = vec!["0.0.0.0:179".parse().unwrap(), "[::]:179".parse().unwrap()];
        assert_eq!(c.global.listen_addr, want);
    }

    #[test]
    fn listen_addr_errors() {
        let text = MINIMAL.replace(
            "[[peers]]",
            "listen_addr = [\n  \"0.0.0.0:179\",\n  \"0.0.0.0\",\n  \"0.0.0.0:179\",\n]\n\n\
             [[peers]]",
        );
        assert_eq!(
            errors(&text),
            vec![
                "focl.toml:7: global.listen_addr[1]: '0.0.0.0' is not an address and port \
                 (write e.g. \"0.0.0.0:179\" or \"[::]:179\")",
                "focl.toml:8: global.listen_addr[2]: listen address 0.0.0.0:179 is already \
                 listed as global.listen_addr[0] (line 6)",
            ]
        );
        let text = MINIMAL.replace("[[peers]]", "listen_addr = 179\n\n[[peers]]");
        assert_eq!(
            errors(&text),
            vec![
                "focl.toml:5: global.listen_addr: expected a string or an array of strings, got \
                 an integer"
            ]
        );
        let text = MINIMAL.replace("[[peers]]", "listen_addr = []\n\n[[peers]]");
        assert_eq!(
            errors(&text),
            vec!["focl.toml:5: global.listen_addr: listen = true needs at least one listen address"]
        );
        let text = MINIMAL.replace("[[peers]]", "listen = false\nlisten_addr = []\n\n[[peers]]");
        assert!(ok(&text).global.listen_addr.is_empty());
    }

    #[test]
    fn router_id_must_be_nonzero_ipv4() {
        assert_eq!(
            errors(&MINIMAL.replace("192.0.2.1", "0.0.0.0")),
            vec![
                "focl.toml:3: global.router_id: router ID must not be 0.0.0.0 (the BGP \
                 Identifier is non-zero, RFC 6286 §2.1)"
            ]
        );
        assert_eq!(
            errors(&MINIMAL.replace("192.0.2.1", "2001:db8::1")),
            vec![
                "focl.toml:3: global.router_id: '2001:db8::1' is not an IPv4 address (the \
                 router ID is the 4-octet BGP Identifier, RFC 4271 §4.2)"
            ]
        );
    }

    #[test]
    fn log_level_is_case_insensitive() {
        let c = ok(&MINIMAL.replace("[[peers]]", "log_level = \"DEBUG\"\n[[peers]]"));
        assert_eq!(c.global.log_level, LevelFilter::Debug);
        let c = ok(&MINIMAL.replace("[[peers]]", "log_level = \"off\"\n[[peers]]"));
        assert_eq!(c.global.log_level, LevelFilter::Off);
        assert_eq!(
            errors(&MINIMAL.replace("[[peers]]", "log_level = \"verbose\"\n[[peers]]")),
            vec![
                "focl.toml:5: global.log_level: unknown log level 'verbose'; expected off, \
                 error, warn, info, debug or trace"
            ]
        );
    }
}
