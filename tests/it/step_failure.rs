//! A failed step ends its iteration (counted failed, the connection closed with 1000) unless
//! it says `on_fail: continue`; a frame that would carry a capture that is not set is not sent
//! but counted as `skipped_send`, never checked as a violation of squall's own frame.
//!
//! Each test server records what it receives, so a test sees what squall did and did not send.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use crate::support::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// What a test server received: text frames' `type`s and close codes, in order.
type Heard = Arc<Mutex<Vec<String>>>;

/// A server that answers `{"type":"open","answer":A}`: `none` with nothing, `bare` with an
/// `opened` lacking its handle, anything else with `{"type":"opened","handle":"h1"}`.
fn server() -> (TestServer, Heard) {
    let heard: Heard = Arc::default();
    let log = heard.clone();
    let srv = TestServer::start(move |mut ws: Conn, sent: Arc<AtomicU64>| {
        let log = log.clone();
        async move {
            while let Some(Ok(m)) = ws.next().await {
                let text = match m {
                    Message::Text(t) => t.to_string(),
                    Message::Close(c) => {
                        let code = c.map_or(0, |c| u16::from(c.code));
                        log.lock().unwrap().push(format!("close {code}"));
                        continue;
                    }
                    _ => continue,
                };
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                let kind = v["type"].as_str().unwrap_or_default().to_string();
                let handle = v["handle"].to_string();
                log.lock().unwrap().push(if kind == "close_handle" {
                    format!("{kind} {handle}")
                } else {
                    kind.clone()
                });
                let reply = match (kind.as_str(), v["answer"].as_str()) {
                    ("open", Some("none")) => continue,
                    ("open", Some("bare")) => json!({"type": "opened"}),
                    ("open", _) => json!({"type": "opened", "handle": "h1"}),
                    _ => continue,
                };
                if !send(&mut ws, &sent, reply.to_string()).await {
                    return;
                }
            }
        }
    });
    (srv, heard)
}

fn heard(h: &Heard) -> Vec<String> {
    h.lock().unwrap().clone()
}

fn errors(doc: &Value, kind: &str) -> u64 {
    doc["counters"]["errors_by_kind"][kind]
        .as_u64()
        .unwrap_or(0)
}

fn yaml(answer: &str, on_fail: &str) -> String {
    format!(
        r#"
name: on-fail
target: ws://127.0.0.1:1/ws
load: {{ vus: 1, duration: 1s }}
behaviours:
  - steps:
      - send: {{ type: open, answer: {answer} }}
      - expect: {{ kind: opened, within: 100ms, capture: {{ handle: /handle }} }}
        {on_fail}
      - send: {{ type: close_handle, handle: "{{{{handle}}}}" }}
        {on_fail}
      - send: {{ type: bye }}
      - close: 1000
"#
    )
}

#[test]
fn a_failed_expect_ends_its_iteration_and_closes_with_1000() {
    let (srv, log) = server();
    let (done, doc) = run_yaml(&srv.url(), &yaml("none", ""));
    assert_eq!(done.exit_code(), 0, "no threshold: the run itself passes");
    let load = &doc["load"];
    let failed = load["iterations_failed"].as_u64().unwrap();
    assert!(failed >= 2, "{load}");
    assert_eq!(load["iterations_ok"], 0, "{load}");
    assert_eq!(errors(&doc, "timeout"), failed);
    // Nothing after the failed expect was sent: each connection heard one open, then 1000.
    let heard = heard(&log);
    let opens = heard.iter().filter(|h| *h == "open").count() as u64;
    assert!(opens >= failed, "{heard:?}");
    assert!(
        heard.iter().all(|h| h == "open" || h == "close 1000"),
        "{heard:?}"
    );
    assert_eq!(
        heard.iter().filter(|h| *h == "close 1000").count() as u64,
        opens,
        "{heard:?}"
    );
    assert_eq!(errors(&doc, "skipped_send"), 0);
}

#[test]
fn on_fail_continue_goes_on_and_skips_a_frame_needing_the_missing_capture() {
    let (srv, log) = server();
    let (_, doc) = run_yaml(&srv.url(), &yaml("none", "on_fail: continue"));
    let failed = doc["load"]["iterations_failed"].as_u64().unwrap();
    assert!(failed >= 2, "{}", doc["load"]);
    assert_eq!(errors(&doc, "timeout"), failed);
    assert_eq!(errors(&doc, "skipped_send"), failed);
    let heard = heard(&log);
    // The iteration went on to `bye`; the frame that would carry `null` never went out.
    assert!(heard.iter().any(|h| h == "bye"), "{heard:?}");
    assert!(
        !heard.iter().any(|h| h.starts_with("close_handle")),
        "{heard:?}"
    );
}

