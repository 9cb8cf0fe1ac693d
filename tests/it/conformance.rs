//! Every frame checked in a run: a test server sends known-bad Kite frames after a valid
//! welcome, and each is counted once, under the right kind, keyword and pointer; a clean run
//! against squall-server counts none.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use squall::protocol::Conformance;
use squall::run::{execute, RunArgs};
use tokio_tungstenite::tungstenite::Message;

const TS: &str = "2024-05-01T10:00:00.123456Z";
const CLIENT_ID: &str = "0b0e4f4e-7f3c-4c59-9d53-3f5d2c1b9a10";

/// A valid Kite welcome.
fn welcome() -> String {
    json!({"type": "welcome", "timestamp": TS,
        "data": {"client_id": CLIENT_ID, "message": "Connected to Kite WebSocket API"}})
    .to_string()
}

/// How many violations of `kind` with `keyword` (at `pointer`, when given) a run counted.
fn violations(doc: &Value, kind: &str, keyword: &str, pointer: Option<&str>) -> u64 {
    doc["violations"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["kind"] == kind && g["keyword"] == keyword)
        .filter(|g| pointer.is_none_or(|p| g["pointer"] == p))
        .map(|g| g["count"].as_u64().unwrap())
        .sum()
}

/// The bad frames, each with the (kind, keyword, pointer) it must be counted under.
fn bad_frames() -> Vec<(Message, (&'static str, &'static str, &'static str))> {
    let text = |v: Value| Message::text(v.to_string());
    vec![
        (
            text(json!({"type": "scrape.progress", "timestamp": TS, "data":
                {"job_id": "j1", "current": "45", "total": 100, "percent": 45.0, "message": "m"}})),
            ("scrape.progress", "type", "/data/current"),
        ),
        (
            text(json!({"type": "case.deleted", "data": {}, "timestamp": TS})),
            ("case.deleted", "required", "/data/case_id"),
        ),
        (
            text(json!({"type": "system.alert", "timestamp": TS, "data":
                {"severity": "apocalyptic", "component": "db", "message": "m"}})),
            ("system.alert", "enum", "/data/severity"),
        ),
        (
            text(
                json!({"type": "case.deleted", "data": {"case_id": "c1"}, "timestamp": "yesterday"}),
            ),
            // The timestamp's format and pattern fail at one pointer: one finding.
            ("case.deleted", "format+pattern", "/timestamp"),
        ),
        (
            text(json!({"type": "scrape.paused", "data": {}, "timestamp": TS})),
            ("scrape.paused", "unknown_kind", "/type"),
        ),
        (
            text(json!({"type": "case.deleted", "data": {"case_id": "c1"},
                "timestamp": "2099-01-01T00:00:00Z"})),
            ("case.deleted", "clock_skew", "/timestamp"),
        ),
        (
            Message::text("this is { not json"),
            ("(non-json)", "json", ""),
        ),
        (Message::binary(vec![1u8, 2, 3]), ("(binary)", "binary", "")),
    ]
}

async fn hostile(mut ws: Conn, sent: Arc<AtomicU64>) {
    let _ = send(&mut ws, &sent, welcome()).await;
    for (msg, _) in bad_frames() {
        let _ = ws.send(msg).await;
    }
    while let Some(Ok(_)) = ws.next().await {}
}

fn run(target: String, yaml: &str, no_check: bool) -> (u8, Value) {
    let (code, doc, _) = run_junit(target, yaml, no_check);
    (code, doc)
}

/// Runs and returns the exit code, results.json and the JUnit XML.
fn run_junit(target: String, yaml: &str, no_check: bool) -> (u8, Value, String) {
    run_args(
        target,
        yaml,
        RunArgs {
            no_check,
            ..RunArgs::default()
        },
    )
}

/// [`run_junit`] with `args` for everything but the files, target and threads.
fn run_args(target: String, yaml: &str, args: RunArgs) -> (u8, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "c.yaml", yaml);
    let out = dir.path().join("out");
    let junit = dir.path().join("junit.xml");
    let done = execute(RunArgs {
        scenario: sc,
        out: Some(out.clone()),
        target: Some(target),
        quiet: true,
        threads: Some(1),
        schemas: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas").into()),
        junit: Some(junit.clone()),
        ..args
    })
    .unwrap();
    let doc = results(&out);
    assert_schema_valid(&doc);
    (
        done.exit_code(),
        doc,
        std::fs::read_to_string(junit).unwrap(),
    )
}

