//! Threshold expressions (`latency.ack.p99 < 50ms`): the syntax tree and its parser.
//!
//! Evaluation against results lives in `check::verdict`.
//!
//! CONTRACT: the types below are fixed; `parse` is filled in by the scenario work.

use crate::scenario::plan::Pos;

/// A parsed threshold such as `latency.subscribe_ack.p99 < 50ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written.
    pub source: String,
    /// Where it stands in the scenario file.
    pub pos: Pos,
    /// The measured quantity.
    pub lhs: Quantity,
    /// The comparison.
    pub op: Cmp,
    /// The bound in canonical units: microseconds for times, a fraction for rates
    /// (`0.1%` is 0.001), per second for throughput, plain numbers for counts.
    pub rhs: f64,
}

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantity {
    /// `latency.<metric>.<stat>`: latency from the intended send time, µs.
    Latency {
        /// Metric name as declared by an `expect`/`pace` `metric:`.
        metric: String,
        /// Which statistic.
        stat: Stat,
    },
    /// `service.<metric>.<stat>`: latency from the actual send time, µs.
    Service {
        /// Metric name.
        metric: String,
        /// Which statistic.
        stat: Stat,
    },
    /// `connect.<stat>`: connection setup time (TCP + TLS + upgrade), µs.
    Connect(Stat),
    /// `errors.count`: all errors.
    ErrorsCount,
    /// `errors.rate`: errors / operations (connect attempts + expects + paced requests).
    ErrorsRate,
    /// `errors.<kind>`: errors of one kind (e.g. `timeout`, `http_429`).
    ErrorsOfKind(String),
    /// `connections.failed`.
    ConnectionsFailed,
    /// `connections.opened`.
    ConnectionsOpened,
    /// `throughput.in`: inbound messages per second over the run.
    ThroughputIn,
    /// `throughput.out`: outbound messages per second over the run.
    ThroughputOut,
    /// `iterations.count`: completed iterations.
    Iterations,
    /// `missed.count`: sends that could not happen at their intended time.
    Missed,
}

/// A statistic of a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// `min`.
    Min,
    /// `mean`.
    Mean,
    /// `max`.
    Max,
    /// `pNN` (`p50`, `p99`, `p99.9`): the percentile, 0–100.
    Percentile(f64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Cmp {
    /// Whether `lhs op rhs` holds.
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Cmp::Lt => lhs < rhs,
            Cmp::Le => lhs <= rhs,
            Cmp::Gt => lhs > rhs,
            Cmp::Ge => lhs >= rhs,
            Cmp::Eq => lhs == rhs,
            Cmp::Ne => lhs != rhs,
        }
    }
}
