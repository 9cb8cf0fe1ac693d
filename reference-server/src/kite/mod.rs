//! The Kite protocol: room names, typed inbound messages, and reply frames built without a `Value` tree.

pub(crate) mod events;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::clock::now_rfc3339;
use crate::session::{self, Admitted, Cx, Refusal, Upgrade};
use crate::Config;

/// Most rooms one connection may be subscribed to (seeds/kite.md, "Connection Limits").
pub const MAX_SUBSCRIPTIONS: usize = 50;

/// Messages per second one connection may send (seeds/kite.md, "Connection Limits").
pub const MAX_RATE: u32 = 100;

/// Connections one client may hold open (seeds/kite.md, "Connection Limits").
pub const MAX_PER_CLIENT: usize = 10;

/// Checks a room name against the documented families ("Rooms").
pub(crate) fn classify_room(room: &str) -> Result<(), String> {
    let (family, rest) = room
        .split_once(':')
        .ok_or_else(|| format!("invalid room '{room}': expected 'family:name'"))?;
    if rest.is_empty() {
        return Err(format!("invalid room '{room}': empty name after ':'"));
    }
    match (family, rest) {
        ("scrape" | "cases" | "case" | "search" | "metrics", _) => Ok(()),
        ("workers" | "queue", "all") | ("alerts", "all" | "system" | "quality") => Ok(()),
        // These families only have the documented fixed rooms.
        ("workers" | "queue" | "alerts", _) => Err(format!("unknown room '{room}'")),
        _ => Err(format!("unknown room family '{family}' in '{room}'")),
    }
}

/// Admits an upgrade: with an auth token configured, the client must present it as
/// `?token=` or `Authorization: Bearer`; the per-client limit keys on that token (or
/// `?client_id=`), so anonymous clients on one address are not lumped together.
pub(crate) fn admit(up: &Upgrade<'_>, config: &Config) -> Result<Admitted, Refusal> {
    let bearer = up
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned);
    let token = up.param("token").or(bearer);
    if config.auth_token.is_some() && !token.as_deref().is_some_and(|t| config.token_ok(t)) {
        return Err(Refusal {
            status: 401,
            reason: "unauthorized",
            body: "Unauthorized: a valid token is required\n".into(),
        });
    }
    // `?client_id=` is an extension (kite.md names no query parameter): --strict-doc
    // keys the limit on the token alone.
    let client = token.or_else(|| up.param("client_id").filter(|_| !config.strict_doc));
    let per_client = client
        .filter(|_| config.limits.per_client)
        .map(|c| (c, MAX_PER_CLIENT));
    Ok(Admitted {
        session: Box::new(Session::new(config)),
        per_client,
    })
}

/// An inbound frame; unknown fields are ignored so clients may send extra data.
#[derive(Deserialize)]
pub(crate) struct Inbound<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub room: Option<Cow<'a, str>>,
    /// Request id echoed in the reply, kept verbatim (number or string).
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Frame<'a, D: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: D,
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct ClientData<'a> {
    client_id: &'a str,
}

#[derive(Serialize)]
struct WelcomeData<'a> {
    client_id: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct RoomData<'a> {
    client_id: &'a str,
    room: &'a str,
    status: &'a str,
}

#[derive(Serialize)]
struct ErrorData<'a> {
    message: &'a str,
}

fn frame<D: Serialize>(kind: &str, data: D, id: Option<&RawValue>) -> String {
    let timestamp = now_rfc3339();
    let frame = Frame {
        kind,
        data,
        timestamp: &timestamp,
        id,
    };
    // Serializing plain structs of strings cannot fail.
    serde_json::to_string(&frame).unwrap_or_default()
}

/// Per-connection Kite state: the client id, subscription count and rate window.
pub(crate) struct Session {
    client_id: String,
    /// `--strict-doc`: no ids echoed, no `error` frames, no unsubscribe ack (kite.md
    /// defines none of them); what would get an error is dropped without a reply.
    strict: bool,
    max_subscriptions: Option<usize>,
    rate: Option<Window>,
}

/// A fixed one-second window counting messages.
struct Window {
    start: Option<Instant>,
    count: u32,
}

impl Window {
    /// Counts a message; false when it is over the limit.
    fn admit(&mut self, now: Instant) -> bool {
        match self.start {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.start = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        self.count <= MAX_RATE
    }
}

impl Session {
    pub fn new(config: &Config) -> Self {
        Session {
            client_id: uuid::Uuid::new_v4().to_string(),
            strict: config.strict_doc,
            max_subscriptions: config.limits.subscriptions.then_some(MAX_SUBSCRIPTIONS),
            rate: config.limits.rate.then_some(Window {
                start: None,
                count: 0,
            }),
        }
    }

    /// The frame sent right after the upgrade.
    pub fn welcome(&self) -> String {
        let data = WelcomeData {
            client_id: &self.client_id,
            message: "Connected to Kite WebSocket API",
        };
        frame("welcome", data, None)
    }

