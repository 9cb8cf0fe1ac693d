//! The flows of a run as results: protocol checking, fan-out delivery and uploads.

use serde::{Deserialize, Serialize};

use crate::protocol::{Direction, RuleSource};

/// Protocol checking over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Violations {
    /// Frames checked against their schemas (both directions).
    pub checked: u64,
    /// Frames with at least one violation.
    pub frames: u64,
    /// Violations in all (a frame can break several rules).
    pub total: u64,
    /// Grouped by direction, kind, keyword and pointer, most frequent first; at most 128.
    pub groups: Vec<ViolationGroup>,
    /// Violations of groups first seen when 128 groups were kept already: counted in
    /// `total`, in no group.
    #[serde(default)]
    pub folded: u64,
}

/// One kind of violation and where it was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationGroup {
    /// `in` or `out`.
    pub dir: Direction,
    /// The frame kind (or `(unknown)`, `(non-json)`, `(binary)`).
    pub kind: String,
    /// The failing JSON Schema keyword (or `unknown_kind`, `json`, `binary`, `utf8`).
    pub keyword: String,
    /// JSON pointer into the frame.
    pub pointer: String,
    /// Whose rule was broken: the protocol's document, or squall's decision where the
    /// document is silent (`--conformance document` lets those pass).
    #[serde(default)]
    pub source: RuleSource,
    /// How many times.
    pub count: u64,
    /// The first few offending frames.
    pub samples: Vec<ViolationSample>,
}

/// Fan-out delivery over the run: frames carrying a sequence number, per stream and connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryResult {
    /// Latency metric (receipt − send time) in `metrics`, when the scenario names `sent_at`.
    pub metric: Option<String>,
    /// Distinct sequence numbers received.
    pub received: u64,
    /// Sequence numbers skipped and never received (a late arrival fills its gap).
    pub gaps: u64,
    /// Frames that arrived after a higher number of their stream.
    pub reordered: u64,
    /// Repeats of numbers already received.
    pub duplicates: u64,
    /// Frames with a sequence number that could not be tracked (not an unsigned integer, no
    /// stream key, too many streams).
    pub untracked: u64,
    /// Streams tracked (one per stream and connection; each set a baseline).
    pub streams: u64,
    /// Streams that started over: a sequence number jumped by more than 2^20 (a restarted or
    /// broken counter), counted here instead of as gaps or reordering.
    #[serde(default)]
    pub resets: u64,
    /// received / (received + gaps); `None` when nothing was received.
    pub completeness: Option<f64>,
}

/// The uploads of the `upload` steps sharing one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadResult {
    /// Uploads started.
    pub started: u64,
    /// Uploads that ended in `complete`.
    pub completed: u64,
    /// Uploads that ended in their `expect_error` reply.
    pub rejected: u64,
    /// Uploads that timed out, lost their connection or ended the wrong way.
    pub failed: u64,
    /// Uploads the hard stop cut: `started = completed + rejected + failed + cut`.
    #[serde(default)]
    pub cut: u64,
    /// File bytes of completed uploads.
    pub bytes: u64,
    /// Summed completion time of completed uploads, seconds.
    pub seconds: f64,
    /// `bytes` / `seconds` in MB/s (10^6 bytes): what one uploader sees; `None` without a
    /// completed upload.
    pub mbps: Option<f64>,
}

/// One offending frame, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationSample {
    /// The frame's text, cut to 1,024 bytes when recorded.
    pub frame: String,
    /// What the schema said.
    pub message: String,
    /// Seconds since the start of the run.
    pub t: f64,
    /// The VU that saw it.
    pub vu: u64,
}
