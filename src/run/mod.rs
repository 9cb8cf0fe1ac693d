//! One `squall run` end to end: load the scenario, prepare the output folder, check the
//! target, run the swarm while writing results as it goes, evaluate thresholds, and say how
//! it ended (which the CLI turns into an exit code).

pub mod procs;
pub mod progress;
pub mod prometheus;
pub mod shard;
pub(crate) mod timing;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::check::verdict;
use crate::metrics::interval_log::{self, IntervalHistograms};
use crate::metrics::Aggregate;
use crate::protocol::{Conformance, Profile};
use crate::report::{
    self, render_junit, render_summary, Phase, ReportError, Results, ResultsWriter, RunMeta, Status,
};
use crate::scenario::plan::{LoadModel, Plan, Stage};
use crate::scenario::{self, LoadError, LoadOptions};
use crate::swarm::samples::SampleLog;
use crate::swarm::{self, connect, Control, Observer, RunOptions};

/// What `squall run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Replaces the scenario's `target:`.
    pub target: Option<String>,
    /// Output folder; default `reports/<scenario>-<UTC timestamp>/`.
    pub out: Option<PathBuf>,
    /// Cuts or extends the load to this total duration.
    pub duration: Option<Duration>,
    /// Scales a closed model's peak to this many VUs.
    pub vus: Option<u64>,
    /// Scales an open model's peak arrival rate to this (per second).
    pub rate: Option<f64>,
    /// Replaces the scenario's `seed:`.
    pub seed: Option<u64>,
    /// Worker threads; default all cores.
    pub threads: Option<usize>,
    /// No live progress and no summary table.
    pub quiet: bool,
    /// Show live progress (the CLI sets it when stdout is a terminal).
    pub progress: bool,
    /// Start the bundled squall-server on an ephemeral port and aim the run at it.
    pub serve: bool,
    /// Do not check frames against the protocol's schemas (to measure what checking costs).
    pub no_check: bool,
    /// How frames are judged (`--checker`): the tape engine, or the reference.
    pub checker: crate::protocol::checker::Engine,
    /// How strictly frames are held to the profile (`--conformance`).
    pub conformance: Conformance,
    /// Where protocol profiles are looked for first; then `schemas/` beside the scenario,
    /// the current directory's `schemas/`, and the built-in profiles.
    pub schemas: Option<PathBuf>,
    /// Also write JUnit XML here.
    pub junit: Option<PathBuf>,
    /// How far in the future an inbound timestamp may be; default 1 s.
    pub max_clock_skew: Option<Duration>,
    /// Also write every latency sample here, one JSON line each with its instants on
    /// `CLOCK_MONOTONIC` (a debugging aid; see `swarm::samples`).
    pub samples: Option<PathBuf>,
    /// Also write report.html and the PNG charts into the output folder (the CLI's
    /// default; `--no-report` turns it off).
    pub report: bool,
    /// Draw the latency-by-percentile charts on a log scale of latency.
    pub log_latency: bool,
    /// Run only this shard of the plan (`--shard I/N`).
    pub shard: Option<shard::Shard>,
    /// Begin the load at this wall-clock time (`--start-at`), so shards' phases line up.
    pub start_at: Option<SystemTime>,
    /// Serve Prometheus text at `GET /metrics` on this address while the run goes
    /// (`--metrics-listen`; port 0 picks a free one, named on stderr).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Connections bind these source addresses, in turn (`--source-ip`); empty: the kernel
    /// picks.
    pub source_ips: Vec<std::net::IpAddr>,
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario did not load.
    #[error("{0}")]
    Scenario(#[from] LoadError),
    /// Flags that do not fit the scenario.
    #[error("{0}")]
    Usage(String),
    /// The target could not be reached before the load started.
    #[error("target unreachable: {0}")]
    Unreachable(String),
    /// The results could not be written.
    #[error("{0}")]
    Output(#[from] ReportError),
    /// The bundled server (`--serve`) did not start.
    #[error("cannot start the bundled server: {0}")]
    Serve(std::io::Error),
    /// The scenario's protocol profile did not load.
    #[error("protocol profile: {0}")]
    Profile(#[from] crate::protocol::ProfileError),
}

impl RunError {
    /// Exit code: 2 for bad input, 3 for an unreachable target or a failed run.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Scenario(_) | RunError::Usage(_) | RunError::Profile(_) => 2,
            RunError::Unreachable(_) | RunError::Output(_) | RunError::Serve(_) => 3,
        }
    }
}

