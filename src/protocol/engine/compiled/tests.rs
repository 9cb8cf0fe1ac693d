//! The compiled checks against jsonschema's validator on `serde_json::Value`.

use super::*;
use crate::protocol::engine::recent::Recent;
use crate::protocol::engine::tape::Tape;
use serde_json::json;

/// Compiles `schema` both ways (with `defs` beside it) and asks both about each instance.
fn agree(schema: Value, instances: &[Value]) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    let defs = json!({"$defs": {"pos": {"type": "integer", "minimum": 1},
                                "ts": {"type": "string", "format": "date-time"}}});
    std::fs::write(root.join("defs.json"), defs.to_string()).unwrap();
    let file = root.join("s.json");
    std::fs::write(&file, schema.to_string()).unwrap();
    let leaf = |one: &Value| {
        crate::protocol::build::<TapeJson>(&root, &file, one, &crate::protocol::Reader::strict())
            .ok()
    };
    let compiled = Compiled::compile(&root, &[&file], &leaf).expect("compiles to checks");
    let on_value: Validator =
        crate::protocol::build(&root, &file, &schema, &crate::protocol::Reader::strict()).unwrap();
    same_verdicts(
        &compiled,
        |v| on_value.is_valid(v),
        instances,
        &schema.to_string(),
    );
}

/// The checks say of each instance what `expected` says, which is not the same for all.
fn same_verdicts(
    compiled: &Compiled,
    expected: impl Fn(&Value) -> bool,
    instances: &[Value],
    what: &str,
) {
    let mut tape = Tape::default();
    let mut valid = 0;
    // Resumed pattern walks too, from whatever string came before, in both orders.
    let mut recent = Recent::default();
    for v in instances.iter().chain(instances.iter().rev()) {
        let text = v.to_string();
        let doc = tape.parse(&text).unwrap();
        assert_eq!(compiled.is_valid(doc.root()), expected(v), "{what} on {v}");
        let resumed = compiled.is_valid_recent(doc.root(), &mut recent);
        assert_eq!(resumed, expected(v), "{what} on {v}, resumed");
        valid += usize::from(expected(v));
    }
    assert!(
        valid > 0 && valid < 2 * instances.len(),
        "{what}: both outcomes seen"
    );
}

