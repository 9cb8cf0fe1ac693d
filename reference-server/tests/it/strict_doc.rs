//! `--strict-doc` (`Config::strict_doc`): every reference-server extension is off, for all
//! five protocols, while what the documents define (replies, events) still flows. The
//! inventory these tests follow is `docs/strict-doc.md`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use squall_server::{spawn, Config, ServerHandle};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

/// A server with `--strict-doc` (or without, for the contrasts) and `events` per second.
fn server(strict_doc: bool, events_per_sec: f64) -> ServerHandle {
    spawn(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        events_per_sec,
        threads: 1,
        strict_doc,
        ..Config::default()
    })
    .expect("server starts")
}

async fn connect(server: &ServerHandle, path: &str) -> Ws {
    let url = format!("ws://{}{path}", server.addr());
    let (ws, _) = timeout(WAIT, connect_async(url)).await.unwrap().unwrap();
    ws
}

/// The next text frame as JSON, failing after a timeout or on a close.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = timeout(WAIT, ws.next()).await.expect("a frame within 5 s");
        match msg.expect("stream open").expect("no error") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON frame"),
            Message::Close(c) => panic!("unexpected close {c:?}"),
            _ => continue,
        }
    }
}

/// The next frame of kind `kind` (at /type), skipping others (events, pings).
async fn recv_kind(ws: &mut Ws, kind: &str) -> Value {
    for _ in 0..1000 {
        let v = recv(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
    panic!("no {kind} frame in 1000");
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

/// Sends `frame` and returns the next frame of kind `kind`.
async fn ask(ws: &mut Ws, frame: Value, kind: &str) -> Value {
    send(ws, frame).await;
    recv_kind(ws, kind).await
}

/// Asserts `frame` has none of the top-level members `keys` (the extensions).
fn lacks(frame: &Value, keys: &[&str]) {
    for key in keys {
        assert!(frame.get(key).is_none(), "{key} in {frame}");
    }
}

/// `POST /publish`'s status line.
async fn publish_status(server: &ServerHandle) -> String {
    let body = r#"{"type":"queue.update","data":{}}"#;
    let request = format!(
        "POST /publish?protocol=kite&room=queue:all HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = timeout(WAIT, tcp.read_to_end(&mut buf)).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn publish_is_not_served() {
    let plain = server(false, 0.0);
    assert!(publish_status(&plain).await.contains("200"));
    let strict = server(true, 0.0);
    let status = publish_status(&strict).await;
    assert!(status.contains("404"), "{status}");
}

#[tokio::test]
async fn kite_echoes_no_ids_sends_no_errors_or_unsubscribe_acks_and_no_seq() {
    let server = server(true, 50.0);
    let mut ws = connect(&server, "/kite/ws?client_id=a").await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    lacks(
        &ask(&mut ws, json!({"type": "ping", "id": 7}), "pong").await,
        &["id"],
    );
    let subscribe = json!({"type": "subscribe", "room": "queue:all", "id": 8});
    let ack = ask(&mut ws, subscribe, "subscribe").await;
    assert_eq!(ack["data"]["room"], "queue:all");
    lacks(&ack, &["id"]);
    let event = recv_kind(&mut ws, "queue.update").await;
    lacks(&event, &["seq"]);
    assert!(event["timestamp"].is_string());
    // Neither an unknown type, bad JSON, an unknown room, a binary frame nor an unsubscribe
    // gets a frame back: the next non-event frame is the pong of the ping sent after them.
    send(&mut ws, json!({"type": "search", "id": 9})).await;
    ws.send(Message::text("not json")).await.unwrap();
    send(&mut ws, json!({"type": "subscribe", "room": "nosuch:x"})).await;
    ws.send(Message::binary(vec![1u8, 2])).await.unwrap();
    send(&mut ws, json!({"type": "unsubscribe", "room": "queue:all"})).await;
    send(&mut ws, json!({"type": "ping"})).await;
    loop {
        let v = recv(&mut ws).await;
        if v["type"] != "queue.update" {
            assert_eq!(v["type"], "pong", "{v}");
            break;
        }
    }
}

#[tokio::test]
async fn kite_per_client_limit_ignores_the_client_id_parameter() {
    let server = server(true, 0.0);
    // Without --strict-doc the 11th connection sharing a client_id gets 429.
    let mut held = Vec::new();
    for _ in 0..11 {
        let mut ws = connect(&server, "/kite/ws?client_id=shared").await;
        assert_eq!(recv(&mut ws).await["type"], "welcome");
        held.push(ws);
    }
}

#[tokio::test]
async fn kecs_events_carry_no_seq_or_room_and_only_documented_metrics_exist() {
    let server = server(true, 50.0);
    let mut ws = connect(&server, "/kecs/ws?token=t").await;
    assert_eq!(recv(&mut ws).await["type"], "connected");
    send(
        &mut ws,
        json!({"id": "s1", "type": "subscribe", "action": "events",
            "payload": {"eventTypes": ["task"], "clusters": ["production"]}}),
    )
    .await;
    assert_eq!(recv_kind(&mut ws, "subscribe_ack").await["id"], "s1");
    let event = recv_kind(&mut ws, "event").await;
    lacks(&event, &["seq", "room"]);
    assert_eq!(event["payload"]["eventType"], "task");
    let arn = "arn:aws:ecs:us-east-1:000000000000:service/production/web-api";
    for (metric, kind) in [
        ("MemoryUtilization", "metrics"),
        ("RunningTaskCount", "error"),
    ] {
        send(
            &mut ws,
            json!({"id": metric, "type": "command", "action": "get_metrics",
                "payload": {"resource": "service", "resourceArn": arn, "metrics": [metric]}}),
        )
        .await;
        let reply = loop {
            let v = recv(&mut ws).await;
            if v["id"] == metric {
                break v;
            }
        };
        assert_eq!(reply["type"], kind, "{reply}");
        if kind == "error" {
            assert_eq!(reply["payload"]["code"], "INVALID_REQUEST");
            assert_eq!(reply["payload"]["details"]["field"], "metrics");
        }
    }
}

#[tokio::test]
async fn kecs_rate_limit_errors_carry_only_the_documents_details() {
    let server = server(true, 0.0);
    let mut ws = connect(&server, "/kecs/ws?token=t").await;
    assert_eq!(recv(&mut ws).await["type"], "connected");
    let frames: Vec<_> = (0..101)
        .map(|_| Ok(Message::text(r#"{"type":"pong"}"#)))
        .collect();
    ws.send_all(&mut futures_util::stream::iter(frames))
        .await
        .unwrap();
    let error = recv_kind(&mut ws, "error").await;
    assert_eq!(error["payload"]["code"], "RATE_LIMIT_EXCEEDED");
    let details = error["payload"]["details"].as_object().unwrap();
    let keys: Vec<_> = details.keys().map(String::as_str).collect();
    assert_eq!(keys, ["reason"], "{error}");
}

#[tokio::test]
async fn newloom_chat_ignores_user_and_chats_and_publishes_no_seq() {
    let server = server(true, 0.0);
    // Plain, `?chats=1` would deny chat 2 and `?user=bob` would name the sender.
    let mut ws = connect(&server, "/newloom/ws/chat/?token=t&user=bob&chats=1").await;
    let post = json!({"type": "message", "content": "hi", "chat_id": 2});
    let msg = ask(&mut ws, post, "message").await;
    assert_eq!(msg["message"]["chat_id"], 2);
    assert_ne!(msg["message"]["user"], "bob");
    lacks(&msg, &["seq"]);
    let typing = json!({"type": "typing", "chat_id": 2, "is_typing": true});
    lacks(&ask(&mut ws, typing, "typing").await, &["seq"]);
}

#[tokio::test]
async fn newloom_streams_ignore_the_streams_parameter_and_carry_no_seq() {
    let server = server(true, 50.0);
    // Plain, a list that is no list of ids is refused with connection_error.
    let mut ws = connect(&server, "/newloom/ws/streams/?token=t&streams=x").await;
    for _ in 0..3 {
        let frame = recv(&mut ws).await;
        assert!(frame["stream_id"].is_u64(), "{frame}");
        lacks(&frame, &["seq"]);
    }
}

#[tokio::test]
async fn hexabase_events_and_log_lines_carry_no_seq() {
    let server = server(true, 50.0);
    let mut ws = connect(&server, "/hexabase/ws").await;
    let auth = json!({"type": "auth", "token": "t"});
    assert_eq!(ask(&mut ws, auth, "auth_result").await["success"], true);
    let subscribe = json!({"type": "subscribe", "id": "s1", "data": {"resource": "workspace",
        "workspace_id": "ws-1", "events": ["status_changed"]}});
    assert_eq!(
        ask(&mut ws, subscribe, "subscribe_result").await["id"],
        "s1"
    );
    lacks(
        &recv_kind(&mut ws, "workspace.status_changed").await,
        &["seq"],
    );
    let logs = json!({"type": "stream_logs", "id": "l1", "data": {"workspace_id": "ws-1",
        "namespace": "frontend", "pod": "api-1", "tail_lines": 2, "follow": false}});
    let line = ask(&mut ws, logs, "log_entry").await;
    assert_eq!(line["data"]["stream_id"], "l1");
    lacks(&line, &["seq"]);
}

#[tokio::test]
async fn covetpy_serves_the_documents_method_only_and_samples_carry_no_seq() {
    let server = server(true, 50.0);
    let mut ws = connect(&server, "/covetpy/ws?token=t").await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    let echo = json!({"type": "rpc_call", "id": "r1", "data": {"method": "echo", "params": {}}});
    let reply = ask(&mut ws, echo, "rpc_error").await;
    assert_eq!(reply["data"]["error"]["code"], "INVALID_MESSAGE_FORMAT");
    let test = json!({"type": "rpc_call", "id": "r2", "data": {"method": "database.test_connection",
        "params": {"connection_id": "db_conn_123"}}});
    assert_eq!(ask(&mut ws, test, "rpc_response").await["id"], "r2");
    let subscribe = json!({"type": "subscribe", "id": "sub_1", "data": {"stream_type": "metrics",
        "resource_id": "db_conn_123", "options": {"batch_interval": 0}}});
    let data = ask(&mut ws, subscribe, "stream_data").await;
    assert_eq!(data["data"]["subscription_id"], "sub_1");
    let sample = &data["data"]["batch"][0];
    assert!(sample["cpu_usage"].is_number(), "{data}");
    lacks(sample, &["seq"]);
}

#[tokio::test]
async fn covetpy_rooms_get_no_generated_events() {
    let server = server(true, 200.0);
    let mut ws = connect(&server, "/covetpy/ws?token=t").await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    let join = json!({"type": "join_room", "id": "j1", "data": {"room_id": "lobby"}});
    ask(&mut ws, join, "room_joined").await;
    // At 200 events/s a plain server sends a room event within 5 ms; the next frame here
    // must be the reply to the call sent 300 ms later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(
        &mut ws,
        json!({"type": "rpc_call", "id": "r1", "data": {"method": "database.test_connection",
            "params": {"connection_id": "db"}}}),
    )
    .await;
    let next = recv(&mut ws).await;
    assert_eq!(next["type"], "rpc_response", "{next}");
}
