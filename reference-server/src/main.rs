//! The `squall-server` binary: parse flags, start the server, wait for a signal, shut down.

use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use squall_server::procs::{self, ProcSlot};
use squall_server::{Config, Fault, Limits, Profile};

/// squall's reference WebSocket server.
#[derive(Parser, Debug)]
#[command(name = "squall-server", version, about, args_override_self = true)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Protocol answering at /ws: kite, kecs, newloom, hexabase, covetpy or conformance.
    /// Every protocol also answers at its own path (/kite/ws, /kecs/ws, /newloom/ws/chat/,
    /// /newloom/ws/streams/, /hexabase/ws, /covetpy/ws, /conformance/ws).
    #[arg(long, default_value = "kite")]
    profile: Profile,
    /// Events generated per second into each room that has subscribers (0 disables events).
    #[arg(long = "events", value_name = "RATE", default_value_t = 10.0)]
    events: f64,
    /// The token clients must present where a protocol authenticates (also read from
    /// SQUALL_SERVER_TOKEN). Unset: any non-empty token is accepted, and Kite needs none.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SQUALL_SERVER_TOKEN",
        hide_env_values = true
    )]
    auth_token: Option<String>,
    /// Server heartbeat/ping period, e.g. 30s [default: each protocol's documented period].
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    heartbeat: Option<Duration>,
    /// Switch a documented limit off (repeatable): rate, subscriptions, per-client
    /// [default: every limit on].
    #[arg(long = "no-limit", value_name = "LIMIT", value_parser = ["rate", "subscriptions", "per-client"])]
    no_limit: Vec<String>,
    /// A deliberate delivery fault, to show a scenario detects it: drop-events:N (every Nth
    /// room frame is lost) or duplicate-events:N (every Nth is delivered twice)
    /// [default: none].
    #[arg(long, value_name = "FAULT")]
    fault: Option<Fault>,
    /// Open WebSocket connections allowed; further upgrades get HTTP 429.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    max_connections: usize,
    /// Largest inbound message, in bytes or with a unit (KiB, MiB, K, M) [default: each
    /// protocol's documented limit: Kite 512KiB, conformance 16MiB, the others 1MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_message_size: Option<usize>,
    /// Event frames queued per connection before it is closed (1008) as a slow consumer.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    queue_depth: usize,
    /// Time allowed for the HTTP request head and upgrade, e.g. 10s or 500ms.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = humantime::parse_duration)]
    handshake_timeout: Duration,
    /// Runtime threads, each with its own SO_REUSEPORT listener [default: available cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Log filter (tracing EnvFilter syntax: error, warn, info, debug, or per target);
    /// RUST_LOG overrides it. Logs go to stderr; tokens in query strings are redacted.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log: String,
    /// Log format on stderr: text or json (one object per line).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Wait this long before each write of replies, e.g. 50ms (a deliberately slow server).
    #[arg(long, value_name = "D", default_value = "0s", value_parser = humantime::parse_duration)]
    delay: Duration,
    /// Add "_stamp": {"rx_ns", "tx_ns"} (CLOCK_MONOTONIC, ns) to every JSON-object reply:
    /// when the message it answers was read and when the reply was queued for writing.
    #[arg(long)]
    stamp: bool,
    /// Behave as a server written strictly to each protocol's document: every extension off
    /// (no seq/room fields, no echoed ids the document lacks, no undocumented frames, query
    /// parameters, methods, metric names or error codes, no POST /publish); see
    /// reference-server/docs/strict-doc.md.
    #[arg(long)]
    strict_doc: bool,
    /// A fixed service budget shared by all connections, e.g. 2000/s: each answered
    /// message takes 1/N s of it, first come first served, so above N/s replies queue and
    /// latency climbs without bound (a known capacity for `squall capacity`) [default: none].
    #[arg(long, value_name = "N/s", value_parser = parse_capacity)]
    capacity: Option<f64>,
    /// With --capacity: unused budget kept for a burst, e.g. 20ms; 0s makes every message
    /// wait its own 1/N s (a single-server queue, whose latency rises before N).
    #[arg(long, value_name = "D", default_value = "20ms", value_parser = humantime::parse_duration)]
    capacity_slack: Duration,
    /// Run as N processes on the one --listen port (SO_REUSEPORT: the kernel spreads the
    /// connections), e.g. past the open-file limit of one process. /metrics on any of them
    /// sums every process's connection, frame and byte counters; rooms, events and limits
    /// are each process's own (see reference-server/README.md) [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    procs: Option<u32>,
    /// Set by the first of --procs processes on the ones it starts: this one's index.
    #[arg(long, hide = true, requires = "stats_file")]
    proc_index: Option<usize>,
    /// Set by the first of --procs processes on the ones it starts: the shared counters.
    #[arg(long, hide = true)]
    stats_file: Option<std::path::PathBuf>,
}

/// Parses `2000/s` or `2000` into a positive rate.
fn parse_capacity(s: &str) -> Result<f64, String> {
    let n = s.trim().strip_suffix("/s").unwrap_or(s.trim());
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("'{s}' is not a positive rate; write e.g. 2000/s")),
    }
}

