//! Loading a profile: `protocol.yaml` read, checked, and every schema it names compiled,
//! each step its own function; all problems are reported together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jsonschema::json::Json;
use jsonschema::{Draft, Retrieve, Uri, Validator};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::Value;

use super::engine::compiled::Compiled;
use super::engine::tape::TapeJson;
use super::engine::Parts;
use super::view::{self, View};
use super::{connect, ecma, pairing, rooms};
use super::{Conformance, Direction, Profile, ProfileError, Schema, Source};

/// `protocol.yaml`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    name: String,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    endpoints: Vec<String>,
    #[serde(default)]
    query: Option<Vec<String>>,
    discriminator: Vec<String>,
    #[serde(default)]
    correlation: Option<String>,
    #[serde(default)]
    envelope: Option<String>,
    #[serde(default)]
    pub(super) inbound: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) outbound: BTreeMap<String, String>,
    #[serde(default)]
    limits: BTreeMap<String, u64>,
    #[serde(default)]
    clock: Option<String>,
    #[serde(default)]
    replies: Vec<pairing::ReplyRule>,
    #[serde(default)]
    subscriptions: Option<rooms::RoomRules>,
    #[serde(default)]
    decisions: Decisions,
    #[serde(default)]
    connect: Option<connect::Connect>,
}

/// `decisions:` in `protocol.yaml`: squall's choices that cover the whole profile (a schema
/// marks its own with `x-squall-decision`; see [`view`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decisions {
    /// Why closed objects (`additionalProperties: false`, `unevaluatedProperties: false`)
    /// are squall's decision, when the document lists fields without forbidding others.
    #[serde(default)]
    closed: Option<String>,
}

/// Reads a profile's schema files from where they are: ECMA-262 patterns, then the view's
/// rules.
#[derive(Clone)]
pub(crate) struct Reader {
    source: Source,
    view: View,
}

impl Reader {
    /// Reads everything the profile on disk says.
    #[cfg(test)]
    pub(crate) fn strict() -> Reader {
        Reader::strict_in(&Source::Disk)
    }

    /// Reads everything the profile in `source` says.
    pub(crate) fn strict_in(source: &Source) -> Reader {
        Reader {
            source: source.clone(),
            view: View::Strict,
        }
    }

    /// Reads and parses a schema file as this view sees it.
    pub(crate) fn read(&self, path: &Path) -> Result<Value, String> {
        let mut v = ecma::read_schema(&self.source, path)?;
        self.view.apply(&mut v);
        Ok(v)
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
        Profile::load_view(source, dir, Conformance::Strict, None)
    }

    /// [`Profile::load`] holding frames to `conformance`: under [`Conformance::Document`]
    /// squall's decisions are not checked; under [`Conformance::Strict`] they are, and each
    /// violation says whether it broke the document or a decision.
    pub fn load_with(dir: &Path, conformance: Conformance) -> Result<Profile, ProfileError> {
        Profile::load_view(&Source::Disk, dir, conformance, None)
    }

    /// [`Profile::load_with`] from the files `source` holds.
    pub fn load_in_with(
        source: &Source,
        dir: &Path,
        conformance: Conformance,
    ) -> Result<Profile, ProfileError> {
        Profile::load_view(source, dir, conformance, None)
    }

    /// The profile as any server written to its document has it: squall-server's extensions
    /// (marked `x-squall-extension`) left out, kinds and properties alike. What a portable
    /// scenario may send and expect.
    pub fn load_portable(source: &Source, dir: &Path) -> Result<Profile, ProfileError> {
        Profile::load_view(source, dir, Conformance::Strict, Some(View::Portable))
    }

