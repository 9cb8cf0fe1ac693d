//! squall-server's NewLoom endpoints end to end over loopback sockets: every frame the
//! server sends is checked against schemas/newloom (Direction::In), and every frame the
//! test sends is checked too (Direction::Out), so the server and the schemas check each other.

use crate::support::{self, Checked};
use futures_util::StreamExt;
use serde_json::{json, Value};
use squall_server::{Config, ServerHandle};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// A connection checked both ways against schemas/newloom.
type Ws = Checked;

const WAIT: Duration = Duration::from_secs(5);
const CHAT: &str = "/newloom/ws/chat/";
const STREAMS: &str = "/newloom/ws/streams/";

fn server(tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        threads: 2,
        events_per_sec: 0.0,
        ..Default::default()
    };
    tweak(&mut config);
    squall_server::spawn(config).expect("server starts")
}

async fn connect(server: &ServerHandle, path_and_query: &str) -> Ws {
    Checked::connect(server.addr(), path_and_query, support::profile("newloom")).await
}

/// Sends a frame the schemas reject (so the test knows it is bad) and returns the error code.
async fn send_bad(ws: &mut Ws, text: &str) -> Value {
    ws.send_bad(text).await;
    let reply = ws.recv().await;
    assert_eq!(reply["type"], "error", "{reply}");
    reply["code"].clone()
}

