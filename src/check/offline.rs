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

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::BufRead;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::protocol::checker::{Checker, Engine, Verdict};
use crate::protocol::pointer::{kind_on_tape, Shape};
use crate::protocol::tape::Tape;
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

/// Checks every line of `input` with `engine` (as `squall run --checker`); returns how many
/// frames were read and what failed. Frames on a named `conn` go through that connection's
/// [`Checker`], as in a live run; others are judged by their schemas alone, by the same
/// engine.
pub fn validate_lines(
    profile: &Arc<Profile>,
    engine: Engine,
    input: impl BufRead,
) -> Result<(usize, Vec<Finding>), ValidateError> {
    let mut frames = 0;
    let mut findings = Vec::new();
    let mut judge = Judge::new(profile, engine);
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        frames += 1;
        let found = judge
            .line(&line)
            .map_err(|message| ValidateError::BadLine {
                line: i + 1,
                message,
            })?;
        findings.extend(found.into_iter().map(|violation| Finding {
            line: i + 1,
            violation,
        }));
    }
    Ok((frames, findings))
}

/// What judges a recording's frames: the engine, and a checker per named connection, all
/// reading onto one tape.
struct Judge {
    profile: Arc<Profile>,
    engine: Engine,
    shape: Arc<Shape>,
    tape: Rc<RefCell<Tape>>,
    conns: HashMap<String, Checker>,
    /// When `validate` started: the arrival of a frame recorded without `at`.
    now: SystemTime,
}

impl Judge {
    fn new(profile: &Arc<Profile>, engine: Engine) -> Judge {
        let id = profile.correlation.as_deref().unwrap_or("/id");
        Judge {
            profile: Arc::clone(profile),
            engine,
            shape: Arc::new(Shape::new(&profile.discriminator, id)),
            tape: Rc::default(),
            conns: HashMap::new(),
            now: SystemTime::now(),
        }
    }

    /// What one line broke; `Err`: the line is bad input (what to write instead).
    fn line(&mut self, line: &str) -> Result<Vec<Violation>, String> {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return Ok(self.schemas_only(Direction::In, line));
        };
        let r = record(v)?;
        let text = match r.frame {
            Value::String(text) => text,
            frame => frame.to_string(),
        };
        let Some(id) = r.conn else {
            return Ok(self.schemas_only(r.dir, &text));
        };
        let at = r.at.unwrap_or(self.now);
        let checker = self.checker(id)?;
        let verdict = match r.dir {
            Direction::Out => checker.outbound(&text, false).verdict,
            Direction::In => checker.inbound(&text, || at).verdict,
        };
        Ok(match verdict {
            Verdict::Broke(found) => found,
            Verdict::Clean | Verdict::Unchecked => Vec::new(),
        })
    }

    /// The named connection's checker, made on its first frame.
    fn checker(&mut self, id: String) -> Result<&mut Checker, String> {
        if !self.conns.contains_key(&id) && self.conns.len() >= MAX_CONNS {
            return Err(format!(
                "more than {MAX_CONNS} connections in one recording: split it"
            ));
        }
        Ok(self.conns.entry(id).or_insert_with(|| {
            let (shape, tape) = (Arc::clone(&self.shape), Rc::clone(&self.tape));
            let profile = Arc::clone(&self.profile);
            Checker::checking(shape, tape, profile, self.engine, DEFAULT_SKEW)
        }))
    }

    /// A frame on no named connection, judged by its schemas alone: on the tape engine, the
    /// compiled checks first and jsonschema on its `Value` for a frame they reject (as the
    /// [`Checker`] does); on the reference engine, jsonschema only.
    fn schemas_only(&self, dir: Direction, text: &str) -> Vec<Violation> {
        if self.engine == Engine::Tape {
            let mut tape = self.tape.borrow_mut();
            if let Some(doc) = tape.parse(text) {
                let kind = kind_on_tape(text, &doc, self.shape.kind_pointers());
                if self.profile.is_clean(dir, kind.as_deref(), &doc) {
                    return Vec::new();
                }
            }
        }
        self.profile.check_text(dir, text).err().unwrap_or_default()
    }
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

    fn kite() -> Arc<Profile> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/kite");
        Arc::new(Profile::load(&dir).unwrap())
    }

    /// The findings on `lines`, the same by both engines.
    fn on(p: &Arc<Profile>, lines: &[Value]) -> Result<(usize, Vec<Finding>), ValidateError> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let tape = validate_lines(p, Engine::Tape, text.as_bytes());
        let reference = validate_lines(p, Engine::Reference, text.as_bytes());
        assert_eq!(
            format!("{tape:?}"),
            format!("{reference:?}"),
            "the engines disagree"
        );
        tape
    }

    fn run(lines: &[Value]) -> Result<(usize, Vec<Finding>), ValidateError> {
        on(&kite(), lines)
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
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
            Arc::new(Profile::load(&dir.join(name)).unwrap())
        };
        let found = |p: &Arc<Profile>, lines: &[Value]| -> Vec<(usize, String, String)> {
            let (_, found) = on(p, lines).unwrap();
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
