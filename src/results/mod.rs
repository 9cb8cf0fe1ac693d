//! The versioned results document, its histogram summaries and its atomic writer.
//!
//! `schemas/results.schema.json` describes the JSON form; change both together and bump
//! [`RESULTS_VERSION`] when a reader of an older file would misread the new one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod capacity;
mod flows;
mod summary;
pub mod units;
mod writer;

pub use flows::{DeliveryResult, UploadResult, ViolationGroup, ViolationSample, Violations};
pub use summary::{
    merge_summaries, new_histogram, MetricResult, Summary, Timing, HISTOGRAM_MAX_US,
};
pub use writer::{ReportError, ResultsWriter};

/// Version of the results document layout.
pub const RESULTS_VERSION: u32 = 1;

/// A whole run: what ran, what load was reached, what was measured, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// [`RESULTS_VERSION`] of the writer.
    pub version: u32,
    /// Where the run stands; `running` in a file means the writer never finished.
    pub status: Status,
    /// Why the run was interrupted or aborted, when it was.
    pub status_reason: Option<String>,
    /// What ran, where and when.
    pub meta: RunMeta,
    /// The load actually reached.
    pub load: LoadReached,
    /// Per latency metric, by name.
    pub metrics: BTreeMap<String, MetricResult>,
    /// Connection setup time (TCP + TLS + upgrade).
    pub connect: Summary,
    /// Run totals.
    pub counters: Counters,
    /// One point per tick (default every second).
    pub series: Vec<SeriesPoint>,
    /// Protocol checking: what was checked and what broke.
    pub violations: Violations,
    /// Threshold outcomes, in scenario order (filled by `check::verdict`).
    pub thresholds: Vec<ThresholdOutcome>,
    /// Whether the generator itself was the bottleneck.
    pub health: Health,
    /// Fan-out delivery, when the scenario tracks it (`delivery:`); `null` otherwise.
    #[serde(default)]
    pub delivery: Option<DeliveryResult>,
    /// Upload steps by metric name (only metrics with at least one upload).
    #[serde(default)]
    pub uploads: BTreeMap<String, UploadResult>,
    /// A capacity search (`squall capacity`): its answer and steps; absent for a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<capacity::Capacity>,
    /// The HdrHistogram interval log beside this file (every metric's latency and service
    /// histograms per second), by file name; `None` when none was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_log: Option<String>,
    /// Which shard of a sharded run this is (`squall run --shard I/N`); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// The shards a merged result was made of (`squall merge`), in shard order; empty
    /// for a single run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRecord>,
}

/// Metadata of a closed-model run of `secs` seconds at `vus` VUs on `threads` threads, for
/// the crate's tests.
#[cfg(test)]
pub(crate) fn test_meta(vus: f64, secs: f64, threads: usize) -> RunMeta {
    RunMeta {
        tool_version: "0.1.0".into(),
        scenario_name: "s".into(),
        scenario_file: "s.yaml".into(),
        scenario_sha256: String::new(),
        protocol: None,
        conformance: None,
        target: "ws://127.0.0.1:9/ws".into(),
        seed: 1,
        threads,
        started_at: "2026-12-07T00:00:00Z".into(),
        ended_at: None,
        duration_s: secs,
        planned_duration_s: secs,
        load_model: "closed".into(),
        host: "test".into(),
        phases: vec![Phase {
            start_s: 0.0,
            end_s: secs,
            from: 0.0,
            to: vus,
        }],
    }
}

impl Results {
    /// Why no frame was checked (when `violations.checked` is 0): no profile, none came
    /// or went, or checking was off.
    pub fn unchecked_why(&self) -> &'static str {
        let c = &self.counters;
        if self.meta.protocol.is_none() {
            "no frames were checked: the scenario names no protocol (add `protocol: NAME`)"
        } else if c.frames_in == 0 && c.frames_out == 0 {
            "no frames were checked: not one frame arrived from the target or was sent"
        } else if c.frames_in == 0 {
            "no frames were checked: not one frame arrived from the target"
        } else {
            "no frames were checked (--no-check)"
        }
    }

    /// Whether every threshold held (or was not measured, see
    /// [`ThresholdOutcome::not_measured`]) and no frame broke its schemas. The status is
    /// apart: an interrupted or aborted run ends so whatever this says.
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.pass || t.not_measured) && self.violations.total == 0
    }
}

