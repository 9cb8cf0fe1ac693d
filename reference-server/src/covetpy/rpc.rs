//! `rpc_call` and its methods: `echo`, `sleep`, `database.test_connection`, `room.publish`,
//! `notification.send` and `debug.panic`. Replies pair with the call by `id`.

use rand::RngExt;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use tokio::time::{Duration, Instant};

use super::events::room_event;
use super::wire::{
    frame, id_ok, rpc_error, rpc_fail, rpc_response, token_ok, Code, Data, Failure, Notification,
    NotificationType, Sid,
};
use super::Session;
use crate::session::Cx;

/// `sleep` calls one connection may have waiting.
pub const MAX_PENDING: usize = 16;
/// Longest `sleep`, ms.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// A call answered later, from the session timer.
pub struct Pending {
    pub due: Instant,
    id: String,
    wake: Wake,
}

enum Wake {
    /// The sleep is over: reply with the time slept.
    Reply { ms: u64 },
    /// The call's `timeout` came first: an `RPC_TIMEOUT` error instead.
    Timeout { ms: u64 },
}

/// Raw params, or `{}` when the call has none.
struct OrEmpty<'a>(Option<&'a RawValue>);

impl Serialize for OrEmpty<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(s),
            None => s.serialize_map(Some(0))?.end(),
        }
    }
}

#[derive(Deserialize)]
struct SleepParams {
    ms: u64,
}

#[derive(Deserialize)]
struct DbParams<'a> {
    #[serde(default, borrow)]
    connection_id: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct DbResult {
    success: bool,
    latency_ms: f64,
    connection_info: DbInfo,
}

#[derive(Serialize)]
struct DbInfo {
    host: &'static str,
    port: u16,
    database: &'static str,
}

#[derive(Serialize)]
struct DbFailure<'a> {
    host: &'static str,
    port: u16,
    error: &'static str,
    connection_id: &'a str,
}

#[derive(Deserialize)]
struct PublishParams<'a> {
    #[serde(alias = "room_id", borrow)]
    room: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    event_type: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Published<'a> {
    room_id: &'a str,
    member_count: usize,
    /// The event's sequence number in the room; `None` when nobody was there to get it.
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct NotifyParams<'a> {
    notification_type: NotificationType,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(default, borrow)]
    category: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Slept {
    slept_ms: u64,
}

#[derive(Serialize)]
struct Sent {
    sent: bool,
}

/// Parses `params` into `T`, or the `INVALID_PARAMS` reply.
fn params<'a, T: Deserialize<'a>>(id: &str, raw: Option<&'a RawValue>) -> Result<T, String> {
    let text = raw.map_or("{}", RawValue::get);
    serde_json::from_str(text)
        .map_err(|e| rpc_fail(id, "INVALID_PARAMS", &format!("invalid params: {e}")))
}

