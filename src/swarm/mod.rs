//! The swarm: worker threads running VUs by the plan's load model, and the controller that
//! merges their metrics every tick, watches for a dead target, and stops them in order.

mod burst;
pub mod connect;
mod controller;
mod ctx;
pub mod delivery;
pub mod frame;
mod io;
pub mod matcher;
mod pace;
pub mod samples;
pub mod schedule;
pub mod source;
mod steps;
mod timer;
mod upload;
mod upload_vars;
mod vu;
mod waits;
mod wall;
mod worker;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::metrics::Aggregate;
use crate::protocol::Profile;
use crate::results::Status;
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
    /// How frames are judged against the profile (`--checker`). Default the tape engine.
    pub engine: crate::protocol::checker::Engine,
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
            engine: Default::default(),
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
    control: mpsc::UnboundedReceiver<Control>,
    observer: &mut dyn Observer,
    keep_intervals: bool,
) -> Outcome {
    controller::Controller::start(plan, opts, observer, keep_intervals)
        .run(control)
        .await
}
