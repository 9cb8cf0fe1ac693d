//! The streams endpoint (`/newloom/ws/streams/`): status updates, execution statistics and
//! stream error notifications, generated at `--events RATE` into the rooms of the streams a
//! connection follows, serialized once per room.
//!
//! The document has no subscribe message, so the streams are named when connecting:
//! `?streams=1,2` follows those streams (one room each, sequence numbers per stream);
//! without it the connection follows the `all` room, whose frames name streams 1 to
//! [`ALL_STREAMS`] and share one sequence.

use rand::rngs::ThreadRng;
use rand::RngExt;
use serde::Serialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use super::{invalid, receive, unknown_type, Heartbeat, Identity};
use crate::clock::now_rfc3339;
use crate::proto::Seq;
use crate::session::{self, Cx};
use crate::Config;

/// The room followed without `?streams=`.
pub const ALL: &str = "all";

/// Stream ids the `all` room reports on (1 to this).
pub const ALL_STREAMS: u64 = 16;

/// Every this-many frames of a room, the frame is a stream error notification.
pub const ERROR_EVERY: u64 = 20;

/// Statuses drawn for `status_update`, `running` most often (the only one documented).
const STATUSES: [&str; 8] = [
    "running",
    "running",
    "running",
    "running",
    "pending",
    "paused",
    "completed",
    "failed",
];

/// Upper-snake codes for stream errors, with their messages.
const ERRORS: [(&str, &str); 3] = [
    ("SOURCE_TIMEOUT", "Source connection timed out"),
    (
        "EXECUTION_FAILED",
        "Execution failed: step returned a non-zero exit code",
    ),
    ("QUOTA_EXCEEDED", "Destination quota exceeded"),
];

/// "1. Stream Status Update".
#[derive(Serialize)]
struct StatusFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    stream_id: u64,
    status: &'a str,
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// "2. Execution Statistics".
#[derive(Serialize)]
struct StatsFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    stream_id: u64,
    stats: Stats<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

#[derive(Serialize)]
struct Stats<'a> {
    processed_count: u64,
    failed_count: u64,
    total_count: u64,
    execution_time: &'a str,
}

/// "3. Error Notification".
#[derive(Serialize)]
struct StreamErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    stream_id: u64,
    error: StreamError<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

#[derive(Serialize)]
struct StreamError<'a> {
    message: &'a str,
    code: &'a str,
    timestamp: &'a str,
}

/// One generated frame for `room` with sequence number `seq`: a stream error every
/// [`ERROR_EVERY`]th, otherwise `status_update` (odd `seq`) and `execution_stats` (even).
/// `None` for a room that is not a stream.
pub(crate) fn event(room: &str, shown: Seq, rng: &mut ThreadRng) -> Option<String> {
    let seq = shown.n;
    let stream_id = match room {
        ALL => rng.random_range(1..=ALL_STREAMS),
        id => id.parse().ok().filter(|&id| id >= 1)?,
    };
    let timestamp = now_rfc3339();
    let text = if seq.is_multiple_of(ERROR_EVERY) {
        let (code, message) = ERRORS[rng.random_range(0..ERRORS.len())];
        let error = StreamError {
            message,
            code,
            timestamp: &timestamp,
        };
        let frame = StreamErrorFrame {
            kind: "error",
            stream_id,
            error,
            seq: shown.field(),
        };
        serde_json::to_string(&frame)
    } else if seq % 2 == 1 {
        let frame = StatusFrame {
            kind: "status_update",
            stream_id,
            status: STATUSES[rng.random_range(0..STATUSES.len())],
            timestamp: &timestamp,
            seq: shown.field(),
        };
        serde_json::to_string(&frame)
    } else {
        // Ten records per frame so far; the elapsed time counts one second per frame.
        let total_count = seq.saturating_mul(10);
        let failed_count = rng.random_range(0..=total_count / 10);
        let secs = seq;
        let elapsed = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        let stats = Stats {
            processed_count: total_count - failed_count,
            failed_count,
            total_count,
            execution_time: &elapsed,
        };
        let frame = StatsFrame {
            kind: "execution_stats",
            stream_id,
            stats,
            seq: shown.field(),
        };
        serde_json::to_string(&frame)
    };
    text.ok()
}

