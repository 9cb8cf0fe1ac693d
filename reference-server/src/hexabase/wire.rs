//! Hexabase frames on the wire: the inbound envelope and per-kind `data` structs (borrowed
//! from the message text), the `error` frame with its documented codes, and the reply frames,
//! serialized from borrowed structs.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

use crate::clock::now_rfc3339;

/// Longest `id`/`stream_id`/entity id the schemas accept (`defs.json` `message_id`, `entity_id`).
pub const MAX_ID_CHARS: usize = 256;

/// Every client frame: only the fields the dispatcher looks at; the rest is ignored. Each is
/// kept raw so a wrong type gets a precise error instead of failing the whole frame.
#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
    /// `auth` carries its token at the root ("Authentication").
    #[serde(default, borrow)]
    pub token: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
}

/// The string a raw JSON value holds; `None` when it is not a string. Borrowed unless the
/// string has escapes.
pub(crate) fn string_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Whether `s` is an id the schemas accept: 1 to 256 characters.
pub(crate) fn id_ok(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_ID_CHARS
}

/// A Kubernetes DNS label (namespace, container): at most 63 of `[a-z0-9-]`, alphanumeric ends.
pub(crate) fn dns_label_ok(s: &str) -> bool {
    s.len() <= 63 && dns_name_ok(s, false)
}

/// A Kubernetes DNS subdomain (pod): at most 253 of `[a-z0-9.-]`, alphanumeric ends.
pub(crate) fn dns_subdomain_ok(s: &str) -> bool {
    s.len() <= 253 && dns_name_ok(s, true)
}

fn dns_name_ok(s: &str, dots: bool) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if alnum(first) && alnum(last) => bytes
            .iter()
            .all(|b| alnum(b) || *b == b'-' || (dots && *b == b'.')),
        _ => false,
    }
}

/// `subscribe` data ("Subscribe to Events"); the id field is named after the resource.
#[derive(Deserialize)]
pub(crate) struct SubscribeData<'a> {
    #[serde(borrow)]
    pub resource: Cow<'a, str>,
    #[serde(default, borrow)]
    pub workspace_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub organization_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub project_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub events: Vec<Cow<'a, str>>,
}

/// `unsubscribe` data.
#[derive(Deserialize)]
pub(crate) struct UnsubscribeData<'a> {
    #[serde(borrow)]
    pub subscription_id: Cow<'a, str>,
}

/// `get_workspace_status` data.
#[derive(Deserialize)]
pub(crate) struct WorkspaceData<'a> {
    #[serde(borrow)]
    pub workspace_id: Cow<'a, str>,
}

/// `stream_logs` data ("Get Real-time Logs").
#[derive(Deserialize)]
pub(crate) struct StreamLogsData<'a> {
    #[serde(borrow)]
    pub workspace_id: Cow<'a, str>,
    #[serde(borrow)]
    pub namespace: Cow<'a, str>,
    #[serde(borrow)]
    pub pod: Cow<'a, str>,
    #[serde(default, borrow)]
    pub container: Option<Cow<'a, str>>,
    #[serde(default)]
    pub follow: Option<bool>,
    #[serde(default)]
    pub tail_lines: Option<u64>,
}

/// `stop_stream` data.
#[derive(Deserialize)]
pub(crate) struct StopStreamData<'a> {
    #[serde(borrow)]
    pub stream_id: Cow<'a, str>,
}

/// The "Common Error Codes" table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Code {
    AuthRequired,
    /// Not sent: a bad `auth` token gets `auth_result` with `success: false`, and tokens
    /// never expire here (see the docs).
    #[allow(dead_code)]
    InvalidToken,
    /// Not sent: there is one user, allowed everything.
    #[allow(dead_code)]
    PermissionDenied,
    ResourceNotFound,
    SubscriptionLimitExceeded,
    InvalidMessageFormat,
    /// Not sent: the document names no rate.
    #[allow(dead_code)]
    RateLimitExceeded,
    MessageTooLarge,
}

/// `error.details`: documented for the subscription limit, reference-server choices otherwise.
#[derive(Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Details {
    Subscriptions {
        current_subscriptions: usize,
        requested_subscription: String,
    },
    Streams {
        current_streams: usize,
        requested_stream: String,
    },
    Size {
        max_bytes: usize,
    },
}

