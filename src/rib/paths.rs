//! ADD-PATH routes (RFC 7911): a peer with ADD-PATH may send several paths for one prefix,
//! told apart by path identifier. Route entries stay 12 bytes: the entry of such a route has
//! the `ADD_PATH` flag and its `attrs` field holds the id of a (attribute set, path identifier)
//! pair interned here, so the routes of sessions without ADD-PATH pay nothing for it. A pair
//! holds its attribute set once (one reference in the slab) and is freed with its last route.
//!
//! The same pairs carry a route's post-policy attribute set when the import policy changed
//! it (`table::POLICY`; issue 17): (set as received, path identifier or 0, set after policy),
//! so only routes a policy rewrote pay for a second set.

use super::table::AttrId;
use std::collections::HashMap;

/// Index of an interned (attribute set, path identifier) pair.
pub type PathRefId = u32;

/// `PathRef::post` of a pair without a post-policy set.
pub const NO_POST: AttrId = AttrId::MAX;

#[derive(Clone, Copy)]
struct PathRef {
    attrs: AttrId,
    path_id: u32,
    /// The post-policy set, or `NO_POST`.
    post: AttrId,
    /// Routes holding this pair; 0 means the slot is free.
    refs: u32,
}

#[derive(Default)]
pub struct PathRefs {
    slots: Vec<PathRef>,
    free: Vec<PathRefId>,
    index: HashMap<(AttrId, u32, AttrId), PathRefId>,
}

impl PathRefs {
    /// The pair's id, with one more route holding it; `true` when it is new (its attribute
    /// set then needs one more reference).
    pub fn hold(&mut self, attrs: AttrId, path_id: u32) -> (PathRefId, bool) {
        self.hold_post(attrs, path_id, NO_POST)
    }

    /// `hold` of a triple with a post-policy set; `true` when new (both sets then need one
    /// more reference).
    pub fn hold_post(&mut self, attrs: AttrId, path_id: u32, post: AttrId) -> (PathRefId, bool) {
        if let Some(&id) = self.index.get(&(attrs, path_id, post)) {
            if let Some(s) = self.slots.get_mut(id as usize) {
                s.refs += 1;
            }
            return (id, false);
        }
        let slot = PathRef { attrs, path_id, post, refs: 1 };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as PathRefId
            }
        };
        self.index.insert((attrs, path_id, post), id);
        (id, true)
    }

    /// A route let go of `id`: the attribute set to release when the pair is freed.
    #[cfg(test)]
    pub fn release(&mut self, id: PathRefId) -> Option<AttrId> {
        self.release_post(id).map(|(a, _)| a)
    }

    /// `release`, with the post-policy set to release too when the pair had one.
    pub fn release_post(&mut self, id: PathRefId) -> Option<(AttrId, Option<AttrId>)> {
        let s = self.slots.get_mut(id as usize).filter(|s| s.refs > 0)?;
        s.refs -= 1;
        if s.refs > 0 {
            return None;
        }
        let (attrs, path_id, post) = (s.attrs, s.path_id, s.post);
        self.index.remove(&(attrs, path_id, post));
        self.free.push(id);
        Some((attrs, (post != NO_POST).then_some(post)))
    }

    /// The post-policy set of `id`, if it has one.
    pub fn post(&self, id: PathRefId) -> Option<AttrId> {
        self.slots.get(id as usize).filter(|s| s.refs > 0 && s.post != NO_POST).map(|s| s.post)
    }

    /// The attribute set and path identifier of `id`.
    pub fn get(&self, id: PathRefId) -> Option<(AttrId, u32)> {
        self.slots.get(id as usize).filter(|s| s.refs > 0).map(|s| (s.attrs, s.path_id))
    }

    /// Pairs in use.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_shared_by_its_routes_and_gives_its_set_back_with_the_last() {
        let mut p = PathRefs::default();
        let (a, new) = p.hold(7, 1);
        assert!(new);
        assert_eq!(p.hold(7, 1), (a, false));
        let (b, new) = p.hold(7, 2);
        assert!(new && b != a);
        assert_eq!(p.get(b), Some((7, 2)));
        assert_eq!(p.release(a), None, "one route still holds it");
        assert_eq!(p.release(a), Some(7));
        assert_eq!(p.get(a), None);
        assert_eq!(p.release(a), None, "releasing a free pair does nothing");
        assert_eq!(p.len(), 1);
        assert_eq!(p.hold(9, 1), (a, true), "the freed id is used again");
    }
}
