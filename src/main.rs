//! The `squall` command line: parse arguments, call the library, map outcomes to exit codes
//! (0 pass, 1 a threshold or check failed, 2 bad scenario or usage, 3 target unreachable or
//! run aborted, 130 interrupted).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use squall::check::offline::validate_lines;
use squall::protocol::{self, Conformance, Profile};
use squall::report::{compare_text, CompareOptions};
use squall::run::{default_out, execute, RunArgs};
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
    /// Run a scenario and write results (exit 0 pass, 1 threshold failed, 3 aborted, 130 interrupted).
    Run(Box<RunCmd>),
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
        /// Profile name (schemas/<name>) or a folder holding protocol.yaml.
        #[arg(long)]
        protocol: String,
        /// Where profiles live.
        #[arg(long, default_value = "schemas")]
        schemas: PathBuf,
        /// strict (the document and squall's decisions) or document (the document's rules only).
        #[arg(long, value_enum, default_value_t = ConformanceArg::Strict)]
        conformance: ConformanceArg,
        /// The recording: one frame per line (inbound), {"dir":"in"|"out","frame":...}, or
        /// {"conn":"c1","dir":...,"frame":...,"at":"RFC 3339"} for the per-connection checks
        /// too (reply pairing, rooms, clock).
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
    },
    /// Merge a sharded run's results (`squall run --shard I/N`) into one: results.json,
    /// interval log, report and junit.xml (exit 0 pass, 1 a threshold failed on the merged
    /// figures, 2 shards that do not make one run, 3 output not written).
    Merge(MergeCmd),
    /// Compare runs side by side: compare.html and PNGs, figures with ratios to the first
    /// run (exit 0, 1 a figure worse than --fail-if-worse allows, 2 bad input, 3 output).
    Compare(CompareCmd),
    /// Protocol profile tools.
    Schemas {
        #[command(subcommand)]
        command: SchemasCmd,
    },
}

#[derive(Subcommand)]
enum SchemasCmd {
    /// Check profiles: files exist and compile, examples validate or fail as expected
    /// (exit 0 sound, 1 problems, 2 a profile does not load).
    Lint {
        /// Profile folders (schemas/<name>).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
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
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
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
    /// Total load duration (e.g. 30s, 2m): cuts the phases, or holds the last level longer.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Peak VUs for a closed-model scenario (phases are scaled).
    #[arg(long)]
    vus: Option<u64>,
    /// Peak arrival rate per second for an open-model scenario (e.g. 200 or 200/s).
    #[arg(long, value_parser = parse_rate)]
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
    /// Where protocol profiles live [default: schemas].
    #[arg(long)]
    schemas: Option<PathBuf>,
    /// Also write JUnit XML here (one test case per threshold and per message kind seen).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// How far in the future an inbound frame's timestamp may be [default: 1s].
    #[arg(long, value_parser = humantime::parse_duration)]
    max_clock_skew: Option<Duration>,
    /// Also write every latency sample to FILE, one JSON line each: metric, VU, the
    /// intended, sent and received instants on CLOCK_MONOTONIC (ns), the latency and
    /// service time (µs) and the frame that ended it. A debugging aid that costs speed.
    #[arg(long, value_name = "FILE")]
    samples: Option<PathBuf>,
    /// Do not write report.html and the PNG charts at the end.
    #[arg(long)]
    no_report: bool,
    /// Run shard I of N (1 ≤ I ≤ N): a 1/N share of the VUs or arrivals, VU numbers unique
    /// across shards; merge the shards' results with squall merge.
    #[arg(long, value_name = "I/N", value_parser = squall::run::shard::parse_shard)]
    shard: Option<squall::run::shard::Shard>,
    /// Begin the load at this UTC time (RFC 3339, e.g. 2026-12-07T12:00:00Z), so the
    /// shards' phases line up.
    #[arg(long, value_name = "TIME", value_parser = squall::run::shard::parse_start_at)]
    start_at: Option<std::time::SystemTime>,
    /// Serve Prometheus text at http://ADDR/metrics while the run goes (requests, replies,
    /// errors and violations by kind, connections, generator lag, latency per metric;
    /// labelled shard="I/N" with --shard). Port 0 picks a free port, named on stderr.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// How strictly frames are held to the profile: strict (the document's rules and squall's
    /// decisions where the document is silent) or document (the document's rules only).
    /// Each violation says which it broke.
    #[arg(long, value_enum, default_value_t = ConformanceArg::Strict)]
    conformance: ConformanceArg,
}

/// `--conformance`.
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
    n.parse::<f64>()
        .map_err(|_| format!("'{s}' is not a rate; write e.g. 200 or 200/s"))
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
        } => validate(&protocol, &schemas, &file, conformance.into()),
        Command::Schemas {
            command: SchemasCmd::Lint { dirs },
        } => lint(&dirs),
        Command::Report { results, out } => report(&results, out),
        Command::Merge(cmd) => merge(cmd),
        Command::Compare(cmd) => compare(cmd),
    })
}

