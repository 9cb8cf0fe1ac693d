//! squall-server speaks KECS (seeds/kecs.md) as schemas/kecs says: every documented exchange
//! over loopback sockets, every frame in both directions checked against the profile.

use crate::support::{self, Checked};

use futures_util::SinkExt;
use serde_json::{json, Value};
use squall::protocol::Direction;
use squall_server::{spawn, Config, Profile as ServerProfile, ServerHandle};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "kecs-secret";

fn server(tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        threads: 2,
        events_per_sec: 0.0,
        auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    tweak(&mut config);
    spawn(config).expect("server starts")
}

crate::checked_client!(Client);

impl Client {
    async fn open(server: &ServerHandle, path: &str) -> Client {
        Client(Checked::connect(server.addr(), path, support::profile("kecs")).await)
    }

    /// Connects with the query token and reads `connected`.
    async fn connected(server: &ServerHandle) -> Client {
        let mut c = Client::open(server, &format!("/kecs/ws?token={TOKEN}")).await;
        let hello = c.recv().await;
        assert_eq!(hello["type"], "connected", "{hello}");
        c
    }

    /// The next frame that is not an event (events may arrive before a reply).
    async fn reply(&mut self) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] != "event" {
                return v;
            }
        }
    }

    async fn expect_close(&mut self, code: u16) {
        assert_eq!(self.next().await, Err(code));
    }
}

fn subscribe(id: &str, payload: Value) -> Value {
    json!({"id": id, "type": "subscribe", "action": "events", "payload": payload})
}

fn error_code(v: &Value) -> &str {
    assert_eq!(v["type"], "error", "{v}");
    v["payload"]["code"].as_str().unwrap()
}

#[tokio::test]
async fn query_token_connects_on_both_paths_and_a_bad_one_is_refused() {
    let server = server(|c| c.profile = ServerProfile::Kecs);
    for path in ["/kecs/ws", "/ws"] {
        let mut c = Client::open(&server, &format!("{path}?token={TOKEN}")).await;
        let hello = c.recv().await;
        assert_eq!(hello["type"], "connected");
        assert!(hello["payload"]["sessionId"]
            .as_str()
            .unwrap()
            .starts_with("ws-session-"));
    }
    let mut c = Client::open(&server, "/kecs/ws?token=wrong").await;
    assert_eq!(error_code(&c.recv().await), "AUTH_FAILED");
    let bye = c.recv().await;
    assert_eq!(bye["type"], "disconnecting");
    assert_eq!(bye["payload"]["code"], 1008);
    c.expect_close(1008).await;
}

#[tokio::test]
async fn auth_message_unlocks_requests() {
    let server = server(|_| {});
    let mut c = Client::open(&server, "/kecs/ws").await;
    c.send(subscribe("sub-001", json!({"eventTypes": ["task"]})))
        .await;
    let refused = c.recv().await;
    assert_eq!(error_code(&refused), "AUTH_FAILED");
    assert_eq!(refused["id"], "sub-001");
    c.send(json!({"type": "auth", "token": TOKEN})).await;
    assert_eq!(c.recv().await["type"], "connected");
    c.send(subscribe("sub-001", json!({"eventTypes": ["task"]})))
        .await;
    let ack = c.recv().await;
    assert_eq!(ack["type"], "subscribe_ack");
    assert_eq!(ack["payload"]["subscriptionId"], "sub-001");

    let mut bad = Client::open(&server, "/kecs/ws").await;
    bad.send(json!({"type": "auth", "token": "your-auth-token"}))
        .await;
    assert_eq!(error_code(&bad.recv().await), "AUTH_FAILED");
    assert_eq!(bad.recv().await["type"], "disconnecting");
    bad.expect_close(1008).await;
}

/// Reads `n` events, checking each room's sequence numbers follow on one by one; returns them.
async fn events(c: &mut Client, n: usize) -> Vec<Value> {
    let mut seqs: HashMap<String, u64> = HashMap::new();
    let mut out = Vec::new();
    while out.len() < n {
        let e = c.recv().await;
        assert_eq!(e["type"], "event", "{e}");
        let room = e["room"].as_str().unwrap().to_owned();
        let seq = e["seq"].as_u64().unwrap();
        if let Some(last) = seqs.insert(room.clone(), seq) {
            assert_eq!(seq, last + 1, "room {room}: seq {seq} after {last}");
        }
        out.push(e);
    }
    out
}

