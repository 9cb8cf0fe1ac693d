//! The profile an AsyncAPI document becomes: `protocol.yaml`, a schema per kind and
//! direction, `defs.json`, the document's examples as fixtures, and a README saying every
//! choice made, each with the place in the document it came from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::bundle::{explain, Bundle};
use super::doc::{At, Docs};
use super::kinds::{self, KindMap, Kinds};
use super::model::Api;
use super::ImportError;
use crate::protocol::{Direction, Profile, Source};

mod files;

use files::{json, protocol_yaml, readme};

/// A profile imported from an AsyncAPI document: its files, and what was found.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The profile's name.
    pub name: String,
    /// Each file's path inside the profile folder, and its text.
    pub files: BTreeMap<String, String>,
    /// The discriminator's pointer.
    pub discriminator: String,
    /// The correlation pointer, if the messages have one.
    pub correlation: Option<String>,
    /// Request kind → reply kind rules.
    pub replies: Vec<(String, String)>,
    /// What the user should know: messages that cannot be told apart, examples that fail
    /// their own schema, parts left out.
    pub warnings: Vec<String>,
}

impl Imported {
    /// The files in memory, under `dir` (an absolute path naming no real folder).
    pub fn source(&self, dir: &Path) -> Source {
        Source::memory(dir, self.files.iter().map(|(k, v)| (k.as_str(), v.clone())))
    }

    /// Writes the profile into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        for (rel, text) in &self.files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, text)?;
        }
        Ok(())
    }
}

/// One choice, and the place it came from.
struct Choice {
    text: String,
    at: Option<At>,
}

struct Builder<'a> {
    docs: &'a mut Docs,
    api: &'a Api,
    choices: Vec<Choice>,
    warnings: Vec<String>,
    files: BTreeMap<String, String>,
}

impl Builder<'_> {
    fn choose(&mut self, text: String, at: Option<&At>) {
        self.choices.push(Choice {
            text,
            at: at.cloned(),
        });
    }

    fn warn(&mut self, text: String, at: Option<&At>) {
        let place = at
            .map(|a| format!("{}: ", self.docs.pos(a)))
            .unwrap_or_default();
        self.warnings.push(format!("{place}{text}"));
        self.choose(text, at);
    }

    fn path(&self, at: &At) -> String {
        at.path(&self.docs.root)
    }
}

pub(crate) fn build(
    docs: &mut Docs,
    api: &Api,
    name: &str,
    discriminator: Option<&str>,
) -> Result<Imported, ImportError> {
    let mut b = Builder {
        docs,
        api,
        choices: Vec::new(),
        warnings: Vec::new(),
        files: BTreeMap::new(),
    };
    for (text, at) in &api.notes {
        b.choose(text.clone(), at.as_ref());
    }
    let (pointer, kinds) = discriminate(&mut b, discriminator)?;
    let by = kinds::by_direction(api, &kinds);
    if by.is_empty() {
        let top = b.docs.top();
        return Err(b.docs.error(
            &top,
            "no message with a payload travels over a channel: nothing to check".into(),
        ));
    }
    schemas(&mut b, &by)?;
    let (correlation, replies) = pairing(&mut b, &kinds);
    let text = protocol_yaml(&b, name, &pointer, correlation.as_deref(), &by, &replies);
    b.files.insert("protocol.yaml".into(), text);
    examples(&mut b, name)?;
    let readme = readme(&b, name);
    b.files.insert("README.md".into(), readme);
    Ok(Imported {
        name: name.to_string(),
        files: b.files,
        discriminator: pointer.join(", "),
        correlation,
        replies: replies.iter().map(|r| (r.0.clone(), r.1.clone())).collect(),
        warnings: b.warnings,
    })
}

/// The correlation pointer and reply rules: as a squall export wrote them (AsyncAPI cannot
/// say them all), else found in the document.
fn pairing(b: &mut Builder, kinds: &Kinds) -> (Option<String>, Vec<Rule>) {
    let api = b.api;
    let kept = api.squall.as_ref().map(|(v, _)| v);
    if let Some((v, at)) = &api.squall {
        let keys: Vec<&String> = v
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        let text = format!("taken as the squall export wrote them (x-squall): {keys:?}");
        b.choose(text, Some(at));
    }
    let correlation = match kept.and_then(|k| k.get("correlation")) {
        Some(v) => v.as_str().map(str::to_string),
        None => correlation(b, kinds),
    };
    let kept_replies = kept
        .and_then(|k| k.get("replies"))
        .and_then(Value::as_array);
    let replies = match kept_replies {
        Some(list) => list
            .iter()
            .map(|r| {
                let field = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                (field("request"), field("reply"), None, false)
            })
            .collect(),
        None => replies(b, kinds, correlation.as_deref()),
    };
    (correlation, replies)
}