#[test]
fn structural_keywords_mean_what_the_validator_means() {
    let numbers = [
        json!(1),
        json!(1.0),
        json!(1.5),
        json!(-3),
        json!("1"),
        json!(null),
    ];
    agree(json!({"type": "integer"}), &numbers);
    agree(json!({"type": ["number", "null"]}), &numbers);
    agree(json!({"const": 1}), &numbers);
    agree(json!({"enum": ["1", 1.5, null]}), &numbers);
    agree(json!({"$ref": "defs.json#/$defs/pos"}), &numbers);
    agree(json!({"not": {"type": "string"}, "minimum": 0}), &numbers);
    agree(
        json!({"oneOf": [{"type": "integer"}, {"minimum": 1}]}),
        &numbers,
    );
    agree(
        json!({"anyOf": [{"type": "string"}, {"const": -3}]}),
        &numbers,
    );
    let strings = [
        json!(""),
        json!("é"),
        json!("abc"),
        json!("2026-01-01T00:00:00Z"),
        json!(7),
        // Two and three code points in four and six bytes: byte lengths alone mislead.
        json!("éé"),
        json!("ééé"),
        json!("a\u{e9}"),
    ];
    agree(json!({"minLength": 1, "maxLength": 2}), &strings);
    agree(json!({"minLength": 3}), &strings);
    agree(json!({"const": "abc"}), &strings);
    agree(json!({"const": "é"}), &strings);
    agree(json!({"$ref": "defs.json#/$defs/ts"}), &strings);
    agree(json!({"pattern": "^[a-z]+$"}), &strings);
    // ECMA 262 classes are ASCII where Rust's are Unicode: the translation must carry over.
    let digits = [
        json!("12"),
        json!("١٢"),
        json!("1"),
        json!("ab_"),
        json!("é"),
    ];
    agree(json!({"pattern": "^\\d{2}$"}), &digits);
    agree(json!({"pattern": "^\\w+$"}), &digits);
    agree(json!({"pattern": "^[^0-9]+$"}), &digits);
    // Only the first alternative is anchored: the walk from the start must not be used.
    let alts = [json!("xb"), json!("a"), json!("ab"), json!("c"), json!("")];
    agree(json!({"pattern": "^a|b"}), &alts);
    agree(json!({"pattern": "^(a|xb)[a-z]*$"}), &alts);
    agree(json!({"pattern": "a$"}), &alts);
    // Strings sharing prefixes of every length with the one before, the verdict flipping
    // inside, at and after the shared part; early stops (a dead state, a match) included.
    let stamps = [
        json!("2026-11-22T10:00:00.123456Z"),
        json!("2026-11-22T10:00:00.123457Z"),
        json!("2026-11-22T10:00:00.123457Z"),
        json!("2026-11-22T10:00:00.12345xZ"),
        json!("2026-11-22T10:00:00.123458Z"),
        json!("2026-11-22T10:00:00"),
        json!("2026-11-22T10:00:00.1Z"),
        json!("2026-13-22T10:00:00.1Z"),
        json!("2026-11-22T10:00:00.1Zjunk"),
        json!("2026-11-22T10:00:00.1Z"),
        json!("2"),
        json!(""),
        json!("2026-11-22T10:00:00.1Z"),
    ];
    let ts = "^[0-9]{4}-(0[1-9]|1[0-2])-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$";
    agree(json!({ "pattern": ts }), &stamps);
    agree(json!({"pattern": "^2026-11"}), &stamps);
    agree(
        json!({"pattern": "^2026-1[0-2]-22T10:00:00\\.12345"}),
        &stamps,
    );
    let objects = [
        json!({"a": 1, "b": "x"}),
        json!({"a": 1}),
        json!({"b": "x"}),
        json!({"a": "1", "b": "x"}),
        json!({"a": 1, "b": "x", "c": true}),
        json!({"a": 1, "b": "x", "c": 2}),
        json!({}),
        json!([1]),
    ];
    let props = json!({"a": {"type": "integer"}, "b": {"type": "string"}});
    agree(
        json!({"properties": props, "required": ["a", "b"]}),
        &objects,
    );
    agree(
        json!({"properties": props, "additionalProperties": false}),
        &objects,
    );
    agree(
        json!({"properties": props, "additionalProperties": {"type": "integer"},
               "required": ["c"]}),
        &objects,
    );
    agree(
        json!({"type": "object", "minProperties": 2, "maxProperties": 2}),
        &objects,
    );
    agree(
        json!({"if": {"required": ["c"]}, "then": {"properties": {"c": {"const": 2}}},
               "else": {"required": ["b"]}}),
        &objects,
    );
    let arrays = [
        json!([]),
        json!([1, 2]),
        json!([1, 1]),
        json!([1, "x"]),
        json!({"0": 1}),
    ];
    agree(
        json!({"items": {"type": "integer"}, "minItems": 1}),
        &arrays,
    );
    agree(
        json!({"type": "array", "uniqueItems": true, "maxItems": 1}),
        &arrays,
    );
    agree(
        json!({"allOf": [{"type": "array"}, {"items": false}]}),
        &arrays,
    );
}

