//! Reading a frame's fields by JSON pointer, whichever way the frame was parsed: onto a tape
//! (the per-frame path) or into a `serde_json::Value` (frames the tape leaves alone, and
//! frames built in memory). The semantic checks (reply pairing, rooms, clocks) read through
//! this, so they see the same values either way.

use std::borrow::Cow;

use serde_json::{Number, Value};

use super::pointer::lookup;
use super::tape::{same, Doc, TapeNode};

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
        self.lookup(pointer).map(scalar)
    }
}

/// A scalar read off the tape: strings borrowed, other scalars converted to a `Value`
/// without allocating.
fn scalar<'a>(n: TapeNode<'a>) -> Scalar<'a> {
    match n.str() {
        Some(s) => Scalar::Str(s),
        None => Scalar::of_value(Cow::Owned(n.to_json())),
    }
}

/// A frame on its tape with the value at one pointer already looked up: the correlation id,
/// which the frame itself is read for. The checks that read that pointer again (reply
/// pairing) get it without a second walk; other pointers are looked up as on the [`Doc`].
pub struct Known<'d> {
    /// The frame.
    pub doc: &'d Doc<'d>,
    /// The pointer looked up already.
    pub pointer: &'d str,
    /// What is at it (`None`: nothing).
    pub node: Option<TapeNode<'d>>,
}

impl<'d> Known<'d> {
    fn at(&self, pointer: &str) -> Option<TapeNode<'d>> {
        match same(pointer, self.pointer) {
            true => self.node,
            false => self.doc.lookup(pointer),
        }
    }
}

impl Fields for Known<'_> {
    fn str_at(&self, pointer: &str) -> Option<Cow<'_, str>> {
        self.at(pointer)?.str().map(Cow::Borrowed)
    }

    fn value_at(&self, pointer: &str) -> Option<Cow<'_, Value>> {
        self.at(pointer).map(|n| Cow::Owned(n.to_json()))
    }

    fn scalar_at(&self, pointer: &str) -> Option<Scalar<'_>> {
        self.at(pointer).map(scalar)
    }
}
