//! Telling messages apart: the discriminator is a payload property every message fixes to
//! its own value (`const`, or an `enum` of one), found through `$ref`, `allOf` and the
//! branches of `oneOf`/`anyOf` (a message whose branches fix different values has several
//! kinds). The importer finds it, or the user names it (`--discriminator /event`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::doc::{At, Docs};
use super::model::Api;
use crate::protocol::Direction;

/// Deeper nesting than this is not followed (and counts as no value).
const MAX_DEPTH: usize = 24;

/// Each message's kinds, by its index in `Api::messages`.
pub(crate) type Kinds = BTreeMap<usize, BTreeSet<String>>;

/// Kinds by direction: (direction, kind) → the messages that have it.
pub(crate) type KindMap = BTreeMap<(Direction, String), Vec<usize>>;

/// Property names preferred, in order, when several tell the messages apart equally well.
const PREFERRED: &[&str] = &["type", "event", "action", "op", "kind", "method", "channel"];

/// The values a schema fixes at `pointer` (segments of a JSON pointer into the instance);
/// `None` when some branch leaves it open.
pub(crate) fn values_at(docs: &mut Docs, at: &At, pointer: &[String]) -> Option<BTreeSet<String>> {
    values(docs, at, pointer, 0)
}

fn values(docs: &mut Docs, at: &At, ptr: &[String], depth: usize) -> Option<BTreeSet<String>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (at, v) = docs.deref(at).ok()?;
    let own = match ptr.split_first() {
        None => fixed(&v),
        Some((seg, rest)) => v
            .get("properties")
            .and_then(|p| p.get(seg))
            .and_then(|_| values(docs, &at.join("properties").join(seg), rest, depth + 1)),
    };
    if own.is_some() {
        return own;
    }
    if let Some(Value::Array(all)) = v.get("allOf") {
        for i in 0..all.len() {
            let found = values(docs, &at.join("allOf").join(&i.to_string()), ptr, depth + 1);
            if found.is_some() {
                return found;
            }
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = v.get(key) {
            let mut union = BTreeSet::new();
            for i in 0..branches.len() {
                union.extend(values(
                    docs,
                    &at.join(key).join(&i.to_string()),
                    ptr,
                    depth + 1,
                )?);
            }
            if !union.is_empty() {
                return Some(union);
            }
        }
    }
    None
}

fn fixed(v: &Value) -> Option<BTreeSet<String>> {
    let one = match (v.get("const"), v.get("enum")) {
        (Some(Value::String(s)), _) => s.clone(),
        (_, Some(Value::Array(e))) if e.len() == 1 => e[0].as_str()?.to_string(),
        _ => return None,
    };
    Some([one].into())
}

/// The top-level property names a payload schema mentions (through `$ref`, `allOf`,
/// `oneOf`, `anyOf`).
fn property_names(docs: &mut Docs, at: &At, depth: usize, out: &mut BTreeSet<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok((at, v)) = docs.deref(at) else { return };
    if let Some(Value::Object(p)) = v.get("properties") {
        out.extend(p.keys().cloned());
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(list)) = v.get(key) {
            for i in 0..list.len() {
                property_names(docs, &at.join(key).join(&i.to_string()), depth + 1, out);
            }
        }
    }
}

/// The discriminator found, with each message's kinds (by index into `api.messages`).
pub(crate) struct Found {
    pub pointer: String,
    pub kinds: Kinds,
    /// Why this pointer (for the README).
    pub why: String,
}

/// The kinds of every message with a payload under `pointer` (`None`: the messages it
/// leaves open).
pub(crate) fn kinds_at(docs: &mut Docs, api: &Api, pointer: &str) -> (Kinds, Vec<usize>) {
    let segs: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut kinds = BTreeMap::new();
    let mut open = Vec::new();
    for (i, m) in api.messages.iter().enumerate() {
        let Some(p) = &m.payload else { continue };
        if m.dirs.is_empty() {
            continue;
        }
        match values_at(docs, p, &segs) {
            Some(v) => {
                kinds.insert(i, v);
            }
            None => open.push(i),
        }
    }
    (kinds, open)
}

/// Finds the top-level property that tells the most messages apart: every message fixes
/// it, with the fewest values shared by two messages going the same way.
pub(crate) fn detect(docs: &mut Docs, api: &Api) -> Option<Found> {
    let mut names = BTreeSet::new();
    for m in api.messages.iter().filter(|m| !m.dirs.is_empty()) {
        if let Some(p) = &m.payload {
            property_names(docs, p, 0, &mut names);
        }
    }
    let mut best: Option<(usize, usize, String, Kinds)> = None;
    for name in names {
        let pointer = format!("/{}", name.replace('~', "~0").replace('/', "~1"));
        let (kinds, open) = kinds_at(docs, api, &pointer);
        if !open.is_empty() || kinds.is_empty() {
            continue;
        }
        let shared = shared_kinds(api, &kinds).len();
        let rank = PREFERRED
            .iter()
            .position(|p| *p == name)
            .unwrap_or(PREFERRED.len());
        let better = best
            .as_ref()
            .is_none_or(|(s, r, _, _)| (shared, rank) < (*s, *r));
        if better {
            best = Some((shared, rank, pointer, kinds));
        }
    }
    best.map(|(shared, _, pointer, kinds)| Found {
        why: format!(
            "every message fixes {pointer} to its own value (const or a one-value enum){}",
            if shared == 0 {
                String::new()
            } else {
                format!("; {shared} value(s) are shared by messages going the same way")
            }
        ),
        pointer,
        kinds,
    })
}

/// Every (direction, kind) with the messages that have it.
pub(crate) fn by_direction(api: &Api, kinds: &Kinds) -> KindMap {
    let mut by = KindMap::new();
    for (&i, ks) in kinds {
        for &d in &api.messages[i].dirs {
            for k in ks {
                by.entry((d, k.clone())).or_default().push(i);
            }
        }
    }
    by
}

/// Kinds two or more messages going the same way share.
fn shared_kinds(api: &Api, kinds: &Kinds) -> KindMap {
    let mut by = by_direction(api, kinds);
    by.retain(|_, v| v.len() > 1);
    by
}
