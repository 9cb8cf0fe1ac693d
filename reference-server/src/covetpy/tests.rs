//! The CovetPy state machine without sockets: auth, errors, rooms, RPC, limits, timers.

use base64::Engine as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::session::{Harness, Proto, Session as _};

fn harness() -> Harness {
    Harness::new(Proto::Covetpy)
}

/// An authenticated session, opened; returns the connection_ack.
fn opened(h: &mut Harness) -> (Session, Value) {
    let mut s = Session::new(&h.config, Some("user_test".into()));
    s.open(&mut h.cx());
    let ack = h.sent().pop().expect("connection_ack");
    (s, ack)
}

/// Sends one frame; returns every frame the session sent back.
fn send(h: &mut Harness, s: &mut Session, frame: Value) -> Vec<Value> {
    send_text(h, s, &frame.to_string())
}

fn send_text(h: &mut Harness, s: &mut Session, text: &str) -> Vec<Value> {
    s.text(&Utf8Bytes::from(text.to_owned()), &mut h.cx());
    h.sent()
}

/// The single reply to `frame`.
fn reply(h: &mut Harness, s: &mut Session, frame: Value) -> Value {
    let mut out = send(h, s, frame);
    assert_eq!(out.len(), 1, "one reply: {out:?}");
    out.pop().unwrap()
}

fn call(id: &str, method: &str, params: Value) -> Value {
    json!({"type": "rpc_call", "id": id, "data": {"method": method, "params": params}})
}

/// Runs the timer at `h.now`; returns what it sent.
fn tick(h: &mut Harness, s: &mut Session) -> Vec<Value> {
    s.timer(&mut h.cx());
    h.sent()
}

fn code(frame: &Value) -> &str {
    frame["data"]["error_code"].as_str().unwrap_or("")
}

#[test]
fn credentials_from_the_query() {
    let h = harness();
    let up = |query| Upgrade {
        path: "/covetpy/ws",
        query,
        headers: &[],
    };
    let user = |query| {
        let admitted = admit(&up(query), &h.config).ok().unwrap();
        let mut h = harness();
        let mut s = admitted.session;
        s.open(&mut h.cx());
        (h.sent().pop().unwrap(), h.fx.close.clone())
    };
    let (ack, close) = user("token=abc");
    assert_eq!(ack["type"], "connection_ack");
    assert!(ack["data"]["user_id"]
        .as_str()
        .unwrap()
        .starts_with("user_"));
    assert_eq!(ack["data"]["heartbeat_interval"], 30_000);
    assert!(close.is_none());
    let (ack, _) = user("api_key=k");
    assert!(ack["data"]["user_id"]
        .as_str()
        .unwrap()
        .starts_with("service_"));
    let (err, close) = user("");
    assert_eq!(code(&err), "AUTH_FAILED");
    assert_eq!(err["data"]["recoverable"], false);
    assert_eq!(close.unwrap().0, 1008);
}

#[test]
fn a_configured_token_must_match() {
    let mut h = harness();
    h.config.auth_token = Some("secret".into());
    let up = |query| Upgrade {
        path: "/ws",
        query,
        headers: &[],
    };
    for (query, ok) in [
        ("token=nope", false),
        ("token=secret", true),
        ("token=nope&api_key=secret", true),
    ] {
        let mut s = admit(&up(query), &h.config).ok().unwrap().session;
        s.open(&mut h.cx());
        let first = h.sent().pop().unwrap();
        assert_eq!(first["type"] == "connection_ack", ok, "{query}");
    }
}

