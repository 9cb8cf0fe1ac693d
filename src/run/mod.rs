//! One `squall run` end to end: load the scenario, prepare the output folder, check the
//! target, run the swarm while writing results as it goes, evaluate thresholds, and say how
//! it ended (which the CLI turns into an exit code).

mod live;
mod meta;
mod outcome;
pub mod procs;
pub mod progress;
pub mod prometheus;
pub mod shard;
mod start;
pub(crate) mod timing;

pub(crate) use meta::meta;
pub(crate) use outcome::{measured_nothing, write_fallback};
pub(crate) use start::{preflight, raise_fd_limit, runtime_with_signals};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::check::verdict;
use crate::metrics::interval_log;
use crate::protocol::{Conformance, Profile};
use crate::report::{self, ReportError, Results, ResultsWriter, Status};
use crate::scenario::plan::{LoadModel, Plan};
use crate::scenario::{self, LoadError, LoadOptions};
use crate::swarm::samples::SampleLog;
use crate::swarm::{self, Control, RunOptions};

use live::Live;
use meta::{stamp, starting};
use outcome::{conclude, discard};
use start::{before_load, ended_before_load, serve};

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
    let places = crate::locate::Places {
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
    warn_of_files(&plan, &args);
    let (rt, rx, signals) = runtime_with_signals()?;
    let exposition = match args.metrics_listen {
        Some(addr) => Some(serve_metrics(&rt, addr)?),
        None => None,
    };
    let server = serve(&args, &mut plan)?;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out(&plan.name));
    let writer = ResultsWriter::create(&out_dir)?;
    let samples = samples_log(&args)?;
    // The first write doubles as the check that the folder takes files: an unwritable
    // output fails now (exit 3), not after the whole load.
    writer.write(&starting(&plan, &args))?;
    let log = interval_log_for(&writer, &plan);
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
        draw_report(&results, &out_dir, &args);
    }
    Ok(Finished {
        results,
        out_dir,
        output_failed,
    })
}

/// Warns when the VUs this process holds need more sockets than it may open files.
fn warn_of_files(plan: &Plan, args: &RunArgs) {
    let files = raise_fd_limit();
    // A shard holds its share of the VUs (rounded up).
    let share = (plan.load.peak() / f64::from(args.shard.map_or(1, |s| s.count))).ceil();
    if plan.load.model == LoadModel::Closed && share + 64.0 > files as f64 {
        eprintln!(
            "squall: warning: {share} VUs need as many sockets, but this process may open {files} files; \
             split the load across processes (--procs N, or --shard I/N then squall merge)"
        );
    }
}

/// `--metrics-listen`: the exposition rendered every tick, and the task serving it on `addr`.
fn serve_metrics(
    rt: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
) -> Result<(prometheus::Exposition, tokio::task::JoinHandle<()>), RunError> {
    let _in_rt = rt.enter();
    let (listener, local) = prometheus::bind(addr).map_err(|e| {
        RunError::Usage(format!(
            "--metrics-listen {addr}: cannot listen there ({e}); pick a free address, or port 0"
        ))
    })?;
    eprintln!("squall: metrics at http://{local}/metrics");
    let text = prometheus::Exposition::default();
    Ok((
        text.clone(),
        tokio::spawn(prometheus::serve(listener, text)),
    ))
}

/// `--samples`: like the output folder, a samples file that cannot be made fails before any
/// load.
fn samples_log(args: &RunArgs) -> Result<Option<Arc<SampleLog>>, RunError> {
    let Some(path) = &args.samples else {
        return Ok(None);
    };
    let log = SampleLog::create(path).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Some(Arc::new(log)))
}

/// The interval log beside results.json; its header is written when the load begins. It
/// adds to results.json and is named by it only when whole: a log that cannot be made is
/// said, not fatal.
fn interval_log_for(writer: &ResultsWriter, plan: &Plan) -> Option<interval_log::Writer> {
    let log_path = writer.path().with_file_name(interval_log::FILE_NAME);
    interval_log::Writer::open(&log_path, &plan.metrics)
        .inspect_err(|e| {
            eprintln!(
                "squall: {}: {e}; results.json will name no interval log",
                log_path.display()
            )
        })
        .ok()
}

/// Draws report.html and the charts. The run's verdict stands on results.json; a report that
/// cannot be drawn is said loudly but does not change the exit code.
fn draw_report(results: &Results, out_dir: &Path, args: &RunArgs) {
    match report::write_report_with(results, out_dir, args.log_latency) {
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
    if let Err(early) = before_load(&plan, args, &mut control).await {
        discard(log);
        return ended_before_load(&plan, args, writer, early);
    }
    let plan = Arc::new(plan);
    let opts = run_options(args, profile, samples);
    let started = SystemTime::now();
    let mut live = Live {
        plan: &plan,
        args,
        writer,
        started,
        threads: opts.threads,
        bar: (args.progress && !args.quiet).then(|| progress::Bar::new(plan.load.duration())),
        error: None,
        stopping: false,
        log: log.and_then(|log| begin_log(log, started)),
        exposition,
    };
    let outcome = swarm::run_keeping(plan.clone(), opts, control, &mut live, true).await;
    if let Some(bar) = live.bar.take() {
        bar.finish();
    }
    let results = final_results(&plan, args, outcome, live.log.is_some(), cut);
    let written = conclude(&results, &plan.name, args, writer);
    if written.as_deref() != Some(writer.path()) {
        // The folder's results.json (the last one written) does not name the log.
        discard(live.log.take());
    }
    Ok((results, written))
}

/// The swarm's options, from the command line.
fn run_options(
    args: &RunArgs,
    profile: Option<Arc<Profile>>,
    samples: Option<Arc<SampleLog>>,
) -> RunOptions {
    RunOptions {
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
    }
}

/// The interval log with its header written as the load begins; `None` (and the log
/// removed) when that fails.
fn begin_log(mut log: interval_log::Writer, started: SystemTime) -> Option<interval_log::Writer> {
    match log.begin(started) {
        Ok(()) => Some(log),
        Err(e) => {
            eprintln!(
                "squall: {}: {e}; results.json will name no interval log",
                log.path().display()
            );
            log.discard();
            None
        }
    }
}

/// The results of a run whose load ran: its metadata, timing, status and thresholds
/// (`cut`: `--duration` made it shorter than the scenario's load; `logged`: the interval
/// log is whole).
fn final_results(
    plan: &Plan,
    args: &RunArgs,
    outcome: swarm::Outcome,
    logged: bool,
    cut: bool,
) -> Results {
    let mut meta = meta(plan, args, outcome.started_at, outcome.threads);
    meta.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    meta.duration_s = outcome.elapsed.as_secs_f64();
    let mut results = outcome.aggregate.results(meta, outcome.status);
    let timing = timing::metric_timing(plan);
    for (name, t) in plan.metrics.iter().zip(timing) {
        if let (Some(m), Some(t)) = (results.metrics.get_mut(name), t) {
            m.timing = t;
        }
    }
    results.status_reason = outcome.reason;
    stamp(&mut results, args, logged);
    if results.status == Status::Complete {
        if let Some(why) = measured_nothing(&results, plan) {
            results.status = Status::Aborted;
            results.status_reason = Some(why);
        }
    }
    results.thresholds = verdict::evaluate(&plan.thresholds, &results);
    let by_metric = timing::metric_behaviours(plan);
    verdict::note_idle_behaviours(&mut results, &plan.thresholds, &by_metric, cut);
    results
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

#[cfg(test)]
mod tests {
    use super::start::retarget;
    use super::*;

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
