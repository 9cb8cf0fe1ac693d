//! The NewLoom scenario library (`scenarios/newloom/`) against squall-server: every file
//! passes `squall check`; smoke.yaml runs as written, the others shortened; each limit the
//! rate-limit scenarios probe makes them fail once the server stops enforcing it; the chat
//! storm fails when the server drops room frames.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{assert_squall_check, run_library, verdict, Library};
use serde_json::Value;

const CHAT: &str = "/newloom/ws/chat/?token=squall";
const STREAMS: &str = "/newloom/ws/streams/?token=squall";
const SHORT: Option<Duration> = Some(Duration::from_secs(3));

fn library_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/newloom");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Runs `file` on `path` (shortened to `duration`, scaled to `vus`) against a server set up
/// by `tweak`.
fn run(
    file: &str,
    path: &str,
    duration: Option<Duration>,
    vus: Option<u64>,
    tweak: impl FnOnce(&mut squall_server::Config),
) -> (u8, Value) {
    let file = format!("scenarios/newloom/{file}");
    let lib = Library {
        file: &file,
        path,
        duration,
        vus,
    };
    run_library(lib, tweak)
}

/// A passing run: exit 0, frames checked, no violation, no error.
fn assert_pass(file: &str, (code, doc): &(u8, Value)) {
    assert_eq!(*code, 0, "{file}: {}", why(doc));
    assert!(
        doc["violations"]["checked"].as_u64() > Some(0),
        "{file}: nothing was checked"
    );
    assert_eq!(doc["violations"]["total"], 0, "{file}: {}", why(doc));
    assert_eq!(doc["counters"]["errors"], 0, "{file}: {}", why(doc));
}

/// The failed thresholds and violations, with the errors by kind (results.json keeps them
/// under `counters`).
fn why(doc: &Value) -> String {
    let errors = &doc["counters"]["errors_by_kind"];
    format!("{}; errors by kind {errors}", verdict(doc))
}

/// The named threshold's outcome.
fn threshold_passed(doc: &Value, expr: &str) -> bool {
    let all = doc["thresholds"].as_array().expect("thresholds");
    let t = all.iter().find(|t| t["expr"] == expr);
    t.unwrap_or_else(|| panic!("no threshold {expr}"))["pass"] == true
}

fn errors_of(doc: &Value, kind: &str) -> u64 {
    doc["counters"]["errors_by_kind"][kind]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn every_scenario_passes_check() {
    let files = library_files();
    assert!(files.len() >= 8, "{files:?}");
    assert_squall_check(&files);
}

#[test]
fn smoke_runs_as_written() {
    let (code, doc) = run("smoke.yaml", CHAT, None, None, |_| {});
    assert_pass("smoke.yaml", &(code, doc.clone()));
    assert!(doc["metrics"]["message_echo"]["latency"]["count"].as_u64() > Some(10));
}

/// Runs each `(file, path, vus)` shortened against a default server; each must pass.
fn all_pass_shortened(runs: &[(&str, &str, u64)]) {
    for &(file, path, vus) in runs {
        let r = run(file, path, SHORT, Some(vus), |_| {});
        assert_pass(file, &r);
    }
}

/// Runs `file` shortened against a server set up by `tweak` (a limit off, a fault on): it
/// must fail (exit 1), with timeouts among its errors. Returns results.json.
fn fails_with_timeouts(
    file: &str,
    path: &str,
    vus: u64,
    tweak: impl FnOnce(&mut squall_server::Config),
) -> Value {
    let (code, doc) = run(file, path, SHORT, Some(vus), tweak);
    assert_eq!(code, 1, "{file}: {}", why(&doc));
    assert!(errors_of(&doc, "timeout") > 0, "{file}: {}", why(&doc));
    doc
}

#[test]
fn smoke_streams_and_the_streams_storm_pass() {
    all_pass_shortened(&[
        ("smoke-streams.yaml", STREAMS, 4),
        ("subscribe-storm-reference.yaml", STREAMS, 2),
    ]);
}

#[test]
fn chat_storm_and_rpc_mix_pass() {
    all_pass_shortened(&[
        ("subscribe-storm-chat-reference.yaml", CHAT, 4),
        ("rpc-mix-reference.yaml", CHAT, 4),
    ]);
}

#[test]
fn rate_limits_and_soak_pass() {
    all_pass_shortened(&[
        ("rate-limit-reference.yaml", CHAT, 6),
        ("rate-limit-streams-reference.yaml", STREAMS, 3),
        ("soak.yaml", CHAT, 4),
    ]);
}

const FIRST_REJECTION: &str = "latency.first_rejection.p99 < 250ms";

#[test]
fn rate_limit_fails_without_the_chat_limit() {
    let doc = fails_with_timeouts("rate-limit-reference.yaml", CHAT, 6, |c| {
        c.limits.subscriptions = false;
    });
    // The 101st chat is accepted, so the refusal never comes.
    assert!(!threshold_passed(&doc, FIRST_REJECTION), "{}", why(&doc));
}

#[test]
fn rate_limit_fails_without_the_message_size_limit() {
    let doc = fails_with_timeouts("rate-limit-reference.yaml", CHAT, 6, |c| {
        c.max_message_size = Some(16 << 20);
    });
    // The chat limit still holds; the oversized frame is no longer closed with 1009.
    assert!(threshold_passed(&doc, FIRST_REJECTION), "{}", why(&doc));
}

#[test]
fn rate_limit_streams_fails_without_the_stream_limit() {
    // 101 streams are admitted, so no connection_error and no close 1008 come.
    fails_with_timeouts("rate-limit-streams-reference.yaml", STREAMS, 3, |c| {
        c.limits.subscriptions = false;
    });
}

#[test]
fn chat_storm_fails_when_the_server_drops_frames() {
    // Every 7th room frame is lost: some joins and posts never come back to their sender.
    fails_with_timeouts("subscribe-storm-chat-reference.yaml", CHAT, 4, |c| {
        c.fault = Some(squall_server::Fault::DropEvents(7));
    });
}

#[test]
fn streams_storm_fails_when_the_server_drops_or_duplicates_events() {
    let file = "subscribe-storm-reference.yaml";
    let dropping = run(file, STREAMS, SHORT, Some(2), |c| {
        c.fault = Some(squall_server::Fault::DropEvents(7));
    });
    assert_eq!(dropping.0, 1, "{}", why(&dropping.1));
    assert!(!threshold_passed(&dropping.1, "delivery.gaps == 0"));
    let doubling = run(file, STREAMS, SHORT, Some(2), |c| {
        c.fault = Some(squall_server::Fault::DuplicateEvents(7));
    });
    assert_eq!(doubling.0, 1, "{}", why(&doubling.1));
    assert!(!threshold_passed(&doubling.1, "delivery.duplicates == 0"));
}
