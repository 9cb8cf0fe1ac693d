//! The chat endpoint (`/newloom/ws/chat/`): chat messages and typing indicators, each
//! published once into the chat's room and delivered to every member, the sender too.
//!
//! Membership: `?chats=1,2` names the chats the user belongs to; the connection joins them
//! all when it opens and may post only to them (`permission_denied` otherwise). Without
//! `?chats=` every chat is open, and a connection joins a chat when it first sends a
//! `message` or `typing` frame to it.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use super::{
    error, invalid, receive, room_limit, unknown_type, Code, Heartbeat, Identity, Inbound,
};
use crate::clock::now_rfc3339;
use crate::session::{self, Cx};
use crate::Config;

/// Message ids, server-wide like a database primary key; unique across chats and servers
/// in one process, increasing within a chat.
static NEXT_MESSAGE_ID: AtomicU64 = AtomicU64::new(1);

/// Numbers the default user names (`user<N>`) of connections without `?user=`; connection
/// ids are only unique per runtime, so they would repeat across runtimes.
static NEXT_ANONYMOUS: AtomicU64 = AtomicU64::new(1);

/// "2. Receive Message", with the chat's sequence number.
#[derive(Serialize)]
struct MessageFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: Stored<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// The stored message as the document shows it.
#[derive(Serialize)]
struct Stored<'a> {
    id: u64,
    content: &'a str,
    user: &'a str,
    timestamp: &'a str,
    chat_id: u64,
}

/// "3. Typing Indicator", naming the typing user, with the chat's sequence number.
#[derive(Serialize)]
struct TypingFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    chat_id: u64,
    user: &'a str,
    is_typing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// One chat connection.
pub(crate) struct Session {
    /// The user named in every frame this connection publishes.
    user: String,
    /// The chats the user belongs to (sorted); `None`: every chat.
    allowed: Option<Vec<u64>>,
    max_chats: usize,
    heartbeat: Heartbeat,
    /// `--strict-doc`: published frames carry no `seq` (an extension).
    strict: bool,
}

impl Session {
    pub fn new(id: Identity, config: &Config) -> Self {
        Session {
            user: id
                .user
                .unwrap_or_else(|| format!("user{}", NEXT_ANONYMOUS.fetch_add(1, Relaxed))),
            allowed: id.rooms,
            max_chats: room_limit(config),
            heartbeat: Heartbeat::new(config, Instant::now()),
            strict: config.strict_doc,
        }
    }

    /// Checks that the user may post to `chat_id` and makes the connection a member.
    fn enter(&self, chat_id: u64, room: &str, cx: &mut Cx<'_>) -> bool {
        if let Some(allowed) = &self.allowed {
            if allowed.binary_search(&chat_id).is_err() {
                cx.reject("permission_denied");
                cx.send(error(
                    Code::PermissionDenied,
                    "Not authorized for this chat",
                ));
                return false;
            }
        }
        if !cx.is_member(room) {
            if cx.rooms().count() >= self.max_chats {
                cx.reject("chat_limit");
                let max = self.max_chats;
                let message =
                    format!("Not authorized for this chat: at most {max} chats per connection");
                cx.send(error(Code::PermissionDenied, &message));
                return false;
            }
            cx.join(room);
        }
        true
    }

    /// The chat a frame names, or `invalid_format` when it names none.
    fn chat(msg: &Inbound<'_>, cx: &mut Cx<'_>) -> Option<u64> {
        let id = msg.chat_id.filter(|&id| id >= 1);
        if id.is_none() {
            let message = format!(
                "Invalid message format: '{}' needs 'chat_id', an integer >= 1",
                msg.kind
            );
            invalid(cx, "invalid_format", &message);
        }
        id
    }

    fn message(&self, msg: &Inbound<'_>, cx: &mut Cx<'_>) {
        let Some(chat_id) = Self::chat(msg, cx) else {
            return;
        };
        let Some(content) = msg.content.as_deref().filter(|c| !c.is_empty()) else {
            let text = "Invalid message format: 'message' needs 'content', a non-empty string";
            return invalid(cx, "invalid_format", text);
        };
        let room = chat_id.to_string();
        if !self.enter(chat_id, &room, cx) {
            return;
        }
        cx.publish(&room, |seq| {
            let timestamp = now_rfc3339();
            let frame = MessageFrame {
                kind: "message",
                message: Stored {
                    id: NEXT_MESSAGE_ID.fetch_add(1, Relaxed),
                    content,
                    user: &self.user,
                    timestamp: &timestamp,
                    chat_id,
                },
                seq: (!self.strict).then_some(seq),
            };
            serde_json::to_string(&frame).unwrap_or_default()
        });
        cx.count("chat_messages", "", 1);
    }

