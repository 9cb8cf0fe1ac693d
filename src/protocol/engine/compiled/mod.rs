//! A profile's schemas compiled a second time into a tree of plain checks that run straight
//! on a frame's tape: the per-frame question "is it valid?" at a fraction of a general
//! validator's cost (no dynamic dispatch per keyword, one pass over an object's members for
//! `properties`, `additionalProperties` and `required` together, `$ref`s resolved to arena
//! indices once).
//!
//! Soundness comes first. The structural keywords (`type`, `const`, `enum`, `properties`,
//! `required`, `additionalProperties`, `items`, length and count bounds, `$ref`, `allOf`,
//! `anyOf`, `oneOf`, `not`, `if`/`then`/`else`) are evaluated here as 2020-12 defines them;
//! every leaf keyword whose details belong to a validator (`format`, `pattern`, numeric bounds,
//! `multipleOf`, `uniqueItems`, content, `propertyNames`) is compiled by the jsonschema crate
//! on its own and called, so formats and patterns mean exactly what they mean on the `Value`
//! path. A schema using anything else (`$id`, `patternProperties`, `unevaluated*`, an unknown
//! keyword, a `$ref` cycle) is not compiled here at all: the caller then uses the jsonschema
//! crate's own validator on the tape. And a frame found invalid here is always re-checked on
//! the `Value` path, which gives the verdict and its details.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jsonschema::json::Node;
use jsonschema::Validator;
use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::nfa::thompson;
use regex_automata::util::primitives::StateID;
use regex_automata::{Anchored, Input};
use serde_json::{Map, Value};

use super::marks::Marks;
use super::snapshot::{Changed, Snapshot};
use super::source::Source;
use super::tape::{same, TapeJson, TapeNode};
use super::Direction;

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

/// JSON types as bits.
const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const INTEGER: u8 = 4;
const NUMBER: u8 = 8 | INTEGER;
const STRING: u8 = 16;
const ARRAY: u8 = 32;
const OBJECT: u8 = 64;

/// A compiled schema: an arena of nodes, the first one the root.
pub struct Fast {
    /// Distinct per compiled schema: keys its patterns' walks in a [`Recent`].
    id: u32,
    nodes: Vec<Checks>,
    /// Nodes that are `$ref` targets: a frame meeting one at a value once (the envelope's
    /// `timestamp` and the kind's own) is not checked there again.
    shared: Vec<bool>,
    /// Nodes whose verdict on an object or array depends on more than its structure and
    /// its members' own verdicts (`const`, `enum`, combinators, delegated keywords).
    deep: Vec<bool>,
}

/// What one validation found valid at shared nodes: (node, tape index) pairs, a few; and
/// the caller's record of recent pattern walks, if it keeps one.
#[derive(Default)]
struct Memo<'r> {
    seen: [(u32, u32); 8],
    len: usize,
    recent: Option<&'r mut Walks>,
    /// While a frame's checks are being recorded for its snapshot: what they met.
    record: Option<Record<'r>>,
}

/// The checks a valid frame met at its scalars: (tape index, node), each the outermost
/// node met at that scalar (re-running it re-runs what it contains), and whether the
/// frame's verdict is theirs alone (no node at an object or array looked deeper).
struct Record<'r> {
    checks: &'r mut Vec<(u32, u32)>,
    at: u32,
    usable: bool,
}

/// Strings no longer than this have their pattern walks kept for the next string.
const WALK_KEPT: usize = 256;

/// The last pattern walks of one connection, by (schema, pattern): successive frames repeat
/// most of a string (a connection's client id, the date and hour of a timestamp), and a
/// DFA's walk over a shared prefix is the same, so the next walk resumes where the strings
/// part. Kept per connection (per VU), so no lock and no sharing.
///
/// It also keeps, per schema, the last frame that passed it (its second frame on, so a
/// connection that sees a kind once keeps nothing for it): a frame with that frame's
/// structure is decided by the checks on the scalars it changed.
#[derive(Debug, Default)]
pub struct Recent {
    walks: Walks,
    /// By schema id; few (the kinds one connection sees).
    repeats: Vec<(u32, Repeat)>,
    /// Per direction, the slot in `repeats` of the last frame that passed with a snapshot
    /// ready, whose landmarks were noted ([`Recent::landed`]).
    last: [Option<usize>; 2],
    /// The slot the last [`Fast::is_valid_like`] passed a frame with, its snapshot ready.
    used: Option<usize>,
    /// Frames decided by their changed scalars (tests check the shortcut is taken).
    #[cfg(test)]
    pub(crate) repeated: usize,
    /// Frames found like the last in their direction (tests check landmarks are reused).
    #[cfg(test)]
    pub(crate) likes: usize,
    /// Never find a frame like the last (tests compare with the landmarks looked up).
    #[cfg(test)]
    pub(crate) blind: bool,
}

/// Pattern walks by key; few (the patterns one connection's frames meet), so a list beats
/// a hash.
#[derive(Debug, Default)]
struct Walks(Vec<(u64, Walk)>);

