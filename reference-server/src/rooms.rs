//! One runtime's room registry and per-connection outboxes; single-threaded, so no locks at all.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use rustc_hash::FxHashMap;

use crate::hub::RoomKey;

/// A connection's bounded queue of event frames waiting to be written.
pub(crate) struct Outbox {
    queue: RefCell<VecDeque<Utf8Bytes>>,
    cap: usize,
    kicked: Cell<bool>,
    /// Wakes the connection when the queue becomes non-empty or it is kicked.
    ready: Notify,
}

/// The result of offering an event to an outbox.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    /// The queue was full: the connection is now kicked as a slow consumer.
    Full,
    /// The connection was already kicked.
    Gone,
}

impl Outbox {
    pub fn new(cap: usize) -> Self {
        Outbox {
            queue: RefCell::new(VecDeque::new()),
            cap: cap.max(1),
            kicked: Cell::new(false),
            ready: Notify::new(),
        }
    }

    pub fn offer(&self, text: &Utf8Bytes) -> Offer {
        if self.kicked.get() {
            return Offer::Gone;
        }
        let mut q = self.queue.borrow_mut();
        if q.len() >= self.cap {
            self.kicked.set(true);
            q.clear();
            self.ready.notify_one();
            return Offer::Full;
        }
        q.push_back(text.clone());
        // The connection drains the whole queue per wake-up, so only the push that
        // makes the queue non-empty needs to wake it.
        if q.len() == 1 {
            self.ready.notify_one();
        }
        Offer::Queued
    }

    /// Takes every queued frame.
    pub fn drain(&self) -> VecDeque<Utf8Bytes> {
        std::mem::take(&mut *self.queue.borrow_mut())
    }

    pub fn kicked(&self) -> bool {
        self.kicked.get()
    }

    /// Resolves when something was queued or the connection was kicked.
    pub async fn wait(&self) {
        self.ready.notified().await
    }

    /// Resolves only once the connection is kicked.
    pub async fn wait_kicked(&self) {
        while !self.kicked.get() {
            self.ready.notified().await;
        }
    }
}

/// Subscribers of each room on this runtime.
#[derive(Default)]
pub(crate) struct Rooms {
    members: FxHashMap<RoomKey, Vec<(u64, Rc<Outbox>)>>,
}

impl Rooms {
    pub fn join(&mut self, room: &RoomKey, conn: u64, outbox: Rc<Outbox>) {
        self.members
            .entry(room.clone())
            .or_default()
            .push((conn, outbox));
    }

    /// Removes a subscriber; false if it was not there (e.g. already dropped as slow).
    pub fn leave(&mut self, room: &RoomKey, conn: u64) -> bool {
        let Some(members) = self.members.get_mut(room) else {
            return false;
        };
        let Some(i) = members.iter().position(|(id, _)| *id == conn) else {
            return false;
        };
        members.swap_remove(i);
        if members.is_empty() {
            self.members.remove(room);
        }
        true
    }

    /// Offers one frame to every subscriber; returns how many were dropped as gone or slow.
    pub fn publish(&mut self, room: &RoomKey, text: &Utf8Bytes) -> usize {
        let Some(members) = self.members.get_mut(room) else {
            return 0;
        };
        let before = members.len();
        members.retain(|(_, outbox)| outbox.offer(text) == Offer::Queued);
        let dropped = before - members.len();
        if members.is_empty() {
            self.members.remove(room);
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_outbox_kicks_once() {
        let out = Rc::new(Outbox::new(2));
        let mut rooms = Rooms::default();
        let (a, b): (RoomKey, RoomKey) = ("kite/scrape:all".into(), "kite/cases:all".into());
        rooms.join(&a, 1, out.clone());
        rooms.join(&b, 1, out.clone());
        let t = Utf8Bytes::from_static("e");
        assert_eq!(rooms.publish(&a, &t), 0);
        assert_eq!(rooms.publish(&a, &t), 0);
        assert_eq!(rooms.publish(&a, &t), 1);
        assert!(out.kicked());
        assert_eq!(rooms.publish(&b, &t), 1);
        assert!(!rooms.leave(&b, 1));
    }
}
