//! Generated KECS events: for each room (see [`super::rooms`]) an event of the room's type,
//! in the room's cluster and service, whose action and status pass the room's filters,
//! built from typed structs and serialized once per room.

use rand::rngs::ThreadRng;
use rand::RngExt;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use super::rooms::{allows, EventType, Room};
use crate::clock::format_micros;
use crate::proto::Seq;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";
/// Clusters and services picked for rooms that take any (`*`).
const CLUSTERS: [&str; 3] = ["production", "staging", "development"];
const SERVICES: [&str; 3] = ["web-api", "worker", "frontend"];

/// (action, status) pairs that make sense together, per event type.
const CLUSTER_STATES: [(&str, &str); 6] = [
    ("CREATE", "PROVISIONING"),
    ("CREATE", "ACTIVE"),
    ("UPDATE", "ACTIVE"),
    ("UPDATE", "FAILED"),
    ("DELETE", "DEPROVISIONING"),
    ("DELETE", "INACTIVE"),
];
const SERVICE_STATES: [(&str, &str); 8] = [
    ("CREATE", "ACTIVE"),
    ("UPDATE", "ACTIVE"),
    ("DELETE", "DRAINING"),
    ("DELETE", "INACTIVE"),
    ("DEPLOYMENT_START", "ACTIVE"),
    ("DEPLOYMENT_COMPLETE", "ACTIVE"),
    ("DEPLOYMENT_FAILED", "ACTIVE"),
    ("DEPLOYMENT_FAILED", "DRAINING"),
];
const TASK_STATES: [(&str, &str); 6] = [
    ("START", "PENDING"),
    ("START", "RUNNING"),
    ("STATUS_CHANGE", "PENDING"),
    ("STATUS_CHANGE", "RUNNING"),
    ("STATUS_CHANGE", "STOPPED"),
    ("STOP", "STOPPED"),
];
const DEPLOYMENT_STATES: [(&str, &str); 2] =
    [("PROGRESS", "IN_PROGRESS"), ("PROGRESS", "COMPLETED")];

/// Event ids, unique across the server.
static NEXT_EVENT: AtomicU64 = AtomicU64::new(1);

fn arn(resource: &str, rest: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:{resource}/{rest}")
}

/// A random (action, status) pair the room's filters accept, if there is one.
fn pick(
    states: &[(&'static str, &'static str)],
    room: &Room<'_>,
    rng: &mut ThreadRng,
) -> Option<(&'static str, &'static str)> {
    let ok = |(a, s): &&(&str, &str)| allows(room.action, a) && allows(room.status, s);
    let n = states.iter().filter(ok).count();
    if n == 0 {
        return None;
    }
    states
        .iter()
        .filter(ok)
        .nth(rng.random_range(0..n))
        .copied()
}

fn one<'a>(fixed: Option<&'a str>, pool: &'a [&'a str], rng: &mut ThreadRng) -> &'a str {
    fixed.unwrap_or_else(|| pool[rng.random_range(0..pool.len())])
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cluster<'a> {
    cluster_arn: &'a str,
    cluster_name: &'a str,
    status: &'a str,
    registered_container_instances_count: u32,
    running_tasks_count: u32,
    pending_tasks_count: u32,
    active_services_count: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Service<'a> {
    service_arn: &'a str,
    service_name: &'a str,
    cluster_arn: &'a str,
    status: &'a str,
    desired_count: u32,
    running_count: u32,
    pending_count: u32,
    deployments: [ServiceDeployment<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceDeployment<'a> {
    id: &'a str,
    status: &'a str,
    task_definition: &'a str,
    desired_count: u32,
    running_count: u32,
    pending_count: u32,
    rollout_state: &'a str,
    rollout_state_reason: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Task<'a> {
    task_arn: &'a str,
    cluster_arn: &'a str,
    task_definition_arn: &'a str,
    last_status: &'a str,
    desired_status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_reason: Option<&'a str>,
    containers: [Container<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Container<'a> {
    container_arn: &'a str,
    name: &'a str,
    last_status: &'a str,
    exit_code: Option<i32>,
    reason: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Deployment<'a> {
    service_arn: &'a str,
    deployment_id: &'a str,
    status: &'a str,
    task_definition: &'a str,
    desired_count: u32,
    running_count: u32,
    pending_count: u32,
    failed_tasks: u32,
    rollout_state: &'a str,
    rollout_state_reason: &'a str,
    created_at: &'a str,
    updated_at: &'a str,
}

/// `{eventType, action, <eventType>: record}`: the record sits under the type's own name.
struct Payload<'a, R> {
    kind: EventType,
    action: &'a str,
    record: R,
}

