//! State shared by every runtime: room audiences and sequence numbers, publishing to the
//! runtimes, connections per client, and named counters. Locks here are short, never held
//! across an await, and never taken per inbound frame of the fast paths (echo, RPC).

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::proto::Proto;

/// A named counter: (protocol, or `None` for server-wide; metric; label).
pub(crate) type Counter = (Option<Proto>, &'static str, &'static str);

/// A room's server-wide key: `"<protocol>/<room>"`.
pub(crate) type RoomKey = Arc<str>;

/// Frames for several rooms, each serialized once and shared by every subscriber.
pub(crate) type Batch = Arc<Published>;

/// One publish (or one generated round) as the runtimes receive it.
pub(crate) struct Published {
    /// Where this batch stands in the server-wide order of publishes and joins; a member
    /// gets it only if it joined before, see [`Hub::join`].
    pub stamp: u64,
    pub frames: Vec<(RoomKey, Utf8Bytes)>,
}

#[derive(Default)]
struct Room {
    audience: usize,
    seq: u64,
}

/// The server-wide registry; one per server.
#[derive(Default)]
pub(crate) struct Hub {
    rooms: Mutex<FxHashMap<RoomKey, Room>>,
    /// One sender per runtime; unset in unit tests, where publishes are recorded instead.
    outs: OnceLock<Vec<UnboundedSender<Batch>>>,
    recorded: Mutex<Vec<(RoomKey, Utf8Bytes)>>,
    clients: Mutex<FxHashMap<(Proto, String), usize>>,
    counters: Mutex<BTreeMap<Counter, u64>>,
    published: AtomicU64,
    /// Batches sent so far; written and read only under the `rooms` lock, so publishes
    /// and joins share one order.
    stamp: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain counts behind: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    pub fn new() -> Self {
        Hub::default()
    }

    /// Connects the hub to the runtimes' event channels (once, at start).
    pub fn connect(&self, outs: Vec<UnboundedSender<Batch>>) {
        let _ = self.outs.set(outs);
    }

    pub fn key(&self, proto: Proto, room: &str) -> RoomKey {
        let mut s = String::with_capacity(proto.name().len() + 1 + room.len());
        s.push_str(proto.name());
        s.push('/');
        s.push_str(room);
        s.into()
    }

    /// Counts a member in; returns the members after, and the stamp of the last batch
    /// published before the join. Runtimes deliver a batch asynchronously, so one already
    /// queued may arrive after a member joined on another runtime: the member must skip
    /// every batch whose stamp is not above its join stamp, or it sees frames published
    /// before it was a member (and sequence numbers from before its first).
    pub fn join(&self, key: &RoomKey) -> (usize, u64) {
        let mut rooms = lock(&self.rooms);
        let room = rooms.entry(key.clone()).or_default();
        room.audience += 1;
        (room.audience, self.stamp.load(Relaxed))
    }

    /// Counts a member out; returns the members left. An empty room is forgotten
    /// (its sequence starts again at 1 when someone joins again).
    pub fn leave(&self, key: &RoomKey) -> usize {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(key) else {
            return 0;
        };
        room.audience = room.audience.saturating_sub(1);
        let left = room.audience;
        if left == 0 {
            rooms.remove(key);
        }
        left
    }

    pub fn members(&self, key: &RoomKey) -> usize {
        lock(&self.rooms).get(key).map_or(0, |r| r.audience)
    }

    /// Room subscriptions held across the server.
    pub fn subscriptions(&self) -> usize {
        lock(&self.rooms).values().map(|r| r.audience).sum()
    }

    /// Publishes one frame into a room with members; returns the member count.
    pub fn publish(&self, key: &RoomKey, build: impl FnOnce(u64) -> String) -> usize {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(key).filter(|r| r.audience > 0) else {
            return 0;
        };
        room.seq += 1;
        let text = build(room.seq);
        let audience = room.audience;
        // Queue while still holding the lock: two publishers on different runtimes must
        // reach every runtime's channel in sequence order, or members see seq 6 before 5.
        // The channels are unbounded, so queuing never waits.
        self.send(vec![(key.clone(), Utf8Bytes::from(text))]);
        audience
    }

    /// For each room of `proto` with members, `n` frames from `build(room, seq)` (which
    /// may decline a room with `None`), sent to the runtimes as one batch. Returns the
    /// frames published.
    pub fn generate(
        &self,
        proto: Proto,
        n: u64,
        mut build: impl FnMut(&str, u64) -> Option<String>,
    ) -> usize {
        let prefix = proto.name().len() + 1;
        let mut batch = Vec::new();
        let mut rooms = lock(&self.rooms);
        for (key, room) in rooms.iter_mut() {
            if room.audience == 0 || !key.starts_with(proto.name()) {
                continue;
            }
            if key.as_bytes().get(prefix - 1) != Some(&b'/') {
                continue;
            }
            for _ in 0..n {
                match build(&key[prefix..], room.seq + 1) {
                    Some(text) => {
                        room.seq += 1;
                        batch.push((key.clone(), Utf8Bytes::from(text)));
                    }
                    None => break,
                }
            }
        }
        // Queued under the lock, like `publish`, so the two never interleave out of order.
        let len = batch.len();
        if len > 0 {
            self.send(batch);
        }
        len
    }

