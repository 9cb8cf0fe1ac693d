//! Protocol profiles (`schemas/<name>/protocol.yaml`): how a protocol's frames are told
//! apart, and the JSON Schema each kind must meet in each direction, compiled once.
//!
//! Checking asks the cheap question first (`is_valid`) and collects error details only for a
//! frame that fails, so a clean frame costs one validation pass.

pub mod catalog;
pub mod checker;
pub mod connect;
pub mod conversation;
mod ecma;
mod engine;
pub mod fields;
pub mod horizon;
mod lint;
mod load;
pub mod pairing;
pub mod pointer;
pub mod rooms;
pub mod source;
pub mod view;

/// The tape a frame is parsed onto: the one part of the tape engine outside the crate, as
/// the swarm keeps one per worker thread and tests read it.
pub use engine::tape;
#[doc(hidden)]
pub use engine::Part;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use jsonschema::Validator;
use rustc_hash::FxHashMap;
use serde_json::Value;

use engine::compiled::Compiled;
use engine::Parts;
pub use lint::{lint, lint_in, LintReport};
pub(crate) use load::walk_json;
use load::RawProfile;
#[cfg(test)]
pub(crate) use load::{build, Reader};
pub use source::Source;
use tape::{Doc, TapeJson};
pub use view::{Conformance, RuleSource};

/// Which way a frame travels.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Server to client.
    In,
    /// Client to server.
    Out,
}

impl Direction {
    /// `in` or `out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// One way a frame broke its protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The frame's direction.
    pub dir: Direction,
    /// The frame's kind, or `(unknown)`, `(non-json)`, `(binary)`.
    pub kind: String,
    /// The failing JSON Schema keyword, or `unknown_kind`, `json`, `binary`, `utf8`.
    pub keyword: String,
    /// JSON pointer into the frame where it failed.
    pub pointer: String,
    /// What the schema said.
    pub message: String,
    /// Whose rule it broke: the document's, or squall's decision where the document is silent.
    pub source: RuleSource,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(
            f,
            "{} {}: {} at {}: {}{}",
            self.dir.as_str(),
            self.kind,
            self.keyword,
            at,
            self.message,
            match self.source {
                RuleSource::Document => "",
                RuleSource::Squall => " (squall's decision where the document is silent)",
            }
        )
    }
}

/// A profile that could not be loaded: every problem found, each naming its file.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ProfileError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// A loaded profile with every schema compiled.
pub struct Profile {
    /// The protocol's name.
    pub name: String,
    /// The folder it was loaded from.
    pub dir: PathBuf,
    /// The seed document it follows.
    pub document: Option<String>,
    /// Endpoint paths the document describes.
    pub endpoints: Vec<String>,
    /// The query parameters the document defines for the upgrade request, when the profile
    /// lists them (`None`: not modelled).
    pub query: Option<Vec<String>>,
    /// JSON pointers whose string values, joined by `.`, name a frame's kind.
    pub discriminator: Vec<String>,
    /// Pointer pairing replies with requests, if the protocol has one.
    pub correlation: Option<String>,
    /// The documented limits (`max_message_bytes`, `max_subscriptions`, ...).
    pub limits: BTreeMap<String, u64>,
    /// Pointer of an inbound frame's send time (RFC 3339), checked against the generator's
    /// clock: a frame stamped in the future beyond the allowed skew is a violation.
    pub clock: Option<String>,
    /// Which inbound kinds answer which outbound kinds, and which fields they echo.
    pub replies: Vec<pairing::ReplyRule>,
    /// Which events a connection may receive, by the rooms it subscribed to.
    pub subscriptions: Option<rooms::RoomRules>,
    /// How strictly frames are held to the profile.
    pub conformance: Conformance,
    /// Why closed objects are squall's decision, when the profile says they are.
    pub closed_decision: Option<String>,
    /// How to reach the API (target, query, headers), where the profile says.
    pub connect: Option<connect::Connect>,
    /// Where its files were read (disk, or memory for built-in and imported profiles).
    pub source: Source,
    envelope: Option<Schema>,
    inbound: FxHashMap<String, Schema>,
    outbound: FxHashMap<String, Schema>,
    /// Which of the tape engine's own parts are used: all, but when a benchmark measures
    /// what one saves.
    pub(crate) parts: Parts,
}

/// One schema compiled for each way of asking. On a frame's tape, the per-frame question "is
/// it valid?": by the `compiled` checks (which, for a kind, include the envelope) where the
/// schemas allow, else by the jsonschema crate's validator `on_tape`. On a
/// `serde_json::Value` (`on_value`): the verdict with its details, and frames the tape leaves
/// alone.
struct Schema {
    compiled: Option<Compiled>,
    on_tape: Validator<TapeJson>,
    on_value: Validator,
    /// Under [`Conformance::Strict`], the schema without squall's decisions, when it has any:
    /// asked only of a frame that failed, to say whose rule each violation broke.
    document: Option<Validator>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("inbound", &self.kinds(Direction::In))
            .field("outbound", &self.kinds(Direction::Out))
            .finish()
    }
}

