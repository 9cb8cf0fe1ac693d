//! The seam between the connection machinery and the protocols: every protocol is a
//! [`Session`] driven with a [`Cx`] that lets it reply, join and leave rooms, publish,
//! count rejects and close, without knowing about sockets or runtimes.

use std::cell::RefCell;
use std::rc::Rc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use crate::hub::{Hub, RoomKey};
use crate::rooms::{Outbox, Rooms};
use crate::Config;

pub use crate::proto::{Profile, Proto};

/// What a protocol sees of the upgrade request when deciding to admit it.
pub(crate) struct Upgrade<'a> {
    /// The raw query string (after `?`, not decoded), empty when absent.
    pub query: &'a str,
    /// Request headers as (name, value); names as sent, compare case-insensitively.
    pub headers: &'a [(String, String)],
}

impl Upgrade<'_> {
    /// The first value of query parameter `name`, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An upgrade the protocol refuses: answered with this HTTP status instead of 101.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// HTTP status code, e.g. 401.
    pub status: u16,
    /// Counter label for `squall_server_rejects_total{reason=...}`.
    pub reason: &'static str,
    /// Plain-text body.
    pub body: String,
}

/// An admitted connection.
pub(crate) struct Admitted {
    /// The protocol state machine for the connection.
    pub session: Box<dyn Session>,
    /// Who the client is, when the protocol limits connections per client, and that limit:
    /// the upgrade is refused with 429 when the client already has that many open.
    pub per_client: Option<(String, usize)>,
}

