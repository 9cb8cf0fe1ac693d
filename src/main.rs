//! The `squall` command line: parse arguments, call the library, map outcomes to exit codes
//! (0 pass, 1 a threshold or check failed, 2 bad scenario or usage, 3 target unreachable or
//! run aborted, 130 interrupted).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod capacity_cmd;
mod deploy_cmd;
mod profile_cmd;

use squall::locate::Places;
use squall::protocol::checker::Engine;
use squall::protocol::{Conformance, Profile};
use squall::report::{compare_text, CompareOptions};
use squall::run::{default_out, execute, RunArgs};

use profile_cmd::{scenario_new, schemas, validate, ScenarioCmd, SchemasCmd};
use squall::scenario::{self, LoadOptions};

/// Load-test and conformance-check WebSocket APIs from YAML scenarios.
#[derive(Parser)]
#[command(name = "squall", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write results (exit 0 pass; 1 a threshold failed or a frame broke
    /// its schemas; 2 bad scenario, profile or usage; 3 target unreachable, run aborted or
    /// results not written; 130 interrupted).
    Run(Box<RunCmd>),
    /// Find the highest rate the target sustains within SLOs (exit 0 found, 1 even --from
    /// breaks, 2 bad input, 3 target failed or squall was the limit, 130 interrupted).
    Capacity(capacity_cmd::CapacityCmd),
    /// Check scenario files without connecting (exit 0 valid, 1 not portable with
    /// --portable, 2 invalid).
    Check {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Also check that each scenario uses only kinds and fields its protocol's document
        /// defines (none of squall-server's extensions), so it runs against any server
        /// written to the document.
        #[arg(long)]
        portable: bool,
        /// Where protocol profiles live (with --portable) [default: schemas].
        #[arg(long)]
        schemas: Option<PathBuf>,
    },
    /// Check recorded frames (JSON lines; `-` for stdin) against a protocol's schemas
    /// (exit 0 clean, 1 violations, 2 bad input).
    Validate {
        /// Profile name (looked up in --schemas, ./schemas, then the built-in ones), a folder
        /// holding protocol.yaml, or an AsyncAPI document.
        #[arg(long)]
        protocol: String,
        /// Where profiles are looked for first.
        #[arg(long)]
        schemas: Option<PathBuf>,
        /// strict (the document and squall's decisions) or document (the document's rules only).
        #[arg(long, value_enum, default_value_t = ConformanceArg::Strict)]
        conformance: ConformanceArg,
        /// tape (the compiled checks on a reused tape, as squall run) or reference (the
        /// jsonschema crate on each frame's serde_json::Value): a second opinion.
        #[arg(long, value_enum, default_value_t = CheckerArg::Tape)]
        checker: CheckerArg,
        /// The recording, one JSON line each: a bare frame (checked as inbound, from the
        /// server), {"dir":"in"|"out","frame":...}, or
        /// {"conn":"c1","dir":...,"frame":...,"at":"RFC 3339"} for the per-connection checks
        /// too (reply pairing, rooms, clock). An object with a "dir" or "frame" member is a
        /// record and must have both, and no other members than conn and at.
        file: String,
    },
    /// Draw report.html and a PNG per chart from a results.json
    /// (exit 0 written, 2 unreadable or invalid results, 3 output not written).
    Report {
        /// The results file.
        results: PathBuf,
        /// Output folder [default: the results file's folder].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Draw latency by percentile on a log scale of latency (one outlier no longer
        /// flattens the curve).
        #[arg(long)]
        log_latency: bool,
    },
    /// Merge a sharded run's results (`squall run --shard I/N`) into one: results.json,
    /// interval log, report and junit.xml (exit 0 pass, 1 a threshold failed on the merged
    /// figures, 2 shards that do not make one run, 3 output not written).
    Merge(MergeCmd),
    /// Describe a sharded run for a cluster to carry out (manifests printed, never applied).
    Deploy {
        #[command(subcommand)]
        target: deploy_cmd::DeployCmd,
    },
    /// Compare runs side by side: compare.html and PNGs, figures with ratios to the first
    /// run (exit 0, 1 a figure worse than --fail-if-worse allows, 2 bad input, 3 output).
    Compare(CompareCmd),
    /// Scenario tools.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCmd,
    },
    /// Protocol profile tools.
    Schemas {
        #[command(subcommand)]
        command: SchemasCmd,
    },
}