/// One schema's last valid frame on a connection, and the checks that decided it at its
/// scalars. `ready` once there is such a frame.
#[derive(Debug, Default)]
struct Repeat {
    ready: bool,
    snapshot: Snapshot,
    checks: Vec<(u32, u32)>,
    /// The snapshot's landmarks, once noted (unset whenever the snapshot is retaken).
    marks: Option<Marks>,
}

/// A frame with the structure of the last frame that passed in its direction
/// ([`Recent::like_last`]): what it changed, and where that frame's landmarks were.
#[derive(Debug, Clone, Copy)]
pub struct Like {
    slot: usize,
    changed: Changed,
    marks: Marks,
}

impl Like {
    /// The frame's landmarks: where that frame had them (a lookup depends only on the
    /// structure, so they hold whatever the frame's kind).
    pub fn marks(&self) -> Marks {
        self.marks
    }
}

/// Patterns a [`Recent`] keeps walks for; any more are walked afresh.
const RECENT_PATTERNS: usize = 32;

/// Schemas a [`Recent`] keeps a last frame for; any more are checked in full.
const RECENT_KINDS: usize = 16;

impl Recent {
    /// Compares a frame with the last one that passed in `dir`: `Some` when it has that
    /// frame's structure (then it is read at that frame's landmarks, and, when of the same
    /// kind, decided by its changed scalars without being compared again).
    pub fn like_last(&mut self, dir: Direction, doc: &super::tape::Doc) -> Option<Like> {
        #[cfg(test)]
        if self.blind {
            return None;
        }
        let slot = self.last[dir as usize]?;
        let repeat = &self.repeats[slot].1;
        let marks = repeat.marks.filter(|_| repeat.ready)?;
        let like = Like {
            slot,
            changed: repeat.snapshot.changes(doc)?,
            marks,
        };
        #[cfg(test)]
        {
            self.likes += 1;
        }
        Some(like)
    }

    /// Notes, after a frame passed, its landmarks for the snapshot that decided it (and makes
    /// that the last in `dir`). Nothing when no snapshot decided it.
    pub fn landed(&mut self, dir: Direction, marks: Option<Marks>) {
        let Some(slot) = self.used.take() else {
            self.last[dir as usize] = None;
            return;
        };
        let repeat = &mut self.repeats[slot].1;
        if repeat.marks.is_none() {
            repeat.marks = marks;
        }
        self.last[dir as usize] = repeat.marks.is_some().then_some(slot);
    }

    /// Forgets which snapshot decided the last frame (before the next is checked).
    pub fn unused(&mut self) {
        self.used = None;
    }
}

impl Walks {
    fn walk(&mut self, key: u64) -> Option<&mut Walk> {
        match self.0.iter().position(|(k, _)| *k == key) {
            Some(i) => Some(&mut self.0[i].1),
            None if self.0.len() < RECENT_PATTERNS => {
                self.0.push((key, Walk::default()));
                self.0.last_mut().map(|(_, w)| w)
            }
            None => None,
        }
    }
}

/// One pattern's last walk: the string, the state before each of its bytes, and where the
/// walk stopped early (the byte index and the answer), if it did.
#[derive(Debug, Default)]
struct Walk {
    text: Vec<u8>,
    states: Vec<StateID>,
    stopped: Option<(usize, bool)>,
}

impl<'r> Memo<'r> {
    fn walking(walks: &'r mut Walks) -> Self {
        Memo {
            recent: Some(walks),
            ..Memo::default()
        }
    }

    fn holds(&self, at: usize, node: TapeNode) -> bool {
        let key = (at as u32, node.index());
        self.seen[..self.len].contains(&key)
    }

    fn add(&mut self, at: usize, node: TapeNode) {
        if self.len < self.seen.len() {
            self.seen[self.len] = (at as u32, node.index());
            self.len += 1;
        }
    }
}

/// Builds one jsonschema validator for a schema made of one leaf keyword.
pub type Delegate<'b> = &'b dyn Fn(&Value) -> Option<Validator<TapeJson>>;

/// Reads a schema file as the profile's view of it (see [`super::view`]).
pub type Read<'b> = &'b dyn Fn(&Path) -> Result<Value, String>;

/// One schema: its assertions, only those present, cheapest first.
#[derive(Default)]
struct Checks {
    ops: Vec<Op>,
}

impl Checks {
    /// Whether, met at an object or array, these checks ask more of it than its structure
    /// and (through `properties`, `items` and the like) its members' own checks.
    fn is_deep(&self) -> bool {
        self.ops.iter().any(|op| {
            matches!(
                op,
                Op::Const(_)
                    | Op::Enum(_)
                    | Op::Delegated(_)
                    | Op::Any(_)
                    | Op::One(_)
                    | Op::Not(_)
                    | Op::Cond(..)
            )
        })
    }
}

