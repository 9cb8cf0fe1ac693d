//! An inbound text frame as the swarm sees it: its kind and correlation id read in one
//! pass, and the full JSON value built only if something asks for it (a field matcher, a
//! capture), then kept.
//!
//! Building a `serde_json::Value` allocates a map per object and a string per key; reading
//! just the top-level fields that name the kind and the id skips all of that, and is what a
//! pipelined RPC exchange needs per reply. Protocols whose kind or id sits deeper (KECS:
//! `/payload/eventType`) get the full value at once.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::time::Instant;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::matcher::{join_parts, kind_of, lookup, IdKey};
use crate::protocol::tape::{Doc, TapeNode};

/// How frames of a plan are read: precomputed once per run.
#[derive(Debug, Clone)]
pub struct Shape {
    kind_pointers: Vec<String>,
    id_pointer: String,
    /// Top-level field names of the kind pointers and the id, when all are top-level.
    skim: Option<(Vec<String>, String)>,
}

impl Shape {
    /// The shape for the plan's kind pointers and correlation pointer.
    pub fn new(kind_pointers: &[String], id_pointer: &str) -> Self {
        let kinds: Option<Vec<String>> = kind_pointers.iter().map(|p| top_level(p)).collect();
        let skim = match (kinds, top_level(id_pointer)) {
            (Some(k), Some(id)) if !k.is_empty() => Some((k, id)),
            _ => None,
        };
        Shape {
            kind_pointers: kind_pointers.to_vec(),
            id_pointer: id_pointer.to_string(),
            skim,
        }
    }

    /// The kind pointers.
    pub fn kind_pointers(&self) -> &[String] {
        &self.kind_pointers
    }

    /// The correlation pointer.
    pub fn id_pointer(&self) -> &str {
        &self.id_pointer
    }
}

fn top_level(pointer: &str) -> Option<String> {
    let f = pointer.strip_prefix('/')?;
    (!f.is_empty() && !f.contains('/') && !f.contains('~')).then(|| f.to_string())
}

/// One inbound text frame.
pub struct Frame<'a> {
    text: &'a str,
    /// When it arrived.
    pub at: Instant,
    json: bool,
    kind: Option<Cow<'a, str>>,
    id: Option<IdKey>,
    full: OnceCell<Option<Value>>,
}

impl<'a> Frame<'a> {
    /// Reads `text`'s kind and id (skimmed when the pointers allow, else from the full value).
    pub fn read(text: &'a str, at: Instant, shape: &Shape) -> Frame<'a> {
        match &shape.skim {
            Some((kinds, id)) => match skim(text, kinds, id) {
                Some((kind, id)) => Frame::json(text, at, kind, id, OnceCell::new()),
                None => Frame::invalid(text, at),
            },
            None => Frame::from_value(text, at, shape, serde_json::from_str(text).ok()),
        }
    }

    /// A frame already parsed into `v` (`None`: not JSON).
    pub fn from_value(text: &'a str, at: Instant, shape: &Shape, v: Option<Value>) -> Frame<'a> {
        let Some(v) = v else {
            return Frame::invalid(text, at);
        };
        let kind = kind_of(&v, &shape.kind_pointers).map(|k| Cow::Owned(k.into_owned()));
        let id = lookup(&v, &shape.id_pointer).map(IdKey::of);
        Frame::json(text, at, kind, id, OnceCell::from(Some(v)))
    }

    /// A frame parsed onto a tape, with its kind and id read off it (the same values
    /// [`Frame::read`] gives: see [`kind_of_nodes`] and [`id_of`]). The `Value` is built on
    /// first use, unless the caller already has it.
    pub fn from_tape(
        text: &'a str,
        at: Instant,
        kind: Option<Cow<'a, str>>,
        id: Option<IdKey>,
    ) -> Frame<'a> {
        Frame::json(text, at, kind, id, OnceCell::new())
    }

    fn json(
        text: &'a str,
        at: Instant,
        kind: Option<Cow<'a, str>>,
        id: Option<IdKey>,
        full: OnceCell<Option<Value>>,
    ) -> Frame<'a> {
        Frame {
            text,
            at,
            json: true,
            kind,
            id,
            full,
        }
    }

