//! The CovetPy protocol (`seeds/covetpy.md`): query-string auth, `connection_ack`,
//! heartbeats, rooms, batched data streams, RPC, chunked uploads with SHA-256 checks,
//! notifications, and the documented rate limits. See `reference-server/docs/covetpy.md`.

pub(crate) mod events;
mod limits;
mod rpc;
mod streams;
mod subscriptions;
mod upload;
mod wire;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::session::{self, Admitted, Cx, Refusal, Upgrade};
use crate::Config;
use limits::Rates;
use rpc::Pending;
use streams::Stream;
use upload::{Complete, Uploads};
use wire::{
    frame, hex, id_ok, Code, Data, Details, Failure, IdOnly, Inbound, Notification,
    NotificationType, Sid,
};

/// Heartbeat period when `--heartbeat` is not given: the document's `heartbeat_interval`.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// Rooms and streams one connection may hold, each (the document states no number).
pub const MAX_SUBSCRIPTIONS: usize = 50;
/// Rooms and streams one connection may hold with `--no-limit subscriptions`, each:
/// still bounded, so a client cannot grow the server's memory without limit.
pub const HARD_MAX_SUBSCRIPTIONS: usize = 4096;

/// Admits every upgrade: a missing or wrong credential is answered inside the WebSocket
/// (an `AUTH_FAILED` error frame, then close 1008), where a browser client can read it.
pub(crate) fn admit(up: &Upgrade<'_>, config: &Config) -> Result<Admitted, Refusal> {
    let identity = [
        ("user", up.param("token")),
        ("service", up.param("api_key")),
    ]
    .into_iter()
    .find_map(|(kind, cred)| cred.filter(|c| config.token_ok(c)).map(|c| (kind, c)))
    .map(|(kind, cred)| format!("{kind}_{}", &hex(&Sha256::digest(cred.as_bytes()))[..12]));
    Ok(Admitted {
        session: Box::new(Session::new(config, identity)),
        per_client: None,
    })
}

/// Per-connection CovetPy state.
pub(crate) struct Session {
    /// `user_<hash>` or `service_<hash>` of the credential; `None` when auth failed.
    user_id: Option<String>,
    /// Counter behind server-made frame ids.
    frame_ids: u64,
    heartbeat: Duration,
    next_heartbeat: Option<Instant>,
    heartbeat_seq: u64,
    rates: Option<Rates>,
    max_subscriptions: usize,
    streams: Vec<Stream>,
    uploads: Uploads,
    pending: Vec<Pending>,
    /// The earliest timer, recomputed whenever one changes.
    next: Option<Instant>,
    /// `--strict-doc`: only the document's RPC method and error codes, no `seq` in samples.
    strict: bool,
}

#[derive(Serialize)]
struct AckData<'a> {
    session_id: &'a str,
    user_id: &'a str,
    capabilities: [&'static str; 5],
    /// Milliseconds.
    heartbeat_interval: u64,
}

#[derive(Serialize)]
struct HeartbeatData {
    sequence: u64,
}

#[derive(Serialize)]
struct CompleteData<'a> {
    upload_id: &'a str,
    file_id: &'a str,
    url: &'a str,
    processing_status: &'static str,
}

/// The counter label of an error reply.
fn reason(code: Code) -> &'static str {
    match code {
        Code::AuthFailed => "auth_failed",
        Code::RateLimited => "rate_limit",
        Code::PermissionDenied => "permission_denied",
        Code::RoomNotFound => "room_not_found",
        Code::SubscriptionFailed => "subscription_failed",
        Code::RpcTimeout => "rpc_timeout",
        Code::InvalidMessageFormat => "invalid_message",
        Code::ChecksumMismatch => "checksum_mismatch",
        Code::UploadNotFound => "upload_not_found",
    }
}