const ONE_VISIT: &str = r#"
name: conformance
protocol: kite
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - send: { type: subscribe, room: "scrape:all" }
      - send: { type: subscribe, room: 42 }
        unchecked: true
      - expect: { kind: scrape.paused, within: 2s }
      - listen: 200ms
      - close: 1000
thresholds:
  - "violations == 0"
"#;

#[test]
fn each_bad_frame_is_counted_once_under_its_kind_keyword_and_pointer() {
    let srv = TestServer::start(hostile);
    let (code, doc) = run(srv.url(), ONE_VISIT, false);
    assert_eq!(code, 1, "violations == 0 must fail");
    let v = &doc["violations"];
    let iterations = doc["load"]["iterations_ok"].as_u64().unwrap()
        + doc["load"]["iterations_failed"].as_u64().unwrap();
    assert!(iterations >= 1);
    let groups = v["groups"].as_array().unwrap();
    for (_, (kind, keyword, pointer)) in bad_frames() {
        let g = groups
            .iter()
            .find(|g| g["kind"] == kind && g["keyword"] == keyword && g["pointer"] == pointer)
            .unwrap_or_else(|| panic!("no group {kind} {keyword} {pointer}: {groups:#?}"));
        assert_eq!(g["dir"], "in");
        assert!(g["samples"][0]["vu"].as_u64().is_some());
    }
    // Eight bad frames per visit; the outbound subscribe with a numeric room was marked
    // unchecked, and the valid subscribe passed.
    assert_eq!(v["frames"].as_u64().unwrap(), 8 * iterations, "{v:#}");
    assert!(groups.iter().all(|g| g["dir"] == "in"), "{groups:#?}");
    let frames = &doc["counters"];
    let total_frames =
        frames["frames_in"].as_u64().unwrap() + frames["frames_out"].as_u64().unwrap();
    let unchecked = iterations; // the one unchecked send per visit
    assert_eq!(v["checked"].as_u64().unwrap(), total_frames - unchecked);
}

#[test]
fn no_check_checks_nothing_and_cannot_vouch_for_conformance() {
    let srv = TestServer::start(hostile);
    let (code, doc) = run(srv.url(), ONE_VISIT, true);
    assert_eq!(doc["violations"]["checked"], 0);
    assert_eq!(doc["violations"]["total"], 0);
    assert_eq!(code, 1, "violations == 0 has nothing to stand on");
    assert!(doc["thresholds"][0]["message"]
        .as_str()
        .unwrap()
        .contains("no frames were checked"));
}