impl Profile {
    /// The kinds known in one direction, sorted.
    pub fn kinds(&self, dir: Direction) -> Vec<&str> {
        let mut k: Vec<&str> = self.schemas(dir).keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    fn schemas(&self, dir: Direction) -> &FxHashMap<String, Schema> {
        match dir {
            Direction::In => &self.inbound,
            Direction::Out => &self.outbound,
        }
    }

    /// A frame's kind by the discriminator: the string values at the pointers that are
    /// present, joined by `.`; `None` when none is.
    pub fn kind_of(&self, v: &Value) -> Option<String> {
        pointer::kind_of(v, &self.discriminator).map(|k| k.into_owned())
    }

    /// Checks a parsed frame: the envelope, then the schema of its kind. Clean frames cost
    /// one `is_valid` per schema; details are gathered only on failure.
    pub fn check(&self, dir: Direction, v: &Value) -> Result<(), Vec<Violation>> {
        self.check_kind(dir, self.kind_of(v).as_deref(), v)
    }

    /// [`Profile::check`] for a frame whose kind the caller already read (by this profile's
    /// discriminator), so the hot path classifies each frame once.
    pub fn check_kind(
        &self,
        dir: Direction,
        kind: Option<&str>,
        v: &Value,
    ) -> Result<(), Vec<Violation>> {
        let schema = kind.and_then(|k| self.schemas(dir).get(k));
        let clean = self
            .envelope
            .as_ref()
            .is_none_or(|e| e.on_value.is_valid(v))
            && schema.is_some_and(|s| s.on_value.is_valid(v));
        if clean {
            return Ok(());
        }
        let label = kind.unwrap_or("(unknown)");
        let mut found = Vec::new();
        for s in self.envelope.iter().chain(schema) {
            found.extend(details(s, v, dir, label));
        }
        match schema {
            Some(_) => {}
            None => found.push(Violation {
                dir,
                kind: label.to_string(),
                keyword: "unknown_kind".into(),
                pointer: self.unknown_part(dir, v).to_string(),
                message: match kind {
                    Some(k) => format!(
                        "{} defines no {} message of kind '{k}'",
                        self.name,
                        match dir {
                            Direction::In => "inbound",
                            Direction::Out => "outbound",
                        }
                    ),
                    None => format!(
                        "no kind: the frame has no string at {}",
                        self.discriminator.join(" or ")
                    ),
                },
                source: RuleSource::Document,
            }),
        }
        Err(one_per_pointer(found))
    }

    /// The discriminator pointer whose part makes a frame's kind unknown: the first part
    /// present with which the kind read so far (`event.nope`) begins no kind known in `dir`.
    /// KECS `{"type":"event","payload":{"eventType":"nope"}}` is unknown at
    /// `/payload/eventType`, not at `/type`. When every part present begins a known kind (a
    /// part is missing: which one cannot be told), the last part present; with none present,
    /// the first pointer.
    pub fn unknown_part(&self, dir: Direction, v: &Value) -> &str {
        let kinds = self.schemas(dir);
        let mut so_far = String::new();
        let mut last = self.discriminator.first().map_or("", String::as_str);
        for p in &self.discriminator {
            let Some(part) = pointer::lookup(v, p).and_then(Value::as_str) else {
                continue;
            };
            if !so_far.is_empty() {
                so_far.push('.');
            }
            so_far.push_str(part);
            let begins = |k: &String| {
                k.strip_prefix(so_far.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            };
            if !kinds.keys().any(begins) {
                return p;
            }
            last = p;
        }
        last
    }

    /// Whether a frame parsed onto a tape meets the envelope and its kind's schema: the
    /// tape engine's question, without a connection's memory of its last frames. `false`
    /// (an unknown kind included) says nothing more: [`Profile::check_kind`] on the frame's
    /// `Value` gives the verdict and its details.
    pub fn is_clean(&self, dir: Direction, kind: Option<&str>, doc: &Doc) -> bool {
        engine::is_valid(self, dir, kind, doc, None)
    }

    /// Switches one of the tape engine's own parts off, to measure what it saves
    /// (`benches/check.rs`); all are on by default.
    #[doc(hidden)]
    pub fn switch_off(&mut self, part: Part) {
        self.parts.switch_off(part);
    }

    /// Checks the frame's timestamp (at [`Profile::clock`]) against `now`: stamped more than
    /// `skew` in the future is a violation. A missing or unparsable timestamp is the schema's
    /// business, not this check's. `horizon` (kept per connection) tells most stamps
    /// without parsing them.
    pub fn check_clock<F: fields::Fields + ?Sized>(
        &self,
        kind: Option<&str>,
        v: &F,
        now: std::time::SystemTime,
        skew: std::time::Duration,
        horizon: &mut horizon::Horizon,
    ) -> Option<Violation> {
        let pointer = self.clock.as_deref()?;
        self.check_stamp(kind, v.str_at(pointer).as_deref(), now, skew, horizon)
    }

    /// [`Profile::check_clock`] for the clock field's text, already read (`None`: the frame
    /// has none, or not a string).
    pub fn check_stamp(
        &self,
        kind: Option<&str>,
        text: Option<&str>,
        now: std::time::SystemTime,
        skew: std::time::Duration,
        horizon: &mut horizon::Horizon,
    ) -> Option<Violation> {
        let pointer = self.clock.as_deref()?;
        let text = text?;
        if now
            .checked_add(skew)
            .is_some_and(|limit| horizon.surely_within(text, limit))
        {
            return None;
        }
        let stamped = humantime::parse_rfc3339_weak(text).ok()?;
        let ahead = stamped.duration_since(now).ok()?;
        (ahead > skew).then(|| Violation {
            dir: Direction::In,
            kind: kind.unwrap_or("(unknown)").to_string(),
            keyword: "clock_skew".into(),
            pointer: pointer.to_string(),
            message: format!(
                "stamped {:.3} s in the future (allowed skew {:.3} s)",
                ahead.as_secs_f64(),
                skew.as_secs_f64()
            ),
            source: RuleSource::Document,
        })
    }

    /// A violation for a frame that is not text at all.
    pub fn binary_violation(dir: Direction, len: usize) -> Violation {
        Violation {
            dir,
            kind: "(binary)".into(),
            keyword: "binary".into(),
            pointer: String::new(),
            message: format!("a binary message ({len} bytes) where the protocol sends JSON text"),
            source: RuleSource::Document,
        }
    }

    /// Checks a text frame: non-JSON text is a violation of its own kind.
    pub fn check_text(&self, dir: Direction, text: &str) -> Result<(), Vec<Violation>> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => self.check(dir, &v),
            Err(e) => Err(vec![Violation {
                dir,
                kind: "(non-json)".into(),
                keyword: "json".into(),
                pointer: String::new(),
                message: format!("not JSON: {e}"),
                source: RuleSource::Document,
            }]),
        }
    }
}

