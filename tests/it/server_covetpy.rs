//! squall-server's CovetPy protocol end to end over loopback sockets: every documented
//! exchange, every limit and auth failure, room events; every frame the server sends is
//! checked against schemas/covetpy/ (and every well-formed frame the test sends, too).

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use squall_server::{Config, Limits, Profile as ServerProfile, ServerHandle};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, Checked};

/// A server on 127.0.0.1:0 with two threads and no generated events unless `tweak` says.
fn server(tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    support::reference_server(|config| {
        config.threads = 2;
        config.events_per_sec = 0.0;
        tweak(config);
    })
}

/// A server without rate limits, for the exchanges that send many frames.
fn unlimited() -> ServerHandle {
    server(|c| {
        c.limits = Limits {
            rate: false,
            subscriptions: false,
            per_client: true,
        }
    })
}

crate::checked_client!(Client);

impl Client {
    /// Connects to `path?query` without reading anything.
    async fn raw(server: &ServerHandle, path_query: &str) -> Client {
        Client(Checked::connect(server.addr(), path_query, support::profile("covetpy")).await)
    }

    /// Connects with a token and reads the connection_ack.
    async fn new(server: &ServerHandle) -> Client {
        let mut c = Client::raw(server, "/covetpy/ws?token=t0k3n").await;
        assert_eq!(c.recv().await["type"], "connection_ack");
        c
    }

