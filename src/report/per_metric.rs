//! Latency over time per metric (p50, p90, p99 per second), drawn from the run's
//! HdrHistogram interval log rather than the series, whose percentiles mix all metrics.

use std::collections::BTreeMap;

use super::charts::FileNames;
use super::plots::{palette, Body, Chart, Line, Section};
use crate::metrics::interval_log::{tag, Log};
use crate::results::Results;

/// One chart per metric with samples in the log, in metric order.
pub fn charts(r: &Results, log: &Log) -> Vec<Chart> {
    let mut names = FileNames::default();
    r.metrics
        .keys()
        .filter_map(|m| {
            let want = tag(false, m);
            // Seconds since the run's start (the log's base) at the end of each interval.
            let mut points: BTreeMap<u128, [f64; 4]> = BTreeMap::new();
            for row in log
                .rows
                .iter()
                .filter(|row| row.tag.as_deref() == Some(&want))
            {
                let h = &row.histogram;
                let end = row.start + row.span;
                let q = |q| h.value_at_quantile(q) as f64;
                points.insert(
                    end.as_millis(),
                    [end.as_secs_f64(), q(0.5), q(0.9), q(0.99)],
                );
            }
            if points.is_empty() {
                return None;
            }
            let top = points.values().map(|p| p[3]).fold(0.0, f64::max);
            let (unit, div) = if top < 2_000.0 {
                ("µs", 1.0)
            } else {
                ("ms", 1e3)
            };
            let line = |label: &str, color, i: usize| Line {
                label: label.into(),
                color,
                points: points.values().map(|p| (p[0], p[i] / div)).collect(),
                dashed: false,
            };
            Some(Chart {
                section: Section::OverTime,
                file: names.stem("time-latency", m),
                title: format!("{m}: latency over time (per second)"),
                body: Body::OverTime {
                    lines: vec![
                        line("p50", palette::BLUE, 1),
                        line("p90", palette::GREEN, 2),
                        line("p99", palette::VERMILLION, 3),
                    ],
                    y_desc: format!("latency ({unit})"),
                    phases: r.meta.phases.clone(),
                },
            })
        })
        .collect()
}