    /// Handles one text message, replying through `cx`.
    fn handle(&mut self, text: &str, cx: &mut Cx<'_>) {
        let msg: Inbound<'_> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                cx.reject("invalid_json");
                return self.refuse(&format!("invalid message: {e}"), None, cx);
            }
        };
        // kite.md gives requests no id: under --strict-doc none is echoed.
        let id = msg.id.filter(|_| !self.strict);
        match (msg.kind.as_ref(), msg.room.as_deref()) {
            ("ping", _) => {
                let data = ClientData {
                    client_id: &self.client_id,
                };
                cx.send(frame("pong", data, id));
            }
            ("subscribe", Some(room)) => self.subscribe(room, id, cx),
            ("unsubscribe", Some(room)) => {
                cx.leave(room);
                if !self.strict {
                    cx.send(self.room_reply("unsubscribe", room, "unsubscribed", id));
                }
            }
            ("subscribe" | "unsubscribe", None) => {
                cx.reject("invalid_message");
                self.refuse(&format!("'{}' needs a 'room' field", msg.kind), id, cx);
            }
            (other, _) => {
                cx.reject("unknown_type");
                self.refuse(&format!("unknown message type '{other}'"), id, cx);
            }
        }
    }

    fn subscribe(&mut self, room: &str, id: Option<&RawValue>, cx: &mut Cx<'_>) {
        if let Err(e) = classify_room(room) {
            cx.reject("unknown_room");
            return self.refuse(&e, id, cx);
        }
        if !cx.is_member(room) {
            let held = cx.rooms().count();
            if self.max_subscriptions.is_some_and(|max| held >= max) {
                cx.reject("subscription_limit");
                let text = format!("subscription limit reached ({MAX_SUBSCRIPTIONS} rooms)");
                return self.refuse(&text, id, cx);
            }
            cx.join(room);
        }
        cx.send(self.room_reply("subscribe", room, "subscribed", id));
    }

    /// Sends an `error` frame (a reference-server extension); under `--strict-doc` the
    /// refused message gets no reply, as kite.md defines no error frame.
    fn refuse(&self, message: &str, id: Option<&RawValue>, cx: &mut Cx<'_>) {
        if !self.strict {
            cx.send(error(message, id));
        }
    }

    fn room_reply(&self, kind: &str, room: &str, status: &str, id: Option<&RawValue>) -> String {
        let data = RoomData {
            client_id: &self.client_id,
            room,
            status,
        };
        frame(kind, data, id)
    }
}

impl session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) {
        cx.send(self.welcome());
    }

    fn text(&mut self, text: &Utf8Bytes, cx: &mut Cx<'_>) {
        if let Some(window) = &mut self.rate {
            if !window.admit(cx.now) {
                cx.reject("rate_limit");
                let text = format!("rate limit exceeded: at most {MAX_RATE} messages per second");
                return self.refuse(&text, None, cx);
            }
        }
        self.handle(text, cx);
    }

    fn binary(&mut self, _data: &Bytes, cx: &mut Cx<'_>) {
        cx.reject("binary_frame");
        self.refuse("binary frames are not supported; send JSON text", None, cx);
    }
}

/// An `error` frame with a human-readable message.
pub(crate) fn error(message: &str, id: Option<&RawValue>) -> String {
    frame("error", ErrorData { message }, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Harness, Proto, Session as _};

    fn send(h: &mut Harness, s: &mut Session, text: &str) -> serde_json::Value {
        s.text(&Utf8Bytes::from(text.to_owned()), &mut h.cx());
        h.sent().pop().expect("a reply")
    }

    #[test]
    fn ping_echoes_id_and_errors_are_frames() {
        let mut h = Harness::new(Proto::Kite);
        let mut s = Session::new(&h.config);
        let pong = send(&mut h, &mut s, r#"{"type":"ping","id":42,"data":{}}"#);
        assert_eq!(pong["type"], "pong");
        assert_eq!(pong["id"], 42);
        assert_eq!(send(&mut h, &mut s, "nope")["type"], "error");
        assert_eq!(send(&mut h, &mut s, r#"{"type":"x"}"#)["type"], "error");
    }

    #[test]
    fn rooms_are_checked_and_limited() {
        assert!(classify_room("scrape:all").is_ok());
        assert!(classify_room("case:cth/HCA/2023/15").is_ok());
        assert!(classify_room("bogus:all").is_err());
        assert!(classify_room("workers:x").is_err());
        let mut h = Harness::new(Proto::Kite);
        let mut s = Session::new(&h.config);
        for i in 0..MAX_SUBSCRIPTIONS {
            let r = send(
                &mut h,
                &mut s,
                &format!(r#"{{"type":"subscribe","room":"case:{i}"}}"#),
            );
            assert_eq!(r["data"]["status"], "subscribed");
        }
        let r = send(&mut h, &mut s, r#"{"type":"subscribe","room":"case:x"}"#);
        assert_eq!(r["type"], "error");
        h.config.limits.subscriptions = false;
        let mut s = Session::new(&h.config);
        let r = send(&mut h, &mut s, r#"{"type":"subscribe","room":"case:x"}"#);
        assert_eq!(r["type"], "subscribe", "limit off: the 51st is accepted");
    }

    #[test]
    fn rate_limit_rejects_the_101st_message_in_a_second() {
        let mut h = Harness::new(Proto::Kite);
        let mut s = Session::new(&h.config);
        for _ in 0..MAX_RATE {
            assert_eq!(send(&mut h, &mut s, r#"{"type":"ping"}"#)["type"], "pong");
        }
        assert_eq!(send(&mut h, &mut s, r#"{"type":"ping"}"#)["type"], "error");
        h.now += Duration::from_secs(1);
        assert_eq!(send(&mut h, &mut s, r#"{"type":"ping"}"#)["type"], "pong");
    }
}