impl<R: Serialize> Serialize for Payload<'_, R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("eventType", self.kind.name())?;
        map.serialize_entry("action", self.action)?;
        map.serialize_entry(self.kind.name(), &self.record)?;
        map.end()
    }
}

/// The event frame; `seq` and `room` are reference-server extensions (schemas/kecs/README.md).
#[derive(Serialize)]
struct Event<'a, P> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    payload: P,
}

/// What every event of one room shares.
struct Ctx<'a> {
    name: &'a str,
    room: Room<'a>,
    seq: Seq,
    timestamp: String,
    now_us: i64,
    /// The room's cluster, or one picked for a `*` room.
    cluster: &'a str,
    cluster_arn: String,
}

impl Ctx<'_> {
    fn finish<R: Serialize>(&self, action: &str, record: R) -> Option<String> {
        let id = format!("evt-{}", NEXT_EVENT.fetch_add(1, Relaxed));
        let event = Event {
            id: &id,
            kind: "event",
            timestamp: &self.timestamp,
            seq: self.seq.field(),
            // Like `seq`, an extension: shown only with it.
            room: self.seq.shown.then_some(self.name),
            payload: Payload {
                kind: self.room.kind,
                action,
                record,
            },
        };
        serde_json::to_string(&event).ok()
    }
}

/// One event for `room` with sequence number `seq`; `None` when the room's type has no
/// generated events or its filters exclude every state.
pub(crate) fn event(name: &str, seq: Seq, rng: &mut ThreadRng) -> Option<String> {
    let room = Room::parse(name)?;
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let cluster = one(room.cluster, &CLUSTERS, rng);
    let cx = Ctx {
        name,
        room,
        seq,
        timestamp: format_micros(now_us),
        now_us,
        cluster,
        cluster_arn: arn("cluster", cluster),
    };
    match cx.room.kind {
        EventType::Cluster => {
            let (action, status) = pick(&CLUSTER_STATES, &cx.room, rng)?;
            let record = Cluster {
                cluster_arn: &cx.cluster_arn,
                cluster_name: cluster,
                status,
                registered_container_instances_count: rng.random_range(0..10),
                running_tasks_count: rng.random_range(0..50),
                pending_tasks_count: rng.random_range(0..5),
                active_services_count: rng.random_range(0..10),
            };
            cx.finish(action, record)
        }
        EventType::Service => service(&cx, rng),
        EventType::Task => task(&cx, rng),
        EventType::Deployment => deployment(&cx, rng),
        EventType::Scaling | EventType::Health | EventType::Container => None,
    }
}

fn service(cx: &Ctx<'_>, rng: &mut ThreadRng) -> Option<String> {
    let (room, cluster) = (&cx.room, cx.cluster);
    let (action, status) = pick(&SERVICE_STATES, room, rng)?;
    let name = one(room.service, &SERVICES, rng);
    let revision = rng.random_range(1..20u32);
    let task_definition = format!("{name}:{revision}");
    let desired = rng.random_range(1..6u32);
    let running = rng.random_range(0..=desired);
    let (rollout, reason) = match action {
        "DEPLOYMENT_START" => ("IN_PROGRESS", "Rolling update in progress"),
        "DEPLOYMENT_FAILED" => ("FAILED", "Tasks failed to start"),
        _ => ("COMPLETED", "Service reached a steady state"),
    };
    let record = Service {
        service_arn: &arn("service", &format!("{cluster}/{name}")),
        service_name: name,
        cluster_arn: &cx.cluster_arn,
        status,
        desired_count: desired,
        running_count: running,
        pending_count: desired - running,
        deployments: [ServiceDeployment {
            id: &format!("deploy-{revision:03}"),
            status: "PRIMARY",
            task_definition: &task_definition,
            desired_count: desired,
            running_count: running,
            pending_count: desired - running,
            rollout_state: rollout,
            rollout_state_reason: reason,
        }],
    };
    cx.finish(action, record)
}