/// A kind's schema and an envelope compiled together (their object rules merged into
/// one) mean what the two validators mean together.
fn agree_both(kind: Value, envelope: Value, instances: &[Value]) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    let defs = json!({"$defs": {"ts": {"type": "string", "format": "date-time"}}});
    std::fs::write(root.join("defs.json"), defs.to_string()).unwrap();
    let (kf, ef) = (root.join("k.json"), root.join("e.json"));
    std::fs::write(&kf, kind.to_string()).unwrap();
    std::fs::write(&ef, envelope.to_string()).unwrap();
    let leaf = |one: &Value| {
        crate::protocol::build::<TapeJson>(&root, &kf, one, &crate::protocol::Reader::strict()).ok()
    };
    let compiled = Compiled::compile(&root, &[&kf, &ef], &leaf).expect("compiles to checks");
    assert!(
        matches!(compiled.nodes[0].ops.last(), Some(Op::Object(_))),
        "the two object rules were merged"
    );
    let k: Validator =
        crate::protocol::build(&root, &kf, &kind, &crate::protocol::Reader::strict()).unwrap();
    let e: Validator =
        crate::protocol::build(&root, &ef, &envelope, &crate::protocol::Reader::strict()).unwrap();
    let what = format!("{kind} + {envelope}");
    same_verdicts(
        &compiled,
        |v| k.is_valid(v) && e.is_valid(v),
        instances,
        &what,
    );
}

#[test]
fn a_kind_and_its_envelope_checked_in_one_pass_mean_both() {
    let ts = json!({"$ref": "defs.json#/$defs/ts"});
    let frames = [
        json!({"type": "a", "t": "2026-01-01T00:00:00Z"}),
        json!({"type": "a", "t": "yesterday"}),
        json!({"type": "a"}),
        json!({"type": "b", "t": "2026-01-01T00:00:00Z"}),
        json!({"type": "", "t": "2026-01-01T00:00:00Z"}),
        json!({"type": "a", "data": {}}),
        json!({"type": "a", "t": "2026-01-01T00:00:00Z", "data": {}}),
        json!({"type": "a", "data": 1}),
        json!({"type": "a", "id": 3, "other": 3}),
        json!({"type": "a", "id": 3, "data": {}}),
        json!({"type": "a", "id": 3}),
        json!({"type": "a", "id": "x"}),
        json!({"type": "a", "other": 3}),
        json!({"t": "2026-01-01T00:00:00Z"}),
        json!("a"),
        json!([]),
    ];
    let envelope = json!({"type": "object",
        "properties": {"type": {"type": "string", "minLength": 1}, "t": ts,
                       "data": {"type": "object"}},
        "required": ["type"], "additionalProperties": true});
    // Closed kind: a member only the envelope lists is refused.
    agree_both(
        json!({"type": "object",
               "properties": {"type": {"const": "a"}, "t": ts, "id": {"type": "integer"}},
               "required": ["type", "t"], "additionalProperties": false}),
        envelope.clone(),
        &frames,
    );
    // Open kind with an `additionalProperties` schema; the envelope closed and asking
    // for a member the kind does not list.
    agree_both(
        json!({"properties": {"type": {"const": "a"}},
               "additionalProperties": {"type": ["integer", "object"]}}),
        json!({"type": "object",
               "properties": {"type": {"type": "string"}, "id": {"minimum": 2},
                              "data": true},
               "required": ["id"], "additionalProperties": false}),
        &frames,
    );
    // Both with schemas for the rest.
    agree_both(
        json!({"type": ["object", "string"], "properties": {"type": {"const": "a"}},
               "additionalProperties": {"type": "integer"}}),
        json!({"properties": {"t": ts}, "additionalProperties": {"minimum": 3}}),
        &frames,
    );
}

#[test]
fn what_the_checks_cannot_express_is_left_to_the_validator() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    let leaf = |_: &Value| None;
    for schema in [
        json!({"patternProperties": {"^a": true}}),
        json!({"$id": "x", "type": "string"}),
        json!({"unevaluatedProperties": false}),
        json!({"prefixItems": [true]}),
        json!({"x-custom": 1}),
        json!({"$ref": "#"}),
        json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}),
        json!({"$ref": "../outside.json"}),
    ] {
        let file = root.join("s.json");
        std::fs::write(&file, schema.to_string()).unwrap();
        assert!(
            Compiled::compile(&root, &[&file], &leaf).is_err(),
            "{schema}"
        );
    }
}