/// Which part of a sharded run a result is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// This shard, 1-based.
    pub index: u32,
    /// Shards in the run.
    pub count: u32,
    /// The common start the shards were given (`--start-at`), RFC 3339.
    #[serde(default)]
    pub start_at: Option<String>,
}

/// One shard of a merged result, as it reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRecord {
    /// The shard, 1-based.
    pub index: u32,
    /// Its results file, as given to `squall merge`.
    pub file: String,
    /// Its generator's host name.
    pub host: String,
    /// How it ended.
    pub status: Status,
    /// Why, when it did not complete.
    pub status_reason: Option<String>,
    /// When it started, RFC 3339.
    pub started_at: String,
    /// Its generator's health.
    pub health: Health,
}

/// Run status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still going (or crashed: nothing rewrote the file afterwards).
    Running,
    /// Ran to the planned end.
    Complete,
    /// Stopped early by the user (Ctrl-C) or a signal; results up to then are valid.
    Interrupted,
    /// Stopped by a fatal condition (see `status_reason`).
    Aborted,
}

/// What ran, where and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMeta {
    /// squall version that produced the file.
    pub tool_version: String,
    /// Scenario `name:`.
    pub scenario_name: String,
    /// Scenario file path as given.
    pub scenario_file: String,
    /// Hex SHA-256 of the scenario text.
    pub scenario_sha256: String,
    /// Protocol profile, if any.
    pub protocol: Option<String>,
    /// How strictly frames were held to it: `strict` (the document and squall's decisions
    /// where it is silent) or `document`; `None` when nothing was checked.
    #[serde(default)]
    pub conformance: Option<String>,
    /// Target URL.
    pub target: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// End time, RFC 3339; `None` while running.
    pub ended_at: Option<String>,
    /// Elapsed seconds so far (or in all).
    pub duration_s: f64,
    /// Planned seconds (all load stages).
    pub planned_duration_s: f64,
    /// `closed` (VUs) or `open` (arrival rate).
    pub load_model: String,
    /// Host name of the generator.
    pub host: String,
    /// The planned load phases, in order (absent in files written before they were
    /// recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
}

/// One planned load phase: the level moves linearly from `from` to `to` between
/// `start_s` and `end_s` (a hold has `from == to`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Seconds since the start.
    pub start_s: f64,
    /// Seconds since the start.
    pub end_s: f64,
    /// Level at the start: VUs (closed model) or arrivals per second (open model).
    pub from: f64,
    /// Level at the end.
    pub to: f64,
}

/// The load actually reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadReached {
    /// Most VUs active at once (as seen at the merge ticks).
    pub peak_vus: u64,
    /// Most connections open at once (as seen at the merge ticks).
    pub peak_connections: u64,
    /// Highest arrival rate started, per second (open model only).
    pub peak_arrival_rate: Option<f64>,
    /// Iterations that ended successfully.
    pub iterations_ok: u64,
    /// Iterations that ended in failure.
    pub iterations_failed: u64,
    /// Iterations begun: `iterations_ok + iterations_failed + iterations_cut`.
    #[serde(default)]
    pub iterations_started: u64,
    /// Iterations the hard stop cut before they could end (neither ok nor failed).
    #[serde(default)]
    pub iterations_cut: u64,
    /// Iterations begun per behaviour, by name (a behaviour no VU picked has 0).
    #[serde(default)]
    pub iterations_by_behaviour: BTreeMap<String, u64>,
}

