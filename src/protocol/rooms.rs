//! Events only for rooms the connection subscribed to: a profile's `subscriptions:` rules say
//! which outbound kind subscribes (and where its room is), which inbound kind confirms an
//! unsubscribe, and which rooms carry each event kind (templates over the event's fields). An
//! event none of whose rooms the connection holds is a violation, `unsubscribed`.
//!
//! A room counts as held from the moment the subscribe is *sent* (a server may deliver before
//! its ack) until the unsubscribe is *acknowledged* (events already queued may still come).
//!
//! A document may give more than one way to hold a room (CovetPy's `subscribe` and
//! `join_room`): `holds:` lists the other outbound kinds with their room pointers. A document
//! may also confirm no unsubscribe (CovetPy, neither `unsubscribe` nor `leave_room` is
//! answered): without `unsubscribed:` a room stays held until the connection ends, since events
//! already on their way may still come and nothing says when they stop.
//!
//! The rule accuses only with proof: when an event lacks a field one of its rooms is named by
//! (kite.md's `case.updated` carries no jurisdiction, yet `cases:{jurisdiction}` carries it),
//! that room is unknown, and a connection holding any room of that shape may be its
//! subscriber: the event passes.
//!
//! A subscribe may also narrow what its rooms deliver (`filters:`): KECS's lists event types
//! (its rooms) and, besides, clusters, services and task statuses. Each filter names where the
//! subscribe lists the values it admits and, per event kind, where the event has its value
//! (templates like rooms'). An event is carried by a subscribe when it is for one of the
//! subscribe's rooms and each of its filters admits it; a filter admits an event when the
//! subscribe lists nothing there, when the event kind has no value for that filter, when none
//! of its value's fields is present (no proof), or when one of its values is listed.
//!
//! A room is named where the event decides it: an event for no held room is reported at the
//! field naming its room (the first placeholder of its first room that names one; for rooms
//! that are plain words, KECS's event types, the last part of the kind), an event outside a
//! subscribe's filter at the field of that filter's value.

use std::collections::BTreeMap;

use std::fmt::Write as _;

use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::Value;

use super::fields::Fields;
use super::{Direction, Violation};

/// `subscriptions:` in `protocol.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomRules {
    /// Outbound kind that subscribes.
    pub subscribe: String,
    /// Pointer of the room in it.
    pub room: String,
    /// More outbound kinds that hold a room: kind → pointers of the room in it (each string
    /// found at one of them is held: Hexabase's subscribe names its resource at
    /// `/data/workspace_id`, `/data/organization_id` or `/data/project_id`).
    #[serde(default)]
    pub holds: BTreeMap<String, Vec<String>>,
    /// Inbound kind that confirms an unsubscribe; none when the document confirms none (a
    /// room is then held until the connection ends).
    #[serde(default)]
    pub unsubscribed: Option<String>,
    /// Pointer of the room in that confirmation.
    #[serde(default)]
    pub unsubscribed_room: String,
    /// Event kind → the rooms that carry it; `{/pointer}` in a room is replaced by the value
    /// at that pointer in the event (`scrape:{/data/job_id}`); `{/pointer|after_last:/}` by
    /// the text after its last `/` (an ARN's resource name).
    pub rooms: FxHashMap<String, Vec<String>>,
    /// What a subscribe narrows its rooms to, by name (KECS `clusters`, `services`,
    /// `status`; Hexabase `events`), read from the frame that holds the rooms (the
    /// `subscribe` kind or one `holds:` lists).
    #[serde(default)]
    pub filters: BTreeMap<String, Filter>,
    /// Why the whole rule is squall's reading where the document is silent (NewLoom's chats
    /// held by posting): its findings then break squall's decision, and
    /// `--conformance document` drops the rule.
    #[serde(default)]
    pub decision: Option<String>,
    /// The profile's discriminator (set when the profile loads): where an event whose rooms
    /// are plain words is reported (its last part present).
    #[serde(skip)]
    pub discriminator: Vec<String>,
}

/// One filter of `subscriptions: filters:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Pointer in the subscribe of the values it admits: a string or a list of strings.
    /// Absent (or an empty list): the subscribe does not narrow by this filter.
    pub request: String,
    /// Event kind → templates of the event's value for this filter (any one listed admits
    /// it). A kind not here is not narrowed by this filter (`squall schemas lint` says so).
    pub events: FxHashMap<String, Vec<String>>,
}

/// Rooms one connection may hold before the check stops judging its events (a connection
/// that subscribes without end, with no unsubscribe confirmed, holds without end: past this
/// its holds are no longer all known, so nothing is proven).
const HELD_CAP: usize = 4096;

