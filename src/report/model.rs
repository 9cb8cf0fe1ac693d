//! The report's view model: every figure the terminal summary, the HTML report and the
//! comparison show, computed and formatted once from [`Results`], so that all of them print
//! the same numbers.

use crate::results::Status;

mod build;

/// Column headings of a latency row, in the order of [`LatencyRow::cells`].
pub const LATENCY_COLUMNS: [&str; 6] = ["count", "p50", "p90", "p99", "p99.9", "max"];

/// Everything a report shows, formatted.
#[derive(Debug, Clone)]
pub struct Model {
    /// Scenario name.
    pub scenario: String,
    /// Target URL.
    pub target: String,
    /// `running`, `complete`, `interrupted` or `aborted`.
    pub status: &'static str,
    /// The answer to "did it pass?", first thing in the summary and the report.
    pub verdict: Verdict,
    /// Why the run stopped early, when it did.
    pub reason: Option<String>,
    /// Messages that must not be missed: an unfinished run, a saturated generator.
    pub banners: Vec<String>,
    /// Run metadata as (label, value).
    pub meta: Vec<(&'static str, String)>,
    /// `10.0s`: how long the run lasted.
    pub duration: String,
    /// `10.0s`: how long it was planned to last.
    pub planned: String,
    /// Most VUs at once.
    pub peak_vus: u64,
    /// Most connections at once.
    pub peak_connections: u64,
    /// Iterations that ended well.
    pub iterations_ok: u64,
    /// Iterations that failed.
    pub iterations_failed: u64,
    /// Iterations the hard stop cut.
    pub iterations_cut: u64,
    /// What became of the requests waited on.
    pub requests: crate::results::RequestCounts,
    /// Connection attempts and ends.
    pub connections: Connections,
    /// Inbound then outbound traffic.
    pub traffic: [Traffic; 2],
    /// Frames by direction and kind (inbound first, most frequent first).
    pub kinds: Vec<KindRow>,
    /// Per metric a latency row, then its service row; the connect row last.
    pub latency: Vec<LatencyRow>,
    /// The metrics measured closed loop (send, then wait), with samples.
    pub closed_loop: Vec<String>,
    /// Errors over operations.
    pub errors: Errors,
    /// Protocol checking.
    pub violations: ViolationsView,
    /// Threshold outcomes, in scenario order.
    pub thresholds: Vec<ThresholdRow>,
    /// Generator health.
    pub health: HealthView,
    /// Fan-out delivery, when the scenario tracked it.
    pub delivery: Option<super::flows::DeliveryView>,
    /// Upload steps, by metric.
    pub uploads: Vec<super::flows::UploadView>,
}

/// The run's verdict in a word, and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `PASS`, `FAIL`, `INTERRUPTED`, `ABORTED` or `RUNNING` (the exit code's meaning).
    pub word: &'static str,
    /// E.g. `6 of 6 thresholds held; 3175 frames checked, no violations`.
    pub detail: String,
}

/// Connection counters.
#[derive(Debug, Clone)]
pub struct Connections {
    /// Established.
    pub opened: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Failed attempts by cause, largest first.
    pub failed_by_cause: Vec<(String, u64)>,
    /// Connections that ended.
    pub closed: u64,
    /// Ends by close code (`none`: no close frame), largest first.
    pub closed_by_code: Vec<(String, u64)>,
    /// Still open when the run ended.
    pub open_at_stop: u64,
    /// Per failure cause, the first detail recorded: (cause, detail).
    pub failed_samples: Vec<(String, String)>,
}

/// Frames and bytes in one direction.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// `in` or `out`.
    pub dir: &'static str,
    /// Frames.
    pub frames: u64,
    /// `12.5/s`.
    pub frame_rate: String,
    /// `1.5MB`.
    pub bytes: String,
    /// `150.0kB/s`.
    pub byte_rate: String,
}

/// Frames of one kind in one direction.
#[derive(Debug, Clone)]
pub struct KindRow {
    /// `in` or `out`.
    pub dir: &'static str,
    /// The kind (`(other)` past the cap, `(auto-reply)`, `(non-json)`...).
    pub kind: String,
    /// Frames.
    pub frames: u64,
    /// `12.5/s`.
    pub frame_rate: String,
    /// `1.5MB`.
    pub bytes: String,
    /// `42.0%`: share of the direction's frames.
    pub share: String,
}

