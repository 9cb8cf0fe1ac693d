//! Subscriptions as rooms. A `subscribe` payload is checked and expanded into room names,
//! one per (event type, cluster) — and per service for the event types that belong to a
//! service — with the subscription's filters appended in a canonical order:
//!
//! ```text
//! {eventType}/{cluster|*}[/{service|*}][?action=A,B][&status=X,Y]
//! task/production?status=PENDING,RUNNING      service/staging/web-api      cluster/*
//! ```
//!
//! Subscribers with the same filters share a room, so the generator builds (and serializes)
//! each event once per room, and every event in a room matches the room's filters.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::wire::{payload, Code, Fault, Text};

/// Most rooms one subscription may expand to (event types × clusters × services).
pub const MAX_ROOMS_PER_SUBSCRIPTION: usize = 64;

/// Most values one filter may list.
pub const MAX_FILTER_VALUES: usize = 16;

/// The event types of "Subscriptions / Event Types".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum EventType {
    Cluster,
    Service,
    Task,
    Deployment,
    Scaling,
    Health,
    Container,
}

impl EventType {
    const ALL: [EventType; 7] = [
        EventType::Cluster,
        EventType::Service,
        EventType::Task,
        EventType::Deployment,
        EventType::Scaling,
        EventType::Health,
        EventType::Container,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventType::Cluster => "cluster",
            EventType::Service => "service",
            EventType::Task => "task",
            EventType::Deployment => "deployment",
            EventType::Scaling => "scaling",
            EventType::Health => "health",
            EventType::Container => "container",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Whether events of this type belong to one service (so `services` narrows them).
    pub fn has_service(self) -> bool {
        matches!(self, EventType::Service | EventType::Deployment)
    }
}

/// The `subscribe` / `events` payload.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe<'a> {
    #[serde(rename = "eventTypes", borrow)]
    event_types: Vec<Text<'a>>,
    #[serde(default, borrow)]
    clusters: Vec<Text<'a>>,
    #[serde(default, borrow)]
    services: Vec<Text<'a>>,
    #[serde(default, borrow)]
    filters: Option<&'a RawValue>,
}

/// `filters`: the fields events can be filtered on, each with its accepted values.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Filters<'a> {
    #[serde(default, borrow)]
    action: Vec<Text<'a>>,
    #[serde(default, borrow)]
    status: Vec<Text<'a>>,
}

