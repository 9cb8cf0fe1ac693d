//! squall-server's Hexabase protocol end to end over loopback sockets. Every frame the
//! server sends is checked against schemas/hexabase (and every well-formed frame the test
//! sends too), so the server and the schemas check each other.

use crate::support::{self, Checked};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use squall_server::hexabase::{MAX_STREAMS, MAX_SUBSCRIPTIONS};
use squall_server::{Config, ServerHandle};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJl";

fn server(events_per_sec: f64, tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        threads: 2,
        events_per_sec,
        ..Default::default()
    };
    tweak(&mut config);
    squall_server::spawn(config).expect("server starts")
}

crate::checked_client!(Client);

impl Client {
    async fn connect(server: &ServerHandle, path: &str) -> Client {
        Client(Checked::connect(server.addr(), path, support::profile("hexabase")).await)
    }

    /// Connects to /hexabase/ws and authenticates.
    async fn authed(server: &ServerHandle) -> Client {
        let mut c = Client::connect(server, "/hexabase/ws").await;
        c.send(json!({"type": "auth", "token": TOKEN})).await;
        let r = c.recv().await;
        assert_eq!(
            (r["type"].as_str(), r["success"].as_bool()),
            (Some("auth_result"), Some(true))
        );
        c
    }

    /// The next frame, which must be an `error` with `code` answering request `id`.
    async fn error(&mut self, code: &str, id: &str) -> Value {
        let r = self.recv().await;
        assert_eq!((error_code(&r), r["id"].as_str()), (code, Some(id)), "{r}");
        r
    }

    /// Frames up to and including the first of `kind` (events may come first).
    async fn until(&mut self, kind: &str) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return (before, frame);
            }
            before.push(frame);
        }
    }

    /// The close frame's code, skipping (and checking) the frames before it.
    async fn closed(&mut self) -> CloseCode {
        self.0
            .closed()
            .await
            .expect("a close frame with a code")
            .code
    }
}

fn error_code(v: &Value) -> &str {
    assert_eq!(v["type"], "error", "{v}");
    v["error"]["code"].as_str().unwrap()
}

fn subscribe(id: &str, resource: &str, rid: &str, events: &[&str]) -> Value {
    json!({"type": "subscribe", "id": id,
        "data": {"resource": resource, format!("{resource}_id"): rid, "events": events}})
}

/// A workspace subscription to status changes.
fn watch(id: &str, workspace: &str) -> Value {
    subscribe(id, "workspace", workspace, &["status_changed"])
}

fn status_request(id: &str) -> Value {
    json!({"type": "get_workspace_status", "id": id, "data": {"workspace_id": "ws-123"}})
}

#[tokio::test]
async fn auth_is_required_and_checked_on_both_paths() {
    let server = server(0.0, |c| {
        c.auth_token = Some(TOKEN.into());
        c.profile = "hexabase".parse().unwrap();
    });
    for path in ["/ws", "/hexabase/ws"] {
        let mut c = Client::connect(&server, path).await;
        c.send(watch("sub-123", "ws-123")).await;
        c.error("AUTH_REQUIRED", "sub-123").await;
        c.send(json!({"type": "auth", "token": "eyJ.d3Jvbmc.eA"}))
            .await;
        let r = c.recv().await;
        assert_eq!(r["type"], "auth_result");
        assert_eq!(
            (r["success"].as_bool(), r["error"].as_str()),
            (Some(false), Some("Invalid token"))
        );
        c.send(status_request("cmd-1")).await;
        assert_eq!(error_code(&c.recv().await), "AUTH_REQUIRED");
        c.send(json!({"type": "auth", "token": TOKEN})).await;
        let r = c.recv().await;
        assert_eq!(r["success"], true);
        assert!(r["user_id"].as_str().unwrap().starts_with("user-"));
        assert_eq!(r["message"], "Authenticated successfully");
        c.send(status_request("cmd-2")).await;
        assert_eq!(c.recv().await["type"], "workspace_status");
    }
}

