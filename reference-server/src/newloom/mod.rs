//! The NewLoom protocol (seeds/newloom.rst): admission by `?token=` (or the `sessionid`
//! cookie) on both endpoints, the typed inbound frame, the error frames, and the heartbeat
//! deadline both sessions share. The chat endpoint lives in [`chat`], the streams endpoint
//! and its generated events in [`streams`].

pub(crate) mod chat;
pub(crate) mod streams;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::session::{self, Admitted, Cx, Proto, Refusal, Upgrade};
use crate::Config;

/// Chats (or streams) one connection may be in; the document states no limit, so this is
/// the server's own, switched by `limits.subscriptions`.
pub const MAX_ROOMS: usize = 100;

/// Rooms per connection when `limits.subscriptions` is off: still a bound, so a client
/// cannot grow the room tables without limit.
pub const HARD_MAX_ROOMS: usize = 1_000;

/// Longest user name (Django's `User.username` is at most 150 characters).
pub const MAX_USER_CHARS: usize = 150;

/// Heartbeat period the client is expected to keep when `Config.heartbeat` is unset (the
/// document gives none).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// Longest free text echoed back inside an error message (a type name, a parser error).
const MAX_ECHO_CHARS: usize = 120;

/// The three documented error codes ("Error Handling").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// Authentication and connection problems (also a missed heartbeat).
    ConnectionError,
    /// Not JSON, wrong types, missing fields, unknown message types.
    InvalidFormat,
    /// A chat the user does not belong to, or one chat too many.
    PermissionDenied,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::ConnectionError => "connection_error",
            Code::InvalidFormat => "invalid_format",
            Code::PermissionDenied => "permission_denied",
        }
    }
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: &'a str,
}

/// An `error` frame in the "Error Handling" form: `{type, code, message}`.
pub(crate) fn error(code: Code, message: &str) -> String {
    let frame = ErrorFrame {
        kind: "error",
        code: code.as_str(),
        message,
    };
    // A struct of strings always serializes.
    serde_json::to_string(&frame).unwrap_or_default()
}

/// Cuts client-supplied text to a length fit for an error message.
pub(crate) fn clip(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// Any client frame of either endpoint. Fields are checked per type after parsing, so a
/// missing field gets a message naming it; unknown fields are ignored.
#[derive(Deserialize)]
pub(crate) struct Inbound<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    #[serde(default)]
    pub chat_id: Option<u64>,
    #[serde(default)]
    pub is_typing: Option<bool>,
}

/// Reads a client frame: moves the heartbeat deadline, answers bad JSON (`invalid_format`),
/// `heartbeat` (nothing) and `disconnect` (close 1000), and returns any other frame for the
/// endpoint to handle.
pub(crate) fn receive<'a>(
    text: &'a str,
    heartbeat: &mut Heartbeat,
    cx: &mut Cx<'_>,
) -> Option<Inbound<'a>> {
    heartbeat.seen(cx.now);
    // serde would also read a struct from a JSON array; the document's frames are objects.
    if !text.trim_start().starts_with('{') {
        invalid(
            cx,
            "invalid_format",
            "Invalid message format: expected a JSON object",
        );
        return None;
    }
    let msg: Inbound<'a> = match serde_json::from_str(text) {
        Ok(msg) => msg,
        Err(e) => {
            let e = e.to_string();
            let message = format!("Invalid message format: {}", clip(&e));
            invalid(cx, "invalid_format", &message);
            return None;
        }
    };
    match msg.kind.as_ref() {
        "heartbeat" => None,
        "disconnect" => {
            cx.close(1000, "disconnect");
            None
        }
        _ => Some(msg),
    }
}

/// Answers `invalid_format` for a frame that is not acceptable here, counting the reject.
pub(crate) fn invalid(cx: &mut Cx<'_>, reason: &'static str, message: &str) {
    cx.reject(reason);
    cx.send(error(Code::InvalidFormat, message));
}

/// Answers a message type this endpoint does not know.
pub(crate) fn unknown_type(cx: &mut Cx<'_>, kind: &str) {
    let message = format!(
        "Invalid message format: unknown message type '{}'",
        clip(kind)
    );
    invalid(cx, "unknown_type", &message);
}

/// Answers a binary frame with `invalid_format`; unlike the framework default, the
/// connection stays open, as it does for every other format error.
pub(crate) fn binary(heartbeat: &mut Heartbeat, cx: &mut Cx<'_>) {
    heartbeat.seen(cx.now);
    let message = "Invalid message format: binary frames are not supported; send JSON text";
    invalid(cx, "binary_frame", message);
}