/// A run that took place (whatever its verdict).
pub struct Finished {
    /// The final results, as written.
    pub results: Results,
    /// Where they were written: the output folder, or the fallback folder when the output
    /// folder could not take the final write.
    pub out_dir: PathBuf,
    /// The final write to the output folder failed (the results went to `out_dir`, a
    /// fallback, if even that worked).
    pub output_failed: bool,
}

impl Finished {
    /// Exit code: 130 interrupted, 3 aborted or results not written where asked, 1 a
    /// threshold failed or a frame broke its protocol's schemas, 0 pass.
    pub fn exit_code(&self) -> u8 {
        match self.results.status {
            Status::Interrupted => 130,
            Status::Aborted => 3,
            _ if self.output_failed => 3,
            _ if !self.passed() => 1,
            _ => 0,
        }
    }

    /// Whether every threshold held and no frame broke its schemas (see
    /// [`Results::passed`]).
    pub fn passed(&self) -> bool {
        self.results.passed()
    }
}

/// Loads the scenario and applies the command-line overrides to its plan.
pub fn prepare(args: &RunArgs) -> Result<Plan, RunError> {
    prepare_cut(args).map(|(plan, _)| plan)
}

/// [`prepare`], and whether `--duration` made the run shorter than the scenario's own load.
fn prepare_cut(args: &RunArgs) -> Result<(Plan, bool), RunError> {
    let mut opts = LoadOptions::from_process_env();
    opts.target = args.target.clone();
    opts.seed = args.seed;
    if args.serve {
        // A file without a target still loads; the real address is known once the server
        // is up, and the file's path (e.g. /covetpy/ws?token=...) is kept.
        opts.default_target = Some("ws://127.0.0.1:1/ws".into());
    }
    if let Some(s) = args.shard {
        shard::check(s).map_err(|e| RunError::Usage(format!("--shard {e}")))?;
    }
    let mut plan = scenario::load_file(&args.scenario, &opts)?;
    let mut cut = false;
    if let Some(d) = args.duration {
        if d.is_zero() {
            return Err(RunError::Usage("--duration must be greater than 0".into()));
        }
        cut = d < plan.load.duration();
        plan.load = plan.load.with_duration(d);
    }
    match (plan.load.model, args.vus, args.rate) {
        (LoadModel::Closed, Some(n), _) => plan.load = plan.load.with_peak(n as f64),
        (LoadModel::Open { .. }, Some(_), _) => {
            return Err(RunError::Usage(
                "--vus applies to closed-model scenarios; this one has an arrival rate: use --rate"
                    .into(),
            ))
        }
        _ => {}
    }
    match (plan.load.model, args.rate) {
        (LoadModel::Open { .. }, Some(r)) if r > 0.0 => plan.load = plan.load.with_peak(r),
        (_, Some(r)) if r <= 0.0 => return Err(RunError::Usage("--rate must be positive".into())),
        (LoadModel::Closed, Some(_)) => {
            return Err(RunError::Usage(
                "--rate applies to open-model scenarios; this one runs VUs: use --vus".into(),
            ))
        }
        _ => {}
    }
    Ok((plan, cut))
}

