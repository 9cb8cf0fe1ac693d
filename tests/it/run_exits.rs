//! Exit codes a gate can trust and totals that reconcile, against hostile targets: one that
//! never finishes the handshake, one that never answers, one that never reads, one that
//! floods, one that drops every connection.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Nothing in flight vanished: connections, requests and iterations all add up.
fn assert_reconciles(doc: &Value) {
    let c = &doc["counters"]["connections"];
    assert_eq!(
        n(&c["opened"]),
        n(&c["closed"]) + n(&c["open_at_stop"]),
        "connections: {c}"
    );
    let r = &doc["counters"]["requests"];
    assert_eq!(
        n(&r["sent"]),
        n(&r["replies"]) + n(&r["timeouts"]) + n(&r["unanswered"]),
        "requests: {r}"
    );
    let l = &doc["load"];
    assert_eq!(
        n(&l["iterations_started"]),
        n(&l["iterations_ok"]) + n(&l["iterations_failed"]) + n(&l["iterations_cut"]),
        "iterations: {l}"
    );
}

/// Accepts TCP and reads the upgrade request, never answering it.
fn never_upgrades() -> TestServer {
    TestServer::start_tcp(|mut tcp, _| async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
}

#[test]
fn a_target_that_never_finishes_the_handshake_exits_3_whatever_the_timing() {
    let srv = never_upgrades();
    // The stop comes while every attempt is still under way...
    let under_way = r#"
name: no-handshake
target: ws://127.0.0.1:1/ws
load: { vus: 3, duration: 1s }
graceful_stop: 300ms
connect: { timeout: 10s }
behaviours:
  - steps:
      - listen: 100ms
"#;
    // ...or after attempts have timed out (and before the dead-target watch could tell).
    let timed_out = under_way.replace("timeout: 10s", "timeout: 400ms");
    for yaml in [under_way, timed_out.as_str()] {
        let (done, doc) = run_yaml(&srv.url(), yaml);
        assert_eq!(
            done.exit_code(),
            3,
            "{yaml}\n{:?}",
            done.results.status_reason
        );
        let reason = doc["status_reason"].as_str().unwrap();
        assert!(reason.contains("no connection was opened"), "{reason}");
        assert_eq!(doc["status"], "aborted");
        assert_reconciles(&doc);
    }
}

#[test]
fn many_vus_that_open_nothing_within_the_duration_exit_3_from_the_cli() {
    let srv = never_upgrades();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "s.yaml",
        "name: crowd\nload: { vus: 1, duration: 5s }\ngraceful_stop: 300ms\n\
         behaviours:\n  - steps:\n      - listen: 100ms\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["run", "--no-report", "--vus", "300", "--duration", "1s"])
        .args(["--target", &srv.url(), "--out"])
        .arg(dir.path().join("out"))
        .arg(&sc)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("no connection was opened"), "{stdout}");
}

/// `vus` VUs for 1 s, each pacing `count` pings at once with a 30 s deadline: longer than
/// the run, so only the stop or a lost connection ends the wait.
fn pinging(vus: u32, count: u32) -> String {
    format!(
        r#"
name: pinging
target: ws://127.0.0.1:1/ws
load: {{ vus: {vus}, duration: 1s }}
graceful_stop: 300ms
behaviours:
  - steps:
      - pace: {{ send: {{ type: ping, id: "{{{{seq}}}}" }}, count: {count}, in_flight: 16, within: 30s, reply: {{ kind: pong }}, metric: rtt }}
"#
    )
}