#[tokio::test]
async fn filtered_events_arrive_in_sequence_until_unsubscribed() {
    let server = server(|c| c.events_per_sec = 200.0);
    let mut c = Client::connected(&server).await;
    // The document's subscription: only tasks can be RUNNING or PENDING.
    c.send(subscribe(
        "sub-001",
        json!({"eventTypes": ["cluster", "service", "task"],
        "clusters": ["production", "staging"], "services": ["web-api"],
        "filters": {"status": ["RUNNING", "PENDING"]}}),
    ))
    .await;
    assert_eq!(c.reply().await["payload"]["status"], "active");
    c.send(subscribe("sub-002", json!({"eventTypes": ["deployment", "service"],
        "clusters": ["staging"], "services": ["worker"], "filters": {"action": ["PROGRESS", "DELETE"]}})))
    .await;
    assert_eq!(c.reply().await["id"], "sub-002");
    let seen = events(&mut c, 60).await;
    let mut kinds = HashMap::new();
    for e in &seen {
        let p = &e["payload"];
        let kind = p["eventType"].as_str().unwrap();
        *kinds.entry(kind.to_owned()).or_insert(0) += 1;
        match kind {
            "task" => {
                assert!(["RUNNING", "PENDING"].contains(&p["task"]["lastStatus"].as_str().unwrap()));
                let arn = p["task"]["clusterArn"].as_str().unwrap();
                assert!(
                    arn.ends_with("/production") || arn.ends_with("/staging"),
                    "{arn}"
                );
            }
            "deployment" => {
                assert_eq!(p["action"], "PROGRESS");
                assert!(p["deployment"]["serviceArn"]
                    .as_str()
                    .unwrap()
                    .ends_with("service/staging/worker"));
            }
            "service" => {
                assert_eq!(p["action"], "DELETE");
                assert_eq!(p["service"]["serviceName"], "worker");
            }
            other => panic!("no {other} event passes the filters: {e}"),
        }
    }
    assert!(
        kinds.contains_key("task") && kinds.contains_key("deployment"),
        "{kinds:?}"
    );

    for id in ["sub-001", "sub-002"] {
        c.send(
            json!({"id": format!("un-{id}"), "type": "unsubscribe", "action": "events",
            "payload": {"subscriptionId": id}}),
        )
        .await;
    }
    c.send(subscribe(
        "sub-003",
        json!({"eventTypes": ["cluster"], "clusters": ["development"]}),
    ))
    .await;
    let ack = c.reply().await;
    assert_eq!(ack["id"], "sub-003", "unsubscribe has no reply: {ack}");
    // Events queued before the unsubscribes precede the ack; after it, only the new room.
    for e in events(&mut c, 5).await {
        assert_eq!(e["room"], "cluster/development", "{e}");
        assert_eq!(e["payload"]["cluster"]["clusterName"], "development");
    }
    c.send(
        json!({"id": "un-again", "type": "unsubscribe", "action": "events",
        "payload": {"subscriptionId": "sub-001"}}),
    )
    .await;
    let gone = c.reply().await;
    assert_eq!(error_code(&gone), "RESOURCE_NOT_FOUND");
    assert_eq!(gone["id"], "un-again");
}

#[tokio::test]
async fn subscribers_with_the_same_filters_share_each_event() {
    let server = server(|c| c.events_per_sec = 100.0);
    let sub = subscribe(
        "s",
        json!({"eventTypes": ["task"], "clusters": ["production"]}),
    );
    let mut a = Client::connected(&server).await;
    a.send(sub.clone()).await;
    a.reply().await;
    let first_a = events(&mut a, 1).await.remove(0);
    let mut b = Client::connected(&server).await;
    b.send(sub).await;
    b.reply().await;
    let first_b = first_event(&mut b).await;
    // A sees the same event (same id, same seq) that B saw first.
    let seq = first_b["seq"].as_u64().unwrap();
    assert!(seq > first_a["seq"].as_u64().unwrap());
    loop {
        let e = a.recv().await;
        if e["seq"].as_u64() == Some(seq) {
            assert_eq!(e, first_b);
            break;
        }
    }
}

async fn first_event(c: &mut Client) -> Value {
    let e = c.recv().await;
    assert_eq!(e["type"], "event");
    e
}