/// Loads the profile the scenario names (unless `--no-check`), and reads frames by its
/// discriminator and correlation where the scenario kept the defaults.
pub fn profile_for(plan: &mut Plan, args: &RunArgs) -> Result<Option<Arc<Profile>>, RunError> {
    let Some(name) = plan.protocol.clone().filter(|_| !args.no_check) else {
        return Ok(None);
    };
    let places = crate::protocol::catalog::Places {
        schemas: args.schemas.clone(),
        scenario_dir: args.scenario.parent().map(Path::to_path_buf),
    };
    let profile = places.locate(&name)?.load_with(args.conformance)?;
    // Frames are classified once, for matching and checking alike, so both must use the
    // profile's discriminator.
    if plan.kind_pointers == ["/type"] {
        plan.kind_pointers = profile.discriminator.clone();
    } else if plan.kind_pointers != profile.discriminator {
        return Err(RunError::Usage(format!(
            "discriminator {:?} differs from the {} profile's {:?}: leave it out to use the profile's",
            plan.kind_pointers, profile.name, profile.discriminator
        )));
    }
    if let (true, Some(c)) = (plan.id_pointer == "/id", &profile.correlation) {
        plan.id_pointer = c.clone();
    }
    Ok(Some(Arc::new(profile)))
}

/// Runs a scenario end to end on a runtime of its own.
pub fn execute(args: RunArgs) -> Result<Finished, RunError> {
    let (mut plan, cut) = prepare_cut(&args)?;
    let profile = profile_for(&mut plan, &args)?;
    let files = raise_fd_limit();
    // A shard holds its share of the VUs (rounded up).
    let share = (plan.load.peak() / f64::from(args.shard.map_or(1, |s| s.count))).ceil();
    if plan.load.model == LoadModel::Closed && share + 64.0 > files as f64 {
        eprintln!(
            "squall: warning: {share} VUs need as many sockets, but this process may open {files} files; \
             split the load across processes (--procs N, or --shard I/N then squall merge)"
        );
    }
    let (rt, rx, signals) = runtime_with_signals()?;
    let exposition = match args.metrics_listen {
        Some(addr) => {
            let _in_rt = rt.enter();
            let (listener, local) = prometheus::bind(addr).map_err(|e| {
                RunError::Usage(format!(
                    "--metrics-listen {addr}: cannot listen there ({e}); pick a free address, or port 0"
                ))
            })?;
            eprintln!("squall: metrics at http://{local}/metrics");
            let text = prometheus::Exposition::default();
            Some((
                text.clone(),
                tokio::spawn(prometheus::serve(listener, text)),
            ))
        }
        None => None,
    };
    let server = serve(&args, &mut plan)?;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out(&plan.name));
    let writer = ResultsWriter::create(&out_dir)?;
    // Like the output folder, a samples file that cannot be made fails before any load.
    let samples = match &args.samples {
        Some(path) => Some(Arc::new(SampleLog::create(path).map_err(|source| {
            ReportError::Io {
                path: path.clone(),
                source,
            }
        })?)),
        None => None,
    };
    // The first write doubles as the check that the folder takes files: an unwritable
    // output fails now (exit 3), not after the whole load.
    writer.write(&starting(&plan, &args))?;
    // The interval log's header is written when the load begins. It adds to results.json
    // and is named by it only when whole: a log that cannot be made is said, not fatal.
    let log_path = writer.path().with_file_name(interval_log::FILE_NAME);
    let log = interval_log::Writer::open(&log_path, &plan.metrics)
        .inspect_err(|e| {
            eprintln!(
                "squall: {}: {e}; results.json will name no interval log",
                log_path.display()
            )
        })
        .ok();
    let text = exposition.as_ref().map(|(t, _)| t.clone());
    let result = rt.block_on(run_plan(
        plan,
        profile,
        &args,
        (&writer, log),
        rx,
        (samples, text),
        cut,
    ));
    signals.abort();
    if let Some((_, task)) = exposition {
        task.abort();
    }
    if let Some(s) = server {
        s.shutdown();
    }
    let (results, written) = result?;
    let output_failed = written.as_deref() != Some(writer.path());
    let out_dir = written
        .as_deref()
        .and_then(Path::parent)
        .map_or(out_dir, Path::to_path_buf);
    if args.report && written.is_some() {
        // The run's verdict stands on results.json; a report that cannot be drawn is
        // said loudly but does not change the exit code.
        match report::write_report_with(&results, &out_dir, args.log_latency) {
            Ok(w) => {
                for n in &w.notes {
                    eprintln!("squall: report: {n}");
                }
                if !args.quiet {
                    println!("{}", w.describe());
                }
            }
            Err(e) => eprintln!("squall: report: {e}"),
        }
    }
    Ok(Finished {
        results,
        out_dir,
        output_failed,
    })
}

