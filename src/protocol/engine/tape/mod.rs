//! A frame parsed once into a flat tape, and validated where it lies.
//!
//! Building a `serde_json::Value` allocates a map per object and a string per key and per
//! string value: for a 170-byte event that is most of the cost of checking it. The tape is one
//! reusable `Vec` of fixed-size entries (strings without escapes stay in the frame's text), so
//! a warmed-up tape parses a frame without allocating. The jsonschema crate validates any
//! representation that implements its [`Json`](jsonschema::json::Json) trait, so the compiled schemas run on the tape
//! directly, with the crate's own semantics (formats, patterns, numeric comparison).
//!
//! The parser is at least as strict as serde_json's: whatever it accepts, serde_json parses
//! into the same value. Anything it is unsure of (duplicate keys, where serde_json keeps the
//! last; `-0`; integers beyond 64 bits; nesting of 128 levels or more, as serde_json; a lone surrogate) makes
//! [`Tape::parse`] return `None`, and the caller takes the `Value` path, which then decides.

mod json;
mod parse;

use serde_json::{Map, Number, Value};

pub use json::{NameBuffer, TapeJson, TapeNumber};
use parse::Parser;

/// serde_json's own nesting limit.
const DEPTH_LIMIT: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    False,
    True,
    /// A non-negative integer: `n` is the value.
    Uint,
    /// A negative integer: `n` is the value's bits as `i64`.
    Int,
    /// A number with a fraction or an exponent: `n` is the `f64`'s bits.
    Float,
    /// A string without escapes: `a..b` in the text.
    Str,
    /// A string that had escapes: `a..b` in the tape's scratch, decoded.
    Esc,
    /// `a`: the entry after the subtree; `b`: the element count.
    Array,
    /// `a`: the entry after the subtree; `b`: the member count. Members follow as a key
    /// entry (`Str` or `Esc`) and the value's subtree.
    Object,
}

/// One value on the tape: 24 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) kind: Kind,
    pub(super) a: u32,
    pub(super) b: u32,
    pub(super) n: u64,
}

impl Entry {
    fn new(kind: Kind, a: usize, b: usize, n: u64) -> Entry {
        Entry {
            kind,
            a: a as u32,
            b: b as u32,
            n,
        }
    }
}

/// A reusable parse buffer: one per worker thread is enough.
#[derive(Debug, Default)]
pub struct Tape {
    entries: Vec<Entry>,
    scratch: String,
}

impl Tape {
    /// Parses `text` (one JSON value), replacing what the tape held. `None` when the text is
    /// not JSON, or is JSON this parser leaves to serde_json (see the module's doc).
    pub fn parse<'t>(&'t mut self, text: &'t str) -> Option<Doc<'t>> {
        self.entries.clear();
        self.scratch.clear();
        if text.len() >= u32::MAX as usize {
            return None;
        }
        let mut p = Parser {
            text,
            b: text.as_bytes(),
            i: 0,
            entries: &mut self.entries,
            scratch: &mut self.scratch,
        };
        p.ws();
        p.value(0)?;
        p.ws();
        (p.i == p.b.len()).then_some(Doc {
            text,
            entries: &self.entries,
            scratch: &self.scratch,
        })
    }
}

/// String equality without a call to `memcmp`: keys are short, and the call costs more than
/// the comparison.
#[inline]
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// [`same`] on bytes (no char boundaries to check), with the lengths known equal.
#[inline]
fn same_bytes(a: &[u8], b: &str) -> bool {
    a.iter().zip(b.bytes()).all(|(x, y)| *x == y)
}

/// The entry after the subtree at `j`.
fn skip(entries: &[Entry], j: usize) -> usize {
    match entries[j].kind {
        Kind::Array | Kind::Object => entries[j].a as usize,
        _ => j + 1,
    }
}

/// A parsed frame: its text and the tape that indexes it.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    pub(super) text: &'a str,
    pub(super) entries: &'a [Entry],
    pub(super) scratch: &'a str,
}

