//! What one connection remembers of its last frames, for the tape engine: per schema the
//! last frame that passed it (a [`Snapshot`]) with the checks that decided it at its
//! scalars and its landmarks ([`Marks`]), per direction which of those came last, and the
//! pattern walks. The order its methods are called in is the engine's ([`super`]).

use super::marks::Marks;
use super::patterns::Walks;
use super::snapshot::{Changed, Snapshot};
use super::tape::Doc;
use crate::protocol::Direction;

/// The last pattern walks of one connection, by (schema, pattern): successive frames repeat
/// most of a string (a connection's client id, the date and hour of a timestamp), and a
/// DFA's walk over a shared prefix is the same, so the next walk resumes where the strings
/// part. Kept per connection (per VU), so no lock and no sharing.
///
/// It also keeps, per schema, the last frame that passed it (its second frame on, so a
/// connection that sees a kind once keeps nothing for it): a frame with that frame's
/// structure is decided by the checks on the scalars it changed.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    pub(super) walks: Walks,
    /// By schema id; few (the kinds one connection sees).
    pub(super) repeats: Vec<(u32, Repeat)>,
    /// Per direction, the slot in `repeats` of the last frame that passed with a snapshot
    /// ready, whose landmarks were noted ([`Recent::landed`]).
    last: [Option<usize>; 2],
    /// The slot the last [`Compiled::is_valid_like`] passed a frame with, its snapshot ready.
    pub(super) used: Option<usize>,
    /// Frames decided by their changed scalars (tests check the shortcut is taken).
    #[cfg(test)]
    pub(crate) repeated: usize,
    /// Frames found like the last in their direction (tests check landmarks are reused).
    #[cfg(test)]
    pub(crate) likes: usize,
    /// Never find a frame like the last (tests compare with the landmarks looked up).
    #[cfg(test)]
    pub(crate) blind: bool,
}

/// One schema's last valid frame on a connection, and the checks that decided it at its
/// scalars. `ready` once there is such a frame.
#[derive(Debug, Default)]
pub(super) struct Repeat {
    pub(super) ready: bool,
    pub(super) snapshot: Snapshot,
    pub(super) checks: Vec<(u32, u32)>,
    /// The snapshot's landmarks, once noted (unset whenever the snapshot is retaken).
    pub(super) marks: Option<Marks>,
}

/// A frame with the structure of the last frame that passed in its direction
/// ([`Recent::like_last`]): what it changed, and where that frame's landmarks were.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Like {
    pub(super) slot: usize,
    pub(super) changed: Changed,
    marks: Marks,
}

impl Like {
    /// The frame's landmarks: where that frame had them (a lookup depends only on the
    /// structure, so they hold whatever the frame's kind).
    pub(super) fn marks(&self) -> Marks {
        self.marks
    }
}

/// Schemas a [`Recent`] keeps a last frame for; any more are checked in full.
pub(super) const RECENT_KINDS: usize = 16;

impl Recent {
    /// Compares a frame with the last one that passed in `dir`: `Some` when it has that
    /// frame's structure (then it is read at that frame's landmarks, and, when of the same
    /// kind, decided by its changed scalars without being compared again).
    pub(super) fn like_last(&mut self, dir: Direction, doc: &Doc) -> Option<Like> {
        #[cfg(test)]
        if self.blind {
            return None;
        }
        let slot = self.last[dir as usize]?;
        let repeat = &self.repeats[slot].1;
        let marks = repeat.marks.filter(|_| repeat.ready)?;
        let like = Like {
            slot,
            changed: repeat.snapshot.changes(doc)?,
            marks,
        };
        #[cfg(test)]
        {
            self.likes += 1;
        }
        Some(like)
    }

    /// Notes, after a frame passed, its landmarks for the snapshot that decided it (and makes
    /// that the last in `dir`). Nothing when no snapshot decided it.
    pub(super) fn landed(&mut self, dir: Direction, marks: Option<Marks>) {
        let Some(slot) = self.used.take() else {
            self.last[dir as usize] = None;
            return;
        };
        let repeat = &mut self.repeats[slot].1;
        if repeat.marks.is_none() {
            repeat.marks = marks;
        }
        self.last[dir as usize] = repeat.marks.is_some().then_some(slot);
    }

    /// Forgets which snapshot decided the last frame (before the next is checked).
    pub(super) fn unused(&mut self) {
        self.used = None;
    }
}
