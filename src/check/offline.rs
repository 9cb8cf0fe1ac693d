//! `squall validate`: recorded frames (JSON lines) checked against a profile, offline.
//!
//! Each line is one of:
//! - a bare frame: checked as inbound, against its schemas only;
//! - `{"dir": "in"|"out", "frame": ...}`: checked in that direction, schemas only;
//! - `{"conn": "c1", "dir": "in"|"out", "frame": ..., "at": "RFC 3339"}`: also the checks
//!   a live run makes per connection, in the recording's order: replies pair with requests
//!   sent before them on the same `conn` (`replies:`), events need a room that `conn`
//!   subscribed to (`subscriptions:`), and an inbound frame may not be stamped later than
//!   its arrival `at` (optional; default: when `validate` runs) plus the allowed skew.
//!
//! `frame` is the frame's JSON, or a string holding its raw text. An object with a `dir` or
//! `frame` member is a record: one without both, with another member, with a `dir` other
//! than `in` or `out`, or a `conn` that is not a string, is bad input, not a frame.

use std::collections::HashMap;
use std::io::BufRead;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::protocol::conversation::Conversation;
use crate::protocol::{Direction, Profile, Violation};

/// How far in the future an inbound frame's stamp may be, as `squall run`'s default.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(1);

/// Most connections a recording may name: each keeps its pending requests and rooms.
const MAX_CONNS: usize = 100_000;

/// A violation found on one line (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The line of the input.
    pub line: usize,
    /// What was wrong.
    pub violation: Violation,
}

/// Why a recording could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line is not a frame or a frame record squall understands.
    #[error("line {line}: {message}")]
    BadLine {
        /// The line (1-based).
        line: usize,
        /// What is wrong with it, and what to write instead.
        message: String,
    },
}

/// One line, read.
struct Record {
    dir: Direction,
    conn: Option<String>,
    at: Option<SystemTime>,
    frame: Value,
}

/// Checks every line of `input`; returns how many frames were read and what failed.
pub fn validate_lines(
    profile: &Profile,
    input: impl BufRead,
) -> Result<(usize, Vec<Finding>), ValidateError> {
    let mut frames = 0;
    let mut findings = Vec::new();
    let mut conns: HashMap<String, Conversation> = HashMap::new();
    let now = SystemTime::now();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        frames += 1;
        let bad = |message: String| ValidateError::BadLine {
            line: i + 1,
            message,
        };
        let mut found = Vec::new();
        match serde_json::from_str::<Value>(&line) {
            Err(_) => found.extend(
                profile
                    .check_text(Direction::In, &line)
                    .err()
                    .into_iter()
                    .flatten(),
            ),
            Ok(v) => {
                let r = record(v).map_err(bad)?;
                let raw = r.frame.as_str().map(str::to_owned);
                let parsed = match &raw {
                    Some(text) => serde_json::from_str::<Value>(text).ok(),
                    None => Some(r.frame.clone()),
                };
                let shape = match (&raw, &parsed) {
                    (Some(text), _) => profile.check_text(r.dir, text),
                    (None, Some(v)) => profile.check(r.dir, v),
                    (None, None) => Ok(()),
                };
                found.extend(shape.err().into_iter().flatten());
                if let (Some(id), Some(v)) = (&r.conn, &parsed) {
                    if !conns.contains_key(id) && conns.len() >= MAX_CONNS {
                        return Err(bad(format!(
                            "more than {MAX_CONNS} connections in one recording: split it"
                        )));
                    }
                    let c = conns.entry(id.clone()).or_default();
                    let at = r.at.unwrap_or(now);
                    let kind = profile.kind_of(v);
                    match r.dir {
                        Direction::Out => c.sent(profile, kind.as_deref(), v),
                        Direction::In => found.extend(c.received(
                            profile,
                            kind.as_deref(),
                            v,
                            Some(at),
                            DEFAULT_SKEW,
                            None,
                        )),
                    }
                }
            }
        }
        findings.extend(found.into_iter().map(|violation| Finding {
            line: i + 1,
            violation,
        }));
    }
    Ok((frames, findings))
}

