//! The results model (`results.json`) and its renderers: the only input every report reads.
//!
//! One view model ([`model::Model`]) feeds the terminal summary and report.html, so both
//! show the same figures; [`charts`] decides what is plotted and [`plots`] draws it (SVG
//! inline in the page, PNG beside it); [`compare`] puts runs side by side.

pub mod capacity_page;
mod chart;
pub mod charts;
pub mod compare;
pub mod compare_page;
mod draw;
pub mod flows;
pub mod fmt;
pub mod html;
pub mod junit;
pub mod model;
pub mod output;
pub mod per_metric;
pub mod plots;
pub mod summary;

/// The capacity block of the results, where `squall capacity` and its tests have always found it.
pub use crate::results::capacity;
pub use crate::results::{
    merge_summaries, ConnectionCounts, Counters, Health, KindCount, LoadReached, MetricResult,
    Phase, ReportError, RequestCounts, Results, ResultsWriter, RunMeta, SeriesPoint, ShardInfo,
    ShardRecord, Status, Summary, ThresholdOutcome, Timing, ViolationGroup, Violations,
    RESULTS_VERSION,
};
pub use compare::{Comparison, Options as CompareOptions, Run};
pub use compare_page::compare_text;
pub use fmt::{fmt_bytes, fmt_rate, fmt_us};
pub use junit::render_junit;
pub use model::Model;
pub use output::{
    load_runs, read_results, write_comparison, write_report, write_report_beside,
    write_report_with, Written,
};
pub use summary::{render_model, render_summary};
