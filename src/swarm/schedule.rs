//! The load shape as arithmetic: how many VUs a worker should run now (closed model), and
//! when the k-th arrival is due (open model). Each worker computes its own share from the
//! plan and a common start instant, so no coordinator sits between them.

use std::time::Duration;

use crate::scenario::plan::LoadPlan;

/// Worker `idx`'s share of `total` VUs spread over `n` workers.
pub fn share(total: u64, idx: usize, n: usize) -> u64 {
    let n = n as u64;
    let idx = idx as u64;
    total / n + u64::from(idx < total % n)
}

/// When arrival number `k` (0-based) is due: the time at which the integral of the arrival
/// rate reaches `k + 1`. `None` when the stages end first.
pub fn arrival_time(load: &LoadPlan, k: u64) -> Option<Duration> {
    let want = (k + 1) as f64;
    let mut done = 0.0; // arrivals due before the current stage
    let mut from = 0.0; // rate at the start of the current stage
    let mut start = 0.0; // seconds
    for s in &load.stages {
        let d = s.duration.as_secs_f64();
        let to = s.target;
        let area = (from + to) / 2.0 * d;
        if d > 0.0 && done + area >= want {
            // Solve from·τ + (to−from)·τ²/(2d) = want − done for τ in [0, d].
            let need = want - done;
            let a = (to - from) / (2.0 * d);
            let tau = if a.abs() < 1e-12 {
                need / from
            } else {
                let disc = (from * from + 4.0 * a * need).max(0.0);
                (-from + disc.sqrt()) / (2.0 * a)
            };
            return Some(Duration::from_secs_f64(start + tau.clamp(0.0, d)));
        }
        done += area;
        from = to;
        start += d;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::plan::{LoadModel, Stage};

    fn plan(stages: &[(u64, f64)]) -> LoadPlan {
        LoadPlan {
            model: LoadModel::Open { max_vus: 10 },
            stages: stages
                .iter()
                .map(|&(ms, target)| Stage {
                    duration: Duration::from_millis(ms),
                    target,
                })
                .collect(),
        }
    }

    #[test]
    fn shares_add_up() {
        for total in 0..20 {
            let sum: u64 = (0..3).map(|i| share(total, i, 3)).sum();
            assert_eq!(sum, total);
        }
        assert_eq!(share(5, 0, 2), 3);
        assert_eq!(share(5, 1, 2), 2);
    }

    #[test]
    fn constant_rate_arrivals_are_evenly_spaced() {
        // A zero-length stage jumps to 10/s, then holds for 2 s: 20 arrivals at 0.1 s steps.
        let p = plan(&[(0, 10.0), (2000, 10.0)]);
        let t: Vec<f64> = (0..20)
            .map(|k| arrival_time(&p, k).unwrap().as_secs_f64())
            .collect();
        for (k, x) in t.iter().enumerate() {
            assert!((x - 0.1 * (k + 1) as f64).abs() < 1e-9, "{k}: {x}");
        }
        assert_eq!(arrival_time(&p, 20), None);
    }

    #[test]
    fn ramp_arrivals_follow_the_integral() {
        // 0 → 20/s over 2 s: 20 arrivals in all; the k-th at sqrt((k+1)/5).
        let p = plan(&[(2000, 20.0)]);
        for k in 0..20 {
            let t = arrival_time(&p, k).unwrap().as_secs_f64();
            let exact = ((k + 1) as f64 / 5.0).sqrt();
            assert!((t - exact).abs() < 1e-9, "{k}: {t} vs {exact}");
        }
        assert_eq!(arrival_time(&p, 20), None);
    }
}
