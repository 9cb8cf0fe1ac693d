//! Payload schemas into profile files: each kind's schema, and one `defs.json` holding every
//! schema a `$ref` names (from `components`, elsewhere in the document or another file),
//! with the `$ref`s rewritten to it. AsyncAPI's Schema Object is JSON Schema draft 07 plus a
//! few keywords; profiles are 2020-12, so the differences are translated here.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::doc::{At, Docs};
use super::ImportError;

/// Keywords whose value is one schema.
const ONE_SCHEMA: [&str; 11] = [
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];

/// The schemas gathered so far.
pub(crate) struct Bundle {
    /// How a schema in `defs` is referred to from another one in `defs`.
    inner: &'static str,
    /// `defs.json`'s `$defs`, by name.
    pub defs: BTreeMap<String, Value>,
    names: HashMap<At, String>,
    /// Keywords dropped or translated, each once (for the README).
    pub changes: BTreeMap<String, At>,
}

impl Default for Bundle {
    /// For a profile: `defs.json`'s `$defs`.
    fn default() -> Self {
        Bundle::new("#/$defs/")
    }
}

impl Bundle {
    /// Gathers schemas referred to as `{inner}NAME` from each other.
    pub fn new(inner: &'static str) -> Bundle {
        Bundle {
            inner,
            defs: BTreeMap::new(),
            names: HashMap::new(),
            changes: BTreeMap::new(),
        }
    }

    /// The schema at `at` as a profile file in `inbound/` or `outbound/` (`$ref`s into
    /// `../defs.json`).
    pub fn kind_schema(&mut self, docs: &mut Docs, at: &At) -> Result<Value, ImportError> {
        self.schema(docs, at, "../defs.json#/$defs/")
    }

    /// The schema at `at`, its `$ref`s written `{base}NAME`.
    pub fn schema(&mut self, docs: &mut Docs, at: &At, base: &str) -> Result<Value, ImportError> {
        let v = docs
            .get(at)
            .cloned()
            .ok_or_else(|| docs.error(at, "no payload schema here".into()))?;
        self.convert(docs, at, &v, base)
    }

