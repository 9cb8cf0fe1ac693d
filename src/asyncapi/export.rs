//! `squall schemas export asyncapi`: a profile as an AsyncAPI 3.0 document. One channel
//! carries every kind as a message (`name` = the kind); what squall sends is an operation the
//! server receives (`action: receive`, with a `reply` where the profile's `replies:` say
//! what answers it), what it receives one the server sends. Payloads are the kinds' schemas
//! (the envelope joined with `allOf`), every `$ref`ed schema under `components.schemas`,
//! and the valid examples as message examples.
//!
//! What AsyncAPI cannot say (several discriminator pointers joined into a kind, the fields a
//! reply echoes, rooms, limits, the clock) rides along in `x-squall` extensions, which
//! other tools ignore and `squall schemas import asyncapi` reads back: the round trip gives
//! an equivalent profile.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::bundle::Bundle;
use super::doc::{escape, Docs};
use super::ImportError;
use crate::protocol::{Direction, Profile};

/// Where `components.schemas` are referred to from.
const SCHEMAS: &str = "#/components/schemas/";

/// The sections of `protocol.yaml` kept verbatim in `x-squall`.
const KEPT: &[&str] = &[
    "discriminator",
    "correlation",
    "replies",
    "limits",
    "clock",
    "subscriptions",
    "decisions",
    "query",
];

/// The profile as an AsyncAPI 3.0 document.
pub fn export(profile: &Profile) -> Result<Value, ImportError> {
    let file = profile.dir.join("protocol.yaml");
    let mut docs = Docs::open_in(&profile.source, &file)?;
    let top = docs.top();
    let raw = docs.get(&top).cloned().unwrap_or(Value::Null);
    let mut bundle = Bundle::new(SCHEMAS);
    let envelope = match raw.get("envelope").and_then(Value::as_str) {
        Some(rel) => {
            let at = docs.reference(&top, rel)?;
            Some(payload(bundle.schema(&mut docs, &at, SCHEMAS)?))
        }
        None => None,
    };
    let examples = examples(profile);
    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    for dir in [Direction::Out, Direction::In] {
        for kind in profile.kinds(dir) {
            let key = key(dir, kind);
            let rel = raw[folder(dir)][kind].as_str().unwrap_or_default();
            let at = docs.reference(&top, rel)?;
            let mut schema = payload(bundle.schema(&mut docs, &at, SCHEMAS)?);
            if envelope.is_some() {
                schema =
                    json!({ "allOf": [{ "$ref": format!("{SCHEMAS}squall_envelope") }, schema] });
            }
            let m = message(profile, (dir, kind), schema, &examples);
            messages.insert(key.clone(), m);
            channel_messages.insert(
                key.clone(),
                json!({ "$ref": format!("#/components/messages/{}", escape(&key)) }),
            );
            operations.insert(
                operation_name(dir, &key),
                operation(profile, dir, kind, &key),
            );
        }
    }
    let mut schemas = Map::new();
    schemas.extend(bundle.defs.clone());
    if let Some(e) = envelope {
        schemas.insert("squall_envelope".into(), e);
    }
    let mut channel = json!({
        "address": address(profile),
        "messages": channel_messages,
    });
    connect_parts(profile, &mut channel);
    let mut doc = document(profile, channel, operations, messages, schemas);
    if let Some(servers) = servers(profile) {
        doc["servers"] = servers;
    }
    let kept: Map<String, Value> = KEPT
        .iter()
        .filter_map(|k| Some((k.to_string(), raw.get(*k)?.clone())))
        .collect();
    doc["x-squall"] = Value::Object(kept);
    Ok(doc)
}

/// A message of `kind` in `dir` with its payload `schema`, correlation id and examples.
fn message(
    profile: &Profile,
    (dir, kind): (Direction, &str),
    schema: Value,
    examples: &[(Direction, String, String, Value)],
) -> Value {
    let mut m = json!({ "name": kind, "payload": schema, "x-squall-kind": kind });
    if let Some(c) = correlated(profile, kind) {
        m["correlationId"] = json!({ "location": format!("$message.payload#{c}") });
    }
    let mine: Vec<Value> = examples
        .iter()
        .filter(|(d, k, _, _)| *d == dir && k == kind)
        .map(|(_, _, name, v)| json!({ "name": name, "payload": v }))
        .collect();
    if !mine.is_empty() {
        m["examples"] = Value::Array(mine);
    }
    m
}

/// The document's frame: info, the one channel, operations and components.
fn document(
    profile: &Profile,
    channel: Value,
    operations: Map<String, Value>,
    messages: Map<String, Value>,
    schemas: Map<String, Value>,
) -> Value {
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": profile.name,
            "version": "1.0.0",
            "description": format!(
                "Exported from the squall profile {} by `squall schemas export asyncapi`. \
                 The x-squall extensions keep what AsyncAPI cannot say (discriminator \
                 pointers, echoed reply fields, rooms, limits, clock).",
                profile.name
            ),
        },
        "channels": { "main": channel },
        "operations": operations,
        "components": { "messages": messages, "schemas": schemas },
    })
}

