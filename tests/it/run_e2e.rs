//! End to end against squall-server on 127.0.0.1:0: a real run counts every frame the
//! server sent, writes schema-valid results, and ends with the right status.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::*;
use squall::report::Status;
use squall::run::{execute, RunArgs};

const FIFTY: &str = r#"
name: e2e-fifty
target: ws://127.0.0.1:1/ws
seed: 3
graceful_stop: 5s
load:
  phases:
    - { ramp: 1s, vus: 50 }
    - { hold: 2s }
behaviours:
  - name: chatty
    weight: 2
    steps:
      - expect: { kind: welcome, within: 2s, metric: welcome }
      - send: { type: subscribe, room: "scrape:all" }
      - expect: { kind: subscribe, match: { /data/room: "{{sent./room}}" }, within: 2s, metric: subscribe_ack }
      - pace: { send: { type: ping, id: "{{seq}}" }, rate: 50/s, duration: 1s, in_flight: 4, reply: { kind: pong }, metric: rtt }
      - listen: 300ms
  - name: quiet
    weight: 1
    steps:
      - expect: { kind: welcome, within: 2s }
      - think: 100ms..300ms
      - burst: { send: { type: ping, id: "{{seq}}" }, count: 20 }
      - listen: 200ms
thresholds:
  - "latency.rtt.p99 < 1s"
  - "errors.count == 0"
"#;

fn args(scenario: PathBuf, out: PathBuf, target: String) -> RunArgs {
    RunArgs {
        scenario,
        out: Some(out),
        target: Some(target),
        quiet: true,
        threads: Some(2),
        ..RunArgs::default()
    }
}

fn server(events: f64) -> squall_server::ServerHandle {
    reference_server(|c| c.events_per_sec = events)
}

#[test]
fn fifty_vus_count_exactly_what_the_server_sent() {
    let srv = server(50.0);
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "fifty.yaml", FIFTY);
    let out = dir.path().join("out");
    let url = format!("ws://{}/ws", srv.addr());
    let done = execute(args(sc, out.clone(), url)).unwrap();
    assert_eq!(
        done.exit_code(),
        0,
        "thresholds: {:#?}",
        done.results.thresholds
    );
    assert_eq!(done.results.status, Status::Complete);
    wait_until(
        "server connections to close",
        Duration::from_secs(5),
        || srv.stats().connections_active == 0,
    );
    let stats = srv.stats();
    let doc = results(&out);
    assert_schema_valid(&doc);
    let c = &doc["counters"];
    assert_eq!(
        c["frames_in"].as_u64().unwrap(),
        stats.frames_out,
        "frames in vs server out"
    );
    assert_eq!(
        c["frames_out"].as_u64().unwrap(),
        stats.frames_in,
        "frames out vs server in"
    );
    assert_eq!(
        c["bytes_in"].as_u64().unwrap(),
        stats.bytes_out,
        "bytes in vs server out"
    );
    assert_eq!(
        c["connections"]["opened"].as_u64().unwrap(),
        stats.connections_opened
    );
    assert_eq!(doc["load"]["peak_vus"], 50);
    // Events were flowing and were counted by kind, beside the replies.
    let kinds = c["kinds_in"].as_object().unwrap();
    assert!(kinds.keys().any(|k| k.starts_with("scrape.")), "{kinds:?}");
    assert!(kinds["pong"]["frames"].as_u64().unwrap() > 1000);
    assert!(doc["metrics"]["rtt"]["latency"]["count"].as_u64().unwrap() > 1000);
    assert!(!doc["series"].as_array().unwrap().is_empty());
    srv.shutdown();
}

#[test]
fn a_threshold_that_cannot_hold_fails_the_run() {
    let srv = server(0.0);
    let dir = tempfile::tempdir().unwrap();
    let text = FIFTY
        .replace("vus: 50", "vus: 5")
        .replace("latency.rtt.p99 < 1s", "latency.rtt.p99 < 1us");
    let sc = scenario(dir.path(), "strict.yaml", &text);
    let out = dir.path().join("out");
    let done = execute(args(sc, out.clone(), format!("ws://{}/ws", srv.addr()))).unwrap();
    assert_eq!(done.exit_code(), 1);
    let failed: Vec<_> = done.results.thresholds.iter().filter(|t| !t.pass).collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0].expr, "latency.rtt.p99 < 1us");
    assert_eq!(results(&out)["thresholds"][0]["pass"], false);
    srv.shutdown();
}

