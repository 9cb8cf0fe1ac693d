//! The `upload` step against a scripted server that verifies every chunk (base64, SHA-256,
//! index, offset, size, last) and the whole file's SHA-256: plain and acknowledged uploads
//! complete, a corrupt chunk gets CHECKSUM_MISMATCH naming it and nothing after it is sent,
//! throughput and latency land in results, and thresholds decide the exit code.

use std::sync::{Arc, Mutex};

use crate::support::*;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the server saw.
#[derive(Default, Debug)]
struct Log {
    /// Uploads completed: (name, size, whole-file sha256 matched).
    completed: Vec<(String, u64, bool)>,
    /// Chunks refused for a bad checksum: (upload id, index).
    bad_chunks: Vec<(String, u64)>,
    /// Every chunk index received, per upload id.
    chunks: Vec<(String, u64)>,
    /// Protocol mistakes the server found in what the client sent.
    problems: Vec<String>,
}

struct Upload {
    id: String,
    name: String,
    size: u64,
    chunk_size: u64,
    sha256: String,
    ack: bool,
    /// Acks held back: chunk i is acknowledged when chunk i + lag arrives.
    lag: usize,
    held: std::collections::VecDeque<Value>,
    verify: bool,
    next: u64,
    file: Vec<u8>,
}

/// Checks one chunk against the upload; `Err` names the problem.
fn check_chunk(u: &Upload, d: &Value) -> Result<Vec<u8>, String> {
    let index = d["chunk_index"].as_u64().ok_or("no chunk_index")?;
    let total = u.size.div_ceil(u.chunk_size);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(d["data"].as_str().ok_or("no data")?)
        .map_err(|e| format!("base64: {e}"))?;
    let want_len = (u.size - index * u.chunk_size).min(u.chunk_size);
    // `offset`, `size` and `last` are checked when the scenario sends them (CovetPy's
    // file_chunk has no room for them).
    let opt = |key: &str, want: Value| d.get(key).is_none_or(|v| *v == want);
    let checks = [
        (index == u.next, "out of order"),
        (d["total_chunks"] == total, "total_chunks"),
        (bytes.len() as u64 == want_len, "length"),
        (opt("offset", json!(index * u.chunk_size)), "offset"),
        (opt("size", json!(want_len)), "size"),
        (opt("last", json!(index + 1 == total)), "last"),
    ];
    for (ok, what) in checks {
        if !ok {
            return Err(format!("chunk {index}: {what}"));
        }
    }
    Ok(bytes)
}

async fn upload_server(mut ws: Conn, log: Arc<Mutex<Log>>) {
    let mut up: Option<Upload> = None;
    while let Some(Ok(msg)) = ws.next().await {
        let Ok(v) = serde_json::from_str::<Value>(msg.to_text().unwrap_or("")) else {
            continue;
        };
        let reply = match v["type"].as_str() {
            Some("file_upload_start") => {
                let (d, m) = (&v["data"], &v["data"]["metadata"]);
                up = Some(Upload {
                    id: v["id"].as_str().unwrap_or("").into(),
                    name: d["filename"].as_str().unwrap_or("").into(),
                    size: d["size"].as_u64().unwrap_or(0),
                    chunk_size: d["chunk_size"].as_u64().unwrap_or(1),
                    sha256: m["sha256"].as_str().unwrap_or("").into(),
                    ack: m["ack"] == true,
                    lag: m["lag"].as_u64().unwrap_or(0) as usize,
                    held: Default::default(),
                    verify: m["verify"] != false,
                    next: 0,
                    file: Vec::new(),
                });
                None
            }
            Some("file_chunk") => on_chunk(up.as_mut(), &v["data"], &log),
            _ => None,
        };
        for r in reply.into_iter().flatten() {
            if ws.send(Message::text(r.to_string())).await.is_err() {
                return;
            }
        }
    }
}