/// Who holds one room: a subscribe that admits all it carries, or only subscribes with
/// filters (indices into [`Subscribed::narrowed`]).
#[derive(Debug)]
enum Holders {
    All,
    Narrowed(Vec<u32>),
}

/// What one subscribe with filters admits: per filter of the rules, in order, the values
/// it listed (`None`: it does not narrow by that filter).
type Admits = Box<[Option<Box<[String]>>]>;

/// The rooms one connection holds.
#[derive(Debug, Default)]
pub struct Subscribed {
    rooms: FxHashMap<String, Holders>,
    /// The subscribes with filters, in the order sent.
    narrowed: Vec<Admits>,
    /// More than `HELD_CAP` rooms (or narrowed subscribes) were held: events are no longer
    /// judged.
    saturated: bool,
    /// Reused to spell out each candidate room of an event.
    scratch: String,
    /// The event's values for the filters (spelled once per event, for every narrowed
    /// subscribe to test): `spans[f]` is filter `f`'s range of `values`, empty when the event
    /// has none (the filter cannot judge it). Reused, so judging does not allocate.
    values: Vec<String>,
    spans: Vec<(usize, usize)>,
}

/// Why an event is outside what a connection holds: the field that decides it, and what
/// to say.
struct Outside {
    pointer: String,
    message: String,
}

impl Subscribed {
    /// Forgets every room (a new connection).
    pub fn clear(&mut self) {
        self.rooms.clear();
        self.narrowed.clear();
        self.saturated = false;
    }

    /// Notes an outbound frame: a subscribe (or another kind that `holds:` lists) adds its
    /// room, narrowed by the subscribe's filters.
    pub fn sent<F: Fields + ?Sized>(&mut self, rules: &RoomRules, kind: Option<&str>, v: &F) {
        let Some(kind) = kind else { return };
        let holds = rules.holds.get(kind);
        if kind != rules.subscribe && holds.is_none() {
            return;
        }
        let by = self.narrow(rules, v);
        if kind == rules.subscribe {
            self.hold(v, &rules.room, by);
        }
        for pointer in holds.into_iter().flatten() {
            self.hold(v, pointer, by);
        }
    }

    /// Notes what a subscribe's filters admit; the index of that entry, or `None` when it
    /// narrows by none of them.
    fn narrow<F: Fields + ?Sized>(&mut self, rules: &RoomRules, v: &F) -> Option<u32> {
        if rules.filters.is_empty() || self.saturated {
            return None;
        }
        let admits: Admits = rules
            .filters
            .values()
            .map(|f| {
                let mut listed = Vec::new();
                each_text(v, &f.request, |t| listed.push(t.to_owned()));
                (!listed.is_empty()).then(|| listed.into_boxed_slice())
            })
            .collect();
        if admits.iter().all(Option::is_none) {
            return None;
        }
        if self.narrowed.len() == HELD_CAP {
            self.saturate();
            return None;
        }
        self.narrowed.push(admits);
        Some(self.narrowed.len() as u32 - 1)
    }

    /// Holds the room named at `pointer` (a string, or a number as its JSON text), if the
    /// frame names one there; an array there holds each in it (KECS: a subscribe lists its
    /// `eventTypes`).
    fn hold<F: Fields + ?Sized>(&mut self, v: &F, pointer: &str, by: Option<u32>) {
        each_text(v, pointer, |room| self.hold_one(room, by));
    }

    fn hold_one(&mut self, room: &str, by: Option<u32>) {
        if self.saturated {
            return;
        }
        if self.rooms.len() == HELD_CAP && !self.rooms.contains_key(room) {
            self.saturate();
            return;
        }
        let holders = match self.rooms.get_mut(room) {
            Some(h) => h,
            None => self.rooms.entry(room.to_owned()).or_insert(match by {
                Some(_) => Holders::Narrowed(Vec::new()),
                None => Holders::All,
            }),
        };
        match (holders, by) {
            (h, None) => *h = Holders::All,
            (Holders::Narrowed(ids), Some(i)) => ids.push(i),
            (Holders::All, Some(_)) => {}
        }
    }

    fn saturate(&mut self) {
        self.saturated = true;
        self.rooms.clear();
        self.narrowed.clear();
    }

