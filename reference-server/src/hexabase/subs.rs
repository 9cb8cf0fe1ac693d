//! Hexabase subscriptions: the three resources, the events each one names, and the rooms a
//! subscription holds. A room is one topic of one resource (`workspace:ws-123:status_changed`),
//! so a subscription's `events` list is honoured while every event is still serialized once
//! per room.

use rustc_hash::FxHashMap;
use uuid::Uuid;

use super::wire::{id_ok, Code, Details, Failure, SubscribeData};
use crate::session::Cx;

/// Subscriptions one connection may hold ("Connection Limits").
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// Subscriptions one connection may hold when the documented limit is switched off, so
/// memory stays bounded all the same.
pub const HARD_CAP: usize = 1_000;

/// A subscribable resource ("Subscribe to Events").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Workspace,
    Organization,
    Project,
}

impl Resource {
    /// The resource a room or request names.
    pub fn parse(name: &str) -> Option<Resource> {
        match name {
            "workspace" => Some(Resource::Workspace),
            "organization" => Some(Resource::Organization),
            "project" => Some(Resource::Project),
            _ => None,
        }
    }

    /// The name used in requests, rooms and `requested_subscription`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Workspace => "workspace",
            Resource::Organization => "organization",
            Resource::Project => "project",
        }
    }

    /// The event names a subscribe may list: those the document's example lists for it.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            Resource::Workspace => &["status_changed", "resource_updated", "alert_triggered"],
            Resource::Organization => &["member_added", "member_removed", "billing_updated"],
            Resource::Project => &["created", "updated", "deleted", "resource_quota_exceeded"],
        }
    }

    /// Topics every subscription of this resource gets besides the events it names: the
    /// provisioning and monitoring families carry a workspace id and no subscribable name
    /// (schemas/hexabase/README.md, decision 5).
    pub fn implied(self) -> &'static [&'static str] {
        match self {
            Resource::Workspace => &["provisioning", "monitoring"],
            _ => &[],
        }
    }

    /// The request field holding this resource's id (`<resource>_id`).
    fn id_field(self) -> &'static str {
        match self {
            Resource::Workspace => "workspace_id",
            Resource::Organization => "organization_id",
            Resource::Project => "project_id",
        }
    }
}

/// The room carrying `topic` of resource `id`.
pub(crate) fn room(resource: Resource, id: &str, topic: &str) -> String {
    format!("{}:{id}:{topic}", resource.name())
}

/// A room's parts: (resource, id, topic). Ids may contain `:`; resource and topic do not.
pub(crate) fn split_room(room: &str) -> Option<(Resource, &str, &str)> {
    let (resource, rest) = room.split_once(':')?;
    let (id, topic) = rest.rsplit_once(':')?;
    Some((Resource::parse(resource)?, id, topic))
}

/// A checked `subscribe` request.
pub(crate) struct Request {
    pub resource: Resource,
    pub id: String,
    /// Topics (event names, then implied families), each once.
    pub topics: Vec<&'static str>,
}

impl Request {
    /// Checks a subscribe's data against what the schemas accept.
    pub fn parse(data: &SubscribeData<'_>) -> Result<Request, Failure> {
        let resource = Resource::parse(&data.resource).ok_or_else(|| {
            Failure::format(format!(
                "unknown resource '{}' (expected workspace, organization or project)",
                data.resource
            ))
        })?;
        let id = match resource {
            Resource::Workspace => &data.workspace_id,
            Resource::Organization => &data.organization_id,
            Resource::Project => &data.project_id,
        };
        let id = id.as_deref().filter(|id| id_ok(id)).ok_or_else(|| {
            Failure::format(format!(
                "resource '{}' needs '{}' (1 to 256 characters)",
                resource.name(),
                resource.id_field()
            ))
        })?;
        if data.events.is_empty() {
            return Err(Failure::format("'events' must list at least one event"));
        }
        let mut topics = Vec::with_capacity(data.events.len() + 2);
        for event in &data.events {
            let Some(known) = resource.events().iter().find(|e| **e == event.as_ref()) else {
                return Err(Failure::format(format!(
                    "unknown {} event '{event}' (expected one of: {})",
                    resource.name(),
                    resource.events().join(", ")
                )));
            };
            if topics.contains(known) {
                return Err(Failure::format(format!("event '{event}' listed twice")));
            }
            topics.push(*known);
        }
        topics.extend_from_slice(resource.implied());
        Ok(Request {
            resource,
            id: id.to_owned(),
            topics,
        })
    }
}

struct Held {
    resource: Resource,
    id: String,
    topics: Vec<&'static str>,
}

/// One connection's subscriptions, and how many of them hold each room.
pub(crate) struct Subscriptions {
    held: FxHashMap<Uuid, Held>,
    rooms: FxHashMap<String, u32>,
    max: usize,
    /// Whether `max` is the documented limit (else the hard cap).
    documented: bool,
}

