//! Matching inbound frames: a [`Matcher`] rendered once into a [`Want`], then compared
//! against parsed frames without allocating.

use serde_json::Value;

use super::frame::Frame;
use crate::protocol::pointer::{lookup, IdKey};
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
}