impl<'a> Doc<'a> {
    /// The top-level value.
    pub fn root(&'a self) -> TapeNode<'a> {
        TapeNode { doc: self, i: 0 }
    }

    /// The value at tape index `i` (below the number of entries).
    pub(super) fn node(&'a self, i: u32) -> TapeNode<'a> {
        TapeNode { doc: self, i }
    }

    /// The value at a JSON pointer (RFC 6901), if there is one.
    pub fn lookup(&'a self, pointer: &str) -> Option<TapeNode<'a>> {
        let mut node = self.root();
        if pointer.is_empty() {
            return Some(node);
        }
        // Split by hand, one pass that also notices `~`: pointers are a few bytes, shorter
        // than the call to a general searcher (`split`, `memchr`) that would find the `/`.
        let tokens = pointer.strip_prefix('/')?;
        let bytes = tokens.as_bytes();
        let mut from = 0;
        loop {
            let mut end = from;
            let mut tilde = false;
            while let Some(&b) = bytes.get(end).filter(|&&b| b != b'/') {
                tilde |= b == b'~';
                end += 1;
            }
            let token = &tokens[from..end];
            node = match tilde {
                false => node.child(token)?,
                true => node.child(&token.replace("~1", "/").replace("~0", "~"))?,
            };
            if end == bytes.len() {
                return Some(node);
            }
            from = end + 1;
        }
    }

    fn str_at(&self, j: usize) -> &'a str {
        let e = self.entries[j];
        match e.kind {
            Kind::Esc => &self.scratch[e.a as usize..e.b as usize],
            _ => &self.text[e.a as usize..e.b as usize],
        }
    }

    /// [`Doc::str_at`] as bytes, for equality: no char boundaries to check.
    pub(super) fn bytes_at(&self, j: usize) -> &'a [u8] {
        let e = self.entries[j];
        let from = if e.kind == Kind::Esc {
            self.scratch
        } else {
            self.text
        };
        &from.as_bytes()[e.a as usize..e.b as usize]
    }
}

/// One value on a parsed frame's tape; copying it is copying two words.
#[derive(Debug, Clone, Copy)]
pub struct TapeNode<'a> {
    doc: &'a Doc<'a>,
    i: u32,
}

impl<'a> TapeNode<'a> {
    fn entry(&self) -> Entry {
        self.doc.entries[self.i as usize]
    }

