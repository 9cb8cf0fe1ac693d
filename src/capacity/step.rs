//! One step of a capacity search: the scenario held at one rate (its arrivals, or its
//! connections' pace) through the ordinary swarm, and its figures over the window after the
//! warm-up.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use serde::{Deserialize, Serialize};

use super::knob::Knob;
use super::steady::{steady, window};
use super::trend;
use crate::check::verdict;
use crate::metrics::{Aggregate, ErrorKind};
use crate::report::capacity::{Percentiles, Point, Step, Verdict};
use crate::report::{Results, RunMeta, Status, Summary};
use crate::run::{self, RunArgs};
use crate::scenario::plan::Plan;
use crate::scenario::thresholds::Threshold;
use crate::swarm::{self, Control, Observer, RunOptions};

/// What a step runs with.
pub struct StepConfig<'a> {
    /// The total rate driven, per second (arrivals, or all connections' paced requests).
    pub rate: f64,
    /// The start of the step left out of its figures.
    pub warmup: Duration,
    /// The whole step, warm-up included.
    pub step: Duration,
    /// Swarm options (threads, profile, tick, shard).
    pub opts: RunOptions,
    /// The SLOs.
    pub slo: &'a [Threshold],
    /// The tightest latency SLO bound, µs.
    pub slo_us: Option<f64>,
    /// The command line, for the results' metadata.
    pub args: &'a RunArgs,
    /// The rate the search drives.
    pub knob: Knob,
}

/// A step that ran: its whole results (thresholds: the SLOs over the measured window) and
/// its entry in the `capacity` block.
pub struct Ran {
    /// Results of the whole step.
    pub results: Results,
    /// The judged step.
    pub step: Step,
}

/// What a step measured, before it is judged: its results at the end, at the first tick
/// past the warm-up and at the first past the middle of the measured window. A shard
/// process writes its own; the search adds the shards' together and judges the sum.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    /// The whole step.
    pub whole: Results,
    /// At the end of the warm-up; `None` when the step ended before it.
    pub at_warmup: Option<Results>,
    /// Halfway through the measured window; `None` when the step ended before it.
    pub at_middle: Option<Results>,
    /// Every tick's latency, all metrics together (kept by a shard process, whose series
    /// percentiles cannot be added; empty otherwise).
    #[serde(default)]
    pub ticks: Vec<Summary>,
}

/// Runs one step of `base` at `cfg.rate` and judges it. Ctrl-C on `control` is passed to
/// the swarm.
pub async fn run(
    base: &Plan,
    cfg: &StepConfig<'_>,
    started_s: f64,
    control: &mut mpsc::UnboundedReceiver<Control>,
    view: &mut dyn FnMut(&Aggregate, Duration),
) -> Ran {
    let plan = std::sync::Arc::new(cfg.knob.plan(base, cfg.rate, cfg.step));
    let measured = measure(plan.clone(), cfg, control, view, false).await;
    conclude(&plan, cfg, measured, started_s)
}