/// One connection's protocol state machine. The framework calls it for every data message
/// and timer; the session answers through the [`Cx`]. Calls never block or await.
pub(crate) trait Session {
    /// Called once right after the 101, e.g. to send a welcome.
    fn open(&mut self, cx: &mut Cx<'_>);

    /// One complete text message (it derefs to `&str`; clone it to send it back uncopied).
    fn text(&mut self, text: &Utf8Bytes, cx: &mut Cx<'_>);

    /// One complete binary message. By default: close 1003 (unsupported data).
    fn binary(&mut self, _data: &Bytes, cx: &mut Cx<'_>) {
        cx.reject("binary_frame");
        cx.close(1003, "binary messages are not supported");
    }

    /// An inbound message was over the size limit: last frames before the framework closes
    /// with 1009 (Hexabase `MESSAGE_TOO_LARGE`). By default: nothing, just the close.
    fn too_big(&mut self, _cx: &mut Cx<'_>) {}

    /// When [`timer`](Session::timer) should next run (heartbeats, batched streams);
    /// `None` for no timer. Asked again after every call.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Runs at or after [`deadline`](Session::deadline).
    fn timer(&mut self, _cx: &mut Cx<'_>) {}

    /// The server is shutting down: last frames before the 1001 close (KECS `disconnecting`).
    fn shutdown(&mut self, _cx: &mut Cx<'_>) {}
}

/// Per-connection output the framework applies after each [`Session`] call.
#[derive(Default)]
pub(crate) struct Effects {
    /// Messages to write, in order.
    pub out: Vec<Message>,
    /// Rooms this connection is in (full keys), for cleanup when it ends.
    pub joined: Vec<RoomKey>,
    /// A close to send after `out`, once set.
    pub close: Option<(u16, String)>,
}

/// What a [`Session`] may do during one call.
pub(crate) struct Cx<'a> {
    /// The time of this call.
    pub now: Instant,
    /// Server configuration (limits, auth, event rates).
    pub config: &'a Config,
    pub(crate) proto: Proto,
    pub(crate) conn: u64,
    pub(crate) hub: &'a Hub,
    pub(crate) fx: &'a mut Effects,
    /// This runtime's room registry and this connection's outbox; `None` in unit tests,
    /// where joins only update the hub's counts.
    pub(crate) local: Option<(&'a RefCell<Rooms>, &'a Rc<Outbox>)>,
}

impl<'a> Cx<'a> {
    /// Queues a text frame.
    pub fn send(&mut self, text: String) {
        self.fx.out.push(Message::Text(text.into()));
    }

    /// Queues a shared text frame (e.g. an event serialized once).
    pub fn send_shared(&mut self, text: Utf8Bytes) {
        self.fx.out.push(Message::Text(text));
    }

    /// Queues a binary frame.
    pub fn send_binary(&mut self, data: Bytes) {
        self.fx.out.push(Message::Binary(data));
    }

    /// Closes the connection with `code` after the queued frames; the session gets no
    /// further calls.
    pub fn close(&mut self, code: u16, reason: &str) {
        if self.fx.close.is_none() {
            self.fx.close = Some((code, reason.to_owned()));
        }
    }

    /// Counts a refused request under `reason` (`squall_server_rejects_total`).
    pub fn reject(&self, reason: &'static str) {
        self.hub.count(Some(self.proto), "rejects", reason, 1);
    }

    /// Adds `n` to a named counter, e.g. `("upload_bytes", "")`.
    pub fn count(&self, metric: &'static str, label: &'static str, n: u64) {
        self.hub.count(Some(self.proto), metric, label, n);
    }

    /// Whether this connection is in `room`.
    pub fn is_member(&self, room: &str) -> bool {
        let key = self.hub.key(self.proto, room);
        self.fx.joined.contains(&key)
    }

    /// Rooms this connection is in (names as passed to [`join`](Self::join)).
    pub fn rooms(&self) -> impl Iterator<Item = &str> + '_ {
        let skip = self.proto.name().len() + 1;
        self.fx.joined.iter().map(move |k| &k[skip..])
    }

    /// Joins `room` (a protocol-local name); returns the room's member count after joining.
    /// Joining a room twice is a no-op.
    pub fn join(&mut self, room: &str) -> usize {
        let key = self.hub.key(self.proto, room);
        if self.fx.joined.contains(&key) {
            return self.hub.members(&key);
        }
        let (n, since) = self.hub.join(&key);
        if let Some((rooms, outbox)) = self.local {
            rooms
                .borrow_mut()
                .join(&key, self.conn, since, outbox.clone());
        }
        self.fx.joined.push(key);
        n
    }

    /// Leaves `room`; returns whether the connection was in it.
    pub fn leave(&mut self, room: &str) -> bool {
        let key = self.hub.key(self.proto, room);
        let Some(i) = self.fx.joined.iter().position(|k| *k == key) else {
            return false;
        };
        let key = self.fx.joined.swap_remove(i);
        let present = match self.local {
            Some((rooms, _)) => rooms.borrow_mut().leave(&key, self.conn),
            None => true,
        };
        // A connection dropped from the room as a slow consumer was already counted out.
        if present {
            self.hub.leave(&key);
        }
        true
    }

    /// Members of `room` across the server.
    #[cfg(test)]
    pub fn members(&self, room: &str) -> usize {
        self.hub.members(&self.hub.key(self.proto, room))
    }

    /// Publishes a frame to every member of `room` (this connection too, when a member):
    /// `build` gets the room's next sequence number and returns the frame, serialized once.
    /// Returns the member count it went to.
    pub fn publish(&self, room: &str, build: impl FnOnce(u64) -> String) -> usize {
        let key = self.hub.key(self.proto, room);
        self.hub.publish(&key, build)
    }
}

/// A stand-alone [`Cx`] for unit-testing a session without sockets.
#[cfg(test)]
pub(crate) struct Harness {
    /// The hub the session's joins and publishes go to.
    pub hub: Hub,
    /// The configuration passed in [`Cx::config`].
    pub config: Config,
    /// Everything the session did so far.
    pub fx: Effects,
    /// The time passed as [`Cx::now`]; tests move it forward by hand.
    pub now: Instant,
    proto: Proto,
}

#[cfg(test)]
impl Harness {
    /// A harness for `proto` with default configuration.
    pub fn new(proto: Proto) -> Self {
        Harness {
            hub: Hub::new(),
            config: Config::default(),
            fx: Effects::default(),
            now: Instant::now(),
            proto,
        }
    }

    /// A context for one session call.
    pub fn cx(&mut self) -> Cx<'_> {
        Cx {
            now: self.now,
            config: &self.config,
            proto: self.proto,
            conn: 1,
            hub: &self.hub,
            fx: &mut self.fx,
            local: None,
        }
    }

    /// Takes the text frames sent so far, parsed as JSON.
    pub fn sent(&mut self) -> Vec<serde_json::Value> {
        self.fx
            .out
            .drain(..)
            .filter_map(|m| match m {
                Message::Text(t) => serde_json::from_str(&t).ok(),
                _ => None,
            })
            .collect()
    }

    /// Frames published to rooms so far, as (room, frame JSON), oldest first.
    pub fn published(&self) -> Vec<(String, serde_json::Value)> {
        let skip = self.proto.name().len() + 1;
        self.hub
            .take_published()
            .into_iter()
            .map(|(k, t)| {
                let v = serde_json::from_str(&t).unwrap_or(serde_json::Value::Null);
                (k[skip..].to_owned(), v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let headers = [("X-Token".to_owned(), "t".to_owned())];
        let up = Upgrade {
            query: "token=a%20b&api_key=k+1&flag",
            headers: &headers,
        };
        assert_eq!(up.param("token").as_deref(), Some("a b"));
        assert_eq!(up.param("api_key").as_deref(), Some("k 1"));
        assert_eq!(up.param("flag").as_deref(), Some(""));
        assert_eq!(up.param("x"), None);
        assert_eq!(up.header("x-token"), Some("t"));
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn harness_joins_and_publishes() {
        let mut h = Harness::new(Proto::Covetpy);
        let mut cx = h.cx();
        assert_eq!(cx.join("lobby"), 1);
        assert_eq!(cx.join("lobby"), 1);
        assert!(cx.is_member("lobby"));
        assert_eq!(cx.publish("lobby", |seq| format!("{{\"seq\":{seq}}}")), 1);
        assert_eq!(cx.rooms().collect::<Vec<_>>(), vec!["lobby"]);
        assert!(cx.leave("lobby"));
        assert!(!cx.leave("lobby"));
        assert_eq!(cx.members("lobby"), 0);
        let published = h.published();
        assert_eq!(published[0].0, "lobby");
        assert_eq!(published[0].1["seq"], 1);
    }
}