/// With `--serve`: the bundled server started on 127.0.0.1 (ephemeral port), and the plan
/// aimed at it.
fn serve(args: &RunArgs, plan: &mut Plan) -> Result<Option<squall_server::ServerHandle>, RunError> {
    if !args.serve {
        return Ok(None);
    }
    let cfg = squall_server::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        ..squall_server::Config::default()
    };
    let s = squall_server::spawn(cfg).map_err(RunError::Serve)?;
    plan.target = retarget(&plan.target, s.addr());
    Ok(Some(s))
}

/// A current-thread runtime with the SIGINT/SIGTERM handlers installed on it, the
/// receiver of what they forward, and the forwarding task. Called before anything that
/// takes time (the start-up check included): a Ctrl-C from then on ends in a results file,
/// never in a killed process.
pub(crate) fn runtime_with_signals() -> Result<
    (
        tokio::runtime::Runtime,
        mpsc::UnboundedReceiver<Control>,
        tokio::task::JoinHandle<()>,
    ),
    RunError,
> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Unreachable(format!("cannot start the runtime: {e}")))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let signals = {
        let _in_rt = rt.enter();
        tokio::spawn(forward_signals(tx))
    };
    Ok((rt, rx, signals))
}

/// The results document before any load: status `running`, nothing measured.
fn starting(plan: &Plan, args: &RunArgs) -> Results {
    let threads = args
        .threads
        .unwrap_or_else(|| RunOptions::default().threads);
    let mut r = Aggregate::new(plan.metrics.clone()).results(
        meta(plan, args, SystemTime::now(), threads),
        Status::Running,
    );
    stamp(&mut r, args, false);
    r
}

/// Marks results with the shard they are and the interval log beside them, if any.
fn stamp(r: &mut Results, args: &RunArgs, log: bool) {
    r.shard = args.shard.map(|s| report::ShardInfo {
        index: s.index,
        count: s.count,
        start_at: args
            .start_at
            .map(|t| humantime::format_rfc3339_millis(t).to_string()),
    });
    r.interval_log = log.then(|| interval_log::FILE_NAME.to_string());
}

/// The results of a run that ended before any load, with its status and why.
fn ended_early(plan: &Plan, args: &RunArgs, status: Status, why: String) -> Results {
    let mut results = starting(plan, args);
    results.status = status;
    results.status_reason = Some(why);
    results.meta.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    results
}

