//! The `capacity` block of results.json: what `squall capacity` found, and every step of
//! the search that found it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::{Health, RequestCounts, ThresholdOutcome};

/// A capacity search: its answer and its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// How the search ended.
    pub outcome: Outcome,
    /// The answer in one line, as the terminal printed it.
    pub answer: String,
    /// The highest offered rate (arrivals per second) that held every SLO, steadily, with
    /// every request answered; `null` when none did.
    pub sustained_rate: Option<f64>,
    /// The lowest offered rate that did not; `null` when none broke.
    pub breaking_rate: Option<f64>,
    /// The SLO expressions, as given.
    pub slo: Vec<String>,
    /// The latency metric the knee plots draw (the first latency SLO's).
    pub metric: Option<String>,
    /// What the search was asked to do.
    pub search: Settings,
    /// Every step, in the order run.
    pub steps: Vec<Step>,
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The knee was found within the precision.
    Found,
    /// Even the first rate broke an SLO.
    BelowFrom,
    /// The highest rate allowed held: the capacity is at least that.
    AboveTo,
    /// squall could not offer a rate: the capacity is above what this generator can offer.
    GeneratorLimited,
    /// The target failed (unreachable, or a step measured nothing).
    TargetFailed,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

/// The search's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// First rate, per second.
    pub from: f64,
    /// Highest rate, per second.
    pub to: f64,
    /// Largest gap between the sustained and the breaking rate, as a fraction of the
    /// sustained one.
    pub precision: f64,
    /// Length of each step, warm-up included, s.
    pub step_s: f64,
    /// Start of each step left out of its figures, s.
    pub warmup_s: f64,
}

/// How one step was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every SLO held, latency was steady and every request was answered.
    Good,
    /// It did not (see `why`).
    Bad,
    /// squall itself was saturated: nothing can be said about the target at this rate.
    GeneratorLimited,
    /// The target failed.
    TargetFailed,
    /// Interrupted before it ended.
    Interrupted,
}

/// One step: a rate held for `--step`, measured after the warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The arrival rate offered, per second.
    pub offered_rate: f64,
    /// Latency samples (replies and timeouts) per second in the measured window.
    pub achieved_rate: f64,
    /// When the step started, s since the search started.
    pub started_s: f64,
    /// The measured window (the step after its warm-up), s.
    pub measured_s: f64,
    /// Good, bad, or why it could not be judged.
    pub verdict: Verdict,
    /// Why it is not good, one reason a line.
    pub why: Vec<String>,
    /// Latency per metric over the measured window.
    pub metrics: BTreeMap<String, Percentiles>,
    /// The SLOs over the measured window.
    pub slo: Vec<ThresholdOutcome>,
    /// The steady-state test; `null` when a half of the window had too few samples.
    pub trend: Option<Trend>,
    /// Requests over the measured window (`unanswered`: still waiting at the step's end,
    /// its own stop or a lost connection cut them).
    pub requests: RequestCounts,
    /// Errors over the measured window.
    pub errors: u64,
    /// Connection attempts that failed over the measured window.
    pub connections_failed: u64,
    /// Open connections lost over the measured window (`disconnected` and
    /// `unexpected_close` errors): the target closed or dropped them.
    #[serde(default)]
    pub connections_lost: u64,
    /// Arrivals that could not start in the measured window, its last tick left out (where
    /// the arrivals due at the stop are counted): every slot busy, or the generator behind.
    pub missed: u64,
    /// The generator's health over the whole step.
    pub health: Health,
    /// Latency over the step: one point per tick, all metrics together.
    pub series: Vec<Point>,
}

/// Latency percentiles of one metric, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
}

/// One tick of a step's latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// Seconds since the step started, at the end of the tick.
    pub t: f64,
    /// Median latency in the tick, µs.
    pub p50_us: Option<u64>,
    /// 99th percentile latency in the tick, µs.
    pub p99_us: Option<u64>,
}

/// What the steady-state test found in one step (see `capacity::trend`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trend {
    /// Latency samples in the first and the second half of the measured window.
    pub samples: [u64; 2],
    /// Median latency of the first half (all metrics), µs.
    pub first_half_us: f64,
    /// Median latency of the second half, µs.
    pub second_half_us: f64,
    /// The largest rise that still counts as steady, µs.
    pub limit_us: f64,
    /// The latency rose by more than `limit_us`.
    pub rising: bool,
}