    /// Notes an inbound frame: an unsubscribe confirmation drops its room; an event for no
    /// held room, or outside the filters of every subscribe holding its room, is a violation.
    pub fn received<F: Fields + ?Sized>(
        &mut self,
        rules: &RoomRules,
        kind: Option<&str>,
        v: &F,
    ) -> Option<Violation> {
        let kind = kind?;
        if rules.unsubscribed.as_deref() == Some(kind) {
            if let Some(room) = v.str_at(&rules.unsubscribed_room) {
                self.rooms.remove(room.as_ref());
            }
            return None;
        }
        let carriers = rules.rooms.get(kind)?;
        if self.saturated {
            return None;
        }
        // The first narrowed subscribe that held the event's room and left it out.
        let mut left_out: Option<u32> = None;
        let mut spelled = false;
        for t in carriers {
            self.scratch.clear();
            if expand(t, v, &mut self.scratch) {
                match self.rooms.get(self.scratch.as_str()) {
                    None => {}
                    Some(Holders::All) => return None,
                    Some(Holders::Narrowed(ids)) => {
                        if !spelled {
                            spell(rules, kind, v, &mut self.values, &mut self.spans);
                            spelled = true;
                        }
                        let (values, spans) = (&self.values, &self.spans);
                        if ids
                            .iter()
                            .any(|&i| admits(&self.narrowed[i as usize], spans, values))
                        {
                            return None;
                        }
                        left_out = left_out.or(ids.first().copied());
                    }
                }
            } else if self.rooms.keys().any(|held| fits(t, held)) {
                // The event does not say which room of this shape it is for: no proof.
                return None;
            }
        }
        let found = left_out
            .and_then(|i| outside(rules, &self.narrowed[i as usize], kind, v))
            .unwrap_or_else(|| not_held(rules, carriers, kind, v));
        Some(unsubscribed(rules, kind, found))
    }
}

/// The violation for a `kind` event no subscription carries, where `found` says.
fn unsubscribed(rules: &RoomRules, kind: &str, found: Outside) -> Violation {
    let Outside { pointer, message } = found;
    Violation {
        dir: Direction::In,
        kind: kind.to_string(),
        keyword: "unsubscribed".into(),
        pointer,
        message,
        source: match rules.decision {
            Some(_) => super::RuleSource::Squall,
            None => super::RuleSource::Document,
        },
    }
}

/// Calls `f` with the text at `pointer`: a string, a number's JSON text, or each of these in
/// an array there.
fn each_text<F: Fields + ?Sized>(v: &F, pointer: &str, mut f: impl FnMut(&str)) {
    if let Some(s) = v.str_at(pointer) {
        return f(s.as_ref());
    }
    let Some(value) = v.value_at(pointer) else {
        return;
    };
    let one = |x: &Value, f: &mut dyn FnMut(&str)| match x {
        Value::String(s) => f(s),
        Value::Number(n) => f(&n.to_string()),
        _ => {}
    };
    match value.as_ref() {
        Value::Array(items) => items.iter().for_each(|x| one(x, &mut f)),
        other => one(other, &mut f),
    }
}

/// Why an event for no held room is outside: the field naming its room, and the rooms it
/// names (or the shapes that would have carried it).
fn not_held<F: Fields + ?Sized>(
    rules: &RoomRules,
    carriers: &[String],
    kind: &str,
    v: &F,
) -> Outside {
    let mut candidates = Vec::new();
    let mut pointer = None;
    for t in carriers {
        let mut room = String::new();
        if expand(t, v, &mut room) {
            candidates.push(room);
            pointer = pointer.or_else(|| split_template(t).1.first().map(|p| bare(p)));
        }
    }
    let pointer = pointer
        .unwrap_or_else(|| kind_pointer(rules, v))
        .to_string();
    let message = if candidates.is_empty() {
        format!(
            "a {kind} event while this connection holds no room that carries it ({})",
            carriers.join(", ")
        )
    } else {
        format!(
            "a {kind} event for {} while this connection holds none of them",
            candidates.join(", ")
        )
    };
    Outside { pointer, message }
}

/// Spells an event's value(s) for each filter into `values` (its `spans` in order): the
/// filter templates of its kind that the event's fields fill.
fn spell<F: Fields + ?Sized>(
    rules: &RoomRules,
    kind: &str,
    v: &F,
    values: &mut Vec<String>,
    spans: &mut Vec<(usize, usize)>,
) {
    spans.clear();
    let mut n = 0;
    for filter in rules.filters.values() {
        let start = n;
        for t in filter.events.get(kind).into_iter().flatten() {
            if values.len() == n {
                values.push(String::new());
            }
            values[n].clear();
            if expand(t, v, &mut values[n]) {
                n += 1;
            }
        }
        spans.push((start, n));
    }
}

