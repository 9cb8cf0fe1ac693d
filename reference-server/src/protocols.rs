//! Which code serves each protocol: admission (auth, per-client limits) and event generation.

use rand::rngs::ThreadRng;
use serde_json::Value;

use crate::clock::now_rfc3339;
use crate::hub::Hub;
use crate::session::{Admitted, Proto, Refusal, Upgrade};
use crate::{covetpy, echo, kite, Config};

/// Builds one generated event for a room with a sequence number; `None` when the room
/// has no generated events.
pub(crate) type EventFn = fn(&str, u64, &mut ThreadRng) -> Option<String>;

/// Decides an upgrade for `proto`: a session, or the HTTP refusal.
pub(crate) fn admit(proto: Proto, up: &Upgrade<'_>, config: &Config) -> Result<Admitted, Refusal> {
    match proto {
        Proto::Kite => kite::admit(up, config),
        Proto::Covetpy => covetpy::admit(up, config),
        Proto::Conformance => Ok(echo::admit()),
        // Not served yet: answered like an unknown path.
        _ => Err(Refusal {
            status: 404,
            reason: "not_served",
            body: format!("{} is not served yet\n", proto.name()),
        }),
    }
}

/// The event generator of `proto`, if it generates events.
pub(crate) fn events(proto: Proto) -> Option<EventFn> {
    match proto {
        Proto::Kite => Some(kite::events::event),
        Proto::Covetpy => Some(covetpy::events::event),
        _ => None,
    }
}

/// Where a protocol's events carry the per-room sequence number and the send time (JSON
/// pointers into the frame); `/publish` stamps both into the frame it is given.
pub(crate) fn stamps(proto: Proto) -> Option<(&'static str, &'static str)> {
    match proto {
        Proto::Kite => Some(("/seq", "/timestamp")),
        _ => None,
    }
}

/// `POST /publish?protocol=P&room=R`: publishes the body (a complete event frame, a JSON
/// object) into room R of protocol P, stamped with the room's next sequence number and
/// the send time. Answers (HTTP status, JSON body).
pub(crate) fn publish(hub: &Hub, query: &str, body: &[u8]) -> (u16, String) {
    let up = Upgrade {
        path: "/publish",
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

/// Sets the value at a JSON pointer, creating objects on the way.
fn set(root: &mut Value, pointer: &str, value: Value) {
    let mut at = root;
    let mut parts = pointer.split('/').skip(1).peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = at else { return };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return;
        }
        at = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}