#[test]
fn bad_frames_get_invalid_message_format() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let r = send_text(&mut h, &mut s, "not json").pop().unwrap();
    assert_eq!(code(&r), "INVALID_MESSAGE_FORMAT");
    assert!(r["data"].get("original_message_id").is_none());
    // A wrong-typed field still lets the reply name the frame.
    let bad = json!({"type": "file_upload_start", "id": "u1", "data": {"size": "big"}});
    let r = reply(&mut h, &mut s, bad);
    assert_eq!(r["data"]["original_message_id"], "u1");
    let r = reply(
        &mut h,
        &mut s,
        json!({"type": "heartbeat", "data": {"sequence": 1}}),
    );
    assert_eq!(r["data"]["details"]["field"], "id");
    let r = reply(&mut h, &mut s, json!({"id": "x1", "data": {}}));
    assert_eq!(r["data"]["details"]["field"], "type");
    let r = reply(&mut h, &mut s, json!({"type": "heartbeat", "id": "x2"}));
    assert_eq!(r["data"]["details"]["field"], "data");
    let r = reply(
        &mut h,
        &mut s,
        json!({"type": "dance", "id": "x3", "data": {}}),
    );
    assert_eq!(r["data"]["error_message"], "unknown message type 'dance'");
    let long = "x".repeat(257);
    let r = reply(
        &mut h,
        &mut s,
        json!({"type": "heartbeat", "id": long, "data": {}}),
    );
    assert!(
        r["data"].get("original_message_id").is_none(),
        "an id too long to echo"
    );
    s.binary(&Bytes::from_static(b"\x00"), &mut h.cx());
    assert_eq!(code(&h.sent()[0]), "INVALID_MESSAGE_FORMAT");
    let hb = json!({"type": "heartbeat", "id": "hb_1", "data": {"sequence": 1}});
    assert!(
        send(&mut h, &mut s, hb).is_empty(),
        "a client heartbeat gets no reply"
    );
}

#[test]
fn heartbeats_follow_the_configured_period() {
    let mut h = harness();
    h.config.heartbeat = Some(Duration::from_millis(200));
    let (mut s, ack) = opened(&mut h);
    assert_eq!(ack["data"]["heartbeat_interval"], 200);
    let due = s.deadline().unwrap();
    assert_eq!(due, h.now + Duration::from_millis(200));
    h.now = due;
    let hb = tick(&mut h, &mut s);
    assert_eq!(hb[0]["type"], "heartbeat");
    assert_eq!(hb[0]["data"]["sequence"], 1);
    h.now += Duration::from_millis(200);
    assert_eq!(tick(&mut h, &mut s)[0]["data"]["sequence"], 2);
}

#[test]
fn rooms_join_leave_and_limit() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let join = |room: &str| json!({"type": "join_room", "id": "jr", "data": {"room_id": room}});
    let r = reply(&mut h, &mut s, join("project_1"));
    assert_eq!(r["type"], "room_joined");
    assert_eq!(r["data"]["member_count"], 1);
    assert_eq!(r["data"]["room_id"], "project_1");
    let leave = json!({"type": "leave_room", "id": "lr", "data": {"room_id": "project_1"}});
    assert!(send(&mut h, &mut s, leave.clone()).is_empty());
    assert_eq!(code(&reply(&mut h, &mut s, leave)), "ROOM_NOT_FOUND");
    let r = reply(
        &mut h,
        &mut s,
        json!({"type": "join_room", "id": "jr", "data": {}}),
    );
    assert_eq!(r["data"]["details"]["field"], "data.room_id");
    for i in 0..MAX_SUBSCRIPTIONS {
        assert_eq!(
            reply(&mut h, &mut s, join(&format!("r{i}")))["type"],
            "room_joined"
        );
    }
    assert_eq!(
        code(&reply(&mut h, &mut s, join("one_more"))),
        "SUBSCRIPTION_FAILED"
    );
    assert_eq!(
        reply(&mut h, &mut s, join("r0"))["type"],
        "room_joined",
        "rejoin is fine"
    );
}