#[derive(clap::Args)]
struct MergeCmd {
    /// Each shard's results.json, or the run folder holding it.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Merge even when shards are missing, aborted or unfinished, with a warning for each
    /// (the merged result then covers only part of the planned load).
    #[arg(long)]
    allow_partial: bool,
    /// Do not draw report.html and the PNG charts.
    #[arg(long)]
    no_report: bool,
    /// First wait up to this long (e.g. 30m) until every shard's results.json is there and
    /// finished (not `running`), for a merge started beside the shards; then merge what
    /// there is (a shard still missing is refused as without --wait).
    #[arg(long, value_name = "DURATION", value_parser = scenario::parse_duration)]
    wait: Option<Duration>,
    /// No summary table.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
struct CompareCmd {
    /// Results files; the first is the baseline.
    #[arg(required = true, num_args = 2..)]
    results: Vec<PathBuf>,
    /// Names for the runs, one per file in order [default: each run's folder name].
    #[arg(long = "label", value_name = "NAME")]
    labels: Vec<String>,
    /// Output folder [default: reports/compare-<UTC timestamp>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit 1 when a later run's latency p50/p90/p99 (any metric, or connect) or error
    /// rate is more than PCT percent worse than the first run's.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    fail_if_worse: Option<f64>,
    /// Latency changes no larger than this are noise, never better or worse [default: 0].
    #[arg(long, value_name = "D", value_parser = scenario::parse_duration, allow_hyphen_values = true)]
    min_delta: Option<Duration>,
}

#[derive(clap::Args)]
struct RunCmd {
    /// The scenario file.
    scenario: PathBuf,
    /// Target URL (ws:// or wss://), replacing the scenario's `target:`.
    #[arg(long)]
    target: Option<String>,
    /// Output folder [default: reports/<scenario>-<UTC timestamp>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Total load duration (e.g. 30s, 2m; written as in a scenario): cuts the phases, or
    /// holds the last level longer.
    #[arg(long, value_parser = scenario::parse_duration, allow_hyphen_values = true)]
    duration: Option<Duration>,
    /// Peak VUs for a closed-model scenario (phases are scaled; at least 1).
    #[arg(long, value_parser = parse_vus, allow_hyphen_values = true)]
    vus: Option<u64>,
    /// Peak arrival rate per second for an open-model scenario (e.g. 200 or 200/s).
    #[arg(long, value_parser = parse_rate, allow_hyphen_values = true)]
    rate: Option<f64>,
    /// Seed for every random choice [default: the scenario's `seed:`, else drawn and recorded].
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// No live progress and no summary table.
    #[arg(long, short)]
    quiet: bool,
    /// Start the bundled squall-server on 127.0.0.1 (ephemeral port) and run against it.
    #[arg(long)]
    serve: bool,
    /// Do not check frames against the protocol's schemas (to measure what checking costs).
    #[arg(long)]
    no_check: bool,
    /// How frames are judged: tape (parsed onto a tape, compiled checks) or reference
    /// (jsonschema on serde_json for every frame: slower; what tape is tested against).
    #[arg(long, value_enum, default_value_t = CheckerArg::Tape)]
    checker: CheckerArg,
    /// Where protocol profiles live [default: schemas].
    #[arg(long)]
    schemas: Option<PathBuf>,
    /// Also write JUnit XML here (one test case per threshold and per message kind seen).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// How far in the future an inbound frame's timestamp may be [default: 1s].
    #[arg(long, value_parser = scenario::parse_duration, allow_hyphen_values = true)]
    max_clock_skew: Option<Duration>,
    /// Also write every latency sample to FILE, one JSON line each: metric, VU, the
    /// intended, sent and received instants on CLOCK_MONOTONIC (ns), the latency and
    /// service time (µs) and the frame that ended it. A debugging aid that costs speed.
    #[arg(long, value_name = "FILE")]
    samples: Option<PathBuf>,
    /// Do not write report.html and the PNG charts at the end.
    #[arg(long)]
    no_report: bool,
    /// Draw latency by percentile on a log scale of latency (one outlier no longer
    /// flattens the curve).
    #[arg(long)]
    log_latency: bool,
    /// Run shard I of N (1 ≤ I ≤ N): a 1/N share of the VUs or arrivals, VU numbers unique
    /// across shards; merge the shards' results with squall merge.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Count --shard's I from 0 instead of 1 (0 ≤ I < N), as Kubernetes numbers an Indexed
    /// Job's pods (JOB_COMPLETION_INDEX); the shard is then I + 1 of N everywhere else.
    #[arg(long, value_name = "0|1", default_value_t = 1, requires = "shard")]
    shard_base: u32,
    /// Begin the load at this UTC time (RFC 3339, e.g. 2026-12-07T12:00:00Z), so the
    /// shards' phases line up.
    #[arg(long, value_name = "TIME", value_parser = squall::run::shard::parse_start_at)]
    start_at: Option<std::time::SystemTime>,
    /// Serve Prometheus text at http://ADDR/metrics while the run goes (requests, replies,
    /// errors and violations by kind, connections, generator lag, latency per metric;
    /// labelled shard="I/N" with --shard). Port 0 picks a free port, named on stderr.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Run as N shard processes of this executable on this machine (each `--shard i/N`,
    /// results in <out>/shards/i), with one live progress, merged at the end into <out>.
    /// Against a loopback target each process connects from its own address (127.0.0.2,
    /// 127.0.0.3, …): one source address has ~28k ports per target.
    #[arg(long, value_name = "N")]
    procs: Option<u32>,
    /// Connect from these local addresses, in turn (e.g. 10.0.0.5,10.0.0.6; each must be
    /// on this machine); with --procs, dealt out among the processes (at least one each).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',', value_parser = squall::swarm::source::parse_ip)]
    source_ip: Option<Vec<std::net::IpAddr>>,
    /// How strictly frames are held to the profile: strict (the document's rules and squall's
    /// decisions where the document is silent) or document (the document's rules only).
    /// Each violation says which it broke.
    #[arg(long, value_enum, default_value_t = ConformanceArg::Strict)]
    conformance: ConformanceArg,
}

/// `--conformance`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CheckerArg {
    Tape,
    Reference,
}

