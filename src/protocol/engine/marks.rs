//! Where a frame's landmarks are on its tape: the fields every frame is read for before
//! anything else (its kind, its correlation id, its timestamp).
//!
//! A pointer lookup depends only on a frame's structure (member names in order, container
//! sizes), so a frame with the structure of one seen before has its landmarks where that one
//! had them. A connection's frames mostly repeat their predecessor's structure; for them the
//! landmarks are read at known tape indices, without the walks over member names
//! (see [`super::recent::Recent::like_last`]).

use super::tape::{Doc, TapeNode};

/// Kind pointers kept; a profile with more is looked up every time (KECS, with three:
/// `/type`, `/action`, `/payload/eventType`, has the most of the five).
pub const KIND_POINTERS: usize = 3;

const ABSENT: u32 = u32::MAX;

/// The tape indices of a frame's landmarks ([`ABSENT`]: not in the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    kinds: [u32; KIND_POINTERS],
    n_kinds: u8,
    id: u32,
    clock: u32,
}

fn index(n: Option<TapeNode>) -> u32 {
    n.map_or(ABSENT, |n| n.index())
}

impl Marks {
    /// Looks the landmarks up on `doc`: the kind pointers, the correlation id's and the
    /// clock's. `None` when there are more kind pointers than [`KIND_POINTERS`].
    pub fn look(doc: &Doc, kinds: &[String], id: &str, clock: Option<&str>) -> Option<Marks> {
        if kinds.len() > KIND_POINTERS {
            return None;
        }
        let mut at = [ABSENT; KIND_POINTERS];
        for (a, p) in at.iter_mut().zip(kinds) {
            *a = index(doc.lookup(p));
        }
        Some(Marks {
            kinds: at,
            n_kinds: kinds.len() as u8,
            id: index(doc.lookup(id)),
            clock: index(clock.and_then(|c| doc.lookup(c))),
        })
    }

    /// The nodes the kind is read from, in the order of the kind pointers.
    pub fn kinds<'d>(
        self,
        doc: &'d Doc<'d>,
    ) -> impl ExactSizeIterator<Item = Option<TapeNode<'d>>> {
        let n = self.n_kinds as usize;
        self.kinds.into_iter().take(n).map(move |i| node(doc, i))
    }

    /// The correlation id's node.
    pub fn id<'d>(&self, doc: &'d Doc<'d>) -> Option<TapeNode<'d>> {
        node(doc, self.id)
    }

    /// The clock's node.
    pub fn clock<'d>(&self, doc: &'d Doc<'d>) -> Option<TapeNode<'d>> {
        node(doc, self.clock)
    }
}

fn node<'d>(doc: &'d Doc<'d>, i: u32) -> Option<TapeNode<'d>> {
    (i != ABSENT).then(|| doc.node(i))
}