    /// Keeps `v` as the frame's value (the caller parsed it already).
    pub fn with_value(self, v: Value) -> Frame<'a> {
        Frame {
            full: OnceCell::from(Some(v)),
            ..self
        }
    }

    fn invalid(text: &'a str, at: Instant) -> Frame<'a> {
        Frame {
            text,
            at,
            json: false,
            kind: None,
            id: None,
            full: OnceCell::from(None),
        }
    }

    /// Whether the text was JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The frame's kind.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// The correlation id.
    pub fn id(&self) -> Option<&IdKey> {
        self.id.as_ref()
    }

    /// The whole frame as JSON, parsed on first use.
    pub fn value(&self) -> Option<&Value> {
        self.full
            .get_or_init(|| serde_json::from_str(self.text).ok())
            .as_ref()
    }

    /// The text.
    pub fn text(&self) -> &'a str {
        self.text
    }
}

/// A frame's kind read off its tape, as [`kind_of`] reads it off a `Value`; borrowed from
/// `text` (the tape's own text) in the single-pointer case when it has no escapes.
pub fn kind_on_tape<'t>(text: &'t str, doc: &Doc, pointers: &[String]) -> Option<Cow<'t, str>> {
    kind_of_nodes(text, pointers.iter().map(|p| doc.lookup(p)))
}

/// [`kind_on_tape`] from the nodes the kind pointers lead to, in their order.
pub fn kind_of_nodes<'t, 'd>(
    text: &'t str,
    mut nodes: impl ExactSizeIterator<Item = Option<TapeNode<'d>>>,
) -> Option<Cow<'t, str>> {
    match nodes.len() {
        1 => nodes.next()?.and_then(|n| match n.text_span() {
            Some(span) => Some(Cow::Borrowed(&text[span])),
            None => n.str().map(|s| Cow::Owned(s.to_string())),
        }),
        _ => join_parts(nodes.map(|n| n.and_then(|n| n.str()))),
    }
}

/// A correlation id read off its tape, as [`IdKey::of`] reads it off a `Value`.
pub fn id_of(n: TapeNode) -> IdKey {
    match (n.as_u64(), n.str()) {
        (Some(k), _) => IdKey::Num(k),
        (None, Some(s)) => IdKey::Text(s.into()),
        (None, None) => IdKey::of(&n.to_json()),
    }
}

/// A string borrowed from the frame when it has no escapes (serde's own `Cow<str>` always
/// copies); any other JSON value reads as `None`. Used for keys and kind fields.
pub(crate) struct MaybeStr<'de>(pub Option<Cow<'de, str>>);

impl<'de> serde::Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(Cow::Owned(s.to_string()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

type Skimmed<'a> = (Option<Cow<'a, str>>, Option<IdKey>);

