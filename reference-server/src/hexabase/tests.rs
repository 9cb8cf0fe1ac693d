//! The Hexabase state machine without sockets: auth, errors, ids, limits and timers.

use super::*;
use crate::session::{Harness, Session as _};
use serde_json::{json, Value};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig";

fn setup(tweak: impl FnOnce(&mut Config)) -> (Harness, Session) {
    let mut h = Harness::new(Proto::Hexabase);
    tweak(&mut h.config);
    let mut s = Session::new(&h.config);
    s.open(&mut h.cx());
    (h, s)
}

/// Sends `frame` and returns every frame sent back.
fn send(h: &mut Harness, s: &mut Session, frame: &str) -> Vec<Value> {
    s.text(&Utf8Bytes::from(frame.to_owned()), &mut h.cx());
    h.sent()
}

fn one(h: &mut Harness, s: &mut Session, frame: Value) -> Value {
    let mut out = send(h, s, &frame.to_string());
    assert_eq!(out.len(), 1, "one reply to {frame}: {out:?}");
    out.pop().unwrap()
}

fn authed() -> (Harness, Session) {
    let (mut h, mut s) = setup(|_| {});
    let r = one(&mut h, &mut s, json!({"type": "auth", "token": TOKEN}));
    assert_eq!(r["success"], true);
    (h, s)
}

fn code(v: &Value) -> &str {
    assert_eq!(v["type"], "error", "{v}");
    v["error"]["code"].as_str().unwrap()
}

fn subscribe(id: &str, ws: &str) -> Value {
    json!({"type": "subscribe", "id": id,
        "data": {"resource": "workspace", "workspace_id": ws, "events": ["status_changed"]}})
}

