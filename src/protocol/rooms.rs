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

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use serde::Deserialize;

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
    /// at that pointer in the event (`scrape:{/data/job_id}`).
    pub rooms: FxHashMap<String, Vec<String>>,
}

/// Rooms one connection may hold before the check stops judging its events (a connection
/// that subscribes without end, with no unsubscribe confirmed, holds without end: past this
/// its holds are no longer all known, so nothing is proven).
const HELD_CAP: usize = 4096;

/// The rooms one connection holds.
#[derive(Debug, Default)]
pub struct Subscribed {
    rooms: FxHashSet<String>,
    /// More than `HELD_CAP` rooms were held: events are no longer judged.
    saturated: bool,
    /// Reused to spell out each candidate room of an event.
    scratch: String,
}

impl Subscribed {
    /// Forgets every room (a new connection).
    pub fn clear(&mut self) {
        self.rooms.clear();
        self.saturated = false;
    }

    /// Notes an outbound frame: a subscribe (or another kind that `holds:` lists) adds its
    /// room.
    pub fn sent<F: Fields + ?Sized>(&mut self, rules: &RoomRules, kind: Option<&str>, v: &F) {
        let Some(kind) = kind else { return };
        if kind == rules.subscribe {
            self.hold(v, &rules.room);
        }
        for pointer in rules.holds.get(kind).into_iter().flatten() {
            self.hold(v, pointer);
        }
    }

    /// Holds the room named at `pointer`, if the frame names one there; an array there holds
    /// each string in it (KECS: a subscribe lists its `eventTypes`).
    fn hold<F: Fields + ?Sized>(&mut self, v: &F, pointer: &str) {
        if let Some(room) = v.str_at(pointer) {
            self.hold_one(room.as_ref());
        } else if let Some(list) = v.value_at(pointer) {
            for room in list.as_array().into_iter().flatten() {
                if let Some(room) = room.as_str() {
                    self.hold_one(room);
                }
            }
        }
    }

    fn hold_one(&mut self, room: &str) {
        if self.saturated {
            return;
        }
        if self.rooms.len() == HELD_CAP && !self.rooms.contains(room) {
            self.saturated = true;
            self.rooms.clear();
            return;
        }
        self.rooms.insert(room.to_owned());
    }