/// The frames a chunk is answered with.
fn on_chunk(up: Option<&mut Upload>, d: &Value, log: &Mutex<Log>) -> Option<Vec<Value>> {
    let u = up?;
    let mut log = log.lock().unwrap();
    let index = d["chunk_index"].as_u64().unwrap_or(u64::MAX);
    log.chunks.push((u.id.clone(), index));
    if d["upload_id"] != u.id.as_str() {
        log.problems
            .push(format!("chunk for upload {}", d["upload_id"]));
    }
    let bytes = match check_chunk(u, d) {
        Ok(b) => b,
        Err(p) => {
            log.problems.push(p);
            return None;
        }
    };
    if u.verify && hex(&Sha256::digest(&bytes)) != d["checksum"].as_str().unwrap_or("") {
        log.bad_chunks.push((u.id.clone(), index));
        let e = json!({"type": "error", "id": "e1", "data": {"error_code": "CHECKSUM_MISMATCH",
            "error_message": format!("chunk {index}: checksum mismatch"),
            "details": {"chunk_index": index, "upload_id": u.id}}});
        return Some(vec![e]);
    }
    u.file.extend_from_slice(&bytes);
    u.next += 1;
    let mut out = Vec::new();
    if u.ack {
        u.held
            .push_back(json!({"type": "chunk_ack", "upload_id": u.id, "index": index}));
    }
    let done = u.next == u.size.div_ceil(u.chunk_size);
    while u.held.len() > u.lag || (done && !u.held.is_empty()) {
        out.extend(u.held.pop_front());
    }
    if done {
        let whole = hex(&Sha256::digest(&u.file)) == u.sha256;
        if u.file.iter().all(|b| *b == 0) {
            log.problems.push("the file is all zeros".into());
        }
        log.completed.push((u.name.clone(), u.size, whole));
        let status = if whole { "completed" } else { "failed" };
        out.push(json!({"type": "file_upload_complete", "id": "done",
            "data": {"upload_id": u.id, "file_id": "file_1", "url": "https://files.test/file_1",
                "processing_status": status}}));
    }
    Some(out)
}

fn server() -> (TestServer, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    let l = log.clone();
    let srv = TestServer::start(move |ws, _sent| upload_server(ws, l.clone()));
    (srv, log)
}

const START: &str = r#"{ type: file_upload_start, id: "{{upload.id}}", data: { filename: "{{upload.name}}", size: "{{upload.size}}", mimetype: application/octet-stream, chunk_size: "{{upload.chunk_size}}", metadata: { sha256: "{{upload.sha256}}", ack: ACK, verify: VERIFY } } }"#;
const CHUNK: &str = r#"{ type: file_chunk, id: "c-{{chunk.index}}", data: { upload_id: "{{upload.id}}", chunk_index: "{{chunk.index}}", total_chunks: "{{upload.chunks}}", offset: "{{chunk.offset}}", size: "{{chunk.size}}", last: "{{chunk.last}}", data: "{{chunk.base64}}", checksum: "{{chunk.sha256}}" } }"#;
const COMPLETE: &str = r#"{ kind: file_upload_complete, match: { /data/upload_id: "{{upload.id}}", /data/processing_status: completed }, within: 5s }"#;

fn scenario_text(verify: bool) -> String {
    let start = |ack: bool| {
        START
            .replace("ACK", &ack.to_string())
            .replace("VERIFY", &verify.to_string())
    };
    format!(
        r#"
name: uploads
target: ws://127.0.0.1:1/ws
load: {{ rate: 10/s, duration: 100ms, max_vus: 1 }}
behaviours:
  - steps:
      - upload:
          size: 200KiB
          chunk_size: 64KiB
          start: {plain}
          chunk: {CHUNK}
          complete: {COMPLETE}
          metric: up
      - upload:
          size: 100KiB
          chunk_size: 10KiB
          name: "acked-{{{{upload.chunks}}}}.bin"
          start: {acked}
          chunk: {CHUNK}
          chunk_ack: {{ kind: chunk_ack, match: {{ /upload_id: "{{{{upload.id}}}}", /index: "{{{{chunk.index}}}}" }} }}
          in_flight: 3
          complete: {COMPLETE}
          metric: up_acked
      - upload:
          size: 50KiB
          chunk_size: 10KiB
          start: {plain}
          chunk: {CHUNK}
          complete: {COMPLETE}
          corrupt: 2
          expect_error: {{ kind: error, match: {{ /data/error_code: CHECKSUM_MISMATCH, /data/details/chunk_index: "{{{{upload.corrupt}}}}", /data/details/upload_id: "{{{{upload.id}}}}" }}, within: 500ms }}
          metric: up_bad
      - close: 1000
thresholds:
  - "upload.up.completed == 1"
  - "upload.up.mbps > 0.01"
  - "upload.up_acked.completed == 1"
  - "upload.up_bad.rejected == 1"
  - "upload.up_bad.failed == 0"
  - "latency.up.p99 < 5s"
  - "errors.count == 0"
"#,
        plain = start(false),
        acked = start(true),
    )
}

