//! A serde `Deserializer` over the spanned tree, so the strict model is read from [`Node`]s.
//!
//! Every error gets the position of the node or key where it happened and is recorded in a
//! sink the moment it is created. [`Recover`] swallows an already-recorded error and lets the
//! parent carry on with its siblings; unknown keys of a struct are recorded and left out, so
//! one typo does not hide the rest of the file. Only this deserializer knows the magic names.

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, value::StrDeserializer, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess,
    SeqAccess, Visitor,
};
use serde::Deserialize;

pub(crate) use super::wrappers::{Body, OrMap, Recover, Scalar, Sp};
use super::wrappers::{OR_MAP, RECOVER, SP};

use super::diagnostic::{suggestion, Issue};
use super::node::{Key, Kind, Node};
use super::plan::Pos;

/// Where recorded problems go.
pub(crate) type Sink = RefCell<Vec<Issue>>;

/// A deserialization error; `reported` once it is in the sink (then only propagated).
#[derive(Debug, Clone)]
pub(crate) struct DeError {
    pos: Option<Pos>,
    message: String,
    hint: Option<String>,
    reported: bool,
}

impl DeError {
    fn new(message: String) -> Self {
        DeError {
            pos: None,
            message,
            hint: None,
            reported: false,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn silent() -> Self {
        DeError {
            reported: true,
            ..DeError::new(String::new())
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// Rust type names in serde's "expected" texts, said the way a YAML author would.
fn friendly(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "a string" => expected.into(),
        "a sequence" => "a list".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") => "a map".into(),
        e => e.into(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        let found = match unexp {
            de::Unexpected::Str(s) => format!("the string '{s}'"),
            de::Unexpected::Map => "a map".into(),
            de::Unexpected::Seq => "a list".into(),
            de::Unexpected::Unit => "nothing (null)".into(),
            other => other.to_string(),
        };
        DeError::new(format!(
            "expected {}, found {found}",
            friendly(&exp.to_string())
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        unknown_key("key", field, expected, expected)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(format!(
            "unknown value '{variant}'{}",
            suggestion(variant, expected.iter().copied())
        ))
        .with_hint(format!("expected one of: {}", expected.join(", ")))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(format!("missing required key '{field}'"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(format!("key '{field}' given twice"))
    }
}

/// Keys that stand beside a step in a step item.
const MODIFIERS: [&str; 3] = ["unchecked", "on_fail", "steps"];

fn unknown_key(what: &str, name: &str, expected: &[&str], listed: &[&str]) -> DeError {
    DeError::new(format!(
        "unknown {what} '{name}'{}",
        suggestion(name, expected.iter().copied())
    ))
    .with_hint(if listed.is_empty() {
        "this map takes no keys".to_string()
    } else if what == "step" {
        format!("steps are {}", listed.join(", "))
    } else {
        format!("keys here are {}", listed.join(", "))
    })
}

/// Names the step keys so an unknown key in a step item reads "unknown step".
pub(crate) const STEP_ITEM: &str = "StepItem";

/// Records `r`'s error (if new) at `pos`, then passes it on.
fn finish<T>(sink: &Sink, pos: Pos, r: Result<T, DeError>) -> Result<T, DeError> {
    r.map_err(|mut e| {
        if !e.reported {
            let pos = *e.pos.get_or_insert(pos);
            let mut issue = Issue::new(pos, e.message.clone());
            issue.hint = e.hint.clone();
            sink.borrow_mut().push(issue);
            e.reported = true;
        }
        e
    })
}

/// Deserializes a model type from the tree; `None` if anything failed (see the sink).
pub(crate) fn from_node<'a, T: Deserialize<'a>>(node: &'a Node, sink: &'a Sink) -> Option<T> {
    T::deserialize(NodeDe { node, sink }).ok()
}

/// A deserializer reading one node.
#[derive(Clone, Copy)]
pub(crate) struct NodeDe<'a> {
    node: &'a Node,
    sink: &'a Sink,
}

impl<'a> NodeDe<'a> {
    /// The position a scalar's value starts at (inside the quotes for strings).
    fn value_pos(&self) -> Pos {
        match &self.node.kind {
            Kind::Str { content, .. } => *content,
            _ => self.node.pos,
        }
    }

    fn any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Null => v.visit_unit(),
            Kind::Bool(b) => v.visit_bool(*b),
            Kind::Int(i) => match i64::try_from(*i) {
                Ok(i) => v.visit_i64(i),
                Err(_) => v.visit_u64(u64::try_from(*i).unwrap_or(u64::MAX)),
            },
            Kind::Float(f) => v.visit_f64(*f),
            Kind::Str { value, .. } => v.visit_borrowed_str(value),
            Kind::Seq(items) => v.visit_seq(SeqDe {
                items: items.iter(),
                sink: self.sink,
            }),
            Kind::Map(entries) => v.visit_map(MapDe::new(entries.iter().collect(), self.sink)),
        }
    }

    fn strukt<V: Visitor<'a>>(
        self,
        name: &str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let what = if name == STEP_ITEM { "step" } else { "key" };
        // The hint for a step item lists the steps, not the modifiers beside them.
        let listed: Vec<&str> = if name == STEP_ITEM {
            fields
                .iter()
                .copied()
                .filter(|f| !MODIFIERS.contains(f))
                .collect()
        } else {
            fields.to_vec()
        };
        let Kind::Map(entries) = &self.node.kind else {
            let expected = if name == STEP_ITEM {
                "a step (a map such as `send: {...}`)"
            } else {
                "a map"
            };
            return Err(DeError::new(format!(
                "expected {expected}, found {}",
                self.node.kind.describe()
            ))
            .with_hint(format!("{what}s here are {}", listed.join(", "))));
        };
        let mut dropped = false;
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            if fields.contains(&entry.0.name.as_str()) {
                kept.push(entry);
            } else {
                dropped = true;
                let e = unknown_key(what, &entry.0.name, fields, &listed);
                let _ = finish::<()>(self.sink, entry.0.pos, Err(e));
            }
        }
        // A struct missing what the bad key should have given would only repeat the problem.
        v.visit_map(MapDe::new(kept, self.sink)).map_err(|e| {
            if dropped {
                DeError::silent()
            } else {
                e
            }
        })
    }
}

impl<'a> Deserializer<'a> for NodeDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        finish(self.sink, self.node.pos, self.any(v))
    }

    fn deserialize_option<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match self.node.kind {
            Kind::Null => v.visit_none(),
            _ => v.visit_some(self),
        };
        finish(self.sink, self.node.pos, r)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        let r = match (name, &self.node.kind) {
            (SP, _) => v.visit_map(SpAccess::new(self.value_pos(), self)),
            (OR_MAP, Kind::Map(_)) | (RECOVER, _) => v.visit_newtype_struct(self),
            (OR_MAP, _) => self.any(v),
            _ => v.visit_newtype_struct(self),
        };
        finish(self.sink, self.node.pos, r)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        finish(self.sink, self.node.pos, self.strukt(name, fields, v))
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Str { value, .. } => v.visit_enum(
                IntoDeserializer::<DeError>::into_deserializer(value.as_str()),
            ),
            k => Err(DeError::new(format!(
                "expected a name, found {}",
                k.describe()
            ))),
        };
        finish(self.sink, self.value_pos(), r)
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct SeqDe<'a> {
    items: std::slice::Iter<'a, Node>,
    sink: &'a Sink,
}

impl<'a> SeqAccess<'a> for SeqDe<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(NodeDe {
                    node,
                    sink: self.sink,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a> {
    entries: std::vec::IntoIter<&'a (Key, Node)>,
    value: Option<&'a Node>,
    sink: &'a Sink,
}

impl<'a> MapDe<'a> {
    fn new(entries: Vec<&'a (Key, Node)>, sink: &'a Sink) -> Self {
        MapDe {
            entries: entries.into_iter(),
            value: None,
            sink,
        }
    }
}

impl<'a> MapAccess<'a> for MapDe<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(KeyDe {
            key,
            sink: self.sink,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.value.take().expect("next_value before next_key");
        seed.deserialize(NodeDe {
            node,
            sink: self.sink,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Deserializes a map key; errors point at the key.
struct KeyDe<'a> {
    key: &'a Key,
    sink: &'a Sink,
}

impl<'a> Deserializer<'a> for KeyDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, DeError> {
        finish(
            self.sink,
            self.key.pos,
            v.visit_borrowed_str(&self.key.name),
        )
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        let (pos, sink) = (self.key.pos, self.sink);
        let r = if name == SP {
            v.visit_map(SpAccess::new(pos, self))
        } else {
            v.visit_newtype_struct(self)
        };
        finish(sink, pos, r)
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// Presents `{line, col, value}` to [`Sp`]'s visitor.
struct SpAccess<D> {
    pos: Pos,
    inner: Option<D>,
    step: u8,
}

impl<D> SpAccess<D> {
    fn new(pos: Pos, inner: D) -> Self {
        SpAccess {
            pos,
            inner: Some(inner),
            step: 0,
        }
    }
}

impl<'a, D: Deserializer<'a, Error = DeError>> MapAccess<'a> for SpAccess<D> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let key = match self.step {
            0 => "line",
            1 => "col",
            2 => "value",
            _ => return Ok(None),
        };
        seed.deserialize(StrDeserializer::<DeError>::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(self.pos.line.into_deserializer()),
            2 => seed.deserialize(self.pos.col.into_deserializer()),
            _ => seed.deserialize(self.inner.take().expect("value read once")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        n: Sp<u32>,
    }

    fn read<T: for<'a> Deserialize<'a>>(yaml: &str) -> (Option<T>, Vec<Issue>) {
        let root = super::super::parse_yaml(yaml).unwrap();
        let sink = Sink::default();
        let v = from_node(&root, &sink);
        (v, sink.into_inner())
    }

    #[test]
    fn recover_keeps_siblings_and_records_each_error_at_its_place() {
        let (v, issues) = read::<Vec<Recover<Item>>>("- n: 1\n- n: x\n- m: 3\n- n: 4\n");
        let v = v.unwrap();
        assert!(
            matches!(&v[0], Recover::Ok(i) if i.n.value == 1 && i.n.pos == Pos { line: 1, col: 6 })
        );
        assert!(matches!(v[1], Recover::Failed));
        assert!(matches!(v[2], Recover::Failed));
        assert!(matches!(&v[3], Recover::Ok(i) if i.n.value == 4));
        let got: Vec<_> = issues
            .iter()
            .map(|i| (i.pos.line, i.pos.col, i.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    2,
                    6,
                    "expected a non-negative integer, found the string 'x'"
                ),
                (3, 3, "unknown key 'm' (did you mean 'n'?)"),
            ]
        );
    }

    #[test]
    fn without_recover_the_first_error_fails_the_whole_value() {
        let (v, issues) = read::<Vec<Item>>("- n: x\n- n: y\n");
        assert!(v.is_none());
        assert_eq!(issues.len(), 1);
    }

    #[test]
    fn scalars_and_maps_share_one_key() {
        #[derive(Debug, Deserialize)]
        struct L {
            #[serde(rename = "for")]
            d: String,
        }
        let (v, _) = read::<Vec<OrMap<L>>>("- 10s\n- { for: 2s }\n");
        let v = v.unwrap();
        assert!(matches!(&v[0], OrMap::Scalar(Scalar::Str(s)) if s == "10s"));
        assert!(matches!(&v[1], OrMap::Map(L { d }) if d == "2s"));
    }
}
