//! squall's reference WebSocket server: the five seed protocols (and an RFC 6455 echo
//! route) over tokio-tungstenite, built for speed.
//!
//! [`spawn`] binds one SO_REUSEPORT listener per runtime thread (one current-thread runtime
//! each), and returns a [`ServerHandle`] for its address, counters and shutdown. Each
//! protocol is a [`session::Session`] state machine; `conn` drives it over a socket.

#![deny(missing_docs)]

mod accept;
mod capacity;
mod clock;
mod conn;
mod covetpy;
mod echo;
mod events;
pub mod hexabase;
mod http;
mod hub;
mod kecs;
pub mod kite;
mod newloom;
pub mod procs;
mod proto;
mod protocols;
mod rooms;
pub mod session;
mod stats;
mod worker;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

pub use clock::{monotonic_ns, now_rfc3339};
pub use proto::{Profile, Proto};
pub use stats::StatsSnapshot;

use accept::Start;
use events::Generator;
use hub::Hub;
use stats::Stats;
use worker::{Mode, Shared};

/// How to run a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (see [`ServerHandle::addr`]).
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Protocol answering at `/ws`; every protocol also answers at its own path
    /// ([`Proto::path`]). Default [`Profile::Kite`].
    pub profile: Profile,
    /// Events generated per second into each room that has subscribers (for every
    /// protocol with generated events). Default 10; 0 disables the generator.
    pub events_per_sec: f64,
    /// Open WebSocket connections allowed; further upgrades get 429. Default 20,000.
    pub max_connections: usize,
    /// Largest inbound message (and frame) in bytes for every protocol; `None` (default)
    /// takes each protocol's documented limit ([`Proto::max_message_size`]).
    pub max_message_size: Option<usize>,
    /// The token clients must present where a protocol authenticates (compared in
    /// constant time). `None` (default): any non-empty token is accepted where a
    /// protocol requires one, and Kite runs without auth.
    pub auth_token: Option<String>,
    /// Server heartbeat/ping period for protocols that send one; `None` (default) takes
    /// each document's period.
    pub heartbeat: Option<Duration>,
    /// Documented limits the server enforces; switch one off to show a scenario tests it.
    pub limits: Limits,
    /// A deliberate fault in event delivery, to show a scenario detects it. Default none.
    pub fault: Option<Fault>,
    /// Event frames queued per connection before it is closed (1008) as a slow
    /// consumer. Default 1024.
    pub queue_depth: usize,
    /// Time allowed to receive the request head and answer it. Default 10 s.
    pub handshake_timeout: Duration,
    /// Runtime threads, each with its own listener. Default: available cores.
    pub threads: usize,
    /// Wait before each write of replies (a deliberately slow server, for regression
    /// tests). Default zero.
    pub reply_delay: Duration,
    /// Add the server's `CLOCK_MONOTONIC` instants to every reply that is a JSON object:
    /// `"_stamp": {"rx_ns": when the message it answers was read, "tx_ns": when the reply
    /// was queued for writing}`, so a client on the same host can check that each latency
    /// it recorded contains the server's hold. A debugging aid: schemas that forbid extra
    /// members will flag the field. Default off.
    pub stamp: bool,
    /// Behave as a server written strictly to each document: every reference-server
    /// extension off (no `seq`/`room` fields, no ids echoed where the document has none, no
    /// frames, query parameters, methods, metric names or error codes the document does not
    /// define, no `POST /publish`). The inventory is `docs/strict-doc.md`. Default off.
    pub strict_doc: bool,
    /// A fixed service budget, in answered messages per second, shared by every
    /// connection (`--capacity N/s`): each answered message takes `1/N` s of one service
    /// clock, first come first served, so above `N` the replies queue and their latency
    /// climbs without bound. A known capacity for `squall capacity` to find. Default none.
    pub capacity: Option<f64>,
    /// With [`capacity`](Self::capacity): how much unused budget is kept for a burst
    /// (`--capacity-slack`). Default 20 ms; zero makes every message wait its own `1/N` s
    /// (a single-server queue: under random arrivals its latency rises well before `N`).
    pub capacity_slack: Duration,
    /// This process's place among `squall-server --procs N` processes: their connection,
    /// frame and byte counters are kept in one shared file, so each reports the sum of
    /// all. Default none (one process).
    pub procs: Option<procs::ProcSlot>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            profile: Profile::Kite,
            events_per_sec: 10.0,
            max_connections: 20_000,
            max_message_size: None,
            auth_token: None,
            heartbeat: None,
            limits: Limits::default(),
            fault: None,
            queue_depth: 1024,
            handshake_timeout: Duration::from_secs(10),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            reply_delay: Duration::ZERO,
            stamp: false,
            strict_doc: false,
            capacity: None,
            capacity_slack: capacity::SLACK,
            procs: None,
        }
    }
}

