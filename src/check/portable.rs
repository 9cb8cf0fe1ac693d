//! `squall check --portable`: does a scenario use only what its protocol's document defines?
//!
//! A portable scenario runs against any server written to the document, not only against
//! squall-server. It is read against the profile's portable view
//! ([`Profile::load_portable`]: squall-server's extensions, marked `x-squall-extension`, left
//! out; objects closed as in the strict view), so:
//! - every frame it sends (rendered with stand-in values) may carry only fields the document
//!   defines, and be of a kind the document defines;
//! - every frame it waits for (`expect`, `pace` replies, auto-replies, uploads, refusals) is
//!   of a kind the document defines, and every field it matches, captures, pairs replies by
//!   or tracks delivery with is one the document defines.
//!
//! Values are not judged (a template's stand-ins are not real values): only which kinds and
//! fields are used. A field counts as defined when the kind's schema accepts it: tried on the
//! profile's own valid example of that kind. Query parameters and close codes are not
//! modelled by profiles and are not checked here.

use std::path::PathBuf;

use serde_json::Value;

use crate::protocol::{Direction, Profile, Violation};
use crate::scenario::plan::{Matcher, Payload, Plan, Step};
use crate::scenario::template::Fixed;

/// One use of something the document does not define, with where in the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where: the behaviour and step path (`subscriber: step 3 (send)`), or the section.
    pub at: String,
    /// What is not the document's.
    pub what: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.what)
    }
}

/// What in `plan` the portable profile does not define; empty when the scenario is portable.
pub fn check(plan: &Plan, portable: &Profile) -> Vec<Finding> {
    let mut w = Walker {
        plan,
        profile: portable,
        document: portable
            .document
            .clone()
            .unwrap_or_else(|| format!("the {} document", portable.name)),
        out: Vec::new(),
    };
    for b in &plan.behaviours {
        w.steps(&b.name, &b.steps);
    }
    for (i, r) in plan.replies.iter().enumerate() {
        let at = format!("auto_reply {}", i + 1);
        w.matcher(&at, &r.on, false);
        w.send(&at, &r.reply);
    }
    if let Some(d) = &plan.delivery {
        w.delivery(d);
    }
    if let Some(known) = &portable.query {
        w.query(known);
    }
    w.out.dedup();
    w.out
}

struct Walker<'a> {
    plan: &'a Plan,
    profile: &'a Profile,
    document: String,
    out: Vec<Finding>,
}

