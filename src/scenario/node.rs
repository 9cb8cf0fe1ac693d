//! The spanned YAML tree: every node and map key keeps its line and column.
//!
//! serde stops at the first error, so the file is first read into this generic tree (which only
//! fails on malformed YAML), and the strict typed model is then deserialized *from the tree*
//! (see `de.rs`), where errors can be recorded and deserialization resumed with siblings.

use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::plan::Pos;

/// One YAML node with the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Where the node starts (the opening quote for quoted strings).
    pub pos: Pos,
    /// The value.
    pub kind: Kind,
}

/// A map key: its text and position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    /// Key text (scalars are kept as written).
    pub name: String,
    /// Where the key starts.
    pub pos: Pos,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    /// Integers up to the u64/i64 range (i128 holds both).
    Int(i128),
    Float(f64),
    /// A string; `content` is where its first character stands (after a quote, if any),
    /// so template errors can point inside it.
    Str {
        value: String,
        content: Pos,
    },
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Kind {
    /// How the kind is named in "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str { .. } => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }
}

/// A node as JSON, positions dropped (`vars:` values, AsyncAPI documents).
pub(crate) fn to_json(n: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &n.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => i64::try_from(*i)
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(*i as f64)),
        Kind::Float(f) => Value::from(*f),
        Kind::Str { value, .. } => Value::String(value.clone()),
        Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}

pub(crate) fn pos_of(loc: &Location) -> Pos {
    Pos {
        line: loc.line() as u32,
        col: loc.column() as u32,
    }
}

/// Deserialized from serde-saphyr; carries the node out of the spanned wrapper.
pub(crate) struct Built(pub Node);

impl From<Built> for Node {
    fn from(b: Built) -> Node {
        b.0
    }
}

impl<'de> Deserialize<'de> for Built {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sp = Spanned::<Raw<Built, SpannedKey>>::deserialize(d)?;
        let pos = pos_of(&sp.referenced);
        let kind = match sp.value.0 {
            Kind::Str { value, .. } => Kind::Str {
                value,
                content: pos,
            },
            k => k,
        };
        Ok(Built(Node { pos, kind }))
    }
}

/// A map key read by serde-saphyr with its location.
pub(crate) struct SpannedKey(Key);

impl From<SpannedKey> for Key {
    fn from(k: SpannedKey) -> Key {
        k.0
    }
}

impl<'de> Deserialize<'de> for SpannedKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let k = Spanned::<KeyText>::deserialize(d)?;
        Ok(SpannedKey(Key {
            name: k.value.0,
            pos: pos_of(&k.referenced),
        }))
    }
}

/// The kind of one node whose children are read as `C` and whose keys as `K`; shared by the
/// YAML tree builder and by JSON bodies read back from the tree.
pub(crate) struct Raw<C, K>(pub Kind, PhantomData<(C, K)>);

impl<'de, C, K> Deserialize<'de> for Raw<C, K>
where
    C: Deserialize<'de> + Into<Node>,
    K: Deserialize<'de> + Into<Key>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor(PhantomData))
    }
}

struct RawVisitor<C, K>(PhantomData<(C, K)>);

impl<'de, C, K> Visitor<'de> for RawVisitor<C, K>
where
    C: Deserialize<'de> + Into<Node>,
    K: Deserialize<'de> + Into<Key>,
{
    type Value = Raw<C, K>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Raw(Kind::Bool(v), PhantomData))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Raw(Kind::Int(v.into()), PhantomData))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Raw(Kind::Int(v.into()), PhantomData))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Ok(Raw(Kind::Int(v), PhantomData))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        i128::try_from(v)
            .map(|v| Raw(Kind::Int(v), PhantomData))
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Raw(Kind::Float(v), PhantomData))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Raw(
            Kind::Str {
                value: v.to_owned(),
                content: Pos::default(),
            },
            PhantomData,
        ))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Raw(Kind::Null, PhantomData))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Raw(Kind::Null, PhantomData))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<C>()? {
            items.push(n.into());
        }
        Ok(Raw(Kind::Seq(items), PhantomData))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<K>()? {
            let v = map.next_value::<C>()?;
            entries.push((k.into(), v.into()));
        }
        Ok(Raw(Kind::Map(entries), PhantomData))
    }
}

/// A scalar map key as text (`1000: x` keeps the key `"1000"`).
pub(crate) struct KeyText(pub String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar map key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// After building, point string contents past their opening quote so template and literal
/// errors land on the right column (the tree builder does not see the source text).
pub(crate) fn fix_string_columns(node: &mut Node, lines: &[&str]) {
    match &mut node.kind {
        Kind::Str { content, .. } => {
            let line = lines.get(node.pos.line.saturating_sub(1) as usize);
            let ch = line.and_then(|l| l.chars().nth(node.pos.col.saturating_sub(1) as usize));
            *content = node.pos;
            if matches!(ch, Some('"') | Some('\'')) {
                content.col += 1;
            }
        }
        Kind::Seq(items) => items.iter_mut().for_each(|n| fix_string_columns(n, lines)),
        Kind::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, n)| fix_string_columns(n, lines)),
        _ => {}
    }
}
