//! `squall run --procs N`: the run split over N shard processes of this executable on this
//! machine (`run --shard i/N --start-at T --out <out>/shards/i`), each with its own source
//! address towards a loopback target, one live progress line for all of them, Ctrl-C and
//! SIGTERM forwarded, and the shards merged at the end into the normal output folder.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{default_out, preflight, prepare, profile_for, progress, RunArgs, RunError};
use crate::merge::{self, MergeArgs, Merged};
use crate::report::{self, render_junit, render_summary, Status};
use crate::swarm::Control;

/// How far ahead the common start is set, so every process is up and past its start-up
/// check before the load begins (a late one says by how much).
const LEAD: Duration = Duration::from_secs(3);

/// How a `--procs` run ended.
pub struct ProcsFinished {
    /// The merged result, if the shards left anything to merge.
    pub merged: Option<Merged>,
    /// Shard processes that failed, one line each naming the shard.
    pub failed: Vec<String>,
    /// A Ctrl-C or SIGTERM was forwarded.
    pub interrupted: bool,
}

impl ProcsFinished {
    /// Exit code: 130 interrupted, 3 a shard process failed or nothing was merged or the
    /// merged run aborted, else the merged verdict (1 a threshold failed, 0 pass).
    pub fn exit_code(&self) -> u8 {
        match &self.merged {
            _ if self.interrupted => 130,
            _ if !self.failed.is_empty() => 3,
            None => 3,
            Some(m) if m.results.status == Status::Aborted => 3,
            Some(m) if m.results.status == Status::Interrupted => 130,
            Some(m) => m.exit_code(),
        }
    }
}

/// Checks what `--procs` cannot be combined with; the message says what to do instead.
pub fn check(args: &RunArgs, procs: u32) -> Result<(), RunError> {
    let usage = |s: String| Err(RunError::Usage(s));
    if procs == 0 {
        return usage("--procs must be at least 1 (the number of shard processes)".into());
    }
    if let Some(s) = args.shard {
        return usage(format!(
            "--procs runs the shards itself: leave out --shard {}/{} (or run each --shard I/N \
             yourself and join them with squall merge)",
            s.index, s.count
        ));
    }
    if args.samples.is_some() {
        return usage("--samples is for one process: leave it out with --procs".into());
    }
    let n = args.source_ips.len();
    if n > 0 && n < procs as usize {
        return usage(format!(
            "--procs {procs} needs at least {procs} --source-ip addresses (one per process), \
             got {n}: give more, or run fewer processes"
        ));
    }
    Ok(())
}

/// The source addresses of each of `procs` processes: the `--source-ip` list dealt out in
/// turn, else 127.0.0.2, 127.0.0.3, … when the target is on IPv4 loopback (the whole
/// 127/8 answers there, and each address has its own ephemeral ports), else none.
pub fn sources_per_process(given: &[IpAddr], target: &str, procs: u32) -> Vec<Vec<IpAddr>> {
    let n = procs as usize;
    if !given.is_empty() {
        return (0..n)
            .map(|i| given.iter().skip(i).step_by(n).copied().collect())
            .collect();
    }
    if !on_loopback_v4(target) {
        return vec![Vec::new(); n];
    }
    let first = u32::from(Ipv4Addr::new(127, 0, 0, 2));
    (0..n as u32)
        .map(|i| vec![IpAddr::V4(Ipv4Addr::from(first + i))])
        .collect()
}

/// Whether every address the target's host names is IPv4 loopback.
fn on_loopback_v4(target: &str) -> bool {
    let Ok(req) = target.into_client_request() else {
        return false;
    };
    let Some(host) = req.uri().host() else {
        return false;
    };
    let addrs: Vec<_> = match (host.trim_matches(['[', ']']), 0).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return false,
    };
    !addrs.is_empty()
        && addrs
            .iter()
            .all(|a| matches!(a.ip(), IpAddr::V4(v4) if v4.is_loopback()))
}

/// Runs the scenario as `procs` shard processes and merges them.
pub fn execute(mut args: RunArgs, procs: u32) -> Result<ProcsFinished, RunError> {
    check(&args, procs)?;
    let mut plan = prepare(&args)?;
    profile_for(&mut plan, &args)?;
    let (rt, control, signals) = super::runtime_with_signals()?;
    let server = super::serve(&args, &mut plan)?;
    rt.block_on(preflight(&plan))?;
    args.target = Some(plan.target.clone());
    args.seed = Some(plan.seed);
    let out = args.out.clone().unwrap_or_else(|| default_out(&plan.name));
    let shards = out.join("shards");
    let start_at = args.start_at.unwrap_or_else(|| SystemTime::now() + LEAD);
    let sources = sources_per_process(&args.source_ips, &plan.target, procs);
    let mut children = Vec::with_capacity(procs as usize);
    for (i, from) in (1..=procs).zip(sources) {
        let cmd = command(
            &args,
            (i, procs),
            start_at,
            &shards.join(i.to_string()),
            &from,
        );
        children.push(spawn(cmd, i, procs)?);
    }
    let watch = Watch {
        args: &args,
        procs,
        shards: &shards,
        total: plan.load.duration(),
    };
    let (statuses, interrupted) = rt.block_on(watch.run(children, control));
    signals.abort();
    if let Some(s) = server {
        s.shutdown();
    }
    let failed = failures(&statuses, procs);
    for f in &failed {
        eprintln!("squall: {f}");
    }
    let inputs: Vec<PathBuf> = (1..=procs)
        .map(|i| shards.join(i.to_string()))
        .filter(|d| d.join("results.json").exists())
        .collect();
    let merged = if inputs.is_empty() {
        eprintln!("squall: no shard process wrote results: nothing to merge");
        None
    } else {
        merge_shards(&args, inputs, &out, !failed.is_empty() || interrupted)
    };
    Ok(ProcsFinished {
        merged,
        failed,
        interrupted,
    })
}

