//! The KECS session as a state machine, driven through `session::Harness`.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use super::*;
use crate::session::{Harness, Proto};

/// A session opened with `query` (e.g. `token=t`), and what it sent on open.
fn open(h: &mut Harness, query: &str) -> (Box<dyn session::Session>, Vec<Value>) {
    let headers = [("Host".to_owned(), "example.test:8080".to_owned())];
    let up = Upgrade {
        query,
        headers: &headers,
    };
    let mut s = admit(&up, &h.config).ok().unwrap().session;
    s.open(&mut h.cx());
    let sent = h.sent();
    (s, sent)
}

fn send(h: &mut Harness, s: &mut dyn session::Session, frame: Value) -> Vec<Value> {
    s.text(&Utf8Bytes::from(frame.to_string()), &mut h.cx());
    h.sent()
}

fn raw(h: &mut Harness, s: &mut dyn session::Session, text: &str) -> Value {
    s.text(&Utf8Bytes::from(text.to_owned()), &mut h.cx());
    h.sent().pop().expect("a reply")
}

fn error_code(v: &Value) -> &str {
    assert_eq!(v["type"], "error", "{v}");
    v["payload"]["code"].as_str().unwrap()
}

#[test]
fn query_token_connects_or_fails() {
    let mut h = Harness::new(Proto::Kecs);
    h.config.auth_token = Some("secret".into());
    let (_, sent) = open(&mut h, "token=secret");
    assert_eq!(sent[0]["type"], "connected");
    assert!(sent[0]["payload"]["sessionId"]
        .as_str()
        .unwrap()
        .starts_with("ws-session-"));
    assert_eq!(
        sent[0]["payload"]["serverVersion"],
        env!("CARGO_PKG_VERSION")
    );
    let (_, sent) = open(&mut h, "token=wrong");
    assert_eq!(error_code(&sent[0]), "AUTH_FAILED");
    assert_eq!(sent[1]["type"], "disconnecting");
    assert_eq!(sent[1]["payload"]["code"], 1008);
    assert_eq!(h.fx.close.as_ref().map(|c| c.0), Some(1008));
}

#[test]
fn auth_message_is_required_before_requests() {
    let mut h = Harness::new(Proto::Kecs);
    let (mut s, sent) = open(&mut h, "");
    assert!(sent.is_empty(), "nothing before auth: {sent:?}");
    let sub = json!({"id": "s1", "type": "subscribe", "action": "events",
        "payload": {"eventTypes": ["task"]}});
    let r = send(&mut h, &mut *s, sub.clone());
    assert_eq!(error_code(&r[0]), "AUTH_FAILED");
    assert_eq!(r[0]["id"], "s1");
    assert!(h.fx.close.is_none(), "the client may still authenticate");
    let r = send(&mut h, &mut *s, json!({"type": "auth", "token": "any"}));
    assert_eq!(r[0]["type"], "connected");
    assert_eq!(send(&mut h, &mut *s, sub)[0]["type"], "subscribe_ack");
    // Without a configured token, an empty one still fails.
    let r = send(&mut h, &mut *s, json!({"type": "auth", "token": ""}));
    assert_eq!(error_code(&r[0]), "AUTH_FAILED");
    assert_eq!(h.fx.close.as_ref().map(|c| c.0), Some(1008));
}

#[test]
fn auth_times_out_and_pings_follow_the_period() {
    let mut h = Harness::new(Proto::Kecs);
    h.config.heartbeat = Some(Duration::from_secs(3));
    let (mut s, _) = open(&mut h, "");
    let start = h.now;
    assert_eq!(s.deadline(), Some(start + Duration::from_secs(3)));
    h.now = start + Duration::from_secs(3);
    s.timer(&mut h.cx());
    let ping = h.sent().pop().unwrap();
    assert_eq!(ping["type"], "ping");
    assert!(ping.get("payload").is_none() && ping["timestamp"].is_string());
    assert_eq!(s.deadline(), Some(start + Duration::from_secs(6)));
    h.now = start + AUTH_TIMEOUT;
    s.timer(&mut h.cx());
    let sent = h.sent();
    assert_eq!(error_code(&sent[0]), "AUTH_FAILED");
    assert_eq!(sent[1]["type"], "disconnecting");
    assert!(h.fx.close.is_some());
    h.config.heartbeat = Some(Duration::ZERO);
    let (s, _) = open(&mut h, "token=t");
    assert_eq!(
        s.deadline(),
        None,
        "zero switches pings off; authenticated: no auth deadline"
    );
}

