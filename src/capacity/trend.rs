//! The steady-state test: does a step's latency rise across its measured window?
//!
//! A server past its capacity queues, and a queue that grows for the whole step shows as a
//! latency that climbs from tick to tick, even while the step's p99 is still within the
//! SLO. Such a step fails: run longer, it would break the SLO.
//!
//! The test: split the measured window's per-tick median latencies into a first and a
//! second half and compare the medians of the two halves. The step is rising when the
//! second exceeds the first by more than a tenth of the tightest latency SLO bound (at
//! least 1 ms; without a latency SLO, by more than the first half's own level, i.e. the
//! latency doubled). Medians, not p99s: a tick holds few samples at low rates and one
//! scheduler hiccup on a shared machine moves its p99 but not its median, while a growing
//! queue moves every percentile alike. Comparing halves, not a fitted slope, keeps one
//! noisy tick at either end from deciding.

pub use crate::report::capacity::Trend;

/// Fewest ticks the test judges from; a shorter window is reported as not judged.
pub const MIN_TICKS: usize = 4;

/// Smallest rise that counts, µs: below it is noise on any machine.
const FLOOR_US: f64 = 1_000.0;

/// Judges per-tick medians (`None`: a tick without samples, left out). `slo_us` is the
/// tightest latency SLO bound, if any. `None` when fewer than [`MIN_TICKS`] ticks had
/// samples.
pub fn judge(medians: &[Option<u64>], slo_us: Option<f64>) -> Option<Trend> {
    let v: Vec<f64> = medians.iter().flatten().map(|&us| us as f64).collect();
    if v.len() < MIN_TICKS {
        return None;
    }
    let (a, b) = v.split_at(v.len() / 2);
    // An odd count: the middle tick belongs to neither half.
    let b = if v.len() % 2 == 1 { &b[1..] } else { b };
    let (first, second) = (median(a), median(b));
    let limit = match slo_us {
        Some(bound) => (bound / 10.0).max(FLOOR_US),
        None => first.max(FLOOR_US),
    };
    Some(Trend {
        ticks: v.len(),
        first_half_us: first,
        second_half_us: second,
        limit_us: limit,
        rising: second - first > limit,
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[f64]) -> Vec<Option<u64>> {
        v.iter().map(|m| Some((m * 1000.0) as u64)).collect()
    }

    #[test]
    fn a_flat_window_is_steady_even_with_a_spike() {
        let t = judge(
            &ms(&[3.0, 3.1, 2.9, 40.0, 3.0, 3.2, 2.8, 3.1]),
            Some(50_000.0),
        )
        .unwrap();
        assert!(!t.rising, "{t:?}");
        assert_eq!(t.ticks, 8);
        assert_eq!(t.limit_us, 5_000.0);
    }

    #[test]
    fn a_growing_queue_rises_while_still_within_the_slo() {
        // 2.5 ms more each tick: every tick is under a 50 ms SLO, but the queue grows.
        let v: Vec<f64> = (0..8).map(|i| 3.0 + 2.5 * i as f64).collect();
        let t = judge(&ms(&v), Some(50_000.0)).unwrap();
        assert!(t.rising, "{t:?}");
        assert!(t.second_half_us > t.first_half_us + 5_000.0);
    }

    #[test]
    fn the_limit_has_a_floor_and_follows_the_level_without_a_latency_slo() {
        // A tight SLO (2 ms) would make 0.2 ms of jitter a trend: the floor is 1 ms.
        let t = judge(&ms(&[0.3, 0.4, 0.3, 0.9, 1.0, 0.8]), Some(2_000.0)).unwrap();
        assert_eq!(t.limit_us, 1_000.0);
        assert!(!t.rising, "{t:?}");
        // No latency SLO: rising means the latency more than doubled.
        let t = judge(&ms(&[10.0, 10.0, 10.0, 25.0, 25.0, 25.0]), None).unwrap();
        assert!(t.rising, "{t:?}");
        let t = judge(&ms(&[10.0, 10.0, 10.0, 15.0, 15.0, 15.0]), None).unwrap();
        assert!(!t.rising, "{t:?}");
    }

    #[test]
    fn too_few_ticks_are_not_judged_and_empty_ticks_are_skipped() {
        assert_eq!(judge(&ms(&[1.0, 2.0, 3.0]), None), None);
        let mut v = ms(&[1.0, 1.0, 1.0]);
        v.push(None);
        assert_eq!(judge(&v, None), None);
        // An odd count leaves the middle tick out.
        let t = judge(&ms(&[1.0, 1.0, 99.0, 1.0, 1.0]), None).unwrap();
        assert!(!t.rising, "{t:?}");
    }
}