impl Walker<'_> {
    /// `delivery:`: its pointers must be the document's, on the kinds it tracks.
    fn delivery(&mut self, d: &crate::scenario::plan::Delivery) {
        let pointers: Vec<&String> = std::iter::once(&d.seq)
            .chain(&d.key)
            .chain(&d.sent_at)
            .collect();
        if d.kinds.is_empty() {
            // Every kind is tracked: each pointer must be the document's on some kind.
            for p in pointers {
                self.field_anywhere("delivery", p);
            }
        } else {
            for kind in &d.kinds {
                for p in &pointers {
                    self.field("delivery", kind, p);
                }
            }
        }
    }

    /// The query parameters of the target and `connect.query`: each one `known`.
    fn query(&mut self, known: &[String]) {
        let plan = self.plan;
        let from_target: Vec<String> = plan
            .target
            .split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or_default())
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|kv| !kv.is_empty())
            .map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k).to_string())
            .collect();
        let named = plan
            .connect
            .query
            .iter()
            .chain(plan.behaviours.iter().flat_map(|b| &b.query))
            .map(|(k, _)| k.clone());
        for name in from_target.into_iter().chain(named) {
            if !known.contains(&name) {
                self.out.push(Finding {
                    at: "target / connect.query".into(),
                    what: format!(
                        "the query parameter '{name}', which {} does not define (it defines: {})",
                        self.document,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            }
        }
    }

    fn steps(&mut self, at: &str, steps: &[Step]) {
        for (i, step) in steps.iter().enumerate() {
            let here = |what: &str| format!("{at}: step {} ({what})", i + 1);
            match step {
                Step::Send { payload, unchecked } => {
                    if !unchecked {
                        self.send(&here("send"), payload);
                    }
                }
                Step::Expect(e) => {
                    let at = here("expect");
                    self.matcher(&at, &e.matcher, false);
                    if let Some(kind) = &e.matcher.kind {
                        for (_, p) in &e.capture {
                            self.field(&at, kind, p);
                        }
                    }
                }
                Step::Repeat { steps, .. } => self.steps(&here("repeat"), steps),
                Step::Choose { branches } => {
                    for (b, (_, steps)) in branches.iter().enumerate() {
                        self.steps(&format!("{} branch {}", here("choose"), b + 1), steps);
                    }
                }
                Step::Pace(p) => {
                    let at = here("pace");
                    for r in &p.requests {
                        if !p.unchecked {
                            self.send(&at, &r.payload);
                        }
                        // A pace pairs each reply with its request by id.
                        self.matcher(&at, &r.reply, true);
                    }
                }
                Step::Burst {
                    payload,
                    unchecked,
                    rejected,
                    ..
                } => self.burst(&here("burst"), payload, *unchecked, rejected.as_ref()),
                Step::Upload(u) => self.upload(&here("upload"), u),
                Step::Continue(inner) => self.steps(at, std::slice::from_ref(&**inner)),
                Step::Listen { .. }
                | Step::Think(_)
                | Step::ExpectClose { .. }
                | Step::Reconnect(_)
                | Step::Close { .. } => {}
            }
        }
    }

    /// A `burst` step: the message it sends and the refusal it waits for.
    fn burst(
        &mut self,
        at: &str,
        payload: &Payload,
        unchecked: bool,
        rejected: Option<&crate::scenario::plan::Rejected>,
    ) {
        if !unchecked {
            self.send(at, payload);
        }
        if let Some(crate::scenario::plan::Rejected {
            by: crate::scenario::plan::RejectBy::Frame(m),
            ..
        }) = rejected
        {
            self.matcher(at, m, false);
        }
    }

    /// An `upload` step: the messages it sends and the replies it waits for.
    fn upload(&mut self, at: &str, u: &crate::scenario::plan::Upload) {
        if !u.unchecked {
            for p in [&u.start, &u.chunk].into_iter().chain(&u.finish) {
                self.send(at, p);
            }
        }
        let waits = [&u.started, &u.chunk_ack, &u.expect_error];
        for w in waits.into_iter().flatten().chain([&u.complete]) {
            self.matcher(at, &w.matcher, false);
        }
    }

    /// A frame the scenario sends: its kind and its fields must be the document's.
    fn send(&mut self, at: &str, payload: &Payload) {
        // Stand-ins: what is captured or echoed renders `null`.
        let mut ctx = Fixed::new(1, 0, 1);
        let mut text = String::new();
        match payload {
            Payload::Json(t) => t.render(&mut ctx, &mut text),
            Payload::Text(t) => t.render(&mut ctx, &mut text),
            Payload::Binary(_) => return,
        }
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return;
        };
        let Some(kind) = self.profile.kind_of(&v) else {
            return;
        };
        for f in undefined(self.profile.check(Direction::Out, &v)) {
            self.out.push(Finding {
                at: at.to_string(),
                what: match f.keyword.as_str() {
                    "unknown_kind" => {
                        format!("sends {kind}, a kind {} does not define", self.document)
                    }
                    _ => format!(
                        "sends {kind} with a field {} does not define ({})",
                        self.document, f.message
                    ),
                },
            });
        }
    }

    /// A frame the scenario waits for: its kind, and the fields it matches (and its id, when
    /// `by_id` or the matcher names one), must be the document's.
    fn matcher(&mut self, at: &str, m: &Matcher, by_id: bool) {
        let Some(kind) = &m.kind else {
            return;
        };
        if !self.profile.kinds(Direction::In).contains(&kind.as_str()) {
            self.out.push(Finding {
                at: at.to_string(),
                what: format!("waits for {kind}, a kind {} does not define", self.document),
            });
            return;
        }
        let id = (by_id || m.id.is_some()).then_some(&self.plan.id_pointer);
        for p in m.fields.iter().map(|(p, _)| p).chain(id) {
            self.field(at, kind, p);
        }
    }

    /// Whether `pointer` names a field the document defines on some inbound kind.
    fn field_anywhere(&mut self, at: &str, pointer: &str) {
        let kinds: Vec<String> = self
            .profile
            .kinds(Direction::In)
            .into_iter()
            .map(str::to_string)
            .collect();
        let before = self.out.len();
        let mut judged = 0;
        for kind in &kinds {
            if example(self.profile, kind).is_none() {
                continue;
            }
            judged += 1;
            let n = self.out.len();
            self.field(at, kind, pointer);
            if self.out.len() == n {
                self.out.truncate(before);
                return;
            }
        }
        self.out.truncate(before);
        if judged > 0 {
            self.out.push(Finding {
                at: at.to_string(),
                what: format!(
                    "reads {pointer}, a field {} defines on no kind",
                    self.document
                ),
            });
        }
    }

    /// Whether `pointer` names a field the document defines on inbound `kind`.
    fn field(&mut self, at: &str, kind: &str, pointer: &str) {
        let Some(mut frame) = example(self.profile, kind) else {
            return;
        };
        if frame.pointer(pointer).is_some() {
            return;
        }
        if !put(&mut frame, pointer) {
            return;
        }
        if let Some(f) = undefined(self.profile.check(Direction::In, &frame)).next() {
            self.out.push(Finding {
                at: at.to_string(),
                what: format!(
                    "reads {pointer} of {kind}, a field {} does not define ({})",
                    self.document, f.message
                ),
            });
        }
    }
}