/// One streams connection: it only listens, and keeps its heartbeat.
pub(crate) struct Session {
    /// The followed streams (sorted); `None`: the `all` room.
    streams: Option<Vec<u64>>,
    heartbeat: Heartbeat,
}

impl Session {
    pub fn new(id: Identity, config: &Config) -> Self {
        Session {
            streams: id.rooms,
            heartbeat: Heartbeat::new(config, Instant::now()),
        }
    }
}

impl session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) {
        self.heartbeat.seen(cx.now);
        match &self.streams {
            None => {
                cx.join(ALL);
            }
            Some(ids) => {
                for id in ids {
                    cx.join(&id.to_string());
                }
            }
        }
    }

    fn text(&mut self, text: &Utf8Bytes, cx: &mut Cx<'_>) {
        let Some(msg) = receive(text, &mut self.heartbeat, cx) else {
            return;
        };
        match msg.kind.as_ref() {
            kind @ ("message" | "typing") => {
                let message = format!(
                    "Invalid message format: '{kind}' belongs to the chat endpoint; \
                     the streams endpoint accepts heartbeat and disconnect"
                );
                invalid(cx, "wrong_endpoint", &message);
            }
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
    use super::*;
    use crate::session::{Harness, Proto, Session as _};
    use serde_json::Value;

    fn one(room: &str, seq: u64) -> Value {
        serde_json::from_str(&event(room, Seq::shown(seq), &mut rand::rng()).unwrap()).unwrap()
    }

    #[test]
    fn kinds_follow_the_sequence() {
        let status = one("7", 1);
        assert_eq!(status["type"], "status_update");
        assert_eq!(status["stream_id"], 7);
        assert_eq!(status["seq"], 1);
        let stats = one("7", 2);
        assert_eq!(stats["type"], "execution_stats");
        let s = &stats["stats"];
        assert_eq!(s["total_count"], 20);
        let sum = s["processed_count"].as_u64().unwrap() + s["failed_count"].as_u64().unwrap();
        assert_eq!(sum, 20);
        assert_eq!(s["execution_time"], "00:00:02");
        assert_eq!(one("7", 3_725 * 2)["stats"]["execution_time"], "02:04:10");
        let error = one("7", ERROR_EVERY);
        assert_eq!(error["type"], "error");
        assert!(error["error"]["code"].as_str().unwrap().contains('_'));
        let any = one(ALL, 1)["stream_id"].as_u64().unwrap();
        assert!((1..=ALL_STREAMS).contains(&any));
        assert!(event("0", Seq::shown(1), &mut rand::rng()).is_none());
        assert!(event("x", Seq::shown(1), &mut rand::rng()).is_none());
    }

    #[test]
    fn follows_named_streams_or_all_and_only_listens() {
        let mut h = Harness::new(Proto::NewloomStreams);
        let id = Identity {
            user: None,
            rooms: Some(vec![3, 9]),
        };
        let mut s = Session::new(id, &h.config);
        s.open(&mut h.cx());
        assert_eq!(h.cx().rooms().collect::<Vec<_>>(), ["3", "9"]);
        let chat = r#"{"type":"message","content":"x","chat_id":1}"#;
        s.text(&Utf8Bytes::from_static(chat), &mut h.cx());
        assert_eq!(h.sent()[0]["code"], "invalid_format");
        s.text(
            &Utf8Bytes::from_static(r#"{"type":"heartbeat"}"#),
            &mut h.cx(),
        );
        assert!(h.sent().is_empty());
        let mut h = Harness::new(Proto::NewloomStreams);
        let id = Identity {
            user: None,
            rooms: None,
        };
        Session::new(id, &h.config).open(&mut h.cx());
        assert_eq!(h.cx().rooms().collect::<Vec<_>>(), [ALL]);
    }
}