#[test]
fn echo_returns_params_verbatim() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let text = r#"{"type":"rpc_call","id":"rpc_1","data":{"method":"echo","params":{"b": [1, 2.50],"a":"\u00e9"}}}"#;
    s.text(&Utf8Bytes::from(text.to_owned()), &mut h.cx());
    let Message::Text(out) = h.fx.out.pop().unwrap() else {
        panic!("a text frame")
    };
    assert!(out.starts_with(r#"{"type":"rpc_response","id":"rpc_1","timestamp":""#));
    assert!(
        out.ends_with(r#""data":{"result":{"b": [1, 2.50],"a":"\u00e9"}}}"#),
        "{out}"
    );
    let r = reply(
        &mut h,
        &mut s,
        json!({"type": "rpc_call", "id": "rpc_2", "data": {"method": "echo"}}),
    );
    assert_eq!(r["data"]["result"], json!({}));
}

#[test]
fn rpc_errors() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let r = reply(&mut h, &mut s, call("c1", "nope.nothing", json!({})));
    assert_eq!(r["type"], "rpc_error");
    assert_eq!(r["id"], "c1");
    assert_eq!(r["data"]["error"]["code"], "METHOD_NOT_FOUND");
    let r = reply(
        &mut h,
        &mut s,
        json!({"type": "rpc_call", "id": "c2", "data": {}}),
    );
    assert_eq!(r["data"]["error"]["code"], "INVALID_MESSAGE_FORMAT");
    let r = reply(&mut h, &mut s, call("c3", "sleep", json!({"ms": "long"})));
    assert_eq!(r["data"]["error"]["code"], "INVALID_PARAMS");
    let r = reply(
        &mut h,
        &mut s,
        call(
            "c4",
            "database.test_connection",
            json!({"connection_id": "db_1"}),
        ),
    );
    assert_eq!(r["data"]["result"]["success"], true);
    assert_eq!(r["data"]["result"]["connection_info"]["port"], 5432);
    let r = reply(
        &mut h,
        &mut s,
        call(
            "c5",
            "database.test_connection",
            json!({"connection_id": "fail_1"}),
        ),
    );
    assert_eq!(r["data"]["error"]["code"], "CONNECTION_FAILED");
    assert_eq!(r["data"]["error"]["details"]["port"], 5432);
}

#[test]
fn a_panicking_method_is_an_rpc_error_and_the_session_goes_on() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let r = reply(&mut h, &mut s, call("p1", "debug.panic", json!({})));
    assert_eq!(r["type"], "rpc_error");
    assert_eq!(r["data"]["error"]["code"], "INTERNAL_ERROR");
    assert!(h.fx.close.is_none());
    assert_eq!(
        reply(&mut h, &mut s, call("p2", "echo", json!({"x": 1})))["data"]["result"]["x"],
        1
    );
}

#[test]
fn sleep_replies_from_the_timer_and_times_out() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let t0 = h.now;
    assert!(send(&mut h, &mut s, call("s1", "sleep", json!({"ms": 50}))).is_empty());
    let mut timed = call("s2", "sleep", json!({"ms": 5000}));
    timed["data"]["timeout"] = json!(20);
    assert!(send(&mut h, &mut s, timed).is_empty());
    assert_eq!(s.deadline(), Some(t0 + Duration::from_millis(20)));
    h.now = t0 + Duration::from_millis(20);
    let out = tick(&mut h, &mut s);
    assert_eq!(code(&out[0]), "RPC_TIMEOUT");
    assert_eq!(out[0]["data"]["original_message_id"], "s2");
    h.now = t0 + Duration::from_millis(50);
    let out = tick(&mut h, &mut s);
    assert_eq!(
        (out[0]["id"].as_str(), &out[0]["data"]["result"]["slept_ms"]),
        (Some("s1"), &json!(50))
    );
    let r = reply(
        &mut h,
        &mut s,
        call("s3", "sleep", json!({"ms": rpc::MAX_SLEEP_MS + 1})),
    );
    assert_eq!(r["data"]["error"]["code"], "INVALID_PARAMS");
    for i in 0..rpc::MAX_PENDING {
        assert!(send(
            &mut h,
            &mut s,
            call(&format!("w{i}"), "sleep", json!({"ms": 1000}))
        )
        .is_empty());
    }
    let r = reply(&mut h, &mut s, call("w", "sleep", json!({"ms": 1000})));
    assert_eq!(r["data"]["error"]["code"], "TOO_MANY_PENDING");
}

