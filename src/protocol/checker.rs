//! The one front door for a connection's frames: text in, its kind, correlation id and
//! violations out. The swarm hands each frame to a [`Checker`] once per direction (every
//! sending step alike, and every inbound frame) and records what comes back; the checker
//! records nothing itself.
//!
//! A checker without a profile (`--no-check`, or a scenario naming no protocol) only reads
//! frames: the same tape, the same kind and id, nothing judged.
//!
//! With a profile, [`Engine::Tape`] (the default) parses each frame onto the worker's tape
//! and asks the tape engine whether it is valid (`protocol/engine/mod.rs` gives the order of
//! its steps); only a frame it rejects is parsed into a `serde_json::Value` for the
//! verdict's details, so a frame it rejects wrongly still gets the right verdict.
//! [`Engine::Reference`] skips the tape: jsonschema on `serde_json::Value`, every frame,
//! against which the tape engine is tested.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::conversation::{Conversation, Stamp};
use super::engine::tape::{Doc, Tape};
use super::engine::{Judged, Memory};
use super::fields::{Fields, Known};
use super::pointer::{kind_of, kind_on_tape, lookup, IdKey, Shape};
use super::{Direction, Profile, RuleSource, Violation};

/// How a checking [`Checker`] judges frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// Frames parsed onto a tape and judged by the compiled checks, falling back to
    /// jsonschema on `serde_json::Value` for a frame they reject.
    #[default]
    Tape,
    /// jsonschema on `serde_json::Value` for every frame: slower, and the yardstick the tape
    /// engine is held to.
    Reference,
}

/// What one frame broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not checked: no profile, `--no-check`, or a step sending `unchecked`.
    Unchecked,
    /// Checked, and nothing broken.
    Clean,
    /// Checked, and these broken.
    Broke(Vec<Violation>),
}

impl Verdict {
    /// Whether the frame was checked.
    pub fn checked(&self) -> bool {
        !matches!(self, Verdict::Unchecked)
    }

    /// The schema's findings with the conversation's (pairing, rooms, clock) added.
    fn merged(found: Result<(), Vec<Violation>>, extra: Vec<Violation>) -> Verdict {
        match (found, extra.is_empty()) {
            (Ok(()), true) => Verdict::Clean,
            (Ok(()), false) => Verdict::Broke(extra),
            (Err(mut vs), _) => {
                vs.extend(extra);
                Verdict::Broke(vs)
            }
        }
    }
}

/// One frame, read and judged.
#[derive(Debug)]
pub struct Checked<'t> {
    /// Whether the text was JSON.
    pub json: bool,
    /// The frame's kind (by the shape's kind pointers).
    pub kind: Option<Cow<'t, str>>,
    /// The frame's correlation id (by the shape's id pointer).
    pub id: Option<IdKey>,
    /// The frame as a `Value`, when reading or judging it built one.
    pub value: Option<Value>,
    /// What it broke.
    pub verdict: Verdict,
}

impl Checked<'_> {
    fn not_json() -> Self {
        Checked {
            json: false,
            kind: None,
            id: None,
            value: None,
            verdict: Verdict::Unchecked,
        }
    }
}

/// One connection's frames, read and (with a profile) judged.
pub struct Checker {
    shape: Arc<Shape>,
    /// The worker's parse buffer, shared by its connections: one frame is read at a time.
    tape: Rc<RefCell<Tape>>,
    rules: Option<Rules>,
}

/// What judging a connection's frames needs: the profile, and what the connection said.
struct Rules {
    profile: Arc<Profile>,
    engine: Engine,
    /// How far in the future an inbound timestamp may be.
    skew: Duration,
    /// Pending requests and rooms held.
    conversation: Conversation,
    /// The tape engine's memory of the connection's last frames.
    memory: Memory,
}

