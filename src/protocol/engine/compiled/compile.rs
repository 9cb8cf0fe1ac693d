//! Compiling a profile's schema files into [`Compiled`] checks, or saying why they cannot
//! be ([`Unsupported`]): `$ref`s resolved to arena indices, leaf keywords handed to the
//! jsonschema crate one at a time, patterns built into DFAs, a kind's schema and the
//! envelope merged into one pass over a frame's members.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jsonschema::Validator;
use regex_automata::dfa::{dense, StartKind};
use regex_automata::nfa::thompson;
use serde_json::{Map, Value};

use super::super::tape::TapeJson;
use super::{
    Additional, Checks, Compiled, ObjectRule, Op, ARRAY, BOOLEAN, INTEGER, NULL, NUMBER, OBJECT,
    STRING,
};
use crate::protocol::source::Source;

/// Keywords that assert nothing (2020-12 annotations and containers).
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$comment",
    "$defs",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Leaf keywords handed whole to the jsonschema crate, one small validator each.
const DELEGATED: &[&str] = &[
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "uniqueItems",
    "contentEncoding",
    "contentMediaType",
];

/// Builds one jsonschema validator for a schema made of one leaf keyword.
pub type Delegate<'b> = &'b dyn Fn(&Value) -> Option<Validator<TapeJson>>;

/// Reads a schema file as the profile's view of it (see [`super::view`]).
pub type Read<'b> = &'b dyn Fn(&Path) -> Result<Value, String>;

/// Why a schema is left to the jsonschema crate (read where a test fails, through `Debug`).
#[derive(Debug)]
pub struct Unsupported(#[allow(dead_code)] pub String);

struct Compiler<'b> {
    source: Source,
    root: PathBuf,
    files: HashMap<PathBuf, Value>,
    done: HashMap<(PathBuf, String), usize>,
    busy: Vec<(PathBuf, String)>,
    nodes: Vec<Checks>,
    delegate: Delegate<'b>,
    read: Read<'b>,
    /// Patterns compiled so far (each gets its own slot in a [`Recent`]).
    patterns: u32,
}

impl Compiled {
    /// [`Compiled::compile_read`] for a profile on disk, read as it is.
    #[cfg(test)]
    pub fn compile(
        root: &Path,
        files: &[&Path],
        delegate: Delegate,
    ) -> Result<Compiled, Unsupported> {
        let read = |p: &Path| crate::protocol::Reader::strict().read(p);
        Compiled::compile_read(&Source::Disk, root, files, delegate, &read)
    }

    /// Compiles the schemas in `files` (inside the profile folder `root`, its files in
    /// `source`) into one: a frame must meet all of them (a kind's schema and the profile's
    /// envelope). Or says why not. Each file is read through `read` (a view of the profile,
    /// see [`crate::protocol::view`]).
    pub fn compile_read(
        source: &Source,
        root: &Path,
        files: &[&Path],
        delegate: Delegate,
        read: Read,
    ) -> Result<Compiled, Unsupported> {
        let mut c = Compiler {
            source: source.clone(),
            root: root.to_path_buf(),
            files: HashMap::new(),
            done: HashMap::new(),
            busy: Vec::new(),
            nodes: Vec::new(),
            delegate,
            read,
            patterns: 0,
        };
        c.nodes.push(Checks::default());
        let all = files
            .iter()
            .map(|f| c.target(f.to_path_buf(), String::new()))
            .collect::<Result<Vec<_>, _>>()?;
        c.nodes[0].ops.push(Op::All(all));
        let mut shared = vec![false; c.nodes.len()];
        for &n in c.done.values() {
            shared[n] = true;
        }
        static COMPILED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let mut compiled = Compiled {
            id: COMPILED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            nodes: c.nodes,
            shared,
            deep: Vec::new(),
        };
        compiled.link();
        compiled.merge_root();
        compiled.deep = compiled.nodes.iter().map(Checks::is_deep).collect();
        Ok(compiled)
    }

