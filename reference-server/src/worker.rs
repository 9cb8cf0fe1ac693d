//! One runtime thread: its SO_REUSEPORT listener, accept loop, event fan-out and shutdown drain.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::AcqRel};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{watch, Notify};
use tokio::task::LocalSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::events::Generator;
use crate::hub::{Batch, Hub};
use crate::rooms::{Outbox, Rooms};
use crate::session::Proto;
use crate::stats::{Stats, StatsSnapshot};
use crate::{conn, Config, Fault};
use rustc_hash::FxHashMap;

/// How long a graceful shutdown waits for connections to finish their closing handshakes.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_millis(4500);

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

    /// Asks every open connection to close for shutdown.
    fn stop_all(&self) {
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

/// Binds a listener that shares its address with the other runtimes' listeners.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Everything one runtime thread starts with.
pub(crate) struct Start {
    pub index: usize,
    pub shared: Arc<Shared>,
    pub listener: std::net::TcpListener,
    pub runtime: Runtime,
    pub mode: watch::Receiver<Mode>,
    pub events: UnboundedReceiver<Batch>,
    pub generator: Option<Generator>,
}

/// Runs one runtime until shutdown; returns after the drain (graceful) or at once (kill).
pub(crate) fn run(start: Start) {
    let Start {
        index,
        shared,
        listener,
        runtime,
        mode,
        events,
        generator,
    } = start;
    let config = &shared.config;
    let ws_configs = Proto::ALL.map(|proto| {
        let limit = config.message_limit(proto);
        // Small read buffers keep idle connections cheap; the write buffer may hold a
        // batch plus one echoed maximum-size message before writes apply backpressure.
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(64 * 1024)
            .max_write_buffer_size(128 * 1024 + 2 * limit)
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit))
    });
    let worker = Rc::new(Worker {
        index,
        shared: shared.clone(),
        rooms: RefCell::new(Rooms::default()),
        mode,
        ws_configs,
        next_id: Cell::new(0),
        live: Cell::new(0),
        idle: Notify::new(),
        outboxes: RefCell::new(FxHashMap::default()),
        stopping: Cell::new(false),
    });
    let local = LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return eprintln!("squall-server: runtime {index}: {e}"),
        };
        tokio::task::spawn_local(dispatch(worker.clone(), events));
        if let Some(generator) = generator {
            tokio::task::spawn_local(generator.run());
        }
        let mode = accept(&worker, listener).await;
        worker.stop_all();
        if mode == Mode::Graceful {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained(&worker)).await;
        }
    });
    // Dropping the LocalSet inside the runtime drops every remaining task and socket.
    let _guard = runtime.enter();
    drop(local);
}

/// Accepts until the mode leaves `Running`; returns the new mode.
async fn accept(worker: &Rc<Worker>, listener: TcpListener) -> Mode {
    let mut mode = worker.mode.clone();
    loop {
        tokio::select! {
            biased;
            changed = mode.changed() => {
                if changed.is_err() {
                    return Mode::Kill;
                }
                let now = *mode.borrow_and_update();
                if now != Mode::Running {
                    return now;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::task::spawn_local(conn::serve(worker.clone(), stream));
                }
                // Out of file descriptors or similar: back off instead of spinning, so
                // the connections already open keep being served.
                Err(e) => {
                    worker.shared.hub.count(None, "accept_errors", "", 1);
                    tracing::warn!(error = %e, "accept failed; backing off 20 ms");
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
            },
        }
    }
}

async fn drained(worker: &Worker) {
    while worker.live.get() > 0 {
        worker.idle.notified().await;
    }
}

/// Fans each generated batch out to this runtime's subscribers.
async fn dispatch(worker: Rc<Worker>, mut events: UnboundedReceiver<Batch>) {
    let fault = worker.shared.config.fault;
    let mut nth = 0u64;
    while let Some(batch) = events.recv().await {
        let mut rooms = worker.rooms.borrow_mut();
        for (room, text) in batch.frames.iter() {
            nth += 1;
            let copies = match fault {
                Some(Fault::DropEvents(n)) if nth.is_multiple_of(n) => 0,
                Some(Fault::DuplicateEvents(n)) if nth.is_multiple_of(n) => 2,
                _ => 1,
            };
            for _ in 0..copies {
                // Slow consumers dropped from the room no longer count as its audience.
                for _ in 0..rooms.publish(room, batch.stamp, text) {
                    worker.shared.hub.leave(room);
                }
            }
        }
    }
}