enum Op {
    /// `false` as a schema.
    Never,
    Types(u8),
    Const(Value),
    Enum(Vec<Value>),
    /// `minLength` / `maxLength`, in code points.
    Length(u64, u64),
    /// `minItems` / `maxItems`.
    Items(u64, u64),
    /// `minProperties` / `maxProperties`.
    Props(u64, u64),
    Object(ObjectRule),
    Each(usize),
    All(Vec<usize>),
    Any(Vec<usize>),
    One(Vec<usize>),
    Not(usize),
    Cond(usize, Option<usize>, Option<usize>),
    Delegated(Validator<TapeJson>),
    /// `pattern`, as a DFA built once: no lazy cache to share, so no lock between workers.
    /// With whether every match starts at the string's start.
    Pattern(Box<dense::DFA<Vec<u32>>>, bool, u32),
}

#[derive(Default, Clone)]
struct ObjectRule {
    /// Property name → schema node and the bit of `required` it fills, if it is required.
    props: Vec<(Box<str>, Option<usize>, Option<u32>)>,
    /// `None`: any; `Some(None)`: none (false); `Some(Some(n))`: each must meet node n.
    additional: Option<Option<usize>>,
    /// Required names that `properties` does not list, with their bits.
    extra_required: Vec<(Box<str>, u32)>,
    required_bits: u64,
}

/// Why a schema is left to the jsonschema crate.
#[derive(Debug)]
pub struct Unsupported(pub String);

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

impl Fast {
    /// Compiles the schemas in `files` (inside the profile folder `root`) into one: a frame
    /// must meet all of them (a kind's schema and the profile's envelope). Or says why not.
    pub fn compile(root: &Path, files: &[&Path], delegate: Delegate) -> Result<Fast, Unsupported> {
        Fast::compile_in(&Source::Disk, root, files, delegate)
    }

    /// [`Fast::compile`] for a profile whose files `source` holds.
    pub fn compile_in(
        source: &Source,
        root: &Path,
        files: &[&Path],
        delegate: Delegate,
    ) -> Result<Fast, Unsupported> {
        Fast::compile_read(source, root, files, delegate, &|p| {
            super::Reader::strict_in(source).read(p)
        })
    }

