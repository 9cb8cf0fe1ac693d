//! Matching inbound frames: a [`Matcher`] rendered once into a [`Want`], then compared
//! against parsed frames without allocating.

use std::borrow::Cow;

use compact_str::CompactString;
use serde_json::Value;

use super::frame::{Frame, MaybeStr};
use crate::scenario::plan::Matcher;
use crate::scenario::template::{Context, Template};

/// One expected value, rendered: compared as text with strings, numerically with numbers.
#[derive(Debug, Clone)]
pub struct Expected {
    text: String,
    num: Option<f64>,
}

impl Expected {
    /// Renders `t` once.
    pub fn render<C: Context>(t: &Template, ctx: &mut C) -> Self {
        let mut text = String::new();
        t.render(ctx, &mut text);
        Self::from_text(text)
    }

    /// From already rendered text.
    pub fn from_text(text: String) -> Self {
        let num = text.parse::<f64>().ok();
        Expected { text, num }
    }

    /// Whether a correlation id equals this expectation.
    pub fn eq_key(&self, k: &IdKey) -> bool {
        match k {
            IdKey::Num(n) => self.num == Some(*n as f64),
            IdKey::Text(s) => *s == self.text,
        }
    }

    /// Whether a JSON value equals this expectation.
    pub fn eq_value(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => *s == self.text,
            Value::Number(n) => self.num.is_some() && n.as_f64() == self.num,
            Value::Bool(b) => self.text == if *b { "true" } else { "false" },
            Value::Null => self.text == "null",
            other => serde_json::to_string(other).is_ok_and(|s| s == self.text),
        }
    }
}

/// A matcher with its templates rendered: what a pending `expect` waits for.
#[derive(Debug, Clone, Default)]
pub struct Want {
    kind: Option<String>,
    id: Option<Expected>,
    fields: Vec<(String, Expected)>,
}

impl Want {
    /// Renders the matcher's templates (once, when the step starts).
    pub fn render<C: Context>(m: &Matcher, ctx: &mut C) -> Self {
        Want {
            kind: m.kind.clone(),
            id: m.id.as_ref().map(|t| Expected::render(t, ctx)),
            fields: m
                .fields
                .iter()
                .map(|(p, t)| (p.clone(), Expected::render(t, ctx)))
                .collect(),
        }
    }

    /// Whether the frame satisfies every condition. Only field conditions need the frame's
    /// full JSON value; kind and id were read when it arrived.
    pub fn matches(&self, f: &Frame) -> bool {
        if let Some(k) = &self.kind {
            if f.kind() != Some(k.as_str()) {
                return false;
            }
        }
        if let Some(id) = &self.id {
            if !f.id().is_some_and(|x| id.eq_key(x)) {
                return false;
            }
        }
        if self.fields.is_empty() {
            return true;
        }
        let Some(v) = f.value() else { return false };
        self.fields
            .iter()
            .all(|(p, e)| lookup(v, p).is_some_and(|x| e.eq_value(x)))
    }
}

/// The value at a JSON pointer. Like `Value::pointer`, but tokens without `~` are used as
/// they are instead of being unescaped into a new string: this runs for every frame.
pub fn lookup<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(v);
    }
    let rest = pointer.strip_prefix('/')?;
    if rest.contains('~') {
        return v.pointer(pointer);
    }
    rest.split('/').try_fold(v, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// A frame's kind: the string values at the kind pointers that are present, joined by `.`
/// (KECS: `event.task` for an event, plain `ping` where the other pointers are absent); `None`
/// when no pointer names a string. Borrowed in the single-pointer case, so classifying a frame
/// does not allocate.
pub fn kind_of<'a>(v: &'a Value, pointers: &[String]) -> Option<Cow<'a, str>> {
    match pointers {
        [one] => lookup(v, one).and_then(Value::as_str).map(Cow::Borrowed),
        many => join_parts(many.iter().map(|p| lookup(v, p).and_then(Value::as_str))),
    }
}

/// Joins the present parts of a kind with `.`; `None` when none is present.
pub fn join_parts<'a, S: AsRef<str>>(
    parts: impl Iterator<Item = Option<S>>,
) -> Option<Cow<'a, str>> {
    let mut out: Option<String> = None;
    for part in parts.flatten() {
        match &mut out {
            Some(o) => {
                o.push('.');
                o.push_str(part.as_ref());
            }
            None => out = Some(part.as_ref().to_string()),
        }
    }
    out.map(Cow::Owned)
}

