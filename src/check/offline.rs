//! `squall validate`: recorded frames (JSON lines) checked against a profile, offline.
//!
//! Each line is a frame, or `{"dir": "in"|"out", "frame": ...}` where `frame` is the frame's
//! JSON, or a string holding its raw text. Bare frames count as inbound.

use std::io::BufRead;

use serde_json::Value;

use crate::protocol::{Direction, Profile, Violation};

/// A violation found on one line (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The line of the input.
    pub line: usize,
    /// What was wrong.
    pub violation: Violation,
}

/// Checks every line of `input`; returns how many frames were read and what failed.
pub fn validate_lines(
    profile: &Profile,
    input: impl BufRead,
) -> std::io::Result<(usize, Vec<Finding>)> {
    let mut frames = 0;
    let mut findings = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        frames += 1;
        let result = match serde_json::from_str::<Value>(&line) {
            Ok(v) => check_value(profile, v),
            Err(_) => profile.check_text(Direction::In, &line),
        };
        if let Err(vs) = result {
            findings.extend(vs.into_iter().map(|violation| Finding {
                line: i + 1,
                violation,
            }));
        }
    }
    Ok((frames, findings))
}

fn check_value(profile: &Profile, v: Value) -> Result<(), Vec<Violation>> {
    let wrapped = v.as_object().filter(|o| {
        o.len() == 2
            && o.contains_key("frame")
            && matches!(o.get("dir").and_then(Value::as_str), Some("in" | "out"))
    });
    let Some(o) = wrapped else {
        return profile.check(Direction::In, &v);
    };
    let dir = match o.get("dir").and_then(Value::as_str) {
        Some("out") => Direction::Out,
        _ => Direction::In, // the filter above let only "in" and "out" through
    };
    match &o["frame"] {
        Value::String(text) => profile.check_text(dir, text),
        frame => profile.check(dir, frame),
    }
}
