//! The swarm against test servers with one odd behaviour each: a reply stalled once
//! (coordinated omission), unrelated frames before every reply (the inbox), and hostile
//! frames (non-UTF-8, non-JSON, oversized, an immediate close).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use squall::run::{execute, RunArgs};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Answers pings with pongs carrying the id; the 100th reply of each connection waits 200 ms.
async fn stall_once(mut ws: Conn, sent: Arc<AtomicU64>) {
    let mut n = 0;
    while let Some(id) = next_ping(&mut ws).await {
        n += 1;
        if n == 100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let reply = json!({"type": "pong", "id": id}).to_string();
        if !send(&mut ws, &sent, reply).await {
            return;
        }
    }
}

#[test]
fn a_stalled_reply_shows_in_latency_not_in_service_time() {
    let srv = TestServer::start(stall_once);
    let (done, doc) = run_on(
        &srv,
        r#"
name: co
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 3s }
graceful_stop: 5s
behaviours:
  - steps:
      - pace: { send: { type: ping, id: "{{seq}}" }, rate: 100/s, duration: 3s, in_flight: 1, within: 2s, reply: { kind: pong }, metric: rtt }
      - close: 1000
"#,
    );
    assert_eq!(done.exit_code(), 0);
    let rtt = &doc["metrics"]["rtt"];
    let latency_p99 = rtt["latency"]["p99"].as_u64().unwrap();
    let service_p50 = rtt["service"]["p50"].as_u64().unwrap();
    // ~20 requests were due while the reply was held: their latency counts from when they
    // should have gone out, so p99 sees the stall; a naive recorder would show a few ms.
    assert!(latency_p99 >= 100_000, "latency p99 {latency_p99} µs");
    assert!(service_p50 < 20_000, "service p50 {service_p50} µs");
    assert!(rtt["latency"]["count"].as_u64().unwrap() >= 250);
    assert_eq!(doc["counters"]["errors"], 0);
}

/// Before each pong: an event, a pong for another id, and a heartbeat ping from the server.
async fn chatty(mut ws: Conn, sent: Arc<AtomicU64>) {
    while let Some(id) = next_ping(&mut ws).await {
        let other = id.as_u64().unwrap_or(0) + 1_000_000;
        for noise in [
            json!({"type": "event", "data": {"n": 1}}),
            json!({"type": "pong", "id": other}),
            json!({"type": "heartbeat"}),
            json!({"type": "pong", "id": id}),
        ] {
            if !send(&mut ws, &sent, noise.to_string()).await {
                return;
            }
        }
    }
}