    /// A kind's schema and the envelope both describe the frame's top-level object: when
    /// each is just a type and an object rule, the root gets one rule that asks both of
    /// every member, so the frame's members are walked once, not once per schema.
    fn merge_root(&mut self) {
        let [Op::All(list)] = self.nodes[0].ops.as_slice() else {
            return;
        };
        let [a, b] = list[..] else {
            return;
        };
        // (`type` bits if the schema has any, the object rule), when that is all it has.
        fn parts(ops: &[Op]) -> Option<(Option<u8>, Option<&ObjectRule>)> {
            let mut types = None;
            let mut rule = None;
            for op in ops {
                match op {
                    Op::Types(t) => types = Some(types.unwrap_or(u8::MAX) & t),
                    Op::Object(r) => rule = Some(r),
                    _ => return None,
                }
            }
            Some((types, rule))
        }
        let (Some((ta, Some(ra))), Some((tb, Some(rb)))) =
            (parts(&self.nodes[a].ops), parts(&self.nodes[b].ops))
        else {
            return;
        };
        let (ra, rb) = (ra.clone(), rb.clone());
        let Some(merged) = self.both(&ra, &rb) else {
            return;
        };
        let types = match (ta, tb) {
            (Some(x), Some(y)) => Some(x & y),
            (x, None) | (None, x) => x,
        };
        self.nodes[0].ops = types.map(Op::Types).into_iter().collect();
        self.nodes[0].ops.push(Op::Object(merged));
        self.shared.resize(self.nodes.len(), false);
    }

    /// A new node of one op.
    fn add(&mut self, op: Op) -> usize {
        self.nodes.push(Checks { ops: vec![op] });
        self.nodes.len() - 1
    }

    /// One object rule meaning `ra` and `rb` together (`None`: over 64 required names).
    /// New nodes it needs (a member both rules constrain) are added to the arena.
    fn both(&mut self, ra: &ObjectRule, rb: &ObjectRule) -> Option<ObjectRule> {
        let required = required_by_both(ra, rb);
        if required.len() > 64 {
            return None;
        }
        let bit = |name: &str| required.iter().position(|r| *r == name).map(|i| i as u32);
        let mut names: Vec<&str> = ra.props.iter().map(|(n, _, _)| &**n).collect();
        for (n, _, _) in &rb.props {
            if !names.contains(&&**n) {
                names.push(n);
            }
        }
        let mut props = Vec::new();
        for name in names {
            let node = match (ra.asks(name), rb.asks(name)) {
                (Err(()), _) | (_, Err(())) => Some(self.add(Op::Never)),
                (Ok(x), Ok(None)) | (Ok(None), Ok(x)) => x,
                (Ok(Some(x)), Ok(Some(y))) if x == y => Some(x),
                (Ok(Some(x)), Ok(Some(y))) => Some(self.add(Op::All(vec![x, y]))),
            };
            props.push((Box::<str>::from(name), node, bit(name)));
        }
        let additional = match (ra.additional, rb.additional) {
            (Additional::None, _) | (_, Additional::None) => Additional::None,
            (Additional::Any, x) | (x, Additional::Any) => x,
            (Additional::Each(x), Additional::Each(y)) if x == y => Additional::Each(x),
            (Additional::Each(x), Additional::Each(y)) => {
                Additional::Each(self.add(Op::All(vec![x, y])))
            }
        };
        let extra_required = required
            .iter()
            .enumerate()
            .filter(|(_, r)| !props.iter().any(|(p, _, _)| **p == ***r))
            .map(|(i, r)| (Box::<str>::from(*r), i as u32))
            .collect();
        let required_bits = match required.len() {
            64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        Some(ObjectRule {
            props,
            additional,
            extra_required,
            required_bits,
        })
    }

    /// Points every use of a node that is nothing but one `$ref` (most property schemas
    /// of a profile) straight at the target: one call per value instead of two.
    fn link(&mut self) {
        let alias = |nodes: &[Checks], mut n: usize| {
            // Bounded: `$ref` cycles are refused at compile time, but stay safe anyway.
            for _ in 0..nodes.len() {
                match nodes[n].ops.as_slice() {
                    [Op::All(list)] if list.len() == 1 => n = list[0],
                    _ => break,
                }
            }
            n
        };
        for at in 0..self.nodes.len() {
            let mut ops = std::mem::take(&mut self.nodes[at].ops);
            for op in &mut ops {
                let nodes = &self.nodes;
                let fix = |n: &mut usize| *n = alias(nodes, *n);
                match op {
                    Op::Each(n) | Op::Not(n) => fix(n),
                    Op::All(l) | Op::Any(l) | Op::One(l) => l.iter_mut().for_each(fix),
                    Op::Cond(i, t, e) => {
                        fix(i);
                        t.iter_mut().chain(e.iter_mut()).for_each(fix);
                    }
                    Op::Object(rule) => {
                        rule.props
                            .iter_mut()
                            .filter_map(|p| p.1.as_mut())
                            .for_each(fix);
                        if let Additional::Each(n) = &mut rule.additional {
                            fix(n);
                        }
                    }
                    _ => {}
                }
            }
            self.nodes[at].ops = ops;
        }
    }
}

impl Compiler<'_> {
    /// The node for the schema at `pointer` in `file`, compiled once.
    fn target(&mut self, file: PathBuf, pointer: String) -> Result<usize, Unsupported> {
        // One spelling per file, so a cycle through `../x.json` and `x.json` is still seen.
        let file = self
            .source
            .canonical(&file)
            .map_err(|e| Unsupported(e.to_string()))?;
        if !file.starts_with(&self.root) {
            return Err(Unsupported("a $ref outside the profile".into()));
        }
        let key = (file, pointer);
        if let Some(&n) = self.done.get(&key) {
            return Ok(n);
        }
        if self.busy.contains(&key) {
            return Err(Unsupported(format!("a $ref cycle through {}", key.1)));
        }
        if !self.files.contains_key(&key.0) {
            let v = (self.read)(&key.0).map_err(Unsupported)?;
            self.files.insert(key.0.clone(), v);
        }
        let schema = self.files[&key.0]
            .pointer(&key.1)
            .cloned()
            .ok_or_else(|| Unsupported(format!("no {} in {}", key.1, key.0.display())))?;
        let at = self.nodes.len();
        self.nodes.push(Checks::default());
        self.busy.push(key.clone());
        let checks = self.schema(&key.0, &schema)?;
        self.busy.pop();
        self.nodes[at] = checks;
        self.done.insert(key, at);
        Ok(at)
    }