    /// Queues a batch to every runtime; called with the `rooms` lock held.
    fn send(&self, batch: Vec<(RoomKey, Utf8Bytes)>) {
        self.published.fetch_add(batch.len() as u64, Relaxed);
        let stamp = self.stamp.fetch_add(1, Relaxed) + 1;
        match self.outs.get() {
            Some(outs) => {
                let batch = Arc::new(Published {
                    stamp,
                    frames: batch,
                });
                for tx in outs {
                    let _ = tx.send(batch.clone());
                }
            }
            None => lock(&self.recorded).extend(batch),
        }
    }

    /// Frames published into rooms (one per frame per room, not per subscriber).
    pub fn published(&self) -> u64 {
        self.published.load(Relaxed)
    }

    /// Frames published while no runtime was connected (unit tests).
    #[cfg(test)]
    pub fn take_published(&self) -> Vec<(RoomKey, Utf8Bytes)> {
        std::mem::take(&mut *lock(&self.recorded))
    }

    /// Counts a connection of `client` in, unless it already has `limit` open.
    pub fn client_enter(
        self: &Arc<Self>,
        proto: Proto,
        client: String,
        limit: usize,
    ) -> Option<ClientSlot> {
        let mut clients = lock(&self.clients);
        let n = clients.entry((proto, client.clone())).or_default();
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            hub: self.clone(),
            key: (proto, client),
        })
    }

    /// Adds to a named counter; `proto` is `None` for server-wide ones (accept errors).
    pub fn count(&self, proto: Option<Proto>, metric: &'static str, label: &'static str, n: u64) {
        *lock(&self.counters)
            .entry((proto, metric, label))
            .or_default() += n;
    }

    /// Every named counter with its value.
    pub fn counters(&self) -> Vec<(Counter, u64)> {
        lock(&self.counters).iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// One open connection of a client with a per-client limit; counted out on drop.
pub(crate) struct ClientSlot {
    hub: Arc<Hub>,
    key: (Proto, String),
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut clients = lock(&self.hub.clients);
        if let Some(n) = clients.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_sequence_and_forget() {
        let hub = Hub::new();
        let k = hub.key(Proto::Kite, "scrape:all");
        assert_eq!(hub.publish(&k, |_| "x".into()), 0, "no members, no publish");
        hub.join(&k);
        hub.join(&k);
        assert_eq!(hub.publish(&k, |s| s.to_string()), 2);
        assert_eq!(hub.generate(Proto::Kite, 2, |_, s| Some(s.to_string())), 2);
        assert_eq!(hub.generate(Proto::Kecs, 2, |_, s| Some(s.to_string())), 0);
        let seqs: Vec<_> = hub
            .take_published()
            .into_iter()
            .map(|(_, t)| t.to_string())
            .collect();
        assert_eq!(seqs, ["1", "2", "3"]);
        hub.leave(&k);
        assert_eq!(hub.leave(&k), 0);
        hub.join(&k);
        hub.publish(&k, |s| s.to_string());
        assert_eq!(hub.take_published()[0].1.as_str(), "1");
    }

    #[test]
    fn a_join_is_stamped_after_every_batch_published_before_it() {
        let hub = Hub::new();
        let k = hub.key(Proto::NewloomChat, "2");
        assert_eq!(hub.join(&k), (1, 0));
        hub.publish(&k, |s| s.to_string());
        hub.generate(Proto::NewloomChat, 2, |_, s| Some(s.to_string()));
        assert_eq!(hub.join(&k), (2, 2), "one stamp per batch, not per frame");
        hub.publish(&k, |s| s.to_string());
        assert_eq!(hub.join(&hub.key(Proto::NewloomChat, "3")), (1, 3));
    }

    #[test]
    fn client_slots_limit_and_release() {
        let hub = Arc::new(Hub::new());
        let a = hub.client_enter(Proto::Kite, "c".into(), 2).unwrap();
        let _b = hub.client_enter(Proto::Kite, "c".into(), 2).unwrap();
        assert!(hub.client_enter(Proto::Kite, "c".into(), 2).is_none());
        assert!(hub.client_enter(Proto::Kecs, "c".into(), 2).is_some());
        drop(a);
        assert!(hub.client_enter(Proto::Kite, "c".into(), 2).is_some());
    }
}
