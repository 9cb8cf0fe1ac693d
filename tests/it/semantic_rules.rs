//! The semantic rules of the kecs, hexabase, covetpy and newloom profiles (`replies:` and
//! `subscriptions:` in `schemas/<p>/protocol.yaml`, each explained in that folder's README under
//! "Semantic rules"), driven directly through `Pending` and `Subscribed` with frames in the
//! shapes the seed documents show.
//!
//! Every frame is first checked against its profile's schemas, so the shapes stay the
//! documented ones; every test asserts at least one violation, so it fails if a rule goes
//! missing.
//!
//! At the end, per profile, a run against a small test server on 127.0.0.1:0 (a crossed reply
//! and an event for nothing subscribed or outside a subscribe's filters, once per iteration)
//! checks that a live run counts what these rules find, at the field that decides it. The scenario library's runs against squall-server
//! (`tests/scenarios_<p>.rs`) check that a faithful server draws none.

use crate::support;

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::support::{next_json, run_yaml, send, send_all, TestServer};
use serde_json::{json, Value};
use squall::protocol::pairing::Pending;
use squall::protocol::rooms::Subscribed;
use squall::protocol::{Conformance, Direction, Profile, RuleSource, Violation};

fn profile(name: &str) -> Profile {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    Profile::load(&dir).unwrap_or_else(|e| panic!("schemas/{name} loads: {e}"))
}

/// One connection as the swarm's checker sees it: every frame is classified by the profile's
/// discriminator, must meet its schema, and then goes through the reply and room rules.
struct Conn {
    profile: Profile,
    pending: Pending,
    rooms: Subscribed,
}

impl Conn {
    fn new(name: &str) -> Self {
        Conn {
            profile: profile(name),
            pending: Pending::default(),
            rooms: Subscribed::default(),
        }
    }

    fn kind(&self, dir: Direction, v: &Value) -> String {
        if let Err(vs) = self.profile.check(dir, v) {
            panic!("{} frame breaks the schemas: {v}: {vs:?}", dir.as_str());
        }
        self.profile.kind_of(v).expect("the frame has a kind")
    }

    fn send(&mut self, v: Value) {
        let kind = self.kind(Direction::Out, &v);
        self.pending.sent(&self.profile.replies, Some(&kind), &v);
        if let Some(rules) = &self.profile.subscriptions {
            self.rooms.sent(rules, Some(&kind), &v);
        }
    }

    /// The reply rules' verdict on an inbound frame.
    fn reply(&mut self, v: Value) -> Option<Violation> {
        let kind = self.kind(Direction::In, &v);
        self.pending
            .received(&self.profile.replies, Some(&kind), &v)
    }

    /// The room rules' verdict on an inbound frame.
    fn event(&mut self, v: Value) -> Option<Violation> {
        let kind = self.kind(Direction::In, &v);
        let rules = self.profile.subscriptions.as_ref().expect("subscriptions:");
        self.rooms.received(rules, Some(&kind), &v)
    }
}

/// Asserts a `reply_mismatch` on `kind` at `pointer`.
fn mismatch(found: Option<Violation>, kind: &str, pointer: &str) {
    let v = found.unwrap_or_else(|| panic!("a stray {kind} must be a reply_mismatch"));
    assert_eq!(
        (v.keyword.as_str(), v.kind.as_str(), v.pointer.as_str()),
        ("reply_mismatch", kind, pointer),
        "{v:?}"
    );
}

fn unsubscribed(found: Option<Violation>, kind: &str) {
    let v = found.unwrap_or_else(|| panic!("a {kind} for no held room must be a violation"));
    assert_eq!(
        (v.keyword.as_str(), v.kind.as_str()),
        ("unsubscribed", kind),
        "{v:?}"
    );
}

const KECS_TS: &str = "2024-01-01T00:00:00.000Z";
const KECS_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:service/production/web-api";

fn kecs_subscribe(id: &str) -> Value {
    json!({"id": id, "type": "subscribe", "action": "events", "payload": {
        "eventTypes": ["cluster", "service", "task"],
        "clusters": ["production", "staging"],
        "services": ["web-api"],
        "filters": {"status": ["RUNNING", "PENDING"]}}})
}

fn kecs_subscribe_ack(id: &str) -> Value {
    json!({"id": id, "type": "subscribe_ack", "timestamp": KECS_TS,
        "payload": {"subscriptionId": id, "status": "active"}})
}

fn kecs_get_metrics(id: &str, arn: &str) -> Value {
    json!({"id": id, "type": "command", "action": "get_metrics", "payload": {
        "resource": "service", "resourceArn": arn,
        "metrics": ["CPUUtilization"], "period": 60, "statistics": ["Average", "Maximum"]}})
}

fn kecs_metrics(id: &str, arn: &str) -> Value {
    json!({"id": id, "type": "metrics", "timestamp": KECS_TS, "payload": {
        "resourceArn": arn,
        "metrics": {"CPUUtilization": {"Average": 45.2, "Maximum": 78.5, "Unit": "Percent",
            "Datapoints": [{"Timestamp": KECS_TS, "Value": 45.2}]}}}})
}