    /// A subschema of `file` (not a `$ref` target itself): a new node.
    fn sub(&mut self, file: &Path, schema: &Value) -> Result<usize, Unsupported> {
        let at = self.nodes.len();
        self.nodes.push(Checks::default());
        self.nodes[at] = self.schema(file, schema)?;
        Ok(at)
    }

    fn schema(&mut self, file: &Path, schema: &Value) -> Result<Checks, Unsupported> {
        let obj = match schema {
            Value::Bool(true) => return Ok(Checks::default()),
            Value::Bool(false) => {
                return Ok(Checks {
                    ops: vec![Op::Never],
                })
            }
            Value::Object(o) => o,
            _ => return Err(Unsupported("a schema that is not an object".into())),
        };
        let mut found = Found::default();
        for (k, v) in obj {
            self.keyword(file, obj, k, v, &mut found)?;
        }
        if ["properties", "additionalProperties", "required"]
            .iter()
            .any(|k| obj.contains_key(*k))
        {
            found.ops.push(Op::Object(self.object(file, obj)?));
        }
        Ok(found.into_checks())
    }

    /// One keyword `k` of the schema object `obj`, with its value `v`, into `found`.
    fn keyword(
        &mut self,
        file: &Path,
        obj: &Map<String, Value>,
        k: &str,
        v: &Value,
        found: &mut Found,
    ) -> Result<(), Unsupported> {
        match k {
            k if ANNOTATIONS.contains(&k) => {}
            k if DELEGATED.contains(&k) => {
                let one = Value::Object(Map::from_iter([(k.to_string(), v.clone())]));
                let built = (self.delegate)(&one)
                    .ok_or_else(|| Unsupported(format!("{k} did not compile alone")))?;
                found.delegated.push(Op::Delegated(built));
            }
            "pattern" => found.delegated.push(self.pattern(v)?),
            "type" => found.ops.push(Op::Types(types(v)?)),
            "const" => found.ops.push(Op::Const(v.clone())),
            "enum" => found
                .ops
                .push(Op::Enum(v.as_array().ok_or_else(bad(k))?.clone())),
            "minLength" => found.bounds[0].0 = count(k, v)?,
            "maxLength" => found.bounds[0].1 = count(k, v)?,
            "minItems" => found.bounds[1].0 = count(k, v)?,
            "maxItems" => found.bounds[1].1 = count(k, v)?,
            "minProperties" => found.bounds[2].0 = count(k, v)?,
            "maxProperties" => found.bounds[2].1 = count(k, v)?,
            "items" if v.is_object() || v.is_boolean() => {
                found.ops.push(Op::Each(self.sub(file, v)?))
            }
            "$ref" => {
                let (f, p) = resolve(file, v.as_str().ok_or_else(bad(k))?)?;
                found.ops.push(Op::All(vec![self.target(f, p)?]));
            }
            "allOf" => found.ops.push(Op::All(self.list(file, v)?)),
            "anyOf" => found.ops.push(Op::Any(self.list(file, v)?)),
            "oneOf" => found.ops.push(Op::One(self.list(file, v)?)),
            "not" => found.ops.push(Op::Not(self.sub(file, v)?)),
            "if" => {
                let then = obj.get("then").map(|t| self.sub(file, t)).transpose()?;
                let other = obj.get("else").map(|e| self.sub(file, e)).transpose()?;
                found.ops.push(Op::Cond(self.sub(file, v)?, then, other));
            }
            // Taken with `if` (and meaningless without it).
            "then" | "else" => {}
            "properties" | "additionalProperties" | "required" => {}
            "propertyNames" if !v.to_string().contains("$ref") => {
                let one = Value::Object(Map::from_iter([(k.to_string(), v.clone())]));
                let built = (self.delegate)(&one).ok_or_else(|| Unsupported(k.into()))?;
                found.delegated.push(Op::Delegated(built));
            }
            other => return Err(Unsupported(format!("keyword {other}"))),
        }
        Ok(())
    }

