//! The Kite protocol: room names, typed inbound messages, and reply frames built without a `Value` tree.

pub(crate) mod events;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

use crate::clock::now_rfc3339;

/// Most rooms one connection may be subscribed to (seeds/kite.md, "Connection Limits").
pub const MAX_SUBSCRIPTIONS: usize = 50;

/// Largest message Kite accepts (seeds/kite.md: 512 KB).
pub const MAX_MESSAGE_SIZE: usize = 512 * 1024;

/// Rooms the event generator publishes into; only these carry events for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    ScrapeAll,
    CasesAll,
    WorkersAll,
    QueueAll,
    AlertsAll,
    AlertsSystem,
    AlertsQuality,
    MetricsAll,
}

impl Feed {
    pub const COUNT: usize = 8;
    pub const ALL: [Feed; Feed::COUNT] = [
        Feed::ScrapeAll,
        Feed::CasesAll,
        Feed::WorkersAll,
        Feed::QueueAll,
        Feed::AlertsAll,
        Feed::AlertsSystem,
        Feed::AlertsQuality,
        Feed::MetricsAll,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Feed::ScrapeAll => "scrape:all",
            Feed::CasesAll => "cases:all",
            Feed::WorkersAll => "workers:all",
            Feed::QueueAll => "queue:all",
            Feed::AlertsAll => "alerts:all",
            Feed::AlertsSystem => "alerts:system",
            Feed::AlertsQuality => "alerts:quality",
            Feed::MetricsAll => "metrics:all",
        }
    }
}

/// Checks a room name against the documented families; `Ok(Some(feed))` for a room
/// with generated events, `Ok(None)` for a valid room that gets none yet.
pub(crate) fn classify_room(room: &str) -> Result<Option<Feed>, String> {
    if let Some(feed) = Feed::ALL.iter().find(|f| f.name() == room) {
        return Ok(Some(*feed));
    }
    let (family, rest) = room
        .split_once(':')
        .ok_or_else(|| format!("invalid room '{room}': expected 'family:name'"))?;
    if rest.is_empty() {
        return Err(format!("invalid room '{room}': empty name after ':'"));
    }
    match family {
        "scrape" | "cases" | "case" | "search" | "metrics" => Ok(None),
        // These families only have the documented fixed rooms.
        "workers" | "queue" | "alerts" => Err(format!("unknown room '{room}'")),
        _ => Err(format!("unknown room family '{family}' in '{room}'")),
    }
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

/// Per-connection Kite state: the client id and its subscriptions.
pub(crate) struct Session {
    client_id: String,
    rooms: Vec<String>,
}

/// What the connection must do with the room registry after a message.
pub(crate) enum Effect {
    None,
    Join(Feed),
    Leave(Feed),
}

impl Session {
    pub fn new() -> Self {
        Session {
            client_id: uuid::Uuid::new_v4().to_string(),
            rooms: Vec::new(),
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

    /// Rooms with events this session is subscribed to, for cleanup on close.
    pub fn feeds(&self) -> impl Iterator<Item = Feed> + '_ {
        self.rooms
            .iter()
            .filter_map(|r| classify_room(r).ok().flatten())
    }

    /// Handles one text message: the reply frame and any registry change.
    pub fn handle(&mut self, text: &str) -> (String, Effect) {
        let msg: Inbound<'_> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return (error(&format!("invalid message: {e}"), None), Effect::None),
        };
        match (msg.kind.as_ref(), msg.room.as_deref()) {
            ("ping", _) => {
                let data = ClientData {
                    client_id: &self.client_id,
                };
                (frame("pong", data, msg.id), Effect::None)
            }
            ("subscribe", Some(room)) => self.subscribe(room, msg.id),
            ("unsubscribe", Some(room)) => self.unsubscribe(room, msg.id),
            ("subscribe" | "unsubscribe", None) => {
                let text = format!("'{}' needs a 'room' field", msg.kind);
                (error(&text, msg.id), Effect::None)
            }
            (other, _) => {
                let text = format!("unknown message type '{other}'");
                (error(&text, msg.id), Effect::None)
            }
        }
    }

    fn subscribe(&mut self, room: &str, id: Option<&RawValue>) -> (String, Effect) {
        let feed = match classify_room(room) {
            Ok(feed) => feed,
            Err(e) => return (error(&e, id), Effect::None),
        };
        let mut effect = Effect::None;
        if !self.rooms.iter().any(|r| r == room) {
            if self.rooms.len() >= MAX_SUBSCRIPTIONS {
                let text = format!("subscription limit reached ({MAX_SUBSCRIPTIONS} rooms)");
                return (error(&text, id), Effect::None);
            }
            self.rooms.push(room.to_owned());
            effect = feed.map_or(Effect::None, Effect::Join);
        }
        (self.room_reply("subscribe", room, "subscribed", id), effect)
    }

    fn unsubscribe(&mut self, room: &str, id: Option<&RawValue>) -> (String, Effect) {
        let mut effect = Effect::None;
        if let Some(i) = self.rooms.iter().position(|r| r == room) {
            self.rooms.swap_remove(i);
            if let Ok(Some(feed)) = classify_room(room) {
                effect = Effect::Leave(feed);
            }
        }
        (
            self.room_reply("unsubscribe", room, "unsubscribed", id),
            effect,
        )
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

/// An `error` frame with a human-readable message.
pub(crate) fn error(message: &str, id: Option<&RawValue>) -> String {
    frame("error", ErrorData { message }, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn ping_echoes_id_and_errors_are_frames() {
        let mut s = Session::new();
        let (pong, _) = s.handle(r#"{"type":"ping","id":42,"data":{}}"#);
        let pong = json(&pong);
        assert_eq!(pong["type"], "pong");
        assert_eq!(pong["id"], 42);
        assert_eq!(json(&s.handle("nope").0)["type"], "error");
        assert_eq!(json(&s.handle(r#"{"type":"x"}"#).0)["type"], "error");
    }

    #[test]
    fn rooms_are_checked_and_limited() {
        assert_eq!(classify_room("scrape:all"), Ok(Some(Feed::ScrapeAll)));
        assert_eq!(classify_room("case:cth/HCA/2023/15"), Ok(None));
        assert!(classify_room("bogus:all").is_err());
        assert!(classify_room("workers:x").is_err());
        let mut s = Session::new();
        for i in 0..MAX_SUBSCRIPTIONS {
            let (r, _) = s.handle(&format!(r#"{{"type":"subscribe","room":"case:{i}"}}"#));
            assert_eq!(json(&r)["data"]["status"], "subscribed");
        }
        let (r, _) = s.handle(r#"{"type":"subscribe","room":"case:x"}"#);
        assert_eq!(json(&r)["type"], "error");
    }
}
