//! A worker thread: one current-thread tokio runtime running its share of the VUs, with one
//! recorder they all write to without locks, handed to the aggregator on every tick.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, LocalSet};

use super::connect::Connecter;
use super::samples::SampleLog;
use super::schedule::{arrival_time, Shard};
use super::timer::Precise;
use super::vu::{Shared, Vu};
use crate::metrics::health::RunDelay;
use crate::metrics::{Recorder, Snapshot};
use crate::protocol::checker::Engine;
use crate::protocol::pointer::Shape;
use crate::protocol::Profile;
use crate::scenario::plan::{LoadModel, Plan};

/// How often a closed-model worker re-reads the VU target.
const CONTROL_TICK: Duration = Duration::from_millis(50);
/// How often the scheduling-lag probe wakes.
const LAG_PROBE: Duration = Duration::from_millis(10);

/// Signals from the controller to every worker.
#[derive(Clone)]
pub struct Signals {
    /// Stop starting work; let running iterations finish.
    pub graceful: watch::Receiver<bool>,
    /// Stop everything now.
    pub hard: watch::Receiver<bool>,
}

/// What one worker needs.
pub struct WorkerSpec {
    /// This worker's index.
    pub idx: usize,
    /// Number of workers.
    pub workers: usize,
    /// The part of the plan this process runs.
    pub shard: Shard,
    /// The plan.
    pub plan: Arc<Plan>,
    /// The common start of the run.
    pub start: Instant,
    /// Snapshot interval.
    pub tick: Duration,
    /// Controller signals.
    pub signals: Signals,
    /// Where snapshots go.
    pub snapshots: mpsc::UnboundedSender<Snapshot>,
    /// The profile frames are checked against, if any.
    pub profile: Option<Arc<Profile>>,
    /// How frames are judged against the profile.
    pub engine: Engine,
    /// How far in the future an inbound frame's timestamp may be.
    pub clock_skew: Duration,
    /// Where latency samples also go, if anywhere.
    pub samples: Option<Arc<SampleLog>>,
    /// The source addresses connections bind, if any.
    pub sources: Option<Arc<super::source::Sources>>,
}

/// Runs a worker to completion on the current thread.
pub fn run(spec: WorkerSpec) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("squall: worker {} could not start a runtime: {e}", spec.idx);
            // Say it is done, so the series does not wait for its seconds.
            let mut rec = Recorder::with_worker(spec.idx, &spec.plan.metrics);
            let _ = spec.snapshots.send(rec.last());
            return;
        }
    };
    let local = LocalSet::new();
    local.block_on(&rt, drive(spec));
}

async fn drive(spec: WorkerSpec) {
    let timer = Precise::new();
    let timer_task = timer.clone().map(|t| tokio::task::spawn_local(t.drive()));
    let rec = Rc::new(RefCell::new(Recorder::with_worker(
        spec.idx,
        &spec.plan.metrics,
    )));
    rec.borrow_mut().start_cpu();
    let shared = Rc::new(Shared {
        shape: Arc::new(Shape::new(&spec.plan.kind_pointers, &spec.plan.id_pointer)),
        plan: spec.plan.clone(),
        rec: rec.clone(),
        connecter: Connecter::new(&spec.plan.connect, &spec.plan.target)
            .with_sources(spec.sources.clone()),
        hard_stop: spec.signals.hard.clone(),
        profile: spec.profile.clone(),
        engine: spec.engine,
        start: spec.start,
        clock_skew: spec.clock_skew,
        tape: Default::default(),
        timer: timer.clone(),
        samples: spec.samples.clone(),
    });
    let ticker = tokio::task::spawn_local(tick_snapshots(
        rec.clone(),
        spec.start,
        spec.tick,
        spec.snapshots.clone(),
    ));
    let lateness = Probe::new();
    let probe = tokio::task::spawn_local(lag_probe(rec.clone(), lateness.clone()));
    let mut vus = Vus::default();
    match spec.plan.load.model {
        LoadModel::Closed => closed(&spec, &shared, &mut vus).await,
        LoadModel::Open { max_vus } => open(&spec, &shared, &mut vus, max_vus).await,
    }
    finish(&spec, &mut vus).await;
    ticker.abort();
    probe.abort();
    if let Some(t) = timer_task {
        t.abort();
    }
    // A probe that never got to run (the thread was busy throughout) is lateness too.
    if Instant::now() > lateness.due.get() {
        lateness.fire(&rec);
    }
    // The last words: everything recorded since the previous tick.
    let _ = spec.snapshots.send(rec.borrow_mut().last());
}

