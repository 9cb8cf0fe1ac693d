//! A profile's schemas compiled a second time into a tree of plain checks that run straight
//! on a frame's tape: the per-frame question "is it valid?" at a fraction of a general
//! validator's cost (no dynamic dispatch per keyword, one pass over an object's members for
//! `properties`, `additionalProperties` and `required` together, `$ref`s resolved to arena
//! indices once). Compiling is in `compile.rs`; the pattern walks a connection keeps, in
//! `engine/patterns.rs`; this file holds the checks and how a frame is run through them.
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

mod compile;

use jsonschema::json::Node;
use jsonschema::Validator;
use regex_automata::dfa::dense;
use serde_json::Value;

use super::patterns::{is_match, walk_resumed, Walks, WALK_KEPT};
use super::recent::{Like, Recent, Repeat, RECENT_KINDS};
use super::snapshot::Snapshot;
use super::tape::{same, TapeJson, TapeNode};

/// JSON types as bits.
const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const INTEGER: u8 = 4;
const NUMBER: u8 = 8 | INTEGER;
const STRING: u8 = 16;
const ARRAY: u8 = 32;
const OBJECT: u8 = 64;

/// A compiled schema: an arena of nodes, the first one the root.
pub struct Compiled {
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

/// What an object's members beyond its listed `properties` must be.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Additional {
    /// Anything (no `additionalProperties`, or `true`).
    #[default]
    Any,
    /// Nothing: there may be none (`false`).
    None,
    /// Each must meet this schema node.
    Each(usize),
}

#[derive(Default, Clone)]
struct ObjectRule {
    /// Property name → schema node and the bit of `required` it fills, if it is required.
    props: Vec<(Box<str>, Option<usize>, Option<u32>)>,
    /// What members `props` does not list must be (`additionalProperties`).
    additional: Additional,
    /// Required names that `properties` does not list, with their bits.
    extra_required: Vec<(Box<str>, u32)>,
    required_bits: u64,
}

impl Compiled {
    /// Whether `node` meets the schema.
    pub fn is_valid(&self, node: TapeNode) -> bool {
        self.valid(0, node, &mut Memo::default())
    }

    /// [`Compiled::is_valid`] for a whole frame (`node`: its root), with what `recent` (one
    /// connection's) remembers: pattern walks resume, and a frame with the structure of
    /// this schema's last valid frame is decided by the checks on the scalars it changed.
    #[cfg(test)]
    pub fn is_valid_recent(&self, node: TapeNode, recent: &mut Recent) -> bool {
        self.is_valid_like(node, recent, None)
    }

    /// [`Compiled::is_valid`] with pattern walks resumed, but no snapshot kept or asked (to
    /// measure what snapshots save).
    pub fn is_valid_walking(&self, node: TapeNode, recent: &mut Recent) -> bool {
        recent.used = None;
        self.valid(0, node, &mut Memo::walking(&mut recent.walks))
    }

    /// [`Compiled::is_valid_recent`], with what [`Recent::like_last`] found (when this schema's
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
                        Additional::Any => {}
                        Additional::None => return false,
                        Additional::Each(s) if !self.valid(s, value, memo) => return false,
                        Additional::Each(_) => {}
                    }
                }
            }
        }
        seen & rule.required_bits == rule.required_bits
    }
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

#[cfg(test)]
mod tests;
