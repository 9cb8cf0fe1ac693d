//! Model building blocks the node deserializer treats specially: positions ([`Sp`]), error
//! recovery ([`Recover`]), scalar-or-map shorthands ([`OrMap`]) and free-form JSON ([`Body`]).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::node::{Key, Kind, Node, Raw};
use super::plan::Pos;

// Newtype names by which a wrapper asks the scenario deserializer (`de`) for its special
// handling: a value with its position, recovery, a map-or-scalar.
pub(crate) const SP: &str = "__squall_spanned";
pub(crate) const RECOVER: &str = "__squall_recover";
pub(crate) const OR_MAP: &str = "__squall_or_map";

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
