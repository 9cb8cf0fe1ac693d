//! One runtime thread's state: its connections, rooms and run mode, and the guards that
//! count connections in and out (the thread's loops are in `accept`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::AcqRel};
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::hub::Hub;
use crate::proto::Proto;
use crate::rooms::{Outbox, Rooms};
use crate::stats::{Stats, StatsSnapshot};
use crate::Config;
use rustc_hash::FxHashMap;

/// The server's run state, broadcast to every runtime and connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Running,
    /// Stop accepting, close every connection with 1001, drain.
    Graceful,
    /// Drop every socket now.
    Kill,
}

/// State shared by all runtime threads.
pub(crate) struct Shared {
    pub config: Config,
    pub stats: Arc<Stats>,
    pub hub: Arc<Hub>,
    /// WebSocket connections admitted (reserved before the 101) across all threads.
    pub admitted: AtomicUsize,
    /// The `--capacity` service budget, when one is set.
    pub budget: Option<Arc<crate::capacity::Budget>>,
}

impl Shared {
    /// The server's counters, with the hub's event count.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut s = self.stats.snapshot();
        s.events_published = self.hub.published();
        s
    }
}

/// State owned by one runtime thread.
pub(crate) struct Worker {
    pub index: usize,
    pub shared: Arc<Shared>,
    pub rooms: RefCell<Rooms>,
    pub mode: watch::Receiver<Mode>,
    /// Per protocol: its message size limit and buffers.
    pub ws_configs: [WebSocketConfig; Proto::COUNT],
    next_id: Cell<u64>,
    live: Cell<usize>,
    idle: Notify,
    /// Open connections' outboxes, through which shutdown reaches them.
    outboxes: RefCell<FxHashMap<u64, Rc<Outbox>>>,
    stopping: Cell<bool>,
}

impl Worker {
    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Registers a connection's outbox for shutdown; the guard unregisters it. A connection
    /// registering after shutdown began is stopped at once.
    pub fn register(&self, id: u64, outbox: &Rc<Outbox>) -> Registered<'_> {
        if self.stopping.get() {
            outbox.stop();
        }
        self.outboxes.borrow_mut().insert(id, outbox.clone());
        Registered(self, id)
    }

    /// A fresh worker for runtime thread `index`, with no connection yet.
    pub fn new(
        index: usize,
        shared: Arc<Shared>,
        mode: watch::Receiver<Mode>,
        ws_configs: [WebSocketConfig; Proto::COUNT],
    ) -> Worker {
        Worker {
            index,
            shared,
            rooms: RefCell::new(Rooms::default()),
            mode,
            ws_configs,
            next_id: Cell::new(0),
            live: Cell::new(0),
            idle: Notify::new(),
            outboxes: RefCell::new(FxHashMap::default()),
            stopping: Cell::new(false),
        }
    }

    /// Asks every open connection to close for shutdown.
    pub fn stop_all(&self) {
        self.stopping.set(true);
        for outbox in self.outboxes.borrow().values() {
            outbox.stop();
        }
    }

    /// Counts a WebSocket session in; the returned guard counts it out when dropped.
    pub fn enter(self: &Rc<Self>, proto: Proto) -> Live {
        self.live.set(self.live.get() + 1);
        self.shared.stats.opened(self.index, proto);
        Live(self.clone(), proto)
    }

    /// Returns once every session counted in has been counted out.
    pub async fn drained(&self) {
        while self.live.get() > 0 {
            self.idle.notified().await;
        }
    }
}

/// A connection's registration for shutdown, removed when dropped.
pub(crate) struct Registered<'a>(&'a Worker, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.outboxes.borrow_mut().remove(&self.1);
    }
}

/// A reserved connection slot (counted against `max_connections`), released on drop,
/// so a handshake cancelled by its timeout cannot leak the slot.
pub(crate) struct Admission(Arc<Shared>);

impl Admission {
    /// Reserves a slot, or `None` when the server is full.
    pub fn try_new(shared: &Arc<Shared>) -> Option<Self> {
        // Reserve first so concurrent upgrades on other threads cannot overshoot.
        if shared.admitted.fetch_add(1, AcqRel) >= shared.config.max_connections {
            shared.admitted.fetch_sub(1, AcqRel);
            return None;
        }
        Some(Admission(shared.clone()))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, AcqRel);
    }
}

/// An open WebSocket session on a worker, counted out when dropped.
pub(crate) struct Live(Rc<Worker>, Proto);

impl Drop for Live {
    fn drop(&mut self) {
        let w = &self.0;
        w.shared.stats.closed(w.index, self.1);
        w.live.set(w.live.get() - 1);
        if w.live.get() == 0 {
            w.idle.notify_one();
        }
    }
}
