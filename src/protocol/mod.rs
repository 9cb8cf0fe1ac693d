//! Protocol profiles (`schemas/<name>/protocol.yaml`): how a protocol's frames are told
//! apart, and the JSON Schema each kind must meet in each direction, compiled once.
//!
//! Checking asks the fast question first (`is_valid`) and collects error details only for a
//! frame that fails, so a clean frame costs one validation pass.

pub mod catalog;
pub mod connect;
pub mod conversation;
mod ecma;
pub mod fast;
pub mod fields;
pub mod horizon;
mod lint;
pub mod marks;
pub mod pairing;
pub mod rooms;
mod snapshot;
pub mod source;
pub mod tape;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use jsonschema::json::Json;
use jsonschema::{Draft, Retrieve, Uri, Validator};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::Value;

pub use lint::{lint, lint_in, LintReport};
pub use source::Source;
use tape::{Doc, TapeJson};

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
            "{} {}: {} at {}: {}",
            self.dir.as_str(),
            self.kind,
            self.keyword,
            at,
            self.message
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

/// `protocol.yaml`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    endpoints: Vec<String>,
    discriminator: Vec<String>,
    #[serde(default)]
    correlation: Option<String>,
    #[serde(default)]
    envelope: Option<String>,
    #[serde(default)]
    inbound: BTreeMap<String, String>,
    #[serde(default)]
    outbound: BTreeMap<String, String>,
    #[serde(default)]
    limits: BTreeMap<String, u64>,
    #[serde(default)]
    clock: Option<String>,
    #[serde(default)]
    replies: Vec<pairing::ReplyRule>,
    #[serde(default)]
    subscriptions: Option<rooms::RoomRules>,
    #[serde(default)]
    connect: Option<connect::Connect>,
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
    /// How to reach the API (target, query, headers), where the profile says.
    pub connect: Option<connect::Connect>,
    /// Where its files were read (disk, or memory for built-in and imported profiles).
    pub source: Source,
    envelope: Option<Schema>,
    inbound: FxHashMap<String, Schema>,
    outbound: FxHashMap<String, Schema>,
}

/// One schema compiled for each way of asking. On a frame's tape, the per-frame question "is
/// it valid?": by the plain checks of [`fast::Fast`] (which, for a kind, include the
/// envelope) where the schemas allow, else by the jsonschema crate's validator for tapes. On a
/// `serde_json::Value`: the verdict with its details, and frames the tape leaves alone.
struct Schema {
    quick: Option<fast::Fast>,
    fast: Validator<TapeJson>,
    full: Validator,
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
    /// Loads `dir/protocol.yaml` and compiles every schema it names (with formats asserted
    /// and `$ref`s resolved inside `dir` only). All problems are reported together.
    pub fn load(dir: &Path) -> Result<Profile, ProfileError> {
        Profile::load_in(&Source::Disk, dir)
    }