#[test]
fn verified_uploads_complete_and_a_corrupt_chunk_gets_its_error() {
    let (srv, log) = server();
    let (done, doc) = run_yaml(&srv.url(), &scenario_text(true));
    let log = log.lock().unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    // Both good uploads arrived whole, with the right sizes and names.
    assert_eq!(log.completed.len(), 2, "{log:?}");
    let (name, size, whole) = &log.completed[0];
    assert_eq!((*size, *whole), (200 * 1024, true));
    let id = name.strip_suffix(".bin").expect("default name is <id>.bin");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    assert_eq!(log.completed[1], ("acked-10.bin".into(), 100 * 1024, true));
    // The corrupt upload: chunks 0, 1 and the bad 2, and nothing after it.
    assert_eq!(log.bad_chunks.len(), 1);
    let bad_id = &log.bad_chunks[0].0;
    assert_eq!(log.bad_chunks[0].1, 2);
    let sent: Vec<u64> = log
        .chunks
        .iter()
        .filter(|(u, _)| u == bad_id)
        .map(|c| c.1)
        .collect();
    assert_eq!(sent, vec![0, 1, 2]);

    let ups = &doc["uploads"];
    assert_eq!(ups["up"]["completed"], 1, "{ups}");
    assert_eq!(ups["up"]["bytes"], 200 * 1024);
    assert!(ups["up"]["mbps"].as_f64().unwrap() > 0.0);
    assert_eq!(ups["up_acked"]["completed"], 1);
    assert_eq!(
        (&ups["up_bad"]["rejected"], &ups["up_bad"]["completed"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(ups["up_bad"]["mbps"], Value::Null);
    for m in ["up", "up_acked", "up_bad"] {
        assert_eq!(doc["metrics"][m]["latency"]["count"], 1, "{m}");
    }
    assert!(
        done.results.thresholds.iter().all(|t| t.pass),
        "{:#?}",
        done.results.thresholds
    );
    assert_eq!(done.exit_code(), 0);
    let text = squall::report::render_summary(&done.results);
    assert!(
        text.contains("upload up   1 started, 1 completed"),
        "{text}"
    );
}

#[test]
fn a_server_that_ignores_checksums_fails_the_corrupt_upload() {
    let (srv, log) = server();
    let (done, doc) = run_yaml(&srv.url(), &scenario_text(false));
    assert!(log.lock().unwrap().bad_chunks.is_empty());
    // The server waits for chunks 3 and 4, which never come: the error never comes either.
    let bad = &doc["uploads"]["up_bad"];
    assert_eq!(
        (&bad["rejected"], &bad["failed"]),
        (&json!(0), &json!(1)),
        "{bad}"
    );
    assert_eq!(doc["counters"]["errors_by_kind"]["timeout"], 1);
    let failed: Vec<&str> = done
        .results
        .thresholds
        .iter()
        .filter(|t| !t.pass)
        .map(|t| t.expr.as_str())
        .collect();
    assert_eq!(
        failed,
        vec![
            "upload.up_bad.rejected == 1",
            "upload.up_bad.failed == 0",
            "errors.count == 0"
        ]
    );
    assert_eq!(done.exit_code(), 1);
}

/// An acknowledged upload against a server that holds each ack back until two more chunks
/// have arrived.
fn lagging(in_flight: u32) -> String {
    let start = START
        .replace("ACK", "true, lag: 2")
        .replace("VERIFY", "true");
    format!(
        r#"
name: window
target: ws://127.0.0.1:1/ws
load: {{ rate: 10/s, duration: 100ms, max_vus: 1 }}
behaviours:
  - steps:
      - upload:
          size: 10KiB
          chunk_size: 1KiB
          start: {start}
          chunk: {CHUNK}
          chunk_ack: {{ kind: chunk_ack, match: {{ /index: "{{{{chunk.index}}}}" }}, within: 300ms }}
          in_flight: {in_flight}
          complete: {COMPLETE}
"#
    )
}

#[test]
fn the_in_flight_window_waits_for_acknowledgements() {
    let (srv, log) = server();
    let (done, doc) = run_yaml(&srv.url(), &lagging(3));
    assert_eq!(
        doc["uploads"]["upload"]["completed"], 1,
        "{}",
        doc["uploads"]
    );
    assert_eq!(done.exit_code(), 0);
    assert_eq!(log.lock().unwrap().chunks.len(), 10);

    // Two unacknowledged chunks fill the window; the server wants a third before it acks.
    let (srv, log) = server();
    let (_, doc) = run_yaml(&srv.url(), &lagging(2));
    let sent: Vec<u64> = log.lock().unwrap().chunks.iter().map(|c| c.1).collect();
    assert_eq!(sent, vec![0, 1], "the window held the third chunk back");
    assert_eq!(doc["uploads"]["upload"]["failed"], 1);
    assert_eq!(doc["counters"]["errors_by_kind"]["timeout"], 1);
}

#[test]
fn throughput_thresholds_fail_when_too_slow() {
    let (srv, _log) = server();
    let text = scenario_text(true).replace("upload.up.mbps > 0.01", "upload.up.mbps > 100000");
    let (done, _) = run_yaml(&srv.url(), &text);
    let t = &done.results.thresholds[1];
    assert!(!t.pass && t.unit == "mb_per_s", "{t:?}");
    assert!(t.message.contains("MB/s"), "{}", t.message);
    assert_eq!(done.exit_code(), 1);
}

/// CovetPy's file_chunk: no offset, size or last; an id of its own per chunk.
const COVETPY_CHUNK: &str = r#"{ type: file_chunk, id: "{{upload.id}}-{{chunk.index}}", data: { upload_id: "{{upload.id}}", chunk_index: "{{chunk.index}}", total_chunks: "{{upload.chunks}}", data: "{{chunk.base64}}", checksum: "{{chunk.sha256}}" } }"#;

#[test]
fn a_covetpy_shaped_upload_meets_the_covetpy_schemas() {
    let (srv, log) = server();
    let start = START.replace("ACK", "false").replace("VERIFY", "true");
    let text = format!(
        r#"
name: covetpy-upload
protocol: covetpy
target: ws://127.0.0.1:1/ws
load: {{ rate: 10/s, duration: 100ms, max_vus: 1 }}
behaviours:
  - steps:
      - upload: {{ size: 130KiB, chunk_size: 64KiB, start: {start}, chunk: {COVETPY_CHUNK}, complete: {COMPLETE} }}
      - upload:
          size: 64KiB
          chunk_size: 16KiB
          start: {start}
          chunk: {COVETPY_CHUNK}
          complete: {COMPLETE}
          corrupt: 1
          expect_error: {{ kind: error, match: {{ /data/error_code: CHECKSUM_MISMATCH, /data/details/chunk_index: "{{{{upload.corrupt}}}}" }} }}
          metric: corrupt
thresholds:
  - "violations == 0"
  - "upload.upload.completed == 1"
  - "upload.corrupt.rejected == 1"
"#
    );
    let (done, doc) = run_yaml(&srv.url(), &text);
    assert!(log.lock().unwrap().problems.is_empty());
    let v = &doc["violations"];
    // Every frame both ways was checked: 2 starts, 3 + 2 chunks, a complete, an error.
    assert_eq!((&v["checked"], &v["total"]), (&json!(9), &json!(0)), "{v}");
    assert!(
        done.results.thresholds.iter().all(|t| t.pass),
        "{:#?}",
        done.results.thresholds
    );
    assert_eq!(done.exit_code(), 0);
}
