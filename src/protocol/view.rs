//! Whose rules a profile's schemas hold a frame to.
//!
//! A profile says two things besides its document's rules, both marked in its files:
//! - **decisions**: constraints squall adds where the document is silent — closed objects
//!   (`decisions: { closed: … }` in `protocol.yaml` covers every `additionalProperties: false`
//!   and `unevaluatedProperties: false`), and any keyword a schema names in
//!   `"x-squall-decision": {"keyword": "why", "required:NAME": "why"}`, or a whole subschema
//!   (`"x-squall-decision": "why"`, e.g. the shape of an error frame the document never shows);
//! - **extensions**: what squall-server adds to the document — a property whose subschema
//!   carries `"x-squall-extension": "why"`, or a whole kind whose schema's root does.
//!
//! Each way of reading the schemas is a [`View`]: `Strict` keeps everything (the default),
//! `Document` drops the decisions (`--conformance document`), `Portable` drops the extensions
//! (what a scenario may use and still run against any server written to the document).
//! Every schema file is read through [`View::apply`], so the per-frame checks, the jsonschema
//! validators and `squall validate` see the same rules.

use serde_json::{Map, Value};

/// How strictly a run holds the target to its profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Conformance {
    /// The document's rules and squall's decisions where it is silent (the default).
    #[default]
    Strict,
    /// The document's rules only: squall's decisions let pass.
    Document,
}

impl Conformance {
    /// `strict` or `document`.
    pub fn as_str(self) -> &'static str {
        match self {
            Conformance::Strict => "strict",
            Conformance::Document => "document",
        }
    }
}

/// Whose rule a violation broke.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    /// The protocol's document (or a rule that follows from it).
    #[default]
    Document,
    /// A decision of squall's profile where the document is silent.
    Squall,
}

impl RuleSource {
    /// `document` or `squall`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSource::Document => "document",
            RuleSource::Squall => "squall",
        }
    }
}

/// Marks a subschema (or, as an object, some of its keywords) as squall's decision.
pub(crate) const DECISION: &str = "x-squall-decision";
/// Marks a property (or a kind, at a schema's root) as a squall-server extension.
pub(crate) const EXTENSION: &str = "x-squall-extension";

/// One way of reading a profile's schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Everything the profile says.
    Strict,
    /// The document's rules: decisions dropped (`open`: closed objects are a decision too).
    Document { open: bool },
    /// What any server written to the document accepts: extensions dropped.
    Portable,
}

impl View {
    /// The view of a run at `conformance` for a profile whose closed objects are (or are
    /// not) a decision.
    pub(crate) fn of(conformance: Conformance, closed_is_decision: bool) -> View {
        match conformance {
            Conformance::Strict => View::Strict,
            Conformance::Document => View::Document {
                open: closed_is_decision,
            },
        }
    }

    /// Rewrites a schema as this view reads it; markers are removed in every view.
    pub(crate) fn apply(self, schema: &mut Value) {
        let Value::Object(map) = schema else {
            if let Value::Array(items) = schema {
                items.iter_mut().for_each(|s| self.apply(s));
            }
            return;
        };
        if let View::Document { .. } = self {
            if matches!(map.get(DECISION), Some(Value::String(_))) {
                *schema = Value::Bool(true);
                return;
            }
        }
        let decision = map.remove(DECISION);
        map.remove(EXTENSION);
        match self {
            View::Strict => {}
            View::Document { open } => {
                if let Some(Value::Object(keywords)) = decision {
                    drop_keywords(map, &keywords);
                }
                if open {
                    for k in ["additionalProperties", "unevaluatedProperties"] {
                        if map.get(k) == Some(&Value::Bool(false)) {
                            map.remove(k);
                        }
                    }
                }
            }
            View::Portable => drop_extensions(map),
        }
        for (k, v) in map.iter_mut() {
            match k.as_str() {
                // Data, not schemas.
                "const" | "enum" | "examples" | "default" | "required" => {}
                // Maps of name → schema.
                "properties" | "patternProperties" | "$defs" | "definitions"
                | "dependentSchemas" => {
                    if let Value::Object(m) = v {
                        m.values_mut().for_each(|s| self.apply(s));
                    }
                }
                _ => self.apply(v),
            }
        }
    }
}

/// Whether a schema's root marks its whole kind a squall-server extension.
pub(crate) fn is_extension(schema: &Value) -> bool {
    schema.get(EXTENSION).is_some()
}

/// Removes the keywords a decision names: `required:NAME` takes one name out of `required`.
fn drop_keywords(map: &mut Map<String, Value>, keywords: &Map<String, Value>) {
    for k in keywords.keys() {
        match k.strip_prefix("required:") {
            Some(name) => {
                if let Some(Value::Array(req)) = map.get_mut("required") {
                    req.retain(|r| r.as_str() != Some(name));
                }
            }
            None => {
                map.remove(k);
            }
        }
    }
}