/// The VUs a worker runs: their stop flags and tasks.
#[derive(Default)]
struct Vus {
    running: Vec<(Rc<Cell<bool>>, JoinHandle<()>)>,
    next_local: u64,
}

impl Vus {
    fn reap(&mut self) {
        self.running.retain(|(_, h)| !h.is_finished());
    }
}

fn spawn_vu(shared: &Rc<Shared>, vu: u64, once: bool) -> (Rc<Cell<bool>>, JoinHandle<()>) {
    let stop = Rc::new(Cell::new(false));
    // The task's future is the VU's own: no wrapper holding a second copy of its state.
    let h = tokio::task::spawn_local(Vu::new(vu, shared.clone()).run(stop.clone(), once));
    (stop, h)
}

async fn closed(spec: &WorkerSpec, shared: &Rc<Shared>, vus: &mut Vus) {
    let total = spec.plan.load.duration();
    let mut graceful = spec.signals.graceful.clone();
    loop {
        let t = spec.start.elapsed();
        if t >= total || *graceful.borrow() {
            return;
        }
        vus.reap();
        let level = spec.plan.load.level_at(t).round().max(0.0) as u64;
        let want = spec.shard.worker_share(level, spec.idx, spec.workers) as usize;
        while vus.running.len() < want {
            // VU numbers are unique across workers and shards.
            let vu = spec.shard.vu_number(spec.idx, spec.workers, vus.next_local);
            vus.next_local += 1;
            vus.running.push(spawn_vu(shared, vu, false));
        }
        // Ramping down: the newest VUs finish their iteration and leave.
        let mut excess = vus
            .running
            .iter()
            .filter(|(s, _)| !s.get())
            .count()
            .saturating_sub(want);
        for (stop, _) in vus.running.iter().rev() {
            if excess == 0 {
                break;
            }
            if !stop.get() {
                stop.set(true);
                excess -= 1;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CONTROL_TICK) => {}
            _ = graceful.changed() => {}
        }
    }
}

async fn open(spec: &WorkerSpec, shared: &Rc<Shared>, vus: &mut Vus, max_vus: u32) {
    let cap = spec
        .shard
        .worker_share(u64::from(max_vus), spec.idx, spec.workers)
        .max(1) as usize;
    let mut graceful = spec.signals.graceful.clone();
    // Arrivals are dealt round-robin over every worker of every shard.
    let (mut k, step) = spec.shard.arrivals(spec.idx, spec.workers);
    while let Some(due) = arrival_time(&spec.plan.load, k) {
        let at = spec.start + due;
        tokio::select! {
            // Biased: an arrival due by the time the stop is seen is handled, not raced.
            biased;
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = graceful.wait_for(|g| *g) => {
                // Arrivals whose time had come when the stop did: counted, never lost.
                let now = spec.start.elapsed();
                let mut late = 0;
                while arrival_time(&spec.plan.load, k).is_some_and(|due| due <= now) {
                    late += 1;
                    k += step;
                }
                shared.rec.borrow_mut().missed(late);
                return;
            }
        }
        vus.reap();
        if vus.running.len() < cap {
            shared.rec.borrow_mut().arrival();
            vus.running.push(spawn_vu(shared, k + 1, true));
        } else {
            // The arrival could not start: every slot was busy. Counted, never hidden.
            shared.rec.borrow_mut().missed(1);
        }
        k += step;
    }
    // Let the last arrivals run until the planned end.
    let end = spec.start + spec.plan.load.duration();
    tokio::select! {
        _ = tokio::time::sleep_until(end.into()) => {}
        _ = graceful.wait_for(|g| *g) => {}
    }
}

