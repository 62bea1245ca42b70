//! The printer: a checked [`Config`] shown back as TOML with every default filled in, for
//! `focld -n -v`. Secrets are masked.

use crate::mrt::file::Layout;
use crate::mrt::record::Precision;

use super::model::{Config, DestinationConfig, S3Credentials};

impl Config {
    /// The configuration with every default filled in, as TOML that reads back to the same
    /// configuration (`focld -n -v`). Passwords and S3 secret keys are replaced by "********".
    pub fn effective_toml(&self) -> String {
        use std::fmt::Write as _;
        let q = |s: &str| toml_string(s);
        let mut o = String::new();
        let g = &self.global;
        let _ = writeln!(o, "[global]");
        let _ = writeln!(o, "asn = {}", g.asn);
        let _ = writeln!(o, "router_id = {}", q(&g.router_id.to_string()));
        let _ = writeln!(o, "listen = {}", g.listen);
        let addrs: Vec<String> = g.listen_addr.iter().map(|a| q(&a.to_string())).collect();
        let _ = writeln!(o, "listen_addr = [{}]", addrs.join(", "));
        let _ = writeln!(o, "control_socket = {}", q(&g.control_socket.display().to_string()));
        let _ = writeln!(o, "log_level = {}", q(&g.log_level.to_string().to_lowercase()));
        if let Some(f) = &g.log_file {
            let _ = writeln!(o, "log_file = {}", q(&f.display().to_string()));
        }
        if let Some(u) = &g.user {
            let _ = writeln!(o, "user = {}", q(u));
        }
        if let Some(gr) = &g.group {
            let _ = writeln!(o, "group = {}", q(gr));
        }
        for p in &self.peers {
            let _ = writeln!(o, "\n[[peers]]");
            if let Some(n) = &p.name {
                let _ = writeln!(o, "name = {}", q(n));
            }
            let _ = writeln!(o, "address = {}", q(&p.address.to_string()));
            let _ = writeln!(o, "remote_as = {}", p.remote_as);
            let _ = writeln!(o, "local_as = {}", p.local_as);
            let _ = writeln!(o, "remote_port = {}", p.remote_port);
            let _ = writeln!(o, "hold_time_secs = {}", p.hold_time_secs);
            let _ = writeln!(o, "connect_retry_secs = {}", p.connect_retry_secs);
            let _ = writeln!(o, "passive = {}", p.passive);
            if p.password.is_some() {
                let _ = writeln!(o, "password = \"********\"");
            }
            let _ = writeln!(o, "route_refresh = {}", p.route_refresh);
            if let Some(a) = &p.local_address {
                let _ = writeln!(o, "local_address = {}", q(&a.to_string()));
            }
            if let Some(m) = p.max_prefixes {
                let _ = writeln!(o, "max_prefixes = {m}");
                if let Some(r) = p.max_prefixes_restart_secs {
                    let _ = writeln!(o, "max_prefixes_restart_secs = {r}");
                }
                let _ = writeln!(o, "max_prefixes_warning_only = {}", p.max_prefixes_warning_only);
            }
            let _ = writeln!(o, "send_hold_time_secs = {}", p.send_hold_time_secs);
        }
        for p in &self.prefixes {
            let _ = writeln!(o, "\n[[prefixes]]");
            let _ = writeln!(o, "network = {}", q(&p.network.to_string()));
            if let Some(nh) = &p.next_hop {
                let _ = writeln!(o, "next_hop = {}", q(&nh.to_string()));
            }
        }
        let a = &self.archive;
        let _ = writeln!(o, "\n[archive]");
        let _ = writeln!(o, "enabled = {}", a.enabled);
        let _ = writeln!(o, "dir = {}", q(&a.dir.display().to_string()));
        let layout = match a.layout {
            Layout::RouteViews => "routeviews",
            Layout::Ris => "ris",
        };
        let _ = writeln!(o, "layout = {}", q(layout));
        let _ = writeln!(o, "compression = {}", q(a.compression.name()));
        let _ = writeln!(o, "updates_interval_secs = {}", a.updates_interval_secs);
        let _ = writeln!(o, "rib_interval_secs = {}", a.rib_interval_secs);
        let precision = match a.timestamp_precision {
            Precision::Microsecond => "microsecond",
            Precision::Second => "second",
        };
        let _ = writeln!(o, "timestamp_precision = {}", q(precision));
        let _ = writeln!(o, "record_keepalives = {}", a.record_keepalives);
        if let Some(d) = a.retain_local_days {
            let _ = writeln!(o, "retain_local_days = {d}");
        }
        for d in &a.destinations {
            let _ = writeln!(o, "\n[[archive.destinations]]");
            match d {
                DestinationConfig::Local { path } => {
                    let _ = writeln!(o, "type = \"local\"\npath = {}", q(&path.display().to_string()));
                }
                DestinationConfig::S3(s) => {
                    let _ = writeln!(o, "type = \"s3\"\nbucket = {}\nprefix = {}", q(&s.bucket), q(&s.prefix));
                    let _ = writeln!(o, "region = {}", q(&s.region));
                    if let Some(e) = &s.endpoint {
                        let _ = writeln!(o, "endpoint = {}", q(e));
                    }
                    let _ = writeln!(o, "path_style = {}", s.path_style);
                    match &s.credentials {
                        S3Credentials::Environment => {}
                        S3Credentials::File { path, profile } => {
                            let _ = writeln!(o, "credentials_file = {}", q(&path.display().to_string()));
                            if let Some(p) = profile {
                                let _ = writeln!(o, "profile = {}", q(p));
                            }
                        }
                        S3Credentials::Inline { access_key, .. } => {
                            let _ = writeln!(o, "access_key = {}\nsecret_key = \"********\"", q(access_key));
                        }
                    }
                }
            }
        }
        o
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
        assert_eq!(again.archive, c.archive);
        let minimal = ok(MINIMAL).effective_toml();
        assert!(minimal.contains("hold_time_secs = 90") && minimal.contains("layout = \"routeviews\""), "{minimal}");
        assert_eq!(ok(&minimal).global, ok(MINIMAL).global);
    }
}
