//! The swarm: worker threads running VUs by the plan's load model, and the controller that
//! merges their metrics every tick, watches for a dead target, and stops them in order.

mod burst;
pub mod connect;
pub mod delivery;
pub mod frame;
mod io;
pub mod matcher;
mod pace;
pub mod samples;
pub mod schedule;
pub mod source;
mod timer;
mod upload;
mod vu;
mod waits;
mod wall;
mod worker;

pub use io::Checker;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::metrics::health::{open_fds, CpuSampler};
use crate::metrics::Aggregate;
use crate::protocol::Profile;
use crate::report::Status;
use crate::scenario::plan::Plan;
use samples::SampleLog;

/// Options of one swarm run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads (each a current-thread runtime). Default: available cores.
    pub threads: usize,
    /// Metrics merge interval. Default 1 s.
    pub tick: Duration,
    /// Consecutive ticks with failed and no successful connections, while none is open,
    /// after which the target counts as dead and the run is aborted. Default 2.
    pub dead_ticks: u32,
    /// The protocol profile every frame is checked against (`None`: no checking).
    pub profile: Option<Arc<Profile>>,
    /// How far in the future an inbound frame's timestamp may be (the profile's `clock`).
    /// Default 1 s.
    pub clock_skew: Duration,
    /// Every latency sample also goes here (`squall run --samples FILE`). Default none.
    pub samples: Option<Arc<SampleLog>>,
    /// The part of the plan this process runs (`--shard I/N`). Default all of it.
    pub shard: schedule::Shard,
    /// The source addresses connections bind, in turn (`--source-ip`). Default none: the
    /// kernel picks.
    pub sources: Option<Arc<source::Sources>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tick: Duration::from_secs(1),
            dead_ticks: 2,
            profile: None,
            clock_skew: Duration::from_secs(1),
            samples: None,
            shard: schedule::Shard::default(),
            sources: None,
        }
    }
}

/// A request from outside the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Ctrl-C or SIGTERM: the first stops scheduling and drains; the second stops at once.
    Interrupt,
}

/// Sees the merged metrics as the series grows (live progress, results written as the run
/// goes).
pub trait Observer {
    /// Called with the elapsed time since the start whenever one or more seconds of the
    /// series became final (every worker reported past them), and once at the end.
    fn on_tick(&mut self, agg: &mut Aggregate, elapsed: Duration);

    /// Called when a stop is asked for from outside (Ctrl-C, SIGTERM): `Some(grace)` for
    /// the first (no new iterations; running ones get up to `grace` to finish), `None` for
    /// the next, which stops at once.
    fn on_interrupt(&mut self, _grace: Option<Duration>) {}
}

/// How a run ended.
pub struct Outcome {
    /// Everything measured.
    pub aggregate: Aggregate,
    /// Complete, interrupted or aborted.
    pub status: Status,
    /// Why, when not complete.
    pub reason: Option<String>,
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// How long it ran.
    pub elapsed: Duration,
    /// Worker threads used.
    pub threads: usize,
}

/// Runs `plan` to the end, or until interrupted or the target dies.
pub async fn run(
    plan: Arc<Plan>,
    opts: RunOptions,
    control: mpsc::UnboundedReceiver<Control>,
    observer: &mut dyn Observer,
) -> Outcome {
    run_keeping(plan, opts, control, observer, false).await
}

