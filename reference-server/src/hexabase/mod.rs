//! The Hexabase KaaS protocol (seeds/hexabase.md): in-band `auth`, subscriptions to
//! workspace, organization and project events, `get_workspace_status`, log streams, server
//! pings and the idle timeout, with `error` frames carrying the documented codes.

pub(crate) mod events;
mod logs;
mod subs;
mod wire;

use rand::RngExt;
use serde::Serialize;
use std::borrow::Cow;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};
use uuid::Uuid;

use crate::clock::now_rfc3339;
use crate::session::{self, Admitted, Cx, Proto, Refusal, Upgrade};
use crate::Config;
use logs::Streams;
use subs::{Request, Subscriptions};
use wire::{string_of, to_string, Code, DataFrame, Details, Envelope, Failure};

pub use logs::{MAX_STREAMS, MAX_TAIL};
pub use subs::{HARD_CAP, MAX_SUBSCRIPTIONS};

/// Server ping period when `--heartbeat` is not given ("Ping/Pong": every 30 seconds).
pub const PING_PERIOD: Duration = Duration::from_secs(30);

/// The idle timeout in ping periods: 5 minutes at the documented 30 s ("Connection Limits").
pub const IDLE_PINGS: u32 = 10;

/// Shortest ping period honoured, so a zero `--heartbeat` cannot spin.
const MIN_PING_PERIOD: Duration = Duration::from_millis(10);

/// Admits every upgrade: Hexabase authenticates in band, with its first frame.
pub(crate) fn admit(_up: &Upgrade<'_>, config: &Config) -> Result<Admitted, Refusal> {
    Ok(Admitted {
        session: Box::new(Session::new(config)),
        per_client: None,
    })
}

/// Per-connection state: who authenticated, subscriptions, log streams and the timers.
pub(crate) struct Session {
    /// Set by a successful `auth`; every request but `auth` and `pong` needs it.
    user: Option<String>,
    subs: Subscriptions,
    streams: Streams,
    ping_every: Duration,
    next_ping: Option<Instant>,
    /// The last time the client sent a message (pongs included).
    last_seen: Option<Instant>,
}

impl Session {
    /// A fresh, unauthenticated session.
    pub fn new(config: &Config) -> Self {
        let ping_every = config.heartbeat.unwrap_or(PING_PERIOD).max(MIN_PING_PERIOD);
        Session {
            user: None,
            subs: Subscriptions::new(config.limits.subscriptions),
            streams: Streams::new(config.events_per_sec).with_seq(!config.strict_doc),
            ping_every,
            next_ping: None,
            last_seen: None,
        }
    }

    fn idle_limit(&self) -> Duration {
        self.ping_every * IDLE_PINGS
    }

    /// Handles one parsed frame; `Ok(None)` for requests the document gives no reply.
    fn dispatch(
        &mut self,
        msg: &Envelope<'_>,
        kind: &str,
        id: Option<&str>,
        cx: &mut Cx<'_>,
    ) -> Result<Option<String>, Failure> {
        match kind {
            "auth" => self.auth(msg, id, cx).map(Some),
            "pong" => Ok(None),
            "subscribe"
            | "unsubscribe"
            | "get_workspace_status"
            | "stream_logs"
            | "stop_stream"
                if self.user.is_none() =>
            {
                Err(Failure::new(
                    Code::AuthRequired,
                    "auth_required",
                    "Authentication required: send {\"type\":\"auth\",\"token\":...} first",
                ))
            }
            "subscribe" => {
                let id = need_id(kind, id)?;
                let req = Request::parse(&data(msg, kind)?)?;
                let subscription = self.subs.add(req, cx)?;
                Ok(Some(subscribed(id, &subscription)))
            }
            "unsubscribe" => self.unsubscribe(&data(msg, kind)?, cx).map(|()| None),
            "get_workspace_status" => {
                let id = need_id(kind, id)?;
                let d: wire::WorkspaceData<'_> = data(msg, kind)?;
                if !wire::id_ok(&d.workspace_id) {
                    let text = "'workspace_id' must have 1 to 256 characters";
                    return Err(Failure::format(text));
                }
                Ok(Some(workspace_status(id, &d.workspace_id)))
            }
            "stream_logs" => {
                let id = need_id(kind, id)?;
                self.streams.start(id, &data(msg, kind)?, cx.now)?;
                Ok(None)
            }
            "stop_stream" => {
                let d: wire::StopStreamData<'_> = data(msg, kind)?;
                match self.streams.stop(&d.stream_id) {
                    true => Ok(None),
                    false => Err(not_found("log stream", &d.stream_id)),
                }
            }
            other => {
                Err(Failure::format(format!("unknown message type '{other}'"))
                    .because("unknown_type"))
            }
        }
    }

