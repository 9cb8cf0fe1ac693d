//! Replies that must answer a request: a profile's `replies:` rules say which inbound kind
//! answers which outbound kind, and which of its fields must echo the request's (a subscribe
//! ack names the room asked for; a pong carries its ping's id). A reply that answers no
//! pending request on its connection is a violation, `reply_mismatch`.

use std::collections::{BTreeMap, VecDeque};

use compact_str::CompactString;
use serde::Deserialize;
use serde_json::{Number, Value};

use super::fields::{Fields, Scalar};
use super::{Direction, Violation};

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
    /// The reply may leave every matched field out (its document defines no echo, e.g. a
    /// Kite pong carries no id): one without them answers the oldest pending request of the
    /// rule, in order; one with any of them must echo the request's values. Default false.
    #[serde(default)]
    pub optional: bool,
    /// The profile's correlation pointer when the reply echoes it (set when the profile
    /// loads): a reply that answers nothing is reported there first (Hexabase `/id`, not
    /// `/data/workspace_id`), unless another echoed field alone tells it apart.
    #[serde(skip)]
    pub correlation: Option<String>,
    /// Why the rule is squall's reading where the document is silent: its findings then
    /// break squall's decision, and `--conformance document` drops it.
    #[serde(default)]
    pub decision: Option<String>,
}

/// The requests a connection has sent and not yet seen answered.
#[derive(Debug, Default)]
pub struct Pending {
    /// (rule, the sent frame's number, whether other rules answer the same frame, echoes).
    queue: VecDeque<(usize, u64, bool, Echoed)>,
    sent: u64,
}

/// The request values a reply must echo: one in the common case, held without a `Vec`.
#[derive(Debug)]
enum Echoed {
    One(Echo),
    Many(Vec<Echo>),
}

impl Echoed {
    fn values(&self) -> &[Echo] {
        match self {
            Echoed::One(v) => std::slice::from_ref(v),
            Echoed::Many(v) => v,
        }
    }

    /// Whether a reply's values (`None`: absent) are these, as `Value`s compare.
    fn answered_by(&self, got: &[Option<Scalar>]) -> bool {
        let mine = self.values();
        mine.len() == got.len() && mine.iter().zip(got).all(|(m, g)| m.is(g.as_ref()))
    }
}

/// One echoed request value: strings held inline when short, so remembering a request's
/// id does not allocate. An absent field is `null`.
#[derive(Debug)]
enum Echo {
    Null,
    Bool(bool),
    Num(Number),
    Str(CompactString),
    Other(Value),
}

impl Echo {
    fn of(s: Option<Scalar>) -> Echo {
        match s {
            None | Some(Scalar::Null) => Echo::Null,
            Some(Scalar::Bool(b)) => Echo::Bool(b),
            Some(Scalar::Num(n)) => Echo::Num(n),
            Some(Scalar::Str(s)) => Echo::Str(s.into()),
            Some(Scalar::Other(v)) => Echo::Other(v.into_owned()),
        }
    }

    /// `Value` equality with a reply's value.
    fn is(&self, got: Option<&Scalar>) -> bool {
        match (self, got) {
            (Echo::Null, None | Some(Scalar::Null)) => true,
            (Echo::Bool(a), Some(Scalar::Bool(b))) => a == b,
            (Echo::Num(a), Some(Scalar::Num(b))) => a == b,
            (Echo::Str(a), Some(Scalar::Str(b))) => a == b,
            (Echo::Other(a), Some(Scalar::Other(b))) => a == b.as_ref(),
            _ => false,
        }
    }
}

