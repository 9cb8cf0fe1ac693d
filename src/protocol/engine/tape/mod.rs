//! A frame parsed once into a flat tape, and validated where it lies.
//!
//! Building a `serde_json::Value` allocates a map per object and a string per key and per
//! string value: for a 170-byte event that is most of the cost of checking it. The tape is one
//! reusable `Vec` of fixed-size entries (strings without escapes stay in the frame's text), so
//! a warmed-up tape parses a frame without allocating. The jsonschema crate validates any
//! representation that implements its [`Json`] trait, so the compiled schemas run on the tape
//! directly, with the crate's own semantics (formats, patterns, numeric comparison).
//!
//! The parser is at least as strict as serde_json's: whatever it accepts, serde_json parses
//! into the same value. Anything it is unsure of (duplicate keys, where serde_json keeps the
//! last; `-0`; integers beyond 64 bits; nesting of 128 levels or more, as serde_json; a lone surrogate) makes
//! [`Tape::parse`] return `None`, and the caller takes the `Value` path, which then decides.

use std::borrow::Cow;

use jsonschema::json::{cmp, Array, Json, JsonNumber, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use serde_json::{Map, Number, Value};

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

struct Parser<'p> {
    text: &'p str,
    b: &'p [u8],
    i: usize,
    entries: &'p mut Vec<Entry>,
    scratch: &'p mut String,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string(),
            b't' => self.literal(b"true", Kind::True),
            b'f' => self.literal(b"false", Kind::False),
            b'n' => self.literal(b"null", Kind::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Option<()> {
        if !self.b[self.i..].starts_with(word) {
            return None;
        }
        self.i += word.len();
        self.entries.push(Entry::new(kind, 0, 0, 0));
        Some(())
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        let at = self.entries.len();
        // One bit per key hash: a second key is compared with the earlier ones only when its
        // bit is already set, so telling duplicates costs next to nothing on ordinary frames.
        let mut seen = 0u64;
        self.container(Kind::Object, b'}', depth, |p| {
            if p.peek()? != b'"' {
                return None;
            }
            let key = p.entries.len();
            p.string()?;
            let bit = 1u64 << (key_hash(p.bytes_of(key)) & 63);
            if seen & bit != 0 && p.repeats(at + 1, key) {
                return None;
            }
            seen |= bit;
            p.ws();
            if p.peek()? != b':' {
                return None;
            }
            p.i += 1;
            p.ws();
            p.value(depth)
        })
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.container(Kind::Array, b']', depth, |p| p.value(depth))
    }

    /// An object or array: the opening byte is at `self.i`; `item` reads one member or
    /// element; commas, spacing, the closing byte and the entry's counts are done here.
    fn container(
        &mut self,
        kind: Kind,
        close: u8,
        depth: usize,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        // serde_json refuses a 128th level of nesting: so does the tape, or a live run
        // (tape) and `squall validate` (serde_json) would judge the same frame apart.
        if depth >= DEPTH_LIMIT {
            return None;
        }
        let at = self.entries.len();
        self.entries.push(Entry::new(kind, 0, 0, 0));
        self.i += 1;
        self.ws();
        let mut count = 0usize;
        if self.peek()? == close {
            self.i += 1;
        } else {
            loop {
                item(self)?;
                count += 1;
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    c if c == close => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let end = self.entries.len();
        self.entries[at].a = end as u32;
        self.entries[at].b = count as u32;
        Some(())
    }

    /// Whether the key at `key` equals an earlier key of the object whose first member's key
    /// is at `first`.
    fn repeats(&self, first: usize, key: usize) -> bool {
        let name = self.str_of(key);
        let mut j = first;
        while j < key {
            if same(self.str_of(j), name) {
                return true;
            }
            j = skip(self.entries, j + 1);
        }
        false
    }

    fn bytes_of(&self, j: usize) -> &[u8] {
        let e = self.entries[j];
        let from = match e.kind {
            Kind::Esc => self.scratch.as_bytes(),
            _ => self.b,
        };
        &from[e.a as usize..e.b as usize]
    }

    fn str_of(&self, j: usize) -> &str {
        let e = self.entries[j];
        match e.kind {
            Kind::Esc => &self.scratch[e.a as usize..e.b as usize],
            _ => &self.text[e.a as usize..e.b as usize],
        }
    }

    #[inline]
    fn string(&mut self) -> Option<()> {
        let start = self.i + 1;
        let mut i = start;
        // Eight bytes at a time to the first that ends the plain run (a quote, a backslash
        // or a control byte); the loop below decides on it (and reads the last few bytes).
        while let Some(chunk) = self.b.get(i..i + 8) {
            let stops = stops(u64::from_le_bytes(chunk.try_into().ok()?));
            if stops != 0 {
                i += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        loop {
            match *self.b.get(i)? {
                b'"' => {
                    self.entries.push(Entry::new(Kind::Str, start, i, 0));
                    self.i = i + 1;
                    return Some(());
                }
                b'\\' => break,
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
        self.escaped(start, i)
    }

    /// The rest of a string with escapes (the first backslash at `i`): decoded whole into the
    /// scratch buffer. Apart, so the common plain string's code stays small.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, start: usize, mut i: usize) -> Option<()> {
        let from = self.scratch.len();
        let mut seg = start;
        loop {
            match *self.b.get(i)? {
                b'"' => {
                    self.scratch.push_str(&self.text[seg..i]);
                    self.entries
                        .push(Entry::new(Kind::Esc, from, self.scratch.len(), 0));
                    self.i = i + 1;
                    return Some(());
                }
                b'\\' => {
                    self.scratch.push_str(&self.text[seg..i]);
                    i = self.escape(i + 1)?;
                    seg = i;
                }
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
    }

    /// Decodes the escape whose letter is at `i`; returns the index after it.
    fn escape(&mut self, i: usize) -> Option<usize> {
        let c = match *self.b.get(i)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(i + 1)?;
                let (code, next) = match hi {
                    0xD800..=0xDBFF => {
                        if self.b.get(i + 5..i + 7)? != b"\\u" {
                            return None;
                        }
                        let lo = self.hex4(i + 7)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return None;
                        }
                        (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), i + 11)
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => (hi, i + 5),
                };
                self.scratch.push(char::from_u32(code)?);
                return Some(next);
            }
            _ => return None,
        };
        self.scratch.push(c);
        Some(i + 1)
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let digits = self.b.get(i..i + 4)?;
        digits.iter().try_fold(0u32, |acc, d| {
            let v = (*d as char).to_digit(16)?;
            Some(acc * 16 + v)
        })
    }

    /// The index after the run of ASCII digits starting at `i`. Forced inline: left to the
    /// compiler it stayed a call, which cost ~9 % of a Kite pong's parse (`benches/check.rs`).
    #[inline(always)]
    fn digits(&self, mut i: usize) -> usize {
        while self.b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    }

    /// [`Parser::digits`] for a run that must not be empty (a fraction, an exponent).
    #[inline(always)]
    fn some_digits(&self, i: usize) -> Option<usize> {
        let end = self.digits(i);
        (end > i).then_some(end)
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        let mut i = start;
        let neg = self.b[i] == b'-';
        if neg {
            i += 1;
        }
        let int_start = i;
        match self.b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => i = self.digits(i),
            _ => return None,
        }
        let int_end = i;
        let mut float = false;
        if self.b.get(i) == Some(&b'.') {
            float = true;
            i = self.some_digits(i + 1)?;
        }
        if let Some(b'e' | b'E') = self.b.get(i) {
            float = true;
            i += 1;
            if let Some(b'+' | b'-') = self.b.get(i) {
                i += 1;
            }
            i = self.some_digits(i)?;
        }
        self.i = i;
        let entry = if float {
            // serde_json's own float parsing, so the value is the one `Value` would hold.
            let f: f64 = serde_json::from_str(&self.text[start..i]).ok()?;
            Entry::new(Kind::Float, start, i, f.to_bits())
        } else {
            let mut v = 0u64;
            for d in &self.b[int_start..int_end] {
                v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            }
            match (neg, v) {
                (false, v) => Entry::new(Kind::Uint, start, i, v),
                // serde_json reads -0 as a float; leave it to serde_json.
                (true, 0) => return None,
                (true, v) if v <= 1 << 63 => {
                    Entry::new(Kind::Int, start, i, (v as i64).wrapping_neg() as u64)
                }
                _ => return None,
            }
        };
        self.entries.push(entry);
        Some(())
    }
}

/// The high bit of each byte of `w` (little-endian) that may be `"`, `\\` or below 0x20.
/// The lowest set bit is exact: a false positive only ever follows a true one (a borrow
/// carried up from it).
#[inline(always)]
fn stops(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    zero(w ^ (ONES * b'"' as u64)) | zero(w ^ (ONES * b'\\' as u64)) | below_space
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

fn key_hash(b: &[u8]) -> usize {
    match b {
        [] => 0,
        [first, .., last] => b.len() * 7 + usize::from(*first) * 3 + usize::from(*last),
        [only] => b.len() * 7 + usize::from(*only) * 4,
    }
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

/// The representation marker the jsonschema crate compiles validators for.
pub struct TapeJson;

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

/// A number on the tape, with the same variants serde_json's `Number` has.
#[derive(Debug, Clone, Copy)]
pub struct TapeNumber<'a> {
    kind: Kind,
    n: u64,
    token: &'a str,
}

impl TapeNumber<'_> {
    fn num(&self) -> Number {
        match self.kind {
            Kind::Uint => Number::from(self.n),
            Kind::Int => Number::from(self.n as i64),
            // Finite by construction: serde_json refuses the rest.
            _ => Number::from_f64(f64::from_bits(self.n)).unwrap_or(Number::from(0)),
        }
    }
}

impl JsonNumber for TapeNumber<'_> {
    fn as_u64(&self) -> Option<u64> {
        (self.kind == Kind::Uint).then_some(self.n)
    }

    fn as_i64(&self) -> Option<i64> {
        match self.kind {
            Kind::Uint => i64::try_from(self.n).ok(),
            Kind::Int => Some(self.n as i64),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        Some(match self.kind {
            Kind::Uint => self.n as f64,
            Kind::Int => self.n as i64 as f64,
            _ => f64::from_bits(self.n),
        })
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.token)
    }

    fn to_number(&self) -> Cow<'_, Number> {
        Cow::Owned(self.num())
    }

    fn is_written_as_integer(&self) -> bool {
        self.kind != Kind::Float
    }
}

/// The one-string document `propertyNames` validates names through.
#[derive(Default)]
pub struct NameBuffer {
    text: String,
}

impl Json for TapeJson {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = Box<str>;
    // Lookups scan the members, so one pass over them beats any number of lookups.
    const KEYS_PER_LOOKUP: usize = 64;
    type StringBuffer = NameBuffer;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(
        buffer: &mut NameBuffer,
        string: &str,
        f: impl FnOnce(TapeNode<'_>) -> T,
    ) -> T {
        buffer.text.clear();
        buffer.text.push_str(string);
        let entries = [Entry::new(Kind::Str, 0, string.len(), 0)];
        let doc = Doc {
            text: &buffer.text,
            entries: &entries,
            scratch: "",
        };
        f(doc.root())
    }
}

impl<'a> Node<'a, TapeJson> for TapeNode<'a> {
    type Object = TapeNode<'a>;
    type Array = TapeNode<'a>;
    type Number = TapeNumber<'a>;

    fn as_object(&self) -> Option<TapeNode<'a>> {
        (self.entry().kind == Kind::Object).then_some(*self)
    }

    fn as_array(&self) -> Option<TapeNode<'a>> {
        (self.entry().kind == Kind::Array).then_some(*self)
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        self.str().map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<TapeNumber<'a>> {
        self.number()
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.entry().kind {
            Kind::True => Some(true),
            Kind::False => Some(false),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        self.entry().kind == Kind::Null
    }

    fn is_number(&self) -> bool {
        matches!(self.entry().kind, Kind::Uint | Kind::Int | Kind::Float)
    }

    fn json_type(&self) -> JsonType {
        match self.entry().kind {
            Kind::Null => JsonType::Null,
            Kind::False | Kind::True => JsonType::Boolean,
            Kind::Uint | Kind::Int | Kind::Float => JsonType::Number,
            Kind::Str | Kind::Esc => JsonType::String,
            Kind::Array => JsonType::Array,
            Kind::Object => JsonType::Object,
        }
    }

    fn string_length(&self) -> Option<u64> {
        self.str().map(|s| s.chars().count() as u64)
    }

    // `const` and `enum` run on every frame: compare scalars in place rather than building a
    // `Value` (which would allocate for every string).
    fn equals_value(&self, expected: &Value) -> bool {
        match (self.entry().kind, expected) {
            (Kind::Str | Kind::Esc, Value::String(s)) => self.str().is_some_and(|t| same(t, s)),
            (Kind::True, Value::Bool(b)) => *b,
            (Kind::False, Value::Bool(b)) => !*b,
            (Kind::Null, Value::Null) => true,
            (Kind::Uint | Kind::Int | Kind::Float, Value::Number(n)) => {
                self.number().is_some_and(|x| cmp::equal_numbers(&x, n))
            }
            (Kind::Array, Value::Array(_)) | (Kind::Object, Value::Object(_)) => {
                cmp::equal(&self.to_json(), expected)
            }
            _ => false,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(self.to_json())
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(
            std::ptr::from_ref(self.doc) as usize,
            self.i,
        ))
    }
}

impl<'a> Object<'a, TapeJson> for TapeNode<'a> {
    type Node = TapeNode<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        self.entry().b as usize
    }

    fn get(&self, key: &Box<str>) -> Option<TapeNode<'a>> {
        self.member(key)
    }

    fn members(&self) -> Members<'a> {
        self.members_iter()
    }
}

impl<'a> Array<'a, TapeJson> for TapeNode<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter = Elements<'a>;

    fn len(&self) -> usize {
        self.entry().b as usize
    }

    fn elements(&self) -> Elements<'a> {
        TapeNode::elements(self)
    }
}

#[cfg(test)]
mod tests;
