//! The Kite scenario library (`scenarios/kite/`): every file passes `squall check`, the smoke
//! test runs as written, the others run shortened, all against squall-server with every
//! frame checked; the rate-limit scenario fails when any limit it probes is switched off.

use std::time::Duration;

use crate::support::{
    assert_fails_on, assert_squall_check, library_files, run_library, verdict, Library,
};
use serde_json::Value;

const PATH: &str = "/kite/ws";

/// Runs `file` shortened (3 s) and asserts it passes with zero violations.
fn passes_shortened(file: &str, vus: Option<u64>) -> Value {
    let lib = Library {
        file,
        path: PATH,
        duration: Some(Duration::from_secs(3)),
        vus,
    };
    let (code, doc) = run_library(lib, |_| {});
    assert_eq!(code, 0, "{file}: {}", verdict(&doc));
    assert_eq!(doc["violations"]["total"], 0, "{file}: {}", verdict(&doc));
    doc
}

/// Samples a metric's latency histogram holds.
fn samples(doc: &Value, metric: &str) -> u64 {
    doc["metrics"][metric]["latency"]["count"]
        .as_u64()
        .unwrap_or(0)
}

/// A server setting that switches something off, and the threshold that must then fail.
type Case = (&'static str, fn(&mut squall_server::Config), &'static str);

/// Runs `file` (2 s, `vus`) once per case, one after another (side by side they would starve
/// each other on a 2-core machine), and asserts each run fails on its threshold.
fn fails_on_each(file: &str, vus: Option<u64>, cases: &[Case]) {
    for &(name, tweak, expr) in cases {
        let lib = Library {
            file,
            path: PATH,
            duration: Some(Duration::from_secs(2)),
            vus,
        };
        assert_fails_on(&format!("{file}, {name}"), run_library(lib, tweak), &[expr]);
    }
}

#[test]
fn every_scenario_passes_squall_check_and_targets_the_kite_path() {
    let files = library_files("kite");
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "capacity.yaml",
        "capacity-pace-reference.yaml",
        "rate-limit-reference.yaml",
        "rpc-mix-reference.yaml",
        "smoke.yaml",
        "soak.yaml",
        "subscribe-storm-reference.yaml",
        "subscribe-storm.yaml",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert_squall_check(&files);
    for f in &files {
        let plan =
            squall::scenario::load_file(f, &squall::scenario::LoadOptions::default()).unwrap();
        assert!(
            plan.target.starts_with("ws://127.0.0.1:8080/kite/ws"),
            "{}: target {}",
            f.display(),
            plan.target
        );
    }
}

#[test]
fn smoke_passes_as_written() {
    let lib = Library {
        file: "scenarios/kite/smoke.yaml",
        path: PATH,
        duration: None,
        vus: None,
    };
    let (code, doc) = run_library(lib, |_| {});
    assert_eq!(code, 0, "{}", verdict(&doc));
    assert_eq!(doc["violations"]["total"], 0);
    assert_eq!(doc["counters"]["errors"], 0, "{}", verdict(&doc));
    // One of every documented exchange, and the events of every room family.
    let kinds = &doc["counters"]["kinds_in"];
    for kind in [
        "welcome",
        "pong",
        "subscribe",
        "unsubscribe",
        "scrape.progress",
        "case.created",
        "validation.complete",
        "search.results",
        "worker.status",
        "queue.update",
        "system.alert",
        "quality.alert",
        "metric.update",
    ] {
        assert!(
            kinds[kind]["frames"].as_u64() > Some(0),
            "no {kind}: {kinds}"
        );
    }
}

#[test]
fn subscribe_storm_passes_shortened() {
    let doc = passes_shortened("scenarios/kite/subscribe-storm-reference.yaml", Some(4));
    // The storm filled every VU to the limit, and the limit + 1 was refused.
    assert!(samples(&doc, "subscribe_ack") >= 200, "{}", verdict(&doc));
    assert!(samples(&doc, "limit_reject") >= 1, "{}", verdict(&doc));
    // Events flowed into every room and were tracked.
    assert!(
        doc["delivery"]["streams"].as_u64() >= Some(150),
        "{}",
        doc["delivery"]
    );
}

#[test]
fn subscribe_storm_fails_when_events_are_dropped_or_duplicated() {
    let cases: [Case; 2] = [
        (
            "drop-events:100",
            |c| c.fault = Some(squall_server::Fault::DropEvents(100)),
            "delivery.gaps == 0",
        ),
        (
            "duplicate-events:100",
            |c| c.fault = Some(squall_server::Fault::DuplicateEvents(100)),
            "delivery.duplicates == 0",
        ),
    ];
    fails_on_each(
        "scenarios/kite/subscribe-storm-reference.yaml",
        Some(2),
        &cases,
    );
}

#[test]
fn rpc_mix_passes_shortened() {
    let doc = passes_shortened("scenarios/kite/rpc-mix-reference.yaml", Some(10));
    for m in ["ping", "subscribe", "unsubscribe", "unknown_type"] {
        assert!(samples(&doc, m) > 0, "no {m}: {}", verdict(&doc));
    }
}

#[test]
fn soak_passes_shortened() {
    let doc = passes_shortened("scenarios/kite/soak.yaml", Some(20));
    // The churners reconnected: more connections than VUs.
    let opened = doc["counters"]["connections"]["opened"].as_u64().unwrap();
    assert!(opened > 20, "opened {opened}: {}", verdict(&doc));
}

#[test]
fn capacity_passes_shortened() {
    // What `squall capacity` drives, run as written at its own 100/s (shortened).
    let doc = passes_shortened("scenarios/kite/capacity.yaml", None);
    assert!(samples(&doc, "rtt") > 100, "{}", verdict(&doc));
}

#[test]
fn capacity_pace_passes_shortened() {
    // The paced load `squall capacity` drives, run as written (50 connections at 2/s each).
    let doc = passes_shortened("scenarios/kite/capacity-pace-reference.yaml", None);
    assert!(samples(&doc, "rtt") > 100, "{}", verdict(&doc));
}

#[test]
fn rate_limit_passes_shortened() {
    let doc = passes_shortened("scenarios/kite/rate-limit-reference.yaml", None);
    let c = &doc["counters"]["connections"];
    assert!(c["closed_by_code"]["1009"].as_u64() > Some(0), "{c}");
    assert!(c["failed_by_cause"]["http_429"].as_u64() > Some(0), "{c}");
}

#[test]
fn rate_limit_fails_when_any_limit_is_off() {
    let cases: [Case; 4] = [
        (
            "--no-limit rate",
            |c| c.limits.rate = false,
            "latency.rate_reject.p99 < 500ms",
        ),
        (
            "--no-limit subscriptions",
            |c| c.limits.subscriptions = false,
            "latency.subscription_reject.p99 < 500ms",
        ),
        (
            "--no-limit per-client",
            |c| c.limits.per_client = false,
            "errors.http_429 >= 1",
        ),
        (
            "--max-message-size 16MiB",
            |c| c.max_message_size = Some(16 << 20),
            "latency.size_reject.p99 < 500ms",
        ),
    ];
    fails_on_each("scenarios/kite/rate-limit-reference.yaml", None, &cases);
}