/// Reads until the server's close frame and returns its code.
async fn closed(ws: &mut Ws) -> CloseCode {
    loop {
        let msg = timeout(WAIT, ws.ws.next())
            .await
            .expect("a close within 5 s");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code,
            Some(Ok(Message::Text(t))) => panic!("unexpected frame before close: {t}"),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

fn typing(chat_id: u64, is_typing: bool) -> Value {
    json!({"type": "typing", "chat_id": chat_id, "is_typing": is_typing})
}

fn message(chat_id: u64, content: &str) -> Value {
    json!({"type": "message", "content": content, "chat_id": chat_id})
}

/// Connects to the chat endpoint and waits until its chats are joined: its own typing
/// indicator in `sync_chat` comes back (members get their own frames too).
async fn member(server: &ServerHandle, query: &str, sync_chat: u64) -> Ws {
    let mut ws = connect(server, &format!("{CHAT}?token=t&{query}")).await;
    ws.send(typing(sync_chat, false)).await;
    let echo = ws.recv().await;
    assert_eq!(echo["type"], "typing");
    assert_eq!(echo["chat_id"], sync_chat);
    ws
}

#[tokio::test]
async fn chat_messages_reach_the_chats_members_with_ids_timestamps_and_seq() {
    let server = server(|_| {});
    let mut bob = member(&server, "user=bob&chats=1", 1).await;
    let mut carol = member(&server, "user=carol&chats=2", 2).await;
    let mut alice = member(&server, "user=alice&chats=1,2", 1).await;
    let seen = bob.recv().await;
    assert_eq!(
        (seen["type"].as_str(), seen["user"].as_str()),
        (Some("typing"), Some("alice"))
    );
    assert_eq!(seen["seq"], 2, "bob's own typing was seq 1 of chat 1");

    alice.send(message(1, "hello chat one")).await;
    let mine = alice.recv().await;
    let bobs = bob.recv().await;
    assert_eq!(mine, bobs, "one frame, the same for every member");
    let stored = &mine["message"];
    assert_eq!(stored["content"], "hello chat one");
    assert_eq!(stored["user"], "alice");
    assert_eq!(stored["chat_id"], 1);
    let ts = stored["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "microseconds: {ts}");
    assert_eq!(mine["seq"], 3);

    alice.send(message(2, "hello chat two")).await;
    let mine2 = alice.recv().await;
    let carols = carol.recv().await;
    assert_eq!(
        carols["message"]["content"], "hello chat two",
        "chat 1 never reached carol"
    );
    assert_eq!(carols["seq"], 2);
    assert!(mine2["message"]["id"].as_u64() > stored["id"].as_u64());

    bob.send(json!({"type": "typing", "chat_id": 1, "user": "bob", "is_typing": true}))
        .await;
    for ws in [&mut alice, &mut bob] {
        let t = ws.recv().await;
        assert_eq!(
            (t["user"].as_str(), t["is_typing"].as_bool()),
            (Some("bob"), Some(true))
        );
        assert_eq!(t["seq"], 4);
    }
}

#[tokio::test]
async fn without_a_chat_list_posting_joins_the_chat() {
    let server = server(|_| {});
    let mut dave = connect(&server, &format!("{CHAT}?token=t")).await;
    dave.send(message(7, "first")).await;
    let first = dave.recv().await;
    assert_eq!(first["seq"], 1);
    assert!(first["message"]["user"]
        .as_str()
        .unwrap()
        .starts_with("user"));
    let mut erin = member(&server, "user=erin", 7).await;
    assert_eq!(
        dave.recv().await["user"],
        "erin",
        "dave is a member of chat 7"
    );
    dave.send(message(7, "second")).await;
    for ws in [&mut dave, &mut erin] {
        let m = ws.recv().await;
        assert_eq!(m["message"]["content"], "second");
        assert_eq!(m["seq"], 3);
    }
}

#[tokio::test]
async fn permission_denied_outside_the_chat_list_and_over_the_chat_limit() {
    let server = server(|_| {});
    let mut ws = connect(&server, &format!("{CHAT}?token=t&chats=1")).await;
    ws.send(message(3, "not mine")).await;
    let denied = ws.recv().await;
    assert_eq!(denied["code"], "permission_denied");
    assert_eq!(denied["message"], "Not authorized for this chat");
    ws.send(typing(3, true)).await;
    assert_eq!(ws.recv().await["code"], "permission_denied");

    for (limit_on, expect_denied) in [(true, true), (false, false)] {
        let server = server_with_limit(limit_on);
        let mut ws = connect(&server, &format!("{CHAT}?token=t")).await;
        for chat in 1..=100 {
            ws.send(typing(chat, true)).await;
            assert_eq!(ws.recv().await["chat_id"], chat);
        }
        ws.send(typing(101, true)).await;
        let reply = ws.recv().await;
        assert_eq!(
            reply["code"] == "permission_denied",
            expect_denied,
            "{reply}"
        );
    }
}

fn server_with_limit(on: bool) -> ServerHandle {
    server(|c| c.limits.subscriptions = on)
}

#[tokio::test]
async fn bad_frames_get_invalid_format_and_the_connection_stays() {
    let server = server(|_| {});
    let mut ws = connect(&server, &format!("{CHAT}?token=t")).await;
    for bad in [
        "not json",
        r#"["message","x",1,true]"#,
        r#"{"type":"message","content":"x"}"#,
        r#"{"type":"message","content":"x","chat_id":"1"}"#,
        r#"{"type":"message","content":"","chat_id":1}"#,
        r#"{"type":"typing","chat_id":1}"#,
        r#"{"type":"subscribe","channel":"x"}"#,
    ] {
        assert_eq!(send_bad(&mut ws, bad).await, "invalid_format", "{bad}");
    }
    ws.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(ws.recv().await["code"], "invalid_format");
    ws.send(message(1, "still here")).await;
    assert_eq!(ws.recv().await["message"]["content"], "still here");

    let mut streams = connect(&server, &format!("{STREAMS}?token=t")).await;
    streams.send(message(1, "wrong endpoint")).await;
    assert_eq!(streams.recv().await["code"], "invalid_format");
}

#[tokio::test]
async fn auth_failures_get_connection_error_then_close() {
    let server = server(|c| c.auth_token = Some("secret".into()));
    for query in ["", "?token=", "?token=wrong"] {
        let mut ws = connect(&server, &format!("{CHAT}{query}")).await;
        let error = ws.recv().await;
        assert_eq!(error["code"], "connection_error", "{query}");
        assert_eq!(error["message"], "Authentication failed");
        assert_eq!(closed(&mut ws).await, CloseCode::Policy);
    }
    let mut ws = connect(&server, &format!("{STREAMS}?token=wrong")).await;
    assert_eq!(ws.recv().await["code"], "connection_error");
    assert_eq!(closed(&mut ws).await, CloseCode::Policy);
    let mut ws = connect(&server, &format!("{CHAT}?token=secret&chats=0")).await;
    let error = ws.recv().await;
    assert_eq!(error["code"], "connection_error");
    assert!(
        error["message"].as_str().unwrap().contains("chats"),
        "{error}"
    );

    let mut ok = connect(&server, &format!("{CHAT}?token=secret")).await;
    ok.send(message(1, "in")).await;
    assert_eq!(ok.recv().await["type"], "message");
    let url = format!("ws://{}{CHAT}", server.addr());
    let mut request = url.into_client_request().unwrap();
    let cookie = "csrftoken=abc; sessionid=secret".parse().unwrap();
    request.headers_mut().insert("Cookie", cookie);
    let (browser, _) = timeout(WAIT, connect_async(request))
        .await
        .unwrap()
        .unwrap();
    let mut browser = Checked::wrap(browser, support::profile("newloom"));
    browser.send(message(1, "cookie")).await;
    assert_eq!(browser.recv().await["message"]["content"], "cookie");
}

#[tokio::test]
async fn heartbeats_keep_the_connection_and_silence_ends_it() {
    // Periods long enough that a loaded machine does not starve a heartbeat past the
    // deadline (two periods of silence).
    let period = Duration::from_millis(300);
    let server = server(|c| c.heartbeat = Some(period));
    let mut ws = connect(&server, &format!("{CHAT}?token=t")).await;
    // Eight heartbeats, 150 ms apart, span twice the 600 ms deadline.
    let mut last_beat = Instant::now();
    for _ in 0..8 {
        last_beat = Instant::now();
        ws.send(json!({"type": "heartbeat"})).await;
        let quiet = timeout(Duration::from_millis(150), ws.ws.next()).await;
        assert!(quiet.is_err(), "no reply to a heartbeat: {quiet:?}");
    }
    let error = ws.recv().await;
    assert_eq!(error["code"], "connection_error");
    let silence = last_beat.elapsed();
    assert!(silence >= 2 * period, "closed after {silence:?} of silence");
    assert_eq!(closed(&mut ws).await, CloseCode::Away);

    let mut ws = connect(&server, &format!("{STREAMS}?token=t")).await;
    ws.send(json!({"type": "disconnect"})).await;
    assert_eq!(closed(&mut ws).await, CloseCode::Normal);
}

/// Reads `n` stream frames and checks each room's sequence runs on without gaps.
async fn stream_frames(
    ws: &mut Ws,
    n: usize,
    ids: impl Fn(u64) -> bool,
) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    let mut last: Option<u64> = None;
    for _ in 0..n {
        let frame = ws.recv().await;
        let id = frame["stream_id"].as_u64().unwrap();
        assert!(ids(id), "stream {id}");
        *kinds
            .entry(frame["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
        let seq = frame["seq"].as_u64().unwrap();
        if let Some(prev) = last {
            assert_eq!(seq, prev + 1, "no gap or reordering");
        }
        last = Some(seq);
    }
    kinds
}

#[tokio::test]
async fn streams_get_status_updates_execution_stats_and_errors_in_sequence() {
    let server = server(|c| c.events_per_sec = 400.0);
    let mut one = connect(&server, &format!("{STREAMS}?token=t&streams=5")).await;
    let kinds = stream_frames(&mut one, 45, |id| id == 5).await;
    for kind in ["status_update", "execution_stats", "error"] {
        assert!(
            kinds.get(kind).is_some_and(|&n| n > 0),
            "{kind} in {kinds:?}"
        );
    }
    let mut all = connect(&server, &format!("{STREAMS}?token=t")).await;
    stream_frames(&mut all, 20, |id| (1..=16).contains(&id)).await;
    assert!(server.stats().events_published >= 65);
}

#[tokio::test]
async fn the_newloom_profile_answers_at_ws() {
    let server = server(|c| {
        c.profile = squall_server::Profile::Newloom;
        c.events_per_sec = 200.0;
    });
    for path in ["/ws", "/ws/chat/"] {
        let mut ws = connect(&server, &format!("{path}?token=t")).await;
        ws.send(message(9, path)).await;
        assert_eq!(ws.recv().await["message"]["content"], path);
    }
    let mut ws = connect(&server, "/ws/streams/?token=t&streams=2").await;
    assert_eq!(ws.recv().await["stream_id"], 2);
}

/// `POST /publish` with `body` into `room` of `protocol`; returns the JSON reply.
async fn publish(server: &ServerHandle, protocol: &str, room: &str, body: &Value) -> Value {
    let body = body.to_string();
    let request = format!(
        "POST /publish?protocol={protocol}&room={room} HTTP/1.1\r\nHost: t\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    timeout(WAIT, tcp.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

#[tokio::test]
async fn publish_stamps_seq_and_time_into_chat_and_stream_frames() {
    let server = server(|_| {});
    let mut ws = member(&server, "chats=4", 4).await;
    let frame = json!({"type": "message", "message": {"id": 1, "content": "from /publish",
        "user": "publisher", "chat_id": 4}});
    let reply = publish(&server, "newloom-chat", "4", &frame).await;
    assert_eq!(
        (reply["seq"].as_u64(), reply["subscribers"].as_u64()),
        (Some(2), Some(1))
    );
    let got = ws.recv().await;
    assert_eq!(got["message"]["content"], "from /publish");
    assert_eq!(got["seq"], 2);
    assert_eq!(got["message"]["timestamp"].as_str().unwrap().len(), 27);

    let mut follower = connect(&server, &format!("{STREAMS}?token=t&streams=8")).await;
    // The join happens as the connection opens; publish until it has an audience.
    let status = json!({"type": "status_update", "stream_id": 8, "status": "completed"});
    let deadline = Instant::now() + WAIT;
    while publish(&server, "newloom-streams", "8", &status).await["subscribers"] == 0 {
        assert!(
            Instant::now() < deadline,
            "the follower never joined stream 8"
        );
        tokio::task::yield_now().await;
    }
    let got = follower.recv().await;
    assert_eq!(
        (got["status"].as_str(), got["seq"].as_u64()),
        (Some("completed"), Some(1))
    );
}
