//! What squall needs of an AsyncAPI 2.6 or 3.x document, read into one neutral shape: the
//! messages with the direction they travel *from squall's side*, request → reply pairs,
//! servers, and the channel's address with its `ws` binding.
//!
//! The document describes the server (the application). AsyncAPI 3: `action: receive` is a
//! message the server receives, so squall sends it (outbound); `send` is one squall receives.
//! AsyncAPI 2: `publish` is what clients publish to the server (outbound), `subscribe` what
//! they receive (inbound).

use std::collections::BTreeSet;

use serde_json::Value;

use super::doc::{At, Docs};
use super::ImportError;
use crate::protocol::Direction;

/// One message of the document.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// Its key in the channel (or components), as the document names it.
    pub name: String,
    /// The message object (after `$ref`s).
    pub at: At,
    /// Which ways it travels, from squall's side.
    pub dirs: BTreeSet<Direction>,
    /// The payload schema's place, if it has one.
    pub payload: Option<At>,
    /// `correlationId.location` as a JSON pointer into the payload, with its place.
    pub correlation: Option<(String, At)>,
    /// `examples[].payload`: name, payload, place.
    pub examples: Vec<(String, Value, At)>,
    /// `x-squall-kind`: the kind a squall export gave it.
    pub squall_kind: Option<String>,
}

/// An operation with a reply (AsyncAPI 3): its messages are answered by the reply's.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub requests: Vec<usize>,
    pub replies: Vec<usize>,
    pub at: At,
}

/// A field of the connection request (query parameter or header).
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: String,
    pub required: bool,
    /// A value to start from: the schema's `default`, first `enum` or `examples`.
    pub example: Option<Value>,
}

/// The channel the messages travel on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Channel {
    pub address: Option<String>,
    pub at: Option<At>,
    /// Address parameters: name and a value to start from.
    pub parameters: Vec<(String, Option<Value>)>,
    pub query: Vec<Field>,
    pub headers: Vec<Field>,
}

/// The document, read.
#[derive(Debug, Default)]
pub(crate) struct Api {
    pub version: String,
    pub title: String,
    pub messages: Vec<Message>,
    pub replies: Vec<Reply>,
    /// WebSocket servers as URLs (`wss://host/path`), with their places.
    pub servers: Vec<(String, At)>,
    pub channel: Channel,
    /// What was left out or assumed, with where.
    pub notes: Vec<(String, Option<At>)>,
    /// `x-squall`: the profile sections a squall export kept, and its place.
    pub squall: Option<(Value, At)>,
}