/// Runs `plan` (one step, its rate set) through the swarm, keeping its figures at the
/// marks, and each tick's latency histogram when `keep_ticks`.
pub async fn measure(
    plan: std::sync::Arc<Plan>,
    cfg: &StepConfig<'_>,
    control: &mut mpsc::UnboundedReceiver<Control>,
    view: &mut dyn FnMut(&Aggregate, Duration),
    keep_ticks: bool,
) -> Measured {
    let started = SystemTime::now();
    let measured = cfg.step.saturating_sub(cfg.warmup);
    let mut watch = Watch {
        marks: [cfg.warmup, cfg.warmup + measured / 2],
        kept: Vec::new(),
        ticks: Vec::new(),
        meta: run::meta(&plan, cfg.args, started, cfg.opts.threads),
        view,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let outcome = {
        let swarm = swarm::run_keeping(plan.clone(), cfg.opts.clone(), rx, &mut watch, keep_ticks);
        tokio::pin!(swarm);
        loop {
            tokio::select! {
                out = &mut swarm => break out,
                Some(c) = control.recv() => { let _ = tx.send(c); }
            }
        }
    };
    let mut kept = std::mem::take(&mut watch.kept).into_iter();
    let (at_warmup, at_middle) = (kept.next(), kept.next());
    let mut meta = run::meta(&plan, cfg.args, outcome.started_at, outcome.threads);
    meta.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    meta.duration_s = outcome.elapsed.as_secs_f64();
    let mut whole = outcome.aggregate.results(meta, outcome.status);
    for (name, t) in plan.metrics.iter().zip(run::timing::metric_timing(&plan)) {
        if let (Some(m), Some(t)) = (whole.metrics.get_mut(name), t) {
            m.timing = t;
        }
    }
    whole.status_reason = outcome.reason;
    Measured {
        whole,
        at_warmup,
        at_middle,
        ticks: watch.ticks,
    }
}

/// Judges a step from what it measured (one process's, or the shards' added up): its
/// figures over the measured window, the SLOs on them, the steady-state test.
pub fn conclude(plan: &Plan, cfg: &StepConfig<'_>, m: Measured, started_s: f64) -> Ran {
    let mut results = m.whole;
    if results.status == Status::Complete {
        if let Some(why) = run::measured_nothing(&results, plan) {
            results.status = Status::Aborted;
            results.status_reason = Some(why);
        }
    }
    let measured = cfg.step.saturating_sub(cfg.warmup);
    let window = window(&results.series, cfg.warmup, measured);
    let steady = steady(&results, m.at_warmup.as_ref(), measured);
    results.thresholds = verdict::evaluate(cfg.slo, &steady);
    let trend = match (&m.at_warmup, &m.at_middle) {
        (Some(w), Some(mid)) => trend::judge(w, mid, &results, cfg.slo_us),
        _ => None,
    };
    let step = judge(cfg, &results, &steady, &window, trend, started_s);
    Ran { results, step }
}

/// Keeps the figures at the first tick past each mark (the end of the warm-up, the middle
/// of the measured window), each tick's latency when the swarm keeps intervals, and feeds
/// the live view.
struct Watch<'a> {
    marks: [Duration; 2],
    kept: Vec<Results>,
    ticks: Vec<Summary>,
    meta: RunMeta,
    view: &'a mut dyn FnMut(&Aggregate, Duration),
}

impl Observer for Watch<'_> {
    fn on_tick(&mut self, agg: &mut Aggregate, elapsed: Duration) {
        while self
            .marks
            .get(self.kept.len())
            .is_some_and(|&mark| elapsed >= mark)
        {
            self.kept
                .push(agg.results(self.meta.clone(), Status::Running));
        }
        for iv in agg.drain_intervals() {
            let mut all = crate::metrics::new_histogram();
            for h in iv.latency.iter().flatten() {
                let _ = all.add(h);
            }
            self.ticks.push(Summary::from_histogram(&all));
        }
        (self.view)(agg, elapsed);
    }
}

fn percentiles(s: &Summary) -> Percentiles {
    Percentiles {
        count: s.count,
        p50: s.p50,
        p90: s.p90,
        p99: s.p99,
        p99_9: s.p99_9,
        max: s.max,
    }
}

/// Good only when every SLO held, latency was steady, every request was answered and
/// every connection opened; not judged at all when the target or the generator failed.
fn judge(
    cfg: &StepConfig<'_>,
    whole: &Results,
    steady: &Results,
    window: &[&crate::report::SeriesPoint],
    trend: Option<trend::Trend>,
    started_s: f64,
) -> Step {
    let span: f64 = window.iter().map(|p| p.span_s).sum();
    let samples: u64 = window.iter().map(|p| p.samples).sum();
    let c = &steady.counters;
    let mut step = Step {
        offered_rate: cfg.rate,
        achieved_rate: if span > 0.0 {
            samples as f64 / span
        } else {
            0.0
        },
        started_s,
        measured_s: span,
        verdict: Verdict::Good,
        why: Vec::new(),
        metrics: steady
            .metrics
            .iter()
            .map(|(k, m)| (k.clone(), percentiles(&m.latency)))
            .collect::<BTreeMap<_, _>>(),
        slo: whole.thresholds.clone(),
        trend,
        requests: c.requests,
        errors: c.errors,
        connections_failed: c.connections.failed,
        connections_lost: [ErrorKind::Disconnected, ErrorKind::UnexpectedClose]
            .iter()
            .filter_map(|k| c.errors_by_kind.get(k.as_str()))
            .sum(),
        // The window's but its last tick, not the whole step's: an arrival due just as the
        // step stops is counted missed at the stop, and a worker that rolls its tick late
        // puts it in the window's last tick. Neither says anything about the rate, and a
        // generator that cannot keep up misses arrivals all through the window.
        missed: window
            .split_last()
            .map_or(0, |(_, before)| before.iter().map(|p| p.missed).sum()),
        health: whole.health.clone(),
        series: whole
            .series
            .iter()
            .map(|p| Point {
                t: p.t,
                p50_us: p.p50_us,
                p99_us: p.p99_us,
            })
            .collect(),
    };
    (step.verdict, step.why) = super::verdict::classify(whole, &step, &cfg.knob);
    step
}