impl Pending {
    /// Forgets everything (a new connection).
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Remembers an outbound frame that a rule says will be answered.
    pub fn sent<F: Fields + ?Sized>(&mut self, rules: &[ReplyRule], kind: Option<&str>, v: &F) {
        let Some(kind) = kind else { return };
        self.sent += 1;
        // A request two kinds may answer (an RPC's result or its error) is answered once.
        let several = rules.iter().filter(|r| r.request == kind).nth(1).is_some();
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.request == kind) {
            if self.queue.len() == PENDING_CAP {
                self.queue.pop_front();
            }
            let echoed = match rule.fields.len() {
                1 => Echoed::One(Echo::of(first_at(rule.fields.values(), v))),
                _ => Echoed::Many(
                    rule.fields
                        .values()
                        .map(|p| Echo::of(v.scalar_at(p)))
                        .collect(),
                ),
            };
            self.queue.push_back((i, self.sent, several, echoed));
        }
    }

    /// Pairs an inbound frame with the oldest pending request it answers; a frame of a reply
    /// kind that answers none is a violation.
    pub fn received<F: Fields + ?Sized>(
        &mut self,
        rules: &[ReplyRule],
        kind: Option<&str>,
        v: &F,
    ) -> Option<Violation> {
        let kind = kind?;
        let first = rules.iter().position(|r| r.reply == kind)?;
        // The reply's fields are read once per rule, not once per pending request.
        let mut found: Option<usize> = None;
        for (r, rule) in rules.iter().enumerate().skip(first) {
            if rule.reply != kind {
                continue;
            }
            let one;
            let many: Vec<Option<Scalar>>;
            let got: &[Option<Scalar>] = match rule.fields.len() {
                1 => {
                    one = [first_at(rule.fields.keys(), v)];
                    &one
                }
                _ => {
                    many = rule.fields.keys().map(|p| v.scalar_at(p)).collect();
                    &many
                }
            };
            // No echo where the rule allows none: the oldest pending request, in order.
            let in_order = rule.optional && got.iter().all(Option::is_none);
            let at = self
                .queue
                .iter()
                .position(|(i, _, _, echoed)| *i == r && (in_order || echoed.answered_by(got)));
            found = match (found, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let Some(at) = found {
            if let Some((_, n, true, _)) = self.queue.remove(at) {
                self.queue.retain(|(_, m, _, _)| *m != n);
            }
            return None;
        }
        Some(self.mismatch(first, &rules[first], kind, v))
    }

    /// The violation for a `kind` reply (of rule `first`, `rule`) that answers no pending
    /// request: at the echoed field that tells it apart, when one does.
    #[cold]
    fn mismatch<F: Fields + ?Sized>(
        &self,
        first: usize,
        rule: &ReplyRule,
        kind: &str,
        v: &F,
    ) -> Violation {
        let (pointer, shown) = match self.deciding(first, rule, v) {
            Some(p) => (p.to_string(), format!(" with {p} = {}", value_at(v, p))),
            None => (String::new(), String::new()),
        };
        Violation {
            dir: Direction::In,
            kind: kind.to_string(),
            keyword: "reply_mismatch".into(),
            pointer,
            message: format!(
                "a {kind}{shown} answers no pending {} on this connection",
                rule.request
            ),
            source: match rule.decision {
                Some(_) => super::RuleSource::Squall,
                None => super::RuleSource::Document,
            },
        }
    }
}

impl Pending {
    /// The echoed field that tells a reply (of rule `r`) apart from every pending request:
    /// the correlation pointer first, then the others in order, the first whose value no
    /// pending request of the rule has; when each alone matches some request (only together
    /// they match none), the correlation pointer, else the first.
    fn deciding<'r, F: Fields + ?Sized>(
        &self,
        r: usize,
        rule: &'r ReplyRule,
        v: &F,
    ) -> Option<&'r str> {
        let corr = rule
            .correlation
            .as_deref()
            .filter(|c| rule.fields.contains_key(*c));
        let order = corr.into_iter().chain(
            rule.fields
                .keys()
                .map(String::as_str)
                .filter(|k| Some(*k) != corr),
        );
        for pointer in order.clone() {
            let slot = rule.fields.keys().position(|k| k == pointer)?;
            let got = v.scalar_at(pointer);
            let echoed = self
                .queue
                .iter()
                .filter(|(i, ..)| *i == r)
                .any(|(.., e)| e.values().get(slot).is_some_and(|m| m.is(got.as_ref())));
            if !echoed {
                return Some(pointer);
            }
        }
        corr.or_else(|| order.clone().next())
    }
}

/// The value at the first of `pointers`.
fn first_at<'p, 'v, F: Fields + ?Sized>(
    mut pointers: impl Iterator<Item = &'p String>,
    v: &'v F,
) -> Option<Scalar<'v>> {
    pointers.next().and_then(|p| v.scalar_at(p))
}

