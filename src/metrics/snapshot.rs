//! What a worker's [`Recorder`](super::Recorder) hands the aggregator each tick: a
//! [`Snapshot`] of deltas (its plain counters in a [`Tally`]), and the limits on the error
//! details it keeps.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::flows::{DeliveryTally, UploadTally};
use super::kinds::KindDelta;
use super::violations::ViolationTally;
use super::{ErrorKind, FailCause};
use crate::results::ErrorSample;

/// Plain counters since the last take.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) opened: u64,
    pub(crate) failed: BTreeMap<FailCause, u64>,
    /// The first few distinct details of failed attempts, per cause.
    pub(crate) failed_samples: BTreeMap<FailCause, Vec<String>>,
    pub(crate) closed: BTreeMap<Option<u16>, u64>,
    pub(crate) errors: [u64; ErrorKind::ALL.len()],
    pub(crate) ops: u64,
    pub(crate) missed: u64,
    pub(crate) iterations_ok: u64,
    pub(crate) iterations_failed: u64,
    pub(crate) iterations_started: u64,
    /// Iterations begun, per behaviour (indexed like the plan's behaviours; shorter when
    /// the last ones never began).
    pub(crate) started_by_behaviour: Vec<u64>,
    pub(crate) iterations_cut: u64,
    pub(crate) arrivals: u64,
    /// Stalls of the generator (see [`Recorder::probe`]) and the longest, µs.
    pub(crate) stalls: u64,
    pub(crate) longest_stall_us: u64,
    /// Connections still open when their VU was dropped at the hard stop.
    pub(crate) abandoned: u64,
    pub(crate) requests: RequestTally,
    /// The first occurrences of errors since the last take (see [`Recorder::error_sample`]).
    pub(crate) error_samples: Vec<(ErrorKind, ErrorSample)>,
}

/// What became of the requests a VU waited on (paced requests and `expect` steps).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestTally {
    pub(crate) sent: u64,
    pub(crate) replies: u64,
    pub(crate) timeouts: u64,
    pub(crate) unanswered: u64,
}

impl Tally {
    /// All errors: error kinds plus failed connection attempts.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.iter().sum::<u64>() + self.failed.values().sum::<u64>()
    }
}

/// What a [`Recorder`] measured since its previous [`Recorder::take`]; sent to the aggregator.
///
/// Counters and histograms are deltas; the two gauges are the worker's absolute values.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) worker: u64,
    /// One entry per metric; `None` when nothing was recorded (saves moving empty histograms).
    pub(crate) latency: Vec<Option<Histogram<u64>>>,
    pub(crate) service: Vec<Option<Histogram<u64>>>,
    pub(crate) connect: Option<Histogram<u64>>,
    pub(crate) lag: Option<Histogram<u64>>,
    pub(crate) send_late: Option<Histogram<u64>>,
    pub(crate) tally: Tally,
    /// The series bucket (tick index) every event in this snapshot happened in; `None`
    /// from [`Recorder::take`], which leaves the bucket to the aggregator's next tick.
    pub(crate) second: Option<u32>,
    /// The worker's next bucket: every bucket below it is complete from this worker.
    /// `u32::MAX` in a worker's last snapshot.
    pub(crate) upto: u32,
    /// CPU time the worker thread used while this bucket was open, µs.
    pub(crate) cpu_us: Option<u64>,
    pub(crate) kinds_in: Vec<KindDelta>,
    pub(crate) kinds_out: Vec<KindDelta>,
    pub(crate) active_connections: i64,
    pub(crate) active_vus: i64,
    pub(crate) violations: ViolationTally,
    pub(crate) delivery: DeliveryTally,
    /// Per metric; empty when no upload counted anything since the last take.
    pub(crate) uploads: Vec<UploadTally>,
}

impl Snapshot {
    /// The worker this snapshot came from (gauges are kept per worker).
    pub fn worker(&self) -> u64 {
        self.worker
    }

    /// What was checked, and the violations found.
    pub fn violations(&self) -> &ViolationTally {
        &self.violations
    }
}

/// Distinct details kept per connect failure cause.
pub const FAIL_SAMPLES: usize = 3;
/// Longest connect failure detail kept, bytes.
pub const FAIL_DETAIL_MAX: usize = 240;

/// Occurrences kept per error kind (per worker, and in the results).
pub const ERROR_SAMPLES: usize = 5;

/// Adds `detail` (cut to [`FAIL_DETAIL_MAX`] bytes) to `samples` unless already there or full.
pub(crate) fn note_sample(samples: &mut Vec<String>, detail: &str) {
    if samples.len() >= FAIL_SAMPLES {
        return;
    }
    let mut end = detail.len().min(FAIL_DETAIL_MAX);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    let detail = &detail[..end];
    if !samples.iter().any(|s| s == detail) {
        samples.push(detail.to_string());
    }
}
