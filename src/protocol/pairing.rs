//! Replies that must answer a request: a profile's `replies:` rules say which inbound kind
//! answers which outbound kind, and which of its fields must echo the request's (a subscribe
//! ack names the room asked for; a pong carries its ping's id). A reply that answers no
//! pending request on its connection is a violation, `reply_mismatch`.

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use serde_json::Value;

use super::{Direction, Violation};
use crate::swarm::matcher::lookup;

/// Requests remembered per connection; the oldest is forgotten first (without a violation:
/// a reply to it can still come, and it may legitimately never come).
const PENDING_CAP: usize = 256;

/// One rule of `replies:` in `protocol.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRule {
    /// The outbound kind that asks.
    pub request: String,
    /// The inbound kind that answers.
    pub reply: String,
    /// Reply pointer → request pointer: the values must be equal (a field absent on both
    /// sides is equal too).
    #[serde(rename = "match", default)]
    pub fields: BTreeMap<String, String>,
}

/// The requests a connection has sent and not yet seen answered.
#[derive(Debug, Default)]
pub struct Pending {
    queue: VecDeque<(usize, Vec<Value>)>,
}

impl Pending {
    /// Forgets everything (a new connection).
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Remembers an outbound frame that a rule says will be answered.
    pub fn sent(&mut self, rules: &[ReplyRule], kind: Option<&str>, v: &Value) {
        let Some(kind) = kind else { return };
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.request == kind) {
            if self.queue.len() == PENDING_CAP {
                self.queue.pop_front();
            }
            let values = rule.fields.values().map(|p| value_at(v, p)).collect();
            self.queue.push_back((i, values));
        }
    }

    /// Pairs an inbound frame with the oldest pending request it answers; a frame of a reply
    /// kind that answers none is a violation.
    pub fn received(
        &mut self,
        rules: &[ReplyRule],
        kind: Option<&str>,
        v: &Value,
    ) -> Option<Violation> {
        let kind = kind?;
        let mut applies = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.reply == kind)
            .peekable();
        applies.peek()?;
        let applicable: Vec<usize> = applies.map(|(i, _)| i).collect();
        let found = self.queue.iter().position(|(i, values)| {
            applicable.contains(i)
                && rules[*i]
                    .fields
                    .keys()
                    .zip(values)
                    .all(|(reply_ptr, want)| value_at(v, reply_ptr) == *want)
        });
        if let Some(at) = found {
            self.queue.remove(at);
            return None;
        }
        let rule = &rules[applicable[0]];
        let (pointer, shown) = match rule.fields.keys().next() {
            Some(p) => (p.clone(), format!(" with {p} = {}", value_at(v, p))),
            None => (String::new(), String::new()),
        };
        Some(Violation {
            dir: Direction::In,
            kind: kind.to_string(),
            keyword: "reply_mismatch".into(),
            pointer,
            message: format!(
                "a {kind}{shown} answers no pending {} on this connection",
                rule.request
            ),
        })
    }
}

fn value_at(v: &Value, pointer: &str) -> Value {
    lookup(v, pointer).cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Vec<ReplyRule> {
        vec![
            ReplyRule {
                request: "subscribe".into(),
                reply: "subscribe".into(),
                fields: [("/data/room".to_string(), "/room".to_string())].into(),
            },
            ReplyRule {
                request: "ping".into(),
                reply: "pong".into(),
                fields: [("/id".to_string(), "/id".to_string())].into(),
            },
        ]
    }

    #[test]
    fn replies_pair_with_their_requests() {
        let r = rules();
        let mut p = Pending::default();
        p.sent(
            &r,
            Some("subscribe"),
            &json!({"type": "subscribe", "room": "a"}),
        );
        p.sent(
            &r,
            Some("subscribe"),
            &json!({"type": "subscribe", "room": "b"}),
        );
        p.sent(&r, Some("ping"), &json!({"type": "ping"}));
        let ack = |room: &str| json!({"type": "subscribe", "data": {"room": room}});
        assert_eq!(p.received(&r, Some("subscribe"), &ack("b")), None);
        let wrong = p.received(&r, Some("subscribe"), &ack("c")).unwrap();
        assert_eq!(
            (wrong.keyword.as_str(), wrong.pointer.as_str()),
            ("reply_mismatch", "/data/room")
        );
        assert!(wrong.message.contains("\"c\""), "{}", wrong.message);
        assert_eq!(p.received(&r, Some("subscribe"), &ack("a")), None);
        // Answered once: a second answer is a reply to nothing.
        assert!(p.received(&r, Some("subscribe"), &ack("a")).is_some());
        // A pong without an id answers a ping without one; kinds outside the rules pass.
        assert_eq!(p.received(&r, Some("pong"), &json!({"type": "pong"})), None);
        assert_eq!(
            p.received(&r, Some("event"), &json!({"type": "event"})),
            None
        );
    }
}
