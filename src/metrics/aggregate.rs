//! The [`Aggregate`]: merges worker [`Snapshot`]s exactly into run totals, the open
//! interval and the per-tick series, and builds [`Results`] from them.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::flows::{DeliveryTally, UploadTally};
use super::health::{available_cores, SaturationWatch, LAG_P99_LIMIT_US};
use super::kinds::{KindDelta, MAX_KINDS, NONE_KIND, OTHER_KIND};
use super::recorder::{Snapshot, Tally};
use super::violations::ViolationTally;
use super::{add_hist, new_histogram, ErrorKind};
use crate::report::results::{
    Counters, DeliveryResult, Health, KindCount, LoadReached, MetricResult, Results, RunMeta,
    SeriesPoint, Status, Summary, UploadResult, Violations, RESULTS_VERSION,
};

/// What happened since the last tick.
#[derive(Debug)]
struct Interval {
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    errors: u64,
    violations: u64,
    arrivals: u64,
    /// All latency metrics together, for the series percentiles.
    latency: Histogram<u64>,
    lag: Histogram<u64>,
}

impl Interval {
    fn new() -> Self {
        Interval {
            frames_in: 0,
            frames_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            errors: 0,
            violations: 0,
            arrivals: 0,
            latency: new_histogram(),
            lag: new_histogram(),
        }
    }
}

/// The single place snapshots meet: run totals, gauges per worker, and the series.
///
/// Lives on one thread (the aggregator); workers send it [`Snapshot`]s over a channel.
#[derive(Debug)]
pub struct Aggregate {
    names: Vec<String>,
    latency: Vec<Histogram<u64>>,
    service: Vec<Histogram<u64>>,
    connect: Histogram<u64>,
    lag: Histogram<u64>,
    /// All latency metrics together since the start, for live progress.
    all_latency: Histogram<u64>,
    counters: Counters,
    iterations_ok: u64,
    iterations_failed: u64,
    iterations_started: u64,
    iterations_cut: u64,
    /// Latest (active connections, active VUs) per worker id.
    gauges: BTreeMap<u64, (i64, i64)>,
    peak_vus: u64,
    peak_connections: u64,
    peak_arrival_rate: Option<f64>,
    open: Interval,
    last_tick: Duration,
    series: Vec<SeriesPoint>,
    watch: SaturationWatch,
    warnings_drained: usize,
    violations: ViolationTally,
    /// `Some` when the scenario tracks delivery: the latency metric's name, if it has one.
    delivery_metric: Option<Option<String>>,
    delivery: DeliveryTally,
    uploads: Vec<UploadTally>,
}

fn add_kinds(into: &mut BTreeMap<String, KindCount>, deltas: Vec<KindDelta>) {
    for d in deltas {
        // Each worker caps its kinds; the union of the workers' must stay capped too.
        let buckets = [NONE_KIND, OTHER_KIND].map(|b| into.contains_key(b) as usize);
        let named = into.len() - buckets[0] - buckets[1];
        let full = named >= MAX_KINDS && d.name != NONE_KIND && !into.contains_key(&d.name);
        let name = if full { OTHER_KIND.to_string() } else { d.name };
        let k = into.entry(name).or_default();
        k.frames += d.frames;
        k.bytes += d.bytes;
    }
}

fn per_sec(n: u64, dt: f64) -> f64 {
    if dt > 0.0 {
        n as f64 / dt
    } else {
        0.0
    }
}

impl Aggregate {
    /// An empty aggregate for the metrics named in `metric_names` (indexed by `MetricId`).
    /// Saturation is judged against the cores this process may use.
    pub fn new(metric_names: Vec<String>) -> Self {
        let n = metric_names.len();
        Aggregate {
            names: metric_names,
            latency: (0..n).map(|_| new_histogram()).collect(),
            service: (0..n).map(|_| new_histogram()).collect(),
            connect: new_histogram(),
            lag: new_histogram(),
            all_latency: new_histogram(),
            counters: Counters::default(),
            iterations_ok: 0,
            iterations_failed: 0,
            iterations_started: 0,
            iterations_cut: 0,
            gauges: BTreeMap::new(),
            peak_vus: 0,
            peak_connections: 0,
            peak_arrival_rate: None,
            open: Interval::new(),
            last_tick: Duration::ZERO,
            series: Vec::new(),
            watch: SaturationWatch::new(available_cores()),
            warnings_drained: 0,
            violations: ViolationTally::default(),
            delivery_metric: None,
            delivery: DeliveryTally::default(),
            uploads: vec![UploadTally::default(); n],
        }
    }

