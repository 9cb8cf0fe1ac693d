//! A behaviour's own `connect:` headers and query parameters (over the scenario's), and an
//! upgrade refused with HTTP 429 for one behaviour while the other keeps its thresholds.

use std::sync::mpsc;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::Message;

/// Upgrades every request but those with `client=abuser` (HTTP 429); reports each request's
/// URI and `x-role` header; answers pings with pongs.
fn server() -> (TestServer, mpsc::Receiver<(String, String)>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let srv = TestServer::start_tcp(move |tcp, _sent| {
        let tx = tx.lock().unwrap().clone();
        // The handshake callback's signature is tungstenite's.
        #[allow(clippy::result_large_err)]
        let cb = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let uri = req.uri().to_string();
            let role = req.headers().get("x-role").and_then(|v| v.to_str().ok());
            let _ = tx.send((uri.clone(), role.unwrap_or("").to_string()));
            if uri.contains("client=abuser") {
                return Err(http::Response::builder().status(429).body(None).unwrap());
            }
            Ok(resp)
        };
        async move {
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
                return;
            };
            while let Some(id) = next_ping(&mut ws).await {
                let pong = serde_json::json!({"type": "pong", "id": id}).to_string();
                if ws.send(Message::text(pong)).await.is_err() {
                    return;
                }
            }
            let _ = ws.next().await;
        }
    });
    (srv, rx)
}

#[test]
fn behaviours_bring_their_own_headers_and_query() {
    let (srv, seen) = server();
    let (done, doc) = run_yaml(
        &srv.url(),
        r#"
name: per-behaviour
target: ws://127.0.0.1:1/ws
seed: 3
load: { vus: 4, duration: 1s }
connect:
  query: { token: t, client: anyone }
  headers: { X-Role: none, X-Trace: "{{vu}}" }
behaviours:
  - name: good
    connect: { query: { client: good }, headers: { x-role: reader } }
    steps:
      - pace: { send: { type: ping, id: "{{seq}}" }, count: 5, reply: { kind: pong }, metric: good_rtt }
      - close: 1000
  - name: abuser
    connect: { query: { client: abuser } }
    steps:
      - listen: 1s
thresholds:
  - "errors.http_429 >= 1"
  - "latency.good_rtt.p99 < 1s"
  - "errors.timeout == 0"
"#,
    );
    let requests: Vec<(String, String)> = seen.try_iter().collect();
    let good = requests
        .iter()
        .find(|r| r.0.contains("client=good"))
        .unwrap();
    // The behaviour's `client` replaced the scenario's; `x-role` replaced `X-Role` whatever
    // its case.
    assert_eq!(good.0, "/ws?token=t&client=good");
    assert_eq!(good.1, "reader");
    let abuser = requests.iter().find(|r| r.0.contains("abuser")).unwrap();
    assert_eq!(abuser.0, "/ws?token=t&client=abuser");
    assert_eq!(abuser.1, "none");
    assert!(!requests.iter().any(|r| r.0.contains("anyone")));
    assert!(
        doc["counters"]["errors_by_kind"]["http_429"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(
        done.results.thresholds.iter().all(|t| t.pass),
        "{:#?}",
        done.results.thresholds
    );
    assert_eq!(done.exit_code(), 0);
}