#[test]
fn kecs_replies_echo_the_request_id_and_the_metrics_resource() {
    let mut c = Conn::new("kecs");
    // "Subscribe Request" / "Subscribe Response": the ack carries the request's id.
    mismatch(
        c.reply(kecs_subscribe_ack("sub-001")),
        "subscribe_ack",
        "/id",
    );
    c.send(kecs_subscribe("sub-001"));
    c.send(kecs_subscribe("sub-002"));
    mismatch(
        c.reply(kecs_subscribe_ack("sub-003")),
        "subscribe_ack",
        "/id",
    );
    assert_eq!(c.reply(kecs_subscribe_ack("sub-002")), None);
    assert_eq!(c.reply(kecs_subscribe_ack("sub-001")), None);
    mismatch(
        c.reply(kecs_subscribe_ack("sub-001")),
        "subscribe_ack",
        "/id",
    );

    // "Execute Command": command_ack with the command's id.
    c.send(
        json!({"id": "cmd-001", "type": "command", "action": "execute", "payload": {
        "cluster": "production",
        "task": "arn:aws:ecs:us-east-1:000000000000:task/production/1234567890abcdef",
        "container": "webapp", "command": "/bin/bash", "interactive": true}}),
    );
    let ack = |id: &str| {
        json!({"id": id, "type": "command_ack", "timestamp": KECS_TS, "payload": {
            "sessionId": "exec-session-001",
            "websocketUrl": "ws://localhost:8080/exec/exec-session-001"}})
    };
    mismatch(c.reply(ack("cmd-002")), "command_ack", "/id");
    assert_eq!(c.reply(ack("cmd-001")), None);

    // "Get Metrics": the response has the request's id and names the resource asked for.
    let other = KECS_ARN.replace("web-api", "worker");
    c.send(kecs_get_metrics("metrics-001", KECS_ARN));
    // The id echoes a pending request: the resource is what tells this reply apart.
    mismatch(
        c.reply(kecs_metrics("metrics-001", &other)),
        "metrics",
        "/payload/resourceArn",
    );
    mismatch(
        c.reply(kecs_metrics("metrics-002", KECS_ARN)),
        "metrics",
        "/id",
    );
    assert_eq!(c.reply(kecs_metrics("metrics-001", KECS_ARN)), None);

    // Events and unprompted frames are not replies.
    let connected = json!({"type": "connected", "timestamp": KECS_TS,
        "payload": {"sessionId": "ws-session-001", "serverVersion": "1.0.0"}});
    assert_eq!(c.reply(connected), None);
    let error = json!({"type": "error", "timestamp": KECS_TS,
        "payload": {"code": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"}});
    assert_eq!(c.reply(error), None);
}

fn kecs_task_event() -> Value {
    json!({"id": "evt-003", "type": "event", "timestamp": KECS_TS, "payload": {
        "eventType": "task", "action": "STATUS_CHANGE", "task": {
            "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/production/1234567890abcdef",
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/production",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/webapp:1",
            "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
            "stoppedReason": "Essential container exited", "containers": []}}})
}

fn kecs_cluster_event() -> Value {
    json!({"id": "evt-001", "type": "event", "timestamp": KECS_TS, "payload": {
        "eventType": "cluster", "action": "UPDATE", "cluster": {
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/production",
            "clusterName": "production", "status": "ACTIVE",
            "registeredContainerInstancesCount": 5, "runningTasksCount": 20,
            "pendingTasksCount": 2, "activeServicesCount": 3}}})
}

fn kecs_subscribe_to(id: &str, types: &[&str]) -> Value {
    json!({"id": id, "type": "subscribe", "action": "events",
        "payload": {"eventTypes": types, "clusters": ["production"]}})
}

#[test]
fn kecs_events_need_a_subscription_listing_their_type() {
    let mut c = Conn::new("kecs");
    // "Subscriptions": events come for the event types subscribed to.
    unsubscribed(c.event(kecs_task_event()), "event.task");
    c.send(kecs_subscribe_to("sub-001", &["task"]));
    assert_eq!(c.event(kecs_task_event()), None);
    unsubscribed(c.event(kecs_cluster_event()), "event.cluster");
    // A second subscription adds its types; the document's example lists three.
    c.send(kecs_subscribe("sub-002"));
    assert_eq!(c.event(kecs_cluster_event()), None);
    // No frame confirms an unsubscribe: events on their way still pass.
    c.send(
        json!({"id": "unsub-001", "type": "unsubscribe", "action": "events",
        "payload": {"subscriptionId": "sub-001"}}),
    );
    assert_eq!(c.event(kecs_task_event()), None);
}

const HEXA_TS: &str = "2024-01-20T10:00:00Z";
const HEXA_JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJl";

fn hexa_auth_result() -> Value {
    json!({"type": "auth_result", "success": true, "user_id": "user-123",
        "message": "Authenticated successfully"})
}

fn hexa_workspace_status(id: &str, workspace: &str) -> Value {
    json!({"type": "workspace_status", "id": id, "timestamp": HEXA_TS, "data": {
        "workspace_id": workspace, "status": "active", "health": "healthy",
        "nodes": {"ready": 3, "total": 3}, "pods": {"running": 45, "pending": 2, "failed": 0}}})
}

fn hexa_log_entry(stream: &str) -> Value {
    json!({"type": "log_entry", "timestamp": HEXA_TS, "data": {
        "stream_id": stream, "timestamp": HEXA_TS, "level": "info",
        "message": "Request processed successfully",
        "pod": "api-server-abc123", "container": "api"}})
}

fn hexa_stream_logs(id: &str) -> Value {
    json!({"type": "stream_logs", "id": id, "data": {
        "workspace_id": "ws-123", "namespace": "frontend", "pod": "api-server-abc123",
        "container": "api", "follow": true, "tail_lines": 100}})
}

#[test]
fn hexabase_replies_pair_auth_subscribe_and_status_requests() {
    let mut c = Conn::new("hexabase");
    // "Authentication Response": one auth_result per auth, no id to echo.
    mismatch(c.reply(hexa_auth_result()), "auth_result", "");
    c.send(json!({"type": "auth", "token": HEXA_JWT}));
    assert_eq!(c.reply(hexa_auth_result()), None);
    mismatch(c.reply(hexa_auth_result()), "auth_result", "");

    // "Subscription Response": subscribe_result with the subscribe's id.
    c.send(json!({"type": "subscribe", "id": "sub-123", "data": {
        "resource": "workspace", "workspace_id": "ws-123",
        "events": ["status_changed", "resource_updated", "alert_triggered"]}}));
    let result = |id: &str| {
        json!({"type": "subscribe_result", "id": id, "success": true,
            "subscription_id": "3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192"})
    };
    mismatch(c.reply(result("sub-124")), "subscribe_result", "/id");
    assert_eq!(c.reply(result("sub-123")), None);

    // "Get Workspace Status": the response has the request's id and its workspace.
    c.send(json!({"type": "get_workspace_status", "id": "cmd-123",
        "data": {"workspace_id": "ws-123"}}));
    mismatch(
        c.reply(hexa_workspace_status("cmd-123", "ws-456")),
        "workspace_status",
        "/data/workspace_id",
    );
    // The wrong id is reported at the correlation pointer, not at the workspace.
    mismatch(
        c.reply(hexa_workspace_status("cmd-999", "ws-123")),
        "workspace_status",
        "/id",
    );
    assert_eq!(c.reply(hexa_workspace_status("cmd-123", "ws-123")), None);
    // Answered already: with nothing pending, the correlation pointer.
    mismatch(
        c.reply(hexa_workspace_status("cmd-123", "ws-123")),
        "workspace_status",
        "/id",
    );
}

#[test]
fn hexabase_log_entries_need_a_stream_this_connection_started() {
    let mut c = Conn::new("hexabase");
    // "Get Real-time Logs": each log_entry names its stream_logs request's id.
    unsubscribed(c.event(hexa_log_entry("cmd-124")), "log_entry");
    c.send(hexa_stream_logs("cmd-124"));
    assert_eq!(c.event(hexa_log_entry("cmd-124")), None);
    unsubscribed(c.event(hexa_log_entry("cmd-125")), "log_entry");

    // stop_stream has no confirmation: the stream stays held (lenient, README).
    c.send(json!({"type": "stop_stream", "id": "cmd-126", "data": {"stream_id": "cmd-124"}}));
    assert_eq!(c.event(hexa_log_entry("cmd-124")), None);

    // The error refusing a stream over the limit names it: then it is not held.
    c.send(hexa_stream_logs("cmd-127"));
    assert_eq!(c.event(hexa_log_entry("cmd-127")), None);
    let refused = json!({"type": "error", "id": "cmd-127", "timestamp": HEXA_TS, "error": {
        "code": "SUBSCRIPTION_LIMIT_EXCEEDED",
        "message": "Maximum number of concurrent log streams (8) exceeded",
        "details": {"current_streams": 8, "requested_stream": "cmd-127"}}});
    assert_eq!(c.event(refused), None);
    unsubscribed(c.event(hexa_log_entry("cmd-127")), "log_entry");
    assert_eq!(c.event(hexa_log_entry("cmd-124")), None);

    // A resource event for a workspace this connection never subscribed to is a stray too.
    unsubscribed(
        c.event(hexa_status_changed("ws-999")),
        "workspace.status_changed",
    );
}

fn hexa_status_changed(workspace: &str) -> Value {
    json!({"type": "workspace.status_changed", "timestamp": HEXA_TS, "data": {
        "workspace_id": workspace, "previous_status": "provisioning", "new_status": "active",
        "message": "Workspace provisioning completed successfully"}})
}

fn hexa_subscribe(id: &str, resource: &str, resource_id: &str, events: &[&str]) -> Value {
    json!({"type": "subscribe", "id": id, "data": {
        "resource": resource, format!("{resource}_id"): resource_id, "events": events}})
}

#[test]
fn hexabase_resource_events_need_a_subscription_to_their_resource() {
    let mut c = Conn::new("hexabase");
    let member_added = |org: &str| {
        json!({"type": "organization.member_added", "timestamp": HEXA_TS, "data": {
            "organization_id": org, "member": {"user_id": "user-456",
            "email": "newuser@example.com", "role": "member", "added_by": "user-123"}}})
    };
    let quota = |project: &str| {
        json!({"type": "project.resource_quota_exceeded", "timestamp": HEXA_TS, "data": {
            "project_id": project, "namespace": "frontend", "resource": "memory",
            "requested": "5Gi", "limit": "4Gi", "current_usage": "3.8Gi"}})
    };
    let created = |project: &str, workspace: &str| {
        json!({"type": "project.created", "timestamp": HEXA_TS, "data": {"project": {
            "id": project, "name": "New Project", "namespace": "new-project",
            "workspace_id": workspace, "created_by": "user-123"}}})
    };
    let progress = |workspace: &str| {
        json!({"type": "provisioning.progress", "timestamp": HEXA_TS, "data": {
            "task_id": "task-123", "workspace_id": workspace, "stage": "creating_namespace",
            "progress": 25, "message": "Creating Kubernetes namespace"}})
    };
    // "Subscriptions": nothing subscribed, every resource event is a stray.
    unsubscribed(
        c.event(hexa_status_changed("ws-123")),
        "workspace.status_changed",
    );
    unsubscribed(
        c.event(member_added("org-123")),
        "organization.member_added",
    );
    unsubscribed(
        c.event(quota("proj-123")),
        "project.resource_quota_exceeded",
    );

    // Each subscribe names its resource at its own field ("Subscribe to ... Events").
    c.send(hexa_subscribe(
        "sub-123",
        "workspace",
        "ws-123",
        &["status_changed", "resource_updated", "alert_triggered"],
    ));
    c.send(hexa_subscribe(
        "sub-124",
        "organization",
        "org-123",
        &["member_added", "member_removed", "billing_updated"],
    ));
    c.send(hexa_subscribe(
        "sub-125",
        "project",
        "proj-123",
        &["created", "updated", "deleted", "resource_quota_exceeded"],
    ));
    assert_eq!(c.event(hexa_status_changed("ws-123")), None);
    assert_eq!(c.event(member_added("org-123")), None);
    assert_eq!(c.event(quota("proj-123")), None);
    unsubscribed(
        c.event(hexa_status_changed("ws-456")),
        "workspace.status_changed",
    );
    unsubscribed(
        c.event(member_added("org-456")),
        "organization.member_added",
    );
    unsubscribed(
        c.event(quota("proj-456")),
        "project.resource_quota_exceeded",
    );
    // A subscription's own id and the subscription_id hold nothing.
    unsubscribed(
        c.event(hexa_status_changed("sub-123")),
        "workspace.status_changed",
    );

    // Provisioning comes with its workspace (README decision 5); a project event naming a
    // held workspace passes.
    assert_eq!(c.event(progress("ws-123")), None);
    unsubscribed(c.event(progress("ws-456")), "provisioning.progress");
    assert_eq!(c.event(created("proj-999", "ws-123")), None);
    unsubscribed(c.event(created("proj-999", "ws-456")), "project.created");

    // No frame confirms an unsubscribe: events on their way still pass.
    c.send(json!({"type": "unsubscribe", "id": "unsub-123",
        "data": {"subscription_id": "3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192"}}));
    assert_eq!(c.event(hexa_status_changed("ws-123")), None);
}

#[test]
fn hexabase_events_are_those_the_subscribe_listed() {
    // "Subscribe to Events": a subscribe lists the events it wants of its resource.
    let mut c = Conn::new("hexabase");
    let alert = json!({"type": "workspace.alert_triggered", "timestamp": HEXA_TS, "data": {
        "workspace_id": "ws-123", "alert": {"id": "alert-123", "type": "high_memory_usage",
        "severity": "warning", "title": "High Memory Usage"}}});
    c.send(hexa_subscribe(
        "sub-1",
        "workspace",
        "ws-123",
        &["status_changed"],
    ));
    assert_eq!(c.event(hexa_status_changed("ws-123")), None);
    // Not listed: reported at the kind, the field that names the event.
    outside(c.event(alert.clone()), "workspace.alert_triggered", "/type");
    // Provisioning has no name to list: not judged by events.
    let progress = json!({"type": "provisioning.progress", "timestamp": HEXA_TS, "data": {
        "task_id": "task-123", "workspace_id": "ws-123", "stage": "creating_namespace",
        "progress": 25}});
    assert_eq!(c.event(progress), None);
    // Another subscribe of the same workspace listing it admits it.
    c.send(hexa_subscribe(
        "sub-2",
        "workspace",
        "ws-123",
        &["alert_triggered"],
    ));
    assert_eq!(c.event(alert), None);
}

fn covet_rpc_call(id: &str) -> Value {
    json!({"type": "rpc_call", "id": id, "data": {"method": "database.test_connection",
        "params": {"connection_id": "db_conn_123"}, "timeout": 10000}})
}

fn covet_rpc_response(id: &str) -> Value {
    json!({"type": "rpc_response", "id": id, "data": {"result": {"success": true,
        "latency_ms": 23.4,
        "connection_info": {"host": "db.example.com", "port": 5432, "database": "production"}}}})
}

fn covet_rpc_error(id: &str) -> Value {
    json!({"type": "rpc_error", "id": id, "data": {"error": {"code": "CONNECTION_FAILED",
        "message": "Failed to connect to database",
        "details": {"host": "db.example.com", "port": 5432,
            "error": "Connection timeout after 10 seconds"}}}})
}

fn covet_room_joined(room: &str) -> Value {
    json!({"type": "room_joined", "id": "rj_12345", "data": {"room_id": room,
        "member_count": 15, "permissions": ["read", "write"],
        "room_metadata": {"name": "Project Alpha", "created_at": "2025-09-01T10:00:00Z"}}})
}

fn covet_upload_complete(upload: &str) -> Value {
    json!({"type": "file_upload_complete", "id": "complete_12345", "data": {
        "upload_id": upload, "file_id": "file_abcdef",
        "url": "https://files.covetpy.com/file_abcdef", "processing_status": "completed"}})
}

#[test]
fn covetpy_replies_pair_rpc_rooms_and_uploads() {
    let mut c = Conn::new("covetpy");
    // "Remote Procedure Calls (RPC)": rpc_response or rpc_error, with the call's id.
    mismatch(
        c.reply(covet_rpc_response("rpc_12345")),
        "rpc_response",
        "/id",
    );
    mismatch(c.reply(covet_rpc_error("rpc_12345")), "rpc_error", "/id");
    c.send(covet_rpc_call("rpc_12345"));
    c.send(covet_rpc_call("rpc_12346"));
    mismatch(
        c.reply(covet_rpc_response("rpc_99999")),
        "rpc_response",
        "/id",
    );
    mismatch(c.reply(covet_rpc_error("rpc_99999")), "rpc_error", "/id");
    assert_eq!(c.reply(covet_rpc_response("rpc_12345")), None);
    assert_eq!(c.reply(covet_rpc_error("rpc_12346")), None);
    mismatch(
        c.reply(covet_rpc_response("rpc_12345")),
        "rpc_response",
        "/id",
    );

    // "Room Management": room_joined has its own id and names the room asked for.
    c.send(
        json!({"type": "join_room", "id": "jr_12345", "data": {"room_id": "project_123",
        "options": {"subscribe_to_metrics": true,
            "filter": {"event_types": ["data_update", "user_activity"]}}}}),
    );
    mismatch(
        c.reply(covet_room_joined("project_456")),
        "room_joined",
        "/data/room_id",
    );
    assert_eq!(c.reply(covet_room_joined("project_123")), None);
    mismatch(
        c.reply(covet_room_joined("project_123")),
        "room_joined",
        "/data/room_id",
    );

    // "File Operations": the completion names the start frame's id as its upload_id.
    mismatch(
        c.reply(covet_upload_complete("upload_12345")),
        "file_upload_complete",
        "/data/upload_id",
    );
    c.send(
        json!({"type": "file_upload_start", "id": "upload_12345", "data": {
        "filename": "data.csv", "size": 1048576, "mimetype": "text/csv", "chunk_size": 64000,
        "metadata": {"project_id": "proj_123", "description": "Customer data import"}}}),
    );
    mismatch(
        c.reply(covet_upload_complete("upload_99999")),
        "file_upload_complete",
        "/data/upload_id",
    );
    assert_eq!(c.reply(covet_upload_complete("upload_12345")), None);

    // Unprompted frames are not replies.
    let notification = json!({"type": "notification", "id": "notif_12345", "data": {
        "notification_type": "info", "title": "Database Connection Restored",
        "message": "Connection to production database has been restored"}});
    assert_eq!(c.reply(notification), None);
}

fn covet_stream_data(subscription: &str) -> Value {
    json!({"type": "stream_data", "id": "sd_12345", "data": {
        "subscription_id": subscription, "stream_type": "metrics", "resource_id": "db_conn_123",
        "batch": [{"timestamp": "2025-09-10T12:00:00Z", "cpu_usage": 45.2,
            "memory_usage": 67.8, "active_connections": 12}]}})
}

#[test]
fn covetpy_stream_data_needs_a_subscription_or_room_this_connection_holds() {
    let mut c = Conn::new("covetpy");
    // "Data Streaming": the subscribe's id is the subscription id every batch names.
    unsubscribed(c.event(covet_stream_data("sub_12345")), "stream_data");
    c.send(json!({"type": "subscribe", "id": "sub_12345", "data": {
        "stream_type": "metrics", "resource_id": "db_conn_123",
        "filters": {"min_severity": "warning", "tags": ["performance", "database"]},
        "options": {"buffer_size": 100, "batch_interval": 1000}}}));
    assert_eq!(c.event(covet_stream_data("sub_12345")), None);
    unsubscribed(c.event(covet_stream_data("sub_99999")), "stream_data");

    // "Room Management": room traffic has no frame of its own; a batch naming a joined room
    // passes, one naming the join's own id does not.
    c.send(json!({"type": "join_room", "id": "jr_12345", "data": {"room_id": "project_123"}}));
    assert_eq!(c.event(covet_stream_data("project_123")), None);
    unsubscribed(c.event(covet_stream_data("jr_12345")), "stream_data");

    // Nothing confirms an unsubscribe or a leave: batches on their way still pass.
    c.send(json!({"type": "unsubscribe", "id": "unsub_12345",
        "data": {"subscription_id": "sub_12345"}}));
    c.send(json!({"type": "leave_room", "id": "lr_12345", "data": {"room_id": "project_123"}}));
    assert_eq!(c.event(covet_stream_data("sub_12345")), None);
    assert_eq!(c.event(covet_stream_data("project_123")), None);

    // Frames that are not stream batches are none of this rule's business.
    let notification = json!({"type": "notification", "id": "notif_12345", "data": {
        "notification_type": "info", "title": "Database Connection Restored",
        "message": "Connection to production database has been restored"}});
    assert_eq!(c.event(notification), None);
}

/// Asserts an `unsubscribed` violation on `kind` at `pointer` (the field that decides it).
fn outside(found: Option<Violation>, kind: &str, pointer: &str) {
    let v = found.unwrap_or_else(|| panic!("this {kind} must be outside what is held"));
    assert_eq!(
        (v.keyword.as_str(), v.kind.as_str(), v.pointer.as_str()),
        ("unsubscribed", kind, pointer),
        "{v:?}"
    );
}

/// A document-shaped KECS task event in `cluster` with last status `status` (desired: the
/// same when it is STOPPED, else RUNNING).
fn kecs_task_in(cluster: &str, status: &str) -> Value {
    let mut v = kecs_task_event();
    let task = &mut v["payload"]["task"];
    task["clusterArn"] = json!(format!(
        "arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}"
    ));
    task["lastStatus"] = json!(status);
    task["desiredStatus"] = json!(if status == "STOPPED" {
        status
    } else {
        "RUNNING"
    });
    v
}

/// The document's service event, for `service` in `cluster`.
fn kecs_service_event(cluster: &str, service: &str) -> Value {
    json!({"id": "evt-002", "type": "event", "timestamp": KECS_TS, "payload": {
        "eventType": "service", "action": "UPDATE", "service": {
            "serviceArn": format!("arn:aws:ecs:us-east-1:000000000000:service/{cluster}/{service}"),
            "serviceName": service,
            "clusterArn": format!("arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}"),
            "status": "ACTIVE", "desiredCount": 3, "runningCount": 3, "pendingCount": 0,
            "deployments": []}}})
}

#[test]
fn kecs_events_follow_the_subscribes_clusters_services_and_status() {
    let mut c = Conn::new("kecs");
    // The document's "Subscribe Request": clusters production and staging, service web-api,
    // status RUNNING or PENDING.
    c.send(kecs_subscribe("sub-001"));
    assert_eq!(c.event(kecs_task_in("production", "RUNNING")), None);
    assert_eq!(c.event(kecs_task_in("staging", "PENDING")), None);
    outside(
        c.event(kecs_task_in("development", "RUNNING")),
        "event.task",
        "/payload/task/clusterArn",
    );
    outside(
        c.event(kecs_task_in("production", "STOPPED")),
        "event.task",
        "/payload/task/lastStatus",
    );
    assert_eq!(c.event(kecs_service_event("staging", "web-api")), None);
    outside(
        c.event(kecs_service_event("production", "worker")),
        "event.service",
        "/payload/service/serviceName",
    );
    // A cluster event: its name is judged, its status is not (the example's statuses are a
    // task's: a cluster is never RUNNING).
    assert_eq!(c.event(kecs_cluster_event()), None);
    let mut dev = kecs_cluster_event();
    dev["payload"]["cluster"]["clusterName"] = json!("development");
    dev["payload"]["cluster"]["clusterArn"] =
        json!("arn:aws:ecs:us-east-1:000000000000:cluster/development");
    outside(
        c.event(dev.clone()),
        "event.cluster",
        "/payload/cluster/clusterName",
    );
    // A subscribe naming the cluster by its ARN holds it too.
    c.send(
        json!({"id": "sub-002", "type": "subscribe", "action": "events", "payload": {
        "eventTypes": ["cluster"],
        "clusters": ["arn:aws:ecs:us-east-1:000000000000:cluster/development"]}}),
    );
    assert_eq!(c.event(dev), None);
    // A subscribe without filters takes every event of its types.
    c.send(kecs_subscribe_to("sub-003", &["task"]));
    c.send(
        json!({"id": "sub-004", "type": "subscribe", "action": "events",
        "payload": {"eventTypes": ["task"]}}),
    );
    assert_eq!(c.event(kecs_task_in("development", "STOPPED")), None);
}

/// The document's "2. Receive Message" for `chat`.
fn newloom_message(chat: u64) -> Value {
    json!({"type": "message", "message": {"id": 456, "content": "Message content",
        "user": "username", "timestamp": "2024-02-05T12:00:00Z", "chat_id": chat}})
}

/// The document's "3. Typing Indicator" for `chat`.
fn newloom_typing(chat: u64) -> Value {
    json!({"type": "typing", "chat_id": chat, "user": "username", "is_typing": true})
}

#[test]
fn newloom_chats_are_those_the_connection_posted_to() {
    // seeds/newloom.rst has no join frame: a connection's chats are those it posts to.
    let mut c = Conn::new("newloom");
    assert!(c.profile.replies.is_empty());
    // That is squall's reading, not the document's words: marked so, and dropped under
    // --conformance document.
    let stray = c.event(newloom_message(123));
    assert_eq!(stray.as_ref().map(|v| v.source), Some(RuleSource::Squall));
    outside(stray, "message", "/message/chat_id");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/newloom");
    let document = Profile::load_with(&dir, Conformance::Document).unwrap();
    assert!(document.subscriptions.is_none());
    c.send(json!({"type": "message", "content": "Your message here", "chat_id": 123}));
    assert_eq!(c.event(newloom_message(123)), None);
    assert_eq!(c.event(newloom_typing(123)), None);
    outside(c.event(newloom_typing(5)), "typing", "/chat_id");
    // A typing indicator of its own joins too (it is as much a post into the chat).
    c.send(json!({"type": "typing", "chat_id": 5, "is_typing": true}));
    assert_eq!(c.event(newloom_typing(5)), None);
    assert_eq!(c.event(newloom_message(5)), None);
    // Stream frames are not judged: nothing a client sends names a stream.
    let status = json!({"type": "status_update", "stream_id": 123, "status": "running",
        "timestamp": "2024-02-05T12:00:00Z"});
    assert_eq!(c.event(status), None);
}

/// A CovetPy server that answers every call with another id, and streams each subscription a
/// batch for a subscription nobody made before the subscriber's own.
async fn covet_crossed(mut ws: support::Conn, sent: Arc<AtomicU64>) {
    let ack = json!({"type": "connection_ack", "id": "conn_12345",
        "timestamp": "2025-09-10T12:00:00Z", "data": {"session_id": "sess_abcdef",
        "user_id": "user_123", "capabilities": ["rooms", "streaming", "rpc"],
        "heartbeat_interval": 30000}});
    let _ = send(&mut ws, &sent, ack.to_string()).await;
    while let Some(v) = next_json(&mut ws).await {
        let id = v["id"].as_str().unwrap_or_default();
        let replies = match v["type"].as_str() {
            Some("subscribe") => vec![
                covet_stream_data(&format!("{id}-other")),
                covet_stream_data(id),
            ],
            Some("rpc_call") => vec![covet_rpc_response(&format!("{id}-other"))],
            _ => continue,
        };
        send_all(&mut ws, &sent, replies).await;
    }
}

#[test]
fn a_covetpy_run_counts_crossed_replies_and_stray_batches() {
    let srv = TestServer::start(covet_crossed);
    let yaml = r#"
name: covetpy-rules
protocol: covetpy
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: connection_ack, within: 2s }
      - send: { type: subscribe, id: "sub-{{vu}}-{{iter}}", data: { stream_type: metrics, resource_id: db_conn_123 } }
      - expect: { kind: stream_data, match: { /data/subscription_id: "{{sent./id}}" }, within: 2s }
      - send: { type: rpc_call, id: "rpc-{{vu}}-{{iter}}", data: { method: echo } }
      - expect: { kind: rpc_response, within: 2s }
      - close: 1000
"#;
    // One stray batch and one crossed reply per iteration; the subscriber's own batch passes.
    assert_one_of_each_per_iteration(
        &srv,
        yaml,
        &[
            ("stream_data", "unsubscribed", "/data/subscription_id"),
            ("rpc_response", "reply_mismatch", "/id"),
        ],
    );
}

/// A Hexabase server that answers every subscribe with another id, and sends an event for
/// another workspace before one for the workspace subscribed to.
async fn hexa_crossed(mut ws: support::Conn, sent: Arc<AtomicU64>) {
    while let Some(v) = next_json(&mut ws).await {
        if v["type"] != "subscribe" {
            continue;
        }
        let id = v["id"].as_str().unwrap_or_default();
        let workspace = v["data"]["workspace_id"].as_str().unwrap_or_default();
        let result = json!({"type": "subscribe_result", "id": format!("{id}-other"),
            "success": true, "subscription_id": "3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192"});
        let frames = [
            result,
            hexa_status_changed(&format!("{workspace}-other")),
            hexa_status_changed(workspace),
        ];
        send_all(&mut ws, &sent, frames).await;
    }
}

#[test]
fn a_hexabase_run_counts_crossed_results_and_stray_events() {
    let srv = TestServer::start(hexa_crossed);
    let yaml = r#"
name: hexabase-rules
protocol: hexabase
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { type: subscribe, id: "sub-{{vu}}-{{iter}}", data: { resource: workspace, workspace_id: "ws-{{vu}}-{{iter}}", events: [status_changed] } }
      - expect: { kind: workspace.status_changed, match: { /data/workspace_id: "ws-{{vu}}-{{iter}}" }, within: 2s }
      - close: 1000
"#;
    // One crossed result and one stray event per iteration; the subscribed event passes.
    assert_one_of_each_per_iteration(
        &srv,
        yaml,
        &[
            ("subscribe_result", "reply_mismatch", "/id"),
            (
                "workspace.status_changed",
                "unsubscribed",
                "/data/workspace_id",
            ),
        ],
    );
}

/// A KECS server that acks every subscribe with another id, and sends a cluster event before a
/// task event (the test subscribes to tasks only).
async fn kecs_crossed(mut ws: support::Conn, sent: Arc<AtomicU64>) {
    while let Some(v) = next_json(&mut ws).await {
        if v["type"] != "subscribe" {
            continue;
        }
        let id = v["id"].as_str().unwrap_or_default();
        let frames = [
            kecs_subscribe_ack(&format!("{id}-other")),
            kecs_cluster_event(),
            kecs_task_event(),
        ];
        send_all(&mut ws, &sent, frames).await;
    }
}

#[test]
fn a_kecs_run_counts_crossed_acks_and_events_of_types_not_subscribed() {
    let srv = TestServer::start(kecs_crossed);
    let yaml = r#"
name: kecs-rules
protocol: kecs
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { id: "sub-{{vu}}-{{iter}}", type: subscribe, action: events, payload: { eventTypes: [task] } }
      - expect: { kind: event.task, within: 2s }
      - close: 1000
"#;
    // One crossed ack and one cluster event per iteration; the task event passes.
    assert_one_of_each_per_iteration(
        &srv,
        yaml,
        &[
            ("subscribe_ack", "reply_mismatch", "/id"),
            ("event.cluster", "unsubscribed", "/payload/eventType"),
        ],
    );
}

/// Runs `yaml` against `srv`: the run fails with exactly one finding of each
/// `(kind, keyword, pointer)` per iteration, and no other.
fn assert_one_of_each_per_iteration(srv: &TestServer, yaml: &str, found: &[(&str, &str, &str)]) {
    let (done, doc) = run_yaml(&srv.url(), yaml);
    assert_eq!(done.exit_code(), 1);
    let groups = doc["violations"]["groups"].as_array().unwrap();
    let iterations = doc["load"]["iterations_ok"].as_u64().unwrap();
    assert!(iterations >= 1);
    for (kind, keyword, pointer) in found {
        let at: u64 = groups
            .iter()
            .filter(|g| g["kind"] == *kind && g["keyword"] == *keyword && g["pointer"] == *pointer)
            .map(|g| g["count"].as_u64().unwrap())
            .sum();
        assert_eq!(at, iterations, "{kind} {keyword} at {pointer}: {groups:#?}");
    }
    assert_eq!(
        doc["violations"]["total"].as_u64().unwrap(),
        found.len() as u64 * iterations,
        "{groups:#?}"
    );
}

/// A KECS server that acks each subscribe, then sends a task event in a cluster the
/// subscribe did not list before one in the cluster it did.
async fn kecs_filtered(mut ws: support::Conn, sent: Arc<AtomicU64>) {
    while let Some(v) = next_json(&mut ws).await {
        if v["type"] != "subscribe" {
            continue;
        }
        let id = v["id"].as_str().unwrap_or_default();
        let frames = [
            kecs_subscribe_ack(id),
            kecs_task_in("staging", "RUNNING"),
            kecs_task_in("production", "RUNNING"),
        ];
        send_all(&mut ws, &sent, frames).await;
    }
}

#[test]
fn a_kecs_run_reports_events_outside_the_subscribes_clusters_at_the_cluster() {
    let srv = TestServer::start(kecs_filtered);
    let yaml = r#"
name: kecs-filters
protocol: kecs
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { id: "sub-{{vu}}-{{iter}}", type: subscribe, action: events, payload: { eventTypes: [task], clusters: [production] } }
      - expect: { kind: event.task, match: { /payload/task/clusterArn: "arn:aws:ecs:us-east-1:000000000000:cluster/production" }, within: 2s }
      - close: 1000
"#;
    assert_one_of_each_per_iteration(
        &srv,
        yaml,
        &[("event.task", "unsubscribed", "/payload/task/clusterArn")],
    );
}

/// A NewLoom chat server that answers each post with a message and a typing indicator for
/// the next chat (which the client never posted to), then the post's own copy.
async fn newloom_strays(mut ws: support::Conn, sent: Arc<AtomicU64>) {
    while let Some(v) = next_json(&mut ws).await {
        if v["type"] != "message" {
            continue;
        }
        let chat = v["chat_id"].as_u64().unwrap_or_default();
        let frames = [
            newloom_message(chat + 1),
            newloom_typing(chat + 1),
            newloom_message(chat),
        ];
        send_all(&mut ws, &sent, frames).await;
    }
}

#[test]
fn a_newloom_run_reports_chat_frames_for_chats_never_posted_to() {
    let srv = TestServer::start(newloom_strays);
    let yaml = r#"
name: newloom-chats
protocol: newloom
target: ws://127.0.0.1:1/ws/chat/
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { type: message, content: "hello", chat_id: 7 }
      - expect: { kind: message, match: { /message/chat_id: 7 }, within: 2s }
      - close: 1000
"#;
    assert_one_of_each_per_iteration(
        &srv,
        yaml,
        &[
            ("message", "unsubscribed", "/message/chat_id"),
            ("typing", "unsubscribed", "/chat_id"),
        ],
    );
}
