//! `squall deploy`: its command line, handed to `squall::deploy`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use squall::deploy::k8s::{self, Storage};

/// Where a sharded run is deployed.
#[derive(clap::Subcommand)]
pub enum DeployCmd {
    /// Kubernetes manifests for a sharded run: a ConfigMap with the scenario, a results
    /// claim, an Indexed Job of N generator pods and a merge Job (printed, never applied;
    /// exit 0 written, 2 bad scenario or usage, 3 not written).
    K8s(Box<K8sCmd>),
}

/// `squall deploy k8s`.
#[derive(clap::Args)]
pub struct K8sCmd {
    /// The scenario file.
    scenario: PathBuf,
    /// Generator pods (shards), each running 1/N of the load.
    #[arg(long, value_name = "N")]
    shards: u32,
    /// The container image with squall in it (deploy/k8s/Dockerfile builds one).
    #[arg(long, value_name = "IMAGE")]
    image: String,
    /// Namespace of every object [default: none written; kubectl's decides].
    #[arg(long)]
    namespace: Option<String>,
    /// The run's name, every object's prefix [default: the scenario's name and the start,
    /// e.g. kite-soak-20261207-140000].
    #[arg(long)]
    name: Option<String>,
    /// Target URL the pods reach the system under test at, replacing the scenario's.
    #[arg(long)]
    target: Option<String>,
    /// Where protocol profiles are looked for first (as squall run --schemas).
    #[arg(long)]
    schemas: Option<PathBuf>,
    /// The shards' common start (RFC 3339 UTC) [default: now + --start-in].
    #[arg(long, value_name = "TIME", value_parser = squall::run::shard::parse_start_at, conflicts_with = "start_in")]
    start_at: Option<SystemTime>,
    /// The start counted from now, long enough to apply the manifests, schedule every pod
    /// and pull the image.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = squall::scenario::parse_duration)]
    start_in: Duration,
    /// Results storage: pvc (a new ReadWriteMany claim), pvc:CLASS, or claim:NAME (an
    /// existing ReadWriteMany claim).
    #[arg(long, default_value = "pvc", value_parser = |s: &str| s.parse::<Storage>())]
    storage: Storage,
    /// Size of a new claim.
    #[arg(long, value_name = "QUANTITY", default_value = "1Gi")]
    storage_size: String,
    /// CPU per generator pod, requested and its limit.
    #[arg(long, value_name = "QUANTITY", default_value = "2")]
    cpu: String,
    /// Memory per generator pod, requested and its limit.
    #[arg(long, value_name = "QUANTITY", default_value = "1Gi")]
    memory: String,
    /// Pass this environment variable's value here to the pods, for {{env.NAME}}
    /// (repeatable). Secrets belong in a Secret: edit the manifest to use one.
    #[arg(long = "env", value_name = "NAME")]
    env: Vec<String>,
    /// Serve live Prometheus metrics from every generator on this port (--metrics-listen).
    #[arg(long, value_name = "PORT")]
    metrics_port: Option<u16>,
    /// Write the manifests here [default: standard output].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `squall deploy`; returns the exit code.
pub fn run(cmd: DeployCmd) -> u8 {
    let DeployCmd::K8s(cmd) = cmd;
    let mut env = Vec::new();
    for name in &cmd.env {
        match std::env::var(name) {
            Ok(v) => env.push((name.clone(), v)),
            Err(_) => {
                eprintln!("squall: --env {name}: not set here; set it, or drop --env {name}");
                return 2;
            }
        }
    }
    let opts = k8s::Options {
        scenario: cmd.scenario,
        shards: cmd.shards,
        image: cmd.image,
        namespace: cmd.namespace,
        name: cmd.name,
        target: cmd.target,
        schemas: cmd.schemas,
        start_at: cmd.start_at,
        start_in: cmd.start_in,
        storage: cmd.storage,
        storage_size: cmd.storage_size,
        cpu: cmd.cpu,
        memory: cmd.memory,
        env,
        metrics_port: cmd.metrics_port,
        now: SystemTime::now(),
    };
    let m = match k8s::manifests(&opts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("squall: {e}");
            return e.exit_code();
        }
    };
    let start = humantime::format_rfc3339_seconds(m.start_at);
    match &cmd.out {
        None => print!("{}", m.yaml),
        Some(path) => {
            if let Err(e) = std::fs::write(path, &m.yaml) {
                eprintln!("squall: {}: {e}", path.display());
                return 3;
            }
            println!("{}: manifests for run {} written", path.display(), m.run);
        }
    }
    eprintln!(
        "squall: run {} starts at {start}: apply the manifests before then",
        m.run
    );
    0
}