#[test]
fn publish_numbers_events_per_room() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let publish = |id: &str| {
        call(
            id,
            "room.publish",
            json!({"room": "lobby", "data": {"n": 1}}),
        )
    };
    let r = reply(&mut h, &mut s, publish("a"));
    assert_eq!(
        r["data"]["result"],
        json!({"room_id": "lobby", "member_count": 0, "seq": null})
    );
    reply(
        &mut h,
        &mut s,
        json!({"type": "join_room", "id": "j", "data": {"room_id": "lobby"}}),
    );
    assert_eq!(
        reply(&mut h, &mut s, publish("b"))["data"]["result"]["seq"],
        1
    );
    assert_eq!(
        reply(&mut h, &mut s, publish("c"))["data"]["result"]["member_count"],
        1
    );
    let events = h.published();
    let sample = &events[1].1["data"]["batch"][0];
    assert_eq!(
        (sample["seq"].as_u64(), &sample["data"]),
        (Some(2), &json!({"n": 1}))
    );
    assert_eq!(sample["event_type"], "message");
    let bad = call(
        "d",
        "room.publish",
        json!({"room": "lobby", "event_type": "Not A Word"}),
    );
    assert_eq!(
        reply(&mut h, &mut s, bad)["data"]["error"]["code"],
        "INVALID_PARAMS"
    );
}

#[test]
fn notification_send_replies_then_notifies() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let params = json!({"notification_type": "success", "title": "Done", "message": "ok", "category": "jobs"});
    let out = send(&mut h, &mut s, call("n1", "notification.send", params));
    assert_eq!(out[0]["type"], "rpc_response");
    assert_eq!(out[1]["type"], "notification");
    assert_eq!(out[1]["data"]["notification_type"], "success");
    assert_eq!(out[1]["data"]["category"], "jobs");
    let params = json!({"notification_type": "loud", "title": "x", "message": "y"});
    let r = reply(&mut h, &mut s, call("n2", "notification.send", params));
    assert_eq!(r["data"]["error"]["code"], "INVALID_PARAMS");
}

#[test]
fn message_and_rpc_rates_are_limited() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    for i in 0..limits::RPC_CALLS_PER_MINUTE {
        assert_eq!(
            reply(&mut h, &mut s, call(&format!("e{i}"), "echo", json!({})))["type"],
            "rpc_response"
        );
    }
    let r = reply(&mut h, &mut s, call("over", "echo", json!({})));
    assert_eq!(r["data"]["error"]["code"], "RATE_LIMITED");
    assert_eq!(r["rate_limit"]["limit"], limits::RPC_CALLS_PER_MINUTE);
    assert_eq!(r["rate_limit"]["remaining"], 0);
    let hb = json!({"type": "heartbeat", "id": "hb", "data": {"sequence": 1}});
    for _ in limits::RPC_CALLS_PER_MINUTE + 1..limits::MESSAGES_PER_MINUTE {
        assert!(send(&mut h, &mut s, hb.clone()).is_empty());
    }
    let r = reply(&mut h, &mut s, hb.clone());
    assert_eq!(code(&r), "RATE_LIMITED");
    assert_eq!(r["data"]["original_message_id"], "hb");
    assert_eq!(r["rate_limit"]["limit"], limits::MESSAGES_PER_MINUTE);
    h.now += Duration::from_secs(60);
    assert!(send(&mut h, &mut s, hb).is_empty(), "a new minute");

    h.config.limits.rate = false;
    let (mut s, _) = opened(&mut h);
    for i in 0..limits::MESSAGES_PER_MINUTE * 2 {
        assert_eq!(
            reply(&mut h, &mut s, call(&format!("e{i}"), "echo", json!({})))["type"],
            "rpc_response"
        );
    }
}

