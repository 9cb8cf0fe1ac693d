//! RPC methods: echo, sleep and timeouts, the simulated database, publish, notifications, panics.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::*;

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