#[test]
fn requests_still_waiting_at_the_stop_are_unanswered_but_no_error() {
    // Reads every request, answers none.
    let srv =
        TestServer::start(|mut ws, _| async move { while let Some(Ok(_)) = ws.next().await {} });
    let (done, doc) = run_yaml(&srv.url(), &pinging(2, 5));
    let c = &doc["counters"];
    assert_eq!(n(&c["requests"]["sent"]), 10, "{c}");
    assert_eq!(n(&c["requests"]["unanswered"]), 10, "{c}");
    // Cut off by the run's stop before their 30 s deadline: nothing says the replies would
    // not have come, so they are no error (a lost connection's are: see below).
    assert!(c["errors_by_kind"].get("unanswered").is_none(), "{c}");
    assert_eq!(n(&c["errors"]), 0, "{c}");
    assert_eq!(n(&doc["load"]["iterations_cut"]), 2);
    // Nothing was measured to the end: no iteration ended.
    assert_eq!(done.exit_code(), 3);
    assert!(doc["status_reason"]
        .as_str()
        .unwrap()
        .contains("no iteration completed"));
    assert_reconciles(&doc);
}

#[test]
fn requests_a_lost_connection_left_waiting_are_unanswered_errors() {
    // Reads three requests, answers none, and hangs up.
    let srv = TestServer::start(|mut ws, _| async move {
        for _ in 0..3 {
            if !matches!(ws.next().await, Some(Ok(_))) {
                return;
            }
        }
        let _ = ws.close(None).await;
    });
    let (_, doc) = run_yaml(&srv.url(), &pinging(1, 3));
    let c = &doc["counters"];
    // Each connection takes all three requests at once and is closed on them: three errors
    // a connection (the VU reconnects, with backoff, for as long as the run lasts).
    let lost = n(&c["errors_by_kind"]["unanswered"]);
    assert!(lost >= 3 && lost.is_multiple_of(3), "{c}");
    // Any others were cut off by the stop: unanswered, no error.
    assert!(n(&c["requests"]["unanswered"]) >= lost, "{c}");
    assert_reconciles(&doc);
}

#[test]
fn sends_a_peer_that_never_reads_kept_from_happening_are_missed() {
    // Upgrades, then never reads: the socket's buffers fill and the pacer cannot send.
    let srv = TestServer::start_tcp(|tcp, _| async move {
        if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
            std::future::pending::<()>().await;
            drop(ws);
        }
    });
    let pad = "x".repeat(16 * 1024);
    let yaml = format!(
        r#"
name: never-reads
target: ws://127.0.0.1:1/ws
load: {{ vus: 1, duration: 2s }}
graceful_stop: 300ms
behaviours:
  - steps:
      - pace: {{ send: {{ type: ping, id: "{{{{seq}}}}", pad: "{pad}" }}, rate: 1000/s, duration: 2s, in_flight: 100000, within: 30s, reply: {{ kind: pong }} }}
"#
    );
    let (_, doc) = run_yaml(&srv.url(), &yaml);
    let c = &doc["counters"];
    let sent = n(&c["kinds_out"]["ping"]["frames"]);
    let missed = n(&c["missed"]);
    assert!(missed > 0, "{c}");
    assert_eq!(
        sent + missed,
        2000,
        "every planned send is sent or missed: {c}"
    );
    assert_eq!(n(&c["requests"]["unanswered"]), sent, "{c}");
    assert_reconciles(&doc);
}

#[test]
fn the_close_drain_ends_at_its_deadline_under_a_flood_and_every_vu_is_counted() {
    // Floods frames without pause and never answers the close.
    let srv = TestServer::start(|mut ws, _| async move {
        let frame = Message::text(r#"{"type":"flood","n":1}"#);
        while ws.feed(frame.clone()).await.is_ok() {}
    });
    let started = Instant::now();
    let (_, doc) = run_yaml(
        &srv.url(),
        r#"
name: flood
target: ws://127.0.0.1:1/ws
load: { vus: 4, duration: 2s }
graceful_stop: 500ms
behaviours:
  - steps:
      - listen: 30s
"#,
    );
    // 2 s of load (the floods load the machine: time for all four to connect), 0.5 s of
    // grace, at most 1 s of close drain; the rest is slack for a loaded machine (without a
    // deadline the drain would never end on its own).
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let c = &doc["counters"]["connections"];
    assert_eq!(n(&c["opened"]), 4, "{c}");
    assert_eq!(n(&c["closed"]), 4, "every drain ended in time: {c}");
    assert_eq!(n(&doc["load"]["iterations_cut"]), 4);
    assert_reconciles(&doc);
}

/// Upgrades every connection and closes it at once; counts connections in `sent`.
fn drops_every_connection() -> TestServer {
    TestServer::start_tcp(|tcp, accepted| async move {
        accepted.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
            let _ = ws.close(None).await;
        }
    })
}