#[test]
fn streams_batch_and_unsubscribe() {
    let mut h = harness();
    h.config.events_per_sec = 100.0;
    let (mut s, _) = opened(&mut h);
    let t0 = h.now;
    let sub = json!({"type": "subscribe", "id": "sub_1", "data": {"stream_type": "metrics",
        "resource_id": "db_1", "options": {"buffer_size": 4, "batch_interval": 60000}}});
    assert!(send(&mut h, &mut s, sub.clone()).is_empty());
    assert_eq!(
        code(&reply(&mut h, &mut s, sub)),
        "SUBSCRIPTION_FAILED",
        "same id twice"
    );
    h.now = s.deadline().unwrap();
    assert_eq!(h.now, t0 + Duration::from_millis(40));
    let out = tick(&mut h, &mut s);
    assert_eq!(out[0]["type"], "stream_data");
    assert_eq!(out[0]["data"]["subscription_id"], "sub_1");
    assert_eq!(out[0]["data"]["batch"].as_array().unwrap().len(), 4);
    let unsub = json!({"type": "unsubscribe", "id": "u", "data": {"subscription_id": "sub_1"}});
    assert!(send(&mut h, &mut s, unsub.clone()).is_empty());
    assert_eq!(code(&reply(&mut h, &mut s, unsub)), "SUBSCRIPTION_FAILED");
    assert_eq!(
        s.deadline(),
        Some(t0 + HEARTBEAT),
        "only the heartbeat is left"
    );
    let bad = json!({"type": "subscribe", "id": "sub_2", "data": {"stream_type": "weather", "resource_id": "x"}});
    assert_eq!(code(&reply(&mut h, &mut s, bad)), "INVALID_MESSAGE_FORMAT");
    for i in 0..MAX_SUBSCRIPTIONS {
        let sub = json!({"type": "subscribe", "id": format!("s{i}"), "data": {"stream_type": "logs", "resource_id": "r"}});
        assert!(send(&mut h, &mut s, sub).is_empty());
    }
    let sub = json!({"type": "subscribe", "id": "last", "data": {"stream_type": "logs", "resource_id": "r"}});
    assert_eq!(
        reply(&mut h, &mut s, sub)["data"]["details"]["limit"],
        MAX_SUBSCRIPTIONS
    );
}

/// A `file_chunk` frame for `bytes`.
fn chunk(upload: &str, index: u64, total: u64, bytes: &[u8]) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    let checksum = hex(&Sha256::digest(bytes));
    json!({"type": "file_chunk", "id": format!("c{index}"), "data": {"upload_id": upload,
        "chunk_index": index, "total_chunks": total, "data": data, "checksum": checksum}})
}

fn start(id: &str, size: u64, chunk_size: u64) -> Value {
    json!({"type": "file_upload_start", "id": id, "data": {"filename": "a.csv", "size": size,
        "mimetype": "text/csv", "chunk_size": chunk_size}})
}

#[test]
fn an_upload_in_order_completes_with_the_file_hash() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let file = b"0123456789";
    assert!(send(&mut h, &mut s, start("up", 10, 4)).is_empty());
    assert!(send(&mut h, &mut s, chunk("up", 0, 3, &file[..4])).is_empty());
    assert!(send(&mut h, &mut s, chunk("up", 1, 3, &file[4..8])).is_empty());
    let done = reply(&mut h, &mut s, chunk("up", 2, 3, &file[8..]));
    assert_eq!(done["type"], "file_upload_complete");
    assert_eq!(done["data"]["upload_id"], "up");
    let want = format!("file_{}", &hex(&Sha256::digest(file))[..16]);
    assert_eq!(done["data"]["file_id"], want.as_str());
    assert_eq!(done["data"]["processing_status"], "completed");
    let r = reply(&mut h, &mut s, chunk("up", 2, 3, &file[8..]));
    assert_eq!(
        code(&r),
        "UPLOAD_NOT_FOUND",
        "a finished upload takes no more chunks"
    );
    assert_eq!(
        reply(&mut h, &mut s, start("empty", 0, 4))["type"],
        "file_upload_complete"
    );
}