/// Whether `s` is a valid ECS cluster, service or container name: 1 to 255 letters,
/// digits, hyphens and underscores.
pub(crate) fn is_ecs_name(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_upper_snake(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.as_bytes()[0].is_ascii_uppercase()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks a list of names; empty means "all" (`*`).
fn names<'a>(list: &'a [Text<'a>], field: &str) -> Result<Vec<&'a str>, Fault> {
    if list.is_empty() {
        return Ok(vec!["*"]);
    }
    let mut out = Vec::with_capacity(list.len());
    for name in list {
        if !is_ecs_name(name) {
            let reason = format!(
                "'{}' is not an ECS name (1-255 letters, digits, '-' and '_')",
                &**name
            );
            return Err(Fault::invalid(field, reason));
        }
        out.push(&**name);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// One filter as `key=A,B` (sorted, deduplicated), or `None` when it lists no value.
fn filter(key: &str, values: &[Text<'_>]) -> Result<Option<String>, Fault> {
    if values.is_empty() {
        return Ok(None);
    }
    let field = format!("filters.{key}");
    if values.len() > MAX_FILTER_VALUES {
        let reason = format!("at most {MAX_FILTER_VALUES} values");
        return Err(Fault::invalid(&field, reason));
    }
    let mut vals: Vec<&str> = values.iter().map(|v| &**v).collect();
    if let Some(bad) = vals.iter().find(|v| !is_upper_snake(v)) {
        let reason = format!("'{bad}' is not an upper-case value such as RUNNING");
        return Err(Fault::invalid(&field, reason));
    }
    vals.sort_unstable();
    vals.dedup();
    Ok(Some(format!("{key}={}", vals.join(","))))
}

/// A `subscribe` payload's event types: at least one, each known; sorted and distinct.
fn event_types(req: &Subscribe<'_>) -> Result<Vec<EventType>, Fault> {
    if req.event_types.is_empty() {
        return Err(Fault::invalid(
            "eventTypes",
            "at least one event type is required",
        ));
    }
    let mut types = Vec::with_capacity(req.event_types.len());
    for t in &req.event_types {
        let kind = EventType::parse(t).ok_or_else(|| {
            Fault::invalid("eventTypes", format!("Unknown event type: '{}'", &**t))
        })?;
        types.push(kind);
    }
    types.sort_unstable();
    types.dedup();
    Ok(types)
}

/// Validates a `subscribe` payload and returns its rooms, sorted and distinct.
pub(crate) fn rooms(raw: Option<&RawValue>) -> Result<Vec<String>, Fault> {
    let req: Subscribe<'_> = payload(raw, "payload")?;
    let types = event_types(&req)?;
    let clusters = names(&req.clusters, "clusters")?;
    let services = names(&req.services, "services")?;
    let filters: Filters<'_> = match req.filters {
        Some(raw) => payload(Some(raw), "filters")?,
        None => Filters::default(),
    };
    let parts: Vec<String> = [
        filter("action", &filters.action)?,
        filter("status", &filters.status)?,
    ]
    .into_iter()
    .flatten()
    .collect();
    let suffix = if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    };
    let per_type = |t: EventType| clusters.len() * if t.has_service() { services.len() } else { 1 };
    let total: usize = types.iter().map(|&t| per_type(t)).sum();
    if total > MAX_ROOMS_PER_SUBSCRIPTION {
        let reason = format!(
            "{total} (event type, cluster, service) combinations; at most {MAX_ROOMS_PER_SUBSCRIPTION}"
        );
        return Err(Fault::new(
            Code::SubscriptionError,
            "subscription_too_wide",
            "Subscription too wide",
        )
        .at("eventTypes", reason));
    }
    let mut out = Vec::with_capacity(total);
    for t in types {
        for c in &clusters {
            if t.has_service() {
                for s in &services {
                    out.push(format!("{}/{c}/{s}{suffix}", t.name()));
                }
            } else {
                out.push(format!("{}/{c}{suffix}", t.name()));
            }
        }
    }
    Ok(out)
}

/// A room name read back: what every event generated into it must match.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Room<'a> {
    pub kind: EventType,
    /// `None` for every cluster (`*`).
    pub cluster: Option<&'a str>,
    /// `None` for every service, or for an event type without services.
    pub service: Option<&'a str>,
    /// Accepted actions, comma-separated; `None` for any.
    pub action: Option<&'a str>,
    /// Accepted statuses, comma-separated; `None` for any.
    pub status: Option<&'a str>,
}

impl<'a> Room<'a> {
    pub fn parse(name: &'a str) -> Option<Room<'a>> {
        let (path, query) = name.split_once('?').unwrap_or((name, ""));
        let mut segs = path.split('/');
        let kind = EventType::parse(segs.next()?)?;
        let any = |s: &'a str| (s != "*").then_some(s);
        let cluster = any(segs.next()?);
        let service = if kind.has_service() {
            any(segs.next()?)
        } else {
            None
        };
        let (mut action, mut status) = (None, None);
        for part in query.split('&').filter(|p| !p.is_empty()) {
            match part.split_once('=')? {
                ("action", v) => action = Some(v),
                ("status", v) => status = Some(v),
                _ => return None,
            }
        }
        Some(Room {
            kind,
            cluster,
            service,
            action,
            status,
        })
    }
}

/// Whether `value` is in the comma-separated `list` (`None` accepts everything).
pub(crate) fn allows(list: Option<&str>, value: &str) -> bool {
    list.is_none_or(|l| l.split(',').any(|v| v == value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(json: &str) -> Result<Vec<String>, Fault> {
        rooms(Some(&RawValue::from_string(json.to_owned()).unwrap()))
    }

    #[test]
    fn the_documents_subscription_expands_per_type_cluster_and_service() {
        let rooms = expand(
            r#"{"eventTypes":["cluster","service","task"],"clusters":["production","staging"],
            "services":["web-api"],"filters":{"status":["RUNNING","PENDING"]}}"#,
        )
        .unwrap();
        assert_eq!(
            rooms,
            [
                "cluster/production?status=PENDING,RUNNING",
                "cluster/staging?status=PENDING,RUNNING",
                "service/production/web-api?status=PENDING,RUNNING",
                "service/staging/web-api?status=PENDING,RUNNING",
                "task/production?status=PENDING,RUNNING",
                "task/staging?status=PENDING,RUNNING",
            ]
        );
        let room = Room::parse(&rooms[2]).unwrap();
        assert_eq!(room.kind, EventType::Service);
        assert_eq!(
            (room.cluster, room.service),
            (Some("production"), Some("web-api"))
        );
        assert!(allows(room.status, "RUNNING") && !allows(room.status, "ACTIVE"));
        assert!(allows(room.action, "CREATE"));
    }

    #[test]
    fn defaults_are_wildcards_and_bad_input_names_the_field() {
        let rooms =
            expand(r#"{"eventTypes":["deployment","task","task"],"filters":{"action":["STOP"]}}"#)
                .unwrap();
        assert_eq!(rooms, ["task/*?action=STOP", "deployment/*/*?action=STOP"]);
        let r = Room::parse(&rooms[1]).unwrap();
        assert_eq!((r.cluster, r.service, r.action), (None, None, Some("STOP")));
        let err = |json: &str| expand(json).unwrap_err();
        let f = err(r#"{"eventTypes":["invalid-type"]}"#);
        assert_eq!(f.field.as_deref(), Some("eventTypes"));
        assert_eq!(
            f.reason.as_deref(),
            Some("Unknown event type: 'invalid-type'")
        );
        assert_eq!(err(r#"{"eventTypes":[]}"#).code, Code::InvalidRequest);
        assert_eq!(
            err(r#"{"clusters":["a"]}"#).field.as_deref(),
            Some("eventTypes")
        );
        assert_eq!(
            err(r#"{"eventTypes":["task"],"clusters":["a b"]}"#)
                .field
                .as_deref(),
            Some("clusters")
        );
        assert_eq!(
            err(r#"{"eventTypes":["task"],"filters":{"zone":["A"]}}"#)
                .field
                .as_deref(),
            Some("filters.zone")
        );
        assert_eq!(
            err(r#"{"eventTypes":["task"],"filters":{"status":["running"]}}"#)
                .field
                .as_deref(),
            Some("filters.status")
        );
        let many: Vec<String> = (0..10).map(|i| format!("\"c{i}\"")).collect();
        let wide = format!(
            r#"{{"eventTypes":["cluster","task","health","scaling","container","service","deployment"],"clusters":[{}]}}"#,
            many.join(",")
        );
        assert_eq!(err(&wide).code, Code::SubscriptionError);
        assert!(Room::parse("task/x?zone=A").is_none());
        assert!(Room::parse("bogus/x").is_none());
    }
}