/// Whether a subscribe with filters `listed` admits an event whose values [`spell`] wrote:
/// each filter it narrows by either cannot judge the event or lists one of its values.
fn admits(listed: &Admits, spans: &[(usize, usize)], values: &[String]) -> bool {
    listed.iter().zip(spans).all(|(listed, &(from, to))| {
        let (Some(listed), Some(mine)) = (listed, values.get(from..to)) else {
            return true;
        };
        mine.is_empty() || mine.iter().any(|m| listed.contains(m))
    })
}

/// Whether a subscribe with filters `admits` leaves out an event of `kind`: the first filter
/// that proves it does, at the event's field for it (the message's words; [`admits`] is the
/// per-event test).
fn outside<F: Fields + ?Sized>(
    rules: &RoomRules,
    admits: &Admits,
    kind: &str,
    v: &F,
) -> Option<Outside> {
    for ((name, filter), listed) in rules.filters.iter().zip(admits.iter()) {
        let (Some(listed), Some(templates)) = (listed, filter.events.get(kind)) else {
            continue;
        };
        let mut first: Option<(&str, String)> = None;
        let mut value = String::new();
        for t in templates {
            value.clear();
            if !expand(t, v, &mut value) {
                continue;
            }
            if listed.contains(&value) {
                first = None;
                break;
            }
            if first.is_none() {
                let pointer = split_template(t).1.first().map(|p| bare(p));
                let pointer = pointer.unwrap_or_else(|| kind_pointer(rules, v));
                first = Some((pointer, value.clone()));
            }
        }
        if let Some((pointer, value)) = first {
            return Some(Outside {
                pointer: pointer.to_string(),
                message: format!(
                    "a {kind} event with {name} {value} while the subscriptions holding it \
                     asked only for {name} {}",
                    listed.join(", ")
                ),
            });
        }
    }
    None
}

/// Where an event's kind is named: the last discriminator part present. Rooms and filter
/// values that are plain words (KECS's event types, Hexabase's event names) are decided by it.
fn kind_pointer<'r, F: Fields + ?Sized>(rules: &'r RoomRules, v: &F) -> &'r str {
    rules
        .discriminator
        .iter()
        .rev()
        .find(|p| v.str_at(p).is_some())
        .map_or("", String::as_str)
}

/// A placeholder's pointer without its modifier: `/a/b|after_last:/` is `/a/b`.
fn bare(placeholder: &str) -> &str {
    placeholder.split_once('|').map_or(placeholder, |(p, _)| p)
}

/// Whether `room` could be `template` with its placeholders filled (each by a non-empty
/// text): `cases:Singapore` fits `cases:{/data/jurisdiction}`.
fn fits(template: &str, room: &str) -> bool {
    let (parts, _) = split_template(template);
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return room == first;
    }
    let Some(mut middle) = room.strip_prefix(first) else {
        return false;
    };
    let Some(m) = middle.strip_suffix(last) else {
        return false;
    };
    middle = m;
    // Each placeholder takes at least one byte; the literal parts between them in order.
    for lit in &parts[1..parts.len() - 1] {
        let Some(at) = middle.get(1..).and_then(|r| r.find(lit)) else {
            return false;
        };
        middle = &middle[1 + at + lit.len()..];
    }
    !middle.is_empty()
}

/// A room template's literal parts (one more than its placeholders) and the pointers of its
/// `{...}` placeholders: `a:{/x}:b` is `["a:", ":b"]` and `["/x"]`.
pub(crate) fn split_template(template: &str) -> (Vec<&str>, Vec<&str>) {
    let (mut literals, mut pointers) = (Vec::new(), Vec::new());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            break;
        };
        literals.push(&rest[..open]);
        pointers.push(&rest[open + 1..close]);
        rest = &rest[close + 1..];
    }
    literals.push(rest);
    (literals, pointers)
}

/// Writes `scrape:{/data/job_id}` with the event's job id into `out`; false when the field
/// is missing.
fn expand<F: Fields + ?Sized>(template: &str, v: &F, out: &mut String) -> bool {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            return false;
        };
        let placeholder = &rest[open + 1..close];
        let (pointer, after_last) = match placeholder.split_once("|after_last:") {
            Some((p, sep)) => (p, Some(sep)),
            None => (placeholder, None),
        };
        let from = out.len();
        match v.str_at(pointer) {
            Some(s) => out.push_str(&s),
            None => match v.value_at(pointer) {
                Some(other) => {
                    let _ = write!(out, "{other}");
                }
                None => return false,
            },
        }
        if let Some(sep) = after_last.filter(|s| !s.is_empty()) {
            if let Some(at) = out[from..].rfind(sep) {
                out.replace_range(from..from + at + sep.len(), "");
            }
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    true
}

#[cfg(test)]
#[path = "rooms_tests.rs"]
mod tests;