/// Sends tracing events to stderr, as text or JSON lines.
fn init_logs(filter: &str, format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.with_ansi(false).init();
    }
}

/// Parses `4096`, `512KiB`, `512K`, `1MiB` or `1M` (binary units) into bytes.
fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("invalid size '{s}': expected e.g. 512KiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => return Err(format!("unknown size unit '{other}' (use B, KiB or MiB)")),
    };
    n.checked_mul(scale)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid size '{s}'"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logs(&args.log, &args.log_format);
    let defaults = Config::default();
    let first = args.proc_index.is_none() && args.procs.unwrap_or(1) > 1;
    let procs = proc_slot(&args, first);
    let config = config(&args, &defaults, procs.clone());
    let threads = config.threads;
    let server = match squall_server::spawn(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("squall-server: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    // The handlers are installed before the address is printed: whoever reads that line may
    // signal at once, and a SIGTERM that beat the handler would kill the process uncleanly.
    let signals = Signals::install();
    if let Err(e) = &signals {
        eprintln!("squall-server: cannot wait for signals: {e}");
    }
    let siblings = match procs.filter(|_| first) {
        Some(slot) => match start_siblings(&slot, server.addr(), threads) {
            Ok(s) => Some((slot, s)),
            Err(e) => {
                eprintln!("squall-server: cannot start the other --procs processes: {e}");
                server.shutdown();
                let _ = std::fs::remove_file(&slot.file);
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.addr());
    let _ = stdout.flush();
    tracing::info!(addr = %server.addr(), profile = %args.profile, "listening");
    if let Ok(signals) = signals {
        signals.wait();
    }
    tracing::info!("shutting down: closing connections with 1001");
    if let Some((slot, children)) = siblings {
        children.iter().for_each(procs::stop);
        for mut c in children {
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&slot.file);
    }
    server.shutdown();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// This process's place among `--procs N`: told by process 0 (`--proc-index`,
/// `--stats-file`), or process 0's own when it is the `first` of several.
fn proc_slot(args: &Args, first: bool) -> Option<ProcSlot> {
    let count = args.procs.unwrap_or(1) as usize;
    match (args.proc_index, &args.stats_file) {
        (Some(index), Some(file)) => Some(ProcSlot {
            file: file.clone(),
            index,
            count,
        }),
        _ if first => Some(ProcSlot {
            file: procs::stats_file(std::process::id()),
            index: 0,
            count,
        }),
        _ => None,
    }
}

/// The server's configuration from the command line (`defaults` where it says nothing).
fn config(args: &Args, defaults: &Config, procs: Option<ProcSlot>) -> Config {
    Config {
        listen: args.listen,
        profile: args.profile,
        events_per_sec: args.events,
        max_connections: args.max_connections,
        max_message_size: args.max_message_size,
        auth_token: args.auth_token.clone(),
        heartbeat: args.heartbeat,
        limits: Limits {
            rate: !args.no_limit.iter().any(|l| l == "rate"),
            subscriptions: !args.no_limit.iter().any(|l| l == "subscriptions"),
            per_client: !args.no_limit.iter().any(|l| l == "per-client"),
        },
        queue_depth: args.queue_depth,
        handshake_timeout: args.handshake_timeout,
        threads: args.threads.unwrap_or(defaults.threads),
        reply_delay: args.delay,
        stamp: args.stamp,
        strict_doc: args.strict_doc,
        fault: args.fault,
        capacity: args.capacity,
        capacity_slack: args.capacity_slack,
        procs,
    }
}

/// Starts processes 1..N of `--procs N` on the address process 0 got, with its thread
/// count (the shared counters file has that many slots per process).
fn start_siblings(
    slot: &ProcSlot,
    addr: SocketAddr,
    threads: usize,
) -> std::io::Result<Vec<std::process::Child>> {
    let mut children = Vec::with_capacity(slot.count - 1);
    for index in 1..slot.count {
        let extra = [
            "--listen".to_string(),
            addr.to_string(),
            "--threads".into(),
            threads.to_string(),
            "--proc-index".into(),
            index.to_string(),
            "--stats-file".into(),
            slot.file.display().to_string(),
        ];
        match procs::spawn_sibling(&extra) {
            Ok(c) => children.push(c),
            Err(e) => {
                children.iter().for_each(procs::stop);
                return Err(e);
            }
        }
    }
    Ok(children)
}

/// SIGINT and SIGTERM handlers, registered up front so no signal arrives before them.
struct Signals {
    rt: tokio::runtime::Runtime,
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (int, term) = {
            let _in_rt = rt.enter();
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        Ok(Signals { rt, int, term })
    }

    /// Blocks until SIGINT or SIGTERM.
    fn wait(self) {
        let Signals {
            rt,
            mut int,
            mut term,
        } = self;
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1M"), Ok(1024 * 1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12 parsecs").is_err());
    }
}