fn folder(dir: Direction) -> &'static str {
    match dir {
        Direction::In => "inbound",
        Direction::Out => "outbound",
    }
}

/// A component key (`^[a-zA-Z0-9.\-_]+$`) for a kind one way.
fn key(dir: Direction, kind: &str) -> String {
    let k: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}_{k}", dir.as_str())
}

fn operation_name(dir: Direction, key: &str) -> String {
    match dir {
        Direction::Out => format!("receive_{key}"),
        Direction::In => format!("send_{key}"),
    }
}

fn operation(profile: &Profile, dir: Direction, kind: &str, key: &str) -> Value {
    let channel = json!({ "$ref": "#/channels/main" });
    let message = |k: &str| json!({ "$ref": format!("#/channels/main/messages/{}", escape(k)) });
    let action = match dir {
        Direction::Out => "receive",
        Direction::In => "send",
    };
    let mut op = json!({ "action": action, "channel": channel, "messages": [message(key)] });
    let replies: Vec<Value> = profile
        .replies
        .iter()
        .filter(|r| dir == Direction::Out && r.request == kind)
        .map(|r| message(&self::key(Direction::In, &r.reply)))
        .collect();
    if !replies.is_empty() {
        op["reply"] = json!({ "channel": channel, "messages": replies });
    }
    op
}

/// The correlation pointer, for kinds in a reply rule that matches on it.
fn correlated<'p>(profile: &'p Profile, kind: &str) -> Option<&'p str> {
    let c = profile.correlation.as_deref()?;
    profile
        .replies
        .iter()
        .any(|r| {
            (r.request == kind && r.fields.values().any(|p| p == c))
                || (r.reply == kind && r.fields.keys().any(|p| p == c))
        })
        .then_some(c)
}

/// A kind's schema as a payload: what only matters to a standalone file goes.
fn payload(mut schema: Value) -> Value {
    if let Value::Object(m) = &mut schema {
        m.remove("$schema");
        m.remove("$id");
    }
    schema
}

/// The valid examples: direction, kind, file stem, frame.
fn examples(profile: &Profile) -> Vec<(Direction, String, String, Value)> {
    let folder = profile.dir.join("examples").join("valid");
    let mut files = profile.source.list(&folder).unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|f| {
            let stem = f.file_stem()?.to_str()?.to_string();
            let dir = if stem.starts_with("in-") {
                Direction::In
            } else if stem.starts_with("out-") {
                Direction::Out
            } else {
                return None;
            };
            let v: Value = serde_json::from_str(&profile.source.read(f).ok()?).ok()?;
            Some((dir, profile.kind_of(&v)?, stem, v))
        })
        .collect()
}

fn address(profile: &Profile) -> String {
    profile
        .connect
        .as_ref()
        .and_then(|c| c.address.clone())
        .or_else(|| profile.endpoints.first().cloned())
        .unwrap_or_else(|| "/".into())
}

fn connect_parts(profile: &Profile, channel: &mut Value) {
    let Some(c) = &profile.connect else { return };
    if !c.parameters.is_empty() {
        let params: Map<String, Value> = c
            .parameters
            .iter()
            .map(|(k, v)| {
                let p = match v {
                    Some(Value::String(s)) => json!({ "default": s }),
                    _ => json!({}),
                };
                (k.clone(), p)
            })
            .collect();
        channel["parameters"] = Value::Object(params);
    }
    let object = |fields: &std::collections::BTreeMap<String, crate::protocol::connect::Field>| {
        let props: Map<String, Value> = fields
            .iter()
            .map(|(k, f)| {
                let mut s = json!({ "type": "string" });
                if let Some(e) = &f.example {
                    s = json!({ "default": e });
                }
                (k.clone(), s)
            })
            .collect();
        let required: Vec<&String> = fields
            .iter()
            .filter(|(_, f)| f.required)
            .map(|(k, _)| k)
            .collect();
        let mut o = json!({ "type": "object", "properties": props });
        if !required.is_empty() {
            o["required"] = json!(required);
        }
        o
    };
    let mut ws = Map::new();
    if !c.query.is_empty() {
        ws.insert("query".into(), object(&c.query));
    }
    if !c.headers.is_empty() {
        ws.insert("headers".into(), object(&c.headers));
    }
    if !ws.is_empty() {
        ws.insert("bindingVersion".into(), "0.1.0".into());
        channel["bindings"] = json!({ "ws": ws });
    }
}

fn servers(profile: &Profile) -> Option<Value> {
    let c = profile.connect.as_ref()?;
    let mut out = Map::new();
    for (i, url) in c.servers.iter().enumerate() {
        let Some((protocol, rest)) = url.split_once("://") else {
            continue;
        };
        let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        let mut s = json!({ "host": host, "protocol": protocol });
        if !path.is_empty() {
            s["pathname"] = json!(format!("/{path}"));
        }
        out.insert(format!("server{}", i + 1), s);
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Writes the document as JSON (a YAML reader reads it too) to `path`.
pub fn write(doc: &Value, path: &Path) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    std::fs::write(path, text)
}
