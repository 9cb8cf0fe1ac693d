//! Server counters: per-thread atomics fed from per-connection tallies, summed on read.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::hub::Hub;
use crate::proto::Proto;

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

/// One protocol's counters on one runtime thread.
#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
    slow: AtomicU64,
}

/// One runtime thread's counters, padded to its own cache lines so two threads
/// never contend on the same line.
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    protos: [Counters; Proto::COUNT],
    events: AtomicU64,
}

/// Counters for the whole server, one slot per runtime thread; with `--procs`, every
/// process's slots in one shared mapping, read as one sum.
pub(crate) struct Stats {
    slots: Slots,
    /// This process's first slot.
    first: usize,
}

/// Where the slots live.
enum Slots {
    Owned(Vec<Slot>),
    Shared(crate::procs::Region),
}

/// A connection's unflushed tallies; flushed once per write batch, not per frame.
pub(crate) struct Tally {
    pub proto: Proto,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Tally {
    pub fn new(proto: Proto) -> Self {
        Tally {
            proto,
            frames_in: 0,
            frames_out: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }
}

impl Stats {
    pub fn new(threads: usize) -> Self {
        Stats {
            slots: Slots::Owned((0..threads.max(1)).map(|_| Slot::default()).collect()),
            first: 0,
        }
    }

    /// Process `slot.index`'s counters among `slot.count` processes of `threads` threads
    /// each, in the shared file (made and sized by process 0).
    pub fn shared(threads: usize, slot: &crate::procs::ProcSlot) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let len = threads * slot.count * size_of::<Slot>();
        let region = crate::procs::Region::map(&slot.file, len, slot.index == 0)?;
        Ok(Stats {
            slots: Slots::Shared(region),
            first: slot.index * threads,
        })
    }

    /// Every slot: this process's and, with `--procs`, the others'.
    fn all(&self) -> &[Slot] {
        match &self.slots {
            Slots::Owned(v) => v,
            // SAFETY: a `Slot` is atomics only, valid as all-zero bytes (how the file
            // starts) and written only through them; its 128-byte alignment divides a page.
            Slots::Shared(r) => unsafe { r.as_slice::<Slot>() },
        }
    }

    /// Runtime thread `thread`'s slot in this process.
    fn mine(&self, thread: usize) -> &Slot {
        &self.all()[self.first + thread]
    }

    /// Adds a connection's tally to its thread's slot and resets the tally.
    pub fn flush(&self, thread: usize, tally: &mut Tally) {
        let c = &self.mine(thread).protos[tally.proto.index()];
        if tally.frames_in > 0 {
            c.frames_in.fetch_add(tally.frames_in, Relaxed);
            c.bytes_in.fetch_add(tally.bytes_in, Relaxed);
        }
        if tally.frames_out > 0 {
            c.frames_out.fetch_add(tally.frames_out, Relaxed);
            c.bytes_out.fetch_add(tally.bytes_out, Relaxed);
        }
        *tally = Tally::new(tally.proto);
    }

    pub fn opened(&self, thread: usize, proto: Proto) {
        self.mine(thread).protos[proto.index()]
            .opened
            .fetch_add(1, Relaxed);
    }

    pub fn closed(&self, thread: usize, proto: Proto) {
        self.mine(thread).protos[proto.index()]
            .closed
            .fetch_add(1, Relaxed);
    }

    pub fn slow_consumer(&self, thread: usize, proto: Proto) {
        self.mine(thread).protos[proto.index()]
            .slow
            .fetch_add(1, Relaxed);
    }

    pub fn events(&self, thread: usize, n: u64) {
        self.mine(thread).events.fetch_add(n, Relaxed);
    }

    /// Totals over every protocol.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut s = StatsSnapshot::default();
        for proto in Proto::ALL {
            s.add(&self.protocol(proto));
        }
        s.events_published = self.all().iter().map(|c| c.events.load(Relaxed)).sum();
        s
    }

    /// One protocol's counters (`events_published` stays 0: events count server-wide).
    pub fn protocol(&self, proto: Proto) -> StatsSnapshot {
        let mut s = StatsSnapshot::default();
        let mut closed = 0;
        for slot in self.all() {
            let c = &slot.protos[proto.index()];
            s.frames_in += c.frames_in.load(Relaxed);
            s.frames_out += c.frames_out.load(Relaxed);
            s.bytes_in += c.bytes_in.load(Relaxed);
            s.bytes_out += c.bytes_out.load(Relaxed);
            s.connections_opened += c.opened.load(Relaxed);
            closed += c.closed.load(Relaxed);
            s.slow_consumers_closed += c.slow.load(Relaxed);
        }
        // A connection may open on one thread's slot count before another slot's
        // close is read; saturate rather than wrap in that instant.
        s.connections_active = s.connections_opened.saturating_sub(closed);
        s
    }
}

