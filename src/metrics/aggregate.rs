//! The [`Aggregate`]: merges worker [`Snapshot`]s exactly into run totals and a per-second
//! series, and builds [`Results`] from them.
//!
//! The series is bucketed by when events happened, not by when their snapshot arrived:
//! each worker tags its snapshot with the bucket (tick index since the start) its events
//! were recorded in, and a bucket becomes a series point only once every worker has
//! reported past it ([`seal_ready`](Aggregate::seal_ready)) or the run ended
//! ([`finish`](Aggregate::finish)). So the series adds up to the totals exactly, and a
//! snapshot that arrives a moment after the aggregator's timer no longer reads as one
//! second at 0 and the next doubled.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::flows::{DeliveryTally, UploadTally};
use super::health::{available_cores, FdWatch, SaturationWatch, Stall};
use super::interval_log::IntervalHistograms;
use super::kinds::{KindDelta, MAX_KINDS, NONE_KIND, OTHER_KIND};
use super::snapshot::{note_sample, Snapshot, Tally, ERROR_SAMPLES};
use super::violations::ViolationTally;
use super::{add_hist, new_histogram, ErrorKind};
use crate::results::{Counters, KindCount, SeriesPoint};

mod readout;

/// What happened in one series bucket.
#[derive(Debug)]
struct Interval {
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    errors: u64,
    violations: u64,
    arrivals: u64,
    missed: u64,
    stalls: u64,
    longest_stall_us: u64,
    /// CPU time of squall's own threads in the bucket, µs; `None` when none reported it.
    cpu_us: Option<u64>,
    /// All latency metrics together, for the series percentiles.
    latency: Histogram<u64>,
    lag: Histogram<u64>,
    /// Per metric, for the interval log (only when the aggregate keeps intervals).
    metrics: Option<IntervalHistograms>,
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
            missed: 0,
            stalls: 0,
            longest_stall_us: 0,
            cpu_us: None,
            latency: new_histogram(),
            lag: new_histogram(),
            metrics: None,
        }
    }

    /// Nothing counted in it and no stall seen (CPU and small lateness aside).
    fn is_quiet(&self) -> bool {
        let counts = self.frames_in + self.frames_out + self.errors + self.violations;
        counts + self.arrivals + self.missed + self.stalls == 0 && self.latency.is_empty()
    }

    fn add_cpu(&mut self, us: u64) {
        *self.cpu_us.get_or_insert(0) += us;
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
    /// Iterations begun per behaviour, by the plan's index.
    started_by_behaviour: Vec<u64>,
    /// The plan's behaviour names, for `load.iterations_by_behaviour`.
    behaviour_names: Vec<String>,
    iterations_cut: u64,
    /// Latest (active connections, active VUs) per worker id.
    gauges: BTreeMap<u64, (i64, i64)>,
    peak_vus: u64,
    peak_connections: u64,
    peak_arrival_rate: Option<f64>,
    /// Series buckets not yet sealed, by tick index since the start.
    buckets: BTreeMap<u32, Interval>,
    /// Index of the next point to seal.
    next_point: u32,
    /// End of the last sealed point, since the start.
    last_end: Duration,
    /// Length of one bucket (the tick).
    tick_len: Duration,
    /// Per worker id, the first bucket it may still add to (`u32::MAX`: it is done).
    watermarks: BTreeMap<u64, u32>,
    series: Vec<SeriesPoint>,
    watch: SaturationWatch,
    send_late: Histogram<u64>,
    stall: Stall,
    fds: FdWatch,
    warnings_drained: usize,
    violations: ViolationTally,
    /// Whether results report delivery, and under which latency metric.
    delivery_report: DeliveryReport,
    delivery: DeliveryTally,
    uploads: Vec<UploadTally>,
    /// Whether sealed seconds keep their per-metric histograms for the interval log.
    keep_intervals: bool,
    /// Sealed seconds' per-metric histograms not yet taken by [`Aggregate::drain_intervals`].
    sealed: Vec<IntervalHistograms>,
}

/// Whether the results carry a `delivery` section.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DeliveryReport {
    /// The scenario tracks no delivery: no section.
    Off,
    /// A section (even when nothing was tracked), with the latency metric's name if the
    /// scenario measures one.
    On {
        /// The latency metric (receipt − send time).
        metric: Option<String>,
    },
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

