//! The CovetPy state machine without sockets: auth, errors, rooms, RPC, limits, timers.

use serde_json::{json, Value};

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
    // A timer ten periods late sends one heartbeat, and the next is a period away.
    h.now += Duration::from_secs(2);
    assert_eq!(tick(&mut h, &mut s).len(), 1);
    assert_eq!(s.deadline(), Some(h.now + Duration::from_millis(200)));
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

#[test]
fn shutdown_sends_a_notification() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    s.shutdown(&mut h.cx());
    let note = h.sent().pop().unwrap();
    assert_eq!(note["type"], "notification");
    assert_eq!(note["data"]["notification_type"], "warning");
}

mod calls;
mod uploads;

#[test]
fn ten_thousand_subscribe_cycles_leave_nothing_behind() {
    let mut h = harness();
    h.config.limits.rate = false;
    let (mut s, _) = opened(&mut h);
    let baseline = s.deadline();
    for i in 0..10_000 {
        let id = format!("s{i}");
        let sub = json!({"type": "subscribe", "id": id, "data": {"stream_type": "events", "resource_id": "r"}});
        let unsub = json!({"type": "unsubscribe", "id": "u", "data": {"subscription_id": id}});
        let join = json!({"type": "join_room", "id": "j", "data": {"room_id": "lobby"}});
        let leave = json!({"type": "leave_room", "id": "l", "data": {"room_id": "lobby"}});
        assert!(send(&mut h, &mut s, sub).is_empty());
        assert!(send(&mut h, &mut s, unsub).is_empty());
        assert_eq!(reply(&mut h, &mut s, join)["type"], "room_joined");
        assert!(send(&mut h, &mut s, leave).is_empty());
    }
    assert!(s.streams.is_empty());
    assert_eq!(h.hub.subscriptions(), 0);
    assert_eq!(s.deadline(), baseline, "no timer left behind");
}
