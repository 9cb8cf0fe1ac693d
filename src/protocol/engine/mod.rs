//! The tape engine behind [`super::checker::Checker`]: how a frame is judged fast. Its parts:
//! - [`tape`]: the frame parsed once onto a flat, reusable tape;
//! - `marks.rs`: where a frame's landmarks (kind, correlation id, clock field) are on it;
//! - [`compiled`]: each schema compiled into plain checks that run on the tape;
//! - `snapshot.rs`: a copy of a kind's last valid frame, to tell what the next one changed;
//! - `recent.rs`: what one connection keeps of its last frames (snapshots, landmarks,
//!   pattern walks: `patterns.rs`).
//!
//! Crate-private but for the tape, which the swarm owns (one per worker thread) and tests
//! read. Each part stays because it saves more than a tenth of a checked round trip's
//! instructions (`benches/README.md`, "What each part of the tape engine saves").
//!
//! # One frame, in order
//!
//! [`Memory::frame`] is the one entry point; a connection's [`Memory`] is all the engine
//! keeps between frames. Its steps, and the state each hands on through [`Recent`]:
//! 1. **Landmarks.** `Recent::like_last`: has the frame the structure of the last frame that
//!    passed in its direction? Then its kind, id and clock field are read where that frame
//!    had them, and what it changed is kept (a `Like`); else they are looked up (`Marks::look`).
//!    An unchecked frame stops here.
//! 2. **Forget.** `Recent::unused`: which snapshot passed the last frame no longer counts.
//! 3. **Ask.** The kind's compiled checks (the envelope's folded in) decide a frame like the
//!    last by its changed scalars, else the whole frame, and note the snapshot that passed it
//!    (`Compiled::is_valid_like`). A kind whose schemas do not compile to checks is asked of
//!    jsonschema's validator over the tape.
//! 4. **Land.** `Recent::landed`: a frame that passed leaves its landmarks with that
//!    snapshot, for step 1 of the next frame in its direction.
//!
//! A frame rejected here is not yet judged: the checker asks jsonschema on its `Value`,
//! which gives the verdict and its details, so a frame rejected wrongly still gets the right
//! verdict. That no bad frame passes here rests on the differential tests of the tape and the
//! compiled checks against the `Value` validators.

pub(crate) mod compiled;
mod marks;
mod patterns;
mod recent;
mod snapshot;
pub mod tape;

use std::borrow::Cow;

use marks::Marks;
pub(crate) use recent::{Like, Recent};
use tape::{Doc, TapeNode};

use super::pointer::{kind_of_nodes, kind_on_tape, Shape};
use super::{Direction, Profile};

/// What the tape engine keeps of one connection's frames.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    recent: Recent,
}

/// A frame as the tape engine read (and, when asked, judged) it.
pub(crate) struct Read<'d, 't> {
    /// Its kind (by the shape's kind pointers).
    pub(crate) kind: Option<Cow<'t, str>>,
    /// Its correlation id's node.
    pub(crate) id: Option<TapeNode<'d>>,
    /// The clock field's text (`None`: none, or not a string).
    pub(crate) stamp: Option<&'d str>,
    /// What the compiled checks said.
    pub(crate) judged: Judged,
}

/// The tape engine's answer to "is it valid?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judged {
    /// Not asked: the frame is not checked.
    Unasked,
    /// It meets the envelope and its kind's schema.
    Valid,
    /// It may not: judge it on its `Value`.
    Rejected,
}

impl Memory {
    /// The one entry point: a frame in `dir`, parsed onto `doc`, read by `shape` and, when
    /// `check`, judged by `profile`, in the order the module's doc gives.
    #[inline]
    pub(crate) fn frame<'d, 't>(
        &mut self,
        profile: &Profile,
        dir: Direction,
        text: &'t str,
        doc: &'d Doc<'d>,
        shape: &Shape,
        check: bool,
    ) -> Read<'d, 't> {
        let clock = match dir {
            Direction::In => profile.clock.as_deref(),
            Direction::Out => None,
        };
        // 1. Landmarks.
        let like = match profile.parts.marks {
            true => self.recent.like_last(dir, doc),
            false => None,
        };
        let marks = like.map(|l| l.marks()).or_else(|| {
            let (kinds, id) = (shape.kind_pointers(), shape.id_pointer());
            let look = profile.parts.marks;
            look.then(|| Marks::look(doc, kinds, id, clock)).flatten()
        });
        let mut read = match marks {
            Some(m) => Read {
                kind: kind_of_nodes(text, m.kinds(doc)),
                id: m.id(doc),
                stamp: m.clock(doc).and_then(|n| n.str()),
                judged: Judged::Unasked,
            },
            // More kind pointers than marks keep: all looked up.
            None => Read {
                kind: kind_on_tape(text, doc, shape.kind_pointers()),
                id: doc.lookup(shape.id_pointer()),
                stamp: clock.and_then(|c| doc.lookup(c)).and_then(|n| n.str()),
                judged: Judged::Unasked,
            },
        };
        if !check {
            return read;
        }
        // 2. Forget, 3. ask.
        self.recent.unused();
        let recent = Some((&mut self.recent, like));
        if !is_valid(profile, dir, read.kind.as_deref(), doc, recent) {
            read.judged = Judged::Rejected;
            return read;
        }
        // 4. Land.
        self.recent.landed(dir, marks);
        read.judged = Judged::Valid;
        read
    }

    /// The connection's record, for tests that count what it reused.
    #[cfg(test)]
    pub(crate) fn recent(&mut self) -> &mut Recent {
        &mut self.recent
    }
}

/// Whether a frame on its tape meets the envelope and its kind's schema (step 3): `false`,
/// an unknown kind included, says nothing more. With a connection's `recent` (and what
/// step 1 found), pattern walks resume and a snapshot may decide the frame.
pub(crate) fn is_valid(
    profile: &Profile,
    dir: Direction,
    kind: Option<&str>,
    doc: &Doc,
    recent: Option<(&mut Recent, Option<Like>)>,
) -> bool {
    let Some(schema) = kind.and_then(|k| profile.schemas(dir).get(k)) else {
        return false;
    };
    let root = doc.root();
    let parts = profile.parts;
    match schema.compiled.as_ref().filter(|_| parts.compiled_checks) {
        Some(c) => match recent {
            Some((r, _)) if !parts.snapshots => c.is_valid_walking(root, r),
            Some((r, like)) => c.is_valid_like(root, r, like),
            None => c.is_valid(root),
        },
        None => {
            let envelope = profile.envelope.as_ref();
            envelope.is_none_or(|e| e.on_tape.is_valid(root)) && schema.on_tape.is_valid(root)
        }
    }
}

/// One of the tape engine's own parts, to switch off for a benchmark that measures what it
/// saves (`benches/check.rs`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The compiled checks (else jsonschema's validator over the tape).
    CompiledChecks,
    /// A kind's last valid frame kept, so the next is decided by the scalars it changed.
    Snapshots,
    /// Landmarks (kind, id, clock field) read where the last frame in the direction had them.
    Marks,
}

/// The tape engine's parts in use: all, but while a benchmark measures what one saves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    compiled_checks: bool,
    snapshots: bool,
    marks: bool,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            compiled_checks: true,
            snapshots: true,
            marks: true,
        }
    }
}

impl Parts {
    /// Switches `part` off.
    pub(crate) fn switch_off(&mut self, part: Part) {
        match part {
            Part::CompiledChecks => self.compiled_checks = false,
            Part::Snapshots => self.snapshots = false,
            Part::Marks => self.marks = false,
        }
    }
}