/// Adds a snapshot's connection attempts, failures (by cause, with their first details)
/// and closes (by code) to `c`.
fn add_connections(c: &mut Counters, t: &Tally) {
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
            note_sample(kept, d);
        }
    }
    for (code, n) in &t.closed {
        c.connections.closed += n;
        let key = code.map_or_else(|| "none".to_string(), |c| c.to_string());
        *c.connections.closed_by_code.entry(key).or_default() += n;
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
            started_by_behaviour: Vec::new(),
            behaviour_names: Vec::new(),
            iterations_cut: 0,
            gauges: BTreeMap::new(),
            peak_vus: 0,
            peak_connections: 0,
            peak_arrival_rate: None,
            buckets: BTreeMap::new(),
            next_point: 0,
            last_end: Duration::ZERO,
            tick_len: Duration::from_secs(1),
            watermarks: BTreeMap::new(),
            series: Vec::new(),
            watch: SaturationWatch::new(available_cores()),
            send_late: new_histogram(),
            stall: Stall::default(),
            fds: FdWatch::default(),
            warnings_drained: 0,
            violations: ViolationTally::default(),
            delivery_report: DeliveryReport::Off,
            delivery: DeliveryTally::default(),
            uploads: vec![UploadTally::default(); n],
            keep_intervals: false,
            sealed: Vec::new(),
        }
    }

    /// Keeps every sealed second's per-metric latency and service histograms until
    /// [`drain_intervals`](Self::drain_intervals) takes them (for the interval log). Off by
    /// default: kept and never drained, they would grow with the run.
    pub fn keep_intervals(&mut self) {
        self.keep_intervals = true;
    }

    /// The per-metric histograms of the seconds sealed since the previous call, in order
    /// (empty unless [`keep_intervals`](Self::keep_intervals) was called).
    pub fn drain_intervals(&mut self) -> Vec<IntervalHistograms> {
        std::mem::take(&mut self.sealed)
    }

    /// Reports a `delivery` section (even when nothing was tracked), naming its latency
    /// metric if it has one.
    pub fn track_delivery(&mut self, metric: Option<String>) {
        self.delivery_report = DeliveryReport::On { metric };
    }

    /// Names the plan's behaviours, so results count iterations begun per behaviour.
    pub fn name_behaviours(&mut self, names: Vec<String>) {
        self.behaviour_names = names;
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

    /// Sets the length of one series bucket (the workers' tick). Call before adding.
    pub fn set_tick(&mut self, tick: Duration) {
        if !tick.is_zero() {
            self.tick_len = tick;
        }
    }

    /// Names the workers whose bucketed snapshots [`seal_ready`](Self::seal_ready) waits
    /// for. A worker not named here is not waited for.
    pub fn expect_workers(&mut self, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            self.watermarks.entry(id).or_insert(0);
        }
    }

    /// The open bucket a snapshot's events go to: its own, or for an untagged one (and
    /// for one whose bucket is already sealed) the earliest still open.
    fn bucket_for(&mut self, s: &Snapshot) -> &mut Interval {
        let k = s.second.map_or(self.next_point, |k| k.max(self.next_point));
        self.buckets.entry(k).or_insert_with(Interval::new)
    }

    /// Merges one snapshot into the totals and its series bucket; its gauges replace the
    /// previous ones of the same worker.
    pub fn add(&mut self, s: Snapshot) {
        if s.second.is_some() {
            let w = self.watermarks.entry(s.worker).or_insert(0);
            *w = (*w).max(s.upto);
        }
        self.add_bucket(&s);
        self.add_histograms(&s);
        let t = &s.tally;
        add_connections(&mut self.counters, t);
        let c = &mut self.counters;
        for (kind, sample) in &t.error_samples {
            let kept = c
                .error_samples
                .entry(kind.as_str().to_string())
                .or_default();
            // The earliest few of every worker's first few.
            kept.push(sample.clone());
            kept.sort_by(|a, b| a.t.total_cmp(&b.t));
            kept.truncate(ERROR_SAMPLES);
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
        if self.started_by_behaviour.len() < t.started_by_behaviour.len() {
            self.started_by_behaviour
                .resize(t.started_by_behaviour.len(), 0);
        }
        for (dst, n) in self
            .started_by_behaviour
            .iter_mut()
            .zip(&t.started_by_behaviour)
        {
            *dst += n;
        }
        self.iterations_cut += t.iterations_cut;
        let c = &mut self.counters;
        c.connections.open_at_stop += t.abandoned;
        let (r, d) = (&mut c.requests, &t.requests);
        r.sent += d.sent;
        r.replies += d.replies;
        r.timeouts += d.timeouts;
        r.unanswered += d.unanswered;
    }

    /// The snapshot's share of the series: its counts, latencies, lateness and CPU.
    fn add_bucket(&mut self, s: &Snapshot) {
        let sum = |d: &[KindDelta]| {
            d.iter()
                .fold((0, 0), |a, k| (a.0 + k.frames, a.1 + k.bytes))
        };
        let ((fi, bi), (fo, bo)) = (sum(&s.kinds_in), sum(&s.kinds_out));
        let (keep, n) = (self.keep_intervals, self.names.len());
        let b = self.bucket_for(s);
        (b.frames_in, b.bytes_in, b.frames_out, b.bytes_out) = (
            b.frames_in + fi,
            b.bytes_in + bi,
            b.frames_out + fo,
            b.bytes_out + bo,
        );
        b.errors += s.tally.error_count();
        b.violations += s.violations.total();
        b.arrivals += s.tally.arrivals;
        b.missed += s.tally.missed;
        b.stalls += s.tally.stalls;
        b.longest_stall_us = b.longest_stall_us.max(s.tally.longest_stall_us);
        if let Some(us) = s.cpu_us {
            b.add_cpu(us);
        }
        for h in s.latency.iter().flatten() {
            add_hist(&mut b.latency, h);
        }
        if let Some(h) = &s.lag {
            add_hist(&mut b.lag, h);
        }
        if keep {
            let per = b.metrics.get_or_insert_with(|| {
                IntervalHistograms::empty(Duration::ZERO, Duration::ZERO, n)
            });
            for (service, hs) in [(false, &s.latency), (true, &s.service)] {
                for (i, h) in hs.iter().enumerate() {
                    if let Some(h) = h {
                        per.add(i, service, h);
                    }
                }
            }
        }
    }

    fn add_histograms(&mut self, s: &Snapshot) {
        for (i, h) in s.latency.iter().enumerate() {
            if let (Some(h), Some(dst)) = (h, self.latency.get_mut(i)) {
                add_hist(dst, h);
                add_hist(&mut self.all_latency, h);
            }
        }
        if let Some(h) = &s.send_late {
            add_hist(&mut self.send_late, h);
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
        add_kinds(&mut c.kinds_in, kinds_in);
        add_kinds(&mut c.kinds_out, kinds_out);
    }

    /// Seals the earliest open bucket as a point ending at `t` since the start, with the
    /// generator's CPU over it (cores; `None`: what the workers reported), and returns it.
    /// For callers that merge untagged snapshots ([`Recorder::take`]) on their own clock;
    /// a swarm uses [`seal_ready`](Self::seal_ready) and [`finish`](Self::finish).
    /// Warnings raised by this are available from [`drain_warnings`](Self::drain_warnings).
    ///
    /// [`Recorder::take`]: super::Recorder::take
    pub fn tick(&mut self, t: Duration, cpu: Option<f64>) -> &SeriesPoint {
        self.seal(t, cpu);
        self.series.last().expect("just sealed")
    }

    /// Seals every bucket all expected workers have reported past, each as a full tick.
    /// Returns how many points were added.
    pub fn seal_ready(&mut self) -> usize {
        let Some(&upto) = self.watermarks.values().min() else {
            return 0;
        };
        // Every worker is done: the rest, with the real length of the last one, is
        // `finish`'s.
        if upto == u32::MAX {
            return 0;
        }
        let before = self.series.len();
        while self.next_point < upto {
            let end = self.tick_len * (self.next_point + 1);
            self.seal(end, None);
        }
        self.series.len() - before
    }

    /// Seals whatever is left at the end of the run, `elapsed` since the start: the last
    /// point covers only the part of its tick that ran (its `span_s`). A trailing bucket
    /// with nothing counted in it that is shorter than a tenth of a tick is left out (its
    /// CPU time too): a sliver of shutdown would otherwise read as a false dip.
    pub fn finish(&mut self, elapsed: Duration) {
        let tick = self.tick_len.as_nanos().max(1);
        // The bucket holding the instant `elapsed` (the one before, on a boundary).
        let at_end = (elapsed.as_nanos().saturating_sub(1) / tick).min(u32::MAX as u128 - 1);
        let last = self
            .buckets
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(at_end as u32);
        while self.next_point <= last {
            let k = self.next_point;
            let full = self.tick_len * (k + 1);
            let end = if k == last {
                elapsed.max(self.tick_len * k)
            } else {
                full
            };
            let empty = self.buckets.get(&k).is_none_or(Interval::is_quiet);
            if k == last && empty && (end - self.last_end.min(end)) < self.tick_len / 10 {
                break;
            }
            self.seal(end, None);
        }
    }

    /// Adds CPU time the aggregator's own thread used, µs, to the earliest open bucket.
    pub fn add_cpu_us(&mut self, us: u64) {
        let k = self.next_point;
        self.buckets
            .entry(k)
            .or_insert_with(Interval::new)
            .add_cpu(us);
    }

    /// Notes the open-file count (a lower bound, µs-cheap to read) against the limit.
    pub fn note_fds(&mut self, open: u64, limit: u64) {
        self.fds.note(open, limit);
    }

    /// Turns bucket `next_point` into a point ending at `end`.
    fn seal(&mut self, end: Duration, cpu: Option<f64>) {
        let k = self.next_point;
        self.next_point = k.saturating_add(1);
        let mut open = self.buckets.remove(&k).unwrap_or_else(Interval::new);
        let span = end.saturating_sub(self.last_end);
        if self.keep_intervals {
            let n = self.names.len();
            let mut per = open
                .metrics
                .take()
                .unwrap_or_else(|| IntervalHistograms::empty(Duration::ZERO, Duration::ZERO, n));
            (per.start, per.span) = (self.last_end, span);
            self.sealed.push(per);
        }
        self.last_end = end.max(self.last_end);
        let dt = span.as_secs_f64();
        let t = end.as_secs_f64();
        // A short interval (the last, partial one) would overstate the rate.
        if open.arrivals > 0 && dt >= 0.5 {
            self.note_arrival_rate(open.arrivals as f64 / dt);
        }
        let cpu = cpu.or_else(|| {
            open.cpu_us
                .filter(|_| dt > 0.0)
                .map(|us| us as f64 / 1e6 / dt)
        });
        let pct = |h: &Histogram<u64>, q| (!h.is_empty()).then(|| h.value_at_quantile(q));
        let lag_max = (!open.lag.is_empty()).then(|| open.lag.max());
        self.stall
            .observe(open.stalls, open.longest_stall_us, t - dt);
        // A sliver (the last, partial second) is too short to judge CPU or lateness by:
        // a few ms of shutdown work would read as a busy core.
        let judged = span >= self.tick_len / 2;
        if judged {
            self.watch.observe(t, cpu, pct(&open.lag, 0.99));
        }
        if let Some(w) = self.stall.warning() {
            self.watch.warn(w);
        }
        self.series.push(SeriesPoint {
            t,
            span_s: dt,
            msgs_in: per_sec(open.frames_in, dt),
            msgs_out: per_sec(open.frames_out, dt),
            bytes_in: per_sec(open.bytes_in, dt),
            bytes_out: per_sec(open.bytes_out, dt),
            frames_in: open.frames_in,
            frames_out: open.frames_out,
            samples: open.latency.len(),
            missed: open.missed,
            active_connections: self.active_connections(),
            active_vus: self.active_vus(),
            errors: open.errors,
            violations: open.violations,
            p50_us: pct(&open.latency, 0.5),
            p99_us: pct(&open.latency, 0.99),
            lag_max_us: lag_max,
            cpu,
        });
    }

    /// Warnings raised since the previous call, for printing while the run goes.
    pub fn drain_warnings(&mut self) -> Vec<String> {
        let w = self.watch.warnings()[self.warnings_drained..].to_vec();
        self.warnings_drained = self.watch.warnings().len();
        w
    }
}