const DROPPED: &str = r#"
name: dropped
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 2s }
graceful_stop: 300ms
behaviours:
  - steps:
      - expect: { kind: welcome, within: 1s }
      - send: { type: hello }
"#;

#[test]
fn a_target_that_drops_every_connection_is_reconnected_with_backoff() {
    let srv = drops_every_connection();
    let (done, doc) = run_yaml(&srv.url(), DROPPED);
    // 100 ms, 200 ms, 400 ms, 800 ms (±20 %) between attempts: about 5 in 2 s, not thousands.
    let accepted = srv.sent.load(Ordering::SeqCst);
    assert!(
        (2..=12).contains(&accepted),
        "{accepted} connections in 2 s"
    );
    // Connections came and went, but not one of the scenario's messages was sent.
    assert_eq!(done.exit_code(), 3);
    let reason = doc["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("none of the scenario's requests was sent"),
        "{reason}"
    );
    assert_reconciles(&doc);
}

#[test]
fn the_scenario_sets_the_backoff_between_iterations() {
    let srv = drops_every_connection();
    let yaml = DROPPED.replace(
        "graceful_stop: 300ms",
        "graceful_stop: 300ms\nconnect: { backoff: { initial: 900ms, factor: 1, jitter: 0 } }",
    );
    run_yaml(&srv.url(), &yaml);
    // At 0 s, ~0.9 s and ~1.8 s, after the start-up check's own TCP connection.
    let accepted = srv.sent.load(Ordering::SeqCst);
    assert!((3..=4).contains(&accepted), "{accepted} connections in 2 s");
}

#[test]
fn the_abort_reason_counts_what_the_counters_count() {
    // Accepts TCP and hangs up 50–900 ms later: every handshake fails, none is ever open,
    // and the VUs fall out of step, so at any moment some attempts are under way (they must
    // not land after the reason was written).
    let srv = TestServer::start_tcp(|tcp, accepted| async move {
        let n = accepted.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50 + 107 * (n % 9))).await;
        drop(tcp)
    });
    let (done, doc) = run_yaml(
        &srv.url(),
        r#"
name: hangs-up
target: ws://127.0.0.1:1/ws
load: { vus: 20, duration: 10s }
graceful_stop: 300ms
behaviours:
  - steps:
      - listen: 100ms
"#,
    );
    assert_eq!(done.exit_code(), 3);
    let failed = n(&doc["counters"]["connections"]["failed"]);
    let reason = doc["status_reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("({failed} failed in all)")),
        "{reason} vs {failed}"
    );
}

#[test]
fn an_upload_still_under_way_at_the_stop_is_counted_cut() {
    // Reads every chunk, never says the upload is complete.
    let srv =
        TestServer::start(|mut ws, _| async move { while let Some(Ok(_)) = ws.next().await {} });
    let (_, doc) = run_yaml(
        &srv.url(),
        r#"
name: upload-cut
target: ws://127.0.0.1:1/ws
load: { vus: 2, duration: 1s }
graceful_stop: 300ms
behaviours:
  - steps:
      - upload:
          size: 20KiB
          chunk_size: 10KiB
          start: { type: file_upload_start, id: "{{upload.id}}" }
          chunk: { type: file_chunk, data: "{{chunk.base64}}" }
          complete: { kind: file_upload_complete, within: 30s }
          metric: up
"#,
    );
    let u = &doc["uploads"]["up"];
    assert_eq!(n(&u["started"]), 2, "{u}");
    assert_eq!(n(&u["cut"]), 2, "{u}");
    assert_reconciles(&doc);
}
