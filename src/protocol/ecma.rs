//! Reading a profile's schema files with ECMA-262's meaning of `.` in patterns.
//!
//! JSON Schema patterns are ECMA-262 regular expressions. The jsonschema crate's translation
//! to Rust's syntax keeps `\d`, `\w` and `\s` to their ECMA classes, but leaves `.` as Rust
//! reads it: any character but `\n`. ECMA-262's `.` (no `s` flag) also excludes `\r`, U+2028
//! and U+2029, so `"cases:all\r"` passed `^cases:.+$`. Every schema is read through here, so
//! the per-frame checks, the jsonschema validators and `squall validate` all see the same,
//! ECMA-faithful patterns.

use std::path::Path;

use serde_json::Value;

use super::source::Source;

/// ECMA-262's `.`, spelled as a class every engine reads alike.
const ECMA_DOT: &str = r"[^\n\r\u2028\u2029]";

/// Reads and parses a schema file, with its patterns' `.` made ECMA-262's.
pub(crate) fn read_schema(source: &Source, path: &Path) -> Result<Value, String> {
    let text = source.read(path).map_err(|e| e.to_string())?;
    let mut v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    ecma_patterns(&mut v);
    Ok(v)
}

/// Rewrites `.` in every `pattern` and `patternProperties` key of a schema. Values that are
/// data, not schemas (`const`, `enum`, `examples`, `default`), are left alone.
pub(crate) fn ecma_patterns(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(p)) = map.get_mut("pattern") {
                *p = ecma_dots(p);
            }
            if let Some(Value::Object(props)) = map.get_mut("patternProperties") {
                let old = std::mem::take(props);
                for (k, mut v) in old {
                    ecma_patterns(&mut v);
                    props.insert(ecma_dots(&k), v);
                }
            }
            for (k, v) in map.iter_mut() {
                let data = matches!(
                    k.as_str(),
                    "const" | "enum" | "examples" | "default" | "patternProperties"
                );
                if !data {
                    ecma_patterns(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(ecma_patterns),
        _ => {}
    }
}

/// `pattern` with every `.` outside a class and not escaped written as [`ECMA_DOT`].
pub(crate) fn ecma_dots(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let (mut escaped, mut in_class) = (false, false);
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' => in_class = true,
            ']' => in_class = false,
            '.' if !in_class => {
                out.push_str(ECMA_DOT);
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_bare_dots_outside_classes_change() {
        assert_eq!(ecma_dots("^a.b$"), format!("^a{ECMA_DOT}b$"));
        assert_eq!(ecma_dots(r"a\.b"), r"a\.b");
        assert_eq!(ecma_dots("[.]x"), "[.]x");
        assert_eq!(ecma_dots(r"[\].]."), format!(r"[\].]{ECMA_DOT}"));
        assert_eq!(ecma_dots(r"\\."), format!(r"\\{ECMA_DOT}"));
    }

    #[test]
    fn patterns_follow_ecma_262_for_dot_in_both_validators() {
        let mut schema = json!({
            "type": "object",
            "properties": { "room": { "type": "string", "pattern": "^cases:.+$" } },
            "patternProperties": { "^x.$": { "type": "integer" } },
            "examples": [{ "pattern": "keep.me" }]
        });
        ecma_patterns(&mut schema);
        assert_eq!(
            schema["examples"][0]["pattern"], "keep.me",
            "data is not a schema"
        );
        let v = jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&schema)
            .unwrap();
        for (room, ok) in [
            ("cases:all", true),
            ("cases:é", true),
            ("cases:all\r", false),
            ("cases:a\u{2028}", false),
            ("cases:a\u{2029}", false),
            ("cases:a\nb", false),
        ] {
            assert_eq!(v.is_valid(&json!({ "room": room })), ok, "{room:?}");
        }
        assert!(!v.is_valid(&json!({ "xa": "s" })), "xa matches ^x.$");
        assert!(
            v.is_valid(&json!({ "x\r": "s" })),
            "x\\r does not match ^x.$"
        );
    }
}