#[tokio::test]
async fn commands_are_answered() {
    let server = server(|_| {});
    let mut c = Client::connected(&server).await;
    let task = "arn:aws:ecs:us-east-1:000000000000:task/production/1234567890abcdef";
    c.send(
        json!({"id": "cmd-001", "type": "command", "action": "execute", "payload": {
        "cluster": "production", "task": task, "container": "webapp",
        "command": "/bin/bash", "interactive": true}}),
    )
    .await;
    let ack = c.recv().await;
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_str()),
        (Some("command_ack"), Some("cmd-001"))
    );
    let url = ack["payload"]["websocketUrl"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("ws://{}/exec/exec-", server.addr())),
        "{url}"
    );
    c.send(
        json!({"id": "cmd-002", "type": "command", "action": "execute", "payload": {
        "cluster": "staging", "task": task, "container": "webapp", "command": "ls"}}),
    )
    .await;
    assert_eq!(error_code(&c.recv().await), "RESOURCE_NOT_FOUND");
    let arn = "arn:aws:ecs:us-east-1:000000000000:service/production/web-api";
    let mut get = json!({"id": "metrics-001", "type": "command", "action": "get_metrics", "payload": {
        "resource": "service", "resourceArn": arn,
        "metrics": ["CPUUtilization", "MemoryUtilization"], "period": 60,
        "statistics": ["Average", "Maximum"]}});
    c.send(get.clone()).await;
    let m = c.recv().await;
    assert_eq!(
        (m["type"].as_str(), m["id"].as_str()),
        (Some("metrics"), Some("metrics-001"))
    );
    assert_eq!(m["payload"]["resourceArn"], arn);
    for name in ["CPUUtilization", "MemoryUtilization"] {
        let s = &m["payload"]["metrics"][name];
        assert_eq!(s["Unit"], "Percent");
        assert!(s["Average"].as_f64().unwrap() <= s["Maximum"].as_f64().unwrap());
    }
    // An unknown metric is a bad parameter, answered as the document's error example.
    get["payload"]["metrics"] = json!(["DiskUtilization"]);
    c.send(get).await;
    assert_eq!(error_code(&c.recv().await), "INVALID_REQUEST");
}

