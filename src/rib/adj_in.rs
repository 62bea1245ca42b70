//! Adj-RIB-In: one peer's routes as received, each a prefix and a reference to an interned
//! attribute set.

use super::attrs::AttrSet;
use crate::control::proto::FamilyCounts;
use crate::prefix::Prefix;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A route of an Adj-RIB-In.
#[derive(Clone, Debug)]
pub struct Route {
    pub attrs: Arc<AttrSet>,
    /// Unix time the route was received (seconds).
    pub received: u32,
}

/// One peer's routes as received.
#[derive(Default)]
pub struct AdjRibIn {
    pub(super) routes: BTreeMap<Prefix, Route>,
    pub(super) counts: [u64; 2],
}

impl AdjRibIn {
    pub(super) fn insert(&mut self, p: Prefix, r: Route) {
        if self.routes.insert(p, r).is_none() {
            self.counts[p.family().index()] += 1;
        }
    }

    pub(super) fn remove(&mut self, p: &Prefix) {
        if self.routes.remove(p).is_some() {
            self.counts[p.family().index()] -= 1;
        }
    }

    pub(super) fn counts(&self) -> FamilyCounts {
        FamilyCounts { ipv4_unicast: self.counts[0], ipv6_unicast: self.counts[1] }
    }

    pub fn routes(&self) -> impl Iterator<Item = (&Prefix, &Route)> {
        self.routes.iter()
    }
}
