//! Reading a frame's fields by JSON pointer, whichever way the frame was parsed: onto a tape
//! (the per-frame path) or into a `serde_json::Value` (frames the tape leaves alone, and
//! frames built in memory). The semantic checks (reply pairing, rooms, clocks) read through
//! this, so they see the same values either way.

use std::borrow::Cow;

use serde_json::{Number, Value};

use super::tape::Doc;
use crate::swarm::matcher::lookup;

/// A parsed frame's fields.
pub trait Fields {
    /// The string at `pointer`; `None` when absent or not a string.
    fn str_at(&self, pointer: &str) -> Option<Cow<'_, str>>;
    /// The value at `pointer` as serde_json holds it (strings and containers allocate on a
    /// tape: use [`Fields::str_at`] for strings on hot paths).
    fn value_at(&self, pointer: &str) -> Option<Cow<'_, Value>>;
    /// The value at `pointer` with strings borrowed: what the per-frame checks compare
    /// without allocating. Arrays and objects come as their `Value`.
    fn scalar_at(&self, pointer: &str) -> Option<Scalar<'_>>;
}

/// A value read by pointer, strings borrowed.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json holds it.
    Num(Number),
    /// A string.
    Str(&'a str),
    /// An array or an object.
    Other(Cow<'a, Value>),
}

impl<'a> Scalar<'a> {
    fn of_value(v: Cow<'a, Value>) -> Scalar<'a> {
        match v {
            Cow::Borrowed(Value::String(s)) => Scalar::Str(s),
            Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => Scalar::Null,
            Cow::Borrowed(Value::Bool(b)) => Scalar::Bool(*b),
            Cow::Owned(Value::Bool(b)) => Scalar::Bool(b),
            Cow::Borrowed(Value::Number(n)) => Scalar::Num(n.clone()),
            Cow::Owned(Value::Number(n)) => Scalar::Num(n),
            other => Scalar::Other(other),
        }
    }
}

impl Fields for Value {
    fn str_at(&self, pointer: &str) -> Option<Cow<'_, str>> {
        lookup(self, pointer)?.as_str().map(Cow::Borrowed)
    }

    fn value_at(&self, pointer: &str) -> Option<Cow<'_, Value>> {
        lookup(self, pointer).map(Cow::Borrowed)
    }

    fn scalar_at(&self, pointer: &str) -> Option<Scalar<'_>> {
        lookup(self, pointer).map(|v| Scalar::of_value(Cow::Borrowed(v)))
    }
}

impl Fields for Doc<'_> {
    fn str_at(&self, pointer: &str) -> Option<Cow<'_, str>> {
        self.lookup(pointer)?.str().map(Cow::Borrowed)
    }

    fn value_at(&self, pointer: &str) -> Option<Cow<'_, Value>> {
        self.lookup(pointer).map(|n| Cow::Owned(n.to_json()))
    }

    fn scalar_at(&self, pointer: &str) -> Option<Scalar<'_>> {
        let n = self.lookup(pointer)?;
        // Scalars other than strings convert to a `Value` without allocating.
        Some(match n.str() {
            Some(s) => Scalar::Str(s),
            None => Scalar::of_value(Cow::Owned(n.to_json())),
        })
    }
}