#[test]
fn a_capture_the_reply_lacks_is_unset_and_its_frame_skipped() {
    let (srv, log) = server();
    let (_, doc) = run_yaml(&srv.url(), &yaml("bare", ""));
    let failed = doc["load"]["iterations_failed"].as_u64().unwrap();
    assert!(failed >= 2, "{}", doc["load"]);
    // The reply came (no timeout): the skipped send is the step that failed.
    assert_eq!(errors(&doc, "timeout"), 0);
    assert_eq!(errors(&doc, "skipped_send"), failed);
    let heard = heard(&log);
    assert!(
        heard.iter().all(|h| h == "open" || h == "close 1000"),
        "{heard:?}"
    );
    // With the handle present the same scenario runs through.
    let (srv, log) = server();
    let (done, doc) = run_yaml(&srv.url(), &yaml("full", ""));
    assert_eq!(done.exit_code(), 0);
    assert_eq!(doc["load"]["iterations_failed"], 0);
    assert!(heard_has(&log, "close_handle \"h1\""));
}

fn heard_has(log: &Heard, what: &str) -> bool {
    log.lock().unwrap().iter().any(|h| h == what)
}

/// A Hexabase server whose subscribe_result lacks the subscription_id: the client's
/// unsubscribe would carry `null`.
async fn hexa_without_subscription_id(mut ws: Conn, sent: Arc<AtomicU64>) {
    while let Some(v) = next_json(&mut ws).await {
        if v["type"] == "subscribe" {
            let result = json!({"type": "subscribe_result", "id": v["id"], "success": true});
            let _ = send(&mut ws, &sent, result.to_string()).await;
        }
    }
}

#[test]
fn one_server_fault_is_one_finding_not_a_violation_of_squalls_own_frames() {
    let srv = TestServer::start(hexa_without_subscription_id);
    let yaml = r#"
name: hexabase-missing-capture
protocol: hexabase
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { type: subscribe, id: "sub-{{iter}}", data: { resource: workspace, workspace_id: ws-1, events: [status_changed] } }
      - expect: { kind: subscribe_result, within: 1s, capture: { sub: /subscription_id } }
      - send: { type: unsubscribe, id: "unsub-{{iter}}", data: { subscription_id: "{{sub}}" } }
      - close: 1000
"#;
    let (done, doc) = run_yaml(&srv.url(), yaml);
    assert_eq!(done.exit_code(), 1);
    let failed = doc["load"]["iterations_failed"].as_u64().unwrap();
    assert!(failed >= 1);
    assert_eq!(errors(&doc, "skipped_send"), failed);
    // The server's fault, once per iteration, at the missing member; nothing outbound.
    let groups = doc["violations"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let g = &groups[0];
    assert_eq!(
        (&g["dir"], &g["kind"], &g["keyword"], &g["pointer"]),
        (
            &json!("in"),
            &json!("subscribe_result"),
            &json!("required"),
            &json!("/subscription_id")
        ),
        "{g}"
    );
    assert_eq!(g["count"].as_u64().unwrap(), failed);
}

#[test]
fn pace_and_burst_do_not_send_frames_needing_a_missing_capture() {
    let (srv, log) = server();
    // The capture is missing (`bare` answers without a handle); `continue` lets the steps that
    // read it run: the burst and the pace must send nothing that carries `null`.
    let yaml = r#"
name: on-fail-pace-burst
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { type: open, answer: bare }
      - expect: { kind: opened, within: 200ms, capture: { handle: /handle } }
      - burst: { send: { type: close_handle, handle: "{{handle}}" }, count: 5 }
        on_fail: continue
      - pace: { send: { type: close_handle, id: "{{seq}}", handle: "{{handle}}" }, rate: 50/s, count: 5, reply: { kind: opened } }
      - send: { type: bye }
      - close: 1000
"#;
    let (_, doc) = run_yaml(&srv.url(), yaml);
    let heard = heard(&log);
    assert!(heard.iter().any(|h| h == "bye"), "{heard:?}");
    assert!(
        !heard.iter().any(|h| h.starts_with("close_handle")),
        "{heard:?}"
    );
    let iterations = doc["load"]["iterations_started"].as_u64().unwrap();
    assert!(iterations >= 1, "{}", doc["load"]);
    // One skipped send per step per iteration (the burst's and the pace's), never a missed
    // send of the generator's.
    let skipped = errors(&doc, "skipped_send");
    assert!(
        skipped >= 2 && skipped <= 2 * iterations,
        "{skipped} skipped in {iterations} iterations: {}",
        doc["counters"]
    );
    assert_eq!(doc["counters"]["missed"].as_u64().unwrap_or(0), 0);
}