fn task(cx: &Ctx<'_>, rng: &mut ThreadRng) -> Option<String> {
    let (room, cluster) = (&cx.room, cx.cluster);
    let (action, status) = pick(&TASK_STATES, room, rng)?;
    let family = one(None, &SERVICES, rng);
    let task_id = format!("{:032x}", rng.random::<u128>());
    let stopped = status == "STOPPED";
    let container = uuid::Uuid::from_u128(rng.random::<u128>());
    let record = Task {
        task_arn: &arn("task", &format!("{cluster}/{task_id}")),
        cluster_arn: &cx.cluster_arn,
        task_definition_arn: &arn(
            "task-definition",
            &format!("{family}:{}", rng.random_range(1..20u32)),
        ),
        last_status: status,
        desired_status: if stopped || action == "STOP" {
            "STOPPED"
        } else {
            "RUNNING"
        },
        stopped_reason: stopped.then_some("Essential container exited"),
        containers: [Container {
            container_arn: &arn("container", &format!("{cluster}/{task_id}/{container}")),
            name: family,
            last_status: status,
            exit_code: stopped.then(|| rng.random_range(0..2)),
            reason: None,
        }],
    };
    cx.finish(action, record)
}

fn deployment(cx: &Ctx<'_>, rng: &mut ThreadRng) -> Option<String> {
    let (room, cluster) = (&cx.room, cx.cluster);
    let (action, status) = pick(&DEPLOYMENT_STATES, room, rng)?;
    let name = one(room.service, &SERVICES, rng);
    let revision = rng.random_range(1..20u32);
    let desired = rng.random_range(1..6u32);
    let (running, rollout, reason) = if status == "COMPLETED" {
        (desired, "COMPLETED", "Deployment completed")
    } else {
        (
            rng.random_range(0..desired),
            "IN_PROGRESS",
            "Rolling update in progress",
        )
    };
    let created = format_micros(cx.now_us - i64::from(rng.random_range(1..600u32)) * 1_000_000);
    let record = Deployment {
        service_arn: &arn("service", &format!("{cluster}/{name}")),
        deployment_id: &format!("deploy-{revision:03}"),
        status,
        task_definition: &format!("{name}:{revision}"),
        desired_count: desired,
        running_count: running,
        pending_count: desired - running,
        failed_tasks: rng.random_range(0..2),
        rollout_state: rollout,
        rollout_state_reason: reason,
        created_at: &created,
        updated_at: &cx.timestamp,
    };
    cx.finish(action, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn one_event(room: &str) -> Option<Value> {
        event(room, Seq::shown(3), &mut rand::rng()).map(|t| serde_json::from_str(&t).unwrap())
    }

    #[test]
    fn events_match_their_rooms() {
        let e = one_event("task/production?status=PENDING,RUNNING").unwrap();
        assert_eq!(
            (e["type"].as_str(), e["seq"].as_u64()),
            (Some("event"), Some(3))
        );
        assert_eq!(e["room"], "task/production?status=PENDING,RUNNING");
        assert_eq!(e["payload"]["eventType"], "task");
        let task = &e["payload"]["task"];
        assert!(task["clusterArn"]
            .as_str()
            .unwrap()
            .ends_with(":cluster/production"));
        assert_ne!(task["lastStatus"], "STOPPED");
        let e = one_event("service/staging/web-api?action=DELETE").unwrap();
        assert_eq!(e["payload"]["action"], "DELETE");
        assert_eq!(e["payload"]["service"]["serviceName"], "web-api");
        let e = one_event("deployment/staging/worker").unwrap();
        assert!(e["payload"]["deployment"]["serviceArn"]
            .as_str()
            .unwrap()
            .ends_with("service/staging/worker"));
        let e = one_event("cluster/*?action=CREATE&status=ACTIVE").unwrap();
        assert_eq!(e["payload"]["cluster"]["status"], "ACTIVE");
        assert_ne!(
            one_event("cluster/*").unwrap()["id"],
            e["id"],
            "ids are unique"
        );
    }

    #[test]
    fn rooms_without_events_decline() {
        assert!(
            one_event("cluster/*?status=RUNNING").is_none(),
            "no cluster is RUNNING"
        );
        assert!(one_event("health/*").is_none());
        assert!(one_event("not-a-room").is_none());
    }
}