#[test]
fn squall_server_speaks_kite_as_its_schemas_say() {
    let srv = reference_server(|c| c.events_per_sec = 200.0);
    let yaml = r#"
name: clean
protocol: kite
target: ws://127.0.0.1:1/ws
load: { vus: 5, duration: 2s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - send: { type: subscribe, room: "scrape:all" }
      - send: { type: subscribe, room: "cases:all" }
      - send: { type: subscribe, room: "alerts:all" }
      - send: { type: subscribe, room: "workers:all" }
      - pace: { send: { type: ping, id: "{{seq}}" }, rate: 50/s, duration: 1s, reply: { kind: pong } }
      - send: { type: unsubscribe, room: "scrape:all" }
      - listen: 200ms
thresholds:
  - "violations == 0"
  - "violations.rate == 0"
"#;
    let (code, doc) = run(format!("ws://{}/ws", srv.addr()), yaml, false);
    assert_eq!(code, 0, "{:#}", doc["violations"]);
    let kinds = doc["counters"]["kinds_in"].as_object().unwrap();
    assert!(
        kinds.len() >= 8,
        "events of several families were checked: {kinds:?}"
    );
    assert!(doc["violations"]["checked"].as_u64().unwrap() > 500);
    srv.shutdown();
}

#[test]
fn a_violation_fails_the_run_and_shows_in_junit() {
    let srv = TestServer::start(hostile);
    let no_thresholds = ONE_VISIT.split("thresholds:").next().unwrap();
    let (code, doc, xml) = run_junit(srv.url(), no_thresholds, false);
    assert_eq!(
        code, 1,
        "a schema violation fails the run even without a threshold"
    );
    assert!(doc["violations"]["total"].as_u64().unwrap() >= 8);
    let tree = roxmltree::Document::parse(&xml).expect("JUnit output is XML");
    let root = tree.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let cases: Vec<_> = tree
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let failing: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|f| f.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    // One failing case per bad kind; the welcome passed.
    for kind in [
        "scrape.progress",
        "case.deleted",
        "system.alert",
        "scrape.paused",
        "(non-json)",
        "(binary)",
    ] {
        assert!(
            failing.contains(&format!("in {kind}").as_str()),
            "{kind}: {failing:?}"
        );
    }
    assert_eq!(failing.len(), 6, "{failing:?}");
    assert!(cases
        .iter()
        .any(|c| c.attribute("name") == Some("in welcome")));
    let failures = root
        .attribute("failures")
        .unwrap()
        .parse::<usize>()
        .unwrap();
    assert_eq!(failures, 6);
    let body = tree
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(
        body.text().unwrap_or("").contains("vu="),
        "samples travel with the failure"
    );
}

/// Acks every subscribe for another room, and answers every ping with another id.
async fn confused(mut ws: Conn, sent: Arc<AtomicU64>) {
    let _ = send(&mut ws, &sent, welcome()).await;
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
        let reply = match v["type"].as_str() {
            Some("subscribe") => json!({"type": "subscribe", "timestamp": TS, "data": {
                "client_id": CLIENT_ID,
                "room": "cases:all", "status": "subscribed"}}),
            Some("ping") => json!({"type": "pong", "timestamp": TS,
                "id": v["id"].as_u64().unwrap_or(0) + 1000,
                "data": {"client_id": CLIENT_ID}}),
            _ => continue,
        };
        let _ = send(&mut ws, &sent, reply.to_string()).await;
    }
}

#[test]
fn replies_that_answer_no_request_are_violations() {
    let srv = TestServer::start(confused);
    let yaml = r#"
name: pairing
protocol: kite
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - send: { type: subscribe, room: "scrape:all" }
      - expect: { kind: subscribe, within: 2s }
      - send: { type: ping, id: 7 }
      - expect: { kind: pong, within: 2s }
      - close: 1000
"#;
    let (code, doc) = run(srv.url(), yaml, false);
    assert_eq!(code, 1);
    let groups = doc["violations"]["groups"].as_array().unwrap();
    let count = |kind: &str, pointer: &str| violations(&doc, kind, "reply_mismatch", Some(pointer));
    let iterations = doc["load"]["iterations_ok"].as_u64().unwrap();
    assert!(iterations >= 1);
    assert_eq!(count("subscribe", "/data/room"), iterations, "{groups:#?}");
    assert_eq!(count("pong", "/id"), iterations, "{groups:#?}");
    assert_eq!(
        doc["violations"]["total"].as_u64().unwrap(),
        2 * iterations,
        "{groups:#?}"
    );
}

/// Acks subscribes and unsubscribes faithfully, but pushes a cases event nobody asked for
/// and keeps sending scrape events after acknowledging the unsubscribe.
async fn leaky(mut ws: Conn, sent: Arc<AtomicU64>) {
    let _ = send(&mut ws, &sent, welcome()).await;
    let progress = json!({"type": "scrape.progress", "timestamp": TS, "data":
        {"job_id": "j1", "current": 1, "total": 2, "percent": 50.0, "message": "m"}});
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
        let (kind, status) = match v["type"].as_str() {
            Some("subscribe") => ("subscribe", "subscribed"),
            Some("unsubscribe") => ("unsubscribe", "unsubscribed"),
            _ => continue,
        };
        let ack = json!({"type": kind, "timestamp": TS,
            "data": {"client_id": CLIENT_ID, "room": v["room"], "status": status}});
        let _ = send(&mut ws, &sent, ack.to_string()).await;
        let extra = if kind == "subscribe" {
            // Subscribed to scrape:all: a scrape event is fine, a cases event is not.
            vec![
                progress.clone(),
                json!({"type": "case.deleted", "timestamp": TS, "data": {"case_id": "c9"}}),
            ]
        } else {
            vec![progress.clone()] // after the unsubscribe was acknowledged
        };
        for e in extra {
            let _ = send(&mut ws, &sent, e.to_string()).await;
        }
    }
}

