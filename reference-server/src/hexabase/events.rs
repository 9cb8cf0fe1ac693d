//! Hexabase events for the `--events RATE` generator: every documented event family, one
//! room per topic (`workspace:ws-123:alert_triggered`), filled in from the room's resource id,
//! with the room's sequence number in `seq`.

use rand::rngs::ThreadRng;
use rand::RngExt;
use serde_json::{json, Value};

use super::subs::{split_room, Resource};
use super::wire::{to_string, DataFrame};
use crate::clock::now_rfc3339;
use crate::proto::Seq;

const STATUSES: [&str; 4] = ["provisioning", "active", "updating", "suspended"];
const HEALTH: [&str; 3] = ["healthy", "degraded", "unhealthy"];
const STAGES: [&str; 4] = [
    "resource_allocation",
    "creating_vcluster",
    "configuring_network",
    "installing_addons",
];
const PLANS: [&str; 3] = ["standard", "pro", "enterprise"];
const NAMESPACES: [&str; 3] = ["frontend", "backend", "data"];

/// Two different entries of `set`, for "previous" and "new" values.
fn change(set: &[&'static str], rng: &mut ThreadRng) -> (&'static str, &'static str) {
    let from = rng.random_range(0..set.len());
    let to = (from + rng.random_range(1..set.len())) % set.len();
    (set[from], set[to])
}

fn pick(set: &[&'static str], rng: &mut ThreadRng) -> &'static str {
    set[rng.random_range(0..set.len())]
}

/// A stable small number for an id, so a project always names the same workspace.
fn hash(id: &str) -> u32 {
    id.bytes()
        .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
}

fn usage(used: f64, limit: f64, unit: &str) -> Value {
    json!({"used": format!("{used:.1}"), "limit": format!("{limit}"), "unit": unit,
        "percentage": (used * 1000.0 / limit).round() / 10.0})
}

fn stats(base: f64, rng: &mut ThreadRng) -> Value {
    let jitter = |rng: &mut ThreadRng| base * rng.random_range(0.8..1.2f64);
    json!({"instant": jitter(rng), "average_5m": jitter(rng), "average_1h": jitter(rng)})
}

/// A workspace topic's event. A `Value` is fine here: it is built once per event, never per
/// subscriber or per inbound frame.
fn workspace(id: &str, topic: &str, rng: &mut ThreadRng) -> Option<(&'static str, Value)> {
    let task = format!("task-{}", rng.random_range(1..10_000u32));
    Some(match topic {
        "status_changed" => {
            let (previous, new) = change(&STATUSES, rng);
            let data = json!({"workspace_id": id, "previous_status": previous, "new_status": new,
                "message": format!("Workspace is now {new}")});
            ("workspace.status_changed", data)
        }
        "resource_updated" => {
            let cpu = usage(rng.random_range(0.0..10.0), 10.0, "cores");
            let memory = usage(rng.random_range(0.0..32_768.0), 32_768.0, "Mi");
            let data = json!({"workspace_id": id, "resources": {"cpu": cpu, "memory": memory}});
            ("workspace.resource_updated", data)
        }
        "alert_triggered" => {
            let value = rng.random_range(80.0..100.0f64);
            let alert = json!({"id": format!("alert-{}", rng.random_range(1..10_000u32)),
                "type": "high_memory_usage", "severity": "warning", "title": "High Memory Usage",
                "description": "Memory usage has exceeded 80%", "resource": "pod/api-server-abc123",
                "threshold": 80, "value": (value * 10.0).round() / 10.0});
            let data = json!({"workspace_id": id, "alert": alert});
            ("workspace.alert_triggered", data)
        }
        "provisioning" => provisioning(id, &task, rng),
        "monitoring" => monitoring(id, rng),
        _ => return None,
    })
}

/// A random provisioning event of a workspace's task `task`.
fn provisioning(id: &str, task: &str, rng: &mut ThreadRng) -> (&'static str, Value) {
    match rng.random_range(0..3u8) {
        0 => {
            let data = json!({"task_id": task, "workspace_id": id, "stage": pick(&STAGES, rng),
                "progress": rng.random_range(0..=100u32), "message": "Creating vCluster instance..."});
            ("provisioning.progress", data)
        }
        1 => {
            let mut data = json!({"task_id": task, "workspace_id": id,
                "duration_seconds": rng.random_range(30..600u32)});
            // The endpoint embeds the id: only when it makes a valid host name.
            if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                data["api_endpoint"] = json!(format!("https://{id}.api.hexabase.ai"));
            }
            ("provisioning.completed", data)
        }
        _ => {
            let data = json!({"task_id": task, "workspace_id": id,
                "error": "Failed to allocate resources", "stage": "resource_allocation",
                "can_retry": rng.random_bool(0.5)});
            ("provisioning.failed", data)
        }
    }
}

/// A random monitoring event: metrics, or a change of health.
fn monitoring(id: &str, rng: &mut ThreadRng) -> (&'static str, Value) {
    if rng.random_bool(0.5) {
        let metrics = json!({"cpu": stats(2.5, rng), "memory": stats(8192.0, rng),
            "network": {"ingress_rate": format!("{:.1}MB/s", rng.random_range(0.0..10.0f64)),
            "egress_rate": format!("{:.1}MB/s", rng.random_range(0.0..10.0f64))}});
        (
            "monitoring.metrics_update",
            json!({"workspace_id": id, "metrics": metrics}),
        )
    } else {
        let (previous, new) = change(&HEALTH, rng);
        let data = json!({"workspace_id": id, "component": "api_server",
            "previous_status": previous, "new_status": new,
            "reason": format!("API server is {new}")});
        ("monitoring.health_changed", data)
    }
}

fn organization(id: &str, topic: &str, rng: &mut ThreadRng) -> Option<(&'static str, Value)> {
    let user = rng.random_range(1..10_000u32);
    Some(match topic {
        "member_added" => {
            let member = json!({"user_id": format!("user-{user}"),
                "email": format!("user{user}@example.com"), "role": "member", "added_by": "user-123"});
            let data = json!({"organization_id": id, "member": member});
            ("organization.member_added", data)
        }
        "member_removed" => {
            let member = json!({"user_id": format!("user-{user}"),
                "email": format!("user{user}@example.com"), "role": "member", "removed_by": "user-123"});
            let data = json!({"organization_id": id, "member": member});
            ("organization.member_removed", data)
        }
        "billing_updated" => {
            let (previous, new) = change(&PLANS, rng);
            let billing = json!({"previous_plan": previous, "new_plan": new, "effective_date": now_rfc3339()});
            let data = json!({"organization_id": id, "billing": billing});
            ("organization.billing_updated", data)
        }
        _ => return None,
    })
}

fn project(id: &str, topic: &str, rng: &mut ThreadRng) -> Option<(&'static str, Value)> {
    let workspace = format!("ws-{}", hash(id) % 1000);
    let namespace = NAMESPACES[hash(id) as usize % NAMESPACES.len()];
    Some(match topic {
        "created" => {
            let project = json!({"id": id, "name": "New Project", "namespace": namespace,
                "workspace_id": workspace, "created_by": "user-123"});
            ("project.created", json!({"project": project}))
        }
        "updated" => {
            let project = json!({"id": id, "name": "Renamed Project", "namespace": namespace,
                "workspace_id": workspace, "updated_by": "user-123"});
            ("project.updated", json!({"project": project}))
        }
        "deleted" => {
            let data =
                json!({"project_id": id, "workspace_id": workspace, "deleted_by": "user-123"});
            ("project.deleted", data)
        }
        "resource_quota_exceeded" => {
            let requested = rng.random_range(5..9u32);
            let data = json!({"project_id": id, "namespace": namespace, "resource": "memory",
                "requested": format!("{requested}Gi"), "limit": "4Gi", "current_usage": "3.8Gi"});
            ("project.resource_quota_exceeded", data)
        }
        _ => return None,
    })
}

/// One event for `room` with sequence number `seq`; `None` for a room without events.
pub(crate) fn event(room: &str, seq: Seq, rng: &mut ThreadRng) -> Option<String> {
    let (resource, id, topic) = split_room(room)?;
    let (kind, data) = match resource {
        Resource::Workspace => workspace(id, topic, rng),
        Resource::Organization => organization(id, topic, rng),
        Resource::Project => project(id, topic, rng),
    }?;
    let timestamp = now_rfc3339();
    Some(to_string(&DataFrame {
        kind,
        id: None,
        timestamp: &timestamp,
        data,
        seq: seq.field(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(room: &str) -> Value {
        serde_json::from_str(&event(room, Seq::shown(7), &mut rand::rng()).unwrap()).unwrap()
    }

    #[test]
    fn rooms_name_their_event_and_ids() {
        let e = one("workspace:ws-9:alert_triggered");
        assert_eq!(
            (e["type"].as_str(), e["seq"].as_u64()),
            (Some("workspace.alert_triggered"), Some(7))
        );
        assert_eq!(e["data"]["workspace_id"], "ws-9");
        assert_eq!(
            one("organization:org-1:billing_updated")["data"]["organization_id"],
            "org-1"
        );
        assert_eq!(one("project:p:1:deleted")["data"]["project_id"], "p:1");
        assert_eq!(one("project:p:1:created")["data"]["project"]["id"], "p:1");
        for _ in 0..20 {
            let t = one("workspace:w:provisioning")["type"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(t.starts_with("provisioning."), "{t}");
            let t = one("workspace:w:monitoring")["type"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(t.starts_with("monitoring."), "{t}");
        }
        assert!(event("workspace:w:nothing", Seq::shown(1), &mut rand::rng()).is_none());
        assert!(event("cluster:c:created", Seq::shown(1), &mut rand::rng()).is_none());
    }

    #[test]
    fn changes_differ_and_endpoints_are_hosts() {
        let mut rng = rand::rng();
        for _ in 0..50 {
            let (a, b) = change(&HEALTH, &mut rng);
            assert_ne!(a, b);
        }
        for _ in 0..30 {
            let e = one("workspace:has space:provisioning");
            assert!(e["data"].get("api_endpoint").is_none(), "{e}");
        }
    }
}