    /// [`Fast::compile_in`] reading each file through `read` (a view of the profile, see
    /// [`super::view`]).
    pub fn compile_read(
        source: &Source,
        root: &Path,
        files: &[&Path],
        delegate: Delegate,
        read: Read,
    ) -> Result<Fast, Unsupported> {
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
        let mut fast = Fast {
            id: COMPILED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            nodes: c.nodes,
            shared,
            deep: Vec::new(),
        };
        fast.link();
        fast.merge_root();
        fast.deep = fast.nodes.iter().map(Checks::is_deep).collect();
        Ok(fast)
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
        let required: Vec<&str> = {
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
        };
        if required.len() > 64 {
            return None;
        }
        let bit = |name: &str| required.iter().position(|r| *r == name).map(|i| i as u32);
        // What a rule asks of a member it may or may not list: `Err(())` when it forbids it.
        let ask = |r: &ObjectRule, name: &str| -> Result<Option<usize>, ()> {
            match r.props.iter().find(|(p, _, _)| **p == *name) {
                Some((_, s, _)) => Ok(*s),
                None => match r.additional {
                    None => Ok(None),
                    Some(None) => Err(()),
                    Some(Some(s)) => Ok(Some(s)),
                },
            }
        };
        let mut names: Vec<&str> = ra.props.iter().map(|(n, _, _)| &**n).collect();
        for (n, _, _) in &rb.props {
            if !names.contains(&&**n) {
                names.push(n);
            }
        }
        let mut props = Vec::new();
        for name in names {
            let node = match (ask(ra, name), ask(rb, name)) {
                (Err(()), _) | (_, Err(())) => Some(self.add(Op::Never)),
                (Ok(x), Ok(None)) | (Ok(None), Ok(x)) => x,
                (Ok(Some(x)), Ok(Some(y))) if x == y => Some(x),
                (Ok(Some(x)), Ok(Some(y))) => Some(self.add(Op::All(vec![x, y]))),
            };
            props.push((Box::<str>::from(name), node, bit(name)));
        }
        let additional = match (ra.additional, rb.additional) {
            (Some(None), _) | (_, Some(None)) => Some(None),
            (None, x) | (x, None) => x,
            (Some(Some(x)), Some(Some(y))) if x == y => Some(Some(x)),
            (Some(Some(x)), Some(Some(y))) => Some(Some(self.add(Op::All(vec![x, y])))),
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
                        if let Some(Some(n)) = &mut rule.additional {
                            fix(n);
                        }
                    }
                    _ => {}
                }
            }
            self.nodes[at].ops = ops;
        }
    }

    /// Whether `node` meets the schema.
    pub fn is_valid(&self, node: TapeNode) -> bool {
        self.valid(0, node, &mut Memo::default())
    }

    /// [`Fast::is_valid`] for a whole frame (`node`: its root), with what `recent` (one
    /// connection's) remembers: pattern walks resume, and a frame with the structure of
    /// this schema's last valid frame is decided by the checks on the scalars it changed.
    pub fn is_valid_recent(&self, node: TapeNode, recent: &mut Recent) -> bool {
        self.is_valid_like(node, recent, None)
    }

    /// [`Fast::is_valid_recent`], with what [`Recent::like_last`] found (when this schema's
    /// snapshot is the one it compared with, it is not compared again).
    pub fn is_valid_like(&self, node: TapeNode, recent: &mut Recent, like: Option<Like>) -> bool {
        let Recent {
            walks,
            repeats,
            used,
            ..
        } = recent;
        *used = None;
        let doc = node.doc();
        let slot = match repeats.iter().position(|(id, _)| *id == self.id) {
            // Too large to keep: not recorded either (a record as long as the frame).
            _ if node.index() != 0 || !Snapshot::fits(doc) => {
                return self.valid(0, node, &mut Memo::walking(walks));
            }
            Some(i) => i,
            None => {
                if repeats.len() < RECENT_KINDS {
                    repeats.push((self.id, Repeat::default()));
                }
                return self.valid(0, node, &mut Memo::walking(walks));
            }
        };
        let repeat = &mut repeats[slot].1;
        let changed = match (repeat.ready, like) {
            (true, Some(like)) if like.slot == slot => Some(like.changed),
            (true, _) => repeat.snapshot.changes(doc),
            (false, _) => None,
        };
        if let Some(changed) = changed {
            #[cfg(test)]
            {
                recent.repeated += 1;
            }
            let mut memo = Memo::walking(walks);
            let ok = repeat
                .checks
                .iter()
                .filter(|(i, _)| changed.has(*i))
                .all(|&(i, n)| self.valid(n as usize, doc.node(i), &mut memo));
            *used = ok.then_some(slot);
            return ok;
        }
        repeat.checks.clear();
        repeat.marks = None;
        let mut memo = Memo {
            record: Some(Record {
                checks: &mut repeat.checks,
                at: u32::MAX,
                usable: true,
            }),
            ..Memo::walking(walks)
        };
        let ok = self.valid(0, node, &mut memo);
        let usable = memo.record.is_some_and(|r| r.usable);
        repeat.ready = ok && usable && repeat.snapshot.take(doc);
        *used = repeat.ready.then_some(slot);
        ok
    }

    fn valid(&self, at: usize, node: TapeNode, memo: &mut Memo) -> bool {
        let Some(record) = &mut memo.record else {
            return self.checked(at, node, memo);
        };
        let i = node.index();
        if node.object_len().is_some() || node.array_len().is_some() {
            record.usable &= !self.deep[at];
        } else if record.at != i {
            record.checks.push((i, at as u32));
        }
        let outer = std::mem::replace(&mut record.at, i);
        let ok = self.checked(at, node, memo);
        if let Some(r) = &mut memo.record {
            r.at = outer;
        }
        ok
    }

    fn checked(&self, at: usize, node: TapeNode, memo: &mut Memo) -> bool {
        let shared = self.shared[at];
        if shared && memo.holds(at, node) {
            return true;
        }
        let ok = self.nodes[at]
            .ops
            .iter()
            .all(|op| self.holds(op, node, memo));
        if ok && shared {
            memo.add(at, node);
        }
        ok
    }

    fn holds(&self, op: &Op, node: TapeNode, memo: &mut Memo) -> bool {
        let within = |n: usize, (lo, hi): (u64, u64)| (lo..=hi).contains(&(n as u64));
        match op {
            Op::Never => false,
            Op::Types(t) => t & type_bit(&node) != 0,
            Op::Const(k) => node.equals_value(k),
            Op::Enum(e) => e.iter().any(|v| node.equals_value(v)),
            Op::Length(lo, hi) => node.str().is_none_or(|s| {
                // A string has between a quarter of its bytes and all of them as code
                // points: most strings are told by their byte length alone.
                let bytes = s.len() as u64;
                (bytes.div_ceil(4) >= *lo && bytes <= *hi) || within(s.chars().count(), (*lo, *hi))
            }),
            Op::Items(lo, hi) => node.array_len().is_none_or(|n| within(n, (*lo, *hi))),
            Op::Props(lo, hi) => node.object_len().is_none_or(|n| within(n, (*lo, *hi))),
            Op::Object(rule) => node.object_len().is_none() || self.object(rule, node, memo),
            Op::Each(s) => node.items().all(|x| self.valid(*s, x, memo)),
            Op::All(list) => list.iter().all(|&s| self.valid(s, node, memo)),
            Op::Any(list) => list.iter().any(|&s| self.valid(s, node, memo)),
            Op::One(list) => list.iter().filter(|&&s| self.valid(s, node, memo)).count() == 1,
            Op::Not(s) => !self.valid(*s, node, memo),
            Op::Cond(i, t, e) => match self.valid(*i, node, memo) {
                true => t.is_none_or(|t| self.valid(t, node, memo)),
                false => e.is_none_or(|e| self.valid(e, node, memo)),
            },
            Op::Delegated(v) => v.is_valid(node),
            Op::Pattern(dfa, anchored, slot) => node.str().is_none_or(|s| {
                let key = (u64::from(self.id) << 32) | u64::from(*slot);
                let kept = *anchored && s.len() <= WALK_KEPT;
                match memo
                    .recent
                    .as_deref_mut()
                    .filter(|_| kept)
                    .and_then(|r| r.walk(key))
                {
                    Some(walk) => walk_resumed(dfa, s, walk),
                    None => is_match(dfa, *anchored, s),
                }
            }),
        }
    }

    /// `properties`, `additionalProperties` and `required` in one pass over the members.
    fn object(&self, rule: &ObjectRule, node: TapeNode, memo: &mut Memo) -> bool {
        let mut seen = 0u64;
        for (name, value) in node.entries() {
            match rule.props.iter().find(|(p, _, _)| same(p, name)) {
                Some((_, schema, bit)) => {
                    if let Some(b) = bit {
                        seen |= 1 << b;
                    }
                    if schema.is_some_and(|s| !self.valid(s, value, memo)) {
                        return false;
                    }
                }
                None => {
                    if let Some((_, b)) = rule.extra_required.iter().find(|(r, _)| same(r, name)) {
                        seen |= 1 << b;
                    }
                    match rule.additional {
                        None => {}
                        Some(None) => return false,
                        Some(Some(s)) if !self.valid(s, value, memo) => return false,
                        Some(Some(_)) => {}
                    }
                }
            }
        }
        seen & rule.required_bits == rule.required_bits
    }
}