/// Merges the shards into `out` (partially, with warnings, when a shard failed or the run
/// was interrupted), writes `--junit` and prints the summary.
fn merge_shards(args: &RunArgs, inputs: Vec<PathBuf>, out: &Path, partial: bool) -> Option<Merged> {
    let margs = MergeArgs {
        inputs,
        out: out.to_path_buf(),
        allow_partial: partial,
        report: args.report,
    };
    match merge::merge(&margs) {
        Ok(m) => {
            for w in &m.warnings {
                eprintln!("squall: WARNING: {w}");
            }
            if let Some(path) = &args.junit {
                if let Err(e) = std::fs::write(path, render_junit(&m.results)) {
                    eprintln!("squall: junit: {}: {e}", path.display());
                }
            }
            if !args.quiet {
                println!("{}", render_summary(&m.results));
                println!("results: {}", m.out_dir.join("results.json").display());
            }
            Some(m)
        }
        Err(e) => {
            eprintln!("squall: merging the shards: {e}");
            None
        }
    }
}

/// The command line of shard `i` of `n`.
fn command(
    args: &RunArgs,
    (i, n): (u32, u32),
    start_at: SystemTime,
    out: &Path,
    from: &[IpAddr],
) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("squall"));
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg(&args.scenario);
    cmd.args(["--shard", &format!("{i}/{n}")]);
    cmd.args([
        "--start-at",
        &humantime::format_rfc3339_millis(start_at).to_string(),
    ]);
    cmd.arg("--out").arg(out);
    cmd.args(["--quiet", "--no-report"]);
    cmd.args(["--conformance", args.conformance.as_str()]);
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let opt = |cmd: &mut Command, flag: &str, v: Option<String>| {
        if let Some(v) = v {
            cmd.args([flag, &v]);
        }
    };
    opt(&mut cmd, "--target", args.target.clone());
    opt(&mut cmd, "--seed", args.seed.map(|s| s.to_string()));
    opt(&mut cmd, "--duration", args.duration.map(ms));
    opt(&mut cmd, "--vus", args.vus.map(|v| v.to_string()));
    opt(&mut cmd, "--rate", args.rate.map(|r| r.to_string()));
    opt(&mut cmd, "--max-clock-skew", args.max_clock_skew.map(ms));
    let threads = args.threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        (cores / n as usize).max(1)
    });
    opt(&mut cmd, "--threads", Some(threads.to_string()));
    opt(
        &mut cmd,
        "--schemas",
        args.schemas.as_ref().map(|p| p.display().to_string()),
    );
    // Each process serves its own metrics: the next port up, or a free one for port 0.
    let listen = args.metrics_listen.map(|mut a| {
        if a.port() != 0 {
            a.set_port(a.port().saturating_add((i - 1) as u16));
        }
        a.to_string()
    });
    opt(&mut cmd, "--metrics-listen", listen);
    if args.no_check {
        cmd.arg("--no-check");
    }
    if !from.is_empty() {
        let list: Vec<String> = from.iter().map(IpAddr::to_string).collect();
        cmd.args(["--source-ip", &list.join(",")]);
    }
    cmd
}

/// Starts one shard process (see [`spawn_grouped`]).
fn spawn(mut cmd: Command, i: u32, n: u32) -> Result<Child, RunError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn_grouped(cmd)
        .map_err(|e| RunError::Usage(format!("cannot start shard process {i}/{n}: {e}")))
}

/// Starts a child in a process group of its own (a Ctrl-C at the terminal reaches this
/// process only, which passes it on), ended if this process dies.
pub(crate) fn spawn_grouped(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of ours.
    #[cfg(target_os = "linux")]
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
}

/// What a shard process's watcher thread reports.
enum Event {
    /// A line it wrote on stderr.
    Line(u32, String),
    /// It ended (its stderr closed first).
    Exit(u32, std::io::Result<ExitStatus>),
}

/// Watches the shard processes until all have ended.
struct Watch<'a> {
    args: &'a RunArgs,
    procs: u32,
    shards: &'a Path,
    total: Duration,
}