/// What `schema` finds wrong with `v`, each violation saying whose rule it broke: one at a
/// pointer where the schema without squall's decisions finds nothing broke a decision.
fn details(schema: &Schema, v: &Value, dir: Direction, kind: &str) -> Vec<Violation> {
    let document: Option<Vec<String>> = schema
        .document
        .as_ref()
        .map(|d| d.iter_errors(v).map(|e| place(&e).0).collect());
    schema
        .on_value
        .iter_errors(v)
        .map(|e| {
            let (pointer, message) = place(&e);
            let source = match &document {
                Some(doc) if !doc.contains(&pointer) => RuleSource::Squall,
                _ => RuleSource::Document,
            };
            Violation {
                dir,
                kind: kind.to_string(),
                keyword: e.kind().keyword().to_string(),
                pointer,
                message,
                source,
            }
        })
        .collect()
}

/// Where an error is, and what it says: a missing member at its own place, not its parent's
/// (`/timestamp`, not `""`).
fn place(e: &jsonschema::ValidationError<'_>) -> (String, String) {
    let mut pointer = e.instance_path().to_string();
    let message = match e.kind() {
        jsonschema::error::ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
            format!("{property} is missing (required)")
        }
        _ => e.to_string(),
    };
    (pointer, message)
}

/// One finding per place in the frame: the keywords that failed at one pointer (in the
/// envelope and the kind's schema alike, e.g. `format` and `pattern` of one timestamp) become
/// one violation whose keyword names them all (`format+pattern`) and whose message keeps
/// each distinct message. A bad field is one fault, counted once.
fn one_per_pointer(found: Vec<Violation>) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::with_capacity(found.len());
    for v in found {
        match out.iter_mut().find(|o| o.pointer == v.pointer) {
            None => out.push(v),
            Some(o) => {
                // A place that breaks the document breaks it whatever else it breaks.
                o.source = o.source.min(v.source);
                let mut keywords: Vec<&str> = o.keyword.split('+').collect();
                if !keywords.contains(&v.keyword.as_str()) {
                    keywords.push(&v.keyword);
                    keywords.sort_unstable();
                    o.keyword = keywords.join("+");
                }
                if !o.message.split("; ").any(|m| m == v.message) {
                    o.message.push_str("; ");
                    o.message.push_str(&v.message);
                }
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
