//! `squall capacity`: the highest rate a target sustains within its SLOs.
//!
//! Each step holds the scenario at one rate for `--step` through the ordinary swarm (one
//! run per step): its open model's arrival rate, or its connections' `pace` rate
//! ([`knob`]). It leaves out its warm-up, and is good only when every
//! SLO held over the rest, latency did not rise across it ([`trend`]) and every request
//! was answered. The rate doubles from `--from` until a step breaks, then bisects between
//! the last good and the first bad rate until they are within `--precision`. A step where
//! squall itself was saturated stops the search: its latencies are partly squall's.
//! With `--procs N` every step is run by N shard processes ([`procs`], [`worker`]) and
//! judged on their figures added up.
//!
//! One run per step, not one swarm whose rate changes: each step starts from no open
//! connection and no request in flight, so one step's queue (requests it left waiting)
//! is not charged to the next one, and every step has its own histograms, counters and
//! generator health with nothing to reset in the swarm. The cost, a connection setup per
//! step, is what the open model pays for every arrival anyway.

pub mod knob;
mod live;
pub mod procs;
pub mod search;
mod searcher;
pub mod slo;
mod steady;
mod step;
pub mod trend;
mod verdict;
pub mod worker;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::metrics::Aggregate;
use crate::protocol::Profile;
use crate::report::capacity::{Capacity, Outcome};
use crate::report::{self, ReportError, Results, ResultsWriter, Status};
use crate::run::shard::Shard;
use crate::run::{self, RunArgs, RunError};
use crate::scenario::plan::Plan;
use crate::scenario::thresholds::Threshold;
use crate::swarm::RunOptions;
use knob::Knob;
use live::View;
pub use slo::SloError;

/// Ticks of a step: short, so even a short step's latency over time has points.
const TICK: Duration = Duration::from_millis(250);

/// The shortest measured window (a step after its warm-up).
const MIN_MEASURED: Duration = Duration::from_secs(1);

/// What `squall capacity` was asked to do.
#[derive(Debug, Clone)]
pub struct CapacityArgs {
    /// The scenario, target, output folder, seed, threads, checking, output and terminal
    /// settings, as `squall run` takes them (`duration`, `vus`, `rate`, `serve`, `junit`
    /// and `samples` are not used: the search sets the load).
    pub run: RunArgs,
    /// SLO expressions, in the threshold syntax; at least one.
    pub slo: Vec<String>,
    /// First rate, per second. Default 100.
    pub from: f64,
    /// Highest rate, per second. Default 1,000,000.
    pub to: f64,
    /// Each step, warm-up included. Default 10 s.
    pub step: Duration,
    /// The start of each step left out of its figures. Default 3 s.
    pub warmup: Duration,
    /// Largest gap between sustained and breaking rate, a fraction of the sustained one.
    /// Default 0.05.
    pub precision: f64,
    /// Run every step as this many shard processes (`--procs N`); `None`: in this process.
    pub procs: Option<u32>,
}

impl Default for CapacityArgs {
    fn default() -> Self {
        CapacityArgs {
            run: RunArgs::default(),
            slo: Vec::new(),
            from: 100.0,
            to: 1_000_000.0,
            step: Duration::from_secs(10),
            warmup: Duration::from_secs(3),
            precision: 0.05,
            procs: None,
        }
    }
}

impl CapacityArgs {
    /// Bad settings, said with what to write instead.
    fn check(&self) -> Result<(), CapacityError> {
        let usage = |m: String| Err(CapacityError::Usage(m));
        if self.slo.is_empty() {
            return usage("give at least one --slo, e.g. --slo \"latency.rtt.p99 < 50ms\"".into());
        }
        if !(self.from > 0.0 && self.from.is_finite()) {
            return usage(format!("--from must be a positive rate, not {}", self.from));
        }
        if !(self.to >= self.from && self.to.is_finite()) {
            return usage(format!(
                "--to ({}) must be at least --from ({})",
                self.to, self.from
            ));
        }
        if !(self.precision > 0.0 && self.precision < 1.0) {
            return usage(format!(
                "--precision must be between 0% and 100% (e.g. 5%), not {}%",
                self.precision * 100.0
            ));
        }
        if self.procs == Some(0) {
            return usage("--procs must be at least 1 (the number of shard processes)".into());
        }
        if self.step.saturating_sub(self.warmup) < MIN_MEASURED {
            return usage(format!(
                "--step ({:?}) must exceed --warmup ({:?}) by at least 1s: the steady-state test needs the time to judge",
                self.step, self.warmup
            ));
        }
        Ok(())
    }
}

