//! ASPA verification of a route as the RIB sees it (draft-ietf-sidrops-aspa-verification-22
//! §6): which procedure a session's routes go through, by our BGP Role on it (RFC 9234), and
//! the verdict of one attribute set under it. `focl rib` shows the verdict and the import
//! policy's `aspa` key matches it: both read it from here, so they never disagree.

use super::attrs::{effective_as_path, AttrSet};
use super::PeerState;
use crate::control::proto::AspaVerdict;
use crate::msg::{AspaDirection as Direction, AspaState, AspaTable};
use crate::wire::aspath::Segment;
use crate::wire::role::Role;

/// How one session's routes are verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct AspaCtx {
    /// The AS the path must start with (§6.2/§6.3 step 2); none from a route server, which
    /// need not appear in the path.
    neighbor: Option<u32>,
    /// The procedure our role asks for; none without a role: both run and the downstream
    /// one decides (§7.5's advice for a collector).
    direction: Option<Direction>,
}

impl AspaCtx {
    /// `None` for an iBGP session (§7.2: verification is for eBGP) or one not Established.
    pub(super) fn of(peer: &PeerState) -> Option<AspaCtx> {
        let session = peer.session.as_ref()?;
        if session.is_ibgp() {
            return None;
        }
        let role = session.role;
        Some(AspaCtx {
            neighbor: (role != Some(Role::RsClient)).then_some(peer.remote_as),
            direction: role.map(Direction::of_local_role),
        })
    }

    fn run(&self, table: &AspaTable, segments: &[Segment], d: Direction) -> AspaState {
        table.verify(segments, self.neighbor, d)
    }

    /// The deciding state of `set`, while ASPA records are in use (none otherwise: a route
    /// then has no verdict and matches no `aspa` value).
    pub(super) fn state(&self, table: &AspaTable, set: &AttrSet) -> Option<AspaState> {
        if table.is_empty() {
            return None;
        }
        let d = self.direction.unwrap_or(Direction::Downstream);
        Some(self.run(table, &effective_as_path(set), d))
    }

    /// The verdict as `focl rib` shows it: the deciding state and each procedure that ran.
    pub(super) fn verdict(&self, table: &AspaTable, set: &AttrSet) -> Option<(AspaState, AspaVerdict)> {
        if table.is_empty() {
            return None;
        }
        let segments = effective_as_path(set);
        let name = |s: AspaState| Some(s.name().to_string());
        Some(match self.direction {
            Some(d) => {
                let state = self.run(table, &segments, d);
                let (upstream, downstream) =
                    if d == Direction::Upstream { (name(state), None) } else { (None, name(state)) };
                (state, AspaVerdict { state: state.name().to_string(), upstream, downstream })
            }
            None => {
                let up = self.run(table, &segments, Direction::Upstream);
                let down = self.run(table, &segments, Direction::Downstream);
                (down, AspaVerdict { state: down.name().to_string(), upstream: name(up), downstream: name(down) })
            }
        })
    }
}
