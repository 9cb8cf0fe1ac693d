//! `squall scenario new --from`: a first, commented smoke scenario written from a profile (a
//! profile folder, a name, or an AsyncAPI document): connect as the profile's `connect:`
//! says (required query parameters and headers as `{{env.NAME}}` placeholders), one `send` +
//! `expect` per request/reply rule with the correlation field wired, a `listen` for the
//! kinds that only arrive, and the two thresholds every smoke run must meet.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

use crate::protocol::connect::Connect;
use crate::protocol::{Direction, Profile, Source};

/// Nesting followed when making up a payload from a schema.
const MAX_DEPTH: usize = 12;

/// The scenario text for `profile`, whose `protocol:` line is `protocol` (a name or a path
/// as the scenario should say it); `from` is shown in the header comment.
pub fn scenario(profile: &Profile, protocol: &str, from: &str) -> String {
    let mut y = String::new();
    let name = format!("{}-smoke", profile.name);
    let _ = writeln!(
        y,
        "# A first smoke scenario for {}, written by `squall scenario new --from {from}`.\n\
         # One of every request/reply pair the profile knows, each reply matched to its request,\n\
         # then a listen for what the server sends on its own; every frame both ways is checked\n\
         # against the profile. Edit the payloads and the target, then:\n\
         #   squall check FILE && squall run FILE [--target ws://host:port/path]",
        profile.name
    );
    let _ = writeln!(y, "name: {}", json(&name));
    let _ = writeln!(y, "protocol: {}", json(&protocol));
    target(&mut y, profile.connect.as_ref(), profile.endpoints.first());
    connect(&mut y, profile.connect.as_ref());
    y.push_str("load: { vus: 1, duration: 10s }\nbehaviours:\n  - name: smoke\n    steps:\n");
    let steps = steps(profile);
    y.push_str(&steps);
    y.push_str("thresholds:\n  - \"violations == 0\"\n  - \"errors.count == 0\"\n");
    y
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn target(y: &mut String, c: Option<&Connect>, endpoint: Option<&String>) {
    let server = c.and_then(|c| c.servers.first());
    let mut address = c
        .and_then(|c| c.address.clone())
        .or_else(|| endpoint.cloned())
        .unwrap_or_default();
    for (p, example) in c.map(|c| &c.parameters).into_iter().flatten() {
        let value = match example {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => p.to_uppercase(),
        };
        address = address.replace(&format!("{{{p}}}"), &value);
    }
    match server {
        Some(s) => {
            let _ = writeln!(y, "target: {}", json(&format!("{s}{address}")));
        }
        None => {
            let _ = writeln!(
                y,
                "# The profile names no WebSocket server: set the target here or pass --target.\n\
                 target: {}",
                json(&format!("ws://127.0.0.1:8080{address}"))
            );
        }
    }
}

fn connect(y: &mut String, c: Option<&Connect>) {
    let Some(c) = c else { return };
    if c.query.is_empty() && c.headers.is_empty() {
        return;
    }
    y.push_str("connect:\n");
    for (key, fields) in [("query", &c.query), ("headers", &c.headers)] {
        if fields.is_empty() {
            continue;
        }
        let _ = writeln!(y, "  {key}:");
        for (name, f) in fields {
            if f.required {
                let var: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let _ = writeln!(
                    y,
                    "    {}: \"{{{{env.{var}}}}}\"   # required: set {var} in the environment",
                    json(name)
                );
            } else {
                let example = f.example.as_ref().map(scalar).unwrap_or_default();
                let _ = writeln!(y, "    # {}: {}   # optional", json(name), json(&example));
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn metric(kind: &str) -> String {
    kind.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn steps(profile: &Profile) -> String {
    let mut s = String::new();
    let mut asked: Vec<&str> = Vec::new();
    for r in &profile.replies {
        if asked.contains(&r.request.as_str()) {
            continue;
        }
        asked.push(&r.request);
        let others: Vec<&str> = profile
            .replies
            .iter()
            .filter(|o| o.request == r.request && o.reply != r.reply)
            .map(|o| o.reply.as_str())
            .collect();
        let mut payload = payload(profile, &r.request);
        let echo = r.fields.iter().next();
        // The correlation field gets a fresh value per request; other echoed fields (a
        // room) keep the example's.
        if let Some((_, request_ptr)) = echo.filter(|e| Some(e.1) == profile.correlation.as_ref()) {
            set(&mut payload, request_ptr, Value::String("{{seq}}".into()));
        }
        let _ = writeln!(
            s,
            "      # {} is answered by {}{}",
            r.request,
            r.reply,
            if others.is_empty() {
                String::new()
            } else {
                format!(" (or {})", others.join(", "))
            }
        );
        let _ = writeln!(s, "      - send: {}", json(&payload));
        let matched = echo
            .map(|(reply_ptr, request_ptr)| {
                format!(
                    ", match: {{ {}: \"{{{{sent.{request_ptr}}}}}\" }}",
                    json(reply_ptr)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "      - expect: {{ kind: {}{matched}, within: 2s, metric: {} }}",
            json(&r.reply),
            metric(&r.request)
        );
    }
    unasked(&mut s, profile, &asked);
    s.push_str("      - listen: 2s\n");
    s
}

/// Comments naming the kinds the steps leave out: requests no reply rule answers, and what
/// the server sends on its own.
fn unasked(s: &mut String, profile: &Profile, asked: &[&str]) {
    let silent: Vec<&str> = profile
        .kinds(Direction::Out)
        .into_iter()
        .filter(|k| !asked.contains(k))
        .collect();
    if !silent.is_empty() {
        let _ = writeln!(
            s,
            "      # Not sent (no reply rule says what answers them): {}",
            silent.join(", ")
        );
    }
    let arriving: Vec<&str> = profile
        .kinds(Direction::In)
        .into_iter()
        .filter(|k| !profile.replies.iter().any(|r| r.reply == *k))
        .collect();
    if !arriving.is_empty() {
        let _ = writeln!(
            s,
            "      # What the server sends on its own, checked as it comes: {}",
            arriving.join(", ")
        );
    }
}

/// The first valid example of an outbound kind, else a payload made up from its schema.
fn payload(profile: &Profile, kind: &str) -> Value {
    let folder = profile.dir.join("examples").join("valid");
    let mut files = profile.source.list(&folder).unwrap_or_default();
    files.sort();
    let example = files
        .iter()
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("out-") && n.ends_with(".json"))
        })
        .filter_map(|f| serde_json::from_str::<Value>(&profile.source.read(f).ok()?).ok())
        .find(|v| profile.kind_of(v).as_deref() == Some(kind));
    if let Some(v) = example {
        return v;
    }
    let mut v = profile
        .schema_path(Direction::Out, kind)
        .and_then(|file| {
            let schema: Value = serde_json::from_str(&profile.source.read(&file).ok()?).ok()?;
            Some(made_up(&profile.source, &file, &schema, 0))
        })
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let [one] = profile.discriminator.as_slice() {
        set(&mut v, one, Value::String(kind.to_string()));
    }
    v
}

/// A value meeting the schema's simple constraints: `const`, first `enum` value, `default`,
/// and for objects their required members.
fn made_up(src: &Source, file: &Path, schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        if let Some(v) = made_up_ref(src, file, r, depth) {
            return v;
        }
    }
    for key in ["const", "default"] {
        if let Some(v) = schema.get(key) {
            return v.clone();
        }
    }
    if let Some(v) = schema.get("enum").and_then(|e| e.get(0)) {
        return v.clone();
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        let mut out = Value::Object(Map::new());
        for part in all {
            if let (Value::Object(o), Value::Object(p)) =
                (&mut out, made_up(src, file, part, depth + 1))
            {
                o.extend(p);
            }
        }
        return out;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema.get(key).and_then(|b| b.get(0)) {
            return made_up(src, file, first, depth + 1);
        }
    }
    made_up_of_type(src, file, schema, depth)
}

/// [`made_up`] for what `$ref` `r` (from `file`) points at; `None` when it cannot be read.
fn made_up_ref(src: &Source, file: &Path, r: &str, depth: usize) -> Option<Value> {
    let (rel, frag) = r.split_once('#').unwrap_or((r, ""));
    let target = if rel.is_empty() {
        file.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new("/")).join(rel)
    };
    let doc: Value = serde_json::from_str(&src.read(&target).ok()?).ok()?;
    let inner = doc.pointer(frag)?;
    Some(made_up(src, &target, inner, depth + 1))
}

/// [`made_up`] by the schema's type: an object with its required members, an empty string
/// (`{{now}}` for a date-time), a number's minimum (else 0), `false`, `[]`.
fn made_up_of_type(src: &Source, file: &Path, schema: &Value, depth: usize) -> Value {
    let ty = match schema.get("type") {
        Some(Value::Array(t)) => t.first().and_then(Value::as_str).unwrap_or(""),
        Some(Value::String(t)) => t.as_str(),
        _ if schema.get("properties").is_some() => "object",
        _ => "",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            let required = schema.get("required").and_then(Value::as_array);
            for name in required.into_iter().flatten().filter_map(Value::as_str) {
                let sub = schema["properties"].get(name).unwrap_or(&Value::Null);
                out.insert(name.to_string(), made_up(src, file, sub, depth + 1));
            }
            Value::Object(out)
        }
        "string" if schema.get("format").and_then(Value::as_str) == Some("date-time") => {
            Value::String("{{now}}".into())
        }
        "string" => Value::String(String::new()),
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or(Value::from(0)),
        "boolean" => Value::Bool(false),
        "array" => Value::Array(Vec::new()),
        _ => Value::Null,
    }
}

/// Sets the member at a JSON pointer, making objects on the way.
fn set(v: &mut Value, pointer: &str, to: Value) {
    let mut here = v;
    let segs: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, seg) in segs.iter().enumerate() {
        if !here.is_object() {
            *here = Value::Object(Map::new());
        }
        let obj = here.as_object_mut().expect("made an object");
        if i + 1 == segs.len() {
            obj.insert(seg.clone(), to);
            return;
        }
        here = obj.entry(seg.clone()).or_insert(Value::Object(Map::new()));
    }
}

/// `to` as a path relative to the folder `base` (both made absolute first), so a scenario
/// names its profile or document from where it lives: `../schemas/kraken`; absolute when
/// the two share no folder but the root.
pub fn relative(base: &Path, to: &Path) -> std::io::Result<std::path::PathBuf> {
    let base = base.canonicalize()?;
    let to = to.canonicalize()?;
    let common = base
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    // Sharing only the root: the absolute path says more than a climb to it.
    if common <= 1 {
        return Ok(to);
    }
    let mut out = std::path::PathBuf::new();
    for _ in base.components().skip(common) {
        out.push("..");
    }
    for c in to.components().skip(common) {
        out.push(c);
    }
    if !out.starts_with("..") {
        out = Path::new(".").join(out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_and_descend() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::create_dir_all(d.path().join("schemas/k")).unwrap();
        let r = relative(&d.path().join("a/b"), &d.path().join("schemas/k")).unwrap();
        assert_eq!(r, Path::new("../../schemas/k"));
        let r = relative(d.path(), &d.path().join("schemas/k")).unwrap();
        assert_eq!(r, Path::new("./schemas/k"));
    }

    #[test]
    fn set_makes_the_objects_on_the_way() {
        let mut v = serde_json::json!({"a": 1});
        set(&mut v, "/b/c", Value::from(2));
        assert_eq!(v, serde_json::json!({"a": 1, "b": {"c": 2}}));
    }
}
