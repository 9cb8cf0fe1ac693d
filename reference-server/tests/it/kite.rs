//! End-to-end tests of the Kite reference server over real loopback sockets.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use squall_server::{spawn, Config, ServerHandle};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

fn server(events_per_sec: f64, tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        events_per_sec,
        threads: 2,
        ..Config::default()
    };
    tweak(&mut config);
    spawn(config).expect("server starts")
}

async fn connect(server: &ServerHandle, path: &str) -> Ws {
    let url = format!("ws://{}{path}", server.addr());
    let (ws, _) = timeout(WAIT, connect_async(url)).await.unwrap().unwrap();
    ws
}

/// The next text frame as JSON, failing after a timeout.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = timeout(WAIT, ws.next()).await.expect("frame within 5 s");
        match msg.expect("stream open").expect("no error") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON frame"),
            Message::Close(c) => panic!("unexpected close {c:?}"),
            _ => continue,
        }
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

/// Connects and consumes the welcome frame.
async fn joined(server: &ServerHandle) -> Ws {
    let mut ws = connect(server, "/ws").await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    ws
}

fn is_timestamp(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 27 && s.ends_with('Z') && &s[10..11] == "T" && &s[19..20] == "."
}

async fn http_get(server: &ServerHandle, request: &str) -> String {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    timeout(WAIT, tcp.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn welcome_on_both_paths() {
    let server = server(0.0, |_| {});
    for path in ["/ws", "/kite/ws"] {
        let mut ws = connect(&server, path).await;
        let welcome = recv(&mut ws).await;
        assert_eq!(welcome["type"], "welcome");
        let id = welcome["data"]["client_id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert!(welcome["data"]["message"].is_string());
        assert!(is_timestamp(&welcome["timestamp"]), "{welcome}");
    }
}

#[tokio::test]
async fn subscribe_is_acknowledged() {
    let server = server(0.0, |_| {});
    let mut ws = connect(&server, "/ws").await;
    let client_id = recv(&mut ws).await["data"]["client_id"].clone();
    send(
        &mut ws,
        json!({"type": "subscribe", "room": "cases:Australia"}),
    )
    .await;
    let ack = recv(&mut ws).await;
    assert_eq!(ack["type"], "subscribe");
    assert_eq!(ack["data"]["room"], "cases:Australia");
    assert_eq!(ack["data"]["status"], "subscribed");
    assert_eq!(ack["data"]["client_id"], client_id);
    assert!(is_timestamp(&ack["timestamp"]));
}

#[tokio::test]
async fn ping_id_is_echoed_in_pong() {
    let server = server(0.0, |_| {});
    let mut ws = joined(&server).await;
    send(
        &mut ws,
        json!({"type": "ping", "id": 7, "data": {"client_id": "x"}}),
    )
    .await;
    let pong = recv(&mut ws).await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["id"], 7);
    assert!(pong["data"]["client_id"].is_string());
    send(&mut ws, json!({"type": "ping"})).await;
    let pong = recv(&mut ws).await;
    assert_eq!(pong["type"], "pong");
    assert!(pong.get("id").is_none());
}

#[tokio::test]
async fn bad_input_gets_error_frames() {
    let server = server(0.0, |_| {});
    let mut ws = joined(&server).await;
    ws.send(Message::text("not json")).await.unwrap();
    send(&mut ws, json!({"type": "dance"})).await;
    send(&mut ws, json!({"type": "subscribe", "room": "planets:all"})).await;
    for _ in 0..3 {
        let err = recv(&mut ws).await;
        assert_eq!(err["type"], "error", "{err}");
        assert!(err["data"]["message"].is_string());
    }
    for i in 0..50 {
        send(
            &mut ws,
            json!({"type": "subscribe", "room": format!("case:{i}")}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["type"], "subscribe");
    }
    send(&mut ws, json!({"type": "subscribe", "room": "case:50"})).await;
    assert_eq!(recv(&mut ws).await["type"], "error");
}

#[tokio::test]
async fn events_flow_until_unsubscribed() {
    let server = server(200.0, |_| {});
    let mut a = joined(&server).await;
    let mut b = joined(&server).await;
    for ws in [&mut a, &mut b] {
        send(ws, json!({"type": "subscribe", "room": "scrape:all"})).await;
        assert_eq!(recv(ws).await["data"]["status"], "subscribed");
    }
    let mut last_seq = 0;
    for _ in 0..5 {
        let event = recv(&mut a).await;
        assert!(
            event["type"].as_str().unwrap().starts_with("scrape."),
            "{event}"
        );
        assert!(event["data"]["job_id"].is_string());
        let seq = event["seq"].as_u64().unwrap();
        assert!(seq > last_seq);
        last_seq = seq;
    }
    send(&mut a, json!({"type": "unsubscribe", "room": "scrape:all"})).await;
    loop {
        let frame = recv(&mut a).await;
        if frame["type"] == "unsubscribe" {
            assert_eq!(frame["data"]["status"], "unsubscribed");
            break;
        }
        last_seq = frame["seq"].as_u64().unwrap();
    }
    // Once b has seen later events, any still meant for a would precede a's pong.
    while recv(&mut b).await["seq"].as_u64().unwrap() < last_seq + 10 {}
    send(&mut a, json!({"type": "ping", "id": 1})).await;
    assert_eq!(recv(&mut a).await["type"], "pong");
    assert!(server.stats().events_published >= last_seq + 10);
}

#[tokio::test]
async fn healthz_and_metrics() {
    let server = server(0.0, |_| {});
    let health = http_get(&server, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
    let _ws = joined(&server).await;
    let metrics = http_get(&server, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for line in [
        "squall_server_connections_active{protocol=\"kite\"} 1",
        "squall_server_connections_active{protocol=\"kecs\"} 0",
        "squall_server_connections_total{protocol=\"kite\"} 1",
        "squall_server_frames_out_total{protocol=\"kite\"} 1",
        "squall_server_frames_in_total{protocol=\"kite\"} 0",
        "# TYPE squall_server_bytes_out_total counter",
        "squall_server_bytes_in_total{protocol=\"kite\"} 0",
        "squall_server_slow_consumers_total{protocol=\"kite\"} 0",
        "squall_server_events_published_total 0",
        "squall_server_subscriptions 0",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
}

#[tokio::test]
async fn http_errors() {
    let server = server(0.0, |_| {});
    let plain = http_get(&server, "GET /ws HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
    let missing = http_get(&server, "GET /nowhere HTTP/1.1\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let huge = format!(
        "GET /ws HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    let huge = http_get(&server, &huge).await;
    assert!(huge.starts_with("HTTP/1.1 431"), "{huge}");
}

#[tokio::test]
async fn over_max_connections_gets_429() {
    let server = server(0.0, |c| c.max_connections = 2);
    let _a = joined(&server).await;
    let _b = joined(&server).await;
    let url = format!("ws://{}/ws", server.addr());
    match timeout(WAIT, connect_async(url)).await.unwrap() {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("expected 429, got {other:?}"),
    }
    // Closing one frees its slot once the server has seen the close.
    drop(_a);
    let deadline = Instant::now() + WAIT;
    while server.stats().connections_active != 1 {
        assert!(Instant::now() < deadline, "slot never released");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _c = joined(&server).await;
}

#[tokio::test]
async fn stats_match_what_the_client_saw() {
    let server = server(0.0, |_| {});
    let mut ws = connect(&server, "/ws").await;
    let (mut sent, mut seen) = (0u64, 0u64);
    let welcome = recv(&mut ws).await.to_string();
    let mut bytes_out = welcome.len() as u64;
    let mut bytes_in = 0;
    for i in 0..10 {
        let ping = json!({"type": "ping", "id": i}).to_string();
        bytes_in += ping.len() as u64;
        ws.send(Message::text(ping)).await.unwrap();
        sent += 1;
        match timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap() {
            Message::Text(t) => bytes_out += t.len() as u64,
            other => panic!("{other:?}"),
        }
        seen += 1;
    }
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = timeout(WAIT, ws.next()).await.unwrap() {}
    let stats = server.stats();
    assert_eq!(stats.frames_in, sent);
    assert_eq!(stats.frames_out, seen + 1);
    assert_eq!(stats.bytes_in, bytes_in);
    assert_eq!(stats.bytes_out, bytes_out);
    assert_eq!(stats.connections_opened, 1);
    // The server notices the close on its own schedule; wait for it, bounded.
    let deadline = Instant::now() + WAIT;
    while server.stats().connections_active != 0 {
        assert!(Instant::now() < deadline, "connection never counted closed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn slow_consumer_is_closed_with_1008() {
    let server = server(20_000.0, |c| c.queue_depth = 8);
    let mut ws = joined(&server).await;
    send(&mut ws, json!({"type": "subscribe", "room": "metrics:all"})).await;
    // Not reading lets the socket buffers fill until the outbox overflows.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.stats().slow_consumers_closed == 0 {
        assert!(Instant::now() < deadline, "never closed as slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        match timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Policy);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected close 1008, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn graceful_shutdown_sends_1001() {
    let server = server(10.0, |_| {});
    let mut ws = joined(&server).await;
    let stopping = tokio::task::spawn_blocking(move || server.shutdown());
    loop {
        match timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Away);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
    // Reading on lets tungstenite answer the close, which ends the server's drain.
    while let Some(Ok(_)) = timeout(WAIT, ws.next()).await.unwrap() {}
    timeout(WAIT, stopping).await.unwrap().unwrap();
}

#[tokio::test]
async fn kill_drops_without_close_frame() {
    let server = server(0.0, |_| {});
    let mut ws = joined(&server).await;
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();
    match timeout(WAIT, ws.next()).await.unwrap() {
        None | Some(Err(_)) => {}
        Some(Ok(msg)) => panic!("expected a dropped socket, got {msg:?}"),
    }
}

#[tokio::test]
async fn oversized_message_is_closed_with_1009() {
    let server = server(0.0, |c| c.max_message_size = Some(1024));
    let mut ws = joined(&server).await;
    let big = json!({"type": "ping", "pad": "x".repeat(2048)});
    send(&mut ws, big).await;
    match timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

async fn status_of(server: &ServerHandle, path: &str) -> u16 {
    let url = format!("ws://{}{path}", server.addr());
    match timeout(WAIT, connect_async(url)).await.unwrap() {
        Ok(_) => 101,
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn auth_when_on_gets_401_without_the_token() {
    let server = server(0.0, |c| c.auth_token = Some("s3cret".into()));
    assert_eq!(status_of(&server, "/kite/ws").await, 401);
    assert_eq!(status_of(&server, "/kite/ws?token=wrong").await, 401);
    assert_eq!(status_of(&server, "/kite/ws?token=s3cret").await, 101);
}

#[tokio::test]
async fn eleventh_connection_of_a_client_gets_429() {
    let server = server(0.0, |_| {});
    let mut open = Vec::new();
    for _ in 0..10 {
        open.push(connect(&server, "/kite/ws?client_id=c1").await);
    }
    assert_eq!(status_of(&server, "/kite/ws?client_id=c1").await, 429);
    assert_eq!(status_of(&server, "/kite/ws?client_id=c2").await, 101);
    let server = self::server(0.0, |c| c.limits.per_client = false);
    let mut open = Vec::new();
    for _ in 0..11 {
        open.push(connect(&server, "/kite/ws?client_id=c1").await);
    }
}

#[tokio::test]
async fn the_101st_message_in_a_second_gets_a_rate_limit_error() {
    let server = server(0.0, |_| {});
    let mut ws = joined(&server).await;
    for id in 0..101 {
        send(&mut ws, json!({"type": "ping", "id": id})).await;
    }
    let mut errors = 0;
    for _ in 0..101 {
        let v = recv(&mut ws).await;
        if v["type"] == "error" {
            assert!(
                v["data"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("rate limit"),
                "{v}"
            );
            errors += 1;
        }
    }
    // The window is one second from the first message: at least the 101st is refused.
    assert!(errors >= 1, "no rate-limit error in 101 messages");
}

#[tokio::test]
async fn named_rooms_get_events_naming_them() {
    let server = server(200.0, |_| {});
    let mut ws = joined(&server).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "room": "scrape:job_42"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "subscribe");
    let mut last = 0;
    for _ in 0..5 {
        let v = recv(&mut ws).await;
        assert_eq!(v["data"]["job_id"], "job_42", "{v}");
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(
            seq,
            last + 1,
            "sequence numbers count up from 1 without gaps"
        );
        last = seq;
    }
}

#[tokio::test]
async fn publish_endpoint_stamps_and_delivers() {
    let server = server(0.0, |_| {});
    let mut ws = joined(&server).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "room": "alerts:system"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "subscribe");
    let event = json!({"type": "system.alert", "data": {"severity": "critical",
        "component": "db", "message": "published by a test"}});
    let body = event.to_string();
    let request = format!(
        "POST /publish?protocol=kite&room=alerts:system HTTP/1.1\r\nHost: t\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = http_get(&server, &request).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let json_reply: Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json_reply["seq"], 1);
    assert_eq!(json_reply["subscribers"], 1);
    let got = recv(&mut ws).await;
    assert_eq!(got["data"]["message"], "published by a test");
    assert_eq!(got["seq"], 1);
    assert!(is_timestamp(&got["timestamp"]), "{got}");
    let bad = http_get(
        &server,
        "POST /publish?room=x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
}

#[tokio::test]
async fn fault_flags_drop_or_duplicate_room_frames() {
    use squall_server::Fault;
    for (fault, want) in [
        (Fault::DropEvents(3), "gap"),
        (Fault::DuplicateEvents(3), "repeat"),
    ] {
        let server = server(200.0, |c| {
            c.fault = Some(fault);
            c.threads = 1;
        });
        let mut ws = joined(&server).await;
        send(&mut ws, json!({"type": "subscribe", "room": "queue:all"})).await;
        assert_eq!(recv(&mut ws).await["type"], "subscribe");
        let mut seqs = Vec::new();
        while seqs.len() < 8 {
            seqs.push(recv(&mut ws).await["seq"].as_u64().unwrap());
        }
        let seen = seqs.windows(2).find_map(|w| match w[1].cmp(&w[0]) {
            std::cmp::Ordering::Greater if w[1] > w[0] + 1 => Some("gap"),
            std::cmp::Ordering::Equal => Some("repeat"),
            _ => None,
        });
        assert_eq!(seen, Some(want), "{fault:?}: {seqs:?}");
    }
}