#[tokio::test]
async fn bad_input_gets_documented_errors_and_the_connection_stays() {
    let server = server(|_| {});
    let mut c = Client::connected(&server).await;
    c.send_bad(r#"{"id":"x","type":"subscribe","action":"events","payload":{"eventTypes":["invalid-type"]}}"#)
        .await;
    let e = c.recv().await;
    assert_eq!(error_code(&e), "INVALID_REQUEST");
    assert_eq!(
        e["payload"]["details"],
        json!({"field": "eventTypes", "reason": "Unknown event type: 'invalid-type'"})
    );
    for bad in [
        "not json",
        r#"{"type":"reboot","id":"r1"}"#,
        r#"{"type":"subscribe","id":"s1","payload":{"eventTypes":["task"]}}"#,
        r#"{"type":"command","action":"execute","payload":{"cluster":"production"}}"#,
        r#"{"type":"subscribe","action":"events","id":"s2","payload":{"eventTypes":["task"],"clusters":"prod"}}"#,
        r#"{"type":"ping"}"#,
    ] {
        c.send_bad(bad).await;
        assert_eq!(error_code(&c.recv().await), "INVALID_REQUEST", "{bad}");
    }
    c.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(error_code(&c.recv().await), "INVALID_REQUEST");
    c.send(subscribe("ok", json!({"eventTypes": ["task"]})))
        .await;
    assert_eq!(
        c.recv().await["type"],
        "subscribe_ack",
        "still open and serving"
    );
    let metrics = metrics(&server).await;
    for (reason, n) in [
        ("invalid_json", 1),
        ("unknown_type", 2),
        ("binary_frame", 1),
        ("invalid_request", 4),
    ] {
        let line =
            format!("squall_server_rejects_total{{protocol=\"kecs\",reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
}

/// Sends one raw HTTP request and reads the whole response.
async fn http(server: &ServerHandle, request: &str) -> String {
    support::http_exchange(server.addr(), request).await
}

/// The server's Prometheus text.
async fn metrics(server: &ServerHandle) -> String {
    support::metrics_text(server.addr()).await
}

#[tokio::test]
async fn published_events_reach_the_room_stamped() {
    let server = server(|_| {});
    let mut c = Client::connected(&server).await;
    c.send(subscribe(
        "s",
        json!({"eventTypes": ["deployment"], "clusters": ["production"],
        "services": ["web-api"]}),
    ))
    .await;
    assert_eq!(c.recv().await["type"], "subscribe_ack");
    let room = "deployment/production/web-api";
    let event = json!({"id": "evt-pub-1", "type": "event", "room": room, "payload": {
        "eventType": "deployment", "action": "PROGRESS", "deployment": {
            "serviceArn": "arn:aws:ecs:us-east-1:000000000000:service/production/web-api",
            "deploymentId": "deploy-001", "status": "IN_PROGRESS"}}});
    let body = event.to_string();
    let request = format!(
        "POST /publish?protocol=kecs&room={room} HTTP/1.1\r\nHost: t\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = http(&server, &request).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let got = c.recv().await;
    assert_eq!(
        (got["id"].as_str(), got["seq"].as_u64()),
        (Some("evt-pub-1"), Some(1))
    );
    assert!(got["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn the_51st_subscription_is_refused_unless_the_limit_is_off() {
    for limited in [true, false] {
        let server = server(|c| c.limits.subscriptions = limited);
        let mut c = Client::connected(&server).await;
        for i in 0..50 {
            c.send(subscribe(
                &format!("s{i}"),
                json!({"eventTypes": ["cluster"]}),
            ))
            .await;
            assert_eq!(c.recv().await["type"], "subscribe_ack");
        }
        c.send(subscribe("s50", json!({"eventTypes": ["cluster"]})))
            .await;
        let last = c.recv().await;
        if limited {
            assert_eq!(error_code(&last), "SUBSCRIPTION_ERROR");
            assert_eq!(last["id"], "s50");
        } else {
            assert_eq!(last["type"], "subscribe_ack");
        }
    }
}

#[tokio::test]
async fn server_pings_at_the_configured_period() {
    let server = server(|c| c.heartbeat = Some(Duration::from_millis(50)));
    // Taken before the connection opens, so two periods must pass before the second ping.
    let start = Instant::now();
    let mut c = Client::connected(&server).await;
    for _ in 0..2 {
        assert_eq!(c.recv().await["type"], "ping");
        c.send(json!({"type": "pong"})).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn rate_violations_warn_then_throttle_then_terminate() {
    let server = server(|_| {});
    let mut c = Client::connected(&server).await;
    let pong = json!({"type": "pong"}).to_string();
    assert!(support::profile("kecs")
        .check_text(Direction::Out, &pong)
        .is_ok());
    let mut stages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    let code = loop {
        assert!(
            Instant::now() < deadline,
            "no termination; stages so far {stages:?}"
        );
        if stages.last().is_none_or(|s| s != "terminated") {
            // The server may have closed already: a failed write shows up as the close below.
            for _ in 0..150 {
                let _ = c.ws.feed(Message::text(pong.clone())).await;
            }
            let _ = c.ws.flush().await;
        }
        // Bursts go out every 100 ms until a frame shows up.
        let Ok(next) = timeout(Duration::from_millis(100), c.next()).await else {
            continue;
        };
        match next {
            Ok(v) if v["type"] == "error" => {
                assert_eq!(error_code(&v), "RATE_LIMIT_EXCEEDED");
                stages.push(
                    v["payload"]["details"]["stage"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            Ok(v) => {
                assert_eq!(v["type"], "disconnecting", "{v}");
                assert_eq!(v["payload"]["code"], 1008);
            }
            Err(code) => break code,
        }
    };
    assert_eq!(stages, ["warning", "throttled", "terminated"]);
    assert_eq!(code, 1008);

    let server = self::server(|c| c.limits.rate = false);
    let mut c = Client::connected(&server).await;
    for _ in 0..300 {
        c.ws.feed(Message::text(pong.clone())).await.unwrap();
    }
    c.ws.flush().await.unwrap();
    c.send(subscribe("after-burst", json!({"eventTypes": ["task"]})))
        .await;
    assert_eq!(
        c.recv().await["type"],
        "subscribe_ack",
        "limit off: no rate error"
    );
}

#[tokio::test]
async fn shutdown_sends_disconnecting_then_1001() {
    let server = server(|_| {});
    let mut c = Client::connected(&server).await;
    let stopping = tokio::task::spawn_blocking(move || server.shutdown());
    let bye = c.recv().await;
    assert_eq!(bye["type"], "disconnecting");
    assert_eq!(
        bye["payload"],
        json!({"reason": "Server shutdown", "code": 1001})
    );
    c.expect_close(1001).await;
    stopping.await.unwrap();
}