/// Checks the target, runs the swarm and concludes; the results and where they were
/// written (`None`: nowhere).
async fn run_plan(
    plan: Plan,
    profile: Option<Arc<Profile>>,
    args: &RunArgs,
    (writer, log): (&ResultsWriter, Option<interval_log::Writer>),
    mut control: mpsc::UnboundedReceiver<Control>,
    (samples, exposition): (Option<Arc<SampleLog>>, Option<prometheus::Exposition>),
    cut: bool,
) -> Result<(Results, Option<PathBuf>), RunError> {
    tokio::select! {
        checked = preflight_from(&plan, &args.source_ips) => if let Err(e) = checked {
            // The file written before the check must not stay `running`: it says why.
            discard(log);
            let results = ended_early(&plan, args, Status::Aborted, e.to_string());
            if let Err(w) = writer.write(&results) {
                eprintln!("squall: cannot write the results: {w}");
            }
            return Err(e);
        },
        Some(Control::Interrupt) = control.recv() => {
            discard(log);
            let why = "Ctrl-C or SIGTERM during the start-up check, before any load";
            let results = ended_early(&plan, args, Status::Interrupted, why.into());
            let written = conclude(&results, &plan.name, args, writer);
            return Ok((results, written));
        }
    }
    if let Some(at) = args.start_at {
        tokio::select! {
            late = shard::wait_until(at) => if let Some(w) = late {
                eprintln!("squall: warning: {w}");
            },
            Some(Control::Interrupt) = control.recv() => {
                discard(log);
                let why = "interrupted (Ctrl-C or SIGTERM) while waiting for --start-at, before any load";
                let results = ended_early(&plan, args, Status::Interrupted, why.into());
                let written = conclude(&results, &plan.name, args, writer);
                return Ok((results, written));
            }
        }
    }
    let plan = Arc::new(plan);
    let opts = RunOptions {
        threads: args
            .threads
            .unwrap_or_else(|| RunOptions::default().threads),
        profile,
        engine: args.checker,
        clock_skew: args
            .max_clock_skew
            .unwrap_or_else(|| RunOptions::default().clock_skew),
        samples,
        shard: args.shard.unwrap_or_default(),
        sources: (!args.source_ips.is_empty())
            .then(|| Arc::new(swarm::source::Sources::new(args.source_ips.clone()))),
        ..RunOptions::default()
    };
    let started = SystemTime::now();
    let log = log.and_then(|mut log| match log.begin(started) {
        Ok(()) => Some(log),
        Err(e) => {
            eprintln!(
                "squall: {}: {e}; results.json will name no interval log",
                log.path().display()
            );
            log.discard();
            None
        }
    });
    let mut live = Live {
        plan: &plan,
        args,
        writer,
        started,
        threads: opts.threads,
        bar: (args.progress && !args.quiet).then(|| progress::Bar::new(plan.load.duration())),
        error: None,
        stopping: false,
        log,
        exposition,
    };
    let outcome = swarm::run_keeping(plan.clone(), opts, control, &mut live, true).await;
    if let Some(bar) = live.bar.take() {
        bar.finish();
    }
    let mut meta = meta(&plan, args, outcome.started_at, outcome.threads);
    meta.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    meta.duration_s = outcome.elapsed.as_secs_f64();
    let mut results = outcome.aggregate.results(meta, outcome.status);
    let timing = timing::metric_timing(&plan);
    for (name, t) in plan.metrics.iter().zip(timing) {
        if let (Some(m), Some(t)) = (results.metrics.get_mut(name), t) {
            m.timing = t;
        }
    }
    results.status_reason = outcome.reason;
    stamp(&mut results, args, live.log.is_some());
    if results.status == Status::Complete {
        if let Some(why) = measured_nothing(&results, &plan) {
            results.status = Status::Aborted;
            results.status_reason = Some(why);
        }
    }
    results.thresholds = verdict::evaluate(&plan.thresholds, &results);
    let by_metric = timing::metric_behaviours(&plan);
    verdict::note_idle_behaviours(&mut results, &plan.thresholds, &by_metric, cut);
    let written = conclude(&results, &plan.name, args, writer);
    if written.as_deref() != Some(writer.path()) {
        // The folder's results.json (the last one written) does not name the log.
        discard(live.log.take());
    }
    Ok((results, written))
}

/// Removes an interval log no results.json will name.
fn discard(log: Option<interval_log::Writer>) {
    if let Some(log) = log {
        log.discard();
    }
}

/// Writes the final results (to a named fallback folder when the output folder fails),
/// the JUnit file if asked, and prints the summary whatever happened; returns where the
/// results went.
fn conclude(
    results: &Results,
    name: &str,
    args: &RunArgs,
    writer: &ResultsWriter,
) -> Option<PathBuf> {
    let written = match writer.write(results) {
        Ok(()) => Some(writer.path().to_path_buf()),
        Err(e) => {
            eprintln!("squall: cannot write the results: {e}");
            write_fallback(results, name)
        }
    };
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, render_junit(results)) {
            eprintln!("squall: junit: {}: {e}", path.display());
        }
    }
    if !args.quiet {
        println!("{}", render_summary(results));
    }
    match &written {
        Some(p) if p == writer.path() => {
            if !args.quiet {
                println!("results: {}", p.display());
            }
        }
        Some(p) => eprintln!(
            "squall: results written to the fallback {} instead",
            p.display()
        ),
        None => eprintln!(
            "squall: the results were not written anywhere; the summary above is all there is"
        ),
    }
    written
}