#[test]
fn stopping_the_server_mid_run_aborts_with_a_valid_file() {
    let srv = server(20.0);
    let dir = tempfile::tempdir().unwrap();
    let text = FIFTY
        .replace("vus: 50", "vus: 20")
        .replace("hold: 2s", "hold: 30s");
    let sc = scenario(dir.path(), "long.yaml", &text);
    let out = dir.path().join("out");
    let a = args(sc, out.clone(), format!("ws://{}/ws", srv.addr()));
    let run = std::thread::spawn(move || execute(a).unwrap());
    wait_until("20 open connections", Duration::from_secs(10), || {
        srv.stats().connections_active >= 20
    });
    srv.kill();
    let done = run.join().unwrap();
    assert_eq!(done.results.status, Status::Aborted);
    assert_eq!(done.exit_code(), 3);
    assert!(
        done.results.meta.duration_s < 20.0,
        "not aborted early enough"
    );
    let doc = results(&out);
    assert_schema_valid(&doc);
    assert_eq!(doc["status"], "aborted");
    assert!(doc["status_reason"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
    // Every connection the kill dropped is counted as closed without a close frame.
    let closed = &doc["counters"]["connections"];
    assert!(
        closed["closed_by_code"]["none"].as_u64().unwrap() >= 20,
        "{closed}"
    );
    assert_eq!(closed["opened"], closed["closed"]);
    assert!(
        closed["failed_by_cause"]["refused"].as_u64().unwrap() > 0,
        "{closed}"
    );
}

#[test]
fn an_upgrade_refused_with_429_is_counted_by_status() {
    let srv = reference_server(|c| c.max_connections = 3);
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
name: crowd
target: ws://127.0.0.1:1/ws
load: { vus: 6, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - listen: 2s
"#;
    let sc = scenario(dir.path(), "crowd.yaml", text);
    let out = dir.path().join("out");
    let done = execute(args(sc, out.clone(), format!("ws://{}/ws", srv.addr()))).unwrap();
    assert_eq!(done.results.status, Status::Complete);
    let doc = results(&out);
    let c = &doc["counters"];
    assert!(
        c["connections"]["failed_by_cause"]["http_429"]
            .as_u64()
            .unwrap()
            >= 3,
        "{c}"
    );
    assert!(
        c["errors_by_kind"]["http_429"].as_u64().unwrap() >= 3,
        "{c}"
    );
    assert_eq!(c["connections"]["opened"], 3);
    // A refused VU pauses (500 ms) before it tries again: 3 of them over ~1 s, not a spin.
    assert!(
        c["connections"]["failed"].as_u64().unwrap() <= 12,
        "a refused VU retried in a tight loop: {c}"
    );
    srv.shutdown();
}

#[test]
fn open_model_starts_arrivals_on_schedule_and_counts_what_could_not_start() {
    let srv = server(0.0);
    let dir = tempfile::tempdir().unwrap();
    // 40 arrivals over 2 s; each holds its slot ~400 ms, so 2 slots cannot take them all.
    let text = r#"
name: open
target: ws://127.0.0.1:1/ws
load: { model: open, max_vus: 2, rate: 20/s, duration: 2s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s, metric: welcome }
      - think: 400ms
"#;
    let sc = scenario(dir.path(), "open.yaml", text);
    let out = dir.path().join("out");
    let done = execute(args(sc, out.clone(), format!("ws://{}/ws", srv.addr()))).unwrap();
    assert_eq!(done.results.status, Status::Complete);
    let r = &done.results;
    let started = r.load.iterations_ok + r.load.iterations_failed;
    assert_eq!(
        started + r.counters.missed,
        40,
        "every arrival starts or is counted missed"
    );
    assert!(
        (6..=14).contains(&started),
        "2 slots × 2 s / 0.4 s ≈ 10, got {started}"
    );
    assert!(r.load.peak_vus <= 2);
    // Only arrivals that started count toward the rate reached: ~5/s of the 20/s asked.
    let reached = r
        .load
        .peak_arrival_rate
        .expect("an open model reports its rate");
    assert!(reached > 0.0 && reached < 15.0, "{reached}");
    srv.shutdown();
}

#[test]
fn expect_close_then_reconnect_and_choose() {
    let srv = server(0.0);
    let dir = tempfile::tempdir().unwrap();
    // The Kite server closes with 1009 on a message over 512 KiB; the VU then reconnects.
    let text = r#"
name: close-reconnect
target: ws://127.0.0.1:1/ws
load: { vus: 2, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - choose:
          - { weight: 1, steps: [ { send: { type: ping, id: 1 } } ] }
          - { weight: 1, steps: [ { send: { type: ping, id: 2 } } ] }
      - expect: { kind: pong, within: 2s, capture: { got: /id } }
      - send_binary: { size: 600KiB }
      - expect_close: { code: 1009, within: 2s }
      - reconnect: { initial: 10ms, max_tries: 3 }
      - expect: { kind: welcome, within: 2s, metric: rewelcome }
      - send: { type: ping, id: "{{got}}" }
      - expect: { kind: pong, id: "{{got}}", within: 2s }
thresholds:
  - "errors.count == 0"
"#;
    let sc = scenario(dir.path(), "cr.yaml", text);
    let out = dir.path().join("out");
    let done = execute(args(sc, out.clone(), format!("ws://{}/ws", srv.addr()))).unwrap();
    assert_eq!(done.exit_code(), 0, "{:#?}", done.results.counters);
    let c = &done.results.counters;
    let iterations = done.results.load.iterations_ok;
    assert!(iterations >= 2);
    assert_eq!(
        c.connections.closed_by_code.get("1009").copied(),
        Some(iterations)
    );
    assert_eq!(c.connections.opened, 2 * iterations);
    assert_eq!(done.results.metrics["rewelcome"].latency.count, iterations);
    srv.shutdown();
}

#[test]
fn serve_keeps_the_scenario_path_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "serve.yaml",
        r#"
name: serve-path
target: ws://127.0.0.1:8080/covetpy/ws?token=t1
load: { vus: 1, duration: 500ms }
behaviours:
  - steps:
      - expect: { kind: connection_ack, within: 2s }
"#,
    );
    let out = dir.path().join("out");
    let done = execute(RunArgs {
        scenario: sc,
        out: Some(out.clone()),
        serve: true,
        quiet: true,
        ..RunArgs::default()
    })
    .unwrap();
    let target = results(&out)["meta"]["target"].as_str().unwrap().to_owned();
    assert!(target.ends_with("/covetpy/ws?token=t1"), "{target}");
    assert_eq!(done.exit_code(), 0, "{:#?}", done.results.thresholds);
}

#[test]
fn a_new_connections_first_wait_does_not_count_from_the_last_connection() {
    let srv = server(0.0);
    let dir = tempfile::tempdir().unwrap();
    // Each iteration sends a ping 400 ms before it ends; the next iteration's welcome
    // must be timed from its own connection, not from that ping.
    let sc = scenario(
        dir.path(),
        "iter.yaml",
        r#"
name: iterations
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 2s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s, metric: welcome }
      - send: { type: ping, id: 1 }
      - expect: { kind: pong, within: 2s }
      - think: 400ms
thresholds:
  - "latency.welcome.max < 300ms"
"#,
    );
    let out = dir.path().join("out");
    let url = format!("ws://{}/ws", srv.addr());
    let done = execute(args(sc, out.clone(), url)).unwrap();
    let welcome = &results(&out)["metrics"]["welcome"]["latency"];
    assert!(welcome["count"].as_u64().unwrap() >= 2, "{welcome}");
    assert_eq!(done.exit_code(), 0, "welcome latency {welcome}");
}