/// [`run`], with every sealed second's per-metric histograms kept for the observer to take
/// ([`Aggregate::drain_intervals`]) when `keep_intervals`.
pub async fn run_keeping(
    plan: Arc<Plan>,
    opts: RunOptions,
    mut control: mpsc::UnboundedReceiver<Control>,
    observer: &mut dyn Observer,
    keep_intervals: bool,
) -> Outcome {
    let threads = opts.threads.max(1);
    let (graceful_tx, graceful_rx) = watch::channel(false);
    let (hard_tx, hard_rx) = watch::channel(false);
    let (snap_tx, mut snap_rx) = mpsc::unbounded_channel();
    let started_at = SystemTime::now();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(threads);
    let mut started = Vec::with_capacity(threads);
    for idx in 0..threads {
        let spec = worker::WorkerSpec {
            idx,
            workers: threads,
            shard: opts.shard,
            plan: plan.clone(),
            start,
            tick: opts.tick,
            signals: worker::Signals {
                graceful: graceful_rx.clone(),
                hard: hard_rx.clone(),
            },
            snapshots: snap_tx.clone(),
            profile: opts.profile.clone(),
            clock_skew: opts.clock_skew,
            samples: opts.samples.clone(),
            sources: opts.sources.clone(),
        };
        let h = std::thread::Builder::new()
            .name(format!("squall-worker-{idx}"))
            .spawn(move || worker::run(spec));
        match h {
            Ok(h) => {
                handles.push(h);
                started.push(idx as u64);
            }
            Err(e) => eprintln!("squall: could not start worker thread {idx}: {e}"),
        }
    }
    // Workers hold the only senders now: the channel closes when the last one exits.
    drop(snap_tx);

    let mut agg = Aggregate::new(plan.metrics.clone());
    agg.name_behaviours(plan.behaviours.iter().map(|b| b.name.clone()).collect());
    // The series waits for every worker's bucket before it shows a second.
    agg.set_tick(opts.tick);
    if keep_intervals {
        agg.keep_intervals();
    }
    agg.expect_workers(started);
    if let Some(d) = &plan.delivery {
        agg.track_delivery(d.metric.map(|m| plan.metrics[m.0 as usize].clone()));
    }
    let mut cpu = CpuSampler::new();
    let mut status = Status::Complete;
    let mut reason = None;
    let planned = plan.load.duration();
    let mut grace_until: Option<Instant> = None;
    let mut ticks = 1u32;
    let mut dead = DeadTarget::default();
    let mut dead_target = false;
    let mut control_open = true;
    let stop_soft = |grace: &mut Option<Instant>| {
        if grace.is_none() {
            let _ = graceful_tx.send(true);
            *grace = Some(Instant::now() + plan.graceful_stop);
        }
    };
    loop {
        let next_tick = start + opts.tick * ticks;
        let hard_at = grace_until.unwrap_or(next_tick + Duration::from_secs(3600));
        tokio::select! {
            snap = snap_rx.recv() => match snap {
                Some(s) => {
                    agg.add(s);
                    // A second is shown once every worker has reported past it.
                    if agg.seal_ready() > 0 {
                        observer.on_tick(&mut agg, start.elapsed());
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(next_tick.into()) => {
                ticks += 1;
                let elapsed = start.elapsed();
                sample_own(&mut agg, &mut cpu);
                if dead.observe(&agg, opts.dead_ticks) && status == Status::Complete {
                    status = Status::Aborted;
                    dead_target = true;
                    let _ = graceful_tx.send(true);
                    let _ = hard_tx.send(true);
                }
                if elapsed >= planned {
                    stop_soft(&mut grace_until);
                }
            }
            _ = tokio::time::sleep_until(hard_at.into()), if grace_until.is_some() => {
                let _ = hard_tx.send(true);
                grace_until = None;
            }
            c = control.recv(), if control_open => match c {
                Some(Control::Interrupt) if status == Status::Complete => {
                    status = Status::Interrupted;
                    // The status already says "interrupted": the reason says by what.
                    reason = Some("Ctrl-C or SIGTERM".into());
                    stop_soft(&mut grace_until);
                    observer.on_interrupt(Some(plan.graceful_stop));
                }
                Some(Control::Interrupt) => {
                    let _ = hard_tx.send(true);
                    observer.on_interrupt(None);
                }
                None => control_open = false,
            },
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if let Some(s) = &opts.samples {
        if let Err(e) = s.flush() {
            eprintln!("squall: could not write the samples file: {e}");
        }
    }
    let elapsed = start.elapsed();
    sample_own(&mut agg, &mut cpu);
    agg.finish(elapsed);
    observer.on_tick(&mut agg, elapsed);
    if dead_target {
        // Written from the final counts, so the reason and the counters agree.
        reason = Some(format!(
            "target unreachable: connections keep failing and none is open ({} failed in all)",
            agg.connections_failed()
        ));
    }
    Outcome {
        aggregate: agg,
        status,
        reason,
        started_at,
        elapsed,
        threads,
    }
}

/// The aggregator thread's own CPU (workers report theirs) and the open files.
fn sample_own(agg: &mut Aggregate, cpu: &mut CpuSampler) {
    if let Some((us, _)) = cpu.sample_us() {
        agg.add_cpu_us(us);
    }
    if let Some((open, limit)) = open_fds() {
        agg.note_fds(open, limit);
    }
}

/// Tells a dead target from a slow one: ticks in a row where connection attempts failed,
/// none succeeded, and none is open.
#[derive(Default)]
struct DeadTarget {
    failed: u64,
    opened: u64,
    streak: u32,
}

impl DeadTarget {
    fn observe(&mut self, agg: &Aggregate, limit: u32) -> bool {
        let (failed, opened) = (agg.connections_failed(), agg.connections_opened());
        let dead = failed > self.failed && opened == self.opened && agg.active_connections() == 0;
        self.streak = if dead { self.streak + 1 } else { 0 };
        self.failed = failed;
        self.opened = opened;
        self.streak >= limit
    }
}