    /// [`Profile::load`] from the files `source` holds.
    pub fn load_in(source: &Source, dir: &Path) -> Result<Profile, ProfileError> {
        let file = dir.join("protocol.yaml");
        let text = source.read(&file).map_err(|e| ProfileError {
            problems: vec![format!("{}: {e}", file.display())],
        })?;
        let raw: RawProfile = serde_saphyr::from_str(&text).map_err(|e| ProfileError {
            problems: vec![format!("{}: {e}", file.display())],
        })?;
        let root = source.canonical(dir).map_err(|e| ProfileError {
            problems: vec![format!("{}: {e}", dir.display())],
        })?;
        let mut problems = Vec::new();
        let mut compile_all = |map: &BTreeMap<String, String>| -> FxHashMap<String, Schema> {
            map.iter()
                .filter_map(|(kind, rel)| {
                    match compile(source, &root, rel, raw.envelope.as_deref()) {
                        Ok(v) => Some((kind.clone(), v)),
                        Err(e) => {
                            problems.push(e);
                            None
                        }
                    }
                })
                .collect()
        };
        let inbound = compile_all(&raw.inbound);
        let outbound = compile_all(&raw.outbound);
        let envelope = match raw
            .envelope
            .as_deref()
            .map(|rel| compile(source, &root, rel, None))
        {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                problems.push(e);
                None
            }
            None => None,
        };
        if raw.discriminator.is_empty() {
            problems.push(format!(
                "{}: discriminator: needs at least one JSON pointer",
                file.display()
            ));
        }
        for p in raw
            .discriminator
            .iter()
            .chain(raw.correlation.iter())
            .chain(raw.clock.iter())
        {
            if !p.is_empty() && !p.starts_with('/') {
                problems.push(format!(
                    "{}: '{p}' is not a JSON pointer (start it with /)",
                    file.display()
                ));
            }
        }
        for r in &raw.replies {
            if !raw.outbound.contains_key(&r.request) || !raw.inbound.contains_key(&r.reply) {
                problems.push(format!(
                    "{}: replies: {} → {} names a kind the profile does not list",
                    file.display(),
                    r.request,
                    r.reply
                ));
            }
            for p in r.fields.keys().chain(r.fields.values()) {
                if !p.is_empty() && !p.starts_with('/') {
                    problems.push(format!("{}: '{p}' is not a JSON pointer", file.display()));
                }
            }
        }
        if let Some(r) = &raw.subscriptions {
            let unknown = r.rooms.keys().filter(|k| !raw.inbound.contains_key(*k));
            let mut unknown: Vec<&String> = unknown
                .chain(
                    r.unsubscribed
                        .iter()
                        .filter(|k| !raw.inbound.contains_key(*k)),
                )
                .chain(Some(&r.subscribe).filter(|k| !raw.outbound.contains_key(*k)))
                .chain(r.holds.keys().filter(|k| !raw.outbound.contains_key(*k)))
                .collect();
            unknown.sort_unstable();
            if r.unsubscribed.is_some() && r.unsubscribed_room.is_empty() {
                problems.push(format!(
                    "{}: subscriptions: unsubscribed needs unsubscribed_room (the room's pointer)",
                    file.display()
                ));
            }
            if !unknown.is_empty() {
                problems.push(format!(
                    "{}: subscriptions: kinds the profile does not list: {unknown:?}",
                    file.display()
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ProfileError { problems });
        }
        Ok(Profile {
            name: raw.name,
            dir: root,
            document: raw.document,
            endpoints: raw.endpoints,
            discriminator: raw.discriminator,
            correlation: raw.correlation,
            limits: raw.limits,
            clock: raw.clock,
            replies: raw.replies,
            subscriptions: raw.subscriptions,
            connect: raw.connect,
            source: source.clone(),
            envelope,
            inbound,
            outbound,
        })
    }

    /// The schema file of a kind in one direction, as `protocol.yaml` names it (read again:
    /// for tools such as `squall scenario new`, not the hot path).
    pub fn schema_path(&self, dir: Direction, kind: &str) -> Option<PathBuf> {
        let text = self.source.read(&self.dir.join("protocol.yaml")).ok()?;
        let raw: RawProfile = serde_saphyr::from_str(&text).ok()?;
        let map = match dir {
            Direction::In => raw.inbound,
            Direction::Out => raw.outbound,
        };
        map.get(kind).map(|rel| self.dir.join(rel))
    }

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
        crate::swarm::matcher::kind_of(v, &self.discriminator).map(|k| k.into_owned())
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
        let clean = self.envelope.as_ref().is_none_or(|e| e.full.is_valid(v))
            && schema.is_some_and(|s| s.full.is_valid(v));
        if clean {
            return Ok(());
        }
        let label = kind.unwrap_or("(unknown)");
        let mut found = Vec::new();
        if let Some(env) = &self.envelope {
            found.extend(details(&env.full, v, dir, label));
        }
        match schema {
            Some(schema) => found.extend(details(&schema.full, v, dir, label)),
            None => found.push(Violation {
                dir,
                kind: label.to_string(),
                keyword: "unknown_kind".into(),
                pointer: self.discriminator.first().cloned().unwrap_or_default(),
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
            }),
        }
        Err(one_per_pointer(found))
    }