#[test]
fn requests_before_auth_get_auth_required_with_their_id() {
    let (mut h, mut s) = setup(|_| {});
    let r = one(&mut h, &mut s, subscribe("sub-1", "ws-1"));
    assert_eq!(code(&r), "AUTH_REQUIRED");
    assert_eq!(r["id"], "sub-1");
    let r = one(
        &mut h,
        &mut s,
        json!({"type": "get_workspace_status", "id": "c"}),
    );
    assert_eq!(code(&r), "AUTH_REQUIRED");
    assert!(
        send(&mut h, &mut s, r#"{"type":"pong"}"#).is_empty(),
        "pong is fine"
    );
    assert_eq!(
        h.hub.counters().len(),
        1,
        "one reject label: {:?}",
        h.hub.counters()
    );
}

#[test]
fn auth_accepts_the_configured_token_only() {
    let (mut h, mut s) = setup(|c| c.auth_token = Some(TOKEN.into()));
    let r = one(
        &mut h,
        &mut s,
        json!({"type": "auth", "token": "nope.nope.nope"}),
    );
    assert_eq!(
        (r["success"].as_bool(), r["error"].as_str()),
        (Some(false), Some("Invalid token"))
    );
    assert!(r.get("user_id").is_none());
    let r = one(&mut h, &mut s, subscribe("s", "ws-1"));
    assert_eq!(
        code(&r),
        "AUTH_REQUIRED",
        "a failed auth does not authenticate"
    );
    let r = one(
        &mut h,
        &mut s,
        json!({"type": "auth", "id": "a-1", "token": TOKEN}),
    );
    assert_eq!(r["success"], true);
    assert_eq!(r["id"], "a-1");
    assert_eq!(r["user_id"], "user-1");
    assert_eq!(r["message"], "Authenticated successfully");
    let r = one(&mut h, &mut s, json!({"type": "auth", "token": 5}));
    assert_eq!(code(&r), "INVALID_MESSAGE_FORMAT");
}

#[test]
fn bad_input_gets_invalid_message_format() {
    let (mut h, mut s) = authed();
    let cases = [
        ("not json", None),
        ("[1,2]", None),
        (r#"{"id":"x"}"#, Some("x")),
        (r#"{"type":7,"id":"x"}"#, Some("x")),
        (r#"{"type":"dance","id":"d"}"#, Some("d")),
        (r#"{"type":"ping","id":"p"}"#, Some("p")),
        (r#"{"type":"subscribe","id":9}"#, None),
        (r#"{"type":"subscribe","id":""}"#, None),
        (r#"{"type":"subscribe","id":"s"}"#, Some("s")),
        (r#"{"type":"subscribe","id":"s","data":[]}"#, Some("s")),
        (
            r#"{"type":"subscribe","data":{"resource":"workspace","workspace_id":"w","events":["status_changed"]}}"#,
            None,
        ),
        (
            r#"{"type":"subscribe","id":"s","data":{"resource":"workspace","workspace_id":"w","events":"all"}}"#,
            Some("s"),
        ),
        (
            r#"{"type":"unsubscribe","id":"u","data":{"subscription_id":"nope"}}"#,
            Some("u"),
        ),
        (
            r#"{"type":"get_workspace_status","id":"g","data":{}}"#,
            Some("g"),
        ),
        (
            r#"{"type":"stream_logs","id":"l","data":{"workspace_id":"w"}}"#,
            Some("l"),
        ),
        (
            r#"{"type":"stop_stream","id":"t","data":{"stream_id":1}}"#,
            Some("t"),
        ),
    ];
    for (frame, id) in cases {
        let mut out = send(&mut h, &mut s, frame);
        let r = out.pop().expect(frame);
        assert_eq!(code(&r), "INVALID_MESSAGE_FORMAT", "{frame}");
        assert_eq!(r["id"].as_str(), id, "{frame}");
        assert!(r["error"]["message"].as_str().unwrap().len() > 5);
    }
    s.binary(&Bytes::from_static(b"\x01"), &mut h.cx());
    assert_eq!(code(&h.sent()[0]), "INVALID_MESSAGE_FORMAT");
    let labels: Vec<_> = h
        .hub
        .counters()
        .into_iter()
        .map(|((_, _, l), _)| l)
        .collect();
    for label in [
        "invalid_json",
        "unknown_type",
        "invalid_message",
        "binary_frame",
    ] {
        assert!(labels.contains(&label), "{label} in {labels:?}");
    }
}

#[test]
fn subscribe_unsubscribe_and_not_found() {
    let (mut h, mut s) = authed();
    let r = one(&mut h, &mut s, subscribe("sub-1", "ws-1"));
    assert_eq!(
        (r["type"].as_str(), r["id"].as_str()),
        (Some("subscribe_result"), Some("sub-1"))
    );
    assert_eq!(r["success"], true);
    let sub = r["subscription_id"].as_str().unwrap().to_owned();
    assert!(Uuid::parse_str(&sub).is_ok());
    assert!(h.cx().is_member("workspace:ws-1:status_changed"));
    assert!(h.cx().is_member("workspace:ws-1:monitoring"));
    let unsub = json!({"type": "unsubscribe", "id": "u-1", "data": {"subscription_id": sub}});
    assert!(
        send(&mut h, &mut s, &unsub.to_string()).is_empty(),
        "no reply documented"
    );
    assert_eq!(h.cx().rooms().count(), 0);
    let r = one(&mut h, &mut s, unsub);
    assert_eq!(
        (code(&r), r["id"].as_str()),
        ("RESOURCE_NOT_FOUND", Some("u-1"))
    );
}

#[test]
fn the_101st_subscription_is_refused_as_documented() {
    let (mut h, mut s) = authed();
    for i in 0..MAX_SUBSCRIPTIONS {
        let r = one(
            &mut h,
            &mut s,
            subscribe(&format!("s{i}"), &format!("ws-{i}")),
        );
        assert_eq!(r["success"], true);
    }
    let r = one(&mut h, &mut s, subscribe("sub-126", "ws-456"));
    assert_eq!(
        (code(&r), r["id"].as_str()),
        ("SUBSCRIPTION_LIMIT_EXCEEDED", Some("sub-126"))
    );
    assert_eq!(
        r["error"]["message"],
        "Maximum number of subscriptions (100) exceeded"
    );
    let details = &r["error"]["details"];
    assert_eq!(details["current_subscriptions"], 100);
    assert_eq!(details["requested_subscription"], "workspace:ws-456");

    let (mut h, mut s) = setup(|c| c.limits.subscriptions = false);
    one(&mut h, &mut s, json!({"type": "auth", "token": TOKEN}));
    for i in 0..HARD_CAP {
        let r = one(&mut h, &mut s, subscribe(&format!("s{i}"), "ws-1"));
        assert_eq!(r["success"], true, "limit off: {i} accepted");
    }
    let r = one(&mut h, &mut s, subscribe("over", "ws-1"));
    assert_eq!(
        code(&r),
        "SUBSCRIPTION_LIMIT_EXCEEDED",
        "the hard cap still holds"
    );
}

#[test]
fn workspace_status_answers_with_the_id() {
    let (mut h, mut s) = authed();
    let req = json!({"type": "get_workspace_status", "id": "cmd-123", "data": {"workspace_id": "ws-123"}});
    let r = one(&mut h, &mut s, req);
    assert_eq!(
        (r["type"].as_str(), r["id"].as_str()),
        (Some("workspace_status"), Some("cmd-123"))
    );
    assert_eq!(r["data"]["workspace_id"], "ws-123");
    assert!(r["data"]["nodes"]["ready"].as_u64() <= r["data"]["nodes"]["total"].as_u64());
    assert!(r["timestamp"].is_string());
}

#[test]
fn log_streams_run_on_the_timer_until_stopped() {
    let (mut h, mut s) = authed();
    let req = json!({"type": "stream_logs", "id": "cmd-124", "data": {"workspace_id": "ws-123",
        "namespace": "frontend", "pod": "api-server-abc123", "container": "api", "tail_lines": 2}});
    assert!(send(&mut h, &mut s, &req.to_string()).is_empty());
    assert!(s.deadline().unwrap() <= h.now, "the backlog is due at once");
    s.timer(&mut h.cx());
    let lines = h.sent();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["type"], "log_entry");
    assert_eq!(lines[0]["data"]["stream_id"], "cmd-124");
    assert_eq!(lines[1]["seq"], 2);
    h.now += Duration::from_secs(1);
    s.timer(&mut h.cx());
    assert_eq!(h.sent().len(), 10, "10 lines/s, the default --events rate");
    let r = one(&mut h, &mut s, req);
    assert_eq!(code(&r), "INVALID_MESSAGE_FORMAT", "the stream id is taken");
    let stop = json!({"type": "stop_stream", "id": "cmd-125", "data": {"stream_id": "cmd-124"}});
    assert!(send(&mut h, &mut s, &stop.to_string()).is_empty());
    let r = one(&mut h, &mut s, stop);
    assert_eq!(
        (code(&r), r["id"].as_str()),
        ("RESOURCE_NOT_FOUND", Some("cmd-125"))
    );
}

#[test]
fn pings_every_period_and_idle_connections_close() {
    let (mut h, mut s) = setup(|c| c.heartbeat = Some(Duration::from_millis(100)));
    let start = h.now;
    assert_eq!(s.deadline(), Some(start + Duration::from_millis(100)));
    h.now += Duration::from_millis(100);
    s.timer(&mut h.cx());
    let ping = h.sent().pop().unwrap();
    assert_eq!(ping["type"], "ping");
    assert_eq!(
        ping.as_object().unwrap().len(),
        2,
        "type and timestamp only: {ping}"
    );
    // A pong keeps the connection: the idle deadline moves.
    h.now = start + Duration::from_millis(900);
    send(&mut h, &mut s, r#"{"type":"pong"}"#);
    h.now = start + Duration::from_millis(1_100);
    s.timer(&mut h.cx());
    assert!(h.fx.close.is_none());
    h.now = start + Duration::from_millis(1_900);
    s.timer(&mut h.cx());
    assert_eq!(
        h.fx.close.as_ref().map(|c| c.0),
        Some(1000),
        "10 periods without a message"
    );
    let (h, s) = setup(|_| {});
    assert_eq!(s.deadline(), Some(h.now + PING_PERIOD), "30 s by default");
}

#[test]
fn too_big_sends_message_too_large() {
    let (mut h, mut s) = setup(|_| {});
    s.too_big(&mut h.cx());
    let r = h.sent().pop().unwrap();
    assert_eq!(code(&r), "MESSAGE_TOO_LARGE");
    assert_eq!(r["error"]["details"]["max_bytes"], 1_048_576);
}

#[test]
fn deep_nesting_is_refused_not_recursed() {
    let (mut h, mut s) = authed();
    let deep = format!(
        r#"{{"type":"subscribe","id":"d","data":{}}}"#,
        "[".repeat(10_000)
    );
    assert_eq!(
        code(&send(&mut h, &mut s, &deep)[0]),
        "INVALID_MESSAGE_FORMAT"
    );
    let deep = "[".repeat(10_000);
    assert_eq!(
        code(&send(&mut h, &mut s, &deep)[0]),
        "INVALID_MESSAGE_FORMAT"
    );
}

#[test]
fn subscribe_unsubscribe_cycles_leave_nothing_behind() {
    let (mut h, mut s) = authed();
    for i in 0..10_000 {
        let r = one(
            &mut h,
            &mut s,
            subscribe(&format!("s{i}"), &format!("ws-{i}")),
        );
        let sub = r["subscription_id"].as_str().unwrap().to_owned();
        let unsub = json!({"type": "unsubscribe", "id": "u", "data": {"subscription_id": sub}});
        assert!(send(&mut h, &mut s, &unsub.to_string()).is_empty());
    }
    assert_eq!(h.hub.subscriptions(), 0);
    assert_eq!(h.cx().rooms().count(), 0);
    assert!(s.subs.is_empty());
}
