//! A paced weighted mix of requests with a histogram per request kind, and bursts that the
//! server must refuse: by an error frame (timed from the burst's first send), by closing the
//! connection with a code, or not at all (a failure).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Answers `rpc_call`s by method: `status` with an `rpc_response`, anything else with an
/// `rpc_error`; both carry the call's id.
async fn rpc(mut ws: Conn, sent: Arc<AtomicU64>) {
    while let Some(Ok(msg)) = ws.next().await {
        let Ok(v) = serde_json::from_str::<Value>(msg.to_text().unwrap_or("")) else {
            continue;
        };
        let kind = if v["method"] == "status" {
            "rpc_response"
        } else {
            "rpc_error"
        };
        let reply = json!({"type": kind, "id": v["id"]}).to_string();
        if !send(&mut ws, &sent, reply).await {
            return;
        }
    }
}

#[test]
fn a_paced_mix_records_each_request_kind_in_its_own_histogram() {
    let srv = TestServer::start(rpc);
    let (done, doc) = run_on(
        &srv,
        r#"
name: mix
target: ws://127.0.0.1:1/ws
load: { rate: 10/s, duration: 100ms, max_vus: 1 }
behaviours:
  - steps:
      - pace:
          rate: 200/s
          count: 60
          in_flight: 4
          reply: { kind: rpc_response }
          mix:
            - { weight: 3, send: { type: rpc_call, id: "{{seq}}", method: status }, metric: rpc_status }
            - { weight: 1, send: { type: rpc_call, id: "{{seq}}", method: nope }, reply: { kind: rpc_error }, metric: rpc_unknown }
      - close: 1000
thresholds:
  - "latency.rpc_status.p99 < 1s"
  - "latency.rpc_unknown.p99 < 1s"
  - "errors.count == 0"
"#,
    );
    let count = |m: &str| doc["metrics"][m]["latency"]["count"].as_u64().unwrap();
    let (ok, unknown) = (count("rpc_status"), count("rpc_unknown"));
    // Every request got the reply its entry expects: no timeouts, all 60 timed.
    assert_eq!(ok + unknown, 60, "{ok} + {unknown}");
    assert!(ok > unknown && unknown > 0, "{ok} vs {unknown}");
    let kinds = &doc["counters"]["kinds_in"];
    assert_eq!(kinds["rpc_error"]["frames"].as_u64(), Some(unknown));
    assert_eq!(done.exit_code(), 0, "{:#?}", done.results.thresholds);
}

/// Counts pings; from the 11th on, each gets a `RATE_LIMITED` error (and a pong otherwise).
/// With `close_after`, closes with 1008 after that many messages instead.
fn limiter(close_after: Option<u64>, refuse: bool) -> TestServer {
    TestServer::start(move |mut ws: Conn, sent: Arc<AtomicU64>| async move {
        let mut n = 0u64;
        while let Some(Ok(msg)) = ws.next().await {
            if !msg.is_text() {
                continue;
            }
            n += 1;
            if close_after == Some(n) {
                let bye = CloseFrame {
                    code: CloseCode::Policy,
                    reason: "rate limit exceeded".into(),
                };
                let _ = ws.send(Message::Close(Some(bye))).await;
                // Read until the client answers the close (its later frames are dropped).
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            let reply = if refuse && n > 10 {
                json!({"type": "error", "code": "RATE_LIMITED"})
            } else {
                json!({"type": "pong"})
            };
            if !send(&mut ws, &sent, reply.to_string()).await {
                return;
            }
        }
    })
}

const BURST: &str = r#"
name: burst
target: ws://127.0.0.1:1/ws
load: { rate: 10/s, duration: 100ms, max_vus: 1 }
behaviours:
  - steps:
      - burst: { send: { type: ping }, count: 100, rejected: REJECTED }
      - close: 1000
thresholds:
  - "errors.count == 0"
"#;

fn burst(rejected: &str) -> String {
    BURST.replace("REJECTED", rejected)
}

#[test]
fn a_refusal_frame_is_timed_from_the_first_send() {
    let srv = limiter(None, true);
    let (done, doc) = run_on(
        &srv,
        &burst(
            "{ kind: error, match: { /code: RATE_LIMITED }, within: 2s, metric: first_refusal }",
        ),
    );
    assert_eq!(done.exit_code(), 0, "{}", doc["counters"]);
    let lat = &doc["metrics"]["first_refusal"]["latency"];
    assert_eq!(lat["count"], 1, "only the first refusal is timed");
    assert!(lat["max"].as_u64().unwrap() < 2_000_000, "{lat}");
    assert_eq!(doc["counters"]["kinds_in"]["error"]["frames"], 90);
    assert_eq!(doc["counters"]["kinds_out"]["ping"]["frames"], 100);
}

#[test]
fn a_burst_nobody_refuses_fails() {
    let srv = limiter(None, false);
    let (done, doc) = run_on(
        &srv,
        &burst("{ kind: error, within: 300ms, metric: first_refusal }"),
    );
    assert_eq!(doc["counters"]["errors_by_kind"]["timeout"], 1);
    // The wait is recorded at its deadline, counted from the burst's first send.
    let lat = &doc["metrics"]["first_refusal"]["latency"];
    assert!(lat["max"].as_u64().unwrap() >= 300_000, "{lat}");
    assert_eq!(done.exit_code(), 1);
}

#[test]
fn a_close_with_the_expected_code_is_the_refusal() {
    let srv = limiter(Some(20), false);
    let (done, doc) = run_yaml(&srv.url(), &burst("{ close: 1008, metric: closed_after }"));
    let c = &doc["counters"];
    assert_eq!(done.exit_code(), 0, "{c}");
    assert_eq!(c["connections"]["closed_by_code"]["1008"], 1, "{c}");
    assert_eq!(doc["metrics"]["closed_after"]["latency"]["count"], 1);
    // Sends cut short by the refusal are not missed sends.
    assert_eq!(c["missed"], 0);
    assert!(
        c["kinds_out"]["ping"]["frames"].as_u64().unwrap() >= 20,
        "{c}"
    );

    // Another code than the one expected is an error.
    let srv = limiter(Some(20), false);
    let (done, doc) = run_yaml(&srv.url(), &burst("{ close: 1009 }"));
    assert_eq!(doc["counters"]["errors_by_kind"]["unexpected_close"], 1);
    assert_eq!(done.exit_code(), 1);
}