    fn typing(&self, msg: &Inbound<'_>, cx: &mut Cx<'_>) {
        let Some(chat_id) = Self::chat(msg, cx) else {
            return;
        };
        let Some(is_typing) = msg.is_typing else {
            let text = "Invalid message format: 'typing' needs 'is_typing', a boolean";
            return invalid(cx, "invalid_format", text);
        };
        let room = chat_id.to_string();
        if !self.enter(chat_id, &room, cx) {
            return;
        }
        cx.publish(&room, |seq| {
            let frame = TypingFrame {
                kind: "typing",
                chat_id,
                user: &self.user,
                is_typing,
                seq: (!self.strict).then_some(seq),
            };
            serde_json::to_string(&frame).unwrap_or_default()
        });
    }
}

impl session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) {
        self.heartbeat.seen(cx.now);
        for chat_id in self.allowed.iter().flatten() {
            cx.join(&chat_id.to_string());
        }
    }

    fn text(&mut self, text: &Utf8Bytes, cx: &mut Cx<'_>) {
        let Some(msg) = receive(text, &mut self.heartbeat, cx) else {
            return;
        };
        match msg.kind.as_ref() {
            "message" => self.message(&msg, cx),
            "typing" => self.typing(&msg, cx),
            other => unknown_type(cx, other),
        }
    }

    fn binary(&mut self, _data: &Bytes, cx: &mut Cx<'_>) {
        super::binary(&mut self.heartbeat, cx);
    }

    fn deadline(&self) -> Option<Instant> {
        self.heartbeat.deadline()
    }

    fn timer(&mut self, cx: &mut Cx<'_>) {
        self.heartbeat.check(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::MAX_ROOMS;
    use super::*;
    use crate::session::{Harness, Proto, Session as _};
    use serde_json::Value;

    fn session(h: &mut Harness, user: Option<&str>, chats: Option<Vec<u64>>) -> Session {
        let id = Identity {
            user: user.map(str::to_owned),
            rooms: chats,
        };
        let mut s = Session::new(id, &h.config);
        s.open(&mut h.cx());
        s
    }

    fn send(h: &mut Harness, s: &mut Session, text: &str) -> Vec<Value> {
        s.text(&Utf8Bytes::from(text.to_owned()), &mut h.cx());
        h.sent()
    }

    fn code(h: &mut Harness, s: &mut Session, text: &str) -> String {
        let sent = send(h, s, text);
        assert_eq!(sent.len(), 1, "one reply to {text}: {sent:?}");
        assert_eq!(sent[0]["type"], "error");
        sent[0]["code"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_message_is_published_once_with_id_timestamp_and_seq() {
        let mut h = Harness::new(Proto::NewloomChat);
        let mut s = session(&mut h, Some("alice"), None);
        let msg = r#"{"type":"message","content":"hi","chat_id":123}"#;
        assert!(send(&mut h, &mut s, msg).is_empty(), "no direct reply");
        assert!(send(&mut h, &mut s, msg).is_empty());
        let typing = r#"{"type":"typing","chat_id":123,"is_typing":true,"user":"mallory"}"#;
        send(&mut h, &mut s, typing);
        let published = h.published();
        assert_eq!(published.len(), 3);
        let (room, first) = &published[0];
        assert_eq!(room, "123");
        assert_eq!(first["message"]["content"], "hi");
        assert_eq!(first["message"]["user"], "alice");
        assert_eq!(first["message"]["chat_id"], 123);
        assert!(first["message"]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        let second = &published[1].1;
        assert!(second["message"]["id"].as_u64() > first["message"]["id"].as_u64());
        let seqs: Vec<_> = published.iter().map(|(_, f)| f["seq"].clone()).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(
            published[2].1["user"], "alice",
            "the client's user is ignored"
        );
        assert_eq!(h.cx().rooms().collect::<Vec<_>>(), ["123"]);
    }

    #[test]
    fn bad_frames_get_invalid_format() {
        let mut h = Harness::new(Proto::NewloomChat);
        let mut s = session(&mut h, None, None);
        for bad in [
            "not json",
            "[]",
            r#"{"content":"x","chat_id":1}"#,
            r#"{"type":"message","content":"x"}"#,
            r#"{"type":"message","content":"x","chat_id":0}"#,
            r#"{"type":"message","content":"x","chat_id":"1"}"#,
            r#"{"type":"message","content":"x","chat_id":-1}"#,
            r#"{"type":"message","content":"","chat_id":1}"#,
            r#"{"type":"message","chat_id":1}"#,
            r#"{"type":"typing","chat_id":1}"#,
            r#"{"type":"typing","chat_id":1,"is_typing":"yes"}"#,
            r#"{"type":"subscribe","chat_id":1}"#,
        ] {
            assert_eq!(code(&mut h, &mut s, bad), "invalid_format", "{bad}");
        }
        let deep = format!(
            r#"{{"type":"heartbeat","x":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        // serde_json skips an unknown field's value without recursing: no stack at risk.
        assert!(
            send(&mut h, &mut s, &deep).is_empty(),
            "a heartbeat after all"
        );
        s.binary(&Bytes::from_static(b"\x00"), &mut h.cx());
        assert_eq!(h.sent()[0]["code"], "invalid_format");
        assert!(h.fx.close.is_none(), "format errors keep the connection");
        assert!(h.published().is_empty());
        let rejects: u64 = h.hub.counters().iter().map(|(_, n)| n).sum();
        assert_eq!(rejects, 13);
    }

    #[test]
    fn chats_outside_the_list_are_denied() {
        let mut h = Harness::new(Proto::NewloomChat);
        let mut s = session(&mut h, None, Some(vec![5, 7]));
        assert_eq!(h.cx().rooms().count(), 2, "listed chats joined at open");
        let denied = r#"{"type":"message","content":"x","chat_id":6}"#;
        assert_eq!(code(&mut h, &mut s, denied), "permission_denied");
        let typing = r#"{"type":"typing","chat_id":6,"is_typing":false}"#;
        assert_eq!(code(&mut h, &mut s, typing), "permission_denied");
        send(
            &mut h,
            &mut s,
            r#"{"type":"message","content":"x","chat_id":7}"#,
        );
        let published = h.published();
        assert_eq!(published.len(), 1);
        let user = published[0].1["message"]["user"].as_str().unwrap();
        assert!(
            user.starts_with("user") && user[4..].parse::<u64>().is_ok(),
            "{user}"
        );
    }

    #[test]
    fn the_chat_limit_is_switchable() {
        let mut h = Harness::new(Proto::NewloomChat);
        let mut s = session(&mut h, None, None);
        let typing = |i: usize| format!(r#"{{"type":"typing","chat_id":{i},"is_typing":true}}"#);
        for i in 1..=MAX_ROOMS {
            assert!(send(&mut h, &mut s, &typing(i)).is_empty());
        }
        let over = typing(MAX_ROOMS + 1);
        assert_eq!(code(&mut h, &mut s, &over), "permission_denied");
        assert!(
            send(&mut h, &mut s, &typing(1)).is_empty(),
            "a joined chat still works"
        );
        let mut h2 = Harness::new(Proto::NewloomChat);
        h2.config.limits.subscriptions = false;
        let mut s = session(&mut h2, None, None);
        for i in 1..=MAX_ROOMS + 1 {
            assert!(send(&mut h2, &mut s, &typing(i)).is_empty());
        }
    }

    #[test]
    fn heartbeat_is_silent_and_disconnect_closes() {
        let mut h = Harness::new(Proto::NewloomChat);
        let mut s = session(&mut h, None, None);
        assert!(send(&mut h, &mut s, r#"{"type":"heartbeat"}"#).is_empty());
        assert!(h.fx.close.is_none());
        assert!(send(&mut h, &mut s, r#"{"type":"disconnect"}"#).is_empty());
        assert_eq!(h.fx.close.as_ref().map(|c| c.0), Some(1000));
    }
}
