//! Which code serves each protocol: admission (auth, per-client limits) and event generation.

use rand::rngs::ThreadRng;
use serde_json::Value;

use crate::clock::now_rfc3339;
use crate::hub::Hub;
use crate::proto::Proto;
use crate::proto::Seq;
use crate::session::{Admitted, Refusal, Upgrade};
use crate::{covetpy, echo, hexabase, kecs, kite, newloom, Config};

/// Builds one generated event for a room with a sequence number; `None` when the room
/// has no generated events.
pub(crate) type EventFn = fn(&str, Seq, &mut ThreadRng) -> Option<String>;

/// Decides an upgrade for `proto`: a session, or the HTTP refusal.
pub(crate) fn admit(proto: Proto, up: &Upgrade<'_>, config: &Config) -> Result<Admitted, Refusal> {
    match proto {
        Proto::Kite => kite::admit(up, config),
        Proto::NewloomChat | Proto::NewloomStreams => newloom::admit(proto, up, config),
        Proto::Kecs => kecs::admit(up, config),
        Proto::Hexabase => hexabase::admit(up, config),
        Proto::Covetpy => covetpy::admit(up, config),
        Proto::Conformance => Ok(echo::admit()),
    }
}

/// The event generator of `proto`, if it generates events. Under `--strict-doc` (`strict`)
/// only where the document defines events: covetpy.md names no frame for room events.
pub(crate) fn events(proto: Proto, strict: bool) -> Option<EventFn> {
    match proto {
        Proto::Covetpy if strict => None,
        Proto::Kite => Some(kite::events::event),
        Proto::NewloomStreams => Some(newloom::streams::event),
        Proto::Kecs => Some(kecs::events::event),
        Proto::Hexabase => Some(hexabase::events::event),
        Proto::Covetpy => Some(covetpy::events::event),
        _ => None,
    }
}

/// Where a protocol's events carry the per-room sequence number and the send time (JSON
/// pointers into the frame); `/publish` stamps both into the frame it is given.
pub(crate) fn stamps(proto: Proto) -> Option<(&'static str, &'static str)> {
    match proto {
        Proto::Kite => Some(("/seq", "/timestamp")),
        // A chat `message` keeps its time inside the stored message; on the streams
        // endpoint only `status_update` has a top-level timestamp, so that is what to publish.
        Proto::NewloomChat => Some(("/seq", "/message/timestamp")),
        Proto::NewloomStreams => Some(("/seq", "/timestamp")),
        // An `event` frame; the publisher supplies its `room` (the schemas' extension) if wanted.
        Proto::Kecs => Some(("/seq", "/timestamp")),
        Proto::Hexabase => Some(("/seq", "/timestamp")),
        // A room event is a one-sample stream_data batch (covetpy/events.rs).
        Proto::Covetpy => Some(("/data/batch/0/seq", "/data/batch/0/timestamp")),
        _ => None,
    }
}

/// `POST /publish?protocol=P&room=R`: publishes the body (a complete event frame, a JSON
/// object) into room R of protocol P, stamped with the room's next sequence number and
/// the send time. Answers (HTTP status, JSON body).
pub(crate) fn publish(hub: &Hub, query: &str, body: &[u8]) -> (u16, String) {
    let up = Upgrade {
        query,
        headers: &[],
    };
    let fail =
        |status: u16, msg: &str| (status, format!("{}\n", serde_json::json!({"error": msg})));
    let proto = up
        .param("protocol")
        .and_then(|p| Proto::ALL.into_iter().find(|x| x.name() == p));
    let (Some(proto), Some(room)) = (proto, up.param("room")) else {
        return fail(400, "query needs protocol=<name> and room=<room>");
    };
    let Some((seq_at, time_at)) = stamps(proto) else {
        return fail(404, "this protocol has no published events");
    };
    let mut frame: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return fail(400, "the body must be a JSON object: the event frame"),
    };
    let key = hub.key(proto, &room);
    let mut seq = 0;
    let subscribers = hub.publish(&key, |n| {
        seq = n;
        set(&mut frame, seq_at, Value::from(n));
        set(&mut frame, time_at, Value::from(now_rfc3339()));
        frame.to_string()
    });
    let reply = serde_json::json!({"protocol": proto.name(), "room": room, "seq": seq, "subscribers": subscribers});
    (200, format!("{reply}\n"))
}

/// Sets the value at a JSON pointer, creating what is missing on the way: an object, or
/// an array when the next token is an index (`/data/batch/0/seq`). An array index may be
/// at most one past the end; a path through a scalar is left alone.
fn set(root: &mut Value, pointer: &str, value: Value) {
    let mut at = root;
    let mut parts = pointer.split('/').skip(1).peekable();
    while let Some(part) = parts.next() {
        let Some(next) = parts.peek() else {
            match at {
                Value::Object(map) => {
                    map.insert(part.to_owned(), value);
                }
                Value::Array(items) => match part.parse::<usize>() {
                    Ok(i) if i < items.len() => items[i] = value,
                    Ok(i) if i == items.len() => items.push(value),
                    _ => {}
                },
                _ => {}
            }
            return;
        };
        let empty = if next.parse::<usize>().is_ok() {
            Value::Array(Vec::new())
        } else {
            Value::Object(Default::default())
        };
        at = match at {
            Value::Object(map) => map.entry(part.to_owned()).or_insert(empty),
            Value::Array(items) => match part.parse::<usize>() {
                Ok(i) if i < items.len() => &mut items[i],
                Ok(i) if i == items.len() => {
                    items.push(empty);
                    &mut items[i]
                }
                _ => return,
            },
            _ => return,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::set;
    use serde_json::json;

    #[test]
    fn set_walks_objects_and_arrays() {
        let mut frame = json!({"data": {"batch": [{"x": 1}]}});
        set(&mut frame, "/data/batch/0/seq", json!(7));
        set(&mut frame, "/seq", json!(8));
        assert_eq!(
            frame,
            json!({"data": {"batch": [{"x": 1, "seq": 7}]}, "seq": 8})
        );
        let mut bare = json!({});
        set(&mut bare, "/data/batch/0/timestamp", json!("t"));
        assert_eq!(bare, json!({"data": {"batch": [{"timestamp": "t"}]}}));
        let mut scalar = json!({"data": 3});
        set(&mut scalar, "/data/batch/5/seq", json!(1));
        assert_eq!(scalar, json!({"data": 3}));
    }
}
