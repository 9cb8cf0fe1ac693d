//! Events only for rooms the connection subscribed to: a profile's `subscriptions:` rules say
//! which outbound kind subscribes (and where its room is), which inbound kind confirms an
//! unsubscribe, and which rooms carry each event kind (templates over the event's fields). An
//! event none of whose rooms the connection holds is a violation, `unsubscribed`.
//!
//! A room counts as held from the moment the subscribe is *sent* (a server may deliver before
//! its ack) until the unsubscribe is *acknowledged* (events already queued may still come).

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::{Direction, Violation};
use crate::swarm::matcher::lookup;

/// `subscriptions:` in `protocol.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomRules {
    /// Outbound kind that subscribes.
    pub subscribe: String,
    /// Pointer of the room in it.
    pub room: String,
    /// Inbound kind that confirms an unsubscribe.
    pub unsubscribed: String,
    /// Pointer of the room in that confirmation.
    pub unsubscribed_room: String,
    /// Event kind → the rooms that carry it; `{/pointer}` in a room is replaced by the value
    /// at that pointer in the event (`scrape:{/data/job_id}`).
    pub rooms: BTreeMap<String, Vec<String>>,
}

/// The rooms one connection holds.
#[derive(Debug, Default)]
pub struct Subscribed {
    rooms: HashSet<String>,
}

impl Subscribed {
    /// Forgets every room (a new connection).
    pub fn clear(&mut self) {
        self.rooms.clear();
    }

    /// Notes an outbound frame: a subscribe adds its room.
    pub fn sent(&mut self, rules: &RoomRules, kind: Option<&str>, v: &Value) {
        if kind == Some(rules.subscribe.as_str()) {
            if let Some(room) = lookup(v, &rules.room).and_then(Value::as_str) {
                self.rooms.insert(room.to_string());
            }
        }
    }

    /// Notes an inbound frame: an unsubscribe confirmation drops its room; an event for no
    /// held room is a violation.
    pub fn received(
        &mut self,
        rules: &RoomRules,
        kind: Option<&str>,
        v: &Value,
    ) -> Option<Violation> {
        let kind = kind?;
        if kind == rules.unsubscribed {
            if let Some(room) = lookup(v, &rules.unsubscribed_room).and_then(Value::as_str) {
                self.rooms.remove(room);
            }
            return None;
        }
        let carriers = rules.rooms.get(kind)?;
        let candidates: Vec<String> = carriers.iter().filter_map(|t| expand(t, v)).collect();
        if candidates.iter().any(|r| self.rooms.contains(r)) {
            return None;
        }
        Some(Violation {
            dir: Direction::In,
            kind: kind.to_string(),
            keyword: "unsubscribed".into(),
            pointer: String::new(),
            message: format!(
                "a {kind} event for {} while this connection holds none of them",
                candidates.join(", ")
            ),
        })
    }
}

/// `scrape:{/data/job_id}` with the event's job id; `None` when the field is missing.
fn expand(template: &str, v: &Value) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let value = lookup(v, &rest[open + 1..close])?;
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> RoomRules {
        RoomRules {
            subscribe: "subscribe".into(),
            room: "/room".into(),
            unsubscribed: "unsubscribe".into(),
            unsubscribed_room: "/data/room".into(),
            rooms: [(
                "scrape.progress".to_string(),
                vec![
                    "scrape:all".to_string(),
                    "scrape:{/data/job_id}".to_string(),
                ],
            )]
            .into(),
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
    fn templates_fill_from_the_event() {
        let v = json!({"data": {"id": 7, "s": "x"}});
        assert_eq!(
            expand("a:{/data/s}:{/data/id}", &v).as_deref(),
            Some("a:x:7")
        );
        assert_eq!(expand("a:{/data/none}", &v), None);
        assert_eq!(expand("plain", &v).as_deref(), Some("plain"));
    }
}
