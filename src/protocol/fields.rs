//! Reading a frame's fields by JSON pointer, whichever way the frame was parsed: onto a tape
//! (the per-frame path) or into a `serde_json::Value` (frames the tape leaves alone, and
//! frames built in memory). The semantic checks (reply pairing, rooms, clocks) read through
//! this, so they see the same values either way.

use std::borrow::Cow;

use serde_json::Value;

use super::tape::Doc;
use crate::swarm::matcher::lookup;

/// A parsed frame's fields.
pub trait Fields {
    /// The string at `pointer`; `None` when absent or not a string.
    fn str_at(&self, pointer: &str) -> Option<Cow<'_, str>>;
    /// The value at `pointer` as serde_json holds it (strings and containers allocate on a
    /// tape: use [`Fields::str_at`] for strings on hot paths).
    fn value_at(&self, pointer: &str) -> Option<Cow<'_, Value>>;
}

impl Fields for Value {
    fn str_at(&self, pointer: &str) -> Option<Cow<'_, str>> {
        lookup(self, pointer)?.as_str().map(Cow::Borrowed)
    }

    fn value_at(&self, pointer: &str) -> Option<Cow<'_, Value>> {
        lookup(self, pointer).map(Cow::Borrowed)
    }
}

impl Fields for Doc<'_> {
    fn str_at(&self, pointer: &str) -> Option<Cow<'_, str>> {
        self.lookup(pointer)?.str().map(Cow::Borrowed)
    }

    fn value_at(&self, pointer: &str) -> Option<Cow<'_, Value>> {
        self.lookup(pointer).map(|n| Cow::Owned(n.to_json()))
    }
}
