//! A copy of a frame that passed its schema, to tell what the next frame of its kind on the
//! same connection changed.
//!
//! Successive frames of one kind mostly repeat each other: the same members in the same
//! order, most values equal (a connection's client id, a room, a status), a few changed (an
//! id, a timestamp, a counter). When a new frame has the snapshot's structure (the same
//! member names, containers of the same sizes, scalars where it had scalars), the checks
//! that decide it are those on the scalars that changed: see [`super::compiled`] and [`super::recent`], which keep
//! one snapshot per connection and kind.

use super::tape::{Doc, Entry, Kind};

/// Frames with more tape entries than this are not kept (a bitmap of this many bits says
/// which scalars changed).
pub const MAX_ENTRIES: usize = 256;

/// Frames longer than this are not kept: a copy per connection and kind must stay small.
const MAX_TEXT: usize = 4096;

/// What an entry of the snapshot's tape is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A member name.
    Key,
    /// An object or an array.
    Container,
    /// A string, number, boolean or null that is a value.
    Scalar,
}

/// The scalars of a frame that differ from the snapshot's, by tape index.
#[derive(Debug, Default, Clone, Copy)]
pub struct Changed([u64; MAX_ENTRIES / 64]);

impl Changed {
    /// Whether the value at tape index `i` changed.
    pub fn has(&self, i: u32) -> bool {
        let i = i as usize;
        i < MAX_ENTRIES && self.0[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

/// A frame's tape and text, copied (buffers reused from one copy to the next).
#[derive(Debug, Default)]
pub struct Snapshot {
    entries: Vec<Entry>,
    text: String,
    scratch: String,
    roles: Vec<Role>,
}

impl Snapshot {
    /// Whether `doc` is small enough to be kept.
    pub fn fits(doc: &Doc) -> bool {
        doc.entries.len() <= MAX_ENTRIES && doc.text.len() + doc.scratch.len() <= MAX_TEXT
    }

    /// Copies `doc`; false (and nothing kept) when it is too large to keep.
    pub fn take(&mut self, doc: &Doc) -> bool {
        self.entries.clear();
        if !Snapshot::fits(doc) {
            return false;
        }
        self.entries.extend_from_slice(doc.entries);
        self.text.clear();
        self.text.push_str(doc.text);
        self.scratch.clear();
        self.scratch.push_str(doc.scratch);
        self.roles.clear();
        self.roles.resize(self.entries.len(), Role::Scalar);
        if !self.entries.is_empty() {
            mark(&self.entries, 0, &mut self.roles);
        }
        true
    }

    /// Which scalars of `doc` differ from the snapshot's (in kind or value), when `doc` has
    /// this snapshot's structure: the same entries, member names and container sizes, a
    /// scalar wherever the snapshot has one. `None` when it has not.
    pub fn changes(&self, doc: &Doc) -> Option<Changed> {
        if self.entries.is_empty() || doc.entries.len() != self.entries.len() {
            return None;
        }
        let mine = Doc {
            text: &self.text,
            entries: &self.entries,
            scratch: &self.scratch,
        };
        let (a, b) = (self.text.as_bytes(), doc.text.as_bytes());
        // Most of a repeated frame is the same bytes at the same place, counted from its start
        // (before the first change) or from its end (after the last): a span there is equal
        // without reading it, so one pass over the texts replaces most span comparisons.
        let shared = Shared {
            old_len: a.len(),
            new_len: b.len(),
            prefix: common_prefix(a, b),
            suffix: common_prefix_rev(a, b),
        };
        let mut changed = Changed::default();
        let pairs = self.entries.iter().zip(doc.entries).zip(&self.roles);
        for (j, ((old, new), role)) in pairs.enumerate() {
            match role {
                Role::Key if old.kind != new.kind || !shared.same(&mine, doc, j) => return None,
                Role::Container if old.kind != new.kind || old.a != new.a || old.b != new.b => {
                    return None
                }
                Role::Key | Role::Container => {}
                Role::Scalar => {
                    if matches!(new.kind, Kind::Object | Kind::Array) {
                        return None;
                    }
                    let equal = old.kind == new.kind
                        && match new.kind {
                            Kind::Str | Kind::Esc => shared.same(&mine, doc, j),
                            _ => old.n == new.n,
                        };
                    if !equal {
                        changed.set(j);
                    }
                }
            }
        }
        Some(changed)
    }
}

/// What an old and a new text share at their start and their end.
struct Shared {
    old_len: usize,
    new_len: usize,
    prefix: usize,
    suffix: usize,
}

impl Shared {
    /// Whether two spans (not decoded escapes) are surely the same bytes: at the same offsets
    /// inside the shared start, or as far from the end, as long, inside the shared end.
    #[inline(always)]
    fn same(&self, old_doc: &Doc, new_doc: &Doc, j: usize) -> bool {
        let (old, new) = (&old_doc.entries[j], &new_doc.entries[j]);
        self.unchanged(old, new) || old_doc.bytes_at(j) == new_doc.bytes_at(j)
    }

    #[inline(always)]
    fn unchanged(&self, old: &Entry, new: &Entry) -> bool {
        let (oa, ob, na, nb) = (
            old.a as usize,
            old.b as usize,
            new.a as usize,
            new.b as usize,
        );
        old.kind != Kind::Esc
            && new.kind != Kind::Esc
            && ((oa == na && ob == nb && ob <= self.prefix)
                || (self.old_len - oa == self.new_len - na
                    && ob - oa == nb - na
                    && self.old_len - oa <= self.suffix))
    }
}

/// How many leading bytes `a` and `b` share; eight at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many trailing bytes `a` and `b` share; eight at a time.
fn common_prefix_rev(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (ea, eb) = (a.len(), b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_be_bytes(a[ea - i - 8..ea - i].try_into().expect("8 bytes"));
        let y = u64::from_be_bytes(b[eb - i - 8..eb - i].try_into().expect("8 bytes"));
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + a[..ea - i]
        .iter()
        .rev()
        .zip(b[..eb - i].iter().rev())
        .take_while(|(x, y)| x == y)
        .take(n - i)
        .count()
}

/// Marks the roles of the subtree at `j`; returns the index after it. Recursion is bounded
/// by the parser's nesting limit.
fn mark(entries: &[Entry], j: usize, roles: &mut [Role]) -> usize {
    let e = entries[j];
    match e.kind {
        Kind::Object | Kind::Array => {
            roles[j] = Role::Container;
            let end = e.a as usize;
            let mut k = j + 1;
            while k < end {
                if e.kind == Kind::Object {
                    roles[k] = Role::Key;
                    k += 1;
                }
                k = mark(entries, k, roles);
            }
            end
        }
        _ => {
            roles[j] = Role::Scalar;
            j + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tape::Tape;
    use super::*;

    fn compare(first: &str, next: &str) -> Option<Vec<u32>> {
        let mut t = Tape::default();
        let mut snap = Snapshot::default();
        assert!(snap.take(&t.parse(first).unwrap()));
        let mut t2 = Tape::default();
        let doc = t2.parse(next).unwrap();
        let changed = snap.changes(&doc)?;
        Some(
            (0..MAX_ENTRIES as u32)
                .filter(|&i| changed.has(i))
                .collect(),
        )
    }

    #[test]
    fn changed_scalars_are_named_and_other_structures_refused() {
        let pong = r#"{"type":"pong","data":{"client_id":"c1"},"id":1}"#;
        // Entries: 0 {, 1 "type", 2 "pong", 3 "data", 4 {, 5 "client_id", 6 "c1", 7 "id", 8 1.
        assert_eq!(compare(pong, pong), Some(vec![]));
        let next = r#"{"type":"pong","data":{"client_id":"c1"},"id":2}"#;
        assert_eq!(compare(pong, next), Some(vec![8]));
        let retyped = r#"{"type":"pong","data":{"client_id":7},"id":"1"}"#;
        assert_eq!(compare(pong, retyped), Some(vec![6, 8]));
        // Escapes decode to the same value: equal; spacing does not matter.
        let escaped = r#"{ "type" : "p\u006fng", "data":{"client_id":"c1"}, "id":1 }"#;
        assert_eq!(compare(pong, escaped), Some(vec![2]));
        assert_eq!(compare(escaped, escaped), Some(vec![]));
        for other in [
            r#"{"type":"pong","data":{"client_idx":"c1"},"id":1}"#,
            r#"{"type":"pong","data":{"client_id":"c1"},"ids":1}"#,
            r#"{"type":"pong","data":{"client_id":"c1","x":1}}"#,
            r#"{"type":"pong","data":[1,2],"id":1}"#,
            r#"{"type":"pong","data":{"client_id":{}},"id":1}"#,
            r#"{"data":{"client_id":"c1"},"type":"pong","id":1}"#,
            r#"["type","pong","data",{"client_id":"c1"},"id",1]"#,
        ] {
            assert_eq!(compare(pong, other), None, "{other}");
        }
        // Arrays: same sizes match, a different split of the same entries does not.
        assert_eq!(compare("[[1],2]", "[[1],3]"), Some(vec![3]));
        assert_eq!(compare("[[1],2]", "[[1,2]]"), None);
    }

    #[test]
    fn spans_told_by_the_shared_start_and_end_agree_with_reading_them() {
        // Every way of changing one scalar's length or bytes, before, between and after
        // equal spans, and spans that move: the answer is the one reading every span gives.
        let base =
            r#"{"a":"xyzxyzxyz","bb":12,"c":{"d":"same-same-same","e":"q"},"f":"tail-tail"}"#;
        let variants = [
            r#"{"a":"xyzxyzxyz","bb":12,"c":{"d":"same-same-same","e":"q"},"f":"tail-tail"}"#,
            r#"{"a":"xyzxyzxyZ","bb":12,"c":{"d":"same-same-same","e":"q"},"f":"tail-tail"}"#,
            r#"{"a":"xyz","bb":12,"c":{"d":"same-same-same","e":"q"},"f":"tail-tail"}"#,
            r#"{"a":"xyzxyzxyz","bb":123456,"c":{"d":"same-same-same","e":"q"},"f":"tail-tail"}"#,
            r#"{"a":"xyzxyzxyz","bb":12,"c":{"d":"same-same-samE","e":"q"},"f":"tail-tail"}"#,
            r#"{"a":"xyzxyzxyz","bb":12,"c":{"d":"same-same-same","e":"qq"},"f":"tail-tail"}"#,
            r#"{"a":"xyzxyzxyz","bb":12,"c":{"d":"same-same-same","e":"q"},"f":"tail-tai"}"#,
            r#"{"a":"x","bb":1,"c":{"d":"s","e":"q"},"f":"tail-tail"}"#,
            r#"{"a":"tail-tail","bb":12,"c":{"d":"same-same-same","e":"q"},"f":"xyzxyzxyz"}"#,
            r#"{"a":"q","bb":12,"c":{"d":"same-same-same","e":"q"},"f":"q"}"#,
            r#"{"a":"xyzxyzxyz", "bb":12,"c":{"d":"same-same-same","e":"q"},"f":"tail-tail"}"#,
            r#"{"a":"\u0078yzxyzxyz","bb":12,"c":{"d":"same-same-same","e":"q"},"f":"tail-tail"}"#,
        ];
        let mut t = Tape::default();
        for (first, next) in [base]
            .iter()
            .chain(&variants)
            .flat_map(|f| variants.iter().map(move |n| (*f, *n)))
        {
            let mut snap = Snapshot::default();
            assert!(snap.take(&t.parse(first).unwrap()));
            let mut t2 = Tape::default();
            let doc = t2.parse(next).unwrap();
            let got = snap.changes(&doc).unwrap();
            let mine = t.parse(first).unwrap();
            for j in (0..doc.entries.len()).filter(|&j| snap.roles[j] == Role::Scalar) {
                let (old, new) = (mine.entries[j], doc.entries[j]);
                let read = old.kind == new.kind
                    && match new.kind {
                        Kind::Str | Kind::Esc => mine.bytes_at(j) == doc.bytes_at(j),
                        _ => old.n == new.n,
                    };
                assert_eq!(got.has(j as u32), !read, "{first} -> {next} at {j}");
            }
        }
    }

    #[test]
    fn shared_starts_and_ends_are_counted_exactly() {
        for (a, b, pre, suf) in [
            ("", "", 0, 0),
            ("abc", "abc", 3, 3),
            ("abcdefghijk", "abcdefghijX", 10, 0),
            ("Xbcdefghijk", "abcdefghijk", 0, 10),
            ("0123456789abcdef0", "0123456789abcdef", 16, 0),
            ("zz0123456789abcdef", "0123456789abcdef", 0, 16),
            ("short", "shorter-and-longer", 5, 0),
        ] {
            assert_eq!(common_prefix(a.as_bytes(), b.as_bytes()), pre, "{a} {b}");
            assert_eq!(
                common_prefix_rev(a.as_bytes(), b.as_bytes()),
                suf,
                "{a} {b}"
            );
        }
    }

    #[test]
    fn large_frames_are_not_kept() {
        let mut t = Tape::default();
        let mut snap = Snapshot::default();
        let long = format!("[{}]", vec!["1"; MAX_ENTRIES].join(","));
        assert!(!snap.take(&t.parse(&long).unwrap()));
        assert!(snap.changes(&t.parse(&long).unwrap()).is_none());
    }
}
