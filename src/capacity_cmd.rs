//! `squall capacity`: its command line, handed to `squall::capacity`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use squall::capacity::{execute, serve_worker, CapacityArgs};
use squall::run::shard::Shard;
use squall::run::RunArgs;

/// Find the highest rate the target sustains within the SLOs (an open model's arrival
/// rate, or a closed model's one `pace` rate over all its connections): exponential steps,
/// then bisection (exit 0 found, 1 even --from breaks, 2 bad input, 3 the target failed or
/// squall itself was the limit, 130 interrupted).
#[derive(clap::Args)]
pub struct CapacityCmd {
    /// The scenario file: an open model (the search drives its arrival rate), or a closed
    /// model with one `pace` step (the search drives its rate on every connection).
    scenario: PathBuf,
    /// A service-level objective in the threshold syntax, e.g. "latency.rtt.p99 < 50ms"
    /// (repeatable; every one must hold).
    #[arg(long, value_name = "EXPR", required = true)]
    slo: Vec<String>,
    /// First rate tried (e.g. 100/s).
    #[arg(long, value_name = "RATE", default_value = "100/s", value_parser = parse_rate)]
    from: f64,
    /// Highest rate tried.
    #[arg(long, value_name = "RATE", default_value = "1000000/s", value_parser = parse_rate)]
    to: f64,
    /// How long each rate is held, warm-up included (e.g. 10s).
    #[arg(long, value_name = "D", default_value = "10s", value_parser = humantime::parse_duration)]
    step: Duration,
    /// The start of each step left out of its figures.
    #[arg(long, value_name = "D", default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Stop when the breaking rate is within this of the sustained one (e.g. 5%).
    #[arg(long, value_name = "PCT", default_value = "5%", value_parser = parse_fraction)]
    precision: f64,
    /// Target URL (ws:// or wss://), replacing the scenario's `target:`.
    #[arg(long)]
    target: Option<String>,
    /// Output folder [default: reports/<scenario>-capacity-<UTC timestamp>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed for every random choice [default: the scenario's `seed:`].
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
    /// Do not check frames against the protocol's schemas.
    #[arg(long)]
    no_check: bool,
    /// Where protocol profiles live [default: schemas].
    #[arg(long)]
    schemas: Option<PathBuf>,
    /// Do not write report.html and the PNG charts at the end.
    #[arg(long)]
    no_report: bool,
    /// Run every step as N shard processes on this machine, each offering its share of
    /// the step's rate; each step is judged on their figures added up.
    #[arg(long, value_name = "N")]
    procs: Option<u32>,
    /// One shard process of a --procs search (started by the search itself).
    #[arg(long, value_name = "I/N", hide = true, value_parser = squall::run::shard::parse_shard)]
    procs_worker: Option<Shard>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s
        .trim()
        .strip_suffix("/s")
        .unwrap_or(s.trim())
        .parse::<f64>()
    {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("'{s}' is not a positive rate; write e.g. 200/s")),
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s
        .trim()
        .strip_suffix('%')
        .unwrap_or(s.trim())
        .parse::<f64>()
    {
        Ok(p) if p > 0.0 && p < 100.0 => Ok(p / 100.0),
        _ => Err(format!(
            "'{s}' is not a percentage between 0 and 100; write e.g. 5%"
        )),
    }
}

/// Runs the search and returns the exit code.
pub fn run(cmd: CapacityCmd) -> u8 {
    let args = CapacityArgs {
        run: RunArgs {
            scenario: cmd.scenario,
            target: cmd.target,
            out: cmd.out,
            seed: cmd.seed,
            threads: cmd.threads,
            quiet: cmd.quiet,
            progress: std::io::stdout().is_terminal(),
            no_check: cmd.no_check,
            schemas: cmd.schemas,
            report: !cmd.no_report,
            ..RunArgs::default()
        },
        slo: cmd.slo,
        from: cmd.from,
        to: cmd.to,
        step: cmd.step,
        warmup: cmd.warmup,
        precision: cmd.precision,
        procs: cmd.procs,
    };
    if let Some(shard) = cmd.procs_worker {
        return serve_worker(args, shard);
    }
    match execute(args) {
        Ok(done) => done.exit_code(),
        Err(e) => {
            eprintln!("squall: {e}");
            e.exit_code()
        }
    }
}
