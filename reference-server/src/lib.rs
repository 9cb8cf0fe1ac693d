//! squall's reference WebSocket server: the Kite protocol over tokio-tungstenite, built for speed.
//!
//! [`spawn`] binds one SO_REUSEPORT listener per runtime thread (one current-thread runtime
//! each), and returns a [`ServerHandle`] for its address, counters and shutdown.

#![deny(missing_docs)]

mod clock;
mod conn;
mod http;
pub mod kite;
mod rooms;
mod stats;
mod worker;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

pub use clock::now_rfc3339;
pub use stats::StatsSnapshot;

use kite::events::{Audience, Generator};
use stats::Stats;
use worker::{Mode, Shared, Start};

/// The protocol a server speaks; one variant per seed protocol as they are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// The Kite API (`seeds/kite.md`), served on `/ws` and `/kite/ws`.
    #[default]
    Kite,
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "kite" => Ok(Profile::Kite),
            other => Err(format!("unknown profile '{other}' (available: kite)")),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Kite => "kite",
        })
    }
}

/// How to run a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (see [`ServerHandle::addr`]).
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Protocol to serve. Default [`Profile::Kite`].
    pub profile: Profile,
    /// Events generated per second for each event family, published only into rooms
    /// that have subscribers. Default 10; 0 disables the generator.
    pub events_per_sec: f64,
    /// Open WebSocket connections allowed; further upgrades get 429. Default 20,000.
    pub max_connections: usize,
    /// Largest inbound message (and frame) in bytes. Default 512 KiB (Kite's limit).
    pub max_message_size: usize,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            profile: Profile::Kite,
            events_per_sec: 10.0,
            max_connections: 20_000,
            max_message_size: kite::MAX_MESSAGE_SIZE,
            queue_depth: 1024,
            handshake_timeout: Duration::from_secs(10),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            reply_delay: Duration::ZERO,
        }
    }
}

/// A running server. Dropping it without [`shutdown`](Self::shutdown) kills it.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    mode: watch::Sender<Mode>,
    threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address, with the real port when the configured port was 0.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Current counters. Frames a client has received are already counted.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
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

/// Binds `config.listen` and starts the server; returns once every listener is listening.
pub fn spawn(config: Config) -> io::Result<ServerHandle> {
    let threads = config.threads.max(1);
    let first = worker::bind(config.listen)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(worker::bind(addr)?);
    }
    let stats = Arc::new(Stats::new(threads));
    let audience = Arc::new(Audience::default());
    let shared = Arc::new(Shared {
        config: config.clone(),
        stats: stats.clone(),
        audience: audience.clone(),
        admitted: AtomicUsize::new(0),
    });
    let (mode_tx, mode_rx) = watch::channel(Mode::Running);
    let (senders, mut receivers): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    let mut generator = Some(Generator {
        rate: config.events_per_sec,
        audience,
        stats,
        outs: senders,
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
            .spawn(move || worker::run(start))?;
        handles.push(handle);
    }
    Ok(ServerHandle {
        addr,
        shared,
        mode: mode_tx,
        threads: handles,
    })
}