/// The client's keep-alive: any frame it sends moves the deadline; two periods without
/// one end the connection.
pub(crate) struct Heartbeat {
    period: Option<Duration>,
    last: Instant,
}

impl Heartbeat {
    /// `Config.heartbeat` (or [`DEFAULT_HEARTBEAT`]); a zero period disables the check.
    pub fn new(config: &Config, now: Instant) -> Self {
        let period = config.heartbeat.unwrap_or(DEFAULT_HEARTBEAT);
        Heartbeat {
            period: (!period.is_zero()).then_some(period),
            last: now,
        }
    }

    /// Something arrived from the client.
    pub fn seen(&mut self, now: Instant) {
        self.last = now;
    }

    /// When the connection is closed unless a frame arrives first.
    pub fn deadline(&self) -> Option<Instant> {
        self.period.map(|p| self.last + 2 * p)
    }

    /// Closes the connection (1001, after a `connection_error`) once the deadline passed.
    pub fn check(&self, cx: &mut Cx<'_>) {
        if self.deadline().is_some_and(|d| cx.now >= d) {
            cx.reject("heartbeat_timeout");
            cx.send(error(
                Code::ConnectionError,
                "Heartbeat timeout: no message within two heartbeat periods",
            ));
            cx.close(1001, "heartbeat timeout");
        }
    }
}

/// A connection refused after the upgrade: the document answers a failed connection with
/// an error frame, so the frame is sent, then the socket is closed with 1008.
struct Denied {
    reason: &'static str,
    message: String,
}

impl session::Session for Denied {
    fn open(&mut self, cx: &mut Cx<'_>) {
        cx.reject(self.reason);
        cx.send(error(Code::ConnectionError, &self.message));
        cx.close(1008, "connection refused");
    }