#[test]
fn expect_by_id_skips_unrelated_frames_and_counts_them() {
    let srv = TestServer::start(chatty);
    let (done, doc) = run_on(
        &srv,
        r#"
name: inbox
target: ws://127.0.0.1:1/ws
load: { vus: 2, duration: 1s }
auto_reply:
  - on: { kind: heartbeat }
    send: { type: heartbeat_ack }
behaviours:
  - steps:
      - repeat: 10
        steps:
          - send: { type: ping, id: "{{seq}}" }
          - expect: { kind: pong, id: "{{sent./id}}", within: 1s, metric: rtt }
      - close: 1000
"#,
    );
    assert_eq!(done.exit_code(), 0, "{:#?}", done.results.counters);
    let c = &doc["counters"];
    let iterations = done.results.load.iterations_ok;
    assert!(iterations >= 2);
    let pings = iterations * 10;
    assert_eq!(c["errors"], 0);
    assert_eq!(
        doc["metrics"]["rtt"]["latency"]["count"].as_u64().unwrap(),
        pings
    );
    // Four frames per ping were sent and every one was counted, matched or not.
    assert_eq!(
        c["frames_in"].as_u64().unwrap(),
        srv.sent.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(c["frames_in"].as_u64().unwrap(), pings * 4);
    assert_eq!(c["kinds_in"]["pong"]["frames"].as_u64().unwrap(), pings * 2);
    assert_eq!(c["kinds_in"]["event"]["frames"].as_u64().unwrap(), pings);
    // Every heartbeat was answered by the declared rule.
    assert_eq!(
        c["kinds_out"]["(auto-reply)"]["frames"].as_u64().unwrap(),
        pings
    );
}

/// Sends one hostile thing right after the upgrade, then keeps reading.
fn hostile(what: &'static str) -> TestServer {
    TestServer::start(move |mut ws: Conn, _sent| async move {
        let msg = match what {
            "utf8" => Message::Frame(Frame::message(
                vec![0x66, 0xff, 0xfe, 0x6f],
                OpCode::Data(Data::Text),
                true,
            )),
            "nonjson" => Message::text("this is { not json"),
            "oversized" => Message::text("x".repeat(2 * 1024 * 1024)),
            "error" => {
                let bye = CloseFrame {
                    code: CloseCode::Error,
                    reason: "internal error".into(),
                };
                let _ = ws.close(Some(bye)).await;
                return;
            }
            _ => {
                let bye = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                };
                let _ = ws.close(Some(bye)).await;
                return;
            }
        };
        let _ = ws.send(msg).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
}

const EXPECT_WELCOME: &str = r#"
name: hostile
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
graceful_stop: 3s
connect: { max_message_size: 1MiB }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 300ms }
      - close: 1000
"#;

#[test]
fn invalid_utf8_is_a_counted_error_not_a_panic() {
    let (done, doc) = run_on(&hostile("utf8"), EXPECT_WELCOME);
    // No iteration got past the bad frame: a run that measured nothing never passes
    // (exit 3 with the reason), thresholds or not.
    assert_eq!(done.exit_code(), 3, "{:?}", done.results.status_reason);
    let errs = &doc["counters"]["errors_by_kind"];
    assert!(errs["invalid_utf8"].as_u64().unwrap() >= 1, "{errs}");
    assert_eq!(done.results.load.iterations_ok, 0);
}

#[test]
fn non_json_text_is_counted_under_its_own_kind() {
    let (_, doc) = run_on(&hostile("nonjson"), EXPECT_WELCOME);
    let kinds = &doc["counters"]["kinds_in"];
    assert!(
        kinds["(non-json)"]["frames"].as_u64().unwrap() >= 1,
        "{kinds}"
    );
    // The expect for a welcome that never came timed out, and says so.
    assert!(
        doc["counters"]["errors_by_kind"]["timeout"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn an_oversized_message_is_refused_within_the_limit() {
    let (_, doc) = run_on(&hostile("oversized"), EXPECT_WELCOME);
    let errs = &doc["counters"]["errors_by_kind"];
    assert!(errs["message_too_large"].as_u64().unwrap() >= 1, "{errs}");
}

#[test]
fn a_server_that_closes_at_once_is_a_disconnect() {
    let (done, doc) = run_on(&hostile("close"), EXPECT_WELCOME);
    let c = &doc["counters"];
    assert!(
        c["connections"]["closed_by_code"]["1000"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{c}"
    );
    assert!(
        c["errors_by_kind"]["disconnected"].as_u64().unwrap() >= 1,
        "{c}"
    );
    assert_eq!(done.results.load.iterations_ok, 0);
}

#[test]
fn a_server_closing_with_a_reason_mid_step_is_an_unexpected_close() {
    let (done, doc) = run_on(&hostile("error"), EXPECT_WELCOME);
    let c = &doc["counters"];
    let closes = c["connections"]["closed_by_code"]["1011"]
        .as_u64()
        .unwrap_or(0);
    assert!(closes >= 1, "{c}");
    assert_eq!(
        c["errors_by_kind"]["unexpected_close"], closes,
        "one per close: {c}"
    );
    assert!(c["errors_by_kind"].get("disconnected").is_none(), "{c}");
    assert_eq!(done.results.load.iterations_ok, 0);
}

#[test]
// The handshake callback's signature is tungstenite's; its error type is what it is.
#[allow(clippy::result_large_err)]
fn headers_query_and_subprotocols_reach_the_server() {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let (tx, rx) = std::sync::mpsc::channel::<(String, String, String)>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            // The first connection is squall's TCP preflight, which never upgrades.
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                let cb = move |req: &Request, mut resp: Response| {
                    let h = |n: &str| {
                        let v = req.headers().get(n).and_then(|v| v.to_str().ok());
                        v.unwrap_or("").to_string()
                    };
                    let uri = req.uri().to_string();
                    tx.send((uri, h("x-tenant"), h("sec-websocket-protocol")))
                        .unwrap();
                    let chosen = "kite.v1".parse().unwrap();
                    resp.headers_mut().insert("sec-websocket-protocol", chosen);
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
                    continue;
                };
                let _ = ws.send(Message::text(r#"{"type":"welcome"}"#)).await;
                while let Some(Ok(_)) = ws.next().await {}
            }
        });
    });
    let addr = addr_rx.recv().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "h.yaml",
        r#"
name: headers
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
connect:
  headers: { X-Tenant: "acme-{{vu}}" }
  query: { token: "a b&c" }
  subprotocols: [kite.v1, kite.v0]
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - listen: 5s
"#,
    );
    let out = dir.path().join("out");
    execute(RunArgs {
        scenario: sc,
        out: Some(out.clone()),
        target: Some(format!("ws://{addr}/ws")),
        quiet: true,
        threads: Some(1),
        ..RunArgs::default()
    })
    .unwrap();
    let (uri, tenant, protocols) = rx.recv().unwrap();
    assert_eq!(uri, "/ws?token=a%20b%26c");
    assert_eq!(tenant, "acme-1");
    assert_eq!(protocols, "kite.v1, kite.v0");
}
