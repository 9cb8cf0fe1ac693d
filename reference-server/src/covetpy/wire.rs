//! CovetPy frames on the wire: inbound messages parsed in one pass into borrowed typed
//! structs, and reply frames serialized straight from borrowed structs (no `Value` tree).

use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

use crate::clock::now_rfc3339;

/// Longest id, room id or resource id (`message_id`/`entity_id` in `schemas/covetpy/defs.json`).
pub const MAX_ID_LEN: usize = 256;

/// Whether `s` can be echoed as an id the schemas accept (1 to 256 characters).
pub fn id_ok(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_ID_LEN
}

/// Whether `s` is a snake_case word (`token` in `defs.json`).
pub fn token_ok(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// One client frame. Every field is optional here so that a frame missing one still
/// yields its `id` for the error reply; the handlers check what their kind requires.
/// Unknown fields are ignored.
#[derive(Deserialize)]
pub struct Inbound<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Option<Data<'a>>,
}

/// Just the id of a frame that failed to parse as [`Inbound`] (for `original_message_id`).
#[derive(Deserialize)]
pub struct IdOnly<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
}

/// The `data` of every client kind, flattened into one struct so one pass parses any
/// frame: the kinds' field names do not clash (`options` carries the fields of both
/// `join_room` and `subscribe`).
#[derive(Deserialize, Default)]
pub struct Data<'a> {
    // heartbeat
    pub sequence: Option<u64>,
    // join_room, leave_room
    #[serde(default, borrow)]
    pub room_id: Option<Cow<'a, str>>,
    // subscribe, unsubscribe
    pub stream_type: Option<StreamType>,
    #[serde(default, borrow)]
    pub resource_id: Option<Cow<'a, str>>,
    pub filters: Option<Filters>,
    pub options: Option<Options>,
    #[serde(default, borrow)]
    pub subscription_id: Option<Cow<'a, str>>,
    // rpc_call
    #[serde(default, borrow)]
    pub method: Option<Cow<'a, str>>,
    /// Kept as raw text: `echo` writes it back without parsing it again.
    #[serde(default, borrow)]
    pub params: Option<&'a RawValue>,
    pub timeout: Option<u64>,
    // file_upload_start
    #[serde(default, borrow)]
    pub filename: Option<Cow<'a, str>>,
    pub size: Option<u64>,
    #[serde(default, borrow)]
    pub mimetype: Option<Cow<'a, str>>,
    pub chunk_size: Option<u64>,
    // file_chunk
    #[serde(default, borrow)]
    pub upload_id: Option<Cow<'a, str>>,
    pub chunk_index: Option<u64>,
    pub total_chunks: Option<u64>,
    /// Base64 chunk bytes.
    #[serde(default, borrow)]
    pub data: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub checksum: Option<Cow<'a, str>>,
}

/// `subscribe` `options` (and `join_room` `options`, whose fields are accepted and ignored).
#[derive(Deserialize, Default, Clone, Copy)]
pub struct Options {
    pub buffer_size: Option<u64>,
    /// Milliseconds.
    pub batch_interval: Option<u64>,
}

/// `subscribe` `filters`: only `min_severity` changes what the server sends.
#[derive(Deserialize, Default, Clone, Copy)]
pub struct Filters {
    pub min_severity: Option<Severity>,
}

/// The documented stream types.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    Metrics,
    Logs,
    Events,
    DatabaseChanges,
}

/// Log severities, lowest first (`severity` in `defs.json`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Debug,
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];
}

/// A server-made frame id: a kind prefix and a counter (`hb_3`), written without allocating.
#[derive(Clone, Copy)]
pub struct Sid(pub &'static str, pub u64);

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.0, self.1)
    }
}

impl Serialize for Sid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The `rate_limit` object sent at the frame root of rate-limited replies.
#[derive(Serialize, Clone, Debug)]
pub struct RateLimit {
    pub limit: u32,
    pub remaining: u32,
    /// RFC 3339: when the window that ran out starts again.
    pub reset: String,
}

/// Every server frame: the envelope fields in the documented order.
#[derive(Serialize)]
struct Frame<'a, I, D> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: I,
    timestamp: &'a str,
    data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<&'a RateLimit>,
}

/// Serializes a frame of `kind` stamped with the current time.
pub fn frame<I: Serialize, D: Serialize>(kind: &str, id: I, data: D) -> String {
    frame_limited(kind, id, data, None)
}