    fn unsubscribe(
        &mut self,
        d: &wire::UnsubscribeData<'_>,
        cx: &mut Cx<'_>,
    ) -> Result<(), Failure> {
        let subscription = Uuid::try_parse(&d.subscription_id).map_err(|_| {
            Failure::format("'subscription_id' must be a UUID from subscribe_result")
        })?;
        if !self.subs.remove(&subscription, cx) {
            return Err(not_found("subscription", &d.subscription_id));
        }
        Ok(())
    }

    /// `auth`: any token the configuration accepts ([`Config::token_ok`]). A failure is an
    /// `auth_result` with `success: false` and leaves the session as it was, so the client
    /// may try again.
    fn auth(
        &mut self,
        msg: &Envelope<'_>,
        id: Option<&str>,
        cx: &mut Cx<'_>,
    ) -> Result<String, Failure> {
        let token = msg.token.and_then(string_of);
        let token = token.as_deref().ok_or_else(|| {
            Failure::format("'auth' needs a 'token' string (your JWT) at the top level")
        })?;
        let timestamp = now_rfc3339();
        let mut result = wire::AuthResult {
            kind: "auth_result",
            id,
            timestamp: &timestamp,
            success: false,
            user_id: None,
            message: None,
            error: Some("Invalid token"),
        };
        if !cx.config.token_ok(token) {
            cx.reject("invalid_token");
            return Ok(to_string(&result));
        }
        let user = self.user.get_or_insert_with(|| format!("user-{}", cx.conn));
        result.success = true;
        result.user_id = Some(user);
        result.message = Some("Authenticated successfully");
        result.error = None;
        Ok(to_string(&result))
    }
}

/// A request's `data`, parsed into its typed struct.
fn data<'a, T: serde::Deserialize<'a>>(msg: &Envelope<'a>, kind: &str) -> Result<T, Failure> {
    let raw = msg
        .data
        .ok_or_else(|| Failure::format(format!("'{kind}' needs a 'data' object")))?;
    serde_json::from_str(raw.get())
        .map_err(|e| Failure::format(format!("invalid '{kind}' data: {e}")))
}

/// The id of a request whose reply must carry it.
fn need_id<'i>(kind: &str, id: Option<&'i str>) -> Result<&'i str, Failure> {
    id.ok_or_else(|| Failure::format(format!("'{kind}' needs an 'id': its reply carries it")))
}

fn not_found(what: &str, id: &str) -> Failure {
    let shown: String = id.chars().take(wire::MAX_ID_CHARS).collect();
    Failure::new(
        Code::ResourceNotFound,
        "not_found",
        format!("no {what} '{shown}' on this connection"),
    )
}

fn subscribed(id: &str, subscription: &Uuid) -> String {
    let timestamp = now_rfc3339();
    let subscription_id = subscription.hyphenated().to_string();
    to_string(&wire::SubscribeResult {
        kind: "subscribe_result",
        id,
        timestamp: &timestamp,
        success: true,
        subscription_id: &subscription_id,
    })
}

#[derive(Serialize)]
struct Status<'a> {
    workspace_id: &'a str,
    status: &'a str,
    health: &'a str,
    nodes: Nodes,
    pods: Pods,
}

#[derive(Serialize)]
struct Nodes {
    ready: u32,
    total: u32,
}

#[derive(Serialize)]
struct Pods {
    running: u32,
    pending: u32,
    failed: u32,
}

