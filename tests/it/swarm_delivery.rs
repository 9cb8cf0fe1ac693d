//! Fan-out delivery tracking against scripted servers: a stream with gaps, a late frame, a
//! duplicate, a second room joined mid-stream and frames that are not tracked give exact
//! counts; a clean stream gives zeros and 100% completeness; thresholds decide the exit code.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::SystemTime;

use crate::support::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn now_us() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

/// Sends `frames` (an event per `(room, seq)`, stamped now), then `end`, then reads until
/// the client closes.
fn stream_server(frames: &'static [(&'static str, u64)], extra: bool) -> TestServer {
    TestServer::start(move |mut ws: Conn, sent: Arc<AtomicU64>| async move {
        for (room, seq) in frames {
            let ev = json!({"type": "event", "room": room, "seq": seq, "timestamp": now_us()});
            if !send(&mut ws, &sent, ev.to_string()).await {
                return;
            }
        }
        if extra {
            for noise in [
                json!({"type": "ack", "room": "a"}),
                json!({"type": "other", "room": "a", "seq": 1}),
                json!({"type": "event", "room": "a", "seq": "x"}),
                json!({"type": "event", "seq": 3}),
            ] {
                send(&mut ws, &sent, noise.to_string()).await;
            }
        }
        send(&mut ws, &sent, json!({"type": "end"}).to_string()).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
}

/// One arrival: one connection, so the counts are exactly the script's.
const SCENARIO: &str = r#"
name: fanout
target: ws://127.0.0.1:1/ws
load: { rate: 10/s, duration: 100ms, max_vus: 1 }
delivery: { seq: /seq, sent_at: /timestamp, key: /room, kinds: [event] }
behaviours:
  - steps:
      - expect: { kind: end, within: 3s }
      - close: 1000
thresholds:
  - "delivery.received == 11"
  - "delivery.gaps == 0"
  - "delivery.reordered == 0"
  - "delivery.duplicates == 0"
  - "delivery.completeness >= 99.9%"
  - "latency.delivery.p99 < 5s"
"#;

/// Room a: 4 arrives after 5 (late, fills its gap), 6 twice, 7 and 8 never; room b is joined
/// at 7 (not a gap).
const ROUGH: &[(&str, u64)] = &[
    ("a", 1),
    ("a", 2),
    ("a", 3),
    ("a", 5),
    ("b", 7),
    ("a", 4),
    ("a", 6),
    ("b", 8),
    ("a", 6),
    ("a", 9),
    ("b", 9),
    ("a", 10),
];

#[test]
fn gaps_reorders_and_duplicates_are_counted_exactly() {
    let (done, doc) = run_on(&stream_server(ROUGH, true), SCENARIO);
    let d = &doc["delivery"];
    assert_eq!(d["received"], 11, "{d}");
    assert_eq!(d["gaps"], 2, "{d}");
    assert_eq!(d["reordered"], 1, "{d}");
    assert_eq!(d["duplicates"], 1, "{d}");
    assert_eq!(d["streams"], 2, "{d}");
    // A string sequence number and an event without a room cannot be tracked.
    assert_eq!(d["untracked"], 2, "{d}");
    assert_eq!(d["metric"], "delivery");
    let c = d["completeness"].as_f64().unwrap();
    assert!((c - 11.0 / 13.0).abs() < 1e-9, "{c}");
    // Every first receipt with a send time is timed; the duplicate is not.
    let lat = &doc["metrics"]["delivery"]["latency"];
    assert_eq!(lat["count"], 11);
    assert!(lat["max"].as_u64().unwrap() < 5_000_000, "{lat}");
    // The counters fail their thresholds; received and latency pass.
    let pass: Vec<bool> = done.results.thresholds.iter().map(|t| t.pass).collect();
    assert_eq!(pass, vec![true, false, false, false, false, true]);
    assert_eq!(done.exit_code(), 1);
    let text = squall::report::render_summary(&done.results);
    assert!(
        text.contains("delivery 11 received")
            && text.contains("gaps 2   reordered 1   duplicates 1"),
        "{text}"
    );
}

const CLEAN: &[(&str, u64)] = &[
    ("a", 41),
    ("b", 1),
    ("a", 42),
    ("a", 43),
    ("b", 2),
    ("a", 44),
    ("b", 3),
    ("a", 45),
    ("b", 4),
    ("a", 46),
    ("a", 47),
];

#[test]
fn a_clean_stream_passes_with_full_completeness() {
    let (done, doc) = run_on(&stream_server(CLEAN, false), SCENARIO);
    let d = &doc["delivery"];
    assert_eq!(
        (
            &d["received"],
            &d["gaps"],
            &d["reordered"],
            &d["duplicates"],
            &d["untracked"]
        ),
        (&json!(11), &json!(0), &json!(0), &json!(0), &json!(0)),
        "{d}"
    );
    assert_eq!(d["completeness"], 1.0);
    assert!(
        done.results.thresholds.iter().all(|t| t.pass),
        "{:#?}",
        done.results.thresholds
    );
    assert_eq!(done.exit_code(), 0);
}

#[test]
fn delivery_thresholds_fail_when_nothing_was_tracked() {
    let (done, doc) = run_on(&stream_server(&[], false), SCENARIO);
    assert_eq!(doc["delivery"]["received"], 0);
    assert_eq!(doc["delivery"]["completeness"], Value::Null);
    let t = &done.results.thresholds;
    // `received == 11` fails on its value; the others cannot pass vacuously.
    assert!(t.iter().all(|t| !t.pass), "{t:#?}");
    assert!(
        t[1].message.contains("no delivery frames were tracked"),
        "{}",
        t[1].message
    );
    assert_eq!(done.exit_code(), 1);
}

/// A counter that jumps across the whole u64 range and back: 0, 2^64-1, then 5, 6.
const WRAPPING: &[(&str, u64)] = &[("a", 0), ("a", u64::MAX), ("a", 5), ("a", 6)];

#[test]
fn a_sequence_jump_from_the_wire_is_a_reset_not_2_pow_64_gaps() {
    let (_, doc) = run_on(&stream_server(WRAPPING, false), SCENARIO);
    let d = &doc["delivery"];
    // 0 -> 2^64-1 and 2^64-1 -> 5 each start the stream over; 6 follows 5.
    assert_eq!(
        (&d["received"], &d["gaps"], &d["reordered"], &d["resets"]),
        (&json!(4), &json!(0), &json!(0), &json!(2)),
        "{d}"
    );
    let c = d["completeness"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&c), "completeness {c}");
}