/// [`is_match`] for an anchored pattern, resuming `last` where `s` parts from its string,
/// and leaving this walk in it. The walk from a state over the same bytes is the same walk,
/// so the answer is the one a fresh walk gives.
fn walk_resumed(dfa: &dense::DFA<Vec<u32>>, s: &str, last: &mut Walk) -> bool {
    let b = s.as_bytes();
    let shared = last.text.iter().zip(b).take_while(|(x, y)| x == y).count();
    if let Some((at, answer)) = last.stopped {
        // Stopped at a byte both strings have: the same stop.
        if at < shared {
            return answer;
        }
    }
    let mut from = shared.min(last.states.len().saturating_sub(1));
    if last.states.is_empty() {
        let input = Input::new(s).anchored(Anchored::Yes);
        let Ok(start) = dfa.start_state_forward(&input) else {
            return is_match(dfa, true, s);
        };
        last.states.push(start);
        from = 0;
    }
    last.states.truncate(from + 1);
    last.text.clear();
    last.text.extend_from_slice(b);
    last.stopped = None;
    let mut state = last.states[from];
    for (i, &byte) in b.iter().enumerate().skip(from) {
        state = dfa.next_state(state, byte);
        if dfa.is_special_state(state) {
            let stop = if dfa.is_match_state(state) {
                Some(true)
            } else if dfa.is_dead_state(state) || dfa.is_quit_state(state) {
                Some(false)
            } else {
                None
            };
            if let Some(answer) = stop {
                last.stopped = Some((i, answer));
                return answer;
            }
        }
        last.states.push(state);
    }
    dfa.is_match_state(dfa.next_eoi_state(state))
}

/// `is_match`, as the validator asks it: somewhere in `s`, stopping at the first match.
fn is_match(dfa: &dense::DFA<Vec<u32>>, anchored: bool, s: &str) -> bool {
    // A pattern every match of which starts at the start (`^…`, not multi-line): walk the
    // DFA from there byte by byte, which beats the general search on short strings.
    if anchored {
        let input = Input::new(s).anchored(Anchored::Yes);
        if let Ok(mut state) = dfa.start_state_forward(&input) {
            for &b in s.as_bytes() {
                state = dfa.next_state(state, b);
                if dfa.is_special_state(state) {
                    if dfa.is_match_state(state) {
                        return true;
                    }
                    if dfa.is_dead_state(state) || dfa.is_quit_state(state) {
                        return false;
                    }
                }
            }
            return dfa.is_match_state(dfa.next_eoi_state(state));
        }
    }
    let input = Input::new(s).earliest(true);
    matches!(dfa.try_search_fwd(&input), Ok(Some(_)))
}

