//! The graceful restart keys of a `[[peers]]` entry (RFC 4724, RFC 8538, RFC 9494), read
//! after the peer's other keys by `peers::read_peer`.

use serde::Serialize;

use super::reader::{Reader, Table};

/// `graceful_restart`: which roles of RFC 4724 focld takes with the peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GracefulMode {
    /// No Graceful Restart capability: a session that ends takes the peer's routes with it.
    Off,
    /// Helper only (RFC 4724 §4.2): advertise the capability with no forwarding state kept
    /// (restart flags and F bits clear), keep a restarting peer's routes as stale.
    #[default]
    Aware,
    /// Also a restarting speaker (RFC 4724 §4.1): after a planned restart of focld the R bit
    /// is set and the F bit of every family, so peers keep focld's routes meanwhile.
    On,
}

/// RFC 4724 §3: the restart time is a 12-bit field.
pub const MAX_RESTART_TIME_SECS: u16 = 4095;
/// RFC 9494 §2: the long-lived stale time is a 24-bit field.
pub const MAX_LONG_LIVED_STALE_SECS: u32 = 0xff_ffff;
pub const DEFAULT_RESTART_TIME_SECS: u16 = 120;
/// The longest restart time a peer may claim before its stale routes are swept anyway (BIRD's
/// `max graceful restart time`).
pub const DEFAULT_MAX_RESTART_TIME_SECS: u16 = 300;
/// How long stale routes wait for the peer's End-of-RIB once it is back.
pub const DEFAULT_MAX_STALE_SECS: u32 = 360;

/// A peer's graceful restart settings; printed among its other keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GracefulConfig {
    pub graceful_restart: GracefulMode,
    /// The restart time we advertise (RFC 4724 §3), at most 4095 s.
    pub restart_time_secs: u16,
    /// Advertise the N bit (RFC 8538 §2): NOTIFICATIONs other than Cease / Hard Reset keep
    /// routes too, and resets go out as Hard Reset.
    pub graceful_notification: bool,
    /// Long-Lived GR (RFC 9494): advertised with this stale time when > 0; also the longest
    /// long-lived stale time a peer may claim.
    pub long_lived_stale_secs: u32,
    /// The restart time a peer advertises is clamped to this.
    pub max_restart_time_secs: u16,
    /// Once the peer is back, its stale routes wait this long for End-of-RIB at most.
    pub max_stale_secs: u32,
}

impl Default for GracefulConfig {
    fn default() -> Self {
        GracefulConfig {
            graceful_restart: GracefulMode::Aware,
            restart_time_secs: DEFAULT_RESTART_TIME_SECS,
            graceful_notification: true,
            long_lived_stale_secs: 0,
            max_restart_time_secs: DEFAULT_MAX_RESTART_TIME_SECS,
            max_stale_secs: DEFAULT_MAX_STALE_SECS,
        }
    }
}

impl GracefulConfig {
    /// Whether the Graceful Restart capability is advertised at all.
    pub fn enabled(&self) -> bool {
        self.graceful_restart != GracefulMode::Off
    }
}

/// Read the graceful restart keys of one peer; invalid values are reported and replaced by
/// their defaults.
pub(super) fn read_graceful(cx: &mut Reader, t: &mut Table<'_, '_>) -> GracefulConfig {
    let d = GracefulConfig::default();
    let mode = t.get(cx, "graceful_restart").and_then(|f| {
        let mode = match cx.str(&f)? {
            "off" => GracefulMode::Off,
            "aware" => GracefulMode::Aware,
            "on" => GracefulMode::On,
            other => {
                let message = format!(
                    "unknown graceful_restart mode '{other}'; expected \"off\", \"aware\" (helper only, RFC 4724 §4.2) \
                     or \"on\" (also restarting speaker)"
                );
                cx.at(&f, message);
                return None;
            }
        };
        Some(mode)
    });
    let restart = t.get(cx, "restart_time_secs").and_then(|f| {
        // RFC 4724 §3: 12 bits.
        cx.int_in(&f, 1u16, MAX_RESTART_TIME_SECS, "restart_time_secs (RFC 4724 §3: 12 bits)", " seconds")
    });
    let notification = t.get(cx, "graceful_notification").and_then(|f| cx.bool(&f));
    let llst = t.get(cx, "long_lived_stale_secs").and_then(|f| {
        // RFC 9494 §2: 24 bits.
        cx.int_in(&f, 0u32, MAX_LONG_LIVED_STALE_SECS, "long_lived_stale_secs (RFC 9494: 24 bits)", " seconds")
    });
    let max_restart = t.get(cx, "max_restart_time_secs").and_then(|f| {
        cx.int_in(&f, 1u16, MAX_RESTART_TIME_SECS, "max_restart_time_secs (RFC 4724 §3: 12 bits)", " seconds")
    });
    let max_stale = t.get(cx, "max_stale_secs").and_then(|f| cx.int_in(&f, 1u32, 86_400, "max_stale_secs", " seconds"));
    GracefulConfig {
        graceful_restart: mode.unwrap_or(d.graceful_restart),
        restart_time_secs: restart.unwrap_or(d.restart_time_secs),
        graceful_notification: notification.unwrap_or(d.graceful_notification),
        long_lived_stale_secs: llst.unwrap_or(d.long_lived_stale_secs),
        max_restart_time_secs: max_restart.unwrap_or(d.max_restart_time_secs),
        max_stale_secs: max_stale.unwrap_or(d.max_stale_secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

    #[test]
    fn graceful_restart_defaults_to_aware_with_120_seconds_and_the_n_bit() {
        let c = ok(MINIMAL);
        assert_eq!(c.peers[0].graceful, GracefulConfig::default());
        assert_eq!(c.peers[0].graceful.graceful_restart, GracefulMode::Aware);
        assert!(c.peers[0].graceful.graceful_notification);
        assert_eq!(c.peers[0].graceful.restart_time_secs, 120);
    }

    #[test]
    fn graceful_keys_are_read_and_bad_values_name_file_line_and_key() {
        let text = with_peer_keys(
            "graceful_restart = \"on\"\nrestart_time_secs = 30\ngraceful_notification = false\n\
             long_lived_stale_secs = 600\nmax_restart_time_secs = 60\nmax_stale_secs = 90",
        );
        let c = ok(&text);
        let g = &c.peers[0].graceful;
        assert_eq!(g.graceful_restart, GracefulMode::On);
        assert_eq!((g.restart_time_secs, g.long_lived_stale_secs), (30, 600));
        assert_eq!((g.max_restart_time_secs, g.max_stale_secs), (60, 90));
        assert!(!g.graceful_notification);
        let e = errors(&with_peer_keys(
            "graceful_restart = \"sometimes\"\nrestart_time_secs = 4096\nlong_lived_stale_secs = 16777216",
        ));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("focl.toml:8: peers[0].graceful_restart: unknown graceful_restart mode 'sometimes'"));
        assert!(e[1].starts_with("focl.toml:9: peers[0].restart_time_secs: restart_time_secs (RFC 4724 §3: 12 bits) must be from 1 to 4095 seconds, got 4096"), "{}", e[1]);
        assert!(e[2].contains("long_lived_stale_secs (RFC 9494: 24 bits) must be from 0 to 16777215"), "{}", e[2]);
    }
}
