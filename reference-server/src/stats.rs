//! Server counters: per-thread atomics fed from per-connection tallies, summed on read.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A point-in-time copy of the server's counters. Frames and bytes count WebSocket
/// data messages (text and binary payloads), not control frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Data messages received from clients.
    pub frames_in: u64,
    /// Data messages sent to clients (replies, welcomes and events).
    pub frames_out: u64,
    /// Payload bytes received in data messages.
    pub bytes_in: u64,
    /// Payload bytes sent in data messages.
    pub bytes_out: u64,
    /// WebSocket connections upgraded since start.
    pub connections_opened: u64,
    /// WebSocket connections open now.
    pub connections_active: u64,
    /// Connections closed with 1008 because their outbound queue was full.
    pub slow_consumers_closed: u64,
    /// Events published into rooms (one per event per room, not per subscriber).
    pub events_published: u64,
}

/// One runtime thread's counters, padded to its own cache lines so two threads
/// never contend on the same line.
#[repr(align(128))]
#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
    slow: AtomicU64,
    events: AtomicU64,
}

/// Counters for the whole server, one slot per runtime thread.
pub(crate) struct Stats {
    slots: Vec<Counters>,
}

/// A connection's unflushed tallies; flushed once per write batch, not per frame.
#[derive(Default)]
pub(crate) struct Tally {
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Stats {
    pub fn new(threads: usize) -> Self {
        Stats {
            slots: (0..threads.max(1)).map(|_| Counters::default()).collect(),
        }
    }

    /// Adds a connection's tally to its thread's slot and resets the tally.
    pub fn flush(&self, thread: usize, tally: &mut Tally) {
        let c = &self.slots[thread];
        if tally.frames_in > 0 {
            c.frames_in.fetch_add(tally.frames_in, Relaxed);
            c.bytes_in.fetch_add(tally.bytes_in, Relaxed);
        }
        if tally.frames_out > 0 {
            c.frames_out.fetch_add(tally.frames_out, Relaxed);
            c.bytes_out.fetch_add(tally.bytes_out, Relaxed);
        }
        *tally = Tally::default();
    }

    pub fn opened(&self, thread: usize) {
        self.slots[thread].opened.fetch_add(1, Relaxed);
    }

    pub fn closed(&self, thread: usize) {
        self.slots[thread].closed.fetch_add(1, Relaxed);
    }

    pub fn slow_consumer(&self, thread: usize) {
        self.slots[thread].slow.fetch_add(1, Relaxed);
    }

    pub fn events(&self, thread: usize, n: u64) {
        self.slots[thread].events.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut s = StatsSnapshot::default();
        let mut closed = 0;
        for c in &self.slots {
            s.frames_in += c.frames_in.load(Relaxed);
            s.frames_out += c.frames_out.load(Relaxed);
            s.bytes_in += c.bytes_in.load(Relaxed);
            s.bytes_out += c.bytes_out.load(Relaxed);
            s.connections_opened += c.opened.load(Relaxed);
            closed += c.closed.load(Relaxed);
            s.slow_consumers_closed += c.slow.load(Relaxed);
            s.events_published += c.events.load(Relaxed);
        }
        // A connection may open on one thread's slot count before another slot's
        // close is read; saturate rather than wrap in that instant.
        s.connections_active = s.connections_opened.saturating_sub(closed);
        s
    }
}

/// Renders a snapshot in the Prometheus text exposition format (version 0.0.4).
pub(crate) fn prometheus(s: &StatsSnapshot) -> String {
    let rows: [(&str, &str, &str, u64); 8] = [
        (
            "connections_active",
            "gauge",
            "Open WebSocket connections.",
            s.connections_active,
        ),
        (
            "connections_total",
            "counter",
            "WebSocket connections upgraded.",
            s.connections_opened,
        ),
        (
            "frames_in_total",
            "counter",
            "Data frames received.",
            s.frames_in,
        ),
        (
            "frames_out_total",
            "counter",
            "Data frames sent.",
            s.frames_out,
        ),
        (
            "bytes_in_total",
            "counter",
            "Payload bytes received.",
            s.bytes_in,
        ),
        (
            "bytes_out_total",
            "counter",
            "Payload bytes sent.",
            s.bytes_out,
        ),
        (
            "slow_consumers_total",
            "counter",
            "Connections closed as slow consumers.",
            s.slow_consumers_closed,
        ),
        (
            "events_published_total",
            "counter",
            "Events published into rooms.",
            s.events_published,
        ),
    ];
    let mut out = String::with_capacity(1024);
    for (name, kind, help, value) in rows {
        let _ = writeln!(out, "# HELP squall_server_{name} {help}");
        let _ = writeln!(out, "# TYPE squall_server_{name} {kind}");
        let _ = writeln!(out, "squall_server_{name} {value}");
    }
    out
}