impl From<CheckerArg> for Engine {
    fn from(c: CheckerArg) -> Self {
        match c {
            CheckerArg::Tape => Engine::Tape,
            CheckerArg::Reference => Engine::Reference,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ConformanceArg {
    Strict,
    Document,
}

impl From<ConformanceArg> for Conformance {
    fn from(c: ConformanceArg) -> Self {
        match c {
            ConformanceArg::Strict => Conformance::Strict,
            ConformanceArg::Document => Conformance::Document,
        }
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        Ok(_) => Err(format!(
            "the rate must be positive, got '{s}'; write e.g. 200 or 200/s"
        )),
        Err(_) => Err(format!("'{s}' is not a rate; write e.g. 200 or 200/s")),
    }
}

/// `--vus`: a whole number of at least 1 (0 VUs would measure nothing).
fn parse_vus(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("at least 1 VU is needed: 0 VUs would measure nothing".into()),
        Err(_) => Err(format!(
            "'{s}' is not a number of VUs: write a whole number, e.g. 10"
        )),
    }
}

fn parse_pct(s: &str) -> Result<f64, String> {
    match s.strip_suffix('%').unwrap_or(s).parse::<f64>() {
        Ok(p) if p >= 0.0 && p.is_finite() => Ok(p),
        _ => Err(format!("'{s}' is not a percentage; write e.g. 10 or 10%")),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(match cli.command {
        Command::Run(cmd) => run(*cmd),
        Command::Capacity(cmd) => capacity_cmd::run(cmd),
        Command::Check {
            scenarios,
            portable,
            schemas,
        } => check(&scenarios, portable, schemas.as_deref()),
        Command::Validate {
            protocol,
            schemas,
            file,
            conformance,
            checker,
        } => validate(
            &protocol,
            schemas,
            &file,
            conformance.into(),
            checker.into(),
        ),
        Command::Schemas { command } => schemas(command),
        Command::Scenario {
            command: ScenarioCmd::New { from, out, schemas },
        } => scenario_new(&from, out.as_deref(), schemas),
        Command::Report {
            results,
            out,
            log_latency,
        } => report(&results, out, log_latency),
        Command::Merge(cmd) => merge(cmd),
        Command::Deploy { target } => deploy_cmd::run(target),
        Command::Compare(cmd) => compare(cmd),
    })
}

fn run(cmd: RunCmd) -> u8 {
    let shard = cmd
        .shard
        .as_deref()
        .map(|s| squall::run::shard::parse_shard_based(s, cmd.shard_base))
        .transpose();
    let shard = match shard {
        Ok(s) => s,
        Err(e) => {
            eprintln!("squall: --shard: {e}");
            return 2;
        }
    };
    let args = RunArgs {
        scenario: cmd.scenario,
        target: cmd.target,
        out: cmd.out,
        duration: cmd.duration,
        vus: cmd.vus,
        rate: cmd.rate,
        seed: cmd.seed,
        threads: cmd.threads,
        quiet: cmd.quiet,
        progress: std::io::stdout().is_terminal(),
        serve: cmd.serve,
        no_check: cmd.no_check,
        checker: cmd.checker.into(),
        schemas: cmd.schemas,
        junit: cmd.junit,
        max_clock_skew: cmd.max_clock_skew,
        samples: cmd.samples,
        report: !cmd.no_report,
        log_latency: cmd.log_latency,
        conformance: cmd.conformance.into(),
        shard,
        start_at: cmd.start_at,
        metrics_listen: cmd.metrics_listen,
        source_ips: cmd.source_ip.unwrap_or_default(),
    };
    if let Some(n) = cmd.procs {
        return match squall::run::procs::execute(args, n) {
            Ok(done) => done.exit_code(),
            Err(e) => {
                eprintln!("squall: {e}");
                e.exit_code()
            }
        };
    }
    match execute(args) {
        Ok(done) => done.exit_code(),
        Err(e) => {
            eprintln!("squall: {e}");
            e.exit_code()
        }
    }
}

fn report(results: &Path, out: Option<PathBuf>, log_latency: bool) -> u8 {
    let written = squall::report::read_results(results).and_then(|r| {
        let source = results.parent().unwrap_or(Path::new("."));
        let dir = out.unwrap_or_else(|| source.to_path_buf());
        squall::report::write_report_beside(&r, source, &dir, log_latency)
    });
    match written {
        Ok(w) => {
            for n in &w.notes {
                eprintln!("squall: report: {n}");
            }
            println!("{}", w.describe());
            0
        }
        Err(e) => {
            eprintln!("squall: {e}");
            e.exit_code()
        }
    }
}

fn merge(cmd: MergeCmd) -> u8 {
    if let Some(within) = cmd.wait {
        let say = |s: &str| eprintln!("squall: merge: {s}");
        let left = squall::merge::wait::until_finished(&cmd.results, within, say);
        if !left.is_empty() {
            eprintln!(
                "squall: merge: {} of {} shards still unfinished after --wait {}",
                left.len(),
                cmd.results.len(),
                humantime::format_duration(within)
            );
        }
    }
    let args = squall::merge::MergeArgs {
        inputs: cmd.results,
        out: cmd.out,
        allow_partial: cmd.allow_partial,
        report: !cmd.no_report,
    };
    match squall::merge::merge(&args) {
        Ok(m) => {
            for w in &m.warnings {
                eprintln!("squall: WARNING: {w}");
            }
            if !cmd.quiet {
                println!("{}", squall::report::render_summary(&m.results));
                println!("results: {}", m.out_dir.join("results.json").display());
            }
            m.exit_code()
        }
        Err(e) => {
            eprintln!("squall: {e}");
            e.exit_code()
        }
    }
}

fn compare(cmd: CompareCmd) -> u8 {
    let opts = CompareOptions {
        fail_if_worse: cmd.fail_if_worse,
        min_delta_us: cmd.min_delta.map_or(0, |d| d.as_micros() as u64),
    };
    let out = cmd.out.unwrap_or_else(|| default_out("compare"));
    let done = squall::report::load_runs(&cmd.results, &cmd.labels)
        .and_then(|runs| squall::report::write_comparison(&runs, &opts, &out));
    match done {
        Ok((c, w)) => {
            print!("{}", compare_text(&c));
            println!("compare: {}", w.html.display());
            u8::from(!c.passed())
        }
        Err(e) => {
            eprintln!("squall: {e}");
            e.exit_code()
        }
    }
}

/// A scenario file loaded, and its protocol found (an AsyncAPI document imported) and
/// compiled as `run` would, unless a profile of the same folder already was (`loaded`).
fn check_loads(
    f: &Path,
    opts: &LoadOptions,
    schemas: Option<&Path>,
    loaded: &mut std::collections::HashSet<PathBuf>,
) -> Result<
    (
        scenario::plan::Plan,
        Option<squall::protocol::catalog::Located>,
    ),
    String,
> {
    let plan = scenario::load_file(f, opts).map_err(|e| e.to_string())?;
    let Some(name) = plan.protocol.clone() else {
        return Ok((plan, None));
    };
    let places = Places {
        schemas: schemas.map(Path::to_path_buf),
        scenario_dir: f.parent().map(Path::to_path_buf),
    };
    let located = places
        .locate(&name)
        .and_then(|l| {
            if loaded.contains(&l.dir) {
                Ok(l)
            } else {
                l.load().map(|_| l)
            }
        })
        .map_err(|e| format!("{}: protocol profile: {e}", f.display()))?;
    loaded.insert(located.dir.clone());
    Ok((plan, Some(located)))
}

fn check(files: &[PathBuf], portable: bool, schemas: Option<&Path>) -> u8 {
    let opts = LoadOptions::from_process_env();
    let mut code = 0;
    // Each protocol's profile is compiled once for all the files that name it: once to
    // prove it loads, once more (without squall's extensions) for `--portable`.
    let mut profiles: std::collections::HashMap<PathBuf, Profile> = Default::default();
    let mut loaded: std::collections::HashSet<PathBuf> = Default::default();
    for f in files {
        let checked = check_loads(f, &opts, schemas, &mut loaded);
        let (plan, located) = match checked {
            Ok(both) => both,
            Err(e) => {
                eprintln!("{e}");
                code = 2;
                continue;
            }
        };
        let Some(located) = located.filter(|_| portable) else {
            println!("{}: ok", f.display());
            continue;
        };
        let dir = located.dir.clone();
        if !profiles.contains_key(&dir) {
            match located.load_portable() {
                Ok(p) => profiles.insert(dir.clone(), p),
                Err(e) => {
                    eprintln!("{}: {e}", f.display());
                    code = 2;
                    continue;
                }
            };
        }
        let found = squall::check::portable::check(&plan, &profiles[&dir]);
        if found.is_empty() {
            println!("{}: ok, portable", f.display());
        } else {
            for x in &found {
                eprintln!("{}: not portable: {x}", f.display());
            }
            code = code.max(1);
        }
    }
    code
}
