//! The run's controller: starts the worker threads, merges their snapshots every tick,
//! watches for a dead target, and stops the workers in order (graceful, then hard).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use super::{worker, Control, Observer, Outcome, RunOptions};
use crate::metrics::health::{open_fds, CpuSampler};
use crate::metrics::{Aggregate, Snapshot};
use crate::results::Status;
use crate::scenario::plan::Plan;

/// One run in progress, seen from the aggregator's side.
pub(super) struct Controller<'o> {
    plan: Arc<Plan>,
    opts: RunOptions,
    observer: &'o mut dyn Observer,
    threads: usize,
    started_at: SystemTime,
    start: Instant,
    handles: Vec<JoinHandle<()>>,
    snapshots: mpsc::UnboundedReceiver<Snapshot>,
    graceful: watch::Sender<bool>,
    hard: watch::Sender<bool>,
    agg: Aggregate,
    cpu: CpuSampler,
    status: Status,
    reason: Option<String>,
    /// When the graceful stop began: the hard stop follows at this instant.
    grace_until: Option<Instant>,
    /// Ticks run so far, counting from 1.
    ticks: u32,
    dead: DeadTarget,
    dead_target: bool,
}

impl<'o> Controller<'o> {
    /// Starts the worker threads and the aggregate that merges what they report.
    pub fn start(
        plan: Arc<Plan>,
        opts: RunOptions,
        observer: &'o mut dyn Observer,
        keep_intervals: bool,
    ) -> Self {
        let threads = opts.threads.max(1);
        let (graceful, graceful_rx) = watch::channel(false);
        let (hard, hard_rx) = watch::channel(false);
        let (snap_tx, snapshots) = mpsc::unbounded_channel();
        let started_at = SystemTime::now();
        let start = Instant::now();
        let signals = worker::Signals {
            graceful: graceful_rx,
            hard: hard_rx,
        };
        let (handles, started) = spawn_workers(&plan, &opts, threads, start, signals, snap_tx);
        let agg = aggregate(&plan, &opts, keep_intervals, started);
        Controller {
            plan,
            opts,
            observer,
            threads,
            started_at,
            start,
            handles,
            snapshots,
            graceful,
            hard,
            agg,
            cpu: CpuSampler::new(),
            status: Status::Complete,
            reason: None,
            grace_until: None,
            ticks: 1,
            dead: DeadTarget::default(),
            dead_target: false,
        }
    }

    /// Runs until every worker has exited, then merges the last figures.
    pub async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) -> Outcome {
        let mut control_open = true;
        loop {
            let next_tick = self.start + self.opts.tick * self.ticks;
            let hard_at = self
                .grace_until
                .unwrap_or(next_tick + Duration::from_secs(3600));
            tokio::select! {
                snap = self.snapshots.recv() => match snap {
                    Some(s) => self.on_snapshot(s),
                    None => break,
                },
                _ = tokio::time::sleep_until(next_tick.into()) => self.on_tick(),
                _ = tokio::time::sleep_until(hard_at.into()), if self.grace_until.is_some() => {
                    let _ = self.hard.send(true);
                    self.grace_until = None;
                }
                c = control.recv(), if control_open => match c {
                    Some(c) => self.on_control(c),
                    None => control_open = false,
                },
            }
        }
        self.finish()
    }

    fn on_snapshot(&mut self, s: Snapshot) {
        self.agg.add(s);
        // A second is shown once every worker has reported past it.
        if self.agg.seal_ready() > 0 {
            self.observer.on_tick(&mut self.agg, self.start.elapsed());
        }
    }

    fn on_tick(&mut self) {
        self.ticks += 1;
        let elapsed = self.start.elapsed();
        sample_own(&mut self.agg, &mut self.cpu);
        if self.dead.observe(&self.agg, self.opts.dead_ticks) && self.status == Status::Complete {
            self.status = Status::Aborted;
            self.dead_target = true;
            let _ = self.graceful.send(true);
            let _ = self.hard.send(true);
        }
        if elapsed >= self.plan.load.duration() {
            self.stop_soft();
        }
    }

    fn on_control(&mut self, c: Control) {
        match c {
            Control::Interrupt if self.status == Status::Complete => {
                self.status = Status::Interrupted;
                // The status already says "interrupted": the reason says by what.
                self.reason = Some("Ctrl-C or SIGTERM".into());
                self.stop_soft();
                self.observer.on_interrupt(Some(self.plan.graceful_stop));
            }
            Control::Interrupt => {
                let _ = self.hard.send(true);
                self.observer.on_interrupt(None);
            }
        }
    }

    /// Stops new iterations; running ones get the plan's `graceful_stop` to finish.
    fn stop_soft(&mut self) {
        if self.grace_until.is_none() {
            let _ = self.graceful.send(true);
            self.grace_until = Some(Instant::now() + self.plan.graceful_stop);
        }
    }

    fn finish(mut self) -> Outcome {
        for h in std::mem::take(&mut self.handles) {
            let _ = h.join();
        }
        if let Some(s) = &self.opts.samples {
            if let Err(e) = s.flush() {
                eprintln!("squall: could not write the samples file: {e}");
            }
        }
        let elapsed = self.start.elapsed();
        sample_own(&mut self.agg, &mut self.cpu);
        self.agg.finish(elapsed);
        self.observer.on_tick(&mut self.agg, elapsed);
        if self.dead_target {
            // Written from the final counts, so the reason and the counters agree.
            self.reason = Some(format!(
                "target unreachable: connections keep failing and none is open ({} failed in all)",
                self.agg.connections_failed()
            ));
        }
        Outcome {
            aggregate: self.agg,
            status: self.status,
            reason: self.reason,
            started_at: self.started_at,
            elapsed,
            threads: self.threads,
        }
    }
}

/// Starts one worker thread per index; a thread that cannot start is left out (and said).
/// Returns the handles and the indexes started.
fn spawn_workers(
    plan: &Arc<Plan>,
    opts: &RunOptions,
    threads: usize,
    start: Instant,
    signals: worker::Signals,
    snapshots: mpsc::UnboundedSender<Snapshot>,
) -> (Vec<JoinHandle<()>>, Vec<u64>) {
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
            signals: signals.clone(),
            snapshots: snapshots.clone(),
            profile: opts.profile.clone(),
            engine: opts.engine,
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
    // Workers hold the only senders once this returns: the channel closes when the last
    // one exits.
    (handles, started)
}

/// The aggregate for `plan`, expecting the workers `started`.
fn aggregate(plan: &Plan, opts: &RunOptions, keep_intervals: bool, started: Vec<u64>) -> Aggregate {
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
    agg
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