    /// The next frame of `kind`, checking and skipping others (heartbeats, events).
    async fn recv_kind(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    async fn call(&mut self, id: &str, method: &str, params: Value) -> Value {
        let frame =
            json!({"type": "rpc_call", "id": id, "data": {"method": method, "params": params}});
        self.send(frame).await;
        self.recv().await
    }
}

/// `error_message` of an error frame.
fn message(frame: &Value) -> &str {
    frame["data"]["error_message"].as_str().unwrap_or("")
}

fn code(frame: &Value) -> &str {
    frame["data"]["error_code"]
        .as_str()
        .or(frame["data"]["error"]["code"].as_str())
        .unwrap_or("")
}

/// One HTTP request on its own connection; the whole response.
async fn http(server: &ServerHandle, request: &str) -> String {
    support::http_exchange(server.addr(), request).await
}

async fn metrics(server: &ServerHandle) -> String {
    support::metrics_text(server.addr()).await
}

#[tokio::test]
async fn connection_ack_on_both_paths_and_auth_failures() {
    let server = server(|c| c.profile = ServerProfile::Covetpy);
    for path in ["/ws?token=a", "/covetpy/ws?api_key=k"] {
        let mut c = Client::raw(&server, path).await;
        let ack = c.recv().await;
        assert_eq!(ack["type"], "connection_ack");
        assert_eq!(ack["data"]["heartbeat_interval"], 30_000);
        assert_eq!(ack["timestamp"].as_str().unwrap().len(), 27, "microseconds");
    }
    let mut c = Client::raw(&server, "/covetpy/ws").await;
    let err = c.recv().await;
    assert_eq!(code(&err), "AUTH_FAILED");
    assert_eq!(c.closed().await.unwrap().code, CloseCode::Policy);

    let server = self::server(|c| c.auth_token = Some("s3cret".into()));
    let mut c = Client::raw(&server, "/covetpy/ws?token=wrong").await;
    assert_eq!(code(&c.recv().await), "AUTH_FAILED");
    assert_eq!(c.closed().await.unwrap().code, CloseCode::Policy);
    let mut c = Client::raw(&server, "/covetpy/ws?api_key=s3cret").await;
    assert_eq!(c.recv().await["type"], "connection_ack");
    assert!(metrics(&server)
        .await
        .contains(r#"reason="auth_failed"} 1"#));
}

#[tokio::test]
async fn rpc_methods_and_a_caught_panic() {
    let server = unlimited();
    let mut c = Client::new(&server).await;
    let r = c
        .call("rpc_1", "echo", json!({"a": [1, "two"], "b": {"c": null}}))
        .await;
    assert_eq!(
        (r["type"].as_str(), r["id"].as_str()),
        (Some("rpc_response"), Some("rpc_1"))
    );
    assert_eq!(
        r["data"]["result"],
        json!({"a": [1, "two"], "b": {"c": null}})
    );
    let r = c
        .call(
            "rpc_2",
            "database.test_connection",
            json!({"connection_id": "db_conn_123"}),
        )
        .await;
    assert_eq!(
        r["data"]["result"]["connection_info"]["database"],
        "production"
    );
    let r = c
        .call(
            "rpc_3",
            "database.test_connection",
            json!({"connection_id": "fail_db"}),
        )
        .await;
    assert_eq!(code(&r), "CONNECTION_FAILED");
    let r = c.call("rpc_4", "no.such_method", json!({})).await;
    assert_eq!(
        (r["type"].as_str(), code(&r)),
        (Some("rpc_error"), "METHOD_NOT_FOUND")
    );
    // sleep answers later without blocking the connection: the echo sent after it comes first.
    c.send(json!({"type": "rpc_call", "id": "slow", "data": {"method": "sleep", "params": {"ms": 150}}})).await;
    assert_eq!(c.call("fast", "echo", json!({})).await["id"], "fast");
    let r = c.recv().await;
    assert_eq!(
        (r["id"].as_str(), &r["data"]["result"]["slept_ms"]),
        (Some("slow"), &json!(150))
    );
    let call = json!({"type": "rpc_call", "id": "late", "data": {"method": "sleep", "params": {"ms": 5000}, "timeout": 50}});
    c.send(call).await;
    let r = c.recv().await;
    assert_eq!(
        (code(&r), r["data"]["original_message_id"].as_str()),
        ("RPC_TIMEOUT", Some("late"))
    );
    let params = json!({"notification_type": "info", "title": "Hello", "message": "from the test"});
    assert_eq!(
        c.call("n", "notification.send", params).await["data"]["result"]["sent"],
        true
    );
    assert_eq!(c.recv().await["data"]["title"], "Hello");

    let r = c.call("boom", "debug.panic", json!({})).await;
    assert_eq!(
        (r["type"].as_str(), code(&r)),
        (Some("rpc_error"), "INTERNAL_ERROR")
    );
    assert_eq!(
        c.call("after", "echo", json!({"ok": true})).await["data"]["result"]["ok"],
        true
    );
    let mut other = Client::new(&server).await;
    assert_eq!(
        other.call("x", "echo", json!({})).await["type"],
        "rpc_response"
    );
    assert!(metrics(&server)
        .await
        .contains(r#"reason="handler_panic"} 1"#));
    // Limits off: far more than 50 calls and 100 messages a minute.
    for i in 0..120 {
        assert_eq!(
            c.call(&format!("e{i}"), "echo", json!({})).await["type"],
            "rpc_response"
        );
    }
}

#[tokio::test]
async fn rooms_and_publish_with_sequence_numbers() {
    let server = unlimited();
    let (mut a, mut b, mut publisher) = (
        Client::new(&server).await,
        Client::new(&server).await,
        Client::new(&server).await,
    );
    let join = json!({"type": "join_room", "id": "jr_1", "data": {"room_id": "project_123",
        "options": {"subscribe_to_metrics": true, "filter": {"event_types": ["data_update"]}}}});
    a.send(join.clone()).await;
    assert_eq!(a.recv().await["data"]["member_count"], 1);
    b.send(join).await;
    let joined = b.recv().await;
    assert_eq!(
        (joined["type"].as_str(), &joined["data"]["member_count"]),
        (Some("room_joined"), &json!(2))
    );
    for n in 1..=3u64 {
        let params = json!({"room": "project_123", "data": {"n": n}});
        let r = publisher
            .call(&format!("p{n}"), "room.publish", params)
            .await;
        assert_eq!(
            r["data"]["result"],
            json!({"room_id": "project_123", "member_count": 2, "seq": n})
        );
        for member in [&mut a, &mut b] {
            let event = member.recv().await;
            let sample = &event["data"]["batch"][0];
            assert_eq!(
                (sample["seq"].as_u64(), &sample["data"]["n"]),
                (Some(n), &json!(n))
            );
            assert_eq!(event["data"]["resource_id"], "project_123");
        }
    }
    // The admin endpoint stamps seq and send time into the one sample of the batch.
    let body = json!({"type": "stream_data", "id": "pub_1", "data": {"subscription_id": "project_123",
        "stream_type": "events", "resource_id": "project_123",
        "batch": [{"room_id": "project_123", "event_type": "data_update", "data": {"via": "http"}}]}})
    .to_string();
    let request = format!(
        "POST /publish?protocol=covetpy&room=project_123 HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = http(&server, &request).await;
    assert!(
        reply.contains(r#""seq":4"#) && reply.contains(r#""subscribers":2"#),
        "{reply}"
    );
    for member in [&mut a, &mut b] {
        let sample = member.recv().await["data"]["batch"][0].clone();
        assert_eq!(
            (sample["seq"].as_u64(), &sample["data"]["via"]),
            (Some(4), &json!("http"))
        );
        assert_eq!(sample["timestamp"].as_str().unwrap().len(), 27);
    }
    a.send(json!({"type": "leave_room", "id": "lr_1", "data": {"room_id": "project_123"}}))
        .await;
    // leave_room has no reply: a round trip on the same connection shows it was handled.
    assert_eq!(a.call("sync", "echo", json!({})).await["id"], "sync");
    let r = publisher
        .call("p5", "room.publish", json!({"room": "project_123"}))
        .await;
    assert_eq!(r["data"]["result"]["member_count"], 1);
    assert_eq!(b.recv().await["data"]["batch"][0]["seq"], 5);
    a.send(json!({"type": "leave_room", "id": "lr_2", "data": {"room_id": "project_123"}}))
        .await;
    assert_eq!(code(&a.recv().await), "ROOM_NOT_FOUND");
    // The subscriptions limit is off here: more than 50 rooms.
    for i in 0..60 {
        a.send(json!({"type": "join_room", "id": format!("j{i}"), "data": {"room_id": format!("r{i}")}})).await;
        assert_eq!(a.recv().await["type"], "room_joined");
    }
}

#[tokio::test]
async fn generated_room_events_arrive_in_sequence() {
    let server = server(|c| c.events_per_sec = 200.0);
    let mut members = [Client::new(&server).await, Client::new(&server).await];
    for m in &mut members {
        m.send(json!({"type": "join_room", "id": "jr", "data": {"room_id": "lobby"}}))
            .await;
        m.recv_kind("room_joined").await;
    }
    let mut seen = [Vec::new(), Vec::new()];
    for (m, seen) in members.iter_mut().zip(&mut seen) {
        while seen.len() < 20 {
            let event = m.recv_kind("stream_data").await;
            let sample = &event["data"]["batch"][0];
            assert_eq!(sample["room_id"], "lobby");
            assert!(
                ["data_update", "user_activity"].contains(&sample["event_type"].as_str().unwrap())
            );
            seen.push(sample["seq"].as_u64().unwrap());
        }
        assert!(
            seen.windows(2).all(|w| w[1] == w[0] + 1),
            "no gaps, no reordering: {seen:?}"
        );
    }
    // The second member joined later, so it may start later; from there the numbers agree.
    let overlap = seen[0].iter().filter(|s| seen[1].contains(s)).count();
    assert!(overlap > 0, "both members saw the same events: {seen:?}");
}

#[tokio::test]
async fn streams_are_batched_by_buffer_size_and_interval() {
    let server = server(|c| {
        c.events_per_sec = 200.0;
        c.heartbeat = Some(Duration::from_millis(100));
    });
    let mut c = Client::new(&server).await;
    assert_eq!(c.recv_kind("heartbeat").await["data"]["sequence"], 1);
    let sub = |id: &str, kind: &str, options: Value| {
        json!({"type": "subscribe", "id": id,
        "data": {"stream_type": kind, "resource_id": "db_conn_123", "options": options,
                 "filters": {"min_severity": "error", "tags": ["database"]}}})
    };
    c.send(sub(
        "sub_full",
        "metrics",
        json!({"buffer_size": 5, "batch_interval": 60000}),
    ))
    .await;
    for _ in 0..3 {
        let batch = c.recv_kind("stream_data").await;
        assert_eq!(batch["data"]["subscription_id"], "sub_full");
        assert_eq!(
            batch["data"]["batch"].as_array().unwrap().len(),
            5,
            "flushed when full"
        );
    }
    c.send(json!({"type": "unsubscribe", "id": "u1", "data": {"subscription_id": "sub_full"}}))
        .await;
    c.send(sub(
        "sub_timed",
        "logs",
        json!({"buffer_size": 1000, "batch_interval": 100}),
    ))
    .await;
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        let batch = c.recv_kind("stream_data").await;
        if batch["data"]["subscription_id"] == "sub_full" {
            continue; // sent before the unsubscribe arrived
        }
        let samples = batch["data"]["batch"].as_array().unwrap();
        assert!(
            samples.len() < 1000,
            "flushed by the interval, not the buffer"
        );
        assert!(samples
            .iter()
            .all(|s| ["error", "critical"].contains(&s["level"].as_str().unwrap())));
        seqs.push(samples[0]["seq"].as_u64().unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[1] > w[0]));
    for (kind, id) in [("events", "s_e"), ("database_changes", "s_d")] {
        c.send(sub(id, kind, json!({"buffer_size": 2}))).await;
        loop {
            let batch = c.recv_kind("stream_data").await;
            if batch["data"]["stream_type"] == kind {
                break;
            }
        }
    }
}

/// A file_chunk frame for `bytes`.
fn chunk(upload: &str, index: u64, total: u64, bytes: &[u8]) -> Value {
    json!({"type": "file_chunk", "id": format!("chunk_{index}"), "data": {"upload_id": upload,
        "chunk_index": index, "total_chunks": total,
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
        "checksum": hex(&Sha256::digest(bytes))}})
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn upload_start(id: &str, size: usize, chunk_size: usize) -> Value {
    json!({"type": "file_upload_start", "id": id, "data": {"filename": "data.csv", "size": size,
        "mimetype": "text/csv", "chunk_size": chunk_size, "metadata": {"project_id": "proj_123"}}})
}

#[tokio::test]
async fn chunked_upload_checks_every_chunk() {
    let server = unlimited();
    let mut c = Client::new(&server).await;
    let file: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let parts: Vec<&[u8]> = file.chunks(4096).collect();
    c.send(upload_start("upload_1", file.len(), 4096)).await;
    let mut corrupt = chunk("upload_1", 0, 3, parts[0]);
    corrupt["data"]["checksum"] = json!(hex(&Sha256::digest(parts[1])));
    c.send(corrupt).await;
    let r = c.recv().await;
    assert_eq!(
        (code(&r), &r["data"]["details"]["chunk_index"]),
        ("CHECKSUM_MISMATCH", &json!(0))
    );
    assert!(message(&r).contains("chunk 0"));
    c.send(chunk("upload_1", 1, 3, parts[1])).await;
    assert!(message(&c.recv().await).contains("chunk 0 is missing"));
    c.send(chunk("upload_1", 0, 3, parts[0])).await;
    c.send(chunk("upload_1", 0, 3, parts[0])).await;
    assert!(message(&c.recv().await).starts_with("duplicate chunk 0"));
    c.send(chunk("upload_1", 3, 3, parts[2])).await;
    assert!(message(&c.recv().await).contains("out of range"));
    c.send(chunk("upload_1", 1, 3, &file[4096..8193])).await;
    assert!(message(&c.recv().await).contains("oversize"));
    c.send(chunk("upload_1", 1, 3, parts[1])).await;
    c.send(chunk("upload_1", 2, 3, parts[2])).await;
    let done = c.recv().await;
    assert_eq!(done["type"], "file_upload_complete");
    assert_eq!(
        done["data"]["file_id"],
        format!("file_{}", &hex(&Sha256::digest(&file))[..16])
    );
    c.send(chunk("upload_2", 0, 1, b"x")).await;
    assert_eq!(code(&c.recv().await), "UPLOAD_NOT_FOUND");
    c.send(upload_start("dup", 10, 5)).await;
    c.send(upload_start("dup", 10, 5)).await;
    assert_eq!(c.recv().await["data"]["original_message_id"], "dup");
    let body = metrics(&server).await;
    assert!(
        body.contains(r#"squall_server_upload_bytes_total{protocol="covetpy"} 10000"#),
        "{body}"
    );
    assert!(body.contains(r#"reason="checksum_mismatch"} 1"#));
}

#[tokio::test]
async fn documented_rate_limits_with_the_rate_limit_object() {
    let server = server(|_| {});
    let mut c = Client::new(&server).await;
    for i in 0..50 {
        assert_eq!(
            c.call(&format!("e{i}"), "echo", json!({})).await["type"],
            "rpc_response"
        );
    }
    let r = c.call("e50", "echo", json!({})).await;
    assert_eq!(
        (r["type"].as_str(), code(&r)),
        (Some("rpc_error"), "RATE_LIMITED")
    );
    assert_eq!(
        (&r["rate_limit"]["limit"], &r["rate_limit"]["remaining"]),
        (&json!(50), &json!(0))
    );
    let hb = json!({"type": "heartbeat", "id": "hb_1", "timestamp": "2025-09-10T12:00:00Z", "data": {"sequence": 1}});
    for _ in 51..100 {
        c.send(hb.clone()).await;
    }
    c.send(hb).await;
    let r = c.recv().await;
    assert_eq!(
        (code(&r), &r["rate_limit"]["limit"]),
        ("RATE_LIMITED", &json!(100))
    );

    let mut up = Client::new(&server).await;
    for i in 0..10 {
        up.send(upload_start(&format!("u{i}"), 0, 1024)).await;
        assert_eq!(up.recv().await["type"], "file_upload_complete");
    }
    up.send(upload_start("u10", 0, 1024)).await;
    let r = up.recv().await;
    assert_eq!(
        (code(&r), &r["rate_limit"]["limit"]),
        ("RATE_LIMITED", &json!(10))
    );

    let mut rooms = Client::new(&server).await;
    for i in 0..=50 {
        rooms.send(json!({"type": "join_room", "id": format!("j{i}"), "data": {"room_id": format!("r{i}")}})).await;
        let r = rooms.recv().await;
        assert_eq!(code(&r), if i < 50 { "" } else { "SUBSCRIPTION_FAILED" });
    }
}

#[tokio::test]
async fn bad_input_gets_errors_and_the_server_keeps_serving() {
    let server = unlimited();
    let mut c = Client::new(&server).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bad = [
        Message::text("not json at all"),
        Message::text(deep),
        Message::text(r#"{"type":"teleport","id":"t1","data":{}}"#),
        Message::text(r#"{"type":"join_room","id":"j1","data":{"room_id":7}}"#),
        Message::text(r#"{"type":"rpc_call","id":"r1","data":{}}"#),
        Message::binary(vec![1u8, 2, 3]),
    ];
    for msg in bad {
        c.send_raw(msg).await;
        let r = c.recv().await;
        assert!(
            ["error", "rpc_error"].contains(&r["type"].as_str().unwrap()),
            "{r}"
        );
        assert_eq!(code(&r), "INVALID_MESSAGE_FORMAT");
    }
    assert_eq!(c.call("still", "echo", json!({})).await["id"], "still");
}

#[tokio::test]
async fn shutdown_notifies_then_closes_1001() {
    let server = server(|_| {});
    let mut c = Client::new(&server).await;
    let stopping = std::thread::spawn(move || server.shutdown());
    let note = c.recv().await;
    assert_eq!(
        (note["type"].as_str(), &note["data"]["notification_type"]),
        (Some("notification"), &json!("warning"))
    );
    assert_eq!(c.closed().await.unwrap().code, CloseCode::Away);
    stopping.join().unwrap();
}