/// Reads a line's JSON as a frame record, or as a bare inbound frame.
fn record(v: Value) -> Result<Record, String> {
    let Value::Object(o) = v else {
        return Ok(bare(v));
    };
    // A record is told from a bare frame by its `dir` or `frame` member; a half-written one
    // is an error, never silently checked as a bare inbound frame.
    if !o.contains_key("frame") && !o.contains_key("dir") {
        return Ok(bare(Value::Object(o)));
    }
    if let Some(k) = o
        .keys()
        .find(|k| !matches!(k.as_str(), "frame" | "dir" | "conn" | "at"))
    {
        return Err(format!(
            "a frame record (it has \"dir\" or \"frame\") takes only \"dir\", \"frame\", \"conn\" \
             and \"at\", not \"{k}\": move the frame's own members into \"frame\""
        ));
    }
    if !o.contains_key("frame") {
        return Err(
            "a frame record needs \"frame\": the frame's JSON, or a string with its raw text"
                .into(),
        );
    }
    if !o.contains_key("dir") {
        return Err(
            "a frame record needs \"dir\": \"in\" (from the server) or \"out\" (to it)".into(),
        );
    }
    record_of(o)
}

fn bare(frame: Value) -> Record {
    Record {
        dir: Direction::In,
        conn: None,
        at: None,
        frame,
    }
}

