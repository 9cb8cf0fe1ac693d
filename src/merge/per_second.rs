//! The shards' interval logs merged second by second on the wall clock, and the merged
//! series' percentiles drawn from them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::{MergeError, Shard};
use crate::metrics::interval_log::{tag, IntervalHistograms};
use crate::metrics::{add_hist, new_histogram};
use crate::report::SeriesPoint;

/// The merged run's seconds: interval `i` starts `i` seconds after `start`.
pub(crate) struct Seconds {
    /// The earliest shard's start.
    pub(crate) start: SystemTime,
    /// Per second, every metric's merged histograms.
    pub(crate) intervals: Vec<IntervalHistograms>,
}

/// The earliest start of any shard: second 0 of the merged run.
pub(crate) fn origin(shards: &[Shard]) -> SystemTime {
    shards
        .iter()
        .map(|s| s.started)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The merged second an instant falls in: shards started at the same `--start-at` share
/// their seconds; without one, each shard's seconds go to the nearest merged second.
pub(crate) fn second_of(origin: SystemTime, at: SystemTime) -> usize {
    let offset = at.duration_since(origin).map_or(0.0, |d| d.as_secs_f64());
    offset.round() as usize
}

/// Adds every shard's log rows into the merged second they started in.
pub(crate) fn merge(shards: &[Shard], names: &[String]) -> Result<Seconds, MergeError> {
    let start = origin(shards);
    let mut slots: HashMap<String, (usize, bool)> = HashMap::new();
    for (i, m) in names.iter().enumerate() {
        slots.insert(tag(false, m), (i, false));
        slots.insert(tag(true, m), (i, true));
    }
    let mut intervals: Vec<IntervalHistograms> = Vec::new();
    for s in shards {
        let Some(log) = &s.log else { continue };
        for row in &log.rows {
            let t = row.tag.as_deref().unwrap_or("");
            let Some(&(metric, service)) = slots.get(t) else {
                return Err(MergeError::Inputs(vec![format!(
                    "{}: its interval log has rows tagged '{t}', which names no metric of the results",
                    s.file
                )]));
            };
            let k = second_of(start, log.base() + row.start);
            while intervals.len() <= k {
                let at = Duration::from_secs(intervals.len() as u64);
                intervals.push(IntervalHistograms::empty(at, Duration::ZERO, names.len()));
            }
            let iv = &mut intervals[k];
            iv.span = iv.span.max(row.span);
            iv.add(metric, service, &row.histogram);
        }
    }
    Ok(Seconds { start, intervals })
}

/// Sets each merged series point's p50/p99 (all metrics together, as a single run's series
/// has them) from the merged second it covers. `series[i]` is second `i`.
pub(crate) fn fill_series(series: &mut [SeriesPoint], seconds: &Seconds) {
    for (i, p) in series.iter_mut().enumerate() {
        let mut all: Option<Histogram<u64>> = None;
        for h in seconds
            .intervals
            .get(i)
            .into_iter()
            .flat_map(|iv| iv.latency.iter().flatten())
        {
            add_hist(all.get_or_insert_with(new_histogram), h);
        }
        let q = |q| all.as_ref().map(|h| h.value_at_quantile(q));
        (p.p50_us, p.p99_us) = (q(0.5), q(0.99));
    }
}