    /// Reports a `delivery` section (even when nothing was tracked), naming its latency
    /// metric if it has one.
    pub fn track_delivery(&mut self, metric: Option<String>) {
        self.delivery_metric = Some(metric);
    }

    /// Judges CPU saturation against `cores` instead of the detected count (e.g. a
    /// container quota). Call before the first tick.
    pub fn set_cores(&mut self, cores: f64) {
        self.watch = SaturationWatch::new(cores);
    }

    /// Notes an arrival rate the open model reached; the peak goes into the results. Ticks
    /// note the measured rate of each interval themselves.
    pub fn note_arrival_rate(&mut self, per_s: f64) {
        let peak = self.peak_arrival_rate.get_or_insert(per_s);
        *peak = peak.max(per_s);
    }

    /// Merges one snapshot into the totals and the open interval; its gauges replace the
    /// previous ones of the same worker.
    pub fn add(&mut self, s: Snapshot) {
        self.add_histograms(&s);
        let t = &s.tally;
        let c = &mut self.counters;
        c.connections.opened += t.opened;
        for (cause, n) in &t.failed {
            c.connections.failed += n;
            *c.connections
                .failed_by_cause
                .entry(cause.as_cause())
                .or_default() += n;
            *c.errors_by_kind.entry(cause.as_error_kind()).or_default() += n;
        }
        for (cause, details) in &t.failed_samples {
            let kept = c.connections.failed_samples.entry(cause.as_cause());
            let kept = kept.or_default();
            for d in details {
                super::recorder::note_sample(kept, d);
            }
        }
        for (code, n) in &t.closed {
            c.connections.closed += n;
            let key = code.map_or_else(|| "none".to_string(), |c| c.to_string());
            *c.connections.closed_by_code.entry(key).or_default() += n;
        }
        for kind in ErrorKind::ALL {
            let n = t.errors[kind.index()];
            if n > 0 {
                *c.errors_by_kind
                    .entry(kind.as_str().to_string())
                    .or_default() += n;
            }
        }
        let errors = t.error_count();
        c.errors += errors;
        c.ops += t.ops;
        c.missed += t.missed;
        self.iterations_ok += t.iterations_ok;
        self.iterations_failed += t.iterations_failed;
        self.add_ends(t);
        self.open.arrivals += t.arrivals;
        self.open.errors += errors;
        self.open.violations += s.violations.total();
        self.violations.merge(s.violations);
        self.delivery.add(&s.delivery);
        for (dst, u) in self.uploads.iter_mut().zip(&s.uploads) {
            dst.add(u);
        }
        self.add_frames(s.kinds_in, s.kinds_out);
        self.gauges
            .insert(s.worker, (s.active_connections, s.active_vus));
        self.peak_connections = self.peak_connections.max(self.active_connections());
        self.peak_vus = self.peak_vus.max(self.active_vus());
    }

    /// What the hard stop cut or left open, and what became of the requests.
    fn add_ends(&mut self, t: &Tally) {
        self.iterations_started += t.iterations_started;
        self.iterations_cut += t.iterations_cut;
        let c = &mut self.counters;
        c.connections.open_at_stop += t.abandoned;
        let (r, d) = (&mut c.requests, &t.requests);
        r.sent += d.sent;
        r.replies += d.replies;
        r.timeouts += d.timeouts;
        r.unanswered += d.unanswered;
    }

    fn add_histograms(&mut self, s: &Snapshot) {
        for (i, h) in s.latency.iter().enumerate() {
            if let (Some(h), Some(dst)) = (h, self.latency.get_mut(i)) {
                add_hist(dst, h);
                add_hist(&mut self.all_latency, h);
                add_hist(&mut self.open.latency, h);
            }
        }
        for (i, h) in s.service.iter().enumerate() {
            if let (Some(h), Some(dst)) = (h, self.service.get_mut(i)) {
                add_hist(dst, h);
            }
        }
        if let Some(h) = &s.connect {
            add_hist(&mut self.connect, h);
        }
        if let Some(h) = &s.lag {
            add_hist(&mut self.lag, h);
            add_hist(&mut self.open.lag, h);
        }
    }

