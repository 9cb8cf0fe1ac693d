//! The KECS scenario library (`scenarios/kecs/`): every file passes `squall check`, each runs
//! against squall-server with zero violations (smoke as written, the others shortened), and
//! the rate-limit scenario fails when the server runs with a limit switched off, the subscribe
//! storm when the server drops or duplicates events.

use std::path::Path;
use std::time::Duration;

use crate::support::{assert_squall_check, run_library, verdict, Library};
use serde_json::Value;

const DIR: &str = "scenarios/kecs";
const SHORT: Option<Duration> = Some(Duration::from_secs(3));

/// Runs `scenarios/kecs/<file>` (cut to `duration`, scaled to `vus`) against a fresh
/// squall-server tweaked by `tweak`, on the path and token of the file's own `target:`.
fn run(
    file: &str,
    duration: Option<Duration>,
    vus: Option<u64>,
    tweak: impl FnOnce(&mut squall_server::Config),
) -> (u8, Value) {
    let file = format!("{DIR}/{file}");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&file));
    let target = text.unwrap().lines().find_map(|l| {
        let url = l.strip_prefix("target: ws://")?;
        Some(url[url.find('/')?..].to_owned())
    });
    let path = target.expect("a target: line");
    run_library(
        Library {
            file: &file,
            path: &path,
            duration,
            vus,
        },
        tweak,
    )
}

/// The run passed with zero violations, and each of `metrics` (names separated by spaces) was
/// measured.
fn assert_passed(file: &str, (code, doc): &(u8, Value), metrics: &str) {
    assert_eq!(*code, 0, "{file}: {}", verdict(doc));
    assert_eq!(doc["violations"]["total"], 0, "{file}: {}", verdict(doc));
    for m in metrics.split_whitespace() {
        assert!(samples(doc, m) > 0, "{file}: no {m} sample");
    }
}

/// The run failed (exit 1), with threshold `expr` among the reasons.
fn assert_failed_on(what: &str, (code, doc): &(u8, Value), expr: &str) {
    assert_eq!(*code, 1, "{what}: {}", verdict(doc));
    let failed = doc["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["expr"] == expr && t["pass"] == false);
    assert!(failed, "{what}: '{expr}' held; {}", verdict(doc));
}

/// How many samples metric `name` recorded (timeouts included).
fn samples(doc: &Value, name: &str) -> u64 {
    doc["metrics"][name]["latency"]["count"]
        .as_u64()
        .unwrap_or(0)
}

/// Connections the server closed with `code`.
fn closed_with(doc: &Value, code: &str) -> u64 {
    doc["counters"]["connections"]["closed_by_code"][code]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn every_kecs_scenario_passes_squall_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join(DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "rate-limit-reference.yaml",
            "rate-limit.yaml",
            "rpc-mix.yaml",
            "smoke.yaml",
            "soak.yaml",
            "subscribe-storm-reference.yaml",
            "subscribe-storm.yaml"
        ]
    );
    let files: Vec<_> = files.iter().map(|f| root.join(f)).collect();
    assert_squall_check(&files);
}

#[test]
fn smoke_passes_as_written() {
    let run = run("smoke.yaml", None, None, |_| {});
    let metrics = "subscribe_ack execute get_metrics error_reply unsubscribe";
    assert_passed("smoke", &run, metrics);
    let doc = &run.1;
    assert!(doc["counters"]["kinds_in"]["event.task"]["frames"].as_u64() > Some(0));
}

#[test]
fn subscribe_storm_passes_shortened() {
    let run = run("subscribe-storm-reference.yaml", SHORT, Some(4), |_| {});
    assert_passed(
        "subscribe-storm",
        &run,
        "delivery subscription_limit unsubscribe_all",
    );
    let doc = &run.1;
    // Every VU held 50 subscriptions, had the 51st refused, and unsubscribed them all.
    assert_eq!(
        samples(doc, "subscribe_ack"),
        50 * samples(doc, "subscription_limit")
    );
    assert!(samples(doc, "subscription_limit") >= 4, "{}", verdict(doc));
    assert_eq!(
        samples(doc, "unsubscribe_all"),
        samples(doc, "subscription_limit")
    );
    let kinds = &doc["counters"]["kinds_in"];
    for k in [
        "event.task",
        "event.service",
        "event.cluster",
        "event.deployment",
    ] {
        assert!(kinds[k]["frames"].as_u64() > Some(0), "no {k}: {kinds}");
    }
}

/// Each storm VU's delivery of the 50 rooms is checked: a server that loses or repeats
/// events fails the run.
#[test]
fn subscribe_storm_fails_when_events_are_lost_or_repeated() {
    for (fault, threshold) in [
        (squall_server::Fault::DropEvents(200), "delivery.gaps == 0"),
        (
            squall_server::Fault::DuplicateEvents(200),
            "delivery.duplicates == 0",
        ),
    ] {
        let run = run("subscribe-storm-reference.yaml", SHORT, Some(2), |c| {
            c.fault = Some(fault)
        });
        assert_failed_on(&format!("{fault:?}"), &run, threshold);
    }
}

#[test]
fn rpc_mix_passes_shortened() {
    let run = run("rpc-mix.yaml", SHORT, Some(4), |_| {});
    let metrics = "get_metrics execute unknown_command unknown_metric";
    assert_passed("rpc-mix", &run, metrics);
}

#[test]
fn soak_passes_shortened() {
    let run = run("soak.yaml", SHORT, Some(8), |_| {});
    assert_passed("soak", &run, "subscribe_ack get_metrics execute");
    let doc = &run.1;
    let opened = doc["counters"]["connections"]["opened"].as_u64().unwrap();
    assert!(
        opened > 8,
        "reconnects open connections of their own: {opened}"
    );
}

const RATE_LIMIT: &str = "rate-limit-reference.yaml";

#[test]
fn rate_limit_passes_with_every_limit_on() {
    let run = run(RATE_LIMIT, SHORT, None, |_| {});
    let metrics = "polite_rtt rate_warning rate_throttled rate_terminated subscription_rejected \
                   size_rejected";
    assert_passed("rate-limit", &run, metrics);
    let doc = &run.1;
    assert!(closed_with(doc, "1008") > 0, "terminated floods close 1008");
    assert!(
        closed_with(doc, "1009") > 0,
        "oversized messages close 1009"
    );
}

/// The rate-limit scenario against a server with one limit switched off by `tweak`.
fn rate_limit_without(tweak: impl FnOnce(&mut squall_server::Config)) -> (u8, Value) {
    run(RATE_LIMIT, SHORT, None, tweak)
}

#[test]
fn rate_limit_fails_without_the_message_rate_limit() {
    let run = rate_limit_without(|c| c.limits.rate = false);
    assert_failed_on("no rate limit", &run, "latency.rate_warning.p99 < 250ms");
    assert_eq!(closed_with(&run.1, "1008"), 0);
}

#[test]
fn rate_limit_fails_without_the_subscription_limit() {
    let run = rate_limit_without(|c| c.limits.subscriptions = false);
    let expr = "latency.subscription_rejected.p99 < 250ms";
    assert_failed_on("no subscription limit", &run, expr);
}

#[test]
fn rate_limit_fails_without_the_message_size_limit() {
    let run = rate_limit_without(|c| c.max_message_size = Some(16 << 20));
    let expr = "latency.size_rejected.p99 < 250ms";
    assert_failed_on("no size limit", &run, expr);
    assert_eq!(closed_with(&run.1, "1009"), 0);
}