    /// `defs.json`.
    pub fn defs_file(&self) -> Value {
        serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": "Every schema the document's payloads refer to, by name.",
            "$defs": self.defs,
        })
    }

    /// A schema (an object or a boolean).
    fn convert(
        &mut self,
        docs: &mut Docs,
        at: &At,
        v: &Value,
        defs: &str,
    ) -> Result<Value, ImportError> {
        match v {
            Value::Object(obj) => self.object(docs, at, obj, defs),
            other => Ok(other.clone()),
        }
    }

    fn each(
        &mut self,
        docs: &mut Docs,
        at: &At,
        v: &Value,
        defs: &str,
    ) -> Result<Value, ImportError> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, x)| self.convert(docs, &at.join(&i.to_string()), x, defs))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, x)| Ok((k.clone(), self.convert(docs, &at.join(k), x, defs)?)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    fn object(
        &mut self,
        docs: &mut Docs,
        at: &At,
        obj: &Map<String, Value>,
        defs: &str,
    ) -> Result<Value, ImportError> {
        let mut out = Map::new();
        for (k, v) in obj {
            self.member(docs, (at, obj), (k, v), defs, &mut out)?;
        }
        if obj.get("nullable") == Some(&Value::Bool(true)) {
            nullable(&mut out);
        }
        Ok(Value::Object(out))
    }

    /// One member `k: v` of the schema object `obj` (at `at`), converted into `out`.
    fn member(
        &mut self,
        docs: &mut Docs,
        (at, obj): (&At, &Map<String, Value>),
        (k, v): (&String, &Value),
        defs: &str,
        out: &mut Map<String, Value>,
    ) -> Result<(), ImportError> {
        let here = at.join(k);
        match k.as_str() {
            "$ref" => {
                let r = v.as_str().unwrap_or_default();
                let target = docs.reference(at, r)?;
                let name = self.def(docs, target)?;
                out.insert(k.clone(), Value::String(format!("{defs}{name}")));
            }
            // Maps and lists of schemas.
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas"
            | "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                out.insert(k.clone(), self.each(docs, &here, v, defs)?);
            }
            // draft 07 tuples, in 2020-12 words.
            "items" if v.is_array() => {
                self.note("items (array)", &here);
                out.insert("prefixItems".into(), self.each(docs, &here, v, defs)?);
            }
            "additionalItems" if obj.get("items").is_some_and(Value::is_array) => {
                self.note("additionalItems", &here);
                out.insert("items".into(), self.convert(docs, &here, v, defs)?);
            }
            x if ONE_SCHEMA.contains(&x) => {
                out.insert(k.clone(), self.convert(docs, &here, v, defs)?);
            }
            // AsyncAPI's `discriminator` names a property (a hint, not a check), and
            // `x-` extensions and external docs say nothing about validity.
            "discriminator" | "externalDocs" => self.note(k, &here),
            // squall's own marks (its decisions, squall-server's extensions) travel.
            x if x.starts_with("x-squall-") => {
                out.insert(k.clone(), v.clone());
            }
            x if x.starts_with("x-") => self.note("x-", &here),
            "nullable" => self.note("nullable", &here),
            "dependencies" => {
                self.note("dependencies", &here);
                self.dependencies(docs, &here, v, defs, out)?;
            }
            // Everything else is data or an annotation: kept as written.
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }

    fn dependencies(
        &mut self,
        docs: &mut Docs,
        at: &At,
        v: &Value,
        defs: &str,
        out: &mut Map<String, Value>,
    ) -> Result<(), ImportError> {
        let Value::Object(deps) = v else {
            return Ok(());
        };
        let mut required = Map::new();
        let mut schemas = Map::new();
        for (name, d) in deps {
            if d.is_array() {
                required.insert(name.clone(), d.clone());
            } else {
                schemas.insert(name.clone(), self.convert(docs, &at.join(name), d, defs)?);
            }
        }
        if !required.is_empty() {
            out.insert("dependentRequired".into(), Value::Object(required));
        }
        if !schemas.is_empty() {
            out.insert("dependentSchemas".into(), Value::Object(schemas));
        }
        Ok(())
    }

    /// The name in `defs.json` of the schema at `target`, converting it the first time.
    fn def(&mut self, docs: &mut Docs, target: At) -> Result<String, ImportError> {
        if let Some(n) = self.names.get(&target) {
            return Ok(n.clone());
        }
        let base: String = target
            .pointer
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("root")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut name = base.clone();
        let mut n = 2;
        while self.defs.contains_key(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.names.insert(target.clone(), name.clone());
        self.defs.insert(name.clone(), Value::Null);
        let v = docs
            .get(&target)
            .cloned()
            .ok_or_else(|| docs.error(&target, "nothing here".into()))?;
        let converted = self.convert(docs, &target, &v, self.inner)?;
        self.defs.insert(name.clone(), converted);
        Ok(name)
    }

    fn note(&mut self, keyword: &str, at: &At) {
        self.changes
            .entry(keyword.to_string())
            .or_insert_with(|| at.clone());
    }
}

/// `nullable: true` (OpenAPI style): `null` is allowed too.
fn nullable(out: &mut Map<String, Value>) {
    match out.get_mut("type") {
        Some(Value::String(t)) => {
            let t = t.clone();
            out.insert("type".into(), serde_json::json!([t, "null"]));
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| t == "null") => ts.push("null".into()),
        Some(_) => {}
        None => {
            if let Some(e) = out.get_mut("enum").and_then(Value::as_array_mut) {
                e.push(Value::Null);
            }
        }
    }
}

/// What each translated keyword became, for the README.
pub(crate) fn explain(keyword: &str) -> &'static str {
    match keyword {
        "discriminator" => "AsyncAPI's `discriminator` (a hint naming a property) dropped: the profile's discriminator does its work",
        "externalDocs" => "`externalDocs` dropped (says nothing about validity)",
        "x-" => "`x-` extensions dropped (say nothing about validity)",
        "items (array)" => "draft 07 tuple `items: [...]` written as 2020-12 `prefixItems`",
        "additionalItems" => "draft 07 `additionalItems` written as 2020-12 `items`",
        "nullable" => "`nullable: true` written as a `null` type (or enum value)",
        "dependencies" => "draft 07 `dependencies` split into `dependentRequired` and `dependentSchemas`",
        _ => "translated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_move_to_defs_and_draft_07_becomes_2020_12() {
        let d = tempfile::tempdir().unwrap();
        let doc = d.path().join("a.yaml");
        std::fs::write(
            &doc,
            "components:\n  schemas:\n    id: { type: integer, x-internal: true }\n\
             p:\n  type: object\n  discriminator: kind\n  properties:\n\
             \x20   id: { $ref: '#/components/schemas/id' }\n\
             \x20   note: { type: string, nullable: true }\n\
             \x20   pair: { type: array, items: [{ type: string }], additionalItems: false }\n",
        )
        .unwrap();
        let mut docs = Docs::open(&doc).unwrap();
        let mut b = Bundle::default();
        let p = docs.top().join("p");
        let s = b.kind_schema(&mut docs, &p).unwrap();
        assert_eq!(s["properties"]["id"]["$ref"], "../defs.json#/$defs/id");
        assert_eq!(
            s["properties"]["note"]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(s["properties"]["pair"]["prefixItems"][0]["type"], "string");
        assert_eq!(s["properties"]["pair"]["items"], false);
        assert!(s.get("discriminator").is_none());
        assert_eq!(b.defs["id"], serde_json::json!({"type": "integer"}));
        assert!(b.changes.contains_key("x-") && b.changes.contains_key("nullable"));
    }
}