impl Checker {
    /// A checker that reads frames by `shape` and judges nothing.
    pub fn reading(shape: Arc<Shape>, tape: Rc<RefCell<Tape>>) -> Checker {
        Checker {
            shape,
            tape,
            rules: None,
        }
    }

    /// A checker that judges frames by `profile` with `engine`, allowing inbound timestamps
    /// `skew` in the future.
    pub fn checking(
        shape: Arc<Shape>,
        tape: Rc<RefCell<Tape>>,
        profile: Arc<Profile>,
        engine: Engine,
        skew: Duration,
    ) -> Checker {
        Checker {
            shape,
            tape,
            rules: Some(Rules {
                profile,
                engine,
                skew,
                conversation: Conversation::default(),
                memory: Memory::default(),
            }),
        }
    }

    /// Whether frames are judged (a profile is loaded).
    pub fn is_checking(&self) -> bool {
        self.rules.is_some()
    }

    /// A new connection: what the last one said is forgotten.
    pub fn new_connection(&mut self) {
        if let Some(r) = &mut self.rules {
            r.conversation.clear();
        }
    }

    /// Reads a frame's kind and id, judging and noting nothing (a frame read again, from
    /// the mailbox).
    pub fn read<'t>(&self, text: &'t str) -> Checked<'t> {
        let mut tape = self.tape.borrow_mut();
        let Some(doc) = tape.parse(text) else {
            return read_value(text, &self.shape);
        };
        Checked {
            json: true,
            kind: kind_on_tape(text, &doc, self.shape.kind_pointers()),
            id: doc.lookup(self.shape.id_pointer()).map(IdKey::on_tape),
            value: None,
            verdict: Verdict::Unchecked,
        }
    }

    /// An inbound text frame: read, judged (schemas, clock, pairing, rooms). `now` gives its
    /// arrival on the wall clock, asked only when the profile checks timestamps.
    pub fn inbound<'t>(&mut self, text: &'t str, now: impl FnOnce() -> SystemTime) -> Checked<'t> {
        self.frame(Direction::In, text, true, now)
    }

    /// An outbound text frame: read, noted for pairing and rooms, and judged unless
    /// `unchecked`.
    pub fn outbound<'t>(&mut self, text: &'t str, unchecked: bool) -> Checked<'t> {
        self.frame(Direction::Out, text, !unchecked, SystemTime::now)
    }

    /// A binary frame where the protocol sends JSON text.
    pub fn binary(&self, dir: Direction, len: usize) -> Verdict {
        self.judged(|| Profile::binary_violation(dir, len))
    }

    /// An inbound text frame that is not UTF-8 (`detail`: where).
    pub fn not_utf8(&self, detail: &str) -> Verdict {
        self.judged(|| Violation {
            dir: Direction::In,
            kind: "(invalid-utf8)".into(),
            keyword: "utf8".into(),
            pointer: String::new(),
            message: format!("a text message that is not UTF-8: {detail}"),
            source: RuleSource::Document,
        })
    }

    fn judged(&self, v: impl FnOnce() -> Violation) -> Verdict {
        match self.rules {
            Some(_) => Verdict::Broke(vec![v()]),
            None => Verdict::Unchecked,
        }
    }

    fn frame<'t>(
        &mut self,
        dir: Direction,
        text: &'t str,
        check: bool,
        now: impl FnOnce() -> SystemTime,
    ) -> Checked<'t> {
        let Some(rules) = &mut self.rules else {
            return self.read(text);
        };
        let shape = &self.shape;
        if rules.engine == Engine::Reference {
            return rules.on_value(dir, text, shape, check, now);
        }
        let mut tape = self.tape.borrow_mut();
        match tape.parse(text) {
            Some(doc) => rules.on_tape(dir, text, &doc, shape, check, now),
            // Not JSON, or JSON the tape leaves to serde_json.
            None => rules.on_value(dir, text, shape, check, now),
        }
    }
}