    /// Notes an inbound frame: an unsubscribe confirmation drops its room; an event for no
    /// held room is a violation.
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
        for t in carriers {
            self.scratch.clear();
            if expand(t, v, &mut self.scratch) {
                if self.rooms.contains(self.scratch.as_str()) {
                    return None;
                }
            } else if self.rooms.iter().any(|held| fits(t, held)) {
                // The event does not say which room of this shape it is for: no proof.
                return None;
            }
        }
        let candidates: Vec<String> = carriers
            .iter()
            .filter_map(|t| {
                let mut room = String::new();
                expand(t, v, &mut room).then_some(room)
            })
            .collect();
        Some(Violation {
            dir: Direction::In,
            kind: kind.to_string(),
            keyword: "unsubscribed".into(),
            pointer: String::new(),
            message: if candidates.is_empty() {
                format!(
                    "a {kind} event while this connection holds no room that carries it ({})",
                    carriers.join(", ")
                )
            } else {
                format!(
                    "a {kind} event for {} while this connection holds none of them",
                    candidates.join(", ")
                )
            },
            source: super::Source::Document,
        })
    }
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
        let pointer = &rest[open + 1..close];
        match v.str_at(pointer) {
            Some(s) => out.push_str(&s),
            None => match v.value_at(pointer) {
                Some(other) => out.push_str(&other.to_string()),
                None => return false,
            },
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> RoomRules {
        RoomRules {
            subscribe: "subscribe".into(),
            room: "/room".into(),
            holds: BTreeMap::new(),
            unsubscribed: Some("unsubscribe".into()),
            unsubscribed_room: "/data/room".into(),
            rooms: [(
                "scrape.progress".to_string(),
                vec![
                    "scrape:all".to_string(),
                    "scrape:{/data/job_id}".to_string(),
                ],
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn events_need_a_held_room() {
        let r = rules();
        let mut h = Subscribed::default();
        let ev = |job: &str| json!({"type": "scrape.progress", "data": {"job_id": job}});
        assert!(h.received(&r, Some("scrape.progress"), &ev("j1")).is_some());
        h.sent(
            &r,
            Some("subscribe"),
            &json!({"type": "subscribe", "room": "scrape:j1"}),
        );
        assert_eq!(h.received(&r, Some("scrape.progress"), &ev("j1")), None);
        let other = h.received(&r, Some("scrape.progress"), &ev("j2")).unwrap();
        assert_eq!(other.keyword, "unsubscribed");
        assert!(
            other.message.contains("scrape:all, scrape:j2"),
            "{}",
            other.message
        );
        let ack = json!({"type": "unsubscribe", "data": {"room": "scrape:j1"}});
        assert_eq!(h.received(&r, Some("unsubscribe"), &ack), None);
        assert!(h.received(&r, Some("scrape.progress"), &ev("j1")).is_some());
        // Kinds the rules do not list are none of this check's business.
        assert_eq!(
            h.received(&r, Some("welcome"), &json!({"type": "welcome"})),
            None
        );
    }

    #[test]
    fn an_event_that_does_not_name_its_room_passes_a_holder_of_that_shape() {
        // kite.md: case.updated carries no jurisdiction, so `cases:{jurisdiction}` is unknown.
        let mut r = rules();
        r.rooms.insert(
            "case.updated".into(),
            vec![
                "cases:all".into(),
                "cases:{/data/jurisdiction}".into(),
                "case:{/data/case_id}".into(),
            ],
        );
        let ev = json!({"type": "case.updated", "data": {"case_id": "sg/SGCA/2023/23"}});
        let mut h = Subscribed::default();
        let sub = |room: &str| json!({"type": "subscribe", "room": room});
        h.sent(&r, Some("subscribe"), &sub("scrape:all"));
        // Holds no room of any of its shapes: proven stray, and the message names them.
        let v = h.received(&r, Some("case.updated"), &ev).unwrap();
        assert!(
            v.message.contains("cases:all, case:sg/SGCA/2023/23"),
            "{}",
            v.message
        );
        // It names none of its rooms: the message says which shapes would have carried it.
        r.rooms.insert(
            "search.results".into(),
            vec!["search:{/data/search_id}".into()],
        );
        let nameless = json!({"type": "search.results", "data": {}});
        let v = h.received(&r, Some("search.results"), &nameless).unwrap();
        assert_eq!(
            v.message,
            "a search.results event while this connection holds no room that carries it \
             (search:{/data/search_id})"
        );
        h.sent(&r, Some("subscribe"), &sub("cases:Singapore"));
        assert_eq!(
            h.received(&r, Some("case.updated"), &ev),
            None,
            "cannot be judged"
        );
        // With the jurisdiction in the event, it is judged again.
        let named = json!({"type": "case.updated", "data": {"case_id": "x", "jurisdiction": "UK"}});
        assert!(h.received(&r, Some("case.updated"), &named).is_some());
    }

    #[test]
    fn other_kinds_hold_rooms_and_without_a_confirmation_a_room_stays_held() {
        // CovetPy: a subscribe holds its id, a join_room its room; nothing confirms a leave.
        let r = RoomRules {
            subscribe: "subscribe".into(),
            room: "/id".into(),
            holds: [("join_room".to_string(), vec!["/data/room_id".to_string()])].into(),
            unsubscribed: None,
            unsubscribed_room: String::new(),
            rooms: [(
                "stream_data".to_string(),
                vec!["{/data/subscription_id}".to_string()],
            )]
            .into_iter()
            .collect(),
        };
        let ev = |s: &str| json!({"type": "stream_data", "data": {"subscription_id": s}});
        let mut h = Subscribed::default();
        assert!(h.received(&r, Some("stream_data"), &ev("sub_1")).is_some());
        h.sent(
            &r,
            Some("subscribe"),
            &json!({"type": "subscribe", "id": "sub_1"}),
        );
        h.sent(
            &r,
            Some("join_room"),
            &json!({"type": "join_room", "id": "jr_1", "data": {"room_id": "lobby"}}),
        );
        assert_eq!(h.received(&r, Some("stream_data"), &ev("sub_1")), None);
        assert_eq!(h.received(&r, Some("stream_data"), &ev("lobby")), None);
        // The join's own id holds nothing: only its room does.
        assert!(h.received(&r, Some("stream_data"), &ev("jr_1")).is_some());
        // An unsubscribe is not confirmed: the stream stays held (batches may be on the way).
        h.sent(
            &r,
            Some("unsubscribe"),
            &json!({"type": "unsubscribe", "data": {"subscription_id": "sub_1"}}),
        );
        assert_eq!(h.received(&r, Some("stream_data"), &ev("sub_1")), None);
    }

    #[test]
    fn a_holding_kind_may_name_its_room_at_one_of_several_pointers() {
        // Hexabase: a subscribe names a workspace, an organization or a project.
        let mut r = rules();
        r.holds.insert(
            "watch".into(),
            vec!["/data/workspace_id".into(), "/data/project_id".into()],
        );
        r.rooms
            .insert("status".into(), vec!["{/data/workspace_id}".into()]);
        r.rooms
            .insert("quota".into(), vec!["{/data/project_id}".into()]);
        let mut h = Subscribed::default();
        let watch = |field: &str, id: &str| json!({"type": "watch", "data": {field: id}});
        h.sent(&r, Some("watch"), &watch("workspace_id", "ws-1"));
        h.sent(&r, Some("watch"), &watch("project_id", "proj-1"));
        let status = |id: &str| json!({"type": "status", "data": {"workspace_id": id}});
        let quota = |id: &str| json!({"type": "quota", "data": {"project_id": id}});
        assert_eq!(h.received(&r, Some("status"), &status("ws-1")), None);
        assert_eq!(h.received(&r, Some("quota"), &quota("proj-1")), None);
        assert!(h.received(&r, Some("status"), &status("ws-2")).is_some());
        assert!(h.received(&r, Some("quota"), &quota("proj-2")).is_some());
        // An array at the pointer holds each string in it.
        h.sent(
            &r,
            Some("watch"),
            &json!({"type": "watch", "data": {"workspace_id": ["ws-3", 4, "ws-5"]}}),
        );
        assert_eq!(h.received(&r, Some("status"), &status("ws-3")), None);
        assert_eq!(h.received(&r, Some("status"), &status("ws-5")), None);
        assert!(h.received(&r, Some("status"), &status("4")).is_some());
    }

    #[test]
    fn past_the_cap_of_held_rooms_nothing_is_judged() {
        let r = rules();
        let mut h = Subscribed::default();
        let ev = |job: &str| json!({"type": "scrape.progress", "data": {"job_id": job}});
        let sub = |n: usize| json!({"type": "subscribe", "room": format!("scrape:{n}")});
        for n in 0..HELD_CAP {
            h.sent(&r, Some("subscribe"), &sub(n));
        }
        assert!(h.received(&r, Some("scrape.progress"), &ev("x")).is_some());
        h.sent(&r, Some("subscribe"), &sub(HELD_CAP));
        assert_eq!(h.received(&r, Some("scrape.progress"), &ev("x")), None);
        h.clear();
        assert!(h.received(&r, Some("scrape.progress"), &ev("x")).is_some());
    }

    #[test]
    fn rooms_fit_template_shapes() {
        assert!(fits("cases:{/j}", "cases:Singapore"));
        assert!(!fits("cases:{/j}", "cases:"));
        assert!(!fits("cases:{/j}", "case:x"));
        assert!(fits("a:{/x}:b:{/y}", "a:1:b:2"));
        assert!(!fits("a:{/x}:b:{/y}", "a:1:b:"));
        assert!(fits("workers:all", "workers:all"));
        assert!(!fits("workers:all", "workers:x"));
    }

    #[test]
    fn templates_fill_from_the_event() {
        let v = json!({"data": {"id": 7, "s": "x"}});
        let expanded = |t: &str| {
            let mut out = String::new();
            expand(t, &v, &mut out).then_some(out)
        };
        assert_eq!(expanded("a:{/data/s}:{/data/id}").as_deref(), Some("a:x:7"));
        assert_eq!(expanded("a:{/data/none}"), None);
        assert_eq!(expanded("plain").as_deref(), Some("plain"));
    }
}
