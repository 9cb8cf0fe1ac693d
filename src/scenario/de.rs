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

use super::diagnostic::{suggestion, Issue};
use super::node::{Key, Kind, Node, Raw};
use super::plan::Pos;

const SP: &str = "__squall_spanned";
const RECOVER: &str = "__squall_recover";
const OR_MAP: &str = "__squall_or_map";

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
const MODIFIERS: [&str; 2] = ["unchecked", "steps"];

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
            .with_hint(format!("keys here are {}", fields.join(", "))));
        };
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

/// A value with the position it was written at (inside the quotes for strings).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sp<T> {
    pub value: T,
    pub pos: Pos,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Sp<T>, A::Error> {
                let (_, line) = m.next_entry::<de::IgnoredAny, u32>()?.ok_or_else(missing)?;
                let (_, col) = m.next_entry::<de::IgnoredAny, u32>()?.ok_or_else(missing)?;
                m.next_key::<de::IgnoredAny>()?.ok_or_else(missing)?;
                let value = m.next_value()?;
                Ok(Sp {
                    value,
                    pos: Pos { line, col },
                })
            }
            // Other deserializers (tests) have no positions.
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Sp<T>, D::Error> {
                Ok(Sp {
                    value: T::deserialize(d)?,
                    pos: Pos::default(),
                })
            }
        }
        fn missing<E: de::Error>() -> E {
            E::custom("internal: malformed span")
        }
        d.deserialize_newtype_struct(SP, V(std::marker::PhantomData))
    }
}

/// A part of the model that may fail on its own: its error is already recorded, and the
/// parent keeps going. `#[serde(default)]` fields start as `Missing`.
#[derive(Debug, Clone, Default)]
pub(crate) enum Recover<T> {
    /// The key was absent.
    #[default]
    Missing,
    /// Present but invalid (reported).
    Failed,
    /// Read successfully.
    Ok(T),
}

impl<T> Recover<T> {
    pub fn ok(self) -> Option<T> {
        match self {
            Recover::Ok(t) => Some(t),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Recover<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Recover<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Recover<T>, D::Error> {
                // The node deserializer has recorded the error already.
                Ok(T::deserialize(d).map_or(Recover::Failed, Recover::Ok))
            }
        }
        d.deserialize_newtype_struct(RECOVER, V(std::marker::PhantomData))
    }
}

/// A YAML scalar of any type, kept for lowering (durations, rates, sizes, counts...).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Scalar {
    #[default]
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a single value (string, number or boolean)")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// Either a scalar shorthand (`listen: 10s`) or the full map form (`listen: { for: 10s }`).
#[derive(Debug, Clone)]
pub(crate) enum OrMap<M> {
    Scalar(Scalar),
    Map(M),
}

impl<'de, M: Deserialize<'de>> Deserialize<'de> for OrMap<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<M>(std::marker::PhantomData<M>);
        impl<'de, M: Deserialize<'de>> Visitor<'de> for V<M> {
            type Value = OrMap<M>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a single value or a map")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<OrMap<M>, D::Error> {
                M::deserialize(d).map(OrMap::Map)
            }
            fn visit_unit<E: de::Error>(self) -> Result<OrMap<M>, E> {
                Ok(OrMap::Scalar(Scalar::Null))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OrMap<M>, E> {
                ScalarVisitor.visit_bool(v).map(OrMap::Scalar)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OrMap<M>, E> {
                ScalarVisitor.visit_i64(v).map(OrMap::Scalar)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OrMap<M>, E> {
                ScalarVisitor.visit_u64(v).map(OrMap::Scalar)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OrMap<M>, E> {
                ScalarVisitor.visit_f64(v).map(OrMap::Scalar)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OrMap<M>, E> {
                ScalarVisitor.visit_str(v).map(OrMap::Scalar)
            }
        }
        d.deserialize_newtype_struct(OR_MAP, V(std::marker::PhantomData))
    }
}

/// A free-form JSON body (`send:`), kept as a tree with positions for template errors.
#[derive(Debug, Clone)]
pub(crate) struct Body(pub Node);

impl From<Body> for Node {
    fn from(b: Body) -> Node {
        b.0
    }
}

/// A body's map key with its position.
pub(crate) struct BodyKey(Key);

impl From<BodyKey> for Key {
    fn from(k: BodyKey) -> Key {
        k.0
    }
}

impl<'de> Deserialize<'de> for BodyKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let k = Sp::<super::node::KeyText>::deserialize(d)?;
        Ok(BodyKey(Key {
            name: k.value.0,
            pos: k.pos,
        }))
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sp = Sp::<Raw<Body, BodyKey>>::deserialize(d)?;
        let kind = match sp.value.0 {
            Kind::Str { value, .. } => Kind::Str {
                value,
                content: sp.pos,
            },
            k => k,
        };
        Ok(Body(Node { pos: sp.pos, kind }))
    }
}
