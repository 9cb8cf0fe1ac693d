//! The text files of an imported profile: `protocol.yaml` and the README of its choices.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{file_name, folder, names, Builder, Rule};
use crate::asyncapi::kinds::KindMap;
use crate::asyncapi::model::Api;
use crate::protocol::Direction;

/// `v` as one line of JSON (which YAML reads too).
pub(super) fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `protocol.yaml`: the kinds, their schema files, the replies, the connection.
pub(super) fn protocol_yaml(
    b: &Builder,
    name: &str,
    pointers: &[String],
    corr: Option<&str>,
    by: &KindMap,
    rules: &[Rule],
) -> String {
    let api = b.api;
    let mut y = String::new();
    let doc = b.docs.root.display().to_string();
    let _ = writeln!(
        y,
        "# Imported from {doc} (AsyncAPI {}, \"{}\") by `squall schemas import asyncapi`.\n\
         # README.md says every choice the import made and where in the document it came from.",
        api.version, api.title
    );
    let _ = writeln!(y, "name: {}", json(&name));
    let _ = writeln!(y, "document: {}", json(&doc));
    if let Some(a) = &api.channel.address {
        let _ = writeln!(y, "endpoints: [{}]", json(a));
    }
    let _ = writeln!(y, "discriminator: {}", json(&pointers));
    if let Some(c) = corr {
        let _ = writeln!(y, "correlation: {}", json(&c));
    }
    for dir in [Direction::In, Direction::Out] {
        kinds_yaml(&mut y, api, by, dir);
    }
    let kept = api.squall.as_ref().map(|(v, _)| v);
    replies_yaml(&mut y, kept, rules);
    for key in ["limits", "clock", "subscriptions", "decisions", "query"] {
        if let Some(v) = kept.and_then(|k| k.get(key)).filter(|v| !v.is_null()) {
            let _ = writeln!(y, "{key}: {}", json(v));
        }
    }
    connect_yaml(&mut y, api);
    y
}

fn connect_yaml(y: &mut String, api: &Api) {
    let ch = &api.channel;
    if api.servers.is_empty()
        && ch.address.is_none()
        && ch.query.is_empty()
        && ch.headers.is_empty()
    {
        return;
    }
    y.push_str("# How to reach the API: servers, the channel address, the ws binding.\nconnect:\n");
    let servers: Vec<&String> = api.servers.iter().map(|(u, _)| u).collect();
    let _ = writeln!(y, "  servers: {}", json(&servers));
    if let Some(a) = &ch.address {
        let _ = writeln!(y, "  address: {}", json(a));
    }
    if !ch.parameters.is_empty() {
        let map: BTreeMap<&String, &Option<Value>> =
            ch.parameters.iter().map(|(k, v)| (k, v)).collect();
        let _ = writeln!(y, "  parameters: {}", json(&map));
    }
    for (key, fields) in [("query", &ch.query), ("headers", &ch.headers)] {
        if fields.is_empty() {
            continue;
        }
        let _ = writeln!(y, "  {key}:");
        for f in fields {
            let example = f
                .example
                .as_ref()
                .map(|e| format!(", example: {}", json(e)))
                .unwrap_or_default();
            let _ = writeln!(
                y,
                "    {}: {{ required: {}{example} }}",
                json(&f.name),
                f.required
            );
        }
    }
}

/// `README.md`: every choice the import made, with the place it came from.
pub(super) fn readme(b: &Builder, name: &str) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# {name}: imported from AsyncAPI\n\n\
         Imported from `{}` (AsyncAPI {}, \"{}\") by `squall schemas import asyncapi`.\n\
         Every choice the import made, with the place in the document it came from:\n",
        b.docs.root.display(),
        b.api.version,
        b.api.title
    );
    for c in &b.choices {
        match &c.at {
            Some(at) => {
                let _ = writeln!(r, "- {} — `{}` ({})", c.text, b.path(at), b.docs.pos(at));
            }
            None => {
                let _ = writeln!(r, "- {}", c.text);
            }
        }
    }
    r.push_str(
        "\nViewpoint: the document describes the server. AsyncAPI 3 `action: receive` (2.x \
         `publish`) is what squall sends (`outbound`); `send` (2.x `subscribe`) is what \
         squall receives (`inbound`).\n",
    );
    r
}
/// The kinds in `dir`, each with its schema file and the messages it stands for.
fn kinds_yaml(y: &mut String, api: &Api, by: &KindMap, dir: Direction) {
    let _ = writeln!(y, "{}:", folder(dir));
    let mut any = false;
    for ((d, kind), msgs) in by.iter().filter(|((d, _), _)| *d == dir) {
        any = true;
        let _ = writeln!(
            y,
            "  {}: {}/{}.json   # {}",
            json(kind),
            folder(*d),
            file_name(kind),
            names(api, msgs)
        );
    }
    if !any {
        y.truncate(y.len() - 1);
        y.push_str(" {}\n");
    }
}

/// `replies:`: as a squall export wrote them (`kept`), else the rules found.
fn replies_yaml(y: &mut String, kept: Option<&Value>, rules: &[Rule]) {
    if let Some(list) = kept
        .and_then(|k| k.get("replies"))
        .and_then(Value::as_array)
    {
        y.push_str("# As the squall export wrote them (x-squall).\nreplies:\n");
        for r in list {
            let _ = writeln!(y, "  - {}", json(r));
        }
    } else if !rules.is_empty() {
        y.push_str("# A reply must answer a request sent on the same connection (the operations' `reply`).\n");
        y.push_str("replies:\n");
        for (q, p, m, optional) in rules {
            let fields = m
                .as_ref()
                .map(|c| format!("{{ {}: {} }}", json(c), json(c)))
                .unwrap_or_else(|| "{}".into());
            let _ = writeln!(
                y,
                "  - {{ request: {}, reply: {}, match: {fields}{} }}",
                json(q),
                json(p),
                if *optional { ", optional: true" } else { "" }
            );
        }
    }
}
