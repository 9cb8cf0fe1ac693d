//! The Kite scenario library (`scenarios/kite/`): every file passes `squall check`, the smoke
//! test runs as written, the others run shortened, all against squall-server with every
//! frame checked; the rate-limit scenario fails when any limit it probes is switched off.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{run_library, verdict, Library};

const PATH: &str = "/kite/ws";

/// Every scenario file of the library, sorted.
fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kite");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

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

/// The names of the thresholds that failed.
fn failed(doc: &Value) -> Vec<String> {
    doc["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pass"] == false)
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect()
}

/// Samples a metric's latency histogram holds.
fn samples(doc: &Value, metric: &str) -> u64 {
    doc["metrics"][metric]["latency"]["count"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn every_scenario_passes_squall_check_and_targets_the_kite_path() {
    let files = files();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "rate-limit.yaml",
        "rpc-mix.yaml",
        "smoke.yaml",
        "soak.yaml",
        "subscribe-storm.yaml",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "squall check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
    let doc = passes_shortened("scenarios/kite/subscribe-storm.yaml", Some(4));
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
    type Tweak = fn(&mut squall_server::Config);
    let cases: [(&str, Tweak, &str); 2] = [
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
    for (name, tweak, expr) in cases {
        let lib = Library {
            file: "scenarios/kite/subscribe-storm.yaml",
            path: PATH,
            duration: Some(Duration::from_secs(2)),
            vus: Some(2),
        };
        let (code, doc) = run_library(lib, tweak);
        assert_eq!(code, 1, "--fault {name}: the run passed: {}", verdict(&doc));
        let failed = failed(&doc);
        assert!(
            failed.iter().any(|f| f == expr),
            "--fault {name}: '{expr}' held; failed {failed:?}"
        );
    }
}

#[test]
fn rpc_mix_passes_shortened() {
    let doc = passes_shortened("scenarios/kite/rpc-mix.yaml", Some(10));
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
fn rate_limit_passes_shortened() {
    let doc = passes_shortened("scenarios/kite/rate-limit.yaml", None);
    let c = &doc["counters"]["connections"];
    assert!(c["closed_by_code"]["1009"].as_u64() > Some(0), "{c}");
    assert!(c["failed_by_cause"]["http_429"].as_u64() > Some(0), "{c}");
}

#[test]
fn rate_limit_fails_when_any_limit_is_off() {
    type Tweak = fn(&mut squall_server::Config);
    // Each limit off, and the threshold that must then fail.
    let cases: [(&str, Tweak, &str); 4] = [
        (
            "rate",
            |c| c.limits.rate = false,
            "latency.rate_reject.p99 < 500ms",
        ),
        (
            "subscriptions",
            |c| c.limits.subscriptions = false,
            "latency.subscription_reject.p99 < 500ms",
        ),
        (
            "per-client",
            |c| c.limits.per_client = false,
            "errors.http_429 >= 1",
        ),
        (
            "message size",
            |c| c.max_message_size = Some(16 << 20),
            "latency.size_reject.p99 < 500ms",
        ),
    ];
    // One after another: run side by side they would starve each other on a 2-core machine.
    for (name, tweak, expr) in cases {
        let lib = Library {
            file: "scenarios/kite/rate-limit.yaml",
            path: PATH,
            duration: Some(Duration::from_secs(2)),
            vus: None,
        };
        let (code, doc) = run_library(lib, tweak);
        assert_eq!(
            code,
            1,
            "{name} limit off: the run passed: {}",
            verdict(&doc)
        );
        let failed = failed(&doc);
        assert!(
            failed.iter().any(|f| f == expr),
            "{name} limit off: '{expr}' held; failed {failed:?}"
        );
        assert_eq!(doc["violations"]["total"], 0, "{name}: {}", verdict(&doc));
    }
}