#[test]
fn bad_input_gets_invalid_request() {
    let mut h = Harness::new(Proto::Kecs);
    let (mut s, _) = open(&mut h, "token=t");
    let s = &mut *s;
    let field = |v: &Value| {
        v["payload"]["details"]["field"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (text, want) in [
        ("not json", "message"),
        ("[1,2]", "message"),
        (r#"{"id":5,"type":"pong"}"#, "id"),
        (r#"{"id":""}"#, "id"),
        (r#"{"id":"x"}"#, "type"),
        (r#"{"id":"x","type":7}"#, "type"),
        (r#"{"id":"x","type":"reboot"}"#, "type"),
        (r#"{"id":"x","type":"subscribe"}"#, "action"),
        (r#"{"id":"x","type":"command","action":"reboot"}"#, "action"),
        (
            r#"{"type":"command","action":"execute","payload":{}}"#,
            "id",
        ),
        (
            r#"{"id":"x","type":"subscribe","action":"events"}"#,
            "payload",
        ),
        (
            r#"{"id":"x","type":"subscribe","action":"events","payload":{"eventTypes":["invalid-type"]}}"#,
            "eventTypes",
        ),
        (r#"{"id":"x","type":"auth"}"#, "token"),
    ] {
        let r = raw(&mut h, s, text);
        assert_eq!(error_code(&r), "INVALID_REQUEST", "{text}");
        assert_eq!(field(&r), want, "{text}: {r}");
    }
    let r = raw(&mut h, s, r#"{"id":"x","type":"reboot"}"#);
    assert_eq!(r["id"], "x", "a usable id is echoed");
    s.binary(&Bytes::from_static(b"\x01"), &mut h.cx());
    assert_eq!(error_code(&h.sent()[0]), "INVALID_REQUEST");
    assert!(h.fx.close.is_none());
    assert!(raw_silent(&mut h, s, r#"{"type":"pong"}"#));
    let counters = h.hub.counters();
    let rejects = |reason: &str| {
        counters
            .iter()
            .find(|((p, m, l), _)| *p == Some(Proto::Kecs) && *m == "rejects" && *l == reason)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(rejects("invalid_json"), 2);
    assert_eq!(rejects("unknown_type"), 2);
    assert_eq!(rejects("binary_frame"), 1);
}

fn raw_silent(h: &mut Harness, s: &mut dyn session::Session, text: &str) -> bool {
    s.text(&Utf8Bytes::from(text.to_owned()), &mut h.cx());
    h.sent().is_empty()
}

#[test]
fn subscriptions_join_rooms_and_events_flow_into_them() {
    let mut h = Harness::new(Proto::Kecs);
    let (mut s, _) = open(&mut h, "token=t");
    let s = &mut *s;
    let sub = json!({"id": "sub-001", "type": "subscribe", "action": "events",
        "payload": {"eventTypes": ["task", "deployment"], "clusters": ["production"],
        "services": ["web-api"], "filters": {"status": ["RUNNING"]}}});
    let ack = send(&mut h, s, sub.clone()).remove(0);
    assert_eq!(ack["id"], "sub-001");
    assert_eq!(
        ack["payload"],
        json!({"subscriptionId": "sub-001", "status": "active"})
    );
    let r = send(&mut h, s, sub).remove(0);
    assert_eq!(error_code(&r), "SUBSCRIPTION_ERROR");
    let published = h.hub.generate(Proto::Kecs, 3, |room, seq| {
        events::event(room, crate::proto::Seq::shown(seq), &mut rand::rng())
    });
    assert_eq!(published, 3, "three task events; no deployment is RUNNING");
    for (room, event) in h.published() {
        assert_eq!(room, "task/production?status=RUNNING");
        assert_eq!(event["payload"]["task"]["lastStatus"], "RUNNING");
    }
    let unsub = json!({"id": "u1", "type": "unsubscribe", "action": "events",
        "payload": {"subscriptionId": "sub-001"}});
    assert!(
        send(&mut h, s, unsub.clone()).is_empty(),
        "no documented reply"
    );
    assert_eq!(h.cx().rooms().count(), 0);
    let r = send(&mut h, s, unsub).remove(0);
    assert_eq!(error_code(&r), "RESOURCE_NOT_FOUND");
    assert_eq!(r["id"], "u1");
}

#[test]
fn the_51st_subscription_is_refused_unless_the_limit_is_off() {
    for limited in [true, false] {
        let mut h = Harness::new(Proto::Kecs);
        h.config.limits.subscriptions = limited;
        let (mut s, _) = open(&mut h, "token=t");
        for i in 0..=subs::MAX_SUBSCRIPTIONS {
            let sub = json!({"id": format!("s{i}"), "type": "subscribe", "action": "events",
                "payload": {"eventTypes": ["cluster"]}});
            s.text(&Utf8Bytes::from(sub.to_string()), &mut h.cx());
        }
        let last = h.sent().pop().unwrap();
        if limited {
            assert_eq!(error_code(&last), "SUBSCRIPTION_ERROR");
            assert_eq!(last["id"], "s50");
        } else {
            assert_eq!(last["type"], "subscribe_ack");
        }
    }
}

#[test]
fn rate_violations_escalate_to_termination() {
    let mut h = Harness::new(Proto::Kecs);
    let (mut s, _) = open(&mut h, "token=t");
    let burst = |h: &mut Harness, s: &mut dyn session::Session| {
        for _ in 0..=rate::MAX_RATE + 5 {
            s.text(&Utf8Bytes::from_static(r#"{"type":"pong"}"#), &mut h.cx());
        }
        h.sent()
    };
    let stage = |v: &Value| {
        v["payload"]["details"]["stage"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let sent = burst(&mut h, &mut *s);
    assert_eq!(sent.len(), 1);
    assert_eq!(error_code(&sent[0]), "RATE_LIMIT_EXCEEDED");
    assert_eq!(stage(&sent[0]), "warning");
    h.now += Duration::from_secs(1);
    let sent = burst(&mut h, &mut *s);
    assert_eq!(stage(&sent[0]), "throttled");
    assert_eq!(sent[0]["payload"]["details"]["retryAfterMs"], 5000);
    h.now += Duration::from_secs(1);
    let sent = burst(&mut h, &mut *s);
    assert_eq!(stage(&sent[0]), "terminated");
    assert_eq!(sent[1]["type"], "disconnecting");
    assert_eq!(h.fx.close.as_ref().map(|c| c.0), Some(1008));

    let mut h = Harness::new(Proto::Kecs);
    h.config.limits.rate = false;
    let (mut s, _) = open(&mut h, "token=t");
    assert!(burst(&mut h, &mut *s).is_empty(), "limit off: no frame");
}

#[test]
fn shutdown_says_disconnecting_and_commands_answer() {
    let mut h = Harness::new(Proto::Kecs);
    let (mut s, _) = open(&mut h, "token=t");
    let exec = json!({"id": "cmd-001", "type": "command", "action": "execute", "payload": {
        "cluster": "production",
        "task": "arn:aws:ecs:us-east-1:000000000000:task/production/1234567890abcdef",
        "container": "webapp", "command": "/bin/bash", "interactive": true}});
    let ack = send(&mut h, &mut *s, exec).remove(0);
    assert_eq!(ack["type"], "command_ack");
    let url = ack["payload"]["websocketUrl"].as_str().unwrap();
    assert!(
        url.starts_with("ws://example.test:8080/exec/exec-"),
        "{url}"
    );
    s.shutdown(&mut h.cx());
    let bye = h.sent().remove(0);
    assert_eq!(bye["type"], "disconnecting");
    assert_eq!(
        bye["payload"],
        json!({"reason": "Server shutdown", "code": 1001})
    );
}

#[test]
fn deep_nesting_and_subscribe_cycles_leave_nothing_behind() {
    let mut h = Harness::new(Proto::Kecs);
    h.config.limits.rate = false;
    let (mut s, _) = open(&mut h, "token=t");
    let s = &mut *s;
    let deep = format!(
        r#"{{"id":"d","type":"subscribe","action":"events","payload":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(error_code(&raw(&mut h, s, &deep)), "INVALID_REQUEST");
    for i in 0..10_000 {
        let id = format!("c{i}");
        let sub = json!({"id": id, "type": "subscribe", "action": "events",
            "payload": {"eventTypes": ["task", "service"], "clusters": ["a", "b"]}});
        assert_eq!(send(&mut h, s, sub)[0]["type"], "subscribe_ack");
        let unsub = json!({"type": "unsubscribe", "action": "events",
            "payload": {"subscriptionId": id}});
        assert!(send(&mut h, s, unsub).is_empty());
    }
    assert_eq!(h.hub.subscriptions(), 0);
    assert_eq!(h.cx().rooms().count(), 0);
}
