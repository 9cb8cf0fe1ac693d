//! The results model (`results.json`) and its renderers: the only input every report reads.

pub mod junit;
pub mod results;
pub mod summary;

pub use junit::render_junit;
pub use results::{
    merge_summaries, ConnectionCounts, Counters, Health, KindCount, LoadReached, MetricResult,
    ReportError, Results, ResultsWriter, RunMeta, SeriesPoint, Status, Summary, ThresholdOutcome,
    ViolationGroup, Violations, RESULTS_VERSION,
};
pub use summary::{fmt_bytes, fmt_us, render_summary};
