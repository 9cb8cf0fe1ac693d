//! The KECS protocol (seeds/kecs.md): token auth by query or `auth` message, `connected`,
//! event subscriptions mapped onto shared rooms, commands, server pings, the documented
//! error codes and the rate-limit escalation. See `reference-server/docs/kecs.md`.

mod commands;
pub(crate) mod events;
mod rate;
mod rooms;
mod subs;
mod wire;

use std::borrow::Cow;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::session::{self, Admitted, Cx, Refusal, Upgrade};
use crate::Config;
use rate::{Limiter, Verdict};
use subs::Subscriptions;
use wire::{Code, Details, Envelope, Fault, Text};

/// Server ping period when `Config::heartbeat` is unset (the document gives none).
pub const PING_PERIOD: Duration = Duration::from_secs(30);

/// Time a connection without a query token has to send its `auth` message.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Close code (and `disconnecting` code) for auth failures and rate-limit termination.
const POLICY: u16 = 1008;

/// How the upgrade request authenticated.
enum QueryAuth {
    /// No `?token=`: an `auth` message must follow.
    Absent,
    Valid,
    Invalid,
}

/// Admits every upgrade: authentication happens in-band, so a bad token gets the
/// documented `AUTH_FAILED` error frame rather than an HTTP status.
pub(crate) fn admit(up: &Upgrade<'_>, config: &Config) -> Result<Admitted, Refusal> {
    let auth = match up.param("token") {
        None => QueryAuth::Absent,
        Some(t) if config.token_ok(&t) => QueryAuth::Valid,
        Some(_) => QueryAuth::Invalid,
    };
    // The exec URL names the host the client reached; only a plain host[:port] is echoed.
    let host = up
        .header("host")
        .filter(|h| {
            (1..=255).contains(&h.len())
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .map_or_else(|| config.listen.to_string(), str::to_owned);
    Ok(Admitted {
        session: Box::new(Session::new(config, auth, host)),
        per_client: None,
    })
}

/// Per-connection KECS state.
pub(crate) struct Session {
    session_id: String,
    host: String,
    query: QueryAuth,
    authed: bool,
    auth_deadline: Option<Instant>,
    ping_every: Option<Duration>,
    next_ping: Option<Instant>,
    subs: Subscriptions,
    rate: Option<Limiter>,
    /// `--strict-doc`: the document's metric names only, and rate-limit errors without the
    /// extension details (`stage`, `limit`, `retryAfterMs`).
    strict: bool,
}

impl Session {
    fn new(config: &Config, query: QueryAuth, host: String) -> Self {
        Session {
            session_id: format!("ws-session-{}", uuid::Uuid::new_v4()),
            host,
            query,
            authed: false,
            auth_deadline: None,
            // A zero period would spin: it switches the ping off.
            ping_every: Some(config.heartbeat.unwrap_or(PING_PERIOD)).filter(|d| !d.is_zero()),
            next_ping: None,
            subs: Subscriptions::new(config.limits.subscriptions),
            rate: config.limits.rate.then(Limiter::default),
            strict: config.strict_doc,
        }
    }

    /// Sends an error, then `disconnecting`, then closes with `code`.
    fn terminate(&self, error: String, reason: &str, code: u16, cx: &mut Cx<'_>) {
        cx.send(error);
        cx.send(wire::disconnecting(reason, code));
        cx.close(code, reason);
    }

    fn auth_failed(&self, cx: &mut Cx<'_>) {
        cx.reject("auth_failed");
        let fault = Fault::new(Code::AuthFailed, "auth_failed", "Authentication failed")
            .at("token", "the token is not valid");
        self.terminate(
            wire::error(&fault, None),
            "Authentication failed",
            POLICY,
            cx,
        );
    }

    /// Applies the rate limit; false when the message must not be handled.
    fn admit(&mut self, cx: &mut Cx<'_>) -> bool {
        let Some(limiter) = &mut self.rate else {
            return true;
        };
        let verdict = limiter.admit(cx.now);
        if verdict == Verdict::Pass {
            return true;
        }
        cx.reject("rate_limit");
        let (stage, retry) = match verdict {
            Verdict::Pass | Verdict::Drop => return false,
            Verdict::Warn => ("warning", None),
            Verdict::Throttle => ("throttled", Some(rate::THROTTLE.as_millis() as u64)),
            Verdict::Terminate => ("terminated", None),
        };
        let reason = format!("more than {} messages per second", rate::MAX_RATE);
        let details = if self.strict {
            Details {
                reason: Some(&reason),
                ..Details::default()
            }
        } else {
            Details {
                reason: Some(&reason),
                stage: Some(stage),
                limit: Some(rate::MAX_RATE),
                retry_after_ms: retry,
                ..Details::default()
            }
        };
        let message = match verdict {
            Verdict::Warn => "Rate limit exceeded: messages over the limit are dropped",
            Verdict::Throttle => "Rate limit exceeded again: every message is dropped for a while",
            _ => "Rate limit exceeded persistently: closing the connection",
        };
        let frame = wire::error_with(Code::RateLimitExceeded, message, Some(details), None);
        if verdict == Verdict::Terminate {
            cx.count("rate_limit_terminations", "", 1);
            self.terminate(frame, "Rate limit exceeded", POLICY, cx);
        } else {
            cx.send(frame);
        }
        false
    }

    /// Handles one text message; a refused request becomes an `error` frame.
    fn handle(&mut self, text: &str, cx: &mut Cx<'_>) {
        // serde would also read a struct from a JSON array: only objects are messages.
        let object = text.trim_start().starts_with('{');
        let parsed = if object {
            serde_json::from_str::<Envelope<'_>>(text).map_err(|e| format!("not valid JSON: {e}"))
        } else {
            Err("expected a JSON object".to_owned())
        };
        let env = match parsed {
            Ok(env) => env,
            Err(reason) => {
                let fault = Fault::new(
                    Code::InvalidRequest,
                    "invalid_json",
                    "Invalid message format",
                )
                .at("message", reason);
                cx.reject(fault.counter);
                return cx.send(wire::error(&fault, None));
            }
        };
        let id = match env.id.map(valid_id).transpose() {
            Ok(id) => id,
            Err(fault) => {
                cx.reject(fault.counter);
                return cx.send(wire::error(&fault, None));
            }
        };
        if let Err(fault) = self.dispatch(&env, id.as_deref(), cx) {
            cx.reject(fault.counter);
            cx.send(wire::error(&fault, id.as_deref()));
        }
    }

    fn dispatch(
        &mut self,
        env: &Envelope<'_>,
        id: Option<&str>,
        cx: &mut Cx<'_>,
    ) -> Result<(), Fault> {
        let kind = env
            .kind
            .ok_or_else(|| Fault::invalid("type", "'type' is required"))
            .and_then(|raw| wire::string(raw, "type"))?;
        match &*kind {
            "auth" => return self.auth(env, cx),
            // The answer to our ping: nothing to do.
            "pong" => return Ok(()),
            "subscribe" | "unsubscribe" | "command" => {}
            other => {
                let fault = Fault::new(Code::InvalidRequest, "unknown_type", "Invalid request")
                    .at("type", format!("unknown message type '{other}'"));
                return Err(fault);
            }
        }
        if !self.authed {
            return Err(
                Fault::new(Code::AuthFailed, "auth_required", "Not authenticated").at(
                    "token",
                    "send {\"type\":\"auth\",\"token\":...} first, or connect with ?token=",
                ),
            );
        }
        self.request(&kind, env, id, cx)
    }

    /// A request of an authenticated connection: `subscribe`/`unsubscribe` with action
    /// `events`, `command` with `execute` or `get_metrics`.
    fn request(
        &mut self,
        kind: &str,
        env: &Envelope<'_>,
        id: Option<&str>,
        cx: &mut Cx<'_>,
    ) -> Result<(), Fault> {
        let action = env
            .action
            .map(|raw| wire::string(raw, "action"))
            .transpose()?;
        let action = action.as_deref();
        let need_id = || id.ok_or_else(|| Fault::invalid("id", "'id' is required on requests"));
        match (kind, action) {
            ("subscribe", Some("events")) => {
                let id = need_id()?;
                let rooms = rooms::rooms(env.payload)?;
                self.subs.subscribe(id, rooms, cx)?;
                cx.send(wire::subscribe_ack(id));
            }
            ("unsubscribe", Some("events")) => {
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Unsubscribe<'a> {
                    #[serde(rename = "subscriptionId", borrow)]
                    subscription_id: Text<'a>,
                }
                let req: Unsubscribe<'_> = wire::payload(env.payload, "payload")?;
                // Success has no documented reply; the events of the subscription stop.
                self.subs.unsubscribe(&req.subscription_id, cx)?;
            }
            ("command", Some("execute")) => {
                cx.send(commands::execute(need_id()?, env.payload, &self.host)?);
            }
            ("command", Some("get_metrics")) => {
                let metrics = commands::get_metrics(need_id()?, env.payload, self.strict)?;
                cx.send(metrics);
            }
            (_, None) => return Err(Fault::invalid("action", "'action' is required")),
            (kind, Some(other)) => {
                let known = if kind == "command" {
                    "execute or get_metrics"
                } else {
                    "events"
                };
                return Err(Fault::invalid(
                    "action",
                    format!("unknown action '{other}' for '{kind}' (expected {known})"),
                ));
            }
        }
        Ok(())
    }

    /// `auth`: a valid token is answered with `connected` (again, if already connected);
    /// an invalid one fails the connection.
    fn auth(&mut self, env: &Envelope<'_>, cx: &mut Cx<'_>) -> Result<(), Fault> {
        let token = env
            .token
            .ok_or_else(|| Fault::invalid("token", "'token' is required"))
            .and_then(|raw| wire::string(raw, "token"))?;
        if !cx.config.token_ok(&token) {
            self.auth_failed(cx);
            return Ok(());
        }
        self.authed = true;
        self.auth_deadline = None;
        cx.send(wire::connected(&self.session_id));
        Ok(())
    }
}

/// The message id as a string of 1 to [`wire::MAX_ID_LEN`] bytes.
fn valid_id<'a>(raw: &'a serde_json::value::RawValue) -> Result<Cow<'a, str>, Fault> {
    let Text(id) = wire::string(raw, "id")?;
    if id.is_empty() || id.len() > wire::MAX_ID_LEN {
        let reason = format!("'id' must have 1 to {} characters", wire::MAX_ID_LEN);
        return Err(Fault::invalid("id", reason));
    }
    Ok(id)
}