#[test]
fn bad_chunks_are_refused_and_can_be_resent() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    send(&mut h, &mut s, start("up", 8, 4));
    let mut corrupt = chunk("up", 0, 2, b"abcd");
    corrupt["data"]["checksum"] = json!(hex(&Sha256::digest(b"abce")));
    let r = reply(&mut h, &mut s, corrupt);
    assert_eq!(code(&r), "CHECKSUM_MISMATCH");
    assert_eq!(r["data"]["details"]["chunk_index"], 0);
    assert!(r["data"]["error_message"]
        .as_str()
        .unwrap()
        .contains("chunk 0"));
    let cases = [
        (
            chunk("up", 1, 2, b"efgh"),
            "chunk 1 out of order: chunk 0 is missing",
        ),
        (
            chunk("up", 2, 2, b"efgh"),
            "chunk index 2 out of range 0..2",
        ),
        (
            chunk("up", 0, 2, b"abcde"),
            "chunk 0 is oversize: 5 bytes, expected 4",
        ),
        (
            chunk("up", 0, 2, b"abcdefg"),
            "chunk 0 is oversize: more than 4 bytes",
        ),
        (
            chunk("up", 0, 2, b"abc"),
            "chunk 0 is short: 3 bytes, expected 4",
        ),
        (
            chunk("up", 0, 3, b"abcd"),
            "total_chunks is 3, but size/chunk_size gives 2",
        ),
    ];
    for (frame, message) in cases {
        let r = reply(&mut h, &mut s, frame);
        assert_eq!(code(&r), "INVALID_MESSAGE_FORMAT");
        assert_eq!(r["data"]["error_message"], message);
    }
    let mut garbled = chunk("up", 0, 2, b"abcd");
    garbled["data"]["data"] = json!("!!!!!!!!");
    assert!(reply(&mut h, &mut s, garbled)["data"]["error_message"]
        .as_str()
        .unwrap()
        .contains("base64"));
    assert!(
        send(&mut h, &mut s, chunk("up", 0, 2, b"abcd")).is_empty(),
        "resent correctly"
    );
    let r = reply(&mut h, &mut s, chunk("up", 0, 2, b"abcd"));
    assert_eq!(
        r["data"]["error_message"],
        "duplicate chunk 0: already received"
    );
    assert_eq!(
        reply(&mut h, &mut s, chunk("up", 1, 2, b"efgh"))["type"],
        "file_upload_complete"
    );
}

#[test]
fn upload_limits() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let r = reply(
        &mut h,
        &mut s,
        start("big", upload::MAX_FILE_BYTES + 1, 1024),
    );
    assert_eq!(code(&r), "PERMISSION_DENIED");
    let r = reply(
        &mut h,
        &mut s,
        start("wide", 10, upload::MAX_CHUNK_BYTES + 1),
    );
    assert_eq!(r["data"]["details"]["field"], "data.chunk_size");
    for i in 0..upload::MAX_UPLOADS {
        assert!(send(&mut h, &mut s, start(&format!("u{i}"), 10, 5)).is_empty());
    }
    assert_eq!(
        code(&reply(&mut h, &mut s, start("u0", 10, 5))),
        "INVALID_MESSAGE_FORMAT"
    );
    assert_eq!(
        code(&reply(&mut h, &mut s, start("u9", 10, 5))),
        "PERMISSION_DENIED"
    );
    // Abandoned uploads expire with an error naming the missing chunk.
    h.now += upload::UPLOAD_IDLE;
    let out = tick(&mut h, &mut s);
    assert_eq!(
        out.iter().filter(|f| f["type"] == "error").count(),
        upload::MAX_UPLOADS
    );
    assert_eq!(out.last().unwrap()["data"]["details"]["chunk_index"], 0);
    // Six more starts reach the ten per hour (four were counted above).
    for i in 0..6 {
        let r = send(&mut h, &mut s, start(&format!("z{i}"), 0, 5));
        assert_eq!(r[0]["type"], "file_upload_complete");
    }
    let r = reply(&mut h, &mut s, start("z", 0, 5));
    assert_eq!(code(&r), "RATE_LIMITED");
    assert_eq!(r["rate_limit"]["limit"], limits::UPLOADS_PER_HOUR);
}

#[test]
fn shutdown_sends_a_notification() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    s.shutdown(&mut h.cx());
    let note = h.sent().pop().unwrap();
    assert_eq!(note["type"], "notification");
    assert_eq!(note["data"]["notification_type"], "warning");
}