/// The findings that say a kind or a field is not defined (not that a value is wrong).
fn undefined(r: Result<(), Vec<Violation>>) -> impl Iterator<Item = Violation> {
    r.err().into_iter().flatten().filter(|v| {
        v.keyword.split('+').any(|k| {
            matches!(
                k,
                "additionalProperties" | "unevaluatedProperties" | "unknown_kind"
            )
        })
    })
}

/// A valid example of inbound `kind` from the profile's `examples/valid/` that the portable
/// view accepts too (fixtures of squall-server's frames are not).
fn example(profile: &Profile, kind: &str) -> Option<Value> {
    let folder: PathBuf = profile.dir.join("examples").join("valid");
    let mut files: Vec<PathBuf> = profile
        .source
        .list(&folder)
        .ok()?
        .into_iter()
        .filter(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.strip_prefix("in-"))
                .is_some_and(|s| {
                    s == kind || s.strip_prefix(kind).is_some_and(|r| r.starts_with('-'))
                })
        })
        .collect();
    files.sort();
    files.into_iter().find_map(|f| {
        let v: Value = serde_json::from_str(&profile.source.read(&f).ok()?).ok()?;
        (profile.kind_of(&v).as_deref() == Some(kind) && profile.check(Direction::In, &v).is_ok())
            .then_some(v)
    })
}

/// Sets `pointer` in `v` to `null`, making objects on the way; `false` when a step of it
/// cannot be taken (a scalar in the way, an array index out of range).
fn put(v: &mut Value, pointer: &str) -> bool {
    let mut here = v;
    let segs: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        here = match here {
            Value::Object(map) => {
                let next = map.entry(seg.clone()).or_insert_with(|| {
                    if last {
                        Value::Null
                    } else {
                        Value::Object(Default::default())
                    }
                });
                next
            }
            Value::Array(items) => match seg.parse::<usize>().ok().and_then(|n| items.get_mut(n)) {
                Some(item) => item,
                None => return false,
            },
            _ => return false,
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load_str, LoadOptions};

    fn kite() -> Profile {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/kite");
        Profile::load_portable(&crate::protocol::Source::Disk, &dir).unwrap()
    }

    fn findings(yaml: &str) -> Vec<String> {
        let plan = load_str("t.yaml", yaml, &LoadOptions::default()).unwrap();
        check(&plan, &kite())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const HEAD: &str =
        "name: t\nprotocol: kite\ntarget: ws://127.0.0.1:1/ws\nload: { vus: 1, duration: 1s }\n";

    #[test]
    fn the_documents_own_frames_are_portable() {
        let yaml = format!(
            "{HEAD}behaviours:\n  - name: b\n    steps:\n\
             \x20     - expect: {{ kind: welcome, within: 2s, capture: {{ c: /data/client_id }} }}\n\
             \x20     - send: {{ type: ping, data: {{ client_id: \"{{{{c}}}}\" }}, timestamp: \"{{{{now}}}}\" }}\n\
             \x20     - expect: {{ kind: pong, within: 2s }}\n\
             \x20     - send: {{ type: subscribe, room: \"scrape:all\" }}\n\
             \x20     - expect: {{ kind: subscribe, match: {{ /data/room: \"scrape:all\" }}, within: 2s }}\n"
        );
        assert_eq!(findings(&yaml), Vec::<String>::new());
    }

    #[test]
    fn squall_servers_extensions_are_found_where_they_are_used() {
        let yaml = format!(
            "{HEAD}delivery: {{ seq: /seq, kinds: [scrape.progress] }}\nbehaviours:\n  - name: b\n    steps:\n\
             \x20     - send: {{ type: ping, id: \"{{{{seq}}}}\" }}\n\
             \x20     - expect: {{ kind: pong, id: \"{{{{sent./id}}}}\", within: 2s }}\n\
             \x20     - send: {{ type: unsubscribe, room: \"scrape:all\" }}\n\
             \x20     - expect: {{ kind: unsubscribe, within: 2s }}\n\
             \x20     - send: {{ type: subscribe, room: 42 }}\n\
             \x20       unchecked: true\n"
        );
        let found = findings(&yaml);
        let expect = [
            "b: step 1 (send): sends ping with a field",
            "b: step 2 (expect): reads /id of pong",
            "b: step 4 (expect): waits for unsubscribe, a kind",
            "delivery: reads /seq of scrape.progress",
        ];
        for e in expect {
            assert!(found.iter().any(|f| f.starts_with(e)), "{e}: {found:#?}");
        }
        assert_eq!(found.len(), expect.len(), "{found:#?}");
    }

    #[test]
    fn query_parameters_are_held_to_the_ones_the_document_names() {
        let yaml = format!(
            "{HEAD}connect: {{ query: {{ client_id: x }} }}\nbehaviours:\n  - steps:\n      - listen: 1s\n"
        );
        let found = findings(&yaml.replace("/ws\n", "/ws?token=t\n"));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("'token'") && found[1].contains("'client_id'"));
    }
}
