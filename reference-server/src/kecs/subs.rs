//! One connection's subscriptions: their ids, the rooms each holds, and how many
//! subscriptions hold each room (a room is joined once and left with its last holder, so an
//! event reaches the connection once however many of its subscriptions match it).

use rustc_hash::FxHashMap;

use super::wire::{Code, Fault};
use crate::session::Cx;

/// Active subscriptions per connection ("Rate Limiting": Subscription Limit).
pub const MAX_SUBSCRIPTIONS: usize = 50;

/// The cap that still holds when the documented limit is switched off, so a client
/// cannot grow a connection's state without bound.
pub const HARD_MAX_SUBSCRIPTIONS: usize = 1024;

/// Distinct rooms one connection may hold across its subscriptions.
pub const MAX_ROOMS: usize = 512;

/// The subscription table of one connection.
pub(crate) struct Subscriptions {
    subs: Vec<(Box<str>, Vec<Box<str>>)>,
    held: FxHashMap<Box<str>, u32>,
    max: usize,
}

impl Subscriptions {
    /// A table enforcing the documented limit when `limited`, the hard cap otherwise.
    pub fn new(limited: bool) -> Self {
        Subscriptions {
            subs: Vec::new(),
            held: FxHashMap::default(),
            max: if limited {
                MAX_SUBSCRIPTIONS
            } else {
                HARD_MAX_SUBSCRIPTIONS
            },
        }
    }

    /// Adds subscription `id` holding `rooms`, joining the rooms not yet held.
    pub fn subscribe(
        &mut self,
        id: &str,
        rooms: Vec<String>,
        cx: &mut Cx<'_>,
    ) -> Result<(), Fault> {
        let refuse = |counter, reason: String| {
            Err(Fault::new(
                Code::SubscriptionError,
                counter,
                "Failed to create subscription",
            )
            .at("id", reason))
        };
        if self.subs.iter().any(|(held, _)| **held == *id) {
            return refuse(
                "duplicate_subscription",
                format!("subscription '{id}' is already active"),
            );
        }
        if self.subs.len() >= self.max {
            let reason = format!("at most {} active subscriptions per connection", self.max);
            return refuse("subscription_limit", reason);
        }
        let new = rooms
            .iter()
            .filter(|r| !self.held.contains_key(r.as_str()))
            .count();
        if self.held.len() + new > MAX_ROOMS {
            let reason = format!("at most {MAX_ROOMS} distinct rooms per connection");
            return refuse("room_limit", reason);
        }
        let rooms: Vec<Box<str>> = rooms.into_iter().map(String::into_boxed_str).collect();
        for room in &rooms {
            let n = self.held.entry(room.clone()).or_insert(0);
            if *n == 0 {
                cx.join(room);
            }
            *n += 1;
        }
        self.subs.push((id.into(), rooms));
        Ok(())
    }

    /// Removes subscription `id`, leaving the rooms no other subscription holds.
    pub fn unsubscribe(&mut self, id: &str, cx: &mut Cx<'_>) -> Result<(), Fault> {
        let Some(i) = self.subs.iter().position(|(held, _)| **held == *id) else {
            return Err(Fault::new(
                Code::ResourceNotFound,
                "unknown_subscription",
                "Subscription not found",
            )
            .at("subscriptionId", format!("no active subscription '{id}'")));
        };
        let (_, rooms) = self.subs.swap_remove(i);
        for room in rooms {
            if let Some(n) = self.held.get_mut(&room) {
                *n -= 1;
                if *n == 0 {
                    self.held.remove(&room);
                    cx.leave(&room);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Harness, Proto};

    #[test]
    fn shared_rooms_are_left_with_their_last_holder() {
        let mut h = Harness::new(Proto::Kecs);
        let mut subs = Subscriptions::new(true);
        let mut cx = h.cx();
        let rooms = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        subs.subscribe("a", rooms(&["task/x", "task/y"]), &mut cx)
            .unwrap();
        subs.subscribe("b", rooms(&["task/x"]), &mut cx).unwrap();
        assert_eq!(cx.members("task/x"), 1, "joined once");
        let dup = subs
            .subscribe("a", rooms(&["task/z"]), &mut cx)
            .unwrap_err();
        assert_eq!(dup.code, Code::SubscriptionError);
        subs.unsubscribe("a", &mut cx).unwrap();
        assert!(cx.is_member("task/x") && !cx.is_member("task/y"));
        subs.unsubscribe("b", &mut cx).unwrap();
        assert_eq!(cx.rooms().count(), 0);
        let gone = subs.unsubscribe("b", &mut cx).unwrap_err();
        assert_eq!(gone.code, Code::ResourceNotFound);
        assert!(subs.subs.is_empty() && subs.held.is_empty());
    }

    #[test]
    fn limits_hold_and_the_hard_cap_remains() {
        let mut h = Harness::new(Proto::Kecs);
        let mut cx = h.cx();
        let mut subs = Subscriptions::new(true);
        for i in 0..MAX_SUBSCRIPTIONS {
            subs.subscribe(&i.to_string(), vec!["cluster/*".into()], &mut cx)
                .unwrap();
        }
        let f = subs.subscribe("x", vec![], &mut cx).unwrap_err();
        assert_eq!(
            (f.code, f.counter),
            (Code::SubscriptionError, "subscription_limit")
        );
        let mut open = Subscriptions::new(false);
        for i in 0..HARD_MAX_SUBSCRIPTIONS {
            open.subscribe(&i.to_string(), vec![], &mut cx).unwrap();
        }
        assert!(open.subscribe("x", vec![], &mut cx).is_err());
        let mut wide = Subscriptions::new(true);
        let rooms: Vec<String> = (0..=MAX_ROOMS).map(|i| format!("task/c{i}")).collect();
        let f = wide.subscribe("w", rooms, &mut cx).unwrap_err();
        assert_eq!(f.counter, "room_limit");
    }
}
