//! The tape as a representation the jsonschema crate validates: its `Json` trait and the
//! node, object, array and number traits, so validators compiled for [`TapeJson`] run on a
//! frame's tape where it lies.

use std::borrow::Cow;

use jsonschema::json::{cmp, Array, Json, JsonNumber, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use serde_json::{Number, Value};

use super::{same, Doc, Elements, Entry, Kind, Members, TapeNode};

/// The representation marker the jsonschema crate compiles validators for.
pub struct TapeJson;

/// A number on the tape, with the same variants serde_json's `Number` has.
#[derive(Debug, Clone, Copy)]
pub struct TapeNumber<'a> {
    pub(super) kind: Kind,
    pub(super) n: u64,
    pub(super) token: &'a str,
}

impl TapeNumber<'_> {
    pub(super) fn num(&self) -> Number {
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