impl Session {
    /// Handles one `rpc_call` with request id `id`. A panicking method is caught here:
    /// the caller gets `INTERNAL_ERROR` and the connection carries on.
    pub(super) fn rpc_call(&mut self, id: &str, data: &Data<'_>, cx: &mut Cx<'_>) {
        if let Some(rates) = &mut self.rates {
            if let Err(limit) = rates.rpc.admit(cx.now) {
                cx.reject("rate_limit");
                let text = "RPC rate limit exceeded";
                return cx.send(rpc_error(
                    id,
                    "RATE_LIMITED",
                    text,
                    None::<()>,
                    Some(&limit),
                ));
            }
        }
        let Some(method) = data.method.as_deref() else {
            cx.reject("invalid_message");
            let text = "rpc_call needs a method";
            return cx.send(rpc_fail(id, "INVALID_MESSAGE_FORMAT", text));
        };
        let (params, timeout) = (data.params, data.timeout);
        let dispatched = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.dispatch(id, method, params, timeout, cx)
        }));
        if dispatched.is_err() {
            cx.reject("handler_panic");
            let text = "the method panicked; the server carries on";
            cx.send(rpc_fail(id, "INTERNAL_ERROR", text));
        }
    }

    fn dispatch(
        &mut self,
        id: &str,
        method: &str,
        raw: Option<&RawValue>,
        timeout: Option<u64>,
        cx: &mut Cx<'_>,
    ) {
        let reply = match method {
            // covetpy.md shows one method; the others are reference-server extensions.
            "database.test_connection" => test_connection(id, raw),
            other if self.strict => {
                cx.reject("unknown_method");
                let text = format!("unknown method '{other}'");
                rpc_fail(id, "INVALID_MESSAGE_FORMAT", &text)
            }
            "echo" => rpc_response(id, OrEmpty(raw)),
            "sleep" => match self.sleep(id, raw, timeout, cx.now) {
                Ok(()) => return,
                Err(reply) => reply,
            },
            "room.publish" => publish(id, raw, cx),
            "notification.send" => match self.notify(id, raw) {
                Ok((reply, notification)) => {
                    cx.send(reply);
                    notification
                }
                Err(reply) => reply,
            },
            "debug.panic" => panic!("debug.panic: a deliberate panic inside an RPC handler"),
            other => {
                cx.reject("unknown_method");
                let text = format!("unknown method '{other}'");
                rpc_fail(id, "METHOD_NOT_FOUND", &text)
            }
        };
        cx.send(reply);
    }

    /// Schedules the reply of a `sleep`; `Err` is an immediate error reply.
    fn sleep(
        &mut self,
        id: &str,
        raw: Option<&RawValue>,
        timeout: Option<u64>,
        now: Instant,
    ) -> Result<(), String> {
        let SleepParams { ms } = params(id, raw)?;
        if ms > MAX_SLEEP_MS {
            let text = format!("ms must be at most {MAX_SLEEP_MS}");
            return Err(rpc_fail(id, "INVALID_PARAMS", &text));
        }
        if self.pending.len() >= MAX_PENDING {
            let text = format!("at most {MAX_PENDING} sleep calls may wait at once");
            return Err(rpc_fail(id, "TOO_MANY_PENDING", &text));
        }
        let (wait, wake) = match timeout {
            Some(t) if t < ms => (t, Wake::Timeout { ms: t }),
            _ => (ms, Wake::Reply { ms }),
        };
        self.pending.push(Pending {
            due: now + Duration::from_millis(wait),
            id: id.to_owned(),
            wake,
        });
        self.refresh();
        Ok(())
    }

    /// Sends the replies of the sleeps over by `cx.now`.
    pub(super) fn wake_calls(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now;
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].due > now {
                i += 1;
                continue;
            }
            let call = self.pending.swap_remove(i);
            match call.wake {
                Wake::Reply { ms } => cx.send(rpc_response(&call.id, Slept { slept_ms: ms })),
                Wake::Timeout { ms } => {
                    let text = format!("RPC call timed out after {ms} ms");
                    let f = Failure::new(Code::RpcTimeout, text, Some(&call.id));
                    cx.send(f.render(self.next_id()));
                }
            }
        }
    }

    /// `notification.send`: the reply, then the notification it asked for.
    fn notify(&mut self, id: &str, raw: Option<&RawValue>) -> Result<(String, String), String> {
        let p: NotifyParams<'_> = params(id, raw)?;
        let category = p.category.as_deref();
        let invalid = |text: &str| rpc_fail(id, "INVALID_PARAMS", text);
        if p.title.is_empty() {
            return Err(invalid("title must not be empty"));
        }
        if !category.is_none_or(token_ok) {
            return Err(invalid("category must be a snake_case word"));
        }
        let mut notification = Notification::new(p.notification_type, &p.title, &p.message);
        notification.category = category;
        let frame = frame("notification", Sid("notif", self.next_id()), notification);
        Ok((rpc_response(id, Sent { sent: true }), frame))
    }
}

/// `database.test_connection`, simulated: success, unless the connection id starts with
/// `fail`, which gets the document's `CONNECTION_FAILED` example.
fn test_connection(id: &str, raw: Option<&RawValue>) -> String {
    let p: DbParams<'_> = match params(id, raw) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let conn = p.connection_id.as_deref().unwrap_or("default");
    if conn.starts_with("fail") {
        let details = DbFailure {
            host: "db.example.com",
            port: 5432,
            error: "Connection timeout after 10 seconds",
            connection_id: conn,
        };
        let text = "Failed to connect to database";
        return rpc_error(id, "CONNECTION_FAILED", text, Some(details), None);
    }
    let latency = f64::from(rand::rng().random_range(50..500u32)) / 10.0;
    let result = DbResult {
        success: true,
        latency_ms: latency,
        connection_info: DbInfo {
            host: "db.example.com",
            port: 5432,
            database: "production",
        },
    };
    rpc_response(id, result)
}

/// `room.publish`: one event into the room, serialized once for every member.
fn publish(id: &str, raw: Option<&RawValue>, cx: &mut Cx<'_>) -> String {
    let p: PublishParams<'_> = match params(id, raw) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let event_type = p.event_type.as_deref().unwrap_or("message");
    let invalid = |text: &str| rpc_fail(id, "INVALID_PARAMS", text);
    if !id_ok(&p.room) {
        return invalid("room must be 1 to 256 characters");
    }
    if !token_ok(event_type) {
        return invalid("event_type must be a snake_case word");
    }
    let seq = Cell::new(None);
    let members = cx.publish(&p.room, |n| {
        seq.set(Some(n));
        room_event(&p.room, n, event_type, p.data)
    });
    let result = Published {
        room_id: &p.room,
        member_count: members,
        seq: seq.get(),
    };
    rpc_response(id, result)
}