/// The discriminator and kinds a squall export wrote (`x-squall`, `x-squall-kind`), when
/// every message carries its kind.
fn exported(b: &mut Builder) -> Option<(Vec<String>, Kinds)> {
    let (kept, at) = b.api.squall.clone()?;
    let pointers: Vec<String> = kept
        .get("discriminator")?
        .as_array()?
        .iter()
        .filter_map(|p| Some(p.as_str()?.to_string()))
        .collect();
    let used = b
        .api
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.dirs.is_empty());
    let kinds: Kinds = used
        .map(|(i, m)| Some((i, [m.squall_kind.clone()?].into())))
        .collect::<Option<_>>()?;
    b.choose(
        format!(
            "discriminator {}: as the squall export wrote it (x-squall), each message's kind its x-squall-kind",
            pointers.join(", ")
        ),
        Some(&at),
    );
    Some((pointers, kinds))
}

fn discriminate(b: &mut Builder, given: Option<&str>) -> Result<(Vec<String>, Kinds), ImportError> {
    let top = b.docs.top();
    if let Some(found) = exported(b) {
        return Ok(found);
    }
    let (pointer, kinds, open) = match given {
        Some(p) if !p.starts_with('/') => {
            return Err(b.docs.error(
                &top,
                format!("--discriminator {p}: not a JSON pointer (start it with /)"),
            ))
        }
        Some(p) => {
            let (k, open) = kinds::kinds_at(b.docs, b.api, p);
            b.choose(
                format!("discriminator {p}: named with --discriminator"),
                None,
            );
            (p.to_string(), k, open)
        }
        None => match kinds::detect(b.docs, b.api) {
            Some(f) => {
                let first = f.kinds.keys().next().map(|&i| b.api.messages[i].at.clone());
                b.choose(
                    format!("discriminator {}: {}", f.pointer, f.why),
                    first.as_ref(),
                );
                (f.pointer, f.kinds, Vec::new())
            }
            None => {
                return Err(b.docs.error(
                    &top,
                    "no payload property tells the messages apart (one every message fixes \
                     to its own value with const or a one-value enum): name it with \
                     --discriminator /pointer"
                        .into(),
                ))
            }
        },
    };
    left_out(b, &pointer, open);
    if kinds.is_empty() {
        return Err(b.docs.error(
            &top,
            format!("no message fixes {pointer} to a value: nothing can be recognised"),
        ));
    }
    Ok((vec![pointer], kinds))
}

/// Says which messages are left out: the `open` ones (whose payload does not fix `pointer`)
/// and those without a payload schema.
fn left_out(b: &mut Builder, pointer: &str, open: Vec<usize>) {
    for i in open {
        let m = &b.api.messages[i];
        let at = m.payload.clone();
        b.warn(
            format!(
                "message {}: its payload does not fix {pointer} to a value, so its frames \
                 cannot be recognised: left out",
                m.name
            ),
            at.as_ref(),
        );
    }
    for m in b.api.messages.iter().filter(|m| m.payload.is_none()) {
        let at = m.at.clone();
        let text = format!("message {}: no payload schema: left out", m.name);
        b.choose(text, Some(&at));
    }
}

/// A file name for a kind (kinds are free text).
fn file_name(kind: &str) -> String {
    kind.chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn folder(dir: Direction) -> &'static str {
    match dir {
        Direction::In => "inbound",
        Direction::Out => "outbound",
    }
}

