//! KECS frames on the wire: the inbound envelope (typed and borrowing), the error model with
//! the documented codes, and the server's frames, serialized from borrowed structs.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

use crate::clock::now_rfc3339;

/// Longest message id accepted (it is echoed, and stored as a subscription id).
pub(crate) const MAX_ID_LEN: usize = 256;

/// A JSON string, borrowed from the frame unless it had escapes.
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Every client frame's top level. Fields stay raw until the message type says what they
/// must be, so a wrong one is reported by name; unknown top-level fields are ignored.
#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub action: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub token: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub payload: Option<&'a RawValue>,
}

/// The string in `raw`, or an `INVALID_REQUEST` naming `field`.
pub(crate) fn string<'a>(raw: &'a RawValue, field: &str) -> Result<Text<'a>, Fault> {
    serde_json::from_str(raw.get())
        .map_err(|_| Fault::invalid(field, format!("'{field}' must be a string")))
}

/// Parses `raw` (the object at `field`) into `T`; serde's message names the offending
/// field. Fields inside the top-level `payload` are named relative to it, as in the
/// document's example (`"field": "eventTypes"`); deeper ones as `filters.status`.
pub(crate) fn payload<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    field: &str,
) -> Result<T, Fault> {
    let raw = raw.ok_or_else(|| Fault::invalid(field, format!("'{field}' is required")))?;
    serde_json::from_str(raw.get()).map_err(|e| {
        // serde names fields in backticks: "missing field `eventTypes`", "unknown field `x`".
        let msg = e.to_string();
        let named = msg.split('`').nth(1).filter(|_| msg.contains("field `"));
        let at = match named {
            None => field.to_owned(),
            Some(n) if field == "payload" => n.to_owned(),
            Some(n) => format!("{field}.{n}"),
        };
        let reason = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        Fault::invalid(&at, reason)
    })
}

/// The documented error codes ("Error Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    AuthFailed,
    InvalidRequest,
    SubscriptionError,
    ResourceNotFound,
    RateLimitExceeded,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::AuthFailed => "AUTH_FAILED",
            Code::InvalidRequest => "INVALID_REQUEST",
            Code::SubscriptionError => "SUBSCRIPTION_ERROR",
            Code::ResourceNotFound => "RESOURCE_NOT_FOUND",
            Code::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
        }
    }
}

/// A refused request: the error frame's contents and the reject counter it moves.
#[derive(Debug)]
pub(crate) struct Fault {
    pub code: Code,
    pub message: String,
    pub field: Option<String>,
    pub reason: Option<String>,
    /// Label of `squall_server_rejects_total`.
    pub counter: &'static str,
}

impl Fault {
    pub fn new(code: Code, counter: &'static str, message: impl Into<String>) -> Self {
        Fault {
            code,
            message: message.into(),
            field: None,
            reason: None,
            counter,
        }
    }

    /// `INVALID_REQUEST` about one field, in the document's `details` form.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Fault::new(Code::InvalidRequest, "invalid_request", "Invalid request").at(field, reason)
    }

    /// Adds `details: {field, reason}`.
    pub fn at(mut self, field: &str, reason: impl Into<String>) -> Self {
        self.field = Some(field.to_owned());
        self.reason = Some(reason.into());
        self
    }
}

#[derive(Serialize)]
struct Frame<'a, P: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

/// A server frame: `{id?, type, timestamp, payload?}`.
pub(crate) fn frame<P: Serialize>(kind: &str, id: Option<&str>, payload: Option<P>) -> String {
    let timestamp = now_rfc3339();
    let frame = Frame {
        id,
        kind,
        timestamp: &timestamp,
        payload,
    };
    // Plain structs of strings and numbers always serialize.
    serde_json::to_string(&frame).unwrap_or_default()
}

#[derive(Serialize)]
struct ErrorPayload<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
}

/// `error.payload.details`: the document's `field`/`reason`, plus the rate-limit stage.
#[derive(Serialize, Default)]
pub(crate) struct Details<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(rename = "retryAfterMs", skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// An `error` frame for `fault`, answering message `id` when it had a usable one.
pub(crate) fn error(fault: &Fault, id: Option<&str>) -> String {
    let details = (fault.field.is_some() || fault.reason.is_some()).then(|| Details {
        field: fault.field.as_deref(),
        reason: fault.reason.as_deref(),
        ..Details::default()
    });
    error_with(fault.code, &fault.message, details, id)
}

/// An `error` frame with explicit details.
pub(crate) fn error_with(
    code: Code,
    message: &str,
    details: Option<Details<'_>>,
    id: Option<&str>,
) -> String {
    let payload = ErrorPayload {
        code: code.as_str(),
        message,
        details,
    };
    frame("error", id, Some(payload))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Connected<'a> {
    session_id: &'a str,
    server_version: &'a str,
}

/// `connected`: sent once the client is authenticated.
pub(crate) fn connected(session_id: &str) -> String {
    let payload = Connected {
        session_id,
        server_version: env!("CARGO_PKG_VERSION"),
    };
    frame("connected", None, Some(payload))
}

#[derive(Serialize)]
struct Disconnecting<'a> {
    reason: &'a str,
    code: u16,
}

/// `disconnecting`: the last frame before the server's close with the same `code`.
pub(crate) fn disconnecting(reason: &str, code: u16) -> String {
    frame("disconnecting", None, Some(Disconnecting { reason, code }))
}

/// The server's heartbeat `ping`.
pub(crate) fn ping() -> String {
    frame::<()>("ping", None, None)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscribeAck<'a> {
    subscription_id: &'a str,
    status: &'a str,
}

/// `subscribe_ack` for the subscription created by request `id` (its id is the request's).
pub(crate) fn subscribe_ack(id: &str) -> String {
    let payload = SubscribeAck {
        subscription_id: id,
        status: "active",
    };
    frame("subscribe_ack", Some(id), Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct P<'a> {
        #[serde(borrow, rename = "eventTypes")]
        _event_types: Vec<Text<'a>>,
    }

    #[test]
    fn payload_errors_name_the_field() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        let f = payload::<P>(Some(&raw("{}")), "payload").err().unwrap();
        assert_eq!(f.field.as_deref(), Some("eventTypes"));
        assert_eq!(f.reason.as_deref(), Some("missing field `eventTypes`"));
        let f = payload::<P>(Some(&raw(r#"{"eventTypes":[],"x":1}"#)), "payload")
            .err()
            .unwrap();
        assert_eq!(f.field.as_deref(), Some("x"));
        let f = payload::<P>(Some(&raw(r#"{"x":1}"#)), "filters")
            .err()
            .unwrap();
        assert_eq!(f.field.as_deref(), Some("filters.x"));
        let f = payload::<P>(Some(&raw(r#"{"eventTypes":3}"#)), "payload")
            .err()
            .unwrap();
        assert_eq!(f.field.as_deref(), Some("payload"));
        assert!(payload::<P>(None, "payload").is_err());
        let escaped = raw(r#""a\"b""#);
        assert_eq!(&*string(&escaped, "id").unwrap(), "a\"b");
        assert!(string(&raw("5"), "id").is_err());
    }
}
