//! One runtime's room registry and per-connection outboxes; single-threaded, so no locks at all.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use rustc_hash::FxHashMap;

use crate::hub::RoomKey;

/// A connection's bounded queue of event frames waiting to be written, and the one thing
/// its task sleeps on besides the socket: new frames, a slow-consumer kick, or shutdown.
/// Single-threaded (per runtime), so it is plain cells and one stored waker: waiting on it
/// takes no lock and touches no memory another thread writes.
pub(crate) struct Outbox {
    queue: RefCell<VecDeque<Utf8Bytes>>,
    cap: usize,
    kicked: Cell<bool>,
    stopped: Cell<bool>,
    /// Something happened since the task last waited.
    signal: Cell<bool>,
    waker: Cell<Option<Waker>>,
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
            stopped: Cell::new(false),
            signal: Cell::new(false),
            waker: Cell::new(None),
        }
    }

    fn wake(&self) {
        self.signal.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Keeps the task's waker, cloning it only when it changed.
    fn register(&self, cx: &Context<'_>) {
        let waker = match self.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(waker));
    }

    pub fn offer(&self, text: &Utf8Bytes) -> Offer {
        if self.kicked.get() {
            return Offer::Gone;
        }
        let mut q = self.queue.borrow_mut();
        if q.len() >= self.cap {
            self.kicked.set(true);
            q.clear();
            drop(q);
            self.wake();
            return Offer::Full;
        }
        q.push_back(text.clone());
        // The connection drains the whole queue per wake-up, so only the push that
        // makes the queue non-empty needs to wake it.
        if q.len() == 1 {
            drop(q);
            self.wake();
        }
        Offer::Queued
    }

    /// Whether frames are waiting.
    pub fn has_queued(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    /// Takes every queued frame.
    pub fn drain(&self) -> VecDeque<Utf8Bytes> {
        std::mem::take(&mut *self.queue.borrow_mut())
    }

    pub fn kicked(&self) -> bool {
        self.kicked.get()
    }

    /// Asks the connection to close for shutdown.
    pub fn stop(&self) {
        self.stopped.set(true);
        self.wake();
    }

    pub fn stopped(&self) -> bool {
        self.stopped.get()
    }

    /// Resolves when something was queued, or the connection was kicked or stopped.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.signal.replace(false) {
                return Poll::Ready(());
            }
            self.register(cx);
            Poll::Pending
        })
    }

    /// Resolves only once the connection is kicked or stopped.
    pub fn wait_alarm(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.kicked.get() || self.stopped.get() {
                return Poll::Ready(());
            }
            self.register(cx);
            Poll::Pending
        })
    }
}

/// A subscriber: connection id, the hub's stamp when it joined, its outbox.
type Member = (u64, u64, Rc<Outbox>);

/// Subscribers of each room on this runtime.
#[derive(Default)]
pub(crate) struct Rooms {
    members: FxHashMap<RoomKey, Vec<Member>>,
}

impl Rooms {
    /// Adds a subscriber that joined at hub stamp `since` (see [`crate::hub::Hub::join`]).
    pub fn join(&mut self, room: &RoomKey, conn: u64, since: u64, outbox: Rc<Outbox>) {
        self.members
            .entry(room.clone())
            .or_default()
            .push((conn, since, outbox));
    }

    /// Removes a subscriber; false if it was not there (e.g. already dropped as slow).
    pub fn leave(&mut self, room: &RoomKey, conn: u64) -> bool {
        let Some(members) = self.members.get_mut(room) else {
            return false;
        };
        let Some(i) = members.iter().position(|(id, _, _)| *id == conn) else {
            return false;
        };
        members.swap_remove(i);
        if members.is_empty() {
            self.members.remove(room);
        }
        true
    }

    /// Offers one frame of the batch stamped `stamp` to every subscriber that joined
    /// before it; returns how many were dropped as gone or slow.
    pub fn publish(&mut self, room: &RoomKey, stamp: u64, text: &Utf8Bytes) -> usize {
        let Some(members) = self.members.get_mut(room) else {
            return 0;
        };
        let before = members.len();
        members.retain(|(_, since, outbox)| stamp <= *since || outbox.offer(text) == Offer::Queued);
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
        rooms.join(&a, 1, 0, out.clone());
        rooms.join(&b, 1, 0, out.clone());
        let t = Utf8Bytes::from_static("e");
        assert_eq!(rooms.publish(&a, 1, &t), 0);
        assert_eq!(rooms.publish(&a, 2, &t), 0);
        assert_eq!(rooms.publish(&a, 3, &t), 1);
        assert!(out.kicked());
        assert_eq!(rooms.publish(&b, 4, &t), 1);
        assert!(!rooms.leave(&b, 1));
    }

    #[test]
    fn a_member_gets_only_batches_published_after_it_joined() {
        let early = Rc::new(Outbox::new(8));
        let late = Rc::new(Outbox::new(8));
        let mut rooms = Rooms::default();
        let room: RoomKey = "newloom-chat/2".into();
        rooms.join(&room, 1, 0, early.clone());
        // Batch 1 was queued before the second member joined (hub stamp 1 at its join)
        // but reaches this runtime only now.
        rooms.join(&room, 2, 1, late.clone());
        rooms.publish(&room, 1, &Utf8Bytes::from_static("before"));
        rooms.publish(&room, 2, &Utf8Bytes::from_static("after"));
        let texts = |o: &Outbox| o.drain().iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(texts(&early), ["before", "after"]);
        assert_eq!(texts(&late), ["after"]);
        assert!(
            rooms.leave(&room, 2),
            "a skipped batch does not drop the member"
        );
    }
}