fn run(cmd: RunCmd) -> u8 {
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
        schemas: cmd.schemas,
        junit: cmd.junit,
        max_clock_skew: cmd.max_clock_skew,
        samples: cmd.samples,
        report: !cmd.no_report,
        conformance: cmd.conformance.into(),
        shard: cmd.shard,
        start_at: cmd.start_at,
        metrics_listen: cmd.metrics_listen,
    };
    match execute(args) {
        Ok(done) => done.exit_code(),
        Err(e) => {
            eprintln!("squall: {e}");
            e.exit_code()
        }
    }
}

fn report(results: &Path, out: Option<PathBuf>) -> u8 {
    let written = squall::report::read_results(results).and_then(|r| {
        let source = results.parent().unwrap_or(Path::new("."));
        let dir = out.unwrap_or_else(|| source.to_path_buf());
        squall::report::write_report_beside(&r, source, &dir)
    });
    match written {
        Ok(w) => {
            for n in &w.notes {
                eprintln!("squall: report: {n}");
            }
            println!("report: {} ({} charts)", w.html.display(), w.pngs.len());
            0
        }
        Err(e) => {
            eprintln!("squall: {e}");
            e.exit_code()
        }
    }
}

fn merge(cmd: MergeCmd) -> u8 {
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

fn check(files: &[PathBuf], portable: bool, schemas: Option<&Path>) -> u8 {
    let opts = LoadOptions::from_process_env();
    let mut code = 0;
    for f in files {
        let plan = match scenario::load_file(f, &opts) {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("{e}");
                code = 2;
                continue;
            }
        };
        let Some(name) = plan.protocol.as_deref().filter(|_| portable) else {
            println!("{}: ok", f.display());
            continue;
        };
        let dir = profile_dir(name, schemas.unwrap_or(Path::new("schemas")));
        let profile = match Profile::load_portable(&dir) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                code = 2;
                continue;
            }
        };
        let found = squall::check::portable::check(&plan, &profile);
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

fn profile_dir(protocol: &str, schemas: &Path) -> PathBuf {
    let direct = PathBuf::from(protocol);
    if direct.join("protocol.yaml").is_file() {
        direct
    } else {
        schemas.join(protocol)
    }
}

fn validate(protocol: &str, schemas: &Path, file: &str, conformance: Conformance) -> u8 {
    let profile = match Profile::load_with(&profile_dir(protocol, schemas), conformance) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let result = if file == "-" {
        validate_lines(&profile, std::io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(f) => validate_lines(&profile, std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("squall: {file}: {e}");
                return 2;
            }
        }
    };
    match result {
        Ok((frames, findings)) => {
            for f in &findings {
                println!("{file}:{}: {}", f.line, f.violation);
            }
            let bad: std::collections::BTreeSet<usize> = findings.iter().map(|f| f.line).collect();
            println!(
                "{frames} frames, {} with violations ({} violations)",
                bad.len(),
                findings.len()
            );
            u8::from(!findings.is_empty())
        }
        Err(e) => {
            eprintln!("squall: {file}: {e}");
            2
        }
    }
}

fn lint(dirs: &[PathBuf]) -> u8 {
    let mut code = 0;
    for d in dirs {
        match protocol::lint(d) {
            Ok(r) if r.problems.is_empty() => {
                println!("{}: ok ({} examples)", d.display(), r.checked);
                for n in &r.notes {
                    println!("  note: {n}");
                }
            }
            Ok(r) => {
                for p in &r.problems {
                    println!("{p}");
                }
                println!(
                    "{}: {} problems in {} examples",
                    d.display(),
                    r.problems.len(),
                    r.checked
                );
                code = code.max(1);
            }
            Err(e) => {
                eprintln!("{e}");
                code = 2;
            }
        }
    }
    code
}
