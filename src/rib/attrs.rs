//! Attribute sets, interned: the prefixes of one UPDATE share one set, and identical sets
//! from other UPDATEs and peers are found in the intern table and shared too. Attributes stay
//! in wire form and are decoded only for display.

use super::Rib;
use std::sync::Arc;

/// Intern table clean-up: after this many new sets, drop the ones no route uses any more.
const INTERN_SWEEP_EVERY: usize = 50_000;
/// An interned set of path attributes, in wire form as received.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AttrSet {
    /// Path attributes without MP_REACH_NLRI / MP_UNREACH_NLRI.
    pub attrs: Box<[u8]>,
    /// IPv6 next hop(s) from MP_REACH_NLRI.
    pub mp_next_hop: Option<Box<[u8]>>,
    /// Whether AS numbers in `attrs` are 4 octets (the session's RFC 6793 state).
    pub four_octet: bool,
}

impl Rib {
    pub(super) fn intern(&mut self, set: AttrSet) -> Arc<AttrSet> {
        if let Some(a) = self.intern.get(&set) {
            return a.clone();
        }
        let a = Arc::new(set);
        self.intern.insert(a.clone());
        self.interned_since_sweep += 1;
        if self.interned_since_sweep >= INTERN_SWEEP_EVERY {
            self.sweep_intern();
        }
        a
    }

    /// Forget attribute sets no route refers to any more.
    pub(super) fn sweep_intern(&mut self) {
        self.intern.retain(|a| Arc::strong_count(a) > 1);
        self.interned_since_sweep = 0;
    }
}