fn type_bit(node: &TapeNode) -> u8 {
    use jsonschema::JsonType as T;
    match node.json_type() {
        T::Null => NULL,
        T::Boolean => BOOLEAN,
        T::Number if node.is_integral() => INTEGER,
        T::Number => NUMBER & !INTEGER,
        T::String => STRING,
        T::Array => ARRAY,
        T::Object => OBJECT,
        _ => 0,
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
        let mut ops = Vec::new();
        // Bounds come in pairs; an absent side is open.
        let mut bounds = [(0u64, u64::MAX); 3];
        let mut delegated = Vec::new();
        for (k, v) in obj {
            match k.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                k if DELEGATED.contains(&k) => {
                    let one = Value::Object(Map::from_iter([(k.to_string(), v.clone())]));
                    let built = (self.delegate)(&one)
                        .ok_or_else(|| Unsupported(format!("{k} did not compile alone")))?;
                    delegated.push(Op::Delegated(built));
                }
                "pattern" => delegated.push(self.pattern(v)?),
                "type" => ops.push(Op::Types(types(v)?)),
                "const" => ops.push(Op::Const(v.clone())),
                "enum" => ops.push(Op::Enum(v.as_array().ok_or_else(bad(k))?.clone())),
                "minLength" => bounds[0].0 = count(k, v)?,
                "maxLength" => bounds[0].1 = count(k, v)?,
                "minItems" => bounds[1].0 = count(k, v)?,
                "maxItems" => bounds[1].1 = count(k, v)?,
                "minProperties" => bounds[2].0 = count(k, v)?,
                "maxProperties" => bounds[2].1 = count(k, v)?,
                "items" if v.is_object() || v.is_boolean() => {
                    ops.push(Op::Each(self.sub(file, v)?))
                }
                "$ref" => {
                    let (f, p) = resolve(file, v.as_str().ok_or_else(bad(k))?)?;
                    ops.push(Op::All(vec![self.target(f, p)?]));
                }
                "allOf" => ops.push(Op::All(self.list(file, v)?)),
                "anyOf" => ops.push(Op::Any(self.list(file, v)?)),
                "oneOf" => ops.push(Op::One(self.list(file, v)?)),
                "not" => ops.push(Op::Not(self.sub(file, v)?)),
                "if" => {
                    let then = obj.get("then").map(|t| self.sub(file, t)).transpose()?;
                    let other = obj.get("else").map(|e| self.sub(file, e)).transpose()?;
                    ops.push(Op::Cond(self.sub(file, v)?, then, other));
                }
                // Taken with `if` (and meaningless without it).
                "then" | "else" => {}
                "properties" | "additionalProperties" | "required" => {}
                "propertyNames" if !v.to_string().contains("$ref") => {
                    let one = Value::Object(Map::from_iter([(k.to_string(), v.clone())]));
                    let built = (self.delegate)(&one).ok_or_else(|| Unsupported(k.into()))?;
                    delegated.push(Op::Delegated(built));
                }
                other => return Err(Unsupported(format!("keyword {other}"))),
            }
        }
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
        if ["properties", "additionalProperties", "required"]
            .iter()
            .any(|k| obj.contains_key(*k))
        {
            ops.push(Op::Object(self.object(file, obj)?));
        }
        // The validator calls (formats, patterns, bounds) last: a frame that fails a plain
        // check never pays for them.
        ops.extend(delegated);
        // Cheap type and value checks first, then the subschemas.
        ops.sort_by_key(|op| match op {
            Op::Never | Op::Types(_) | Op::Const(_) | Op::Enum(_) => 0,
            Op::Length(..) | Op::Items(..) | Op::Props(..) => 1,
            Op::Delegated(_) | Op::Pattern(..) => 3,
            _ => 2,
        });
        Ok(Checks { ops })
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
            None | Some(Value::Bool(true)) => None,
            Some(Value::Bool(false)) => Some(None),
            Some(s) => Some(Some(self.sub(file, s)?)),
        };
        Ok(rule)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tape::Tape;
    use serde_json::json;

    /// Compiles `schema` both ways (with `defs` beside it) and asks both about each instance.
    fn agree(schema: Value, instances: &[Value]) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let defs = json!({"$defs": {"pos": {"type": "integer", "minimum": 1},
                                    "ts": {"type": "string", "format": "date-time"}}});
        std::fs::write(root.join("defs.json"), defs.to_string()).unwrap();
        let file = root.join("s.json");
        std::fs::write(&file, schema.to_string()).unwrap();
        let leaf = |one: &Value| {
            super::super::build::<TapeJson>(&root, &file, one, &super::super::Reader::strict()).ok()
        };
        let quick = Fast::compile(&root, &[&file], &leaf).expect("compiles to checks");
        let full: Validator =
            super::super::build(&root, &file, &schema, &super::super::Reader::strict()).unwrap();
        same_verdicts(&quick, |v| full.is_valid(v), instances, &schema.to_string());
    }

    /// The checks say of each instance what `expected` says, which is not the same for all.
    fn same_verdicts(
        quick: &Fast,
        expected: impl Fn(&Value) -> bool,
        instances: &[Value],
        what: &str,
    ) {
        let mut tape = Tape::default();
        let mut valid = 0;
        // Resumed pattern walks too, from whatever string came before, in both orders.
        let mut recent = Recent::default();
        for v in instances.iter().chain(instances.iter().rev()) {
            let text = v.to_string();
            let doc = tape.parse(&text).unwrap();
            assert_eq!(quick.is_valid(doc.root()), expected(v), "{what} on {v}");
            let resumed = quick.is_valid_recent(doc.root(), &mut recent);
            assert_eq!(resumed, expected(v), "{what} on {v}, resumed");
            valid += usize::from(expected(v));
        }
        assert!(
            valid > 0 && valid < 2 * instances.len(),
            "{what}: both outcomes seen"
        );
    }

    #[test]
    fn structural_keywords_mean_what_the_validator_means() {
        let numbers = [
            json!(1),
            json!(1.0),
            json!(1.5),
            json!(-3),
            json!("1"),
            json!(null),
        ];
        agree(json!({"type": "integer"}), &numbers);
        agree(json!({"type": ["number", "null"]}), &numbers);
        agree(json!({"const": 1}), &numbers);
        agree(json!({"enum": ["1", 1.5, null]}), &numbers);
        agree(json!({"$ref": "defs.json#/$defs/pos"}), &numbers);
        agree(json!({"not": {"type": "string"}, "minimum": 0}), &numbers);
        agree(
            json!({"oneOf": [{"type": "integer"}, {"minimum": 1}]}),
            &numbers,
        );
        agree(
            json!({"anyOf": [{"type": "string"}, {"const": -3}]}),
            &numbers,
        );
        let strings = [
            json!(""),
            json!("é"),
            json!("abc"),
            json!("2026-01-01T00:00:00Z"),
            json!(7),
            // Two and three code points in four and six bytes: byte lengths alone mislead.
            json!("éé"),
            json!("ééé"),
            json!("a\u{e9}"),
        ];
        agree(json!({"minLength": 1, "maxLength": 2}), &strings);
        agree(json!({"minLength": 3}), &strings);
        agree(json!({"const": "abc"}), &strings);
        agree(json!({"const": "é"}), &strings);
        agree(json!({"$ref": "defs.json#/$defs/ts"}), &strings);
        agree(json!({"pattern": "^[a-z]+$"}), &strings);
        // ECMA 262 classes are ASCII where Rust's are Unicode: the translation must carry over.
        let digits = [
            json!("12"),
            json!("١٢"),
            json!("1"),
            json!("ab_"),
            json!("é"),
        ];
        agree(json!({"pattern": "^\\d{2}$"}), &digits);
        agree(json!({"pattern": "^\\w+$"}), &digits);
        agree(json!({"pattern": "^[^0-9]+$"}), &digits);
        // Only the first alternative is anchored: the walk from the start must not be used.
        let alts = [json!("xb"), json!("a"), json!("ab"), json!("c"), json!("")];
        agree(json!({"pattern": "^a|b"}), &alts);
        agree(json!({"pattern": "^(a|xb)[a-z]*$"}), &alts);
        agree(json!({"pattern": "a$"}), &alts);
        // Strings sharing prefixes of every length with the one before, the verdict flipping
        // inside, at and after the shared part; early stops (a dead state, a match) included.
        let stamps = [
            json!("2026-11-22T10:00:00.123456Z"),
            json!("2026-11-22T10:00:00.123457Z"),
            json!("2026-11-22T10:00:00.123457Z"),
            json!("2026-11-22T10:00:00.12345xZ"),
            json!("2026-11-22T10:00:00.123458Z"),
            json!("2026-11-22T10:00:00"),
            json!("2026-11-22T10:00:00.1Z"),
            json!("2026-13-22T10:00:00.1Z"),
            json!("2026-11-22T10:00:00.1Zjunk"),
            json!("2026-11-22T10:00:00.1Z"),
            json!("2"),
            json!(""),
            json!("2026-11-22T10:00:00.1Z"),
        ];
        let ts = "^[0-9]{4}-(0[1-9]|1[0-2])-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$";
        agree(json!({ "pattern": ts }), &stamps);
        agree(json!({"pattern": "^2026-11"}), &stamps);
        agree(
            json!({"pattern": "^2026-1[0-2]-22T10:00:00\\.12345"}),
            &stamps,
        );
        let objects = [
            json!({"a": 1, "b": "x"}),
            json!({"a": 1}),
            json!({"b": "x"}),
            json!({"a": "1", "b": "x"}),
            json!({"a": 1, "b": "x", "c": true}),
            json!({"a": 1, "b": "x", "c": 2}),
            json!({}),
            json!([1]),
        ];
        let props = json!({"a": {"type": "integer"}, "b": {"type": "string"}});
        agree(
            json!({"properties": props, "required": ["a", "b"]}),
            &objects,
        );
        agree(
            json!({"properties": props, "additionalProperties": false}),
            &objects,
        );
        agree(
            json!({"properties": props, "additionalProperties": {"type": "integer"},
                   "required": ["c"]}),
            &objects,
        );
        agree(
            json!({"type": "object", "minProperties": 2, "maxProperties": 2}),
            &objects,
        );
        agree(
            json!({"if": {"required": ["c"]}, "then": {"properties": {"c": {"const": 2}}},
                   "else": {"required": ["b"]}}),
            &objects,
        );
        let arrays = [
            json!([]),
            json!([1, 2]),
            json!([1, 1]),
            json!([1, "x"]),
            json!({"0": 1}),
        ];
        agree(
            json!({"items": {"type": "integer"}, "minItems": 1}),
            &arrays,
        );
        agree(
            json!({"type": "array", "uniqueItems": true, "maxItems": 1}),
            &arrays,
        );
        agree(
            json!({"allOf": [{"type": "array"}, {"items": false}]}),
            &arrays,
        );
    }

    /// A kind's schema and an envelope compiled together (their object rules merged into
    /// one) mean what the two validators mean together.
    fn agree_both(kind: Value, envelope: Value, instances: &[Value]) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let defs = json!({"$defs": {"ts": {"type": "string", "format": "date-time"}}});
        std::fs::write(root.join("defs.json"), defs.to_string()).unwrap();
        let (kf, ef) = (root.join("k.json"), root.join("e.json"));
        std::fs::write(&kf, kind.to_string()).unwrap();
        std::fs::write(&ef, envelope.to_string()).unwrap();
        let leaf = |one: &Value| {
            super::super::build::<TapeJson>(&root, &kf, one, &super::super::Reader::strict()).ok()
        };
        let quick = Fast::compile(&root, &[&kf, &ef], &leaf).expect("compiles to checks");
        assert!(
            matches!(quick.nodes[0].ops.last(), Some(Op::Object(_))),
            "the two object rules were merged"
        );
        let k: Validator =
            super::super::build(&root, &kf, &kind, &super::super::Reader::strict()).unwrap();
        let e: Validator =
            super::super::build(&root, &ef, &envelope, &super::super::Reader::strict()).unwrap();
        let what = format!("{kind} + {envelope}");
        same_verdicts(&quick, |v| k.is_valid(v) && e.is_valid(v), instances, &what);
    }

    #[test]
    fn a_kind_and_its_envelope_checked_in_one_pass_mean_both() {
        let ts = json!({"$ref": "defs.json#/$defs/ts"});
        let frames = [
            json!({"type": "a", "t": "2026-01-01T00:00:00Z"}),
            json!({"type": "a", "t": "yesterday"}),
            json!({"type": "a"}),
            json!({"type": "b", "t": "2026-01-01T00:00:00Z"}),
            json!({"type": "", "t": "2026-01-01T00:00:00Z"}),
            json!({"type": "a", "data": {}}),
            json!({"type": "a", "t": "2026-01-01T00:00:00Z", "data": {}}),
            json!({"type": "a", "data": 1}),
            json!({"type": "a", "id": 3, "other": 3}),
            json!({"type": "a", "id": 3, "data": {}}),
            json!({"type": "a", "id": 3}),
            json!({"type": "a", "id": "x"}),
            json!({"type": "a", "other": 3}),
            json!({"t": "2026-01-01T00:00:00Z"}),
            json!("a"),
            json!([]),
        ];
        let envelope = json!({"type": "object",
            "properties": {"type": {"type": "string", "minLength": 1}, "t": ts,
                           "data": {"type": "object"}},
            "required": ["type"], "additionalProperties": true});
        // Closed kind: a member only the envelope lists is refused.
        agree_both(
            json!({"type": "object",
                   "properties": {"type": {"const": "a"}, "t": ts, "id": {"type": "integer"}},
                   "required": ["type", "t"], "additionalProperties": false}),
            envelope.clone(),
            &frames,
        );
        // Open kind with an `additionalProperties` schema; the envelope closed and asking
        // for a member the kind does not list.
        agree_both(
            json!({"properties": {"type": {"const": "a"}},
                   "additionalProperties": {"type": ["integer", "object"]}}),
            json!({"type": "object",
                   "properties": {"type": {"type": "string"}, "id": {"minimum": 2},
                                  "data": true},
                   "required": ["id"], "additionalProperties": false}),
            &frames,
        );
        // Both with schemas for the rest.
        agree_both(
            json!({"type": ["object", "string"], "properties": {"type": {"const": "a"}},
                   "additionalProperties": {"type": "integer"}}),
            json!({"properties": {"t": ts}, "additionalProperties": {"minimum": 3}}),
            &frames,
        );
    }

    #[test]
    fn what_the_checks_cannot_express_is_left_to_the_validator() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let leaf = |_: &Value| None;
        for schema in [
            json!({"patternProperties": {"^a": true}}),
            json!({"$id": "x", "type": "string"}),
            json!({"unevaluatedProperties": false}),
            json!({"prefixItems": [true]}),
            json!({"x-custom": 1}),
            json!({"$ref": "#"}),
            json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}),
            json!({"$ref": "../outside.json"}),
        ] {
            let file = root.join("s.json");
            std::fs::write(&file, schema.to_string()).unwrap();
            assert!(Fast::compile(&root, &[&file], &leaf).is_err(), "{schema}");
        }
    }
}