impl session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) {
        self.next_ping = self.ping_every.map(|p| cx.now + p);
        match self.query {
            QueryAuth::Valid => {
                self.authed = true;
                cx.send(wire::connected(&self.session_id));
            }
            QueryAuth::Invalid => self.auth_failed(cx),
            QueryAuth::Absent => self.auth_deadline = Some(cx.now + AUTH_TIMEOUT),
        }
    }

    fn text(&mut self, text: &Utf8Bytes, cx: &mut Cx<'_>) {
        if self.admit(cx) {
            self.handle(text, cx);
        }
    }

    fn binary(&mut self, _data: &Bytes, cx: &mut Cx<'_>) {
        if self.admit(cx) {
            cx.reject("binary_frame");
            let fault =
                Fault::invalid("message", "binary frames are not supported; send JSON text");
            cx.send(wire::error(&fault, None));
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.next_ping, self.auth_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn timer(&mut self, cx: &mut Cx<'_>) {
        if self.auth_deadline.is_some_and(|d| cx.now >= d) {
            self.auth_deadline = None;
            cx.reject("auth_timeout");
            let fault = Fault::new(Code::AuthFailed, "auth_timeout", "Authentication timed out")
                .at(
                    "token",
                    format!("no auth message within {} s", AUTH_TIMEOUT.as_secs()),
                );
            return self.terminate(
                wire::error(&fault, None),
                "Authentication timed out",
                POLICY,
                cx,
            );
        }
        if let (Some(at), Some(every)) = (self.next_ping, self.ping_every) {
            if cx.now >= at {
                cx.send(wire::ping());
                self.next_ping = Some(cx.now + every);
            }
        }
    }

    fn shutdown(&mut self, cx: &mut Cx<'_>) {
        cx.send(wire::disconnecting("Server shutdown", 1001));
    }
}

#[cfg(test)]
mod tests;