/// [`frame`] with an optional `rate_limit` object.
pub fn frame_limited<I: Serialize, D: Serialize>(
    kind: &str,
    id: I,
    data: D,
    rate_limit: Option<&RateLimit>,
) -> String {
    let timestamp = now_rfc3339();
    let frame = Frame {
        kind,
        id,
        timestamp: &timestamp,
        data,
        rate_limit,
    };
    // Plain structs of strings and numbers (and raw JSON already checked) cannot fail.
    serde_json::to_string(&frame).unwrap_or_default()
}

/// `error.data.error_code`: the document's "Connection Errors" plus the profile's upload
/// extensions (`schemas/covetpy/README.md`, decision 7).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    AuthFailed,
    RateLimited,
    PermissionDenied,
    RoomNotFound,
    SubscriptionFailed,
    RpcTimeout,
    InvalidMessageFormat,
    ChecksumMismatch,
    UploadNotFound,
}

/// `error.data.details`: whichever of these apply.
#[derive(Serialize, Default)]
pub struct Details<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_index: Option<u64>,
}

impl<'a> Details<'a> {
    /// Details naming the offending field.
    pub fn field(field: &'a str) -> Self {
        Details {
            field: Some(field),
            ..Details::default()
        }
    }

    /// Details naming an upload's chunk.
    pub fn chunk(upload_id: &'a str, chunk_index: u64) -> Self {
        Details {
            upload_id: Some(upload_id),
            chunk_index: Some(chunk_index),
            ..Details::default()
        }
    }
}

/// An `error` frame about to be sent.
pub struct Failure<'a> {
    pub code: Code,
    pub message: String,
    /// The id of the frame it answers, when that id is usable.
    pub original: Option<&'a str>,
    pub details: Option<Details<'a>>,
    /// Whether the connection stays usable (false only for auth failures).
    pub recoverable: bool,
    pub rate_limit: Option<Box<RateLimit>>,
}

impl<'a> Failure<'a> {
    /// A recoverable error answering `original`.
    pub fn new(code: Code, message: impl Into<String>, original: Option<&'a str>) -> Self {
        Failure {
            code,
            message: message.into(),
            original,
            details: None,
            recoverable: true,
            rate_limit: None,
        }
    }

    /// Adds details.
    pub fn with(mut self, details: Details<'a>) -> Self {
        self.details = Some(details);
        self
    }

    /// The frame, with id `err_<n>`.
    pub fn render(&self, n: u64) -> String {
        let data = ErrorData {
            error_code: self.code,
            error_message: &self.message,
            original_message_id: self.original,
            details: self.details.as_ref(),
            recoverable: self.recoverable,
        };
        frame_limited("error", Sid("err", n), data, self.rate_limit.as_deref())
    }
}

#[derive(Serialize)]
struct ErrorData<'a> {
    error_code: Code,
    error_message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Details<'a>>,
    recoverable: bool,
}

#[derive(Serialize)]
struct RpcResult<R> {
    result: R,
}

/// An `rpc_response` answering call `id`.
pub fn rpc_response<R: Serialize>(id: &str, result: R) -> String {
    frame("rpc_response", id, RpcResult { result })
}

#[derive(Serialize)]
struct RpcErrorData<'a, D> {
    error: RpcErrorBody<'a, D>,
}

#[derive(Serialize)]
struct RpcErrorBody<'a, D> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<D>,
}

/// An `rpc_error` answering call `id`; `code` is UPPER_SNAKE_CASE.
pub fn rpc_error<D: Serialize>(
    id: &str,
    code: &str,
    message: &str,
    details: Option<D>,
    rate_limit: Option<&RateLimit>,
) -> String {
    let data = RpcErrorData {
        error: RpcErrorBody {
            code,
            message,
            details,
        },
    };
    frame_limited("rpc_error", id, data, rate_limit)
}

/// An `rpc_error` with neither details nor `rate_limit`.
pub fn rpc_fail(id: &str, code: &str, message: &str) -> String {
    rpc_error(id, code, message, None::<()>, None)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// `notification.data.notification_type`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
    Info,
    Warning,
    Error,
    Success,
}

/// `notification.data`; dismissed automatically after five seconds.
#[derive(Serialize)]
pub struct Notification<'a> {
    pub notification_type: NotificationType,
    pub title: &'a str,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<&'a str>,
    pub auto_dismiss: bool,
    /// Milliseconds.
    pub dismiss_after: u64,
}

impl<'a> Notification<'a> {
    /// A notification that dismisses itself after five seconds.
    pub fn new(kind: NotificationType, title: &'a str, message: &'a str) -> Self {
        Notification {
            notification_type: kind,
            title,
            message,
            category: None,
            auto_dismiss: true,
            dismiss_after: 5000,
        }
    }
}