/// A refused request: the `error` frame to send and the reject counter to move.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: Code,
    pub message: String,
    pub details: Option<Details>,
    /// Label for `squall_server_rejects_total{reason=...}`.
    pub reason: &'static str,
}

impl Failure {
    /// A failure without details.
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            details: None,
            reason,
        }
    }

    /// An `INVALID_MESSAGE_FORMAT` failure.
    pub fn format(message: impl Into<String>) -> Self {
        Failure::new(Code::InvalidMessageFormat, "invalid_message", message)
    }

    /// The same failure, counted under another reject `reason`.
    pub fn because(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }

    /// The same failure with `details`.
    pub fn with(mut self, details: Details) -> Self {
        self.details = Some(details);
        self
    }

    /// The `error` frame, with the request's id when there is one ("Error Message Format").
    pub fn frame(&self, id: Option<&str>) -> String {
        let timestamp = now_rfc3339();
        to_string(&ErrorFrame {
            kind: "error",
            id,
            timestamp: &timestamp,
            error: ErrorBody {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
            },
        })
    }
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    timestamp: &'a str,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: Code,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Details>,
}

/// `auth_result`, success or failure ("Authentication Response"); the auth's id echoed if any.
#[derive(Serialize)]
pub(crate) struct AuthResult<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub timestamp: &'a str,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// A successful `subscribe_result` ("Subscription Response").
#[derive(Serialize)]
pub(crate) struct SubscribeResult<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    pub timestamp: &'a str,
    pub success: bool,
    pub subscription_id: &'a str,
}

/// A frame with `data`: `workspace_status`, `log_entry`, events. `id` answers a request;
/// `seq` counts events per room and log lines per stream (a reference-server extension).
#[derive(Serialize)]
pub(crate) struct DataFrame<'a, D: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub timestamp: &'a str,
    pub data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The server's keep-alive ("Ping/Pong").
pub(crate) fn ping() -> String {
    #[derive(Serialize)]
    struct Ping<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        timestamp: &'a str,
    }
    let timestamp = now_rfc3339();
    to_string(&Ping {
        kind: "ping",
        timestamp: &timestamp,
    })
}

/// Serializes a frame; plain structs of strings and numbers cannot fail.
pub(crate) fn to_string<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_names() {
        let raw: Box<RawValue> = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(string_of(&raw).as_deref(), Some("a\"b"));
        let raw: Box<RawValue> = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(string_of(&raw), Some(Cow::Borrowed("plain"))));
        let raw: Box<RawValue> = serde_json::from_str("12").unwrap();
        assert_eq!(string_of(&raw), None);
        assert!(id_ok("x") && !id_ok("") && !id_ok(&"é".repeat(257)));
        assert!(id_ok(&"é".repeat(256)), "characters, not bytes");
        assert!(dns_label_ok("api") && dns_label_ok("a-1") && !dns_label_ok("-a"));
        assert!(!dns_label_ok("a.b") && dns_subdomain_ok("a.b") && !dns_subdomain_ok("A"));
        assert!(!dns_label_ok("") && !dns_label_ok(&"a".repeat(64)));
    }

    #[test]
    fn error_frame_shape() {
        let f = Failure::new(Code::SubscriptionLimitExceeded, "x", "too many").with(
            Details::Subscriptions {
                current_subscriptions: 100,
                requested_subscription: "workspace:ws-1".into(),
            },
        );
        let v: serde_json::Value = serde_json::from_str(&f.frame(Some("sub-1"))).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["id"], "sub-1");
        assert_eq!(v["error"]["code"], "SUBSCRIPTION_LIMIT_EXCEEDED");
        assert_eq!(v["error"]["details"]["current_subscriptions"], 100);
        let v: serde_json::Value =
            serde_json::from_str(&Failure::format("bad").frame(None)).unwrap();
        assert!(v.get("id").is_none() && v["error"].get("details").is_none());
        assert_eq!(v["error"]["code"], "INVALID_MESSAGE_FORMAT");
    }
}