    /// A pattern the jsonschema crate would run as a regex becomes a DFA over the same
    /// translated expression; one it has a literal shortcut for (a prefix, an alternation)
    /// keeps that shortcut, through the crate.
    fn pattern(&mut self, v: &Value) -> Result<Op, Unsupported> {
        let p = v.as_str().ok_or_else(bad("pattern"))?;
        let delegate = || {
            let one = Value::Object(Map::from_iter([("pattern".to_string(), v.clone())]));
            (self.delegate)(&one)
                .map(Op::Delegated)
                .ok_or_else(|| Unsupported(format!("pattern {p}")))
        };
        if jsonschema_regex::analyze_pattern(p).is_some() {
            return delegate();
        }
        let Ok(translated) = jsonschema_regex::to_rust_regex(p) else {
            return delegate();
        };
        // Both start kinds: an anchored walk for patterns that begin with `^` (the same
        // question there, and a plain loop), the unanchored search for the rest.
        let built = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .dfa_size_limit(Some(1 << 20))
                    .start_kind(StartKind::Both),
            )
            .build(&translated);
        match built {
            Ok(dfa) => {
                let nfa = thompson::NFA::new(&translated);
                let anchored = nfa.is_ok_and(|n| n.is_always_start_anchored());
                self.patterns += 1;
                Ok(Op::Pattern(Box::new(dfa), anchored, self.patterns))
            }
            // Too large, or a construct a DFA cannot run (Unicode word boundaries).
            Err(_) => delegate(),
        }
    }

    fn list(&mut self, file: &Path, v: &Value) -> Result<Vec<usize>, Unsupported> {
        let items = v.as_array().ok_or_else(bad("a list keyword"))?;
        items.iter().map(|s| self.sub(file, s)).collect()
    }

    fn object(&mut self, file: &Path, obj: &Map<String, Value>) -> Result<ObjectRule, Unsupported> {
        let required: Vec<&str> = match obj.get("required") {
            None => Vec::new(),
            Some(r) => r
                .as_array()
                .and_then(|a| a.iter().map(Value::as_str).collect())
                .ok_or_else(bad("required"))?,
        };
        if required.len() > 64 {
            return Err(Unsupported("more than 64 required properties".into()));
        }
        let bit = |name: &str| required.iter().position(|r| *r == name).map(|i| i as u32);
        let mut rule = ObjectRule::default();
        let props = obj.get("properties").map(Value::as_object);
        let props = props.map(|p| p.ok_or_else(bad("properties"))).transpose()?;
        for (name, schema) in props.into_iter().flatten() {
            let node = match schema {
                Value::Bool(true) => None,
                s => Some(self.sub(file, s)?),
            };
            rule.props.push((name.as_str().into(), node, bit(name)));
        }
        for (i, r) in required.iter().enumerate() {
            rule.required_bits |= 1 << i;
            if !rule.props.iter().any(|(p, _, _)| **p == **r) {
                rule.extra_required.push(((*r).into(), i as u32));
            }
        }
        rule.additional = match obj.get("additionalProperties") {
            None | Some(Value::Bool(true)) => Additional::Any,
            Some(Value::Bool(false)) => Additional::None,
            Some(s) => Additional::Each(self.sub(file, s)?),
        };
        Ok(rule)
    }
}