/// Writes `results` under the system's temporary folder; its path, or `None` when even
/// that fails.
pub(crate) fn write_fallback(results: &Results, name: &str) -> Option<PathBuf> {
    let stem = default_out(name);
    let stem = stem
        .file_name()
        .map_or_else(|| name.into(), |s| s.to_os_string());
    let mut leaf = stem;
    leaf.push(format!("-{}", std::process::id()));
    let dir = std::env::temp_dir().join("squall").join(leaf);
    // The interval log stays in the output folder (if anywhere): it is not beside this copy.
    let results = &Results {
        interval_log: None,
        ..results.clone()
    };
    let written = ResultsWriter::create(&dir).and_then(|w| {
        w.write(results)?;
        Ok(w.path().to_path_buf())
    });
    match written {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("squall: the fallback failed too: {e}");
            // Only removes the folder when the failed write left it empty.
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }
}

/// Why a run that ran to its end measured nothing a gate could pass on (it then ends
/// aborted, exit 3): no connection opened; no iteration ended and nothing came back; requests
/// went out and not one was answered (nor timed out) before the stop; or none of the
/// scenario's sends happened. Whatever the timing, a broken target never passes.
pub(crate) fn measured_nothing(r: &Results, plan: &Plan) -> Option<String> {
    let c = &r.counters;
    if c.connections.opened == 0 {
        return Some(format!(
            "no connection was opened ({} attempts failed{}; attempts still under way at the stop are not counted)",
            c.connections.failed,
            causes(&c.connections.failed_by_cause)
        ));
    }
    let l = &r.load;
    let q = &c.requests;
    if l.iterations_ok + l.iterations_failed == 0 && q.replies == 0 && c.frames_in == 0 {
        return Some(format!(
            "no iteration completed ({} cut at the stop) and nothing came back from the target",
            l.iterations_cut
        ));
    }
    let auto = c.kinds_out.get("(auto-reply)").map_or(0, |k| k.frames);
    if c.frames_out.saturating_sub(auto) == 0 && plan.behaviours.iter().any(|b| sends(&b.steps)) {
        return Some("none of the scenario's requests was sent".into());
    }
    if q.sent > 0 && q.replies == 0 && q.timeouts == 0 {
        return Some(format!(
            "none of the {} requests was answered or timed out: the run stopped or their connection died first",
            q.sent
        ));
    }
    None
}

/// `: refused 3, http_404 2`, or nothing.
fn causes(by_cause: &std::collections::BTreeMap<String, u64>) -> String {
    let causes: Vec<String> = by_cause.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if causes.is_empty() {
        String::new()
    } else {
        format!(": {}", causes.join(", "))
    }
}

/// Whether any of `steps` sends something of its own.
fn sends(steps: &[scenario::plan::Step]) -> bool {
    use scenario::plan::Step;
    steps.iter().any(|s| match s {
        Step::Send { .. } | Step::Pace(_) | Step::Burst { .. } | Step::Upload(_) => true,
        Step::Repeat { steps, .. } => sends(steps),
        Step::Choose { branches } => branches.iter().any(|b| sends(&b.1)),
        Step::Continue(step) => sends(std::slice::from_ref(step)),
        _ => false,
    })
}

/// Writes results and draws progress after every tick.
struct Live<'a> {
    plan: &'a Plan,
    args: &'a RunArgs,
    writer: &'a ResultsWriter,
    started: SystemTime,
    threads: usize,
    bar: Option<progress::Bar>,
    error: Option<ReportError>,
    /// A stop was asked for (Ctrl-C): the bar says so.
    stopping: bool,
    /// The interval log; `None` once a write to it failed (results.json then names none).
    log: Option<interval_log::Writer>,
    /// Where `--metrics-listen` serves from, rendered every tick.
    exposition: Option<prometheus::Exposition>,
}