/// One pass over a top-level object, keeping only the kind fields and the id.
fn skim<'a>(text: &'a str, kinds: &[String], id: &str) -> Option<Skimmed<'a>> {
    struct Skim<'k> {
        kinds: &'k [String],
        id: &'k str,
    }
    impl<'de> Visitor<'de> for Skim<'_> {
        type Value = (Vec<Option<Cow<'de, str>>>, Option<IdKey>);
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut parts: Vec<Option<Cow<'de, str>>> = vec![None; self.kinds.len()];
            let mut id = None;
            while let Some(MaybeStr(key)) = map.next_key::<MaybeStr<'de>>()? {
                let key = key.unwrap_or_default();
                let as_kind = self.kinds.iter().position(|k| *k == key);
                let as_id = *key == *self.id;
                match (as_kind, as_id) {
                    (None, false) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    (Some(i), false) => parts[i] = map.next_value::<MaybeStr<'de>>()?.0,
                    (None, true) => id = Some(IdKey::of(&map.next_value::<Value>()?)),
                    (Some(i), true) => {
                        let v = map.next_value::<Value>()?;
                        parts[i] = v.as_str().map(|s| Cow::Owned(s.to_string()));
                        id = Some(IdKey::of(&v));
                    }
                }
            }
            Ok((parts, id))
        }
        // Any other JSON value is valid JSON without a kind or an id.
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok((vec![None; self.kinds.len()], None))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok((vec![None; self.kinds.len()], None))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok((vec![None; self.kinds.len()], None))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok((vec![None; self.kinds.len()], None))
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok((vec![None; self.kinds.len()], None))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok((vec![None; self.kinds.len()], None))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut s: A,
        ) -> Result<Self::Value, A::Error> {
            while s.next_element::<IgnoredAny>()?.is_some() {}
            Ok((vec![None; self.kinds.len()], None))
        }
    }
    impl<'de> DeserializeSeed<'de> for Skim<'_> {
        type Value = (Vec<Option<Cow<'de, str>>>, Option<IdKey>);
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let (parts, id) = Skim { kinds, id }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    let kind = match parts.len() {
        1 => parts.into_iter().next().flatten(),
        _ => join_parts(parts.into_iter()),
    };
    Some((kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(kinds: &[&str], id: &str) -> Shape {
        let k: Vec<String> = kinds.iter().map(|s| s.to_string()).collect();
        Shape::new(&k, id)
    }

    #[test]
    fn skimming_and_full_parsing_agree() {
        let texts = [
            r#"{"type":"pong","data":{"client_id":"x"},"id":42,"timestamp":"t"}"#,
            r#"{"id":"a\"b","type":"ev\u0041nt"}"#,
            r#"{"type":7,"id":[1]}"#,
            r#"[1,2,3]"#,
            r#""just a string""#,
            r#"{"payload":{"eventType":"task"},"type":"event","id":1}"#,
        ];
        let skim = shape(&["/type"], "/id");
        let full = shape(&["/type"], "/data/none");
        for t in texts {
            let a = Frame::read(t, Instant::now(), &skim);
            let v: Value = serde_json::from_str(t).unwrap();
            assert!(a.is_json(), "{t}");
            let want_kind = kind_of(&v, &["/type".to_string()]).map(|k| k.into_owned());
            assert_eq!(a.kind().map(str::to_string), want_kind, "{t}");
            assert_eq!(a.id(), lookup(&v, "/id").map(IdKey::of).as_ref(), "{t}");
            assert_eq!(a.value(), Some(&v));
            let b = Frame::read(t, Instant::now(), &full);
            assert_eq!(b.kind(), a.kind(), "{t}");
        }
    }

    #[test]
    fn frames_read_off_a_tape_match_frames_read_from_text() {
        let mut tape = crate::protocol::tape::Tape::default();
        let texts = [
            r#"{"type":"pong","id":42,"timestamp":"t"}"#,
            r#"{"id":"a\"b","type":"ev\u0041nt"}"#,
            r#"{"type":7,"id":[1]}"#,
            r#"{"type":"x","id":1.5}"#,
            r#"{"payload":{"eventType":"task"},"type":"event","id":3}"#,
            r#"[1,2]"#,
        ];
        for pointers in [vec!["/type"], vec!["/type", "/payload/eventType"]] {
            let s = shape(&pointers, "/id");
            for t in texts {
                let doc = tape.parse(t).unwrap();
                let kind = kind_on_tape(t, &doc, s.kind_pointers());
                let id = doc.lookup(s.id_pointer()).map(id_of);
                let a = Frame::from_tape(t, Instant::now(), kind, id);
                let b = Frame::read(t, Instant::now(), &s);
                assert_eq!((a.kind(), a.id()), (b.kind(), b.id()), "{t}");
                assert_eq!(a.value(), b.value(), "{t}");
            }
        }
    }

    #[test]
    fn nested_kinds_use_the_full_value() {
        let s = shape(&["/type", "/payload/eventType"], "/id");
        let f = Frame::read(
            r#"{"type":"event","payload":{"eventType":"task"},"id":3}"#,
            Instant::now(),
            &s,
        );
        assert_eq!(f.kind(), Some("event.task"));
        assert_eq!(f.id(), Some(&IdKey::Num(3)));
        let two = shape(&["/type", "/sub"], "/id");
        let g = Frame::read(r#"{"sub":"b","type":"a"}"#, Instant::now(), &two);
        assert_eq!(g.kind(), Some("a.b"));
    }

    #[test]
    fn invalid_json_is_not_json() {
        let s = shape(&["/type"], "/id");
        for t in ["{\"type\":", "not json", "{\"a\":1} trailing", ""] {
            let f = Frame::read(t, Instant::now(), &s);
            assert!(!f.is_json(), "{t}");
            assert_eq!(f.value(), None);
        }
    }
}
