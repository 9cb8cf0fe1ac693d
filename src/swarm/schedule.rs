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

/// Which part of the plan this process runs: shard `index` (1-based) of `count`. The
/// shards together run exactly the plan: the closed model's VUs are shared out (the
/// remainder one each to the first shards), the open model's arrivals dealt round-robin,
/// and VU numbers are unique across all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    /// At least 1.
    pub count: u32,
}

impl Default for Shard {
    /// The whole plan: shard 1 of 1.
    fn default() -> Self {
        Shard { index: 1, count: 1 }
    }
}

impl Shard {
    fn slot(self) -> u64 {
        u64::from(self.index.max(1) - 1)
    }

    fn n(self) -> u64 {
        u64::from(self.count.max(1))
    }

    /// Worker `idx` (of `workers` in this shard)'s part of a plan level of `total` VUs (or
    /// of the open model's `max_vus`).
    pub fn worker_share(self, total: u64, idx: usize, workers: usize) -> u64 {
        let mine = share(total, self.slot() as usize, self.n() as usize);
        share(mine, idx, workers)
    }

    /// The number (`{{vu}}`, 1-based) of the `local`-th VU (0-based) worker `idx` of
    /// `workers` starts: unique across workers and shards.
    pub fn vu_number(self, idx: usize, workers: usize, local: u64) -> u64 {
        let in_shard = idx as u64 + local * workers as u64;
        self.slot() + 1 + in_shard * self.n()
    }

    /// The plan's arrivals worker `idx` of `workers` starts: the first (0-based arrival
    /// number) and the step to the next.
    pub fn arrivals(self, idx: usize, workers: usize) -> (u64, u64) {
        (
            self.slot() + idx as u64 * self.n(),
            self.n() * workers.max(1) as u64,
        )
    }
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

    /// Odd VU counts over every shard count up to 16 and a few worker counts: the shares
    /// add up to the plan, differ by at most one, and every VU number is used once.
    #[test]
    fn shards_together_run_exactly_the_planned_vus() {
        for n in 1..=16u32 {
            for total in [1u64, 3, 7, 15, 17, 99, 1001] {
                let mut numbers = std::collections::HashSet::new();
                let mut sum = 0;
                let mut shares = Vec::new();
                for i in 1..=n {
                    let shard = Shard { index: i, count: n };
                    let workers = 1 + (i as usize % 3);
                    let mine: u64 = (0..workers)
                        .map(|w| shard.worker_share(total, w, workers))
                        .sum();
                    shares.push(mine);
                    sum += mine;
                    for w in 0..workers {
                        for local in 0..shard.worker_share(total, w, workers) {
                            let vu = shard.vu_number(w, workers, local);
                            assert!(numbers.insert(vu), "vu {vu} twice ({i}/{n})");
                        }
                    }
                }
                assert_eq!(sum, total, "{total} VUs over {n} shards");
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(hi - lo <= 1, "{total} over {n}: {shares:?}");
                if n == 1 {
                    assert_eq!(
                        numbers,
                        (1..=total).collect(),
                        "one shard numbers 1..=total"
                    );
                }
            }
        }
    }

    /// Odd rates over every shard count up to 16: each planned arrival is started by
    /// exactly one worker of one shard.
    #[test]
    fn shards_together_start_exactly_the_planned_arrivals() {
        for n in 1..=16u32 {
            for rate in [1.0, 3.0, 7.0, 13.0, 101.0] {
                let p = plan(&[(1000, rate), (3000, rate)]);
                let planned = (0..).take_while(|&k| arrival_time(&p, k).is_some()).count();
                let mut seen = vec![0u32; planned];
                for i in 1..=n {
                    let shard = Shard { index: i, count: n };
                    let workers = 1 + (i as usize % 4);
                    for w in 0..workers {
                        let (mut k, step) = shard.arrivals(w, workers);
                        while arrival_time(&p, k).is_some() {
                            seen[k as usize] += 1;
                            k += step;
                        }
                    }
                }
                assert!(
                    seen.iter().all(|&c| c == 1),
                    "rate {rate} over {n}: {seen:?}"
                );
            }
        }
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
