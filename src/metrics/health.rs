//! Generator health: process CPU from `getrusage`, and the judgement whether squall
//! itself was the bottleneck (then latencies partly measure the generator).

use std::time::Instant;

/// CPU share of the available cores at or above which a tick counts as busy.
pub const CPU_BUSY_FRACTION: f64 = 0.9;
/// Seconds of consecutive busy ticks before the generator counts as saturated.
pub const CPU_BUSY_SECS: f64 = 3.0;
/// Scheduling-lag p99 above which the generator counts as saturated, µs (10 ms).
pub const LAG_P99_LIMIT_US: u64 = 10_000;

/// Measures this process's CPU use between calls.
#[derive(Debug)]
pub struct CpuSampler {
    last_cpu_us: Option<u64>,
    last_wall: Instant,
}

impl Default for CpuSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// User + system CPU time of the whole process so far, µs.
fn process_cpu_us() -> Option<u64> {
    // SAFETY: getrusage only writes into the zeroed struct we pass; RUSAGE_SELF is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return None;
    }
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Some(us(ru.ru_utime) + us(ru.ru_stime))
}

impl CpuSampler {
    /// Starts measuring now.
    pub fn new() -> Self {
        CpuSampler {
            last_cpu_us: process_cpu_us(),
            last_wall: Instant::now(),
        }
    }

    /// Process CPU since the previous sample (or `new`), in cores: 2.0 means two cores
    /// were busy the whole time. `None` when `getrusage` fails or no time has passed.
    pub fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        let cpu = process_cpu_us();
        let wall = now.duration_since(self.last_wall).as_secs_f64();
        let prev = std::mem::replace(&mut self.last_cpu_us, cpu);
        self.last_wall = now;
        let used = cpu?.checked_sub(prev?)?;
        (wall > 0.0).then(|| used as f64 / 1e6 / wall)
    }
}

/// Cores this process may use (`available_parallelism`, at least 1).
pub fn available_cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// Whether a run saturated the generator: CPU ≥ 90% of `cores` for ≥ 3 s at a stretch
/// (`cpu` holds `(t, cores used)` per tick), or scheduling-lag p99 above 10 ms.
pub fn generator_saturated(cpu: &[(f64, Option<f64>)], cores: f64, lag_p99_us: u64) -> bool {
    let mut w = SaturationWatch::new(cores);
    for &(t, c) in cpu {
        w.observe(t, c, None);
    }
    w.cpu_saturated() || lag_p99_us > LAG_P99_LIMIT_US
}

/// Follows ticks as they come and raises each kind of warning once, while the run goes.
#[derive(Debug, Clone)]
pub struct SaturationWatch {
    cores: f64,
    last_t: f64,
    busy_since: Option<f64>,
    cpu_saturated: bool,
    lag_warned: bool,
    warnings: Vec<String>,
}

impl SaturationWatch {
    /// A watch for a generator with `cores` cores available.
    pub fn new(cores: f64) -> Self {
        SaturationWatch {
            cores,
            last_t: 0.0,
            busy_since: None,
            cpu_saturated: false,
            lag_warned: false,
            warnings: Vec::new(),
        }
    }

    /// Cores the judgement is relative to.
    pub fn cores(&self) -> f64 {
        self.cores
    }

    /// One tick ending at `t` seconds with the interval's CPU (cores) and lag p99 (µs).
    /// Returns a warning when one is raised now.
    pub fn observe(&mut self, t: f64, cpu: Option<f64>, lag_p99_us: Option<u64>) -> Option<String> {
        let start = std::mem::replace(&mut self.last_t, t);
        let mut raised = None;
        match cpu {
            Some(c) if c >= CPU_BUSY_FRACTION * self.cores => {
                let since = *self.busy_since.get_or_insert(start);
                if t - since >= CPU_BUSY_SECS - 1e-9 && !self.cpu_saturated {
                    self.cpu_saturated = true;
                    raised = Some(format!(
                        "generator CPU at {c:.2} of {:.0} cores since t={since:.0}s: \
                         latencies may measure squall, not the target",
                        self.cores
                    ));
                }
            }
            _ => self.busy_since = None,
        }
        if let Some(lag) = lag_p99_us.filter(|&l| l > LAG_P99_LIMIT_US) {
            if !self.lag_warned && raised.is_none() {
                self.lag_warned = true;
                raised = Some(format!(
                    "scheduling lag p99 {} at t={t:.0}s: the generator is overloaded",
                    crate::report::fmt_us(lag as f64)
                ));
            }
        }
        if let Some(w) = &raised {
            self.warnings.push(w.clone());
        }
        raised
    }

    /// Whether CPU stayed busy for at least [`CPU_BUSY_SECS`] at some point.
    pub fn cpu_saturated(&self) -> bool {
        self.cpu_saturated
    }

    /// Every warning raised so far.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_for_three_seconds_saturates() {
        let busy = |ts: &[f64]| ts.iter().map(|&t| (t, Some(1.9))).collect::<Vec<_>>();
        assert!(!generator_saturated(&busy(&[1.0, 2.0]), 2.0, 0));
        assert!(generator_saturated(&busy(&[1.0, 2.0, 3.0]), 2.0, 0));
        let broken = vec![
            (1.0, Some(1.9)),
            (2.0, Some(0.5)),
            (3.0, Some(1.9)),
            (4.0, Some(1.9)),
        ];
        assert!(!generator_saturated(&broken, 2.0, 0));
        assert!(generator_saturated(&[], 2.0, 10_001));
        assert!(!generator_saturated(&[], 2.0, 10_000));
    }

    #[test]
    fn warns_once_per_kind() {
        let mut w = SaturationWatch::new(2.0);
        assert!(w.observe(1.0, Some(1.0), Some(20_000)).is_some());
        assert!(w.observe(2.0, Some(1.0), Some(20_000)).is_none());
        for t in 3..6 {
            w.observe(t as f64, Some(2.0), None);
        }
        assert_eq!(w.warnings().len(), 2);
        assert!(w.warnings()[1].contains("CPU"));
    }

    #[test]
    fn sampler_reports_cores() {
        let mut s = CpuSampler::new();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 30 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let c = s.sample().expect("getrusage works on Linux");
        assert!(c > 0.0 && c < 64.0, "{c}");
    }
}