#[test]
fn events_for_rooms_not_held_are_violations() {
    let srv = TestServer::start(leaky);
    let yaml = r#"
name: rooms
protocol: kite
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - send: { type: subscribe, room: "scrape:all" }
      - expect: { kind: case.deleted, within: 2s }
      - send: { type: unsubscribe, room: "scrape:all" }
      - expect: { kind: scrape.progress, within: 2s }
      - close: 1000
"#;
    let (code, doc) = run(srv.url(), yaml, false);
    assert_eq!(code, 1);
    let groups = doc["violations"]["groups"].as_array().unwrap();
    let count = |kind: &str| violations(&doc, kind, "unsubscribed", None);
    let iterations = doc["load"]["iterations_ok"].as_u64().unwrap();
    assert!(iterations >= 1);
    assert_eq!(count("case.deleted"), iterations, "{groups:#?}");
    // The first scrape event was for a held room; the one after the unsubscribe ack was not.
    assert_eq!(count("scrape.progress"), iterations, "{groups:#?}");
    assert_eq!(
        doc["violations"]["total"].as_u64().unwrap(),
        2 * iterations,
        "{groups:#?}"
    );
}

/// A Kite server written to kite.md that reports a bad request its own way: an `error` frame
/// with `data.code` (kite.md defines no error frame: squall-server's has `data.message` only),
/// and a welcome with a field the document does not list; then, once the client subscribed
/// to scrape:all, one frame that breaks the document itself (a progress count as a string).
async fn own_ways(mut ws: Conn, sent: Arc<AtomicU64>) {
    let mut welcome: Value = serde_json::from_str(&welcome()).unwrap();
    welcome["data"]["server"] = json!("kite-2.1");
    let _ = send(&mut ws, &sent, welcome.to_string()).await;
    // The client's subscribe to scrape:all (not acknowledged: not what this test is about).
    let _ = ws.next().await;
    let _ = send(
        &mut ws,
        &sent,
        json!({"type": "error", "timestamp": TS,
            "data": {"code": "INVALID_ROOM", "message": "unknown room family"}})
        .to_string(),
    )
    .await;
    let _ = send(
        &mut ws,
        &sent,
        json!({"type": "scrape.progress", "timestamp": TS, "data":
            {"job_id": "j1", "current": "45", "total": 100, "percent": 45.0, "message": "m"}})
        .to_string(),
    )
    .await;
    while let Some(Ok(_)) = ws.next().await {}
}

const LISTEN: &str = r#"
name: own-ways
protocol: kite
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - send: { type: subscribe, room: "scrape:all" }
      - expect: { kind: scrape.progress, within: 2s }
      - close: 1000
"#;

fn run_conformance(target: String, conformance: Conformance) -> (u8, Value, String) {
    run_args(
        target,
        LISTEN,
        RunArgs {
            conformance,
            ..RunArgs::default()
        },
    )
}

#[test]
fn each_violation_says_whose_rule_it_broke_and_document_conformance_lets_decisions_pass() {
    let srv = TestServer::start(own_ways);
    let (code, doc, xml) = run_conformance(srv.url(), Conformance::Strict);
    assert_eq!(code, 1);
    assert_eq!(doc["meta"]["conformance"], "strict");
    let source = |kind: &str, pointer: &str| -> String {
        let g = doc["violations"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["kind"] == kind && g["pointer"] == pointer)
            .unwrap_or_else(|| panic!("no {kind} at {pointer}: {}", doc["violations"]));
        g["source"].as_str().unwrap().to_string()
    };
    assert_eq!(source("welcome", "/data"), "squall");
    assert_eq!(source("error", "/data"), "squall");
    assert_eq!(source("scrape.progress", "/data/current"), "document");
    assert!(
        xml.contains("additionalProperties at /data (breaks squall&apos;s decision)"),
        "{xml}"
    );
    assert!(
        xml.contains("type at /data/current (breaks document)"),
        "{xml}"
    );

    let (code, doc, _) = run_conformance(srv.url(), Conformance::Document);
    assert_eq!(code, 1, "the document's own rule still fails the run");
    assert_eq!(doc["meta"]["conformance"], "document");
    let groups = doc["violations"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (
            &groups[0]["kind"],
            &groups[0]["pointer"],
            &groups[0]["source"]
        ),
        (
            &json!("scrape.progress"),
            &json!("/data/current"),
            &json!("document")
        )
    );
}