impl Session {
    pub fn new(config: &Config, user_id: Option<String>) -> Self {
        let subscriptions = config.limits.subscriptions;
        Session {
            user_id,
            frame_ids: 0,
            heartbeat: config
                .heartbeat
                .unwrap_or(HEARTBEAT)
                .max(Duration::from_millis(1)),
            next_heartbeat: None,
            heartbeat_seq: 0,
            rates: config.limits.rate.then(Rates::new),
            max_subscriptions: if subscriptions {
                MAX_SUBSCRIPTIONS
            } else {
                HARD_MAX_SUBSCRIPTIONS
            },
            streams: Vec::new(),
            uploads: Uploads::new(config.message_limit(session::Proto::Covetpy)),
            pending: Vec::new(),
            next: None,
            strict: config.strict_doc,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.frame_ids += 1;
        self.frame_ids
    }

    /// Sends an error frame and counts it under its code.
    fn fail(&mut self, mut f: Failure<'_>, cx: &mut Cx<'_>) {
        cx.reject(reason(f.code));
        if self.strict && matches!(f.code, Code::ChecksumMismatch | Code::UploadNotFound) {
            // covetpy.md's error codes: a bad chunk is a message format error.
            f.code = Code::InvalidMessageFormat;
        }
        cx.send(f.render(self.next_id()));
    }

    /// Recomputes the earliest timer.
    fn refresh(&mut self) {
        let calls = self.pending.iter().map(|p| p.due);
        let streams = self.streams.iter().filter_map(Stream::deadline);
        self.next = calls
            .chain(streams)
            .chain(self.uploads.deadline())
            .chain(self.next_heartbeat)
            .min();
    }

    /// Handles one parsed frame with a usable id.
    fn handle(&mut self, kind: &str, id: &str, data: &Data<'_>, cx: &mut Cx<'_>) {
        match kind {
            "rpc_call" => self.rpc_call(id, data, cx),
            "heartbeat" if data.sequence.is_none() => {
                let f = Failure::new(
                    Code::InvalidMessageFormat,
                    "heartbeat needs data.sequence",
                    Some(id),
                );
                self.fail(f.with(Details::field("data.sequence")), cx);
            }
            // The client's heartbeat needs no answer: the server sends its own on its timer.
            "heartbeat" => {}
            "join_room" => self.join(id, data, cx),
            "leave_room" => self.leave(id, data, cx),
            "subscribe" => self.subscribe(id, data, cx),
            "unsubscribe" => self.unsubscribe(id, data, cx),
            "file_upload_start" => {
                let rate = self.rates.as_mut().map(|r| &mut r.uploads);
                match self.uploads.start(id, data, cx.now, rate) {
                    Ok(done) => done.into_iter().for_each(|c| self.complete(c, cx)),
                    Err(f) => self.fail(f, cx),
                }
                self.refresh();
            }
            "file_chunk" => {
                match self.uploads.chunk(id, data, cx.now) {
                    Ok(accepted) => {
                        cx.count("upload_bytes", "", accepted.bytes);
                        accepted
                            .complete
                            .into_iter()
                            .for_each(|c| self.complete(c, cx));
                    }
                    Err(f) => self.fail(f, cx),
                }
                self.refresh();
            }
            other => {
                let text = format!("unknown message type '{other}'");
                let f = Failure::new(Code::InvalidMessageFormat, text, Some(id));
                cx.reject("unknown_type");
                cx.send(f.with(Details::field("type")).render(self.next_id()));
            }
        }
    }

    fn complete(&mut self, c: Complete, cx: &mut Cx<'_>) {
        let url = format!("https://files.covetpy.example/{}", c.file_id);
        let data = CompleteData {
            upload_id: &c.upload_id,
            file_id: &c.file_id,
            url: &url,
            processing_status: "completed",
        };
        cx.send(frame(
            "file_upload_complete",
            Sid("complete", self.next_id()),
            data,
        ));
    }
}

impl session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) {
        let ack_id = Sid("conn", self.next_id());
        let Some(user_id) = &self.user_id else {
            let text = "authentication failed: pass a valid token or api_key query parameter";
            let mut f = Failure::new(Code::AuthFailed, text, None);
            f.recoverable = false;
            self.fail(f, cx);
            return cx.close(1008, "authentication failed");
        };
        let session_id = format!("sess_{}", uuid::Uuid::new_v4().simple());
        let data = AckData {
            session_id: &session_id,
            user_id,
            capabilities: ["rooms", "streaming", "rpc", "notifications", "file_upload"],
            heartbeat_interval: self.heartbeat.as_millis().max(1) as u64,
        };
        let ack = frame("connection_ack", ack_id, data);
        cx.send(ack);
        self.next_heartbeat = Some(cx.now + self.heartbeat);
        self.refresh();
    }

    fn text(&mut self, text: &Utf8Bytes, cx: &mut Cx<'_>) {
        if self.user_id.is_none() {
            return;
        }
        let parsed = serde_json::from_str::<Inbound<'_>>(text);
        let fallback;
        let original = match &parsed {
            Ok(msg) => msg.id.as_deref(),
            Err(_) => {
                fallback = serde_json::from_str::<IdOnly<'_>>(text).ok();
                fallback.as_ref().and_then(|f| f.id.as_deref())
            }
        }
        .filter(|id| id_ok(id));
        if let Some(rates) = &mut self.rates {
            if let Err(limit) = rates.messages.admit(cx.now) {
                let mut f =
                    Failure::new(Code::RateLimited, "message rate limit exceeded", original);
                f.rate_limit = Some(Box::new(limit));
                return self.fail(f, cx);
            }
        }
        let msg = match &parsed {
            Ok(msg) => msg,
            Err(e) => {
                let f = Failure::new(
                    Code::InvalidMessageFormat,
                    format!("invalid message: {e}"),
                    original,
                );
                return self.fail(f, cx);
            }
        };
        let missing = match (original, msg.kind.as_deref(), &msg.data) {
            (Some(id), Some(kind), Some(data)) => return self.handle(kind, id, data, cx),
            (None, ..) => "id",
            (_, None, _) => "type",
            (.., None) => "data",
        };
        let text = match missing {
            "id" => "every message needs an id: a string of 1 to 256 characters".to_owned(),
            field => format!("every message needs a '{field}'"),
        };
        let f = Failure::new(Code::InvalidMessageFormat, text, original);
        self.fail(f.with(Details::field(missing)), cx);
    }

    fn binary(&mut self, _data: &Bytes, cx: &mut Cx<'_>) {
        let text = "binary frames are not supported; send JSON text";
        cx.reject("binary_frame");
        cx.send(Failure::new(Code::InvalidMessageFormat, text, None).render(self.next_id()));
    }

    fn deadline(&self) -> Option<Instant> {
        self.next
    }

    fn timer(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now;
        if let Some(due) = self.next_heartbeat.filter(|due| *due <= now) {
            self.heartbeat_seq += 1;
            let data = HeartbeatData {
                sequence: self.heartbeat_seq,
            };
            cx.send(frame("heartbeat", Sid("hb", self.next_id()), data));
            // On time, keep the beat; after a stall, the next is a full period away rather
            // than a burst of the missed ones.
            let next = due + self.heartbeat;
            self.next_heartbeat = Some(if next > now {
                next
            } else {
                now + self.heartbeat
            });
        }
        self.wake_calls(cx);
        let mut rng = rand::rng();
        for stream in &mut self.streams {
            if let Some(batch) = stream.poll(now, &mut rng, self.frame_ids + 1) {
                self.frame_ids += 1;
                cx.send(batch);
            }
        }
        for gone in self.uploads.expire(now) {
            let text = format!(
                "upload '{}' abandoned: no chunk for {} s, chunk {} of {} missing",
                gone.id,
                upload::UPLOAD_IDLE.as_secs(),
                gone.next,
                gone.total
            );
            let f = Failure::new(Code::InvalidMessageFormat, text, Some(&gone.id));
            self.fail(f.with(Details::chunk(&gone.id, gone.next)), cx);
        }
        self.refresh();
    }

    fn shutdown(&mut self, cx: &mut Cx<'_>) {
        if self.user_id.is_none() {
            return;
        }
        let text = "The server is shutting down; reconnect shortly";
        let mut note = Notification::new(NotificationType::Warning, "Server shutting down", text);
        note.category = Some("system");
        cx.send(frame("notification", Sid("notif", self.next_id()), note));
    }
}

#[cfg(test)]
mod tests;