/// Reads the document's messages, operations, servers and channel.
pub(crate) fn read(docs: &mut Docs) -> Result<Api, ImportError> {
    let top = docs.top();
    let version = docs
        .get(&top.join("asyncapi"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            docs.error(
                &top,
                "not an AsyncAPI document: no `asyncapi:` version".into(),
            )
        })?;
    let mut api = Api {
        title: docs
            .get(&top.join("info").join("title"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        version: version.clone(),
        ..Api::default()
    };
    if version.starts_with("3.") {
        read_v3(docs, &mut api)?;
    } else if version.starts_with("2.") {
        read_v2(docs, &mut api)?;
    } else {
        return Err(docs.error(
            &top.join("asyncapi"),
            format!("AsyncAPI {version} is not read: squall reads 2.6 and 3.x"),
        ));
    }
    read_servers(docs, &mut api)?;
    let kept = top.join("x-squall");
    api.squall = docs.get(&kept).cloned().map(|v| (v, kept));
    Ok(api)
}

fn keys(docs: &Docs, at: &At) -> Vec<String> {
    match docs.get(at) {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn read_v3(docs: &mut Docs, api: &mut Api) -> Result<(), ImportError> {
    let channels = v3_channels(docs, api)?;
    let used = v3_operations(docs, api, &channels)?;
    for (i, m) in api.messages.iter().enumerate() {
        if !used.contains(&i) {
            api.notes.push((
                format!(
                    "message {}: no operation sends or receives it, so its direction is unknown: left out",
                    m.name
                ),
                Some(m.at.clone()),
            ));
        }
    }
    Ok(())
}

/// A 3.x document's channels: their messages read, the first one's address kept; each
/// channel's messages by the channel's place.
fn v3_channels(docs: &mut Docs, api: &mut Api) -> Result<Vec<(At, Vec<usize>)>, ImportError> {
    let top = docs.top();
    let mut channels: Vec<(At, Vec<usize>)> = Vec::new();
    for cname in keys(docs, &top.join("channels")) {
        let (cat, ch) = docs.deref(&top.join("channels").join(&cname))?;
        let mut mine = Vec::new();
        for mname in keys(docs, &cat.join("messages")) {
            let idx = message(docs, api, &cat.join("messages").join(&mname), &mname)?;
            mine.push(idx);
        }
        if api.channel.at.is_none() {
            read_channel(docs, &mut api.channel, &cat, &ch, true)?;
        } else if !mine.is_empty() {
            api.notes.push((
                format!(
                    "channel {cname}: a second channel; the target uses the first one's address"
                ),
                Some(cat.clone()),
            ));
        }
        channels.push((cat, mine));
    }
    Ok(channels)
}

/// A 3.x document's operations: each message's directions (and its replies'); the
/// messages some operation uses.
fn v3_operations(
    docs: &mut Docs,
    api: &mut Api,
    channels: &[(At, Vec<usize>)],
) -> Result<BTreeSet<usize>, ImportError> {
    let top = docs.top();
    let mut used = BTreeSet::new();
    for oname in keys(docs, &top.join("operations")) {
        let (oat, op) = docs.deref(&top.join("operations").join(&oname))?;
        let dir = match op.get("action").and_then(Value::as_str) {
            Some("receive") => Direction::Out,
            Some("send") => Direction::In,
            other => {
                return Err(docs.error(
                    &oat.join("action"),
                    format!("operation {oname}: action {other:?}: expected send or receive"),
                ))
            }
        };
        let requests = operation_messages(docs, api, channels, &oat)?;
        for &m in &requests {
            api.messages[m].dirs.insert(dir);
            used.insert(m);
        }
        if op.get("reply").is_some() {
            let (rat, _) = docs.deref(&oat.join("reply"))?;
            let replies = operation_messages(docs, api, channels, &rat)?;
            let back = match dir {
                Direction::In => Direction::Out,
                Direction::Out => Direction::In,
            };
            for &m in &replies {
                api.messages[m].dirs.insert(back);
                used.insert(m);
            }
            api.replies.push(Reply {
                requests,
                replies,
                at: rat,
            });
        }
    }
    Ok(used)
}

/// The messages an operation (or reply) lists; none listed: all of its channel's.
fn operation_messages(
    docs: &mut Docs,
    api: &mut Api,
    channels: &[(At, Vec<usize>)],
    at: &At,
) -> Result<Vec<usize>, ImportError> {
    let listed = match docs.get(&at.join("messages")) {
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    };
    if listed > 0 {
        return (0..listed)
            .map(|i| {
                let item = at.join("messages").join(&i.to_string());
                let name = docs
                    .get(&item.join("$ref"))
                    .and_then(Value::as_str)
                    .and_then(|r| r.rsplit('/').next())
                    .unwrap_or("message")
                    .to_string();
                message(docs, api, &item, &name)
            })
            .collect();
    }
    let Some(r) = docs
        .get(&at.join("channel").join("$ref"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(Vec::new());
    };
    let (cat, _) = {
        let target = docs.reference(&at.join("channel"), &r)?;
        docs.deref(&target)?
    };
    Ok(channels
        .iter()
        .find(|(c, _)| *c == cat)
        .map(|(_, m)| m.clone())
        .unwrap_or_default())
}

fn read_v2(docs: &mut Docs, api: &mut Api) -> Result<(), ImportError> {
    let top = docs.top();
    for path in keys(docs, &top.join("channels")) {
        let (cat, ch) = docs.deref(&top.join("channels").join(&path))?;
        if api.channel.at.is_none() {
            api.channel.address = Some(path.clone());
            read_channel(docs, &mut api.channel, &cat, &ch, false)?;
        } else {
            api.notes.push((
                format!("channel {path}: a second channel; the target uses the first one"),
                Some(cat.clone()),
            ));
        }
        for (verb, dir) in [("publish", Direction::Out), ("subscribe", Direction::In)] {
            if ch.get(verb).is_none() {
                continue;
            }
            let (oat, _) = docs.deref(&cat.join(verb))?;
            let (mat, m) = docs.deref(&oat.join("message"))?;
            let items: Vec<At> = match m.get("oneOf") {
                Some(Value::Array(list)) => (0..list.len())
                    .map(|i| mat.join("oneOf").join(&i.to_string()))
                    .collect(),
                _ => vec![oat.join("message")],
            };
            for item in items {
                let name = v2_name(docs, &item);
                let idx = message(docs, api, &item, &name)?;
                api.messages[idx].dirs.insert(dir);
            }
        }
    }
    if !api.messages.is_empty() {
        api.notes.push((
            "AsyncAPI 2 has no replies: no `replies:` rules are written".into(),
            None,
        ));
    }
    Ok(())
}

/// A 2.x message's name: its key under components, else its `name` or `messageId`.
fn v2_name(docs: &mut Docs, item: &At) -> String {
    let by_ref = docs
        .get(&item.join("$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_string);
    by_ref
        .or_else(|| {
            let v = docs.deref(item).ok()?.1;
            v.get("name")
                .or_else(|| v.get("messageId"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("message{}", item.pointer.replace('/', "_")))
}

/// The message at `at` (following `$ref`s), read once: its index in `api.messages`.
fn message(docs: &mut Docs, api: &mut Api, at: &At, name: &str) -> Result<usize, ImportError> {
    let (mat, m) = docs.deref(at)?;
    if let Some(i) = api.messages.iter().position(|x| x.at == mat) {
        return Ok(i);
    }
    let payload = match m.get("payload") {
        None => None,
        Some(p) => Some(payload_place(docs, &m, p, &mat, name)?),
    };
    let correlation = match m.get("correlationId") {
        None => None,
        Some(_) => {
            let (cat, c) = docs.deref(&mat.join("correlationId"))?;
            let loc = c.get("location").and_then(Value::as_str).unwrap_or("");
            match loc.strip_prefix("$message.payload#") {
                Some(p) => Some((p.to_string(), cat.join("location"))),
                None => {
                    api.notes.push((
                        format!(
                            "message {name}: correlationId {loc} is not in the payload \
                             (a WebSocket message has no headers): not used"
                        ),
                        Some(cat),
                    ));
                    None
                }
            }
        }
    };
    let mut examples = Vec::new();
    if let Some(Value::Array(list)) = m.get("examples") {
        for (i, ex) in list.iter().enumerate() {
            let Some(p) = ex.get("payload") else { continue };
            let label = ex
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| (i + 1).to_string());
            examples.push((label, p.clone(), mat.join("examples").join(&i.to_string())));
        }
    }
    let squall_kind = m
        .get("x-squall-kind")
        .and_then(Value::as_str)
        .map(str::to_string);
    api.messages.push(Message {
        squall_kind,
        name: name.to_string(),
        at: mat,
        dirs: BTreeSet::new(),
        payload,
        correlation,
        examples,
    });
    Ok(api.messages.len() - 1)
}

/// Where a message's JSON Schema is; a schema in another format is refused.
fn payload_place(
    docs: &Docs,
    m: &Value,
    payload: &Value,
    mat: &At,
    name: &str,
) -> Result<At, ImportError> {
    // 3.x: a Multi Format Schema Object; 2.x: the message's own schemaFormat.
    let (format, place, schema_at) = match (payload.get("schemaFormat"), payload.get("schema")) {
        (Some(f), Some(_)) => (
            f.as_str(),
            mat.join("payload").join("schemaFormat"),
            mat.join("payload").join("schema"),
        ),
        _ => (
            m.get("schemaFormat").and_then(Value::as_str),
            mat.join("schemaFormat"),
            mat.join("payload"),
        ),
    };
    match format {
        None => Ok(schema_at),
        Some(f) if is_json_schema(f) => Ok(schema_at),
        Some(f) => Err(docs.error(
            &place,
            format!(
                "message {name}: schemaFormat {f} is not JSON Schema; squall checks frames \
                 with JSON Schema only (convert the payload schema, or leave the message out)"
            ),
        )),
    }
}

fn is_json_schema(format: &str) -> bool {
    let f = format.to_ascii_lowercase();
    f.starts_with("application/vnd.aai.asyncapi")
        || f.starts_with("application/schema+json")
        || f.starts_with("application/schema+yaml")
}

fn read_channel(
    docs: &mut Docs,
    out: &mut Channel,
    cat: &At,
    ch: &Value,
    v3: bool,
) -> Result<(), ImportError> {
    out.at = Some(cat.clone());
    if v3 {
        out.address = ch
            .get("address")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    for p in keys(docs, &cat.join("parameters")) {
        let (_, v) = docs.deref(&cat.join("parameters").join(&p))?;
        // 3.x parameters carry enum/default/examples themselves; 2.x inside `schema`.
        let s = v.get("schema").unwrap_or(&v);
        out.parameters.push((p, start_value(s)));
    }
    let ws = cat.join("bindings").join("ws");
    if docs.get(&ws).is_some() {
        let (wat, _) = docs.deref(&ws)?;
        out.query = fields(docs, &wat.join("query"))?;
        out.headers = fields(docs, &wat.join("headers"))?;
    }
    Ok(())
}

/// The properties of an object schema (query or headers of a `ws` binding).
fn fields(docs: &mut Docs, at: &At) -> Result<Vec<Field>, ImportError> {
    if docs.get(at).is_none() {
        return Ok(Vec::new());
    }
    let (sat, s) = docs.deref(at)?;
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for name in keys(docs, &sat.join("properties")) {
        let (_, p) = docs.deref(&sat.join("properties").join(&name))?;
        out.push(Field {
            required: required.contains(&name.as_str()),
            example: start_value(&p),
            name,
        });
    }
    Ok(out)
}

fn start_value(s: &Value) -> Option<Value> {
    s.get("default")
        .or_else(|| s.get("enum").and_then(|e| e.get(0)))
        .or_else(|| s.get("examples").and_then(|e| e.get(0)))
        .or_else(|| s.get("const"))
        .cloned()
}

fn read_servers(docs: &mut Docs, api: &mut Api) -> Result<(), ImportError> {
    let top = docs.top();
    for name in keys(docs, &top.join("servers")) {
        let (sat, s) = docs.deref(&top.join("servers").join(&name))?;
        let protocol = s.get("protocol").and_then(Value::as_str).unwrap_or("");
        let url = match (s.get("host"), s.get("url")) {
            (Some(Value::String(h)), _) => format!(
                "{protocol}://{h}{}",
                s.get("pathname").and_then(Value::as_str).unwrap_or("")
            ),
            (_, Some(Value::String(u))) if u.contains("://") => u.clone(),
            (_, Some(Value::String(u))) => format!("{protocol}://{u}"),
            _ => continue,
        };
        if matches!(protocol, "ws" | "wss") {
            api.servers.push((url, sat));
        } else {
            api.notes.push((
                format!(
                    "server {name}: protocol {protocol} ({url}) is not WebSocket: not a target"
                ),
                Some(sat.join("protocol")),
            ));
        }
    }
    Ok(())
}