impl Live<'_> {
    /// Appends the seconds sealed since the last tick to the interval log.
    fn log_intervals(&mut self, sealed: Vec<IntervalHistograms>) {
        let Some(log) = &mut self.log else { return };
        if let Err(e) = sealed.iter().try_for_each(|iv| log.append(iv)) {
            eprintln!(
                "squall: {}: {e}; results.json will name no interval log",
                log.path().display()
            );
            if let Some(log) = self.log.take() {
                log.discard();
            }
        }
    }
}

impl Observer for Live<'_> {
    fn on_tick(&mut self, agg: &mut Aggregate, elapsed: Duration) {
        self.log_intervals(agg.drain_intervals());
        let mut meta = meta(self.plan, self.args, self.started, self.threads);
        meta.duration_s = elapsed.as_secs_f64();
        let mut results = agg.results(meta, Status::Running);
        stamp(&mut results, self.args, self.log.is_some());
        if let Some(text) = &self.exposition {
            let rendered = prometheus::render(&results);
            if let Ok(mut t) = text.lock() {
                *t = rendered;
            }
        }
        if let Err(e) = self.writer.write(&results) {
            if self.error.is_none() {
                eprintln!("squall: {e}");
            }
            self.error = Some(e);
        }
        if let Some(bar) = &mut self.bar {
            bar.update(agg, elapsed, self.stopping);
        }
        if !self.args.quiet {
            for w in agg.drain_warnings() {
                eprintln!("squall: warning: {w}");
            }
        }
    }

    fn on_interrupt(&mut self, grace: Option<Duration>) {
        // Said even with --quiet: it answers the user's own keystroke.
        let line = match grace {
            Some(g) => format!(
                "squall: stopping: finishing iterations (up to {}s), Ctrl-C again to stop now",
                g.as_secs_f64()
            ),
            None => "squall: stopping now".to_string(),
        };
        self.stopping = true;
        match &self.bar {
            Some(bar) => bar.println(&line),
            None => eprintln!("{line}"),
        }
    }
}

pub(crate) fn meta(plan: &Plan, args: &RunArgs, started: SystemTime, threads: usize) -> RunMeta {
    RunMeta {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_name: plan.name.clone(),
        scenario_file: args.scenario.display().to_string(),
        scenario_sha256: plan.source_sha256.clone(),
        protocol: plan.protocol.clone(),
        conformance: (plan.protocol.is_some() && !args.no_check)
            .then(|| args.conformance.as_str().to_string()),
        target: plan.target.clone(),
        seed: plan.seed,
        threads,
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        ended_at: None,
        duration_s: 0.0,
        planned_duration_s: plan.load.duration().as_secs_f64(),
        load_model: match plan.load.model {
            LoadModel::Closed => "closed".into(),
            LoadModel::Open { .. } => "open".into(),
        },
        host: hostname(),
        phases: phases(&plan.load.stages),
    }
}

/// The stages as spans of time, for the report's shading.
fn phases(stages: &[Stage]) -> Vec<Phase> {
    let (mut start, mut from) = (0.0, 0.0);
    stages
        .iter()
        .map(|s| {
            let end = start + s.duration.as_secs_f64();
            let p = Phase {
                start_s: start,
                end_s: end,
                from,
                to: s.target,
            };
            (start, from) = (end, s.target);
            p
        })
        .collect()
}

/// Fail before load: one TCP connection to the target, so an unreachable target is one
/// clear line (exit 3), not a run full of errors.
pub(crate) async fn preflight(plan: &Plan) -> Result<(), RunError> {
    preflight_from(plan, &[]).await
}