#[tokio::test]
async fn subscribe_to_every_resource_and_unsubscribe() {
    let server = server(0.0, |_| {});
    let mut c = Client::authed(&server).await;
    let requests = [
        subscribe(
            "sub-123",
            "workspace",
            "ws-123",
            &["status_changed", "resource_updated", "alert_triggered"],
        ),
        subscribe(
            "sub-124",
            "organization",
            "org-123",
            &["member_added", "member_removed", "billing_updated"],
        ),
        subscribe(
            "sub-125",
            "project",
            "proj-123",
            &["created", "updated", "deleted", "resource_quota_exceeded"],
        ),
    ];
    let mut ids = BTreeSet::new();
    for req in requests {
        let id = req["id"].clone();
        c.send(req).await;
        let r = c.recv().await;
        assert_eq!(
            (&r["type"], &r["id"], &r["success"]),
            (&json!("subscribe_result"), &id, &json!(true))
        );
        ids.insert(r["subscription_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 3, "distinct subscription ids");
    for (i, sub) in ids.iter().enumerate() {
        let unsub = json!({"type": "unsubscribe", "id": format!("unsub-{i}"), "data": {"subscription_id": sub}});
        c.send(unsub).await;
    }
    // No reply is documented for unsubscribe: the next reply is the status, not an error.
    c.send(status_request("cmd-1")).await;
    assert_eq!(c.recv().await["type"], "workspace_status");
    let sub = ids.into_iter().next().unwrap();
    c.send(json!({"type": "unsubscribe", "id": "unsub-9", "data": {"subscription_id": sub}}))
        .await;
    c.error("RESOURCE_NOT_FOUND", "unsub-9").await;
}

/// The topic (room) an event comes from: provisioning and monitoring share one each.
fn topic(kind: &str) -> &str {
    match kind.split_once('.') {
        Some(("provisioning" | "monitoring", _)) => kind.split_once('.').unwrap().0,
        _ => kind,
    }
}

#[tokio::test]
async fn every_event_family_arrives_with_increasing_seq() {
    let server = server(100.0, |_| {});
    let mut c = Client::authed(&server).await;
    let all: [(&str, &str, &[&str]); 3] = [
        (
            "workspace",
            "ws-123",
            &["status_changed", "resource_updated", "alert_triggered"],
        ),
        (
            "organization",
            "org-123",
            &["member_added", "member_removed", "billing_updated"],
        ),
        (
            "project",
            "proj-123",
            &["created", "updated", "deleted", "resource_quota_exceeded"],
        ),
    ];
    let mut subs = Vec::new();
    for (i, (resource, id, events)) in all.into_iter().enumerate() {
        c.send(subscribe(&format!("s{i}"), resource, id, events))
            .await;
        let (_, r) = c.until("subscribe_result").await;
        subs.push(r["subscription_id"].as_str().unwrap().to_owned());
    }
    let mut seen = BTreeSet::new();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    while seen.len() < 15 {
        let e = c.recv().await;
        let kind = e["type"].as_str().unwrap().to_owned();
        let seq = e["seq"].as_u64().expect("events carry seq");
        let prev = last.insert(topic(&kind).to_owned(), seq).unwrap_or(0);
        assert!(seq > prev, "{kind}: seq {seq} after {prev}");
        assert!(
            e["timestamp"].as_str().unwrap().len() == 27,
            "microseconds: {e}"
        );
        seen.insert(kind);
    }
    assert_eq!(last.len(), 12, "12 rooms: {last:?}");
    // A witness in another room (one room: organizations have no implied topics) shows the
    // generator still running.
    let mut witness = Client::authed(&server).await;
    witness
        .send(subscribe(
            "w",
            "organization",
            "org-999",
            &["billing_updated"],
        ))
        .await;
    witness.until("subscribe_result").await;
    for sub in subs {
        c.send(json!({"type": "unsubscribe", "id": "u", "data": {"subscription_id": sub}}))
            .await;
    }
    // Events queued before the unsubscribes may still precede this reply; none may follow it.
    c.send(status_request("barrier")).await;
    c.until("workspace_status").await;
    let mut seq = 0;
    for _ in 0..10 {
        let e = witness.recv().await;
        assert_eq!(e["data"]["organization_id"], "org-999");
        assert!(e["seq"].as_u64().unwrap() > seq);
        seq = e["seq"].as_u64().unwrap();
    }
    c.send(status_request("after")).await;
    let (between, _) = c.until("workspace_status").await;
    assert!(
        between.is_empty(),
        "events after unsubscribing: {between:?}"
    );
}

#[tokio::test]
async fn workspace_status_and_log_streams() {
    let server = server(200.0, |_| {});
    let mut c = Client::authed(&server).await;
    c.send(status_request("cmd-123")).await;
    let r = c.recv().await;
    assert_eq!(
        (r["type"].as_str(), r["id"].as_str()),
        (Some("workspace_status"), Some("cmd-123"))
    );
    assert_eq!(r["data"]["workspace_id"], "ws-123");
    let logs = json!({"type": "stream_logs", "id": "cmd-124", "data": {"workspace_id": "ws-123",
        "namespace": "frontend", "pod": "api-server-abc123", "container": "api",
        "follow": true, "tail_lines": 5}});
    c.send(logs.clone()).await;
    for seq in 1..=20u64 {
        let line = c.recv().await;
        assert_eq!(line["type"], "log_entry");
        assert_eq!(line["data"]["stream_id"], "cmd-124");
        assert_eq!(line["data"]["pod"], "api-server-abc123");
        assert_eq!(line["seq"], seq, "lines are numbered without gaps");
    }
    c.send(json!({"type": "stop_stream", "id": "cmd-125", "data": {"stream_id": "cmd-124"}}))
        .await;
    c.send(status_request("barrier")).await;
    c.until("workspace_status").await;
    c.send(json!({"type": "stop_stream", "id": "cmd-126", "data": {"stream_id": "cmd-124"}}))
        .await;
    c.error("RESOURCE_NOT_FOUND", "cmd-126").await;
    // A stream without follow ends after its backlog.
    let mut once = logs.clone();
    once["id"] = json!("cmd-127");
    once["data"]["follow"] = json!(false);
    once["data"]["tail_lines"] = json!(3);
    c.send(once).await;
    for _ in 0..3 {
        assert_eq!(c.recv().await["data"]["stream_id"], "cmd-127");
    }
    c.send(status_request("after")).await;
    let (between, _) = c.until("workspace_status").await;
    assert!(between.is_empty(), "{between:?}");
    // The stream cap.
    for i in 0..MAX_STREAMS {
        let mut req = logs.clone();
        req["id"] = json!(format!("s{i}"));
        req["data"]["tail_lines"] = json!(0);
        c.send(req).await;
    }
    let mut over = logs;
    over["id"] = json!("s-over");
    c.send(over).await;
    let (_, r) = c.until("error").await;
    assert_eq!(
        (error_code(&r), r["id"].as_str()),
        ("SUBSCRIPTION_LIMIT_EXCEEDED", Some("s-over"))
    );
    assert_eq!(r["error"]["details"]["current_streams"], MAX_STREAMS);
    let metrics = http(&server, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(
        metrics.contains("squall_server_log_lines_total{protocol=\"hexabase\"}"),
        "{metrics}"
    );
}

async fn fill_subscriptions(c: &mut Client) {
    for i in 0..MAX_SUBSCRIPTIONS {
        c.send(watch(&format!("s{i}"), &format!("ws-{i}"))).await;
        assert_eq!(c.recv().await["success"], true);
    }
}

#[tokio::test]
async fn the_subscription_limit_and_switching_it_off() {
    let server = server(0.0, |_| {});
    let mut c = Client::authed(&server).await;
    fill_subscriptions(&mut c).await;
    c.send(watch("sub-126", "ws-456")).await;
    let r = c.error("SUBSCRIPTION_LIMIT_EXCEEDED", "sub-126").await;
    assert_eq!(
        r["error"]["message"],
        "Maximum number of subscriptions (100) exceeded"
    );
    assert_eq!(
        r["error"]["details"],
        json!({"current_subscriptions": 100, "requested_subscription": "workspace:ws-456"})
    );

    let server = self::server(0.0, |c| c.limits.subscriptions = false);
    let mut c = Client::authed(&server).await;
    fill_subscriptions(&mut c).await;
    c.send(watch("sub-126", "ws-456")).await;
    assert_eq!(c.recv().await["type"], "subscribe_result");
}

#[tokio::test]
async fn server_pings_and_closes_idle_connections() {
    // Periods long enough that a loaded machine does not starve the pongs past the timeout.
    let period = Duration::from_millis(300);
    let server = server(0.0, |c| c.heartbeat = Some(period));
    let mut c = Client::connect(&server, "/hexabase/ws").await;
    // Answering pings keeps the connection past the idle timeout (10 periods).
    let start = tokio::time::Instant::now();
    while start.elapsed() < period * 12 {
        let ping = c.recv().await;
        assert_eq!(ping["type"], "ping");
        c.send(json!({"type": "pong"})).await;
    }
    // Then silence: the server closes it.
    assert_eq!(c.closed().await, CloseCode::Normal);
    assert!(start.elapsed() >= period * 22);
}

#[tokio::test]
async fn oversized_message_gets_message_too_large_then_1009() {
    let server = server(0.0, |_| {});
    let mut c = Client::authed(&server).await;
    let big = json!({"type": "get_workspace_status", "id": "big",
        "data": {"workspace_id": "x".repeat(1024 * 1024)}});
    c.ws.send(Message::text(big.to_string())).await.unwrap();
    let r = c.recv().await;
    assert_eq!(error_code(&r), "MESSAGE_TOO_LARGE");
    assert_eq!(r["error"]["details"]["max_bytes"], 1_048_576);
    assert_eq!(c.closed().await, CloseCode::Size);
}

#[tokio::test]
async fn bad_input_gets_documented_errors_and_counters_move() {
    let server = server(0.0, |_| {});
    let mut c = Client::authed(&server).await;
    let bad = [
        ("not json", None),
        (r#"{"type":"ping","id":"p-1"}"#, Some("p-1")),
        (
            r#"{"type":"subscribe","id":"s-1","data":{"resource":"cluster","events":["created"]}}"#,
            Some("s-1"),
        ),
        (
            r#"{"type":"subscribe","id":"s-2","data":{"resource":"workspace","workspace_id":"ws-1","events":["member_added"]}}"#,
            Some("s-2"),
        ),
        (
            r#"{"type":"stream_logs","id":"l-1","data":{"workspace_id":"ws-1","namespace":"Bad_NS","pod":"p"}}"#,
            Some("l-1"),
        ),
        (
            r#"{"type":"get_workspace_status","id":17,"data":{"workspace_id":"ws-1"}}"#,
            None,
        ),
    ];
    for (frame, id) in bad {
        c.send_bad(frame).await;
        let r = c.recv().await;
        assert_eq!(error_code(&r), "INVALID_MESSAGE_FORMAT", "{frame}");
        assert_eq!(r["id"].as_str(), id, "{frame}");
    }
    c.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(error_code(&c.recv().await), "INVALID_MESSAGE_FORMAT");
    c.send(status_request("still-open")).await;
    assert_eq!(c.recv().await["type"], "workspace_status");
    let metrics = http(&server, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
    for reason in [
        "invalid_json",
        "unknown_type",
        "invalid_message",
        "binary_frame",
    ] {
        let line =
            format!("squall_server_rejects_total{{protocol=\"hexabase\",reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "missing {line}:\n{metrics}");
    }
}

async fn http(server: &ServerHandle, request: &str) -> String {
    support::http_exchange(server.addr(), request).await
}

#[tokio::test]
async fn publish_endpoint_reaches_a_topic_room() {
    let server = server(0.0, |_| {});
    let mut c = Client::authed(&server).await;
    c.send(watch("s", "ws-123")).await;
    c.recv().await;
    let event = json!({"type": "workspace.status_changed", "data": {"workspace_id": "ws-123",
        "previous_status": "provisioning", "new_status": "active"}});
    let body = event.to_string();
    let request = format!(
        "POST /publish?protocol=hexabase&room=workspace:ws-123:status_changed HTTP/1.1\r\n\
         Host: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = http(&server, &request).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let got = c.recv().await;
    assert_eq!(
        (got["type"].as_str(), got["seq"].as_u64()),
        (Some("workspace.status_changed"), Some(1))
    );
    assert_eq!(got["data"]["new_status"], "active");
}