impl Watch<'_> {
    /// Relays their messages, draws the summed progress, forwards each Ctrl-C/SIGTERM;
    /// returns each process's pid and exit status, and whether a signal was forwarded.
    async fn run(
        &self,
        children: Vec<Child>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> (Vec<(u32, std::io::Result<ExitStatus>)>, bool) {
        let (tx, mut events) = mpsc::unbounded_channel();
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        for (i, child) in (1..=self.procs).zip(children) {
            relay(child, i, tx.clone());
        }
        drop(tx);
        let mut statuses: Vec<Option<std::io::Result<ExitStatus>>> =
            (0..self.procs).map(|_| None).collect();
        let mut bar =
            (self.args.progress && !self.args.quiet).then(|| progress::Bar::new(self.total));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let began = Instant::now();
        let mut interrupted = false;
        let n = self.procs;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(Event::Line(i, line)) => say(&bar, &format!("[shard {i}/{n}] {line}")),
                    Some(Event::Exit(i, status)) => statuses[i as usize - 1] = Some(status),
                    None => break,
                },
                Some(Control::Interrupt) = control.recv() => {
                    interrupted = true;
                    say(&bar, "squall: stopping: Ctrl-C/SIGTERM passed to every shard process (again to stop now)");
                    for (pid, s) in pids.iter().zip(&statuses) {
                        if s.is_none() {
                            // SAFETY: kill only sends a signal to a child we started and
                            // have not reaped (its status is not in yet).
                            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGINT) };
                        }
                    }
                },
                _ = tick.tick() => if let Some(bar) = &mut bar {
                    let running = statuses.iter().filter(|s| s.is_none()).count();
                    let live = self.summed(running);
                    bar.update_summed(&live, began.elapsed().saturating_sub(LEAD), interrupted);
                },
            }
        }
        if let Some(bar) = bar {
            bar.finish();
        }
        let done = pids
            .into_iter()
            .zip(statuses)
            .map(|(pid, s)| {
                (
                    pid,
                    s.unwrap_or_else(|| Err(std::io::Error::other("no exit status"))),
                )
            })
            .collect();
        (done, interrupted)
    }

    /// The shards' latest results.json, added up.
    fn summed(&self, running: usize) -> progress::Summed {
        let mut live = progress::Summed {
            running,
            ..Default::default()
        };
        for i in 1..=self.procs {
            let path = self.shards.join(i.to_string()).join("results.json");
            if let Ok(r) = report::read_results(&path) {
                live.add(&r);
            }
        }
        live
    }
}

/// Prints a line above the bar, or on stderr.
fn say(bar: &Option<progress::Bar>, line: &str) {
    match bar {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    }
}

/// A thread that passes on the child's stderr lines, then its exit status.
fn relay(mut child: Child, i: u32, tx: mpsc::UnboundedSender<Event>) {
    std::thread::spawn(move || {
        if let Some(err) = child.stderr.take() {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(Event::Line(i, line));
            }
        }
        let _ = tx.send(Event::Exit(i, child.wait()));
    });
}

/// One line for each shard process that did not end as a run does (0 pass, 1 a failed
/// threshold, 130 interrupted), naming it.
fn failures(statuses: &[(u32, std::io::Result<ExitStatus>)], n: u32) -> Vec<String> {
    use std::os::unix::process::ExitStatusExt;
    let mut out = Vec::new();
    for (i, (pid, status)) in (1..=n).zip(statuses) {
        let name = format!("shard {i}/{n} (pid {pid})");
        match status {
            Ok(s) if matches!(s.code(), Some(0 | 1 | 130)) => {}
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => out.push(format!(
                    "{name} failed with exit code {c}: its messages are above; its results \
                     (if any) are merged partially"
                )),
                (None, Some(sig)) => out.push(format!(
                    "{name} died, killed by signal {sig}; its results (if any) are merged \
                     partially"
                )),
                _ => out.push(format!("{name} ended without a status")),
            },
            Err(e) => out.push(format!("{name}: cannot tell how it ended: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_get_one_address_per_process_and_a_list_is_dealt_out() {
        let per = sources_per_process(&[], "ws://127.0.0.1:9/ws", 3);
        let s: Vec<String> = per.iter().map(|v| v[0].to_string()).collect();
        assert_eq!(s, ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
        let given: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let per = sources_per_process(&given, "ws://127.0.0.1:9/ws", 2);
        assert_eq!(per[0], [given[0], given[2]]);
        assert_eq!(per[1], [given[1]]);
        assert!(sources_per_process(&[], "ws://[::1]:9/ws", 2)
            .iter()
            .all(Vec::is_empty));
    }

    #[test]
    fn bad_combinations_are_usage_errors() {
        let args = RunArgs::default();
        assert!(check(&args, 0)
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        let sharded = RunArgs {
            shard: Some(crate::run::shard::Shard { index: 1, count: 2 }),
            ..RunArgs::default()
        };
        assert!(check(&sharded, 2)
            .unwrap_err()
            .to_string()
            .contains("leave out --shard 1/2"));
        let few = RunArgs {
            source_ips: vec!["10.0.0.1".parse().unwrap()],
            ..RunArgs::default()
        };
        let e = check(&few, 2).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("needs at least 2 --source-ip"),
            "{e}"
        );
    }
}