/// A simulated, healthy-looking `workspace_status` ("Get Workspace Status").
fn workspace_status(id: &str, workspace_id: &str) -> String {
    let mut rng = rand::rng();
    let total = 3;
    let ready = if rng.random_bool(0.9) {
        total
    } else {
        total - 1
    };
    let status = Status {
        workspace_id,
        status: "active",
        health: if ready == total {
            "healthy"
        } else {
            "degraded"
        },
        nodes: Nodes { ready, total },
        pods: Pods {
            running: rng.random_range(30..60),
            pending: rng.random_range(0..3),
            failed: rng.random_range(0..2),
        },
    };
    let timestamp = now_rfc3339();
    to_string(&DataFrame {
        kind: "workspace_status",
        id: Some(id),
        timestamp: &timestamp,
        data: status,
        seq: None,
    })
}

/// The request id, when the frame has a usable one: a string the schemas accept.
fn request_id<'a>(msg: &Envelope<'a>) -> Result<Option<Cow<'a, str>>, Failure> {
    let Some(raw) = msg.id else {
        return Ok(None);
    };
    match string_of(raw) {
        Some(id) if wire::id_ok(&id) => Ok(Some(id)),
        _ => Err(Failure::format(
            "'id' must be a string of 1 to 256 characters",
        )),
    }
}

impl Session {
    /// Parses and answers one text message.
    fn handle(&mut self, text: &str, cx: &mut Cx<'_>) {
        let msg: Envelope<'_> = match serde_json::from_str(text) {
            Ok(msg) => msg,
            Err(e) => {
                let failure = Failure::format(format!("not a JSON object: {e}"));
                return fail(cx, None, failure.because("invalid_json"));
            }
        };
        let id = match request_id(&msg) {
            Ok(id) => id,
            Err(failure) => return fail(cx, None, failure),
        };
        let id = id.as_deref();
        let Some(kind) = msg.kind.and_then(string_of) else {
            return fail(cx, id, Failure::format("'type' must be a string"));
        };
        match self.dispatch(&msg, &kind, id, cx) {
            Ok(Some(reply)) => cx.send(reply),
            Ok(None) => {}
            Err(failure) => fail(cx, id, failure),
        }
    }
}

/// Counts a refused request and sends its `error` frame.
fn fail(cx: &mut Cx<'_>, id: Option<&str>, failure: Failure) {
    cx.reject(failure.reason);
    cx.send(failure.frame(id));
}

impl session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) {
        self.last_seen = Some(cx.now);
        self.next_ping = Some(cx.now + self.ping_every);
    }

    fn text(&mut self, text: &Utf8Bytes, cx: &mut Cx<'_>) {
        self.last_seen = Some(cx.now);
        self.handle(text, cx);
    }

    fn binary(&mut self, _data: &Bytes, cx: &mut Cx<'_>) {
        self.last_seen = Some(cx.now);
        let failure = Failure::format("binary messages are not supported; send JSON text");
        fail(cx, None, failure.because("binary_frame"));
    }

    fn too_big(&mut self, cx: &mut Cx<'_>) {
        let max_bytes = cx.config.message_limit(Proto::Hexabase);
        let message = format!("Message exceeds the maximum size of {max_bytes} bytes");
        let failure = Failure::new(Code::MessageTooLarge, "message_too_big", message)
            .with(Details::Size { max_bytes });
        // The framework counts this reject and closes with 1009 after the frame.
        cx.send(failure.frame(None));
    }

    fn deadline(&self) -> Option<Instant> {
        let idle = self.last_seen.map(|t| t + self.idle_limit());
        [self.next_ping, idle, self.streams.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn timer(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now;
        if self.last_seen.is_some_and(|t| now >= t + self.idle_limit()) {
            cx.reject("idle_timeout");
            return cx.close(1000, "idle timeout: no message for 10 ping periods");
        }
        if self.next_ping.is_some_and(|t| now >= t) {
            cx.send(wire::ping());
            // From now, not from the missed deadline: a stalled loop does not burst pings.
            self.next_ping = Some(now + self.ping_every);
        }
        let mut lines = 0;
        self.streams.run(now, |line| {
            lines += 1;
            cx.send(line);
        });
        if lines > 0 {
            cx.count("log_lines", "", lines);
        }
    }
}

#[cfg(test)]
mod tests;