    /// Whether a frame parsed onto a tape meets the envelope and its kind's schema: the
    /// per-frame question. `false` (an unknown kind included) says nothing more: the caller
    /// asks [`Profile::check_kind`] on the frame's `Value` for the verdict and its details, so
    /// a frame rejected here wrongly still gets the right verdict. (That no bad frame passes
    /// here rests on the differential tests of the tape and the plain checks.)
    ///
    /// `recent` (one connection's, if kept) lets pattern checks resume over what a string
    /// shares with the last one they saw.
    pub fn is_clean(
        &self,
        dir: Direction,
        kind: Option<&str>,
        doc: &Doc,
        recent: Option<&mut fast::Recent>,
    ) -> bool {
        self.is_clean_like(dir, kind, doc, recent, None)
    }

    /// [`Profile::is_clean`] with what [`fast::Recent::like_last`] found for the frame.
    pub fn is_clean_like(
        &self,
        dir: Direction,
        kind: Option<&str>,
        doc: &Doc,
        mut recent: Option<&mut fast::Recent>,
        like: Option<fast::Like>,
    ) -> bool {
        if let Some(r) = recent.as_deref_mut() {
            r.unused();
        }
        let Some(schema) = kind.and_then(|k| self.schemas(dir).get(k)) else {
            return false;
        };
        let root = doc.root();
        match &schema.quick {
            Some(q) => match recent {
                Some(r) => q.is_valid_like(root, r, like),
                None => q.is_valid(root),
            },
            None => {
                self.envelope.as_ref().is_none_or(|e| e.fast.is_valid(root))
                    && schema.fast.is_valid(root)
            }
        }
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
            }]),
        }
    }
}

fn details(schema: &Validator, v: &Value, dir: Direction, kind: &str) -> Vec<Violation> {
    schema
        .iter_errors(v)
        .map(|e| Violation {
            dir,
            kind: kind.to_string(),
            keyword: e.kind().keyword().to_string(),
            pointer: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect()
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

/// Compiles one schema file of a profile, for both representations; the plain checks take
/// the profile's envelope in too, so a frame's shared fields are checked once.
fn compile(
    source: &Source,
    root: &Path,
    rel: &str,
    envelope: Option<&str>,
) -> Result<Schema, String> {
    let path = root.join(rel);
    let shown = path.display();
    let schema = ecma::read_schema(source, &path).map_err(|e| format!("{shown}: {e}"))?;
    let path = source
        .canonical(&path)
        .map_err(|e| format!("{shown}: {e}"))?;
    let fast =
        build::<TapeJson>(source, root, &path, &schema).map_err(|e| format!("{shown}: {e}"))?;
    let full = build(source, root, &path, &schema).map_err(|e| format!("{shown}: {e}"))?;
    let leaf = |one: &Value| build::<TapeJson>(source, root, &path, one).ok();
    // A schema the plain checks cannot express keeps the general validator: slower, not wrong.
    let envelope = envelope.and_then(|e| source.canonical(&root.join(e)).ok());
    let files: Vec<&Path> = std::iter::once(path.as_path())
        .chain(envelope.as_deref())
        .collect();
    let quick = fast::Fast::compile_in(source, root, &files, &leaf).ok();
    Ok(Schema { quick, fast, full })
}

fn build<F: Json>(
    source: &Source,
    root: &Path,
    path: &Path,
    schema: &Value,
) -> Result<Validator<F>, jsonschema::ValidationError<'static>> {
    // The `regex` engine (linear time) rather than the default backtracking one: patterns run
    // on every frame against strings the target chose, and a backtracking engine would let a
    // hostile server stall the generator. Profiles needing look-around or back-references
    // fail to compile, and `schemas lint` says where.
    jsonschema::options_for::<F>()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .with_base_uri(format!("file://{}", path.display()))
        .with_retriever(LocalFiles {
            source: source.clone(),
            root: root.to_path_buf(),
        })
        .build(schema)
}

/// Resolves `$ref`s to files inside the profile's folder, and nothing else: a profile never
/// reaches the network or the rest of the disk.
struct LocalFiles {
    source: Source,
    root: PathBuf,
}

impl Retrieve for LocalFiles {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.scheme().as_str() != "file" {
            return Err(format!("{uri}: only files inside the profile are resolved").into());
        }
        let path = self.source.canonical(&PathBuf::from(uri.path().as_str()))?;
        if !path.starts_with(&self.root) {
            return Err(format!("{}: outside the profile's folder", path.display()).into());
        }
        Ok(ecma::read_schema(&self.source, &path)?)
    }
}

#[cfg(test)]
pub(crate) mod tests;
