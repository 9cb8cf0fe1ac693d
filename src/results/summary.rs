//! Latency as results hold it: a metric's two [`Summary`]s and its [`Timing`], each summary
//! a histogram's statistics with the histogram itself (encoded) for exact merging.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::ReportError;

/// Highest value a histogram tracks: one hour in microseconds.
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// A fresh histogram for microsecond values: 1 ..= 3 600 000 000 µs, 3 significant digits.
///
/// Record into it with `saturating_record`: values above one hour count as one hour.
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: creation cannot fail.
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("valid histogram bounds")
}

/// One latency metric: from the intended send time, and from the actual send time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricResult {
    /// From the intended send time: what a user would see (no coordinated omission).
    pub latency: Summary,
    /// From the actual send time: what the server took. A large gap to `latency` means
    /// the generator or the pacing fell behind.
    pub service: Summary,
    /// How the metric's requests were sent, which decides what its latency can show.
    #[serde(default)]
    pub timing: Timing,
}

/// How a metric's requests were sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// On a schedule (`pace` with a `rate`): latency counts from each request's intended
    /// send time, so a server that stalls is charged for every request its stall delayed.
    Paced,
    /// Sent, then waited for (`send` + `expect`, `pace` without a `rate`, `burst`,
    /// `upload`): a slow reply also holds back the requests behind it, so a stall counts
    /// once rather than for each request it delayed (coordinated omission).
    #[default]
    ClosedLoop,
    /// Recorded by both kinds of step.
    Mixed,
    /// Event delivery, timed from the publisher's stamp in the frame.
    Delivery,
}

impl Timing {
    /// The label results, summary and report use.
    pub fn as_str(self) -> &'static str {
        match self {
            Timing::Paced => "paced",
            Timing::ClosedLoop => "closed loop",
            Timing::Mixed => "paced and closed loop",
            Timing::Delivery => "delivery",
        }
    }

    /// Whether some of the metric's samples were measured closed loop.
    pub fn closed_loop(self) -> bool {
        matches!(self, Timing::ClosedLoop | Timing::Mixed)
    }
}

/// A histogram's statistics plus the histogram itself, for exact merging later.
/// All values in µs; 0 when `count` is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest sample (to histogram precision).
    pub max: u64,
    /// HdrHistogram V2 + deflate encoding, base64 (standard alphabet, padded).
    pub histogram: String,
}

impl Summary {
    /// Statistics and encoding of `h`.
    pub fn from_histogram(h: &Histogram<u64>) -> Summary {
        let mut buf = Vec::new();
        // Writing into a Vec cannot fail for a well-formed histogram.
        let _ = V2DeflateSerializer::new().serialize(h, &mut buf);
        let histogram = base64::engine::general_purpose::STANDARD.encode(&buf);
        if h.is_empty() {
            return Summary {
                count: 0,
                min: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p99_9: 0,
                max: 0,
                histogram,
            };
        }
        Summary {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
            histogram,
        }
    }

    /// A summary with no samples.
    pub fn empty() -> Summary {
        Summary::from_histogram(&new_histogram())
    }

    /// Decodes the stored histogram.
    pub fn histogram(&self) -> Result<Histogram<u64>, ReportError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.histogram)
            .map_err(|e| ReportError::Histogram(e.to_string()))?;
        Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| ReportError::Histogram(format!("{e:?}")))
    }

    /// Exact merge of two summaries through their histograms (e.g. two shards).
    pub fn merge(&self, other: &Summary) -> Result<Summary, ReportError> {
        let mut h = new_histogram();
        for s in [self, other] {
            h.add(s.histogram()?)
                .map_err(|e| ReportError::Histogram(format!("{e:?}")))?;
        }
        Ok(Summary::from_histogram(&h))
    }
}

/// Exact merge of two summaries; see [`Summary::merge`].
pub fn merge_summaries(a: &Summary, b: &Summary) -> Result<Summary, ReportError> {
    a.merge(b)
}