/// Run totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counters {
    /// Connection attempts and ends.
    pub connections: ConnectionCounts,
    /// Inbound frames.
    pub frames_in: u64,
    /// Outbound frames.
    pub frames_out: u64,
    /// Inbound payload bytes.
    pub bytes_in: u64,
    /// Outbound payload bytes.
    pub bytes_out: u64,
    /// Inbound frames and bytes by message kind (`(none)`: no kind; `(other)`: past the cap).
    pub kinds_in: BTreeMap<String, KindCount>,
    /// Outbound frames and bytes by message kind.
    pub kinds_out: BTreeMap<String, KindCount>,
    /// All errors, connection failures included.
    pub errors: u64,
    /// Errors by kind (`timeout`, `connect_refused`, `http_429`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Operations: connect attempts + expects + paced requests (denominator of `errors.rate`).
    pub ops: u64,
    /// Sends that could not happen at their intended time, or never happened.
    pub missed: u64,
    /// What became of the requests waited on: `sent = replies + timeouts + unanswered`.
    #[serde(default)]
    pub requests: RequestCounts,
    /// Per error kind, its first few occurrences (at most 5, the earliest, each detail at
    /// most 240 bytes): when, which VU, what happened.
    #[serde(default)]
    pub error_samples: BTreeMap<String, Vec<ErrorSample>>,
}

/// One occurrence of an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorSample {
    /// Seconds since the start of the run.
    pub t: f64,
    /// The VU it happened to.
    pub vu: u64,
    /// What happened, e.g. `no reply within 1s (metric rtt)`.
    pub detail: String,
}

/// Requests waited on: each paced request and each `expect` step counts once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCounts {
    /// Requests sent (an `expect` counts when it starts waiting).
    pub sent: u64,
    /// Answered in time.
    pub replies: u64,
    /// Their deadline passed first.
    pub timeouts: u64,
    /// Neither: the connection died first (also `errors_by_kind.unanswered`), or the run's
    /// hard stop cut the wait short before its deadline (no error: nothing says the reply
    /// would not have come).
    pub unanswered: u64,
}

/// Connection counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionCounts {
    /// Connections established.
    pub opened: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Failed attempts by cause (`refused`, `timeout`, `tls`, `dns`, `http_429`,
    /// `bad_accept`, `handshake`, `emfile`, `other`).
    pub failed_by_cause: BTreeMap<String, u64>,
    /// Per cause, the first few distinct one-line details (e.g. `upgrade answered with HTTP/1.0
    /// 404 Not Found`), each at most 240 bytes.
    #[serde(default)]
    pub failed_samples: BTreeMap<String, Vec<String>>,
    /// Connections that ended.
    pub closed: u64,
    /// Ends by close code (`"1000"`; `"none"`: dropped without a close frame).
    pub closed_by_code: BTreeMap<String, u64>,
    /// Connections still open when the run ended: `opened = closed + open_at_stop`.
    #[serde(default)]
    pub open_at_stop: u64,
}

/// Frames and bytes of one message kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindCount {
    /// Frames.
    pub frames: u64,
    /// Payload bytes.
    pub bytes: u64,
}

/// One tick of the time series: the events that happened in `[t - span_s, t)`, whenever
/// their worker reported them. Rates are per second over `span_s`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesPoint {
    /// Seconds since the start, at the end of the interval.
    pub t: f64,
    /// Length of the interval, s: the tick, except for the last, partial one.
    #[serde(default)]
    pub span_s: f64,
    /// Inbound frames per second.
    pub msgs_in: f64,
    /// Outbound frames per second.
    pub msgs_out: f64,
    /// Inbound bytes per second.
    pub bytes_in: f64,
    /// Outbound bytes per second.
    pub bytes_out: f64,
    /// Inbound frames in the interval (a count: the series adds up to the totals).
    #[serde(default)]
    pub frames_in: u64,
    /// Outbound frames in the interval (a count).
    #[serde(default)]
    pub frames_out: u64,
    /// Latency samples in the interval, all metrics (replies and timeouts; a count).
    #[serde(default)]
    pub samples: u64,
    /// Planned sends missed in the interval (a count).
    #[serde(default)]
    pub missed: u64,
    /// Open connections at the tick.
    pub active_connections: u64,
    /// Running VUs at the tick.
    pub active_vus: u64,
    /// Errors during the interval (a count, not a rate).
    pub errors: u64,
    /// Protocol violations during the interval (a count).
    pub violations: u64,
    /// Median latency over all metrics during the interval, µs; `None` without samples.
    pub p50_us: Option<u64>,
    /// 99th percentile latency over all metrics during the interval, µs.
    pub p99_us: Option<u64>,
    /// The generator's worst lateness (scheduling-lag probe) during the interval, µs.
    #[serde(default)]
    pub lag_max_us: Option<u64>,
    /// CPU of squall's own threads during the interval, in cores (2.0: two cores busy).
    pub cpu: Option<f64>,
}

