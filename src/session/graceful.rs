//! What the peer thread advertises for graceful restart (RFC 4724 §3, RFC 8538 §2, RFC 9494
//! §2) from a peer's `graceful_restart` settings; the rules of the helper are in
//! `wire::graceful`, the stale routes in the RIB (`rib::graceful`).

use crate::config::{GracefulConfig, GracefulMode};
use crate::prefix::Family;
use crate::wire::graceful::{GrCap, LlgrCap};

/// Our Graceful Restart capability: none with `off`; with `aware` no family (RFC 4724 §3: a
/// speaker that only helps lists none, so peers never wait for us); with `on` every family,
/// and after a planned restart of focld (`restarted`) the R bit and every F bit (focld keeps no
/// forwarding state that a restart could lose: it installs no routes).
pub fn our_gr_cap(cfg: &GracefulConfig, restarted: bool) -> Option<GrCap> {
    let families = match cfg.graceful_restart {
        GracefulMode::Off => return None,
        GracefulMode::Aware => Vec::new(),
        GracefulMode::On => Family::ALL.iter().map(|f| (*f, restarted)).collect(),
    };
    Some(GrCap {
        restarting: restarted && cfg.graceful_restart == GracefulMode::On,
        notification: cfg.graceful_notification,
        restart_time: cfg.restart_time_secs,
        families,
        other_families: 0,
    })
}

/// Our LLGR capability (RFC 9494 §2): every family with `long_lived_stale_secs`, when set
/// and graceful restart is not off.
pub fn our_llgr_cap(cfg: &GracefulConfig) -> Option<LlgrCap> {
    if !cfg.enabled() || cfg.long_lived_stale_secs == 0 {
        return None;
    }
    Some(LlgrCap { families: Family::ALL.iter().map(|f| (*f, false, cfg.long_lived_stale_secs)).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aware_lists_no_family_on_lists_every_one_and_off_advertises_nothing() {
        let mut cfg = GracefulConfig::default();
        let aware = our_gr_cap(&cfg, false).unwrap();
        assert!(aware.families.is_empty() && aware.notification && !aware.restarting);
        assert_eq!(aware.restart_time, 120);
        assert_eq!(our_llgr_cap(&cfg), None);
        cfg.graceful_restart = GracefulMode::On;
        cfg.long_lived_stale_secs = 600;
        let on = our_gr_cap(&cfg, true).unwrap();
        assert!(on.restarting && on.families.iter().all(|(_, f)| *f) && on.families.len() == 2);
        assert!(our_gr_cap(&cfg, false).unwrap().families.iter().all(|(_, f)| !*f));
        assert_eq!(our_llgr_cap(&cfg).unwrap().families[0].2, 600);
        cfg.graceful_restart = GracefulMode::Off;
        assert_eq!((our_gr_cap(&cfg, true), our_llgr_cap(&cfg)), (None, None));
    }
}