/// Why a search could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    /// The scenario, its profile or the target (as `squall run` reports them).
    #[error("{0}")]
    Run(#[from] RunError),
    /// An `--slo` does not parse or names what the scenario lacks.
    #[error("{0}")]
    Slo(#[from] SloError),
    /// Settings that do not fit.
    #[error("{0}")]
    Usage(String),
    /// A `--procs` shard process could not be started or failed.
    #[error("{0}")]
    Procs(String),
}

impl From<ReportError> for CapacityError {
    fn from(e: ReportError) -> Self {
        CapacityError::Run(RunError::Output(e))
    }
}

impl CapacityError {
    /// Exit code: 2 for bad input, 3 for an unreachable target or unwritable output.
    pub fn exit_code(&self) -> u8 {
        match self {
            CapacityError::Run(e) => e.exit_code(),
            CapacityError::Slo(_) | CapacityError::Usage(_) => 2,
            CapacityError::Procs(_) => 3,
        }
    }
}

/// A search that took place.
pub struct Finished {
    /// The results written: the sustained step's run (else the last step's) with the
    /// `capacity` block.
    pub results: Results,
    /// Where they were written.
    pub out_dir: PathBuf,
    /// The final write to the output folder failed.
    pub output_failed: bool,
}

impl Finished {
    /// The search's answer and steps.
    pub fn capacity(&self) -> &Capacity {
        // `execute` always sets it.
        self.results
            .capacity
            .as_ref()
            .expect("a finished search has a capacity block")
    }

    /// Exit code: 0 a capacity was found (or `--to` held), 1 even `--from` broke, 3 the
    /// target failed, the generator was the limit, or the results were not written where
    /// asked, 130 interrupted.
    pub fn exit_code(&self) -> u8 {
        match self.capacity().outcome {
            Outcome::Interrupted => 130,
            _ if self.output_failed => 3,
            Outcome::Found | Outcome::AboveTo => 0,
            Outcome::BelowFrom => 1,
            Outcome::GeneratorLimited | Outcome::TargetFailed => 3,
        }
    }
}

/// The scenario as a search runs it: loaded, its knob found, the SLOs parsed, the
/// profile compiled.
struct Prepared {
    run_args: RunArgs,
    plan: Plan,
    knob: Knob,
    slo: Vec<Threshold>,
    profile: Option<std::sync::Arc<Profile>>,
    /// Worker threads of each process.
    threads: usize,
}

impl Prepared {
    fn new(args: &CapacityArgs) -> Result<Prepared, CapacityError> {
        args.check()?;
        let run_args = RunArgs {
            duration: None,
            vus: None,
            rate: None,
            serve: false,
            junit: None,
            samples: None,
            ..args.run.clone()
        };
        let mut plan = run::prepare(&run_args)?;
        let knob = knob::find(&plan).map_err(|why| {
            CapacityError::Usage(format!("{}: {why}", args.run.scenario.display()))
        })?;
        let slo = slo::parse_all(&args.slo, &plan)?;
        let profile = run::profile_for(&mut plan, &run_args)?;
        let threads = args.run.threads.unwrap_or_else(|| {
            let all = RunOptions::default().threads;
            // As `squall run --procs`: the cores shared out among the processes.
            (all / args.procs.unwrap_or(1) as usize).max(1)
        });
        Ok(Prepared {
            run_args,
            plan,
            knob,
            slo,
            profile,
            threads,
        })
    }
}

/// The swarm options of every step.
fn step_options(threads: usize, profile: Option<std::sync::Arc<Profile>>) -> RunOptions {
    RunOptions {
        threads,
        tick: TICK,
        // The same two seconds `squall run` gives a dead target, in shorter ticks.
        dead_ticks: 8,
        profile,
        ..RunOptions::default()
    }
}

/// Runs a capacity search end to end on a runtime of its own.
pub fn execute(args: CapacityArgs) -> Result<Finished, CapacityError> {
    let Prepared {
        run_args,
        plan,
        knob,
        slo,
        profile,
        threads,
    } = Prepared::new(&args)?;
    run::raise_fd_limit();
    let (rt, rx, signals) = run::runtime_with_signals()?;
    let out_dir = args
        .run
        .out
        .clone()
        .unwrap_or_else(|| run::default_out(&format!("{}-capacity", plan.name)));
    let writer = ResultsWriter::create(&out_dir)?;
    let mut first = Aggregate::new(plan.metrics.clone()).results(
        run::meta(&plan, &run_args, SystemTime::now(), threads),
        Status::Running,
    );
    writer.write(&first)?;
    // Past this point the file written before must not stay `running`: it says why not.
    let mut aborted = |e: &dyn std::fmt::Display| {
        first.status = Status::Aborted;
        first.status_reason = Some(e.to_string());
        if let Err(w) = writer.write(&first) {
            eprintln!("squall: cannot write the results: {w}");
        }
    };
    if let Err(e) = rt.block_on(run::preflight(&plan)) {
        aborted(&e);
        return Err(e.into());
    }
    let mut pool = match args.procs {
        Some(n) => {
            // Every process aims at the target and seed this one resolved.
            let mut shared = args.clone();
            shared.run.target = Some(plan.target.clone());
            shared.run.seed = Some(plan.seed);
            let started = rt.block_on(procs::Pool::start(&shared, n, &out_dir, threads));
            Some(started.inspect_err(|e| aborted(e))?)
        }
        None => None,
    };
    let search = searcher::Searcher {
        plan: &plan,
        args: &args,
        run_args: &run_args,
        slo: &slo,
        knob,
        opts: step_options(threads, profile),
        writer: &writer,
    };
    let results = rt.block_on(search.run(rx, pool.as_mut()));
    drop(pool);
    signals.abort();
    Ok(conclude(results, &args, &writer, out_dir))
}

/// Runs one shard process of a `--procs` search (see [`worker`]); the exit code.
pub fn serve_worker(args: CapacityArgs, shard: Shard) -> u8 {
    worker::serve(args, shard)
}

/// Writes the final results (to a fallback folder if need be), prints the answer first and
/// then every step, and draws the report.
fn conclude(
    mut results: Results,
    args: &CapacityArgs,
    writer: &ResultsWriter,
    out_dir: PathBuf,
) -> Finished {
    let cap = results.capacity.clone().expect("set by the search");
    results.status = match cap.outcome {
        Outcome::Found | Outcome::BelowFrom | Outcome::AboveTo => Status::Complete,
        Outcome::Interrupted => Status::Interrupted,
        Outcome::GeneratorLimited | Outcome::TargetFailed => Status::Aborted,
    };
    if results.status != Status::Complete {
        results.status_reason = Some(cap.answer.clone());
    }
    let written = match writer.write(&results) {
        Ok(()) => Some(writer.path().to_path_buf()),
        Err(e) => {
            eprintln!("squall: cannot write the results: {e}");
            run::write_fallback(&results, &results.meta.scenario_name.clone())
        }
    };
    let output_failed = written.as_deref() != Some(writer.path());
    let out_dir = written
        .as_deref()
        .and_then(std::path::Path::parent)
        .map_or(out_dir, std::path::Path::to_path_buf);
    if !args.run.quiet {
        println!("\n{}\n", cap.answer);
        let view = View::new(false, false, args.step, cap.metric.clone());
        for (i, s) in cap.steps.iter().enumerate() {
            println!("{}", view.line(i + 1, s));
        }
        if let Some(p) = &written {
            println!("results: {}", p.display());
        }
    }
    if args.run.report && written.is_some() {
        match report::write_report(&results, &out_dir) {
            Ok(w) if !args.run.quiet => println!("report: {}", w.html.display()),
            Ok(_) => {}
            Err(e) => eprintln!("squall: report: {e}"),
        }
    }
    Finished {
        results,
        out_dir,
        output_failed,
    }
}

/// The plan of scenario `text`, for the tests.
#[cfg(test)]
pub(crate) fn test_plan(text: &str) -> Plan {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, text).unwrap();
    crate::scenario::load_file(&path, &Default::default()).unwrap()
}

/// An open model of one ping a second, each timed into `rtt` by its pong, for the tests.
#[cfg(test)]
pub(crate) const PING: &str = "name: s\ntarget: ws://127.0.0.1:1/ws\n\
    load: { model: open, max_vus: 10, phases: [{ hold: 1s, rate: 1/s }] }\n\
    behaviours:\n  - steps:\n      - send: { type: ping, id: \"{{seq}}\" }\n      \
    - expect: { kind: pong, within: 1s, metric: rtt }\n";