/// [`preflight`] from the first of `sources` (`--source-ip`), so an address that cannot be
/// bound fails before load too.
async fn preflight_from(plan: &Plan, sources: &[std::net::IpAddr]) -> Result<(), RunError> {
    let req = plan
        .target
        .as_str()
        .into_client_request()
        .map_err(|e| RunError::Usage(format!("bad target {}: {e}", plan.target)))?;
    let host = req
        .uri()
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let tls = req.uri().scheme_str() == Some("wss");
    let port = req.uri().port_u16().unwrap_or(if tls { 443 } else { 80 });
    let from = swarm::source::Sources::new(sources.to_vec());
    let opened = connect::tcp_connect_from(&host, port, Some(&from));
    match tokio::time::timeout(plan.connect.timeout, opened).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(RunError::Unreachable(format!("{}: {e}", plan.target))),
        Err(_) => Err(RunError::Unreachable(format!(
            "{}: no TCP connection within {:?}",
            plan.target, plan.connect.timeout
        ))),
    }
}

/// Registers the SIGINT and SIGTERM handlers now, before any traffic, and returns the task
/// that forwards each signal: a handler installed on the task's first poll could miss a signal
/// sent the moment the run starts, which would then kill the process without a results file.
fn forward_signals(
    tx: mpsc::UnboundedSender<Control>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut streams = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
            .ok()
    };
    async move {
        loop {
            #[cfg(unix)]
            let got = match streams.as_mut() {
                Some((int, term)) => tokio::select! {
                    r = int.recv() => r.is_some(),
                    r = term.recv() => r.is_some(),
                },
                None => tokio::signal::ctrl_c().await.is_ok(),
            };
            #[cfg(not(unix))]
            let got = tokio::signal::ctrl_c().await.is_ok();
            if !got || tx.send(Control::Interrupt).is_err() {
                return;
            }
        }
    }
}

/// `ws://anything:port/path` → `ws://<addr>/path` (path `/ws` when the target has none).
fn retarget(target: &str, addr: std::net::SocketAddr) -> String {
    let rest = target.split_once("://").map_or("", |(_, r)| r);
    let path = rest.find('/').map_or("/ws", |i| &rest[i..]);
    let path = if path == "/" { "/ws" } else { path };
    format!("ws://{addr}{path}")
}

/// `reports/<name>-<UTC timestamp>/`, with the name made safe for a folder.
pub fn default_out(name: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new("reports").join(format!("{safe}-{stamp}"))
}

/// Every VU holds a socket: raise the soft open-file limit to the hard one, and return it.
pub(crate) fn raise_fd_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    r.rlim_cur
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retarget_keeps_the_path() {
        let a: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            retarget("ws://127.0.0.1:8080/kite/ws", a),
            "ws://127.0.0.1:4000/kite/ws"
        );
        assert_eq!(retarget("ws://example.com", a), "ws://127.0.0.1:4000/ws");
        assert_eq!(retarget("wss://h:1/", a), "ws://127.0.0.1:4000/ws");
    }

    #[test]
    fn serve_keeps_the_scenario_path_and_a_file_without_target_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let body = "name: t\nload: { vus: 1, duration: 1s }\nbehaviours:\n  - steps:\n      - listen: 1s\n";
        let with = dir.path().join("with.yaml");
        std::fs::write(
            &with,
            format!("target: ws://127.0.0.1:8080/kecs/ws?token=t\n{body}"),
        )
        .unwrap();
        let without = dir.path().join("without.yaml");
        std::fs::write(&without, body).unwrap();
        let args = |scenario: &Path| RunArgs {
            scenario: scenario.to_owned(),
            serve: true,
            ..RunArgs::default()
        };
        let plan = prepare(&args(&with)).unwrap();
        assert_eq!(plan.target, "ws://127.0.0.1:8080/kecs/ws?token=t");
        let a: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            retarget(&plan.target, a),
            "ws://127.0.0.1:4000/kecs/ws?token=t"
        );
        assert_eq!(
            prepare(&args(&without)).unwrap().target,
            "ws://127.0.0.1:1/ws"
        );
    }

    #[test]
    fn default_out_is_under_reports() {
        let p = default_out("kite smoke");
        let s = p.to_string_lossy();
        assert!(s.starts_with("reports/kite_smoke-"), "{s}");
        assert!(!s.contains(':'));
    }
}
