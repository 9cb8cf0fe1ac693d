//! The CovetPy scenario library (`scenarios/covetpy/`): every file passes `squall check`, each
//! scenario passes against squall-server (smoke as written, the others shortened), and the
//! rate-limit scenario fails when the server runs with a limit switched off.

use std::time::Duration;

use crate::support::{
    assert_fails_on, assert_squall_check, library_files, run_library, verdict, Library,
};
use serde_json::Value;

/// The scenarios' own path and credential (any non-empty token is accepted).
const PATH: &str = "/covetpy/ws?token=squall-test";

fn shortened(file: &'static str, vus: u64) -> Library<'static> {
    Library {
        file,
        path: PATH,
        duration: Some(Duration::from_secs(3)),
        vus: Some(vus),
    }
}

/// Asserts a passing run: exit 0, no violation.
fn assert_passes(file: &str, (code, doc): (u8, Value)) {
    assert_eq!(code, 0, "{file}: {}", verdict(&doc));
    assert_eq!(doc["violations"]["total"], 0, "{file}: {}", verdict(&doc));
}

#[test]
fn every_covetpy_scenario_passes_check() {
    let files = library_files("covetpy");
    assert!(files.len() >= 5, "{files:?}");
    assert_squall_check(&files);
}

#[test]
fn smoke_passes_as_written() {
    let file = "scenarios/covetpy/smoke-reference.yaml";
    let lib = Library {
        file,
        path: PATH,
        duration: None,
        vus: None,
    };
    assert_passes(file, run_library(lib, |_| {}));
}

#[test]
fn rpc_mix_passes_shortened() {
    let file = "scenarios/covetpy/rpc-mix-reference.yaml";
    assert_passes(file, run_library(shortened(file, 4), |_| {}));
}

#[test]
fn subscribe_storm_passes_shortened() {
    let file = "scenarios/covetpy/subscribe-storm-reference.yaml";
    assert_passes(file, run_library(shortened(file, 4), |_| {}));
}

#[test]
fn subscribe_storm_fails_when_the_server_drops_or_duplicates_events() {
    let file = "scenarios/covetpy/subscribe-storm-reference.yaml";
    let dropping = run_library(shortened(file, 4), |c| {
        c.fault = Some(squall_server::Fault::DropEvents(7))
    });
    assert_fails_on("dropped events", dropping, &["delivery.gaps == 0"]);
    let doubling = run_library(shortened(file, 4), |c| {
        c.fault = Some(squall_server::Fault::DuplicateEvents(7))
    });
    assert_fails_on("duplicated events", doubling, &["delivery.duplicates == 0"]);
}

#[test]
fn soak_passes_shortened() {
    let file = "scenarios/covetpy/soak.yaml";
    assert_passes(file, run_library(shortened(file, 8), |_| {}));
}

const RATE_LIMIT: &str = "scenarios/covetpy/rate-limit-reference.yaml";

#[test]
fn rate_limit_passes_shortened() {
    assert_passes(RATE_LIMIT, run_library(shortened(RATE_LIMIT, 6), |_| {}));
}

#[test]
fn rate_limit_fails_without_the_rate_limits() {
    let run = run_library(shortened(RATE_LIMIT, 6), |c| c.limits.rate = false);
    let expected = [
        "latency.message_refusal.p99 < 100ms",
        "latency.rpc_refusal.p99 < 100ms",
        "errors.rate == 0",
    ];
    assert_fails_on("--no-limit rate", run, &expected);
}

#[test]
fn rate_limit_fails_without_the_subscription_limit() {
    let run = run_library(shortened(RATE_LIMIT, 6), |c| c.limits.subscriptions = false);
    let expected = [
        "latency.room_refusal.p99 < 100ms",
        "latency.stream_refusal.p99 < 100ms",
        "errors.rate == 0",
    ];
    assert_fails_on("--no-limit subscriptions", run, &expected);
}

#[test]
fn rate_limit_fails_without_the_message_size_limit() {
    let (code, doc) = run_library(shortened(RATE_LIMIT, 6), |c| {
        c.max_message_size = Some(4 << 20)
    });
    // The 1.1 MiB message is not refused: no close 1009, and its expect_close times out.
    let counters = &doc["counters"];
    assert!(
        counters["connections"]["closed_by_code"]["1009"].is_null(),
        "{counters}"
    );
    assert!(
        counters["errors_by_kind"]["timeout"].as_u64().unwrap_or(0) > 0,
        "{}",
        verdict(&doc)
    );
    assert_fails_on(
        "--max-message-size 4MiB",
        (code, doc),
        &["errors.rate == 0"],
    );
}