fn schemas(b: &mut Builder, by: &KindMap) -> Result<(), ImportError> {
    let mut bundle = Bundle::default();
    for ((dir, kind), msgs) in by {
        let mut parts = Vec::new();
        for &i in msgs {
            let at = b.api.messages[i]
                .payload
                .clone()
                .expect("kinds have payloads");
            parts.push(bundle.kind_schema(b.docs, &at)?);
        }
        let mut schema = if parts.len() == 1 {
            parts.remove(0)
        } else {
            let names: Vec<&str> = msgs
                .iter()
                .map(|&i| b.api.messages[i].name.as_str())
                .collect();
            let at = b.api.messages[msgs[0]].at.clone();
            b.warn(
                format!(
                    "messages {} ({}) share the kind {kind}: they cannot be told apart, so \
                     kind {kind} accepts any of them (anyOf)",
                    names.join(", "),
                    dir.as_str()
                ),
                Some(&at),
            );
            serde_json::json!({ "anyOf": parts })
        };
        if let Value::Object(m) = &mut schema {
            m.insert(
                "$schema".into(),
                "https://json-schema.org/draft/2020-12/schema".into(),
            );
        }
        let rel = format!("{}/{}.json", folder(*dir), file_name(kind));
        b.files.insert(rel, pretty(&schema));
    }
    let changes: Vec<(String, At)> = bundle
        .changes
        .iter()
        .map(|(k, a)| (k.clone(), a.clone()))
        .collect();
    for (keyword, at) in changes {
        b.choose(explain(&keyword).to_string(), Some(&at));
    }
    b.files
        .insert("defs.json".into(), pretty(&bundle.defs_file()));
    Ok(())
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// The correlation pointer most messages name.
fn correlation(b: &mut Builder, kinds: &Kinds) -> Option<String> {
    let mut count: BTreeMap<&str, (usize, &At)> = BTreeMap::new();
    for &i in kinds.keys() {
        if let Some((p, at)) = &b.api.messages[i].correlation {
            count.entry(p.as_str()).or_insert((0, at)).0 += 1;
        }
    }
    let (p, (n, at)) = count.iter().max_by_key(|(_, (n, _))| *n)?;
    let (p, n, at) = (p.to_string(), *n, (*at).clone());
    b.choose(
        format!(
            "correlation {p}: the correlationId location ($message.payload#{p}) of {n} message(s)"
        ),
        Some(&at),
    );
    Some(p)
}

/// `replies:` rules: (request kind, reply kind, match pointer, optional).
type Rule = (String, String, Option<String>, bool);

fn replies(b: &mut Builder, kinds: &Kinds, corr: Option<&str>) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for r in &b.api.replies {
        for &q in &r.requests {
            for &p in &r.replies {
                let (Some(qk), Some(pk)) = (kinds.get(&q), kinds.get(&p)) else {
                    continue;
                };
                let Some((echoed, optional)) = echo(b, corr, (q, p)) else {
                    continue;
                };
                for a in qk {
                    for c in pk {
                        let rule = (a.clone(), c.clone(), echoed.clone(), optional);
                        if !rules.contains(&rule) {
                            rules.push(rule);
                        }
                    }
                }
            }
        }
        let at = r.at.clone();
        let text = format!(
            "replies: {} answered by {}",
            names(b.api, &r.requests),
            names(b.api, &r.replies)
        );
        b.choose(text, Some(&at));
    }
    rules
}

/// How reply message `p` answers request message `q`: the correlation field it must echo
/// (if any) and whether echoing is optional; `None` unless `q` is sent and `p` received.
fn echo(
    b: &mut Builder,
    corr: Option<&str>,
    (q, p): (usize, usize),
) -> Option<(Option<String>, bool)> {
    let api = b.api;
    let (qm, pm) = (&api.messages[q], &api.messages[p]);
    if !qm.dirs.contains(&Direction::Out) || !pm.dirs.contains(&Direction::In) {
        return None;
    }
    let segs: Vec<String> = corr
        .map(|c| c.split('/').skip(1).map(str::to_string).collect())
        .unwrap_or_default();
    let names_it = |m: &super::model::Message| {
        m.correlation
            .as_ref()
            .is_some_and(|(x, _)| Some(x.as_str()) == corr)
    };
    // A reply without a correlationId whose payload has the request's field
    // (Kraken's subscriptionStatus and its reqid) is matched on it too.
    let echoed = corr.filter(|_| {
        names_it(qm)
            && (names_it(pm)
                || pm
                    .payload
                    .as_ref()
                    .is_some_and(|at| along(b.docs, at, &segs, false, 0)))
    });
    if echoed.is_some() && !names_it(pm) {
        let at = pm.payload.clone();
        let text = format!(
            "replies: {} has no correlationId, but its payload has {}: a {} must echo the {}'s",
            pm.name,
            corr.unwrap_or_default(),
            pm.name,
            qm.name
        );
        b.choose(text, at.as_ref());
    }
    let optional = echoed.is_some()
        && ![qm, pm].iter().all(|m| {
            m.payload
                .as_ref()
                .is_some_and(|at| along(b.docs, at, &segs, true, 0))
        });
    Some((echoed.map(str::to_string), optional))
}

