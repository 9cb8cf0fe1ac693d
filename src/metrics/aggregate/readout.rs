//! What the [`Aggregate`] reads out: running counts for the progress bar, and the
//! [`Results`] document for the run so far.

use std::collections::BTreeMap;

use super::{Aggregate, DeliveryReport};
use crate::metrics::health::{verdict, Judged};
use crate::results::{
    DeliveryResult, Health, LoadReached, MetricResult, Results, RunMeta, SeriesPoint, Status,
    Summary, UploadResult, Violations, RESULTS_VERSION,
};

impl Aggregate {
    /// Inbound frames so far.
    pub fn frames_in(&self) -> u64 {
        self.counters.frames_in
    }

    /// Outbound frames so far.
    pub fn frames_out(&self) -> u64 {
        self.counters.frames_out
    }

    /// Errors so far, connection failures included.
    pub fn errors(&self) -> u64 {
        self.counters.errors
    }

    /// Connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.counters.connections.opened
    }

    /// Connection attempts that failed so far.
    pub fn connections_failed(&self) -> u64 {
        self.counters.connections.failed
    }

    /// Open connections: the sum of every worker's latest gauge.
    pub fn active_connections(&self) -> u64 {
        self.gauges.values().map(|g| g.0).sum::<i64>().max(0) as u64
    }

    /// Running VUs: the sum of every worker's latest gauge.
    pub fn active_vus(&self) -> u64 {
        self.gauges.values().map(|g| g.1).sum::<i64>().max(0) as u64
    }

    /// 99th percentile latency over all metrics so far, µs; `None` before the first sample.
    pub fn p99_us(&self) -> Option<u64> {
        (!self.all_latency.is_empty()).then(|| self.all_latency.value_at_quantile(0.99))
    }

    /// The series so far.
    pub fn series(&self) -> &[SeriesPoint] {
        &self.series
    }

    /// The results document for the run so far, with `status`; thresholds are left empty
    /// for `check::verdict::evaluate` to fill.
    pub fn results(&self, meta: RunMeta, status: Status) -> Results {
        Results {
            version: RESULTS_VERSION,
            status,
            status_reason: None,
            meta,
            load: self.load_reached(),
            metrics: self.metric_results(),
            connect: Summary::from_histogram(&self.connect),
            counters: self.counters.clone(),
            series: self.series.clone(),
            violations: Violations::from_tally(&self.violations),
            thresholds: Vec::new(),
            health: self.health(),
            delivery: match &self.delivery_report {
                DeliveryReport::Off => None,
                DeliveryReport::On { metric } => {
                    Some(DeliveryResult::from_tally(&self.delivery, metric.clone()))
                }
            },
            uploads: self
                .names
                .iter()
                .zip(&self.uploads)
                .filter(|(_, u)| !u.is_empty())
                .map(|(name, u)| (name.clone(), UploadResult::from_tally(u)))
                .collect(),
            capacity: None,
            interval_log: None,
            shard: None,
            shards: Vec::new(),
        }
    }

    /// Each metric's latency and service time.
    fn metric_results(&self) -> BTreeMap<String, MetricResult> {
        self.names
            .iter()
            .zip(self.latency.iter().zip(&self.service))
            .map(|(name, (l, s))| {
                let m = MetricResult {
                    latency: Summary::from_histogram(l),
                    service: Summary::from_histogram(s),
                    timing: Default::default(),
                };
                (name.clone(), m)
            })
            .collect()
    }

    /// The load reached: peaks and iterations.
    fn load_reached(&self) -> LoadReached {
        LoadReached {
            peak_vus: self.peak_vus,
            peak_connections: self.peak_connections,
            peak_arrival_rate: self.peak_arrival_rate,
            iterations_ok: self.iterations_ok,
            iterations_failed: self.iterations_failed,
            iterations_started: self.iterations_started,
            iterations_cut: self.iterations_cut,
            iterations_by_behaviour: self
                .behaviour_names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let n = self.started_by_behaviour.get(i).copied().unwrap_or(0);
                    (name.clone(), n)
                })
                .collect(),
        }
    }

    /// Protocol violations so far.
    pub fn violations(&self) -> u64 {
        self.violations.total()
    }

    /// Whether the generator kept up: CPU, event-loop lag, stalls, late sends, files.
    fn health(&self) -> Health {
        // Mean over time (CPU seconds / seconds); the peak of points long enough to judge.
        let with_cpu = self.series.iter().filter_map(|p| Some((p.cpu?, p.span_s)));
        let (cpu_s, secs) = with_cpu
            .clone()
            .fold((0.0, 0.0), |a, (c, s)| (a.0 + c * s, a.1 + s));
        let cpu_mean = (secs > 0.0).then(|| cpu_s / secs);
        let half = self.tick_len.as_secs_f64() / 2.0;
        let cpu_peak = with_cpu
            .filter(|&(_, s)| s >= half)
            .map(|(c, _)| c)
            .reduce(f64::max);
        let (lag_p99_us, lag_max_us) = if self.lag.is_empty() {
            (0, 0)
        } else {
            (self.lag.value_at_quantile(0.99), self.lag.max())
        };
        let reasons = verdict(Judged {
            lag_p99_us,
            cpu_peak,
            stall: &self.stall,
            missed: self.counters.missed,
            fds: &self.fds,
            cpu_busy: self.watch.cpu_saturated(),
        });
        Health {
            generator_saturated: !reasons.is_empty(),
            reasons,
            cpu_mean,
            cpu_peak,
            cores: self.watch.cores(),
            lag_p99_us,
            lag_max_us,
            stalls: self.stall.count,
            longest_stall_us: self.stall.longest_us,
            longest_stall_at_s: self.stall.at_s,
            send_late_max_us: if self.send_late.is_empty() {
                0
            } else {
                self.send_late.max()
            },
            missed_sends: self.counters.missed,
            fd_peak: self.fds.peak,
            fd_limit: self.fds.limit,
            rss_peak_kib: crate::metrics::health::peak_rss_kib(),
            warnings: self.watch.warnings().to_vec(),
        }
    }
}
