//! Reading a frame by JSON pointer: its kind (the discriminator's parts joined by `.`) and
//! its correlation id, off a `serde_json::Value` or off a tape, with the same results.
//! Every part of the harness that classifies a frame comes through here.

use std::borrow::Cow;

use compact_str::CompactString;
use serde_json::Value;

use super::tape::{Doc, TapeNode};

/// Which pointers name a frame's kind and its correlation id: precomputed once per run.
#[derive(Debug, Clone)]
pub struct Shape {
    kind_pointers: Vec<String>,
    id_pointer: String,
}

impl Shape {
    /// The shape for the plan's kind pointers and correlation pointer.
    pub fn new(kind_pointers: &[String], id_pointer: &str) -> Self {
        Shape {
            kind_pointers: kind_pointers.to_vec(),
            id_pointer: id_pointer.to_string(),
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

    /// The key of a value on a tape, as [`IdKey::of`] reads it off a `Value`.
    pub fn on_tape(n: TapeNode) -> IdKey {
        match (n.as_u64(), n.str()) {
            (Some(k), _) => IdKey::Num(k),
            (None, Some(s)) => IdKey::Text(s.into()),
            (None, None) => IdKey::of(&n.to_json()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn kinds_and_ids_read_off_a_tape_match_those_read_off_a_value() {
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
            let pointers: Vec<String> = pointers.iter().map(|p| p.to_string()).collect();
            for t in texts {
                let v: Value = serde_json::from_str(t).unwrap();
                let doc = tape.parse(t).unwrap();
                assert_eq!(
                    kind_on_tape(t, &doc, &pointers),
                    kind_of(&v, &pointers),
                    "{t}"
                );
                let id = doc.lookup("/id").map(IdKey::on_tape);
                assert_eq!(id, lookup(&v, "/id").map(IdKey::of), "{t}");
            }
        }
    }
}