    fn load_view(
        source: &Source,
        dir: &Path,
        conformance: Conformance,
        view: Option<View>,
    ) -> Result<Profile, ProfileError> {
        let file = dir.join("protocol.yaml");
        let (raw, root) = read(source, dir, &file)?;
        let view = view.unwrap_or(View::of(conformance, raw.decisions.closed.is_some()));
        let mut problems = Vec::new();
        let schemas = compile_schemas(source, &root, &raw, view, &mut problems);
        check(&raw, &file, &mut problems);
        if !problems.is_empty() {
            return Err(ProfileError { problems });
        }
        Ok(assemble(raw, root, source, conformance, schemas))
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
}

/// Reads `dir/protocol.yaml` (`file`), and where the profile's folder is.
fn read(source: &Source, dir: &Path, file: &Path) -> Result<(RawProfile, PathBuf), ProfileError> {
    let problem = |at: &Path, e: &dyn std::fmt::Display| ProfileError {
        problems: vec![format!("{}: {e}", at.display())],
    };
    let text = source.read(file).map_err(|e| problem(file, &e))?;
    let raw: RawProfile = serde_saphyr::from_str(&text).map_err(|e| problem(file, &e))?;
    let root = source.canonical(dir).map_err(|e| problem(dir, &e))?;
    Ok((raw, root))
}

/// Every schema a profile names, compiled.
struct Schemas {
    envelope: Option<Schema>,
    inbound: FxHashMap<String, Schema>,
    outbound: FxHashMap<String, Schema>,
}

/// Compiles every schema `raw` names as `view` sees it (under [`View::Portable`], kinds that
/// are squall-server's extensions left out); a schema that fails is a problem.
fn compile_schemas(
    source: &Source,
    root: &Path,
    raw: &RawProfile,
    view: View,
    problems: &mut Vec<String>,
) -> Schemas {
    let closed = raw.decisions.closed.is_some();
    let views = Views {
        run: Reader {
            source: source.clone(),
            view,
        },
        document: Some(Reader {
            source: source.clone(),
            view: View::Document { open: closed },
        })
        .filter(|d| view == View::Strict && profile_differs(root, d)),
    };
    let portable = view == View::Portable;
    let mut compile_all = |map: &BTreeMap<String, String>| -> FxHashMap<String, Schema> {
        map.iter()
            .filter_map(|(kind, rel)| {
                if portable && is_extension_kind(&views.run, root, rel) {
                    return None;
                }
                match compile(root, rel, raw.envelope.as_deref(), &views) {
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
        .map(|rel| compile(root, rel, None, &views))
    {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            problems.push(e);
            None
        }
        None => None,
    };
    Schemas {
        envelope,
        inbound,
        outbound,
    }
}

/// What `protocol.yaml` (`file`) says that cannot hold: pointers that are not pointers, rules
/// naming kinds it does not list.
fn check(raw: &RawProfile, file: &Path, problems: &mut Vec<String>) {
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
        check_subscriptions(r, raw, file, problems);
    }
}

/// What `subscriptions:` says that cannot hold.
fn check_subscriptions(
    r: &rooms::RoomRules,
    raw: &RawProfile,
    file: &Path,
    problems: &mut Vec<String>,
) {
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
    for (name, f) in &r.filters {
        let mut stray: Vec<&String> = f
            .events
            .keys()
            .filter(|k| !r.rooms.contains_key(*k))
            .collect();
        stray.sort_unstable();
        if !stray.is_empty() {
            problems.push(format!(
                "{}: subscriptions: filters: {name}: kinds with no rooms: {stray:?} \
                 (list them under rooms: first)",
                file.display()
            ));
        }
        if !f.request.starts_with('/') {
            problems.push(format!(
                "{}: subscriptions: filters: {name}: request '{}' is not a JSON pointer",
                file.display(),
                f.request
            ));
        }
    }
}

/// The profile, from what was read and compiled, holding frames to `conformance`.
fn assemble(
    raw: RawProfile,
    root: PathBuf,
    source: &Source,
    conformance: Conformance,
    schemas: Schemas,
) -> Profile {
    // Under the document's rules only, a rule that is squall's reading is not applied.
    let applies =
        |decision: &Option<String>| decision.is_none() || conformance == Conformance::Strict;
    let mut subscriptions = raw.subscriptions.filter(|r| applies(&r.decision));
    if let Some(r) = &mut subscriptions {
        r.discriminator = raw.discriminator.clone();
    }
    let mut replies = raw.replies;
    replies.retain(|r| applies(&r.decision));
    for r in &mut replies {
        r.correlation = raw.correlation.clone();
    }
    Profile {
        name: raw.name,
        dir: root,
        document: raw.document,
        endpoints: raw.endpoints,
        query: raw.query,
        discriminator: raw.discriminator,
        correlation: raw.correlation,
        limits: raw.limits,
        clock: raw.clock,
        replies,
        subscriptions,
        conformance,
        closed_decision: raw.decisions.closed,
        connect: raw.connect,
        source: source.clone(),
        envelope: schemas.envelope,
        inbound: schemas.inbound,
        outbound: schemas.outbound,
        parts: Parts::default(),
    }
}

/// The readers a profile is compiled with: the run's view, and under strict conformance the
/// document's too, to tell whose rule a violation broke.
struct Views {
    run: Reader,
    document: Option<Reader>,
}

/// Whether a kind's schema file marks the kind itself a squall-server extension.
fn is_extension_kind(reader: &Reader, root: &Path, rel: &str) -> bool {
    ecma::read_schema(&reader.source, &root.join(rel)).is_ok_and(|s| view::is_extension(&s))
}

/// Compiles one schema file of a profile, for both representations; the plain checks take
/// the profile's envelope in too, so a frame's shared fields are checked once.
fn compile(
    root: &Path,
    rel: &str,
    envelope: Option<&str>,
    views: &Views,
) -> Result<Schema, String> {
    let path = root.join(rel);
    let shown = path.display();
    let source = &views.run.source;
    let raw = ecma::read_schema(source, &path).map_err(|e| format!("{shown}: {e}"))?;
    let mut marks = Vec::new();
    view::marker_problems(&raw, &format!("{shown}#"), &mut marks);
    if !marks.is_empty() {
        return Err(marks.join("\n"));
    }
    let schema = views.run.read(&path).map_err(|e| format!("{shown}: {e}"))?;
    let path = source
        .canonical(&path)
        .map_err(|e| format!("{shown}: {e}"))?;
    let on_tape =
        build::<TapeJson>(root, &path, &schema, &views.run).map_err(|e| format!("{shown}: {e}"))?;
    let on_value = build(root, &path, &schema, &views.run).map_err(|e| format!("{shown}: {e}"))?;
    let document = match &views.document {
        Some(reader) => {
            let doc = reader.read(&path).map_err(|e| format!("{shown}: {e}"))?;
            Some(build(root, &path, &doc, reader).map_err(|e| format!("{shown}: {e}"))?)
        }
        None => None,
    };
    let leaf = |one: &Value| build::<TapeJson>(root, &path, one, &views.run).ok();
    // A schema the plain checks cannot express keeps the general validator: slower, not wrong.
    let envelope = envelope.and_then(|e| source.canonical(&root.join(e)).ok());
    let files: Vec<&Path> = std::iter::once(path.as_path())
        .chain(envelope.as_deref())
        .collect();
    let compiled = Compiled::compile_read(source, root, &files, &leaf, &|p| views.run.read(p)).ok();
    Ok(Schema {
        compiled,
        on_tape,
        on_value,
        document,
    })
}

/// Whether the document's view of a profile differs from the strict one in any schema file:
/// if not, nothing can break a decision and no second validator is compiled.
fn profile_differs(root: &Path, document: &Reader) -> bool {
    let strict = Reader::strict_in(&document.source);
    walk_json(&document.source, root).iter().any(|f| {
        let a = strict.read(f);
        a.is_ok() && a != document.read(f)
    })
}

/// Every `.json` file under a profile's folder but its examples.
pub(crate) fn walk_json(source: &Source, root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = source.list(&dir) else {
            continue;
        };
        for p in entries {
            if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            } else if p.file_name().is_some_and(|n| n != "examples") && !source.is_file(&p) {
                todo.push(p);
            }
        }
    }
    out
}

pub(crate) fn build<F: Json>(
    root: &Path,
    path: &Path,
    schema: &Value,
    reader: &Reader,
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
            reader: reader.clone(),
            root: root.to_path_buf(),
        })
        .build(schema)
}

/// Resolves `$ref`s to files inside the profile's folder, and nothing else: a profile never
/// reaches the network or the rest of the disk.
struct LocalFiles {
    reader: Reader,
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
        let path = self
            .reader
            .source
            .canonical(&PathBuf::from(uri.path().as_str()))?;
        if !path.starts_with(&self.root) {
            return Err(format!("{}: outside the profile's folder", path.display()).into());
        }
        Ok(self.reader.read(&path)?)
    }
}