fn record_of(mut o: Map<String, Value>) -> Result<Record, String> {
    let dir = match o.get("dir").and_then(Value::as_str) {
        Some("in") => Direction::In,
        Some("out") => Direction::Out,
        _ => {
            return Err(format!(
                "\"dir\" is {}: write \"in\" (from the server) or \"out\" (to it)",
                o["dir"]
            ))
        }
    };
    let conn = match o.get("conn") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "\"conn\" is {other}: name the connection with a string, e.g. \"c1\""
            ))
        }
    };
    let at = match o.get("at") {
        None => None,
        Some(Value::String(s)) => Some(humantime::parse_rfc3339_weak(s).map_err(|e| {
            format!("\"at\" is not an RFC 3339 time ({e}): e.g. \"2026-12-07T10:00:00.123Z\"")
        })?),
        Some(other) => return Err(format!("\"at\" is {other}: an RFC 3339 time string")),
    };
    Ok(Record {
        dir,
        conn,
        at,
        frame: o.remove("frame").unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kite() -> Profile {
        Profile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/kite"))
            .unwrap()
    }

    fn run(lines: &[Value]) -> Result<(usize, Vec<Finding>), ValidateError> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        validate_lines(&kite(), text.as_bytes())
    }

    fn keywords(found: &[Finding]) -> Vec<(usize, String)> {
        found
            .iter()
            .map(|f| (f.line, f.violation.keyword.clone()))
            .collect()
    }

    #[test]
    fn per_connection_records_get_the_live_runs_semantic_checks() {
        use serde_json::json;
        let ts = "2026-12-07T10:00:00Z";
        let at = "2026-12-07T10:00:00.5Z";
        let sub = |room: &str| json!({"type": "subscribe", "room": room});
        let ack = |room: &str| {
            json!({"type": "subscribe", "data": {"client_id": "0b5f0e5c-0000-4000-8000-000000000000", "room": room,
            "status": "subscribed"}, "timestamp": ts})
        };
        let alert = json!({"type": "system.alert", "timestamp": ts,
            "data": {"severity": "warning", "component": "db", "message": "m"}});
        let rec = |conn: &str, dir: &str, frame: &Value| json!({"conn": conn, "dir": dir, "frame": frame, "at": at});
        let mut future = alert.clone();
        future["timestamp"] = json!("2099-01-01T00:00:00Z");
        let lines = [
            rec("c1", "out", &sub("alerts:all")), // 1
            rec("c1", "in", &ack("alerts:all")),  // 2 answers line 1
            rec("c1", "in", &ack("alerts:all")),  // 3 a duplicate ack: answers nothing
            rec("c1", "in", &alert),              // 4 held room
            rec("c2", "in", &alert),              // 5 c2 never subscribed
            rec("c1", "in", &future),             // 6 stamped in the future
            json!({"dir": "in", "frame": alert}), // 7 no conn: shape only
        ];
        let (frames, found) = run(&lines).unwrap();
        assert_eq!(frames, 7);
        assert_eq!(
            keywords(&found),
            [
                (3, "reply_mismatch".to_string()),
                (5, "unsubscribed".to_string()),
                (6, "clock_skew".to_string()),
            ]
        );
    }

    #[test]
    fn a_record_with_a_bad_direction_is_bad_input_not_a_frame() {
        use serde_json::json;
        let e = run(&[json!({"dir": "sideways", "frame": {"type": "ping"}})]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("line 1: \"dir\" is \"sideways\""),
            "{text}"
        );
        let e = run(&[json!({"conn": 7, "dir": "in", "frame": {}})]).unwrap_err();
        assert!(e.to_string().contains("\"conn\" is 7"), "{e}");
        let e = run(&[json!({"conn": "c", "dir": "in", "frame": {}, "at": "noon"})]).unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }

    #[test]
    fn a_recording_is_judged_by_the_subscribes_filters_and_a_chats_posts() {
        use serde_json::json;
        let load = |name: &str| {
            Profile::load(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("schemas")
                    .join(name),
            )
            .unwrap()
        };
        let found = |p: &Profile, lines: &[Value]| -> Vec<(usize, String, String)> {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let (_, found) = validate_lines(p, text.as_bytes()).unwrap();
            found
                .into_iter()
                .map(|f| (f.line, f.violation.keyword, f.violation.pointer))
                .collect()
        };
        let rec = |dir: &str, frame: Value| json!({"conn": "c1", "dir": dir, "frame": frame});
        // KECS: a subscribe for production tasks; a staging task is outside it.
        let task = |cluster: &str| {
            json!({"id": "evt-003", "type": "event", "timestamp": "2024-01-01T00:00:00.000Z",
                "payload": {"eventType": "task", "action": "START", "task": {
                "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/production/1234567890abcdef",
                "clusterArn": format!("arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}"),
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/webapp:1",
                "lastStatus": "PENDING", "desiredStatus": "RUNNING", "containers": []}}})
        };
        let kecs = [
            rec(
                "out",
                json!({"id": "sub-001", "type": "subscribe", "action": "events",
                "payload": {"eventTypes": ["task"], "clusters": ["production"]}}),
            ),
            rec("in", task("production")),
            rec("in", task("staging")),
        ];
        let kecs = found(&load("kecs"), &kecs);
        assert_eq!(
            kecs,
            [(3, "unsubscribed".into(), "/payload/task/clusterArn".into())]
        );
        // NewLoom: chat 7 was posted to, chat 8 was not.
        let message = |chat: u64| {
            json!({"type": "message", "message": {"id": 1, "content": "c", "user": "u",
                "timestamp": "2024-02-05T12:00:00Z", "chat_id": chat}})
        };
        let newloom = [
            rec(
                "out",
                json!({"type": "message", "content": "hi", "chat_id": 7}),
            ),
            rec("in", message(7)),
            rec("in", message(8)),
        ];
        let newloom = found(&load("newloom"), &newloom);
        assert_eq!(
            newloom,
            [(3, "unsubscribed".into(), "/message/chat_id".into())]
        );
    }

    #[test]
    fn a_half_written_record_is_bad_input_not_a_bare_frame() {
        use serde_json::json;
        let ping = json!({"type": "ping"});
        let e = run(&[
            ping.clone(),
            json!({"dir": "sideways", "frame": ping, "time": 1}),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("line 2: a frame record"), "{e}");
        assert!(e.contains("not \"time\""), "{e}");
        let e = run(&[json!({"dir": "sideways", "type": "ping"})]).unwrap_err();
        assert!(e.to_string().contains("not \"type\""), "{e}");
        let e = run(&[json!({"dir": "in"})]).unwrap_err();
        assert!(e.to_string().contains("needs \"frame\""), "{e}");
        let e = run(&[json!({"frame": ping})]).unwrap_err();
        assert!(e.to_string().contains("needs \"dir\""), "{e}");
    }
}