/// What one schema's keywords compiled to, before they are put in order.
struct Found {
    ops: Vec<Op>,
    /// Length, item and property bounds: they come in pairs; an absent side is open.
    bounds: [(u64, u64); 3],
    /// The validator calls (formats, patterns, bounds).
    delegated: Vec<Op>,
}

impl Default for Found {
    fn default() -> Self {
        Found {
            ops: Vec::new(),
            bounds: [(0, u64::MAX); 3],
            delegated: Vec::new(),
        }
    }
}

impl Found {
    /// The checks, cheapest first.
    fn into_checks(self) -> Checks {
        let Found {
            mut ops,
            bounds,
            delegated,
        } = self;
        let open = (0, u64::MAX);
        let [len, items, props] = bounds;
        if len != open {
            ops.push(Op::Length(len.0, len.1));
        }
        if items != open {
            ops.push(Op::Items(items.0, items.1));
        }
        if props != open {
            ops.push(Op::Props(props.0, props.1));
        }
        // The validator calls last: a frame that fails a plain check never pays for them.
        ops.extend(delegated);
        // Cheap type and value checks first, then the subschemas.
        ops.sort_by_key(|op| match op {
            Op::Never | Op::Types(_) | Op::Const(_) | Op::Enum(_) => 0,
            Op::Length(..) | Op::Items(..) | Op::Props(..) => 1,
            Op::Delegated(_) | Op::Pattern(..) => 3,
            _ => 2,
        });
        Checks { ops }
    }
}

/// The names either rule requires, each once, in order.
fn required_by_both<'r>(ra: &'r ObjectRule, rb: &'r ObjectRule) -> Vec<&'r str> {
    let mut names: Vec<&str> = Vec::new();
    for r in [ra, rb] {
        let bits = r.props.iter().filter_map(|(n, _, b)| b.map(|_| &**n));
        let extra = r.extra_required.iter().map(|(n, _)| &**n);
        for n in bits.chain(extra) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

impl ObjectRule {
    /// What the rule asks of a member it may or may not list: `Err(())` when it forbids it.
    fn asks(&self, name: &str) -> Result<Option<usize>, ()> {
        match self.props.iter().find(|(p, _, _)| **p == *name) {
            Some((_, s, _)) => Ok(*s),
            None => match self.additional {
                Additional::Any => Ok(None),
                Additional::None => Err(()),
                Additional::Each(s) => Ok(Some(s)),
            },
        }
    }
}

fn bad(k: &str) -> impl FnOnce() -> Unsupported + '_ {
    move || Unsupported(format!("{k} of an unexpected form"))
}

fn count(k: &str, v: &Value) -> Result<u64, Unsupported> {
    v.as_u64().ok_or_else(bad(k))
}

fn types(v: &Value) -> Result<u8, Unsupported> {
    let one = |t: &Value| match t.as_str() {
        Some("null") => Ok(NULL),
        Some("boolean") => Ok(BOOLEAN),
        Some("integer") => Ok(INTEGER),
        Some("number") => Ok(NUMBER),
        Some("string") => Ok(STRING),
        Some("array") => Ok(ARRAY),
        Some("object") => Ok(OBJECT),
        _ => Err(Unsupported(format!("type {t}"))),
    };
    match v {
        Value::Array(list) => list.iter().try_fold(0, |acc, t| Ok(acc | one(t)?)),
        t => one(t),
    }
}

/// `../defs.json#/$defs/uuid` from `file`: the target file and the JSON pointer in it.
fn resolve(file: &Path, reference: &str) -> Result<(PathBuf, String), Unsupported> {
    let (path, fragment) = reference.split_once('#').unwrap_or((reference, ""));
    if path.contains(':')
        || fragment.contains('%')
        || !(fragment.is_empty() || fragment.starts_with('/'))
    {
        return Err(Unsupported(format!("$ref {reference}")));
    }
    let target = match path {
        "" => file.to_path_buf(),
        rel => file.parent().unwrap_or(Path::new("/")).join(rel),
    };
    Ok((target, fragment.to_string()))
}