impl Config {
    /// The inbound message limit for `proto`.
    pub fn message_limit(&self, proto: Proto) -> usize {
        self.max_message_size
            .unwrap_or_else(|| proto.max_message_size())
    }

    /// Whether `token` is acceptable: equal to [`auth_token`](Self::auth_token) in
    /// constant time, or any non-empty token when none is configured.
    pub fn token_ok(&self, token: &str) -> bool {
        match &self.auth_token {
            None => !token.is_empty(),
            Some(want) => constant_time_eq(want.as_bytes(), token.as_bytes()),
        }
    }
}

/// Compares without an early exit, so the time taken does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// A deliberate delivery fault (`--fault`), applied per runtime to the room frames it
/// delivers, counted across all rooms: every Nth is dropped or delivered twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every Nth room frame is not delivered (`drop-events:N`).
    DropEvents(u64),
    /// Every Nth room frame is delivered twice (`duplicate-events:N`).
    DuplicateEvents(u64),
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, n) = s.split_once(':').unwrap_or((s, "10"));
        let n: u64 = n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid fault '{s}': N must be a whole number > 0"))?;
        match kind {
            "drop-events" => Ok(Fault::DropEvents(n)),
            "duplicate-events" => Ok(Fault::DuplicateEvents(n)),
            _ => Err(format!(
                "unknown fault '{kind}' (available: drop-events:N, duplicate-events:N)"
            )),
        }
    }
}

/// The documented limits, each on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Message and request rates (Kite 100 msgs/s, KECS escalation, CovetPy rate_limit).
    pub rate: bool,
    /// Subscriptions per connection (Kite and KECS 50, Hexabase 100).
    pub subscriptions: bool,
    /// Connections per client (Kite 10).
    pub per_client: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate: true,
            subscriptions: true,
            per_client: true,
        }
    }
}

/// A running server. Dropping it without [`shutdown`](Self::shutdown) kills it.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    mode: watch::Sender<Mode>,
    threads: Vec<JoinHandle<()>>,
    /// The `--capacity` service thread, stopped after the runtime threads.
    budget: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address, with the real port when the configured port was 0.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Current counters. Frames a client has received are already counted.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.snapshot()
    }

    /// Stops accepting, sends close 1001 to every client and waits for the runtime
    /// threads (at most about 5 s; connections still open then are dropped).
    pub fn shutdown(mut self) {
        self.stop(Mode::Graceful);
    }

    /// Drops every socket at once, without close frames, and joins the threads.
    pub fn kill(mut self) {
        self.stop(Mode::Kill);
    }

    fn stop(&mut self, mode: Mode) {
        let _ = self.mode.send(mode);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        if let (Some(thread), Some(budget)) = (self.budget.take(), &self.shared.budget) {
            budget.stop();
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop(Mode::Kill);
        }
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

/// `--capacity`: the service budget and the thread that refills it; none without it.
fn budget(config: &Config) -> io::Result<Option<(Arc<capacity::Budget>, JoinHandle<()>)>> {
    match config.capacity {
        Some(per_sec) if per_sec > 0.0 && per_sec.is_finite() => {
            capacity::Budget::start(per_sec, config.capacity_slack).map(Some)
        }
        Some(per_sec) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("capacity must be a positive rate, not {per_sec}"),
        )),
        None => Ok(None),
    }
}

/// Binds `config.listen` and starts the server; returns once every listener is listening.
pub fn spawn(config: Config) -> io::Result<ServerHandle> {
    let threads = config.threads.max(1);
    let first = accept::bind(config.listen)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(accept::bind(addr)?);
    }
    let stats = Arc::new(match &config.procs {
        Some(slot) => Stats::shared(threads, slot)?,
        None => Stats::new(threads),
    });
    let hub = Arc::new(Hub::new());
    let (budget, budget_thread) = budget(&config)?.unzip();
    let shared = Arc::new(Shared {
        config: config.clone(),
        stats: stats.clone(),
        hub: hub.clone(),
        admitted: AtomicUsize::new(0),
        budget,
    });
    let (mode_tx, mode_rx) = watch::channel(Mode::Running);
    let (senders, mut receivers): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    hub.connect(senders);
    let mut generator = Some(Generator {
        rate: config.events_per_sec,
        strict_doc: config.strict_doc,
        hub,
        stats,
    });
    let mut handles = Vec::with_capacity(threads);
    for (index, listener) in listeners.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let start = Start {
            index,
            shared: shared.clone(),
            listener,
            runtime,
            mode: mode_rx.clone(),
            events: receivers.remove(0),
            generator: generator.take(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("squall-server-{index}"))
            .spawn(move || accept::run(start))?;
        handles.push(handle);
    }
    Ok(ServerHandle {
        addr,
        shared,
        mode: mode_tx,
        threads: handles,
        budget: budget_thread,
    })
}