fn names(api: &Api, msgs: &[usize]) -> String {
    msgs.iter()
        .map(|&i| api.messages[i].name.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Whether the schema at `at` names (with `required`: requires) every member along `segs`,
/// itself or through a branch (`allOf`; for naming, `oneOf` and `anyOf` too).
fn along(docs: &mut Docs, at: &At, segs: &[String], required: bool, depth: usize) -> bool {
    let Some((seg, rest)) = segs.split_first() else {
        return true;
    };
    let Ok((at, v)) = docs.deref(at) else {
        return false;
    };
    if depth > 16 {
        return false;
    }
    let here = if required {
        v.get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|x| x == seg.as_str()))
    } else {
        v.get("properties").and_then(|p| p.get(seg)).is_some()
    };
    let inner = at.join("properties").join(seg);
    if here && along(docs, &inner, rest, required, depth + 1) {
        return true;
    }
    let branches: &[&str] = if required {
        &["allOf"]
    } else {
        &["allOf", "oneOf", "anyOf"]
    };
    branches.iter().any(|k| match v.get(*k) {
        Some(Value::Array(list)) => (0..list.len()).any(|i| {
            let branch = at.join(k).join(&i.to_string());
            along(docs, &branch, segs, required, depth + 1)
        }),
        _ => false,
    })
}

/// The document's examples, checked against the profile just built: those that pass become
/// `examples/valid/`, those that fail their own schema `examples/invalid/` with the
/// violation they show (lint then proves the profile judges them as the schema says).
fn examples(b: &mut Builder, name: &str) -> Result<(), ImportError> {
    let dir = Path::new(super::IMPORTED_ROOT).join(name);
    let source = Source::memory(&dir, b.files.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let profile = Profile::load_in(&source, &dir).map_err(|e| {
        let top = b.docs.top();
        b.docs.error(
            &top,
            format!("the imported schemas do not compile (fix the document or import with --discriminator): {e}"),
        )
    })?;
    let mut rows = String::new();
    let mut taken = BTreeSet::new();
    for m in &b.api.messages {
        for (label, payload, at) in &m.examples {
            for &d in &m.dirs {
                let kind = profile.kind_of(payload);
                let file = unique(
                    &mut taken,
                    format!("{}-{}-{}", d.as_str(), file_name(&m.name), file_name(label)),
                );
                match profile.check_kind(d, kind.as_deref(), payload) {
                    Ok(()) => {
                        b.files
                            .insert(format!("examples/valid/{file}.json"), pretty(payload));
                    }
                    Err(vs) => {
                        let v = &vs[0];
                        let _ = writeln!(
                            rows,
                            "- {{ file: {file}.json, dir: {}, kind: {}, keyword: {}, pointer: {} }}",
                            d.as_str(),
                            json(&v.kind),
                            json(&v.keyword.split('+').next().unwrap_or_default()),
                            json(&v.pointer)
                        );
                        b.files
                            .insert(format!("examples/invalid/{file}.json"), pretty(payload));
                        let text = format!(
                            "message {} example {label} fails its own payload schema ({v}): \
                             kept as an invalid example",
                            m.name
                        );
                        b.warn(text, Some(at));
                    }
                }
            }
        }
    }
    example_indexes(b, rows);
    Ok(())
}

/// The examples folders' own files: a README for the valid ones, and `expected.yaml`
/// listing what each invalid one breaks (`rows`).
fn example_indexes(b: &mut Builder, rows: String) {
    b.files.insert(
        "examples/valid/README.md".into(),
        "The document's own examples that meet its schemas, one file each (`squall schemas \
         lint` checks them).\n"
            .into(),
    );
    let header = "# Examples of the document that fail its own schemas (see README.md).\n";
    let body = if rows.is_empty() {
        "[]\n".to_string()
    } else {
        rows
    };
    b.files.insert(
        "examples/invalid/expected.yaml".into(),
        format!("{header}{body}"),
    );
}

fn unique(taken: &mut BTreeSet<String>, base: String) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}