    /// The string, when this is one; borrowed from the frame's text when it had no escapes,
    /// so it lives as long as the text does.
    pub fn str(&self) -> Option<&'a str> {
        match self.entry().kind {
            Kind::Str | Kind::Esc => Some(self.doc.str_at(self.i as usize)),
            _ => None,
        }
    }

    /// Where the string lies in the frame's text, when this is one without escapes: a caller
    /// holding the text borrows it for as long as the text lives, beyond the tape's reuse.
    pub fn text_span(&self) -> Option<std::ops::Range<usize>> {
        let e = self.entry();
        (e.kind == Kind::Str).then_some(e.a as usize..e.b as usize)
    }

    /// The node's place on its tape (distinct for distinct values of one frame).
    pub fn index(&self) -> u32 {
        self.i
    }

    /// The frame this value is part of.
    pub(super) fn doc(&self) -> &'a Doc<'a> {
        self.doc
    }

    /// The member count, when this is an object.
    pub fn object_len(&self) -> Option<usize> {
        let e = self.entry();
        (e.kind == Kind::Object).then_some(e.b as usize)
    }

    /// The element count, when this is an array.
    pub fn array_len(&self) -> Option<usize> {
        let e = self.entry();
        (e.kind == Kind::Array).then_some(e.b as usize)
    }

    /// An object's members in order (nothing for any other value).
    pub fn entries(&self) -> Members<'a> {
        match self.entry().kind {
            Kind::Object => self.members_iter(),
            _ => Members {
                doc: self.doc,
                j: 0,
                end: 0,
            },
        }
    }

    /// An array's elements in order (nothing for any other value).
    pub fn items(&self) -> Elements<'a> {
        match self.entry().kind {
            Kind::Array => self.elements(),
            _ => Elements {
                doc: self.doc,
                j: 0,
                end: 0,
            },
        }
    }

    /// Whether this is a number with no fractional part (`integer` in JSON Schema 2020-12,
    /// so `1.0` is one).
    pub fn is_integral(&self) -> bool {
        let e = self.entry();
        match e.kind {
            Kind::Uint | Kind::Int => true,
            Kind::Float => f64::from_bits(e.n).fract() == 0.0,
            _ => false,
        }
    }

    /// The value, when this is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        let e = self.entry();
        (e.kind == Kind::Uint).then_some(e.n)
    }

    /// The member `token` of an object, or the element at index `token` of an array.
    fn child(&self, token: &str) -> Option<TapeNode<'a>> {
        match self.entry().kind {
            Kind::Object => self.member(token),
            // As RFC 6901 (and serde_json) read an index: digits, no sign, no leading zero.
            Kind::Array
                if token.starts_with('+') || (token.len() > 1 && token.starts_with('0')) =>
            {
                None
            }
            Kind::Array => self.elements().nth(token.parse().ok()?),
            _ => None,
        }
    }

    fn member(&self, name: &str) -> Option<TapeNode<'a>> {
        let entries = self.doc.entries;
        let (mut j, end) = (self.i as usize + 1, self.entry().a as usize);
        while j < end {
            // A key's length is on its entry (text or scratch span): most keys are told
            // apart without reading them.
            let e = entries[j];
            if (e.b - e.a) as usize == name.len() && same_bytes(self.doc.bytes_at(j), name) {
                return Some(TapeNode {
                    doc: self.doc,
                    i: (j + 1) as u32,
                });
            }
            j = skip(entries, j + 1);
        }
        None
    }

    fn members_iter(&self) -> Members<'a> {
        let e = self.entry();
        Members {
            doc: self.doc,
            j: self.i as usize + 1,
            end: e.a as usize,
        }
    }

    fn elements(&self) -> Elements<'a> {
        let e = self.entry();
        Elements {
            doc: self.doc,
            j: self.i as usize + 1,
            end: e.a as usize,
        }
    }

    fn number(&self) -> Option<TapeNumber<'a>> {
        let e = self.entry();
        matches!(e.kind, Kind::Uint | Kind::Int | Kind::Float).then(|| TapeNumber {
            kind: e.kind,
            n: e.n,
            token: &self.doc.text[e.a as usize..e.b as usize],
        })
    }

    /// The value as serde_json would have parsed it (allocates: for reporting, not per frame).
    pub fn to_json(&self) -> Value {
        let e = self.entry();
        match e.kind {
            Kind::Null => Value::Null,
            Kind::False => Value::Bool(false),
            Kind::True => Value::Bool(true),
            Kind::Uint | Kind::Int | Kind::Float => {
                Value::Number(self.number().map(|n| n.num()).unwrap_or(Number::from(0)))
            }
            Kind::Str | Kind::Esc => Value::String(self.doc.str_at(self.i as usize).to_string()),
            Kind::Array => Value::Array(self.elements().map(|x| x.to_json()).collect()),
            Kind::Object => Value::Object(
                self.members_iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

/// An object's members in order.
pub struct Members<'a> {
    doc: &'a Doc<'a>,
    j: usize,
    end: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, TapeNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.j >= self.end {
            return None;
        }
        let name = self.doc.str_at(self.j);
        let value = TapeNode {
            doc: self.doc,
            i: (self.j + 1) as u32,
        };
        self.j = skip(self.doc.entries, self.j + 1);
        Some((name, value))
    }
}

/// An array's elements in order.
pub struct Elements<'a> {
    doc: &'a Doc<'a>,
    j: usize,
    end: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = TapeNode<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.j >= self.end {
            return None;
        }
        let node = TapeNode {
            doc: self.doc,
            i: self.j as u32,
        };
        self.j = skip(self.doc.entries, self.j);
        Some(node)
    }
}

#[cfg(test)]
mod tests;
