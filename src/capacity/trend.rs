//! The steady-state test: does a step's latency rise across its measured window?
//!
//! A server past its capacity queues, and a queue that grows for the whole step shows as a
//! latency that climbs through it, even while the step's p99 is still within the SLO. Such a
//! step fails: run longer, it would break the SLO.
//!
//! The test: the step keeps its figures at the end of the warm-up and halfway through the
//! measured window, so the window splits into two halves with every sample in one of them
//! (HdrHistograms subtract exactly). The step is rising when the second half's median
//! latency (all metrics together) exceeds the first half's by more than a tenth of the
//! tightest latency SLO bound (at least 1 ms; without a latency SLO, by more than the first
//! half's own median, i.e. the latency doubled). Medians, not p99s: one scheduler hiccup on
//! a shared machine moves a p99 but hardly a median, while a growing queue moves every
//! percentile alike. Halves of the samples, not per-tick figures: at a few arrivals a
//! second a tick holds one or two samples, and its median is noise.

use hdrhistogram::Histogram;

pub use crate::report::capacity::Trend;
use crate::report::Results;

/// Fewest samples in each half for the test to judge; fewer is reported as not judged.
pub const MIN_SAMPLES: u64 = 20;

/// Smallest rise that counts, µs: below it is noise on any machine.
const FLOOR_US: f64 = 1_000.0;

/// Judges the halves: `start`, `mid` and `end` are the step's results at the end of the
/// warm-up, halfway through the window and at the end. `slo_us` is the tightest latency
/// SLO bound, if any. `None` when a half has fewer than [`MIN_SAMPLES`] samples or a
/// histogram does not decode.
pub fn judge(start: &Results, mid: &Results, end: &Results, slo_us: Option<f64>) -> Option<Trend> {
    let (a, b, c) = (merged(start)?, merged(mid)?, merged(end)?);
    let first = minus(&b, &a)?;
    let second = minus(&c, &b)?;
    judge_halves(&first, &second, slo_us)
}

/// Judges two halves' latency histograms (µs).
pub fn judge_halves(
    first: &Histogram<u64>,
    second: &Histogram<u64>,
    slo_us: Option<f64>,
) -> Option<Trend> {
    if first.len() < MIN_SAMPLES || second.len() < MIN_SAMPLES {
        return None;
    }
    let (f, s) = (
        first.value_at_quantile(0.5) as f64,
        second.value_at_quantile(0.5) as f64,
    );
    let limit = match slo_us {
        Some(bound) => (bound / 10.0).max(FLOOR_US),
        None => f.max(FLOOR_US),
    };
    Some(Trend {
        samples: [first.len(), second.len()],
        first_half_us: f,
        second_half_us: s,
        limit_us: limit,
        rising: s - f > limit,
    })
}

/// Every metric's latency histogram added together.
fn merged(r: &Results) -> Option<Histogram<u64>> {
    let mut all = crate::metrics::new_histogram();
    for m in r.metrics.values() {
        all.add(m.latency.histogram().ok()?).ok()?;
    }
    Some(all)
}

fn minus(a: &Histogram<u64>, b: &Histogram<u64>) -> Option<Histogram<u64>> {
    let mut d = a.clone();
    d.subtract(b).ok()?;
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(ms: &[(f64, u64)]) -> Histogram<u64> {
        let mut h = crate::metrics::new_histogram();
        for &(v, n) in ms {
            h.record_n((v * 1000.0) as u64, n).unwrap();
        }
        h
    }

    #[test]
    fn a_flat_window_is_steady_even_with_spikes() {
        let first = hist(&[(3.0, 95), (40.0, 5)]);
        let second = hist(&[(3.1, 90), (400.0, 10)]);
        let t = judge_halves(&first, &second, Some(50_000.0)).unwrap();
        assert!(!t.rising, "{t:?}");
        assert_eq!(t.samples, [100, 100]);
        assert_eq!(t.limit_us, 5_000.0);
    }

    #[test]
    fn a_growing_queue_rises_while_still_within_the_slo() {
        // Latency climbing from 3 ms to 23 ms through the window: every sample is under a
        // 50 ms SLO, but the queue grows.
        let first = hist(&[(3.0, 25), (5.5, 25), (8.0, 25), (10.5, 25)]);
        let second = hist(&[(13.0, 25), (15.5, 25), (18.0, 25), (20.5, 25)]);
        let t = judge_halves(&first, &second, Some(50_000.0)).unwrap();
        assert!(t.rising, "{t:?}");
    }

    #[test]
    fn the_limit_has_a_floor_and_follows_the_level_without_a_latency_slo() {
        // A tight SLO (2 ms) would make 0.5 ms of jitter a trend: the floor is 1 ms.
        let t = judge_halves(&hist(&[(0.3, 50)]), &hist(&[(0.8, 50)]), Some(2_000.0)).unwrap();
        assert_eq!(t.limit_us, 1_000.0);
        assert!(!t.rising, "{t:?}");
        // No latency SLO: rising means the latency more than doubled.
        let t = judge_halves(&hist(&[(10.0, 50)]), &hist(&[(25.0, 50)]), None).unwrap();
        assert!(t.rising, "{t:?}");
        let t = judge_halves(&hist(&[(10.0, 50)]), &hist(&[(15.0, 50)]), None).unwrap();
        assert!(!t.rising, "{t:?}");
    }

    #[test]
    fn too_few_samples_are_not_judged() {
        let few = hist(&[(1.0, MIN_SAMPLES - 1)]);
        let many = hist(&[(100.0, 500)]);
        assert_eq!(judge_halves(&few, &many, None), None);
        assert_eq!(judge_halves(&many, &few, None), None);
    }
}