/// Removes the properties marked as extensions, and their names from `required`.
fn drop_extensions(map: &mut Map<String, Value>) {
    let Some(Value::Object(props)) = map.get_mut("properties") else {
        return;
    };
    let gone: Vec<String> = props
        .iter()
        .filter(|(_, s)| s.get(EXTENSION).is_some())
        .map(|(k, _)| k.clone())
        .collect();
    for k in &gone {
        props.remove(k);
    }
    if let Some(Value::Array(req)) = map.get_mut("required") {
        req.retain(|r| r.as_str().is_none_or(|r| !gone.iter().any(|g| g == r)));
    }
}

/// The problems with a schema's markers: a decision must be a reason (string) or an object
/// of keyword → reason naming keywords the subschema has; an extension a reason.
pub(crate) fn marker_problems(schema: &Value, at: &str, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            match map.get(DECISION) {
                None | Some(Value::String(_)) => {}
                Some(Value::Object(kw)) => {
                    for (k, why) in kw {
                        let present = match k.strip_prefix("required:") {
                            Some(name) => map
                                .get("required")
                                .and_then(Value::as_array)
                                .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(name))),
                            None => map.contains_key(k.as_str()),
                        };
                        if !present {
                            out.push(format!(
                                "{at}: {DECISION} names '{k}', which this subschema does not have"
                            ));
                        }
                        if !why.is_string() {
                            out.push(format!("{at}: {DECISION}.{k}: give the reason as a string"));
                        }
                    }
                }
                Some(_) => out.push(format!(
                    "{at}: {DECISION}: a reason (string) or {{\"keyword\": \"reason\"}}"
                )),
            }
            if map.get(EXTENSION).is_some_and(|v| !v.is_string()) {
                out.push(format!("{at}: {EXTENSION}: give the reason as a string"));
            }
            for (k, v) in map {
                if matches!(k.as_str(), "const" | "enum" | "examples" | "default") {
                    continue;
                }
                marker_problems(v, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                marker_problems(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn marked() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["type", "events", "id"],
            "x-squall-decision": { "required:events": "hexabase.md lets a subscribe name resources only" },
            "properties": {
                "type": { "const": "subscribe" },
                "events": { "type": "array", "minItems": 1 },
                "id": { "type": "string", "x-squall-extension": "squall-server echoes ids" },
                "chat_id": { "type": "integer", "minimum": 1, "x-squall-decision": { "minimum": "newloom.rst gives no range" } },
                "error": { "x-squall-decision": "the document shows no error frame", "type": "object", "required": ["message"] }
            }
        })
    }

    #[test]
    fn strict_only_drops_the_markers() {
        let mut s = marked();
        View::Strict.apply(&mut s);
        let text = s.to_string();
        assert!(!text.contains("x-squall"), "{text}");
        assert_eq!(s["required"], json!(["type", "events", "id"]));
        assert_eq!(s["properties"]["chat_id"]["minimum"], 1);
        assert_eq!(s["additionalProperties"], false);
    }

    #[test]
    fn document_drops_each_decision_and_closed_objects_when_they_are_one() {
        let mut s = marked();
        View::Document { open: true }.apply(&mut s);
        assert_eq!(s["required"], json!(["type", "id"]));
        assert!(s["properties"]["chat_id"].get("minimum").is_none());
        assert_eq!(s["properties"]["error"], json!(true));
        assert!(s.get("additionalProperties").is_none());
        let mut s = marked();
        View::Document { open: false }.apply(&mut s);
        assert_eq!(
            s["additionalProperties"], false,
            "closed is not a decision here"
        );
    }

    #[test]
    fn portable_drops_extension_properties_and_their_requirement() {
        let mut s = marked();
        View::Portable.apply(&mut s);
        assert!(s["properties"].get("id").is_none());
        assert_eq!(s["required"], json!(["type", "events"]));
        assert_eq!(s["properties"]["chat_id"]["minimum"], 1, "decisions stay");
    }

    #[test]
    fn data_that_looks_like_a_marker_is_left_alone() {
        let mut s = json!({ "const": { "x-squall-decision": "data" }, "enum": [{ "x-squall-extension": 1 }] });
        View::Document { open: true }.apply(&mut s);
        assert_eq!(s["const"]["x-squall-decision"], "data");
        assert_eq!(s["enum"][0]["x-squall-extension"], 1);
    }

    #[test]
    fn markers_naming_what_is_not_there_are_problems() {
        let s = json!({ "type": "string", "x-squall-decision": { "minimum": "why", "required:id": "why" }, "x-squall-extension": 3 });
        let mut out = Vec::new();
        marker_problems(&s, "f.json#", &mut out);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].contains("'minimum'"), "{out:?}");
    }
}