    fn add_frames(&mut self, kinds_in: Vec<KindDelta>, kinds_out: Vec<KindDelta>) {
        let sum = |d: &[KindDelta]| {
            d.iter()
                .fold((0, 0), |a, k| (a.0 + k.frames, a.1 + k.bytes))
        };
        let (fi, bi) = sum(&kinds_in);
        let (fo, bo) = sum(&kinds_out);
        let c = &mut self.counters;
        (c.frames_in, c.bytes_in, c.frames_out, c.bytes_out) = (
            c.frames_in + fi,
            c.bytes_in + bi,
            c.frames_out + fo,
            c.bytes_out + bo,
        );
        let o = &mut self.open;
        (o.frames_in, o.bytes_in, o.frames_out, o.bytes_out) = (
            o.frames_in + fi,
            o.bytes_in + bi,
            o.frames_out + fo,
            o.bytes_out + bo,
        );
        add_kinds(&mut c.kinds_in, kinds_in);
        add_kinds(&mut c.kinds_out, kinds_out);
    }

    /// Closes the open interval at `t` since the start, with the generator's CPU over it
    /// (cores), appends the series point and returns it. Warnings raised by this tick are
    /// available from [`drain_warnings`](Self::drain_warnings).
    pub fn tick(&mut self, t: Duration, cpu: Option<f64>) -> &SeriesPoint {
        let dt = t.saturating_sub(self.last_tick).as_secs_f64();
        self.last_tick = t;
        let open = std::mem::replace(&mut self.open, Interval::new());
        // A short interval (the last, partial one) would overstate the rate.
        if open.arrivals > 0 && dt >= 0.5 {
            self.note_arrival_rate(open.arrivals as f64 / dt);
        }
        let pct = |h: &Histogram<u64>, q| (!h.is_empty()).then(|| h.value_at_quantile(q));
        self.watch
            .observe(t.as_secs_f64(), cpu, pct(&open.lag, 0.99));
        self.series.push(SeriesPoint {
            t: t.as_secs_f64(),
            msgs_in: per_sec(open.frames_in, dt),
            msgs_out: per_sec(open.frames_out, dt),
            bytes_in: per_sec(open.bytes_in, dt),
            bytes_out: per_sec(open.bytes_out, dt),
            active_connections: self.active_connections(),
            active_vus: self.active_vus(),
            errors: open.errors,
            violations: open.violations,
            p50_us: pct(&open.latency, 0.5),
            p99_us: pct(&open.latency, 0.99),
            cpu,
        });
        self.series.last().expect("just pushed")
    }

    /// Warnings raised since the previous call, for printing while the run goes.
    pub fn drain_warnings(&mut self) -> Vec<String> {
        let w = self.watch.warnings()[self.warnings_drained..].to_vec();
        self.warnings_drained = self.watch.warnings().len();
        w
    }

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
        let metrics = self
            .names
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
            .collect();
        Results {
            version: RESULTS_VERSION,
            status,
            status_reason: None,
            meta,
            load: LoadReached {
                peak_vus: self.peak_vus,
                peak_connections: self.peak_connections,
                peak_arrival_rate: self.peak_arrival_rate,
                iterations_ok: self.iterations_ok,
                iterations_failed: self.iterations_failed,
                iterations_started: self.iterations_started,
                iterations_cut: self.iterations_cut,
            },
            metrics,
            connect: Summary::from_histogram(&self.connect),
            counters: self.counters.clone(),
            series: self.series.clone(),
            violations: Violations::from_tally(&self.violations),
            thresholds: Vec::new(),
            health: self.health(),
            delivery: self
                .delivery_metric
                .as_ref()
                .map(|metric| DeliveryResult::from_tally(&self.delivery, metric.clone())),
            uploads: self
                .names
                .iter()
                .zip(&self.uploads)
                .filter(|(_, u)| !u.is_empty())
                .map(|(name, u)| (name.clone(), UploadResult::from_tally(u)))
                .collect(),
        }
    }

    /// Protocol violations so far.
    pub fn violations(&self) -> u64 {
        self.violations.total()
    }

    fn health(&self) -> Health {
        let cpus: Vec<f64> = self.series.iter().filter_map(|p| p.cpu).collect();
        let cpu_mean = (!cpus.is_empty()).then(|| cpus.iter().sum::<f64>() / cpus.len() as f64);
        let cpu_peak = cpus.iter().copied().reduce(f64::max);
        let (lag_p99_us, lag_max_us) = if self.lag.is_empty() {
            (0, 0)
        } else {
            (self.lag.value_at_quantile(0.99), self.lag.max())
        };
        Health {
            generator_saturated: self.watch.cpu_saturated() || lag_p99_us > LAG_P99_LIMIT_US,
            cpu_mean,
            cpu_peak,
            cores: self.watch.cores(),
            lag_p99_us,
            lag_max_us,
            warnings: self.watch.warnings().to_vec(),
        }
    }
}