impl StatsSnapshot {
    fn add(&mut self, o: &StatsSnapshot) {
        self.frames_in += o.frames_in;
        self.frames_out += o.frames_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.connections_opened += o.connections_opened;
        self.connections_active += o.connections_active;
        self.slow_consumers_closed += o.slow_consumers_closed;
        self.events_published += o.events_published;
    }
}

/// Renders the counters in the Prometheus text exposition format (version 0.0.4):
/// per-protocol series labelled `protocol`, named counters from the hub labelled
/// `reason` (rejects) or `kind`, and server-wide gauges.
pub(crate) fn prometheus(stats: &Stats, hub: &Hub) -> String {
    let mut out = String::with_capacity(4096);
    per_protocol(&mut out, stats);
    server_wide(&mut out, hub);
    hub_counters(&mut out, hub);
    out
}

/// The series kept per protocol, labelled `protocol`.
fn per_protocol(out: &mut String, stats: &Stats) {
    type Field = fn(&StatsSnapshot) -> u64;
    let rows: [(&str, &str, &str, Field); 7] = [
        (
            "connections_active",
            "gauge",
            "Open WebSocket connections.",
            |s| s.connections_active,
        ),
        (
            "connections_total",
            "counter",
            "WebSocket connections upgraded.",
            |s| s.connections_opened,
        ),
        ("frames_in_total", "counter", "Data frames received.", |s| {
            s.frames_in
        }),
        ("frames_out_total", "counter", "Data frames sent.", |s| {
            s.frames_out
        }),
        (
            "bytes_in_total",
            "counter",
            "Payload bytes received.",
            |s| s.bytes_in,
        ),
        ("bytes_out_total", "counter", "Payload bytes sent.", |s| {
            s.bytes_out
        }),
        (
            "slow_consumers_total",
            "counter",
            "Connections closed as slow consumers.",
            |s| s.slow_consumers_closed,
        ),
    ];
    let per: Vec<(Proto, StatsSnapshot)> = Proto::ALL
        .into_iter()
        .map(|p| (p, stats.protocol(p)))
        .collect();
    for (name, kind, help, field) in rows {
        let _ = writeln!(out, "# HELP squall_server_{name} {help}");
        let _ = writeln!(out, "# TYPE squall_server_{name} {kind}");
        for (proto, s) in &per {
            let _ = writeln!(
                out,
                "squall_server_{name}{{protocol=\"{}\"}} {}",
                proto.name(),
                field(s)
            );
        }
    }
}

/// The hub's server-wide series: events published, subscriptions held.
fn server_wide(out: &mut String, hub: &Hub) {
    let gauges = [
        (
            "events_published_total",
            "counter",
            "Frames published into rooms (once per room, not per subscriber).",
            hub.published(),
        ),
        (
            "subscriptions",
            "gauge",
            "Room memberships held by open connections.",
            hub.subscriptions() as u64,
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(out, "# HELP squall_server_{name} {help}");
        let _ = writeln!(out, "# TYPE squall_server_{name} {kind}");
        let _ = writeln!(out, "squall_server_{name} {value}");
    }
}

/// The hub's named counters, labelled `reason` (rejects) or `kind`, and `protocol` when
/// they belong to one.
fn hub_counters(out: &mut String, hub: &Hub) {
    let mut counters = hub.counters();
    // One TYPE line per metric: group the series by metric name.
    counters.sort_by_key(|((proto, metric, label), _)| (*metric, *proto, *label));
    let mut last = "";
    for ((proto, metric, label), value) in counters {
        if metric != last {
            let _ = writeln!(out, "# TYPE squall_server_{metric}_total counter");
            last = metric;
        }
        let key = if metric.ends_with("rejects") {
            "reason"
        } else {
            "kind"
        };
        let mut labels = Vec::new();
        if let Some(proto) = proto {
            labels.push(format!("protocol=\"{}\"", proto.name()));
        }
        if !label.is_empty() {
            labels.push(format!("{key}=\"{label}\""));
        }
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(out, "squall_server_{metric}_total{labels} {value}");
    }
}