impl Subscriptions {
    /// Empty, limited to [`MAX_SUBSCRIPTIONS`] or, with the limit off, [`HARD_CAP`].
    pub fn new(limited: bool) -> Self {
        Subscriptions {
            held: FxHashMap::default(),
            rooms: FxHashMap::default(),
            max: if limited { MAX_SUBSCRIPTIONS } else { HARD_CAP },
            documented: limited,
        }
    }

    /// Whether no subscription (and so no room) is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.rooms.is_empty()
    }

    /// Adds a subscription and joins the rooms it is the first to need; returns its id.
    /// Every subscribe is a new subscription, even one repeating an earlier request.
    pub fn add(&mut self, req: Request, cx: &mut Cx<'_>) -> Result<Uuid, Failure> {
        if self.held.len() >= self.max {
            let reason = if self.documented {
                "subscription_limit"
            } else {
                "subscription_hard_cap"
            };
            let message = format!("Maximum number of subscriptions ({}) exceeded", self.max);
            let failure = Failure::new(Code::SubscriptionLimitExceeded, reason, message);
            return Err(failure.with(Details::Subscriptions {
                current_subscriptions: self.held.len(),
                requested_subscription: format!("{}:{}", req.resource.name(), req.id),
            }));
        }
        for topic in &req.topics {
            let name = room(req.resource, &req.id, topic);
            if let Some(count) = self.rooms.get_mut(&name) {
                *count += 1;
            } else {
                cx.join(&name);
                self.rooms.insert(name, 1);
            }
        }
        let id = Uuid::new_v4();
        let held = Held {
            resource: req.resource,
            id: req.id,
            topics: req.topics,
        };
        self.held.insert(id, held);
        Ok(id)
    }

    /// Drops a subscription, leaving the rooms no other subscription needs; false when the
    /// connection holds no subscription with that id.
    pub fn remove(&mut self, id: &Uuid, cx: &mut Cx<'_>) -> bool {
        let Some(held) = self.held.remove(id) else {
            return false;
        };
        for topic in &held.topics {
            let name = room(held.resource, &held.id, topic);
            if let Some(count) = self.rooms.get_mut(&name) {
                *count -= 1;
                if *count == 0 {
                    self.rooms.remove(&name);
                    cx.leave(&name);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Harness, Proto};
    use std::borrow::Cow;

    fn data<'a>(resource: &'a str, id: &'a str, events: &[&'a str]) -> SubscribeData<'a> {
        let id = Some(Cow::Borrowed(id));
        SubscribeData {
            resource: Cow::Borrowed(resource),
            workspace_id: id.clone().filter(|_| resource == "workspace"),
            organization_id: id.clone().filter(|_| resource == "organization"),
            project_id: id.filter(|_| resource == "project"),
            events: events.iter().map(|e| Cow::Borrowed(*e)).collect(),
        }
    }

    #[test]
    fn requests_are_checked() {
        let ok = Request::parse(&data("workspace", "ws-1", &["status_changed"])).unwrap();
        assert_eq!(ok.topics, ["status_changed", "provisioning", "monitoring"]);
        let bad = [
            data("cluster", "c", &["created"]),
            data("workspace", "ws-1", &["member_added"]),
            data("project", "p", &["created", "created"]),
            data("organization", "", &["member_added"]),
            data("project", "p", &[]),
        ];
        for d in bad {
            let f = Request::parse(&d).err().expect("refused");
            assert_eq!(f.code, Code::InvalidMessageFormat, "{}", f.message);
        }
        let mut d = data("project", "p", &["created"]);
        d.project_id = None;
        d.workspace_id = Some("ws-1".into());
        assert!(
            Request::parse(&d).is_err(),
            "the id field must match the resource"
        );
    }

    #[test]
    fn rooms_are_shared_between_subscriptions() {
        let mut h = Harness::new(Proto::Hexabase);
        let mut subs = Subscriptions::new(true);
        let a = Request::parse(&data("project", "p:1", &["created", "deleted"])).unwrap();
        let b = Request::parse(&data("project", "p:1", &["created"])).unwrap();
        let (a, b) = {
            let mut cx = h.cx();
            (subs.add(a, &mut cx).unwrap(), subs.add(b, &mut cx).unwrap())
        };
        assert_ne!(a, b);
        assert_eq!(h.hub.subscriptions(), 2, "created is joined once");
        assert!(subs.remove(&a, &mut h.cx()));
        assert!(h.cx().is_member("project:p:1:created"));
        assert!(!h.cx().is_member("project:p:1:deleted"));
        assert!(!subs.remove(&a, &mut h.cx()));
        assert!(subs.remove(&b, &mut h.cx()));
        assert_eq!(h.hub.subscriptions(), 0);
        assert_eq!(split_room("project:p:1:created").unwrap().1, "p:1");
        assert!(split_room("cluster:c:x").is_none());
    }
}