/// End of load: every VU finishes its iteration; when the controller gives up waiting
/// (grace period over, or a second Ctrl-C) it raises `hard` and they close at once.
async fn finish(spec: &WorkerSpec, vus: &mut Vus) {
    for (stop, _) in &vus.running {
        stop.set(true);
    }
    let mut hard = spec.signals.hard.clone();
    let cancel: Vec<_> = vus.running.iter().map(|(_, h)| h.abort_handle()).collect();
    let all = futures_util::future::join_all(vus.running.iter_mut().map(|(_, h)| h));
    tokio::pin!(all);
    tokio::select! {
        _ = &mut all => return,
        _ = hard.wait_for(|h| *h) => {}
    }
    // Give them a moment to send their close frames; then they are cancelled. Awaiting the
    // cancelled tasks drops them now, so what they still account for (a cut iteration, a
    // connection open at the stop) is in the last snapshot.
    if tokio::time::timeout(Duration::from_secs(2), &mut all)
        .await
        .is_ok()
    {
        return;
    }
    for h in cancel {
        h.abort();
    }
    all.await;
}

/// At every tick boundary, closes the recorder's series bucket and sends it. The bucket
/// index is the boundary the task woke after, so a worker that slept through several
/// (stopped, or too busy to run this task) skips the buckets it recorded nothing in, and
/// how late it woke counts as the generator's lateness.
async fn tick_snapshots(
    rec: Rc<RefCell<Recorder>>,
    start: Instant,
    tick: Duration,
    out: mpsc::UnboundedSender<Snapshot>,
) {
    let tick_ns = tick.as_nanos().max(1);
    let mut n = 1u32;
    loop {
        let boundary = start + tick * n;
        tokio::time::sleep_until(boundary.into()).await;
        let now = Instant::now();
        let k = (now.duration_since(start).as_nanos() / tick_ns).min(u32::MAX as u128 - 1) as u32;
        let snap = {
            let mut r = rec.borrow_mut();
            r.lag(now.saturating_duration_since(boundary).as_micros() as u64);
            r.roll(k)
        };
        n = k.saturating_add(1);
        if out.send(snap).is_err() {
            return;
        }
    }
}

/// The lateness probe's state, shared with the worker so its end can read it too.
struct Probe {
    /// When the probe is next due.
    due: Cell<Instant>,
    /// The thread's runqueue wait when it was armed, µs.
    waited_at_arm: Cell<Option<u64>>,
    delay: RunDelay,
}

impl Probe {
    /// Armed at the worker's start, not when its task is first polled, so a worker that
    /// blocks before its first yield (spawning a huge number of VUs) shows that too.
    /// Call on the worker thread: the runqueue wait read is this thread's.
    fn new() -> Rc<Self> {
        let delay = RunDelay::open();
        Rc::new(Probe {
            due: Cell::new(Instant::now() + LAG_PROBE),
            waited_at_arm: Cell::new(delay.read_us()),
            delay,
        })
    }

    /// Records how late it is now against the due time (if late), with the part the
    /// thread spent waiting for a CPU, and re-arms.
    fn fire(&self, rec: &RefCell<Recorder>) {
        let now = Instant::now();
        let late = now.saturating_duration_since(self.due.get());
        let waited = self.delay.read_us();
        let runqueue = waited
            .zip(self.waited_at_arm.get())
            .map(|(w, a)| w.saturating_sub(a));
        rec.borrow_mut().probe(late.as_micros() as u64, runqueue);
        self.due.set(now + LAG_PROBE);
        self.waited_at_arm.set(waited);
    }
}

/// Wakes every [`LAG_PROBE`] and records how late it woke.
async fn lag_probe(rec: Rc<RefCell<Recorder>>, probe: Rc<Probe>) {
    loop {
        tokio::time::sleep_until(probe.due.get().into()).await;
        probe.fire(&rec);
    }
}
