//! The NewLoom scenario library (`scenarios/newloom/`) against squall-server: every file
//! passes `squall check`; smoke.yaml runs as written, the others shortened; each limit the
//! rate-limit scenarios probe makes them fail once the server stops enforcing it; the chat
//! storm fails when the server drops room frames.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{run_library, verdict, Library};

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
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn smoke_runs_as_written() {
    let (code, doc) = run("smoke.yaml", CHAT, None, None, |_| {});
    assert_pass("smoke.yaml", &(code, doc.clone()));
    assert!(doc["metrics"]["message_echo"]["latency"]["count"].as_u64() > Some(10));
}

#[test]
fn smoke_streams_and_the_streams_storm_pass() {
    let r = run("smoke-streams.yaml", STREAMS, SHORT, Some(4), |_| {});
    assert_pass("smoke-streams.yaml", &r);
    let r = run("subscribe-storm.yaml", STREAMS, SHORT, Some(2), |_| {});
    assert_pass("subscribe-storm.yaml", &r);
}

#[test]
fn chat_storm_and_rpc_mix_pass() {
    let r = run("subscribe-storm-chat.yaml", CHAT, SHORT, Some(4), |_| {});
    assert_pass("subscribe-storm-chat.yaml", &r);
    let r = run("rpc-mix.yaml", CHAT, SHORT, Some(4), |_| {});
    assert_pass("rpc-mix.yaml", &r);
}

#[test]
fn rate_limits_and_soak_pass() {
    let r = run("rate-limit.yaml", CHAT, SHORT, Some(6), |_| {});
    assert_pass("rate-limit.yaml", &r);
    let r = run("rate-limit-streams.yaml", STREAMS, SHORT, Some(3), |_| {});
    assert_pass("rate-limit-streams.yaml", &r);
    let r = run("soak.yaml", CHAT, SHORT, Some(4), |_| {});
    assert_pass("soak.yaml", &r);
}

#[test]
fn rate_limit_fails_without_the_chat_limit() {
    let (code, doc) = run("rate-limit.yaml", CHAT, SHORT, Some(6), |c| {
        c.limits.subscriptions = false;
    });
    assert_eq!(code, 1, "{}", why(&doc));
    // The 101st chat is accepted, so the refusal never comes.
    assert!(
        !threshold_passed(&doc, "latency.first_rejection.p99 < 250ms"),
        "{}",
        why(&doc)
    );
    assert!(errors_of(&doc, "timeout") > 0, "{}", why(&doc));
}

#[test]
fn rate_limit_fails_without_the_message_size_limit() {
    let (code, doc) = run("rate-limit.yaml", CHAT, SHORT, Some(6), |c| {
        c.max_message_size = Some(16 << 20);
    });
    assert_eq!(code, 1, "{}", why(&doc));
    // The chat limit still holds; the oversized frame is no longer closed with 1009.
    assert!(
        threshold_passed(&doc, "latency.first_rejection.p99 < 250ms"),
        "{}",
        why(&doc)
    );
    assert!(errors_of(&doc, "timeout") > 0, "{}", why(&doc));
}

#[test]
fn rate_limit_streams_fails_without_the_stream_limit() {
    let (code, doc) = run("rate-limit-streams.yaml", STREAMS, SHORT, Some(3), |c| {
        c.limits.subscriptions = false;
    });
    assert_eq!(code, 1, "{}", why(&doc));
    assert!(errors_of(&doc, "timeout") > 0, "{}", why(&doc));
}

#[test]
fn chat_storm_fails_when_the_server_drops_frames() {
    // Every 7th room frame is lost: some joins and posts never come back to their sender.
    let (code, doc) = run("subscribe-storm-chat.yaml", CHAT, SHORT, Some(4), |c| {
        c.fault = Some(squall_server::Fault::DropEvents(7));
    });
    assert_eq!(code, 1, "{}", why(&doc));
    assert!(errors_of(&doc, "timeout") > 0, "{}", why(&doc));
}
