//! The Hexabase scenario library (`scenarios/hexabase/`) against squall-server: every file
//! loads, each runs clean (smoke as written, the others shortened), the rate-limit scenario
//! fails when the server's limits are switched off, and the storm fails when the server
//! drops or duplicates events.

use std::time::Duration;

use crate::support::{assert_squall_check, run_library, verdict, Library};
use serde_json::Value;

const PATH: &str = "/hexabase/ws";
const FILES: [&str; 5] = [
    "scenarios/hexabase/smoke.yaml",
    "scenarios/hexabase/subscribe-storm-reference.yaml",
    "scenarios/hexabase/rpc-mix.yaml",
    "scenarios/hexabase/rate-limit.yaml",
    "scenarios/hexabase/soak.yaml",
];

/// The CI's shortened run of a library file: 3 s at `vus` VUs.
fn short(file: &str, vus: u64) -> Library<'_> {
    Library {
        file,
        path: PATH,
        duration: Some(Duration::from_secs(3)),
        vus: Some(vus),
    }
}

/// Asserts a clean pass: exit 0, no violation, and a sample in every named metric.
fn assert_pass(file: &str, (code, doc): (u8, Value), metrics: &[&str]) {
    assert_eq!(code, 0, "{file}: {}", verdict(&doc));
    assert_eq!(doc["violations"]["total"], 0, "{file}: {}", verdict(&doc));
    for m in metrics {
        let n = doc["metrics"][m]["latency"]["count"].as_u64().unwrap_or(0);
        assert!(n > 0, "{file}: no sample of {m}: {}", verdict(&doc));
    }
}

/// The CI's shortened run of a library file passes, with samples in `metrics`.
fn passes_shortened(file: &str, vus: u64, metrics: &[&str]) {
    assert_pass(file, run_library(short(file, vus), |_| {}), metrics);
}

/// Runs `lib` against a server changed by `tweak` and asserts the run fails (exit 1) on
/// `threshold`; returns every failed threshold, as written.
fn assert_fails(
    lib: Library<'_>,
    tweak: impl FnOnce(&mut squall_server::Config),
    threshold: &str,
) -> Vec<String> {
    let (code, doc) = run_library(lib, tweak);
    assert_eq!(code, 1, "{threshold}: {}", verdict(&doc));
    let failed: Vec<String> = doc["thresholds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["pass"] == false)
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(failed.iter().any(|t| t == threshold), "{failed:?}");
    failed
}

#[test]
fn every_file_passes_check() {
    assert_squall_check(&FILES);
}

#[test]
fn smoke_runs_as_written() {
    let file = FILES[0];
    let lib = Library {
        file,
        path: PATH,
        duration: None,
        vus: None,
    };
    let metrics = [
        "auth_required",
        "auth",
        "subscribe_ack",
        "workspace_status",
        "first_log_line",
    ];
    assert_pass(file, run_library(lib, |_| {}), &metrics);
}

#[test]
fn subscribe_storm_runs_shortened() {
    let file = FILES[1];
    let (code, doc) = run_library(short(file, 4), |_| {});
    // Every VU's 101st subscribe was refused with the documented error.
    let refused = doc["metrics"]["limit_rejection"]["latency"]["count"].as_u64();
    let acks = doc["metrics"]["subscribe_ack"]["latency"]["count"].as_u64();
    assert_eq!(acks, refused.map(|n| n * 100), "{}", verdict(&doc));
    assert!(
        doc["delivery"]["received"].as_u64() > Some(0),
        "{}",
        verdict(&doc)
    );
    assert_pass(file, (code, doc), &["limit_rejection", "resubscribe_ack"]);
}

#[test]
fn subscribe_storm_fails_when_events_are_dropped_or_duplicated() {
    let file = FILES[1];
    let faults = [
        (squall_server::Fault::DropEvents(50), "delivery.gaps == 0"),
        (
            squall_server::Fault::DuplicateEvents(50),
            "delivery.duplicates == 0",
        ),
    ];
    for (fault, threshold) in faults {
        assert_fails(short(file, 2), |c| c.fault = Some(fault), threshold);
    }
}

#[test]
fn rpc_mix_runs_shortened() {
    let per_method = ["get_workspace_status", "stream_logs", "stop_stream"];
    let errors = ["unknown_command", "stop_unknown_stream"];
    passes_shortened(FILES[2], 6, &[&per_method[..], &errors[..]].concat());
}

#[test]
fn soak_runs_shortened() {
    passes_shortened(FILES[4], 10, &["auth", "subscribe_ack", "workspace_status"]);
}

/// Six VUs: with the file's seed, their first iterations pick each behaviour at least once.
const LIMIT_VUS: u64 = 6;

#[test]
fn rate_limit_runs_shortened() {
    let rejections = ["first_subscription_rejection", "first_size_rejection"];
    passes_shortened(
        FILES[3],
        LIMIT_VUS,
        &[&rejections[..], &["good_rtt"]].concat(),
    );
}

#[test]
fn rate_limit_fails_without_the_subscription_limit() {
    let lib = short(FILES[3], LIMIT_VUS);
    let tweak = |c: &mut squall_server::Config| c.limits.subscriptions = false;
    let failed = assert_fails(
        lib,
        tweak,
        "latency.first_subscription_rejection.p99 < 250ms",
    );
    assert!(!failed.iter().any(|t| t.contains("size")), "{failed:?}");
}

#[test]
fn rate_limit_fails_without_the_message_size_limit() {
    let lib = short(FILES[3], LIMIT_VUS);
    let tweak = |c: &mut squall_server::Config| c.max_message_size = Some(2 * 1024 * 1024);
    let failed = assert_fails(lib, tweak, "latency.first_size_rejection.p99 < 250ms");
    let other = failed.iter().any(|t| t.contains("subscription"));
    assert!(!other, "{failed:?}");
}