    fn text(&mut self, _text: &Utf8Bytes, _cx: &mut Cx<'_>) {}
}

/// Why a connection is not admitted: the reject reason and the error frame's message.
type Denial = (&'static str, String);

/// Who a connection is and which rooms (chats or streams) its query names.
pub(crate) struct Identity {
    /// `?user=`, when given; the chat falls back to `user<N>`.
    pub user: Option<String>,
    /// `?chats=` or `?streams=`, sorted and deduplicated; `None` when absent.
    pub rooms: Option<Vec<u64>>,
}

/// Admits an upgrade to either endpoint. Every upgrade is accepted at the HTTP level; a
/// failure is answered the documented way, with a `connection_error` frame.
pub(crate) fn admit(proto: Proto, up: &Upgrade<'_>, config: &Config) -> Result<Admitted, Refusal> {
    let session: Box<dyn session::Session> = match identify(proto, up, config) {
        Err((reason, message)) => Box::new(Denied { reason, message }),
        Ok(id) if proto == Proto::NewloomStreams => Box::new(streams::Session::new(id, config)),
        Ok(id) => Box::new(chat::Session::new(id, config)),
    };
    Ok(Admitted {
        session,
        per_client: None,
    })
}

/// Checks the token and reads the query's user and room list.
fn identify(proto: Proto, up: &Upgrade<'_>, config: &Config) -> Result<Identity, Denial> {
    let token = up.param("token").or_else(|| cookie(up, "sessionid"));
    if !token.as_deref().is_some_and(|t| config.token_ok(t)) {
        return Err(("unauthorized", "Authentication failed".into()));
    }
    if config.strict_doc {
        // newloom.rst defines only `token`: `user`, `chats` and `streams` are extensions.
        return Ok(Identity {
            user: None,
            rooms: None,
        });
    }
    let user = up.param("user");
    if let Some(name) = &user {
        if name.is_empty() || name.chars().count() > MAX_USER_CHARS {
            let message = format!("Invalid user: 1 to {MAX_USER_CHARS} characters");
            return Err(("invalid_user", message));
        }
    }
    let name = if proto == Proto::NewloomStreams {
        "streams"
    } else {
        "chats"
    };
    let rooms = match up.param(name) {
        None => None,
        Some(list) => Some(ids(&list, name, room_limit(config))?),
    };
    Ok(Identity { user, rooms })
}

/// The most chats or streams a connection may hold under `config`: the document states no
/// limit, so under `--strict-doc` only the hard bound remains.
pub(crate) fn room_limit(config: &Config) -> usize {
    if config.limits.subscriptions && !config.strict_doc {
        MAX_ROOMS
    } else {
        HARD_MAX_ROOMS
    }
}

/// Parses a comma-separated list of ids ≥ 1 (empty: no ids), at most `max` of them.
fn ids(list: &str, name: &str, max: usize) -> Result<Vec<u64>, Denial> {
    // The list is bounded by the request head's size limit, so collecting it all is fine.
    let mut out = Vec::new();
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let id = item.trim().parse::<u64>().ok().filter(|&id| id >= 1);
        let Some(id) = id else {
            let message = format!("Invalid {name}: '{}' is not an id", clip(item));
            return Err(("invalid_query", message));
        };
        out.push(id);
    }
    out.sort_unstable();
    out.dedup();
    if out.len() > max {
        let message = format!("Too many {name}: at most {max} per connection");
        return Err(("subscription_limit", message));
    }
    Ok(out)
}

/// The value of cookie `name` in the request's `Cookie` header.
fn cookie(up: &Upgrade<'_>, name: &str) -> Option<String> {
    up.header("cookie")?.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Harness;

    fn up<'a>(query: &'a str, headers: &'a [(String, String)]) -> Upgrade<'a> {
        Upgrade { query, headers }
    }

    /// Opens an admitted session and returns what it sent first.
    fn open(proto: Proto, query: &str, headers: &[(String, String)], h: &mut Harness) -> String {
        let admitted = admit(proto, &up(query, headers), &h.config).expect("always upgraded");
        let mut session = admitted.session;
        session.open(&mut h.cx());
        let sent = h.sent();
        match sent.first() {
            Some(frame) if frame["type"] == "error" => frame["code"].as_str().unwrap().to_owned(),
            _ => "admitted".into(),
        }
    }

    #[test]
    fn token_from_query_or_cookie() {
        let mut h = Harness::new(Proto::NewloomChat);
        h.config.auth_token = Some("secret".into());
        let chat = Proto::NewloomChat;
        assert_eq!(open(chat, "token=secret", &[], &mut h), "admitted");
        assert_eq!(open(chat, "token=wrong", &[], &mut h), "connection_error");
        assert_eq!(h.fx.close.take().map(|c| c.0), Some(1008));
        assert_eq!(open(chat, "", &[], &mut h), "connection_error");
        let jar = [(
            "Cookie".to_owned(),
            "csrftoken=x; sessionid=secret".to_owned(),
        )];
        assert_eq!(open(chat, "", &jar, &mut h), "admitted");
        h.config.auth_token = None;
        assert_eq!(open(chat, "token=", &[], &mut h), "connection_error");
        assert_eq!(open(chat, "token=any", &[], &mut h), "admitted");
    }

    #[test]
    fn query_lists_and_users_are_checked() {
        let mut h = Harness::new(Proto::NewloomChat);
        let chat = Proto::NewloomChat;
        assert_eq!(open(chat, "token=t&chats=1,2,2", &[], &mut h), "admitted");
        assert_eq!(open(chat, "token=t&chats=", &[], &mut h), "admitted");
        assert_eq!(
            open(chat, "token=t&chats=0", &[], &mut h),
            "connection_error"
        );
        assert_eq!(
            open(chat, "token=t&chats=a", &[], &mut h),
            "connection_error"
        );
        let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
        let query = format!("token=t&streams={}", many.join(","));
        let streams = Proto::NewloomStreams;
        assert_eq!(open(streams, &query, &[], &mut h), "connection_error");
        h.config.limits.subscriptions = false;
        assert_eq!(open(streams, &query, &[], &mut h), "admitted");
        let long = "u".repeat(MAX_USER_CHARS + 1);
        let query = format!("token=t&user={long}");
        assert_eq!(open(chat, &query, &[], &mut h), "connection_error");
        assert_eq!(open(chat, "token=t&user=", &[], &mut h), "connection_error");
    }

    #[test]
    fn heartbeat_deadline_closes_and_zero_disables() {
        let mut h = Harness::new(Proto::NewloomChat);
        h.config.heartbeat = Some(Duration::from_millis(100));
        let mut beat = Heartbeat::new(&h.config, h.now);
        assert_eq!(beat.deadline(), Some(h.now + Duration::from_millis(200)));
        h.now += Duration::from_millis(150);
        beat.seen(h.now);
        h.now += Duration::from_millis(150);
        beat.check(&mut h.cx());
        assert!(h.fx.close.is_none(), "a frame moved the deadline");
        h.now += Duration::from_millis(50);
        beat.check(&mut h.cx());
        assert_eq!(h.fx.close.as_ref().map(|c| c.0), Some(1001));
        assert_eq!(h.sent()[0]["code"], "connection_error");
        h.config.heartbeat = Some(Duration::ZERO);
        assert_eq!(Heartbeat::new(&h.config, h.now).deadline(), None);
    }

    #[test]
    fn long_client_text_is_clipped() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(500);
        assert_eq!(clip(&long).chars().count(), MAX_ECHO_CHARS + 1);
    }
}