impl Rules {
    /// A frame in `dir`, parsed onto `doc`: read and (when `check`) judged by the tape
    /// engine in one call, then noted or judged by the conversation (pairing, rooms, clock).
    /// A frame the engine rejects is judged again on its `Value` by jsonschema, which gives
    /// the verdict and its details.
    fn on_tape<'t>(
        &mut self,
        dir: Direction,
        text: &'t str,
        doc: &Doc,
        shape: &Shape,
        check: bool,
        now: impl FnOnce() -> SystemTime,
    ) -> Checked<'t> {
        let read = self
            .memory
            .frame(&self.profile, dir, text, doc, shape, check);
        let known = Known {
            doc,
            pointer: shape.id_pointer(),
            node: read.id,
        };
        let kind = read.kind;
        let extra = self.converse(dir, kind.as_deref(), &known, Stamp::Read(read.stamp), now);
        let mut checked = Checked {
            json: true,
            kind,
            id: read.id.map(IdKey::on_tape),
            value: None,
            verdict: Verdict::Unchecked,
        };
        match read.judged {
            Judged::Unasked => {}
            Judged::Valid => checked.verdict = Verdict::merged(Ok(()), extra),
            Judged::Rejected => {
                let v = serde_json::from_str::<Value>(text).ok();
                let kind = checked.kind.as_deref();
                checked.verdict = Verdict::merged(self.schemas(dir, kind, v.as_ref(), text), extra);
                checked.value = v;
            }
        }
        checked
    }

    /// A frame judged on its `Value` alone: the reference engine's path, and the tape
    /// engine's for frames the tape leaves to serde_json.
    fn on_value<'t>(
        &mut self,
        dir: Direction,
        text: &'t str,
        shape: &Shape,
        check: bool,
        now: impl FnOnce() -> SystemTime,
    ) -> Checked<'t> {
        let mut checked = read_value(text, shape);
        let kind = checked.kind.as_deref();
        let extra = match &checked.value {
            Some(v) => self.converse(dir, kind, v, Stamp::Unread, now),
            None => Vec::new(),
        };
        if check {
            let found = self.schemas(dir, kind, checked.value.as_ref(), text);
            checked.verdict = Verdict::merged(found, extra);
        }
        checked
    }

    /// Notes an outbound frame for pairing and rooms; judges an inbound one by them and by
    /// its clock. `stamp`: the clock field as read so far.
    fn converse<F: Fields + ?Sized>(
        &mut self,
        dir: Direction,
        kind: Option<&str>,
        v: &F,
        stamp: Stamp<'_>,
        now: impl FnOnce() -> SystemTime,
    ) -> Vec<Violation> {
        let p = &self.profile;
        match dir {
            Direction::Out => {
                self.conversation.sent(p, kind, v);
                Vec::new()
            }
            Direction::In => {
                let now = p.clock.is_some().then(now);
                self.conversation
                    .received(p, kind, v, now, self.skew, stamp)
            }
        }
    }

    /// The schema verdict with its details, on the frame's `Value` (`None`: not JSON).
    fn schemas(
        &self,
        dir: Direction,
        kind: Option<&str>,
        v: Option<&Value>,
        text: &str,
    ) -> Result<(), Vec<Violation>> {
        match v {
            Some(v) => self.profile.check_kind(dir, kind, v),
            None => self.profile.check_text(dir, text),
        }
    }
}

/// A frame read into a `Value` (kind and id by `shape`), judged nothing.
fn read_value<'t>(text: &'t str, shape: &Shape) -> Checked<'t> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Checked::not_json();
    };
    let kind = kind_of(&v, shape.kind_pointers()).map(|k| Cow::Owned(k.into_owned()));
    Checked {
        json: true,
        kind,
        id: lookup(&v, shape.id_pointer()).map(IdKey::of),
        value: Some(v),
        verdict: Verdict::Unchecked,
    }
}

#[cfg(test)]
#[path = "checker_tests.rs"]
mod tests;