/// Which histogram a latency row summarises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// From the intended send time.
    Latency,
    /// From the actual send time.
    Service,
    /// Connection setup.
    Connect,
}

/// One histogram's figures.
#[derive(Debug, Clone)]
pub struct LatencyRow {
    /// Metric name (`connect` for the connect row).
    pub metric: String,
    /// Which histogram.
    pub kind: RowKind,
    /// `latency rtt`, `service rtt` or `connect`.
    pub label: String,
    /// Samples.
    pub count: u64,
    /// p50, p90, p99, p99.9 and max, formatted; `None` without samples.
    pub cells: Option<[String; 5]>,
    /// A service row identical to its latency row (nothing was paced): the terminal
    /// summary leaves it out.
    pub same_as_latency: bool,
}

/// What the summary and report say under the latency table when some metrics were
/// measured closed loop.
pub const CLOSED_LOOP_NOTE: &str = "sent, then waited for: a stalled server also holds back \
     the requests behind the slow one, so each stall counts once, not for every request it \
     delayed (coordinated omission); `pace: { rate: ... }` sends on a schedule and charges \
     every delayed request";

/// Errors over operations.
#[derive(Debug, Clone)]
pub struct Errors {
    /// All errors.
    pub count: u64,
    /// Operations (the denominator).
    pub ops: u64,
    /// `0.25%`.
    pub rate: String,
    /// By kind, largest first.
    pub by_kind: Vec<(String, u64)>,
    /// Sends that could not happen at their intended time.
    pub missed: u64,
    /// The first occurrences of each kind (kinds largest first): (kind, `12.3s`, VU,
    /// detail).
    pub samples: Vec<(String, String, u64, String)>,
}

/// Protocol checking.
#[derive(Debug, Clone)]
pub struct ViolationsView {
    /// Frames checked.
    pub checked: u64,
    /// Violations in all.
    pub total: u64,
    /// Frames with at least one.
    pub frames: u64,
    /// Grouped, most frequent first.
    pub groups: Vec<GroupView>,
    /// Violations past the group cap, in no group.
    pub folded: u64,
    /// Why nothing was checked, when `checked` is 0.
    pub unchecked_why: &'static str,
}

/// One kind of violation.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// How many.
    pub count: u64,
    /// `in` or `out`.
    pub dir: &'static str,
    /// Frame kind.
    pub kind: String,
    /// JSON Schema keyword (or squall's own: `unknown_kind`, `json`...).
    pub keyword: String,
    /// JSON pointer into the frame; `/` for the whole frame.
    pub pointer: String,
    /// Whose rule was broken: `document`, or `squall's decision` where the document is silent.
    pub rule: &'static str,
    /// (message, frame text, seconds since start, VU) of the first offending frames.
    pub samples: Vec<(String, String, f64, u64)>,
}

/// A threshold's outcome.
#[derive(Debug, Clone)]
pub struct ThresholdRow {
    /// Held?
    pub pass: bool,
    /// Neither held nor broken: what it reads was never measured in a shortened run.
    pub not_measured: bool,
    /// As written.
    pub expr: String,
    /// E.g. `p99 12.3ms < 50ms`.
    pub message: String,
}

/// Generator health.
#[derive(Debug, Clone)]
pub struct HealthView {
    /// The generator was the bottleneck.
    pub saturated: bool,
    /// `CPU mean 0.40 / peak 0.90 of 2 cores` or `CPU not sampled`.
    pub cpu: String,
    /// Scheduling lag p99.
    pub lag_p99: String,
    /// Largest scheduling lag.
    pub lag_max: String,
    /// The rest of what was measured: stalls, late sends, missed sends, open files.
    pub measured: String,
    /// Why it counts as saturated (empty when it kept up).
    pub reasons: Vec<String>,
    /// Warnings raised during the run.
    pub warnings: Vec<String>,
}

/// `complete`, `interrupted`...
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::Running => "running",
        Status::Complete => "complete",
        Status::Interrupted => "interrupted",
        Status::Aborted => "aborted",
    }
}

/// How a violation's source reads in the report, the summary and JUnit.
pub fn rule_text(source: crate::protocol::RuleSource) -> &'static str {
    match source {
        crate::protocol::RuleSource::Document => "document",
        crate::protocol::RuleSource::Squall => "squall's decision",
    }
}