fn value_at<F: Fields + ?Sized>(v: &F, pointer: &str) -> Value {
    v.value_at(pointer)
        .map(|c| c.into_owned())
        .unwrap_or(Value::Null)
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
                optional: false,
                correlation: None,
                decision: None,
            },
            ReplyRule {
                request: "ping".into(),
                reply: "pong".into(),
                fields: [("/id".to_string(), "/id".to_string())].into(),
                optional: false,
                correlation: None,
                decision: None,
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

    #[test]
    fn a_reply_without_the_optional_echo_pairs_in_order() {
        let mut r = rules();
        r[1].optional = true;
        let mut p = Pending::default();
        for id in [1, 2] {
            p.sent(&r, Some("ping"), &json!({"type": "ping", "id": id}));
        }
        // A document-faithful pong carries no id: it answers the oldest ping, then the next.
        let bare = json!({"type": "pong"});
        assert_eq!(p.received(&r, Some("pong"), &bare), None);
        // One that does carry an id must echo a pending one: ping 1 is answered already.
        assert!(p
            .received(&r, Some("pong"), &json!({"type": "pong", "id": 1}))
            .is_some());
        assert_eq!(p.received(&r, Some("pong"), &bare), None);
        // Two pings, two pongs: a third answers nothing.
        assert!(p.received(&r, Some("pong"), &bare).is_some());
        // Without `optional`, a bare pong does not answer a ping that had an id.
        r[1].optional = false;
        p.sent(&r, Some("ping"), &json!({"type": "ping", "id": 3}));
        assert!(p.received(&r, Some("pong"), &bare).is_some());
    }

    #[test]
    fn a_request_with_two_possible_answers_is_answered_once() {
        let rule = |reply: &str| ReplyRule {
            request: "call".into(),
            reply: reply.into(),
            fields: [("/id".to_string(), "/id".to_string())].into(),
            optional: false,
            correlation: None,
            decision: None,
        };
        let r = vec![rule("result"), rule("error")];
        let mut p = Pending::default();
        p.sent(&r, Some("call"), &json!({"id": 1}));
        p.sent(&r, Some("call"), &json!({"id": 2}));
        assert_eq!(p.received(&r, Some("error"), &json!({"id": 1})), None);
        // Call 1 was answered by its error: a result for it now answers nothing.
        assert!(p.received(&r, Some("result"), &json!({"id": 1})).is_some());
        assert_eq!(p.received(&r, Some("result"), &json!({"id": 2})), None);
        assert!(p.received(&r, Some("error"), &json!({"id": 2})).is_some());
    }

    #[test]
    fn a_mismatch_is_reported_at_the_field_that_tells_it_apart() {
        // Hexabase "Get Workspace Status": the id and the workspace are echoed.
        let r = vec![ReplyRule {
            request: "get".into(),
            reply: "status".into(),
            fields: [
                ("/id".to_string(), "/id".to_string()),
                ("/data/ws".to_string(), "/data/ws".to_string()),
            ]
            .into(),
            optional: false,
            correlation: Some("/id".into()),
            decision: None,
        }];
        let mut p = Pending::default();
        let frame = |id: &str, ws: &str| json!({"id": id, "data": {"ws": ws}});
        p.sent(&r, Some("get"), &frame("cmd-1", "ws-1"));
        let at = |p: &mut Pending, v: Value| p.received(&r, Some("status"), &v).unwrap().pointer;
        assert_eq!(at(&mut p, frame("cmd-9", "ws-1")), "/id");
        assert_eq!(at(&mut p, frame("cmd-1", "ws-9")), "/data/ws");
        // Both wrong: the correlation pointer comes first.
        assert_eq!(at(&mut p, frame("cmd-9", "ws-9")), "/id");
        // Each echoes some pending request, together none: the correlation pointer.
        p.sent(&r, Some("get"), &frame("cmd-2", "ws-2"));
        assert_eq!(at(&mut p, frame("cmd-1", "ws-2")), "/id");
        // Nothing pending: the correlation pointer.
        let mut empty = Pending::default();
        assert_eq!(at(&mut empty, frame("cmd-1", "ws-1")), "/id");
    }
}