/// A correlation id as a map key; numeric ids (the common case) avoid allocating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdKey {
    /// A non-negative integer id.
    Num(u64),
    /// Any other id, as its string value or JSON text (held inline when short, so reading
    /// an id per reply does not allocate).
    Text(CompactString),
}

impl IdKey {
    /// The key of a JSON value.
    pub fn of(v: &Value) -> IdKey {
        match v {
            Value::Number(n) if n.as_u64().is_some() => IdKey::Num(n.as_u64().unwrap_or(0)),
            Value::String(s) => IdKey::Text(s.as_str().into()),
            other => IdKey::Text(other.to_string().into()),
        }
    }

    /// The key of the value at `pointer` in a JSON text we rendered ourselves.
    pub fn of_text(text: &str, pointer: &str) -> Option<IdKey> {
        if let Some(field) = top_level_field(pointer) {
            return top_level_raw(text, field).map(|raw| match raw {
                Value::Number(n) if n.as_u64().is_some() => IdKey::Num(n.as_u64().unwrap_or(0)),
                other => IdKey::of(&other),
            });
        }
        let v: Value = serde_json::from_str(text).ok()?;
        lookup(&v, pointer).map(IdKey::of)
    }
}

/// `/id` → `id`; `None` for nested or escaped pointers.
fn top_level_field(pointer: &str) -> Option<&str> {
    let f = pointer.strip_prefix('/')?;
    (!f.contains('/') && !f.contains('~')).then_some(f)
}

/// Reads one top-level field of a JSON object, skipping the others without building them.
fn top_level_raw(text: &str, field: &str) -> Option<Value> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Seek<'f>(&'f str);
    impl<'de> Visitor<'de> for Seek<'_> {
        type Value = Option<Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(MaybeStr(key)) = map.next_key::<MaybeStr<'de>>()? {
                if found.is_none() && key.as_deref() == Some(self.0) {
                    found = Some(map.next_value::<Value>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    impl<'de> DeserializeSeed<'de> for Seek<'_> {
        type Value = Option<Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    Seek(field).deserialize(&mut de).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expected_compares_strings_and_numbers() {
        let e = Expected::from_text("42".into());
        assert!(e.eq_value(&json!(42)));
        assert!(e.eq_value(&json!("42")));
        assert!(!e.eq_value(&json!(43)));
        let s = Expected::from_text("scrape:all".into());
        assert!(s.eq_value(&json!("scrape:all")));
        assert!(!s.eq_value(&json!("scrape:x")));
    }

    #[test]
    fn lookup_agrees_with_value_pointer() {
        let v = json!({"a": {"b/c": 1, "d": [10, 20]}, "t~x": 2, "": 3});
        for p in [
            "", "/a", "/a/d/1", "/a/d/9", "/a/b~1c", "/t~0x", "/nope", "/a/d/x", "/",
        ] {
            assert_eq!(lookup(&v, p), v.pointer(p), "{p}");
        }
    }

    #[test]
    fn kind_of_joins_pointers() {
        let v = json!({"type": "event", "payload": {"eventType": "task"}});
        assert_eq!(kind_of(&v, &["/type".into()]).as_deref(), Some("event"));
        let both = ["/type".to_string(), "/payload/eventType".to_string()];
        assert_eq!(kind_of(&v, &both).as_deref(), Some("event.task"));
        assert_eq!(kind_of(&v, &["/nope".into()]), None);
        let absent = [
            "/type".to_string(),
            "/action".to_string(),
            "/payload/eventType".into(),
        ];
        assert_eq!(
            kind_of(&json!({"type": "ping"}), &absent).as_deref(),
            Some("ping")
        );
        assert_eq!(kind_of(&json!({"x": 1}), &absent), None);
    }

    #[test]
    fn id_keys_from_text_and_values_agree() {
        let text = r#"{"type":"ping","data":{"id":9},"id":17}"#;
        assert_eq!(IdKey::of_text(text, "/id"), Some(IdKey::Num(17)));
        assert_eq!(IdKey::of(&json!(17)), IdKey::Num(17));
        assert_eq!(IdKey::of_text(text, "/data/id"), Some(IdKey::Num(9)));
        let s = r#"{"id":"a-1"}"#;
        assert_eq!(IdKey::of_text(s, "/id"), Some(IdKey::Text("a-1".into())));
        assert_eq!(IdKey::of_text(r#"{"x":1}"#, "/id"), None);
    }
}