impl SeriesPoint {
    /// Adds `x`'s counts, gauges and CPU into this point (another process's share of the
    /// same interval) and keeps the worse lateness; rates, time and percentiles are left to
    /// the caller, who knows how the intervals line up.
    pub fn add_counts(&mut self, x: &SeriesPoint) {
        self.frames_in += x.frames_in;
        self.frames_out += x.frames_out;
        self.samples += x.samples;
        self.missed += x.missed;
        self.active_connections += x.active_connections;
        self.active_vus += x.active_vus;
        self.errors += x.errors;
        self.violations += x.violations;
        self.lag_max_us = self.lag_max_us.max(x.lag_max_us);
        if let Some(c) = x.cpu {
            *self.cpu.get_or_insert(0.0) += c;
        }
    }
}

/// A threshold and how the run fared against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOutcome {
    /// The expression as written.
    pub expr: String,
    /// Whether it held.
    pub pass: bool,
    /// The measured value in `unit`; `None` when there was nothing to measure.
    pub actual: Option<f64>,
    /// Unit of `actual`: `us`, `ratio`, `per_s` or `count`.
    pub unit: String,
    /// One line for people, e.g. `p99 12.3ms < 50ms` or `no samples`.
    pub message: String,
    /// Not measured, and not the target's fault: every behaviour that records what it
    /// reads never began an iteration in a run `--duration` cut shorter than the scenario.
    /// Neither held nor broken (`pass` is false): it does not fail the run.
    #[serde(default)]
    pub not_measured: bool,
}

/// Generator health: was squall itself the bottleneck?
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Whether any of `reasons` holds: latencies then partly measure the generator, not
    /// the target.
    pub generator_saturated: bool,
    /// Why: a stall (lateness ≥ 100 ms), lateness p99 > 10 ms, missed sends, file
    /// descriptors exhausted, or squall's own CPU ≥ 90% of the cores for ≥ 3 s.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Mean CPU of squall's own threads over the ticks, in cores; `None` when never sampled.
    pub cpu_mean: Option<f64>,
    /// Highest per-tick CPU, in cores.
    pub cpu_peak: Option<f64>,
    /// Cores the generator could use.
    pub cores: f64,
    /// 99th percentile of the scheduling-lag probe, µs.
    pub lag_p99_us: u64,
    /// Largest scheduling lag seen, µs.
    pub lag_max_us: u64,
    /// Lateness samples of 100 ms or more (the generator was stopped or blocked).
    #[serde(default)]
    pub stalls: u64,
    /// The longest stall, µs (0: none).
    #[serde(default)]
    pub longest_stall_us: u64,
    /// Start of the second the longest stall was seen in, s since the start.
    #[serde(default)]
    pub longest_stall_at_s: Option<f64>,
    /// Latest a scheduled send left after its intended time, µs.
    #[serde(default)]
    pub send_late_max_us: u64,
    /// Planned sends that never happened (as `counters.missed`).
    #[serde(default)]
    pub missed_sends: u64,
    /// Most open files seen (sampled every tick; a lower bound).
    #[serde(default)]
    pub fd_peak: Option<u64>,
    /// The open-file limit.
    #[serde(default)]
    pub fd_limit: Option<u64>,
    /// Peak resident memory of the process the run played in, KiB (`VmHWM`, Linux; when
    /// results are merged, the shards' sum). A run inside another program (a test, a
    /// capacity step) reports that program's.
    #[serde(default)]
    pub rss_peak_kib: Option<u64>,
    /// Warnings raised during the run, in order.
    pub warnings: Vec<String>,
}
